"""VT-d: the PASID-entry teardown leaves no usable cache entry; DID sharing (hw-tables.md A.6-A.9).

Caches are symbolic: "an arbitrary set of tagged entries of unknown size". An
entry is a tuple of symbolic tag fields (PASID cache: SID, DID, PASID; IOTLB: DID,
PASID or none, page; device-TLB: SID, PASID or none, page) and membership is left
uninterpreted, so a proof covers every cache content. A proof that "no entry
survives" asks z3 for one surviving witness entry; unsat means none exists.

The descriptor sequences are not written here: they are what the model's driver
(`VtdDriver.tear_down_entry`, `unmap_flush`) issues on a small world, read from
the unit's `qi_log` and *lifted*: a descriptor field named did / pasid / sid /
addr that equals the concrete value of the run becomes the symbol DID / PASID /
SID / IOVA. Each run is repeated with other values and must lift to the same
template, so the template is a function of (DID, PASID, SID). Coverage of each
descriptor is its `covers()` (hwspec/vtd/qi.py, spec 6.5.2) re-expressed over z3
terms; tests check the two agree on random entries.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Sequence

import z3

from hwspec.vtd import (
    MAX_AGAW_PFN_WIDTH,
    PASID_ENTRY,
    DevTlbEntry,
    EiotlbGran,
    IotlbEntry,
    IotlbGran,
    PasidCacheEntry,
    PcGran,
    Pgtt,
    QiDeiotlb,
    QiDesc,
    QiDiotlb,
    QiEiotlb,
    QiIotlb,
    QiPc,
)
from model.bounds import Bounds
from model.core import Kernel
from model.design import Design
from model.designs import get_design
from model.drivers.vtd import VtdDriver, VtdState

from checker.world import Config

from proofs.base import Outcome, Proof, as_bool, as_int, solver, unknown
from proofs.calls import Ref, listing, replay

W_SID = QiDeiotlb.LAYOUT["sid"].width
W_DID = PASID_ENTRY["did"].width
W_PASID = QiPc.LAYOUT["pasid"].width
W_PFN = MAX_AGAW_PFN_WIDTH
_PFN_ALL = (1 << W_PFN) - 1


# -- symbolic cache entries (A.6) -------------------------------------------------------
@dataclass(frozen=True)
class PcTag:
    """A PASID-cache entry: looked up by (SID, PASID), invalidated by DID (+PASID)."""

    sid: z3.BitVecRef
    did: z3.BitVecRef
    pasid: z3.BitVecRef

    @staticmethod
    def fresh(name: str) -> "PcTag":
        return PcTag(z3.BitVec(f"{name}_sid", W_SID), z3.BitVec(f"{name}_did", W_DID),
                     z3.BitVec(f"{name}_pasid", W_PASID))


@dataclass(frozen=True)
class TlbTag:
    """An IOTLB entry: DID, PASID (absent for second-stage results), page."""

    did: z3.BitVecRef
    has_pasid: z3.BoolRef
    pasid: z3.BitVecRef
    pfn: z3.BitVecRef

    @staticmethod
    def fresh(name: str) -> "TlbTag":
        return TlbTag(z3.BitVec(f"{name}_did", W_DID), z3.Bool(f"{name}_has_pasid"),
                      z3.BitVec(f"{name}_pasid", W_PASID), z3.BitVec(f"{name}_pfn", W_PFN))


@dataclass(frozen=True)
class DevTag:
    """A device-TLB (ATC) entry: SID, PASID (absent: obtained without PASID prefix), page."""

    sid: z3.BitVecRef
    has_pasid: z3.BoolRef
    pasid: z3.BitVecRef
    pfn: z3.BitVecRef

    @staticmethod
    def fresh(name: str) -> "DevTag":
        return DevTag(z3.BitVec(f"{name}_sid", W_SID), z3.Bool(f"{name}_has_pasid"),
                      z3.BitVec(f"{name}_pasid", W_PASID), z3.BitVec(f"{name}_pfn", W_PFN))


# -- symbolic descriptors ---------------------------------------------------------------
#: Descriptor fields a run's concrete value may stand for, and the symbol it becomes.
LIFTABLE = ("did", "pasid", "sid", "addr")
#: The fields a descriptor's coverage depends on (signature of a lifted template).
COVER_FIELDS = ("gran", "did", "pasid", "sid", "addr", "am", "s")


@dataclass(frozen=True)
class SymDesc:
    """A descriptor the driver issued, some of whose fields are symbols."""

    desc: QiDesc
    symbols: Mapping[str, z3.BitVecRef] = field(default_factory=dict, compare=False)

    def f(self, name: str) -> z3.BitVecRef:
        if name in self.symbols:
            return self.symbols[name]
        return z3.BitVecVal(int(getattr(self.desc, name)), self.desc.LAYOUT[name].width)

    @property
    def signature(self) -> tuple[Any, ...]:
        return (type(self.desc).__name__, tuple(
            (n, "SYM" if n in self.symbols else int(getattr(self.desc, n)))
            for n in COVER_FIELDS if hasattr(self.desc, n)))

    def __str__(self) -> str:
        shown = ", ".join(
            f"{n}={str(self.symbols[n]) if n in self.symbols else _show(getattr(self.desc, n))}"
            for n in COVER_FIELDS if hasattr(self.desc, n))
        return f"{type(self.desc).__name__}({shown})"


def _show(v: Any) -> str:
    return v.name if hasattr(v, "name") else hex(v) if isinstance(v, int) and v > 9 else str(v)


def lift(desc: QiDesc, concrete: Mapping[str, int], symbols: Mapping[str, z3.BitVecRef]) -> SymDesc:
    """Replace each did/pasid/sid/addr field equal to this run's value by its symbol."""
    lifted = {n: symbols[n] for n in LIFTABLE
              if n in concrete and hasattr(desc, n) and int(getattr(desc, n)) == concrete[n]}
    return SymDesc(desc, lifted)


