"""The exhaustive bounded explorer: breadth-first search over every enabled action.

From the booted world of (design, hardware, bounds) the explorer tries, in every
state, every action of `model.actions.ACTIONS` with every argument tuple its
`enabled_args` yields (the same table the Hypothesis machine is generated from,
so nothing about the system is written twice). Every new state is checked
against every state invariant and every transition against every step
invariant. Because the search is breadth-first, the first violation found is at
the smallest depth there is: the counterexample is a shortest one. Its trace is
rebuilt by replaying the path from the start through `checker.run.Runner.step`,
so it carries the same hardware lines and replays identically under
`iommucheck replay`.

What is stored. Visited states are kept as a 64-bit fingerprint only: Python's
`hash()` of the state's canonical key (see below), in a set, with the BFS number
of the state's parent and the move that reached it in two `array`s (95 to 150
bytes a state, depending on the set's fill; see bench/bench_explore.py). Two
different states with one fingerprint would make the search skip the second:
with N states the chance of any such collision is about N^2 / 2^65 (below 3e-6
for ten million states; the hash is not cryptographic, so this assumes it mixes
structured keys as well as a random function would). Only the current and the
next BFS level keep whole `Kernel` objects (about 4 KiB each beyond what they
share with their parent).

When it ends. A world is finite only with the symmetry reduction: without it,
every fresh object id and page-table address is a new state (a process that
exits and forks again never repeats). With it, what keeps the world finite are
the bounds and the caller contracts of the action table (one DMA-API driver and
one VFIO claim per device, MAX_SVA_BINDS, MAX_NOTIFIERS_PER_MM). `depth` and
`max_states` stop it earlier; the result then says INCOMPLETE. A transition on
which the model (or an invariant's check) raises a Python exception is a
violation of `model-exception` like any other: the search stops there, so the
trace is a shortest call sequence that raises it, ending in the raising call.

Symmetry reduction (`symmetry=True`, the default). A state is identified by
`Kernel.canonical_key(labels)`, in which every *name* is replaced by a label
given on first sight in a traversal whose order comes from content:

* object ids of domains, attach/SVA handles and processes (mm): the model never
  looks at their values, only at which object they name, and the shared
  `next_id` counter only guarantees freshness, so it is left out;
* notifier ids keep their order (their callbacks run in id order) and are
  stored by rank;
* page-table roots (the addresses of domains' and processes' page tables) are
  renamed wherever they appear: in the domains and mms, in the PASID entries /
  CDs in memory (FLPTPTR, SLPTPTR, TTB0) and in cached PASID entries / CDs.
  Tables nothing refers to any more are dropped, and so is the page allocator's
  set: `Memory` never frees a page, and after boot it allocates only page-table
  roots (checked on every state), so a fresh root is fresh whatever its address.
  Leaf table pages (bound walk_caches) are the exception that keeps its addresses:
  they come from a pool of their own that holds exactly the live leaf tables, which
  the key lists with their addresses, so where the next one lands is the same in
  every state of one key;
* physical data pages (`Bounds.phys()`): only compared for equality, by the
  model and the invariants alike.

Why that is sound: the whole model (core, drivers, hardware, invariants) is
equivariant under these renamings - it stores, compares for equality and looks
up these names, never orders or computes with them (the notifier order is kept),
so a state and its renamed image have the same verdicts and renamed successors.
Hence two states with one canonical key are interchangeable for the search, and
the reduced search reaches a violation, at the same depth, exactly when the full
one does; tests/explore checks this against the unreduced search (the model's own
`Kernel.key()`) on breaking and holding designs. Not reduced, because the model
is not symmetric in them: PASID values (the allocator hands out the lowest free
one), IOVAs (invalidation ranges are computed from them), DIDs and ASIDs
(allocated lowest-first). Devices with the same properties (dev0 and dev1 with
the default bounds) are interchangeable in principle, and a permutation moving
their names, SIDs, context entries / STEs, PASID directories and CD tables
together was built and measured: it merged 18 of 3,882 vtd states and none of
3,988 smmuv3 states (two devices, depth 6) for a quarter more time per state,
because boot gives dev0's default domain DID 2 (ASID 1) and dev1's DID 3 (ASID 2):
a state and its device-swapped image are almost never both reachable, and DIDs
cannot be permuted with them (lowest-free allocation). It was left out.

Cache saturation (`saturate=True`, `check --engine explore --saturate-caches`).
Most states of a plain search differ only in what the IOMMU and device caches hold:
every `dma` event may add entries, so the caches range over the subsets of what
walks ever produced. With saturation the search drops the `dma` event and instead,
after every other step (and at boot), performs every DMA the state allows: the
caches then hold everything they may hold after the calls so far. This is exact for
our invariants because of three facts about the model, which
tests/explore/test_explore_saturate.py checks on every reachable state of small worlds:

* nothing the kernel, the drivers or the action table do depends on cache contents
  (calls return the same, enabledness and every non-cache field come out the same;
  invalidations remove entries by what they cover), so a state with more cache
  entries takes the same steps, and keeps a superset of entries after them; the one
  record that reads the caches, a leaf table freed while a walk cache points at it
  (bound walk_caches), is monotone too: more entries, more such records;
* a `dma` event only adds entries that a fresh walk gives now;
* every invariant is monotone in the caches: an entry more can add a DMA outcome,
  an entry in a freed tag or a held PASID, never remove one.

So every state of the plain search is matched by a saturated state with the same
calls and more cache entries, which breaks at least the same invariants; and every
saturated state is a plain state (the DMAs done one by one). A violation exists
exactly when the saturated search finds one, at a depth counted in calls and events
other than DMA. Its trace is rebuilt with the DMAs as explicit `dma` events, then
the DMA events the violation does not need are dropped one at a time: the result
replays like any other trace, but is shortest in calls, not always in events.

    from checker.explore import check_explore
    r = check_explore(get_design("upstream"), "vtd", Bounds(devices=1), CATALOG, depth=6)
    print(r.extra["summary"])
"""

