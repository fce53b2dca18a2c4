"""The named small worlds: bounds the portfolio explores exhaustively, smallest first.

A world is a model configuration, as a TLA+ .cfg is: it says nothing about the
system, only how much of it a check looks at. Each is small enough that the
saturated explorer (`--saturate-caches`) exhausts it for upstream, so "holds in
sva1" is a proof within those bounds, not a sample. A design's `check_bounds` is one
more world, its own, explored after the ladder: the smallest world its rationale
says breaks it (two devices for the RID-spanning PASID debates, a shared group and
one injected fault for set-group-pasid-no-rollback).

The ladder (`LADDER`) is what `iommucheck check` proves by default, in order;
the others are explored with `--world NAME` or with a wall-clock `--budget` large
enough to reach them. The state counts are upstream's, caches saturated, every
invariant; tests/checker/test_portfolio.py asserts them, so a model change that
alters one is noticed (and this table and `iommucheck worlds` are updated with it).
"""

from __future__ import annotations

from dataclasses import dataclass

from model.bounds import Bounds


class UnknownWorld(KeyError):
    """A --world name that is not in WORLDS (one line, exit 2)."""


@dataclass(frozen=True)
class World:
    name: str
    bounds: str  # NAME=VALUE,... over Bounds()
    doc: str
    #: upstream, caches saturated, every invariant: (states on vtd, states on smmuv3)
    states: tuple[int, int]

    def to_bounds(self) -> Bounds:
        return Bounds().override(self.bounds)


_ONE = "iova_pages=1,phys_pages=1,max_pasids=2"

WORLDS: dict[str, World] = {w.name: w for w in (
    World("sva1", f"devices=1,processes=1,paging_domains=0,{_ONE}",
          "one PASID-capable device, one process: SVA bind/unbind, mm exit, notifiers, ENQCMD",
          (350, 350)),
    World("paging1", f"devices=1,processes=0,paging_domains=1,{_ONE}",
          "one device, one paging domain: RID and PASID attach, replace, DMA ownership, unmap",
          (276, 168)),
    World("small1", f"devices=1,processes=1,paging_domains=1,{_ONE}",
          "one device, one process, one paging domain: SVA and paging PASIDs side by side",
          (3_518, 4_218)),
    World("mixed1", f"devices=0,mixed_group=1,processes=1,paging_domains=1,{_ONE}",
          "a group of a PASID-capable and a non-PASID function (one ACS boundary)",
          (1_296, 4_496)),
    World("shared1", f"devices=0,shared_group=1,shared_ats=1,processes=1,paging_domains=1,{_ONE}",
          "two PASID-capable devices with ATS in one group: group-wide PASID attach",
          (2_352, 5_776)),
    World("reset1", f"devices=1,processes=1,paging_domains=1,pci_reset=1,{_ONE}",
          "small1 with PCI resets (pci_dev_reset_iommu_prepare / _done) of the ATS device",
          (4_616, 7_986)),
    World("resetS1", f"devices=0,shared_group=1,shared_ats=1,processes=0,paging_domains=1,"
                     f"pci_reset=1,{_ONE}",
          "a shared group whose functions are reset one at a time: the reset stays per device",
          (424, 572)),
    World("hotplug1", f"devices=1,processes=1,paging_domains=1,hotplug=1,{_ONE}",
          "small1 where the ATS device may be surprise-removed (no more DMA, no ATS answer)",
          (14_158, 26_451)),
    World("pri1", f"devices=1,processes=1,paging_domains=0,pri=1,{_ONE}",
          "sva1 with PRI page requests (device_page_request, prq_event_thread, iopf_work); on "
          "vtd upstream breaks iopf-drained (design vtd-sva-unbind-after-mm-exit): the vtd count "
          "is the proposed fix's, vtd-drain-on-zero-entry; smmuv3 takes no page requests",
          (510, 350)),
    World("pt1", f"devices=1,processes=1,paging_domains=1,passthrough=1,{_ONE}",
          "small1 with identity (pass-through) default domains: the RID bypasses while PASIDs "
          "translate (VT-d pass-through entry, SMMUv3 CD table with S1DSS=BYPASS)",
          (947, 2_109)),
    World("reprobe1", f"devices=1,processes=0,paging_domains=1,reprobe=1,{_ONE}",
          "paging1 where the device may be released (iommu_release_device) and hot-added "
          "again (iommu_probe_device)",
          (834, 176)),
    World("alias1", f"devices=0,alias_device=1,processes=0,paging_domains=1,reprobe=1,{_ONE}",
          "devB, a conventional PCI function behind a PCIe-to-PCI bridge: its DMA carries the "
          "bridge's requester ID (a DMA alias); released and probed again",
          (153, 64)),
    World("range1", "devices=1,processes=0,paging_domains=1,iova_pages=3,phys_pages=1,max_pasids=2,"
                    "range_pages=2",
          "paging1 with three IOVA pages and two-page iommu_map / iommu_unmap at any "
          "alignment, and iommu_flush_iotlb_all: the range arithmetic of the invalidations",
          (8_784, 8_368)),
    World("rangeR1", "devices=1,processes=0,paging_domains=1,iova_pages=3,phys_pages=1,max_pasids=2,"
                     "range_pages=2,smmu_range_inv=1",
          "range1 on an SMMU with range invalidation (TLBI by VA with TG / SCALE / NUM); "
          "the same world as range1 on vtd",
          (8_784, 8_368)),
    World("walk1", "devices=1,processes=0,paging_domains=1,iova_pages=1,phys_pages=1,max_pasids=2,"
                   "walk_caches=1",
          "paging1 with leaf table pages and walk caches: a 2 MiB iommu_unmap frees the "
          "leaf table page (VT-d paging-structure cache, SMMUv3 walk cache)",
          (990, 680)),
    World("walkR1", "devices=1,processes=0,paging_domains=1,iova_pages=1,phys_pages=1,max_pasids=2,"
                    "walk_caches=1,smmu_range_inv=1",
          "walk1 on an SMMU with range invalidation: the walk flush before a table's free "
          "carries a TTL hint (the same world as walk1 on vtd)",
          (990, 680)),
    World("super1", "devices=1,processes=0,paging_domains=1,iova_pages=2,phys_pages=1,max_pasids=2,"
                    "superpages=1",
          "paging1 with two IOVA pages and a 2 MiB iommu_map / iommu_unmap at IOVA 0: a VT-d "
          "superpage or SMMUv3 block, cached with its size, and unmaps of one page of it",
          (1_272, 920)),
    World("superR1", "devices=1,processes=0,paging_domains=1,iova_pages=2,phys_pages=1,max_pasids=2,"
                     "superpages=1,smmu_range_inv=1",
          "super1 on an SMMU with range invalidation: a 2 MiB unmap's TLBI carries TTL 2 "
          "(the same world as super1 on vtd)",
          (1_272, 920)),
    World("superWalk1", "devices=1,processes=0,paging_domains=1,iova_pages=1,phys_pages=1,max_pasids=2,"
                        "walk_caches=1,superpages=1",
          "walk1 with 2 MiB maps: a block replaces a leaf table its 4 KiB unmaps emptied, "
          "after the flush that drops the walk caches' pointer to it",
          (1_290, 890)),
    World("walkSva1", "devices=1,processes=1,paging_domains=0,iova_pages=1,phys_pages=1,max_pasids=2,"
                      "walk_caches=1",
          "sva1 with leaf table pages: the process's munmap of the 2 MiB frees its page-table "
          "page after the notifier's flush",
          (1_205, 1_205)),
    World("walkKva1", "devices=1,processes=1,paging_domains=0,iova_pages=1,phys_pages=1,max_pasids=2,"
                      "walk_caches=1,kernel_pgtable=1",
          "walkSva1 with x86's kernel half: a PASID's DMA to a kernel address caches the "
          "kernel leaf table's pointer (VT-d; SMMUv3 never walks TTBR1), and vfree frees "
          "that page (e37d5a2d60a3, CVE-2025-71202) and vmalloc makes another",
          (6_657, 5_985)),
    World("nest1", "devices=1,processes=0,paging_domains=2,iova_pages=2,phys_pages=1,max_pasids=2,"
                   "nesting=1",
          "one device, a nesting parent and a nested domain on it (the guest's stage-1 swaps "
          "IOVA pages 0 and 1 onto IPA pages 1 and 0): the parent's unmaps must reach the "
          "nested domain's tags (VT-d: NESTING_* cache tags; SMMUv3: TLBI_NH_ALL by VMID "
          "and the nested masters' whole ATC)",
          (28_872, 85_224)),
    World("rangeSva1", "devices=1,processes=1,paging_domains=0,iova_pages=3,phys_pages=1,max_pasids=2,"
                       "range_pages=2",
          "sva1 with three IOVA pages: a process's two-page munmap reaches the SVA domain's "
          "notifier as one range (arch_invalidate_secondary_tlbs)",
          (4_568, 4_568)),
)}

