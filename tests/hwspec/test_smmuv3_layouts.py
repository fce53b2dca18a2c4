"""SMMUv3 STE and CD layouts: every field of hw-tables.md B.1/B.2 at its bit position,
round trips, errors, and the constructors' exact words (KUnit fixture values, C.4)."""

import pytest
from hypothesis import given, settings, strategies as st

from hwspec.layout import Layout, LayoutError
from hwspec.smmuv3 import (
    CD,
    CD_ZERO,
    STE,
    VTCR,
    Cfg,
    S1Dss,
    S1Fmt,
    make_abort_ste,
    make_bypass_ste,
    make_cdtable_ste,
    make_nested_ste,
    make_s1_cd,
    make_s2_ste,
    make_sva_cd,
    make_vtcr,
)

# (field, qword, raw qword value with the field all ones), written from B.1 by hand.
STE_FIELDS = [
    ("v", 0, 0x0000_0000_0000_0001),
    ("cfg", 0, 0x0000_0000_0000_000E),
    ("s1fmt", 0, 0x0000_0000_0000_0030),
    ("s1ctxptr", 0, 0x000F_FFFF_FFFF_FFC0),
    ("s1cdmax", 0, 0xF800_0000_0000_0000),
    ("s1dss", 1, 0x0000_0000_0000_0003),
    ("s1cir", 1, 0x0000_0000_0000_000C),
    ("s1cor", 1, 0x0000_0000_0000_0030),
    ("s1csh", 1, 0x0000_0000_0000_00C0),
    ("mev", 1, 0x0000_0000_0008_0000),
    ("s2fwb", 1, 0x0000_0000_0200_0000),
    ("s1stalld", 1, 0x0000_0000_0800_0000),
    ("eats", 1, 0x0000_0000_3000_0000),
    ("strw", 1, 0x0000_0000_C000_0000),
    ("shcfg", 1, 0x0000_3000_0000_0000),
    ("s2vmid", 2, 0x0000_0000_0000_FFFF),
    ("vtcr", 2, 0x0007_FFFF_0000_0000),
    ("s2aa64", 2, 0x0008_0000_0000_0000),
    ("s2endi", 2, 0x0010_0000_0000_0000),
    ("s2ptw", 2, 0x0040_0000_0000_0000),
    ("s2s", 2, 0x0200_0000_0000_0000),
    ("s2r", 2, 0x0400_0000_0000_0000),
    ("s2ttb", 3, 0x000F_FFFF_FFFF_FFF0),
]

CD_FIELDS = [
    ("t0sz", 0, 0x0000_0000_0000_003F),
    ("tg0", 0, 0x0000_0000_0000_00C0),
    ("irgn0", 0, 0x0000_0000_0000_0300),
    ("orgn0", 0, 0x0000_0000_0000_0C00),
    ("sh0", 0, 0x0000_0000_0000_3000),
    ("epd0", 0, 0x0000_0000_0000_4000),
    ("endi", 0, 0x0000_0000_0000_8000),
    ("epd1", 0, 0x0000_0000_4000_0000),
    ("v", 0, 0x0000_0000_8000_0000),
    ("ips", 0, 0x0000_0007_0000_0000),
    ("tbi0", 0, 0x0000_0040_0000_0000),
    ("aa64", 0, 0x0000_0200_0000_0000),
    ("hd", 0, 0x0000_0400_0000_0000),
    ("ha", 0, 0x0000_0800_0000_0000),
    ("s", 0, 0x0000_1000_0000_0000),
    ("r", 0, 0x0000_2000_0000_0000),
    ("a", 0, 0x0000_4000_0000_0000),
    ("aset", 0, 0x0000_8000_0000_0000),
    ("asid", 0, 0xFFFF_0000_0000_0000),
    ("ttb0", 1, 0x000F_FFFF_FFFF_FFF0),
    ("mair0", 3, 0xFFFF_FFFF_FFFF_FFFF),
]


def _expected(qword: int, value: int) -> tuple[int, ...]:
    return tuple(value if i == qword else 0 for i in range(8))


def test_the_tables_above_name_every_declared_field() -> None:
    assert [f for f, _, _ in STE_FIELDS] == list(STE.names)
    assert [f for f, _, _ in CD_FIELDS] == list(CD.names)


@pytest.mark.parametrize("name,qword,value", STE_FIELDS)
def test_ste_field_at_its_bits(name: str, qword: int, value: int) -> None:
    assert STE.encode(**{name: STE[name].max}) == _expected(qword, value)


@pytest.mark.parametrize("name,qword,value", CD_FIELDS)
def test_cd_field_at_its_bits(name: str, qword: int, value: int) -> None:
    assert CD.encode(**{name: CD[name].max}) == _expected(qword, value)


