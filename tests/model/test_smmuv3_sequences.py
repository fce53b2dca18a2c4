"""Exact command sequences of the SMMUv3 driver model, call by call.

Every test boots the upstream world of `checker.world` (dev0: sid 0x08, ATS, 4
PASIDs so S1CDMAX = 2; dev1: sid 0x10, no ATS; both on their DMA default domain
with a cdtable STE, S1DSS=SSID0, and CD0 of that domain), clears the command
log, makes ONE kernel call and compares the commands issued -- as
`hwspec.smmuv3` command dataclasses, in order -- with the kernel's sequence
(hw-tables.md B.5-B.9 and the hitless writer of C.3/C.5), then decodes the
STE / CD the call left behind.

Fixed facts of that world the expected values use:

* ASIDs come from one allocator, lowest free first (B.4): the default domains
  hold ASIDs 1 (dev0) and 2 (dev1); the next S1 domain (paging or SVA, v6.11+)
  gets 3, then 4.
* A CD write syncs with CFGI_CD(sid, ssid, leaf) + CMD_SYNC per `entry_set` that
  changed something (C.3): zero -> valid and valid -> zero are 2 rounds, a
  change of both ASID and TTB0 is a breaking update of 3 rounds, SVA <-> released
  (EPD0) is 2 hitless rounds.
* An STE write syncs with CFGI_STE(sid, leaf) + CMD_SYNC per changed
  `entry_set`, then PREFETCH_CFG(sid) (B.7); cdtable <-> abort are 2 rounds (C.5
  rows 3 and 4).

RID attach path: the world boots with a DMA-API driver bound, so the caller
first lets it go, either with `iommu_device_unuse_default_domain` (the attach
goes straight from the default S1 domain to the new one: only CD0 changes) or
with unuse + `iommu_device_claim_dma_owner` (VFIO: the claim puts the RID on
the blocked domain -- abort STE, CD0 cleared, ATS off -- and the attach builds
CD0 and the cdtable STE back up and turns ATS on). Both are tested.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from checker.world import Config
from hwspec.memory import PAGE_SHIFT
from hwspec.outcome import Access
from hwspec.smmuv3 import (
    ATC_INV,
    ATC_INV_SIZE_ALL,
    CD,
    CD_WRITER,
    CFGI_CD,
    CFGI_STE,
    CMD_SYNC,
    PREFETCH_CFG,
    STE,
    TLBI_NH_ASID,
    TLBI_NH_VA,
    Cfg,
    Command,
    Eats,
    S1Dss,
    S1Fmt,
    SmmuUnit,
    Strw,
    WritePath,
    make_abort_ste,
    make_cdtable_ste,
    make_s1_cd,
    make_sva_cd,
    write_entry,
)
from model.bounds import Bounds
from model.core import Kernel
from model.design import UPSTREAM
from model.objects import IS_ERR

PA0 = 0x8000_0000
PA1 = 0x8000_1000
DEV0_SID = 0x08
DEV1_SID = 0x10
#: (device, sid, ATS, ASID of its default domain at boot)
DEVICES = [("dev0", DEV0_SID, True, 1), ("dev1", DEV1_SID, False, 2)]

SYNC = CMD_SYNC()


# -- world and log helpers -------------------------------------------------------------------
@pytest.fixture
def k() -> Kernel:
    return Config(UPSTREAM, "smmuv3", Bounds(ats_devices=1)).build()


def unit(k: Kernel) -> SmmuUnit:
    return k.drv.unit  # type: ignore[attr-defined, no-any-return]


def take(k: Kernel) -> list[Command]:
    """Commands executed since the last call, as objects; the log is emptied (the same log
    `k.driver.take_hw_log` renders as text)."""
    log = list(unit(k).cmd_log)
    unit(k).cmd_log.clear()
    return log


def cd_rounds(sid: int, ssid: int, n: int) -> list[Command]:
    return [CFGI_CD(sid=sid, ssid=ssid, leaf=True), SYNC] * n


def ste_rounds(sid: int, n: int) -> list[Command]:
    """n hitless-writer syncs of an STE write, then the PREFETCH_CFG arm_smmu_write_ste adds."""
    return [CFGI_STE(sid=sid, leaf=True), SYNC] * n + [PREFETCH_CFG(sid=sid)]


def atc_all(sid: int, ssid: int | None) -> list[Command]:
    """arm_smmu_atc_inv_master: full range; SSV only for a PASID (B.5)."""
    return [ATC_INV(sid=sid, ssid=ssid or 0, ssv=ssid is not None, addr=0, size=ATC_INV_SIZE_ALL),
            SYNC]


def atc_page(sid: int, ssid: int | None, iova: int) -> list[Command]:
    return [ATC_INV(sid=sid, ssid=ssid or 0, ssv=ssid is not None, addr=iova, size=0), SYNC]


def without_prefetch(log: list[Command]) -> list[Command]:
    return [c for c in log if not isinstance(c, PREFETCH_CFG)]


# -- tables ------------------------------------------------------------------------------
def ste(k: Kernel, dev: str) -> tuple[int, ...]:
    return unit(k).read_ste(k.mem, k.devices[dev].sid)


def cd(k: Kernel, dev: str, ssid: int) -> tuple[int, ...]:
    m = k.drv.masters[dev]  # type: ignore[attr-defined]
    return k.mem.read(m.cd_table + 64 * ssid, 8)


def cdtable_ste(k: Kernel, dev: str, s1dss: S1Dss, ats: bool) -> tuple[int, ...]:
    m = k.drv.masters[dev]  # type: ignore[attr-defined]
    return make_cdtable_ste(m.cd_table, m.s1cdmax, s1dss, ats=ats)


def pgtable(k: Kernel, dom: int) -> int:
    root = k.domains[dom].pgtable
    assert root is not None
    return root


def asids(k: Kernel) -> dict[int, int]:
    return dict(k.drv.asids)  # type: ignore[attr-defined]


def master_domains(k: Kernel, dom: int) -> tuple[tuple[str, int], ...]:
    return k.drv.master_domains.get(dom, ())  # type: ignore[attr-defined, no-any-return]


def paging_domain(k: Kernel, dev: str = "dev0") -> int:
    d = k.iommu_paging_domain_alloc(dev)
    assert isinstance(d, int) and not IS_ERR(d)
    return d


def default_domain(k: Kernel, dev: str) -> int:
    g = k.group_of(dev)
    assert g is not None and g.default_domain is not None
    return g.default_domain


def assert_s1_cd(k: Kernel, dev: str, ssid: int, asid: int, root: int) -> None:
    words = cd(k, dev, ssid)
    f = CD.decode(words)
    assert f["v"] == 1 and f["epd0"] == 0 and f["epd1"] == 1
    assert f["asid"] == asid
    assert f["ttb0"] == root >> 4
    assert f["aset"] == 1 and f["aa64"] == 1 and f["r"] == 1 and f["a"] == 1
    assert words == make_s1_cd(asid, root)


# ======================================================================== boot state
@pytest.mark.parametrize("dev,sid,ats,asid", DEVICES)
def test_boot_ste_is_cdtable_ssid0_and_cd0_is_the_default_domain(k: Kernel, dev: str, sid: int,
                                                                ats: bool, asid: int) -> None:
    s = STE.decode(ste(k, dev))
    m = k.drv.masters[dev]  # type: ignore[attr-defined]
    assert s["v"] == 1 and s["cfg"] == Cfg.S1_TRANS and s["s1fmt"] == S1Fmt.LINEAR
    assert s["s1ctxptr"] == m.cd_table >> 6
    assert s["s1cdmax"] == 2  # 4 PASIDs: ssid_bits = 2
    assert s["s1dss"] == S1Dss.SSID0
    assert s["eats"] == (Eats.TRANS if ats else Eats.ABT)
    assert s["strw"] == Strw.NSEL1 and s["s2vmid"] == 0
    assert_s1_cd(k, dev, 0, asid, pgtable(k, default_domain(k, dev)))
    assert asids(k)[default_domain(k, dev)] == asid
    assert master_domains(k, default_domain(k, dev)) == ((dev, 0),)
    assert m.ats_enabled is ats


# ======================================================================== RID attach
@pytest.mark.parametrize("dev,sid,ats,asid", DEVICES)
def test_rid_attach_after_unuse_rewrites_cd0_breaking_and_keeps_ste(
        k: Kernel, dev: str, sid: int, ats: bool, asid: int) -> None:
    dflt = default_domain(k, dev)
    k.iommu_device_unuse_default_domain(dev)
    P = paging_domain(k, dev)
    assert asids(k)[P] == 3
    old_cd, old_ste = cd(k, dev, 0), ste(k, dev)
    # CD0 changes ASID (q0) and TTB0 (q1): the writer's breaking path, 3 syncs (C.3 OBSERVATION)
    assert write_entry(old_cd, make_s1_cd(3, pgtable(k, P)), CD_WRITER).path is WritePath.BREAKING
    take(k)
    assert k.iommu_attach_device(P, dev) == 0
    expected = cd_rounds(sid, 0, 3) + ste_rounds(sid, 0)  # STE unchanged: no sync, PREFETCH
    if ats:
        expected += atc_all(sid, None)  # attach_commit, ATS on -> on: atc_inv_master(NO_PASID)
    assert take(k) == expected
    assert_s1_cd(k, dev, 0, 3, pgtable(k, P))
    assert ste(k, dev) == old_ste
    assert master_domains(k, P) == ((dev, 0),)
    assert master_domains(k, dflt) == ()  # removed after the switch
    assert asids(k)[dflt] == asid  # the old domain lives on with its ASID: no TLBI
    assert k.warnings == []


@pytest.mark.parametrize("dev,sid,ats,_asid", DEVICES)
def test_dma_owner_claim_blocks_rid_abort_ste_cd0_cleared_ats_off(
        k: Kernel, dev: str, sid: int, ats: bool, _asid: int) -> None:
    k.iommu_device_unuse_default_domain(dev)
    take(k)
    assert k.iommu_device_claim_dma_owner(dev, "vfio") == 0
    log = take(k)
    # cdtable -> abort: 2 syncs (C.5 row 3), then PREFETCH_CFG
    assert log[:5] == ste_rounds(sid, 2)
    rest = cd_rounds(sid, 0, 2) + (atc_all(sid, None) if ats else [])
    assert Counter(map(repr, log[5:])) == Counter(map(repr, rest))
    assert ste(k, dev) == make_abort_ste()
    assert cd(k, dev, 0) == (0,) * 8
    assert k.drv.masters[dev].ats_enabled is False  # type: ignore[attr-defined]
    assert master_domains(k, default_domain(k, dev)) == ()


def test_dma_owner_claim_order_without_ats(k: Kernel) -> None:
    k.iommu_device_unuse_default_domain("dev1")
    take(k)
    assert k.iommu_device_claim_dma_owner("dev1", "vfio") == 0
    assert take(k) == ste_rounds(DEV1_SID, 2) + cd_rounds(DEV1_SID, 0, 2)


def test_dma_owner_claim_order_with_ats(k: Kernel) -> None:
    k.iommu_device_unuse_default_domain("dev0")
    take(k)
    assert k.iommu_device_claim_dma_owner("dev0", "vfio") == 0
    assert take(k) == (ste_rounds(DEV0_SID, 2) + atc_all(DEV0_SID, None)
                       + cd_rounds(DEV0_SID, 0, 2))


@pytest.mark.parametrize("dev,sid,ats,_asid", DEVICES)
def test_rid_attach_from_blocked_builds_cd0_then_cdtable_ste_then_enables_ats(
        k: Kernel, dev: str, sid: int, ats: bool, _asid: int) -> None:
    k.iommu_device_unuse_default_domain(dev)
    P = paging_domain(k, dev)
    assert k.iommu_device_claim_dma_owner(dev, "vfio") == 0
    take(k)
    assert k.iommu_attach_device(P, dev) == 0
    expected = cd_rounds(sid, 0, 2) + ste_rounds(sid, 2)  # CD0 zero->valid; abort->cdtable (row 4)
    if ats:
        expected += atc_all(sid, None)  # arm_smmu_enable_ats: full ATC_INV, then pci_enable_ats
    assert take(k) == expected
    assert ste(k, dev) == cdtable_ste(k, dev, S1Dss.SSID0, ats)
    assert_s1_cd(k, dev, 0, asids(k)[P], pgtable(k, P))
    assert k.drv.masters[dev].ats_enabled is ats  # type: ignore[attr-defined]


# ======================================================================== PASID attach / detach
@pytest.mark.parametrize("dev,sid,ats,_asid", DEVICES)
def test_pasid_attach_writes_cd_in_two_rounds_then_atc_inv(
        k: Kernel, dev: str, sid: int, ats: bool, _asid: int) -> None:
    P = paging_domain(k, dev)
    pasid = k.iommu_alloc_global_pasid(dev)
    assert pasid == 1
    old_ste = ste(k, dev)
    take(k)
    assert k.iommu_attach_device_pasid(P, dev, pasid) == 0
    log = take(k)
    assert not any(isinstance(c, CFGI_STE) for c in log)  # the STE already has the CD table
    assert without_prefetch(log) == cd_rounds(sid, pasid, 2) + (atc_all(sid, pasid) if ats else [])
    assert ste(k, dev) == old_ste
    assert_s1_cd(k, dev, pasid, 3, pgtable(k, P))
    assert master_domains(k, P) == ((dev, pasid),)


@pytest.mark.parametrize("call", ["attach_device_pasid", "sva_bind"])
def test_pasid_attach_with_cd_table_in_ste_issues_no_prefetch(k: Kernel, call: str) -> None:
    P = paging_domain(k)
    mm = k.mm_alloc()
    assert k.cpu_map(mm, 0, PA0) == 0
    pasid = k.iommu_alloc_global_pasid("dev0")
    take(k)
    if call == "attach_device_pasid":
        assert k.iommu_attach_device_pasid(P, "dev0", pasid) == 0
        ssid = pasid
    else:
        h = k.iommu_sva_bind_device("dev0", mm)
        assert not IS_ERR(h)
        ssid = k.mms[mm].pasid  # type: ignore[assignment]
    assert take(k) == cd_rounds(DEV0_SID, ssid, 2) + atc_all(DEV0_SID, ssid)


@pytest.mark.parametrize("dev,sid,ats,_asid", DEVICES)
def test_pasid_detach_zeroes_cd_atc_inv_only_with_ats_and_no_tlbi(
        k: Kernel, dev: str, sid: int, ats: bool, _asid: int) -> None:
    P = paging_domain(k, dev)
    pasid = k.iommu_alloc_global_pasid(dev)
    assert k.iommu_attach_device_pasid(P, dev, pasid) == 0
    take(k)
    k.iommu_detach_device_pasid(P, dev, pasid)
    assert take(k) == cd_rounds(sid, pasid, 2) + (atc_all(sid, pasid) if ats else [])
    assert cd(k, dev, pasid) == (0,) * 8
    assert master_domains(k, P) == ()
    assert asids(k)[P] == 3  # the ASID stays with the live domain (B.8)
    assert STE.get(ste(k, dev), "s1dss") == S1Dss.SSID0  # RID on a paging domain: STE kept


def test_pasid_detach_leaves_tlb_by_asid_and_domain_free_flushes_it(k: Kernel) -> None:
    P = paging_domain(k)
    pasid = k.iommu_alloc_global_pasid("dev0")
    assert k.iommu_attach_device_pasid(P, "dev0", pasid) == 0
    assert k.iommu_map(P, 0x1000, PA1) == 0
    k.hw_fill("dev0", pasid, 0x1000, Access.READ)
    u = unit(k)
    assert {(e.asid, e.iova_pfn, e.pfn) for e in u.tlb} == {(3, 1, PA1 >> PAGE_SHIFT)}
    assert {(e.sid, e.ssid, e.iova_pfn) for e in u.atc} == {(DEV0_SID, pasid, 1)}
    k.iommu_detach_device_pasid(P, "dev0", pasid)
    assert {(e.asid, e.iova_pfn) for e in u.tlb} == {(3, 1)}  # no TLBI at PASID detach
    assert u.atc == set()  # ATC_INV(ssid) did drop the device's copy
    assert not [e for e in u.cd_cache if e.ssid == pasid]
    k.iommu_domain_free(P)
    assert u.tlb == set()


def test_pasid_on_blocked_rid_installs_terminate_cdtable_and_detach_downgrades_to_abort(
        k: Kernel) -> None:
    """B.8: with the RID blocked, set_pasid installs a cdtable STE with S1DSS=TERMINATE (and
    turns ATS on for the PASID); the last PASID detach re-attaches the blocked domain, which
    writes the abort STE back and turns ATS off."""
    k.iommu_device_unuse_default_domain("dev0")
    assert k.iommu_device_claim_dma_owner("dev0", "vfio") == 0
    P = paging_domain(k)
    pasid = k.iommu_alloc_global_pasid("dev0")
    take(k)
    assert k.iommu_attach_device_pasid(P, "dev0", pasid) == 0
    assert take(k) == (cd_rounds(DEV0_SID, pasid, 2) + ste_rounds(DEV0_SID, 2)
                       + atc_all(DEV0_SID, None))  # ATS off -> on: arm_smmu_enable_ats
    assert ste(k, "dev0") == cdtable_ste(k, "dev0", S1Dss.TERMINATE, True)
    assert cd(k, "dev0", 0) == (0,) * 8
    k.iommu_detach_device_pasid(P, "dev0", pasid)
    assert take(k) == (cd_rounds(DEV0_SID, pasid, 2) + atc_all(DEV0_SID, pasid)
                       + ste_rounds(DEV0_SID, 2) + atc_all(DEV0_SID, None))
    assert ste(k, "dev0") == make_abort_ste()
    assert k.drv.masters["dev0"].ats_enabled is False  # type: ignore[attr-defined]
    assert k.warnings == []


# ======================================================================== replace
@pytest.mark.parametrize("dev,sid,ats,_asid", DEVICES)
def test_pasid_replace_is_a_breaking_cd_update_with_atc_inv_and_no_tlbi(
        k: Kernel, dev: str, sid: int, ats: bool, _asid: int) -> None:
    P1 = paging_domain(k, dev)
    P2 = paging_domain(k, dev)
    assert (asids(k)[P1], asids(k)[P2]) == (3, 4)
    pasid = k.iommu_alloc_global_pasid(dev)
    assert k.iommu_attach_device_pasid(P1, dev, pasid, k.new_attach_handle()) == 0
    take(k)
    h2 = k.new_attach_handle()
    assert k.iommu_replace_device_pasid(P2, dev, pasid, h2) == 0
    log = take(k)
    # ASID and TTB0 both change: V=0, q1..q7, q0 -- 3 rounds (C.3 OBSERVATION); the old
    # ASID is not invalidated (it still belongs to the live P1).
    assert without_prefetch(log) == cd_rounds(sid, pasid, 3) + (atc_all(sid, pasid) if ats else [])
    assert not any(isinstance(c, (TLBI_NH_ASID, TLBI_NH_VA)) for c in log)
    assert_s1_cd(k, dev, pasid, 4, pgtable(k, P2))
    assert master_domains(k, P1) == ()
    assert master_domains(k, P2) == ((dev, pasid),)


# ======================================================================== unmap
def test_iommu_unmap_is_tlbi_va_by_asid_then_atc_inv_per_ats_master_domain(k: Kernel) -> None:
    P = paging_domain(k)
    p0 = k.iommu_alloc_global_pasid("dev0")
    p1 = k.iommu_alloc_global_pasid("dev1")
    assert k.iommu_attach_device_pasid(P, "dev0", p0) == 0
    assert k.iommu_attach_device_pasid(P, "dev1", p1) == 0
    take(k)
    assert k.iommu_map(P, 0x1000, PA0) == 0
    assert take(k) == []  # nothing to invalidate on a new mapping
    assert k.iommu_unmap(P, 0x1000) == 0x1000
    assert take(k) == [
        TLBI_NH_VA(asid=3, vmid=0, addr=0x1000, leaf=True), SYNC,
        *atc_page(DEV0_SID, p0, 0x1000),  # dev1 has no ATS: no ATC_INV for it
    ]


@pytest.mark.parametrize("dev,sid,ats,asid", DEVICES)
def test_dma_unmap_page_is_tlbi_va_then_rid_atc_inv(k: Kernel, dev: str, sid: int, ats: bool,
                                                    asid: int) -> None:
    assert k.dma_map_page(dev, 0x1000, PA1) == 0
    take(k)
    assert k.dma_unmap_page(dev, 0x1000) == 0x1000
    expected: list[Command] = [TLBI_NH_VA(asid=asid, vmid=0, addr=0x1000, leaf=True), SYNC]
    if ats:
        expected += atc_page(sid, None, 0x1000)  # RID: SSV=0
    assert take(k) == expected


def test_unmap_of_unattached_domain_is_tlbi_only(k: Kernel) -> None:
    P = paging_domain(k)
    assert k.iommu_map(P, 0x0, PA0) == 0
    take(k)
    assert k.iommu_unmap(P, 0x0) == 0x1000
    assert take(k) == [TLBI_NH_VA(asid=3, vmid=0, addr=0x0, leaf=True), SYNC]


# ======================================================================== SVA
def _bind(k: Kernel, dev: str = "dev0") -> tuple[int, int]:
    mm = k.mm_alloc()
    assert k.cpu_map(mm, 0, PA0) == 0
    assert k.cpu_map(mm, 0x1000, PA1) == 0
    h = k.iommu_sva_bind_device(dev, mm)
    assert isinstance(h, int) and not IS_ERR(h), h
    return mm, h


@pytest.mark.parametrize("dev,sid,ats,_asid", DEVICES)
def test_sva_bind_installs_sva_cd_with_own_asid(k: Kernel, dev: str, sid: int, ats: bool,
                                                _asid: int) -> None:
    take(k)
    mm, h = _bind(k, dev)
    log = take(k)
    pasid = k.mms[mm].pasid
    assert pasid == 1
    assert without_prefetch(log) == cd_rounds(sid, pasid, 2) + (atc_all(sid, pasid) if ats else [])
    sva = k.handles[h].domain
    assert sva is not None and asids(k)[sva] == 3  # its own SMMU ASID (v6.11+, B.9)
    f = CD.decode(cd(k, dev, pasid))
    assert (f["v"], f["epd0"], f["aset"], f["asid"]) == (1, 0, 1, 3)
    assert f["ttb0"] == k.mms[mm].pgd >> 4
    assert cd(k, dev, pasid) == make_sva_cd(3, k.mms[mm].pgd)
    assert master_domains(k, sva) == ((dev, pasid),)


def test_cpu_munmap_notifier_is_tlbi_va_nonleaf_then_atc_inv(k: Kernel) -> None:
    mm, h = _bind(k)
    take(k)
    assert k.cpu_munmap(mm, 0x1000) == 0
    assert take(k) == [
        TLBI_NH_VA(asid=3, vmid=0, addr=0x1000, leaf=False), SYNC,  # leaf=false (B.9)
        *atc_page(DEV0_SID, 1, 0x1000),
    ]


def test_mm_release_writes_epd0_cd_hitless_then_tlbi_asid_then_atc_inv(k: Kernel) -> None:
    mm, h = _bind(k)
    released = make_sva_cd(3, None)
    r = write_entry(cd(k, "dev0", 1), released, CD_WRITER)
    assert r.path is WritePath.HITLESS and r.syncs == 2 and r.hitless
    take(k)
    k.process_exit(mm)
    assert take(k) == (cd_rounds(DEV0_SID, 1, 2)
                       + [TLBI_NH_ASID(asid=3, vmid=0), SYNC]
                       + atc_all(DEV0_SID, 1))
    f = CD.decode(cd(k, "dev0", 1))
    assert (f["v"], f["epd0"], f["ttb0"], f["asid"], f["r"], f["s"]) == (1, 1, 0, 3, 0, 0)
    assert cd(k, "dev0", 1) == released
    assert k.warnings == []


@pytest.mark.parametrize("exited", [True, False], ids=["after_exit", "live_mm"])
def test_sva_unbind_zeroes_cd_atc_inv_then_tlbi_asid_before_asid_release(
        k: Kernel, exited: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    mm, h = _bind(k)
    sva = k.handles[h].domain
    assert sva is not None
    if exited:
        k.process_exit(mm)
    seen: list[tuple[Any, dict[int, int]]] = []
    real = SmmuUnit.execute

    def spy(self: SmmuUnit, cmd: Command) -> Any:
        seen.append((cmd, dict(k.drv.asids)))  # type: ignore[attr-defined]
        return real(self, cmd)

    take(k)
    monkeypatch.setattr(SmmuUnit, "execute", spy)
    k.iommu_sva_unbind_device(h)
    monkeypatch.undo()
    assert take(k) == (cd_rounds(DEV0_SID, 1, 2) + atc_all(DEV0_SID, 1)
                       + [TLBI_NH_ASID(asid=3, vmid=0), SYNC])
    tlbi = [held for cmd, held in seen if isinstance(cmd, TLBI_NH_ASID)]
    assert tlbi == [asids(k) | {sva: 3}]  # ASID 3 still allocated when it was flushed
    assert 3 not in asids(k).values()  # ... and released afterwards (xa_erase)
    assert cd(k, "dev0", 1) == (0,) * 8
    assert k.warnings == []


# ======================================================================== domain free
def test_paging_domain_free_tlbi_asid_before_release(k: Kernel,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    P = paging_domain(k)
    pasid = k.iommu_alloc_global_pasid("dev0")
    assert k.iommu_attach_device_pasid(P, "dev0", pasid) == 0
    k.iommu_detach_device_pasid(P, "dev0", pasid)
    seen: list[tuple[Any, dict[int, int]]] = []
    real = SmmuUnit.execute

    def spy(self: SmmuUnit, cmd: Command) -> Any:
        seen.append((cmd, dict(k.drv.asids)))  # type: ignore[attr-defined]
        return real(self, cmd)

    take(k)
    monkeypatch.setattr(SmmuUnit, "execute", spy)
    k.iommu_domain_free(P)
    monkeypatch.undo()
    assert take(k) == [TLBI_NH_ASID(asid=3, vmid=0), SYNC]  # no ATS master left: no ATC_INV
    assert [held.get(P) for cmd, held in seen if isinstance(cmd, TLBI_NH_ASID)] == [3]
    assert P not in asids(k)
