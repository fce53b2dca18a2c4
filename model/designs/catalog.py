"""Built-in designs: the seeds' alternatives, and deliberately broken driver variants.

Each design names the API generation and the policies under debate, with a
rationale, the seed file(s) it comes from, the kernel history it reflects, and
the verdict we expect from reading the seeds (`expect_breaks`). The tests check
every expectation on every driver; `docs/designs.md` shows what the checker
actually found.
"""

from __future__ import annotations

from dataclasses import replace

from model.design import (
    FEATURES,
    UPSTREAM,
    UPSTREAM_FEATURES,
    Design,
    NotifierFree,
    PasidAlloc,
    PasidFree,
)

S000 = "000_5d95e02cbbab3d3a.txt"
S001 = "001_218348e09bb14a03.txt"
S002 = "002_d140947772abe919.txt"
S003 = "003_3c72ab6e8a843ef5.txt"
S004 = "004_b0f85d91fc5ccfc6.txt"

BOTH = ("vtd", "smmuv3")
#: the reset1 world (checker/worlds.py) as bounds text: one ATS device, a process, a
#: paging domain, PCI resets on
RESET1 = "devices=1,processes=1,paging_domains=1,iova_pages=1,phys_pages=1,max_pasids=2,pci_reset=1"
#: the hotplug1 world: the same with surprise removal instead of resets
HOTPLUG1 = "devices=1,processes=1,paging_domains=1,iova_pages=1,phys_pages=1,max_pasids=2,hotplug=1"
#: the pri1 world: one ATS/PRI device, one process, page requests on
PRI1 = "devices=1,processes=1,paging_domains=0,iova_pages=1,phys_pages=1,max_pasids=2,pri=1"
#: the same where the interrupt thread may fail to allocate an iopf group
PRI1_NOMEM = PRI1 + ",faults=1"
#: the pt1 world: small1 with identity (pass-through) default domains
PT1 = "devices=1,processes=1,paging_domains=1,iova_pages=1,phys_pages=1,max_pasids=2,passthrough=1"
#: the reprobe1 world: paging1 where the device may be released and probed again
REPROBE1 = "devices=1,processes=0,paging_domains=1,iova_pages=1,phys_pages=1,max_pasids=2,reprobe=1"
#: the alias1 world: a conventional PCI function behind a PCIe-to-PCI bridge, whose DMA
#: carries the bridge's requester ID, with one paging domain; released and probed again
ALIAS1 = ("devices=0,alias_device=1,processes=0,paging_domains=1,iova_pages=1,phys_pages=1,"
          "max_pasids=2,reprobe=1")
#: calls whose driver path tears a PASID (or RID) entry down
TEARDOWN_CALLS = ("iommu_attach_device", "iommu_detach_device", "iommu_device_claim_dma_owner",
                  "iommu_device_release_dma_owner", "iommu_detach_device_pasid",
                  "iommu_replace_device_pasid", "iommu_sva_unbind_device", "process_exit")


def _breaks(ids: tuple[str, ...], hw: tuple[str, ...] = BOTH) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple((h, ids) for h in hw)


# The 2018 world: aux domains and SVA, no DMA-ownership API, no kernel PASID API,
# no ENQCMD; VFIO handed a device to a guest by attaching an UNMANAGED domain.
AUX_FEATURES = frozenset({"aux", "sva", "dma_api"})
# The 2022 SMMUv3 SVA scheme: the CD of an SVA domain used the process's CPU ASID.
CPU_ASID = frozenset({"smmu.sva_cpu_asid"})

