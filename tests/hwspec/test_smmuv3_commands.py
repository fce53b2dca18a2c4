"""SMMUv3 commands: opcodes and field positions (hw-tables.md B.5), round trips, text, and
the exact-coverage rule of each command against arbitrary cache contents."""

import pytest
from hypothesis import given, settings, strategies as st

from hwspec.layout import LayoutError
from hwspec.memory import Memory, Prot
from hwspec.smmuv3 import (
    ATC_INV,
    CFGI_CD,
    CFGI_CD_ALL,
    CFGI_STE,
    CMD_SYNC,
    PREFETCH_CFG,
    TLBI_NH_ALL,
    TLBI_NH_ASID,
    TLBI_NH_VA,
    TLBI_NSNH_ALL,
    TLBI_S2_IPA,
    TLBI_S12_VMALL,
    AtcEntry,
    CacheEntry,
    CdCacheEntry,
    Command,
    SmmuUnit,
    SteCacheEntry,
    TlbEntry,
    atc_inv_cmd,
    decode_command,
    tlbi_nh_va_cmds,
)

# (command, q0, q1): hand-assembled from B.5 (op q0[7:0]; SID q0[63:32]; SSID q0[31:12];
# SSV q0[11]; GLOBAL q0[9]; ASID q0[63:48]; VMID q0[47:32]; NUM q0[16:12]; SCALE q0[24:20];
# LEAF q1[0]; TTL q1[9:8]; TG q1[11:10]; VA/ADDR q1[63:12]; ATC SIZE q1[5:0]).
ENCODINGS = [
    (PREFETCH_CFG(sid=0x8), 0x0000_0008_0000_0001, 0),
    (CFGI_STE(sid=0x8, leaf=True), 0x0000_0008_0000_0003, 1),
    (CFGI_STE(sid=0xFFFF_FFFF, leaf=False), 0xFFFF_FFFF_0000_0003, 0),
    (CFGI_CD(sid=0x8, ssid=5, leaf=True), 0x0000_0008_0000_5005, 1),
    (CFGI_CD(sid=0x1, ssid=0xFFFFF, leaf=False), 0x0000_0001_FFFF_F005, 0),
    (CFGI_CD_ALL(sid=0x8), 0x0000_0008_0000_0006, 0),
    (TLBI_NH_ASID(asid=3, vmid=0), 0x0003_0000_0000_0011, 0),
    (TLBI_NH_ASID(asid=0xFFFF, vmid=0xFFFF), 0xFFFF_FFFF_0000_0011, 0),
    (TLBI_NH_VA(asid=3, vmid=2, addr=0x5000, leaf=True, num=1, scale=2, ttl=3, tg=1),
     0x0003_0002_0020_1012, 0x5701),
    (TLBI_NH_VA(asid=1, vmid=0, addr=0xFFFF_FFFF_FFFF_F000, leaf=False),
     0x0001_0000_0000_0012, 0xFFFF_FFFF_FFFF_F000),
    (TLBI_S12_VMALL(vmid=7), 0x0000_0007_0000_0028, 0),
    (TLBI_NH_ALL(vmid=7), 0x0000_0007_0000_0010, 0),
    (TLBI_S2_IPA(vmid=2, addr=0x5000, leaf=True, num=1, scale=2, ttl=3, tg=1),
     0x0000_0002_0020_102A, 0x5701),
    (TLBI_S2_IPA(vmid=0xFFFF, addr=0xF_FFFF_FFFF_F000, leaf=False),
     0x0000_FFFF_0000_002A, 0x000F_FFFF_FFFF_F000),
    (TLBI_NSNH_ALL(), 0x30, 0),
    (ATC_INV(sid=0x8, ssid=5, ssv=True, addr=0x4000, size=2), 0x0000_0008_0000_5840, 0x4002),
    (ATC_INV(sid=0x8), 0x0000_0008_0000_0040, 52),
    (ATC_INV(sid=0x2, global_=True), 0x0000_0002_0000_0240, 52),
    (CMD_SYNC(), 0x46, 0),
    (CMD_SYNC(cs=1, msh=3, msiattr=0xF, msidata=0x1234, msiaddr=0x1000),
     0x0000_1234_0FC0_1046, 0x1000),
]


