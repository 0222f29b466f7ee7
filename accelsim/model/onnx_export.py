"""accelsim IR -> ONNX: float graphs, and quantized graphs as QDQ models.

`export_onnx(graph, path)` writes an ONNX model that ONNX Runtime runs with the same results as
the reference executor. The mapping is a table, `EMITTERS`, from IR operator to an emitter
function that writes the operator in float; fused activations (`act_min` / `act_max`) become a
Relu or Clip after the operator. NHWC operators are wrapped in Transposes (ONNX is NCHW). The
file is written atomically (temporary file + os.replace).

Float graphs: opset 17 (20 when the graph has a GELU).

Quantized graphs are written in ONNX Runtime's QDQ format, the one
`onnxruntime.quantization.quantize_static` writes, by wrapping the same float emitters in
QuantizeLinear / DequantizeLinear plumbing (nothing per operator beyond the table):

- integer constants (weights, quantized operands) are integer initializers read through a
  DequantizeLinear (per-axis `axis` set for per-channel weights: 0 for OIHW conv weights and
  (out, in) dense weights, which become Gemm with transB=1); int32 biases likewise, with the
  scale `S_in * S_w` they carry (float32) and zero point 0;
- every quantized activation tensor `t` is the output of a QuantizeLinear (named `t`, of its
  integer type, with its scale / zero point) placed after the float operator that computes it;
  consumers read it through one DequantizeLinear (`t_dq`);
- `quantize` / `dequantize` nodes are QuantizeLinear / DequantizeLinear; operators on float
  tensors (float islands such as layer_norm / gelu between dequantize and quantize, weight-only
  layers) are the plain float operators;
- where an emitter moves quantized data around the operator (Transposes of NHWC operators, the
  row Reshape of a dense, Transposes of matmul operands, the Flatten of a global pooling without
  keepdims) a QuantizeLinear -> DequantizeLinear pair with the tensor's own parameters follows
  the movement, so that ORT still sees DequantizeLinear -> operator -> QuantizeLinear groups;
  on values that are already dequantized integers this pair is exact (an identity).
- fused activations on a quantized output: ONNX Runtime's quantizer does not leave a Relu / Clip
  between an operator and its QuantizeLinear (`QDQRemovableActivation` removes it when the
  calibrated range makes it redundant, and otherwise gives it a QDQ group of its own), and ORT's
  optimizer fuses Relu / Clip into the QuantizeLinear when the range implies them. So a bound
  whose quantized value is already the end of the integer range (Relu with zero point = qmin,
  ReLU6 with the range inside [0, 6]: the usual case) is left to the QuantizeLinear's
  saturation; a bound that clamps inside the range becomes operator -> QuantizeLinear ->
  DequantizeLinear -> Relu/Clip -> QuantizeLinear (same parameters). Both are exactly the
  reference semantics (requantize, then clamp to the quantized bounds): quantization is
  monotone and QuantizeLinear(DequantizeLinear(q)) == q.

The QDQ model computes the graph's ONNX QDQ semantics (`requant_mode="float"`, the kernels of
`accelsim.ref.qdq_ops`), whatever the graph's `requant_mode`. A graph quantized in "gemmlowp"
mode computes with TFLite's fixed-point requantization instead: at 8 bits one step apart per
layer where a value sits near a rounding tie; TFLite's 16-bit kernels differ more (a multiplier
reduced to 16 bits, a softmax lookup table).

Opset: the lowest that holds every integer type and operator: 13 for int8 / uint8 (per-axis
DequantizeLinear), 21 for int16 / uint16 / int4 / uint4, 25 for int2 / uint2; at least 17 with a
layer_norm, 20 with a gelu, 14 with a `reshape(allowzero=1)`.

int64 biases (16-bit activations or weights): DequantizeLinear takes no int64 input (its input
types stop at int32, in every opset up to 25). A bias whose values all fit in int32 is written
as int32 (the same integers, so nothing changes). One that does not fit (it happens: with 16-bit
activations and weights `S_in * S_w` is ~2^16 times finer than at 8 bits) is written as a
float32 constant holding `float32(b * S_in * S_w)` (the real bias rounded once to float32) and
added by an Add after the operator, on the channel axis. Not as the Conv / Gemm's own bias
input: ONNX Runtime's optimizer (`WeightBiasQuantization`) rewrites a float bias of a Conv / Gemm
whose input and weights come from DequantizeLinear into int32 at scale `S_in * S_w` without a
range check, which cannot hold these values: ONNX Runtime 1.32 then computed resnet18 at
w16a16 thousands of steps off. The consequence: ONNX Runtime has no 16-bit
integer convolution kernels and computes such layers in float32 either way, so its results do
not change; but the layer is no longer one integer QDQ group, and `load_onnx` reads it back as
a float conv2d / dense on dequantized inputs, a float add and a quantize (float accumulation
instead of the exact integer one: one step apart where a value sits at a rounding tie).

Integer tensors without quantization parameters (int32 accumulators of ConvInteger /
MatMulInteger) have no QDQ form and raise a ModelError, as do operators without an emitter and
an explicit `opset` below the one the graph needs.

In ONNX Runtime (1.32, CPU; tests/test_qdq_export.py): 8-bit files fuse into integer kernels
(QLinearConv, QGemm, QLinearAdd, ...; int8 activations with the session option
"session.qdqisint8allowed" = "1") and match the reference executor bit for bit; 16-bit and int4
layers run as DequantizeLinear -> float32 operator -> QuantizeLinear. With int4 activations
ORT_ENABLE_ALL refuses the file (its QDQ fusion builds a QLinearConv on int4 input, which
QLinearConv does not accept); ORT_ENABLE_BASIC runs it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from accelsim.core.errors import ModelError
from accelsim.core.fsutil import atomic_write_bytes
from accelsim.core.qparams import NUMPY_DTYPE, dtype_range
from accelsim.model.graph import Graph, Node, TensorInfo
from accelsim.model.ops import activation_bounds, spatial_axes

_ELEM = {
    "float32": 1,
    "float16": 10,
    "uint8": 2,
    "int8": 3,
    "uint16": 4,
    "int16": 5,
    "int32": 6,
    "int64": 7,
    "bool": 9,
    "uint4": 21,
    "int4": 22,
    "uint2": 25,
    "int2": 26,
}
_PACKED = ("int4", "uint4", "int2", "uint2")  # sub-byte types: packed by onnx.helper

# Lowest opset whose QuantizeLinear / DequantizeLinear hold each integer type.
_QDQ_TYPE_OPSET = {
    "uint8": 13,
    "int8": 13,
    "int32": 13,
    "uint16": 21,
    "int16": 21,
    "uint4": 21,
    "int4": 21,
    "uint2": 25,
    "int2": 25,
}
# Operators whose ONNX form needs more than that (as the emitters below write them).
_OP_OPSET = {"layer_norm": 17, "gelu": 20, "hard_swish": 14}
_INT32 = np.iinfo(np.int32)


def _beyond_int32(value) -> bool:
    v = np.asarray(value)
    return bool(v.size) and (v.min() < _INT32.min or v.max() > _INT32.max)


def _tensor_proto(name: str, value, dtype: str | None = None):
    """An initializer; integer values are stored in the IR dtype `dtype` (the IR keeps some
    integer constants in wider numpy arrays)."""
    from onnx import helper, numpy_helper

    arr = np.asarray(value)
    if dtype in _PACKED:
        return helper.make_tensor(
            name, _ELEM[dtype], arr.shape, arr.astype(np.int64).ravel().tolist()
        )
    if dtype is not None and dtype not in ("float32", "float16"):
        arr = arr.astype(NUMPY_DTYPE[dtype], copy=False)
    return numpy_helper.from_array(arr, name)


class _Ctx:
    """Collects ONNX nodes and initializers while emitting.

    With `qdq` (quantized graphs) an integer IR tensor `t` is the ONNX tensor `t` of its integer
    type, and emitters see it through `float_view(t)`, a DequantizeLinear output; `origin` maps
    such views back to their IR tensors (for shapes).
    """

    def __init__(self, graph: Graph, opset: int, qdq: bool = False) -> None:
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.graph = graph
        self.opset = opset
        self.qdq = qdq
        self.nodes: list = []
        self.initializers: dict = {}
        self.names: set[str] = set(graph.tensors)  # tensor names
        self.node_names: set[str] = set()
        self.origin: dict[str, str] = {}
        self._views: dict[str, str] = {}
        self._qparams: dict[tuple[str, str], tuple[str, str, int | None]] = {}
        self.partial: set[str] = set()  # outputs whose emitter result is not yet the output
        for name, value in graph.constants.items():
            info = graph.tensors[name]
            self.initializers[name] = _tensor_proto(
                name, value, None if info.is_float else info.dtype
            )

    def fresh(self, base: str, taken: set[str] | None = None) -> str:
        taken = self.names if taken is None else taken
        name, i = base, 0
        while name in taken:
            i += 1
            name = f"{base}_{i}"
        taken.add(name)
        return name

    def const(self, base: str, value, dtype: str | None = None) -> str:
        name = self.fresh(base)
        self.initializers[name] = _tensor_proto(name, value, dtype)
        return name

    def add(self, op: str, inputs, outputs, name: str, **attrs) -> None:
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(
            self.helper.make_node(
                op, list(inputs), list(outputs), name=self.fresh(name, self.node_names), **attrs
            )
        )

    def info(self, tensor: str) -> TensorInfo | None:
        """The IR tensor behind an ONNX name (a DequantizeLinear view stands for its input)."""
        return self.graph.tensors.get(self.origin.get(tensor, tensor))

    def shape(self, tensor: str) -> tuple[int, ...]:
        return self.info(tensor).shape

    def is_f16(self, tensor: str) -> bool:
        info = self.graph.tensors.get(tensor)  # views are float32
        return info is not None and info.dtype == "float16"

    # -- Q/DQ plumbing (identities for float graphs) ------------------------------------------
    def quantized(self, tensor: str) -> bool:
        info = self.info(tensor)
        return self.qdq and info is not None and not info.is_float

    def qparams(self, tensor: str, fdtype: str = "float32") -> tuple[str, str, int | None]:
        """(scale, zero point, axis) initializers of IR tensor `tensor`'s QuantParams."""
        key = (tensor, fdtype)
        if key not in self._qparams:
            info = self.graph.tensors[tensor]
            q = info.quant
            if q is None:
                raise ModelError(
                    f"export_onnx: graph '{self.graph.name}': integer tensor "
                    f"'{tensor}' ({info.dtype}) has no quantization parameters, "
                    f"so it has no QDQ form (QuantizeLinear / DequantizeLinear)"
                )
            per_axis = q.axis is not None and len(q.scale) > 1  # one scale broadcasts
            scale = np.asarray(q.scale, NUMPY_DTYPE[fdtype])
            zp = q.zero_points()
            if not per_axis:
                scale, zp = scale.reshape(()), zp[:1].reshape(())
            zdt = "int32" if info.dtype == "int64" else info.dtype
            self._qparams[key] = (
                self.const(f"{tensor}_scale", scale),
                self.const(f"{tensor}_zero_point", zp, zdt),
                q.axis if per_axis else None,
            )
        return self._qparams[key]

    def float_view(self, tensor: str) -> str:
        """The float value of IR tensor `tensor`: itself when float, else a DequantizeLinear."""
        if not tensor or not self.quantized(tensor):
            return tensor
        if tensor not in self._views:
            src = self._bias_int32(tensor)
            if src is None:  # an int64 bias out of int32 range: a float bias (module docs)
                view = self.const(f"{tensor}_float", self._real(tensor))
            else:
                scale, zp, axis = self.qparams(tensor)
                view = self.fresh(f"{tensor}_dq")
                self.add(
                    "DequantizeLinear", [src, scale, zp], [view], f"{tensor}_dequantize", axis=axis
                )
            self.origin[view] = tensor
            self._views[tensor] = view
        return self._views[tensor]

    def wide(self, tensor: str) -> bool:
        """An int64 constant (a bias) whose values do not fit in int32."""
        info = self.graph.tensors.get(tensor)
        return (
            self.qdq
            and info is not None
            and info.dtype == "int64"
            and info.quant is not None
            and tensor in self.graph.constants
            and _beyond_int32(self.graph.constants[tensor])
        )

    def _bias_int32(self, tensor: str) -> str | None:
        """ONNX name of the integers of `tensor`; int64 constants become int32 (None when
        their values do not fit)."""
        info = self.graph.tensors[tensor]
        if info.dtype != "int64":
            return tensor
        value = self.graph.constants.get(tensor)
        if value is None:
            raise ModelError(
                f"export_onnx: graph '{self.graph.name}': int64 tensor '{tensor}' "
                f"is computed at run time; DequantizeLinear takes int32 at most"
            )
        if _beyond_int32(value):
            return None
        self.initializers[tensor] = _tensor_proto(tensor, value, "int32")
        return tensor

    def _real(self, tensor: str) -> np.ndarray:
        info = self.graph.tensors[tensor]
        q = info.quant
        v = np.asarray(self.graph.constants[tensor]).astype(np.float64)
        shape = q.broadcast_shape(v.ndim) if v.ndim else ()
        return ((v - q.zero_points().reshape(shape)) * q.scales().reshape(shape)).astype(np.float32)

    def quantize_to(self, x: str, tensor: str, name: str) -> None:
        """QuantizeLinear of float `x` into IR tensor `tensor` (its type and parameters)."""
        scale, zp, axis = self.qparams(tensor)
        self.add("QuantizeLinear", [x, scale, zp], [tensor], name, axis=axis)

    def requant(self, x: str, like: str) -> str:
        """`x` through QuantizeLinear -> DequantizeLinear with the parameters of the quantized
        tensor `like` (an IR name or a view); `x` itself for float tensors and float graphs."""
        tensor = self.origin.get(like, like)
        if not self.quantized(like) or tensor in self.partial:
            return x
        scale, zp, axis = self.qparams(tensor)
        q = self.fresh(f"{x}_q")
        self.add("QuantizeLinear", [x, scale, zp], [q], f"{x}_quantize", axis=axis)
        dq = self.fresh(f"{x}_dq")
        self.add("DequantizeLinear", [q, scale, zp], [dq], f"{x}_dequantize", axis=axis)
        self.origin[dq] = tensor
        return dq

    def transposed_const(self, w: str) -> str | None:
        """The transpose of 2-D constant `w` (an IR name or its view) as a constant: float, or
        integer + DequantizeLinear on the swapped axis. None when `w` is computed."""
        ir = self.origin.get(w, w)
        if ir not in self.graph.constants:
            return None
        value = np.ascontiguousarray(np.asarray(self.graph.constants[ir]).T)
        if not self.quantized(ir):
            return self.const(f"{w}_t", value)
        info = self.graph.tensors[ir]
        if info.dtype == "int64" or info.quant is None:
            return None
        scale, zp, axis = self.qparams(ir)
        wt = self.const(f"{ir}_t", value, info.dtype)
        view = self.fresh(f"{ir}_t_dq")
        self.add(
            "DequantizeLinear",
            [wt, scale, zp],
            [view],
            f"{ir}_t_dequantize",
            axis=None if axis is None else 1 - axis,
        )
        return view


