"""io-pgfault.c and the SVA fault handler: I/O page faults from PCIe PRI, from the
device's Page Request to the response, and the drain that fences them at PASID
teardown (issue 16 item 6; seed 004's fault handler).

The path, as in the kernel since the v6.11 attach-handle series (read in
io-pgfault.c, iommu-sva.c, intel/prq.c):

1. the device sends a Page Request for an attached PASID: the IOMMU appends it
   to its page request queue (`device_page_request`, an event; VT-d's PRQ);
2. the IOMMU driver's interrupt thread reads it (`prq_event_thread`) and calls
   `iommu_report_device_fault`: the core looks up the attach handle in the group's
   pasid_array; without one, or without a handler on its domain, or without the
   device's fault data (IOPF not enabled), the core answers INVALID itself and
   returns -EINVAL; if the iopf_group cannot be allocated it answers FAILURE;
   else the group (the request and a plain pointer to the handle) is queued on
   the iopf workqueue;
3. the workqueue runs the domain's handler (`iopf_work`): iommu_sva_iopf_handler
   takes mmget_not_zero(domain->mm), looks the address up (vma_lookup; the model's
   "vma" is a CPU mapping, cpu_map) and answers SUCCESS or INVALID
   (iopf_group_response -> ops->page_response);
4. at PASID teardown the IOMMU driver drains: it waits until its hardware queue
   holds no request for (device, PASID), then `iopf_queue_flush_dev` runs every
   queued group to completion, then (VT-d) a QI wait with PRQ_DRAIN; on the last
   IOPF user `iopf_queue_remove_device` answers INVALID to what is still queued
   for the device and frees it (9759ae2cee7c). Only then may the core drop the
   handle from pasid_array and free the handle and the domain: an iopf_group holds
   the handle by a plain pointer (the review of that series: "detach is the fence
   for page faults").

Not modelled: partial groups (LPIG = 0), Stop Markers, PRQ overflow, the iommufd
fault queue (user-space handlers), stall (SMMUv3's only IOPF mode: SMMUv3's PRI
queue is not wired to IOPF, arm_smmu_handle_ppr answers DENY, so no page request
reaches the SMMUv3 model: `Driver.page_requests`).
"""

from __future__ import annotations

import errno

from hwspec.memory import PAGE_SHIFT

from model.core.dma import DmaApi
from model.objects import DomainType, IopfGroup, PageRequest, PageResp


class Iopf(DmaApi):
    # ------------------------------------------------------------- the device
    def device_page_request(self, dev: str, pasid: int, iova: int) -> None:
        """The device sends a PRI Page Request (one page, LPIG = 1); the IOMMU queues it."""
        self.prq = self.prq + (PageRequest(dev, pasid, iova),)

    # ------------------------------------------------- the driver's IRQ thread
    def prq_event_thread(self, nomem: bool = False) -> None:
        """The page-request interrupt thread reads the oldest request and reports it.
        `nomem`: the iopf group's allocation fails (GFP_KERNEL in the interrupt thread,
        another task than any caller's: fail-nth cannot reach it, so the event says it;
        it spends one of the run's `faults`)."""
        req, self.prq = self.prq[0], self.prq[1:]
        if nomem:
            self.faults_left -= 1
            self.injected_at.append("kzalloc(iopf_group)")
        self.iommu_report_device_fault(req, nomem)

    def drain_page_requests(self, dev: str, pasid: int) -> None:
        """What a driver's PASID drain waits for (VT-d intel_iommu_drain_pasid_prq):
        the interrupt thread has read every request of (dev, PASID) still in the
        queue (and the ones before them), then iopf_queue_flush_dev."""
        while any(r.dev == dev and r.pasid == pasid for r in self.prq):
            self.prq_event_thread()
        self.iopf_queue_flush_dev(dev)

    # ----------------------------------------------------------------- core
    def iommu_report_device_fault(self, req: PageRequest, nomem: bool = False) -> int:
        """Find the handler, queue the group; answer at once where there is none."""
        g = self.group_of(req.dev)
        e = g.pasid_entry(req.pasid) if g is not None else None
        dom = self.domains.get(e.domain) if e is not None and e.handle in self.handles else None
        if not self.driver.iopf_enabled(self._k, self.devices[req.dev]) or e is None \
                or e.handle is None or dom is None or dom.type is not DomainType.SVA:
            # no fault data, no attach handle, or a domain without iopf_handler
            # (b58b133e680b: the core answers, or the device would wait forever)
            self.iommu_page_response(req, PageResp.INVALID)
            return -errno.EINVAL
        if nomem:
            self.iommu_page_response(req, PageResp.FAILURE)  # iopf_group allocation failed
            return 0
        self.iopf_groups = self.iopf_groups + (IopfGroup(req, e.handle),)
        return 0

    def iopf_work(self) -> None:
        """The iopf workqueue runs the oldest group's handler."""
        grp, self.iopf_groups = self.iopf_groups[0], self.iopf_groups[1:]
        self._iopf_handler(grp)

    def _iopf_handler(self, grp: IopfGroup) -> None:
        """iommu_sva_iopf_handler through the group's attach handle."""
        h = self.handles.get(grp.handle)
        if h is None:
            self.warn("iopf_freed_handle", f"the iopf handler for {grp.req.dev} pasid {grp.req.pasid} "
                      f"follows attach handle {grp.handle}, freed in {self.freed_where('handle', grp.handle)}")
            return
        dom = self.domains.get(h.domain) if h.domain is not None else None
        if dom is None or dom.id in self.dying_domains():
            self.warn("iopf_freed_domain", f"the iopf handler for {grp.req.dev} pasid {grp.req.pasid} "
                      f"runs on domain {h.domain}, freed in {self.freed_where('domain', h.domain or 0)}")
            return
        self.iommu_page_response(grp.req, self._sva_handle_mm(dom.mm, grp.req.iova))

    def _sva_handle_mm(self, mm: int | None, iova: int) -> PageResp:
        """iommu_sva_handle_mm: mmget_not_zero, vma_lookup, handle_mm_fault."""
        m = self.mms.get(mm) if mm is not None else None
        if m is None or m.exited:
            return PageResp.INVALID  # the process is gone: mmget_not_zero fails
        if self.mem.walk(m.pgd, iova >> PAGE_SHIFT) is None:
            return PageResp.INVALID  # no vma there (the model's vmas are its CPU mappings)
        return PageResp.SUCCESS  # the page is present; the device retries its translation

    def iommu_page_response(self, req: PageRequest, code: PageResp) -> None:
        """iopf_group_response -> ops->page_response (a PRG Response to the device)."""
        self.driver.page_response(self._k, self.devices[req.dev], req.pasid, code)

    def iopf_queue_flush_dev(self, dev: str) -> None:
        """flush_workqueue: every queued group (of any device: one workqueue) runs now."""
        while self.iopf_groups:
            self.iopf_work()

    def iopf_queue_remove_device(self, dev: str) -> None:
        """The last IOPF user of dev is gone: INVALID to every group still queued for it,
        which is freed (9759ae2cee7c); the device's fault data goes."""
        for grp in [g for g in self.iopf_groups if g.req.dev == dev]:
            self.iommu_page_response(grp.req, PageResp.INVALID)
        self.iopf_groups = tuple(g for g in self.iopf_groups if g.req.dev != dev)
