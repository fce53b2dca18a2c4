"""Ranges (#17 items 1-2, bound range_pages): map and unmap of N pages at any alignment,
one gather and one iotlb_sync, flush_iotlb_all, mmu-notifier ranges, and the
invalidation encodings each driver computes for them, read back as the hardware reads
them (which pages each descriptor or command covers).

Worked values are the ones in the facts report of the drivers (cache.c
calculate_psi_aligned_address; arm-smmu-v3.c __arm_smmu_tlb_inv_range and
arm_smmu_atc_inv_to_cmd).
"""

from __future__ import annotations

import errno
import random

import pytest

from checker.explore import explore
from checker.worlds import WORLDS
from invariants.catalog import CATALOG
from model.design import UPSTREAM
from hwspec import smmuv3
from hwspec.vtd import QiDiotlb, QiEiotlb, devtlb_pages, psi_pages
from model.core import Kernel
from model.designs import get_design
from model.drivers.base import ULONG_MAX
from model.drivers.smmuv3 import SmmuV3Driver
from model.drivers.vtd import calculate_psi_aligned_address

B = WORLDS["range1"].to_bounds()


# ------------------------------------------------------------ VT-d arithmetic
@pytest.mark.parametrize("start,end,addr,mask", [
    (0x3000, 0x4FFF, 0x0, 3),          # pages 3-4 cross a 4-page boundary: 8 pages from 0
    (0x1800, 0x27FF, 0x0, 2),          # a byte range inside pages 1-2: 4 pages from 0
    (0x200000, 0x3FFFFF, 0x200000, 9),  # 2 MiB aligned: exactly 512 pages
    (0x1000, 0x1FFF, 0x1000, 0),       # one page: itself
    (0x1000, 0x2FFF, 0x0, 2),          # pages 1-2: the span 0-3
])
def test_calculate_psi_aligned_address(start: int, end: int, addr: int, mask: int) -> None:
    assert calculate_psi_aligned_address(start, end) == (addr, mask)


def test_psi_span_covers_every_range_and_is_aligned() -> None:
    rnd = random.Random(17)
    for _ in range(20_000):
        start = rnd.randrange(0, 1 << 40)
        end = start + rnd.randrange(0, 1 << rnd.randrange(1, 30))
        addr, mask = calculate_psi_aligned_address(start, end)
        assert addr % (0x1000 << mask) == 0
        span = psi_pages(addr >> 12, mask)
        assert start >> 12 in span and end >> 12 in span


# ------------------------------------------------------------ the core's gather
def _attached(hw: str, design: str = "upstream") -> tuple[Kernel, int]:
    k = Kernel(hw, B.device_list(), get_design(design))
    d = k.iommu_paging_domain_alloc("dev0")
    assert isinstance(d, int) and k.iommu_attach_device(d, "dev0") == 0
    k.driver.take_hw_log(k)
    return k, d


@pytest.mark.parametrize("hw", ["vtd", "smmuv3", "mock"])
def test_map_and_unmap_of_a_range(hw: str) -> None:
    k, d = _attached(hw)
    assert k.iommu_map(d, 0x1000, 0x0, size=0x2000) == 0
    assert k.iommu_map(d, 0x2000, 0x0, size=0x2000) == -errno.EEXIST  # page 2 is mapped
    assert k.iommu_map(d, 0x800, 0x0, size=0x1000) == -errno.EINVAL  # not 4 KiB aligned
    assert k.iommu_map(d, 0x0, 0x0, size=0x1800) == -errno.EINVAL
    pt = k.domains[d].pgtable
    assert pt is not None and k.mem.walk(pt, 0) is None
    assert [k.mem.walk(pt, p).pfn for p in (1, 2)] == [0, 1]  # type: ignore[union-attr]
    # __iommu_unmap stops at the first hole: pages 1-2 of the three asked for from page 1
    assert k.iommu_unmap(d, 0x0, 0x3000) == 0  # page 0 is the hole
    assert k.iommu_unmap(d, 0x1000, 0x3000) == 0x2000
    assert k.mem.walk(pt, 1) is None and k.mem.walk(pt, 2) is None


def test_vtd_unmap_of_pages_1_2_is_one_psi_over_pages_0_3() -> None:
    k, d = _attached("vtd")
    assert k.iommu_map(d, 0x1000, 0x0, size=0x2000) == 0
    k.driver.take_hw_log(k)
    assert k.iommu_unmap(d, 0x1000, 0x2000) == 0x2000
    assert k.driver.take_hw_log(k) == [
        "QI_EIOTLB psi did=2 pasid=0 addr=0x0 am=2 ih=1",  # no page-table page freed: IH=1
        "QI_DEV_IOTLB sid=0x0008 addr=0x0 pages=4",
        "QI_IWD status_write data=2",
    ]


