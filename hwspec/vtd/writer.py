"""VT-d entry updates store by store, and what a hardware fetch may read meanwhile.

The driver writes a 512-bit PASID entry (and a 256-bit SM context entry) with
64-bit stores (`WRITE_ONCE` of one `val[i]`); the unit fetches the entry in
several transactions (75ed00055c05: "the hardware may fetch the 64-byte PASID
entry in multiple transactions"). An update is safe only if no fetch can
assemble a present entry that mixes two configurations (old DID with new
first-stage pointer): CVE-2026-45945 removed the in-place replace helpers
(c3b1edea3791) for exactly that, and 75ed00055c05 stopped zeroing a live entry.

The fetch model (hw-tables.md A.8, PART D), stated as the kernel relies on it:

1. A fetch reads 64-bit chunks (the finest granularity the reference allows;
   finer means more mixes, so this is the conservative reading of an UNVERIFIED
   granularity).
2. It reads the qword holding P (q0) no later than the others. The kernel's
   publication protocol, "fields first, dma_wmb(), P last" (A.8.1, and the
   context entry's `context_set_present`), is correct only under this
   assumption; without it no setup sequence would be safe, so the model grants it.
3. A fetch does not span the completion of an invalidation that covers the entry
   (a PASID-cache invalidation for a PASID entry, a context-cache one for a context
   entry): that is what "clear P, invalidate, then change the rest" (spec 6.5.3.3,
   as 75ed00055c05 cites it) buys.
4. A fetch does not outlive one step of the model (one kernel call or event).

A `FetchWindow` records an entry's values, store by store, with the end of each store
program (END) and each covering invalidation (BARRIER); `windows_of` splits them into
windows. `observable` lists every entry a fetch may assemble from a window's values;
`first_torn` the first one with P=1 that is not a value the driver meant the entry to
hold (its value when the window opened, or after a whole program): the
hitless-entry-update violation. The store
programs (`setup_stores`, `clear_stores`, ...) are the driver's sequences, declared
once here and run both by the model (`model/drivers/vtd.py`) and symbolically by
the z3 proofs (`proofs/vtd_writes.py`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence, TypeVar

from .caches import CacheEntry

Words = tuple[int, ...]
V = TypeVar("V")

#: P is bit 0 of q0 in both the PASID entry (A.5) and the SM context entry (A.3).
PRESENT = 1

#: one 64-bit store: (qword index, value)
Store = tuple[int, V]


# -- the driver's store programs (value-generic: ints in the model, z3 terms in proofs) --
def clear_stores(nwords: int, zero: V) -> list[Store[V]]:
    """pasid_clear_entry / context_clear_entry: WRITE_ONCE(val[i], 0), i ascending."""
    return [(i, zero) for i in range(nwords)]


def clear_present_stores(q0: V, clear_p: Callable[[V], V]) -> list[Store[V]]:
    """pasid_clear_present / context_clear_present: one store to q0, P off (75ed00055c05)."""
    return [(0, clear_p(q0))]


def setup_stores(target: Sequence[V], clear_p: Callable[[V], V]) -> list[Store[V]]:
    """pasid_pte_config_* / context_entry_set_pasid_table on a cleared entry: the fields
    (q1.. first, then q0 without P), then dma_wmb() and P set by a last store to q0."""
    return [(i, target[i]) for i in range(1, len(target))] + [(0, clear_p(target[0])), (0, target[0])]


def copy_stores(target: Sequence[V]) -> list[Store[V]]:
    """`*pte = new_pte`: a 64-byte struct copy over the entry (the v6.13-v6.19 replace
    helpers). The compiler may store in any order; ascending is one it may pick, and
    one order that tears is enough."""
    return [(i, target[i]) for i in range(len(target))]


def apply(words: Sequence[V], store: Store[V]) -> tuple[V, ...]:
    i, v = store
    out = list(words)
    out[i] = v
    return tuple(out)


#: marks, in a recorded event list, the end of one store program (one driver write: the
#: entry holds a value the driver meant it to hold)
END: Words = ()
#: marks a covering invalidation (fetches begun before it are over)
BARRIER = None

Event = Any  # a value after a store (a tuple of words), END, or BARRIER


def events_of(start: Sequence[V], ops: Sequence[Any]) -> list[Event]:
    """A sequence of stores, ENDs and BARRIERs as the events it records: the entry after
    each store (values may be ints or z3 terms)."""
    out: list[Event] = []
    cur = tuple(start)
    for op in ops:
        if op is BARRIER or op == END:
            out.append(op)
        else:
            cur = apply(cur, op)
            out.append(cur)
    return out


@dataclass
class Window:
    """The values an entry held since the last covering invalidation (`values`, the
    first being its value when the window opened), and those of them the driver meant
    it to hold (`whole`: the value at the opening and after each complete program)."""

    values: list[tuple[Any, ...]]
    whole: list[tuple[Any, ...]]


def windows_of(start: Sequence[Any], events: Sequence[Event], *, concrete: bool = True) -> list[Window]:
    """Split recorded events into windows (a BARRIER closes one and opens the next with
    the current value). With `concrete`, a store that changes nothing adds no value."""
    cur = tuple(start)
    out = [Window([cur], [cur])]
    for e in events:
        w = out[-1]
        if e is BARRIER:
            out.append(Window([cur], [cur]))
        elif e == END:
            if not concrete or cur not in w.whole:
                w.whole.append(cur)
        else:
            cur = e
            if not concrete or cur != w.values[-1]:
                w.values.append(cur)
    return out


def _fetches(values: Sequence[Words], a: int) -> Iterator[Words]:
    """Every entry a fetch may assemble that reads q0 at values[a] (rules 1-2)."""
    later = values[a:]
    choices = [sorted({v[i] for v in later}) for i in range(1, len(values[a]))]
    for rest in itertools.product(*choices):
        yield (values[a][0], *rest)


def observable(values: Sequence[Words]) -> Iterator[Words]:
    """Every entry a fetch may assemble from a window's values, each once."""
    seen: set[Words] = set()
    for a in range(len(values)):
        for e in _fetches(values, a):
            if e not in seen:
                seen.add(e)
                yield e