from __future__ import annotations

import itertools
import math
import os
import sys
import time
from array import array
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Collection, Iterable

from invariants.base import Invariant, Step, Violation
from invariants.model_exception import MODEL_ERRORS, MODEL_EXCEPTION, finding_key, model_exception
from model.actions import ACTIONS, Action, Args, show_call
from model.bounds import Bounds
from model.core import BLOCKED_DOMAIN_ID, IDENTITY_DOMAIN_ID, Kernel
from model.design import Design

from checker.check import CheckResult
from checker.run import BootRaised, Runner
from checker.trace import Trace
from checker.world import Config

PROGRESS_SECONDS = 0.5
#: labels of physical data pages start here: beyond any 52-bit page frame number
PFN_LABELS = 1 << 52
#: tie groups larger than this keep their id order (4! orderings at most are tried)
MAX_TIE = 4


def rss_bytes() -> int:
    """This process's resident memory (Linux /proc; 0 where there is none): what
    --max-memory compares with."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class SymmetryUnsupported(Exception):
    """A state breaks an assumption the symmetry reduction rests on (the search restarts
    without it rather than risk merging states that differ)."""


# -- names and their labels -------------------------------------------------------------------
class Labels:
    """Labels for the names of one state (a `model.core.Renaming`), given on first sight.

    Domain labels start after the driver's static domains (blocked 1, identity 2),
    which keep their ids; handle and mm labels count from 1; roots from 0; data pages
    count from PFN_LABELS, above any page frame number, so that a label never equals
    an unrenamed frame (the identity frames of pass-through cache entries). (Not
    negative numbers: CPython hashes -1 and -2 alike, which made keys collide.)
    """

    __slots__ = ("_dom", "_handle", "_mm", "_root", "_pfn", "_roots", "_root_order", "_phys",
                 "_choices", "ties")

    def __init__(self, roots: Collection[int], phys: Collection[int], choices: tuple[int, ...] = ()) -> None:
        self._dom: dict[int, int] = {BLOCKED_DOMAIN_ID: BLOCKED_DOMAIN_ID,
                                     IDENTITY_DOMAIN_ID: IDENTITY_DOMAIN_ID}
        self._handle: dict[int, int] = {}
        self._mm: dict[int, int] = {}
        self._root: dict[int, int] = {}
        self._pfn: dict[int, int] = {}
        self._roots = roots
        self._root_order: list[int] = []
        self._phys = phys
        #: for each tie group met (see `order`), which of its orderings to use
        self._choices = choices
        #: the sizes of the tie groups met, in order
        self.ties: list[int] = []

    def dom(self, d: int) -> int:
        m = self._dom
        label = m.get(d)
        if label is None:
            label = m[d] = len(m) + 1
        return label

    def handle(self, h: int) -> int:
        m = self._handle
        label = m.get(h)
        if label is None:
            label = m[h] = len(m) + 1
        return label

    def mm(self, i: int) -> int:
        m = self._mm
        label = m.get(i)
        if label is None:
            label = m[i] = len(m) + 1
        return label

    def root(self, addr: int) -> int:
        m = self._root
        label = m.get(addr)
        if label is None:
            if addr not in self._roots:
                raise SymmetryUnsupported(f"a root pointer {addr:#x} is not a page table")
            label = m[addr] = len(m)
            self._root_order.append(addr)
        return label

    def pfn(self, pfn: int) -> int:
        if pfn not in self._phys:
            return pfn
        m = self._pfn
        label = m.get(pfn)
        if label is None:
            label = m[pfn] = PFN_LABELS + len(m)
        return label

    def order(self, kind: str, ids: Iterable[int], signature: Callable[[int], Any]) -> list[int]:
        m = {"dom": self._dom, "handle": self._handle, "mm": self._mm}[kind]
        label = {"dom": self.dom, "handle": self.handle, "mm": self.mm}[kind]
        known = []
        rest = []
        for i in ids:
            if i in m:
                known.append((m[i], i))
            else:
                rest.append(i)
        known.sort()
        out = [i for _, i in known]
        if len(rest) > 1:
            rest = self._break_ties(sorted((signature(i), i) for i in rest))
        for i in rest:
            label(i)
        return out + rest

    def _break_ties(self, ranked: list[tuple[Any, int]]) -> list[int]:
        """Objects in signature order; a run of equal signatures (a tie group) is put in
        the ordering `choices` selects for it, so that the caller can try them all."""
        out: list[int] = []
        start = 0
        while start < len(ranked):
            end = start + 1
            while end < len(ranked) and ranked[end][0] == ranked[start][0]:
                end += 1
            run = [i for _, i in ranked[start:end]]
            if 1 < len(run) <= MAX_TIE:
                n = len(self.ties)
                self.ties.append(len(run))
                choice = self._choices[n] if n < len(self._choices) else 0
                run = list(list(itertools.permutations(run))[choice])
            out += run
            start = end
        return out

    def roots(self) -> list[int]:
        return list(self._root_order)

    def root_field(self, word: int, mask: int, lo: int, shift: int) -> Any:
        v = (word & mask) >> lo
        if not v:
            return word
        return (word & ~mask, self.root(v << shift))


class IdentityNames:
    """The renaming that renames nothing (a `model.core.Renaming`): with it,
    `canonical_key` tells apart exactly what `key()` does, up to next_id, the page
    allocator and unreferenced page tables (tests/explore checks this)."""

    def __init__(self, roots: Collection[int]) -> None:
        self._roots = sorted(roots)

    def dom(self, d: int) -> int:
        return d

    def handle(self, h: int) -> int:
        return h

    def mm(self, m: int) -> int:
        return m

    def root(self, addr: int) -> int:
        return addr

    def pfn(self, pfn: int) -> int:
        return pfn

    def order(self, kind: str, ids: Iterable[int], signature: Callable[[int], Any]) -> list[int]:
        return sorted(ids)

    def roots(self) -> list[int]:
        return list(self._roots)

    def root_field(self, word: int, mask: int, lo: int, shift: int) -> Any:
        return word


def supports_symmetry(k: Kernel) -> bool:
    """The driver state knows its canonical form (VT-d and SMMUv3 do; a user driver
    with state of its own may not, and is then explored without the reduction)."""
    return hasattr(k.drv, "canonical_key") and hasattr(k.drv, "root_pointer_words")


# -- the search ----------------------------------------------------------------------------------
@dataclass
class Outcome:
    """What a search found: a violating path (move ids from the start) or none."""

    states: int
    transitions: int
    depth: int  # deepest BFS level reached (states at that depth were checked)
    complete: bool
    stopped_at: str | None  # "--max-states" / "--depth" when a limit stopped the search
    path: list[int] | None = None  # move ids of the counterexample
    violation: Violation | None = None  # model-exception: the path's last step raised
    seconds: float = 0.0
    peak_frontier: int = 0
    visited_bytes: int = 0  # the visited set and the parent pointers (not the frontier)
    symmetry: bool = True
    saturated: bool = False  # caches saturated: depth counts calls and events other than DMA
    notes: list[str] = field(default_factory=list)
    #: every sequence of up to `covered` steps (calls, with saturation) was checked
    covered: int = 0
    #: (path, violation) of each invariant broken, in the order found (`every_violation`)
    findings: list[tuple[list[int], Violation]] = field(default_factory=list)


class Explorer:
    """Breadth-first search of one (design, hardware, bounds) world.

    Transitions are computed as `Runner.step` computes them (the action runs on a
    copy of the state, then the step invariants see before/after), with two savings
    that do not change any verdict: the state invariants run once per *new* state
    (a state already visited passed them), and the trace text of a step is made
    only when a counterexample is replayed.
    """

    def __init__(self, config: Config, invariants: tuple[Invariant, ...], symmetry: bool = True,
                 saturate: bool = False) -> None:
        self.config = config
        self.saturate = saturate
        self._dma = next(i for i, a in enumerate(ACTIONS) if a.name == "dma")
        self.bounds = config.bounds
        self.runner = Runner(config, invariants)
        self.step_invariants = tuple(i for i in self.runner.invariants if i.check_step is not None)
        self.symmetry = symmetry
        self.moves: list[tuple[int, Args]] = []  # move id -> (action index, args)
        self._move_ids: dict[tuple[int, Args], int] = {}
        self._phys = frozenset(pa >> 12 for pa in self.bounds.phys())
        self._boot_pages = 0  # pages allocated at boot that are not page-table roots
        self._pointer_words: dict[int, tuple[int, int, int]] = {}  # fixed after boot
        self._table_pages: frozenset[int] = frozenset()  # boot pages holding hardware tables

    # -- fingerprints ------------------------------------------------------------
    def prepare(self, k0: Kernel) -> None:
        """Learn from the booted world what fingerprints need (before the first one)."""
        if self.symmetry and not supports_symmetry(k0):
            self.symmetry = False
        self._boot_pages = len(k0.mem.allocated) - len(k0.mem.pagetables)
        self._table_pages = frozenset(k0.mem.allocated) - frozenset(k0.mem.pagetables)
        if self.symmetry:
            # The tables that hold roots are boot pages, and no other page is allocated
            # later (checked on every state), so where roots can sit never changes.
            self._pointer_words = k0.drv.root_pointer_words(k0.mem)  # type: ignore[attr-defined]

    def canonical_key(self, k: Kernel) -> Any:
        """The state's identity for the visited set (see the module docstring), with
        every tie group in its first ordering (`fingerprint` tries them all)."""
        if not self.symmetry:
            return k.key()
        return self._key(k, ())[0]

    def _key(self, k: Kernel, choices: tuple[int, ...]) -> tuple[Any, list[int]]:
        """The canonical key with tie groups ordered by `choices`, and the tie groups met."""
        mem = k.mem
        pages, pointer_words = self._table_pages, self._pointer_words
        if len(mem.allocated) != self._boot_pages + len(mem.pagetables) or any(
                addr & ~0xFFF not in pages for addr in mem.words):
            # The hardware tables are not where boot put them (a table page allocated
            # later, e.g. a second-level PASID table, or a device released and probed
            # again): this state's own table pages and root fields are used. Table
            # addresses stay as they are in the key (not renamed), so states that differ
            # by them stay apart: less reduction, never a wrong merge.
            pages = frozenset(mem.allocated) - frozenset(mem.pagetables)
            for addr in mem.words:
                if addr & ~0xFFF not in pages:
                    raise SymmetryUnsupported(f"a word at {addr:#x} lies outside every table page")
            pointer_words = k.drv.root_pointer_words(mem)  # type: ignore[attr-defined]
        labels = Labels(mem.pagetables, self._phys, choices)
        return k.canonical_key(labels, pointer_words), labels.ties

    def fingerprint(self, k: Kernel) -> int:
        """hash() of the canonical key. Objects that nothing tells apart but their
        contents' names (two processes mapping the same IOVAs to different pages)
        tie; then every ordering of each tie group is tried and the least hash kept,
        so that states that differ only by which of them is which still meet."""
        if not self.symmetry:
            return hash(k.key())
        key, ties = self._key(k, ())
        best = hash(key)
        if ties:
            for choice in itertools.product(*(range(math.factorial(n)) for n in ties)):
                if any(choice):
                    best = min(best, hash(self._key(k, choice)[0]))
        return best

    def _move(self, ai: int, args: Args) -> int:
        key = (ai, args)
        mid = self._move_ids.get(key)
        if mid is None:
            mid = self._move_ids[key] = len(self.moves)
            self.moves.append(key)
        return mid

    def fill_all(self, k: Kernel, record: list[int] | None = None) -> None:
        """Every DMA the state allows, done now: its caches then hold everything they
        may hold after the calls that led here (see "Cache saturation" above).
        `record` gets each DMA's move id before it runs (to rebuild traces)."""
        dma = ACTIONS[self._dma]
        for args in list(dma.enabled_args(k, self.bounds)):
            if record is not None:
                record.append(self._move(self._dma, args))
            dma.run(k, args)

    def transition(self, k: Kernel, ai: int, args: Args) -> tuple[Kernel, Any, Violation | None]:
        """One transition from k, as the search computes it: a copy of k (k is not changed)
        with `ACTIONS[ai](args)` run on it, then saturated if `self.saturate`, and the
        transition's first violation: a model exception (of the call or of a DMA of the
        saturation), else a step invariant's. The state invariants of the child are the
        caller's to check (the search checks them once per new state). The child is frozen.

        The Hypothesis machine (checker/machine.py) steps through this, so that both
        engines see the same (before, action, args, result, after-with-DMAs) transitions.
        (`run` steps through `_successor` too, with its own bookkeeping of every violation.)"""
        action = ACTIONS[ai]
        child, result, raised = self._successor(k, action, args)
        if raised is not None:
            return child, None, raised
        vs = self._step_violations(k, action, args, result, child, list(self.step_invariants), False)
        return child, result, vs[0] if vs else None

    def _successor(self, k: Kernel, action: Action, args: Args) -> tuple[Kernel, Any, Violation | None]:
        """A copy of k with `action(args)` run on it and, if saturating, every DMA done;
        frozen. The violation is a model exception of the call or of a DMA, else None."""
        child = k.copy()
        try:
            result = action.run(child, args)
            if self.saturate:
                self.fill_all(child)
        except MODEL_ERRORS as e:  # a model bug: a finding like any violation
            return child, None, model_exception(show_call(child, action, args, None), e)
        child.freeze()
        return child, result, None

    # -- the BFS ---------------------------------------------------------------------
    def boot(self) -> tuple[Kernel, Outcome]:
        """The booted world, saturated if the search saturates and prepared for
        fingerprints, and the Outcome a search from it starts with: holding the
        violation if a DMA of the booted world raised (unsaturate finds which).
        Every search (this one, checker/parallel.py and its workers) starts here."""
        k0 = self.runner.start()
        out = Outcome(states=1, transitions=0, depth=0, complete=True, stopped_at=None,
                      symmetry=self.symmetry, saturated=self.saturate)
        if self.saturate:
            try:
                self.fill_all(k0)
            except MODEL_ERRORS as e:
                out.path, out.violation = [], model_exception("a DMA of the booted world", e)
                out.findings.append(([], out.violation))
                return k0, out
        self.prepare(k0)
        out.symmetry = self.symmetry
        return k0, out

    def run(self, depth: int | None = None, max_states: int | None = None,
            on_progress: Callable[[str], None] | None = None, *,
            every_violation: bool = False, deadline: float | None = None,
            max_memory: int | None = None) -> Outcome:
        """Breadth-first search from boot.

        By default the search stops at the first violation. With `every_violation` it
        records the first violation of each invariant (the shortest, since the search
        is breadth-first), stops checking that invariant and goes on, through the
        violating state as through any other: what a re-run without the broken
        invariant would find, in one pass (the matrix's re-run rule). A model
        exception still ends the search (the state cannot be stepped). `deadline`
        (a `time.perf_counter()` value) stops it like `max_states` does, and so does
        `max_memory` (bytes of resident memory, looked at every PROGRESS_SECONDS)."""
        start = time.perf_counter()
        b = self.bounds
        k0, out = self.boot()
        if out.violation is not None:
            out.seconds = time.perf_counter() - start
            return out
        seen: set[int] = {self.fingerprint(k0)}
        parent = array("q", [-1])  # BFS number -> parent's BFS number
        via = array("q", [-1])  # BFS number -> move id that reached it
        # the invariants still looked for (every_violation drops each one once broken)
        step_invs = list(self.step_invariants)
        state_invs = [i for i in self.runner.invariants if i.check_state is not None]

        def path_to(n: int) -> list[int]:
            moves = []
            while n > 0:
                moves.append(via[n])
                n = parent[n]
            moves.reverse()
            return moves

        def finish() -> Outcome:
            out.states = len(seen)
            out.seconds = time.perf_counter() - start
            out.visited_bytes = (sys.getsizeof(seen) + sum(map(sys.getsizeof, seen))
                                 + parent.itemsize * len(parent) + via.itemsize * len(via))
            if out.findings and out.violation is None:
                out.path, out.violation = out.findings[0]
            return out

        def found(path: list[int], vs: list[Violation]) -> bool:
            """Record violations; True when the search is to stop."""
            for v in vs:
                out.findings.append((path, v))
                step_invs[:] = [i for i in step_invs if i.id != v.invariant]
                state_invs[:] = [i for i in state_invs if i.id != v.invariant]
            stop = (not every_violation or any(v.invariant == MODEL_EXCEPTION for v in vs)
                    or not (step_invs or state_invs))
            if stop:
                out.path, out.violation = path, vs[0]
                if every_violation and not (step_invs or state_invs) and vs[0].invariant != MODEL_EXCEPTION:
                    out.complete, out.stopped_at = False, "every invariant violated"
            return stop

        vs = self._state_violations(k0, state_invs, every_violation)
        if vs and found([], vs):
            return finish()
        k0.thaw()
        # The level being expanded and the next one; a state leaves the deque (and
        # memory) once expanded.
        frontier: deque[tuple[Kernel, int]] = deque([(k0, 0)])
        level = 0
        next_report = start + PROGRESS_SECONDS
        indexed = [(i, a) for i, a in enumerate(ACTIONS) if not (self.saturate and i == self._dma)]
        while frontier:
            if depth is not None and level >= depth:
                out.complete, out.stopped_at = False, "--depth"
                break
            nxt: deque[tuple[Kernel, int]] = deque()
            while frontier:
                k, n = frontier.popleft()
                k.freeze()
                for ai, action in indexed:
                    for args in action.enabled_args(k, b):
                        child, result, raised = self._successor(k, action, args)
                        if raised is not None:  # a model bug: a finding like any violation
                            out.depth = level + 1
                            found(path_to(n) + [self._move(ai, args)], [raised])
                            return finish()
                        out.transitions += 1
                        if (now := time.perf_counter()) >= next_report:
                            next_report = now + PROGRESS_SECONDS
                            if deadline is not None and now >= deadline:
                                out.complete, out.stopped_at = False, "the time budget"
                                out.depth = level + 1
                                return finish()
                            if max_memory is not None and rss_bytes() > max_memory:
                                out.complete, out.stopped_at = False, "--max-memory"
                                out.depth = level + 1
                                return finish()
                            if on_progress is not None:
                                rate = len(seen) / max(now - start, 1e-9)
                                on_progress(f"{len(seen):,} states, {rate:,.0f} states/s, "
                                            f"frontier {len(frontier) + 1 + len(nxt):,}, depth {level + 1}")
                        vs = self._step_violations(k, action, args, result, child, step_invs,
                                                   every_violation)
                        if vs:
                            out.depth = level + 1
                            if found(path_to(n) + [self._move(ai, args)], vs):
                                return finish()
                        fp = self.fingerprint(child)
                        if fp in seen:
                            continue
                        if max_states is not None and len(seen) >= max_states:
                            out.complete, out.stopped_at = False, "--max-states"
                            out.depth = level + 1
                            return finish()
                        seen.add(fp)
                        parent.append(n)
                        via.append(self._move(ai, args))
                        vs = self._state_violations(child, state_invs, every_violation)
                        if vs:
                            out.depth = level + 1
                            if found(path_to(len(parent) - 1), vs):
                                return finish()
                        # Frontier states keep no history: WARNs, hardware log, memo.
                        child.thaw()
                        child.warnings = []
                        child.driver.take_hw_log(child)
                        nxt.append((child, len(parent) - 1))
                k.thaw()
            frontier = nxt
            out.covered = level + 1  # every sequence of level + 1 steps was checked
            out.peak_frontier = max(out.peak_frontier, len(frontier))
            if frontier:
                level += 1
                out.depth = level
        return finish()

    def _state_violations(self, k: Kernel, invs: list[Invariant], every: bool) -> list[Violation]:
        """The violations of `invs` in state k (the first only, unless `every`)."""
        k.freeze()
        out: list[Violation] = []
        b = self.bounds
        for inv in invs:
            try:
                v = inv.check(None, k, b)
            except MODEL_ERRORS as e:
                return [model_exception(f"invariant {inv.id} checking the state", e)]
            if v is not None:
                out.append(v)
                if not every:
                    break
        return out

    def _step_violations(self, before: Kernel, action: Action, args: Args, result: Any,
                         after: Kernel, invs: list[Invariant], every: bool) -> list[Violation]:
        """The violations of the step invariants `invs` on a transition."""
        step = Step(before, action, args, result, after)
        b = self.bounds
        out: list[Violation] = []
        for inv in invs:
            assert inv.check_step is not None
            try:
                v = inv.check_step(step, b)
            except MODEL_ERRORS as e:  # replayed through Runner.step, which names the call
                return [model_exception(f"invariant {inv.id} checking {action.name}{args}", e)]
            if v is not None:
                out.append(v)
                if not every:
                    break
        return out

    # -- counterexamples -------------------------------------------------------------
    def runner_for(self, invariant: str | None) -> Runner:
        """The runner a counterexample is rebuilt with: every invariant (None), or only
        the one it breaks. A search that went on after a violation (`every_violation`)
        may reach another invariant's violation through a state that breaks the first;
        its trace is replayed as a re-run without the first would see it."""
        if invariant is None:
            return self.runner
        return Runner(self.config, tuple(i for i in self.runner.invariants if i.id == invariant))

    def unsaturate(self, path: list[int], invariant: str, *, alone: bool = False) -> list[int]:
        """A path of the saturated search as explicit steps: every DMA the saturation did
        becomes a `dma` event, then the DMA events the violation does not need are
        dropped one at a time, last first, while the trace still ends in a violation
        of the same invariant (for `model-exception`: an exception of the same type).
        If the model raised, the explicit steps end at the raising call or DMA.
        `alone`: only `invariant` is checked on the way (see `runner_for`)."""
        runner = self.runner_for(invariant if alone else None)
        k = runner.start()
        seq: list[int] = []
        try:
            self.fill_all(k, seq)
            for mid in path:
                seq.append(mid)
                ai, args = self.moves[mid]
                ACTIONS[ai].run(k, args)
                self.fill_all(k, seq)
        except MODEL_ERRORS:
            pass  # the model raised at seq's last step: Runner.step reports it
        first = self._first_violation(seq, runner)
        if first is None:
            raise AssertionError(f"the explicit trace of a saturated path does not reproduce {invariant}")
        cut, key = first  # what the explicit replay names first is what it reports
        seq = seq[:cut]
        i = len(seq) - 1
        while i >= 0:
            if self.moves[seq[i]][0] == self._dma:
                shorter = seq[:i] + seq[i + 1:]
                found = self._first_violation(shorter, runner)
                if found is not None and found[1] == key:
                    seq = shorter[:found[0]]
            i = min(i - 1, len(seq) - 1)
        return seq

    def _first_violation(self, seq: list[int], runner: Runner | None = None
                         ) -> tuple[int, tuple[str, str]] | None:
        """(steps up to and including the first violating one, its finding_key), or None."""
        runner = runner or self.runner
        k = runner.start()
        v = runner.check_state(k)
        if v is not None:
            return 0, finding_key(v)
        for i, mid in enumerate(seq):
            ai, args = self.moves[mid]
            _, _, v = runner.step(k, ACTIONS[ai], args)
            if v is not None:
                return i + 1, finding_key(v)
        return None

    def replay(self, path: list[int], violation: Violation | None, *, alone: bool = False) -> Trace:
        """The trace of a path, run through `Runner.step` exactly as `replay` runs it
        (`alone`: checking only the violated invariant, see `runner_for`)."""
        cfg = self.config
        runner = self.runner_for(violation.invariant if alone and violation is not None else None)
        trace = Trace(cfg.design.name, cfg.hw, cfg.bounds)
        k = runner.start()
        v = runner.check_state(k) if not path else None
        for i, mid in enumerate(path):
            ai, args = self.moves[mid]
            ts, _, v = runner.step(k, ACTIONS[ai], args)
            trace.steps.append(ts)
            if v is not None and i + 1 < len(path):
                raise AssertionError(f"replay violates {v.invariant} at step {i + 1} of {len(path)}")
        if v is None:
            raise AssertionError(f"replay of the explorer's path did not reproduce {violation}")
        trace.violation = v
        trace.dump = runner.dump(k)
        return trace

    def trace_of(self, path: list[int], violation: Violation, *, alone: bool = False) -> Trace:
        """The replayable trace of a finding (explicit DMAs if the caches were saturated)."""
        if self.saturate:
            path = self.unsaturate(path, violation.invariant, alone=alone)
        return self.replay(path, violation, alone=alone)


