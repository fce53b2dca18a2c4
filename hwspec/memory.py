"""Physical memory as the IOMMU sees it: 64-bit words for the configuration tables,
and small abstract page tables for the translations themselves.

Configuration tables (VT-d root/context/PASID tables, SMMUv3 stream and CD tables)
are real words at real addresses, because the seeds' arguments turn on which
64-bit store hardware may observe ("clear P first", the hitless STE writer).
Page tables are abstract (iova page -> physical page) and referenced from
entries by their root address: both an I/O page table of a paging domain and a
process's CPU page table (SVA) are just roots here. The CPU page table of an mm
is the same object the IOMMU walks, which is what SVA means.

Leaf table pages (`table_pages`, off by default; bound `walk_caches`): the last
level of a 4 KiB-granule table, one page of 512 PTEs that maps a 2 MiB region
(VT-d's and x86's PT, SMMUv3's level-3 table). With them on, the first map into a
region allocates its leaf table page, unmapping leaves one by one keeps it (neither
the kernel's page-table code nor the CPU's frees a table a leaf unmap empties), and
clearing the region's table pointer (`clear_table`: a 2 MiB unmap, a munmap that
frees the page-table page, exit_mmap) hands the page back to the caller to free
after its flush (`free_leaf_table`). Leaf table pages come from a pool of their own
(from TABLE_POOL_BASE, lowest free first), so a freed one is reused by the next leaf
table, another domain's or process's included, and where the next one lands depends
on the live leaf tables alone (which the explorer's key holds with their addresses). The levels above the leaf table are the root (the model's IOVA
space lies in one region per root), so a walk cache entry is "region -> leaf table
page", and `walk_table` reads a PTE through such a pointer the way hardware does:
through whatever the page holds now.

2 MiB leaves (`blocks`, bound superpages): a table may map a whole 2 MiB region with
one leaf (VT-d's superpage PTE, SMMUv3's level-2 block), held as (root, region) ->
the Pte of the region's first page. A walk of any page in the region returns that
page's frame (base + offset) with `block=True`; a block and 4 KiB leaves never share
a region (the drivers' page tables refuse or replace, model/core/dma.py).

The containers are mutable for speed (a driver step does many stores), but every
value in them is immutable, so `copy()` is a shallow copy per dict and `key()` is
a hashable snapshot for the explorer.

`words_gen` names the words' contents: every change to a word replaces it, and a copy
shares it, so two memories with one `words_gen` hold the same configuration tables.
What a walk of the configuration tables reads is then a function of (`words_gen`, the
request), and `WalkMemo` keeps such results: the explorer's cache saturation repeats
the same walks in every successor of a state, and most successors store no table
word (a failed call, a flush, a map: page tables change more often than entries, so
they are not part of it and leaf walks are done each time).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntFlag
from typing import Callable, Generic, Hashable, Iterator, Sequence, TypeVar

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
WORD_MASK = (1 << 64) - 1
#: Table pages are handed out from here up. Low addresses stay unused so that a
#: zero pointer is never a valid table (as the drivers' "Present" checks assume).
FIRST_TABLE_PAGE = 0x1000
#: a leaf table page holds 512 PTEs: it maps 2 MiB, region iova_pfn >> TABLE_SPAN_SHIFT
TABLE_SPAN_SHIFT = 9
SZ_4K = PAGE_SIZE
SZ_2M = PAGE_SIZE << TABLE_SPAN_SHIFT
SZ_1G = SZ_2M << TABLE_SPAN_SHIFT
#: the page frames of one 2 MiB region (a leaf table's span, a block's size)
REGION_PAGES = 1 << TABLE_SPAN_SHIFT
#: leaf table pages are allocated from here up (above every configuration table and
#: root, below the data pages of the bounds at 0x80000000)
TABLE_POOL_BASE = 0x40000000
#: x86-64 (4-level) direct map and vmalloc bases: the kernel half the IOMMU may walk (SVA)
PAGE_OFFSET = 0xFFFF888000000000
VMALLOC_START = 0xFFFFC90000000000
#: the frame the kernel's one vmalloc mapping points at (below every data page of the bounds)
KERNEL_DATA_PFN = 0x7FFFF


def region_overlaps(region: int, pages: range) -> bool:
    """Whether a range of page frames meets the 2 MiB region one leaf table page maps
    (what an invalidation by range must cover for a walk-cache entry of that region)."""
    lo = region << TABLE_SPAN_SHIFT
    return pages.start < lo + (1 << TABLE_SPAN_SHIFT) and lo < pages.stop


class Prot(IntFlag):
    """Page permissions, as IOMMU_READ / IOMMU_WRITE in include/linux/iommu.h."""

    NONE = 0
    READ = 1
    WRITE = 2
    RW = 3


@dataclass(frozen=True, order=True)
class Pte:
    """A leaf translation: physical page frame and permissions. `block`: the page lies
    in a 2 MiB leaf (a VT-d superpage PTE with PS=1, an SMMUv3 level-2 block
    descriptor), which is what a TLB caches it as (bound superpages)."""

    pfn: int
    prot: Prot = Prot.RW
    block: bool = False


class Memory:
    """Sparse physical memory: words by address, page tables by root address."""

    __slots__ = ("words", "pagetables", "allocated", "words_gen", "table_pages", "leaf_tables",
                 "table_pool", "blocks")

    def __init__(self, table_pages: bool = False) -> None:
        self.words: dict[int, int] = {}
        self.pagetables: dict[int, dict[int, Pte]] = {}
        self.allocated: set[int] = set()
        #: leaf table pages are allocated and freed (module doc); off: abstract tables only
        self.table_pages = table_pages
        #: (root, region) -> the leaf table page mapping that 2 MiB region of the table
        self.leaf_tables: dict[tuple[int, int], int] = {}
        #: the allocated leaf table pages (module doc)
        self.table_pool: set[int] = set()
        #: (root, region) -> the 2 MiB leaf mapping that region (module doc; bound superpages)
        self.blocks: dict[tuple[int, int], Pte] = {}
        #: replaced by every change to a word, shared by copies (module doc): the
        #: identity of the words' contents, not part of the state
        self.words_gen = object()

    # -- table memory -------------------------------------------------------
    def alloc_page(self, pages: int = 1) -> int:
        """Lowest free run of `pages` zeroed 4 KiB pages (deterministic: same calls, same addresses)."""
        addr = FIRST_TABLE_PAGE
        while any(addr + i * PAGE_SIZE in self.allocated for i in range(pages)):
            addr += PAGE_SIZE
        for i in range(pages):
            self.allocated.add(addr + i * PAGE_SIZE)
        return addr

    def free_page(self, addr: int, pages: int = 1) -> None:
        for i in range(pages):
            page = addr + i * PAGE_SIZE
            self.allocated.discard(page)
            for a in [a for a in self.words if page <= a < page + PAGE_SIZE]:
                del self.words[a]
            if self.pagetables.pop(page, None) is not None and self.blocks:
                for owner in [o for o in self.blocks if o[0] == page]:
                    del self.blocks[owner]
        self.words_gen = object()

    def read64(self, addr: int) -> int:
        assert addr % 8 == 0, f"unaligned 64-bit read at {addr:#x}"
        return self.words.get(addr, 0)

    def write64(self, addr: int, value: int) -> None:
        """One 64-bit store (WRITE_ONCE): the unit of atomicity hardware observes."""
        assert addr % 8 == 0, f"unaligned 64-bit store at {addr:#x}"
        assert 0 <= value <= WORD_MASK, f"store of {value:#x} at {addr:#x} is not 64-bit"
        words = self.words
        if words.get(addr, 0) == value:
            return  # an equal value: the same contents (and words_gen) as before
        if value:
            words[addr] = value
        else:
            del words[addr]
        self.words_gen = object()

    def read(self, addr: int, nwords: int) -> tuple[int, ...]:
        get = self.words.get
        return tuple([get(addr + 8 * i, 0) for i in range(nwords)])

    def write(self, addr: int, words: Sequence[int]) -> None:
        """Word-by-word stores, lowest address first (memcpy-like, no ordering promise)."""
        for i, w in enumerate(words):
            self.write64(addr + 8 * i, w)

    # -- page tables --------------------------------------------------------
    def new_pagetable(self) -> int:
        """A fresh, empty page table; returns its root address."""
        root = self.alloc_page()
        self.pagetables[root] = {}
        return root

    def clear_pagetable(self, root: int) -> list[int]:
        """Every page of the table unmapped at once (exit_mmap); returns the leaf table
        pages it no longer points at, for the caller to free (free_pgtables)."""
        self.pagetables[root] = {}
        for owner in [o for o in self.blocks if o[0] == root]:
            del self.blocks[owner]
        gone = sorted((rg, t) for (r, rg), t in self.leaf_tables.items() if r == root)
        for rg, _ in gone:
            del self.leaf_tables[(root, rg)]
        return [t for _, t in gone]

    def map(self, root: int, iova_pfn: int, pte: Pte) -> None:
        if self.table_pages and (root, iova_pfn >> TABLE_SPAN_SHIFT) not in self.leaf_tables:
            self.leaf_tables[(root, iova_pfn >> TABLE_SPAN_SHIFT)] = self._alloc_leaf_table()
        self.pagetables[root] = {**self.pagetables[root], iova_pfn: pte}

    # -- 2 MiB leaves (module doc) -------------------------------------------------
    def map_block(self, root: int, region: int, pte: Pte) -> None:
        """Install a 2 MiB leaf for `region`: `pte` is its first page (a 2 MiB-aligned frame)."""
        assert not pte.pfn & (REGION_PAGES - 1), f"block at frame {pte.pfn:#x} is not 2 MiB aligned"
        assert not self.region_leaves(root, region), "a block over 4 KiB leaves"
        self.blocks[(root, region)] = Pte(pte.pfn, pte.prot, True)

    def unmap_block(self, root: int, region: int) -> Pte | None:
        """Clear the 2 MiB leaf of `region`; returns it (None: there is none)."""
        return self.blocks.pop((root, region), None)

    def block_at(self, root: int, iova_pfn: int) -> Pte | None:
        """The 2 MiB leaf a walk of `root` for iova_pfn ends at (None: none there)."""
        return self.blocks.get((root, iova_pfn >> TABLE_SPAN_SHIFT)) if self.blocks else None

    def region_leaves(self, root: int, region: int) -> list[int]:
        """The iova frames of the 4 KiB leaves of `root` in `region`."""
        lo = region << TABLE_SPAN_SHIFT
        return sorted(p for p in self.pagetables.get(root, {}) if lo <= p < lo + REGION_PAGES)

    # -- leaf table pages (module doc) ----------------------------------------
    def _alloc_leaf_table(self) -> int:
        addr = TABLE_POOL_BASE
        while addr in self.table_pool:
            addr += PAGE_SIZE
        self.table_pool.add(addr)
        return addr

    def free_leaf_table(self, table: int) -> None:
        """The page goes back to the pool (the next leaf table may be this page)."""
        self.table_pool.discard(table)

    def leaf_table(self, root: int, iova_pfn: int) -> int | None:
        """The leaf table page a walk of `root` for iova_pfn goes through (None: the
        region has none, or table pages are off)."""
        return self.leaf_tables.get((root, iova_pfn >> TABLE_SPAN_SHIFT))

    def table_owner(self, table: int) -> tuple[int, int] | None:
        """(root, region) whose leaf table page `table` is now; None: it is none's."""
        for owner, t in self.leaf_tables.items():
            if t == table:
                return owner
        return None

    def walk_table(self, table: int, iova_pfn: int) -> Pte | None:
        """The PTE for iova_pfn read through a pointer to `table` (a walk-cache hit): the
        PTE slot iova_pfn's low 9 bits select in whatever leaf table the page is now. A
        page that is no leaf table reads as no mapping (the walk-cache-live invariant
        reports the pointer itself)."""
        owner = self.table_owner(table)
        if owner is None:
            return None
        root, region = owner
        slot = iova_pfn & ((1 << TABLE_SPAN_SHIFT) - 1)
        return self.pagetables[root].get((region << TABLE_SPAN_SHIFT) | slot)

    def clear_table(self, root: int, region: int) -> int | None:
        """Clear the root's pointer to the leaf table of `region` and every PTE under it
        (a 2 MiB unmap over a table, free_pgtables); returns the page, still allocated:
        the caller frees it once the IOMMU can no longer walk it. None: no such table."""
        table = self.leaf_tables.pop((root, region), None)
        if table is None:
            return None
        lo = region << TABLE_SPAN_SHIFT
        self.pagetables[root] = {p: e for p, e in self.pagetables[root].items()
                                 if not lo <= p < lo + (1 << TABLE_SPAN_SHIFT)}
        return table

    def unmap(self, root: int, iova_pfn: int) -> Pte | None:
        table = self.pagetables[root]
        if iova_pfn not in table:
            return None
        new = dict(table)
        old = new.pop(iova_pfn)
        self.pagetables[root] = new
        return old

    def walk(self, root: int, iova_pfn: int) -> Pte | None:
        """A page-table walk: the leaf for iova_pfn, or None (no mapping / no such table)."""
        table = self.pagetables.get(root)
        if table is None:
            return None
        pte = table.get(iova_pfn)
        if pte is None and self.blocks:
            b = self.blocks.get((root, iova_pfn >> TABLE_SPAN_SHIFT))
            if b is not None:
                return Pte(b.pfn + (iova_pfn & (REGION_PAGES - 1)), b.prot, True)
        return pte

    # -- state --------------------------------------------------------------
    def copy(self) -> "Memory":
        m = Memory.__new__(Memory)
        m.words = dict(self.words)
        # Inner page-table dicts are replaced, never mutated (see map/unmap),
        # so sharing them between copies is safe and keeps copy() cheap.
        m.pagetables = dict(self.pagetables)
        m.allocated = set(self.allocated)
        m.words_gen = self.words_gen
        m.table_pages = self.table_pages
        m.leaf_tables = dict(self.leaf_tables)
        m.table_pool = set(self.table_pool)
        m.blocks = dict(self.blocks)
        return m

    def key(self) -> tuple[object, ...]:
        return (
            tuple(sorted(self.words.items())),
            tuple(sorted((r, tuple(sorted(t.items()))) for r, t in self.pagetables.items())),
            tuple(sorted(self.allocated)),
            tuple(sorted(self.leaf_tables.items())),
            tuple(sorted(self.table_pool)),
            tuple(sorted(self.blocks.items())),
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Memory) and self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.key())

    def dump_pagetables(self) -> Iterator[str]:
        for root in sorted(self.pagetables):
            maps = ", ".join(
                f"{iova << PAGE_SHIFT:#x}->{p.pfn << PAGE_SHIFT:#x}"
                + ("" if p.prot == Prot.RW else f"({p.prot.name})")
                for iova, p in sorted(self.pagetables[root].items())
            )
            maps += "".join(
                f"{', ' if maps else ''}{rg << (PAGE_SHIFT + TABLE_SPAN_SHIFT):#x}+2M->"
                f"{b.pfn << PAGE_SHIFT:#x} (2M block)" + ("" if b.prot == Prot.RW else f"({b.prot.name})")
                for (r, rg), b in sorted(self.blocks.items()) if r == root)
            tables = "".join(f" [leaf table {rg << (PAGE_SHIFT + TABLE_SPAN_SHIFT):#x}-: @{t:#x}]"
                             for (r, rg), t in sorted(self.leaf_tables.items()) if r == root)
            yield f"pagetable @{root:#x}{tables}: {maps or '(empty)'}"


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def nested_walk(mem: Memory, s1: int, s2: int, iova_pfn: int) -> tuple[Pte | None, Pte | None]:
    """The two leaves of a nested translation of one page (VT-d PGTT=NESTED, SMMUv3
    CFG=NESTED): the first-stage leaf, whose page is the IPA, and the second-stage leaf
    at that IPA (None where a stage has none). The first stage's own table pointers are
    taken as host addresses (their stage-2 translation is not modelled)."""
    first = mem.walk(s1, iova_pfn)
    return first, (None if first is None else mem.walk(s2, first.pfn))


def nested_leaf(first: Pte | None, second: Pte | None) -> Pte | None:
    """The combined leaf of `nested_walk`'s two: the host page, with what both stages permit."""
    if first is None or second is None:
        return None
    return Pte(second.pfn, first.prot & second.prot)


class WalkMemo(Generic[K, V]):
    """Results of walks that read nothing but table words, by (`Memory.words_gen`, request).

    Sound because a `words_gen` names one content of the words for as long as the key holds
    it (the object stays alive, so its identity is not reused). Bounded: at `limit`
    entries it starts again empty (a walk is cheap to redo; memory is not free).
    """

    def __init__(self, limit: int = 1 << 17) -> None:
        self.limit = limit
        self._d: dict[tuple[object, K], V] = {}

    def get(self, mem: Memory, request: K, walk: Callable[[], V]) -> V:
        key = (mem.words_gen, request)
        got = self._d.get(key)
        if got is None:
            if len(self._d) >= self.limit:
                self._d.clear()
            got = self._d[key] = walk()
        return got
