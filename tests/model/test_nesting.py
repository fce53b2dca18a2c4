"""Nesting (#17 item 5, bound nesting): a nesting parent (IOMMU_HWPT_ALLOC_NEST_PARENT) and
NESTED domains on it. The VT-d unit walks PGTT=NESTED entries through both stages and
caches combined entries; a second-stage page-selective invalidation reaches them by the
IPA their walk went through; the driver puts NESTING_IOTLB / NESTING_DEVTLB tags on the
parent, so the parent's unmap is flushed under every nested DID; the nested-cache-current
invariant; SMMUv3 (no nesting in the model) refuses NEST_PARENT.
"""

from __future__ import annotations

import errno

import pytest

from checker.explore import explore
from checker.world import Config
from checker.worlds import WORLDS
from hwspec.memory import Memory, Prot, Pte
from hwspec.outcome import Access, FaultReason, fault, translated
from hwspec.smmuv3 import CD, STE, Cfg
from hwspec.vtd import (PASID_ENTRY, EiotlbGran, IotlbEntry, IotlbGran, Pgtt, QiEiotlb, QiIotlb,
                        VtdUnit, fill, translate)
from invariants.catalog import BY_ID, CATALOG
from model.bounds import Bounds, BoundsError
from model.core import Kernel
from model.core.iommu import GUEST_STAGE1
from model.design import UPSTREAM
from model.drivers.smmuv3 import GUEST_ASID
from model.designs import get_design
from model.objects import DomainType, ErrPtr

from tests.hwspec.test_vtd_unit import SID, install_context, set_pasid_entry

N = WORLDS["nest1"].to_bounds()
R = Access.READ
PA = 0x8000_0000


# ------------------------------------------------------------ the unit
def _nested_world() -> tuple[Memory, VtdUnit, int, int]:
    """sid 0x0008, RID_PASID 0: a NESTED entry (DID 4) whose stage-1 maps iova page 0 to
    IPA page 1 (read-only) and whose stage-2 maps IPA page 1 to 0x90 RW."""
    mem = Memory()
    unit = VtdUnit(mem)
    directory = install_context(mem, unit, SID)
    s1, s2 = mem.new_pagetable(), mem.new_pagetable()
    mem.map(s1, 0, Pte(1, Prot.READ))
    mem.map(s2, 1, Pte(0x90, Prot.RW))
    set_pasid_entry(mem, directory, 0, PASID_ENTRY.encode(
        p=1, aw=2, pgtt=Pgtt.NESTED, did=4, flptptr=s1 >> 12, slptptr=s2 >> 12))
    return mem, unit, s1, s2


def test_a_nested_entry_translates_through_both_stages_with_both_permissions() -> None:
    mem, unit, s1, s2 = _nested_world()
    assert translate(unit, mem, SID, None, 0x0123, R) == {translated(0x90123)}
    # stage-1 is read-only: a write faults though stage-2 allows it
    assert translate(unit, mem, SID, None, 0x0, Access.WRITE) == {fault(FaultReason.PERMISSION)}
    mem.unmap(s2, 1)
    assert translate(unit, mem, SID, None, 0x0, R) == {fault(FaultReason.NO_MAPPING)}


def test_fill_caches_one_combined_entry_tagged_like_a_first_stage_one() -> None:
    mem, unit, _, _ = _nested_world()
    fill(unit, mem, SID, None, 0x0, R)
    assert unit.iotlb == {IotlbEntry(4, 0, 0, 0x90, Prot.READ, ipa_pfn=1)}
    assert str(next(iter(unit.iotlb))) == "IOTLB did 4 pasid 0 iova 0x0 (nested, ipa 0x1000) -> pa 0x90000 READ"


@pytest.mark.parametrize("desc,covered", [
    # a second-stage PSI by DID reaches the combined entry by its IPA page, not its IOVA
    (QiIotlb(IotlbGran.PSI, did=4, addr=1, am=0), True),
    (QiIotlb(IotlbGran.PSI, did=4, addr=0, am=0), False),
    (QiIotlb(IotlbGran.PSI, did=5, addr=1, am=0), False),
    (QiIotlb(IotlbGran.DSI, did=4), True),
    # the PASID-based form reaches it by the IOVA, as a first-stage entry
    (QiEiotlb(EiotlbGran.PSI_PASID, did=4, pasid=0, addr=0, am=0), True),
    (QiEiotlb(EiotlbGran.PSI_PASID, did=4, pasid=0, addr=1, am=0), False),
])
def test_which_invalidations_reach_a_combined_entry(desc: QiIotlb | QiEiotlb, covered: bool) -> None:
    assert desc.covers(IotlbEntry(4, 0, 0, 0x90, Prot.READ, ipa_pfn=1)) is covered


