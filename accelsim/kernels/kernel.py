"""`Kernel`: one compiled layer, and the facts the simulator reads from it.

- `loops`: the scheduled loop nest, walked from the scheduled TIR (before TVM's lowering
  passes): every loop with its extent, kind (serial / vectorized / unrolled / parallel), the
  recipe's name for it (`ow.o`, `oc.i`, ... from the `accelsim.loop` annotation; loops the
  scheduler generated itself, e.g. under a fused epilogue, keep their TIR variable name), the
  blocks inside it and `trips`, the number of times its body runs per call (the product of the
  extents of it and its enclosing loops; an upper bound where a block is predicated).
  Tensorized blocks name their intrinsic.
- `instruction_mix`: the static instruction mix of the innermost loop bodies of the assembly
  (a loop is a backward branch to a label, or a Hexagon hardware loop `loop0/1(label, n)` closed
  by `:endloop0/1`; innermost = containing no other loop): vector MACs, loads, stores, other,
  plus the count per mnemonic; on Hexagon also the VLIW packets `{ ... }`. The same classes
  are given for the whole assembly (`total`), since LLVM fully unrolls short TIR loops and
  their instructions then sit in straight-line code, and per innermost loop (`per_loop`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from accelsim.core.argspec import ArgSpec


@dataclass(frozen=True)
class Loop:
    name: str  # recipe loop name, or "<block>:<var>" for generated loops
    var: str  # TIR loop variable
    extent: int
    kind: str  # serial | vectorized | unrolled | parallel | ...
    trips: int  # body executions per call
    blocks: tuple[str, ...] = ()  # blocks directly inside
    intrinsic: str | None = None  # tensorized block directly inside: the intrinsic's name
    predicated: bool = False  # a block directly inside has a predicate (partial tile)
    children: tuple[Loop, ...] = ()

    def walk(self):
        yield self
        for c in self.children:
            yield from c.walk()

    def to_dict(self) -> dict:
        d = {
            "name": self.name,
            "var": self.var,
            "extent": self.extent,
            "kind": self.kind,
            "trips": self.trips,
        }
        if self.blocks:
            d["blocks"] = list(self.blocks)
        if self.intrinsic:
            d["intrinsic"] = self.intrinsic
        if self.predicated:
            d["predicated"] = True
        if self.children:
            d["children"] = [c.to_dict() for c in self.children]
        return d

    @staticmethod
    def from_dict(d: Mapping) -> Loop:
        return Loop(
            d["name"],
            d["var"],
            int(d["extent"]),
            d["kind"],
            int(d["trips"]),
            tuple(d.get("blocks", ())),
            d.get("intrinsic"),
            bool(d.get("predicated")),
            tuple(Loop.from_dict(c) for c in d.get("children", ())),
        )


@dataclass(frozen=True)
class InstructionMix:
    """Static counts over the innermost loop bodies of a kernel's assembly."""

    vector_mac: int
    load: int
    store: int
    other: int
    packets: int | None = None  # Hexagon VLIW packets in those bodies
    loops: int = 0  # innermost loops found
    mnemonics: Mapping[str, int] = field(default_factory=dict)
    total_instructions: int = 0  # the whole assembly
    total_packets: int | None = None
    # the same classes over the whole assembly (LLVM fully unrolls short TIR loops, so some
    # MACs sit in straight-line code), and one entry per innermost loop: its label,
    # instructions, packets and classes
    total: Mapping[str, int] = field(default_factory=dict)
    per_loop: tuple = ()

    @property
    def instructions(self) -> int:
        return self.vector_mac + self.load + self.store + self.other

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mnemonics"] = dict(self.mnemonics)
        d["total"] = dict(self.total)
        d["per_loop"] = [dict(x) for x in self.per_loop]
        return d

    @staticmethod
    def from_dict(d: Mapping) -> InstructionMix:
        return InstructionMix(
            **{
                **d,
                "mnemonics": dict(d.get("mnemonics", {})),
                "total": dict(d.get("total", {})),
                "per_loop": tuple(dict(x) for x in d.get("per_loop", ())),
            }
        )


