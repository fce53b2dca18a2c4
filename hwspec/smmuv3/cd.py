"""SMMUv3 Context Descriptor (CD): 8 x 64-bit, every field of hw-tables.md B.2.

A CD is the stage-1 context of one SubstreamID (PASID) of a stream: the ASID
that tags its TLB entries and TTB0, the root of the page table it walks. The CD
table is linear here (B.3: enough for the model), indexed by SSID, at the
address the STE's S1ContextPtr gives.

The constructors mirror `arm_smmu_make_s1_cd` (a paging domain's io-pgtable) and
`arm_smmu_make_sva_cd` (a process's page table, or with no mm the EPD0
"released" CD that keeps the CD valid while DMA may still run, B.9). `ttb0` holds
the RAW q1[51:4] value (address >> 4); constructors mask the address as the
driver does (`& CTXDESC_CD_1_TTB0_MASK`).
"""

from __future__ import annotations

from ..layout import Layout, Words, fields

CD_QWORDS = 8
#: Bytes per CD in a linear CD table (CTXDESC_CD_DWORDS * 8).
CD_SIZE = 8 * CD_QWORDS

#: The CD, field by field (B.2; macros CTXDESC_CD_* in arm-smmu-v3.h).
CD = Layout(
    "CD",
    CD_QWORDS,
    fields(
        ("t0sz", 0, 0, 5),
        ("tg0", 0, 6, 7),
        ("irgn0", 0, 8, 9),
        ("orgn0", 0, 10, 11),
        ("sh0", 0, 12, 13),
        ("epd0", 0, 14, 14),
        ("endi", 0, 15, 15),
        ("epd1", 0, 30, 30),
        ("v", 0, 31, 31),
        ("ips", 0, 32, 34),
        ("tbi0", 0, 38, 38),
        ("aa64", 0, 41, 41),
        ("hd", 0, 42, 42),
        ("ha", 0, 43, 43),
        ("s", 0, 44, 44),
        ("r", 0, 45, 45),
        ("a", 0, 46, 46),
        ("aset", 0, 47, 47),
        ("asid", 0, 48, 63),
        ("ttb0", 1, 4, 51),
        ("mair0", 3, 0, 63),
    ),
)

#: An all-zero CD: V=0, "no translation for this SSID" (`arm_smmu_clear_cd`).
CD_ZERO: Words = CD.zero()

#: ARM_LPAE_TCR_RGN_WBWA and ARM_LPAE_TCR_SH_IS, used by the SVA CD (B.2).
RGN_WBWA = 1
SH_IS = 3
#: A typical io-pgtable / CPU MAIR (attr0 Normal-NC 0x44, attr1 WBRWA 0xff,
#: attr2 Device-nGnRE 0x04). Only a default: the value matters to nobody here.
MAIR_DEFAULT = 0x0004FF44

_TTB0 = CD["ttb0"]


def ttb0_of(addr: int) -> int:
    """Raw TTB0 for a page-table root: `ttbr & CTXDESC_CD_1_TTB0_MASK` >> 4."""
    return (addr >> _TTB0.lo) & _TTB0.max


def make_s1_cd(
    asid: int,
    ttb0_addr: int,
    t0sz: int = 16,
    tg0: int = 0,
    irgn0: int = RGN_WBWA,
    orgn0: int = RGN_WBWA,
    sh0: int = SH_IS,
    ips: int = 5,
    mair: int = MAIR_DEFAULT,
    stall: bool = False,
    hd_ha: bool = False,
    big_endian: bool = False,
) -> Words:
    """`arm_smmu_make_s1_cd`: the CD of a stage-1 paging domain (B.2).

    TCR fields come from io-pgtable (`arm_lpae_s1_cfg.tcr`); EPD1, V, AA64, R,
    A and ASET are always set (ASET: the ASID is not shared with broadcast TLB
    maintenance, B.4); S if the master has stalls enabled; HA|HD with the
    ARM_HD quirk (dirty tracking); ENDI on big-endian kernels.
    """
    return CD.encode(
        t0sz=t0sz,
        tg0=tg0,
        irgn0=irgn0,
        orgn0=orgn0,
        sh0=sh0,
        endi=int(big_endian),
        epd1=1,
        v=1,
        ips=ips,
        aa64=1,
        hd=int(hd_ha),
        ha=int(hd_ha),
        s=int(stall),
        r=1,
        a=1,
        aset=1,
        asid=asid,
        ttb0=ttb0_of(ttb0_addr),
        mair0=mair,
    )


def make_sva_cd(
    asid: int,
    ttb0_addr: int | None,
    ips: int = 5,
    t0sz: int = 16,
    tg0: int = 0,
    mair: int = MAIR_DEFAULT,
    stall: bool = False,
    stall_force: bool = False,
    big_endian: bool = False,
) -> Words:
    """`arm_smmu_make_sva_cd`: the CD of an SVA domain; `ttb0_addr=None` is the released CD.

    Always EPD1, V, IPS (the CPU's PARange), AA64, R, A, ASET, the domain's own
    SMMU ASID, and S if stalls are enabled. With an mm: T0SZ = 64 - VA bits, TG0
    the CPU page size, WBWA walks, inner shareable, TTB0 = the mm's pgd. Without
    (mm exit, `arm_smmu_mm_release`): EPD0 = 1, TTB0 = 0 and, unless the SMMU
    forces stalls, S and R cleared; the CD stays valid so in-flight DMA faults
    quietly instead of raising C_BAD_CD (B.9). MAIR is the CPU's MAIR_EL1.
    """
    cd = CD.encode(
        endi=int(big_endian),
        epd1=1,
        v=1,
        ips=ips,
        aa64=1,
        s=int(stall),
        r=1,
        a=1,
        aset=1,
        asid=asid,
        mair0=mair,
    )
    if ttb0_addr is not None:
        return CD.set(
            cd,
            t0sz=t0sz,
            tg0=tg0,
            irgn0=RGN_WBWA,
            orgn0=RGN_WBWA,
            sh0=SH_IS,
            ttb0=ttb0_of(ttb0_addr),
        )
    cd = CD.set(cd, epd0=1)
    if not stall_force:
        cd = CD.set(cd, s=0, r=0)
    return cd