def test_vtcr_subfields_inside_the_19_bit_field() -> None:
    # STRTAB_STE_2_VTCR_S2*: T0SZ 5:0, SL0 7:6, IR0 9:8, OR0 11:10, SH0 13:12, TG 15:14, PS 18:16.
    assert make_vtcr(tsz=0x3F, sl=0, irgn=0, orgn=0, sh=0, tg=0, ps=0) == 0x3F
    assert make_vtcr(tsz=0, sl=3, irgn=0, orgn=0, sh=0, tg=0, ps=0) == 0xC0
    assert make_vtcr(tsz=0, sl=0, irgn=3, orgn=0, sh=0, tg=0, ps=0) == 0x300
    assert make_vtcr(tsz=0, sl=0, irgn=0, orgn=3, sh=0, tg=0, ps=0) == 0xC00
    assert make_vtcr(tsz=0, sl=0, irgn=0, orgn=0, sh=3, tg=0, ps=0) == 0x3000
    assert make_vtcr(tsz=0, sl=0, irgn=0, orgn=0, sh=0, tg=3, ps=0) == 0xC000
    assert make_vtcr(tsz=0, sl=0, irgn=0, orgn=0, sh=0, tg=0, ps=7) == 0x70000
    assert VTCR.mask(*VTCR.names) == (0x7FFFF,)
    # The C.4 fixture: ps 1, tg 2, sh 3, orgn 1, irgn 2, sl 3, tsz 4.
    assert make_vtcr(tsz=4, sl=3, irgn=2, orgn=1, sh=3, tg=2, ps=1) == 0x1B6C4


def _values(
    layout_fields: list[tuple[str, int, int]], layout: Layout
) -> st.SearchStrategy[dict[str, int]]:
    return st.fixed_dictionaries(
        {name: st.integers(0, layout[name].max) for name, _, _ in layout_fields}
    )


@settings(max_examples=200, deadline=None)
@given(values=_values(STE_FIELDS, STE))
def test_ste_decode_inverts_encode(values: dict[str, int]) -> None:
    assert STE.decode(STE.encode(**values)) == values


@settings(max_examples=200, deadline=None)
@given(values=_values(CD_FIELDS, CD))
def test_cd_decode_inverts_encode(values: dict[str, int]) -> None:
    assert CD.decode(CD.encode(**values)) == values


def test_too_wide_values_and_unknown_names_are_refused() -> None:
    with pytest.raises(LayoutError, match=r"STE\.s2vmid = 0x10000 does not fit 16 bit"):
        STE.encode(s2vmid=0x10000)
    with pytest.raises(LayoutError, match=r"STE\.s1cdmax = 0x20 does not fit 5 bit"):
        STE.encode(s1cdmax=0x20)
    with pytest.raises(LayoutError, match=r"CD\.asid = 0x10000"):
        CD.encode(asid=0x10000)
    with pytest.raises(LayoutError, match="STE has no field 'config'"):
        STE.encode(config=1)
    with pytest.raises(LayoutError, match="CD has no field 'ttbr0'"):
        CD.encode(ttbr0=1)
    with pytest.raises(LayoutError, match="8 x 64-bit words, got 2"):
        STE.decode((0, 0))


# -- constructors: exact words -------------------------------------------------------

FAKE_CDTAB = 0xF0F0F0F0F0F0
VTTBR = 0xDAEDBEEFDEADBEEF
FIXTURE_VTCR = 0x1B6C4


def test_abort_and_bypass_ste_words() -> None:
    assert make_abort_ste() == (0x1, 0, 0, 0, 0, 0, 0, 0)
    # V | CFG_BYPASS (4 << 1); SHCFG_INCOMING (1 << 44) with FEAT_ATTR_TYPES_OVR.
    assert make_bypass_ste() == (0x9, 1 << 44, 0, 0, 0, 0, 0, 0)
    assert make_bypass_ste(attr_types_ovr=False) == (0x9, 0, 0, 0, 0, 0, 0, 0)


def test_cdtable_ste_words_of_the_kunit_fixture() -> None:
    # FIELD_PREP(S1CDMAX, 0xFF) keeps the low 5 bits: the fixture's 0xFF is 31.
    ste = make_cdtable_ste(FAKE_CDTAB, 0xFF & 0x1F, S1Dss.SSID0, ats=True, s1fmt=S1Fmt.L2_64K,
                           stall_feature=True)
    # q0: V | CFG 5<<1 | S1FMT 2<<4 | (addr & GENMASK(51,6)) | 31<<59
    assert ste[0] == 0x1 | 0xA | 0x20 | 0xF0F0F0F0F0C0 | (31 << 59)
    # q1: S1DSS 2 | S1CIR 1<<2 | S1COR 1<<4 | S1CSH 3<<6 | S1STALLD 1<<27 | EATS 1<<28 | STRW 0
    assert ste[1] == 0x2 | 0x4 | 0x10 | 0xC0 | (1 << 27) | (1 << 28)
    assert ste[2:] == (0,) * 6
    bypass_dss = make_cdtable_ste(FAKE_CDTAB, 31, S1Dss.BYPASS, ats=False)
    # S1DSS=BYPASS adds SHCFG_INCOMING; no ATS, no stall feature.
    assert bypass_dss[1] == 0x1 | 0x4 | 0x10 | 0xC0 | (1 << 44)
    e2h = make_cdtable_ste(FAKE_CDTAB, 31, S1Dss.SSID0, ats=False, e2h=True)
    assert e2h[1] == 0x2 | 0x4 | 0x10 | 0xC0 | (2 << 30)
    stalls_on = make_cdtable_ste(FAKE_CDTAB, 31, S1Dss.SSID0, ats=False, stall_feature=True,
                                 stall_enabled=True)
    assert stalls_on[1] & (1 << 27) == 0


