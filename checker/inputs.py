"""The one door for what a user hands over: files read, JSON decoded, fields typed.

Every input error is an `InputError` (or a subclass: DesignFileError, TraceError,
ResultsError) whose message is one line naming the file, the field and what was
expected; the CLI prints it and exits 2 (`checker.cli.main`). Bounds are checked by
`model.bounds.Bounds` itself (its LIMITS and FLAGS), design fields by
`checker.userdesign.validate`, both against the model's own declarations.
"""

from __future__ import annotations

import json
from typing import Any

#: JSON a trace or results file may nest (theirs nest 4 deep): deeper is refused before
#: Python's recursion limit turns json.loads into a RecursionError
MAX_JSON_DEPTH = 32


class InputError(ValueError):
    """Bad input: one line for the user, exit status 2."""


def read_text(path: str, what: str) -> str:
    """The file's text, or an InputError naming the file (missing, a directory, not UTF-8)."""
    if not path:
        raise InputError(f"{what}: the path is empty")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except IsADirectoryError:
        raise InputError(f"cannot read {what} {path}: it is a directory") from None
    except OSError as e:
        raise InputError(f"cannot read {what} {path}: {e.strerror}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{what} {path} is not UTF-8 text (byte {e.start}: {raw[e.start]:#04x})") from None


def loads(text: str, what: str) -> Any:
    """json.loads, with the nesting bounded and the error in one line."""
    depth = 0
    in_str = escaped = False
    for ch in text:  # a linear scan: brackets outside strings
        if in_str:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise InputError(f"{what} nests JSON more than {MAX_JSON_DEPTH} deep")
        elif ch in "]}":
            depth -= 1
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{what} is not valid JSON: {e.msg} at line {e.lineno}") from None
    except RecursionError:  # pragma: no cover - the scan above refuses it first
        raise InputError(f"{what} nests JSON too deeply") from None


def expect(ok: bool, where: str, field: str, value: Any, expected: str,
           error: type[InputError] = InputError) -> None:
    """Raise `error` "WHERE: FIELD=VALUE: expected EXPECTED" unless ok."""
    if not ok:
        raise error(f"{where}: {field}={show(value)}: expected {expected}")


def show(value: Any) -> str:
    """A value as the message quotes it: repr, cut at 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def is_int(v: Any) -> bool:
    """An integer and not a bool (JSON true is not a count)."""
    return isinstance(v, int) and not isinstance(v, bool)
