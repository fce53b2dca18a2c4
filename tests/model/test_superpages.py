"""2 MiB leaves and per-domain pgsize_bitmap (#17 item 1, bound superpages).

A 2 MiB map is one leaf (a VT-d superpage, an SMMUv3 level-2 block) where the domain's
pgsize_bitmap has SZ_2M; caches remember the leaf's size, and the invalidations are read
as the specifications say a large entry is removed (VT-d: a PSI must carry AM 9; SMMUv3:
any address inside the block, but only a TTL naming level 2 or none). Unmaps inside a
leaf follow the drivers' page tables: VT-d's generic page table clears the whole leaf at
its base and refuses a start inside it; io-pgtable-arm refuses any partial unmap with a
WARN_ONCE. Worked values: the facts report in the drivers (cache.c
calculate_psi_aligned_address, arm-smmu-v3.c __arm_smmu_tlb_inv_range).
"""

from __future__ import annotations

import dataclasses
import errno

import pytest

from checker.explore import explore
from checker.worlds import WORLDS
from hwspec import smmuv3
from hwspec.memory import SZ_1G, SZ_2M, SZ_4K, Memory, Prot, Pte
from hwspec.vtd import EiotlbGran, IotlbEntry, IotlbGran, QiEiotlb, QiIotlb
from invariants.catalog import BY_ID, CATALOG
from model.bounds import Bounds, BoundsError
from model.core import Kernel
from model.core.dma import iommu_pgsize
from model.design import UPSTREAM
from model.designs import get_design
from model.drivers import make_driver
from model.warn import WarnClass

B = WORLDS["super1"].to_bounds()
PA = 0x8000_0000


# ------------------------------------------------------------ memory and iommu_pgsize
def test_a_block_maps_every_page_of_its_region_with_its_size() -> None:
    m = Memory()
    root = m.new_pagetable()
    m.map_block(root, 0, Pte(PA >> 12, Prot.READ))
    assert m.walk(root, 0x1FF) == Pte((PA >> 12) + 0x1FF, Prot.READ, True)
    assert m.walk(root, 0x200) is None  # the next region is not the block's
    assert m.block_at(root, 7) == Pte(PA >> 12, Prot.READ, True)
    before = m.key()
    assert m.unmap_block(root, 0) is not None and m.walk(root, 0) is None
    assert m.key() != before
    m.map_block(root, 0, Pte(PA >> 12))
    assert "0x0+2M->0x80000000 (2M block)" in next(m.dump_pagetables())
    assert m.clear_pagetable(root) == [] and m.blocks == {}


@pytest.mark.parametrize("bitmap,iova,pa,size,pgsize", [
    (SZ_4K | SZ_2M, 0x0, PA, SZ_2M, SZ_2M),                   # both aligned, long enough
    (SZ_4K | SZ_2M, 0x1000, PA, SZ_2M, SZ_4K),                # iova not 2 MiB aligned
    (SZ_4K | SZ_2M, 0x0, PA + 0x1000, SZ_2M, SZ_4K),          # pa not 2 MiB aligned
    (SZ_4K | SZ_2M, 0x0, PA, SZ_2M - SZ_4K, SZ_4K),           # shorter than 2 MiB
    (SZ_4K, 0x0, PA, SZ_2M, SZ_4K),                           # not in the bitmap
    (SZ_4K | SZ_2M | SZ_1G, 0x0, 0x0, 2 * SZ_1G, SZ_1G),      # the largest that fits
])
def test_iommu_pgsize_picks_the_largest_size_that_fits(bitmap: int, iova: int, pa: int, size: int,
                                                       pgsize: int) -> None:
    assert iommu_pgsize(bitmap, iova, pa, size) == pgsize


# ------------------------------------------------------------ how the hardware reads it
BLOCK_ENTRY = IotlbEntry(did=2, pasid=None, iova_pfn=1, pfn=(PA >> 12) + 1, block=True)
PAGE_ENTRY = IotlbEntry(did=2, pasid=None, iova_pfn=1, pfn=(PA >> 12) + 1)


