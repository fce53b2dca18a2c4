"""The command line: exit statuses, one-line errors, tables, JSON, traces and replay."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from checker.cli import main

SMALL = "devices=1,processes=1,paging_domains=1,iova_pages=1,phys_pages=2,max_pasids=3"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main(argv)
        raise SystemExit(0)
    cap = capsys.readouterr()
    return int(e.value.code or 0), cap.out, cap.err


@pytest.mark.parametrize("argv,message", [
    (["check", "--hw", "arm"], "unknown hardware 'arm'"),
    (["check", "--design", "nope"], "unknown design 'nope'"),
    (["check", "--invariant", "nope"], "unknown invariant 'nope'"),
    (["check", "--bounds", "devices=two"], "bound devices='two' is not an integer"),
    (["check", "--bounds", "widgets=2"], "unknown bound 'widgets'"),
    (["check", "--bounds", "max_pasids=1"], "max_pasids=1: 2..1024 (PASID 0 is IOMMU_NO_PASID"),
    (["check", "--design-file", "/no/such/file.py"], "no such file"),
    (["replay", "/no/such/trace.json"], "cannot read trace"),
    (["check", "--frobnicate"], "--frobnicate"),
])
def test_bad_input_is_one_line_and_exit_2(argv: list[str], message: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(argv, capsys)
    assert code == 2
    assert message in err
    assert err.count("\n") == 1 and err.startswith("iommucheck: error: ")
    assert "Traceback" not in out + err


def test_malformed_design_and_trace_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import nonexistent_module_xyz\n")
    code, _, err = run(["check", "--design-file", str(bad)], capsys)
    assert code == 2 and "failed to import: ModuleNotFoundError" in err
    empty = tmp_path / "empty.py"
    empty.write_text("X = 1\n")
    code, _, err = run(["check", "--design-file", str(empty)], capsys)
    assert code == 2 and "defines no Design value" in err
    syntax = tmp_path / "syntax.py"
    syntax.write_text("def (:\n")
    code, _, err = run(["check", "--design-file", str(syntax)], capsys)
    assert code == 2 and "syntax error at line 1" in err
    trace = tmp_path / "t.json"
    trace.write_text("{not json")
    code, _, err = run(["replay", str(trace)], capsys)
    assert code == 2 and f"trace {trace} is not valid JSON" in err
    trace.write_text(json.dumps({"format": "something-else"}))
    code, _, err = run(["replay", str(trace)], capsys)
    assert code == 2 and "not an iommucheck trace" in err


def test_designs_and_invariants_tables(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["designs"], capsys)
    assert code == 0
    for name in ("upstream", "aux-2018-unguarded", "set-dev-pasid-blocking-2022", "notifier-put-no-sync"):
        assert name in out
    code, out, _ = run(["invariants"], capsys)
    assert code == 0
    for inv in ("no-stale-translation", "asid-known-at-detach", "global-pasid-consistent"):
        assert inv in out


def test_check_holds_exit_0_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_json = tmp_path / "r.json"
    code, out, _ = run(["check", "--hw", "vtd", "--bounds", SMALL, "--max-examples", "20",
                        "--seed", "3", "--json", str(out_json)], capsys)
    assert code == 0
    assert "upstream" in out and "holds" in out
    data = json.loads(out_json.read_text())
    assert data["format"] == "iommucheck-results/2"
    [res] = data["results"]
    assert (res["design"], res["hw"], res["verdict"], res["trace"]) == ("upstream", "vtd", "holds", None)
    assert res["examples"] >= 20


def test_violation_report_trace_and_replay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["check", "--design", "notifier-kfree-early", "--hw", "vtd", "--bounds", SMALL,
                        "--engine", "explore", "--trace-dir", str(tmp_path)], capsys)
    assert code == 1
    assert "VIOLATES domain-outlives-notifier" in out
    assert "1. mm_alloc() -> mm4" in out
    assert "iommu_sva_unbind_device(sva5)" in out
    assert "Why it fails here:" in out
    trace = tmp_path / "notifier-kfree-early-vtd.json"
    data = json.loads(trace.read_text())
    assert [s["action"] for s in data["steps"]] == [
        "mm_alloc", "iommu_sva_bind_device", "iommu_sva_unbind_device"]
    assert data["violation"]["invariant"] == "domain-outlives-notifier"
    code, out, _ = run(["replay", str(trace)], capsys)
    assert code == 1 and "VIOLATES domain-outlives-notifier" in out
    # The same calls on upstream (mmu_notifier_put) no longer violate anything.
    data["design"] = "upstream"
    fixed = tmp_path / "fixed.json"
    fixed.write_text(json.dumps(data))
    code, out, _ = run(["replay", str(fixed)], capsys)
    assert code == 0 and "no longer violates" in out
    # The pytest reproducer is a real test that fails while the bug is there.
    repro = (tmp_path / "test_notifier_kfree_early_vtd.py").read_text()
    ns: dict[str, object] = {}
    exec(compile(repro, "repro", "exec"), ns)
    test = next(v for k, v in ns.items() if k.startswith("test_"))
    with pytest.raises(AssertionError, match="freed while its mmu_notifier"):
        test()  # type: ignore[operator]


def test_user_design_file_examples(capsys: pytest.CaptureFixture[str]) -> None:
    root = Path(__file__).resolve().parents[2] / "examples"
    # Seed 000's question on today's drivers has an answer: VT-d, too, needs the old
    # domain at detach (its DID refcount and cache tags), found in paging1 in 4 and 5 calls.
    code, out, _ = run(["check", "--design-file", str(root / "detach_without_old.py"), "--hw", "vtd",
                        "--budget", "quick", "--no-database"], capsys)
    assert code == 1
    assert ("my-detach-without-old on vtd: VIOLATED: refcount-matches (4 steps, paging1), "
            "no-leak (5 steps, paging1); the other invariants: ") in out
    code, out, _ = run(["check", "--design-file", str(root / "vtd_skip_pasid_cache_flush.py"),
                        "--bounds", SMALL, "--engine", "explore", "--max-states", "20000"], capsys)
    assert code == 1
    # the zeroing after a P clear the PASID cache never heard of races a fetch (a torn read)
    # before any stale translation is used
    assert "VIOLATES hitless-entry-update" in out
    assert "not applicable: my-vtd-teardown-skips-pc on smmuv3" in out
