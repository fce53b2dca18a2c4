"""A PCI function's life after boot: reset staging (pci_dev_reset_iommu_prepare /
pci_dev_reset_iommu_done), surprise removal, release (iommu_release_device) and
probing again (iommu_probe_device, a hot-add).

A PCI function reset (FLR, PM reset, bus reset) must not overlap an ATS
invalidation: a function in reset does not answer one, and the IOMMU times out
(VT-d ITE, SMMUv3 CERROR_ATC_INV_SYNC; PCIe r6.0 sec 10.3.1). Since v7.0 the PCI
reset methods call `pci_dev_reset_iommu_prepare(dev)` first: the device's RID and
every PASID of it are attached to the group's blocking domain in the hardware -
which removes its cache tags / ATS invalidation targets, so nothing invalidates it
while it resets - and the core's own record (group->domain, pasid_array) is left
as it is: that record *is* what `pci_dev_reset_iommu_done(dev)` restores.

Mainline as modelled (c279e83953d9 with the v7.0-stable fixes b296ca1f, 0d5fd7a9,
1615e889, 5474e6e1, d769711f, fc3523b1; read in the indexed kernel source and the
stable patches):

* both do nothing for a device without ATS (pci_ats_supported) or without an IOMMU;
* prepare: RID to the blocking domain unless group->domain already is it (an error
  is returned with nothing changed); then, for a device with PASIDs, each PASID of
  the pasid_array blocked on *this* device (iommu_remove_dev_pasid); the device
  is marked blocked (gdev->blocked, the group's recovery_cnt counts them);
* while a device of the group is blocked, a domain change of the group
  (`__iommu_group_set_domain_internal`: attach_device / attach_group / claiming
  DMA ownership) and iommu_attach_device_pasid / iommu_replace_device_pasid return
  -EBUSY; a must-succeed change (detach, releasing ownership) goes through and
  skips the blocked device, and iommu_detach_device_pasid skips it too: _done
  then restores what the core records by then;
* done: the RID back to group->domain (unless that is the blocking domain or
  NULL), each PASID of the pasid_array back on this device only, WARN_ON if a
  re-attach fails; the device is no longer blocked.

Caller contract (model/actions.py): prepare and done come in pairs per device, not
nested (0d5fd7a9's reset_depth counts nesting; the model does not nest).
"""

from __future__ import annotations

import errno

from model.core.base import BLOCKED_DOMAIN_ID
from model.core.iopf import Iopf


