"""Global PASID proofs: the per-RID counterexample, and a wrong rule is not proved."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import z3

from model.design import PasidAlloc
from proofs.base import ProofResult
from proofs.pasid import Effect, Params, Rules, State, check_inductive


def test_per_rid_counterexample(result: Callable[[str], ProofResult]) -> None:
    w = result("pasid-global-consistent-per-rid").witness
    assert w["processes"] == 2 and w["devices"] == 2
    assert w["bind_pasids"] == [1]  # the same value on both devices
    assert w["violation"] == "global-pasid-consistent"
    names = [c[0] for c in w["calls"]]
    assert names.count("mm_alloc") == 2 and names.count("iommu_sva_bind_device") == 2
    assert "enqcmd" in names


@dataclass(frozen=True)
class StaleMsrRules(Rules):
    """A broken rule: ENQCMD's #GP fixup loads IA32_PASID with some value other than the
    mm's PASID (as if the MSR kept a value from an earlier allocation)."""

    def enqcmd(self, s: State, a: Params) -> Effect:
        guard, changes = super().enqcmd(s, a)
        return guard, {**changes, "msr": z3.Store(s.msr, a.m, a.p)}


def test_wrong_rule_is_not_proved() -> None:
    out = check_inductive("upstream", StaleMsrRules(PasidAlloc.GLOBAL))
    assert out.status == "counterexample", out.details
    assert out.details[0].startswith("enqcmd preserves the invariant: FAILS")


def test_global_designs_proved(result: Callable[[str], ProofResult]) -> None:
    for name in ("pasid-global-consistent-upstream", "pasid-global-consistent-global-flag"):
        details = result(name).details
        assert any("the invariant implies global-pasid-consistent: proved" in d for d in details)
        assert any(d.startswith("non-vacuous") for d in details)
