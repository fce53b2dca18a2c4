"""The process side: mm_struct lifetime (mm_users / mm_count), CPU page-table
changes, exit_mmap, ENQCMD's IA32_PASID, and the mmu notifiers drivers embed in
SVA domains (kernel/fork.c, mm/mmu_notifier.c, arch/x86 ENQCMD fix-up).

How the notifier of an SVA domain is freed, and that a deferred free_notifier
must not outlive the module, is seed 003's debate.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

from hwspec.memory import (KERNEL_DATA_PFN, PAGE_OFFSET, PAGE_SHIFT, SZ_2M, TABLE_SPAN_SHIFT,
                           VMALLOC_START, Prot, Pte)

from model.core.pasid_alloc import PasidAllocator
from model.design import PasidFree
from model.drivers.base import ULONG_MAX
from model.objects import Domain, Mm, Notifier, NotifierState

import errno


class MmLifetime(PasidAllocator):
    # --------------------------------------------------------------- processes
    def mm_alloc(self) -> int:
        """A new process with an empty address space (mm_users = mm_count = 1)."""
        mm = Mm(self._new_id(), pgd=self.mem.new_pagetable())
        self.mms[mm.id] = mm
        return mm.id

    def cpu_map(self, mm: int, iova: int, pa: int, prot: Prot = Prot.RW) -> int:
        """The process maps memory (mmap + fault-in): no secondary-TLB invalidation needed."""
        m = self.mms[mm]
        if m.exited:
            return -errno.EFAULT
        if self.mem.walk(m.pgd, iova >> PAGE_SHIFT) is not None:
            # MAP_FIXED over a live mapping zaps it first: the notifier runs.
            self.cpu_munmap(mm, iova)
        self.mem.map(m.pgd, iova >> PAGE_SHIFT, Pte(pa >> PAGE_SHIFT, prot))
        return 0

    def cpu_munmap(self, mm: int, iova: int, size: int = 1 << PAGE_SHIFT) -> int:
        """munmap: clear the CPU page table, then one mmu_notifier
        arch_invalidate_secondary_tlbs(mm, start, end) over the range of PTEs it cleared
        (the mmu_gather's range; `end` exclusive, as flush_tlb_mm_range passes it). The
        CPU may flush everything instead (x86 past tlb_single_page_flush_ceiling, 33
        pages), but since v6.15 that widening lives in get_flush_tlb_info and the notifier
        still gets the caller's range (before, flush_tlb_mm_range widened start and end
        first, and the IOMMU got (0, TLB_FLUSH_ALL) too)."""
        m = self.mms[mm]
        if m.exited:
            return -errno.EFAULT
        if self.mem.table_pages and size == SZ_2M and not iova & (SZ_2M - 1):
            return self._munmap_region(mm, iova)
        cleared = [pfn for pfn in range(iova >> PAGE_SHIFT, (iova + size) >> PAGE_SHIFT)
                   if self.mem.unmap(m.pgd, pfn) is not None]
        if not cleared:
            return 0
        start, end = cleared[0] << PAGE_SHIFT, (cleared[-1] + 1) << PAGE_SHIFT
        self._notify(mm, lambda dom: self.driver.invalidate_secondary_tlbs(self._k, dom, start, end))
        return 0

    def _munmap_region(self, mm: int, iova: int) -> int:
        """munmap of the one mapping that covers a whole 2 MiB region (bound walk_caches):
        zap every PTE, free_pgtables clears the PMD's pointer to the leaf table page, the
        mmu_gather flush (x86 flush_tlb_mm_range; freed_tables is not passed on) calls the
        secondary-TLB notifier over the 2 MiB, and only then is the table page freed
        (MMU_GATHER_RCU_TABLE_FREE: tlb_remove_table after tlb_flush_mmu_tlbonly). The
        drivers flush non-leaf for every notifier range for this reason (VT-d IH = 0,
        SMMUv3 leaf = false or by ASID)."""
        m = self.mms[mm]
        table = self.mem.clear_table(m.pgd, iova >> (PAGE_SHIFT + TABLE_SPAN_SHIFT))
        if table is None:
            return 0
        start, end = iova, iova + SZ_2M
        if self.design.has("core.munmap_free_table_before_flush"):
            self.free_table_page(table, "munmap (free_pgtables)")  # broken variant: before the flush
        self._notify(mm, lambda dom: self.driver.invalidate_secondary_tlbs(self._k, dom, start, end))
        if not self.design.has("core.munmap_free_table_before_flush"):
            self.free_table_page(table, "munmap (tlb_remove_table)")
        return 0

    def vmalloc(self) -> None:
        """vmalloc() maps a page into the vmalloc area of init_mm (bound kernel_pgtable): the
        first mapping under an empty 2 MiB allocates its leaf table page (boot made one)."""
        assert self.kernel_pgd is not None
        self.mem.map(self.kernel_pgd, VMALLOC_START >> PAGE_SHIFT, Pte(KERNEL_DATA_PFN))

    def vfree_kernel_pgtable(self) -> None:
        """vfree() leaves a kernel page-table page empty and the kernel frees it (bound
        kernel_pgtable). Every x86 CPU page table shares the kernel half, and the IOMMU
        walks it for SVA too, so since e37d5a2d60a3 (CVE-2025-71202) x86 defers the free
        (pagetable_free_kernel -> kernel_pgtable_work_func): iommu_sva_invalidate_kva_range
        (PAGE_OFFSET, TLB_FLUSH_ALL) calls every SVA mm's arch_invalidate_secondary_tlbs,
        then __pagetable_free. On a driver whose SVA walks never enter the kernel half
        (SMMUv3: EPD1) there is no IOMMU call."""
        assert self.kernel_pgd is not None
        table = self.mem.clear_table(self.kernel_pgd, VMALLOC_START >> (PAGE_SHIFT + TABLE_SPAN_SHIFT))
        if table is None:
            return
        if self.driver.sva_walks_kernel_half and not self.design.has("core.kva_free_without_iommu_flush"):
            for mm in sorted(self.mms):
                self._notify(mm, lambda dom: self.driver.invalidate_secondary_tlbs(
                    self._k, dom, PAGE_OFFSET, ULONG_MAX))
        self.free_table_page(table, "kernel_pgtable_work_func (__pagetable_free)")

    def _notify(self, mm: int, call: Callable[[Domain], None], release: bool = False) -> None:
        """Run a notifier callback for every notifier registered on mm."""
        for n in sorted(self.notifiers.values(), key=lambda n: n.id):
            if n.mm != mm or n.state is not NotifierState.REGISTERED:
                continue
            if release and n.released:
                continue
            dom = self.domains.get(n.domain)
            if dom is None:
                self.warn("notifier_freed_domain", f"mmu notifier {n.id} called into freed domain {n.domain} (freed in {self.freed_where('domain', n.domain)})")
                continue
            if not self.module_loaded:
                self.warn("notifier_after_unload", f"notifier {n.id} of domain {n.domain}")
            call(dom)
            if release:
                self.notifiers[n.id] = replace(n, released=True)

    def process_exit(self, mm: int) -> None:
        """Last mmput: exit_mmap runs the notifiers' ->release, frees the page table, then mmdrop."""
        m = self.mms[mm]
        if m.exited:
            return
        self.mms[mm] = m = replace(m, users=0, msr_pasid=None)
        self._notify(mm, lambda dom: self.driver.mm_release(self._k, dom), release=True)
        # exit_mmap: every page unmapped, then free_pgtables frees the table pages
        for table in self.mem.clear_pagetable(m.pgd):
            self.free_table_page(table, "exit_mmap (free_pgtables)")
        if self.design.pasid_free is PasidFree.MM_EXIT:
            # seed 004 alternative: the PASID goes back when the address space goes.
            self._free_mm_pasids(self.mms[mm])
        self.mmdrop(mm)

    def mmgrab(self, mm: int) -> None:
        m = self.mms[mm]
        self.mms[mm] = replace(m, count=m.count + 1)

    def mmdrop(self, mm: int) -> None:
        """mmdrop; the last one is __mmdrop, which frees the PASID (mm_pasid_drop, v5.18+)."""
        m = self.mms.get(mm)
        if m is None:
            self.warn("mmdrop_freed_mm", f"mmdrop of freed mm {mm} (freed in {self.freed_where('mm', mm)})")
            return
        if m.count > 1:
            self.mms[mm] = replace(m, count=m.count - 1)
            return
        if self.design.pasid_free is PasidFree.MMDROP and not self.design.has("core.mmdrop_keeps_pasid"):
            self._free_mm_pasids(m)
        del self.mms[mm]
        self.mark_freed("mm", mm, "__mmdrop")

    def enqcmd_pasid(self, mm: int) -> int | None:
        """The PASID an ENQCMD from this process carries: IA32_PASID, filled on the first #GP.

        try_fixup_enqcmd_gp: with a valid mm PASID and the MSR not yet active,
        write pasid | VALID and retry. Without a PASID the #GP stands (SIGSEGV): None.
        """
        m = self.mms.get(mm)
        if m is None or m.exited:
            return None
        if m.msr_pasid is None:
            if m.pasid is None:
                return None
            self.mms[mm] = m = replace(m, msr_pasid=m.pasid)
        return m.msr_pasid

    # ---------------------------------------------------------------- notifiers
    def mmu_notifier_register(self, mm: int, domain: int) -> int:
        """Drivers call this from domain_alloc_sva. Takes its own mmgrab (mm_count)."""
        nid = self._new_id()
        self.notifiers[nid] = Notifier(nid, mm, domain)
        self.mmgrab(mm)
        return nid

    def notifier_of(self, domain: int) -> Notifier | None:
        for n in self.notifiers.values():
            if n.domain == domain:
                return n
        return None

    def mmu_notifier_unregister(self, nid: int) -> None:
        """Synchronous: after return no callback runs (it waits for SRCU), then mmdrop."""
        n = self.live("notifier", self.notifiers, nid, "mmu_notifier_unregister")
        if n is None:
            return
        del self.notifiers[nid]
        self.mark_freed("notifier", nid, "mmu_notifier_unregister")
        if not n.released and n.mm in self.mms and not self.mms[n.mm].exited:
            # mmu_notifier_unregister calls ->release itself if exit_mmap has not run yet
            dom = self.domains.get(n.domain)
            if dom is not None:
                self.driver.mm_release(self._k, dom)
        self.mmdrop(n.mm)

    def mmu_notifier_put(self, nid: int) -> None:
        """Asynchronous: off the mm's list now; free_notifier + mmdrop after an SRCU grace period."""
        n = self.live("notifier", self.notifiers, nid, "mmu_notifier_put")
        if n is None:
            return
        self.notifiers[nid] = replace(n, state=NotifierState.PUT_PENDING)

    def srcu_grace_period(self) -> None:
        """The deferred free_notifier callbacks run (event: it may happen at any time)."""
        for n in sorted(self.notifiers.values(), key=lambda n: n.id):
            if n.state is NotifierState.PUT_PENDING:
                self._free_notifier(n)

    def _free_notifier(self, n: Notifier) -> None:
        if not self.module_loaded:
            self.warn("free_notifier_after_unload", f"free_notifier of domain {n.domain}")
        self.notifiers.pop(n.id)
        self.mark_freed("notifier", n.id, "free_notifier (after the SRCU grace period)")
        if self.domains.pop(n.domain, None) is not None:  # the driver's free_notifier kfree()s it
            self.mark_freed("domain", n.domain, "free_notifier (after the SRCU grace period)")
        self.mmdrop(n.mm)

    def dying_domains(self) -> frozenset[int]:
        """Domains whose iommu_domain_free ran but whose memory waits for free_notifier
        (mmu_notifier_put, seed 003): freed for every purpose but the kfree. Memoised per
        state: the leak and refcount invariants and the SMMUv3 driver all ask."""
        return self.memoized("dying", lambda: frozenset(
            n.domain for n in self.notifiers.values() if n.state is NotifierState.PUT_PENDING))

    def pending_free_notifiers(self) -> bool:
        return any(n.state is NotifierState.PUT_PENDING for n in self.notifiers.values())