def in_psi(pfn: z3.BitVecRef, addr: z3.BitVecRef, am: int) -> z3.BoolRef:
    """`psi_pages(addr, am)`: the 2^am-page aligned block at addr."""
    if am >= W_PFN:
        return z3.BoolVal(True)
    mask = _PFN_ALL & ~((1 << am) - 1)
    return (pfn & mask) == (addr & mask)


def in_devtlb_range(pfn: z3.BitVecRef, d: SymDesc) -> z3.BoolRef:
    """`devtlb_pages(addr, s)` of a (PASID) device-TLB descriptor."""
    desc = d.desc
    assert isinstance(desc, (QiDiotlb, QiDeiotlb))
    if "addr" in d.symbols:
        if desc.s:
            raise NotImplementedError("a symbolic address with S=1 (size in the address bits)")
        return pfn == d.symbols["addr"]
    pages = desc.pages
    n = len(pages)
    if n >= 1 << W_PFN:
        return z3.BoolVal(True)
    assert n & (n - 1) == 0 and pages.start % n == 0, "device-TLB ranges are aligned powers of two"
    return (pfn & (_PFN_ALL & ~(n - 1))) == pages.start


def covers_pc(d: SymDesc, e: PcTag) -> z3.BoolRef:
    """QiPc.covers over z3 terms (spec 6.5.2.2)."""
    desc = d.desc
    if not isinstance(desc, QiPc):
        return z3.BoolVal(False)
    if desc.gran is PcGran.GLOBAL:
        return z3.BoolVal(True)
    if desc.gran is PcGran.ALL_PASIDS:
        return e.did == d.f("did")
    return z3.And(e.did == d.f("did"), e.pasid == d.f("pasid"))


def covers_iotlb(d: SymDesc, e: TlbTag) -> z3.BoolRef:
    """QiIotlb.covers / QiEiotlb.covers over z3 terms (spec 6.5.2.3, 6.5.2.4)."""
    desc = d.desc
    if isinstance(desc, QiIotlb):
        if desc.gran is IotlbGran.GLOBAL:
            return z3.BoolVal(True)
        if desc.gran is IotlbGran.DSI:
            return e.did == d.f("did")
        return z3.And(z3.Not(e.has_pasid), e.did == d.f("did"), in_psi(e.pfn, d.f("addr"), desc.am))
    if isinstance(desc, QiEiotlb):
        page = (z3.BoolVal(True) if desc.gran is EiotlbGran.NONG_PASID
                else in_psi(e.pfn, d.f("addr"), desc.am))
        return z3.And(e.has_pasid, e.pasid == d.f("pasid"), e.did == d.f("did"), page)
    return z3.BoolVal(False)


