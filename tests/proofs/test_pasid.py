"""Global PASID proofs: the per-RID counterexample, and a wrong rule is not proved."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import z3

from model.design import PasidAlloc
from proofs.base import ProofResult
from proofs.pasid import Effect, Params, Rules, State


def test_per_rid_counterexample(result: Callable[[str], ProofResult]) -> None:
    w = result("pasid-global-consistent-per-rid").witness
    assert w["processes"] == 2 and w["devices"] == 2
    assert w["bind_pasids"] == [1]  # the same value on both devices
    assert w["violation"] == "global-pasid-consistent"
    names = [c[0] for c in w["calls"]]
    assert names.count("mm_alloc") == 2 and names.count("iommu_sva_bind_device") == 2
    assert "enqcmd" in names


@dataclass(frozen=True)
class StaleMsrRules(Rules):
    """A broken rule: ENQCMD's #GP fixup loads IA32_PASID with some value other than the
    mm's PASID (as if the MSR kept a value from an earlier allocation)."""

    def enqcmd(self, s: State, a: Params) -> Effect:
        guard, changes = super().enqcmd(s, a)
        return guard, {**changes, "msr": z3.Store(s.msr, a.m, a.p)}


#: The wrong-rule query is a satisfiable one over arrays: how long z3 takes to find its
#: model depends on every term the session made before in z3's global context (on a
#: worker that ran other proofs first it has hit the 60 s timeout). It runs in a fresh
#: interpreter, as the proof CLI runs it.
_RUN = """
import json, sys
sys.path.insert(0, sys.argv[1])
from test_pasid import StaleMsrRules
from model.design import PasidAlloc
from proofs.pasid import check_inductive
out = check_inductive("upstream", StaleMsrRules(PasidAlloc.GLOBAL))
print(json.dumps([out.status, list(out.details)]))
"""


def test_wrong_rule_is_not_proved() -> None:
    here = Path(__file__).resolve().parent
    r = subprocess.run([sys.executable, "-c", _RUN, str(here)], capture_output=True, text=True,
                       check=True, cwd=here.parents[1])
    status, details = json.loads(r.stdout.splitlines()[-1])
    assert status == "counterexample", details
    assert details[0].startswith("enqcmd preserves the invariant: FAILS")


def test_global_designs_proved(result: Callable[[str], ProofResult]) -> None:
    for name in ("pasid-global-consistent-upstream", "pasid-global-consistent-global-flag"):
        details = result(name).details
        assert any("the invariant implies global-pasid-consistent: proved" in d for d in details)
        assert any(d.startswith("non-vacuous") for d in details)
