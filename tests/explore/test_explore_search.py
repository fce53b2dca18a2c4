"""The exhaustive explorer: exact state counts, complete proofs, shortest counterexamples, limits.

The state counts are asserted exactly so that any change to the model (a new
field, a new action, a changed caller contract) shows up here and is looked at:
update the numbers when the change is intended. The counterexample lengths are
minimal because the search is breadth-first, so they are asserted exactly too.
"""

from __future__ import annotations

import pytest

from checker.cli import main
from checker.explore import (
    PFN_LABELS,
    Explorer,
    Labels,
    SymmetryUnsupported,
    check_explore,
    explore,
)
from checker.replay import replay_data
from checker.report import render_trace
from checker.world import Config
from invariants.catalog import CATALOG
from model.bounds import Bounds
from model.designs import get_design

#: The smallest worlds that still have SVA (one process) or a paging domain.
TINY_SVA = Bounds(devices=1, processes=1, paging_domains=0, iova_pages=1, phys_pages=1, max_pasids=2)
TINY_DOMAIN = Bounds(devices=1, processes=0, paging_domains=1, iova_pages=1, phys_pages=1, max_pasids=2)
#: One device, one process, one paging domain: every seed's mechanism fits.
SMALL = Bounds(devices=1, processes=1, paging_domains=1, iova_pages=1, phys_pages=1, max_pasids=2)

#: (bounds, hw) -> (distinct states, depth of the deepest state) for upstream, with
#: symmetry reduction. Update when the model changes on purpose.
UPSTREAM_COUNTS = {
    ("sva", "vtd"): (1352, 15),
    ("sva", "smmuv3"): (1686, 16),
    ("domain", "vtd"): (1396, 15),
    ("domain", "smmuv3"): (1174, 16),
}
TINY = {"sva": TINY_SVA, "domain": TINY_DOMAIN}


@pytest.mark.parametrize("world,hw", sorted(UPSTREAM_COUNTS), ids=lambda v: str(v))
def test_upstream_is_proved_complete_with_a_stable_state_count(world: str, hw: str) -> None:
    r = check_explore(get_design("upstream"), hw, TINY[world], CATALOG)
    states, depth = UPSTREAM_COUNTS[(world, hw)]
    assert r.engine == "explore"
    assert r.trace is None, r.trace and render_trace(r.trace)
    assert r.complete
    assert (r.examples, r.extra["depth"]) == (states, depth), r.extra["summary"]
    assert r.extra["summary"] == f"explored {states:,} states to depth {depth}, no violation"
    assert r.steps > r.examples  # every state has successors, most of them already seen


# design, hw, invariant, length of the shortest counterexample at SMALL
SHORTEST = [
    ("notifier-kfree-early", "vtd", "domain-outlives-notifier", 3),
    ("notifier-kfree-early", "smmuv3", "domain-outlives-notifier", 3),
    ("pasid-freed-at-mm-exit", "vtd", "pasid-not-reused-while-bound", 3),
    ("pasid-freed-at-mm-exit", "smmuv3", "pasid-not-reused-while-bound", 3),
    # without the old domain the driver cannot drop the PASID's master_domain entry: the
    # count drifts at the detach (4 calls), before the stale ASID shows (5)
    ("set-dev-pasid-blocking-2022", "smmuv3", "refcount-matches", 4),
    ("smmu-detach-no-atc-inv", "smmuv3", "no-stale-translation", 5),
]


@pytest.mark.parametrize("design,hw,invariant,length", SHORTEST, ids=[f"{d}-{h}" for d, h, _, _ in SHORTEST])
def test_shortest_counterexample(design: str, hw: str, invariant: str, length: int) -> None:
    d = get_design(design)
    r = check_explore(d, hw, SMALL, CATALOG)
    assert r.trace is not None, r.extra["summary"]
    assert r.violated == invariant
    assert len(r.trace) == length, r.trace.listing()
    assert invariant in d.breaks_on(hw)
    assert str(r.extra["summary"]).endswith(f"{invariant} violated at depth {length}")
    # The trace is the one `replay` produces, hardware lines included.
    assert any(s.hw for s in r.trace.steps)
    again = replay_data(r.trace.to_json())
    assert again.violation is not None and again.violation.invariant == invariant
    text = "\n".join(render_trace(r.trace))
    assert f"VIOLATES {invariant}" in text and f"({length} calls and events" in text


