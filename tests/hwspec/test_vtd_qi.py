"""VT-d QI descriptors: encodings (hw-tables.md A.7, iommu.h QI_* macros) and coverage.

Coverage tests state each spec rule as its own comprehension, independent of
`covers`, over Hypothesis-generated cache contents with small value ranges so that
tags collide."""

from __future__ import annotations

from typing import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwspec.layout import LayoutError
from hwspec.memory import Memory, Prot
from hwspec.vtd import (
    CcGran,
    ContextCacheEntry,
    DevTlbEntry,
    EiotlbGran,
    IotlbEntry,
    IotlbGran,
    PasidCacheEntry,
    PcGran,
    QiCc,
    QiDeiotlb,
    QiDesc,
    QiDiotlb,
    QiEiotlb,
    QiIotlb,
    QiIwd,
    QiPc,
    VtdUnit,
    decode_descriptor,
    qi_desc_context,
    qi_desc_dev_iotlb,
    qi_desc_dev_iotlb_pasid,
    qi_desc_iotlb,
    qi_desc_pasid_cache,
    qi_desc_piotlb,
    qi_desc_piotlb_all,
    qi_desc_wait,
)

SETTINGS = settings(max_examples=150, deadline=None)


# -- encodings -----------------------------------------------------------------------
ENCODINGS: list[tuple[QiDesc, tuple[int, int]]] = [
    (
        QiCc(gran=CcGran.DEVICE, did=0x1234, sid=0xABCD, fm=2),
        (1 | 3 << 4 | 0x1234 << 16 | 0xABCD << 32 | 2 << 48, 0),
    ),
    (
        QiIotlb(gran=IotlbGran.PSI, did=0x55, dw=1, dr=1, addr=0x12345, ih=1, am=9),
        (2 | 3 << 4 | 1 << 6 | 1 << 7 | 0x55 << 16, 0x12345 << 12 | 1 << 6 | 9),
    ),
    (
        QiDiotlb(sid=0x0108, pfsid=0xABC5, qdep=17, addr=0x777, s=1),
        (3 | 5 << 12 | 17 << 16 | 0x0108 << 32 | 0xABC << 52, 0x777 << 12 | 1),
    ),
    (
        QiIwd(sw=1, fence=1, prq_drain=1, status_data=2, status_addr=0x1234 >> 2),
        (5 | 1 << 5 | 1 << 6 | 1 << 7 | 2 << 32, 0x1234),
    ),
    (
        QiEiotlb(gran=EiotlbGran.PSI_PASID, did=0x42, pasid=0xFFFFF, addr=0x100, ih=1, am=3),
        (6 | 3 << 4 | 0x42 << 16 | 0xFFFFF << 32, 0x100 << 12 | 1 << 6 | 3),
    ),
    (
        QiPc(gran=PcGran.PASID_SEL, did=7, pasid=0x12345),
        (7 | 1 << 4 | 7 << 16 | 0x12345 << 32, 0),
    ),
    (
        QiDeiotlb(sid=0x0108, pasid=0x54321, pfsid=0xABC5, qdep=0x1F, addr=0x999, s=1),
        (8 | 0x1F << 4 | 5 << 12 | 0x0108 << 16 | 0x54321 << 32 | 0xABC << 52, 0x999 << 12 | 1 << 11),
    ),
]


@pytest.mark.parametrize("desc,words", ENCODINGS, ids=[type(d).__name__ for d, _ in ENCODINGS])
def test_encode_positions(desc: QiDesc, words: tuple[int, int]) -> None:
    assert desc.encode() == words
    assert decode_descriptor(words) == desc
    assert decode_descriptor(words + (0, 0)) == desc  # 256-bit SM descriptor, qw2/qw3 zero


