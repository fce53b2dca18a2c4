"""Global PASID consistency for any number of devices and processes (kernel-core-api.md 3, 6).

Devices and processes are uninterpreted sorts, so a proof holds for every number
of them; PASID values are 20-bit vectors. The state is a handful of z3 arrays
(per-process PASID and IA32_PASID, the global IDA, per-RID spaces, each device's
pasid_array), and each design's allocation rule - read from the design itself,
`Design.pasid_alloc` (model/design.py `PasidAlloc`) - is a transition relation
over them, following model/core.py:

- GLOBAL (`upstream`): one PASID per process from the system-wide IDA
  (`_alloc_mm_data`, `_alloc_global`), kept until the mm is dropped; kernel PASID
  users (`iommu_alloc_global_pasid`) take values from the same IDA.
- GLOBAL_FLAG (`pasid-global-flag`): SVA values from a global space that is free on
  every RID; kernel users allocate per device outside the global values.
- PER_RID (`pasid-per-rid`): a value per (device, process), unique per device; the
  first one is what the process's IA32_PASID carries.

The property (invariant `global-pasid-consistent`): a live process's IA32_PASID
names, on every device, either nothing or that process's own SVA binding.
For the global designs it is proved inductive (with the strengthening listed in
the details); for PER_RID bounded model checking from the initial state finds the
counterexample, which is replayed as kernel calls on the model.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Callable, Sequence, TypeAlias

import z3

from model.design import PasidAlloc, PasidFree
from model.designs import get_design

from proofs.base import Outcome, Proof, as_int, solver, unknown
from proofs.calls import Ref, listing, replay
from proofs.vtd import W_PASID

Dev = z3.DeclareSort("Device")
Proc = z3.DeclareSort("Process")
P = z3.BitVecSort(W_PASID)
B = z3.BoolSort()
ZERO = z3.BitVecVal(0, W_PASID)

Array: TypeAlias = z3.ArrayRef


@dataclass(frozen=True)
class State:
    """One state. 2-D arrays are arrays of arrays (device -> PASID or process -> value)."""

    dead: Array  # Proc -> Bool: the process exited (exit_mmap ran); it never comes back
    has: Array  # Proc -> Bool: mm->pasid is set (iommu_mm allocated)
    val: Array  # Proc -> P: mm->pasid
    msrv: Array  # Proc -> Bool: IA32_PASID is valid (filled on the first ENQCMD #GP)
    msr: Array  # Proc -> P
    galloc: Array  # P -> Bool: taken in the global IDA
    gk: Array  # P -> Bool: taken by a kernel PASID user in the global IDA
    sr: Array  # Dev -> P -> Bool: PER_RID: taken for SVA in the device's space
    srm: Array  # Dev -> Proc -> Bool: PER_RID: the process has a PASID on the device
    srv: Array  # Dev -> Proc -> P: ... which one
    kr: Array  # Dev -> P -> Bool: taken by a kernel PASID user in the device's space
    tv: Array  # Dev -> P -> Bool: the device's pasid_array has an entry
    tk: Array  # Dev -> P -> Bool: ... that is a kernel (paging) domain
    tmm: Array  # Dev -> P -> Proc: ... else the SVA domain of this process

    @staticmethod
    def fresh(tag: str) -> "State":
        sorts = {
            "dead": (Proc, B), "has": (Proc, B), "val": (Proc, P), "msrv": (Proc, B),
            "msr": (Proc, P), "galloc": (P, B), "gk": (P, B),
            "sr": (Dev, z3.ArraySort(P, B)), "srm": (Dev, z3.ArraySort(Proc, B)),
            "srv": (Dev, z3.ArraySort(Proc, P)), "kr": (Dev, z3.ArraySort(P, B)),
            "tv": (Dev, z3.ArraySort(P, B)), "tk": (Dev, z3.ArraySort(P, B)),
            "tmm": (Dev, z3.ArraySort(P, Proc)),
        }
        return State(**{n: z3.Array(f"{n}_{tag}", *s) for n, s in sorts.items()})


def _store2(a: Array, i: z3.ExprRef, j: z3.ExprRef, v: z3.ExprRef) -> Array:
    return z3.Store(a, i, z3.Store(a[i], j, v))


def initial(s: State) -> z3.BoolRef:
    """Boot: no process has a PASID or an MSR value, every allocator and pasid_array is empty."""
    return z3.And(
        s.dead == z3.K(Proc, False), s.has == z3.K(Proc, False), s.msrv == z3.K(Proc, False),
        s.galloc == z3.K(P, False), s.gk == z3.K(P, False),
        s.sr == z3.K(Dev, z3.K(P, False)), s.srm == z3.K(Dev, z3.K(Proc, False)),
        s.kr == z3.K(Dev, z3.K(P, False)), s.tv == z3.K(Dev, z3.K(P, False)),
    )


@dataclass(frozen=True)
class Params:
    """The arguments of one transition (the action picks which it uses)."""

    d: z3.ExprRef
    m: z3.ExprRef
    p: z3.BitVecRef
    attached: z3.BoolRef  # bind: the attach succeeded (it may fail after the allocation)

    @staticmethod
    def fresh(tag: str) -> "Params":
        return Params(z3.Const(f"d_{tag}", Dev), z3.Const(f"m_{tag}", Proc),
                      z3.BitVec(f"p_{tag}", W_PASID), z3.Bool(f"attached_{tag}"))


Effect = tuple[z3.BoolRef, dict[str, z3.ExprRef]]


@dataclass(frozen=True)
class Rules:
    """A design's PASID rules as transitions (model/core.py, per `Design.pasid_alloc`)."""

    alloc: PasidAlloc
    lowest_free: bool = False  # allocate the lowest free value, as the IDA does (for replays)

    def _lowest(self, taken: Callable[[z3.BitVecRef], z3.BoolRef], p: z3.BitVecRef) -> z3.BoolRef:
        if not self.lowest_free:
            return z3.BoolVal(True)
        q = z3.BitVec("lower", W_PASID)
        return z3.ForAll([q], z3.Implies(z3.And(z3.UGE(q, 1), z3.ULT(q, p)), taken(q)))

    def _global_taken(self, s: State) -> Callable[[z3.BitVecRef], z3.BoolRef]:
        if self.alloc is PasidAlloc.GLOBAL_FLAG:  # "must work for all RIDs": free everywhere
            d2 = z3.Const("any_dev", Dev)
            return lambda q: z3.Or(s.galloc[q], z3.Exists([d2], s.kr[d2][q]))
        return lambda q: s.galloc[q]

    def _rid_taken(self, s: State, d: z3.ExprRef) -> Callable[[z3.BitVecRef], z3.BoolRef]:
        if self.alloc is PasidAlloc.GLOBAL_FLAG:  # kernel users stay out of the global values
            return lambda q: z3.Or(s.kr[d][q], s.galloc[q])
        return lambda q: z3.Or(s.kr[d][q], s.sr[d][q])

    def _attach(self, s: State, a: Params, q: z3.BitVecRef) -> dict[str, z3.ExprRef]:
        """set the pasid_array entry (d, q) to m's SVA domain, unless something is there."""
        new = z3.And(a.attached, z3.Not(s.tv[a.d][q]))
        return {"tv": z3.If(new, _store2(s.tv, a.d, q, True), s.tv),
                "tk": z3.If(new, _store2(s.tk, a.d, q, False), s.tk),
                "tmm": z3.If(new, _store2(s.tmm, a.d, q, a.m), s.tmm)}

    def _pasid_of(self, s: State, d: z3.ExprRef, m: z3.ExprRef) -> tuple[z3.BoolRef, z3.BitVecRef]:
        if self.alloc is PasidAlloc.PER_RID:
            return s.srm[d][m], s.srv[d][m]
        return s.has[m], s.val[m]

    def bind(self, s: State, a: Params) -> Effect:
        """iommu_sva_bind_device: _alloc_mm_data, then attach at that PASID (one handle per mm)."""
        d, m, p = a.d, a.m, a.p
        if self.alloc is PasidAlloc.PER_RID:
            known = s.srm[d][m]
            q = z3.If(known, s.srv[d][m], p)
            taken = self._rid_taken(s, d)
            ok = z3.Or(known, z3.And(p != 0, z3.Not(taken(p)), self._lowest(taken, p)))
            ch = {"sr": _store2(s.sr, d, q, True), "srm": _store2(s.srm, d, m, True),
                  "srv": _store2(s.srv, d, m, q), "has": z3.Store(s.has, m, True),
                  "val": z3.If(s.has[m], s.val, z3.Store(s.val, m, q))}
        else:
            known = s.has[m]
            q = z3.If(known, s.val[m], p)
            taken = self._global_taken(s)
            ok = z3.Or(known, z3.And(p != 0, z3.Not(taken(p)), self._lowest(taken, p)))
            ch = {"galloc": z3.Store(s.galloc, q, True), "has": z3.Store(s.has, m, True),
                  "val": z3.Store(s.val, m, q)}
        ch.update(self._attach(s, a, q))
        return z3.And(z3.Not(s.dead[m]), ok), ch

    def unbind(self, s: State, a: Params) -> Effect:
        """iommu_sva_unbind_device (last reference): detach m's SVA domain at its PASID on d."""
        known, q = self._pasid_of(s, a.d, a.m)
        return (z3.And(known, s.tv[a.d][q], z3.Not(s.tk[a.d][q]), s.tmm[a.d][q] == a.m),
                {"tv": _store2(s.tv, a.d, q, False)})

    def enqcmd(self, s: State, a: Params) -> Effect:
        """try_fixup_enqcmd_gp: IA32_PASID := mm->pasid, once."""
        m = a.m
        return (z3.And(z3.Not(s.dead[m]), s.has[m], z3.Not(s.msrv[m])),
                {"msrv": z3.Store(s.msrv, m, True), "msr": z3.Store(s.msr, m, s.val[m])})

    def exit(self, s: State, a: Params) -> Effect:
        """process_exit: the threads (and their MSRs) are gone; pasid_array entries stay."""
        m = a.m
        return (z3.Not(s.dead[m]),
                {"dead": z3.Store(s.dead, m, True), "msrv": z3.Store(s.msrv, m, False)})

    def mmdrop(self, s: State, a: Params) -> Effect:
        """__mmdrop -> mm_pasid_drop: only after exit and once no SVA domain holds the mm."""
        m = a.m
        d2, q2 = z3.Const("drop_dev", Dev), z3.BitVec("drop_pasid", W_PASID)
        unbound = z3.ForAll([d2, q2], z3.Not(z3.And(s.tv[d2][q2], z3.Not(s.tk[d2][q2]),
                                                     s.tmm[d2][q2] == m)))
        if self.alloc is PasidAlloc.PER_RID:
            ch = {"has": z3.Store(s.has, m, False),
                  "sr": z3.Lambda([d2], z3.Lambda([q2], z3.If(
                      z3.And(s.srm[d2][m], s.srv[d2][m] == q2), False, s.sr[d2][q2]))),
                  "srm": z3.Lambda([d2], z3.Store(s.srm[d2], m, False))}
            return z3.And(s.dead[m], unbound), ch
        return (z3.And(s.dead[m], s.has[m], unbound),
                {"galloc": z3.Store(s.galloc, s.val[m], False), "has": z3.Store(s.has, m, False)})

    def kalloc(self, s: State, a: Params) -> Effect:
        """iommu_alloc_global_pasid by a kernel PASID user of device d."""
        d, p = a.d, a.p
        if self.alloc is PasidAlloc.GLOBAL:
            taken = self._global_taken(s)
            return (z3.And(p != 0, z3.Not(taken(p)), self._lowest(taken, p)),
                    {"galloc": z3.Store(s.galloc, p, True), "gk": z3.Store(s.gk, p, True)})
        taken = self._rid_taken(s, d)
        return (z3.And(p != 0, z3.Not(taken(p)), self._lowest(taken, p)),
                {"kr": _store2(s.kr, d, p, True)})

    def _kernel_owns(self, s: State, d: z3.ExprRef, p: z3.BitVecRef) -> z3.BoolRef:
        return s.gk[p] if self.alloc is PasidAlloc.GLOBAL else s.kr[d][p]

    def kattach(self, s: State, a: Params) -> Effect:
        """iommu_attach_device_pasid of a paging domain at a PASID the user allocated for d."""
        d, p = a.d, a.p
        return (z3.And(self._kernel_owns(s, d, p), z3.Not(s.tv[d][p])),
                {"tv": _store2(s.tv, d, p, True), "tk": _store2(s.tk, d, p, True)})

    def kdetach(self, s: State, a: Params) -> Effect:
        d, p = a.d, a.p
        return z3.And(s.tv[d][p], s.tk[d][p]), {"tv": _store2(s.tv, d, p, False)}

    def kfree(self, s: State, a: Params) -> Effect:
        """iommu_free_global_pasid: the caller frees a PASID no pasid_array uses any more."""
        d, p = a.d, a.p
        d2 = z3.Const("free_dev", Dev)
        unused = z3.ForAll([d2], z3.Not(s.tv[d2][p]))
        if self.alloc is PasidAlloc.GLOBAL:
            return (z3.And(s.gk[p], unused),
                    {"galloc": z3.Store(s.galloc, p, False), "gk": z3.Store(s.gk, p, False)})
        return z3.And(s.kr[d][p], unused), {"kr": _store2(s.kr, d, p, False)}


