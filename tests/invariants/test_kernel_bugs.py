"""The kernel-bug invariants (invariants/kernel_bugs.py) and what they rest on: declared WARN
sites, freed-object records, state declared once, a core a design brings.

Each class is checked three ways: it fires on a hand-made state or step that has the
bug (and names it), it does not fire on upstream (explorer, small worlds), and its
built-in variant is caught with its exact shortest trace (tests/designs).
"""

from __future__ import annotations

import errno
import re
from dataclasses import replace
from pathlib import Path

import pytest

from checker.explore import check_explore
from checker.userdesign import load_design_file
from checker.world import Config
from invariants.base import Step
from invariants.catalog import BY_ID, CATALOG
from invariants.kernel_bugs import KERNEL_BUGS
from model.actions import ACTIONS_BY_NAME
from model.bounds import Bounds
from model.core import Kernel
from model.designs import DESIGNS
from model.state import Declared, Role, StateField
from model.warn import SITES, KernelWarning, WarnClass

ROOT = Path(__file__).resolve().parents[2]
T0 = Bounds(devices=1, processes=1, paging_domains=0, iova_pages=1, phys_pages=1, max_pasids=2)
P1 = Bounds(devices=1, processes=0, paging_domains=1, iova_pages=1, phys_pages=1, max_pasids=2)
T1 = Bounds(devices=1, processes=1, paging_domains=1, iova_pages=1, phys_pages=1, max_pasids=2)
IDS = ("no-use-after-free", "no-kernel-warn", "no-leak", "refcount-matches", "failed-call-unchanged")


def boot(hw: str = "vtd", bounds: Bounds = T0, design: str = "upstream") -> Kernel:
    return Config(DESIGNS[design], hw, bounds).build()


def run(k: Kernel, name: str, *args: object) -> Step:
    before = k.copy()
    result = ACTIONS_BY_NAME[name].run(k, args)
    return Step(before, ACTIONS_BY_NAME[name], args, result, k)


# -- the catalog and the sites -----------------------------------------------------------------
def test_every_class_has_its_own_invariant_with_rationale() -> None:
    assert tuple(i.id for i in KERNEL_BUGS) == IDS
    for inv in KERNEL_BUGS:
        assert BY_ID[inv.id] is inv and inv in CATALOG
        assert len(inv.rationale) > 100 and inv.statement.endswith(".")


def test_every_warn_call_in_the_model_names_a_declared_site() -> None:
    """A typo in a site id would raise KeyError only when the WARN is reached."""
    used = set()
    for path in (ROOT / "model").rglob("*.py"):
        for site_id in re.findall(r"\b(?:self|k)\.warn\(\s*\"(\w+)\"", path.read_text()):
            assert site_id in SITES, f"{path.name}: undeclared warn site {site_id!r}"
            used.add(site_id)
        used |= set(re.findall(r"f\"uaf_\{kind\}\"", path.read_text()) and
                    [s for s in SITES if s.startswith("uaf_")])
    assert set(SITES) - used == set(), f"declared but never used: {sorted(set(SITES) - used)}"


def test_sites_are_classified_with_their_kernel_function() -> None:
    for s in SITES.values():
        assert s.function and s.condition
    # the seed 003 WARN is a bug-class site; argument checks at API entries are misuse
    assert SITES["vtd_dev_pasid_missing"].klass is WarnClass.BUG
    assert SITES["detach_wrong_domain"].klass is WarnClass.MISUSE
    assert SITES["pasid_detach_no_group"].klass is WarnClass.OOPS


def test_a_recorded_warning_is_a_string_that_knows_its_site() -> None:
    k = boot()
    k.warn("detach_wrong_domain", "domain 9 is not dev0's domain")
    w = k.warnings[-1]
    assert isinstance(w, KernelWarning) and w.site.id == "detach_wrong_domain"
    assert w == "iommu_detach_device: domain 9 is not dev0's domain"


# -- use-after-free ------------------------------------------------------------------------------
def test_unbind_of_a_freed_handle_names_where_it_was_freed() -> None:
    k = boot()
    mm = k.mm_alloc()
    h = k.iommu_sva_bind_device("dev0", mm)
    assert isinstance(h, int)
    k.iommu_sva_unbind_device(h)
    step = run(k, "iommu_sva_unbind_device", h)
    v = BY_ID["no-use-after-free"].check(step, k, T0)
    assert v is not None and v.invariant == "no-use-after-free"
    assert f"unbind of freed SVA handle {h} (freed in iommu_sva_unbind_device)" in v.message


def test_misuse_is_allowed_but_an_oops_is_a_kernel_bug() -> None:
    k = boot()
    step = run(k, "iommu_detach_device", 99, "dev0")  # misuse: not dev0's domain
    assert step.new_warnings and BY_ID["no-kernel-warn"].check(step, k, T0) is None
    before = k.copy()
    k.warn("vtd_no_did", "domain_remove_dev_pasid: d7 has no DID on this IOMMU")
    v = BY_ID["no-kernel-warn"].check(Step(before, ACTIONS_BY_NAME["dma"], ("dev0", None, 0), None, k), k, T0)
    assert v is not None and "oops in domain_remove_dev_pasid" in v.message


# -- leaks and refcounts on states that have them ----------------------------------------------------
def test_a_pasid_nobody_holds_is_a_leak() -> None:
    k = boot()
    assert BY_ID["no-leak"].check(None, k, T0) is None
    k.global_pasids = k.global_pasids | {1}
    v = BY_ID["no-leak"].check(None, k, T0)
    assert v is not None and v.message.startswith("PASID 1 is allocated in the global IDA")


