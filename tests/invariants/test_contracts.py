"""The errno contract (invariants/contracts.py): coverage, upstream keeps it, and it bites.

Bite tests use Kernel subclasses defined here, run through a `Runner` whose Config
builds them, or judge hand-built `Step`s over real Kernel states.
"""

from __future__ import annotations

import errno
import importlib.util
import inspect
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import pytest

from checker.check import check_hypothesis
from checker.explore import check_explore
from checker.run import Runner
from checker.world import Config, make_driver
from invariants.base import Step, Violation
from invariants.catalog import BY_ID, CATALOG
from invariants.contracts import (
    CONTRACTS,
    ERRNO_CONTRACT,
    SAME_HANDLE,
    VOID_CALLS,
    expected,
    judge,
    render_contracts_markdown,
)
from model.actions import ACTIONS, ACTIONS_BY_NAME, Args
from model.bounds import Bounds
from model.core import Kernel
from model.designs import get_design
from model.objects import ErrPtr

UPSTREAM = get_design("upstream")
TINY = Bounds(devices=1, processes=1, paging_domains=1, iova_pages=1, phys_pages=1, max_pasids=2)
ROOT = Path(__file__).resolve().parents[2]


# -- coverage -----------------------------------------------------------------------------------
def test_every_call_has_a_contract_or_is_void() -> None:
    calls = {a.name for a in ACTIONS if a.kind == "call"}
    assert calls <= set(CONTRACTS) | set(VOID_CALLS), calls - set(CONTRACTS) - set(VOID_CALLS)
    assert not set(CONTRACTS) & set(VOID_CALLS)
    assert set(CONTRACTS) <= set(ACTIONS_BY_NAME), set(CONTRACTS) - set(ACTIONS_BY_NAME)
    assert set(VOID_CALLS) <= calls
    # the errno-returning events
    assert {"cpu_map", "cpu_munmap", "module_unload"} <= set(CONTRACTS)


def test_registered_in_the_catalog() -> None:
    assert ERRNO_CONTRACT in CATALOG and BY_ID["errno-contract"] is ERRNO_CONTRACT


def test_contracts_doc_is_rendered_and_committed() -> None:
    md = render_contracts_markdown()
    for name, c in CONTRACTS.items():
        assert f"## `{name}`" in md
        assert c.kernel_doc in md
    assert "`-EBUSY` when the group's pasid_array already holds an entry" in md
    assert (ROOT / "docs" / "contracts.md").read_text() == md


def test_cli_prints_one_contract(capsys: pytest.CaptureFixture[str]) -> None:
    from checker.cli import main

    main(["contracts", "iommu_sva_bind_device"])
    text = capsys.readouterr().out
    assert text.startswith("## `iommu_sva_bind_device`")
    assert "`the existing handle` when" in text and "## `iommu_attach_device`" not in text
    with pytest.raises(SystemExit) as e:
        main(["contracts", "iommu_nonsense"])
    assert e.value.code == 2


def test_clauses_follow_kernel_order_for_attach_device_pasid() -> None:
    errs = [c.result for c in CONTRACTS["iommu_attach_device_pasid"].clauses[:7]]
    # the reset check (-EBUSY) is taken under the group mutex, before the per-device
    # max_pasids loop (c279e83953d9)
    assert errs == [-errno.ENODEV, -errno.EINVAL, -errno.EOPNOTSUPP, -errno.EINVAL, -errno.EBUSY,
                    -errno.EINVAL, -errno.EBUSY]


# -- upstream keeps the contract ------------------------------------------------------------------
WORLDS = {
    "one-device": TINY,
    "shared-group": TINY.override("shared_group=1,devices=0"),
    "no-pasid-device": TINY.override("no_pasid_device=1,devices=0"),
    "pci-reset": TINY.override("pci_reset=1"),
}


EXHAUSTIVE = [pytest.param(w, hw, id=f"{w}-{hw}",
                           # about a minute on a loaded machine
                           # the reset world: 4,616 / 7,986 states (tests/model/test_reset.py
                           # covers its calls' errnos in the default run)
                           marks=[pytest.mark.deep] if (w, hw) == ("shared-group", "smmuv3")
                           or w == "pci-reset" else [])
              for w in sorted(WORLDS) for hw in ("vtd", "smmuv3")]


