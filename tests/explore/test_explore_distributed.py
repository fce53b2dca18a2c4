"""The explorer on a Dask cluster (checker/distributed.py) gives the plain search's result.

The test starts a local cluster of two worker processes (forked from this one, so
that they hash alike: see checker/distributed.py) and compares verdict, state and
transition counts, depth and the shortest counterexample with the single-process
search; and a cluster whose workers hash differently is refused in one line."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from checker.explore import Explorer, Outcome, explore
from invariants.catalog import CATALOG
from model.bounds import Bounds
from model.designs import get_design

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

TINY = Bounds(devices=1, processes=1, paging_domains=0, iova_pages=1, phys_pages=1, max_pasids=2)
SMALL = Bounds(devices=1, processes=1, paging_domains=1, iova_pages=1, phys_pages=1, max_pasids=2)


def _cluster(method: str) -> Any:
    with dask.config.set({"distributed.worker.multiprocessing-method": method}):
        return distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                        dashboard_address=":0")


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    cluster = _cluster("fork")
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def _facts(ex: Explorer, o: Outcome) -> dict[str, Any]:
    return {"states": o.states, "transitions": o.transitions, "depth": o.depth,
            "complete": o.complete, "violation": None if o.violation is None else o.violation.invariant,
            "path": tuple(ex.moves[m] for m in o.path or []),
            "findings": [(tuple(ex.moves[m] for m in p), v.invariant) for p, v in o.findings]}


@pytest.mark.parametrize("design,hw,bounds,every", [
    ("upstream", "vtd", TINY, False),
    ("upstream", "smmuv3", TINY, False),
    ("notifier-kfree-early", "vtd", SMALL, False),
    ("aux-2018-unguarded", "smmuv3", SMALL, True),
])
def test_cluster_search_is_the_plain_search(client: Any, design: str, hw: str, bounds: Bounds,
                                            every: bool) -> None:
    d = get_design(design)
    on_cluster = _facts(*explore(d, hw, bounds, tuple(CATALOG), saturate=True, cluster=client,
                                 every_violation=every))
    plain = _facts(*explore(d, hw, bounds, tuple(CATALOG), saturate=True, every_violation=every))
    assert on_cluster == plain
    assert len(client.scheduler_info()["workers"]) == 2


def test_workers_that_hash_differently_are_refused() -> None:
    """Spawned workers (not forked) have their own hash(None) on Python 3.11 and their own
    str salt unless PYTHONHASHSEED is set: their fingerprints could not meet."""
    import sys

    from checker.distributed import ClusterError

    if sys.version_info >= (3, 12):
        pytest.skip("from Python 3.12 hash(None) is a constant; only the str salt can differ")
    cluster = _cluster("spawn")
    try:
        with distributed.Client(cluster) as c:
            with pytest.raises(ClusterError, match="the Dask workers hash differently"):
                explore(get_design("upstream"), "vtd", TINY, tuple(CATALOG), saturate=True, cluster=c)
    finally:
        cluster.close()
