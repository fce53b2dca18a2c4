"""Throughput and memory of the exhaustive explorer (checker/explore.py).

For `upstream` on both drivers, at two bound sizes, with and without symmetry
reduction, run the breadth-first search and report: distinct states, transitions
(every enabled action with every argument tuple, in every expanded state), the
depth reached, whether the space was exhausted, distinct states per second,
transitions per second, and the bytes each visited state costs (its 64-bit
fingerprint in the visited set plus its parent pointer and move: what stays in
memory for every state; only the current and the next BFS level keep whole
`Kernel` objects, whose incremental size is reported separately).

    tiny:  devices=1, processes=1, paging_domains=0, iova_pages=1, phys_pages=1, max_pasids=2
           (exhausted with symmetry reduction: the search proves upstream there)
    small: devices=1, processes=1, paging_domains=1, iova_pages=1, phys_pages=1, max_pasids=2
           (stopped at --max-states, default 3000; 15-30 thousand states in all)

Without symmetry reduction every run stops at --max-states: no world is finite
then, since fresh object ids and page-table addresses make new states forever.

With cache saturation (`--saturate-caches`: every DMA done after every step, no
`dma` events) the same worlds are searched again, to exhaustion: the small world
too, which the plain search needs 15-30 thousand states for.

A second table splits the time of one transition into its parts (copy, the
action itself, step invariants, fingerprint = canonical key + hash, state
invariants of new states, argument enumeration), measured on the small world with
symmetry reduction.

Run: python bench/bench_explore.py [MAX_STATES]
"""

from __future__ import annotations

import sys
import time
import tracemalloc
from collections import defaultdict
from typing import Any

from rich.console import Console
from rich.table import Table

from checker.explore import Explorer, explore
from checker.world import Config
from invariants.catalog import CATALOG
from model.actions import ACTIONS
from model.bounds import Bounds
from model.design import UPSTREAM

HW_KINDS = ("vtd", "smmuv3")
BOUNDS = {
    "tiny": Bounds(devices=1, processes=1, paging_domains=0, iova_pages=1, phys_pages=1, max_pasids=2),
    "small": Bounds(devices=1, processes=1, paging_domains=1, iova_pages=1, phys_pages=1, max_pasids=2),
}
MAX_STATES = 3000


def run_one(hw: str, size: str, symmetry: bool, max_states: int, saturate: bool = False) -> dict[str, Any]:
    # Without the reduction no world is finite: every new object id and page-table
    # address is a new state (a process that exits and forks again never repeats).
    limit = None if (size == "tiny" or saturate) and symmetry else max_states
    _, out = explore(UPSTREAM, hw, BOUNDS[size], CATALOG, max_states=limit, symmetry=symmetry,
                     saturate=saturate)
    return {
        "hw": hw, "bounds": size, "symmetry": "on" if symmetry else "off",
        "caches": "saturated" if saturate else "dma events",
        "states": out.states, "transitions": out.transitions, "depth": out.depth,
        "complete": out.complete, "seconds": out.seconds,
        "states/s": out.states / out.seconds, "transitions/s": out.transitions / out.seconds,
        "bytes/state": out.visited_bytes / out.states, "peak frontier": out.peak_frontier,
    }


def kernel_bytes(hw: str) -> float:
    """Bytes one more frontier state costs: a copy shares every immutable value with
    its parent, so this is the per-state dicts and sets (traced with tracemalloc)."""
    k = Config(UPSTREAM, hw, BOUNDS["small"]).build()
    tracemalloc.start()
    copies = [k.copy() for _ in range(200)]
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del copies
    return size / 200


def phases(hw: str, max_states: int) -> tuple[dict[str, float], int, int]:
    """Seconds per part of the search loop (the same steps as Explorer.run, timed)."""
    b = BOUNDS["small"]
    ex = Explorer(Config(UPSTREAM, hw, b), CATALOG, symmetry=True)
    k0 = ex.runner.start()
    ex.prepare(k0)
    t: dict[str, float] = defaultdict(float)
    pc = time.perf_counter
    seen = {ex.fingerprint(k0)}
    frontier = [k0]
    transitions = 0
    while frontier and len(seen) < max_states:
        nxt = []
        for k in frontier:
            k.freeze()
            for action in ACTIONS:
                t0 = pc()
                arg_list = list(action.enabled_args(k, b))
                t["enumerate arguments"] += pc() - t0
                for args in arg_list:
                    t0 = pc()
                    child = k.copy()
                    t1 = pc()
                    result = action.run(child, args)
                    t2 = pc()
                    child.freeze()
                    ex._check_step(k, action, args, result, child)
                    t3 = pc()
                    fp = ex.fingerprint(child)
                    t4 = pc()
                    t["copy"] += t1 - t0
                    t["run the action"] += t2 - t1
                    t["step invariants"] += t3 - t2
                    t["fingerprint"] += t4 - t3
                    transitions += 1
                    if fp in seen:
                        continue
                    seen.add(fp)
                    t0 = pc()
                    ex.runner.check_state(child)
                    t["state invariants (new states)"] += pc() - t0
                    child.thaw()
                    child.warnings = []
                    child.driver.take_hw_log(child)
                    nxt.append(child)
            k.thaw()
        frontier = nxt
    return t, transitions, len(seen)


def main(argv: list[str]) -> None:
    max_states = int(argv[1]) if len(argv) > 1 else MAX_STATES
    console = Console(width=None if sys.stdout.isatty() else 160)
    rows = [run_one(hw, size, sym, max_states, sat)
            for size in BOUNDS for hw in HW_KINDS for sym, sat in ((True, False), (False, False), (True, True))]
    table = Table(title=f"iommucheck explorer, upstream (small with dma events stopped at {max_states:,} states)")
    cols = ("hw", "bounds", "symmetry", "caches", "states", "transitions", "depth", "complete", "seconds",
            "states/s", "transitions/s", "bytes/state")
    for c in cols:
        table.add_column(c, justify="left" if c in ("hw", "bounds", "symmetry", "caches") else "right")
    for r in rows:
        table.add_row(*[
            f"{r[c]:,.0f}" if c in ("states/s", "transitions/s", "bytes/state") else
            f"{r[c]:.1f}" if c == "seconds" else
            f"{r[c]:,}" if isinstance(r[c], int) and not isinstance(r[c], bool) else str(r[c])
            for c in cols
        ])
    console.print(table)
    for hw in HW_KINDS:
        console.print(f"{hw}: one more frontier Kernel costs about {kernel_bytes(hw) / 1024:.1f} KiB")
    for hw in HW_KINDS:
        t, n, states = phases(hw, max_states)
        total = sum(t.values())
        pt = Table(title=f"where a transition's time goes: {hw}, small, symmetry on "
                         f"({n:,} transitions, {states:,} states)")
        for c in ("part", "us per transition", "share"):
            pt.add_column(c, justify="left" if c == "part" else "right")
        for part, sec in sorted(t.items(), key=lambda kv: -kv[1]):
            pt.add_row(part, f"{sec / n * 1e6:.1f}", f"{100 * sec / total:.0f}%")
        pt.add_row("total", f"{total / n * 1e6:.1f}", "100%")
        console.print(pt)


if __name__ == "__main__":
    main(sys.argv)
