"""Fuzzing the command line with malformed input (issue #14).

Bad input must never reach the user as a traceback, as a silent success (exit 0 for a
design file whose `hw` is a str), or as a corrupted trace read as fixed (a replay that
skips the steps naming objects that do not exist, then reports "no longer violates").
The contract: every malformed input exits with status 2 and writes exactly one line on
stderr, starting with "iommucheck: error: ", and no "Traceback" appears anywhere.

Each Hypothesis example is one valid input (a bounds text, a design file, the trace
`check --trace-dir` writes, docs/results.json) with exactly one mutation, drawn from
the tables below as "which field" x "which bad value". Every example is therefore
malformed by construction, and is refused before any checking starts (a replay:
within its three steps), so each is fast. A run that gets as far as checking is
stopped there and fails: the progress line it prints on stderr already breaks the
one-line contract. `test_unmutated_inputs_are_accepted` checks the other half: each
input without its mutation gets past validation.

Budget: the default tests try about 1,000 inputs (FAST_EXAMPLES; about 8 s on 2
cores); the `deep` twins (`-m deep`) ten times as many per class, about 9,500 in
about 50 s (fewer where a table has fewer distinct inputs: Hypothesis stops when it
has tried them all). A count per class is printed after the module's tests.
The regression tests at the end are the concrete inputs of the issue, one per class;
they assert on the name of the field (bound, option, step) the message must name.
"""

from __future__ import annotations

import copy
import io
import json
import re
import signal
import tempfile
import threading
from collections import Counter
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import FrameType
from typing import Any, Callable, Iterator, Sequence

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from model.bounds import LIMITS

from checker.cli import main

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "iommucheck: error: "
#: a safety net only: a refusal takes milliseconds, a run that starts checking is
#: stopped at its first progress line
RUN_SECONDS = 30.0
#: the check command line of the bounds, design-file and empty-path classes
CHECK = ("check", "--hw", "vtd", "--budget", "quick", "--no-database")

#: examples per class in the default run; the deep twins run DEEP_FACTOR times as many
FAST_EXAMPLES = {"bounds": 200, "design-file": 300, "trace": 300, "results": 150, "empty-path": 20}
DEEP_FACTOR = 10

#: inputs tried per class in this session (printed after the module's tests)
TRIED: Counter[str] = Counter()


# -- running the CLI in-process ------------------------------------------------------------
STARTED = "checking started"  # Outcome.code of a run stopped at its first progress line
TIMED_OUT = f"still running after {RUN_SECONDS:.0f} s"


