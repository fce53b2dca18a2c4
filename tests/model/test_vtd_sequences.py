"""Exact queued-invalidation sequences of the VT-d driver model, call by call.

Every test boots the upstream world of `checker.world` (dev0: sid 0x08, ATS, 4
PASIDs; dev1: sid 0x10, no ATS, 4 PASIDs; both bound to a DMA-API driver on
their DMA default domain), clears the QI log, makes ONE kernel call and compares
the descriptors the driver issued -- as `hwspec.vtd` dataclasses, in order --
with the kernel's sequence (hw-tables.md A.7-A.12), then decodes the PASID
entry the call left behind.

Fixed facts of that world that the expected values use:

* DIDs come from one per-unit allocator starting at IDA_START_DID (2): the
  default domains hold DID 2 (dev0) and DID 3 (dev1); the next paging domain
  attached gets the lowest free DID. SVA entries use FLPT_DEFAULT_DID (1).
* `qi_submit_sync` appends one wait descriptor (STATUS_WRITE, data QI_DONE, no
  FENCE); each teardown flush is its own `qi_submit_sync` (A.8.2), a cache-tag
  flush is one batch with one wait (A.10).
* Not caching mode: setting a PASID entry up issues no descriptor (A.8.1).

RID attach path. The world boots with a DMA-API driver bound (owner_cnt 1,
owner NULL), and `iommu_attach_device` itself does not look at ownership, so a
caller that follows the rules first lets the driver go: either
`iommu_device_unuse_default_domain` (the group stays on its default domain, so
the attach tears the default domain's RID entry down with ITS DID and sets the
new one up: the full break-before-make of A.11 in one call), or
`iommu_device_claim_dma_owner` after the unuse (VFIO's way: the claim parks the
RID on the blocked domain, which is where the teardown happens, and the attach
from blocked is a pure setup with no descriptor). Both are tested.
"""

from __future__ import annotations

import errno
import pytest

from checker.world import Config
from hwspec.memory import PAGE_SHIFT
from hwspec.outcome import Access
from hwspec.vtd import (
    CONTEXT_ENTRY,
    FLPT_DEFAULT_DID,
    PASID_ENTRY,
    QI_DONE,
    EiotlbGran,
    IotlbGran,
    PcGran,
    Pgtt,
    QiDeiotlb,
    QiDesc,
    QiDiotlb,
    QiEiotlb,
    QiIotlb,
    QiIwd,
    QiPc,
    VtdUnit,
)
from model.bounds import Bounds
from model.core import Kernel
from model.design import UPSTREAM
from model.drivers.vtd import CacheTag
from model.objects import IS_ERR, ErrPtr

PA0 = 0x8000_0000
PA1 = 0x8000_1000

DEV0_SID = 0x08
DEV1_SID = 0x10
#: (device, sid, ATS, DID of its default domain at boot)
DEVICES = [("dev0", DEV0_SID, True, 2), ("dev1", DEV1_SID, False, 3)]
#: ADDR[63:12] of a device-TLB descriptor covering everything (size order 52):
#: every bit below bit 63 set (A.7 size encoding), both forms.
DEVTLB_ALL_ADDR = (1 << 51) - 1


# -- world and log helpers ---------------------------------------------------------------
@pytest.fixture
def k() -> Kernel:
    return Config(UPSTREAM, "vtd", Bounds(ats_devices=1)).build()


def unit(k: Kernel) -> VtdUnit:
    return k.drv.unit  # type: ignore[attr-defined, no-any-return]


def take(k: Kernel) -> list[QiDesc]:
    """The descriptors executed since the last call, as objects; the log is emptied
    (the same log `k.driver.take_hw_log` renders as text)."""
    log = list(unit(k).qi_log)
    unit(k).qi_log.clear()
    return log


# -- the kernel's descriptors, built field by field (A.7) ----------------------------------
W = QiIwd(sw=1, fence=0, prq_drain=0, status_data=QI_DONE, status_addr=0)  # qi_submit_sync's wait


