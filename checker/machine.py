"""The Hypothesis sampler: random runs over the moves the explorer enumerates.

The machine has one step rule. In each state it lists the enabled moves exactly as the
exhaustive explorer does (`for ai, a in enumerate(ACTIONS): for args in
a.enabled_args(k, b)`: every argument tuple a correct caller may pass, objects drawn
from the state) and draws one of them, so no step is spent on a call the caller
contract refuses, and nothing about the system is written twice. When no move is
enabled the run ends (the remaining steps of the example do nothing).

Saturated caches. The `dma` event is never drawn: at boot and after every step the
machine does every DMA the state allows (`Explorer.fill_all`), as the explorer's
`--saturate-caches` search does, and it steps through `Explorer.transition`, so the
step invariants see (before, action, args, result, after-with-DMAs) exactly as that
search does. Saturation is sound and complete for our invariants (checker/explore.py,
"Cache saturation"): a run of the machine breaks an invariant exactly when some
choice of explicit DMAs after its calls does.

Swarm testing (Groce et al., ISSTA 2012). Each example first draws the subset of
actions it may use: a probability p uniform in [0, 1), then each action in with
probability p (never none), as Hypothesis's own swarm (FeatureFlags) does. A run that
never calls, say, `iommu_domain_free` or `process_exit` keeps its objects and gets
deeper into the states where they pile up; a run with most actions in can still do a
long set-up. (A fixed p = 1/2 kept three given actions together in one run of eight:
a kernel PASID attach, which needs a domain and a kernel PASID first, was in one run
of ten.) Moves are drawn among the enabled moves of the subset's actions; when none
of them is enabled, among all enabled moves. fail_nth is not drawn as a move of its
own but just before one call of the subset, the example's fault target (see `init`).

How a move is drawn. First an action, uniformly among the enabled ones, then its
argument tuple, uniformly among that action's enabled ones. (Uniform over actions
rather than over (action, args) pairs: `iommu_map` has up to 8 argument tuples and
`mm_alloc` one, but a short bug needs `mm_alloc` as much as a map.) All of an example's
random choices come from one `random.Random` whose seed is the example's one Hypothesis
draw: Hypothesis's own integer draws are strongly biased towards 0, which made the
first enabled action of the table most of every run. Hypothesis still picks the
seeds (a fixed `seed` gives the same runs), keeps failures in its example database
and replays them first, and runs the step loop.

Counterexamples. A violation raises `InvariantViolated` carrying the drawn moves and
what they returned. Hypothesis's shrink phase is off (see `_PHASES`: shrinking a choice
sequence whose choices index the moves enabled *now* cost minutes and left long
traces); instead `minimise` deletes calls, single ones and then pairs, while the same
`finding_key` still follows, renaming the objects the remaining calls make, and
`counterexample` turns the result into a `Trace` with the DMAs it needs as explicit
`dma` events (`Explorer.unsaturate`, then `replay`): the trace replays under
`iommucheck replay` like any other. While a failing example is replayed, only runs
failing with the same `finding_key` count as failing, and only that invariant is checked.

    from checker.machine import machine_test_case
    TestUpstreamVtd = machine_test_case("upstream", "vtd")   # a unittest.TestCase
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import hypothesis.strategies as st
from hypothesis import HealthCheck, Phase, note, reject, settings
from hypothesis.control import current_build_context
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from invariants.base import Invariant, Violation
from invariants.model_exception import MODEL_ERRORS, finding_key, model_exception
from model.actions import ACTIONS, Args, Kind, show_call
from model.core import Kernel

from checker.run import BootRaised
from checker.trace import Trace, TraceStep
from checker.world import Config

if TYPE_CHECKING:
    from checker.explore import Explorer

# -- settings profiles ------------------------------------------------------------
_COMMON = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                           HealthCheck.data_too_large],
)
# Step counts and budgets from bench/bench_findrate.py (README, "How much to trust a
# sampled run"): every step of the machine is a call that runs, and 60 steps reach the
# states that 25 drawn rules of the old machine (about 11 calls that ran) did not. With
# the 31 expected breaks x seeds 1-5 at ci: 40 steps found 132 of 155 runs, 60 steps 141
# (the bench took 105 s and 124 s). deep runs longer still, for breaks that need many
# objects alive at once.
#
# No shrink phase. Hypothesis's shrinker works on the choice sequence, and here the
# choices are an example's random seed (see the module docstring); before that, with one
# index draw per step into the moves enabled *now*, deleting a step changed what every
# later index meant, so most candidates failed differently (rejected) or held. Measured
# on notifier-put-no-sync (vtd, ci, seed 2): 1,312 runs and 195 s of shrinking, ending at
# 6 calls where 4 suffice. `minimise` (delta debugging on the moves, renaming the
# objects they make) gets the 4 calls in a fraction of a second, deterministically.
_PHASES = (Phase.explicit, Phase.reuse, Phase.generate)
settings.register_profile("ci", max_examples=60, stateful_step_count=60, phases=_PHASES,
                          **_COMMON)  # type: ignore[arg-type]
settings.register_profile("deep", max_examples=2000, stateful_step_count=100, phases=_PHASES,
                          **_COMMON)  # type: ignore[arg-type]
PROFILES = ("ci", "deep")

#: a move: (index into model.actions.ACTIONS, argument tuple)
Move = tuple[int, Args]
DMA = next(i for i, a in enumerate(ACTIONS) if a.name == "dma")
FAIL_NTH = next(i for i, a in enumerate(ACTIONS) if a.name == "fail_nth")
#: how often a drawn fault target gets fail_nth just before it (see Machine.init)
FAULT_AT_TARGET = 0.5
#: an example's random seed (all its choices come from random.Random(seed))
SEEDS = st.integers(0, 2**64 - 1)


class InvariantViolated(AssertionError):
    """Raised inside the machine: the violation and the moves that reached it (`moves`;
    the booted world's DMAs are implied), or the boot trace if booting raised."""

    def __init__(self, violation: Violation, moves: list[Move], results: list[Any] | None = None,
                 boot: Trace | None = None) -> None:
        self.violation = violation
        self.moves = list(moves)
        #: what each move returned (the objects it made: `minimise` renames them)
        self.results = list(results) if results is not None else [None] * len(moves)
        self.boot = boot
        super().__init__(f"{violation.invariant}: {violation.message}")


@dataclass
class Stats:
    """How much a run explored (printed by `iommucheck check`)."""

    examples: int = 0
    steps: int = 0
    #: the counterexample's trace, once `check_hypothesis` has built it
    last_failure: Trace | None = None
    #: the example (1-based) in which the first violation was met, None if none was
    first_failure_example: int | None = None
    on_example: Callable[["Stats"], None] | None = field(default=None, repr=False)


def drawable_actions(config: Config) -> tuple[int, ...]:
    """The actions a run may draw: not `dma` (saturation does every DMA), not an action
    whose bound is zero (`fail_nth` with faults=0) or whose feature the design lacks."""
    feats = config.design.features
    return tuple(ai for ai, a in enumerate(ACTIONS)
                 if ai != DMA and a.exists(config.bounds) and (a.needs is None or a.needs in feats))


def enabled_moves(k: Kernel, config: Config, among: tuple[int, ...]) -> list[tuple[int, list[Args]]]:
    """The enabled actions of `among`, in table order, each with its enabled argument tuples
    (the explorer's branching restricted to those actions). k is frozen (pools memoised)."""
    k.freeze()
    b = config.bounds
    out = []
    for ai in among:
        args = list(ACTIONS[ai].enabled_args(k, b))
        if args:
            out.append((ai, args))
    return out


def _fresh_explorer(config: Config, invariants: tuple[Invariant, ...]) -> "Explorer":
    from checker.explore import Explorer  # here: checker.explore imports checker.check

    return Explorer(config, invariants, symmetry=False, saturate=True)


def run_moves(ex: "Explorer", moves: list[Move], results: list[Any]
              ) -> tuple[int, Violation, list[Move], list[Any]] | None:
    """Replay `moves` (a run of the machine with some moves left out) through the saturated
    transitions of `ex`. The objects a move makes get fresh ids that depend on what ran
    before (a domain, process, SVA handle, kernel PASID), so the ids in later arguments
    are renamed after what the same moves return now (`results`: what they returned in
    the run). Returns (moves up to and including the violating one, the violation, those
    moves renamed, their results), or None if it holds or a move is not enabled where it
    is made (a correct caller would not make it)."""
    runner = ex.runner
    b = ex.bounds
    k = runner.start()
    try:
        ex.fill_all(k)
    except MODEL_ERRORS as e:
        return 0, model_exception("a DMA of the booted world", e), [], []
    v = runner.check_state(k)
    if v is not None:
        return 0, v, [], []
    rename: dict[tuple[Kind, Any], Any] = {}
    done: list[Move] = []
    got: list[Any] = []
    for (ai, args), old in zip(moves, results):
        action = ACTIONS[ai]
        args = tuple(rename.get((p.kind, a), a) for p, a in zip(action.params, args))
        k.freeze()
        if args not in action.enabled_args(k, b):
            return None
        child, result, v = ex.transition(k, ai, args)
        done.append((ai, args))
        got.append(result)
        made = _MAKES.get(action.name, action.produces)
        if made is not None and isinstance(old, int) and isinstance(result, int):
            rename[(made, old)] = result
        if v is None:
            v = runner.check_state(child)
        if v is not None:
            return len(done), v, done, got
        k = _settle(child)
    return None


#: calls whose result names an object later calls take, besides `Action.produces`
_MAKES = {"iommu_alloc_global_pasid": Kind.KPASID}


def _settle(k: Kernel) -> Kernel:
    """What the explorer does to a frontier state: no history (WARNs, hardware log) kept;
    step invariants only look at the WARNs of the step itself."""
    k.thaw()
    k.warnings = []
    k.driver.take_hw_log(k)
    return k


def minimise(config: Config, invariants: tuple[Invariant, ...], violation: Violation,
             moves: list[Move], results: list[Any]) -> list[Move]:
    """Delete calls while the rest still fails with the same `finding_key`: single calls,
    last first, until none can go; then pairs (a driver's unbind and rebind, which only
    go together), and single calls again after a pair went. Delta debugging in place of
    Hypothesis's shrink (see the profiles): the objects the remaining calls make are
    renamed (`run_moves`), and it is deterministic."""
    ex = _fresh_explorer(config, invariants)
    key = finding_key(violation)

    def without(drop: tuple[int, ...]) -> tuple[list[Move], list[Any]] | None:
        keep = [i for i in range(len(moves)) if i not in drop]
        got = run_moves(ex, [moves[i] for i in keep], [results[i] for i in keep])
        if got is not None and finding_key(got[1]) == key:
            return got[2], got[3]
        return None

    while True:
        i = len(moves) - 1
        while i >= 0:
            got = without((i,))
            if got is not None:
                moves, results = got
            i = min(i - 1, len(moves) - 1)
        pair = next((got for j in range(len(moves) - 1, 0, -1) for i in range(j - 1, -1, -1)
                     if (got := without((i, j))) is not None), None)
        if pair is None:
            return moves
        moves, results = pair


def counterexample(config: Config, invariants: tuple[Invariant, ...], e: InvariantViolated) -> Trace:
    """The trace users see: the moves minimised, then as explicit steps with only the DMAs
    the violation needs (`Explorer.unsaturate`), replayed through `Runner.step`."""
    if e.boot is not None:
        return e.boot
    only = tuple(i for i in invariants if i.id == e.violation.invariant)
    moves = minimise(config, only, e.violation, e.moves, e.results)
    ex = _fresh_explorer(config, only)
    path = [ex._move(ai, args) for ai, args in moves]
    return ex.replay(ex.unsaturate(path, e.violation.invariant), e.violation)


def make_machine(config: Config, invariants: tuple[Invariant, ...], stats: Stats | None = None
                 ) -> type[RuleBasedStateMachine]:
    """A RuleBasedStateMachine class for (design, hardware, bounds, invariants)."""
    ex = _fresh_explorer(config, invariants)
    runner = ex.runner
    st_: Stats = stats if stats is not None else Stats()
    actions = drawable_actions(config)
    plain = tuple(ai for ai in actions if ai != FAIL_NTH)  # drawn as moves of their own
    #: the first failure's finding_key: what every later failing run must fail with
    target: list[tuple[str, str]] = []

    class Machine(RuleBasedStateMachine):
        k: Kernel | None
        moves: list[Move]
        results: list[Any]
        swarm: tuple[int, ...]
        among: tuple[int, ...]  # the swarm's actions drawn as moves (not fail_nth)
        fault_target: int | None  # the call fail_nth comes just before, if any
        rnd: random.Random

        @initialize(data=st.data())
        def init(self, data: st.DataObject) -> None:
            self.k = None
            self.moves = []
            self.results = []
            try:
                k = runner.start()
            except BootRaised as e:
                raise InvariantViolated(e.violation, [], boot=e.trace()) from None
            st_.examples += 1
            if st_.on_example is not None:
                st_.on_example(st_)
            # Every random choice of the example comes from one Random seeded by one draw:
            # Hypothesis's own integer draws are far from uniform (st.integers(0, 9) gave 0
            # in 42% of 2,000 draws, and the high bits of a wide integer were 1 in 5%), which
            # made the first enabled action of the table most of every run and kept the
            # swarm's later actions almost always in. The seed is recorded like any draw,
            # so a fixed Hypothesis seed, the example database and the final replay of a
            # failure all see the same run. (Hypothesis's shrinking is off: see _PHASES.)
            rnd = self.rnd = random.Random(data.draw(SEEDS, label="seed"))
            p_in = rnd.random()  # the example's share of actions (see the module docstring)
            self.swarm = tuple(ai for ai in actions if rnd.random() < p_in) or actions
            # fail_nth is not drawn as a move of its own: when the swarm has it, one call
            # of the swarm is the example's fault target, and each time the target is
            # drawn, fail_nth(n) (n uniform) comes first with probability FAULT_AT_TARGET,
            # while the bound `faults` allows. Drawn like the other moves, fail_nth was
            # one of the few moves enabled at boot, so the run's faults went on its first
            # calls, before there was a domain or a PASID to fail an attach of (and a
            # fault armed before an event is only spent on a later call). Each move is
            # still an enabled one.
            self.among = tuple(ai for ai in self.swarm if ai != FAIL_NTH) or plain
            calls = [ai for ai in self.among if ACTIONS[ai].kind == "call"]
            self.fault_target = rnd.choice(calls) if FAIL_NTH in self.swarm and calls else None
            try:
                ex.fill_all(k)
            except MODEL_ERRORS as err:
                self._fail(model_exception("a DMA of the booted world", err))
            v = runner.check_state(k)
            if v is not None:
                self._fail(v)
            self.k = _settle(k)

        @rule()
        def step(self) -> None:
            k = self.k
            if k is None:
                return  # the run has ended: no move was enabled
            # Among the swarm's actions first. When none of them is enabled (a subset of
            # only iommu_unmap and process_exit, at boot), fall back to every enabled
            # move rather than end the run: the other actions make the objects the
            # subset's actions need, and "no move at all" keeps the explorer's meaning
            # (a dead state), so a run ends only where the explorer's search would.
            moves = enabled_moves(k, config, self.among)
            if not moves and len(self.among) < len(plain):
                moves = enabled_moves(k, config, plain)
            if not moves:
                self.k = None
                return
            ai, argss = moves[self.rnd.randrange(len(moves))]
            args = argss[self.rnd.randrange(len(argss))]
            if ai == self.fault_target and self.rnd.random() < FAULT_AT_TARGET:
                arm = list(ACTIONS[FAIL_NTH].enabled_args(k, config.bounds))
                if arm:
                    self._do(FAIL_NTH, arm[self.rnd.randrange(len(arm))])
                    k = self.k
                    assert k is not None
                    k.freeze()
                    if args not in ACTIONS[ai].enabled_args(k, config.bounds):
                        return  # (arming changes no caller contract: not seen)
            self._do(ai, args)

        def _do(self, ai: int, args: Args) -> None:
            """One step: the saturated transition, recorded and checked."""
            k = self.k
            assert k is not None
            child, result, v = ex.transition(k, ai, args)
            self.moves.append((ai, args))
            self.results.append(result)
            st_.steps += 1
            if _final():  # the falsifying example shows its calls
                note(f"{len(self.moves)}. {show_call(child, ACTIONS[ai], args, result, before=k)}")
            if v is None:
                v = runner.check_state(child)
            if v is not None:
                self._fail(v)
            self.k = _settle(child)

        def _fail(self, v: Violation) -> None:
            # From the first violation on, Hypothesis only replays that example (its
            # final run; with the shrink phase off it tries nothing else) and, in later
            # runs, the example database replays it first: check just the invariant that
            # broke, so that the replay cannot slip to another one. A model exception is
            # found whatever the invariants, so a replay failing differently (another
            # exception type, or an exception instead of the invariant) is rejected,
            # as before, when Hypothesis shrank.
            key = finding_key(v)
            if target:
                if key != target[0]:
                    reject()
            else:
                target.append(key)
                st_.first_failure_example = st_.examples
                runner.invariants = tuple(i for i in runner.invariants if i.id == v.invariant)
                ex.step_invariants = tuple(i for i in ex.step_invariants if i.id == v.invariant)
            raise InvariantViolated(v, self.moves, self.results)

    Machine.__name__ = Machine.__qualname__ = (
        f"Machine_{config.design.name}_{config.hw}".replace("-", "_"))
    Machine.__doc__ = f"iommucheck machine: design {config.design.name}, {config.hw}"
    return Machine


def _final() -> bool:
    """This is Hypothesis's last replay of the failing example (notes are shown)."""
    return bool(current_build_context().is_final)


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


__all__ = ["InvariantViolated", "PROFILES", "Stats", "counterexample", "make_machine",
           "machine_test_case", "minimise", "TraceStep"]
