"""Built-in designs. Each names the API generation and the policies under debate,
with its rationale, seed files and the kernel history it reflects."""

from __future__ import annotations

from model.design import UPSTREAM, Design

DESIGNS: dict[str, Design] = {d.name: d for d in (UPSTREAM,)}


class UnknownDesign(KeyError):
    pass


def get_design(name: str) -> Design:
    try:
        return DESIGNS[name]
    except KeyError:
        raise UnknownDesign(
            f"unknown design {name!r} (built-in: {', '.join(sorted(DESIGNS))}; see `iommucheck designs`)"
        ) from None

import dataclasses as _dc
for _knob in ("vtd.teardown_skip_pasid_cache", "vtd.teardown_skip_devtlb", "vtd.did_from_cleared_entry"):
    DESIGNS["x-" + _knob] = _dc.replace(UPSTREAM, name="x-" + _knob, knobs=frozenset({_knob}))
