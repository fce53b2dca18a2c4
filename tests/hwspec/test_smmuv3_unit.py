"""SMMUv3 unit: translation outcome sets, fills, stale entries and the invalidation that
removes them (and the ones that do not), the driver's write sequences, state, dump."""

from hwspec.memory import Memory, Prot, Pte
from hwspec.outcome import Access, FaultReason, Outcome, bypass, fault, translated
from hwspec.smmuv3 import (
    ATC_INV,
    CD,
    CD_WRITER,
    CD_ZERO,
    CFGI_CD,
    CFGI_CD_ALL,
    CFGI_STE,
    CMD_SYNC,
    PREFETCH_CFG,
    STE,
    TLBI_NH_ALL,
    TLBI_NH_ASID,
    TLBI_S2_IPA,
    TLBI_NSNH_ALL,
    TLBI_S12_VMALL,
    AtcEntry,
    CdCacheEntry,
    S1Dss,
    SmmuUnit,
    SteCacheEntry,
    TlbEntry,
    cd_addr,
    dump,
    fill,
    make_abort_ste,
    make_bypass_ste,
    make_cdtable_ste,
    make_nested_ste,
    make_s1_cd,
    make_s2_ste,
    make_sva_cd,
    tlbi_s2_ipa_cmds,
    translate,
    write_cd,
    write_entry,
    write_ste,
)

SID = 0x8
R, W = Access.READ, Access.WRITE


class World:
    """A unit with SID 0x8 on a stage-1 CD table: CD0 = RID domain (asid 1, pt_a),
    CD5 = a PASID domain (asid 3, pt_b). Nothing cached yet."""

    def __init__(self, ats: bool = True) -> None:
        self.mem = Memory()
        self.unit = SmmuUnit(self.mem, sid_bits=4)
        self.cdtab = self.mem.alloc_page()
        self.pt_a = self.mem.new_pagetable()
        self.pt_b = self.mem.new_pagetable()
        self.mem.map(self.pt_a, 1, Pte(0x100))
        self.mem.map(self.pt_a, 2, Pte(0x101, Prot.READ))
        self.mem.map(self.pt_b, 1, Pte(0x200))
        self.ste = make_cdtable_ste(self.cdtab, 3, S1Dss.SSID0, ats)
        write_ste(self.unit, self.mem, SID, self.ste)
        self.cd0 = make_s1_cd(1, self.pt_a)
        self.cd5 = make_s1_cd(3, self.pt_b)
        self.write_cd(0, self.cd0)
        self.write_cd(5, self.cd5)
        self.unit.cmd_log.clear()

    def write_cd(self, ssid: int, cd: tuple[int, ...]) -> None:
        write_cd(self.unit, self.mem, cd_addr(self.ste, ssid), [SID], ssid, cd)

    def t(self, ssid: int | None, iova: int, access: Access = R,
          sid: int = SID) -> frozenset[Outcome]:
        return translate(self.unit, self.mem, sid, ssid, iova, access)


def test_fresh_walk_outcomes() -> None:
    w = World()
    assert w.t(None, 0x1234) == {translated(0x100234)}  # no PASID -> S1DSS=SSID0 -> CD0
    assert w.t(5, 0x1234) == {translated(0x200234)}
    assert w.t(None, 0x2010) == {translated(0x101010)}
    assert w.t(None, 0x2010, W) == {fault(FaultReason.PERMISSION)}
    assert w.t(None, 0x7000) == {fault(FaultReason.NO_MAPPING)}
    assert w.t(6, 0x1000) == {fault(FaultReason.C_BAD_CD)}
    assert w.t(8, 0x1000) == {fault(FaultReason.C_BAD_SUBSTREAMID)}  # 8 >= 2**S1CDMAX
    assert w.t(None, 0x1000, sid=0x10) == {fault(FaultReason.C_BAD_STREAMID)}
    assert w.t(None, 0x1000, sid=0x3) == {fault(FaultReason.C_BAD_STE)}  # never written: V=0


