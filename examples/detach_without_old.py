"""A user design: mainline, except that PASID detach does not tell the driver the old domain.

    iommucheck check --design-file examples/detach_without_old.py

The answer to its question (the default check, in world paging1): no. VT-d flushes
correctly without `old`, since it reads the DID from the PASID entry, but it cannot
drop the domain's DID reference or its cache tags: refcount-matches breaks at the
detach (4 calls) and no-leak at the domain's free (5 calls), as for the built-in
set-dev-pasid-blocking-2022. (Hypothesis alone, at its old default budget, missed it.)
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
