"""The Arm SMMUv3 driver (drivers/iommu/arm/arm-smmu-v3), programming `hwspec.smmuv3`.

Call by call (hw-tables.md B.4-B.9, v6.11+ / v7.0 code):

* probe: a linear CD table per master (2^ssid_bits CDs) and an abort STE.
* ASIDs from one allocator (`arm_smmu_asid_xa`, 1 .. 2^asid_bits - 1), one per S1
  domain (paging or SVA), shared by every master and SSID it is attached to.
* RID attach (`arm_smmu_attach_dev`): master_domain added to the new domain's list
  first (so its invalidations reach this master), CD0 then the cdtable STE written
  through the hitless writer, ATC handled by `attach_commit`, old master_domain
  removed last. Blocked / identity on the RID: abort / bypass STE, or a cdtable STE
  with S1DSS=TERMINATE / BYPASS while PASIDs are in use.
* PASID attach (`arm_smmu_set_pasid`): CD(ssid) with the domain's ASID, the STE
  kept a cdtable STE with S1DSS from the RID domain. PASID detach (the blocked
  domain's set_dev_pasid): zero CD, ATC_INV(ssid), drop the master_domain. No TLBI:
  the ASID still belongs to the live old domain (B.8).
* unmap: TLBI_NH_VA by ASID, then ATC_INV for every (master, ssid) on the domain.
  Domain free: TLBI_NH_ASID, then the ASID is released.
* SVA: the domain has its own ASID (v6.11+); mm release writes the EPD0 "released"
  CD, TLBI by ASID and ATC_INV.

The pre-v6.11 SVA scheme (design knob "smmu.sva_cpu_asid") is modelled for seed
000: the SVA CD uses the process's CPU ASID, pinned while a domain uses it and
handed back at free, so the driver must invalidate that ASID at PASID detach, for
which it needs the old domain.

Nesting (bound nesting; arm-smmu-v3-iommufd.c, v6.13+): a nesting parent is an S2
domain with its own VMID (`arm_smmu_domain_finalise_s2`: ida 1 .. 2^16 - 1; the vSMMU
takes the parent's VMID), attached to a RID with an S2 STE. A nested domain stands for
the guest's vSTE: a guest CD table (in memory the guest owns; CD0 with GUEST_ASID and
the guest's stage-1 table), S1CDMAX 0, EATS=TRANS. Its attach writes the nested STE
(the parent's S2 half, the guest's S1 half; -EBUSY while PASIDs are in use), and the
master goes on the parent's invalidation list. A change to the parent
(`arm_smmu_tlb_inv_range_domain`, nest_parent) is TLBI_S2_IPA(vmid) + SYNC, then
TLBI_NH_ALL(vmid) + SYNC (the combined entries are tagged by the guest's VA), then the
ATCs: a full ATC_INV (SSV=0) for every nested master with ATS (nested_ats_flush, "we
have no option but to completely flush the ATC"), a range one for masters attached
directly. Free of the parent: TLBI_S12_VMALL(vmid), then the VMID goes. Assumed:
the vDEVICE iommufd requires before a translating nested domain attaches (v6.15+,
-ENOENT without), 16-bit VMIDs.

Not modelled: two-level tables, stalls / PRI, BTM, multiple SMMU instances, the
v7.1-queued per-domain invalidation arrays, the vIOMMU object and per-vSMMU VMIDs
(not mainline), guest invalidations (`arm_vsmmu_cache_invalidate`) and guest changes
of its CD table or stage 1, nested PASIDs (the guest's SSIDs).
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hwspec import smmuv3 as hw
from hwspec.memory import PAGE_SHIFT, PAGE_SIZE, SZ_1G, SZ_2M, SZ_4K, TABLE_SPAN_SHIFT
from hwspec.outcome import Access, Outcome
from hwspec.smmuv3 import CD, CD_WRITER, STE, STE_WRITER, Cfg, S1Dss

from model.core.base import BLOCKED_DOMAIN_ID
from model.drivers.base import ULONG_MAX, Driver
from model.state import Declared, Role, StateField
from model.objects import IOMMU_NO_PASID, Device, Domain, DomainType

if TYPE_CHECKING:
    from model.core import Kernel

#: arm-smmu-v3.h: the most single TLBI commands the SVA notifier issues before it
#: invalidates the whole ASID instead (without range invalidation; d5afb4b47e13)
CMDQ_MAX_TLBI_OPS = 1 << (PAGE_SHIFT - 3)

CD_SIZE = 64
CTXDESC_LINEAR_CDMAX = 10
#: VMIDs come from smmu->vmid_map, 1 .. 2^vmid_bits - 1 (VMID 0 tags stage-1-only streams)
VMID_BITS = 16
#: the ASID the guest's CD0 carries (the guest's own ASID space; tagged by the VMID)
GUEST_ASID = 1
#: the VTCR the S2 STE carries: the 4 KiB granule, 48-bit IPA, inner-shareable
#: write-back walks (io-pgtable's arm_lpae_s2_cfg for a 4-level table; the model's
#: walk reads none of it)
S2_VTCR = hw.make_vtcr(tsz=16, sl=2, irgn=1, orgn=1, sh=3, tg=0, ps=5)


@dataclass(frozen=True)
class Master:
    """struct arm_smmu_master, the parts the model needs."""

    cd_table: int  # physical address of the linear CD table
    s1cdmax: int  # log2(number of CDs) = ssid_bits
    rid_domain: int | None = None
    ats_enabled: bool = False


def _canon_unit(st: "SmmuState", u: hw.SmmuUnit, ren: Any) -> Any:
    pfn = ren.pfn
    return (
        u.strtab_base, u.sid_bits,
        frozenset([(e.sid, e.words) for e in u.ste_cache]),
        frozenset([(e.sid, e.ssid, _canon_cd(e.words, ren)) for e in u.cd_cache]),
        frozenset([(e.vmid, e.asid, e.iova_pfn, pfn(e.pfn), e.prot, e.ipa_pfn, e.block)
                   for e in u.tlb]),
        frozenset([(e.sid, e.ssid, e.iova_pfn, pfn(e.pfn), e.prot) for e in u.atc]),
        # leaf table pages are not renamed (Kernel.canonical_key): only their roots
        frozenset([(e.vmid, e.asid, e.region, e.table, ren.root(e.root)) for e in u.walk]),
    )


# Every live domain and mm is labelled by now (Kernel.canonical_key); a stale id that
# is not gets a fresh label in dict order: sound, merely less canonical.
def _canon_by_domain(st: "SmmuState", v: dict[int, Any], ren: Any) -> Any:
    return tuple(sorted([(ren.dom(d), x) for d, x in v.items() if not (isinstance(x, tuple) and not x)]))


def _canon_by_mm(st: "SmmuState", v: dict[int, int], ren: Any) -> Any:
    return tuple(sorted([(ren.mm(m), a) for m, a in v.items()]))


def _canon_masters(st: "SmmuState", v: dict[str, "Master"], ren: Any) -> Any:
    return tuple([(n, m.cd_table, m.s1cdmax, None if m.rid_domain is None else ren.dom(m.rid_domain),
                   m.ats_enabled) for n, m in sorted(v.items())])


def _canon_pasid_domains(st: "SmmuState", v: dict[tuple[str, int], int], ren: Any) -> Any:
    return tuple([(dp, ren.dom(d)) for dp, d in sorted(v.items())])


class SmmuState(Declared):
    STATE = (
        StateField("unit", Role.OBJECT, "the SMMU: stream table base, caches, command log",
                   canon=_canon_unit),
        StateField("asid_bits", Role.FIXED, "the ASID space is 1 .. 2^asid_bits - 1"),
        StateField("asids", Role.MAP, "domain -> ASID (arm_smmu_asid_xa)", canon=_canon_by_domain),
        StateField("cpu_asids", Role.MAP, "mm -> pinned CPU ASID (pre-v6.11 SVA scheme)",
                   canon=_canon_by_mm),
        StateField("master_domains", Role.MAP, "domain -> (dev, ssid) master_domain list",
                   canon=_canon_by_domain),
        StateField("masters", Role.MAP, "device -> arm_smmu_master", canon=_canon_masters),
        StateField("pasid_domains", Role.MAP, "(dev, pasid) -> domain: the driver's own record "
                   "(tracked design)", canon=_canon_pasid_domains),
        StateField("vmids", Role.MAP, "S2 (nesting parent) domain -> VMID (smmu->vmid_map)",
                   canon=_canon_by_domain),
        StateField("guest_cd_tables", Role.MAP, "nested domain -> the guest CD table its vSTE "
                   "points at (S1ContextPtr)", canon=_canon_by_domain),
    )

    unit: hw.SmmuUnit
    asid_bits: int
    asids: dict[int, int]
    cpu_asids: dict[int, int]
    master_domains: dict[int, tuple[tuple[str, int], ...]]
    masters: dict[str, Master]
    pasid_domains: dict[tuple[str, int], int]
    vmids: dict[int, int]
    guest_cd_tables: dict[int, int]

    def __init__(self, unit: hw.SmmuUnit, asid_bits: int) -> None:
        self.unit = unit
        self.asid_bits = asid_bits
        self.asids = {}
        self.cpu_asids = {}
        self.master_domains = {}
        self.masters = {}
        self.pasid_domains = {}
        self.vmids = {}
        self.guest_cd_tables = {}

    # -- canonical form (explorer symmetry reduction) ------------------------------------
    def root_pointer_words(self, mem: Any) -> dict[int, tuple[int, int, int]]:
        """Memory words that can hold a page-table root: the TTB0 qword of every CD of
        every master's (linear) CD table and of each guest CD0 -> (mask, lo, shift). (An
        S2 or nested STE's S2TTB is left as it is: renaming it merges no state of nest1.)"""
        out: dict[int, tuple[int, int, int]] = {}
        for m in self.masters.values():
            for ssid in range(1 << m.s1cdmax):
                out[m.cd_table + CD_SIZE * ssid + 8 * _CD_TTB0.word] = _CD_TTB0_FIELD
        for table in self.guest_cd_tables.values():
            out[table + 8 * _CD_TTB0.word] = _CD_TTB0_FIELD
        return out

    def used_asids(self) -> set[int]:
        return set(self.asids.values()) | set(self.cpu_asids.values())

    def ssids_in_use(self, mem: Any, dev: str) -> bool:
        """arm_smmu_ssids_in_use: a valid CD at any SSID other than 0 of the master's table."""
        m = self.masters[dev]
        return any(CD.get(mem.read(m.cd_table + CD_SIZE * ssid, 8), "v")
                   for ssid in range(1, 1 << m.s1cdmax))

    def stage2(self, dom: Domain | None) -> bool:
        """An S2 (nesting parent) or nested domain: its STE carries no host CD table
        (arm_smmu_attach_dev's S2 case, arm_smmu_attach_dev_nested)."""
        return dom is not None and (dom.type is DomainType.NESTED or dom.id in self.vmids)


