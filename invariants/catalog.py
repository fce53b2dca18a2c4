"""The invariant catalog: what every implementation of the IOMMU API must guarantee.

Each entry carries its statement, its rationale (with the kernel history it
reflects), the seed files it comes from and the seed sentence it makes precise.
`docs/invariants.md` is generated from this table by `iommucheck docs`.

Seed files (../shared/seeds/):
  000_5d95e02cbbab3d3a.txt  2022, attach/detach_dev_pasid vs set_dev_pasid(blocking)
  001_218348e09bb14a03.txt  2021, global PASIDs for ENQCMD
  002_d140947772abe919.txt  2018, aux domains, no attach_device while PASID users exist
  003_3c72ab6e8a843ef5.txt  2024, VT-d SVA domains sharing one DID, free after notifier
  004_b0f85d91fc5ccfc6.txt  2019, the SVA bind handle and mm exit
"""

from __future__ import annotations

from typing import Iterable

from hwspec.outcome import Access, Kind

from invariants.base import Invariant, Layer, Step, UnknownInvariant, Violation
from invariants.contracts import ERRNO_CONTRACT
from invariants.device_life import DEVICE_LIFE
from invariants.kernel_bugs import KERNEL_BUGS
from invariants.model_exception import MODEL_EXCEPTION_INVARIANT
from model.actions import USER_OWNER, Kind as P, show_domain, values
from model.bounds import Bounds
from model.core import Kernel
from model.objects import DomainType, NotifierState
from model.warn import KernelWarning
from model.semantics import domain_for, effect_of, expected_effect, show_effect

S000 = "000_5d95e02cbbab3d3a.txt"
S001 = "001_218348e09bb14a03.txt"
S002 = "002_d140947772abe919.txt"
S003 = "003_3c72ab6e8a843ef5.txt"
S004 = "004_b0f85d91fc5ccfc6.txt"


def _why(k: Kernel, dev: str, pasid: int | None) -> str:
    dom_id = domain_for(k, dev, pasid)
    where = "the RID" if pasid is None else f"pasid {pasid}"
    if dom_id is None:
        return f"nothing is attached at {where} of {dev}"
    dom = k.domains.get(dom_id)
    if dom is None:
        return f"{show_domain(dom_id)} at {where} of {dev} was freed"
    if dom.type is DomainType.SVA:
        mm = k.mms.get(dom.mm) if dom.mm is not None else None
        state = "has exited" if mm is None or mm.exited else "is live"
        return f"{where} of {dev} is bound to mm{dom.mm} (SVA {show_domain(dom_id)}), which {state}"
    if dom.type is DomainType.NESTED and dom.parent is not None:
        return (f"{where} of {dev} is attached to {show_domain(dom_id)} (NESTED on "
                f"{show_domain(dom.parent)})")
    return f"{where} of {dev} is attached to {show_domain(dom_id)} ({dom.type.value})"


def _installed(k: Kernel) -> list[tuple[int, int | None, tuple[object, ...], int, str]]:
    return k.memoized("installed", lambda: k.driver.installed(k))


def _requests(k: Kernel, b: Bounds) -> Iterable[tuple[str, int | None, int]]:
    for dev in values(P.DEV, k, b):
        for pasid in values(P.ANY_PASID, k, b):
            for iova in b.iovas():
                yield dev, pasid, iova


# -- hardware agrees with the API ---------------------------------------------------
def _no_stale_translation(k: Kernel, b: Bounds) -> Violation | None:
    for dev, pasid, iova in _requests(k, b):
        want = expected_effect(k, dev, pasid, iova, Access.READ)
        outcomes = k.dma(dev, pasid, iova, Access.READ)
        if all(effect_of(o, iova) == want for o in outcomes):
            continue  # the common case, without sorting (sorted only for a stable report)
        for o in sorted(outcomes, key=str):
            got = effect_of(o, iova)
            if got != want:
                where = "no pasid" if pasid is None else f"pasid {pasid}"
                return Violation(
                    "no-stale-translation",
                    f"dma({dev}, {where}, iova {iova:#x}) {o}, but the API state says "
                    f"{show_effect(want)}: {_why(k, dev, pasid)}",
                    _evidence(k, o.via),
                )
    return None


