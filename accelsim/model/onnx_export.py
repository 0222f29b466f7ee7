"""accelsim IR -> ONNX, for float graphs.

`export_onnx(graph, path)` writes an ONNX model (opset 17, or 20 when the graph has a GELU)
that ONNX Runtime runs with the same results as the float reference executor. The mapping is
a table, `EMITTERS`, from IR operator to an emitter function; fused activations
(`act_min` / `act_max`) become a Relu or Clip after the operator. NHWC operators are wrapped
in Transposes (ONNX is NCHW). The file is written atomically (temporary file + os.replace).

Quantized graphs (QDQ export) are a later extension: add emitters for quantize / dequantize
and quantized tensors to the same table.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from accelsim.errors import ModelError
from accelsim.model.graph import Graph, Node
from accelsim.model.ops import activation_bounds

_ELEM = {"float32": 1, "float16": 10, "uint8": 2, "int8": 3, "uint16": 4, "int16": 5,
         "int32": 6, "int64": 7, "bool": 9}


class _Ctx:
    """Collects ONNX nodes and initializers while emitting."""

    def __init__(self, graph: Graph, opset: int) -> None:
        from onnx import helper, numpy_helper
        self.helper, self.numpy_helper = helper, numpy_helper
        self.graph = graph
        self.opset = opset
        self.nodes: list = []
        self.initializers: list = []
        self.names: set[str] = set(graph.tensors) | {n.name for n in graph.nodes}
        for name, value in graph.constants.items():
            self.initializers.append(numpy_helper.from_array(np.asarray(value), name))

    def fresh(self, base: str) -> str:
        name, i = base, 0
        while name in self.names:
            i += 1
            name = f"{base}_{i}"
        self.names.add(name)
        return name

    def const(self, base: str, value) -> str:
        name = self.fresh(base)
        self.initializers.append(self.numpy_helper.from_array(np.asarray(value), name))
        return name

    def add(self, op: str, inputs, outputs, name: str, **attrs) -> None:
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(self.helper.make_node(op, list(inputs), list(outputs),
                                                name=self.fresh(name), **attrs))

    def shape(self, tensor: str) -> tuple[int, ...]:
        return self.graph.tensors[tensor].shape


Emitter = Callable[[_Ctx, Node, list[str], str], None]
EMITTERS: dict[str, Emitter] = {}


def _emits(*ops: str) -> Callable[[Emitter], Emitter]:
    def wrap(fn: Emitter) -> Emitter:
        for op in ops:
            EMITTERS[op] = fn
        return fn
    return wrap


def _nchw(ctx: _Ctx, node: Node, inputs: list[str], out: str,
          body: Callable[[str, str], None]) -> None:
    """Run `body(x, y)` in NCHW; NHWC nodes get Transposes around it."""
    if node.attr("data_layout", "NCHW") == "NCHW":
        body(inputs[0], out)
        return
    x = ctx.fresh(f"{node.name}_nchw_in")
    ctx.add("Transpose", [inputs[0]], [x], f"{node.name}_to_nchw", perm=[0, 3, 1, 2])
    y = ctx.fresh(f"{node.name}_nchw_out")
    body(x, y)
    ctx.add("Transpose", [y], [out], f"{node.name}_to_nhwc", perm=[0, 2, 3, 1])


@_emits("conv2d")
def _conv(ctx: _Ctx, node: Node, ins: list[str], out: str) -> None:
    kh, kw = ctx.shape(ins[1])[2:]
    pads = list(node.attr("pads", (0, 0, 0, 0)))

    def body(x, y):
        ctx.add("Conv", [x] + [t for t in ins[1:] if t], [y], node.name, kernel_shape=[kh, kw],
                strides=list(node.attr("strides", (1, 1))),
                dilations=list(node.attr("dilations", (1, 1))), pads=pads,
                group=int(node.attr("groups", 1)))
    _nchw(ctx, node, ins, out, body)


@_emits("dense")
def _dense(ctx: _Ctx, node: Node, ins: list[str], out: str) -> None:
    x, w = ins[0], ins[1]
    bias = ins[2] if len(ins) > 2 and ins[2] else None
    n, k = ctx.shape(w)
    xs = ctx.shape(x)
    if xs[-1] != k or len(xs) == 1:  # TFLite semantics: rows of k features
        flat = ctx.fresh(f"{node.name}_rows")
        ctx.add("Reshape", [x, ctx.const(f"{node.name}_rows_shape", np.array([-1, k], np.int64))],
                [flat], f"{node.name}_rows")
        x, xs = flat, (int(np.prod(xs)) // k, k)
    if len(xs) == 2:
        ctx.add("Gemm", [x, w] + ([bias] if bias else []), [out], node.name, transB=1)
        return
    wt = ctx.const(f"{w}_t", np.ascontiguousarray(np.asarray(ctx.graph.constants[w]).T)) \
        if w in ctx.graph.constants else None
    if wt is None:
        wt = ctx.fresh(f"{w}_t")
        ctx.add("Transpose", [w], [wt], f"{node.name}_wt", perm=[1, 0])
    if bias is None:
        ctx.add("MatMul", [x, wt], [out], node.name)
        return
    mm = ctx.fresh(f"{node.name}_matmul")
    ctx.add("MatMul", [x, wt], [mm], node.name)
    ctx.add("Add", [mm, bias], [out], f"{node.name}_bias")


@_emits("matmul")
def _matmul(ctx: _Ctx, node: Node, ins: list[str], out: str) -> None:
    ab = []
    for t, flag in ((ins[0], "transpose_a"), (ins[1], "transpose_b")):
        if node.attr(flag, False):
            rank = len(ctx.shape(t))
            perm = list(range(rank - 2)) + [rank - 1, rank - 2]
            tt = ctx.fresh(f"{t}_T")
            ctx.add("Transpose", [t], [tt], f"{node.name}_{flag}", perm=perm)
            t = tt
        ab.append(t)
    ctx.add("MatMul", ab, [out], node.name)


def _simple(onnx_op: str) -> Emitter:
    def emit(ctx: _Ctx, node: Node, ins: list[str], out: str) -> None:
        ctx.add(onnx_op, ins, [out], node.name)
    return emit


EMITTERS["add"] = _simple("Add")
EMITTERS["sub"] = _simple("Sub")
EMITTERS["mul"] = _simple("Mul")
EMITTERS["relu"] = _simple("Relu")


@_emits("concat")
def _concat(ctx: _Ctx, node: Node, ins: list[str], out: str) -> None:
    ctx.add("Concat", ins, [out], node.name, axis=int(node.attr("axis")))


def _pool(onnx_op: str) -> Emitter:
    def emit(ctx: _Ctx, node: Node, ins: list[str], out: str) -> None:
        attrs = dict(kernel_shape=list(node.attr("kernel")),
                     strides=list(node.attr("strides", (1, 1))),
                     pads=list(node.attr("pads", (0, 0, 0, 0))),
                     ceil_mode=1 if node.attr("ceil_mode", False) else None)
        if onnx_op == "AveragePool":
            attrs["count_include_pad"] = 1 if node.attr("count_include_pad", False) else 0
        _nchw(ctx, node, ins, out, lambda x, y: ctx.add(onnx_op, [x], [y], node.name, **attrs))
    return emit


EMITTERS["max_pool"] = _pool("MaxPool")
EMITTERS["avg_pool"] = _pool("AveragePool")


@_emits("global_avg_pool")
def _global_pool(ctx: _Ctx, node: Node, ins: list[str], out: str) -> None:
    keep = node.attr("keepdims", True)
    y = out if keep else ctx.fresh(f"{node.name}_4d")
    layout = node.attr("data_layout", "NCHW")
    if layout == "NCHW" or not keep:
        x = ins[0]
        if layout != "NCHW":
            x = ctx.fresh(f"{node.name}_nchw_in")
            ctx.add("Transpose", [ins[0]], [x], f"{node.name}_to_nchw", perm=[0, 3, 1, 2])
        ctx.add("GlobalAveragePool", [x], [y], node.name)
    else:
        _nchw(ctx, node, ins, out, lambda a, b: ctx.add("GlobalAveragePool", [a], [b], node.name))
    if not keep:
        ctx.add("Flatten", [y], [out], f"{node.name}_flatten", axis=1)


@_emits("mean")
def _mean(ctx: _Ctx, node: Node, ins: list[str], out: str) -> None:
    axes = [int(a) for a in node.attr("axes")]
    keep = 1 if node.attr("keepdims", True) else 0
    if ctx.opset >= 18:
        ctx.add("ReduceMean", [ins[0], ctx.const(f"{node.name}_axes", np.array(axes, np.int64))],
                [out], node.name, keepdims=keep)
    else:
        ctx.add("ReduceMean", [ins[0]], [out], node.name, axes=axes, keepdims=keep)


def _clip_to(ctx: _Ctx, x: str, out: str, name: str, lo, hi) -> None:
    if lo is not None and lo == 0.0 and hi is None:
        ctx.add("Relu", [x], [out], name)
        return
    dt = np.float16 if ctx.graph.tensors.get(x) is not None and \
        ctx.graph.tensors[x].dtype == "float16" else np.float32
    lo_n = ctx.const(f"{name}_min", np.array(lo, dt)) if lo is not None else ""
    hi_n = ctx.const(f"{name}_max", np.array(hi, dt)) if hi is not None else ""
    ctx.add("Clip", [x, lo_n, hi_n], [out], name)


@_emits("relu6")
def _relu6(ctx: _Ctx, node: Node, ins: list[str], out: str) -> None:
    _clip_to(ctx, ins[0], out, node.name, 0.0, 6.0)


@_emits("clip")
def _clip(ctx: _Ctx, node: Node, ins: list[str], out: str) -> None:
    _clip_to(ctx, ins[0], out, node.name, node.attr("min"), node.attr("max"))


@_emits("reshape")
def _reshape(ctx: _Ctx, node: Node, ins: list[str], out: str) -> None:
    shape = ctx.const(f"{node.name}_shape", np.array(node.attr("shape"), np.int64))
    ctx.add("Reshape", [ins[0], shape], [out], node.name,
            allowzero=1 if node.attr("allowzero", 0) else None)


@_emits("flatten")
def _flatten(ctx: _Ctx, node: Node, ins: list[str], out: str) -> None:
    ctx.add("Flatten", ins, [out], node.name, axis=int(node.attr("axis", 1)))


@_emits("squeeze")
def _squeeze(ctx: _Ctx, node: Node, ins: list[str], out: str) -> None:
    axes = node.attr("axes")
    extra = [] if axes is None else [ctx.const(f"{node.name}_axes",
                                               np.array(axes, np.int64))]
    ctx.add("Squeeze", [ins[0]] + extra, [out], node.name)


@_emits("transpose")
def _transpose(ctx: _Ctx, node: Node, ins: list[str], out: str) -> None:
    ctx.add("Transpose", ins, [out], node.name, perm=[int(p) for p in node.attr("perm")])


@_emits("softmax")
def _softmax(ctx: _Ctx, node: Node, ins: list[str], out: str) -> None:
    x = ins[0]
    beta = float(node.attr("beta", 1.0))
    if beta != 1.0:
        xb = ctx.fresh(f"{node.name}_beta")
        ctx.add("Mul", [x, ctx.const(f"{node.name}_beta_value", np.array(beta, np.float32))],
                [xb], f"{node.name}_beta")
        x = xb
    ctx.add("Softmax", [x], [out], node.name, axis=int(node.attr("axis", -1)))


@_emits("pad")
def _pad(ctx: _Ctx, node: Node, ins: list[str], out: str) -> None:
    pairs = node.attr("pads")
    pads = [int(a) for a, _ in pairs] + [int(b) for _, b in pairs]
    dt = np.float16 if ctx.graph.tensors[ins[0]].dtype == "float16" else np.float32
    ctx.add("Pad", [ins[0], ctx.const(f"{node.name}_pads", np.array(pads, np.int64)),
                    ctx.const(f"{node.name}_value", np.array(node.attr("value", 0.0), dt))],
            [out], node.name, mode="constant")


@_emits("layer_norm")
def _layer_norm(ctx: _Ctx, node: Node, ins: list[str], out: str) -> None:
    ctx.add("LayerNormalization", [t for t in ins if t], [out],
            node.name, axis=int(node.attr("axis", -1)), epsilon=float(node.attr("epsilon", 1e-5)))


@_emits("batch_norm")
def _batch_norm(ctx: _Ctx, node: Node, ins: list[str], out: str) -> None:
    eps = float(node.attr("epsilon", 1e-5))
    if len(ctx.shape(ins[0])) != 4:
        ctx.add("BatchNormalization", ins[:5], [out], node.name, epsilon=eps)
        return
    _nchw(ctx, node, ins, out,
          lambda x, y: ctx.add("BatchNormalization", [x] + ins[1:5], [y], node.name,
                               epsilon=eps))


@_emits("gelu")
def _gelu(ctx: _Ctx, node: Node, ins: list[str], out: str) -> None:
    ctx.add("Gelu", ins, [out], node.name, approximate=node.attr("approximate", "none"))


def export_onnx(graph: Graph, path: str | os.PathLike, opset: int | None = None) -> Path:
    """Write float `graph` as an ONNX model at `path` (atomically); returns the path."""
    import onnx
    from onnx import helper

    if graph.is_quantized or any(n.op in ("quantize", "dequantize") for n in graph.nodes):
        raise ModelError(f"export_onnx: graph '{graph.name}' is quantized; only float graphs "
                         f"can be exported so far")
    missing = sorted({n.op for n in graph.nodes if n.op not in EMITTERS})
    if missing:
        raise ModelError(f"export_onnx: graph '{graph.name}' has operators without an ONNX "
                         f"mapping: {', '.join(missing)}")
    if opset is None:
        opset = 20 if any(n.op == "gelu" for n in graph.nodes) else 17
    ctx = _Ctx(graph, opset)
    for node in graph.nodes:
        out = node.outputs[0]
        lo, hi = activation_bounds(node.attrs)
        fused = np.isfinite(lo) or np.isfinite(hi)
        target = ctx.fresh(f"{out}_pre_act") if fused else out
        EMITTERS[node.op](ctx, node, list(node.inputs), target)
        if fused:
            _clip_to(ctx, target, out, f"{node.name}_act",
                     float(lo) if np.isfinite(lo) else None, float(hi) if np.isfinite(hi) else None)

    def vi(name: str):
        info = graph.tensors[name]
        return helper.make_tensor_value_info(name, _ELEM[info.dtype], list(info.shape))

    used = {t for n in ctx.nodes for t in n.input} | set(graph.outputs)
    inits = [t for t in ctx.initializers if t.name in used]
    g = helper.make_graph(ctx.nodes, graph.name, [vi(i) for i in graph.inputs],
                          [vi(o) for o in graph.outputs], inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="accelsim")
    model.ir_version = min(model.ir_version, 9)  # readable by ONNX Runtime releases of 2023+
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(model.SerializeToString())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
