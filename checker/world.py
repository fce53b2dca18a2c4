"""The initial world of a check: a design, a hardware kind and bounds make one `Kernel`."""

from __future__ import annotations

from dataclasses import dataclass

from model.bounds import Bounds
from model.core import Kernel
from model.design import Design
from model.drivers.base import Driver

HW_KINDS = ("vtd", "smmuv3")


class ConfigError(ValueError):
    """Bad input (unknown hardware kind, design, invariant...): one line, exit 2."""


def make_driver(hw: str, b: Bounds, design: Design) -> Driver:
    if design.driver_factory is not None:
        driver: Driver = design.driver_factory(hw, b)
        return driver
    if hw == "vtd":
        from model.drivers.vtd import VtdDriver

        return VtdDriver(ndoms=b.ndoms)
    if hw == "smmuv3":
        from model.drivers.smmuv3 import SmmuV3Driver

        return SmmuV3Driver(asid_bits=b.asid_bits)
    if hw == "mock":
        from model.drivers.mock import MockDriver

        return MockDriver()
    raise ConfigError(f"unknown hardware {hw!r} (expected one of: {', '.join(HW_KINDS)}, all)")


@dataclass(frozen=True)
class Config:
    design: Design
    hw: str
    bounds: Bounds

    def build(self) -> Kernel:
        """Boot: probe every device, then bind a DMA-API driver to each (driver core)."""
        k = Kernel(self.hw, self.bounds.device_list(), design=self.design,
                   driver=make_driver(self.hw, self.bounds, self.design))
        for name in sorted(k.devices):
            if k.iommu_device_use_default_domain(name):
                raise ConfigError(f"boot: binding a driver to {name} failed")
        k.warnings.clear()
        return k
