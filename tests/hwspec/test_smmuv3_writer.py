"""The SMMUv3 hitless entry writer (hw-tables.md PART C) against the kernel's KUnit suite.

Every write_entry case of drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3-test.c (newest
file: 24 write_entry cases; the 25th, arm_smmu_v3_invs_test, exercises the
per-domain invalidation array, not write_entry, and is not reproduced) with the
fixture's entries, the same sync count and the same hitless verdict; then the
derived store orders of C.3, the used/safe masks of C.1 as concrete bits, and a
property over random constructor-built pairs.
"""

import pytest
from hypothesis import given, settings, strategies as st

from hwspec.layout import Words
from hwspec.smmuv3 import (
    CD_WRITER,
    CD_ZERO,
    STE,
    STE_WRITER,
    EntryWriter,
    S1Dss,
    S1Fmt,
    Store,
    Sync,
    WritePath,
    cd_used_for,
    differs_in_used_bits,
    entry_qword_diff,
    get_cd_used,
    get_ste_used,
    is_torn,
    make_abort_ste,
    make_bypass_ste,
    make_cdtable_ste,
    make_nested_ste,
    make_s1_cd,
    make_s2_ste,
    make_sva_cd,
    make_vtcr,
    ste_update_safe_for,
    ste_used_for,
    unused_target_bits,
    write_entry,
)

# -- the C.4 fixture ------------------------------------------------------------------
# smmu.features = FEAT_STALLS | FEAT_ATTR_TYPES_OVR; cd_table.s1cdmax = 0xFF (FIELD_PREP
# keeps 5 bits: 31); s1fmt = 64K_L2; fake_cdtab_dma_addr = 0xF0F0F0F0F0F0.
FAKE_CDTAB = 0xF0F0F0F0F0F0
S1CDMAX = 0xFF & 0x1F
VTTBR = 0xDAEDBEEFDEADBEEF
VTCR = make_vtcr(tsz=4, sl=3, irgn=2, orgn=1, sh=3, tg=2, ps=1)
ATS, STALL, NESTED = 1, 2, 4

BYPASS = make_bypass_ste(attr_types_ovr=True)
ABORT = make_abort_ste()


def cdtable(s1dss: S1Dss, dma: int = FAKE_CDTAB, feat: int = 0) -> Words:
    """arm_smmu_test_make_cdtable_ste(ste, s1dss, dma, feat)."""
    common = dict(s1fmt=S1Fmt.L2_64K, stall_feature=True, stall_enabled=bool(feat & STALL))
    if feat & NESTED:
        return make_nested_ste(dma, S1CDMAX, s1dss, bool(feat & ATS), vmid=0, s2ttb_addr=VTTBR,
                               vtcr=VTCR, **common)  # type: ignore[arg-type]
    return make_cdtable_ste(dma, S1CDMAX, s1dss, bool(feat & ATS), **common)  # type: ignore[arg-type]


def s2(feat: int = 0) -> Words:
    """arm_smmu_test_make_s2_ste(ste, feat): vmid 0 (zeroed domain), the fixture vttbr/vtcr."""
    return make_s2_ste(vmid=0, s2ttb_addr=VTTBR, vtcr=VTCR, ats=bool(feat & ATS),
                       stall=bool(feat & STALL))


def s1_cd(asid: int) -> Words:
    """arm_smmu_test_make_s1_cd: ttbr 0xdaedbeefdeadbeef, tcr ips 1 tg 2 sh 3 orgn 1 irgn 2
    tsz 4, mair 0xabcdef012345678."""
    return make_s1_cd(asid, VTTBR, t0sz=4, tg0=2, irgn0=2, orgn0=1, sh0=3, ips=1,
                      mair=0xABCDEF012345678)


def sva_cd(asid: int) -> Words:
    return make_sva_cd(asid, VTTBR)


def sva_release_cd(asid: int) -> Words:
    return make_sva_cd(asid, None)