def explore(design: Design, hw: str, bounds: Bounds, invariants: tuple[Invariant, ...],
            depth: int | None = None, max_states: int | None = None, symmetry: bool = True,
            on_progress: Callable[[str], None] | None = None,
            saturate: bool = False, every_violation: bool = False,
            deadline: float | None = None, workers: int = 1,
            max_memory: int | None = None, cluster: Any = None) -> tuple[Explorer, Outcome]:
    """Run the search (on `workers` processes: checker/parallel.py, or on the workers of
    a Dask cluster, `cluster` a distributed.Client: checker/distributed.py; the same
    result either way); if a state breaks an assumption of the symmetry reduction, say
    so and search again without it."""
    config = Config(design, hw, bounds)
    ex = Explorer(config, invariants, symmetry=symmetry, saturate=saturate)
    kw: dict[str, Any] = dict(depth=depth, max_states=max_states, on_progress=on_progress,
                              every_violation=every_violation, deadline=deadline,
                              max_memory=max_memory)

    def search(ex: Explorer) -> Outcome:
        if cluster is not None:
            from checker.distributed import run_distributed

            out: Outcome = run_distributed(ex, cluster, **kw)
            return out
        if workers > 1:
            from checker.parallel import run_parallel

            return run_parallel(ex, workers, **kw)
        return ex.run(**kw)

    try:
        return ex, search(ex)
    except SymmetryUnsupported as e:
        ex = Explorer(config, invariants, symmetry=False, saturate=saturate)
        out = search(ex)
        out.notes.append(f"symmetry reduction off: {e}")
        return ex, out


