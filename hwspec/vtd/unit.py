"""A VT-d remapping unit in scalable mode: table walk, caches, invalidation, translation.

The unit owns its caches and its invalidation log, not memory: every function takes
the `Memory` holding the tables, so the model can share one memory between units.

Translation, `translate(unit, mem, sid, pasid, iova, access)`, returns every outcome
the hardware may produce now, each with the path (`via`) that produces it:

* A request without PASID uses the context entry's RID_PASID (A.1; the kernel sets
  it to IOMMU_NO_PASID); a PASID request with context PASIDE=0 faults. A non-present
  root half, context, PASID-directory or PASID entry faults with its `FaultReason`;
  a PASID at or beyond 2^(PDTS+7) * 64 faults PASID_TOO_LARGE. FPD only silences
  fault reporting: the request is still blocked.
* Configuration "views": the fresh walk through memory; each context-cache entry of
  the SID (its possibly stale PASID-directory pointer, walked through memory); each
  PASID-cache entry for (SID, PASID) reached through a context view. Cached views
  equal to the fresh one are folded into it.
* A view with a present PASID entry gives a DID and a PGTT:
  FL_ONLY: walk of FLPTPTR plus every IOTLB entry tagged (DID, PASID, page);
  SL_ONLY: walk of SLPTPTR plus every IOTLB entry tagged (DID, second-stage, page);
  PT: bypass plus the IOTLB entries tagged (DID, PASID, page);
  NESTED: the first-stage walk of FLPTPTR (the guest's table: input -> IPA), then the
  second-stage walk of SLPTPTR at that IPA, permissions of both; plus every IOTLB
  entry tagged (DID, PASID, page) (combined entries). Not modelled: the second-stage
  translation of the first-stage table's own pointers (FLPTPTR and the guest's table
  pages are taken as host-physical) and nested paging-structure caches;
  reserved values: BAD_PGTT.
  The IOTLB is looked up with the DID read from the view, so a stale IOTLB entry is
  reachable only through a view that yields its DID: the architecture (the DID comes
  from the PASID entry), and what makes DID reuse dangerous.
* Every device-TLB entry tagged (SID, PASID or None, page) is an outcome too: the
  device sends translated requests without the IOMMU's lookup.
* A leaf refuses an access its permissions lack (PERMISSION). A translated outcome's
  `pa` is the physical byte address: page frame << 12 | iova page offset.

`fill` caches what the fresh walk yields at this moment, at every level it got
through: context entry, PASID entry (with its DID), the IOTLB leaf, and a device-TLB
entry when the context entry has DTE=1. A faulting level and those below it are not
cached. Hypothesis/explorer call it as a nondeterministic hardware event.
"""

from __future__ import annotations

from typing import Iterable, Iterator, Sequence

from ..memory import PAGE_SHIFT, PAGE_SIZE, TABLE_SPAN_SHIFT, Memory, Prot, Pte, WalkMemo, nested_leaf, nested_walk
from ..outcome import Access, FaultReason, Outcome, bypass, fault, translated
from .caches import CacheEntry, ContextCacheEntry, DevTlbEntry, IotlbEntry, PasidCacheEntry, PscEntry
from .entries import (
    CONTEXT_ENTRY,
    PASID_DIR_ENTRY,
    PASID_ENTRY,
    PASID_ENTRY_SIZE,
    PASID_PDE_SHIFT,
    PASID_TBL_ENTRIES,
    ROOT_ENTRY,
    ROOT_ENTRY_NR,
    SM_CONTEXT_ENTRIES_PER_TABLE,
    CONTEXT_ENTRY_SIZE,
    PASID_DIR_ENTRY_SIZE,
    Pgtt,
    bdf,
    context_entry_offset,
    context_half,
    page_addr,
    pasid_dir_entry_addr,
    pasid_dir_size,
    pasid_entry_addr_in_table,
    root_entry_addr,
    sid_bus,
    sid_devfn,
)
from .qi import QiDesc, qi_desc_wait
from .writer import BARRIER, FetchWindow