@dataclass(frozen=True, eq=False)
class Kernel:
    """One compiled layer."""

    layer: str
    op: str
    op_class: str
    precision: str
    target: str
    symbol: str
    args: tuple[ArgSpec, ...]
    loops: tuple[Loop, ...]
    instruction_mix: InstructionMix
    intrinsic: str | None
    schedule: Mapping[str, Any]  # recipe file and section, order, tiles, blocks, notes
    asm_path: str
    obj_path: str
    lib_path: str | None  # host targets: a shared library for the TVM runtime
    key: str  # cache key (content hash)
    compile_s: float  # time of the compilation that produced the cache entry
    cached: bool  # this call found it in the cache
    signature: Mapping[str, Any] = field(default_factory=dict)

    @property
    def output(self) -> ArgSpec:
        return self.args[-1]

    def to_dict(self) -> dict:
        return {
            "layer": self.layer,
            "op": self.op,
            "op_class": self.op_class,
            "precision": self.precision,
            "target": self.target,
            "symbol": self.symbol,
            "args": [{"name": a.name, "shape": list(a.shape), "dtype": a.dtype} for a in self.args],
            "intrinsic": self.intrinsic,
            "schedule": dict(self.schedule),
            "loops": [lp.to_dict() for lp in self.loops],
            "instruction_mix": self.instruction_mix.to_dict(),
            "asm": self.asm_path,
            "obj": self.obj_path,
            "lib": self.lib_path,
            "key": self.key,
            "compile_s": round(self.compile_s, 4),
            "cached": self.cached,
            "signature": dict(self.signature),
        }

    def all_loops(self):
        for lp in self.loops:
            yield from lp.walk()


# ------------------------------------------------------------------------------------------
# loop nest of the scheduled TIR
# ------------------------------------------------------------------------------------------

_KINDS = {0: "serial", 1: "parallel", 2: "vectorized", 3: "unrolled", 4: "thread_binding"}


def _kind(loop) -> str:
    k = loop.kind
    try:
        return _KINDS.get(int(k), str(k))
    except (TypeError, ValueError):
        s = str(k).lower()
        for name in ("vectorized", "unrolled", "parallel", "serial"):
            if name[:5] in s:
                return name
        return s


def _stmt_children(s, tvm) -> list:
    tirx = tvm.tirx
    if isinstance(s, tirx.SeqStmt):
        return list(s.seq)
    if isinstance(s, tvm.s_tir.SBlockRealize):
        return [s.block]
    if isinstance(s, tvm.s_tir.SBlock):
        return [x for x in (s.init, s.body) if x is not None]
    out = []
    for attr in ("body", "then_case", "else_case"):
        v = getattr(s, attr, None)
        if isinstance(v, tirx.Stmt):
            out.append(v)
    return out


def _has_llvm_call(stmt, tvm) -> bool:
    try:
        text = stmt.script()
    except Exception:  # printing a detached statement may need context
        text = str(stmt)
    return "call_llvm" in text


def _first_block(stmt, tvm) -> str | None:
    todo = [stmt]
    while todo:
        s = todo.pop(0)
        if isinstance(s, tvm.s_tir.SBlock) and s.name_hint != "root":
            return s.name_hint
        todo = _stmt_children(s, tvm) + todo
    return None


def loop_nest(func, intrinsic: str | None = None) -> tuple[Loop, ...]:
    """The loop nest of a scheduled PrimFunc."""
    from accelsim.core.tvm_env import import_tvm

    tvm = import_tvm()
    tirx = tvm.tirx
    SBlockRealize = tvm.s_tir.SBlockRealize

    def children(stmt, trips: int) -> tuple[list[Loop], list[str], str | None, bool]:
        """Loops directly below `stmt`, block names directly below, intrinsic, predicate."""
        loops: list[Loop] = []
        blocks: list[str] = []
        intr = None
        pred = False
        todo = [stmt]
        while todo:
            s = todo.pop(0)
            if s is None:
                continue
            if isinstance(s, tirx.For):
                ext = int(s.extent) if isinstance(s.extent, tirx.IntImm) else -1
                t = trips * max(ext, 1)
                sub, bl, it, pr = children(s.body, t)
                ann = s.annotations.get("accelsim.loop") if s.annotations else None
                if ann is not None:
                    name = str(ann)
                else:  # generated by the scheduler: "<first block below>:<var>"
                    below = _first_block(s.body, tvm)
                    name = f"{below}:{s.loop_var.name}" if below else s.loop_var.name
                loops.append(
                    Loop(name, s.loop_var.name, ext, _kind(s), t, tuple(bl), it, pr, tuple(sub))
                )
            elif isinstance(s, SBlockRealize):
                blk = s.block
                if blk.name_hint != "root":
                    blocks.append(blk.name_hint)
                    if not (isinstance(s.predicate, tirx.IntImm) and int(s.predicate) == 1):
                        pred = True
                    if intrinsic and _has_llvm_call(blk.body, tvm):
                        intr = intrinsic
                if blk.init is not None:
                    todo.append(blk.init)
                todo.append(blk.body)
            elif isinstance(s, tirx.SeqStmt):
                todo = list(s.seq) + todo
            else:
                for attr in ("body", "then_case", "else_case", "block"):
                    v = getattr(s, attr, None)
                    if isinstance(v, tirx.Stmt):
                        todo.append(v)
        return loops, blocks, intr, pred

    loops, _, _, _ = children(func.body, 1)
    return tuple(loops)


