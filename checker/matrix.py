"""The design x invariant matrix, and the generated catalog (`docs/`).

For each (design, hardware) the checker runs with every invariant; when one
breaks, it is recorded with its counterexample and the search goes on without it
(the re-run rule), so the matrix shows every invariant a design breaks, not only
the first. The default engine is the portfolio (checker/portfolio.py), which does
this in every part; with `--engine hypothesis|explore` the run is repeated without
the broken invariant. A model exception (`model-exception`) ends the cell: it would
raise again; `matrix` prints its report and exits 1.

`iommucheck docs` renders the matrix into docs/invariants.md and docs/designs.md
from a real run and keeps the raw results in docs/results.json, so the rendering
can be checked without re-running. The docs' run is the portfolio's explorer parts
under a count budget (`DOC_BUDGET`): deterministic, the same on every machine and
every Hypothesis version, so a regeneration gives the committed files byte for byte.
results.json records a digest of the sources the run depends on (`source_digest`):
CI compares it with the checkout's, so docs/ that a full regeneration would change
are caught without one (tests/checker/test_docs.py), and regenerates a few cells to
check that the digest's premise, determinism, holds.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import click

from invariants.base import Invariant
from invariants.catalog import CATALOG
from invariants.model_exception import MODEL_EXCEPTION
from invariants.contracts import render_contracts_markdown
from model.bounds import Bounds, BoundsError
from model.design import Design
from model.designs import DESIGNS

from checker.check import CheckResult, check_hypothesis
from checker.inputs import InputError, expect, is_int, loads, read_text
from checker.portfolio import STANDARD, Budget, run_portfolio
from checker.trace import Trace

#: the requested bounds of the docs' search part: two devices, two processes (the
#: ladder and the designs' own worlds cover the rest)
DOC_BOUNDS = Bounds(devices=2, processes=2, paging_domains=1, iova_pages=1, phys_pages=2, max_pasids=3)
DOC_SEED = 1
DOC_EXAMPLES = 600
#: the docs' portfolio: the standard counts, explorer parts only (no sampling, so no
#: dependence on Hypothesis's version), a smaller search
DOC_BUDGET = Budget(world_states=STANDARD.world_states, design_states=STANDARD.design_states,
                    search_states=2_000, examples=0, name="docs")
DOC_PARTS = ("world", "search")
MAX_BREAKS = 4  # re-runs per cell after a violation (bounds the matrix's time)
EXPLORE_STATES = 9000  # the explorer's budget per run in the matrix (a holding cell is INCOMPLETE)
#: the sources a docs run depends on (their digest is recorded in results.json)
SOURCE_DIRS = ("hwspec", "model", "invariants", "checker")


@dataclass
class Cell:
    design: str
    hw: str
    applicable: bool
    broken: dict[str, dict[str, Any]] = field(default_factory=dict)  # inv -> trace json
    held: list[str] = field(default_factory=list)
    examples: int = 0
    steps: int = 0
    seconds: float = 0.0
    engine: str = "hypothesis"
    complete: bool = True  # the explorer covered every state within the bounds
    #: the portfolio: what holds where ("proved in worlds sva1, paging1; ...")
    coverage: str = ""
    #: the portfolio: the world or part each broken invariant was found in
    found_in: dict[str, str] = field(default_factory=dict)
    #: model exceptions found (not in the JSON: `broken` has their traces), for the report
    exceptions: list[Trace] = field(default_factory=list, compare=False, repr=False)

    def status(self, inv: str) -> str:
        if not self.applicable:
            return "n/a"
        if inv in self.broken:
            return f"violated ({len(self.broken[inv]['steps'])})"
        return "holds" if inv in self.held else "not checked"


def run_cell(d: Design, hw: str, bounds: Bounds, invariants: Sequence[Invariant], *,
             engine: str = "portfolio", max_examples: int = DOC_EXAMPLES, seed: int = DOC_SEED,
             on_progress: Callable[[str], None] | None = None,
             budget: Budget = DOC_BUDGET, parts: tuple[str, ...] = DOC_PARTS) -> Cell:
    cell = Cell(d.name, hw, hw in d.hw, engine=engine)
    if not cell.applicable:
        return cell
    if engine == "portfolio":
        return _portfolio_cell(cell, d, hw, bounds, invariants, budget, parts, seed, on_progress)
    from checker.worlds import with_design_bounds

    bounds = with_design_bounds(bounds, d.check_bounds)  # e.g. a shared group and a fault
    remaining = [i for i in invariants if i.applies(hw)]
    for _ in range(MAX_BREAKS + 1):
        if not remaining:
            break
        if on_progress:
            on_progress(f"{d.name} on {hw}: {len(remaining)} invariant(s), {len(cell.broken)} broken so far")
        r = _check(d, hw, bounds, tuple(remaining), engine, max_examples, seed)
        cell.examples += r.examples
        cell.steps += r.steps
        cell.seconds += r.seconds
        if r.trace is None or r.violated is None:
            cell.held = [i.id for i in remaining]
            cell.complete = r.complete
            break
        cell.broken[r.violated] = r.trace.to_json()
        if r.violated == MODEL_EXCEPTION:
            # found whatever the invariants: a re-run would raise again; the invariants
            # not yet broken stay "not checked"
            cell.exceptions.append(r.trace)
            break
        remaining = [i for i in remaining if i.id != r.violated]
    return cell


def _portfolio_cell(cell: Cell, d: Design, hw: str, bounds: Bounds, invariants: Sequence[Invariant],
                    budget: Budget, parts: tuple[str, ...], seed: int,
                    on_progress: Callable[[str], None] | None) -> Cell:
    pr = run_portfolio(d, hw, bounds, tuple(invariants), budget=budget, seed=seed, database=False,
                       parts=parts, on_progress=on_progress)
    for p in pr.parts:
        cell.examples += p.states
        cell.steps += p.transitions
        cell.seconds += p.seconds
        for f in p.findings:
            assert f.trace is not None and f.violated is not None
            cell.broken[f.violated] = f.trace.to_json()
            cell.found_in[f.violated] = p.name
            if f.violated == MODEL_EXCEPTION:
                cell.exceptions.append(f.trace)
    if not cell.exceptions:
        cell.held = [i.id for i in invariants if i.applies(hw) and i.id not in cell.broken]
    cell.coverage = pr.coverage()
    cell.complete = all(p.complete for p in pr.parts if p.kind != "sample")
    return cell


def _check(d: Design, hw: str, bounds: Bounds, invs: tuple[Invariant, ...], engine: str,
           max_examples: int, seed: int) -> CheckResult:
    if engine == "explore":
        from checker.explore import check_explore

        return check_explore(d, hw, bounds, invs, max_states=EXPLORE_STATES)
    return check_hypothesis(d, hw, bounds, invs, max_examples=max_examples, seed=seed, database=False)


def run_matrix(designs: Sequence[Design], hws: Sequence[str], bounds: Bounds, *,
               engine: str = "portfolio", max_examples: int = DOC_EXAMPLES, seed: int = DOC_SEED,
               on_progress: Callable[[str], None] | None = None, jobs: int = 1,
               budget: Budget = DOC_BUDGET, parts: tuple[str, ...] = DOC_PARTS) -> list[Cell]:
    """Every (design, hardware) cell, in order; `jobs` > 1 runs cells in worker processes
    (each cell is independent and deterministic, so the result does not depend on it)."""
    todo = [(d, h) for d in designs for h in hws]

    serial = jobs <= 1 or len(todo) <= 1

    def one(i: int) -> Cell:
        d, h = todo[i]
        # workers report only when their cell is done (a progress bar lives in the parent)
        return run_cell(d, h, bounds, CATALOG, engine=engine, max_examples=max_examples, seed=seed,
                        on_progress=on_progress if serial else None, budget=budget, parts=parts)

    if serial:
        return [one(i) for i in range(len(todo))]
    return parallel_map(one, len(todo), jobs, on_done=(
        None if on_progress is None else
        lambda n: on_progress(f"{n}/{len(todo)} cells done")))


def parallel_map(fn: Callable[[int], Any], n: int, jobs: int,
                 on_done: Callable[[int], None] | None = None) -> list[Any]:
    """[fn(0), ..., fn(n-1)] computed in `jobs` forked worker processes. Forked, so the
    workers inherit what the parent loaded (design files, registered profiles) and
    nothing but an index and the result crosses the process boundary."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    global _FORK_FN
    _FORK_FN = fn
    results: list[Any] = [None] * n
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
        futures = {pool.submit(_call_forked, i): i for i in range(n)}
        for done, fut in enumerate(as_completed(futures), 1):
            results[futures[fut]] = fut.result()
            if on_done is not None:
                on_done(done)
    return results


