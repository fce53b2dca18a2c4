"""Bit layouts, declared once.

Every hardware structure the model touches (VT-d root/context/PASID entries, QI
descriptors, SMMUv3 STEs, CDs and commands) is declared here as a `Layout`: a
tuple of `Field`s over N little-endian 64-bit words, exactly as the drivers store
them ("qN[hi:lo]" in ../shared/reference/hw-tables.md). Encoders, decoders, the
table dumps shown in counterexamples, the SMMUv3 used-bit masks and the z3
bit-vector view used by `proofs/` are all derived from that one declaration, so
a bit position can only be wrong in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

if TYPE_CHECKING:  # z3 is imported lazily: hwspec must stay cheap to import.
    import z3

Words = tuple[int, ...]
WORD_BITS = 64
WORD_MASK = (1 << WORD_BITS) - 1


class LayoutError(ValueError):
    """A value that does not fit a layout: names the layout and the field."""


@dataclass(frozen=True)
class Field:
    """One field: bits `lo`..`hi` (inclusive) of 64-bit word `word`."""

    name: str
    word: int
    lo: int
    hi: int
    enum: type[IntEnum] | None = None
    doc: str = ""

    def __post_init__(self) -> None:
        if not (0 <= self.lo <= self.hi < WORD_BITS):
            raise LayoutError(
                f"field {self.name!r}: bits {self.hi}:{self.lo} do not fit a 64-bit word"
            )
        if self.word < 0:
            raise LayoutError(f"field {self.name!r}: negative word index {self.word}")
        # Precomputed: extract() runs millions of times in the checkers' hot path.
        object.__setattr__(self, "_max", (1 << (self.hi - self.lo + 1)) - 1)

    @property
    def width(self) -> int:
        return self.hi - self.lo + 1

    @property
    def max(self) -> int:
        return self._max  # type: ignore[no-any-return, attr-defined]

    @property
    def mask(self) -> int:
        """The field's bits within its word."""
        return self.max << self.lo

    def extract(self, words: Sequence[int]) -> int:
        return (words[self.word] >> self.lo) & self._max  # type: ignore[attr-defined, no-any-return]

    def show(self, value: int) -> str:
        if self.enum is not None:
            try:
                return f"{self.enum(value).name}({value})"
            except ValueError:
                return f"?({value})"
        if self.width == 1:
            return str(value)
        return hex(value) if value > 9 else str(value)


