"""VT-d queued-invalidation descriptors (hw-tables.md A.7; iommu.h QI_* macros).

One frozen dataclass per descriptor type, each with its own `Layout` over qw0/qw1.
In scalable mode the queue holds 256-bit descriptors (`qi_shift`), but the kernel
only fills qw0/qw1 and leaves qw2/qw3 zero, so the layouts are two words and
`decode_descriptor` also accepts four words whose upper two are zero.

Attributes hold raw field values (addresses at 63:12 hold addr >> 12); the
`qi_desc_*` constructors take byte addresses and size orders like the kernel helpers.

`covers(entry)` states, per descriptor, exactly which cache entries the hardware
must drop (the VT-d spec's invalidation granularities, 6.5.2). `VtdUnit.execute`
removes those and nothing else.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any, ClassVar, Self, Sequence

from dataclasses import dataclass

from .. import ats
from ..layout import Layout, LayoutError, fields
from ..memory import PAGE_SHIFT, REGION_PAGES, region_overlaps
from .caches import CacheEntry, ContextCacheEntry, DevTlbEntry, IotlbEntry, PasidCacheEntry, PscEntry
from .entries import MAX_AGAW_PFN_WIDTH

# -- type codes (QI_*_TYPE) ------------------------------------------------------
QI_CC_TYPE = 0x1
QI_IOTLB_TYPE = 0x2
QI_DIOTLB_TYPE = 0x3
QI_IEC_TYPE = 0x4
QI_IWD_TYPE = 0x5
QI_EIOTLB_TYPE = 0x6
QI_PC_TYPE = 0x7
QI_DEIOTLB_TYPE = 0x8
QI_PGRP_RESP_TYPE = 0x9

QI_DONE = 2  # enum {QI_FREE, QI_IN_USE, QI_DONE, QI_ABORT}: the wait descriptor's status data
QI_DEV_IOTLB_MAX_INVS = 32
_ADDR_FIELD_MAX = (1 << 52) - 1


class CcGran(IntEnum):
    """Context-cache invalidation granularity, qw0[5:4] (DMA_CCMD_*_INVL >> 61)."""

    GLOBAL = 1
    DOMAIN = 2
    DEVICE = 3


class IotlbGran(IntEnum):
    """IOTLB invalidation granularity, qw0[5:4] (DMA_TLB_*_FLUSH >> 60)."""

    GLOBAL = 1
    DSI = 2
    PSI = 3


class EiotlbGran(IntEnum):
    """PASID-based IOTLB granularity (QI_GRAN_*)."""

    NONG_PASID = 2  # all non-global entries of (DID, PASID)
    PSI_PASID = 3  # page-selective within (DID, PASID)


class PcGran(IntEnum):
    """PASID-cache invalidation granularity (QI_PC_*)."""

    ALL_PASIDS = 0  # domain-selective: every PASID of the DID
    PASID_SEL = 1
    GLOBAL = 3


#: Context-cache device-selective function mask: SID bits ignored for FM = 0..3.
FM_SID_MASK = (0b000, 0b100, 0b110, 0b111)


def psi_covers(entry: IotlbEntry, addr_pfn: int, am: int) -> bool:
    """Whether a page-selective descriptor (ADDR, AM) must remove a first- or
    second-stage IOTLB entry by its input page: a 4 KiB entry when its page is in the
    2^AM-page block, an entry of a 2 MiB superpage only when that block holds the whole
    superpage (spec 6.5.2.3: "9 for 2-MByte page"; a smaller mask is the reading that
    keeps the entry, caches.py IotlbEntry)."""
    pages = psi_pages(addr_pfn, am)
    if not entry.block:
        return entry.iova_pfn in pages
    lo = entry.iova_pfn & ~(REGION_PAGES - 1)
    return pages.start <= lo and lo + REGION_PAGES <= pages.stop


def psi_pages(addr_pfn: int, am: int) -> range:
    """Pages of a page-selective invalidation: 2^AM pages, aligned (low AM bits of ADDR ignored)."""
    base = addr_pfn & ~((1 << am) - 1)
    return range(base, base + (1 << am))


def devtlb_pages(addr_pfn: int, s: int) -> range:
    """Pages of a device-TLB invalidation (spec 6.5.2.5/6.5.2.6, PCIe ATS): S=0 is one page;
    S=1 with the lowest 0 bit of ADDR[63:12] at bit k is 2^(k+1) pages, aligned."""
    if not s:
        return range(addr_pfn, addr_pfn + 1)
    inv = ~addr_pfn
    k = (inv & -inv).bit_length() - 1  # index of the lowest 0 bit (52 if ADDR is all ones)
    n = k + 1
    base = addr_pfn & ~((1 << n) - 1)
    return range(base, base + (1 << n))


def _range_str(pages: range) -> str:
    if pages.start == 0 and len(pages) >= 1 << MAX_AGAW_PFN_WIDTH:
        return "whole range"
    return f"addr={pages.start << PAGE_SHIFT:#x} pages={len(pages)}"


#: descriptors whose fields were range-checked (equal descriptors have equal fields)
_CHECKED: set["QiDesc"] = set()


class QiDesc:
    """Base of all descriptors: encode/decode through `LAYOUT`, `covers` per subclass."""

    __slots__ = ()
    TYPE: ClassVar[int]
    LAYOUT: ClassVar[Layout]
    #: VtdUnit cache attributes this descriptor can remove entries from.
    CACHES: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        for f in self.LAYOUT.fields:
            if f.enum is not None:
                value = getattr(self, f.name)
                try:
                    object.__setattr__(self, f.name, f.enum(value))
                except ValueError:
                    raise LayoutError(
                        f"{self.LAYOUT.name}.{f.name} = {value!r} is not a valid {f.enum.__name__}"
                    ) from None
        # A descriptor equal to one already built passed the same checks: the explorer
        # builds the same few descriptors millions of times.
        if self not in _CHECKED:
            self.encode()  # range-checks every field (LayoutError)
            _CHECKED.add(self)

    def _raw(self) -> dict[str, int]:
        return {n: int(getattr(self, n)) for n in self.LAYOUT.names if n != "type"}

    @classmethod
    def _from_raw(cls, raw: dict[str, int]) -> Self:
        return cls(**raw)

    def encode(self) -> tuple[int, ...]:
        """(qw0, qw1) exactly as the kernel writes them."""
        return self.LAYOUT.encode(type=self.TYPE, **self._raw())

    def covers(self, entry: CacheEntry) -> bool:
        raise NotImplementedError

    def dump(self) -> str:
        return self.LAYOUT.dump(self.encode())


class _PfsidMixin(QiDesc):
    """PFSID is split over qw0[15:12] (pfsid[3:0]) and qw0[63:52] (pfsid[15:4])."""

    __slots__ = ()

    def _raw(self) -> dict[str, int]:
        raw = {n: int(getattr(self, n)) for n in self.LAYOUT.names if n not in ("type", "pfsid_lo", "pfsid_hi")}
        pfsid = int(getattr(self, "pfsid"))
        if not 0 <= pfsid <= 0xFFFF:
            raise LayoutError(f"{self.LAYOUT.name}.pfsid = {pfsid:#x} is not a 16-bit source id")
        raw["pfsid_lo"] = pfsid & 0xF
        raw["pfsid_hi"] = pfsid >> 4
        return raw

    @classmethod
    def _from_raw(cls, raw: dict[str, int]) -> Self:
        raw = dict(raw)
        raw["pfsid"] = raw.pop("pfsid_lo") | raw.pop("pfsid_hi") << 4
        return cls(**raw)


# -- context cache ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class QiCc(QiDesc):
    """Context-cache invalidation (type 1).

    Covers (spec 6.5.2.1): GLOBAL every context-cache entry; DEVICE the entries whose SID
    equals `sid` outside the FM-masked bits (FM 0 none, 1 bit 2, 2 bits 2:1, 3 bits 2:0).
    DOMAIN: SM context entries carry no DID (the kernel notes hardware ignores the DID in
    SM), so the model's assumption is that domain-selective covers every context-cache
    entry. It never touches the PASID cache or IOTLB: spec 6.5.3.3 has software flush
    those separately (the pre-2025 `intel_context_flush_present` did, per DID).
    """

    TYPE: ClassVar[int] = QI_CC_TYPE
    LAYOUT: ClassVar[Layout] = Layout(
        "qi_cc",
        2,
        fields(
            ("type", 0, 0, 3),
            ("gran", 0, 4, 5, CcGran),
            ("did", 0, 16, 31),
            ("sid", 0, 32, 47),
            ("fm", 0, 48, 49),
        ),
    )
    CACHES: ClassVar[tuple[str, ...]] = ("context_cache",)

    gran: CcGran
    did: int = 0
    sid: int = 0
    fm: int = 0

    def covers(self, entry: CacheEntry) -> bool:
        if not isinstance(entry, ContextCacheEntry):
            return False
        if self.gran is CcGran.DEVICE:
            keep = ~FM_SID_MASK[self.fm] & 0xFFFF
            return (entry.sid & keep) == (self.sid & keep)
        return True  # GLOBAL, and DOMAIN (no DID in SM context entries: see docstring)

    def __str__(self) -> str:
        if self.gran is CcGran.GLOBAL:
            return "QI_CC global"
        if self.gran is CcGran.DOMAIN:
            return f"QI_CC domain did={self.did}"
        return f"QI_CC device sid={self.sid:#06x} fm={self.fm} did={self.did}"


# -- IOTLB -------------------------------------------------------------------------
_IOTLB_QW1 = (("am", 1, 0, 5), ("ih", 1, 6, 6), ("addr", 1, 12, 63))


@dataclass(frozen=True, slots=True)
class QiIotlb(QiDesc):
    """IOTLB invalidation by DID (type 2).

    Covers (spec 6.5.2.3): GLOBAL every IOTLB entry; DSI every entry tagged `did`,
    first- and second-stage alike (all PASIDs); PSI the second-stage entries
    (pasid None) of `did` whose page is in the 2^AM-page aligned block at ADDR, and the
    nested (combined) entries of `did` whose second-stage page (`ipa_pfn`) is in it.
    First-stage entries need the PASID-based form (QiEiotlb), which is why the kernel
    uses piotlb for first-stage users (A.6, intel_domain_use_piotlb).
    Paging-structure-cache entries (PscEntry) go with the IOTLB entries of their tag:
    GLOBAL and DSI always; PSI only with IH = 0, for a 2 MiB region the block overlaps
    (IH = 1: "preserve paging-structure-cache entries", spec 6.5.3.3; the model keeps).
    """

    TYPE: ClassVar[int] = QI_IOTLB_TYPE
    LAYOUT: ClassVar[Layout] = Layout(
        "qi_iotlb",
        2,
        fields(
            ("type", 0, 0, 3),
            ("gran", 0, 4, 5, IotlbGran),
            ("dw", 0, 6, 6),
            ("dr", 0, 7, 7),
            ("did", 0, 16, 31),
            *_IOTLB_QW1,
        ),
    )
    CACHES: ClassVar[tuple[str, ...]] = ("iotlb", "psc")

    gran: IotlbGran
    did: int = 0
    dw: int = 0
    dr: int = 0
    addr: int = 0  # raw ADDR[63:12] = page frame number
    ih: int = 0
    am: int = 0

    def covers(self, entry: CacheEntry) -> bool:
        if not isinstance(entry, (IotlbEntry, PscEntry)):
            return False
        if self.gran is IotlbGran.GLOBAL:
            return True
        if self.gran is IotlbGran.DSI:
            return entry.did == self.did
        if isinstance(entry, PscEntry):
            return (entry.pasid is None and entry.did == self.did and not self.ih
                    and region_overlaps(entry.region, psi_pages(self.addr, self.am)))
        if entry.did != self.did:
            return False
        if entry.pasid is None:
            return psi_covers(entry, self.addr, self.am)
        # a combined (nested) entry: by the second-stage page its walk went through
        return entry.ipa_pfn is not None and entry.ipa_pfn in psi_pages(self.addr, self.am)

    def __str__(self) -> str:
        if self.gran is IotlbGran.GLOBAL:
            return "QI_IOTLB global"
        if self.gran is IotlbGran.DSI:
            return f"QI_IOTLB dsi did={self.did}"
        return (
            f"QI_IOTLB psi did={self.did} addr={self.addr << PAGE_SHIFT:#x} "
            f"am={self.am} ih={self.ih}"
        )


@dataclass(frozen=True, slots=True)
class QiEiotlb(QiDesc):
    """PASID-based IOTLB invalidation, P_IOTLB (type 6).

    Covers (spec 6.5.2.4): NONG_PASID every entry tagged (`did`, `pasid`), i.e. the
    first-stage and pass-through results of that PASID (global first-stage pages are
    not modelled); PSI_PASID those whose page is also in the 2^AM-page aligned block
    at ADDR. Second-stage entries (pasid None) are never covered. Paging-structure-cache
    entries of (`did`, `pasid`) go with NONG_PASID, and with PSI_PASID only when IH = 0
    and the block overlaps their 2 MiB region (as QiIotlb).
    """

    TYPE: ClassVar[int] = QI_EIOTLB_TYPE
    LAYOUT: ClassVar[Layout] = Layout(
        "qi_eiotlb",
        2,
        fields(
            ("type", 0, 0, 3),
            ("gran", 0, 4, 5, EiotlbGran),
            ("did", 0, 16, 31),
            ("pasid", 0, 32, 51),
            *_IOTLB_QW1,
        ),
    )
    CACHES: ClassVar[tuple[str, ...]] = ("iotlb", "psc")

    gran: EiotlbGran
    did: int = 0
    pasid: int = 0
    addr: int = 0
    ih: int = 0
    am: int = 0

    def covers(self, entry: CacheEntry) -> bool:
        if not isinstance(entry, (IotlbEntry, PscEntry)):
            return False
        if entry.pasid is None or entry.pasid != self.pasid or entry.did != self.did:
            return False
        if isinstance(entry, PscEntry):
            return self.gran is EiotlbGran.NONG_PASID or (
                not self.ih and region_overlaps(entry.region, psi_pages(self.addr, self.am)))
        return self.gran is EiotlbGran.NONG_PASID or psi_covers(entry, self.addr, self.am)

    def __str__(self) -> str:
        if self.gran is EiotlbGran.NONG_PASID:
            return f"QI_EIOTLB all did={self.did} pasid={self.pasid}"
        return (
            f"QI_EIOTLB psi did={self.did} pasid={self.pasid} "
            f"addr={self.addr << PAGE_SHIFT:#x} am={self.am} ih={self.ih}"
        )


# -- PASID cache ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class QiPc(QiDesc):
    """PASID-cache invalidation (type 7).

    Covers (spec 6.5.2.2): GLOBAL every PASID-cache entry; ALL_PASIDS the entries cached
    with DID `did`; PASID_SEL those with DID `did` and PASID `pasid`. The DID is the one
    the cached entry held: issuing it with a DID read from an already-cleared entry
    (0) misses the stale entry.
    """

    TYPE: ClassVar[int] = QI_PC_TYPE
    LAYOUT: ClassVar[Layout] = Layout(
        "qi_pc",
        2,
        fields(
            ("type", 0, 0, 3),
            ("gran", 0, 4, 5, PcGran),
            ("did", 0, 16, 31),
            ("pasid", 0, 32, 51),
        ),
    )
    CACHES: ClassVar[tuple[str, ...]] = ("pasid_cache",)

    gran: PcGran
    did: int = 0
    pasid: int = 0

    def covers(self, entry: CacheEntry) -> bool:
        if not isinstance(entry, PasidCacheEntry):
            return False
        if self.gran is PcGran.GLOBAL:
            return True
        if self.gran is PcGran.ALL_PASIDS:
            return entry.did == self.did
        return entry.did == self.did and entry.pasid == self.pasid

    def __str__(self) -> str:
        if self.gran is PcGran.GLOBAL:
            return "QI_PC global"
        if self.gran is PcGran.ALL_PASIDS:
            return f"QI_PC all-pasids did={self.did}"
        return f"QI_PC pasid-selective did={self.did} pasid={self.pasid}"


# -- device TLB -------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class QiDiotlb(_PfsidMixin):
    """Device-TLB invalidation without PASID (type 3): a PCIe ATS Invalidate Request
    without PASID prefix.

    Covers (spec 6.5.2.5, PCIe ATS): the device-TLB entries of `sid` whose page is in
    the range (`devtlb_pages`), WHATEVER their PASID: an invalidation without PASID
    prefix hits every PASID's translations (hwspec/ats.py has the reading and its
    sources). QDEP/PFSID only steer the message.
    """

    TYPE: ClassVar[int] = QI_DIOTLB_TYPE
    LAYOUT: ClassVar[Layout] = Layout(
        "qi_diotlb",
        2,
        fields(
            ("type", 0, 0, 3),
            ("pfsid_lo", 0, 12, 15),
            ("qdep", 0, 16, 20),
            ("sid", 0, 32, 47),
            ("pfsid_hi", 0, 52, 63),
            ("s", 1, 0, 0),
            ("addr", 1, 12, 63),
        ),
    )
    CACHES: ClassVar[tuple[str, ...]] = ("devtlb",)

    sid: int
    pfsid: int = 0
    qdep: int = 0
    addr: int = 0
    s: int = 0

    @property
    def pages(self) -> range:
        return devtlb_pages(self.addr, self.s)

    def covers(self, entry: CacheEntry) -> bool:
        return (
            isinstance(entry, DevTlbEntry)
            and entry.sid == self.sid
            and ats.removes(None, False, entry.pasid)
            and entry.iova_pfn in self.pages
        )

    def __str__(self) -> str:
        return f"QI_DEV_IOTLB sid={self.sid:#06x} {_range_str(self.pages)}"


@dataclass(frozen=True, slots=True)
class QiDeiotlb(_PfsidMixin):
    """PASID-based device-TLB invalidation (type 8): ATS Invalidate with PASID prefix.

    Covers (spec 6.5.2.6): the device-TLB entries of `sid` tagged `pasid` whose page is
    in the range (`devtlb_pages`, S at qw1 bit 11). Entries obtained without PASID
    (pasid None) are not covered (hwspec/ats.py).
    """

    TYPE: ClassVar[int] = QI_DEIOTLB_TYPE
    LAYOUT: ClassVar[Layout] = Layout(
        "qi_deiotlb",
        2,
        fields(
            ("type", 0, 0, 3),
            ("qdep", 0, 4, 8),
            ("pfsid_lo", 0, 12, 15),
            ("sid", 0, 16, 31),
            ("pasid", 0, 32, 51),
            ("pfsid_hi", 0, 52, 63),
            ("s", 1, 11, 11),
            ("addr", 1, 12, 63),
        ),
    )
    CACHES: ClassVar[tuple[str, ...]] = ("devtlb",)

    sid: int
    pasid: int
    pfsid: int = 0
    qdep: int = 0
    addr: int = 0
    s: int = 0

    @property
    def pages(self) -> range:
        return devtlb_pages(self.addr, self.s)

    def covers(self, entry: CacheEntry) -> bool:
        return (
            isinstance(entry, DevTlbEntry)
            and entry.sid == self.sid
            and ats.removes(self.pasid, False, entry.pasid)
            and entry.iova_pfn in self.pages
        )

    def __str__(self) -> str:
        return f"QI_DEV_EIOTLB sid={self.sid:#06x} pasid={self.pasid} {_range_str(self.pages)}"


# -- wait ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class QiIwd(QiDesc):
    """Invalidation wait (type 5): completion only, covers nothing.

    `qi_submit_sync` appends one with STATUS_WRITE and data QI_DONE, without FENCE
    (dmar.c), and with PRQ_DRAIN for QI_OPT_WAIT_DRAIN. `status_addr` is ADDR[63:2].
    """

    TYPE: ClassVar[int] = QI_IWD_TYPE
    LAYOUT: ClassVar[Layout] = Layout(
        "qi_iwd",
        2,
        fields(
            ("type", 0, 0, 3),
            ("sw", 0, 5, 5),
            ("fence", 0, 6, 6),
            ("prq_drain", 0, 7, 7),
            ("status_data", 0, 32, 63),
            ("status_addr", 1, 2, 63),
        ),
    )

    sw: int = 1
    fence: int = 0
    prq_drain: int = 0
    status_data: int = QI_DONE
    status_addr: int = 0

    def covers(self, entry: CacheEntry) -> bool:
        return False

    def __str__(self) -> str:
        flags = "".join(
            f" {name}" for name, v in (("fence", self.fence), ("prq_drain", self.prq_drain)) if v
        )
        sw = f" status_write data={self.status_data}" if self.sw else ""
        return f"QI_IWD{sw}{flags}"


# -- page group response ------------------------------------------------------------
#: PCIe PRG Response Message codes (PCIe r6.0 sec 10.4.2.1; VT-d 6.5.2.8 copies them):
#: every other value of the 4-bit field is reserved.
QI_RESP_SUCCESS = 0x0
QI_RESP_INVALID = 0x1
QI_RESP_FAILURE = 0xF
_RESP_NAMES = {QI_RESP_SUCCESS: "SUCCESS", QI_RESP_INVALID: "INVALID", QI_RESP_FAILURE: "FAILURE"}
PRG_RESPONSE_CODES = frozenset(_RESP_NAMES)


@dataclass(frozen=True, slots=True)
class QiPgrpResp(QiDesc):
    """Page group response (type 9, VT-d 6.5.2.8): the IOMMU sends a PRG Response
    Message to the endpoint `rid`. Covers no cache.

    `rid` sits where the kernel's QI_PGRP_DID macro puts it (qw0[31:16]): it is the
    requester ID, not a domain ID. QW1 holds only the PRG index: the newest
    intel_iommu_page_response no longer sets an LPIG bit there. `resp_code` is the raw 4-bit field, not an enum: a
    reserved value is what the hardware would carry to the device, and the
    `prg-response-valid` invariant, not the encoder, is what objects to it.
    """

    TYPE: ClassVar[int] = QI_PGRP_RESP_TYPE
    LAYOUT: ClassVar[Layout] = Layout(
        "qi_pgrp_resp",
        2,
        fields(
            ("type", 0, 0, 3),
            ("pasid_p", 0, 4, 4),
            ("resp_code", 0, 12, 15),
            ("rid", 0, 16, 31),
            ("pasid", 0, 32, 51),
            ("prg_index", 1, 3, 11),
        ),
    )

    rid: int
    pasid: int
    resp_code: int
    pasid_p: int = 1
    prg_index: int = 0

    def covers(self, entry: CacheEntry) -> bool:
        return False

    def __str__(self) -> str:
        shown = _RESP_NAMES.get(self.resp_code, f"reserved code {self.resp_code:#x}")
        where = f" pasid={self.pasid}" if self.pasid_p else ""
        return f"QI_PGRP_RESP rid={self.rid:#06x}{where} {shown}"


_BY_TYPE: dict[int, type[QiDesc]] = {
    cls.TYPE: cls for cls in (QiCc, QiIotlb, QiDiotlb, QiIwd, QiEiotlb, QiPc, QiDeiotlb, QiPgrpResp)
}


def decode_descriptor(words: Sequence[int]) -> QiDesc:
    """The descriptor encoded in (qw0, qw1) or (qw0..qw3 with qw2 = qw3 = 0).

    Raises LayoutError for an unmodelled type, a reserved granularity, or any bit
    the descriptor's layout does not declare (hardware reports those as IQE)."""
    ws = tuple(words)
    if len(ws) == 4:
        if ws[2] or ws[3]:
            raise LayoutError(f"qw2/qw3 must be zero in the descriptors the kernel builds: {ws}")
        ws = ws[:2]
    if len(ws) != 2:
        raise LayoutError(f"a QI descriptor is 2 (or 4) 64-bit words, got {len(ws)}")
    cls = _BY_TYPE.get(ws[0] & 0xF)
    if cls is None:
        raise LayoutError(f"QI descriptor type {ws[0] & 0xF:#x} is not modelled")
    reserved = cls.LAYOUT.undeclared_bits(ws)
    if any(reserved):
        raise LayoutError(
            f"{cls.LAYOUT.name}: reserved bits set: "
            + " ".join(f"q{i}={w:#x}" for i, w in enumerate(reserved) if w)
        )
    raw: dict[str, Any] = cls.LAYOUT.decode(ws)
    del raw["type"]
    return cls._from_raw(raw)