Words = tuple[int, ...]

# Field objects resolved once: translate() runs millions of times in the explorer.
_CTX_P = CONTEXT_ENTRY["p"]
_CTX_DTE = CONTEXT_ENTRY["dte"]
_CTX_PASIDE = CONTEXT_ENTRY["paside"]
_CTX_PDTS = CONTEXT_ENTRY["pdts"]
_CTX_DIRPTR = CONTEXT_ENTRY["pasiddirptr"]
_CTX_RID_PASID = CONTEXT_ENTRY["rid_pasid"]
_PDE_P = PASID_DIR_ENTRY["p"]
_PDE_PTR = PASID_DIR_ENTRY["smptblptr"]
_PE_P = PASID_ENTRY["p"]
_PE_PGTT = PASID_ENTRY["pgtt"]
_PE_DID = PASID_ENTRY["did"]
_PE_SLPTPTR = PASID_ENTRY["slptptr"]
_PE_FLPTPTR = PASID_ENTRY["flptptr"]

_CACHE_ATTRS = ("context_cache", "pasid_cache", "iotlb", "devtlb", "psc")


class VtdUnit:
    """One DMAR unit: root table address, the four caches and the executed QI descriptors.

    `key()`/`__eq__` cover hardware state only (rtaddr and caches); `qi_log` is the
    history of executed descriptors (waits included), for driver-sequence tests and
    traces, and is copied but not compared; so are the fetch `windows` of entries
    being rewritten (writer.py).
    """

    __slots__ = ("seq_id", "rtaddr", "context_cache", "pasid_cache", "iotlb", "devtlb", "psc",
                 "qi_log", "windows")

    def __init__(self, mem: Memory, seq_id: int = 0) -> None:
        self.seq_id = seq_id
        self.rtaddr = mem.alloc_page()  # DMAR_RTADDR_REG, SMT bit implied: scalable mode only
        self.context_cache: set[ContextCacheEntry] = set()
        self.pasid_cache: set[PasidCacheEntry] = set()
        self.iotlb: set[IotlbEntry] = set()
        self.devtlb: set[DevTlbEntry] = set()
        #: paging-structure caches (leaf-table pointers); filled only when memory has
        #: leaf table pages (hwspec/memory.py, bound walk_caches)
        self.psc: set[PscEntry] = set()
        self.qi_log: list[QiDesc] = []
        #: entry address -> the values it held since the last covering invalidation
        #: (writer.py); a fetch does not outlive a step, so the driver empties it with
        #: the log and it is neither compared nor part of the key
        self.windows: dict[int, FetchWindow] = {}

    # -- state ------------------------------------------------------------------
    def copy(self) -> "VtdUnit":
        u = VtdUnit.__new__(VtdUnit)
        u.seq_id = self.seq_id
        u.rtaddr = self.rtaddr
        u.context_cache = set(self.context_cache)
        u.pasid_cache = set(self.pasid_cache)
        u.iotlb = set(self.iotlb)
        u.devtlb = set(self.devtlb)
        u.psc = set(self.psc)
        u.qi_log = list(self.qi_log)
        u.windows = {a: FetchWindow(w.what, w.probe, w.start, list(w.events), w.reported)
                     for a, w in self.windows.items()}
        return u

    def key(self) -> tuple[object, ...]:
        return (
            self.seq_id,
            self.rtaddr,
            frozenset(self.context_cache),
            frozenset(self.pasid_cache),
            frozenset(self.iotlb),
            frozenset(self.devtlb),
            frozenset(self.psc),
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VtdUnit) and self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.key())

    def __repr__(self) -> str:
        return (
            f"VtdUnit(seq_id={self.seq_id}, rtaddr={self.rtaddr:#x}, "
            f"cc={len(self.context_cache)}, pc={len(self.pasid_cache)}, "
            f"iotlb={len(self.iotlb)}, devtlb={len(self.devtlb)}, psc={len(self.psc)}, "
            f"qi={len(self.qi_log)})"
        )

    def cache_entries(self) -> Iterator[CacheEntry]:
        yield from self.context_cache
        yield from self.pasid_cache
        yield from self.iotlb
        yield from self.devtlb
        yield from self.psc

    def device_gone(self, sid: int) -> None:
        """The endpoint left the bus: its device-TLB (the ATC in the device) goes with it."""
        self.devtlb = {e for e in self.devtlb if e.sid != sid}

    # -- invalidation -------------------------------------------------------------
    def execute(self, desc: QiDesc) -> None:
        """Run one descriptor: drop exactly the entries it covers, log it."""
        for attr in desc.CACHES:
            cache: set[CacheEntry] = getattr(self, attr)
            dead = [e for e in cache if desc.covers(e)]
            cache.difference_update(dead)
        for w in self.windows.values():
            if w.ended_by(desc):
                w.events.append(BARRIER)  # fetches begun before it are over (writer.py rule 3)
        self.qi_log.append(desc)

    def qi_submit_sync(self, *descs: QiDesc, drain: bool = False) -> None:
        """dmar.c qi_submit_sync: the batch, then one wait descriptor (PRQ_DRAIN if
        QI_OPT_WAIT_DRAIN). Completion is synchronous in the model."""
        for d in descs:
            self.execute(d)
        self.execute(qi_desc_wait(prq_drain=drain))

    # -- addressing (hardware's view of the tables) ----------------------------------
    def root_entry_addr(self, bus: int) -> int:
        return root_entry_addr(self.rtaddr, bus)

    def context_entry_addr(self, mem: Memory, sid: int) -> int | None:
        """Address of the SM context entry of `sid`, or None if its root half is not present."""
        root = mem.read(self.root_entry_addr(sid_bus(sid)), ROOT_ENTRY.words)
        present, ptr = context_half(sid_devfn(sid))
        if not ROOT_ENTRY[present].extract(root):
            return None
        return page_addr(ROOT_ENTRY[ptr].extract(root)) + context_entry_offset(sid_devfn(sid))

    def read_context_entry(self, mem: Memory, sid: int) -> Words | None:
        """The 4 context-entry words (present or not), or None if the root half is absent."""
        addr = self.context_entry_addr(mem, sid)
        return None if addr is None else mem.read(addr, CONTEXT_ENTRY.words)

    def pasid_dir_entry_addr(self, mem: Memory, sid: int, pasid: int) -> int | None:
        """Directory entry for `pasid` via a present context entry, None if unreachable."""
        ctx = self.read_context_entry(mem, sid)
        if ctx is None or not _CTX_P.extract(ctx):
            return None
        if (pasid >> PASID_PDE_SHIFT) >= pasid_dir_size(_CTX_PDTS.extract(ctx)):
            return None
        return pasid_dir_entry_addr(page_addr(_CTX_DIRPTR.extract(ctx)), pasid)

    def pasid_entry_addr(self, mem: Memory, sid: int, pasid: int) -> int | None:
        """Address of the PASID entry, following root -> context -> directory through
        memory; None if a level on the way is not present (or the PASID is too large)."""
        pde_addr = self.pasid_dir_entry_addr(mem, sid, pasid)
        if pde_addr is None:
            return None
        pde = mem.read(pde_addr, 1)
        if not _PDE_P.extract(pde):
            return None
        return pasid_entry_addr_in_table(page_addr(_PDE_PTR.extract(pde)), pasid)

    def read_pasid_entry(self, mem: Memory, sid: int, pasid: int) -> Words | None:
        addr = self.pasid_entry_addr(mem, sid, pasid)
        return None if addr is None else mem.read(addr, PASID_ENTRY.words)