_SEED_DESIGNS = (
    UPSTREAM,
    # -- seed 002 (2018): aux domains --------------------------------------------------
    Design(
        name="aux-2018",
        summary="aux domains; iommu_attach_device refused while aux/SVA users exist",
        rationale=(
            "Joerg Roedel's device-feature proposal: iommu_aux_attach_device attaches a "
            "domain at its own PASID, and as long as aux (or SVA) domains are attached "
            "'any tries to call iommu_attach_device() should fail', because detach cannot "
            "fail. Without a DMA-ownership API, attaching an UNMANAGED domain to the whole "
            "device is how VFIO hands it to a guest, so the refusal is what keeps PASID "
            "users and a new whole-device owner apart."
        ),
        seeds=(S002,),
        history="aux API v5.2-v5.17 (removed by 8652d875939b); the Intel driver returned "
                "-EPERM for a RID attach while AUX was enabled.",
        features=AUX_FEATURES,
        attach_refused_while_pasid_users=True,
        handover_by_attach=True,
        changed_calls=("iommu_attach_device",),
    ),
    Design(
        name="aux-2018-unguarded",
        summary="aux domains without the attach_device refusal",
        rationale=(
            "The same API without the guard: nothing stops the whole device being attached "
            "to a guest's domain while aux domains or SVA bonds still translate through it."
        ),
        seeds=(S002,),
        features=AUX_FEATURES,
        handover_by_attach=True,
        expect_breaks=_breaks(("exclusive-device-ownership", "no-attach-while-pasid-users")),
        check_bounds="paging1",  # the smallest world where its breaks show
        changed_calls=("iommu_attach_device",),
    ),
    # -- seed 004 (2019): the SVA bind handle ------------------------------------------------
    Design(
        name="sva-bind-2019",
        summary="refcounted bind handle, unbind always required; PASID refcounted by bonds",
        rationale=(
            "Joerg Roedel's handle: iommu_sva_bind_device returns a struct iommu_sva, "
            "binding the same (device, mm) again returns it with one more reference, and "
            "Jean-Philippe Brucker's conclusion that the driver must always call unbind, "
            "even after mm_exit, and that unbind cannot fail. The PASID belonged to the "
            "bonds (ioasid refcount) and went back at the last unbind. ENQCMD did not "
            "exist yet, so no CPU register held the PASID (see sva-bind-2019-enqcmd)."
        ),
        seeds=(S004,),
        history="v5.3 bind API with iommu_sva_ops.mm_exit (removed v5.8); handle sharing "
                "restored in v6.8-rc6 (65d4418c5002).",
        features=UPSTREAM_FEATURES - {"enqcmd"},
        pasid_free=PasidFree.LAST_UNBIND,
        changed_calls=("iommu_sva_unbind_device",),
    ),
    Design(
        name="sva-bind-2019-enqcmd",
        summary="the 2019 PASID lifetime (freed at last unbind) once ENQCMD exists",
        rationale=(
            "Why v5.18 tied the PASID to the mm (701fac40384f): with ENQCMD the PASID "
            "also lives in every thread's IA32_PASID MSR, which unbind cannot reach. "
            "Freeing it at the last unbind hands a value still in a live process's MSR "
            "to the next process. Beyond the expected pasid-not-reused-while-bound, this also "
            "breaks global-pasid-consistent (found by the BMC of proofs/bmc.py, replayed on "
            "the model): the first process's ENQCMD then names the second one's binding."
        ),
        seeds=(S004, S001),
        history="701fac40384f (v5.18): 'an allocated PASID's lifetime [is] bound to the "
                "lifetime of the process'.",
        pasid_free=PasidFree.LAST_UNBIND,
        # global-pasid-consistent: the freed value is still in the first process's
        # IA32_PASID when the next process is given it (found by proofs/bmc.py).
        expect_breaks=_breaks(("pasid-not-reused-while-bound", "global-pasid-consistent")),
        check_bounds="small1",  # the smallest world where its breaks show
        changed_calls=("iommu_sva_unbind_device",),
    ),
    Design(
        name="pasid-freed-at-mm-exit",
        summary="the PASID returns to the allocator when the address space is torn down",
        rationale=(
            "The first v5.18 placement of mm_pasid_drop, in __mmput: the PASID goes back "
            "at exit_mmap, while the device driver has not unbound yet (drivers unbind at "
            "file release, after exit_mmap). The next process can get the same PASID while "
            "the old bond still holds it in the pasid_array and the tables. Beyond the "
            "expected pasid-not-reused-while-bound, this also breaks global-pasid-consistent "
            "(found by the BMC of proofs/bmc.py, replayed on the model): one PASID value then "
            "names two processes' bindings."
        ),
        seeds=(S004, S001),
        history="'iommu/sva: Fix PASID use-after-free issue' (v5.18-rc) moved "
                "mm_pasid_drop to __mmdrop.",
        pasid_free=PasidFree.MM_EXIT,
        # global-pasid-consistent: the reused value is still in the old bond's
        # pasid_array entry, so one PASID names two processes (found by proofs/bmc.py).
        expect_breaks=_breaks(("pasid-not-reused-while-bound", "global-pasid-consistent")),
        changed_calls=("process_exit",),
        # two devices and two processes: the reused value is bound on the other RID, six
        # calls deep (no paging domain needed, one data page)
        check_bounds="devices=2,processes=2,paging_domains=0,iova_pages=1,phys_pages=1,max_pasids=3",
    ),
    # -- seed 001 (2021): global PASIDs for ENQCMD -----------------------------------------
    Design(
        name="pasid-per-rid",
        summary="PASIDs allocated per device (RID), SVA included",
        rationale=(
            "Jason Gunthorpe's starting point: 'PASID allocation is part of the iommu "
            "driver, it really shouldn't be global.' With ENQCMD a process has one PASID "
            "in its IA32_PASID MSR for every device, so a per-RID value can mean another "
            "process's address space on another device. On VT-d it also breaks seed 003's "
            "premise: SVA domains share FLPT_DEFAULT_DID because their PASIDs are unique, so "
            "two processes with the same per-RID PASID on two devices share IOTLB tags."
        ),
        seeds=(S001,),
        history="ioasid sets (v5.5-v6.3) allowed per-set spaces; mainline SVA has used one "
                "global space since v5.18 and the core IDA since v6.6.",
        pasid_alloc=PasidAlloc.PER_RID,
        # Found by the explorer, not in our first reading: on VT-d every SVA domain sits on
        # FLPT_DEFAULT_DID, so two processes given the same per-RID PASID on two devices of
        # one IOMMU share the IOTLB tag (DID 1, PASID) - seed 003's premise ("the PASID is
        # unique to each SVA domain") is exactly what a per-RID allocator takes away.
        # refcount-matches (found by the kernel-bug invariants): a kernel PASID user that
        # allocated PASID 1 on dev0 replaces "its" PASID 1 on dev1, which is the SVA bond's
        # there; the bond's handle goes with it while the SVA domain still counts it.
        expect_breaks=(("vtd", ("global-pasid-consistent", "did-pasid-tag-unique",
                                "no-stale-translation", "refcount-matches")),
                       ("smmuv3", ("global-pasid-consistent", "refcount-matches"))),
        changed_calls=("iommu_sva_bind_device",),
        # two devices, two processes: one per-RID PASID value for two address spaces
        check_bounds="devices=2,processes=2,paging_domains=1,iova_pages=1,phys_pages=2,max_pasids=3",
    ),
    Design(
        name="pasid-global-flag",
        summary="per-device PASIDs, except allocations flagged 'must work for all RIDs'",
        rationale=(
            "The compromise of seed 001: 'flag that allocation request with a must work "
            "for all RIDs flag and the iommu driver should take care of it'. SVA (ENQCMD) "
            "PASIDs come from one global space reserved on every RID; kernel PASID users "
            "allocate per device, outside the global values."
        ),
        seeds=(S001,),
        pasid_alloc=PasidAlloc.GLOBAL_FLAG,
        changed_calls=("iommu_sva_bind_device",),
    ),
    # -- seed 000 (2022): how a PASID is detached -------------------------------------------
    Design(
        name="detach-dev-pasid-2022",
        summary="attach_dev_pasid / detach_dev_pasid(domain); SMMUv3 SVA on the CPU ASID",
        rationale=(
            "Jean-Philippe Brucker's preference: a straightforward detach(dev, pasid, "
            "domain), so the driver knows the old domain and can invalidate the ASID its "
            "context descriptor used. With the 2022 SMMUv3 SVA scheme that ASID is the "
            "process's CPU ASID, which the CPU reuses once the SMMU lets it go."
        ),
        seeds=(S000,),
        history="2022 RFC attach/detach_dev_pasid (Lu Baolu); SMMUv3 SVA shared the CPU "
                "ASID until v6.11.",
        knobs=CPU_ASID,
        changed_calls=("iommu_detach_device_pasid", "iommu_sva_unbind_device"),
    ),
    Design(
        name="set-dev-pasid-blocking-2022",
        summary="detach = blocking domain's set_dev_pasid, old domain not passed, no record",
        rationale=(
            "Jason Gunthorpe's 'it is just renamed to blocking_domain->ops->set_dev_pasid()' "
            "taken literally: the driver learns only (dev, pasid, blocking). On SMMUv3 with "
            "the CPU-ASID scheme it cannot find the old ASID, so TLB entries tagged with it "
            "survive until the CPU hands the ASID to another process. VT-d reads the DID "
            "from the PASID entry it tears down, so its flushes are right, but its "
            "bookkeeping is per domain: without the old domain it cannot drop the "
            "(dev, PASID) from dev_pasids, unassign the cache tags or put the DID, so the "
            "DID's refcount drifts at the detach and the DID leaks when the domain is freed "
            "(found by refcount-matches and no-leak; v6.2's intel_iommu_remove_dev_pasid "
            "looked the domain up in the core's pasid_array for this reason). SMMUv3's "
            "master_domain list drifts the same way."
        ),
        seeds=(S000,),
        history="v6.2 remove_dev_pasid(dev, pasid) had exactly this shape; v6.10 passed "
                "the domain, v6.13 (b45a3777ceab) passes old to set_dev_pasid.",
        detach_passes_old=False,
        knobs=CPU_ASID,
        expect_breaks=(("smmuv3", ("asid-known-at-detach", "no-stale-translation",
                                   "refcount-matches")),
                       ("vtd", ("refcount-matches", "no-leak"))),
        check_bounds="small1",  # the smallest world where its breaks show
        changed_calls=("iommu_detach_device_pasid", "iommu_sva_unbind_device"),
    ),
    Design(
        name="set-dev-pasid-blocking-tracked",
        summary="same API; the SMMUv3 driver keeps its own PASID -> domain record",
        rationale=(
            "Jason Gunthorpe's 'Why would a driver need to keep additional tracking?' "
            "answered by doing it: the driver records which domain each PASID holds and "
            "looks the old ASID up at detach. Correct, at the price Jean-Philippe Brucker "
            "named: the tracking the core could have done. Only the SMMUv3 driver tracks: "
            "on VT-d the design is set-dev-pasid-blocking-2022, and its DID bookkeeping "
            "drifts and leaks the same way (refcount-matches, no-leak)."
        ),
        seeds=(S000,),
        detach_passes_old=False,
        knobs=CPU_ASID | {"smmu.track_pasid_domains"},
        expect_breaks=(("vtd", ("refcount-matches", "no-leak")),),
        check_bounds="paging1",  # the smallest world where its breaks show
        changed_calls=("iommu_detach_device_pasid", "iommu_sva_unbind_device"),
    ),
    Design(
        name="set-dev-pasid-old-2024",
        summary="set_dev_pasid(domain, dev, pasid, old): the core passes the old domain",
        rationale=(
            "Where mainline landed (v6.13, b45a3777ceab; v6.14 detach through the blocked "
            "domain): the blocking-domain API of seed 000 with the old domain passed in, "
            "so no driver has to track it. Checked here with the 2022 CPU-ASID SVA scheme, "
            "where knowing the old domain matters most."
        ),
        seeds=(S000,),
        knobs=CPU_ASID,
        changed_calls=("iommu_detach_device_pasid", "iommu_sva_unbind_device"),
    ),
    # -- seed 003 (2024): VT-d SVA domain IDs and domain lifetime ----------------------------
    Design(
        name="vtd-sva-shared-did",
        summary="all VT-d SVA domains on FLPT_DEFAULT_DID, told apart by PASID",
        rationale=(
            "Baolu Lu: 'The VT-d spec recommends that all SVA domains share a single domain "
            "ID. The PASID is unique to each SVA domain, hence the cache tags are unique.' "
            "Safe because SVA PASIDs are global."
        ),
        seeds=(S003,),
        history="intel_svm_set_dev_pasid uses FLPT_DEFAULT_DID; cache tags (v6.10) keyed by "
                "(DID, PASID).",
        hw=("vtd",),
        changed_calls=("iommu_sva_bind_device",),
    ),
    Design(
        name="vtd-shared-did-colliding",
        summary="one DID shared by first-stage paging domains whose PASIDs coincide",
        rationale=(
            "'Domains with unique PASIDs can share the same domain ID' read without its "
            "condition: every first-stage paging domain on the IOMMU uses one DID, and two "
            "of them attached at the same PASID (the RID's PASID 0 on two devices suffices) "
            "share IOTLB tags."
        ),
        seeds=(S003,),
        knobs=frozenset({"vtd.shared_did_colliding"}),
        hw=("vtd",),
        # two devices, each with its own paging domain at PASID 0 under the one DID
        check_bounds="devices=2,processes=1,paging_domains=2,iova_pages=1,phys_pages=1,max_pasids=2",
        # asid-known-at-detach follows: the shared tag stands for the other domain's
        # table while the first one's IOTLB entries are still cached under it.
        expect_breaks=(("vtd", ("did-pasid-tag-unique", "no-stale-translation",
                                "asid-known-at-detach")),),
        changed_calls=("iommu_attach_device",),
    ),
    Design(
        name="notifier-unregister",
        summary="SVA domain_free: mmu_notifier_unregister, then kfree",
        rationale=(
            "The pre-2024 intel_svm_domain_free: unregister (synchronous, waits for SRCU "
            "readers) and free. Safe, but unregister may sleep on the mm's notifier lock."
        ),
        seeds=(S003,),
        notifier_free=NotifierFree.UNREGISTER,
        changed_calls=("iommu_sva_unbind_device",),
    ),
    Design(
        name="notifier-put",
        summary="SVA domain_free: mmu_notifier_put; kfree in free_notifier; sync at unload",
        rationale=(
            "Baolu Lu's v2 12/12: 'dmar_domain free is defered to the mmu free_notifier "
            "callback', plus Jason Gunthorpe's condition: 'you need to have mmu notifier "
            "call on module unload when using this scheme'."
        ),
        seeds=(S003,),
        notifier_free=NotifierFree.PUT,
        changed_calls=("iommu_sva_unbind_device",),
    ),
    Design(
        name="notifier-put-no-sync",
        summary="mmu_notifier_put without mmu_notifier_synchronize at module unload",
        rationale=(
            "The put scheme without Jason Gunthorpe's condition: a free_notifier still "
            "queued behind an SRCU grace period runs after the module's text is gone."
        ),
        seeds=(S003,),
        notifier_free=NotifierFree.PUT,
        notifier_sync_at_unload=False,
        # free_notifier running in unloaded module text is also a use-after-free (KASAN)
        expect_breaks=_breaks(("no-callback-after-module-unload", "no-use-after-free")),
        check_bounds="sva1",  # the smallest world where its breaks show
        changed_calls=("module_unload",),
    ),
    Design(
        name="notifier-kfree-early",
        summary="SVA domain freed while its mmu_notifier is still registered",
        rationale=(
            "What the put scheme exists to avoid: the domain (and the notifier embedded in "
            "it) is freed at unbind, but the notifier is still on the mm's list, so the next "
            "invalidation or the release at exit calls into freed memory."
        ),
        seeds=(S003,),
        notifier_free=NotifierFree.KFREE_EARLY,
        # the next notifier callback into the freed domain is the use-after-free itself
        expect_breaks=_breaks(("domain-outlives-notifier", "no-use-after-free")),
        check_bounds="sva1",  # the smallest world where its breaks show
        changed_calls=("iommu_sva_unbind_device",),
    ),
)