_FORK_FN: Callable[[int], Any] | None = None


def _call_forked(i: int) -> Any:
    assert _FORK_FN is not None
    return _FORK_FN(i)


def source_digest(root: Path | None = None) -> str:
    """sha256 of the sources a docs run depends on (SOURCE_DIRS, *.py, by path)."""
    import hashlib

    base = root or Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for d in SOURCE_DIRS:
        for f in sorted((base / d).rglob("*.py")):
            h.update(str(f.relative_to(base)).encode() + b"\0")
            h.update(f.read_bytes() + b"\0")
    return h.hexdigest()


def cells_to_json(cells: list[Cell], bounds: Bounds, engine: str, seed: int, max_examples: int,
                  budget: Budget | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "format": RESULTS_FORMAT,
        "engine": engine, "seed": seed, "max_examples": max_examples,
        "bounds": {f: getattr(bounds, f) for f in bounds.__dataclass_fields__},
        "cells": [_cell_dict(c) for c in cells],
    }
    if engine == "portfolio" and budget is not None:
        data["budget"] = budget.describe()
    return data


def _cell_dict(c: Cell) -> dict[str, Any]:
    return {"design": c.design, "hw": c.hw, "applicable": c.applicable, "broken": c.broken,
            "held": c.held, "examples": c.examples, "steps": c.steps, "complete": c.complete,
            "coverage": c.coverage, "found_in": c.found_in}


