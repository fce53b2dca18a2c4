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


#: the 0/1 bounds (a device or group is there or not)
FLAGS = frozenset({"shared_group", "no_pasid_device", "mixed_group", "shared_ats", "pci_reset",
                   "hotplug", "pri", "passthrough", "reprobe", "alias_device", "smmu_range_inv",
                   "walk_caches", "kernel_pgtable", "nesting", "superpages"})

#: bound -> (least, most, why): the explorer and the Hypothesis machine enumerate
#: these objects as call arguments in every state, so each multiplies the state space;
#: the upper limits are what a check can still run (a larger world is refused, not hung)
LIMITS: dict[str, tuple[int, int, str]] = {
    "devices": (0, 16, "each device adds its own group and default domain to every state"),
    "ats_devices": (0, 16, "a subset of the devices"),
    "max_pasids": (2, 1 << 10, "PASID 0 is IOMMU_NO_PASID; the explorer and the machine "
                               "enumerate every PASID below max_pasids as an argument: 1,024 "
                               "already takes seconds a run (64 is the first PASID of VT-d's "
                               "second leaf table)"),
    "processes": (0, 8, "each mm_alloc event adds a process every later call may name"),
    "paging_domains": (0, 8, "each iommu_paging_domain_alloc adds a domain every later call may name"),
    "iova_pages": (1, 64, "the explorer and the machine enumerate every IOVA page as an argument"),
    "phys_pages": (1, 64, "the explorer and the machine enumerate every physical page as an argument"),
    "ndoms": (3, 1 << 16, "VT-d cap_ndoms: DIDs 0 and 1 are reserved; ND=6 gives 2^16 at most"),
    "asid_bits": (1, 16, "SMMUv3 IDR0.ASID16: 8 or 16 ASID bits at most"),
    "faults": (0, MAX_FAULTS, "each injected failure multiplies the state space"),
    "range_pages": (0, 64, "every size from 2 pages to range_pages is an argument of the ranged "
                           "map, unmap and munmap at every IOVA"),
}


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
    #: the PCI core may reset ATS-capable devices (pci_dev_reset_iommu_prepare / _done);
    #: off by default: two more calls per device in every state
    pci_reset: bool = False
    #: an ATS-capable device may be surprise-removed (pci_surprise_removal); off by default
    hotplug: bool = False
    #: ATS/PRI devices may send page requests for their SVA PASIDs (model/core/iopf.py):
    #: one outstanding request at a time; off by default (three more events per state)
    pri: bool = False
    #: iommu.passthrough=1: every group's default domain is the identity domain (RID in
    #: bypass, the DMA API is dma-direct); off by default: a DMA default domain
    passthrough: bool = False
    #: a device with no driver bound may be released (iommu_release_device) and probed
    #: again (iommu_probe_device: a hot-add in the same slot); off by default
    reprobe: bool = False
    #: add devB: a conventional PCI function behind a PCIe-to-PCI bridge (no PASID, no
    #: ATS) whose DMA carries the bridge's requester ID 0xB8 (a DMA alias); off by default
    alias_device: bool = False
    #: ranged calls: iommu_map / iommu_unmap / a CPU munmap of 2..range_pages pages at any
    #: IOVA page, and iommu_flush_iotlb_all; 0 (the default): single pages only
    range_pages: int = 0
    #: the SMMU has range invalidation (IDR3.RIL, ARM_SMMU_FEAT_RANGE_INV): TLBI by VA with
    #: TG / SCALE / NUM instead of one command per page; a hardware feature, no new call
    smmu_range_inv: bool = False
    #: leaf table pages and walk caches (VT-d paging-structure caches, the SMMUv3 walk
    #: cache): the first map of a 2 MiB region allocates its leaf table page, and
    #: iommu_unmap of the 2 MiB (and, for a process, a munmap of it) frees it; off by
    #: default (two more calls per state, and no symmetry reduction)
    walk_caches: bool = False
    #: x86 SVA's kernel half (needs walk_caches): init_mm's vmalloc leaf table page, which
    #: every process page table shares; a device may DMA a kernel address with a PASID
    #: (the walk caches the pointer) and the kernel may free the page (vfree); off by default
    kernel_pgtable: bool = False
    #: iommufd nesting: a nesting parent (IOMMU_HWPT_ALLOC_NEST_PARENT, a stage-2 paging
    #: domain) and nested domains on it, each translating through a guest's stage-1 table
    #: (IOVA page i -> IPA page i ^ 1 for the first two pages) and the parent's table; off by
    #: default (two more calls per state)
    nesting: bool = False
    #: 2 MiB leaves: iommu_map / iommu_unmap of SZ_2M at IOVA 0 (iommu_pgsize picks the
    #: domain's 2 MiB page size: a VT-d superpage, an SMMUv3 level-2 block) and the
    #: unmaps that meet such a leaf (VT-d's generic page table clears it whole, SMMUv3's
    #: io-pgtable-arm refuses a partial one); TLB entries remember the leaf's size; off
    #: by default (two more calls per state)
    superpages: bool = False

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name in FLAGS:
                if v not in (0, 1) or not isinstance(v, int):
                    raise BoundsError(f"bound {f.name}={v!r} is a flag: 0 or 1")
                continue
            if not isinstance(v, int) or isinstance(v, bool):
                raise BoundsError(f"bound {f.name}={v!r} must be an integer")
            lo, hi, why = LIMITS[f.name]
            if not lo <= v <= hi:
                raise BoundsError(f"bound {f.name}={v}: {lo}..{hi} ({why})")
        if self.groups() == 0:
            raise BoundsError("bounds leave no device to check")
        if self.range_pages == 1:
            raise BoundsError("bound range_pages=1 gives no ranged call (sizes start at 2 pages): "
                              "0 leaves them out, 2..64 puts them in")
        if self.range_pages and self.phys_pages > 1:
            # a ranged map targets consecutive physical pages, which the explorer's
            # relabelling of physical pages (first seen, first named) does not preserve
            raise BoundsError(f"bound range_pages={self.range_pages} needs phys_pages=1 "
                              f"(got {self.phys_pages}): a ranged map's consecutive physical "
                              f"pages and the explorer's physical-page symmetry do not mix")
        if self.range_pages > self.iova_pages:
            raise BoundsError(f"bound range_pages={self.range_pages} is larger than the IOVA space "
                              f"(iova_pages={self.iova_pages}): raise iova_pages")
        if self.kernel_pgtable and not self.walk_caches:
            raise BoundsError("bound kernel_pgtable=1 needs walk_caches=1 (the kernel half is "
                              "a leaf table page)")
        if self.nesting and self.walk_caches:
            raise BoundsError("bounds nesting=1 and walk_caches=1 do not mix: the paging-structure "
                              "caches of a nested (two-stage) walk are not modelled")
        if self.superpages and self.nesting:
            raise BoundsError("bounds superpages=1 and nesting=1 do not mix: 2 MiB leaves in a "
                              "nested (two-stage) walk are not modelled")
        if self.superpages and self.phys_pages > 1:
            # a block maps 512 consecutive frames from phys page 0, which the explorer's
            # relabelling of physical pages does not preserve (as range_pages)
            raise BoundsError(f"bound superpages=1 needs phys_pages=1 (got {self.phys_pages}): "
                              f"a 2 MiB block's consecutive physical pages and the explorer's "
                              f"physical-page symmetry do not mix")
        if self.shared_ats and not (self.shared_group or self.mixed_group):
            raise BoundsError("bound shared_ats=1 needs shared_group=1 or mixed_group=1")
        # Every group's default DMA domain takes a DID (VT-d) and an ASID (SMMUv3) at boot,
        # and its first attach must not fail (iommu_setup_default_domain): a world whose
        # boot runs out of either is not a world the kernel can boot.
        if self.groups() > self.ndoms - 2:
            raise BoundsError(f"bounds give {self.groups()} groups but ndoms={self.ndoms} has "
                              f"{self.ndoms - 2} DIDs (2..{self.ndoms - 1}) for their default "
                              f"domains: raise ndoms or lower the device count")
        if self.groups() > (1 << self.asid_bits) - 1:
            raise BoundsError(f"bounds give {self.groups()} groups but asid_bits={self.asid_bits} has "
                              f"{(1 << self.asid_bits) - 1} ASIDs for their default domains: "
                              f"raise asid_bits or lower the device count")

    def groups(self) -> int:
        """How many IOMMU groups the world boots (each with its own default domain)."""
        return (self.devices + int(self.shared_group) + int(self.no_pasid_device)
                + int(self.mixed_group) + int(self.alias_device))

    def device_list(self) -> tuple[Device, ...]:
        devs = []
        for i in range(self.devices):
            devs.append(Device(f"dev{i}", sid=0x08 * (i + 1), group=f"g{i}",
                               max_pasids=self.max_pasids, ats=(i < self.ats_devices),
                               identity=bool(self.passthrough)))
        if self.shared_group:
            devs.append(Device("devS0", sid=0x80, group="gS", max_pasids=self.max_pasids,
                               ats=self.shared_ats, identity=bool(self.passthrough)))
            devs.append(Device("devS1", sid=0x81, group="gS", max_pasids=self.max_pasids,
                               ats=self.shared_ats, identity=bool(self.passthrough)))
        if self.no_pasid_device:
            devs.append(Device("devN", sid=0x90, group="gN", max_pasids=0,
                               identity=bool(self.passthrough)))
        if self.mixed_group:
            devs.append(Device("devM0", sid=0xA0, group="gM", max_pasids=self.max_pasids,
                               ats=self.shared_ats, identity=bool(self.passthrough)))
            devs.append(Device("devM1", sid=0xA1, group="gM", max_pasids=0,
                               identity=bool(self.passthrough)))
        if self.alias_device:
            devs.append(Device("devB", sid=0xB0, group="gB", max_pasids=0,
                               identity=bool(self.passthrough), alias_sid=0xB8))
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
            if name in kw:
                raise BoundsError(f"bound {name} is given twice")
            try:
                n = int(value)
            except ValueError:
                raise BoundsError(f"bound {name}={value!r} is not an integer") from None
            if name in FLAGS and n not in (0, 1):
                raise BoundsError(f"bound {name}={n} is a flag: 0 or 1")
            kw[name] = bool(n) if name in FLAGS else n
        got = replace(self, **kw)  # type: ignore[arg-type]  # int and bool fields alike
        # the default ats_devices=2 with devices=1 means "every device has ATS"; a value
        # given explicitly must name devices that exist
        if "ats_devices" in kw and got.ats_devices > got.devices:
            raise BoundsError(f"bound ats_devices={got.ats_devices}: at most devices={got.devices} "
                              f"(the first ats_devices of dev0..dev{max(got.devices - 1, 0)} have ATS)")
        return got

    @classmethod
    def from_json(cls, data: object) -> "Bounds":
        """The bounds object of a trace or results file, every field checked (BoundsError)."""
        if not isinstance(data, dict):
            raise BoundsError(f"bounds must be an object of NAME: VALUE, not {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        for name, v in data.items():
            if name not in known:
                raise BoundsError(f"unknown bound {name!r} (known: {', '.join(sorted(known))})")
            if name not in FLAGS and (isinstance(v, bool) or not isinstance(v, int)):
                raise BoundsError(f"bound {name}={v!r} must be an integer")
            if name in FLAGS and v not in (0, 1, True, False):
                raise BoundsError(f"bound {name}={v!r} is a flag: true/false or 0/1")
        return cls(**{n: (bool(v) if n in FLAGS else v) for n, v in data.items()})
