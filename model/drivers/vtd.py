"""The Intel VT-d scalable-mode driver (drivers/iommu/intel), programming `hwspec.vtd`.

What it does, call by call (hw-tables.md A.8-A.12, v7.0-era code):

* probe: a PASID directory per device and the SM context entry pointing at it
  (`intel_pasid_setup_sm_context`); PASIDE only for PASID-capable devices, DTE
  for ATS.
* DIDs: one allocator per IOMMU, DID 0 reserved, FLPT_DEFAULT_DID (1) shared by
  every SVA and pass-through entry, paging domains from IDA_START_DID (2)
  (`domain_attach_iommu` / `domain_detach_iommu` with a refcount).
* cache tags: an IOTLB tag (DID, PASID) per attachment and a DEVTLB tag when ATS is
  on (`cache_tag_assign_domain`), assigned before a PASID entry switches and
  unassigned after the old entry was torn down and flushed; the RID path
  (`device_block_translation`) unassigns first, as the kernel does.
* setup refuses a present entry (-EBUSY); teardown is A.8.2: clear P, PASID-cache
  by DID+PASID, IOTLB (P_IOTLB for first-stage / pass-through), device-TLB, clear
  the entry, drain page requests when IOPF is on; replace is break-before-make.
* every PASID and context entry is written store by store (`hwspec.vtd.writer`), with
  a fetch window per entry: a present mix of two configurations a multi-transaction
  fetch could read is a TORN WARN (the hitless-entry-update invariant).
* unmap and mmu-notifier invalidation walk the domain's cache tags
  (`cache_tag_flush_range`): P_IOTLB page-selective by (DID, PASID) for first-stage
  domains, then device-TLB by SID(+PASID).

Paging domains use first-stage translation (PGTT=1), as the driver does by default
on scalable-mode hardware with first-stage support; a nesting parent
(IOMMU_HWPT_ALLOC_NEST_PARENT, bound nesting) is a second-stage domain (PGTT=2 when
attached directly, flushed with IOTLB descriptors by DID: not a piotlb user).

Nesting (nested.c, cache.c; v7.0): a NESTED domain gets its own DID per IOMMU
(`domain_attach_iommu` of the nested domain) and a PGTT=NESTED entry (FLPTPTR = the
guest's stage-1 table, SLPTPTR = the parent's table, DID = the nested DID). Its
attach adds IOTLB/DEVTLB tags to the nested domain and NESTING_IOTLB/NESTING_DEVTLB
tags, with the nested DID and PASID, to the parent (`__cache_tag_assign_parent_domain`),
so a change to the parent reaches every domain nested on it: NESTING_IOTLB by an IOTLB
descriptor (PSI/DSI) with the nested DID and the parent's IPA range (the parent is not
a piotlb user), NESTING_DEVTLB by a device-TLB flush of the whole range ("no easy way
to identify the exact set of nested translations affected by a change in S2").
A nested domain's own flushes (iotlb_sync on it does not happen: no map on it) and
the guest's cache_invalidate_user are not modelled; nor is dirty tracking.

Not modelled: caching mode, legacy (non-scalable) mode, interrupt remapping.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable

import errno

from hwspec import vtd as hw
from hwspec.memory import PAGE_SHIFT, PAGE_SIZE
from hwspec.outcome import Access, Outcome
from hwspec.vtd import (
    CONTEXT_ENTRY,
    FLPT_DEFAULT_DID,
    IDA_START_DID,
    IOMMU_NO_PASID,
    MAX_AGAW_PFN_WIDTH,
    PASID_DIR_ENTRY,
    PASID_ENTRY,
    ROOT_ENTRY,
    PcGran,
    Pgtt,
    QiDesc,
)
from hwspec.vtd import writer
from hwspec.vtd.caches import CacheEntry, ContextCacheEntry, PasidCacheEntry
from hwspec.layout import Layout

from model.drivers.base import ULONG_MAX, Driver
from model.state import Declared, Role, StateField
from model.objects import Device, Domain, DomainType, PageResp

if TYPE_CHECKING:
    from model.core import Kernel

AGAW_4LEVEL = 2  # AW encoding of a 48-bit, 4-level table (A.5)
_P_BIT = 1 << PASID_ENTRY["p"].lo  # Present, bit 0 of q0 (also of a directory entry)
_PDE_PTR = PASID_DIR_ENTRY["smptblptr"]
_PE_PGTT, _PE_DID, _PE_FLPTPTR = PASID_ENTRY["pgtt"], PASID_ENTRY["did"], PASID_ENTRY["flptptr"]


@dataclass(frozen=True)
class CacheTag:
    """struct cache_tag: what one domain's flush must reach (A.10)."""

    type: str  # "IOTLB", "DEVTLB", "NESTING_IOTLB" or "NESTING_DEVTLB" (enum cache_tag_type)
    did: int
    pasid: int
    dev: str | None  # the endpoint for DEVTLB tags; None (the IOMMU itself) for IOTLB
    users: int = 1

    def matches(self, other: "CacheTag") -> bool:
        return (self.type, self.did, self.pasid, self.dev) == (
            other.type, other.did, other.pasid, other.dev
        )


@dataclass(frozen=True)
class DevInfo:
    """struct device_domain_info, the parts the model needs."""

    pasid_dir: int  # info->pasid_table->table (physical address of the directory)
    dir_pages: int
    rid_domain: int | None = None  # info->domain (None: blocked)
    iopf_refcount: int = 0
    #: info->ats_enabled: set in probe_finalize, after the default domain's attach
    #: (scalable mode, since 4f1492efb495 reverted the probe-time enable); the
    #: DEVTLB cache tags follow it, not the capability
    ats_enabled: bool = False


#: the proposed fix's translation of enum iommu_page_response_code into PCIe PRG codes
_PCIE_CODE = {PageResp.SUCCESS: hw.QI_RESP_SUCCESS, PageResp.INVALID: hw.QI_RESP_INVALID,
              PageResp.FAILURE: hw.QI_RESP_FAILURE}


def _leaf_tables(mem: Any, info: DevInfo) -> list[int]:
    """The leaf PASID tables the device's directory points at (present entries only)."""
    words = mem.words
    base, end = info.pasid_dir, info.pasid_dir + 4096 * info.dir_pages
    return [PASID_DIR_ENTRY["smptblptr"].extract((words[a],)) << PAGE_SHIFT
            for a in words if base <= a < end and words[a] & 1]  # directory entry P


def _canon_unit(st: "VtdState", u: hw.VtdUnit, ren: Any) -> Any:
    pfn = ren.pfn
    return (
        u.seq_id, u.rtaddr, frozenset(u.context_cache),
        frozenset([(e.sid, e.did, e.pasid, _canon_pasid_entry(e.words, ren)) for e in u.pasid_cache]),
        frozenset([(e.did, e.pasid, e.iova_pfn, e.pfn if e.pt else pfn(e.pfn), e.prot, e.pt,
                    e.ipa_pfn, e.block) for e in u.iotlb]),
        frozenset([(e.sid, e.pasid, e.iova_pfn, e.pfn if e.pt else pfn(e.pfn), e.prot, e.pt)
                   for e in u.devtlb]),
        # leaf table pages are not renamed (Kernel.canonical_key): only their roots
        frozenset([(e.did, e.pasid, e.region, e.table, ren.root(e.root)) for e in u.psc]),
    )


# Every live domain is labelled by now (Kernel.canonical_key); a stale id that is not
# gets a fresh label in dict order, which is sound, merely less canonical.
def _canon_by_domain(st: "VtdState", v: dict[int, Any], ren: Any) -> Any:
    return tuple(sorted([(ren.dom(d), x) for d, x in v.items() if not (isinstance(x, tuple) and not x)],
                        key=lambda dx: dx[0]))