def covers_dev(d: SymDesc, e: DevTag) -> z3.BoolRef:
    """QiDiotlb.covers / QiDeiotlb.covers over z3 terms (spec 6.5.2.5, 6.5.2.6)."""
    desc = d.desc
    if isinstance(desc, QiDiotlb):
        return z3.And(e.sid == d.f("sid"), in_devtlb_range(e.pfn, d))
    if isinstance(desc, QiDeiotlb):
        return z3.And(e.sid == d.f("sid"), e.has_pasid, e.pasid == d.f("pasid"),
                      in_devtlb_range(e.pfn, d))
    return z3.BoolVal(False)


# -- the teardown, from the driver ------------------------------------------------------
def _vtd(k: Kernel) -> tuple[VtdDriver, VtdState]:
    assert isinstance(k.driver, VtdDriver) and isinstance(k.drv, VtdState)
    return k.driver, k.drv


@dataclass(frozen=True)
class Scenario:
    """What kind of PASID entry is torn down: its PGTT, RID (PASID 0) or a PASID, ATS or not."""

    pgtt: Pgtt
    rid: bool
    ats: bool

    @property
    def name(self) -> str:
        return f"{self.pgtt.name} {'RID (PASID 0)' if self.rid else 'PASID'} " \
               f"{'ATS' if self.ats else 'no-ATS'}"


SCENARIOS: tuple[Scenario, ...] = tuple(
    Scenario(pgtt, rid, ats) for pgtt in Pgtt for rid in (True, False) for ats in (True, False))

#: Two runs per scenario with different (DID, device, PASID): the lift must agree.
_RUNS = ((0x2A5, 0), (0x13C, 1))
_BOUNDS = Bounds(devices=4, ats_devices=2, ndoms=16)


def driver_teardown(design: Design, sc: Scenario, did: int, instance: int
                    ) -> tuple[list[QiDesc], dict[str, int]]:
    """Run `VtdDriver.tear_down_entry` on a present entry of the scenario; its descriptors.

    The entry is planted in the device's PASID table (the leaf table for PASIDs
    0..63 exists from boot) with the scenario's PGTT and the given DID: the
    teardown reads exactly P, FPD, DID and PGTT from it (A.8.2).
    """
    k = Config(design, "vtd", _BOUNDS).build()
    dev = k.devices[f"dev{instance if sc.ats else 2 + instance}"]
    assert dev.ats == sc.ats
    pasid = 0 if sc.rid else 1 + instance
    driver, state = _vtd(k)
    unit = state.unit
    addr = unit.pasid_entry_addr(k.mem, dev.sid, pasid)
    assert addr is not None
    k.mem.write(addr, PASID_ENTRY.encode(p=1, did=did, pgtt=sc.pgtt, aw=2, pwsnp=1))
    unit.qi_log.clear()
    driver.tear_down_entry(k, dev, pasid, True)
    return list(unit.qi_log), {"did": did, "pasid": pasid, "sid": dev.sid}


@dataclass(frozen=True)
class Teardown:
    scenario: Scenario
    did: z3.BitVecRef
    pasid: z3.BitVecRef
    sid: z3.BitVecRef
    descs: tuple[SymDesc, ...]

    def text(self) -> str:
        shown = [str(d) for d in self.descs if covers_anything(d)]
        return f"{self.scenario.name}: " + ("; ".join(shown) or "(no invalidation)")


def covers_anything(d: SymDesc) -> bool:
    return isinstance(d.desc, (QiPc, QiIotlb, QiEiotlb, QiDiotlb, QiDeiotlb))


class LiftError(AssertionError):
    """Two runs of the driver did not lift to the same template."""


def teardown_template(design: Design, sc: Scenario) -> Teardown:
    did, pasid, sid = (z3.BitVec("DID", W_DID), z3.BitVec("PASID", W_PASID),
                       z3.BitVec("SID", W_SID))
    symbols = {"did": did, "pasid": pasid, "sid": sid}
    templates = []
    for value, instance in _RUNS:
        descs, concrete = driver_teardown(design, sc, value, instance)
        templates.append(tuple(lift(d, concrete, symbols) for d in descs))
    sigs = [tuple(d.signature for d in t) for t in templates]
    if sigs[0] != sigs[1]:
        raise LiftError(f"{sc.name}: the teardown is not a function of (DID, PASID, SID): "
                        f"{sigs[0]} vs {sigs[1]}")
    return Teardown(sc, did, pasid, sid, templates[0])


