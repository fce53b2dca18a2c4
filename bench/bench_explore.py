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

A third table runs the explorer of an earlier commit (BASELINE, f1d28fc: before the
parallel search) on the same saturated worlds in the same run, from a temporary git
worktree in a subprocess, beside today's explorer with one worker and with every
core (checker/parallel.py), and prints the ratios of transitions/s and of the time
to exhaust (or to reach the depth given): a speed-up measured side by side, not two
figures from different days. The two-device world is searched to depth 7 there
(it is not exhausted in minutes). Memory: bytes per visited state (fingerprint,
parent pointer, move) and per frontier state (a Kernel copy), with the bound for N
states.

Run: python bench/bench_explore.py [MAX_STATES] [--baseline-only] [--baseline=REV]
(REV: the commit to compare with, f1d28fc by default; f78880a is the end of the
session before the walk memo)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
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
BASELINE = "f1d28fc"
#: the side-by-side worlds: (name, bounds text, depth limit or None: exhaust)
SIDE_BY_SIDE = (
    ("small, 1 device", "devices=1,processes=1,paging_domains=1,iova_pages=1,phys_pages=1,max_pasids=2", None),
    ("small, 2 devices", "devices=2,processes=1,paging_domains=1,iova_pages=1,phys_pages=1,max_pasids=2", 7),
)
ROOT = Path(__file__).resolve().parents[1]

#: run in a subprocess with PYTHONPATH at a checkout: the explorer there, saturated
_SEARCH = """
import json, sys, time
from checker.explore import explore
from invariants.catalog import CATALOG
from model.bounds import Bounds
from model.design import UPSTREAM
hw, text, depth, workers = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4])
kw = {"workers": workers} if workers > 1 else {}
t = time.perf_counter()
_, out = explore(UPSTREAM, hw, Bounds.parse(text), tuple(CATALOG), depth=depth, saturate=True, **kw)
print(json.dumps({"states": out.states, "transitions": out.transitions, "depth": out.depth,
                  "complete": out.complete, "seconds": time.perf_counter() - t}))
"""


def search_at(checkout: Path, hw: str, text: str, depth: int | None, workers: int = 1) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    done = subprocess.run([sys.executable, "-c", _SEARCH, hw, text, json.dumps(depth), str(workers)],
                          env=env, capture_output=True, text=True, check=True, cwd=checkout)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def side_by_side(console: Console, baseline: str = BASELINE) -> None:
    """Today's explorer (1 worker, every core) against `baseline`'s, in one run."""
    BASELINE = baseline  # noqa: N806  (the table's column names follow the revision)
    workers = max(1, len(os.sched_getaffinity(0)))
    with tempfile.TemporaryDirectory(prefix="iommucheck-baseline-") as tmp:
        base = Path(tmp) / BASELINE
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(base), BASELINE],
                       check=True)
        try:
            table = Table(title=f"explorer side by side, upstream, saturated: {BASELINE} and now "
                                f"(1 worker, {workers} workers), one run")
            for c in ("hw", "world", "states", "depth", f"{BASELINE} s", "now s", f"now {workers}w s",
                      f"{BASELINE} tr/s", "now tr/s", f"now {workers}w tr/s", "speed-up 1w", f"speed-up {workers}w"):
                table.add_column(c, justify="left" if c in ("hw", "world") else "right")
            for hw in HW_KINDS:
                for name, text, depth in SIDE_BY_SIDE:
                    old = search_at(base, hw, text, depth)
                    one = search_at(ROOT, hw, text, depth)
                    many = search_at(ROOT, hw, text, depth, workers)
                    assert old["states"] == one["states"] == many["states"], (old, one, many)
                    rate = [r["transitions"] / r["seconds"] for r in (old, one, many)]
                    table.add_row(hw, name + ("" if depth is None else f" (depth {depth})"),
                                  f"{one['states']:,}", str(one["depth"]),
                                  *(f"{r['seconds']:.1f}" for r in (old, one, many)),
                                  *(f"{x:,.0f}" for x in rate),
                                  f"{old['seconds'] / one['seconds']:.2f}x",
                                  f"{old['seconds'] / many['seconds']:.2f}x")
            console.print(table)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], check=False)


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
                    ex._step_violations(k, action, args, result, child, list(ex.step_invariants), False)
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
    console = Console(width=None if sys.stdout.isatty() else 200)
    revs = [a.split("=", 1)[1] for a in argv if a.startswith("--baseline=")]
    side_by_side(console, revs[0] if revs else BASELINE)
    if "--baseline-only" in argv:
        return
    argv = [a for a in argv if not a.startswith("--")]
    max_states = int(argv[1]) if len(argv) > 1 else MAX_STATES
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
        per = kernel_bytes(hw)
        visited = [r["bytes/state"] for r in rows if r["hw"] == hw and r["caches"] == "saturated"]
        console.print(f"{hw}: one more frontier Kernel costs about {per / 1024:.1f} KiB; a visited "
                      f"state {max(visited):,.0f} bytes: N states need about N x {max(visited):,.0f} "
                      f"bytes plus the two largest levels x {per / 1024:.1f} KiB")
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
