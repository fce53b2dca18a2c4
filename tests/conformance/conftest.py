"""Fixture "S" of kernel-core-api.md section 10, built once per hardware kind.

One driver instance D (max_pasids 2^20) and:

    devA, devB   singleton groups gA, gB, PASID-capable (max_pasids 2^20)
    devC, devD   the two-device group gCD, both PASID-capable
    devN         singleton group gN, max_pasids 0
    devR         singleton group gR, require_direct (RMRR)
    devX         not probed by any IOMMU (group None)

P1, P2 are paging domains of D, Q a paging domain of another driver, h1..h3
fresh attach handles, mm1..mm3 fresh processes (no iommu_mm). Every group is
on its DMA default domain, unowned, with an empty pasid_array; the global
PASID IDA is empty.

To run the suite on another driver, add its hardware kind to HW_KINDS.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from model.core import Kernel
from model.objects import Device, DomainType, Group, PasidEntry

#: Hardware kinds the conformance rows run on. The lead adds "vtd" and
#: "smmuv3" here once those drivers exist; nothing else has to change.
HW_KINDS: list[str] = ["mock", "vtd", "smmuv3"]

#: dev->iommu->max_pasids of the PASID-capable devices (= the instance's 2^20).
MAX_PASIDS = 1 << 20


def PCI_DEVID(bus: int, devfn: int) -> int:
    """include/linux/pci.h: PCI_DEVID(bus, devfn) = bus << 8 | devfn."""
    assert 0 <= bus < 256 and 0 <= devfn < 256
    return bus << 8 | devfn


#: The devices of fixture S, in probe order, with distinct SIDs.
# devA-devD have ATS and PRI: fixture S says every driver callback succeeds, and
# VT-d SVA needs IOPF (PRI) on the device (hw-tables A.12).
S_DEVICES: tuple[Device, ...] = (
    Device("devA", PCI_DEVID(0, 0x08), "gA", MAX_PASIDS, ats=True),
    Device("devB", PCI_DEVID(0, 0x10), "gB", MAX_PASIDS, ats=True),
    Device("devC", PCI_DEVID(0, 0x18), "gCD", MAX_PASIDS, ats=True),
    Device("devD", PCI_DEVID(0, 0x19), "gCD", MAX_PASIDS, ats=True),
    Device("devN", PCI_DEVID(0, 0x20), "gN", 0),
    Device("devR", PCI_DEVID(0, 0x28), "gR", 0, require_direct=True),
    Device("devX", PCI_DEVID(0, 0x30), None, 0),
)


@dataclass(frozen=True)
class DriverCall:
    """One call the core made into the driver (recorded by the fixture)."""

    op: str  # "attach_dev" or "set_dev_pasid"
    domain: int
    dev: str
    pasid: int | None  # None for attach_dev
    old: int | None  # the old domain's id, None for old=NULL


@dataclass(frozen=True)
class S:
    """The fixture-S world: the kernel plus the ids the rows talk about."""

    k: Kernel
    hw: str
    P1: int
    P2: int
    Q: int
    h1: int
    h2: int
    h3: int
    mm1: int
    mm2: int
    mm3: int
    #: every attach_dev / set_dev_pasid the core made since the fixture was built
    drv_calls: list[DriverCall] = field(default_factory=list, compare=False)

    # -- shorthands ----------------------------------------------------------
    def g(self, name: str) -> Group:
        return self.k.groups[name]

    def default(self, group: str) -> int:
        d = self.k.groups[group].default_domain
        assert d is not None
        return d

    def entry(self, group: str, pasid: int) -> PasidEntry | None:
        return self.k.groups[group].pasid_entry(pasid)

    @property
    def blocked_domain(self) -> int:
        """ops->blocked_domain: the driver's static BLOCKED domain."""
        ids = [d.id for d in self.k.domains.values() if d.type is DomainType.BLOCKED and d.static]
        assert len(ids) == 1, ids
        return ids[0]

    def call(self, fn: str, *args: Any, warn: bool = False) -> Any:
        """Run k.<fn>(*args) and check it WARNed exactly once (warn=True) or not at all."""
        before = len(self.k.warnings)
        ret = getattr(self.k, fn)(*args)
        new = self.k.warnings[before:]
        if warn:
            assert len(new) == 1, f"{fn}{args}: expected exactly one WARN, got {new}"
        else:
            assert new == [], f"{fn}{args}: expected no WARN, got {new}"
        return ret

    def calls(self, op: str | None = None) -> list[DriverCall]:
        return [c for c in self.drv_calls if op is None or c.op == op]

    def clear_calls(self) -> None:
        self.drv_calls.clear()


def _record_driver_calls(k: Kernel, log: list[DriverCall]) -> None:
    """Wrap the driver instance's attach_dev / set_dev_pasid so each core->driver call is logged.

    The wrappers delegate to the real driver (mock, vtd, smmuv3), so the
    behaviour under test is unchanged.
    """
    drv = k.driver
    real_attach = drv.attach_dev
    real_set_pasid = drv.set_dev_pasid

    def attach_dev(kk: Kernel, dom: Any, dev: Any, old: Any) -> int:
        log.append(DriverCall("attach_dev", dom.id, dev.name, None, None if old is None else old.id))
        return real_attach(kk, dom, dev, old)

    def set_dev_pasid(kk: Kernel, dom: Any, dev: Any, pasid: int, old: Any) -> int:
        log.append(DriverCall("set_dev_pasid", dom.id, dev.name, pasid, None if old is None else old.id))
        return real_set_pasid(kk, dom, dev, pasid, old)

    drv.attach_dev = attach_dev  # type: ignore[method-assign, assignment]
    drv.set_dev_pasid = set_dev_pasid  # type: ignore[method-assign, assignment]


def build_fixture_s(hw: str) -> S:
    k = Kernel(hw, S_DEVICES)
    P1 = k.iommu_paging_domain_alloc("devA")
    P2 = k.iommu_paging_domain_alloc("devA")
    assert isinstance(P1, int) and isinstance(P2, int), (P1, P2)
    Q = k.alloc_foreign_domain()
    h1, h2, h3 = k.new_attach_handle(), k.new_attach_handle(), k.new_attach_handle()
    mm1, mm2, mm3 = k.mm_alloc(), k.mm_alloc(), k.mm_alloc()
    log: list[DriverCall] = []
    _record_driver_calls(k, log)
    return S(k=k, hw=hw, P1=P1, P2=P2, Q=Q, h1=h1, h2=h2, h3=h3,
             mm1=mm1, mm2=mm2, mm3=mm3, drv_calls=log)


@pytest.fixture(params=HW_KINDS)
def s(request: pytest.FixtureRequest) -> S:
    """A fresh fixture S for each test, on each hardware kind of HW_KINDS."""
    return build_fixture_s(request.param)

