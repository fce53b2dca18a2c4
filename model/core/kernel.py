"""`Kernel`: one world built for one hardware kind, stacked from the core's modules.

`Kernel` is one world built for one hardware kind ("vtd", "smmuv3", or "mock",
the iommufd-selftest-like driver with no hardware). Every public method is a
kernel function of the same name and returns what the kernel returns: 0 or a
negative errno for int calls, the object id or an `ErrPtr` for pointer calls,
None for void calls. Check order and errnos follow mainline iommu.c and
iommu-sva.c as described in ../shared/reference/kernel-core-api.md (the
section is cited at each function). A kernel WARN, oops or use-after-free is
recorded in `Kernel.warnings` at a declared site (model/warn.py) with the state
change the kernel makes (usually none).

Misuse the kernel does not check behaves as the kernel does; misuse that would
oops the kernel (a NULL group dereference) is recorded as an "oops" event and
changes nothing, never a Python exception.

Where each call lives (as in the kernel's own files):

    base.py         the state (declared once), WARN sites, ids, memo
    pasid_alloc.py  the global / per-RID PASID allocators, mm_pasid_drop
    mm.py           mm lifetime, CPU page tables, mmu notifiers, ENQCMD
    iommu.py        iommu.c: probe, domain alloc/free, RID attach, DMA ownership
    pasid.py        iommu.c: PASID attach / detach / replace, aux domains
    sva.py          iommu-sva.c: bind / unbind, iommu_alloc_mm_data, module unload
    dma.py          dma-iommu map/unmap, iommu_map/unmap, the hardware's view of a DMA
    iopf.py         io-pgfault.c: page requests, the iopf queue, the SVA fault handler, drains
    reset.py        iommu.c: PCI reset staging (pci_dev_reset_iommu_prepare / _done)
    kernel.py       boot (probe every device) and the canonical key

A design may bring its own core: a `Kernel` subclass overriding any call, given
to the design as `kernel_factory` (see examples/sva_bind_no_reuse.py). A field
the subclass adds is declared in its `STATE` and survives copy().
"""

from __future__ import annotations

from typing import Any, Iterable

from model.core.base import BLOCKED_DOMAIN_ID, IDENTITY_DOMAIN_ID, Renaming
from model.core.reset import PciReset
from model.design import UPSTREAM, Design
from model.drivers import make_driver
from model.drivers.base import Driver
from model.objects import Device, Domain, DomainType, Group, Handle, IopfGroup, Mm, Notifier


# -- the canonical form of each core field (explorer symmetry reduction) -----------------
def _table(k: "Kernel", ren: Renaming, r: int) -> tuple[tuple[int, int, int, bool], ...]:
    """A page table's leaves, renamed: (iova frame, frame, prot, False) per 4 KiB leaf and
    (region, first frame, prot, True) per 2 MiB block (bound superpages)."""
    t = k.mem.pagetables.get(r)
    pfn = ren.pfn
    leaves = [(i, pfn(p.pfn), p.prot, False) for i, p in sorted(t.items())] if t else []
    if k.mem.blocks:
        leaves += [(rg, pfn(b.pfn), b.prot, True)
                   for (root, rg), b in sorted(k.mem.blocks.items()) if root == r]
    return tuple(leaves)


def _canon_groups(k: "Kernel", groups: dict[str, Group], ren: Renaming) -> Any:
    dom, handle = ren.dom, ren.handle
    out = []
    for name, g in sorted(groups.items()):
        out.append((
            name, g.devices,
            None if g.default_domain is None else dom(g.default_domain),
            None if g.domain is None else dom(g.domain),
            None if g.blocking_domain is None else dom(g.blocking_domain),
            g.owner, g.owner_cnt,
            tuple([(p, dom(e.domain), None if e.handle is None else handle(e.handle))
                   for p, e in g.pasid_array]),
        ))
    return tuple(out)