def _evidence(k: Kernel, via: str) -> tuple[str, ...]:
    """The dump lines that show the path an outcome took."""
    lines = k.driver.dump(k)
    key = via.split(" (")[0].lower()
    hits = [ln.strip() for ln in lines if key != "walk" and key in ln.lower()]
    return tuple(hits[:6]) or tuple(ln.strip() for ln in lines[:12])


def _detached_pasid_blocked(step: Step, b: Bounds) -> Violation | None:
    """After a PASID detach (or the last unbind), DMA with that PASID faults."""
    name = step.action.name
    if name == "iommu_detach_device_pasid":
        _, dev, pasid = step.args
    elif name == "iommu_sva_unbind_device":
        h = step.before.handles.get(step.args[0])
        if h is None or h.users != 1 or h.dev is None or h.pasid is None:
            return None
        dev, pasid = h.dev, h.pasid
    else:
        return None
    k = step.after
    g = k.group_of(dev)
    if g is None or g.pasid_entry(pasid) is not None:
        return None
    for d in g.devices:
        for iova in b.iovas():
            for o in sorted(k.dma(d, pasid, iova, Access.READ), key=str):  # same report on every hash seed
                if o.kind is not Kind.FAULT:
                    return Violation(
                        "detached-pasid-blocked",
                        f"after {name}, dma({d}, pasid {pasid}, iova {iova:#x}) {o}",
                        _evidence(k, o.via),
                    )
    return None


def _mm_exit_stops_dma(k: Kernel, b: Bounds) -> Violation | None:
    """No device reaches an exited process's memory, though its bind handle lives on."""
    for h in sorted(k.handles.values(), key=lambda h: h.id):
        if h.kind != "sva" or h.domain is None or h.pasid is None:
            continue
        dom = k.domains.get(h.domain)
        if dom is None or dom.mm is None:
            continue
        mm = k.mms.get(dom.mm)
        if mm is not None and not mm.exited:
            continue
        g = k.group_of(h.dev) if h.dev is not None else None
        for dev in (g.devices if g is not None else ()):
            for iova in b.iovas():
                for o in sorted(k.dma(dev, h.pasid, iova, Access.READ), key=str):
                    if o.kind is Kind.TRANSLATED:
                        return Violation(
                            "mm-exit-stops-dma",
                            f"mm{dom.mm} has exited, yet dma({dev}, pasid {h.pasid}, iova {iova:#x}) {o}",
                            _evidence(k, o.via),
                        )
    return None


def _asid_known_at_detach(k: Kernel, b: Bounds) -> Violation | None:
    """Every IOTLB/TLB entry agrees with the page table its tag stands for now."""
    drv = k.driver
    installed: dict[tuple[object, ...], set[int]] = {}
    for _, _, tag, root, _ in _installed(k):
        installed.setdefault(tag, set()).add(root)
    for tag, iova_pfn, pfn, text in sorted(drv.cached_translations(k)):
        roots = installed.get(tag, set()) | drv.tag_owner_roots(k, tag)
        if not roots:
            return Violation(
                "asid-known-at-detach",
                f"{text}: its tag {_tag(tag)} belongs to nothing any more; it was not "
                f"invalidated when its owner was detached or freed",
                (text,),
            )
        for root in sorted(roots):
            pte = k.mem.walk(root, iova_pfn)
            if pte is None or pte.pfn != pfn:
                now = "no mapping" if pte is None else f"pa {pte.pfn << 12:#x}"
                return Violation(
                    "asid-known-at-detach",
                    f"{text}: tag {_tag(tag)} now stands for the page table @{root:#x}, which "
                    f"has {now} there; the entry was not flushed when the tag changed owner "
                    f"(a detach, a free, or a tag shared with another domain)",
                    (text,),
                )
    return None


def _tag(tag: tuple[object, ...]) -> str:
    if tag[0] == "did":
        return f"(DID {tag[1]}, PASID {tag[2]})"
    return f"(VMID {tag[1]}, ASID {tag[2]})"