# -- the walk --------------------------------------------------------------------------
def _walk_context(unit: VtdUnit, mem: Memory, sid: int) -> tuple[Words | None, FaultReason | None]:
    addr = unit.context_entry_addr(mem, sid)
    if addr is None:
        return None, FaultReason.ROOT_NOT_PRESENT
    ctx = mem.read(addr, CONTEXT_ENTRY.words)
    if not _CTX_P.extract(ctx):
        return None, FaultReason.CONTEXT_NOT_PRESENT
    return ctx, None


def _effective_pasid(ctx: Words, pasid: int | None) -> tuple[int | None, FaultReason | None]:
    if pasid is None:
        return _CTX_RID_PASID.extract(ctx), None
    if not _CTX_PASIDE.extract(ctx):
        return None, FaultReason.PASID_DISABLED
    return pasid, None


def _walk_pasid(mem: Memory, ctx: Words, pasid: int) -> tuple[Words | None, FaultReason | None]:
    """PASID directory and table through the context entry's pointer. Returns the PASID
    entry words (P may be 0: the caller turns that into PASID_NOT_PRESENT)."""
    if (pasid >> PASID_PDE_SHIFT) >= pasid_dir_size(_CTX_PDTS.extract(ctx)):
        return None, FaultReason.PASID_TOO_LARGE
    pde = mem.read(pasid_dir_entry_addr(page_addr(_CTX_DIRPTR.extract(ctx)), pasid), 1)
    if not _PDE_P.extract(pde):
        return None, FaultReason.PASID_DIR_NOT_PRESENT
    return mem.read(
        pasid_entry_addr_in_table(page_addr(_PDE_PTR.extract(pde)), pasid), PASID_ENTRY.words
    ), None


