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


def _copy_value(v: Any) -> Any:
    return v


def _copy_map(v: dict[Any, Any]) -> dict[Any, Any]:
    return dict(v)


def _copy_object(v: Any) -> Any:
    return v.copy()


def _copy_history(v: Any) -> Any:
    return v.copy()  # a list or a dict


def _copy_scratch(v: Any) -> Any:
    return None


_COPY: dict[Role, Callable[[Any], Any]] = {
    Role.FIXED: _copy_value, Role.VALUE: _copy_value, Role.MAP: _copy_map,
    Role.OBJECT: _copy_object, Role.HISTORY: _copy_history, Role.SCRATCH: _copy_scratch,
}


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


class Declared:
    """A class whose state is the `STATE` declarations of its MRO."""

    STATE: ClassVar[tuple[StateField, ...]] = ()
    _fields_cache: ClassVar[dict[type, tuple[StateField, ...]]] = {}
    _plan_cache: ClassVar[dict[type, tuple[tuple[str, Callable[[Any], Any]], ...]]] = {}

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
    def _copy_plan(cls) -> tuple[tuple[str, Callable[[Any], Any]], ...]:
        got = Declared._plan_cache.get(cls)
        if got is None:
            got = Declared._plan_cache[cls] = tuple((f.name, _COPY[f.role]) for f in cls.state_fields())
        return got

    def copy(self) -> Any:
        """A copy of the same class (a subclass survives copy) with every declared field."""
        new = object.__new__(type(self))
        for name, cp in self._copy_plan():
            object.__setattr__(new, name, cp(getattr(self, name)))
        return new

    def key(self) -> tuple[Any, ...]:
        """A hashable snapshot of everything that can change (history and caches left out)."""
        return tuple(exact_key(f.role, getattr(self, f.name))
                     for f in self.state_fields() if f.role.in_key)

    def canonical_parts(self, ren: Any, skip: frozenset[str] = frozenset()) -> tuple[Any, ...]:
        """Each canonical field's form under the renaming `ren`, in declaration order."""
        out = []
        for f in self.state_fields():
            if not f.role.in_key or not f.canonical or f.name in skip:
                continue
            v = getattr(self, f.name)
            out.append(f.canon(self, v, ren) if f.canon is not None else exact_key(f.role, v))
        return tuple(out)

    def canonical_key(self, ren: Any) -> tuple[Any, ...]:
        return self.canonical_parts(ren)

    def check_declared(self) -> None:
        """Every attribute the instance has is declared (tests call this on every class)."""
        names = {f.name for f in self.state_fields()}
        have = set(getattr(self, "__dict__", {}))
        for c in type(self).__mro__:
            have |= {s for s in c.__dict__.get("__slots__", ()) if hasattr(self, s)}
        missing = sorted(have - names)
        if missing:
            raise TypeError(f"{type(self).__name__}: attribute(s) {', '.join(missing)} not declared "
                            f"in STATE: copy() would drop them")
