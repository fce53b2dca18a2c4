"""The errno contract: when each call of the action table may fail, and with which errno.

Every call of `model.actions.ACTIONS` that returns a value (0 / -errno, a pointer
or ERR_PTR, a PASID, a byte count), and the events that return an errno, has one
`Contract`: its kernel-doc source, its failure `Clause`s in the kernel's check
order, what success means and what it returns. A clause's `when(before, args, hw)`
reads the state *before* the call; the first clause whose condition holds decides
the outcome, exactly as the first failing check of the kernel function decides its
errno. When no clause holds the call must succeed. So the contract names one
expected outcome for every state, and a result outside it is a violation: a wrong
errno, a failure whose success conditions hold ("returned -EBUSY although pasid 1
is free"), or a success where a clause says the call must fail.

The clauses are written from the kernel (kernel-core-api.md, iommu.c, iommu-sva.c,
the VT-d and SMMUv3 drivers) in our own words, independently of `model/core.py`;
the driver clauses read the driver's state (DIDs, ASIDs, PASID-table entries),
since those failures come from resources only the driver sees. A clause marked
`exact=False` allows a failure without requiring it (a driver-internal failure the
state cannot predict); its text says so.

`args` are the action's arguments. Where the action table fixes an argument of the
kernel call (the DMA owner cookie of a claim, the fresh handle of a PASID replace),
the contract also accepts it as an optional trailing argument, so that direct calls
(tests/conformance) can be judged too. args[0] of a PASID attach may also be a
`Domain` object not yet in the state (the SVA domain a bind is about to allocate).

-ENOMEM is never in a contract: it is allowed only when a failure was injected
during the call (`Kernel.inject_failure`, or a longer `injected_at` history).

Designs that change a call's checks on purpose (the 2018 attach refusal, per-RID
PASID allocation, DMA ownership without the pasid_array checks) have their own
clauses, marked with the design policy they depend on, so the contract holds the
model to what each design says it does.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from hwspec.memory import PAGE_SHIFT, SZ_2M
from hwspec.vtd import IDA_START_DID, PASID_ENTRY

from invariants.base import Invariant, Layer, Step, Violation
from model.actions import ACTIONS, ACTIONS_BY_NAME, USER_OWNER, Action, Args, show_call, show_domain
from model.bounds import Bounds
from model.core import BLOCKED_DOMAIN_ID, EPROBE_DEFER, Kernel
from model.design import PasidAlloc
from model.drivers.smmuv3 import SmmuState
from model.drivers.vtd import VtdState
from model.objects import IOMMU_NO_PASID, IOMMU_PASID_INVALID, Device, Domain, DomainType, ErrPtr, Group, errname

PAGE_SIZE = 1 << PAGE_SHIFT

#: Clause results that are not a failure value
SUCCESS = "success"  # the call succeeds here (a shortcut in the kernel's order)
SAME_HANDLE = "the existing handle"  # iommu_sva_bind_device on a bound (dev, mm)

Pred = Callable[[Kernel, Args, str], bool]


@dataclass(frozen=True)
class Clause:
    """One outcome of a call and when it happens, in kernel check order.

    `result`: the negative errno (ERR_PTR of it for pointer calls), the failure value
    of a value call (IOMMU_PASID_INVALID, 0 bytes), SUCCESS or SAME_HANDLE.
    """

    result: int | str
    when: Pred
    text: str  # the condition, in kernel terms ("pasid is 0")
    source: str  # where the check is (kernel file:function [tag])
    exact: bool = True  # False: the outcome is allowed when `when` holds, not required
    hw: tuple[str, ...] = ()  # the drivers the clause is about (empty: the core, any driver)
    design: str = ""  # the design policy the clause depends on (empty: every design)

    def holds(self, k: Kernel, args: Args, hw: str) -> bool:
        if self.hw and hw not in self.hw:
            return False
        return self.when(k, args, hw)


@dataclass(frozen=True)
class Contract:
    call: str
    kernel_doc: str  # where the call's kernel-doc and body are
    clauses: tuple[Clause, ...]  # in kernel check order
    success: str  # when it succeeds
    returns: str  # what it returns
    #: "errno" (0 / -errno), "pointer" (an id / ErrPtr), "pasid" (a PASID /
    #: IOMMU_PASID_INVALID), "bytes" (bytes unmapped, 0 for none)
    kind: str = "errno"
    ok: str = "0"  # the success result, as the message names it
    #: "bytes" with a size argument: the index of the argument giving the pages asked for
    #: (success is all of them); None: one page
    pages_arg: int | None = None
    #: "bytes" without a size argument: the bytes a success unmaps
    size: int = PAGE_SIZE
    #: the state facts behind "the contract says it succeeds" (for the message)
    facts: Callable[[Kernel, Args], str] | None = None
    #: extra checks of a success: (before, args, result, after) -> complaint or None
    on_success: Callable[[Kernel, Args, Any, Kernel], str | None] | None = None
    #: how a successful pointer result is named in messages ("sva9", "d4")
    show: Callable[[int], str] = str


# -- state helpers ---------------------------------------------------------------------------
def _group(k: Kernel, dev: str) -> Group | None:
    d = k.devices.get(dev)
    return None if d is None or d.group is None else k.groups.get(d.group)


def _dev_no_group(k: Kernel, a: Args, hw: str) -> bool:
    """For calls whose device is args[0]."""
    return _group(k, a[0]) is None


def _dom_dev_no_group(k: Kernel, a: Args, hw: str) -> bool:
    """For calls whose device is args[1]."""
    return _group(k, a[1]) is None


def _domain(k: Kernel, d: Any) -> Domain | None:
    if isinstance(d, Domain):
        return d
    return k.domains.get(d) if isinstance(d, int) else None


def _pasid_devs(k: Kernel, g: Group) -> list[Device]:
    return [k.devices[n] for n in g.devices if k.devices[n].max_pasids > 0]


def _compatible(k: Kernel, dom: Domain) -> bool:
    """domain_iommu_ops_compatible: allocated by this driver's ops (or its static domains)."""
    return dom.owner == k.driver.name


def _pasid_users(g: Group) -> bool:
    return any(p != IOMMU_NO_PASID for p, _ in g.pasid_array)


def _pasids_block_ownership(k: Kernel, g: Group) -> bool:
    """The pasid_array checks of DMA ownership (absent in dma-owner-ignores-pasid-users)."""
    return bool(g.pasid_array) and not k.design.has("core.claim_ignores_pasids")


def _mm_dead(k: Kernel, mm: int | None) -> bool:
    m = k.mms.get(mm) if mm is not None else None
    return m is None or m.exited


# -- driver state (VT-d DIDs and PASID entries, SMMUv3 ASIDs) -----------------------------------
def _vtd(k: Kernel) -> VtdState | None:
    return k.drv if isinstance(k.drv, VtdState) else None


def _smmu(k: Kernel) -> SmmuState | None:
    return k.drv if isinstance(k.drv, SmmuState) else None


def _vtd_no_did(k: Kernel, dom: Domain, released: int | None = None) -> bool:
    """domain_attach_iommu fails: a paging domain without a DID on this IOMMU, and every
    DID from IDA_START_DID to cap_ndoms - 1 is taken (`released`: a domain whose last
    DID reference is dropped first, as device_block_translation does on a RID attach)."""
    s = _vtd(k)
    if s is None or not (dom.type.is_paging or dom.type is DomainType.NESTED) or dom.id in s.dids:
        return False
    used = {did for d, (did, ref) in s.dids.items() if not (d == released and ref == 1)}
    return all(did in used for did in range(IDA_START_DID, s.ndoms))


def _vtd_entry_present(k: Kernel, dev: Device, pasid: int) -> bool:
    """The device's PASID-table entry for pasid is present (intel_pasid_setup_* gives -EBUSY)."""
    s = _vtd(k)
    if s is None:
        return False
    words = s.unit.read_pasid_entry(k.mem, dev.sid, pasid)
    return words is not None and bool(PASID_ENTRY.get(words, "p"))


def _smmu_no_asid(k: Kernel) -> bool:
    """arm_smmu_asid_xa is full: every ASID 1 .. 2^asid_bits - 1 is in use."""
    s = _smmu(k)
    if s is None:
        return False
    used = s.used_asids()
    return all(a in used for a in range(1, 1 << s.asid_bits))


def _smmu_no_cd_table(k: Kernel, dom: Domain, dev: Device) -> str:
    """SMMUv3: why set_dev_pasid refuses a domain for want of a CD table, or ''."""
    s = _smmu(k)
    if s is None or dom.type is DomainType.BLOCKED:
        return ""
    if dom.id in s.vmids:
        return f"{show_domain(dom.id)} is a stage-2 domain (arm_smmu_s1_set_dev_pasid: stage != S1)"
    m = s.masters.get(dev.name)
    rid = k.domains.get(m.rid_domain) if m is not None and m.rid_domain is not None else None
    if rid is not None and s.stage2(rid):
        return (f"{dev.name}'s RID is on the stage-2 or nested {show_domain(rid.id)}, whose STE "
                f"holds no CD table (arm_smmu_set_pasid: !cd_table.in_ste)")
    return ""


