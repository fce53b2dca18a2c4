"""SMMUv3 command-queue commands (2 x 64-bit, hw-tables.md B.5) and what each invalidates.

Each command is a frozen dataclass with one `Layout` (opcode in q0[7:0], fields
as `arm_smmu_cmdq_build_cmd` places them). `covers(entry)` is the exact-coverage
rule: executing a command removes exactly the cache entries it covers, no more,
no less, so a stale entry survives precisely when software issued the wrong
command or none.

Coverage (the architecture as B.4/B.5 state it; see each class):

- CFGI_STE(sid): the configuration-cache STE of that SID and every CD cached for
  the SID (IHI0070 4.3.1: the command "invalidates all Context Descriptors
  (including L1CD) that were cached using the given StreamID"; gem5's and QEMU's
  models do the same). The Linux driver relies on it since nesting: a RID going
  from a nested STE (the guest's CD table) back to a stage-1 one issues CFGI_STE
  only, CD0 of the host table being unchanged.
- CFGI_CD(sid, ssid): the CD cached for (sid, ssid).
- CFGI_CD_ALL(sid): every CD cached for that SID.
- TLBI_NH_ALL(vmid): every stage-1 and nested TLB entry of that VMID.
- TLBI_NH_ASID(asid, vmid): stage-1 (and nested) TLB entries tagged (vmid, asid).
- TLBI_NH_VA: the same, restricted to the pages of the VA range.
- TLBI_S2_IPA(vmid): stage-2-only TLB entries of that VMID in the IPA range (not the
  combined S1+S2 entries: they are tagged by VA).
- TLBI_S12_VMALL(vmid): every TLB entry with that VMID, stage 1 and stage 2.
- TLBI_NSNH_ALL: every TLB entry (the model has no EL2/secure regimes).
- ATC_INV(sid, ssid, ssv, addr, size): ATC entries of that SID in the 2**size
  page span at addr; with SSV=1 only those of that SSID, with SSV=0 every entry
  in the range whatever its SSID (the PCIe Invalidate Request without a PASID
  prefix, B.5). size 52 (ATC_INV_SIZE_ALL) covers everything.
- CMD_SYNC, PREFETCH_CFG: nothing (ordering and a prefetch hint).

CFGI_*(leaf=0) would also drop cached level-1 descriptors; the model's tables
are linear, so `leaf` is encoded but changes no coverage.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable, ClassVar, Mapping, Sequence, Self, TypeVar

from .. import ats
from ..layout import Layout, LayoutError, Words, fields
from ..memory import PAGE_SHIFT, TABLE_SPAN_SHIFT, region_overlaps
from .caches import AtcEntry, CacheEntry, CdCacheEntry, SteCacheEntry, TlbEntry, WalkEntry

#: ATC_INV_SIZE_ALL: an ATC_INV span of 2**52 pages is the whole address space.
ATC_INV_SIZE_ALL = 52
#: CMDQ_TLBI_RANGE_NUM_MAX
TLBI_RANGE_NUM_MAX = 31
_PAGE_MASK = (1 << PAGE_SHIFT) - 1
_T = TypeVar("_T", bound="Command")


class Cache(Enum):
    """The four caches of a unit, so a command can say which ones it may touch."""

    STE = "config-cache STE"
    CD = "config-cache CD"
    TLB = "TLB"
    ATC = "ATC"
    WALK = "walk cache"


def _layout(name: str, *rows: tuple[object, ...]) -> Layout:
    """A 2-qword command layout with the common opcode field CMDQ_0_OP = q0[7:0]."""
    return Layout(name, 2, fields(("op", 0, 0, 7), *rows))


def _check_page_aligned(what: str, addr: int) -> None:
    if addr < 0 or addr & _PAGE_MASK:
        raise LayoutError(f"{what}: address {addr:#x} is not 4 KiB aligned")


class _ByAddress:
    """The address half TLBI_NH_VA and TLBI_S2_IPA share (one layout of NUM, SCALE,
    LEAF, TTL, TG and the address in both): the pages it names and how it is encoded,
    decoded and printed. TG = 0: the one 4 KiB page holding addr; TG = 1/2/3 (4K/16K/64K
    granule, range invalidation): (NUM+1) * 2**SCALE granules from addr's granule."""

    addr: int
    leaf: bool
    num: int
    scale: int
    ttl: int
    tg: int

    @property
    def pages(self) -> range:
        """The 4 KiB pages (pfns: VA pages for NH_VA, IPA pages for S2_IPA) it invalidates."""
        if self.tg == 0:
            first = self.addr >> PAGE_SHIFT
            return range(first, first + 1)
        granule_shift = 10 + 2 * self.tg  # 12, 14, 16
        per_granule = 1 << (granule_shift - PAGE_SHIFT)
        first = (self.addr >> granule_shift) * per_granule
        return range(first, first + (((self.num + 1) << self.scale) * per_granule))

    def _in_range(self, entry: TlbEntry | WalkEntry) -> bool:
        """A TLB entry of a page in the range, or (LEAF = 0 only) a walk-cache entry of a
        2 MiB region the range meets; the tag is the caller's to match.

        An entry of a 2 MiB block goes when the range meets the block (IHI0070 4.4.1:
        the address "is not required to be aligned to the start of a TLB entry"; the
        entry is the block). TTL (range commands only: TG = 0 gives no level hint) is
        obeyed as the reading that keeps more (4.4.1.2: the SMMU "is only required to
        invalidate TLB entries that were inserted from a translation table walk level
        matching TTL"; for the 4 KiB granule TTL 2 names level 2, the 2 MiB block, and
        TTL 3 level 3, the 4 KiB page). With LEAF = 0 the table descriptors go "at levels
        between the start of the walk and the level before the last level given by TTL"
        (the Note there): the level-2 descriptor a walk-cache entry holds goes with TTL 3
        (or 0), not with TTL 2."""
        if isinstance(entry, WalkEntry):
            return (not self.leaf and (self.tg == 0 or self.ttl in (0, 3))
                    and region_overlaps(entry.region, self.pages))
        if entry.block:
            return self._leaf_level_ok(2) and region_overlaps(
                entry.iova_pfn >> TABLE_SPAN_SHIFT, self.pages)
        return self._leaf_level_ok(3) and entry.iova_pfn in self.pages

    def _leaf_level_ok(self, level: int) -> bool:
        """Whether TTL lets the command reach a leaf inserted at `level` (4 KiB granule)."""
        return self.tg == 0 or self.ttl in (0, level)

    def _address_raw(self) -> dict[str, int]:
        return {"num": self.num, "scale": self.scale, "leaf": int(self.leaf), "ttl": self.ttl,
                "tg": self.tg, "addr": self.addr >> PAGE_SHIFT}

    @staticmethod
    def _address_args(raw: Mapping[str, int]) -> dict[str, Any]:
        return {"addr": raw["addr"] << PAGE_SHIFT, "leaf": bool(raw["leaf"]), "num": raw["num"],
                "scale": raw["scale"], "ttl": raw["ttl"], "tg": raw["tg"]}

    def _address_text(self, label: str) -> str:
        rng = f" num={self.num} scale={self.scale} tg={self.tg} ttl={self.ttl}" if self.tg else ""
        return f"{label}={self.addr:#x}{rng} pages={len(self.pages)}{' leaf' if self.leaf else ''}"