@pytest.mark.parametrize("world,hw", EXHAUSTIVE)
def test_upstream_keeps_contracts_exhaustively(world: str, hw: str) -> None:
    r = check_explore(UPSTREAM, hw, WORLDS[world], (ERRNO_CONTRACT,), saturate=True)
    assert r.trace is None, "\n".join(r.trace.listing()) + f"\n{r.trace.violation}"
    assert r.complete, r.extra.get("summary")
    assert r.examples > 100  # states: the world is not trivial


@pytest.mark.parametrize("world", sorted(WORLDS))
def test_upstream_keeps_contracts_on_mock(world: str) -> None:
    """The mock driver's state has no canonical form, so the explorer cannot exhaust
    its worlds (fresh ids are new states): every path of 5 steps instead."""
    r = check_explore(UPSTREAM, "mock", WORLDS[world], (ERRNO_CONTRACT,), depth=5)
    assert r.trace is None, "\n".join(r.trace.listing()) + f"\n{r.trace.violation}"
    assert r.examples > 50


@pytest.mark.deep
@pytest.mark.parametrize("hw", ["vtd", "smmuv3"])
def test_upstream_keeps_contracts_with_a_no_pasid_device_beside(hw: str) -> None:
    r = check_explore(UPSTREAM, hw, TINY.override("no_pasid_device=1,paging_domains=0"),
                      (ERRNO_CONTRACT,), saturate=True)
    assert r.trace is None and r.complete


@pytest.mark.parametrize("hw", ["vtd", "smmuv3", "mock"])
def test_upstream_keeps_contracts_hypothesis(hw: str) -> None:
    r = check_hypothesis(UPSTREAM, hw, Bounds(), (ERRNO_CONTRACT,), profile="ci", seed=1,
                         max_examples=40, database=False)
    assert r.trace is None, "\n".join(r.trace.listing()) + f"\n{r.trace.violation}"
    assert r.steps > 200


# -- the driver clauses read the driver's state ----------------------------------------------------
def _boot(hw: str, b: Bounds, kernel: type[Kernel] = Kernel) -> Kernel:
    k = kernel(hw, b.device_list(), design=UPSTREAM, driver=make_driver(hw, b, UPSTREAM))
    for name in sorted(k.devices):
        assert k.iommu_device_use_default_domain(name) == 0
    return k


def _run(k: Kernel, name: str, *args: Any) -> tuple[Step, Violation | None]:
    action = ACTIONS_BY_NAME[name]
    before = k.copy()
    result = action.run(k, args)
    step = Step(before, action, args, result, k)
    assert ERRNO_CONTRACT.check_step is not None
    return step, ERRNO_CONTRACT.check_step(step, TINY)


def test_vtd_did_exhaustion_is_enospc() -> None:
    k = _boot("vtd", TINY.override("ndoms=3"))  # one paging DID, taken by dev0's default domain
    d = k.iommu_paging_domain_alloc("dev0")
    assert isinstance(d, int)
    p = k.iommu_alloc_global_pasid("dev0")
    exp = expected(CONTRACTS["iommu_attach_device_pasid"], k, (d, "dev0", p))
    assert exp.clause is not None and exp.clause.result == -errno.ENOSPC and exp.clause.hw == ("vtd",)
    step, v = _run(k, "iommu_attach_device_pasid", d, "dev0", p)
    assert step.result == -errno.ENOSPC and v is None


def test_vtd_rid_attach_reuses_the_did_it_releases() -> None:
    """device_block_translation drops the default domain's DID first: no -ENOSPC."""
    k = _boot("vtd", TINY.override("ndoms=3"))
    d = k.iommu_paging_domain_alloc("dev0")
    exp = expected(CONTRACTS["iommu_attach_device"], k, (d, "dev0"))
    assert exp.clause is None
    step, v = _run(k, "iommu_attach_device", d, "dev0")
    assert step.result == 0 and v is None


