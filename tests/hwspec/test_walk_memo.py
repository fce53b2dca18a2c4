"""The walk memo (hwspec/memory.py): a walk is reused exactly while the table words are unchanged."""

from __future__ import annotations

from hwspec.memory import Memory, Pte, WalkMemo
from hwspec.outcome import Access
from model.core import Kernel
from model.objects import Device


def test_words_gen_names_the_contents() -> None:
    m = Memory()
    g0 = m.words_gen
    m.write64(0x1000, 0)  # an equal value (absent is 0): nothing changes
    assert m.words_gen is g0
    m.write64(0x1000, 5)
    g1 = m.words_gen
    assert g1 is not g0
    c = m.copy()
    assert c.words_gen is g1  # a copy holds the same words
    c.write64(0x1000, 5)
    assert c.words_gen is g1
    c.write64(0x1008, 7)
    assert c.words_gen is not g1 and m.words_gen is g1  # the original is untouched
    root = m.new_pagetable()
    gen = m.words_gen
    m.map(root, 0, Pte(9))  # page tables are not part of it: leaf walks are never memoized
    assert m.words_gen is gen
    m.free_page(0x1000)
    assert m.words_gen is not gen


def test_walk_memo_reuses_only_for_the_same_words() -> None:
    memo: WalkMemo[str, int] = WalkMemo(limit=2)
    m = Memory()
    calls: list[str] = []

    def walk(tag: str) -> int:
        calls.append(tag)
        return len(calls)

    assert memo.get(m, "a", lambda: walk("a")) == 1
    assert memo.get(m, "a", lambda: walk("a")) == 1  # reused
    m.write64(0x2000, 1)
    assert memo.get(m, "a", lambda: walk("a")) == 2  # the words changed: walked again
    assert memo.get(m, "b", lambda: walk("b")) == 3  # at the limit (2) it started again empty
    assert memo.get(m, "c", lambda: walk("c")) == 4
    assert memo.get(m, "b", lambda: walk("b")) == 3  # still there
    assert memo.get(m, "a", lambda: walk("a")) == 5  # dropped with the rest at the limit
    assert calls == ["a", "a", "b", "c", "a"]


def test_a_fill_after_a_table_change_caches_the_new_entry() -> None:
    """The memo must not hand a fill the walk of the tables before an attach."""
    for hw in ("vtd", "smmuv3"):
        k = Kernel(hw, [Device("dev0", 0x08, "g0", max_pasids=4, ats=True)])
        d = k.iommu_paging_domain_alloc("dev0")
        assert isinstance(d, int)
        pasid = k.iommu_alloc_global_pasid("dev0")
        k.hw_fill("dev0", pasid, 0, Access.READ)  # walks a non-present PASID: caches no leaf
        assert k.iommu_attach_device_pasid(d, "dev0", pasid) == 0
        assert k.iommu_map(d, 0, 0x8000_0000) == 0
        k.hw_fill("dev0", pasid, 0, Access.READ)
        got = {o.pa for o in k.dma("dev0", pasid, 0, Access.READ)}
        assert got == {0x8000_0000}, (hw, got)
        k.iommu_detach_device_pasid(d, "dev0", pasid)
        k.hw_fill("dev0", pasid, 0, Access.READ)
        assert all(o.pa is None for o in k.dma("dev0", pasid, 0, Access.READ)), hw