@dataclass(frozen=True)
class Layout:
    """A structure of `words` 64-bit words made of non-overlapping fields."""

    name: str
    words: int
    fields: tuple[Field, ...]
    _by_name: Mapping[str, Field] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name: dict[str, Field] = {}
        taken = [0] * self.words
        for f in self.fields:
            if f.name in by_name:
                raise LayoutError(f"{self.name}: field {f.name!r} declared twice")
            if f.word >= self.words:
                raise LayoutError(
                    f"{self.name}: field {f.name!r} is in word {f.word}, "
                    f"but the layout has {self.words} words"
                )
            if taken[f.word] & f.mask:
                other = next(
                    g.name for g in by_name.values() if g.word == f.word and g.mask & f.mask
                )
                raise LayoutError(f"{self.name}: field {f.name!r} overlaps {other!r}")
            taken[f.word] |= f.mask
            by_name[f.name] = f
        object.__setattr__(self, "_by_name", by_name)

    # -- lookup -----------------------------------------------------------
    def __getitem__(self, name: str) -> Field:
        try:
            return self._by_name[name]
        except KeyError:
            raise LayoutError(
                f"{self.name} has no field {name!r} (fields: {', '.join(self._by_name)})"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    # -- encode / decode --------------------------------------------------
    def zero(self) -> Words:
        return (0,) * self.words

    def encode(self, **values: int) -> Words:
        """Words with the given fields set and every other bit zero."""
        return self.set(self.zero(), **values)

    def set(self, words: Sequence[int], **values: int) -> Words:
        """A copy of `words` with the given fields replaced."""
        self._check_words(words)
        out = list(words)
        for name, value in values.items():
            f = self[name]
            v = int(value)
            if v < 0 or v > f.max:
                raise LayoutError(
                    f"{self.name}.{name} = {v:#x} does not fit {f.width} bit(s) "
                    f"(q{f.word}[{f.hi}:{f.lo}], max {f.max:#x})"
                )
            out[f.word] = (out[f.word] & ~f.mask) | (v << f.lo)
        return tuple(out)

    def get(self, words: Sequence[int], name: str) -> int:
        self._check_words(words)
        return self[name].extract(words)

    def decode(self, words: Sequence[int]) -> dict[str, int]:
        """Every declared field's raw value. Bits no field declares are ignored."""
        self._check_words(words)
        return {f.name: f.extract(words) for f in self.fields}

    def undeclared_bits(self, words: Sequence[int]) -> Words:
        """Bits set in `words` that no field declares (reserved bits)."""
        self._check_words(words)
        declared = self.mask(*self.names)
        return tuple(w & ~m for w, m in zip(words, declared))

    def _check_words(self, words: Sequence[int]) -> None:
        if len(words) != self.words:
            raise LayoutError(
                f"{self.name} is {self.words} x 64-bit words, got {len(words)} word(s)"
            )
        for i, w in enumerate(words):
            if not (0 <= w <= WORD_MASK):
                raise LayoutError(f"{self.name} word q{i} = {w:#x} is not a 64-bit value")

    # -- masks ------------------------------------------------------------
    def mask(self, *names: str) -> Words:
        """Per-word masks of the named fields (the SMMUv3 'used bits' are built from these)."""
        out = [0] * self.words
        for name in names:
            f = self[name]
            out[f.word] |= f.mask
        return tuple(out)

    # -- dump -------------------------------------------------------------
    def dump(self, words: Sequence[int], *, all_fields: bool = False) -> str:
        """One line: the raw words, then every non-zero field decoded."""
        self._check_words(words)
        raw = " ".join(f"q{i}={w:#018x}" for i, w in enumerate(words) if w or i == 0)
        parts = []
        for f in self.fields:
            v = f.extract(words)
            if v or all_fields:
                parts.append(f"{f.name}={f.show(v)}")
        return f"{self.name} [{raw}] {' '.join(parts) or '(all zero)'}"

    # -- z3 view ----------------------------------------------------------
    def z3_words(self, prefix: str) -> tuple["z3.BitVecRef", ...]:
        """Fresh symbolic 64-bit words named prefix_q0..."""
        import z3

        return tuple(z3.BitVec(f"{prefix}_q{i}", WORD_BITS) for i in range(self.words))

    def z3_get(self, words: Sequence["z3.BitVecRef"], name: str) -> "z3.BitVecRef":
        """The field as a z3 bit-vector of its own width (z3.Extract of the word)."""
        import z3

        f = self[name]
        return z3.Extract(f.hi, f.lo, words[f.word])

    def z3_fields(self, words: Sequence["z3.BitVecRef"]) -> dict[str, "z3.BitVecRef"]:
        return {f.name: self.z3_get(words, f.name) for f in self.fields}

    def z3_const(self, words: Sequence[int]) -> tuple["z3.BitVecRef", ...]:
        import z3

        self._check_words(words)
        return tuple(z3.BitVecVal(w, WORD_BITS) for w in words)

    def from_model(self, model: Any, words: Sequence["z3.BitVecRef"]) -> Words:
        """Concrete words of a z3 model, for decoding a counterexample with `dump`."""
        return tuple(model.eval(w, model_completion=True).as_long() for w in words)


def fields(*specs: tuple[Any, ...]) -> tuple[Field, ...]:
    """Shorthand for a field table: rows of (name, word, lo, hi[, enum])."""
    out = []
    for spec in specs:
        name, word, lo, hi, *rest = spec
        enum = rest[0] if rest else None
        out.append(Field(name=name, word=word, lo=lo, hi=hi, enum=enum))
    return tuple(out)


def words_differ(a: Iterable[int], b: Iterable[int]) -> tuple[int, ...]:
    """Indices of the words in which a and b differ."""
    return tuple(i for i, (x, y) in enumerate(zip(a, b)) if x != y)
