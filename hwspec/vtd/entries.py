"""VT-d scalable-mode table entries: layouts, enums, constants and the address arithmetic.

Every layout is declared once here, at the bit positions of hw-tables.md A.2-A.5
(checked against drivers/iommu/intel/{iommu.h,pasid.h}). Fields hold raw values:
a pointer at bits 63:12 holds the address >> 12.

Addressing, as the hardware computes it (A.2, A.4):
  root entry        rtaddr + bus * 16                       (256 x 128-bit entries)
  SM context entry  ctp + (devfn % 128) * 32                 (LCTP for devfn < 128, else UCTP)
  PASID dir entry   pasiddirptr + (pasid >> 6) * 8           (2^(PDTS+7) entries)
  PASID entry       smptblptr + (pasid & 0x3f) * 64          (64 x 512-bit entries, one page)
"""

from __future__ import annotations

from enum import IntEnum

from ..layout import Layout, fields
from ..memory import PAGE_SHIFT

# -- constants (pasid.h, iommu.h, include/linux/iommu.h) --------------------
IOMMU_NO_PASID = 0
FLPT_DEFAULT_DID = 1  # DID of SVA and pass-through PASID entries (A.9)
IDA_START_DID = 2  # first DID the per-unit allocator hands out; 0 is reserved
PASID_PDE_SHIFT = 6
PASID_TBL_ENTRIES = 1 << PASID_PDE_SHIFT  # 64
PASID_PTE_MASK = 0x3F
PASID_PTE_PRESENT = 1
PASID_PTE_FPD = 2
PASID_MAX = 0x100000
MAX_NR_PASID_BITS = 20
MAX_AGAW_PFN_WIDTH = 52  # device-TLB "size order" meaning the whole address space

ROOT_ENTRY_NR = 256
ROOT_ENTRY_SIZE = 16
SM_CONTEXT_ENTRIES_PER_TABLE = 128  # a 256-bit SM context entry takes two legacy slots
CONTEXT_ENTRY_SIZE = 32
PASID_DIR_ENTRY_SIZE = 8
PASID_ENTRY_SIZE = 64


class Pgtt(IntEnum):
    """PASID Granular Translation Type, PASID entry q0[8:6] (PASID_ENTRY_PGTT_*)."""

    FL_ONLY = 1
    SL_ONLY = 2
    NESTED = 3
    PT = 4


# -- layouts ----------------------------------------------------------------
#: Scalable-mode root entry (A.2): lower half for devfn 0..127, upper for 128..255.
#: Names as in the VT-d spec's scalable-mode root entry: LP/LCTP, UP/UCTP.
ROOT_ENTRY = Layout(
    "root_entry",
    2,
    fields(
        ("lp", 0, 0, 0),
        ("lctp", 0, 12, 63),
        ("up", 1, 0, 0),
        ("uctp", 1, 12, 63),
    ),
)

#: Scalable-mode context entry (A.3), 256 bits; the kernel keeps q2/q3 zero. No DID here.
CONTEXT_ENTRY = Layout(
    "context_entry",
    4,
    fields(
        ("p", 0, 0, 0),
        ("fpd", 0, 1, 1),
        ("dte", 0, 2, 2),
        ("paside", 0, 3, 3),
        ("pre", 0, 4, 4),
        ("pdts", 0, 9, 11),
        ("pasiddirptr", 0, 12, 63),
        ("rid_pasid", 1, 0, 19),
    ),
)

#: Scalable-mode PASID directory entry (A.4): P and the PASID-table pointer (VT-d spec
#: name SMPTBLPTR); `get_pasid_table_from_pde` masks the low 12 bits off.
PASID_DIR_ENTRY = Layout(
    "pasid_dir_entry",
    1,
    fields(
        ("p", 0, 0, 0),
        ("smptblptr", 0, 12, 63),
    ),
)

#: Scalable-mode PASID table entry (A.5), 512 bits; q3..q7 are always zero.
PASID_ENTRY = Layout(
    "pasid_entry",
    8,
    fields(
        ("p", 0, 0, 0),
        ("fpd", 0, 1, 1),
        ("aw", 0, 2, 4),
        ("pgtt", 0, 6, 8, Pgtt),
        ("ssade", 0, 9, 9),
        ("slptptr", 0, 12, 63),
        ("did", 1, 0, 15),
        ("pwsnp", 1, 23, 23),
        ("pgsnp", 1, 24, 24),
        ("sre", 2, 0, 0),
        ("flpm", 2, 2, 3),
        ("wpe", 2, 4, 4),
        ("nxe", 2, 5, 5),
        ("eafe", 2, 7, 7),
        ("flptptr", 2, 12, 63),
    ),
)


# -- identifiers ---------------------------------------------------------------
def pci_devid(bus: int, devfn: int) -> int:
    """SID = PCI_DEVID(bus, devfn) = bus << 8 | devfn (A.1)."""
    assert 0 <= bus < 256 and 0 <= devfn < 256, (bus, devfn)
    return bus << 8 | devfn


def sid_bus(sid: int) -> int:
    return (sid >> 8) & 0xFF


def sid_devfn(sid: int) -> int:
    return sid & 0xFF


def bdf(sid: int) -> str:
    """bus:dev.fn as lspci prints it."""
    devfn = sid_devfn(sid)
    return f"{sid_bus(sid):02x}:{devfn >> 3:02x}.{devfn & 7}"


# -- address arithmetic (pure; the walk through memory is in unit.py) ----------
def root_entry_addr(rtaddr: int, bus: int) -> int:
    return rtaddr + bus * ROOT_ENTRY_SIZE


def context_half(devfn: int) -> tuple[str, str]:
    """(present field, pointer field) of the root entry used for this devfn in SM."""
    return ("up", "uctp") if devfn >= SM_CONTEXT_ENTRIES_PER_TABLE else ("lp", "lctp")


def context_entry_offset(devfn: int) -> int:
    """iommu_context_addr in SM: devfn - 0x80 for the upper table, doubled (256-bit entries)."""
    return (devfn % SM_CONTEXT_ENTRIES_PER_TABLE) * CONTEXT_ENTRY_SIZE


def pasid_dir_size(pdts: int) -> int:
    """Directory entries for a context PDTS value (get_pasid_dir_size: 1 << (PDTS + 7))."""
    return 1 << (pdts + 7)


def pasid_dir_entry_addr(dirptr: int, pasid: int) -> int:
    return dirptr + (pasid >> PASID_PDE_SHIFT) * PASID_DIR_ENTRY_SIZE


def pasid_entry_addr_in_table(table: int, pasid: int) -> int:
    return table + (pasid & PASID_PTE_MASK) * PASID_ENTRY_SIZE


def page_addr(raw_ptr: int) -> int:
    """A raw 63:12 pointer field as a physical address."""
    return raw_ptr << PAGE_SHIFT
