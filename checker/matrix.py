"""The design x invariant matrix, and the generated catalog (`docs/`).

For each (design, hardware) the checker runs with every invariant; when one
breaks, it is recorded with its counterexample and the run is repeated without
it, so the matrix shows every invariant a design breaks, not only the first. A model
exception (`model-exception`) ends the cell: it would raise again; `matrix` prints its
report and exits 1.
`iommucheck docs` renders the matrix into docs/invariants.md and docs/designs.md
from a real run with a fixed seed, and keeps the raw results in
docs/results.json so the rendering can be checked without re-running.
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
from model.bounds import Bounds
from model.design import Design
from model.designs import DESIGNS

from checker.check import CheckResult, check_hypothesis
from checker.trace import Trace

#: the world the docs are generated in: small, so that both engines reach the breaks quickly
DOC_BOUNDS = Bounds(devices=2, processes=2, paging_domains=1, iova_pages=1, phys_pages=2, max_pasids=3)
DOC_SEED = 1
DOC_EXAMPLES = 600
MAX_BREAKS = 4  # re-runs per cell after a violation (bounds the matrix's time)
EXPLORE_STATES = 9000  # the explorer's budget per run in the matrix (a holding cell is INCOMPLETE)


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
    #: model exceptions found (not in the JSON: `broken` has their traces), for the report
    exceptions: list[Trace] = field(default_factory=list, compare=False, repr=False)

    def status(self, inv: str) -> str:
        if not self.applicable:
            return "n/a"
        if inv in self.broken:
            return f"violated ({len(self.broken[inv]['steps'])})"
        return "holds" if inv in self.held else "not checked"


def run_cell(d: Design, hw: str, bounds: Bounds, invariants: Sequence[Invariant], *,
             engine: str = "hypothesis", max_examples: int = DOC_EXAMPLES, seed: int = DOC_SEED,
             on_progress: Callable[[str], None] | None = None) -> Cell:
    cell = Cell(d.name, hw, hw in d.hw, engine=engine)
    if not cell.applicable:
        return cell
    if d.check_bounds:  # the design's smallest world that shows its break
        bounds = bounds.override(d.check_bounds)
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


def _check(d: Design, hw: str, bounds: Bounds, invs: tuple[Invariant, ...], engine: str,
           max_examples: int, seed: int) -> CheckResult:
    if engine == "explore":
        from checker.explore import check_explore

        return check_explore(d, hw, bounds, invs, max_states=EXPLORE_STATES)
    return check_hypothesis(d, hw, bounds, invs, max_examples=max_examples, seed=seed, database=False)


def run_matrix(designs: Sequence[Design], hws: Sequence[str], bounds: Bounds, *,
               engine: str = "hypothesis", max_examples: int = DOC_EXAMPLES, seed: int = DOC_SEED,
               on_progress: Callable[[str], None] | None = None) -> list[Cell]:
    return [run_cell(d, h, bounds, CATALOG, engine=engine, max_examples=max_examples, seed=seed,
                     on_progress=on_progress)
            for d in designs for h in hws]


def cells_to_json(cells: list[Cell], bounds: Bounds, engine: str, seed: int, max_examples: int) -> dict[str, Any]:
    return {
        "format": "iommucheck-matrix/1",
        "engine": engine, "seed": seed, "max_examples": max_examples,
        "bounds": {f: getattr(bounds, f) for f in bounds.__dataclass_fields__},
        "cells": [_cell_dict(c) for c in cells],
    }


def _cell_dict(c: Cell) -> dict[str, Any]:
    return {"design": c.design, "hw": c.hw, "applicable": c.applicable, "broken": c.broken,
            "held": c.held, "examples": c.examples, "steps": c.steps, "complete": c.complete}


def cells_from_json(data: dict[str, Any]) -> list[Cell]:
    return [Cell(c["design"], c["hw"], c["applicable"], c["broken"], c["held"], c["examples"],
                 c["steps"], complete=c.get("complete", True))
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
           f"(engine {meta['engine']}, seed {meta['seed']}, bounds `{_bounds(meta)}`). Do not edit: "
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
            if c.complete:
                keep.append(f"{c.design} ({c.hw})")
            elif d is not None and inv.id in d.breaks_on(c.hw):
                missed.append(f"{c.design} ({c.hw})")
            else:
                unseen.append(f"{c.design} ({c.hw})")
        breaks = [c for c in cells if inv.id in c.broken]
        if keep:
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
                out += [f"- **{c.design}** on {c.hw}, {len(t['steps'])} step(s): "
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
             WarnClass.TORN: "`hitless-entry-update`"}
    out = ["## WARN, oops and use-after-free sites", "",
           "Every site where the model records what the kernel would WARN about, crash on, or "
           "KASAN would report (model/warn.py), with the invariant that reads it.", "",
           "| site | kernel function | condition | class | read by |", "|---|---|---|---|---|"]
    for site in SITES.values():
        out.append(f"| `{site.id}` | `{site.function}` | {site.condition.replace('|', '/')} | "
                   f"{site.klass.value} | {reads[site.klass]} |")
    return out + [""]


def _bounds(meta: dict[str, Any]) -> str:
    # sorted: a fresh run has the dataclass's field order, results.json sorted keys, and
    # `docs --check` must give the same text from either
    return ",".join(f"{k}={int(v) if isinstance(v, bool) else v}" for k, v in sorted(meta["bounds"].items()))


def render_designs_md(cells: list[Cell], meta: dict[str, Any]) -> str:
    out = ["# Designs", "",
           "Generated by `iommucheck docs` "
           f"(engine {meta['engine']}, seed {meta['seed']}, bounds `{_bounds(meta)}`). "
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
            if set(found) == set(exp):
                agree = "as expected"
            elif found and set(found) < set(exp):
                # the matrix budget is small; a design's test (tests/designs) or proof covers these
                agree = f"also expected, not reached within this run's budget: {', '.join(missing)}"
            else:
                agree = f"expected {', '.join(exp) or 'holds'}"
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
def register(group: click.Group) -> None:
    from checker.cli import EXIT_VIOLATION, fail, out, parse_bounds, parse_hw, _progress
    from checker.report import render_trace

    @group.command()
    @click.option("--hw", default="all", show_default=True, metavar="vtd|smmuv3|all")
    @click.option("--design", "design_names", multiple=True, metavar="NAME",
                  help="only these designs (default: all built-in)")
    @click.option("--engine", type=click.Choice(["hypothesis", "explore"]), default="hypothesis",
                  show_default=True)
    @click.option("--max-examples", type=click.IntRange(min=1), default=DOC_EXAMPLES, show_default=True)
    @click.option("--seed", type=int, default=DOC_SEED, show_default=True)
    @click.option("--bounds", "bounds_text", default="", metavar="K=V,...")
    @click.option("--json", "json_path", metavar="PATH")
    @click.option("--markdown", "md_path", metavar="PATH")
    def matrix(hw: str, design_names: tuple[str, ...], engine: str, max_examples: int, seed: int,
               bounds_text: str, json_path: str | None, md_path: str | None) -> None:
        """Every design on every driver: designs x invariants (held / violated / n/a)."""
        from checker.cli import resolve_designs

        designs = resolve_designs(design_names, None) if design_names else list(DESIGNS.values())
        bounds = parse_bounds(bounds_text) if bounds_text else DOC_BOUNDS
        with _progress(out.is_terminal) as progress:
            task = progress.add_task("matrix", total=len(designs) * len(parse_hw(hw)), info="")
            cells = []
            for d in designs:
                for h in parse_hw(hw):
                    cells.append(run_cell(d, h, bounds, CATALOG, engine=engine,
                                          max_examples=max_examples, seed=seed,
                                          on_progress=lambda s: progress.update(task, info=s)))
                    progress.advance(task)
        out.print(render_matrix_md(cells), markup=False)
        for c in cells:  # a model exception is a bug of the design or the model: the full report
            for t in c.exceptions:
                out.print()
                for line in render_trace(t):
                    out.print(line, markup=False)
        data = cells_to_json(cells, bounds, engine, seed, max_examples)
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
    @click.option("--out", "out_dir", default="docs", show_default=True, metavar="DIR")
    @click.option("--check", "check_only", is_flag=True,
                  help="exit 1 if the committed docs differ from what the code produces now")
    @click.option("--render-only", is_flag=True,
                  help="re-render from DIR/results.json without re-running the checker")
    @click.option("--engine", type=click.Choice(["hypothesis", "explore"]), default="explore",
                  show_default=True,
                  help="explore (the committed docs): breadth-first, so every counterexample "
                       "is a shortest one and the run is deterministic")
    def docs(out_dir: str, check_only: bool, render_only: bool, engine: str) -> None:
        """Write docs/invariants.md and docs/designs.md from a real run with a fixed seed
        (and docs/contracts.md from the errno contracts)."""
        d = Path(out_dir)
        if render_only:
            try:
                data = json.loads((d / "results.json").read_text())
            except (OSError, json.JSONDecodeError) as e:
                fail(f"cannot read {d / 'results.json'}: {e}")
            cells = cells_from_json(data)
            meta = {k: data[k] for k in ("format", "engine", "seed", "max_examples", "bounds")}
        else:
            with _progress(out.is_terminal) as progress:
                task = progress.add_task("docs", total=None, info="")
                cells = run_matrix(list(DESIGNS.values()), ("vtd", "smmuv3"), DOC_BOUNDS,
                                   engine=engine, on_progress=lambda s: progress.update(task, info=s))
            meta = cells_to_json(cells, DOC_BOUNDS, engine, DOC_SEED, DOC_EXAMPLES)
            meta.pop("cells")
        files = write_docs(d, cells, meta)
        if check_only:
            stale = [str(p) for p, text in files.items()
                     if not p.exists() or p.read_text() != text]
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