@pytest.mark.parametrize("desc,entry,covers", [
    (QiIotlb(IotlbGran.PSI, did=2, addr=1, am=0), PAGE_ENTRY, True),
    # a mask smaller than the superpage: not guaranteed (spec 6.5.2.3), kept
    (QiIotlb(IotlbGran.PSI, did=2, addr=1, am=0), BLOCK_ENTRY, False),
    (QiIotlb(IotlbGran.PSI, did=2, addr=0, am=8), BLOCK_ENTRY, False),
    (QiIotlb(IotlbGran.PSI, did=2, addr=0, am=9), BLOCK_ENTRY, True),
    (QiIotlb(IotlbGran.PSI, did=2, addr=0, am=10), BLOCK_ENTRY, True),
    (QiIotlb(IotlbGran.DSI, did=2), BLOCK_ENTRY, True),
    (QiEiotlb(EiotlbGran.PSI_PASID, did=2, pasid=0, addr=0, am=0),
     dataclasses.replace(BLOCK_ENTRY, pasid=0), False),
    (QiEiotlb(EiotlbGran.PSI_PASID, did=2, pasid=0, addr=0, am=9),
     dataclasses.replace(BLOCK_ENTRY, pasid=0), True),
])
def test_vtd_psi_removes_a_superpage_only_with_its_mask(desc: QiIotlb | QiEiotlb, entry: IotlbEntry,
                                                        covers: bool) -> None:
    assert desc.covers(entry) is covers


TLB_BLOCK = smmuv3.TlbEntry(vmid=0, asid=2, iova_pfn=0, pfn=PA >> 12, block=True)
TLB_PAGE = smmuv3.TlbEntry(vmid=0, asid=2, iova_pfn=0, pfn=PA >> 12)
WALK = smmuv3.WalkEntry(vmid=0, asid=2, region=0, table=0x4000_0000, root=0x1000)


def _range(ttl: int, leaf: bool = True) -> smmuv3.TLBI_NH_VA:
    return smmuv3.TLBI_NH_VA(asid=2, vmid=0, addr=0, leaf=leaf, num=0, scale=9, ttl=ttl, tg=1)


@pytest.mark.parametrize("cmd,entry,covers", [
    # TG = 0: any address inside the block names the block (IHI0070 4.4.1)
    (smmuv3.TLBI_NH_VA(asid=2, vmid=0, addr=0x1FF000), TLB_BLOCK, True),
    (smmuv3.TLBI_NH_VA(asid=2, vmid=0, addr=0x1000), TLB_PAGE, False),
    # TTL names the level the entry was inserted from (4.4.1.2): 2 the block, 3 the page
    (_range(ttl=2), TLB_BLOCK, True),
    (_range(ttl=3), TLB_BLOCK, False),
    (_range(ttl=3), TLB_PAGE, True),
    (_range(ttl=2), TLB_PAGE, False),
    (_range(ttl=0), TLB_BLOCK, True),
    # the walk cache's level-2 table descriptor: Leaf = 0 drops table descriptors "at levels
    # between the start of the walk and the level before the last level given by TTL"
    (_range(ttl=3, leaf=False), WALK, True),
    (_range(ttl=2, leaf=False), WALK, False),
    (_range(ttl=0, leaf=False), WALK, True),
    (_range(ttl=3, leaf=True), WALK, False),
    (smmuv3.TLBI_NH_ASID(asid=2, vmid=0), TLB_BLOCK, True),
])
def test_smmu_tlbi_removes_a_block_by_any_address_and_the_ttl_it_names(
        cmd: smmuv3.Command, entry: smmuv3.CacheEntry, covers: bool) -> None:
    assert cmd.covers(entry) is covers


# ------------------------------------------------------------ the drivers' sequences
def _blocked(hw: str, design: str = "upstream", bounds: Bounds = B) -> tuple[Kernel, int]:
    """A domain at dev0's RID with a 2 MiB map at IOVA 0 and both its pages cached."""
    k = Kernel(hw, bounds.device_list(), get_design(design), driver=make_driver(hw, bounds))
    d = k.iommu_paging_domain_alloc("dev0")
    assert isinstance(d, int) and k.iommu_attach_device(d, "dev0") == 0
    assert k.iommu_map(d, 0x0, PA, size=SZ_2M) == 0
    k.hw_fill("dev0", None, 0x0)
    k.hw_fill("dev0", None, 0x1000)
    k.driver.take_hw_log(k)
    return k, d