@pytest.mark.parametrize("cmd,q0,q1", ENCODINGS, ids=[str(c) for c, _, _ in ENCODINGS])
def test_encoding(cmd: Command, q0: int, q1: int) -> None:
    assert cmd.encode() == (q0, q1)
    assert decode_command((q0, q1)) == cmd


def test_text() -> None:
    assert str(CFGI_CD(sid=0x8, ssid=5, leaf=True)) == "CMD_CFGI_CD sid=0x8 ssid=5 leaf"
    assert str(CFGI_STE(sid=0x8)) == "CMD_CFGI_STE sid=0x8 leaf"
    assert str(CFGI_STE(sid=0x8, leaf=False)) == "CMD_CFGI_STE sid=0x8"
    assert str(CFGI_CD_ALL(sid=0x8)) == "CMD_CFGI_CD_ALL sid=0x8"
    assert str(TLBI_NH_ASID(asid=3, vmid=0)) == "CMD_TLBI_NH_ASID asid=3 vmid=0"
    assert str(TLBI_NH_VA(asid=3, vmid=0, addr=0x2000)) == (
        "CMD_TLBI_NH_VA asid=3 vmid=0 va=0x2000 pages=1 leaf"
    )
    assert str(TLBI_S12_VMALL(vmid=2)) == "CMD_TLBI_S12_VMALL vmid=2"
    assert str(TLBI_NSNH_ALL()) == "CMD_TLBI_NSNH_ALL"
    assert str(ATC_INV(sid=0x8, ssid=5, ssv=True)) == "CMD_ATC_INV sid=0x8 ssid=5 (ssv) all"
    assert str(ATC_INV(sid=0x8)) == "CMD_ATC_INV sid=0x8 all"
    assert str(ATC_INV(sid=0x8, addr=0x5000, size=1)) == "CMD_ATC_INV sid=0x8 addr=0x4000 pages=2"
    assert str(CMD_SYNC()) == "CMD_SYNC"
    assert str(PREFETCH_CFG(sid=0x10)) == "CMD_PREFETCH_CFG sid=0x10"


def test_decode_refuses_unknown_opcodes_and_stray_bits() -> None:
    with pytest.raises(LayoutError, match="unknown or unmodelled SMMUv3 command opcode 0x99"):
        decode_command((0x99, 0))
    with pytest.raises(LayoutError, match=r"CMD_CFGI_STE: bits set outside its fields: q1=0x2"):
        decode_command((0x0000_0008_0000_0003, 0x3))
    with pytest.raises(LayoutError, match="2 x 64-bit words"):
        decode_command((0x46,))
    with pytest.raises(LayoutError, match=r"CMD_CFGI_CD\.ssid = 0x100000 does not fit 20 bit"):
        CFGI_CD(sid=1, ssid=1 << 20).encode()
    with pytest.raises(LayoutError, match="not 4 KiB aligned"):
        TLBI_NH_VA(asid=1, vmid=0, addr=0x1001)


