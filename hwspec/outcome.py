"""What a DMA may produce: the vocabulary shared by both translation models.

`translate` in `hwspec.vtd` and `hwspec.smmuv3` returns a frozenset of
`Outcome`s: one from a fresh table walk, one per cache entry that could serve
the request. A stale translation exists exactly when that set holds an outcome
the kernel's API state does not allow, which is how every isolation invariant is
stated.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntFlag


class Access(IntFlag):
    READ = 1
    WRITE = 2


class Kind(Enum):
    TRANSLATED = "translated"
    BYPASS = "bypass"
    FAULT = "fault"


class FaultReason(Enum):
    """Why hardware refused a request (VT-d fault reasons / SMMUv3 event types)."""

    # VT-d scalable mode
    ROOT_NOT_PRESENT = "root entry not present"
    CONTEXT_NOT_PRESENT = "context entry not present"
    PASID_DISABLED = "PASID request but context PASIDE=0"
    PASID_TOO_LARGE = "PASID beyond the directory (PDTS)"
    PASID_DIR_NOT_PRESENT = "PASID directory entry not present"
    PASID_NOT_PRESENT = "PASID entry not present"
    BAD_PGTT = "PASID entry PGTT not modelled/reserved"
    # SMMUv3
    C_BAD_STREAMID = "C_BAD_STREAMID: SID beyond the stream table"
    C_BAD_STE = "C_BAD_STE: STE.V=0"
    STE_ABORT = "STE.Config=abort"
    C_BAD_SUBSTREAMID = "C_BAD_SUBSTREAMID: SSID beyond S1CDMAX or no-SSID with S1DSS=TERMINATE"
    C_BAD_CD = "C_BAD_CD: CD.V=0"
    EPD0 = "F_TRANSLATION: CD.EPD0=1 (walks disabled)"
    NOT_MODELLED = "configuration the model does not walk (SMMUv3 two-level CD table)"
    # both
    NO_MAPPING = "translation fault: no mapping"
    PERMISSION = "permission fault"


@dataclass(frozen=True, order=True)
class Outcome:
    """One thing hardware may do with a request. `via` names the path (for reports)."""

    kind: Kind
    pa: int | None = None
    fault: FaultReason | None = None
    via: str = "walk"

    @property
    def effect(self) -> tuple[Kind, int | None]:
        """What the DMA does, without the path: what invariants compare."""
        return (self.kind, self.pa)

    def __str__(self) -> str:
        if self.kind is Kind.TRANSLATED:
            assert self.pa is not None
            return f"may reach pa {self.pa:#x} via {self.via}"
        if self.kind is Kind.BYPASS:
            return f"bypasses translation (pa = iova) via {self.via}"
        assert self.fault is not None
        return f"faults ({self.fault.value}) via {self.via}"


def translated(pa: int, via: str = "walk") -> Outcome:
    return Outcome(Kind.TRANSLATED, pa=pa, via=via)


def bypass(via: str = "walk") -> Outcome:
    return Outcome(Kind.BYPASS, via=via)


def fault(reason: FaultReason, via: str = "walk") -> Outcome:
    return Outcome(Kind.FAULT, fault=reason, via=via)
