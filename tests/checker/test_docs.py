"""The committed docs/ are what the code renders now, and say what the checker found."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from checker.cli import main
from invariants.catalog import CATALOG
from model.designs import DESIGNS

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_docs_are_not_stale(capsys: pytest.CaptureFixture[str]) -> None:
    """Catalog text, designs and rendering changes must be followed by `iommucheck docs`."""
    with pytest.raises(SystemExit) as e:
        main(["docs", "--check", "--render-only", "--out", str(DOCS)])
        raise SystemExit(0)
    assert e.value.code in (0, None), capsys.readouterr().out


def test_docs_cover_every_design_and_invariant() -> None:
    results = json.loads((DOCS / "results.json").read_text())
    cells = {(c["design"], c["hw"]): c for c in results["cells"]}
    for d in DESIGNS.values():
        for hw in ("vtd", "smmuv3"):
            assert (d.name, hw) in cells, (d.name, hw)
            assert cells[(d.name, hw)]["applicable"] == (hw in d.hw)
    inv_md = (DOCS / "invariants.md").read_text()
    for inv in CATALOG:
        assert f"## `{inv.id}`" in inv_md
        assert inv.statement in inv_md


def test_found_verdicts_agree_with_the_expected_ones() -> None:
    """What the docs were generated from matches our reading of the seeds, cell by cell."""
    results = json.loads((DOCS / "results.json").read_text())
    for c in results["cells"]:
        if not c["applicable"]:
            continue
        expected = set(DESIGNS[c["design"]].breaks_on(c["hw"]))
        found = set(c["broken"])
        if expected:
            assert found and found <= expected, (c["design"], c["hw"], found, expected)
        else:
            assert not found, (c["design"], c["hw"], found)
        for trace in c["broken"].values():
            assert 1 <= len(trace["steps"]) <= 8


def test_every_counterexample_in_the_docs_replays() -> None:
    """Each listing in docs/ is a real run: replayed on the model now, it breaks the same
    invariant at its last step (checked alone: the matrix found it with the invariants
    broken before it switched off)."""
    from checker.replay import replay_data

    results = json.loads((DOCS / "results.json").read_text())
    replayed = 0
    for c in results["cells"]:
        for inv, trace in c["broken"].items():
            r = replay_data(trace, invariants=[inv])
            assert not r.skipped, (c["design"], c["hw"], inv, r.skipped)
            assert r.violation is not None and r.violation.invariant == inv, (c["design"], c["hw"], inv)
            assert len(r.trace) == len(trace["steps"])
            replayed += 1
    assert replayed >= 20  # every breaking design has at least one


def test_a_fresh_run_renders_like_the_committed_results() -> None:
    """`docs --check` re-runs the checker and renders with the run's own metadata (bounds
    in field order); with the same cells that must give the committed text byte for byte,
    or the check would call fresh docs stale."""
    from checker.matrix import (DOC_BOUNDS, DOC_EXAMPLES, DOC_SEED, cells_from_json,
                                cells_to_json, write_docs)

    data = json.loads((DOCS / "results.json").read_text())
    cells = cells_from_json(data)
    meta = cells_to_json(cells, DOC_BOUNDS, data["engine"], DOC_SEED, DOC_EXAMPLES)
    meta.pop("cells")
    for path, text in write_docs(DOCS, cells, meta).items():
        assert path.read_text() == text, path.name
