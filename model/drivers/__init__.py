"""IOMMU drivers: `vtd` (Intel VT-d scalable mode), `smmuv3` (Arm SMMUv3), `mock` (no hardware)."""