def test_vtd_flush_iotlb_all_and_notifier_ranges() -> None:
    k, d = _attached("vtd")
    k.iommu_flush_iotlb_all(d)
    assert k.driver.take_hw_log(k) == [
        "QI_EIOTLB all did=2 pasid=0", "QI_DEV_IOTLB sid=0x0008 whole range",
        "QI_IWD status_write data=2"]
    dom = k.domains[d]
    # intel_arch_invalidate_secondary_tlbs: the mm's end is exclusive -> end - 1
    k.driver.invalidate_secondary_tlbs(k, dom, 0x1000, 0x3000)
    assert k.driver.take_hw_log(k)[0] == "QI_EIOTLB psi did=2 pasid=0 addr=0x0 am=2 ih=0"
    k.driver.invalidate_secondary_tlbs(k, dom, 0x1000, 0x2000)
    assert k.driver.take_hw_log(k)[0] == "QI_EIOTLB psi did=2 pasid=0 addr=0x1000 am=0 ih=0"
    k.driver.invalidate_secondary_tlbs(k, dom, 0, ULONG_MAX)
    assert k.driver.take_hw_log(k)[0] == "QI_EIOTLB all did=2 pasid=0"


def test_vtd_descriptors_cover_the_range_as_the_hardware_reads_them() -> None:
    """What each descriptor of a ranged flush covers, decoded from its fields."""
    k, d = _attached("vtd")
    assert k.iommu_map(d, 0x1000, 0x0, size=0x2000) == 0
    k.drv.unit.qi_log.clear()  # type: ignore[attr-defined]
    k.iommu_unmap(d, 0x1000, 0x2000)
    log = k.drv.unit.qi_log  # type: ignore[attr-defined]
    eiotlb = next(x for x in log if isinstance(x, QiEiotlb))
    diotlb = next(x for x in log if isinstance(x, QiDiotlb))
    assert list(psi_pages(eiotlb.addr, eiotlb.am)) == [0, 1, 2, 3]
    assert list(devtlb_pages(diotlb.addr, diotlb.s)) == [0, 1, 2, 3]


def test_vtd_variant_psi_from_page_count_misses_the_tail() -> None:
    k, d = _attached("vtd", "vtd-psi-mask-from-page-count")
    assert k.iommu_map(d, 0x1000, 0x0, size=0x2000) == 0
    k.hw_fill("dev0", None, 0x2000)
    k.iommu_unmap(d, 0x1000, 0x2000)
    assert any("translated" in str(o) or "may reach" in str(o) for o in k.dma("dev0", None, 0x2000))


# ------------------------------------------------------------ SMMUv3 encodings
def test_smmu_range_tlbi_33_pages_is_two_commands() -> None:
    cmds = smmuv3.tlbi_nh_va_cmds(1, 0, 0x0, 33 << 12, leaf=True, range_inv=True)
    assert [(c.scale, c.num, len(c.pages)) for c in cmds] == [(0, 0, 1), (5, 0, 32)]
    assert [c.pages.start for c in cmds] == [0, 1]
    assert all(c.tg == 1 and c.ttl == 3 for c in cmds)  # 4 KiB granule, leaf level 3


def test_smmu_range_tlbi_non_leaf_single_page_takes_two() -> None:
    """eb6c97647be2: NUM = SCALE = TTL = 0 with TG set is reserved for non-leaf."""
    (cmd,) = smmuv3.tlbi_nh_va_cmds(1, 0, 0x5000, 1 << 12, leaf=False, range_inv=True)
    assert (cmd.num, cmd.scale, cmd.ttl, list(cmd.pages)) == (0, 1, 0, [5, 6])


def test_smmu_commands_take_an_unaligned_address_as_the_field_reads_it() -> None:
    """The ADDR field holds VA[63:12]: an unaligned iova is no exception, its page is."""
    (cmd,) = smmuv3.tlbi_nh_va_cmds(1, 0, 0x1234, 1 << 12)
    assert list(cmd.pages) == [1]


def test_smmu_atc_inv_size_is_the_aligned_power_of_two_span() -> None:
    cmd = smmuv3.atc_inv_cmd(0x8, None, 7 << 12, 4 << 12)  # pages 7..10
    assert (cmd.addr, cmd.size) == (0, 4)


def test_smmu_unmap_range_with_and_without_range_invalidation() -> None:
    k, d = _attached("smmuv3")
    assert k.iommu_map(d, 0x1000, 0x0, size=0x2000) == 0
    k.driver.take_hw_log(k)
    k.iommu_unmap(d, 0x1000, 0x2000)
    assert k.driver.take_hw_log(k) == [
        "CMD_TLBI_NH_VA asid=2 vmid=0 va=0x1000 pages=1 leaf",
        "CMD_TLBI_NH_VA asid=2 vmid=0 va=0x2000 pages=1 leaf",
        "CMD_SYNC", "CMD_ATC_INV sid=0x8 addr=0x0 pages=4", "CMD_SYNC"]
    b = WORLDS["rangeR1"].to_bounds()
    k = Kernel("smmuv3", b.device_list(), driver=SmmuV3Driver(b.asid_bits, range_inv=True))
    d = k.iommu_paging_domain_alloc("dev0")
    assert isinstance(d, int) and k.iommu_attach_device(d, "dev0") == 0
    assert k.iommu_map(d, 0x1000, 0x0, size=0x2000) == 0
    k.driver.take_hw_log(k)
    k.iommu_unmap(d, 0x1000, 0x2000)
    assert k.driver.take_hw_log(k)[0] == (
        "CMD_TLBI_NH_VA asid=2 vmid=0 va=0x1000 num=0 scale=1 tg=1 ttl=3 pages=2 leaf")


