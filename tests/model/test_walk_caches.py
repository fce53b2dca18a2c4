"""Walk caches and page-table freeing (#17 item 3, bound walk_caches): leaf table pages
in Memory, the VT-d paging-structure cache and the SMMUv3 walk cache (filled by walks,
dropped by the invalidations the specifications say), the frees of a 2 MiB unmap and of
a process's munmap, and the walk-cache-live invariant.
"""

from __future__ import annotations

import pytest

from checker.explore import explore
from checker.world import Config
from model.bounds import Bounds, BoundsError
from hwspec.memory import VMALLOC_START
from checker.worlds import WORLDS
from hwspec import smmuv3
from hwspec.memory import SZ_2M, Memory, Pte
from hwspec.vtd import (EiotlbGran, IotlbGran, PscEntry, QiEiotlb, QiIotlb, qi_desc_piotlb,
                        qi_desc_piotlb_all)
from invariants.catalog import BY_ID, CATALOG
from model.core import Kernel
from model.design import UPSTREAM
from model.designs import get_design
from model.drivers import make_driver

W = WORLDS["walk1"].to_bounds()
WS = WORLDS["walkSva1"].to_bounds()


# ------------------------------------------------------------ memory
def test_leaf_table_pages_are_allocated_by_the_first_map_and_kept_by_leaf_unmaps() -> None:
    m = Memory(table_pages=True)
    root = m.new_pagetable()
    assert m.leaf_table(root, 0) is None
    m.map(root, 0, Pte(0x80))
    table = m.leaf_table(root, 0)
    assert table is not None and table in m.table_pool and m.table_owner(table) == (root, 0)
    m.map(root, 1, Pte(0x81))
    assert m.leaf_table(root, 1) == table  # one page maps the 2 MiB
    m.unmap(root, 0)
    m.unmap(root, 1)
    assert m.leaf_table(root, 0) == table  # emptied by leaf unmaps, not freed
    assert m.clear_table(root, 0) == table
    assert m.leaf_table(root, 0) is None and m.pagetables[root] == {}
    assert table in m.table_pool  # the caller frees it after its flush


def test_a_pointer_to_a_reused_table_page_reads_the_new_tables_ptes() -> None:
    m = Memory(table_pages=True)
    a, b = m.new_pagetable(), m.new_pagetable()
    m.map(a, 0, Pte(0x80))
    table = m.clear_table(a, 0)
    assert table is not None
    m.free_leaf_table(table)
    assert m.walk_table(table, 0) is None  # a freed page is no leaf table
    m.map(b, 0, Pte(0x90))
    assert m.leaf_table(b, 0) == table  # lowest free page: the same one
    assert m.walk_table(table, 0) == Pte(0x90)  # a stale pointer reaches b's page


def test_without_the_bound_memory_has_no_table_pages() -> None:
    m = Memory()
    root = m.new_pagetable()
    m.map(root, 0, Pte(0x80))
    assert m.leaf_tables == {} and m.table_pool == set() and len(m.allocated) == 1


# ------------------------------------------------------------ VT-d coverage
PSC_FL = PscEntry(did=2, pasid=0, region=0, table=0x7000, root=0x6000)
PSC_SL = PscEntry(did=2, pasid=None, region=0, table=0x7000, root=0x6000)


