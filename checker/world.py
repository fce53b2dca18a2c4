"""The initial world of a check: a design, a hardware kind and bounds make one `Kernel`."""

from __future__ import annotations

from dataclasses import dataclass

from model.bounds import Bounds
from model.core import Kernel
from model.design import Design
from model import drivers
from model.drivers.base import Driver

from checker.inputs import InputError

HW_KINDS = ("vtd", "smmuv3")


class ConfigError(InputError):
    """Bad input (unknown hardware kind, design, invariant...): one line, exit 2."""


def make_driver(hw: str, b: Bounds, design: Design) -> Driver:
    """The design's own driver if it brings one, else the model's (model.drivers.make_driver)."""
    if design.driver_factory is not None:
        # the design file's code, guarded and its result checked as at load time (the
        # bounds of a run may differ from those the load tried)
        from checker.userdesign import LOADED, DesignFileError, make_checked_driver

        try:
            return make_checked_driver(design, hw, b, LOADED.get(design.name, design.name))
        except DesignFileError as e:
            raise ConfigError(str(e)) from None
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
        driver = make_driver(self.hw, self.bounds, self.design)
        driver.walk_caches = bool(self.bounds.walk_caches)
        try:
            k = factory(self.hw, self.bounds.device_list(), design=self.design, driver=driver)
        except Exception:
            raise  # the design's core raised while booting: a model-exception (checker/run.py)
        except BaseException as e:  # sys.exit() or KeyboardInterrupt in a design's kernel_factory
            if self.design.kernel_factory is None:
                raise
            raise ConfigError(f"design {self.design.name}: kernel_factory raised "
                              f"{type(e).__name__}") from None
        if not isinstance(k, Kernel):
            raise ConfigError(f"design {self.design.name}: kernel_factory returned a "
                              f"{type(k).__name__}, not a model.core.Kernel")
        if self.bounds.kernel_pgtable:
            # init_mm's page table with one vmalloc mapping: its leaf table page is the
            # kernel half's (a frame outside the bounds' data pages, never renamed)
            k.kernel_pgd = k.mem.new_pagetable()
            k.vmalloc()
        for name in sorted(k.devices):
            if k.iommu_device_use_default_domain(name):
                raise ConfigError(f"boot: binding a driver to {name} failed")
        k.warnings.clear()
        k.faults_left = self.bounds.faults  # boot itself never fails
        return k
