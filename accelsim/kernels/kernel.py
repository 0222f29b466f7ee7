"""`Kernel`: one compiled layer, and the facts the simulator reads from it.

- `loops`: the scheduled loop nest, walked from the scheduled TIR (before TVM's lowering
  passes): every loop with its extent, kind (serial / vectorized / unrolled / parallel), the
  recipe's name for it (`ow.o`, `oc.i`, ... from the `accelsim.loop` annotation; loops the
  scheduler generated itself, e.g. under a fused epilogue, keep their TIR variable name), the
  blocks inside it and `trips`, the number of times its body runs per call (the product of the
  extents of it and its enclosing loops; an upper bound where a block is predicated).
  Tensorized blocks name their intrinsic.
- `instruction_mix`: the static instruction mix of the innermost loop bodies of the assembly
  (loops as `accelsim.asm.loops` defines them: the natural loops of each function's CFG,
  Hexagon hardware loops included; innermost = holding no other loop): vector MACs (the
  instruction classes in `accelsim.asm.MAC_CLASSES`), loads, stores, other, plus the count per
  mnemonic; on Hexagon also the VLIW packets `{ ... }`. The same classes are given for the
  whole assembly (`total`), since LLVM fully unrolls short TIR loops and their instructions
  then sit in straight-line code, and per innermost loop (`per_loop`).
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from accelsim import asm
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


def _unfused(parts: str, var: str, kind: str, trips: int, sub) -> Loop:
    """The loops `parts` ("oh:14,ow.o:2", outermost first) that the scheduler fused into one
    (`lower.schedule`: a parallel loop), nested as they were; the innermost holds `sub`."""
    named = [(n, int(e)) for n, e in (p.rsplit(":", 1) for p in parts.split(","))]
    totals = []
    for _, e in named:
        trips *= e
        totals.append(trips)
    inner: Loop | None = None
    for (n, e), t in reversed(list(zip(named, totals))):
        inner = Loop(n, var, e, kind, t, children=tuple(sub) if inner is None else (inner,))
    assert inner is not None
    return inner


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
                fused = s.annotations.get("accelsim.fused") if s.annotations else None
                if fused is not None:  # a parallel loop fused from recipe loops: each of them
                    loops.append(_unfused(str(fused), s.loop_var.name, _kind(s), trips, sub))
                    continue
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

_MIX_CLASSES = ("vector_mac", "load", "store", "other")


def _mix_class(cls: str) -> str:
    """The mix's coarse class of a pipe-model instruction class."""
    if cls in asm.MAC_CLASSES:
        return "vector_mac"
    if "load" in cls:
        return "load"
    if "store" in cls:
        return "store"
    return "other"


@functools.lru_cache(maxsize=1 << 16)
def _line_class(line: str, isa: str) -> tuple[str, str]:
    """(mix class, mnemonic) of one instruction line. Cached: generated kernels repeat the
    same lines (unrolled tiles, epilogues, the same layer shapes across a model), and parsing
    was most of a cold `verify`'s time after TVM itself."""
    first = asm.parse_line(line, isa)[:1]
    return (_mix_class(first[0].cls), first[0].mnemonic) if first else ("other", line)


def instruction_mix(text: str) -> InstructionMix:
    """The static instruction mix of an assembly text (see the module docstring); an
    instruction is a line (a Hexagon line with `;`-separated parts is one instruction, timed by
    its first part's class)."""
    isa = asm.detect_isa(text)
    seen: dict[int, list[tuple[str, str]]] = {}  # unit -> (mix class, mnemonic) per line

    def classes(unit) -> list[tuple[str, str]]:
        if id(unit) not in seen:
            seen[id(unit)] = [_line_class(ln, isa) for ln in unit.lines]
        return seen[id(unit)]

    funcs = asm.split_functions(text, isa)
    units = [u for fn in funcs.values() for u in fn.units]
    total = Counter(c for u in units for c, _ in classes(u))
    counts: Counter = Counter()
    mnems: Counter = Counter()
    covered: dict[int, object] = {}
    per_loop = []
    inner = asm.innermost_loops(text, isa, funcs)
    for lp in inner:
        c = Counter(cls for u in lp.units for cls, _ in classes(u))
        per_loop.append(
            {
                "label": lp.label,
                "instructions": sum(len(u.lines) for u in lp.units),
                "packets": len(lp.units) if isa == "hexagon" else None,
                **{k: c.get(k, 0) for k in _MIX_CLASSES},
            }
        )
        covered.update((id(u), u) for u in lp.units)
    for u in covered.values():
        for cls, mn in classes(u):
            counts[cls] += 1
            mnems[mn] += 1
    hexagon = isa == "hexagon"
    return InstructionMix(
        counts["vector_mac"],
        counts["load"],
        counts["store"],
        counts["other"],
        len(covered) if hexagon else None,
        len(inner),
        dict(mnems.most_common()),
        sum(len(u.lines) for u in units),
        len(units) if hexagon else None,
        {k: total.get(k, 0) for k in _MIX_CLASSES},
        tuple(per_loop),
    )
