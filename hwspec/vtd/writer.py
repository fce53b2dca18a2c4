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

A `FetchWindow` holds the values an entry held, store by store, since the last
covering invalidation. `observable` lists every entry a fetch may assemble from
them; `first_torn` the first one with P=1 that is not a value the entry held
whole (a present snapshot): the hitless-entry-update violation. The store
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


def snapshots(start: Sequence[V], stores: Sequence[Store[V]]) -> list[tuple[V, ...]]:
    """The entry after each store, `start` first."""
    out = [tuple(start)]
    for s in stores:
        out.append(apply(out[-1], s))
    return out


def mixes(n_snapshots: int, nwords: int) -> Iterator[tuple[int, ...]]:
    """Every fetch a window of `n_snapshots` values allows, as the snapshot index each
    qword is read from: q0 at index a, every other qword at an index >= a (rule 2)."""
    for a in range(n_snapshots):
        later = range(a, n_snapshots)
        for rest in itertools.product(later, repeat=nwords - 1):
            yield (a, *rest)


# -- the concrete window the model keeps per entry ----------------------------------------
@dataclass
class FetchWindow:
    """The values one entry held since the last invalidation that covers it.

    `probe(words)` is the cache entry a covering invalidation would drop for a fetch
    of `words`. An invalidation ends the window only if it covers every present value
    in it (the PASID cache is tagged with the DID the entry held: an invalidation by
    another DID, such as one read from an entry already cleared, leaves a fetch of
    the old entry in flight)."""

    what: str
    probe: Callable[[Words], CacheEntry]
    values: list[Words] = field(default_factory=list)
    reported: bool = False  # one WARN per window: the first torn mix names the bug
    #: every value stored and every covering invalidation (None) since the entry was
    #: first written this step: what the z3 proofs check the driver against
    events: list[Words | None] = field(default_factory=list)

    def record(self, words: Words) -> None:
        self.events.append(words)
        if words != self.values[-1]:
            self.values.append(words)

    def ended_by(self, desc: Any) -> bool:
        """A window with no present value has no fetch to end: it is left alone."""
        present = [v for v in self.values if v[0] & PRESENT]
        return bool(present) and all(desc.covers(self.probe(v)) for v in present)

    def restart(self) -> None:
        self.events.append(None)
        self.values = [self.values[-1]]


def observable(values: Sequence[Words]) -> Iterator[Words]:
    """Every entry a fetch may assemble from a window's values (rules 1-2), each once."""
    seen: set[Words] = set()
    for a, first in enumerate(values):
        later = values[a:]
        choices = [sorted({v[i] for v in later}) for i in range(1, len(first))]
        for rest in itertools.product(*choices):
            e = (first[0], *rest)
            if e not in seen:
                seen.add(e)
                yield e


def first_torn(values: Sequence[Words]) -> Words | None:
    """The first present entry a fetch may read that the entry never held whole."""
    whole = {v for v in values if v[0] & PRESENT}
    for a, first in enumerate(values):
        if not first[0] & PRESENT:
            continue
        later = values[a:]
        choices = [sorted({v[i] for v in later}) for i in range(1, len(first))]
        if all(len(c) == 1 for c in choices):
            continue
        for rest in itertools.product(*choices):
            e = (first[0], *rest)
            if e not in whole:
                return e
    return None
