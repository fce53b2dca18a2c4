"""Bounded model checking of the PASID lifetime, as a cross-check of the Hypothesis machine.

A small finite abstraction of the model (its sizes read from `Bounds()`: devices,
processes, PASID values 1..max_pasids-1), unrolled k steps in z3. The actions are
the PASID-lifetime part of the action table (model/actions.py): mm_alloc,
iommu_sva_bind_device, iommu_sva_unbind_device, process_exit, the deferred
mmdrop (srcu_grace_period) and enqcmd. Each design's rules are read from the
design (`pasid_alloc`, `pasid_free`, the "enqcmd" feature) and follow
model/core.py: `_alloc_mm_data`, `_alloc_global`/`_alloc_rid` (lowest free value),
`iommu_sva_unbind_device`, `process_exit`, `mmdrop`, `_free_mm_pasids`,
`enqcmd_pasid`.

The invariants are those of the catalog, restated over the abstraction:
`pasid-not-reused-while-bound` (a value free in every allocator is held by no
pasid_array entry and no IA32_PASID) and `global-pasid-consistent`. A violation
found by BMC is decoded into kernel calls and replayed on the model; the tests
check BMC and the Hypothesis machine agree design by design.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import z3

from model.bounds import Bounds
from model.design import Design, PasidAlloc, PasidFree
from model.designs import get_design

from proofs.base import Outcome, Proof, as_int, solver, unknown
from proofs.calls import Ref, listing, replay

#: How many bind references one (device, process) handle may hold in the abstraction.
MAX_HANDLE_USERS = 2
#: Small numbers (PASID values, process indexes, reference counts) are 4-bit vectors:
#: bit-blasting a finite problem is much faster for z3 than integer arithmetic.
NUM_BITS = 4
NONE = (1 << NUM_BITS) - 1  # "no entry" in a pasid_array slot


def num(value: int) -> z3.BitVecRef:
    return z3.BitVecVal(value, NUM_BITS)


def var(name: str) -> z3.BitVecRef:
    return z3.BitVec(name, NUM_BITS)

REUSE = "pasid-not-reused-while-bound"
CONSISTENT = "global-pasid-consistent"
INVARIANTS = (REUSE, CONSISTENT)
DESIGNS = ("upstream", "pasid-freed-at-mm-exit", "pasid-per-rid", "sva-bind-2019-enqcmd",
           "pasid-global-flag", "sva-bind-2019")
ACTIONS = ("mm_alloc", "bind", "unbind", "exit", "mmdrop", "enqcmd")


@dataclass(frozen=True)
class Sizes:
    devices: int
    processes: int
    pasids: int  # values 1..pasids-1 exist (0 is IOMMU_NO_PASID)

    @staticmethod
    def of(b: Bounds) -> "Sizes":
        return Sizes(b.devices, b.processes, b.max_pasids)


@dataclass
class St:
    """One state of the abstraction; lists indexed [process], [device][process], [device][pasid]."""

    created: list[z3.ExprRef]
    exited: list[z3.ExprRef]
    dropped: list[z3.ExprRef]
    pasid: list[z3.ExprRef]  # mm->pasid (0: none)
    msr: list[z3.ExprRef]  # IA32_PASID (0: not valid)
    galloc: list[z3.ExprRef]  # [p] taken in the global space
    rid: list[list[z3.ExprRef]]  # [d][p] taken in device d's space
    rp: list[list[z3.ExprRef]]  # [d][m] PER_RID: m's PASID on d (0: none)
    ent: list[list[z3.ExprRef]]  # [d][p] pasid_array: SVA domain of process ent (NONE: empty)
    users: list[list[z3.ExprRef]]  # [d][m] references of m's bind handle on d
    hp: list[list[z3.ExprRef]]  # [d][m] the PASID that handle is attached at

    @staticmethod
    def fresh(z: Sizes, tag: str) -> "St":
        M, D, P = z.processes, z.devices, z.pasids
        return St(
            created=[z3.Bool(f"created_{m}_{tag}") for m in range(M)],
            exited=[z3.Bool(f"exited_{m}_{tag}") for m in range(M)],
            dropped=[z3.Bool(f"dropped_{m}_{tag}") for m in range(M)],
            pasid=[var(f"pasid_{m}_{tag}") for m in range(M)],
            msr=[var(f"msr_{m}_{tag}") for m in range(M)],
            galloc=[z3.Bool(f"galloc_{p}_{tag}") for p in range(P)],
            rid=[[z3.Bool(f"rid_{d}_{p}_{tag}") for p in range(P)] for d in range(D)],
            rp=[[var(f"rp_{d}_{m}_{tag}") for m in range(M)] for d in range(D)],
            ent=[[var(f"ent_{d}_{p}_{tag}") for p in range(P)] for d in range(D)],
            users=[[var(f"users_{d}_{m}_{tag}") for m in range(M)] for d in range(D)],
            hp=[[var(f"hp_{d}_{m}_{tag}") for m in range(M)] for d in range(D)],
        )

    def copy(self) -> "St":
        return St(*[_deep(getattr(self, f)) for f in self.__dataclass_fields__])

    def cells(self) -> list[z3.ExprRef]:
        out: list[z3.ExprRef] = []
        for f in self.__dataclass_fields__:
            v = getattr(self, f)
            for x in v:
                out.extend(x if isinstance(x, list) else [x])
        return out


def _deep(v: list[Any]) -> list[Any]:
    return [list(x) if isinstance(x, list) else x for x in v]


def _pick(values: Sequence[z3.ExprRef], idx: z3.ExprRef) -> z3.ExprRef:
    """values[idx] for a symbolic index known to be in range."""
    out = values[-1]
    for i in range(len(values) - 2, -1, -1):
        out = z3.If(idx == i, values[i], out)
    return out


def initial(z: Sizes, s: St) -> z3.BoolRef:
    c: list[z3.BoolRef] = []
    for m in range(z.processes):
        c += [z3.Not(s.created[m]), z3.Not(s.exited[m]), z3.Not(s.dropped[m]),
              s.pasid[m] == 0, s.msr[m] == 0]
        for d in range(z.devices):
            c += [s.rp[d][m] == 0, s.users[d][m] == 0, s.hp[d][m] == 0]
    for p in range(z.pasids):
        c.append(z3.Not(s.galloc[p]))
        for d in range(z.devices):
            c += [z3.Not(s.rid[d][p]), s.ent[d][p] == NONE]
    return z3.And(*c)


@dataclass(frozen=True)
class Rules:
    """A design's PASID-lifetime rules over the abstraction."""

    sizes: Sizes
    alloc: PasidAlloc
    free: PasidFree
    has_enqcmd: bool  # the design has x86 ENQCMD (the "enqcmd" feature)

    @staticmethod
    def of(design: Design, b: Bounds) -> "Rules":
        return Rules(Sizes.of(b), design.pasid_alloc, design.pasid_free,
                     "enqcmd" in design.features)

    # -- helpers -----------------------------------------------------------------------
    def _lowest_free(self, taken: Sequence[z3.ExprRef]) -> z3.ExprRef:
        """The IDA's choice: the lowest value in 1..pasids-1 not taken, 0 if none."""
        out: z3.ExprRef = num(0)
        for p in range(self.sizes.pasids - 1, 0, -1):
            out = z3.If(z3.Not(taken[p]), num(p), out)
        return out

    def _free_mm(self, s: St, n: St, m: int) -> None:
        """_free_mm_pasids: the mm's PASID(s) go back to their allocator(s)."""
        if self.alloc is not PasidAlloc.PER_RID:
            for p in range(1, self.sizes.pasids):
                n.galloc[p] = z3.If(s.pasid[m] == p, False, n.galloc[p])
        for d in range(self.sizes.devices):
            for p in range(1, self.sizes.pasids):
                n.rid[d][p] = z3.If(s.rp[d][m] == p, False, n.rid[d][p])
            n.rp[d][m] = num(0)
        n.pasid[m] = num(0)

    def _bonds(self, s: St, m: int) -> z3.ExprRef:
        total = num(0)
        for d in range(self.sizes.devices):
            total = total + s.users[d][m]
        return total

    # -- actions: (guard, next state) for concrete arguments ------------------------------------
    def mm_alloc(self, s: St, d: int, m: int) -> tuple[z3.BoolRef, St]:
        n = s.copy()
        n.created[m] = z3.BoolVal(True)
        first = z3.BoolVal(True) if m == 0 else s.created[m - 1]
        return z3.And(z3.Not(s.created[m]), first), n

    def bind(self, s: St, d: int, m: int) -> tuple[z3.BoolRef, St]:
        """iommu_sva_bind_device(dev d, mm m): _alloc_mm_data, then the (group, PASID) handle."""
        n = s.copy()
        live = z3.And(s.created[m], z3.Not(s.exited[m]), z3.ULT(s.users[d][m], MAX_HANDLE_USERS))
        if self.alloc is PasidAlloc.PER_RID:
            fresh = self._lowest_free([z3.Or(s.rid[d][p], s.galloc[p])
                                       for p in range(self.sizes.pasids)])
            q = z3.If(s.rp[d][m] != 0, s.rp[d][m], fresh)
            for p in range(1, self.sizes.pasids):
                n.rid[d][p] = z3.Or(s.rid[d][p], q == p)
            n.rp[d][m] = q
            n.pasid[m] = z3.If(s.pasid[m] == 0, q, s.pasid[m])
        else:
            fresh = self._lowest_free([z3.Or(s.galloc[p], *[s.rid[x][p] for x in
                                                             range(self.sizes.devices)])
                                       if self.alloc is PasidAlloc.GLOBAL_FLAG else s.galloc[p]
                                       for p in range(self.sizes.pasids)])
            q = z3.If(s.pasid[m] != 0, s.pasid[m], fresh)
            for p in range(1, self.sizes.pasids):
                n.galloc[p] = z3.Or(s.galloc[p], q == p)
            n.pasid[m] = q
        slot = _pick(s.ent[d], q)
        # ENOSPC (q == 0): the allocation failed, nothing else changes.
        attach = z3.And(q != 0, slot == NONE)
        again = z3.And(q != 0, slot == m)
        for p in range(1, self.sizes.pasids):
            n.ent[d][p] = z3.If(z3.And(attach, q == p), num(m), s.ent[d][p])
        n.users[d][m] = z3.If(z3.Or(attach, again), s.users[d][m] + 1, s.users[d][m])
        n.hp[d][m] = z3.If(attach, q, s.hp[d][m])
        # -EBUSY (another mm's SVA domain at q): only the allocation happened.
        return live, n

    def unbind(self, s: St, d: int, m: int) -> tuple[z3.BoolRef, St]:
        """iommu_sva_unbind_device: drop one reference; the last detaches; LAST_UNBIND frees."""
        n = s.copy()
        last = s.users[d][m] == 1
        n.users[d][m] = s.users[d][m] - 1
        for p in range(1, self.sizes.pasids):
            n.ent[d][p] = z3.If(z3.And(last, s.hp[d][m] == p), num(NONE), s.ent[d][p])
        if self.free is PasidFree.LAST_UNBIND:
            gone = z3.And(last, self._bonds(s, m) == 1)  # this was the mm's last bond
            freed = n.copy()
            self._free_mm(s, freed, m)
            n.galloc = [z3.If(gone, x, y) for x, y in zip(freed.galloc, n.galloc)]
            n.rid = [[z3.If(gone, x, y) for x, y in zip(fr, nr)] for fr, nr in zip(freed.rid, n.rid)]
            n.rp = [[z3.If(gone, x, y) for x, y in zip(fr, nr)] for fr, nr in zip(freed.rp, n.rp)]
            n.pasid = [z3.If(gone, x, y) for x, y in zip(freed.pasid, n.pasid)]
        return z3.UGE(s.users[d][m], 1), n

    def exit(self, s: St, d: int, m: int) -> tuple[z3.BoolRef, St]:
        """process_exit: MSRs gone, ->release tears the hardware down; MM_EXIT frees the PASID."""
        n = s.copy()
        n.exited[m] = z3.BoolVal(True)
        n.msr[m] = num(0)
        if self.free is PasidFree.MM_EXIT:
            self._free_mm(s, n, m)
        return z3.And(s.created[m], z3.Not(s.exited[m])), n

    def mmdrop(self, s: St, d: int, m: int) -> tuple[z3.BoolRef, St]:
        """__mmdrop, once the process exited and no SVA domain pins the mm: MMDROP frees."""
        n = s.copy()
        n.dropped[m] = z3.BoolVal(True)
        if self.free is PasidFree.MMDROP:
            self._free_mm(s, n, m)
        return z3.And(s.exited[m], z3.Not(s.dropped[m]), self._bonds(s, m) == 0), n

    def enqcmd(self, s: St, d: int, m: int) -> tuple[z3.BoolRef, St]:
        """enqcmd_pasid: IA32_PASID := mm->pasid on the first ENQCMD (#GP fixup)."""
        n = s.copy()
        n.msr[m] = z3.If(z3.And(s.msr[m] == 0, s.pasid[m] != 0), s.pasid[m], s.msr[m])
        return z3.And(z3.BoolVal(self.has_enqcmd), s.created[m], z3.Not(s.exited[m])), n

    def transition(self, s: St, t: St, sel: z3.ArithRef, dv: z3.ArithRef,
                   mv: z3.ArithRef) -> z3.BoolRef:
        """One step: some enabled (action, device, process); each cell of t is the chosen
        action's value (functional form: one If-chain per cell over the actions that write it)."""
        opts = []
        for i, name in enumerate(ACTIONS):
            for d in range(self.sizes.devices):
                for m in range(self.sizes.processes):
                    guard, n = getattr(self, name)(s, d, m)
                    opts.append((z3.And(sel == i, dv == d, mv == m), guard, n.cells()))
        frame = []
        for j, (old, new) in enumerate(zip(s.cells(), t.cells())):
            value = old
            for cond, _, cells in reversed(opts):
                if not cells[j].eq(old):
                    value = z3.If(cond, cells[j], value)
            frame.append(new == value)
        return z3.And(z3.Or(*[z3.And(cond, guard) for cond, guard, _ in opts]), *frame)


