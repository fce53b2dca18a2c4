"""Every invariant a design is expected to break is broken, each one on its own.

`test_verdicts.py` checks the first violation of each breaking design;
the matrix in docs/ switches invariants off one by one, within a small budget.
Here each (design, hardware, invariant) of `Design.expect_breaks` is checked
alone, by the explorer, in the smallest world where it breaks: the row asserts
the world and the length of the shortest counterexample (breadth-first, so any
change to either is a change in the model to look at), and that the trace goes
through a call the design changes.

A new expectation needs a row here (the coverage test says which one is missing);
a row whose world no longer breaks fails with the explorer's summary. The rows
that need 15-25 s (two devices, two processes, six calls) carry the `deep`
marker; the BMC of proofs/bmc.py covers the two global-pasid-consistent ones in
the default run.
"""

from __future__ import annotations

import pytest

from checker.worlds import with_design_bounds
from checker.explore import check_explore
from invariants.catalog import get
from model.bounds import Bounds
from model.designs import DESIGNS

#: One SVA process, no paging domain: the SVA and notifier designs.
T0 = Bounds(devices=1, processes=1, paging_domains=0, iova_pages=1, phys_pages=1, max_pasids=2)
#: The same with one paging domain.
T1 = Bounds(devices=1, processes=1, paging_domains=1, iova_pages=1, phys_pages=1, max_pasids=2)
#: Two devices, two processes: what needs a second RID or a second address space.
S = Bounds(devices=2, processes=2, paging_domains=1, iova_pages=1, phys_pages=2, max_pasids=3)
#: Ranges: paging1 with three IOVA pages and two-page map / unmap (the range1 world);
#: RR the same on an SMMU with range invalidation (rangeR1).
R = Bounds(devices=1, processes=0, paging_domains=1, iova_pages=3, phys_pages=1, max_pasids=2,
           range_pages=2)
RR = Bounds(devices=1, processes=0, paging_domains=1, iova_pages=3, phys_pages=1, max_pasids=2,
            range_pages=2, smmu_range_inv=True)
#: Walk caches: paging1 / sva1 with leaf table pages (the walk1 / walkSva1 worlds).
W = Bounds(devices=1, processes=0, paging_domains=1, iova_pages=1, phys_pages=1, max_pasids=2,
           walk_caches=True)
WS = Bounds(devices=1, processes=1, paging_domains=0, iova_pages=1, phys_pages=1, max_pasids=2,
            walk_caches=True)
WK = Bounds(devices=1, processes=1, paging_domains=0, iova_pages=1, phys_pages=1, max_pasids=2,
            walk_caches=True, kernel_pgtable=True)
#: Nesting: a parent and a nested domain at one device's RID (nest1); two nested domains on
#: one parent at two devices' RIDs (vtd-nested-shared-did's own world).
N = Bounds(devices=1, processes=0, paging_domains=2, iova_pages=2, phys_pages=1, max_pasids=2,
           nesting=True)
NS = Bounds(devices=2, ats_devices=0, processes=0, paging_domains=3, iova_pages=2, phys_pages=1,
            max_pasids=2, nesting=True)
#: 2 MiB leaves: paging1 with two IOVA pages and a 2 MiB map / unmap at IOVA 0 (super1); SPR
#: the same on an SMMU with range invalidation (superR1).
SP = Bounds(devices=1, processes=0, paging_domains=1, iova_pages=2, phys_pages=1, max_pasids=2,
            superpages=True)
SPR = Bounds(devices=1, processes=0, paging_domains=1, iova_pages=2, phys_pages=1, max_pasids=2,
             superpages=True, smmu_range_inv=True)
WORLDS = {"T0": T0, "T1": T1, "S": S, "R": R, "RR": RR, "W": W, "WS": WS, "WK": WK, "N": N, "NS": NS,
          "SP": SP, "SPR": SPR}
MAX_STATES = 60_000