ACTION_NAMES = ("bind", "unbind", "enqcmd", "exit", "mmdrop", "kalloc", "kattach", "kdetach",
                "kfree")
SVA_ACTIONS = ("bind", "unbind", "enqcmd", "exit", "mmdrop")
CONSISTENT = "global-pasid-consistent"  # the catalog invariant these proofs state


def step(rules: Rules, s: State, t: State, a: Params, action: str) -> z3.BoolRef:
    guard, changes = getattr(rules, action)(s, a)
    frame = [getattr(t, f.name) == changes.get(f.name, getattr(s, f.name)) for f in fields(State)]
    return z3.And(guard, *frame)


def transition(rules: Rules, s: State, t: State, a: Params, sel: z3.ArithRef,
               actions: Sequence[str] = ACTION_NAMES) -> z3.BoolRef:
    return z3.Or(*[z3.And(sel == ACTION_NAMES.index(n), step(rules, s, t, a, n)) for n in actions])


# -- the property and its strengthening ----------------------------------------------------
def consistent(s: State) -> z3.BoolRef:
    """global-pasid-consistent: a live process's IA32_PASID is, on every device, nothing or
    its own SVA binding."""
    m, d = z3.Const("inv_m", Proc), z3.Const("inv_d", Dev)
    q = s.msr[m]
    return z3.ForAll([m, d], z3.Implies(
        z3.And(s.msrv[m], z3.Not(s.dead[m]), s.tv[d][q]),
        z3.And(z3.Not(s.tk[d][q]), s.tmm[d][q] == m)))


