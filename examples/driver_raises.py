"""A user design whose driver raises: a model exception is a finding, not a crash.

The driver subclass divides by zero when an SVA domain is attached at PASID 1 (a
stand-in for any bug in a driver step you write: an exception inside the model, a
driver or a design is a bug of the design or the model). iommucheck reports it as
a violation of `model-exception`, with the call sequence that raises it, the
innermost frames and a trace that `iommucheck replay` re-runs (exit 1 while it
still raises):

    iommucheck check --design-file examples/driver_raises.py --hw vtd --engine explore \\
        --bounds devices=1,processes=1,paging_domains=1,iova_pages=1,phys_pages=1,max_pasids=2
"""

from dataclasses import replace

from model.design import UPSTREAM
from model.drivers.vtd import VtdDriver
from model.objects import DomainType


class SvaAtPasid1Raises(VtdDriver):
    def set_dev_pasid(self, k, dom, dev, pasid, old):  # type: ignore[no-untyped-def]
        if pasid == 1 and dom.type is DomainType.SVA:
            return 1 // (pasid - 1)  # the bug
        return super().set_dev_pasid(k, dom, dev, pasid, old)


DESIGN = replace(
    UPSTREAM,
    name="my-vtd-sva-raises",
    summary="VT-d driver whose SVA set_dev_pasid raises at PASID 1 (driver subclass)",
    rationale="Shows that an exception in a design's driver is reported as model-exception.",
    hw=("vtd",),
    kind="user",
    driver_factory=lambda hw, bounds: SvaAtPasid1Raises(ndoms=bounds.ndoms),
)
