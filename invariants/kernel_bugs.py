"""The kernel's own bug detectors, as invariants: KASAN, WARN_ON/oops, kmemleak, refcounts,
and "a failed call changes nothing".

Most fixed Linux IOMMU bugs are of these generic kinds, not violations of an
IOMMU-specific property: a use of a freed object, a WARN a correct caller
reaches, a leaked PASID / DID / ASID or object, a refcount that drifts from
what it counts, a failed call that leaves state changed. They apply to every
design and driver, so a user's new design is checkable without writing a new
invariant first. One id per class, so the matrix and docs/ say which class broke.

* no-use-after-free and no-kernel-warn read the events the model records at
  the kernel's own WARN / oops / access sites (model/warn.py: each site says its
  kernel function, condition and class);
* no-leak and refcount-matches recompute, on every state, what each allocation
  and each count should be from the core's attachments and objects, and ask the
  driver for its private ones (`Driver.leaks`, `Driver.refcounts`);
* failed-call-unchanged compares the state before and after every call that
  returned an error.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from invariants.base import Invariant, Layer, Step, Violation
from model.actions import show_call
from model.bounds import Bounds
from model.core import Kernel
from model.design import NotifierFree, PasidAlloc
from model.objects import DomainType, ErrPtr, NotifierState
from model.state import Declared, exact_key
from model.warn import KernelWarning, WarnClass


def _new_events(step: Step, classes: tuple[WarnClass, ...]) -> list[KernelWarning]:
    return [w for w in step.new_warnings
            if isinstance(w, KernelWarning) and w.site.klass in classes]


def _call(step: Step) -> str:
    return show_call(step.after, step.action, step.args, step.result)


# -- KASAN ------------------------------------------------------------------------------
def _no_use_after_free(step: Step, b: Bounds) -> Violation | None:
    for w in _new_events(step, (WarnClass.UAF,)):
        return Violation(
            "no-use-after-free",
            f"{_call(step)}: {w} [{w.site.function}: {w.site.condition}]",
        )
    return None


# -- WARN_ON / oops ------------------------------------------------------------------------
def _no_kernel_warn(step: Step, b: Bounds) -> Violation | None:
    for w in _new_events(step, (WarnClass.BUG, WarnClass.OOPS)):
        what = "oops" if w.site.klass is WarnClass.OOPS else "WARN"
        return Violation(
            "no-kernel-warn",
            f"{_call(step)} reaches a {what} in {w.site.function} ({w.site.condition}): {w}",
        )
    return None


# -- kmemleak ------------------------------------------------------------------------------
def _pasid_owners(k: Kernel) -> tuple[set[int], set[tuple[str, int]]]:
    """Who may still free each allocated PASID: (global values, per-device values)."""
    glob: set[int] = set()
    rid: set[tuple[str, int]] = set()
    for m in k.mms.values():  # a live mm_struct frees its PASID at __mmdrop
        if m.pasid is not None and k.design.pasid_alloc is not PasidAlloc.PER_RID:
            glob.add(m.pasid)
    for (dev, mm), p in k.mm_rid_pasid.items():
        if mm in k.mms:
            rid.add((dev, p))
    for kdev, p in k.kernel_pasids:  # the kernel driver that allocated it frees it
        if kdev is None:
            glob.add(p)
        else:
            rid.add((kdev, p))
    for d, p in k.aux_pasids.items():  # freed with its aux domain
        if d in k.domains:
            glob.add(p)
    return glob, rid


def _no_leak(k: Kernel, b: Bounds) -> Violation | None:
    found: list[str] = []
    glob, rid = _pasid_owners(k)
    for p in sorted(k.global_pasids - glob):
        found.append(f"PASID {p} is allocated in the global IDA, but no mm, kernel user or aux "
                     f"domain holds it: nobody will free it")
    for dev, used in sorted(k.rid_pasids.items()):
        for p in sorted(used):
            if (dev, p) not in rid:
                found.append(f"PASID {p} is allocated in {dev}'s space, but nobody holds it")
    for (dev, mm), p in sorted(k.mm_rid_pasid.items()):
        if mm not in k.mms:
            found.append(f"mm{mm} was freed but its PASID {p} on {dev} is still recorded")
    on_mms = {d for m in k.mms.values() for d in m.sva_domains}
    dying = k.dying_domains()
    defaults = {g.default_domain for g in k.groups.values()}
    for d in sorted(k.domains.values(), key=lambda d: d.id):
        if d.static:
            continue
        if d.type is DomainType.DMA and d.id not in defaults:
            found.append(f"DMA domain d{d.id} is no group's default domain: nobody frees it")
        if d.type is DomainType.SVA and d.id not in on_mms and d.id not in dying:
            found.append(f"SVA domain d{d.id} is on no mm's sva_domains and no free_notifier "
                         f"is pending for it: nobody frees it")
    referenced = {e.handle for g in k.groups.values() for _, e in g.pasid_array if e.handle is not None}
    for h in sorted(k.handles.values(), key=lambda h: h.id):
        if h.kind == "attach" and h.id not in referenced:
            found.append(f"attach handle {h.id} is attached nowhere: iommufd no longer frees it")
    for n in sorted(k.notifiers.values(), key=lambda n: n.id):
        if n.state is NotifierState.REGISTERED and n.domain in k.domains \
                and k.domains[n.domain].type is DomainType.SVA and n.domain not in on_mms \
                and k.design.notifier_free is not NotifierFree.KFREE_EARLY:
            found.append(f"mmu_notifier {n.id} of d{n.domain} stays registered on mm{n.mm} "
                         f"though the domain is unused")
    found += k.driver.leaks(k)
    if found:
        return Violation("no-leak", found[0], tuple(found[1:]))
    return None


# -- refcounts -----------------------------------------------------------------------------
def _core_refcounts(k: Kernel) -> list[tuple[str, int, int]]:
    """(what, kept, recomputed) for every count the core keeps."""
    out: list[tuple[str, int, int]] = []
    handles_of: dict[int, int] = {}
    for h in k.handles.values():
        if h.kind == "sva" and h.domain is not None:
            handles_of[h.domain] = handles_of.get(h.domain, 0) + 1
    dying = k.dying_domains()
    for d in sorted(k.domains.values(), key=lambda d: d.id):
        if d.type is DomainType.SVA:
            out.append((f"SVA d{d.id} users (devices bound through it)", d.users, handles_of.get(d.id, 0)))
    for m in sorted(k.mms.values(), key=lambda m: m.id):
        # mm_count: the mm's own reference while it runs, one per SVA domain's cookie
        # (iommu_sva_domain_alloc's mmgrab, dropped by iommu_domain_free) and one per
        # mmu_notifier (dropped at unregister or after free_notifier).
        cookies = sum(1 for d in k.domains.values()
                      if d.type is DomainType.SVA and d.mm == m.id and d.id not in dying)
        notifiers = sum(1 for n in k.notifiers.values() if n.mm == m.id)
        out.append((f"mm{m.id} mm_count", m.count, int(not m.exited) + cookies + notifiers))
    for g in sorted(k.groups.values(), key=lambda g: g.name):
        if g.owner is not None and g.owner_cnt == 0:
            out.append((f"group {g.name} owner_cnt (owner {g.owner} set)", 0, 1))
        if g.owner_cnt > len(g.devices) and g.owner is None:
            out.append((f"group {g.name} owner_cnt (DMA-API drivers, one per device at most)",
                        g.owner_cnt, len(g.devices)))
    return out


def _refcount_matches(k: Kernel, b: Bounds) -> Violation | None:
    wrong = [f"{what} is {kept}, but it counts {real}"
             for what, kept, real in _core_refcounts(k) + k.driver.refcounts(k) if kept != real]
    if wrong:
        return Violation("refcount-matches", wrong[0], tuple(wrong[1:]))
    return None


# -- a failed call changes nothing -----------------------------------------------------------
#: What a failed call may leave changed, as the kernel documents it.
FAILED_CALL_SIDE_EFFECTS = (
    "iommu_sva_bind_device: the mm's PASID (mm->iommu_mm) stays allocated, for the mm's "
    "whole life (iommu_alloc_mm_data; kernel-core-api.md rows 40-41)",
    "iommu_aux_attach_device: the aux domain's default PASID, allocated on its first aux "
    "attach, stays with the domain",
    "a domain freed on the error path with mmu_notifier_put stays until its free_notifier "
    "runs after an SRCU grace period, with the notifier and its mmgrab",
    "fresh ids consumed, and PASID-table pages the VT-d driver allocates on first use "
    "(intel_pasid_get_entry never frees them)",
    "cache entries removed by invalidations (hardware caches are never compared)",
)


def _failed(result: Any) -> bool:
    return isinstance(result, ErrPtr) or (isinstance(result, int) and not isinstance(result, bool)
                                          and result < 0)


def _strip_pasid(mms: dict[int, Any]) -> dict[int, Any]:
    return {i: replace(m, pasid=None, count=0) for i, m in mms.items()}


def _api_diff(before: Kernel, after: Kernel, action: str) -> str | None:
    """The first API field a failed call changed beyond its documented side effects."""
    dying_after = {n.id for n in after.notifiers.values()
                   if n.state is NotifierState.PUT_PENDING and n.id not in before.notifiers}
    dying_doms = {after.notifiers[n].domain for n in dying_after}
    pairs: list[tuple[str, Any, Any]] = [
        ("groups", before.groups, after.groups),
        ("domains", before.domains,
         {i: d for i, d in after.domains.items() if i not in dying_doms}),
        ("handles", before.handles, after.handles),
        ("notifiers", before.notifiers,
         {i: n for i, n in after.notifiers.items() if i not in dying_after}),
        ("kernel PASIDs", before.kernel_pasids, after.kernel_pasids),
        ("module", before.module_loaded, after.module_loaded),
    ]
    bind = action == "iommu_sva_bind_device"
    aux = action == "iommu_aux_attach_device"
    if bind:
        # The mm's PASID (and, per RID, its per-device values) may stay allocated;
        # mm_count moves with a deferred free in flight.
        pairs.append(("mms", _strip_pasid(before.mms), _strip_pasid(after.mms)))
    else:
        pairs.append(("mms", before.mms, after.mms))
        pairs.append(("mm PASIDs", before.mm_rid_pasid, after.mm_rid_pasid))
        if not aux:
            pairs.append(("global PASIDs", before.global_pasids, after.global_pasids))
            pairs.append(("aux PASIDs", before.aux_pasids, after.aux_pasids))
        pairs.append(("per-RID PASIDs", {d: p for d, p in before.rid_pasids.items() if p},
                      {d: p for d, p in after.rid_pasids.items() if p}))
    for name, x, y in pairs:
        if x != y:
            return name
    return None


def _driver_diff(before: Kernel, after: Kernel) -> str | None:
    """The driver's bookkeeping (everything but the hardware unit with its caches)."""
    if not isinstance(before.drv, Declared) or not isinstance(after.drv, Declared):
        return None
    for f in before.drv.state_fields():
        if f.role.in_key and f.name != "unit" and \
                exact_key(f.role, getattr(before.drv, f.name)) != exact_key(f.role, getattr(after.drv, f.name)):
            return f"the driver's {f.name}"
    return None


