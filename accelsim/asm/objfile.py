"""What the `.s` does not show and the assembled object does: the nops the assembler pads
`.p2align` with inside a function, which run when control falls through them. Read from the
object's ELF symbol table and code, and inserted into the functions' units."""

from __future__ import annotations

from pathlib import Path

from accelsim.asm.functions import Function, Unit
from accelsim.asm.isa import AsmError

_A64_NOP = 0xD503201F


def _hex_is_nop(word: int) -> bool:
    return word & 0xFFFF3FFF == 0x7F000000


def object_words(obj_path: str) -> dict[str, list[int]] | None:
    """Instruction words of every function (STT_FUNC symbol) of an ELF object, little-endian
    32-bit words, read from its sections; None if the file is missing."""
    import struct

    try:
        data = Path(obj_path).read_bytes()
    except OSError:
        return None
    if data[:4] != b"\x7fELF":
        raise AsmError(f"{obj_path}: not an ELF object")
    is64 = data[4] == 2
    if data[5] != 1:
        raise AsmError(f"{obj_path}: big-endian ELF objects are not supported")
    if is64:
        (shoff,) = struct.unpack_from("<Q", data, 0x28)
        shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    else:
        (shoff,) = struct.unpack_from("<I", data, 0x20)
        shentsize, shnum = struct.unpack_from("<HH", data, 0x2E)
    sections = []
    for i in range(shnum):
        o = shoff + i * shentsize
        if is64:
            _, typ, _, _, off, size, link, _, _, entsize = struct.unpack_from(
                "<IIQQQQIIQQ", data, o
            )
        else:
            _, typ, _, _, off, size, link, _, _, entsize = struct.unpack_from(
                "<IIIIIIIIII", data, o
            )
        sections.append((typ, off, size, link, entsize))
    out: dict[str, list[int]] = {}
    for typ, off, size, link, entsize in sections:
        if typ != 2:  # SHT_SYMTAB
            continue
        strtab = sections[link]
        step = entsize or (24 if is64 else 16)
        for o in range(off, off + size, step):
            if is64:
                name, info, _, shndx, value, sz = struct.unpack_from("<IBBHQQ", data, o)
            else:
                name, value, sz, info, _, shndx = struct.unpack_from("<IIIBBH", data, o)
            if info & 0xF != 2 or not 0 < shndx < len(sections) or not sz:  # STT_FUNC
                continue
            end = data.index(b"\0", strtab[1] + name)
            fname = data[strtab[1] + name : end].decode()
            base = sections[shndx][1] + value
            out[fname] = [
                int.from_bytes(data[base + k : base + k + 4], "little")
                for k in range(0, sz - sz % 4, 4)
            ]
    return out


def _hex_packets(words: list[int]) -> list[list[tuple[int, bool]]]:
    """Packets of (instructions in the word, is a nop); constant extenders count 0."""
    packets, cur = [], []
    for w in words:
        parse = (w >> 14) & 3
        if parse == 0:
            cur.append((2, False))
        elif (w >> 28) == 0:
            cur.append((0, False))
        else:
            cur.append((1, _hex_is_nop(w)))
        if parse in (0, 3):
            packets.append(cur)
            cur = []
    return packets


def add_padding(fn: Function, words: list[int], isa: str) -> int:
    """Insert the object's padding nops into `fn` (labels move with their units); returns the
    number of nops added."""
    units: list[Unit] = []
    moved: dict[int, int] = {}
    added = 0
    if isa == "x86_64":  # variable-length code: not read
        return 0
    if isa == "aarch64":
        j = 0
        for i, u in enumerate(fn.units):
            while j < len(words) and words[j] == _A64_NOP and u.lines[0] != "nop":
                units.append(Unit(["nop"], ["\tnop\t// alignment padding"]))
                added += 1
                j += 1
            moved[i] = len(units)
            units.append(u)
            j += 1
    else:
        pk = _hex_packets(words)
        j = 0
        for i, u in enumerate(fn.units):
            while (
                j < len(pk) and all(n for _, n in pk[j]) and not all(ln == "nop" for ln in u.lines)
            ):
                units.append(
                    Unit(
                        ["nop"] * len(pk[j]),
                        ["\t{", *["\t\tnop"] * len(pk[j]), "\t}\t// alignment padding"],
                    )
                )
                added += len(pk[j])
                j += 1
            moved[i] = len(units)
            if j < len(pk):
                extra = sum(c for c, _ in pk[j]) - len(u.lines)
                nops = sum(1 for _, n in pk[j] if n) - sum(1 for ln in u.lines if ln == "nop")
                if extra > 0 and nops >= extra:
                    u = Unit(
                        u.lines + ["nop"] * extra,
                        u.raw[:-1] + ["\t\tnop\t// alignment padding"] * extra + u.raw[-1:],
                        u.endloop,
                    )
                    added += extra
            units.append(u)
            j += 1
    fn.labels = {lab: moved.get(idx, len(units)) for lab, idx in fn.labels.items()}
    fn.units = units
    return added