def _canon_info(st: "VtdState", v: dict[str, "DevInfo"], ren: Any) -> Any:
    return tuple([(n, i.pasid_dir, i.dir_pages, None if i.rid_domain is None else ren.dom(i.rid_domain),
                   i.iopf_refcount, i.ats_enabled) for n, i in sorted(v.items())])


class VtdState(Declared):
    """The driver's private state: the unit, DIDs, cache tags, dev_pasids, device infos."""

    STATE = (
        StateField("unit", Role.OBJECT, "the VT-d unit: root table address, caches, QI log",
                   canon=_canon_unit),
        StateField("ndoms", Role.FIXED, "cap_ndoms: the size of the DID space"),
        StateField("dids", Role.MAP, "domain -> (did, refcnt): iommu_domain_info", canon=_canon_by_domain),
        StateField("tags", Role.MAP, "domain -> cache_tags, in list order", canon=_canon_by_domain),
        StateField("dev_pasids", Role.MAP, "domain -> (dev, pasid) dev_pasids", canon=_canon_by_domain),
        StateField("info", Role.MAP, "device -> device_domain_info", canon=_canon_info),
    )

    unit: hw.VtdUnit
    ndoms: int
    dids: dict[int, tuple[int, int]]
    tags: dict[int, tuple[CacheTag, ...]]
    dev_pasids: dict[int, tuple[tuple[str, int], ...]]
    info: dict[str, DevInfo]

    def __init__(self, unit: hw.VtdUnit, ndoms: int) -> None:
        self.unit = unit
        self.ndoms = ndoms
        self.dids = {}
        self.tags = {}
        self.dev_pasids = {}
        self.info = {}

    # -- canonical form (explorer symmetry reduction) ------------------------------------
    def root_pointer_words(self, mem: Any) -> dict[int, tuple[int, int, int]]:
        """Memory words that can hold a page-table root: address -> (mask, lo, shift).

        The first- and second-stage pointer words of every entry slot of every leaf
        PASID table a device's PASID directory points at (the explorer renames roots).
        """
        out: dict[int, tuple[int, int, int]] = {}
        for info in self.info.values():
            for table in _leaf_tables(mem, info):
                for slot in range(table, table + 4096, PASID_ENTRY.words * 8):
                    for qword, f in _PE_ROOT_FIELDS.items():
                        out[slot + 8 * qword] = f
        return out


def _st(k: "Kernel") -> VtdState:
    s = k.drv
    assert isinstance(s, VtdState)
    return s