# -- deliberately broken driver variants: the tool's own regression targets --------------
_VARIANTS = (
    Design(
        name="vtd-teardown-no-pasid-cache-flush",
        summary="VT-d PASID teardown without the PASID-cache invalidation",
        rationale="Skips step 6 of intel_pasid_tear_down_entry (hw-tables A.8.2): hardware "
                  "may keep using the cached PASID entry after the detach, and a fetch begun "
                  "before P was cleared may still be reading when the entry is zeroed (a "
                  "torn read).",
        knobs=frozenset({"vtd.teardown_skip_pasid_cache"}),
        hw=("vtd",), kind="variant",
        expect_breaks=(("vtd", ("hitless-entry-update", "no-stale-translation", "detached-pasid-blocked",)),),
        check_bounds="sva1",  # the smallest world where its breaks show
        changed_calls=TEARDOWN_CALLS,
    ),
    Design(
        name="vtd-teardown-did-after-clear",
        summary="VT-d teardown flushing with the DID read after the entry was cleared",
        rationale="Reads the DID once the PASID entry is zero, so every flush targets DID 0: "
                  "the right granularity with the wrong tag (hw-tables A.8.2, step 3). The "
                  "PASID-cache invalidation by DID 0 does not cover the entry, so the zeroing "
                  "after it can also race a fetch (a torn read).",
        knobs=frozenset({"vtd.did_from_cleared_entry"}),
        hw=("vtd",), kind="variant",
        expect_breaks=(("vtd", ("hitless-entry-update", "no-stale-translation", "asid-known-at-detach", "detached-pasid-blocked", "mm-exit-stops-dma",)),),
        check_bounds="sva1",  # the smallest world where its breaks show
        changed_calls=TEARDOWN_CALLS,
    ),
    Design(
        name="vtd-teardown-no-devtlb-flush",
        summary="VT-d PASID teardown without the device-TLB invalidation",
        rationale="Skips step 8 of intel_pasid_tear_down_entry: the device's ATC keeps the "
                  "old translation (the PRQ drain batch hides it for SVA, not for paging "
                  "domains).",
        knobs=frozenset({"vtd.teardown_skip_devtlb"}),
        hw=("vtd",), kind="variant",
        expect_breaks=(("vtd", ("no-stale-translation", "mm-exit-stops-dma", "detached-pasid-blocked",)),),
        check_bounds="sva1",  # the smallest world where its breaks show
        changed_calls=TEARDOWN_CALLS,
    ),
    Design(
        name="vtd-pasid-replace-in-place",
        summary="VT-d PASID replace by copying the new entry over the live one",
        rationale="The v6.13-v6.19 intel_pasid_replace_* helpers (7543ee63e811): a 64-byte "
                  "struct copy over a present entry, then intel_pasid_flush_present with the "
                  "old DID. A fetch in several transactions may read the new q0 with the old "
                  "DID or page-table pointer: c3b1edea3791 removed them (CVE-2026-45945) and "
                  "made replace break-before-make (hw-tables A.8.3). Seed 000's set_dev_pasid "
                  "replace is the call that reaches it.",
        knobs=frozenset({"vtd.pasid_replace_in_place"}),
        hw=("vtd",), kind="variant",
        expect_breaks=(("vtd", ("hitless-entry-update",)),),
        check_bounds="paging_domains=2",  # a live PASID replaced by a second paging domain
        changed_calls=("iommu_replace_device_pasid",),
    ),
    Design(
        name="vtd-psi-mask-from-page-count",
        summary="VT-d range invalidation with the mask from the page count only",
        rationale="cache_tag_flush_range needs one naturally aligned power-of-two span that "
                  "covers [start, end]: calculate_psi_aligned_address widens the mask until "
                  "the first and the last page agree above it. Taking ilog2 of the rounded "
                  "page count and aligning the address down (the arithmetic of the v6.12 "
                  "qi_desc_piotlb, which aligned an unaligned address down after a "
                  "WARN_ON_ONCE; the variant has no WARN) covers pages 0-1 for an unmap of "
                  "pages 1-2: page 2 stays in the IOTLB and the ATC (range1).",
        knobs=frozenset({"vtd.psi_mask_from_page_count"}),
        hw=("vtd",), kind="variant",
        expect_breaks=(("vtd", ("no-stale-translation",)),),
        check_bounds="devices=1,processes=0,paging_domains=1,iova_pages=3,phys_pages=1,"
                     "max_pasids=2,range_pages=2",  # world range1
        changed_calls=("iommu_unmap_range", "cpu_munmap_range"),
    ),
    Design(
        name="vtd-tlb-sync-ih-with-freelist",
        summary="VT-d iotlb_sync with IH = 1 although the unmap freed a page-table page",
        rationale="intel_iommu_tlb_sync passes ih = iommu_pages_list_empty(&gather->freelist) "
                  "to cache_tag_flush_range: a leaf-only hint is right for an unmap that only "
                  "cleared PTEs, and wrong once the page table put a table page on the "
                  "freelist (VT-d spec 6.5.3.3: a modified non-leaf entry needs a "
                  "page-selective invalidation with IH = 0). With IH = 1 the paging-structure "
                  "cache keeps its pointer to the leaf table page iommu_put_pages_list then "
                  "frees: a map, one DMA, a 2 MiB unmap (walk1). Two calls later the page "
                  "is the default domain's leaf table, and a DMA of the PASID reaches the "
                  "default domain's pages through the stale pointer (no-stale-translation).",
        knobs=frozenset({"vtd.tlb_sync_ih_with_freelist"}),
        hw=("vtd",), kind="variant",
        expect_breaks=(("vtd", ("walk-cache-live", "no-stale-translation")),),
        check_bounds="devices=1,processes=0,paging_domains=1,iova_pages=1,phys_pages=1,"
                     "max_pasids=2,walk_caches=1",  # world walk1
        changed_calls=("iommu_unmap_2m",),
    ),
    Design(
        name="smmu-flush-walk-leaf",
        summary="SMMUv3 tlb_flush_walk invalidating leaf entries only before a table is freed",
        rationale="io-pgtable-arm calls io_pgtable_tlb_flush_walk before it frees a table a "
                  "block-sized unmap covers; arm_smmu_tlb_inv_walk issues the range with "
                  "leaf = false because the walk cache holds the table's address (a TLBI with "
                  "Leaf = 1 need only remove last-level entries). With leaf = true the walk "
                  "cache keeps the pointer to the freed table page (walk1); once the page is "
                  "the default domain's leaf table (dma_map_page), the PASID's DMA reaches the "
                  "default domain's pages (no-stale-translation, 7 calls).",
        knobs=frozenset({"smmu.flush_walk_leaf"}),
        hw=("smmuv3",), kind="variant",
        expect_breaks=(("smmuv3", ("walk-cache-live", "no-stale-translation")),),
        check_bounds="devices=1,processes=0,paging_domains=1,iova_pages=1,phys_pages=1,"
                     "max_pasids=2,walk_caches=1",  # world walk1
        changed_calls=("iommu_unmap_2m",),
    ),
    Design(
        name="sva-kva-free-without-iommu-flush",
        summary="x86 freeing kernel page-table pages without telling the IOMMU (before e37d5a2d60a3)",
        rationale="x86 maps the kernel half into every process page table, and an SVA walk "
                  "goes through it to the leaf even for a user request (only the leaf's U/S "
                  "bit faults), caching the pointers on the way. Before e37d5a2d60a3 "
                  "(v6.19, CVE-2025-71202, reported by Jann Horn) a kernel page-table page "
                  "freed by vfree() could be reused while the IOMMU still pointed at it: "
                  "walked as attacker-controlled data, with A/D bits written into it. The fix "
                  "defers the free to a work item that first calls "
                  "iommu_sva_invalidate_kva_range(PAGE_OFFSET, TLB_FLUSH_ALL). VT-d only: "
                  "SMMUv3's SVA CDs set EPD1, so TTBR1 is never walked (walkKva1).",
        knobs=frozenset({"core.kva_free_without_iommu_flush"}),
        hw=("vtd",), kind="variant",
        expect_breaks=(("vtd", ("walk-cache-live",)),),
        check_bounds="devices=1,processes=1,paging_domains=0,iova_pages=1,phys_pages=1,"
                     "max_pasids=2,walk_caches=1,kernel_pgtable=1",  # world walkKva1
        changed_calls=("vfree_kernel_pgtable",),
    ),
    Design(
        name="vtd-notifier-leaf-only",
        summary="VT-d's mm notifier flushing leaf entries only (IH = 1)",
        rationale="arch_invalidate_secondary_tlbs(mm, start, end) does not say whether the "
                  "CPU freed page-table pages in the range (x86 flush_tlb_mm_range drops "
                  "freed_tables), so intel_arch_invalidate_secondary_tlbs flushes with IH = 0. "
                  "A leaf-only hint there keeps the paging-structure cache's pointer to the "
                  "PTE page free_pgtables frees after the flush (walkSva1); once that page is "
                  "the default domain's leaf table (dma_map_page), the process's PASID "
                  "reaches the kernel driver's DMA buffer (no-stale-translation, 6 calls).",
        knobs=frozenset({"vtd.notifier_leaf_only"}),
        hw=("vtd",), kind="variant",
        expect_breaks=(("vtd", ("walk-cache-live", "no-stale-translation")),),
        check_bounds="devices=1,processes=1,paging_domains=0,iova_pages=1,phys_pages=1,"
                     "max_pasids=2,walk_caches=1",  # world walkSva1
        changed_calls=("cpu_munmap", "cpu_munmap_2m"),
    ),
    Design(
        name="vtd-parent-flush-misses-nested",
        summary="VT-d unmapping a nesting parent without flushing the domains nested on it (v6.7)",
        rationale="A nested domain's translations are cached as combined entries under its "
                  "own DID (the nested PASID entry's DID), and its devices' ATCs cache them "
                  "too. VT-d's first nesting support (b41e38e22539, v6.7) flushed only the "
                  "parent's own DIDs on a parent unmap; 821985301124 'Add missing iotlb "
                  "flush for parent domain' and 5e54e861f16f 'Add missing device iotlb flush "
                  "for parent domain' (v6.8-rc5) added a flush per nested DID, which v6.10's "
                  "NESTING_IOTLB / NESTING_DEVTLB cache tags carry today. Here the parent's "
                  "cache_tag_flush_range skips its NESTING tags (nest1).",
        knobs=frozenset({"vtd.parent_flush_skips_nesting_tags"}),
        hw=("vtd",), kind="variant",
        expect_breaks=(("vtd", ("nested-cache-current", "no-stale-translation")),),
        check_bounds="nest1",
        changed_calls=("iommu_unmap", "iommu_unmap_range", "iommu_flush_iotlb_all"),
    ),
    Design(
        name="vtd-nested-devtlb-by-parent-range",
        summary="VT-d flushing a nested device's ATC over the parent's IPA range",
        rationale="A device's ATC caches a nested domain's translations by the guest's IOVA, "
                  "and a parent change is a change of IPA: the two spaces do not line up, so "
                  "cache_tag_flush_range flushes a NESTING_DEVTLB tag over the whole range "
                  "('no easy way to identify the exact set of nested translations affected "
                  "by a change in S2', 5e54e861f16f). Flushing the ATC over the parent's "
                  "range instead misses the IOVA whose IPA was unmapped: the guest's stage-1 "
                  "maps IOVA 0x0 to IPA 0x1000 (nest1).",
        knobs=frozenset({"vtd.nested_devtlb_by_parent_range"}),
        hw=("vtd",), kind="variant",
        expect_breaks=(("vtd", ("no-stale-translation",)),),
        check_bounds="nest1",
        changed_calls=("iommu_unmap", "iommu_unmap_range"),
    ),
    Design(
        name="vtd-nested-shared-did",
        summary="VT-d nested domains on one parent sharing one DID (seed 003's long-term idea)",
        rationale="Seed 003: 'the nesting case, where user domains nested on the same parent "
                  "could share a domain ID'. The IOTLB tags a nested translation with the "
                  "DID, the PASID and the guest's IOVA: two nested domains with different "
                  "stage-1 tables attached at one PASID (the RID's IOMMU_NO_PASID) of two "
                  "devices under one DID are one tag for two tables, and one device's DMA "
                  "hits the other's entries. Sharing is sound only among nested domains that "
                  "also share the stage-1 table (one guest domain), or at distinct PASIDs "
                  "(nest1 with a second device and a third domain). The model's guests write the same stage-1 contents into their "
                  "own tables, so no DMA differs; did-pasid-tag-unique judges the structure: "
                  "one tag, two tables.",
        knobs=frozenset({"vtd.nested_share_parent_did"}),
        hw=("vtd",), kind="seed", seeds=(S003,),
        expect_breaks=(("vtd", ("did-pasid-tag-unique",)),),
        check_bounds="devices=2,ats_devices=0,processes=0,paging_domains=3,iova_pages=2,"
                     "phys_pages=1,max_pasids=2,nesting=1",  # two devices, three domains
        changed_calls=("iommu_attach_device",),
    ),
    Design(
        name="smmu-parent-flush-skips-nh-all",
        summary="SMMUv3 unmapping a nesting parent with TLBI_S2_IPA alone",
        rationale="A nested STE's translations are cached as combined S1+S2 entries tagged "
                  "(VMID, the guest's ASID) and the guest's VA; a TLBI by IPA cannot name "
                  "them. 1e8be08d1c91 'Support IOMMU_DOMAIN_NESTED' made "
                  "arm_smmu_tlb_inv_range_domain follow the S2_IPA invalidation of a "
                  "nest_parent with TLBI_NH_ALL(vmid) + SYNC: 'When the S2 domain changes "
                  "all the nested S1 ASIDs have to be flushed too'. Without it the guest "
                  "keeps reaching the page the parent unmapped (nest1).",
        knobs=frozenset({"smmu.parent_flush_skips_nh_all"}),
        hw=("smmuv3",), kind="variant",
        expect_breaks=(("smmuv3", ("nested-cache-current", "no-stale-translation")),),
        check_bounds="nest1",
        changed_calls=("iommu_unmap", "iommu_unmap_range"),
    ),
    Design(
        name="pt-gather-requested-size",
        summary="the generic page table gathering the length asked, not the 2 MiB leaf it cleared",
        rationale="An unmap at the base of a 2 MiB leaf clears the whole leaf and returns "
                  "2 MiB, more than a 4 KiB request asked (iommu_unmap 'may unmap more'); "
                  "the flush must cover what was cleared. ee6e69d03255 'iommupt: Fix short "
                  "gather if the unmap goes into a large mapping': the gather took the "
                  "requested length, so VT-d's cache_tag_flush_range built a PSI with AM 0, "
                  "and a superpage needs AM 9 (VT-d spec 6.5.2.3): the IOTLB keeps the whole "
                  "superpage (super1). SMMUv3's io-pgtable-arm refuses a partial unmap "
                  "(WARN, 0), so nothing is gathered short there.",
        knobs=frozenset({"pt.gather_requested_size"}),
        hw=("vtd",), kind="variant",
        expect_breaks=(("vtd", ("no-stale-translation",)),),
        check_bounds="super1",
        changed_calls=("iommu_unmap", "iommu_unmap_range"),
    ),
    Design(
        name="smmu-ttl-from-leaf-size",
        summary="SMMUv3 range invalidations taking TTL from the smallest page, not the granule",
        rationale="With range invalidation a TLBI by VA carries TTL, the level the leaf was "
                  "walked at, and the SMMU 'is only required to invalidate TLB entries that "
                  "were inserted from a translation table walk level matching TTL' (IHI0070 "
                  "4.4.1.2). arm_smmu_iotlb_sync passes gather->pgsize as the granule, so a "
                  "2 MiB unmap sends TTL 2. TTL from the domain's smallest page (4 KiB: TTL 3) "
                  "names level 3, and the level-2 block stays cached (superR1).",
        knobs=frozenset({"smmu.ttl_from_leaf_size"}),
        hw=("smmuv3",), kind="variant",
        expect_breaks=(("smmuv3", ("no-stale-translation",)),),
        check_bounds="superR1",
        changed_calls=("iommu_unmap_2m",),
    ),
    Design(
        name="smmu-nested-atc-by-range",
        summary="SMMUv3 invalidating a nested master's ATC over the parent's IPA range",
        rationale="A nested master's ATC caches the guest's IOVA -> host page; a parent "
                  "change is by IPA. f27298a82ba0 'Allow ATS for IOMMU_DOMAIN_NESTED' marks "
                  "such masters nested_ats_flush and gives them a full ATC_INV on any parent "
                  "change: 'If a S2 used as a nesting parent is changed we have no option but "
                  "to completely flush the ATC.' A range ATC_INV at the IPA misses the IOVA "
                  "the guest's stage 1 maps onto it (GUEST_STAGE1 swaps pages 0 and 1; nest1).",
        knobs=frozenset({"smmu.nested_atc_by_range"}),
        hw=("smmuv3",), kind="variant",
        expect_breaks=(("smmuv3", ("no-stale-translation",)),),
        check_bounds="nest1",
        changed_calls=("iommu_unmap", "iommu_unmap_range"),
    ),
    Design(
        name="munmap-free-table-before-flush",
        summary="munmap freeing the CPU page-table page before the secondary-TLB flush",
        rationale="The IOMMU walks a process's page table for SVA, so a page-table page the "
                  "CPU frees is one the IOMMU may have cached. x86 frees page-table pages "
                  "through tlb_remove_table (MMU_GATHER_RCU_TABLE_FREE), after "
                  "tlb_flush_mmu_tlbonly -> flush_tlb_mm_range has called "
                  "mmu_notifier_arch_invalidate_secondary_tlbs; both drivers then flush "
                  "non-leaf (VT-d IH = 0, SMMUv3 leaf = false or by ASID). Freeing before the "
                  "notifier leaves the IOMMU a window to walk a freed page (walkSva1).",
        knobs=frozenset({"core.munmap_free_table_before_flush"}),
        kind="variant",
        expect_breaks=_breaks(("walk-cache-live",)),
        check_bounds="devices=1,processes=1,paging_domains=0,iova_pages=1,phys_pages=1,"
                     "max_pasids=2,walk_caches=1",  # world walkSva1
        changed_calls=("cpu_munmap_2m",),
    ),
    Design(
        name="smmu-iotlb-sync-exclusive-end",
        summary="SMMUv3 iotlb_sync reading the gather's end as exclusive",
        rationale="struct iommu_iotlb_gather's end is inclusive; arm_smmu_iotlb_sync passes "
                  "end - start + 1. One byte short, the size still reaches the last page when "
                  "the SMMU takes one TLBI per page, and ATC_INV's span still covers it; but a "
                  "range TLBI (RIL) counts whole pages, size >> 12, and drops the last one "
                  "(a one-page gather gives 0 pages, where the kernel's __ffs(0) is undefined: "
                  "the model issues no TLBI). Caught only in rangeR1, on range-invalidation "
                  "hardware.",
        knobs=frozenset({"smmu.iotlb_sync_exclusive_end"}),
        hw=("smmuv3",), kind="variant",
        expect_breaks=(("smmuv3", ("no-stale-translation",)),),
        check_bounds="devices=1,processes=0,paging_domains=1,iova_pages=3,phys_pages=1,"
                     "max_pasids=2,range_pages=2,smmu_range_inv=1",  # world rangeR1
        changed_calls=("iommu_unmap", "iommu_unmap_range", "dma_unmap_page"),
    ),
    Design(
        name="vtd-teardown-zero-present-entry",
        summary="VT-d PASID teardown zeroing the live entry before the flushes",
        rationale="intel_pasid_tear_down_entry before 75ed00055c05 (v7.0-rc1, backported "
                  "to 6.12-6.19): intel_pasid_clear_entry wrote zeros over the present "
                  "entry, qword by qword, and only then invalidated the PASID cache. A fetch "
                  "that read the old q0 (P=1) may read a zeroed DID or pointer after it "
                  "(spec 6.5.3.3: clear P, invalidate, then the rest).",
        knobs=frozenset({"vtd.teardown_zero_present_entry"}),
        hw=("vtd",), kind="variant",
        expect_breaks=(("vtd", ("hitless-entry-update",)),),
        check_bounds="sva1",
        changed_calls=TEARDOWN_CALLS,
    ),
    Design(
        name="smmu-detach-no-atc-inv",
        summary="SMMUv3 PASID detach without ATC_INV",
        rationale="arm_smmu_blocking_set_dev_pasid without step 3 (hw-tables B.8): the "
                  "device's ATC keeps translations for the detached SSID. It does not break "
                  "mm-exit-stops-dma, which an earlier reading expected: arm_smmu_mm_release "
                  "issues its own ATC_INV for every master of the SVA domain, so an exited "
                  "process with a live bond has nothing left in the ATC (the explorer "
                  "exhausts a 37,000-state world and 3,000 deep Hypothesis examples find "
                  "nothing).",
        knobs=frozenset({"smmu.detach_skip_atc_inv"}),
        hw=("smmuv3",), kind="variant",
        expect_breaks=(("smmuv3", ("no-stale-translation", "detached-pasid-blocked")),),
        check_bounds="sva1",  # the smallest world where its breaks show
        changed_calls=("iommu_detach_device_pasid", "iommu_sva_unbind_device"),
    ),
    Design(
        name="dma-owner-ignores-pasid-users",
        summary="mainline without the pasid_array checks of DMA ownership",
        rationale="The pasid_array checks removed from iommu_device_use/unuse_default_domain "
                  "and __iommu_take_dma_ownership, so a driver can unbind while its PASIDs "
                  "are attached and VFIO can take the device. Removing only the claim's "
                  "check is not enough to break anything: unuse_default_domain then WARNs "
                  "and keeps owner_cnt, so the claim still fails with -EPERM (found by the "
                  "checker).",
        knobs=frozenset({"core.claim_ignores_pasids"}),
        kind="variant",
        expect_breaks=_breaks(("exclusive-device-ownership", "no-attach-while-pasid-users")),
        check_bounds="sva1",  # the smallest world where its breaks show
        changed_calls=("iommu_device_claim_dma_owner", "iommu_device_unuse_default_domain"),
    ),
    # -- the kernel's own bug detectors (invariants/kernel_bugs.py): one variant each --------
    Design(
        name="sva-unbind-free-before-detach",
        summary="the last iommu_sva_unbind_device frees the SVA domain before detaching its PASID",
        rationale="The order of the last unbind reversed: iommu_domain_free runs while the "
                  "domain is still attached at the PASID, and the detach that follows uses a "
                  "domain the driver already tore down (its dev_pasids and cache tags). With "
                  "mmu_notifier_put the memory itself lingers until the SRCU grace period, so "
                  "nothing crashes and no seed invariant notices: the PASID is still detached "
                  "and flushed. KASAN-class; the no-use-after-free invariant's target.",
        history="The unbind order (detach, then --users and iommu_domain_free) is what "
                "iommu-sva.c has done since v6.2; freeing first is the classic bug this "
                "ordering avoids.",
        knobs=frozenset({"core.sva_free_before_detach"}),
        kind="variant",
        # the detach after the free also finds the (dev, PASID) gone from the VT-d domain's
        # dev_pasids (WARN_ON_ONCE(!dev_pasid)), and the freed domain still counts a user
        expect_breaks=(("vtd", ("no-use-after-free", "no-kernel-warn", "refcount-matches")),
                       ("smmuv3", ("no-use-after-free", "refcount-matches"))),
        check_bounds="sva1",  # the smallest world where its breaks show
        changed_calls=("iommu_sva_unbind_device",),
    ),
    Design(
        name="vtd-teardown-no-clear-entry",
        summary="VT-d PASID teardown that clears P but never zeroes the entry",
        rationale="Skips intel_pasid_clear_entry at the end of intel_pasid_tear_down_entry "
                  "(hw-tables A.8.2, last step): the entry is not present, so hardware faults "
                  "and no seed invariant notices, but the next teardown of the same PASID (the "
                  "unbind after mm exit already tore it down) finds a non-present entry with "
                  "a non-zero first qword and WARNs. The no-kernel-warn invariant's target.",
        history="intel_pasid_tear_down_entry WARNs on a non-present, non-fault-disabled entry "
                "whose first qword is not zero.",
        knobs=frozenset({"vtd.teardown_skip_clear_entry"}),
        hw=("vtd",), kind="variant",
        expect_breaks=(("vtd", ("no-kernel-warn",)),),
        check_bounds="sva1",  # the smallest world where its breaks show
        changed_calls=TEARDOWN_CALLS,
    ),
    Design(
        name="mmdrop-keeps-pasid",
        summary="__mmdrop forgets mm_pasid_drop: the mm's PASID stays allocated forever",
        rationale="The last mmdrop frees the mm_struct but not its PASID, so the global IDA "
                  "keeps a value nobody owns; with a small PASID space the next process's bind "
                  "fails with -ENOSPC. No isolation property breaks (a PASID that is never "
                  "reused cannot be confused): only the leak check sees it.",
        history="v5.18 moved mm_pasid_drop to __mmdrop (701fac40384f); a free path that "
                "skips it is the kmemleak class of the IDA.",
        knobs=frozenset({"core.mmdrop_keeps_pasid"}),
        kind="variant",
        expect_breaks=_breaks(("no-leak",)),
        check_bounds="sva1",  # the smallest world where its breaks show
        changed_calls=("process_exit", "iommu_sva_unbind_device", "srcu_grace_period"),
    ),
    Design(
        name="sva-domain-no-mmgrab",
        summary="iommu_sva_domain_alloc does not pin the mm (no mmgrab), but its free still mmdrops",
        rationale="The SVA domain's cookie holds a reference on the mm_struct (mm_count) so "
                  "that domain->mm stays valid while the domain lives; without the mmgrab the "
                  "count is one short from the first bind, and the mm is freed one mmdrop "
                  "early, under a running process. The refcount-matches invariant sees the "
                  "count drift at the bind that makes it wrong.",
        history="iommu_sva_domain_alloc: mmgrab(mm) for domain->mm, mmdrop in "
                "iommu_domain_free (the SVA cookie).",
        knobs=frozenset({"core.sva_domain_no_mmgrab"}),
        kind="variant",
        # mm_count one short: the last mmdrop frees the mm under its running process,
        # and the next mmdrop is the use-after-free (5 calls)
        expect_breaks=_breaks(("refcount-matches", "no-use-after-free")),
        check_bounds="sva1",  # the smallest world where its breaks show
        changed_calls=("iommu_sva_bind_device",),
    ),
    Design(
        name="set-group-pasid-no-rollback",
        summary="__iommu_set_group_pasid without the rollback of a partial group attach",
        rationale="When set_dev_pasid fails on one device of a multi-device group, the "
                  "devices already attached keep the domain at that PASID while the call "
                  "returns the error and pasid_array holds nothing there: only an injected "
                  "failure (an -ENOMEM in the driver's set_dev_pasid on the second device) "
                  "reaches it, so it needs the faults bound.",
        history="The rollback in __iommu_set_group_pasid: 'iommu: Undo pasid attachment only "
                "for the devices that have succeeded' (v6.9, Fixes 16603704559c) rolls back "
                "exactly the devices done; v6.13 passes the old domain so replace restores it.",
        knobs=frozenset({"core.set_group_pasid_no_rollback"}),
        kind="variant",
        check_bounds="devices=0,shared_group=1,processes=0,paging_domains=1,iova_pages=1,"
                     "phys_pages=1,max_pasids=2,faults=1",
        # devS0 keeps the domain at the PASID: its tables translate where the core says
        # nothing is attached, the driver's counts disagree with the core's, the PASID can
        # be freed while the hardware holds it; VT-d also keeps the domain's DID after
        # iommu_domain_free (SMMUv3's domain_free drops the master_domain list with it).
        expect_breaks=(
            ("vtd", ("failed-call-unchanged", "refcount-matches", "tables-match-core",
                     "no-stale-translation", "pasid-not-reused-while-bound", "no-leak")),
            ("smmuv3", ("failed-call-unchanged", "refcount-matches", "tables-match-core",
                        "no-stale-translation", "pasid-not-reused-while-bound")),
        ),
        changed_calls=("iommu_attach_device_pasid",),
    ),
    # -- PCI reset staging (model/core/reset.py; bound pci_reset) --------------------------
    Design(
        name="reset-without-iommu-prepare",
        summary="a PCI reset that does not quiesce the IOMMU (the kernel before v7.0)",
        rationale="Before pci_dev_reset_iommu_prepare, a function reset (FLR) left the RID "
                  "and PASIDs attached and the device on every flush list: an unmap during "
                  "the reset sends an ATS invalidation the resetting function cannot answer "
                  "(an ITE on VT-d, CERROR_ATC_INV_SYNC on SMMUv3), and DMA the function "
                  "issues around the reset still translates, though the core treats the "
                  "device as blocked.",
        history="Fixed by the v7.0 reset staging: 'iommu: Introduce "
                "pci_dev_reset_iommu_prepare/done()' (c279e83953d9) and 'PCI: Suspend iommu "
                "function prior to resetting a device' (f5b16b80).",
        knobs=frozenset({"reset.prepare_noop"}),
        kind="variant",
        check_bounds=RESET1,
        # refcount-matches first: the driver still counts the attachments the core
        # treats as blocked
        expect_breaks=_breaks(("refcount-matches", "no-ats-inv-during-reset", "no-stale-translation")),
        changed_calls=("pci_dev_reset_iommu_prepare", "pci_dev_reset_iommu_done"),
    ),
    Design(
        name="reset-prepare-rid-only",
        summary="pci_dev_reset_iommu_prepare blocks the RID but leaves the PASIDs attached",
        rationale="Blocking the RID alone keeps each PASID's domain in the hardware and the "
                  "device's PASID cache tags (VT-d) / ATS masters (SMMUv3) on the domain's "
                  "flush list: a kernel PASID user's unmap, or the process's munmap for an "
                  "SVA bond, reaches the resetting function with an ATS invalidation.",
        history="The mainline prepare walks the pasid_array (iommu_remove_dev_pasid for each "
                "PASID of the device: c279e83953d9, per device since 1615e889).",
        knobs=frozenset({"reset.prepare_rid_only"}),
        kind="variant",
        check_bounds=RESET1,
        expect_breaks=_breaks(("refcount-matches", "no-ats-inv-during-reset", "no-stale-translation")),
        changed_calls=("pci_dev_reset_iommu_prepare",),
    ),
    Design(
        name="reset-done-restores-default",
        summary="pci_dev_reset_iommu_done re-attaches the default domain instead of group->domain",
        rationale="The core keeps group->domain untouched across the reset because it is the "
                  "state to restore: a device that VFIO or a kernel driver had moved to an "
                  "UNMANAGED domain comes back on the DMA-API default domain, translating "
                  "through the wrong page table while the core says otherwise.",
        history="The mainline _done re-attaches group->domain (and skips a NULL one since "
                "d769711f).",
        knobs=frozenset({"reset.done_restores_default"}),
        kind="variant",
        check_bounds=RESET1,
        expect_breaks=_breaks(("refcount-matches", "no-stale-translation")),
        changed_calls=("pci_dev_reset_iommu_done",),
    ),
    Design(
        name="reset-done-whole-group",
        summary="pci_dev_reset_iommu_done re-sets each PASID on every device of the group",
        rationale="Prepare blocks only the device being reset, but this _done calls "
                  "__iommu_set_group_pasid, so every other device of the group gets "
                  "set_dev_pasid again for a PASID it already has: the drivers count the "
                  "attachment twice, and a sibling that is itself in reset is re-attached "
                  "before its own reset is done.",
        history="c279e83953d9 as merged; fixed by 1615e889 ('iommu: Fix pasid attach in "
                "pci_dev_reset_iommu_prepare/done()'), which acts on the reset device only.",
        knobs=frozenset({"reset.done_whole_group"}),
        kind="variant",
        check_bounds="devices=0,shared_group=1,shared_ats=1,processes=0,paging_domains=1,"
                     "iova_pages=1,phys_pages=1,max_pasids=2,pci_reset=1",
        expect_breaks=_breaks(("reset-scoped", "refcount-matches")),
        changed_calls=("pci_dev_reset_iommu_done",),
    ),
    # -- surprise removal (bound hotplug) ----------------------------------------------------
    Design(
        name="vtd-gone-device-2023",
        summary="VT-d flushes the device-TLB of a removed device and retries the timed-out queue",
        rationale="After a surprise removal the function answers no ATS invalidation. The "
                  "teardown of its PASID or RID entry (here: VFIO claiming the group, which "
                  "blocks the RID) still sent a device-TLB descriptor, the IOMMU reported an "
                  "Invalidation Time-out Error, and qi_submit_sync retried the queue forever: a "
                  "hard lockup on hot-unplug.",
        history="Fixed in two steps: 'iommu/vt-d: Don't issue ATS Invalidation request when "
                "device is disconnected' (4fc82cd907ac, then pci_device_is_present in "
                "10e60d87) for the teardown, and 80a9b50c for the ITE itself (the source ID "
                "of a device that is not present: -ETIMEDOUT, not a retry).",
        knobs=frozenset({"vtd.devtlb_inv_ignores_presence", "vtd.qi_retry_on_ite"}),
        kind="variant",
        hw=("vtd",),
        check_bounds=HOTPLUG1,
        expect_breaks=(("vtd", ("no-kernel-warn",)),),
        changed_calls=TEARDOWN_CALLS,
    ),
    Design(
        name="vtd-qi-retry-on-ite",
        summary="VT-d retries a queue that timed out on a removed device (before 80a9b50c)",
        rationale="The teardown skips a gone device's device-TLB, but cache_tag_flush_range "
                  "does not look: an unmap in the removed device's domain (its driver's "
                  "dma_unmap in remove()) still sends one, and without the ITE handling of "
                  "80a9b50c qi_submit_sync retries it forever.",
        history="80a9b50c: qi_check_fault reads the source ID of the timed-out descriptor and "
                "returns -ETIMEDOUT when that device is not present.",
        knobs=frozenset({"vtd.qi_retry_on_ite"}),
        kind="variant",
        hw=("vtd",),
        check_bounds=HOTPLUG1,
        expect_breaks=(("vtd", ("no-kernel-warn",)),),
        changed_calls=("dma_unmap_page", "iommu_unmap", "cpu_munmap"),
    ),
    # -- I/O page faults (check_bounds pri=1) ----------------------------------------------
    Design(
        name="vtd-sva-unbind-after-mm-exit",
        summary="upstream (v7.0) with page requests on: an SVA unbind after the process exited "
                "does not drain the PRQ (a finding)",
        rationale="This is the upstream model, no knob, in the pri1 world. intel_mm_release "
                  "tears the SVA PASID down with fault_ignore (no drain: the exit path must "
                  "not wait for fault handlers). Since 75ed00055c05 the teardown clears P first, "
                  "so intel_pasid_clear_entry zeroes the whole entry and the FPD bit that "
                  "cf08ca81d08a's unbind-time drain looks for is never left: the unbind finds an "
                  "all-zero entry and returns before draining. A page request the device sent "
                  "before the exit stays in the PRQ after the core has let the PASID, its handle "
                  "and its domain go, and is delivered to whatever holds the PASID next. "
                  "hw-tables.md A.8.2 notes the path as an unverified possible regression; the "
                  "checker's trace is four calls long.",
        seeds=(S004,),
        history="cf08ca81d08a (v6.13, 'Draining PRQ in sva unbind path when FPD bit set') fixed "
                "the same trace for the FPD entry 75ed00055c05 no longer leaves.",
        kind="variant",
        hw=("vtd",),
        check_bounds=PRI1,
        expect_breaks=(("vtd", ("iopf-drained",)),),
        changed_calls=("iommu_sva_unbind_device", "process_exit"),
    ),
    Design(
        name="vtd-drain-on-zero-entry",
        summary="a proposed fix: VT-d PASID teardown drains the PRQ also when the entry is "
                "already zero",
        rationale="The drain fences page requests of a PASID, whatever the state of its entry: "
                  "intel_pasid_tear_down_entry called without fault_ignore drains before "
                  "returning on a non-present, all-zero entry too (what cf08ca81d08a did for "
                  "the FPD entry). iopf-drained holds in the pri1 world.",
        seeds=(S004,),
        history="Not in any kernel: the model's answer to vtd-sva-unbind-after-mm-exit.",
        knobs=frozenset({"vtd.drain_on_zero_entry"}),
        kind="variant",
        hw=("vtd",),
        check_bounds=PRI1,
        changed_calls=("iommu_sva_unbind_device",),
    ),
    Design(
        name="vtd-iopf-disable-before-teardown",
        summary="VT-d's blocking set_dev_pasid disables IOPF before tearing the PASID down",
        rationale="intel_iommu_drain_pasid_prq drains only while IOPF is enabled on the "
                  "device: disabling it first (the last user's iopf_queue_remove_device "
                  "answers the queued groups) skips the PRQ wait, so a request still in the "
                  "hardware queue outlives the PASID. The kernel tears down, drains, then "
                  "disables (iopf_for_domain_remove after the teardown).",
        history="The order of blocking_domain_set_dev_pasid since IOPF enabling moved into "
                "domain attach (17fce9d2336d).",
        knobs=frozenset({"vtd.iopf_disable_before_teardown"}),
        kind="variant",
        hw=("vtd",),
        check_bounds=PRI1,
        expect_breaks=(("vtd", ("iopf-drained",)),),
        changed_calls=("iommu_sva_unbind_device",),
    ),
    Design(
        name="vtd-page-response-failure-code",
        summary="upstream with page requests and one allocation failure: Response Failure goes "
                "out as the reserved code 2 (a finding)",
        rationale="This is the upstream model, no knob. When the core cannot allocate an iopf "
                  "group it answers IOMMU_PAGE_RESP_FAILURE, enum value 2; "
                  "intel_iommu_page_response writes msg->code into the page group response "
                  "descriptor's 4-bit response code as it is, and PCIe's Response Failure is "
                  "0xF (QI_RESP_FAILURE, defined in the driver's header and used nowhere on "
                  "this path). Code 2 is reserved: what the device does with it is up to the "
                  "device. Read in intel/prq.c (intel_iommu_page_response) and iommu.h.",
        seeds=(S004,),
        history="The response code has been passed through since the generic page response "
                "API (2019); the SVA handler itself answers only SUCCESS or INVALID.",
        kind="variant",
        hw=("vtd",),
        check_bounds=PRI1_NOMEM,
        expect_breaks=(("vtd", ("prg-response-valid",)),),
        changed_calls=("prq_event_thread_nomem",),
    ),
    Design(
        name="vtd-page-response-pcie-codes",
        summary="a proposed fix: intel_iommu_page_response translates the enum into PCIe codes",
        rationale="SUCCESS -> 0, INVALID -> 1, FAILURE -> 0xF before the descriptor is built: "
                  "prg-response-valid holds with the allocation failure on. The design carries "
                  "vtd-drain-on-zero-entry's fix too, so that the other finding does not end the "
                  "search first.",
        history="Not in any kernel: the model's answer to vtd-page-response-failure-code.",
        knobs=frozenset({"vtd.page_response_pcie_codes", "vtd.drain_on_zero_entry"}),
        kind="variant",
        hw=("vtd",),
        check_bounds=PRI1_NOMEM,
        changed_calls=("prq_event_thread_nomem",),
    ),
    # -- release and hot-add (check_bounds reprobe=1) -----------------------------------------
    Design(
        name="vtd-release-keeps-pasid-table",
        summary="VT-d release_device leaves the PASID table and the device info allocated",
        rationale="intel_iommu_release_device ends with intel_pasid_free_table (every leaf "
                  "table, then the directory) and frees the device_domain_info; a release "
                  "that stops after clearing the context entry leaks them on every unplug, "
                  "and a hot-add in the same slot allocates a second table.",
        history="The leak class of the release path; the table has been freed at release "
                "since scalable mode came (intel_pasid_free_table).",
        knobs=frozenset({"vtd.release_keeps_pasid_table"}),
        kind="variant",
        hw=("vtd",),
        check_bounds=REPROBE1,
        expect_breaks=(("vtd", ("no-leak",)),),
        changed_calls=("iommu_release_device",),
    ),
    Design(
        name="core-release-without-release-domain",
        summary="the core releases a VT-d device without attaching the release domain first",
        rationale="Since v6.8 the VT-d driver leaves the teardown of the RID to "
                  "ops->release_domain (the blocking domain), which the core attaches before "
                  "ops->release_device. A core path that skips it - the deferred-attach case "
                  "(kdump) skips the attach - frees the PASID table under a present RID entry "
                  "and never drops the default domain's DID or cache tags: the DID leaks when "
                  "the group's default domain goes.",
        history="'iommu/vt-d: Use ops->release_domain to manage data' (v6.8); 81e921fd3216 "
                "fixed the NULL-domain crash of release under deferred attach.",
        knobs=frozenset({"core.release_without_release_domain"}),
        kind="variant",
        hw=("vtd",),
        check_bounds=REPROBE1,
        expect_breaks=(("vtd", ("no-leak",)),),
        changed_calls=("iommu_release_device",),
    ),
    # -- DMA aliases (check_bounds alias_device=1) ---------------------------------------------
    Design(
        name="vtd-context-own-rid-only",
        summary="VT-d sets up the scalable-mode context entry for the device's own RID only, "
                "not for its DMA alias",
        rationale="A function behind a PCIe-to-PCI bridge issues its DMA with the bridge's "
                  "requester ID. intel_pasid_setup_sm_context walks pci_for_each_dma_alias so "
                  "that every ID the DMA may carry finds the device's PASID table; without the "
                  "alias entry the device's DMA finds no context entry at all, whatever "
                  "domain the core attached.",
        history="Context setup has walked the PCI DMA aliases since the alias interface "
                "(2014); before it the driver searched for the upstream bridge itself.",
        knobs=frozenset({"vtd.context_own_rid_only"}),
        kind="variant",
        hw=("vtd",),
        check_bounds=ALIAS1,
        expect_breaks=(("vtd", ("no-stale-translation",)),),
        changed_calls=("dma_map_page", "iommu_map", "iommu_attach_device"),
    ),
    Design(
        name="smmu-ste-first-stream-only",
        summary="SMMUv3 installs a master's STE in its first stream only, not in a DMA alias's",
        rationale="IORT gives a PCI device one StreamID per DMA alias, so a master can have "
                  "several streams, and arm_smmu_install_ste_for_dev writes the same STE (and "
                  "its CFGI_STE) for each. Writing the first alone leaves the alias's STE as it "
                  "was - invalid at boot, the previous domain's later - and the device's DMA, "
                  "which carries the alias, goes through it.",
        history="arm_smmu_install_ste_for_dev loops over master->streams (skipping duplicate "
                "StreamIDs).",
        knobs=frozenset({"smmu.ste_first_stream_only"}),
        kind="variant",
        hw=("smmuv3",),
        check_bounds=ALIAS1,
        expect_breaks=(("smmuv3", ("no-stale-translation",)),),
        changed_calls=("dma_map_page", "iommu_map", "iommu_attach_device"),
    ),
    # -- ATS as driver state ----------------------------------------------------------------
    Design(
        name="vtd-ats-enable-without-devtlb-tag",
        summary="VT-d enables ATS after the default domain's attach but assigns it no DEVTLB "
                "cache tag (4f1492efb495 before 25b1b75bbaf9)",
        rationale="Cache tags follow info->ats_enabled, not the capability: the default "
                  "domain's attach at probe ran with ATS still off, so it assigned only the "
                  "IOTLB tag, and the ATS enable in probe_finalize came after it. Every flush "
                  "of the default domain then misses the device-TLB: a dma_unmap leaves the "
                  "ATC translating to the freed page. The drift is there from boot.",
        history="4f1492efb495 reverted the probe-time ATS enable (5518f239aff1) to "
                "probe_finalize; 25b1b75bbaf9 (2025) assigns the DEVTLB tag there by hand.",
        knobs=frozenset({"vtd.ats_late_no_devtlb_tag"}),
        kind="variant",
        hw=("vtd",),
        check_bounds="small1",
        expect_breaks=(("vtd", ("refcount-matches", "no-stale-translation")),),
        # "boot": the design changes what boot does (a break may need no call at all)
        changed_calls=("boot", "dma_unmap_page", "iommu_unmap", "cpu_munmap"),
    ),
    # -- identity default domains (check_bounds passthrough=1) ----------------------------
    Design(
        name="smmu-identity-rid-drops-cd-table",
        summary="SMMUv3 puts an identity RID on a plain bypass STE even while PASIDs are in use",
        rationale="With PASIDs attached the STE must stay a CD-table STE and say what happens "
                  "to traffic without a PASID in S1DSS (BYPASS for identity, TERMINATE for "
                  "blocked): arm_smmu_attach_dev_ste. A plain bypass STE drops the CD table, "
                  "so every PASID's DMA bypasses translation: a kernel PASID user's domain "
                  "(or an SVA bond) stops translating the moment its RID returns to the "
                  "identity default domain.",
        history="The S1DSS rule came with the series that let IDENTITY/BLOCKED be set on the "
                "RID while PASIDs are in use (v6.10); before it, the driver refused the "
                "combination instead.",
        knobs=frozenset({"smmu.identity_rid_plain_ste"}),
        kind="variant",
        hw=("smmuv3",),
        check_bounds=PT1,
        expect_breaks=(("smmuv3", ("no-stale-translation",)),),
        changed_calls=("iommu_detach_device", "iommu_device_release_dma_owner"),
    ),
)

DESIGNS: dict[str, Design] = {d.name: d for d in _SEED_DESIGNS + _VARIANTS}

assert all(d.features <= FEATURES for d in DESIGNS.values())


class UnknownDesign(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def get_design(name: str) -> Design:
    try:
        return DESIGNS[name]
    except KeyError:
        raise UnknownDesign(
            f"unknown design {name!r} (built-in: {', '.join(sorted(DESIGNS))}; see `iommucheck designs`)"
        ) from None


__all__ = ["DESIGNS", "UnknownDesign", "get_design", "replace"]
