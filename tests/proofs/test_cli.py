"""`iommucheck prove`: the table, the counterexample details and the exit status."""

from __future__ import annotations

from dataclasses import replace

import pytest

from checker.cli import main
from proofs import catalog


def test_prove_as_expected_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    main(["prove", "vtd-teardown-clean", "smmu-cd-s1-replace-hitless"])  # no SystemExit: 0
    out = capsys.readouterr().out
    assert "vtd-teardown-clean" in out and "smmu-cd-s1-replace-hitless" in out
    assert "counterexample" in out and "CD [q0=" in out  # the decoded entries
    assert "UNEXPECTED" not in out


def test_prove_unexpected_exits_1(monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    name = "smmu-cd-s1-replace-hitless"
    monkeypatch.setitem(catalog.BY_NAME, name, replace(catalog.BY_NAME[name], expect="proved"))
    with pytest.raises(SystemExit) as e:
        main(["prove", name])
    assert e.value.code == 1
    assert "UNEXPECTED" in capsys.readouterr().out


def test_prove_unknown_name_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["prove", "no-such-proof"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "unknown proof 'no-such-proof'" in err and "Traceback" not in err


def test_prove_list(capsys: pytest.CaptureFixture[str]) -> None:
    main(["prove", "--list"])
    out = capsys.readouterr().out
    assert all(p.name in out for p in catalog.PROOFS)