# (KUnit case, writer, current, target, expected syncs, hitless)
KUNIT = [
    ("ste_test_bypass_to_abort", STE_WRITER, BYPASS, ABORT, 2, True),
    ("ste_test_abort_to_bypass", STE_WRITER, ABORT, BYPASS, 2, True),
    ("ste_test_cdtable_to_abort", STE_WRITER, cdtable(S1Dss.SSID0, feat=ATS), ABORT, 2, True),
    ("ste_test_abort_to_cdtable", STE_WRITER, ABORT, cdtable(S1Dss.SSID0, feat=ATS), 2, True),
    ("ste_test_cdtable_to_bypass", STE_WRITER, cdtable(S1Dss.SSID0, feat=ATS), BYPASS, 3, True),
    ("ste_test_bypass_to_cdtable", STE_WRITER, BYPASS, cdtable(S1Dss.SSID0, feat=ATS), 3, True),
    ("ste_test_cdtable_s1dss_change (to)", STE_WRITER, cdtable(S1Dss.SSID0, feat=ATS),
     cdtable(S1Dss.BYPASS, feat=ATS), 1, True),
    ("ste_test_cdtable_s1dss_change (back)", STE_WRITER, cdtable(S1Dss.BYPASS, feat=ATS),
     cdtable(S1Dss.SSID0, feat=ATS), 1, True),
    ("ste_test_s1dssbypass_to_stebypass", STE_WRITER, cdtable(S1Dss.BYPASS, feat=ATS), BYPASS,
     2, True),
    ("ste_test_stebypass_to_s1dssbypass", STE_WRITER, BYPASS, cdtable(S1Dss.BYPASS, feat=ATS),
     2, True),
    ("ste_test_s2_to_abort", STE_WRITER, s2(ATS), ABORT, 2, True),
    ("ste_test_abort_to_s2", STE_WRITER, ABORT, s2(ATS), 2, True),
    ("ste_test_s2_to_bypass", STE_WRITER, s2(ATS), BYPASS, 2, True),
    ("ste_test_bypass_to_s2", STE_WRITER, BYPASS, s2(ATS), 2, True),
    ("ste_test_s1_to_s2", STE_WRITER, cdtable(S1Dss.SSID0, feat=ATS), s2(ATS), 3, True),
    ("ste_test_s2_to_s1", STE_WRITER, s2(ATS), cdtable(S1Dss.SSID0, feat=ATS), 3, True),
    ("ste_test_non_hitless", STE_WRITER, cdtable(S1Dss.SSID0, feat=ATS),
     cdtable(S1Dss.BYPASS, dma=0x4B4B4B4B4B, feat=ATS), 3, False),
    ("cd_test_s1_clear (set)", CD_WRITER, CD_ZERO, s1_cd(1997), 2, False),
    ("cd_test_s1_clear (clear)", CD_WRITER, s1_cd(1997), CD_ZERO, 2, False),
    ("cd_test_s1_change_asid (to)", CD_WRITER, s1_cd(778), s1_cd(1997), 1, True),
    ("cd_test_s1_change_asid (back)", CD_WRITER, s1_cd(1997), s1_cd(778), 1, True),
    ("ste_test_s1_to_s2_stall", STE_WRITER, cdtable(S1Dss.SSID0, feat=STALL), s2(STALL), 3, True),
    ("ste_test_s2_to_s1_stall", STE_WRITER, s2(STALL), cdtable(S1Dss.SSID0, feat=STALL), 3, True),
    ("ste_test_nested_s1dssbypass_to_s1bypass", STE_WRITER,
     cdtable(S1Dss.BYPASS, feat=ATS | NESTED), s2(0), 3, True),
    ("ste_test_nested_s1bypass_to_s1dssbypass", STE_WRITER, s2(0),
     cdtable(S1Dss.BYPASS, feat=ATS | NESTED), 2, True),
    ("cd_test_sva_clear (set)", CD_WRITER, CD_ZERO, sva_cd(1997), 2, False),
    ("cd_test_sva_clear (clear)", CD_WRITER, sva_cd(1997), CD_ZERO, 2, False),
    ("cd_test_sva_release (release)", CD_WRITER, sva_cd(1997), sva_release_cd(1997), 2, True),
    ("cd_test_sva_release (back)", CD_WRITER, sva_release_cd(1997), sva_cd(1997), 2, True),
]