class VtdDriver(Driver):
    name = "vtd"

    def __init__(self, ndoms: int = 1 << 16) -> None:
        self.ndoms = ndoms

    def new_state(self, k: "Kernel") -> VtdState:
        return VtdState(hw.VtdUnit(k.mem), self.ndoms)

    # ------------------------------------------------------------------ probe
    def release_device(self, k: "Kernel", dev: Device) -> None:
        """intel_iommu_release_device in scalable mode, after the release (blocking)
        domain tore the RID's entry down: WARN on a live IOPF user, PRI / ATS / PASID off,
        the SM context entry cleared and flushed (intel_pasid_teardown_sm_context), the
        PASID table freed (intel_pasid_free_table: every leaf, then the directory)."""
        s = _st(k)
        info = s.info.get(dev.name)
        if info is None:
            return
        if info.iopf_refcount:
            k.warn("vtd_release_iopf", f"{dev.name} released with IOPF still enabled "
                                       f"({info.iopf_refcount} users)")
        for rid in dev.rids:  # intel_pasid_teardown_sm_context: every DMA alias
            ctx = s.unit.context_entry_addr(k.mem, rid)
            if ctx is not None and CONTEXT_ENTRY.get(k.mem.read(ctx, CONTEXT_ENTRY.words), "p"):
                # device_pasid_table_teardown: context_clear_entry on the live entry
                # (P is not cleared first, A.3 OBSERVATION; every field it uses is in q0)
                self._store_context(k, rid, ctx, writer.clear_stores(CONTEXT_ENTRY.words, 0))
                self._submit(k, hw.qi_desc_context(0, rid, 0, hw.CcGran.DEVICE))
        if k.design.has("vtd.release_keeps_pasid_table"):
            s.info[dev.name] = replace(info, ats_enabled=False, rid_domain=None)
            return  # broken variant: the PASID table and the device info stay allocated
        for table in _leaf_tables(k.mem, info):
            k.mem.free_page(table)
        k.mem.free_page(info.pasid_dir, info.dir_pages)
        del s.info[dev.name]

    def probe_finalize(self, k: "Kernel", dev: Device) -> None:
        """intel_iommu_probe_finalize: ATS is enabled now, after the default domain was
        attached, so that attach assigned no DEVTLB tag: 25b1b75bbaf9 assigns it here
        for the RID's domain (cache_tag_assign with CACHE_TAG_DEVTLB)."""
        s = _st(k)
        info = s.info[dev.name]
        if not dev.ats or info.ats_enabled:
            return
        s.info[dev.name] = replace(info, ats_enabled=True)
        dom = k.domains.get(info.rid_domain) if info.rid_domain is not None else None
        if dom is None or dom.type in (DomainType.IDENTITY, DomainType.BLOCKED):
            return
        if k.design.has("vtd.ats_late_no_devtlb_tag"):
            return  # 4f1492efb495 .. 25b1b75bbaf9: the RID domain's DEVTLB tag is missing
        self._add_tags(k, dom, [CacheTag("DEVTLB", self.domain_id(k, dom), IOMMU_NO_PASID, dev.name)])

    def probe_device(self, k: "Kernel", dev: Device) -> None:
        """intel_pasid_alloc_table + intel_pasid_setup_sm_context (A.3, A.4)."""
        s = _st(k)
        # One page of directory covers 512 entries = 32768 PASIDs, the minimum the
        # kernel allocates, even for devices without PASID support.
        pdir = k.mem.alloc_page()
        s.info[dev.name] = DevInfo(pasid_dir=pdir, dir_pages=1)
        # pci_for_each_dma_alias: the same PASID table behind every requester ID the
        # device's DMA may carry (a DMA alias is programmed like its own RID)
        rids = dev.rids[:1] if k.design.has("vtd.context_own_rid_only") else dev.rids
        for rid in rids:
            self._setup_sm_context(k, dev, rid, pdir)

    def _setup_sm_context(self, k: "Kernel", dev: Device, rid: int, pdir: int) -> None:
        """intel_pasid_setup_sm_context for one requester ID."""
        s = _st(k)
        bus, devfn = rid >> 8, rid & 0xFF
        re_addr = s.unit.root_entry_addr(bus)
        root = k.mem.read(re_addr, ROOT_ENTRY.words)
        present, ptr = hw.context_half(devfn)
        if not ROOT_ENTRY.get(root, present):
            table = k.mem.alloc_page()
            k.mem.write(re_addr, ROOT_ENTRY.set(root, **{present: 1, ptr: table >> PAGE_SHIFT}))
        ctx_addr = s.unit.context_entry_addr(k.mem, rid)
        assert ctx_addr is not None
        words = CONTEXT_ENTRY.encode(
            pasiddirptr=pdir >> PAGE_SHIFT,
            pdts=2,  # context_get_sm_pds of a one-page directory: 2^(2+7) = 512 entries
            rid_pasid=IOMMU_NO_PASID,
            dte=int(dev.ats),
            paside=int(dev.max_pasids > 0),
            pre=int(dev.ats),  # PRI with ATS in the model (SVA needs both)
        )
        # Clear, write the fields, set P last (dma_wmb before it).
        self._store_context(k, rid, ctx_addr, writer.clear_stores(CONTEXT_ENTRY.words, 0)
                            + writer.setup_stores(CONTEXT_ENTRY.set(words, p=1), _clear_p))

    # ------------------------------------------------------------- DIDs, tags
    def domain_id(self, k: "Kernel", dom: Domain) -> int:
        """domain_get_id_for_dev / iommu_domain_did: FLPT_DEFAULT_DID for SVA and identity."""
        if dom.type in (DomainType.SVA, DomainType.IDENTITY):
            return FLPT_DEFAULT_DID
        if k.design.has("vtd.shared_did_colliding") and dom.type is DomainType.UNMANAGED:
            return self.ndoms - 1  # one DID for every UNMANAGED first-stage domain
        got = _st(k).dids.get(dom.id)
        if got is None:
            k.warn("vtd_did_freed", f"d{dom.id} has no iommu_domain_info on this IOMMU (DID freed)")
            return 0
        return got[0]

    def _attach_iommu(self, k: "Kernel", dom: Domain) -> int:
        """domain_attach_iommu: SVA domains return early (they live on DID 1)."""
        if not _has_did(dom):
            return 0
        s = _st(k)
        if dom.id in s.dids:
            did, ref = s.dids[dom.id]
            s.dids[dom.id] = (did, ref + 1)
            return 0
        if dom.type is DomainType.NESTED and k.design.has("vtd.nested_share_parent_did"):
            # seed 003's "user domains nested on the same parent could share a domain
            # ID": a nested domain takes the DID a sibling on its parent holds
            for other in k.nested_on(dom.parent) if dom.parent is not None else ():
                if other != dom.id and other in s.dids:
                    s.dids[dom.id] = (s.dids[other][0], 1)
                    return 0
        used = {did for did, _ in s.dids.values()}
        for did in range(IDA_START_DID, s.ndoms):
            if did not in used:
                s.dids[dom.id] = (did, 1)
                return 0
        return -errno.ENOSPC

    def _detach_iommu(self, k: "Kernel", dom: Domain) -> None:
        if not _has_did(dom):
            return
        s = _st(k)
        got = s.dids.get(dom.id)
        if got is None:
            k.warn("vtd_did_freed", f"domain_detach_iommu(d{dom.id}): its DID was freed already")
            return
        did, ref = got
        if ref > 1:
            s.dids[dom.id] = (did, ref - 1)
        else:
            del s.dids[dom.id]  # ida_free: only after the teardown flushed this DID

    def _tag_assign(self, k: "Kernel", dom: Domain, dev: Device, pasid: int) -> None:
        """cache_tag_assign_domain: IOTLB tag, plus DEVTLB tag when ATS is enabled."""
        if dom.type in (DomainType.IDENTITY, DomainType.BLOCKED):
            return
        did = self.domain_id(k, dom)
        s = _st(k)
        wanted = [CacheTag("IOTLB", did, pasid, None)]
        if s.info[dev.name].ats_enabled:
            wanted.append(CacheTag("DEVTLB", did, pasid, dev.name))
        self._add_tags(k, dom, wanted)
        parent = self._parent(k, dom)
        if parent is not None:
            # __cache_tag_assign_parent_domain: the parent's list, the nested DID
            self._add_tags(k, parent, _nesting_tags(s, did, pasid, dev))

    def _add_tags(self, k: "Kernel", dom: Domain, wanted: list[CacheTag]) -> None:
        """cache_tag_assign: a matching tag gains a user, a new one joins the list."""
        s = _st(k)
        tags = list(s.tags.get(dom.id, ()))
        for t in wanted:
            for i, cur in enumerate(tags):
                if cur.matches(t):
                    tags[i] = CacheTag(cur.type, cur.did, cur.pasid, cur.dev, cur.users + 1)
                    break
            else:
                tags.append(t)
        s.tags[dom.id] = tuple(tags)

    def _tag_unassign(self, k: "Kernel", dom: Domain, dev: Device, pasid: int) -> None:
        if dom.type in (DomainType.IDENTITY, DomainType.BLOCKED):
            return
        did = self.domain_id(k, dom)
        s = _st(k)
        if dom.id not in s.tags:
            k.warn("vtd_tags_freed", f"cache_tag_unassign_domain(d{dom.id}, {dev.name}, pasid {pasid}): "
                                     f"the domain's tag list was freed")
            return
        gone = [CacheTag("IOTLB", did, pasid, None)]
        if s.info[dev.name].ats_enabled:  # removed, like added, only while ATS is on
            gone.append(CacheTag("DEVTLB", did, pasid, dev.name))
        self._drop_tags(k, dom, gone)
        parent = self._parent(k, dom)
        if parent is not None:
            self._drop_tags(k, parent, _nesting_tags(s, did, pasid, dev))

    def _parent(self, k: "Kernel", dom: Domain) -> Domain | None:
        """A nested domain's parent (dmar_domain->s2_domain)."""
        if dom.type is not DomainType.NESTED or dom.parent is None:
            return None
        return k.domains.get(dom.parent)

    def _drop_tags(self, k: "Kernel", dom: Domain, gone: list[CacheTag]) -> None:
        """cache_tag_unassign: a matching tag loses a user, the last one leaves the list."""
        s = _st(k)
        tags = list(s.tags.get(dom.id, ()))
        for t in gone:
            for i, cur in enumerate(tags):
                if cur.matches(t):
                    if cur.users > 1:
                        tags[i] = CacheTag(cur.type, cur.did, cur.pasid, cur.dev, cur.users - 1)
                    else:
                        del tags[i]
                    break
        s.tags[dom.id] = tuple(tags)

    # ---------------------------------------------------------- PASID entries
    def _get_entry(self, k: "Kernel", dev: Device, pasid: int) -> int | None:
        """intel_pasid_get_entry: the entry's address, allocating the leaf table lazily
        (None: that allocation failed)."""
        s = _st(k)
        info = s.info[dev.name]
        pde_addr = hw.pasid_dir_entry_addr(info.pasid_dir, pasid)
        pde = k.mem.read(pde_addr, 1)
        if not PASID_DIR_ENTRY.get(pde, "p"):
            if k.may_fail(f"intel_pasid_get_entry({dev.name}, pasid {pasid})"):
                return None  # alloc_pgtable_page failed
            table = k.mem.alloc_page()
            k.mem.write(pde_addr, PASID_DIR_ENTRY.encode(p=1, smptblptr=table >> PAGE_SHIFT))
            pde = k.mem.read(pde_addr, 1)
        return hw.pasid_entry_addr_in_table(hw.page_addr(PASID_DIR_ENTRY.get(pde, "smptblptr")), pasid)

    def _setup_entry(self, k: "Kernel", dev: Device, pasid: int, words: tuple[int, ...]) -> int:
        """intel_pasid_setup_*: -EBUSY on a present entry; clear it, fields first, P last
        (A.8.1)."""
        addr = self._get_entry(k, dev, pasid)
        if addr is None:
            return -errno.ENODEV  # intel_pasid_setup_*: no entry -> -ENODEV, not -ENOMEM
        cur = k.mem.read(addr, PASID_ENTRY.words)
        if PASID_ENTRY.get(cur, "p"):
            if k.design.has("vtd.pasid_replace_in_place"):
                return self._replace_in_place(k, dev, pasid, addr, cur, words)
            return -errno.EBUSY
        self._store_pasid(k, dev, pasid, addr, writer.clear_stores(PASID_ENTRY.words, 0)
                          + writer.setup_stores(PASID_ENTRY.set(words, p=1), _clear_p))
        # pasid_flush_caches: not caching mode -> iommu_flush_write_buffer, no descriptor.
        return 0

    def _replace_in_place(self, k: "Kernel", dev: Device, pasid: int, addr: int,
                          cur: tuple[int, ...], words: tuple[int, ...]) -> int:
        """Broken variant vtd.pasid_replace_in_place: the v6.13-v6.19
        intel_pasid_replace_* helpers (7543ee63e811, removed by c3b1edea3791,
        CVE-2026-45945): the new entry copied over the live one, then
        intel_pasid_flush_present with the old DID, then the PRQ drain."""
        old_did, pgtt = PASID_ENTRY.get(cur, "did"), PASID_ENTRY.get(cur, "pgtt")
        self._store_pasid(k, dev, pasid, addr, writer.copy_stores(PASID_ENTRY.set(words, p=1)))
        self._submit(k, hw.qi_desc_pasid_cache(old_did, PcGran.PASID_SEL, pasid))
        self._flush_entry_tlbs(k, dev, pasid, old_did, pgtt)
        self._drain_prq(k, dev, pasid)
        return 0

    def _store_pasid(self, k: "Kernel", dev: Device, pasid: int, addr: int,
                     stores: list[writer.Store[int]]) -> None:
        def probe(words: tuple[int, ...]) -> CacheEntry:
            return PasidCacheEntry(dev.sid, PASID_ENTRY.get(words, "did"), pasid, words)
        self._store(k, addr, PASID_ENTRY, stores, f"PASID entry {pasid} of {dev.name}", probe)

    def _store_context(self, k: "Kernel", rid: int, addr: int, stores: list[writer.Store[int]]) -> None:
        def probe(words: tuple[int, ...]) -> CacheEntry:
            return ContextCacheEntry(rid, words)
        self._store(k, addr, CONTEXT_ENTRY, stores, f"context entry of {hw.bdf(rid)}", probe)

    def _store(self, k: "Kernel", addr: int, layout: Layout, stores: list[writer.Store[int]],
               what: str, probe: Callable[[tuple[int, ...]], CacheEntry]) -> None:
        """Run a store program on an entry, 64 bits at a time, keeping its fetch window;
        the first present mix a fetch may assemble is a TORN WARN (writer.py)."""
        unit = _st(k).unit
        w = unit.windows.get(addr)
        if w is None:
            w = unit.windows[addr] = writer.FetchWindow(what, probe, k.mem.read(addr, layout.words))
        for i, v in stores:
            k.mem.write64(addr + 8 * i, v)
            w.events.append(k.mem.read(addr, layout.words))
        w.events.append(writer.END)
        if w.reported:
            return
        torn = w.torn()
        if torn is not None:
            w.reported = True
            cur = w.current()
            k.warn("vtd_torn_entry", f"{what}: a fetch may read [{layout.dump(torn)}], present and "
                                     f"not a value the driver meant it to hold, while it changes "
                                     f"from [{layout.dump(cur.values[0])}] to "
                                     f"[{layout.dump(cur.values[-1])}]")

    def _first_level(self, k: "Kernel", dev: Device, pasid: int, did: int, root: int) -> int:
        """pasid_pte_config_first_level (SVA also sets PWSNP; the model sets it for both)."""
        return self._setup_entry(k, dev, pasid, PASID_ENTRY.encode(
            flptptr=root >> PAGE_SHIFT, did=did, aw=AGAW_4LEVEL, pwsnp=1, pgtt=Pgtt.FL_ONLY,
        ))

    def _second_level(self, k: "Kernel", dev: Device, pasid: int, did: int, root: int) -> int:
        """pasid_pte_config_second_level (a nesting parent attached directly)."""
        return self._setup_entry(k, dev, pasid, PASID_ENTRY.encode(
            slptptr=root >> PAGE_SHIFT, did=did, aw=AGAW_4LEVEL, pwsnp=1, pgtt=Pgtt.SL_ONLY,
        ))

    def _nested(self, k: "Kernel", dev: Device, pasid: int, did: int, s1: int, s2: int) -> int:
        """pasid_pte_config_nestd: FLPTR = the guest's stage-1 table, SLPTPTR = the
        parent's, DID = the nested domain's, PGTT = NESTED (A.8.1; P set last)."""
        return self._setup_entry(k, dev, pasid, PASID_ENTRY.encode(
            flptptr=s1 >> PAGE_SHIFT, slptptr=s2 >> PAGE_SHIFT, did=did, aw=AGAW_4LEVEL,
            pwsnp=1, pgtt=Pgtt.NESTED,
        ))

    def _translating(self, k: "Kernel", dev: Device, pasid: int, dom: Domain, root: int) -> int:
        """The setup helper for a translating domain: first-stage (paging, SVA),
        second-stage (a nesting parent) or nested."""
        did = self.domain_id(k, dom)
        if dom.type is DomainType.NESTED:
            parent = self._parent(k, dom)
            if parent is None or parent.pgtable is None:
                return -errno.EINVAL  # the parent holds a reference: unreachable
            return self._nested(k, dev, pasid, did, root, parent.pgtable)
        if dom.nest_parent:
            return self._second_level(k, dev, pasid, did, root)
        return self._first_level(k, dev, pasid, did, root)

    def _pass_through(self, k: "Kernel", dev: Device, pasid: int) -> int:
        return self._setup_entry(k, dev, pasid, PASID_ENTRY.encode(
            did=FLPT_DEFAULT_DID, aw=AGAW_4LEVEL, pgtt=Pgtt.PT,
        ))

    def _submit(self, k: "Kernel", *descs: QiDesc, drain: bool = False) -> None:
        """qi_submit_sync. A device-TLB descriptor for a function that is gone times out
        (ITE, 6.5.2.10); since 80a9b50c qi_check_fault reads the source ID and, the
        device not being present, returns -ETIMEDOUT (the callers ignore it: the device
        is gone). Before, the ITE path retried the batch forever: a hard lockup."""
        _st(k).unit.qi_submit_sync(*descs, drain=drain)
        if not k.disconnected:
            return
        gone = {k.devices[n].sid: n for n in k.disconnected}
        for d in descs:
            if isinstance(d, (hw.QiDiotlb, hw.QiDeiotlb)) and d.sid in gone:
                if k.design.has("vtd.qi_retry_on_ite"):
                    k.warn("vtd_qi_hang", f"{d} to {gone[d.sid]}, which is gone: the ITE is retried forever")
                return

    def _device_present(self, k: "Kernel", dev: Device) -> bool:
        """pci_device_is_present: the teardown skips the device-TLB flush of a gone device
        (devtlb_invalidation_with_pasid, 4fc82cd907ac / 10e60d87)."""
        return dev.name not in k.disconnected or k.design.has("vtd.devtlb_inv_ignores_presence")

    def tear_down_entry(self, k: "Kernel", dev: Device, pasid: int, fault_ignore: bool) -> None:
        """intel_pasid_tear_down_entry, v7.0 order (A.8.2)."""
        s = _st(k)
        addr = s.unit.pasid_entry_addr(k.mem, dev.sid, pasid)
        if addr is None:
            return
        pte = k.mem.read(addr, PASID_ENTRY.words)
        if not PASID_ENTRY.get(pte, "p"):
            if PASID_ENTRY.get(pte, "fpd"):
                self._store_pasid(k, dev, pasid, addr, writer.clear_stores(PASID_ENTRY.words, 0))
                self._drain_prq(k, dev, pasid)
            elif pte[0]:
                k.warn("vtd_teardown_not_present", f"{dev.name} pasid {pasid} not present but q0 != 0")
            elif not fault_ignore and k.design.has("vtd.drain_on_zero_entry"):
                # proposed fix: an SVA unbind after intel_mm_release finds the entry
                # zeroed (75ed00055c05 clears P first, so the FPD that cf08ca81d08a
                # keys its drain on is never left) and must still drain
                self._drain_prq(k, dev, pasid)
            return
        did = PASID_ENTRY.get(pte, "did")
        pgtt = PASID_ENTRY.get(pte, "pgtt")
        if k.design.has("vtd.did_from_cleared_entry"):
            did = 0  # broken variant: the DID read after the entry was cleared
        if k.design.has("vtd.teardown_zero_present_entry"):
            # broken variant: before 75ed00055c05 the live entry was zeroed whole
            # (intel_pasid_clear_entry) and flushed after
            self._store_pasid(k, dev, pasid, addr, writer.clear_stores(PASID_ENTRY.words, 0))
        else:  # pasid_clear_present, dma_wmb
            self._store_pasid(k, dev, pasid, addr, writer.clear_present_stores(pte[0], _clear_p))
        if not k.design.has("vtd.teardown_skip_pasid_cache"):
            self._submit(k, hw.qi_desc_pasid_cache(did, PcGran.PASID_SEL, pasid))
        self._flush_entry_tlbs(k, dev, pasid, did, pgtt)
        # intel_pasid_clear_entry: the entry is no longer present, so it is zeroed whole.
        if not k.design.has("vtd.teardown_skip_clear_entry") \
                and not k.design.has("vtd.teardown_zero_present_entry"):  # zeroed already
            self._store_pasid(k, dev, pasid, addr, writer.clear_stores(PASID_ENTRY.words, 0))
        if not fault_ignore:
            self._drain_prq(k, dev, pasid)

    def _flush_entry_tlbs(self, k: "Kernel", dev: Device, pasid: int, did: int, pgtt: int) -> None:
        """The IOTLB and device-TLB steps of a PASID entry's teardown (A.8.2 steps 7-8),
        also intel_pasid_flush_present's after an in-place change."""
        if pgtt in (Pgtt.PT, Pgtt.FL_ONLY):
            self._submit(k, hw.qi_desc_piotlb_all(did, pasid))
        else:
            self._submit(k, hw.qi_desc_iotlb(did, 0, 0, hw.IotlbGran.DSI))
        if _st(k).info[dev.name].ats_enabled and not k.design.has("vtd.teardown_skip_devtlb") \
                and self._device_present(k, dev):
            self._submit(k, _devtlb_desc(dev, pasid, 0, MAX_AGAW_PFN_WIDTH))

    def _drain_prq(self, k: "Kernel", dev: Device, pasid: int) -> None:
        """intel_iommu_drain_pasid_prq: only with IOPF enabled on the device (prq.c)."""
        s = _st(k)
        info = s.info[dev.name]
        if not info.iopf_refcount:
            return
        # Wait until the PRQ holds no request of (RID, PASID), then iopf_queue_flush_dev:
        # every queued iopf group's handler has run (prq.c, step 1 and 2).
        k.drain_page_requests(dev.name, pasid)
        rid = k.domains.get(info.rid_domain) if info.rid_domain is not None else None
        did = (self.domain_id(k, rid) if rid is not None and _has_did(rid)
               and rid.id in s.dids else FLPT_DEFAULT_DID)
        # prq.c: a fenced wait WITHOUT status write, then IOTLB and device-TLB
        # invalidations for the PASID (the non-PASID forms for IOMMU_NO_PASID).
        fence = hw.QiIwd(sw=0, fence=1, prq_drain=0, status_data=hw.QI_DONE, status_addr=0)
        if pasid == IOMMU_NO_PASID:
            iotlb: QiDesc = hw.qi_desc_iotlb(did, 0, 0, hw.IotlbGran.DSI)
        else:
            iotlb = hw.qi_desc_piotlb_all(did, pasid)
        self._submit(k, fence, iotlb, _devtlb_desc(dev, pasid, 0, MAX_AGAW_PFN_WIDTH), drain=True)

    # ------------------------------------------------------------ RID attach
    def _block_translation(self, k: "Kernel", dev: Device) -> None:
        """device_block_translation: unassign tags first, then tear the RID entry down."""
        s = _st(k)
        info = s.info[dev.name]
        if info.rid_domain is None:
            return
        old = k.domains.get(info.rid_domain)
        if old is not None:
            self._tag_unassign(k, old, dev, IOMMU_NO_PASID)
        self.tear_down_entry(k, dev, IOMMU_NO_PASID, False)
        s.info[dev.name] = replace(info, rid_domain=None)
        if old is not None:
            self._detach_iommu(k, old)

    def attach_dev(self, k: "Kernel", dom: Domain, dev: Device, old: Domain | None) -> int:
        s = _st(k)
        self._block_translation(k, dev)
        if dom.type is DomainType.BLOCKED:
            return 0
        if dom.type is DomainType.IDENTITY:
            ret = self._pass_through(k, dev, IOMMU_NO_PASID)
        else:
            assert dom.pgtable is not None
            ret = self._attach_iommu(k, dom)
            if ret:
                return ret
            ret = self._translating(k, dev, IOMMU_NO_PASID, dom, dom.pgtable)
            if ret:
                self._detach_iommu(k, dom)
                return ret
            self._tag_assign(k, dom, dev, IOMMU_NO_PASID)
        if ret == 0:
            info = s.info[dev.name]
            s.info[dev.name] = replace(info, rid_domain=dom.id)
        return ret

    # ----------------------------------------------------------- PASID attach
    def _add_dev_pasid(self, k: "Kernel", dom: Domain, dev: Device, pasid: int) -> int:
        """domain_add_dev_pasid: DID + cache tags before the entry switches."""
        ret = self._attach_iommu(k, dom)
        if ret:
            return ret
        self._tag_assign(k, dom, dev, pasid)
        s = _st(k)
        s.dev_pasids[dom.id] = s.dev_pasids.get(dom.id, ()) + ((dev.name, pasid),)
        return 0

    def _remove_dev_pasid(self, k: "Kernel", old: Domain | None, dev: Device, pasid: int) -> None:
        """domain_remove_dev_pasid: after the old entry was torn down and flushed."""
        if old is None or old.type in (DomainType.IDENTITY, DomainType.BLOCKED):
            return
        s = _st(k)
        if _has_did(old) and old.id not in s.dids:
            # domain_id_iommu() on a domain never attached to this unit: a NULL
            # iommu_domain_info dereference in the kernel.
            k.warn("vtd_no_did", f"domain_remove_dev_pasid: d{old.id} has no DID on this IOMMU")
            return
        pairs = list(s.dev_pasids.get(old.id, ()))
        if (dev.name, pasid) in pairs:
            pairs.remove((dev.name, pasid))
        else:
            k.warn("vtd_dev_pasid_missing", f"{dev.name} pasid {pasid} not in d{old.id}'s dev_pasids")
        s.dev_pasids[old.id] = tuple(pairs)
        self._tag_unassign(k, old, dev, pasid)
        self._detach_iommu(k, old)

    def _iopf(self, k: "Kernel", dev: Device, delta: int) -> None:
        """intel_iommu_enable_iopf / disable_iopf: the first user adds the device to the
        IOMMU's iopf queue, the last one removes it (iopf_queue_remove_device)."""
        s = _st(k)
        info = s.info[dev.name]
        s.info[dev.name] = replace(info, iopf_refcount=max(0, info.iopf_refcount + delta))
        if delta < 0 and info.iopf_refcount == 1:
            k.iopf_queue_remove_device(dev.name)

    # ------------------------------------------------------ page requests
    def iopf_enabled(self, k: "Kernel", dev: Device) -> bool:
        return _st(k).info[dev.name].iopf_refcount > 0

    def page_response(self, k: "Kernel", dev: Device, pasid: int, code: PageResp) -> None:
        """intel_iommu_page_response: a page group response descriptor. The kernel puts
        msg->code (enum iommu_page_response_code: SUCCESS 0, INVALID 1, FAILURE 2) into
        the 4-bit response code field as it is, and the PCIe code for Response Failure
        is 0xF (QI_RESP_FAILURE): FAILURE goes out as the reserved code 2."""
        raw = _PCIE_CODE[code] if k.design.has("vtd.page_response_pcie_codes") else code.value
        self._submit(k, hw.qi_desc_page_response(dev.sid, pasid, raw))

    def prg_responses(self, k: "Kernel") -> list[tuple[int, str, int]]:
        return [(d.rid, str(d), d.resp_code) for d in _st(k).unit.qi_log if isinstance(d, hw.QiPgrpResp)]

    def set_dev_pasid(
        self, k: "Kernel", dom: Domain, dev: Device, pasid: int, old: Domain | None
    ) -> int:
        if dom.type is DomainType.BLOCKED:
            # blocking_domain_set_dev_pasid: tear down (and drain), then disable IOPF
            sva = old is not None and old.type is DomainType.SVA
            early = sva and k.design.has("vtd.iopf_disable_before_teardown")
            if early:
                self._iopf(k, dev, -1)  # broken variant: the drain then finds IOPF off
            self.tear_down_entry(k, dev, pasid, False)
            if sva and not early:
                self._iopf(k, dev, -1)
            self._remove_dev_pasid(k, old, dev, pasid)
            return 0
        in_place = k.design.has("vtd.pasid_replace_in_place")
        if dom.type is DomainType.IDENTITY:
            if old is not None and not in_place:
                self.tear_down_entry(k, dev, pasid, False)
            ret = self._pass_through(k, dev, pasid)
            if ret:
                return ret
            self._remove_dev_pasid(k, old, dev, pasid)
            return 0
        # paging (intel_iommu_set_dev_pasid) or SVA (intel_svm_set_dev_pasid)
        if dom.type is DomainType.SVA:
            mm = k.mms.get(dom.mm) if dom.mm is not None else None
            if mm is None:
                return -errno.EINVAL  # the SVA domain holds mm_count: unreachable
            # An exited mm too (pci_dev_reset_iommu_done re-sets the PASIDs it blocked):
            # intel_svm_set_dev_pasid points the entry at mm->pgd, whose user half
            # exit_mmap emptied, so the DMA faults; the pgd lives until __mmdrop.
            root = mm.pgd
        else:
            assert dom.pgtable is not None
            root = dom.pgtable
        ret = self._add_dev_pasid(k, dom, dev, pasid)
        if ret:
            return ret
        if dom.type is DomainType.SVA:
            if not dev.ats:
                # iopf_for_domain_replace -> intel_iommu_enable_iopf: no PRI, -ENODEV
                self._remove_dev_pasid(k, dom, dev, pasid)
                return -errno.ENODEV
            self._iopf(k, dev, +1)
        if old is not None and not in_place:
            self.tear_down_entry(k, dev, pasid, False)
        ret = self._translating(k, dev, pasid, dom, root)
        if ret:
            if dom.type is DomainType.SVA:
                self._iopf(k, dev, -1)
            self._remove_dev_pasid(k, dom, dev, pasid)
            return ret
        if old is not None and old.type is DomainType.SVA:
            self._iopf(k, dev, -1)
        self._remove_dev_pasid(k, old, dev, pasid)
        return 0

    # ------------------------------------------------------------ flushes
    def _flush_range(self, k: "Kernel", dom: Domain, start: int, end: int, ih: int = 0) -> None:
        """cache_tag_flush_range(domain, start, end): `end` inclusive; (0, ULONG_MAX) is
        cache_tag_flush_all. One (address, mask) for every tag, from
        calculate_psi_aligned_address; first-stage IOTLB tags take P_IOTLB
        page-selective, or all of the PASID when the mask reaches 52."""
        descs: list[QiDesc] = []
        if start == 0 and end == ULONG_MAX:
            addr, order = 0, MAX_AGAW_PFN_WIDTH
        elif k.design.has("vtd.psi_mask_from_page_count"):
            addr, order = _psi_from_page_count(start, end)
        else:
            addr, order = calculate_psi_aligned_address(start, end)
        piotlb = _use_piotlb(dom)
        for t in _st(k).tags.get(dom.id, ()):
            if t.type.startswith("NESTING") and k.design.has("vtd.parent_flush_skips_nesting_tags"):
                continue  # broken variant: v6.7's nesting, before 821985301124 / 5e54e861f16f
            if t.type in ("IOTLB", "NESTING_IOTLB"):
                if piotlb:
                    # first-stage users flush by (DID, PASID): intel_domain_use_piotlb
                    if order >= MAX_AGAW_PFN_WIDTH:
                        descs.append(hw.qi_desc_piotlb_all(t.did, t.pasid))
                    else:
                        descs.append(hw.qi_desc_piotlb(t.did, t.pasid, addr, order, ih))
                elif order >= MAX_AGAW_PFN_WIDTH:
                    # a second-stage domain (the parent: its own tags and its NESTING_IOTLB
                    # tags alike) flushes by DID: DSI for the whole range
                    descs.append(hw.qi_desc_iotlb(t.did, 0, 0, hw.IotlbGran.DSI))
                else:
                    descs.append(hw.qi_desc_iotlb(t.did, addr | ih, order, hw.IotlbGran.PSI))
            else:
                assert t.dev is not None
                if t.type == "NESTING_DEVTLB" and not k.design.has("vtd.nested_devtlb_by_parent_range"):
                    # "no easy way to identify the exact set of nested translations affected
                    # by a change in S2. So just flush the entire device cache": the loop's
                    # own address and mask, so every later tag is flushed whole too
                    addr, order = 0, MAX_AGAW_PFN_WIDTH
                descs.append(_devtlb_desc(k.devices[t.dev], t.pasid, addr, order))
        if descs:
            self._submit(k, *descs)

    def iotlb_sync(self, k: "Kernel", dom: Domain, start: int, end: int, pgsize: int = PAGE_SIZE,
                   freed: bool = False) -> None:
        """intel_iommu_tlb_sync: cache_tag_flush_range over the gather (end inclusive; the
        gather's pgsize plays no part: the address mask comes from the range alone), IH =
        iommu_pages_list_empty(&gather->freelist): 1 (leaf entries only; the
        paging-structure caches may keep theirs) unless the unmap put a page-table page on
        the freelist (`freed`), then 0, so the paging-structure caches drop their pointers
        before iommu_put_pages_list frees the pages."""
        ih = 0 if freed and not k.design.has("vtd.tlb_sync_ih_with_freelist") else 1
        self._flush_range(k, dom, start, end, ih=ih)

    def unmap_table(self, k: "Kernel", dom: Domain, start: int, end: int, table: int) -> None:
        """A fully covered table goes on the gather's freelist (domain_unmap up to v6.18;
        v7.0's iommupt __unmap_range when the unmap cleared the whole table: see the core's
        _unmap_region); intel_iommu_tlb_sync flushes with IH = 0, then frees the list."""
        self.iotlb_sync(k, dom, start, end, freed=True)
        k.free_table_page(table, "iommu_put_pages_list (intel_iommu_tlb_sync)")

    def walk_cache_entries(self, k: "Kernel") -> set[hw.PscEntry]:
        return _st(k).unit.psc

    def flush_iotlb_all(self, k: "Kernel", dom: Domain) -> None:
        """intel_flush_iotlb_all: cache_tag_flush_all."""
        self._flush_range(k, dom, 0, ULONG_MAX)

    def invalidate_secondary_tlbs(self, k: "Kernel", dom: Domain, start: int, end: int) -> None:
        """intel_arch_invalidate_secondary_tlbs: (0, ULONG_MAX) flushes all, otherwise
        cache_tag_flush_range(start, end - 1): the mm's end is exclusive."""
        if start == 0 and end == ULONG_MAX:
            self._flush_range(k, dom, 0, ULONG_MAX)
        else:
            # IH = 0: the notifier is not told whether the CPU freed page-table pages
            ih = 1 if k.design.has("vtd.notifier_leaf_only") else 0
            self._flush_range(k, dom, start, end - 1, ih=ih)

    def mm_release(self, k: "Kernel", dom: Domain) -> None:
        """intel_mm_release: tear every (dev, PASID) of the SVA domain down, faults ignored."""
        for dev_name, pasid in _st(k).dev_pasids.get(dom.id, ()):
            self.tear_down_entry(k, k.devices[dev_name], pasid, True)

    def domain_alloc_nested(self, k: "Kernel", dev: Device, parent: Domain, dom: Domain) -> int:
        """intel_iommu_domain_alloc_nested: the parent must be a second-stage paging
        domain allocated as a nesting parent (-EINVAL); links into its s1_domains."""
        if not parent.nest_parent or not parent.type.is_paging:
            return -errno.EINVAL
        return 0

    def domain_free(self, k: "Kernel", dom: Domain) -> None:
        s = _st(k)
        if dom.nest_parent and k.nested_on(dom.id):
            # intel_iommu_domain_free: WARN_ON(!list_empty(&dmar_domain->s1_domains))
            k.warn("vtd_parent_freed_with_nested", f"d{dom.id} freed while nested domains "
                                                   f"{', '.join(f'd{d}' for d in k.nested_on(dom.id))} "
                                                   f"are on its s1_domains")
        s.tags.pop(dom.id, None)
        s.dev_pasids.pop(dom.id, None)

    # ------------------------------------------------------------ hardware
    def translate(self, k: "Kernel", dev: Device, pasid: int | None, iova: int,
                  access: Access) -> frozenset[Outcome]:
        return hw.translate(_st(k).unit, k.mem, dev.wire_sid, pasid, iova, access)

    def fill(self, k: "Kernel", dev: Device, pasid: int | None, iova: int, access: Access) -> None:
        hw.fill(_st(k).unit, k.mem, dev.wire_sid, pasid, iova, access)

    sva_walks_kernel_half = True

    def fill_kernel_half(self, k: "Kernel", dev: Device, pasid: int, kva: int) -> None:
        """The first-stage walk of a PASID whose table is a CPU page table (an SVA domain)
        reaches the kernel half: pgd_alloc copied init_mm's upper entries into every mm,
        so the walk goes through the kernel's leaf table and caches the pointer, and only
        the leaf's U/S = 0 faults the user request (e37d5a2d60a3: "the IOMMU will still
        walk kernel-only page tables all the way down to the leaf")."""
        if k.kernel_pgd is None:
            return
        cpu_tables = frozenset(m.pgd for m in k.mms.values())
        hw.fill_kernel_half(_st(k).unit, k.mem, dev.wire_sid, pasid, cpu_tables, k.kernel_pgd, kva)

    # ------------------------------------------------------- introspection
    def cached_translations(self, k: "Kernel") -> list[tuple[tuple[Any, ...], int, int, str]]:
        return [
            (("did", e.did, e.pasid), e.iova_pfn, e.pfn, str(e))
            for e in _st(k).unit.iotlb
            if not e.pt and e.ipa_pfn is None  # combined entries: nested_translations
        ]

    def nested_translations(self, k: "Kernel") -> list[tuple[tuple[Any, ...], int, int, int, str]]:
        return [(("did", e.did, e.pasid), e.iova_pfn, e.ipa_pfn, e.pfn, str(e))
                for e in _st(k).unit.iotlb if e.ipa_pfn is not None]

    def tag_nested_domains(self, k: "Kernel", tag: tuple[Any, ...]) -> list[int]:
        """The nested domains holding the tag's DID (the PASID does not name a domain)."""
        _, did, _ = tag
        return sorted(d for d, (x, _) in _st(k).dids.items()
                      if x == did and (dom := k.domains.get(d)) is not None
                      and dom.type is DomainType.NESTED)

    def installed(self, k: "Kernel") -> list[tuple[int, int | None, tuple[Any, ...], int, str]]:
        """Present first-stage and nested PASID entries of every probed device, walked through
        memory (a nested entry's root is its stage-1 table: one (DID, PASID) tag, one table)."""
        s = _st(k)
        out: list[tuple[int, int | None, tuple[Any, ...], int, str]] = []
        for name, info in s.info.items():
            dev = k.devices[name]
            for pasid, pe in self._present_entries(k, info):
                pgtt = _PE_PGTT.extract(pe)
                if pgtt not in (Pgtt.FL_ONLY, Pgtt.NESTED):
                    continue
                did = _PE_DID.extract(pe)
                root = _PE_FLPTPTR.extract(pe) << PAGE_SHIFT
                out.append((dev.sid, pasid, ("did", did, pasid), root,
                            f"{name} pasid {pasid}: PASID entry p=1 pgtt={Pgtt(pgtt).name} "
                            f"did={did} flptptr={root >> PAGE_SHIFT:#x}"))
        return out

    def _present_entries(self, k: "Kernel", info: DevInfo) -> list[tuple[int, tuple[int, ...]]]:
        """(pasid, entry) for every present PASID entry reachable from the device's directory.

        Hot path of the invariants: reads the sparse memory directly (P is bit 0 of
        q0 in both the directory entry and the PASID entry, hw-tables A.4/A.5).
        """
        words = k.mem.words
        out = []
        base, end = info.pasid_dir, info.pasid_dir + 4096 * info.dir_pages
        for addr in sorted(a for a in words if base <= a < end):
            pde = words[addr]
            if not pde & _P_BIT:
                continue
            table = _PDE_PTR.extract((pde,)) << PAGE_SHIFT
            first = ((addr - base) // 8) << 6
            for j in range(64):
                q0 = words.get(table + 64 * j, 0)
                if q0 & _P_BIT:
                    out.append((first | j, k.mem.read(table + 64 * j, 8)))
        return out

    def tag_owner_roots(self, k: "Kernel", tag: tuple[Any, ...]) -> set[int]:
        """DID 1: the process whose PASID it is; other DIDs: the paging domain holding the DID."""
        _, did, pasid = tag
        if did == FLPT_DEFAULT_DID:
            return {m.pgd for m in k.mms.values() if m.pasid == pasid}
        s = _st(k)
        roots = set()
        for dom_id, (d, _) in s.dids.items():
            dom = k.domains.get(dom_id)
            if dom is not None and dom.pgtable is not None and self.domain_id(k, dom) == did:
                roots.add(dom.pgtable)
        return roots

    def refcounts(self, k: "Kernel") -> list[tuple[str, int, int]]:
        """iommu_domain_info refcnt = the domain's attachments on this IOMMU (RID and PASID);
        each cache tag's users = the attachments that assigned it (cache_tag_assign)."""
        s = _st(k)
        att = k.attachments()
        out: list[tuple[str, int, int]] = []
        for dom_id, (did, ref) in sorted(s.dids.items()):
            out.append((f"d{dom_id}'s DID {did} refcnt", ref, len(att.get(dom_id, ()))))
        for dom_id in sorted(set(s.tags) | set(att)):
            dom = k.domains.get(dom_id)
            if dom is None or dom.type in (DomainType.IDENTITY, DomainType.BLOCKED):
                continue
            if _has_did(dom) and dom_id not in s.dids:
                continue  # no DID on this IOMMU: the leak / DID checks speak of it
            did = self.domain_id(k, dom)
            want: dict[tuple[str, int, int, str | None], int] = {}
            for dev_name, pasid in att.get(dom_id, ()):
                key: tuple[str, int, int, str | None] = ("IOTLB", did, pasid, None)
                want[key] = want.get(key, 0) + 1
                if s.info[dev_name].ats_enabled:
                    key = ("DEVTLB", did, pasid, dev_name)
                    want[key] = want.get(key, 0) + 1
            for nested in k.nested_on(dom_id):  # the parent's NESTING tags
                ndom = k.domains[nested]
                if nested not in s.dids:
                    continue
                ndid = self.domain_id(k, ndom)
                for dev_name, pasid in att.get(nested, ()):
                    for t in _nesting_tags(s, ndid, pasid, k.devices[dev_name]):
                        key = (t.type, t.did, t.pasid, t.dev)
                        want[key] = want.get(key, 0) + 1
            have = {(t.type, t.did, t.pasid, t.dev): t.users for t in s.tags.get(dom_id, ())}
            for key in sorted(set(want) | set(have), key=repr):
                typ, tdid, pasid, tdev = key
                what = f"d{dom_id}'s {typ} cache tag (DID {tdid}, PASID {pasid}{', ' + tdev if tdev else ''}) users"
                out.append((what, have.get(key, 0), want.get(key, 0)))
        return out

    def leaks(self, k: "Kernel") -> list[str]:
        s = _st(k)
        out = [f"DID {did} is held for d{d}, which was freed (nobody can ida_free it)"
               for d, (did, _) in sorted(s.dids.items()) if d not in k.domains]
        out += [f"the PASID table of {n} stays allocated after iommu_release_device"
                for n in sorted(s.info) if n in k.released]
        out += [f"cache tags of freed d{d} are still on its list" for d, t in sorted(s.tags.items())
                if t and d not in k.domains]
        return out

    def pasids_in_hw(self, k: "Kernel") -> set[int]:
        s = _st(k)
        held = {pasid for _, pasid, _, _, _ in k.memoized("installed", lambda: self.installed(k))
                if pasid is not None}
        held |= {e.pasid for e in s.unit.pasid_cache}
        held |= {e.pasid for e in s.unit.iotlb if e.pasid is not None}
        held |= {e.pasid for e in s.unit.devtlb if e.pasid is not None}
        held |= {e.pasid for e in s.unit.psc if e.pasid is not None}
        held.discard(IOMMU_NO_PASID)
        return held

    def device_gone(self, k: "Kernel", dev: Device) -> None:
        _st(k).unit.device_gone(dev.sid)

    def ats_invalidations(self, k: "Kernel") -> list[tuple[int, str]]:
        """Device-TLB and PASID-based device-TLB descriptors (6.5.2.5, 6.5.2.6)."""
        return [(d.sid, str(d)) for d in _st(k).unit.qi_log if isinstance(d, (hw.QiDiotlb, hw.QiDeiotlb))]

    def begin_step(self, k: "Kernel") -> None:
        _st(k).unit.windows.clear()  # a fetch does not outlive a step (writer.py rule 4)

    def take_hw_log(self, k: "Kernel") -> list[str]:
        unit = _st(k).unit
        out = [str(d) for d in unit.qi_log]
        unit.qi_log.clear()
        unit.windows.clear()  # a fetch does not outlive a step (writer.py rule 4)
        return out

    def dump(self, k: "Kernel") -> list[str]:
        return hw.dump(_st(k).unit, k.mem)


def _has_did(dom: Domain) -> bool:
    """Domains that take a DID of their own per IOMMU (domain_attach_iommu): paging and
    nested; SVA and identity use FLPT_DEFAULT_DID."""
    return dom.type.is_paging or dom.type is DomainType.NESTED


def _use_piotlb(dom: Domain) -> bool:
    """intel_domain_use_piotlb: first-stage users (SVA, NESTED, first-stage paging) are
    flushed by (DID, PASID); a second-stage domain (the model's nesting parent) by DID."""
    return not dom.nest_parent


def _nesting_tags(s: VtdState, did: int, pasid: int, dev: Device) -> list[CacheTag]:
    """__cache_tag_assign_parent_domain: NESTING_IOTLB, and NESTING_DEVTLB with ATS on."""
    out = [CacheTag("NESTING_IOTLB", did, pasid, None)]
    if s.info[dev.name].ats_enabled:
        out.append(CacheTag("NESTING_DEVTLB", did, pasid, dev.name))
    return out


def _clear_p(q0: int) -> int:
    return q0 & ~writer.PRESENT


def _devtlb_desc(dev: Device, pasid: int, addr: int, order: int) -> QiDesc:
    """The device-TLB invalidation of (dev, pasid) over 2^order pages at addr: the
    non-PASID form for IOMMU_NO_PASID (qi_flush_dev_iotlb), the PASID form otherwise."""
    if pasid == IOMMU_NO_PASID:
        return hw.qi_desc_dev_iotlb(dev.sid, dev.sid, 0, addr, order)
    return hw.qi_desc_dev_iotlb_pasid(dev.sid, dev.sid, pasid=pasid, qdep=0, addr=addr,
                                      size_order=order)


def calculate_psi_aligned_address(start: int, end: int) -> tuple[int, int]:
    """cache.c calculate_psi_aligned_address: the naturally aligned power-of-two span of
    pages that covers [start, end] (end inclusive), as (address, mask = log2 pages).
    The page count rounds up to a power of two; when the start is not aligned to it, the
    mask grows to the lowest bit above it in which the first and last page agree (52,
    the whole address space, if none): an unaligned range may need a span much wider
    than its length."""
    pages = (((start & (PAGE_SIZE - 1)) + (end - start + 1) + PAGE_SIZE - 1) >> PAGE_SHIFT)
    aligned = 1 << (pages - 1).bit_length()  # __roundup_pow_of_two
    bitmask = aligned - 1
    mask = aligned.bit_length() - 1
    pfn = start >> PAGE_SHIFT
    if pfn & bitmask:
        end_pfn = pfn + pages - 1
        shared = ~(pfn ^ end_pfn) & ~bitmask & ULONG_MAX
        mask = (shared & -shared).bit_length() - 1 if shared else MAX_AGAW_PFN_WIDTH
    return start & ~((PAGE_SIZE << mask) - 1) & ULONG_MAX, mask


def _psi_from_page_count(start: int, end: int) -> tuple[int, int]:
    """Broken variant vtd.psi_mask_from_page_count: the mask from the page count alone and
    the address aligned down to it (what qi_desc_piotlb did with an unaligned address
    before calculate_psi_aligned_address: WARN_ON_ONCE, then align down), so a range
    that crosses a boundary of its own size loses its tail."""
    pages = ((end >> PAGE_SHIFT) - (start >> PAGE_SHIFT)) + 1
    mask = ((1 << (pages - 1).bit_length())).bit_length() - 1
    return start & ~((PAGE_SIZE << mask) - 1), mask


# -- canonical form helpers (explorer) ------------------------------------------------------
def _root_field(name: str) -> tuple[int, int, int]:
    f = PASID_ENTRY[name]
    return (f.mask, f.lo, PAGE_SHIFT)


#: qword of a PASID entry -> (mask, lo, shift) of the root pointer it holds
_PE_ROOT_FIELDS: dict[int, tuple[int, int, int]] = {
    PASID_ENTRY["slptptr"].word: _root_field("slptptr"),
    PASID_ENTRY["flptptr"].word: _root_field("flptptr"),
}


_SL, _FL = _root_field("slptptr"), _root_field("flptptr")
assert (PASID_ENTRY["slptptr"].word, PASID_ENTRY["flptptr"].word) == (0, 2)


def _canon_pasid_entry(words: tuple[int, ...], ren: Any) -> tuple[Any, ...]:
    """A cached PASID entry with its page-table pointers (q0 SLPTPTR, q2 FLPTPTR) renamed."""
    rf = ren.root_field
    return (rf(words[0], *_SL), words[1], rf(words[2], *_FL), *words[3:])
