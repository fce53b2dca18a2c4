"""A user design with its own driver: VT-d teardown that forgets the PASID-cache flush.

The driver subclass overrides one step (intel_pasid_tear_down_entry), here by
dropping the PASID-cache descriptor from what the real teardown issues.

    iommucheck check --design-file examples/vtd_skip_pasid_cache_flush.py --hw vtd
"""

from dataclasses import replace

from hwspec.vtd import QiPc
from model.design import UPSTREAM
from model.drivers.vtd import VtdDriver


class TeardownSkipsPasidCache(VtdDriver):
    def _submit(self, k, *descs, drain=False):  # type: ignore[no-untyped-def]
        kept = [d for d in descs if not isinstance(d, QiPc)]
        if kept:
            super()._submit(k, *kept, drain=drain)


DESIGN = replace(
    UPSTREAM,
    name="my-vtd-teardown-skips-pc",
    summary="VT-d teardown without the PASID-cache invalidation (driver subclass)",
    rationale="Shows a driver step overridden from a design file.",
    hw=("vtd",),
    kind="user",
    driver_factory=lambda hw, bounds: TeardownSkipsPasidCache(ndoms=bounds.ndoms),
)