def test_smmu_asid_exhaustion_is_enospc() -> None:
    k = _boot("smmuv3", TINY.override("asid_bits=1"))  # ASID 1 only, dev0's default domain has it
    step, v = _run(k, "iommu_paging_domain_alloc", "dev0")
    assert step.result == ErrPtr(-errno.ENOSPC) and v is None


def test_vtd_sva_without_ats_is_enodev() -> None:
    k = _boot("vtd", TINY.override("ats_devices=0"))
    mm = k.mm_alloc()
    step, v = _run(k, "iommu_sva_bind_device", "dev0", mm)
    assert step.result == ErrPtr(-errno.ENODEV) and v is None
    step, v = _run(k, "iommu_sva_bind_device", "dev0", mm)  # the mm keeps its PASID: same errno
    assert step.result == ErrPtr(-errno.ENODEV) and v is None


def test_bind_on_bound_pair_expects_the_same_handle() -> None:
    k = _boot("smmuv3", TINY)
    mm = k.mm_alloc()
    h = k.iommu_sva_bind_device("dev0", mm)
    exp = expected(CONTRACTS["iommu_sva_bind_device"], k, ("dev0", mm))
    assert exp.clause is not None and exp.clause.result == SAME_HANDLE
    step, v = _run(k, "iommu_sva_bind_device", "dev0", mm)
    assert step.result == h and v is None


# -- bites: broken kernels ------------------------------------------------------------------------
@dataclass(frozen=True)
class BrokenConfig(Config):
    kernel: type[Kernel] = Kernel

    def build(self) -> Kernel:
        k = self.kernel(self.hw, self.bounds.device_list(), design=self.design,
                        driver=make_driver(self.hw, self.bounds, self.design))
        for name in sorted(k.devices):
            k.iommu_device_use_default_domain(name)
        k.warnings.clear()
        return k


def _first_violation(kernel: type[Kernel], hw: str, calls: list[tuple[str, Callable[[Kernel], Args]]],
                     b: Bounds = TINY) -> tuple[list[Any], Violation | None]:
    """Run calls (arguments computed from the state) through a Runner; stop at a violation."""
    runner = Runner(BrokenConfig(UPSTREAM, hw, b, kernel), (ERRNO_CONTRACT,))
    k = runner.start()
    assert isinstance(k, kernel)
    results = []
    for name, args in calls:
        _, result, v = runner.step(k, ACTIONS_BY_NAME[name], args(k))
        results.append(result)
        if v is not None:
            return results, v
    return results, None


class BusyPasidKernel(Kernel):
    """iommu_attach_device_pasid says -EBUSY although the PASID is free."""

    def iommu_attach_device_pasid(self, domain: int, dev: str, pasid: int, handle: int | None = None) -> int:
        g = self.group_of(dev)
        if g is not None and g.pasid_entry(pasid) is None:
            return -errno.EBUSY
        return super().iommu_attach_device_pasid(domain, dev, pasid, handle)


PASID_ATTACH = [
    ("iommu_paging_domain_alloc", lambda k: ("dev0",)),
    ("iommu_alloc_global_pasid", lambda k: ("dev0",)),
    ("iommu_attach_device_pasid", lambda k: (max(k.domains), "dev0", min(k.global_pasids))),
]


@pytest.mark.parametrize("hw", ["vtd", "smmuv3", "mock"])
def test_bite_busy_on_a_free_pasid(hw: str) -> None:
    results, v = _first_violation(BusyPasidKernel, hw, PASID_ATTACH, Bounds())
    assert v is not None and v.invariant == "errno-contract"
    d = results[0]
    assert v.message == (
        f"iommu_attach_device_pasid(d{d}, dev0, 1) -> -EBUSY, but the contract says 0: "
        f"pasid 1 of g0 is free, dev0 supports 4 PASIDs, d{d} is compatible")


def test_upstream_passes_the_same_sequence() -> None:
    results, v = _first_violation(Kernel, "vtd", PASID_ATTACH, Bounds())
    assert v is None and results[-1] == 0