class _Stop(BaseException):
    """Ends a run early. A BaseException, so that no `except Exception` of the code
    under test (the model-exception guard, a design file's loader) takes it."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


#: the progress line `Reporter.begin` prints when stderr is not a terminal
_PROGRESS = re.compile(r"^iommucheck: (?!error: ).*: started \(\d+ s\)$", re.MULTILINE)


class _Stderr(io.StringIO):
    """The run's stderr; with `stop_at_check`, a progress line ends the run: checking
    has started, so the input got past validation (and stderr has two lines anyway)."""

    def __init__(self, stop_at_check: bool) -> None:
        super().__init__()
        self.stop_at_check = stop_at_check

    def write(self, s: str) -> int:
        n = super().write(s)
        if self.stop_at_check and _PROGRESS.search(self.getvalue()):
            raise _Stop(STARTED)
        return n


@dataclass(frozen=True)
class Outcome:
    #: the exit status, or what happened instead: STARTED, TIMED_OUT, "raised X: ..."
    code: int | str
    out: str
    err: str


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise _Stop(TIMED_OUT)


def run_cli(argv: Sequence[str], stop_at_check: bool = True) -> Outcome:
    """`iommucheck ARGV` in this process, its stdout and stderr captured.

    The CLI's rich consoles (checker.cli.out, .err) look sys.stdout / sys.stderr up
    at print time, so redirect_stdout / redirect_stderr capture them. Any exception
    other than SystemExit is caught and recorded (a KeyboardInterrupt raised by a
    design file must fail this example, not end the test session)."""
    out, err = io.StringIO(), _Stderr(stop_at_check)
    code: int | str
    timer = threading.current_thread() is threading.main_thread()
    if timer:
        previous = signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, RUN_SECONDS)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            try:
                main(list(argv))
                code = 0
            except SystemExit as e:
                code = (0 if e.code is None else e.code if isinstance(e.code, int)
                        else f"SystemExit({e.code!r})")
            except _Stop as e:
                code = e.why
            except BaseException as e:  # noqa: B036 - see the docstring
                code = f"raised {type(e).__name__}: {e}"
    finally:
        if timer:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    return Outcome(code, out.getvalue(), err.getvalue())


# -- an input, and the contract ------------------------------------------------------------
@dataclass(frozen=True, repr=False)
class Case:
    """One input: a command line and the files it reads."""

    cls: str  # bounds, design-file, trace, results, empty-path
    what: str  # the mutation, as a failure shows it
    argv: tuple[str, ...]  # "{dir}" stands for the example's temporary directory
    files: tuple[tuple[str, bytes], ...] = ()
    dirs: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"<{self.cls}: {self.what}>"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        """Hypothesis prints this for a falsifying example, not a 180 kB results.json."""
        p.text(repr(self))


def run_case(case: Case, stop_at_check: bool = True) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="iommucheck-fuzz-") as d:
        for name in case.dirs:
            (Path(d) / name).mkdir()
        for name, data in case.files:
            (Path(d) / name).write_bytes(data)
        return run_cli([a.replace("{dir}", d) for a in case.argv], stop_at_check)


def _traceback_type(text: str) -> str:
    """The exception a printed traceback ends with ("KeyError: 'cells'")."""
    tail = text[text.rindex("Traceback"):].strip().splitlines()
    return tail[-1][:120] if tail else "?"


def broken_contract(o: Outcome) -> list[str]:
    """What of the contract (exit 2, one line on stderr, no traceback) `o` breaks."""
    found: list[str] = []
    if o.code != 2:
        found.append(f"exit {o.code}" if isinstance(o.code, int) else str(o.code))
    if not (o.err.startswith(PREFIX) and o.err.count("\n") == 1 and o.err.endswith("\n")):
        found.append(f"stderr {shorten(o.err, 200)!r}")
    if "Traceback" in o.out + o.err:
        found.append(f"traceback {_traceback_type(o.out + o.err)}")
    return found


def assert_refused(case: Case) -> Outcome:
    TRIED[case.cls] += 1
    o = run_case(case)
    found = broken_contract(o)
    assert not found, f"{case!r}: " + "; ".join(found)
    return o


def shorten(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[:n - 3] + "..."


def show(value: Any) -> str:
    if value is MISSING:
        return "<missing>"
    return shorten(json.dumps(value) if _is_json(value) else repr(value))


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


# -- JSON edits ------------------------------------------------------------------------------
class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


#: an edit's value: delete the key
MISSING: Any = _Missing()

JsonPath = tuple[str | int, ...]
#: a label and the (path, value) changes it makes to a JSON document
Edit = tuple[str, tuple[tuple[JsonPath, Any], ...]]


def edit(path: JsonPath, value: Any) -> Edit:
    """One change: the value at `path` (keys and list indices) replaced or, MISSING, deleted."""
    return f"{'.'.join(map(str, path))} = {show(value)}", ((path, value),)


def apply_edit(doc: Any, e: Edit) -> Any:
    data = copy.deepcopy(doc)
    for path, value in e[1]:
        *head, last = path
        target = data
        for key in head:
            target = target[key]
        if value is MISSING:
            del target[last]
        else:
            target[last] = value
    return data


#: bytes that are never valid UTF-8 wherever they are put into ASCII text
NOT_UTF8 = (b"\xff", b"\xfe", b"\x80", b"\xc3", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80")
#: texts that are not JSON
NOT_JSON = ("", "   \n", "{", "nul", "{'format': 1}", "{\"format\": }", "\x00", "[1,]")
#: appended to a valid document: no longer JSON
GARBAGE = ("x", "}", "]", ",", " {}", "\x00")
#: nesting depths: past any sane limit, near Python's recursion limit, far past it
DEPTHS = (33, 1000, 100_000)


def json_file_mutations(doc: dict[str, Any], dump: Callable[[Any], str],
                        deep_key: str) -> st.SearchStrategy[tuple[str, bytes]]:
    """The file-level mutations of a JSON input file: not UTF-8, not JSON, nested too
    deeply, not an object at the top."""
    text = dump(doc)
    raw = text.encode()
    body = text.rstrip()  # a prefix of it is never JSON: the object is not closed

    def inserted(t: tuple[int, bytes]) -> tuple[str, bytes]:
        return f"not UTF-8: {t[1]!r} at byte {t[0]}", raw[:t[0]] + t[1] + raw[t[0]:]

    def nested(t: tuple[str, int]) -> tuple[str, bytes]:
        shape, n = t
        if shape == "unclosed [":
            s = "[" * n
        elif shape == "[...]":
            s = "[" * n + "]" * n
        elif shape == "{\"a\": ...}":
            s = "{\"a\": " * n + "1" + "}" * n
        else:  # the real document, one of its values nested n deep
            s = dump({**doc, deep_key: "@DEEP@"}).replace('"@DEEP@"', "[" * n + "]" * n)
        return f"nested {n} deep: {shape}", s.encode()

    not_objects: tuple[Any, ...] = ([], [doc], 5, "iommucheck", None, True, 1.5)
    return st.one_of(
        st.tuples(st.integers(0, len(raw)), st.sampled_from(NOT_UTF8)).map(inserted),
        st.just(("not UTF-8: UTF-16", text.encode("utf-16"))),
        st.integers(0, len(body) - 1).map(lambda n: (f"not JSON: cut to {n} characters",
                                                     body[:n].encode())),
        st.sampled_from(GARBAGE).map(lambda g: (f"not JSON: {g!r} appended", (text + g).encode())),
        st.sampled_from(NOT_JSON).map(lambda s: (f"not JSON: {s!r}", s.encode())),
        st.tuples(st.sampled_from(("unclosed [", "[...]", "{\"a\": ...}", f"{deep_key} nested")),
                  st.sampled_from(DEPTHS)).map(nested),
        st.sampled_from(not_objects).map(
            lambda v: (f"top level is {type(v).__name__}", json.dumps(v).encode())),
    )


# == 1. bounds ==================================================================================
BOUND_NAMES = ("devices", "ats_devices", "shared_group", "no_pasid_device", "mixed_group",
               "shared_ats", "max_pasids", "processes", "paging_domains", "iova_pages",
               "phys_pages", "ndoms", "asid_bits", "faults")
FLAGS = ("shared_group", "no_pasid_device", "mixed_group", "shared_ats")
COUNTS = tuple(n for n in BOUND_NAMES if n not in FLAGS)

#: the valid NAME=VALUE an example's text starts from: independent of one another and
#: of every mutation (no device count, no flag; ndoms and asid_bits leave a DID and an
#: ASID for each of the default two groups' default domains), so one mutation is the
#: only fault
BASE_BOUNDS = ("processes=1", "processes=2", "paging_domains=0", "paging_domains=1",
               "iova_pages=1", "iova_pages=2", "phys_pages=1", "phys_pages=2", "max_pasids=3",
               "max_pasids=4", "ndoms=4", "ndoms=6", "asid_bits=2", "asid_bits=16", "faults=0")
#: two valid values of each bound (for "given twice")
VALID_BOUNDS = {
    "devices": ("1", "2"), "ats_devices": ("0", "1"), **{f: ("0", "1") for f in FLAGS},
    "max_pasids": ("2", "3"), "processes": ("0", "1"), "paging_domains": ("0", "1"),
    "iova_pages": ("1", "2"), "phys_pages": ("1", "2"), "ndoms": ("4", "6"),
    "asid_bits": ("2", "3"), "faults": ("0", "1"),
}
UNKNOWN_BOUNDS = ("device", "widgets", "pasids", "nprocesses", "shared", "iova", "x", "faults_",
                  "_devices", "max-pasids")
NOT_INTEGERS = ("abc", "two", "1.5", "2.0", "", "1-", "--1", "0x", "1e3", "None", "=1")
NEGATIVES = ("-1", "-2", "-100000000")
FLAG_VALUES = ("2", "3", "-1", "-2", "100000000")
#: past each bound's limit, from the model's own table (model/bounds.py LIMITS): one
#: below the least (where that is not a negative, tried above), one above the most, huge
BEYOND_LIMIT = {
    n: tuple(str(v) for v in ((lo - 1,) if lo > 0 else ()) + (hi + 1, 100_000_000))
    for n, (lo, hi, _) in LIMITS.items()
}


def bound_mutations() -> list[tuple[str, tuple[str, ...]]]:
    """(what, the NAME=VALUE parts that make the text malformed)."""
    m: list[tuple[str, tuple[str, ...]]] = []
    m += [("unknown name", (f"{n}=1",)) for n in UNKNOWN_BOUNDS]
    m += [("no '='", (p,)) for n in BOUND_NAMES for p in (n, f"{n}:1")]
    m += [("given twice", (f"{n}={a}", f"{n}={b}"))
          for n, vals in VALID_BOUNDS.items() for a in vals for b in vals]
    m += [("not an integer", (f"{n}={v}",)) for n in BOUND_NAMES for v in NOT_INTEGERS]
    m += [("negative", (f"{n}={v}",)) for n in BOUND_NAMES for v in NEGATIVES]
    m += [("a 0/1 flag", (f"{n}={v}",)) for n in FLAGS for v in FLAG_VALUES]
    m += [("beyond its limit", (f"{n}={v}",)) for n, vals in BEYOND_LIMIT.items() for v in vals]
    m += [("ats_devices > devices", (f"devices={d}", f"ats_devices={a}"))
          for d in (0, 1, 2, 3) for a in (d + 1, d + 3, 16, 100000000)]
    m += [("shared_ats=1 without shared_group=1 or mixed_group=1", p)
          for p in (("shared_ats=1",), ("shared_ats=1", "no_pasid_device=1"))]
    m += [("no device", p) for p in (("devices=0",), ("devices=0", "ats_devices=0"))]
    return m


BOUND_MUTATIONS = bound_mutations()


def bounds_case(parts: Sequence[str], what: str = "valid") -> Case:
    return Case("bounds", f"{what}: --bounds {','.join(parts)!r}",
                CHECK + ("--bounds", ",".join(parts)))


@st.composite
def bounds_cases(draw: st.DrawFn) -> Case:
    what, bad = draw(st.sampled_from(BOUND_MUTATIONS))
    names = {p.partition("=")[0] for p in bad}
    base = draw(st.lists(st.sampled_from([p for p in BASE_BOUNDS if p.partition("=")[0] not in names]),
                         unique_by=lambda p: p.partition("=")[0], max_size=5))
    parts = draw(st.permutations([*base, *bad]))
    return bounds_case(parts, what)


# == 2. design files ============================================================================
DESIGN_PRELUDE = '''\
from dataclasses import replace

from model.design import UPSTREAM, Design, NotifierFree, PasidAlloc, PasidFree
from model.drivers.mock import MockDriver
from model.drivers.smmuv3 import SmmuV3Driver
from model.drivers.vtd import VtdDriver


def failing_factory(hw, bounds):
    raise RuntimeError("no driver today")
'''
#: the valid design: DESIGN = replace(UPSTREAM, name=..., kind=..., hw=...)
BASE_DESIGN = {"name": '"fuzz-design"', "kind": '"user"', "hw": '("vtd",)'}


def design_source(**fields: str) -> str:
    """The valid design file, with these fields (Python expressions) replaced or added."""
    args = "".join(f", {k}={v}" for k, v in {**BASE_DESIGN, **fields}.items())
    return f"{DESIGN_PRELUDE}\nDESIGN = replace(UPSTREAM{args})\n"


NOT_BOOL = ('"no"', '"yes"', '"False"', "0", "1", "2", "None", "[]")
NOT_TEXT = ("5", "None", '["text"]', 'b"text"', "(\"a\", \"b\")")
#: field -> wrong expressions (a wrong type or a wrong value each)
DESIGN_FIELD_BAD: dict[str, tuple[str, ...]] = {
    "name": ('""', '"upstream"', '"notifier-put"', '"a b/c"', '"fuzz design"', '"fuzz/design"',
             r'"fuzz\ndesign"', '"fuzz:design"', "5", "None", '["fuzz-design"]'),
    "summary": NOT_TEXT,
    "rationale": NOT_TEXT,
    "history": NOT_TEXT,
    "seeds": ('"001"', "5", "None", "(1, 2)", "(None,)", '("001", 2)'),
    "features": ('["sva", "bogus"]', 'frozenset({"bogus"})', 'frozenset({"sva", "bogus"})', '"sva"',
                 "None", "5", "frozenset({5})", '{"sva": True}'),
    "attach_refused_while_pasid_users": NOT_BOOL,
    "handover_by_attach": NOT_BOOL,
    "detach_passes_old": NOT_BOOL,
    "notifier_sync_at_unload": NOT_BOOL,
    "pasid_alloc": ('"junk"', '"GLOBAL"', "PasidAlloc.GLOBAL.value", "PasidAlloc", "None", "5",
                    "PasidFree.MMDROP", "NotifierFree.PUT"),
    "pasid_free": ('"junk"', '"MMDROP"', "PasidFree.MMDROP.value", "None", "5", "PasidAlloc.GLOBAL"),
    "notifier_free": ('"junk"', '"PUT"', "NotifierFree.PUT.value", "None", "5", "PasidFree.MMDROP"),
    "knobs": ('frozenset({"vtd.nonsense"})', 'frozenset({"nonsense"})',
              'frozenset({"vtd.teardown_skip_pasid_cache", "smmu.nonsense"})',
              '"vtd.teardown_skip_pasid_cache"', '["vtd.nonsense"]', "None", "5", "frozenset({5})"),
    "hw": ('"vtd"', '("mock",)', "()", '("vtd", "mock")', '("arm",)', '("VTD",)', "None", "5",
           '("vtd", 5)', '"vtd,smmuv3"', '{"vtd": 1}'),
    "expect_breaks": ('"vtd"', "5", "None", '(("vtd", "no-leak"),)', '(("mock", ()),)',
                      '(("vtd", ("no-such-invariant",)),)', '(("vtd",),)', '{"vtd": ()}'),
    "kind": ("5", "None", '["user"]', 'b"user"'),
    "check_bounds": ('"junk"', '"no-such-world"', '"devices"', '"devices=99"', '"widgets=1"',
                     '"devices=1,devices=2"', '"shared_group=2"', "5", "None", '("sva1",)'),
    "driver_factory": (
        "failing_factory",  # raises RuntimeError
        "lambda hw, b: 1 // 0",
        "lambda hw, b: {}[hw]",
        "lambda hw, b: None",
        "lambda hw, b: 5",
        "lambda hw, b: 'vtd'",
        "lambda hw, b: VtdDriver",  # the class, not a driver
        "lambda hw, b: SmmuV3Driver(asid_bits=b.asid_bits)",  # the other kind
        "lambda hw, b: MockDriver()",  # not a vtd driver either
        "lambda: VtdDriver()",
        "lambda hw: VtdDriver(ndoms=6)",
        "lambda hw, b, c: VtdDriver(ndoms=b.ndoms)",
        "5",
        '"VtdDriver"',
        "VtdDriver()",  # a driver, not a factory
    ),
    "kernel_factory": ("5", '"Kernel"', "VtdDriver()"),
}
#: statements that end a design file's import
RAISE_AT_IMPORT = ('raise RuntimeError("boom")', "1 / 0", "import no_such_module_xyz",
                   "raise ValueError('bad')", "raise SystemExit(3)", "raise SystemExit(0)",
                   "raise SystemExit", "import sys; sys.exit()", "import sys; sys.exit(1)",
                   "import sys; sys.exit('bye')", "raise KeyboardInterrupt",
                   "raise BaseException('x')", "raise GeneratorExit")
SYNTAX_ERRORS = ("DESIGN = (", "def f(:", "  x = 1", "return 5", "yield 5", "x = = 1",
                 "# a NUL \x00 byte", "if True:\nx = 1")
#: whole files that define no usable DESIGN
NO_DESIGN = (
    ("an empty file", ""),
    ("no Design value", "x = 1\n"),
    ("DESIGN = None, no Design value", "DESIGN = None\n"),
    ("two Design values, no DESIGN", DESIGN_PRELUDE
     + "A = replace(UPSTREAM, name='fuzz-a', kind='user', hw=('vtd',))\n"
     + "B = replace(UPSTREAM, name='fuzz-b', kind='user', hw=('vtd',))\n"),
)
#: DESIGN = <not a Design> (truthy, so that no loader falls back to another value)
DESIGN_NOT_A_DESIGN = ("5", '"fuzz-design"', "True", "Design", "UPSTREAM.name", "lambda: UPSTREAM",
                       "[replace(UPSTREAM, name='fuzz-design', kind='user', hw=('vtd',))]",
                       "{'name': 'fuzz-design'}")


def design_mutations() -> list[tuple[str, str]]:
    """(what, the file's text)."""
    m = [(f"{f}={v}", design_source(**{f: v})) for f, vals in DESIGN_FIELD_BAD.items() for v in vals]
    for s in RAISE_AT_IMPORT + SYNTAX_ERRORS:
        m += [(f"{s!r} at the top", f"{s}\n{design_source()}"),
              (f"{s!r} at the end", f"{design_source()}{s}\n")]
    m += list(NO_DESIGN)
    m += [(f"DESIGN = {v}", f"{DESIGN_PRELUDE}\nDESIGN = {v}\n") for v in DESIGN_NOT_A_DESIGN]
    return m


DESIGN_MUTATIONS = design_mutations()


def design_case(what: str, source: bytes | str) -> Case:
    data = source.encode() if isinstance(source, str) else source
    return Case("design-file", what, ("check", "--design-file", "{dir}/design.py", *CHECK[1:]),
                files=(("design.py", data),))


DESIGN_PATHS = (
    Case("design-file", "the path is a directory", ("check", "--design-file", "{dir}", *CHECK[1:])),
    Case("design-file", "the path is a directory named .py",
         ("check", "--design-file", "{dir}/sub.py", *CHECK[1:]), dirs=("sub.py",)),
    Case("design-file", "no such file", ("check", "--design-file", "{dir}/missing.py", *CHECK[1:])),
)


@st.composite
def design_cases(draw: st.DrawFn) -> Case:
    source = design_source().encode()
    kind = draw(st.sampled_from(("edit", "edit", "edit", "edit", "not utf-8", "path")))
    if kind == "edit":  # a field, or the file's code
        return design_case(*draw(st.sampled_from(DESIGN_MUTATIONS)))
    if kind == "not utf-8":
        at = draw(st.integers(0, len(source)))
        bad = draw(st.sampled_from(NOT_UTF8))
        return design_case(f"not UTF-8: {bad!r} at byte {at}", source[:at] + bad + source[at:])
    return draw(st.sampled_from(DESIGN_PATHS))


# == 3. trace files =============================================================================
#: the world of the trace every mutation starts from (3 steps, exit 1: it violates)
TRACE_BOUNDS = "devices=1,ats_devices=1,processes=1,paging_domains=1,iova_pages=1,phys_pages=2,max_pasids=3"
TRACE_DESIGN = "notifier-kfree-early"


@cache
def base_trace() -> dict[str, Any]:
    """The trace `check --trace-dir` writes for notifier-kfree-early on vtd:
    mm_alloc() -> mm4, iommu_sva_bind_device(dev0, mm4) -> sva5, iommu_sva_unbind_device(sva5)."""
    with tempfile.TemporaryDirectory(prefix="iommucheck-fuzz-") as d:
        o = run_cli(["check", "--design", TRACE_DESIGN, "--hw", "vtd", "--engine", "explore",
                     "--bounds", TRACE_BOUNDS, "--trace-dir", d], stop_at_check=False)
        path = Path(d) / f"{TRACE_DESIGN}-vtd.json"
        if o.code != 1 or not path.exists():
            raise RuntimeError(f"no base trace: exit {o.code}\n{o.out[-2000:]}\n{o.err[-2000:]}")
        data: dict[str, Any] = json.loads(path.read_text())
    assert [s["action"] for s in data["steps"]] == [
        "mm_alloc", "iommu_sva_bind_device", "iommu_sva_unbind_device"], data["steps"]
    assert data["steps"][1]["args"] == ["dev0", 4] and data["steps"][2]["args"] == [5], data["steps"]
    return data


def dump_trace(data: Any) -> str:
    return json.dumps(data, indent=2) + "\n"


TRACE_FIELD_BAD: dict[str, tuple[Any, ...]] = {
    "format": (MISSING, "iommucheck-trace/2", "iommucheck-results/2", "iommucheck-matrix/2", "",
               1, None, ["iommucheck-trace/1"]),
    "design": (MISSING, 5, None, True, [], {}, "", "no-such-design", "notifier-kfree-early-typo",
               [TRACE_DESIGN], {"name": TRACE_DESIGN}),
    "hw": (MISSING, "mock", "arm", "", "VTD", "all", 5, None, True, ["vtd"], {"vtd": 1}),
    "bounds": (MISSING, [], "devices=1", 5, None, True),
    "steps": (MISSING, {}, "mm_alloc", 5, None, True),
}
#: wrong JSON types for a count (a flag takes true/false)
COUNT_NOT_INT: tuple[Any, ...] = ("2", 3.0, 2.5, True, False, None, [], {}, -1, -100000000)
FLAG_NOT_BOOL: tuple[Any, ...] = (2, -1, 100000000, "true", "1", None, [], {}, 0.5)
#: beyond each bound's limit (ats_devices > devices is left to the CLI class: a trace
#: written with `--bounds devices=1` records the default ats_devices=2)
TRACE_BEYOND_LIMIT: dict[str, tuple[Any, ...]] = {
    n: tuple(int(v) for v in vals) for n, vals in BEYOND_LIMIT.items()}
UNKNOWN_TRACE_BOUNDS = ("widgets", "Devices", "", "device", "devices ")
#: per step (0-based): bad values of its action and of its args
STEP_FIELD_BAD: dict[str, tuple[Any, ...]] = {
    "action": (MISSING, "no_such_call", "", "mm_alloc ", "IOMMU_SVA_BIND_DEVICE", 5, None, True,
               ["mm_alloc"], {"name": "mm_alloc"}),
    "args": (MISSING, "dev0", 5, None, True, {}),
}
WRONG_ARITY: dict[int, tuple[list[Any], ...]] = {
    0: ([0], [None], ["dev0"]),
    1: (["dev0"], [], ["dev0", 4, 0]),
    2: ([], [5, 5]),
}
#: (step, argument) -> values naming nothing that exists at that point, or of the wrong type
ARG_BAD: dict[tuple[int, int], tuple[Any, ...]] = {
    (1, 0): ("dev9", "dev1", "devS0", "devN", "", "DEV0", 0, True, None, ["dev0"], {"dev": "dev0"}),
    (1, 1): (77, 5, 0, -1, "4", "mm4", 4.0, True, None, [4], {"mm": 4}),
    (2, 0): (999, 4, 0, -5, "5", "sva5", 5.0, True, None, [5], {"handle": 5}),
}
STEP_NOT_OBJECT: tuple[Any, ...] = (5, "mm_alloc", [], None, True, ["mm_alloc", []])
#: new step orders: a step naming an object before it exists, or after it is gone
#: (not "unbind twice": the first unbind already violates, and a replay stops there)
REORDERED = (("unbind before bind", (0, 2, 1)), ("bind before mm_alloc", (1, 0, 2)),
             ("unbind first", (2, 0, 1)), ("bind first", (1, 2, 0)))
#: aux-2018 has no DMA ownership, no kernel PASIDs and no ENQCMD
LACKING_DESIGN = "aux-2018"
LACKING_CALLS = ({"action": "iommu_alloc_global_pasid", "args": ["dev0"]},
                 {"action": "iommu_device_claim_dma_owner", "args": ["dev0"]},
                 {"action": "enqcmd", "args": [4, "dev0", 0]})
#: built-in designs and a hardware kind they do not speak about
WRONG_HW = (("vtd-sva-shared-did", "smmuv3"), ("vtd-teardown-no-pasid-cache-flush", "smmuv3"),
            ("vtd-teardown-no-clear-entry", "smmuv3"), ("smmu-detach-no-atc-inv", "vtd"))


def trace_edits(base: dict[str, Any]) -> list[Edit]:
    steps: list[dict[str, Any]] = base["steps"]
    m = [edit((k,), v) for k, vals in TRACE_FIELD_BAD.items() for v in vals]
    m += [edit(("bounds", n), v) for n in COUNTS for v in COUNT_NOT_INT]
    m += [edit(("bounds", n), v) for n in FLAGS for v in FLAG_NOT_BOOL]
    m += [edit(("bounds", n), v) for n, vals in TRACE_BEYOND_LIMIT.items() for v in vals]
    m += [edit(("bounds", n), 1) for n in UNKNOWN_TRACE_BOUNDS]
    m += [edit(("bounds", "shared_ats"), True), edit(("bounds", "devices"), 0)]
    m += [edit(("steps", i, k), v) for i in range(len(steps)) for k, vals in STEP_FIELD_BAD.items()
          for v in vals]
    m += [edit(("steps", i, "args"), v) for i, vals in WRONG_ARITY.items() for v in vals]
    m += [edit(("steps", i, "args", j), v) for (i, j), vals in ARG_BAD.items() for v in vals]
    m += [edit(("steps", i), v) for i in range(len(steps)) for v in STEP_NOT_OBJECT]
    m += [(f"step not an object: {show(v)} inserted at {i}",
           ((("steps",), steps[:i] + [v] + steps[i:]),))
          for i in range(len(steps) + 1) for v in STEP_NOT_OBJECT]
    m += [(what, ((("steps",), [steps[i] for i in order]),)) for what, order in REORDERED]
    m += [(f"{LACKING_DESIGN} lacks {c['action']} (step {i + 1})",
           ((("design",), LACKING_DESIGN), (("steps",), steps[:i] + [c] + steps[i:])))
          for c in LACKING_CALLS for i in range(1, len(steps) + 1)]
    m += [(f"{d} replayed on {hw}", ((("design",), d), (("hw",), hw))) for d, hw in WRONG_HW]
    return m


def trace_case(what: str, data: bytes, extra: tuple[str, ...] = ()) -> Case:
    return Case("trace", what, ("replay", *extra, "{dir}/trace.json"), files=(("trace.json", data),))


@st.composite
def trace_cases(draw: st.DrawFn) -> Case:
    base = base_trace()
    if draw(st.integers(0, 3)):  # three in four: one field
        e = draw(st.sampled_from(trace_edits(base)))
        return trace_case(e[0], dump_trace(apply_edit(base, e)).encode())
    return trace_case(*draw(json_file_mutations(base, dump_trace, "steps")))


# == 4. results files (docs --render-only) =====================================================
@cache
def base_results() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "docs" / "results.json").read_text(encoding="utf-8"))
    return data


