"""SMMUv3 cache entries: configuration cache, TLB and the device's ATC (hw-tables.md B.4).

Each entry is a frozen value tagged exactly as the architecture tags it, because
a stale translation is reachable only through a lookup that presents the same
tag:

- configuration cache: STEs by StreamID, CDs by (StreamID, SubstreamID). A CD
  entry is NOT tagged by the CD-table address, so a CD cached from an old table
  still answers for (SID, SSID) after the STE points elsewhere, until CFGI_STE(SID)
  or CFGI_CD drops it.
- TLB: (VMID, ASID, page). Stage-1 and nested entries carry the ASID of the CD
  that produced them and the VMID of the STE (S2VMID, 0 for stage-1-only NS-EL1
  streams); stage-2-only entries have `asid=None` and their page is an IPA. A nested
  walk caches a combined entry (VA -> PA, tagged by the VMID and the guest CD's ASID)
  and the stage-2-only entry of the IPA it went through. The StreamID is NOT part of
  the tag: two streams whose CDs carry the same ASID share TLB entries.
- ATC: in the endpoint, (SID, SSID or None for no-PASID requests, page).
- walk cache (bound walk_caches): a pointer to the leaf table page a walk went
  through for a 2 MiB region, tagged (VMID, ASID) like the TLB. TLBI by VA with
  Leaf=1 need only invalidate last-level entries (the model keeps walk entries);
  with Leaf=0, by ASID, by VMID or everything, they go.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from ..layout import Words
from ..memory import PAGE_SHIFT, TABLE_SPAN_SHIFT, Prot
from .cd import CD
from .ste import STE


def _tlb_tag(vmid: int, asid: int | None) -> str:
    """The (VMID, ASID) tag as reports print it (TLB and walk cache share it)."""
    return f"vmid {vmid}, stage 2" if asid is None else f"vmid {vmid}, asid {asid}"


def _prot(p: Prot) -> str:
    return "" if p == Prot.RW else f" ({p.name})"


@dataclass(frozen=True)
class SteCacheEntry:
    """A cached STE: what the SMMU may use for `sid` instead of reading the stream table."""

    sid: int
    words: Words

    def __str__(self) -> str:
        return f"STE sid {self.sid:#x}: {STE.dump(self.words)}"


@dataclass(frozen=True)
class CdCacheEntry:
    """A cached CD for (sid, ssid); SSID 0 also serves no-PASID traffic under S1DSS=SSID0."""

    sid: int
    ssid: int
    words: Words

    def __str__(self) -> str:
        return f"CD sid {self.sid:#x} ssid {self.ssid}: {CD.dump(self.words)}"


@dataclass(frozen=True)
class TlbEntry:
    """A cached leaf translation iova page -> physical page, tagged (VMID, ASID)."""

    vmid: int
    asid: int | None
    iova_pfn: int
    pfn: int
    prot: Prot = Prot.RW
    #: a combined S1+S2 entry of a nested STE: the IPA page stage 1 gave (not hardware
    #: state the architecture names, but what the nested-cache-current check needs)
    ipa_pfn: int | None = None
    #: inserted from a level-2 block descriptor (a 2 MiB leaf, bound superpages): the
    #: SMMU holds one entry for the block, which the model keeps as the pages looked up,
    #: every one removed by a TLBI by VA that meets the block (commands.py `_in_range`)
    block: bool = False

    @property
    def tag(self) -> str:
        return _tlb_tag(self.vmid, self.asid)

    def __str__(self) -> str:
        nested = "" if self.ipa_pfn is None else f" (nested, ipa {self.ipa_pfn << PAGE_SHIFT:#x})"
        block = " (of a 2M block)" if self.block else ""
        return (
            f"TLB ({self.tag}) {self.iova_pfn << PAGE_SHIFT:#x} -> "
            f"{self.pfn << PAGE_SHIFT:#x}{_prot(self.prot)}{nested}{block}"
        )


@dataclass(frozen=True)
class AtcEntry:
    """A translation cached by the device after an ATS request (ssid None: request without PASID)."""

    sid: int
    ssid: int | None
    iova_pfn: int
    pfn: int
    prot: Prot = Prot.RW

    @property
    def tag(self) -> str:
        if self.ssid is None:
            return f"sid {self.sid:#x}"
        return f"sid {self.sid:#x}, ssid {self.ssid}"

    def __str__(self) -> str:
        return (
            f"ATC ({self.tag}) {self.iova_pfn << PAGE_SHIFT:#x} -> "
            f"{self.pfn << PAGE_SHIFT:#x}{_prot(self.prot)}"
        )


@dataclass(frozen=True)
class WalkEntry:
    """A walk-cache entry: region (2 MiB) -> leaf table page, tagged (VMID, ASID). `root`
    is not hardware state: the table the walk started from (for walk-cache-live)."""

    vmid: int
    asid: int | None
    region: int
    table: int
    root: int

    @property
    def tag(self) -> str:
        return _tlb_tag(self.vmid, self.asid)

    def __str__(self) -> str:
        lo = self.region << (PAGE_SHIFT + TABLE_SPAN_SHIFT)
        return f"walk cache ({self.tag}) {lo:#x}+2M -> leaf table @{self.table:#x}"


CacheEntry = Union[SteCacheEntry, CdCacheEntry, TlbEntry, AtcEntry, WalkEntry]


def sort_key(e: CacheEntry) -> tuple[int, ...]:
    """A total order over cache entries (None sorts before every number), for dumps."""
    if isinstance(e, SteCacheEntry):
        return (0, e.sid, *e.words)
    if isinstance(e, CdCacheEntry):
        return (1, e.sid, e.ssid, *e.words)
    if isinstance(e, TlbEntry):
        return (2, e.vmid, -1 if e.asid is None else e.asid, e.iova_pfn, e.pfn, int(e.prot),
                -1 if e.ipa_pfn is None else e.ipa_pfn, int(e.block))
    if isinstance(e, WalkEntry):
        return (4, e.vmid, -1 if e.asid is None else e.asid, e.region, e.table, e.root)
    return (3, e.sid, -1 if e.ssid is None else e.ssid, e.iova_pfn, e.pfn, int(e.prot))
