"""The DMA API (dma-iommu's map/unmap into the default domain), iommu_map/unmap, and
what the hardware does with a device's DMA now (hwspec translate and cache fill).
"""

from __future__ import annotations

import errno

from hwspec.memory import PAGE_SHIFT, Prot, Pte
from hwspec.outcome import Access, Outcome

from model.core.sva import SvaCore


class DmaApi(SvaCore):
    # ------------------------------------------------------------------- maps
    def iommu_map(self, domain: int, iova: int, pa: int, prot: Prot = Prot.RW) -> int:
        """iommu_map of one page into a paging domain, then the driver's iotlb_sync_map."""
        dom = self.domains.get(domain)
        if dom is None or not dom.type.is_paging or dom.pgtable is None:
            return -errno.EINVAL
        if (iova | pa) & ((1 << PAGE_SHIFT) - 1):
            return -errno.EINVAL
        if self.mem.walk(dom.pgtable, iova >> PAGE_SHIFT) is not None:
            return -errno.EEXIST
        self.mem.map(dom.pgtable, iova >> PAGE_SHIFT, Pte(pa >> PAGE_SHIFT, prot))
        self.driver.iotlb_sync_map(self._k, dom, iova >> PAGE_SHIFT)
        return 0

    def iommu_unmap(self, domain: int, iova: int, size: int = 1 << PAGE_SHIFT) -> int:
        """iommu_unmap: returns the bytes unmapped; the driver flushes before returning."""
        dom = self.domains.get(domain)
        if dom is None or not dom.type.is_paging or dom.pgtable is None:
            return 0
        if self.mem.unmap(dom.pgtable, iova >> PAGE_SHIFT) is None:
            return 0
        self.driver.unmap_flush(self._k, dom, iova >> PAGE_SHIFT)
        return size

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

