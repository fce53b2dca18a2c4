"""I/O page faults (model/core/iopf.py): the kernel's path from a PRI Page Request to
the PRG Response, the drain at PASID teardown, and the two findings of the pri1 world.

Conformance rows come from io-pgfault.c / iommu-sva.c / intel/prq.c (the version the
module docstring names); the exhaustive rows assert the state counts of the named
world, so a change to the mechanism shows as a change of count.
"""

from __future__ import annotations

import errno

import pytest

from checker.explore import check_explore, explore
from checker.worlds import WORLDS, with_design_bounds
from hwspec import vtd as hw
from invariants.catalog import CATALOG, get
from model.actions import ACTIONS_BY_NAME
from model.bounds import Bounds
from model.core import Kernel
from model.design import UPSTREAM
from model.designs import DESIGNS
from model.objects import IopfGroup, PageRequest

PRI1 = WORLDS["pri1"].to_bounds()


def _bound(hwkind: str, *, mapped: bool = True) -> tuple[Kernel, int, int]:
    """A world with dev0 bound to a process at PASID 1 (iova 0 mapped if `mapped`)."""
    k = Kernel(hwkind, PRI1.device_list())
    mm = k.mm_alloc()
    if mapped:
        assert k.cpu_map(mm, 0x0, 0x5000) == 0
    h = k.iommu_sva_bind_device("dev0", mm)
    assert isinstance(h, int)
    k.driver.take_hw_log(k)
    return k, mm, h


def _responses(k: Kernel) -> list[str]:
    return [line for line in k.driver.take_hw_log(k) if line.startswith("QI_PGRP_RESP")]


def test_page_request_is_queued_reported_then_answered() -> None:
    k, _, h = _bound("vtd")
    k.device_page_request("dev0", 1, 0x0)
    assert k.prq == (PageRequest("dev0", 1, 0x0),)
    k.prq_event_thread()
    assert k.prq == () and k.iopf_groups == (IopfGroup(PageRequest("dev0", 1, 0x0), h),)
    assert _responses(k) == []  # queued, not answered yet
    k.iopf_work()
    assert k.iopf_groups == ()
    assert _responses(k) == ["QI_PGRP_RESP rid=0x0008 pasid=1 SUCCESS"]


def test_handler_answers_invalid_without_a_vma_or_after_exit() -> None:
    k, _, _ = _bound("vtd", mapped=False)
    k.device_page_request("dev0", 1, 0x0)
    k.prq_event_thread()
    k.iopf_work()
    assert _responses(k) == ["QI_PGRP_RESP rid=0x0008 pasid=1 INVALID"]  # vma_lookup fails
    k, mm, _ = _bound("vtd")
    k.device_page_request("dev0", 1, 0x0)
    k.prq_event_thread()
    k.process_exit(mm)
    k.driver.take_hw_log(k)
    k.iopf_work()
    assert _responses(k) == ["QI_PGRP_RESP rid=0x0008 pasid=1 INVALID"]  # mmget_not_zero fails


def test_report_without_an_attach_handle_is_answered_by_the_core() -> None:
    k, _, _ = _bound("vtd")
    # PASID 1 is bound: IOPF is on for dev0; a request for an unattached PASID 0 ...
    assert k.iommu_report_device_fault(PageRequest("dev0", 0, 0x0)) == -errno.EINVAL
    assert _responses(k) == ["QI_PGRP_RESP rid=0x0008 pasid=0 INVALID"]
    assert k.iopf_groups == ()


def test_unbind_drains_before_the_handle_goes() -> None:
    k, _, h = _bound("vtd")
    k.device_page_request("dev0", 1, 0x0)
    k.iommu_sva_unbind_device(h)
    assert k.prq == () and k.iopf_groups == () and k.warnings == []
    log = k.driver.take_hw_log(k)
    # intel_pasid_tear_down_entry: P cleared and flushed, then the drain: the interrupt
    # thread reads the request, the flushed workqueue answers it, then the fenced wait
    # with PRQ_DRAIN, its IOTLB flush under the RID domain's DID (prq.c)
    resp = log.index("QI_PGRP_RESP rid=0x0008 pasid=1 SUCCESS")
    assert log.index("QI_PC pasid-selective did=1 pasid=1") < resp
    assert log[resp + 2:] == ["QI_IWD fence", "QI_EIOTLB all did=2 pasid=1",
                              "QI_DEV_EIOTLB sid=0x0008 pasid=1 whole range",
                              "QI_IWD status_write data=2 prq_drain"]