def test_ste_and_cd_configurations() -> None:
    w = World()
    write_ste(w.unit, w.mem, SID, make_abort_ste())
    assert w.t(None, 0x1000) == {fault(FaultReason.STE_ABORT)}
    write_ste(w.unit, w.mem, SID, make_bypass_ste())
    assert w.t(None, 0x1000) == {bypass()}
    assert w.t(5, 0x1000) == {fault(FaultReason.C_BAD_SUBSTREAMID)}
    write_ste(w.unit, w.mem, SID, make_cdtable_ste(w.cdtab, 3, S1Dss.TERMINATE, True))
    assert w.t(None, 0x1000) == {fault(FaultReason.C_BAD_SUBSTREAMID)}
    assert w.t(5, 0x1000) == {translated(0x200000)}
    write_ste(w.unit, w.mem, SID, make_cdtable_ste(w.cdtab, 3, S1Dss.BYPASS, True))
    assert w.t(None, 0x1000) == {bypass()}
    w.write_cd(5, make_sva_cd(3, None))  # the released SVA CD: valid, EPD0
    assert w.t(5, 0x1000) == {fault(FaultReason.EPD0)}
    pt_s2 = w.mem.new_pagetable()
    w.mem.map(pt_s2, 1, Pte(0x400))
    write_ste(w.unit, w.mem, SID, make_s2_ste(vmid=2, s2ttb_addr=pt_s2, vtcr=0, ats=False))
    assert w.t(None, 0x1008) == {translated(0x400008)}
    assert w.t(5, 0x1000) == {fault(FaultReason.C_BAD_SUBSTREAMID)}
    write_ste(w.unit, w.mem, SID, make_nested_ste(w.cdtab, 3, S1Dss.SSID0, False, 2, pt_s2, 0))
    # nested: CD0's stage 1 gives IPA page 0x100, which stage 2 does not map (yet)
    assert w.t(None, 0x1000) == {fault(FaultReason.NO_MAPPING)}
    w.mem.map(pt_s2, 0x100, Pte(0x500))
    assert w.t(None, 0x1234) == {translated(0x500234)}
    assert w.t(5, 0x1000) == {fault(FaultReason.EPD0)}  # substreams pass: CD5 is the EPD0 one
    write_ste(w.unit, w.mem, SID, make_nested_ste(w.cdtab, 3, S1Dss.BYPASS, False, 2, pt_s2, 0))
    assert w.t(None, 0x1008) == {translated(0x400008)}  # stage 1 bypassed: stage 2 only


def test_nested_fill_and_the_invalidations_that_reach_it() -> None:
    """A nested walk caches the combined entry and the stage-2 entry of its IPA; TLBI_S2_IPA
    drops only the stage-2 one (the combined one is tagged by VA), TLBI_NH_ALL the combined
    one, and until then the old host page stays reachable after a stage-2 change."""
    w = World()
    pt_s2 = w.mem.new_pagetable()
    w.mem.map(pt_s2, 0x100, Pte(0x500))
    write_ste(w.unit, w.mem, SID, make_nested_ste(w.cdtab, 3, S1Dss.SSID0, False, 2, pt_s2, 0))
    w.unit.ste_cache.clear()
    w.unit.cd_cache.clear()
    added = fill(w.unit, w.mem, SID, None, 0x1000, R)
    combined = TlbEntry(vmid=2, asid=1, iova_pfn=1, pfn=0x500, ipa_pfn=0x100)
    stage2 = TlbEntry(vmid=2, asid=None, iova_pfn=0x100, pfn=0x500)
    assert {e for e in added if isinstance(e, TlbEntry)} == {combined, stage2}
    assert str(combined) == "TLB (vmid 2, asid 1) 0x1000 -> 0x500000 (nested, ipa 0x100000)"
    w.unit.ste_cache.clear()
    w.unit.cd_cache.clear()
    w.mem.map(pt_s2, 0x100, Pte(0x600))  # the parent remaps the IPA
    assert w.t(None, 0x1000) == {translated(0x600000), translated(0x500000, "TLB (vmid 2, stage 2) ipa 0x100000"),
                                 translated(0x500000, "TLB (vmid 2, asid 1)")}
    assert w.unit.issue_cmdlist(tlbi_s2_ipa_cmds(2, 0x100000, 0x1000)) == {stage2}
    assert w.t(None, 0x1000) == {translated(0x600000), translated(0x500000, "TLB (vmid 2, asid 1)")}
    assert w.unit.issue_cmd_with_sync(TLBI_NH_ALL(vmid=3)) == frozenset()  # another VM's
    assert w.unit.issue_cmd_with_sync(TLBI_NH_ALL(vmid=2)) == {combined}
    assert w.t(None, 0x1000) == {translated(0x600000)}


