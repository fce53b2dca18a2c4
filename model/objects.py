"""The kernel objects of the IOMMU core, as plain immutable values.

Objects refer to each other by id (device name, group name, domain id, handle
id, mm id), never by Python reference, so that a whole world is a handful of
dicts of frozen values: copying it is a shallow copy per dict and hashing it is
a sorted tuple (the explorer does both millions of times).

Field names follow struct iommu_group / iommu_domain / iommu_sva / mm_struct
(kernel-core-api.md section 1).
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from enum import Enum
from typing import TypeVar, Union

from hwspec.memory import SZ_2M, SZ_4K

IOMMU_NO_PASID = 0
IOMMU_FIRST_GLOBAL_PASID = 1
IOMMU_PASID_INVALID = 0xFFFF_FFFF


class DomainType(Enum):
    """IOMMU_DOMAIN_* (include/linux/iommu.h)."""

    BLOCKED = "BLOCKED"
    IDENTITY = "IDENTITY"
    UNMANAGED = "UNMANAGED"  # a paging domain owned by a user (VFIO/iommufd) or kernel driver
    DMA = "DMA"  # the DMA-API default domain (a paging domain)
    SVA = "SVA"
    #: a user (iommufd) domain translated by a guest's stage-1 table on top of a
    #: nesting parent's stage-2 (ops->domain_alloc_nested): not a paging domain, no
    #: iommu_map on it (bound nesting)
    NESTED = "NESTED"

    @property
    def is_paging(self) -> bool:
        return self in (DomainType.UNMANAGED, DomainType.DMA)


@dataclass(frozen=True)
class ErrPtr:
    """ERR_PTR(-errno): what a pointer-returning kernel call gives on failure."""

    err: int  # negative errno

    def __post_init__(self) -> None:
        assert self.err < 0, "ERR_PTR takes a negative errno"

    def __repr__(self) -> str:
        name = errno.errorcode.get(-self.err, str(-self.err))
        return f"ERR_PTR(-{name})"


T = TypeVar("T")
PtrResult = Union[T, ErrPtr]


def IS_ERR(value: object) -> bool:
    return isinstance(value, ErrPtr)


def PTR_ERR(value: object) -> int:
    assert isinstance(value, ErrPtr), f"PTR_ERR of a valid pointer {value!r}"
    return value.err


def errname(ret: int) -> str:
    """0 -> '0', -16 -> '-EBUSY' (how results are printed in traces)."""
    if ret == 0:
        return "0"
    if ret < 0 and -ret in errno.errorcode:
        return f"-{errno.errorcode[-ret]}"
    return str(ret)


@dataclass(frozen=True)
class Device:
    """A device as the IOMMU core sees it (struct device + dev->iommu)."""

    name: str
    sid: int  # RID / StreamID: PCI_DEVID(bus, devfn)
    group: str | None  # None: not probed by any IOMMU (devX of the scenario fixture)
    max_pasids: int  # dev->iommu->max_pasids; 0 = no PASID support
    ats: bool = False  # ATS capable (and enabled by the driver at probe)
    require_direct: bool = False  # firmware RMRR / IOMMU_RESV_DIRECT
    #: the default domain type is IOMMU_DOMAIN_IDENTITY (iommu.passthrough=1, or the
    #: driver's def_domain_type): the RID bypasses translation, the DMA API is dma-direct
    identity: bool = False
    #: the requester ID its DMA carries when that is not its own: a conventional PCI
    #: function behind a PCIe-to-PCI bridge is seen as the bridge (pci_for_each_dma_alias);
    #: the drivers program its own RID and the alias alike
    alias_sid: int | None = None

    @property
    def rids(self) -> tuple[int, ...]:
        """Every requester ID the drivers program for it (pci_for_each_dma_alias)."""
        return (self.sid,) if self.alias_sid is None else (self.sid, self.alias_sid)

    @property
    def wire_sid(self) -> int:
        """The requester ID on its DMA."""
        return self.sid if self.alias_sid is None else self.alias_sid


@dataclass(frozen=True)
class PasidEntry:
    """One slot of group->pasid_array: a bare domain or an attach handle (tag 0 / tag 1)."""

    domain: int
    handle: int | None = None


@dataclass(frozen=True)
class Group:
    """struct iommu_group: the unit of isolation, and of RID and PASID attachment."""

    name: str
    devices: tuple[str, ...]
    default_domain: int | None
    domain: int | None  # the current RID domain (group->domain)
    blocking_domain: int | None = None
    owner: str | None = None  # DMA owner cookie (VFIO/iommufd); None for the DMA API
    owner_cnt: int = 0
    pasid_array: tuple[tuple[int, PasidEntry], ...] = ()  # sorted (pasid, entry)

    def pasid_entry(self, pasid: int) -> PasidEntry | None:
        for p, e in self.pasid_array:
            if p == pasid:
                return e
        return None

    def with_pasid(self, pasid: int, entry: PasidEntry | None) -> tuple[tuple[int, PasidEntry], ...]:
        rest = [(p, e) for p, e in self.pasid_array if p != pasid]
        if entry is not None:
            rest.append((pasid, entry))
        return tuple(sorted(rest, key=lambda pe: pe[0]))


@dataclass(frozen=True)
class Domain:
    """struct iommu_domain. `owner` is the driver whose allocator made it."""

    id: int
    type: DomainType
    owner: str  # driver name: "vtd", "smmuv3", "mock", or another driver's name
    pgtable: int | None = None  # root of the I/O page table (paging domains)
    mm: int | None = None  # SVA: the bound address space
    users: int = 0  # SVA: number of devices sharing this domain (domain->users)
    has_attach_dev: bool = True
    has_set_dev_pasid: bool = True
    static: bool = False  # ops->blocked_domain / ops->identity_domain: never freed
    #: allocated with IOMMU_HWPT_ALLOC_NEST_PARENT: a stage-2 table domains may nest on
    nest_parent: bool = False
    #: NESTED: the nesting parent whose stage-2 table translates the guest's output
    #: (`pgtable` is then the guest's stage-1 table: IOVA -> IPA)
    parent: int | None = None
    #: domain->pgsize_bitmap: the page sizes its page table can map, set by the driver's
    #: domain_alloc_paging (Driver.pgsize_bitmap); iommu_pgsize picks each map's and
    #: unmap's page size from it, and that size is the gather's granule
    pgsize_bitmap: int = SZ_4K | SZ_2M


@dataclass(frozen=True)
class Handle:
    """An iommu_attach_handle; kind 'sva' is the handle embedded in struct iommu_sva."""

    id: int
    kind: str  # "attach" or "sva"
    domain: int | None = None
    dev: str | None = None  # iommu_sva.dev
    users: int = 0  # iommu_sva.users (refcount_t)
    pasid: int | None = None  # the PASID the bond uses (per device in per-RID designs)


@dataclass(frozen=True)
class Mm:
    """A process: mm_struct with its iommu_mm data and the CPU's IA32_PASID state."""

    id: int
    pgd: int  # root of the CPU page table, walked by the IOMMU for SVA
    users: int = 1  # mm_users: the address space is live while > 0
    count: int = 1  # mm_count: the struct (and its PASID) lives while > 0
    pasid: int | None = None  # mm->iommu_mm->pasid (None: iommu_mm == NULL)
    sva_domains: tuple[int, ...] = ()  # iommu_mm->sva_domains
    msr_pasid: int | None = None  # IA32_PASID of its threads (ENQCMD), set on first #GP fixup

    @property
    def exited(self) -> bool:
        return self.users == 0