class NewHandleKernel(Kernel):
    """A second bind of a bound (dev, mm) returns a fresh handle (the v6.2-v6.7 shape)."""

    def iommu_sva_bind_device(self, dev: str, mm: int) -> int | ErrPtr:
        had = set(self.handles)
        h = super().iommu_sva_bind_device(dev, mm)
        if isinstance(h, int) and h in had:
            new = self._new_id()
            self.handles[new] = replace(self.handles[h], id=new, users=1)
            return new
        return h


@pytest.mark.parametrize("hw", ["vtd", "smmuv3"])
def test_bite_new_handle_for_a_bound_pair(hw: str) -> None:
    bind = ("iommu_sva_bind_device", lambda k: ("dev0", min(k.mms)))
    results, v = _first_violation(NewHandleKernel, hw, [("mm_alloc", lambda k: ()), bind, bind])
    assert v is not None and v.invariant == "errno-contract"
    first = results[1]
    assert v.message.startswith(f"iommu_sva_bind_device(dev0, mm{results[0]}) -> sva{results[2]}, "
                                f"but the contract says the existing handle sva{first}: ")
    assert "same handle" in v.message


class WrongErrnoKernel(Kernel):
    """PASID 0 refused with -ENODEV instead of -EINVAL."""

    def iommu_attach_device_pasid(self, domain: int, dev: str, pasid: int, handle: int | None = None) -> int:
        if pasid == 0 and self.group_of(dev) is not None:
            return -errno.ENODEV
        return super().iommu_attach_device_pasid(domain, dev, pasid, handle)


def _judge_direct(k: Kernel, name: str, *args: Any) -> Violation | None:
    """Run k.<name>(*args) directly (arguments the action table never passes) and check it."""
    before = k.copy()
    result = getattr(k, name)(*args)
    step = Step(before, ACTIONS_BY_NAME[name], args, result, k)
    assert ERRNO_CONTRACT.check_step is not None
    return ERRNO_CONTRACT.check_step(step, TINY)


def test_bite_einval_returned_as_enodev() -> None:
    k = _boot("vtd", TINY, WrongErrnoKernel)
    d = k.iommu_paging_domain_alloc("dev0")
    v = _judge_direct(k, "iommu_attach_device_pasid", d, "dev0", 0)
    assert v is not None and v.invariant == "errno-contract"
    assert v.message == (f"iommu_attach_device_pasid(d{d}, dev0, 0) -> -ENODEV, but the contract says "
                         f"-EINVAL: the domain is not ops-compatible with the device, or pasid is "
                         f"IOMMU_NO_PASID (0)")
    assert _judge_direct(_boot("vtd", TINY), "iommu_attach_device_pasid", d, "dev0", 0) is None


class NoBusyCheckKernel(Kernel):
    """iommu_attach_device without the 'RID must be on a core domain' check."""

    def _attach_group(self, dom_id: int, g: Any) -> int:
        dom = self.domains.get(dom_id)
        if dom is None or not self._compatible(dom):
            return -errno.EINVAL
        return self._group_set_domain(g, dom_id)


def test_bite_success_where_the_contract_says_ebusy() -> None:
    k = _boot("smmuv3", TINY.override("paging_domains=2"), NoBusyCheckKernel)
    d1, d2 = k.iommu_paging_domain_alloc("dev0"), k.iommu_paging_domain_alloc("dev0")
    assert k.iommu_attach_device(d1, "dev0") == 0
    step, v = _run(k, "iommu_attach_device", d2, "dev0")
    assert step.result == 0
    assert v is not None and v.invariant == "errno-contract"
    assert v.message.startswith(f"iommu_attach_device(d{d2}, dev0) -> 0, but the contract says -EBUSY: "
                                "the group's RID domain is neither its default nor its blocking domain")


class EnomemKernel(Kernel):
    """set_dev_pasid fails with -ENOMEM without any injected failure."""

    def iommu_attach_device_pasid(self, domain: int, dev: str, pasid: int, handle: int | None = None) -> int:
        return -errno.ENOMEM