def _cd_table_pages(ssid_bits: int) -> int:
    """Pages of a linear CD table of 2^ssid_bits CDs (arm_smmu_alloc_cd_tables)."""
    return max(1, -(-((1 << ssid_bits) * CD_SIZE) // 4096))


def _lowest_free(used: set[int], bits: int) -> int | None:
    """The lowest id in 1 .. 2^bits - 1 not in `used` (arm_smmu_asid_xa's xa_alloc and
    smmu->vmid_map's ida_alloc_range both start at 1), or None if all are taken."""
    return next((i for i in range(1, 1 << bits) if i not in used), None)


def _st(k: "Kernel") -> SmmuState:
    s = k.drv
    assert isinstance(s, SmmuState)
    return s


class SmmuV3Driver(Driver):
    name = "smmuv3"
    #: IDR5.GRAN4K: io-pgtable-arm's 4 KiB granule gives SZ_4K | SZ_2M | SZ_1G
    #: (arm_lpae_restrict_pgsizes), the domain takes the cfg's bitmap
    pgsize_bitmap = SZ_4K | SZ_2M | SZ_1G
    #: SMMUv3's IOPF is stall-based (platform devices): its PRI queue is not wired to
    #: the core, arm_smmu_handle_ppr logs "unexpected PRI request" and answers
    #: CMD_PRI_RESP DENY. The model's SMMUv3 devices are PCI: no page request of theirs
    #: reaches IOPF, so the model lets them send none.
    page_requests = False

    def __init__(self, asid_bits: int = 16, range_inv: bool = False) -> None:
        self.asid_bits = asid_bits
        #: ARM_SMMU_FEAT_RANGE_INV (IDR3.RIL): TLBI by VA with TG / SCALE / NUM
        self.range_inv = range_inv

    def new_state(self, k: "Kernel") -> SmmuState:
        return SmmuState(hw.SmmuUnit(k.mem), self.asid_bits)

    # ------------------------------------------------------------------ probe
    def probe_device(self, k: "Kernel", dev: Device) -> None:
        s = _st(k)
        # Linear CD tables only: ssid_bits capped at CTXDESC_LINEAR_CDMAX (B.3).
        ssid_bits = min(max(dev.max_pasids - 1, 0).bit_length(), CTXDESC_LINEAR_CDMAX)
        table = k.mem.alloc_page(_cd_table_pages(ssid_bits))
        s.masters[dev.name] = Master(cd_table=table, s1cdmax=ssid_bits)
        self._write_ste(k, dev, hw.make_abort_ste())

    def release_device(self, k: "Kernel", dev: Device) -> None:
        """arm_smmu_release_device: the STE stays as the release (blocked) domain left it
        (abort); the CD table is freed and the master's streams removed."""
        s = _st(k)
        m = s.masters.get(dev.name)
        if m is None:
            return
        rid = k.domains.get(m.rid_domain) if m.rid_domain is not None else None
        if rid is not None and rid.type is not DomainType.BLOCKED:
            # no release domain was attached (deferred attach): v6.11-6.18 blocked the STE
            # in release_device itself, and so does the model
            self.attach_dev(k, k.domains[BLOCKED_DOMAIN_ID], dev, rid)
        m = s.masters.pop(dev.name)
        k.mem.free_page(m.cd_table, _cd_table_pages(m.s1cdmax))

    # ------------------------------------------------------------------- ASIDs
    def _alloc_asid(self, k: "Kernel") -> int | None:
        return _lowest_free(_st(k).used_asids(), _st(k).asid_bits)

    def asid_of(self, k: "Kernel", dom: Domain) -> int:
        s = _st(k)
        if dom.type is DomainType.SVA and k.design.has("smmu.sva_cpu_asid"):
            assert dom.mm is not None
            return s.cpu_asids[dom.mm]
        got = s.asids.get(dom.id)
        if got is None:
            k.warn("smmu_asid_freed", f"d{dom.id}'s ASID was released already")
            return 0
        return got

    def _alloc_vmid(self, k: "Kernel") -> int | None:
        return _lowest_free(set(_st(k).vmids.values()), VMID_BITS)

    def domain_alloc_paging(self, k: "Kernel", dev: Device, dom: Domain) -> int:
        """arm_smmu_domain_finalise_s1: the domain's ASID. A nesting parent
        (IOMMU_HWPT_ALLOC_NEST_PARENT) is a stage-2 domain instead:
        arm_smmu_domain_finalise_s2 takes a VMID."""
        if dom.nest_parent:
            vmid = self._alloc_vmid(k)
            if vmid is None:
                return -errno.ENOSPC
            _st(k).vmids[dom.id] = vmid
            return 0
        asid = self._alloc_asid(k)
        if asid is None:
            return -errno.ENOSPC
        _st(k).asids[dom.id] = asid
        return 0

    def domain_alloc_sva(self, k: "Kernel", dev: Device, dom: Domain) -> int:
        s = _st(k)
        assert dom.mm is not None
        if k.design.has("smmu.sva_cpu_asid"):
            # arm_smmu_alloc_shared_cd: pin the CPU's ASID for this mm (arm64_mm_context_get).
            if dom.mm not in s.cpu_asids:
                asid = self._alloc_asid(k)
                if asid is None:
                    return -errno.ENOSPC
                s.cpu_asids[dom.mm] = asid
            return 0
        return self.domain_alloc_paging(k, dev, dom)

    #: arm_smmu_nested_ops has attach_dev only: the guest's SSIDs live in its CD table
    nested_has_set_dev_pasid = False

    def domain_alloc_nested(self, k: "Kernel", dev: Device, parent: Domain, dom: Domain) -> int:
        """arm_vsmmu_alloc_domain_nested with the vSTE the guest gave: S1_TRANS over its
        CD table (S1CDMAX 0: CD0 only) with EATS=TRANS (enable_ats). The guest writes
        its CD table itself: no command is issued. The parent must be an S2 domain of
        this SMMU (-EINVAL)."""
        s = _st(k)
        if parent.id not in s.vmids:
            return -errno.EINVAL
        assert dom.pgtable is not None
        table = k.mem.alloc_page(1)
        for i, w in enumerate(hw.make_s1_cd(GUEST_ASID, dom.pgtable)):
            k.mem.write64(table + 8 * i, w)
        s.guest_cd_tables[dom.id] = table
        return 0

    def domain_free(self, k: "Kernel", dom: Domain) -> None:
        """Flush by the ASID before it can be reused, then release it (B.4). An S2 domain:
        free_io_pgtable_ops -> arm_smmu_tlb_inv_context (TLBI_S12_VMALL + the ATCs),
        then the VMID. A nested domain: kfree (the guest's CD table is the guest's)."""
        s = _st(k)
        if dom.type is DomainType.NESTED:
            table = s.guest_cd_tables.pop(dom.id, None)
            if table is not None:
                k.mem.free_page(table, 1)
        elif dom.id in s.vmids:
            s.unit.issue_cmd_with_sync(hw.TLBI_S12_VMALL(vmid=s.vmids[dom.id]))
            self._atc_inv_domain(k, dom, 0, 0)
            del s.vmids[dom.id]
        elif dom.type is DomainType.SVA and k.design.has("smmu.sva_cpu_asid"):
            assert dom.mm is not None
            # Another live SVA domain of the mm keeps the pin; one whose free already ran
            # (its free_notifier waits for SRCU) does not: the pin is refcounted by the
            # domains' free, not by their memory (arm_smmu_free_shared_cd).
            dying = k.dying_domains()
            if not any(d.type is DomainType.SVA and d.mm == dom.mm and d.id != dom.id
                       and d.id not in dying for d in k.domains.values()):
                s.cpu_asids.pop(dom.mm, None)  # arm64_mm_context_put: the CPU may reuse it
        elif dom.id in s.asids:
            asid = s.asids[dom.id]
            s.unit.issue_cmd_with_sync(hw.TLBI_NH_ASID(asid=asid, vmid=0))
            if dom.type.is_paging:
                self._atc_inv_domain(k, dom, 0, 0)
            del s.asids[dom.id]
        s.master_domains.pop(dom.id, None)

    # --------------------------------------------------------- entry writes
    def _write_ste(self, k: "Kernel", dev: Device, target: tuple[int, ...]) -> None:
        """arm_smmu_install_ste_for_dev: the same STE for every stream of the master (a
        PCI DMA alias is a stream of its own: IORT maps each alias's RID)."""
        s = _st(k)
        streams = dev.rids[:1] if k.design.has("smmu.ste_first_stream_only") else dev.rids
        for sid in streams:
            cur = s.unit.read_ste(k.mem, sid)
            result = hw.write_ste(s.unit, k.mem, sid, target)
            self._check_hitless(k, STE_WRITER, cur, target, result, f"STE of {dev.name} (sid {sid:#x})")

    def _write_cd(self, k: "Kernel", dev: Device, ssid: int, target: tuple[int, ...]) -> None:
        s = _st(k)
        addr = s.masters[dev.name].cd_table + CD_SIZE * ssid
        cur = k.mem.read(addr, 8)
        result = hw.write_cd(s.unit, k.mem, addr, list(dev.rids), ssid, target)
        self._check_hitless(k, CD_WRITER, cur, target, result, f"CD {ssid} of {dev.name}")

    def _check_hitless(self, k: "Kernel", writer: Any, cur: tuple[int, ...], target: tuple[int, ...],
                       result: Any, what: str) -> None:
        """Record a torn intermediate (neither old nor new on its used bits, and valid)."""
        for seen in result.observable:
            if seen[0] and hw.is_torn(writer, seen, cur, target):
                k.warn("smmu_torn_entry", f"{what} passed through {seen} between {cur} and {target}")
                return

    def _update_ste(self, k: "Kernel", dev: Device) -> None:
        """arm_smmu_update_ste: nothing to do when the CD table is already in the STE
        with the same ATS setting; otherwise a cdtable STE with S1DSS from the RID domain."""
        cur = _st(k).unit.read_ste(k.mem, dev.sid)
        if (STE.get(cur, "v") and STE.get(cur, "cfg") == Cfg.S1_TRANS
                and bool(STE.get(cur, "eats")) == dev.ats):
            return
        self._write_ste(k, dev, self._cdtable_ste(k, dev, self._rid_s1dss(k, dev)))

    def _used_ssids(self, k: "Kernel", dev: Device) -> bool:
        return _st(k).ssids_in_use(k.mem, dev.name)

    def _cdtable_ste(self, k: "Kernel", dev: Device, s1dss: S1Dss) -> tuple[int, ...]:
        m = _st(k).masters[dev.name]
        return hw.make_cdtable_ste(m.cd_table, m.s1cdmax, s1dss, ats=dev.ats)

    def _rid_s1dss(self, k: "Kernel", dev: Device) -> S1Dss:
        rid = _st(k).masters[dev.name].rid_domain
        dom = k.domains.get(rid) if rid is not None else None
        if dom is None or dom.type is DomainType.BLOCKED:
            return S1Dss.TERMINATE
        if dom.type is DomainType.IDENTITY:
            return S1Dss.BYPASS
        return S1Dss.SSID0

    # ----------------------------------------------------------- ATC / lists
    def _set_master(self, k: "Kernel", dev: Device, **changes: Any) -> None:
        s = _st(k)
        m = s.masters[dev.name]
        s.masters[dev.name] = Master(
            changes.get("cd_table", m.cd_table), changes.get("s1cdmax", m.s1cdmax),
            changes.get("rid_domain", m.rid_domain), changes.get("ats_enabled", m.ats_enabled))

    def _add_master_domain(self, k: "Kernel", dom: Domain, dev: Device, ssid: int) -> None:
        s = _st(k)
        s.master_domains[dom.id] = s.master_domains.get(dom.id, ()) + ((dev.name, ssid),)

    def _remove_master_domain(self, k: "Kernel", dom: Domain | None, dev: Device, ssid: int) -> None:
        if dom is None:
            return
        s = _st(k)
        lst = list(s.master_domains.get(dom.id, ()))
        if (dev.name, ssid) in lst:
            lst.remove((dev.name, ssid))
        s.master_domains[dom.id] = tuple(lst)

    def _atc_inv_master(self, k: "Kernel", dev: Device, ssid: int) -> None:
        """arm_smmu_atc_inv_master: full range for that SSID (SSV=0 for IOMMU_NO_PASID)."""
        cmd = hw.atc_inv_cmd(dev.sid, None if ssid == IOMMU_NO_PASID else ssid, 0, 0)
        _st(k).unit.issue_cmdlist([cmd])

    def _atc_inv_domain(self, k: "Kernel", dom: Domain, iova: int, size: int) -> None:
        """arm_smmu_atc_inv_domain(domain, iova, size): one ATC_INV per ATS master_domain,
        one batch, one sync; size 0 is the whole address space."""
        s = _st(k)
        cmds = []
        for name, ssid in s.master_domains.get(dom.id, ()):
            if not s.masters[name].ats_enabled:
                continue
            cmds.append(hw.atc_inv_cmd(k.devices[name].sid,
                                       None if ssid == IOMMU_NO_PASID else ssid, iova, size))
        # a nesting parent's list holds its nested domains' masters too
        # (to_smmu_domain_devices); nested_ats_flush: the whole ATC, the guest's IOVAs
        # are not the parent's IPAs
        whole = not k.design.has("smmu.nested_atc_by_range")
        for nd in k.nested_on(dom.id) if dom.nest_parent else ():
            for name, ssid in s.master_domains.get(nd, ()):
                if s.masters[name].ats_enabled:
                    cmds.append(hw.atc_inv_cmd(k.devices[name].sid, None, 0 if whole else iova,
                                               0 if whole else size))
        if cmds:
            s.unit.issue_cmdlist(cmds)

    def _commit_ats(self, k: "Kernel", dev: Device, ats_after: bool, ssid: int) -> None:
        """arm_smmu_attach_commit's ATS part."""
        s = _st(k)
        before = s.masters[dev.name].ats_enabled
        if ats_after and not before:
            self._atc_inv_master(k, dev, IOMMU_NO_PASID)  # arm_smmu_enable_ats
        elif ats_after and before:
            self._atc_inv_master(k, dev, ssid)
        elif before and not ats_after:
            self._atc_inv_master(k, dev, IOMMU_NO_PASID)
        self._set_master(k, dev, ats_enabled=ats_after)

    # ------------------------------------------------------------- RID attach
    def attach_dev(self, k: "Kernel", dom: Domain, dev: Device, old: Domain | None) -> int:
        s = _st(k)
        prev = s.masters[dev.name].rid_domain
        prev_dom = k.domains.get(prev) if prev is not None else None
        if dom.type in (DomainType.BLOCKED, DomainType.IDENTITY):
            # arm_smmu_attach_dev_ste
            self._set_master(k, dev, rid_domain=dom.id)
            if self._used_ssids(k, dev) and not (
                    dom.type is DomainType.IDENTITY and k.design.has("smmu.identity_rid_plain_ste")):
                s1dss = S1Dss.BYPASS if dom.type is DomainType.IDENTITY else S1Dss.TERMINATE
                self._write_ste(k, dev, self._cdtable_ste(k, dev, s1dss))
                ats = dev.ats
            else:
                target = hw.make_bypass_ste() if dom.type is DomainType.IDENTITY else hw.make_abort_ste()
                self._write_ste(k, dev, target)
                ats = False
            # attach_commit (ATS, old master_domain) before CD0 is cleared, as the driver does
            self._commit_ats(k, dev, ats, IOMMU_NO_PASID)
            self._remove_master_domain(k, prev_dom, dev, IOMMU_NO_PASID)
            self._write_cd(k, dev, IOMMU_NO_PASID, hw.CD_ZERO)
            return 0
        if s.stage2(dom):
            return self._attach_s2(k, dom, dev, prev_dom)
        assert dom.pgtable is not None
        self._add_master_domain(k, dom, dev, IOMMU_NO_PASID)  # attach_prepare: list first
        self._write_cd(k, dev, IOMMU_NO_PASID, hw.make_s1_cd(self.asid_of(k, dom), dom.pgtable))
        self._write_ste(k, dev, self._cdtable_ste(k, dev, S1Dss.SSID0))
        self._set_master(k, dev, rid_domain=dom.id)
        self._commit_ats(k, dev, dev.ats, IOMMU_NO_PASID)
        self._remove_master_domain(k, prev_dom, dev, IOMMU_NO_PASID)
        return 0

    def _attach_s2(self, k: "Kernel", dom: Domain, dev: Device, prev_dom: Domain | None) -> int:
        """arm_smmu_attach_dev for an S2 domain (the S2 STE, then CD0 cleared), or
        arm_smmu_attach_dev_nested (the nested STE). Both need the CD table unused:
        a stage-2 or nested STE has no room for the host's PASIDs (-EBUSY)."""
        s = _st(k)
        if self._used_ssids(k, dev):
            return -errno.EBUSY
        parent = k.domains[dom.parent] if dom.type is DomainType.NESTED and dom.parent is not None else dom
        assert parent.pgtable is not None
        vmid = s.vmids[parent.id]
        self._add_master_domain(k, dom, dev, IOMMU_NO_PASID)
        if dom.type is DomainType.NESTED:
            # arm_smmu_make_nested_cd_table_ste: the parent's S2 STE with the guest's
            # S1 half (S1ContextPtr, S1CDMAX 0, S1DSS) and CFG = NESTED
            target = hw.make_nested_ste(s.guest_cd_tables[dom.id], 0, S1Dss.SSID0, dev.ats,
                                        vmid, parent.pgtable, S2_VTCR)
            self._write_ste(k, dev, target)
        else:
            self._write_ste(k, dev, hw.make_s2_ste(vmid, parent.pgtable, S2_VTCR, ats=dev.ats))
            self._write_cd(k, dev, IOMMU_NO_PASID, hw.CD_ZERO)  # arm_smmu_clear_cd
        self._set_master(k, dev, rid_domain=dom.id)
        self._commit_ats(k, dev, dev.ats, IOMMU_NO_PASID)
        self._remove_master_domain(k, prev_dom, dev, IOMMU_NO_PASID)
        return 0

    def _cd_table_in_ste(self, k: "Kernel", dev: Device) -> bool:
        """master->cd_table.in_ste, as arm_smmu_set_pasid reads it: the RID domain is not
        a stage-2 or nested one (those STEs carry no host CD table)."""
        s = _st(k)
        rid = s.masters[dev.name].rid_domain
        return not s.stage2(k.domains.get(rid) if rid is not None else None)

    # ----------------------------------------------------------- PASID attach
    def set_dev_pasid(
        self, k: "Kernel", dom: Domain, dev: Device, pasid: int, old: Domain | None
    ) -> int:
        s = _st(k)
        if dom.type is DomainType.BLOCKED:
            return self._block_pasid(k, dev, pasid, old)
        if dom.type is DomainType.IDENTITY:
            return -errno.EOPNOTSUPP
        if dom.id in s.vmids:
            return -errno.EINVAL  # arm_smmu_s1_set_dev_pasid: stage != ARM_SMMU_DOMAIN_S1
        if not self._cd_table_in_ste(k, dev):
            return -errno.EINVAL  # arm_smmu_set_pasid: !cd_table.in_ste under a paging RID
        if dom.type is DomainType.SVA:
            mm = k.mms.get(dom.mm) if dom.mm is not None else None
            if mm is None:
                return -errno.EINVAL  # the SVA domain holds mm_count: unreachable
            # An exited mm too (pci_dev_reset_iommu_done re-sets the PASIDs it blocked):
            # arm_smmu_sva_set_dev_pasid points the CD at mm->pgd, whose user half
            # exit_mmap emptied, so the DMA faults; the pgd lives until __mmdrop.
            cd = hw.make_sva_cd(self.asid_of(k, dom), mm.pgd)
        else:
            assert dom.pgtable is not None
            cd = hw.make_s1_cd(self.asid_of(k, dom), dom.pgtable)
        # arm_smmu_set_pasid
        self._add_master_domain(k, dom, dev, pasid)
        self._write_cd(k, dev, pasid, cd)
        self._update_ste(k, dev)
        self._commit_ats(k, dev, dev.ats, pasid)
        self._remove_master_domain(k, old, dev, pasid)
        s.pasid_domains[(dev.name, pasid)] = dom.id
        return 0

    def _block_pasid(self, k: "Kernel", dev: Device, pasid: int, old: Domain | None) -> int:
        """arm_smmu_blocking_set_dev_pasid (v6.13+; remove_dev_pasid before, same body)."""
        s = _st(k)
        if old is None and k.design.has("smmu.track_pasid_domains"):
            # the driver's own PASID -> domain record stands in for the missing `old`
            rec = s.pasid_domains.get((dev.name, pasid))
            old = k.domains.get(rec) if rec is not None else None
        s.pasid_domains.pop((dev.name, pasid), None)
        self._write_cd(k, dev, pasid, hw.CD_ZERO)
        if s.masters[dev.name].ats_enabled and not k.design.has("smmu.detach_skip_atc_inv"):
            self._atc_inv_master(k, dev, pasid)
        self._remove_master_domain(k, old, dev, pasid)
        if k.design.has("smmu.sva_cpu_asid") and old is not None and old.type is DomainType.SVA:
            # <= v6.10: the last bond of the shared CD invalidated its (CPU) ASID.
            if not s.master_domains.get(old.id):
                s.unit.issue_cmd_with_sync(hw.TLBI_NH_ASID(asid=self.asid_of(k, old), vmid=0))
        if not self._used_ssids(k, dev):
            rid = s.masters[dev.name].rid_domain
            rid_dom = k.domains.get(rid) if rid is not None else None
            if rid_dom is not None and rid_dom.type in (DomainType.BLOCKED, DomainType.IDENTITY):
                self.attach_dev(k, rid_dom, dev, rid_dom)
        return 0

    # ---------------------------------------------------------------- flushes
    def iotlb_sync(self, k: "Kernel", dom: Domain, start: int, end: int,
                   pgsize: int = PAGE_SIZE) -> None:
        """arm_smmu_iotlb_sync: the gather's inclusive end becomes a size,
        arm_smmu_tlb_inv_range_domain(start, end - start + 1, gather->pgsize, leaf):
        the granule steps the per-page loop and sets TTL (a 2 MiB block: TTL 2)."""
        size = end - start + 1
        if k.design.has("smmu.iotlb_sync_exclusive_end"):
            size = end - start  # broken variant: the inclusive end read as exclusive
        self._tlb_inv_range_domain(k, dom, start, size, leaf=True, granule=pgsize)

    def unmap_block(self, k: "Kernel", dom: Domain, iova: int, size: int) -> int:
        """io-pgtable-arm __arm_lpae_unmap at the block's level: an unmap of the whole
        block (iommu_pgsize gave SZ_2M) clears it and gathers it (io_pgtable_tlb_add_page
        with the 2 MiB granule); any smaller unmap meets a leaf larger than itself:
        WARN_ONCE "Unmap of a partial large IOPTE is not allowed" and 0 (splitting was
        removed in v6.13: a caller unmaps what it mapped)."""
        assert dom.pgtable is not None
        if size < SZ_2M or iova & (SZ_2M - 1):
            k.warn("smmu_partial_block_unmap", f"unmap of {size:#x} at {iova:#x} inside the "
                                               f"2M block at {iova & ~(SZ_2M - 1):#x}")
            return 0
        k.mem.unmap_block(dom.pgtable, iova >> (PAGE_SHIFT + TABLE_SPAN_SHIFT))
        return SZ_2M

    def unmap_table(self, k: "Kernel", dom: Domain, start: int, end: int, table: int) -> None:
        """io-pgtable-arm __arm_lpae_unmap over a table entry at the block size: clear the
        entry, io_pgtable_tlb_flush_walk (arm_smmu_tlb_inv_walk: a non-leaf range
        invalidation with the 4 KiB granule, synchronous even in non-strict mode), then
        free the table; the gather gets nothing, so arm_smmu_iotlb_sync returns on
        !gather->pgsize."""
        leaf = k.design.has("smmu.flush_walk_leaf")
        self._tlb_inv_range_domain(k, dom, start, end - start + 1, leaf=leaf)
        k.free_table_page(table, "__arm_lpae_free_pgtable")

    def walk_cache_entries(self, k: "Kernel") -> set[hw.WalkEntry]:
        return _st(k).unit.walk

    def _tlb_inv_range_domain(self, k: "Kernel", dom: Domain, iova: int, size: int, leaf: bool,
                              granule: int = PAGE_SIZE) -> None:
        """arm_smmu_tlb_inv_range_domain: TLBI_NH_VA by ASID + SYNC (nothing for size 0:
        __arm_smmu_tlb_inv_range returns early), then arm_smmu_atc_inv_domain(iova, size),
        whose size 0 means everything. With range invalidation the TTL hint comes from
        `granule` for leaf commands and is 0 for walk flushes (6833b8f2e199); design
        `smmu-ttl-from-leaf-size` takes it from the domain's smallest page, whatever the
        granule."""
        s = _st(k)
        ttl_granule: int | None = None  # the kernel's rule (commands.py _tlbi_range)
        if k.design.has("smmu.ttl_from_leaf_size") and leaf:
            ttl_granule = dom.pgsize_bitmap & -dom.pgsize_bitmap
        vmid = s.vmids.get(dom.id)
        if vmid is not None:
            # stage 2: TLBI_S2_IPA by the VMID; a nesting parent then TLBI_NH_ALL(vmid)
            # + SYNC ("When the S2 domain changes all the nested S1 ASIDs have to be
            # flushed too"), before the ATCs
            s2 = hw.tlbi_s2_ipa_cmds(vmid, iova, size, leaf=leaf, range_inv=self.range_inv,
                                     granule=granule, ttl_granule=ttl_granule)
            if s2:
                s.unit.issue_cmdlist(s2)
            if dom.nest_parent and not k.design.has("smmu.parent_flush_skips_nh_all"):
                s.unit.issue_cmd_with_sync(hw.TLBI_NH_ALL(vmid=vmid))
            self._atc_inv_domain(k, dom, iova, size)
            return
        cmds = hw.tlbi_nh_va_cmds(self.asid_of(k, dom), 0, iova, size, leaf=leaf,
                                  range_inv=self.range_inv, granule=granule,
                                  ttl_granule=ttl_granule)
        if cmds:
            s.unit.issue_cmdlist(cmds)
        self._atc_inv_domain(k, dom, iova, size)

    def flush_iotlb_all(self, k: "Kernel", dom: Domain) -> None:
        """arm_smmu_flush_iotlb_all -> arm_smmu_tlb_inv_context: TLBI by ASID + SYNC, then
        the whole ATC of every master. An S2 domain: TLBI_S12_VMALL by its VMID (nested
        entries of the VMID included)."""
        s = _st(k)
        if dom.id in s.vmids:
            s.unit.issue_cmd_with_sync(hw.TLBI_S12_VMALL(vmid=s.vmids[dom.id]))
        else:
            s.unit.issue_cmd_with_sync(hw.TLBI_NH_ASID(asid=self.asid_of(k, dom), vmid=0))
        self._atc_inv_domain(k, dom, 0, 0)

    def invalidate_secondary_tlbs(self, k: "Kernel", dom: Domain, start: int, end: int) -> None:
        """arm_smmu_mm_arch_invalidate_secondary_tlbs: size = end - start (end exclusive).
        Without range invalidation a size of CMDQ_MAX_TLBI_OPS pages or more, with it
        ULONG_MAX, becomes 0: TLBI by ASID. Otherwise a non-leaf TLBI by VA (the CPU may
        have freed page-table pages). Then the ATCs over the same size (0: all)."""
        s = _st(k)
        asid = self.asid_of(k, dom)
        size = end - start
        if (not self.range_inv and size >= CMDQ_MAX_TLBI_OPS << PAGE_SHIFT) or size == ULONG_MAX:
            size = 0
        if size == 0:
            s.unit.issue_cmd_with_sync(hw.TLBI_NH_ASID(asid=asid, vmid=0))
        else:
            s.unit.issue_cmdlist(hw.tlbi_nh_va_cmds(asid, 0, start, size, leaf=False,
                                                    range_inv=self.range_inv))
        self._atc_inv_domain(k, dom, start, size)

    def mm_release(self, k: "Kernel", dom: Domain) -> None:
        """arm_smmu_mm_release: EPD0 CDs (kept valid, hitless), TLBI by ASID, ATC_INV."""
        s = _st(k)
        asid = self.asid_of(k, dom)
        for name, ssid in s.master_domains.get(dom.id, ()):
            self._write_cd(k, k.devices[name], ssid, hw.make_sva_cd(asid, None))
        s.unit.issue_cmd_with_sync(hw.TLBI_NH_ASID(asid=asid, vmid=0))
        self._atc_inv_domain(k, dom, 0, 0)

    # --------------------------------------------------------------- hardware
    def translate(self, k: "Kernel", dev: Device, pasid: int | None, iova: int,
                  access: Access) -> frozenset[Outcome]:
        return hw.translate(_st(k).unit, k.mem, dev.wire_sid, pasid, iova, access)

    def fill(self, k: "Kernel", dev: Device, pasid: int | None, iova: int, access: Access) -> None:
        hw.fill(_st(k).unit, k.mem, dev.wire_sid, pasid, iova, access)

    def device_gone(self, k: "Kernel", dev: Device) -> None:
        _st(k).unit.device_gone(dev.sid)

    def ats_invalidations(self, k: "Kernel") -> list[tuple[int, str]]:
        """CMD_ATC_INV commands (the only command that reaches the endpoint)."""
        return [(c.sid, str(c)) for c in _st(k).unit.cmd_log if isinstance(c, hw.ATC_INV)]

    def take_hw_log(self, k: "Kernel") -> list[str]:
        unit = _st(k).unit
        out = [str(c) for c in unit.cmd_log]
        unit.cmd_log.clear()
        return out

    def dump(self, k: "Kernel") -> list[str]:
        return hw.dump(_st(k).unit, k.mem)

    # ----------------------------------------------------------- introspection
    def cached_translations(self, k: "Kernel") -> list[tuple[tuple[Any, ...], int, int, str]]:
        return [(("asid", e.vmid, e.asid), e.iova_pfn, e.pfn, str(e))
                for e in _st(k).unit.tlb if e.asid is not None and e.ipa_pfn is None]

    def nested_translations(self, k: "Kernel") -> list[tuple[tuple[Any, ...], int, int, int, str]]:
        return [(("asid", e.vmid, e.asid), e.iova_pfn, e.ipa_pfn, e.pfn, str(e))
                for e in _st(k).unit.tlb if e.ipa_pfn is not None]

    def tag_nested_domains(self, k: "Kernel", tag: tuple[Any, ...]) -> list[int]:
        """The nested domains on the parent owning the tag's VMID, whose guest CD0 carries
        the tag's ASID."""
        _, vmid, asid = tag
        s = _st(k)
        return sorted(d.id for d in k.domains.values()
                      if d.type is DomainType.NESTED and d.parent is not None
                      and s.vmids.get(d.parent) == vmid and asid == GUEST_ASID)

    def tag_guest_parent(self, k: "Kernel", tag: tuple[Any, ...]) -> int | None:
        """A combined entry's (VMID, ASID): the ASID is the guest's (its CD table), the
        VMID the parent's. After the nested domain goes (kfree, no TLBI), its entries
        are the guest's to invalidate (CMD_TLBI_NH_ASID through the vSMMU, not
        modelled); the host owes only their stage-2 half, through the parent."""
        _, vmid, _ = tag
        return next((d for d, v in sorted(_st(k).vmids.items()) if v == vmid and d in k.domains), None)

    def _valid_cds(self, k: "Kernel") -> list[tuple[str, int, tuple[int, ...]]]:
        s = _st(k)
        out = []
        for name, m in s.masters.items():
            ste = s.unit.read_ste(k.mem, k.devices[name].sid)
            if not STE.get(ste, "v") or STE.get(ste, "cfg") != Cfg.S1_TRANS:
                continue
            for ssid in range(1 << m.s1cdmax):
                cd = k.mem.read(m.cd_table + CD_SIZE * ssid, 8)
                if CD.get(cd, "v"):
                    out.append((name, ssid, cd))
        return out

    def installed(self, k: "Kernel") -> list[tuple[int, int | None, tuple[Any, ...], int, str]]:
        out: list[tuple[int, int | None, tuple[Any, ...], int, str]] = []
        for name, ssid, cd in k.memoized("valid_cds", lambda: self._valid_cds(k)):
            if CD.get(cd, "epd0"):
                continue
            root = CD.get(cd, "ttb0") << 4
            asid = CD.get(cd, "asid")
            out.append((k.devices[name].sid, ssid, ("asid", 0, asid), root,
                        f"{name} ssid {ssid}: CD v=1 asid={asid} ttb0={root >> 4:#x}"))
        return out

    def tag_owner_roots(self, k: "Kernel", tag: tuple[Any, ...]) -> set[int]:
        _, _, asid = tag
        s = _st(k)
        roots = set()
        for dom_id, a in s.asids.items():
            dom = k.domains.get(dom_id)
            if a == asid and dom is not None:
                if dom.pgtable is not None:
                    roots.add(dom.pgtable)
                elif dom.mm is not None and dom.mm in k.mms:
                    roots.add(k.mms[dom.mm].pgd)
        for mm, a in s.cpu_asids.items():
            if a == asid and mm in k.mms:
                roots.add(k.mms[mm].pgd)
        return roots

    def refcounts(self, k: "Kernel") -> list[tuple[str, int, int]]:
        """Each domain's master_domain list holds one entry per (master, SSID) the core has
        it attached at (arm_smmu_attach_prepare / _remove_master_domain)."""
        s = _st(k)
        att = k.attachments()
        out: list[tuple[str, int, int]] = []
        for dom_id in sorted(set(s.master_domains) | set(att)):
            dom = k.domains.get(dom_id)
            if dom is None or dom.static:
                continue
            have = list(s.master_domains.get(dom_id, ()))
            for dev_name, ssid in sorted(set(have) | set(att.get(dom_id, ()))):
                out.append((f"d{dom_id}'s master_domain entries for ({dev_name}, ssid {ssid})",
                            have.count((dev_name, ssid)), att.get(dom_id, []).count((dev_name, ssid))))
        return out

    def leaks(self, k: "Kernel") -> list[str]:
        s = _st(k)
        out = [f"ASID {a} is held for d{d}, which was freed (nobody can release it)"
               for d, a in sorted(s.asids.items()) if d not in k.domains]
        out += [f"VMID {v} is held for d{d}, which was freed (nobody can release it)"
                for d, v in sorted(s.vmids.items()) if d not in k.domains]
        dying = k.dying_domains()
        out += [f"CPU ASID {a} stays pinned for mm{m}, which no live SVA domain uses"
                for m, a in sorted(s.cpu_asids.items())
                if not any(d.type is DomainType.SVA and d.mm == m and d.id not in dying
                           for d in k.domains.values())]
        out += [f"master_domain entries of freed d{d} are still listed" for d, lst in
                sorted(s.master_domains.items()) if lst and d not in k.domains]
        return out

    def pasids_in_hw(self, k: "Kernel") -> set[int]:
        s = _st(k)
        held = {ssid for _, ssid, _ in k.memoized("valid_cds", lambda: self._valid_cds(k))}
        held |= {e.ssid for e in s.unit.cd_cache}
        held |= {e.ssid for e in s.unit.atc if e.ssid is not None}
        held.discard(IOMMU_NO_PASID)
        return held


# -- canonical form helpers (explorer) ------------------------------------------------------
_CD_TTB0 = CD["ttb0"]
#: TTB0 holds the root address >> 4 (hw-tables B.6)
_CD_TTB0_FIELD = (_CD_TTB0.mask, _CD_TTB0.lo, _CD_TTB0.lo)


assert _CD_TTB0.word == 1


def _canon_cd(words: tuple[int, ...], ren: Any) -> tuple[Any, ...]:
    """A cached CD with its TTB0 (q1) renamed."""
    return (words[0], ren.root_field(words[1], *_CD_TTB0_FIELD), *words[2:])