def test_fill_caches_every_level_of_the_fresh_walk() -> None:
    w = World()
    added = fill(w.unit, w.mem, SID, 5, 0x1000, R)
    assert added == {
        SteCacheEntry(SID, w.ste),
        CdCacheEntry(SID, 5, w.cd5),
        TlbEntry(vmid=0, asid=3, iova_pfn=1, pfn=0x200),
        AtcEntry(sid=SID, ssid=5, iova_pfn=1, pfn=0x200),
    }
    assert set(w.unit.entries()) == added
    added = fill(w.unit, w.mem, SID, None, 0x2000, W)  # leaf cached whatever the access
    assert added == {
        SteCacheEntry(SID, w.ste),
        CdCacheEntry(SID, 0, w.cd0),
        TlbEntry(vmid=0, asid=1, iova_pfn=2, pfn=0x101, prot=Prot.READ),
        AtcEntry(sid=SID, ssid=None, iova_pfn=2, pfn=0x101, prot=Prot.READ),
    }
    # No mapping: STE and CD only. Invalid STE: nothing.
    assert fill(w.unit, w.mem, SID, 5, 0x7000, R) == {SteCacheEntry(SID, w.ste),
                                                      CdCacheEntry(SID, 5, w.cd5)}
    assert fill(w.unit, w.mem, 0x3, None, 0x1000, R) == frozenset()


def test_fill_without_ats_and_for_bypassed_stage1() -> None:
    w = World(ats=False)
    assert not any(isinstance(e, AtcEntry) for e in fill(w.unit, w.mem, SID, 5, 0x1000, R))
    w2 = World()
    ste = make_cdtable_ste(w2.cdtab, 3, S1Dss.BYPASS, True)
    write_ste(w2.unit, w2.mem, SID, ste)
    assert fill(w2.unit, w2.mem, SID, None, 0x5000, R) == {
        SteCacheEntry(SID, ste), AtcEntry(SID, None, 5, 5, Prot.RW)
    }