def _driver_set_dev_pasid(k: Kernel, dom: Domain, dev: Device, pasid: int, old: Domain | None,
                          first: bool) -> tuple[int, str]:
    """What dom->ops->set_dev_pasid returns for one device, predicted from the state
    before the call (`first`: no earlier device of the group has allocated the DID yet)."""
    hw = k.hw
    if hw in ("vtd", "smmuv3") and dom.type is DomainType.SVA and _mm_dead(k, dom.mm):
        return -errno.EINVAL, f"mm{dom.mm} has exited: mmget_not_zero fails, there is no page table to point at"
    if hw == "smmuv3" and dom.type is DomainType.IDENTITY:
        return -errno.EOPNOTSUPP, "SMMUv3 has no identity domain at a PASID"
    if hw == "smmuv3" and (why := _smmu_no_cd_table(k, dom, dev)):
        return -errno.EINVAL, why
    if hw == "vtd":
        if first and _vtd_no_did(k, dom):
            return -errno.ENOSPC, f"{show_domain(dom.id)} has no DID on this IOMMU and every DID is taken"
        if dom.type is DomainType.SVA and not dev.ats:
            return -errno.ENODEV, f"{dev.name} has no ATS/PRI, so IOPF cannot be enabled for SVA"
        if old is None and _vtd_entry_present(k, dev, pasid):
            return -errno.EBUSY, f"the PASID-table entry of {dev.name} pasid {pasid} is still present"
    return 0, ""


def _group_driver_failure(k: Kernel, dom: Domain, g: Group, pasid: int,
                          old: Domain | None) -> tuple[int, str] | None:
    """__iommu_set_group_pasid: the first device (in group order) whose driver call fails."""
    for i, dev in enumerate(_pasid_devs(k, g)):
        err, why = _driver_set_dev_pasid(k, dom, dev, pasid, old, first=i == 0)
        if err:
            return err, why
    return None


def _driver_fails_with(err: int, old_of: Callable[[Kernel, Args], Domain | None]) -> Pred:
    def pred(k: Kernel, a: Args, hw: str) -> bool:
        g = _group(k, a[1])
        dom = _domain(k, a[0])
        if g is None or dom is None:
            return False
        got = _group_driver_failure(k, dom, g, a[2], old_of(k, a))
        return got is not None and got[0] == err
    return pred


def _no_old(k: Kernel, a: Args) -> Domain | None:
    return None


def _current_domain(k: Kernel, a: Args) -> Domain | None:
    g = _group(k, a[1])
    e = g.pasid_entry(a[2]) if g is not None else None
    return None if e is None else k.domains.get(e.domain)


# -- iommu_attach_device_pasid ------------------------------------------------------------------
RESET = "iommu.c:pci_dev_reset_iommu_prepare [CUR, v7.0 with b296ca1f]"


def _group_resetting(k: Kernel, dev: str) -> bool:
    g = _group(k, dev)
    return g is not None and k.recovering(g)


def _dom_dev_resetting(k: Kernel, a: Args, hw: str) -> bool:
    return _group_resetting(k, a[1])


def _dev_resetting(k: Kernel, a: Args, hw: str) -> bool:
    return _group_resetting(k, a[0])


def _dom_freed(k: Kernel, a: Args, hw: str) -> bool:
    return _domain(k, a[0]) is None


def _no_set_dev_pasid(k: Kernel, a: Args, hw: str) -> bool:
    dom = _domain(k, a[0])
    blocked = k.domains[BLOCKED_DOMAIN_ID]
    return dom is not None and (not dom.has_set_dev_pasid or not blocked.has_set_dev_pasid)


def _incompatible_or_pasid0(k: Kernel, a: Args, hw: str) -> bool:
    dom = _domain(k, a[0])
    return dom is not None and (not _compatible(k, dom) or a[2] == IOMMU_NO_PASID)


def _pasid_out_of_range(k: Kernel, a: Args, hw: str) -> bool:
    g = _group(k, a[1])
    return g is not None and any(a[2] >= d.max_pasids for d in _pasid_devs(k, g))


def _pasid_occupied(k: Kernel, a: Args, hw: str) -> bool:
    g = _group(k, a[1])
    return g is not None and g.pasid_entry(a[2]) is not None


ATTACH_PASID = "iommu.c:iommu_attach_device_pasid [CUR]"
SET_DEV_PASID_VTD = "intel/iommu.c:intel_iommu_set_dev_pasid, intel/svm.c:intel_svm_set_dev_pasid"
SET_DEV_PASID_SMMU = "arm-smmu-v3-sva.c:arm_smmu_sva_set_dev_pasid"

def _smmu_s2_ssids_busy(k: Kernel, a: Args, hw: str) -> bool:
    """SMMUv3: a stage-2 or nested domain for a RID whose CD table has PASIDs in use."""
    s = _smmu(k)
    if s is None or not s.stage2(_domain(k, a[0])):
        return False
    g = _group(k, a[1])
    return g is not None and any(s.ssids_in_use(k.mem, n) for n in g.devices)


_ATTACH_PASID_DRIVER: tuple[Clause, ...] = (
    Clause(-errno.EINVAL, _driver_fails_with(-errno.EINVAL, _no_old),
           "the domain is an SVA domain whose mm_struct is gone (its mmgrab was dropped); "
           "SMMUv3: a stage-2 domain, or a RID on a stage-2 or nested domain (no CD table)",
           SET_DEV_PASID_VTD + "; " + SET_DEV_PASID_SMMU, hw=("vtd", "smmuv3")),
    Clause(-errno.ENOSPC, _driver_fails_with(-errno.ENOSPC, _no_old),
           "a paging domain with no DID on this IOMMU yet, and every DID from IDA_START_DID to "
           "cap_ndoms - 1 is taken (domain_attach_iommu)",
           "intel/iommu.c:domain_attach_iommu", hw=("vtd",)),
    Clause(-errno.ENODEV, _driver_fails_with(-errno.ENODEV, _no_old),
           "an SVA domain on a device without ATS/PRI: enabling IOPF fails",
           "intel/svm.c:intel_svm_set_dev_pasid -> iopf_for_domain_replace", hw=("vtd",)),
    Clause(-errno.EBUSY, _driver_fails_with(-errno.EBUSY, _no_old),
           "the device's PASID-table entry is still present although the core has nothing "
           "attached there (intel_pasid_setup_first_level refuses a present entry)",
           "intel/pasid.c:intel_pasid_setup_first_level", hw=("vtd",)),
)

def _attach_pasid_facts(k: Kernel, a: Args) -> str:
    dom, dev, pasid = a[0], a[1], a[2]
    g = _group(k, dev)
    d = k.devices.get(dev)
    where = g.name if g is not None else "no group"
    n = d.max_pasids if d is not None else 0
    return (f"pasid {pasid} of {where} is free, {dev} supports {n} PASIDs, "
            f"{show_domain(dom) if isinstance(dom, int) else 'the domain'} is compatible")


ATTACH_DEVICE_PASID = Contract(
    "iommu_attach_device_pasid",
    "drivers/iommu/iommu.c:iommu_attach_device_pasid (kernel-core-api.md section 3)",
    (
        Clause(-errno.ENODEV, _dom_dev_no_group, "the device has no IOMMU group", ATTACH_PASID),
        Clause(-errno.EINVAL, _dom_freed,
               "the domain was freed (a caller bug; the model WARNs 'use-after-free')",
               "model guard; the kernel would dereference freed memory"),
        Clause(-errno.EOPNOTSUPP, _no_set_dev_pasid,
               "the domain's ops lack set_dev_pasid, or the driver's blocked domain does "
               "(checked before the PASID value: scenario row 12)", ATTACH_PASID),
        Clause(-errno.EINVAL, _incompatible_or_pasid0,
               "the domain is not ops-compatible with the device, or pasid is IOMMU_NO_PASID (0)",
               ATTACH_PASID),
        Clause(-errno.EBUSY, _dom_dev_resetting,
               "a device of the group is being reset (between pci_dev_reset_iommu_prepare and "
               "_done: the group's recovery_cnt is not zero)", ATTACH_PASID + "; " + RESET),
        Clause(-errno.EINVAL, _pasid_out_of_range,
               "pasid >= max_pasids of some PASID-capable device of the group (devices with "
               "max_pasids 0 are skipped since b3f6fcd8404f)", ATTACH_PASID),
        Clause(-errno.EBUSY, _pasid_occupied,
               "the group's pasid_array already holds an entry at pasid (same or another "
               "domain, with or without a handle): xa_insert fails", ATTACH_PASID),
        *_ATTACH_PASID_DRIVER,
    ),
    "every check passes and set_dev_pasid succeeds on every PASID-capable device of the "
    "group (with none, the entry is recorded without a driver call: row 19)",
    "0; the entry (the handle if one was given, else the bare domain) is stored at pasid",
    facts=_attach_pasid_facts,
)


def attach_pasid_failure(k: Kernel, dom: Domain, dev: str, pasid: int) -> Clause | None:
    """The clause iommu_attach_device_pasid(dom, dev, pasid) fails with, if any
    (the SVA bind reuses it for the domains it tries)."""
    for c in ATTACH_DEVICE_PASID.clauses:
        if c.exact and c.holds(k, (dom, dev, pasid), k.hw):
            return c
    return None


# -- iommu_replace_device_pasid -------------------------------------------------------------------
REPLACE = "iommu.c:iommu_replace_device_pasid [CUR]"