#: the "format" of results.json (and of `matrix --json`)
RESULTS_FORMAT = "iommucheck-matrix/2"


class ResultsError(InputError):
    """A results.json that `docs --render-only` cannot render (one line, exit 2)."""


def check_results(data: Any, where: str) -> dict[str, Any]:
    """The fields the renderers read, typed (ResultsError names the first bad one)."""
    from checker.world import HW_KINDS

    def need(ok: bool, field: str, value: Any, expected: str) -> None:
        expect(ok, where, field, value, expected, ResultsError)

    def strs(v: Any) -> bool:
        return isinstance(v, list) and all(isinstance(x, str) for x in v)

    need(isinstance(data, dict), "(top level)", type(data).__name__, "an object")
    for key in ("format", "engine", "bounds", "cells"):
        if key not in data:
            raise ResultsError(f"{where} has no {key!r}")
    need(data["format"] == RESULTS_FORMAT, "format", data["format"], repr(RESULTS_FORMAT))
    need(data["engine"] in ("portfolio", "hypothesis", "explore"), "engine", data["engine"],
         "portfolio, hypothesis or explore")
    for key in ("budget", "source_digest"):
        if key in data:
            need(isinstance(data[key], str), key, data[key], "a str")
    for key in ("seed", "max_examples"):
        if key in data:
            need(is_int(data[key]), key, data[key], "an integer")
    if data["engine"] != "portfolio":
        need(is_int(data.get("seed")), "seed", data.get("seed"), "an integer")
    try:
        Bounds.from_json(data["bounds"])
    except BoundsError as e:
        raise ResultsError(f"{where}: bounds: {e}") from None
    need(isinstance(data["cells"], list), "cells", data["cells"], "a list of cells")
    cell_fields: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
        ("design", lambda v: isinstance(v, str) and bool(v), "a design name"),
        ("hw", lambda v: v in HW_KINDS if isinstance(v, str) else False, " or ".join(HW_KINDS)),
        ("applicable", lambda v: isinstance(v, bool), "true or false"),
        ("broken", lambda v: isinstance(v, dict), "an object of invariant: trace"),
        ("held", strs, "a list of invariant ids"),
        ("examples", is_int, "an integer"),
        ("steps", is_int, "an integer"),
    )
    optional: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
        ("complete", lambda v: isinstance(v, bool), "true or false"),
        ("coverage", lambda v: isinstance(v, str), "a str"),
        ("found_in", lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()),
         "an object of invariant: world"),
    )
    for i, c in enumerate(data["cells"], 1):
        need(isinstance(c, dict), f"cells[{i}]", c, "an object")
        for key, ok, what in cell_fields + optional:
            if key not in c:
                if (key, ok, what) in optional:
                    continue
                raise ResultsError(f"{where}: cells[{i}] has no {key!r}")
            need(ok(c[key]), f"cells[{i}].{key}", c[key], what)
        for inv, t in c["broken"].items():
            need(isinstance(t, dict) and isinstance(t.get("steps"), list)
                 and strs(t.get("listing", [])) and isinstance(t.get("violation") or {}, dict)
                 and isinstance((t.get("violation") or {}).get("message", ""), str),
                 f"cells[{i}].broken[{inv!r}]", t,
                 'a trace: {"steps": [...], "listing": [str], "violation": {"message": str}}')
    checked: dict[str, Any] = data
    return checked