def test_seed000_stale_tlb_reachable_only_through_a_cd_with_its_asid() -> None:
    w = World()
    fill(w.unit, w.mem, SID, 5, 0x1000, R)
    w.unit.ste_cache.clear()  # keep only the CD/TLB/ATC levels cached (an STE eviction)
    # Detach without invalidation: the CD table changes, the caches do not.
    w.mem.write(cd_addr(w.ste, 5), CD_ZERO)
    cd_via = "config-cache CD (sid 0x8, ssid 5)"
    assert w.t(5, 0x1000) == {
        fault(FaultReason.C_BAD_CD),
        translated(0x200000, cd_via),
        translated(0x200000, cd_via + " + TLB (vmid 0, asid 3)"),
        translated(0x200000, "ATC (sid 0x8, ssid 5)"),
    }
    # CFGI_CD drops the cached CD; the asid-3 TLB entry stays but no view yields asid 3.
    assert w.unit.issue_cmd_with_sync(CFGI_CD(SID, 5)) == {CdCacheEntry(SID, 5, w.cd5)}
    assert TlbEntry(0, 3, 1, 0x200) in w.unit.tlb
    assert w.t(5, 0x1000) == {fault(FaultReason.C_BAD_CD),
                              translated(0x200000, "ATC (sid 0x8, ssid 5)")}
    # The device's ATC: another SSID's ATC_INV misses it, its own removes it.
    assert w.unit.issue_cmd_with_sync(ATC_INV(SID, ssid=6, ssv=True)) == frozenset()
    assert w.unit.issue_cmd_with_sync(ATC_INV(SID, ssid=5, ssv=True)) == {
        AtcEntry(SID, 5, 1, 0x200)
    }
    assert w.t(5, 0x1000) == {fault(FaultReason.C_BAD_CD)}
    # A NEW CD reusing ASID 3 for another page table is served the stale entry.
    pt_c = w.mem.new_pagetable()
    w.mem.map(pt_c, 1, Pte(0x300))
    w.write_cd(4, make_s1_cd(3, pt_c))
    stale = translated(0x200000, "TLB (vmid 0, asid 3)")
    assert w.t(4, 0x1000) == {translated(0x300000), stale}
    # Wrong tags leave it: another ASID, another VMID, config invalidations, stage 2 by IPA.
    for wrong in (TLBI_NH_ASID(asid=4, vmid=0), TLBI_NH_ASID(asid=3, vmid=1),
                  TLBI_S12_VMALL(vmid=1), TLBI_NH_ALL(vmid=1), TLBI_S2_IPA(vmid=0, addr=0x1000),
                  CFGI_STE(SID), CFGI_CD_ALL(SID), CFGI_CD(SID, 4)):
        assert TlbEntry(0, 3, 1, 0x200) not in w.unit.issue_cmd_with_sync(wrong)
        assert stale in w.t(4, 0x1000)
    # The old ASID's TLBI removes exactly it.
    assert w.unit.issue_cmd_with_sync(TLBI_NH_ASID(asid=3, vmid=0)) == {
        TlbEntry(0, 3, 1, 0x200)
    }
    assert w.t(4, 0x1000) == {translated(0x300000)}


def test_atc_entry_survives_everything_but_atc_inv() -> None:
    w = World()
    fill(w.unit, w.mem, SID, 5, 0x1000, R)
    write_ste(w.unit, w.mem, SID, make_abort_ste())
    for cmd in (CFGI_STE(SID), CFGI_CD_ALL(SID), TLBI_NSNH_ALL(), TLBI_S12_VMALL(0),
                TLBI_NH_ASID(asid=3, vmid=0), ATC_INV(SID, addr=0x8000, size=1),
                ATC_INV(0x9)):
        w.unit.issue_cmd_with_sync(cmd)
    assert w.t(5, 0x1000) == {fault(FaultReason.STE_ABORT),
                              translated(0x200000, "ATC (sid 0x8, ssid 5)")}
    assert w.t(None, 0x1000) == {fault(FaultReason.STE_ABORT)}
    # SSV=0 (no PASID prefix) over the range takes the PASID-tagged entry too.
    assert w.unit.issue_cmd_with_sync(ATC_INV(SID, addr=0x1000, size=0)) == {
        AtcEntry(SID, 5, 1, 0x200)
    }
    assert w.t(5, 0x1000) == {fault(FaultReason.STE_ABORT)}


def test_cd_cache_is_tagged_by_sid_ssid_not_by_table() -> None:
    w = World()
    fill(w.unit, w.mem, SID, None, 0x1000, R)
    # The STE moves to a new CD table (written properly, CFGI_STE), whose CD0 has asid 7.
    cdtab2 = w.mem.alloc_page()
    pt_d = w.mem.new_pagetable()
    w.mem.map(pt_d, 1, Pte(0x500))
    ste2 = make_cdtable_ste(cdtab2, 3, S1Dss.SSID0, True)
    w.mem.write(cd_addr(ste2, 0), make_s1_cd(7, pt_d))
    w.mem.write(w.unit.ste_addr(SID), ste2)  # the new STE in memory, no CFGI_STE yet
    outs = w.t(None, 0x1000)
    cd_via = "config-cache CD (sid 0x8, ssid 0)"
    # The fresh STE (new table) still gets the old CD0 from the cache (and its TLB entry).
    assert translated(0x100000, cd_via) in outs
    assert translated(0x100000, cd_via + " + TLB (vmid 0, asid 1)") in outs
    assert translated(0x500000) in outs
    # CFGI_STE takes the SID's cached CDs with its STE (the nested-to-S1 switch relies on it)
    assert w.unit.issue_cmd_with_sync(CFGI_STE(SID)) == {SteCacheEntry(SID, w.ste),
                                                          CdCacheEntry(SID, 0, w.cd0)}
    assert w.t(None, 0x1000) == {translated(0x500000),
                                 translated(0x100000, "ATC (sid 0x8)")}