# ------------------------------------------------------------------------------------------
# instruction mix of the assembly
# ------------------------------------------------------------------------------------------

_A64_MAC = {
    "sdot",
    "udot",
    "usdot",
    "sudot",
    "smlal",
    "smlal2",
    "umlal",
    "umlal2",
    "smlsl",
    "smlsl2",
    "smull",
    "smull2",
    "umull",
    "umull2",
    "sadalp",
    "uadalp",
    "mla",
    "mls",
    "mul",
    "fmla",
    "fmls",
    "fmul",
    "sqdmulh",
    "sqrdmulh",
    "smmla",
    "ummla",
}
_A64_BRANCH = re.compile(r"^(b(\.\w+)?|cbz|cbnz|tbz|tbnz)$")
_X86_MAC = re.compile(r"^v(pdp|pmadd|fmadd|fnmadd|fmsub|pmull|pmuld|pmulud|mul)")
_HVX_MAC = re.compile(r"\b(vrmpy|vdmpy|vmpy|vmpa|vtmpy|vmpye|vmpyo|vmpyie|vmpyio|vmpyi|vmpa)\w*\(")
_HEX_OP = re.compile(r"(?:=|\+=|-=)\s*([A-Za-z_][\w.]*)\s*\(")


def _isa(asm: str) -> str:
    if re.search(r"^\s*\{\s*$", asm, re.M) and (
        "endloop" in asm or "jumpr" in asm or "memw(" in asm
    ):
        return "hexagon"
    if re.search(r"\b(movq|pushq|%rsp|%rax)\b", asm):
        return "x86"
    return "aarch64"


@dataclass
class _Ins:
    line: int
    text: str
    packet: int | None = None


def _parse(asm: str, isa: str):
    """Instructions (with their packet index on Hexagon) and label positions, per function."""
    ins: list[_Ins] = []
    labels: dict[str, int] = {}  # label -> index into ins of the next instruction
    loops: list[tuple[int, int]] = []  # (start ins index, end ins index) inclusive
    packet = -1
    in_packet = False
    hw_loops: dict[str, str] = {}  # "0"/"1" -> label of the pending hardware loop
    for raw in asm.splitlines():
        line = raw.split("//")[0].rstrip()
        if isa == "x86":
            line = raw.split("#")[0].rstrip()
        s = line.strip()
        if not s:
            continue
        if s.endswith(":") and not s.startswith("{"):
            labels[s[:-1]] = len(ins)
            continue
        if s.startswith("."):
            continue
        if isa == "hexagon":
            if s.startswith("{"):
                packet += 1
                in_packet = True
                s = s[1:].strip()
                if not s:
                    continue
            if s.startswith("}"):
                in_packet = False
                m = re.search(r":endloop([01])", s)
                if m and ins:
                    lab = hw_loops.pop(m.group(1), None)
                    if lab in labels:
                        loops.append((labels[lab], len(ins) - 1))
                continue
            m = re.search(r"\bloop([01])\(#*([.\w]+)", s)
            if m:
                hw_loops[m.group(1)] = m.group(2)
            ins.append(_Ins(len(ins), s, packet if in_packet else None))
            m = re.search(r"\bjump(?::\w+)?\s+([.\w]+)$", s)
            if m and m.group(1) in labels and labels[m.group(1)] <= len(ins) - 1:
                loops.append((labels[m.group(1)], len(ins) - 1))
            continue
        ins.append(_Ins(len(ins), s))
        parts = s.replace(",", " ").split()
        mnem = parts[0]
        is_branch = (
            _A64_BRANCH.match(mnem)
            if isa == "aarch64"
            else (mnem.startswith("j") and mnem != "jmpq")
        )
        if is_branch and parts[-1] in labels and labels[parts[-1]] <= len(ins) - 1:
            loops.append((labels[parts[-1]], len(ins) - 1))
    return ins, loops, labels


