"""SVA bind/unbind and global-PASID behaviour implied by the scenario rows.

kernel-core-api.md section 3 ("Global PASID allocator") and section 4
(iommu_sva_bind_device / iommu_sva_unbind_device, PASID lifetime), on fixture S.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from model.objects import IS_ERR, PTR_ERR, DomainType, ErrPtr, PasidEntry

if TYPE_CHECKING:
    from conftest import S


def bind(s: "S", dev: str, mm: int) -> int:
    h = s.call("iommu_sva_bind_device", dev, mm)
    assert not IS_ERR(h), f"bind({dev}, mm{mm}) = {h}"
    assert isinstance(h, int)
    return h


def sva_domain_of(s: "S", h: int) -> int:
    d = s.k.handles[h].domain
    assert d is not None
    assert s.k.domains[d].type is DomainType.SVA
    return d


def test_bind_twice_same_dev_mm_shares_handle_and_needs_two_unbinds(s: "S") -> None:
    h = bind(s, "devA", s.mm1)
    pasid = s.k.mms[s.mm1].pasid
    assert pasid == 1
    assert s.k.handles[h].users == 1 and s.k.handles[h].dev == "devA"
    dom = sva_domain_of(s, h)
    assert s.k.domains[dom].mm == s.mm1 and s.k.domains[dom].users == 1
    assert s.g("gA").pasid_array == ((1, PasidEntry(dom, h)),)

    assert s.call("iommu_sva_bind_device", "devA", s.mm1) == h  # the same handle pointer
    assert s.k.handles[h].users == 2
    assert s.k.domains[dom].users == 1  # no second attach, so no new domain user

    assert s.call("iommu_sva_unbind_device", h) is None
    assert s.k.handles[h].users == 1
    assert s.g("gA").pasid_array == ((1, PasidEntry(dom, h)),)  # the bond survives

    assert s.call("iommu_sva_unbind_device", h) is None
    assert s.g("gA").pasid_array == ()
    assert h not in s.k.handles  # kfree(handle)
    assert s.k.mms[s.mm1].sva_domains == ()  # the domain was unlinked (users 0)


def test_same_mm_on_two_devices_gets_same_pasid(s: "S") -> None:
    hA = bind(s, "devA", s.mm1)
    hB = bind(s, "devB", s.mm1)
    assert hA != hB  # different groups: different handles
    pasid = s.k.mms[s.mm1].pasid
    assert pasid == 1
    assert s.call("iommu_sva_get_pasid", hA) == 1
    assert s.call("iommu_sva_get_pasid", hB) == 1
    assert s.k.global_pasids == frozenset({1})
    dA, dB = sva_domain_of(s, hA), sva_domain_of(s, hB)
    assert s.entry("gA", 1) == PasidEntry(dA, hA)
    assert s.entry("gB", 1) == PasidEntry(dB, hB)
    if s.hw == "mock":
        # the mock driver accepts the mm's existing SVA domain on any device
        assert dA == dB
        assert s.k.domains[dA].users == 2
        assert s.k.mms[s.mm1].sva_domains == (dA,)


def test_unbind_never_frees_the_pasid(s: "S") -> None:
    h = bind(s, "devA", s.mm1)
    assert s.k.mms[s.mm1].pasid == 1
    assert s.call("iommu_sva_unbind_device", h) is None
    assert s.g("gA").pasid_array == ()
    assert s.k.mms[s.mm1].pasid == 1
    assert 1 in s.k.global_pasids
    # a new process cannot get it; a rebind of the same mm reuses it
    bind(s, "devB", s.mm2)
    assert s.k.mms[s.mm2].pasid == 2
    h3 = bind(s, "devA", s.mm1)
    assert s.call("iommu_sva_get_pasid", h3) == 1
    assert s.k.global_pasids == frozenset({1, 2})


def test_second_process_gets_next_pasid(s: "S") -> None:
    h1 = bind(s, "devA", s.mm1)
    h2 = bind(s, "devA", s.mm2)
    assert h1 != h2
    assert s.call("iommu_sva_get_pasid", h1) == 1
    assert s.call("iommu_sva_get_pasid", h2) == 2
    assert s.k.mms[s.mm1].pasid == 1 and s.k.mms[s.mm2].pasid == 2
    assert [p for p, _ in s.g("gA").pasid_array] == [1, 2]
    assert sva_domain_of(s, h1) != sva_domain_of(s, h2)  # one SVA domain per mm


def test_bind_on_device_without_pasids(s: "S") -> None:
    # fresh mm: iommu_alloc_global_pasid(devN) = IOMMU_PASID_INVALID -> -ENOSPC
    ret = s.call("iommu_sva_bind_device", "devN", s.mm1)
    assert ret == ErrPtr(-errno.ENOSPC)
    assert IS_ERR(ret) and PTR_ERR(ret) == -errno.ENOSPC
    assert s.k.mms[s.mm1].pasid is None
    assert s.k.global_pasids == frozenset()
    # mm that already has a PASID: pasid >= max_pasids (0) -> -EOVERFLOW
    bind(s, "devA", s.mm2)
    assert s.k.mms[s.mm2].pasid == 1
    ret = s.call("iommu_sva_bind_device", "devN", s.mm2)
    assert ret == ErrPtr(-errno.EOVERFLOW)
    assert s.g("gN").pasid_array == ()
    assert s.k.mms[s.mm2].pasid == 1


def test_bind_through_other_device_of_group_returns_existing_handle(s: "S") -> None:
    hC = bind(s, "devC", s.mm1)
    assert s.k.handles[hC].users == 1
    assert s.call("iommu_sva_bind_device", "devD", s.mm1) == hC
    h = s.k.handles[hC]
    assert h.users == 2
    assert h.dev == "devC"  # handle->dev is still the first device
    assert s.g("gCD").pasid_array == ((1, PasidEntry(sva_domain_of(s, hC), hC)),)


def test_failed_bind_keeps_the_mm_pasid(s: "S") -> None:
    # PASID 1 is taken in gA by a non-SVA bare-domain attach (not from the IDA)
    assert s.call("iommu_attach_device_pasid", s.P1, "devA", 1, None) == 0
    # bind allocates PASID 1 for mm1, then xa_insert at 1 fails: -EBUSY
    ret = s.call("iommu_sva_bind_device", "devA", s.mm1)
    assert ret == ErrPtr(-errno.EBUSY)
    assert s.g("gA").pasid_array == ((1, PasidEntry(s.P1, None)),)
    # nothing is rolled back: the mm keeps its PASID
    assert s.k.mms[s.mm1].pasid == 1
    assert 1 in s.k.global_pasids
    assert s.k.mms[s.mm1].sva_domains == ()


def test_eoverflow_boundary_is_pasid_equal_to_max_pasids(s: "S") -> None:
    """Section 6: a device with max_pasids <= the mm's PASID X cannot bind it (-EOVERFLOW);
    X = max_pasids - 1 still fits (no [SVA62] off-by-one)."""
    from model.core import Kernel
    from model.objects import Device

    k = Kernel(s.hw, [
        Device("devA", 0x0008, "gA", 1 << 20, ats=True),
        Device("devS", 0x0010, "gS", 2, ats=True),  # PASIDs 0 and 1 only
    ])
    mm1, mm2 = k.mm_alloc(), k.mm_alloc()
    assert not IS_ERR(k.iommu_sva_bind_device("devA", mm1)) and k.mms[mm1].pasid == 1
    assert not IS_ERR(k.iommu_sva_bind_device("devA", mm2)) and k.mms[mm2].pasid == 2
    assert not IS_ERR(k.iommu_sva_bind_device("devS", mm1))  # 1 < 2
    assert k.iommu_sva_bind_device("devS", mm2) == ErrPtr(-errno.EOVERFLOW)  # 2 >= 2
    assert k.warnings == []