# -- invariants over the abstraction -------------------------------------------------------
def consistent(z: Sizes, s: St) -> z3.BoolRef:
    c = []
    for m in range(z.processes):
        for d in range(z.devices):
            slot = _pick(s.ent[d], s.msr[m])
            c.append(z3.Implies(z3.And(s.created[m], z3.Not(s.exited[m]), s.msr[m] != 0),
                                z3.Or(slot == NONE, slot == m)))
    return z3.And(*c)


def not_reused(z: Sizes, s: St) -> z3.BoolRef:
    c = []
    for p in range(1, z.pasids):
        allocated = z3.Or(s.galloc[p], *[s.rid[d][p] for d in range(z.devices)])
        held = z3.Or(*[s.ent[d][p] != NONE for d in range(z.devices)],
                     *[z3.And(s.created[m], z3.Not(s.dropped[m]), s.msr[m] == p)
                       for m in range(z.processes)])
        c.append(z3.Implies(z3.Not(allocated), z3.Not(held)))
    return z3.And(*c)


PROPERTY: dict[str, Callable[[Sizes, St], z3.BoolRef]] = {
    CONSISTENT: consistent, REUSE: not_reused}


@dataclass(frozen=True)
class BmcResult:
    design: str
    invariant: str
    depth: int  # the shortest violating run, or the bound searched
    violated: bool
    steps: tuple[tuple[str, int, int], ...] = ()  # (action, device, process)
    calls: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    replayed: str | None = None  # the invariant the model's replay violates
    listing: tuple[str, ...] = ()