def test_no_shorter_counterexample_exists() -> None:
    """One level less than the shortest: the same search finds nothing, and says it stopped."""
    r = check_explore(get_design("set-dev-pasid-blocking-2022"), "smmuv3", SMALL, CATALOG, depth=3)
    assert r.trace is None and not r.complete
    assert str(r.extra["summary"]).endswith("no violation, INCOMPLETE: stopped at --depth")
    assert r.extra["depth"] == 3


def test_max_states_stops_and_says_so() -> None:
    r = check_explore(get_design("upstream"), "vtd", SMALL, CATALOG, max_states=50)
    assert r.trace is None and not r.complete and r.examples == 50
    assert r.extra["stopped_at"] == "--max-states"
    assert "INCOMPLETE: stopped at --max-states" in str(r.extra["summary"])


def test_progress_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    import checker.explore as explore_mod

    monkeypatch.setattr(explore_mod, "PROGRESS_SECONDS", 0.0)
    seen: list[str] = []
    check_explore(get_design("upstream"), "vtd", SMALL, CATALOG, depth=2, on_progress=seen.append)
    assert seen and all("states/s" in s and "frontier" in s and "depth" in s for s in seen)


def test_symmetry_off_explores_more_states_to_the_same_verdict() -> None:
    on = check_explore(get_design("upstream"), "smmuv3", SMALL, CATALOG, depth=4)
    off = check_explore(get_design("upstream"), "smmuv3", SMALL, CATALOG, depth=4, symmetry=False)
    assert on.trace is None and off.trace is None
    assert on.extra["symmetry"] and not off.extra["symmetry"]
    assert on.examples < off.examples


def test_a_model_exception_is_reported_with_the_calls_that_reach_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from model.core import Kernel

    def broken(self: Kernel, mm: int, iova: int, pa: int, prot: object = None) -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr(Kernel, "cpu_map", broken)
    r = check_explore(get_design("upstream"), "vtd", SMALL, CATALOG)
    assert r.violated == "model-exception" and r.trace is not None and r.trace.violation is not None
    assert r.trace.violation.message == "cpu_map(mm4, 0x0, 0x80000000) raised RuntimeError: boom"
    assert [s.action for s in r.trace.steps] == ["mm_alloc", "cpu_map"]
    assert str(r.extra["summary"]).endswith("model-exception violated at depth 2")


def test_a_model_exception_in_a_saturating_dma_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    from model.core import Kernel

    real = Kernel.hw_fill

    def broken(self: Kernel, dev: str, pasid: int | None, iova: int, access: object = None) -> None:
        if pasid is not None:
            raise RuntimeError("boom")
        real(self, dev, pasid, iova)

    monkeypatch.setattr(Kernel, "hw_fill", broken)
    r = check_explore(get_design("upstream"), "vtd", SMALL, CATALOG, saturate=True)
    assert r.violated == "model-exception" and r.trace is not None and r.trace.violation is not None
    steps = r.trace.steps
    assert "raised RuntimeError: boom" in r.trace.violation.message
    # the saturating DMAs are in the trace as events; the last one raised
    assert steps[-1].action == "dma" and steps[-1].args[1] is not None
    assert [s.action for s in steps if s.action != "dma"] == ["mm_alloc", "iommu_sva_bind_device"]


def test_labels_refuse_a_pointer_that_is_not_a_page_table() -> None:
    labels = Labels(roots={0x5000}, phys={0x80000, 0x80001})
    assert labels.root(0x5000) == 0
    with pytest.raises(SymmetryUnsupported):
        labels.root(0x6000)
    assert labels.pfn(0x80001) == PFN_LABELS and labels.pfn(3) == 3  # identity frames stay
    # Distinct labels must hash apart inside keys (CPython: hash(-1) == hash(-2)).
    assert hash((labels.pfn(0x80001),)) != hash((labels.pfn(0x80000),))


def test_fingerprints_ignore_object_ids_and_table_addresses() -> None:
    """Allocating a domain and a process in either order gives one state."""
    ex = Explorer(Config(get_design("upstream"), "vtd", SMALL), CATALOG)
    k0 = ex.runner.start()
    ex.prepare(k0)
    a, b = k0.copy(), k0.copy()
    a.iommu_paging_domain_alloc("dev0")
    a.mm_alloc()
    b.mm_alloc()
    b.iommu_paging_domain_alloc("dev0")
    assert a.key() != b.key()
    assert ex.fingerprint(a) == ex.fingerprint(b)
    # ...but a mapping in the domain is not the same as one in the process.
    a2, b2 = a.copy(), b.copy()
    dom_a = max(d for d in a2.domains)
    mm_b = max(b2.mms)
    a2.iommu_map(dom_a, 0, 0x8000_0000)
    b2.cpu_map(mm_b, 0, 0x8000_0000)
    assert ex.fingerprint(a2) != ex.fingerprint(b2)