def _replace_bad_args(k: Kernel, a: Args) -> bool:
    dom = _domain(k, a[0])
    handle_null = len(a) > 3 and a[3] is None
    return dom is not None and (not _compatible(k, dom) or a[2] == IOMMU_NO_PASID or handle_null)


def _replace_no_ops(k: Kernel, a: Args, hw: str) -> bool:
    dom = _domain(k, a[0])
    return dom is not None and not dom.has_set_dev_pasid


def _replace_handle_reused(k: Kernel, a: Args, hw: str) -> bool:
    if len(a) < 4 or a[3] is None:
        return False  # the action passes a fresh handle
    g = _group(k, a[1])
    e = g.pasid_entry(a[2]) if g is not None else None
    return e is not None and e.handle is not None and e.handle == a[3]


def _replace_same_domain(k: Kernel, a: Args, hw: str) -> bool:
    g = _group(k, a[1])
    e = g.pasid_entry(a[2]) if g is not None else None
    return e is not None and e.domain == a[0]


def _replace_facts(k: Kernel, a: Args) -> str:
    g = _group(k, a[1])
    e = g.pasid_entry(a[2]) if g is not None else None
    cur = show_domain(e.domain) if e is not None else "nothing"
    return f"pasid {a[2]} of {g.name if g else 'no group'} holds {cur}, {show_domain(a[0])} is compatible"


REPLACE_DEVICE_PASID = Contract(
    "iommu_replace_device_pasid",
    "drivers/iommu/iommu.c:iommu_replace_device_pasid (kernel-core-api.md section 3); "
    "the action is iommufd_device_replace with a fresh handle",
    (
        Clause(-errno.ENODEV, _dom_dev_no_group, "the device has no IOMMU group", REPLACE),
        Clause(-errno.EOPNOTSUPP, _replace_no_ops,
               "the domain's ops lack set_dev_pasid (no blocked-domain check here)", REPLACE),
        Clause(-errno.EINVAL, lambda k, a, hw: _replace_bad_args(k, a),
               "the domain is not ops-compatible, pasid is 0, or the handle is NULL", REPLACE),
        Clause(-errno.EBUSY, _dom_dev_resetting,
               "a device of the group is being reset (recovery_cnt is not zero)", REPLACE + "; " + RESET),
        Clause(-errno.EINVAL, lambda k, a, hw: not _pasid_occupied(k, a, hw),
               "nothing is attached at pasid ('The @pasid should have been attached')", REPLACE),
        Clause(-errno.EINVAL, _replace_handle_reused,
               "the new handle is the one already stored at pasid (WARN: reusing a handle)", REPLACE),
        Clause(SUCCESS, _replace_same_domain,
               "the domain is already the one at pasid: the entry takes the new handle, no driver call",
               REPLACE),
        Clause(-errno.ENOSPC, _driver_fails_with(-errno.ENOSPC, _current_domain),
               "a paging domain with no DID on this IOMMU yet and every DID taken (the new DID "
               "is allocated before the old domain's is released)",
               "intel/iommu.c:intel_iommu_set_dev_pasid -> domain_attach_iommu", hw=("vtd",)),
        Clause(-errno.EINVAL, _driver_fails_with(-errno.EINVAL, _current_domain),
               "an SVA domain whose mm_struct is gone; SMMUv3: a stage-2 domain, or a RID on a "
               "stage-2 or nested domain", SET_DEV_PASID_VTD + "; " + SET_DEV_PASID_SMMU,
               hw=("vtd", "smmuv3")),
        Clause(-errno.ENODEV, _driver_fails_with(-errno.ENODEV, _current_domain),
               "an SVA domain on a device without ATS/PRI", "intel/svm.c:intel_svm_set_dev_pasid",
               hw=("vtd",)),
    ),
    "something is attached at pasid and set_dev_pasid(domain, old) succeeds on every "
    "PASID-capable device of the group",
    "0; the old configuration is kept on failure",
    facts=_replace_facts,
)


# -- RID attach and DMA ownership --------------------------------------------------------------
ATTACH_DEV = "iommu.c:iommu_attach_device, __iommu_attach_group [CUR]"


def _not_singleton(k: Kernel, a: Args, hw: str) -> bool:
    g = _group(k, a[1])
    return g is not None and len(g.devices) != 1


def _aux_refusal(k: Kernel, a: Args, hw: str) -> bool:
    g = _group(k, a[1])
    return g is not None and k.design.attach_refused_while_pasid_users and _pasid_users(g)


def _rid_not_core(k: Kernel, a: Args, hw: str) -> bool:
    g = _group(k, a[1])
    return g is not None and g.domain is not None and g.domain not in (g.default_domain, g.blocking_domain)


def _dom_incompatible(k: Kernel, a: Args, hw: str) -> bool:
    dom = _domain(k, a[0])
    return dom is None or not _compatible(k, dom)


def _rid_same_domain(k: Kernel, a: Args, hw: str) -> bool:
    g = _group(k, a[1])
    return g is not None and g.domain == a[0]


def _require_direct_blocked(k: Kernel, a: Args, hw: str) -> bool:
    g = _group(k, a[1])
    dom = _domain(k, a[0])
    if g is None or dom is None:
        return False
    blocking = dom.type is DomainType.BLOCKED or dom.id == g.blocking_domain
    return blocking and any(k.devices[n].require_direct for n in g.devices)


def _no_attach_dev(k: Kernel, a: Args, hw: str) -> bool:
    dom = _domain(k, a[0])
    return dom is not None and not dom.has_attach_dev


def _vtd_rid_no_did(k: Kernel, a: Args, hw: str) -> bool:
    g = _group(k, a[1])
    dom = _domain(k, a[0])
    s = _vtd(k)
    if g is None or dom is None or s is None:
        return False
    # device_block_translation drops the old RID domain's DID reference first
    info = s.info.get(a[1])
    return _vtd_no_did(k, dom, released=info.rid_domain if info is not None else None)


def _attach_facts(k: Kernel, a: Args) -> str:
    g = _group(k, a[1])
    if g is None:
        return f"{a[1]} has no group"
    return (f"{g.name} is a singleton on {show_domain(g.domain or 0)} (a core domain), "
            f"{show_domain(a[0])} is compatible")


ATTACH_DEVICE = Contract(
    "iommu_attach_device",
    "drivers/iommu/iommu.c:iommu_attach_device (kernel-core-api.md section 2)",
    (
        Clause(-errno.ENODEV, _dom_dev_no_group, "the device has no IOMMU group", ATTACH_DEV),
        Clause(-errno.EINVAL, _not_singleton, "the group does not hold exactly one device", ATTACH_DEV),
        Clause(-errno.EPERM, _aux_refusal,
               "PASID users (aux domains or SVA bonds) are attached to the group: 'any tries "
               "to call iommu_attach_device() should fail'",
               "seed 002; intel-iommu.c:intel_iommu_attach_device (v5.2-v5.17)",
               design="attach_refused_while_pasid_users (aux-2018)"),
        Clause(-errno.EBUSY, _rid_not_core,
               "the group's RID domain is neither its default nor its blocking domain (even "
               "when it is this domain: row 3)", ATTACH_DEV),
        Clause(-errno.EINVAL, _dom_incompatible,
               "the domain is not ops-compatible with the device (or was freed)", ATTACH_DEV),
        Clause(SUCCESS, _rid_same_domain,
               "the domain already is the group's domain: no driver call",
               "iommu.c:__iommu_group_set_domain_internal [CUR]"),
        Clause(-errno.EBUSY, _dom_dev_resetting,
               "a device of the group is being reset (recovery_cnt is not zero)",
               "iommu.c:__iommu_group_set_domain_internal [CUR]; " + RESET),
        Clause(-errno.EINVAL, _require_direct_blocked,
               "a device of the group has require_direct and the domain is a blocking one",
               "iommu.c:__iommu_device_set_domain [CUR]"),
        Clause(-errno.ENODEV, _no_attach_dev, "the domain's ops lack attach_dev",
               "iommu.c:__iommu_attach_device [CUR]"),
        Clause(-errno.EBUSY, _smmu_s2_ssids_busy,
               "a stage-2 or nested domain while the master's CD table has PASIDs in use",
               "arm-smmu-v3.c:arm_smmu_attach_dev (S2), arm-smmu-v3-iommufd.c:"
               "arm_smmu_attach_dev_nested", hw=("smmuv3",)),
        Clause(-errno.ENOSPC, _vtd_rid_no_did,
               "a paging domain with no DID on this IOMMU, and every DID is taken even after "
               "the old RID domain's last reference is dropped (device_block_translation runs first)",
               "intel/iommu.c:intel_iommu_attach_device -> domain_attach_iommu", hw=("vtd",)),
    ),
    "a singleton group on a core domain, a compatible domain, and attach_dev succeeds",
    "0; group->domain is the new domain",
    facts=_attach_facts,
)


def _probe_defer(k: Kernel, a: Args, hw: str) -> bool:
    g = _group(k, a[0])
    return g is not None and g.default_domain is None


def _use_busy(k: Kernel, a: Args, hw: str) -> bool:
    g = _group(k, a[0])
    return g is not None and g.owner_cnt > 0 and (
        g.domain != g.default_domain or g.owner is not None or _pasids_block_ownership(k, g))


