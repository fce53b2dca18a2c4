"""User design files: a short Python file defining a `Design`, optionally with its own driver.

    # my_design.py
    from model.design import UPSTREAM
    from dataclasses import replace
    DESIGN = replace(UPSTREAM, name="my-design", rationale="...", detach_passes_old=False)

A file may also bring a driver that overrides one step: define a subclass of a
model driver and point the design at it with `driver_factory=lambda hw, bounds: ...`
(see examples/). A file that fails to import, defines no design or an invalid one
raises `DesignFileError` with one line naming the problem.
"""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

from model.design import FEATURES, Design
from model.designs import DESIGNS


class DesignFileError(ValueError):
    pass


KNOWN_HW = ("vtd", "smmuv3", "mock")

#: design name -> the absolute path of the file it was loaded from (traces of a user
#: design name their file, so that `replay` and the pytest reproducer can load it again)
LOADED: dict[str, str] = {}


def load_design_file(path: str) -> Design:
    p = Path(path)
    if not p.is_file():
        raise DesignFileError(f"design file {path}: no such file")
    try:
        ns: dict[str, Any] = runpy.run_path(str(p), run_name="iommucheck_design")
    except SyntaxError as e:
        raise DesignFileError(f"design file {path}: syntax error at line {e.lineno}: {e.msg}") from None
    except Exception as e:  # the user's code: report it in one line, never a traceback
        raise DesignFileError(f"design file {path} failed to import: {type(e).__name__}: {e}") from None
    design = ns.get("DESIGN")
    if design is None:
        found = [v for v in ns.values() if isinstance(v, Design)]
        if len(found) != 1:
            raise DesignFileError(
                f"design file {path} defines {'no' if not found else 'several'} Design value(s); "
                f"assign the one to check to DESIGN"
            )
        design = found[0]
    if not isinstance(design, Design):
        raise DesignFileError(f"design file {path}: DESIGN is a {type(design).__name__}, not a Design")
    validate(design, path)
    LOADED[design.name] = str(p.resolve())
    return design


def validate(d: Design, where: str) -> None:
    if not d.name or not isinstance(d.name, str):
        raise DesignFileError(f"design file {where}: the design has no name")
    if d.name in DESIGNS and DESIGNS[d.name] != d:
        raise DesignFileError(
            f"design file {where}: name {d.name!r} is a built-in design; choose another name")
    unknown = set(d.hw) - set(KNOWN_HW)
    if unknown or not d.hw:
        raise DesignFileError(f"design file {where}: unknown hardware {sorted(unknown) or '(none)'} "
                              f"in hw (expected vtd and/or smmuv3)")
    bad = set(d.features) - FEATURES
    if bad:
        raise DesignFileError(f"design file {where}: unknown feature(s) {sorted(bad)}")
    if d.driver_factory is not None and not callable(d.driver_factory):
        raise DesignFileError(f"design file {where}: driver_factory is not callable")