@pytest.mark.parametrize("desc,entry,covers", [
    (qi_desc_piotlb(2, 0, 0x0, 9, ih=0), PSC_FL, True),      # PSI, IH = 0, region met
    (qi_desc_piotlb(2, 0, 0x0, 9, ih=1), PSC_FL, False),     # IH = 1: preserved
    (qi_desc_piotlb(2, 0, 0x200000, 9, ih=0), PSC_FL, False),  # another 2 MiB
    (qi_desc_piotlb(2, 0, 0x1000, 0, ih=0), PSC_FL, True),   # one page of the region
    (qi_desc_piotlb(2, 1, 0x0, 9, ih=0), PSC_FL, False),     # another PASID
    (qi_desc_piotlb_all(2, 0), PSC_FL, True),                # all of the PASID
    (qi_desc_piotlb_all(2, 0), PSC_SL, False),               # never second-stage
    (QiIotlb(gran=IotlbGran.DSI, did=2), PSC_FL, True),       # by DID: all of it
    (QiIotlb(gran=IotlbGran.PSI, did=2, addr=0, am=9, ih=0), PSC_SL, True),
    (QiIotlb(gran=IotlbGran.PSI, did=2, addr=0, am=9, ih=1), PSC_SL, False),
    (QiIotlb(gran=IotlbGran.PSI, did=2, addr=0, am=9, ih=0), PSC_FL, False),  # first-stage: P_IOTLB
    (QiIotlb(gran=IotlbGran.GLOBAL), PSC_FL, True),
])
def test_vtd_descriptors_cover_paging_structure_entries_as_the_spec_says(
        desc: QiIotlb | QiEiotlb, entry: PscEntry, covers: bool) -> None:
    assert desc.covers(entry) is covers
    assert "psc" in desc.CACHES


# ------------------------------------------------------------ SMMUv3 coverage
WALK = smmuv3.WalkEntry(vmid=0, asid=2, region=0, table=0x8000, root=0x7000)


@pytest.mark.parametrize("cmd,covers", [
    (smmuv3.TLBI_NH_VA(asid=2, vmid=0, addr=0x3000, leaf=False), True),
    (smmuv3.TLBI_NH_VA(asid=2, vmid=0, addr=0x3000, leaf=True), False),  # Leaf = 1: kept
    (smmuv3.TLBI_NH_VA(asid=2, vmid=0, addr=0x200000, leaf=False), False),  # another 2 MiB
    (smmuv3.TLBI_NH_VA(asid=3, vmid=0, addr=0x3000, leaf=False), False),
    (smmuv3.TLBI_NH_ASID(asid=2, vmid=0), True),
    (smmuv3.TLBI_S12_VMALL(vmid=0), True),
    (smmuv3.TLBI_NSNH_ALL(), True),
    # range commands (TG = 1, 4 KiB): 2 pages from 0x1ff000 reach into region 1 only
    (smmuv3.TLBI_NH_VA(asid=2, vmid=0, addr=0x1ff000, leaf=False, num=1, tg=1), True),
    (smmuv3.TLBI_NH_VA(asid=2, vmid=0, addr=0x200000, leaf=False, num=1, tg=1), False),
    # 16 KiB granule (TG = 2): 4 x 16 KiB from 0x1f0000 ends at page 511, inside region 0
    (smmuv3.TLBI_NH_VA(asid=2, vmid=0, addr=0x1f0000, leaf=False, num=3, tg=2), True),
])
def test_smmu_commands_cover_walk_cache_entries_as_the_spec_says(cmd: smmuv3.Command, covers: bool) -> None:
    assert cmd.covers(WALK) is covers


WALK_R1 = smmuv3.WalkEntry(vmid=0, asid=2, region=1, table=0x8000, root=0x7000)
WALK_S2 = smmuv3.WalkEntry(vmid=0, asid=None, region=0, table=0x8000, root=0x7000)


@pytest.mark.parametrize("cmd,entry,covers", [
    (smmuv3.TLBI_NH_VA(asid=2, vmid=0, addr=0x1ff000, leaf=False, num=1, tg=1), WALK_R1, True),
    (smmuv3.TLBI_NH_VA(asid=2, vmid=0, addr=0x1f0000, leaf=False, num=3, tg=2), WALK_R1, False),
    # a stage-2 walk entry is no stage-1 entry: TLBI by ASID or VA leaves it, by VMID drops it
    (smmuv3.TLBI_NH_VA(asid=2, vmid=0, addr=0x0, leaf=False), WALK_S2, False),
    (smmuv3.TLBI_NH_ASID(asid=2, vmid=0), WALK_S2, False),
    (smmuv3.TLBI_S12_VMALL(vmid=0), WALK_S2, True),
])
def test_smmu_range_and_stage_2_walk_coverage(cmd: smmuv3.Command, entry: smmuv3.WalkEntry, covers: bool) -> None:
    assert cmd.covers(entry) is covers