def test_stale_ste_cache_and_cfgi_ste() -> None:
    w = World()
    fill(w.unit, w.mem, SID, None, 0x1000, R)
    w.mem.write(w.unit.ste_addr(SID), make_abort_ste())  # no CFGI_STE
    ste_via = "config-cache STE (sid 0x8)"
    outs = w.t(None, 0x1000)
    assert fault(FaultReason.STE_ABORT) in outs
    assert translated(0x100000, ste_via) in outs
    assert translated(0x100000, ste_via + " + TLB (vmid 0, asid 1)") in outs
    assert w.unit.issue_cmd_with_sync(CFGI_STE(SID)) == {SteCacheEntry(SID, w.ste),
                                                          CdCacheEntry(SID, 0, w.cd0)}
    assert w.t(None, 0x1000) == {fault(FaultReason.STE_ABORT),
                                 translated(0x100000, "ATC (sid 0x8)")}


def test_stage2_tlb_needs_s12_vmall() -> None:
    w = World(ats=False)
    pt_s2 = w.mem.new_pagetable()
    w.mem.map(pt_s2, 3, Pte(0x600))
    write_ste(w.unit, w.mem, SID, make_s2_ste(vmid=2, s2ttb_addr=pt_s2, vtcr=0, ats=False))
    assert fill(w.unit, w.mem, SID, None, 0x3000, R) >= {TlbEntry(2, None, 3, 0x600)}
    w.unit.issue_cmd_with_sync(CFGI_STE(SID))  # keep only the TLB level cached
    w.mem.unmap(pt_s2, 3)
    stale = translated(0x600000, "TLB (vmid 2, stage 2)")
    assert w.t(None, 0x3000) == {fault(FaultReason.NO_MAPPING), stale}
    w.unit.issue_cmd_with_sync(TLBI_NH_ASID(asid=0, vmid=2))  # stage-1 only: misses it
    assert stale in w.t(None, 0x3000)
    w.unit.issue_cmd_with_sync(TLBI_S12_VMALL(vmid=2))
    assert w.t(None, 0x3000) == {fault(FaultReason.NO_MAPPING)}


def test_translation_during_a_hitless_ste_update_is_old_or_new() -> None:
    w = World()
    pt_s2 = w.mem.new_pagetable()
    w.mem.map(pt_s2, 1, Pte(0x700))
    # VMID 0, as in the KUnit S2 fixture: S2VMID (used by both) does not change.
    target = make_s2_ste(vmid=0, s2ttb_addr=pt_s2, vtcr=0, ats=True)
    old, new = {translated(0x100000)}, {translated(0x700000)}
    r = write_entry(w.ste, target)
    assert r.hitless and len(r.observable) > 3
    for seen in r.observable:
        w.mem.write(w.unit.ste_addr(SID), seen)
        assert w.t(None, 0x1000) in (old, new)


def test_s1_to_s2_with_a_real_vmid_is_a_breaking_update() -> None:
    # OBSERVATION: the cdtable STE writes S2VMID = 0 and uses it; an S2 domain's VMID is >= 1
    # (ida_alloc_range from 1, B.4), so CFG (q0) and S2VMID (q2) both change: V=0 window.
    w = World()
    pt_s2 = w.mem.new_pagetable()
    w.mem.map(pt_s2, 1, Pte(0x700))
    r = write_entry(w.ste, make_s2_ste(vmid=2, s2ttb_addr=pt_s2, vtcr=0, ats=True))
    assert not r.hitless and r.syncs == 3
    seen_outcomes = set()
    for seen in r.observable:
        w.mem.write(w.unit.ste_addr(SID), seen)
        seen_outcomes.add(w.t(None, 0x1000))
    assert seen_outcomes == {frozenset({translated(0x100000)}),
                             frozenset({fault(FaultReason.C_BAD_STE)}),
                             frozenset({translated(0x700000)})}


