"""Dynamic instruction (Hexagon: packet) counts of one kernel call, predicted from its assembly.

The kernel's `.s` is split into functions and basic blocks (labels, branches, fall-through;
Hexagon packets `{ ... }`, hardware loops `loop0/1(label, #N | reg)` closed by
`:endloop0/1`). Natural loops come from the dominator tree.

A function with loops is walked: its scalar instructions run on concrete integers (arguments
and the stack pointer get distinct fake base addresses, stack spills are kept, loaded data and
vector registers are unknown), so counted loops, LLVM's padding compare chains (`cmp`/`ccmp`,
Hexagon predicates) and the flags it toggles across loop iterations all resolve alike. Loops
are summarised so that a full-size layer takes a fraction of a second: once two consecutive
iterations take the same path, every compare moves by a constant step and every scalar value
moves by a constant step, the iterations before the first one in which some compare could
change its sign are added at once (an iteration count solved, not walked); a value that does not
move by a constant step becomes unknown, and a nonlinear operation (`and`, `lsr`, division by
multiplication, a product of two moving values) whose inputs move blocks the summary, so the
loop is walked instead (exact, slower).

If the walk meets a branch on an unknown value it gives up and the older static analysis
decides: each loop's trip count from the code (a hardware-loop immediate or constant register;
an induction register with a constant start, step and limit), block executions propagated
through the CFG. Either way, branches whose side can never reach real work (a store to memory
that is not the stack, or a call of a local function that does work) are error exits that TVM
emits for failed argument checks or allocation failures, assumed not taken (the walk applies
this only where the condition is unknown). Any other undecided branch is reported in
`unresolved`, and the counts become a [minimum, maximum] range over the paths (exact for
loop-free functions such as TVM's packed-call wrapper, whose path depends on the type codes
and strides the caller passes).

count = sum over blocks of static size x executions; `blocks` carries each block's lines and
executions so that a timing model can weight every block by how often it runs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from accelsim.core.errors import AccelsimError

_MAX_STEPS = 50_000_000  # loops longer than this are not stepped (none of a layer's are)


class DynCountError(AccelsimError):
    """Assembly this module cannot parse into functions (the message names the file)."""


@dataclass(frozen=True)
class BlockCount:
    function: str
    label: str  # its label, or "<function>+<n>" for an unlabelled block
    lines: tuple[str, ...]  # instruction lines (Hexagon: with the packet braces)
    instructions: int  # static instructions in the block
    packets: int | None  # static packets (Hexagon)
    executions: int  # per call (the minimum where a branch is unresolved)
    executions_max: int
    loop: str | None  # header label of the innermost loop holding it
    in_loop: bool  # the block is part of a loop body (vs straight-line code)


@dataclass(frozen=True)
class LoopCount:
    function: str
    header: str
    depth: int  # 1 = outermost
    parent: str | None
    trip_count: int | None  # header executions per entry into the loop
    entries: int | None  # entries per call
    source: str  # how the trip count was found
    blocks: tuple[str, ...]


@dataclass(frozen=True)
class DynamicCount:
    """What one call of a kernel executes, predicted from its assembly."""

    arch: str  # aarch64 | hexagon
    entry: str  # the function the call enters
    instructions: int  # minimum over the unresolved branches (exact if none)
    instructions_max: int
    packets: int | None
    packets_max: int | None
    functions: Mapping[str, tuple[int, int]]  # name -> (min, max) instructions
    function_packets: Mapping[str, tuple[int, int]]  # Hexagon
    external_calls: Mapping[str, int]  # callee outside the object -> calls
    blocks: tuple[BlockCount, ...]
    loops: tuple[LoopCount, ...]
    unresolved: tuple[str, ...] = field(default=())  # data-dependent branches, unknown loops

    @property
    def exact(self) -> bool:
        return self.instructions == self.instructions_max and self.packets == self.packets_max


# ------------------------------------------------------------------------------------------
# parsing
# ------------------------------------------------------------------------------------------


@dataclass
class _Unit:
    """AArch64: one instruction. Hexagon: one packet."""

    lines: list[str]  # instruction texts
    raw: list[str]  # printed lines (Hexagon: with braces)
    endloop: tuple[str, ...] = ()  # Hexagon: hardware loops ("0", "1") this packet closes


@dataclass
class _Func:
    name: str
    units: list[_Unit]
    labels: dict[str, int]  # label -> unit index


def detect_arch(asm: str) -> str:
    return "hexagon" if re.search(r"^\s*\{\s*$", asm, re.M) else "aarch64"


def _strip(raw: str) -> str:
    return raw.split("//")[0].strip()


def _parse_functions(asm: str, arch: str, where: str) -> dict[str, _Func]:
    names = set(re.findall(r"^\s*\.type\s+([\w.$]+)\s*,\s*@function", asm, re.M))
    funcs: dict[str, _Func] = {}
    cur: _Func | None = None
    packet: _Unit | None = None
    for raw in asm.splitlines():
        s = _strip(raw)
        if not s:
            continue
        if s.endswith(":") and packet is None and not s.startswith("{"):
            lab = s[:-1]
            if lab in names:
                cur = funcs.setdefault(lab, _Func(lab, [], {}))
            elif lab.startswith(".Lfunc_end"):
                cur = None
            elif cur is not None:
                cur.labels[lab] = len(cur.units)
            continue
        if cur is None or s.startswith("."):
            continue
        if arch == "hexagon":
            if s.startswith("{"):
                packet = _Unit([], [raw.rstrip()])
                s = s[1:].strip()
                if not s:
                    continue
            if s.startswith("}"):
                if packet is None:
                    raise DynCountError(f"{where}: '}}' outside a packet in {cur.name}")
                m = re.search(r":endloop(\d+)", s)
                packet.endloop = tuple(m.group(1)) if m else ()
                packet.raw.append(raw.rstrip())
                cur.units.append(packet)
                packet = None
                continue
            if packet is None:  # a lone instruction outside braces is a packet of its own
                cur.units.append(_Unit([s], [raw.rstrip()]))
            else:
                packet.lines.append(s)
                packet.raw.append(raw.rstrip())
        else:
            cur.units.append(_Unit([s], [raw.rstrip()]))
    if not funcs:
        raise DynCountError(f"{where}: no function (.type NAME,@function) in the assembly")
    return funcs


# ------------------------------------------------------------------------------------------
# alignment padding: the assembler pads `.p2align` inside a function with nops, which run when
# control falls through them; the `.s` does not show them, the object's code does
# ------------------------------------------------------------------------------------------

_A64_NOP = 0xD503201F


def _hex_is_nop(word: int) -> bool:
    return word & 0xFFFF3FFF == 0x7F000000


def _object_words(obj_path: str) -> dict[str, list[int]] | None:
    """Instruction words of every function (STT_FUNC symbol) of an ELF object, little-endian
    32-bit words, read from its sections; None if the file is missing."""
    import struct

    try:
        data = Path(obj_path).read_bytes()
    except OSError:
        return None
    if data[:4] != b"\x7fELF":
        raise DynCountError(f"{obj_path}: not an ELF object")
    is64 = data[4] == 2
    if data[5] != 1:
        raise DynCountError(f"{obj_path}: big-endian ELF objects are not supported")
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


def _add_padding(fn: _Func, words: list[int], arch: str) -> int:
    """Insert the object's padding nops into `fn` (labels move with their units); returns the
    number of nops added."""
    units: list[_Unit] = []
    moved: dict[int, int] = {}
    added = 0
    if arch == "aarch64":
        j = 0
        for i, u in enumerate(fn.units):
            while j < len(words) and words[j] == _A64_NOP and u.lines[0] != "nop":
                units.append(_Unit(["nop"], ["\tnop\t// alignment padding"]))
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
                    _Unit(
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
                    u = _Unit(
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


# control flow of one unit: list of (kind, target) with kind in
# jump | cjump | ret | cret | call | icall | ijump | back0 | back1
_A64_COND = re.compile(r"^(b\.\w+|cbz|cbnz|tbz|tbnz)$")


def _a64_flow(text: str) -> list[tuple[str, str | None]]:
    parts = text.replace(",", " ").split()
    m = parts[0]
    if m == "b":
        return [("jump", parts[1])]
    if _A64_COND.match(m):
        return [("cjump", parts[-1])]
    if m == "ret":
        return [("ret", None)]
    if m == "br":
        return [("ijump", None)]
    if m == "bl":
        return [("call", parts[1])]
    if m == "blr":
        return [("icall", None)]
    return []


_HEX_JUMP = re.compile(r"\bjump(?::\w+)?\s+#*([\w.$@]+)\s*$")


def _hex_flow(text: str) -> list[tuple[str, str | None]]:
    cond = bool(re.search(r"\bif\s*\(", text))
    m = _HEX_JUMP.search(text)
    if m:
        return [("cjump" if cond else "jump", m.group(1))]
    if re.search(r"\b(jumpr\s+r31|dealloc_return)\b", text):
        return [("cret" if cond else "ret", None)]
    if re.search(r"\bjumpr\b", text):
        return [("ijump", None)]
    m = re.search(r"\bcall\s+#*([\w.$@]+)", text)
    if m:
        return [("call", m.group(1))]
    if re.search(r"\bcallr\b", text):
        return [("icall", None)]
    return []


_HEX_LOOP = re.compile(r"\b(?:sp\d)?loop([01])\(\s*#*([\w.$]+)\s*,\s*(#*-?\w+)\s*\)")


@dataclass
class _Block:
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


def _flow(unit: _Unit, arch: str) -> list[tuple[str, str | None]]:
    out = []
    for ln in unit.lines:
        out += _a64_flow(ln) if arch == "aarch64" else _hex_flow(ln)
    return out


def _blocks(fn: _Func, arch: str) -> list[_Block]:
    flows = [_flow(u, arch) for u in fn.units]
    targets = {t for fl in flows for k, t in fl if k in ("jump", "cjump")}
    hw_labels: dict[str, list[int]] = {}
    for i, u in enumerate(fn.units):
        for ln in u.lines:
            m = _HEX_LOOP.search(ln)
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
    blocks: list[_Block] = []
    for j, a in enumerate(leaders):
        b = leaders[j + 1] if j + 1 < len(leaders) else len(fn.units)
        blocks.append(_Block(names_at.get(a, f"{fn.name}+{a}"), a, b))
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
                elif u == last or arch == "hexagon":
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
                    _HEX_LOOP.search(ln).group(1) == n
                    for s in setups
                    for ln in fn.units[s].lines
                    if _HEX_LOOP.search(ln)
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


# ------------------------------------------------------------------------------------------
# loops
# ------------------------------------------------------------------------------------------


def _dominators(blocks: list[_Block]) -> tuple[list[int], list[set[int]]]:
    n = len(blocks)
    preds = [[] for _ in range(n)]
    for i, b in enumerate(blocks):
        for s in b.succ:
            preds[s].append(i)
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


@dataclass
class _Loop:
    header: int
    body: set[int]
    latches: list[int]
    parent: _Loop | None = None
    depth: int = 1
    trip: int | None = None
    source: str = ""


def _natural_loops(blocks, dom) -> list[_Loop]:
    preds = [[] for _ in blocks]
    for i, b in enumerate(blocks):
        for s in b.succ:
            preds[s].append(i)
    loops: dict[int, _Loop] = {}
    for u, b in enumerate(blocks):
        for h in b.succ:
            if h in dom[u]:
                lp = loops.setdefault(h, _Loop(h, {h}, []))
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


# ------------------------------------------------------------------------------------------
# trip counts
# ------------------------------------------------------------------------------------------


def _reg(r: str, arch: str) -> str:
    r = r.strip().lstrip("#")
    if arch == "aarch64" and re.fullmatch(r"[wx]\d+", r):
        return "x" + r[1:]
    if arch == "aarch64" and r in ("wzr", "xzr"):
        return "xzr"
    return r


def _const_def(text: str, reg: str, arch: str) -> tuple[bool, int | None]:
    """(writes `reg`, its constant value if the write is a constant)."""
    if arch == "aarch64":
        p = text.replace(",", " ").split()
        if len(p) < 2 or p[0].startswith(("st", "b", "cb", "tb", "cmp", "cmn", "tst")):
            return False, None
        dsts = [p[1]] + ([p[2]] if p[0] in ("ldp", "ldpsw") else [])
        if reg not in (_reg(d, arch) for d in dsts):
            return False, None
        if p[0] in ("mov", "movz") and len(p) == 3:
            if p[2] in ("xzr", "wzr"):
                return True, 0
            m = re.fullmatch(r"#(-?(?:0x[0-9a-fA-F]+|\d+))", p[2])
            if m:
                return True, int(m.group(1), 0)
        if p[0] == "orr" and len(p) == 4 and p[2] in ("xzr", "wzr"):
            m = re.fullmatch(r"#(-?(?:0x[0-9a-fA-F]+|\d+))", p[3])
            if m:
                return True, int(m.group(1), 0)
        return True, None
    # hexagon: "rX = #imm" / "rX = ##imm"; pairs "r1:0 = combine(#a,#b)" are not tracked
    m = re.match(r"^(?:if\s*\([^)]*\)\s*)?([\w:]+)\s*=", text)
    if not m:
        return False, None
    dst = m.group(1)
    regs = set()
    if ":" in dst and dst.startswith("r"):
        hi, lo = dst[1:].split(":")
        regs = {f"r{hi}", f"r{lo}"}
    else:
        regs = {dst}
    if reg not in regs:
        return False, None
    m = re.fullmatch(r"[\w:]+\s*=\s*#+(-?\d+)", text)
    if m and ":" not in dst:
        return True, int(m.group(1))
    return True, None


def _find_const(
    fn: _Func,
    blocks,
    preds,
    start_block: int,
    before_unit: int,
    reg: str,
    arch: str,
    stop: set[int],
    dom=None,
) -> int | None:
    """The constant `reg` holds at unit `before_unit` of `start_block`, looking back through
    single-predecessor blocks (not entering `stop`)."""
    if reg == "xzr":
        return 0
    b, upto = start_block, before_unit
    for _ in range(64):
        bl = blocks[b]
        for u in range(upto - 1, bl.start - 1, -1):
            for ln in reversed(fn.units[u].lines):
                w, v = _const_def(ln, reg, arch)
                if w:
                    return v
        ps = [p for p in preds[b] if p not in stop]
        if len(ps) > 1 and dom is not None:
            # a loop header: enter from outside, if no block of the loop writes `reg`
            inside = [p for p in ps if b in dom[p]]
            body = {x for x in range(len(blocks)) if b in dom[x]}
            if inside and not any(
                _const_def(ln, reg, arch)[0] or _step_of(ln, reg, arch)[0]
                for x in body
                for u in range(blocks[x].start, blocks[x].end)
                for ln in fn.units[u].lines
            ):
                ps = [p for p in ps if p not in inside]
        if len(ps) != 1:
            return None
        b = ps[0]
        upto = blocks[b].end
    return None


_A64_CC = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "lo": lambda a, b: a < b,
    "cc": lambda a, b: a < b,
    "ls": lambda a, b: a <= b,
    "hi": lambda a, b: a > b,
    "hs": lambda a, b: a >= b,
    "cs": lambda a, b: a >= b,
}
_HEX_CMP = {
    "eq": lambda a, b: a == b,
    "gt": lambda a, b: a > b,
    "gtu": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "geu": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "ltu": lambda a, b: a < b,
}


def _step_of(text: str, reg: str, arch: str) -> tuple[bool, int | None]:
    """(writes `reg`, the constant it adds if the write is reg = reg +/- const)."""
    if arch == "aarch64":
        p = text.replace(",", " ").split()
        if (
            len(p) >= 4
            and p[0] in ("add", "sub", "adds", "subs")
            and _reg(p[1], arch) == reg
            and _reg(p[2], arch) == reg
        ):
            m = re.fullmatch(r"#(\d+)", p[3])
            if m and len(p) == 4:
                v = int(m.group(1))
                return True, v if p[0].startswith("add") else -v
        w, _ = _const_def(text, reg, arch)
        if w:
            return True, None
        # post-indexed loads/stores write back their base register
        m = re.search(r"\[(\w+)\]\s*,\s*#(-?\d+)$", text) or re.search(
            r"\[(\w+)\s*,\s*#(-?\d+)\]!$", text
        )
        if m and _reg(m.group(1), arch) == reg:
            return True, int(m.group(2))
        return False, None
    m = re.fullmatch(r"(r\d+)\s*=\s*add\((r\d+),\s*#(-?\d+)\)", text)
    if m and m.group(1) == reg and m.group(2) == reg:
        return True, int(m.group(3))
    w, _ = _const_def(text, reg, arch)
    if w:
        return True, None
    m = re.search(r"\((r\d+)\+\+#(-?\d+)", text)  # post-increment addressing
    if m and m.group(1) == reg:
        return True, None
    return False, None


def _exit_test(fn: _Func, bl: _Block, arch: str):
    """The exiting branch's test: (induction reg, limit operand, predicate(value, limit) ->
    branch taken, index of the flag-setting unit, index of the instruction in it)."""
    last = bl.end - 1
    if arch == "aarch64":
        br = fn.units[last].lines[0].replace(",", " ").split()
        if br[0] in ("cbz", "cbnz"):
            reg = _reg(br[1], arch)
            return reg, "#0", (_A64_CC["eq"] if br[0] == "cbz" else _A64_CC["ne"]), last, 0, False
        if not br[0].startswith("b."):
            return None
        cc = _A64_CC.get(br[0][2:])
        if cc is None:
            return None
        for u in range(last - 1, bl.start - 1, -1):
            p = fn.units[u].lines[0].replace(",", " ").split()
            if p[0] == "cmp" and len(p) == 3:
                return _reg(p[1], arch), p[2], cc, u, 0, False
            if p[0] in ("subs", "adds") and len(p) == 4 and p[1] == p[2]:
                return _reg(p[1], arch), "#0", cc, u, 0, True
            if p[0] in ("cmn", "tst", "ands", "bics", "ccmp", "fcmp"):
                return None
        return None
    # hexagon: "p0 = cmp.eq(r1,#5); if (!p0.new) jump:t L" or a separate compare
    texts = [(u, i, ln) for u in range(bl.start, bl.end) for i, ln in enumerate(fn.units[u].lines)]
    jumps = [t for t in texts if _HEX_JUMP.search(t[2]) and "if" in t[2]]
    if len(jumps) != 1:
        return None
    ju, ji, jl = jumps[0]
    m = re.search(r"if\s*\((!?)(p\d)(\.new)?\)", jl)
    if not m:
        return None
    neg, pred = m.group(1) == "!", m.group(2)
    for u, i, ln in reversed(texts):
        if (u, i) > (ju, ji) and not (u == ju and i == ji):
            continue
        c = re.search(rf"\b{pred}\s*=\s*(!?)cmp\.(\w+)\((r\d+)\s*,\s*(#?-?\w+)\)", ln)
        if c:
            f = _HEX_CMP.get(c.group(2))
            if f is None:
                return None
            inv = (c.group(1) == "!") != neg
            return c.group(3), c.group(4), (lambda a, b, f=f, inv=inv: f(a, b) != inv), u, i, False
    return None


def _induction_trip(
    fn: _Func, blocks, preds, dom, lp: _Loop, arch: str, loops: list[_Loop]
) -> int | None:
    exits = [b for b in lp.body if any(s not in lp.body for s in blocks[b].succ)]
    if len(exits) != 1:
        return None
    x = exits[0]
    if not all(x in dom[l] for l in lp.latches):
        return None
    test = _exit_test(fn, blocks[x], arch)
    if test is None:
        return None
    reg, limit_op, taken, fu, fi, self_update = test
    stays_if_taken = (
        blocks[x].succ and any(s in lp.body for s in blocks[x].succ[:-1])
        if arch == "hexagon"
        else None
    )
    # which branch side stays in the loop: the taken target or the fall-through
    last_flow = (
        _flow(fn.units[blocks[x].end - 1], arch)
        if arch == "aarch64"
        else [f for u in range(blocks[x].start, blocks[x].end) for f in _flow(fn.units[u], arch)]
    )
    tgt = next((t for k, t in last_flow if k == "cjump"), None)
    tgt_block = (
        next((i for i, b in enumerate(blocks) if fn.labels.get(tgt) == b.start), None)
        if tgt
        else None
    )
    if tgt_block is None:
        return None
    stays_if_taken = tgt_block in lp.body
    # the induction update: one reg = reg + c per iteration, in a block that runs every iteration
    steps = []
    for b in lp.body:
        for u in range(blocks[b].start, blocks[b].end):
            for i, ln in enumerate(fn.units[u].lines):
                w, c = _step_of(ln, reg, arch)
                if w:
                    steps.append((b, u, i, c))
    if len(steps) != 1 or steps[0][3] is None:
        return None
    sb, su, si, step = steps[0]
    if not all(sb in dom[l] for l in lp.latches) or lp.header not in dom[sb]:
        return None
    inner = [o for o in loops if o is not lp and o.body < lp.body]
    if any(sb in o.body for o in inner):
        return None
    # does the exit test see the updated value?
    if self_update:
        before = True
    elif sb == x:
        before = (su, si) < (fu, fi) if arch == "hexagon" else su < fu
        if arch == "hexagon" and su == fu:  # same packet: the compare reads the old value
            before = False
    else:
        before = sb in dom[x] and sb != x
    set(range(len(blocks))) - lp.body
    ph = [p for p in preds[lp.header] if p not in lp.body]
    if len(ph) != 1:
        return None
    init = _find_const(fn, blocks, preds, ph[0], blocks[ph[0]].end, reg, arch, lp.body)
    if limit_op.startswith("#"):
        limit = int(limit_op.lstrip("#"), 0)
    else:
        lreg = _reg(limit_op, arch)
        if any(
            _const_def(ln, lreg, arch)[0] or _step_of(ln, lreg, arch)[0]
            for b in lp.body
            for u in range(blocks[b].start, blocks[b].end)
            for ln in fn.units[u].lines
        ):
            return None
        limit = _find_const(fn, blocks, preds, ph[0], blocks[ph[0]].end, lreg, arch, lp.body)
    if init is None or limit is None:
        return None
    v, n = init, 0
    while n < _MAX_STEPS:
        n += 1  # an execution of the header
        if before:
            v += step
        t = taken(v, limit)
        if not before:
            v += step
        if t != stays_if_taken:
            return n
    return None


def _hw_trip(fn: _Func, blocks, preds, lp: _Loop, arch: str, dom=None) -> tuple[int | None, str]:
    labels = {lab for lab, idx in fn.labels.items() if idx == blocks[lp.header].start}
    for b, bl in enumerate(blocks):
        if b in lp.body:
            continue
        for u in range(bl.start, bl.end):
            for ln in fn.units[u].lines:
                m = _HEX_LOOP.search(ln)
                if m and m.group(2) in labels:
                    op = m.group(3)
                    if op.startswith("#"):
                        return int(op.lstrip("#")), f"hardware loop{m.group(1)} immediate"
                    v = _find_const(fn, blocks, preds, b, u, op, arch, lp.body, dom)
                    if v is not None:
                        return v, f"hardware loop{m.group(1)} count register {op}"
                    return None, ""
    return None, ""


# ------------------------------------------------------------------------------------------
# scalar control interpreter: walks a function's CFG with concrete integers for the scalar
# registers (pointers get distinct fake base addresses, loaded data is unknown), skipping vector
# work, so that padding compare chains, toggled flags and counted loops all resolve alike.
# Loops are summarised: once two consecutive iterations of a loop take the same path and
# every scalar value moves by a constant step, the iterations up to the first one in which a
# compare could change its outcome are added at once (their count is solved, not walked).
# ------------------------------------------------------------------------------------------

_M64 = (1 << 64) - 1
_M32 = (1 << 32) - 1
_SAMPLES = 2  # identical iterations needed before a loop is summarised
# walked AArch64 instructions / Hexagon packets per call before giving up (about 2-8 s)
_BUDGET = {"aarch64": 3_000_000, "hexagon": 1_000_000}
_SCAN = 4096  # outer-loop steps over which an inner summary is re-checked


class _Unresolved(Exception):
    """The interpreter met a value it cannot know (the message says where)."""


def _sgn(v: int, w: int) -> int:
    v &= (1 << w) - 1
    return v - (1 << w) if v >> (w - 1) else v


class _St:
    __slots__ = ("r", "mem", "pw", "log", "fresh", "arch")

    def __init__(self, arch):
        self.r: dict = {}
        self.mem: dict = {}
        self.pw: dict | None = None  # Hexagon: writes of the current packet
        self.log: list = []
        self.fresh = 0
        self.arch = arch


# fake addresses: arguments, the stack, symbols (a call's result is unknown)
_LAYOUT = {
    "aarch64": dict(arg=1 << 40, sp=1 << 47, sym=1 << 45, gap=1 << 34, bits=64),
    "hexagon": dict(arg=1 << 24, sp=0x40000000, sym=0x60000000, gap=1 << 24, bits=32),
}
_STACK_WINDOW = 1 << 20


def _in_stack(st, addr):
    sp0 = _LAYOUT[st.arch]["sp"]
    return sp0 - _STACK_WINDOW <= addr < sp0 + (1 << 16)


def _load(st, addr, size):
    if addr is None:
        return None
    if not _in_stack(st, addr):
        return None
    e = st.mem.get(addr)
    if e is not None and e[1] == size:
        return e[0]
    if size == 8 and e is not None and e[1] == 4 and (addr + 4) in st.mem:
        hi = st.mem[addr + 4]
        return None if e[0] is None or hi[0] is None or hi[1] != 4 else (hi[0] << 32) | e[0]
    sp0 = _LAYOUT[st.arch]["sp"]
    if addr >= sp0 and e is None:  # incoming stack arguments: pointers
        lay = _LAYOUT[st.arch]
        return lay["arg"] + (16 + (addr - sp0) // 4) * lay["gap"]
    return None


def _store(st, addr, size, value, old_mem=None):
    if addr is None:
        # a store to an unknown address: if it could hit the stack we no longer know it
        return
    if not _in_stack(st, addr):
        return
    for a in [a for a in st.mem if a < addr + size and a + st.mem[a][1] > addr]:
        del st.mem[a]
    st.mem[addr] = (value, size)


# ---------------------------------- AArch64 ------------------------------------------------

_A64_GPR = re.compile(r"^(?:[wx](?:\d+|zr)|w?sp)$")
_A64_VEC = re.compile(r"^[vqdsbh]\d+")


def _a64_split(rest: str) -> list[str]:
    out, cur, depth = [], "", 0
    for ch in rest:
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def _a64_key(tok):
    if tok in ("sp", "wsp"):
        return "sp"
    if tok in ("xzr", "wzr"):
        return None
    return "x" + tok[1:]


def _a64_imm(tok):
    t = tok.lstrip("#")
    try:
        return int(t, 0)
    except ValueError:
        return None


def _cc(f, cc):
    """Condition `cc` from flags f = (kind, a, b, width)."""
    if f is None:
        return None
    kind = f[0]
    if kind == "imm":
        n, z, c, v = (f[1] >> 3) & 1, (f[1] >> 2) & 1, (f[1] >> 1) & 1, f[1] & 1
    else:
        _, a, b, w = f
        if a is None or b is None:
            return None
        m = (1 << w) - 1
        ua, ub = a & m, b & m
        if kind == "sub":
            res = (ua - ub) & m
            c = int(ua >= ub)
            s = _sgn(ua, w) - _sgn(ub, w)
        elif kind == "add":
            res = (ua + ub) & m
            c = int(ua + ub > m)
            s = _sgn(ua, w) + _sgn(ub, w)
        else:  # and
            res, c, s = ua & ub, 0, 0
        n, z = res >> (w - 1), int(res == 0)
        v = int(kind != "and" and not -(1 << (w - 1)) <= s < (1 << (w - 1)))
    t = {
        "eq": z,
        "ne": not z,
        "hs": c,
        "cs": c,
        "lo": not c,
        "cc": not c,
        "mi": n,
        "pl": not n,
        "vs": v,
        "vc": not v,
        "hi": c and not z,
        "ls": not (c and not z),
        "ge": n == v,
        "lt": n != v,
        "gt": (not z) and n == v,
        "le": not ((not z) and n == v),
        "al": True,
        "nv": True,
    }.get(cc)
    return None if t is None else bool(t)


_INV = {
    "eq": "ne",
    "ne": "eq",
    "hs": "lo",
    "cs": "cc",
    "lo": "hs",
    "cc": "cs",
    "mi": "pl",
    "pl": "mi",
    "vs": "vc",
    "vc": "vs",
    "hi": "ls",
    "ls": "hi",
    "ge": "lt",
    "lt": "ge",
    "gt": "le",
    "le": "gt",
}


def _log_cmp(st, site, kind, a, b, w):
    if a is None or b is None:
        st.log.append(("t", site))
        return
    m = (1 << w) - 1
    ua, ub = a & m, b & m
    if kind == "sub":
        st.log.append(("s", site, _sgn(ua, w) - _sgn(ub, w), ua - ub))
    elif kind == "add":
        st.log.append(("s", site, _sgn(ua, w) + _sgn(ub, w), ua + ub - (1 << w)))
    else:
        st.log.append(("n", site, ua, ub))


def _a64_decode(text: str, site):
    """A function(st) -> control or None. Control: ("b", label) | ("ret",) | None."""
    parts = text.split(None, 1)
    mn = parts[0]
    ops = _a64_split(parts[1]) if len(parts) > 1 else []
    R = _a64_reader
    if mn == "b":
        lab = ops[0]
        return lambda st: ("b", lab)
    if mn.startswith("b.") and len(ops) == 1:
        cc, lab = mn[2:], ops[0]

        def f(st):
            t = _cc(st.r.get("f"), cc)
            return ("c", t, lab)

        return f
    if mn in ("cbz", "cbnz"):
        rd, lab, zero = R(ops[0]), ops[1], mn == "cbz"

        def f(st):
            v = rd(st)
            if v is None:
                st.log.append(("t", site))
                return ("c", None, lab)
            st.log.append(("s", site, v, v))
            return ("c", (v == 0) == zero, lab)

        return f
    if mn in ("tbz", "tbnz"):
        rd, bit, lab, zero = R(ops[0]), _a64_imm(ops[1]), ops[2], mn == "tbz"

        def f(st):
            v = rd(st)
            if v is None:
                st.log.append(("t", site))
                return ("c", None, lab)
            st.log.append(("n", site, v))
            return ("c", ((v >> bit) & 1 == 0) == zero, lab)

        return f
    if mn in ("ret",):
        return lambda st: ("ret",)
    if mn in ("br",):
        return lambda st: ("ind",)
    if mn in ("bl", "blr"):

        def f(st):
            _clobber(st)
            return None

        return f
    if mn in ("nop", "prfm", "hint", "yield", "dmb", "isb"):
        return None
    if not ops:
        return None
    # writeback addressing of any load/store (vector ones included)
    wb = _a64_writeback(ops)
    dst_gpr = bool(_A64_GPR.match(ops[0]))
    if mn.startswith(("ld", "st")) and not mn.startswith(("stlr",)):
        return _a64_mem(mn, ops, wb)
    if not dst_gpr and mn not in ("cmp", "cmn", "tst", "ccmp", "ccmn"):
        return wb  # vector work: no scalar effect
    return _a64_alu(mn, ops, site) or _a64_top(ops)


def _a64_top(ops):
    k = _a64_key(ops[0]) if _A64_GPR.match(ops[0]) else None

    def f(st):
        if k:
            st.r[k] = None

    return f


def _clobber(st):
    for i in range(19):
        st.r[f"x{i}"] = None
    st.r["f"] = None


def _a64_reader(tok):
    """A reader of a register or immediate operand; None for what it cannot read."""
    if tok.startswith("#"):
        v = _a64_imm(tok)
        return lambda st: v
    if tok in ("xzr", "wzr"):
        return lambda st: 0
    if not _A64_GPR.match(tok):
        return lambda st: None
    k = _a64_key(tok)
    if tok.startswith("w"):

        def r(st):
            v = st.r.get(k)
            return None if v is None else v & _M32

        return r
    return lambda st: st.r.get(k)


def _a64_writer(tok):
    k = _a64_key(tok)
    m = _M32 if tok.startswith("w") else _M64

    def w(st, v):
        if k is not None:
            st.r[k] = None if v is None else v & m

    return w


def _shift_mod(tok):
    """'lsl #2' / 'sxtw #2' / 'uxtw' ... -> function(value, width) or None if not a modifier."""
    p = tok.split()
    if p[0] in (
        "lsl",
        "lsr",
        "asr",
        "sxtw",
        "uxtw",
        "sxth",
        "uxth",
        "sxtb",
        "uxtb",
        "sxtx",
        "uxtx",
        "ror",
    ):
        k = _a64_imm(p[1]) if len(p) > 1 else 0

        def f(v, w, op=p[0], k=k):
            if v is None:
                return None
            if op == "lsl":
                return v << k
            if op == "lsr":
                return (v & ((1 << w) - 1)) >> k
            if op == "asr":
                return _sgn(v, w) >> k
            if op == "ror":
                return None
            bits = {"b": 8, "h": 16, "w": 32, "x": 64}[op[3]]
            x = v & ((1 << bits) - 1)
            if op[0] == "s":
                x = _sgn(x, bits)
            return x << k

        return f, p[0]
    return None


def _a64_operand2(ops, i, site=None):
    """Reader of operand i with an optional shift/extend modifier after it; a right shift or
    a zero-extension is logged like the instruction of its own (nonlinear)."""
    base = _a64_reader(ops[i])
    if i + 1 < len(ops):
        sm = _shift_mod(ops[i + 1])
        if sm:
            fn, kind = sm
            w = 32 if ops[0].startswith("w") else 64
            if kind in ("lsr", "asr"):
                k = _a64_imm(ops[i + 1].split()[1])

                def rd(st):
                    x = base(st)
                    if x is not None:
                        st.log.append(("h", site, x, k))
                    return fn(x, w)

                return rd, kind
            if kind in ("ror", "uxtb", "uxth", "uxtw"):

                def rd(st):
                    x = base(st)
                    if x is not None:
                        st.log.append(("n", site, x))
                    return fn(x, w)

                return rd, kind
            return (lambda st: fn(base(st), w)), kind
    return base, None


def _a64_alu(mn, ops, site):
    W = _a64_writer(ops[0])
    w = 32 if ops[0].startswith("w") else 64
    n = len(ops)
    if mn in ("mov", "movz") and n == 2:
        src = ops[1]
        if _A64_VEC.match(src):
            return None
        r = _a64_reader(src)
        return lambda st: W(st, r(st))
    if mn in ("mov", "movz") and n == 3 and ops[1].startswith("#"):
        v = _a64_imm(ops[1]) << (_a64_imm(ops[2].split()[1]) if ops[2].startswith("lsl") else 0)
        return lambda st: W(st, v)
    if mn == "movn" and n >= 2:
        v = ~(_a64_imm(ops[1]) << (_a64_imm(ops[2].split()[1]) if n == 3 else 0))
        return lambda st: W(st, v)
    if mn == "movk":
        imm = _a64_imm(ops[1])
        sh = _a64_imm(ops[2].split()[1]) if n == 3 else 0
        rd = _a64_reader(ops[0])

        def f(st):
            o = rd(st)
            W(st, None if o is None else (o & ~(0xFFFF << sh)) | (imm << sh))

        return f
    if mn in ("adrp", "adr"):
        v = _LAYOUT["aarch64"]["sym"] + (hash(ops[1]) & 0xFFFFFF) * 4096
        return lambda st: W(st, v)
    if mn in ("add", "sub", "adds", "subs", "cmp", "cmn", "neg", "negs"):
        if mn in ("cmp", "cmn"):
            ops = ["xzr" if ops[0].startswith("x") else "wzr", *ops]
            mn = "subs" if mn == "cmp" else "adds"
            w = 32 if ops[1].startswith("w") else 64
        if mn in ("neg", "negs"):
            ops = [ops[0], "xzr", *ops[1:]]
            mn = "sub" if mn == "neg" else "subs"
        W = _a64_writer(ops[0])
        a = _a64_reader(ops[1])
        b, _ = _a64_operand2(ops, 2, site)
        sub = mn.startswith("sub")
        flags = mn.endswith("s")

        def f(st):
            x, y = a(st), b(st)
            if flags:
                _log_cmp(st, site, "sub" if sub else "add", x, y, w)
                st.r["f"] = ("sub" if sub else "add", x, y, w)
            W(st, None if x is None or y is None else (x - y if sub else x + y))

        return f
    if mn in ("and", "ands", "orr", "eor", "bic", "bics", "orn", "eon", "tst"):
        if mn == "tst":
            ops = ["xzr" if ops[0].startswith("x") else "wzr", *ops]
            mn = "ands"
            w = 32 if ops[1].startswith("w") else 64
        W = _a64_writer(ops[0])
        a = _a64_reader(ops[1])
        b, _ = _a64_operand2(ops, 2, site)
        m = (1 << w) - 1

        def f(st, mn=mn):
            x, y = a(st), b(st)
            if x is None or y is None:
                v = None
            elif mn.startswith("and"):
                v = x & y
            elif mn == "orr":
                v = x | y
            elif mn == "eor":
                v = x ^ y
            elif mn.startswith("bic"):
                v = x & ~y
            elif mn == "orn":
                v = x | (~y & m)
            else:
                v = x ^ (~y & m)
            if x is not None and y is not None and not (mn == "orr" and x & y == 0):
                st.log.append(("n", site, x, y))  # affine only while its inputs hold still
            if mn.endswith("s"):
                st.r["f"] = None if v is None else ("and", x, y, w)
                if v is None:
                    st.log.append(("t", site))
            W(st, v)

        return f
    if mn in ("lsl", "lsr", "asr", "ror") and n == 3:
        a = _a64_reader(ops[1])
        k = _a64_imm(ops[2]) if ops[2].startswith("#") else None
        b = _a64_reader(ops[2])

        def f(st, mn=mn):
            x = a(st)
            s = k if k is not None else b(st)
            if x is None or s is None:
                return W(st, None)
            s %= w
            if mn == "lsl":
                v = x << s
            elif mn == "lsr":
                v = (x & ((1 << w) - 1)) >> s
            elif mn == "asr":
                v = _sgn(x, w) >> s
            else:
                v = ((x & ((1 << w) - 1)) >> s) | (x << (w - s))
            if mn != "lsl" or k is None:
                st.log.append(("h", site, x, s))  # x >> s: affine if x's step is 2^s-aligned
            W(st, v)

        return f
    if mn in (
        "mul",
        "madd",
        "msub",
        "mneg",
        "smull",
        "umull",
        "smaddl",
        "umaddl",
        "smsubl",
        "umsubl",
    ):
        a, b = _a64_reader(ops[1]), _a64_reader(ops[2])
        c = _a64_reader(ops[3]) if n > 3 else (lambda st: 0)
        neg = mn in ("msub", "mneg", "smsubl", "umsubl")
        sx = mn.startswith("s") and mn != "smull" or mn == "smull"
        wide = mn.endswith("l")

        def f(st):
            x, y, z = a(st), b(st), c(st)
            if x is None or y is None or z is None:
                return W(st, None)
            if wide:
                x, y = (_sgn(x, 32), _sgn(y, 32)) if sx else (x & _M32, y & _M32)
            st.log.append(("m", site, x, y))
            W(st, z - x * y if neg else z + x * y)

        return f
    if mn in ("udiv", "sdiv", "umulh", "smulh"):
        a, b = _a64_reader(ops[1]), _a64_reader(ops[2])

        def f(st, mn=mn):
            x, y = a(st), b(st)
            if x is None or y is None or (mn.endswith("div") and y == 0):
                return W(st, None)
            st.log.append(("n", site, x, y))
            if mn == "udiv":
                v = (x & ((1 << w) - 1)) // (y & ((1 << w) - 1))
            elif mn == "sdiv":
                p, q = _sgn(x, w), _sgn(y, w)
                v = abs(p) // abs(q) * (1 if (p < 0) == (q < 0) else -1)
            elif mn == "umulh":
                v = ((x & _M64) * (y & _M64)) >> 64
            else:
                v = (_sgn(x, 64) * _sgn(y, 64)) >> 64
            W(st, v)

        return f
    if mn in ("sxtw", "sxth", "sxtb", "uxtw", "uxth", "uxtb"):
        a = _a64_reader(ops[1])
        bits = {"b": 8, "h": 16, "w": 32}[mn[3]]

        def f(st, mn=mn):
            x = a(st)
            if x is None:
                return W(st, None)
            y = x & ((1 << bits) - 1)
            if mn[0] == "s":
                y = _sgn(y, bits)
            else:
                st.log.append(("n", site, x))
            W(st, y)

        return f
    if mn in ("ubfx", "sbfx", "ubfiz", "sbfiz") and n == 4:
        a = _a64_reader(ops[1])
        lsb, width = _a64_imm(ops[2]), _a64_imm(ops[3])

        def f(st, mn=mn):
            x = a(st)
            if x is None:
                return W(st, None)
            st.log.append(("n", site, x))
            if mn.endswith("fx"):
                y = (x >> lsb) & ((1 << width) - 1)
                if mn[0] == "s":
                    y = _sgn(y, width)
            else:
                y = x & ((1 << width) - 1)
                if mn[0] == "s":
                    y = _sgn(y, width)
                y <<= lsb
            W(st, y)

        return f
    if mn in ("csel", "csinc", "csinv", "csneg", "cset", "csetm", "cinc", "cinv", "cneg"):
        if mn in ("cset", "csetm"):
            z = "wzr" if ops[0].startswith("w") else "xzr"
            ops = [ops[0], z, z, _INV[ops[1]]]
            mn = "csinc" if mn == "cset" else "csinv"
        elif mn in ("cinc", "cinv", "cneg"):
            ops = [ops[0], ops[1], ops[1], _INV[ops[2]]]
            mn = "cs" + mn[1:]
        a, b, cc = _a64_reader(ops[1]), _a64_reader(ops[2]), ops[3]
        m = (1 << w) - 1

        def f(st, mn=mn):
            t = _cc(st.r.get("f"), cc)
            if t is None:
                return W(st, None)
            if t:
                return W(st, a(st))
            y = b(st)
            if y is None:
                return W(st, None)
            W(
                st,
                y if mn == "csel" else y + 1 if mn == "csinc" else ~y & m if mn == "csinv" else -y,
            )

        return f
    if mn in ("ccmp", "ccmn"):
        w = 32 if ops[0].startswith("w") else 64
        a, b = _a64_reader(ops[0]), _a64_reader(ops[1])
        nzcv, cc = _a64_imm(ops[2]), ops[3]
        kind = "sub" if mn == "ccmp" else "add"

        def f(st):
            x, y = a(st), b(st)
            _log_cmp(st, site, kind, x, y, w)
            t = _cc(st.r.get("f"), cc)
            st.r["f"] = None if t is None else (kind, x, y, w) if t else ("imm", nzcv)

        return f
    return None


_A64_ADDR = re.compile(r"^\[\s*(\w+)\s*(?:,\s*([^\]]+))?\]\s*(!)?$")


def _a64_writeback(ops):
    """Base-register update of a post-indexed or pre-indexed address (vector ones too)."""
    for i, t in enumerate(ops):
        if t.startswith("["):
            m = _A64_ADDR.match(t)
            if not m:
                return None
            base = m.group(1)
            post = ops[i + 1] if i + 1 < len(ops) else None
            if m.group(3) and m.group(2):
                off = _a64_imm(m.group(2))
            elif post is not None:
                off = _a64_imm(post) if post.startswith("#") else None
                if off is None:
                    rr = _a64_reader(post)
                    rb, wb = _a64_reader(base), _a64_writer(base)

                    def f(st, rb=rb, rr=rr, wb=wb):
                        x, y = rb(st), rr(st)
                        wb(st, None if x is None or y is None else x + y)

                    return f
            else:
                return None
            rb, wb = _a64_reader(base), _a64_writer(base)

            def f(st, rb=rb, wb=wb, off=off):
                x = rb(st)
                wb(st, None if x is None else x + off)

            return f
    return None


_A64_SIZE = {"b": 1, "h": 2, "w": 4, "x": 8, "s": 4, "d": 8, "q": 16}


def _a64_mem(mn, ops, wb):
    idx = next((i for i, t in enumerate(ops) if t.startswith("[")), None)
    if idx is None:
        return wb
    m = _A64_ADDR.match(ops[idx])
    if not m:
        return _a64_top(ops)
    base = _a64_reader(m.group(1))
    post = idx + 1 < len(ops)
    off = 0
    offr = None
    if m.group(2) and not post:
        sub = _a64_split(m.group(2))
        if sub[0].startswith("#"):
            off = _a64_imm(sub[0])
        elif sub[0].startswith(":"):

            def offr(st):
                return None
        else:
            offr = _a64_reader(sub[0])
            if len(sub) > 1:
                rr = _a64_reader(sub[0])
                sm = _shift_mod(sub[1])
                offr = (lambda st, rr=rr, fn=sm[0]: fn(rr(st), 64)) if sm else (lambda st: None)
    regs = ops[:idx]
    pair = mn.startswith(("ldp", "stp", "ldnp", "stnp"))
    load = mn.startswith("ld")
    if regs and regs[0].startswith("{"):
        return wb  # ld1/st1 lists: vector data only
    tok = regs[0]
    if mn.endswith(("b", "sb")) and not mn.startswith(("ldp", "stp")):
        size = 1
    elif mn.endswith(("h", "sh")):
        size = 2
    elif mn.endswith("sw"):
        size = 4
    else:
        size = _A64_SIZE.get(tok[0], 8)
    signed = mn.startswith("ldrs") or mn.startswith("ldurs") or mn == "ldpsw"
    readers = [_a64_reader(t) for t in regs]
    writers = [_a64_writer(t) if _A64_GPR.match(t) else None for t in regs]
    gpr = [bool(_A64_GPR.match(t)) for t in regs]

    def f(st):
        b = base(st)
        o = off if offr is None else offr(st)
        addr = None if b is None or o is None else (b + o if not post else b)
        for j in range(len(regs) if pair else 1):
            a = None if addr is None else addr + j * size
            if load:
                if writers[j]:
                    v = _load(st, a, size)
                    if v is not None and signed:
                        v = _sgn(v, 8 * size)
                    writers[j](st, v)
            else:
                if gpr[j]:
                    _store(st, a, size, readers[j](st))
                elif a is not None and _in_stack(st, a):
                    _store(st, a, size, None)
                elif a is None:
                    pass
        if wb is not None:
            wb(st)

    return f


# ---------------------------------- Hexagon ------------------------------------------------

_HEX_ALIAS = {"sp": "r29", "fp": "r30", "lr": "r31"}
_HEX_SIZE = {"memb": 1, "memub": 1, "memh": 2, "memuh": 2, "memw": 4, "memd": 8}
_HVX_BYTES = 128


def _hex_tok(s: str):
    """Tokens of a Hexagon expression."""
    return re.findall(r"##?-?[\w.@]+|[\w.]+(?::\d+)?|\+\+|<<|[(),+!~-]|\S", s)


class _HexParse:
    def __init__(self, s):
        self.t = _hex_tok(s)
        self.i = 0

    def peek(self):
        return self.t[self.i] if self.i < len(self.t) else None

    def take(self):
        self.i += 1
        return self.t[self.i - 1]

    def expr(self):
        neg = None
        if self.peek() in ("!", "+", "-", "~"):
            neg = self.take()
        tok = self.take()
        if tok.startswith("#"):
            node = (
                ("imm", int(tok.lstrip("#").split("@")[0], 0))
                if re.fullmatch(r"##?-?(0x[0-9a-fA-F]+|\d+)", tok)
                else ("sym", tok)
            )
        elif self.peek() == "(":
            self.take()
            args = []
            while self.peek() not in (")", None):
                args.append(self.expr())
                if self.peek() == ",":
                    self.take()
                elif self.peek() not in (")", None):
                    args.append(("op", self.take()))
            self.take()
            while self.peek() == ":" or (self.peek() or "").startswith(":"):
                self.take()
                if self.peek() and re.fullmatch(r"\w+", self.peek()):
                    self.take()
            node = ("call", tok, args)
        else:
            node = _hex_operand(tok)
        if neg:
            node = ("neg", neg, node)
        return node


def _hex_operand(tok):
    new = tok.endswith(".new")
    t = tok[:-4] if new else tok
    t = _HEX_ALIAS.get(t, t)
    m = re.fullmatch(r"r(\d+):(\d+)", t)
    if m:
        return ("pair", f"r{m.group(1)}", f"r{m.group(2)}", new)
    if re.fullmatch(r"[rp]\d+|lc[01]|sa[01]|m[01]|pc|gp|usr", t):
        return ("reg", t, new)
    return ("other", tok)


def _hread(st, key, new):
    if new:
        return st.pw.get(key)
    return st.r.get(key)


def _hex_eval(node, st, site):
    k = node[0]
    if k == "imm":
        return node[1]
    if k == "reg":
        return _hread(st, node[1], node[2])
    if k == "pair":
        hi, lo = _hread(st, node[1], node[3]), _hread(st, node[2], node[3])
        return None if hi is None or lo is None else (hi << 32) | lo
    if k == "sym":
        return _LAYOUT["hexagon"]["sym"] + (hash(node[1]) & 0xFFF) * 4096
    if k == "neg":
        v = _hex_eval(node[2], st, site)
        if node[1] == "!":
            return None if v is None else not v
        if node[1] == "-":
            return None if v is None else (-v) & _M32
        return v
    if k != "call":
        return None
    name, args = node[1], node[2]
    if name in _HEX_SIZE or name in ("memb", "memh"):
        addr = _hex_addr(args, st, site)
        v = _load(st, addr, _HEX_SIZE[name])
        if v is not None and name in ("memb", "memh"):
            v = _sgn(v, 8 * _HEX_SIZE[name]) & _M32
        return v
    if name in ("and", "or") and len(args) == 2 and args[1] == ("neg", "!", args[0]):
        return name == "or"  # p and !p, p or !p: LLVM's way to set a constant
    vals = [_hex_eval(a, st, site) for a in args]
    if any(v is None for v in vals) and name not in ("mux",):
        if name.startswith("cmp.") or name in ("tstbit", "bitsclr", "bitsset"):
            st.log.append(("t", site))
        return None
    if name.startswith("cmp."):
        a, b = vals
        c = name[4:]
        sa, sb = _sgn(a, 32), _sgn(b, 32)
        ua, ub = a & _M32, b & _M32
        st.log.append(("s", site, sa - sb, ua - ub))
        return {
            "eq": ua == ub,
            "gt": sa > sb,
            "gtu": ua > ub,
            "ge": sa >= sb,
            "geu": ua >= ub,
            "lt": sa < sb,
            "ltu": ua < ub,
        }.get(c)
    if name == "tstbit":
        st.log.append(("n", site, vals[0]))
        return bool((vals[0] >> vals[1]) & 1)
    if name in ("bitsclr", "bitsset"):
        st.log.append(("n", site, vals[0], vals[1]))
        x = vals[0] & vals[1]
        return x == 0 if name == "bitsclr" else x == vals[1]
    if name in ("add", "sub") and len(vals) == 2:
        a, b = vals
        if isinstance(a, bool) or isinstance(b, bool):
            return None
        return (a + b if name == "add" else a - b) & _M32
    if name in ("mpyi", "+mpyi") and len(vals) == 2:
        st.log.append(("m", site, vals[0], vals[1]))
        return (vals[0] * vals[1]) & _M32
    if name == "addasl":
        st.log.append(("m", site, vals[1], 1 << vals[2]))
        return (vals[0] + (vals[1] << vals[2])) & _M32
    if name == "asl" and len(vals) == 2:
        if args[1][0] != "imm":
            st.log.append(("n", site, vals[1]))
        return (vals[0] << (vals[1] & 63)) & _M32 if _sgn(vals[1], 32) >= 0 else None
    if name in ("lsr", "asr") and len(vals) == 2:
        st.log.append(("h", site, vals[0], vals[1]))
        s = vals[1] & 63
        return ((vals[0] & _M32) >> s if name == "lsr" else _sgn(vals[0], 32) >> s) & _M32
    if name in ("and", "or", "xor") and len(vals) == 2:
        a, b = vals
        if isinstance(a, bool) or isinstance(b, bool):
            a, b = bool(a), bool(b)
            return a and b if name == "and" else a or b if name == "or" else a != b
        if not (name == "or" and a & b == 0):
            st.log.append(("n", site, a, b))
        return a & b if name == "and" else a | b if name == "or" else a ^ b
    if name in ("min", "max", "minu", "maxu"):
        a, b = vals
        st.log.append(("s", site, _sgn(a, 32) - _sgn(b, 32), (a & _M32) - (b & _M32)))
        if name.endswith("u"):
            return min(a, b) if name == "minu" else max(a, b)
        return (
            min(_sgn(a, 32), _sgn(b, 32)) if name == "min" else max(_sgn(a, 32), _sgn(b, 32))
        ) & _M32
    if name == "mux":
        p = vals[0]
        if p is None:
            return None
        return vals[1] if p else vals[2]
    if name in ("setbit", "clrbit", "togglebit"):
        st.log.append(("n", site, vals[0]))
        b = 1 << vals[1]
        return (
            vals[0] | b if name == "setbit" else vals[0] & ~b if name == "clrbit" else vals[0] ^ b
        ) & _M32
    if name == "combine" and len(vals) == 2:
        return ((vals[0] & _M32) << 32) | (vals[1] & _M32)
    if name in ("sxtb", "sxth"):
        return _sgn(vals[0], 8 if name == "sxtb" else 16) & _M32
    if name in ("zxtb", "zxth"):
        st.log.append(("n", site, vals[0]))
        return vals[0] & (0xFF if name == "zxtb" else 0xFFFF)
    if name == "not" and len(vals) == 1:
        return (not vals[0]) if isinstance(vals[0], bool) else ~vals[0] & _M32
    if name == "neg":
        return -vals[0] & _M32
    return None


def _hex_addr(args, st, site, scale=1):
    """Address of memX(...) operands: base [+ offset | + reg << k]; post-increment reads
    the base (the engine applies the increment). `scale`: bytes per immediate unit (vmem
    offsets count vectors)."""
    if not args:
        return None
    base = _hex_eval(args[0], st, site)
    if len(args) == 1:
        return base
    rest = args[1:]
    ops = [a[1] for a in rest if a[0] == "op"]
    vals = [a for a in rest if a[0] != "op"]
    if "++" in ops:
        return base
    if base is None:
        return None
    if not vals:
        return base
    off = _hex_eval(vals[0], st, site)
    if off is None:
        return None
    if "<<" in ops and len(vals) > 1:
        off <<= _hex_eval(vals[1], st, site) or 0
    elif vals[0][0] == "imm":
        off *= scale
    return (base + off) & _M32


def _hex_postinc(args, vector):
    """(base register, increment in bytes) of an `rX++#n` address, else None."""
    if len(args) >= 3 and args[0][0] == "reg" and any(a == ("op", "++") for a in args):
        inc = [a for a in args[1:] if a[0] == "imm"]
        if inc:
            return args[0][1], inc[0][1] * (_HVX_BYTES if vector else 1)
        return args[0][1], None
    return None


def _hex_dests(dst: str):
    d = _HEX_ALIAS.get(dst, dst)
    m = re.fullmatch(r"r(\d+):(\d+)", d)
    if m:
        return [f"r{m.group(1)}", f"r{m.group(2)}"]
    return [d]


_HEX_COND = re.compile(r"^if\s*\((.*?)\)\s*(.*)$")


def _hex_cond_expr(c):
    """A jump/predication condition: pN, !pN.new, cmp.xx(...), rN==#0 ..."""
    m = re.fullmatch(r"\s*(r\d+(?:\.new)?)\s*(==|!=|>=|<=)\s*#(-?\d+)\s*", c)
    if m:
        op = {"==": "cmp.eq", "!=": "cmp.eq", ">=": "cmp.ge", "<=": "cmp.ge"}[m.group(2)]
        a, b = _hex_operand(m.group(1)), ("imm", int(m.group(3)))
        node = ("call", op, [a, b] if m.group(2) != "<=" else [b, a])
        return ("neg", "!", node) if m.group(2) == "!=" else node
    return _HexParse(c).expr()


