"""User design files: a short Python file defining a `Design`, optionally with its own driver.

    # my_design.py
    from model.design import UPSTREAM
    from dataclasses import replace
    DESIGN = replace(UPSTREAM, name="my-design", rationale="...", detach_passes_old=False)

A file may also bring a driver that overrides one step: define a subclass of a
model driver and point the design at it with `driver_factory=lambda hw, bounds: ...`
(see examples/). Everything the file hands over is checked before any run, against
the model's own declarations (model/design.py: FEATURES, KNOBS, KINDS, the policy
enums; checker/world.py: HW_KINDS; model/drivers: the driver of each hardware kind):
a file that fails to import (whatever it raises, `SystemExit` and `KeyboardInterrupt`
included), defines no design or an invalid one, or whose factories raise or return
something else than a driver of the design's hardware, raises `DesignFileError` with
one line naming the file, the field and what was expected (exit 2).
"""

from __future__ import annotations

import inspect
import re
import runpy
from dataclasses import fields
from enum import Enum
from pathlib import Path
from typing import Any, Callable, TypeVar

from model.actions import ACTIONS_BY_NAME
from model.bounds import Bounds, BoundsError
from model.design import FEATURES, KINDS, KNOBS, Design, NotifierFree, PasidAlloc, PasidFree
from model.designs import DESIGNS
from model.drivers.base import Driver

from checker.inputs import InputError, expect, read_text
from checker.world import HW_KINDS


class DesignFileError(InputError):
    """A design file that cannot be checked as written (one line, exit 2)."""


#: design name -> the absolute path of the file it was loaded from (traces of a user
#: design name their file, so that `replay` and the pytest reproducer can load it again)
LOADED: dict[str, str] = {}

#: the module name design files run under, and the classes they define (by qualified
#: name): the parallel explorer pickles states of a design file's kernel or driver
#: subclass by these names (checker/parallel.py)
USER_MODULE = "iommucheck_design"
USER_CLASSES: dict[str, type] = {}

#: a design's name becomes a file name (--trace-dir DIR/<design>-<hw>.json) and a test name
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

T = TypeVar("T")


def guarded(what: str, fn: Callable[[], T], how: str = "raised") -> T:
    """Run the user's code; whatever it raises becomes one DesignFileError line.

    BaseException on purpose: a design file that calls sys.exit() or raises
    KeyboardInterrupt while importing is a broken file, not a request to stop."""
    try:
        return fn()
    except DesignFileError:
        raise
    except SyntaxError as e:
        raise DesignFileError(f"{what}: syntax error at line {e.lineno}: {e.msg}") from None
    except BaseException as e:  # noqa: B036 - see the docstring
        detail = f": {e}" if str(e) else ""
        raise DesignFileError(f"{what} {how} {type(e).__name__}{detail}") from None


def load_design_file(path: str) -> Design:
    if not path:
        raise DesignFileError("design file: the path is empty")
    p = Path(path)
    if not p.is_file():
        raise DesignFileError(f"design file {path}: "
                              f"{'is a directory' if p.is_dir() else 'no such file'}")
    try:
        read_text(path, "design file")
    except InputError as e:
        raise DesignFileError(str(e)) from None
    ns: dict[str, Any] = guarded(f"design file {path}",
                                 lambda: runpy.run_path(str(p), run_name=USER_MODULE),
                                 how="failed to import:")
    USER_CLASSES.update({v.__qualname__: v for v in ns.values()
                         if isinstance(v, type) and v.__module__ == USER_MODULE})
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


# -- the fields of a Design ------------------------------------------------------------------
def _expect(ok: bool, where: str, field: str, value: Any, expected: str) -> None:
    expect(ok, f"design file {where}", field, value, expected, DesignFileError)


def _strs(value: Any) -> bool:
    return isinstance(value, (tuple, list, set, frozenset)) and all(isinstance(v, str) for v in value)


