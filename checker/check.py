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

from checker.machine import InvariantViolated, Stats, counterexample, make_machine
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
    time_budget: float | None = None,
) -> CheckResult:
    """Run the sampler (checker/machine.py) for `max_examples` (the profile's by default)
    examples, or until `time_budget` seconds are spent, whichever comes first.

    Without a budget this is one Hypothesis run: with a fixed `seed` it is deterministic.
    With one, the examples run in chunks of CHUNK, each a Hypothesis run with its own seed
    (derived from `seed`, if given), and the clock is read between chunks, so a stop is
    never a failure or an error to Hypothesis; the budget is exceeded by at most one
    chunk. (Not a clock read inside the machine: an example that behaves differently
    when run again is an error to Hypothesis, FlakyStrategyDefinition.)"""
    from model.bounds import Bounds

    assert isinstance(bounds, Bounds)
    config = Config(design, hw, bounds)
    stats = Stats(on_example=on_example)
    s = settings(settings.get_profile(profile), verbosity=Verbosity.quiet)
    if not database:
        s = settings(s, database=None)
    total = max_examples if max_examples is not None else s.max_examples
    start = time.perf_counter()
    deadline = None if time_budget is None else time.monotonic() + time_budget
    # A stable, configuration-specific name: Hypothesis keys its example database on it.
    digest = hashlib.sha1(repr((design, hw, bounds, [i.id for i in invariants])).encode()).hexdigest()[:10]
    failure: InvariantViolated | None = None
    chunk = 0
    while failure is None and stats.examples < total:
        if deadline is not None and time.monotonic() >= deadline:
            break
        n = total - stats.examples if deadline is None else min(CHUNK, total - stats.examples)
        machine = make_machine(config, invariants, stats)
        machine.__name__ = machine.__qualname__ = f"{machine.__name__}_{digest}"
        if seed is not None:
            machine._hypothesis_internal_use_seed = seed if deadline is None else _chunk_seed(seed, chunk)
        before = stats.examples
        try:
            run_state_machine_as_test(machine, settings=settings(s, max_examples=n))
        except InvariantViolated as e:
            failure = e
        chunk += 1
        if deadline is None or stats.examples == before:
            break  # one run without a budget; with one, a chunk that ran nothing is the end
    trace = None if failure is None else counterexample(config, invariants, failure)
    stats.last_failure = trace
    return CheckResult(
        design=design.name, hw=hw, invariants=tuple(i.id for i in invariants), trace=trace,
        examples=stats.examples, steps=stats.steps, seconds=time.perf_counter() - start,
        extra={} if stats.first_failure_example is None
        else {"first_failure_example": stats.first_failure_example},
    )


#: examples per Hypothesis run when a time budget is set (the clock is read between runs)
CHUNK = 10


def _chunk_seed(seed: int, chunk: int) -> int:
    """The seed of one chunk of a budgeted run: fixed by (seed, chunk), different per chunk."""
    return int(hashlib.sha1(f"{seed}:{chunk}".encode()).hexdigest()[:12], 16)