def _owner_facts(k: Kernel, a: Args) -> str:
    g = _group(k, a[0])
    if g is None:
        return f"{a[0]} has no group"
    return (f"{g.name} has owner_cnt {g.owner_cnt}, owner {g.owner or 'NULL'}, RID on "
            f"{show_domain(g.domain or 0)}, {len(g.pasid_array)} PASID(s) attached")


USE = "iommu.c:iommu_device_use_default_domain [CUR]"
USE_DEFAULT_DOMAIN = Contract(
    "iommu_device_use_default_domain",
    "drivers/iommu/iommu.c:iommu_device_use_default_domain (kernel-core-api.md section 2, DMA ownership)",
    (
        Clause(SUCCESS, _dev_no_group, "the device has no IOMMU group: nothing to do", USE),
        Clause(-EPROBE_DEFER, _probe_defer, "the group has no default domain yet (-EPROBE_DEFER)", USE),
        Clause(-errno.EBUSY, _use_busy,
               "the group already has users and its RID is off the default domain, or it is "
               "owned by a DMA owner, or its pasid_array is non-empty", USE),
    ),
    "no user yet, or the existing users are DMA-API drivers on the default domain with no PASID attached",
    "0; owner_cnt + 1",
    facts=_owner_facts,
)

CLAIM = "iommu.c:iommu_device_claim_dma_owner, __iommu_take_dma_ownership [CUR]"


def _owner_arg(a: Args) -> Any:
    return a[1] if len(a) > 1 else USER_OWNER


def _claim_busy(k: Kernel, a: Args, hw: str) -> bool:
    g = _group(k, a[0])
    return g is not None and (
        (g.domain is not None and g.domain != g.default_domain) or _pasids_block_ownership(k, g))


def _claim_require_direct(k: Kernel, a: Args, hw: str) -> bool:
    g = _group(k, a[0])
    return g is not None and any(k.devices[n].require_direct for n in g.devices)


CLAIM_DMA_OWNER = Contract(
    "iommu_device_claim_dma_owner",
    "drivers/iommu/iommu.c:iommu_device_claim_dma_owner (kernel-core-api.md section 2); the "
    "action claims for VFIO (owner 'vfio')",
    (
        Clause(-errno.EINVAL, lambda k, a, hw: _owner_arg(a) is None, "the owner is NULL (WARN)", CLAIM),
        Clause(-errno.ENODEV, _dev_no_group, "the device has no IOMMU group", CLAIM),
        Clause(-errno.EPERM, lambda k, a, hw: (g := _group(k, a[0])) is not None and g.owner_cnt > 0
               and g.owner != _owner_arg(a),
               "the group has users of another owner (a bound DMA-API driver's owner is NULL)", CLAIM),
        Clause(SUCCESS, lambda k, a, hw: (g := _group(k, a[0])) is not None and g.owner_cnt > 0,
               "the same owner already holds the group: owner_cnt + 1", CLAIM),
        Clause(-errno.EBUSY, _claim_busy,
               "the RID is off the default domain, or the pasid_array is non-empty", CLAIM,
               ),
        Clause(-errno.EBUSY, _dev_resetting,
               "a device of the group is being reset: the switch to the blocking domain is refused",
               "iommu.c:__iommu_group_set_domain_internal [CUR]; " + RESET),
        Clause(-errno.EINVAL, _claim_require_direct,
               "a device of the group has require_direct: the blocking domain is refused (row 27)",
               "iommu.c:__iommu_device_set_domain [CUR]"),
    ),
    "no user, RID on the default domain, no PASID attached, and no require_direct device "
    "(or the same owner claims again)",
    "0; the group is on its blocking domain, owner set, owner_cnt + 1",
    facts=_owner_facts,
)


# -- the global PASID allocator ------------------------------------------------------------------
def _pasid_space_used(k: Kernel, dev: str) -> set[int]:
    """The values the allocator serving a kernel PASID user on dev considers taken."""
    alloc = k.design.pasid_alloc
    if alloc is PasidAlloc.GLOBAL:
        return set(k.global_pasids)
    used = set(k.rid_pasids.get(dev, frozenset()))
    if alloc is PasidAlloc.GLOBAL_FLAG:
        used |= k.global_pasids
    return used


def _lowest_free(k: Kernel, dev: str) -> int | None:
    d = k.devices[dev]
    used = _pasid_space_used(k, dev)
    return next((p for p in range(1, d.max_pasids) if p not in used), None)


def _alloc_pasid_ok(k: Kernel, a: Args, r: Any, after: Kernel) -> str | None:
    want = _lowest_free(k, a[0])
    if r != want:
        return f"{r}, but the contract says {want}: the allocator gives the lowest free value"
    return None


ALLOC_GLOBAL_PASID = Contract(
    "iommu_alloc_global_pasid",
    "drivers/iommu/iommu.c:iommu_alloc_global_pasid (kernel-core-api.md section 3)",
    (
        Clause(IOMMU_PASID_INVALID, lambda k, a, hw: k.devices[a[0]].max_pasids == 0,
               "the device has max_pasids 0", "iommu.c:iommu_alloc_global_pasid [CUR]"),
        Clause(IOMMU_PASID_INVALID, lambda k, a, hw: _lowest_free(k, a[0]) is None,
               "every value in [1, max_pasids - 1] is taken (upstream: in the one global IDA; "
               "per-RID designs: in the device's own space)",
               "iommu.c:iommu_alloc_global_pasid (ida_alloc_range) [CUR]"),
    ),
    "the device has PASIDs and a value in [1, max_pasids - 1] is free",
    "the lowest free value (ida_alloc_range), or IOMMU_PASID_INVALID",
    kind="pasid", ok="the lowest free PASID", on_success=_alloc_pasid_ok,
)


# -- aux domains (2018) ------------------------------------------------------------------------------
def _aux_pasid(k: Kernel, a: Args) -> int | None:
    """The domain's aux PASID: its own, or the one its first aux attach allocates."""
    p = k.aux_pasids.get(a[0])
    if p is not None:
        return p
    d = k.devices[a[1]]
    return next((x for x in range(1, d.max_pasids) if x not in k.global_pasids), None)


def _aux_dom_bad(k: Kernel, a: Args, hw: str) -> bool:
    dom = _domain(k, a[0])
    return dom is None or not dom.type.is_paging or not _compatible(k, dom)


def _aux_args(k: Kernel, a: Args) -> Args | None:
    p = _aux_pasid(k, a)
    return None if p is None else (a[0], a[1], p)


def _aux_clause(pred: Pred) -> Pred:
    def f(k: Kernel, a: Args, hw: str) -> bool:
        full = _aux_args(k, a)
        return full is not None and pred(k, full, hw)
    return f


AUX = "iommu.c:iommu_aux_attach_device [V510]; intel-iommu.c:intel_iommu_aux_attach_device (model's reading)"
AUX_ATTACH_DEVICE = Contract(
    "iommu_aux_attach_device",
    "drivers/iommu/iommu.c:iommu_aux_attach_device [V510] and the Intel aux driver (kernel-core-api.md section 5)",
    (
        Clause(-errno.ENODEV, _dom_dev_no_group, "the device has no IOMMU group", AUX),
        Clause(-errno.EINVAL, _aux_dom_bad, "the domain is not a compatible paging domain", AUX),
        Clause(-errno.EINVAL, lambda k, a, hw: k.devices[a[1]].max_pasids == 0,
               "the device has no PASIDs", AUX),
        Clause(-errno.ENOSPC, lambda k, a, hw: _aux_pasid(k, a) is None,
               "the domain has no default PASID yet and the PASID space is exhausted", AUX),
        Clause(-errno.EINVAL, lambda k, a, hw: (p := _aux_pasid(k, a)) is not None
               and p >= k.devices[a[1]].max_pasids,
               "the domain's PASID is beyond the device's max_pasids", AUX),
        Clause(-errno.EBUSY, _aux_clause(_pasid_occupied), "the group already has an entry at that PASID", AUX),
        *(Clause(c.result, _aux_clause(c.when), c.text, c.source, c.exact, c.hw) for c in _ATTACH_PASID_DRIVER),
    ),
    "a compatible paging domain, a PASID-capable device, and the domain's PASID free on the group",
    "0; the domain is attached at its default PASID",
)


# -- SVA --------------------------------------------------------------------------------------------
SVA = "iommu-sva.c:iommu_sva_bind_device [CUR]"
MM_DATA = "iommu-sva.c:iommu_alloc_mm_data [CUR]"


def _bind_pasid(k: Kernel, a: Args) -> int | None:
    """The PASID the bind uses on dev: the mm's own, or the one the allocator gives it."""
    dev, mm = a[0], a[1]
    m = k.mms.get(mm)
    d = k.devices[dev]
    if m is None:
        return None
    alloc = k.design.pasid_alloc
    if alloc is PasidAlloc.PER_RID:
        p = k.mm_rid_pasid.get((dev, mm))
        if p is not None:
            return p
        used = k.rid_pasids.get(dev, frozenset())
        return next((x for x in range(1, d.max_pasids) if x not in used), None)
    if m.pasid is not None:
        return m.pasid if m.pasid < d.max_pasids else None
    taken = set(k.global_pasids)
    if alloc is PasidAlloc.GLOBAL_FLAG:
        for used in k.rid_pasids.values():
            taken |= used
    return next((x for x in range(1, d.max_pasids) if x not in taken), None)


