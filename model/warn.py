"""Every WARN, oops and use-after-free the model can report, declared once and classified.

The kernel catches most of its own IOMMU bugs with generic detectors rather than
IOMMU-specific checks: KASAN (a use of freed memory), WARN_ON (an internal
consistency the code relies on), an oops (a NULL or wild dereference). The model
records each such event at the place the kernel would, as a `KernelWarning`
(a `str`, so a trace prints it as before) naming its `WarnSite`. Each site says
which kernel function holds it, the condition, and its class:

* MISUSE: the kernel reporting a caller's error at an API entry (a WARN_ON on a
  bad argument). Reaching it is allowed when the call the caller made is that
  entry; when the core or a driver misuses its own API internally it is a bug.
* BUG: an internal inconsistency (a refcount, a list the code expects to hold an
  entry, a must-succeed step that failed). A correct caller never reaches it.
* UAF: an access to (or a second free of) an object the kernel already freed.
* OOPS: a NULL dereference the kernel would crash on.
* TORN: hardware could read a half-written entry (the hitless-entry-update
  invariant owns it).
* WALK: a page-table page freed while a walk cache still points at it (the
  walk-cache-live invariant owns it).

The `no-kernel-warn`, `no-use-after-free` and `no-oops` invariants
(invariants/kernel_bugs.py) read these records; `docs/` lists the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class WarnClass(Enum):
    MISUSE = "misuse"
    BUG = "bug"
    UAF = "use-after-free"
    OOPS = "oops"
    TORN = "torn entry"
    WALK = "freed table still cached"


@dataclass(frozen=True)
class WarnSite:
    id: str
    function: str  # the kernel function that holds the WARN (or does the access)
    condition: str  # what the kernel checks, in kernel terms
    klass: WarnClass
    #: the text every record of this site starts with (traces and older tests read it)
    prefix: str = ""


class KernelWarning(str):
    """One WARN/oops/use-after-free event: its text, and the site it came from."""

    site: WarnSite

    def __new__(cls, site: WarnSite, detail: str) -> "KernelWarning":
        self = super().__new__(cls, f"{site.prefix}{detail}")
        self.site = site
        return self

    def __reduce__(self) -> tuple[object, ...]:
        return (KernelWarning, (self.site, str(self)[len(self.site.prefix):]))


M, B, U, O, T = WarnClass.MISUSE, WarnClass.BUG, WarnClass.UAF, WarnClass.OOPS, WarnClass.TORN
W = WarnClass.WALK

_SITES = (
    # -- iommu.c: probe, domains, RID attach, DMA ownership -------------------------------
    WarnSite("first_attach_failed", "iommu_setup_default_domain",
             "the very first attach of the default domain failed", B, "iommu_setup_default_domain: "),
    WarnSite("probe_attach_failed", "iommu_probe_device",
             "attaching a new group member to the group's domain failed", B, "probe: "),
    WarnSite("domain_double_free", "iommu_domain_free",
             "the domain is not a live dynamic domain (freed already, or static)", U, "use-after-free: "),
    WarnSite("domain_free_in_use", "iommu_domain_free",
             "the domain is still attached to a RID or a PASID", U, "use-after-free: "),
    WarnSite("set_domain_null", "__iommu_group_set_domain_internal",
             "WARN_ON(!new_domain)", B, "__iommu_group_set_domain_internal: "),
    WarnSite("must_succeed_failed", "__iommu_group_set_domain_nofail",
             "a must-succeed domain change failed", B, ""),
    WarnSite("revert_failed", "__iommu_group_set_domain_internal",
             "re-attaching the previous (good) domain failed", B, ""),
    WarnSite("detach_wrong_domain", "iommu_detach_device",
             "WARN_ON(domain != group->domain)", M, "iommu_detach_device: "),
    WarnSite("detach_not_singleton", "iommu_detach_device",
             "WARN_ON(list_count_nodes(&group->devices) != 1)", M, "iommu_detach_device: "),
    WarnSite("unuse_no_user", "iommu_device_unuse_default_domain",
             "WARN_ON(!group->owner_cnt || !xa_empty(&group->pasid_array))", M,
             "iommu_device_unuse_default_domain: "),
    WarnSite("claim_null_owner", "iommu_device_claim_dma_owner",
             "WARN_ON(!owner)", M, "iommu_device_claim_dma_owner: "),
    WarnSite("group_claim_null_owner", "iommu_group_claim_dma_owner",
             "WARN_ON(!owner)", M, "iommu_group_claim_dma_owner: "),
    WarnSite("release_not_owned", "__iommu_release_dma_ownership",
             "WARN_ON(!group->owner_cnt || !group->owner || !xa_empty(&group->pasid_array))", M,
             "__iommu_release_dma_ownership: "),
    # -- iommu.c: PASID attach -------------------------------------------------------------
    WarnSite("pasid_restore_failed", "__iommu_set_group_pasid",
             "rolling a device back to the old domain failed", B, ""),
    WarnSite("pasid_block_failed", "iommu_remove_dev_pasid",
             "the blocked domain's set_dev_pasid failed (PASID detach must succeed)", B, ""),
    WarnSite("pasid_attach_freed_domain", "iommu_attach_device_pasid",
             "the domain was freed", U, "use-after-free: "),
    WarnSite("pasid_detach_no_group", "iommu_detach_device_pasid",
             "dev->iommu_group is NULL (no check: NULL dereference)", O, "oops: "),
    WarnSite("pasid_detach_freed_domain", "iommu_detach_device_pasid",
             "the domain was freed", U, "use-after-free: "),
    WarnSite("replace_same_handle", "iommu_replace_device_pasid",
             "WARN_ON(curr == entry): reusing the attached handle", M, "iommu_replace_device_pasid: "),
    WarnSite("aux_detach_not_attached", "iommu_aux_detach_device",
             "the domain is not aux-attached to the device", M, "iommu_aux_detach_device: "),
    WarnSite("free_invalid_pasid", "iommu_free_global_pasid",
             "WARN_ON(pasid == IOMMU_PASID_INVALID)", M, "iommu_free_global_pasid: "),
    WarnSite("handle_freed", "iommu_attach_handle_get",
             "the pasid_array entry names an attach handle that was freed", U, "use-after-free: "),
    # -- iommu.c: PCI reset staging ------------------------------------------------------------
    WarnSite("reset_reentered", "pci_dev_reset_iommu_prepare",
             "WARN_ON(gdev->blocked): prepare again without done", M, "pci_dev_reset_iommu_prepare: "),
    WarnSite("reset_restore_failed", "pci_dev_reset_iommu_done",
             "WARN_ON(re-attaching group->domain or a PASID's domain failed)", B,
             "pci_dev_reset_iommu_done: "),
    # -- mm, mmu notifiers, iommu-sva.c ------------------------------------------------------
    WarnSite("release_group_busy", "iommu_release_device",
             "WARN_ON(owner_cnt || group->domain != default_domain) as the last device leaves", M,
             "iommu_release_device: "),
    WarnSite("vtd_release_iopf", "intel_iommu_release_device",
             "WARN_ON(info->iopf_refcount): released with IOPF still enabled", B,
             "intel_iommu_release_device: "),
    WarnSite("iopf_freed_handle", "iommu_sva_iopf_handler (iopf workqueue)",
             "an iopf group runs its handler through an attach handle already freed", U,
             "use-after-free: "),
    WarnSite("iopf_freed_domain", "iommu_sva_iopf_handler (iopf workqueue)",
             "an iopf group runs the fault handler of a freed domain", U, "use-after-free: "),
    WarnSite("notifier_freed_domain", "mmu_notifier callback",
             "a registered notifier calls into its freed domain", U, "use-after-free: "),
    WarnSite("notifier_after_unload", "mmu_notifier callback",
             "a notifier callback runs after the driver module was unloaded", U,
             "callback after module unload: "),
    WarnSite("free_notifier_after_unload", "free_notifier",
             "free_notifier runs after the driver module was unloaded", U,
             "callback after module unload: "),
    WarnSite("mmdrop_freed_mm", "mmdrop", "mm_count was already 0: the mm was freed", U,
             "use-after-free: "),
    WarnSite("unbind_freed_handle", "iommu_sva_unbind_device",
             "the SVA handle was freed (unbind after the last unbind)", U, "use-after-free: "),
    # -- any core access by id to an object the kernel freed (KASAN) --------------------------
    WarnSite("uaf_domain", "(core)", "a struct iommu_domain used after it was freed", U, "use-after-free: "),
    WarnSite("uaf_handle", "(core)", "an iommu_attach_handle / iommu_sva used after it was freed", U,
             "use-after-free: "),
    WarnSite("uaf_mm", "(core)", "an mm_struct (with its iommu_mm) used after the last mmdrop", U,
             "use-after-free: "),
    WarnSite("uaf_notifier", "(core)", "an mmu_notifier used after it was freed", U, "use-after-free: "),
    # -- drivers ---------------------------------------------------------------------------
    WarnSite("vtd_teardown_not_present", "intel_pasid_tear_down_entry",
             "the entry is not present but its first qword is not zero", B, "intel_pasid_tear_down_entry: "),
    WarnSite("vtd_no_did", "domain_remove_dev_pasid",
             "domain_id_iommu() on a domain with no iommu_domain_info on this IOMMU", O, "oops: "),
    WarnSite("vtd_dev_pasid_missing", "domain_remove_dev_pasid",
             "WARN_ON_ONCE(!dev_pasid): the (device, PASID) is not on the domain's dev_pasids", B,
             "domain_remove_dev_pasid: "),
    WarnSite("vtd_did_freed", "domain_detach_iommu",
             "the domain's iommu_domain_info (DID and its refcount) was freed", U, "use-after-free: "),
    WarnSite("vtd_parent_freed_with_nested", "intel_iommu_domain_free",
             "WARN_ON(!list_empty(&dmar_domain->s1_domains)): a nesting parent freed while "
             "domains are nested on it", B, "intel_iommu_domain_free: "),
    WarnSite("vtd_tags_freed", "cache_tag_assign/unassign_domain",
             "the domain's cache tag list was freed with the domain", U, "use-after-free: "),
    WarnSite("vtd_qi_hang", "qi_submit_sync",
             "an Invalidation Time-out Error for a device that is gone, retried forever: the "
             "hard-lockup watchdog fires", B, "hard lockup: "),
    WarnSite("smmu_asid_freed", "arm_smmu_domain_free / arm_smmu ASID users",
             "the domain's ASID was released already", U, "use-after-free: "),
    WarnSite("smmu_partial_block_unmap", "__arm_lpae_unmap (io-pgtable-arm)",
             "WARN_ONCE(\"Unmap of a partial large IOPTE is not allowed\"): an unmap smaller "
             "than the 2 MiB block it meets", M, "__arm_lpae_unmap: "),
    WarnSite("smmu_torn_entry", "arm_smmu_write_entry",
             "a store sequence lets hardware read a mix of the old and new entry", T, "torn entry: "),
    WarnSite("table_freed_while_cached", "iommu_put_pages_list / __arm_lpae_free_pgtable / "
             "tlb_remove_table", "a page-table page is freed while an IOMMU paging-structure "
             "(walk) cache entry still points at it", W, "freed table still cached: "),
    WarnSite("vtd_torn_entry", "intel_pasid_* / context entry writers",
             "a store sequence lets a multi-transaction fetch assemble a present entry that mixes "
             "two configurations (75ed00055c05, c3b1edea3791)", T, "torn entry: "),
)

SITES: dict[str, WarnSite] = {s.id: s for s in _SITES}
assert len(SITES) == len(_SITES), "warn site ids must be unique"


def site(site_id: str) -> WarnSite:
    """The declared site (a typo in a site id is a model bug, found at import by the tests)."""
    return SITES[site_id]


__all__ = ["KernelWarning", "SITES", "WarnClass", "WarnSite", "site"]