def pc(did: int, pasid: int) -> QiPc:
    return QiPc(gran=PcGran.PASID_SEL, did=did, pasid=pasid)


def piotlb_all(did: int, pasid: int) -> QiEiotlb:
    return QiEiotlb(gran=EiotlbGran.NONG_PASID, did=did, pasid=pasid, addr=0, ih=0, am=0)


def piotlb_psi(did: int, pasid: int, iova: int, am: int = 0, ih: int = 0) -> QiEiotlb:
    return QiEiotlb(gran=EiotlbGran.PSI_PASID, did=did, pasid=pasid, addr=iova >> PAGE_SHIFT,
                    ih=ih, am=am)


def devtlb_all(sid: int) -> QiDiotlb:
    return QiDiotlb(sid=sid, pfsid=sid, qdep=0, addr=DEVTLB_ALL_ADDR, s=1)


def devtlb_pasid_all(sid: int, pasid: int) -> QiDeiotlb:
    return QiDeiotlb(sid=sid, pasid=pasid, pfsid=sid, qdep=0, addr=DEVTLB_ALL_ADDR, s=1)


def teardown(did: int, pasid: int, sid: int, ats: bool) -> list[QiDesc]:
    """intel_pasid_tear_down_entry for a first-stage entry, v7.0 (A.8.2 steps 6-8): each
    flush its own qi_submit_sync; the device-TLB only with ATS, the PASID form for PASID != 0."""
    seq: list[QiDesc] = [pc(did, pasid), W, piotlb_all(did, pasid), W]
    if ats:
        seq += [devtlb_all(sid) if pasid == 0 else devtlb_pasid_all(sid, pasid), W]
    return seq


def spy_execute(k: Kernel, monkeypatch: pytest.MonkeyPatch
                ) -> list[tuple[QiDesc, dict[int, tuple[CacheTag, ...]], dict[int, tuple[int, int]]]]:
    """Record, at each executed descriptor, the domains' cache tags and DIDs of that moment."""
    seen: list[tuple[QiDesc, dict[int, tuple[CacheTag, ...]], dict[int, tuple[int, int]]]] = []
    real = VtdUnit.execute

    def spy(self: VtdUnit, desc: QiDesc) -> None:
        drv = k.drv
        seen.append((desc, dict(drv.tags), dict(drv.dids)))  # type: ignore[attr-defined]
        real(self, desc)

    monkeypatch.setattr(VtdUnit, "execute", spy)
    return seen


def is_fence_wait(d: QiDesc) -> bool:
    return isinstance(d, QiIwd) and d.fence == 1 and d.prq_drain == 0 and d.status_data == QI_DONE


DRAIN_WAIT = QiIwd(sw=1, fence=0, prq_drain=1, status_data=QI_DONE, status_addr=0)


# -- table decoding -------------------------------------------------------------------
def pasid_entry(k: Kernel, dev: str, pasid: int) -> tuple[int, ...]:
    addr = unit(k).pasid_entry_addr(k.mem, k.devices[dev].sid, pasid)
    assert addr is not None, f"{dev} pasid {pasid}: no PASID table reachable"
    return k.mem.read(addr, PASID_ENTRY.words)


def fl_entry_fields(k: Kernel, dev: str, pasid: int) -> dict[str, int]:
    return PASID_ENTRY.decode(pasid_entry(k, dev, pasid))


def assert_first_level(k: Kernel, dev: str, pasid: int, did: int, root: int) -> None:
    """A present first-stage entry (pasid_pte_config_first_level, A.5.1)."""
    words = pasid_entry(k, dev, pasid)
    f = PASID_ENTRY.decode(words)
    assert f["p"] == 1
    assert f["fpd"] == 0
    assert f["pgtt"] == Pgtt.FL_ONLY
    assert f["did"] == did
    assert f["flptptr"] == root >> PAGE_SHIFT
    assert f["aw"] == 2  # 4-level, 48-bit
    assert f["flpm"] == 0
    assert f["slptptr"] == 0
    assert words[3:] == (0, 0, 0, 0, 0)


