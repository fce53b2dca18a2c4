"""One SMMUv3 instance: linear stream table, configuration cache, TLB, the ATCs, commands.

State. A unit owns a linear stream table in `Memory` (STE of SID s at
`strtab_base + 64*s`) and four caches, each a set of frozen entries
(caches.py). Memory is passed explicitly to every operation: the unit does not
own it. At construction the stream table is all zero (V=0, C_BAD_STE): the
driver fills it at probe (`arm_smmu_init_initial_stes` writes abort or bypass
STEs), so the driver model does that, not the hardware.

Translation: `translate(unit, mem, sid, ssid, iova, access)` returns the SET of
outcomes the hardware may produce right now (ssid None = a request without
PASID). Every way the SMMU could serve the request contributes one outcome:

- ATC: an ATC entry of (sid, ssid, page) is an outcome whatever the tables say
  (a translated request skips the SMMU's walk).
- SID beyond the stream table: C_BAD_STREAMID.
- STE views: the fresh read of the stream table, plus each config-cache STE of
  that SID. For each view: V=0 -> C_BAD_STE; CFG=ABORT -> STE_ABORT; reserved
  CFG (1..3) -> C_BAD_STE.
  CFG=BYPASS or S2_TRANS with an SSID -> C_BAD_SUBSTREAMID (stage 1 is needed
  for substreams; UNVERIFIED reading of the spec). BYPASS -> bypass.
  S2_TRANS -> walk of S2TTB (address s2ttb << 4) plus every TLB entry
  (vmid = S2VMID, asid None, page).
- S1_TRANS: without an SSID, S1DSS decides: TERMINATE -> C_BAD_SUBSTREAMID,
  BYPASS -> bypass, SSID0 -> CD 0. With an SSID: S1CDMAX = 0 (substreams off)
  or ssid >= 2**S1CDMAX -> C_BAD_SUBSTREAMID; SSID 0 under S1DSS=SSID0 is
  reserved for no-PASID traffic -> C_BAD_SUBSTREAMID (UNVERIFIED). A non-linear
  S1FMT -> NOT_MODELLED.
- CD views: the fresh read of the CD (linear table at s1ctxptr << 6, + 64*ssid)
  plus each config-cache CD of (sid, ssid). V=0 -> C_BAD_CD; EPD0=1 -> EPD0
  fault; otherwise the ASID from THAT CD: walk of TTB0 (ttb0 << 4) plus every TLB
  entry (vmid = STE.S2VMID, asid, page). A stale TLB entry is therefore reachable
  only through a view that yields its ASID - the architecture, and the point of
  seed 000 ("the SMMU driver needs the old ASID at detach").
- NESTED: the STE's first half is a stage-1 STE (the guest's CD table), the second a
  stage-2 one. The CD's TTB0 walk gives an IPA, the S2TTB walk at it the host page,
  with what both stages permit; plus the stage-2-only TLB entries (vmid, None) of that
  IPA, and every combined entry (vmid, CD's asid, page). S1DSS=BYPASS without an SSID
  is a stage-2-only walk. The guest's CD-table and TTB0 pointers are IPAs on real
  hardware (translated by stage 2); the model takes them as host addresses.
- A leaf without READ (WRITE) permission for a read (write) gives PERMISSION;
  no leaf gives NO_MAPPING.

Not modelled: two-level CD tables (a NOT_MODELLED fault, so nothing silently
translates); stage-2 translation of a nested STE's table pointers; the T0SZ/IPS range checks;
the STRW regime in TLB tags (EL2 streams are tagged like NS-EL1 ones, with the
STE's S2VMID); TTL/LEAF hints; events and stalls.

`via` names the path: "walk" when everything was read fresh, otherwise the
cached parts joined by " + ", e.g. "config-cache CD (sid 0x8, ssid 5) + TLB
(vmid 0, asid 3)".

Filling: `fill(...)` caches exactly what the fresh walk would now, at every
level: the STE, the CD, the TLB leaf, and an ATC entry when the STE uses
EATS=TRANS (identity for S1DSS=BYPASS traffic); a nested walk caches the combined
entry (with its IPA) and the stage-2-only entry of the IPA. Invalid entries (V=0) are not
cached. The access is not needed: a walk caches the leaf whatever the access,
the permission check happens on use. Caches hold sets, so a second fill after a
table change keeps both the old and the new entry, as hardware may.

Commands: `execute` removes exactly the entries a command covers (commands.py)
and logs it; `issue_cmdlist` appends one CMD_SYNC, as
`arm_smmu_cmdq_batch_submit` does.
"""