def strengthening(alloc: PasidAlloc, s: State) -> list[tuple[str, z3.BoolRef]]:
    """The inductive invariant of the global designs, conjunct by conjunct."""
    m, m2, d = z3.Const("i_m", Proc), z3.Const("i_m2", Proc), z3.Const("i_d", Dev)
    q = z3.BitVec("i_q", W_PASID)
    out = [
        ("the MSR holds the process's own current PASID",
         z3.ForAll([m], z3.Implies(s.msrv[m], z3.And(s.has[m], s.msr[m] == s.val[m],
                                                      z3.Not(s.dead[m]))))),
        ("a process's PASID is taken in the global space, not by a kernel user, and not 0",
         z3.ForAll([m], z3.Implies(s.has[m], z3.And(s.galloc[s.val[m]], z3.Not(s.gk[s.val[m]]),
                                                     s.val[m] != 0)))),
        ("no two processes hold the same PASID",
         z3.ForAll([m, m2], z3.Implies(z3.And(s.has[m], s.has[m2], s.val[m] == s.val[m2]),
                                       m == m2))),
        ("an SVA entry sits at its process's PASID",
         z3.ForAll([d, q], z3.Implies(z3.And(s.tv[d][q], z3.Not(s.tk[d][q])),
                                      z3.And(s.has[s.tmm[d][q]], s.val[s.tmm[d][q]] == q)))),
    ]
    if alloc is PasidAlloc.GLOBAL:
        out += [
            ("a kernel entry sits at a kernel user's global PASID",
             z3.ForAll([d, q], z3.Implies(z3.And(s.tv[d][q], s.tk[d][q]),
                                          z3.And(s.gk[q], s.galloc[q])))),
            ("kernel global PASIDs are taken in the IDA",
             z3.ForAll([q], z3.Implies(s.gk[q], s.galloc[q]))),
        ]
    else:
        out += [
            ("a kernel entry sits at a PASID its user allocated for that device",
             z3.ForAll([d, q], z3.Implies(z3.And(s.tv[d][q], s.tk[d][q]), s.kr[d][q]))),
            ("per-device kernel PASIDs and global values are disjoint",
             z3.ForAll([d, q], z3.Implies(s.kr[d][q], z3.Not(s.galloc[q])))),
            ("no kernel user holds a global PASID",
             z3.ForAll([q], z3.Not(s.gk[q]))),
        ]
    return out


