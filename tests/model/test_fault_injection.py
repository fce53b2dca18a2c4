"""Fault injection (bound `faults`, the `fail_nth` event, `Kernel.may_fail`).

fail_nth(n) arms the n-th fault point of the next call, like the kernel's
/proc/self/task/<tid>/fail-nth: the point fails with -ENOMEM, the caller takes the
kernel's error path, and the armed fault is gone after that one call whether or
not the call reached its n-th point.
"""

from __future__ import annotations

import errno
import json

import pytest

from checker.worlds import with_design_bounds
from checker.check import check_hypothesis
from checker.explore import check_explore
from checker.replay import replay_data, run_calls
from checker.run import Runner
from checker.world import Config
from invariants.catalog import CATALOG, get
from model.actions import ACTIONS, ACTIONS_BY_NAME, MAX_FAULT_POINTS, Args
from model.bounds import Bounds, BoundsError
from model.core import Kernel
from model.designs import DESIGNS, get_design
from model.objects import ErrPtr

ENOMEM = -errno.ENOMEM
SHARED = Bounds(devices=0, shared_group=True, processes=0, paging_domains=1, iova_pages=1,
                phys_pages=1, max_pasids=2, faults=1)
SVA = Bounds(devices=1, processes=1, paging_domains=0, iova_pages=1, phys_pages=1, max_pasids=2,
             faults=1)
PAGING = Bounds(devices=1, processes=0, paging_domains=1, iova_pages=1, phys_pages=1, max_pasids=2,
                faults=1)
VARIANT = "set-group-pasid-no-rollback"


def _runner(b: Bounds, hw: str = "vtd", design: str = "upstream") -> tuple[Runner, Kernel]:
    r = Runner(Config(get_design(design), hw, b), tuple(CATALOG))
    return r, r.start()


def _do(r: Runner, k: Kernel, name: str, *args: object) -> object:
    ts, result, v = r.step(k, ACTIONS_BY_NAME[name], tuple(args))
    assert v is None, v.message
    return result


def _enabled(k: Kernel, b: Bounds) -> list[Args]:
    k.freeze()
    try:
        return list(ACTIONS_BY_NAME["fail_nth"].enabled_args(k, b))
    finally:
        k.thaw()


def _api(k: Kernel) -> tuple[object, ...]:
    """Everything a failed call must leave as it was (the key without the fault fields)."""
    c = k.copy()
    c.fail_nth, c.faults_left = None, 0
    return c.key()


# -- bounds and arming ---------------------------------------------------------------------
def test_faults_bound_is_validated() -> None:
    assert Bounds().faults == 0
    assert Bounds.parse("faults=3").faults == 3
    with pytest.raises(BoundsError, match="faults=4: 0..3"):
        Bounds.parse("faults=4")


def test_fail_nth_is_never_enabled_without_the_bound() -> None:
    b = Bounds(devices=1, processes=1)
    _, k = _runner(b)
    assert k.faults_left == 0 and k.fail_nth is None
    assert _enabled(k, b) == []
    assert not ACTIONS_BY_NAME["fail_nth"].exists(b)


def test_arming_takes_one_fault_and_none_while_armed() -> None:
    r, k = _runner(PAGING)
    assert _enabled(k, PAGING) == [(n,) for n in range(1, MAX_FAULT_POINTS + 1)]
    key0 = k.key()
    _do(r, k, "fail_nth", 2)
    assert (k.fail_nth, k.faults_left) == (2, 0)
    assert k.key() != key0  # the armed fault is part of the state
    assert _enabled(k, PAGING) == []


def test_armed_fault_lasts_one_call_even_if_not_reached() -> None:
    r, k = _runner(PAGING)
    _do(r, k, "fail_nth", 4)
    dom = _do(r, k, "iommu_paging_domain_alloc", "dev0")  # one fault point only
    assert isinstance(dom, int)
    assert k.fail_nth is None and k.injected_at == []
    assert _do(r, k, "iommu_attach_device", dom, "dev0") == 0  # not failed: disarmed


def test_events_do_not_consume_the_armed_fault() -> None:
    r, k = _runner(PAGING)
    _do(r, k, "fail_nth", 1)
    _do(r, k, "dma", "dev0", None, 0)  # the device, not the task: fail-nth is per task
    assert k.fail_nth == 1
    assert _do(r, k, "iommu_paging_domain_alloc", "dev0") == ErrPtr(ENOMEM)
    assert k.injected_at == ["domain_alloc_paging(dev0)"]


# -- each fault point, and the kernel's error path there -----------------------------------
@pytest.mark.parametrize("hw", ["vtd", "smmuv3", "mock"])
def test_domain_alloc_fails_with_nothing_allocated(hw: str) -> None:
    r, k = _runner(PAGING, hw)
    _do(r, k, "fail_nth", 1)
    before = _api(k)
    assert _do(r, k, "iommu_paging_domain_alloc", "dev0") == ErrPtr(ENOMEM)
    assert _api(k) == before