def _did_pasid_tag_unique(k: Kernel, b: Bounds) -> Violation | None:
    """Entries sharing a cache tag on one IOMMU point at one page table."""
    seen: dict[tuple[object, ...], tuple[int, str]] = {}
    for _, _, tag, root, text in _installed(k):
        if tag in seen and seen[tag][0] != root:
            return Violation(
                "did-pasid-tag-unique",
                f"two entries share the tag {_tag(tag)} but translate through different "
                f"page tables (@{seen[tag][0]:#x} and @{root:#x}): IOTLB entries one fills serve the other",
                (seen[tag][1], text),
            )
        seen.setdefault(tag, (root, text))
    return None


def _tables_match_core(k: Kernel, b: Bounds) -> Violation | None:
    """The fresh table walk (no caches) gives what the core's attachments say."""
    for dev, pasid, iova in _requests(k, b):
        want = expected_effect(k, dev, pasid, iova, Access.READ)
        walk = [o for o in k.dma(dev, pasid, iova, Access.READ) if o.via == "walk"]
        for o in walk:
            if effect_of(o, iova) != want:
                where = "no pasid" if pasid is None else f"pasid {pasid}"
                return Violation(
                    "tables-match-core",
                    f"the table walk for ({dev}, {where}, iova {iova:#x}) {o}, but "
                    f"{_why(k, dev, pasid)}",
                    tuple(ln.strip() for ln in k.driver.dump(k)[:16]),
                )
    return None


# -- ownership and PASID identity --------------------------------------------------------
def _rid_owner_is_user(k: Kernel, g_name: str) -> bool:
    g = k.groups[g_name]
    if g.owner == USER_OWNER:
        return True
    # Before DMA ownership existed (seed 002), attaching an UNMANAGED domain to the
    # whole device was how VFIO handed it to a guest.
    dom = k.domains.get(g.domain) if g.domain is not None else None
    return bool(k.design.handover_by_attach and dom is not None and dom.type is DomainType.UNMANAGED)


def _exclusive_device_ownership(k: Kernel, b: Bounds) -> Violation | None:
    for g in k.groups.values():
        if not _rid_owner_is_user(k, g.name):
            continue
        for pasid, e in g.pasid_array:
            dom = k.domains.get(e.domain)
            owner = (f"process mm{dom.mm}" if dom is not None and dom.type is DomainType.SVA
                     else "a kernel driver")
            return Violation(
                "exclusive-device-ownership",
                f"group {g.name} is handed whole to user space ({show_domain(g.domain or 0)} on the RID), "
                f"yet pasid {pasid} still translates for {owner} ({show_domain(e.domain)})",
            )
    return None


HANDOVERS = ("iommu_device_claim_dma_owner", "iommu_group_claim_dma_owner")


def _no_attach_while_pasid_users(step: Step, b: Bounds) -> Violation | None:
    name = step.action.name
    handover = name in HANDOVERS or (
        name == "iommu_attach_device" and step.before.design.handover_by_attach
    )
    if not handover or step.result != 0:
        return None
    dev = step.args[1] if name == "iommu_attach_device" else step.args[0]
    g = step.before.group_of(dev)
    if g is None or not g.pasid_array:
        return None
    pasids = ", ".join(str(p) for p, _ in g.pasid_array)
    return Violation(
        "no-attach-while-pasid-users",
        f"{name} on {dev} succeeded while pasid(s) {pasids} of its group still had users",
    )


def _global_pasid_consistent(k: Kernel, b: Bounds) -> Violation | None:
    """An ENQCMD PASID (IA32_PASID) means its process on every device, and nothing else."""
    for mm in sorted(k.mms.values(), key=lambda m: m.id):
        if mm.msr_pasid is None or mm.exited:
            continue
        for g in sorted(k.groups.values(), key=lambda g: g.name):
            e = g.pasid_entry(mm.msr_pasid)
            if e is None:
                continue
            dom = k.domains.get(e.domain)
            if dom is None or dom.type is not DomainType.SVA or dom.mm != mm.id:
                what = "a freed domain" if dom is None else (
                    f"mm{dom.mm}'s address space" if dom.type is DomainType.SVA
                    else f"{show_domain(e.domain)} ({dom.type.value})")
                return Violation(
                    "global-pasid-consistent",
                    f"mm{mm.id}'s threads carry IA32_PASID {mm.msr_pasid}, but on group {g.name} "
                    f"pasid {mm.msr_pasid} is {what}: ENQCMD from mm{mm.id} reaches it",
                )
    return None


