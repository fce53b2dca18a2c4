"""The action table: every call and event of the model, declared once.

Each `Action` names a kernel call or a hardware/process event, the kinds of its
parameters, the caller contract it assumes (`requires`), and how to run it on a
`Kernel`. Both engines are generated from this table: the Hypothesis machine
(checker/machine.py: random runs, each step one of the enabled (action, args) moves)
and the exhaustive explorer (checker/explore.py: every argument tuple of every
enabled action). Nothing about the system is written twice.

Caller contracts. The model explores what *correct* callers may do, so that a
violation is a property of the design, not of a buggy caller: a domain is freed
only when nothing uses it, a PASID is detached only with the domain attached at
it, a kernel PASID user allocates its PASIDs from the allocator the design
provides. Misuse the kernel itself checks (errno, WARN) stays reachable.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable, Iterator

from hwspec.memory import SZ_2M, VMALLOC_START
from hwspec.outcome import Access

from model.bounds import Bounds
from model.core import BLOCKED_DOMAIN_ID, IDENTITY_DOMAIN_ID, Kernel
from model.objects import ErrPtr, DomainType, errname

USER_OWNER = "vfio"  # the one user-space DMA owner (VFIO / iommufd) of the model


class Kind(Enum):
    """Parameter kinds. DOMAIN, MM and SVA are objects with a lifetime (drawn from the state)."""

    DEV = "device"
    PASID_DEV = "PASID-capable device"
    DOMAIN = "paging domain"
    MM = "process"
    SVA = "SVA handle"
    KPASID = "kernel PASID"  # allocated by a kernel PASID user from the global allocator
    ANY_PASID = "PASID or none"  # what a device may put on the wire
    LIVE_PASID = "attached PASID or none"  # what a working device does put on the wire
    IOVA = "IOVA"
    PHYS = "physical page"
    FAULT_NTH = "fault point number"  # which fault point of the next call fails (fail_nth)
    PAGES = "size in pages"  # of a ranged call: 2 .. range_pages


BUNDLE_KINDS = (Kind.DOMAIN, Kind.MM, Kind.SVA)

#: fail_nth picks one of the first MAX_FAULT_POINTS fault points of the next call: the
#: most any call passes is six (a first SVA bind on a two-device group: iommu_mm, the
#: handle, the SVA domain, the xa_insert reservation, set_dev_pasid on each device)
MAX_FAULT_POINTS = 6


@dataclass(frozen=True)
class Param:
    name: str
    kind: Kind
    consumes: bool = False  # the call ends the object's lifetime (Hypothesis `consumes`)


Args = tuple[Any, ...]


def _one_step(run: Callable[[Kernel, Args], Any]) -> Callable[[Kernel, Args], Any]:
    """Every call and event is one step: the driver forgets what only lasts a step (the
    fetch windows of VT-d entries being rewritten: a fetch does not outlive a step) before
    it runs, whether or not the caller took the hardware log after the last one."""
    def step(k: Kernel, a: Args) -> Any:
        k.driver.begin_step(k)
        return run(k, a)
    step.__doc__ = run.__doc__
    return step


def _one_call(run: Callable[[Kernel, Args], Any]) -> Callable[[Kernel, Args], Any]:
    def call(k: Kernel, a: Args) -> Any:
        if k.fail_nth is None:
            return run(k, a)
        k.begin_call()
        try:
            return run(k, a)
        finally:
            k.end_call()
    call.__doc__ = run.__doc__
    return call


@dataclass(frozen=True)
class Action:
    name: str
    kind: str  # "call" or "event"
    params: tuple[Param, ...]
    run: Callable[[Kernel, Args], Any]
    doc: str
    requires: Callable[[Kernel, Bounds, Args], bool] = lambda k, b, a: True
    produces: Kind | None = None  # the result is a new object of this kind
    #: still possible once the driver module is gone (deferred callbacks, device DMA)
    after_unload: bool = False
    #: the API feature (model.design.FEATURES) the call belongs to; None: always there
    needs: str | None = None
    #: a bound (model/bounds.py) that must be nonzero for the action to exist at all
    #: (the Hypothesis machine leaves the rule out, so faults=0 draws as before, and
    #: enabled_args yields nothing, so no engine takes it); "a|b": either one
    bound: str | None = None

    def __post_init__(self) -> None:
        if self.kind == "call":
            # An armed fault (fail_nth) applies to the next call and ends with it, whether
            # or not the call reached its N-th fault point. Events run in other contexts
            # (the device, RCU callbacks, the process's own page faults) and neither consume
            # nor clear it: fail-nth is per task and per system call.
            object.__setattr__(self, "run", _one_call(self.run))
        object.__setattr__(self, "run", _one_step(self.run))

    def exists(self, b: Bounds) -> bool:
        return self.bound is None or any(getattr(b, n) for n in self.bound.split("|"))

    def possible(self, k: Kernel) -> bool:
        """The design has the call, and nothing calls into an unloaded driver module
        except what was queued before."""
        if self.needs is not None and self.needs not in k.design.features:
            return False
        return k.module_loaded or self.after_unload

    def enabled_args(self, k: Kernel, b: Bounds) -> Iterator[Args]:
        """Every argument tuple a correct caller may pass now (the explorer's branching)."""
        if not self.possible(k) or not self.exists(b):
            return
        pools = [pool(p.kind, k, b) for p in self.params]
        for args in itertools.product(*pools):
            if self.requires(k, b, args):
                yield args


# -- parameter pools ------------------------------------------------------------
def live_paging_domains(k: Kernel) -> list[int]:
    """The domains callers allocated and name in calls: UNMANAGED paging domains (nesting
    parents among them) and NESTED domains (bound nesting)."""
    return sorted(d.id for d in k.domains.values()
                  if d.type in (DomainType.UNMANAGED, DomainType.NESTED))


def live_mms(k: Kernel) -> list[int]:
    return sorted(m.id for m in k.mms.values() if not m.exited)


def sva_handles(k: Kernel) -> list[int]:
    return sorted(h.id for h in k.handles.values() if h.kind == "sva")


def kernel_pasids(k: Kernel) -> list[int]:
    """PASIDs kernel drivers allocated for their own DMA (iommu_alloc_global_pasid)."""
    return sorted({p for _, p in k.kernel_pasids})


def values(kind: Kind, k: Kernel, b: Bounds) -> list[Any]:
    if kind is Kind.DEV:
        return sorted(n for n, d in k.devices.items() if d.group is not None)
    if kind is Kind.PASID_DEV:
        return sorted(n for n, d in k.devices.items() if d.group is not None and d.max_pasids)
    if kind is Kind.DOMAIN:
        return live_paging_domains(k)
    if kind is Kind.MM:
        return live_mms(k)
    if kind is Kind.SVA:
        return sva_handles(k)
    if kind is Kind.KPASID:
        return kernel_pasids(k)
    if kind is Kind.ANY_PASID:
        return [None, *range(1, b.max_pasids)]
    if kind is Kind.LIVE_PASID:
        live = {p for g in k.groups.values() for p, _ in g.pasid_array}
        live |= {m.msr_pasid for m in k.mms.values() if m.msr_pasid is not None}
        return [None, *sorted(p for p in live if 0 < p < b.max_pasids)]
    if kind is Kind.IOVA:
        return list(b.iovas())
    if kind is Kind.PHYS:
        return list(b.phys())
    if kind is Kind.FAULT_NTH:
        return list(range(1, MAX_FAULT_POINTS + 1))
    if kind is Kind.PAGES:
        return list(range(2, b.range_pages + 1))
    raise AssertionError(kind)


def pool(kind: Kind, k: Kernel, b: Bounds) -> list[Any]:
    """`values`, memoised while the state is frozen: the explorer enumerates every
    action's arguments in each state, and most kinds are asked for many times."""
    if k.memo is None:
        return values(kind, k, b)
    memo = k.memo.get("pools")
    if memo is None or memo[0] is not b:
        pools: dict[Kind, list[Any]] = {}
        memo = k.memo["pools"] = (b, pools)
    got: list[Any] | None = memo[1].get(kind)
    if got is None:
        got = memo[1][kind] = values(kind, k, b)
    return got


# -- caller contracts --------------------------------------------------------------
def _unused_domain(k: Kernel, b: Bounds, a: Args) -> bool:
    """Nothing attaches it, and no nested domain holds it as its parent (iommufd's
    nested hwpt holds a reference on the parent hwpt until it is destroyed)."""
    return not k._domain_in_use(a[0]) and not k.nested_on(a[0])


def _attached_at(k: Kernel, b: Bounds, a: Args) -> bool:
    dom, dev, pasid = a
    g = k.group_of(dev)
    e = g.pasid_entry(pasid) if g is not None else None
    return e is not None and e.domain == dom


def _can_alloc_domain(k: Kernel, b: Bounds, a: Args) -> bool:
    return len(live_paging_domains(k)) < b.paging_domains


def _can_fork(k: Kernel, b: Bounds, a: Args) -> bool:
    return len(k.mms) < b.processes


def _pasid_unused(k: Kernel, b: Bounds, a: Args) -> bool:
    (pasid,) = a
    return all(g.pasid_entry(pasid) is None for g in k.groups.values())


def _driver_bound(k: Kernel, dev: str) -> bool:
    """A kernel driver is bound to dev through the DMA API (not handed to user space).

    Before DMA ownership existed (`Design.handover_by_attach`), a device whose RID is
    attached to an UNMANAGED domain belongs to a guest, not to a kernel driver.
    """
    g = k.group_of(dev)
    if g is None or g.owner_cnt == 0 or g.owner is not None:
        return False
    if k.design.handover_by_attach and g.domain is not None:
        dom = k.domains.get(g.domain)
        return dom is None or dom.type is not DomainType.UNMANAGED
    return True


def _kernel_user(k: Kernel, b: Bounds, a: Args) -> bool:
    """Kernel PASID users (SVA binders, idxd-style drivers) are drivers bound to the device."""
    dev = next(v for v in a if isinstance(v, str) and v in k.devices)
    return _driver_bound(k, dev)


def _mapped(k: Kernel, root: int | None, iova: int) -> bool:
    return root is not None and k.mem.walk(root, iova >> 12) is not None


def _mapped_in_default(k: Kernel, dev: str, iova: int) -> bool:
    g = k.group_of(dev)
    return g is not None and g.default_domain is not None and _mapped(
        k, k.domains[g.default_domain].pgtable, iova)


def _has_pasid_room(k: Kernel, b: Bounds, a: Args) -> bool:
    """Keep kernel users from taking every PASID: processes need some too."""
    return len(k.kernel_pasids) < max(1, b.max_pasids - 2)


def _bound(k: Kernel, b: Bounds, a: Args) -> bool:
    return True


# Caller contracts that keep every counter of the model finite, so that the explorer
# can exhaust a world (each is something a correct caller never exceeds anyway).
#: a driver binds one (device, mm) at most this often at once (e.g. two open files):
#: enough for the shared handle's refcount (sva-handle-refcount)
MAX_SVA_BINDS = 2
#: SVA domains (each with an mmu notifier) of one process at once, live or awaiting
#: their free_notifier: the live one and one freed before an SRCU grace period (seed 003)
MAX_NOTIFIERS_PER_MM = 2


def _one_driver_per_device(k: Kernel, b: Bounds, a: Args) -> bool:
    """Driver core binds at most one driver to a device, so a group has at most one
    DMA-API user per device; binding while user space owns the group stays possible
    (the kernel refuses it with -EBUSY)."""
    g = k.group_of(a[0])
    return g is None or g.owner is not None or g.owner_cnt < len(g.devices)


def _one_claim_per_device(k: Kernel, b: Bounds, a: Args) -> bool:
    """VFIO/iommufd claims each device once; a claim while a kernel driver is bound
    stays possible (the kernel refuses it with -EPERM)."""
    g = k.group_of(a[0])
    return g is None or g.owner != USER_OWNER or g.owner_cnt < len(g.devices)


def _can_bind(k: Kernel, b: Bounds, a: Args) -> bool:
    """A kernel PASID user binds (MAX_SVA_BINDS references at most, and no new SVA
    domain while the process already has MAX_NOTIFIERS_PER_MM notifiers)."""
    if not _kernel_user(k, b, a):
        return False
    dev, mm = a
    m = k.mms[mm]
    g = k.group_of(dev)
    pasid = k.mm_rid_pasid.get((dev, mm), m.pasid)  # per-RID designs: the bond's own PASID
    if pasid is not None and g is not None:
        e = g.pasid_entry(pasid)
        h = k.handles.get(e.handle) if e is not None and e.handle is not None else None
        if h is not None and h.users >= MAX_SVA_BINDS:
            return False
    return bool(m.sva_domains) or sum(n.mm == mm for n in k.notifiers.values()) < MAX_NOTIFIERS_PER_MM


def _on_bus(k: Kernel, dev: str) -> bool:
    """The function is there and probed: not surprise-removed, not released."""
    return dev not in k.disconnected and dev not in k.released


def _may_release(k: Kernel, b: Bounds, a: Args) -> bool:
    """A correct removal: the device's driver (DMA API or VFIO) is unbound and has undone
    what it attached (every PASID of the group detached, SVA bonds unbound, the group back
    on its default domain); not in the middle of a reset."""
    g = k.group_of(a[0])
    if g is None or a[0] in k.resetting:
        return False
    return (not g.owner_cnt and g.owner is None and not g.pasid_array
            and g.domain == g.default_domain)


def _may_page_request(k: Kernel, b: Bounds, a: Args) -> bool:
    """A device sends page requests only with PRI (the model's ATS devices), only for a
    PASID its driver bound to a live process (it stops before unbind: the PASID Stop
    Marker protocol is the device driver's job), not while gone or in reset, and one
    request is outstanding at a time (bound pri)."""
    dev, pasid, _ = a
    if pasid is None or not k.driver.page_requests or not k.devices[dev].ats:
        return False
    if not _on_bus(k, dev) or dev in k.resetting or k.prq or k.iopf_groups:
        return False
    g = k.group_of(dev)
    e = g.pasid_entry(pasid) if g is not None else None
    dom = k.domains.get(e.domain) if e is not None else None
    if dom is None or dom.type is not DomainType.SVA or dom.mm is None:
        return False
    m = k.mms.get(dom.mm)
    return m is not None and not m.exited


# -- runners -----------------------------------------------------------------------
def _dma(k: Kernel, a: Args) -> None:
    dev, pasid, iova = a
    k.hw_fill(dev, pasid, iova, Access.READ)


def _entry_handle(k: Kernel, dev: str, pasid: int) -> int | None:
    g = k.group_of(dev)
    e = g.pasid_entry(pasid) if g is not None else None
    return None if e is None else e.handle


def _detach_pasid(k: Kernel, a: Args) -> None:
    """The caller detaches, then frees the attach handle it owned (iommufd does)."""
    dom, dev, pasid = a
    old_handle = _entry_handle(k, dev, pasid)
    k.iommu_detach_device_pasid(dom, dev, pasid)
    if old_handle is not None and k.handles.pop(old_handle, None) is not None:
        k.mark_freed("handle", old_handle, "iommufd, after iommu_detach_device_pasid")


def _replace_pasid(k: Kernel, a: Args) -> int:
    """iommufd_device_replace: a fresh handle in; on success the old one is freed, else the new one."""
    dom, dev, pasid = a
    old_handle = _entry_handle(k, dev, pasid)
    h = k.new_attach_handle()
    ret = k.iommu_replace_device_pasid(dom, dev, pasid, h)
    if ret:
        k.handles.pop(h, None)
    elif old_handle is not None and k.handles.pop(old_handle, None) is not None:
        k.mark_freed("handle", old_handle, "iommufd, after iommu_replace_device_pasid")
    return ret


def _enqcmd(k: Kernel, a: Args) -> int | None:
    mm, dev, iova = a
    pasid = k.enqcmd_pasid(mm)
    if pasid is not None:
        k.hw_fill(dev, pasid, iova, Access.READ)
    return pasid


ACTIONS: tuple[Action, ...] = (
    # -- RID domains and DMA ownership -------------------------------------------
    Action("iommu_paging_domain_alloc", "call", (Param("dev", Kind.DEV),),
           lambda k, a: k.iommu_paging_domain_alloc(a[0]),
           "a driver or VFIO allocates an UNMANAGED paging domain",
           requires=_can_alloc_domain, produces=Kind.DOMAIN),
    # -- nesting (bound nesting): iommufd's NEST_PARENT and NESTED hwpts -----------------
    Action("iommu_nest_parent_alloc", "call", (Param("dev", Kind.DEV),),
           lambda k, a: k.iommu_nest_parent_alloc(a[0]),
           "iommufd allocates a nesting parent: a paging domain with IOMMU_HWPT_ALLOC_NEST_PARENT",
           requires=_can_alloc_domain, produces=Kind.DOMAIN, bound="nesting"),
    Action("iommu_domain_alloc_nested", "call", (Param("domain", Kind.DOMAIN), Param("dev", Kind.DEV)),
           lambda k, a: k.iommu_domain_alloc_nested(a[0], a[1]),
           "iommufd allocates a NESTED domain on a nesting parent: the guest's stage-1 table "
           "over the parent's",
           requires=lambda k, b, a: _can_alloc_domain(k, b, a) and k.domains[a[0]].nest_parent,
           produces=Kind.DOMAIN, bound="nesting"),
    Action("iommu_domain_free", "call", (Param("domain", Kind.DOMAIN, consumes=True),),
           lambda k, a: k.iommu_domain_free(a[0]),
           "free a paging domain nobody uses", requires=_unused_domain),
    Action("iommu_attach_device", "call", (Param("domain", Kind.DOMAIN), Param("dev", Kind.DEV)),
           lambda k, a: k.iommu_attach_device(a[0], a[1]),
           "attach a paging domain to a device's RID (whole-device attach)"),
    Action("iommu_detach_device", "call", (Param("domain", Kind.DOMAIN), Param("dev", Kind.DEV)),
           lambda k, a: k.iommu_detach_device(a[0], a[1]),
           "detach it again: back to the default (or blocking, if owned) domain",
           requires=lambda k, b, a: (g := k.group_of(a[1])) is not None and g.domain == a[0]),
    Action("iommu_device_use_default_domain", "call", (Param("dev", Kind.DEV),),
           lambda k, a: k.iommu_device_use_default_domain(a[0]),
           "a DMA-API driver binds to the device (driver core, before probe)",
           requires=_one_driver_per_device, needs="dma_owner"),
    Action("iommu_device_unuse_default_domain", "call", (Param("dev", Kind.DEV),),
           lambda k, a: k.iommu_device_unuse_default_domain(a[0]),
           "the DMA-API driver unbinds",
           requires=lambda k, b, a: (g := k.group_of(a[0])) is not None
           and g.owner_cnt > 0 and g.owner is None,
           needs="dma_owner"),
    Action("iommu_device_claim_dma_owner", "call", (Param("dev", Kind.DEV),),
           lambda k, a: k.iommu_device_claim_dma_owner(a[0], USER_OWNER),
           "VFIO/iommufd takes the whole device for user space",
           requires=_one_claim_per_device, needs="dma_owner"),
    Action("iommu_device_release_dma_owner", "call", (Param("dev", Kind.DEV),),
           lambda k, a: k.iommu_device_release_dma_owner(a[0]),
           "user space gives the device back",
           requires=lambda k, b, a: (g := k.group_of(a[0])) is not None
           and g.owner == USER_OWNER,
           needs="dma_owner"),
    # -- kernel PASID users (idxd-style) -------------------------------------------------
    Action("iommu_alloc_global_pasid", "call", (Param("dev", Kind.PASID_DEV),),
           lambda k, a: k.iommu_alloc_global_pasid(a[0]),
           "a kernel driver allocates a PASID for its own DMA",
           requires=lambda k, b, a: _has_pasid_room(k, b, a) and _kernel_user(k, b, a),
           needs="kernel_pasid"),
    Action("iommu_free_global_pasid", "call", (Param("pasid", Kind.KPASID),),
           lambda k, a: k.iommu_free_global_pasid(a[0]),
           "the kernel driver frees a PASID it no longer attaches", requires=_pasid_unused,
           needs="kernel_pasid"),
    Action("iommu_attach_device_pasid", "call",
           (Param("domain", Kind.DOMAIN), Param("dev", Kind.DEV), Param("pasid", Kind.KPASID)),
           lambda k, a: k.iommu_attach_device_pasid(a[0], a[1], a[2]),
           "a kernel driver attaches a paging domain at a PASID it allocated",
           requires=lambda k, b, a: _kernel_user(k, b, a) and k.kernel_pasid_ok(a[1], a[2]),
           needs="kernel_pasid"),
    Action("iommu_detach_device_pasid", "call",
           (Param("domain", Kind.DOMAIN), Param("dev", Kind.DEV), Param("pasid", Kind.KPASID)),
           _detach_pasid, "detach the domain attached at that PASID", requires=_attached_at,
           needs="kernel_pasid"),
    Action("iommu_replace_device_pasid", "call",
           (Param("domain", Kind.DOMAIN), Param("dev", Kind.DEV), Param("pasid", Kind.KPASID)),
           _replace_pasid, "replace the domain at an attached PASID (iommufd, with a fresh handle)",
           requires=lambda k, b, a: (g := k.group_of(a[1])) is not None
           and g.pasid_entry(a[2]) is not None,
           needs="kernel_pasid"),
    # -- aux domains (2018-2022) ------------------------------------------------------
    Action("iommu_aux_attach_device", "call", (Param("domain", Kind.DOMAIN), Param("dev", Kind.DEV)),
           lambda k, a: k.iommu_aux_attach_device(a[0], a[1]),
           "the mdev parent driver attaches an aux domain at its default PASID",
           requires=_kernel_user, needs="aux"),
    Action("iommu_aux_detach_device", "call", (Param("domain", Kind.DOMAIN), Param("dev", Kind.DEV)),
           lambda k, a: k.iommu_aux_detach_device(a[0], a[1]),
           "and detaches it", requires=lambda k, b, a: k.iommu_aux_get_pasid(a[0], a[1]) >= 0,
           needs="aux"),
    # -- SVA ----------------------------------------------------------------------------
    Action("iommu_sva_bind_device", "call", (Param("dev", Kind.DEV), Param("mm", Kind.MM)),
           lambda k, a: k.iommu_sva_bind_device(a[0], a[1]),
           "a device driver binds a process's address space to the device",
           requires=_can_bind, produces=Kind.SVA,
           needs="sva"),
    Action("iommu_sva_unbind_device", "call", (Param("handle", Kind.SVA, consumes=True),),
           lambda k, a: k.iommu_sva_unbind_device(a[0]),
           "the device driver drops one bind reference",
           needs="sva"),
    # -- maps ---------------------------------------------------------------------------
    Action("iommu_map", "call",
           (Param("domain", Kind.DOMAIN), Param("iova", Kind.IOVA), Param("pa", Kind.PHYS)),
           lambda k, a: k.iommu_map(a[0], a[1], a[2]),
           "map one page into a paging domain"),
    Action("iommu_unmap", "call", (Param("domain", Kind.DOMAIN), Param("iova", Kind.IOVA)),
           lambda k, a: k.iommu_unmap(a[0], a[1]),
           "unmap one mapped page; the driver flushes IOTLB and ATC before returning",
           requires=lambda k, b, a: k.domains[a[0]].type.is_paging
           and _mapped(k, k.domains[a[0]].pgtable, a[1])),
    # -- ranges (bound range_pages): the same calls with a size of 2 .. range_pages pages
    Action("iommu_map_range", "call",
           (Param("domain", Kind.DOMAIN), Param("iova", Kind.IOVA), Param("pa", Kind.PHYS),
            Param("pages", Kind.PAGES)),
           lambda k, a: k.iommu_map(a[0], a[1], a[2], size=a[3] << 12),
           "iommu_map of `pages` pages at any IOVA page (consecutive physical pages)",
           requires=lambda k, b, a: (a[1] >> 12) + a[3] <= b.iova_pages, bound="range_pages"),
    Action("iommu_unmap_range", "call",
           (Param("domain", Kind.DOMAIN), Param("iova", Kind.IOVA), Param("pages", Kind.PAGES)),
           lambda k, a: k.iommu_unmap(a[0], a[1], a[2] << 12),
           "iommu_unmap of `pages` mapped pages: one gather, one iotlb_sync",
           requires=lambda k, b, a: k.domains[a[0]].type.is_paging
           and all(_mapped(k, k.domains[a[0]].pgtable, a[1] + (i << 12)) for i in range(a[2])),
           bound="range_pages"),
    # -- leaf table pages (bound walk_caches): the 2 MiB the IOVA space lies in ------------
    Action("iommu_unmap_2m", "call", (Param("domain", Kind.DOMAIN),),
           lambda k, a: k.iommu_unmap(a[0], 0, SZ_2M),
           "iommu_unmap(domain, 0, SZ_2M): a 2 MiB unmap over a leaf table, which the page "
           "table frees, or (bound superpages) of the 2 MiB leaf iommu_map_2m made",
           requires=lambda k, b, a: (d := k.domains[a[0]]).pgtable is not None
           and (k.mem.leaf_table(d.pgtable, 0) is not None
                or k.mem.block_at(d.pgtable, 0) is not None),
           bound="walk_caches|superpages"),
    # -- 2 MiB leaves (bound superpages) -----------------------------------------------------
    Action("iommu_map_2m", "call", (Param("domain", Kind.DOMAIN), Param("pa", Kind.PHYS)),
           lambda k, a: k.iommu_map(a[0], 0, a[1], size=SZ_2M),
           "iommu_map(domain, 0, pa, SZ_2M): iommu_pgsize picks the domain's 2 MiB page size "
           "(a VT-d superpage, an SMMUv3 block) where its pgsize_bitmap has it",
           requires=lambda k, b, a: not a[1] & (SZ_2M - 1), bound="superpages"),
    Action("iommu_flush_iotlb_all", "call", (Param("domain", Kind.DOMAIN),),
           lambda k, a: k.iommu_flush_iotlb_all(a[0]),
           "flush everything the domain's translations may be cached as (ops->flush_iotlb_all)",
           bound="range_pages"),
    Action("dma_map_page", "call",
           (Param("dev", Kind.DEV), Param("iova", Kind.IOVA), Param("pa", Kind.PHYS)),
           lambda k, a: k.dma_map_page(a[0], a[1], a[2]),
           "the bound driver maps a buffer through the DMA API (default domain)",
           requires=lambda k, b, a: _driver_bound(k, a[0])
           and (g := k.group_of(a[0])) is not None and g.domain == g.default_domain
           and not k.devices[a[0]].identity,  # identity default: dma-direct, no IOMMU call
           needs="dma_api"),
    Action("dma_unmap_page", "call", (Param("dev", Kind.DEV), Param("iova", Kind.IOVA)),
           lambda k, a: k.dma_unmap_page(a[0], a[1]),
           "the bound driver unmaps a buffer it mapped (dma-iommu flushes before returning)",
           requires=lambda k, b, a: _driver_bound(k, a[0]) and _mapped_in_default(k, a[0], a[1]),
           needs="dma_api"),
    # -- processes ------------------------------------------------------------------------
    Action("mm_alloc", "event", (), lambda k, a: k.mm_alloc(),
           "a process starts", requires=_can_fork, produces=Kind.MM),
    Action("cpu_map", "event",
           (Param("mm", Kind.MM), Param("iova", Kind.IOVA), Param("pa", Kind.PHYS)),
           lambda k, a: k.cpu_map(a[0], a[1], a[2]),
           "the process maps memory (no secondary-TLB flush needed)"),
    Action("cpu_munmap", "event", (Param("mm", Kind.MM), Param("iova", Kind.IOVA)),
           lambda k, a: k.cpu_munmap(a[0], a[1]),
           "the process unmaps memory: mmu notifier invalidate_secondary_tlbs",
           requires=lambda k, b, a: _mapped(k, k.mms[a[0]].pgd, a[1])),
    Action("cpu_munmap_range", "event",
           (Param("mm", Kind.MM), Param("iova", Kind.IOVA), Param("pages", Kind.PAGES)),
           lambda k, a: k.cpu_munmap(a[0], a[1], a[2] << 12),
           "the process unmaps `pages` pages: one notifier call over the cleared range",
           requires=lambda k, b, a: (a[1] >> 12) + a[2] <= b.iova_pages
           and _mapped(k, k.mms[a[0]].pgd, a[1]), bound="range_pages"),
    Action("cpu_munmap_2m", "event", (Param("mm", Kind.MM),),
           lambda k, a: k.cpu_munmap(a[0], 0, SZ_2M),
           "the process unmaps the 2 MiB its pages lie in: the CPU frees the leaf table page "
           "after the notifier's flush",
           requires=lambda k, b, a: not k.mms[a[0]].exited
           and k.mem.leaf_table(k.mms[a[0]].pgd, 0) is not None, bound="walk_caches"),
    Action("dma_kernel_address", "event", (Param("dev", Kind.DEV), Param("pasid", Kind.LIVE_PASID)),
           lambda k, a: k.driver.fill_kernel_half(k, k.devices[a[0]], a[1], VMALLOC_START),
           "a device DMAs a kernel (vmalloc) address with a PASID: an SVA walk goes through "
           "the kernel half to the supervisor leaf and faults, caching the table pointer",
           requires=lambda k, b, a: _on_bus(k, a[0]) and a[1] is not None, bound="kernel_pgtable"),
    Action("vmalloc", "event", (),
           lambda k, a: k.vmalloc(),
           "vmalloc() maps a page where no kernel leaf table is: the kernel allocates one",
           requires=lambda k, b, a: k.kernel_pgd is not None
           and k.mem.leaf_table(k.kernel_pgd, VMALLOC_START >> 12) is None,
           bound="kernel_pgtable"),
    Action("vfree_kernel_pgtable", "event", (),
           lambda k, a: k.vfree_kernel_pgtable(),
           "vfree() empties a kernel page-table page and the kernel frees it",
           requires=lambda k, b, a: k.kernel_pgd is not None
           and k.mem.leaf_table(k.kernel_pgd, VMALLOC_START >> 12) is not None,
           bound="kernel_pgtable"),
    Action("process_exit", "event", (Param("mm", Kind.MM, consumes=True),),
           lambda k, a: k.process_exit(a[0]),
           "the process exits: mmu notifier release, page table freed, mmdrop"),
    Action("enqcmd", "event", (Param("mm", Kind.MM), Param("dev", Kind.PASID_DEV), Param("iova", Kind.IOVA)),
           _enqcmd, "the process submits work with ENQCMD: the device DMAs with IA32_PASID",
           requires=lambda k, b, a: _on_bus(k, a[1]),
           needs="enqcmd"),
    # -- hardware and deferred work ---------------------------------------------------------
    Action("dma", "event", (Param("dev", Kind.DEV), Param("pasid", Kind.LIVE_PASID), Param("iova", Kind.IOVA)),
           _dma, "the device issues a DMA; the IOMMU (and the ATC) may cache what the walk finds",
           requires=lambda k, b, a: _on_bus(k, a[0]),
           after_unload=True),
    Action("srcu_grace_period", "event", (), lambda k, a: k.srcu_grace_period(),
           "an SRCU grace period ends: deferred free_notifier callbacks run",
           requires=lambda k, b, a: k.pending_free_notifiers(), after_unload=True),
    Action("module_unload", "event", (), lambda k, a: k.module_unload(),
           "rmmod of the IOMMU driver module (modelled only while some mmu notifier of the "
           "driver exists: the only state in which unloading has anything to get wrong)",
           requires=lambda k, b, a: k.module_loaded and bool(k.notifiers)),
    # -- PCI reset staging (bound pci_reset) -------------------------------------------------
    Action("pci_dev_reset_iommu_prepare", "call", (Param("dev", Kind.DEV),),
           lambda k, a: k.pci_dev_reset_iommu_prepare(a[0]),
           "the PCI core is about to reset the function (FLR, PM or bus reset): the IOMMU "
           "blocks its RID and PASIDs and keeps what the core records",
           requires=lambda k, b, a: k.devices[a[0]].ats and a[0] not in k.resetting
           and a[0] not in k.released, bound="pci_reset"),
    Action("pci_dev_reset_iommu_done", "call", (Param("dev", Kind.DEV),),
           lambda k, a: k.pci_dev_reset_iommu_done(a[0]),
           "the reset is over: the IOMMU re-attaches the domains the core records",
           requires=lambda k, b, a: a[0] in k.resetting, bound="pci_reset"),
    Action("pci_surprise_removal", "event", (Param("dev", Kind.DEV),),
           lambda k, a: k.pci_surprise_removal(a[0]),
           "the function disappears from the bus (hot-unplug, link down): no more DMA from it, "
           "and it answers no ATS invalidation",
           requires=lambda k, b, a: k.devices[a[0]].ats and _on_bus(k, a[0])
           and a[0] not in k.resetting, bound="hotplug"),
    # -- release and hot-add (bound reprobe) --------------------------------------------------
    Action("iommu_release_device", "call", (Param("dev", Kind.DEV),),
           lambda k, a: k.iommu_release_device(a[0]),
           "the device is removed (BUS_NOTIFY_REMOVED_DEVICE) after its driver's remove(): "
           "release domain, release_device, and with the group's last device the default domain",
           requires=_may_release, bound="reprobe"),
    Action("iommu_probe_device", "call", (Param("dev", Kind.DEV),),
           lambda k, a: k.iommu_probe_device(a[0]),
           "a function is hot-added in the released device's slot (same RID) and probed",
           requires=lambda k, b, a: a[0] in k.released, bound="reprobe"),
    # -- I/O page faults (bound pri) ----------------------------------------------------------
    Action("device_page_request", "event",
           (Param("dev", Kind.DEV), Param("pasid", Kind.LIVE_PASID), Param("iova", Kind.IOVA)),
           lambda k, a: k.device_page_request(a[0], a[1], a[2]),
           "the device sends a PRI Page Request for a page of the process it works for: the "
           "IOMMU queues it for its interrupt thread",
           requires=_may_page_request, bound="pri"),
    Action("prq_event_thread", "event", (), lambda k, a: k.prq_event_thread(),
           "the IOMMU driver's page-request interrupt thread reads the oldest request and "
           "reports it (iommu_report_device_fault)",
           requires=lambda k, b, a: bool(k.prq), bound="pri"),
    Action("prq_event_thread_nomem", "event", (), lambda k, a: k.prq_event_thread(nomem=True),
           "the interrupt thread reads the oldest request but cannot allocate its iopf group: "
           "the core answers Response Failure",
           requires=lambda k, b, a: bool(k.prq) and k.faults_left > 0 and b.pri, bound="faults"),
    Action("iopf_work", "event", (), lambda k, a: k.iopf_work(),
           "the iopf workqueue runs the oldest queued group's fault handler "
           "(iommu_sva_iopf_handler), which answers the device",
           requires=lambda k, b, a: bool(k.iopf_groups), bound="pri"),
    # -- fault injection (bound faults) ---------------------------------------------------
    Action("fail_nth", "event", (Param("n", Kind.FAULT_NTH),),
           lambda k, a: k.arm_fail_nth(a[0]),
           "the test writes n to /proc/self/task/<tid>/fail-nth: the n-th fault point "
           "(allocation, failable driver op) of its next call fails with -ENOMEM",
           requires=lambda k, b, a: k.faults_left > 0 and k.fail_nth is None, bound="faults"),
)

ACTIONS_BY_NAME: dict[str, Action] = {a.name: a for a in ACTIONS}


# -- rendering (traces speak kernel) ------------------------------------------------------
def show_value(k: Kernel, v: Any, kind: Kind | None = None) -> str:
    if v is None:
        return "none" if kind in (Kind.ANY_PASID, Kind.LIVE_PASID) else "NULL"
    if isinstance(v, ErrPtr):
        return repr(v)
    if kind is Kind.DOMAIN:
        return show_domain(v)
    if kind is Kind.MM:
        return f"mm{v}"
    if kind is Kind.SVA:
        return f"sva{v}"
    if kind in (Kind.IOVA, Kind.PHYS):
        return hex(v)
    return str(v)


def show_domain(d: int) -> str:
    if d == BLOCKED_DOMAIN_ID:
        return "blocked"
    if d == IDENTITY_DOMAIN_ID:
        return "identity"
    return f"d{d}"


def show_call(k: Kernel, action: Action, args: Args, result: Any, before: Kernel | None = None) -> str:
    """The call as a kernel engineer writes it, with its result; `before` (the state the
    call ran in) lets a DMA show every outcome it may have had."""
    shown = ", ".join(show_value(k, v, p.kind) for v, p in zip(args, action.params))
    if action.name == "dma":
        dev, pasid, iova = args
        where = "no pasid" if pasid is None else f"pasid {pasid}"
        head = f"dma({dev}, {where}, iova {iova:#x})"
        if before is None:
            return head
        # e.g. "-> may reach pa 0x7000 via ATC (sid 0x8, ssid 1)". Computed here, for the
        # trace, not in the event itself: the explorer runs millions of DMA events.
        return f"{head} -> " + "; or ".join(sorted(str(o) for o in before.dma(dev, pasid, iova)))
    head = f"{action.name}({shown})"
    if result is None:
        return head
    if action.produces is not None and isinstance(result, int):
        return f"{head} -> {show_value(k, result, action.produces)}"
    if isinstance(result, int) and action.name not in (
            "iommu_unmap", "iommu_unmap_range", "dma_unmap_page", "iommu_alloc_global_pasid",
            "enqcmd"):
        return f"{head} -> {errname(result)}"
    return f"{head} -> {show_value(k, result)}"