def test_last_iopf_user_answers_what_is_still_queued() -> None:
    k, _, h = _bound("vtd")
    k.iopf_groups = (IopfGroup(PageRequest("dev0", 1, 0x0), h),)
    k.iopf_queue_remove_device("dev0")
    assert k.iopf_groups == ()
    assert _responses(k) == ["QI_PGRP_RESP rid=0x0008 pasid=1 INVALID"]


def test_a_handler_through_a_freed_handle_is_a_use_after_free() -> None:
    k, _, h = _bound("vtd")
    k.iommu_sva_unbind_device(h)
    k.iopf_groups = (IopfGroup(PageRequest("dev0", 1, 0x0), h),)  # what no drain would leave
    k.iopf_work()
    assert len(k.warnings) == 1 and k.warnings[0].startswith("use-after-free: ")
    assert "attach handle" in k.warnings[0] and "iommu_sva_unbind_device" in k.warnings[0]


def test_page_response_descriptor_layout_round_trips() -> None:
    d = hw.qi_desc_page_response(0x0008, 1, hw.QI_RESP_FAILURE, prg_index=5)
    q0, q1 = d.encode()
    assert q0 & 0xF == hw.QI_PGRP_RESP_TYPE and (q0 >> 4) & 1 == 1
    assert (q0 >> 12) & 0xF == 0xF and (q0 >> 16) & 0xFFFF == 0x0008 and q0 >> 32 == 1
    assert q1 == 5 << 3
    assert hw.decode_descriptor((q0, q1)) == d
    assert str(hw.qi_desc_page_response(0x10, None, 2)) == "QI_PGRP_RESP rid=0x0010 reserved code 0x2"


def test_mock_drains_and_smmuv3_takes_no_page_requests() -> None:
    k, _, h = _bound("mock")
    k.device_page_request("dev0", 1, 0x0)
    k.prq_event_thread()
    k.iommu_sva_unbind_device(h)
    assert k.prq == () and k.iopf_groups == () and k.warnings == []
    k, _, _ = _bound("smmuv3")
    assert list(ACTIONS_BY_NAME["device_page_request"].enabled_args(k, PRI1)) == []
    assert list(ACTIONS_BY_NAME["device_page_request"].enabled_args(k, Bounds())) == []


def test_page_requests_need_the_bound_and_a_live_bond() -> None:
    k, mm, _ = _bound("vtd")
    act = ACTIONS_BY_NAME["device_page_request"]
    assert list(act.enabled_args(k, PRI1)) == [("dev0", 1, 0x0)]
    assert list(act.enabled_args(k, Bounds().override(
        "devices=1,processes=1,paging_domains=0,iova_pages=1,phys_pages=1,max_pasids=2"))) == []
    k.device_page_request("dev0", 1, 0x0)
    assert list(act.enabled_args(k, PRI1)) == []  # one outstanding request (bound pri)
    k.prq_event_thread()
    k.iopf_work()
    k.process_exit(mm)
    assert list(act.enabled_args(k, PRI1)) == []  # the device works for no live process


@pytest.mark.parametrize("hwkind,design,states", [
    ("mock", "upstream", 510),
    ("smmuv3", "upstream", WORLDS["pri1"].states[1]),
    ("vtd", "vtd-drain-on-zero-entry", WORLDS["pri1"].states[0]),
])
def test_pri1_holds(hwkind: str, design: str, states: int) -> None:
    d = UPSTREAM if design == "upstream" else DESIGNS[design]
    _, out = explore(d, hwkind, PRI1, tuple(CATALOG), saturate=True)
    assert out.violation is None and out.complete
    assert out.states == states


@pytest.mark.deep
def test_pcie_codes_fix_holds_with_the_allocation_failure() -> None:
    d = DESIGNS["vtd-page-response-pcie-codes"]
    _, out = explore(d, "vtd", with_design_bounds(Bounds(), d.check_bounds), tuple(CATALOG),
                     saturate=True)
    assert out.violation is None and out.complete and out.states == 4_080


def test_upstream_finding_trace_is_the_exit_then_unbind() -> None:
    r = check_explore(UPSTREAM, "vtd", PRI1, get(["iopf-drained"]), saturate=True)
    assert r.violated == "iopf-drained"
    assert [s.action for s in r.trace.steps] == [
        "mm_alloc", "iommu_sva_bind_device", "device_page_request", "process_exit",
        "iommu_sva_unbind_device"]
    assert r.trace is not None and r.trace.violation is not None
    assert r.trace.violation.message.startswith("a page request of dev0 pasid 1 (iova 0x0) is still in the page "
                                "request queue, but pasid 1 is no longer attached to dev0")
