"""VT-d unit: hardware walk, translate outcomes, fill, stale entries and the teardown sequence.

Tables are built by hand with the address arithmetic written out here (not taken from
hwspec), so a wrong offset in the model shows up as a fault instead of a translation."""

from __future__ import annotations

from hwspec.memory import Memory, Prot, Pte
from hwspec.outcome import Access, FaultReason, Outcome, bypass, fault, translated
from hwspec.vtd import (
    CONTEXT_ENTRY,
    PASID_ENTRY,
    ROOT_ENTRY,
    CcGran,
    ContextCacheEntry,
    DevTlbEntry,
    IotlbEntry,
    IotlbGran,
    PasidCacheEntry,
    PcGran,
    Pgtt,
    QiIwd,
    VtdUnit,
    dump,
    fill,
    qi_desc_context,
    qi_desc_dev_iotlb,
    qi_desc_dev_iotlb_pasid,
    qi_desc_iotlb,
    qi_desc_pasid_cache,
    qi_desc_piotlb_all,
    qi_desc_wait,
    translate,
)

R, W = Access.READ, Access.WRITE
SID = 0x0008  # 00:01.0
PASID = 5
DID = 2


# -- test helpers: the driver's stores, written out by hand --------------------------------
def install_context(
    mem: Memory, unit: VtdUnit, sid: int, *, paside: int = 1, dte: int = 0, pdts: int = 2, rid_pasid: int = 0
) -> int:
    """Root entry (lazily allocating the context table) and an SM context entry pointing at a
    fresh PASID directory. Returns the directory address."""
    bus, devfn = sid >> 8, sid & 0xFF
    raddr = unit.rtaddr + bus * 16
    word = raddr + (8 if devfn >= 128 else 0)  # lo word for devfn < 128, hi word otherwise
    if not mem.read64(word) & 1:
        mem.write64(word, mem.alloc_page() | 1)
    table = mem.read64(word) & ~0xFFF
    directory = mem.alloc_page(max(1, (8 << (pdts + 7)) // 4096))
    lo = directory | pdts << 9 | dte << 2 | paside << 3 | 1
    mem.write(table + (devfn % 128) * 32, (lo, rid_pasid, 0, 0))
    return directory


def set_pasid_entry(mem: Memory, directory: int, pasid: int, words: tuple[int, ...]) -> int:
    pde_addr = directory + (pasid >> 6) * 8
    if not mem.read64(pde_addr) & 1:
        mem.write64(pde_addr, mem.alloc_page() | 1)
    addr = (mem.read64(pde_addr) & ~0xFFF) + (pasid & 0x3F) * 64
    mem.write(addr, words)
    return addr


def fl_entry(did: int, pgd: int) -> tuple[int, ...]:
    return PASID_ENTRY.encode(p=1, aw=2, pgtt=Pgtt.FL_ONLY, did=did, flptptr=pgd >> 12)


def sl_entry(did: int, root: int) -> tuple[int, ...]:
    return PASID_ENTRY.encode(p=1, aw=2, pgtt=Pgtt.SL_ONLY, did=did, slptptr=root >> 12, pwsnp=1)


def world(*, dte: int = 0) -> tuple[Memory, VtdUnit, int, int, int]:
    """sid 0x0008 with a first-stage PASID 5 entry (DID 2): iova 0x1000 -> 0x80000 RW,
    iova 0x3000 -> 0x90000 read-only. Returns (mem, unit, directory, pgd, entry address)."""
    mem = Memory()
    unit = VtdUnit(mem)
    directory = install_context(mem, unit, SID, dte=dte)
    pgd = mem.new_pagetable()
    mem.map(pgd, 0x1, Pte(0x80, Prot.RW))
    mem.map(pgd, 0x3, Pte(0x90, Prot.READ))
    addr = set_pasid_entry(mem, directory, PASID, fl_entry(DID, pgd))
    return mem, unit, directory, pgd, addr


def clear_present(mem: Memory, entry_addr: int) -> None:
    """pasid_clear_present: clear bit 0 of q0 only."""
    mem.write64(entry_addr, mem.read64(entry_addr) & ~1)


# -- walk and faults -----------------------------------------------------------------------------
def test_first_stage_translation() -> None:
    mem, unit, _, _, _ = world()
    assert translate(unit, mem, SID, PASID, 0x1000, R) == {translated(0x80000)}
    assert translate(unit, mem, SID, PASID, 0x1234, W) == {translated(0x80234)}
    assert translate(unit, mem, SID, PASID, 0x2000, R) == {fault(FaultReason.NO_MAPPING)}
    assert translate(unit, mem, SID, PASID, 0x3000, R) == {translated(0x90000)}
    assert translate(unit, mem, SID, PASID, 0x3000, W) == {fault(FaultReason.PERMISSION)}


def test_fault_reasons() -> None:
    mem, unit, directory, _, _ = world()
    assert translate(unit, mem, 0x0108, PASID, 0x1000, R) == {fault(FaultReason.ROOT_NOT_PRESENT)}
    assert translate(unit, mem, 0x0088, PASID, 0x1000, R) == {fault(FaultReason.ROOT_NOT_PRESENT)}  # upper half
    assert translate(unit, mem, 0x0010, PASID, 0x1000, R) == {fault(FaultReason.CONTEXT_NOT_PRESENT)}
    assert translate(unit, mem, SID, 64 * 9, 0x1000, R) == {fault(FaultReason.PASID_DIR_NOT_PRESENT)}
    assert translate(unit, mem, SID, 6, 0x1000, R) == {fault(FaultReason.PASID_NOT_PRESENT)}
    assert translate(unit, mem, SID, 512 * 64, 0x1000, R) == {fault(FaultReason.PASID_TOO_LARGE)}  # PDTS 2
    # RID traffic goes through RID_PASID = 0, which has no entry yet
    assert translate(unit, mem, SID, None, 0x1000, R) == {fault(FaultReason.PASID_NOT_PRESENT)}
    # PGTT 5..7 and 0 are reserved (VT-d 9.6); NESTED is modelled, so it walks (and,
    # with empty tables, finds no mapping) rather than faulting on the type
    set_pasid_entry(mem, directory, 7, PASID_ENTRY.encode(p=1, pgtt=5, did=3))
    assert translate(unit, mem, SID, 7, 0x1000, R) == {fault(FaultReason.BAD_PGTT)}
    set_pasid_entry(mem, directory, 8, PASID_ENTRY.encode(
        p=1, pgtt=Pgtt.NESTED, did=3, flptptr=mem.new_pagetable() >> 12, slptptr=mem.new_pagetable() >> 12))
    assert translate(unit, mem, SID, 8, 0x1000, R) == {fault(FaultReason.NO_MAPPING)}
    # a device without PASID capability: PASIDE=0 rejects PASID traffic
    d2 = install_context(mem, unit, 0x0018, paside=0)
    set_pasid_entry(mem, d2, 0, sl_entry(4, mem.new_pagetable()))
    assert translate(unit, mem, 0x0018, 0, 0x1000, R) == {fault(FaultReason.PASID_DISABLED)}
    assert translate(unit, mem, 0x0018, None, 0x1000, R) == {fault(FaultReason.NO_MAPPING)}


def test_requests_without_pasid_use_rid_pasid() -> None:
    mem = Memory()
    unit = VtdUnit(mem)
    directory = install_context(mem, unit, 0x0281, rid_pasid=7)  # devfn 0x81: upper context table
    root = mem.new_pagetable()
    mem.map(root, 0x10, Pte(0x44, Prot.RW))
    addr = set_pasid_entry(mem, directory, 7, sl_entry(3, root))
    assert translate(unit, mem, 0x0281, None, 0x10000, W) == {translated(0x44000)}
    assert unit.pasid_entry_addr(mem, 0x0281, 7) == addr
    assert unit.read_pasid_entry(mem, 0x0281, 7) == sl_entry(3, root)
    uctp = ROOT_ENTRY.get(mem.read(unit.rtaddr + 2 * 16, 2), "uctp") << 12
    assert unit.context_entry_addr(mem, 0x0281) == uctp + 32
    assert CONTEXT_ENTRY.get(unit.read_context_entry(mem, 0x0281) or (0,) * 4, "rid_pasid") == 7
    assert unit.context_entry_addr(mem, 0x0201) is None  # lower half of bus 2 not present


def test_pass_through() -> None:
    mem, unit, directory, _, _ = world()
    set_pasid_entry(mem, directory, 9, PASID_ENTRY.encode(p=1, pgtt=Pgtt.PT, did=1))
    assert translate(unit, mem, SID, 9, 0x5000, W) == {bypass()}


# -- fill ----------------------------------------------------------------------------------------
def test_fill_caches_every_level() -> None:
    mem, unit, _, _, addr = world()
    fill(unit, mem, SID, PASID, 0x1000, R)
    ctx = unit.read_context_entry(mem, SID)
    assert ctx is not None
    assert unit.context_cache == {ContextCacheEntry(SID, ctx)}
    assert unit.pasid_cache == {PasidCacheEntry(SID, DID, PASID, mem.read(addr, 8))}
    assert unit.iotlb == {IotlbEntry(DID, PASID, 0x1, 0x80, Prot.RW)}
    assert unit.devtlb == set()  # DTE = 0
    # a fresh, consistent cache changes nothing the DMA may do
    assert {o.effect for o in translate(unit, mem, SID, PASID, 0x1000, R)} == {translated(0x80000).effect}


def test_fill_stops_at_the_faulting_level() -> None:
    mem, unit, _, _, _ = world()
    fill(unit, mem, SID, PASID, 0x2000, R)  # no mapping: nothing for the leaf
    assert len(unit.context_cache) == 1 and len(unit.pasid_cache) == 1 and unit.iotlb == set()
    fill(unit, mem, SID, PASID, 0x3000, W)  # permission fault: no leaf either
    assert unit.iotlb == set()
    u2 = unit.copy()
    u2.context_cache.clear()
    u2.pasid_cache.clear()
    fill(u2, mem, SID, 64 * 9, 0x1000, R)  # directory entry absent: only the context entry
    assert len(u2.context_cache) == 1 and u2.pasid_cache == set()
    fill(u2, mem, 0x0010, PASID, 0x1000, R)  # context not present: nothing at all
    assert {e.sid for e in u2.context_cache} == {SID}


def test_fill_tags() -> None:
    """Second-stage leaves are tagged DID only; first-stage RID traffic is tagged RID_PASID;
    the device TLB keeps the request's own PASID (None without prefix); PT leaves are flagged."""
    mem = Memory()
    unit = VtdUnit(mem)
    directory = install_context(mem, unit, SID, dte=1)
    root = mem.new_pagetable()
    mem.map(root, 0x1, Pte(0x70, Prot.READ))
    set_pasid_entry(mem, directory, 0, fl_entry(6, root))
    set_pasid_entry(mem, directory, 4, sl_entry(3, root))
    set_pasid_entry(mem, directory, 8, PASID_ENTRY.encode(p=1, pgtt=Pgtt.PT, did=1))
    fill(unit, mem, SID, None, 0x1000, R)
    fill(unit, mem, SID, 4, 0x1000, R)
    fill(unit, mem, SID, 8, 0x2000, W)
    assert unit.iotlb == {
        IotlbEntry(6, 0, 0x1, 0x70, Prot.READ),
        IotlbEntry(3, None, 0x1, 0x70, Prot.READ),
        IotlbEntry(1, 8, 0x2, 0x2, Prot.RW, pt=True),
    }
    assert unit.devtlb == {
        DevTlbEntry(SID, None, 0x1, 0x70, Prot.READ),
        DevTlbEntry(SID, 4, 0x1, 0x70, Prot.READ),
        DevTlbEntry(SID, 8, 0x2, 0x2, Prot.RW, pt=True),
    }
    assert {(e.did, e.pasid) for e in unit.pasid_cache} == {(6, 0), (3, 4), (1, 8)}


# -- stale entries and the teardown sequence (A.8.2) ----------------------------------------------
STALE_PC = translated(0x80000, "PASID-cache (did 2, pasid 5)")
STALE_IOTLB = translated(0x80000, "IOTLB (did 2, pasid 5)")
STALE_DEVTLB = translated(0x80000, "device-TLB (sid 0x0008, pasid 5)")
GONE = fault(FaultReason.PASID_NOT_PRESENT)


def test_cleared_entry_without_invalidation_still_translates() -> None:
    mem, unit, _, _, addr = world()
    fill(unit, mem, SID, PASID, 0x1000, R)
    clear_present(mem, addr)
    assert translate(unit, mem, SID, PASID, 0x1000, R) == {GONE, STALE_PC, STALE_IOTLB}


def test_teardown_sequence_with_the_old_did_leaves_only_the_fault() -> None:
    mem, unit, _, _, addr = world(dte=1)
    fill(unit, mem, SID, PASID, 0x1000, R)
    clear_present(mem, addr)
    assert translate(unit, mem, SID, PASID, 0x1000, R) == {GONE, STALE_PC, STALE_IOTLB, STALE_DEVTLB}
    unit.qi_submit_sync(qi_desc_pasid_cache(DID, PcGran.PASID_SEL, PASID))
    unit.qi_submit_sync(qi_desc_piotlb_all(DID, PASID))
    assert translate(unit, mem, SID, PASID, 0x1000, R) == {GONE, STALE_DEVTLB}
    unit.qi_submit_sync(qi_desc_dev_iotlb_pasid(SID, SID, pasid=PASID, qdep=0, addr=0, size_order=52))
    assert translate(unit, mem, SID, PASID, 0x1000, R) == {GONE}
    assert unit.pasid_cache == set() and unit.iotlb == set() and unit.devtlb == set()
    assert [str(d) for d in unit.qi_log] == [
        "QI_PC pasid-selective did=2 pasid=5",
        "QI_IWD status_write data=2",
        "QI_EIOTLB all did=2 pasid=5",
        "QI_IWD status_write data=2",
        "QI_DEV_EIOTLB sid=0x0008 pasid=5 whole range",
        "QI_IWD status_write data=2",
    ]


def test_wrong_did_does_not_remove_the_stale_translation() -> None:
    """DID read after the entry was zeroed (0) tags nothing that was cached."""
    mem, unit, _, _, addr = world()
    fill(unit, mem, SID, PASID, 0x1000, R)
    mem.write(addr, (0,) * 8)  # whole entry zeroed before the DID was read
    before = translate(unit, mem, SID, PASID, 0x1000, R)
    assert before == {GONE, STALE_PC, STALE_IOTLB}
    unit.qi_submit_sync(qi_desc_pasid_cache(0, PcGran.PASID_SEL, PASID), qi_desc_piotlb_all(0, PASID))
    assert translate(unit, mem, SID, PASID, 0x1000, R) == before
    # a second-stage style flush by DID 0 does not help either
    unit.qi_submit_sync(qi_desc_iotlb(0, 0, 0, IotlbGran.DSI))
    assert translate(unit, mem, SID, PASID, 0x1000, R) == before


def test_stale_iotlb_resurfaces_when_the_did_is_reused() -> None:
    """PASID cache flushed but not the IOTLB: hidden while no entry yields DID 2, and
    reachable again as soon as a new entry for the PASID reuses DID 2."""
    mem, unit, directory, _, addr = world()
    fill(unit, mem, SID, PASID, 0x1000, R)
    clear_present(mem, addr)
    unit.qi_submit_sync(qi_desc_pasid_cache(DID, PcGran.PASID_SEL, PASID))
    assert translate(unit, mem, SID, PASID, 0x1000, R) == {GONE}
    other = mem.new_pagetable()
    mem.map(other, 0x1, Pte(0xAA, Prot.RW))
    set_pasid_entry(mem, directory, PASID, fl_entry(DID, other))
    assert translate(unit, mem, SID, PASID, 0x1000, R) == {translated(0xAA000), STALE_IOTLB}
    set_pasid_entry(mem, directory, PASID, fl_entry(DID + 1, other))  # a fresh DID misses it
    assert translate(unit, mem, SID, PASID, 0x1000, R) == {translated(0xAA000)}


def test_second_stage_stale_entry_and_dsi() -> None:
    mem = Memory()
    unit = VtdUnit(mem)
    directory = install_context(mem, unit, SID)
    root = mem.new_pagetable()
    mem.map(root, 0x1, Pte(0x33, Prot.RW))
    addr = set_pasid_entry(mem, directory, 0, sl_entry(4, root))
    fill(unit, mem, SID, None, 0x1000, W)
    mem.unmap(root, 0x1)
    assert translate(unit, mem, SID, None, 0x1000, R) == {
        fault(FaultReason.NO_MAPPING),
        translated(0x33000, "IOTLB (did 4)"),
    }
    unit.qi_submit_sync(qi_desc_piotlb_all(4, 0))  # PASID-based form misses second-stage entries
    assert len(unit.iotlb) == 1
    unit.qi_submit_sync(qi_desc_iotlb(4, 0x2000, 0, IotlbGran.PSI))  # other page
    assert len(unit.iotlb) == 1
    unit.qi_submit_sync(qi_desc_iotlb(4, 0x1000, 0, IotlbGran.PSI))
    assert translate(unit, mem, SID, None, 0x1000, R) == {fault(FaultReason.NO_MAPPING)}
    assert mem.read(addr, 8) == sl_entry(4, root)


def test_pass_through_entries_are_cached_too() -> None:
    mem, unit, directory, _, _ = world()
    addr = set_pasid_entry(mem, directory, 9, PASID_ENTRY.encode(p=1, pgtt=Pgtt.PT, did=1))
    fill(unit, mem, SID, 9, 0x5000, R)
    clear_present(mem, addr)
    assert translate(unit, mem, SID, 9, 0x5000, R) == {
        GONE,
        bypass("PASID-cache (did 1, pasid 9)"),
        bypass("IOTLB (did 1, pasid 9)"),
    }
    unit.qi_submit_sync(qi_desc_pasid_cache(1, PcGran.PASID_SEL, 9), qi_desc_piotlb_all(1, 9))
    assert translate(unit, mem, SID, 9, 0x5000, R) == {GONE}


def test_pasid_cache_is_per_device() -> None:
    """Each device has its own PASID table: a cached PASID 5 of one SID never serves another."""
    mem, unit, _, _, _ = world()
    install_context(mem, unit, 0x0010)
    fill(unit, mem, SID, PASID, 0x1000, R)
    unit.iotlb.clear()
    assert translate(unit, mem, 0x0010, PASID, 0x1000, R) == {fault(FaultReason.PASID_DIR_NOT_PRESENT)}


def test_stale_context_cache() -> None:
    mem, unit, _, _, _ = world()
    fill(unit, mem, SID, PASID, 0x1000, R)
    caddr = unit.context_entry_addr(mem, SID)
    assert caddr is not None
    mem.write(caddr, (0, 0, 0, 0))
    assert translate(unit, mem, SID, PASID, 0x1000, R) == {
        fault(FaultReason.CONTEXT_NOT_PRESENT),
        translated(0x80000, "context-cache (sid 0x0008)"),
        STALE_IOTLB,
    }
    unit.qi_submit_sync(qi_desc_context(0, SID | 0b100, 0, CcGran.DEVICE))  # other function
    assert len(unit.context_cache) == 1
    unit.qi_submit_sync(qi_desc_context(0, SID | 0b100, 1, CcGran.DEVICE))  # FM=1 masks bit 2
    # without a context view neither the PASID cache nor the IOTLB is reachable
    assert translate(unit, mem, SID, PASID, 0x1000, R) == {fault(FaultReason.CONTEXT_NOT_PRESENT)}


def test_stale_directory_pointer_in_context_cache() -> None:
    mem, unit, _, _, _ = world()
    fill(unit, mem, SID, PASID, 0x1000, R)
    unit.pasid_cache.clear()
    unit.iotlb.clear()
    new_dir = install_context(mem, unit, SID)  # context now points at an empty directory
    assert new_dir != 0
    assert translate(unit, mem, SID, PASID, 0x1000, R) == {
        fault(FaultReason.PASID_DIR_NOT_PRESENT),
        translated(0x80000, "context-cache (sid 0x0008)"),
    }
    unit.qi_submit_sync(qi_desc_context(0, 0, 0, CcGran.GLOBAL))
    assert translate(unit, mem, SID, PASID, 0x1000, R) == {fault(FaultReason.PASID_DIR_NOT_PRESENT)}


def test_device_tlb_survives_iommu_side_invalidation() -> None:
    mem, unit, _, _, addr = world(dte=1)
    fill(unit, mem, SID, PASID, 0x1000, R)
    assert unit.devtlb == {DevTlbEntry(SID, PASID, 0x1, 0x80, Prot.RW)}
    clear_present(mem, addr)
    unit.qi_submit_sync(
        qi_desc_context(0, 0, 0, CcGran.GLOBAL),
        qi_desc_pasid_cache(0, PcGran.GLOBAL, 0),
        qi_desc_iotlb(0, 0, 0, IotlbGran.GLOBAL),
        qi_desc_piotlb_all(DID, PASID),
    )
    assert translate(unit, mem, SID, PASID, 0x1000, R) == {GONE, STALE_DEVTLB}
    unit.qi_submit_sync(
        qi_desc_dev_iotlb_pasid(SID, SID, pasid=PASID + 1, qdep=0, addr=0, size_order=52),  # other PASID
        qi_desc_dev_iotlb(SID + 1, 0, 0, 0, 52),  # other device
        qi_desc_dev_iotlb_pasid(SID, SID, pasid=PASID, qdep=0, addr=0x2000, size_order=0),  # other page
    )
    assert translate(unit, mem, SID, PASID, 0x1000, R) == {GONE, STALE_DEVTLB}
    unit.qi_submit_sync(qi_desc_dev_iotlb(SID, SID, 0, 0, 52))  # no PASID prefix: every PASID
    assert translate(unit, mem, SID, PASID, 0x1000, R) == {GONE}


def test_device_tlb_outcome_ignores_the_tables_and_checks_permissions() -> None:
    mem, unit, _, _, _ = world()
    unit.devtlb.add(DevTlbEntry(SID, None, 0x7, 0x99, Prot.READ))
    assert translate(unit, mem, SID, None, 0x7000, R) == {
        fault(FaultReason.PASID_NOT_PRESENT),
        translated(0x99000, "device-TLB (sid 0x0008)"),
    }
    assert fault(FaultReason.PERMISSION, "device-TLB (sid 0x0008)") in translate(
        unit, mem, SID, None, 0x7000, W
    )
    assert translate(unit, mem, SID, 3, 0x7000, R) == {fault(FaultReason.PASID_NOT_PRESENT)}


# -- unit state -----------------------------------------------------------------------------------
def test_qi_submit_sync_logs_the_batch_then_one_wait() -> None:
    mem = Memory()
    unit = VtdUnit(mem, seq_id=3)
    a = qi_desc_pasid_cache(1, PcGran.PASID_SEL, 5)
    b = qi_desc_piotlb_all(1, 5)
    unit.qi_submit_sync(a, b)
    unit.qi_submit_sync(drain=True)
    assert unit.qi_log == [a, b, qi_desc_wait(), QiIwd(sw=1, prq_drain=1, status_data=2)]


def test_copy_key_eq() -> None:
    mem, unit, _, _, _ = world()
    fill(unit, mem, SID, PASID, 0x1000, R)
    twin = unit.copy()
    assert twin == unit and twin.key() == unit.key() and hash(twin) == hash(unit)
    twin.qi_submit_sync(qi_desc_piotlb_all(DID, PASID))
    assert twin != unit and len(unit.iotlb) == 1 and unit.qi_log == []
    again = unit.copy()
    again.qi_submit_sync()  # a wait alone changes no cache: history is not state
    assert again == unit and len(again.qi_log) == 1


def test_dump_shows_tables_and_caches() -> None:
    mem, unit, directory, _, addr = world(dte=1)
    fill(unit, mem, SID, PASID, 0x1000, R)
    clear_present(mem, addr)
    text = "\n".join(dump(unit, mem))
    lines = dump(unit, mem)
    assert lines[0] == f"VT-d unit 0: rtaddr {unit.rtaddr:#x} (scalable mode)"
    assert any(l.startswith("  root[00] @") and "lp=1" in l for l in lines)
    assert any("context 00:01.0 sid 0x0008" in l and "paside=1" in l and "dte=1" in l for l in lines)
    assert any(l.strip().startswith(f"pasid-dir[0] (pasid 0..63) @{directory:#x}") for l in lines)
    pasid_line = next(l for l in lines if l.strip().startswith("pasid 5 @"))
    assert f"@{addr:#x}" in pasid_line and "did=2" in pasid_line and "pgtt=FL_ONLY(1)" in pasid_line
    assert pasid_line.endswith("(NOT PRESENT)")
    assert "    IOTLB did 2 pasid 5 iova 0x1000 -> pa 0x80000 RW" in lines
    assert "    device-TLB sid 0x0008 pasid 5 iova 0x1000 -> pa 0x80000 RW" in lines
    assert "PASID-cache sid 0x0008 pasid 5 did 2" in text
    assert "context-cache sid 0x0008 (00:01.0)" in text


def test_translate_outcomes_are_outcomes() -> None:
    mem, unit, _, _, _ = world()
    outs = translate(unit, mem, SID, PASID, 0x1000, R)
    assert all(isinstance(o, Outcome) for o in outs)
    assert str(next(iter(outs))) == "may reach pa 0x80000 via walk"
