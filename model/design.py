"""A design: one point in the space of API choices the seeds argue about.

The core and the drivers read their policies from `Kernel.design`; the
built-in designs and their rationale live in `model.designs`. `UPSTREAM` is
current mainline (kernel-core-api.md, hw-tables.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable


class PasidFree(Enum):
    """When an mm's global PASID returns to the allocator."""

    MMDROP = "at the last mmdrop (__mmdrop -> mm_pasid_drop), v5.18+"
    MM_EXIT = "when the address space is torn down (exit_mmap)"


class NotifierFree(Enum):
    """How a driver frees an SVA domain that embeds an mmu_notifier (seed 003)."""

    UNREGISTER = "mmu_notifier_unregister, then kfree"
    PUT = "mmu_notifier_put; kfree in the free_notifier callback"
    KFREE_EARLY = "kfree while the notifier is still registered"


@dataclass(frozen=True)
class Design:
    name: str
    summary: str = ""
    rationale: str = ""
    seeds: tuple[str, ...] = ()
    #: seed 002: iommu_attach_device fails while PASID (aux/SVA) users exist
    attach_refused_while_pasid_users: bool = False
    #: before DMA ownership (v5.19), attaching an UNMANAGED domain to the whole device
    #: was how VFIO handed it to a guest
    handover_by_attach: bool = False
    pasid_free: PasidFree = PasidFree.MMDROP
    notifier_free: NotifierFree = NotifierFree.PUT
    #: module exit calls mmu_notifier_synchronize() (seed 003)
    notifier_sync_at_unload: bool = True
    #: named driver variants (e.g. "vtd.teardown_skip_pasid_cache"), read by the drivers
    knobs: frozenset[str] = field(default_factory=frozenset)
    #: a user design may bring its own driver: (hw, bounds) -> Driver (model.drivers.base)
    driver_factory: Callable[[str, Any], Any] | None = field(default=None, compare=False)

    def has(self, knob: str) -> bool:
        return knob in self.knobs


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
    seeds=(),
)