def harness_check(writer: EntryWriter, cur: Words, target: Words) -> tuple[int, bool, Words]:
    """arm_smmu_test_writer_record_syncs, replayed on the steps: (syncs, invalid seen, final),
    asserting at each sync that a valid entry equals init or target on its used, non-safe bits."""
    entry = list(cur)
    syncs, invalid = 0, False
    for step in write_entry(cur, target, writer).steps:
        if isinstance(step, Store):
            entry[step.qword] = step.value
            continue
        syncs += 1
        if entry[0] == 0:
            invalid = True
        else:
            assert not (differs_in_used_bits(writer, entry, cur)
                        and differs_in_used_bits(writer, entry, target)), entry
    return syncs, invalid, tuple(entry)


@pytest.mark.parametrize("case,writer,cur,target,syncs,hitless", KUNIT, ids=[k[0] for k in KUNIT])
def test_kunit_case(case: str, writer: EntryWriter, cur: Words, target: Words, syncs: int,
                    hitless: bool) -> None:
    r = write_entry(cur, target, writer)
    assert r.syncs == syncs
    assert r.hitless == hitless
    assert r.final == target
    assert r.observable[-1] == target and r.observable[0] == cur
    assert harness_check(writer, cur, target) == (syncs, not hitless, target)
    # The constructors never set a bit their own configuration ignores (the C.2 WARN_ON_ONCE).
    assert unused_target_bits(writer, target) == (0,) * 8


def test_kunit_case_count() -> None:
    # 25 KUNIT_CASEs: 24 write_entry cases (7, 17, 18, 23, 24 run two transitions each,
    # listed twice above), plus arm_smmu_v3_invs_test, which is not a write_entry test.
    assert len(KUNIT) == 24 + 5


# -- derived store orders (C.3) ----------------------------------------------------------

SHCFG_INCOMING = 1 << 44
EATS_TRANS = 1 << 28
MEV = 1 << 19


def test_trace_cdtable_to_bypass() -> None:
    cur = cdtable(S1Dss.SSID0, feat=ATS)
    r = write_entry(cur, BYPASS)
    # q1 gains SHCFG (unused under SSID0), q0 switches, q1 drops the S1 fields.
    assert r.steps == (
        Store(1, cur[1] | SHCFG_INCOMING), Sync(),
        Store(0, BYPASS[0]), Sync(),
        Store(1, BYPASS[1]), Sync(),
    )
    assert r.path is WritePath.HITLESS


def test_trace_s1_to_s2() -> None:
    cur, tgt = cdtable(S1Dss.SSID0, feat=ATS), s2(ATS)
    r = write_entry(cur, tgt)
    assert r.steps == (
        Store(1, cur[1] | SHCFG_INCOMING), Store(2, tgt[2]), Store(3, tgt[3]), Sync(),
        Store(0, tgt[0]), Sync(),
        Store(1, tgt[1]), Sync(),
    )


def test_trace_s2_to_s1() -> None:
    cur, tgt = s2(ATS), cdtable(S1Dss.SSID0, feat=ATS)
    r = write_entry(cur, tgt)
    # q1 gets the S1 fields (unused by S2) keeping SHCFG; q2 and q3 are still used by S2.
    assert r.steps == (
        Store(1, tgt[1] | SHCFG_INCOMING), Sync(),
        Store(0, tgt[0]), Sync(),
        Store(1, tgt[1]), Store(2, tgt[2]), Store(3, tgt[3]), Sync(),
    )