# -- the teardown property, with refills between descriptors ------------------------------
def serves_pc(t: Teardown, e: PcTag) -> z3.BoolRef:
    return z3.And(e.sid == t.sid, e.pasid == t.pasid)


def serves_iotlb(t: Teardown, e: TlbTag) -> z3.BoolRef:
    """The unit's lookup (unit.translate): DID of the entry, PASID unless second-stage, page."""
    if t.scenario.pgtt is Pgtt.SL_ONLY:
        return z3.And(e.did == t.did, z3.Not(e.has_pasid))
    return z3.And(e.did == t.did, e.has_pasid, e.pasid == t.pasid)


def serves_dev(t: Teardown, e: DevTag) -> z3.BoolRef:
    """The device's own lookup: its SID and the PASID it sends (none for RID traffic)."""
    if t.scenario.rid:
        return z3.And(e.sid == t.sid, z3.Or(z3.Not(e.has_pasid), e.pasid == 0))
    return z3.And(e.sid == t.sid, e.has_pasid, e.pasid == t.pasid)


@dataclass(frozen=True)
class Survivor:
    """The query "some entry that could serve (SID, PASID) is still cached after the sequence"."""

    formula: z3.BoolRef
    pc: PcTag
    iotlb: TlbTag
    dev: DevTag
    pc_final: z3.BoolRef
    iotlb_final: z3.BoolRef
    dev_final: z3.BoolRef
    iotlb_from: list[z3.BoolRef]  # filled at stage j (0: already cached when P was cleared)
    dev_from: list[z3.BoolRef]


def survivor(t: Teardown, descs: Sequence[SymDesc] | None = None) -> Survivor:
    """Stages 0..n: stage j is after the first j descriptors (stage 0: just after P := 0).

    - PASID cache: entries for (SID, PASID) hold the entry's DID (hardware caches the
      entry it read; earlier configurations were torn down by this same sequence),
      and none is filled after P = 0.
    - IOTLB and device-TLB: arbitrary at stage 0; at a later stage j an entry for
      (SID, PASID) can be filled only while a PASID-cache entry for (SID, PASID)
      survives (after P = 0 the walk faults, so the DID comes only from that cache).
    - An entry is cached at the end if it was there (or filled) at some stage and no
      later descriptor covers it.
    """
    ds = tuple(t.descs if descs is None else descs)
    n = len(ds)

    def survives(cover: Callable[[SymDesc], z3.BoolRef], lo: int) -> z3.BoolRef:
        return z3.And(*[z3.Not(cover(d)) for d in ds[lo:]], z3.BoolVal(True))

    pcs = [PcTag.fresh(f"pc{j}") for j in range(n + 1)]
    pc_at = [z3.And(serves_pc(t, p), p.did == t.did,
                    *[z3.Not(covers_pc(d, p)) for d in ds[:j]])
             for j, p in enumerate(pcs)]
    e, v = TlbTag.fresh("iotlb"), DevTag.fresh("devtlb")
    iotlb_from = [z3.And(z3.BoolVal(True) if j == 0 else pc_at[j],
                         survives(lambda d: covers_iotlb(d, e), j)) for j in range(n + 1)]
    dev_from = [z3.And(z3.BoolVal(True) if j == 0 else pc_at[j],
                       survives(lambda d: covers_dev(d, v), j)) for j in range(n + 1)]
    pc_final = pc_at[n]
    iotlb_final = z3.And(serves_iotlb(t, e), z3.Or(*iotlb_from))
    # Without ATS the context entry has DTE = 0: the device caches nothing.
    dev_final = (z3.And(serves_dev(t, v), z3.Or(*dev_from)) if t.scenario.ats
                 else z3.BoolVal(False))
    pre = [t.pasid == 0] if t.scenario.rid else [t.pasid != 0]
    return Survivor(z3.And(*pre, z3.Or(pc_final, iotlb_final, dev_final)), pcs[n], e, v,
                    pc_final, iotlb_final, dev_final, iotlb_from, dev_from)


