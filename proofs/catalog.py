"""Every proof, by stable name (DESIGN.md section 7).

Order: SMMUv3 hitless update (hw-tables.md PART C), VT-d teardown and DID sharing
(PART A.6-A.9), VT-d entry writes store by store (A.8), global PASID consistency (kernel-core-api.md 3, 6), bounded model
checking of the PASID lifetime.
"""

from __future__ import annotations

from typing import Iterable

from proofs import bmc, pasid, smmu, vtd, vtd_writes
from proofs.base import Proof, ProofResult

PROOFS: tuple[Proof, ...] = smmu.PROOFS + vtd.PROOFS + vtd_writes.PROOFS + pasid.PROOFS + bmc.PROOFS
BY_NAME: dict[str, Proof] = {p.name: p for p in PROOFS}
assert len(BY_NAME) == len(PROOFS), "proof names are unique"


class UnknownProof(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def get(names: Iterable[str] | None = None) -> tuple[Proof, ...]:
    """The named proofs in the order given (all of them for None)."""
    if names is None:
        return PROOFS
    out = []
    for n in names:
        if n not in BY_NAME:
            raise UnknownProof(f"unknown proof {n!r} (known: {', '.join(BY_NAME)})")
        out.append(BY_NAME[n])
    return tuple(out)


def run(names: Iterable[str] | None = None) -> list[ProofResult]:
    return [p.run() for p in get(names)]