class Command(ABC):
    """One command-queue entry: encodes to 2 qwords, decodes back, and says what it covers."""

    OPCODE: ClassVar[int]
    LAYOUT: ClassVar[Layout]
    CACHES: ClassVar[frozenset[Cache]] = frozenset()

    @abstractmethod
    def raw_fields(self) -> dict[str, int]:
        """The layout fields (raw bit-range values) other than the opcode."""

    @classmethod
    @abstractmethod
    def from_raw(cls, raw: Mapping[str, int]) -> Self:
        """The command whose layout fields are `raw` (inverse of `raw_fields`)."""

    @property
    def name(self) -> str:
        return self.LAYOUT.name

    def encode(self) -> Words:
        return self.LAYOUT.encode(op=self.OPCODE, **self.raw_fields())

    def covers(self, entry: CacheEntry) -> bool:
        """True iff executing this command removes `entry` (exact coverage)."""
        return False

    def dump(self) -> str:
        return self.LAYOUT.dump(self.encode())


@dataclass(frozen=True)
class PREFETCH_CFG(Command):
    """CMD_PREFETCH_CFG: a hint to fetch the STE; issued after every STE write, covers nothing."""

    sid: int
    OPCODE: ClassVar[int] = 0x1
    LAYOUT: ClassVar[Layout] = _layout("CMD_PREFETCH_CFG", ("sid", 0, 32, 63))

    def raw_fields(self) -> dict[str, int]:
        return {"sid": self.sid}

    @classmethod
    def from_raw(cls, raw: Mapping[str, int]) -> Self:
        return cls(sid=raw["sid"])

    def __str__(self) -> str:
        return f"CMD_PREFETCH_CFG sid={self.sid:#x}"


