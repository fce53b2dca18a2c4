"""A user design with its own core: iommu_sva_bind_device that never reuses a handle.

v6.2 to v6.7 returned a new `struct iommu_sva` for every bind of the same
(device, mm), so two binds needed two unbinds of different handles and the
first unbind tore the shared PASID attachment down under the second user
(65d4418c5002 restored sharing). Here a `Kernel` subclass overrides that one
core call, exactly as a design file overrides a driver step: the subclass is
the design's `kernel_factory`. A field the subclass adds is declared in its
`STATE`, so it is copied, compared and hashed like the core's own.

    iommucheck check --design-file examples/sva_bind_no_reuse.py --engine explore \\
        --bounds devices=1,processes=1,paging_domains=0,iova_pages=1,phys_pages=1,max_pasids=2
"""

from dataclasses import replace

from model.core import Kernel
from model.design import UPSTREAM
from model.state import Role, StateField


class BindWithoutReuse(Kernel):
    # A flag, not a counter: a field that can grow without bound makes the explorer's
    # world infinite.
    STATE = (StateField("duplicated", Role.VALUE, "some bind made a second handle for a bound pair"),)

    def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.duplicated = False

    def iommu_sva_bind_device(self, dev, mm):  # type: ignore[no-untyped-def]
        g = self.group_of(dev)
        m = self.mms.get(mm)
        e = g.pasid_entry(m.pasid) if g is not None and m is not None and m.pasid is not None else None
        if e is None or e.handle is None:
            return super().iommu_sva_bind_device(dev, mm)
        # The pre-v6.8 behaviour: a second bind of the same (dev, mm) gets its own handle.
        self.duplicated = True
        h = self.handles[e.handle]
        hid = self._new_id()
        self.handles[hid] = replace(h, id=hid, users=1)
        return hid


DESIGN = replace(
    UPSTREAM,
    name="my-sva-bind-no-reuse",
    summary="iommu_sva_bind_device returns a new handle for a bound (dev, mm) (core override)",
    rationale="Shows a core call overridden from a design file (kernel_factory).",
    kind="user",
    kernel_factory=BindWithoutReuse,
)