def dump_results(data: Any) -> str:
    return json.dumps(data, indent=1, sort_keys=True) + "\n"  # as `docs` writes it


RESULTS_FIELD_BAD: dict[str, tuple[Any, ...]] = {
    "format": (MISSING, "iommucheck-trace/1", "iommucheck-matrix/1", "", 5, None, [], {}),
    "engine": (MISSING, "portfolios", "", 5, None, [], {}),
    "bounds": (MISSING, [], "devices=2", 5, None),
    "cells": (MISSING, {}, "cells", 5, None, True),
}
CELL_REQUIRED = ("design", "hw", "applicable", "broken", "held", "examples", "steps")
CELL_FIELD_BAD: dict[str, tuple[Any, ...]] = {
    "design": (5, None, True, [], {}),
    "hw": (5, None, True, [], {}),
    "applicable": ("yes", "true", None, [], {}),
    "broken": ([], "no-leak", 5, None, True, {"no-leak": 5}, {"no-leak": "trace"},
               {"no-leak": []}, {"no-leak": {}}),
    "held": ("no-leak", 5, None, True, {}, [5], [None], [["no-leak"]]),
    "examples": ("5", 5.5, None, True, [], {}),
    "steps": ("5", 5.5, None, True, [], {}),
    "complete": ("yes", None, [], {}),
    "coverage": (5, [], {}, True),
    "found_in": ([], "paging1", 5, True, {"no-leak": 5}, {"no-leak": None}),
}
CELL_NOT_OBJECT: tuple[Any, ...] = (5, "upstream", [], None, True)
#: the counterexample of a broken cell (cells[i].broken[INV])
BROKEN_TRACE_BAD: dict[str, tuple[Any, ...]] = {
    "steps": (MISSING, 5, "x", None, {}),
    "listing": (5, None, {}),
    "violation": (5, "x", ["no-leak"]),
}


