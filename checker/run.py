"""One step of any engine: run an action, record it, check the invariants.

The Hypothesis machine, the explorer and `replay` all go through `Runner`, so a
counterexample found by one engine replays identically in the others.
"""

from __future__ import annotations

from typing import Any

from invariants.base import Invariant, Step, Violation
from model.actions import Action, Args
from model.core import Kernel

from checker.trace import TraceStep, record_step
from checker.world import Config


class Runner:
    def __init__(self, config: Config, invariants: tuple[Invariant, ...]) -> None:
        self.config = config
        self.invariants = tuple(i for i in invariants if i.applies(config.hw))

    def start(self) -> Kernel:
        k = self.config.build()
        k.driver.take_hw_log(k)  # boot-time programming is not part of any trace
        return k

    def check_state(self, k: Kernel) -> Violation | None:
        k.freeze()
        for inv in self.invariants:
            v = inv.check(None, k, self.config.bounds)
            if v is not None:
                return v
        return None

    def step(self, k: Kernel, action: Action, args: Args) -> tuple[TraceStep, Any, Violation | None]:
        """Run `action(args)` on k in place; return the recorded step, its result and a violation."""
        k.thaw()
        before = k.copy()
        result = action.run(k, args)
        ts = record_step(before, k, action, args, result)
        step = Step(before, action, args, result, k)
        k.freeze()
        before.freeze()
        for inv in self.invariants:
            v = inv.check(step, k, self.config.bounds)
            if v is not None:
                return ts, result, v
        return ts, result, None
