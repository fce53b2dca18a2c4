"""ATS as VT-d driver state (issue 16 item 3): info->ats_enabled and the DEVTLB cache tags.

In scalable mode intel_iommu_probe_finalize enables ATS after the default domain's
first attach (4f1492efb495 reverted the probe-time enable), so that attach assigned
only the IOTLB tag; 25b1b75bbaf9 assigns the RID domain's DEVTLB tag there. Tags are
added and removed only while ats_enabled holds (cache_tag_assign / _unassign), and the
PASID teardown's device-TLB flush is skipped without it.
"""

from __future__ import annotations

from dataclasses import replace

from model.bounds import Bounds
from model.core import Kernel
from model.design import UPSTREAM
from model.drivers.vtd import CacheTag

B = Bounds(devices=2, ats_devices=1, processes=0, paging_domains=1, iova_pages=1, phys_pages=1,
           max_pasids=2)


def _tags(k: Kernel, dev: str) -> list[CacheTag]:
    dom = k.groups[k.devices[dev].group or ""].default_domain
    assert dom is not None
    return list(k.drv.tags[dom])  # type: ignore[attr-defined]


def test_probe_finalize_enables_ats_and_assigns_the_devtlb_tag() -> None:
    k = Kernel("vtd", B.device_list())
    info = k.drv.info  # type: ignore[attr-defined]
    assert info["dev0"].ats_enabled and not info["dev1"].ats_enabled
    assert [(t.type, t.pasid, t.dev, t.users) for t in _tags(k, "dev0")] == [
        ("IOTLB", 0, None, 1), ("DEVTLB", 0, "dev0", 1)]
    assert [(t.type, t.dev) for t in _tags(k, "dev1")] == [("IOTLB", None)]  # no ATS: no DEVTLB tag


def test_without_the_tag_an_unmap_misses_the_device_tlb() -> None:
    d = replace(UPSTREAM, name="late-ats", knobs=frozenset({"vtd.ats_late_no_devtlb_tag"}))
    k = Kernel("vtd", B.device_list(), design=d)
    assert [(t.type, t.dev) for t in _tags(k, "dev0")] == [("IOTLB", None)]
    assert k.drv.info["dev0"].ats_enabled  # type: ignore[attr-defined]
    assert k.iommu_device_use_default_domain("dev0") == 0
    assert k.dma_map_page("dev0", 0x0, 0x8000_0000) == 0
    k.driver.take_hw_log(k)
    k.dma_unmap_page("dev0", 0x0)
    log = k.driver.take_hw_log(k)
    assert not any(line.startswith("QI_DEV") for line in log), log
    k2 = Kernel("vtd", B.device_list())
    assert k2.iommu_device_use_default_domain("dev0") == 0
    assert k2.dma_map_page("dev0", 0x0, 0x8000_0000) == 0
    k2.driver.take_hw_log(k2)
    k2.dma_unmap_page("dev0", 0x0)
    assert any(line.startswith("QI_DEV_IOTLB sid=0x0008") for line in k2.driver.take_hw_log(k2))
