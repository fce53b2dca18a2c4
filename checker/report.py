"""Counterexample reports, written for a kernel engineer.

The text report names the design, hardware and invariant; lists the shrunk run
as numbered kernel calls and events with their results and, under each, the
descriptors/commands the driver issued; states the invariant and why it fails
here; and shows the table and cache entries involved, decoded.
"""

from __future__ import annotations

import textwrap

from invariants.catalog import BY_ID
from invariants.model_exception import ModelException

from checker.check import CheckResult
from checker.trace import Trace


def render_trace(trace: Trace, *, width: int = 100) -> list[str]:
    v = trace.violation
    out: list[str] = []
    if v is None:
        out.append(f"design {trace.design} on {trace.hw}: no violation in {len(trace)} steps")
        out.extend(trace.listing())
        return out
    inv = BY_ID.get(v.invariant)
    out.append(f"design {trace.design} on {trace.hw}: VIOLATES {v.invariant}")
    out.append("")
    n = len(trace)
    # shortest (explorer) or shrunk (Hypothesis): the engine is in the summary table
    out.append(f"Counterexample ({n} call{'s' if n != 1 else ''} and events):"
               if n else "Counterexample: the initial (booted) world already violates it:")
    out.extend("  " + line for line in trace.listing())
    out.append("")
    if inv is not None:
        out.append("Invariant:")
        out.extend(textwrap.wrap(inv.statement, width - 2, initial_indent="  ", subsequent_indent="  "))
    out.append("Why it fails here:")
    out.extend(textwrap.wrap(v.message, width - 2, initial_indent="  ", subsequent_indent="  "))
    if v.evidence:
        out.append("Where it raised (innermost last):" if isinstance(v, ModelException)
                   else "Entries involved:")
        out.extend(f"  {e}" for e in v.evidence)
    if trace.dump:
        out.append("Hardware state at the violation:")
        out.extend(f"  {line}" for line in trace.dump)
    return out


def portfolio_coverage(r: CheckResult) -> str:
    """The table's short form of what a portfolio covered: '3/3 worlds, <= 4 calls, 100 runs'."""
    parts = r.extra.get("parts", [])
    assert isinstance(parts, list)
    worlds = [p for p in parts if p["kind"] == "world" and not p["skipped"]]
    out = [f"{sum(p['complete'] for p in worlds)}/{len(worlds)} worlds proved"] if worlds else []
    for p in parts:
        if p["skipped"] or p["kind"] == "world":
            continue
        if p["kind"] == "search":
            out.append("every state" if p["complete"] else f"<= {p['covered']} calls")
        else:
            out.append(f"{p['states']:,} runs")
    return ", ".join(out)


def summary_rows(results: list[CheckResult]) -> list[tuple[str, str, str, str, str]]:
    rows = []
    for r in results:
        verdict = "holds" if r.trace is None else f"VIOLATED: {r.violated} ({len(r.trace)} steps)"
        for f in r.also:
            assert f.trace is not None
            verdict += f"; also {f.violated} ({len(f.trace)} steps)"
        if r.trace is None and not r.complete:
            verdict = "no violation (INCOMPLETE)"
        if r.engine == "portfolio":
            explored = portfolio_coverage(r)
        elif r.engine == "explore":  # the explorer counts distinct states and transitions
            explored = f"{r.examples:,} states / {r.steps:,} transitions"
            if r.extra.get("saturated"):
                explored += " (caches saturated)"
        else:
            explored = f"{r.examples} examples / {r.steps} steps"
        rows.append((r.design, r.hw, verdict, explored, f"{r.seconds:.1f}s"))
    return rows
