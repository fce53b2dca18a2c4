"""State declared once: each field of the kernel's and the drivers' state, with its role.

The explorer copies, compares and hashes states millions of times, and the
Hypothesis machine copies one per step. Writing `copy()`, `key()` and the
explorer's `canonical_key()` by hand for every class meant that a field added by
a subclass or a design (a driver's new bookkeeping, a core variant's flag) had to
be added in four places, and a forgotten one silently merged states that differ.
Here a class lists its fields once, in `STATE`; copy, the exact key and the
canonical (symmetry-reduced) key are derived from that list, and a subclass adds
a field by adding one `StateField` to its own `STATE` (the lists of the MRO are
concatenated, base classes first).

    class MyKernel(Kernel):
        STATE = (StateField("rebinds", Role.VALUE, "how often bind found a handle"),)

A field that holds object ids, page-table roots or data pages must say how to
rename them (`canon`); without it the canonical key uses the exact key of the
value, which is sound for plain values (counters, flags, PASIDs, device names).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable, ClassVar


class Role(Enum):
    """How a field behaves under copy and in the state's identity."""

    FIXED = "fixed at construction: shared by copies, not part of the state"
    VALUE = "an immutable value (int, bool, frozenset, frozen dataclass): shared by copies"
    MAP = "a dict of immutable values: copied shallowly; an empty value is the same as none"
    OBJECT = "an object with its own copy() and key()"
    HISTORY = "what happened (WARNs, frees): copied, never part of the state"
    SCRATCH = "a per-state cache: not copied (None in the copy), never part of the state"

    @property
    def in_key(self) -> bool:
        return self in (Role.VALUE, Role.MAP, Role.OBJECT)


def _empty(v: Any) -> bool:
    return isinstance(v, (tuple, frozenset, set, dict, list)) and not v


def exact_key(role: Role, v: Any) -> Any:
    """The field's part of `key()`: equal exactly when the values are equal."""
    if role is Role.MAP:
        return frozenset((k, x) for k, x in v.items() if not _empty(x))
    if role is Role.OBJECT:
        return v.key()
    return v


#: canon(owner, value, renaming) -> the value with its names replaced by labels
Canon = Callable[[Any, Any, Any], Any]


@dataclass(frozen=True)
class StateField:
    name: str
    role: Role
    doc: str
    #: how the value looks under a renaming (explorer symmetry reduction); None: its exact key
    canon: Canon | None = None
    #: False: left out of the canonical key (a fresh-id counter, say), though in key()
    canonical: bool = True


@dataclass(frozen=True)
class _Plan:
    """What copy, key and the canonical key do, field by field (computed once per class)."""

    shared: tuple[str, ...]  # FIXED and VALUE: the copy shares the value
    copied: tuple[str, ...]  # MAP, OBJECT, HISTORY: value.copy()
    scratch: tuple[str, ...]  # SCRATCH: None in the copy
    keyed: tuple[tuple[str, Role], ...]  # in key(), in declaration order
    canonical: tuple[tuple[str, Role, Canon | None], ...]  # in the canonical key


class Declared:
    """A class whose state is the `STATE` declarations of its MRO."""

    STATE: ClassVar[tuple[StateField, ...]] = ()
    _fields_cache: ClassVar[dict[type, tuple[StateField, ...]]] = {}
    _plan_cache: ClassVar[dict[type, _Plan]] = {}

    @classmethod
    def state_fields(cls) -> tuple[StateField, ...]:
        got = Declared._fields_cache.get(cls)
        if got is None:
            seen: dict[str, StateField] = {}
            for c in reversed(cls.__mro__):
                for f in c.__dict__.get("STATE", ()):
                    if f.name in seen:
                        raise TypeError(f"{cls.__name__}: state field {f.name!r} declared twice "
                                        f"({c.__name__} repeats it)")
                    seen[f.name] = f
            got = Declared._fields_cache[cls] = tuple(seen.values())
        return got

    @classmethod
    def canon_default(cls, f: StateField) -> Canon | None:
        """The canonical form of a field that declares none (a class may supply its own)."""
        return f.canon

    @classmethod
    def plan(cls) -> _Plan:
        got = Declared._plan_cache.get(cls)
        if got is None:
            fs = cls.state_fields()
            got = Declared._plan_cache[cls] = _Plan(
                shared=tuple(f.name for f in fs if f.role in (Role.FIXED, Role.VALUE)),
                copied=tuple(f.name for f in fs if f.role in (Role.MAP, Role.OBJECT, Role.HISTORY)),
                scratch=tuple(f.name for f in fs if f.role is Role.SCRATCH),
                keyed=tuple((f.name, f.role) for f in fs if f.role.in_key),
                canonical=tuple((f.name, f.role, cls.canon_default(f)) for f in fs
                                if f.role.in_key and f.canonical),
            )
        return got

    def copy(self) -> Any:
        """A copy of the same class (a subclass survives copy) with every declared field."""
        p = self.plan()
        new = object.__new__(type(self))
        src = self.__dict__
        dst = new.__dict__
        for name in p.shared:
            dst[name] = src[name]
        for name in p.copied:
            dst[name] = src[name].copy()
        for name in p.scratch:
            dst[name] = None
        return new

    def key(self) -> tuple[Any, ...]:
        """A hashable snapshot of everything that can change (history and caches left out)."""
        src = self.__dict__
        return tuple([exact_key(role, src[name]) for name, role in self.plan().keyed])

    def canonical_parts(self, ren: Any, skip: frozenset[str] = frozenset()) -> tuple[Any, ...]:
        """Each canonical field's form under the renaming `ren`, in declaration order."""
        src = self.__dict__
        out = []
        for name, role, canon in self.plan().canonical:
            if name in skip:
                continue
            v = src[name]
            out.append(canon(self, v, ren) if canon is not None else exact_key(role, v))
        return tuple(out)

    def canonical_key(self, ren: Any) -> tuple[Any, ...]:
        return self.canonical_parts(ren)

    def check_declared(self) -> None:
        """Every attribute the instance has is declared (tests call this on every class)."""
        names = {f.name for f in self.state_fields()}
        missing = sorted(set(self.__dict__) - names)
        if missing:
            raise TypeError(f"{type(self).__name__}: attribute(s) {', '.join(missing)} not declared "
                            f"in STATE: copy() would drop them")