@dataclass(frozen=True)
class CFGI_STE(Command):
    """CMD_CFGI_STE: drops the cached STE of `sid` and the CDs cached for it (module doc).

    This is the STE writer's sync (`arm_smmu_ste_writer_sync_entry`: leaf=1 + CMD_SYNC, B.7).
    """

    sid: int
    leaf: bool = True
    OPCODE: ClassVar[int] = 0x3
    LAYOUT: ClassVar[Layout] = _layout("CMD_CFGI_STE", ("sid", 0, 32, 63), ("leaf", 1, 0, 0))
    CACHES: ClassVar[frozenset[Cache]] = frozenset({Cache.STE, Cache.CD})

    def raw_fields(self) -> dict[str, int]:
        return {"sid": self.sid, "leaf": int(self.leaf)}

    @classmethod
    def from_raw(cls, raw: Mapping[str, int]) -> Self:
        return cls(sid=raw["sid"], leaf=bool(raw["leaf"]))

    def covers(self, entry: CacheEntry) -> bool:
        return isinstance(entry, (SteCacheEntry, CdCacheEntry)) and entry.sid == self.sid

    def __str__(self) -> str:
        return f"CMD_CFGI_STE sid={self.sid:#x}{' leaf' if self.leaf else ''}"


@dataclass(frozen=True)
class CFGI_CD(Command):
    """CMD_CFGI_CD: drops the cached CD of (sid, ssid); the CD writer's sync per stream (B.7)."""

    sid: int
    ssid: int
    leaf: bool = True
    OPCODE: ClassVar[int] = 0x5
    LAYOUT: ClassVar[Layout] = _layout(
        "CMD_CFGI_CD", ("ssid", 0, 12, 31), ("sid", 0, 32, 63), ("leaf", 1, 0, 0)
    )
    CACHES: ClassVar[frozenset[Cache]] = frozenset({Cache.CD})

    def raw_fields(self) -> dict[str, int]:
        return {"sid": self.sid, "ssid": self.ssid, "leaf": int(self.leaf)}

    @classmethod
    def from_raw(cls, raw: Mapping[str, int]) -> Self:
        return cls(sid=raw["sid"], ssid=raw["ssid"], leaf=bool(raw["leaf"]))

    def covers(self, entry: CacheEntry) -> bool:
        return isinstance(entry, CdCacheEntry) and entry.sid == self.sid and entry.ssid == self.ssid

    def __str__(self) -> str:
        return f"CMD_CFGI_CD sid={self.sid:#x} ssid={self.ssid}{' leaf' if self.leaf else ''}"