def assert_zero_entry(k: Kernel, dev: str, pasid: int) -> None:
    assert pasid_entry(k, dev, pasid) == (0,) * 8


def pgtable(k: Kernel, dom: int) -> int:
    root = k.domains[dom].pgtable
    assert root is not None
    return root


def paging_domain(k: Kernel, dev: str = "dev0") -> int:
    d = k.iommu_paging_domain_alloc(dev)
    assert isinstance(d, int) and not IS_ERR(d)
    return d


def dids(k: Kernel) -> dict[int, tuple[int, int]]:
    return dict(k.drv.dids)  # type: ignore[attr-defined]


def tags(k: Kernel, dom: int) -> tuple[CacheTag, ...]:
    return k.drv.tags.get(dom, ())  # type: ignore[attr-defined, no-any-return]


def default_domain(k: Kernel, dev: str) -> int:
    g = k.group_of(dev)
    assert g is not None and g.default_domain is not None
    return g.default_domain


# ======================================================================== boot state
@pytest.mark.parametrize("dev,sid,ats,did", DEVICES)
def test_boot_rid_entry_is_first_level_on_the_default_domain(k: Kernel, dev: str, sid: int,
                                                            ats: bool, did: int) -> None:
    assert take(k) == []  # boot issued nothing (non-caching mode setup)
    assert_first_level(k, dev, 0, did, pgtable(k, default_domain(k, dev)))
    ctx = unit(k).read_context_entry(k.mem, sid)
    assert ctx is not None
    c = CONTEXT_ENTRY.decode(ctx)
    assert (c["p"], c["fpd"], c["paside"], c["dte"], c["rid_pasid"]) == (1, 0, 1, int(ats), 0)
    assert c["pdts"] == 2  # one-page directory: 2^(2+7) entries (A.3)
    expected_tags = [CacheTag("IOTLB", did, 0, None)]
    if ats:
        expected_tags.append(CacheTag("DEVTLB", did, 0, dev))
    assert list(tags(k, default_domain(k, dev))) == expected_tags


