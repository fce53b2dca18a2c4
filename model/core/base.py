"""The state of a world and the helpers every part of the core uses.

`KernelBase` declares every field of the core's state once (`STATE`, see
model/state.py): copy, the exact key and the explorer's canonical key come from
that list. The calls live in the modules named after the kernel files that hold
them (iommu.py: groups, domains, RID attach and DMA ownership; pasid.py: PASID
attach and aux domains; pasid_alloc.py: the PASID allocators; mm.py: mm and
mmu-notifier lifetime; sva.py: iommu-sva.c; dma.py: the DMA API and the
hardware's view), stacked into `model.core.Kernel`.
"""

from __future__ import annotations

import errno
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Callable, Iterable, Protocol, TypeVar, cast

from hwspec.memory import Memory

from model.design import Design
from model.drivers.base import Driver, DriverState
from model.objects import Device, Domain, Group, Handle, IopfGroup, Mm, Notifier, PageRequest
from model.state import Declared, Role, StateField
from model.warn import KernelWarning, site

if TYPE_CHECKING:
    from model.core.kernel import Kernel

_T = TypeVar("_T")

#: Linux-internal errno (include/linux/errno.h), not in Python's errno module.
EPROBE_DEFER = 517

BLOCKED_DOMAIN_ID = 1  # ops->blocked_domain (static)
IDENTITY_DOMAIN_ID = 2  # ops->identity_domain (static)
FIRST_DYNAMIC_ID = 3


class Renaming(Protocol):
    """Labels for the names of one state (implemented by checker.explore)."""

    def dom(self, d: int) -> int: ...
    def handle(self, h: int) -> int: ...
    def mm(self, m: int) -> int: ...
    def root(self, addr: int) -> int: ...
    def pfn(self, pfn: int) -> int: ...

    def order(self, kind: str, ids: Iterable[int], signature: Callable[[int], Any]) -> list[int]:
        """ids with labels first (in label order), then the rest by signature (equal
        signatures in an order of the renaming's choosing), labelled in that order."""
        ...

    def roots(self) -> list[int]:
        """The page-table roots labelled so far, in label order."""
        ...

    def root_field(self, word: int, mask: int, lo: int, shift: int) -> Any:
        """A memory word whose bits `mask` hold a root address >> shift, with the root renamed."""
        ...


