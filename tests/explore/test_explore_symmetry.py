"""Soundness of the symmetry reduction.

Three checks, from the end result down to the argument it rests on:

1. The reduced search reaches a violation exactly when the full search (the
   model's own `Kernel.key()`, nothing renamed) does, at the same depth and on
   the same invariant, on breaking and holding designs; it visits fewer states.
2. States the reduction merges are interchangeable: the same state verdicts and,
   one step on, the same successors (canonically) with the same step verdicts.
   By induction on depth this is what makes (1) hold for any depth.
3. `Kernel.canonical_key` leaves nothing of `key()` out: with a renaming that
   renames nothing it tells apart exactly the states `key()` tells apart (up to
   `next_id` and the page allocator, which the reduction drops on purpose).
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Callable

import pytest

from checker.explore import Explorer, IdentityNames, check_explore
from checker.world import Config
from invariants.base import Invariant
from invariants.catalog import CATALOG
from model.actions import ACTIONS
from model.bounds import Bounds
from model.core import Kernel
from model.designs import get_design

#: Two processes and two physical pages, so that mm ids, page-table roots and data
#: pages have something to be renamed to.
RENAMING = Bounds(devices=1, processes=2, paging_domains=1, iova_pages=1, phys_pages=2, max_pasids=3)
SMALL = Bounds(devices=1, processes=1, paging_domains=1, iova_pages=1, phys_pages=1, max_pasids=2)
#: leaf table pages (bound walk_caches) with two domains and a process: table pages that
#: are freed and reused by another table, and roots that outlive their domains
WALK = Bounds(devices=1, processes=1, paging_domains=2, iova_pages=1, phys_pages=1, max_pasids=2,
              walk_caches=True)

# design, hw, bounds, depth limit (beyond the shortest counterexample where there is one)
AGREE = [
    ("upstream", "vtd", RENAMING, 4),
    ("upstream", "smmuv3", RENAMING, 4),
    ("aux-2018", "vtd", SMALL, 6),
    ("notifier-kfree-early", "vtd", RENAMING, 6),
    ("pasid-freed-at-mm-exit", "smmuv3", RENAMING, 6),
    ("set-dev-pasid-blocking-2022", "smmuv3", SMALL, 6),
    ("smmu-detach-no-atc-inv", "smmuv3", SMALL, 6),
    ("vtd-teardown-no-devtlb-flush", "vtd", SMALL, 8),
    ("upstream", "vtd", WALK, 5),
    ("vtd-tlb-sync-ih-with-freelist", "vtd", WALK, 7),
]
COUNTS: dict[str, tuple[int, int]] = {}
#: the `reachable` fixture (tests/explore/conftest.py)
Reachable = Callable[[Explorer, int], list[Kernel]]


@pytest.mark.parametrize("design,hw,bounds,depth", AGREE, ids=[f"{d}-{h}" for d, h, _, _ in AGREE])
def test_reduced_search_agrees_with_full_search(design: str, hw: str, bounds: Bounds, depth: int) -> None:
    d = get_design(design)
    full = check_explore(d, hw, bounds, CATALOG, depth=depth, symmetry=False)
    reduced = check_explore(d, hw, bounds, CATALOG, depth=depth, symmetry=True)
    COUNTS[f"{design} on {hw}"] = (full.examples, reduced.examples)
    print(f"{design} on {hw}: full {full.extra['summary']}; reduced {reduced.extra['summary']}")
    assert reduced.violated == full.violated
    if full.trace is None:
        assert reduced.trace is None
        assert reduced.examples <= full.examples
    else:
        assert reduced.trace is not None
        assert len(reduced.trace) == len(full.trace)
        assert reduced.examples <= full.examples


def _state_verdict(runner_invariants: tuple[Invariant, ...], k: Kernel, b: Bounds) -> tuple[str, ...]:
    k.freeze()
    return tuple(i.id for i in runner_invariants if i.check_state is not None and i.check_state(k, b))


def _successors(ex: Explorer, reduced: Explorer, k: Kernel) -> frozenset[tuple[int, str | None]]:
    """(canonical fingerprint of the successor, step invariant it breaks) for every move."""
    b = ex.bounds
    out = set()
    k.freeze()
    for action in ACTIONS:
        for args in action.enabled_args(k, b):
            child = k.copy()
            result = action.run(child, args)
            child.freeze()
            v = next(iter(ex._step_violations(k, action, args, result, child,
                                                  list(ex.step_invariants), False)), None)
            out.add((reduced.fingerprint(child), None if v is None else v.invariant))
    return frozenset(out)


def _keys(ex: Explorer, k: Kernel) -> set[Any]:
    """The canonical keys of k under every ordering of its tie groups."""
    key, ties = ex._key(k, ())
    out = {key}
    for choice in itertools.product(*(range(math.factorial(n)) for n in ties)):
        out.add(ex._key(k, choice)[0])
    return out


def _reduced_explorer(design: str, hw: str, b: Bounds) -> Explorer:
    ex = Explorer(Config(get_design(design), hw, b), CATALOG, symmetry=True)
    k0 = ex.runner.start()
    ex.prepare(k0)
    return ex


@pytest.mark.parametrize("design,hw,depth,b", [
    ("upstream", "vtd", 4, RENAMING),
    ("upstream", "smmuv3", 4, RENAMING),
    ("smmu-detach-no-atc-inv", "smmuv3", 5, RENAMING),
    ("pasid-freed-at-mm-exit", "vtd", 4, RENAMING),
    ("upstream", "vtd", 4, WALK),
    ("vtd-tlb-sync-ih-with-freelist", "vtd", 5, WALK),
    ("smmu-flush-walk-leaf", "smmuv3", 5, WALK),
], ids=lambda x: x if isinstance(x, (str, int)) else "")
def test_merged_states_are_interchangeable(design: str, hw: str, depth: int, b: Bounds,
                                           reachable: Reachable) -> None:
    full = Explorer(Config(get_design(design), hw, b), CATALOG, symmetry=False)
    reduced = _reduced_explorer(design, hw, b)
    classes: dict[int, list[Kernel]] = {}
    for k in reachable(full, depth):
        classes.setdefault(reduced.fingerprint(k), []).append(k)
    merged = [ks for ks in classes.values() if len(ks) > 1]
    assert merged, "nothing was merged: the test would prove nothing"
    invs = full.runner.invariants
    pairs = 0
    for ks in merged:
        first, *rest = ks
        verdict = _state_verdict(invs, first, b)
        succ = _successors(full, reduced, first)
        keys = _keys(reduced, first)
        for k in rest:
            pairs += 1
            # The keys themselves meet, not only their hashes (a systematic hash
            # collision would merge states and their successors alike).
            assert keys & _keys(reduced, k)
            assert _state_verdict(invs, k, b) == verdict
            assert _successors(full, reduced, k) == succ
    print(f"{design} on {hw}: {sum(len(ks) for ks in classes.values())} states in {len(classes)} classes, "
          f"{pairs} merged pairs checked")


def _identity_key(k: Kernel) -> tuple[Any, ...]:
    return (k.canonical_key(IdentityNames(k.mem.pagetables)), k.next_id, frozenset(k.mem.allocated))


@pytest.mark.parametrize("design,hw", [("upstream", "vtd"), ("upstream", "smmuv3"),
                                       ("vtd-teardown-no-devtlb-flush", "vtd"),
                                       ("set-dev-pasid-blocking-2022", "smmuv3")])
def test_canonical_key_covers_everything_key_covers(design: str, hw: str, reachable: Reachable) -> None:
    ex = Explorer(Config(get_design(design), hw, RENAMING), CATALOG, symmetry=False)
    states = reachable(ex, 4)
    keys = [k.key() for k in states]
    idents = [_identity_key(k) for k in states]
    assert len(set(keys)) == len(states)
    assert len(set(idents)) == len(set(zip(keys, idents))) == len(states)
