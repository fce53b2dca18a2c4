"""The default engine: every known break found by the ladder of worlds, upstream proved.

The exhaustive parts of the portfolio are deterministic (count budgets, breadth-first
order), so these tests assert exactly what `iommucheck check` reports by default for
them, whatever the seed: the sampling part comes after and can only add findings.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from checker.cli import main
from checker.portfolio import QUICK, STANDARD, Budget, BudgetError, parse_budget, run_portfolio, world_plan
from checker.worlds import LADDER, WORLDS, design_world
from invariants.catalog import CATALOG, get
from model.bounds import Bounds
from model.designs import DESIGNS


def _breaking() -> list[object]:
    return [pytest.param(d.name, hw, id=f"{d.name}-{hw}")
            for d in DESIGNS.values() for hw in d.hw if d.breaks_on(hw)]


@pytest.mark.parametrize("design,hw", _breaking())
def test_default_worlds_find_every_expected_break(design: str, hw: str) -> None:
    """The default check proves the design's smallest breaking world (`check_bounds`:
    a ladder world or its own) with the standard budget, and there finds each invariant
    the design is expected to break (the matrix's re-run rule), with a counterexample
    through a call the design changes. Run here on that world alone and with only the
    expected invariants: each world of the plan is searched on its own, and the search
    visits the same states whatever it checks, so each break is found exactly as the
    full default check finds it (which can only find more)."""
    d = DESIGNS[design]
    expected = d.breaks_on(hw)
    own = design_world(d.check_bounds)
    assert own is not None, f"{design}: give it check_bounds (its smallest breaking world)"
    assert own[0] in [n for n, _, _ in world_plan(d, STANDARD)]
    r = run_portfolio(d, hw, Bounds(), get(list(expected)), budget=STANDARD, parts=("world",),
                      worlds=(own[0],))
    assert sorted(f.violated for f in r.findings) == sorted(expected), r.verdict()
    for f in r.findings:
        assert f.trace is not None and f.trace.violation is not None
        assert f.trace.violation.invariant == f.violated
        assert {s.action for s in f.trace.steps} & set(d.changed_calls) or (
            not f.trace.steps and "boot" in d.changed_calls), f.trace.listing()


def test_smallest_world_is_smallest_over_both_drivers() -> None:
    """check_bounds names the first ladder world by which every expected break shows on
    every driver: not a larger one than needed (checked on the designs whose world is a
    ladder world, by the test above per driver; here: the names exist)."""
    for d in DESIGNS.values():
        if d.check_bounds and "=" not in d.check_bounds:
            assert d.check_bounds in WORLDS, d.name


@pytest.mark.parametrize("hw", ["vtd", "smmuv3"])
def test_upstream_proves_the_ladder(hw: str) -> None:
    """Upstream holds every invariant in every ladder world, each exhausted, with the
    state counts `iommucheck worlds` prints."""
    r = run_portfolio(DESIGNS["upstream"], hw, Bounds(), CATALOG, parts=("world",))
    assert [p.name for p in r.parts] == list(LADDER)
    i = 0 if hw == "vtd" else 1
    assert [(p.name, p.complete, p.states) for p in r.parts] == [
        (w, True, WORLDS[w].states[i]) for w in LADDER]
    assert r.verdict() == "holds: proved in worlds sva1, paging1, small1"


def test_budget_parsing() -> None:
    assert parse_budget("standard") is STANDARD and parse_budget("quick") is QUICK
    b = parse_budget("30s")
    assert b.seconds == 30.0 and parse_budget("2.5").seconds == 2.5
    for bad, msg in (("soon", "neither"), ("0", "positive"), ("-3", "positive"), ("inf", "positive")):
        with pytest.raises(BudgetError, match=msg):
            parse_budget(bad)


def test_wall_clock_budget_is_shared_and_kept() -> None:
    """A seconds budget stops every part on time (generously: the machine is shared) and
    says what it covered."""
    r = run_portfolio(DESIGNS["upstream"], "vtd", Bounds(), CATALOG, budget=parse_budget("3"),
                      parts=("world", "search"))
    assert r.seconds < 3 + 2.0
    assert r.verdict().startswith("holds: ")
    assert any(not p.complete for p in r.parts)  # the search at default bounds cannot finish


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main(argv)
        raise SystemExit(0)
    cap = capsys.readouterr()
    return int(e.value.code or 0), cap.out, cap.err


@pytest.mark.parametrize("argv,message", [
    (["check", "--budget", "soon"], "budget 'soon' is neither"),
    (["check", "--world", "nowhere"], "unknown world 'nowhere'"),
    (["check", "--seed", "x"], "seed 'x' is neither an integer nor `random`"),
    (["check", "--engine", "hypothesis", "--world", "sva1"], "--world only apply to --engine portfolio"),
])
def test_bad_portfolio_input(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(argv, capsys)
    assert code == 2 and message in err and err.count("\n") == 1, err


def test_same_seed_same_json_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The default budget counts work: two runs give the same `results`, byte for byte;
    only `timing` differs."""
    texts = []
    for i in range(2):
        path = tmp_path / f"r{i}.json"
        code, out, _ = run(["check", "--design", "notifier-kfree-early", "--hw", "vtd", "--budget", "quick",
                            "--no-database", "--json", str(path)], capsys)
        assert code == 1
        data = json.loads(path.read_text())
        assert data["format"] == "iommucheck-results/2" and data["seed"] == 0
        assert [t["design"] for t in data["timing"]] == ["notifier-kfree-early"]
        texts.append(json.dumps(data["results"], sort_keys=True))
    assert texts[0] == texts[1]
    [res] = json.loads(texts[0])
    assert res["engine"] == "portfolio"
    assert [f["invariant"] for f in res["findings"]][:2] == ["domain-outlives-notifier", "no-use-after-free"]
    assert [p["kind"] for p in res["parts"]] == ["world"] * len(LADDER) + ["search", "sample"]
    assert res["verdict_line"].startswith("VIOLATED: domain-outlives-notifier (3 steps, sva1), "
                                          "no-use-after-free (4 steps, sva1); the other invariants: ")


def test_progress_lines_when_not_a_terminal(monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Silence is a bug: on a pipe, a line on stderr as each check starts and then every
    PROGRESS_EVERY seconds (0 here: every update)."""
    import checker.cli as cli

    monkeypatch.setattr(cli, "PROGRESS_EVERY", 0.0)
    code, out, err = run(["check", "--hw", "vtd", "--budget", "quick", "--no-database"], capsys)
    assert code == 0
    lines = err.splitlines()
    assert lines[0].startswith("iommucheck: upstream on vtd: started")
    assert any("world sva1" in line for line in lines)
    assert any("sampling" in line for line in lines)
    assert "upstream on vtd: holds: proved in worlds sva1, paging1" in out


def test_worlds_and_designs_commands(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["worlds"], capsys)
    assert code == 0
    for w in WORLDS.values():
        assert w.name in out and f"{w.states[0]:,}" in out
    code, out, _ = run(["designs"], capsys)
    assert code == 0 and "smallest breaking world" in out
    assert DESIGNS["pasid-per-rid"].check_bounds.split(",")[0] in out


def test_budget_describes_itself() -> None:
    assert STANDARD.describe() == ("standard: 6,000 states a world (10,000 for the design's own), "
                                   "3,000 states of search, 100 sampled runs")
    assert Budget(seconds=12).describe() == "12 s of wall clock"
