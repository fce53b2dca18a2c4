"""Shared fixtures of the proof tests: each proof runs once per session.

Tests marked `deep` (large Hypothesis budgets) are deselected by default (pyproject
addopts); run them with `-m deep`.
"""

from __future__ import annotations

from typing import Callable

import pytest

from proofs.base import ProofResult
from proofs.catalog import BY_NAME

_CACHE: dict[str, ProofResult] = {}


def proof_result(name: str) -> ProofResult:
    if name not in _CACHE:
        _CACHE[name] = BY_NAME[name].run()
    return _CACHE[name]


@pytest.fixture(scope="session")
def result() -> Callable[[str], ProofResult]:
    return proof_result
