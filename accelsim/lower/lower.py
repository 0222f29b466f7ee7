"""Quantized (or float) `Graph` -> one scheduled TVM PrimFunc per operator (`LoweredLayer`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from accelsim.core.argspec import ArgSpec
from accelsim.core.precision import Precision
from accelsim.core.tvm_env import import_tvm
from accelsim.core.version import __version__
from accelsim.lower import common as _common
from accelsim.lower import floatmath
from accelsim.lower import grouped as _grouped
from accelsim.lower import matmul as _matmul
from accelsim.lower import movement as _movement
from accelsim.lower import norm as _norm
from accelsim.lower import ops as _ops
from accelsim.lower.schedule import Applied, RecipeError, apply, recipes_for
from accelsim.lower.softmax import softmax
from accelsim.model.graph import Graph, Node
from accelsim.model.ops import op_class as _model_op_class
from accelsim.model.quantization import graph_precision

VIEW_OPS = ("reshape", "flatten", "squeeze")
STATUS_KERNEL, STATUS_VIEW, STATUS_NOT_LOWERED = "kernel", "view", "not lowered"


@dataclass(frozen=True, eq=False)
class LoweredLayer:
    """One graph node after lowering.

    `status` is "kernel" (a scheduled PrimFunc in `mod`), "view" (reshape / flatten of a
    tensor whose kernel layout already has the output's element order: no kernel) or
    "not lowered" (stays on the reference path; `reason` says why).
    """

    name: str
    op: str
    op_class: str
    status: str
    precision: str
    target: str
    mod: Any = None  # tvm IRModule with one scheduled PrimFunc
    symbol: str | None = None
    args: tuple[ArgSpec, ...] = ()  # call order; the last one is the output
    inputs: tuple[str, ...] = ()  # graph tensors `pack_inputs` reads
    output: str = ""  # graph tensor the kernel computes
    pack_inputs: Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]] | None = None
    unpack_output: Callable[[np.ndarray], np.ndarray] | None = None
    signature: Mapping[str, Any] = field(default_factory=dict)
    recipe_text: str = ""
    schedule: Applied | None = None
    key: str = ""  # content hash: signature, precision, target, recipe
    reason: str = ""
    arith: _common.FloatArith | None = None  # float kernels: arithmetic dtype and rounding count

    @property
    def func(self):
        """The scheduled PrimFunc."""
        return None if self.mod is None else self.mod["main"]

    @property
    def output_arg(self) -> str:
        return self.args[-1].name if self.args else ""


def _as_target(target):
    if isinstance(target, str):
        from accelsim.core.target import load_target

        return load_target(target)
    return target


@lru_cache(maxsize=1)
def _version() -> str:
    """accelsim's version and a hash of the code that shapes a kernel (the lowering, the
    intrinsics, the Kernel record), so a changed implementation never reuses a stale cached
    kernel even when the recipe and the version number stay the same."""
    from accelsim.core.cache import code_fingerprint

    fp = code_fingerprint("core", "asm", "lower", "kernels/compile.py", "kernels/kernel.py")
    return f"{__version__}+{fp[:16]}"


def _is_view(graph: Graph, node: Node) -> bool:
    x = graph.tensors[node.inputs[0]]
    y = graph.tensors[node.outputs[0]]

    def trivial(info, tensor):
        if len(info.shape) != 4:
            return True
        if _common.tensor_layout(graph, tensor) == "NHWC":
            return True
        n, c, h, w = info.shape
        return c == 1 or h * w == 1

    return trivial(x, node.inputs[0]) and trivial(y, node.outputs[0])


def _plain(v):
    """TVM values in a signature (IntImm shapes, dtypes) as plain JSON-able Python values."""
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, np.generic):
        return v.item()
    if hasattr(v, "value") and isinstance(v.value, (int, float)):
        return v.value
    return str(v)


def _argspecs(built) -> tuple[ArgSpec, ...]:
    inside = {*built.stand_ins, *built.stand_ins.values()}  # not arguments (Built.stand_ins)
    out = []
    for t, n in zip(built.tensors, built.names):
        if n not in inside:
            out.append(ArgSpec(n, tuple(int(d) for d in t.shape), str(t.dtype)))
    return tuple(out)


def lower_node(
    graph: Graph,
    node: Node,
    target,
    recipes=None,
    precision: Precision | None = None,
    schedules=None,
) -> LoweredLayer:
    """Lower one node for `target` (a Target or a target name) with the recipe file `recipes`
    (default: `schedules/<target kind>.yaml`, or `schedules`: a file or directory)."""
    target = _as_target(target)
    if recipes is None:
        recipes = recipes_for(target, schedules)
    prec = (precision or graph_precision(graph)).name  # the recipe section's key
    cls = _model_op_class(graph, node)
    base = dict(name=node.name, op=node.op, precision=prec, target=target.name)
    status, reason, built = _front(graph, node, target, recipes, prec)
    if status == STATUS_VIEW:
        return LoweredLayer(
            op_class="view",
            status=STATUS_VIEW,
            inputs=(node.inputs[0],),
            output=node.outputs[0],
            reason=reason,
            **base,
        )
    if built is None:
        return LoweredLayer(op_class=cls, status=status, reason=reason, **base)
    tvm = import_tvm()
    built.signature = _plain(built.signature)
    func = _aligned(
        tvm, _started(tvm, tvm.te.create_prim_func(built.tensors), built.starts), target
    )
    key_src = {
        "signature": built.signature,
        "tir": func.script(),
        "precision": built.recipe.precision,
        "target": target.codegen.tvm_target_dict(),
        "recipe": built.recipe.text,
        "contexts": target.hardware_threads,  # `parallel: contexts` picks its loop by them
        "version": _version(),
    }
    key = hashlib.sha256(json.dumps(key_src, sort_keys=True, default=str).encode()).hexdigest()
    symbol = f"accelsim_{built.op_class}_{key[:16]}"
    func = func.with_attr("global_symbol", symbol)
    # vectorizing a spatial loop inside the reduction loops fails the dataflow checks (the
    # update block has no init once decomposed): checks are off, and the tests check numerics
    sch = tvm.s_tir.Schedule(func, enable_check=False)
    try:
        applied = apply(
            sch,
            built.spec,
            built.recipe,
            target.hardware_threads,
            target.codegen.vector_bits // 8,
        )
    except RecipeError:
        raise
    except tvm.s_tir.ScheduleError as exc:
        raise RecipeError(
            f"{built.recipe.where('order')}: the recipe cannot be applied to layer "
            f"'{node.name}': {str(exc).splitlines()[0][:300]}"
        ) from None
    mod = sch.mod
    if built.stand_ins:
        func = _redirected(tvm, mod["main"], built.stand_ins, target)
        mod = tvm.IRModule({"main": func.with_attr("global_symbol", symbol)})
    return LoweredLayer(
        op_class=built.op_class,
        status=STATUS_KERNEL,
        mod=mod,
        symbol=symbol,
        args=_argspecs(built),
        inputs=built.inputs,
        output=node.outputs[0],
        pack_inputs=built.pack,
        unpack_output=built.unpack,
        signature=built.signature,
        recipe_text=built.recipe.text,
        schedule=applied,
        key=key,
        arith=built.arith,
        **{**base, "precision": built.recipe.precision},
    )


def _front(graph: Graph, node: Node, target, recipes, prec: str):
    """(status, reason, the builder's TE compute or None): the part of lowering that decides
    whether a node gets a kernel, without scheduling or compiling it."""
    if node.op in VIEW_OPS and _is_view(graph, node):
        return STATUS_VIEW, "the kernel layout already has the output's element order", None
    builder = builder_for(graph, node)
    if builder is None:
        return STATUS_NOT_LOWERED, f"no lowering for op '{node.op}'", None
    if (
        graph.requant_mode == "float"
        and builder not in _QDQ_BUILDERS
        and any(graph.tensors[t].is_quantized for t in (*node.inputs, *node.outputs) if t)
    ):
        return (
            STATUS_NOT_LOWERED,
            f"ONNX QDQ arithmetic (ONNX Runtime's) for integer '{node.op}' is not implemented "
            f"(its kernel computes TFLite's)",
            None,
        )
    try:
        return STATUS_KERNEL, "", builder(_common.Ctx(graph, node, target, recipes, prec))
    except _common.NotLowered as exc:
        return STATUS_NOT_LOWERED, str(exc), None


def lower_status(
    graph: Graph, target, precision: Precision | None = None, schedules=None, only=None
) -> list[tuple[str, str]]:
    """(status, reason) of every node of `graph` (or of those named in `only`, in graph order)
    as `lower_graph` would lower it, from the builders' computes alone (no scheduling, no
    compilation): what `simulate` reports as where each layer ran."""
    target = _as_target(target)
    recipes = recipes_for(target, schedules)
    prec = (precision or graph_precision(graph)).name  # the recipe section's key
    return [
        _front(graph, n, target, recipes, prec)[:2]
        for n in graph.nodes
        if only is None or n.name in only
    ]


def _swapped(node, swap):
    """`node` (a PrimFunc or statement) with each buffer in `swap` replaced by its value and
    every other buffer left as it is (TVM's `BufferReplacer` declares every buffer anew)."""
    from tvm.tirx.transform.common import BufferReplacer

    class _Swap(BufferReplacer):
        def _mutate_buffer(self, buffer):
            return self.buffer_map.get(buffer, buffer)

    return _Swap(dict(swap))(node)


def _started(tvm, func, starts: Mapping[str, str]):
    """`func` with each reduction block in `starts` initialized from its argument, indexed by
    the block's last spatial axis, instead of 0 (`Built.starts`)."""
    if not starts:
        return func
    import tvm_ffi

    params = {p.name: p for p in func.params}
    tirx = tvm.tirx

    def start(block):
        arg = starts.get(block.name_hint)
        if arg is None or block.init is None:
            return block
        src = params[arg]
        lane = [v.var for v in block.iter_vars if v.iter_type == tirx.IterVar.DataPar][-1]
        init = block.init
        if not isinstance(init, tirx.BufferStore):
            raise AssertionError(f"{block.name_hint}: the init is not one store")
        value = tirx.BufferLoad(src, [lane])
        # (the block's reads stay those of its update, which an intrinsic's description
        # matches; the argument has no producer to order against)
        return tvm.s_tir.SBlock(
            block.iter_vars,
            block.reads,
            block.writes,
            block.name_hint,
            block.body,
            tirx.BufferStore(init.buffer, value, init.indices),
            block.alloc_buffers,
            block.match_buffers,
            block.annotations,
        )

    body = tvm_ffi.structural_map(func.body, [(tvm.s_tir.SBlock, start)], order="post")
    return func.with_body(body)


def _redeclared(tvm, b, scope: str, align: int):
    """A new buffer like `b` (its own data) in `scope` with data alignment `align`."""
    return tvm.tirx.decl_buffer(
        b.shape, b.dtype, b.name, None, b.strides, b.elem_offset, scope, align, b.offset_factor
    )


def _aligned(tvm, func, target):
    """`func` with its parameter and intermediate buffers declared aligned to the target's
    `codegen.buffer_alignment` (HVX: 128 bytes, one vector), so that whole-vector accesses
    to them are aligned ones. TVM fixes a buffer's alignment when it creates it (64 bytes) and
    will not specialize it, so each such buffer is declared anew with the alignment and put in
    place of the old one everywhere it appears (`_swapped`: milliseconds, where printing the
    function and parsing it back with `align=` added took 0.1-0.2 s per kernel, and missed the
    float32 intermediates, which print without their dtype). The workspaces TVM allocates later
    (`TVMBackendAllocWorkspace`) are no TIR buffers here: the compile step's pass states their
    alignment (`accelsim.kernels.compile`)."""
    align = target.codegen.buffer_alignment
    if not align:
        return func
    import tvm_ffi
    from tvm.tirx.buffer import is_buffer_var

    def aligned(b):
        return _redeclared(tvm, b, b.scope(), align)

    new = {p: aligned(p) for p in func.params if is_buffer_var(p)}

    def allocs(block):  # the blocks' own buffers (not their match_buffer views)
        for b in block.alloc_buffers:
            new.setdefault(b, aligned(b))
        return block

    tvm_ffi.structural_map(func.body, [(tvm.s_tir.SBlock, allocs)], order="post")
    return _swapped(func, new)


def _redirected(tvm, func, stand_ins: Mapping[str, str], target):
    """The scheduled `func` with each stand-in's reads redirected to its stage
    (`Built.stand_ins`), the stage's buffer allocated inside the kernel (after the root
    block's first buffer), both gone from the signature. TVM has no schedule primitive that
    swaps a block's input buffer: `_swapped` puts the new buffer in place of the stand-in
    everywhere (the same TIR as editing the printed function and parsing it back, in
    milliseconds instead of 0.1-0.2 s of TVMScript parsing per kernel)."""
    import tvm_ffi

    align = target.codegen.buffer_alignment
    params = {p.name: p for p in func.params}
    swap, stages = {}, []
    for stand_in, stage in stand_ins.items():
        if stage not in params:
            raise AssertionError(f"{stage}: not a parameter of the scheduled kernel")
        b = params[stage]
        local = _redeclared(tvm, b, "global", align or -1)
        swap[params[stand_in]] = swap[b] = local
        stages.append(local)
    body = _swapped(func.body, swap)

    def root(block):
        if block.name_hint != "root":
            return block
        allocs = list(block.alloc_buffers)
        return tvm.s_tir.SBlock(
            block.iter_vars,
            block.reads,
            block.writes,
            block.name_hint,
            block.body,
            block.init,
            allocs[:1] + stages[::-1] + allocs[1:],
            block.match_buffers,
            block.annotations,
        )

    body = tvm_ffi.structural_map(body, [(tvm.s_tir.SBlock, root)], order="post")
    kept = [p for p in func.params if p.name not in set(stand_ins) | set(stand_ins.values())]
    return tvm.tirx.PrimFunc(kept, body, func.ret_type, func.attrs)


def lower_graph(
    graph: Graph, target, precision: Precision | None = None, schedules=None, only=None
) -> list[LoweredLayer]:
    """Lower every node of `graph` (views and not-lowered nodes included, in graph order), or
    the nodes named in `only` (an accelerator's host-core layers)."""
    target = _as_target(target)
    recipes = recipes_for(target, schedules)
    return [
        lower_node(graph, n, target, recipes, precision)
        for n in graph.nodes
        if only is None or n.name in only
    ]


# The builders whose integer kernels compute ONNX Runtime's QDQ arithmetic (`accelsim.ref.
# qdq_ops`, graphs with requant_mode "float") where they accept a layer: the MAC layers and
# matmuls (MlasRequantizeOutput), pools, QLinearAdd / QLinearMul, quantize and copying concats
# (`ops.pool`, `ops.elementwise` and `ops.concat` refuse the rest), QLinearSoftmax, the layer
# norm, linear resize, mean and average pool ORT runs in float between DequantizeLinear and
# QuantizeLinear, copying pads, float batch norms, and the table-driven copies and lookups
# built from the reference kernel itself.
_QDQ_BUILDERS = frozenset(
    (
        _ops.contraction,
        _ops.depthwise,
        _grouped.grouped_conv2d,
        _ops.pool,
        _ops.elementwise,
        _ops.exact_elementwise,
        _ops.concat,
        _movement.movement,
        _movement.gather,
        _movement.lookup,
        _matmul.matmul,
        softmax,
        _norm.layer_norm,
        _ops.bilinear_resize,
        _ops.pad,
        _ops.batch_norm,
    )
)


def builder_for(graph: Graph, node: Node):
    """The builder of a node, or None for views / unsupported ops."""
    from accelsim.model.ops import op_class

    cls = op_class(graph, node)
    if node.op == "conv2d":
        if cls == "depthwise_conv2d":
            return _ops.depthwise
        return _grouped.grouped_conv2d if node.attr("groups", 1) > 1 else _ops.contraction
    if node.op == "dense":
        return _ops.contraction
    if node.op in ("max_pool", "avg_pool", "global_avg_pool", "mean"):
        return _ops.pool
    if node.op in ("add", "sub", "mul", "relu", "relu6", "clip", "quantize", "dequantize"):
        return _ops.elementwise
    if node.op == "div" or (node.op in floatmath.UNARY and graph.tensors[node.inputs[0]].is_float):
        return _ops.elementwise  # float arithmetic (a quantized one is a lookup, below)
    if node.op == "concat":
        return _ops.concat
    if node.op == "batch_norm":
        return _ops.batch_norm
    if node.op == "pad" and node.attr("mode", "constant") == "constant":
        return _ops.pad  # reflect / symmetric / edge: a table-driven copy (below)
    if node.op in _ops.EXACT_OPS:
        return _ops.exact_elementwise
    if node.op == "softmax":
        return softmax
    if node.op == "layer_norm":
        return _norm.layer_norm
    if node.op == "matmul":
        return _matmul.matmul
    if node.op == "resize" and node.attr("mode", "nearest") == "linear":
        return _ops.bilinear_resize
    if node.op == "gather" and not graph.is_constant(node.inputs[1]):
        return _movement.gather  # indices known at run time (token ids)
    if node.op in _movement.MOVEMENT_OPS:
        return _movement.movement
    if node.op in _movement.LUT_OPS:
        return _movement.lookup
    return None