def check_inductive(design_name: str, rules: Rules | None = None) -> Outcome:
    """Init -> Inv, Inv /\\ T -> Inv' (per action), Inv -> global-pasid-consistent; and Inv
    allows a bound process with a live IA32_PASID (so the proof is not vacuous).

    `rules` replaces the design's rules (the tests pass deliberately wrong ones)."""
    design = get_design(design_name)
    if design.pasid_alloc is PasidAlloc.PER_RID:
        raise ValueError(f"{design_name}: per-RID designs have no inductive invariant to prove")
    assert design.pasid_free is PasidFree.MMDROP, "PASIDs freed at mmdrop (model/core.py)"
    rules = rules or Rules(design.pasid_alloc)
    s, t, a = State.fresh("s"), State.fresh("t"), Params.fresh("a")
    inv_s = strengthening(design.pasid_alloc, s)
    inv_t = strengthening(design.pasid_alloc, t)
    obligations: list[tuple[str, list[z3.BoolRef]]] = [
        ("initial state satisfies the invariant",
         [initial(s), z3.Not(z3.And(*[c for _, c in inv_s]))])]
    for name in ACTION_NAMES:
        obligations.append((f"{name} preserves the invariant",
                            [*[c for _, c in inv_s], step(rules, s, t, a, name),
                             z3.Not(z3.And(*[c for _, c in inv_t]))]))
    obligations.append(("the invariant implies global-pasid-consistent",
                        [*[c for _, c in inv_s], z3.Not(consistent(s))]))
    details = [f"rules: {design.pasid_alloc.name} ({design.pasid_alloc.value})"]
    for what, query in obligations:
        sol = solver()
        sol.add(*query)
        r = sol.check()
        if r == z3.unknown:
            return unknown(what)
        if r == z3.sat:
            return Outcome("counterexample", (f"{what}: FAILS (the invariant is not inductive)",))
        details.append(f"{what}: proved")
    # Non-vacuity: bind then ENQCMD from boot reaches a state (so an invariant state) in
    # which a live process's IA32_PASID is attached on a device.
    s0, s1, s2 = State.fresh("n0"), State.fresh("n1"), State.fresh("n2")
    a1, a2 = Params.fresh("n1"), Params.fresh("n2")
    sol = solver()
    sol.add(initial(s0), step(rules, s0, s1, a1, "bind"), step(rules, s1, s2, a2, "enqcmd"),
            a1.attached, a2.m == a1.m, s2.msrv[a1.m], s2.tv[a1.d][s2.msr[a1.m]])
    if sol.check() != z3.sat:
        return unknown("non-vacuity: bind + ENQCMD from boot")
    details.append("non-vacuous: bind then ENQCMD from boot reaches a live process whose "
                   "IA32_PASID is attached on a device")
    details += [f"invariant: {text}" for text, _ in inv_s]
    return Outcome("proved", tuple(details))


