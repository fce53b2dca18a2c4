"""How much could partial-order reduction save? Commuting moves, measured on the model.

Partial-order reduction (POR) explores, in a state, only an "ample" subset of the
enabled moves when the others commute with it. Before building one, this measures
what it could save on our worlds, with the explorer's own transitions (saturated
caches, symmetry reduction, upstream):

* pairs: of the pairs (a, b) of moves enabled in a state, the share that commute
  there: b still enabled after a and a after b, and both orders reach one state
  (one fingerprint). A necessary condition for independence, checked at that
  state only, so an upper bound on what any independence relation may use.
* candidates: the smallest non-empty set of enabled moves of which every member
  commutes (as above) with every enabled move outside it - a connected component
  of the graph of non-commuting pairs - is the smallest ample set a reduction could
  pick in that state (a persistent set needs more: commuting in every state the
  other moves lead to). Reported: the share of states with a candidate smaller than
  all the enabled moves, and the share of the enabled moves the candidates keep
  of those that change the state (moves that change nothing are self-loops, left
  out of the candidates; a step invariant still checks them) (the transitions POR
  could at best keep, before the provisos: visibility - our
  state invariants read the whole state, so a move is invisible only if it changes
  nothing any invariant reads - and the cycle proviso, which only add moves back).

    python bench/bench_por.py [MAX_STATES]

Run on the one-device world (exhausted) and the two-device world (first
MAX_STATES states, default 1,500, breadth-first).
"""

from __future__ import annotations

import sys
import time
from collections import deque

from rich.console import Console
from rich.table import Table

from checker.explore import Explorer
from checker.world import Config
from invariants.catalog import CATALOG
from model.actions import ACTIONS
from model.bounds import Bounds
from model.core import Kernel
from model.design import UPSTREAM

WORLDS = (
    ("1 device", "devices=1,processes=1,paging_domains=1,iova_pages=1,phys_pages=1,max_pasids=2"),
    ("2 devices", "devices=2,processes=1,paging_domains=1,iova_pages=1,phys_pages=1,max_pasids=2"),
)


def moves(ex: Explorer, k: Kernel) -> list[tuple[int, tuple[object, ...]]]:
    return [(ai, args) for ai, a in enumerate(ACTIONS) if not (ex.saturate and a.name == "dma")
            for args in a.enabled_args(k, ex.bounds)]


def step(ex: Explorer, k: Kernel, m: tuple[int, tuple[object, ...]]) -> Kernel | None:
    child, _, raised = ex._successor(k, ACTIONS[m[0]], m[1])
    return None if raised is not None else child


def measure(name: str, text: str, max_states: int) -> dict[str, object]:
    b = Bounds.parse(text)
    ex = Explorer(Config(UPSTREAM, "vtd", b), tuple(CATALOG), symmetry=True, saturate=True)
    k0, _ = ex.boot()
    seen = {ex.fingerprint(k0)}
    queue: deque[Kernel] = deque([k0])
    pairs = commuting = states = with_candidate = 0
    kept = enabled_total = noops = moves_total = 0
    start = time.perf_counter()
    while queue and states < max_states:
        k = queue.popleft()
        k.freeze()
        states += 1
        ms = moves(ex, k)
        after: dict[int, tuple[Kernel | None, int | None]] = {}
        for i, m in enumerate(ms):
            c = step(ex, k, m)
            after[i] = (c, None if c is None else ex.fingerprint(c))
            if c is not None and after[i][1] not in seen:
                seen.add(after[i][1])
                c.thaw()
                queue.append(c)
        commutes: dict[tuple[int, int], bool] = {}
        for i in range(len(ms)):
            for j in range(i + 1, len(ms)):
                ci, cj = after[i][0], after[j][0]
                ok = False
                if ci is not None and cj is not None:
                    ci.freeze()
                    cj.freeze()
                    mi, mj = ms[i], ms[j]
                    if (mj[1] in set(ACTIONS[mj[0]].enabled_args(ci, b))
                            and mi[1] in set(ACTIONS[mi[0]].enabled_args(cj, b))):
                        a, bb = step(ex, ci, mj), step(ex, cj, mi)
                        ok = a is not None and bb is not None and ex.fingerprint(a) == ex.fingerprint(bb)
                commutes[i, j] = commutes[j, i] = ok
                pairs += 1
                commuting += ok
        # The smallest set of moves closed under "does not commute with": a connected
        # component of the conflict graph (the best ample set a local check allows).
        # Moves that change nothing (a failed call, mostly) are self-loops: they reach no
        # state, and an ample set of them alone would break the cycle proviso.
        here = ex.fingerprint(k)
        changing = [i for i in range(len(ms)) if after[i][1] is not None and after[i][1] != here]
        noops += len(ms) - len(changing)
        best, todo = len(changing), set(changing)
        while todo:
            comp, stack = set(), [todo.pop()]
            while stack:
                i = stack.pop()
                comp.add(i)
                nxt = [j for j in todo if not commutes[i, j]]
                todo.difference_update(nxt)
                stack.extend(nxt)
            best = min(best, len(comp))
        if best < len(changing):
            with_candidate += 1
        kept += best
        enabled_total += len(changing)
        moves_total += len(ms)
        k.thaw()
    return {"world": name, "states": states, "pairs": pairs, "commuting": commuting,
            "with_candidate": with_candidate, "kept": kept, "enabled": enabled_total,
            "noops": noops, "moves": moves_total,
            "seconds": time.perf_counter() - start, "exhausted": not queue}


def main(argv: list[str]) -> None:
    max_states = int(argv[1]) if len(argv) > 1 else 1500
    console = Console(width=None if sys.stdout.isatty() else 200)
    t = Table(title="commuting moves, vtd upstream, saturated caches (bench/bench_por.py)")
    for c in ("world", "states", "moves", "change nothing", "move pairs", "commute", "states with a smaller candidate",
              "moves kept by the candidates", "seconds"):
        t.add_column(c, justify="left" if c == "world" else "right")
    for name, text in WORLDS:
        r = measure(name, text, max_states)
        t.add_row(f"{r['world']}{'' if r['exhausted'] else ' (first states)'}", f"{r['states']:,}",
                  f"{r['moves']:,}", f"{100 * r['noops'] / max(1, r['moves']):.1f}%",  # type: ignore[operator]
                  f"{r['pairs']:,}", f"{100 * r['commuting'] / max(1, r['pairs']):.1f}%",  # type: ignore[operator]
                  f"{100 * r['with_candidate'] / max(1, r['states']):.1f}%",  # type: ignore[operator]
                  f"{100 * r['kept'] / max(1, r['enabled']):.1f}%",  # type: ignore[operator]
                  f"{r['seconds']:.0f}")
    console.print(t)


if __name__ == "__main__":
    main(sys.argv)