#: (design, hw, invariant) -> (world, length of the shortest counterexample there).
#: The design's own `check_bounds` is applied on top of the world.
ROWS: dict[tuple[str, str, str], tuple[str, int]] = {
    ("aux-2018-unguarded", "vtd", "exclusive-device-ownership"): ("T1", 3),
    ("aux-2018-unguarded", "vtd", "no-attach-while-pasid-users"): ("T1", 3),
    ("aux-2018-unguarded", "smmuv3", "exclusive-device-ownership"): ("T1", 3),
    ("aux-2018-unguarded", "smmuv3", "no-attach-while-pasid-users"): ("T1", 3),
    ("sva-bind-2019-enqcmd", "vtd", "pasid-not-reused-while-bound"): ("T0", 4),
    ("sva-bind-2019-enqcmd", "vtd", "global-pasid-consistent"): ("T1", 7),
    ("sva-bind-2019-enqcmd", "smmuv3", "pasid-not-reused-while-bound"): ("T0", 4),
    ("sva-bind-2019-enqcmd", "smmuv3", "global-pasid-consistent"): ("T1", 7),
    ("pasid-freed-at-mm-exit", "vtd", "pasid-not-reused-while-bound"): ("T0", 3),
    ("pasid-freed-at-mm-exit", "vtd", "global-pasid-consistent"): ("S", 6),
    ("pasid-freed-at-mm-exit", "smmuv3", "pasid-not-reused-while-bound"): ("T0", 3),
    ("pasid-freed-at-mm-exit", "smmuv3", "global-pasid-consistent"): ("S", 6),
    ("pasid-per-rid", "vtd", "global-pasid-consistent"): ("S", 5),
    ("pasid-per-rid", "vtd", "did-pasid-tag-unique"): ("S", 4),
    ("pasid-per-rid", "vtd", "no-stale-translation"): ("S", 6),
    ("pasid-per-rid", "smmuv3", "global-pasid-consistent"): ("S", 5),
    ("set-dev-pasid-blocking-2022", "smmuv3", "asid-known-at-detach"): ("T0", 5),
    ("set-dev-pasid-blocking-2022", "smmuv3", "no-stale-translation"): ("T0", 7),
    ("vtd-shared-did-colliding", "vtd", "did-pasid-tag-unique"): ("S", 4),
    ("vtd-shared-did-colliding", "vtd", "no-stale-translation"): ("S", 6),
    # its check_bounds is its own two-device world (each device's paging domain at
    # PASID 0 under the one DID), whatever the row's world: 6 calls there
    ("vtd-shared-did-colliding", "vtd", "asid-known-at-detach"): ("T0", 6),
    ("notifier-put-no-sync", "vtd", "no-callback-after-module-unload"): ("T0", 4),
    ("notifier-put-no-sync", "smmuv3", "no-callback-after-module-unload"): ("T0", 4),
    ("notifier-kfree-early", "vtd", "domain-outlives-notifier"): ("T0", 3),
    ("notifier-kfree-early", "smmuv3", "domain-outlives-notifier"): ("T0", 3),
    # VT-d entry writes store by store: the zeroing after a P clear the PASID cache was not
    # told of (or was told of under DID 0) races a fetch of the old entry
    ("vtd-teardown-no-pasid-cache-flush", "vtd", "hitless-entry-update"): ("T0", 2),
    ("vtd-teardown-did-after-clear", "vtd", "hitless-entry-update"): ("T0", 2),
    ("vtd-teardown-zero-present-entry", "vtd", "hitless-entry-update"): ("T1", 2),
    ("vtd-pasid-replace-in-place", "vtd", "hitless-entry-update"): ("T1", 5),
    # ranges: an unaligned two-page unmap whose span loses its tail (VT-d); the gather's
    # inclusive end read as exclusive on range-invalidation hardware (SMMUv3)
    ("vtd-psi-mask-from-page-count", "vtd", "no-stale-translation"): ("R", 5),
    ("smmu-iotlb-sync-exclusive-end", "smmuv3", "no-stale-translation"): ("RR", 3),
    # walk caches (check_bounds walk_caches=1): the pointer outlives the free, and two calls
    # later the page is the default domain's leaf table
    ("vtd-tlb-sync-ih-with-freelist", "vtd", "walk-cache-live"): ("W", 5),
    ("vtd-tlb-sync-ih-with-freelist", "vtd", "no-stale-translation"): ("W", 7),
    ("smmu-flush-walk-leaf", "smmuv3", "walk-cache-live"): ("W", 5),
    ("smmu-flush-walk-leaf", "smmuv3", "no-stale-translation"): ("W", 7),
    ("vtd-notifier-leaf-only", "vtd", "walk-cache-live"): ("WS", 5),
    ("vtd-notifier-leaf-only", "vtd", "no-stale-translation"): ("WS", 6),
    ("munmap-free-table-before-flush", "vtd", "walk-cache-live"): ("WS", 5),
    ("munmap-free-table-before-flush", "smmuv3", "walk-cache-live"): ("WS", 5),
    # x86 SVA's kernel half (kernel_pgtable=1): CVE-2025-71202 in four calls
    ("sva-kva-free-without-iommu-flush", "vtd", "walk-cache-live"): ("WK", 4),
    # nesting (nest1): parent alloc, nested alloc, attach, parent map, a DMA, parent unmap
    ("vtd-parent-flush-misses-nested", "vtd", "nested-cache-current"): ("N", 6),
    ("vtd-parent-flush-misses-nested", "vtd", "no-stale-translation"): ("N", 6),
    ("vtd-nested-devtlb-by-parent-range", "vtd", "no-stale-translation"): ("N", 6),
    ("smmu-parent-flush-skips-nh-all", "smmuv3", "nested-cache-current"): ("N", 6),
    ("smmu-parent-flush-skips-nh-all", "smmuv3", "no-stale-translation"): ("N", 6),
    ("smmu-nested-atc-by-range", "smmuv3", "no-stale-translation"): ("N", 6),
    # 2 MiB leaves: domain, attach, 2 MiB map, a DMA that caches the leaf's size, the unmap
    ("pt-gather-requested-size", "vtd", "no-stale-translation"): ("SP", 5),
    ("smmu-ttl-from-leaf-size", "smmuv3", "no-stale-translation"): ("SPR", 5),
    # two nested domains on one parent, one DID, each at a device's RID (PASID 0)
    ("vtd-nested-shared-did", "vtd", "did-pasid-tag-unique"): ("NS", 5),
    ("vtd-teardown-no-pasid-cache-flush", "vtd", "no-stale-translation"): ("T0", 4),
    ("vtd-teardown-no-pasid-cache-flush", "vtd", "detached-pasid-blocked"): ("T0", 5),
    ("vtd-teardown-did-after-clear", "vtd", "no-stale-translation"): ("T0", 4),
    ("vtd-teardown-did-after-clear", "vtd", "asid-known-at-detach"): ("T0", 4),
    ("vtd-teardown-did-after-clear", "vtd", "detached-pasid-blocked"): ("T0", 5),
    ("vtd-teardown-did-after-clear", "vtd", "mm-exit-stops-dma"): ("T0", 5),
    ("vtd-teardown-no-devtlb-flush", "vtd", "no-stale-translation"): ("T0", 4),
    ("vtd-teardown-no-devtlb-flush", "vtd", "mm-exit-stops-dma"): ("T0", 5),
    ("vtd-teardown-no-devtlb-flush", "vtd", "detached-pasid-blocked"): ("T0", 6),
    ("smmu-detach-no-atc-inv", "smmuv3", "no-stale-translation"): ("T0", 5),
    ("smmu-detach-no-atc-inv", "smmuv3", "detached-pasid-blocked"): ("T0", 5),
    ("dma-owner-ignores-pasid-users", "vtd", "exclusive-device-ownership"): ("T0", 4),
    ("dma-owner-ignores-pasid-users", "vtd", "no-attach-while-pasid-users"): ("T0", 4),
    ("dma-owner-ignores-pasid-users", "smmuv3", "exclusive-device-ownership"): ("T0", 4),
    ("dma-owner-ignores-pasid-users", "smmuv3", "no-attach-while-pasid-users"): ("T0", 4),
    # fault injection: the design's check_bounds is the shared-group world with faults=1
    ("set-group-pasid-no-rollback", "vtd", "failed-call-unchanged"): ("T0", 4),
    ("set-group-pasid-no-rollback", "vtd", "refcount-matches"): ("T0", 4),
    ("set-group-pasid-no-rollback", "vtd", "tables-match-core"): ("T0", 5),
    ("set-group-pasid-no-rollback", "vtd", "no-stale-translation"): ("T0", 5),
    ("set-group-pasid-no-rollback", "vtd", "pasid-not-reused-while-bound"): ("T0", 5),
    ("set-group-pasid-no-rollback", "vtd", "no-leak"): ("T0", 5),
    ("set-group-pasid-no-rollback", "smmuv3", "failed-call-unchanged"): ("T0", 4),
    ("set-group-pasid-no-rollback", "smmuv3", "refcount-matches"): ("T0", 4),
    ("set-group-pasid-no-rollback", "smmuv3", "tables-match-core"): ("T0", 5),
    ("set-group-pasid-no-rollback", "smmuv3", "no-stale-translation"): ("T0", 5),
    ("set-group-pasid-no-rollback", "smmuv3", "pasid-not-reused-while-bound"): ("T0", 5),
    # the kernel-bug invariants (invariants/kernel_bugs.py)
    ("mmdrop-keeps-pasid", "smmuv3", "no-leak"): ("T0", 5),
    ("mmdrop-keeps-pasid", "vtd", "no-leak"): ("T0", 5),
    ("notifier-kfree-early", "smmuv3", "no-use-after-free"): ("T0", 4),
    ("notifier-kfree-early", "vtd", "no-use-after-free"): ("T0", 4),
    ("notifier-put-no-sync", "smmuv3", "no-use-after-free"): ("T0", 5),
    ("notifier-put-no-sync", "vtd", "no-use-after-free"): ("T0", 5),
    ("pasid-per-rid", "smmuv3", "refcount-matches"): ("S", 5),
    ("pasid-per-rid", "vtd", "refcount-matches"): ("S", 5),
    ("set-dev-pasid-blocking-2022", "smmuv3", "refcount-matches"): ("T1", 4),
    ("set-dev-pasid-blocking-2022", "vtd", "no-leak"): ("T1", 5),
    ("set-dev-pasid-blocking-2022", "vtd", "refcount-matches"): ("T1", 4),
    ("set-dev-pasid-blocking-tracked", "vtd", "no-leak"): ("T1", 5),
    ("set-dev-pasid-blocking-tracked", "vtd", "refcount-matches"): ("T1", 4),
    ("sva-domain-no-mmgrab", "smmuv3", "no-use-after-free"): ("T0", 5),
    ("sva-domain-no-mmgrab", "smmuv3", "refcount-matches"): ("T0", 2),
    ("sva-domain-no-mmgrab", "vtd", "no-use-after-free"): ("T0", 5),
    ("sva-domain-no-mmgrab", "vtd", "refcount-matches"): ("T0", 2),
    ("sva-unbind-free-before-detach", "smmuv3", "no-use-after-free"): ("T0", 3),
    ("sva-unbind-free-before-detach", "smmuv3", "refcount-matches"): ("T0", 3),
    ("sva-unbind-free-before-detach", "vtd", "no-kernel-warn"): ("T0", 3),
    ("sva-unbind-free-before-detach", "vtd", "no-use-after-free"): ("T0", 3),
    ("sva-unbind-free-before-detach", "vtd", "refcount-matches"): ("T0", 3),
    ("vtd-teardown-no-clear-entry", "vtd", "no-kernel-warn"): ("T0", 4),
    # PCI reset staging (check_bounds pci_reset=1; reset-done-whole-group: the shared group)
    ("reset-without-iommu-prepare", "vtd", "refcount-matches"): ("T1", 1),
    ("reset-without-iommu-prepare", "smmuv3", "refcount-matches"): ("T1", 1),
    ("reset-prepare-rid-only", "vtd", "refcount-matches"): ("T1", 3),
    ("reset-prepare-rid-only", "smmuv3", "refcount-matches"): ("T1", 3),
    ("reset-done-restores-default", "vtd", "refcount-matches"): ("T1", 4),
    ("reset-done-restores-default", "smmuv3", "refcount-matches"): ("T1", 4),
    ("reset-without-iommu-prepare", "vtd", "no-ats-inv-during-reset"): ("T1", 3),
    ("reset-without-iommu-prepare", "vtd", "no-stale-translation"): ("T1", 2),
    ("reset-without-iommu-prepare", "smmuv3", "no-ats-inv-during-reset"): ("T1", 3),
    ("reset-without-iommu-prepare", "smmuv3", "no-stale-translation"): ("T1", 2),
    ("reset-prepare-rid-only", "vtd", "no-ats-inv-during-reset"): ("T1", 4),
    ("reset-prepare-rid-only", "vtd", "no-stale-translation"): ("T1", 4),
    ("reset-prepare-rid-only", "smmuv3", "no-ats-inv-during-reset"): ("T1", 4),
    ("reset-prepare-rid-only", "smmuv3", "no-stale-translation"): ("T1", 4),
    ("reset-done-restores-default", "vtd", "no-stale-translation"): ("T1", 5),
    ("reset-done-restores-default", "smmuv3", "no-stale-translation"): ("T1", 5),
    ("reset-done-whole-group", "vtd", "reset-scoped"): ("T1", 7),
    ("reset-done-whole-group", "vtd", "refcount-matches"): ("T1", 5),
    ("reset-done-whole-group", "smmuv3", "reset-scoped"): ("T1", 7),
    ("reset-done-whole-group", "smmuv3", "refcount-matches"): ("T1", 5),
    # surprise removal (check_bounds hotplug=1)
    ("vtd-gone-device-2023", "vtd", "no-kernel-warn"): ("T1", 3),
    ("vtd-qi-retry-on-ite", "vtd", "no-kernel-warn"): ("T1", 3),
    # I/O page faults (check_bounds pri=1): the upstream finding, a broken order, and the
    # reserved response code (faults=1)
    ("vtd-sva-unbind-after-mm-exit", "vtd", "iopf-drained"): ("T0", 5),
    ("vtd-iopf-disable-before-teardown", "vtd", "iopf-drained"): ("T0", 4),
    ("vtd-page-response-failure-code", "vtd", "prg-response-valid"): ("T0", 4),
    # release and hot-add (check_bounds reprobe=1)
    ("vtd-release-keeps-pasid-table", "vtd", "no-leak"): ("T1", 2),
    ("core-release-without-release-domain", "vtd", "no-leak"): ("T1", 2),
    # DMA aliases (check_bounds alias_device=1)
    ("vtd-context-own-rid-only", "vtd", "no-stale-translation"): ("T1", 1),
    ("smmu-ste-first-stream-only", "smmuv3", "no-stale-translation"): ("T1", 1),
    # ATS as driver state: the drift is there from boot (a trace of no call)
    ("vtd-ats-enable-without-devtlb-tag", "vtd", "refcount-matches"): ("T1", 0),
    ("vtd-ats-enable-without-devtlb-tag", "vtd", "no-stale-translation"): ("T1", 3),
    # identity default domains (check_bounds passthrough=1)
    ("smmu-identity-rid-drops-cd-table", "smmuv3", "no-stale-translation"): ("T1", 6),
}