def _pasid_not_reused_while_bound(k: Kernel, b: Bounds) -> Violation | None:
    """A PASID is free in the allocator only when no table, cache or MSR holds it."""
    free_yet_held: list[str] = []
    hw_held = k.driver.pasids_in_hw(k)
    for pasid in range(1, b.max_pasids):
        if pasid in k.allocated_pasids():
            continue
        holders = [g.name for g in k.groups.values() if g.pasid_entry(pasid) is not None]
        holders += [f"mm{m.id} IA32_PASID" for m in k.mms.values() if m.msr_pasid == pasid]
        if pasid in hw_held:
            holders.append("hardware tables/caches")
        if holders:
            free_yet_held.append(f"pasid {pasid} is free in the allocator but held by {', '.join(holders)}")
    if free_yet_held:
        return Violation("pasid-not-reused-while-bound", free_yet_held[0], tuple(free_yet_held[1:]))
    return None


# -- lifetimes --------------------------------------------------------------------------
def _sva_handle_refcount(k: Kernel, b: Bounds) -> Violation | None:
    """Each live SVA handle is the one pasid_array entry of its (group, PASID)."""
    for h in k.handles.values():
        if h.kind != "sva":
            continue
        if h.users < 1 or h.dev is None or h.domain is None:
            return Violation("sva-handle-refcount", f"sva{h.id} is live with users={h.users}")
        g = k.group_of(h.dev)
        if g is None or h.pasid is None or h.domain not in k.domains:
            return Violation("sva-handle-refcount", f"sva{h.id} outlives its domain or its PASID")
        e = g.pasid_entry(h.pasid)
        if e is None or e.handle != h.id:
            return Violation(
                "sva-handle-refcount",
                f"sva{h.id} (users {h.users}) is live but pasid {h.pasid} of group {g.name} "
                f"holds {e}: the bond ended before the last unbind",
            )
    return None


def _sva_bind_returns_existing(step: Step, b: Bounds) -> Violation | None:
    if step.action.name != "iommu_sva_bind_device" or not isinstance(step.result, int):
        return None
    dev, mm = step.args
    before = step.before
    g = before.group_of(dev)
    m = before.mms.get(mm)
    if g is None or m is None:
        return None
    # the PASID this mm already uses on dev (per device in per-RID designs)
    pasid = before.mm_rid_pasid.get((dev, mm)) if before.mm_rid_pasid else m.pasid
    if pasid is None:
        return None
    e = g.pasid_entry(pasid)
    h = before.handles.get(e.handle) if e is not None and e.handle is not None else None
    if h is not None and h.kind == "sva" and h.domain in before.domains \
            and before.domains[h.domain].mm == mm:
        if step.result != h.id:
            return Violation(
                "sva-handle-refcount",
                f"bind({dev}, mm{mm}) returned sva{step.result}, not the existing handle sva{h.id}",
            )
    return None


def _domain_outlives_notifier(k: Kernel, b: Bounds) -> Violation | None:
    for n in k.notifiers.values():
        if n.state is NotifierState.REGISTERED and n.domain not in k.domains:
            return Violation(
                "domain-outlives-notifier",
                f"{show_domain(n.domain)} was freed while its mmu_notifier on mm{n.mm} is still "
                f"registered: the next invalidate or release calls into freed memory",
            )
    return None


def _uaf_warnings(step: Step, b: Bounds) -> Violation | None:
    for w in step.new_warnings:
        if _site_of(w) == "notifier_freed_domain":
            return Violation("domain-outlives-notifier", w)
    return None


def _site_of(w: str) -> str | None:
    """The declared WARN site of a recorded warning (model/warn.py)."""
    return w.site.id if isinstance(w, KernelWarning) else None


def _no_callback_after_unload(k: Kernel, b: Bounds) -> Violation | None:
    if k.module_loaded:
        return None
    for n in k.notifiers.values():
        if n.state is NotifierState.PUT_PENDING:
            return Violation(
                "no-callback-after-module-unload",
                f"the IOMMU driver module is unloaded while free_notifier of {show_domain(n.domain)} "
                f"is still queued behind an SRCU grace period: it will run in freed module text",
            )
    return None