class KernelBase(Declared):
    """The fields of a world and the helpers shared by every call."""

    # Declared in the order the canonical key visits them: a label is given on first
    # sight, so this order is part of the symmetry reduction (model/core/kernel.py
    # supplies the `canon` functions).
    STATE = (
        StateField("hw", Role.FIXED, "the hardware kind: vtd, smmuv3 or mock"),
        StateField("design", Role.FIXED, "the design whose policies the core and drivers read"),
        StateField("driver", Role.FIXED, "the IOMMU driver (its state is `drv`)"),
        StateField("devices", Role.FIXED, "probed and unprobed devices; never change after boot"),
        StateField("kernel_pgd", Role.FIXED, "init_mm's page table (bound kernel_pgtable): the "
                                             "kernel half every x86 CPU page table shares; None "
                                             "without the bound"),
        StateField("groups", Role.MAP, "iommu_group by name"),
        StateField("domains", Role.MAP, "live iommu_domain by id (static ones included)"),
        StateField("handles", Role.MAP, "attach and SVA handles by id"),
        StateField("mms", Role.MAP, "mm_struct (with its iommu_mm) by id"),
        StateField("notifiers", Role.MAP, "mmu_notifiers by id (their callbacks run in id order)"),
        StateField("global_pasids", Role.VALUE, "iommu_global_pasid_ida: the allocated values"),
        StateField("rid_pasids", Role.MAP, "per-device PASID spaces (PER_RID / GLOBAL_FLAG designs)"),
        StateField("mm_rid_pasid", Role.MAP, "per-RID SVA PASIDs: (dev, mm) -> pasid (PER_RID design)"),
        StateField("aux_pasids", Role.MAP, "aux domains' default PASIDs (aux designs): domain -> pasid"),
        StateField("kernel_pasids", Role.VALUE,
                   "PASIDs kernel drivers allocated for their own DMA: (dev or None if global, pasid)"),
        StateField("next_id", Role.VALUE, "the id the next object gets (fresh ids are names)",
                   canonical=False),
        StateField("module_loaded", Role.VALUE, "the IOMMU driver module is loaded"),
        StateField("resetting", Role.VALUE,
                   "devices between pci_dev_reset_iommu_prepare and _done (gdev->blocked)"),
        StateField("disconnected", Role.VALUE,
                   "devices gone from the bus (pci_dev_is_disconnected, !pci_device_is_present)"),
        StateField("released", Role.VALUE,
                   "devices iommu_release_device removed (no group, no driver state) until "
                   "iommu_probe_device probes them again"),
        StateField("prq", Role.VALUE,
                   "the IOMMU's page request queue: PRI requests no interrupt thread has read "
                   "yet (VT-d PRQ), oldest first"),
        StateField("iopf_groups", Role.VALUE,
                   "iopf groups queued on the iopf workqueue, oldest first (their handlers have "
                   "not run)"),
        StateField("injected", Role.MAP, "one-shot driver failures armed (selftest-style)"),
        StateField("faults_left", Role.VALUE, "fail_nth injections still allowed in this run (bound faults)"),
        StateField("fail_nth", Role.VALUE,
                   "the armed fault: the N-th fault point of the next call fails (None: none armed)"),
        StateField("mem", Role.OBJECT, "physical memory: table words and page tables"),
        StateField("drv", Role.OBJECT, "the driver's private state (hardware unit, IDs, tags)"),
        StateField("warnings", Role.HISTORY, "WARN / oops / use-after-free events, in order"),
        StateField("freed", Role.HISTORY,
                   "(kind, id) -> the kernel function that freed it: for use-after-free reports"),
        StateField("injected_at", Role.HISTORY, "every failure injected so far: the site, in order"),
        StateField("fault_points", Role.SCRATCH,
                   "fault points passed so far in the current call (reset when an armed call starts)"),
        StateField("memo", Role.SCRATCH,
                   "per-state memo for read-only queries; None while the state may change"),
    )

    hw: str
    design: Design
    driver: Driver
    devices: dict[str, Device]
    groups: dict[str, Group]
    domains: dict[int, Domain]
    handles: dict[int, Handle]
    mms: dict[int, Mm]
    notifiers: dict[int, Notifier]
    global_pasids: frozenset[int]
    rid_pasids: dict[str, frozenset[int]]
    mm_rid_pasid: dict[tuple[str, int], int]
    aux_pasids: dict[int, int]
    kernel_pasids: frozenset[tuple[str | None, int]]
    next_id: int
    module_loaded: bool
    resetting: frozenset[str]
    disconnected: frozenset[str]
    released: frozenset[str]
    prq: tuple[PageRequest, ...]
    iopf_groups: tuple[IopfGroup, ...]
    injected: dict[str, int]
    faults_left: int
    fail_nth: int | None
    fault_points: int | None
    mem: Memory
    kernel_pgd: int | None
    drv: DriverState
    warnings: list[str]
    freed: dict[tuple[str, int], str]
    injected_at: list[str]
    memo: dict[Any, Any] | None

    def _init_state(self, hw: str, design: Design, driver: Driver) -> None:
        self.hw = hw
        self.design = design
        self.driver = driver
        self.mem = Memory(table_pages=driver.walk_caches)
        self.kernel_pgd = None
        self.devices = {}
        self.groups = {}
        self.domains = {}
        self.handles = {}
        self.mms = {}
        self.notifiers = {}
        self.global_pasids = frozenset()
        self.rid_pasids = {}
        self.mm_rid_pasid = {}
        self.aux_pasids = {}
        self.kernel_pasids = frozenset()
        self.next_id = FIRST_DYNAMIC_ID
        self.module_loaded = True
        self.resetting = frozenset()
        self.disconnected = frozenset()
        self.released = frozenset()
        self.prq = ()
        self.iopf_groups = ()
        self.injected = {}
        self.faults_left = 0
        self.fail_nth = None
        self.fault_points = None
        self.warnings = []
        self.freed = {}
        self.injected_at = []
        self.memo = None

    @property
    def _k(self) -> "Kernel":
        """This world as the drivers see it (the whole core; see model/core/kernel.py)."""
        return cast("Kernel", self)

    def recovering(self, g: Group) -> bool:
        """The group's recovery_cnt != 0: a device of it is between
        pci_dev_reset_iommu_prepare and _done (model/core/reset.py). The core refuses
        domain changes of such a group (-EBUSY) and skips the blocked device in the
        must-succeed ones; the invariants' contracts read the same rule."""
        return any(name in self.resetting for name in g.devices)

    # ------------------------------------------------------------------ memo
    def freeze(self) -> None:
        """The state will not change until thaw(): read-only queries may be memoised."""
        self.memo = {}

    def thaw(self) -> None:
        self.memo = None

    def memoized(self, key: Any, fn: Callable[[], _T]) -> _T:
        if self.memo is None:
            return fn()
        if key not in self.memo:
            self.memo[key] = fn()
        return cast(_T, self.memo[key])

    # ------------------------------------------------------------ utilities
    def warn(self, site_id: str, detail: str) -> None:
        """Record a WARN / oops / use-after-free at a declared site (model/warn.py)."""
        self.warnings.append(KernelWarning(site(site_id), detail))

    def free_table_page(self, table: int, where: str) -> None:
        """Free a leaf table page (bound walk_caches). A walk-cache entry that still points
        at it is recorded first: the free must come after the flush that drops it."""
        held = sorted(str(e) for e in self.driver.walk_cache_entries(self._k) if e.table == table)
        if held:
            self.warn("table_freed_while_cached", f"{where} frees leaf table page @{table:#x} "
                                                  f"while {held[0]}")
        self.mem.free_leaf_table(table)

    def mark_freed(self, kind: str, obj: int, where: str) -> None:
        """The kernel freed this object here (named in later use-after-free reports)."""
        self.freed[(kind, obj)] = where

    def freed_where(self, kind: str, obj: int) -> str:
        return self.freed.get((kind, obj), "an earlier call")

    def live(self, kind: str, table: dict[int, _T], obj: int, user: str) -> _T | None:
        """The object `obj` of `table`, or None after recording a use-after-free: every
        id the model holds came from `_new_id`, so an id that is not live was freed."""
        got = table.get(obj)
        if got is None:
            self.warn(f"uaf_{kind}", f"{user} uses {kind} {obj}, freed in {self.freed_where(kind, obj)}")
        return got

    def _new_id(self) -> int:
        i = self.next_id
        self.next_id += 1
        return i

    def group_of(self, dev: str) -> Group | None:
        """dev->iommu_group: None for a device no IOMMU probed, or one released since."""
        d = self.devices[dev]
        return None if d.group is None or dev in self.released else self.groups[d.group]

    def _set_group(self, g: Group, **changes: Any) -> Group:
        g = replace(g, **changes)
        self.groups[g.name] = g
        return g

    def _compatible(self, dom: Domain) -> bool:
        """domain_iommu_ops_compatible: same owner ops, or the driver's static domains."""
        return dom.owner == self.driver.name

    def _take_injected(self, op: str) -> int:
        err = self.injected.pop(op, 0)
        if err:
            self.injected_at.append(op)
        return err

    def may_fail(self, site: str) -> int:
        """A point where the kernel can fail with -ENOMEM (an allocation, or a driver op
        that allocates): -ENOMEM if it is the N-th point of the call the armed fault
        applies to (fail_nth, like /proc/self/task/<tid>/fail-nth), else 0. The fault is
        consumed here; `site` is recorded in `injected_at` for the trace. The caller takes
        the kernel's own error path for that point."""
        n = self.fail_nth
        if n is None:
            return 0
        passed = (self.fault_points or 0) + 1
        self.fault_points = passed
        if passed != n:
            return 0
        self.fail_nth = None
        self.injected_at.append(site)
        return -errno.ENOMEM

    def arm_fail_nth(self, n: int) -> None:
        """The fail_nth event: the n-th fault point of the next call fails."""
        assert n >= 1 and self.fail_nth is None and self.faults_left > 0
        self.fail_nth = n
        self.faults_left -= 1

    def begin_call(self) -> None:
        """A call starts: no fault point passed yet."""
        self.fault_points = 0

    def end_call(self) -> None:
        """The call the armed fault applied to is over: like fail-nth, it lasts one call."""
        self.fail_nth = None
        self.fault_points = None

    def inject_failure(self, op: str, err: int) -> None:
        """Make the driver's next `op` ("attach_dev", "set_dev_pasid") fail with `err`
        (the iommufd selftest's PASID-1024 hook, kernel-core-api.md section 8)."""
        assert err < 0
        self.injected[op] = err
