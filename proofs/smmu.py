"""SMMUv3 hitless entry update, proved for every field value (hw-tables.md PART C).

The concrete writer (`hwspec.smmuv3.writer`) is re-expressed over z3 bit-vectors,
built from the same functions rather than re-typed masks:

- used bits (C.1): `ste_used_for(v, cfg, s1dss)` / `cd_used_for(v, epd0)` evaluated
  for EVERY value of the decoded fields, turned into per-qword If-chains
  (`table`), so the masks are the hwspec masks by construction;
- update-safe bits (C.1): `ste_update_safe_for(s1chk, s2s)` the same way, with its
  two inputs computed as `get_ste_update_safe` computes them;
- `entry_qword_diff` (C.2) and the three paths of `arm_smmu_write_entry` (C.3),
  including every value the entry takes after each 64-bit store.

An entry *kind* is a driver constructor (`make_*_ste`, `make_*_cd`) with its
discrete parameters enumerated (each combination is called, so the fixed bits
are exactly what the constructor writes) and its integer parameters (addresses,
VMID, ASID, VTCR, MAIR...) left free within the field they fill.

Assumption of every proof here: the SMMU reads an STE/CD with 64-bit single-copy
atomicity (it may read between any two 64-bit stores, never a torn qword).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Sequence

import z3

from hwspec.layout import WORD_BITS, WORD_MASK, Layout, Words
from hwspec.smmuv3 import (
    CD,
    CD_WRITER,
    CD_ZERO,
    STE,
    STE_WRITER,
    EntryWriter,
    S1Dss,
    S1Fmt,
    cd_used_for,
    is_torn,
    make_abort_ste,
    make_bypass_ste,
    make_cdtable_ste,
    make_nested_ste,
    make_s1_cd,
    make_s2_ste,
    make_sva_cd,
    ste_update_safe_for,
    ste_used_for,
    write_entry,
)
from hwspec.smmuv3.writer import NUM_ENTRY_QWORDS, STE_EATS_S1CHK, STE_S2S

from proofs.base import Outcome, Proof, as_int, solver, unknown

Q = NUM_ENTRY_QWORDS
SymWords = tuple[z3.BitVecRef, ...]

ATOMICITY = ("the SMMU reads an STE/CD with 64-bit single-copy atomicity: it may read the "
             "entry between any two 64-bit stores, never a torn qword (hw-tables.md PART D)")
KINDS_ASSUMPTION = ("entries are the ones the driver constructors build (hwspec.smmuv3 make_*): "
                    "discrete constructor options enumerated, integer parameters (addresses, "
                    "VMID, ASID, VTCR, TCR fields, MAIR) free within their fields")
READS_ASSUMPTION = ("hardware behaviour is determined by the bits the entry's own configuration "
                    "uses (C.1), update-safe bits excluded (C.4 harness semantics)")


# -- entry kinds ------------------------------------------------------------------------
@dataclass(frozen=True)
class EntryKind:
    """The set of entries one driver constructor can build.

    `choices`: discrete parameters, every combination is built; `ints`: integer
    parameters and the field each fills (free within the field's width); `fixed`:
    parameters this kind pins (e.g. S1DSS for the cdtable kinds).
    """

    name: str
    layout: Layout
    build: Callable[..., Words] = field(repr=False)
    choices: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    ints: tuple[tuple[str, str], ...] = ()
    fixed: tuple[tuple[str, Any], ...] = ()

    def make(self, **params: Any) -> Words:
        return self.build(**dict(self.fixed), **params)

    @cached_property
    def skeletons(self) -> tuple[Words, ...]:
        """The constructor's output for every discrete combination, integer parameters 0."""
        names = [n for n, _ in self.choices]
        out: list[Words] = []
        for combo in itertools.product(*(vals for _, vals in self.choices)):
            w = self.make(**dict(zip(names, combo)), **{p: 0 for p, _ in self.ints})
            if w not in out:
                out.append(w)
        return tuple(out)

    @property
    def free_fields(self) -> tuple[str, ...]:
        return tuple(f for _, f in self.ints)

    @cached_property
    def free_mask(self) -> Words:
        return self.layout.mask(*self.free_fields) if self.ints else self.layout.zero()

    def constraint(self, words: SymWords) -> z3.BoolRef:
        """`words` is an entry of this kind: the fixed bits of one skeleton, anything in the free fields."""
        fixed = [~m & WORD_MASK for m in self.free_mask]
        return z3.Or(*[
            z3.And(*[(words[i] & fixed[i]) == (sk[i] & fixed[i]) for i in range(Q)])
            for sk in self.skeletons
        ])


_B = (False, True)
_S1_OPTS = (("ats", _B), ("s1fmt", tuple(S1Fmt)), ("stall_feature", _B),
            ("stall_enabled", _B))


def _cdtable(s1dss: S1Dss) -> EntryKind:
    return EntryKind(
        f"cdtable-{s1dss.name.lower()}", STE, make_cdtable_ste,
        choices=_S1_OPTS + (("e2h", _B), ("attr_types_ovr", _B)),
        ints=(("cdtab_addr", "s1ctxptr"), ("s1cdmax", "s1cdmax")),
        fixed=(("s1dss", s1dss),),
    )


STE_KINDS: tuple[EntryKind, ...] = (
    EntryKind("abort", STE, make_abort_ste),
    EntryKind("bypass", STE, make_bypass_ste, choices=(("attr_types_ovr", _B),)),
    _cdtable(S1Dss.TERMINATE),
    _cdtable(S1Dss.BYPASS),
    _cdtable(S1Dss.SSID0),
    EntryKind("s2", STE, make_s2_ste,
              choices=(("ats", _B), ("s2fwb", _B), ("stall", _B), ("attr_types_ovr", _B),
                       ("big_endian", _B)),
              ints=(("vmid", "s2vmid"), ("s2ttb_addr", "s2ttb"), ("vtcr", "vtcr"))),
    EntryKind("nested", STE, make_nested_ste,
              choices=(("s1dss", tuple(S1Dss)),) + _S1_OPTS + (("attr_types_ovr", _B),),
              ints=(("cdtab_addr", "s1ctxptr"), ("s1cdmax", "s1cdmax"), ("vmid", "s2vmid"),
                    ("s2ttb_addr", "s2ttb"), ("vtcr", "vtcr"))),
)

_CD_OPTS = (("stall", _B), ("stall_force", _B), ("big_endian", _B))
CD_KINDS: tuple[EntryKind, ...] = (
    EntryKind("s1", CD, make_s1_cd,
              choices=(("stall", _B), ("hd_ha", _B), ("big_endian", _B)),
              ints=(("asid", "asid"), ("ttb0_addr", "ttb0"), ("t0sz", "t0sz"), ("tg0", "tg0"),
                    ("irgn0", "irgn0"), ("orgn0", "orgn0"), ("sh0", "sh0"), ("ips", "ips"),
                    ("mair", "mair0"))),
    EntryKind("sva", CD, make_sva_cd, choices=_CD_OPTS,
              ints=(("asid", "asid"), ("ttb0_addr", "ttb0"), ("ips", "ips"), ("t0sz", "t0sz"),
                    ("tg0", "tg0"), ("mair", "mair0"))),
    EntryKind("sva-released", CD, make_sva_cd, choices=_CD_OPTS,
              ints=(("asid", "asid"), ("ips", "ips"), ("mair", "mair0")),
              fixed=(("ttb0_addr", None),)),
    EntryKind("zero", CD, lambda: CD_ZERO),
)

KINDS_BY_NAME: dict[tuple[str, str], EntryKind] = {
    (k.layout.name, k.name): k for k in STE_KINDS + CD_KINDS
}


# -- the writer over z3 terms (C.1-C.3) ---------------------------------------------------
class _Table:
    """A function of a few small fields as a z3 decision tree over placeholder keys.

    Built once per function (each leaf IS the function's value for that case) and
    instantiated with `z3.substitute`, which is cheap, for every entry it is applied to.
    """

    def __init__(self, widths: tuple[int, ...], fn: Callable[..., Words]) -> None:
        self.keys = tuple(z3.BitVec(f"_key{j}", w) for j, w in enumerate(widths))
        values = {c: fn(*c) for c in itertools.product(*(range(1 << w) for w in widths))}
        self.exprs = tuple(self._tree(widths, values, i, ()) for i in range(Q))

    def _tree(self, widths: tuple[int, ...], values: dict[tuple[int, ...], Words], i: int,
              prefix: tuple[int, ...]) -> z3.BitVecRef:
        j = len(prefix)
        leaves = {v[i] for c, v in values.items() if c[:j] == prefix}
        if len(leaves) == 1:  # every case below this node gives the same mask
            return z3.BitVecVal(leaves.pop(), WORD_BITS)
        subs = [self._tree(widths, values, i, prefix + (x,)) for x in range(1 << widths[j])]
        expr = subs[-1]
        for x in range(len(subs) - 2, -1, -1):
            if not subs[x].eq(expr):
                expr = z3.If(self.keys[j] == x, subs[x], expr)
        return expr

    def __call__(self, *keys: z3.BitVecRef) -> SymWords:
        pairs = list(zip(self.keys, keys))
        return tuple(z3.substitute(e, *pairs) if not z3.is_bv_value(e) else e for e in self.exprs)


_TABLES: dict[tuple[Callable[..., Words], tuple[int, ...]], _Table] = {}


def table(keys: Sequence[tuple[z3.BitVecRef, int]], fn: Callable[..., Words]) -> SymWords:
    """`fn` of a few small fields as per-qword z3 terms covering every value of those fields.

    This is how C.1's case analysis becomes a term without re-typing a mask: each
    leaf of the decision tree IS `fn(...)` for that case.
    """
    widths = tuple(w for _, w in keys)
    t = _TABLES.get((fn, widths))
    if t is None:
        t = _TABLES[(fn, widths)] = _Table(widths, fn)
    return t(*(k for k, _ in keys))


def _bit(cond: z3.BoolRef) -> z3.BitVecRef:
    return z3.If(cond, z3.BitVecVal(1, 1), z3.BitVecVal(0, 1))


def _ste_used(w: SymWords) -> SymWords:
    return table([(STE.z3_get(w, "v"), 1), (STE.z3_get(w, "cfg"), 3),
                  (STE.z3_get(w, "s1dss"), 2)], ste_used_for)


def _ste_safe(cur: SymWords, tgt: SymWords) -> SymWords:
    """`get_ste_update_safe`: EATS=S1CHK in either entry, S2S in either entry -> the safe mask."""
    s1chk = ((cur[1] | tgt[1]) & STE_EATS_S1CHK[1]) != 0
    s2s = ((cur[2] | tgt[2]) & STE_S2S[2]) != 0
    return table([(_bit(s1chk), 1), (_bit(s2s), 1)], _safe_of_bits)


def _safe_of_bits(s1chk: int, s2s: int) -> Words:
    return ste_update_safe_for(bool(s1chk), bool(s2s))


def _cd_used(w: SymWords) -> SymWords:
    return table([(CD.z3_get(w, "v"), 1), (CD.z3_get(w, "epd0"), 1)], cd_used_for)


def _no_safe(cur: SymWords, tgt: SymWords) -> SymWords:
    return tuple(z3.BitVecVal(0, WORD_BITS) for _ in range(Q))


@dataclass(frozen=True)
class SymWriter:
    """An `EntryWriter` over z3 terms: the concrete writer it mirrors, its used and safe functions."""

    writer: EntryWriter
    used: Callable[[SymWords], SymWords]
    safe: Callable[[SymWords, SymWords], SymWords]

    @property
    def layout(self) -> Layout:
        return self.writer.layout


STE_SYM = SymWriter(STE_WRITER, _ste_used, _ste_safe)
CD_SYM = SymWriter(CD_WRITER, _cd_used, _no_safe)


def qword_diff(w: SymWriter, entry: SymWords, target: SymWords,
               use_update_safe: bool = True) -> tuple[tuple[z3.BoolRef, ...], SymWords]:
    """`arm_smmu_entry_qword_diff` (C.2): per-qword "used bits must change", and unused_update."""
    cu, tu = w.used(entry), w.used(target)
    safe = w.safe(entry, target) if use_update_safe else _no_safe(entry, target)
    diff, uu = [], []
    for i in range(Q):
        safe_i = safe[i] & cu[i] & tu[i]
        cur_i = cu[i] & ~safe_i
        u = (entry[i] & cur_i) | (target[i] & ~cur_i)
        uu.append(u)
        diff.append((u & tu[i]) != target[i])
    return tuple(diff), tuple(uu)


@dataclass(frozen=True)
class SymPath:
    """One branch of `arm_smmu_write_entry`: every value the SMMU may read, and the sync count."""

    states: tuple[SymWords, ...]  # the starting entry, then the entry after each 64-bit store
    syncs: z3.BitVecRef  # 4-bit count (pure bit-vector, so the QF_BV solver applies)


@dataclass(frozen=True)
class SymWrite:
    diff: tuple[z3.BoolRef, ...]
    hitless: z3.BoolRef  # exactly one qword of used bits differs
    breaking: z3.BoolRef  # two or more
    nodiff: z3.BoolRef  # none
    paths: dict[str, SymPath]

    @property
    def path_index(self) -> z3.BitVecRef:
        return z3.If(self.hitless, _n(0), z3.If(self.breaking, _n(1), _n(2)))

    @property
    def syncs(self) -> z3.BitVecRef:
        p = self.paths
        return z3.If(self.hitless, p["hitless"].syncs,
                     z3.If(self.breaking, p["breaking"].syncs, p["nodiff"].syncs))


PATH_NAMES = ("hitless", "breaking", "nodiff")


def _n(value: int) -> z3.BitVecRef:
    return z3.BitVecVal(value, 4)


def _count(conds: Sequence[z3.BoolRef]) -> z3.BitVecRef:
    """How many of conds hold, as a 4-bit vector."""
    total = _n(0)
    for c in conds:
        total = total + z3.If(c, _n(1), _n(0))
    return total


class _Entry:
    """The entry as the writer mutates it: `entry_set` stores, one sync per call that changed."""

    def __init__(self, start: SymWords) -> None:
        self.words = list(start)
        self.states: list[SymWords] = [tuple(start)]
        self.syncs: list[z3.BoolRef] = []

    def entry_set(self, values: Sequence[z3.BitVecRef], start: int, length: int) -> None:
        changed = []
        for i in range(start, start + length):
            changed.append(self.words[i] != values[i])
            self.words[i] = values[i]  # storing an equal value is invisible: same state twice
            self.states.append(tuple(self.words))
        self.syncs.append(z3.Or(*changed))

    def critical_store(self, values: Sequence[z3.BitVecRef]) -> None:
        """entry_set(target, critical, 1): one 64-bit store; `values` differ from the entry
        only in the critical qword, so this is one state and one sync."""
        self.syncs.append(z3.Or(*[self.words[i] != values[i] for i in range(Q)]))
        self.words = list(values)
        self.states.append(tuple(self.words))

    def path(self) -> SymPath:
        return SymPath(tuple(self.states), _count(self.syncs))


def write(w: SymWriter, cur: SymWords, tgt: SymWords, use_update_safe: bool = True) -> SymWrite:
    """`arm_smmu_write_entry` (C.3), all three branches, as z3 terms over cur and tgt."""
    diff, uu = qword_diff(w, cur, tgt, use_update_safe)
    pop = _count(diff)
    # Hitless: only the critical qword (the one diff bit) keeps its old value in phase 1.
    h = _Entry(cur)
    h.entry_set([z3.If(diff[i], cur[i], uu[i]) for i in range(Q)], 0, Q)
    h.critical_store([z3.If(diff[i], tgt[i], h.words[i]) for i in range(Q)])
    h.entry_set(tgt, 0, Q)
    # Breaking: q0 = 0 (V=0), q1..q7, then q0.
    b = _Entry(cur)
    b.entry_set([z3.BitVecVal(0, WORD_BITS)] + list(uu[1:]), 0, 1)
    b.entry_set(tgt, 1, Q - 1)
    b.entry_set(tgt, 0, 1)
    n = _Entry(cur)
    n.entry_set(tgt, 0, Q)
    return SymWrite(
        diff=diff,
        hitless=pop == 1,
        breaking=z3.UGE(pop, 2),
        nodiff=z3.Not(z3.Or(*diff)),
        paths={"hitless": h.path(), "breaking": b.path(), "nodiff": n.path()},
    )


def differs_in_used_bits(w: SymWriter, entry: SymWords, ref: SymWords) -> z3.BoolRef:
    """The C.4 harness test: does `entry` differ from `ref` on its used bits minus the safe bits?"""
    used = w.used(entry)
    safe = w.safe(entry, ref)
    return z3.Or(*[((entry[i] ^ ref[i]) & used[i] & ~safe[i]) != 0 for i in range(Q)])


def well_formed(w: SymWriter, target: SymWords) -> z3.BoolRef:
    """C.2 step 3: the target sets no bit its own configuration does not use."""
    used = w.used(target)
    return z3.And(*[(target[i] & ~used[i]) == 0 for i in range(Q)])


SYNC_BOUNDS = {"hitless": (1, 3), "breaking": (2, 3), "nodiff": (0, 1)}


def writer_claim(w: SymWriter, cur: SymWords, tgt: SymWords,
                 reader: SymWriter | None = None) -> tuple[z3.BoolRef, SymWrite]:
    """The hitless property of PART D for one (cur, tgt) pair, all three paths.

    `w` is what the writer believes (its used/safe functions drive C.2/C.3); `reader` is
    what the hardware reads (default: the same). The tests give a writer wrong beliefs
    to show the claim can fail."""
    hw = reader or w
    wr = write(w, cur, tgt)
    conds = []
    for name, taken in (("hitless", wr.hitless), ("breaking", wr.breaking), ("nodiff", wr.nodiff)):
        p = wr.paths[name]
        ok = []
        for e in p.states:
            seen = z3.Or(z3.Not(differs_in_used_bits(hw, e, cur)),
                         z3.Not(differs_in_used_bits(hw, e, tgt)))
            ok.append(z3.Or(seen, e[0] == 0) if name == "breaking" else seen)
        lo, hi = SYNC_BOUNDS[name]
        final = z3.And(*[p.states[-1][i] == tgt[i] for i in range(Q)])
        conds.append(z3.Implies(taken, z3.And(*ok, z3.UGE(p.syncs, lo), z3.ULE(p.syncs, hi),
                                              final)))
    return z3.And(*conds), wr


@dataclass(frozen=True)
class Evaluated:
    """The symbolic writer evaluated on concrete entries (for checking it against hwspec)."""

    path: str
    syncs: int
    diff: int  # bitmask of qwords, as entry_qword_diff returns
    states: frozenset[Words]


_EVAL_CACHE: dict[tuple[int, bool], tuple[SymWords, SymWords, SymWrite]] = {}


def evaluate(w: SymWriter, cur: Words, tgt: Words, use_update_safe: bool = True) -> Evaluated:
    key = (id(w), use_update_safe)
    if key not in _EVAL_CACHE:
        c, t = w.layout.z3_words("ecur"), w.layout.z3_words("etgt")
        _EVAL_CACHE[key] = (c, t, write(w, c, t, use_update_safe))
    c, t, wr = _EVAL_CACHE[key]
    sub = [(x, z3.BitVecVal(v, WORD_BITS)) for x, v in zip(c + t, tuple(cur) + tuple(tgt))]

    def values(exprs: Sequence[z3.BitVecRef]) -> list[int]:
        """Evaluate many terms at once: one Concat, one substitute, one simplify (shared DAG)."""
        whole = z3.simplify(z3.substitute(z3.Concat(*exprs) if len(exprs) > 1 else exprs[0], *sub))
        bits = int(whole.as_long())
        out = []
        for e in reversed(exprs):
            out.append(bits & ((1 << e.size()) - 1))
            bits >>= e.size()
        return out[::-1]

    head = values([wr.path_index, *[_bit(d) for d in wr.diff]])
    path = PATH_NAMES[head[0]]
    p = wr.paths[path]
    flat = values([p.syncs, *[x for st in p.states for x in st]])
    states = frozenset(tuple(flat[1 + i * Q:1 + (i + 1) * Q]) for i in range(len(p.states)))
    return Evaluated(path, flat[0], sum(b << i for i, b in enumerate(head[1:])), states)


# -- decoding --------------------------------------------------------------------------
def _describe(w: SymWriter, cur: Words, tgt: Words, use_update_safe: bool = True) -> list[str]:
    lay = w.layout
    r = write_entry(cur, tgt, w.writer, use_update_safe=use_update_safe)
    out = [f"current: {lay.dump(cur)}", f"target:  {lay.dump(tgt)}",
           f"concrete writer: {r.path.name} path, {r.syncs} sync(s): "
           + ", ".join(str(s) for s in r.steps)]
    torn = [e for e in r.observable if is_torn(w.writer, e, cur, tgt)]
    for e in torn[:1]:
        what = "invalid entry (V=0)" if e[0] == 0 else "TORN entry (matches neither)"
        out.append(f"{what} hardware may read mid-update: {lay.dump(e)}")
    return out


def _words(model: z3.ModelRef, words: SymWords) -> Words:
    return tuple(as_int(model, x) for x in words)


# -- proofs ----------------------------------------------------------------------------
def check_well_formed(w: SymWriter, kinds: Sequence[EntryKind]) -> Outcome | None:
    """Every kind's entries set only bits their configuration uses (else C.2 WARNs)."""
    x = w.layout.z3_words("wf")
    for k in kinds:
        s = solver()
        s.add(k.constraint(x), z3.Not(well_formed(w, x)))
        r = s.check()
        if r == z3.unknown:
            return unknown(f"well-formedness of {k.name}")
        if r == z3.sat:
            words = _words(s.model(), x)
            return Outcome("counterexample", (
                f"{k.name}: the constructor sets bits its configuration does not use",
                f"entry: {w.layout.dump(words)}"), {"kind": k.name, "entry": words})
    return None


def check_pairs(w: SymWriter, kinds: Sequence[EntryKind],
                reader: SymWriter | None = None) -> Outcome:
    """The writer property for every ordered pair of kinds, plus which paths and sync counts occur.

    One incremental solver holds the claim once; each pair is selected with
    assumption literals, so the writer is bit-blasted once, not once per pair.
    """
    bad = check_well_formed(reader or w, kinds)
    if bad is not None:
        return bad
    cur, tgt = w.layout.z3_words("cur"), w.layout.z3_words("tgt")
    claim, wr = writer_claim(w, cur, tgt, reader)
    s = solver()
    broken = [z3.Bool(f"broken_{p}") for p in PATH_NAMES]  # the claim fails on path p
    s.add(*[b == z3.Not(c) for b, c in zip(broken, claim.children())])
    on_path = [z3.Bool(f"path_{p}") for p in PATH_NAMES]
    s.add(*[lit == (wr.path_index == i) for i, lit in enumerate(on_path)])
    nsyncs = [z3.Bool(f"syncs_{n}") for n in range(4)]
    s.add(*[lit == (wr.syncs == n) for n, lit in enumerate(nsyncs)])
    is_cur = {k.name: z3.Bool(f"cur_is_{k.name}") for k in kinds}
    is_tgt = {k.name: z3.Bool(f"tgt_is_{k.name}") for k in kinds}
    for k in kinds:
        s.add(z3.Implies(is_cur[k.name], k.constraint(cur)),
              z3.Implies(is_tgt[k.name], k.constraint(tgt)))
    details = []
    for a in kinds:
        for b in kinds:
            pair = (is_cur[a.name], is_tgt[b.name])
            for lit in broken:
                r = s.check(*pair, lit)
                if r == z3.unknown:
                    return unknown(f"{a.name} -> {b.name}")
                if r == z3.sat:
                    m = s.model()
                    c, t = _words(m, cur), _words(m, tgt)
                    return Outcome("counterexample",
                                   (f"{a.name} -> {b.name}: the writer exposes a torn entry or "
                                    f"leaves the sync bounds", *_describe(w, c, t)),
                                   {"pair": (a.name, b.name), "current": c, "target": t})
            shown = []
            for name, lit in zip(PATH_NAMES, on_path):  # which (path, syncs) combinations occur
                counts: list[int] = []
                while s.check(*pair, lit, *[z3.Not(nsyncs[n]) for n in counts]) == z3.sat:
                    counts.append(as_int(s.model(), wr.syncs))
                if counts:
                    shown.append(f"{name} syncs {sorted(counts)}")
            details.append(f"{a.name} -> {b.name}: {'; '.join(shown)}")
    return Outcome("proved", tuple(details))


def _kind(layout: Layout, name: str) -> EntryKind:
    return KINDS_BY_NAME[(layout.name, name)]


def _shared_s2_part(cur: SymWords, tgt: SymWords) -> z3.BoolRef:
    """cur and tgt agree on every bit tgt uses except CFG and the update-safe bits (of the pair)."""
    tu = STE_SYM.used(tgt)
    safe = STE_SYM.safe(cur, tgt)
    cfg = STE.mask("cfg")
    return z3.And(*[((cur[i] ^ tgt[i]) & tu[i] & ~safe[i] & ~cfg[i] & WORD_MASK) == 0
                    for i in range(Q)])


def check_nested_to_s2(use_update_safe: bool) -> Outcome:
    """nested -> S2 that keeps the stage-2 part: does the writer take the hitless path?"""
    cur, tgt = STE.z3_words("cur"), STE.z3_words("tgt")
    wr = write(STE_SYM, cur, tgt, use_update_safe)
    s = solver()
    s.add(_kind(STE, "nested").constraint(cur), _kind(STE, "s2").constraint(tgt),
          _shared_s2_part(cur, tgt), z3.Not(wr.hitless))
    r = s.check()
    if r == z3.unknown:
        return unknown("nested -> s2")
    if r == z3.unsat:
        return Outcome("proved", ("nested -> S2 keeping the stage-2 part: always exactly one "
                                  "qword of used bits differs (q0, CFG 7 -> 6)",))
    m = s.model()
    c, t = _words(m, cur), _words(m, tgt)
    diff_q = [i for i in range(Q) if z3.is_true(m.eval(wr.diff[i], model_completion=True))]
    return Outcome(
        "counterexample",
        (f"qwords whose used bits differ: {', '.join(f'q{i}' for i in diff_q)} -> breaking path "
         f"(V=0 first)", *_describe(STE_SYM, c, t, use_update_safe=use_update_safe),
         "with update-safe bits: " + _describe(STE_SYM, c, t)[2]),
        {"current": c, "target": t, "cur_cfg": STE.get(c, "cfg"), "tgt_cfg": STE.get(t, "cfg"),
         "diff_qwords": tuple(diff_q),
         "path": write_entry(c, t, STE_WRITER, use_update_safe=use_update_safe).path.name},
    )


def check_cd_s1_replace() -> Outcome:
    """S1 CD -> S1 CD with another ASID and TTB0 (domain replacement on one SSID)."""
    cur, tgt = CD.z3_words("cur"), CD.z3_words("tgt")
    wr = write(CD_SYM, cur, tgt)
    s1 = _kind(CD, "s1")
    s = solver()
    s.add(s1.constraint(cur), s1.constraint(tgt),
          CD.z3_get(cur, "asid") != CD.z3_get(tgt, "asid"),
          CD.z3_get(cur, "ttb0") != CD.z3_get(tgt, "ttb0"), z3.Not(wr.hitless))
    r = s.check()
    if r == z3.unknown:
        return unknown("s1 -> s1 CD")
    if r == z3.unsat:
        return Outcome("proved", ("S1 CD replacement is always hitless",))
    m = s.model()
    c, t = _words(m, cur), _words(m, tgt)
    return Outcome("counterexample",
                   ("ASID (q0) and TTB0 (q1) are both used and both change: breaking path, "
                    "the CD is invalid (C_BAD_CD) for a moment", *_describe(CD_SYM, c, t)),
                   {"current": c, "target": t,
                    "path": write_entry(c, t, CD_WRITER).path.name})


def _kinds_text(kinds: Sequence[EntryKind]) -> str:
    return ", ".join(k.name for k in kinds)


PROOFS: tuple[Proof, ...] = (
    Proof(
        "smmu-ste-hitless",
        "For every pair of STE kinds the driver builds (" + _kinds_text(STE_KINDS) + ") and all "
        "field values, every entry the SMMU may read during arm_smmu_write_entry matches the "
        "current or the target STE on the bits it uses (hitless path, 1-3 syncs), or has V=0 "
        "(breaking path, 2-3 syncs); no-diff path 0-1 syncs; constructors set no unused bit.",
        (ATOMICITY, KINDS_ASSUMPTION, READS_ASSUMPTION),
        "proved", lambda: check_pairs(STE_SYM, STE_KINDS), topic="smmuv3 C.1-C.3",
    ),
    Proof(
        "smmu-cd-hitless",
        "The same for every pair of CD kinds (" + _kinds_text(CD_KINDS) + "): no torn CD is "
        "ever visible; only V=0 intermediates on the breaking path.",
        (ATOMICITY, KINDS_ASSUMPTION, READS_ASSUMPTION, "the CD writer has no update-safe bits"),
        "proved", lambda: check_pairs(CD_SYM, CD_KINDS), topic="smmuv3 C.1-C.3",
    ),
    Proof(
        "smmu-nested-to-s2-hitless",
        "nested -> S2 where the entries agree on every bit the S2 STE uses except CFG and the "
        "update-safe bits (EATS, MEV) always takes the hitless path (2781f2a930ab).",
        (ATOMICITY, KINDS_ASSUMPTION),
        "proved", lambda: check_nested_to_s2(True), topic="smmuv3 C.1 update-safe",
    ),
    Proof(
        "smmu-nested-to-s2-without-update-safe",
        "Without update-safe bits, the same nested -> S2 transition is still hitless "
        "(expected to fail: MEV/EATS in q1 and CFG in q0 both differ, so V=0 first).",
        (ATOMICITY, KINDS_ASSUMPTION, "writer as before 2781f2a930ab: no update-safe bits"),
        "counterexample", lambda: check_nested_to_s2(False), topic="smmuv3 C.1 update-safe",
    ),
    Proof(
        "smmu-cd-s1-replace-hitless",
        "Replacing an S1 CD by another S1 CD with a different ASID and TTB0 is hitless "
        "(expected to fail: hw-tables.md C.3 OBSERVATION, domain replacement on an SSID breaks).",
        (ATOMICITY, KINDS_ASSUMPTION),
        "counterexample", check_cd_s1_replace, topic="smmuv3 C.3",
    ),
)