def _unrolled(rules: Rules, invariant: str, k: int
              ) -> tuple[z3.Solver, list[St], list[tuple[z3.BitVecRef, ...]]]:
    """Boot, k transitions, and "the invariant fails in some state 1..k" (one fresh query:
    non-incremental bit-blasting is far faster here than an incremental solver)."""
    z = rules.sizes
    states = [St.fresh(z, "0")]
    args: list[tuple[z3.BitVecRef, ...]] = []
    sol = solver()
    sol.add(initial(z, states[0]))
    for i in range(1, k + 1):
        t = St.fresh(z, str(i))
        a = (var(f"sel{i}"), var(f"dev{i}"), var(f"proc{i}"))
        sol.add(rules.transition(states[-1], t, *a))
        states.append(t)
        args.append(a)
    sol.add(z3.Or(*[z3.Not(PROPERTY[invariant](z, st)) for st in states[1:]]))
    return sol, states, args


def bmc(design_name: str, invariant: str, max_depth: int = 6,
        bounds: Bounds | None = None) -> BmcResult | str:
    """Is there a run of at most max_depth steps from boot that violates the invariant? The
    shortest one, decoded and replayed on the model; "unknown" if z3 gives up."""
    b = bounds or Bounds()
    rules = Rules.of(get_design(design_name), b)
    sol, _, _ = _unrolled(rules, invariant, max_depth)
    r = sol.check()
    if r == z3.unknown:
        return "unknown"
    if r == z3.unsat:
        return BmcResult(design_name, invariant, max_depth, False)
    for k in range(1, max_depth + 1):  # the shortest violating run
        sol, states, args = _unrolled(rules, invariant, k)
        r = sol.check()
        if r == z3.unknown:
            return "unknown"
        if r == z3.sat:
            break
    m = sol.model()
    steps = tuple((ACTIONS[as_int(m, a[0])], as_int(m, a[1]), as_int(m, a[2])) for a in args)
    calls, result, _ = replay(design_name, "vtd", script(steps), b, [invariant])
    return BmcResult(design_name, invariant, k, True, steps, tuple(calls),
                     None if result.violation is None else result.violation.invariant,
                     tuple(listing(result)))