def _bind_overflow(k: Kernel, a: Args, hw: str) -> bool:
    m = k.mms.get(a[1])
    return (k.design.pasid_alloc is not PasidAlloc.PER_RID and m is not None and m.pasid is not None
            and m.pasid >= k.devices[a[0]].max_pasids)


def _bind_nospc(k: Kernel, a: Args, hw: str) -> bool:
    return _bind_pasid(k, a) is None


def _bind_entry(k: Kernel, a: Args) -> tuple[Any, Domain | None] | None:
    """(handle, its domain) at the bind's PASID, if the entry there has a handle."""
    g = _group(k, a[0])
    p = _bind_pasid(k, a)
    e = g.pasid_entry(p) if g is not None and p is not None else None
    if e is None or e.handle is None:
        return None
    return e.handle, k.domains.get(e.domain)


def existing_sva_handle(k: Kernel, dev: str, mm: int) -> int | None:
    """The live SVA handle of (dev's group, mm) at the mm's PASID (iommu_attach_handle_get)."""
    got = _bind_entry(k, (dev, mm))
    if got is None:
        return None
    h, dom = got
    if dom is not None and dom.type is DomainType.SVA and dom.mm == mm and isinstance(h, int):
        return h
    return None


def _bind_same(k: Kernel, a: Args, hw: str) -> bool:
    return existing_sva_handle(k, a[0], a[1]) is not None


def _bind_busy_handle(k: Kernel, a: Args, hw: str) -> bool:
    return _bind_entry(k, a) is not None  # a handle, but not this mm's SVA one (checked first)


def _bind_shares(k: Kernel, a: Args, hw: str) -> bool:
    p = _bind_pasid(k, a)
    m = k.mms.get(a[1])
    if p is None or m is None:
        return False
    for d in m.sva_domains:
        dom = k.domains.get(d)
        if dom is not None and attach_pasid_failure(k, dom, a[0], p) is None:
            return True
    return False


def _new_sva_domain(k: Kernel, mm: int) -> Domain:
    return Domain(-1, DomainType.SVA, k.driver.name, mm=mm, has_attach_dev=False)


def _bind_no_asid(k: Kernel, a: Args, hw: str) -> bool:
    s = _smmu(k)
    if s is None:
        return False
    if k.design.has("smmu.sva_cpu_asid") and a[1] in s.cpu_asids:
        return False  # the mm's pinned CPU ASID is reused
    return _smmu_no_asid(k)


def _bind_attach(pred: Pred) -> Pred:
    """A clause of iommu_attach_device_pasid, for the new SVA domain at the bind's PASID."""
    def f(k: Kernel, a: Args, hw: str) -> bool:
        p = _bind_pasid(k, a)
        return p is not None and pred(k, (_new_sva_domain(k, a[1]), a[0], p), hw)
    return f


def _bind_ok(k: Kernel, a: Args, r: Any, after: Kernel) -> str | None:
    if r in k.handles:
        return (f"sva{r}, but the contract says a new SVA handle: sva{r} existed before the call "
                f"and (dev, mm) was not bound")
    h = after.handles.get(r)
    if h is None or h.kind != "sva":
        return f"{r}, but the contract says an SVA handle: {r} is not a live SVA handle after the call"
    return None


def _bind_facts(k: Kernel, a: Args) -> str:
    m = k.mms.get(a[1])
    p = _bind_pasid(k, a)
    return (f"mm{a[1]} {'has pasid ' + str(m.pasid) if m is not None and m.pasid is not None else 'has no PASID yet'}, "
            f"pasid {p} of {a[0]}'s group is free, {a[0]} supports {k.devices[a[0]].max_pasids} PASIDs")


BIND = Contract(
    "iommu_sva_bind_device",
    "drivers/iommu/iommu-sva.c:iommu_sva_bind_device (kernel-core-api.md section 4)",
    (
        Clause(-errno.ENODEV, _dev_no_group, "the device has no IOMMU group", SVA),
        Clause(-errno.EOVERFLOW, _bind_overflow,
               "the mm already has a PASID that is >= the device's max_pasids (it cannot be "
               "given another one: ENQCMD needs one PASID per process)", MM_DATA),
        Clause(-errno.ENOSPC, _bind_nospc,
               "the mm has no PASID yet (per-RID designs: none on this device) and the allocator "
               "has none: the device has max_pasids 0 or every value is taken",
               MM_DATA + " -> iommu_alloc_global_pasid"),
        Clause(SAME_HANDLE, _bind_same,
               "the group already holds this mm's SVA handle at the mm's PASID: the same handle "
               "comes back with one more reference (the rule sva-handle-refcount also checks)",
               SVA + ", 65d4418c5002"),
        Clause(-errno.EBUSY, _bind_busy_handle,
               "the group holds another handle at the mm's PASID (another mm's SVA domain, or a "
               "non-SVA attach handle: iommu_attach_handle_get gives -EBUSY)", SVA),
        Clause(SUCCESS, _bind_shares,
               "one of the mm's SVA domains attaches at the PASID (its iommu_attach_device_pasid "
               "has no failing clause): a new handle shares it", SVA),
        Clause(-errno.EOPNOTSUPP, lambda k, a, hw: not k.driver.supports_sva,
               "the driver has no domain_alloc_sva", "iommu-sva.c:iommu_sva_domain_alloc [CUR]"),
        Clause(-errno.ENOSPC, _bind_no_asid,
               "every ASID is in use, so the new SVA domain gets none (with the 2022 CPU-ASID "
               "scheme: only when the mm has no pinned CPU ASID yet)",
               "arm-smmu-v3-sva.c:arm_smmu_sva_domain_alloc -> arm_smmu_asid_xa", hw=("smmuv3",)),
        # iommu_attach_device_pasid of the new SVA domain (its clauses from the ops check on)
        *(Clause(c.result, _bind_attach(c.when), f"attaching the new SVA domain: {c.text}",
                 c.source, c.exact, c.hw, c.design)
          # (not the freed-domain, compatibility and DID clauses: a new SVA domain of the
          # driver, at an allocated PASID, needs no DID)
          for c in (ATTACH_DEVICE_PASID.clauses[i] for i in (2, 4, 5, 6, 7, 9, 10))),
    ),
    "the mm has (or gets) a PASID the device can use, nothing else holds it in the group, "
    "and an SVA domain of the mm (an existing one, else a new one) attaches there",
    "a handle: the existing one (users + 1) for a bound (dev, mm), else a new one; ERR_PTR(-errno) "
    "on failure (the mm keeps its PASID)",
    kind="pointer", ok="an SVA handle", facts=_bind_facts, on_success=_bind_ok,
    show=lambda r: f"sva{r}",
)


def _alloc_ok(k: Kernel, a: Args, r: Any, after: Kernel) -> str | None:
    if r in k.domains:
        return f"{show_domain(r)}, but the contract says a new paging domain: {show_domain(r)} existed before the call"
    d = after.domains.get(r)
    if d is None or d.type is not DomainType.UNMANAGED:
        return f"{r}, but the contract says a new paging domain: {r} is not a live UNMANAGED domain after the call"
    return None


PAGING_DOMAIN_ALLOC = Contract(
    "iommu_paging_domain_alloc",
    "drivers/iommu/iommu.c:iommu_paging_domain_alloc_flags (kernel-doc: 'Allocate a paging domain')",
    (
        Clause(-errno.ENODEV, _dev_no_group, "the device has no IOMMU", "iommu.c:iommu_paging_domain_alloc_flags"),
        Clause(-errno.ENOSPC, lambda k, a, hw: _smmu_no_asid(k),
               "every ASID is in use (arm_smmu_domain_finalise_s1 allocates the domain's ASID)",
               "arm-smmu-v3.c:arm_smmu_domain_finalise -> arm_smmu_asid_xa", hw=("smmuv3",)),
    ),
    "the device has an IOMMU (and, on SMMUv3, an ASID is free); VT-d allocates its DID at attach",
    "a new UNMANAGED paging domain, or ERR_PTR(-errno)",
    kind="pointer", ok="a new paging domain", on_success=_alloc_ok, show=show_domain,
)



def _nest_parent_ok(k: Kernel, a: Args, r: Any, after: Kernel) -> str | None:
    bad = _alloc_ok(k, a, r, after)
    if bad is None and not after.domains[r].nest_parent:
        return f"{show_domain(r)}, but the contract says a nesting parent: {show_domain(r)} is not one"
    return bad


NEST_PARENT_ALLOC = Contract(
    "iommu_nest_parent_alloc",
    "drivers/iommu/iommufd/hw_pagetable.c:iommufd_hwpt_paging_alloc (IOMMU_HWPT_ALLOC_NEST_PARENT) "
    "-> ops->domain_alloc_paging_flags",
    (
        Clause(-errno.ENODEV, _dev_no_group, "the device has no IOMMU", "iommu.c:iommu_paging_domain_alloc_flags"),
    ),
    "the device has an IOMMU (VT-d: a second-stage domain; SMMUv3: an S2 domain with a VMID, "
    "of which the model's 2^16 - 1 never run out)",
    "a new UNMANAGED paging domain with nest_parent set, or ERR_PTR(-errno)",
    kind="pointer", ok="a new nesting parent", on_success=_nest_parent_ok, show=show_domain,
)


