"""The validation layer's declarations stay in step with the model (issue #14).

The knobs a design file may name are the ones the model reads; the bounds limits the
README quotes are model/bounds.py's LIMITS; every bound rule refuses in one line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from model.bounds import FLAGS, LIMITS, Bounds, BoundsError
from model.design import KNOBS
from model.designs import DESIGNS

ROOT = Path(__file__).resolve().parents[2]


def test_knobs_are_exactly_the_ones_the_model_reads() -> None:
    read: set[str] = set()
    for d in ("model", "invariants", "hwspec"):
        for f in (ROOT / d).rglob("*.py"):
            read |= set(re.findall(r'\.has\("([a-z0-9_.]+)"\)', f.read_text()))
    assert read == set(KNOBS), (sorted(read - set(KNOBS)), sorted(set(KNOBS) - read))
    used = {k for d in DESIGNS.values() for k in d.knobs}
    assert used <= set(KNOBS)


def test_readme_bounds_table_is_the_limits_table() -> None:
    text = (ROOT / "README.md").read_text()
    default = Bounds()
    for name in Bounds.__dataclass_fields__:
        if name in FLAGS:
            row = f"| `{name}` | {int(getattr(default, name))} | 0 or 1 |"
        else:
            lo, hi, why = LIMITS[name]
            row = f"| `{name}` | {getattr(default, name)} | {lo}..{hi:,} | {why} |"
        assert row in text, row


@pytest.mark.parametrize("text,message", [
    ("shared_group=2", "bound shared_group=2 is a flag: 0 or 1"),
    ("shared_group=-2", "bound shared_group=-2 is a flag: 0 or 1"),
    ("iova_pages=100000", "bound iova_pages=100000: 1..64"),
    ("max_pasids=100000000", "bound max_pasids=100000000: 2..64"),
    ("devices=1,ats_devices=2", "bound ats_devices=2: at most devices=1"),
    ("devices=1,devices=2", "bound devices is given twice"),
    ("devices=5", "bounds give 5 groups but ndoms=6 has 4 DIDs"),
    ("devices=5,ndoms=7,asid_bits=2", "bounds give 5 groups but asid_bits=2 has 3 ASIDs"),
])
def test_bounds_rules(text: str, message: str) -> None:
    with pytest.raises(BoundsError) as e:
        Bounds.parse(text)
    assert str(e.value).startswith(message)


def test_bounds_at_the_limits_are_accepted() -> None:
    """The limits are ranges a check can run, not off by one: the edge values parse."""
    assert Bounds.parse("devices=4").groups() == 4  # 4 DIDs (2..5) for 4 default domains
    assert Bounds.parse("max_pasids=64,iova_pages=64,phys_pages=64,processes=8,paging_domains=8")
    assert Bounds.parse("devices=16,ndoms=18,asid_bits=5").groups() == 16
    # the traces' form: every field present, booleans as JSON true/false
    assert Bounds.from_json({"devices": 1, "ats_devices": 2, "shared_group": True}).devices == 1
    with pytest.raises(BoundsError, match="bound devices=True must be an integer"):
        Bounds.from_json({"devices": True})
