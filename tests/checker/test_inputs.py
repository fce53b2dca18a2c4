"""The validation layer's declarations stay in step with the model (issue #14).

The knobs a design file may name are the ones the model reads; the bounds limits the
README quotes are model/bounds.py's LIMITS; every bound rule refuses in one line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from model.bounds import FLAGS, LIMITS, Bounds, BoundsError
from model.design import KNOBS
from model.designs import DESIGNS

ROOT = Path(__file__).resolve().parents[2]


def test_knobs_are_exactly_the_ones_the_model_reads() -> None:
    read: set[str] = set()
    for d in ("model", "invariants", "hwspec"):
        for f in (ROOT / d).rglob("*.py"):
            read |= set(re.findall(r'\.has\("([a-z0-9_.]+)"\)', f.read_text()))
    assert read == set(KNOBS), (sorted(read - set(KNOBS)), sorted(set(KNOBS) - read))
    used = {k for d in DESIGNS.values() for k in d.knobs}
    assert used <= set(KNOBS)


def test_readme_bounds_table_is_the_limits_table() -> None:
    text = (ROOT / "README.md").read_text()
    default = Bounds()
    for name in Bounds.__dataclass_fields__:
        if name in FLAGS:
            row = f"| `{name}` | {int(getattr(default, name))} | 0 or 1 |"
        else:
            lo, hi, why = LIMITS[name]
            row = f"| `{name}` | {getattr(default, name)} | {lo}..{hi:,} | {why} |"
        assert row in text, row


@pytest.mark.parametrize("text,message", [
    ("shared_group=2", "bound shared_group=2 is a flag: 0 or 1"),
    ("shared_group=-2", "bound shared_group=-2 is a flag: 0 or 1"),
    ("iova_pages=100000", "bound iova_pages=100000: 1..64"),
    ("max_pasids=100000000", "bound max_pasids=100000000: 2..1024"),
    ("devices=1,ats_devices=2", "bound ats_devices=2: at most devices=1"),
    ("devices=1,devices=2", "bound devices is given twice"),
    ("devices=5", "bounds give 5 groups but ndoms=6 has 4 DIDs"),
    ("devices=5,ndoms=7,asid_bits=2", "bounds give 5 groups but asid_bits=2 has 3 ASIDs"),
    ("range_pages=1", "bound range_pages=1 gives no ranged call"),
    ("iova_pages=3,phys_pages=2,range_pages=2", "bound range_pages=2 needs phys_pages=1"),
    ("iova_pages=2,phys_pages=1,range_pages=3", "bound range_pages=3 is larger than the IOVA space"),
])
def test_bounds_rules(text: str, message: str) -> None:
    with pytest.raises(BoundsError) as e:
        Bounds.parse(text)
    assert str(e.value).startswith(message)


def test_bounds_at_the_limits_are_accepted() -> None:
    """The limits are ranges a check can run, not off by one: the edge values parse."""
    assert Bounds.parse("devices=4").groups() == 4  # 4 DIDs (2..5) for 4 default domains
    assert Bounds.parse("max_pasids=64,iova_pages=64,phys_pages=64,processes=8,paging_domains=8")
    assert Bounds.parse("devices=16,ndoms=18,asid_bits=5").groups() == 16
    # the traces' form: every field present, booleans as JSON true/false
    assert Bounds.from_json({"devices": 1, "ats_devices": 2, "shared_group": True}).devices == 1
    with pytest.raises(BoundsError, match="bound devices=True must be an integer"):
        Bounds.from_json({"devices": True})


# -- replay: never a skipped step ------------------------------------------------------------
def _aux_trace() -> dict[str, object]:
    """Seed 002's unguarded aux design: attach_device succeeds while an aux user exists."""
    from checker.explore import check_explore
    from invariants.catalog import get
    from model.designs import get_design

    b = Bounds(devices=1, processes=0, paging_domains=1, iova_pages=1, phys_pages=1, max_pasids=2)
    r = check_explore(get_design("aux-2018-unguarded"), "vtd", b, get(None), saturate=True)
    assert r.trace is not None
    return r.trace.to_json()


