"""An assembly text split into functions: each a list of units (AArch64, x86-64: one
instruction; Hexagon: one VLIW packet `{ ... }`, with the hardware loops its `:endloop0/1`
closes) and the positions of its labels."""

from __future__ import annotations

import re
from dataclasses import dataclass

from accelsim.asm.hexagon import ENDLOOP
from accelsim.asm.isa import AsmError, is_label, strip_comment


@dataclass
class Unit:
    """AArch64, x86-64: one instruction. Hexagon: one packet."""

    lines: list[str]  # instruction texts
    raw: list[str]  # printed lines (Hexagon: with braces)
    endloop: tuple[str, ...] = ()  # Hexagon: hardware loops ("0", "1") this packet closes


@dataclass
class Function:
    name: str
    units: list[Unit]
    labels: dict[str, int]  # label -> unit index


def split_functions(asm: str, isa: str, where: str = "<asm>") -> dict[str, Function]:
    """The functions of an assembly text, in order: those `.type NAME,@function` declares, up
    to their `.Lfunc_end` label (hand-written text without `.type`: every label without a
    leading dot starts one). Directives and code outside functions are dropped."""
    names = set(re.findall(r"^\s*\.type\s+([\w.$]+)\s*,\s*@function", asm, re.M))
    declared = bool(names)
    funcs: dict[str, Function] = {}
    cur: Function | None = None
    packet: Unit | None = None
    for raw in asm.splitlines():
        s = strip_comment(raw, isa)
        if not s:
            continue
        if is_label(s) and packet is None:
            lab = s[:-1]
            if lab in names or (not declared and not lab.startswith(".")):
                cur = funcs.setdefault(lab, Function(lab, [], {}))
            elif lab.startswith(".Lfunc_end"):
                cur = None
            elif cur is not None:
                cur.labels[lab] = len(cur.units)
            continue
        if cur is None or s.startswith("."):
            continue
        if isa != "hexagon":
            cur.units.append(Unit([s], [raw.rstrip()]))
            continue
        if s.startswith("{"):
            packet = Unit([], [raw.rstrip()])
            s = s[1:].strip()
            if not s:
                continue
        if s.startswith("}"):
            if packet is None:
                raise AsmError(f"{where}: '}}' outside a packet in {cur.name}")
            m = ENDLOOP.search(s)
            packet.endloop = tuple(m.group(1)) if m else ()
            packet.raw.append(raw.rstrip())
            cur.units.append(packet)
            packet = None
            continue
        if packet is None:  # a lone instruction outside braces is a packet of its own
            cur.units.append(Unit([s], [raw.rstrip()]))
        else:
            packet.lines.append(s)
            packet.raw.append(raw.rstrip())
    if not funcs:
        raise AsmError(f"{where}: no function (.type NAME,@function) in the assembly")
    return funcs
