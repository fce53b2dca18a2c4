"""VT-d cache entries (hw-tables.md A.6): immutable, tagged exactly as invalidation selects them.

A unit's caches are plain sets of these values. Hardware may cache any valid entry
at any time (an explicit `fill`), and keeps it until a descriptor that covers its
tag is executed, so a stale entry exists exactly when software changed a table
without the invalidation the tag requires.

Pass-through: the IOTLB may hold pass-through results of a PGTT=PT PASID entry,
tagged DID + PASID like first-stage results (the kernel flushes them with
`qi_flush_piotlb_all`, A.8.2). They are entries with `pt=True` and
`pfn == iova_pfn`; a hit is a bypass outcome. The device TLB (ATC) caches the
identity answer of an ATS request the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..memory import PAGE_SHIFT, TABLE_SPAN_SHIFT, Prot
from .entries import CONTEXT_ENTRY, PASID_ENTRY, bdf


def _prot(prot: Prot) -> str:
    return prot.name or str(int(prot))


@dataclass(frozen=True, slots=True)
class ContextCacheEntry:
    """A cached SM context entry (4 words), tagged by SID; in SM it carries no DID."""

    sid: int
    words: tuple[int, ...]

    def sort_key(self) -> tuple[int, tuple[int, ...]]:
        return (self.sid, self.words)

    def __str__(self) -> str:
        return f"context-cache sid {self.sid:#06x} ({bdf(self.sid)}): {CONTEXT_ENTRY.dump(self.words)}"


@dataclass(frozen=True, slots=True)
class PasidCacheEntry:
    """A cached PASID entry (8 words). Looked up by (SID, PASID): each device has its own
    PASID table. Invalidated by DID / DID+PASID (PC descriptor), which is why `did`
    is the DID the entry held when it was cached."""

    sid: int
    did: int
    pasid: int
    words: tuple[int, ...]

    def sort_key(self) -> tuple[int, int, int, tuple[int, ...]]:
        return (self.sid, self.pasid, self.did, self.words)

    def __str__(self) -> str:
        return (
            f"PASID-cache sid {self.sid:#06x} pasid {self.pasid} did {self.did}: "
            f"{PASID_ENTRY.dump(self.words)}"
        )


@dataclass(frozen=True, slots=True)
class IotlbEntry:
    """An IOTLB leaf. `pasid=None`: second-stage result, tagged DID + address only.
    Otherwise a first-stage (or `pt`) result tagged DID + PASID + address; for requests
    without PASID that PASID is the context entry's RID_PASID.

    A nested (PGTT=NESTED) result is a combined entry, tagged like a first-stage one
    (DID + PASID + input address) and caching input -> output of both stages; `ipa_pfn`
    is the second-stage input its walk went through. Spec 6.5.2.3 lets a second-stage
    page-selective invalidation (IOTLB descriptor, PSI by DID) reach combined entries
    of that DID; what the model keeps, as the reading that keeps more: exactly those
    whose `ipa_pfn` lies in the invalidated range (the kernel relies on at least that:
    821985301124, "It's implicitly done by HW when s2 cache is invalidated").

    `block` (bound superpages): the walk ended at a 2 MiB superpage PTE. Spec 6.5.3.2
    lets hardware cache a large page whole or as fractured 4 KiB entries, and 6.5.2.3 /
    6.5.2.4 require software to invalidate it with the address mask of its size ("9
    for 2-MByte page"); a page-selective invalidation with a smaller mask is not
    guaranteed to remove any of it. The model keeps one entry per page it looked up
    (the fractured reading) and, as the reading that keeps more, a page-selective
    descriptor removes an entry of a block only when its 2^AM pages cover the block's
    whole 2 MiB (`psi_covers` in qi.py)."""

    did: int
    pasid: int | None
    iova_pfn: int
    pfn: int
    prot: Prot = Prot.RW
    pt: bool = False
    ipa_pfn: int | None = None
    block: bool = False

    def sort_key(self) -> tuple[int, int, int, int, int, bool, int, bool]:
        return (
            self.did,
            -1 if self.pasid is None else self.pasid,
            self.iova_pfn,
            self.pfn,
            int(self.prot),
            self.pt,
            -1 if self.ipa_pfn is None else self.ipa_pfn,
            self.block,
        )

    def __str__(self) -> str:
        tag = f"did {self.did}" + (
            " (second-stage)" if self.pasid is None else f" pasid {self.pasid}"
        )
        iova = self.iova_pfn << PAGE_SHIFT
        if self.pt:
            return f"IOTLB {tag} iova {iova:#x} pass-through"
        via = "" if self.ipa_pfn is None else f" (nested, ipa {self.ipa_pfn << PAGE_SHIFT:#x})"
        size = " (of a 2M superpage)" if self.block else ""
        return (f"IOTLB {tag} iova {iova:#x}{via} -> pa {self.pfn << PAGE_SHIFT:#x} "
                f"{_prot(self.prot)}{size}")


@dataclass(frozen=True, slots=True)
class DevTlbEntry:
    """A device-TLB (ATC) entry in the endpoint, tagged SID + PASID + address
    (`pasid=None`: a translation obtained without PASID prefix). Exists only when the
    context entry has DTE=1. The device uses it without asking the IOMMU."""

    sid: int
    pasid: int | None
    iova_pfn: int
    pfn: int
    prot: Prot = Prot.RW
    pt: bool = False

    def sort_key(self) -> tuple[int, int, int, int, int, bool]:
        return (
            self.sid,
            -1 if self.pasid is None else self.pasid,
            self.iova_pfn,
            self.pfn,
            int(self.prot),
            self.pt,
        )

    def __str__(self) -> str:
        tag = f"sid {self.sid:#06x}" + ("" if self.pasid is None else f" pasid {self.pasid}")
        iova = self.iova_pfn << PAGE_SHIFT
        if self.pt:
            return f"device-TLB {tag} iova {iova:#x} pass-through"
        return f"device-TLB {tag} iova {iova:#x} -> pa {self.pfn << PAGE_SHIFT:#x} {_prot(self.prot)}"


@dataclass(frozen=True, slots=True)
class PscEntry:
    """A paging-structure cache entry: the pointer to the leaf table page a walk went
    through for a 2 MiB `region`, tagged as the IOTLB entries of that walk are (DID, and
    the PASID for first-stage walks; `pasid=None`: second-stage). Invalidated with the
    IOTLB by DID / by DID+PASID, and by a page-selective descriptor only with IH = 0
    (spec 6.5.3.3: "an Invalidation Hint (IH) value of 0 (so that it invalidates the
    paging-structure caches)"; IH = 1 lets the hardware keep them, and the model keeps
    them). `root` is not hardware state: it names the table the walk started from, so
    the walk-cache-live invariant can say whether `table` is still that table's."""

    did: int
    pasid: int | None
    region: int
    table: int
    root: int

    def sort_key(self) -> tuple[int, int, int, int, int]:
        return (self.did, -1 if self.pasid is None else self.pasid, self.region, self.table, self.root)

    def __str__(self) -> str:
        tag = f"did {self.did}" + (" (second-stage)" if self.pasid is None else f" pasid {self.pasid}")
        lo = self.region << (PAGE_SHIFT + TABLE_SPAN_SHIFT)
        return f"paging-structure cache {tag} iova {lo:#x}+2M -> leaf table @{self.table:#x}"


CacheEntry = ContextCacheEntry | PasidCacheEntry | IotlbEntry | DevTlbEntry | PscEntry