def _pgtt(pe: Words) -> Pgtt | None:
    v = _PE_PGTT.extract(pe)
    return Pgtt(v) if v in (1, 2, 3, 4) else None


def _permits(prot: Prot, access: Access) -> bool:
    if access & Access.READ and not prot & Prot.READ:
        return False
    if access & Access.WRITE and not prot & Prot.WRITE:
        return False
    return True


def _leaf_outcome(pte: Pte | None, iova: int, access: Access, via: str) -> Outcome:
    if pte is None:
        return fault(FaultReason.NO_MAPPING, via)
    if not _permits(pte.prot, access):
        return fault(FaultReason.PERMISSION, via)
    return translated((pte.pfn << PAGE_SHIFT) | (iova & (PAGE_SIZE - 1)), via)


def _cached_outcome(
    pt: bool, pfn: int, prot: Prot, iova: int, access: Access, via: str
) -> Outcome:
    if pt:
        return bypass(via)
    return _leaf_outcome(Pte(pfn, prot), iova, access, via)


def _pasid_views(
    unit: VtdUnit, mem: Memory, sid: int, pasid: int | None, out: set[Outcome]
) -> dict[tuple[int, Words], str]:
    """Every (effective PASID, PASID-entry words) the hardware may use, with its via.
    Faults met on the way are added to `out`."""
    ctx_views: dict[Words, str] = {}
    fresh_ctx, f = _walk_context(unit, mem, sid)
    if fresh_ctx is not None:
        ctx_views[fresh_ctx] = "walk"
    else:
        assert f is not None
        out.add(fault(f))
    for cce in unit.context_cache:
        if cce.sid == sid and cce.words not in ctx_views:
            ctx_views[cce.words] = f"context-cache (sid {sid:#06x})"

    views: dict[tuple[int, Words], str] = {}
    for ctx, via in ctx_views.items():
        peff, f = _effective_pasid(ctx, pasid)
        if peff is None:
            assert f is not None
            out.add(fault(f, via))
            continue
        pe, f = _walk_pasid(mem, ctx, peff)
        if pe is None:
            assert f is not None
            out.add(fault(f, via))
        else:
            views.setdefault((peff, pe), via)
        for pce in unit.pasid_cache:
            if pce.sid == sid and pce.pasid == peff:
                views.setdefault((peff, pce.words), f"PASID-cache (did {pce.did}, pasid {peff})")
    return views