class PciReset(Iopf):
    def pci_dev_reset_iommu_prepare(self, dev: str) -> int:
        """Block the device's RID and PASIDs in the hardware; keep the core's record."""
        d = self.devices[dev]
        g = self.group_of(dev)
        if g is None or not d.ats:
            return 0  # no IOMMU, or no ATS: nothing to quiesce (pci_ats_supported)
        if dev in self.resetting:
            self.warn("reset_reentered", f"{dev} is already being reset")
            return 0
        if self.design.has("reset.prepare_noop"):
            self.resetting = self.resetting | {dev}  # broken variant: nothing is blocked
            return 0
        if g.blocking_domain is None:  # __iommu_group_alloc_blocking_domain
            g = self._set_group(g, blocking_domain=BLOCKED_DOMAIN_ID)
        blocking = g.blocking_domain if g.blocking_domain is not None else BLOCKED_DOMAIN_ID
        if g.domain != blocking:
            old = self.domains.get(g.domain) if g.domain is not None else None
            ret = self.driver.attach_dev(self._k, self.domains[blocking], d, old)
            if ret:
                return ret
        if d.max_pasids and not self.design.has("reset.prepare_rid_only"):
            for pasid, e in g.pasid_array:
                self._remove_dev_pasid(d, pasid, self.domains[e.domain])
        self.resetting = self.resetting | {dev}
        return 0

    def pci_dev_reset_iommu_done(self, dev: str) -> None:
        """Re-attach what the core records: group->domain on the RID, each PASID's domain."""
        d = self.devices[dev]
        g = self.group_of(dev)
        if g is None or dev not in self.resetting:
            return  # prepare was bypassed (no ATS) or not called
        if self.design.has("reset.prepare_noop"):
            self.resetting = self.resetting - {dev}  # broken variant: nothing to restore
            return
        blocked = self.domains[BLOCKED_DOMAIN_ID]
        target = g.default_domain if self.design.has("reset.done_restores_default") else g.domain
        if target is not None and target != g.blocking_domain:
            if self.driver.attach_dev(self._k, self.domains[target], d, blocked):
                self.warn("reset_restore_failed", f"{dev}: re-attaching domain {target} failed")
        if d.max_pasids:
            for pasid, e in g.pasid_array:
                dom = self.domains[e.domain]
                if self.design.has("reset.done_whole_group"):
                    # c279e83953d9 before 1615e889: __iommu_set_group_pasid on every
                    # device of the group, though only this one was blocked
                    if self._set_group_pasid(dom, g, pasid, blocked):
                        self.warn("reset_restore_failed", f"{dev}: restoring pasid {pasid} failed")
                elif self.driver.set_dev_pasid(self._k, dom, d, pasid, blocked):
                    self.warn("reset_restore_failed", f"{dev}: restoring pasid {pasid} failed")
        self.resetting = self.resetting - {dev}

    # ------------------------------------------------------------ surprise removal
    def pci_surprise_removal(self, dev: str) -> None:
        """The function is gone (hot-unplug, link down): pci_dev_is_disconnected() and
        !pci_device_is_present() hold from now on. It issues no more DMA and answers no
        ATS invalidation: VT-d reports an Invalidation Time-out Error for a device-TLB
        descriptor sent to it (hwspec's queue; the driver decides what happens next,
        model/drivers/vtd.py `_submit`). Its release is a call of its own
        (iommu_release_device, bound reprobe); until then it stays probed, silent."""
        self.disconnected = self.disconnected | {dev}
        self.driver.device_gone(self._k, self.devices[dev])

    # ------------------------------------------------------ release and hot-add
    def iommu_release_device(self, dev: str) -> None:
        """The device leaves (BUS_NOTIFY_REMOVED_DEVICE, after its driver's remove()):
        out of group->devices first, then the release domain attached to it (the
        blocking domain: ops->release_domain), then ops->release_device. The group's
        last device takes the default domain with it, and the group goes. The core
        WARNs only when that last device leaves with the group owned or off its default
        domain; nothing checks for PASIDs still attached (helper's reading, iommu.c
        __iommu_group_remove_device / iommu_deinit_device, late 2025)."""
        d = self.devices[dev]
        g = self.group_of(dev)
        if g is None:
            return
        if len(g.devices) == 1 and (g.owner_cnt or g.owner is not None or g.domain != g.default_domain):
            self.warn("release_group_busy", f"{dev}: the group's last device leaves while it is "
                      f"owned or off its default domain")
        g = self._set_group(g, devices=tuple(n for n in g.devices if n != dev))
        old = self.domains.get(g.domain) if g.domain is not None else None
        if not self.design.has("core.release_without_release_domain"):
            self.driver.attach_dev(self._k, self.domains[BLOCKED_DOMAIN_ID], d, old)
        self.driver.release_device(self._k, d)
        self.released = self.released | {dev}
        if not g.devices:
            del self.groups[g.name]
            dd = g.default_domain
            if dd is not None and dd in self.domains and not self.domains[dd].static:
                self.iommu_domain_free(dd)

    def iommu_probe_device(self, dev: str) -> int:
        """A hot-added function in the slot the released one had (same RID): probed as
        at boot, with fresh driver state, joining its group or making a new one with a
        fresh default domain."""
        if dev not in self.released:
            return 0  # already in a group: nothing to do
        self.released = self.released - {dev}
        self.disconnected = self.disconnected - {dev}
        self._probe(self.devices[dev])
        return 0