Emitter = Callable[[_Ctx, Node, list[str], str], None]
EMITTERS: dict[str, Emitter] = {}


def _emits(*ops: str) -> Callable[[Emitter], Emitter]:
    def wrap(fn: Emitter) -> Emitter:
        for op in ops:
            EMITTERS[op] = fn
        return fn

    return wrap


def _nchw(
    ctx: _Ctx, node: Node, inputs: list[str], out: str, body: Callable[[str, str], None]
) -> None:
    """Run `body(x, y)` in NCHW; NHWC nodes get Transposes around it."""
    if node.attr("data_layout", "NCHW") == "NCHW":
        body(inputs[0], out)
        return
    x = ctx.fresh(f"{node.name}_nchw_in")
    ctx.add("Transpose", [inputs[0]], [x], f"{node.name}_to_nchw", perm=[0, 3, 1, 2])
    y = ctx.fresh(f"{node.name}_nchw_out")
    body(ctx.requant(x, inputs[0]), y)
    ctx.add(
        "Transpose",
        [ctx.requant(y, node.outputs[0])],
        [out],
        f"{node.name}_to_nhwc",
        perm=[0, 2, 3, 1],
    )


@_emits("conv2d")
def _conv(ctx: _Ctx, node: Node, ins: list[str], out: str) -> None:
    kh, kw = ctx.shape(ins[1])[2:]
    pads = list(node.attr("pads", (0, 0, 0, 0)))

    def body(x, y):
        ctx.add(
            "Conv",
            [x] + [t for t in ins[1:] if t],
            [y],
            node.name,
            kernel_shape=[kh, kw],
            strides=list(node.attr("strides", (1, 1))),
            dilations=list(node.attr("dilations", (1, 1))),
            pads=pads,
            group=int(node.attr("groups", 1)),
        )

    _nchw(ctx, node, ins, out, body)


