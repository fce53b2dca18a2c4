"""Misuse of the kernel API, on both drivers.

Misuse the kernel answers with an errno gets that errno and changes nothing.
Misuse the kernel does not check behaves as the kernel does -- a WARN (recorded
in `Kernel.warnings`) and no state change (`Kernel.key()` before == after), or
the driver-defined behaviour -- and is never a Python exception. Expected
results follow kernel-core-api.md sections 2-4 and 7; the driver-level cases
cite the driver code they follow.
"""

from __future__ import annotations

import errno
from typing import Any

import pytest

from checker.world import Config
from hwspec.memory import PAGE_SHIFT, Prot
from model.bounds import Bounds
from model.core import Kernel
from model.design import UPSTREAM
from model.objects import IS_ERR, Device, ErrPtr

HW = ["vtd", "smmuv3"]
PA0 = 0x8000_0000
PA1 = 0x8000_1000


@pytest.fixture(params=HW)
def k(request: pytest.FixtureRequest) -> Kernel:
    return Config(UPSTREAM, request.param, Bounds(ats_devices=1)).build()


class Call:
    """Run one kernel call; remember the state key and the WARNs it added."""

    def __init__(self, k: Kernel, fn: str, *args: Any) -> None:
        self.key_before = k.key()
        n = len(k.warnings)
        self.ret = getattr(k, fn)(*args)  # a Python exception fails the test
        self.warnings = k.warnings[n:]
        self.key_after = k.key()

    @property
    def unchanged(self) -> bool:
        return self.key_before == self.key_after


def paging_domain(k: Kernel, dev: str = "dev0") -> int:
    d = k.iommu_paging_domain_alloc(dev)
    assert isinstance(d, int) and not IS_ERR(d)
    return d


def default_domain(k: Kernel, dev: str) -> int:
    g = k.group_of(dev)
    assert g is not None and g.default_domain is not None
    return g.default_domain


# ----------------------------------------------------------------- RID detach misuse
def test_detach_of_a_domain_that_is_not_attached_warns_and_changes_nothing(k: Kernel) -> None:
    P = paging_domain(k)
    c = Call(k, "iommu_detach_device", P, "dev0")
    assert c.ret is None
    assert len(c.warnings) == 1 and "iommu_detach_device" in c.warnings[0]
    assert c.unchanged
    assert k.groups["g0"].domain == default_domain(k, "dev0")


def test_detach_from_the_wrong_device_warns_and_leaves_both(k: Kernel) -> None:
    P = paging_domain(k, "dev1")
    k.iommu_device_unuse_default_domain("dev1")
    assert k.iommu_attach_device(P, "dev1") == 0
    c = Call(k, "iommu_detach_device", P, "dev0")  # WARN_ON(domain != group->domain)
    assert len(c.warnings) == 1 and c.unchanged
    assert k.groups["g1"].domain == P
    assert k.groups["g0"].domain == default_domain(k, "dev0")


# ----------------------------------------------------------------- PASID detach misuse
@pytest.mark.parametrize("hw", [
    "vtd",
    "smmuv3",
])
def test_detach_device_pasid_never_attached_with_unattached_domain(hw: str) -> None:
    k = Config(UPSTREAM, hw, Bounds(ats_devices=1)).build()
    P = paging_domain(k)
    c = Call(k, "iommu_detach_device_pasid", P, "dev0", 1)
    assert c.ret is None
    assert c.unchanged
    assert k.groups["g0"].pasid_array == ()
    if hw == "vtd":
        assert len(c.warnings) == 1 and "oops" in c.warnings[0]
    else:
        # arm_smmu_blocking_set_dev_pasid: zero CD (already zero), ATC_INV, no master_domain
        # to remove: nothing to WARN about.
        assert c.warnings == []


@pytest.mark.parametrize("hw", [
    "vtd",
    "smmuv3",
])
def test_detach_device_pasid_never_attached_with_domain_attached_elsewhere(hw: str) -> None:
    k = Config(UPSTREAM, hw, Bounds(ats_devices=1)).build()
    P = paging_domain(k)
    assert k.iommu_alloc_global_pasid("dev0") == 1
    assert k.iommu_attach_device_pasid(P, "dev0", 1) == 0
    entry = k.groups["g0"].pasid_entry(1)
    c = Call(k, "iommu_detach_device_pasid", P, "dev0", 2)
    assert c.ret is None
    assert k.groups["g0"].pasid_entry(1) == entry  # the core erases only index 2 (empty)
    if hw == "vtd":
        assert len(c.warnings) == 1
        assert P not in k.drv.dids  # type: ignore[attr-defined]  # refcnt 1 -> 0: ida_free
    else:
        assert c.warnings == [] and c.unchanged
        assert k.drv.master_domains[P] == (("dev0", 1),)  # type: ignore[attr-defined]


