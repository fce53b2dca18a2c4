"""iommu.c's PASID half: attach handles, set_dev_pasid over a group with rollback,
PASID detach through the blocked domain, replace, and the 2018 aux-domain API.

kernel-core-api.md section 3 (attach / detach / replace, in kernel check order);
seed 000 (detach as set_dev_pasid(blocking), with or without the old domain) and
seed 002 (aux domains).
"""

from __future__ import annotations

import errno
from dataclasses import replace

from model.core.base import BLOCKED_DOMAIN_ID
from model.core.iommu import IommuCore
from model.objects import IOMMU_NO_PASID, IOMMU_PASID_INVALID, Device, Domain, DomainType, ErrPtr, Group, Handle, PasidEntry


class PasidAttach(IommuCore):
    # -------------------------------------------------------- PASID attachment
    def new_attach_handle(self) -> int:
        """A fresh struct iommu_attach_handle owned by the caller (iommufd)."""
        h = Handle(self._new_id(), "attach")
        self.handles[h.id] = h
        return h.id

    def _pasid_devices(self, g: Group) -> list[Device]:
        return [self.devices[n] for n in g.devices if self.devices[n].max_pasids > 0]

    def _set_group_pasid(self, dom: Domain, g: Group, pasid: int, old: Domain | None) -> int:
        """__iommu_set_group_pasid: set_dev_pasid on every PASID-capable device; roll back on error."""
        done: list[Device] = []
        for dev in self._pasid_devices(g):
            # the driver's set_dev_pasid allocates first (VT-d dev_pasid and cache tags,
            # SMMUv3 master_domain): -ENOMEM before it changes anything
            ret = self._take_injected("set_dev_pasid") or self.may_fail(f"set_dev_pasid({dev.name})")
            if not ret:
                ret = self.driver.set_dev_pasid(self._k, dom, dev, pasid, old)
            if ret == 0:
                done.append(dev)
                continue
            if self.design.has("core.set_group_pasid_no_rollback"):
                return ret  # broken variant: the devices already switched stay switched
            for d in done:
                if old is None:
                    self._remove_dev_pasid(d, pasid, dom)
                elif self.driver.set_dev_pasid(self._k, old, d, pasid, dom):
                    self.warn("pasid_restore_failed", f"{d.name}: restoring pasid {pasid} to domain {old.id} failed")
                    self._remove_dev_pasid(d, pasid, dom)
            return ret
        return 0

    def _remove_dev_pasid(self, dev: Device, pasid: int, dom: Domain) -> None:
        """iommu_remove_dev_pasid: the blocked domain's set_dev_pasid; must not fail.

        Seed 000's set_dev_pasid(blocking) proposal did not pass the old domain:
        `Design.detach_passes_old` = False models it (the driver gets old=None).
        """
        blocked = self.domains[BLOCKED_DOMAIN_ID]
        old = dom if self.design.detach_passes_old else None
        if self.driver.set_dev_pasid(self._k, blocked, dev, pasid, old):
            self.warn("pasid_block_failed", f"{dev.name}: blocking pasid {pasid} failed")

    def iommu_attach_device_pasid(
        self, domain: int, dev: str, pasid: int, handle: int | None = None
    ) -> int:
        """iommu_attach_device_pasid (kernel-core-api.md section 3, checks in kernel order)."""
        g = self.group_of(dev)
        if g is None:
            return -errno.ENODEV
        dom = self.domains.get(domain)
        if dom is None:
            self.warn("pasid_attach_freed_domain", f"attach of freed domain {domain} (freed in {self.freed_where('domain', domain)})")
            return -errno.EINVAL
        if not dom.has_set_dev_pasid or not self.domains[BLOCKED_DOMAIN_ID].has_set_dev_pasid:
            return -errno.EOPNOTSUPP
        if not self._compatible(dom) or pasid == IOMMU_NO_PASID:
            return -errno.EINVAL
        if self.recovering(g):
            return -errno.EBUSY  # a device of the group is being reset (model/core/reset.py)
        for d in self._pasid_devices(g):
            if pasid >= d.max_pasids:
                return -errno.EINVAL
        if g.pasid_entry(pasid) is not None:
            return -errno.EBUSY
        ret = self.may_fail("xa_insert(pasid_array)")  # the XA_ZERO_ENTRY reservation
        if ret:
            return ret
        ret = self._set_group_pasid(dom, g, pasid, None)
        if ret:
            return ret  # xa_release: the reservation goes, nothing was stored
        g = self.groups[g.name]
        self._set_group(g, pasid_array=g.with_pasid(pasid, PasidEntry(domain, handle)))
        if handle is not None:
            self.handles[handle] = replace(self.handles[handle], domain=domain)
        return 0

    def iommu_detach_device_pasid(self, domain: int, dev: str, pasid: int) -> None:
        """No NULL-group check and no check that `domain` is the attached one."""
        g = self.group_of(dev)
        if g is None:
            self.warn("pasid_detach_no_group", f"iommu_detach_device_pasid on {dev}, which has no group")
            return
        dom = self.domains.get(domain)
        if dom is None:
            self.warn("pasid_detach_freed_domain", f"detach of freed domain {domain} (freed in {self.freed_where('domain', domain)})")
            return
        for d in self._pasid_devices(g):
            if d.name in self.resetting:
                continue  # blocked for its reset already; _done will not restore it (fc3523b1)
            self._remove_dev_pasid(d, pasid, dom)
        g = self.groups[g.name]
        self._set_group(g, pasid_array=g.with_pasid(pasid, None))

    def iommu_replace_device_pasid(self, domain: int, dev: str, pasid: int, handle: int | None) -> int:
        """iommu_replace_device_pasid (kernel-core-api.md section 3)."""
        g = self.group_of(dev)
        if g is None:
            return -errno.ENODEV
        dom = self.domains[domain]
        if not dom.has_set_dev_pasid:
            return -errno.EOPNOTSUPP
        if not self._compatible(dom) or pasid == IOMMU_NO_PASID or handle is None:
            return -errno.EINVAL
        if self.recovering(g):
            return -errno.EBUSY  # a device of the group is being reset (model/core/reset.py)
        cur = g.pasid_entry(pasid)
        if cur is None:
            # xa_cmpxchg(NULL -> XA_ZERO_ENTRY) stores only into an empty slot: only
            # then can it fail (-ENOMEM); else the reservation is released, -EINVAL
            return self.may_fail("xa_cmpxchg(pasid_array)") or -errno.EINVAL
        if cur.handle is not None and cur.handle == handle:
            self.warn("replace_same_handle", "reusing handle is problematic")
            return -errno.EINVAL
        if cur.domain == domain:
            self._set_group(g, pasid_array=g.with_pasid(pasid, PasidEntry(domain, handle)))
            self.handles[handle] = replace(self.handles[handle], domain=domain)
            return 0
        old = self.live("domain", self.domains, cur.domain, "iommu_replace_device_pasid")
        if old is None:
            return -errno.EINVAL
        ret = self._set_group_pasid(dom, g, pasid, old)
        if ret:
            return ret
        g = self.groups[g.name]
        self._set_group(g, pasid_array=g.with_pasid(pasid, PasidEntry(domain, handle)))
        self.handles[handle] = replace(self.handles[handle], domain=domain)
        return 0

    # ------------------------------------------------------- aux domains (2018)
    def iommu_aux_attach_device(self, domain: int, dev: str) -> int:
        """v5.2-v5.17 aux API (seed 002): attach a domain at its own default PASID.

        The domain's PASID comes from the system-wide space on its first aux attach
        (Intel's default_pasid) and is the same on every device it is attached to.
        """
        if "aux" not in self.design.features:
            return -errno.ENODEV  # no ops->aux_attach_dev
        g = self.group_of(dev)
        if g is None:
            return -errno.ENODEV
        dom = self.domains.get(domain)
        if dom is None or not dom.type.is_paging or not self._compatible(dom):
            return -errno.EINVAL
        d = self.devices[dev]
        if d.max_pasids == 0:
            return -errno.EINVAL
        pasid = self.aux_pasids.get(domain)
        if pasid is None:
            pasid = self._alloc_global(d.max_pasids)
            if pasid == IOMMU_PASID_INVALID:
                return -errno.ENOSPC
            self.aux_pasids[domain] = pasid
        if pasid >= d.max_pasids:
            return -errno.EINVAL
        if g.pasid_entry(pasid) is not None:
            return -errno.EBUSY
        ret = self._set_group_pasid(dom, g, pasid, None)
        if ret:
            return ret
        g = self.groups[g.name]
        self._set_group(g, pasid_array=g.with_pasid(pasid, PasidEntry(domain)))
        return 0

    def iommu_aux_detach_device(self, domain: int, dev: str) -> None:
        pasid = self.aux_pasids.get(domain)
        g = self.group_of(dev)
        if pasid is None or g is None or (e := g.pasid_entry(pasid)) is None or e.domain != domain:
            self.warn("aux_detach_not_attached", f"d{domain} is not aux-attached to {dev}")
            return
        self.iommu_detach_device_pasid(domain, dev, pasid)

    def iommu_aux_get_pasid(self, domain: int, dev: str) -> int:
        """The domain's PASID if it is aux-attached to dev, else -EINVAL (Intel driver)."""
        pasid = self.aux_pasids.get(domain)
        g = self.group_of(dev)
        if pasid is None or g is None or (e := g.pasid_entry(pasid)) is None or e.domain != domain:
            return -errno.EINVAL
        return pasid

    def iommu_attach_handle_get(self, group: str, pasid: int, type_: DomainType | None) -> int | ErrPtr:
        g = self.groups[group]
        e = g.pasid_entry(pasid)
        if e is None or e.handle is None:
            return ErrPtr(-errno.ENOENT)
        dom = self.live("domain", self.domains, e.domain, "iommu_attach_handle_get")
        if dom is None:
            return ErrPtr(-errno.ENOENT)
        if e.handle not in self.handles:
            self.warn("handle_freed", f"pasid {pasid} of {group} names handle {e.handle}, freed in "
                                      f"{self.freed_where('handle', e.handle)}")
        if type_ is not None and dom.type is not type_:
            return ErrPtr(-errno.EBUSY)
        return e.handle