def _callback_warnings(step: Step, b: Bounds) -> Violation | None:
    for w in step.new_warnings:
        if _site_of(w) in ("notifier_after_unload", "free_notifier_after_unload"):
            return Violation("no-callback-after-module-unload", w)
    return None


def _hitless_entry_update(step: Step, b: Bounds) -> Violation | None:
    for w in step.new_warnings:
        if _site_of(w) in ("smmu_torn_entry", "vtd_torn_entry"):
            return Violation("hitless-entry-update", w)
    return None


def _table_freed_while_cached(step: Step, b: Bounds) -> Violation | None:
    """A free of a table page that a walk cache still pointed at, during the step (a free
    before its flush passes the state check: the flush comes later in the same step)."""
    for w in step.new_warnings:
        if _site_of(w) == "table_freed_while_cached":
            return Violation("walk-cache-live", w)
    return None


def _walk_cache_live(k: Kernel, b: Bounds) -> Violation | None:
    """Every walk-cache entry points at the leaf table page its table has now for its region."""
    leaf_tables = k.mem.leaf_tables
    stale = [e for e in k.driver.walk_cache_entries(k)
             if leaf_tables.get((e.root, e.region)) != e.table]
    if stale:
        e = min(stale, key=str)  # the report names one, the same one every run
        root, table, what = e.root, e.table, str(e)
        if table not in k.mem.table_pool:
            now = "a freed page"
        elif (owner := k.mem.table_owner(table)) is not None:
            now = f"the leaf table of pagetable @{owner[0]:#x}"
        else:
            now = "a page that is no leaf table"
        return Violation(
            "walk-cache-live",
            f"{what}: the page the walk cached for pagetable @{root:#x} is now {now}",
            tuple(ln.strip() for ln in k.driver.dump(k) if "leaf table" in ln)[:6],
        )
    return None


def _nested_cache_current(k: Kernel, b: Bounds) -> Violation | None:
    """Every cached combined (nested) translation is what the guest's stage-1 and the
    parent's stage-2 give now, under the nested domain its tag belongs to. A tag the
    guest owns (SMMUv3: its ASID under the parent's VMID) outlives its nested domain:
    its stage-1 half is then the guest's to invalidate, its stage-2 half still the host's."""
    drv = k.driver
    for tag, iova_pfn, ipa_pfn, pfn, text in sorted(drv.nested_translations(k)):
        pairs: list[tuple[int | None, int | None]] = [
            (d, k.domains[d].parent) for d in drv.tag_nested_domains(k, tag)]
        if not pairs:
            guest_parent = drv.tag_guest_parent(k, tag)
            if guest_parent is None:
                return Violation(
                    "nested-cache-current",
                    f"{text}: its tag {_tag(tag)} belongs to no nested domain any more; it was "
                    f"not invalidated when its domain was detached or freed", (text,))
            pairs = [(None, guest_parent)]
        for d, parent_id in pairs:
            whose = f"of {show_domain(d)}, nested on it" if d is not None else "(the guest's)"
            if d is not None:
                dom = k.domains[d]
                first = k.mem.walk(dom.pgtable, iova_pfn) if dom.pgtable is not None else None
                if first is None or first.pfn != ipa_pfn:
                    return Violation(
                        "nested-cache-current",
                        f"{text}: tag {_tag(tag)} is {show_domain(d)}'s, whose stage-1 table maps "
                        f"iova {iova_pfn << 12:#x} to "
                        f"{'nothing' if first is None else hex(first.pfn << 12)}", (text,))
            parent = k.domains.get(parent_id) if parent_id is not None else None
            if parent is None or parent.pgtable is None:
                return Violation(
                    "nested-cache-current",
                    f"{text}: {show_domain(d) if d is not None else 'its'} nesting parent was freed",
                    (text,))
            second = k.mem.walk(parent.pgtable, ipa_pfn)
            if second is None or second.pfn != pfn:
                now = "no mapping" if second is None else f"pa {second.pfn << 12:#x}"
                return Violation(
                    "nested-cache-current",
                    f"{text}: the nesting parent {show_domain(parent.id)} now has {now} at ipa "
                    f"{ipa_pfn << 12:#x}; its change was not invalidated under the tag "
                    f"{_tag(tag)} {whose}",
                    (text,))
    return None