#: the name of a design's own world (bounds text in its check_bounds) in verdicts and JSON
DESIGN_WORLD = "design"

#: proved by default, in this order (each a few seconds at most for upstream)
LADDER: tuple[str, ...] = ("sva1", "paging1", "small1")


def design_world(check_bounds: str) -> tuple[str, Bounds] | None:
    """A design's own world: `check_bounds` is a world's name ("small1") or bounds
    text over Bounds() ("devices=2,processes=2,..."); None when it has none."""
    if not check_bounds:
        return None
    if check_bounds in WORLDS:
        return check_bounds, WORLDS[check_bounds].to_bounds()
    return DESIGN_WORLD, Bounds().override(check_bounds)


def with_design_bounds(base: Bounds, check_bounds: str) -> Bounds:
    """`base` with a design's bounds text on top (a world name, or nothing, leaves it):
    how a single-engine run at given bounds takes the design's own requirements, such as
    set-group-pasid-no-rollback's shared group and fault."""
    return base if not check_bounds or check_bounds in WORLDS else base.override(check_bounds)


def get_world(name: str) -> str:
    """A --world name: one of WORLDS, or DESIGN_WORLD (each design's own)."""
    if name in WORLDS or name == DESIGN_WORLD:
        return name
    raise UnknownWorld(f"unknown world {name!r} (known: {', '.join(WORLDS)}, {DESIGN_WORLD} "
                       "(each design's own); see `iommucheck worlds`)")


__all__ = ["DESIGN_WORLD", "design_world", "with_design_bounds", "LADDER", "UnknownWorld", "WORLDS", "World", "get_world"]