# -- constructors named after the kernel helpers (iommu.h / dmar.c) --------------------
def qi_desc_context(did: int, sid: int, fm: int, gran: CcGran) -> QiCc:
    """qi_flush_context(iommu, did, sid, fm, type)."""
    return QiCc(gran=gran, did=did, sid=sid, fm=fm)


def qi_desc_iotlb(
    did: int, addr: int, size_order: int, gran: IotlbGran, *, dw: int = 0, dr: int = 0
) -> QiIotlb:
    """qi_desc_iotlb: IH rides in bit 0 of `addr` (the kernel passes addr | ih)."""
    return QiIotlb(
        gran=gran, did=did, dw=dw, dr=dr, addr=addr >> PAGE_SHIFT, ih=addr & 1, am=size_order
    )


def qi_desc_dev_iotlb(sid: int, pfsid: int, qdep: int, addr: int, mask: int) -> QiDiotlb:
    """qi_desc_dev_iotlb: mask n > 0 sets S and ORs in (1 << (12 + n - 1)) - 1, so the
    lowest 0 bit of ADDR marks 2^n pages; n = 52 is the whole address space."""
    s = 0
    if mask:
        addr |= (1 << (PAGE_SHIFT + mask - 1)) - 1
        s = 1
    if qdep >= QI_DEV_IOTLB_MAX_INVS:
        qdep = 0
    return QiDiotlb(sid=sid, pfsid=pfsid, qdep=qdep, addr=(addr >> PAGE_SHIFT) & _ADDR_FIELD_MAX, s=s)