@pytest.mark.parametrize("hw", ["vtd", "smmuv3", "mock"])
def test_attach_dev_failure_keeps_the_default_domain(hw: str) -> None:
    r, k = _runner(PAGING, hw)
    dom = _do(r, k, "iommu_paging_domain_alloc", "dev0")
    _do(r, k, "fail_nth", 1)
    before = _api(k)
    assert _do(r, k, "iommu_attach_device", dom, "dev0") == ENOMEM
    assert k.injected_at == ["attach_dev(dev0)"]
    assert _api(k) == before


@pytest.mark.parametrize("n,site", [(1, "xa_insert(pasid_array)"), (2, "set_dev_pasid(devS0)"),
                                    (3, "set_dev_pasid(devS1)")])
@pytest.mark.parametrize("hw", ["vtd", "smmuv3", "mock"])
def test_group_pasid_attach_failure_rolls_back(hw: str, n: int, site: str) -> None:
    """The failure on the second device of a shared group: devS0 is rolled back through
    the blocked domain (__iommu_set_group_pasid), so nothing changed."""
    r, k = _runner(SHARED, hw)
    dom = _do(r, k, "iommu_paging_domain_alloc", "devS0")
    pasid = _do(r, k, "iommu_alloc_global_pasid", "devS0")
    _do(r, k, "fail_nth", n)
    before = _api(k)
    assert _do(r, k, "iommu_attach_device_pasid", dom, "devS0", pasid) == ENOMEM
    assert k.injected_at == [site]
    assert _api(k) == before
    assert k.groups["gS"].pasid_entry(pasid) is None


@pytest.mark.parametrize("n,site", [(1, "iommu_alloc_mm_data(mm{mm})"), (2, "kzalloc(iommu_sva)"),
                                    (3, "domain_alloc_sva(dev0)"), (4, "xa_insert(pasid_array)"),
                                    (5, "set_dev_pasid(dev0)")])
@pytest.mark.parametrize("hw", ["vtd", "smmuv3"])
def test_sva_bind_failure_paths(hw: str, n: int, site: str) -> None:
    r, k = _runner(SVA, hw)
    mm = _do(r, k, "mm_alloc")
    _do(r, k, "fail_nth", n)
    res = _do(r, k, "iommu_sva_bind_device", "dev0", mm)  # every invariant checked in _do
    assert res == ErrPtr(ENOMEM)
    assert k.injected_at == [site.format(mm=mm)]
    assert not k.handles and not k.mms[mm].sva_domains
    # the mm keeps its PASID once iommu_mm exists (iommu_alloc_mm_data is not undone)
    assert (k.mms[mm].pasid is None) == (n == 1)
    if n == 5:  # after the notifier was registered: iommu_domain_free -> mmu_notifier_put
        assert k.pending_free_notifiers()
        _do(r, k, "srcu_grace_period")
        assert not k.notifiers and len(k.domains) == 3  # blocked, identity, the DMA domain
    # and the next bind works
    assert isinstance(_do(r, k, "iommu_sva_bind_device", "dev0", mm), int)


def test_vtd_pasid_leaf_table_allocation_fails_with_enodev() -> None:
    """intel_pasid_setup_first_level: intel_pasid_get_entry() NULL -> -ENODEV. PASID 64
    is the first one outside leaf table 0 (PASID_PDE_SHIFT = 6)."""
    b = Bounds(devices=1, processes=0, paging_domains=1, max_pasids=128, faults=1)
    r, k = _runner(b)
    dom = _do(r, k, "iommu_paging_domain_alloc", "dev0")
    _do(r, k, "fail_nth", 3)  # xa_insert, set_dev_pasid(dev0), then the leaf table
    before = _api(k)
    assert _do(r, k, "iommu_attach_device_pasid", dom, "dev0", 64) == -errno.ENODEV
    assert k.injected_at == ["intel_pasid_get_entry(dev0, pasid 64)"]
    assert _api(k) == before
    # (PASID 64 is not from the allocator: called directly, no invariants asked)
    assert k.iommu_attach_device_pasid(dom, "dev0", 64) == 0  # the leaf table allocated now


# -- traces and replay ---------------------------------------------------------------------
VARIANT_STEPS: list[tuple[str, tuple[object, ...]]] = [
    ("iommu_paging_domain_alloc", ("devS0",)),
    ("iommu_alloc_global_pasid", ("devS0",)),
    ("fail_nth", (3,)),
    ("iommu_attach_device_pasid", (4, "devS0", 1)),
]
VARIANT_LISTING = [
    "1. iommu_paging_domain_alloc(devS0) -> d4",
    "2. iommu_alloc_global_pasid(devS0) -> 1",
    "3. fail_nth(3)",
    "4. iommu_attach_device_pasid(d4, devS0, 1) -> -ENOMEM [injected in set_dev_pasid(devS1)]",
]


