"""iommu.c: probe, domain allocation and free, RID attachment of groups, DMA ownership.

Check order and errnos follow mainline iommu.c (kernel-core-api.md section 2).
"""

from __future__ import annotations

import errno
from dataclasses import replace

from model.core.base import BLOCKED_DOMAIN_ID, EPROBE_DEFER, IDENTITY_DOMAIN_ID
from model.core.mm import MmLifetime
from model.design import NotifierFree
from hwspec.memory import Prot, Pte

from model.objects import IOMMU_NO_PASID, Device, Domain, DomainType, ErrPtr, Group

#: the guest's stage-1 table of every nested domain, (IOVA page, IPA page): the first two
#: pages swapped, so an invalidation by IPA where one by IOVA is due (or the reverse)
#: misses its page
GUEST_STAGE1 = ((0, 1), (1, 0))


class IommuCore(MmLifetime):
    # ------------------------------------------------------------------ probe
    def _probe(self, dev: Device) -> None:
        """iommu_probe_device: join the group, and give the group its default domain."""
        assert dev.group is not None
        self.driver.probe_device(self._k, dev)
        g = self.groups.get(dev.group)
        if g is None:
            g = Group(dev.group, (dev.name,), default_domain=None, domain=None)
        else:
            g = replace(g, devices=g.devices + (dev.name,))
        self.groups[g.name] = g
        if g.default_domain is None:
            # iommu_setup_default_domain: a DMA domain, allocated with ALLOC_PASID
            # when the device has PASIDs, or the driver's static identity domain when
            # the default type is IDENTITY (iommu.passthrough=1, def_domain_type);
            # the first attach must not fail.
            if dev.identity:
                dom: int | ErrPtr = IDENTITY_DOMAIN_ID
            else:
                dom = self._alloc_paging(dev, DomainType.DMA)
            assert not isinstance(dom, ErrPtr), "default domain allocation failed"
            g = self._set_group(g, default_domain=dom)
            if self._group_set_domain(g, dom, must_succeed=True):
                self.warn("first_attach_failed", "first attach failed")
        else:
            ret = self.driver.attach_dev(self._k, self.domains[g.domain or g.default_domain], dev, None)
            if ret:
                self.warn("probe_attach_failed", f"attaching {dev.name} to its group's domain failed ({ret})")
        self.driver.probe_finalize(self._k, dev)  # iommu_probe_device -> ops->probe_finalize

    # -------------------------------------------------------- domain alloc
    def _alloc_paging(self, dev: Device, type_: DomainType, nest_parent: bool = False) -> int | ErrPtr:
        # the driver's domain_alloc_paging kzalloc()s the domain and its page table:
        # ERR_PTR(-ENOMEM), nothing allocated (intel_iommu_domain_alloc_paging_flags,
        # arm_smmu_domain_alloc_paging_flags)
        err = self.may_fail(f"domain_alloc_paging({dev.name})")
        if err:
            return ErrPtr(err)
        dom = Domain(self._new_id(), type_, self.driver.name, pgtable=self.mem.new_pagetable(),
                     nest_parent=nest_parent, pgsize_bitmap=self.driver.pgsize_bitmap)
        self.domains[dom.id] = dom
        ret = self.driver.domain_alloc_paging(self._k, dev, dom)
        if ret:
            del self.domains[dom.id]
            return ErrPtr(ret)
        return dom.id

    def iommu_paging_domain_alloc(self, dev: str) -> int | ErrPtr:
        """iommu_paging_domain_alloc(dev): an UNMANAGED paging domain of dev's driver."""
        d = self.devices[dev]
        if self.group_of(dev) is None:
            return ErrPtr(-errno.ENODEV)  # no dev->iommu: never probed, or released
        return self._alloc_paging(d, DomainType.UNMANAGED)

    def iommu_nest_parent_alloc(self, dev: str) -> int | ErrPtr:
        """iommufd_hwpt_paging_alloc with IOMMU_HWPT_ALLOC_NEST_PARENT ->
        ops->domain_alloc_paging_flags(dev, IOMMU_HWPT_ALLOC_NEST_PARENT, NULL): an
        UNMANAGED paging domain other domains may nest on (VT-d: second-stage;
        intel_iommu_domain_alloc_paging_flags sets dmar_domain->nested_parent)."""
        d = self.devices[dev]
        if self.group_of(dev) is None:
            return ErrPtr(-errno.ENODEV)
        return self._alloc_paging(d, DomainType.UNMANAGED, nest_parent=True)

    def iommu_domain_alloc_nested(self, parent: int, dev: str) -> int | ErrPtr:
        """iommufd_hwpt_nested_alloc -> ops->domain_alloc_nested(dev, parent, 0, data): a
        NESTED domain whose stage-1 table is the guest's (GUEST_STAGE1: written by the
        guest, not by an IOMMU call) on `parent`'s stage-2. The parent must be a nesting
        parent of this driver (-EINVAL: `!parent->nest_parent || domain->owner != ops`)."""
        d = self.devices[dev]
        if self.group_of(dev) is None:
            return ErrPtr(-errno.ENODEV)
        par = self.domains.get(parent)
        if par is None or not par.nest_parent or par.owner != self.driver.name:
            return ErrPtr(-errno.EINVAL)
        err = self.may_fail(f"domain_alloc_nested({dev})")
        if err:
            return ErrPtr(err)  # kzalloc of the nested domain
        root = self.mem.new_pagetable()
        for iova_pfn, ipa_pfn in GUEST_STAGE1:
            self.mem.map(root, iova_pfn, Pte(ipa_pfn, Prot.RW))
        dom = Domain(self._new_id(), DomainType.NESTED, self.driver.name, pgtable=root,
                     parent=parent, has_set_dev_pasid=self.driver.nested_has_set_dev_pasid)
        self.domains[dom.id] = dom
        ret = self.driver.domain_alloc_nested(self._k, d, par, dom)
        if ret:
            del self.domains[dom.id]
            return ErrPtr(ret)
        return dom.id

    def nested_on(self, parent: int) -> list[int]:
        """The live nested domains whose parent is `parent` (iommufd holds a reference on
        the parent for each: the parent is not freed before them)."""
        return sorted(d.id for d in self.domains.values() if d.parent == parent)

    def alloc_foreign_domain(self, owner: str = "other-iommu") -> int:
        """A paging domain allocated by another IOMMU driver (fixture S's Q)."""
        dom = Domain(self._new_id(), DomainType.UNMANAGED, owner, pgtable=self.mem.new_pagetable())
        self.domains[dom.id] = dom
        return dom.id

    def alloc_domain_without_set_dev_pasid(self) -> int:
        """A paging domain whose ops lack set_dev_pasid (fixture S's Dnp, row 12)."""
        dom = Domain(
            self._new_id(), DomainType.UNMANAGED, self.driver.name,
            pgtable=self.mem.new_pagetable(), has_set_dev_pasid=False,
        )
        self.domains[dom.id] = dom
        return dom.id

    def iommu_domain_free(self, domain: int) -> None:
        """iommu_domain_free: the SVA cookie drops its mmgrab, then ops->free.

        The kernel does not check that the domain is unused; freeing an attached
        domain is a caller bug, recorded as a WARN-like 'use-after-free' event.
        """
        dom = self.domains.get(domain)
        if dom is None or dom.static:
            self.warn("domain_double_free", f"iommu_domain_free({domain}): not a live dynamic domain (freed in {self.freed_where('domain', domain)})")
            return
        if self._domain_in_use(domain):
            self.warn("domain_free_in_use", f"domain {domain} freed while still attached")
        if domain in self.aux_pasids:
            self.global_pasids = self.global_pasids - {self.aux_pasids.pop(domain)}
        if dom.type is DomainType.SVA and dom.mm is not None:
            self.mmdrop(dom.mm)  # the SVA cookie's mmgrab
        n = self.notifier_of(domain)
        # How the notifier embedded in the SVA domain goes is seed 003's debate.
        policy = self.design.notifier_free
        if n is not None and policy is NotifierFree.UNREGISTER:
            self.mmu_notifier_unregister(n.id)  # first: no callback may run after this
        self.driver.domain_free(self._k, dom)
        if self.mem.table_pages and dom.type is not DomainType.SVA and dom.pgtable is not None:
            # the driver's domain_free frees the I/O page table (pt_iommu_deinit,
            # free_io_pgtable_ops): with leaf table pages modelled, those pages go back
            # (the root page stays allocated: the model never frees a root)
            for table in self.mem.clear_pagetable(dom.pgtable):
                self.free_table_page(table, "iommu_domain_free")
        if n is not None and policy is NotifierFree.PUT:
            self.mmu_notifier_put(n.id)  # the kfree comes later, in free_notifier
            return
        # UNREGISTER: safe to free now; KFREE_EARLY: freed with the notifier still registered
        self.domains.pop(domain, None)
        self.mark_freed("domain", domain, "iommu_domain_free")

    def attachments(self) -> dict[int, list[tuple[str, int]]]:
        """domain -> every (device, PASID) the core has it attached at (IOMMU_NO_PASID for
        the RID): what the drivers' refcounts and lists must count (memoised per state).
        A device being reset is on the blocking domain in the driver, RID and PASIDs, while
        the core keeps its record for pci_dev_reset_iommu_done (model/core/reset.py)."""
        def compute() -> dict[int, list[tuple[str, int]]]:
            out: dict[int, list[tuple[str, int]]] = {}
            for g in self.groups.values():
                for name in g.devices:
                    if name in self.resetting:
                        if g.blocking_domain is not None:
                            out.setdefault(g.blocking_domain, []).append((name, IOMMU_NO_PASID))
                        continue
                    if g.domain is not None:
                        out.setdefault(g.domain, []).append((name, IOMMU_NO_PASID))
                    if self.devices[name].max_pasids:
                        for p, e in g.pasid_array:
                            out.setdefault(e.domain, []).append((name, p))
            return out
        return self.memoized("attachments", compute)

    def _domain_in_use(self, domain: int) -> bool:
        for g in self.groups.values():
            if g.domain == domain or any(e.domain == domain for _, e in g.pasid_array):
                return True
        return False

    # ------------------------------------------------- RID domain attachment
    def _group_set_domain(self, g: Group, new: int | None, must_succeed: bool = False) -> int:
        """__iommu_group_set_domain_internal (kernel-core-api.md section 2)."""
        if g.domain == new:
            return 0
        if new is None:
            self.warn("set_domain_null", "NULL domain")
            return -errno.EINVAL
        # PCI reset staging (model/core/reset.py): while a device of the group is
        # blocked, only a must-succeed change goes through, and it skips that device
        recovering = self.recovering(g)
        if recovering and not must_succeed:
            return -errno.EBUSY
        dom = self.domains[new]
        old = self.domains.get(g.domain) if g.domain is not None else None
        done: list[Device] = []
        for name in g.devices:
            if name in self.resetting:
                continue  # pci_dev_reset_iommu_done attaches group->domain
            dev = self.devices[name]
            ret = self._device_set_domain(g, dev, dom, old, failable=not must_succeed)
            if ret == 0:
                done.append(dev)
                continue
            if must_succeed:
                self.warn("must_succeed_failed", f"{name}: must-succeed attach of domain {new} failed ({ret})")
                if g.blocking_domain is not None and g.blocking_domain != new:
                    self._device_set_domain(g, dev, self.domains[g.blocking_domain], old)
                continue
            # Revert the devices that already switched (a driver bug if that fails).
            for d in done:
                if old is not None and self._device_set_domain(g, d, old, dom):
                    self.warn("revert_failed", f"{d.name}: reverting to domain {old.id} failed")
            return ret
        self._set_group(g, domain=new)
        return 0

    def _device_set_domain(self, g: Group, dev: Device, dom: Domain, old: Domain | None,
                           failable: bool = False) -> int:
        """__iommu_device_set_domain: require_direct refuses blocking, then ops->attach_dev.

        `failable`: a fault point (attach_dev of a paging domain allocates: VT-d's
        domain_attach_iommu / cache tags, SMMUv3's master_domain), except in the
        must-succeed attaches (__iommu_group_set_domain_nofail WARNs if they fail)."""
        if dev.require_direct and (dom.type is DomainType.BLOCKED or dom.id == g.blocking_domain):
            # dev_warn, not WARN: "Firmware has requested this device have a 1:1 IOMMU mapping"
            return -errno.EINVAL
        if not dom.has_attach_dev:
            return -errno.ENODEV
        err = self._take_injected("attach_dev") if dom.type is not DomainType.BLOCKED else 0
        if not err and failable and not dom.static:
            err = self.may_fail(f"attach_dev({dev.name})")
        if err:
            return err
        return self.driver.attach_dev(self._k, dom, dev, old)

    def _attach_group(self, dom_id: int, g: Group) -> int:
        """__iommu_attach_group."""
        if g.domain is not None and g.domain not in (g.default_domain, g.blocking_domain):
            return -errno.EBUSY
        dom = self.domains.get(dom_id)
        if dom is None or not self._compatible(dom):
            return -errno.EINVAL
        return self._group_set_domain(g, dom_id)

    def iommu_attach_device(self, domain: int, dev: str) -> int:
        """iommu_attach_device: singleton groups only; -EBUSY unless on a core domain."""
        g = self.group_of(dev)
        if g is None:
            return -errno.ENODEV
        if len(g.devices) != 1:
            return -errno.EINVAL
        if self.design.attach_refused_while_pasid_users and self._pasid_users(g):
            # seed 002: "any tries to call iommu_attach_device() should fail"
            return -errno.EPERM
        return self._attach_group(domain, g)

    def _pasid_users(self, g: Group) -> bool:
        return any(p != IOMMU_NO_PASID for p, _ in g.pasid_array)

    def _set_core_domain(self, g: Group) -> None:
        """__iommu_group_set_core_domain: blocking if owned by a user, else the default."""
        new = g.blocking_domain if g.owner is not None else g.default_domain
        self._group_set_domain(g, new, must_succeed=True)

    def iommu_detach_device(self, domain: int, dev: str) -> None:
        g = self.group_of(dev)
        if g is None:
            return
        if domain != g.domain:
            self.warn("detach_wrong_domain", f"domain {domain} is not {dev}'s domain")
            return
        if len(g.devices) != 1:
            self.warn("detach_not_singleton", "group is not a singleton")
            return
        self._set_core_domain(g)

    def iommu_attach_group(self, domain: int, group: str) -> int:
        return self._attach_group(domain, self.groups[group])

    def iommu_detach_group(self, domain: int, group: str) -> None:
        """Ignores `domain` (kernel-core-api.md section 2) and restores the core domain."""
        self._set_core_domain(self.groups[group])

    # --------------------------------------------------------- DMA ownership
    def iommu_device_use_default_domain(self, dev: str) -> int:
        g = self.group_of(dev)
        if g is None:
            return 0
        if g.default_domain is None:
            return -EPROBE_DEFER
        pasids = bool(g.pasid_array) and not self.design.has("core.claim_ignores_pasids")
        if g.owner_cnt and (g.domain != g.default_domain or g.owner is not None or pasids):
            return -errno.EBUSY
        self._set_group(g, owner_cnt=g.owner_cnt + 1)
        return 0

    def iommu_device_unuse_default_domain(self, dev: str) -> None:
        g = self.group_of(dev)
        if g is None:
            return
        pasids = bool(g.pasid_array) and not self.design.has("core.claim_ignores_pasids")
        if not g.owner_cnt or pasids:
            self.warn("unuse_no_user", "no user or PASIDs still attached")
            return
        self._set_group(g, owner_cnt=g.owner_cnt - 1)

    def _take_dma_ownership(self, g: Group, owner: str) -> int:
        pasids = bool(g.pasid_array) and not self.design.has("core.claim_ignores_pasids")
        if (g.domain is not None and g.domain != g.default_domain) or pasids:
            return -errno.EBUSY
        if g.blocking_domain is None:
            g = self._set_group(g, blocking_domain=BLOCKED_DOMAIN_ID)
        ret = self._group_set_domain(g, g.blocking_domain)
        if ret:
            return ret
        g = self.groups[g.name]
        self._set_group(g, owner=owner, owner_cnt=g.owner_cnt + 1)
        return 0

    def iommu_group_claim_dma_owner(self, group: str, owner: str | None) -> int:
        if owner is None:
            self.warn("group_claim_null_owner", "NULL owner")
            return -errno.EINVAL
        g = self.groups[group]
        if g.owner_cnt:
            return -errno.EPERM
        return self._take_dma_ownership(g, owner)

    def iommu_device_claim_dma_owner(self, dev: str, owner: str | None) -> int:
        if owner is None:
            self.warn("claim_null_owner", "NULL owner")
            return -errno.EINVAL
        g = self.group_of(dev)
        if g is None:
            return -errno.ENODEV
        if g.owner_cnt:
            if g.owner != owner:
                return -errno.EPERM
            self._set_group(g, owner_cnt=g.owner_cnt + 1)
            return 0
        return self._take_dma_ownership(g, owner)

    def _release_dma_ownership(self, g: Group) -> None:
        if not g.owner_cnt or g.owner is None or g.pasid_array:
            self.warn("release_not_owned", "not owned, or PASIDs still attached")
            return
        g = self._set_group(g, owner_cnt=0, owner=None)
        self._group_set_domain(g, g.default_domain, must_succeed=True)

    def iommu_device_release_dma_owner(self, dev: str) -> None:
        g = self.group_of(dev)
        if g is None:
            return
        if g.owner_cnt > 1:
            self._set_group(g, owner_cnt=g.owner_cnt - 1)
            return
        self._release_dma_ownership(g)

    def iommu_group_release_dma_owner(self, group: str) -> None:
        self._release_dma_ownership(self.groups[group])

