"""The worlds the bugs need (`--bounds mixed_group=1`, `shared_ats=1`): what they contain,
and that upstream holds in them on both drivers, with pinned state counts.

mixed_group adds a group gM of devM0 (PASID-capable) and devM1 (no PASID: a non-PASID
function behind the same ACS boundary); shared_ats gives the shared-group devices (devS0,
devS1, and devM0) ATS. Both default to 0, so no existing world changes.
"""

from __future__ import annotations

import pytest

from checker.explore import check_explore
from invariants.catalog import CATALOG
from model.bounds import Bounds, BoundsError
from model.designs import get_design
from model.objects import Device

BASE = "devices=0,processes=1,paging_domains=1,iova_pages=1,phys_pages=1,max_pasids=2"
MIXED = Bounds.parse(f"{BASE},mixed_group=1")
SHARED_ATS = Bounds.parse(f"{BASE},shared_group=1,shared_ats=1")

#: (world, hw) -> (distinct states, depth of the deepest state), caches saturated
COUNTS = {
    ("mixed", "vtd"): (1296, 14),
    ("mixed", "smmuv3"): (4496, 25),
    ("shared_ats", "vtd"): (2352, 16),
    ("shared_ats", "smmuv3"): (5776, 25),
}
WORLDS = {"mixed": MIXED, "shared_ats": SHARED_ATS}
FAST = {("mixed", "vtd")}  # the others take 20-60 s


def test_the_new_bounds_build_the_devices_they_name() -> None:
    assert MIXED.device_list() == (
        Device("devM0", sid=0xA0, group="gM", max_pasids=2, ats=False),
        Device("devM1", sid=0xA1, group="gM", max_pasids=0),
    )
    assert SHARED_ATS.device_list() == (
        Device("devS0", sid=0x80, group="gS", max_pasids=2, ats=True),
        Device("devS1", sid=0x81, group="gS", max_pasids=2, ats=True),
    )
    both = Bounds.parse(f"{BASE},mixed_group=1,shared_ats=1").device_list()
    assert [(d.name, d.ats) for d in both] == [("devM0", True), ("devM1", False)]


def test_defaults_do_not_change() -> None:
    b = Bounds()
    assert not b.mixed_group and not b.shared_ats
    assert [d.name for d in b.device_list()] == ["dev0", "dev1"]
    assert [d.ats for d in Bounds(shared_group=True).device_list()] == [True, True, False, False]


def test_shared_ats_needs_a_shared_group() -> None:
    with pytest.raises(BoundsError, match="shared_ats=1 needs shared_group=1 or mixed_group=1"):
        Bounds.parse("devices=1,shared_ats=1")
    assert Bounds.parse("devices=0,mixed_group=1").device_list()  # mixed_group alone is a world


def _cells() -> list[object]:
    return [pytest.param(w, h, id=f"{w}-{h}", marks=() if (w, h) in FAST else pytest.mark.deep)
            for w, h in sorted(COUNTS)]


@pytest.mark.parametrize("world,hw", _cells())
def test_upstream_holds_in_the_bug_worlds(world: str, hw: str) -> None:
    r = check_explore(get_design("upstream"), hw, WORLDS[world], CATALOG, saturate=True)
    assert r.trace is None, r.trace and r.trace.listing(with_hw=False)
    assert r.complete
    assert (r.examples, r.extra["depth"]) == COUNTS[(world, hw)], r.extra["summary"]