def test_trace_bypass_abort_both_ways() -> None:
    assert write_entry(BYPASS, ABORT).steps == (Store(0, 0x1), Sync(), Store(1, 0), Sync())
    assert write_entry(ABORT, BYPASS).steps == (
        Store(1, SHCFG_INCOMING), Sync(), Store(0, 0x9), Sync()
    )


def test_trace_s1dss_change_is_one_store_of_q1() -> None:
    cur, tgt = cdtable(S1Dss.SSID0, feat=ATS), cdtable(S1Dss.BYPASS, feat=ATS)
    assert write_entry(cur, tgt).steps == (Store(1, tgt[1]), Sync())
    assert tgt[1] == cur[1] ^ 0x3 ^ SHCFG_INCOMING  # S1DSS 2 -> 1 and SHCFG rides along


def test_trace_non_hitless_goes_through_v0() -> None:
    cur = cdtable(S1Dss.SSID0, feat=ATS)
    tgt = cdtable(S1Dss.BYPASS, dma=0x4B4B4B4B4B, feat=ATS)
    r = write_entry(cur, tgt)
    assert r.steps == (Store(0, 0), Sync(), Store(1, tgt[1]), Sync(), Store(0, tgt[0]), Sync())
    assert r.path is WritePath.BREAKING and not r.hitless


def test_trace_nested_to_s2_uses_the_safe_bits() -> None:
    cur, tgt = cdtable(S1Dss.BYPASS, feat=ATS | NESTED), s2(0)
    r = write_entry(cur, tgt)
    # EATS and MEV are cleared early as update-safe bits, then CFG 7 -> 6, then cleanup.
    assert r.steps == (
        Store(1, cur[1] & ~(EATS_TRANS | MEV)), Sync(),
        Store(0, tgt[0]), Sync(),
        Store(1, tgt[1]), Sync(),
    )
    assert r.hitless


def test_without_update_safe_nested_to_s2_breaks() -> None:
    cur, tgt = cdtable(S1Dss.BYPASS, feat=ATS | NESTED), s2(0)
    r = write_entry(cur, tgt, use_update_safe=False)
    assert r.path is WritePath.BREAKING
    assert not r.hitless and r.syncs == 3
    assert r.steps == (Store(0, 0), Sync(), Store(1, tgt[1]), Sync(), Store(0, tgt[0]), Sync())


def test_trace_cd_transitions() -> None:
    a, b = s1_cd(778), s1_cd(1997)
    assert write_entry(a, b, CD_WRITER).steps == (Store(0, b[0]), Sync())
    live, released = sva_cd(1997), sva_release_cd(1997)
    assert write_entry(live, released, CD_WRITER).steps == (
        Store(0, released[0]), Sync(), Store(1, 0), Sync()
    )
    assert write_entry(released, live, CD_WRITER).steps == (
        Store(1, live[1]), Sync(), Store(0, live[0]), Sync()
    )
    assert write_entry(CD_ZERO, b, CD_WRITER).steps == (
        Store(1, b[1]), Store(3, b[3]), Sync(), Store(0, b[0]), Sync()
    )
    assert write_entry(b, CD_ZERO, CD_WRITER).steps == (
        Store(0, 0), Sync(), Store(1, 0), Store(3, 0), Sync()
    )


def test_cd_replacement_between_two_domains_is_breaking() -> None:
    # OBSERVATION in C.3: ASID (q0) and TTB0 (q1) both change, both used: V=0 window.
    a = make_s1_cd(3, 0x10000)
    b = make_s1_cd(4, 0x20000)
    r = write_entry(a, b, CD_WRITER)
    assert r.path is WritePath.BREAKING and not r.hitless and r.syncs == 3


def test_no_used_change_and_identity() -> None:
    r = write_entry(BYPASS, BYPASS)
    assert r.steps == () and r.syncs == 0 and r.hitless and r.path is WritePath.NO_USED_CHANGE
    # Only EATS (a safe bit) differs between two S2 STEs: no-diff path, one sync.
    r = write_entry(s2(ATS), s2(0))
    assert r.path is WritePath.NO_USED_CHANGE and r.syncs == 1
    assert r.steps == (Store(1, s2(0)[1]), Sync())