def test_replay_names_the_step_that_changed_result() -> None:
    """The same calls on the guarded design (seed 002's -EPERM): no violation, and the
    verdict says which call now returns something else."""
    from checker.replay import replay_data
    from model.designs import get_design

    res = replay_data(_aux_trace(), design=get_design("aux-2018"))
    assert res.violation is None and res.stopped is None
    assert res.verdict() == (
        "the trace no longer violates any invariant; step 3 changed result: recorded "
        "`iommu_attach_device(d4, dev0) -> 0`, now `iommu_attach_device(d4, dev0) -> -EPERM`")


def test_replay_stops_after_a_changed_step_and_refuses_a_corrupted_one() -> None:
    """A step naming an object that does not exist is a corrupted trace (TraceError) when
    every earlier step returned what the trace records, and the end of the replay, said
    so, when an earlier step changed result (here: the recorded domain id is d5, the
    model's d4, so the trace's later d5 names nothing)."""
    from checker.replay import replay_data
    from checker.trace import TraceError

    t = _aux_trace()
    steps = t["steps"]
    assert isinstance(steps, list)
    steps[2]["args"] = [5, "dev0"]
    with pytest.raises(TraceError, match=r"trace step 3: iommu_attach_device\(5, 'dev0'\): "
                                         r"argument domain=5 is no paging domain at this point "
                                         r"\(there are: d4\)"):
        replay_data(t)
    steps[0]["text"] = "iommu_paging_domain_alloc(dev0) -> d5"
    res = replay_data(t)
    assert res.violation is None and res.changed is not None and res.changed.step == 1
    assert res.stopped is not None and res.stopped.startswith(
        "the replay stops at step 3, iommu_attach_device(5, 'dev0'): argument domain=5")


def test_readme_error_examples_print_what_the_readme_quotes(capsys: pytest.CaptureFixture[str]) -> None:
    """The `$ iommucheck ...` lines of the README's Errors section, run from the project
    root, print exactly the error line quoted under each, and exit 2."""
    import os
    import shlex

    from checker.cli import main

    section = (ROOT / "README.md").read_text().split("### Errors: exit status 2", 1)[1]
    block = section.split("```", 2)[1].strip("\n").splitlines()
    pairs = list(zip(block[::2], block[1::2]))
    assert len(pairs) == 3
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        for cmd, quoted in pairs:
            assert cmd.startswith("$ iommucheck ")
            with pytest.raises(SystemExit) as e:
                main(shlex.split(cmd)[2:])
            assert e.value.code == 2, cmd
            assert capsys.readouterr().err == quoted + "\n", cmd
    finally:
        os.chdir(cwd)


def test_a_driver_step_calling_sys_exit_is_a_model_exception(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """sys.exit(0) in a design's driver step: not the check's exit status 0 ("holds",
    with nothing printed) but a model-exception finding with the call that raised it."""
    from checker.cli import main

    f = tmp_path / "exits.py"
    f.write_text(
        "import sys\n"
        "from dataclasses import replace\n"
        "from model.design import UPSTREAM\n"
        "from model.drivers.vtd import VtdDriver\n"
        "class Exits(VtdDriver):\n"
        "    def set_dev_pasid(self, k, dom, dev, pasid, old):\n"
        "        sys.exit(0)\n"
        "DESIGN = replace(UPSTREAM, name='my-exits', kind='user', hw=('vtd',),\n"
        "                 driver_factory=lambda hw, b: Exits(ndoms=b.ndoms))\n")
    with pytest.raises(SystemExit) as e:
        main(["check", "--design-file", str(f), "--engine", "explore", "--bounds",
              "devices=1,processes=1,paging_domains=1,iova_pages=1,phys_pages=1,max_pasids=2"])
    out = capsys.readouterr().out
    assert e.value.code == 1
    assert "VIOLATES model-exception" in out and "raised SystemExit" in out
