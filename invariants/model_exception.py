"""The pseudo-invariant `model-exception`: a Python exception inside the model is a finding.

It has no check function. `checker.run.Runner` reports it whenever a call or event
(the kernel, a driver, a design file's driver) or an invariant's check raises an
`Exception`, whatever invariants were selected: the step becomes a violation of
`model-exception`, with the call sequence that reaches it, like any other violation.
Selecting only `model-exception` checks for exceptions and nothing else.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from pathlib import Path

from invariants.base import Invariant, Layer, Violation

MODEL_EXCEPTION = "model-exception"

MODEL_EXCEPTION_INVARIANT = Invariant(
    MODEL_EXCEPTION,
    "No call, event or invariant check raises a Python exception inside the model, a driver "
    "or a design.",
    "An exception inside the model, a driver or a design is a bug of the design or the model, "
    "found like any violation: the checker reports it with the shortest (explorer) or shrunk "
    "(Hypothesis) call sequence that raises it, as a trace that replays and a pytest reproducer, "
    "instead of a Python traceback that loses the calls.",
    (), Layer.API,
)

#: traceback frames shown as the violation's evidence (the innermost ones)
FRAMES = 6
#: frames in these directories are the checker's, not the model's
_CHECKER_DIR = Path(__file__).resolve().parents[1] / "checker"
_ROOT = _CHECKER_DIR.parent


@dataclass(frozen=True)
class ModelException(Violation):
    """A violation of `model-exception`; `error` is the exception's type name."""

    error: str = ""


def _where(filename: str) -> str:
    p = Path(filename)
    try:
        return str(p.resolve().relative_to(_ROOT))
    except (OSError, ValueError):
        return filename


def frames(e: BaseException, limit: int = FRAMES) -> tuple[str, ...]:
    """The innermost frames of e's traceback outside the checker, as 'file:line in func'."""
    out = []
    for fs in traceback.extract_tb(e.__traceback__):
        try:
            if Path(fs.filename).resolve().is_relative_to(_CHECKER_DIR):
                continue
        except OSError:
            pass
        out.append(f"{_where(fs.filename)}:{fs.lineno} in {fs.name}")
    return tuple(out[-limit:])


#: what the engines catch as a model exception: any Exception, and SystemExit, since a
#: driver step calling sys.exit() would otherwise end the check with its own status (a
#: silent "holds" for sys.exit(0)); KeyboardInterrupt is the user's Ctrl-C and propagates
MODEL_ERRORS: tuple[type[BaseException], ...] = (Exception, SystemExit)


def describe(e: BaseException) -> str:
    """'ZeroDivisionError: division by zero' (the type alone if the message is empty)."""
    msg = str(e)
    return f"{type(e).__name__}: {msg}" if msg else type(e).__name__


def model_exception(what: str, e: BaseException) -> ModelException:
    """The violation for `what` (a call text, or 'invariant X checking ...') raising e."""
    return ModelException(MODEL_EXCEPTION, f"{what} raised {describe(e)}", frames(e),
                          error=type(e).__name__)


def finding_key(v: Violation) -> tuple[str, str]:
    """What makes two findings the same one: the invariant, and for a model exception its type
    (shrinking and the saturated explorer's trace minimisation keep this fixed)."""
    return (v.invariant, v.error if isinstance(v, ModelException) else "")


__all__ = ["FRAMES", "MODEL_EXCEPTION", "MODEL_EXCEPTION_INVARIANT", "ModelException", "describe",
           "finding_key", "frames", "model_exception"]
