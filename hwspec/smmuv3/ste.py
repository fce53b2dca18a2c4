"""SMMUv3 Stream Table Entry (STE): 8 x 64-bit, every field of hw-tables.md B.1.

The STE is what the SMMU reads for a StreamID (the PCI RID). Its CFG field says
whether traffic aborts, bypasses, goes through stage 1 (the CD table at
S1ContextPtr, one CD per SubstreamID = PASID), stage 2 (S2TTB with a VMID), or
both (nested). The constructors below build exactly the words the driver's
`arm_smmu_make_*_ste` helpers build (B.1) and the KUnit fixture of C.4, as pure
functions returning 8-word tuples, so that the writer (writer.py) can be checked
against the kernel's own test expectations (C.5).

Address fields hold the RAW value of their bit range, as the hardware does:
`s1ctxptr` is q0[51:6] = address >> 6, `s2ttb` is q3[51:4] = address >> 4. Like
the driver, the constructors mask an address to the field (`& ..._MASK`).
"""

from __future__ import annotations

from enum import IntEnum

from ..layout import Layout, Words, fields

STE_QWORDS = 8
#: Bytes per STE in a linear stream table (STRTAB_STE_DWORDS * 8).
STE_SIZE = 8 * STE_QWORDS


class Cfg(IntEnum):
    """STRTAB_STE_0_CFG: bit 0 = stage 1 enabled, bit 1 = stage 2 enabled, bit 2 = not abort."""

    ABORT = 0
    BYPASS = 4
    S1_TRANS = 5
    S2_TRANS = 6
    NESTED = 7


class S1Fmt(IntEnum):
    """STRTAB_STE_0_S1FMT: layout of the CD table (the model walks LINEAR only)."""

    LINEAR = 0
    L2_4K = 1
    L2_64K = 2  # STRTAB_STE_0_S1FMT_64K_L2


class S1Dss(IntEnum):
    """STRTAB_STE_1_S1DSS: what traffic WITHOUT a SubstreamID does on a stage-1 STE."""

    TERMINATE = 0
    BYPASS = 1
    SSID0 = 2


class S1Cache(IntEnum):
    """STRTAB_STE_1_S1C_CACHE_*: cacheability of CD-table fetches (S1CIR / S1COR)."""

    NC = 0
    WBRA = 1
    WT = 2
    WB = 3


class Sh(IntEnum):
    """Shareability (ARM_SMMU_SH_*), used by S1CSH."""

    NSH = 0
    OSH = 2
    ISH = 3


class Eats(IntEnum):
    """STRTAB_STE_1_EATS: whether ATS translation requests are served."""

    ABT = 0
    TRANS = 1
    S1CHK = 2


class Strw(IntEnum):
    """STRTAB_STE_1_STRW: the StreamWorld (translation regime that tags TLB entries)."""

    NSEL1 = 0
    EL2 = 2


class Shcfg(IntEnum):
    """STRTAB_STE_1_SHCFG: shareability override for bypassed traffic."""

    NON_SHAREABLE = 0
    INCOMING = 1
    OUTER = 2
    INNER = 3


#: The STE, field by field (B.1; macros STRTAB_STE_* in arm-smmu-v3.h).
STE = Layout(
    "STE",
    STE_QWORDS,
    fields(
        ("v", 0, 0, 0),
        ("cfg", 0, 1, 3, Cfg),
        ("s1fmt", 0, 4, 5, S1Fmt),
        ("s1ctxptr", 0, 6, 51),
        ("s1cdmax", 0, 59, 63),
        ("s1dss", 1, 0, 1, S1Dss),
        ("s1cir", 1, 2, 3, S1Cache),
        ("s1cor", 1, 4, 5, S1Cache),
        ("s1csh", 1, 6, 7, Sh),
        ("mev", 1, 19, 19),
        ("s2fwb", 1, 25, 25),
        ("s1stalld", 1, 27, 27),
        ("eats", 1, 28, 29, Eats),
        ("strw", 1, 30, 31, Strw),
        ("shcfg", 1, 44, 45, Shcfg),
        ("s2vmid", 2, 0, 15),
        ("vtcr", 2, 32, 50),
        ("s2aa64", 2, 51, 51),
        ("s2endi", 2, 52, 52),
        ("s2ptw", 2, 54, 54),
        ("s2s", 2, 57, 57),
        ("s2r", 2, 58, 58),
        ("s2ttb", 3, 4, 51),
    ),
)

#: The 19-bit VTCR field of the STE (q2[50:32]) broken into its parts
#: (STRTAB_STE_2_VTCR_S2*, offsets inside the VTCR field).
VTCR = Layout(
    "VTCR",
    1,
    fields(
        ("s2t0sz", 0, 0, 5),
        ("s2sl0", 0, 6, 7),
        ("s2ir0", 0, 8, 9),
        ("s2or0", 0, 10, 11),
        ("s2sh0", 0, 12, 13),
        ("s2tg", 0, 14, 15),
        ("s2ps", 0, 16, 18),
    ),
)

_S1CTXPTR = STE["s1ctxptr"]
_S2TTB = STE["s2ttb"]


def s1ctxptr_of(addr: int) -> int:
    """Raw S1ContextPtr for a CD-table address: `addr & STRTAB_STE_0_S1CTXPTR_MASK` >> 6."""
    return (addr >> _S1CTXPTR.lo) & _S1CTXPTR.max


def s2ttb_of(addr: int) -> int:
    """Raw S2TTB for a stage-2 root: `vttbr & STRTAB_STE_3_S2TTB_MASK` >> 4."""
    return (addr >> _S2TTB.lo) & _S2TTB.max