def test_s2_ste_words_of_the_kunit_fixture() -> None:
    ste = make_s2_ste(vmid=0, s2ttb_addr=VTTBR, vtcr=FIXTURE_VTCR, ats=True)
    assert ste[0] == 0x1 | 0xC  # V | CFG 6<<1
    assert ste[1] == (1 << 28) | (1 << 44)  # EATS_TRANS | SHCFG_INCOMING
    # VMID 0 | VTCR << 32 | S2AA64 | S2PTW | S2R
    assert ste[2] == (FIXTURE_VTCR << 32) | (1 << 51) | (1 << 54) | (1 << 58)
    assert ste[3] == 0x000DBEEFDEADBEE0  # vttbr & GENMASK(51, 4)
    stall = make_s2_ste(vmid=7, s2ttb_addr=VTTBR, vtcr=FIXTURE_VTCR, ats=False, s2fwb=True,
                        stall=True)
    assert stall[1] == (1 << 25) | (1 << 44)
    assert stall[2] == 7 | (FIXTURE_VTCR << 32) | (1 << 51) | (1 << 54) | (1 << 57) | (1 << 58)


def test_nested_ste_is_the_kunit_fixture() -> None:
    nested = make_nested_ste(FAKE_CDTAB, 31, S1Dss.BYPASS, ats=True, vmid=0, s2ttb_addr=VTTBR,
                             vtcr=FIXTURE_VTCR, s1fmt=S1Fmt.L2_64K, stall_feature=True)
    cdtable = make_cdtable_ste(FAKE_CDTAB, 31, S1Dss.BYPASS, ats=True, s1fmt=S1Fmt.L2_64K,
                               stall_feature=True)
    s2 = make_s2_ste(vmid=0, s2ttb_addr=VTTBR, vtcr=FIXTURE_VTCR, ats=True)
    assert nested[0] == cdtable[0] | (Cfg.NESTED << 1)
    assert nested[1] == cdtable[1] | (1 << 19)  # MEV
    assert nested[2:] == s2[2:]


def test_s1_cd_words_of_the_kunit_fixture() -> None:
    cd = make_s1_cd(1997, VTTBR, t0sz=4, tg0=2, irgn0=2, orgn0=1, sh0=3, ips=1,
                    mair=0xABCDEF012345678)
    # T0SZ 4 | TG0 2<<6 | IRGN0 2<<8 | ORGN0 1<<10 | SH0 3<<12 | EPD1 | V | IPS 1<<32 | AA64 | R | A
    # | ASET | ASID 1997<<48
    assert cd[0] == 0x07CD_E201_C000_3684
    assert cd[1] == 0x000DBEEFDEADBEE0
    assert cd[2] == 0
    assert cd[3] == 0xABCDEF012345678
    assert cd[4:] == (0,) * 4


def test_sva_cd_and_the_released_cd() -> None:
    live = make_sva_cd(5, 0x4000, ips=5)
    # T0SZ 16 | TG0 0 | IRGN0 WBWA 1<<8 | ORGN0 WBWA 1<<10 | SH0 IS 3<<12 | EPD1 | V | IPS 5<<32
    # | AA64 | R | A | ASET | ASID 5<<48
    assert live[0] == 0x0005_E205_C000_3510
    assert live[1] == 0x4000
    released = make_sva_cd(5, None, ips=5)
    # EPD0 (1<<14), no TCR walk fields, no TTB0, S and R cleared; still V=1.
    assert released[0] == 0x0005_C205_C000_4000
    assert released[1] == 0
    assert CD.get(released, "v") == 1
    forced = make_sva_cd(5, None, ips=5, stall=True, stall_force=True)
    assert CD.get(forced, "s") == 1 and CD.get(forced, "r") == 1
    assert CD_ZERO == (0,) * 8


def test_constructor_addresses_are_masked_like_the_driver() -> None:
    # STRTAB_STE_0_S1CTXPTR_MASK = GENMASK(51, 6): bits above 51 and below 6 are dropped.
    ste = make_cdtable_ste((1 << 60) | 0x12345 | 0x3F, 1, S1Dss.SSID0, ats=False)
    assert STE.get(ste, "s1ctxptr") == 0x12345 >> 6
    assert STE.get(make_s2_ste(1, (1 << 55) | 0x1234, 0, ats=False), "s2ttb") == 0x123
