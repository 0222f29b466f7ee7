"""Loops, one definition for every user: the natural loops of a function's CFG. A back edge
is an edge u -> h whose target h dominates u; its loop is h and every block that reaches u
without passing h; loops with one header are one loop. A Hexagon hardware loop is a back edge
like any other (the `:endloop` packet's edge to its `loopN` label). Innermost: holding no
other loop."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from accelsim.asm.cfg import Block, basic_blocks, predecessors
from accelsim.asm.functions import Function, Unit, split_functions
from accelsim.asm.isa import detect_isa


def dominators(blocks: list[Block]) -> tuple[list[int], list[set[int]]]:
    """(reverse postorder of the blocks reachable from the entry, dominator set of each)."""
    n = len(blocks)
    if not n:
        return [], []
    preds = predecessors(blocks)
    order, seen = [], set()

    def dfs(v):
        stack = [(v, iter(blocks[v].succ))]
        seen.add(v)
        while stack:
            x, it = stack[-1]
            for s in it:
                if s not in seen:
                    seen.add(s)
                    stack.append((s, iter(blocks[s].succ)))
                    break
            else:
                order.append(x)
                stack.pop()

    dfs(0)
    rpo = order[::-1]
    # unreachable blocks dominate nothing and are dominated by nothing but themselves
    dom = [set(range(n)) if v in seen else {v} for v in range(n)]
    dom[0] = {0}
    changed = True
    while changed:
        changed = False
        for v in rpo[1:]:
            ps = [p for p in preds[v] if p in seen]
            new = set.intersection(*(dom[p] for p in ps)) | {v} if ps else {v}
            if new != dom[v]:
                dom[v], changed = new, True
    return rpo, dom


@dataclass(eq=False)
class Loop:
    """A natural loop: block indices of its function."""

    header: int
    body: set[int]
    latches: list[int]  # blocks with a back edge to the header
    parent: Loop | None = None  # the smallest loop around it
    depth: int = 1  # 1 = outermost


def natural_loops(blocks: list[Block], dom: list[set[int]]) -> list[Loop]:
    """The natural loops, smallest first, each with its parent and depth."""
    preds = predecessors(blocks)
    loops: dict[int, Loop] = {}
    for u, b in enumerate(blocks):
        for h in b.succ:
            if h in dom[u]:
                lp = loops.setdefault(h, Loop(h, {h}, []))
                lp.latches.append(u)
                todo = [u]
                while todo:
                    x = todo.pop()
                    if x not in lp.body:
                        lp.body.add(x)
                        todo += preds[x]
    out = sorted(loops.values(), key=lambda lp: len(lp.body))
    for lp in out:
        enclosing = [o for o in out if o is not lp and lp.body < o.body]
        lp.parent = min(enclosing, key=lambda o: len(o.body)) if enclosing else None
    for lp in out:
        d, p = 1, lp.parent
        while p is not None:
            d, p = d + 1, p.parent
        lp.depth = d
    return out


def innermost(loops: list[Loop]) -> list[Loop]:
    """The loops that hold no other loop."""
    return [lp for lp in loops if not any(o is not lp and o.body < lp.body for o in loops)]


@dataclass
class FlowGraph:
    """One function's CFG and loops."""

    function: Function
    blocks: list[Block]
    preds: list[list[int]]
    rpo: list[int]
    dom: list[set[int]]
    loops: list[Loop]


def flow_graph(fn: Function, isa: str) -> FlowGraph:
    blocks = basic_blocks(fn, isa)
    rpo, dom = dominators(blocks)
    return FlowGraph(fn, blocks, predecessors(blocks), rpo, dom, natural_loops(blocks, dom))


@dataclass(frozen=True)
class InnerLoop:
    """An innermost loop of an assembly text: its units in program order."""

    function: str
    label: str  # its first block's label (or `<function>+<unit>`), in program order
    units: tuple[Unit, ...]

    @property
    def raw(self) -> list[str]:
        return [ln for u in self.units for ln in u.raw]


def innermost_loops(
    asm: str, isa: str | None = None, funcs: Mapping[str, Function] | None = None
) -> list[InnerLoop]:
    """The innermost loops of every function of an assembly text, in program order (`funcs`:
    the text's `split_functions`, when the caller already has them)."""
    isa = isa or detect_isa(asm)
    out = []
    for fn in (funcs if funcs is not None else split_functions(asm, isa)).values():
        g = flow_graph(fn, isa)
        for lp in sorted(innermost(g.loops), key=lambda lp: min(lp.body)):
            order = sorted(lp.body)
            units = tuple(
                fn.units[u] for b in order for u in range(g.blocks[b].start, g.blocks[b].end)
            )
            out.append(InnerLoop(fn.name, g.blocks[order[0]].name, units))
    return out


def loop_bodies(asm: str, isa: str) -> list[list[str]]:
    """Printed lines of each innermost loop (Hexagon: with the packet braces, so that a timing
    model sees the packets)."""
    return [lp.raw for lp in innermost_loops(asm, isa)]
