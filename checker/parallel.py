"""The explorer on every core: a level-synchronous breadth-first search over worker
processes, the visited set partitioned by fingerprint (`iommucheck check --engine
explore --workers N`).

Each of N forked workers owns the states whose fingerprint is `fp % N`: their part of
the visited set, their parent pointers and the part of the frontier they expand. A
level is two rounds. In *expand* every worker steps each of its frontier states
through every enabled move (as `Explorer.run` does: copy, run, saturate, the step
invariants, the fingerprint), keeps the children it owns and sends the others, pickled,
to their owners (through the coordinator: pipes, no home-made protocol beyond "a
list of commands, a list of replies"). In *ingest* every owner merges what it was sent,
drops what it has seen, stores the rest and checks their state invariants. Only then
does the next level start, so every counterexample found is at the smallest depth.

Why the result is the plain search's, state for state. The plain search visits a
level in discovery order: a state is ranked by the position of its first discoverer
in the level before, then by which of that state's moves found it (the move's index
in the enumeration of `ACTIONS` and `enabled_args`). Each state here carries that rank
(a tuple of move indices, one per level), an owner keeps, of several discoveries of
one state, the least-ranked one, and the coordinator picks, of the violations of a
level, the least-ranked, exactly as the plain search meets them one after the other.
Where the plain search stops inside a level (a violation, a model exception,
--max-states), the counts of states and transitions are those with a smaller rank,
so `states`, `transitions`, the depth, the parent pointers and hence every
counterexample equal the single-process search's (tests/explore/test_explore_parallel.py
checks this on breaking and holding designs). What is not the same: the wall clock,
and the peak memory (each worker holds its part of a level, and a level is expanded
whole before the coordinator looks at --max-states).

Fingerprints are `hash()` of canonical keys, and Python salts `str` hashes per
process: the workers are forked, so they share the coordinator's salt.
"""

from __future__ import annotations

import io
import multiprocessing
import pickle
import sys
import time
import traceback
from array import array
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Callable, Protocol

from invariants.base import Violation
from invariants.model_exception import MODEL_EXCEPTION
from model.actions import ACTIONS, Args
from model.core import Kernel

from checker.explore import PROGRESS_SECONDS, Explorer, Outcome, SymmetryUnsupported, rss_bytes
from checker.userdesign import USER_CLASSES, USER_MODULE

#: a state's rank within its level: the move index taken at each level from boot
Rank = tuple[int, ...]
#: where an event of a level falls in the plain search's order: (rank of the
#: transition, STEP / ADD / STATE), the three things that happen at one transition
Key = tuple[Rank, int]
STEP, ADD, STATE = 0, 1, 2  # step invariants (or the model raising), storing the child, its state invariants


@dataclass(frozen=True)
class Found:
    """A violation a worker met: at transition `key`, from the state `source` (a global
    id) by `move`; for a state invariant, in the new state `target`."""

    key: Key
    source: int
    move: tuple[int, Args]
    target: int
    violation: Violation


# -- states across processes ---------------------------------------------------------------------
class _StatePickler(pickle.Pickler):
    """Pickles states without what every state shares (the design, the driver object: a
    design file's lambdas and classes do not pickle) and with a design file's classes
    by name (checker/userdesign.py USER_CLASSES; the workers are forked, so they have them)."""

    def __init__(self, f: io.BytesIO, shared: dict[int, str]) -> None:
        super().__init__(f, protocol=pickle.HIGHEST_PROTOCOL)
        self.shared = shared

    def persistent_id(self, obj: Any) -> Any:
        token = self.shared.get(id(obj))
        if token is not None:
            return token
        if isinstance(obj, type) and obj.__module__ == USER_MODULE:
            return ("class", obj.__qualname__)
        return None


class _StateUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, shared: dict[str, Any]) -> None:
        super().__init__(io.BytesIO(data))
        self.shared = shared

    def persistent_load(self, pid: Any) -> Any:
        if isinstance(pid, tuple):
            return USER_CLASSES[pid[1]]
        return self.shared[pid]