def cells_from_json(data: dict[str, Any]) -> list[Cell]:
    return [Cell(c["design"], c["hw"], c["applicable"], c["broken"], c["held"], c["examples"],
                 c["steps"], complete=c.get("complete", True), coverage=c.get("coverage", ""),
                 found_in=c.get("found_in", {}))
            for c in data["cells"]]


# -- rendering ----------------------------------------------------------------------------
SEEDS_DIR = "../shared/seeds"


def _short(inv: str) -> str:
    return inv


def render_matrix_md(cells: list[Cell]) -> str:
    invs = [i.id for i in CATALOG]
    lines = ["| design | hw | " + " | ".join(_short(i) for i in invs) + " |",
             "|---|---|" + "---|" * len(invs)]
    for c in cells:
        row = []
        for i in invs:
            s = c.status(i)
            row.append("✗ " + s.split(" ", 1)[1].strip("()") if s.startswith("violated") else
                       {"holds": "✓", "n/a": "n/a"}.get(s, "?"))
        lines.append(f"| {c.design} | {c.hw} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def _listing(trace: dict[str, Any]) -> list[str]:
    return [f"    {line}" for line in trace.get("listing", [])]


def render_invariants_md(cells: list[Cell], meta: dict[str, Any]) -> str:
    out = ["# Invariant catalog", "",
           "Generated by `iommucheck docs` from a real run "
           f"({_run(meta)}). Do not edit: "
           "regenerate. Each invariant lists the designs that keep it and, for each design that "
           "breaks it, the minimal counterexample the checker found.", ""]
    for inv in CATALOG:
        out += [f"## `{inv.id}`", "", f"**{inv.statement}**", "",
                f"Layer: {inv.layer.value}. Seeds: "
                + (", ".join(f"`{s}`" for s in inv.seeds) or "none (a consistency property)") + ".", "",
                inv.rationale, ""]
        if inv.quote:
            out += [f"> {inv.quote}", ""]
        # An incomplete run is evidence, not proof; an expected break it did not
        # reach is named as such rather than listed among the designs that keep it.
        keep: list[str] = []
        unseen: list[str] = []
        missed: list[str] = []
        for c in cells:
            if not c.applicable or inv.id not in c.held:
                continue
            d = DESIGNS.get(c.design)
            if d is not None and inv.id in d.breaks_on(c.hw):
                missed.append(f"{c.design} ({c.hw})")
            elif c.coverage:  # the portfolio: say what holds where
                keep.append(f"{c.design} ({c.hw}: {c.coverage})")
            elif c.complete:
                keep.append(f"{c.design} ({c.hw})")
            else:
                unseen.append(f"{c.design} ({c.hw})")
        breaks = [c for c in cells if inv.id in c.broken]
        if keep and any(c.coverage for c in cells):
            out += ["Kept by:", ""] + [f"- {k}" for k in keep] + [""]
        elif keep:
            out += [f"Kept by (every reachable state explored): {', '.join(keep)}.", ""]
        if unseen:
            out += [f"Not broken within the run's budget: {', '.join(unseen)}.", ""]
        if missed:
            out += [f"Expected to break, not reached within the run's budget: {', '.join(missed)} "
                    "(tests/designs/test_expected_breaks.py reaches each one alone).", ""]
        if breaks:
            out.append("Broken by:")
            out.append("")
            for c in breaks:
                t = c.broken[inv.id]
                where = f" (in {c.found_in[inv.id]})" if inv.id in c.found_in else ""
                out += [f"- **{c.design}** on {c.hw}, {len(t['steps'])} step(s){where}: "
                        + (t.get('violation') or {}).get('message', ''), "", "  ```"]
                out += [f"  {line}" for line in t.get("listing", [])] or ["  (the booted world)"]
                out += ["  ```", ""]
        else:
            out += ["Broken by: none of the built-in designs.", ""]
    out += _warn_sites_md()
    return "\n".join(out).rstrip() + "\n"


def _warn_sites_md() -> list[str]:
    """The declared WARN / oops / use-after-free sites (model/warn.py), with their class."""
    from model.warn import SITES, WarnClass

    reads = {WarnClass.MISUSE: "allowed (a caller's error)", WarnClass.BUG: "`no-kernel-warn`",
             WarnClass.OOPS: "`no-kernel-warn`", WarnClass.UAF: "`no-use-after-free`",
             WarnClass.TORN: "`hitless-entry-update`", WarnClass.WALK: "`walk-cache-live`"}
    out = ["## WARN, oops and use-after-free sites", "",
           "Every site where the model records what the kernel would WARN about, crash on, or "
           "KASAN would report (model/warn.py), with the invariant that reads it.", "",
           "| site | kernel function | condition | class | read by |", "|---|---|---|---|---|"]
    for site in SITES.values():
        out.append(f"| `{site.id}` | `{site.function}` | {site.condition.replace('|', '/')} | "
                   f"{site.klass.value} | {reads[site.klass]} |")
    return out + [""]


def _run(meta: dict[str, Any]) -> str:
    """How the docs' run was made, in words."""
    if meta["engine"] == "portfolio":
        return (f"the portfolio's explorer parts, budget {meta.get('budget', '?')}: the ladder of "
                f"small worlds, each design's own world, then a breadth-first search at bounds "
                f"`{_bounds(meta)}`; every counterexample is a shortest one")
    return f"engine {meta['engine']}, seed {meta['seed']}, bounds `{_bounds(meta)}`"


def _bounds(meta: dict[str, Any]) -> str:
    # sorted: a fresh run has the dataclass's field order, results.json sorted keys, and
    # `docs --check` must give the same text from either
    return ",".join(f"{k}={int(v) if isinstance(v, bool) else v}" for k, v in sorted(meta["bounds"].items()))


def render_designs_md(cells: list[Cell], meta: dict[str, Any]) -> str:
    out = ["# Designs", "",
           "Generated by `iommucheck docs` "
           f"({_run(meta)}). "
           "Expected verdicts are our reading of the seeds; the found verdicts are the checker's. "
           "Where they differ, the design's rationale says which is wrong.", "",
           "## Matrix", "", "✓ holds, ✗ N violated with an N-step counterexample, n/a not applicable.",
           "", render_matrix_md(cells), ""]
    by_design: dict[str, list[Cell]] = {}
    for c in cells:
        by_design.setdefault(c.design, []).append(c)
    for name, cs in by_design.items():
        d = DESIGNS.get(name)
        out += [f"## `{name}`", ""]
        if d is not None:
            out += [f"*{d.summary}* ({d.kind})", "", d.rationale, ""]
            if d.seeds:
                out += ["Seeds: " + ", ".join(f"`{s}`" for s in d.seeds) + ".", ""]
            if d.history:
                out += [f"History: {d.history}", ""]
        for c in cs:
            if not c.applicable:
                out += [f"- {c.hw}: not applicable", ""]
                continue
            exp = d.breaks_on(c.hw) if d else ()
            found = sorted(c.broken)
            missing = [i for i in exp if i not in c.broken]
            extra = [i for i in found if i not in exp]
            if set(found) == set(exp):
                agree = "as expected"
            elif exp and not missing:
                # the re-run rule goes on through the first violation: its consequences
                agree = f"as expected; also found: {', '.join(extra)}"
            elif found and set(found) < set(exp):
                # the matrix budget is small; a design's test (tests/designs) or proof covers these
                agree = f"also expected, not reached within this run's budget: {', '.join(missing)}"
            else:
                agree = f"expected {', '.join(exp) or 'holds'}"
            if c.coverage:  # the portfolio
                broke = ", ".join(f"{i} (in {c.found_in.get(i, '?')})" for i in found)
                rest = f"; the other invariants: {c.coverage}" if found else f": {c.coverage}"
                out += [f"- {c.hw}: {'breaks ' + broke if found else 'holds every invariant'} "
                        f"({agree}){rest}", ""]
                continue
            held = "holds every invariant" + ("" if c.complete else " within the explored states")
            units = ("states", "transitions") if meta["engine"] == "explore" else ("examples", "steps")
            out += [f"- {c.hw}: {'breaks ' + ', '.join(found) if found else held}"
                    f" ({agree}; {c.examples:,} {units[0]}, {c.steps:,} {units[1]})", ""]
    return "\n".join(out).rstrip() + "\n"


def write_docs(out_dir: Path, cells: list[Cell], meta: dict[str, Any]) -> dict[Path, str]:
    files = {
        out_dir / "invariants.md": render_invariants_md(cells, meta),
        out_dir / "designs.md": render_designs_md(cells, meta),
        out_dir / "results.json": json.dumps({**meta, "cells": [_cell_dict(c) for c in cells]},
                                             indent=1, sort_keys=True) + "\n",
        # the errno contracts do not depend on a run: rendered from invariants/contracts.py
        out_dir / "contracts.md": render_contracts_markdown(),
    }
    return files


# -- CLI -------------------------------------------------------------------------------------
def default_jobs() -> int:
    """Worker processes for the matrix and docs: every core (the cells are independent)."""
    import os

    return max(1, min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                      else (os.cpu_count() or 1), 8))