def qi_desc_piotlb_all(did: int, pasid: int) -> QiEiotlb:
    """qi_desc_piotlb_all: every non-global entry of (DID, PASID); qw1 = 0."""
    return QiEiotlb(gran=EiotlbGran.NONG_PASID, did=did, pasid=pasid)


def qi_desc_piotlb(did: int, pasid: int, addr: int, size_order: int, ih: int = 0) -> QiEiotlb:
    """qi_desc_piotlb: page-selective within (DID, PASID), 2^size_order pages at addr."""
    return QiEiotlb(
        gran=EiotlbGran.PSI_PASID,
        did=did,
        pasid=pasid,
        addr=addr >> PAGE_SHIFT,
        ih=ih,
        am=size_order,
    )


def qi_desc_dev_iotlb_pasid(
    sid: int, pfsid: int, *, pasid: int, qdep: int, addr: int, size_order: int
) -> QiDeiotlb:
    """qi_desc_dev_iotlb_pasid: size_order n > 0 sets bits [12+n-1:12] of ADDR, clears bit
    12+n-1 and sets S (qw1 bit 11): 2^n aligned pages; n = 52 is everything.
    Keyword-only after pfsid because the kernel's argument order (pasid before qdep)
    differs from its sibling helpers and both are ints."""
    raw = addr & ~((1 << PAGE_SHIFT) - 1)
    s = 0
    if size_order:
        raw |= ((1 << size_order) - 1) << PAGE_SHIFT
        raw &= ~(1 << (PAGE_SHIFT + size_order - 1))
        s = 1
    return QiDeiotlb(
        sid=sid,
        pasid=pasid,
        pfsid=pfsid,
        qdep=qdep & 0x1F,
        addr=(raw >> PAGE_SHIFT) & _ADDR_FIELD_MAX,
        s=s,
    )


def qi_desc_pasid_cache(did: int, gran: PcGran, pasid: int) -> QiPc:
    """qi_flush_pasid_cache(iommu, did, granu, pasid)."""
    return QiPc(gran=gran, did=did, pasid=pasid)


def qi_desc_wait(*, prq_drain: bool = False, fence: bool = False, status_addr: int = 0) -> QiIwd:
    """The wait descriptor qi_submit_sync appends (STATUS_WRITE, data QI_DONE)."""
    return QiIwd(
        sw=1,
        fence=int(fence),
        prq_drain=int(prq_drain),
        status_data=QI_DONE,
        status_addr=status_addr >> 2,
    )


def qi_desc_page_response(rid: int, pasid: int | None, code: int, prg_index: int = 0) -> QiPgrpResp:
    """intel_iommu_page_response: one descriptor per group; `code` goes into the field
    as the caller gives it (the kernel writes msg->code, an enum iommu_page_response_code)."""
    return QiPgrpResp(rid=rid, pasid=0 if pasid is None else pasid, resp_code=code,
                      pasid_p=int(pasid is not None), prg_index=prg_index)