@dataclass(frozen=True)
class CFGI_CD_ALL(Command):
    """CMD_CFGI_CD_ALL: drops every cached CD of `sid` (no runtime caller found in Linux, B.5)."""

    sid: int
    OPCODE: ClassVar[int] = 0x6
    LAYOUT: ClassVar[Layout] = _layout("CMD_CFGI_CD_ALL", ("sid", 0, 32, 63))
    CACHES: ClassVar[frozenset[Cache]] = frozenset({Cache.CD})

    def raw_fields(self) -> dict[str, int]:
        return {"sid": self.sid}

    @classmethod
    def from_raw(cls, raw: Mapping[str, int]) -> Self:
        return cls(sid=raw["sid"])

    def covers(self, entry: CacheEntry) -> bool:
        return isinstance(entry, CdCacheEntry) and entry.sid == self.sid

    def __str__(self) -> str:
        return f"CMD_CFGI_CD_ALL sid={self.sid:#x}"


@dataclass(frozen=True)
class TLBI_NH_ASID(Command):
    """CMD_TLBI_NH_ASID: drops stage-1 TLB entries tagged (vmid, asid) (`arm_smmu_tlb_inv_asid`).

    Stage-2-only entries (asid None) are not stage-1 entries and stay. Walk-cache entries
    of the tag go with it (an ASID invalidation covers every level).
    """

    asid: int
    vmid: int = 0
    OPCODE: ClassVar[int] = 0x11
    LAYOUT: ClassVar[Layout] = _layout(
        "CMD_TLBI_NH_ASID", ("vmid", 0, 32, 47), ("asid", 0, 48, 63)
    )
    CACHES: ClassVar[frozenset[Cache]] = frozenset({Cache.TLB, Cache.WALK})

    def raw_fields(self) -> dict[str, int]:
        return {"asid": self.asid, "vmid": self.vmid}

    @classmethod
    def from_raw(cls, raw: Mapping[str, int]) -> Self:
        return cls(asid=raw["asid"], vmid=raw["vmid"])

    def covers(self, entry: CacheEntry) -> bool:
        return (
            isinstance(entry, (TlbEntry, WalkEntry))
            and entry.asid is not None
            and entry.asid == self.asid
            and entry.vmid == self.vmid
        )

    def __str__(self) -> str:
        return f"CMD_TLBI_NH_ASID asid={self.asid} vmid={self.vmid}"


@dataclass(frozen=True)
class TLBI_NH_VA(_ByAddress, Command):
    """CMD_TLBI_NH_VA: stage-1 TLB entries tagged (vmid, asid) whose page lies in the VA range.

    `addr` is the byte VA (q1[63:12] holds addr >> 12); the range as `_ByAddress` reads
    it. TTL is a level hint and LEAF a hint that narrows nothing among leaves. LEAF = 1
    means only last-level entries need go: walk-cache entries (bound walk_caches) stay,
    the reading that keeps more; LEAF = 0 drops those of the tag whose 2 MiB region the
    range meets.
    """

    asid: int
    vmid: int
    addr: int
    leaf: bool = True
    num: int = 0
    scale: int = 0
    ttl: int = 0
    tg: int = 0
    OPCODE: ClassVar[int] = 0x12
    LAYOUT: ClassVar[Layout] = _layout(
        "CMD_TLBI_NH_VA",
        ("num", 0, 12, 16),
        ("scale", 0, 20, 24),
        ("vmid", 0, 32, 47),
        ("asid", 0, 48, 63),
        ("leaf", 1, 0, 0),
        ("ttl", 1, 8, 9),
        ("tg", 1, 10, 11),
        ("addr", 1, 12, 63),
    )
    CACHES: ClassVar[frozenset[Cache]] = frozenset({Cache.TLB, Cache.WALK})

    def __post_init__(self) -> None:
        _check_page_aligned("CMD_TLBI_NH_VA", self.addr)

    def raw_fields(self) -> dict[str, int]:
        return {**self._address_raw(), "vmid": self.vmid, "asid": self.asid}

    @classmethod
    def from_raw(cls, raw: Mapping[str, int]) -> Self:
        return cls(asid=raw["asid"], vmid=raw["vmid"], **cls._address_args(raw))

    def covers(self, entry: CacheEntry) -> bool:
        return (isinstance(entry, (TlbEntry, WalkEntry)) and entry.asid == self.asid
                and entry.vmid == self.vmid and self._in_range(entry))

    def __str__(self) -> str:
        return f"CMD_TLBI_NH_VA asid={self.asid} vmid={self.vmid} {self._address_text('va')}"


