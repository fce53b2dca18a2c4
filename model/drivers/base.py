"""The driver side of struct iommu_ops / iommu_domain_ops, as the core calls it.

A driver owns its hardware unit and its private bookkeeping (VT-d DIDs and
cache tags, SMMUv3 ASIDs and master_domain lists) inside `Kernel.drv`, an object
with `copy()` and `key()`. The core never touches hardware directly: every
hardware effect of a kernel call happens in one of these methods, as in
drivers/iommu/intel and drivers/iommu/arm/arm-smmu-v3.

Dispatch on the domain type (blocked, identity, paging, SVA) happens inside the
driver, as the kernel does with one `iommu_domain_ops` per domain kind.
"""

from __future__ import annotations

import errno

from typing import TYPE_CHECKING, Any, Collection, Protocol

from hwspec.memory import PAGE_SHIFT, PAGE_SIZE, SZ_2M, SZ_4K, TABLE_SPAN_SHIFT
from hwspec.outcome import Access, Outcome

#: include/linux/limits.h ULONG_MAX on a 64-bit kernel: (0, ULONG_MAX) is "every address"
ULONG_MAX = (1 << 64) - 1

if TYPE_CHECKING:
    from model.objects import PageResp
    from model.core import Kernel
    from model.objects import Device, Domain


class DriverState(Protocol):
    def copy(self) -> "DriverState": ...
    def key(self) -> tuple[Any, ...]: ...


class WalkPointer(Protocol):
    """A walk-cache entry as the checks read it: the table its walk started from, the
    2 MiB region and the leaf table page it points at (its str() names it in reports)."""

    @property
    def root(self) -> int: ...
    @property
    def region(self) -> int: ...
    @property
    def table(self) -> int: ...