def summary(out: Outcome) -> str:
    """One line: 'explored 123,456 states to depth 7, no violation' (and why it stopped)."""
    caches = " (caches saturated)" if out.saturated else ""
    head = f"explored {out.states:,} states{caches} to depth {out.depth}"
    if out.violation is not None:
        return f"{head}: {out.violation.invariant} violated at depth {len(out.path or [])}"
    if out.complete:
        return f"{head}, no violation"
    return f"{head}, no violation, INCOMPLETE: stopped at {out.stopped_at}"


def check_explore(design: Design, hw: str, bounds: Bounds, invariants: tuple[Invariant, ...],
                  depth: int | None = None, max_states: int | None = None, symmetry: bool = True,
                  on_progress: Callable[[str], None] | None = None,
                  saturate: bool = False, every_violation: bool = False,
                  deadline: float | None = None, workers: int = 1,
                  max_memory: int | None = None, cluster: Any = None) -> CheckResult:
    """The explorer as a `check` engine: a CheckResult with engine="explore".

    `complete` is False when --depth, --max-states or the deadline stopped the search
    before the state space was exhausted (the CLI then exits 3); `extra["summary"]`
    says so. With `every_violation` the result carries the shortest violation of every
    invariant the world breaks: the first in `trace`, the others in `also`.
    """
    try:
        ex, out = explore(design, hw, bounds, invariants, depth=depth, max_states=max_states,
                          symmetry=symmetry, on_progress=on_progress, saturate=saturate,
                          every_violation=every_violation, deadline=deadline,
                          workers=workers, max_memory=max_memory, cluster=cluster)
    except BootRaised as e:  # a finding in the booted world, before any call
        return CheckResult(
            design=design.name, hw=hw, invariants=tuple(i.id for i in invariants), trace=e.trace(),
            examples=0, steps=0, seconds=0.0, engine="explore", complete=True, extra={
                "summary": f"booting the world: {e.violation.message}", "states": 0,
                "transitions": 0, "depth": 0, "covered": 0, "symmetry": symmetry,
                "stopped_at": None, "saturated": saturate})
    traces: list[Trace] = []
    if every_violation:
        traces = [ex.trace_of(p, v, alone=True) for p, v in out.findings]
    elif out.violation is not None:
        traces = [ex.trace_of(out.path or [], out.violation)]
        # Report what Runner.step (and so `replay`) names first at that step: the search
        # may have noticed another invariant of the same step first.
        out.violation = traces[0].violation
    text = summary(out)
    if every_violation and len(traces) > 1:
        text += "; also " + ", ".join(f"{t.violation.invariant} at depth {len(p)}"
                                      for t, (p, _) in zip(traces[1:], out.findings[1:])
                                      if t.violation is not None)
    if out.notes:
        text += " (" + "; ".join(out.notes) + ")"
    extra: dict[str, object] = {
        "summary": text, "states": out.states, "transitions": out.transitions,
        "depth": out.depth, "covered": out.covered, "symmetry": out.symmetry,
        "stopped_at": out.stopped_at, "saturated": out.saturated,
    }
    ids = tuple(i.id for i in invariants)

    def result(trace: Trace | None) -> CheckResult:
        return CheckResult(design=design.name, hw=hw, invariants=ids, trace=trace,
                           examples=out.states, steps=out.transitions, seconds=out.seconds,
                           engine="explore", complete=out.complete, extra=extra)

    first = result(traces[0] if traces else None)
    first.also = [result(t) for t in traces[1:]]
    return first


__all__ = ["Explorer", "Labels", "IdentityNames", "Outcome", "SymmetryUnsupported",
           "check_explore", "explore", "summary", "supports_symmetry"]