def _not_my_parent(k: Kernel, a: Args, hw: str) -> bool:
    par = _domain(k, a[0])
    return par is None or not par.nest_parent or par.owner != k.driver.name


def _nested_ok(k: Kernel, a: Args, r: Any, after: Kernel) -> str | None:
    if r in k.domains:
        return f"{show_domain(r)}, but the contract says a new nested domain: {show_domain(r)} existed before the call"
    d = after.domains.get(r)
    if d is None or d.type is not DomainType.NESTED or d.parent != a[0]:
        return (f"{r}, but the contract says a new NESTED domain on {show_domain(a[0])}: "
                f"{r} is not one after the call")
    return None


DOMAIN_ALLOC_NESTED = Contract(
    "iommu_domain_alloc_nested",
    "drivers/iommu/iommufd/hw_pagetable.c:iommufd_hwpt_nested_alloc -> ops->domain_alloc_nested",
    (
        Clause(-errno.ENODEV, _dom_dev_no_group, "the device has no IOMMU", "iommufd: the device's ops"),
        Clause(-errno.EINVAL, _not_my_parent,
               "the parent is not a nesting parent of this driver",
               "iommufd_hwpt_nested_alloc: !parent->nest_parent || parent->domain.owner != ops"),
        Clause(-errno.EOPNOTSUPP, lambda k, a, hw: True,
               "the driver has no domain_alloc_nested op", "iommufd_hwpt_nested_alloc",
               hw=("mock",)),
    ),
    "the parent is a live nesting parent of the device's driver",
    "a new NESTED domain on the parent (the guest's stage-1 table), or ERR_PTR(-errno)",
    kind="pointer", ok="a new nested domain", on_success=_nested_ok, show=show_domain,
)


# -- maps -----------------------------------------------------------------------------------------
MAP = "iommu.c:iommu_map -> __iommu_map; io-pgtable (model's reading: not in the fact sheet)"


def _map_dom(k: Kernel, d: Any) -> bool:
    dom = _domain(k, d)
    return dom is None or not dom.type.is_paging or dom.pgtable is None


def _mapped(k: Kernel, d: Any, iova: int) -> bool:
    dom = _domain(k, d)
    return dom is not None and dom.pgtable is not None and k.mem.walk(dom.pgtable, iova >> PAGE_SHIFT) is not None


def _unaligned(a: Args) -> bool:
    return bool((a[1] | a[2]) & (PAGE_SIZE - 1))


IOMMU_MAP = Contract(
    "iommu_map",
    "drivers/iommu/iommu.c:iommu_map",
    (
        Clause(-errno.EINVAL, lambda k, a, hw: _map_dom(k, a[0]), "the domain is not a live paging domain", MAP),
        Clause(-errno.EINVAL, lambda k, a, hw: _unaligned(a),
               "iova or pa is not aligned to the smallest page size", MAP),
        Clause(-errno.EEXIST, lambda k, a, hw: _mapped(k, a[0], a[1]),
               "the IOVA is already mapped (io-pgtable refuses to overwrite)", MAP),
    ),
    "a paging domain, aligned addresses, an unmapped IOVA",
    "0; the page is mapped and iotlb_sync_map ran",
)

def _in_block(k: Kernel, d: Any, iova: int) -> bool:
    """The IOVA lies in a 2 MiB leaf of the domain's table (bound superpages)."""
    dom = _domain(k, d)
    return (dom is not None and dom.pgtable is not None
            and k.mem.block_at(dom.pgtable, iova >> PAGE_SHIFT) is not None)


UNMAP_BLOCK_PT = "generic_pt/iommu_pt.h:__unmap_range (VT-d, mock)"
UNMAP_BLOCK_ARM = "io-pgtable-arm.c:__arm_lpae_unmap"

#: an unmap smaller than the 2 MiB leaf it meets (bound superpages), in the drivers' words
_BLOCK_CLAUSES = (
    Clause(SZ_2M, lambda k, a, hw: _in_block(k, a[0], a[1]) and not a[1] & (SZ_2M - 1),
           "the IOVA is the base of a 2 MiB leaf: the whole leaf is cleared (more than asked)",
           UNMAP_BLOCK_PT, hw=("vtd", "mock")),
    Clause(0, lambda k, a, hw: _in_block(k, a[0], a[1]),
           "the IOVA lies inside a 2 MiB leaf, not at its base: the walk refuses it (nothing "
           "is unmapped)", UNMAP_BLOCK_PT, hw=("vtd", "mock")),
    Clause(0, lambda k, a, hw: _in_block(k, a[0], a[1]),
           "the unmap is smaller than the 2 MiB block it meets: WARN_ONCE \"Unmap of a partial "
           "large IOPTE is not allowed\", nothing is unmapped", UNMAP_BLOCK_ARM, hw=("smmuv3",)),
)

IOMMU_UNMAP = Contract(
    "iommu_unmap",
    "drivers/iommu/iommu.c:iommu_unmap",
    (
        Clause(0, lambda k, a, hw: _map_dom(k, a[0]), "the domain is not a live paging domain",
               "iommu.c:__iommu_unmap"),
        Clause(0, lambda k, a, hw: not _mapped(k, a[0], a[1]), "nothing is mapped at the IOVA",
               "iommu.c:__iommu_unmap"),
        *_BLOCK_CLAUSES,
    ),
    "the IOVA is mapped in a paging domain",
    "the bytes unmapped (one page), after the driver's IOTLB/ATC flush",
    kind="bytes", ok=f"{PAGE_SIZE} bytes",
)


def _range_mapped(k: Kernel, a: Args) -> bool:
    return any(_mapped(k, a[0], a[1] + i * PAGE_SIZE) for i in range(a[3]))


IOMMU_MAP_RANGE = Contract(
    "iommu_map_range",
    "drivers/iommu/iommu.c:iommu_map (size = pages * 4 KiB)",
    (
        Clause(-errno.EINVAL, lambda k, a, hw: _map_dom(k, a[0]), "the domain is not a live paging domain", MAP),
        Clause(-errno.EINVAL, lambda k, a, hw: _unaligned(a),
               "iova or pa is not aligned to the smallest page size", MAP),
        Clause(-errno.EEXIST, lambda k, a, hw: _range_mapped(k, a),
               "a page of the range is already mapped (nothing is mapped)", MAP),
    ),
    "a paging domain, aligned addresses, an unmapped range",
    "0; every page is mapped and iotlb_sync_map ran",
)

IOMMU_UNMAP_RANGE = Contract(
    "iommu_unmap_range",
    "drivers/iommu/iommu.c:iommu_unmap (size = pages * 4 KiB)",
    (
        Clause(0, lambda k, a, hw: _map_dom(k, a[0]), "the domain is not a live paging domain",
               "iommu.c:__iommu_unmap"),
        Clause(0, lambda k, a, hw: not _mapped(k, a[0], a[1]), "nothing is mapped at the IOVA",
               "iommu.c:__iommu_unmap"),
        *_BLOCK_CLAUSES,
    ),
    "every page of the range is mapped in a paging domain",
    "the bytes unmapped (up to the first hole), after one iotlb_sync over the gather",
    kind="bytes", ok="pages * 4096 bytes", pages_arg=2,
)


def _nothing_at_2m(k: Kernel, a: Args) -> bool:
    dom = _domain(k, a[0])
    return (dom is None or dom.pgtable is None or (k.mem.leaf_table(dom.pgtable, 0) is None
                                                   and k.mem.block_at(dom.pgtable, 0) is None))


IOMMU_UNMAP_2M = Contract(
    "iommu_unmap_2m",
    "drivers/iommu/iommu.c:iommu_unmap(domain, 0, SZ_2M) -> iommu_pgsize picks SZ_2M",
    (
        Clause(0, lambda k, a, hw: _map_dom(k, a[0]), "the domain is not a live paging domain",
               "iommu.c:__iommu_unmap"),
        Clause(0, lambda k, a, hw: _nothing_at_2m(k, a), "neither a table entry nor a 2 MiB leaf "
               "covers the 2 MiB (nothing was mapped there since its table was last freed)",
               "iommu.c:__iommu_unmap"),
    ),
    "the domain's page table has a leaf table or a 2 MiB leaf for the 2 MiB at IOVA 0",
    "2 MiB: every PTE under the table entry is gone and the leaf table page freed, or the "
    "2 MiB leaf is gone, after the driver's flush",
    kind="bytes", ok=f"{SZ_2M} bytes", size=SZ_2M,
)


def _region_mapped(k: Kernel, a: Args) -> bool:
    dom = _domain(k, a[0])
    return (dom is not None and dom.pgtable is not None
            and (k.mem.block_at(dom.pgtable, 0) is not None
                 or bool(k.mem.region_leaves(dom.pgtable, 0))))


