"""Time of the default `iommucheck check` per design and hardware kind, by part.

    python bench/bench_portfolio.py                  # every built-in design, both drivers
    python bench/bench_portfolio.py upstream pasid-per-rid --hw vtd

Prints, per (design, hardware): the seconds of each part of the portfolio (the
ladder's worlds, the design's own world, the search at the default bounds, the
sampling), the total, and whether every expected break was found; then the totals
per hardware kind (what `iommucheck check --design all --hw H` costs). The budget
counts work, so the verdicts are the same on every machine; only these times vary.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from checker.portfolio import STANDARD, run_portfolio  # noqa: E402
from invariants.catalog import CATALOG  # noqa: E402
from model.bounds import Bounds  # noqa: E402
from model.designs import DESIGNS  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("designs", nargs="*", help="default: every built-in design")
    ap.add_argument("--hw", choices=("vtd", "smmuv3"), action="append")
    args = ap.parse_args()
    names = args.designs or list(DESIGNS)
    hws = args.hw or ["vtd", "smmuv3"]
    totals: dict[str, float] = {h: 0.0 for h in hws}
    print(f"budget: {STANDARD.describe()}")
    print(f"{'design':34} {'hw':6} {'worlds':>7} {'own':>6} {'search':>7} {'sample':>7} {'total':>7}  found")
    for name in names:
        d = DESIGNS[name]
        for hw in hws:
            if hw not in d.hw:
                continue
            t0 = time.perf_counter()
            r = run_portfolio(d, hw, Bounds(), CATALOG, budget=STANDARD, database=False)
            total = time.perf_counter() - t0
            totals[hw] += total
            by: dict[str, float] = {"world": 0.0, "own": 0.0, "search": 0.0, "sample": 0.0}
            for p in r.parts:
                key = "own" if p.kind == "world" and p.name not in STANDARD.worlds else p.kind
                by[key] += p.seconds
            expected = set(d.breaks_on(hw))
            found = {f.violated for f in r.findings}
            said = ("holds" if not expected and not found else
                    f"{len(expected & found)}/{len(expected)} expected" + (f", +{len(found - expected)}" if found - expected else ""))
            print(f"{name:34} {hw:6} {by['world']:7.1f} {by['own']:6.1f} {by['search']:7.1f} "
                  f"{by['sample']:7.1f} {total:7.1f}  {said}", flush=True)
    for hw, t in totals.items():
        print(f"total {hw}: {t:.0f} s")


if __name__ == "__main__":
    main()
