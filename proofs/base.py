"""What a proof is: a named claim, its assumptions, the result we expect, and a z3 check.

Every proof (DESIGN.md section 7) is a `Proof` value with a stable name, a one-line
statement and the assumptions it rests on. `run()` returns a `ProofResult`: either
"proved" (z3 found the negation of the claim unsatisfiable) or "counterexample"
(z3 found a model, which the proof decodes back into table entries and, where it
applies, kernel calls). Some proofs are written to FAIL on purpose ("without
update-safe bits, nested -> S2 breaks"): their `expect` is "counterexample", so
the CLI and the tests can tell a surprise from a confirmation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Mapping

import z3

Status = Literal["proved", "counterexample", "unknown"]

#: Per-query solver timeout. Every query of the default suite answers in well under
#: a second; hitting this means the encoding regressed, and the proof says "unknown".
QUERY_TIMEOUT_MS = 60_000


@dataclass(frozen=True)
class Outcome:
    """What a proof's check found, before timing: status, readable details, structured witness."""

    status: Status
    details: tuple[str, ...] = ()
    #: machine-readable facts about a counterexample (decoded entries, calls) for the tests
    witness: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProofResult:
    name: str
    status: Status
    seconds: float
    details: list[str]
    expected: Status = "proved"
    witness: Mapping[str, Any] = field(default_factory=dict)

    @property
    def as_expected(self) -> bool:
        return self.status == self.expected


@dataclass(frozen=True)
class Proof:
    """One claim. `check` builds the z3 queries and decodes any model it finds."""

    name: str
    statement: str
    assumptions: tuple[str, ...]
    expect: Literal["proved", "counterexample"]
    check: Callable[[], Outcome] = field(repr=False, compare=False)
    #: which part of DESIGN.md section 7 / hw-tables.md it belongs to (for the README table)
    topic: str = ""

    def run(self) -> ProofResult:
        start = time.perf_counter()
        out = self.check()
        return ProofResult(
            name=self.name,
            status=out.status,
            seconds=time.perf_counter() - start,
            details=list(out.details),
            expected=self.expect,
            witness=dict(out.witness),
        )


# -- z3 helpers ------------------------------------------------------------------------
def solver() -> z3.Solver:
    s = z3.Solver()
    s.set("timeout", QUERY_TIMEOUT_MS)
    return s


def as_int(model: z3.ModelRef, expr: z3.ExprRef) -> int:
    v = model.eval(expr, model_completion=True)
    if z3.is_bv_value(v) or z3.is_int_value(v):
        return int(v.as_long())
    raise TypeError(f"{expr} evaluates to {v}, not a number")


def as_bool(model: z3.ModelRef, expr: z3.ExprRef) -> bool:
    return bool(z3.is_true(model.eval(expr, model_completion=True)))


def unknown(what: str) -> Outcome:
    return Outcome("unknown", (f"z3 gave up (timeout {QUERY_TIMEOUT_MS} ms) on: {what}",))