def _map_2m_ok(before: Kernel, args: Args, result: Any, after: Kernel) -> str | None:
    dom = _domain(after, args[0])
    assert dom is not None and dom.pgtable is not None
    block = after.mem.block_at(dom.pgtable, 0)
    if dom.pgsize_bitmap & SZ_2M:
        if block is None or block.pfn != args[1] >> PAGE_SHIFT:
            return (f"the domain's pgsize_bitmap {dom.pgsize_bitmap:#x} has SZ_2M but IOVA 0 is "
                    f"not one 2 MiB leaf to pa {args[1]:#x} after the map")
    elif block is not None:
        return f"a 2 MiB leaf in a domain whose pgsize_bitmap {dom.pgsize_bitmap:#x} lacks SZ_2M"
    return None


IOMMU_MAP_2M = Contract(
    "iommu_map_2m",
    "drivers/iommu/iommu.c:iommu_map(domain, 0, pa, SZ_2M) -> iommu_pgsize",
    (
        Clause(-errno.EINVAL, lambda k, a, hw: _map_dom(k, a[0]), "the domain is not a live paging domain", MAP),
        Clause(-errno.EEXIST, lambda k, a, hw: _region_mapped(k, a),
               "a page of the 2 MiB is already mapped (nothing is mapped)", MAP),
    ),
    "a paging domain, a 2 MiB-aligned pa, nothing mapped in the 2 MiB",
    "0; the 2 MiB is mapped (one 2 MiB leaf where the domain's pgsize_bitmap has SZ_2M) and "
    "iotlb_sync_map ran",
    on_success=_map_2m_ok,
)


def _not_on_default(k: Kernel, a: Args, hw: str) -> bool:
    g = _group(k, a[0])
    return g is None or g.default_domain is None or g.domain != g.default_domain


def _default_args(k: Kernel, a: Args) -> Args:
    g = _group(k, a[0])
    return (None if g is None else g.default_domain, *a[1:])


DMA_MAP_PAGE = Contract(
    "dma_map_page",
    "kernel/dma/mapping.c:dma_map_page_attrs -> drivers/iommu/dma-iommu.c:iommu_dma_map_page "
    "(the model returns an errno where the kernel returns DMA_MAPPING_ERROR)",
    (
        Clause(-errno.EINVAL, _not_on_default,
               "the device has no group, or its RID is not on its default DMA domain", "model: dma-iommu"),
        Clause(-errno.EINVAL, lambda k, a, hw: _unaligned(a), "iova or pa is not page aligned", MAP),
        Clause(-errno.EEXIST, lambda k, a, hw: _mapped(k, _default_args(k, a)[0], a[1]),
               "the IOVA is already mapped in the default domain", MAP),
    ),
    "the device's RID is on its default domain and the IOVA is free there",
    "0",
)

DMA_UNMAP_PAGE = Contract(
    "dma_unmap_page",
    "drivers/iommu/dma-iommu.c:iommu_dma_unmap_page",
    (
        Clause(0, lambda k, a, hw: (g := _group(k, a[0])) is None or g.default_domain is None,
               "the device has no default domain", "model: dma-iommu"),
        Clause(0, lambda k, a, hw: not _mapped(k, _default_args(k, a)[0], a[1]),
               "nothing is mapped at the IOVA of the default domain", "iommu.c:__iommu_unmap"),
    ),
    "the IOVA is mapped in the device's default domain",
    "the bytes unmapped (one page)",
    kind="bytes", ok=f"{PAGE_SIZE} bytes",
)


# -- events ------------------------------------------------------------------------------------------
def _exited(k: Kernel, a: Args, hw: str) -> bool:
    return _mm_dead(k, a[0])


CPU_MAP = Contract(
    "cpu_map",
    "mm/mmap.c (a process mapping memory; model event)",
    (Clause(-errno.EFAULT, _exited, "the process has exited: it has no address space", "model event"),),
    "the process is live", "0; the page is in its page table (a mapping over a live one zaps it first)",
)

CPU_MUNMAP = Contract(
    "cpu_munmap",
    "mm/mmap.c: munmap with mmu_notifier invalidate_secondary_tlbs (model event)",
    (Clause(-errno.EFAULT, _exited, "the process has exited: it has no address space", "model event"),),
    "the process is live", "0; the page is gone and every secondary TLB was told",
)

CPU_MUNMAP_RANGE = Contract(
    "cpu_munmap_range",
    "mm/mmap.c: munmap of several pages, one mmu_notifier call over the cleared range (model event)",
    (Clause(-errno.EFAULT, _exited, "the process has exited: it has no address space", "model event"),),
    "the process is live", "0; the pages are gone and every secondary TLB was told of the range",
)


CPU_MUNMAP_2M = Contract(
    "cpu_munmap_2m",
    "mm/mmap.c: munmap of a whole 2 MiB; free_pgtables frees the leaf table page after the "
    "mmu_gather flush (model event)",
    (Clause(-errno.EFAULT, _exited, "the process has exited: it has no address space", "model event"),),
    "the process is live", "0; the pages and their table page are gone and every secondary "
    "TLB was told first",
)


def _sva_in_use(k: Kernel, a: Args, hw: str) -> bool:
    for d in k.domains.values():
        if d.type is not DomainType.SVA:
            continue
        if any(g.domain == d.id or any(e.domain == d.id for _, e in g.pasid_array) for g in k.groups.values()):
            return True
    return False


MODULE_UNLOAD = Contract(
    "module_unload",
    "kernel/module/main.c:delete_module (-EBUSY while the module is in use); model event",
    (
        Clause(-errno.ENOENT, lambda k, a, hw: not k.module_loaded, "the module is not loaded", "model event"),
        Clause(-errno.EBUSY, _sva_in_use,
               "an SVA domain of the driver is attached somewhere (the bound device pins the module)",
               "module refcount (model's reading)"),
    ),
    "the module is loaded and no SVA domain of it is attached",
    "0; mmu_notifier_synchronize() ran first (unless the design omits it)",
)


RESET_PREPARE = Contract(
    "pci_dev_reset_iommu_prepare",
    "drivers/iommu/iommu.c:pci_dev_reset_iommu_prepare (v7.0; model/core/reset.py)",
    (
        Clause(SUCCESS, lambda k, a, hw: _group(k, a[0]) is None or not k.devices[a[0]].ats,
               "no IOMMU group, or no ATS capability: nothing to quiesce", RESET),
    ),
    "the blocking domain's attach_dev succeeds on the RID (it cannot fail in these drivers)",
    "0; the RID and every PASID of the device are on the blocking domain, the core's record kept",
)


PROBE_DEVICE = Contract(
    "iommu_probe_device",
    "drivers/iommu/iommu.c:iommu_probe_device / __iommu_probe_device (model/core/reset.py)",
    (
        Clause(SUCCESS, lambda k, a, hw: _group(k, a[0]) is not None,
               "the device is in a group already: nothing to do",
               "iommu.c:__iommu_probe_device"),
    ),
    "probe_device and the default domain's allocation succeed (no fault point on this path)",
    "0; the device in its group, on a fresh default domain if the group is new",
)


CONTRACTS: dict[str, Contract] = {c.call: c for c in (
    RESET_PREPARE, PROBE_DEVICE,
    PAGING_DOMAIN_ALLOC, NEST_PARENT_ALLOC, DOMAIN_ALLOC_NESTED, ATTACH_DEVICE, USE_DEFAULT_DOMAIN, CLAIM_DMA_OWNER, ALLOC_GLOBAL_PASID,
    ATTACH_DEVICE_PASID, REPLACE_DEVICE_PASID, AUX_ATTACH_DEVICE, BIND, IOMMU_MAP, IOMMU_UNMAP,
    DMA_MAP_PAGE, DMA_UNMAP_PAGE, CPU_MAP, CPU_MUNMAP, MODULE_UNLOAD,
    IOMMU_MAP_RANGE, IOMMU_UNMAP_RANGE, CPU_MUNMAP_RANGE, IOMMU_UNMAP_2M, CPU_MUNMAP_2M,
    IOMMU_MAP_2M,
)}

#: call actions that return void in the kernel (their result must be None)
VOID_CALLS: dict[str, str] = {
    "iommu_domain_free": "void",
    "iommu_detach_device": "void: a wrong domain or group WARNs and changes nothing",
    "iommu_device_unuse_default_domain": "void: WARN (no change) while PASIDs are attached",
    "iommu_device_release_dma_owner": "void: WARN (no change) while PASIDs are attached",
    "iommu_free_global_pasid": "void: WARN on IOMMU_PASID_INVALID",
    "iommu_detach_device_pasid": "void: must not fail (the blocked domain's set_dev_pasid)",
    "iommu_aux_detach_device": "void",
    "iommu_sva_unbind_device": "void: drops one reference; the last one detaches",
    "pci_dev_reset_iommu_done": "void: a failed re-attach WARNs",
    "iommu_release_device": "void: the last device of an owned group WARNs",
    "iommu_flush_iotlb_all": "void: ops->flush_iotlb_all",
}


# -- judging a result ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Expected:
    """What the contract says for one call: the deciding clause (None: plain success)
    and the inexact clauses that also allow their outcome."""

    clause: Clause | None
    also: tuple[Clause, ...] = ()


def expected(c: Contract, k: Kernel, args: Args) -> Expected:
    also: list[Clause] = []
    for cl in c.clauses:
        if cl.holds(k, args, k.hw):
            if not cl.exact:
                also.append(cl)
                continue
            return Expected(cl, tuple(also))
    return Expected(None, tuple(also))


