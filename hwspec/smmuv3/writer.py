"""The SMMUv3 entry-update protocol: used bits, update-safe bits and the hitless writer.

An STE or CD is 8 qwords, but the SMMU only promises 64-bit single-copy
atomicity: it may read the entry between any two 64-bit stores. The driver's
`arm_smmu_write_entry` (hw-tables.md PART C) therefore orders its stores so that
every state the hardware can see is, on the bits that state's configuration
uses, either the old or the new entry ("hitless"), or - when more than one
qword of used bits must change - goes through an invalid entry (V=0) first
("breaking"). This module re-implements C.1-C.3 exactly:

- `get_used` (C.1): which bits a configuration makes the SMMU read. Written as a
  function of a few decoded fields (`ste_used_for(v, cfg, s1dss)`,
  `cd_used_for(v, epd0)`) returning unions of `Layout.mask(...)`, so a z3 proof
  can enumerate the same cases.
- `get_update_safe` (C.1, 2781f2a930ab + the MEV follow-up): bits that may
  change early although both configurations use them (STE EATS_TRANS, MEV).
- `entry_qword_diff` (C.2) and `write_entry` (C.3), producing the exact 64-bit
  stores and syncs (`entry_set` = store differing qwords, then one sync if any
  changed) and every intermediate value the hardware may read.

`hitless` follows the KUnit harness (C.4) exactly: an entry whose q0 is 0 at a
sync makes the transition non-hitless, even on the critical-qword path (so any
CD transition into or out of the all-zero CD counts as non-hitless).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from typing import Sequence, Union

from ..layout import WORD_MASK, Layout, LayoutError, Words
from .cd import CD, CD_QWORDS
from .ste import STE, STE_QWORDS, Cfg, Eats, S1Dss

NUM_ENTRY_QWORDS = 8
assert STE_QWORDS == CD_QWORDS == NUM_ENTRY_QWORDS


def _union(*masks: Words) -> Words:
    """Per-qword OR of several masks."""
    out = [0] * NUM_ENTRY_QWORDS
    for m in masks:
        for i, w in enumerate(m):
            out[i] |= w
    return tuple(out)


# -- STE used bits (C.1, newest version incl. MEV / S2FWB / S2S) -------------------

#: Always used: V. With V=1 also CFG.
STE_USED_V = STE.mask("v")
STE_USED_CFG = STE.mask("cfg")
#: CFG bit 0 set (S1_TRANS or NESTED): the stage-1 fields.
STE_USED_S1 = STE.mask(
    "s1fmt", "s1ctxptr", "s1cdmax",
    "s1dss", "s1cir", "s1cor", "s1csh", "s1stalld", "strw", "eats", "mev",
    "s2vmid",
)
#: ... plus SHCFG when S1DSS = BYPASS (13.5 of the spec, as the driver comments).
STE_USED_S1DSS_BYPASS = STE.mask("shcfg")
#: CFG bit 1 set (S2_TRANS or NESTED): the stage-2 fields.
STE_USED_S2 = STE.mask(
    "s2fwb", "eats", "shcfg", "mev",
    "s2vmid", "vtcr", "s2aa64", "s2endi", "s2ptw", "s2s", "s2r",
    "s2ttb",
)
#: CFG == BYPASS: SHCFG.
STE_USED_BYPASS = STE.mask("shcfg")


@lru_cache(maxsize=None)
def ste_used_for(v: int, cfg: int, s1dss: int) -> Words:
    """`arm_smmu_get_ste_used` as a function of V, CFG and S1DSS (C.1).

    V=0: only V. V=1: V, CFG, then by CFG bit: bit 0 (stage 1) the S1 fields and
    SHCFG if S1DSS=BYPASS; bit 1 (stage 2) the S2 fields; CFG=BYPASS adds SHCFG;
    CFG=ABORT nothing more. The CFG test is bitwise, as in the kernel.
    """
    if not v:
        return STE_USED_V
    parts = [STE_USED_V, STE_USED_CFG]
    if cfg & 1:
        parts.append(STE_USED_S1)
        if s1dss == S1Dss.BYPASS:
            parts.append(STE_USED_S1DSS_BYPASS)
    if cfg & 2:
        parts.append(STE_USED_S2)
    if cfg == Cfg.BYPASS:
        parts.append(STE_USED_BYPASS)
    return _union(*parts)


_STE_V = STE["v"]
_STE_CFG = STE["cfg"]
_STE_S1DSS = STE["s1dss"]


def get_ste_used(words: Sequence[int]) -> Words:
    return ste_used_for(_STE_V.extract(words), _STE_CFG.extract(words), _STE_S1DSS.extract(words))


#: EATS = TRANS as a bit pattern (q1 bit 28) and EATS = S1CHK (q1 bit 29).
STE_EATS_TRANS = STE.encode(eats=Eats.TRANS)
STE_EATS_S1CHK = STE.encode(eats=Eats.S1CHK)
STE_S2S = STE.mask("s2s")
STE_MEV = STE.mask("mev")


@lru_cache(maxsize=None)
def ste_update_safe_for(eats_s1chk: bool, s2s: bool) -> Words:
    """`arm_smmu_get_ste_update_safe` as a function of two facts about cur|target (C.1).

    EATS_TRANS is safe unless either entry has EATS=S1CHK or S2S=1 (the attach
    code has ATS disabled at the PCI device while EATS changes; S2S=1 with
    EATS=1 would be a bad STE). MEV is always safe: it only changes how many
    fault records are merged.
    """
    parts = [STE_MEV]
    if not eats_s1chk and not s2s:
        parts.append(STE_EATS_TRANS)
    return _union(*parts)


def get_ste_update_safe(cur: Sequence[int], target: Sequence[int]) -> Words:
    s1chk = bool((cur[1] | target[1]) & STE_EATS_S1CHK[1])
    s2s = bool((cur[2] | target[2]) & STE_S2S[2])
    return ste_update_safe_for(s1chk, s2s)


# -- CD used bits (C.1) -------------------------------------------------------------

CD_USED_V = CD.mask("v")
#: V=1: the kernel marks EVERY bit of every qword used (memset 0xFF), reserved
#: bits included, so this one mask is the full width rather than a field union.
CD_USED_ALL: Words = (WORD_MASK,) * NUM_ENTRY_QWORDS
#: ... except, with EPD0=1, the TTB0 walk configuration the SMMU then ignores.
CD_UNUSED_EPD0 = CD.mask("t0sz", "tg0", "irgn0", "orgn0", "sh0", "ttb0")


@lru_cache(maxsize=None)
def cd_used_for(v: int, epd0: int) -> Words:
    """`arm_smmu_get_cd_used` as a function of V and EPD0 (C.1)."""
    if not v:
        return CD_USED_V
    if epd0:
        return tuple(a & ~b for a, b in zip(CD_USED_ALL, CD_UNUSED_EPD0))
    return CD_USED_ALL


_CD_V = CD["v"]
_CD_EPD0 = CD["epd0"]


def get_cd_used(words: Sequence[int]) -> Words:
    return cd_used_for(_CD_V.extract(words), _CD_EPD0.extract(words))


# -- the writers ------------------------------------------------------------------

_ZERO: Words = (0,) * NUM_ENTRY_QWORDS


class EntryWriter(ABC):
    """`struct arm_smmu_entry_writer_ops` minus `sync` (the caller decides what a sync is)."""

    name: str
    layout: Layout

    @abstractmethod
    def get_used(self, words: Sequence[int]) -> Words:
        """Bits the configuration in `words` makes the SMMU read."""

    @abstractmethod
    def get_update_safe(self, cur: Sequence[int], target: Sequence[int]) -> Words:
        """Bits that may change before the critical store although both entries use them."""

    def __repr__(self) -> str:
        return f"<{self.name}>"


class SteWriter(EntryWriter):
    name = "STE_WRITER"
    layout = STE

    def get_used(self, words: Sequence[int]) -> Words:
        return get_ste_used(words)

    def get_update_safe(self, cur: Sequence[int], target: Sequence[int]) -> Words:
        return get_ste_update_safe(cur, target)


class CdWriter(EntryWriter):
    """The CD writer has no `get_update_safe` op in the kernel: no bit is safe."""

    name = "CD_WRITER"
    layout = CD

    def get_used(self, words: Sequence[int]) -> Words:
        return get_cd_used(words)

    def get_update_safe(self, cur: Sequence[int], target: Sequence[int]) -> Words:
        return _ZERO


STE_WRITER: EntryWriter = SteWriter()
CD_WRITER: EntryWriter = CdWriter()


# -- C.2 ----------------------------------------------------------------------------


def entry_qword_diff(
    writer: EntryWriter,
    entry: Sequence[int],
    target: Sequence[int],
    use_update_safe: bool = True,
) -> tuple[int, Words]:
    """`arm_smmu_entry_qword_diff` (C.2): (bitmask of qwords whose USED bits must change, unused_update).

    unused_update is `entry` with every bit the current configuration does not
    use (safe bits counting as unused) already set to the target's value.
    """
    cur_used = writer.get_used(entry)
    target_used = writer.get_used(target)
    safe = writer.get_update_safe(entry, target) if use_update_safe else _ZERO
    diff = 0
    unused_update = []
    for i in range(NUM_ENTRY_QWORDS):
        safe_i = safe[i] & cur_used[i] & target_used[i]
        # The kernel WARNs here when a constructor sets a bit its own config does not use.
        cur_i = cur_used[i] & ~safe_i
        u = (entry[i] & cur_i) | (target[i] & ~cur_i & WORD_MASK)
        unused_update.append(u)
        if (u & target_used[i]) != target[i]:
            diff |= 1 << i
    return diff, tuple(unused_update)


def unused_target_bits(writer: EntryWriter, target: Sequence[int]) -> Words:
    """Bits set in `target` that its own configuration does not use (the C.2 WARN_ON_ONCE)."""
    used = writer.get_used(target)
    return tuple(t & ~u for t, u in zip(target, used))


# -- C.3 ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Store:
    """One WRITE_ONCE of qword `qword` of the entry: the unit of atomicity the SMMU sees."""

    qword: int
    value: int

    def __str__(self) -> str:
        return f"store q{self.qword}={self.value:#018x}"


@dataclass(frozen=True)
class Sync:
    """`writer->ops->sync()`: CFGI_STE / CFGI_CD for the entry, then CMD_SYNC."""

    def __str__(self) -> str:
        return "sync"


Step = Union[Store, Sync]


class WritePath(Enum):
    """Which branch of `arm_smmu_write_entry` ran (C.3)."""

    HITLESS = "one qword of used bits differs: critical-qword update"
    BREAKING = "several qwords of used bits differ: V=0, q1..q7, q0"
    NO_USED_CHANGE = "no used bit differs: plain entry_set"


@dataclass(frozen=True)
class WriteResult:
    """What `write_entry` did.

    `steps`: the stores and syncs in order. `syncs`: how many syncs. `hitless`:
    the KUnit harness's verdict (no sync saw q0 == 0). `final`: the entry after
    the last step (always the target). `observable`: every value the SMMU may
    read during the update, in order: the starting entry, then the entry after
    EACH 64-bit store (not only at syncs).
    """

    steps: tuple[Step, ...]
    syncs: int
    hitless: bool
    final: Words
    observable: tuple[Words, ...]
    path: WritePath

    @property
    def stores(self) -> tuple[Store, ...]:
        return tuple(s for s in self.steps if isinstance(s, Store))


def _check_entry(writer: EntryWriter, words: Sequence[int]) -> None:
    if len(words) != NUM_ENTRY_QWORDS or not all(0 <= w <= WORD_MASK for w in words):
        raise LayoutError(f"{writer.layout.name}: expected 8 x 64-bit words, got {tuple(words)!r}")


def write_entry(
    current: Sequence[int],
    target: Sequence[int],
    writer: EntryWriter = STE_WRITER,
    use_update_safe: bool = True,
) -> WriteResult:
    """`arm_smmu_write_entry` (C.3) as a pure function from (current, target) to the step list.

    - exactly one qword of used bits differs: set every unused (or safe) bit to
      its target value except in the critical qword, store the critical qword,
      then clean up the bits the target no longer uses (1 to 3 syncs);
    - several: q0 = 0 (V=0), q1..q7, then q0 (2 or 3 syncs);
    - none: store whatever differs (0 or 1 sync).
    `use_update_safe=False` drops the update-safe bits (as before 2781f2a930ab,
    but with today's used masks): then the nested -> S2 transition breaks.
    """
    _check_entry(writer, current)
    _check_entry(writer, target)
    entry = list(current)
    steps: list[Step] = []
    observable: list[Words] = [tuple(entry)]
    syncs = 0
    invalid_seen = False

    def entry_set(values: Sequence[int], start: int, length: int) -> None:
        nonlocal syncs, invalid_seen
        changed = False
        for i in range(start, start + length):
            if entry[i] != values[i]:
                entry[i] = values[i]
                steps.append(Store(i, values[i]))
                observable.append(tuple(entry))
                changed = True
        if changed:
            steps.append(Sync())
            syncs += 1
            if entry[0] == 0:
                invalid_seen = True

    diff, unused_update = entry_qword_diff(writer, current, target, use_update_safe)
    if diff and not diff & (diff - 1):
        critical = (diff & -diff).bit_length() - 1
        staged = list(unused_update)
        staged[critical] = entry[critical]
        entry_set(staged, 0, NUM_ENTRY_QWORDS)
        entry_set(target, critical, 1)
        entry_set(target, 0, NUM_ENTRY_QWORDS)
        path = WritePath.HITLESS
    elif diff:
        staged = list(unused_update)
        staged[0] = 0
        entry_set(staged, 0, 1)
        entry_set(target, 1, NUM_ENTRY_QWORDS - 1)
        entry_set(target, 0, 1)
        path = WritePath.BREAKING
    else:
        entry_set(target, 0, NUM_ENTRY_QWORDS)
        path = WritePath.NO_USED_CHANGE
    return WriteResult(
        steps=tuple(steps),
        syncs=syncs,
        hitless=not invalid_seen,
        final=tuple(entry),
        observable=tuple(observable),
        path=path,
    )


def differs_in_used_bits(
    writer: EntryWriter, entry: Sequence[int], reference: Sequence[int]
) -> bool:
    """The harness test (C.4): does `entry` differ from `reference` on the bits `entry` uses,
    leaving out the bits that are update-safe between `entry` and `reference`?"""
    used = writer.get_used(entry)
    safe = writer.get_update_safe(entry, reference)
    for i in range(NUM_ENTRY_QWORDS):
        mask = used[i] & ~safe[i]
        if (entry[i] & mask) != (reference[i] & mask):
            return True
    return False


def is_torn(
    writer: EntryWriter, entry: Sequence[int], current: Sequence[int], target: Sequence[int]
) -> bool:
    """True if hardware reading `entry` mid-update sees neither the old nor the new configuration."""
    return differs_in_used_bits(writer, entry, current) and differs_in_used_bits(
        writer, entry, target
    )
