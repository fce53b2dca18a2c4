"""The PASID allocators: the global IDA (drivers/iommu/ioasid.c's successor in iommu.c),
per-RID spaces and the mm's PASID drop (seed 001's debate).

Upstream allocates every PASID, kernel users' and SVA's, from one system-wide
IDA (v6.6+, `iommu_alloc_global_pasid`); the per-RID and flagged-global designs
of seed 001 are the alternatives. `_free_mm_pasids` is mm_pasid_drop.
"""

from __future__ import annotations

from dataclasses import replace

from model.core.base import KernelBase
from model.design import PasidAlloc
from model.objects import IOMMU_PASID_INVALID, Mm


class PasidAllocator(KernelBase):
    # -------------------------------------------------- global PASID space
    def iommu_alloc_global_pasid(self, dev: str) -> int:
        """A kernel PASID user's allocation for dev.

        Upstream: the lowest free id in [1, max_pasids - 1] of the one system-wide
        IDA (v6.6+). Per-RID designs (seed 001) allocate from dev's own space;
        GLOBAL_FLAG keeps the values of the global (ENQCMD) space out of it.
        """
        d = self.devices[dev]
        if d.max_pasids == 0:
            return IOMMU_PASID_INVALID
        if self.design.pasid_alloc is PasidAlloc.GLOBAL:
            p = self._alloc_global(d.max_pasids)
            owner: str | None = None
        else:
            p = self._alloc_rid(dev, exclude_global=self.design.pasid_alloc is PasidAlloc.GLOBAL_FLAG)
            owner = dev
        if p != IOMMU_PASID_INVALID:
            self.kernel_pasids = self.kernel_pasids | {(owner, p)}
        return p

    def _alloc_global(self, limit: int, exclude_rids: bool = False) -> int:
        taken = set(self.global_pasids)
        if exclude_rids:  # "must work for all RIDs": free on every device too
            for used in self.rid_pasids.values():
                taken |= used
        for p in range(1, limit):
            if p not in taken:
                self.global_pasids = self.global_pasids | {p}
                return p
        return IOMMU_PASID_INVALID

    def _alloc_rid(self, dev: str, exclude_global: bool) -> int:
        used = set(self.rid_pasids.get(dev, frozenset()))
        if exclude_global:
            used |= self.global_pasids
        for p in range(1, self.devices[dev].max_pasids):
            if p not in used:
                self.rid_pasids[dev] = self.rid_pasids.get(dev, frozenset()) | {p}
                return p
        return IOMMU_PASID_INVALID

    def allocated_pasids(self) -> frozenset[int]:
        """Every PASID value some allocator considers in use."""
        out = set(self.global_pasids)
        for used in self.rid_pasids.values():
            out |= used
        return frozenset(out)

    def kernel_pasid_ok(self, dev: str, pasid: int) -> bool:
        """A kernel user allocated `pasid` in the space that serves dev."""
        return (None, pasid) in self.kernel_pasids or (dev, pasid) in self.kernel_pasids

    def iommu_free_global_pasid(self, pasid: int) -> None:
        """Free a kernel user's PASID (from every per-RID space that has it, in per-RID designs)."""
        if pasid == IOMMU_PASID_INVALID:
            self.warn("free_invalid_pasid", "IOMMU_PASID_INVALID")
            return
        mine = {dp for dp in self.kernel_pasids if dp[1] == pasid}
        self.kernel_pasids = self.kernel_pasids - mine
        for dev, p in mine:
            if dev is None:
                self.global_pasids = self.global_pasids - {p}
            else:
                self.rid_pasids[dev] = self.rid_pasids.get(dev, frozenset()) - {p}
        if not mine and self.design.pasid_alloc is PasidAlloc.GLOBAL:
            self.global_pasids = self.global_pasids - {pasid}  # the IDA frees what it is given

    def _free_mm_pasids(self, m: Mm) -> None:
        """mm_pasid_drop: the mm's PASID(s) go back to the allocator."""
        if m.pasid is not None and self.design.pasid_alloc is not PasidAlloc.PER_RID:
            self.global_pasids = self.global_pasids - {m.pasid}
        for (dev, mm_id), pasid in list(self.mm_rid_pasid.items()):
            if mm_id == m.id:
                del self.mm_rid_pasid[(dev, mm_id)]
                self.rid_pasids[dev] = self.rid_pasids.get(dev, frozenset()) - {pasid}
        if m.id in self.mms:
            self.mms[m.id] = replace(self.mms[m.id], pasid=None)