def script(steps: Sequence[tuple[str, int, int]]) -> list[tuple[str, tuple[Any, ...]]]:
    """A BMC run as kernel calls (object ids resolved by proofs.calls at replay)."""
    out: list[tuple[str, tuple[Any, ...]]] = []
    mm_step: dict[int, int] = {}
    bind_step: dict[tuple[int, int], int] = {}
    for action, d, m in steps:
        dev = f"dev{d}"
        if action == "mm_alloc":
            mm_step[m] = len(out)
            out.append(("mm_alloc", ()))
        elif action == "bind":
            bind_step[(d, m)] = len(out)
            out.append(("iommu_sva_bind_device", (dev, Ref(mm_step[m]))))
        elif action == "unbind":
            out.append(("iommu_sva_unbind_device", (Ref(bind_step[(d, m)]),)))
        elif action == "exit":
            out.append(("process_exit", (Ref(mm_step[m]),)))
        elif action == "mmdrop":
            out.append(("srcu_grace_period", ()))  # the deferred free_notifier -> mmdrop
        elif action == "enqcmd":
            out.append(("enqcmd", (Ref(mm_step[m]), dev, 0)))
    return out


def _show(r: BmcResult) -> list[str]:
    if not r.violated:
        return [f"{r.design}: {r.invariant} holds up to {r.depth} steps"]
    run = "; ".join(f"{a}(dev{d}, process {m})" if a in ("bind", "unbind") else
                    f"{a}(process {m})" for a, d, m in r.steps)
    return [f"{r.design}: {r.invariant} violated at step {r.depth}: {run}",
            *[f"  {line}" for line in r.listing]]


