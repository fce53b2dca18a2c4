"""The Hypothesis engine drives the device-life mechanisms of issue 16 too (the action
table gives both engines the same moves): in each new world it finds the broken
variant's violation and shrinks it to the explorer's shortest trace, and it finds
nothing on upstream where the explorer proves it holds.

Seed-pinned Hypothesis runs find a given 4- or 5-step sequence at different examples
from one environment to the next (see tests/model/test_fault_injection.py), so each
"finds" row tries four seeds at the ci profile and asserts that one of them finds it.
"""

from __future__ import annotations

import pytest

from checker.check import check_hypothesis
from checker.worlds import WORLDS
from invariants.catalog import get
from model.design import UPSTREAM
from model.designs import DESIGNS

FINDS = [
    # (design, hw, world, invariant, shrunk length = the explorer's shortest)
    ("vtd-sva-unbind-after-mm-exit", "vtd", "pri1", "iopf-drained", 5),
    ("vtd-iopf-disable-before-teardown", "vtd", "pri1", "iopf-drained", 4),
    ("vtd-context-own-rid-only", "vtd", "alias1", "no-stale-translation", 1),
    ("smmu-ste-first-stream-only", "smmuv3", "alias1", "no-stale-translation", 1),
    ("vtd-release-keeps-pasid-table", "vtd", "reprobe1", "no-leak", 2),
    ("smmu-identity-rid-drops-cd-table", "smmuv3", "pt1", "no-stale-translation", 6),
]


@pytest.mark.parametrize("design,hw,world,invariant,length", FINDS, ids=[f[0] for f in FINDS])
def test_the_machine_finds_and_shrinks(design: str, hw: str, world: str, invariant: str,
                                       length: int) -> None:
    found = []
    for seed in range(1, 5):
        r = check_hypothesis(DESIGNS[design], hw, WORLDS[world].to_bounds(), get([invariant]),
                             profile="ci", seed=seed, database=False)
        if r.trace is not None:
            found.append(r)
            break
    assert found, f"{design} on {hw}: no seed of four found {invariant} in {world}"
    (r,) = found
    assert r.violated == invariant
    assert len(r.trace) == length, "\n".join(r.trace.listing())


@pytest.mark.parametrize("world,hw", [("pt1", "smmuv3"), ("reprobe1", "vtd"), ("alias1", "smmuv3"),
                                      ("pri1", "mock")])
def test_the_machine_finds_nothing_on_upstream(world: str, hw: str) -> None:
    r = check_hypothesis(UPSTREAM, hw, WORLDS[world].to_bounds(), get(), profile="ci", seed=1,
                         database=False)
    assert r.trace is None, "\n".join(r.trace.listing())
    assert r.examples >= 60