def translate(
    unit: VtdUnit, mem: Memory, sid: int, pasid: int | None, iova: int, access: Access
) -> frozenset[Outcome]:
    """Every outcome of a DMA (sid, pasid or None, iova, access) right now (module doc)."""
    out: set[Outcome] = set()
    iova_pfn = iova >> PAGE_SHIFT
    for (peff, pe), via in _pasid_views(unit, mem, sid, pasid, out).items():
        if not _PE_P.extract(pe):
            out.add(fault(FaultReason.PASID_NOT_PRESENT, via))
            continue
        pgtt = _pgtt(pe)
        did = _PE_DID.extract(pe)
        if pgtt is None:
            out.add(fault(FaultReason.BAD_PGTT, via))
            continue
        tag = None if pgtt is Pgtt.SL_ONLY else peff
        if pgtt is Pgtt.PT:
            out.add(bypass(via))
        elif pgtt is Pgtt.NESTED:
            s1 = page_addr(_PE_FLPTPTR.extract(pe))
            s2 = page_addr(_PE_SLPTPTR.extract(pe))
            out.add(_leaf_outcome(nested_leaf(*nested_walk(mem, s1, s2, iova_pfn)), iova, access, via))
        else:
            root = page_addr((_PE_FLPTPTR if pgtt is Pgtt.FL_ONLY else _PE_SLPTPTR).extract(pe))
            fresh = mem.walk(root, iova_pfn)
            out.add(_leaf_outcome(fresh, iova, access, via))
            region = iova_pfn >> TABLE_SPAN_SHIFT
            for w in unit.psc:
                # a walk that starts from a cached leaf-table pointer of this tag reads
                # the PTE through that page, whatever it holds now
                if w.did == did and w.pasid == tag and w.region == region:
                    pte = mem.walk_table(w.table, iova_pfn)
                    if pte != fresh:
                        out.add(_leaf_outcome(pte, iova, access, f"{via}, paging-structure cache "
                                              f"(did {did}) -> table @{w.table:#x}"))
        for e in unit.iotlb:
            if e.did == did and e.pasid == tag and e.iova_pfn == iova_pfn:
                ivia = f"IOTLB (did {did})" if tag is None else f"IOTLB (did {did}, pasid {tag})"
                out.add(_cached_outcome(e.pt, e.pfn, e.prot, iova, access, ivia))
    for d in unit.devtlb:
        if d.sid == sid and d.pasid == pasid and d.iova_pfn == iova_pfn:
            dvia = f"device-TLB (sid {sid:#06x}" + ("" if pasid is None else f", pasid {pasid}") + ")"
            out.add(_cached_outcome(d.pt, d.pfn, d.prot, iova, access, dvia))
    return frozenset(out)


def fill(unit: VtdUnit, mem: Memory, sid: int, pasid: int | None, iova: int, access: Access) -> None:
    """Cache what the fresh walk yields now, every level it got through (module doc)."""
    cfg = _CONFIG_WALKS.get(mem, (unit.rtaddr, sid, pasid), lambda: _config_walk(unit, mem, sid, pasid))
    if cfg is None:
        return
    cce, pce, dte, root, tag, s2 = cfg
    unit.context_cache.add(cce)
    if pce is None:
        return
    unit.pasid_cache.add(pce)
    iova_pfn = iova >> PAGE_SHIFT
    ipa: int | None = None
    block = False  # the leaf is a 2 MiB superpage (caches.py IotlbEntry)
    if root is None:  # pass-through
        pfn, prot, pt = iova_pfn, Prot.RW, True
    elif s2 is not None:  # nested: one combined entry for both stages
        first, second = nested_walk(mem, root, s2, iova_pfn)
        pte, ipa = nested_leaf(first, second), (None if first is None else first.pfn)
        if pte is None or not _permits(pte.prot, access):
            return
        pfn, prot, pt = pte.pfn, pte.prot, False
    else:
        table = mem.leaf_table(root, iova_pfn)
        if table is not None:  # the walk went through it, whatever the leaf PTE says
            unit.psc.add(PscEntry(pce.did, tag, iova_pfn >> TABLE_SPAN_SHIFT, table, root))
        pte = mem.walk(root, iova_pfn)
        if pte is None or not _permits(pte.prot, access):
            return
        pfn, prot, pt, block = pte.pfn, pte.prot, False, pte.block
    unit.iotlb.add(IotlbEntry(pce.did, tag, iova_pfn, pfn, prot, pt, ipa, block))
    if dte:
        unit.devtlb.add(DevTlbEntry(sid, pasid, iova_pfn, pfn, prot, pt))


