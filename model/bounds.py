"""Bounds: the finite world a check explores.

Small on purpose: few devices (one with ATS, one without PASID support, an
optional shared group, optionally with ATS, an optional group mixing a PASID-capable
device and one without PASID), few PASIDs, processes, domains and IOVA pages, and
DID/ASID spaces small enough that reuse — where stale-cache bugs bite — is
reached in a few steps.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from model.objects import Device


#: at most this many injected failures per run (each one multiplies the state space)
MAX_FAULTS = 3


class BoundsError(ValueError):
    """Impossible bounds (reported by the CLI as one line, exit 2)."""


@dataclass(frozen=True)
class Bounds:
    devices: int = 2  # PASID-capable devices, each in its own group
    ats_devices: int = 2  # how many of them (dev0, dev1, ...) have ATS and PRI
    shared_group: bool = False  # add devS0 + devS1 sharing one group (PASID-capable)
    no_pasid_device: bool = False  # add devN with max_pasids = 0
    #: add devM0 (PASID-capable) and devM1 (no PASID) sharing group gM: a non-PASID
    #: function behind the same ACS boundary as a PASID-capable one
    mixed_group: bool = False
    shared_ats: bool = False  # devS0, devS1 (and devM0) have ATS and PRI
    max_pasids: int = 4  # per device: global PASIDs 1..3 exist, so the allocator runs out
    processes: int = 2  # at most this many mm_alloc events in a run
    paging_domains: int = 2  # at most this many iommu_paging_domain_alloc calls in a run
    iova_pages: int = 2  # IOVAs 0x0, 0x1000, ...
    phys_pages: int = 2  # distinct physical pages mappings may target
    ndoms: int = 6  # VT-d cap_ndoms: DIDs 2..ndoms-1 for paging domains
    asid_bits: int = 3  # SMMUv3: ASIDs 1..7
    faults: int = 0  # injected -ENOMEM failures per run (fail_nth); 0: none, the fast default

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool):
                continue
            if not isinstance(v, int) or v < 0:
                raise BoundsError(f"bound {f.name}={v!r} must be a non-negative integer")
        if self.devices + (int(self.shared_group) + int(self.mixed_group)) * 2 + int(self.no_pasid_device) == 0:
            raise BoundsError("bounds leave no device to check")
        if self.shared_ats and not (self.shared_group or self.mixed_group):
            raise BoundsError("bound shared_ats=1 needs shared_group=1 or mixed_group=1")
        if self.devices > 16:
            raise BoundsError(f"bound devices={self.devices} is too large (at most 16)")
        if self.max_pasids < 2:
            raise BoundsError(f"bound max_pasids={self.max_pasids} leaves no PASID besides IOMMU_NO_PASID")
        if self.iova_pages < 1 or self.phys_pages < 1:
            raise BoundsError("bounds need at least one IOVA page and one physical page")
        if self.ndoms < 3:
            raise BoundsError(f"bound ndoms={self.ndoms}: DIDs 0 and 1 are reserved, so at least 3")
        if not 1 <= self.asid_bits <= 16:
            raise BoundsError(f"bound asid_bits={self.asid_bits} must be 1..16")
        if self.faults > MAX_FAULTS:
            raise BoundsError(f"bound faults={self.faults} is too large (at most {MAX_FAULTS})")

    def device_list(self) -> tuple[Device, ...]:
        devs = []
        for i in range(self.devices):
            devs.append(Device(f"dev{i}", sid=0x08 * (i + 1), group=f"g{i}",
                               max_pasids=self.max_pasids, ats=(i < self.ats_devices)))
        if self.shared_group:
            devs.append(Device("devS0", sid=0x80, group="gS", max_pasids=self.max_pasids,
                               ats=self.shared_ats))
            devs.append(Device("devS1", sid=0x81, group="gS", max_pasids=self.max_pasids,
                               ats=self.shared_ats))
        if self.no_pasid_device:
            devs.append(Device("devN", sid=0x90, group="gN", max_pasids=0))
        if self.mixed_group:
            devs.append(Device("devM0", sid=0xA0, group="gM", max_pasids=self.max_pasids,
                               ats=self.shared_ats))
            devs.append(Device("devM1", sid=0xA1, group="gM", max_pasids=0))
        return tuple(devs)

    def iovas(self) -> tuple[int, ...]:
        return tuple(i << 12 for i in range(self.iova_pages))

    def phys(self) -> tuple[int, ...]:
        """Physical pages for mappings, far above the table pages so they never alias."""
        return tuple(0x8000_0000 + (i << 12) for i in range(self.phys_pages))

    @classmethod
    def parse(cls, text: str) -> "Bounds":
        """'devices=2,processes=1,shared_group=1' -> Bounds (for the CLI)."""
        return cls().override(text)

    def override(self, text: str) -> "Bounds":
        """These bounds with 'NAME=VALUE,...' replaced (BoundsError names a bad one)."""
        known = {f.name: f for f in fields(self)}
        kw: dict[str, int | bool] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, sep, value = part.partition("=")
            name = name.strip()
            if not sep:
                raise BoundsError(f"bound {part!r} is not NAME=VALUE")
            if name not in known:
                raise BoundsError(f"unknown bound {name!r} (known: {', '.join(known)})")
            try:
                n = int(value)
            except ValueError:
                raise BoundsError(f"bound {name}={value!r} is not an integer") from None
            kw[name] = bool(n) if isinstance(getattr(self, name), bool) else n
        return replace(self, **kw)  # type: ignore[arg-type]  # int and bool fields alike
