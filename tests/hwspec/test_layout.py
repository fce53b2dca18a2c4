"""The layout engine itself: one declaration gives encode, decode, masks, dump and z3."""

import pytest
from hypothesis import given, settings, strategies as st

from hwspec.layout import Field, Layout, LayoutError, fields

T = Layout(
    "T",
    2,
    fields(("p", 0, 0, 0), ("kind", 0, 6, 8), ("ptr", 0, 12, 63), ("did", 1, 0, 15)),
)


def test_encode_places_each_field_at_its_bits() -> None:
    assert T.encode(p=1) == (1, 0)
    assert T.encode(kind=7) == (7 << 6, 0)
    assert T.encode(ptr=(1 << 52) - 1) == (0xFFFF_FFFF_FFFF_F000, 0)
    assert T.encode(did=0xFFFF) == (0, 0xFFFF)


@settings(max_examples=200, deadline=None)
@given(p=st.integers(0, 1), kind=st.integers(0, 7), ptr=st.integers(0, (1 << 52) - 1),
       did=st.integers(0, 0xFFFF))
def test_decode_inverts_encode(p: int, kind: int, ptr: int, did: int) -> None:
    values = dict(p=p, kind=kind, ptr=ptr, did=did)
    assert T.decode(T.encode(**values)) == values


def test_errors_name_the_culprit() -> None:
    with pytest.raises(LayoutError, match=r"T\.did = 0x10000 does not fit 16 bit"):
        T.encode(did=0x10000)
    with pytest.raises(LayoutError, match="T has no field 'dd'"):
        T.encode(dd=1)
    with pytest.raises(LayoutError, match="2 x 64-bit words, got 3"):
        T.decode((0, 0, 0))
    with pytest.raises(LayoutError, match="overlaps 'a'"):
        Layout("Bad", 1, fields(("a", 0, 0, 3), ("b", 0, 3, 5)))
    with pytest.raises(LayoutError, match="word 2, but the layout has 1 words"):
        Layout("Bad", 1, (Field("a", 2, 0, 0),))


def test_masks_and_undeclared_bits() -> None:
    assert T.mask("p", "did") == (1, 0xFFFF)
    assert T.undeclared_bits((0b10, 1 << 20)) == (0b10, 1 << 20)


def test_dump_shows_nonzero_fields() -> None:
    assert T.dump(T.encode(p=1, did=2)) == (
        "T [q0=0x0000000000000001 q1=0x0000000000000002] p=1 did=2"
    )


def test_z3_view_agrees_with_encoder() -> None:
    import z3

    w = T.z3_words("t")
    s = z3.Solver()
    concrete = T.encode(p=1, kind=5, ptr=0x1234, did=77)
    s.add(*(a == b for a, b in zip(w, T.z3_const(concrete))))
    assert s.check() == z3.sat
    m = s.model()
    assert m.eval(T.z3_get(w, "kind")).as_long() == 5
    assert m.eval(T.z3_get(w, "did")).as_long() == 77
    assert T.from_model(m, w) == concrete
