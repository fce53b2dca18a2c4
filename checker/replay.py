"""Re-execute a saved trace step by step (`iommucheck replay`, pytest reproducers).

Object ids in a trace (domains, processes, handles) are the ones the run
allocated; the model allocates ids deterministically, so replaying the same
calls from the same boot state gives the same ids. A trace ending in a model
exception replays as a violation of `model-exception` while the model still raises.

A replay never skips a step. A step that cannot run as written (its call is not in
the design, an argument names an object that does not exist at that point or has
the wrong type, a correct caller would not make it there) is a corrupted or foreign
trace, `TraceError` (exit 2), unless an earlier step already returned something else
than the trace records: then the design changed what the calls do, and the replay
stops at that step and says so (a fixed design, exit 0, if nothing was violated).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from invariants.base import Violation
from invariants.catalog import get
from model.actions import ACTIONS_BY_NAME, Action, show_value, values
from model.bounds import Bounds, BoundsError
from model.core import Kernel
from model.design import Design
from model.designs import DESIGNS, UnknownDesign, get_design

from checker.inputs import InputError, read_text
from checker.run import BootRaised, Runner
from checker.trace import Trace, TraceError, check_trace, load_trace_json
from checker.world import Config


@dataclass(frozen=True)
class Changed:
    """The first step whose result differs from the one the trace records."""

    step: int
    recorded: str
    now: str


@dataclass
class ReplayResult:
    trace: Trace
    violation: Violation | None
    #: the first step that returned something else than the trace records (None: every
    #: step returned what it records, or the trace records no results)
    changed: Changed | None = None
    #: why the replay stopped before the trace's last step (after `changed`), or None
    stopped: str | None = None

    def verdict(self) -> str:
        """The line `replay` ends with when nothing is violated."""
        msg = "the trace no longer violates any invariant"
        if self.changed is not None:
            c = self.changed
            msg += f"; step {c.step} changed result: recorded `{c.recorded}`, now `{c.now}`"
        elif any(s.text for s in self.trace.steps):
            msg += "; every step returned what the trace records"
        if self.stopped:
            msg += f"; {self.stopped}"
        return msg


def replay_data(data: dict[str, Any], *, design: Design | None = None,
                invariants: Any = None) -> ReplayResult:
    """Replay a trace given as the dict of its JSON form."""
    check_trace(data)
    d = design if design is not None else _design_of(data)
    hw = data["hw"]
    if hw not in d.hw:
        raise TraceError(f"trace runs on {hw}, but design {d.name} speaks about "
                         f"{', '.join(d.hw)} only")
    try:
        bounds = Bounds.from_json(data["bounds"])
    except BoundsError as e:
        raise TraceError(f"trace bounds: {e}") from None
    cfg = Config(d, hw, bounds)
    runner = Runner(cfg, get(invariants))
    try:
        k = runner.start()
    except BootRaised as e:
        return ReplayResult(e.trace(), e.violation)
    trace = Trace(d.name, cfg.hw, bounds)
    v = runner.check_state(k)
    if v is not None:
        trace.violation = v
        return ReplayResult(trace, v)
    changed: Changed | None = None
    for i, step in enumerate(data["steps"], 1):
        action = ACTIONS_BY_NAME[step["action"]]
        args = tuple(step["args"])
        why = _not_replayable(k, bounds, action, args)
        if why is not None:
            call = f"{action.name}({', '.join(map(repr, args))})"
            if changed is None:
                raise TraceError(f"trace step {i}: {call}: {why}; the trace cannot be replayed "
                                 f"as written on design {d.name}, {hw}")
            return ReplayResult(trace, None, changed,
                                stopped=f"the replay stops at step {i}, {call}: {why}")
        ts, _, v = runner.step(k, action, args)
        trace.steps.append(ts)
        recorded = step.get("text")
        if changed is None and isinstance(recorded, str) and recorded != ts.text:
            changed = Changed(i, recorded, ts.text)
        if v is not None:
            trace.violation = v
            trace.dump = runner.dump(k)
            return ReplayResult(trace, v, changed)
    return ReplayResult(trace, None, changed)


def _not_replayable(k: Kernel, b: Bounds, action: Action, args: tuple[Any, ...]) -> str | None:
    """Why the step cannot run as written in state k (None: it can)."""
    if action.needs is not None and action.needs not in k.design.features:
        return f"design {k.design.name} has no {action.needs} feature"
    if not action.possible(k):
        return "the driver module is unloaded"
    for a, p in zip(args, action.params):
        there = values(p.kind, k, b)
        # type-exact: JSON true is not the id 1
        if not any(type(a) is type(x) and a == x for x in there):
            live = ", ".join(show_value(k, x, p.kind) for x in there) or "none"
            return f"argument {p.name}={a!r} is no {p.kind.value} at this point (there are: {live})"
    if not action.requires(k, b, args):
        return "not a call a correct caller makes at this point"
    return None


def _design_of(data: dict[str, Any]) -> Design:
    """The trace's design: a built-in one, or the design file the trace names."""
    from checker.userdesign import DesignFileError, load_design_file

    name = data["design"]
    if name in DESIGNS or not isinstance(data.get("design_file"), str):
        try:
            return get_design(name)
        except UnknownDesign as e:
            raise TraceError(f"trace names {e}") from None
    try:
        d = load_design_file(data["design_file"])
    except DesignFileError as e:
        raise TraceError(f"trace of design {name!r}: {e}") from None
    if d.name != name:
        raise TraceError(f"trace of design {name!r}: {data['design_file']} now defines {d.name!r}")
    return d


def replay_file(path: str, design: Design | None = None) -> ReplayResult:
    try:
        text = read_text(path, "trace")
    except InputError as e:
        raise TraceError(str(e)) from None
    return replay_data(load_trace_json(text, f"trace {path}"), design=design)


def run_calls(design: str, hw: str, steps: list[tuple[str, tuple[Any, ...]]],
              bounds: Bounds | None = None) -> ReplayResult:
    """Convenience for tests: replay a list of (action, args) on a built-in design."""
    b = bounds or Bounds()
    data = {"design": design, "hw": hw,
            "bounds": {f: getattr(b, f) for f in b.__dataclass_fields__},
            "steps": [{"action": a, "args": list(args)} for a, args in steps]}
    return replay_data(data)
