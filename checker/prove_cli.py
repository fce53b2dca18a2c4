"""`iommucheck prove [NAME...]`: run the z3 proofs (proofs/, DESIGN.md section 7).

Registered on the CLI group by checker.cli when this module exists. Nothing heavy
is imported here: z3 and the proofs load only when the command runs, so every
other command starts as fast as before.

Exit status: 0 every result is the expected one (proved, or the counterexample a
proof is written to find), 1 otherwise, 2 an unknown proof name.
"""

from __future__ import annotations

import sys

import click

EXIT_OK, EXIT_UNEXPECTED = 0, 1


def register(group: click.Group) -> None:
    @group.command("prove")
    @click.argument("names", nargs=-1, metavar="[NAME...]")
    @click.option("--list", "list_only", is_flag=True, help="list the proofs with their statements")
    @click.option("-v", "--verbose", is_flag=True, help="also print the details of proved results")
    def prove(names: tuple[str, ...], list_only: bool, verbose: bool) -> None:
        """Run z3 proofs (default all): each is proved, or gives a counterexample decoded into
        table entries and kernel calls. Some proofs are written to fail (expected: counterexample)."""
        from rich.table import Table

        from checker.cli import BadInput, out
        from proofs.catalog import UnknownProof, get

        try:
            proofs = get(names or None)
        except UnknownProof as e:
            raise BadInput(str(e)) from None
        if list_only:
            table = Table(title="proofs", show_lines=True)
            for col in ("name", "expected", "statement", "assumptions"):
                table.add_column(col, overflow="fold")
            for p in proofs:
                table.add_row(p.name, p.expect, p.statement, "\n".join(f"- {a}" for a in p.assumptions))
            out.print(table)
            return
        results = []
        for p in proofs:
            with out.status(f"proving {p.name}..."):
                results.append(p.run())
        table = Table(title=f"iommucheck prove: {len(results)} proof(s)")
        for col in ("name", "expected", "result", "time"):
            table.add_column(col)
        for r in results:
            shown = r.status if r.as_expected else f"[bold red]{r.status} (UNEXPECTED)[/]"
            table.add_row(r.name, r.expected, shown, f"{r.seconds:.2f}s")
        out.print(table)
        for p, r in zip(proofs, results):
            if r.status != "proved" or not r.as_expected or verbose:
                out.print()
                out.print(f"{r.name}: {r.status}" + ("" if r.as_expected else
                                                      f" (expected {r.expected})"), markup=False)
                out.print(f"  claim: {p.statement}", markup=False)
                for line in r.details:
                    out.print(f"  {line}", markup=False)
        bad = [r.name for r in results if not r.as_expected]
        if bad:
            out.print(f"\nnot as expected: {', '.join(bad)}", markup=False)
            sys.exit(EXIT_UNEXPECTED)
