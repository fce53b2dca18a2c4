"""Every proof gives the result it is written to give, and the catalog is well formed."""

from __future__ import annotations

from typing import Callable

import pytest

from proofs.base import ProofResult
from proofs.catalog import BY_NAME, PROOFS, UnknownProof, get


@pytest.mark.parametrize("name", [p.name for p in PROOFS])
def test_result_as_expected(name: str, result: Callable[[str], ProofResult]) -> None:
    r = result(name)
    assert r.status == BY_NAME[name].expect, "\n".join(r.details)
    assert r.details, "every result explains itself"


def test_catalog_shape() -> None:
    for p in PROOFS:
        assert p.statement and p.assumptions and p.expect in ("proved", "counterexample")
    assert {p.expect for p in PROOFS} == {"proved", "counterexample"}
    assert get(["vtd-teardown-clean"])[0].name == "vtd-teardown-clean"
    with pytest.raises(UnknownProof):
        get(["no-such-proof"])
