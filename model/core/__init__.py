"""The IOMMU core: groups, domains, DMA ownership, PASID attachment, SVA and mm lifetime.

One module per kernel file (see model/core/kernel.py for the map); `Kernel` is
the whole core. Import from here: `from model.core import Kernel`.
"""

from model.core.base import (
    BLOCKED_DOMAIN_ID,
    EPROBE_DEFER,
    FIRST_DYNAMIC_ID,
    IDENTITY_DOMAIN_ID,
    KernelBase,
    Renaming,
)
from model.core.kernel import Kernel
from model.drivers import make_driver

__all__ = ["BLOCKED_DOMAIN_ID", "EPROBE_DEFER", "FIRST_DYNAMIC_ID", "IDENTITY_DOMAIN_ID", "Kernel",
           "KernelBase", "Renaming", "make_driver"]