def test_translation_during_a_breaking_cd_replacement_may_fault() -> None:
    w = World()
    target = make_s1_cd(9, w.pt_b)  # another domain on CD0: ASID and TTB0 both change
    r = write_entry(w.cd0, target, CD_WRITER)
    assert not r.hitless
    seen_outcomes = set()
    for seen in r.observable:
        w.mem.write(cd_addr(w.ste, 0), seen)
        seen_outcomes.add(w.t(None, 0x1000))
    assert seen_outcomes == {frozenset({translated(0x100000)}),
                             frozenset({fault(FaultReason.C_BAD_CD)}),
                             frozenset({translated(0x200000)})}


def test_driver_write_sequences_in_the_command_log() -> None:
    mem = Memory()
    unit = SmmuUnit(mem, sid_bits=4)
    write_ste(unit, mem, SID, make_bypass_ste())  # V=0 -> bypass: q1, then q0
    assert unit.cmd_log == [CFGI_STE(SID), CMD_SYNC(), CFGI_STE(SID), CMD_SYNC(),
                            PREFETCH_CFG(SID)]
    assert unit.read_ste(mem, SID) == make_bypass_ste()
    unit.cmd_log.clear()
    cdtab = mem.alloc_page()
    write_cd(unit, mem, cdtab + 5 * 64, [SID, 0x9], 5, make_s1_cd(3, 0x10000))
    assert unit.cmd_log == [CFGI_CD(SID, 5), CFGI_CD(0x9, 5), CMD_SYNC(),
                            CFGI_CD(SID, 5), CFGI_CD(0x9, 5), CMD_SYNC()]


def test_copy_key_and_equality() -> None:
    w = World()
    before = w.unit.key()
    twin = w.unit.copy()
    assert twin == w.unit and hash(twin) == hash(w.unit)
    fill(twin, w.mem, SID, 5, 0x1000, R)
    assert twin != w.unit and w.unit.key() == before
    assert not w.unit.tlb and len(twin.tlb) == 1
    twin.execute(TLBI_NSNH_ALL())
    assert w.unit.cmd_log == [] and twin.cmd_log == [TLBI_NSNH_ALL()]
    third = w.unit.copy()
    fill(third, w.mem, SID, 5, 0x1000, R)
    third.execute(TLBI_NSNH_ALL())
    assert third == twin  # same caches; cmd_log history is not state
    third.cmd_log.clear()
    assert third == twin


def test_dump() -> None:
    w = World()
    fill(w.unit, w.mem, SID, 5, 0x1000, R)
    lines = dump(w.unit, w.mem)
    assert lines[0] == "SMMUv3 stream table @0x1000 (16 STEs, linear)"
    assert lines[1] == f"  sid 0x8: {STE.dump(w.ste)}"
    assert lines[2] == "  CD table of sid 0x8 @0x2000 (8 CDs, linear)"
    assert lines[3] == f"    ssid 0: {CD.dump(w.cd0)}"
    assert lines[4] == f"    ssid 5: {CD.dump(w.cd5)}"
    assert lines[5:] == [
        "config cache:",
        f"  STE sid 0x8: {STE.dump(w.ste)}",
        f"  CD sid 0x8 ssid 5: {CD.dump(w.cd5)}",
        "TLB:",
        "  TLB (vmid 0, asid 3) 0x1000 -> 0x200000",
        "ATC:",
        "  ATC (sid 0x8, ssid 5) 0x1000 -> 0x200000",
    ]
    assert "cfg=S1_TRANS(5)" in lines[1] and "asid=3" in lines[4]
    empty = SmmuUnit(Memory(), sid_bits=2)
    assert dump(empty, Memory())[1:] == ["config cache: (empty)", "TLB: (empty)", "ATC: (empty)"]