# ------------------------------------------------------------ the drivers' sequences
def _mapped_and_walked(hw: str, design: str = "upstream", range_inv: bool = False) -> tuple[Kernel, int]:
    b = W.override("smmu_range_inv=1") if range_inv else W
    driver = make_driver(hw, b)
    driver.walk_caches = True
    k = Kernel(hw, b.device_list(), get_design(design), driver=driver)
    d = k.iommu_paging_domain_alloc("dev0")
    assert isinstance(d, int) and k.iommu_attach_device(d, "dev0") == 0
    assert k.iommu_map(d, 0x0, 0x80000000) == 0
    k.hw_fill("dev0", None, 0x0)
    assert len(k.driver.walk_cache_entries(k)) == 1
    k.driver.take_hw_log(k)
    return k, d


def test_vtd_2m_unmap_flushes_with_ih_0_then_frees_the_table() -> None:
    k, d = _mapped_and_walked("vtd")
    assert k.iommu_unmap(d, 0x0, SZ_2M) == SZ_2M
    log = k.driver.take_hw_log(k)
    assert log[:2] == ["QI_EIOTLB psi did=2 pasid=0 addr=0x0 am=9 ih=0",
                       "QI_DEV_IOTLB sid=0x0008 addr=0x0 pages=512"]
    assert len(k.driver.walk_cache_entries(k)) == 0 and k.mem.leaf_tables == {}
    assert BY_ID["walk-cache-live"].check_state(k, W) is None  # type: ignore[misc]


def test_vtd_one_page_unmap_keeps_the_table_and_ih_1() -> None:
    k, d = _mapped_and_walked("vtd")
    assert k.iommu_unmap(d, 0x0) == 0x1000
    assert k.driver.take_hw_log(k)[0] == "QI_EIOTLB psi did=2 pasid=0 addr=0x0 am=0 ih=1"
    assert len(k.driver.walk_cache_entries(k)) == 1  # the table lives: the pointer is fine
    assert BY_ID["walk-cache-live"].check_state(k, W) is None  # type: ignore[misc]


@pytest.mark.parametrize("range_inv,tlbis,first", [
    (False, 512, "CMD_TLBI_NH_VA asid=2 vmid=0 va=0x0 pages=1"),
    # __ffs(512) = 9, NUM = (512 >> 9) - 1 = 0; TTL 0 for a non-leaf range
    (True, 1, "CMD_TLBI_NH_VA asid=2 vmid=0 va=0x0 num=0 scale=9 tg=1 ttl=0 pages=512"),
])
def test_smmu_2m_unmap_flushes_the_walk_non_leaf_before_the_free(range_inv: bool, tlbis: int, first: str) -> None:
    k, d = _mapped_and_walked("smmuv3", range_inv=range_inv)
    assert k.iommu_unmap(d, 0x0, SZ_2M) == SZ_2M
    log = k.driver.take_hw_log(k)
    tlbi = [x for x in log if x.startswith("CMD_TLBI")]
    assert len(tlbi) == tlbis and tlbi[0] == first  # no " leaf": Leaf = 0
    assert "CMD_ATC_INV sid=0x8 addr=0x0 pages=512" in log
    assert len(k.driver.walk_cache_entries(k)) == 0


@pytest.mark.parametrize("hw,design", [("vtd", "vtd-tlb-sync-ih-with-freelist"),
                                       ("smmuv3", "smmu-flush-walk-leaf")])
