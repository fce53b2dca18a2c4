"""VT-d scalable-mode entry layouts against hw-tables.md A.2-A.5 (and the pasid.h helpers)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwspec.layout import Layout, LayoutError
from hwspec.vtd import (
    CONTEXT_ENTRY,
    FLPT_DEFAULT_DID,
    IDA_START_DID,
    IOMMU_NO_PASID,
    PASID_DIR_ENTRY,
    PASID_ENTRY,
    PASID_PDE_SHIFT,
    PASID_PTE_MASK,
    PASID_TBL_ENTRIES,
    ROOT_ENTRY,
    Pgtt,
    bdf,
    context_entry_offset,
    context_half,
    pasid_dir_entry_addr,
    pasid_dir_size,
    pasid_entry_addr_in_table,
    pci_devid,
    root_entry_addr,
)

PTR = 0xFFFF_FFFF_FFFF_F000  # a 63:12 pointer field with every bit set

# (layout, field, exact raw words when that field alone holds its maximum value)
SINGLE_FIELD = [
    # A.5 PASID entry
    (PASID_ENTRY, "p", (1, 0, 0, 0, 0, 0, 0, 0)),
    (PASID_ENTRY, "fpd", (2, 0, 0, 0, 0, 0, 0, 0)),
    (PASID_ENTRY, "aw", (0b11100, 0, 0, 0, 0, 0, 0, 0)),
    (PASID_ENTRY, "pgtt", (0b111 << 6, 0, 0, 0, 0, 0, 0, 0)),
    (PASID_ENTRY, "ssade", (1 << 9, 0, 0, 0, 0, 0, 0, 0)),
    (PASID_ENTRY, "slptptr", (PTR, 0, 0, 0, 0, 0, 0, 0)),
    (PASID_ENTRY, "did", (0, 0xFFFF, 0, 0, 0, 0, 0, 0)),
    (PASID_ENTRY, "pwsnp", (0, 1 << 23, 0, 0, 0, 0, 0, 0)),
    (PASID_ENTRY, "pgsnp", (0, 1 << 24, 0, 0, 0, 0, 0, 0)),
    (PASID_ENTRY, "sre", (0, 0, 1, 0, 0, 0, 0, 0)),
    (PASID_ENTRY, "flpm", (0, 0, 0b1100, 0, 0, 0, 0, 0)),
    (PASID_ENTRY, "wpe", (0, 0, 1 << 4, 0, 0, 0, 0, 0)),
    (PASID_ENTRY, "nxe", (0, 0, 1 << 5, 0, 0, 0, 0, 0)),
    (PASID_ENTRY, "eafe", (0, 0, 1 << 7, 0, 0, 0, 0, 0)),
    (PASID_ENTRY, "flptptr", (0, 0, PTR, 0, 0, 0, 0, 0)),
    # A.3 scalable-mode context entry
    (CONTEXT_ENTRY, "p", (1, 0, 0, 0)),
    (CONTEXT_ENTRY, "fpd", (2, 0, 0, 0)),
    (CONTEXT_ENTRY, "dte", (4, 0, 0, 0)),
    (CONTEXT_ENTRY, "paside", (8, 0, 0, 0)),
    (CONTEXT_ENTRY, "pre", (0x10, 0, 0, 0)),
    (CONTEXT_ENTRY, "pdts", (0b111 << 9, 0, 0, 0)),
    (CONTEXT_ENTRY, "pasiddirptr", (PTR, 0, 0, 0)),
    (CONTEXT_ENTRY, "rid_pasid", (0, 0xFFFFF, 0, 0)),
    # A.2 scalable-mode root entry
    (ROOT_ENTRY, "lp", (1, 0)),
    (ROOT_ENTRY, "lctp", (PTR, 0)),
    (ROOT_ENTRY, "up", (0, 1)),
    (ROOT_ENTRY, "uctp", (0, PTR)),
    # A.4 PASID directory entry
    (PASID_DIR_ENTRY, "p", (1,)),
    (PASID_DIR_ENTRY, "smptblptr", (PTR,)),
]


@pytest.mark.parametrize(
    "layout,name,words", SINGLE_FIELD, ids=[f"{l.name}.{n}" for l, n, _ in SINGLE_FIELD]
)
def test_single_field_bit_position(layout: Layout, name: str, words: tuple[int, ...]) -> None:
    assert layout.encode(**{name: layout[name].max}) == words
    assert layout.decode(words)[name] == layout[name].max
    assert all(v == 0 for n, v in layout.decode(words).items() if n != name)


def test_every_declared_field_is_checked() -> None:
    """Nothing declared without a position test, nothing in the fact sheet left out."""
    for layout in (PASID_ENTRY, CONTEXT_ENTRY, ROOT_ENTRY, PASID_DIR_ENTRY):
        tested = {n for l, n, _ in SINGLE_FIELD if l is layout}
        assert tested == set(layout.names), layout.name


def test_kernel_helper_values() -> None:
    """Values as the pasid.h helpers write them (A.5.1)."""
    assert PASID_ENTRY.encode(did=0xFFFF) == (0, 0xFFFF, 0, 0, 0, 0, 0, 0)
    assert PASID_ENTRY.encode(pgtt=Pgtt.PT)[0] == 4 << 6
    assert PASID_ENTRY.encode(pgtt=Pgtt.FL_ONLY)[0] == 1 << 6
    assert PASID_ENTRY.encode(flptptr=PASID_ENTRY["flptptr"].max)[2] == 0xFFFF_FFFF_FFFF_F000
    # SVA entry of A.12: PGTT 1, DID 1, FSPTPTR = pgd, PWSNP, AW 2 (4-level), P last.
    sva = PASID_ENTRY.encode(
        p=1, aw=2, pgtt=Pgtt.FL_ONLY, did=FLPT_DEFAULT_DID, pwsnp=1, flptptr=0x12345
    )
    assert sva == (1 | 2 << 2 | 1 << 6, 1 | 1 << 23, 0x12345000, 0, 0, 0, 0, 0)
    # context_entry_set_pasid_table: lo = dir | pdts(2) << 9, RID_PASID 0, PASIDE, P.
    ctx = CONTEXT_ENTRY.encode(p=1, paside=1, pdts=2, pasiddirptr=0x7)
    assert ctx == (0x7000 | 2 << 9 | 8 | 1, 0, 0, 0)


def test_pgtt_enum() -> None:
    assert [int(p) for p in (Pgtt.FL_ONLY, Pgtt.SL_ONLY, Pgtt.NESTED, Pgtt.PT)] == [1, 2, 3, 4]
    assert PASID_ENTRY["pgtt"].enum is Pgtt
    assert "pgtt=PT(4)" in PASID_ENTRY.dump(PASID_ENTRY.encode(p=1, pgtt=4))


def test_constants() -> None:
    assert (FLPT_DEFAULT_DID, IDA_START_DID, IOMMU_NO_PASID) == (1, 2, 0)
    assert (PASID_PDE_SHIFT, PASID_TBL_ENTRIES, PASID_PTE_MASK) == (6, 64, 0x3F)


def _values(layout: Layout) -> st.SearchStrategy[dict[str, int]]:
    return st.fixed_dictionaries({f.name: st.integers(0, f.max) for f in layout.fields})


@pytest.mark.parametrize("layout", [PASID_ENTRY, CONTEXT_ENTRY, ROOT_ENTRY, PASID_DIR_ENTRY])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_decode_encode_roundtrip(layout: Layout, data: st.DataObject) -> None:
    values = data.draw(_values(layout))
    words = layout.encode(**values)
    assert layout.decode(words) == values
    assert layout.undeclared_bits(words) == layout.zero()


def test_out_of_range_and_unknown_field() -> None:
    with pytest.raises(LayoutError, match="did"):
        PASID_ENTRY.encode(did=0x10000)
    with pytest.raises(LayoutError, match="rid_pasid"):
        CONTEXT_ENTRY.encode(rid_pasid=1 << 20)
    with pytest.raises(LayoutError, match="pgtt"):
        PASID_ENTRY.encode(pgtt=8)
    with pytest.raises(LayoutError, match="asid"):
        PASID_ENTRY.encode(asid=1)
    with pytest.raises(LayoutError):
        ROOT_ENTRY.encode(p=1)  # the SM root entry has lp/up, not p


def test_address_arithmetic() -> None:
    assert pci_devid(0x3A, 0x10) == 0x3A10
    assert bdf(0x0008) == "00:01.0" and bdf(0x3A17) == "3a:02.7"
    assert root_entry_addr(0x1000, 3) == 0x1030
    assert context_half(0x7F) == ("lp", "lctp") and context_half(0x80) == ("up", "uctp")
    assert context_entry_offset(0x10) == 0x200  # 256-bit entries
    assert context_entry_offset(0x81) == 0x20  # upper table, devfn - 0x80
    assert pasid_dir_size(2) == 512 and pasid_dir_size(7) == 16384
    assert pasid_dir_entry_addr(0x3000, 0x1C5) == 0x3000 + 7 * 8
    assert pasid_entry_addr_in_table(0x4000, 0x1C5) == 0x4000 + 5 * 64