from __future__ import annotations

from typing import Iterable, Iterator, Sequence

from ..layout import Layout, Words
from ..memory import PAGE_SHIFT, PAGE_SIZE, TABLE_SPAN_SHIFT, Memory, Prot, WalkMemo, nested_leaf, nested_walk
from ..outcome import Access, FaultReason, Outcome, bypass, fault, translated
from .caches import AtcEntry, CacheEntry, CdCacheEntry, SteCacheEntry, TlbEntry, WalkEntry, sort_key
from .cd import CD, CD_QWORDS, CD_SIZE
from .commands import CFGI_CD, CFGI_STE, CMD_SYNC, PREFETCH_CFG, Cache, Command
from .ste import STE, STE_QWORDS, STE_SIZE, Cfg, Eats, S1Dss, S1Fmt
from .writer import CD_WRITER, STE_WRITER, Store, WriteResult, write_entry

_PAGE_MASK = PAGE_SIZE - 1

class _Bits:
    """A field reader without Layout's checks: translate() runs millions of times."""

    __slots__ = ("word", "lo", "mask")

    def __init__(self, layout: Layout, name: str) -> None:
        f = layout[name]
        self.word, self.lo, self.mask = f.word, f.lo, f.max

    def get(self, words: Sequence[int]) -> int:
        return (words[self.word] >> self.lo) & self.mask


_STE_V = _Bits(STE, "v")
_STE_CFG = _Bits(STE, "cfg")
_STE_S1FMT = _Bits(STE, "s1fmt")
_STE_S1CTXPTR = _Bits(STE, "s1ctxptr")
_STE_S1CDMAX = _Bits(STE, "s1cdmax")
_STE_S1DSS = _Bits(STE, "s1dss")
_STE_EATS = _Bits(STE, "eats")
_STE_S2VMID = _Bits(STE, "s2vmid")
_STE_S2TTB = _Bits(STE, "s2ttb")
_CD_V = _Bits(CD, "v")
_CD_EPD0 = _Bits(CD, "epd0")
_CD_ASID = _Bits(CD, "asid")
_CD_TTB0 = _Bits(CD, "ttb0")
_READ, _WRITE = int(Access.READ), int(Access.WRITE)
_PROT_READ, _PROT_WRITE = int(Prot.READ), int(Prot.WRITE)