CATALOG: tuple[Invariant, ...] = (
    Invariant(
        "no-stale-translation",
        "For every device, PASID (or none) and IOVA, every outcome the hardware may produce "
        "now equals what the API state says: the attached domain's or process's mapping, "
        "bypass for identity, a fault for blocked or unattached.",
        "The central isolation property. Every other hardware invariant is a special case "
        "that names its cause. A stale IOTLB, PASID-cache or device-TLB entry after a detach, "
        "an unmap or a process exit lets a device reach memory its owner no longer maps.",
        (S000, S003), Layer.HW, check_state=_no_stale_translation,
        quote="In concept after a PASID is detached it's essentially blocked.",
    ),
    Invariant(
        "detached-pasid-blocked",
        "After iommu_detach_device_pasid (or the unbind that drops the last reference), "
        "DMA with that PASID faults on every device of the group.",
        "Seed 000 settled that detach means 'attach the blocking domain': whatever the "
        "driver does internally, the PASID must block. v6.14 made it literal "
        "(blocked_domain->set_dev_pasid replaced remove_dev_pasid).",
        (S000,), Layer.HW, check_step=_detached_pasid_blocked,
        quote="Then 'detach pasid' is: iommu_ops->blocking_domain->ops->attach_dev_pasid(domain, dev, pasid);",
    ),
    Invariant(
        "asid-known-at-detach",
        "Every IOTLB/TLB entry tagged with an ASID (SMMUv3) or a DID+PASID (VT-d) agrees "
        "with the page table that tag stands for now; a tag whose owner is gone has no entries.",
        "Detach must invalidate what the old domain left cached under its tag before the tag "
        "can mean something else. On SMMUv3 the tag is the CD's ASID, not the PASID, so the "
        "driver must know the old domain at detach (Jean-Philippe Brucker, seed 000). Mainline "
        "passes `old` to set_dev_pasid since v6.13 (b45a3777ceab).",
        (S000,), Layer.HW, check_state=_asid_known_at_detach,
        quote="detach() also needs to invalidate TLBs, and for that the SMMU driver needs to "
              "know the old ASID (!= PASID) that was used by the context descriptor.",
    ),
    Invariant(
        "did-pasid-tag-unique",
        "Present entries that share a cache tag on one IOMMU (DID+PASID on VT-d, ASID on "
        "SMMUv3) translate through the same page table.",
        "The IOTLB is looked up by the tag, so two domains with one tag serve each other's "
        "cached translations. VT-d SVA domains all use FLPT_DEFAULT_DID and are told apart "
        "only by their (globally unique) PASIDs; sharing a DID is safe exactly when PASIDs "
        "are unique on that IOMMU (Baolu Lu, seed 003).",
        (S003,), Layer.HW, check_state=_did_pasid_tag_unique,
        quote="In general, for devices under a single IOMMU, domains with unique PASIDs can "
              "share the same domain ID.",
    ),
    Invariant(
        "tables-match-core",
        "A fresh walk of the hardware tables (ignoring caches) gives exactly what the core's "
        "attachments say for every device, PASID and IOVA.",
        "Separates table bugs from cache bugs: if this holds and no-stale-translation fails, "
        "the driver programmed the right entries but invalidated the wrong tag.",
        (), Layer.HW, check_state=_tables_match_core,
    ),
    Invariant(
        "exclusive-device-ownership",
        "A device handed whole to user space has no PASID still translating for a kernel "
        "driver or a process.",
        "A guest or a VFIO user that owns the RID must not share the device with PASID users "
        "it does not control: their DMA would go through a device the user programs. "
        "Mainline enforces it at the DMA-ownership claim (-EBUSY while pasid_array is "
        "non-empty, v5.19+); the 2018 proposal enforced it at iommu_attach_device.",
        (S002,), Layer.API, check_state=_exclusive_device_ownership,
        quote="This should make us safe against a device being attached to a guest as a whole "
              "while there are still pasid users on it (aux and sva).",
    ),
    Invariant(
        "no-attach-while-pasid-users",
        "A call that hands the whole device to a new owner (DMA-ownership claim; before v5.19, "
        "iommu_attach_device of an UNMANAGED domain) does not succeed while the group has "
        "PASID users.",
        "The guard of seed 002 ('any tries to call iommu_attach_device() should fail'): "
        "detach cannot fail, so the hand-over must. Mainline moved the guard to "
        "iommu_device_claim_dma_owner and lets the same owner attach a RID domain while its "
        "own PASIDs are attached (scenario row 30).",
        (S002,), Layer.API, check_step=_no_attach_while_pasid_users,
        quote="as long as domains are attached to a device through this interface, any trys to "
              "call iommu_attach_device() should fail",
    ),
    Invariant(
        "global-pasid-consistent",
        "A process's ENQCMD PASID (its IA32_PASID) is, on every device, either unattached or "
        "that process's own SVA binding.",
        "ENQCMD takes the PASID from a per-thread MSR, so one process has one PASID for every "
        "device and IOMMU; an allocation that is only unique per RID lets the same value mean "
        "another address space elsewhere. Mainline allocates SVA PASIDs from one global IDA "
        "(v6.6, 2dcebc7ddce7) and keeps them for the mm's life (v5.18, 701fac40384f).",
        (S001,), Layer.API, check_state=_global_pasid_consistent,
        quote="it should flag that allocation request with a 'must work for all RIDs flag'",
    ),
    Invariant(
        "pasid-not-reused-while-bound",
        "A PASID is free in the allocator only when no pasid_array entry, hardware table or "
        "cache entry, or IA32_PASID MSR still holds it.",
        "Freeing a PASID at mm exit while the device driver has not unbound yet hands the "
        "value to the next process while the old binding lives: 'Fix PASID use-after-free' "
        "(v5.18-rc) moved mm_pasid_drop from __mmput to __mmdrop for this reason.",
        (S001, S004), Layer.API, check_state=_pasid_not_reused_while_bound,
        quote="I now think that device driver should always call unbind() to release the "
              "iommu_sva handle, even if they got notified by mm_exit.",
    ),
    Invariant(
        "sva-handle-refcount",
        "bind(dev, mm) twice returns one handle, and the binding lives until the last unbind.",
        "The handle proposed in seed 004 is refcounted: drivers bind per open file and unbind "
        "per release. v6.2-v6.7 returned a new handle per bind; v6.8-rc6 (65d4418c5002) "
        "restored sharing.",
        (S004,), Layer.API, check_state=_sva_handle_refcount, check_step=_sva_bind_returns_existing,
        quote="How about a 'struct iommu_sva' with an iommu-private definition that is returned "
              "by this function",
    ),
    Invariant(
        "mm-exit-stops-dma",
        "After a process exits, no device reaches its memory, though its bind handle lives "
        "until unbind.",
        "exit_mmap runs the notifier's release before the page tables go: VT-d tears the "
        "PASID entries down with faults ignored, SMMUv3 installs the EPD0 CD. The handle, "
        "the pasid_array entry and the PASID stay until the driver unbinds (v5.8 mail).",
        (S004,), Layer.HW, check_state=_mm_exit_stops_dma,
        quote="unbind would have failed if the mm had exited before the device driver called unbind",
    ),
    Invariant(
        "domain-outlives-notifier",
        "An SVA domain is not freed while its mmu_notifier can still call into it.",
        "The notifier is embedded in the domain; freeing the domain first turns the next "
        "invalidate_range or release into a use-after-free. mmu_notifier_put with a "
        "free_notifier callback defers the kfree past the SRCU grace period (seed 003).",
        (S003,), Layer.API, check_state=_domain_outlives_notifier, check_step=_uaf_warnings,
        quote="dmar_domain free is defered to the mmu free_notifier callback.",
    ),
    Invariant(
        "no-callback-after-module-unload",
        "No free_notifier callback is pending when the IOMMU driver's module is gone.",
        "mmu_notifier_put queues free_notifier behind SRCU; the module's exit must call "
        "mmu_notifier_synchronize() or the callback runs in freed module text (seed 003).",
        (S003,), Layer.API, check_state=_no_callback_after_unload, check_step=_callback_warnings,
        quote="Also you need to have mmu notifier call on module unload when using this scheme.",
    ),
    Invariant(
        "hitless-entry-update",
        "Every entry value hardware can read during an update is the old entry, the new "
        "entry (on the bits each uses), or invalid: SMMUv3 STEs and CDs after any 64-bit "
        "store; VT-d PASID and context entries as a multi-transaction fetch may assemble "
        "them from the values each qword held since the last covering invalidation "
        "(hwspec/vtd/writer.py).",
        "SMMUv3 updates STEs and CDs live, qword by qword (arm_smmu_write_entry). VT-d "
        "hardware may fetch a 64-byte PASID entry in several transactions: the driver must "
        "clear P, invalidate the PASID cache, and only then rewrite the rest (75ed00055c05); "
        "the in-place replace helpers were removed for the same hazard (c3b1edea3791, "
        "CVE-2026-45945). A mixed entry translates with half of each configuration. Seed "
        "000's set_dev_pasid replaces the domain of a live PASID: the replace is where it tears.",
        (S000,), Layer.HW, check_step=_hitless_entry_update,
    ),
    Invariant(
        "walk-cache-live",
        "No paging-structure (walk) cache entry points at a page-table page that is no longer "
        "the table its walk went through: freed, or reused for another table.",
        "An IOMMU caches the non-leaf entries of its walks. Freeing a page-table page before "
        "the invalidation that drops those pointers (VT-d: a page-selective invalidation with "
        "IH = 0, or by DID / PASID; SMMUv3: TLBI with Leaf = 0, or by ASID) lets the hardware "
        "walk the page after it is reused: a DMA through another domain's table, or whatever "
        "the page holds next. The kernel frees table pages only after that flush: VT-d's "
        "iotlb_sync sets IH from the gather's freelist, io-pgtable-arm calls tlb_flush_walk "
        "before it frees, and the x86 SVA case (the kernel half of every process page table, "
        "which the IOMMU walks too) needed e37d5a2d60a3 (CVE-2025-71202).",
        (), Layer.HW, check_state=_walk_cache_live, check_step=_table_freed_while_cached,
    ),
    Invariant(
        "nested-cache-current",
        "After a change to a nesting parent, no cached translation derived from it survives "
        "under the tag of any domain nested on it: every cached combined (stage-1 + stage-2) "
        "entry is what the nested domain's stage-1 table and its parent's stage-2 table give "
        "now, and its tag belongs to a live nested domain (or, for a tag the guest owns, "
        "SMMUv3's guest ASID under the parent's VMID, its stage-2 half is current: the "
        "guest invalidates its own stage 1).",
        "A nested domain's translations are cached under its own tag (VT-d: the nested "
        "domain's DID and the PASID; SMMUv3: VMID and the guest's ASID), not under the "
        "parent's, so an unmap on the parent that invalidates only the parent's own tags "
        "leaves the guest's DMA reaching the unmapped page. VT-d's first nesting support "
        "(v6.7) shipped that way and needed 821985301124 'Add missing iotlb flush for parent "
        "domain' and 5e54e861f16f 'Add missing device iotlb flush for parent domain' (the "
        "NESTING_IOTLB / NESTING_DEVTLB cache tags since v6.10); SMMUv3 follows an S2 "
        "invalidation with TLBI_NH_ALL by VMID and a full ATC flush for nested ATS masters. "
        "Seed 003 looks ahead to nested domains sharing one DID, which this invariant (and "
        "did-pasid-tag-unique) judge too.",
        (S003,), Layer.HW, check_state=_nested_cache_current,
        quote="This will also benefit the nesting case, where user domains nested on the same "
              "parent could share a domain ID.",
    ),
    ERRNO_CONTRACT,
) + DEVICE_LIFE + KERNEL_BUGS + (MODEL_EXCEPTION_INVARIANT,)


BY_ID: dict[str, Invariant] = {i.id: i for i in CATALOG}


def get(ids: Iterable[str] | None = None) -> tuple[Invariant, ...]:
    if ids is None:
        return CATALOG
    out = []
    for i in ids:
        if i not in BY_ID:
            raise UnknownInvariant(f"unknown invariant {i!r} (see `iommucheck invariants`)")
        out.append(BY_ID[i])
    return tuple(out)
