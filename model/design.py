"""A design: one point in the space of API choices the seeds argue about.

The core and the drivers read their policies from `Kernel.design`; the
built-in designs, with their rationale, seeds and expected verdicts, live in
`model.designs.catalog`. `UPSTREAM` is current mainline (kernel-core-api.md,
hw-tables.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable


class PasidFree(Enum):
    """When an mm's SVA PASID returns to the allocator."""

    MMDROP = "at the last mmdrop (__mmdrop -> mm_pasid_drop), v5.18+"
    MM_EXIT = "when the address space is torn down (exit_mmap)"
    LAST_UNBIND = "when the last bond of the mm is unbound (2019-era refcounted PASID)"


class PasidAlloc(Enum):
    """Where PASID values come from (seed 001)."""

    GLOBAL = "one system-wide space for every user (iommu_global_pasid_ida, v6.6+)"
    PER_RID = "a separate space per device (RID)"
    GLOBAL_FLAG = ("per device, except that allocations flagged 'must work for all RIDs' "
                   "(ENQCMD, i.e. SVA) come from one global space reserved on every RID")


class NotifierFree(Enum):
    """How a driver frees an SVA domain that embeds an mmu_notifier (seed 003)."""

    UNREGISTER = "mmu_notifier_unregister, then kfree"
    PUT = "mmu_notifier_put; kfree in the free_notifier callback"
    KFREE_EARLY = "kfree while the notifier is still registered"


#: API features a design may have; actions that need a missing feature do not exist.
FEATURES = frozenset({
    "dma_owner",  # iommu_device_claim_dma_owner & co (v5.19)
    "kernel_pasid",  # iommu_attach_device_pasid by kernel drivers (v6.2) with a PASID allocator
    "aux",  # iommu_aux_attach_device / detach / get_pasid (v5.2-v5.17)
    "sva",  # iommu_sva_bind_device / unbind
    "enqcmd",  # x86 ENQCMD with the IA32_PASID MSR (v5.18 enablement)
    "dma_api",  # dma_map_page into the default domain
})
UPSTREAM_FEATURES = FEATURES - {"aux"}