u16, u32 = st.integers(0, 0xFFFF), st.integers(0, 0xFFFF_FFFF)
commands = st.one_of(
    st.builds(PREFETCH_CFG, sid=u32),
    st.builds(CFGI_STE, sid=u32, leaf=st.booleans()),
    st.builds(CFGI_CD, sid=u32, ssid=st.integers(0, 0xFFFFF), leaf=st.booleans()),
    st.builds(CFGI_CD_ALL, sid=u32),
    st.builds(TLBI_NH_ASID, asid=u16, vmid=u16),
    st.builds(TLBI_NH_VA, asid=u16, vmid=u16, addr=st.integers(0, (1 << 52) - 1).map(lambda p: p << 12),
              leaf=st.booleans(), num=st.integers(0, 31), scale=st.integers(0, 31),
              ttl=st.integers(0, 3), tg=st.integers(0, 3)),
    st.builds(TLBI_S12_VMALL, vmid=u16),
    st.builds(TLBI_NH_ALL, vmid=u16),
    st.builds(TLBI_S2_IPA, vmid=u16, addr=st.integers(0, (1 << 40) - 1).map(lambda p: p << 12),
              leaf=st.booleans(), num=st.integers(0, 31), scale=st.integers(0, 31),
              ttl=st.integers(0, 3), tg=st.integers(0, 3)),
    st.just(TLBI_NSNH_ALL()),
    st.builds(ATC_INV, sid=u32, ssid=st.integers(0, 0xFFFFF), ssv=st.booleans(),
              addr=st.integers(0, (1 << 52) - 1).map(lambda p: p << 12),
              size=st.integers(0, 63), global_=st.booleans()),
    st.builds(CMD_SYNC, cs=st.integers(0, 3), msh=st.integers(0, 3), msiattr=st.integers(0, 15),
              msidata=u32, msiaddr=st.integers(0, (1 << 50) - 1).map(lambda a: a << 2)),
)


@settings(max_examples=300, deadline=None)
@given(cmd=commands)
def test_decode_inverts_encode(cmd: Command) -> None:
    words = cmd.encode()
    assert decode_command(words) == cmd
    assert words[0] & 0xFF == cmd.OPCODE


# -- coverage --------------------------------------------------------------------------

sids, ssids, pfns = st.integers(0, 2), st.integers(0, 2), st.integers(0, 7)
vmids = st.integers(0, 1)
prots = st.sampled_from([Prot.READ, Prot.RW])
entries = st.one_of(
    st.builds(SteCacheEntry, sid=sids, words=st.sampled_from([(1,) + (0,) * 7, (9,) + (0,) * 7])),
    st.builds(CdCacheEntry, sid=sids, ssid=ssids,
              words=st.sampled_from([(0x8000_0000,) + (0,) * 7, (0,) * 8])),
    st.builds(TlbEntry, vmid=vmids, asid=st.none() | st.integers(0, 2), iova_pfn=pfns,
              pfn=st.integers(0, 3), prot=prots),
    st.builds(AtcEntry, sid=sids, ssid=st.none() | ssids, iova_pfn=pfns, pfn=st.integers(0, 3),
              prot=prots),
)
small_commands = st.one_of(
    st.builds(PREFETCH_CFG, sid=sids),
    st.builds(CFGI_STE, sid=sids, leaf=st.booleans()),
    st.builds(CFGI_CD, sid=sids, ssid=ssids, leaf=st.booleans()),
    st.builds(CFGI_CD_ALL, sid=sids),
    st.builds(TLBI_NH_ASID, asid=st.integers(0, 2), vmid=vmids),
    st.builds(TLBI_NH_VA, asid=st.integers(0, 2), vmid=vmids, addr=pfns.map(lambda p: p << 12),
              num=st.integers(0, 3), scale=st.integers(0, 2), tg=st.integers(0, 1)),
    st.builds(TLBI_S12_VMALL, vmid=vmids),
    st.builds(TLBI_NH_ALL, vmid=vmids),
    st.builds(TLBI_S2_IPA, vmid=vmids, addr=pfns.map(lambda p: p << 12),
              num=st.integers(0, 3), scale=st.integers(0, 2), tg=st.integers(0, 1)),
    st.just(TLBI_NSNH_ALL()),
    st.builds(ATC_INV, sid=sids, ssid=ssids, ssv=st.booleans(), addr=pfns.map(lambda p: p << 12),
              size=st.sampled_from([0, 1, 2, 52])),
    st.just(CMD_SYNC()),
)