def _is_success(c: Contract, r: Any, args: Args = ()) -> bool:
    if c.kind == "errno":
        return bool(r == 0)
    if c.kind == "pointer":
        return isinstance(r, int) and not isinstance(r, bool)
    if c.kind == "pasid":
        return isinstance(r, int) and r != IOMMU_PASID_INVALID
    if c.pages_arg is not None:
        return bool(r == args[c.pages_arg] * PAGE_SIZE)
    return bool(r == c.size)


def _matches(c: Contract, cl: Clause, k: Kernel, args: Args, r: Any) -> bool:
    if cl.result == SUCCESS:
        return _is_success(c, r, args)
    if cl.result == SAME_HANDLE:
        return bool(r == existing_sva_handle(k, args[0], args[1]))
    if c.kind == "pointer":
        return isinstance(r, ErrPtr) and r.err == cl.result
    return bool(r == cl.result)


def _errname(e: int) -> str:
    """errname, with the kernel's spelling where Python's errno module differs."""
    if e == -EPROBE_DEFER:
        return "-EPROBE_DEFER"
    if e == -errno.EOPNOTSUPP:
        return "-EOPNOTSUPP"  # Python names 95 ENOTSUP
    return errname(e)


def show_outcome(c: Contract, cl: Clause | None, k: Kernel | None = None, args: Args = ()) -> str:
    if cl is None or cl.result == SUCCESS:
        return c.ok
    if cl.result == SAME_HANDLE:
        h = existing_sva_handle(k, args[0], args[1]) if k is not None else None
        return "the existing handle" + (f" sva{h}" if h is not None else "")
    assert isinstance(cl.result, int)
    if c.kind == "pointer":
        return f"ERR_PTR({_errname(cl.result)})"
    if c.kind == "pasid":
        return "IOMMU_PASID_INVALID"
    if c.kind == "bytes":
        return f"{cl.result} bytes"
    return _errname(cl.result)


def _show_result(c: Contract, r: Any) -> str:
    if isinstance(r, ErrPtr):
        return repr(r)
    if c.kind == "errno" and isinstance(r, int):
        return _errname(r)
    if c.kind == "pasid" and r == IOMMU_PASID_INVALID:
        return "IOMMU_PASID_INVALID"
    if c.kind == "pointer" and isinstance(r, int):
        return c.show(r)
    return str(r)


def _failure_errno(c: Contract, r: Any) -> int | None:
    if isinstance(r, ErrPtr):
        return r.err
    if c.kind == "errno" and isinstance(r, int) and r < 0:
        return r
    return None


def judge(c: Contract, before: Kernel, args: Args, result: Any, after: Kernel | None = None,
          injected: Iterable[int] = ()) -> str | None:
    """Why `result` breaks the contract (None: it keeps it). `injected`: the errnos of
    failures injected during the call (they, and -ENOMEM, are then also allowed)."""
    exp = expected(c, before, args)
    ok = _matches(c, exp.clause, before, args, result) if exp.clause is not None else _is_success(c, result, args)
    fresh = exp.clause is None or exp.clause.result == SUCCESS  # not the existing handle
    if ok and fresh and c.on_success is not None and after is not None:
        complaint = c.on_success(before, args, result, after)
        if complaint is not None:
            return complaint
    if ok:
        return None
    if any(_matches(c, cl, before, args, result) for cl in exp.also):
        return None
    inj = set(injected)
    err = _failure_errno(c, result)
    if inj and err is not None and (err == -errno.ENOMEM or err in inj):
        return None
    if inj and any(_matches(c, cl, before, args, result) for cl in c.clauses if cl.holds(before, args, before.hw)):
        return None
    want = show_outcome(c, exp.clause, before, args)
    alts = [show_outcome(c, cl, before, args) for cl in exp.also]
    said = " or ".join([want, *alts])
    if exp.clause is None or exp.clause.result == SUCCESS:
        why = exp.clause.text if exp.clause is not None else (
            c.facts(before, args) if c.facts is not None else f"none of its failure conditions holds ({c.success})")
    else:
        why = exp.clause.text
    if err == -errno.ENOMEM:
        why += "; -ENOMEM is allowed only when a failure was injected"
    return f"{_show_result(c, result)}, but the contract says {said}: {why}"


def injected_errnos(step: Step) -> tuple[int, ...]:
    """The failures injected during the step: the one-shot hooks it consumed, and new
    entries of the fault-injection history (`injected_at`)."""
    b, a = step.before, step.after
    out = [e for op, e in b.injected.items() if a.injected.get(op) != e]
    new = list(getattr(a, "injected_at", []))[len(getattr(b, "injected_at", [])):]
    if new:
        out.append(-errno.ENOMEM)
    for site in new:
        out += [e for prefix, e in INJECTED_ERRNOS if str(site).startswith(prefix)]
    return tuple(out)


#: Fault points whose error path turns the -ENOMEM into another errno, as the kernel
#: does: intel_pasid_setup_first_level returns -ENODEV when intel_pasid_get_entry
#: cannot allocate the leaf table.
INJECTED_ERRNOS: tuple[tuple[str, int], ...] = (
    ("intel_pasid_get_entry", -errno.ENODEV),
)


def check_call(action: Action, before: Kernel, args: Args, result: Any, after: Kernel,
               injected: Iterable[int] = ()) -> str | None:
    """The message for a call whose result breaks its contract (None: it keeps it)."""
    c = CONTRACTS.get(action.name)
    if c is None:
        if action.name in VOID_CALLS and result is not None:
            return (f"{show_call(before, action, args, result)}: the call is void in the kernel "
                    f"({VOID_CALLS[action.name]}), yet it returned {result!r}")
        return None
    why = judge(c, before, args, result, after, injected)
    if why is None:
        return None
    head = show_call(before, action, args, None)
    return f"{head} -> {why}"


def _check_errno_contract(step: Step, b: Bounds) -> Violation | None:
    msg = check_call(step.action, step.before, step.args, step.result, step.after, injected_errnos(step))
    return None if msg is None else Violation("errno-contract", msg)


ERRNO_CONTRACT = Invariant(
    "errno-contract",
    "Every call returns what its contract (kernel-doc and source, in kernel check order) "
    "says for the state it ran in: the errno of the first failing check, success when no "
    "check fails, and -ENOMEM only when a failure was injected.",
    "Callers act on errnos: -EINVAL is a soft failure iommufd retries with another domain, "
    "-EBUSY means 'occupied', -ENODEV 'no IOMMU', and iommu_sva_bind_device on a bound "
    "(dev, mm) must hand back the same handle. A model (or a design) that fails where the "
    "kernel succeeds, succeeds where it refuses, or picks another errno describes a "
    "different API. The contracts are rendered per call in docs/contracts.md.",
    (), Layer.API, check_step=_check_errno_contract,
)


# -- rendering ------------------------------------------------------------------------------------------
_HW_NAMES = {"vtd": "VT-d", "smmuv3": "SMMUv3", "mock": "mock"}


def _clause_line(c: Contract, cl: Clause) -> str:
    notes = []
    if cl.hw:
        notes.append(" and ".join(_HW_NAMES.get(h, h) for h in cl.hw) + " driver")
    if cl.design:
        notes.append(f"design: {cl.design}")
    if not cl.exact:
        notes.append("allowed, not required")
    note = f" ({'; '.join(notes)})" if notes else ""
    what = show_outcome(c, cl) if cl.result not in (SUCCESS,) else f"success ({c.ok})"
    return f"`{what}` when {cl.text}{note}. Source: {cl.source}."


def render_contract(c: Contract) -> list[str]:
    lines = [f"## `{c.call}`", "", f"Kernel-doc and source: {c.kernel_doc}.", "",
             "Outcomes, in kernel check order (the first that holds decides):", ""]
    lines += [f"{i}. {_clause_line(c, cl)}" for i, cl in enumerate(c.clauses, 1)]
    lines += ["", f"Success: {c.success}.", "", f"Returns: {c.returns}.", ""]
    return lines


def render_contracts_markdown() -> str:
    out = ["# Errno contracts", "",
           "Generated by `iommucheck docs` from `invariants/contracts.py`. Do not edit: regenerate.",
           "Each call of the action table that returns a value declares, in the kernel's check "
           "order, when it fails and with which errno; the invariant `errno-contract` checks "
           "every step against it. The first outcome whose condition holds (in the state before "
           "the call) is the one the call must give; when none holds it must succeed. -ENOMEM "
           "is allowed only when a failure was injected during the call.", ""]
    for a in ACTIONS:
        c = CONTRACTS.get(a.name)
        if c is not None:
            out += render_contract(c)
    out += ["## Void calls", "", "These return nothing; the contract is that they return nothing.", ""]
    out += [f"- `{name}`: {why}." for name, why in VOID_CALLS.items()]
    return "\n".join(out).rstrip() + "\n"


def render_contracts_text(call: str | None = None) -> str:
    """`iommucheck contracts [CALL]`: the markdown of one contract, or of all."""
    if call is None:
        return render_contracts_markdown()
    c = CONTRACTS.get(call)
    if c is None:
        raise KeyError(call)
    return "\n".join(render_contract(c)).rstrip() + "\n"


assert set(CONTRACTS) <= set(ACTIONS_BY_NAME), set(CONTRACTS) - set(ACTIONS_BY_NAME)