# ------------------------------------------------------------ the kernel
def _nest(hw: str = "vtd", design: str = "upstream") -> tuple[Kernel, int, int]:
    """nest1 booted; a parent with IPA page 0 mapped, a nested domain at dev0's RID, and
    its IOVA 0x1000 (IPA 0x0) cached in the IOTLB and the device TLB."""
    k = Config(get_design(design), hw, N).build()
    parent = k.iommu_nest_parent_alloc("dev0")
    assert isinstance(parent, int)
    assert k.iommu_map(parent, 0x0, PA) == 0
    nested = k.iommu_domain_alloc_nested(parent, "dev0")
    assert isinstance(nested, int)
    assert k.iommu_attach_device(nested, "dev0") == 0
    k.hw_fill("dev0", None, 0x1000)
    k.driver.take_hw_log(k)
    return k, parent, nested


def test_the_guest_stage1_swaps_the_first_two_pages() -> None:
    k, parent, nested = _nest()
    assert GUEST_STAGE1 == ((0, 1), (1, 0))
    dom = k.domains[nested]
    assert dom.type is DomainType.NESTED and dom.parent == parent and k.domains[parent].nest_parent
    assert k.dma("dev0", None, 0x1000) >= {translated(PA)}
    assert {o.kind.value for o in k.dma("dev0", None, 0x0)} == {"fault"}  # IPA 0x1000 is unmapped


def test_the_nested_domain_takes_its_own_did_and_tags_the_parent() -> None:
    k, parent, nested = _nest()
    s = k.drv
    did = s.dids[nested][0]  # type: ignore[attr-defined]
    assert parent not in s.dids  # type: ignore[attr-defined]  # never attached directly
    assert [(t.type, t.did, t.pasid, t.dev) for t in s.tags[parent]] == [  # type: ignore[attr-defined]
        ("NESTING_IOTLB", did, 0, None), ("NESTING_DEVTLB", did, 0, "dev0")]
    assert [(t.type, t.did) for t in s.tags[nested]] == [("IOTLB", did), ("DEVTLB", did)]  # type: ignore[attr-defined]


def test_a_parent_unmap_is_flushed_under_the_nested_did_and_the_whole_device_tlb() -> None:
    k, parent, nested = _nest()
    did = k.drv.dids[nested][0]  # type: ignore[attr-defined]
    assert k.iommu_unmap(parent, 0x0) == 0x1000
    # NESTING_IOTLB: an IOTLB descriptor by the nested DID over the IPA (the parent is a
    # second-stage domain: no piotlb); NESTING_DEVTLB: the whole device TLB
    assert k.driver.take_hw_log(k) == [f"QI_IOTLB psi did={did} addr=0x0 am=0 ih=1",
                                       "QI_DEV_IOTLB sid=0x0008 whole range",
                                       "QI_IWD status_write data=2"]
    assert {o.kind.value for o in k.dma("dev0", None, 0x1000)} == {"fault"}
    assert all(inv.check(None, k, N) is None for inv in CATALOG)


def test_detaching_the_nested_domain_drops_the_parents_nesting_tags() -> None:
    k, parent, nested = _nest()
    k.iommu_detach_device(nested, "dev0")
    assert k.drv.tags.get(parent, ()) == ()  # type: ignore[attr-defined]
    assert nested not in k.drv.dids  # type: ignore[attr-defined]
    assert all(inv.check(None, k, N) is None for inv in CATALOG)


def test_nested_cache_current_names_the_parent_and_the_nested_tag() -> None:
    k, parent, nested = _nest(design="vtd-parent-flush-misses-nested")
    assert k.iommu_unmap(parent, 0x0) == 0x1000
    assert k.driver.take_hw_log(k) == []  # the parent has no tag of its own
    v = BY_ID["nested-cache-current"].check(None, k, N)
    assert v is not None
    did = k.drv.dids[nested][0]  # type: ignore[attr-defined]
    assert v.message == (f"IOTLB did {did} pasid 0 iova 0x1000 (nested, ipa 0x0) -> pa 0x80000000 "
                         f"RW: the nesting parent d{parent} now has no mapping at ipa 0x0; its "
                         f"change was not invalidated under the tag (DID {did}, PASID 0) of "
                         f"d{nested}, nested on it")