def _hex_decode(text: str, site):
    """A function(st) -> control or None for one Hexagon instruction (part of a packet)."""
    t = text.strip()
    cond = None
    if _HEX_COND.match(t):
        # find the matching parenthesis of the condition
        depth, j = 0, t.index("(")
        for j in range(t.index("("), len(t)):
            depth += t[j] == "("
            depth -= t[j] == ")"
            if depth == 0:
                break
        cond = _hex_cond_expr(t[t.index("(") + 1 : j])
        t = t[j + 1 :].strip()
    body = _hex_body(t, site)

    if cond is None:
        return body

    def f(st):
        c = _hex_eval(cond, st, site)
        if c is None:
            if body is None:
                return None
            ctl = body(st, predicated=None)
            if ctl and ctl[0] != "b":
                raise _Unresolved(f"a return or indirect jump under an unknown predicate: {t}")
            return ("c", None, ctl[1]) if ctl else None
        if c:
            return body(st) if body else None
        if body is not None:
            ctl = body(st, skip=True)
            if ctl and ctl[0] == "b":
                return ("c", False, ctl[1])
        return None

    return f


def _hex_body(t: str, site):
    m = re.fullmatch(r"jump(?::\w+)?\s+#*([\w.$@]+)", t)
    if m:
        lab = m.group(1)

        def f(st, skip=False, predicated=True):
            return ("b", lab) if not skip else ("b", lab)

        return f
    if re.fullmatch(r"jumpr\s+r31|(?:r31:30\s*=\s*)?dealloc_return(?:\(r30\))?(?::raw)?", t):

        def f(st, skip=False, predicated=True):
            if skip:
                return None
            return ("ret",)

        return f
    if t.startswith("jumpr"):
        return lambda st, skip=False, predicated=True: None if skip else ("ind",)
    if re.match(r"call[r]?\b", t):

        def f(st, skip=False, predicated=True):
            if not skip:
                for i in range(16):
                    st.pw[f"r{i}"] = None
                for p in ("p0", "p1", "p2", "p3"):
                    st.pw[p] = None
            return None

        return f
    m = re.fullmatch(
        r"(?:(p3)\s*=\s*sp(\d)loop0|loop([01]))"
        r"\(\s*#*([\w.$]+)\s*,\s*(#*-?\w+)\s*\)",
        t,
    )
    if m:
        n = "0" if m.group(1) else m.group(3)
        lab, cnt = m.group(4), m.group(5)
        src = ("imm", int(cnt.lstrip("#"))) if cnt.startswith("#") else _hex_operand(cnt)
        sp = int(m.group(2)) if m.group(1) else 0

        def f(st, skip=False, predicated=True):
            if skip:
                return None
            st.pw["lc" + n] = _hex_eval(src, st, site)
            st.pw["sa" + n] = lab
            if n == "0":
                st.pw["lpcfg"] = sp
                if sp:
                    st.pw["p3"] = False
            return None

        return f
    m = re.fullmatch(r"allocframe\((?:r29\s*,\s*)?#(\d+)\)(?::raw)?", t)
    if m:
        n = int(m.group(1))

        def f(st, skip=False, predicated=True):
            sp = st.r.get("r29")
            if sp is None:
                st.pw["r29"] = st.pw["r30"] = None
                return None
            _store(st, sp - 8, 4, st.r.get("r30"))
            _store(st, sp - 4, 4, st.r.get("r31"))
            st.pw["r30"] = sp - 8
            st.pw["r29"] = sp - 8 - n
            return None

        return f
    if re.fullmatch(r"(?:r31:30\s*=\s*)?deallocframe(?:\(r30\))?(?::raw)?", t):

        def f(st, skip=False, predicated=True):
            fp = st.r.get("r30")
            st.pw["r29"] = None if fp is None else fp + 8
            st.pw["r30"] = _load(st, fp, 4) if fp is not None else None
            st.pw["r31"] = None
            return None

        return f
    m = re.fullmatch(r"(v?mem\w*)\((.*)\)\s*=\s*(.+)", t)
    if m:
        return _hex_store(m.group(1), m.group(2), m.group(3), site)
    m = re.fullmatch(r"([\w:.]+)\s*([+\-|&^]?=)\s*(.+)", t)
    if not m:
        return None
    dst, op, rhs = m.group(1), m.group(2), m.group(3)
    if re.match(r"^[vqw]\d", dst) or dst.startswith(("v", "q")):
        # vector destination; a vmem load with post-increment still moves its base
        vm = re.search(r"vmem\w*\((.*?)\)", rhs)
        if vm:
            pinc = _hex_postinc(_HexParse(f"x({vm.group(1)})").expr()[2], True)
            if pinc:
                return _hex_inc(pinc)
        return None
    dests = _hex_dests(dst)
    try:
        tree = _HexParse(rhs).expr()
    except (IndexError, ValueError):
        tree = ("other", rhs)
    pinc = None
    if tree[0] == "call" and tree[1] in _HEX_SIZE:
        pinc = _hex_postinc(tree[2], False)
    inc_f = _hex_inc(pinc) if pinc else None
    if (
        op == "="
        and tree[0] == "call"
        and tree[1] == "add"
        and tree[2]
        and tree[2][0] == ("reg", "pc", False)
    ):

        def val_f(st):
            return _LAYOUT["hexagon"]["sym"] + (hash(rhs) & 0xFFF) * 4096
    else:

        def val_f(st):
            return _hex_eval(tree, st, site)

    def f(st, skip=False, predicated=True):
        if skip:
            return None
        v = val_f(st) if predicated is not None else None
        if op != "=" and v is not None:
            old = _hex_eval(_hex_operand(dst), st, site)
            if old is None or isinstance(v, bool):
                v = None
            else:
                if op == "+=":
                    v = old + v
                elif op == "-=":
                    v = old - v
                else:
                    st.log.append(("n", site, old, v))
                    v = old | v if op == "|=" else old & v if op == "&=" else old ^ v
        if (
            len(dests) == 2
            and op == "="
            and tree[0] == "call"
            and tree[1] == "combine"
            and len(tree[2]) == 2
            and predicated is not None
        ):
            # halves of a pair are separate registers: one may be known without the other
            hi, lo = (_hex_eval(a, st, site) for a in tree[2])
            st.pw[dests[0]] = None if hi is None or isinstance(hi, bool) else hi & _M32
            st.pw[dests[1]] = None if lo is None or isinstance(lo, bool) else lo & _M32
        elif len(dests) == 2:
            st.pw[dests[0]] = None if v is None else (v >> 32) & _M32
            st.pw[dests[1]] = None if v is None else v & _M32
        else:
            d = dests[0]
            if d.startswith("p"):
                st.pw[d] = None if v is None else bool(v)
            else:
                st.pw[d] = None if v is None or isinstance(v, bool) else v & _M32
        if inc_f:
            inc_f(st)
        return None

    return f