def validate(d: Design, where: str) -> None:
    """Every field of d has the type and a value the model declares (one line if not)."""
    _expect(isinstance(d.name, str) and bool(NAME_RE.fullmatch(d.name)), where, "name", d.name,
            "a non-empty name of letters, digits, '.', '_' and '-' (it names trace files)")
    if d.name in DESIGNS and DESIGNS[d.name] != d:
        raise DesignFileError(
            f"design file {where}: name {d.name!r} is a built-in design; choose another name")
    for f in ("summary", "rationale", "history", "check_bounds"):
        _expect(isinstance(getattr(d, f), str), where, f, getattr(d, f), "a str")
    _expect(_strs(d.seeds), where, "seeds", d.seeds, "a tuple of seed file names")
    _expect(isinstance(d.features, (set, frozenset)) and _strs(d.features), where, "features",
            d.features, f"a frozenset of {', '.join(sorted(FEATURES))}")
    bad = sorted(set(d.features) - FEATURES)
    _expect(not bad, where, "features", bad, f"features among {', '.join(sorted(FEATURES))}")
    _expect(isinstance(d.knobs, (set, frozenset)) and _strs(d.knobs), where, "knobs", d.knobs,
            "a frozenset of knob names (model/design.py KNOBS)")
    bad = sorted(set(d.knobs) - set(KNOBS))
    _expect(not bad, where, "knobs", bad,
            f"knobs the model reads: {', '.join(KNOBS)} (any other name would change nothing)")
    for fd in fields(Design):
        if fd.type in ("bool", bool):
            v = getattr(d, fd.name)
            _expect(isinstance(v, bool), where, fd.name, v, "True or False")
    enums: tuple[tuple[str, type[Enum]], ...] = (
        ("pasid_alloc", PasidAlloc), ("pasid_free", PasidFree), ("notifier_free", NotifierFree))
    for name, enum in enums:
        v = getattr(d, name)
        _expect(isinstance(v, enum), where, name, v,
                f"one of {', '.join(f'{enum.__name__}.{m.name}' for m in enum)}")
    _expect(isinstance(d.hw, (tuple, list)) and _strs(d.hw) and bool(d.hw)
            and set(d.hw) <= set(HW_KINDS) and len(set(d.hw)) == len(d.hw), where, "hw", d.hw,
            f"a non-empty tuple of {' and/or '.join(repr(h) for h in HW_KINDS)} (the hardware "
            f"`check` runs on)")
    _expect(d.kind in KINDS, where, "kind", d.kind, f"one of {', '.join(KINDS)}")
    _check_expect_breaks(d, where)
    _expect(_strs(d.changed_calls) and set(d.changed_calls) <= set(ACTIONS_BY_NAME), where,
            "changed_calls", d.changed_calls, "a tuple of call names (`iommucheck contracts`)")
    _check_check_bounds(d, where)
    for hw in d.hw:
        check_factories(d, hw, Bounds(), where)


def _check_expect_breaks(d: Design, where: str) -> None:
    from invariants.catalog import CATALOG

    ids = {i.id for i in CATALOG}
    eb = d.expect_breaks
    ok = isinstance(eb, (tuple, list)) and all(
        isinstance(e, (tuple, list)) and len(e) == 2 and e[0] in HW_KINDS and _strs(e[1])
        and set(e[1]) <= ids for e in eb)
    _expect(ok, where, "expect_breaks", eb,
            f"a tuple of (hw, (invariant id, ...)) pairs, hw among {', '.join(HW_KINDS)} "
            "(`iommucheck invariants`)")


def _check_check_bounds(d: Design, where: str) -> None:
    from checker.worlds import design_world

    try:
        design_world(d.check_bounds)
    except BoundsError as e:
        raise DesignFileError(f"design file {where}: check_bounds={d.check_bounds!r}: expected a "
                              f"world name (`iommucheck worlds`) or bounds: {e}") from None


def check_factories(d: Design, hw: str, bounds: Bounds, where: str) -> None:
    """Call the design's factories as a check will; each must give what the model expects."""
    if d.driver_factory is not None:
        make_checked_driver(d, hw, bounds, where)
    if d.kernel_factory is not None:
        f = d.kernel_factory
        _expect(callable(f), where, "kernel_factory", f,
                "a callable with model.core.Kernel's signature (hw, devices, design=, driver=)")
        try:
            inspect.signature(f).bind(hw, (), design=d, driver=None)
        except TypeError:
            raise DesignFileError(f"design file {where}: kernel_factory{inspect.signature(f)} "
                                  f"cannot be called as Kernel(hw, devices, design=, driver=)"
                                  ) from None
        except ValueError:  # no signature to read: booting will tell
            pass


def make_checked_driver(d: Design, hw: str, bounds: Bounds, where: str) -> Driver:
    """The design's driver for hw, or a DesignFileError naming what the factory did wrong."""
    from model import drivers

    f = d.driver_factory
    _expect(callable(f), where, "driver_factory", f, "a callable (hw, bounds) -> Driver")
    assert f is not None
    try:
        inspect.signature(f).bind(hw, bounds)
    except TypeError:
        raise DesignFileError(f"design file {where}: driver_factory{inspect.signature(f)} cannot "
                              f"be called as driver_factory(hw, bounds)") from None
    except ValueError:  # no signature (a builtin): calling it will tell
        pass
    driver = guarded(f"design file {where}: driver_factory({hw!r}, bounds)", lambda: f(hw, bounds))
    model_driver = type(drivers.make_driver(hw, bounds))
    if not isinstance(driver, model_driver):
        raise DesignFileError(
            f"design file {where}: driver_factory({hw!r}, bounds) returned "
            f"{'None' if driver is None else 'a ' + type(driver).__name__}: expected a "
            f"{model_driver.__module__}.{model_driver.__name__} (or a subclass) for {hw}")
    return driver
