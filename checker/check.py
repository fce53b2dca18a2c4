"""Run one check: a (design, hardware, bounds, invariants) configuration through Hypothesis.

Returns a `CheckResult`: the verdict, the shrunk counterexample if any, and how
much was explored. The example database (`.hypothesis/` in the working
directory) is keyed by the configuration, so a failure found once replays first
next time.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Callable

from hypothesis import Verbosity, settings
from hypothesis.stateful import run_state_machine_as_test

from invariants.base import Invariant
from model.design import Design

from checker.machine import InvariantViolated, Stats, make_machine
from checker.trace import Trace
from checker.world import Config


@dataclass
class CheckResult:
    design: str
    hw: str
    invariants: tuple[str, ...]
    trace: Trace | None  # the shrunk counterexample, None if everything held
    examples: int
    steps: int
    seconds: float
    engine: str = "hypothesis"
    complete: bool = True  # the explorer sets False when a limit stopped it
    extra: dict[str, object] = field(default_factory=dict)
    #: further findings of the same configuration (`also_raises`: a model exception
    #: besides the violation in `trace`), each a CheckResult with its own trace
    also: list["CheckResult"] = field(default_factory=list)

    @property
    def violated(self) -> str | None:
        return None if self.trace is None or self.trace.violation is None else self.trace.violation.invariant

    @property
    def findings(self) -> list["CheckResult"]:
        """This result if it found something, then the further findings."""
        return ([self] if self.trace is not None else []) + self.also


def also_raises(result: CheckResult, rerun: Callable[[tuple[Invariant, ...]], CheckResult]) -> CheckResult:
    """A run that finds both a violation and an exception reports both: when `result`
    violates a real invariant, run once more (`rerun`: the same engine and budget) with
    only model-exception detection, and add what it finds to `result.also`. Nothing is
    re-run when the first run held or already found a model exception."""
    from invariants.catalog import get
    from invariants.model_exception import MODEL_EXCEPTION

    if result.violated is None or result.violated == MODEL_EXCEPTION:
        return result
    second = rerun(get([MODEL_EXCEPTION]))
    if second.violated == MODEL_EXCEPTION:
        result.also.append(second)
    return result


def check_hypothesis(
    design: Design,
    hw: str,
    bounds: object,
    invariants: tuple[Invariant, ...],
    profile: str = "ci",
    max_examples: int | None = None,
    seed: int | None = None,
    on_example: Callable[[Stats], None] | None = None,
    database: bool = True,
) -> CheckResult:
    from model.bounds import Bounds

    assert isinstance(bounds, Bounds)
    config = Config(design, hw, bounds)
    stats = Stats(on_example=on_example)
    machine = make_machine(config, invariants, stats)
    # A stable, configuration-specific name: Hypothesis keys its example database on it.
    digest = hashlib.sha1(repr((design, hw, bounds, [i.id for i in invariants])).encode()).hexdigest()[:10]
    machine.__name__ = machine.__qualname__ = f"{machine.__name__}_{digest}"
    if seed is not None:
        machine._hypothesis_internal_use_seed = seed
    s = settings(settings.get_profile(profile), verbosity=Verbosity.quiet)
    if max_examples is not None:
        s = settings(s, max_examples=max_examples)
    if not database:
        s = settings(s, database=None)
    start = time.perf_counter()
    trace = None
    try:
        run_state_machine_as_test(machine, settings=s)
    except InvariantViolated as e:
        trace = e.trace
    return CheckResult(
        design=design.name, hw=hw, invariants=tuple(i.id for i in invariants), trace=trace,
        examples=stats.examples, steps=stats.steps, seconds=time.perf_counter() - start,
    )
