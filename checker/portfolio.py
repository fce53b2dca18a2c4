"""The default engine: a portfolio of the explorer and the sampler under one budget.

Neither engine alone gives a verdict worth quoting (issue #13): Hypothesis at the
default budget missed more than half of the known breaks, and the explorer cannot
exhaust the default world. So `iommucheck check` runs, per (design, hardware):

a. **proofs of a ladder of small worlds** (checker/worlds.py: sva1, paging1,
   small1, then the design's own world, its `check_bounds`): the saturated explorer,
   each world to exhaustion or until its share of the budget is spent
   ("proved, N states" or "all sequences <= D calls");
b. **a breadth-first search at the requested bounds** to the depth the budget
   allows: "every call sequence of up to D calls at these bounds: no violation" is
   a bounded guarantee, and a violation found there is a shortest one;
c. **Hypothesis sampling of long runs** (checker/machine.py) with the rest.

Every part applies the matrix's re-run rule: an invariant broken is reported with
its (shortest or shrunk) counterexample and not looked for again, and the search
goes on for the others, so the result lists every invariant the design breaks
within the budget, not only the first. (The explorer does this in one pass:
`Explorer.run(every_violation=True)`.) A model exception ends the check: the
model would raise again.

The default budget (`STANDARD`) counts work, not seconds: states per world, states
of the search, sampled runs. So the same seed gives the same result on every
machine (docs/ and the tests rely on it) and only the time differs (about 5 to 15
s per design and hardware kind on a 2-core machine; bench/bench_portfolio.py
prints it). `Budget(seconds=S)` (`--budget S`) shares S seconds of wall clock
instead: a half for the worlds, a quarter for the search, the rest (and whatever
the earlier parts left) for sampling.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from hypothesis import settings

from invariants.base import Invariant
from invariants.model_exception import MODEL_EXCEPTION
from model.bounds import Bounds
from model.design import Design

from checker.check import CheckResult
from checker.worlds import DESIGN_WORLD, LADDER, WORLDS, design_world

#: re-runs of the sampler after a violation (each drops the invariant it broke)
MAX_BREAKS = 6


@dataclass(frozen=True)
class Budget:
    """How much one (design, hardware) check may do.

    With `seconds` None the limits are counts, and a run is deterministic for a
    given seed; with `seconds` the counts still cap each part but the clock
    decides."""

    world_states: int = 6_000  # distinct states per ladder world (small1 upstream: 3,518 / 4,218)
    #: distinct states of the design's own world (`Design.check_bounds`): two-device
    #: worlds, where the RID-spanning breaks are 6 calls deep
    design_states: int = 10_000
    #: distinct states of the search at the requested bounds (the default Bounds(): all
    #: sequences of up to 4 calls, about 1,700 states, fit)
    search_states: int = 3_000
    examples: int = 100  # sampled runs
    worlds: tuple[str, ...] = LADDER
    seconds: float | None = None
    name: str = "standard"

    def describe(self) -> str:
        if self.seconds is not None:
            return f"{self.seconds:g} s of wall clock"
        sampled = f", {self.examples:,} sampled runs" if self.examples else ", no sampling"
        return (f"{self.name}: {self.world_states:,} states a world ({self.design_states:,} for "
                f"the design's own), {self.search_states:,} states of search{sampled}")


STANDARD = Budget()
#: `--budget quick`: a tenth of the work (the tests and the README's examples)
QUICK = Budget(world_states=600, design_states=600, search_states=300, examples=10, name="quick")
#: `--budget deep`: ten times the work, every named world
DEEP = Budget(world_states=60_000, design_states=100_000, search_states=80_000, examples=1_000,
              worlds=tuple(WORLDS), name="deep")
NAMED_BUDGETS = {"quick": QUICK, "standard": STANDARD, "deep": DEEP}


class BudgetError(ValueError):
    """A --budget that is neither a name nor a positive number of seconds."""


def parse_budget(text: str) -> Budget:
    """'standard' / 'quick' / 'deep', or seconds of wall clock ('30', '30s')."""
    if text in NAMED_BUDGETS:
        return NAMED_BUDGETS[text]
    try:
        seconds = float(text[:-1] if text.endswith("s") else text)
    except ValueError:
        raise BudgetError(f"budget {text!r} is neither {', '.join(NAMED_BUDGETS)} "
                          "nor a number of seconds") from None
    if not seconds > 0 or seconds == float("inf"):
        raise BudgetError(f"budget {text!r}: the seconds must be a positive number")
    # a wall-clock budget: the counts of `deep` only cap each part
    return Budget(world_states=DEEP.world_states, design_states=DEEP.design_states,
                  search_states=DEEP.search_states,
                  examples=DEEP.examples, worlds=STANDARD.worlds, seconds=seconds, name=f"{seconds:g}s")


@dataclass
class Part:
    """One part of the portfolio: a world proof, the search, or the sampling."""

    kind: str  # "world", "search" or "sample"
    name: str  # world name, "requested bounds", "hypothesis"
    bounds: Bounds
    complete: bool = False  # world / search: every reachable state explored
    states: int = 0  # explorer: distinct states; sampler: runs
    transitions: int = 0  # explorer: transitions; sampler: steps
    covered: int = 0  # explorer: every sequence of up to this many calls checked
    max_steps: int = 0  # sampler: calls per run at most
    stopped_at: str | None = None
    seconds: float = 0.0
    skipped: bool = False  # the budget was spent before this part began
    findings: list[CheckResult] = field(default_factory=list)

    def coverage(self) -> str:
        """What this part guarantees, in words ("proved, 3,518 states")."""
        if self.skipped:
            return "not reached (budget spent)"
        if self.kind == "sample":
            return f"{self.states:,} sampled runs of <= {self.max_steps} calls"
        if self.complete:
            return f"proved, {self.states:,} states"
        return f"all sequences <= {self.covered} calls ({self.states:,} states)"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "name": self.name,
            "bounds": _bounds_text(self.bounds),
            "complete": self.complete, "covered": self.covered, "states": self.states,
            "transitions": self.transitions, "max_steps": self.max_steps,
            "stopped_at": self.stopped_at, "skipped": self.skipped,
            "coverage": self.coverage(),
            "violated": [f.violated for f in self.findings],
        }


def _bounds_text(b: Bounds) -> str:
    return ",".join(f"{k}={int(v) if isinstance(v, bool) else v}"
                    for k, v in ((f, getattr(b, f)) for f in b.__dataclass_fields__))


@dataclass
class PortfolioResult:
    design: str
    hw: str
    parts: list[Part]
    budget: Budget
    seed: int | None

    @property
    def findings(self) -> list[CheckResult]:
        return [f for p in self.parts for f in p.findings]

    @property
    def seconds(self) -> float:
        return sum(p.seconds for p in self.parts)

    def coverage(self) -> str:
        """What the parts that ran guarantee for the invariants not broken, in words."""
        worlds = [p for p in self.parts if p.kind == "world" and not p.skipped]
        proved = [p.name for p in worlds if p.complete]
        bounded = [f"{p.name} up to {p.covered} calls" for p in worlds if not p.complete]
        said = []
        if proved:
            said.append(f"proved in world{'s' if len(proved) > 1 else ''} {', '.join(proved)}")
        if bounded:
            said.append("all sequences in " + ", ".join(bounded))
        for p in self.parts:
            if p.kind == "search" and not p.skipped:
                said.append("every state at the requested bounds" if p.complete else
                            f"all sequences <= {p.covered} calls at the requested bounds")
            elif p.kind == "sample" and not p.skipped:
                said.append(f"{p.states:,} sampled runs of <= {p.max_steps} calls")
        return "; ".join(said) or "nothing checked (budget spent)"

    def verdict(self) -> str:
        """One line a designer can quote: what broke, and what holds where."""
        found = self.findings
        if not found:
            return "holds: " + self.coverage()
        broke = ", ".join(f"{f.violated} ({len(f.trace or [])} steps, {where})"
                          for f, where in self._where())
        return f"VIOLATED: {broke}; the other invariants: {self.coverage()}"

    def _where(self) -> list[tuple[CheckResult, str]]:
        return [(f, p.name if p.kind == "world" else
                 ("sampled" if p.kind == "sample" else "requested bounds"))
                for p in self.parts for f in p.findings]

    def as_check_result(self) -> CheckResult:
        """The CheckResult the CLI prints: the first finding, the others in `also`."""
        found = self.findings
        first = found[0] if found else None
        r = CheckResult(
            design=self.design, hw=self.hw,
            invariants=first.invariants if first else (), trace=first.trace if first else None,
            examples=sum(p.states for p in self.parts), steps=sum(p.transitions for p in self.parts),
            seconds=self.seconds, engine="portfolio", complete=True,
            extra={"verdict": self.verdict(), "summary": self.verdict(),
                   "budget": self.budget.describe(), "seed": self.seed,
                   "parts": [p.to_json() for p in self.parts],
                   # timing apart from results (`--json` puts it under "timing")
                   "part_seconds": [{"kind": p.kind, "name": p.name, "seconds": round(p.seconds, 3)}
                                    for p in self.parts]},
        )
        r.also = found[1:]
        return r


Progress = Callable[[str], None]


def run_portfolio(design: Design, hw: str, bounds: Bounds, invariants: tuple[Invariant, ...], *,
                  budget: Budget = STANDARD, seed: int | None = 0, database: bool = True,
                  worlds: tuple[str, ...] | None = None, parts: tuple[str, ...] = ("world", "search", "sample"),
                  profile: str = "ci", on_progress: Progress | None = None) -> PortfolioResult:
    """Check (design, hw) with every part of the portfolio; see the module docstring.

    `bounds` are the requested bounds (of the search and the sampling); `worlds` overrides the budget's ladder (`--world NAME`); `parts`
    selects parts (the tests use "world" alone: it is deterministic)."""
    from checker.check import check_hypothesis
    from checker.explore import check_explore

    start = time.perf_counter()
    remaining = [i for i in invariants if i.applies(hw)]
    result = PortfolioResult(design.name, hw, [], budget, seed)
    stop = False  # a model exception: the model would raise again

    def report(text: str) -> None:
        if on_progress is not None:
            on_progress(f"{design.name} on {hw}: {text}")

    def take(part: Part, r: CheckResult) -> None:
        nonlocal remaining, stop
        for f in r.findings:
            part.findings.append(f)
            remaining = [i for i in remaining if i.id != f.violated]
            stop = stop or f.violated == MODEL_EXCEPTION

    def deadline(share: float) -> float | None:
        """When a part must stop under a wall-clock budget: `share` of what is left."""
        if budget.seconds is None:
            return None
        left = budget.seconds - (time.perf_counter() - start)
        return time.perf_counter() + max(left * share, 0.0)

    def out_of_time() -> bool:
        return budget.seconds is not None and time.perf_counter() - start >= budget.seconds

    def explore_part(part: Part, max_states: int, share: float) -> None:
        if stop or not _real(remaining) or out_of_time():
            part.skipped = True
            result.parts.append(part)
            return
        report(f"{part.kind} {part.name}")
        r = check_explore(design, hw, part.bounds, tuple(remaining), saturate=True,
                          every_violation=True, max_states=max_states, deadline=deadline(share),
                          on_progress=lambda s: report(f"{part.kind} {part.name}: {s}"))
        part.complete = r.complete
        part.states, part.transitions = r.examples, r.steps  # the explorer's states, transitions
        covered, stopped = r.extra.get("covered", 0), r.extra.get("stopped_at")
        part.covered = covered if isinstance(covered, int) else 0
        part.stopped_at = stopped if isinstance(stopped, str) else None
        part.seconds = r.seconds
        take(part, r)
        result.parts.append(part)

    if "world" in parts:
        plan = world_plan(design, budget, worlds)
        for i, (name, wb, states) in enumerate(plan):
            # each world may use what is left of the worlds' half, shared with those after it
            explore_part(Part("world", name, wb), states,
                         0.5 / (len(plan) - i) if budget.seconds is not None else 1.0)
    if "search" in parts:
        explore_part(Part("search", "requested bounds", bounds), budget.search_states, 0.5)
    if "sample" in parts:
        steps = settings.get_profile(profile).stateful_step_count
        part = Part("sample", "hypothesis", bounds, max_steps=steps)
        if stop or not _real(remaining) or out_of_time():
            part.skipped = True
        else:
            left = budget.examples
            t0 = time.perf_counter()
            for attempt in range(MAX_BREAKS + 1):
                if left <= 0 or not _real(remaining) or stop or out_of_time():
                    break
                report(f"sampling, {len(remaining)} invariants, {part.states} runs so far")
                kw: dict[str, Any] = {}
                if budget.seconds is not None:
                    kw["time_budget"] = max(budget.seconds - (time.perf_counter() - start), 0.0)
                r = check_hypothesis(design, hw, bounds, tuple(remaining), profile=profile,
                                     max_examples=left, seed=None if seed is None else seed + attempt,
                                     database=database,
                                     on_example=lambda st: report(
                                         f"sampling: {part.states + st.examples} runs, "
                                         f"{part.transitions + st.steps} steps"),
                                     **kw)
                part.states += r.examples
                part.transitions += r.steps
                left -= r.examples
                if r.trace is None:
                    break
                take(part, r)
            part.seconds = time.perf_counter() - t0
        result.parts.append(part)
    return result


def world_plan(design: Design, budget: Budget, worlds: tuple[str, ...] | None = None
               ) -> list[tuple[str, Bounds, int]]:
    """The worlds a check proves, in order, with their state budgets: the budget's
    ladder then the design's own world (its check_bounds, when that is not a ladder
    world), or the `worlds` named (DESIGN_WORLD: the design's own)."""
    own = design_world(design.check_bounds)
    if worlds is None:
        worlds = budget.worlds
        if own is not None and own[0] not in worlds:
            worlds = worlds + (own[0],)
    plan = []
    for name in worlds:
        if name == DESIGN_WORLD:
            if own is None or own[0] != DESIGN_WORLD:
                continue  # no world of its own beyond the named ones
            plan.append((name, own[1], budget.design_states))
        else:
            plan.append((name, WORLDS[name].to_bounds(), budget.world_states))
    return plan


def _real(invs: list[Invariant]) -> bool:
    """Whether anything is left to look for besides model exceptions (found by any run)."""
    return any(i.id != MODEL_EXCEPTION for i in invs)


__all__ = ["Budget", "BudgetError", "DEEP", "QUICK", "parse_budget", "NAMED_BUDGETS", "Part", "PortfolioResult", "STANDARD", "run_portfolio"]
