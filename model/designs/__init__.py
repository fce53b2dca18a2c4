"""The built-in designs: the seeds' alternatives as checkable values (see `catalog`)."""

from model.designs.catalog import DESIGNS, UnknownDesign, get_design

__all__ = ["DESIGNS", "UnknownDesign", "get_design"]