def first_torn(values: Sequence[Words], whole: Sequence[Words]) -> Words | None:
    """The first present entry a fetch may read that is not a value the driver meant the
    entry to hold: a mix of two values, or an intermediate value with P=1 (which even a
    fetch in one transaction may read)."""
    meant = set(whole)
    for a, first in enumerate(values):
        if first[0] & PRESENT:
            for e in _fetches(values, a):
                if e not in meant:
                    return e
    return None


# -- the concrete window the model keeps per entry ----------------------------------------
@dataclass
class FetchWindow:
    """One entry being rewritten in this step: its value when first written (`start`)
    and every store, program end and covering invalidation since (`events`).

    `probe(words)` is the cache entry a covering invalidation would drop for a fetch
    of `words`. An invalidation ends the window only if it covers every present value
    in it (the PASID cache is tagged with the DID the entry held: an invalidation by
    another DID, such as one read from an entry already cleared, leaves a fetch of
    the old entry in flight)."""

    what: str
    probe: Callable[[Words], CacheEntry]
    start: Words
    events: list[Event] = field(default_factory=list)
    reported: bool = False  # one WARN per window: the first torn mix names the bug

    def current(self) -> Window:
        return windows_of(self.start, self.events)[-1]

    def ended_by(self, desc: Any) -> bool:
        """A window with no present value has no fetch to end: it is left alone."""
        present = [v for v in self.current().values if v[0] & PRESENT]
        return bool(present) and all(desc.covers(self.probe(v)) for v in present)

    def torn(self) -> Words | None:
        w = self.current()
        return first_torn(w.values, w.whole)
