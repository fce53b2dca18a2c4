"""The hardware, knowing nothing of Linux: bit layouts, tables, caches, invalidation, translation.

Modules: `layout` (bit layouts declared once), `memory` (table words and page
tables), `outcome` (what a DMA may produce), `vtd` (Intel VT-d scalable mode),
`smmuv3` (Arm SMMUv3 and its hitless entry writer).
"""
