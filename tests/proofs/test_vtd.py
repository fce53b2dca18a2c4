"""VT-d proofs: symbolic coverage is the hwspec coverage, and wrong sequences are caught.

- `covers_*` over z3 terms agree with each descriptor's `covers()` (hwspec/vtd/qi.py)
  on random entries and descriptors of every kind and granularity.
- The lifted teardown is what the driver issues, as a function of (DID, PASID, SID).
- Dropping the P_IOTLB descriptor, or issuing the PASID-cache invalidation last, gives
  a counterexample (the proof can fail); the design variants' counterexamples name
  the cache they leave dirty.
- The DID-sharing counterexample has two entries with equal DID and PASID and
  different roots, and replays on the model as a did-pasid-tag-unique violation.
"""

from __future__ import annotations

import random
from typing import Any, Callable

import pytest
import z3

from hwspec.vtd import (
    DevTlbEntry,
    EiotlbGran,
    IotlbEntry,
    IotlbGran,
    PasidCacheEntry,
    PcGran,
    Pgtt,
    QiDeiotlb,
    QiDesc,
    QiEiotlb,
    QiIotlb,
    QiPc,
    qi_desc_dev_iotlb,
    qi_desc_dev_iotlb_pasid,
)
from model.designs import get_design
from proofs.base import ProofResult
from proofs.vtd import (
    DevTag,
    PcTag,
    Scenario,
    SymDesc,
    TlbTag,
    check_teardown,
    covers_dev,
    covers_iotlb,
    covers_pc,
    drop_piotlb,
    lift,
    teardown_template,
)


def _holds(e: z3.BoolRef) -> bool:
    r = z3.simplify(e)
    assert z3.is_bool(r) and (z3.is_true(r) or z3.is_false(r)), r
    return bool(z3.is_true(r))


def _bv(v: int, w: int) -> z3.BitVecRef:
    return z3.BitVecVal(v, w)


def _random_desc(rng: random.Random, small: Callable[[], int]) -> QiDesc:
    kind = rng.randrange(6)
    if kind == 0:
        return QiPc(gran=rng.choice(list(PcGran)), did=small(), pasid=small())
    if kind == 1:
        return QiIotlb(gran=rng.choice(list(IotlbGran)), did=small(), addr=rng.randrange(16),
                       am=rng.randrange(4))
    if kind == 2:
        return QiEiotlb(gran=rng.choice(list(EiotlbGran)), did=small(), pasid=small(),
                        addr=rng.randrange(16), am=rng.randrange(4))
    if kind == 3:
        return qi_desc_dev_iotlb(small(), 0, 0, rng.randrange(16) << 12, rng.choice([0, 1, 2, 52]))
    if kind == 4:
        return qi_desc_dev_iotlb_pasid(small(), 0, pasid=small(), qdep=0,
                                       addr=rng.randrange(16) << 12,
                                       size_order=rng.choice([0, 1, 2, 52]))
    return QiDeiotlb(sid=small(), pasid=small(), addr=rng.randrange(16), s=0)


def test_symbolic_coverage_is_hwspec_coverage() -> None:
    rng = random.Random(3)

    def small() -> int:
        return rng.randrange(3)

    for _ in range(400):
        d = _random_desc(rng, small)
        sd = SymDesc(d)
        pce = PasidCacheEntry(small(), small(), small(), (0,) * 8)
        pas = rng.choice([None, small()])
        tlb = IotlbEntry(small(), pas, rng.randrange(16), 0)
        dev = DevTlbEntry(small(), pas, rng.randrange(16), 0)
        has = z3.BoolVal(pas is not None)
        p = _bv(pas or 0, 20)
        assert _holds(covers_pc(sd, PcTag(_bv(pce.sid, 16), _bv(pce.did, 16), _bv(pce.pasid, 20)))
                      ) == d.covers(pce), d
        assert _holds(covers_iotlb(sd, TlbTag(_bv(tlb.did, 16), has, p, _bv(tlb.iova_pfn, 52)))
                      ) == d.covers(tlb), (d, tlb)
        assert _holds(covers_dev(sd, DevTag(_bv(dev.sid, 16), has, p, _bv(dev.iova_pfn, 52)))
                      ) == d.covers(dev), (d, dev)


def test_lifted_teardown_is_the_drivers() -> None:
    t = teardown_template(get_design("upstream"), Scenario(Pgtt.FL_ONLY, rid=False, ats=True))
    kinds = [type(d.desc) for d in t.descs if not type(d.desc).__name__ == "QiIwd"]
    assert kinds == [QiPc, QiEiotlb, QiDeiotlb]
    pc, piotlb, devtlb = [d for d in t.descs if type(d.desc) in (QiPc, QiEiotlb, QiDeiotlb)]
    assert set(pc.symbols) == {"did", "pasid"} and set(piotlb.symbols) == {"did", "pasid"}
    assert set(devtlb.symbols) == {"sid", "pasid"}
    # a lifted field is the run's value, substituted back
    d = QiPc(gran=PcGran.PASID_SEL, did=9, pasid=3)
    assert set(lift(d, {"did": 9, "pasid": 4}, {"did": z3.BitVec("D", 16),
                                               "pasid": z3.BitVec("P", 20)}).symbols) == {"did"}


def test_dropping_piotlb_is_caught() -> None:
    scen = [Scenario(Pgtt.FL_ONLY, rid=False, ats=True)]
    assert check_teardown("upstream", scenarios=scen).status == "proved"
    out = check_teardown("upstream", drop_piotlb, scen)
    assert out.status == "counterexample"
    w: dict[str, Any] = dict(out.witness)
    assert w["cache"] == "iotlb"
    e = w["entry"]
    assert isinstance(e, IotlbEntry) and e.did == w["did"] and e.pasid == w["pasid"]


def test_pasid_cache_last_refills(result: Callable[[str], ProofResult]) -> None:
    w = result("vtd-teardown-pasid-cache-last").witness
    assert w["cache"] in ("iotlb", "devtlb") and w["stage"] >= 1  # refilled mid-sequence


@pytest.mark.parametrize("name,cache", [
    ("vtd-teardown-variant-did-after-clear", None),
    ("vtd-teardown-variant-no-pasid-cache-flush", "pasid"),
    ("vtd-teardown-variant-no-devtlb-flush", "devtlb"),
])
def test_variant_counterexamples(name: str, cache: str | None,
                                 result: Callable[[str], ProofResult]) -> None:
    r = result(name)
    w = r.witness
    if cache == "pasid":
        # the stale PASID-cache entry itself, or an IOTLB / ATC entry refilled through it:
        # which one z3 returns depends on what the session asked z3 before
        assert w["cache"] == "pasid" or "through a stale PASID-cache entry" in r.details[-1], r.details
    elif cache is not None:
        assert w["cache"] == cache
    else:  # every flush went to DID 0: the stale entry is tagged with the real, non-zero DID
        assert w["did"] != 0 and w["entry"].did == w["did"]


def test_did_sharing_counterexample(result: Callable[[str], ProofResult]) -> None:
    w = result("vtd-did-sharing-colliding-pasids").witness
    (did_a, pasid_a, root_a), (did_b, pasid_b, root_b) = w["entries"]
    assert did_a == did_b and pasid_a == pasid_b and root_a != root_b
    assert w["violation"] == "did-pasid-tag-unique"
    assert [c[0] for c in w["calls"]].count("iommu_attach_device") == 2