class SmmuUnit:
    """An SMMUv3 instance: where its stream table is, and what it has cached."""

    __slots__ = ("strtab_base", "sid_bits", "ste_cache", "cd_cache", "tlb", "atc", "walk", "cmd_log")

    def __init__(self, mem: Memory, sid_bits: int = 8) -> None:
        nbytes = STE_SIZE << sid_bits
        self.strtab_base: int = mem.alloc_page(max(1, -(-nbytes // PAGE_SIZE)))
        self.sid_bits: int = sid_bits
        self.ste_cache: set[SteCacheEntry] = set()
        self.cd_cache: set[CdCacheEntry] = set()
        self.tlb: set[TlbEntry] = set()
        self.atc: set[AtcEntry] = set()
        #: the walk cache: filled only when memory has leaf table pages (bound walk_caches)
        self.walk: set[WalkEntry] = set()
        #: Every executed command in order: history for reports and tests, not state
        #: (left out of `key()` and `__eq__`).
        self.cmd_log: list[Command] = []

    # -- geometry -----------------------------------------------------------
    @property
    def num_stes(self) -> int:
        return 1 << self.sid_bits

    def ste_addr(self, sid: int) -> int:
        if not 0 <= sid < self.num_stes:
            raise ValueError(f"SID {sid:#x} beyond the stream table ({self.sid_bits} SID bits)")
        return self.strtab_base + STE_SIZE * sid

    def read_ste(self, mem: Memory, sid: int) -> Words:
        return mem.read(self.ste_addr(sid), STE_QWORDS)

    @property
    def cfg_cache(self) -> frozenset[SteCacheEntry | CdCacheEntry]:
        """The configuration cache: STEs and CDs together."""
        return frozenset(self.ste_cache) | frozenset(self.cd_cache)

    def entries(self) -> Iterator[CacheEntry]:
        yield from self.ste_cache
        yield from self.cd_cache
        yield from self.tlb
        yield from self.atc
        yield from self.walk

    def device_gone(self, sid: int) -> None:
        """The endpoint left the bus: its ATC (in the device) goes with it."""
        self.atc = {e for e in self.atc if e.sid != sid}

    # -- state --------------------------------------------------------------
    def copy(self) -> SmmuUnit:
        u = SmmuUnit.__new__(SmmuUnit)
        u.strtab_base = self.strtab_base
        u.sid_bits = self.sid_bits
        u.ste_cache = set(self.ste_cache)
        u.cd_cache = set(self.cd_cache)
        u.tlb = set(self.tlb)
        u.atc = set(self.atc)
        u.walk = set(self.walk)
        u.cmd_log = list(self.cmd_log)
        return u

    def key(self) -> tuple[object, ...]:
        return (
            self.strtab_base,
            self.sid_bits,
            frozenset(self.ste_cache),
            frozenset(self.cd_cache),
            frozenset(self.tlb),
            frozenset(self.atc),
            frozenset(self.walk),
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SmmuUnit) and self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.key())

    def __repr__(self) -> str:
        return (
            f"<SmmuUnit strtab@{self.strtab_base:#x} ste={len(self.ste_cache)} "
            f"cd={len(self.cd_cache)} tlb={len(self.tlb)} atc={len(self.atc)}>"
        )

    # -- commands -----------------------------------------------------------
    def _cache(
        self, which: Cache
    ) -> set[SteCacheEntry] | set[CdCacheEntry] | set[TlbEntry] | set[AtcEntry] | set[WalkEntry]:
        if which is Cache.STE:
            return self.ste_cache
        if which is Cache.CD:
            return self.cd_cache
        if which is Cache.TLB:
            return self.tlb
        if which is Cache.WALK:
            return self.walk
        return self.atc

    def execute(self, cmd: Command) -> frozenset[CacheEntry]:
        """Run one command: remove exactly the entries it covers; return them."""
        self.cmd_log.append(cmd)
        removed: list[CacheEntry] = []
        for which in cmd.CACHES:
            cache = self._cache(which)
            gone = [e for e in cache if cmd.covers(e)]
            cache.difference_update(gone)
            removed.extend(gone)
        return frozenset(removed)

    def issue_cmd_with_sync(self, cmd: Command) -> frozenset[CacheEntry]:
        """`arm_smmu_cmdq_issue_cmd_with_sync`: the command, then CMD_SYNC."""
        return self.issue_cmdlist([cmd])

    def issue_cmdlist(self, cmds: Iterable[Command]) -> frozenset[CacheEntry]:
        """A batch then one CMD_SYNC (`arm_smmu_cmdq_batch_submit`); returns what was removed."""
        removed: set[CacheEntry] = set()
        for cmd in cmds:
            removed |= self.execute(cmd)
        self.execute(CMD_SYNC())
        return frozenset(removed)


# -- writing entries the way the driver does (B.7) -------------------------------------


def apply_write(
    unit: SmmuUnit, mem: Memory, addr: int, result: WriteResult, sync_cmds: Sequence[Command]
) -> None:
    """Replay a `write_entry` result at `addr`: each Store is one 64-bit store, each Sync issues
    `sync_cmds` + CMD_SYNC (the writer's `sync` op)."""
    for step in result.steps:
        if isinstance(step, Store):
            mem.write64(addr + 8 * step.qword, step.value)
        else:
            unit.issue_cmdlist(sync_cmds)


def write_ste(
    unit: SmmuUnit,
    mem: Memory,
    sid: int,
    target: Words,
    prefetch: bool = True,
    use_update_safe: bool = True,
) -> WriteResult:
    """`arm_smmu_write_ste`: the hitless writer with CFGI_STE(sid, leaf)+SYNC as its sync,
    then PREFETCH_CFG(sid) unless ARM_SMMU_OPT_SKIP_PREFETCH."""
    addr = unit.ste_addr(sid)
    result = write_entry(mem.read(addr, STE_QWORDS), target, STE_WRITER, use_update_safe)
    apply_write(unit, mem, addr, result, [CFGI_STE(sid=sid, leaf=True)])
    if prefetch:
        unit.execute(PREFETCH_CFG(sid=sid))
    return result


def write_cd(
    unit: SmmuUnit, mem: Memory, cd_addr: int, sids: Sequence[int], ssid: int, target: Words
) -> WriteResult:
    """`arm_smmu_write_cd_entry`: the writer with `arm_smmu_sync_cd(master, ssid, leaf=true)` as
    its sync (one CFGI_CD per stream of the master, batched, + SYNC)."""
    result = write_entry(mem.read(cd_addr, CD_QWORDS), target, CD_WRITER)
    apply_write(unit, mem, cd_addr, result, [CFGI_CD(sid=s, ssid=ssid, leaf=True) for s in sids])
    return result


def cd_addr(ste: Sequence[int], ssid: int) -> int:
    """Where a linear CD table puts the CD of `ssid`: (s1ctxptr << 6) + 64 * ssid."""
    return (_STE_S1CTXPTR.get(ste) << _STE_S1CTXPTR.lo) + CD_SIZE * ssid


# -- translation ----------------------------------------------------------------------


def _via(parts: Sequence[str]) -> str:
    return " + ".join(parts) if parts else "walk"


def _leaf(pfn: int, prot: Prot, iova: int, access: Access, parts: Sequence[str]) -> Outcome:
    a, p = int(access), int(prot)
    if (a & _READ and not p & _PROT_READ) or (a & _WRITE and not p & _PROT_WRITE):
        return fault(FaultReason.PERMISSION, _via(parts))
    return translated((pfn << PAGE_SHIFT) | (iova & _PAGE_MASK), _via(parts))


def _stage1_cd_index(ste: Sequence[int], ssid: int | None) -> int | FaultReason | None:
    """Which CD a stage-1 STE selects for this request: an index, a fault, or None = bypass."""
    s1dss = _STE_S1DSS.get(ste)
    if ssid is None:
        if s1dss == S1Dss.TERMINATE:
            return FaultReason.C_BAD_SUBSTREAMID
        if s1dss == S1Dss.BYPASS:
            return None
        if s1dss == S1Dss.SSID0:
            index = 0
        else:
            return FaultReason.C_BAD_STE  # S1DSS = 3 is reserved
    else:
        s1cdmax = _STE_S1CDMAX.get(ste)
        if s1cdmax == 0 or ssid >= (1 << s1cdmax):
            return FaultReason.C_BAD_SUBSTREAMID
        if ssid == 0 and s1dss == S1Dss.SSID0:
            return FaultReason.C_BAD_SUBSTREAMID
        index = ssid
    if _STE_S1FMT.get(ste) != S1Fmt.LINEAR:
        return FaultReason.NOT_MODELLED
    return index


def _ste_problem(ste: Sequence[int], ssid: int | None) -> FaultReason | None:
    """The fault a STE gives before any walk, or None if it passes traffic on."""
    if not _STE_V.get(ste):
        return FaultReason.C_BAD_STE
    cfg = _STE_CFG.get(ste)
    if cfg == Cfg.ABORT:
        return FaultReason.STE_ABORT
    if cfg not in (Cfg.BYPASS, Cfg.S1_TRANS, Cfg.S2_TRANS, Cfg.NESTED):
        return FaultReason.C_BAD_STE
    if ssid is not None and cfg not in (Cfg.S1_TRANS, Cfg.NESTED):
        return FaultReason.C_BAD_SUBSTREAMID
    return None


def translate(
    unit: SmmuUnit, mem: Memory, sid: int, ssid: int | None, iova: int, access: Access
) -> frozenset[Outcome]:
    """Every outcome the hardware may produce for this request right now (module docstring)."""
    out: set[Outcome] = set()
    iova_pfn = iova >> PAGE_SHIFT
    for a in unit.atc:
        if a.sid == sid and a.ssid == ssid and a.iova_pfn == iova_pfn:
            out.add(_leaf(a.pfn, a.prot, iova, access, [f"ATC ({a.tag})"]))
    if not 0 <= sid < unit.num_stes:
        out.add(fault(FaultReason.C_BAD_STREAMID))
        return frozenset(out)

    ste_views: list[tuple[Words, list[str]]] = [(unit.read_ste(mem, sid), [])]
    for e in unit.ste_cache:
        if e.sid == sid:
            ste_views.append((e.words, [f"config-cache STE (sid {sid:#x})"]))

    for ste, parts in ste_views:
        problem = _ste_problem(ste, ssid)
        if problem is not None:
            out.add(fault(problem, _via(parts)))
            continue
        cfg = _STE_CFG.get(ste)
        vmid = _STE_S2VMID.get(ste)
        if cfg == Cfg.BYPASS:
            out.add(bypass(_via(parts)))
        elif cfg == Cfg.S2_TRANS:
            _walk_and_tlb(unit, mem, _STE_S2TTB.get(ste) << _STE_S2TTB.lo, vmid, None,
                          iova, access, parts, out)
        else:
            index = _stage1_cd_index(ste, ssid)
            if index is None and cfg == Cfg.NESTED:
                # stage 1 bypassed (S1DSS=BYPASS) over stage 2: a stage-2-only translation
                _walk_and_tlb(unit, mem, _STE_S2TTB.get(ste) << _STE_S2TTB.lo, vmid, None,
                              iova, access, parts, out)
                continue
            if index is None:
                out.add(bypass(_via(parts)))
                continue
            if isinstance(index, FaultReason):
                out.add(fault(index, _via(parts)))
                continue
            cd_views: list[tuple[Words, list[str]]] = [
                (mem.read(cd_addr(ste, index), CD_QWORDS), parts)
            ]
            for c in unit.cd_cache:
                if c.sid == sid and c.ssid == index:
                    cd_views.append(
                        (c.words, parts + [f"config-cache CD (sid {sid:#x}, ssid {index})"])
                    )
            for cd, cd_parts in cd_views:
                if not _CD_V.get(cd):
                    out.add(fault(FaultReason.C_BAD_CD, _via(cd_parts)))
                elif _CD_EPD0.get(cd):
                    out.add(fault(FaultReason.EPD0, _via(cd_parts)))
                else:
                    root = _CD_TTB0.get(cd) << _CD_TTB0.lo
                    if cfg == Cfg.NESTED:
                        _nested_walk_and_tlb(unit, mem, root, _STE_S2TTB.get(ste) << _STE_S2TTB.lo,
                                             vmid, _CD_ASID.get(cd), iova, access, cd_parts, out)
                    else:
                        _walk_and_tlb(unit, mem, root, vmid, _CD_ASID.get(cd),
                                      iova, access, cd_parts, out)
    return frozenset(out)


def _nested_walk_and_tlb(
    unit: SmmuUnit,
    mem: Memory,
    s1: int,
    s2: int,
    vmid: int,
    asid: int,
    iova: int,
    access: Access,
    parts: list[str],
    out: set[Outcome],
) -> None:
    """A nested (S1+S2) request: the two-stage walk, the stage-2-only TLB entries of the
    IPA stage 1 gives now (a walk may take its second stage from the TLB), and every
    combined entry of (vmid, asid) for the page."""
    iova_pfn = iova >> PAGE_SHIFT
    first, second = nested_walk(mem, s1, s2, iova_pfn)
    pte = nested_leaf(first, second)
    if pte is None:
        out.add(fault(FaultReason.NO_MAPPING, _via(parts)))
    else:
        out.add(_leaf(pte.pfn, pte.prot, iova, access, parts))
    if first is not None:
        for t in unit.tlb:
            if t.vmid == vmid and t.asid is None and t.iova_pfn == first.pfn:
                out.add(_leaf(t.pfn, first.prot & t.prot, iova, access,
                              parts + [f"TLB ({t.tag}) ipa {first.pfn << PAGE_SHIFT:#x}"]))
    for t in unit.tlb:
        if t.vmid == vmid and t.asid == asid and t.iova_pfn == iova_pfn:
            out.add(_leaf(t.pfn, t.prot, iova, access, parts + [f"TLB ({t.tag})"]))


def _walk_and_tlb(
    unit: SmmuUnit,
    mem: Memory,
    root: int,
    vmid: int,
    asid: int | None,
    iova: int,
    access: Access,
    parts: list[str],
    out: set[Outcome],
) -> None:
    """The page walk from `root`, plus every TLB entry the tag (vmid, asid) reaches."""
    iova_pfn = iova >> PAGE_SHIFT
    pte = mem.walk(root, iova_pfn)
    if pte is None:
        out.add(fault(FaultReason.NO_MAPPING, _via(parts)))
    else:
        out.add(_leaf(pte.pfn, pte.prot, iova, access, parts))
    region = iova_pfn >> TABLE_SPAN_SHIFT
    for w in unit.walk:
        # a walk that starts from a cached leaf-table pointer of this tag reads the PTE
        # through that page, whatever it holds now
        if w.vmid == vmid and w.asid == asid and w.region == region:
            wpte = mem.walk_table(w.table, iova_pfn)
            if wpte != pte:
                wparts = parts + [f"walk cache ({w.tag}) -> table @{w.table:#x}"]
                if wpte is None:
                    out.add(fault(FaultReason.NO_MAPPING, _via(wparts)))
                else:
                    out.add(_leaf(wpte.pfn, wpte.prot, iova, access, wparts))
    for t in unit.tlb:
        if t.vmid == vmid and t.asid == asid and t.iova_pfn == iova_pfn:
            out.add(_leaf(t.pfn, t.prot, iova, access, parts + [f"TLB ({t.tag})"]))


def fill(
    unit: SmmuUnit, mem: Memory, sid: int, ssid: int | None, iova: int, access: Access
) -> frozenset[CacheEntry]:
    """Cache what a fresh walk for this request would, at every level; return the new entries."""
    cfg = _CONFIG_WALKS.get(mem, (unit.strtab_base, unit.sid_bits, sid, ssid),
                            lambda: _config_walk(unit, mem, sid, ssid))
    if cfg is None:
        return frozenset()
    ste_e, cd_e, root, vmid, asid, ats, s2 = cfg
    added: list[CacheEntry] = [ste_e]
    unit.ste_cache.add(ste_e)
    if cd_e is not None:
        added.append(cd_e)
        unit.cd_cache.add(cd_e)
    iova_pfn = iova >> PAGE_SHIFT
    if root is _IDENTITY:  # ATS on a bypassed stage 1 returns the identity translation.
        if ats:
            added.append(AtcEntry(sid, ssid, iova_pfn, iova_pfn, Prot.RW))
    elif root is not None and s2 is not None:
        # nested: the combined entry and the stage-2-only entry of the IPA (no walk
        # cache: bounds nesting and walk_caches do not mix)
        first, second = nested_walk(mem, root, s2, iova_pfn)
        pte = nested_leaf(first, second)
        if first is not None and second is not None and pte is not None:
            added.append(TlbEntry(vmid, None, first.pfn, second.pfn, second.prot))
            added.append(TlbEntry(vmid, asid, iova_pfn, pte.pfn, pte.prot, ipa_pfn=first.pfn))
            if ats:
                added.append(AtcEntry(sid, ssid, iova_pfn, pte.pfn, pte.prot))
    elif root is not None:
        table = mem.leaf_table(root, iova_pfn)
        if table is not None:  # the walk went through it, whatever the leaf PTE says
            added.append(WalkEntry(vmid, asid, iova_pfn >> TABLE_SPAN_SHIFT, table, root))
        pte = mem.walk(root, iova_pfn)
        if pte is not None:
            added.append(TlbEntry(vmid, asid, iova_pfn, pte.pfn, pte.prot, block=pte.block))
            if ats:
                added.append(AtcEntry(sid, ssid, iova_pfn, pte.pfn, pte.prot))
    for e in added[1 + (cd_e is not None):]:
        if isinstance(e, TlbEntry):
            unit.tlb.add(e)
        elif isinstance(e, AtcEntry):
            unit.atc.add(e)
        elif isinstance(e, WalkEntry):
            unit.walk.add(e)
    return frozenset(added)


#: `_config_walk`'s root for a stage 1 that is bypassed (S1DSS / no CD table walk)
_IDENTITY = -1
_ConfigWalk = tuple[SteCacheEntry, "CdCacheEntry | None", "int | None", int, "int | None", bool,
                    "int | None"] | None
#: the walk of STE and CD reads table words and the stream table's place only (module doc
#: of hwspec/memory.py), so it is memoized by the words' contents
_CONFIG_WALKS: WalkMemo[tuple[int, int, int, int | None], _ConfigWalk] = WalkMemo()


def _config_walk(unit: SmmuUnit, mem: Memory, sid: int, ssid: int | None) -> _ConfigWalk:
    """The configuration levels `fill` caches: (STE-cache entry, CD-cache entry or None,
    the page-table root to walk (None: no leaf, _IDENTITY: stage 1 bypassed), VMID, the TLB
    entry's ASID (None for stage 2), EATS=TRANS, the stage-2 root of a nested STE or
    None); None if no valid STE is cached."""
    if not 0 <= sid < unit.num_stes:
        return None
    ste = unit.read_ste(mem, sid)
    if not _STE_V.get(ste) or _STE_CFG.get(ste) not in (
        Cfg.ABORT, Cfg.BYPASS, Cfg.S1_TRANS, Cfg.S2_TRANS, Cfg.NESTED
    ):
        return None
    ste_e = SteCacheEntry(sid, ste)
    ats = _STE_EATS.get(ste) == Eats.TRANS
    vmid = _STE_S2VMID.get(ste)
    cfg = _STE_CFG.get(ste)
    passes = _ste_problem(ste, ssid) is None
    s2 = _STE_S2TTB.get(ste) << _STE_S2TTB.lo
    if passes and cfg == Cfg.S2_TRANS:
        return ste_e, None, s2, vmid, None, ats, None
    if passes and cfg in (Cfg.S1_TRANS, Cfg.NESTED):
        nested = s2 if cfg == Cfg.NESTED else None
        index = _stage1_cd_index(ste, ssid)
        if index is None:
            # S1DSS=BYPASS: the identity, or on a nested STE a stage-2-only walk
            return ste_e, None, _IDENTITY if nested is None else s2, vmid, None, ats, None
        if not isinstance(index, FaultReason):
            cd = mem.read(cd_addr(ste, index), CD_QWORDS)
            if _CD_V.get(cd):
                root = None if _CD_EPD0.get(cd) else _CD_TTB0.get(cd) << _CD_TTB0.lo
                return ste_e, CdCacheEntry(sid, index, cd), root, vmid, _CD_ASID.get(cd), ats, nested
    return ste_e, None, None, vmid, None, ats, None


# -- dump -------------------------------------------------------------------------------


def _nonzero_slots(mem: Memory, base: int, count: int, size: int) -> list[int]:
    """Indices of the `size`-byte slots in [base, base + count*size) holding a non-zero word."""
    end = base + count * size
    return sorted({(a - base) // size for a in mem.words if base <= a < end})


def dump(unit: SmmuUnit, mem: Memory) -> list[str]:
    """A readable picture: non-zero STEs, the CDs reachable through stage-1 STEs, then caches."""
    lines = [f"SMMUv3 stream table @{unit.strtab_base:#x} ({unit.num_stes} STEs, linear)"]
    s1_stes: list[tuple[int, Words]] = []
    for sid in _nonzero_slots(mem, unit.strtab_base, unit.num_stes, STE_SIZE):
        ste = unit.read_ste(mem, sid)
        lines.append(f"  sid {sid:#x}: {STE.dump(ste)}")
        if (
            _STE_V.get(ste)
            and _STE_CFG.get(ste) & 1
            and _STE_S1FMT.get(ste) == S1Fmt.LINEAR
        ):
            s1_stes.append((sid, ste))
    for sid, ste in s1_stes:
        base = cd_addr(ste, 0)
        count = 1 << _STE_S1CDMAX.get(ste)
        lines.append(f"  CD table of sid {sid:#x} @{base:#x} ({count} CDs, linear)")
        slots = _nonzero_slots(mem, base, count, CD_SIZE)
        for ssid in slots:
            lines.append(f"    ssid {ssid}: {CD.dump(mem.read(cd_addr(ste, ssid), CD_QWORDS))}")
        if not slots:
            lines.append("    (all CDs zero)")
    sections: list[tuple[str, list[CacheEntry]]] = [
        ("config cache", [*unit.ste_cache, *unit.cd_cache]),
        ("TLB", [*unit.tlb]),
        ("ATC", [*unit.atc]),
        *([("walk cache", list[CacheEntry](unit.walk))] if mem.table_pages else []),
    ]
    for title, cache in sections:
        lines.append(f"{title}:" if cache else f"{title}: (empty)")
        for e in sorted(cache, key=sort_key):
            lines.append(f"  {e}")
    return lines