def test_enomem_only_when_injected() -> None:
    k = _boot("mock", TINY, EnomemKernel)
    d = k.iommu_paging_domain_alloc("dev0")
    p = k.iommu_alloc_global_pasid("dev0")
    step, v = _run(k, "iommu_attach_device_pasid", d, "dev0", p)
    assert v is not None and "-ENOMEM is allowed only when a failure was injected" in v.message
    k2 = _boot("mock", TINY)
    d = k2.iommu_paging_domain_alloc("dev0")
    p = k2.iommu_alloc_global_pasid("dev0")
    k2.inject_failure("set_dev_pasid", -errno.ENOMEM)
    step, v = _run(k2, "iommu_attach_device_pasid", d, "dev0", p)
    assert step.result == -errno.ENOMEM and v is None


def test_injection_history_counts_as_injected() -> None:
    """A fault-injection history (`injected_at`) that grew during the call allows -ENOMEM."""
    k = _boot("mock", TINY)
    d = k.iommu_paging_domain_alloc("dev0")
    p = k.iommu_alloc_global_pasid("dev0")
    before = k.copy()
    after = k.copy()
    setattr(after, "injected_at", [("set_dev_pasid", "dev0")])
    step = Step(before, ACTIONS_BY_NAME["iommu_attach_device_pasid"], (d, "dev0", p), -errno.ENOMEM, after)
    assert ERRNO_CONTRACT.check_step is not None
    assert ERRNO_CONTRACT.check_step(step, TINY) is None
    step = Step(before, step.action, step.args, -errno.ENOMEM, before.copy())
    assert ERRNO_CONTRACT.check_step(step, TINY) is not None


# -- the conformance rows keep the contracts --------------------------------------------------------
def _load(name: str) -> Any:
    path = ROOT / "tests" / "conformance" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_contracts_{name}", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("hw", ["mock", "vtd", "smmuv3"])
def test_conformance_rows_keep_the_contracts(hw: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every call a scenario row makes through `s.call` that has a contract is judged by it."""
    conftest = _load("conftest")
    judged: list[str] = []
    broken: list[str] = []
    real_call = conftest.S.call

    def call(self: Any, fn: str, *args: Any, warn: bool = False) -> Any:
        before = self.k.copy()
        ret = real_call(self, fn, *args, warn=warn)
        c = CONTRACTS.get(fn)
        if c is not None:
            inj = [e for op, e in before.injected.items() if self.k.injected.get(op) != e]
            why = judge(c, before, args, ret, self.k, inj)
            judged.append(fn)
            if why is not None:
                broken.append(f"{fn}{args}: {why}")
        return ret

    monkeypatch.setattr(conftest.S, "call", call)
    rows = 0
    for modname in ("test_scenarios", "test_sva_and_pasid"):
        mod = _load(modname)
        for name, fn in inspect.getmembers(mod, inspect.isfunction):
            if name.startswith("test_") and list(inspect.signature(fn).parameters) == ["s"]:
                fn(conftest.build_fixture_s(hw))
                rows += 1
    assert rows >= 35
    assert not broken, "\n".join(broken)
    assert len(judged) >= 60
    assert {"iommu_attach_device", "iommu_attach_device_pasid", "iommu_replace_device_pasid",
            "iommu_sva_bind_device", "iommu_device_claim_dma_owner"} <= set(judged)


class LeakyAllocKernel(Kernel):
    """iommu_alloc_global_pasid hands out the highest free value, not the lowest."""

    def iommu_alloc_global_pasid(self, dev: str) -> int:
        free = [p for p in range(1, self.devices[dev].max_pasids) if p not in self.global_pasids]
        if not free:
            return super().iommu_alloc_global_pasid(dev)
        self.global_pasids = self.global_pasids | {free[-1]}
        self.kernel_pasids = self.kernel_pasids | {(None, free[-1])}
        return free[-1]


def test_bite_pasid_allocator_order() -> None:
    results, v = _first_violation(LeakyAllocKernel, "mock", [("iommu_alloc_global_pasid", lambda k: ("dev0",))],
                                  Bounds())
    assert results == [3]
    assert v is not None and v.message == ("iommu_alloc_global_pasid(dev0) -> 3, but the contract says 1: "
                                           "the allocator gives the lowest free value")