def _canon_domains(k: "Kernel", domains: dict[int, Domain], ren: Renaming) -> Any:
    dom, root, mm = ren.dom, ren.root, ren.mm
    out = []
    for d in ren.order("dom", domains, k._dom_signature):
        x = domains[d]
        pt = None if x.pgtable is None else (root(x.pgtable), _table(k, ren, x.pgtable))
        out.append((dom(d), x.type, x.owner, pt, None if x.mm is None else mm(x.mm),
                    x.users, x.has_attach_dev, x.has_set_dev_pasid, x.static, x.nest_parent,
                    None if x.parent is None else dom(x.parent), x.pgsize_bitmap))
    return tuple(out)


def _canon_handles(k: "Kernel", handles: dict[int, Handle], ren: Renaming) -> Any:
    out = []
    for i in ren.order("handle", handles, k._handle_signature):
        h = handles[i]
        out.append((ren.handle(i), h.kind, None if h.domain is None else ren.dom(h.domain), h.dev,
                    h.users, h.pasid))
    return tuple(out)


def _canon_mms(k: "Kernel", mms: dict[int, Mm], ren: Renaming) -> Any:
    out = []
    for i in ren.order("mm", mms, k._mm_signature):
        m = mms[i]
        out.append((ren.mm(i), ren.root(m.pgd), _table(k, ren, m.pgd), m.users, m.count, m.pasid,
                    tuple([ren.dom(x) for x in m.sva_domains]), m.msr_pasid))
    return tuple(out)


def _canon_notifiers(k: "Kernel", notifiers: dict[int, Notifier], ren: Renaming) -> Any:
    # Notifiers keep their id order (their callbacks run in that order), stored by rank.
    return tuple([(ren.mm(n.mm), ren.dom(n.domain), n.state, n.released)
                  for n in sorted(notifiers.values(), key=lambda n: n.id)])


def _canon_mm_rid_pasid(k: "Kernel", v: dict[tuple[str, int], int], ren: Renaming) -> Any:
    return tuple(sorted([((dev, ren.mm(m)), p) for (dev, m), p in v.items()]))


def _canon_aux_pasids(k: "Kernel", v: dict[int, int], ren: Renaming) -> Any:
    return tuple(sorted([(ren.dom(d), p) for d, p in v.items()]))


def _canon_iopf_groups(k: "Kernel", v: tuple[IopfGroup, ...], ren: Renaming) -> Any:
    return tuple([(g.req, ren.handle(g.handle)) for g in v])


_CANON = {
    "groups": _canon_groups, "domains": _canon_domains, "handles": _canon_handles,
    "mms": _canon_mms, "notifiers": _canon_notifiers, "mm_rid_pasid": _canon_mm_rid_pasid,
    "aux_pasids": _canon_aux_pasids, "iopf_groups": _canon_iopf_groups,
}


_MEM_DRV = frozenset({"mem", "drv"})  # canonicalised by Kernel.canonical_key itself