def _classify(text: str, isa: str) -> tuple[str, str]:
    """(class, mnemonic) of one instruction."""
    if isa == "hexagon":
        m = _HEX_OP.search(text)
        if m:
            mnem = m.group(1)
        elif text.startswith(("if", "jump", "call", "loop", "jumpr", "dealloc", "allocframe")):
            mnem = re.sub(r"^if\s*\([^)]*\)\s*", "", text).split("(")[0].split()[0]
        elif re.match(r"^v?mem\w*\(", text):
            mnem = text.split("(")[0]
        else:
            mnem = "transfer"
        if re.match(r"^(if\s*\([^)]*\)\s*)?v?mem\w*\([^=]*\)\s*=", text):
            return "store", mnem
        if re.search(r"=\s*v?mem\w*\(", text):
            return "load", mnem
        if _HVX_MAC.search(text) and re.match(r"^(if\s*\([^)]*\)\s*)?v\d", text):
            return "vector_mac", mnem
        return "other", mnem
    parts = text.replace(",", " ").split()
    mnem = parts[0]
    if isa == "aarch64":
        vector = bool(re.search(r"\bv\d+\.", text))
        if mnem in _A64_MAC and vector:
            return "vector_mac", mnem
        if mnem.startswith("ld"):
            return "load", mnem
        if mnem.startswith("st"):
            return "store", mnem
        return "other", mnem
    # x86 (AT&T): op src..., dst
    if _X86_MAC.match(mnem):
        return "vector_mac", mnem
    ops = text[len(mnem) :].strip()
    last = ops.rsplit(",", 1)[-1] if ops else ""
    if "(" in last:
        return "store", mnem
    if "(" in ops:
        return "load", mnem
    return "other", mnem


def instruction_mix(asm: str) -> InstructionMix:
    isa = _isa(asm)
    ins, loops, label_pos = _parse(asm, isa)
    loops = sorted(set(loops))
    inner = [
        lp for lp in loops if not any(o != lp and lp[0] <= o[0] and o[1] <= lp[1] for o in loops)
    ]
    classes = [_classify(x.text, isa) for x in ins]
    counts = Counter()
    mnems = Counter()
    packets: set[int] = set()
    covered: set[int] = set()
    per_loop = []
    labels: dict[int, str] = {}
    for raw_label, idx in label_pos.items():
        if not raw_label.startswith(".Ltmp"):
            labels.setdefault(idx, raw_label)
    for a, b in inner:
        c = Counter(classes[i][0] for i in range(a, b + 1))
        pk = {ins[i].packet for i in range(a, b + 1) if ins[i].packet is not None}
        per_loop.append(
            {
                "label": labels.get(a, str(a)),
                "instructions": b - a + 1,
                "packets": len(pk) if isa == "hexagon" else None,
                **{k: c.get(k, 0) for k in ("vector_mac", "load", "store", "other")},
            }
        )
        for i in range(a, b + 1):
            covered.add(i)
    for i in sorted(covered):
        cls, mn = classes[i]
        counts[cls] += 1
        mnems[mn] += 1
        if ins[i].packet is not None:
            packets.add(ins[i].packet)
    total_packets = None
    if isa == "hexagon":
        total_packets = len({i.packet for i in ins if i.packet is not None})
    total = Counter(c for c, _ in classes)
    return InstructionMix(
        counts["vector_mac"],
        counts["load"],
        counts["store"],
        counts["other"],
        len(packets) if isa == "hexagon" else None,
        len(inner),
        dict(mnems.most_common()),
        len(ins),
        total_packets,
        {k: total.get(k, 0) for k in ("vector_mac", "load", "store", "other")},
        tuple(per_loop),
    )


def count_mnemonic(asm: str, mnemonic: str) -> int:
    """Occurrences of an instruction mnemonic anywhere in the assembly."""
    isa = _isa(asm)
    n = 0
    for raw in asm.splitlines():
        s = raw.split("//")[0].strip()
        if not s or s.startswith(".") or s.endswith(":"):
            continue
        if isa == "hexagon":
            if re.search(rf"\b{re.escape(mnemonic)}\w*\(", s):
                n += 1
        elif s.replace(",", " ").split()[0] == mnemonic:
            n += 1
    return n