@_emits("dense")
def _dense(ctx: _Ctx, node: Node, ins: list[str], out: str) -> None:
    x, w = ins[0], ins[1]
    bias = ins[2] if len(ins) > 2 and ins[2] else None
    n, k = ctx.shape(w)
    xs = ctx.shape(x)
    # TFLite semantics: rows of k features. QDQ graphs always run a 2-D Gemm (on rows, then
    # reshaped back), the form ORT fuses into an integer kernel with the bias.
    rows = xs[-1] != k or len(xs) == 1 or (ctx.qdq and len(xs) > 2)
    if rows:
        flat = ctx.fresh(f"{node.name}_rows")
        ctx.add(
            "Reshape",
            [x, ctx.const(f"{node.name}_rows_shape", np.array([-1, k], np.int64))],
            [flat],
            f"{node.name}_rows",
        )
        x, xs = ctx.requant(flat, ins[0]), (int(np.prod(xs)) // k, k)
    if len(xs) == 2:
        ys = ctx.shape(node.outputs[0])
        if not (ctx.qdq and rows and len(ys) != 2):
            ctx.add("Gemm", [x, w] + ([bias] if bias else []), [out], node.name, transB=1)
            return
        y = ctx.fresh(f"{node.name}_2d")
        ctx.add("Gemm", [x, w] + ([bias] if bias else []), [y], node.name, transB=1)
        ctx.add(
            "Reshape",
            [
                ctx.requant(y, node.outputs[0]),
                ctx.const(f"{node.name}_out_shape", np.array(ys, np.int64)),
            ],
            [out],
            f"{node.name}_unrows",
        )
        return
    wt = ctx.transposed_const(w)
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
            t = ctx.requant(tt, t)
        ab.append(t)
    ctx.add("MatMul", ab, [out], node.name)


def _simple(onnx_op: str) -> Emitter:
    def emit(ctx: _Ctx, node: Node, ins: list[str], out: str) -> None:
        ctx.add(onnx_op, ins, [out], node.name)

    return emit


# operators that are one ONNX node of the same inputs and no attributes
for _ir, _onnx in {
    "add": "Add",
    "sub": "Sub",
    "mul": "Mul",
    "relu": "Relu",
    "div": "Div",
    "pow": "Pow",
    "sigmoid": "Sigmoid",
    "tanh": "Tanh",
    "erf": "Erf",
    "neg": "Neg",
    "sqrt": "Sqrt",
    "hard_swish": "HardSwish",
}.items():
    EMITTERS[_ir] = _simple(_onnx)


@_emits("hard_sigmoid")
def _hard_sigmoid(ctx: _Ctx, node: Node, ins: list[str], out: str) -> None:
    alpha, beta = float(node.attr("alpha", 0.2)), float(node.attr("beta", 0.5))
    ctx.add("HardSigmoid", ins, [out], node.name, alpha=alpha, beta=beta)


@_emits("gather")
def _gather(ctx: _Ctx, node: Node, ins: list[str], out: str) -> None:
    ctx.add("Gather", ins, [out], node.name, axis=int(node.attr("axis", 0)))


@_emits("concat")
def _concat(ctx: _Ctx, node: Node, ins: list[str], out: str) -> None:
    ctx.add("Concat", ins, [out], node.name, axis=int(node.attr("axis")))


def _pool(onnx_op: str) -> Emitter:
    def emit(ctx: _Ctx, node: Node, ins: list[str], out: str) -> None:
        attrs = dict(
            kernel_shape=list(node.attr("kernel")),
            strides=list(node.attr("strides", (1, 1))),
            pads=list(node.attr("pads", (0, 0, 0, 0))),
            ceil_mode=1 if node.attr("ceil_mode", False) else None,
        )
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
            x = ctx.requant(x, ins[0])
        ctx.add("GlobalAveragePool", [x], [y], node.name)
    else:
        _nchw(ctx, node, ins, out, lambda a, b: ctx.add("GlobalAveragePool", [a], [b], node.name))
    if not keep:
        ctx.add("Flatten", [ctx.requant(y, node.outputs[0])], [out], f"{node.name}_flatten", axis=1)


@_emits("mean")
def _mean(ctx: _Ctx, node: Node, ins: list[str], out: str) -> None:
    axes = [int(a) for a in node.attr("axes")]
    keep = 1 if node.attr("keepdims", True) else 0
    if ctx.opset >= 18:
        ctx.add(
            "ReduceMean",
            [ins[0], ctx.const(f"{node.name}_axes", np.array(axes, np.int64))],
            [out],
            node.name,
            keepdims=keep,
        )
    else:
        ctx.add("ReduceMean", [ins[0]], [out], node.name, axes=axes, keepdims=keep)


def _clip_to(ctx: _Ctx, x: str, out: str, name: str, lo, hi) -> None:
    if lo is not None and lo == 0.0 and hi is None:
        ctx.add("Relu", [x], [out], name)
        return
    dt = np.float16 if ctx.is_f16(x) else np.float32
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
    ctx.add(
        "Reshape",
        [ins[0], shape],
        [out],
        node.name,
        allowzero=1 if node.attr("allowzero", 0) else None,
    )


@_emits("flatten")
def _flatten(ctx: _Ctx, node: Node, ins: list[str], out: str) -> None:
    ctx.add("Flatten", ins, [out], node.name, axis=int(node.attr("axis", 1)))


@_emits("squeeze")
def _squeeze(ctx: _Ctx, node: Node, ins: list[str], out: str) -> None:
    axes = node.attr("axes")
    extra = [] if axes is None else [ctx.const(f"{node.name}_axes", np.array(axes, np.int64))]
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
        ctx.add(
            "Mul",
            [x, ctx.const(f"{node.name}_beta_value", np.array(beta, np.float32))],
            [xb],
            f"{node.name}_beta",
        )
        x = xb
    ctx.add("Softmax", [x], [out], node.name, axis=int(node.attr("axis", -1)))


@_emits("pad")
def _pad(ctx: _Ctx, node: Node, ins: list[str], out: str) -> None:
    pairs = node.attr("pads")
    pads = [int(a) for a, _ in pairs] + [int(b) for _, b in pairs]
    dt = np.float16 if ctx.is_f16(ins[0]) else np.float32
    ctx.add(
        "Pad",
        [
            ins[0],
            ctx.const(f"{node.name}_pads", np.array(pads, np.int64)),
            ctx.const(f"{node.name}_value", np.array(node.attr("value", 0.0), dt)),
        ],
        [out],
        node.name,
        mode="constant",
    )


@_emits("layer_norm")
def _layer_norm(ctx: _Ctx, node: Node, ins: list[str], out: str) -> None:
    ctx.add(
        "LayerNormalization",
        [t for t in ins if t],
        [out],
        node.name,
        axis=int(node.attr("axis", -1)),
        epsilon=float(node.attr("epsilon", 1e-5)),
    )


@_emits("batch_norm")
def _batch_norm(ctx: _Ctx, node: Node, ins: list[str], out: str) -> None:
    eps = float(node.attr("epsilon", 1e-5))
    if len(ctx.shape(ins[0])) != 4:
        ctx.add("BatchNormalization", ins[:5], [out], node.name, epsilon=eps)
        return
    _nchw(
        ctx,
        node,
        ins,
        out,
        lambda x, y: ctx.add("BatchNormalization", [x] + ins[1:5], [y], node.name, epsilon=eps),
    )


@_emits("gelu")
def _gelu(ctx: _Ctx, node: Node, ins: list[str], out: str) -> None:
    ctx.add("Gelu", ins, [out], node.name, approximate=node.attr("approximate", "none"))


# ---------------------------------------------------------------------------------------------
# QDQ: quantize / dequantize nodes, and the wrapper around the float emitters
# ---------------------------------------------------------------------------------------------

QDQ_EMITTERS: dict[str, Callable[[_Ctx, Node], None]] = {}


def _qdq_emits(op: str):
    def wrap(fn):
        QDQ_EMITTERS[op] = fn
        return fn

    return wrap


@_qdq_emits("quantize")
def _quantize(ctx: _Ctx, node: Node) -> None:
    """QuantizeLinear; an integer input (requantization) is read through its
    DequantizeLinear."""
    x, out = node.inputs[0], node.outputs[0]
    if not ctx.quantized(out):
        raise ModelError(
            f"export_onnx: graph '{ctx.graph.name}': quantize node '{node.name}' "
            f"has the float output '{out}'"
        )
    ctx.quantize_to(ctx.float_view(x), out, node.name)


@_qdq_emits("dequantize")
def _dequantize(ctx: _Ctx, node: Node) -> None:
    """DequantizeLinear into the node's own output (scale in the output's float type)."""
    x, out = node.inputs[0], node.outputs[0]
    fdtype = ctx.graph.tensors[out].dtype
    if not ctx.quantized(x):  # already float: a cast at most
        same = fdtype == ctx.graph.tensors[x].dtype
        ctx.add(
            "Identity" if same else "Cast",
            [x],
            [out],
            node.name,
            to=None if same else _ELEM[fdtype],
        )
        return
    src = ctx._bias_int32(x)
    if src is None:  # int64 beyond int32: the float constant
        ctx.add("Identity", [ctx.float_view(x)], [out], node.name)
        return
    scale, zp, axis = ctx.qparams(x, fdtype)
    ctx.add("DequantizeLinear", [src, scale, zp], [out], node.name, axis=axis)


def _clamp_bounds(ctx: _Ctx, node: Node) -> tuple[float | None, float | None]:
    """The fused activation bounds that still clamp something. On a quantized output a bound
    whose quantized value is the end of the integer range is the QuantizeLinear's own
    saturation (ORT's quantizer and optimizer drop such a Relu / Clip): it is left out."""
    lo, hi = activation_bounds(node.attrs)
    lo = float(lo) if np.isfinite(lo) else None
    hi = float(hi) if np.isfinite(hi) else None
    out = node.outputs[0]
    info = ctx.graph.tensors[out]
    if ctx.quantized(out) and info.quant is not None and info.quant.axis is None:
        from accelsim.core.qparams import quantize_array

        qmin, qmax = dtype_range(info.dtype)

        def q(v: float) -> int:
            return int(quantize_array(np.array(v, np.float32), info.quant, info.dtype))

        if lo is not None and q(lo) <= qmin:
            lo = None
        if hi is not None and q(hi) >= qmax:
            hi = None
    return lo, hi


def _emit(ctx: _Ctx, node: Node) -> None:
    """One IR node: the float emitter on the float values of its inputs; a quantized output
    is the QuantizeLinear of the float result (after a Relu / Clip where one still clamps)."""
    special = QDQ_EMITTERS.get(node.op) if ctx.qdq else None
    if special is not None:
        special(ctx, node)
        return
    out = node.outputs[0]
    wide = [t for t in node.inputs if ctx.wide(t)]
    ins = ["" if t in wide else ctx.float_view(t) for t in node.inputs]
    quantized = ctx.quantized(out)
    lo, hi = _clamp_bounds(ctx, node)
    clamp = lo is not None or hi is not None
    if not quantized and not clamp and not wide:
        EMITTERS[node.op](ctx, node, ins, out)
        return
    target = ctx.fresh(f"{out}_float" if quantized else f"{out}_pre_act")
    if wide:  # the emitter's result lacks the bias: no Q/DQ pair with the output's parameters
        ctx.partial.add(out)
    EMITTERS[node.op](ctx, node, ins, target)
    ctx.partial.discard(out)
    for t in wide:  # an int64 bias beyond int32: added in float after the operator (docs)
        rank = len(ctx.shape(out))
        axis = spatial_axes(node.attr("data_layout", "NCHW"))[0] if rank == 4 else rank - 1
        shape = [1] * rank
        shape[axis] = -1
        summed = ctx.fresh(f"{out}_biased")
        ctx.add(
            "Add",
            [target, ctx.const(f"{t}_float", ctx._real(t).reshape(shape))],
            [summed],
            f"{node.name}_bias",
        )
        target = summed
    if clamp:
        act = ctx.fresh(f"{out}_act") if quantized else out
        _clip_to(ctx, ctx.requant(target, out), act, f"{node.name}_act", lo, hi)
        target = act
    if quantized:
        ctx.quantize_to(target, out, f"{node.name}_quantize")


def _is_qdq(graph: Graph) -> bool:
    return (
        graph.is_quantized
        or any(n.op in ("quantize", "dequantize") for n in graph.nodes)
        or any(graph.tensors[c].is_quantized for c in graph.constants)
    )


def qdq_opset(graph: Graph) -> int:
    """The lowest opset that holds every integer type and operator of quantized `graph`."""
    need = 13
    used = set(graph.inputs) | {t for n in graph.nodes for t in (*n.inputs, *n.outputs) if t}
    for t in used:
        info = graph.tensors[t]
        if not info.is_float:
            need = max(need, _QDQ_TYPE_OPSET.get(info.dtype, 13))
    for n in graph.nodes:
        need = max(need, _OP_OPSET.get(n.op, 13))
        if n.op == "reshape" and n.attr("allowzero", 0):
            need = max(need, 14)
    return need


def export_onnx(graph: Graph, path: str | os.PathLike, opset: int | None = None) -> Path:
    """Write `graph` as an ONNX model at `path` (atomically); returns the path. Quantized
    graphs are written as QDQ models (module docstring)."""
    import onnx
    from onnx import helper

    qdq = _is_qdq(graph)
    table = set(EMITTERS) | (set(QDQ_EMITTERS) if qdq else set())
    missing = sorted({n.op for n in graph.nodes if n.op not in table})
    if missing:
        raise ModelError(
            f"export_onnx: graph '{graph.name}' has operators without an ONNX "
            f"mapping: {', '.join(missing)}"
        )
    if qdq:
        need = qdq_opset(graph)
        if opset is not None and opset < need:
            raise ModelError(
                f"export_onnx: graph '{graph.name}' needs opset {need} or later "
                f"(its integer types and operators), asked for opset {opset}"
            )
        opset = opset or need
    elif opset is None:
        opset = 20 if any(n.op == "gelu" for n in graph.nodes) else 17
    ctx = _Ctx(graph, opset, qdq)
    for node in graph.nodes:
        _emit(ctx, node)

    def vi(name: str):
        info = graph.tensors[name]
        return helper.make_tensor_value_info(name, _ELEM[info.dtype], list(info.shape))

    used = {t for n in ctx.nodes for t in n.input} | set(graph.outputs)
    inits = [t for name, t in ctx.initializers.items() if name in used]
    g = helper.make_graph(
        ctx.nodes, graph.name, [vi(i) for i in graph.inputs], [vi(o) for o in graph.outputs], inits
    )
    model = helper.make_model(
        g, opset_imports=[helper.make_opsetid("", opset)], producer_name="accelsim"
    )
    # readable by ONNX Runtime releases of 2023+, unless the opset needs a later IR version
    model.ir_version = max(
        min(model.ir_version, 9), helper.find_min_ir_version_for(list(model.opset_import))
    )
    onnx.checker.check_model(model)
    path = Path(path)
    atomic_write_bytes(path, model.SerializeToString())  # mode 0644 like every output
    return path
