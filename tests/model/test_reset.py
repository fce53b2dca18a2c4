"""A device's life after boot (model/core/reset.py): PCI reset staging as mainline
v7.0 makes it, and surprise removal.

Each test states one rule of pci_dev_reset_iommu_prepare / _done, read in
drivers/iommu/iommu.c (c279e83953d9 and the v7.0-stable fixes), with the errno the
kernel returns, on both drivers; the invariants' own tests are the broken variants
in tests/designs (reset-* designs), each caught with its shortest trace.
"""

from __future__ import annotations

import errno

import pytest

from checker.explore import explore
from checker.worlds import WORLDS
from hwspec.outcome import Access, Kind
from invariants.catalog import CATALOG, get
from invariants.base import Step
from model.actions import ACTIONS_BY_NAME
from model.bounds import Bounds
from model.core import BLOCKED_DOMAIN_ID, Kernel
from model.design import UPSTREAM
from model.objects import Device

HW = ("vtd", "smmuv3")
PA = 0x8000_0000


def _kernel(hw: str, *devices: Device) -> Kernel:
    return Kernel(hw, devices or [Device("dev0", 0x08, "g0", max_pasids=4, ats=True)])


def _effect(k: Kernel, dev: str, pasid: int | None, iova: int = 0) -> set[object]:
    return {o.kind if o.kind is not Kind.TRANSLATED else o.pa for o in k.dma(dev, pasid, iova, Access.READ)}


def _pasid_domain(k: Kernel, dev: str = "dev0") -> tuple[int, int]:
    """A paging domain attached at a kernel PASID of dev, with page 0 mapped (and filled)."""
    d = k.iommu_paging_domain_alloc(dev)
    assert isinstance(d, int)
    pasid = k.iommu_alloc_global_pasid(dev)
    assert k.iommu_attach_device_pasid(d, dev, pasid) == 0
    assert k.iommu_map(d, 0, PA) == 0
    k.hw_fill(dev, pasid, 0, Access.READ)
    return d, pasid


@pytest.mark.parametrize("hw", HW)
def test_prepare_blocks_rid_and_pasids_and_done_restores_them(hw: str) -> None:
    k = _kernel(hw)
    d, pasid = _pasid_domain(k)
    assert k.dma_map_page("dev0", 0, PA) == 0
    g_before = k.groups["g0"]
    assert _effect(k, "dev0", None) == {PA} and _effect(k, "dev0", pasid) == {PA}
    assert k.pci_dev_reset_iommu_prepare("dev0") == 0
    assert k.resetting == {"dev0"}
    # the hardware blocks everything; the core's record is what done restores
    assert _effect(k, "dev0", None) == {Kind.FAULT} and _effect(k, "dev0", pasid) == {Kind.FAULT}
    g = k.groups["g0"]
    assert (g.domain, g.pasid_array) == (g_before.domain, g_before.pasid_array)
    assert g.blocking_domain == BLOCKED_DOMAIN_ID
    k.pci_dev_reset_iommu_done("dev0")
    assert k.resetting == frozenset()
    assert _effect(k, "dev0", None) == {PA} and _effect(k, "dev0", pasid) == {PA}
    assert k.warnings == []


@pytest.mark.parametrize("hw", HW)
def test_prepare_without_ats_does_nothing(hw: str) -> None:
    k = _kernel(hw, Device("dev0", 0x08, "g0", max_pasids=4, ats=False))
    key = k.key()
    assert k.pci_dev_reset_iommu_prepare("dev0") == 0  # pci_ats_supported() is false
    assert k.resetting == frozenset() and k.key() == key
    k.pci_dev_reset_iommu_done("dev0")  # prepare was bypassed: nothing to restore
    assert k.key() == key and k.warnings == []


