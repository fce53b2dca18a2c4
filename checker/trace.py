"""Traces: a run as a kernel engineer reads it, and as data that replays it.

A `Trace` is the list of calls and events of one run, each with its result, the
descriptors/commands the driver issued under it and the WARNs it raised. It
renders as the numbered listing of a counterexample report, serialises to JSON
(replayable with `iommucheck replay`) and to a ready-to-paste pytest reproducer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from invariants.base import Step, Violation
from model.actions import ACTIONS_BY_NAME, Action, Args, show_call
from model.bounds import Bounds
from model.core import Kernel

from checker.inputs import InputError, expect, is_int, loads

TRACE_FORMAT = "iommucheck-trace/1"


class TraceError(InputError):
    """A malformed or unreadable trace file, or one that cannot be replayed as written
    (one line, exit 2)."""


@dataclass
class TraceStep:
    action: str
    args: Args
    text: str  # "iommu_attach_device_pasid(d5, dev0, 1) -> 0"
    hw: list[str] = field(default_factory=list)  # descriptors / commands issued
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        # "text" records the call's result, so that a replay can say which step changed
        return {"action": self.action, "args": list(self.args), "text": self.text}


@dataclass
class Trace:
    design: str
    hw: str
    bounds: Bounds
    steps: list[TraceStep] = field(default_factory=list)
    violation: Violation | None = None
    dump: list[str] = field(default_factory=list)  # hardware state at the violation

    def __len__(self) -> int:
        return len(self.steps)

    def listing(self, *, with_hw: bool = True) -> list[str]:
        out = []
        width = len(str(len(self.steps)))
        for i, s in enumerate(self.steps, 1):
            out.append(f"{i:>{width}}. {s.text}")
            pad = " " * (width + 2)
            if with_hw:
                out.extend(f"{pad}   hw: {h}" for h in s.hw)
            out.extend(f"{pad}   WARN: {w}" for w in s.warnings)
        return out

    def to_json(self) -> dict[str, Any]:
        from checker.userdesign import LOADED

        v = self.violation
        where = {"design_file": LOADED[self.design]} if self.design in LOADED else {}
        return {
            "format": TRACE_FORMAT,
            "design": self.design,
            **where,
            "hw": self.hw,
            "bounds": {k: getattr(self.bounds, k) for k in self.bounds.__dataclass_fields__},
            "steps": [s.to_json() for s in self.steps],
            "violation": None if v is None else {
                "invariant": v.invariant, "message": v.message, "evidence": list(v.evidence)},
            "listing": self.listing(with_hw=False),
        }

    def pytest_reproducer(self) -> str:
        """A test that fails while the violation still reproduces."""
        data = json.dumps({k: v for k, v in self.to_json().items() if k != "listing"}, indent=4)
        inv = self.violation.invariant if self.violation else "none"
        name = f"{self.design}_{self.hw}_{inv}".replace("-", "_")
        return (
            f"# Reproducer written by iommucheck: {inv} on design {self.design!r}, {self.hw}.\n"
            f"# It fails while the design still violates the invariant.\n"
            f"import json\n\n"
            f"from checker.replay import replay_data\n\n"
            f"TRACE = json.loads(r\"\"\"\n{data}\n\"\"\")\n\n\n"
            f"def test_{name}_fixed() -> None:\n"
            f"    result = replay_data(TRACE)\n"
            f"    assert result.violation is None, result.violation.message\n"
        )


def record_step(k_before: Kernel, k_after: Kernel, action: Action, args: Args, result: Any) -> TraceStep:
    text = show_call(k_after, action, args, result, before=k_before)
    injected = k_after.injected_at[len(k_before.injected_at):]
    if injected:  # "... -> -ENOMEM [injected in set_dev_pasid(devS1)]"
        text += f" [injected in {', '.join(injected)}]"
    return TraceStep(
        action=action.name,
        args=tuple(args),
        text=text,
        hw=k_after.driver.take_hw_log(k_after),
        warnings=k_after.warnings[len(k_before.warnings):],
    )


def load_trace_json(text: str, where: str = "trace") -> dict[str, Any]:
    """A trace file's JSON, every field checked (TraceError names the first bad one)."""
    try:
        data = loads(text, where)
    except InputError as e:
        raise TraceError(str(e)) from None
    if not isinstance(data, dict) or data.get("format") != TRACE_FORMAT:
        raise TraceError(f"not an iommucheck trace (expected \"format\": \"{TRACE_FORMAT}\")")
    return check_trace(data)


#: what a trace argument may be in JSON: a device name, an object id, a PASID, an
#: address or none (model.actions.values)
def _is_arg(v: Any) -> bool:
    return v is None or is_int(v) or isinstance(v, str)


def check_trace(data: Any) -> dict[str, Any]:
    """The fields a replay reads, typed: design, design_file, hw, bounds, steps."""
    from checker.world import HW_KINDS

    def need(ok: bool, field: str, value: Any, expected: str) -> None:
        expect(ok, "trace", field, value, expected, TraceError)

    need(isinstance(data, dict), "(top level)", type(data).__name__, "an object")
    for key in ("design", "hw", "bounds", "steps"):
        if key not in data:
            raise TraceError(f"trace has no {key!r}")
    need(isinstance(data["design"], str) and bool(data["design"]), "design", data["design"],
         "a design name")
    if "design_file" in data:
        need(isinstance(data["design_file"], str) and bool(data["design_file"]), "design_file",
             data["design_file"], "the path of the design file")
    need(data["hw"] in HW_KINDS if isinstance(data["hw"], str) else False, "hw", data["hw"],
         f"one of {', '.join(HW_KINDS)}")
    need(isinstance(data["steps"], list), "steps", data["steps"], "a list of steps")
    for i, s in enumerate(data["steps"], 1):
        where = f"step {i}"
        need(isinstance(s, dict), where, s, 'an object {"action": NAME, "args": [...]}')
        action = s.get("action")
        if not isinstance(action, str) or action not in ACTIONS_BY_NAME:
            raise TraceError(f"trace step {i}: unknown action {action!r}"
                             + ("" if isinstance(action, str) else " (expected a call name)"))
        args = s.get("args")
        need(isinstance(args, list), f"{where} args", args, "a list")
        params = ACTIONS_BY_NAME[action].params
        if len(args) != len(params):
            raise TraceError(f"trace step {i}: {action} takes {len(params)} argument(s) "
                             f"({', '.join(p.name for p in params)}), the trace gives {len(args)}")
        for a, p in zip(args, params):
            need(_is_arg(a), f"{where} {action} argument {p.name}", a,
                 f"a {p.kind.value}: a name, a number or null")
        if "text" in s:
            need(isinstance(s["text"], str), f"{where} text", s["text"], "the call as recorded")
    checked: dict[str, Any] = data
    return checked


__all__ = ["Step", "Trace", "TraceStep", "TraceError", "record_step", "load_trace_json"]
