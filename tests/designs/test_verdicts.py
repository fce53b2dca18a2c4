"""Every built-in design's expected verdict, on each driver it applies to.

"Breaks" tests use the explorer (breadth first, so the counterexample is the
shortest) and assert the invariant id, the trace length and that the trace
contains a call the design changes. "Holds" tests run the Hypothesis machine at
the `ci` budget and assert that it finds no violation (tests/explore cross-checks
the explorer's verdicts). The expected verdicts are our reading of the seeds
(`Design.expect_breaks`); see docs/designs.md for what the checker found.
"""

from __future__ import annotations

import pytest

from checker.worlds import WORLDS, with_design_bounds
from checker.check import check_hypothesis
from checker.explore import check_explore
from invariants.catalog import get
from model.bounds import Bounds
from model.designs import DESIGNS

SMALL = Bounds(devices=2, processes=2, paging_domains=1, iova_pages=1, phys_pages=2, max_pasids=3)
EXPLORE_STATES = 6000

CELLS = [(d.name, hw) for d in DESIGNS.values() for hw in d.hw]
BREAKS = [(n, h) for n, h in CELLS if DESIGNS[n].breaks_on(h)]
HOLDS = [(n, h) for n, h in CELLS if not DESIGNS[n].breaks_on(h)]


@pytest.mark.parametrize("name,hw", BREAKS, ids=[f"{n}-{h}" for n, h in BREAKS])
def test_design_breaks_as_expected(name: str, hw: str) -> None:
    d = DESIGNS[name]
    # the design's own smallest world, if it names one; else SMALL with its own bounds on top
    w = WORLDS.get(d.check_bounds)
    bounds = w.to_bounds() if w is not None else with_design_bounds(SMALL, d.check_bounds)
    r = check_explore(d, hw, bounds, get(), max_states=EXPLORE_STATES * 3)
    assert r.trace is not None, f"{name} on {hw}: {r.extra.get('summary')}"
    assert r.violated in d.breaks_on(hw), (r.violated, d.breaks_on(hw))
    assert len(r.trace) <= 8, r.trace.listing()
    assert {s.action for s in r.trace.steps} & set(d.changed_calls) or (
        len(r.trace) == 0 and "boot" in d.changed_calls), r.trace.listing()


@pytest.mark.parametrize("name,hw", HOLDS, ids=[f"{n}-{h}" for n, h in HOLDS])
def test_design_holds_as_expected(name: str, hw: str) -> None:
    d = DESIGNS[name]
    r = check_hypothesis(d, hw, SMALL, get(), profile="ci", seed=1, database=False)
    assert r.trace is None, "\n".join(r.trace.listing())
    assert r.examples >= 60
