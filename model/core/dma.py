"""The DMA API (dma-iommu's map/unmap into the default domain), iommu_map/unmap, and
what the hardware does with a device's DMA now (hwspec translate and cache fill).
"""

from __future__ import annotations

import errno

from hwspec.memory import PAGE_SHIFT, PAGE_SIZE, SZ_2M, TABLE_SPAN_SHIFT, Prot, Pte
from hwspec.outcome import Access, Outcome

from model.core.sva import SvaCore
from model.objects import Domain


def iommu_pgsize(pgsize_bitmap: int, iova: int, paddr: int, size: int) -> int:
    """The page size iommu_pgsize (iommu.c) picks for the next chunk: the largest size of
    the bitmap no larger than `size` to which iova and paddr are both aligned. (The
    kernel also returns a count; the model's callers step one chunk at a time.)"""
    sizes = pgsize_bitmap & ((1 << size.bit_length()) - 1)  # sizes <= size
    if (iova | paddr) and sizes:
        sizes &= (((iova | paddr) & -(iova | paddr)) << 1) - 1  # sizes <= the alignment
    assert sizes, f"no page size of {pgsize_bitmap:#x} fits {size:#x} at {iova:#x}"
    return 1 << (sizes.bit_length() - 1)


class DmaApi(SvaCore):
    # ------------------------------------------------------------------- maps
    def iommu_map(self, domain: int, iova: int, pa: int, prot: Prot = Prot.RW,
                  size: int = PAGE_SIZE) -> int:
        """iommu_map: `size` bytes at `iova` to consecutive pages from `pa`, then the driver's
        iotlb_sync_map. Every address and the size must be aligned to the smallest page
        size of the domain's pgsize_bitmap (4 KiB): -EINVAL; a page already mapped: -EEXIST
        with nothing mapped (the page table refuses to overwrite a live PTE and iommu_map
        unmaps what it mapped before failing). __iommu_map maps in the chunks
        `iommu_pgsize` picks: a 2 MiB chunk (iova and pa 2 MiB-aligned, SZ_2M in the
        bitmap; bound superpages) is one 2 MiB leaf, the rest 4 KiB leaves."""
        dom = self.domains.get(domain)
        if dom is None or not dom.type.is_paging or dom.pgtable is None:
            return -errno.EINVAL
        if (iova | pa | size) & (PAGE_SIZE - 1) or size == 0:
            return -errno.EINVAL
        first, n = iova >> PAGE_SHIFT, size >> PAGE_SHIFT
        if any(self.mem.walk(dom.pgtable, first + i) is not None for i in range(n)):
            return -errno.EEXIST
        done = 0
        while done < size:
            pgsize = iommu_pgsize(dom.pgsize_bitmap, iova + done, pa + done, size - done)
            if pgsize == SZ_2M:
                self._map_block(dom, iova + done, pa + done, prot)
            else:
                self.mem.map(dom.pgtable, (iova + done) >> PAGE_SHIFT, Pte((pa + done) >> PAGE_SHIFT, prot))
            done += pgsize
        self.driver.iotlb_sync_map(self._k, dom, first)
        return 0

    def _map_block(self, dom: Domain, iova: int, pa: int, prot: Prot) -> None:
        """ops->map_pages with a 2 MiB pgsize over a region with no live leaf (iommu_map
        checked). A leaf table page still there (bound walk_caches: its leaves were
        unmapped one by one) is replaced by the block: the page table clears the table
        entry and frees the table after a flush (iommupt: clear_contig puts it on a
        gather that map_pages syncs, "flush any walk cache"; io-pgtable-arm:
        __arm_lpae_unmap of the table, tlb_flush_walk, then free), which is the driver's
        `unmap_table`."""
        assert dom.pgtable is not None
        region = iova >> (PAGE_SHIFT + TABLE_SPAN_SHIFT)
        table = self.mem.clear_table(dom.pgtable, region)
        if table is not None:
            self.driver.unmap_table(self._k, dom, iova, iova + SZ_2M - 1, table)
        self.mem.map_block(dom.pgtable, region, Pte(pa >> PAGE_SHIFT, prot))

    def iommu_unmap(self, domain: int, iova: int, size: int = PAGE_SIZE) -> int:
        """iommu_unmap: the bytes unmapped. __iommu_unmap clears page by page and stops at
        the first hole (a zero return of the page-table op ends its loop), each cleared page
        goes into the iotlb_gather (start, inclusive end), and iommu_iotlb_sync hands that
        range to the driver's iotlb_sync before the call returns. An iova or size not
        aligned to the smallest page size unmaps nothing (pr_err, 0). When nothing was
        unmapped the kernel still syncs the empty gather (start ULONG_MAX, end 0: SMMUv3
        returns on !pgsize; VT-d's reading is an open question, hw notes); the model
        leaves that sync out."""
        dom = self.domains.get(domain)
        if dom is None or not dom.type.is_paging or dom.pgtable is None:
            return 0
        if (iova | size) & (PAGE_SIZE - 1):
            return 0
        if self.mem.block_at(dom.pgtable, iova >> PAGE_SHIFT) is not None:
            return self._unmap_block(dom, iova, size)
        if self.mem.table_pages and size == SZ_2M and not iova & (SZ_2M - 1):
            return self._unmap_region(dom, iova)
        first, unmapped = iova >> PAGE_SHIFT, 0
        while unmapped < size >> PAGE_SHIFT:
            if self.mem.unmap(dom.pgtable, first + unmapped) is None:
                break
            unmapped += 1
        if not unmapped:
            return 0
        self.driver.iotlb_sync(self._k, dom, iova, iova + (unmapped << PAGE_SHIFT) - 1)
        return unmapped << PAGE_SHIFT

    def _unmap_block(self, dom: Domain, iova: int, size: int) -> int:
        """iommu_unmap that meets a 2 MiB leaf (bound superpages; a region holds either a
        block or 4 KiB leaves, and every ranged call lies in one region). __iommu_unmap
        calls unmap_pages with the size iommu_pgsize picks; the page table clears what
        it clears (the driver's `unmap_block`: the whole block, or nothing) and gathers
        the range it unmapped with the block's size as the granule (gather->pgsize), and
        iotlb_sync flushes that. Design `pt-gather-requested-size`: the gather takes the
        requested length instead (iommupt before ee6e69d03255, "Fix short gather if the
        unmap goes into a large mapping")."""
        got = self.driver.unmap_block(self._k, dom, iova, size)
        if not got:
            return 0
        gathered = size if self.design.has("pt.gather_requested_size") else got
        self.driver.iotlb_sync(self._k, dom, iova, iova + gathered - 1, pgsize=SZ_2M)
        return got

    def _unmap_region(self, dom: Domain, iova: int) -> int:
        """iommu_unmap of a 2 MiB-aligned 2 MiB (bound walk_caches): iommu_pgsize picks
        SZ_2M (every paging domain's pgsize_bitmap has SZ_2M; the region holds 4 KiB leaves), so
        the page table meets a table entry the unmap fully covers: it clears the pointer
        and every PTE under it and frees the leaf table page, holes or not, and returns
        the 2 MiB. That is io-pgtable-arm (__arm_lpae_unmap: tlb_flush_walk, then free,
        before the unmap returns) and VT-d's page table up to v6.18 (domain_unmap's
        dma_pte_clear_level puts the covered table on the gather's freelist, freed after
        iotlb_sync). v7.0's generic page table (iommupt __unmap_range) stops at the first
        empty PTE and frees a table only when the unmap clears all of it: with the model's
        few IOVA pages that is never, so its VT-d 2 MiB unmap is the v6.18 one (the flush
        that precedes a free, IH = 0, is the same in both). The driver's `unmap_table`
        does what its page table does. Nothing there (no table): 0, a hole."""
        assert dom.pgtable is not None
        table = self.mem.clear_table(dom.pgtable, iova >> (PAGE_SHIFT + TABLE_SPAN_SHIFT))
        if table is None:
            return 0
        self.driver.unmap_table(self._k, dom, iova, iova + SZ_2M - 1, table)
        return SZ_2M

    def iommu_flush_iotlb_all(self, domain: int) -> None:
        """iommu_flush_iotlb_all: ops->flush_iotlb_all (what dma-iommu's flush queue runs)."""
        dom = self.domains.get(domain)
        if dom is not None and dom.type.is_paging:
            self.driver.flush_iotlb_all(self._k, dom)

    def dma_map_page(self, dev: str, iova: int, pa: int) -> int:
        """The DMA API (dma-iommu) maps a page into dev's default domain.

        The model picks the IOVA the way a test would (the IOVA allocator is not
        modelled). Returns 0, or -EINVAL when dev is not on its default DMA domain.
        """
        g = self.group_of(dev)
        if g is None or g.default_domain is None or g.domain != g.default_domain:
            return -errno.EINVAL
        return self.iommu_map(g.default_domain, iova, pa)

    def dma_unmap_page(self, dev: str, iova: int) -> int:
        g = self.group_of(dev)
        if g is None or g.default_domain is None:
            return 0
        return self.iommu_unmap(g.default_domain, iova)

    # -------------------------------------------------------------- hardware
    def dma(self, dev: str, pasid: int | None, iova: int, access: Access = Access.READ) -> frozenset[Outcome]:
        """Every outcome the hardware may give this DMA now (hwspec translate)."""
        return self.memoized(
            ("dma", dev, pasid, iova, access),
            lambda: self.driver.translate(self._k, self.devices[dev], pasid, iova, access),
        )

    def hw_fill(self, dev: str, pasid: int | None, iova: int, access: Access = Access.READ) -> None:
        """Hardware caches what a walk for this request sees now."""
        self.driver.fill(self._k, self.devices[dev], pasid, iova, access)