def results_edits(base: dict[str, Any]) -> st.SearchStrategy[Edit]:
    cells: list[dict[str, Any]] = base["cells"]
    broken = [(i, inv) for i, c in enumerate(cells) for inv in sorted(c["broken"])]
    top = [edit((k,), v) for k, vals in RESULTS_FIELD_BAD.items() for v in vals]

    def cell_field(t: tuple[int, str, Any]) -> Edit:
        return edit(("cells", t[0], t[1]), t[2])

    cell_values = st.sampled_from([(k, v) for k, vals in CELL_FIELD_BAD.items() for v in vals]
                                  + [(k, MISSING) for k in CELL_REQUIRED])
    trace_values = st.sampled_from([(k, v) for k, vals in BROKEN_TRACE_BAD.items() for v in vals]
                                   + [("message", 5), ("message", [])])
    return st.one_of(
        st.sampled_from(top),
        st.tuples(st.integers(0, len(cells) - 1), cell_values).map(
            lambda t: cell_field((t[0], t[1][0], t[1][1]))),
        st.tuples(st.integers(0, len(cells) - 1), st.sampled_from(CELL_NOT_OBJECT)).map(
            lambda t: edit(("cells", t[0]), t[1])),
        st.tuples(st.sampled_from(broken), trace_values).map(
            lambda t: edit(("cells", t[0][0], "broken", t[0][1])
                           + (("violation", "message") if t[1][0] == "message" else (t[1][0],)),
                           t[1][1])),
    )