@pytest.mark.parametrize("hw", HW)
def test_attach_calls_are_refused_with_ebusy_while_resetting(hw: str) -> None:
    k = _kernel(hw)
    d = k.iommu_paging_domain_alloc("dev0")
    assert isinstance(d, int)
    pasid = k.iommu_alloc_global_pasid("dev0")
    assert k.pci_dev_reset_iommu_prepare("dev0") == 0
    key = k.key()
    assert k.iommu_attach_device(d, "dev0") == -errno.EBUSY  # __iommu_group_set_domain_internal
    assert k.iommu_attach_device_pasid(d, "dev0", pasid) == -errno.EBUSY
    assert k.iommu_device_claim_dma_owner("dev0", "vfio") == -errno.EBUSY
    h = k.new_attach_handle()
    key = k.key()
    assert k.iommu_replace_device_pasid(d, "dev0", pasid, h) == -errno.EBUSY
    assert k.key() == key
    # the checks before the reset's keep their errno: pasid 0 is -EINVAL first
    assert k.iommu_attach_device_pasid(d, "dev0", 0) == -errno.EINVAL
    k.pci_dev_reset_iommu_done("dev0")
    assert k.iommu_attach_device_pasid(d, "dev0", pasid) == 0
    assert k.warnings == []


@pytest.mark.parametrize("hw", HW)
def test_detach_during_reset_skips_the_device_and_done_restores_the_new_record(hw: str) -> None:
    k = _kernel(hw)
    d, pasid = _pasid_domain(k)
    assert k.iommu_attach_device(d, "dev0") == 0
    assert k.pci_dev_reset_iommu_prepare("dev0") == 0
    # iommu_detach_device_pasid has no reset check: the entry goes, the blocked device
    # is skipped (fc3523b1), and done does not restore it
    k.iommu_detach_device_pasid(d, "dev0", pasid)
    assert k.groups["g0"].pasid_entry(pasid) is None
    # a must-succeed change goes through and skips the blocked device (5474e6e1)
    k.iommu_detach_device(d, "dev0")
    g = k.groups["g0"]
    assert g.domain == g.default_domain
    assert _effect(k, "dev0", None) == {Kind.FAULT}  # still blocked until done
    k.pci_dev_reset_iommu_done("dev0")
    assert _effect(k, "dev0", pasid) == {Kind.FAULT}
    assert _effect(k, "dev0", None) == {Kind.FAULT}  # the default domain maps nothing yet
    assert k.dma_map_page("dev0", 0, PA) == 0
    assert _effect(k, "dev0", None) == {PA}
    assert k.warnings == []


@pytest.mark.parametrize("hw", HW)
def test_reset_of_one_group_member_leaves_the_other_alone(hw: str) -> None:
    k = _kernel(hw, Device("devS0", 0x80, "gS", max_pasids=4, ats=True),
                Device("devS1", 0x81, "gS", max_pasids=4, ats=True))
    d, pasid = _pasid_domain(k, "devS0")
    k.hw_fill("devS1", pasid, 0, Access.READ)
    assert k.pci_dev_reset_iommu_prepare("devS0") == 0
    assert _effect(k, "devS0", pasid) == {Kind.FAULT}
    assert _effect(k, "devS1", pasid) == {PA}
    # the group is recovering: a PASID attach through the other member is refused too
    assert k.iommu_attach_device_pasid(d, "devS1", k.iommu_alloc_global_pasid("devS1")) == -errno.EBUSY
    k.pci_dev_reset_iommu_done("devS0")
    assert _effect(k, "devS0", pasid) == {PA} and _effect(k, "devS1", pasid) == {PA}
    assert k.warnings == []


@pytest.mark.parametrize("hw", HW)
def test_no_ats_invalidation_reaches_the_device_while_it_resets(hw: str) -> None:
    """The blocking attach takes the device off the domain's flush list: an unmap during
    the reset sends no ATS invalidation to it (no-ats-inv-during-reset's rule, upstream)."""
    k = _kernel(hw)
    d, pasid = _pasid_domain(k)
    assert k.pci_dev_reset_iommu_prepare("dev0") == 0
    before = k.copy()
    n = len(k.driver.ats_invalidations(k))
    assert k.iommu_unmap(d, 0) == 4096
    assert k.driver.ats_invalidations(k)[n:] == []
    inv = get(["no-ats-inv-during-reset"])[0]
    step = Step(before, ACTIONS_BY_NAME["iommu_unmap"], (d, 0), 4096, k)
    assert inv.check(step, k, Bounds()) is None