def _hex_inc(pinc):
    reg, inc = pinc

    def f(st, skip=False, predicated=True):
        if skip:
            return None
        v = st.r.get(reg)
        st.pw[reg] = None if v is None or inc is None else (v + inc) & _M32
        return None

    return f


def _hex_store(mn, addr_s, src_s, site):
    vector = mn.startswith("v")
    args = _HexParse(f"x({addr_s})").expr()[2]
    pinc = _hex_postinc(args, vector)
    inc_f = _hex_inc(pinc) if pinc else None
    size = _HEX_SIZE.get(mn, 128 if vector else 4)
    src = (
        None
        if vector
        else _hex_operand(src_s.strip())
        if not src_s.strip().startswith("#")
        else ("imm", int(src_s.strip().lstrip("#"), 0))
    )

    def f(st, skip=False, predicated=True):
        if skip:
            return None
        a = _hex_addr(args, st, site, _HVX_BYTES if vector else 1)
        if a is not None and _in_stack(st, a):
            if vector or src is None or predicated is None:
                _store(st, a, size, None)
            elif src[0] == "pair":
                hi, lo = _hread(st, src[1], src[3]), _hread(st, src[2], src[3])
                _store(st, a, 4, lo)
                _store(st, a + 4, 4, hi)
            else:
                v = _hex_eval(src, st, site)
                _store(st, a, size, None if v is None else v & ((1 << (8 * size)) - 1))
        if inc_f:
            inc_f(st)
        return None

    return f