def test_kernel_helper_encodings() -> None:
    """The words the kernel helpers build, composed from the QI_* macros by hand."""
    # qi_submit_sync's wait: QI_IWD_STATUS_DATA(QI_DONE) | QI_IWD_STATUS_WRITE | QI_IWD_TYPE
    assert qi_desc_wait().encode() == (2 << 32 | 1 << 5 | 5, 0)
    assert qi_desc_wait(prq_drain=True).encode()[0] == 2 << 32 | 1 << 7 | 1 << 5 | 5
    # qi_desc_piotlb_all: PASID << 32 | DID << 16 | GRAN(NONG_PASID=2) << 4 | 6; qw1 = 0
    assert qi_desc_piotlb_all(2, 3).encode() == (3 << 32 | 2 << 16 | 2 << 4 | 6, 0)
    # qi_flush_pasid_cache(did 1, QI_PC_PASID_SEL, pasid 5)
    assert qi_desc_pasid_cache(1, PcGran.PASID_SEL, 5).encode() == (5 << 32 | 1 << 16 | 1 << 4 | 7, 0)
    # flush_context(did 0, sid 0x0008, MASK_NOBIT, DEVICE)
    assert qi_desc_context(0, 0x0008, 0, CcGran.DEVICE).encode() == (8 << 32 | 3 << 4 | 1, 0)
    # DSI as intel_pasid_tear_down_entry issues it: flush_iotlb(did, 0, 0, DSI)
    assert qi_desc_iotlb(9, 0, 0, IotlbGran.DSI).encode() == (9 << 16 | 2 << 4 | 2, 0)
    # PSI with IH riding in bit 0 of addr
    assert qi_desc_iotlb(9, 0x4000 | 1, 2, IotlbGran.PSI).encode()[1] == 0x4000 | 1 << 6 | 2
    # qi_desc_piotlb(did, pasid, addr, size_order, ih)
    assert qi_desc_piotlb(4, 6, 0x8000, 3, 1).encode() == (
        6 << 32 | 4 << 16 | 3 << 4 | 6,
        0x8000 | 1 << 6 | 3,
    )
    # whole-range device-TLB flushes (mask / size_order = MAX_AGAW_PFN_WIDTH = 52)
    assert qi_desc_dev_iotlb(0x0008, 0x0008, 0, 0, 52).encode() == (
        0x0008 << 32 | 8 << 12 | 3,
        0x7FFF_FFFF_FFFF_F000 | 1,
    )
    assert qi_desc_dev_iotlb_pasid(0x0008, 0, pasid=3, qdep=0, addr=0, size_order=52).encode() == (
        3 << 32 | 0x0008 << 16 | 8,
        0x7FFF_FFFF_FFFF_F800,
    )
    # qdep >= QI_DEV_IOTLB_MAX_INVS (32) is sent as 0
    assert qi_desc_dev_iotlb(1, 0, 32, 0, 0).qdep == 0


def test_str_reads_like_the_kernel() -> None:
    assert str(qi_desc_pasid_cache(1, PcGran.PASID_SEL, 5)) == "QI_PC pasid-selective did=1 pasid=5"
    assert str(qi_desc_pasid_cache(1, PcGran.ALL_PASIDS, 0)) == "QI_PC all-pasids did=1"
    assert str(QiPc(gran=PcGran.GLOBAL)) == "QI_PC global"
    assert str(qi_desc_piotlb_all(2, 3)) == "QI_EIOTLB all did=2 pasid=3"
    assert (
        str(qi_desc_dev_iotlb_pasid(8, 0, pasid=3, qdep=0, addr=0, size_order=52))
        == "QI_DEV_EIOTLB sid=0x0008 pasid=3 whole range"
    )
    assert str(qi_desc_dev_iotlb(8, 0, 0, 0x4000, 2)) == "QI_DEV_IOTLB sid=0x0008 addr=0x4000 pages=4"
    assert str(qi_desc_iotlb(2, 0, 0, IotlbGran.DSI)) == "QI_IOTLB dsi did=2"
    assert str(qi_desc_context(0, 8, 0, CcGran.DEVICE)) == "QI_CC device sid=0x0008 fm=0 did=0"
    assert str(qi_desc_wait()) == "QI_IWD status_write data=2"


