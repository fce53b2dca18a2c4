"""Release and hot-add (bound reprobe=1, world reprobe1): iommu_release_device and
iommu_probe_device as iommu.c and the drivers do them (late-2025 reading: the device
leaves group->devices, the release domain - the blocking domain - is attached, then
ops->release_device; the group's last device takes the default domain with it).
"""

from __future__ import annotations

import errno

import pytest

from checker.explore import explore
from checker.worlds import WORLDS
from invariants.catalog import CATALOG
from model.core import Kernel
from model.design import UPSTREAM
from model.objects import ErrPtr

B = WORLDS["reprobe1"].to_bounds()


def _released(hwkind: str) -> tuple[Kernel, int]:
    k = Kernel(hwkind, B.device_list())
    old_default = k.groups["g0"].default_domain
    assert old_default is not None
    k.driver.take_hw_log(k)
    k.iommu_release_device("dev0")
    return k, old_default


def test_release_takes_the_group_and_its_default_domain() -> None:
    for hwkind in ("vtd", "smmuv3", "mock"):
        k, old_default = _released(hwkind)
        assert "g0" not in k.groups and k.group_of("dev0") is None
        assert old_default not in k.domains and k.freed[("domain", old_default)] == "iommu_domain_free"
        assert k.iommu_paging_domain_alloc("dev0") == ErrPtr(-errno.ENODEV)
        assert k.warnings == []


def test_vtd_release_clears_the_context_entry_and_frees_the_pasid_table() -> None:
    k0 = Kernel("vtd", B.device_list())
    pdir = k0.drv.info["dev0"].pasid_dir  # type: ignore[attr-defined]
    k, _ = _released("vtd")
    log = k.driver.take_hw_log(k)
    # the blocking domain's teardown of RID_PASID, then the SM context entry's flush
    assert log[0] == "QI_PC pasid-selective did=2 pasid=0"
    assert "QI_CC device sid=0x0008 fm=0 did=0" in log
    assert "dev0" not in k.drv.info  # type: ignore[attr-defined]
    assert pdir not in k.mem.allocated
    assert not any("context 00:01.0" in line and "p=1" in line for line in k.driver.dump(k))
    assert [str(o) for o in k.dma("dev0", None, 0x0)][0].startswith("faults")


def test_smmuv3_release_aborts_the_ste_and_frees_the_cd_table() -> None:
    k0 = Kernel("smmuv3", B.device_list())
    table = k0.drv.masters["dev0"].cd_table  # type: ignore[attr-defined]
    k, _ = _released("smmuv3")
    assert "dev0" not in k.drv.masters  # type: ignore[attr-defined]
    assert table not in k.mem.allocated
    # the blocking domain's abort STE: V=1, Config 0 (abort)
    assert "  sid 0x8: STE [q0=0x0000000000000001] v=1" in k.driver.dump(k)


@pytest.mark.parametrize("hwkind", ["vtd", "smmuv3"])
def test_hot_add_probes_again_with_a_fresh_default_domain(hwkind: str) -> None:
    k, old_default = _released(hwkind)
    assert k.iommu_probe_device("dev0") == 0
    g = k.groups["g0"]
    assert g.devices == ("dev0",) and g.domain == g.default_domain != old_default
    assert k.iommu_probe_device("dev0") == 0  # probed already: nothing to do
    assert k.iommu_device_use_default_domain("dev0") == 0
    assert k.dma_map_page("dev0", 0x0, 0x8000_0000) == 0
    assert [o.pa for o in k.dma("dev0", None, 0x0)] == [0x8000_0000]


def test_the_last_device_leaving_an_owned_group_warns() -> None:
    k = Kernel("vtd", B.device_list())
    assert k.iommu_device_claim_dma_owner("dev0", "vfio") == 0
    k.iommu_release_device("dev0")
    assert k.warnings == ["iommu_release_device: dev0: the group's last device leaves while it is "
                          "owned or off its default domain"]


@pytest.mark.parametrize("hwkind,index", [("vtd", 0), ("smmuv3", 1)])
def test_upstream_holds_in_the_reprobe_world(hwkind: str, index: int) -> None:
    _, out = explore(UPSTREAM, hwkind, B, tuple(CATALOG), saturate=True)
    assert out.violation is None and out.complete
    assert out.states == WORLDS["reprobe1"].states[index]


@pytest.mark.deep
@pytest.mark.parametrize("hwkind,states", [("vtd", 14_153), ("smmuv3", 4_407)])
def test_upstream_holds_in_small1_with_reprobe(hwkind: str, states: int) -> None:
    b = WORLDS["small1"].to_bounds().override("reprobe=1")
    _, out = explore(UPSTREAM, hwkind, b, tuple(CATALOG), saturate=True)
    assert out.violation is None and out.complete
    assert out.states == states