# -- the worker ------------------------------------------------------------------------------
class _Worker:
    """One worker's part of the search (runs in the forked process)."""

    def __init__(self, w: int, n: int, ex: Explorer, k0: Kernel, every: bool) -> None:
        self.w, self.n, self.ex, self.every = w, n, ex, every
        self.seen: set[int] = set()
        self.parent = array("q")  # local index -> global id of the parent (-1: boot)
        self.via: list[tuple[int, Args] | None] = []  # local index -> the move from the parent
        self.frontier: list[tuple[Rank, Kernel, int]] = []
        self.step_invs = list(ex.step_invariants)
        self.state_invs = [i for i in ex.runner.invariants if i.check_state is not None]
        self.indexed = [(i, a) for i, a in enumerate(ACTIONS) if not (ex.saturate and i == ex._dma)]
        # this level's bookkeeping
        self.local: dict[int, tuple[Rank, int, tuple[int, Args], Kernel]] = {}
        self.expanded: list[tuple[Rank, int]] = []  # (rank, transitions done) per frontier state
        self.new_ranks: list[Rank] = []
        self.by_token: dict[str, Any] = {"design": k0.design, "driver": k0.driver}
        self.tokens = {id(v): t for t, v in self.by_token.items()}
        fp0 = ex.fingerprint(k0)
        if fp0 % n == w:
            self.seen.add(fp0)
            self.parent.append(-1)
            self.via.append(None)
            self.frontier.append(((), k0, w))

    def gid(self, index: int) -> int:
        return index * self.n + self.w

    def expand(self, deadline: float | None) -> tuple[list[bytes], list[Found], bool]:
        """Step every frontier state; children owned elsewhere go out, pickled."""
        ex, n, b = self.ex, self.n, self.ex.bounds
        out: list[dict[int, tuple[Rank, int, tuple[int, Args], Kernel]]] = [{} for _ in range(n)]
        out[self.w] = self.local = {}
        found: list[Found] = []
        self.expanded = []
        timed_out = stop = False
        self.frontier.sort(key=lambda t: t[0])
        for rank, k, gid in self.frontier:
            if timed_out or stop:
                break  # every later state of ours ranks after what stops the search
            k.freeze()
            ti = done = 0
            for ai, action in self.indexed:
                for args in action.enabled_args(k, b):
                    ti += 1
                    r = rank + (ti,)
                    child, result, raised = ex._successor(k, action, args)
                    if raised is not None:
                        found.append(Found((r, STEP), gid, (ai, args), -1, raised))
                        stop = True
                        break
                    done += 1
                    vs = ex._step_violations(k, action, args, result, child, self.step_invs,
                                             self.every)
                    found += [Found((r, STEP), gid, (ai, args), -1, v) for v in vs]
                    fp = ex.fingerprint(child)
                    if not (fp % n == self.w and fp in self.seen):
                        table = out[fp % n]
                        prev = table.get(fp)
                        if prev is None or r < prev[0]:
                            table[fp] = (r, gid, (ai, args), child)
                    if vs and not self.every:  # the plain search stops at its first violation
                        stop = True
                        break
                if stop:
                    break
            self.expanded.append((rank, done))
            k.thaw()
            if deadline is not None and time.perf_counter() >= deadline:
                timed_out = True
        self.frontier = []
        sent: list[bytes] = []
        for dest, table in enumerate(out):
            if dest == self.w:
                sent.append(b"")
                continue
            for _, _, _, child in table.values():
                self._clean(child)
            if table:
                f = io.BytesIO()
                _StatePickler(f, self.tokens).dump(table)
                sent.append(f.getvalue())
            else:
                sent.append(b"")
        return sent, found, timed_out

    @staticmethod
    def _clean(child: Kernel) -> None:
        """Frontier states keep no history: WARNs, hardware log, memo."""
        child.thaw()
        child.warnings = []
        child.driver.take_hw_log(child)

    def ingest(self, batches: list[bytes]) -> tuple[list[Found], int]:
        """Store the new states of this level (ours and those sent to us), least rank first."""
        merged = self.local
        for data in batches:
            if not data:
                continue
            for fp, item in _StateUnpickler(data, self.by_token).load().items():
                prev = merged.get(fp)
                if prev is None or item[0] < prev[0]:
                    merged[fp] = item
        self.local = {}
        found: list[Found] = []
        ordered = sorted(((item[0], fp, item) for fp, item in merged.items() if fp not in self.seen),
                         key=lambda t: t[0])
        self.new_ranks = [r for r, _, _ in ordered]
        for r, fp, (_, pgid, move, child) in ordered:
            self.seen.add(fp)
            self.parent.append(pgid)
            self.via.append(move)
            gid = self.gid(len(self.parent) - 1)
            vs = self.ex._state_violations(child, self.state_invs, self.every)
            found += [Found((r, STATE), pgid, move, gid, v) for v in vs]
            self._clean(child)
            self.frontier.append((r, child, gid))
        return found, len(self.frontier)

    def count(self, key: Key) -> tuple[int, int]:
        """(new states, transitions) of this level the plain search had met before `key`."""
        r, sub = key
        states = bisect_left(self.new_ranks, r) if sub != STATE else bisect_right(self.new_ranks, r)
        parent, ti = r[:-1], r[-1]
        transitions = 0
        for p, done in self.expanded:
            if p < parent:
                transitions += done
            elif p == parent:
                transitions += min(ti, done)
        return states, transitions

    def drop(self, ids: list[str]) -> None:
        self.step_invs = [i for i in self.step_invs if i.id not in ids]
        self.state_invs = [i for i in self.state_invs if i.id not in ids]

    def visited_bytes(self) -> int:
        return (sys.getsizeof(self.seen) + sum(map(sys.getsizeof, self.seen))
                + self.parent.itemsize * len(self.parent) + sys.getsizeof(self.via))


    def handle(self, cmd: str, *arg: Any) -> tuple[Any, ...]:
        """One command of the coordinator, its reply (the protocol of every pool)."""
        if cmd == "expand":
            self.drop(arg[0])
            sent, found, timed_out = self.expand(arg[1])
            return sent, found, timed_out, sum(d for _, d in self.expanded), rss_bytes()
        if cmd == "ingest":
            found, frontier = self.ingest(arg[0])
            return found, frontier, len(self.seen), rss_bytes()
        if cmd == "count":
            return (self.count(arg[0]),)
        if cmd == "ranks":
            return (self.new_ranks,)
        if cmd == "tree":
            return self.parent, self.via
        if cmd == "size":
            return (self.visited_bytes(),)
        raise ValueError(f"unknown explorer worker command {cmd!r}")


