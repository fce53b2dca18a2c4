"""The IOMMU core: groups, domains, DMA ownership, PASID attachment, SVA and mm lifetime.

`Kernel` is one world built for one hardware kind ("vtd", "smmuv3", or "mock",
the iommufd-selftest-like driver with no hardware). Every public method is a
kernel function of the same name and returns what the kernel returns: 0 or a
negative errno for int calls, the object id or an `ErrPtr` for pointer calls,
None for void calls. Check order and errnos follow mainline iommu.c and
iommu-sva.c as described in ../shared/reference/kernel-core-api.md (the
section is cited at each function). A kernel WARN is recorded in
`Kernel.warnings` with the state change the kernel makes (usually none).

Misuse the kernel does not check behaves as the kernel does; misuse that would
oops the kernel (a NULL group dereference) is recorded as an "oops" event and
changes nothing, never a Python exception.
"""

from __future__ import annotations

import errno
from dataclasses import replace
from typing import Any, Callable, Iterable, TypeVar, cast
from typing import Protocol  # Renaming (canonical_key, for the explorer)

from hwspec.memory import PAGE_SHIFT, Memory, Prot, Pte
from hwspec.outcome import Access, Outcome

from model.design import UPSTREAM, Design, NotifierFree, PasidAlloc, PasidFree
from model.drivers.base import Driver, DriverState
from model.objects import (
    IOMMU_NO_PASID,
    IOMMU_PASID_INVALID,
    Device,
    Domain,
    DomainType,
    ErrPtr,
    Group,
    Handle,
    Mm,
    Notifier,
    NotifierState,
    PasidEntry,
)

_T = TypeVar("_T")

#: Linux-internal errno (include/linux/errno.h), not in Python's errno module.
EPROBE_DEFER = 517

BLOCKED_DOMAIN_ID = 1  # ops->blocked_domain (static)
IDENTITY_DOMAIN_ID = 2  # ops->identity_domain (static)
FIRST_DYNAMIC_ID = 3


def make_driver(hw: str) -> Driver:
    """The driver for a hardware kind (imported lazily: drivers import the core's types)."""
    if hw == "vtd":
        from model.drivers.vtd import VtdDriver

        return VtdDriver()
    if hw == "smmuv3":
        from model.drivers.smmuv3 import SmmuV3Driver

        return SmmuV3Driver()
    if hw == "mock":
        from model.drivers.mock import MockDriver

        return MockDriver()
    raise ValueError(f"unknown hardware kind {hw!r} (expected vtd, smmuv3 or mock)")