# ======================================================================== RID attach
@pytest.mark.parametrize("dev,sid,ats,did", DEVICES)
def test_rid_attach_after_unuse_tears_down_default_with_old_did_then_sets_up(
        k: Kernel, dev: str, sid: int, ats: bool, did: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    dflt = default_domain(k, dev)
    k.iommu_device_unuse_default_domain(dev)
    P = paging_domain(k, dev)
    seen = spy_execute(k, monkeypatch)
    take(k)
    assert k.iommu_attach_device(P, dev) == 0
    monkeypatch.undo()
    # A.11 (device_block_translation): the old domain's tags are unassigned BEFORE the RID
    # entry is torn down (the OBSERVATION there), while its DID stays allocated until after
    # the flushes by that DID.
    assert seen and all(not t.get(dflt) and held.get(dflt) == (did, 1) for _, t, held in seen)
    # device_block_translation: PASID-0 teardown with the default domain's DID, non-PASID
    # device-TLB form; no PRQ drain (no IOPF on the device); the new setup adds nothing.
    assert take(k) == teardown(did, 0, sid, ats)
    # The default domain's DID was freed after that flush; the new domain takes the lowest
    # free DID, which is the same number.
    assert dflt not in dids(k)
    assert dids(k)[P] == (did, 1)
    assert_first_level(k, dev, 0, did, pgtable(k, P))
    assert tags(k, dflt) == ()
    expected_tags = [CacheTag("IOTLB", did, 0, None)]
    if ats:
        expected_tags.append(CacheTag("DEVTLB", did, 0, dev))
    assert list(tags(k, P)) == expected_tags
    assert k.warnings == []


@pytest.mark.parametrize("dev,sid,ats,did", DEVICES)
def test_rid_attach_via_dma_owner_claim_blocks_then_sets_up_silently(
        k: Kernel, dev: str, sid: int, ats: bool, did: int) -> None:
    k.iommu_device_unuse_default_domain(dev)
    P = paging_domain(k, dev)
    take(k)
    assert k.iommu_device_claim_dma_owner(dev, "vfio") == 0
    assert take(k) == teardown(did, 0, sid, ats)  # blocked: RID entry torn down
    assert_zero_entry(k, dev, 0)
    assert default_domain(k, dev) not in dids(k)
    assert k.iommu_attach_device(P, dev) == 0
    assert take(k) == []  # already blocked: a pure setup, nothing to flush
    assert_first_level(k, dev, 0, dids(k)[P][0], pgtable(k, P))
    assert dids(k)[P] == (did, 1)


def test_rid_teardown_flushes_the_caches_it_names(k: Kernel) -> None:
    """The descriptors do what they say: cached (DID 2, PASID 0) state is gone afterwards."""
    assert k.dma_map_page("dev0", 0x1000, PA0) == 0
    k.hw_fill("dev0", None, 0x1000, Access.READ)
    u = unit(k)
    assert any(e.did == 2 and e.pasid == 0 for e in u.iotlb)
    assert any(e.sid == DEV0_SID for e in u.devtlb)
    assert any(e.did == 2 and e.pasid == 0 for e in u.pasid_cache)
    k.iommu_device_unuse_default_domain("dev0")
    P = paging_domain(k)
    assert k.iommu_attach_device(P, "dev0") == 0
    assert not any(e.did == 2 and e.pasid == 0 for e in u.iotlb)
    assert not any(e.sid == DEV0_SID for e in u.devtlb)
    assert not any(e.pasid == 0 and e.sid == DEV0_SID and e.did == 2 for e in u.pasid_cache)


# ======================================================================== PASID attach
@pytest.mark.parametrize("dev,sid,ats,_did", DEVICES)
def test_pasid_attach_issues_nothing_and_installs_first_level_entry(
        k: Kernel, dev: str, sid: int, ats: bool, _did: int) -> None:
    P = paging_domain(k, dev)
    pasid = k.iommu_alloc_global_pasid(dev)
    assert pasid == 1
    take(k)
    assert k.iommu_attach_device_pasid(P, dev, pasid) == 0
    assert take(k) == []  # A.8.1: no device-TLB flush, no PC in non-caching mode
    assert dids(k)[P] == (4, 1)  # DIDs 2 and 3 belong to the default domains
    assert_first_level(k, dev, pasid, 4, pgtable(k, P))
    expected_tags = [CacheTag("IOTLB", 4, pasid, None)]
    if ats:
        expected_tags.append(CacheTag("DEVTLB", 4, pasid, dev))
    assert list(tags(k, P)) == expected_tags
    assert k.drv.dev_pasids[P] == ((dev, pasid),)  # type: ignore[attr-defined]


@pytest.mark.parametrize("dev,sid,ats,_did", DEVICES)
def test_pasid_detach_is_teardown_with_pasid_form_devtlb_and_frees_did_after(
        k: Kernel, dev: str, sid: int, ats: bool, _did: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    P = paging_domain(k, dev)
    pasid = k.iommu_alloc_global_pasid(dev)
    assert k.iommu_attach_device_pasid(P, dev, pasid) == 0
    take(k)
    seen = spy_execute(k, monkeypatch)
    k.iommu_detach_device_pasid(P, dev, pasid)
    monkeypatch.undo()
    assert take(k) == teardown(4, pasid, sid, ats)  # no drain: no IOPF for a paging domain
    # domain_remove_dev_pasid runs after the teardown: tags and DID 4 held through every flush
    assert seen and all(held.get(P) == (4, 1) and t.get(P) for _, t, held in seen)
    assert P not in dids(k)
    assert_zero_entry(k, dev, pasid)
    assert tags(k, P) == ()
    assert k.group_of(dev).pasid_array == ()  # type: ignore[union-attr]
    assert k.warnings == []


def test_pasid_detach_flushes_cached_translations(k: Kernel) -> None:
    P = paging_domain(k)
    pasid = k.iommu_alloc_global_pasid("dev0")
    assert k.iommu_attach_device_pasid(P, "dev0", pasid) == 0
    assert k.iommu_map(P, 0x1000, PA1) == 0
    k.hw_fill("dev0", pasid, 0x1000, Access.READ)
    u = unit(k)
    assert {(e.did, e.pasid, e.iova_pfn, e.pfn) for e in u.iotlb if e.pasid == pasid} == {
        (4, pasid, 1, PA1 >> PAGE_SHIFT)}
    assert {(e.sid, e.pasid, e.iova_pfn) for e in u.devtlb} >= {(DEV0_SID, pasid, 1)}
    k.iommu_detach_device_pasid(P, "dev0", pasid)
    assert not [e for e in u.iotlb if e.pasid == pasid]
    assert not [e for e in u.devtlb if e.pasid == pasid]
    assert not [e for e in u.pasid_cache if e.pasid == pasid]


# ======================================================================== replace
@pytest.mark.parametrize("dev,sid,ats,_did", DEVICES)
def test_pasid_replace_is_break_before_make_flushing_the_old_did(
        k: Kernel, dev: str, sid: int, ats: bool, _did: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    P1 = paging_domain(k, dev)
    P2 = paging_domain(k, dev)
    pasid = k.iommu_alloc_global_pasid(dev)
    h1 = k.new_attach_handle()
    assert k.iommu_attach_device_pasid(P1, dev, pasid, h1) == 0
    assert dids(k)[P1] == (4, 1)
    take(k)
    h2 = k.new_attach_handle()
    seen = spy_execute(k, monkeypatch)
    assert k.iommu_replace_device_pasid(P2, dev, pasid, h2) == 0
    monkeypatch.undo()
    # A.11 set_dev_pasid order: the new domain's DID and tags exist before the switch, the
    # old domain's stay until its teardown flushes are done.
    assert seen and all(held.get(P1) == (4, 1) and held.get(P2) == (5, 1)
                        and t.get(P1) and t.get(P2) for _, t, held in seen)
    # A.8.3 (v7.0, c3b1edea3791): tear the old entry down with the OLD DID and full
    # flushes (no in-place 64-byte copy), then set the new one up (no descriptor).
    assert take(k) == teardown(4, pasid, sid, ats)
    assert dids(k).get(P1) is None  # old DID released after its flush ...
    assert dids(k)[P2] == (5, 1)  # ... the new domain had its DID before the switch
    assert_first_level(k, dev, pasid, 5, pgtable(k, P2))
    assert tags(k, P1) == ()
    assert tags(k, P2)[0] == CacheTag("IOTLB", 5, pasid, None)
    assert k.group_of(dev).pasid_entry(pasid).handle == h2  # type: ignore[union-attr]


# ======================================================================== unmap
def test_iommu_unmap_on_pasid_attached_domain_is_piotlb_psi_then_devtlb_then_one_wait(
        k: Kernel) -> None:
    P = paging_domain(k)
    pasid = k.iommu_alloc_global_pasid("dev0")
    assert k.iommu_attach_device_pasid(P, "dev0", pasid) == 0
    take(k)
    assert k.iommu_map(P, 0x1000, PA0) == 0
    assert take(k) == []  # iotlb_sync_map: write-buffer flush only, no descriptor
    assert k.iommu_unmap(P, 0x1000) == 0x1000
    assert take(k) == [
        piotlb_psi(4, pasid, 0x1000, am=0, ih=1),  # intel_iommu_tlb_sync: no table freed
        QiDeiotlb(sid=DEV0_SID, pasid=pasid, pfsid=DEV0_SID, qdep=0, addr=1, s=0),
        W,
    ]


def test_unmap_of_domain_on_two_devices_is_one_batch_in_tag_order(k: Kernel) -> None:
    P = paging_domain(k)
    p0 = k.iommu_alloc_global_pasid("dev0")
    p1 = k.iommu_alloc_global_pasid("dev1")
    assert (p0, p1) == (1, 2)
    assert k.iommu_attach_device_pasid(P, "dev0", p0) == 0
    assert k.iommu_attach_device_pasid(P, "dev1", p1) == 0
    assert dids(k)[P] == (4, 2)  # one DID per (domain, unit), refcounted
    assert k.iommu_map(P, 0x0, PA0) == 0
    take(k)
    assert k.iommu_unmap(P, 0x0) == 0x1000
    assert take(k) == [
        piotlb_psi(4, p0, 0x0, ih=1),
        QiDeiotlb(sid=DEV0_SID, pasid=p0, pfsid=DEV0_SID, qdep=0, addr=0, s=0),
        piotlb_psi(4, p1, 0x0, ih=1),
        W,
    ]


@pytest.mark.parametrize("dev,sid,ats,did", DEVICES)
def test_dma_unmap_page_flushes_rid_tags(k: Kernel, dev: str, sid: int, ats: bool,
                                         did: int) -> None:
    take(k)
    assert k.dma_map_page(dev, 0x1000, PA1) == 0
    assert take(k) == []
    assert k.dma_unmap_page(dev, 0x1000) == 0x1000
    expected: list[QiDesc] = [piotlb_psi(did, 0, 0x1000, ih=1)]
    if ats:
        expected.append(QiDiotlb(sid=sid, pfsid=sid, qdep=0, addr=1, s=0))  # RID: non-PASID form
    expected.append(W)
    assert take(k) == expected


def test_unmap_of_unattached_domain_issues_nothing(k: Kernel) -> None:
    P = paging_domain(k)
    assert k.iommu_map(P, 0x1000, PA0) == 0
    take(k)
    assert k.iommu_unmap(P, 0x1000) == 0x1000
    assert take(k) == []  # no cache tags: nothing can cache it


# ======================================================================== SVA
def _bind(k: Kernel, dev: str = "dev0") -> tuple[int, int]:
    mm = k.mm_alloc()
    assert k.cpu_map(mm, 0, PA0) == 0
    assert k.cpu_map(mm, 0x1000, PA1) == 0
    h = k.iommu_sva_bind_device(dev, mm)
    assert isinstance(h, int) and not IS_ERR(h), h
    return mm, h


def test_sva_bind_uses_flpt_default_did_and_the_cpu_page_table(k: Kernel) -> None:
    take(k)
    mm, h = _bind(k)
    assert take(k) == []
    pasid = k.mms[mm].pasid
    assert pasid == 1
    f = fl_entry_fields(k, "dev0", pasid)
    assert f["did"] == FLPT_DEFAULT_DID == 1
    assert f["pgtt"] == Pgtt.FL_ONLY and f["p"] == 1 and f["fpd"] == 0
    assert f["flptptr"] == k.mms[mm].pgd >> PAGE_SHIFT
    assert f["pwsnp"] == 1  # PASID_FLAG_PWSNP (A.12)
    sva = k.handles[h].domain
    assert sva is not None and sva not in dids(k)  # SVA domains own no DID (A.9)
    assert list(tags(k, sva)) == [CacheTag("IOTLB", 1, pasid, None),
                                  CacheTag("DEVTLB", 1, pasid, "dev0")]
    assert k.drv.info["dev0"].iopf_refcount == 1  # type: ignore[attr-defined]


def test_cpu_munmap_notifier_flushes_did1_pasid_psi_then_devtlb(k: Kernel) -> None:
    mm, h = _bind(k)
    take(k)
    assert k.cpu_munmap(mm, 0x1000) == 0
    assert take(k) == [
        piotlb_psi(FLPT_DEFAULT_DID, 1, 0x1000),
        QiDeiotlb(sid=DEV0_SID, pasid=1, pfsid=DEV0_SID, qdep=0, addr=1, s=0),
        W,
    ]


def test_mm_release_tears_down_with_did1_and_no_drain(k: Kernel) -> None:
    mm, h = _bind(k)
    take(k)
    k.process_exit(mm)
    # intel_mm_release: teardown with fault_ignore=true, so no PRQ drain (A.12, A.8.2 step 10)
    assert take(k) == teardown(FLPT_DEFAULT_DID, 1, DEV0_SID, True)
    assert_zero_entry(k, "dev0", 1)
    g = k.group_of("dev0")
    assert g is not None and g.pasid_entry(1) is not None  # the bond outlives the mm
    assert k.warnings == []


def test_sva_unbind_after_exit_finds_a_zero_entry_and_issues_nothing(k: Kernel) -> None:
    """A.8.2 OBSERVATION (v7.0): the release path zeroed the whole entry (no FPD left), so the
    unbind's teardown returns early -- no flush and no PRQ drain."""
    mm, h = _bind(k)
    k.process_exit(mm)
    take(k)
    k.iommu_sva_unbind_device(h)
    assert take(k) == []
    assert_zero_entry(k, "dev0", 1)
    assert k.drv.info["dev0"].iopf_refcount == 0  # type: ignore[attr-defined]
    assert k.group_of("dev0").pasid_array == ()  # type: ignore[union-attr]
    assert k.warnings == []


def test_sva_unbind_of_live_mm_tears_down_then_drains(k: Kernel) -> None:
    mm, h = _bind(k)
    take(k)
    k.iommu_sva_unbind_device(h)
    log = take(k)
    assert log[:6] == teardown(FLPT_DEFAULT_DID, 1, DEV0_SID, True)
    # intel_iommu_drain_pasid_prq: ONE batch (fence wait, P_IOTLB all, PASID dev-TLB) and the
    # wait with PRQ_DRAIN. The DID is the RID domain's (info->domain), here the default's 2.
    drain = log[6:]
    assert len(drain) == 4
    assert is_fence_wait(drain[0])
    assert drain[1:] == [piotlb_all(2, 1), devtlb_pasid_all(DEV0_SID, 1), DRAIN_WAIT]
    assert_zero_entry(k, "dev0", 1)


def test_drain_fence_wait_has_no_status_write(k: Kernel) -> None:
    mm, h = _bind(k)
    take(k)
    k.iommu_sva_unbind_device(h)
    log = take(k)
    assert log[6] == QiIwd(sw=0, fence=1, prq_drain=0, status_data=QI_DONE, status_addr=0)


def test_rid_teardown_drain_with_iopf_uses_no_pasid_descriptors(k: Kernel) -> None:
    _bind(k)  # IOPF now enabled on dev0
    P = paging_domain(k)
    take(k)
    # kernel-core-api.md row 30: a RID attach while a PASID is bound is not refused
    assert k.iommu_attach_device(P, "dev0") == 0
    log = take(k)
    assert log[:6] == teardown(2, 0, DEV0_SID, True)
    drain = log[6:]
    assert len(drain) == 4 and is_fence_wait(drain[0])
    assert drain[1] == QiIotlb(gran=IotlbGran.DSI, did=2)
    assert drain[2] == devtlb_all(DEV0_SID)
    assert drain[3] == DRAIN_WAIT


def test_sva_bind_on_device_without_pri_fails(k: Kernel) -> None:
    mm = k.mm_alloc()
    key_groups = dict(k.groups)
    r = k.iommu_sva_bind_device("dev1", mm)
    assert r == ErrPtr(-errno.ENODEV)
    assert k.groups == key_groups


# ======================================================================== domain free
def test_domain_free_after_detach_issues_nothing(k: Kernel) -> None:
    P = paging_domain(k)
    pasid = k.iommu_alloc_global_pasid("dev0")
    assert k.iommu_attach_device_pasid(P, "dev0", pasid) == 0
    k.iommu_detach_device_pasid(P, "dev0", pasid)
    take(k)
    k.iommu_domain_free(P)
    assert take(k) == []  # every flush by its DID happened at detach (A.9 "ID reuse")
    assert P not in k.domains
    assert k.warnings == []