def test_fingerprints_merge_processes_and_pages_that_swap_roles() -> None:
    """Binding the first or the second of two processes, or mapping one physical page
    or the other, gives one state: processes and data pages are interchangeable."""
    b = Bounds(devices=1, processes=2, paging_domains=1, iova_pages=1, phys_pages=2, max_pasids=3)
    ex = Explorer(Config(get_design("upstream"), "smmuv3", b), CATALOG)
    k0 = ex.runner.start()
    ex.prepare(k0)
    first, second = k0.mm_alloc(), k0.mm_alloc()
    a, c = k0.copy(), k0.copy()
    assert not isinstance(a.iommu_sva_bind_device("dev0", first), Exception)
    assert not isinstance(c.iommu_sva_bind_device("dev0", second), Exception)
    assert a.key() != c.key()
    assert ex.fingerprint(a) == ex.fingerprint(c)
    p0, p1 = b.phys()
    a.cpu_map(first, 0, p0)
    c.cpu_map(second, 0, p1)
    assert ex.fingerprint(a) == ex.fingerprint(c)
    a.cpu_map(second, 0, p0)  # now both processes map one page in a, ...
    c.cpu_map(first, 0, p0)  # ... and two different pages in c
    assert ex.fingerprint(a) != ex.fingerprint(c)


def test_explore_falls_back_without_a_canonical_driver_state(monkeypatch: pytest.MonkeyPatch) -> None:
    import checker.explore as explore_mod

    monkeypatch.setattr(explore_mod, "supports_symmetry", lambda k: False)
    ex, out = explore(get_design("upstream"), "vtd", SMALL, CATALOG, depth=2)
    assert not out.symmetry and not out.complete


def _run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as e:
        main(argv)
        raise SystemExit(0)
    return int(e.value.code or 0), capsys.readouterr().out


def test_cli_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    tiny = "devices=1,processes=1,paging_domains=0,iova_pages=1,phys_pages=1,max_pasids=2"
    small = "devices=1,processes=1,paging_domains=1,iova_pages=1,phys_pages=1,max_pasids=2"
    code, out = _run_cli(["check", "--engine", "explore", "--hw", "vtd", "--bounds", tiny], capsys)
    assert code == 0 and "explored 1,352 states to depth 15, no violation" in out
    code, out = _run_cli(["check", "--engine", "explore", "--hw", "vtd", "--bounds", small,
                          "--depth", "2"], capsys)
    assert code == 3 and "INCOMPLETE: stopped at --depth" in out
    code, out = _run_cli(["check", "--engine", "explore", "--hw", "smmuv3", "--bounds", small,
                          "--design", "smmu-detach-no-atc-inv"], capsys)
    assert code == 1 and "VIOLATES no-stale-translation" in out


def test_cli_saturated_caches(capsys: pytest.CaptureFixture[str]) -> None:
    tiny = "devices=1,processes=1,paging_domains=0,iova_pages=1,phys_pages=1,max_pasids=2"
    small = "devices=1,processes=1,paging_domains=1,iova_pages=1,phys_pages=1,max_pasids=2"
    code, out = _run_cli(["check", "--engine", "explore", "--saturate-caches", "--hw", "vtd",
                          "--bounds", tiny], capsys)
    assert code == 0 and "explored 350 states (caches saturated) to depth 12, no violation" in out
    assert "350 states / 2,362 transitions (caches saturated)" in out
    code, out = _run_cli(["check", "--engine", "explore", "--saturate-caches", "--hw", "smmuv3",
                          "--bounds", small, "--design", "smmu-detach-no-atc-inv"], capsys)
    assert code == 1 and "VIOLATES no-stale-translation" in out
    assert "4. dma(dev0, pasid 1, iova 0x0) -> may reach pa 0x80000000 via walk" in out
    # explorer options with the Hypothesis engine: one line, exit 2
    with pytest.raises(SystemExit) as e:
        main(["check", "--saturate-caches", "--depth", "3"])
    err = capsys.readouterr().err
    assert e.value.code == 2
    assert err == "iommucheck: error: --depth, --saturate-caches only apply to --engine explore\n"
