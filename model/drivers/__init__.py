"""IOMMU drivers: `vtd` (Intel VT-d scalable mode), `smmuv3` (Arm SMMUv3), `mock` (no hardware).

`make_driver` is the one driver factory: the core uses it when a world is built
without an explicit driver, and checker/world.py when a design brings none.
The drivers import the core only for type checking, so there is no import circle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from model.drivers.base import Driver

if TYPE_CHECKING:
    from model.bounds import Bounds

HW_DRIVERS = ("vtd", "smmuv3", "mock")


class UnknownHardware(ValueError):
    pass


def make_driver(hw: str, bounds: "Bounds | None" = None) -> Driver:
    """The driver for a hardware kind, sized by the bounds' DID / ASID spaces if given."""
    if hw == "vtd":
        from model.drivers.vtd import VtdDriver

        return VtdDriver() if bounds is None else VtdDriver(ndoms=bounds.ndoms)
    if hw == "smmuv3":
        from model.drivers.smmuv3 import SmmuV3Driver

        return SmmuV3Driver() if bounds is None else SmmuV3Driver(
            asid_bits=bounds.asid_bits, range_inv=bool(bounds.smmu_range_inv))
    if hw == "mock":
        from model.drivers.mock import MockDriver

        return MockDriver()
    raise UnknownHardware(f"unknown hardware kind {hw!r} (expected vtd, smmuv3 or mock)")


__all__ = ["Driver", "HW_DRIVERS", "UnknownHardware", "make_driver"]