@dataclass(frozen=True)
class TLBI_NH_ALL(Command):
    """CMD_TLBI_NH_ALL: every stage-1 (and nested S1+S2) TLB entry of `vmid`, any ASID, and
    their walk-cache entries. The driver issues it after TLBI_S2_IPA when a nesting
    parent changes (arm_smmu_tlb_inv_range_domain, nest_parent: "When the S2 domain
    changes all the nested S1 ASIDs have to be flushed too"). Stage-2-only entries stay.
    """

    vmid: int
    OPCODE: ClassVar[int] = 0x10
    LAYOUT: ClassVar[Layout] = _layout("CMD_TLBI_NH_ALL", ("vmid", 0, 32, 47))
    CACHES: ClassVar[frozenset[Cache]] = frozenset({Cache.TLB, Cache.WALK})

    def raw_fields(self) -> dict[str, int]:
        return {"vmid": self.vmid}

    @classmethod
    def from_raw(cls, raw: Mapping[str, int]) -> Self:
        return cls(vmid=raw["vmid"])

    def covers(self, entry: CacheEntry) -> bool:
        return isinstance(entry, (TlbEntry, WalkEntry)) and entry.asid is not None and entry.vmid == self.vmid

    def __str__(self) -> str:
        return f"CMD_TLBI_NH_ALL vmid={self.vmid}"


@dataclass(frozen=True)
class TLBI_S2_IPA(_ByAddress, Command):
    """CMD_TLBI_S2_IPA: stage-2 TLB entries of `vmid` whose IPA page lies in the range
    (as `_ByAddress` reads it; the IPA field is q1[51:12]).

    Only stage-2-only entries (asid None, whose page is an IPA) go: IHI0070 4.4.3.1
    does not require TLBI_S2_IPA to invalidate combined S1+S2 entries (tagged by the
    stage-1 VA, not the IPA) and expects TLBI_NH_ALL or NH_VAA to follow, as the
    driver's nest_parent path does. LEAF = 0 also drops the stage-2 walk-cache entries
    of the range.
    """

    vmid: int
    addr: int
    leaf: bool = True
    num: int = 0
    scale: int = 0
    ttl: int = 0
    tg: int = 0
    OPCODE: ClassVar[int] = 0x2A
    LAYOUT: ClassVar[Layout] = _layout(
        "CMD_TLBI_S2_IPA",
        ("num", 0, 12, 16),
        ("scale", 0, 20, 24),
        ("vmid", 0, 32, 47),
        ("leaf", 1, 0, 0),
        ("ttl", 1, 8, 9),
        ("tg", 1, 10, 11),
        ("addr", 1, 12, 51),
    )
    CACHES: ClassVar[frozenset[Cache]] = frozenset({Cache.TLB, Cache.WALK})

    def __post_init__(self) -> None:
        _check_page_aligned("CMD_TLBI_S2_IPA", self.addr)

    def raw_fields(self) -> dict[str, int]:
        return {**self._address_raw(), "vmid": self.vmid}

    @classmethod
    def from_raw(cls, raw: Mapping[str, int]) -> Self:
        return cls(vmid=raw["vmid"], **cls._address_args(raw))

    def covers(self, entry: CacheEntry) -> bool:
        return (isinstance(entry, (TlbEntry, WalkEntry)) and entry.asid is None
                and entry.vmid == self.vmid and self._in_range(entry))

    def __str__(self) -> str:
        return f"CMD_TLBI_S2_IPA vmid={self.vmid} {self._address_text('ipa')}"