def results_case(what: str, data: bytes) -> Case:
    return Case("results", what, ("docs", "--out", "{dir}", "--render-only"),
                files=(("results.json", data),))


@st.composite
def results_cases(draw: st.DrawFn) -> Case:
    base = base_results()
    if draw(st.integers(0, 3)):
        e = draw(results_edits(base))
        return results_case(e[0], dump_results(apply_edit(base, e)).encode())
    return results_case(*draw(json_file_mutations(base, dump_results, "cells")))


# == 5. empty paths =============================================================================
EMPTY_PATHS = (
    ("check --json ''", (*CHECK, "--json", "")),
    ("check --json=", (*CHECK, "--json=")),
    ("check --trace-dir ''", (*CHECK, "--trace-dir", "")),
    ("check --trace-dir=", (*CHECK, "--trace-dir=")),
    ("check --design-file ''", (*CHECK, "--design-file", "")),
    ("check --design-file=", (*CHECK, "--design-file=")),
    ("replay ''", ("replay", "")),
    ("replay --design-file '' TRACE", ("replay", "--design-file", "", "{dir}/trace.json")),
)


def empty_path_case(what: str, argv: tuple[str, ...]) -> Case:
    files = (("trace.json", dump_trace(base_trace()).encode()),) if "{dir}/trace.json" in argv else ()
    return Case("empty-path", what, argv, files=files)


