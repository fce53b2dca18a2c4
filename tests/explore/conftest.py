"""Helpers the explorer tests share."""

from __future__ import annotations

from typing import Callable

import pytest

from checker.explore import Explorer
from model.actions import ACTIONS
from model.core import Kernel


def reachable_states(ex: Explorer, depth: int) -> list[Kernel]:
    """Every state within `depth` steps of boot, told apart by `key()` (nothing renamed,
    caches as the dma events left them; violations do not stop it)."""
    k0 = ex.runner.start()
    seen = {k0.key()}
    level, states = [k0], [k0]
    b = ex.bounds
    for _ in range(depth):
        nxt = []
        for k in level:
            k.freeze()
            for action in ACTIONS:
                for args in action.enabled_args(k, b):
                    child = k.copy()
                    action.run(child, args)
                    child.warnings = []
                    child.driver.take_hw_log(child)
                    key = child.key()
                    if key not in seen:
                        seen.add(key)
                        nxt.append(child)
        states += nxt
        level = nxt
    return states


@pytest.fixture
def reachable() -> Callable[[Explorer, int], list[Kernel]]:
    return reachable_states