def _decode_survivor(t: Teardown, q: Survivor, m: z3.ModelRef) -> tuple[list[str], dict[str, Any]]:
    did, pasid, sid = as_int(m, t.did), as_int(m, t.pasid), as_int(m, t.sid)
    out = [f"{t.scenario.name}, DID {did}, PASID {pasid}, SID {sid:#06x}",
           "sequence: " + "; ".join(str(d) for d in t.descs if covers_anything(d))]
    witness: dict[str, Any] = {"scenario": t.scenario.name, "did": did, "pasid": pasid, "sid": sid}
    if as_bool(m, q.pc_final):
        p = q.pc
        entry = PasidCacheEntry(as_int(m, p.sid), as_int(m, p.did), as_int(m, p.pasid),
                                PASID_ENTRY.encode(p=1, did=as_int(m, p.did), pgtt=t.scenario.pgtt))
        out.append(f"still cached: {entry}")
        witness.update(cache="pasid", entry=entry)
    elif as_bool(m, q.iotlb_final):
        e = q.iotlb
        stage = next(j for j, c in enumerate(q.iotlb_from) if as_bool(m, c))
        entry_i = IotlbEntry(as_int(m, e.did), as_int(m, e.pasid) if as_bool(m, e.has_pasid)
                             else None, as_int(m, e.pfn), 0)
        out.append(f"still cached: {entry_i}" + (f" (refilled after descriptor {stage}, "
                                                  f"through a stale PASID-cache entry)"
                                                  if stage else ""))
        witness.update(cache="iotlb", entry=entry_i, stage=stage)
    else:
        v = q.dev
        stage = next(j for j, c in enumerate(q.dev_from) if as_bool(m, c))
        entry_d = DevTlbEntry(as_int(m, v.sid), as_int(m, v.pasid) if as_bool(m, v.has_pasid)
                              else None, as_int(m, v.pfn), 0)
        out.append(f"still cached: {entry_d}" + (f" (refilled after descriptor {stage}, "
                                                  f"through a stale PASID-cache entry)"
                                                  if stage else ""))
        witness.update(cache="devtlb", entry=entry_d, stage=stage)
    return out, witness


def check_teardown(design_name: str = "upstream",
                   edit: Callable[[tuple[SymDesc, ...]], Sequence[SymDesc]] | None = None,
                   scenarios: Sequence[Scenario] = SCENARIOS) -> Outcome:
    """No scenario leaves a PASID-cache, IOTLB or device-TLB entry that could serve (SID, PASID).

    `edit` rewrites the driver's sequence first (the tests drop a descriptor or
    reorder them to show the proof can fail).
    """
    design = get_design(design_name)
    details = []
    for sc in scenarios:
        t = teardown_template(design, sc)
        if edit is not None:
            t = replace(t, descs=tuple(edit(t.descs)))
        q = survivor(t)
        s = solver()
        s.add(q.formula)
        r = s.check()
        if r == z3.unknown:
            return unknown(sc.name)
        if r == z3.sat:
            lines, witness = _decode_survivor(t, q, s.model())
            return Outcome("counterexample", tuple(lines), witness)
        details.append(t.text())
    return Outcome("proved", tuple(details))


def drop_piotlb(descs: tuple[SymDesc, ...]) -> list[SymDesc]:
    """The teardown without its P_IOTLB descriptor (a deliberately wrong rule)."""
    return [d for d in descs if not isinstance(d.desc, QiEiotlb)]


def pasid_cache_last(descs: tuple[SymDesc, ...]) -> list[SymDesc]:
    """The teardown with the PASID-cache invalidation moved after the TLB invalidations."""
    pcs = [d for d in descs if isinstance(d.desc, QiPc)]
    return [d for d in descs if not isinstance(d.desc, QiPc)] + pcs


# -- DID sharing (A.9, seed 003) -------------------------------------------------------------
DID_SHARING_ASSUMPTIONS = (
    "one IOMMU; the domains translate first-stage (or pass-through): IOTLB entries are tagged "
    "(DID, PASID, page), as the unit's fill and lookup do (A.6)",
    "each domain's attachments are an arbitrary set of (SID, PASID) pairs (uninterpreted "
    "predicate), all on the one shared DID",
    "a domain's flush of a page issues, per attachment tag, what VtdDriver.unmap_flush issues "
    "(lifted from the driver)",
    "PASID-cache and device-TLB lookups are by (SID, PASID), so only the IOTLB can confuse "
    "domains that share a DID",
)


