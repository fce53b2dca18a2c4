"""The catalogs are data: every invariant and design carries its rationale and real seeds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from invariants.catalog import BY_ID, CATALOG
from model.actions import ACTIONS_BY_NAME
from model.designs import DESIGNS

SEEDS = Path(__file__).resolve().parents[2].parent / "shared" / "seeds"


def _norm(text: str) -> str:
    """Seeds are mail: quoting marks and line breaks are not part of the words."""
    text = re.sub(r"^[>*\s]+", "", text, flags=re.M)
    return re.sub(r"\s+", " ", text).strip().lower()


@pytest.mark.parametrize("inv", CATALOG, ids=[i.id for i in CATALOG])
def test_invariant_has_rationale_and_real_seed_quote(inv) -> None:  # type: ignore[no-untyped-def]
    assert re.fullmatch(r"[a-z][a-z0-9-]+", inv.id)
    assert inv.statement.endswith(".") and len(inv.statement) > 40
    assert len(inv.rationale) > 80
    # model-exception is the one pseudo-invariant: the Runner reports it, it checks nothing
    assert inv.check_state is not None or inv.check_step is not None or inv.id == "model-exception"
    for seed in inv.seeds:
        assert (SEEDS / seed).is_file(), seed
    if inv.quote:
        texts = " ".join(_norm((SEEDS / s).read_text(errors="replace")) for s in inv.seeds)
        assert _norm(inv.quote) in texts, f"{inv.id}: quote not found in its seeds"


def test_catalog_covers_design_md_section_5() -> None:
    design_md = ("exclusive-device-ownership no-attach-while-pasid-users global-pasid-consistent "
                 "asid-known-at-detach detached-pasid-blocked no-stale-translation did-pasid-tag-unique "
                 "domain-outlives-notifier no-callback-after-module-unload sva-handle-refcount "
                 "mm-exit-stops-dma pasid-not-reused-while-bound tables-match-core hitless-entry-update")
    assert set(design_md.split()) <= set(BY_ID)


@pytest.mark.parametrize("name", sorted(DESIGNS))
def test_design_is_documented_and_consistent(name: str) -> None:
    d = DESIGNS[name]
    assert d.summary and len(d.rationale) > 60
    if d.kind == "seed":
        assert d.seeds or d.name == "upstream"
    for seed in d.seeds:
        assert (SEEDS / seed).is_file(), seed
    for hw, ids in d.expect_breaks:
        assert hw in d.hw
        assert set(ids) <= set(BY_ID), ids
    # "boot": the design changes boot itself (vtd-ats-enable-without-devtlb-tag)
    assert set(d.changed_calls) - {"boot"} <= set(ACTIONS_BY_NAME), d.changed_calls
    assert d.changed_calls or d.name == "upstream"


def test_every_seed_is_argued_by_some_design() -> None:
    argued = {s for d in DESIGNS.values() for s in d.seeds}
    assert argued == {p.name for p in SEEDS.glob("*.txt")}
