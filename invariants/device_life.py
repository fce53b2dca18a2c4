"""Invariants of a device's life after boot: PCI reset staging (model/core/reset.py)
and I/O page faults (model/core/iopf.py).

Two properties the v7.0 reset staging exists for, each checked on every step:

* `no-ats-inv-during-reset`: a function in reset does not answer an ATS
  invalidation; the IOMMU times out waiting for it (VT-d: an Invalidation
  Time-out Error with the queue halted; SMMUv3: CERROR_ATC_INV_SYNC). PCIe r6.0
  sec 10.3.1's implementation note asks software to quiesce ATS across a reset,
  and pci_dev_reset_iommu_prepare does it by attaching the blocking domain, which
  drops the device's cache tags (VT-d) and ATS masters (SMMUv3): after it no flush
  reaches the device until _done.
* `reset-scoped`: prepare and done act on the device being reset only and keep the
  core's record: no other device's DMA outcome changes, and group->domain and
  every pasid_array stay as they were (they are what _done restores). The
  original c279e83953d9 re-set each PASID on every device of the group at _done
  (fixed by 1615e889); the device's own restore is `no-stale-translation`'s to
  judge (model/semantics.py: a device in reset must fault everything).

Two of page requests:

* `iopf-drained`: a page request still in the IOMMU's queue, or an iopf group
  still on the workqueue, belongs to a (device, PASID) the core has attached, and
  a queued group's handle is that attachment's: PASID teardown drains both before
  the core lets the PASID, its handle and its domain go (iopf_queue_flush_dev's
  contract: "won't hit the address space of the next process that uses this
  PASID"; the handle is held by a plain pointer).
* `prg-response-valid`: every PRG Response the IOMMU sends carries a response code
  PCIe defines (Success 0, Invalid Request 1, Response Failure 0xF).
"""

from __future__ import annotations

from hwspec.outcome import Access
from hwspec.vtd import PRG_RESPONSE_CODES

from invariants.base import Invariant, Layer, Step, Violation
from model.actions import Kind as P, values
from model.bounds import Bounds
from model.core import Kernel
from model.objects import PageRequest
from model.semantics import Effect, effect_of, show_effect

S004 = "004_b0f85d91fc5ccfc6.txt"

RESET_CALLS = ("pci_dev_reset_iommu_prepare", "pci_dev_reset_iommu_done")


def _no_ats_inv_during_reset(step: Step, b: Bounds) -> Violation | None:
    # In reset across the whole step: prepare's own teardown flushes before the reset
    # starts, and done's re-attach runs once it is over.
    during = step.before.resetting & step.after.resetting
    if not during:
        return None
    sids = {step.after.devices[d].sid: d for d in during}
    sent = step.after.driver.ats_invalidations(step.after)
    for sid, text in sent[len(step.before.driver.ats_invalidations(step.before)):]:
        if sid in sids:
            return Violation(
                "no-ats-inv-during-reset",
                f"{step.action.name} sent an ATS invalidation to {sids[sid]}, which is being reset: "
                f"{text}",
                (text,),
            )
    return None


def _effects(k: Kernel, dev: str, b: Bounds) -> dict[tuple[int | None, int], frozenset[Effect]]:
    """What every DMA of dev may do now, by (PASID or none, IOVA): effects, not paths."""
    return {(pasid, iova): frozenset(effect_of(o, iova) for o in k.dma(dev, pasid, iova, Access.READ))
            for pasid in values(P.ANY_PASID, k, b) for iova in b.iovas()}


def _show(effects: frozenset[Effect]) -> str:
    return " or ".join(sorted(show_effect(e) for e in effects)) or "nothing"


def _record(k: Kernel) -> dict[str, object]:
    return {g.name: (g.domain, g.pasid_array) for g in k.groups.values()}


def _reset_scoped(step: Step, b: Bounds) -> Violation | None:
    if step.action.name not in RESET_CALLS:
        return None
    dev = step.args[0]
    name = f"{step.action.name}({dev})"
    if _record(step.before) != _record(step.after):
        changed = sorted(g for g, r in _record(step.after).items() if _record(step.before).get(g) != r)
        return Violation("reset-scoped", f"{name} changed the core's record of group(s) "
                                         f"{', '.join(changed)} (group->domain or pasid_array)")
    for other in values(P.DEV, step.after, b):
        if other == dev:
            continue
        before, after = _effects(step.before, other, b), _effects(step.after, other, b)
        for (pasid, iova), was in before.items():
            now = after[pasid, iova]
            if now != was:
                where = "no pasid" if pasid is None else f"pasid {pasid}"
                return Violation(
                    "reset-scoped",
                    f"{name} changed what dma({other}, {where}, iova {iova:#x}) may do: "
                    f"{_show(was)} before, {_show(now)} after",
                )
    return None