@dataclass(frozen=True)
class TLBI_S12_VMALL(Command):
    """CMD_TLBI_S12_VMALL: every TLB entry of `vmid`, stage 1 and stage 2 (S2 domain flush, B.6)."""

    vmid: int
    OPCODE: ClassVar[int] = 0x28
    LAYOUT: ClassVar[Layout] = _layout("CMD_TLBI_S12_VMALL", ("vmid", 0, 32, 47))
    CACHES: ClassVar[frozenset[Cache]] = frozenset({Cache.TLB, Cache.WALK})

    def raw_fields(self) -> dict[str, int]:
        return {"vmid": self.vmid}

    @classmethod
    def from_raw(cls, raw: Mapping[str, int]) -> Self:
        return cls(vmid=raw["vmid"])

    def covers(self, entry: CacheEntry) -> bool:
        return isinstance(entry, (TlbEntry, WalkEntry)) and entry.vmid == self.vmid

    def __str__(self) -> str:
        return f"CMD_TLBI_S12_VMALL vmid={self.vmid}"


@dataclass(frozen=True)
class TLBI_NSNH_ALL(Command):
    """CMD_TLBI_NSNH_ALL: every (non-secure, non-hyp) TLB entry; the reset path issues it (B.5)."""

    OPCODE: ClassVar[int] = 0x30
    LAYOUT: ClassVar[Layout] = _layout("CMD_TLBI_NSNH_ALL")
    CACHES: ClassVar[frozenset[Cache]] = frozenset({Cache.TLB, Cache.WALK})

    def raw_fields(self) -> dict[str, int]:
        return {}

    @classmethod
    def from_raw(cls, raw: Mapping[str, int]) -> Self:
        return cls()

    def covers(self, entry: CacheEntry) -> bool:
        return isinstance(entry, (TlbEntry, WalkEntry))

    def __str__(self) -> str:
        return "CMD_TLBI_NSNH_ALL"


@dataclass(frozen=True)
class ATC_INV(Command):
    """CMD_ATC_INV: invalidates the device's ATC for `sid` over a power-of-two page span.

    The span is 2**size pages starting at addr aligned down to the span (the
    driver aligns it, `arm_smmu_atc_inv_to_cmd`); size 52 is everything. SSV=1:
    only entries of `ssid` (G, Global Invalidate, drops nothing more: the model has no
    global entries). SSV=0: the PCIe message carries no PASID prefix and invalidates
    every entry in the span, PASID-tagged ones included (B.5; hwspec/ats.py has the
    reading and its sources).
    """

    sid: int
    ssid: int = 0
    ssv: bool = False
    addr: int = 0
    size: int = ATC_INV_SIZE_ALL
    global_: bool = False
    OPCODE: ClassVar[int] = 0x40
    LAYOUT: ClassVar[Layout] = _layout(
        "CMD_ATC_INV",
        ("global", 0, 9, 9),
        ("ssv", 0, 11, 11),
        ("ssid", 0, 12, 31),
        ("sid", 0, 32, 63),
        ("size", 1, 0, 5),
        ("addr", 1, 12, 63),
    )
    CACHES: ClassVar[frozenset[Cache]] = frozenset({Cache.ATC})

    def __post_init__(self) -> None:
        _check_page_aligned("CMD_ATC_INV", self.addr)

    def raw_fields(self) -> dict[str, int]:
        return {
            "global": int(self.global_),
            "ssv": int(self.ssv),
            "ssid": self.ssid,
            "sid": self.sid,
            "size": self.size,
            "addr": self.addr >> PAGE_SHIFT,
        }

    @classmethod
    def from_raw(cls, raw: Mapping[str, int]) -> Self:
        return cls(
            sid=raw["sid"],
            ssid=raw["ssid"],
            ssv=bool(raw["ssv"]),
            addr=raw["addr"] << PAGE_SHIFT,
            size=raw["size"],
            global_=bool(raw["global"]),
        )

    @property
    def pages(self) -> range:
        span = 1 << self.size
        first = (self.addr >> PAGE_SHIFT) & ~(span - 1)
        return range(first, first + span)

    def covers(self, entry: CacheEntry) -> bool:
        if not isinstance(entry, AtcEntry) or entry.sid != self.sid:
            return False
        if not ats.removes(self.ssid if self.ssv else None, self.global_, entry.ssid):
            return False
        return entry.iova_pfn in self.pages

    def __str__(self) -> str:
        ssid = f" ssid={self.ssid} (ssv)" if self.ssv else ""
        if self.size >= ATC_INV_SIZE_ALL:
            rng = "all"
        else:
            rng = f"addr={self.pages.start << PAGE_SHIFT:#x} pages={1 << self.size}"
        return f"CMD_ATC_INV sid={self.sid:#x}{ssid} {rng}"