def fill_kernel_half(unit: VtdUnit, mem: Memory, sid: int, pasid: int, cpu_tables: frozenset[int],
                     kernel_root: int, kva: int) -> None:
    """A first-stage walk for a kernel address through a PASID whose FLPTPTR is one of
    `cpu_tables` (process page tables, whose kernel half is `kernel_root`'s): the
    configuration levels and the pointer to the kernel's leaf table are cached; the
    leaf is supervisor-only, so nothing reaches the IOTLB (module doc: `fill`)."""
    cfg = _CONFIG_WALKS.get(mem, (unit.rtaddr, sid, pasid), lambda: _config_walk(unit, mem, sid, pasid))
    if cfg is None:
        return
    cce, pce, _, root, tag, s2 = cfg
    unit.context_cache.add(cce)
    if pce is None or root is None or root not in cpu_tables or tag is None or s2 is not None:
        return
    unit.pasid_cache.add(pce)
    table = mem.leaf_table(kernel_root, kva >> PAGE_SHIFT)
    if table is not None:
        unit.psc.add(PscEntry(pce.did, tag, kva >> (PAGE_SHIFT + TABLE_SPAN_SHIFT), table, kernel_root))


_ConfigWalk = tuple[ContextCacheEntry, "PasidCacheEntry | None", bool, "int | None", "int | None",
                    "int | None"] | None
#: the walk of the configuration tables reads table words and rtaddr only (module doc of
#: hwspec/memory.py), so it is memoized by the words' contents
_CONFIG_WALKS: WalkMemo[tuple[int, int, int | None], _ConfigWalk] = WalkMemo()


def _config_walk(unit: VtdUnit, mem: Memory, sid: int, pasid: int | None) -> _ConfigWalk:
    """The configuration levels `fill` caches: (context-cache entry, PASID-cache entry or
    None if the walk stops before it, the context entry's DTE, the page-table root or None
    for pass-through (NESTED: the first-stage root), the IOTLB's PASID tag: None for
    second-stage, the second-stage root of a NESTED entry or None); None if no context
    entry is present."""
    ctx, _ = _walk_context(unit, mem, sid)
    if ctx is None:
        return None
    cce = ContextCacheEntry(sid, ctx)
    peff, _ = _effective_pasid(ctx, pasid)
    if peff is None:
        return cce, None, False, None, None, None
    pe, _ = _walk_pasid(mem, ctx, peff)
    if pe is None or not _PE_P.extract(pe):
        return cce, None, False, None, None, None
    pgtt = _pgtt(pe)
    if pgtt is None:
        return cce, None, False, None, None, None
    pce = PasidCacheEntry(sid, _PE_DID.extract(pe), peff, pe)
    s2 = None
    if pgtt is Pgtt.PT:
        root = None
    elif pgtt is Pgtt.NESTED:
        root = page_addr(_PE_FLPTPTR.extract(pe))
        s2 = page_addr(_PE_SLPTPTR.extract(pe))
    else:
        root = page_addr((_PE_FLPTPTR if pgtt is Pgtt.FL_ONLY else _PE_SLPTPTR).extract(pe))
    return cce, pce, bool(_CTX_DTE.extract(ctx)), root, None if pgtt is Pgtt.SL_ONLY else peff, s2


# -- dump ---------------------------------------------------------------------------------
def _nonzero(mem: Memory, base: int, size: int) -> list[int]:
    """Addresses of the non-zero words in [base, base + size)."""
    return sorted(a for a in mem.words if base <= a < base + size)


