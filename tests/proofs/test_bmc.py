"""BMC of the PASID lifetime against the Hypothesis machine (DESIGN.md section 7).

For each design and each of the two invariants, a violation found by bounded model
checking must also be found by the Hypothesis machine restricted to that invariant,
and an invariant that holds under BMC must hold under Hypothesis at the budget.
Hypothesis runs with fixed seeds and without shrinking (the verdict is compared, not
the trace).

Budgets. Hypothesis stops at its first violation, so a search that succeeds is cheap
and one that finds nothing costs its whole budget. The Hypothesis machine has about
25 actions, so a particular 4-6 step PASID-lifetime sequence takes it hundreds to
thousands of examples (measured: 25 to 1200 examples depending on the seed, ~30 ms
each). The default run therefore checks, within ~25 s:
- BMC holds (6 steps) => Hypothesis holds at 60 examples;
- BMC violation within 3 steps => Hypothesis finds it (up to 300 examples per seed,
  seeds 0-4, stopping at the first find);
- every BMC violation, replayed through the same Runner the machine steps with,
  violates the same invariant (test_bmc_violations_replay_on_the_model).
The deep run (`-m deep`) searches for every BMC violation (3000 examples per seed,
seeds 0-4) and runs 1500 examples where BMC says the invariant holds.
"""

from __future__ import annotations

from typing import Callable

import pytest

from proofs.base import ProofResult
from proofs.bmc import DESIGNS, INVARIANTS, BmcResult, hypothesis_verdict

PAIRS = [(d, i) for d in DESIGNS for i in INVARIANTS]


def _bmc(result: Callable[[str], ProofResult]) -> dict[tuple[str, str], BmcResult]:
    out = result("bmc-pasid-lifetime").witness["results"]
    assert isinstance(out, dict)
    return out


def test_bmc_violations_replay_on_the_model(result: Callable[[str], ProofResult]) -> None:
    for (design, inv), r in _bmc(result).items():
        if r.violated:
            assert r.replayed == inv, (design, inv, r.listing)
            assert r.calls, "a violation is a call sequence"


def test_bmc_finds_the_expected_violations(result: Callable[[str], ProofResult]) -> None:
    res = _bmc(result)
    assert res[("pasid-freed-at-mm-exit", "pasid-not-reused-while-bound")].depth == 3
    assert res[("sva-bind-2019-enqcmd", "pasid-not-reused-while-bound")].depth == 4
    assert res[("pasid-per-rid", "global-pasid-consistent")].depth == 5
    for d in ("upstream", "pasid-global-flag", "sva-bind-2019"):
        assert not any(res[(d, i)].violated for i in INVARIANTS)


def _search(design: str, invariant: str, budget: int, seeds: int) -> list[str | None]:
    """Hypothesis verdicts over seeds 0.., stopping at the first one that finds the violation."""
    found: list[str | None] = []
    for seed in range(seeds):
        found.append(hypothesis_verdict(design, invariant, budget, seed)[0])
        if found[-1] == invariant:
            break
    return found


@pytest.mark.parametrize("design,invariant", PAIRS)
def test_bmc_agrees_with_hypothesis(design: str, invariant: str,
                                    result: Callable[[str], ProofResult]) -> None:
    r = _bmc(result)[(design, invariant)]
    if not r.violated:
        violated, examples, _ = hypothesis_verdict(design, invariant, 60, 0)
        assert violated is None, f"Hypothesis found {violated}; BMC holds to {r.depth} steps"
    elif r.depth <= 3:
        found = _search(design, invariant, 300, 5)
        assert invariant in found, f"BMC violates at step {r.depth}; Hypothesis: {found}"
    else:
        pytest.skip(f"BMC violation at step {r.depth}: Hypothesis search is in the deep run")


@pytest.mark.deep
@pytest.mark.parametrize("design,invariant", PAIRS)
def test_bmc_agrees_with_hypothesis_deep(design: str, invariant: str,
                                         result: Callable[[str], ProofResult]) -> None:
    r = _bmc(result)[(design, invariant)]
    if r.violated:
        found = _search(design, invariant, 3000, 5)
        assert invariant in found, f"BMC violates at step {r.depth}; Hypothesis: {found}"
    else:
        violated, examples, _ = hypothesis_verdict(design, invariant, 1500, 0)
        assert violated is None, f"Hypothesis found {violated}; BMC holds to {r.depth} steps"