def expected_cover(cmd: Command, e: CacheEntry) -> bool:
    """The coverage rules of B.4/B.5, written out independently of Command.covers."""
    if isinstance(cmd, CFGI_STE):  # the STE and every CD cached for the SID
        return isinstance(e, (SteCacheEntry, CdCacheEntry)) and e.sid == cmd.sid
    if isinstance(cmd, CFGI_CD):
        return isinstance(e, CdCacheEntry) and (e.sid, e.ssid) == (cmd.sid, cmd.ssid)
    if isinstance(cmd, CFGI_CD_ALL):
        return isinstance(e, CdCacheEntry) and e.sid == cmd.sid
    if isinstance(cmd, TLBI_NH_ASID):
        return isinstance(e, TlbEntry) and e.asid is not None and (e.vmid, e.asid) == (
            cmd.vmid, cmd.asid)
    if isinstance(cmd, TLBI_NH_VA):
        if cmd.tg == 0:
            lo, hi = cmd.addr >> 12, (cmd.addr >> 12) + 1
        else:  # tg 1: 4 KiB granules
            lo = cmd.addr >> 12
            hi = lo + (cmd.num + 1) * 2 ** cmd.scale
        return (isinstance(e, TlbEntry) and e.asid is not None
                and (e.vmid, e.asid) == (cmd.vmid, cmd.asid) and lo <= e.iova_pfn < hi)
    if isinstance(cmd, TLBI_S12_VMALL):
        return isinstance(e, TlbEntry) and e.vmid == cmd.vmid
    if isinstance(cmd, TLBI_NH_ALL):  # stage-1 and combined entries of the VMID
        return isinstance(e, TlbEntry) and e.asid is not None and e.vmid == cmd.vmid
    if isinstance(cmd, TLBI_S2_IPA):  # stage-2-only entries, by IPA page
        lo = cmd.addr >> 12
        hi = lo + 1 if cmd.tg == 0 else lo + (cmd.num + 1) * 2 ** cmd.scale
        return isinstance(e, TlbEntry) and e.asid is None and e.vmid == cmd.vmid and lo <= e.iova_pfn < hi
    if isinstance(cmd, TLBI_NSNH_ALL):
        return isinstance(e, TlbEntry)
    if isinstance(cmd, ATC_INV):
        span = 2 ** cmd.size
        lo = (cmd.addr >> 12) // span * span
        return (isinstance(e, AtcEntry) and e.sid == cmd.sid
                and (not cmd.ssv or e.ssid == cmd.ssid) and lo <= e.iova_pfn < lo + span)
    return False  # CMD_SYNC, PREFETCH_CFG


def _unit_with(contents: set[CacheEntry]) -> SmmuUnit:
    u = SmmuUnit(Memory(), sid_bits=2)
    for e in contents:
        if isinstance(e, SteCacheEntry):
            u.ste_cache.add(e)
        elif isinstance(e, CdCacheEntry):
            u.cd_cache.add(e)
        elif isinstance(e, TlbEntry):
            u.tlb.add(e)
        else:
            u.atc.add(e)
    return u


@settings(max_examples=600, deadline=None)
@given(contents=st.sets(entries, max_size=12), cmd=small_commands)
def test_execute_removes_exactly_what_the_command_covers(
    contents: set[CacheEntry], cmd: Command
) -> None:
    unit = _unit_with(contents)
    removed = unit.execute(cmd)
    expected = {e for e in contents if expected_cover(cmd, e)}
    assert removed == expected
    assert set(unit.entries()) == contents - expected
    assert unit.cmd_log == [cmd]