def test_trace_names_the_injected_site_on_upstream() -> None:
    res = run_calls("upstream", "vtd", VARIANT_STEPS, SHARED)
    assert res.violation is None and res.stopped is None
    assert res.trace.listing(with_hw=False) == VARIANT_LISTING


@pytest.mark.parametrize("hw", ["vtd", "smmuv3"])
def test_json_trace_with_injected_fault_replays(hw: str) -> None:
    res = run_calls(VARIANT, hw, VARIANT_STEPS, SHARED)
    assert res.violation is not None and res.violation.invariant in DESIGNS[VARIANT].breaks_on(hw)
    data = json.loads(json.dumps(res.trace.to_json()))
    assert data["bounds"]["faults"] == 1
    again = replay_data(data)
    assert again.stopped is None
    assert again.violation is not None
    assert (again.violation.invariant, again.violation.message) == (
        res.violation.invariant, res.violation.message)
    assert again.trace.listing(with_hw=False) == VARIANT_LISTING


# -- both engines find the variant ---------------------------------------------------------
@pytest.mark.parametrize("hw", ["vtd", "smmuv3"])
def test_explorer_finds_the_no_rollback_variant(hw: str) -> None:
    d = DESIGNS[VARIANT]
    b = with_design_bounds(Bounds(), d.check_bounds)
    assert b == SHARED
    r = check_explore(d, hw, b, get(), max_states=5000)
    assert r.trace is not None, r.extra["summary"]
    # every invariant asked: the first one the step reports (refcount-matches, in catalog
    # order); failed-call-unchanged alone is pinned in tests/designs/test_expected_breaks.py
    assert r.violated in d.breaks_on(hw)
    assert r.trace.listing(with_hw=False) == VARIANT_LISTING


@pytest.mark.parametrize("hw", ["vtd", "smmuv3"])
def test_upstream_holds_in_the_variants_world(hw: str) -> None:
    r = check_explore(get_design("upstream"), hw, SHARED, get(), saturate=True)
    assert r.trace is None and r.complete, r.extra["summary"]


def test_hypothesis_engine_injects_faults() -> None:
    """The sampler draws fail_nth when faults > 0 (never when faults=0), just before a
    call (the example's fault target), and a failure it finds names the injected site. (The break of
    set-group-pasid-no-rollback needs fail_nth(3) immediately followed by the group's
    PASID attach: the sampler finds it in about 100 to 450 examples, not within the
    ci budget of 60; the explorer finds it in 4 steps, test above.)"""
    from checker.machine import Stats, drawable_actions, make_machine
    from hypothesis import settings
    from hypothesis.stateful import run_state_machine_as_test

    d = DESIGNS[VARIANT]
    cfg = Config(d, "vtd", with_design_bounds(Bounds(), d.check_bounds))
    stats = Stats()
    runs: list[list[tuple[int, Args]]] = []

    machine = make_machine(cfg, get(["no-kernel-warn"]), stats)

    class Watch(machine):  # type: ignore[misc, valid-type]
        def teardown(self) -> None:
            runs.append(list(self.moves))

    run_state_machine_as_test(Watch, settings=settings(
        max_examples=200, stateful_step_count=40, deadline=None, database=None, derandomize=True))
    assert any(ACTIONS[ai].name == "fail_nth" for run in runs for ai, _ in run)
    # fail_nth comes only just before a call (checker/machine.py: the fault target)
    assert all(ACTIONS[run[i + 1][0]].kind == "call"
               for run in runs for i, (ai, _) in enumerate(run[:-1]) if ACTIONS[ai].name == "fail_nth")
    # a failure it finds names the injected site: the no-rollback variant, minimised to
    # the explorer's four calls. Which example finds it is not stable across machines
    # with the same Hypothesis (the 94th with seed 1 on one, the 430th on another, both
    # 6.155.2), so up to four fixed seeds of 600 examples each are tried: at the measured
    # rate (about 1 in 400) all four miss with probability e^-6.
    for seed in (1, 2, 3, 4):
        r = check_hypothesis(d, "vtd", cfg.bounds, get(["failed-call-unchanged"]), max_examples=600,
                             seed=seed, database=False)
        if r.trace is not None:
            break
    assert r.trace is not None and r.violated == "failed-call-unchanged"
    assert "[injected in set_dev_pasid(" in r.trace.steps[-1].text, r.trace.listing()
    calls = [s.action for s in r.trace.steps]
    assert sorted(calls[:2]) == ["iommu_alloc_global_pasid", "iommu_paging_domain_alloc"], calls
    assert calls[2:] == ["fail_nth", "iommu_attach_device_pasid"], calls
    names = {ACTIONS[ai].name for ai in drawable_actions(Config(d, "vtd", SHARED.override("faults=0")))}
    assert "fail_nth" not in names and "iommu_attach_device_pasid" in names