#: driver and core variants a design may switch on (`Design.knobs`), each read by one
#: `design.has(...)` in model/; a name not in this table changes nothing, so it is refused
KNOBS: dict[str, str] = {
    "core.claim_ignores_pasids": "DMA-ownership claim does not look at attached PASIDs",
    "core.mmdrop_keeps_pasid": "__mmdrop does not return the mm's PASID to the allocator",
    "core.set_group_pasid_no_rollback": "a failed multi-device set_dev_pasid is not unwound",
    "core.sva_domain_no_mmgrab": "the SVA domain does not hold a reference on its mm",
    "core.sva_free_before_detach": "the last unbind frees the SVA domain before detaching it",
    "reset.prepare_noop": "pci_dev_reset_iommu_prepare blocks nothing (a reset before v7.0)",
    "reset.prepare_rid_only": "pci_dev_reset_iommu_prepare blocks the RID but not the PASIDs",
    "reset.done_restores_default": "pci_dev_reset_iommu_done re-attaches the default domain, "
                                   "not group->domain",
    "reset.done_whole_group": "pci_dev_reset_iommu_done re-sets each PASID on every device of the "
                              "group (c279e83953d9 before 1615e889)",
    "smmu.sva_cpu_asid": "SMMUv3 SVA CDs use the process's CPU ASID (the 2022 scheme)",
    "smmu.track_pasid_domains": "SMMUv3 remembers each PASID's domain itself (no old domain passed)",
    "smmu.detach_skip_atc_inv": "SMMUv3 PASID detach issues no CMD_ATC_INV",
    "smmu.identity_rid_plain_ste": "SMMUv3 installs a plain bypass STE for an identity RID even "
                                   "while PASIDs use the CD table",
    "vtd.ats_late_no_devtlb_tag": "VT-d enables ATS in probe_finalize without assigning the RID "
                                  "domain's DEVTLB cache tag (before 25b1b75bbaf9)",
    "vtd.release_keeps_pasid_table": "VT-d release_device leaves the PASID table and the device "
                                     "info allocated",
    "core.release_without_release_domain": "the core calls release_device without attaching the "
                                           "release (blocking) domain first",
    "vtd.context_own_rid_only": "VT-d sets up the SM context entry for the device's own RID, "
                                "not for its DMA aliases",
    "smmu.ste_first_stream_only": "SMMUv3 installs the STE in the master's first stream only, "
                                  "not in a DMA alias's",
    "vtd.drain_on_zero_entry": "VT-d PASID teardown drains the PRQ also when it finds the entry "
                               "already zeroed (a proposed fix: SVA unbind after mm exit)",
    "vtd.iopf_disable_before_teardown": "VT-d's blocking set_dev_pasid disables IOPF before the "
                                        "teardown, so the PRQ drain finds IOPF off",
    "vtd.page_response_pcie_codes": "VT-d page responses carry the PCIe response codes (Response "
                                    "Failure 0xF) instead of the kernel enum's values",
    "vtd.qi_retry_on_ite": "VT-d retries a queue that timed out on a gone device forever "
                           "(qi_submit_sync before 80a9b50c)",
    "vtd.devtlb_inv_ignores_presence": "VT-d teardown flushes the device-TLB of a device that is "
                                       "gone (before 4fc82cd907ac)",
    "vtd.did_from_cleared_entry": "VT-d teardown reads the DID after clearing the PASID entry",
    "vtd.shared_did_colliding": "VT-d gives every UNMANAGED first-stage domain one DID",
    "vtd.teardown_skip_pasid_cache": "VT-d teardown skips the PASID-cache invalidation",
    "vtd.teardown_skip_devtlb": "VT-d teardown skips the device-TLB invalidation",
    "vtd.teardown_skip_clear_entry": "VT-d teardown leaves the PASID entry present",
    "vtd.teardown_zero_present_entry": "VT-d teardown zeroes the live PASID entry before the "
                                        "flushes (before 75ed00055c05)",
    "vtd.psi_mask_from_page_count": "VT-d takes the invalidation mask from the page count alone "
                                    "and aligns the address down (an unaligned range loses its "
                                    "tail)",
    "smmu.iotlb_sync_exclusive_end": "SMMUv3 iotlb_sync reads the gather's inclusive end as "
                                     "exclusive (size end - start)",
    "vtd.pasid_replace_in_place": "VT-d replaces a live PASID entry by copying the new one over "
                                  "it (the v6.13-v6.19 intel_pasid_replace_* helpers)",
    "vtd.tlb_sync_ih_with_freelist": "VT-d iotlb_sync keeps IH = 1 (leaf only) when the unmap "
                                     "freed a page-table page",
    "smmu.flush_walk_leaf": "SMMUv3 tlb_flush_walk invalidates with Leaf = 1 before a table "
                            "page is freed",
    "vtd.notifier_leaf_only": "VT-d's secondary-TLB notifier flushes with IH = 1 (leaf only)",
    "vtd.parent_flush_skips_nesting_tags": "VT-d flushes a nesting parent's own cache tags only, "
                                           "not the NESTING_* tags of domains nested on it",
    "vtd.nested_devtlb_by_parent_range": "VT-d flushes NESTING_DEVTLB tags over the parent's IPA "
                                         "range instead of the whole device TLB",
    "smmu.parent_flush_skips_nh_all": "SMMUv3 flushes a nesting parent with TLBI_S2_IPA only, "
                                      "without the TLBI_NH_ALL(vmid) for the nested S1 entries",
    "smmu.nested_atc_by_range": "SMMUv3 invalidates a nested master's ATC over the parent's IPA "
                                "range instead of entirely (no nested_ats_flush)",
    "vtd.nested_share_parent_did": "VT-d nested domains on one parent share one DID (seed 003's "
                                   "long-term idea)",
    "core.kva_free_without_iommu_flush": "x86 frees kernel page-table pages without telling the "
                                         "IOMMU (before e37d5a2d60a3, CVE-2025-71202)",
    "core.munmap_free_table_before_flush": "munmap frees the CPU's page-table page before the "
                                           "mmu_gather flush calls the secondary-TLB notifier",
    "pt.gather_requested_size": "the generic page table gathers the length the caller asked to "
                                "unmap, not the 2 MiB leaf it cleared (iommupt before "
                                "ee6e69d03255)",
    "smmu.ttl_from_leaf_size": "SMMUv3 range invalidations take TTL from the domain's smallest "
                               "page size, not the gather's granule",
}

