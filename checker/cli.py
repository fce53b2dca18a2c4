"""The `iommucheck` command line.

Exit status: 0 every invariant holds (or every proof is proved), 1 a violation
(or a counterexample), 2 bad input (one line on stderr, never a traceback),
3 the explorer stopped at a limit without a violation (INCOMPLETE).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, NoReturn, Sequence

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
from checker.inputs import InputError
from checker.report import render_trace, summary_rows
from checker.trace import TraceError
from checker.userdesign import DesignFileError, load_design_file
from checker.world import HW_KINDS

EXIT_OK, EXIT_VIOLATION, EXIT_BAD_INPUT, EXIT_INCOMPLETE = 0, 1, 2, 3
#: states the explorer's exception-only second run may visit when --max-states is not given
EXCEPTION_SEARCH_STATES = 5_000
#: seconds between progress lines when stderr is not a terminal
PROGRESS_EVERY = 5.0

# Piped output (CI logs, files) gets a wide fixed width so tables do not fold names.
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class BadInput(Exception):
    """One line for the user, exit status 2."""


def fail(msg: str) -> NoReturn:
    raise BadInput(msg)


# -- argument helpers -------------------------------------------------------------------
if TYPE_CHECKING:  # click >= 8.2 makes ParamType generic in its value type
    _ParamType = click.ParamType[str]
else:
    _ParamType = click.ParamType


class PathArg(_ParamType):
    """A file or directory path: never empty (an empty --json '' would silently write
    nothing, an empty --design-file '' would check another design)."""

    name = "path"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        if not text.strip():
            self.fail("the path is empty", param, ctx)
        return text


PATH = PathArg()


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
        if n == "all":
            designs.extend(d for d in DESIGNS.values() if d not in designs)
            continue
        try:
            designs.append(get_design(n))
        except UnknownDesign as e:
            fail(str(e))
    if design_file is not None:
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
              help="built-in design (repeatable; default upstream; `all`: every built-in). "
                   "See `iommucheck designs`.")
@click.option("--design-file", type=PATH, metavar="PATH",
              help="a Python file defining DESIGN = Design(...)")
@click.option("--hw", default="all", show_default=True, metavar="vtd|smmuv3|all")
@click.option("--invariant", "invariant_ids", multiple=True, metavar="ID",
              help="check only these invariants (repeatable; default all)")
@click.option("--engine", type=click.Choice(["portfolio", "hypothesis", "explore"]),
              default="portfolio", show_default=True,
              help="portfolio: proofs of small worlds, a breadth-first search at the bounds, "
                   "then sampling, under one budget; or one engine alone")
@click.option("--budget", "budget_text", default="standard", show_default=True,
              metavar="quick|standard|deep|SECONDS",
              help="portfolio: a work budget per design and hardware (deterministic; standard "
                   "is about 5-15 s each on 2 cores) or seconds of wall clock")
@click.option("--world", "world_names", multiple=True, metavar="NAME",
              help="portfolio: prove these worlds instead of the ladder (see `iommucheck worlds`)")
@click.option("--profile", type=click.Choice(["ci", "deep"]), default="ci", show_default=True,
              help="Hypothesis settings (run length; examples for --engine hypothesis)")
@click.option("--max-examples", type=click.IntRange(min=1),
              help="sampled runs (overrides the profile, or the budget's for the portfolio)")
@click.option("--seed", "seed_text", default="0", show_default=True, metavar="N|random",
              help="Hypothesis seed: a fixed one reproduces a run; `random` draws one")
@click.option("--no-database", is_flag=True,
              help="do not read or write Hypothesis's example database (.hypothesis/)")
@click.option("--bounds", "bounds_text", default="", metavar="K=V,...",
              help="e.g. devices=2,processes=1,shared_group=1 (see README)")
@click.option("--depth", type=click.IntRange(min=0), help="explorer: maximum depth")
@click.option("--max-states", type=click.IntRange(min=1), help="explorer: maximum distinct states")
@click.option("--no-symmetry", is_flag=True, help="explorer: no symmetry reduction")
@click.option("--saturate-caches", is_flag=True,
              help="explorer: every DMA after every step instead of a dma event per state "
                   "(same verdicts, far fewer states; traces shortest in calls)")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="explorer: worker processes for one search, the visited set partitioned "
                   "among them (default: every core; the result does not depend on it)")
@click.option("--cluster", metavar="ADDRESS",
              help="explorer: search on the workers of this Dask scheduler (tcp://host:8786; "
                   "pip install 'iommucheck[distributed]')")
@click.option("--max-memory", "max_memory_text", metavar="SIZE",
              help="explorer: stop (INCOMPLETE, exit 3) before the search's resident memory "
                   "passes SIZE (e.g. 2G, 500M)")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="portfolio: worker processes for several designs / drivers (default: every "
                   "core; the results do not depend on it)")
@click.option("--json", "json_path", type=PATH, metavar="PATH", help="write results (and traces) as JSON")
@click.option("--trace-dir", type=PATH, metavar="DIR",
              help="write each counterexample as DIR/<design>-<hw>.json and a pytest reproducer")
def check(design_names: tuple[str, ...], design_file: str | None, hw: str,
          invariant_ids: tuple[str, ...], engine: str, budget_text: str,
          world_names: tuple[str, ...], profile: str, max_examples: int | None,
          seed_text: str, no_database: bool, bounds_text: str, depth: int | None,
          max_states: int | None, no_symmetry: bool, saturate_caches: bool,
          workers: int | None, cluster: str | None, max_memory_text: str | None,
          jobs: int | None,
          json_path: str | None, trace_dir: str | None) -> None:
    """Check designs: every invariant holds, or the shortest call sequence that breaks one.

    By default a portfolio per design and hardware: exhaustive proofs of small worlds
    (sva1, paging1, small1 and the design's own world), every call sequence up to the
    depth the budget allows at the requested bounds, then Hypothesis sampling; the
    verdict line says which of them holds. Every invariant the design breaks is
    reported, each with its counterexample.

    A Python exception inside the model, a driver or the design is reported as a
    violation of model-exception, with the calls that raise it."""
    from checker.matrix import default_jobs, parallel_map
    from checker.portfolio import BudgetError, parse_budget
    from checker.worlds import UnknownWorld, get_world

    if engine != "explore":
        used = [o for o, v in (("--depth", depth is not None), ("--max-states", max_states is not None),
                               ("--no-symmetry", no_symmetry), ("--saturate-caches", saturate_caches),
                               ("--workers", workers is not None), ("--cluster", cluster is not None),
                               ("--max-memory", max_memory_text is not None)) if v]
        if used:
            fail(f"{', '.join(used)} only apply to --engine explore")
    if engine != "portfolio":
        used = [o for o, v in (("--budget", budget_text != "standard"), ("--world", bool(world_names))) if v]
        if used:
            fail(f"{', '.join(used)} only apply to --engine portfolio")
    try:
        budget = parse_budget(budget_text)
        worlds = tuple(get_world(w) for w in world_names) or None
    except (BudgetError, UnknownWorld) as e:
        fail(str(e.args[0]))
    seed = parse_seed(seed_text)
    max_memory = parse_size(max_memory_text) if max_memory_text is not None else None
    if cluster is not None and workers is not None:
        fail("--cluster and --workers: the cluster's workers are the workers")
    client: Any = None
    if cluster is not None:
        from checker.distributed import connect

        client = connect(cluster)
    designs = resolve_designs(design_names, design_file)
    hws = parse_hw(hw)
    invariants = resolve_invariants(invariant_ids)
    bounds = parse_bounds(bounds_text)
    if max_examples is not None and engine == "portfolio":
        budget = replace(budget, examples=max_examples)
    results: list[CheckResult] = []
    pairs = [(d, h) for d in designs for h in hws]
    todo = [(d, h) for d, h in pairs if h in d.hw]
    if not todo:
        fail(f"nothing to check: {', '.join(d.name for d in designs)} "
             f"{'speaks' if len(designs) == 1 else 'speak'} about "
             f"{', '.join(sorted({h for d in designs for h in d.hw}))}, not {hw}")
    procs = min(jobs or default_jobs(), len(todo))
    if engine == "portfolio" and procs > 1:
        # each (design, hw) is independent and deterministic: run them side by side
        with Reporter(len(todo)) as report:
            report.begin(f"{len(todo)} checks in {procs} worker processes")

            def one(i: int) -> CheckResult:
                from checker.portfolio import run_portfolio

                d, h = todo[i]
                return run_portfolio(d, h, bounds, invariants, budget=budget, seed=seed,
                                     database=not no_database, worlds=worlds,
                                     profile=profile).as_check_result()

            def done(n: int) -> None:
                report.end()
                report.update(f"{n}/{len(todo)} checks done")

            results = parallel_map(one, len(todo), procs, on_done=done)
        todo = []
    with Reporter(len(todo)) as report:
        for d, h in todo:
            report.begin(f"{d.name} on {h}")

            def run(invs: tuple[Invariant, ...], d: Design = d, h: str = h,
                    limit: int | None = max_states) -> CheckResult:
                if engine == "explore":
                    from checker.explore import check_explore

                    return check_explore(d, h, bounds, invs, depth=depth, max_states=limit,
                                         symmetry=not no_symmetry, saturate=saturate_caches,
                                         on_progress=report.update,
                                         workers=workers or default_jobs(),
                                         max_memory=max_memory, cluster=client)
                return check_hypothesis(
                    d, h, bounds, invs, profile=profile, max_examples=max_examples, seed=seed,
                    database=not no_database,
                    on_example=lambda st: report.update(f"{st.examples} examples, {st.steps} steps"),
                )

            # a violation found: does the model also raise? (a second run, same budget; an
            # explorer run without --max-states gets EXCEPTION_SEARCH_STATES: the first run
            # stopped at its violation, an exception-only search would exhaust the world)
            def rerun(invs: tuple[Invariant, ...], run: Callable[..., CheckResult] = run
                      ) -> CheckResult:
                return run(invs, limit=max_states if max_states is not None else EXCEPTION_SEARCH_STATES)

            if engine == "portfolio":
                from checker.portfolio import run_portfolio

                # the portfolio looks for every invariant and for exceptions in one go
                r = run_portfolio(d, h, bounds, invariants, budget=budget, seed=seed,
                                  database=not no_database, worlds=worlds, profile=profile,
                                  on_progress=report.update).as_check_result()
            else:
                r = also_raises(run(invariants), rerun)
            report.end()
            results.append(r)
    skipped = [f"{d.name} on {h}" for d, h in pairs if h not in d.hw]
    _print_results(results, invariants, skipped)
    if json_path:
        _write_json(json_path, results, bounds, seed)
    if trace_dir:
        _write_traces(trace_dir, results)
    if any(r.trace is not None for r in results):
        sys.exit(EXIT_VIOLATION)
    if any(not r.complete for r in results):
        sys.exit(EXIT_INCOMPLETE)


#: --max-memory suffixes
SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str) -> int:
    """'2G' -> 2 GiB in bytes (K, M, G, T: powers of 1024; no suffix: bytes)."""
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    number, unit = (t[:-1], t[-1]) if t and t[-1] in SIZE_UNITS else (t, "")
    try:
        value = float(number)
    except ValueError:
        fail(f"--max-memory {text!r}: expected a size such as 2G, 500M or 1.5G")
    size = int(value * SIZE_UNITS[unit])
    if size < 64 << 20:
        fail(f"--max-memory {text!r}: at least 64M (the interpreter and the model alone take ~50M)")
    return size


def parse_seed(text: str) -> int | None:
    """An integer seed, or None for `random` (Hypothesis draws one)."""
    if text == "random":
        return None
    try:
        return int(text)
    except ValueError:
        fail(f"seed {text!r} is neither an integer nor `random`")


class Reporter:
    """Progress of a long command: a bar on a terminal; on anything else (CI logs, a
    pipe) one line on stderr every PROGRESS_EVERY seconds, so a long run is never
    silent (issue #13: minutes without output read as a hang)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.label = ""
        self.tty = err.is_terminal
        self._progress = _progress(self.tty)
        self._task: Any = None
        self._start = time.monotonic()
        self._last = self._start

    def __enter__(self) -> "Reporter":
        self._progress.__enter__()
        self._task = self._progress.add_task("iommucheck", total=self.total or None, info="")
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(None, None, None)

    def begin(self, label: str) -> None:
        self.label = label
        self._progress.update(self._task, description=label, info="")
        self._line(f"{label}: started", force=True)

    def update(self, info: str) -> None:
        self._progress.update(self._task, info=info)
        self._line(info)

    def end(self) -> None:
        self.done += 1
        self._progress.update(self._task, completed=self.done)

    def _line(self, text: str, force: bool = False) -> None:
        if self.tty:
            return
        now = time.monotonic()
        if force or now - self._last >= PROGRESS_EVERY:
            self._last = now
            where = f"[{self.done + 1}/{self.total}] " if self.total > 1 else ""
            print(f"iommucheck: {where}{text} ({now - self._start:.0f} s)", file=sys.stderr, flush=True)


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
    for r in results:
        if r.engine == "portfolio":
            out.print(f"{r.design} on {r.hw}: {r.extra['verdict']}", markup=False)
        elif r.trace is None and r.engine == "explore":
            out.print(f"{r.design} on {r.hw}: {r.extra.get('summary', '')}", markup=False)
    if any(r.engine == "portfolio" for r in results):
        r0 = next(r for r in results if r.engine == "portfolio")
        out.print(f"budget: {r0.extra['budget']} per design and hardware; seed {r0.extra['seed']}",
                  markup=False)
    if any(r.trace is None and r.engine == "hypothesis" for r in results):
        # Said every time: a short bug can hide from sampled runs (see README, "How much
        # to trust a sampled run").
        out.print("Hypothesis samples: no violation in these runs is not a proof. "
                  "Proofs of small worlds and a bounded search first: the default "
                  "--engine portfolio.", markup=False)


def _write_json(path: str, results: list[CheckResult], bounds: Bounds, seed: int | None) -> None:
    """Results, then timing apart: the same seed gives the same `results`, byte for byte
    (with the default work budget); only `timing` differs from run to run."""
    def finding(f: CheckResult) -> dict[str, Any]:
        return {"invariant": f.violated, "engine": f.engine,
                "trace": f.trace.to_json() if f.trace is not None else None}

    def entry(r: CheckResult) -> dict[str, Any]:
        e: dict[str, Any] = {
            "design": r.design, "hw": r.hw, "engine": r.engine,
            "verdict": "holds" if r.trace is None else "violated",
            "invariant": r.violated, "examples": r.examples, "steps": r.steps,
            "complete": r.complete,
            "trace": None if r.trace is None else r.trace.to_json(),
            **{k: v for k, v in r.extra.items() if k not in ("verdict", "part_seconds")},
            # every finding of the configuration: the violation above, then the others
            # (the portfolio: every invariant broken; otherwise a model exception the
            # second run found)
            "findings": [finding(f) for f in r.findings]}
        if r.engine == "portfolio":
            e["verdict_line"] = r.extra["verdict"]
        return e

    data = {
        "format": "iommucheck-results/2",
        "seed": seed,
        "bounds": {f: getattr(bounds, f) for f in bounds.__dataclass_fields__},
        "results": [entry(r) for r in results],
        "timing": [{"design": r.design, "hw": r.hw, "seconds": round(r.seconds, 3),
                    "parts": r.extra.get("part_seconds", [])}
                   for r in results],
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
@click.argument("trace_file", type=PATH, metavar="TRACE.json")
@click.option("--design-file", type=PATH, metavar="PATH",
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
    if result.violation is not None:
        sys.exit(EXIT_VIOLATION)
    out.print(result.verdict(), markup=False)


@main_group.command()
def designs() -> None:
    """The built-in designs, with their rationale, seeds and smallest breaking world."""
    table = Table(title="designs", show_lines=True)
    for col in ("name", "kind", "hw", "summary", "seeds", "expected (as we read the seeds)",
                "smallest breaking world"):
        table.add_column(col, overflow="fold")
    for d in DESIGNS.values():
        exp = "; ".join(f"{h}: {', '.join(ids) or 'holds'}" for h, ids in d.expect_breaks) or "holds"
        table.add_row(d.name, d.kind, ",".join(d.hw), d.summary, "\n".join(d.seeds) or "-", exp,
                      d.check_bounds or "-")
    out.print(table)


@main_group.command()
def worlds() -> None:
    """The named small worlds the default check proves, with upstream's state counts."""
    from checker.worlds import LADDER, WORLDS

    table = Table(title="worlds (upstream, caches saturated, every invariant)", show_lines=True)
    for col in ("name", "bounds", "what it covers", "vtd states", "smmuv3 states", "default ladder"):
        table.add_column(col, overflow="fold")
    for w in WORLDS.values():
        table.add_row(w.name, w.bounds, w.doc, f"{w.states[0]:,}", f"{w.states[1]:,}",
                      "yes" if w.name in LADDER else "--world or --budget deep")
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
    except (BadInput, InputError) as e:  # ConfigError, DesignFileError, TraceError... too
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
