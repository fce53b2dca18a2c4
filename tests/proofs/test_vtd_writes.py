"""VT-d entry writes store by store (#17 item 4): the proofs prove what the driver runs.

- Every proof of proofs/vtd_writes.py gives its expected result, and each expected
  counterexample is a real mix: a present entry taking some qwords from the old entry
  and others from the new (or the zeroed) one.
- The model's driver stores exactly the values of the proof's sequence, and meets the
  covering invalidation exactly where the sequence has BARRIER, for the replace of a
  live PASID (upstream and both broken variants) and the SM context teardown at release.
- The concrete fetch model (hwspec/vtd/writer.py) agrees with the proof: the upstream
  replace's window has no torn mix, the variants' first mix is present and mixed.
"""

from __future__ import annotations

import pytest

from checker.worlds import WORLDS
from hwspec.vtd import CONTEXT_ENTRY, PASID_ENTRY, writer
from model.core import Kernel
from model.designs import get_design
from proofs import vtd_writes
from proofs.catalog import get

NAMES = [p.name for p in vtd_writes.PROOFS]


@pytest.mark.parametrize("name", NAMES)
def test_proof_gives_its_expected_result(name: str) -> None:
    (proof,) = get([name])
    r = proof.run()
    assert r.status == proof.expect, r.details
    if r.status == "counterexample":
        w = r.witness
        seen, old = w["seen"], w["old"]
        # present, and none of the values the driver meant the entry to hold (which qword
        # z3 reads from which value is its choice: only that much is asserted)
        assert seen[0] & writer.PRESENT and old in w["whole"] and seen not in w["whole"]


def _live_pasid(design: str) -> tuple[Kernel, int, int, int]:
    k = Kernel("vtd", WORLDS["small1"].to_bounds().device_list(), get_design(design))
    d1, d2 = k.iommu_paging_domain_alloc("dev0"), k.iommu_paging_domain_alloc("dev0")
    assert isinstance(d1, int) and isinstance(d2, int)
    pasid = k.iommu_alloc_global_pasid("dev0")
    assert k.iommu_attach_device_pasid(d1, "dev0", pasid, k.new_attach_handle()) == 0
    k.driver.take_hw_log(k)
    return k, d2, pasid, k.drv.unit.pasid_entry_addr(k.mem, k.devices["dev0"].sid, pasid)  # type: ignore[attr-defined]


def _first_torn_of(start: tuple[int, ...], events: list[writer.Event]) -> tuple[int, ...] | None:
    """The first torn mix of any window of a recorded event list."""
    for w in writer.windows_of(start, events):
        torn = writer.first_torn(w.values, w.whole)
        if torn is not None:
            return torn
    return None


@pytest.mark.parametrize("update", ["pasid-replace", "pasid-replace-in-place", "pasid-replace-zero-present"])
def test_driver_replace_stores_what_the_proof_proves(update: str) -> None:
    u = vtd_writes.UPDATES[update]
    k, d2, pasid, addr = _live_pasid(u.design)
    old = k.mem.read(addr, PASID_ENTRY.words)
    assert k.iommu_replace_device_pasid(d2, "dev0", pasid, k.new_attach_handle()) == 0
    new = k.mem.read(addr, PASID_ENTRY.words)
    assert old != new and old[0] & new[0] & writer.PRESENT
    w = k.drv.unit.windows[addr]  # type: ignore[attr-defined]
    assert w.events == writer.events_of(old, u.sequence(old, new, vtd_writes.CONCRETE))
    torn = _first_torn_of(old, w.events)
    tore = [x for x in k.warnings if x.site.id == "vtd_torn_entry"]
    if update == "pasid-replace":
        assert torn is None and tore == []
    else:
        assert torn is not None and torn[0] & writer.PRESENT and torn not in (old, new)
        assert len(tore) == 1 and f"PASID entry {pasid} of dev0" in tore[0]


def test_driver_context_teardown_stores_what_the_proof_proves() -> None:
    b = WORLDS["small1"].to_bounds().override("reprobe=1")
    k = Kernel("vtd", b.device_list())
    k.driver.take_hw_log(k)
    sid = k.devices["dev0"].sid
    addr = k.drv.unit.context_entry_addr(k.mem, sid)  # type: ignore[attr-defined]
    old = k.mem.read(addr, CONTEXT_ENTRY.words)
    assert old[0] & writer.PRESENT and old[1:] == (0, 0, 0)  # the kernel's constants
    k.iommu_release_device("dev0")
    w = k.drv.unit.windows[addr]  # type: ignore[attr-defined]
    u = vtd_writes.UPDATES["context-teardown"]
    assert w.events == writer.events_of(old, u.sequence(old, old, vtd_writes.CONCRETE))
    assert _first_torn_of(old, w.events) is None and k.warnings == []


def test_fetch_model_mixes_q0_first_within_a_window() -> None:
    """Rule 2: q0 is read no later than the others; a fetch of q0 after P was set sees
    only the final fields (the publication idiom the setup relies on)."""
    cleared = (0, 0, 0)
    fields = (0, 5, 7)
    live = (1, 5, 7)
    assert set(writer.observable([cleared, fields, live])) == {cleared, fields, (0, 5, 0), (0, 0, 7),
                                                               (0, 5, 7), live}
    assert writer.first_torn([cleared, fields, live], [cleared, live]) is None
    # zeroing a live entry qword by qword: the old q0 with a zeroed q1
    assert writer.first_torn([live, (0, 5, 7), (0, 0, 7)], [live, (0, 0, 7)]) == (1, 0, 7)
    # a live update through an intermediate present value: torn even for a fetch in one
    # transaction (the new DID with the old q0), though every mix is a snapshot
    assert writer.first_torn([(1, 4, 9), (1, 5, 9), (3, 5, 9)], [(1, 4, 9), (3, 5, 9)]) == (1, 5, 9)


def test_readme_examples() -> None:
    """The two calls the README's hardware section shows, with the values it quotes."""
    live = (0x49, 0x800004, 0x9000)
    zeroing = [live, (0, 0x800004, 0x9000), (0, 0, 0x9000), (0, 0, 0)]
    assert writer.first_torn(zeroing, [live, (0, 0, 0)]) == (0x49, 0, 0)
    setup = [(0, 0, 0), (0, 0x800005, 0xa000), (0x49, 0x800005, 0xa000)]
    assert writer.first_torn(setup, [(0, 0, 0), (0x49, 0x800005, 0xa000)]) is None
