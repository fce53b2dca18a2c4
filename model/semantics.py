"""What the API state says a DMA must do: the reference the hardware is judged against.

For a device, a PASID (or None for RID traffic) and an IOVA, the core's state
alone decides the one permitted effect: translated through the attached
domain's page table (or the bound process's page table for SVA; for a nested domain
the guest's stage-1 table, then its parent's), bypass for an
identity domain, or a fault (blocked, nothing attached, the process exited).
`no-stale-translation` demands that every outcome hwspec's `translate` allows
has exactly this effect.
"""

from __future__ import annotations

from hwspec.memory import PAGE_SHIFT, Prot, Pte
from hwspec.outcome import Access, Kind, Outcome

from model.core import BLOCKED_DOMAIN_ID, Kernel
from model.objects import DomainType

Effect = tuple[Kind, int | None]
FAULT: Effect = (Kind.FAULT, None)
BYPASS: Effect = (Kind.BYPASS, None)


def domain_for(k: Kernel, dev: str, pasid: int | None) -> int | None:
    """The domain the core has attached for (dev, pasid): group->domain or pasid_array[pasid],
    and the blocking domain for every (dev, pasid) of a device being reset."""
    g = k.group_of(dev)
    if g is None:
        return None
    if dev in k.resetting:
        return BLOCKED_DOMAIN_ID  # between pci_dev_reset_iommu_prepare and _done
    if pasid is None:
        return g.domain
    if k.devices[dev].max_pasids == 0:
        return None  # the core never programs PASIDs on such a device (row 19)
    e = g.pasid_entry(pasid)
    return None if e is None else e.domain


def expected_effect(k: Kernel, dev: str, pasid: int | None, iova: int, access: Access) -> Effect:
    """The one effect the API state permits (faults compare by kind, not by reason)."""
    dom_id = domain_for(k, dev, pasid)
    dom = k.domains.get(dom_id) if dom_id is not None else None
    if dom is None:
        return FAULT
    if dom.type is DomainType.BLOCKED:
        return FAULT
    if dom.type is DomainType.IDENTITY:
        return BYPASS
    if dom.type is DomainType.SVA:
        mm = k.mms.get(dom.mm) if dom.mm is not None else None
        if mm is None or mm.exited:
            return FAULT  # mm-exit-stops-dma: the handle lives on, the address space does not
        root = mm.pgd
    else:
        assert dom.pgtable is not None
        root = dom.pgtable
    pte = k.mem.walk(root, iova >> PAGE_SHIFT)
    if pte is not None and dom.type is DomainType.NESTED:
        # the guest's stage-1 gives the IPA, the parent's stage-2 the page (permissions of both)
        parent = k.domains.get(dom.parent) if dom.parent is not None else None
        second = k.mem.walk(parent.pgtable, pte.pfn) if parent is not None and parent.pgtable else None
        pte = None if second is None else Pte(second.pfn, pte.prot & second.prot)
    if pte is None:
        return FAULT
    if access & Access.WRITE and not pte.prot & Prot.WRITE:
        return FAULT
    return (Kind.TRANSLATED, (pte.pfn << PAGE_SHIFT) | (iova & ((1 << PAGE_SHIFT) - 1)))


def effect_of(o: Outcome, iova: int) -> Effect:
    """What a hardware outcome does, as `expected_effect` says it: faults compare by
    kind, not by reason or path. An identity translation of `iova` is what bypass
    does: an ATS Translation Completion for a bypassed stream (SMMUv3 S1DSS=BYPASS
    with EATS) returns pa = iova, and the ATC caches it as a translation."""
    if o.kind is Kind.FAULT:
        return FAULT
    if o.kind is Kind.TRANSLATED and o.pa == iova:
        return BYPASS
    return o.effect


def show_effect(e: Effect) -> str:
    kind, pa = e
    if kind is Kind.TRANSLATED:
        return f"pa {pa:#x}"
    return "bypass" if kind is Kind.BYPASS else "fault"
