"""The explorer past one machine: the partitioned search of checker/parallel.py on a
Dask cluster (`iommucheck check --engine explore --cluster ADDRESS`, optional extra
`pip install iommucheck[distributed]`).

Each Dask worker holds one Dask actor, an `_ActorWorker`, which is a
checker.parallel `_Worker`: its share of the visited set (fingerprint modulo the
number of workers), its parent pointers and its part of the frontier. The
coordinator (this process) sends each level's two rounds, expand and ingest, to the
actors and routes the pickled states each sends to the owners; the level-synchronous
protocol, the ranks and hence the result (states, depth, shortest counterexamples)
are checker/parallel.py's, exactly. Dask does the transport, the serialisation of
the messages and the workers' lifecycle; nothing here is a cluster protocol of our
own.

Why Dask and not Ray, measured here on one 2-core machine, both under the same
load (an explorer run on both cores), with a local cluster and a trivial actor:
Dask started in 1.4 s, an actor call took 3 ms and moving 8 MiB 45 ms; Ray started
in 4.1 s, 17 ms a call and 181 ms for 8 MiB, and installs 240 MB (its native
runtime, object store and daemons) where Dask is two pure-Python packages. A level
of the two-device world moves a few MiB and takes seconds to expand, so the
transport is not what limits either; Dask is lighter and faster where it matters.

What a cluster needs: the same iommucheck on every worker (the actors import
checker.*), the design by name (a built-in design, or a design file at the same
path on every worker), and workers that hash alike: fingerprints are `hash()` of
canonical keys, Python salts `str` hashes per process (one PYTHONHASHSEED on every
worker fixes that) and, on Python 3.11, hash(None) is None's address, which differs
between processes that were not forked from one parent (from 3.12 it is a
constant). So on 3.11 the workers of one machine forked from one process (Dask's
`distributed.worker.multiprocessing-method: fork`, as the test's local cluster
does); across machines, Python 3.12 or later. The actors report a probe hash;
workers that disagree are refused in one line, never searched with fingerprints
that cannot meet.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from invariants.catalog import get as get_invariants
from model.bounds import Bounds
from model.core import Kernel

from checker.explore import Explorer, SymmetryUnsupported
from checker.inputs import InputError
from checker.parallel import _Worker, reply, unwrap

#: hashed by every actor: equal results mean one str-hash salt (PYTHONHASHSEED) and, on
#: Python 3.11, one hash(None) (it is the address of None there, constant from 3.12)
HASH_PROBE = ("iommucheck fingerprint probe", None)


class ClusterError(InputError):
    """A cluster that cannot run the search (unreachable, no workers, mixed hash salts)."""


def _spec(ex: Explorer) -> dict[str, Any]:
    """What an actor needs to build the same Explorer: names and values, no objects."""
    from checker.userdesign import LOADED

    c = ex.config
    return {"design": c.design.name, "design_file": LOADED.get(c.design.name),
            "hw": c.hw, "bounds": asdict(c.bounds),
            "invariants": [i.id for i in ex.runner.invariants], "symmetry": ex.symmetry,
            "saturate": ex.saturate}


def _build(spec: dict[str, Any]) -> tuple[Explorer, Kernel]:
    """The coordinator's Explorer and booted world, rebuilt from the spec on a worker."""
    from model.designs import get_design

    from checker.userdesign import load_design_file
    from checker.world import Config

    design = (load_design_file(spec["design_file"]) if spec["design_file"]
              else get_design(spec["design"]))
    bounds = Bounds(**spec["bounds"])
    ex = Explorer(Config(design, spec["hw"], bounds), get_invariants(spec["invariants"]),
                  symmetry=spec["symmetry"], saturate=spec["saturate"])
    k0, _ = ex.boot()  # (a boot DMA that raises ended the search in the coordinator)
    k0.thaw()
    return ex, k0


class _ActorWorker:
    """A Dask actor around one `_Worker` (built on the worker from the spec)."""

    def __init__(self, spec: dict[str, Any], w: int, n: int, every: bool) -> None:
        self.error: str | None = None
        try:
            ex, k0 = _build(spec)
            self.me: _Worker | None = _Worker(w, n, ex, k0, every)
        except SymmetryUnsupported as e:
            self.me, self.error = None, f"symmetry:{e}"

    def probe(self) -> tuple[int, str | None]:
        return hash(HASH_PROBE), self.error

    def call(self, cmd: str, *arg: Any) -> tuple[Any, ...]:
        me = self.me
        assert me is not None
        return reply(lambda: me.handle(cmd, *arg))


class DaskPool:
    """One actor on each worker of a Dask cluster (a `checker.parallel.Pool`)."""

    def __init__(self, client: Any, ex: Explorer, every: bool) -> None:
        workers = sorted(client.scheduler_info()["workers"])
        if not workers:
            raise ClusterError("the Dask cluster has no workers")
        n = len(workers)
        spec = _spec(ex)
        futures = [client.submit(_ActorWorker, spec, w, n, every, actor=True, workers=[addr],
                                 pure=False) for w, addr in enumerate(workers)]
        self.actors = [f.result() for f in futures]
        probes = [a.probe().result() for a in self.actors]
        for _, error in probes:
            if error is not None and error.startswith("symmetry:"):
                raise SymmetryUnsupported(error.removeprefix("symmetry:"))
        if len({h for h, _ in probes}) > 1:
            raise ClusterError(
                "the Dask workers hash differently, so their fingerprints would not meet: start "
                "every worker with one PYTHONHASHSEED (e.g. 0) and, on Python 3.11, where "
                "hash(None) is an address, forked from one process (Dask's "
                "distributed.worker.multiprocessing-method: fork); from Python 3.12 the "
                "seed alone does")
        self.n = n

    def _gather(self, futures: list[Any]) -> list[tuple[Any, ...]]:
        return [unwrap(f.result(), "an explorer actor") for f in futures]

    def all(self, *cmd: Any) -> list[tuple[Any, ...]]:
        return self._gather([a.call(*cmd) for a in self.actors])

    def each(self, cmds: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        return self._gather([a.call(*c) for a, c in zip(self.actors, cmds)])

    def close(self) -> None:
        self.actors = []


def connect(address: str) -> Any:
    """A Dask client of the scheduler at `address` (ClusterError in one line)."""
    try:
        from distributed import Client
    except ModuleNotFoundError:
        raise ClusterError("--cluster needs Dask: pip install 'iommucheck[distributed]'") from None
    try:
        return Client(address, timeout=10)  # type: ignore[no-untyped-call]
    except (OSError, TimeoutError, ValueError) as e:
        raise ClusterError(f"cannot reach the Dask scheduler at {address}: {e}") from None


def run_distributed(ex: Explorer, client: Any, **kw: Any) -> Any:
    """checker.parallel.run_parallel with the cluster's workers."""
    from checker.parallel import run_parallel

    n = len(client.scheduler_info()["workers"])
    if n == 0:
        raise ClusterError("the Dask cluster has no workers")

    def make_pool(workers: int, ex: Explorer, k0: Kernel, every: bool) -> DaskPool:
        return DaskPool(client, ex, every)

    return run_parallel(ex, n, make_pool=make_pool, **kw)


__all__ = ["ClusterError", "DaskPool", "connect", "run_distributed"]
