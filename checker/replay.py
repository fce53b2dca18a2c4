"""Re-execute a saved trace step by step (`iommucheck replay`, pytest reproducers).

Object ids in a trace (domains, processes, handles) are the ones the run
allocated; the model allocates ids deterministically, so replaying the same
calls from the same boot state gives the same ids. A trace ending in a model
exception replays as a violation of `model-exception` while the model still raises.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from invariants.base import Violation
from invariants.catalog import get
from model.actions import ACTIONS_BY_NAME
from model.bounds import Bounds, BoundsError
from model.designs import UnknownDesign, get_design

from checker.run import BootRaised, Runner
from checker.trace import Trace, TraceError, load_trace_json
from checker.world import Config


@dataclass
class ReplayResult:
    trace: Trace
    violation: Violation | None
    skipped: list[str]  # steps whose arguments no longer exist in this model


def replay_data(data: dict[str, Any], *, design: Any = None, invariants: Any = None) -> ReplayResult:
    """Replay a trace given as the dict of its JSON form."""
    try:
        d = design if design is not None else _design_of(data)
        bounds = Bounds(**data["bounds"])
    except UnknownDesign as e:
        raise TraceError(f"trace names {e}") from None
    except (BoundsError, TypeError) as e:
        raise TraceError(f"trace bounds are invalid: {e}") from None
    cfg = Config(d, data["hw"], bounds)
    runner = Runner(cfg, get(invariants))
    try:
        k = runner.start()
    except BootRaised as e:
        return ReplayResult(e.trace(), e.violation, [])
    trace = Trace(d.name, cfg.hw, bounds)
    skipped: list[str] = []
    v = runner.check_state(k)
    if v is not None:
        trace.violation = v
        return ReplayResult(trace, v, skipped)
    for i, step in enumerate(data["steps"], 1):
        action = ACTIONS_BY_NAME[step["action"]]
        args = tuple(step["args"])
        if len(args) != len(action.params):
            raise TraceError(f"trace step {i}: {action.name} takes {len(action.params)} argument(s)")
        if not action.possible(k) or not _args_exist(k, bounds, action, args):
            skipped.append(f"step {i}: {action.name}{args} is not possible in this state")
            continue
        ts, _, v = runner.step(k, action, args)
        trace.steps.append(ts)
        if v is not None:
            trace.violation = v
            trace.dump = runner.dump(k)
            return ReplayResult(trace, v, skipped)
    return ReplayResult(trace, None, skipped)


def _design_of(data: dict[str, Any]) -> Any:
    """The trace's design: a built-in one, or the design file the trace names."""
    from model.designs import DESIGNS

    from checker.userdesign import DesignFileError, load_design_file

    name = data["design"]
    if name in DESIGNS or not isinstance(data.get("design_file"), str):
        return get_design(name)
    try:
        d = load_design_file(data["design_file"])
    except DesignFileError as e:
        raise TraceError(f"trace of design {name!r}: {e}") from None
    if d.name != name:
        raise TraceError(f"trace of design {name!r}: {data['design_file']} now defines {d.name!r}")
    return d


def _args_exist(k: Any, b: Bounds, action: Any, args: tuple[Any, ...]) -> bool:
    from model.actions import values

    return all(a in values(p.kind, k, b) for a, p in zip(args, action.params))


def replay_file(path: str, design: Any = None) -> ReplayResult:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise TraceError(f"cannot read trace {path}: {e.strerror}") from None
    return replay_data(load_trace_json(text), design=design)


def run_calls(design: str, hw: str, steps: list[tuple[str, tuple[Any, ...]]],
              bounds: Bounds | None = None) -> ReplayResult:
    """Convenience for tests: replay a list of (action, args) on a built-in design."""
    b = bounds or Bounds()
    data = {"design": design, "hw": hw,
            "bounds": {f: getattr(b, f) for f in b.__dataclass_fields__},
            "steps": [{"action": a, "args": list(args)} for a, args in steps]}
    return replay_data(data)