def check_designs(designs: Sequence[str] = DESIGNS, max_depth: int = 6) -> Outcome:
    """BMC of every (design, invariant) against the design's own expectation on vtd
    (`Design.expect_breaks`): a listed invariant must be violated, a design that lists
    neither must hold both; every violation must replay on the model as the same
    invariant. Violations beyond the listed ones are reported, not judged."""
    details: list[str] = []
    results: dict[tuple[str, str], BmcResult] = {}
    bad: list[str] = []
    for design in designs:
        listed = [i for i in INVARIANTS if i in get_design(design).breaks_on("vtd")]
        for inv in INVARIANTS:
            r = bmc(design, inv, max_depth)
            if isinstance(r, str):
                return unknown(f"BMC {design} {inv}")
            results[(design, inv)] = r
            lines = _show(r)
            if r.violated and inv not in listed:
                lines[0] += " (not in the design's expect_breaks)"
            details += lines
            if r.violated and r.replayed != inv:
                bad.append(f"{design} / {inv}: the model's replay does not violate it")
            elif inv in listed and not r.violated:
                bad.append(f"{design} / {inv}: expected violation not found within {max_depth} steps")
            elif not listed and r.violated:
                bad.append(f"{design} / {inv}: violated, but the design is expected to hold")
    if bad:
        return Outcome("counterexample", (*bad, *details), {"results": results})
    return Outcome("proved", tuple(details), {"results": results})


def hypothesis_verdict(design: str, invariant: str, max_examples: int, seed: int = 0
                       ) -> tuple[str | None, int, float]:
    """The Hypothesis machine on the same design and invariant, without shrinking (the
    verdict is what is compared, and shrinking costs more than finding): (violated
    invariant or None, examples, seconds)."""
    from hypothesis import Phase, settings

    from checker.check import check_hypothesis
    from invariants.catalog import get as get_invariants

    settings.register_profile("proofs-xcheck", parent=settings.get_profile("ci"),
                              phases=[Phase.explicit, Phase.generate])
    r = check_hypothesis(get_design(design), "vtd", Bounds(), get_invariants([invariant]),
                         profile="proofs-xcheck", max_examples=max_examples, seed=seed,
                         database=False)
    return r.violated, r.examples, r.seconds


PROOFS: tuple[Proof, ...] = (
    Proof(
        "bmc-pasid-lifetime",
        "Bounded model checking (6 steps, Bounds() sizes) of mm_alloc/bind/unbind/exit/mmdrop/"
        "ENQCMD: each design violates the PASID-lifetime invariants it is expected to break "
        "(pasid-not-reused-while-bound, global-pasid-consistent), the designs expected to hold "
        "(upstream, pasid-global-flag, sva-bind-2019) hold both, and every violation replays on "
        "the model.",
        ("the abstraction keeps the PASID-lifetime state only: processes, their PASIDs and "
         "IA32_PASID, the allocators, each device's pasid_array SVA entries and handle "
         "references (at most 2 per handle)",
         "hardware tables and caches hold a PASID only while a pasid_array entry does (the "
         "teardown proofs show the caches are clean after a detach)",
         "mmdrop is an explicit event, enabled once the process exited and no bond pins the mm",
         "bounded: violations longer than 6 steps are not searched"),
        "proved", check_designs, topic="bmc cross-check",
    ),
)