def _strategy(cls: type[QiDesc]) -> st.SearchStrategy[QiDesc]:
    kwargs: dict[str, st.SearchStrategy[int]] = {}
    for f in cls.LAYOUT.fields:
        if f.name == "type":
            continue
        if f.name in ("pfsid_lo", "pfsid_hi"):
            kwargs["pfsid"] = st.integers(0, 0xFFFF)
        elif f.enum is not None:
            kwargs[f.name] = st.sampled_from(list(f.enum))
        else:
            kwargs[f.name] = st.integers(0, f.max)
    return st.builds(cls, **kwargs)


ALL_TYPES: list[type[QiDesc]] = [QiCc, QiIotlb, QiDiotlb, QiIwd, QiEiotlb, QiPc, QiDeiotlb]


@pytest.mark.parametrize("cls", ALL_TYPES, ids=lambda c: c.__name__)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_decode_encode_roundtrip(cls: type[QiDesc], data: st.DataObject) -> None:
    desc = data.draw(_strategy(cls))
    words = desc.encode()
    assert words[0] & 0xF == cls.TYPE
    again = decode_descriptor(words)
    assert type(again) is cls and again == desc


def test_decode_rejects() -> None:
    with pytest.raises(LayoutError, match="type 0x4"):
        decode_descriptor((4, 0))  # interrupt-entry cache: not modelled
    with pytest.raises(LayoutError, match="reserved"):
        decode_descriptor((QiPc(gran=PcGran.GLOBAL).encode()[0] | 1 << 8, 0))
    with pytest.raises(LayoutError, match="reserved"):
        decode_descriptor((QiPc(gran=PcGran.GLOBAL).encode()[0], 1))  # PC has no qw1 fields
    with pytest.raises(LayoutError, match="qw2"):
        decode_descriptor((7, 0, 1, 0))
    with pytest.raises(LayoutError, match="IotlbGran"):
        decode_descriptor((2, 0))  # IOTLB granularity 0 is reserved
    with pytest.raises(LayoutError, match="PcGran"):
        decode_descriptor((7 | 2 << 4, 0))
    with pytest.raises(LayoutError, match="pasid"):
        QiPc(gran=PcGran.PASID_SEL, pasid=1 << 20)
    with pytest.raises(LayoutError, match="pfsid"):
        QiDiotlb(sid=1, pfsid=0x10000)


# -- coverage: arbitrary caches, the rule written independently ----------------------------
SIDS = st.integers(0, 15)
SMALL = st.integers(0, 3)
PFNS = st.integers(0, 15)
OPT_PASID = st.none() | SMALL

cc_entries = st.builds(ContextCacheEntry, sid=SIDS, words=st.sampled_from([(1, 0, 0, 0), (9, 0, 0, 0)]))
pc_entries = st.builds(
    PasidCacheEntry, sid=SMALL, did=SMALL, pasid=SMALL, words=st.sampled_from([(1,) + (0,) * 7, (0x41,) + (0,) * 7])
)
iotlb_entries = st.builds(
    IotlbEntry, did=SMALL, pasid=OPT_PASID, iova_pfn=PFNS, pfn=SMALL,
    prot=st.sampled_from([Prot.RW, Prot.READ]), pt=st.booleans(),
)
devtlb_entries = st.builds(DevTlbEntry, sid=SMALL, pasid=OPT_PASID, iova_pfn=PFNS, pfn=SMALL)

caches = st.fixed_dictionaries(
    {
        "context_cache": st.sets(cc_entries, max_size=8),
        "pasid_cache": st.sets(pc_entries, max_size=8),
        "iotlb": st.sets(iotlb_entries, max_size=12),
        "devtlb": st.sets(devtlb_entries, max_size=12),
    }
)

