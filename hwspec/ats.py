"""The PCIe ATS Invalidate Request, as both IOMMUs send it: which ATC entries of the
endpoint one request removes. Declared once; VT-d's device-TLB descriptors
(hwspec/vtd/qi.py QiDiotlb, QiDeiotlb) and SMMUv3's CMD_ATC_INV
(hwspec/smmuv3/commands.py) cover entries through `removes`.

The reading (issue 17 item 6), with where each part comes from:

* **A request without a PASID TLP prefix** removes every ATC entry of the function in
  its range, those obtained with a PASID included (PCIe ATS, Invalidate Request, sec
  10.3.1, with the PASID prefix rules of sec 6.20: section numbers from memory, the
  PCIe text was not at hand; VT-d 6.5.2.5: the device-TLB invalidate descriptor
  carries no PASID; the SMMUv3 driver's own statement in arm_smmu_atc_inv_to_cmd: "all ATC
  entries within the address range are invalidated, including those that were
  requested with a PASID! There is no way to invalidate only entries without PASID").
  The drivers depend on it: SMMUv3 invalidates S1DSS=SSID0 traffic with SSV=0 and
  accepts the collateral loss, and both drivers' whole-device flushes are sent
  without PASID.
* **A request with a PASID prefix** removes the entries of that PASID in its range
  only; entries obtained without a PASID stay (VT-d 6.5.2.6, PASID-based device-TLB
  invalidate; SMMUv3 CMD_ATC_INV with SSV=1).
* **Global Invalidate** (the G bit with a PASID prefix) lets the function also drop
  the global entries of every other PASID. The model's Translation Completions never
  set the Global bit, so there are no global entries to drop; where the function may
  keep or drop, the model keeps (the reading that leaves more entries, so a driver
  that relies on the wider effect is caught). Neither driver sets G today.
"""

from __future__ import annotations


def removes(req_pasid: int | None, req_global: bool, entry_pasid: int | None) -> bool:
    """Whether an ATS Invalidate Request (with PASID `req_pasid`, or none) removes an
    entry obtained with PASID `entry_pasid` (or none), once the function and the
    address range match. `req_global`: the Global Invalidate bit (kept: see above)."""
    if req_pasid is None:
        return True  # no PASID prefix: every entry in range, with or without PASID
    return entry_pasid == req_pasid  # the prefix's PASID only; G drops nothing more here