@pytest.mark.parametrize("hw,bitmap", [("vtd", SZ_4K | SZ_2M), ("smmuv3", SZ_4K | SZ_2M | SZ_1G)])
def test_a_2m_map_is_one_leaf_cached_with_its_size(hw: str, bitmap: int) -> None:
    k, d = _blocked(hw)
    dom = k.domains[d]
    assert dom.pgsize_bitmap == bitmap
    assert dom.pgtable is not None and k.mem.block_at(dom.pgtable, 1) == Pte(PA >> 12, Prot.RW, True)
    assert dom.pgtable is not None and k.mem.pagetables[dom.pgtable] == {}
    cached = k.driver.cached_translations(k)
    assert sorted(p for _, p, _, _ in cached) == [0, 1]
    assert all("(of a 2M" in text for *_, text in cached)


def test_without_2m_in_the_bitmap_a_2m_map_is_512_pages() -> None:
    k = Kernel("vtd", B.device_list(), UPSTREAM, driver=make_driver("vtd", B))
    d = k.iommu_paging_domain_alloc("dev0")
    assert isinstance(d, int)
    k.domains[d] = dataclasses.replace(k.domains[d], pgsize_bitmap=SZ_4K)
    assert k.iommu_map(d, 0x0, PA, size=SZ_2M) == 0
    root = k.domains[d].pgtable
    assert root is not None and k.mem.blocks == {} and len(k.mem.pagetables[root]) == 512
    assert k.mem.walk(root, 0x1FF) == Pte((PA >> 12) + 0x1FF)


@pytest.mark.parametrize("hw", ["vtd", "smmuv3"])
def test_a_2m_map_over_a_mapped_page_is_refused_and_changes_nothing(hw: str) -> None:
    k = Kernel(hw, B.device_list(), UPSTREAM, driver=make_driver(hw, B))
    d = k.iommu_paging_domain_alloc("dev0")
    assert isinstance(d, int) and k.iommu_map(d, 0x1000, PA) == 0
    before = k.mem.key()
    assert k.iommu_map(d, 0x0, PA, size=SZ_2M) == -errno.EEXIST
    assert k.mem.key() == before


def test_vtd_unmap_at_the_base_clears_the_superpage_and_flushes_am_9() -> None:
    k, d = _blocked("vtd")
    assert k.iommu_unmap(d, 0x0) == SZ_2M  # one page asked, the whole leaf cleared
    assert k.driver.take_hw_log(k)[:2] == ["QI_EIOTLB psi did=2 pasid=0 addr=0x0 am=9 ih=1",
                                           "QI_DEV_IOTLB sid=0x0008 addr=0x0 pages=512"]
    assert k.driver.cached_translations(k) == [] and k.mem.blocks == {}


def test_vtd_unmap_inside_the_superpage_is_refused() -> None:
    k, d = _blocked("vtd")
    before = k.mem.key()
    assert k.iommu_unmap(d, 0x1000) == 0
    assert k.mem.key() == before and k.driver.take_hw_log(k) == [] and k.warnings == []


def test_vtd_short_gather_leaves_the_superpage_cached() -> None:
    k, d = _blocked("vtd", "pt-gather-requested-size")
    assert k.iommu_unmap(d, 0x0) == SZ_2M
    assert k.driver.take_hw_log(k)[0] == "QI_EIOTLB psi did=2 pasid=0 addr=0x0 am=0 ih=1"
    assert len(k.driver.cached_translations(k)) == 2  # AM 0 cannot remove a superpage
    v = BY_ID["no-stale-translation"].check_state(k, B)  # type: ignore[misc]
    assert v is not None and "(of a 2M superpage)" in " ".join(v.evidence)


def test_smmu_partial_unmap_warns_as_misuse_and_unmaps_nothing() -> None:
    k, d = _blocked("smmuv3")
    before = k.mem.key()
    assert k.iommu_unmap(d, 0x0) == 0
    [w] = k.warnings
    assert w.site.id == "smmu_partial_block_unmap" and w.site.klass is WarnClass.MISUSE
    assert str(w) == "__arm_lpae_unmap: unmap of 0x1000 at 0x0 inside the 2M block at 0x0"
    assert k.mem.key() == before and k.driver.take_hw_log(k) == []
    assert BY_ID["no-kernel-warn"].check_step is not None


