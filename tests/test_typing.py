"""The packages type-check under `mypy --strict` (configured in pyproject.toml).

Types are part of the model's documentation (which call returns an errno, which a
pointer, which an id may be None); a regression here is a real one."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_strict_is_clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    api = pytest.importorskip("mypy.api")
    monkeypatch.chdir(ROOT)  # the config names the packages relative to the checkout
    out, err, status = api.run(["--config-file", str(ROOT / "pyproject.toml"),
                                "--cache-dir", str(tmp_path / "cache")])
    assert status == 0, out + err
    assert out.startswith("Success: no issues found")