@dataclass(frozen=True)
class Sharing:
    did: z3.BitVecRef
    att: dict[str, z3.FuncDeclRef]  # domain -> (SID, PASID) -> attached
    root: dict[str, z3.BitVecRef]  # domain -> page-table root (ghost: what an entry translates to)
    flush: tuple[SymDesc, ...]  # one tag's unmap flush, symbolic in (did, pasid, addr=page)
    flush_symbols: tuple[z3.BitVecRef, z3.BitVecRef, z3.BitVecRef]


def unmap_flush_template() -> tuple[tuple[SymDesc, ...], tuple[z3.BitVecRef, ...]]:
    """What VtdDriver.unmap_flush issues for one page of a domain attached at one PASID."""
    did, pasid, page = (z3.BitVec("FLUSH_DID", W_DID), z3.BitVec("FLUSH_PASID", W_PASID),
                        z3.BitVec("FLUSH_PAGE", W_PFN))
    sigs: list[tuple[Any, ...]] = []
    out: tuple[SymDesc, ...] = ()
    for iova, instance in ((0x5000, 0), (0x7000, 1)):
        k = Config(get_design("upstream"), "vtd", _BOUNDS).build()
        driver, state = _vtd(k)
        dev = f"dev{instance}"
        dom = k.iommu_paging_domain_alloc(dev)
        p = k.iommu_alloc_global_pasid(dev)
        assert isinstance(dom, int) and k.iommu_attach_device_pasid(dom, dev, p) == 0
        assert k.iommu_map(dom, iova, 0x8000_0000) == 0
        state.unit.qi_log.clear()
        assert k.iommu_unmap(dom, iova)
        concrete = {"did": driver.domain_id(k, k.domains[dom]), "pasid": p, "addr": iova >> 12}
        out = tuple(lift(d, concrete, {"did": did, "pasid": pasid, "addr": page})
                    for d in state.unit.qi_log if isinstance(d, (QiIotlb, QiEiotlb)))
        sigs.append(tuple(d.signature for d in out))
    if sigs[0] != sigs[1]:
        raise LiftError(f"unmap flush is not a function of (DID, PASID, page): {sigs}")
    return out, (did, pasid, page)


def sharing() -> Sharing:
    flush, syms = unmap_flush_template()
    att = {x: z3.Function(f"attached_{x}", z3.BitVecSort(W_SID), z3.BitVecSort(W_PASID),
                          z3.BoolSort()) for x in "AB"}
    root = {x: z3.BitVec(f"root_{x}", W_PFN) for x in "AB"}
    return Sharing(z3.BitVec("DID", W_DID), att, root, flush,
                   (syms[0], syms[1], syms[2]))


def filled(sh: Sharing, pasid: z3.BitVecRef, page: z3.BitVecRef) -> TlbTag:
    """The IOTLB entry a walk through (DID, PASID) caches for a page (unit.fill)."""
    return TlbTag(sh.did, z3.BoolVal(True), pasid, page)


def hits(sh: Sharing, e: TlbTag, pasid: z3.BitVecRef, page: z3.BitVecRef) -> z3.BoolRef:
    """unit.translate's IOTLB lookup for a request through (DID, PASID) at page."""
    return z3.And(e.did == sh.did, e.has_pasid, e.pasid == pasid, e.pfn == page)


def flush_covers(sh: Sharing, pasid: z3.BitVecRef, page: z3.BitVecRef, e: TlbTag) -> z3.BoolRef:
    did, p, pg = sh.flush_symbols
    sub = [(did, sh.did), (p, pasid), (pg, page)]
    return z3.Or(*[z3.substitute(covers_iotlb(d, e), *sub) for d in sh.flush])


def isolated(sh: Sharing) -> z3.BoolRef:
    """No entry one domain fills is hit by the other's request (different roots)."""
    s1, s2 = z3.BitVecs("iso_s1 iso_s2", W_SID)
    p1, p2 = z3.BitVecs("iso_p1 iso_p2", W_PASID)
    pg = z3.BitVec("iso_page", W_PFN)
    conds = []
    for x, y in (("A", "B"), ("B", "A")):
        conds.append(z3.ForAll([s1, p1, s2, p2, pg], z3.Implies(
            z3.And(sh.att[x](s1, p1), sh.att[y](s2, p2)),
            z3.Not(hits(sh, filled(sh, p1, pg), p2, pg)))))
    return z3.And(*conds)