class Kernel:
    """A world: devices, groups, domains, handles, processes, hardware, and a driver."""

    def __init__(
        self,
        hw: str,
        devices: Iterable[Device],
        design: Design = UPSTREAM,
        driver: Driver | None = None,
    ) -> None:
        self.hw = hw
        self.design = design
        self.driver: Driver = driver if driver is not None else make_driver(hw)
        self.mem = Memory()
        self.devices: dict[str, Device] = {}
        self.groups: dict[str, Group] = {}
        self.domains: dict[int, Domain] = {}
        self.handles: dict[int, Handle] = {}
        self.mms: dict[int, Mm] = {}
        self.notifiers: dict[int, Notifier] = {}
        self.global_pasids: frozenset[int] = frozenset()  # iommu_global_pasid_ida
        #: per-device PASID spaces (PER_RID / GLOBAL_FLAG designs): dev -> allocated values
        self.rid_pasids: dict[str, frozenset[int]] = {}
        #: per-RID SVA PASIDs: (dev, mm) -> pasid (PER_RID design)
        self.mm_rid_pasid: dict[tuple[str, int], int] = {}
        #: aux domains' default PASIDs (aux designs): domain -> pasid
        self.aux_pasids: dict[int, int] = {}
        #: PASIDs kernel drivers allocated for their own DMA: (dev or None if global, pasid)
        self.kernel_pasids: frozenset[tuple[str | None, int]] = frozenset()
        self.next_id = FIRST_DYNAMIC_ID
        self.module_loaded = True
        self.injected: dict[str, int] = {}  # one-shot driver failures (selftest-style)
        self.warnings: list[str] = []  # WARN / oops / use-after-free, in order (not state)
        #: per-state memo for read-only queries (invariants ask the same DMA twice);
        #: None while the state may change. Engines call freeze()/thaw().
        self.memo: dict[Any, Any] | None = None
        self.drv: DriverState = self.driver.new_state(self)
        # The driver's static domains exist from boot (ops->blocked_domain, ->identity_domain).
        self.domains[BLOCKED_DOMAIN_ID] = Domain(
            BLOCKED_DOMAIN_ID, DomainType.BLOCKED, self.driver.name,
            has_set_dev_pasid=self.driver.blocked_has_set_dev_pasid, static=True,
        )
        self.domains[IDENTITY_DOMAIN_ID] = Domain(
            IDENTITY_DOMAIN_ID, DomainType.IDENTITY, self.driver.name, static=True
        )
        for dev in devices:
            if dev.name in self.devices:
                raise ValueError(f"device {dev.name!r} declared twice")
            self.devices[dev.name] = dev
        for dev in list(self.devices.values()):
            if dev.group is not None:
                self._probe(dev)

    # ------------------------------------------------------------------ state
    def copy(self) -> "Kernel":
        k = Kernel.__new__(Kernel)
        k.hw, k.design, k.driver = self.hw, self.design, self.driver
        k.mem = self.mem.copy()
        k.devices = self.devices  # never changes after construction
        k.groups = dict(self.groups)
        k.domains = dict(self.domains)
        k.handles = dict(self.handles)
        k.mms = dict(self.mms)
        k.notifiers = dict(self.notifiers)
        k.global_pasids = self.global_pasids
        k.rid_pasids = dict(self.rid_pasids)
        k.mm_rid_pasid = dict(self.mm_rid_pasid)
        k.aux_pasids = dict(self.aux_pasids)
        k.kernel_pasids = self.kernel_pasids
        k.next_id = self.next_id
        k.module_loaded = self.module_loaded
        k.injected = dict(self.injected)
        k.warnings = list(self.warnings)
        k.drv = self.drv.copy()
        k.memo = None
        return k

    def freeze(self) -> None:
        """The state will not change until thaw(): read-only queries may be memoised."""
        self.memo = {}

    def thaw(self) -> None:
        self.memo = None

    def memoized(self, key: Any, fn: Callable[[], _T]) -> _T:
        if self.memo is None:
            return fn()
        if key not in self.memo:
            self.memo[key] = fn()
        return cast(_T, self.memo[key])

    def key(self) -> tuple[Any, ...]:
        """A hashable snapshot of everything that can change (warnings are history, not state)."""
        return (
            tuple(sorted(self.groups.items())),
            tuple(sorted(self.domains.items())),
            tuple(sorted(self.handles.items())),
            tuple(sorted(self.mms.items())),
            tuple(sorted(self.notifiers.items())),
            tuple(sorted(self.global_pasids)),
            tuple(sorted((d, tuple(sorted(p))) for d, p in self.rid_pasids.items() if p)),
            tuple(sorted(self.mm_rid_pasid.items())),
            tuple(sorted(self.aux_pasids.items())),
            tuple(sorted(self.kernel_pasids, key=lambda dp: (dp[0] or "", dp[1]))),
            self.next_id,
            self.module_loaded,
            self.mem.key(),
            self.drv.key(),
        )

    # ------------------------------------------------------------ utilities
    def warn(self, msg: str) -> None:
        self.warnings.append(msg)

    def _new_id(self) -> int:
        i = self.next_id
        self.next_id += 1
        return i

    def group_of(self, dev: str) -> Group | None:
        d = self.devices[dev]
        return None if d.group is None else self.groups[d.group]

    def _set_group(self, g: Group, **changes: Any) -> Group:
        g = replace(g, **changes)
        self.groups[g.name] = g
        return g

    def _compatible(self, dom: Domain) -> bool:
        """domain_iommu_ops_compatible: same owner ops, or the driver's static domains."""
        return dom.owner == self.driver.name

    def _take_injected(self, op: str) -> int:
        return self.injected.pop(op, 0)

    def inject_failure(self, op: str, err: int) -> None:
        """Make the driver's next `op` ("attach_dev", "set_dev_pasid") fail with `err`
        (the iommufd selftest's PASID-1024 hook, kernel-core-api.md section 8)."""
        assert err < 0
        self.injected[op] = err

    # ------------------------------------------------------------------ probe
    def _probe(self, dev: Device) -> None:
        """iommu_probe_device: join the group, and give the group its default domain."""
        assert dev.group is not None
        self.driver.probe_device(self, dev)
        g = self.groups.get(dev.group)
        if g is None:
            g = Group(dev.group, (dev.name,), default_domain=None, domain=None)
        else:
            g = replace(g, devices=g.devices + (dev.name,))
        self.groups[g.name] = g
        if g.default_domain is None:
            # iommu_setup_default_domain: a DMA domain, allocated with ALLOC_PASID
            # when the device has PASIDs; the first attach must not fail.
            dom = self._alloc_paging(dev, DomainType.DMA)
            assert not isinstance(dom, ErrPtr), "default domain allocation failed"
            g = self._set_group(g, default_domain=dom)
            if self._group_set_domain(g, dom, must_succeed=True):
                self.warn("iommu_setup_default_domain: first attach failed")
        else:
            ret = self.driver.attach_dev(self, self.domains[g.domain or g.default_domain], dev, None)
            if ret:
                self.warn(f"probe: attaching {dev.name} to its group's domain failed ({ret})")

    # -------------------------------------------------------- domain alloc
    def _alloc_paging(self, dev: Device, type_: DomainType) -> int | ErrPtr:
        dom = Domain(self._new_id(), type_, self.driver.name, pgtable=self.mem.new_pagetable())
        self.domains[dom.id] = dom
        ret = self.driver.domain_alloc_paging(self, dev, dom)
        if ret:
            del self.domains[dom.id]
            return ErrPtr(ret)
        return dom.id

    def iommu_paging_domain_alloc(self, dev: str) -> int | ErrPtr:
        """iommu_paging_domain_alloc(dev): an UNMANAGED paging domain of dev's driver."""
        d = self.devices[dev]
        if d.group is None:
            return ErrPtr(-errno.ENODEV)
        return self._alloc_paging(d, DomainType.UNMANAGED)

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
            self.warn(f"iommu_domain_free({domain}): not a live dynamic domain")
            return
        if self._domain_in_use(domain):
            self.warn(f"use-after-free: domain {domain} freed while still attached")
        if domain in self.aux_pasids:
            self.global_pasids = self.global_pasids - {self.aux_pasids.pop(domain)}
        if dom.type is DomainType.SVA and dom.mm is not None:
            self.mmdrop(dom.mm)  # the SVA cookie's mmgrab
        n = self.notifier_of(domain)
        # How the notifier embedded in the SVA domain goes is seed 003's debate.
        policy = self.design.notifier_free
        if n is not None and policy is NotifierFree.UNREGISTER:
            self.mmu_notifier_unregister(n.id)  # first: no callback may run after this
        self.driver.domain_free(self, dom)
        if n is not None and policy is NotifierFree.PUT:
            self.mmu_notifier_put(n.id)  # the kfree comes later, in free_notifier
            return
        # UNREGISTER: safe to free now; KFREE_EARLY: freed with the notifier still registered
        self.domains.pop(domain, None)

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
            self.warn("__iommu_group_set_domain_internal: NULL domain")
            return -errno.EINVAL
        dom = self.domains[new]
        old = self.domains.get(g.domain) if g.domain is not None else None
        done: list[Device] = []
        for name in g.devices:
            dev = self.devices[name]
            ret = self._device_set_domain(g, dev, dom, old)
            if ret == 0:
                done.append(dev)
                continue
            if must_succeed:
                self.warn(f"{name}: must-succeed attach of domain {new} failed ({ret})")
                if g.blocking_domain is not None and g.blocking_domain != new:
                    self._device_set_domain(g, dev, self.domains[g.blocking_domain], old)
                continue
            # Revert the devices that already switched (a driver bug if that fails).
            for d in done:
                if old is not None and self._device_set_domain(g, d, old, dom):
                    self.warn(f"{d.name}: reverting to domain {old.id} failed")
            return ret
        self._set_group(g, domain=new)
        return 0

    def _device_set_domain(self, g: Group, dev: Device, dom: Domain, old: Domain | None) -> int:
        """__iommu_device_set_domain: require_direct refuses blocking, then ops->attach_dev."""
        if dev.require_direct and (dom.type is DomainType.BLOCKED or dom.id == g.blocking_domain):
            # dev_warn, not WARN: "Firmware has requested this device have a 1:1 IOMMU mapping"
            return -errno.EINVAL
        if not dom.has_attach_dev:
            return -errno.ENODEV
        err = self._take_injected("attach_dev") if dom.type is not DomainType.BLOCKED else 0
        if err:
            return err
        return self.driver.attach_dev(self, dom, dev, old)

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
            self.warn(f"iommu_detach_device: domain {domain} is not {dev}'s domain")
            return
        if len(g.devices) != 1:
            self.warn("iommu_detach_device: group is not a singleton")
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
            self.warn("iommu_device_unuse_default_domain: no user or PASIDs still attached")
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
            self.warn("iommu_group_claim_dma_owner: NULL owner")
            return -errno.EINVAL
        g = self.groups[group]
        if g.owner_cnt:
            return -errno.EPERM
        return self._take_dma_ownership(g, owner)

    def iommu_device_claim_dma_owner(self, dev: str, owner: str | None) -> int:
        if owner is None:
            self.warn("iommu_device_claim_dma_owner: NULL owner")
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
            self.warn("__iommu_release_dma_ownership: not owned, or PASIDs still attached")
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
            ret = self._take_injected("set_dev_pasid")
            if not ret:
                ret = self.driver.set_dev_pasid(self, dom, dev, pasid, old)
            if ret == 0:
                done.append(dev)
                continue
            for d in done:
                if old is None:
                    self._remove_dev_pasid(d, pasid, dom)
                elif self.driver.set_dev_pasid(self, old, d, pasid, dom):
                    self.warn(f"{d.name}: restoring pasid {pasid} to domain {old.id} failed")
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
        if self.driver.set_dev_pasid(self, blocked, dev, pasid, old):
            self.warn(f"{dev.name}: blocking pasid {pasid} failed")

    def iommu_attach_device_pasid(
        self, domain: int, dev: str, pasid: int, handle: int | None = None
    ) -> int:
        """iommu_attach_device_pasid (kernel-core-api.md section 3, checks in kernel order)."""
        g = self.group_of(dev)
        if g is None:
            return -errno.ENODEV
        dom = self.domains.get(domain)
        if dom is None:
            self.warn(f"use-after-free: attach of freed domain {domain}")
            return -errno.EINVAL
        if not dom.has_set_dev_pasid or not self.domains[BLOCKED_DOMAIN_ID].has_set_dev_pasid:
            return -errno.EOPNOTSUPP
        if not self._compatible(dom) or pasid == IOMMU_NO_PASID:
            return -errno.EINVAL
        for d in self._pasid_devices(g):
            if pasid >= d.max_pasids:
                return -errno.EINVAL
        if g.pasid_entry(pasid) is not None:
            return -errno.EBUSY
        ret = self._set_group_pasid(dom, g, pasid, None)
        if ret:
            return ret
        g = self.groups[g.name]
        self._set_group(g, pasid_array=g.with_pasid(pasid, PasidEntry(domain, handle)))
        if handle is not None:
            self.handles[handle] = replace(self.handles[handle], domain=domain)
        return 0

    def iommu_detach_device_pasid(self, domain: int, dev: str, pasid: int) -> None:
        """No NULL-group check and no check that `domain` is the attached one."""
        g = self.group_of(dev)
        if g is None:
            self.warn(f"oops: iommu_detach_device_pasid on {dev}, which has no group")
            return
        dom = self.domains.get(domain)
        if dom is None:
            self.warn(f"use-after-free: detach of freed domain {domain}")
            return
        for d in self._pasid_devices(g):
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
        cur = g.pasid_entry(pasid)
        if cur is None:
            return -errno.EINVAL
        if cur.handle is not None and cur.handle == handle:
            self.warn("iommu_replace_device_pasid: reusing handle is problematic")
            return -errno.EINVAL
        if cur.domain == domain:
            self._set_group(g, pasid_array=g.with_pasid(pasid, PasidEntry(domain, handle)))
            self.handles[handle] = replace(self.handles[handle], domain=domain)
            return 0
        ret = self._set_group_pasid(dom, g, pasid, self.domains[cur.domain])
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
            self.warn(f"iommu_aux_detach_device: d{domain} is not aux-attached to {dev}")
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
        if type_ is not None and self.domains[e.domain].type is not type_:
            return ErrPtr(-errno.EBUSY)
        return e.handle

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
            self.warn("iommu_free_global_pasid: IOMMU_PASID_INVALID")
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

    def cpu_munmap(self, mm: int, iova: int) -> int:
        """munmap: clear the CPU page table, then mmu_notifier invalidate (secondary TLBs)."""
        m = self.mms[mm]
        if m.exited:
            return -errno.EFAULT
        if self.mem.unmap(m.pgd, iova >> PAGE_SHIFT) is None:
            return 0
        self._notify(mm, lambda dom: self.driver.invalidate_secondary_tlbs(self, dom, iova >> PAGE_SHIFT))
        return 0

    def _notify(self, mm: int, call: Callable[[Domain], None], release: bool = False) -> None:
        """Run a notifier callback for every notifier registered on mm."""
        for n in sorted(self.notifiers.values(), key=lambda n: n.id):
            if n.mm != mm or n.state is not NotifierState.REGISTERED:
                continue
            if release and n.released:
                continue
            dom = self.domains.get(n.domain)
            if dom is None:
                self.warn(f"use-after-free: mmu notifier {n.id} called into freed domain {n.domain}")
                continue
            if not self.module_loaded:
                self.warn(f"callback after module unload: notifier {n.id} of domain {n.domain}")
            call(dom)
            if release:
                self.notifiers[n.id] = replace(n, released=True)

    def process_exit(self, mm: int) -> None:
        """Last mmput: exit_mmap runs the notifiers' ->release, frees the page table, then mmdrop."""
        m = self.mms[mm]
        if m.exited:
            return
        self.mms[mm] = m = replace(m, users=0, msr_pasid=None)
        self._notify(mm, lambda dom: self.driver.mm_release(self, dom), release=True)
        self.mem.pagetables[m.pgd] = {}  # exit_mmap: every page unmapped and freed
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
            self.warn(f"use-after-free: mmdrop of freed mm {mm}")
            return
        if m.count > 1:
            self.mms[mm] = replace(m, count=m.count - 1)
            return
        if self.design.pasid_free is PasidFree.MMDROP:
            self._free_mm_pasids(m)
        del self.mms[mm]

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
            h = self.handles[found]
            assert h.domain is not None
            if self.domains[h.domain].mm != mm:
                return ErrPtr(-errno.EBUSY)
            self.handles[found] = replace(h, users=h.users + 1)
            return found
        if found.err != -errno.ENOENT:
            return found
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
        dom = Domain(self._new_id(), DomainType.SVA, self.driver.name, mm=mm, has_attach_dev=False)
        self.domains[dom.id] = dom
        self.mmgrab(mm)  # iommu_sva_domain_alloc: the domain pins the mm struct
        ret = self.driver.domain_alloc_sva(self, d, dom)
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
            self.warn(f"use-after-free: unbind of freed SVA handle {handle}")
            return
        if h.users > 1:
            self.handles[handle] = replace(h, users=h.users - 1)
            return
        assert h.domain is not None and h.dev is not None and h.pasid is not None
        dom = self.domains[h.domain]
        assert dom.mm is not None
        self.iommu_detach_device_pasid(dom.id, h.dev, h.pasid)
        dom = replace(dom, users=dom.users - 1)
        self.domains[dom.id] = dom
        mm = dom.mm
        assert mm is not None  # an SVA domain always has its mm
        if dom.users == 0:
            m = self.mms[mm]
            self.mms[mm] = m = replace(m, sva_domains=tuple(x for x in m.sva_domains if x != dom.id))
            if not m.sva_domains and self.design.pasid_free is PasidFree.LAST_UNBIND:
                self._free_mm_pasids(m)  # 2019: the PASID is refcounted by the bonds
            self.iommu_domain_free(dom.id)
        del self.handles[handle]

    def iommu_sva_get_pasid(self, handle: int) -> int:
        """mm_get_enqcmd_pasid(domain->mm) upstream; the bond's own PASID in per-RID designs."""
        h = self.handles.get(handle)
        if h is None or h.pasid is None:
            return IOMMU_PASID_INVALID
        return h.pasid

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
        n = self.notifiers.pop(nid)
        if not n.released and n.mm in self.mms and not self.mms[n.mm].exited:
            # mmu_notifier_unregister calls ->release itself if exit_mmap has not run yet
            dom = self.domains.get(n.domain)
            if dom is not None:
                self.driver.mm_release(self, dom)
        self.mmdrop(n.mm)

    def mmu_notifier_put(self, nid: int) -> None:
        """Asynchronous: off the mm's list now; free_notifier + mmdrop after an SRCU grace period."""
        n = self.notifiers[nid]
        self.notifiers[nid] = replace(n, state=NotifierState.PUT_PENDING)

    def srcu_grace_period(self) -> None:
        """The deferred free_notifier callbacks run (event: it may happen at any time)."""
        for n in sorted(self.notifiers.values(), key=lambda n: n.id):
            if n.state is NotifierState.PUT_PENDING:
                self._free_notifier(n)

    def _free_notifier(self, n: Notifier) -> None:
        if not self.module_loaded:
            self.warn(f"callback after module unload: free_notifier of domain {n.domain}")
        self.notifiers.pop(n.id)
        self.domains.pop(n.domain, None)  # the driver's free_notifier kfree()s the domain
        self.mmdrop(n.mm)

    def pending_free_notifiers(self) -> bool:
        return any(n.state is NotifierState.PUT_PENDING for n in self.notifiers.values())

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
        self.driver.iotlb_sync_map(self, dom, iova >> PAGE_SHIFT)
        return 0

    def iommu_unmap(self, domain: int, iova: int, size: int = 1 << PAGE_SHIFT) -> int:
        """iommu_unmap: returns the bytes unmapped; the driver flushes before returning."""
        dom = self.domains.get(domain)
        if dom is None or not dom.type.is_paging or dom.pgtable is None:
            return 0
        if self.mem.unmap(dom.pgtable, iova >> PAGE_SHIFT) is None:
            return 0
        self.driver.unmap_flush(self, dom, iova >> PAGE_SHIFT)
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
            lambda: self.driver.translate(self, self.devices[dev], pasid, iova, access),
        )

    def hw_fill(self, dev: str, pasid: int | None, iova: int, access: Access = Access.READ) -> None:
        """Hardware caches what a walk for this request sees now."""
        self.driver.fill(self, self.devices[dev], pasid, iova, access)

    # ---------------------------------------------- canonical form (explorer)
    def canonical_key(self, ren: "Renaming",
                      pointer_words: dict[int, tuple[int, int, int]] | None = None) -> tuple[Any, ...]:
        """`key()` with every name replaced by its label from `ren` (symmetry reduction).

        Domain, handle and mm ids, page-table roots and physical data pages are
        names: nothing the kernel or the hardware does depends on their values, only
        on which objects they designate, so a state and its image under a renaming
        behave alike and the explorer keeps one of them. `ren` labels a name when the
        traversal first meets it, and the traversal order comes from content (group
        names, PASIDs, positions in tuples), never from the ids' values, so renamed
        states meet. Notifiers keep their id order (their callbacks run in that
        order: _notify, srcu_grace_period). Left out besides what key() leaves out:
        next_id and the page allocator's set (a fresh id or page is fresh whatever
        its value) and page tables nothing refers to any more.

        `pointer_words`: the memory words that can hold a root
        (`drv.root_pointer_words`), if the caller already has them.
        Must cover everything key() covers: a field added to key() belongs here too
        (tests/explore checks that both tell the same states apart).
        """
        dom, handle, mm_label, root, pfn = ren.dom, ren.handle, ren.mm, ren.root, ren.pfn
        pts = self.mem.pagetables

        def table(r: int) -> tuple[tuple[int, int, int], ...]:
            t = pts.get(r)
            return tuple([(i, pfn(p.pfn), p.prot) for i, p in sorted(t.items())]) if t else ()

        groups = []
        for name, g in sorted(self.groups.items()):
            groups.append((
                name, g.devices,
                None if g.default_domain is None else dom(g.default_domain),
                None if g.domain is None else dom(g.domain),
                None if g.blocking_domain is None else dom(g.blocking_domain),
                g.owner, g.owner_cnt,
                tuple([(p, dom(e.domain), None if e.handle is None else handle(e.handle))
                       for p, e in g.pasid_array]),
            ))
        owned: set[int] = set()
        domains = []
        for d in ren.order("dom", self.domains, self._dom_signature):
            x = self.domains[d]
            pt = None
            if x.pgtable is not None:
                owned.add(x.pgtable)
                pt = (root(x.pgtable), table(x.pgtable))
            domains.append((dom(d), x.type, x.owner, pt, None if x.mm is None else mm_label(x.mm),
                            x.users, x.has_attach_dev, x.has_set_dev_pasid, x.static))
        handles = []
        for i in ren.order("handle", self.handles, self._handle_signature):
            h = self.handles[i]
            handles.append((handle(i), h.kind, None if h.domain is None else dom(h.domain), h.dev,
                            h.users, h.pasid))
        mms = []
        for i in ren.order("mm", self.mms, self._mm_signature):
            m = self.mms[i]
            owned.add(m.pgd)
            mms.append((mm_label(i), root(m.pgd), table(m.pgd), m.users, m.count, m.pasid,
                        tuple([dom(x) for x in m.sva_domains]), m.msr_pasid))
        notifiers = tuple([(mm_label(n.mm), dom(n.domain), n.state, n.released)
                           for n in sorted(self.notifiers.values(), key=lambda n: n.id)])
        if pointer_words is None:
            pointer_words = self.drv.root_pointer_words(self.mem)  # type: ignore[attr-defined]
        words = dict(self.mem.words)
        for addr in [a for a in words if a in pointer_words]:
            words[addr] = ren.root_field(words[addr], *pointer_words[addr])
        core = (
            tuple(groups), tuple(domains), tuple(handles), tuple(mms), notifiers,
            tuple(sorted(self.global_pasids)),
            tuple(sorted((d, tuple(sorted(p))) for d, p in self.rid_pasids.items() if p))
            if self.rid_pasids else (),
            tuple(sorted([((dev, mm_label(m)), p) for (dev, m), p in self.mm_rid_pasid.items()])),
            tuple(sorted([(dom(d), p) for d, p in self.aux_pasids.items()])),
            tuple(sorted(self.kernel_pasids, key=lambda dp: (dp[0] or "", dp[1]))),
            self.module_loaded,
            tuple(sorted(self.injected.items())),
            frozenset(words.items()),
        )
        drv = self.drv.canonical_key(ren)  # type: ignore[attr-defined]
        # Roots only hardware still points at (a freed domain's table behind a stale entry).
        orphans = tuple([(root(r), table(r)) for r in ren.roots() if r not in owned])
        return (core, drv, orphans)

    def _dom_signature(self, d: int) -> tuple[Any, ...]:
        """What tells apart objects nothing else names yet (for a stable label order)."""
        x = self.domains[d]
        t = self.mem.pagetables.get(x.pgtable, {}) if x.pgtable is not None else {}
        return (x.type.value, x.owner, x.users, x.static, x.has_attach_dev,
                x.has_set_dev_pasid, x.mm is None, tuple(sorted(t)))

    def _handle_signature(self, i: int) -> tuple[Any, ...]:
        h = self.handles[i]
        return (h.kind, h.dev or "", h.users, -1 if h.pasid is None else h.pasid)

    def _mm_signature(self, i: int) -> tuple[Any, ...]:
        m = self.mms[i]
        t = self.mem.pagetables.get(m.pgd, {})
        return (m.users, m.count, -1 if m.pasid is None else m.pasid,
                -1 if m.msr_pasid is None else m.msr_pasid, len(m.sva_domains), tuple(sorted(t)))


class Renaming(Protocol):
    """Labels for the names of one state (implemented by checker.explore)."""

    def dom(self, d: int) -> int: ...
    def handle(self, h: int) -> int: ...
    def mm(self, m: int) -> int: ...
    def root(self, addr: int) -> int: ...
    def pfn(self, pfn: int) -> int: ...

    def order(self, kind: str, ids: Iterable[int], signature: Callable[[int], Any]) -> list[int]:
        """ids with labels first (in label order), then the rest by signature (equal
        signatures in an order of the renaming's choosing), labelled in that order."""
        ...

    def roots(self) -> list[int]:
        """The page-table roots labelled so far, in label order."""
        ...

    def root_field(self, word: int, mask: int, lo: int, shift: int) -> Any:
        """A memory word whose bits `mask` hold a root address >> shift, with the root renamed."""
        ...
