"""A design file with a mistake iommucheck refuses (README "Errors: exit status 2").

`detach_passes_old` is a bool: the string "no" is truthy, so without the check this
design would silently be checked as if the old domain were passed. iommucheck exits 2
with one line naming the file, the field and what it expected.
"""

from dataclasses import replace

from model.design import UPSTREAM

DESIGN = replace(UPSTREAM, name="my-bad-detach-flag", kind="user", detach_passes_old="no")
