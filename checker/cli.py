"""The `iommucheck` command line.

Exit status: 0 every invariant holds (or every proof is proved), 1 a violation
(or a counterexample), 2 bad input (one line on stderr, never a traceback),
3 the explorer stopped at a limit without a violation (INCOMPLETE).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable, NoReturn, Sequence

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from invariants.base import Invariant, UnknownInvariant
from invariants.catalog import CATALOG, get as get_invariants
from model.bounds import Bounds, BoundsError
from model.design import Design
from model.designs import DESIGNS, UnknownDesign, get_design

from checker.check import CheckResult, also_raises, check_hypothesis
from checker.report import render_trace, summary_rows
from checker.trace import TraceError
from checker.userdesign import DesignFileError, load_design_file
from checker.world import HW_KINDS

EXIT_OK, EXIT_VIOLATION, EXIT_BAD_INPUT, EXIT_INCOMPLETE = 0, 1, 2, 3
#: states the explorer's exception-only second run may visit when --max-states is not given
EXCEPTION_SEARCH_STATES = 5_000

# Piped output (CI logs, files) gets a wide fixed width so tables do not fold names.
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class BadInput(Exception):
    """One line for the user, exit status 2."""


def fail(msg: str) -> NoReturn:
    raise BadInput(msg)


# -- argument helpers -------------------------------------------------------------------
def parse_hw(hw: str) -> tuple[str, ...]:
    if hw == "all":
        return HW_KINDS
    if hw not in HW_KINDS:
        fail(f"unknown hardware {hw!r} (expected one of: {', '.join(HW_KINDS)}, all)")
    return (hw,)


def parse_bounds(text: str) -> Bounds:
    try:
        return Bounds.parse(text)
    except BoundsError as e:
        fail(f"impossible bounds: {e}")


def resolve_designs(names: Sequence[str], design_file: str | None) -> list[Design]:
    designs: list[Design] = []
    for n in names:
        try:
            designs.append(get_design(n))
        except UnknownDesign as e:
            fail(str(e))
    if design_file:
        try:
            designs.append(load_design_file(design_file))
        except DesignFileError as e:
            fail(str(e))
    return designs or [get_design("upstream")]


def resolve_invariants(ids: Sequence[str]) -> tuple[Invariant, ...]:
    try:
        return get_invariants(ids or None)
    except UnknownInvariant as e:
        fail(str(e.args[0]))


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(), console=err, disable=not enabled, transient=True,
    )


# -- commands ------------------------------------------------------------------------------
@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="iommucheck")
def main_group() -> None:
    """iommucheck: check Linux IOMMU API designs against bit-exact VT-d and SMMUv3 models."""


@main_group.command()
@click.option("--design", "design_names", multiple=True, metavar="NAME",
              help="built-in design (repeatable; default upstream). See `iommucheck designs`.")
@click.option("--design-file", metavar="PATH", help="a Python file defining DESIGN = Design(...)")
@click.option("--hw", default="all", show_default=True, metavar="vtd|smmuv3|all")
@click.option("--invariant", "invariant_ids", multiple=True, metavar="ID",
              help="check only these invariants (repeatable; default all)")
@click.option("--profile", type=click.Choice(["ci", "deep"]), default="ci", show_default=True)
@click.option("--max-examples", type=click.IntRange(min=1), help="Hypothesis examples (overrides the profile)")
@click.option("--seed", type=int, help="Hypothesis seed, for a reproducible run")
@click.option("--bounds", "bounds_text", default="", metavar="K=V,...",
              help="e.g. devices=2,processes=1,shared_group=1 (see README)")
@click.option("--engine", type=click.Choice(["hypothesis", "explore"]), default="hypothesis",
              show_default=True)
@click.option("--depth", type=click.IntRange(min=0), help="explorer: maximum depth")
@click.option("--max-states", type=click.IntRange(min=1), help="explorer: maximum distinct states")
@click.option("--no-symmetry", is_flag=True, help="explorer: no symmetry reduction")
@click.option("--saturate-caches", is_flag=True,
              help="explorer: every DMA after every step instead of a dma event per state "
                   "(same verdicts, far fewer states; traces shortest in calls)")
@click.option("--json", "json_path", metavar="PATH", help="write results (and traces) as JSON")
@click.option("--trace-dir", metavar="DIR",
              help="write each counterexample as DIR/<design>-<hw>.json and a pytest reproducer")
def check(design_names: tuple[str, ...], design_file: str | None, hw: str,
          invariant_ids: tuple[str, ...], profile: str, max_examples: int | None,
          seed: int | None, bounds_text: str, engine: str, depth: int | None,
          max_states: int | None, no_symmetry: bool, saturate_caches: bool,
          json_path: str | None, trace_dir: str | None) -> None:
    """Check designs: every invariant holds, or the shortest call sequence that breaks one.

    A Python exception inside the model, a driver or the design is reported as a
    violation of model-exception, with the calls that raise it."""
    if engine != "explore":
        used = [o for o, v in (("--depth", depth is not None), ("--max-states", max_states is not None),
                               ("--no-symmetry", no_symmetry), ("--saturate-caches", saturate_caches)) if v]
        if used:
            fail(f"{', '.join(used)} only apply to --engine explore")
    designs = resolve_designs(design_names, design_file)
    hws = parse_hw(hw)
    invariants = resolve_invariants(invariant_ids)
    bounds = parse_bounds(bounds_text)
    results: list[CheckResult] = []
    jobs = [(d, h) for d in designs for h in hws]
    with _progress(out.is_terminal) as progress:
        for d, h in jobs:
            if h not in d.hw:
                continue
            task = progress.add_task(f"{d.name} on {h}", total=None, info="")

            def run(invs: tuple[Invariant, ...], d: Design = d, h: str = h, task: Any = task,
                    limit: int | None = max_states) -> CheckResult:
                if engine == "explore":
                    from checker.explore import check_explore

                    return check_explore(d, h, bounds, invs, depth=depth, max_states=limit,
                                         symmetry=not no_symmetry, saturate=saturate_caches,
                                         on_progress=lambda s: progress.update(task, info=s))
                return check_hypothesis(
                    d, h, bounds, invs, profile=profile, max_examples=max_examples, seed=seed,
                    on_example=lambda st: progress.update(
                        task, info=f"{st.examples} examples, {st.steps} steps"),
                )

            # a violation found: does the model also raise? (a second run, same budget; an
            # explorer run without --max-states gets EXCEPTION_SEARCH_STATES: the first run
            # stopped at its violation, an exception-only search would exhaust the world)
            def rerun(invs: tuple[Invariant, ...], run: Callable[..., CheckResult] = run
                      ) -> CheckResult:
                return run(invs, limit=max_states if max_states is not None else EXCEPTION_SEARCH_STATES)

            r = also_raises(run(invariants), rerun)
            progress.remove_task(task)
            results.append(r)
    skipped = [f"{d.name} on {h}" for d, h in jobs if h not in d.hw]
    _print_results(results, invariants, skipped)
    if json_path:
        _write_json(json_path, results, bounds)
    if trace_dir:
        _write_traces(trace_dir, results)
    if any(r.trace is not None for r in results):
        sys.exit(EXIT_VIOLATION)
    if any(not r.complete for r in results):
        sys.exit(EXIT_INCOMPLETE)


def _print_results(results: list[CheckResult], invariants: tuple[Invariant, ...],
                   skipped: list[str]) -> None:
    table = Table(title=f"iommucheck: {len(invariants)} invariant(s)", show_lines=False)
    for col in ("design", "hw", "verdict", "explored", "time"):
        table.add_column(col)
    for row in summary_rows(results):
        table.add_row(*row)
    out.print(table)
    for s in skipped:
        out.print(f"not applicable: {s}")
    for r in results:
        for f in r.findings:
            assert f.trace is not None
            out.print()
            for line in render_trace(f.trace):
                out.print(line, markup=False)
        if r.trace is None and r.engine == "explore":
            out.print(f"{r.design} on {r.hw}: {r.extra.get('summary', '')}", markup=False)
    if any(r.trace is None and r.engine != "explore" for r in results):
        # Said every time: a short bug can hide from a few dozen sampled runs of ~30
        # interleaved calls (see README, "How much to trust a sampled run").
        out.print("Hypothesis samples: no violation in these runs is not a proof. "
                  "More samples: --profile deep; every state of a small world: --engine explore "
                  "--bounds devices=1,processes=1,paging_domains=1,iova_pages=1,phys_pages=1,max_pasids=2",
                  markup=False)


def _write_json(path: str, results: list[CheckResult], bounds: Bounds) -> None:
    data = {
        "format": "iommucheck-results/1",
        "bounds": {f: getattr(bounds, f) for f in bounds.__dataclass_fields__},
        "results": [
            {"design": r.design, "hw": r.hw, "engine": r.engine,
             "verdict": "holds" if r.trace is None else "violated",
             "invariant": r.violated, "examples": r.examples, "steps": r.steps,
             "seconds": round(r.seconds, 3), "complete": r.complete,
             "trace": None if r.trace is None else r.trace.to_json(), **r.extra,
             # every finding of the configuration: the violation above, then (if the model
             # also raised on a second run) the model exception
             "findings": [{"invariant": f.violated, "engine": f.engine, "examples": f.examples,
                           "steps": f.steps, "seconds": round(f.seconds, 3),
                           "trace": f.trace.to_json() if f.trace is not None else None}
                          for f in r.findings]}
            for r in results
        ],
    }
    try:
        Path(path).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    except OSError as e:
        fail(f"cannot write {path}: {e.strerror}")


def _write_traces(directory: str, results: list[CheckResult]) -> None:
    try:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        for r in results:
            for i, f in enumerate(r.findings):
                assert f.trace is not None
                # the first finding keeps the name it always had; a further one adds its invariant
                stem = f"{r.design}-{r.hw}" + (f"-{f.violated}" if i else "")
                (d / f"{stem}.json").write_text(json.dumps(f.trace.to_json(), indent=2) + "\n")
                (d / f"test_{stem.replace('-', '_')}.py").write_text(f.trace.pytest_reproducer())
                out.print(f"wrote {d / (stem + '.json')} and its pytest reproducer", markup=False)
    except OSError as e:
        fail(f"cannot write traces to {directory}: {e.strerror}")


@main_group.command()
@click.argument("trace_file", metavar="TRACE.json")
@click.option("--design-file", metavar="PATH",
              help="the design file of a user design (default: the file the trace names)")
def replay(trace_file: str, design_file: str | None) -> None:
    """Re-execute a saved trace: exit 1 if it still violates (or still raises), 0 if it no longer does."""
    from checker.replay import replay_file

    design = None
    if design_file:
        try:
            design = load_design_file(design_file)
        except DesignFileError as e:
            fail(str(e))
    try:
        result = replay_file(trace_file, design=design)
    except TraceError as e:
        fail(str(e))
    for line in render_trace(result.trace):
        out.print(line, markup=False)
    for s in result.skipped:
        out.print(f"skipped {s}", markup=False)
    if result.violation is not None:
        sys.exit(EXIT_VIOLATION)
    out.print("the trace no longer violates any invariant")


@main_group.command()
def designs() -> None:
    """The built-in designs, with their rationale and seeds."""
    table = Table(title="designs", show_lines=True)
    for col in ("name", "kind", "hw", "summary", "seeds", "expected (as we read the seeds)"):
        table.add_column(col, overflow="fold")
    for d in DESIGNS.values():
        exp = "; ".join(f"{h}: {', '.join(ids) or 'holds'}" for h, ids in d.expect_breaks) or "holds"
        table.add_row(d.name, d.kind, ",".join(d.hw), d.summary, "\n".join(d.seeds) or "-", exp)
    out.print(table)


@main_group.command()
def invariants() -> None:
    """The invariant catalog: statement, layer and seeds."""
    table = Table(title="invariants", show_lines=True)
    for col in ("id", "layer", "statement", "seeds"):
        table.add_column(col, overflow="fold")
    for i in CATALOG:
        table.add_row(i.id, i.layer.value, i.statement, "\n".join(i.seeds) or "-")
    out.print(table)


@main_group.command()
@click.argument("call", required=False)
def contracts(call: str | None) -> None:
    """The errno contract of CALL (default: every call), as in docs/contracts.md."""
    from invariants.contracts import CONTRACTS, render_contracts_text

    if call is not None and call not in CONTRACTS:
        fail(f"no contract for {call!r} (calls with one: {', '.join(CONTRACTS)})")
    out.print(render_contracts_text(call), markup=False, end="")


@main_group.command()
@click.option("--hw", default="vtd", show_default=True, metavar="vtd|smmuv3")
@click.option("--bounds", "bounds_text", default="", metavar="K=V,...")
def dump(hw: str, bounds_text: str) -> None:
    """Boot the upstream world and print its hardware tables and caches, decoded."""
    from checker.world import Config

    (h,) = parse_hw(hw) if hw != "all" else fail("dump takes one hardware kind")
    k = Config(get_design("upstream"), h, parse_bounds(bounds_text)).build()
    for line in k.driver.dump(k):
        out.print(line, markup=False)


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point: click's errors and ours become one line and exit status 2."""
    try:
        main_group.main(args=list(argv) if argv is not None else None, prog_name="iommucheck",
                        standalone_mode=False)
    except BadInput as e:
        err.print(f"iommucheck: error: {e}", markup=False)
        sys.exit(EXIT_BAD_INPUT)
    except click.exceptions.NoArgsIsHelpError as e:
        out.print(e.ctx.get_help() if e.ctx else str(e), markup=False)
        sys.exit(EXIT_OK)
    except click.UsageError as e:
        err.print(f"iommucheck: error: {e.format_message()}", markup=False)
        sys.exit(EXIT_BAD_INPUT)
    except click.exceptions.Abort:
        err.print("iommucheck: aborted")
        sys.exit(130)
    except click.ClickException as e:
        err.print(f"iommucheck: error: {e.format_message()}", markup=False)
        sys.exit(EXIT_BAD_INPUT)


def _register_optional() -> None:
    """Commands of later issues register themselves here when their modules exist."""
    for mod in ("checker.matrix", "checker.prove_cli"):
        try:
            m = __import__(mod, fromlist=["register"])
        except ModuleNotFoundError as e:
            if e.name != mod:
                raise
            continue
        m.register(main_group)


_register_optional()


if __name__ == "__main__":  # pragma: no cover
    main()


__all__: list[Any] = ["main", "main_group"]
