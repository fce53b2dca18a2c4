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
    """Catalog text, designs and rendering changes must be followed by `iommucheck docs`;
    so must any change to the sources the run depends on (results.json records their
    digest: the run is deterministic, so an unchanged digest means a full regeneration
    would give these files)."""
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
    """What the docs were generated from matches our reading of the seeds, cell by cell:
    every expected break is there (no "not reached"), and a holding design breaks
    nothing. A breaking design may break more (the re-run rule goes on through the
    first violation's consequences); designs.md names those "also found"."""
    results = json.loads((DOCS / "results.json").read_text())
    assert results["engine"] == "portfolio" and results["source_digest"]
    for c in results["cells"]:
        if not c["applicable"]:
            continue
        expected = set(DESIGNS[c["design"]].breaks_on(c["hw"]))
        found = set(c["broken"])
        assert expected <= found, (c["design"], c["hw"], sorted(expected - found))
        if not expected:
            assert not found, (c["design"], c["hw"], found)
        for inv, trace in c["broken"].items():
            # a design that changes boot ("boot" in changed_calls) may break with no call
            least = 0 if "boot" in DESIGNS[c["design"]].changed_calls else 1
            assert least <= len(trace["steps"]) <= 16, (c["design"], c["hw"], inv)
            assert c["found_in"][inv]
        assert c["coverage"]
    text = (DOCS / "invariants.md").read_text() + (DOCS / "designs.md").read_text()
    assert "not reached" not in text


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
            assert r.stopped is None, (c["design"], c["hw"], inv, r.stopped)
            assert r.violation is not None and r.violation.invariant == inv, (c["design"], c["hw"], inv)
            assert len(r.trace) == len(trace["steps"])
            replayed += 1
    assert replayed >= 20  # every breaking design has at least one


def test_a_fresh_run_renders_like_the_committed_results() -> None:
    """`docs --check` re-runs the checker and renders with the run's own metadata (bounds
    in field order); with the same cells that must give the committed text byte for byte,
    or the check would call fresh docs stale."""
    from checker.matrix import (DOC_BOUNDS, DOC_BUDGET, DOC_EXAMPLES, DOC_SEED, cells_from_json,
                                cells_to_json, write_docs)

    data = json.loads((DOCS / "results.json").read_text())
    cells = cells_from_json(data)
    meta = cells_to_json(cells, DOC_BOUNDS, data["engine"], DOC_SEED, DOC_EXAMPLES, DOC_BUDGET)
    meta.pop("cells")
    meta["source_digest"] = data["source_digest"]
    for path, text in write_docs(DOCS, cells, meta).items():
        assert path.read_text() == text, path.name


#: cells regenerated in CI: the digest check above rests on the run being deterministic
SPOT_CELLS = (("upstream", "smmuv3"), ("notifier-kfree-early", "vtd"), ("set-group-pasid-no-rollback", "vtd"))


@pytest.mark.parametrize("design,hw", SPOT_CELLS)
def test_regenerated_cells_equal_the_committed_ones(design: str, hw: str) -> None:
    """A budgeted full check: these cells, run again now exactly as `iommucheck docs`
    runs them, give the committed results.json cells (verdicts, coverage, traces)."""
    from checker.matrix import DOC_BOUNDS, _cell_dict, run_cell

    data = json.loads((DOCS / "results.json").read_text())
    [committed] = [c for c in data["cells"] if (c["design"], c["hw"]) == (design, hw)]
    fresh = _cell_dict(run_cell(DESIGNS[design], hw, DOC_BOUNDS, CATALOG))
    assert json.loads(json.dumps(fresh)) == committed