# -- PER_RID: the counterexample from the initial state -----------------------------------------
#: Quantifier-free transitions (mmdrop's "no SVA domain holds the mm" guard is a forall),
#: enough for the counterexample and fast for z3.
SEARCH_ACTIONS = ("bind", "unbind", "enqcmd", "exit")


def bmc_counterexample(design_name: str, max_steps: int = 3,
                       actions: Sequence[str] = SEARCH_ACTIONS
                       ) -> tuple[z3.ModelRef, list[Params], list[z3.ArithRef]] | None | str:
    """The shortest run from boot (SVA actions, so that it replays as calls) that breaks
    consistency; "unknown" if z3 gives up. Allocated values are pinned to 1 when that
    is still a counterexample: the IDA hands out the lowest free value, 1 on a fresh space."""
    rules = Rules(get_design(design_name).pasid_alloc)
    for k in range(1, max_steps + 1):
        states = [State.fresh("s0")]
        params = [Params.fresh(f"a{i}") for i in range(1, k + 1)]
        sels = [z3.Int(f"sel{i}") for i in range(1, k + 1)]
        sol = solver()
        sol.add(initial(states[0]))
        for i in range(k):
            states.append(State.fresh(f"s{i + 1}"))
            sol.add(transition(rules, states[i], states[i + 1], params[i], sels[i], actions))
        sol.add(z3.Not(consistent(states[-1])))
        r = sol.check()
        if r == z3.unknown:
            return "unknown"
        if r == z3.sat:
            sol.push()
            sol.add(*[z3.Implies(sel == ACTION_NAMES.index("bind"), a.p == 1)
                      for a, sel in zip(params, sels)])
            if sol.check() != z3.sat:
                sol.pop()
                sol.check()
            return sol.model(), params, sels
    return None