# ---------------------------------- the walk -----------------------------------------------


def _first_change(v: int, d: int) -> float:
    """Smallest t >= 1 at which sign(v + t*d) differs from sign(v) (inf if never)."""
    if d == 0:
        return float("inf")
    if v == 0:
        return 1
    if (v > 0) == (d > 0):
        return float("inf")
    a, b = abs(v), abs(d)
    return -(-a // b)


def _flat(st) -> dict:
    out = {}
    for k, v in st.r.items():
        if isinstance(v, tuple):
            for i, x in enumerate(v):
                out[(k, i)] = x
        else:
            out[k] = v
    for a, (v, size) in st.mem.items():
        out[("m", a, size)] = v
    return out


def _unflat(st, flat: dict):
    r, mem, tup = {}, {}, {}
    for k, v in flat.items():
        if isinstance(k, tuple) and k[0] == "m":
            mem[k[1]] = (v, k[2])
        elif isinstance(k, tuple):
            tup.setdefault(k[0], {})[k[1]] = v
        else:
            r[k] = v
    for k, parts in tup.items():
        r[k] = tuple(parts[i] for i in range(len(parts)))
    st.r, st.mem = r, mem


def _is_num(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _affine(seq):
    """Common step of a sequence of values, 0 for equal non-numbers, None if not affine."""
    if all(_is_num(v) for v in seq):
        d = seq[1] - seq[0]
        return d if all(seq[i + 1] - seq[i] == d for i in range(len(seq) - 1)) else None
    return 0 if all(v == seq[0] and type(v) is type(seq[0]) for v in seq) else None


def _affine_reg(seq):
    """(step, mask) of a register or stack value: a constant step modulo 2^32 or 2^64 (a
    32-bit counter wraps through zero as an unsigned value), (0, None) for equal non-numbers,
    None if it does not move by a constant step."""
    if not all(_is_num(v) for v in seq):
        return (0, None) if all(v == seq[0] and type(v) is type(seq[0]) for v in seq) else None
    for bits in (32, 64):
        if bits == 32 and any(v >> 32 for v in seq):
            continue
        m = (1 << bits) - 1
        d = ((seq[1] - seq[0] + (1 << (bits - 1))) & m) - (1 << (bits - 1))
        if all((seq[i + 1] - seq[i] - d) & m == 0 for i in range(len(seq) - 1)):
            return d, m
    return None


def _uniform_from(y: int) -> int:
    """Lowest bit L such that bits L and up of `y` (as 32- or 64-bit) are all equal."""
    w = 32 if y < (1 << 32) else 64
    top = (y >> (w - 1)) & 1
    L = w - 1
    while L > 0 and (y >> (L - 1)) & 1 == top:
        L -= 1
    return L


def _masked_affine(vals, steps) -> bool:
    """x & m, x | m, x ^ m with m fixed and x stepping by a multiple of 2^L, where m's bits
    from L up are all equal (an alignment mask such as #-128 or #127): the low bits of x hold
    still and the high ones pass through or vanish, so the result moves by a constant step."""
    if len(vals) != 2:
        return False
    for dx, y, dy in ((steps[0], vals[1], steps[1]), (steps[1], vals[0], steps[0])):
        if dy == 0 and _is_num(y) and dx % (1 << _uniform_from(y & _M64)) == 0:
            return True
    return False


class _Frame:
    __slots__ = ("loop", "samples")

    def __init__(self, loop):
        self.loop = loop
        self.samples = []


def _summarise(st, fr: _Frame, counts: list, mask: int) -> bool:
    """Skip the iterations of `fr`'s loop that must repeat the last ones (see the section
    comment); True if it skipped any."""
    S = fr.samples
    logs = [st.log[S[i][2] : S[i + 1][2]] for i in range(len(S) - 1)]
    sig = [(e[0], e[1]) for e in logs[0]]
    if any(len(lg) != len(sig) or [(e[0], e[1]) for e in lg] != sig for lg in logs[1:]):
        return False
    last = logs[-1]
    limit = float("inf")
    skips = []
    for j, (kind, _site) in enumerate(sig):
        if kind == "t":
            continue
        vals = [lg[j][2:] for lg in logs]
        steps = [_affine([v[i] for v in vals]) for i in range(len(vals[0]))]
        if any(s is None for s in steps):
            return False
        if kind == "s":
            for i in range(2):
                limit = min(limit, _first_change(last[j][2 + i], steps[i]) - 1)
        elif kind == "n":
            if any(steps) and not _masked_affine(last[j][2:], steps):
                return False
        elif kind == "m":
            if steps[0] and steps[1]:
                return False
        elif kind == "h":
            if steps[1] or steps[0] % (1 << last[j][3]):
                return False
        elif kind == "k":
            if steps[0]:
                return False
            pairs = last[j][3:]
            ds = steps[1:]
            if any(ds[i + 1] for i in range(0, len(ds), 2)):
                return False
            skips.append((last[j][2], pairs, ds))
    if limit == float("inf") or limit < 1:
        return False
    if skips:
        limit = min(limit, _SCAN)
        for m_in, pairs, ds in skips:
            for t in range(1, int(limit) + 1):
                m = min(
                    (
                        _first_change(pairs[i] + t * ds[i], pairs[i + 1]) - 1
                        for i in range(0, len(pairs), 2)
                    ),
                    default=float("inf"),
                )
                if m != m_in:
                    limit = t - 1
                    break
        if limit < 1:
            return False
    # values that do not move by a constant step become unknown: a later decision that
    # reads one is reported unresolved rather than guessed
    states = [S[i][0] for i in range(len(S))]
    keys = set().union(*(s.keys() for s in states))
    dstate = {k: _affine_reg([s.get(k) for s in states]) for k in keys}
    cnts = [S[i][1] for i in range(len(S))]
    dc = [cnts[-1][i] - cnts[-2][i] for i in range(len(counts))]
    if any(
        cnts[i + 1][x] - cnts[i][x] != dc[x]
        for i in range(len(cnts) - 2)
        for x in range(len(counts))
    ):
        return False
    M = int(limit)
    cur = _flat(st)
    new = {}
    for k, v in cur.items():
        d = dstate.get(k, (0, None))
        new[k] = (
            None if d is None else (v + M * d[0]) & (d[1] or mask) if _is_num(v) and d[0] else v
        )
    _unflat(st, new)
    for x in range(len(counts)):
        counts[x] += M * dc[x]
    params = []
    for j, (kind, _site) in enumerate(sig):
        if kind == "s":
            for i in range(2):
                d = last[j][2 + i] - logs[-2][j][2 + i]
                params += [last[j][2 + i], d]
    st.log.append(("k", ("skip", id(fr.loop)), M, *params))
    return True


def _interpret(
    fn: _Func,
    blocks: list[_Block],
    loops: list[_Loop],
    arch: str,
    reach: list[bool],
    summarise: bool = True,
):
    """Block and edge executions of one call of `fn`, found by walking it; raises
    _Unresolved where a branch depends on a value it cannot know."""
    decode = _a64_decode if arch == "aarch64" else _hex_decode
    dec = []
    for ui, u in enumerate(fn.units):
        fs = []
        for li, ln in enumerate(u.lines):
            parts = [ln] if arch == "aarch64" else ln.split(";")
            for pi, p in enumerate(parts):
                if not p.strip():
                    continue
                d = decode(p.strip(), (ui, li, pi))
                if d is not None:
                    fs.append(d)
        dec.append(fs)
    start_of = {b.start: k for k, b in enumerate(blocks)}
    # TVM's workspace calls go through a GOT slot: they are taken to succeed, as the
    # error-exit rule assumes (Alloc returns a fresh non-null pointer, Free returns 0)
    ret_key = "x0" if arch == "aarch64" else "r0"
    for ui, u in enumerate(fn.units):
        if not any(re.search(r"\b(callr|blr)\b", ln) for ln in u.lines):
            continue
        first = max((b.start for b in blocks if b.start <= ui), default=0)
        near = [
            m.group(1)
            for v in range(ui, first - 1, -1)
            for ln in fn.units[v].lines
            for m in [re.search(r"(?:##|:got_lo12:|:got:)(\w+)", ln)]
            if m
        ]
        name = near[0] if near else ""
        value = (
            _LAYOUT[arch]["arg"] * (40 + ui)
            if "AllocWorkspace" in name
            else 0
            if "FreeWorkspace" in name
            else None
        )
        if value is None:
            continue

        def result(st, v=value, k=ret_key):
            (st.r if arch == "aarch64" else st.pw)[k] = v

        dec[ui].append(result)
    nb = len(blocks)
    edge_id: dict[tuple[int, int], int] = {}
    for k, b in enumerate(blocks):
        for s in b.succ:
            edge_id[(k, s)] = nb + len(edge_id)
    counts = [0] * (nb + len(edge_id))
    header_of = {lp.header: lp for lp in loops}
    lay = _LAYOUT[arch]
    mask = (1 << lay["bits"]) - 1
    st = _St(arch)
    if arch == "aarch64":
        for i in range(8):
            st.r[f"x{i}"] = lay["arg"] * (i + 1)
        st.r["sp"] = lay["sp"]
    else:
        for i in range(6):
            st.r[f"r{i}"] = lay["arg"] * (i + 1)
        st.r["r29"] = lay["sp"]
        st.r["r30"] = None
    frames: list[_Frame] = []

    def label_block(lab):
        idx = fn.labels.get(lab)
        if idx is None or idx not in start_of:
            raise _Unresolved(f"jump to {lab}, not a block of {fn.name}")
        return start_of[idx]

    ret_reg = "x0" if arch == "aarch64" else "r0"
    fail_cache: dict[int, bool] = {}

    def failing(k: int) -> bool:
        """The straight path from block k returns a nonzero constant (TVM's -1: failure)."""
        if k not in fail_cache:
            val, seen, j = None, set(), k
            while j not in seen:
                seen.add(j)
                for u in range(blocks[j].start, blocks[j].end):
                    for ln in fn.units[u].lines:
                        for part in ln.split(";"):
                            w, v = _const_def(part.strip(), ret_reg, arch)
                            if w:
                                val = v
                if blocks[j].returns and not blocks[j].cond:
                    break
                if len(blocks[j].succ) != 1 or blocks[j].cond:
                    val = None
                    break
                j = blocks[j].succ[0]
            fail_cache[k] = bool(val)
        return fail_cache[k]

    b = 0
    steps = 0
    while True:
        steps += blocks[b].end - blocks[b].start
        if steps > _BUDGET[arch]:
            raise _Unresolved(
                f"{fn.name}: more than {_BUDGET[arch]} instructions or packets to walk"
            )
        counts[b] += 1
        bl = blocks[b]
        nxt = None
        ret = False
        for u in range(bl.start, bl.end):
            st.pw = {}
            ctls = []
            for f in dec[u]:
                c = f(st)
                if c is not None:
                    ctls.append(c)
            if arch == "hexagon":
                st.r.update(st.pw)
            taken = None
            for j, c in enumerate(ctls):
                if c[0] == "ret":
                    taken = "ret"
                    break
                if c[0] == "ind":
                    raise _Unresolved(f"indirect jump in {bl.name}")
                if c[0] == "b":
                    taken = label_block(c[1])
                    break
                # conditional: an error exit is never taken, else its value decides
                tb = label_block(c[2])
                alt = None
                if j == len(ctls) - 1 and not fn.units[u].endloop and u + 1 in start_of:
                    alt = start_of[u + 1]
                t = c[1]
                if t is None and alt is not None and reach[tb] != reach[alt]:
                    t = reach[tb]
                elif (
                    t is None and alt is not None and not reach[tb] and failing(tb) != failing(alt)
                ):
                    t = not failing(tb)  # after the last work: the side returning -1 fails
                elif t is None and not reach[tb] and alt is None:
                    t = False
                if t is None:
                    raise _Unresolved(f"branch at the end of {bl.name} depends on data")
                if t:
                    taken = tb
                    break
            if taken is None and fn.units[u].endloop:
                for n in fn.units[u].endloop:
                    lc = st.r.get("lc" + n)
                    if lc is None:
                        raise _Unresolved(f"hardware loop{n} count unknown at {bl.name}")
                    st.log.append(("s", (u, "endloop", n), lc - 1, lc - 1))
                    if lc > 1:
                        st.r["lc" + n] = lc - 1
                        if n == "0" and st.r.get("lpcfg"):
                            st.r["lpcfg"] -= 1
                            if st.r["lpcfg"] == 0:
                                st.r["p3"] = True
                        taken = label_block(st.r["sa" + n])
                        break
            if taken is not None:
                if taken == "ret":
                    ret = True
                else:
                    nxt = taken
                break
        if ret:
            break
        if nxt is None:
            if bl.end >= len(fn.units) or bl.end not in start_of:
                raise _Unresolved(f"control falls off the end of {fn.name}")
            nxt = start_of[bl.end]
        e = edge_id.get((b, nxt))
        if e is None:
            edge_id[(b, nxt)] = e = len(counts)
            counts.append(0)
            for fr in frames:
                for s in fr.samples:
                    s[1].append(0)
        counts[e] += 1
        while frames and nxt not in frames[-1].loop.body:
            frames.pop()
        if not frames:
            st.log.clear()
        lp = header_of.get(nxt)
        if lp is not None:
            if frames and frames[-1].loop is lp:
                fr = frames[-1]
                fr.samples.append((_flat(st), counts[:], len(st.log)))
                if len(fr.samples) > _SAMPLES + 1:
                    fr.samples.pop(0)
                if (
                    summarise
                    and len(fr.samples) == _SAMPLES + 1
                    and _summarise(st, fr, counts, mask)
                ):
                    fr.samples = [(_flat(st), counts[:], len(st.log))]
            else:
                fr = _Frame(lp)
                fr.samples.append((_flat(st), counts[:], len(st.log)))
                frames.append(fr)
        b = nxt
    return counts[:nb], {k: counts[v] for k, v in edge_id.items()}


# ------------------------------------------------------------------------------------------
# execution counts
# ------------------------------------------------------------------------------------------


def _stack_store(text: str, arch: str) -> bool | None:
    """True: a store to the stack; False: a store elsewhere; None: not a store."""
    if arch == "aarch64":
        m = text.split()[0]
        if not (m.startswith("st") and not m.startswith("stack")):
            return None
        return bool(re.search(r"\[sp\b", text))
    m = re.match(r"^(?:if\s*\([^)]*\)\s*)?v?mem\w*\(([^)]*)\)\s*=", text)
    if not m:
        return None
    return bool(re.match(r"\s*(r29|r30|sp|fp)\b", m.group(1)))


def _count_units(fn: _Func, bl: _Block) -> tuple[int, int]:
    ins = sum(len(fn.units[u].lines) for u in range(bl.start, bl.end))
    return ins, bl.end - bl.start


def predict(
    asm: str, entry: str, where: str = "<asm>", obj_path: str | None = None, summarise: bool = True
) -> DynamicCount:
    """Dynamic counts of one call of function `entry` of assembly text `asm`; `obj_path`, the
    object assembled from it, supplies the alignment padding the text does not show.
    `summarise=False` walks every loop iteration (slow; a check of the loop summaries)."""
    arch = detect_arch(asm)
    funcs = _parse_functions(asm, arch, where)
    if entry not in funcs:
        raise DynCountError(f"{where}: no function {entry!r} (functions: {', '.join(funcs)})")
    unresolved: list[str] = []
    words = _object_words(obj_path) if obj_path else None
    if words is None:
        unresolved.append("alignment padding unknown (no object file)")
    else:
        for name, fn in funcs.items():
            if name in words:
                _add_padding(fn, words[name], arch)
    cfg = {name: _blocks(fn, arch) for name, fn in funcs.items()}
    # local functions that do work: a store off the stack, or a call of one that does
    work = {
        name: any(_stack_store(ln, arch) is False for u in fn.units for ln in u.lines)
        for name, fn in funcs.items()
    }
    changed = True
    while changed:
        changed = False
        for name, blocks in cfg.items():
            if not work[name] and any(c in funcs and work[c] for b in blocks for c in b.calls):
                work[name] = changed = True

    calls_into: dict[str, list[int]] = {entry: [1, 1]}
    results_blocks: list[BlockCount] = []
    results_loops: list[LoopCount] = []
    per_fn: dict[str, tuple[int, int]] = {}
    per_fn_p: dict[str, tuple[int, int]] = {}
    external: dict[str, int] = {}
    # callers before callees (kernels do not recurse)
    order = [entry]
    i = 0
    while i < len(order):
        for b in cfg[order[i]]:
            for c in b.calls:
                if c in funcs and c not in order:
                    order.append(c)
        i += 1
    for name in order:
        fn, blocks = funcs[name], cfg[name]
        lo_calls, hi_calls = calls_into.get(name, [0, 0])
        preds = [[] for _ in blocks]
        for k, b in enumerate(blocks):
            for s in b.succ:
                preds[s].append(k)
        rpo, dom = _dominators(blocks)
        loops = _natural_loops(blocks, dom)
        n_unresolved = len(unresolved)
        # productive blocks: can reach work (off-stack store, call of a working function)
        does = [
            any(
                _stack_store(ln, arch) is False
                for u in range(b.start, b.end)
                for ln in fn.units[u].lines
            )
            or any(c in funcs and work[c] for c in b.calls)
            for b in blocks
        ]
        reach = list(does)
        changed = True
        while changed:
            changed = False
            for k in range(len(blocks)):
                if not reach[k] and any(reach[s] for s in blocks[k].succ):
                    reach[k] = changed = True
        walked = None
        walk_error = None
        if loops and hi_calls:
            try:
                walked = _interpret(fn, blocks, loops, arch, reach, summarise)
            except _Unresolved as exc:
                walk_error = f"{name}: not walked: {exc}"
        for lp in loops:
            if walked is not None:
                ex = walked[0][lp.header]
                ent = sum(
                    walked[1].get((p, lp.header), 0) for p in preds[lp.header] if p not in lp.body
                )
                lp.trip = ex // ent if ent and ex % ent == 0 else None
                lp.source = f"walked: {ex} header executions over {ent} entries"
                continue
            if any(blocks[l].back_hw.get(lp.header) for l in lp.latches):
                lp.trip, lp.source = _hw_trip(fn, blocks, preds, lp, arch, dom)
            else:
                lp.trip = _induction_trip(fn, blocks, preds, dom, lp, arch, loops)
                lp.source = "induction variable" if lp.trip is not None else ""
            if lp.trip is None:
                unresolved.append(
                    f"{name}: loop at {blocks[lp.header].name}: trip count not "
                    f"found in the assembly"
                )
        header_of = {lp.header: lp for lp in loops}
        innermost = {}
        for lp in sorted(loops, key=lambda lp: -len(lp.body)):
            for b in lp.body:
                innermost[b] = lp
        back = {(l, lp.header) for lp in loops for l in lp.latches}
        lo = [0] * len(blocks)
        hi = [0] * len(blocks)
        edge_lo: dict[tuple[int, int], int] = {}
        edge_hi: dict[tuple[int, int], int] = {}
        acyclic = not loops
        for k in rpo:
            ins_lo = sum(edge_lo.get((p, k), 0) for p in preds[k] if (p, k) not in back)
            ins_hi = sum(edge_hi.get((p, k), 0) for p in preds[k] if (p, k) not in back)
            if k == 0:
                ins_lo, ins_hi = lo_calls, hi_calls
            lp = header_of.get(k)
            if lp is not None:
                t = lp.trip if lp.trip is not None else 1
                lo[k], hi[k] = t * ins_lo, t * ins_hi
                lp.entries = (ins_lo, ins_hi)  # type: ignore[attr-defined]
            else:
                lo[k], hi[k] = ins_lo, ins_hi
            b = blocks[k]
            succ = b.succ
            if not succ:
                continue
            if len(succ) == 1 and not (b.cond and b.returns):
                edge_lo[(k, succ[0])], edge_hi[(k, succ[0])] = lo[k], hi[k]
                continue
            # a two-way decision: loop exit, error exit, or data
            own = innermost.get(k)
            exiting = (
                own is not None
                and any(s not in own.body for s in succ)
                and len([x for x in own.body if any(s not in own.body for s in blocks[x].succ)])
                == 1
                and own.trip is not None
            )
            if exiting and len(succ) == 2:
                out = next(s for s in succ if s not in own.body)
                stay = next(s for s in succ if s in own.body)
                e_lo, e_hi = own.entries  # type: ignore[attr-defined]
                edge_lo[(k, out)], edge_hi[(k, out)] = e_lo, e_hi
                edge_lo[(k, stay)], edge_hi[(k, stay)] = lo[k] - e_lo, hi[k] - e_hi
                continue
            live = [s for s in succ if reach[s]]
            if b.cond and b.returns and len(succ) == 1:  # conditional return
                s = succ[0]
                v = (lo[k], hi[k]) if reach[s] else (0, 0)
                edge_lo[(k, s)], edge_hi[(k, s)] = v
                if not reach[s]:
                    unresolved.append(f"{name}: conditional return in {b.name}")
                continue
            if len(live) == 1:
                for s in succ:
                    v = (lo[k], hi[k]) if s == live[0] else (0, 0)
                    edge_lo[(k, s)], edge_hi[(k, s)] = v
                continue
            if not live and not hi[k]:  # on an error path itself
                for s in succ:
                    edge_lo[(k, s)] = edge_hi[(k, s)] = 0
                continue
            where_ = f"{name}: branch at the end of {b.name}"
            if not acyclic:
                unresolved.append(f"{where_} depends on data (inside a function with loops)")
            for s in succ:
                edge_lo[(k, s)], edge_hi[(k, s)] = 0, hi[k]
            if acyclic:
                unresolved.append(f"{where_} depends on data")
        if walked is not None:
            del unresolved[n_unresolved:]
            lo = [c * lo_calls for c in walked[0]]
            hi = [c * hi_calls for c in walked[0]]
            for lp in loops:
                ent = sum(
                    walked[1].get((p, lp.header), 0) for p in preds[lp.header] if p not in lp.body
                )
                lp.entries = (ent * lo_calls, ent * hi_calls)  # type: ignore[attr-defined]
        elif walk_error and len(unresolved) > n_unresolved:
            # the static analysis did not settle it either: say why the walk stopped
            unresolved.append(walk_error)
        # path bounds: exact DP over the acyclic function, else the interval counts
        sizes = [_count_units(fn, b) for b in blocks]
        if acyclic and any(len(b.succ) > 1 for b in blocks):
            fmin, fmax, pmin, pmax, on_lo, on_hi = _path_bounds(blocks, sizes, reach, rpo)
            f_lo, f_hi = fmin * lo_calls, fmax * hi_calls
            p_lo, p_hi = pmin * lo_calls, pmax * hi_calls
            lo = [lo_calls if k in on_lo else 0 for k in range(len(blocks))]
            hi = [hi_calls if k in on_hi else 0 for k in range(len(blocks))]
        else:
            f_lo = sum(s[0] * c for s, c in zip(sizes, lo))
            f_hi = sum(s[0] * c for s, c in zip(sizes, hi))
            p_lo = sum(s[1] * c for s, c in zip(sizes, lo))
            p_hi = sum(s[1] * c for s, c in zip(sizes, hi))
        per_fn[name] = (f_lo, f_hi)
        if arch == "hexagon":
            per_fn_p[name] = (p_lo, p_hi)
        for k, b in enumerate(blocks):
            for c in b.calls:
                if c in funcs:
                    acc = calls_into.setdefault(c, [0, 0])
                    acc[0] += lo[k]
                    acc[1] += hi[k]
                else:
                    external[c] = external.get(c, 0) + lo[k]
            if b.icalls:
                external["<indirect>"] = external.get("<indirect>", 0) + lo[k] * b.icalls
            if b.indirect and hi[k]:
                unresolved.append(f"{name}: indirect or out-of-function jump in {b.name}")
            own = innermost.get(k)
            results_blocks.append(
                BlockCount(
                    name,
                    b.name,
                    tuple(ln for u in range(b.start, b.end) for ln in fn.units[u].raw),
                    sizes[k][0],
                    sizes[k][1] if arch == "hexagon" else None,
                    lo[k],
                    hi[k],
                    blocks[own.header].name if own else None,
                    own is not None,
                )
            )
        for lp in loops:
            e = getattr(lp, "entries", (None, None))
            results_loops.append(
                LoopCount(
                    name,
                    blocks[lp.header].name,
                    lp.depth,
                    blocks[lp.parent.header].name if lp.parent else None,
                    lp.trip,
                    e[0] if e[0] == e[1] else None,
                    lp.source or "unknown",
                    tuple(blocks[b].name for b in sorted(lp.body)),
                )
            )
    tot_lo = sum(v[0] for v in per_fn.values())
    tot_hi = sum(v[1] for v in per_fn.values())
    pk_lo = sum(v[0] for v in per_fn_p.values()) if arch == "hexagon" else None
    pk_hi = sum(v[1] for v in per_fn_p.values()) if arch == "hexagon" else None
    return DynamicCount(
        arch,
        entry,
        tot_lo,
        tot_hi,
        pk_lo,
        pk_hi,
        per_fn,
        per_fn_p,
        external,
        tuple(results_blocks),
        tuple(results_loops),
        tuple(dict.fromkeys(unresolved)),
    )


def _path_bounds(blocks, sizes, reach, rpo):
    """Fewest / most instructions (and packets) over entry-to-exit paths that avoid error
    exits, and the blocks on a shortest and on a longest such path."""
    n = len(blocks)
    best: dict[str, list] = {}
    for key, pick, idx in (
        ("min_i", min, 0),
        ("max_i", max, 0),
        ("min_p", min, 1),
        ("max_p", max, 1),
    ):
        val: list[int | None] = [None] * n
        nxt: list[int | None] = [None] * n
        for k in reversed(rpo):  # successors first
            b = blocks[k]
            choice = any(reach[s] for s in b.succ)  # error exits are pruned at a choice
            cands = [(val[s], s) for s in b.succ if (reach[s] or not choice) and val[s] is not None]
            own = sizes[k][idx]
            if b.returns and (not b.succ or b.cond):
                cands.append((0, None))
            if not cands:
                continue
            v, s = pick(cands, key=lambda c: c[0])
            val[k], nxt[k] = own + v, s
        path, k = set(), 0
        while k is not None:
            path.add(k)
            k = nxt[k]
        best[key] = [val[0] or 0, path]
    return (
        best["min_i"][0],
        best["max_i"][0],
        best["min_p"][0],
        best["max_p"][0],
        best["min_i"][1],
        best["max_i"][1],
    )


def predict_kernel(kernel) -> DynamicCount:
    """Dynamic counts of one call of a compiled `Kernel` (entry: TVM's packed-call wrapper
    `__tvm_ffi_<symbol>`, which calls `<symbol>_compute_`)."""
    path = Path(kernel.asm_path)
    try:
        asm = path.read_text()
    except OSError as exc:
        raise DynCountError(f"{path}: cannot read the kernel's assembly: {exc.strerror}") from exc
    sym = kernel.symbol
    entry = sym if sym.startswith("__tvm_ffi_") else f"__tvm_ffi_{sym}"
    return predict(asm, entry, str(path), kernel.obj_path)


def compute_function(kernel) -> str:
    """Name of the function that holds the kernel's loop nest."""
    return f"{kernel.symbol}_compute_"