# -- C.1 masks as concrete bits ----------------------------------------------------------


def test_ste_used_masks() -> None:
    for cfg in range(8):
        for s1dss in range(4):
            assert ste_used_for(0, cfg, s1dss) == (0x1,) + (0,) * 7
    assert ste_used_for(1, 0, 0) == (0xF,) + (0,) * 7  # abort: V | CFG
    assert ste_used_for(1, 4, 0) == (0xF, 0x3000_0000_0000) + (0,) * 6  # bypass: + SHCFG
    s1 = ste_used_for(1, 5, S1Dss.SSID0)
    assert s1 == (0xF80F_FFFF_FFFF_FFFF, 0xF808_00FF, 0xFFFF) + (0,) * 5
    assert ste_used_for(1, 5, S1Dss.BYPASS)[1] == 0x3000_F808_00FF
    s2m = ste_used_for(1, 6, 0)
    assert s2m == (0xF, 0x3000_3208_0000, 0x065F_FFFF_0000_FFFF, 0x000F_FFFF_FFFF_FFF0,
                   0, 0, 0, 0)
    nested = ste_used_for(1, 7, S1Dss.TERMINATE)
    assert nested == tuple(a | b for a, b in zip(s1, s2m))
    assert get_ste_used(cdtable(S1Dss.SSID0)) == s1


def test_ste_update_safe_masks() -> None:
    assert ste_update_safe_for(False, False) == (0, EATS_TRANS | MEV) + (0,) * 6
    assert ste_update_safe_for(True, False) == (0, MEV) + (0,) * 6
    assert ste_update_safe_for(False, True) == (0, MEV) + (0,) * 6
    assert STE_WRITER.get_update_safe(s2(STALL), s2(0)) == (0, MEV) + (0,) * 6
    assert CD_WRITER.get_update_safe(s1_cd(1), s1_cd(2)) == (0,) * 8


def test_cd_used_masks() -> None:
    assert cd_used_for(0, 0) == (0x8000_0000,) + (0,) * 7
    assert cd_used_for(0, 1) == (0x8000_0000,) + (0,) * 7
    full = (1 << 64) - 1
    assert cd_used_for(1, 0) == (full,) * 8
    assert cd_used_for(1, 1) == (0xFFFF_FFFF_FFFF_C000, 0xFFF0_0000_0000_000F) + (full,) * 6
    assert get_cd_used(sva_release_cd(1)) == cd_used_for(1, 1)


def test_qword_diff_mask() -> None:
    diff, unused = entry_qword_diff(STE_WRITER, BYPASS, ABORT)
    assert diff == 0b1 and unused == BYPASS
    diff, _ = entry_qword_diff(STE_WRITER, cdtable(S1Dss.SSID0, feat=ATS),
                               cdtable(S1Dss.BYPASS, dma=0x4B4B4B4B4B, feat=ATS))
    assert diff == 0b11
    diff, _ = entry_qword_diff(STE_WRITER, cdtable(S1Dss.BYPASS, feat=ATS | NESTED), s2(0),
                               use_update_safe=False)
    assert diff == 0b11


# -- property: every observable state is old-or-new, or invalid ------------------------

addrs = st.integers(0, (1 << 52) - 1)


