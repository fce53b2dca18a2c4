"""Shared fixtures of the proof tests: each proof runs once per session.

Tests marked `deep` (large Hypothesis budgets) run only when selected with `-m deep`.
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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "deep" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="deep: run with -m deep")
    for item in items:
        if "deep" in item.keywords and "tests/proofs" in str(item.fspath):
            item.add_marker(skip)