def _script(m: z3.ModelRef, params: Sequence[Params], sels: Sequence[z3.ArithRef]
            ) -> tuple[list[tuple[str, tuple[Any, ...]]], list[str]]:
    """The abstract run as kernel calls: one mm_alloc per process, devices named dev0, dev1..."""
    devs: list[Any] = []
    procs: list[Any] = []

    def idx(pool: list[Any], v: Any, add: bool = True) -> int:
        for i, x in enumerate(pool):
            if z3.is_true(m.eval(x == v, model_completion=True)):
                return i
        if not add:
            return 0  # a device no bind touched: any device will do
        pool.append(v)
        return len(pool) - 1

    steps = [(ACTION_NAMES[as_int(m, sel)], m.eval(a.d, model_completion=True),
              m.eval(a.m, model_completion=True), as_int(m, a.p)) for a, sel in zip(params, sels)]
    for name, d, proc, _ in steps:
        idx(procs, proc)
        if name in ("bind", "unbind"):
            idx(devs, d)
    script: list[tuple[str, tuple[Any, ...]]] = [("mm_alloc", ()) for _ in procs]
    text: list[str] = []
    binds: dict[tuple[int, int], int] = {}
    for name, d, proc, p in steps:
        di, pi = idx(devs, d, add=False), idx(procs, proc)
        dev, mm = f"dev{di}", Ref(pi)
        shown = {"bind": f"device {di}, process {pi}, pasid {p}", "unbind": f"device {di}, process {pi}",
                 "enqcmd": f"process {pi}, to device {di}"}.get(name, f"process {pi}")
        text.append(f"{name}({shown})")
        if name == "bind":
            binds[(di, pi)] = len(script)
            script.append(("iommu_sva_bind_device", (dev, mm)))
        elif name == "unbind":
            script.append(("iommu_sva_unbind_device", (Ref(binds[(di, pi)]),)))
        elif name == "enqcmd":
            script.append(("enqcmd", (mm, dev, 0)))
        elif name == "exit":
            script.append(("process_exit", (mm,)))
        elif name == "mmdrop":
            script.append(("srcu_grace_period", ()))
    return script, text


