"""The parallel explorer (checker/parallel.py) gives the plain search's result.

Same verdict, same state and transition counts, same depth and covered depth, same
findings with the same shortest paths, state for state: on holding and breaking
designs, with and without every_violation, on a model exception, and where
--max-states or --depth stop the search inside a level."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from checker.explore import Explorer, Outcome, explore
from checker.userdesign import load_design_file
from invariants.catalog import CATALOG
from model.bounds import Bounds
from model.design import Design
from model.designs import get_design

ROOT = Path(__file__).resolve().parents[2]
TINY = Bounds(devices=1, processes=1, paging_domains=0, iova_pages=1, phys_pages=1, max_pasids=2)
SMALL = Bounds(devices=1, processes=1, paging_domains=1, iova_pages=1, phys_pages=1, max_pasids=2)


def _facts(ex: Explorer, o: Outcome) -> dict[str, Any]:
    def moves(path: list[int] | None) -> tuple[Any, ...]:
        return tuple(ex.moves[m] for m in path or [])

    return {
        "states": o.states, "transitions": o.transitions, "depth": o.depth,
        "complete": o.complete, "stopped_at": o.stopped_at, "covered": o.covered,
        "violation": None if o.violation is None else o.violation.invariant,
        "path": moves(o.path),
        "findings": [(moves(p), v.invariant) for p, v in o.findings],
    }


def _both(design: Design, hw: str, bounds: Bounds, **kw: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    plain = _facts(*explore(design, hw, bounds, tuple(CATALOG), saturate=True, **kw))
    par = _facts(*explore(design, hw, bounds, tuple(CATALOG), saturate=True, workers=2, **kw))
    return plain, par


@pytest.mark.parametrize("hw", ["vtd", "smmuv3"])
@pytest.mark.parametrize("design,bounds,every", [
    ("upstream", TINY, False),  # holds: the whole world, exhausted
    ("notifier-kfree-early", SMALL, False),  # breaks at depth 3
    ("notifier-kfree-early", SMALL, True),  # every invariant's first violation, on to the end
    ("aux-2018-unguarded", SMALL, True),
])
def test_parallel_search_is_the_plain_search(design: str, bounds: Bounds, every: bool, hw: str) -> None:
    plain, par = _both(get_design(design), hw, bounds, every_violation=every)
    assert par == plain
    assert plain["complete"] or plain["stopped_at"] == "every invariant violated"


@pytest.mark.parametrize("kw", [{"max_states": 700}, {"max_states": 1}, {"depth": 5}],
                         ids=["max_states", "max_states=1", "depth"])
def test_limits_stop_where_the_plain_search_stops(kw: dict[str, Any]) -> None:
    """--max-states stops the plain search inside a level, at the state that would be one
    too many: the parallel search stops at that state too (counts and depth alike)."""
    plain, par = _both(get_design("upstream"), "vtd", SMALL, **kw)
    assert par == plain
    assert plain["complete"] is False


def test_a_model_exception_is_found_at_the_same_transition() -> None:
    d = load_design_file(str(ROOT / "examples" / "driver_raises.py"))
    plain, par = _both(d, "vtd", TINY, every_violation=True)
    assert par == plain
    assert plain["violation"] == "model-exception"