def test_every_expected_break_has_a_row() -> None:
    expected = {(d.name, hw, inv) for d in DESIGNS.values() for hw in d.hw for inv in d.breaks_on(hw)}
    assert sorted(expected - set(ROWS)) == [], "add these to ROWS"
    assert sorted(set(ROWS) - expected) == [], "no design expects these any more"


#: rows that take 15 s or more
SLOW = {
    ("pasid-per-rid", "vtd", "refcount-matches"),
    ("pasid-per-rid", "smmuv3", "refcount-matches"),
    ("pasid-freed-at-mm-exit", "vtd", "global-pasid-consistent"),
    ("pasid-freed-at-mm-exit", "smmuv3", "global-pasid-consistent"),
    ("pasid-per-rid", "vtd", "no-stale-translation"),
}


def _rows() -> list[object]:
    return [pytest.param(*r, id="-".join(r), marks=(pytest.mark.deep,) if r in SLOW else ())
            for r in sorted(ROWS)]


@pytest.mark.parametrize("design,hw,invariant", _rows())
def test_expected_break_is_reached_alone(design: str, hw: str, invariant: str) -> None:
    world, length = ROWS[(design, hw, invariant)]
    d = DESIGNS[design]
    r = check_explore(d, hw, with_design_bounds(WORLDS[world], d.check_bounds), get([invariant]),
                      max_states=MAX_STATES)
    assert r.trace is not None, f"{design} on {hw} keeps {invariant} in {world}: {r.extra['summary']}"
    listing = "\n".join(r.trace.listing(with_hw=False))
    assert r.violated == invariant
    assert len(r.trace) == length, listing
    # a design that changes boot itself ("boot" in changed_calls) may break with no call
    assert {s.action for s in r.trace.steps} & set(d.changed_calls) or (
        length == 0 and "boot" in d.changed_calls), listing