def empty_path_cases() -> st.SearchStrategy[Case]:
    return st.sampled_from(EMPTY_PATHS).map(lambda t: empty_path_case(*t))


# == the fuzz tests ============================================================================
def fuzz_settings(cls: str, deep: bool = False) -> settings:
    return settings(max_examples=FAST_EXAMPLES[cls] * (DEEP_FACTOR if deep else 1), deadline=None,
                    derandomize=True, database=None,
                    # no shrinking: each example is already one mutation of a valid input
                    phases=(Phase.explicit, Phase.generate),
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module", autouse=True)
def _report_tried(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if TRIED:
        line = ("malformed inputs tried: " + ", ".join(f"{k} {v}" for k, v in sorted(TRIED.items()))
                + f" (total {sum(TRIED.values())})")
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        capture = request.config.pluginmanager.get_plugin("capturemanager")
        if reporter is not None and capture is not None:
            with capture.global_and_fixture_disabled():  # teardown output is captured
                reporter.write("\n" + line + "\n")


#: each class of input and the strategy of its malformed cases
FUZZ: dict[str, Callable[[], st.SearchStrategy[Case]]] = {
    "bounds": bounds_cases, "design-file": design_cases, "trace": trace_cases,
    "results": results_cases, "empty-path": empty_path_cases,
}


def fuzz(cls: str, deep: bool) -> None:
    """Every drawn case of the class is refused (the class's own example budget)."""
    @fuzz_settings(cls, deep=deep)
    @given(FUZZ[cls]())
    def refused(case: Case) -> None:
        assert_refused(case)

    refused()


@pytest.mark.parametrize("cls", FUZZ)
def test_fuzz(cls: str) -> None:
    fuzz(cls, deep=False)


@pytest.mark.deep
@pytest.mark.parametrize("cls", FUZZ)
def test_fuzz_deep(cls: str) -> None:
    fuzz(cls, deep=True)


# == the inputs without their mutation are accepted ============================================
def _unmutated() -> list[Any]:
    def trace() -> Case:
        return trace_case("unmutated", dump_trace(base_trace()).encode())

    def results() -> Case:
        return results_case("unmutated", dump_results(base_results()).encode())

    return [
        # every base NAME=VALUE is valid: the first value of each name, then the last
        pytest.param(lambda: bounds_case(list({p.partition("=")[0]: p for p in reversed(BASE_BOUNDS)}
                                              .values())), STARTED, id="bounds-first"),
        pytest.param(lambda: bounds_case(list({p.partition("=")[0]: p for p in BASE_BOUNDS}.values())),
                     STARTED, id="bounds-last"),
        pytest.param(lambda: bounds_case(["devices=2", "ats_devices=1", "shared_group=1",
                                          "shared_ats=1", "no_pasid_device=1", "mixed_group=1",
                                          "ndoms=8"]),
                     STARTED, id="bounds-devices"),
        pytest.param(lambda: design_case("unmutated", design_source()), STARTED, id="design-file"),
        pytest.param(trace, 1, id="trace"),  # it still violates
        pytest.param(results, 0, id="results"),
    ]


@pytest.mark.parametrize("build,expected", _unmutated())
def test_unmutated_inputs_are_accepted(build: Callable[[], Case], expected: int | str) -> None:
    """Each class's valid input gets past validation (a check starts; the trace still
    violates; the docs render), so that the mutation is what the CLI refuses."""
    o = run_case(build())
    assert o.code == expected, (o.code, o.out[-1500:], o.err[-1500:])
    assert "Traceback" not in o.out + o.err


# == regressions: the inputs of issue #14, one per class ======================================
def _normal(text: str) -> str:
    """Lower case, '-', '_' and runs of spaces as one space: "--trace-dir" names "trace dir"."""
    return re.sub(r"[-_\s]+", " ", text.lower()).strip()


def _trace(*changes: tuple[JsonPath, Any]) -> Callable[[], Case]:
    def build() -> Case:
        e: Edit = (", ".join(edit(p, v)[0] for p, v in changes), changes)
        return trace_case(e[0], dump_trace(apply_edit(base_trace(), e)).encode())
    return build


def _trace_bytes(what: str, make: Callable[[bytes], bytes]) -> Callable[[], Case]:
    return lambda: trace_case(what, make(dump_trace(base_trace()).encode()))


def _design(what: str, source: str) -> Callable[[], Case]:
    return lambda: design_case(what, source)


def _field(field: str, value: str) -> Callable[[], Case]:
    return _design(f"{field}={value}", design_source(**{field: value}))


def _bounds(*parts: str) -> Callable[[], Case]:
    return lambda: bounds_case(parts, "regression")


def _results(*changes: tuple[JsonPath, Any]) -> Callable[[], Case]:
    def build() -> Case:
        e: Edit = (", ".join(edit(p, v)[0] for p, v in changes), changes)
        return results_case(e[0], dump_results(apply_edit(base_results(), e)).encode())
    return build


def _empty(what: str, argv: tuple[str, ...]) -> Callable[[], Case]:
    return lambda: empty_path_case(what, argv)


REGRESSIONS = [
    # replay
    ("replay-not-utf8", _trace_bytes("\\xff", lambda b: b[:20] + b"\xff" + b[20:]), "trace"),
    ("replay-hw-unknown", _trace((("hw",), "mock")), "hw"),
    ("replay-hw-list", _trace((("hw",), ["vtd"])), "hw"),
    ("replay-hw-number", _trace((("hw",), 5)), "hw"),
    ("replay-deeply-nested", lambda: trace_case("[ x 100000", b"[" * 100_000), "trace"),
    ("replay-action-list", _trace((("steps", 1, "action"), ["iommu_sva_bind_device"])), "step 2"),
    ("replay-action-object", _trace((("steps", 1, "action"), {"name": "iommu_sva_bind_device"})),
     "step 2"),
    ("replay-huge-max-pasids", _trace((("bounds", "max_pasids"), 100_000_000)), "max_pasids"),
    ("replay-huge-iova-pages", _trace((("bounds", "iova_pages"), 100_000)), "iova_pages"),
    ("replay-bounds-str", _trace((("bounds", "devices"), "2")), "devices"),
    ("replay-bounds-bool", _trace((("bounds", "devices"), True)), "devices"),
    ("replay-no-such-handle", _trace((("steps", 2, "args"), [999])), "step 3"),
    ("replay-no-such-mm", _trace((("steps", 1, "args"), ["dev0", 77])), "step 2"),
    ("replay-no-such-device", _trace((("steps", 1, "args"), ["dev9", 4])), "step 2"),
    ("replay-arg-str", _trace((("steps", 2, "args"), ["5"])), "step 3"),
    ("replay-arg-float", _trace((("steps", 2, "args"), [5.0])), "step 3"),
    ("replay-arg-bool", _trace((("steps", 2, "args"), [True])), "step 3"),
    ("replay-arg-list", _trace((("steps", 2, "args"), [[5]])), "step 3"),
    ("replay-vtd-only-design-on-smmuv3",
     _trace((("design",), "vtd-sva-shared-did"), (("hw",), "smmuv3")), "smmuv3"),
    # design files
    ("design-driver-factory-raises", _field("driver_factory", "failing_factory"), "driver_factory"),
    ("design-driver-factory-zero-division", _field("driver_factory", "lambda hw, b: 1 // 0"),
     "driver_factory"),
    ("design-driver-factory-returns-int", _field("driver_factory", "lambda hw, b: 5"),
     "driver_factory"),
    ("design-driver-factory-returns-none", _field("driver_factory", "lambda hw, b: None"),
     "driver_factory"),
    ("design-driver-factory-other-kind", _field("driver_factory", "lambda hw, b: SmmuV3Driver()"),
     "driver_factory"),
    ("design-driver-factory-no-args", _field("driver_factory", "lambda: VtdDriver()"),
     "driver_factory"),
    ("design-driver-factory-three-args", _field("driver_factory", "lambda a, b, c: VtdDriver()"),
     "driver_factory"),
    ("design-hw-str", _field("hw", '"vtd"'), "hw"),
    ("design-hw-mock", _field("hw", '("mock",)'), "hw"),
    ("design-features-list", _field("features", '["sva", "bogus"]'), "feature"),
    ("design-knobs-str", _field("knobs", '"vtd.teardown_skip_pasid_cache"'), "knob"),
    ("design-knobs-unknown", _field("knobs", 'frozenset({"vtd.nonsense"})'), "knob"),
    ("design-pasid-alloc-junk", _field("pasid_alloc", "'junk'"), "pasid_alloc"),
    ("design-detach-passes-old-no", _field("detach_passes_old", "'no'"), "detach_passes_old"),
    ("design-sys-exit-at-import", _design("sys.exit()", "import sys; sys.exit()\n" + design_source()),
     "design.py"),
    ("design-system-exit-3-at-import", _design("SystemExit(3)", "raise SystemExit(3)\n" + design_source()),
     "design.py"),
    ("design-keyboard-interrupt-at-import", _design("KeyboardInterrupt",
                                                           "raise KeyboardInterrupt\n" + design_source()),
     "design.py"),
    # empty paths
    ("empty-design-file", _empty("--design-file ''", (*CHECK, "--design-file", "")), "design-file"),
    ("empty-json", _empty("--json ''", (*CHECK, "--json", "")), "json"),
    ("empty-trace-dir", _empty("--trace-dir ''", (*CHECK, "--trace-dir", "")), "trace-dir"),
    ("empty-replay", _empty("replay ''", ("replay", "")), "trace"),
    # bounds
    ("bounds-shared-group-minus-2", _bounds("shared_group=-2"), "shared_group"),
    ("bounds-shared-group-2", _bounds("shared_group=2"), "shared_group"),
    ("bounds-iova-pages-100000", _bounds("iova_pages=100000"), "iova_pages"),
    ("bounds-max-pasids-100000000", _bounds("max_pasids=100000000"), "max_pasids"),
    ("bounds-ats-devices-over-devices", _bounds("devices=1", "ats_devices=3"), "ats_devices"),
    ("bounds-repeated", _bounds("devices=1", "devices=2"), "devices"),
    # docs --render-only
    ("results-cell-without-design", _results((("cells", 0, "design"), MISSING)), "design"),  # KeyError
    ("results-without-cells", _results((("cells",), MISSING)), "cells"),  # KeyError
    ("results-held-int", _results((("cells", 0, "held"), 5)), "held"),  # TypeError
    ("results-cells-int", _results((("cells",), 5)), "cells"),  # TypeError
    ("results-not-utf8",  # UnicodeDecodeError
     lambda: results_case("\\xff", b"\xff" + dump_results(base_results()).encode()), "results"),
]


@pytest.mark.parametrize("build,fragment", [pytest.param(b, f, id=i) for i, b, f in REGRESSIONS])
def test_regression(build: Callable[[], Case], fragment: str) -> None:
    case = build()
    o = assert_refused(case)
    assert _normal(fragment) in _normal(o.err), f"{case!r}: the message does not name {fragment!r}: {o.err!r}"
