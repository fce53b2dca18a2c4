"""How often the Hypothesis sampler finds each built-in design's expected break.

For every built-in design and every hardware kind it is expected to break
(`Design.breaks_on(hw)`), at the default `Bounds` overridden by the design's own
`check_bounds`, with every invariant of the catalog, run `check_hypothesis` with the
given profile (default `ci`) for seeds 1..5 and no example database. A run counts as
found when it reports one of the invariants the design is expected to break.

Printed per (design, hw): found k/5, the first found run's invariant, the examples to
the first failure (per seed; "-" for a miss), the seconds (per run: finding,
minimising and building the trace) and any violation outside the design's expected
breaks (a run that reports one counts as a miss), then the totals, with the old one-rule-per-action
machine's figure for comparison (43 of 100 runs with its `ci` profile, issue #13).

Run: PYTHONPATH=. python bench/bench_findrate.py [--profile ci|deep] [--seeds 1,2,3,4,5]
                                                 [--design NAME] [--budget SECONDS]
"""

from __future__ import annotations

import argparse
import sys
import time

from checker.check import check_hypothesis
from invariants.catalog import CATALOG
from model.bounds import Bounds
from model.designs import DESIGNS

OLD_FIGURE = "43 of 100 runs (old machine, ci: 60 examples x 25 rules, issue #13)"


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="ci")
    p.add_argument("--seeds", default="1,2,3,4,5")
    p.add_argument("--design", action="append", help="only these designs (repeatable)")
    p.add_argument("--budget", type=float, default=None, help="time_budget per run (seconds)")
    a = p.parse_args(argv[1:])
    seeds = [int(s) for s in a.seeds.split(",")]
    cells = [(d, hw) for d in DESIGNS.values() for hw in d.hw if d.breaks_on(hw)
             and (not a.design or d.name in a.design)]
    print(f"profile {a.profile}, seeds {seeds}, {len(cells)} expected breaks"
          + (f", time budget {a.budget:g} s a run" if a.budget else ""))
    head = f"{'design':36} {'hw':7} {'found':6} {'invariant':32} {'examples to 1st failure':24} seconds"
    print(head)
    print("-" * len(head))
    found_runs = runs = 0
    cells_found = 0
    start = time.perf_counter()
    for d, hw in cells:
        b = Bounds().override(d.check_bounds)
        expected = set(d.breaks_on(hw))
        hits = 0
        first_inv = "-"
        firsts: list[str] = []
        secs: list[str] = []
        others: set[str] = set()  # violations outside the design's expected breaks
        for seed in seeds:
            r = check_hypothesis(d, hw, b, CATALOG, profile=a.profile, seed=seed, database=False,
                                 time_budget=a.budget)
            runs += 1
            ok = r.violated in expected
            hits += ok
            if ok and first_inv == "-":
                first_inv = r.violated or "-"
            first = r.extra.get("first_failure_example")
            firsts.append(str(first) if ok and first is not None else "-")
            secs.append(f"{r.seconds:.1f}")
            if r.violated is not None and not ok:
                others.add(r.violated)
        found_runs += hits
        cells_found += hits > 0
        print(f"{d.name:36} {hw:7} {hits}/{len(seeds):<4} {first_inv:32} {' '.join(firsts):24} "
              f"{' '.join(secs)}" + "".join(f"  (other: {o})" for o in sorted(others)), flush=True)
    print("-" * len(head))
    print(f"found in {found_runs} of {runs} runs; {cells_found} of {len(cells)} breaks found by "
          f"at least one seed; {time.perf_counter() - start:.0f} s in all")
    print(f"for comparison: {OLD_FIGURE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