def _entries(mem: Memory, base: int, count: int, entry_size: int) -> Iterable[int]:
    """Indexes of the entries in a table that hold any non-zero word."""
    return sorted({(a - base) // entry_size for a in _nonzero(mem, base, count * entry_size)})


def _present(p: int) -> str:
    return "" if p else " (NOT PRESENT)"


def dump(unit: VtdUnit, mem: Memory) -> list[str]:
    """The unit's tables (every non-zero root/context/directory/PASID entry, with address and
    index) and caches (sorted), as a kernel engineer reads them in a trace."""
    lines = [f"VT-d unit {unit.seq_id}: rtaddr {unit.rtaddr:#x} (scalable mode)"]
    for bus in _entries(mem, unit.rtaddr, ROOT_ENTRY_NR, 16):
        raddr = unit.root_entry_addr(bus)
        root = mem.read(raddr, ROOT_ENTRY.words)
        lines.append(f"  root[{bus:02x}] @{raddr:#x} {ROOT_ENTRY.dump(root)}")
        for pname, ptrname, devfn0 in (("lp", "lctp", 0), ("up", "uctp", SM_CONTEXT_ENTRIES_PER_TABLE)):
            if not ROOT_ENTRY[pname].extract(root):
                continue
            table = page_addr(ROOT_ENTRY[ptrname].extract(root))
            for idx in _entries(mem, table, SM_CONTEXT_ENTRIES_PER_TABLE, CONTEXT_ENTRY_SIZE):
                sid = bus << 8 | (devfn0 + idx)
                caddr = table + idx * CONTEXT_ENTRY_SIZE
                ctx = mem.read(caddr, CONTEXT_ENTRY.words)
                lines.append(
                    f"    context {bdf(sid)} sid {sid:#06x} @{caddr:#x} "
                    f"{CONTEXT_ENTRY.dump(ctx)}{_present(_CTX_P.extract(ctx))}"
                )
                if _CTX_P.extract(ctx):
                    lines.extend(_dump_pasid_dir(mem, ctx))
    cc = sorted(unit.context_cache, key=ContextCacheEntry.sort_key)
    pc = sorted(unit.pasid_cache, key=PasidCacheEntry.sort_key)
    tlb = sorted(unit.iotlb, key=IotlbEntry.sort_key)
    dtlb = sorted(unit.devtlb, key=DevTlbEntry.sort_key)
    sections: list[tuple[str, Sequence[object]]] = [
        ("context-cache", cc), ("PASID-cache", pc), ("IOTLB", tlb), ("device-TLB", dtlb)]
    if mem.table_pages:
        psc = sorted(unit.psc, key=PscEntry.sort_key)
        sections.append(("paging-structure cache", psc))
    for title, entries in sections:
        lines.append(f"  {title}: {'(empty)' if not entries else len(entries)}")
        lines.extend(f"    {e}" for e in entries)
    return lines


def _dump_pasid_dir(mem: Memory, ctx: Words) -> list[str]:
    lines = []
    dirptr = page_addr(_CTX_DIRPTR.extract(ctx))
    for di in _entries(mem, dirptr, pasid_dir_size(_CTX_PDTS.extract(ctx)), PASID_DIR_ENTRY_SIZE):
        daddr = dirptr + di * PASID_DIR_ENTRY_SIZE
        pde = mem.read(daddr, 1)
        lines.append(
            f"      pasid-dir[{di}] (pasid {di << PASID_PDE_SHIFT}..{((di + 1) << PASID_PDE_SHIFT) - 1})"
            f" @{daddr:#x} {PASID_DIR_ENTRY.dump(pde)}{_present(_PDE_P.extract(pde))}"
        )
        if not _PDE_P.extract(pde):
            continue
        table = page_addr(_PDE_PTR.extract(pde))
        for ti in _entries(mem, table, PASID_TBL_ENTRIES, PASID_ENTRY_SIZE):
            paddr = table + ti * PASID_ENTRY_SIZE
            pe = mem.read(paddr, PASID_ENTRY.words)
            lines.append(
                f"        pasid {di << PASID_PDE_SHIFT | ti} @{paddr:#x} "
                f"{PASID_ENTRY.dump(pe)}{_present(_PE_P.extract(pe))}"
            )
    return lines