def test_smmu_notifier_range_is_non_leaf_and_large_ranges_flush_the_asid() -> None:
    k, d = _attached("smmuv3")
    dom = k.domains[d]
    k.driver.invalidate_secondary_tlbs(k, dom, 0x1000, 0x3000)
    log = k.driver.take_hw_log(k)
    assert log[:2] == ["CMD_TLBI_NH_VA asid=2 vmid=0 va=0x1000 pages=1",
                       "CMD_TLBI_NH_VA asid=2 vmid=0 va=0x2000 pages=1"]
    # CMDQ_MAX_TLBI_OPS pages (2 MiB) or more: the whole ASID
    k.driver.invalidate_secondary_tlbs(k, dom, 0, 512 << 12)
    assert k.driver.take_hw_log(k)[0] == "CMD_TLBI_NH_ASID asid=2 vmid=0"


def test_smmu_variant_exclusive_end_drops_the_last_page_with_range_invalidation() -> None:
    """size = end - start is one byte short: one command per page still reaches the last
    page, ATC_INV's span still covers it, but a range TLBI counts whole pages."""
    b = WORLDS["rangeR1"].to_bounds()
    design = get_design("smmu-iotlb-sync-exclusive-end")
    for range_inv, tlbis in ((False, 2), (True, 1)):
        k = Kernel("smmuv3", b.device_list(), design, SmmuV3Driver(b.asid_bits, range_inv))
        d = k.iommu_paging_domain_alloc("dev0")
        assert isinstance(d, int) and k.iommu_attach_device(d, "dev0") == 0
        assert k.iommu_map(d, 0x1000, 0x0, size=0x2000) == 0
        k.driver.take_hw_log(k)
        assert k.iommu_unmap(d, 0x1000, 0x2000) == 0x2000
        log = k.driver.take_hw_log(k)
        cmds = [x for x in log if x.startswith("CMD_TLBI")]
        assert len(cmds) == tlbis and "CMD_ATC_INV sid=0x8 addr=0x0 pages=4" in log
        if range_inv:
            assert cmds == ["CMD_TLBI_NH_VA asid=2 vmid=0 va=0x1000 num=0 scale=0 tg=1 ttl=3 "
                            "pages=1 leaf"]


# ------------------------------------------------------------ upstream holds
# The range worlds take 20-40 s each: all in the deep run. The default run covers them
# with the Hypothesis machine (tests/checker/test_machine_address_space.py, which finds
# nothing on upstream in range1, rangeR1 and rangeSva1) and the explorer's breaks of the
# range designs (tests/designs/test_expected_breaks.py).
@pytest.mark.parametrize("world,hwkind,index", [
    pytest.param("range1", "vtd", 0, marks=pytest.mark.deep),
    pytest.param("rangeSva1", "smmuv3", 1, marks=pytest.mark.deep),
    pytest.param("range1", "smmuv3", 1, marks=pytest.mark.deep),
    pytest.param("rangeR1", "smmuv3", 1, marks=pytest.mark.deep),
    pytest.param("rangeSva1", "vtd", 0, marks=pytest.mark.deep),
])
def test_upstream_holds_in_the_range_worlds(world: str, hwkind: str, index: int) -> None:
    _, out = explore(UPSTREAM, hwkind, WORLDS[world].to_bounds(), tuple(CATALOG), saturate=True)
    assert out.violation is None and out.complete
    assert out.states == WORLDS[world].states[index]


def test_x86_munmap_past_the_flush_ceiling_still_reaches_the_notifier_as_its_range() -> None:
    """Past tlb_single_page_flush_ceiling (33 pages) x86 flushes its own TLB whole, but
    since v6.15 the widening is in get_flush_tlb_info and flush_tlb_mm_range passes the
    caller's range to the secondary-TLB notifier: 33 and 34 pages are both ranges."""
    from model.bounds import Bounds
    b = Bounds(devices=1, processes=1, paging_domains=0, iova_pages=40, phys_pages=1,
               max_pasids=2, range_pages=34)
    for pages, first in ((33, "QI_EIOTLB psi did=1 pasid=1 addr=0x0 am=6 ih=0"),
                         (34, "QI_EIOTLB psi did=1 pasid=1 addr=0x0 am=6 ih=0")):
        k = Kernel("vtd", b.device_list())
        mm = k.mm_alloc()
        h = k.iommu_sva_bind_device("dev0", mm)
        assert isinstance(h, int)
        for i in range(pages):
            assert k.cpu_map(mm, i << 12, 0) == 0
        k.driver.take_hw_log(k)
        assert k.cpu_munmap(mm, 0, pages << 12) == 0
        assert k.driver.take_hw_log(k)[0] == first
