"""The README's commands work as written and show what the README says they show.

Every `iommucheck ...` line in an indented code block of README.md is parsed by the
real command line (options, design / world / invariant names, bounds, budgets), so
an example cannot go stale silently. The examples that print a result the README
quotes (a `# ...` comment after the command, or the report of "What a violation
looks like") are run, and the quoted text must appear in what they print. Only
commands marked `(slow...)` in their comment are not run; a trailing `(...)` in
a comment is a remark, not quoted output.
"""

from __future__ import annotations

import re
import shlex
from typing import Any
from pathlib import Path

import pytest

from checker.cli import main, main_group

README = Path(__file__).resolve().parents[1] / "README.md"


def _commands() -> list[tuple[list[str], str]]:
    """(argv after `iommucheck`, the comment lines that follow it) for every example."""
    out: list[tuple[list[str], str]] = []
    lines = README.read_text().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("    iommucheck "):
            text = line.strip()
            while text.endswith("\\"):
                i += 1
                text = text[:-1] + " " + lines[i].strip()
            text, _, inline = text.partition("  #")
            comments = []
            while i + 1 < len(lines) and lines[i + 1].strip().startswith("# "):
                i += 1
                comments.append(lines[i].strip()[2:])
            argv = shlex.split(text)[1:]
            out.append((argv, "\n".join(comments) or inline.strip()))
        i += 1
    return out


COMMANDS = _commands()


def test_the_readme_has_examples() -> None:
    names = {argv[0] for argv, _ in COMMANDS}
    assert {"check", "replay", "designs", "worlds", "docs", "matrix", "prove"} <= names


@pytest.mark.parametrize("argv", [a for a, _ in COMMANDS], ids=[" ".join(a)[:60] for a, _ in COMMANDS])
def test_every_readme_command_parses(argv: list[str]) -> None:
    """Click accepts the options, and the names the command would look up exist."""
    from checker.cli import parse_bounds, resolve_designs, resolve_invariants
    from checker.portfolio import parse_budget
    from checker.worlds import get_world

    ctx = main_group.make_context("iommucheck", list(argv), resilient_parsing=False)
    with ctx:
        cmd = main_group.get_command(ctx, argv[0])
        assert cmd is not None, argv[0]
        sub = cmd.make_context(argv[0], list(argv[1:]), parent=ctx)
        p = sub.params
        if p.get("design_names"):
            resolve_designs(p["design_names"], None)
        if p.get("invariant_ids"):
            resolve_invariants(p["invariant_ids"])
        if p.get("bounds_text"):
            parse_bounds(p["bounds_text"])
        if p.get("budget_text") not in (None, "docs"):
            parse_budget(p["budget_text"])
        for w in p.get("world_names") or ():
            get_world(w)
        if p.get("design_file"):
            assert (README.parent / p["design_file"]).exists(), p["design_file"]


#: what an example's comment quotes, as fragments of the output, and its exit status
_QUOTED = re.compile(r"^(?P<text>.*?)\s*\(exit (?P<code>\d)\)\s*$")


def _quoting() -> list[tuple[list[str], list[str], int | None]]:
    rows = []
    for argv, comment in COMMANDS:
        if not comment or "(slow" in comment or argv[0] != "check":
            continue
        frags, code = [], None
        for line in comment.splitlines():
            m = _QUOTED.match(line)
            text = m.group("text") if m else line
            if m:
                code = int(m.group("code"))
            text = re.sub(r"\s*\([^()]*\)\s*$", "", text)  # a remark, not output
            if ":" in text or "VIOLATES" in text:
                frags.append(text.strip())
        if frags:
            rows.append((argv, frags, code))
    return rows


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as e:
        main(argv)
        raise SystemExit(0)
    return int(e.value.code or 0), capsys.readouterr().out


def _normal(text: str) -> str:
    return re.sub(r"\s+", " ", text)


#: quoted examples that take 30-50 s each on 2 cores: the deep run replays them (the
#: default run still checks that their arguments parse, test_every_readme_command_parses)
_DEEP_QUOTES = (("--workers", "2"), ("--design", "vtd-sva-unbind-after-mm-exit"))


def _quoting_rows() -> list[Any]:
    return [pytest.param(*r, id=" ".join(r[0])[:60],
                         marks=[pytest.mark.deep] if any(
                             all(x in r[0] for x in q) for q in _DEEP_QUOTES) else [])
            for r in _quoting()]


@pytest.mark.parametrize("argv,fragments,code", _quoting_rows())
def test_readme_outputs_reproduce(argv: list[str], fragments: list[str], code: int | None,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    status, out = run(argv, capsys)
    if code is not None:
        assert status == code, out[-2000:]
    for f in fragments:
        assert _normal(f) in _normal(out), f"README quotes {f!r}; the command printed:\n{out[-3000:]}"


def test_the_violation_report_in_the_readme_is_what_check_prints(capsys: pytest.CaptureFixture[str]) -> None:
    """"What a violation looks like": the command it names prints that report (the
    README shortens the hardware dump: the lines it shows appear in order)."""
    text = README.read_text()
    section = text.split("### What a violation looks like", 1)[1]
    m = re.search(r"This is `iommucheck (?P<cmd>[^`]+)`", section)
    assert m is not None
    block = section.split("```", 2)[1].strip("\n").splitlines()
    status, out = run(shlex.split(m.group("cmd")), capsys)
    assert status == 1
    printed = [line.rstrip() for line in out.splitlines()]
    pos = 0
    for line in (b.rstrip() for b in block):
        if line.strip() in ("...", ""):
            continue
        while pos < len(printed) and printed[pos] != line:
            pos += 1
        assert pos < len(printed), f"README shows {line!r}, not printed (in order) by the command"
        pos += 1


def test_ci_runs_the_readme_test_command() -> None:
    ci = (README.parent / ".ci" / "run").read_text()
    text = README.read_text()
    m = re.search(r"Install and run the tests.*?\n\n    (?P<cmd>.+?)\n", text, re.S)
    assert m is not None
    test_cmd = m.group("cmd").split("&&", 1)[1].strip()
    assert test_cmd in ci