def reply(run: Callable[[], tuple[Any, ...]]) -> tuple[Any, ...]:
    """A worker's reply: ("ok", ...), or what stopped it for the coordinator to raise
    (`unwrap`): the symmetry reduction's assumption broken, or a traceback."""
    try:
        return ("ok", *run())
    except SymmetryUnsupported as e:
        return ("symmetry", str(e))
    except BaseException:  # noqa: B036 - reported to the coordinator, which raises it
        return ("error", traceback.format_exc())


def unwrap(r: tuple[Any, ...], who: str) -> tuple[Any, ...]:
    """The reply's values; SymmetryUnsupported or WorkerFailed as the worker had them."""
    if r[0] == "symmetry":
        raise SymmetryUnsupported(r[1])
    if r[0] == "error":
        raise WorkerFailed(f"{who} raised:\n{r[1]}")
    return tuple(r[1:])


def _serve(w: int, n: int, ex: Explorer, k0: Kernel, every: bool, conn: Connection) -> None:
    """A forked worker's loop: a command in, a reply out, until "stop"."""
    made: list[_Worker] = []

    def start() -> tuple[Any, ...]:
        made.append(_Worker(w, n, ex, k0, every))
        return ()

    conn.send(reply(start))
    while made:  # (a worker that failed to start has said so and ends)
        cmd, *arg = conn.recv()
        if cmd == "stop":
            conn.send(("ok",))
            return
        conn.send(reply(lambda: made[0].handle(cmd, *arg)))


# -- the coordinator ---------------------------------------------------------------------------
class WorkerFailed(RuntimeError):
    """A worker raised outside any model step (a bug of the search, not of the model)."""


