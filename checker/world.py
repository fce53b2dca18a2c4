"""The initial world of a check: a design, a hardware kind and bounds make one `Kernel`."""

from __future__ import annotations

from dataclasses import dataclass

from model.bounds import Bounds
from model.core import Kernel
from model.design import Design
from model import drivers
from model.drivers.base import Driver

HW_KINDS = ("vtd", "smmuv3")


class ConfigError(ValueError):
    """Bad input (unknown hardware kind, design, invariant...): one line, exit 2."""


def make_driver(hw: str, b: Bounds, design: Design) -> Driver:
    """The design's own driver if it brings one, else the model's (model.drivers.make_driver)."""
    if design.driver_factory is not None:
        driver: Driver = design.driver_factory(hw, b)
        return driver
    try:
        return drivers.make_driver(hw, b)
    except drivers.UnknownHardware:
        raise ConfigError(f"unknown hardware {hw!r} (expected one of: {', '.join(HW_KINDS)}, all)") from None


@dataclass(frozen=True)
class Config:
    design: Design
    hw: str
    bounds: Bounds

    def build(self) -> Kernel:
        """Boot: probe every device, then bind a DMA-API driver to each (driver core)."""
        factory = self.design.kernel_factory or Kernel
        k = factory(self.hw, self.bounds.device_list(), design=self.design,
                    driver=make_driver(self.hw, self.bounds, self.design))
        if not isinstance(k, Kernel):
            raise ConfigError(f"design {self.design.name}: kernel_factory returned a "
                              f"{type(k).__name__}, not a model.core.Kernel")
        for name in sorted(k.devices):
            if k.iommu_device_use_default_domain(name):
                raise ConfigError(f"boot: binding a driver to {name} failed")
        k.warnings.clear()
        k.faults_left = self.bounds.faults  # boot itself never fails
        return k
