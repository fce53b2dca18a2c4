"""DMA aliases (bound alias_device=1, world alias1): devB behind a PCIe-to-PCI bridge.

Its DMA carries the bridge's requester ID 0xB8, so the drivers program that ID like
its own 0xB0 (pci_for_each_dma_alias): VT-d an SM context entry for each, pointing at
the one PASID table; SMMUv3 the same STE in each stream (IORT maps each alias).
"""

from __future__ import annotations

import pytest

from checker.explore import explore
from checker.worlds import WORLDS
from invariants.catalog import CATALOG
from model.core import Kernel
from model.design import UPSTREAM

B = WORLDS["alias1"].to_bounds()
PA = 0x8000_0000


def _mapped(hwkind: str) -> Kernel:
    k = Kernel(hwkind, B.device_list())
    assert k.iommu_device_use_default_domain("devB") == 0
    assert k.dma_map_page("devB", 0x0, PA) == 0
    return k


def test_the_device_has_its_own_rid_and_the_alias() -> None:
    (d,) = B.device_list()
    assert (d.name, d.rids, d.wire_sid, d.max_pasids, d.ats) == ("devB", (0xB0, 0xB8), 0xB8, 0, False)


def test_vtd_programs_a_context_entry_for_each_rid_on_one_pasid_table() -> None:
    k = _mapped("vtd")
    ctx = [line.strip() for line in k.driver.dump(k) if line.strip().startswith("context ")]
    assert len(ctx) == 2
    assert ctx[0].startswith("context 00:16.0 sid 0x00b0") and ctx[1].startswith("context 00:17.0 sid 0x00b8")
    assert ctx[0].split("pasiddirptr=")[1] == ctx[1].split("pasiddirptr=")[1]
    assert [o.pa for o in k.dma("devB", None, 0x0)] == [PA]  # through the alias's entry


def test_smmuv3_installs_the_ste_in_both_streams() -> None:
    k = _mapped("smmuv3")
    stes = [line.strip() for line in k.driver.dump(k) if "STE [" in line]
    assert [s.split(":")[0] for s in stes] == ["sid 0xb0", "sid 0xb8"]
    assert stes[0].split(":", 1)[1] == stes[1].split(":", 1)[1]
    assert [o.pa for o in k.dma("devB", None, 0x0)] == [PA]


@pytest.mark.parametrize("hwkind", ["vtd", "smmuv3"])
def test_release_tears_down_every_alias(hwkind: str) -> None:
    k = Kernel(hwkind, B.device_list())
    k.iommu_device_unuse_default_domain("devB")
    k.driver.take_hw_log(k)
    k.iommu_release_device("devB")
    log = k.driver.take_hw_log(k)
    if hwkind == "vtd":
        assert "QI_CC device sid=0x00b0 fm=0 did=0" in log and "QI_CC device sid=0x00b8 fm=0 did=0" in log
        assert not any(line.strip().startswith("context ") for line in k.driver.dump(k))
    else:
        assert {line.split()[1] for line in log if line.startswith("CMD_CFGI_STE")} == {"sid=0xb0", "sid=0xb8"}
    assert [str(o) for o in k.dma("devB", None, 0x0)][0].startswith("faults")


@pytest.mark.parametrize("hwkind,index", [("vtd", 0), ("smmuv3", 1)])
def test_upstream_holds_in_the_alias_world(hwkind: str, index: int) -> None:
    _, out = explore(UPSTREAM, hwkind, B, tuple(CATALOG), saturate=True)
    assert out.violation is None and out.complete
    assert out.states == WORLDS["alias1"].states[index]
