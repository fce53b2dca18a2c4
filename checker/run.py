"""One step of any engine: run an action, record it, check the invariants.

The Hypothesis machine, the explorer and `replay` all go through `Runner`, so a
counterexample found by one engine replays identically in the others.

A Python exception inside the model (the kernel, a driver, a design file's
driver) or inside an invariant's check is a finding too: `step` and
`check_state` return it as a violation of `model-exception`
(invariants/model_exception.py), with the innermost model frames as evidence,
whatever invariants were selected. The kernel is then the partially mutated
state the exception left. `Exception` and `SystemExit` are caught
(invariants/model_exception.py MODEL_ERRORS: a driver step calling sys.exit(0)
must not end a check as a silent success); KeyboardInterrupt propagates.
"""

from __future__ import annotations

from typing import Any

from invariants.base import Invariant, Step, Violation
from invariants.model_exception import MODEL_ERRORS, describe, model_exception
from model.actions import Action, Args, show_call
from model.core import Kernel

from checker.trace import Trace, TraceStep, record_step
from checker.world import Config, ConfigError


class BootRaised(Exception):
    """Booting the world (probe, default domains, binding the DMA-API drivers) raised:
    a model-exception finding with no calls before it (`trace()`)."""

    def __init__(self, config: Config, violation: Violation) -> None:
        super().__init__(violation.message)
        self.config = config
        self.violation = violation

    def trace(self) -> Trace:
        c = self.config
        return Trace(c.design.name, c.hw, c.bounds, violation=self.violation)


class Runner:
    def __init__(self, config: Config, invariants: tuple[Invariant, ...]) -> None:
        self.config = config
        self.invariants = tuple(i for i in invariants if i.applies(config.hw))

    def start(self) -> Kernel:
        """The booted world; BootRaised if the model raises while booting it."""
        try:
            k = self.config.build()
            k.driver.take_hw_log(k)  # boot-time programming is not part of any trace
        except ConfigError:
            raise
        except MODEL_ERRORS as e:
            raise BootRaised(self.config, model_exception("booting the world", e)) from e
        return k

    def check_state(self, k: Kernel) -> Violation | None:
        k.freeze()
        for inv in self.invariants:
            try:
                v = inv.check(None, k, self.config.bounds)
            except MODEL_ERRORS as e:
                return model_exception(f"invariant {inv.id} checking the state", e)
            if v is not None:
                return v
        return None

    def step(self, k: Kernel, action: Action, args: Args) -> tuple[TraceStep, Any, Violation | None]:
        """Run `action(args)` on k in place; return the recorded step, its result and a violation."""
        k.thaw()
        before = k.copy()
        try:
            result = action.run(k, args)
        except MODEL_ERRORS as e:
            return self._raised(before, k, action, args, e)
        step = Step(before, action, args, result, k)
        k.freeze()
        before.freeze()
        # The invariants run before the step is recorded: recording takes the hardware
        # log, which step invariants read (what a step sent is the log beyond before's).
        found: Violation | None = None
        failed: tuple[str, BaseException] | None = None
        for inv in self.invariants:
            try:
                found = inv.check(step, k, self.config.bounds)
            except MODEL_ERRORS as e:
                failed = (inv.id, e)
                break
            if found is not None:
                break
        try:
            ts = record_step(before, k, action, args, result)
        except MODEL_ERRORS as e:
            return self._raised(before, k, action, args, e)
        if failed is not None:
            return ts, result, model_exception(f"invariant {failed[0]} checking {ts.text}", failed[1])
        return ts, result, found

    def _raised(self, before: Kernel, k: Kernel, action: Action, args: Args, e: BaseException
                ) -> tuple[TraceStep, Any, Violation]:
        call = show_call(k, action, args, None)
        try:
            hw = k.driver.take_hw_log(k)
        except MODEL_ERRORS:
            hw = []
        ts = TraceStep(action.name, tuple(args), f"{call} raised {describe(e)}", hw=hw,
                       warnings=k.warnings[len(before.warnings):])
        k.freeze()
        before.freeze()
        return ts, None, model_exception(call, e)

    @staticmethod
    def dump(k: Kernel) -> list[str]:
        """The driver's decoded tables and caches (a line saying so if the dump raises:
        the state may be what an exception left)."""
        try:
            return k.driver.dump(k)
        except MODEL_ERRORS as e:
            return [f"(the hardware dump raised {describe(e)})"]