_MEM = Memory()
_UNIT = VtdUnit(_MEM)


def _unit_with(contents: dict[str, set[object]]) -> VtdUnit:
    u = _UNIT.copy()
    for name, entries in contents.items():
        getattr(u, name).update(entries)
    return u


def _check(desc: QiDesc, contents: dict[str, set[object]], cache: str, rule: Callable[[object], bool]) -> None:
    """execute removes exactly {e in cache : rule(e)} and leaves every other cache alone."""
    unit = _unit_with(contents)
    unit.execute(desc)
    for name, before in contents.items():
        expected_removed = {e for e in before if rule(e)} if name == cache else set()
        after = getattr(unit, name)
        assert before - after == expected_removed, (str(desc), name)
        assert after == before - expected_removed
    assert unit.qi_log == [desc]


def _in_aligned_block(pfn: int, addr: int, order: int) -> bool:
    start = addr - addr % 2**order
    return start <= pfn < start + 2**order


@SETTINGS
@given(contents=caches, gran=st.sampled_from(list(CcGran)), sid=SIDS, did=SMALL, fm=st.integers(0, 3))
def test_cc_coverage(contents: dict[str, set[object]], gran: CcGran, sid: int, did: int, fm: int) -> None:
    ignored = {0: 0, 1: 0b100, 2: 0b110, 3: 0b111}[fm]

    def rule(e: object) -> bool:
        assert isinstance(e, ContextCacheEntry)
        if gran is CcGran.DEVICE:
            return e.sid | ignored == sid | ignored
        return True  # global; domain in SM (no DID in context entries): model assumption

    _check(QiCc(gran=gran, did=did, sid=sid, fm=fm), contents, "context_cache", rule)


@SETTINGS
@given(contents=caches, gran=st.sampled_from(list(PcGran)), did=SMALL, pasid=SMALL)
def test_pc_coverage(contents: dict[str, set[object]], gran: PcGran, did: int, pasid: int) -> None:
    def rule(e: object) -> bool:
        assert isinstance(e, PasidCacheEntry)
        return {
            PcGran.GLOBAL: True,
            PcGran.ALL_PASIDS: e.did == did,
            PcGran.PASID_SEL: e.did == did and e.pasid == pasid,
        }[gran]

    _check(QiPc(gran=gran, did=did, pasid=pasid), contents, "pasid_cache", rule)


@SETTINGS
@given(contents=caches, gran=st.sampled_from(list(IotlbGran)), did=SMALL, addr=PFNS, am=st.integers(0, 4))
def test_iotlb_coverage(contents: dict[str, set[object]], gran: IotlbGran, did: int, addr: int, am: int) -> None:
    def rule(e: object) -> bool:
        assert isinstance(e, IotlbEntry)
        if gran is IotlbGran.GLOBAL:
            return True
        if gran is IotlbGran.DSI:
            return e.did == did  # first- and second-stage alike
        return e.pasid is None and e.did == did and _in_aligned_block(e.iova_pfn, addr, am)

    _check(QiIotlb(gran=gran, did=did, addr=addr, am=am), contents, "iotlb", rule)


@SETTINGS
@given(contents=caches, gran=st.sampled_from(list(EiotlbGran)), did=SMALL, pasid=SMALL, addr=PFNS, am=st.integers(0, 4))
def test_eiotlb_coverage(
    contents: dict[str, set[object]], gran: EiotlbGran, did: int, pasid: int, addr: int, am: int
) -> None:
    def rule(e: object) -> bool:
        assert isinstance(e, IotlbEntry)
        tagged = e.pasid is not None and e.pasid == pasid and e.did == did
        if gran is EiotlbGran.NONG_PASID:
            return tagged
        return tagged and _in_aligned_block(e.iova_pfn, addr, am)

    _check(QiEiotlb(gran=gran, did=did, pasid=pasid, addr=addr, am=am), contents, "iotlb", rule)


