"""Throughput of the model: a fixed pseudo-random call sequence per driver.

For each hardware kind, boot the upstream world (`checker.world.Config` with
default `Bounds`), then replay N = 20000 calls chosen with `random.Random(1234)`:
at each step the enabled actions of `model.actions.ACTIONS` (those with at
least one argument tuple in `enabled_args`), one of them uniformly, then one of
its argument tuples uniformly. `module_unload` is left out: after it only DMA
events remain possible, and the rest of the run would measure nothing else.

Reported per driver: calls replayed, seconds spent inside the calls
(`Action.run`), calls per second, the wall time of the whole replay (argument
enumeration included), and the mean cost in microseconds of `Kernel.copy()`
and `Kernel.key()` on the final state (timeit).

Run: python bench/bench_calls.py [N]
"""

from __future__ import annotations

import random
import sys
import time
import timeit
from collections import Counter
from typing import Any

from checker.world import Config
from model.actions import ACTIONS
from model.bounds import Bounds
from model.design import UPSTREAM

SEED = 1234
N = 20000
HW_KINDS = ("vtd", "smmuv3")
SKIPPED = frozenset({"module_unload"})
BENCH_ACTIONS = tuple(a for a in ACTIONS if a.name not in SKIPPED)


def replay(hw: str, n: int, seed: int = SEED) -> dict[str, Any]:
    b = Bounds()
    k = Config(UPSTREAM, hw, b).build()
    rng = random.Random(seed)
    in_calls = 0.0
    per_action: Counter[str] = Counter()
    wall0 = time.perf_counter()
    for _ in range(n):
        choices = []
        for a in BENCH_ACTIONS:
            args = list(a.enabled_args(k, b))
            if args:
                choices.append((a, args))
        action, arg_list = choices[rng.randrange(len(choices))]
        args = arg_list[rng.randrange(len(arg_list))]
        t0 = time.perf_counter()
        action.run(k, args)
        in_calls += time.perf_counter() - t0
        per_action[action.name] += 1
    wall = time.perf_counter() - wall0
    k.driver.take_hw_log(k)  # drop the history the run accumulated (not state)
    reps = 2000
    copy_us = timeit.timeit(k.copy, number=reps) / reps * 1e6
    key_us = timeit.timeit(k.key, number=reps) / reps * 1e6
    return {
        "driver": hw, "calls": n, "seconds": in_calls, "rate": n / in_calls, "wall": wall,
        "copy_us": copy_us, "key_us": key_us, "warnings": len(k.warnings),
        "top": per_action.most_common(3),
    }


def render(rows: list[dict[str, Any]]) -> None:
    headers = ("driver", "calls", "seconds", "calls/s", "wall s", "copy() us", "key() us")
    cells = [(r["driver"], f"{r['calls']}", f"{r['seconds']:.2f}", f"{r['rate']:,.0f}",
              f"{r['wall']:.2f}", f"{r['copy_us']:.1f}", f"{r['key_us']:.1f}") for r in rows]
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
        print("  ".join(h.rjust(w) for h, w in zip(headers, widths)))
        for c in cells:
            print("  ".join(v.rjust(w) for v, w in zip(c, widths)))
        return
    table = Table(title=f"iommucheck call throughput (seed {SEED}, upstream design, default bounds)")
    for h in headers:
        table.add_column(h, justify="left" if h == "driver" else "right")
    for c in cells:
        table.add_row(*c)
    Console().print(table)


def main(argv: list[str]) -> int:
    n = int(argv[1]) if len(argv) > 1 else N
    rows = [replay(hw, n) for hw in HW_KINDS]
    render(rows)
    for r in rows:
        top = ", ".join(f"{name} x{c}" for name, c in r["top"])
        print(f"{r['driver']}: most frequent {top}; {r['warnings']} WARN events recorded")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
