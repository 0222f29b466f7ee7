"""Basic blocks and control-flow edges of one function: leaders at branch targets and after
branches, returns and `:endloop` packets; a Hexagon packet that closes a hardware loop has a
back edge to the nearest label above it that a `loopN` of the same number sets up."""

from __future__ import annotations

from dataclasses import dataclass, field

from accelsim.asm import aarch64, hexagon, x86
from accelsim.asm.functions import Function, Unit

_FLOW = {"aarch64": aarch64.flow, "hexagon": hexagon.flow, "x86_64": x86.flow}


@dataclass
class Block:
    """A basic block: units [start, end) of its function, successors (block indices)."""

    name: str
    start: int
    end: int  # exclusive unit index
    succ: list[int] = field(default_factory=list)
    cond: bool = False  # ends in a two-way decision
    back_hw: dict[int, str] = field(default_factory=dict)  # succ -> hw loop number
    calls: list[str] = field(default_factory=list)
    icalls: int = 0
    returns: bool = False
    indirect: bool = False


def unit_flow(unit: Unit, isa: str) -> list[tuple[str, str | None]]:
    """Control flow of a unit's instructions: (kind, target) with kind in
    jump | cjump | ret | cret | call | icall | ijump."""
    out = []
    for ln in unit.lines:
        out += _FLOW[isa](ln)
    return out


def basic_blocks(fn: Function, isa: str) -> list[Block]:
    """The basic blocks of `fn`, in program order, with their successors."""
    flows = [unit_flow(u, isa) for u in fn.units]
    targets = {t for fl in flows for k, t in fl if k in ("jump", "cjump")}
    hw_labels: dict[str, list[int]] = {}
    for i, u in enumerate(fn.units):
        for ln in u.lines:
            m = hexagon.LOOP_SETUP.search(ln)
            if m:
                targets.add(m.group(2))
                hw_labels.setdefault(m.group(2), []).append(i)
    leaders = {0}
    for lab, idx in fn.labels.items():
        if lab in targets and idx < len(fn.units):
            leaders.add(idx)
    for i, (u, fl) in enumerate(zip(fn.units, flows)):
        if any(k in ("jump", "cjump", "ret", "cret", "ijump") for k, _ in fl) or u.endloop:
            leaders.add(i + 1)
    leaders = sorted(x for x in leaders if x < len(fn.units))
    names_at: dict[int, str] = {}
    for lab, idx in sorted(fn.labels.items(), key=lambda kv: (not kv[0].startswith(".LBB"), kv[0])):
        names_at.setdefault(idx, lab)
    blocks: list[Block] = []
    for j, a in enumerate(leaders):
        b = leaders[j + 1] if j + 1 < len(leaders) else len(fn.units)
        blocks.append(Block(names_at.get(a, f"{fn.name}+{a}"), a, b))
    start_of = {bl.start: k for k, bl in enumerate(blocks)}

    def block_at(label: str) -> int | None:
        idx = fn.labels.get(label)
        return start_of.get(idx) if idx is not None else None

    for k, bl in enumerate(blocks):
        last = bl.end - 1
        fall = True
        for u in range(bl.start, bl.end):
            for kind, tgt in flows[u]:
                if kind == "call":
                    bl.calls.append(tgt)
                elif kind == "icall":
                    bl.icalls += 1
                elif u == last or isa == "hexagon":
                    if kind == "jump":
                        t = block_at(tgt)
                        if t is None:  # a tail call out of the function
                            bl.calls.append(tgt)
                            bl.returns = True
                        else:
                            bl.succ.append(t)
                        fall = False
                    elif kind == "cjump":
                        t = block_at(tgt)
                        if t is None:
                            bl.indirect = True
                        else:
                            bl.succ.append(t)
                            bl.cond = True
                    elif kind == "ret":
                        bl.returns = True
                        fall = False
                    elif kind == "cret":
                        bl.returns = True
                        bl.cond = True
                    elif kind == "ijump":
                        bl.indirect = True
                        fall = False
        for n in fn.units[last].endloop:
            # the hardware loop closed here: the nearest loopN target label above this packet
            cands = [
                (fn.labels[lab], lab)
                for lab, setups in hw_labels.items()
                if lab in fn.labels
                and fn.labels[lab] <= last
                and any(
                    hexagon.LOOP_SETUP.search(ln).group(1) == n
                    for s in setups
                    for ln in fn.units[s].lines
                    if hexagon.LOOP_SETUP.search(ln)
                )
            ]
            if cands:
                t = block_at(max(cands)[1])
                if t is not None:
                    bl.succ.append(t)
                    bl.back_hw[t] = n
                    bl.cond = True
        if fall and k + 1 < len(blocks):
            bl.succ.append(k + 1)
        bl.succ = list(dict.fromkeys(bl.succ))
        if len(bl.succ) < 2 and not (bl.returns and bl.succ):
            bl.cond = False
    return blocks


def predecessors(blocks: list[Block]) -> list[list[int]]:
    preds: list[list[int]] = [[] for _ in blocks]
    for i, b in enumerate(blocks):
        for s in b.succ:
            preds[s].append(i)
    return preds
