"""Exactness of cache saturation (checker/explore.py, "Cache saturation").

Two checks, from the end result down to the premises it rests on:

1. The saturated search finds a violation exactly when the plain one does, with no
   more calls (events other than DMA) than the plain shortest trace has, and its
   rebuilt trace replays to a violation through `Runner.step`, keeping every call of
   the saturated path. On holding designs it proves the same world with fewer states.
2. The premises, on every state a plain search reaches within a few steps, for every
   enabled call or event other than `dma`: doing every DMA first changes neither what
   is enabled nor what the step returns nor anything but the caches after it, leaves
   the caches a superset, and breaks at least the invariants (state and step) the
   unsaturated step breaks.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest

from checker.explore import Explorer, check_explore
from checker.world import Config
from invariants.base import Step
from invariants.catalog import CATALOG
from model.actions import ACTIONS
from model.bounds import Bounds
from model.core import Kernel
from model.designs import get_design
from model.warn import WarnClass

TINY_SVA = Bounds(devices=1, processes=1, paging_domains=0, iova_pages=1, phys_pages=1, max_pasids=2)
TINY_DOMAIN = Bounds(devices=1, processes=0, paging_domains=1, iova_pages=1, phys_pages=1, max_pasids=2)
SMALL = Bounds(devices=1, processes=1, paging_domains=1, iova_pages=1, phys_pages=1, max_pasids=2)
#: two processes, two pages, three PASIDs: more to cache, and tags that can be reused
WIDE = Bounds(devices=1, processes=2, paging_domains=1, iova_pages=1, phys_pages=2, max_pasids=3)
#: the unit's cache sets, per driver (everything saturation may add to)
CACHES = {"vtd": ("context_cache", "pasid_cache", "iotlb", "devtlb", "psc"),
          "smmuv3": ("ste_cache", "cd_cache", "tlb", "atc", "walk")}
#: leaf table pages and walk caches (bound walk_caches), with a process and a domain
WALKS = Bounds(devices=1, processes=1, paging_domains=1, iova_pages=1, phys_pages=1, max_pasids=2,
               walk_caches=True)

# design, hw, bounds, depth limit (None: to exhaustion; a limit only where both searches
# find the violation before it, since the saturated depth counts calls only)
AGREE = [
    ("upstream", "vtd", TINY_SVA, None),
    ("upstream", "smmuv3", TINY_SVA, None),
    ("upstream", "vtd", TINY_DOMAIN, None),
    ("upstream", "smmuv3", TINY_DOMAIN, None),
    pytest.param("upstream", "vtd", SMALL, None, marks=pytest.mark.deep),  # 50 s
    pytest.param("upstream", "smmuv3", SMALL, None, marks=pytest.mark.deep),  # 80 s
    ("aux-2018", "vtd", SMALL, None),
    ("notifier-kfree-early", "vtd", SMALL, None),
    ("smmu-detach-no-atc-inv", "smmuv3", SMALL, None),
    ("vtd-teardown-no-devtlb-flush", "vtd", SMALL, None),
    ("vtd-teardown-no-pasid-cache-flush", "vtd", SMALL, None),
    ("set-dev-pasid-blocking-2022", "smmuv3", SMALL, None),
    ("pasid-freed-at-mm-exit", "vtd", WIDE, 7),
]


def _calls(trace: Any) -> int:
    return sum(1 for s in trace.steps if s.action != "dma")


def _id(row: Any) -> str:
    d, h, b, _ = row.values if hasattr(row, "values") else row
    return f"{d}-{h}-{'tiny-sva' if b == TINY_SVA else 'tiny-domain' if b == TINY_DOMAIN else 'small' if b == SMALL else 'wide'}"


#: upstream with saturated caches: (distinct states, depth in calls). Update when the
#: model changes on purpose (the plain search's counts are in test_explore_search.py).
SATURATED_COUNTS = {
    ("sva", "vtd"): (350, 12),
    ("sva", "smmuv3"): (350, 12),
    ("domain", "vtd"): (276, 14),
    ("domain", "smmuv3"): (168, 11),
    ("small", "vtd"): (3518, 21),
    ("small", "smmuv3"): (4218, 18),
}
WORLDS = {"sva": TINY_SVA, "domain": TINY_DOMAIN, "small": SMALL}


@pytest.mark.parametrize("world,hw", sorted(SATURATED_COUNTS), ids=lambda v: str(v))
def test_saturation_proves_upstream_with_a_stable_state_count(world: str, hw: str) -> None:
    r = check_explore(get_design("upstream"), hw, WORLDS[world], CATALOG, saturate=True)
    states, depth = SATURATED_COUNTS[(world, hw)]
    assert r.trace is None and r.complete
    assert r.extra["summary"] == (f"explored {states:,} states (caches saturated) to depth {depth}, "
                                  f"no violation")


@pytest.mark.parametrize("design,hw,bounds,depth", AGREE, ids=[_id(r) for r in AGREE])
def test_saturated_search_agrees_with_plain_search(design: str, hw: str, bounds: Bounds,
                                                   depth: int | None) -> None:
    d = get_design(design)
    plain = check_explore(d, hw, bounds, CATALOG, depth=depth)
    sat = check_explore(d, hw, bounds, CATALOG, depth=depth, saturate=True)
    print(f"{design} on {hw}: plain {plain.extra['summary']}; {sat.extra['summary']}")
    assert sat.extra["saturated"] and "(caches saturated)" in sat.extra["summary"]
    assert (sat.trace is None) == (plain.trace is None)
    if plain.trace is None:
        assert sat.complete == plain.complete
        assert sat.examples < plain.examples
        return
    assert sat.trace is not None
    # shortest in calls: no plain counterexample uses fewer calls
    assert sat.extra["depth"] == _calls(sat.trace) <= _calls(plain.trace)
    # DMA events it does not need were dropped: each one left is needed
    assert len(sat.trace) <= len(plain.trace) + 1
    # it replays (check_explore replayed it through Runner.step) to a violation
    assert sat.trace.violation is not None


def _saturated(ex: Explorer, k: Kernel) -> Kernel:
    s = k.copy()
    ex.fill_all(s)
    return s


def _without_caches(k: Kernel, hw: str) -> tuple[Any, ...]:
    c = k.copy()
    for attr in CACHES[hw]:
        setattr(c.drv.unit, attr, set())  # type: ignore[attr-defined]
    return c.key()


def _caches(k: Kernel, hw: str) -> dict[str, frozenset[Any]]:
    return {attr: frozenset(getattr(k.drv.unit, attr)) for attr in CACHES[hw]}  # type: ignore[attr-defined]


def _violated(ex: Explorer, k: Kernel, step: Step | None) -> set[str]:
    k.freeze()
    out = set()
    for inv in ex.runner.invariants:
        if step is None and inv.check_state is not None and inv.check_state(k, ex.bounds):
            out.add(inv.id)
        if step is not None and inv.check_step is not None and inv.check_step(step, ex.bounds):
            out.add(inv.id)
    return out


def _enabled(k: Kernel, b: Bounds) -> list[tuple[str, tuple[Any, ...]]]:
    k.freeze()
    return [(a.name, args) for a in ACTIONS for args in a.enabled_args(k, b)]


@pytest.mark.parametrize("design,hw,depth,bounds", [
    ("upstream", "vtd", 3, WIDE),
    ("upstream", "smmuv3", 3, WIDE),
    ("vtd-teardown-no-devtlb-flush", "vtd", 3, WIDE),
    ("smmu-detach-no-atc-inv", "smmuv3", 3, WIDE),
    ("pasid-freed-at-mm-exit", "vtd", 3, WIDE),
    ("upstream", "vtd", 4, WALKS),
    ("vtd-tlb-sync-ih-with-freelist", "vtd", 4, WALKS),
    ("smmu-flush-walk-leaf", "smmuv3", 4, WALKS),
], ids=lambda x: x if isinstance(x, (str, int)) else "")
def test_saturation_premises_hold_on_reachable_states(
        design: str, hw: str, depth: int, bounds: Bounds,
        reachable: Callable[[Explorer, int], list[Kernel]]) -> None:
    ex = Explorer(Config(get_design(design), hw, bounds), CATALOG, saturate=True)
    b = ex.bounds
    checked = grew = 0
    for k in reachable(ex, depth):
        k.thaw()
        s = _saturated(ex, k)
        assert _enabled(s, b) == _enabled(k, b)
        assert _violated(ex, k, None) <= _violated(ex, s, None)
        for name, args in _enabled(k, b):
            if name == "dma":
                continue
            action = next(a for a in ACTIONS if a.name == name)
            before, sbefore = k.copy(), s.copy()
            after, safter = k.copy(), s.copy()
            after.thaw()
            safter.thaw()
            r = action.run(after, args)
            sr = action.run(safter, args)
            assert sr == r, f"{name}{args} returns {sr} after the DMAs, {r} without"
            assert _without_caches(safter, hw) == _without_caches(after, hw), f"{name}{args}"
            # The one record that reads the caches: a table freed while a walk cache still
            # points at it (model/warn.py WALK). More entries after the DMAs can only add
            # such records; every other record is the same.
            walk = [w for w in after.warnings if w.site.klass is WarnClass.WALK]
            swalk = [w for w in safter.warnings if w.site.klass is WarnClass.WALK]
            assert [w for w in safter.warnings if w not in swalk] == \
                [w for w in after.warnings if w not in walk]
            assert set(walk) <= set(swalk)
            c, sc = _caches(after, hw), _caches(safter, hw)
            assert all(c[a] <= sc[a] for a in c), f"{name}{args} left an entry only the plain step has"
            grew += any(c[a] < sc[a] for a in c)
            ex.fill_all(safter)
            step = Step(before, action, args, r, after)
            sstep = Step(sbefore, action, args, sr, safter)
            assert _violated(ex, after, step) <= _violated(ex, safter, sstep), f"{name}{args}"
            assert _violated(ex, after, None) <= _violated(ex, safter, None), f"{name}{args}"
            checked += 1
    assert checked > 100 and grew > 0, "the premises were checked on too little to mean anything"
    print(f"{design} on {hw}: {checked} steps checked, {grew} with more cache entries after the DMAs")
