"""Counterexamples as kernel calls: a call script whose arguments may name earlier results.

A z3 counterexample speaks of abstract processes and devices; the model allocates
object ids (mm, domain, SVA handle) deterministically but we do not want to guess
them. A `Script` step's argument may be `Ref(i)`, "the object step i returned";
`replay` runs the script step by step on the model (checker.run.Runner), resolves
every reference, drops steps the model does not allow at that point (an event
with nothing to do), and then replays the concrete calls through the official
`checker.replay.run_calls`, so what a proof reports is exactly what
`iommucheck replay` would show.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from invariants.catalog import get as get_invariants
from model.actions import ACTIONS_BY_NAME
from model.bounds import Bounds
from model.core import Kernel
from model.designs import get_design

from checker.replay import ReplayResult, replay_data, run_calls
from checker.run import Runner
from checker.world import Config


@dataclass(frozen=True)
class Ref:
    """The object returned by step `index` (0-based) of the same script."""

    index: int


Step = tuple[str, tuple[Any, ...]]


def resolve(design: str, hw: str, script: Sequence[tuple[str, tuple[Any, ...]]],
            bounds: Bounds | None = None) -> tuple[list[Step], Kernel]:
    """Run the script on the model: the calls with every `Ref` replaced by the real id, and
    the kernel in its final state (for reading ids, DIDs and tables back)."""
    b = bounds or Bounds()
    runner = Runner(Config(get_design(design), hw, b), get_invariants([]))
    k = runner.start()
    results: list[Any] = []
    concrete: list[Step] = []
    for name, args in script:
        real = tuple(results[a.index] if isinstance(a, Ref) else a for a in args)
        action = ACTIONS_BY_NAME[name]
        if not action.possible(k) or not action.requires(k, b, real):
            results.append(None)  # e.g. no deferred callback pending: nothing to run
            continue
        _, result, _ = runner.step(k, action, real)
        results.append(result)
        concrete.append((name, real))
    return concrete, k


def replay(design: str, hw: str, script: Sequence[tuple[str, tuple[Any, ...]]],
           bounds: Bounds | None = None, invariants: Sequence[str] | None = None
           ) -> tuple[list[Step], ReplayResult, Kernel]:
    """The concrete calls, their replay on the model (every invariant checked, or only
    `invariants`), and the kernel after running them."""
    steps, k = resolve(design, hw, script, bounds)
    if invariants is None:
        return steps, run_calls(design, hw, steps, bounds), k
    b = bounds or Bounds()
    data = {"design": design, "hw": hw,
            "bounds": {f: getattr(b, f) for f in b.__dataclass_fields__},
            "steps": [{"action": a, "args": list(args)} for a, args in steps]}
    return steps, replay_data(data, invariants=list(invariants)), k


def listing(result: ReplayResult) -> list[str]:
    """The replayed calls as the trace lists them, then the violation if there is one."""
    out = [f"kernel calls (design {result.trace.design}, {result.trace.hw}):"]
    out += ["  " + line for line in result.trace.listing(with_hw=False)]
    v = result.violation
    out.append(f"  -> violates {v.invariant}: {v.message}" if v is not None
               else "  -> no invariant violated by this replay")
    return out
