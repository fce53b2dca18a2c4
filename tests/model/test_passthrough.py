"""Identity (pass-through) default domains (bound passthrough=1, world pt1).

iommu_setup_default_domain gives a group the driver's static identity domain when the
default type is IDENTITY (iommu.passthrough=1, def_domain_type); the drivers program
it as VT-d's pass-through PASID entry at RID_PASID (PGTT=PT, FLPT_DEFAULT_DID) and as
an SMMUv3 bypass STE, which becomes a CD-table STE with S1DSS=BYPASS while PASIDs are
in use (arm_smmu_attach_dev_ste) and a plain bypass STE again once they are gone.
"""

from __future__ import annotations

import pytest

from checker.explore import explore
from checker.worlds import WORLDS
from invariants.catalog import CATALOG
from model.actions import ACTIONS_BY_NAME
from model.core import IDENTITY_DOMAIN_ID, Kernel
from model.design import UPSTREAM

PT1 = WORLDS["pt1"].to_bounds()
PA = 0x8000_0000


def _entries(k: Kernel) -> list[str]:
    return [line.strip() for line in k.driver.dump(k) if "pasid_entry" in line or "STE [" in line]


def _bind(k: Kernel) -> int:
    mm = k.mm_alloc()
    assert k.cpu_map(mm, 0x0, PA) == 0
    h = k.iommu_sva_bind_device("dev0", mm)
    assert isinstance(h, int)
    return h


def test_boot_gives_the_identity_domain_and_a_bypassing_rid() -> None:
    for hwkind in ("vtd", "smmuv3", "mock"):
        k = Kernel(hwkind, PT1.device_list())
        g = k.groups["g0"]
        assert g.default_domain == g.domain == IDENTITY_DOMAIN_ID
        if hwkind == "mock":
            continue  # no hardware to translate
        assert [str(o) for o in k.dma("dev0", None, 0x0)] == ["bypasses translation (pa = iova) via walk"]


def test_dma_api_is_dma_direct_under_passthrough() -> None:
    k = Kernel("vtd", PT1.device_list())
    assert k.iommu_device_use_default_domain("dev0") == 0
    assert list(ACTIONS_BY_NAME["dma_map_page"].enabled_args(k, PT1)) == []


def test_vtd_pass_through_rid_beside_an_sva_pasid() -> None:
    k = Kernel("vtd", PT1.device_list())
    assert _entries(k) == [
        "pasid 0 @0x4000 pasid_entry [q0=0x0000000000000109 q1=0x0000000000000001] p=1 aw=2 pgtt=PT(4) did=1"]
    _bind(k)
    assert _entries(k)[0].endswith("pgtt=PT(4) did=1")  # the RID stays pass-through
    assert "pgtt=FL_ONLY(1) did=1" in _entries(k)[1]
    assert [o.pa for o in k.dma("dev0", 1, 0x0)] == [PA]


def test_smmuv3_identity_rid_keeps_the_cd_table_while_pasids_are_used() -> None:
    k = Kernel("smmuv3", PT1.device_list())
    assert _entries(k) == ["sid 0x8: STE [q0=0x0000000000000009 q1=0x0000100000000000] v=1 cfg=BYPASS(4) "
                           "shcfg=INCOMING(1)"]
    h = _bind(k)
    ste = _entries(k)[0]
    assert "cfg=S1_TRANS(5)" in ste and "s1dss=BYPASS(1)" in ste and "eats=TRANS(1)" in ste
    assert [str(o) for o in k.dma("dev0", None, 0x0)] == ["bypasses translation (pa = iova) via walk"]
    assert [o.pa for o in k.dma("dev0", 1, 0x0)] == [PA]
    k.iommu_sva_unbind_device(h)
    assert "cfg=BYPASS(4)" in _entries(k)[0]  # no SSID in use: back to the plain bypass STE


@pytest.mark.parametrize("hwkind,index", [
    ("vtd", 0),
    pytest.param("smmuv3", 1, marks=pytest.mark.deep),
])
def test_upstream_holds_in_the_passthrough_world(hwkind: str, index: int) -> None:
    _, out = explore(UPSTREAM, hwkind, PT1, tuple(CATALOG), saturate=True)
    assert out.violation is None and out.complete
    assert out.states == WORLDS["pt1"].states[index]