def test_a_did_held_for_a_freed_domain_is_a_leak() -> None:
    k = boot("vtd", P1)
    d = k.iommu_paging_domain_alloc("dev0")
    assert isinstance(d, int) and k.iommu_attach_device(d, "dev0") == 0
    k.drv.dids[999] = (5, 1)  # type: ignore[attr-defined]
    v = BY_ID["no-leak"].check(None, k, P1)
    assert v is not None and "DID 5 is held for d999, which was freed" in v.message


@pytest.mark.parametrize("hw", ["vtd", "smmuv3"])
def test_a_count_that_drifts_is_found_at_once(hw: str) -> None:
    k = boot(hw)
    mm = k.mm_alloc()
    assert isinstance(k.iommu_sva_bind_device("dev0", mm), int)
    assert BY_ID["refcount-matches"].check(None, k, T0) is None
    k.mms[mm] = replace(k.mms[mm], count=k.mms[mm].count + 1)
    v = BY_ID["refcount-matches"].check(None, k, T0)
    assert v is not None and v.message == f"mm{mm} mm_count is 4, but it counts 3"


def test_vtd_did_refcount_counts_rid_and_pasid_attachments() -> None:
    k = boot("vtd", P1)
    d = k.iommu_paging_domain_alloc("dev0")
    assert isinstance(d, int) and k.iommu_attach_device(d, "dev0") == 0
    did, ref = k.drv.dids[d]  # type: ignore[attr-defined]
    assert ref == 1 and BY_ID["refcount-matches"].check(None, k, P1) is None
    k.drv.dids[d] = (did, 2)  # type: ignore[attr-defined]
    v = BY_ID["refcount-matches"].check(None, k, P1)
    assert v is not None and v.message == f"d{d}'s DID {did} refcnt is 2, but it counts 1"


# -- failed calls ----------------------------------------------------------------------------------
def test_a_failed_call_that_changed_nothing_passes_and_one_that_did_fails() -> None:
    k = boot("vtd", P1)
    d = k.iommu_paging_domain_alloc("dev0")
    p = k.iommu_alloc_global_pasid("dev0")
    assert isinstance(d, int) and k.iommu_attach_device_pasid(d, "dev0", p) == 0
    step = run(k, "iommu_attach_device_pasid", d, "dev0", p)
    assert step.result == -errno.EBUSY
    assert BY_ID["failed-call-unchanged"].check(step, k, P1) is None
    # the same failure, but the call left the group's pasid_array changed
    g = k.groups["g0"]
    k.groups["g0"] = replace(g, pasid_array=())
    v = BY_ID["failed-call-unchanged"].check(step, k, P1)
    assert v is not None and v.invariant == "failed-call-unchanged"
    assert v.message.startswith(f"iommu_attach_device_pasid(d{d}, dev0, {p}) -> -EBUSY failed but changed groups")


# -- no false alarm on upstream ---------------------------------------------------------------------
@pytest.mark.parametrize("hw", ["vtd", "smmuv3", "mock"])
@pytest.mark.parametrize("world", ["T0", "P1"])
def test_upstream_keeps_every_kernel_bug_invariant(hw: str, world: str) -> None:
    r = check_explore(DESIGNS["upstream"], hw, {"T0": T0, "P1": P1}[world], KERNEL_BUGS, saturate=True)
    assert r.complete and r.trace is None, r.extra["summary"]


@pytest.mark.deep
@pytest.mark.parametrize("hw", ["vtd", "smmuv3", "mock"])
def test_upstream_keeps_them_in_the_one_device_world(hw: str) -> None:
    r = check_explore(DESIGNS["upstream"], hw, T1, KERNEL_BUGS, saturate=True)
    assert r.complete and r.trace is None, r.extra["summary"]


# -- state declared once; a design's own core ---------------------------------------------------------
def test_every_state_class_declares_every_attribute() -> None:
    for hw in ("vtd", "smmuv3", "mock"):
        k = boot(hw, T1)
        k.check_declared()
        assert isinstance(k.drv, Declared)
        k.drv.check_declared()


class Counting(Kernel):
    STATE = (StateField("unbinds", Role.VALUE, "how many unbinds ran (a test field)"),)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.unbinds = 0

    def iommu_sva_unbind_device(self, handle: int) -> None:
        self.unbinds = min(self.unbinds + 1, 2)
        super().iommu_sva_unbind_device(handle)


def test_a_kernel_subclass_survives_copy_and_its_field_is_state() -> None:
    design = replace(DESIGNS["upstream"], name="counting", kind="user", kernel_factory=Counting)
    k = Config(design, "vtd", T0).build()
    assert type(k) is Counting
    c = k.copy()
    assert type(c) is Counting and c.unbinds == 0 and c.key() == k.key()
    c.unbinds = 1
    assert c.key() != k.key()  # the subclass's field is part of the state
    from checker.explore import Explorer

    ex = Explorer(Config(design, "vtd", T0), ())
    ex.prepare(k)
    assert ex.canonical_key(c) != ex.canonical_key(k)


def test_a_state_field_declared_twice_is_refused() -> None:
    class Twice(Kernel):
        STATE = (StateField("groups", Role.MAP, "again"),)

    with pytest.raises(TypeError, match="'groups' declared twice"):
        Twice.state_fields()


def test_the_example_core_override_is_checked_and_caught() -> None:
    design = load_design_file(str(ROOT / "examples" / "sva_bind_no_reuse.py"))
    assert design.kernel_factory is not None
    r = check_explore(design, "vtd", T0, CATALOG)
    assert r.violated == "sva-handle-refcount"
    assert r.trace is not None
    assert [s.action for s in r.trace.steps] == ["mm_alloc", "iommu_sva_bind_device", "iommu_sva_bind_device"]
