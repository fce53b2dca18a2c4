"""SMMUv3 proofs: the symbolic writer is the hwspec writer, and the proofs can fail.

- The z3 writer (proofs/smmu.py) evaluated on concrete entries gives the same path,
  sync count, qword-diff mask and set of intermediate entries as
  `hwspec.smmuv3.write_entry`, on the KUnit-style fixture entries and on random pairs
  of constructor-built entries of every kind.
- An entry kind's z3 constraint admits every entry its constructor builds.
- The expected counterexamples decode to what hw-tables.md C.3 says.
- A writer with wrong beliefs about the used bits is NOT proved hitless.
"""

from __future__ import annotations

import itertools
import random
from typing import Any, Callable

import pytest
import z3

from hwspec.layout import Words
from hwspec.smmuv3 import CD, STE, STE_WRITER, Cfg, S1Dss, is_torn, write_entry
from proofs.base import ProofResult
from proofs.smmu import (
    CD_KINDS,
    CD_SYM,
    STE_KINDS,
    STE_SYM,
    EntryKind,
    SymWriter,
    check_pairs,
    evaluate,
)

RNG_SEED = 7


def _random_entry(kind: EntryKind, rng: random.Random) -> Words:
    params: dict[str, Any] = {n: rng.choice(vals) for n, vals in kind.choices}
    for p, f in kind.ints:
        params[p] = rng.getrandbits(64) if p.endswith("_addr") else rng.getrandbits(
            kind.layout[f].width)
    return kind.make(**params)


def _pairs(kinds: tuple[EntryKind, ...], n: int) -> list[tuple[Words, Words, bool]]:
    """n random pairs per ordered pair of kinds; the first of each is also checked without
    update-safe bits."""
    rng = random.Random(RNG_SEED)
    return [(_random_entry(a, rng), _random_entry(b, rng), i == 0)
            for a, b in itertools.product(kinds, kinds) for i in range(n)]


@pytest.mark.parametrize("w,kinds", [(STE_SYM, STE_KINDS), (CD_SYM, CD_KINDS)],
                         ids=["ste", "cd"])
def test_symbolic_writer_is_the_hwspec_writer(w: SymWriter, kinds: tuple[EntryKind, ...]) -> None:
    for cur, tgt, both in _pairs(kinds, 2):
        for safe in (True, False) if both else (True,):
            want = write_entry(cur, tgt, w.writer, use_update_safe=safe)
            got = evaluate(w, cur, tgt, use_update_safe=safe)
            assert got.path == {"HITLESS": "hitless", "BREAKING": "breaking",
                                "NO_USED_CHANGE": "nodiff"}[want.path.name]
            assert got.syncs == want.syncs
            assert got.states == frozenset(want.observable)


def test_symbolic_writer_on_fixture_transitions() -> None:
    """C.5 rows: same verdicts as the concrete writer (which tests/hwspec checks against KUnit)."""
    from hwspec.smmuv3 import (make_abort_ste, make_bypass_ste, make_cdtable_ste,
                               make_nested_ste, make_s2_ste, make_vtcr)

    vtcr = make_vtcr(tsz=4, sl=3, irgn=2, orgn=1, sh=3, tg=2, ps=1)
    ssid0 = make_cdtable_ste(0xF0F0F0F0F0F0, 31, S1Dss.SSID0, True, stall_feature=True)
    byp = make_cdtable_ste(0xF0F0F0F0F0F0, 31, S1Dss.BYPASS, True, stall_feature=True)
    s2 = make_s2_ste(0, 0xDAEDBEEFDEADBEEF, vtcr, ats=False)
    nested = make_nested_ste(0xF0F0F0F0F0F0, 31, S1Dss.BYPASS, True, 0, 0xDAEDBEEFDEADBEEF, vtcr,
                             stall_feature=True)
    for cur, tgt, path, syncs in (
        (make_bypass_ste(), make_abort_ste(), "hitless", 2),
        (ssid0, make_bypass_ste(), "hitless", 3),
        (ssid0, byp, "hitless", 1),
        (nested, s2, "hitless", 3),
    ):
        got = evaluate(STE_SYM, cur, tgt)
        assert (got.path, got.syncs) == (path, syncs)
    got = evaluate(STE_SYM, nested, s2, use_update_safe=False)
    assert (got.path, got.syncs) == ("breaking", 3)


@pytest.mark.parametrize("kind", STE_KINDS + CD_KINDS, ids=lambda k: k.name)
def test_kind_constraint_admits_constructor_output(kind: EntryKind) -> None:
    rng = random.Random(RNG_SEED)
    x = kind.layout.z3_words("x")
    c = kind.constraint(x)
    for _ in range(10):
        words = _random_entry(kind, rng)
        sub = [(v, z3.BitVecVal(w, 64)) for v, w in zip(x, words)]
        assert z3.is_true(z3.simplify(z3.substitute(c, *sub))), kind.layout.dump(words)


def test_nested_to_s2_counterexample(result: Callable[[str], ProofResult]) -> None:
    w = result("smmu-nested-to-s2-without-update-safe").witness
    assert w["cur_cfg"] == Cfg.NESTED and w["tgt_cfg"] == Cfg.S2_TRANS
    assert STE.get(w["current"], "cfg") == Cfg.NESTED
    assert STE.get(w["target"], "cfg") == Cfg.S2_TRANS
    assert w["path"] == "BREAKING" and w["diff_qwords"] == (0, 1)
    # with today's update-safe bits the very same pair is hitless
    assert write_entry(w["current"], w["target"]).path.name == "HITLESS"


def test_cd_replace_counterexample(result: Callable[[str], ProofResult]) -> None:
    w = result("smmu-cd-s1-replace-hitless").witness
    assert w["path"] == "BREAKING"
    assert CD.get(w["current"], "asid") != CD.get(w["target"], "asid")
    assert CD.get(w["current"], "ttb0") != CD.get(w["target"], "ttb0")


def test_pairs_detail_lists_kunit_sync_counts(result: Callable[[str], ProofResult]) -> None:
    details = "\n".join(result("smmu-ste-hitless").details)
    assert "nested -> s2: hitless syncs [3]" in details  # C.5 nested -> S2: 3 syncs
    assert "abort -> bypass: hitless syncs [1, 2]" in details  # 2 with ATTR_TYPES_OVR


def _s2ttb_also_safe(cur: tuple[z3.BitVecRef, ...], tgt: tuple[z3.BitVecRef, ...]
                     ) -> tuple[z3.BitVecRef, ...]:
    return tuple(x | m for x, m in zip(STE_SYM.safe(cur, tgt), STE.mask("s2ttb")))


def test_wrong_safe_bits_are_not_proved() -> None:
    """A writer that wrongly treats S2TTB as update-safe changes it before the critical
    store: between S2 STEs with another VMID and root, hardware sees a torn STE."""
    wrong = SymWriter(STE_SYM.writer, STE_SYM.used, _s2ttb_also_safe)
    kinds = tuple(k for k in STE_KINDS if k.name == "s2")
    out = check_pairs(wrong, kinds, reader=STE_SYM)
    assert out.status == "counterexample", out.details
    cur, tgt = out.witness["current"], out.witness["target"]
    assert STE.get(cur, "cfg") == STE.get(tgt, "cfg") == Cfg.S2_TRANS
    assert STE.get(cur, "s2ttb") != STE.get(tgt, "s2ttb")
    seen = evaluate(wrong, cur, tgt).states
    assert any(is_torn(STE_WRITER, e, cur, tgt) and e[0] for e in seen)
