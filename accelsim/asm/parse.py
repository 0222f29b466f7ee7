"""Lines of assembly to `Instr` records, for every ISA: which lines are instructions, their
instruction class, and the instructions of a block (Hexagon: with their packets)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from accelsim.asm import aarch64, hexagon, x86
from accelsim.asm.functions import split_functions
from accelsim.asm.instr import Instr
from accelsim.asm.isa import check_isa, detect_isa, strip_comment


def clean(line: str, isa: str) -> str | None:
    """The instruction text of one line; None for labels, directives, comments, braces."""
    s = strip_comment(line, isa)
    if not s or s.startswith((".", "#", ";", "@")) or s.endswith(":"):
        return None
    if isa == "hexagon":
        s = s.strip("{} \t")
        # packet suffixes, not instructions: a hardware loop's end, and `:mem_noshuf` (the
        # packet's store and load keep their order: the addresses may alias)
        s = re.sub(r":endloop[01]|:mem_noshuf", "", s).strip()
        if not s:
            return None
    return s


def classify(line: str, isa: str) -> str | None:
    """Instruction class of one assembly line; None for labels, directives, comments, braces."""
    s = clean(line, check_isa(isa))
    if s is None:
        return None
    if isa == "aarch64":
        return aarch64.classify(s)[0]
    if isa == "hexagon":
        return hexagon.classify(s)
    return x86.classify(s)


def parse_line(text: str, isa: str, packet: int | None = None) -> list[Instr]:
    """The instructions of one instruction line (Hexagon: its `;`-separated parts)."""
    if isa == "hexagon":
        return [hexagon.instr(p.strip(), packet) for p in text.split(";") if p.strip()]
    return [aarch64.instr(text) if isa == "aarch64" else x86.instr(text)]


def parse(lines: Sequence[str], isa: str) -> list[Instr]:
    """The instructions of a block (labels, directives and comments dropped; Hexagon: packets
    numbered from the braces, an unbundled instruction a packet of its own)."""
    check_isa(isa)
    out: list[Instr] = []
    packet = -1
    in_packet = False
    for raw in lines:
        s = clean(raw, isa)
        if isa != "hexagon":
            if s is not None:
                out += parse_line(s, isa)
            continue
        body = raw.split("//")[0].strip()
        if body.startswith("{"):
            packet += 1
            in_packet = True
        if s is not None:
            if not in_packet:
                packet += 1
            out += parse_line(s, isa, packet)
        if "}" in body:
            in_packet = False
    return out


def count_mnemonic(asm: str, mnemonic: str) -> int:
    """Instructions of an assembly text's functions with mnemonic `mnemonic` (Hexagon: one
    that starts with it, as HVX spells variants of an operation with suffixes: vmpyie, vmpyio;
    a line with `;`-separated parts counts once)."""
    isa = detect_isa(asm)
    n = 0
    for fn in split_functions(asm, isa).values():
        for u in fn.units:
            for ln in u.lines:
                names = [i.mnemonic for i in parse_line(ln, isa)]
                if isa == "hexagon":
                    n += any(m.startswith(mnemonic) for m in names)
                else:
                    n += mnemonic in names
    return n
