"""A user design: mainline, except that PASID detach does not tell the driver the old domain.

    iommucheck check --design-file examples/detach_without_old.py
"""

from dataclasses import replace

from model.design import UPSTREAM

DESIGN = replace(
    UPSTREAM,
    name="my-detach-without-old",
    summary="set_dev_pasid(blocking) without the old domain, on the v6.11+ SVA scheme",
    rationale=(
        "Seed 000's question on today's drivers: with SVA domains on their own ASIDs "
        "(v6.11+) and VT-d reading the DID from the entry, does detach still need `old`?"
    ),
    seeds=("000_5d95e02cbbab3d3a.txt",),
    detach_passes_old=False,
    kind="user",
)