class NotifierState(Enum):
    REGISTERED = "registered"  # on the mm's notifier list: release/invalidate may call it
    PUT_PENDING = "put pending"  # mmu_notifier_put done; free_notifier runs after SRCU


@dataclass(frozen=True)
class Notifier:
    """An mmu_notifier a driver registered on an mm for an SVA domain."""

    id: int
    mm: int
    domain: int
    state: NotifierState = NotifierState.REGISTERED
    released: bool = False  # ->release already ran (mm exit)


class PageResp(Enum):
    """enum iommu_page_response_code (include/linux/iommu.h): what a fault handler
    answers. The values are the kernel's enum, not the PCIe codes: the driver
    translates (or, see prg-response-valid, does not)."""

    SUCCESS = 0
    INVALID = 1
    FAILURE = 2


@dataclass(frozen=True)
class PageRequest:
    """A PCIe PRI Page Request the device sent for one page, the last of its group
    (LPIG = 1: the model's page request groups are single requests). `pasid` is
    the PASID on the wire (the device issues page requests only with one)."""

    dev: str
    pasid: int
    iova: int


@dataclass(frozen=True)
class IopfGroup:
    """struct iopf_group on the iopf workqueue: the request and a plain, uncounted
    pointer to the attach handle the core found at report time. The handle must
    outlive the group: detach (and replace) is the fence for page faults
    (io-pgfault.c, v6.11 attach-handle series)."""

    req: PageRequest
    handle: int