@dataclass(frozen=True)
class CMD_SYNC(Command):
    """CMD_SYNC: completes after every earlier command; invalidates nothing itself.

    `msiaddr` is the byte address (q1[51:2] holds msiaddr >> 2).
    """

    cs: int = 0
    msh: int = 0
    msiattr: int = 0
    msidata: int = 0
    msiaddr: int = 0
    OPCODE: ClassVar[int] = 0x46
    LAYOUT: ClassVar[Layout] = _layout(
        "CMD_SYNC",
        ("cs", 0, 12, 13),
        ("msh", 0, 22, 23),
        ("msiattr", 0, 24, 27),
        ("msidata", 0, 32, 63),
        ("msiaddr", 1, 2, 51),
    )

    def __post_init__(self) -> None:
        if self.msiaddr < 0 or self.msiaddr & 3:
            raise LayoutError(f"CMD_SYNC: msiaddr {self.msiaddr:#x} is not 4-byte aligned")

    def raw_fields(self) -> dict[str, int]:
        return {
            "cs": self.cs,
            "msh": self.msh,
            "msiattr": self.msiattr,
            "msidata": self.msidata,
            "msiaddr": self.msiaddr >> 2,
        }

    @classmethod
    def from_raw(cls, raw: Mapping[str, int]) -> Self:
        return cls(
            cs=raw["cs"],
            msh=raw["msh"],
            msiattr=raw["msiattr"],
            msidata=raw["msidata"],
            msiaddr=raw["msiaddr"] << 2,
        )

    def __str__(self) -> str:
        return "CMD_SYNC"


COMMAND_TYPES: tuple[type[Command], ...] = (
    PREFETCH_CFG,
    CFGI_STE,
    CFGI_CD,
    CFGI_CD_ALL,
    TLBI_NH_ALL,
    TLBI_NH_ASID,
    TLBI_NH_VA,
    TLBI_S2_IPA,
    TLBI_S12_VMALL,
    TLBI_NSNH_ALL,
    ATC_INV,
    CMD_SYNC,
)
_BY_OPCODE: dict[int, type[Command]] = {c.OPCODE: c for c in COMMAND_TYPES}
_OP = _layout("CMD")["op"]


def decode_command(words: Sequence[int]) -> Command:
    """The command encoded in 2 qwords; LayoutError for an unknown opcode or a stray bit."""
    if len(words) != 2:
        raise LayoutError(f"an SMMUv3 command is 2 x 64-bit words, got {len(words)}")
    op = _OP.extract(words)
    cls = _BY_OPCODE.get(op)
    if cls is None:
        raise LayoutError(f"unknown or unmodelled SMMUv3 command opcode {op:#x}")
    stray = cls.LAYOUT.undeclared_bits(words)
    if any(stray):
        raise LayoutError(
            f"{cls.LAYOUT.name}: bits set outside its fields: "
            + " ".join(f"q{i}={w:#x}" for i, w in enumerate(stray) if w)
        )
    raw = cls.LAYOUT.decode(words)
    del raw["op"]
    return cls.from_raw(raw)


# -- what the driver builds ---------------------------------------------------------