class Pool(Protocol):
    """The workers of one search: every pool speaks `_Worker.handle`'s commands."""

    def all(self, *cmd: Any) -> list[tuple[Any, ...]]: ...
    def each(self, cmds: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]: ...
    def close(self) -> None: ...


class ForkPool:
    """Forked worker processes on this machine, a pipe each."""

    def __init__(self, n: int, ex: Explorer, k0: Kernel, every: bool) -> None:
        ctx = multiprocessing.get_context("fork")
        self.conns: list[Connection] = []
        self.procs = []
        for w in range(n):
            mine, theirs = ctx.Pipe()
            p = ctx.Process(target=_serve, args=(w, n, ex, k0, every, theirs), daemon=True)
            p.start()
            theirs.close()
            self.conns.append(mine)
            self.procs.append(p)
        self.gather()

    def gather(self) -> list[tuple[Any, ...]]:
        replies = []
        for c in self.conns:
            try:
                r = c.recv()
            except EOFError:
                raise WorkerFailed("an explorer worker died (out of memory?)") from None
            replies.append(unwrap(r, "an explorer worker"))
        return replies

    def all(self, *cmd: Any) -> list[tuple[Any, ...]]:
        for c in self.conns:
            c.send(cmd)
        return self.gather()

    def each(self, cmds: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        for c, cmd in zip(self.conns, cmds):
            c.send(cmd)
        return self.gather()

    def close(self) -> None:
        for c in self.conns:
            try:
                c.send(("stop",))
            except OSError:
                pass
        for p in self.procs:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()


def run_parallel(ex: Explorer, workers: int, depth: int | None = None,
                 max_states: int | None = None, on_progress: Callable[[str], None] | None = None,
                 *, every_violation: bool = False, deadline: float | None = None,
                 max_memory: int | None = None,
                 make_pool: Callable[[int, Explorer, Kernel, bool], Pool] | None = None) -> Outcome:
    """`Explorer.run` on `workers` processes, with the same result (see the module
    docstring). `max_memory` (bytes, the coordinator's and workers' resident memory
    together) stops the search between levels, INCOMPLETE, like --max-states.
    `make_pool` gives the workers (default: forked processes, ForkPool; a Dask
    cluster: checker/distributed.py)."""
    start = time.perf_counter()
    k0, out = ex.boot()
    if out.violation is not None:
        out.seconds = time.perf_counter() - start
        return out
    state_invs = [i for i in ex.runner.invariants if i.check_state is not None]
    live: set[str] = {i.id for i in ex.step_invariants} | {i.id for i in state_invs}
    vs = ex._state_violations(k0, state_invs, every_violation)
    if vs:  # the booted world: as the plain search, stop or go on without these invariants
        for v in vs:
            out.findings.append(([], v))
            live.discard(v.invariant)
        if not every_violation or not live:
            out.path, out.violation = [], vs[0]
            if every_violation and not live:
                out.complete, out.stopped_at = False, "every invariant violated"
            out.seconds = time.perf_counter() - start
            return out
    k0.thaw()
    pending: list[Found] = []  # findings in the order met; their paths resolved at the end
    stopper: Found | None = None
    pool = (make_pool or ForkPool)(workers, ex, k0, every_violation)
    try:
        level = 0
        total = 1  # states stored before this level
        next_report = start + PROGRESS_SECONDS
        while True:
            if depth is not None and level >= depth:
                out.complete, out.stopped_at = False, "--depth"
                break
            dropped = [i.id for i in ex.runner.invariants if i.id not in live]
            replies = pool.all("expand", dropped, deadline)
            found: list[Found] = [f for r in replies for f in r[1]]
            timed_out = any(r[2] for r in replies)
            routed = [[replies[src][0][dest] for src in range(workers) if src != dest]
                      for dest in range(workers)]
            ingested = pool.each([("ingest", batch) for batch in routed])
            found += [f for r in ingested for f in r[0]]
            frontier = sum(r[1] for r in ingested)
            seen = sum(r[2] for r in ingested)
            memory = rss_bytes() + sum(r[3] for r in ingested)
            over: Key | None = None
            if max_states is not None and seen > max_states:
                # the plain search stops at the new state that would be one too many
                ranks = sorted(r for (rs,) in pool.all("ranks") for r in rs)
                over = (ranks[max_states - total], ADD)
                found = [f for f in found if f.key < over]
            stop_key, stopper = _take(found, every_violation, live, out, pending)
            why = "violation" if stop_key is not None else ""
            if stop_key is None and over is not None:
                stop_key, why = over, "--max-states"
            if stop_key is not None:
                counts = pool.all("count", stop_key)
                out.states = total + sum(c[0][0] for c in counts)
                out.transitions += sum(c[0][1] for c in counts)
                out.depth = level + 1
                if why == "--max-states":
                    out.complete, out.stopped_at = False, why
                break
            out.transitions += sum(r[3] for r in replies)
            total = out.states = seen
            if timed_out or (deadline is not None and time.perf_counter() >= deadline):
                out.complete, out.stopped_at = False, "the time budget"
                out.depth = level + 1
                break
            out.covered = level + 1  # every sequence of level + 1 steps was checked
            out.peak_frontier = max(out.peak_frontier, frontier)
            if max_memory is not None and memory > max_memory:
                out.complete, out.stopped_at = False, "--max-memory"
                out.depth = level + 1 if frontier else level
                break
            if not frontier:
                break
            level += 1
            out.depth = level
            if on_progress is not None and (now := time.perf_counter()) >= next_report:
                next_report = now + PROGRESS_SECONDS
                on_progress(f"{seen:,} states, {seen / max(now - start, 1e-9):,.0f} states/s, "
                            f"frontier {frontier:,}, depth {level}, {workers} workers, "
                            f"{memory / 2**20:,.0f} MiB")
        out.visited_bytes = sum(r[0] for r in pool.all("size"))
        if pending:
            trees = pool.all("tree")
            paths = {id(f): _path(ex, trees, workers, f) for f in pending}
            out.findings += [(paths[id(f)], f.violation) for f in pending]
            if stopper is not None:
                out.path, out.violation = paths[id(stopper)], stopper.violation
            else:
                out.path, out.violation = out.findings[0]
        elif out.findings:  # only the booted world's (every_violation)
            out.path, out.violation = out.findings[0]
    finally:
        pool.close()
    out.seconds = time.perf_counter() - start
    return out


def _take(found: list[Found], every: bool, live: set[str], out: Outcome,
          pending: list[Found]) -> tuple[Key | None, Found | None]:
    """This level's findings in the plain search's order: record each first violation
    of an invariant still looked for (pending) and drop the invariant from `live`;
    return where the plain search stops in this level, if it does, and the finding it
    reports. (The plain search records a whole group found at one state or transition
    before it decides to stop, and reports the group's first.)"""
    ordered = sorted(found, key=lambda f: f.key)
    i = 0
    while i < len(ordered):
        j = i
        while j < len(ordered) and ordered[j].key == ordered[i].key:
            j += 1
        group = [f for f in ordered[i:j]
                 if f.violation.invariant == MODEL_EXCEPTION or f.violation.invariant in live]
        i = j
        if not group:
            continue
        for f in group:
            pending.append(f)
            live.discard(f.violation.invariant)
        if not every or any(f.violation.invariant == MODEL_EXCEPTION for f in group):
            return group[0].key, group[0]
        if not live:
            out.complete, out.stopped_at = False, "every invariant violated"
            return group[0].key, group[0]
    return None, None


def _path(ex: Explorer, trees: list[tuple[Any, ...]], n: int, f: Found) -> list[int]:
    """The move ids from boot to the finding (the last move is the violating one for a
    step invariant, the one into the violating state for a state invariant)."""
    moves: list[tuple[int, Args]] = [f.move]
    g = f.source
    while g >= 0:
        parent, via = trees[g % n][0], trees[g % n][1]
        i = g // n
        if via[i] is None:
            break
        moves.append(via[i])
        g = parent[i]
    moves.reverse()
    return [ex._move(ai, args) for ai, args in moves]


__all__ = ["ForkPool", "Pool", "reply", "run_parallel", "unwrap", "WorkerFailed"]