@pytest.mark.parametrize("world,tlbi", [
    ("super1", "CMD_TLBI_NH_VA asid=2 vmid=0 va=0x0 pages=1 leaf"),  # one granule step of 2 MiB
    # TG = 1 (__ffs(pgsize_bitmap) = 12), SCALE = __ffs(512) = 9, NUM = 0, TTL 2 (the block)
    ("superR1", "CMD_TLBI_NH_VA asid=2 vmid=0 va=0x0 num=0 scale=9 tg=1 ttl=2 pages=512 leaf"),
])
def test_smmu_2m_unmap_invalidates_with_the_block_granule(world: str, tlbi: str) -> None:
    k, d = _blocked("smmuv3", bounds=WORLDS[world].to_bounds())
    assert k.iommu_unmap(d, 0x0, SZ_2M) == SZ_2M
    assert k.driver.take_hw_log(k) == [tlbi, "CMD_SYNC", "CMD_ATC_INV sid=0x8 addr=0x0 pages=512",
                                       "CMD_SYNC"]
    assert k.driver.cached_translations(k) == []


def test_smmu_ttl_of_the_smallest_page_misses_the_block() -> None:
    k, d = _blocked("smmuv3", "smmu-ttl-from-leaf-size", WORLDS["superR1"].to_bounds())
    assert k.iommu_unmap(d, 0x0, SZ_2M) == SZ_2M
    assert "ttl=3" in k.driver.take_hw_log(k)[0]
    assert len(k.driver.cached_translations(k)) == 2


@pytest.mark.parametrize("hw,first", [
    ("vtd", "QI_EIOTLB psi did=2 pasid=0 addr=0x0 am=9 ih=0"),  # IH 0: the table is freed
    ("smmuv3", "CMD_TLBI_NH_VA asid=2 vmid=0 va=0x0 pages=1"),   # tlb_flush_walk: Leaf = 0
])
def test_a_block_replaces_an_emptied_leaf_table_after_its_flush(hw: str, first: str) -> None:
    b = WORLDS["walk1"].to_bounds().override("superpages=1")
    driver = make_driver(hw, b)
    driver.walk_caches = True  # as the world sets it before boot (Config)
    k = Kernel(hw, b.device_list(), UPSTREAM, driver=driver)
    d = k.iommu_paging_domain_alloc("dev0")
    assert isinstance(d, int) and k.iommu_attach_device(d, "dev0") == 0
    assert k.iommu_map(d, 0x0, PA) == 0
    k.hw_fill("dev0", None, 0x0)
    assert k.iommu_unmap(d, 0x0) == SZ_4K and len(k.driver.walk_cache_entries(k)) == 1
    k.driver.take_hw_log(k)
    assert k.iommu_map(d, 0x0, PA, size=SZ_2M) == 0
    assert k.driver.take_hw_log(k)[0] == first
    assert k.mem.leaf_tables == {} and k.mem.table_pool == set() and k.warnings == []
    assert len(k.driver.walk_cache_entries(k)) == 0
    assert BY_ID["walk-cache-live"].check_state(k, b) is None  # type: ignore[misc]


# ------------------------------------------------------------ bounds
@pytest.mark.parametrize("text,message", [
    ("superpages=1,nesting=1", "bounds superpages=1 and nesting=1 do not mix"),
    ("superpages=1,phys_pages=2", "bound superpages=1 needs phys_pages=1 (got 2)"),
    ("superpages=2", "bound superpages=2 is a flag: 0 or 1"),
])
def test_impossible_superpage_bounds_are_refused(text: str, message: str) -> None:
    with pytest.raises(BoundsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Bounds().override("phys_pages=1," + text if "phys_pages" not in text else text)


# ------------------------------------------------------------ upstream holds
@pytest.mark.parametrize("world,hw,index", [
    ("super1", "vtd", 0), ("super1", "smmuv3", 1), ("superR1", "smmuv3", 1), ("walkR1", "smmuv3", 1),
    ("superWalk1", "vtd", 0), ("superWalk1", "smmuv3", 1),
])
def test_upstream_holds_in_the_superpage_worlds(world: str, hw: str, index: int) -> None:
    _, out = explore(UPSTREAM, hw, WORLDS[world].to_bounds(), tuple(CATALOG), saturate=True)
    assert out.violation is None and out.complete
    assert out.states == WORLDS[world].states[index]