def make_vtcr(tsz: int, sl: int, irgn: int, orgn: int, sh: int, tg: int, ps: int) -> int:
    """The VTCR field value the driver packs from io-pgtable's `arm_lpae_s2_cfg.vtcr` (B.1)."""
    return VTCR.encode(
        s2t0sz=tsz, s2sl0=sl, s2ir0=irgn, s2or0=orgn, s2sh0=sh, s2tg=tg, s2ps=ps
    )[0]


def make_abort_ste() -> Words:
    """`arm_smmu_make_abort_ste`: V | CFG_ABORT, every other bit zero."""
    return STE.encode(v=1, cfg=Cfg.ABORT)


def make_bypass_ste(attr_types_ovr: bool = True) -> Words:
    """`arm_smmu_make_bypass_ste`: V | CFG_BYPASS, plus SHCFG_INCOMING with FEAT_ATTR_TYPES_OVR."""
    ste = STE.encode(v=1, cfg=Cfg.BYPASS)
    if attr_types_ovr:
        ste = STE.set(ste, shcfg=Shcfg.INCOMING)
    return ste


def make_cdtable_ste(
    cdtab_addr: int,
    s1cdmax: int,
    s1dss: S1Dss,
    ats: bool,
    s1fmt: S1Fmt = S1Fmt.LINEAR,
    stall_feature: bool = False,
    stall_enabled: bool = False,
    e2h: bool = False,
    attr_types_ovr: bool = True,
) -> Words:
    """`arm_smmu_make_cdtable_ste`: a stage-1 STE pointing at a CD table (B.1).

    S1STALLD is set when the SMMU supports stalls (FEAT_STALLS) but this master
    has them disabled; SHCFG_INCOMING only for S1DSS=BYPASS with
    FEAT_ATTR_TYPES_OVR; STRW=EL2 with FEAT_E2H, otherwise NSEL1 with S2VMID 0
    written explicitly (VMID 0 is the tag of stage-1-only NS-EL1 traffic, B.4).
    """
    ste = STE.encode(
        v=1,
        cfg=Cfg.S1_TRANS,
        s1fmt=s1fmt,
        s1ctxptr=s1ctxptr_of(cdtab_addr),
        s1cdmax=s1cdmax,
        s1dss=s1dss,
        s1cir=S1Cache.WBRA,
        s1cor=S1Cache.WBRA,
        s1csh=Sh.ISH,
        s1stalld=int(stall_feature and not stall_enabled),
        eats=Eats.TRANS if ats else Eats.ABT,
    )
    if attr_types_ovr and s1dss == S1Dss.BYPASS:
        ste = STE.set(ste, shcfg=Shcfg.INCOMING)
    if e2h:
        ste = STE.set(ste, strw=Strw.EL2)
    else:
        ste = STE.set(ste, strw=Strw.NSEL1, s2vmid=0)
    return ste


def make_s2_ste(
    vmid: int,
    s2ttb_addr: int,
    vtcr: int,
    ats: bool,
    s2fwb: bool = False,
    stall: bool = False,
    attr_types_ovr: bool = True,
    big_endian: bool = False,
) -> Words:
    """`arm_smmu_make_s2_domain_ste`: a stage-2-only STE (B.1).

    S2FWB if io-pgtable uses the S2FWB quirk; SHCFG_INCOMING with
    FEAT_ATTR_TYPES_OVR; S2AA64, S2PTW and S2R always; S2S if the master has
    stalls enabled; S2ENDI on big-endian kernels.
    """
    return STE.encode(
        v=1,
        cfg=Cfg.S2_TRANS,
        eats=Eats.TRANS if ats else Eats.ABT,
        s2fwb=int(s2fwb),
        shcfg=Shcfg.INCOMING if attr_types_ovr else Shcfg.NON_SHAREABLE,
        s2vmid=vmid,
        vtcr=vtcr,
        s2aa64=1,
        s2endi=int(big_endian),
        s2ptw=1,
        s2s=int(stall),
        s2r=1,
        s2ttb=s2ttb_of(s2ttb_addr),
    )


def make_nested_ste(
    cdtab_addr: int,
    s1cdmax: int,
    s1dss: S1Dss,
    ats: bool,
    vmid: int,
    s2ttb_addr: int,
    vtcr: int,
    s1fmt: S1Fmt = S1Fmt.LINEAR,
    stall_feature: bool = False,
    stall_enabled: bool = False,
    attr_types_ovr: bool = True,
) -> Words:
    """A nested (S1+S2) STE built as the KUnit fixture builds it (C.4, flag NESTED).

    Start from the cdtable STE, set CFG = NESTED and MEV, and take q2..q7 from
    the S2 STE (VMID, VTCR, S2TTB, ...). The driver's
    `arm_smmu_make_nested_cd_table_ste` ORs a guest vSTE into an S2 STE instead;
    on the fields the tests exercise the two agree (B.1).
    """
    s1 = make_cdtable_ste(
        cdtab_addr,
        s1cdmax,
        s1dss,
        ats,
        s1fmt=s1fmt,
        stall_feature=stall_feature,
        stall_enabled=stall_enabled,
        attr_types_ovr=attr_types_ovr,
    )
    s2 = make_s2_ste(vmid, s2ttb_addr, vtcr, ats, stall=stall_enabled, attr_types_ovr=attr_types_ovr)
    nested = STE.set(s1, cfg=Cfg.NESTED, mev=1)
    return nested[:2] + s2[2:]