def test_reset_actions_exist_only_with_the_bound() -> None:
    k = _kernel("vtd")
    prepare = ACTIONS_BY_NAME["pci_dev_reset_iommu_prepare"]
    assert list(prepare.enabled_args(k, Bounds())) == []
    assert list(prepare.enabled_args(k, Bounds(pci_reset=True))) == [("dev0",)]


@pytest.mark.parametrize("hw,index", [("vtd", 0), ("smmuv3", 1)])
def test_upstream_holds_in_the_shared_reset_world(hw: str, index: int) -> None:
    w = WORLDS["resetS1"]
    _, out = explore(UPSTREAM, hw, w.to_bounds(), tuple(CATALOG), saturate=True)
    assert out.violation is None and out.complete
    assert out.states == w.states[index]


@pytest.mark.deep
@pytest.mark.parametrize("hw,index", [("vtd", 0), ("smmuv3", 1)])
def test_upstream_holds_in_the_reset_world(hw: str, index: int) -> None:
    w = WORLDS["reset1"]
    _, out = explore(UPSTREAM, hw, w.to_bounds(), tuple(CATALOG), saturate=True)
    assert out.violation is None and out.complete
    assert out.states == w.states[index]


# ============================================================ surprise removal
@pytest.mark.parametrize("hw", HW)
def test_a_removed_device_issues_no_dma_and_its_atc_goes_with_it(hw: str) -> None:
    k = _kernel(hw)
    assert k.dma_map_page("dev0", 0, PA) == 0
    k.hw_fill("dev0", None, 0, Access.READ)
    assert any("TLB (sid" in o.via or "ATC" in o.via for o in k.dma("dev0", None, 0, Access.READ))
    k.pci_surprise_removal("dev0")
    assert k.disconnected == {"dev0"}
    assert not any("device-TLB" in o.via or "ATC" in o.via for o in k.dma("dev0", None, 0, Access.READ))
    b = Bounds(devices=1, hotplug=True)
    assert list(ACTIONS_BY_NAME["dma"].enabled_args(k, b)) == []
    assert list(ACTIONS_BY_NAME["pci_surprise_removal"].enabled_args(k, b)) == []  # once


def test_vtd_teardown_skips_the_device_tlb_of_a_removed_device() -> None:
    """devtlb_invalidation_with_pasid checks pci_device_is_present (4fc82cd907ac, 10e60d87)."""
    k = _kernel("vtd")
    k.pci_surprise_removal("dev0")
    n = len(k.driver.ats_invalidations(k))
    assert k.iommu_device_claim_dma_owner("dev0", "vfio") == 0  # blocks the RID: a teardown
    assert k.driver.ats_invalidations(k)[n:] == []
    assert k.warnings == []


@pytest.mark.parametrize("hw", HW)
def test_a_flush_that_reaches_a_removed_device_times_out_without_a_hang(hw: str) -> None:
    """cache_tag_flush_range (VT-d) and the ATC invalidation (SMMUv3) do not look at
    presence: the invalidation is sent, times out, and mainline carries on (80a9b50c on
    VT-d; SMMUv3 skips the CMD_SYNC error)."""
    k = _kernel(hw)
    assert k.dma_map_page("dev0", 0, PA) == 0
    k.pci_surprise_removal("dev0")
    n = len(k.driver.ats_invalidations(k))
    assert k.dma_unmap_page("dev0", 0) == 4096
    assert [sid for sid, _ in k.driver.ats_invalidations(k)[n:]] == [0x08]
    assert k.warnings == []


def test_hotplug_actions_exist_only_with_the_bound() -> None:
    k = _kernel("vtd")
    removal = ACTIONS_BY_NAME["pci_surprise_removal"]
    assert list(removal.enabled_args(k, Bounds())) == []
    assert list(removal.enabled_args(k, Bounds(hotplug=True))) == [("dev0",)]


@pytest.mark.deep
@pytest.mark.parametrize("hw,index", [("vtd", 0), ("smmuv3", 1)])
def test_upstream_holds_in_the_hotplug_world(hw: str, index: int) -> None:
    w = WORLDS["hotplug1"]
    _, out = explore(UPSTREAM, hw, w.to_bounds(), tuple(CATALOG), saturate=True)
    assert out.violation is None and out.complete
    assert out.states == w.states[index]
