"""Hypothesis steps per second of the upstream machine, per driver.

For each hardware kind, run the stateful machine (`checker.check.check_hypothesis`)
for the `upstream` design with default `Bounds`, every invariant of the catalog,
the `ci` profile, a fixed seed and no example database (so that every run
generates afresh). Then the same with no invariant at all, which separates the
cost of the model's calls and Hypothesis's generation from the cost of checking
the invariants after every step.

Reported per driver and invariant set: examples (test cases), steps (rules run),
seconds, steps per second and milliseconds per step. Hypothesis's own overhead
(drawing, swarm testing, shrinking is not reached since nothing fails) is
included: these are the figures a user sees from `iommucheck check`.

Run: python bench/bench_machine.py [MAX_EXAMPLES]   (default 60, the ci profile)
"""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from checker.check import check_hypothesis
from invariants.catalog import CATALOG
from model.bounds import Bounds
from model.design import UPSTREAM

HW_KINDS = ("vtd", "smmuv3")
SEED = 1234


def measure(hw: str, with_invariants: bool, max_examples: int) -> dict[str, Any]:
    invariants = CATALOG if with_invariants else ()
    r = check_hypothesis(UPSTREAM, hw, Bounds(), invariants, profile="ci",
                         max_examples=max_examples, seed=SEED, database=False)
    if r.violated is not None:  # upstream is expected to hold: a failure is news
        raise SystemExit(f"upstream violated {r.violated} on {hw}: run `iommucheck check`")
    return {
        "driver": hw,
        "invariants": len(invariants),
        "examples": r.examples,
        "steps": r.steps,
        "seconds": r.seconds,
        "steps/s": r.steps / r.seconds if r.seconds else 0.0,
        "ms/step": 1000 * r.seconds / r.steps if r.steps else 0.0,
    }


def main(argv: list[str]) -> int:
    max_examples = int(argv[1]) if len(argv) > 1 else 60
    rows = [measure(hw, inv, max_examples) for hw in HW_KINDS for inv in (True, False)]
    table = Table(title=f"upstream machine, ci profile, max_examples={max_examples}, seed {SEED}")
    for h in ("driver", "invariants", "examples", "steps", "seconds", "steps/s", "ms/step"):
        table.add_column(h, justify="right")
    for r in rows:
        table.add_row(r["driver"], str(r["invariants"]), str(r["examples"]), str(r["steps"]),
                      f"{r['seconds']:.1f}", f"{r['steps/s']:.0f}", f"{r['ms/step']:.2f}")
    Console().print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