def _iopf_drained(k: Kernel, b: Bounds) -> Violation | None:
    pending: list[tuple[PageRequest, str, int | None]] = [
        (r, "is still in the page request queue", None) for r in k.prq]
    pending += [(g.req, "is still queued on the iopf workqueue", g.handle) for g in k.iopf_groups]
    for req, where, handle in pending:
        g = k.group_of(req.dev)
        e = g.pasid_entry(req.pasid) if g is not None else None
        what = f"a page request of {req.dev} pasid {req.pasid} (iova {req.iova:#x}) {where}"
        if e is None:
            return Violation("iopf-drained", f"{what}, but pasid {req.pasid} is no longer attached "
                                             f"to {req.dev}: its teardown did not drain it", (what,))
        if handle is not None and e.handle != handle:
            return Violation("iopf-drained", f"{what} with attach handle {handle}, but pasid "
                                             f"{req.pasid} is now attached with handle {e.handle}")
    return None


def _prg_response_valid(step: Step, b: Bounds) -> Violation | None:
    if not b.pri:
        return None  # no page request, no response: skip reading the log on every step
    sent = step.after.driver.prg_responses(step.after)
    for sid, text, code in sent[len(step.before.driver.prg_responses(step.before)):]:
        if code not in PRG_RESPONSE_CODES:
            return Violation("prg-response-valid",
                             f"{step.action.name} sent a PRG Response with reserved response code "
                             f"{code:#x} to sid {sid:#06x}: {text}", (text,))
    return None


DEVICE_LIFE: tuple[Invariant, ...] = (
    Invariant(
        "no-ats-inv-during-reset",
        "No ATS invalidation (VT-d device-TLB descriptor, SMMUv3 CMD_ATC_INV) is sent to a "
        "device between pci_dev_reset_iommu_prepare and pci_dev_reset_iommu_done.",
        "A function in reset does not answer an ATS invalidation: VT-d reports an "
        "Invalidation Time-out Error and halts the queue, SMMUv3 a CERROR_ATC_INV_SYNC "
        "(PCIe r6.0 sec 10.3.1). The v7.0 reset staging (c279e83953d9, f5b16b80) attaches "
        "the blocking domain first, so the device leaves every flush list until the reset "
        "is done.",
        (), Layer.HW, check_step=_no_ats_inv_during_reset,
    ),
    Invariant(
        "reset-scoped",
        "pci_dev_reset_iommu_prepare and _done change no other device's DMA and leave the "
        "core's record (group->domain, pasid_array) as it was.",
        "The core's record is the saved state: _done restores exactly it, for exactly the "
        "device that was reset. c279e83953d9 re-set every PASID on every device of the "
        "group at _done, though prepare blocked only one of them (fixed by 1615e889, "
        "'iommu: Fix pasid attach in pci_dev_reset_iommu_prepare/done()').",
        (), Layer.API, check_step=_reset_scoped,
    ),
    Invariant(
        "iopf-drained",
        "No page request is pending - in the IOMMU's page request queue or as an iopf group on "
        "the workqueue - for a (device, PASID) the core no longer has attached, and a queued "
        "group's attach handle is the PASID's current one.",
        "An iopf group reaches the fault handler through a plain pointer to the attach handle, "
        "and a request still queued after teardown is delivered to whatever holds the PASID "
        "next. So PASID teardown must drain: the driver waits until its hardware queue holds no "
        "request of the PASID, then iopf_queue_flush_dev (io-pgfault.c: 'won't hit the address "
        "space of the next process that uses this PASID'); VT-d's intel_iommu_drain_pasid_prq "
        "does it in intel_pasid_tear_down_entry. cf08ca81d08a (v6.13) added the drain for an "
        "SVA unbind after mm exit. Seed 004 asks what the fault path does once the bond is gone.",
        (S004,), Layer.API, check_state=_iopf_drained,
    ),
    Invariant(
        "prg-response-valid",
        "Every PRG Response the IOMMU sends carries a response code PCIe defines: Success (0), "
        "Invalid Request (1) or Response Failure (0xF).",
        "The response code is a 4-bit field of the PRG Response Message (PCIe r6.0 sec "
        "10.4.2.1; VT-d's page group response descriptor copies it, 6.5.2.8): the other values "
        "are reserved, and a device given one may take the group for answered or not. The core "
        "answers IOMMU_PAGE_RESP_FAILURE (enum value 2) when it cannot queue a group, and "
        "intel_iommu_page_response writes msg->code into the field as it is (QI_RESP_FAILURE, "
        "0xF, is defined and unused).",
        (), Layer.HW, check_step=_prg_response_valid, applies=lambda hw: hw == "vtd",
    ),
)