#: what `Design.kind` may be
KINDS = ("seed", "variant", "user")


@dataclass(frozen=True)
class Design:
    name: str
    summary: str = ""
    rationale: str = ""
    seeds: tuple[str, ...] = ()
    history: str = ""  # the kernel history it reflects
    features: frozenset[str] = UPSTREAM_FEATURES
    #: seed 002: iommu_attach_device fails (-EPERM) while PASID (aux/SVA) users exist
    attach_refused_while_pasid_users: bool = False
    #: before DMA ownership (v5.19), attaching an UNMANAGED domain to the whole device
    #: was how VFIO handed it to a guest
    handover_by_attach: bool = False
    pasid_alloc: PasidAlloc = PasidAlloc.GLOBAL
    pasid_free: PasidFree = PasidFree.MMDROP
    #: seed 000: whether PASID detach tells the driver the old domain
    detach_passes_old: bool = True
    notifier_free: NotifierFree = NotifierFree.PUT
    #: module exit calls mmu_notifier_synchronize() (seed 003)
    notifier_sync_at_unload: bool = True
    #: named driver variants (e.g. "vtd.teardown_skip_pasid_cache"), read by the drivers
    knobs: frozenset[str] = field(default_factory=frozenset)
    #: hardware kinds the design speaks about (others: not applicable)
    hw: tuple[str, ...] = ("vtd", "smmuv3")
    #: expected verdicts as we read the seeds: hw -> invariant ids it breaks (empty: holds)
    expect_breaks: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: "seed" for the seeds' alternatives, "variant" for deliberately broken drivers,
    #: "user" for design files
    kind: str = "seed"
    #: the calls the design changes: a counterexample must contain one of them
    changed_calls: tuple[str, ...] = ()
    #: the smallest world that shows its break: a named world of checker/worlds.py
    #: ("sva1") or bounds over Bounds() ("devices=2,processes=2,..."); the default
    #: `check` explores it after its ladder of small worlds
    check_bounds: str = ""
    #: a user design may bring its own driver: (hw, bounds) -> Driver (model.drivers.base)
    driver_factory: Callable[[str, Any], Any] | None = field(default=None, compare=False)
    #: a design may bring its own core, exactly as it brings a driver: a callable with
    #: Kernel's signature (hw, devices, design=, driver=), usually a model.core.Kernel
    #: subclass that overrides one call
    kernel_factory: Callable[..., Any] | None = field(default=None, compare=False)

    def has(self, knob: str) -> bool:
        return knob in self.knobs

    def breaks_on(self, hw: str) -> tuple[str, ...]:
        return dict(self.expect_breaks).get(hw, ())


UPSTREAM = Design(
    name="upstream",
    summary="current mainline (about v7.0)",
    rationale=(
        "Global PASID allocator, set_dev_pasid with the old domain, PASID detach "
        "through the blocked domain, SVA handles shared per (group, mm), PASID freed "
        "at the last mmdrop, VT-d SVA on FLPT_DEFAULT_DID, mmu_notifier_put with "
        "free_notifier and a synchronize at module unload, DMA-ownership claim "
        "refused while PASIDs are attached."
    ),
    history="v6.13 old domain to set_dev_pasid; v6.14 blocked-domain detach; v6.6 global "
            "PASID IDA; v5.18 PASID freed at __mmdrop; v5.19 DMA ownership.",
)
