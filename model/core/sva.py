"""iommu-sva.c: bind / unbind with one shared handle per (group, mm), the mm's
PASID (iommu_alloc_mm_data), and module unload with the notifier synchronize.

kernel-core-api.md section 4; seeds 004 (the bind handle and mm exit), 001 (one
PASID per mm) and 003 (mmu_notifier_put and module unload).
"""

from __future__ import annotations

import errno
from dataclasses import replace

from model.core.pasid import PasidAttach
from model.design import PasidAlloc, PasidFree
from model.objects import IOMMU_PASID_INVALID, Device, Domain, DomainType, ErrPtr, Handle


class SvaCore(PasidAttach):
    # ---------------------------------------------------------------------- SVA
    def iommu_sva_bind_device(self, dev: str, mm: int) -> int | ErrPtr:
        """iommu_sva_bind_device (kernel-core-api.md section 4): one handle per (group, mm)."""
        d = self.devices[dev]
        g = self.group_of(dev)
        if g is None:
            return ErrPtr(-errno.ENODEV)
        pasid = self._alloc_mm_data(d, mm)
        if pasid < 0:
            return ErrPtr(pasid)
        m = self.mms[mm]
        found = self.iommu_attach_handle_get(g.name, pasid, DomainType.SVA)
        if not isinstance(found, ErrPtr):
            h = self.live("handle", self.handles, found, "iommu_sva_bind_device")
            if h is None or h.domain is None:
                return ErrPtr(-errno.EBUSY)  # the kernel would follow the freed handle
            hdom = self.live("domain", self.domains, h.domain, "iommu_sva_bind_device")
            if hdom is None or hdom.mm != mm:
                return ErrPtr(-errno.EBUSY)
            self.handles[found] = replace(h, users=h.users + 1)
            return found
        if found.err != -errno.ENOENT:
            return found
        err = self.may_fail("kzalloc(iommu_sva)")  # the mm keeps its iommu_mm and PASID
        if err:
            return ErrPtr(err)
        hid = self._new_id()
        self.handles[hid] = Handle(hid, "sva", pasid=pasid)
        for existing in m.sva_domains:
            if self.iommu_attach_device_pasid(existing, dev, pasid, hid) == 0:
                dom = self.domains[existing]
                self.domains[existing] = replace(dom, users=dom.users + 1)
                self.handles[hid] = replace(self.handles[hid], users=1, dev=dev)
                return hid
        if not self.driver.supports_sva:
            del self.handles[hid]
            return ErrPtr(-errno.EOPNOTSUPP)
        err = self.may_fail(f"domain_alloc_sva({dev})")  # the driver's kzalloc: out_free_handle
        if err:
            del self.handles[hid]
            return ErrPtr(err)
        dom = Domain(self._new_id(), DomainType.SVA, self.driver.name, mm=mm, has_attach_dev=False)
        self.domains[dom.id] = dom
        if not self.design.has("core.sva_domain_no_mmgrab"):
            self.mmgrab(mm)  # iommu_sva_domain_alloc: the domain pins the mm struct
        ret = self.driver.domain_alloc_sva(self._k, d, dom)
        if ret:
            del self.domains[dom.id]
            self.mmdrop(mm)
            del self.handles[hid]
            return ErrPtr(ret)
        # Both drivers embed an mmu_notifier in the SVA domain and register it here
        # (intel_svm_domain_alloc, arm_smmu_sva_domain_alloc).
        self.mmu_notifier_register(mm, dom.id)
        ret = self.iommu_attach_device_pasid(dom.id, dev, pasid, hid)
        if ret:
            self.iommu_domain_free(dom.id)
            del self.handles[hid]
            return ErrPtr(ret)
        self.domains[dom.id] = replace(self.domains[dom.id], users=1)
        m = self.mms[mm]
        self.mms[mm] = replace(m, sva_domains=m.sva_domains + (dom.id,))
        self.handles[hid] = replace(self.handles[hid], users=1, dev=dev)
        return hid

    def _alloc_mm_data(self, d: Device, mm: int) -> int:
        """iommu_alloc_mm_data: the PASID this mm uses on d, or -errno.

        Upstream: one global PASID per mm for its whole life; a device whose
        max_pasids cannot hold it gets -EOVERFLOW. PER_RID gives the mm a PASID per
        device (the first one is what its IA32_PASID will carry); GLOBAL_FLAG takes
        the global value free on every RID.
        """
        m = self.mms[mm]
        alloc = self.design.pasid_alloc
        if alloc is PasidAlloc.PER_RID:
            p = self.mm_rid_pasid.get((d.name, mm))
            if p is None:
                p = self._alloc_rid(d.name, exclude_global=False) if d.max_pasids else IOMMU_PASID_INVALID
                if p == IOMMU_PASID_INVALID:
                    return -errno.ENOSPC
                self.mm_rid_pasid[(d.name, mm)] = p
                if m.pasid is None:
                    self.mms[mm] = replace(m, pasid=p)
            return p
        if m.pasid is not None:
            return m.pasid if m.pasid < d.max_pasids else -errno.EOVERFLOW
        err = self.may_fail(f"iommu_alloc_mm_data(mm{mm})")  # kzalloc(iommu_mm), before the PASID
        if err:
            return err
        if d.max_pasids == 0:
            return -errno.ENOSPC
        p = self._alloc_global(d.max_pasids, exclude_rids=alloc is PasidAlloc.GLOBAL_FLAG)
        if p == IOMMU_PASID_INVALID:
            return -errno.ENOSPC
        self.mms[mm] = replace(m, pasid=p)
        return p

    def iommu_sva_unbind_device(self, handle: int) -> None:
        """Drop one reference; the last one detaches the PASID and frees an unused domain.

        Unbind never frees the PASID: it lives as long as the mm (section 4).
        """
        h = self.handles.get(handle)
        if h is None or h.kind != "sva":
            self.warn("unbind_freed_handle", f"unbind of freed SVA handle {handle} (freed in {self.freed_where('handle', handle)})")
            return
        if h.users > 1:
            self.handles[handle] = replace(h, users=h.users - 1)
            return
        assert h.domain is not None and h.dev is not None and h.pasid is not None
        dom = self.live("domain", self.domains, h.domain, "iommu_sva_unbind_device")
        if dom is None:
            del self.handles[handle]
            self.mark_freed("handle", handle, "iommu_sva_unbind_device")
            return
        assert dom.mm is not None
        if self.design.has("core.sva_free_before_detach") and dom.users == 1:
            # broken variant: the last unbind frees the domain, then detaches its PASID
            self.mms[dom.mm] = replace(self.mms[dom.mm], sva_domains=tuple(
                x for x in self.mms[dom.mm].sva_domains if x != dom.id))
            self.iommu_domain_free(dom.id)
            self.iommu_detach_device_pasid(dom.id, h.dev, h.pasid)
            del self.handles[handle]
            self.mark_freed("handle", handle, "iommu_sva_unbind_device")
            return
        self.iommu_detach_device_pasid(dom.id, h.dev, h.pasid)
        dom = replace(dom, users=dom.users - 1)
        self.domains[dom.id] = dom
        mm = dom.mm
        assert mm is not None  # an SVA domain always has its mm
        if dom.users == 0:
            live_mm = self.live("mm", self.mms, mm, "iommu_sva_unbind_device")
            if live_mm is None:
                del self.handles[handle]
                self.mark_freed("handle", handle, "iommu_sva_unbind_device")
                return
            m = live_mm
            self.mms[mm] = m = replace(m, sva_domains=tuple(x for x in m.sva_domains if x != dom.id))
            if not m.sva_domains and self.design.pasid_free is PasidFree.LAST_UNBIND:
                self._free_mm_pasids(m)  # 2019: the PASID is refcounted by the bonds
            self.iommu_domain_free(dom.id)
        del self.handles[handle]
        self.mark_freed("handle", handle, "iommu_sva_unbind_device")

    def iommu_sva_get_pasid(self, handle: int) -> int:
        """mm_get_enqcmd_pasid(domain->mm) upstream; the bond's own PASID in per-RID designs."""
        h = self.handles.get(handle)
        if h is None or h.pasid is None:
            return IOMMU_PASID_INVALID
        return h.pasid

    def module_unload(self) -> int:
        """rmmod of the IOMMU driver: refused while it has bound devices' SVA domains in use.

        With mmu_notifier_put the module exit must call mmu_notifier_synchronize()
        (seed 003: "you need to have mmu notifier call on module unload").
        """
        if not self.module_loaded:
            return -errno.ENOENT
        if any(d.type is DomainType.SVA for d in self.domains.values() if self._domain_in_use(d.id)):
            return -errno.EBUSY
        if self.design.notifier_sync_at_unload:
            self.srcu_grace_period()  # mmu_notifier_synchronize()
        self.module_loaded = False
        return 0

