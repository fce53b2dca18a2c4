"""The Hypothesis state machine, generated from the action table.

One rule per `model.actions.Action`. Objects with a lifetime live in Bundles:
paging domains (`iommu_paging_domain_alloc` targets it, `iommu_domain_free`
consumes it), processes (`mm_alloc` / `process_exit`) and SVA handles
(`iommu_sva_bind_device` / `iommu_sva_unbind_device`: binding twice puts the
same handle in the bundle twice, so consumption mirrors the refcount). Plain
values (devices, PASIDs, IOVAs) are drawn from the current state with
`st.data()`, restricted to what a correct caller may pass (`Action.requires`).
Every invariant is checked after every step; a violation raises
`InvariantViolated`, which Hypothesis shrinks to a minimal run. A Python exception
inside the model is a violation of `model-exception` (see checker/run.py), shrunk
the same way to a call sequence ending in the raising call; while shrinking, only
runs failing with the same invariant (for an exception: the same exception type)
count as failing.

    from checker.machine import machine_test_case
    TestUpstreamVtd = machine_test_case("upstream", "vtd")   # a unittest.TestCase
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import hypothesis.strategies as st
from hypothesis import HealthCheck, reject, settings
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    multiple,
    precondition,
    rule,
)

from invariants.base import Invariant, Violation
from invariants.model_exception import finding_key
from model.actions import ACTIONS, BUNDLE_KINDS, Action, Kind, values
from model.objects import ErrPtr

from checker.run import BootRaised, Runner
from checker.trace import Trace, TraceStep
from checker.world import Config

# -- settings profiles ------------------------------------------------------------
_COMMON = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                           HealthCheck.data_too_large],
)
settings.register_profile("ci", max_examples=60, stateful_step_count=25, **_COMMON)  # type: ignore[arg-type]
settings.register_profile("deep", max_examples=2000, stateful_step_count=60, **_COMMON)  # type: ignore[arg-type]
PROFILES = ("ci", "deep")


class InvariantViolated(AssertionError):
    """Raised inside the machine; carries the violation and the run that reached it."""

    def __init__(self, trace: Trace) -> None:
        assert trace.violation is not None
        self.trace = trace
        super().__init__(f"{trace.violation.invariant}: {trace.violation.message}")


@dataclass
class Stats:
    """How much a run explored (printed by `iommucheck check`)."""

    examples: int = 0
    steps: int = 0
    last_failure: Trace | None = None
    on_example: Callable[["Stats"], None] | None = field(default=None, repr=False)


BUNDLE_NAMES = {Kind.DOMAIN: "domains", Kind.MM: "processes", Kind.SVA: "sva_handles"}


def make_machine(config: Config, invariants: tuple[Invariant, ...], stats: Stats | None = None
                 ) -> type[RuleBasedStateMachine]:
    """A RuleBasedStateMachine class for (design, hardware, bounds, invariants)."""
    runner = Runner(config, invariants)
    b = config.bounds
    stats = stats if stats is not None else Stats()
    bundles = {kind: Bundle(name) for kind, name in BUNDLE_NAMES.items()}
    #: the first failure's finding_key: what every shrinking candidate must fail with
    target: list[tuple[str, str]] = []

    def _init(self: Any) -> None:
        try:
            self.k = runner.start()
        except BootRaised as e:
            stats.last_failure = e.trace()
            raise InvariantViolated(stats.last_failure) from None
        self.trace = Trace(config.design.name, config.hw, b)
        stats.examples += 1
        if stats.on_example is not None:
            stats.on_example(stats)
        v = runner.check_state(self.k)
        if v is not None:
            self._fail(v)

    def _fail(self: Any, v: Violation) -> None:
        # From the first violation on, Hypothesis only shrinks: check just the invariant
        # that broke. A candidate run is then cheaper (the other invariants' queries are
        # most of a step's cost), and the shrunk trace cannot slip to another invariant.
        # The failing input itself fails the same way, so Hypothesis sees no flakiness.
        # A model exception is found whatever the invariants (Runner), so a candidate that
        # fails differently (another exception type, or an exception while shrinking an
        # invariant's violation) is rejected rather than accepted as the same failure.
        key = finding_key(v)
        if target:
            if key != target[0]:
                reject()
        else:
            target.append(key)
            runner.invariants = tuple(i for i in runner.invariants if i.id == v.invariant)
        self.trace.violation = v
        self.trace.dump = runner.dump(self.k)
        stats.last_failure = self.trace
        raise InvariantViolated(self.trace)

    def _step(self: Any, action: Action, data: st.DataObject, fixed: dict[str, Any]) -> Any:
        """Complete the arguments from the state, run, record, check."""
        pools = []
        for p in action.params:
            pools.append([fixed[p.name]] if p.name in fixed else values(p.kind, self.k, b))
        choices = [a for a in _product(pools) if action.requires(self.k, b, a)]
        if not choices:
            return None
        args = choices[0] if len(choices) == 1 else data.draw(st.sampled_from(choices), label="args")
        ts, result, v = runner.step(self.k, action, args)
        self.trace.steps.append(ts)
        stats.steps += 1
        if v is not None:
            self._fail(v)
        return (args, result)

    ns: dict[str, Any] = {
        "__doc__": f"iommucheck machine: design {config.design.name}, {config.hw}",
        "_fail": _fail,
        "_step": _step,
        "init": initialize()(_init),
    }
    for kind, bundle in bundles.items():
        ns[BUNDLE_NAMES[kind]] = bundle
    for action in ACTIONS:
        if action.exists(b):  # fail_nth only with faults > 0: the default draws as before
            ns[f"rule_{action.name}"] = _make_rule(action, bundles, b)
    cls = type(f"Machine_{config.design.name}_{config.hw}".replace("-", "_"),
               (RuleBasedStateMachine,), ns)
    return cls


def _product(pools: list[list[Any]]) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = [()]
    for pool in pools:
        out = [t + (v,) for t in out for v in pool]
    return out


def _make_rule(action: Action, bundles: dict[Kind, Bundle], b: Any) -> Any:
    bundle_params = [p for p in action.params if p.kind in BUNDLE_KINDS]
    kwargs: dict[str, Any] = {"data": st.data()}
    for p in bundle_params:
        kwargs[p.name] = consumes(bundles[p.kind]) if p.consumes else bundles[p.kind]
    consumed = [p for p in bundle_params if p.consumes]
    target = None
    if action.produces is not None:
        target = bundles[action.produces]
    elif consumed:
        target = bundles[consumed[0].kind]  # to put the object back if the call did not run

    def fn(self: Any, data: st.DataObject, **fixed: Any) -> Any:
        ran = self._step(action, data, fixed)
        if target is None:
            return None
        if action.produces is not None:
            if ran is None or isinstance(ran[1], ErrPtr) or not isinstance(ran[1], int):
                return multiple()
            return ran[1]
        # a consuming call that could not run (caller contract): the object lives on
        return multiple() if ran is not None else fixed[consumed[0].name]

    fn.__name__ = f"rule_{action.name}"
    fn.__doc__ = action.doc
    value_params = [p for p in action.params if p.kind not in BUNDLE_KINDS]

    def may_run(self: Any) -> bool:
        # Cheap test that the non-bundle parameters have candidates at all; the
        # caller contract is applied to the full argument tuple in _step.
        if not action.possible(self.k):
            return False
        if not action.params:
            return action.requires(self.k, b, ())
        return all(values(p.kind, self.k, b) for p in value_params)

    r = rule(target=target, **kwargs)(fn) if target is not None else rule(**kwargs)(fn)
    return precondition(may_run)(r)


def machine_test_case(design: str, hw: str, bounds: Any = None, invariants: Any = None,
                      profile: str = "ci") -> Any:
    """A unittest.TestCase running the machine for a built-in design (three lines in a test file)."""
    from invariants.catalog import get
    from model.bounds import Bounds
    from model.designs import get_design

    config = Config(get_design(design), hw, bounds or Bounds())
    cls = make_machine(config, get(invariants))
    case = cls.TestCase
    case.settings = settings.get_profile(profile)
    return case


__all__ = ["InvariantViolated", "PROFILES", "Stats", "make_machine", "machine_test_case", "TraceStep"]