def test_coverage_examples() -> None:
    tlb_s1 = TlbEntry(vmid=0, asid=3, iova_pfn=1, pfn=9)
    tlb_s2 = TlbEntry(vmid=0, asid=None, iova_pfn=1, pfn=9)
    atc_pasid = AtcEntry(sid=8, ssid=5, iova_pfn=4, pfn=1)
    atc_nopasid = AtcEntry(sid=8, ssid=None, iova_pfn=4, pfn=1)
    # NH_ASID never removes stage-2 entries; S12_VMALL removes both.
    assert TLBI_NH_ASID(asid=3).covers(tlb_s1) and not TLBI_NH_ASID(asid=3).covers(tlb_s2)
    assert TLBI_S12_VMALL(vmid=0).covers(tlb_s1) and TLBI_S12_VMALL(vmid=0).covers(tlb_s2)
    # SSV=0 hits PASID-tagged entries too; SSV=1 only its own SSID.
    assert ATC_INV(sid=8).covers(atc_pasid) and ATC_INV(sid=8).covers(atc_nopasid)
    assert ATC_INV(sid=8, ssid=5, ssv=True).covers(atc_pasid)
    assert not ATC_INV(sid=8, ssid=5, ssv=True).covers(atc_nopasid)
    assert not ATC_INV(sid=8, ssid=6, ssv=True).covers(atc_pasid)
    # Span of 4 pages at page 5 is pages 4..7 (aligned down).
    assert ATC_INV(sid=8, addr=5 << 12, size=2).pages == range(4, 8)
    assert not ATC_INV(sid=8, addr=0, size=2).covers(atc_pasid)
    # CFGI_STE takes the SID's cached CDs with its STE (the reading in commands.py).
    assert CFGI_STE(sid=8).covers(CdCacheEntry(8, 0, (0,) * 8))
    assert not CFGI_STE(sid=9).covers(CdCacheEntry(8, 0, (0,) * 8))
    # S2_IPA: stage-2 entries by IPA only; NH_ALL: every stage-1 / combined entry of the VMID.
    nested = TlbEntry(vmid=2, asid=1, iova_pfn=4, pfn=9, ipa_pfn=6)
    s2 = TlbEntry(vmid=2, asid=None, iova_pfn=6, pfn=9)
    assert TLBI_S2_IPA(vmid=2, addr=6 << 12).covers(s2)
    assert not TLBI_S2_IPA(vmid=2, addr=6 << 12).covers(nested)
    assert not TLBI_S2_IPA(vmid=2, addr=4 << 12).covers(nested)  # nor by its VA
    assert TLBI_NH_ALL(vmid=2).covers(nested) and not TLBI_NH_ALL(vmid=2).covers(s2)
    assert not TLBI_NH_ALL(vmid=3).covers(nested)
    # Range TLBI: TG=2 (16 KiB granules), NUM=1, SCALE=1 -> 4 granules = 16 pages from 0x4000.
    assert TLBI_NH_VA(asid=1, vmid=0, addr=0x5000, num=1, scale=1, tg=2).pages == range(4, 20)


def test_driver_command_builders() -> None:
    # arm_smmu_atc_inv_to_cmd: pages [7, 10] need the span [0, 15].
    cmd = atc_inv_cmd(sid=8, ssid=None, iova=7 << 12, size=4 << 12)
    assert (cmd.ssv, cmd.addr, cmd.size) == (False, 0, 4)
    cmd = atc_inv_cmd(sid=8, ssid=5, iova=8 << 12, size=4 << 12)
    assert (cmd.ssv, cmd.ssid, cmd.addr, cmd.size) == (True, 5, 8 << 12, 2)
    assert atc_inv_cmd(sid=8, ssid=5, iova=0, size=0) == ATC_INV(sid=8, ssid=5, ssv=True)
    # Without range invalidation: one NH_VA per page.
    assert [c.addr for c in tlbi_nh_va_cmds(3, 0, 0x2000, 0x3000)] == [0x2000, 0x3000, 0x4000]
    # With it: 33 pages = 1 page (NUM 0, SCALE 0) then 32 pages (NUM 0, SCALE 5).
    cmds = tlbi_nh_va_cmds(3, 0, 0x10000, 33 << 12, range_inv=True)
    assert [(c.addr, c.num, c.scale) for c in cmds] == [(0x10000, 0, 0), (0x11000, 0, 5)]
    covered = [p for c in cmds for p in c.pages]
    assert covered == list(range(0x10, 0x10 + 33))
    assert all(c.tg == 1 and c.ttl == 3 for c in cmds)
    # 7 pages fit one command: NUM 6, SCALE 0.
    assert [(c.num, c.scale) for c in tlbi_nh_va_cmds(3, 0, 0, 7 << 12, range_inv=True)] == [(6, 0)]