def test_a_kept_pointer_to_the_freed_table_is_reported_with_its_entry(hw: str, design: str) -> None:
    k, d = _mapped_and_walked(hw, design)
    assert k.iommu_unmap(d, 0x0, SZ_2M) == SZ_2M
    [warning] = [w for w in k.warnings if w.startswith("freed table still cached: ")]
    v = BY_ID["walk-cache-live"].check_state(k, W)  # type: ignore[misc]
    assert v is not None and v.invariant == "walk-cache-live"
    assert "-> leaf table @" in v.message and v.message.endswith("is now a freed page")
    assert "frees leaf table page @" in warning


def test_sva_munmap_of_the_2m_frees_the_cpu_table_after_the_notifier() -> None:
    driver = make_driver("vtd", WS)
    driver.walk_caches = True
    k = Kernel("vtd", WS.device_list(), driver=driver)
    mm = k.mm_alloc()
    assert isinstance(k.iommu_sva_bind_device("dev0", mm), int)
    assert k.cpu_map(mm, 0x0, 0x80000000) == 0
    k.hw_fill("dev0", 1, 0x0)
    assert len(k.driver.walk_cache_entries(k)) == 1
    k.driver.take_hw_log(k)
    assert k.cpu_munmap(mm, 0x0, SZ_2M) == 0
    # the notifier gets the 2 MiB (since v6.15 even past x86's 33-page ceiling) and
    # flushes it with IH = 0: it cannot know whether the CPU freed a table
    assert k.driver.take_hw_log(k)[0] == "QI_EIOTLB psi did=1 pasid=1 addr=0x0 am=9 ih=0"
    assert len(k.driver.walk_cache_entries(k)) == 0 and not k.warnings


# ------------------------------------------------------------ x86 SVA's kernel half
WK = WORLDS["walkKva1"].to_bounds()


@pytest.mark.parametrize("hw,cached,log", [
    # e37d5a2d60a3: iommu_sva_invalidate_kva_range(PAGE_OFFSET, TLB_FLUSH_ALL) reaches VT-d
    # as cache_tag_flush_range(PAGE_OFFSET, ULONG_MAX - 1): AM 35 from 0xffff800000000000
    ("vtd", 1, ["QI_EIOTLB psi did=1 pasid=1 addr=0xffff800000000000 am=35 ih=0",
                "QI_DEV_EIOTLB sid=0x0008 pasid=1 addr=0xffff800000000000 pages=34359738368",
                "QI_IWD status_write data=2"]),
    ("smmuv3", 0, []),  # EPD1: TTBR1 is never walked, and arm64 calls nothing
])
def test_a_freed_kernel_table_is_flushed_from_every_sva_walk_first(hw: str, cached: int, log: list[str]) -> None:
    k = Config(UPSTREAM, hw, WK).build()
    mm = k.mm_alloc()
    assert isinstance(k.iommu_sva_bind_device("dev0", mm), int)
    k.driver.fill_kernel_half(k, k.devices["dev0"], 1, VMALLOC_START)
    assert len(k.driver.walk_cache_entries(k)) == cached
    k.driver.take_hw_log(k)
    k.vfree_kernel_pgtable()
    assert k.driver.take_hw_log(k) == log
    assert len(k.driver.walk_cache_entries(k)) == 0 and not k.warnings


def test_kernel_pgtable_needs_walk_caches() -> None:
    with pytest.raises(BoundsError, match="kernel_pgtable=1 needs walk_caches=1"):
        Bounds(kernel_pgtable=True)


# ------------------------------------------------------------ upstream holds
@pytest.mark.parametrize("world,hw,index", [
    ("walk1", "vtd", 0), ("walk1", "smmuv3", 1), ("walkSva1", "vtd", 0), ("walkSva1", "smmuv3", 1),
    ("walkKva1", "vtd", 0), pytest.param("walkKva1", "smmuv3", 1, marks=pytest.mark.deep),
])
def test_upstream_holds_in_the_walk_worlds(world: str, hw: str, index: int) -> None:
    _, out = explore(UPSTREAM, hw, WORLDS[world].to_bounds(), tuple(CATALOG), saturate=True)
    assert out.violation is None and out.complete
    assert out.states == WORLDS[world].states[index]