def atc_inv_cmd(sid: int, ssid: int | None, iova: int, size: int) -> ATC_INV:
    """`arm_smmu_atc_inv_to_cmd`: SSV iff a PASID is given; size 0 = everything, otherwise the
    smallest aligned power-of-two span of pages covering [iova, iova + size)."""
    ssv = ssid is not None
    ssid_raw = ssid if ssid is not None else 0
    if size == 0:
        return ATC_INV(sid=sid, ssid=ssid_raw, ssv=ssv, addr=0, size=ATC_INV_SIZE_ALL)
    start = iova >> PAGE_SHIFT
    end = (iova + size - 1) >> PAGE_SHIFT
    log2_span = (start ^ end).bit_length()
    start &= ~((1 << log2_span) - 1)
    return ATC_INV(sid=sid, ssid=ssid_raw, ssv=ssv, addr=start << PAGE_SHIFT, size=log2_span)


def tlbi_nh_va_cmds(
    asid: int,
    vmid: int,
    iova: int,
    size: int,
    leaf: bool = True,
    range_inv: bool = False,
    granule: int = 1 << PAGE_SHIFT,
    ttl_granule: int | None = None,
) -> list[TLBI_NH_VA]:
    """`__arm_smmu_tlb_inv_range` for a stage-1 domain: the NH_VA commands for [iova, iova+size)."""
    return _tlbi_range(lambda **f: TLBI_NH_VA(asid=asid, vmid=vmid, **f),
                       iova, size, leaf, range_inv, granule, ttl_granule)


def tlbi_s2_ipa_cmds(
    vmid: int,
    ipa: int,
    size: int,
    leaf: bool = True,
    range_inv: bool = False,
    granule: int = 1 << PAGE_SHIFT,
    ttl_granule: int | None = None,
) -> list[TLBI_S2_IPA]:
    """`__arm_smmu_tlb_inv_range` for a stage-2 domain (`cmd.opcode = CMDQ_OP_TLBI_S2_IPA`,
    `cmd.tlbi.vmid = s2_cfg.vmid`): the S2_IPA commands for [ipa, ipa+size)."""
    return _tlbi_range(lambda **f: TLBI_S2_IPA(vmid=vmid, **f), ipa, size, leaf, range_inv, granule,
                       ttl_granule)


def _tlbi_range(make: Callable[..., _T], iova: int, size: int, leaf: bool, range_inv: bool,
                granule: int, ttl_granule: int | None = None) -> list[_T]:
    """The loop of `__arm_smmu_tlb_inv_range`, whatever the opcode.

    Without FEAT_RANGE_INV one command per granule (TG=0). With it, TG from the
    4 KiB leaf size and chunks of (NUM+1) * 2**SCALE pages, TTL from the granule
    for leaf invalidations and 0 for walk (non-leaf) ones, as the driver computes them
    since 6833b8f2e199. `ttl_granule` (broken variants only): compute TTL from this
    size instead, leaf or not.
    """
    if size == 0:
        return []
    out: list[_T] = []
    end = iova + size
    if not range_inv:
        while iova < end:
            # the ADDR field holds VA[63:12]: the driver masks, the SMMU reads the page
            out.append(make(addr=iova & ~_PAGE_MASK, leaf=leaf))
            iova += granule
        return out
    tg_shift = PAGE_SHIFT
    tg = (tg_shift - 10) // 2
    if ttl_granule is not None:
        ttl = 4 - ((ttl_granule.bit_length() - 1 - 3) // (tg_shift - 3))
    else:
        ttl = 4 - ((granule.bit_length() - 1 - 3) // (tg_shift - 3)) if leaf else 0
    num_pages = size >> tg_shift
    if not leaf and num_pages & TLBI_RANGE_NUM_MAX == 1:
        # eb6c97647be2: NUM = SCALE = TTL = 0 with TG set is reserved for a non-leaf
        # command; one page more keeps the range encodable
        num_pages += 1
    while iova < end:
        if num_pages == 0:
            break  # a size that is no multiple of the granule: the kernel's __ffs(0) is undefined
        scale = (num_pages & -num_pages).bit_length() - 1
        num = (num_pages >> scale) & TLBI_RANGE_NUM_MAX
        out.append(make(addr=iova & ~_PAGE_MASK, leaf=leaf, num=num - 1, scale=scale, ttl=ttl, tg=tg))
        iova += num << (scale + tg_shift)
        num_pages -= num << scale
    return out
