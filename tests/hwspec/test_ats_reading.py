"""The PCIe ATS invalidation reading (hwspec/ats.py), as each IOMMU's commands apply it."""

from __future__ import annotations

from hwspec import ats
from hwspec.smmuv3.caches import AtcEntry
from hwspec.smmuv3.commands import ATC_INV
from hwspec.vtd import qi_desc_dev_iotlb, qi_desc_dev_iotlb_pasid
from hwspec.vtd.caches import DevTlbEntry


def test_the_rule() -> None:
    assert ats.removes(None, False, None) and ats.removes(None, False, 3)  # no prefix: all
    assert ats.removes(3, False, 3) and not ats.removes(3, False, 4)
    assert not ats.removes(3, False, None)  # a PASID request keeps the no-PASID entries
    assert not ats.removes(3, True, 4)  # Global Invalidate: no global entries in the model


def test_vtd_device_tlb_descriptors_follow_it() -> None:
    no_pasid, pasid1 = DevTlbEntry(8, None, 0, 0x80000), DevTlbEntry(8, 1, 0, 0x80000)
    whole = qi_desc_dev_iotlb(8, 8, 0, 0, 52)
    assert whole.covers(no_pasid) and whole.covers(pasid1)
    by_pasid = qi_desc_dev_iotlb_pasid(8, 8, pasid=1, qdep=0, addr=0, size_order=52)
    assert by_pasid.covers(pasid1) and not by_pasid.covers(no_pasid)
    assert not by_pasid.covers(DevTlbEntry(8, 2, 0, 0x80000))


def test_smmuv3_atc_inv_follows_it() -> None:
    no_ssid, ssid1, ssid2 = (AtcEntry(8, s, 0, 0x80000) for s in (None, 1, 2))
    assert all(ATC_INV(sid=8).covers(e) for e in (no_ssid, ssid1, ssid2))
    one = ATC_INV(sid=8, ssid=1, ssv=True)
    assert one.covers(ssid1) and not one.covers(ssid2) and not one.covers(no_ssid)
    assert not ATC_INV(sid=8, ssid=1, ssv=True, global_=True).covers(ssid2)
