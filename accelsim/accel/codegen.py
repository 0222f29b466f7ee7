"""Scheduled TIR -> accelerator `Program`.

The backend walks the scheduled, compacted PrimFunc of `accelsim.accel.schedule.schedule_layer`
and emits instructions from what it finds there, with no knowledge of layer shapes:

- a loop nest that contains a single leaf block is one instruction whose loops (extents and the
  per-loop strides of every operand, read off the affine buffer indices) are the instruction's
  own address generators; every other loop is a control loop the code generator unrolls into the
  instruction stream;
- an opaque block that allocates scratchpad buffers (scopes `local.accel_*`) starts a new
  instance of each: with double buffering the instances alternate between two slots;
- leaf blocks: a copy global -> `local.accel_*` is a `LOAD` (an inlined padding condition becomes
  the DMA's pad fill), a copy `local.accel_out` -> global a `STORE`, the reduction init reading
  the staged bias a `BIAS`, a block tensorized with `accel_vmac` / `accel_vmac_dw` (its
  `T.call_extern` gives lanes and depth, its match buffers the operand tiles) a `VMAC`, a block
  annotated `accel.alu` a `REQUANT`, `VADD`, `VMUL`, `VADDF`, `VMULF` or `VLUT` (immediates
  from the layer: zero points, clamp, multipliers, tables); a copy scratchpad -> global of a
  data-movement layer (transpose, slice) a `STORE` reading the staged input tile;
- `T.where` predicates (partial channel tiles) clip the instruction's loops;
- between the load, compute and store queues the backend inserts `WAIT` / `SIGNAL` tokens per
  buffer slot: a consumer waits until its slot is filled, a producer until the slot's previous
  contents have been consumed, which is what lets the DMA of tile k+1 overlap the compute of
  tile k when there are two slots;
- 4-bit outputs of the vector ALU are packed (`VPACK`) before their store, 4-bit operands of a
  `VADD` unpacked (`VUNPACK`) after their load.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from accelsim.accel import isa
from accelsim.accel.compute import LayerDef
from accelsim.accel.intrin import FORMS, SPACE_OF_SCOPE, read_call
from accelsim.accel.schedule import TileChoice, align_bytes
from accelsim.core.errors import AccelsimError
from accelsim.core.tvm_env import import_tvm

MAX_DMA_DIMS = 3
MAX_LOOPS = 6


class CodegenError(AccelsimError):
    """Scheduled TIR the accelerator back end cannot turn into instructions."""


# ------------------------------------------------------------------------------------------------
# affine expressions over loop variables
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Affine:
    coefs: tuple[tuple[str, int], ...]  # (loop key, coefficient)
    const: int

    def eval(self, env: dict[str, int]) -> int:
        v = self.const
        for k, c in self.coefs:
            v += c * env.get(k, 0)
        return v

    def coef(self, key: str) -> int:
        for k, c in self.coefs:
            if k == key:
                return c
        return 0

    def keys(self) -> set[str]:
        return {k for k, c in self.coefs if c}


def _aff(coefs: dict[str, int], const: int) -> Affine:
    return Affine(tuple(sorted((k, c) for k, c in coefs.items() if c)), int(const))


def _add(a: Affine, b: Affine, sign: int = 1) -> Affine:
    d = dict(a.coefs)
    for k, c in b.coefs:
        d[k] = d.get(k, 0) + sign * c
    return _aff(d, a.const + sign * b.const)


def _scale(a: Affine, s: int) -> Affine:
    return _aff({k: c * s for k, c in a.coefs}, a.const * s)


class _Conv:
    """TIR PrimExpr -> Affine, resolving loop Vars against the enclosing loops."""

    def __init__(self):
        tvm = import_tvm()
        self.t = tvm.tirx
        self.scope: list[tuple[Any, str]] = []

    def key(self, var) -> str:
        for v, k in reversed(self.scope):
            if v.same_as(var):
                return k
        raise CodegenError(f"index uses variable '{var}' that is not a loop of the kernel")

    def __call__(self, e) -> Affine:
        t = self.t
        if isinstance(e, t.IntImm):
            return _aff({}, int(e.value))
        if isinstance(e, t.Var):
            return _aff({self.key(e): 1}, 0)
        if isinstance(e, t.Cast):
            return self(e.value)
        if isinstance(e, t.Add):
            return _add(self(e.a), self(e.b))
        if isinstance(e, t.Sub):
            return _add(self(e.a), self(e.b), -1)
        if isinstance(e, t.Mul):
            a, b = self(e.a), self(e.b)
            if not a.coefs:
                return _scale(b, a.const)
            if not b.coefs:
                return _scale(a, b.const)
        raise CodegenError(f"index expression {e} is not affine in the loop variables")


# ------------------------------------------------------------------------------------------------
# the kernel tree
# ------------------------------------------------------------------------------------------------


@dataclass
class Operand:
    buffer: str  # local buffer name, or a DRAM tensor name for global operands
    index: Affine  # flat element offset
    is_global: bool


@dataclass
class Leaf:
    kind: str  # load, store, bias, vmac, requant, add
    loops: list[tuple[str, int]]  # the instruction's own loops, outermost first
    operands: dict[str, Operand]
    preds: list[tuple[Affine, str]]  # affine `op` 0 (op in <, <=) that must hold
    conds: list[tuple[Affine, str]] = field(default_factory=list)  # load: pad condition
    pad: int = 0
    lanes: int = 0
    depth: int = 0
    intrinsic: str = ""


@dataclass
class Loop:
    key: str
    extent: int
    body: list


@dataclass
class Scope:
    allocs: list[tuple[str, str, tuple[int, ...]]]  # (buffer, space, shape)
    body: list


def _flat(conv: _Conv, buf, indices) -> Affine:
    shape = [int(d) for d in buf.shape]
    stride = 1
    out = _aff({}, 0)
    for d, idx in zip(reversed(shape), reversed(list(indices))):
        out = _add(out, _scale(conv(idx), stride))
        stride *= d
    return out


def _conds(conv: _Conv, e) -> list[tuple[Affine, str]]:
    """A conjunction of comparisons as `expr op 0` with op in (<, <=)."""
    t = conv.t
    if isinstance(e, t.And):
        return _conds(conv, e.a) + _conds(conv, e.b)
    if isinstance(e, t.IntImm):
        return [] if e.value else [(_aff({}, 1), "<=")] + [(_aff({}, 0), "<")]
    if isinstance(e, t.LT):
        return [(_add(conv(e.a), conv(e.b), -1), "<")]
    if isinstance(e, t.LE):
        return [(_add(conv(e.a), conv(e.b), -1), "<=")]
    if isinstance(e, t.GT):
        return [(_add(conv(e.b), conv(e.a), -1), "<")]
    if isinstance(e, t.GE):
        return [(_add(conv(e.b), conv(e.a), -1), "<=")]
    raise CodegenError(f"condition {e} is not a conjunction of affine comparisons")


class _Builder:
    def __init__(self, func, globals_: dict[str, str]):
        self.tvm = import_tvm()
        self.conv = _Conv()
        self.globals = globals_  # TIR param buffer name -> DRAM tensor name
        self.counter = 0
        self.sources: dict[str, str] = {}  # local buffer -> DRAM tensor it is loaded from
        self.func = func

    def _global(self, buf) -> bool:
        return buf.scope() in ("global", "") and buf.name in self.globals

    def build(self, stmt) -> list:
        from tvm.s_tir import SBlockRealize

        t = self.tvm.tirx
        if isinstance(stmt, t.SeqStmt):
            out = []
            for s in stmt.seq:
                out += self.build(s)
            return out
        if isinstance(stmt, SBlockRealize):
            blk = stmt.block
            if self._is_leaf(blk):
                return [self._leaf([], stmt)]
            body = self.build(blk.body)
            allocs = []
            for b in blk.alloc_buffers:
                sc = b.scope()
                if sc not in SPACE_OF_SCOPE:
                    raise CodegenError(
                        f"buffer '{b.name}' in scope '{sc}': the accelerator has "
                        f"scratchpads {', '.join(SPACE_OF_SCOPE)}"
                    )
                allocs.append((b.name, SPACE_OF_SCOPE[sc], tuple(int(d) for d in b.shape)))
            if predicate_true(stmt.predicate, t) is False:
                raise CodegenError(f"predicated scope block '{blk.name_hint}'")
            return [Scope(allocs, body)] if allocs else body
        if isinstance(stmt, t.For):
            chain = []
            s = stmt
            while isinstance(s, t.For):
                chain.append(s)
                s = s.body
            keys = []
            for f in chain:
                self.counter += 1
                k = f"{f.loop_var.name}#{self.counter}"
                self.conv.scope.append((f.loop_var, k))
                keys.append((k, int(f.extent)))
                if int(f.min) != 0:
                    raise CodegenError(f"loop {f.loop_var} does not start at 0")
            try:
                if isinstance(s, SBlockRealize) and self._is_leaf(s.block):
                    return [self._leaf(keys, s)]
                # control loops: the outermost chain loop wraps the rest
                inner = self.build(s)
                for k, e in reversed(keys):
                    inner = [Loop(k, e, inner)]
                return inner
            finally:
                del self.conv.scope[-len(chain) :]
        if isinstance(stmt, t.Evaluate):
            return []
        raise CodegenError(f"unexpected statement {type(stmt).__name__} in the scheduled TIR")

    def _is_leaf(self, blk) -> bool:
        t = self.tvm.tirx
        if blk.alloc_buffers:
            return False
        return isinstance(blk.body, (t.BufferStore, t.Evaluate))

    def _leaf(self, loops, realize) -> Leaf:
        t = self.tvm.tirx
        blk = realize.block
        conv = self.conv
        preds = [] if predicate_true(realize.predicate, t) else _conds(conv, realize.predicate)
        name = blk.name_hint
        body = blk.body
        if blk.match_buffers:  # tensorized MAC
            call = body.value if isinstance(body, t.Evaluate) else None
            if call is None or not isinstance(call, _Call()) or len(call.args) < 1:
                raise CodegenError(f"block '{name}' has match buffers but no intrinsic call")
            vmac = read_call(call)
            if vmac is None:
                intrin = str(call.args[0].value) if isinstance(call.args[0], _StringImm()) else ""
                raise CodegenError(f"block '{name}' calls '{intrin}', not an accelerator intrinsic")
            form, lanes, depth = vmac
            ops = {}
            for mb in blk.match_buffers:
                src = mb.source
                starts = [r.min for r in src.region]
                role = {"A": "act", "B": "wgt", "C": "acc"}[mb.buffer.name]
                ops[role] = Operand(src.source.name, _flat(conv, src.source, starts), False)
            return Leaf("vmac", loops, ops, preds, lanes=lanes, depth=depth, intrinsic=form.name)
        if not isinstance(body, t.BufferStore):
            raise CodegenError(f"block '{name}': unsupported body {type(body).__name__}")
        dst = body.buffer
        dst_op = Operand(
            self.globals.get(dst.name, dst.name), _flat(conv, dst, body.indices), self._global(dst)
        )
        alu = blk.annotations.get("accel.alu")
        if alu is not None:
            loads = _collect_loads(body.value, t)
            ops = {"out": dst_op}
            for bname, (buf, idx) in loads.items():
                ops[_role(bname)] = Operand(bname, _flat(conv, buf, idx), False)
            return Leaf(str(alu), loops, ops, preds)
        val = body.value
        conds: list = []
        pad = 0
        if isinstance(val, _Call()) and str(val.op.name).endswith("if_then_else"):
            conds = _conds(conv, val.args[0])
            pad = int(_const(val.args[2], t))
            val = val.args[1]
        if not isinstance(val, _BufferLoad()):
            raise CodegenError(f"block '{name}': expected a copy, found {val}")
        src = val.source
        src_op = Operand(
            self.globals.get(src.name, src.name), _flat(conv, src, val.indices), self._global(src)
        )
        if src_op.is_global and not dst_op.is_global:
            self.sources[dst.name] = src_op.buffer
            return Leaf("load", loops, {"dst": dst_op, "src": src_op}, preds, conds, pad)
        if dst_op.is_global and not src_op.is_global:
            return Leaf("store", loops, {"dst": dst_op, "src": src_op}, preds)
        if not dst_op.is_global and not src_op.is_global:
            return Leaf("bias", loops, {"acc": dst_op, "bias": src_op}, preds)
        raise CodegenError(f"block '{name}': a copy between two DRAM tensors")


def _BufferLoad():
    return import_tvm().ir.expr.TensorLoad


def _Call():
    return import_tvm().ir.Call


def _StringImm():
    return import_tvm().ir.StringImm


def predicate_true(p, t) -> bool:
    return isinstance(p, t.IntImm) and bool(p.value)


def _const(e, t) -> int:
    if isinstance(e, t.Cast):
        return _const(e.value, t)
    if isinstance(e, t.IntImm):
        return int(e.value)
    raise CodegenError(f"expected a constant, found {e}")


def _collect_loads(e, t) -> dict[str, tuple[Any, list]]:
    """The first load of every buffer in an expression tree (iterative walk)."""
    found: dict[str, tuple[Any, list]] = {}
    stack = [e]
    seen = 0
    while stack:
        x = stack.pop()
        seen += 1
        if isinstance(x, _BufferLoad()):
            found.setdefault(x.source.name, (x.source, list(x.indices)))
            continue
        for attr in ("a", "b", "value", "body", "condition", "true_value", "false_value"):
            if hasattr(x, attr):
                v = getattr(x, attr)
                if v is not None and not isinstance(v, (int, float, str)):
                    stack.append(v)
        if isinstance(x, _Call()):
            stack.extend(x.args)
    return found


def _role(buffer: str) -> str:
    for prefix, role in (
        ("acc", "acc"),
        ("mult", "mult"),
        ("shift", "shift"),
        ("a_", "a"),
        ("b_", "b"),
    ):
        if buffer.startswith(prefix):
            return role
    raise CodegenError(f"ALU operand buffer '{buffer}' has no known role")


# ------------------------------------------------------------------------------------------------
# emission
# ------------------------------------------------------------------------------------------------


@dataclass
class _BufState:
    space: str
    slots: int
    instance: int = -1
    slot: int = 0
    producer: str = ""
    consumer: str = ""
    ready_signaled: bool = True
    last_consumer: dict[int, int] = field(default_factory=dict)  # slot -> list index
    free_signaled: dict[int, bool] = field(default_factory=dict)
    used: set[int] = field(default_factory=set)
    unpacked: bool = False


class _Emitter:
    def __init__(
        self, ld: LayerDef, config, choice: TileChoice, tree: list, sources: dict[str, str]
    ):
        self.ld = ld
        self.config = config
        self.choice = choice
        self.tree = tree
        self.sources = sources
        self.out: list[isa.Instr] = []
        self.after: dict[int, list[isa.Instr]] = {}
        self.state: dict[str, _BufState] = {}
        self.buffers: dict[str, isa.Buffer] = {}
        self.env: dict[str, int] = {}

    # -- buffers ----------------------------------------------------------------------------------
    def declare(self, allocs) -> None:
        for name, space, shape in allocs:
            if name in self.buffers:
                continue
            if space == "acc":
                bits, slots = self.ld.acc_bits, 1
            elif space == "out":
                bits, slots = self.ld.out_buf_bits, self.choice.slots
            else:
                src = self.sources.get(name)
                st = next((s for s in self.ld.staged if s.tensor == src), None)
                if st is None:
                    raise CodegenError(f"scratchpad buffer '{name}' is never loaded")
                bits, slots = st.bits, self.choice.slots
            elements = math.prod(shape)
            sp = self.config.scratchpads[space]
            slot_bytes = align_bytes(elements * bits / 8, sp, slots)
            used = sum(b.slot_bytes for b in self.buffers.values() if b.space == space)
            cap = sp.size_bytes // slots if space != "acc" else sp.size_bytes
            if used + slot_bytes > cap:
                raise CodegenError(
                    f"layer '{self.ld.node.name}': scratchpad '{space}' "
                    f"overflows: {used + slot_bytes} B per slot > {cap} B"
                )
            self.buffers[name] = isa.Buffer(
                name, space, elements, bits, slots, used, slot_bytes, shape
            )
            self.state[name] = _BufState(space, slots)

    def new_instance(self, name: str) -> None:
        st = self.state[name]
        st.instance += 1
        st.slot = st.instance % st.slots
        st.ready_signaled = True
        st.unpacked = False

    # -- synchronisation -----------------------------------------------------------------------
    def produce(self, name: str, queue: str) -> None:
        """Before `queue` writes buffer `name`'s current instance."""
        st = self.state[name]
        st.producer = queue
        if st.ready_signaled:  # first write of this instance
            st.ready_signaled = False
            s = st.slot
            if s in st.used and st.consumer and st.consumer != queue:
                token = f"free.{name}.{s}"
                if not st.free_signaled.get(s, False):
                    idx = st.last_consumer.get(s)
                    sig = isa.Signal(st.consumer, token)
                    if idx is None:
                        self.out.append(sig)
                    else:
                        self.after.setdefault(idx, []).append(sig)
                    st.free_signaled[s] = True
                self.out.append(isa.Wait(queue, token))
            st.used.add(s)
            st.free_signaled[s] = False

    def consume(self, name: str, queue: str) -> None:
        """Before `queue` reads buffer `name`'s current instance."""
        st = self.state[name]
        st.consumer = queue
        if not st.ready_signaled and st.producer and st.producer != queue:
            token = f"ready.{name}.{st.slot}"
            self.out.append(isa.Signal(st.producer, token))
            self.out.append(isa.Wait(queue, token))
        st.ready_signaled = True

    def consumed(self, name: str) -> None:
        st = self.state[name]
        st.last_consumer[st.slot] = len(self.out) - 1

    def ref(self, op: Operand, env: dict[str, int]) -> isa.Ref:
        st = self.state[op.buffer]
        return isa.Ref(op.buffer, st.slot, op.index.eval(env))

    # -- walking ---------------------------------------------------------------------------------
    def run(self) -> None:
        self.walk(self.tree)
        if self.after:
            merged: list[isa.Instr] = []
            for i, ins in enumerate(self.out):
                merged.append(ins)
                merged.extend(self.after.get(i, ()))
            self.out = merged

    def walk(self, nodes: list) -> None:
        for n in nodes:
            if isinstance(n, Loop):
                for i in range(n.extent):
                    self.env[n.key] = i
                    self.walk(n.body)
                del self.env[n.key]
            elif isinstance(n, Scope):
                self.declare(n.allocs)
                for name, _, _ in n.allocs:
                    self.new_instance(name)
                self.walk(n.body)
            else:
                self.leaf(n)

    def _domain(self, leaf: Leaf) -> list[tuple[str, int, int]] | None:
        """(key, start, stop) per own loop after the predicates; None if empty."""
        dom = [[k, 0, e] for k, e in leaf.loops]
        for expr, op in leaf.preds:
            rest = expr.eval(self.env)  # own loop keys are absent from env: their value 0
            own = [(i, expr.coef(k)) for i, (k, _, _) in enumerate(dom) if expr.coef(k)]
            if not own:
                if (op == "<" and rest >= 0) or (op == "<=" and rest > 0):
                    return None
                continue
            if len(own) > 1:
                raise CodegenError(f"layer '{self.ld.node.name}': a predicate couples two loops")
            i, c = own[0]
            # c * v + rest (<|<=) 0
            bound = -rest if op == "<" else -rest + 1  # c * v < bound
            if c > 0:
                dom[i][2] = min(dom[i][2], -(-bound // c))
            else:
                dom[i][1] = max(dom[i][1], bound // c + 1)
            if dom[i][1] >= dom[i][2]:
                return None
        return [(k, a, b) for k, a, b in dom]

    def leaf(self, leaf: Leaf) -> None:
        dom = self._domain(leaf)
        if dom is None:
            return
        env = dict(self.env)
        for k, a, _ in dom:
            env[k] = a
        fn = getattr(self, "emit_" + leaf.kind, None)
        if fn is None:
            raise CodegenError(
                f"layer '{self.ld.node.name}': no instruction for a '{leaf.kind}' block"
            )
        fn(leaf, dom, env)

    def _loops(self, dom, ops: list[Operand]) -> list[tuple[int, ...]]:
        """(extent, stride of each operand) per own loop, extent-1 loops dropped, contiguous
        neighbours merged."""
        loops = []
        for k, a, b in dom:
            if b - a == 1:
                continue
            loops.append((b - a,) + tuple(op.index.coef(k) for op in ops))
        return list(merge_loops(loops))

    def _split(self, loops, limit, env_base: dict[str, int], ops: list[Operand], make) -> None:
        """Emit `make(loops, bases)`, iterating outer loops when there are more than `limit`."""
        if len(loops) <= limit:
            make(tuple(loops), [op.index.eval(env_base) for op in ops])
            return
        outer, rest = loops[0], loops[1:]
        for i in range(outer[0]):
            bases_off = [s * i for s in outer[1:]]

            def make2(lps, bases, off=bases_off):
                make(lps, [b + o for b, o in zip(bases, off)])

            self._split(rest, limit, env_base, ops, make2)

    # -- instructions ------------------------------------------------------------------------------
    def emit_load(self, leaf: Leaf, dom, env) -> None:
        dst, src = leaf.operands["dst"], leaf.operands["src"]
        # valid range of each own loop under the pad condition
        valid = {k: [a, b] for k, a, b in dom}
        for expr, op in leaf.conds:
            rest = expr.eval(env) - sum(expr.coef(k) * env[k] for k, _, _ in dom)
            own = [(k, expr.coef(k)) for k, _, _ in dom if expr.coef(k)]
            if not own:
                if (op == "<" and rest >= 0) or (op == "<=" and rest > 0):
                    valid = {k: [a, a] for k, a, _ in dom}  # everything is padding
                continue
            if len(own) > 1:
                raise CodegenError(
                    f"layer '{self.ld.node.name}': a padding condition couples two loops"
                )
            k, c = own[0]
            bound = -rest if op == "<" else -rest + 1
            if c > 0:
                valid[k][1] = min(valid[k][1], -(-bound // c))
            else:
                valid[k][0] = max(valid[k][0], bound // c + 1)
        dims = []
        any_valid = all(valid[k][0] < valid[k][1] for k, _, _ in dom)
        src_env = dict(env)
        for k, a, b in dom:
            lo, hi = valid[k]
            lo, hi = max(lo, a), min(hi, b)
            if not any_valid:
                lo, hi = a, a
            src_env[k] = lo if any_valid else a
            dims.append(
                isa.DmaDim(
                    b - a,
                    src.index.coef(k),
                    dst.index.coef(k),
                    max(0, lo - a),
                    max(0, b - max(hi, lo)),
                )
            )
        if not any_valid:
            dims = [
                isa.DmaDim(d.extent, d.dram_stride, d.spad_stride, d.extent, 0)
                if i == 0
                else isa.DmaDim(d.extent, d.dram_stride, d.spad_stride, 0, 0)
                for i, d in enumerate(dims)
            ]
        dims = _merge_dma(dims)
        src_base = src.index.eval(src_env)
        dst_base = dst.index.eval(env)
        # the pad value is the layer's input zero point (the template may be shared by layers
        # of the same shape with other zero points)
        pad = int(self.ld.imm.get("pad", leaf.pad)) if leaf.conds else 0
        self.produce(dst.buffer, "load")
        for ds, sb, db in _split_dma(dims, src_base, dst_base):
            self.out.append(
                isa.Load(
                    isa.Ref(dst.buffer, self.state[dst.buffer].slot, db),
                    isa.DramRef(src.buffer, sb),
                    ds,
                    pad,
                )
            )

    def emit_store(self, leaf: Leaf, dom, env) -> None:
        dst, src = leaf.operands["dst"], leaf.operands["src"]
        dims = [isa.DmaDim(b - a, dst.index.coef(k), src.index.coef(k)) for k, a, b in dom]
        dims = _merge_dma(dims)
        self.consume(src.buffer, "store")
        for ds, gb, sb in _split_dma(dims, dst.index.eval(env), src.index.eval(env)):
            self.out.append(
                isa.Store(
                    isa.DramRef(dst.buffer, gb),
                    isa.Ref(src.buffer, self.state[src.buffer].slot, sb),
                    ds,
                )
            )
        self.consumed(src.buffer)

    def emit_bias(self, leaf: Leaf, dom, env) -> None:
        acc, bias = leaf.operands["acc"], leaf.operands["bias"]
        loops = self._loops(dom, [acc, bias])
        self.consume(bias.buffer, "compute")
        self.produce(acc.buffer, "compute")

        def make(lps, bases):
            self.out.append(
                isa.Bias(
                    isa.Ref(acc.buffer, 0, bases[0]),
                    isa.Ref(bias.buffer, self.state[bias.buffer].slot, bases[1]),
                    lps,
                )
            )

        self._split(loops, MAX_LOOPS, env, [acc, bias], make)
        self.consumed(bias.buffer)

    def emit_vmac(self, leaf: Leaf, dom, env) -> None:
        acc, act, wgt = leaf.operands["acc"], leaf.operands["act"], leaf.operands["wgt"]
        loops = self._loops(dom, [acc, act, wgt])
        for b in (act.buffer, wgt.buffer):
            self.consume(b, "compute")
        kind = FORMS[leaf.intrinsic].isa_kind
        mode = self.ld.mode

        def make(lps, bases):
            self.out.append(
                isa.VMac(
                    isa.Ref(acc.buffer, 0, bases[0]),
                    isa.Ref(act.buffer, self.state[act.buffer].slot, bases[1]),
                    isa.Ref(wgt.buffer, self.state[wgt.buffer].slot, bases[2]),
                    lps,
                    leaf.lanes,
                    leaf.depth,
                    mode,
                    kind,
                )
            )

        self._split(loops, MAX_LOOPS, env, [acc, act, wgt], make)
        for b in (act.buffer, wgt.buffer):
            self.consumed(b)

    def emit_requant(self, leaf: Leaf, dom, env) -> None:
        o = leaf.operands
        out, acc, mult, shift = o["out"], o["acc"], o["mult"], o["shift"]
        if mult.index != shift.index:
            raise CodegenError(
                f"layer '{self.ld.node.name}': multiplier and shift are indexed differently"
            )
        loops = self._loops(dom, [out, acc, mult])
        im = self.ld.imm
        for b in (mult.buffer, shift.buffer):
            self.consume(b, "compute")
        self.produce(out.buffer, "compute")
        start = len(self.out)

        def make(lps, bases):
            self.out.append(
                isa.Requant(
                    isa.Ref(out.buffer, self.state[out.buffer].slot, bases[0]),
                    isa.Ref(acc.buffer, 0, bases[1]),
                    isa.Ref(mult.buffer, self.state[mult.buffer].slot, bases[2]),
                    isa.Ref(shift.buffer, self.state[shift.buffer].slot, bases[2]),
                    lps,
                    im["zp_out"],
                    im["qmin"],
                    im["qmax"],
                    bool(im["wide"]),
                    str(im.get("fscale", "")),
                )
            )

        self._split(loops, MAX_LOOPS, env, [out, acc, mult], make)
        for b in (mult.buffer, shift.buffer):
            self.consumed(b)
        self._pack(out, start)

    def _emit_alu(self, leaf: Leaf, dom, env) -> None:
        """The element-wise ALU instruction of the layer's class and arithmetic
        (`isa.ALU_INSTRUCTIONS`) over the leaf's loops, 4-bit inputs unpacked first; the fields
        after its loops are the layer's immediates of the same names."""
        cls = isa.ALU_INSTRUCTIONS[(self.ld.op_class, self.ld.fscale)]
        roles = "a" if cls is isa.VLut else "ab"
        im = self.ld.imm
        names = [f.name for f in dataclasses.fields(cls)][len(roles) + 2 :]
        imm = {k: im[k] for k in names if k in im}
        o = leaf.operands
        out, ins = o["out"], [o[r] for r in roles]
        loops = self._loops(dom, [out, *ins])
        for op, bits in zip(ins, im["in_bits"]):
            self.consume(op.buffer, "compute")
            st = self.state[op.buffer]
            if bits == 4 and not st.unpacked:
                elems = self.buffers[op.buffer].elements
                self.out.append(isa.VUnpack(isa.Ref(op.buffer, st.slot, 0), elems))
                st.unpacked = True
        self.produce(out.buffer, "compute")
        start = len(self.out)

        def make(lps, bases):
            refs = [
                isa.Ref(op.buffer, self.state[op.buffer].slot, base)
                for op, base in zip([out, *ins], bases)
            ]
            self.out.append(cls(*refs, lps, **imm))

        self._split(loops, MAX_LOOPS, env, [out, *ins], make)
        for op in ins:
            self.consumed(op.buffer)
        self._pack(out, start)

    # the element-wise layer classes (`compute.alu_operands`)
    emit_add = emit_mul = emit_lut = _emit_alu

    def _pack(self, out: Operand, start: int) -> None:
        """4-bit outputs: pack the lanes the ALU just wrote, two per byte, before the store."""
        if self.ld.obits != 4:
            return
        for ins in self.out[start:]:
            if isinstance(ins, (isa.Requant, *isa.ALU_INSTRUCTIONS.values())):
                n = 1
                for lp in ins.loops:
                    n *= lp[0]
                self.out.append(isa.VPack(ins.out, n))


def merge_loops(loops) -> tuple[tuple[int, ...], ...]:
    """Loops as (extent, stride of each operand...): extent-1 loops dropped, a loop whose
    strides are its inner neighbour's times that neighbour's extent merged into it (one
    contiguous run). Shared with the analytic model, which must count instructions as this
    back end emits them."""
    merged: list[tuple[int, ...]] = []
    for lp in loops:
        if lp[0] == 1:
            continue
        if merged:
            o = merged[-1]
            if all(o[j] == lp[0] * lp[j] for j in range(1, len(lp))):
                merged[-1] = (o[0] * lp[0],) + lp[1:]
                continue
        merged.append(lp)
    return tuple(merged)


def _merge_dma(dims: list[isa.DmaDim]) -> list[isa.DmaDim]:
    dims = [d for d in dims if d.extent != 1 or d.pad_before or d.pad_after]
    out: list[isa.DmaDim] = []
    for d in dims:
        if out:
            o = out[-1]
            # an outer dimension folds into a contiguous, unpadded inner one; its padding becomes
            # padding of whole inner rows (the valid part stays one contiguous run)
            if (
                not (d.pad_before or d.pad_after)
                and o.dram_stride == d.extent * d.dram_stride
                and o.spad_stride == d.extent * d.spad_stride
            ):
                out[-1] = isa.DmaDim(
                    o.extent * d.extent,
                    d.dram_stride,
                    d.spad_stride,
                    o.pad_before * d.extent,
                    o.pad_after * d.extent,
                )
                continue
        out.append(d)
    if not out:
        out = [isa.DmaDim(1, 1, 1)]
    return out


def _split_dma(dims, a_base: int, b_base: int):
    """Transfers of at most MAX_DMA_DIMS dimensions (outer ones iterated)."""
    if len(dims) <= MAX_DMA_DIMS:
        yield tuple(dims), a_base, b_base
        return
    d, rest = dims[0], dims[1:]
    if d.pad_before or d.pad_after:
        raise CodegenError("padding on a DMA dimension beyond the third")
    for i in range(d.extent):
        yield from _split_dma(rest, a_base + i * d.dram_stride, b_base + i * d.spad_stride)


# ------------------------------------------------------------------------------------------------
# entry points
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Template:
    """The TIR of a layer, walked once: reused for every layer with the same signature."""

    tree: list
    sources: dict[str, str]


def build_template(mod, ld: LayerDef) -> Template:
    func = mod["main"]
    globals_ = {p.name: p.name for p in func.params}
    b = _Builder(func, globals_)
    tree = b.build(func.body)
    return Template(tree, dict(b.sources))


def generate(ld: LayerDef, choice: TileChoice, template: Template, config) -> isa.Program:
    em = _Emitter(ld, config, choice, template.tree, template.sources)
    em.run()
    meta = {
        "dataflow": choice.dataflow.name,
        "tiles": dict(choice.tiles),
        "op_class": ld.op_class,
        "obits": ld.obits,
        "abits": ld.abits,
        "wbits": ld.wbits,
        "wide": ld.wide,
        "slots": choice.slots,
    }
    return isa.Program(
        ld.node.name,
        ld.op_class,
        ld.mode or f"a{ld.abits}",
        em.out,
        em.buffers,
        ld.dram,
        ld.macs,
        meta,
    )