# ------------------------------------------------------------ what the calls return
def test_nested_alloc_needs_a_nesting_parent_of_the_driver() -> None:
    k = Config(UPSTREAM, "vtd", N).build()
    plain = k.iommu_paging_domain_alloc("dev0")
    assert isinstance(plain, int)
    assert k.iommu_domain_alloc_nested(plain, "dev0") == ErrPtr(-errno.EINVAL)
    assert k.iommu_domain_alloc_nested(999, "dev0") == ErrPtr(-errno.EINVAL)
    parent = k.iommu_nest_parent_alloc("dev0")
    nested = k.iommu_domain_alloc_nested(parent, "dev0")  # type: ignore[arg-type]
    assert isinstance(nested, int)
    # a nested domain is no paging domain: no map on it, and no nesting on it
    assert k.iommu_map(nested, 0x0, PA) == -errno.EINVAL
    assert k.iommu_unmap(nested, 0x0) == 0
    assert k.iommu_domain_alloc_nested(nested, "dev0") == ErrPtr(-errno.EINVAL)


# ------------------------------------------------------------ SMMUv3
def test_smmuv3_parent_is_a_stage2_domain_with_a_vmid_and_the_nested_ste_joins_both() -> None:
    k, parent, nested = _nest("smmuv3")
    s = k.drv
    vmid = s.vmids[parent]  # type: ignore[attr-defined]
    assert vmid == 1 and parent not in s.asids  # type: ignore[attr-defined]
    ste = s.unit.read_ste(k.mem, k.devices["dev0"].sid)  # type: ignore[attr-defined]
    assert (STE.get(ste, "cfg"), STE.get(ste, "s2vmid"), STE.get(ste, "s1cdmax")) == (Cfg.NESTED, vmid, 0)
    assert STE.get(ste, "s2ttb") << 4 == k.domains[parent].pgtable
    # the guest's CD table: CD0 with the guest's ASID over the guest's stage 1
    cd0 = k.mem.read(s.guest_cd_tables[nested], 8)  # type: ignore[attr-defined]
    assert (CD.get(cd0, "asid"), CD.get(cd0, "ttb0") << 4) == (GUEST_ASID, k.domains[nested].pgtable)
    assert k.dma("dev0", None, 0x1000) >= {translated(PA)}
    assert {o.kind.value for o in k.dma("dev0", None, 0x0)} == {"fault"}  # IPA 0x1000 unmapped
    # the walk cached the combined entry and the stage-2 one of IPA 0x0
    assert {(e.vmid, e.asid, e.iova_pfn, e.ipa_pfn) for e in s.unit.tlb} == {  # type: ignore[attr-defined]
        (vmid, GUEST_ASID, 1, 0), (vmid, None, 0, None)}


def test_smmuv3_parent_unmap_is_s2_ipa_then_nh_all_then_the_whole_nested_atc() -> None:
    k, parent, nested = _nest("smmuv3")
    assert k.iommu_unmap(parent, 0x0) == 0x1000
    assert k.driver.take_hw_log(k) == ["CMD_TLBI_S2_IPA vmid=1 ipa=0x0 pages=1 leaf", "CMD_SYNC",
                                       "CMD_TLBI_NH_ALL vmid=1", "CMD_SYNC",
                                       "CMD_ATC_INV sid=0x8 all", "CMD_SYNC"]
    assert {o.kind.value for o in k.dma("dev0", None, 0x1000)} == {"fault"}
    assert all(inv.check(None, k, N) is None for inv in CATALOG)


def test_smmuv3_nested_cache_current_names_the_vmid_and_the_guest_asid() -> None:
    k, parent, nested = _nest("smmuv3", design="smmu-parent-flush-skips-nh-all")
    assert k.iommu_unmap(parent, 0x0) == 0x1000
    v = BY_ID["nested-cache-current"].check(None, k, N)
    assert v is not None
    assert v.message == (f"TLB (vmid 1, asid 1) 0x1000 -> 0x80000000 (nested, ipa 0x0): the "
                         f"nesting parent d{parent} now has no mapping at ipa 0x0; its change was "
                         f"not invalidated under the tag (VMID 1, ASID 1) of d{nested}, nested on it")


