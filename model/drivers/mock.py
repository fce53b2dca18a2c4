"""A driver with no hardware, like the iommufd selftest's mock driver.

Every op succeeds (failures are injected with `Kernel.inject_failure`), so the
core's own rules can be checked alone: the scenario rows of
kernel-core-api.md section 10 run on it as well as on the real drivers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from model.drivers.base import Driver
from model.state import Declared

if TYPE_CHECKING:
    from model.core import Kernel
    from model.objects import Device, Domain


class MockState(Declared):
    """No hardware, no private state (a subclass may declare some in STATE)."""

    def root_pointer_words(self, mem: Any) -> dict[int, tuple[int, int, int]]:
        return {}


class MockDriver(Driver):
    name = "mock"

    def new_state(self, k: "Kernel") -> MockState:
        return MockState()

    def set_dev_pasid(
        self, k: "Kernel", dom: "Domain", dev: "Device", pasid: int, old: "Domain | None"
    ) -> int:
        """Like the selftest's mock: nothing to program; a PASID that had a domain is
        drained before the core lets go of it (the fence every IOPF driver owes)."""
        if old is not None:
            k.drain_page_requests(dev.name, pasid)
        return 0
