"""Rows 1-30 of the scenario table, kernel-core-api.md section 10 (current kernel, [CUR]).

One test per row. Each test asserts every call's return value, the resulting
group state (RID domain, owner, owner_cnt, pasid_array) and WARN / no WARN for
every call (`s.call(..., warn=...)` checks the growth of `k.warnings`). Where a
row names driver calls ("set_dev_pasid called for devC and devD", "no driver
call") the calls recorded by the fixture are checked too.

These assert the reference's values. If the model disagrees, the test fails:
it is not to be weakened to match the model.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from model.objects import IS_ERR, PTR_ERR, DomainType, ErrPtr, PasidEntry

if TYPE_CHECKING:
    from conftest import S

EBUSY, EINVAL, ENODEV, EPERM, ENOMEM, EOPNOTSUPP = (
    -errno.EBUSY, -errno.EINVAL, -errno.ENODEV, -errno.EPERM, -errno.ENOMEM, -errno.EOPNOTSUPP,
)


def assert_unowned_default(s: "S", group: str) -> None:
    g = s.g(group)
    assert g.domain == g.default_domain
    assert g.owner is None
    assert g.owner_cnt == 0


# ---------------------------------------------------------------- fixture S
def test_fixture_s_initial_state(s: "S") -> None:
    k = s.k
    assert set(k.groups) == {"gA", "gB", "gCD", "gN", "gR"}
    assert k.groups["gCD"].devices == ("devC", "devD")
    for name, g in k.groups.items():
        assert g.default_domain is not None, name
        assert k.domains[g.default_domain].type is DomainType.DMA, name
        assert g.domain == g.default_domain, name
        assert g.owner is None and g.owner_cnt == 0, name
        assert g.pasid_array == (), name
    assert len({g.default_domain for g in k.groups.values()}) == 5  # one default domain per group
    assert k.group_of("devX") is None
    assert len({d.sid for d in k.devices.values()}) == len(k.devices)
    assert k.devices["devA"].max_pasids == 2**20 and k.devices["devN"].max_pasids == 0
    assert k.devices["devR"].require_direct
    for dom in (s.P1, s.P2):
        assert k.domains[dom].type.is_paging and k.domains[dom].owner == k.driver.name
    assert k.domains[s.Q].owner != k.driver.name
    assert len({s.P1, s.P2, s.Q}) == 3 and len({s.h1, s.h2, s.h3}) == 3
    for mm in (s.mm1, s.mm2, s.mm3):
        assert k.mms[mm].pasid is None and k.mms[mm].sva_domains == ()
    assert k.global_pasids == frozenset()
    assert k.warnings == []


# ---------------------------------------------------------- section 2: RID
def test_row_01_attach_device_to_default(s: "S") -> None:
    assert s.call("iommu_attach_device", s.P1, "devA") == 0
    assert s.g("gA").domain == s.P1
    assert s.g("gA").owner_cnt == 0 and s.g("gA").owner is None


def test_row_02_attach_other_domain_when_not_core_is_ebusy(s: "S") -> None:
    assert s.call("iommu_attach_device", s.P1, "devA") == 0
    assert s.call("iommu_attach_device", s.P2, "devA") == EBUSY
    assert s.g("gA").domain == s.P1


def test_row_03_attach_same_domain_twice_is_ebusy(s: "S") -> None:
    assert s.call("iommu_attach_device", s.P1, "devA") == 0
    assert s.call("iommu_attach_device", s.P1, "devA") == EBUSY
    assert s.g("gA").domain == s.P1


def test_row_04_detach_device_restores_default(s: "S") -> None:
    dA = s.default("gA")
    assert s.call("iommu_attach_device", s.P1, "devA") == 0
    assert s.call("iommu_detach_device", s.P1, "devA") is None
    assert s.g("gA").domain == dA
    assert s.call("iommu_attach_device", s.P2, "devA") == 0
    assert s.g("gA").domain == s.P2


def test_row_05_detach_wrong_domain_warns(s: "S") -> None:
    assert s.call("iommu_attach_device", s.P1, "devA") == 0
    assert s.call("iommu_detach_device", s.P2, "devA", warn=True) is None
    assert s.g("gA").domain == s.P1


def test_row_06_attach_device_needs_singleton_attach_group_does_not(s: "S") -> None:
    dCD = s.default("gCD")
    assert s.call("iommu_attach_device", s.P1, "devC") == EINVAL
    assert s.g("gCD").domain == dCD
    assert [c for c in s.calls("attach_dev") if c.domain == s.P1] == []
    assert s.call("iommu_attach_group", s.P1, "gCD") == 0
    assert s.g("gCD").domain == s.P1
    # both devC and devD attached
    assert sorted(c.dev for c in s.calls("attach_dev") if c.domain == s.P1) == ["devC", "devD"]


def test_row_07_unprobed_device_is_enodev(s: "S") -> None:
    assert s.call("iommu_attach_device", s.P1, "devX") == ENODEV
    assert s.call("iommu_attach_device_pasid", s.P1, "devX", 5, None) == ENODEV
    ret = s.call("iommu_sva_bind_device", "devX", s.mm1)
    assert ret == ErrPtr(-errno.ENODEV)
    assert IS_ERR(ret) and PTR_ERR(ret) == ENODEV
    assert s.call("iommu_device_claim_dma_owner", "devX", "o") == ENODEV
    # the NULL-group check comes first: nothing was allocated
    assert s.k.mms[s.mm1].pasid is None
    assert s.k.global_pasids == frozenset()
    assert s.drv_calls == []


def test_row_08_attach_foreign_domain_is_einval(s: "S") -> None:
    assert s.call("iommu_attach_device", s.Q, "devA") == EINVAL
    assert_unowned_default(s, "gA")


# --------------------------------------------------------- section 3: PASID
def test_row_09_attach_pasid_zero_is_einval(s: "S") -> None:
    assert s.call("iommu_attach_device_pasid", s.P1, "devA", 0, None) == EINVAL
    assert s.g("gA").pasid_array == ()
    assert s.calls("set_dev_pasid") == []


def test_row_10_attach_occupied_pasid_is_ebusy(s: "S") -> None:
    assert s.call("iommu_attach_device_pasid", s.P1, "devA", 5, None) == 0
    assert s.entry("gA", 5) == PasidEntry(s.P1, None)
    assert s.call("iommu_attach_device_pasid", s.P1, "devA", 5, None) == EBUSY
    assert s.call("iommu_attach_device_pasid", s.P2, "devA", 5, s.h1) == EBUSY
    assert s.g("gA").pasid_array == ((5, PasidEntry(s.P1, None)),)
    assert [c.domain for c in s.calls("set_dev_pasid")] == [s.P1]


def test_row_11_pasid_must_be_below_max_pasids(s: "S") -> None:
    assert s.call("iommu_attach_device_pasid", s.P1, "devA", 2**20, None) == EINVAL
    assert s.g("gA").pasid_array == ()
    assert s.call("iommu_attach_device_pasid", s.P1, "devA", 2**20 - 1, None) == 0
    assert s.g("gA").pasid_array == ((2**20 - 1, PasidEntry(s.P1, None)),)


def test_row_12_domain_without_set_dev_pasid_is_eopnotsupp_before_pasid0_check(s: "S") -> None:
    Dnp = s.k.alloc_domain_without_set_dev_pasid()
    assert s.call("iommu_attach_device_pasid", Dnp, "devA", 0, None) == EOPNOTSUPP
    assert s.g("gA").pasid_array == ()


def test_row_13_attach_pasid_foreign_domain_is_einval(s: "S") -> None:
    assert s.call("iommu_attach_device_pasid", s.Q, "devA", 5, None) == EINVAL
    assert s.g("gA").pasid_array == ()
    assert s.calls("set_dev_pasid") == []


def test_row_14_detach_pasid_then_reattach(s: "S") -> None:
    assert s.call("iommu_attach_device_pasid", s.P1, "devA", 5, None) == 0
    assert s.entry("gA", 5) == PasidEntry(s.P1, None)
    s.clear_calls()
    assert s.call("iommu_detach_device_pasid", s.P1, "devA", 5) is None
    # blocked domain's set_dev_pasid with old=P1; entry erased
    assert [(c.domain, c.dev, c.pasid, c.old) for c in s.calls("set_dev_pasid")] == [
        (s.blocked_domain, "devA", 5, s.P1)
    ]
    assert s.entry("gA", 5) is None
    assert s.g("gA").pasid_array == ()
    assert s.call("iommu_attach_device_pasid", s.P2, "devA", 5, None) == 0
    assert s.g("gA").pasid_array == ((5, PasidEntry(s.P2, None)),)


def test_row_15_replace_unattached_pasid_or_null_handle_is_einval(s: "S") -> None:
    assert s.call("iommu_replace_device_pasid", s.P2, "devA", 7, s.h1) == EINVAL
    assert s.call("iommu_replace_device_pasid", s.P2, "devA", 7, None) == EINVAL
    assert s.g("gA").pasid_array == ()
    assert s.calls("set_dev_pasid") == []


def test_row_16_replace_pasid_handle_rules(s: "S") -> None:
    assert s.call("iommu_attach_device_pasid", s.P1, "devA", 5, s.h1) == 0
    assert s.entry("gA", 5) == PasidEntry(s.P1, s.h1)
    assert s.k.handles[s.h1].domain == s.P1
    s.clear_calls()

    assert s.call("iommu_replace_device_pasid", s.P2, "devA", 5, s.h2) == 0
    assert [(c.domain, c.dev, c.pasid, c.old) for c in s.calls("set_dev_pasid")] == [
        (s.P2, "devA", 5, s.P1)
    ]
    assert s.entry("gA", 5) == PasidEntry(s.P2, s.h2)
    assert s.k.handles[s.h2].domain == s.P2
    s.clear_calls()

    # the same handle again: WARN + -EINVAL, nothing changes
    assert s.call("iommu_replace_device_pasid", s.P2, "devA", 5, s.h2, warn=True) == EINVAL
    assert s.entry("gA", 5) == PasidEntry(s.P2, s.h2)
    assert s.drv_calls == []

    # same domain, new handle: 0, no driver call, the entry's handle becomes h3
    assert s.call("iommu_replace_device_pasid", s.P2, "devA", 5, s.h3) == 0
    assert s.drv_calls == []
    assert s.g("gA").pasid_array == ((5, PasidEntry(s.P2, s.h3)),)
    assert s.k.handles[s.h3].domain == s.P2


def test_row_17_replace_failure_keeps_old_entry(s: "S") -> None:
    assert s.call("iommu_attach_device_pasid", s.P1, "devA", 5, s.h1) == 0
    s.k.inject_failure("set_dev_pasid", -errno.ENOMEM)
    assert s.call("iommu_replace_device_pasid", s.P2, "devA", 5, s.h2) == ENOMEM
    assert s.g("gA").pasid_array == ((5, PasidEntry(s.P1, s.h1)),)
    assert s.k.handles[s.h1].domain == s.P1


def test_row_18_pasid_table_is_per_group(s: "S") -> None:
    assert s.call("iommu_attach_device_pasid", s.P1, "devC", 9, None) == 0
    assert sorted((c.domain, c.dev, c.pasid, c.old) for c in s.calls("set_dev_pasid")) == [
        (s.P1, "devC", 9, None),
        (s.P1, "devD", 9, None),
    ]
    assert s.g("gCD").pasid_array == ((9, PasidEntry(s.P1, None)),)
    s.clear_calls()
    assert s.call("iommu_attach_device_pasid", s.P2, "devD", 9, None) == EBUSY
    assert s.g("gCD").pasid_array == ((9, PasidEntry(s.P1, None)),)
    assert s.drv_calls == []


def test_row_19_pasid_attach_without_pasid_capable_device_records_entry(s: "S") -> None:
    assert s.call("iommu_attach_device_pasid", s.P1, "devN", 3, None) == 0
    assert s.drv_calls == []  # no driver call
    assert s.g("gN").pasid_array == ((3, PasidEntry(s.P1, None)),)


# ------------------------------------------------------ section 2: ownership
def test_row_20_bound_device_refuses_dma_owner_claim(s: "S") -> None:
    dA = s.default("gA")
    assert s.call("iommu_device_use_default_domain", "devA") == 0
    assert s.g("gA").owner_cnt == 1 and s.g("gA").owner is None
    assert s.call("iommu_device_claim_dma_owner", "devA", "o") == EPERM
    g = s.g("gA")
    assert g.owner_cnt == 1 and g.owner is None and g.domain == dA


def test_row_21_device_claim_counts_and_release(s: "S") -> None:
    dA = s.default("gA")
    assert s.call("iommu_device_claim_dma_owner", "devA", "o") == 0
    g = s.g("gA")
    assert g.blocking_domain is not None and g.blocking_domain != dA
    assert g.domain == g.blocking_domain
    assert g.owner == "o" and g.owner_cnt == 1

    assert s.call("iommu_device_claim_dma_owner", "devA", "o") == 0
    assert s.g("gA").owner_cnt == 2

    assert s.call("iommu_device_claim_dma_owner", "devA", "o2") == EPERM
    assert s.g("gA").owner_cnt == 2 and s.g("gA").owner == "o"

    assert s.call("iommu_device_use_default_domain", "devA") == EBUSY
    assert s.g("gA").owner_cnt == 2

    assert s.call("iommu_device_release_dma_owner", "devA") is None
    g = s.g("gA")
    assert g.owner_cnt == 1 and g.owner == "o" and g.domain == g.blocking_domain

    assert s.call("iommu_device_release_dma_owner", "devA") is None
    g = s.g("gA")
    assert g.owner_cnt == 0 and g.owner is None and g.domain == dA


def test_row_22_group_claim_rules(s: "S") -> None:
    assert s.call("iommu_group_claim_dma_owner", "gA", "o") == 0
    g = s.g("gA")
    assert g.owner == "o" and g.owner_cnt == 1 and g.domain == g.blocking_domain
    assert s.call("iommu_group_claim_dma_owner", "gA", "o") == EPERM
    assert s.g("gA").owner_cnt == 1
    assert s.call("iommu_group_claim_dma_owner", "gB", None, warn=True) == EINVAL
    assert_unowned_default(s, "gB")


def test_row_23_claim_refused_while_pasid_attached(s: "S") -> None:
    assert s.call("iommu_attach_device_pasid", s.P1, "devA", 5, None) == 0
    assert s.call("iommu_device_claim_dma_owner", "devA", "o") == EBUSY
    assert_unowned_default(s, "gA")
    assert s.g("gA").pasid_array == ((5, PasidEntry(s.P1, None)),)


def test_row_24_claim_refused_while_rid_not_on_default(s: "S") -> None:
    assert s.call("iommu_attach_device", s.P1, "devA") == 0
    assert s.call("iommu_device_claim_dma_owner", "devA", "o") == EBUSY
    g = s.g("gA")
    assert g.domain == s.P1 and g.owner is None and g.owner_cnt == 0


def test_row_25_detach_while_owned_goes_to_blocking(s: "S") -> None:
    dA = s.default("gA")
    assert s.call("iommu_device_claim_dma_owner", "devA", "o") == 0
    assert s.call("iommu_attach_device", s.P1, "devA") == 0
    assert s.g("gA").domain == s.P1
    assert s.call("iommu_detach_device", s.P1, "devA") is None
    g = s.g("gA")
    assert g.blocking_domain is not None
    assert g.domain == g.blocking_domain and g.domain != dA
    assert g.owner == "o" and g.owner_cnt == 1


def test_row_26_release_forces_default_domain(s: "S") -> None:
    dA = s.default("gA")
    assert s.call("iommu_device_claim_dma_owner", "devA", "o") == 0
    assert s.call("iommu_attach_device", s.P1, "devA") == 0
    assert s.call("iommu_device_release_dma_owner", "devA") is None
    assert s.g("gA").domain == dA
    assert_unowned_default(s, "gA")


def test_row_27_claim_refused_for_require_direct(s: "S") -> None:
    assert s.call("iommu_device_claim_dma_owner", "devR", "o") == EINVAL
    assert_unowned_default(s, "gR")


def test_row_28_second_driver_probe_refused_while_pasid_attached(s: "S") -> None:
    assert s.call("iommu_device_use_default_domain", "devC") == 0
    assert s.g("gCD").owner_cnt == 1
    assert s.call("iommu_attach_device_pasid", s.P1, "devC", 9, None) == 0
    assert s.call("iommu_device_use_default_domain", "devD") == EBUSY
    g = s.g("gCD")
    assert g.owner_cnt == 1 and g.owner is None
    assert g.pasid_array == ((9, PasidEntry(s.P1, None)),)


def test_row_29_unuse_default_domain_with_sva_bound_warns(s: "S") -> None:
    assert s.call("iommu_device_use_default_domain", "devA") == 0
    assert s.g("gA").owner_cnt == 1
    H = s.call("iommu_sva_bind_device", "devA", s.mm1)
    assert not IS_ERR(H), H
    assert isinstance(H, int) and s.k.handles[H].kind == "sva"
    pasid = s.k.mms[s.mm1].pasid
    assert pasid == 1  # the global IDA was empty
    assert s.entry("gA", pasid) is not None and s.entry("gA", pasid).handle == H  # type: ignore[union-attr]
    assert s.call("iommu_device_unuse_default_domain", "devA", warn=True) is None
    assert s.g("gA").owner_cnt == 1  # not decremented
    assert s.entry("gA", pasid) is not None and s.entry("gA", pasid).handle == H  # type: ignore[union-attr]


def test_row_30_rid_attach_allowed_while_pasid_attached(s: "S") -> None:
    assert s.call("iommu_attach_device_pasid", s.P2, "devA", 5, None) == 0
    assert s.call("iommu_attach_device", s.P1, "devA") == 0
    g = s.g("gA")
    assert g.domain == s.P1
    assert g.pasid_array == ((5, PasidEntry(s.P2, None)),)