def register(group: click.Group) -> None:
    from checker.cli import EXIT_VIOLATION, PATH, Reporter, fail, out, parse_bounds, parse_hw
    from checker.report import render_trace

    @group.command()
    @click.option("--hw", default="all", show_default=True, metavar="vtd|smmuv3|all")
    @click.option("--design", "design_names", multiple=True, metavar="NAME",
                  help="only these designs (default: all built-in)")
    @click.option("--engine", type=click.Choice(["portfolio", "hypothesis", "explore"]),
                  default="portfolio", show_default=True)
    @click.option("--budget", "budget_text", default="docs", show_default=True,
                  metavar="docs|quick|standard|deep|SECONDS", help="portfolio: the budget per cell")
    @click.option("--max-examples", type=click.IntRange(min=1), default=DOC_EXAMPLES, show_default=True,
                  help="--engine hypothesis: examples per run")
    @click.option("--seed", type=int, default=DOC_SEED, show_default=True)
    @click.option("--bounds", "bounds_text", default="", metavar="K=V,...")
    @click.option("--jobs", type=click.IntRange(min=1), default=None,
                  help="worker processes (default: every core)")
    @click.option("--json", "json_path", type=PATH, metavar="PATH")
    @click.option("--markdown", "md_path", type=PATH, metavar="PATH")
    def matrix(hw: str, design_names: tuple[str, ...], engine: str, budget_text: str,
               max_examples: int, seed: int, bounds_text: str, jobs: int | None,
               json_path: str | None, md_path: str | None) -> None:
        """Every design on every driver: designs x invariants (held / violated / n/a)."""
        from checker.cli import resolve_designs
        from checker.portfolio import BudgetError, parse_budget

        designs = resolve_designs(design_names, None) if design_names else list(DESIGNS.values())
        bounds = parse_bounds(bounds_text) if bounds_text else DOC_BOUNDS
        try:
            budget = DOC_BUDGET if budget_text == "docs" else parse_budget(budget_text)
        except BudgetError as e:
            fail(str(e))
        parts = DOC_PARTS if budget is DOC_BUDGET else ("world", "search", "sample")
        hws = parse_hw(hw)
        with Reporter(1) as report:
            report.begin(f"matrix of {len(designs) * len(hws)} cells")
            cells = run_matrix(designs, hws, bounds, engine=engine, max_examples=max_examples,
                               seed=seed, on_progress=report.update, jobs=jobs or default_jobs(),
                               budget=budget, parts=parts)
            report.end()
        out.print(render_matrix_md(cells), markup=False)
        for c in cells:  # a model exception is a bug of the design or the model: the full report
            for t in c.exceptions:
                out.print()
                for line in render_trace(t):
                    out.print(line, markup=False)
        data = cells_to_json(cells, bounds, engine, seed, max_examples, budget)
        try:
            if json_path:
                Path(json_path).write_text(json.dumps(data, indent=1) + "\n")
            if md_path:
                Path(md_path).write_text(render_matrix_md(cells) + "\n")
        except OSError as e:
            fail(f"cannot write: {e}")
        if any(c.exceptions for c in cells):
            sys.exit(EXIT_VIOLATION)

    @group.command()
    @click.option("--out", "out_dir", type=PATH, default="docs", show_default=True, metavar="DIR")
    @click.option("--check", "check_only", is_flag=True,
                  help="exit 1 if the committed docs differ from what the code produces now "
                       "(a full regeneration; with --render-only: the rendering of results.json "
                       "and the sources' digest)")
    @click.option("--render-only", is_flag=True,
                  help="re-render from DIR/results.json without re-running the checker")
    @click.option("--jobs", type=click.IntRange(min=1), default=None,
                  help="worker processes (default: every core; the result does not depend on it)")
    def docs(out_dir: str, check_only: bool, render_only: bool, jobs: int | None) -> None:
        """Write docs/invariants.md and docs/designs.md from a real, deterministic run
        (and docs/contracts.md from the errno contracts)."""
        d = Path(out_dir)
        digest = source_digest()
        if render_only:
            where = str(d / "results.json")
            data = check_results(loads(read_text(where, "results file"), where), where)
            cells = cells_from_json(data)
            meta: dict[str, Any] = {k: data[k] for k in ("format", "engine", "seed", "max_examples", "bounds",
                                         "budget", "source_digest") if k in data}
        else:
            with Reporter(1) as report:
                report.begin(f"docs: {len(DESIGNS) * 2} cells")
                cells = run_matrix(list(DESIGNS.values()), ("vtd", "smmuv3"), DOC_BOUNDS,
                                   on_progress=report.update, jobs=jobs or default_jobs())
                report.end()
            meta = cells_to_json(cells, DOC_BOUNDS, "portfolio", DOC_SEED, DOC_EXAMPLES, DOC_BUDGET)
            meta.pop("cells")
            meta["source_digest"] = digest
        files = write_docs(d, cells, meta)
        if check_only:
            stale = [str(p) for p, text in files.items()
                     if not p.exists() or p.read_text() != text]
            if render_only and meta.get("source_digest") != digest:
                stale.append(f"{d / 'results.json'} (generated from other sources: "
                             f"{', '.join(SOURCE_DIRS)} changed since)")
            if stale:
                out.print(f"stale: {', '.join(stale)} (run `iommucheck docs`)", markup=False)
                sys.exit(EXIT_VIOLATION)
            out.print("docs are up to date")
            return
        try:
            d.mkdir(parents=True, exist_ok=True)
            for p, text in files.items():
                p.write_text(text)
                out.print(f"wrote {p}", markup=False)
        except OSError as e:
            fail(f"cannot write docs to {d}: {e}")
