"""VT-d entry updates, store by store: no fetch assembles a present mix (hw-tables.md A.8).

The fetch model is `hwspec/vtd/writer.py`'s: a fetch reads 64-bit chunks, q0 (with P)
no later than the others, and does not span an invalidation that covers the entry.
Here the old and the new entry are symbolic (every qword a free 64-bit value, P=1 in
both) and a fetch is a symbolic choice of snapshot per qword (q0 at index a, every
other qword at an index >= a, within one window). A proof asks z3 for a fetch that
reads P=1 and is none of the values the driver meant the entry to hold (its value
when the window opened, or after a whole store program: writer.windows_of); unsat
means no such fetch exists for any pair of entries.

The store sequences are the writer's programs (`clear_stores`, `setup_stores`, ...)
composed in the order the driver runs them; tests/proofs/test_vtd_writes.py runs the
model's driver on the same update and checks that it stores exactly these values and
meets the covering invalidation where the sequence has BARRIER. That the invalidation
covers the entry (a PASID-cache invalidation by the DID read before P was cleared) is
what `vtd-teardown-clean` proves; here it is an assumption.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence, TypeAlias

import z3

from hwspec.layout import Layout
from hwspec.vtd import CONTEXT_ENTRY, PASID_ENTRY, IOMMU_NO_PASID
from hwspec.vtd import writer

from model.drivers.vtd import _clear_p

from proofs.base import QUERY_TIMEOUT_MS, Outcome, Proof, as_int, unknown

Term: TypeAlias = z3.BitVecRef
#: one step of a sequence: a 64-bit store (qword, value), or BARRIER (a covering
#: invalidation completed: fetches begun before it are over)
Op: TypeAlias = "tuple[Any, ...] | None"
BARRIER = writer.BARRIER
END = writer.END  # the end of one store program: the driver means the entry to hold it


@dataclass(frozen=True)
class Values:
    """How a sequence builds values: z3 terms for the proof, ints for the driver check."""

    zero: Any
    clear_p: Callable[[Any], Any]


def symbolic(ctx: z3.Context) -> Values:
    mask = z3.BitVecVal(~writer.PRESENT & (2**64 - 1), 64, ctx)
    return Values(z3.BitVecVal(0, 64, ctx), lambda q: q & mask)


#: the driver's own "P off" for concrete words: the sequences the test replays are built
#: with the very function the driver stores with
CONCRETE = Values(0, _clear_p)


# -- the driver's sequences, composed from the writer's programs --------------------------
def pasid_replace(old: Sequence[Any], new: Sequence[Any], v: Values) -> list[Op]:
    """v7.0 set_dev_pasid with an old domain (A.8.3): intel_pasid_tear_down_entry (clear
    P; PASID-cache by the old DID; IOTLB, device-TLB; zero the entry), then
    intel_pasid_setup_* (clear, fields, P last)."""
    n = PASID_ENTRY.words
    return [*writer.clear_present_stores(old[0], v.clear_p), END, BARRIER,
            *writer.clear_stores(n, v.zero), END,
            *writer.clear_stores(n, v.zero), *writer.setup_stores(new, v.clear_p), END]


def pasid_replace_in_place(old: Sequence[Any], new: Sequence[Any], v: Values) -> list[Op]:
    """vtd-pasid-replace-in-place: the v6.13-v6.19 intel_pasid_replace_* helpers (a struct
    copy over the live entry, then intel_pasid_flush_present by the old DID). That flush
    is no BARRIER: it does not cover a fetch of the new entry (another DID)."""
    return [*writer.copy_stores(new), END]


def pasid_replace_zero_present(old: Sequence[Any], new: Sequence[Any], v: Values) -> list[Op]:
    """vtd-teardown-zero-present-entry: the teardown before 75ed00055c05 zeroed the live
    entry first and invalidated after, then the setup."""
    n = PASID_ENTRY.words
    return [*writer.clear_stores(n, v.zero), END, BARRIER,
            *writer.clear_stores(n, v.zero), *writer.setup_stores(new, v.clear_p), END]


def context_teardown(old: Sequence[Any], new: Sequence[Any], v: Values) -> list[Op]:
    """device_pasid_table_teardown: context_clear_entry on the live SM context entry (P
    not cleared first, A.3 OBSERVATION), then the context-cache invalidation."""
    return [*writer.clear_stores(CONTEXT_ENTRY.words, v.zero), END, BARRIER]


@dataclass(frozen=True)
class Update:
    name: str
    layout: Layout
    sequence: Callable[[Sequence[Any], Sequence[Any], Values], list[Op]]
    #: constraints on the old and new entry beyond P=1 in both
    assume: Callable[[Sequence[Term], Sequence[Term]], list[z3.BoolRef]] = lambda old, new: []
    #: the design whose driver runs this sequence (the test replays it on the model)
    design: str = "upstream"
    #: a teardown has no new entry: the proof takes new = old
    uses_new: bool = True


def _kernel_context(old: Sequence[Term], new: Sequence[Term]) -> list[z3.BoolRef]:
    """What the kernel writes outside q0 of an SM context entry: RID_PASID =
    IOMMU_NO_PASID in q1 (nothing else there) and q2 = q3 = 0 (A.3)."""
    rid = CONTEXT_ENTRY["rid_pasid"]
    assert rid.word == 1
    return [old[1] == IOMMU_NO_PASID, old[2] == 0, old[3] == 0]


# -- the check ------------------------------------------------------------------------------
def _select(snaps: Sequence[tuple[Term, ...]], idx: z3.ArithRef, q: int) -> Term:
    e = snaps[-1][q]
    for i in range(len(snaps) - 2, -1, -1):
        e = z3.If(idx == i, snaps[i][q], e)
    return e


def _present(q0: Term) -> z3.BoolRef:
    return z3.Extract(0, 0, q0) == 1


def check_update(u: Update) -> Outcome:
    """Is there, for some old and new entry, a fetch in some window that reads a present
    entry the entry never held whole?"""
    # A context of its own: terms made in z3's global context change how later, unrelated
    # queries of the session search (the PASID induction's counterexample query timed out
    # after these proofs had run in the same context).
    ctx = z3.Context()
    old = tuple(z3.BitVec(f"old_q{i}", 64, ctx) for i in range(u.layout.words))
    new = tuple(z3.BitVec(f"new_q{i}", 64, ctx) for i in range(u.layout.words)) if u.uses_new else old
    declared = u.layout.mask(*u.layout.names)
    base = [_present(old[0]), _present(new[0]), *u.assume(old, new),
            *[e[q] & ~declared[q] & (2**64 - 1) == 0 for e in (old, new) for q in range(u.layout.words)]]
    ops = u.sequence(old, new, symbolic(ctx))
    for w, win in enumerate(writer.windows_of(old, writer.events_of(old, ops), concrete=False)):
        snaps, n = win.values, len(win.values)
        a = z3.Int("a", ctx)
        bs = [z3.Int(f"b{q}", ctx) for q in range(1, u.layout.words)]
        mix = (_select(snaps, a, 0), *[_select(snaps, b, q) for q, b in enumerate(bs, 1)])
        s = z3.Solver(ctx=ctx)
        s.set("timeout", QUERY_TIMEOUT_MS)
        s.add(*base, 0 <= a, a < n, *[z3.And(a <= b, b < n) for b in bs])
        s.add(_present(mix[0]))
        for meant in win.whole:  # none of the values the driver meant the entry to hold
            s.add(z3.Or(*[m != x for m, x in zip(mix, meant)]))
        r = s.check()
        if r == z3.unknown:
            return unknown(f"{u.name} window {w}")
        if r == z3.sat:
            m = s.model()
            seen = u.layout.from_model(m, mix)
            o, t = u.layout.from_model(m, old), u.layout.from_model(m, new)
            return Outcome("counterexample", (
                f"window {w} ({n} values), q0 read at value {as_int(m, a)}, "
                f"q1.. at {[as_int(m, b) for b in bs]}",
                f"old: {u.layout.dump(o)}",
                f"new: {u.layout.dump(t)}",
                f"a fetch may read: {u.layout.dump(seen)}",
            ), {"window": w, "old": o, "new": t, "seen": seen,
                "whole": [u.layout.from_model(m, v) for v in win.whole],
                "from_old": [q for q in range(u.layout.words) if seen[q] == o[q] != t[q]],
                "from_new": [q for q in range(u.layout.words) if seen[q] == t[q] != o[q]]})
    return Outcome("proved", (f"{u.name}: no present mix in any window, for every old and new entry",))


UPDATES: dict[str, Update] = {u.name: u for u in (
    Update("pasid-replace", PASID_ENTRY, pasid_replace),
    Update("pasid-replace-in-place", PASID_ENTRY, pasid_replace_in_place,
           design="vtd-pasid-replace-in-place"),
    Update("pasid-replace-zero-present", PASID_ENTRY, pasid_replace_zero_present,
           design="vtd-teardown-zero-present-entry"),
    Update("context-teardown", CONTEXT_ENTRY, context_teardown, _kernel_context, uses_new=False),
    Update("context-teardown-any-q1", CONTEXT_ENTRY, context_teardown, uses_new=False),
)}

FETCH = ("a fetch reads 64-bit chunks, q0 (P) no later than the others (the kernel's "
         "fields-then-P publication relies on it), within one window (hwspec/vtd/writer.py)",
         "the invalidation at BARRIER covers the entry (vtd-teardown-clean)",
         "the old and the new entry: any value of every declared field, P=1, reserved bits 0")

PROOFS: tuple[Proof, ...] = (
    Proof(
        "vtd-pasid-replace-hitless",
        "The v7.0 PASID replace (teardown: clear P, PASID-cache invalidation, zero; setup: "
        "fields, P last) never lets a fetch read a present entry other than the old or the "
        "new one, for every pair of entries (hw-tables A.8.2-A.8.3, c3b1edea3791).",
        FETCH, "proved", lambda: check_update(UPDATES["pasid-replace"]), topic="vtd A.8 entry writes",
    ),
    Proof(
        "vtd-pasid-replace-in-place-tears",
        "The v6.13-v6.19 in-place replace (a 64-byte copy over the live entry, then the "
        "flush) is hitless (expected to fail: a fetch reads the new q0 with the old DID or "
        "pointer; CVE-2026-45945).",
        FETCH, "counterexample", lambda: check_update(UPDATES["pasid-replace-in-place"]),
        topic="vtd A.8 entry writes",
    ),
    Proof(
        "vtd-teardown-zero-present-tears",
        "Zeroing the live entry before the PASID-cache invalidation (before 75ed00055c05) "
        "is hitless (expected to fail: the old q0 with a zeroed DID or pointer).",
        FETCH, "counterexample", lambda: check_update(UPDATES["pasid-replace-zero-present"]),
        topic="vtd A.8 entry writes",
    ),
    Proof(
        "vtd-context-teardown-hitless",
        "device_pasid_table_teardown zeroes the live SM context entry without clearing P "
        "first, and still no fetch reads a present mix: every field the kernel sets is in q0 "
        "(RID_PASID = IOMMU_NO_PASID, q2 = q3 = 0).",
        FETCH[:2] + ("old context entry as the kernel writes it: q1 = RID_PASID = 0, q2 = q3 = 0",),
        "proved", lambda: check_update(UPDATES["context-teardown"]), topic="vtd A.8 entry writes",
    ),
    Proof(
        "vtd-context-teardown-needs-rid-pasid-0",
        "The same context teardown with any q1 (a nonzero RID_PASID) is hitless (expected to "
        "fail: the old q0 with a zeroed RID_PASID; the safety rests on the kernel's constant).",
        FETCH, "counterexample", lambda: check_update(UPDATES["context-teardown-any-q1"]),
        topic="vtd A.8 entry writes",
    ),
)