class Driver:
    """Base class: a driver that supports nothing. Subclasses override what they implement."""

    name: str = "none"
    #: leaf table pages and walk caches are modelled (bound walk_caches; set by the
    #: world before boot: the kernel's Memory takes it)
    walk_caches: bool = False
    #: ops->blocked_domain has set_dev_pasid (false for a driver without PASID support)
    blocked_has_set_dev_pasid: bool = True
    #: whether this driver can allocate SVA domains (ops->domain_alloc_sva)
    supports_sva: bool = True
    #: domain->pgsize_bitmap of its paging domains (the 1 GiB size, where a driver has
    #: it, never applies: no world's IOVA space reaches a 1 GiB region)
    pgsize_bitmap: int = SZ_4K | SZ_2M

    def new_state(self, k: "Kernel") -> DriverState:
        raise NotImplementedError

    # -- probe / release -------------------------------------------------
    def probe_device(self, k: "Kernel", dev: "Device") -> None:
        """ops->probe_device: program what the device needs before any domain is attached."""

    def probe_finalize(self, k: "Kernel", dev: "Device") -> None:
        """ops->probe_finalize: after the default domain's first attach."""

    def release_device(self, k: "Kernel", dev: "Device") -> None:
        """ops->release_device: after the release domain was attached; free what probe made."""

    # -- domain allocation -------------------------------------------------
    def domain_alloc_paging(self, k: "Kernel", dev: "Device", dom: "Domain") -> int:
        """Finish allocating a paging domain (page table root already in dom). 0 or -errno."""
        return 0

    def domain_alloc_sva(self, k: "Kernel", dev: "Device", dom: "Domain") -> int:
        return 0

    #: whether the driver's nested domain ops have set_dev_pasid (VT-d: yes; SMMUv3:
    #: attach_dev only, the guest's SSIDs are in its own CD table)
    nested_has_set_dev_pasid: bool = True

    def domain_alloc_nested(self, k: "Kernel", dev: "Device", parent: "Domain", dom: "Domain") -> int:
        """ops->domain_alloc_nested: a nested domain on `parent` (dom.pgtable is the
        guest's stage-1 table). 0 or -errno; a driver without nesting: -EOPNOTSUPP
        (iommufd_hwpt_nested_alloc finds no op)."""
        return -errno.EOPNOTSUPP

    def nested_translations(self, k: "Kernel") -> list[tuple[tuple[Any, ...], int, int, int, str]]:
        """Cached combined (nested) translations: (tag, input page, IPA page, output
        page, text), for the nested-cache-current invariant."""
        return []

    def tag_nested_domains(self, k: "Kernel", tag: tuple[Any, ...]) -> list[int]:
        """The nested domains a tag of `nested_translations` belongs to now."""
        return []

    def tag_guest_parent(self, k: "Kernel", tag: tuple[Any, ...]) -> int | None:
        """For a tag no nested domain holds: the live nesting parent whose VM owns it, if
        the tag is the guest's (SMMUv3: the guest's ASID under the parent's VMID, which
        the guest invalidates itself), else None (VT-d: a DID is the host's)."""
        return None

    def domain_free(self, k: "Kernel", dom: "Domain") -> None:
        """ops->free. For SVA domains this decides how the mmu_notifier goes (put or unregister)."""

    # -- attach -----------------------------------------------------------
    def attach_dev(self, k: "Kernel", dom: "Domain", dev: "Device", old: "Domain | None") -> int:
        return 0

    def set_dev_pasid(
        self, k: "Kernel", dom: "Domain", dev: "Device", pasid: int, old: "Domain | None"
    ) -> int:
        """dom->ops->set_dev_pasid, including the blocked domain's (PASID detach)."""
        return 0

    # -- I/O page faults (model/core/iopf.py) --------------------------------
    #: PCIe PRI page requests reach the core's IOPF path through this driver
    page_requests: bool = True

    def iopf_enabled(self, k: "Kernel", dev: "Device") -> bool:
        """The device is on the IOMMU's iopf queue (its fault data exists)."""
        return True

    def page_response(self, k: "Kernel", dev: "Device", pasid: int, code: "PageResp") -> None:
        """ops->page_response: the PRG Response Message to the device."""

    # -- maps -------------------------------------------------------------
    def iotlb_sync_map(self, k: "Kernel", dom: "Domain", iova_pfn: int) -> None:
        """After a new mapping (VT-d caching mode / write buffer; SMMUv3 nothing)."""

    def iotlb_sync(self, k: "Kernel", dom: "Domain", start: int, end: int,
                   pgsize: int = PAGE_SIZE) -> None:
        """ops->iotlb_sync after an unmap: invalidate what may cache the gathered range
        [start, end] (bytes, `end` inclusive, as struct iommu_iotlb_gather holds it);
        `pgsize` is gather->pgsize, the size of the leaves the unmap cleared."""

    def unmap_block(self, k: "Kernel", dom: "Domain", iova: int, size: int) -> int:
        """The page table's unmap_pages meeting the 2 MiB leaf that holds `iova` (bound
        superpages): clear what it clears and return the bytes (0: nothing, and
        __iommu_unmap's loop stops). Default, the generic page table (iommupt
        __unmap_range: VT-d since d373449d8e97, and the mock): a start at the leaf's base
        clears the whole leaf whatever `size` asked, and returns its 2 MiB (iommu_unmap
        may unmap more than asked); a start inside the leaf is refused (-EINVAL inside
        the walk, 0 unmapped, nothing changed; unmap_pages still gathers the requested
        range, an extra flush the model leaves out as it does the empty gather's)."""
        assert dom.pgtable is not None
        if iova & (SZ_2M - 1):
            return 0
        k.mem.unmap_block(dom.pgtable, iova >> (PAGE_SHIFT + TABLE_SPAN_SHIFT))
        return SZ_2M

    def unmap_flush(self, k: "Kernel", dom: "Domain", iova_pfn: int) -> None:
        """The iotlb_sync of one unmapped page (what iommu_unmap of one page runs)."""
        self.iotlb_sync(k, dom, iova_pfn << PAGE_SHIFT, ((iova_pfn + 1) << PAGE_SHIFT) - 1)

    def unmap_table(self, k: "Kernel", dom: "Domain", start: int, end: int, table: int) -> None:
        """A 2 MiB unmap over a table entry (bound walk_caches): the page-table code cleared
        the pointer to leaf table page `table` and every PTE of [start, end] (end
        inclusive). Flush as the driver's page table does, and free the page once the
        IOMMU can no longer walk it. Default: the gather's iotlb_sync, then the free."""
        self.iotlb_sync(k, dom, start, end)
        k.free_table_page(table, "iommu_unmap")

    def walk_cache_entries(self, k: "Kernel") -> Collection["WalkPointer"]:
        """Every walk-cache entry the hardware holds (VT-d paging-structure cache, SMMUv3
        walk cache), for walk-cache-live and the check at a table page's free."""
        return ()

    def flush_iotlb_all(self, k: "Kernel", dom: "Domain") -> None:
        """ops->flush_iotlb_all: everything the domain's translations may be cached as."""

    # -- mmu notifier callbacks (SVA) ----------------------------------------
    def mm_release(self, k: "Kernel", dom: "Domain") -> None:
        """mmu_notifier_ops.release: the address space is going away (exit_mmap)."""

    def invalidate_secondary_tlbs(self, k: "Kernel", dom: "Domain", start: int, end: int) -> None:
        """arch_invalidate_secondary_tlbs(mm, start, end): the CPU changed [start, end) of
        the mm's page table (`end` exclusive; 0, ULONG_MAX: all of it)."""

    # -- hardware ---------------------------------------------------------
    def translate(
        self, k: "Kernel", dev: "Device", pasid: int | None, iova: int, access: Access
    ) -> frozenset[Outcome]:
        return frozenset()

    def fill(self, k: "Kernel", dev: "Device", pasid: int | None, iova: int, access: Access) -> None:
        """Hardware caches what a walk for this request sees now (a nondeterministic event)."""

    #: an SVA walk of a kernel address goes through the kernel half of the CPU page table
    #: (x86: VT-d walks it down to the leaf, whose U/S bit then faults the user request);
    #: False for SMMUv3, whose SVA CDs set EPD1 (TTBR1 is never walked)
    sva_walks_kernel_half: bool = False

    def fill_kernel_half(self, k: "Kernel", dev: "Device", pasid: int, kva: int) -> None:
        """A DMA of an SVA PASID to kernel address `kva` (bound kernel_pgtable): what the
        walk caches on its way to the (supervisor) leaf. Default: nothing is walked."""

    # -- introspection for invariants ---------------------------------------
    def cached_translations(self, k: "Kernel") -> list[tuple[tuple[Any, ...], int, int, str]]:
        """IOMMU-side TLB entries as (tag, iova_pfn, pfn, text): tag is ("did", did, pasid)
        on VT-d and ("asid", vmid, asid) on SMMUv3."""
        return []

    def installed(self, k: "Kernel") -> list[tuple[int, int | None, tuple[Any, ...], int, str]]:
        """Present translating entries as (sid, pasid, tag, page-table root, text)."""
        return []

    def tag_owner_roots(self, k: "Kernel", tag: tuple[Any, ...]) -> set[int]:
        """Page-table roots the driver's own bookkeeping says this tag stands for now."""
        return set()

    def pasids_in_hw(self, k: "Kernel") -> set[int]:
        """PASIDs some table entry or cache entry of the hardware still holds."""
        return set()

    def refcounts(self, k: "Kernel") -> list[tuple[str, int, int]]:
        """Every count the driver keeps, as (what, kept, recomputed from the core's
        attachments): the refcount-matches invariant compares the two."""
        return []

    def leaks(self, k: "Kernel") -> list[str]:
        """Driver-private allocations (IDs, lists) whose owner is gone: nobody can free them."""
        return []

    def device_gone(self, k: "Kernel", dev: "Device") -> None:
        """The hardware side of a surprise removal: the device's own ATC leaves with it."""

    def ats_invalidations(self, k: "Kernel") -> list[tuple[int, str]]:
        """(endpoint SID, text) of every ATS invalidation in the hardware log, oldest first:
        what a step sent is what its log holds beyond the log of the state before it."""
        return []

    def prg_responses(self, k: "Kernel") -> list[tuple[int, str, int]]:
        """(endpoint SID, text, raw response code) of every PRG Response in the hardware
        log, oldest first (read like ats_invalidations)."""
        return []

    def begin_step(self, k: "Kernel") -> None:
        """Before each call or event of the action table: drop what lasts one step only."""

    def take_hw_log(self, k: "Kernel") -> list[str]:
        """Descriptors / commands issued since the last call, as text; the log is emptied."""
        return []

    def dump(self, k: "Kernel") -> list[str]:
        return []