def _devtlb_block(addr: int, s: int) -> tuple[int, int]:
    """(first page, page count) of a device-TLB invalidation, PCIe ATS style: count the
    trailing 1 bits of the page address; t ones mean 2^(t+1) pages."""
    if not s:
        return addr, 1
    t = 0
    while addr >> t & 1:
        t += 1
    size = 2 ** (t + 1)
    return addr - addr % size, size


@SETTINGS
@given(contents=caches, sid=SMALL, addr=PFNS, s=st.integers(0, 1))
def test_diotlb_coverage(contents: dict[str, set[object]], sid: int, addr: int, s: int) -> None:
    first, count = _devtlb_block(addr, s)

    def rule(e: object) -> bool:
        assert isinstance(e, DevTlbEntry)
        return e.sid == sid and first <= e.iova_pfn < first + count  # any PASID, or none

    _check(QiDiotlb(sid=sid, addr=addr, s=s), contents, "devtlb", rule)


@SETTINGS
@given(contents=caches, sid=SMALL, pasid=SMALL, addr=PFNS, s=st.integers(0, 1))
def test_deiotlb_coverage(contents: dict[str, set[object]], sid: int, pasid: int, addr: int, s: int) -> None:
    first, count = _devtlb_block(addr, s)

    def rule(e: object) -> bool:
        assert isinstance(e, DevTlbEntry)
        return e.sid == sid and e.pasid == pasid and first <= e.iova_pfn < first + count

    _check(QiDeiotlb(sid=sid, pasid=pasid, addr=addr, s=s), contents, "devtlb", rule)


@settings(max_examples=30, deadline=None)
@given(contents=caches)
def test_wait_covers_nothing(contents: dict[str, set[object]]) -> None:
    _check(qi_desc_wait(fence=True, prq_drain=True), contents, "iotlb", lambda e: False)


# -- size encodings ----------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(n=st.integers(0, 12), k=st.integers(0, 7), probe=st.integers(-3, 3), pasid=SMALL)
def test_dev_iotlb_size_order_covers_2n_aligned_pages(n: int, k: int, probe: int, pasid: int) -> None:
    start = k * 2**n
    pasid_form = qi_desc_dev_iotlb_pasid(5, 0, pasid=pasid, qdep=0, addr=start << 12, size_order=n)
    plain_form = qi_desc_dev_iotlb(5, 0, 0, start << 12, n)
    for pfn in {start + probe, start + 2**n - 1 + probe, start, start + 2**n - 1}:
        if pfn < 0:
            continue
        inside = start <= pfn < start + 2**n
        assert pasid_form.covers(DevTlbEntry(5, pasid, pfn, 0)) == inside, (n, start, pfn)
        assert plain_form.covers(DevTlbEntry(5, None, pfn, 0)) == inside, (n, start, pfn)
        assert plain_form.covers(DevTlbEntry(5, pasid, pfn, 0)) == inside
        assert not pasid_form.covers(DevTlbEntry(5, None, pfn, 0))  # PASID prefix: no untagged hits
        assert not pasid_form.covers(DevTlbEntry(6, pasid, pfn, 0))


def test_size_order_52_is_everything() -> None:
    whole = qi_desc_dev_iotlb_pasid(5, 0, pasid=1, qdep=0, addr=0, size_order=52)
    plain = qi_desc_dev_iotlb(5, 0, 0, 0, 52)
    for pfn in (0, 1, 0x12345, (1 << 52) - 1):
        assert whole.covers(DevTlbEntry(5, 1, pfn, 0))
        assert plain.covers(DevTlbEntry(5, None, pfn, 0))
    single = qi_desc_dev_iotlb_pasid(5, 0, pasid=1, qdep=0, addr=0x3000, size_order=0)
    assert single.s == 0 and single.addr == 3
    assert [p for p in range(8) if single.covers(DevTlbEntry(5, 1, p, 0))] == [3]
