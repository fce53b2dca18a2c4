"""What an invariant is: a named, reasoned property checked on a state or on a step.

Invariants read the model (`model.core.Kernel`) and, through the driver's
introspection methods, the hardware; they never change either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable

from model.actions import Action, Args
from model.bounds import Bounds
from model.core import Kernel


class Layer(Enum):
    API = "api"  # a statement about the kernel's objects and calls
    HW = "hw"  # a statement about what the hardware may do


@dataclass(frozen=True)
class Step:
    """One transition: the state before, the call or event with its result, the state after."""

    before: Kernel
    action: Action
    args: Args
    result: Any
    after: Kernel

    @property
    def new_warnings(self) -> list[str]:
        return self.after.warnings[len(self.before.warnings):]


@dataclass(frozen=True)
class Violation:
    invariant: str
    message: str  # why it fails here, in kernel terms
    evidence: tuple[str, ...] = ()  # hardware entries / cache entries involved, decoded


StateCheck = Callable[[Kernel, Bounds], "Violation | None"]
StepCheck = Callable[[Step, Bounds], "Violation | None"]


@dataclass(frozen=True)
class Invariant:
    id: str
    statement: str  # one sentence
    rationale: str  # why it matters; kernel history
    seeds: tuple[str, ...]  # seed file names it comes from
    layer: Layer
    check_state: StateCheck | None = None
    check_step: StepCheck | None = None
    quote: str = ""  # the seed sentence it makes precise
    applies: Callable[[str], bool] = field(default=lambda hw: True)  # hardware kinds

    def check(self, step: Step | None, k: Kernel, b: Bounds) -> Violation | None:
        if step is not None and self.check_step is not None:
            v = self.check_step(step, b)
            if v is not None:
                return v
        if self.check_state is not None:
            return self.check_state(k, b)
        return None


class UnknownInvariant(KeyError):
    pass