class Kernel(PciReset):
    """A world: devices, groups, domains, handles, processes, hardware, and a driver."""

    @classmethod
    def canon_default(cls, f: Any) -> Any:
        return f.canon if f.canon is not None else _CANON.get(f.name)

    def __init__(
        self,
        hw: str,
        devices: Iterable[Device],
        design: Design = UPSTREAM,
        driver: Driver | None = None,
    ) -> None:
        self._init_state(hw, design, driver if driver is not None else make_driver(hw))
        self.drv = self.driver.new_state(self)
        # The driver's static domains exist from boot (ops->blocked_domain, ->identity_domain).
        self.domains[BLOCKED_DOMAIN_ID] = Domain(
            BLOCKED_DOMAIN_ID, DomainType.BLOCKED, self.driver.name,
            has_set_dev_pasid=self.driver.blocked_has_set_dev_pasid, static=True,
        )
        self.domains[IDENTITY_DOMAIN_ID] = Domain(
            IDENTITY_DOMAIN_ID, DomainType.IDENTITY, self.driver.name, static=True
        )
        for dev in devices:
            if dev.name in self.devices:
                raise ValueError(f"device {dev.name!r} declared twice")
            self.devices[dev.name] = dev
        for dev in list(self.devices.values()):
            if dev.group is not None:
                self._probe(dev)

    # ---------------------------------------------- canonical form (explorer)
    def canonical_key(self, ren: Renaming,
                      pointer_words: dict[int, tuple[int, int, int]] | None = None) -> tuple[Any, ...]:
        """`key()` with every name replaced by its label from `ren` (symmetry reduction).

        Domain, handle and mm ids, page-table roots and physical data pages are
        names: nothing the kernel or the hardware does depends on their values, only
        on which objects they designate, so a state and its image under a renaming
        behave alike and the explorer keeps one of them. `ren` labels a name when the
        traversal first meets it, and the traversal order comes from content (group
        names, PASIDs, positions in tuples), never from the ids' values, so renamed
        states meet. The traversal follows the declaration order of `STATE`; each
        field that holds names has a canon function (`_CANON` here, `canon` in a
        subclass's StateField); others appear by their exact key. Left out besides
        what key() leaves out: next_id and the page allocator's set (a fresh id or
        page is fresh whatever its value) and page tables nothing refers to any more.

        `pointer_words`: the memory words that can hold a root
        (`drv.root_pointer_words`), if the caller already has them.
        tests/explore checks that key() and this tell the same states apart.
        """
        parts = list(self.canonical_parts(ren, _MEM_DRV))
        if pointer_words is None:
            pointer_words = self.drv.root_pointer_words(self.mem)  # type: ignore[attr-defined]
        words = dict(self.mem.words)
        for addr in [a for a in words if a in pointer_words]:
            words[addr] = ren.root_field(words[addr], *pointer_words[addr])
        parts.append(frozenset(words.items()))
        drv = self.drv.canonical_key(ren)  # type: ignore[attr-defined]
        # Roots only hardware still points at (a freed domain's table behind a stale entry).
        owned = {x.pgtable for x in self.domains.values() if x.pgtable is not None}
        owned |= {m.pgd for m in self.mms.values()}
        orphans = tuple([(ren.root(r), _table(self, ren, r)) for r in ren.roots() if r not in owned])
        # Leaf table pages (bound walk_caches) keep their addresses. They come from a pool
        # of their own that holds exactly the live leaf tables between calls
        # (hwspec/memory.py), so two states with one key allocate the next leaf table at
        # the same address: their successors have one key too.
        leaves = frozenset([(ren.root(r), rg, t) for (r, rg), t in self.mem.leaf_tables.items()])
        return (tuple(parts), drv, orphans, leaves)

    def _dom_signature(self, d: int) -> tuple[Any, ...]:
        """What tells apart objects nothing else names yet (for a stable label order)."""
        x = self.domains[d]
        t = self.mem.pagetables.get(x.pgtable, {}) if x.pgtable is not None else {}
        blocks = tuple(sorted(rg for (r, rg) in self.mem.blocks if r == x.pgtable))
        return (x.type.value, x.owner, x.users, x.static, x.has_attach_dev,
                x.has_set_dev_pasid, x.mm is None, tuple(sorted(t)), x.nest_parent,
                x.parent is None, blocks, x.pgsize_bitmap)

    def _handle_signature(self, i: int) -> tuple[Any, ...]:
        h = self.handles[i]
        return (h.kind, h.dev or "", h.users, -1 if h.pasid is None else h.pasid)

    def _mm_signature(self, i: int) -> tuple[Any, ...]:
        m = self.mms[i]
        t = self.mem.pagetables.get(m.pgd, {})
        return (m.users, m.count, -1 if m.pasid is None else m.pasid,
                -1 if m.msr_pasid is None else m.msr_pasid, len(m.sva_domains), tuple(sorted(t)))
