"""The hardware does what the API state says, after every call of a random sequence.

Hypothesis draws call sequences from the action table (`model.actions.ACTIONS`,
each action's `enabled_args`: only what a correct caller may do now, including
the `dma` event that lets the IOMMU and the device's ATC cache what a walk
finds). After EVERY call, for every device, every PASID in
{None, 1 .. max_pasids - 1} and every IOVA of the bounds, each outcome the
bit-exact hardware model may give (`Kernel.dma`, which includes every stale
cached path) must have the one effect `model.semantics.expected_effect` derives
from the core's state alone; faults compare by kind, not by reason.

Runs on both drivers with the UPSTREAM design.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from checker.world import Config
from hwspec.outcome import Access, Kind, Outcome
from model.actions import ACTIONS, Action, show_call
from model.bounds import Bounds
from model.core import Kernel
from model.design import UPSTREAM, Design
from model.semantics import FAULT, Effect, expected_effect

BOUNDS = Bounds()
MAX_STEPS = 30


def effect_of(o: Outcome) -> Effect:
    return o.effect if o.kind is not Kind.FAULT else FAULT


def mismatches(k: Kernel, b: Bounds) -> list[str]:
    """Every (device, PASID, IOVA) whose hardware outcomes disagree with the API state."""
    bad = []
    for dev in sorted(k.devices):
        d = k.devices[dev]
        if d.group is None:
            continue
        for pasid in (None, *range(1, d.max_pasids)):
            for iova in b.iovas():
                want = expected_effect(k, dev, pasid, iova, Access.READ)
                outcomes = k.dma(dev, pasid, iova)
                if not outcomes:
                    bad.append(f"{dev} pasid={pasid} iova={iova:#x}: no outcome at all")
                    continue
                for o in sorted(outcomes, key=str):
                    if effect_of(o) != want:
                        bad.append(f"{dev} pasid={pasid} iova={iova:#x}: {o} but the API "
                                   f"state says {want}")
    return bad


def enabled(k: Kernel, b: Bounds) -> list[tuple[Action, list[tuple[Any, ...]]]]:
    out = []
    for a in ACTIONS:
        args = list(a.enabled_args(k, b))
        if args:
            out.append((a, args))
    return out


def run_sequence(design: Design, hw: str, data: st.DataObject) -> None:
    k = Config(design, hw, BOUNDS).build()
    trace: list[str] = []
    assert mismatches(k, BOUNDS) == [], "boot state"
    steps = data.draw(st.integers(min_value=1, max_value=MAX_STEPS), label="steps")
    for _ in range(steps):
        choices = enabled(k, BOUNDS)
        assert choices, "no action enabled"  # dma is always possible
        names = [a.name for a, _ in choices]
        name = data.draw(st.sampled_from(names), label="action")
        action, arg_list = choices[names.index(name)]
        args = data.draw(st.sampled_from(arg_list), label=f"{name} args")
        result = action.run(k, args)
        trace.append(show_call(k, action, args, result))
        bad = mismatches(k, BOUNDS)
        assert bad == [], "after:\n  " + "\n  ".join(trace) + "\n" + "\n".join(bad)


@pytest.mark.parametrize("hw", ["vtd", "smmuv3"])
@settings(max_examples=350, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          derandomize=True, database=None)
@given(data=st.data())
def test_every_hardware_outcome_matches_the_api_state(hw: str, data: st.DataObject) -> None:
    run_sequence(UPSTREAM, hw, data)


def test_search_finds_a_teardown_without_pasid_cache_flush() -> None:
    """The same search on a broken driver (teardown skips the PASID-cache invalidation,
    hw-tables.md A.8.2 step 6) finds a DMA through the stale cached PASID entry."""
    broken = replace(UPSTREAM, name="no-pc-flush", knobs=frozenset({"vtd.teardown_skip_pasid_cache"}))

    @settings(max_examples=300, deadline=None, derandomize=True, database=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def search(data: st.DataObject) -> None:
        run_sequence(broken, "vtd", data)

    with pytest.raises(AssertionError, match="pasid"):
        search()


def test_checker_sees_a_stale_translation() -> None:
    """The property can fail: an unmap that skips its flush leaves a cached translation the
    API state no longer allows, and `mismatches` reports it."""
    k = Config(UPSTREAM, "vtd", BOUNDS).build()
    assert k.dma_map_page("dev0", 0x1000, 0x8000_0000) == 0
    k.hw_fill("dev0", None, 0x1000, Access.READ)
    assert mismatches(k, BOUNDS) == []
    # Unmap behind the driver's back (no cache_tag_flush_range).
    dflt = k.group_of("dev0").default_domain  # type: ignore[union-attr]
    root = k.domains[dflt].pgtable  # type: ignore[index]
    assert k.mem.unmap(root, 1) is not None  # type: ignore[arg-type]
    bad = mismatches(k, BOUNDS)
    assert bad and all("dev0 pasid=None iova=0x1000" in line for line in bad)