def flushes_complete(sh: Sharing) -> z3.BoolRef:
    """Each domain's unmap flush covers every entry its own attachments filled for that page."""
    s1 = z3.BitVec("cov_s", W_SID)
    p1 = z3.BitVec("cov_p", W_PASID)
    pg = z3.BitVec("cov_page", W_PFN)
    return z3.And(*[z3.ForAll([s1, p1, pg], z3.Implies(
        sh.att[x](s1, p1), flush_covers(sh, p1, pg, filled(sh, p1, pg)))) for x in "AB"])


def distinct_pasids(sh: Sharing) -> z3.BoolRef:
    s1, s2 = z3.BitVecs("dis_s1 dis_s2", W_SID)
    p = z3.BitVec("dis_p", W_PASID)
    return z3.ForAll([s1, s2, p], z3.Not(z3.And(sh.att["A"](s1, p), sh.att["B"](s2, p))))


def check_did_sharing_iff() -> Outcome:
    """safe (isolated and flushes complete) <=> PASIDs distinct, both directions."""
    sh = sharing()
    safe = z3.And(isolated(sh), flushes_complete(sh))
    for name, query in (("distinct PASIDs -> safe", z3.And(distinct_pasids(sh), z3.Not(safe))),
                        ("safe -> distinct PASIDs", z3.And(safe, z3.Not(distinct_pasids(sh))))):
        s = solver()
        s.add(sh.root["A"] != sh.root["B"], query)
        r = s.check()
        if r == z3.unknown:
            return unknown(name)
        if r == z3.sat:
            return Outcome("counterexample", (f"{name} fails",))
    return Outcome("proved", (
        "distinct PASIDs -> isolated and flushes complete: proved",
        "isolated -> distinct PASIDs: proved",
        "flush per tag: " + "; ".join(str(d) for d in sh.flush)))


#: The design that shares one DID among first-stage paging domains (model.designs).
COLLIDING_DESIGN = "vtd-shared-did-colliding"


def check_did_sharing_any() -> Outcome:
    """Claim: domains may share a DID whatever their PASIDs (expected to fail)."""
    sh = sharing()
    s = solver()
    s.add(sh.root["A"] != sh.root["B"], z3.Not(isolated(sh)))
    r = s.check()
    if r == z3.unknown:
        return unknown("DID sharing")
    if r == z3.unsat:
        return Outcome("proved", ("sharing a DID is always safe",))
    # A concrete witness: attachments (sA, p) of A and (sB, p) of B, one page.
    sa, sb = z3.BitVecs("w_sa w_sb", W_SID)
    p = z3.BitVec("w_p", W_PASID)
    pg = z3.BitVec("w_page", W_PFN)
    e_a, e_b = filled(sh, p, pg), filled(sh, p, pg)
    witness_q = [sh.root["A"] != sh.root["B"], sh.att["A"](sa, p), sh.att["B"](sb, p),
                 hits(sh, e_a, p, pg)]
    # The same counterexample on the model's world: dev0 and dev1 attached at the RID
    # (PASID 0) of two paging domains, in the design that gives them one DID. The z3
    # witness is then pinned to the model's SIDs, DIDs and page-table roots.
    script: list[tuple[str, tuple[Any, ...]]] = []
    for dev in ("dev0", "dev1"):
        base = len(script)
        script += [("iommu_device_unuse_default_domain", (dev,)),
                   ("iommu_device_claim_dma_owner", (dev,)),
                   ("iommu_paging_domain_alloc", (dev,)),
                   ("iommu_attach_device", (Ref(base + 2), dev))]
    calls, result, k = replay(COLLIDING_DESIGN, "vtd", script)
    doms = [k.domains[calls[i][1][0]] for i in (3, 7)]
    driver, _ = _vtd(k)
    dids = {driver.domain_id(k, d) for d in doms}
    roots = [d.pgtable for d in doms]
    assert len(dids) == 1 and all(r is not None for r in roots), "the design shares one DID"
    s2 = solver()
    s2.add(*witness_q, sa == k.devices["dev0"].sid, sb == k.devices["dev1"].sid, p == 0,
           sh.did == dids.pop(), sh.root["A"] == (roots[0] or 0) >> 12,
           sh.root["B"] == (roots[1] or 0) >> 12)
    if s2.check() != z3.sat:
        return unknown("DID-sharing witness with the model's values")
    m = s2.model()
    did, pasid, page = as_int(m, sh.did), as_int(m, p), as_int(m, pg)
    ra, rb = as_int(m, sh.root["A"]), as_int(m, sh.root["B"])
    entries = ((did, pasid, ra), (did, pasid, rb))
    lines = [
        f"domain A attached at (SID {as_int(m, sa):#06x}, PASID {pasid}), domain B at "
        f"(SID {as_int(m, sb):#06x}, PASID {pasid}), both on DID {did}",
        f"A's walk caches {IotlbEntry(did, pasid, page, 0)} from root {ra << 12:#x}; "
        f"B's request (DID {did}, PASID {pasid}, same page) hits it, but B's root is "
        f"{rb << 12:#x}",
    ]
    lines += listing(result)
    return Outcome("counterexample", tuple(lines), {
        "entries": entries, "did": did, "pasid": pasid, "calls": calls,
        "violation": None if result.violation is None else result.violation.invariant})