def _table_diff(before: Kernel, after: Kernel) -> str | None:
    """A table word the call changed, other than filling a freshly allocated table page."""
    new_pages = after.mem.allocated - before.mem.allocated
    bw, aw = before.mem.words, after.mem.words
    for addr in sorted(set(bw) | set(aw)):
        old, new = bw.get(addr, 0), aw.get(addr, 0)
        if old == new:
            continue
        if addr & ~0xFFF in new_pages:
            continue
        if old == 0 and (new & 0x000F_FFFF_FFFF_F000) in new_pages:
            continue  # a directory entry now points at a fresh, empty table page
        return f"the table word at {addr:#x} ({old:#x} -> {new:#x})"
    return None


def _failed_call_unchanged(step: Step, b: Bounds) -> Violation | None:
    if not _failed(step.result):
        return None
    what = (_api_diff(step.before, step.after, step.action.name)
            or _driver_diff(step.before, step.after) or _table_diff(step.before, step.after))
    if what is None:
        return None
    return Violation(
        "failed-call-unchanged",
        f"{_call(step)} failed but changed {what}: a failed call must leave the API state "
        f"and the hardware tables as they were (a partial group operation undone on "
        f"exactly the devices it succeeded on)",
    )


KERNEL_BUGS: tuple[Invariant, ...] = (
    Invariant(
        "no-use-after-free",
        "No call, driver op or deferred callback uses (or frees again) a kernel object the "
        "kernel already freed: domains, attach and SVA handles, mm_structs, mmu notifiers, "
        "and the drivers' DID / ASID / cache-tag bookkeeping.",
        "What KASAN catches. The model marks each object freed where the kernel frees it "
        "(iommu_domain_free, free_notifier, the last unbind, __mmdrop, iommufd after a "
        "detach) and records every later access at the access, naming where it was freed. "
        "History: 'iommu/vt-d: Fix use-after-free in dmar_domain' class fixes, the SVA "
        "notifier races seed 003 discusses, unbind after the last unbind.",
        (), Layer.API, check_step=_no_use_after_free,
    ),
    Invariant(
        "no-kernel-warn",
        "No call from a correct caller reaches a WARN_ON that guards an internal consistency, "
        "or an oops (NULL dereference), in the core or a driver.",
        "Every WARN/oops site of the model carries its kernel function and condition and is "
        "classified (model/warn.py): misuse sites report a caller's error at an API entry "
        "and are allowed; bug sites (a must-succeed attach that failed, a (device, PASID) "
        "missing from a domain's dev_pasids at remove, a DID lookup on a domain with no "
        "iommu_domain_info) are violations. Seed 003 quotes one: WARN_ON_ONCE(!dev_pasid).",
        ("003_3c72ab6e8a843ef5.txt",), Layer.API, check_step=_no_kernel_warn,
        quote="WARN_ON_ONCE(!dev_pasid);",
    ),
    Invariant(
        "no-leak",
        "Every allocated PASID (in every allocator the designs have), DID, ASID, domain, attach "
        "handle and mmu notifier has a live owner that can still free it.",
        "What kmemleak catches, and the IDs it cannot see: a PASID the IDA holds that no mm, "
        "kernel user or aux domain owns is gone for good (the PASID space is small: 20 bits, "
        "and a device's max_pasids often far less); a DID or ASID held for a freed domain "
        "shrinks the ID space until reuse fails. Page-table pages are not checked: the "
        "model's memory keeps freed tables so that stale hardware pointers still walk.",
        (), Layer.API, check_state=_no_leak,
    ),
    Invariant(
        "refcount-matches",
        "Every count the core or a driver keeps equals the number of references it counts, "
        "recomputed from the state: SVA domain users, mm_count held by IOMMU code, group owner "
        "counts, VT-d DID refcounts and cache-tag users, SMMUv3 master_domain entries.",
        "A refcount that drifts frees too early (use-after-free) or never (leak), one call "
        "later than the bug; checking the count itself points at the call that made it "
        "wrong. Counted from the core's attachments (group->domain, pasid_array), the SVA "
        "handles, the SVA domains' mmgrab and the notifiers' mmgrab.",
        (), Layer.API, check_state=_refcount_matches,
    ),
    Invariant(
        "failed-call-unchanged",
        "A call that returns an error leaves the API state, the driver's bookkeeping and the "
        "hardware tables as they were, except for the side effects the kernel documents.",
        "Error paths run rarely and are where state is left half-changed: a group PASID "
        "attach that fails on its second device must undo the first, exactly the first. "
        "Allowed side effects: " + "; ".join(FAILED_CALL_SIDE_EFFECTS) + ".",
        (), Layer.API, check_step=_failed_call_unchanged,
    ),
)


__all__ = ["FAILED_CALL_SIDE_EFFECTS", "KERNEL_BUGS"]