@st.composite
def stes(draw: st.DrawFn) -> Words:
    kind = draw(st.sampled_from(["abort", "bypass", "cdtable", "s2", "nested"]))
    if kind == "abort":
        return make_abort_ste()
    if kind == "bypass":
        return make_bypass_ste(draw(st.booleans()))
    s1 = dict(
        cdtab_addr=draw(st.sampled_from([0x1000, 0x40000, FAKE_CDTAB])),
        s1cdmax=draw(st.integers(0, 31)),
        s1dss=draw(st.sampled_from(list(S1Dss))),
        ats=draw(st.booleans()),
        s1fmt=draw(st.sampled_from([S1Fmt.LINEAR, S1Fmt.L2_64K])),
        stall_feature=draw(st.booleans()),
        stall_enabled=draw(st.booleans()),
    )
    s2args = dict(
        vmid=draw(st.integers(0, 3)),
        s2ttb_addr=draw(st.sampled_from([0x2000, VTTBR])),
        vtcr=draw(st.sampled_from([0, VTCR])),
    )
    if kind == "cdtable":
        return make_cdtable_ste(**s1, e2h=draw(st.booleans()),  # type: ignore[arg-type]
                                attr_types_ovr=draw(st.booleans()))
    if kind == "s2":
        return make_s2_ste(**s2args, ats=draw(st.booleans()), s2fwb=draw(st.booleans()),
                           stall=draw(st.booleans()), attr_types_ovr=draw(st.booleans()))
    return make_nested_ste(**s1, **s2args)  # type: ignore[arg-type]


@st.composite
def cds(draw: st.DrawFn) -> Words:
    kind = draw(st.sampled_from(["zero", "s1", "sva", "released"]))
    asid = draw(st.integers(0, 3))
    if kind == "zero":
        return CD_ZERO
    if kind == "s1":
        return make_s1_cd(asid, draw(st.sampled_from([0x3000, VTTBR])),
                          t0sz=draw(st.sampled_from([4, 16])), ips=draw(st.integers(0, 5)),
                          stall=draw(st.booleans()), hd_ha=draw(st.booleans()))
    if kind == "sva":
        return make_sva_cd(asid, draw(st.sampled_from([0x3000, VTTBR])), stall=draw(st.booleans()))
    return make_sva_cd(asid, None, stall=draw(st.booleans()), stall_force=draw(st.booleans()))


def check_observable(writer: EntryWriter, cur: Words, tgt: Words) -> None:
    r = write_entry(cur, tgt, writer)
    assert r.final == tgt
    assert len(r.observable) == len(r.stores) + 1
    for seen in r.observable:
        if r.hitless:
            assert not is_torn(writer, seen, cur, tgt), (cur, tgt, seen)
        elif is_torn(writer, seen, cur, tgt):
            assert seen[0] == 0, (cur, tgt, seen)
    # The breaking path always stores q0 = 0 first.
    if r.path is WritePath.BREAKING:
        assert r.steps[0] == Store(0, 0)


@settings(max_examples=400, deadline=None)
@given(cur=stes(), tgt=stes())
def test_every_observable_ste_is_old_new_or_invalid(cur: Words, tgt: Words) -> None:
    check_observable(STE_WRITER, cur, tgt)


@settings(max_examples=300, deadline=None)
@given(cur=cds(), tgt=cds())
def test_every_observable_cd_is_old_new_or_invalid(cur: Words, tgt: Words) -> None:
    check_observable(CD_WRITER, cur, tgt)


def test_property_would_catch_a_naive_writer() -> None:
    # Storing q0..q7 in order for S1 -> S2 exposes a torn entry: the check can fail.
    cur, tgt = cdtable(S1Dss.SSID0, feat=ATS), s2(ATS)
    entry = list(cur)
    torn = []
    for i in range(8):
        entry[i] = tgt[i]
        torn.append(is_torn(STE_WRITER, entry, cur, tgt))
    assert torn[0] and not torn[-1]
    assert STE.get(entry, "cfg") == 6


def test_write_entry_refuses_malformed_entries() -> None:
    from hwspec.layout import LayoutError

    with pytest.raises(LayoutError, match="STE: expected 8 x 64-bit words"):
        write_entry((0,) * 7, ABORT)
    with pytest.raises(LayoutError, match="CD: expected 8 x 64-bit words"):
        write_entry(CD_ZERO, (1 << 64,) + (0,) * 7, CD_WRITER)