def check_per_rid(design_name: str = "pasid-per-rid") -> Outcome:
    """Claim: the design keeps global-pasid-consistent (expected to fail for PER_RID)."""
    found = bmc_counterexample(design_name)
    if found == "unknown":
        return unknown(f"{design_name}: bounded search")
    if found is None or isinstance(found, str):
        return Outcome("proved", ("no violation within 3 transitions (bounded search only)",))
    m, params, sels = found
    script, text = _script(m, params, sels)
    lines = [f"abstract run ({len(text)} transitions, any number of devices and processes): "
             + "; ".join(text)]
    calls, result, _ = replay(design_name, "vtd", script, invariants=[CONSISTENT])
    lines += listing(result)
    procs = {str(m.eval(a.m, model_completion=True)) for a in params}
    devs = {str(m.eval(a.d, model_completion=True)) for a, sel in zip(params, sels)
            if ACTION_NAMES[as_int(m, sel)] in ("bind", "unbind")}
    pasids = sorted({as_int(m, a.p) for a, sel in zip(params, sels)
                     if ACTION_NAMES[as_int(m, sel)] == "bind"})
    return Outcome("counterexample", tuple(lines), {
        "processes": len(procs), "devices": len(devs), "bind_pasids": pasids,
        "calls": calls, "violation": None if result.violation is None
        else result.violation.invariant})


PASID_ASSUMPTIONS = (
    "devices and processes are uninterpreted sorts: any number of each",
    "PASID values are 20-bit; allocation may return ANY free value (the IDA's lowest-free "
    "choice is one of them), so the proof covers every allocation order",
    "transitions follow model/core.py: bind (_alloc_mm_data + attach, which may fail after "
    "allocating), unbind, ENQCMD (IA32_PASID filled once), exit, mmdrop (PASID freed after "
    "exit once no SVA domain holds the mm), kernel PASID alloc/attach/detach/free",
    "a process's PASID never changes while it holds one (mm->pasid is set once)",
)


PROOFS: tuple[Proof, ...] = (
    Proof(
        "pasid-global-consistent-upstream",
        "With one global PASID space (upstream), a process's IA32_PASID names, on every device, "
        "only that process's own SVA binding or nothing: the rule is inductive.",
        PASID_ASSUMPTIONS, "proved", lambda: check_inductive("upstream"),
        topic="global PASID (kernel-core-api 3, 6)",
    ),
    Proof(
        "pasid-global-consistent-global-flag",
        "The same for pasid-global-flag (SVA values global and free on every RID, kernel users "
        "per device outside them).",
        PASID_ASSUMPTIONS, "proved", lambda: check_inductive("pasid-global-flag"),
        topic="global PASID (kernel-core-api 3, 6)",
    ),
    Proof(
        "pasid-global-consistent-per-rid",
        "With per-RID PASIDs (pasid-per-rid) a process's IA32_PASID still names only its own "
        "binding (expected to fail: two processes, two devices, one value).",
        PASID_ASSUMPTIONS[:1] + (
            "allocation is lowest-free per device (so the run replays on the model)",),
        "counterexample", check_per_rid, topic="global PASID (kernel-core-api 3, 6)",
    ),
)