def test_smmuv3_guest_entries_outlive_the_nested_domain_but_not_a_parent_change() -> None:
    """kfree of a nested domain issues nothing: its (VMID, guest ASID) entries are the
    guest's to invalidate. The host still owes their stage-2 half: a parent unmap flushes
    them by VMID (TLBI_NH_ALL) whether or not a nested domain is left."""
    k, parent, nested = _nest("smmuv3")
    k.iommu_detach_device(nested, "dev0")
    k.iommu_domain_free(nested)
    assert any(e.ipa_pfn is not None for e in k.drv.unit.tlb)  # type: ignore[attr-defined]
    assert all(inv.check(None, k, N) is None for inv in CATALOG)
    k.driver.take_hw_log(k)
    assert k.iommu_unmap(parent, 0x0) == 0x1000
    assert "CMD_TLBI_NH_ALL vmid=1" in k.driver.take_hw_log(k)
    assert not k.drv.unit.tlb  # type: ignore[attr-defined]


def test_smmuv3_stage2_and_nested_leave_no_room_for_host_pasids() -> None:
    k, parent, nested = _nest("smmuv3")
    plain = k.iommu_paging_domain_alloc("dev0")
    assert isinstance(plain, int)
    # the nested STE holds the guest's CD table: no host PASID (arm_smmu_set_pasid)
    assert k.iommu_attach_device_pasid(plain, "dev0", 1) == -errno.EINVAL
    # nor can a stage-2 domain go at a PASID; a nested one has no set_dev_pasid at all
    k.iommu_detach_device(nested, "dev0")
    assert k.iommu_attach_device_pasid(parent, "dev0", 1) == -errno.EINVAL
    assert k.iommu_attach_device_pasid(nested, "dev0", 1) == -errno.EOPNOTSUPP
    # with a host PASID in use, neither a stage-2 nor a nested domain takes the RID
    assert k.iommu_attach_device_pasid(plain, "dev0", 1) == 0
    assert k.iommu_attach_device(nested, "dev0") == -errno.EBUSY
    assert k.iommu_attach_device(parent, "dev0") == -errno.EBUSY


def test_smmuv3_parent_free_is_s12_vmall_and_releases_the_vmid() -> None:
    k, parent, nested = _nest("smmuv3")
    k.iommu_detach_device(nested, "dev0")
    k.iommu_domain_free(nested)
    k.driver.take_hw_log(k)
    k.iommu_domain_free(parent)
    assert k.driver.take_hw_log(k)[:2] == ["CMD_TLBI_S12_VMALL vmid=1", "CMD_SYNC"]
    assert k.drv.vmids == {} and k.drv.guest_cd_tables == {}  # type: ignore[attr-defined]
    assert not k.drv.unit.tlb  # type: ignore[attr-defined]


def test_freeing_a_parent_under_nested_domains_is_the_drivers_warn() -> None:
    k, parent, nested = _nest()
    k.iommu_detach_device(nested, "dev0")
    k.driver.domain_free(k, k.domains[parent])  # what iommufd's reference forbids
    assert [w.site.id for w in k.warnings] == ["vtd_parent_freed_with_nested"]


def test_nesting_and_walk_caches_do_not_mix() -> None:
    with pytest.raises(BoundsError, match="nesting=1 and walk_caches=1 do not mix"):
        Bounds(nesting=True, walk_caches=True)


# ------------------------------------------------------------ upstream holds
@pytest.mark.parametrize("world,hw,index", [
    pytest.param("nest1", "vtd", 0, marks=pytest.mark.deep),
    pytest.param("nest1", "smmuv3", 1, marks=pytest.mark.deep),
])
def test_upstream_holds_in_the_nesting_worlds(world: str, hw: str, index: int) -> None:
    _, out = explore(UPSTREAM, hw, WORLDS[world].to_bounds(), tuple(CATALOG), saturate=True)
    assert out.violation is None and out.complete
    assert out.states == WORLDS[world].states[index]


def test_upstream_holds_in_nest1_to_depth_seven() -> None:
    """The default run's budget for vtd: every state of seven calls (the variants break in
    five); the whole world is the deep row above."""
    _, out = explore(UPSTREAM, "vtd", N, tuple(CATALOG), saturate=True, depth=7)
    assert out.violation is None and out.depth == 7 and out.states > 1_000