# ----------------------------------------------------------------- SVA misuse
def test_unbind_twice_is_a_recorded_use_after_free(k: Kernel) -> None:
    mm = k.mm_alloc()
    assert k.cpu_map(mm, 0, PA0) == 0
    h = k.iommu_sva_bind_device("dev0", mm)
    assert isinstance(h, int) and not IS_ERR(h)
    first = Call(k, "iommu_sva_unbind_device", h)
    assert first.ret is None and first.warnings == [] and not first.unchanged
    second = Call(k, "iommu_sva_unbind_device", h)
    assert second.ret is None
    assert len(second.warnings) == 1 and "use-after-free" in second.warnings[0]
    assert second.unchanged
    assert k.mms[mm].pasid == 1  # unbind never frees the PASID


@pytest.mark.parametrize("hw", HW)
def test_bind_on_a_device_without_pasids_is_enospc_and_changes_nothing(hw: str) -> None:
    k = Kernel(hw, [Device("devA", 0x08, "gA", max_pasids=4, ats=True),
                    Device("devN", 0x20, "gN", max_pasids=0)])
    mm = k.mm_alloc()
    assert k.cpu_map(mm, 0, PA0) == 0
    c = Call(k, "iommu_sva_bind_device", "devN", mm)
    # iommu_alloc_mm_data: iommu_alloc_global_pasid gives IOMMU_PASID_INVALID -> -ENOSPC
    assert c.ret == ErrPtr(-errno.ENOSPC)
    assert c.warnings == [] and c.unchanged
    assert k.mms[mm].pasid is None  # iommu_mm was not kept
    h = k.iommu_sva_bind_device("devA", mm)  # the same mm binds fine to a PASID device
    assert isinstance(h, int) and k.mms[mm].pasid == 1


# ----------------------------------------------------------------- domain lifetime misuse
def test_double_domain_free_warns_and_changes_nothing(k: Kernel) -> None:
    P = paging_domain(k)
    first = Call(k, "iommu_domain_free", P)
    assert first.warnings == [] and P not in k.domains
    second = Call(k, "iommu_domain_free", P)
    assert second.ret is None
    assert len(second.warnings) == 1 and str(P) in second.warnings[0]
    assert second.unchanged


# ----------------------------------------------------------------- map / unmap misuse
def test_unmap_of_an_unmapped_iova_returns_0_and_changes_nothing(k: Kernel) -> None:
    P = paging_domain(k)
    assert k.iommu_alloc_global_pasid("dev0") == 1
    assert k.iommu_attach_device_pasid(P, "dev0", 1) == 0
    assert k.iommu_map(P, 0x1000, PA0) == 0
    c = Call(k, "iommu_unmap", P, 0x0)
    assert c.ret == 0 and c.warnings == [] and c.unchanged
    c = Call(k, "dma_unmap_page", "dev1", 0x1000)
    assert c.ret == 0 and c.warnings == [] and c.unchanged


def test_map_twice_at_the_same_iova_is_eexist_and_keeps_the_first(k: Kernel) -> None:
    P = paging_domain(k)
    assert k.iommu_map(P, 0x1000, PA0) == 0
    c = Call(k, "iommu_map", P, 0x1000, PA1)
    assert c.ret == -errno.EEXIST
    assert c.warnings == [] and c.unchanged
    pte = k.mem.walk(k.domains[P].pgtable, 1)  # type: ignore[arg-type]
    assert pte is not None and pte.pfn == PA0 >> PAGE_SHIFT and pte.prot == Prot.RW


# ----------------------------------------------------------------- DMA ownership misuse
@pytest.mark.parametrize("fn,target", [("iommu_device_claim_dma_owner", "dev0"),
                                       ("iommu_group_claim_dma_owner", "g0")])
def test_claim_with_null_owner_is_einval_with_warn(k: Kernel, fn: str, target: str) -> None:
    k.iommu_device_unuse_default_domain("dev0")  # even an unowned group refuses a NULL owner
    c = Call(k, fn, target, None)
    assert c.ret == -errno.EINVAL
    assert len(c.warnings) == 1 and "NULL owner" in c.warnings[0]
    assert c.unchanged
    assert k.groups["g0"].owner is None and k.groups["g0"].owner_cnt == 0


# ----------------------------------------------------------------- PASID range misuse
def test_attach_device_pasid_with_pasid_0_is_einval(k: Kernel) -> None:
    P = paging_domain(k)
    c = Call(k, "iommu_attach_device_pasid", P, "dev0", 0)
    assert c.ret == -errno.EINVAL and c.warnings == [] and c.unchanged


def test_attach_device_pasid_at_or_beyond_max_pasids_is_einval(k: Kernel) -> None:
    P = paging_domain(k)
    assert k.devices["dev0"].max_pasids == 4
    for pasid in (4, 5, 1 << 20):
        c = Call(k, "iommu_attach_device_pasid", P, "dev0", pasid)
        assert c.ret == -errno.EINVAL and c.warnings == [] and c.unchanged, pasid
    assert k.iommu_attach_device_pasid(P, "dev0", 3) == 0  # max_pasids - 1 is in range