PROOFS: tuple[Proof, ...] = (
    Proof(
        "vtd-teardown-clean",
        "For every PGTT (FL, PT, SL, nested), RID or PASID, ATS or not, and all (DID, PASID, "
        "SID), after the descriptors VtdDriver.tear_down_entry issues no PASID-cache, IOTLB or "
        "device-TLB entry that could serve (SID, PASID) remains, refills between descriptors "
        "included.",
        ("caches are arbitrary sets of tagged entries (uninterpreted membership)",
         "after P := 0 the walk faults: new IOTLB/device-TLB entries for (SID, PASID) need a "
         "surviving PASID-cache entry; no new PASID-cache entry is made",
         "cached PASID entries for (SID, PASID) hold the DID of the entry being torn down "
         "(the previous configuration was torn down by this same sequence)",
         "other users of the same (DID, PASID) tag are quiescent during the teardown",
         "no ATS: the device caches nothing (DTE = 0)",
         "descriptors complete in order (qi_submit_sync waits after each)",
         "fault_ignore: the PRQ-drain batch (which only adds invalidations) is left out"),
        "proved", lambda: check_teardown("upstream"), topic="vtd A.6-A.8",
    ),
    Proof(
        "vtd-teardown-pasid-cache-last",
        "The teardown stays clean if the PASID-cache invalidation is issued after the IOTLB and "
        "device-TLB ones (expected to fail: a stale PASID-cache entry refills the TLBs).",
        ("as vtd-teardown-clean",),
        "counterexample", lambda: check_teardown("upstream", pasid_cache_last),
        topic="vtd A.8.2 order",
    ),
    Proof(
        "vtd-teardown-variant-did-after-clear",
        "Design vtd-teardown-did-after-clear (DID read after the entry was cleared) tears down "
        "cleanly (expected to fail: every flush targets DID 0).",
        ("as vtd-teardown-clean",),
        "counterexample", lambda: check_teardown("vtd-teardown-did-after-clear"),
        topic="vtd A.8.2 variants",
    ),
    Proof(
        "vtd-teardown-variant-no-pasid-cache-flush",
        "Design vtd-teardown-no-pasid-cache-flush tears down cleanly (expected to fail).",
        ("as vtd-teardown-clean",),
        "counterexample", lambda: check_teardown("vtd-teardown-no-pasid-cache-flush"),
        topic="vtd A.8.2 variants",
    ),
    Proof(
        "vtd-teardown-variant-no-devtlb-flush",
        "Design vtd-teardown-no-devtlb-flush tears down cleanly (expected to fail with ATS).",
        ("as vtd-teardown-clean",),
        "counterexample", lambda: check_teardown("vtd-teardown-no-devtlb-flush"),
        topic="vtd A.8.2 variants",
    ),
    Proof(
        "vtd-did-sharing-iff-distinct-pasids",
        "Two first-stage domains sharing one DID are safe (neither's IOTLB entries serve the "
        "other's requests, and each one's unmap flush covers its own entries) exactly when "
        "their PASID sets on the IOMMU are disjoint, for any attachment sets.",
        DID_SHARING_ASSUMPTIONS,
        "proved", check_did_sharing_iff, topic="vtd A.9 DID sharing",
    ),
    Proof(
        "vtd-did-sharing-colliding-pasids",
        "Two first-stage domains may share one DID whatever their PASIDs (expected to fail: two "
        "domains at the same PASID serve each other's IOTLB entries).",
        DID_SHARING_ASSUMPTIONS,
        "counterexample", check_did_sharing_any, topic="vtd A.9 DID sharing",
    ),
)
