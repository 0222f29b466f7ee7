"""ONNX -> accelsim IR: the project's own mapping (not TVM's front end).

`load_onnx(path_or_model)` returns a `Graph` in the IR's conventions (NCHW, conv weights OIHW,
dense weights (out, in), pads (top, left, bottom, right)).

Float models map operator by operator. Quantized models come in two forms, both supported:

- QDQ models (QuantizeLinear / DequantizeLinear around float operators, as
  `onnxruntime.quantization.quantize_static` writes them). A DequantizeLinear of a constant
  becomes an integer constant with `QuantParams`; a QuantizeLinear on an activation becomes a
  `quantize` node and its DequantizeLinear a "dequantized view" of that integer tensor; an
  operator whose inputs are all such views and whose only consumer is a QuantizeLinear becomes
  the IR operator on quantized tensors, with the QuantizeLinear's parameters on its output.
  Anything else runs in float on dequantized inputs, exactly as the QDQ model says. Graph
  inputs stay float (followed by `quantize`), float graph outputs end with `dequantize`.
- Integer operators (QLinearConv, QLinearMatMul, ConvInteger, MatMulInteger, QuantizeLinear,
  DequantizeLinear) map onto the same IR operators; ConvInteger / MatMulInteger produce int32
  accumulators (no `QuantParams`).

Quantized graphs get `requant_mode="float"`: the reference executor then runs them with
ONNX Runtime's integer kernels' semantics (`accelsim.ref.qdq_ops`).

Supported float operators: Conv (2-D, groups, dilations, auto_pad), Gemm (constant B ->
dense, else matmul; alpha / beta / transA / transB), MatMul (constant 2-D B -> dense, else
matmul, batched), Add, Sub, Mul, Div, Pow, Sum, Relu, Clip (attributes or inputs), Sigmoid,
Tanh, HardSigmoid, HardSwish, Swish, Erf, Gelu, Neg, Sqrt, MaxPool, AveragePool,
GlobalAveragePool, ReduceMean, Concat (any axis), Reshape, Flatten, Squeeze, Unsqueeze,
Softmax (both axis conventions), Pad (constant, reflect, edge), Transpose, Slice, Split,
Gather (run-time or constant indices: embeddings, a class token), GatherElements, Tile,
Resize (nearest and linear, the ONNX coordinate rules but tf_crop_and_resize and
half_pixel_symmetric), DepthToSpace (DCR, CRD), Where, Cast, Less, Greater, Equal,
LayerNormalization (last axis), BatchNormalization, Identity, Dropout, Constant.
Patterns exporters write for one operator are fused (only as direct float chains): GELU as
x * 0.5 * (1 + erf(x / sqrt(2))) and as the tanh form, hard-swish as x * relu6(x + 3) / 6
and as x * HardSigmoid(x), layer norm as ReduceMean / Sub / Pow / ReduceMean / Add / Sqrt /
Div (then Mul and Add by constants). Shape arithmetic (Shape, Gather, Cast, Slice,
ConstantOfShape, Expand, Range, ...) is evaluated at import time when its inputs are
constant. Quantized: the same operators between DequantizeLinear and QuantizeLinear, plus
QuantizeLinear, DequantizeLinear (also ORT's com.microsoft forms), QLinearConv, QLinearMatMul,
ConvInteger and MatMulInteger, in int2 / int4 / int8 / int16 (signed and unsigned) with
per-tensor or per-axis parameters. float8 / float4 types and blocked quantization raise a
ModelError; unsupported operators one UnsupportedOpError naming every such node.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from accelsim.core.errors import AccelsimError, ModelError, UnsupportedOpError
from accelsim.core.fsutil import check_finite, read_bytes
from accelsim.core.qparams import NUMPY_DTYPE, QuantParams, dtype_range
from accelsim.model.builder import GraphBuilder
from accelsim.model.graph import Graph, TensorInfo

# Resize's coordinate rules (the ONNX names among the ones the reference executor knows)
P_COORD_MODES = (
    "half_pixel",
    "pytorch_half_pixel",
    "align_corners",
    "asymmetric",
    "tf_half_pixel_for_nn",
)

# ONNX TensorProto element types the IR can hold.
_ONNX_DTYPES = {
    1: "float32",
    10: "float16",
    2: "uint8",
    3: "int8",
    4: "uint16",
    5: "int16",
    6: "int32",
    7: "int64",
    9: "bool",
    21: "uint4",
    22: "int4",
    25: "uint2",
    26: "int2",
}
_ONNX_TYPE_NAMES = {
    0: "UNDEFINED",
    1: "FLOAT",
    2: "UINT8",
    3: "INT8",
    4: "UINT16",
    5: "INT16",
    6: "INT32",
    7: "INT64",
    8: "STRING",
    9: "BOOL",
    10: "FLOAT16",
    11: "DOUBLE",
    12: "UINT32",
    13: "UINT64",
    14: "COMPLEX64",
    15: "COMPLEX128",
    16: "BFLOAT16",
    17: "FLOAT8E4M3FN",
    18: "FLOAT8E4M3FNUZ",
    19: "FLOAT8E5M2",
    20: "FLOAT8E5M2FNUZ",
    21: "UINT4",
    22: "INT4",
    23: "FLOAT4E2M1",
    24: "FLOAT8E8M0",
    25: "UINT2",
    26: "INT2",
}
_INT_DTYPES = ("int2", "uint2", "int4", "uint4", "int8", "uint8", "int16", "uint16", "int32")


def _dtype_of(elem_type: int, what: str) -> str:
    dt = _ONNX_DTYPES.get(int(elem_type))
    if dt is None:
        tname = _ONNX_TYPE_NAMES.get(int(elem_type), str(elem_type))
        raise ModelError(
            f"{what} has element type {tname}, which accelsim does not support: it "
            f"models float32/float16 tensors and integer quantization (int2 to "
            f"int32); float8/float4 formats are outside that"
        )
    return dt


# ---------------------------------------------------------------------------------------------
# Values flowing between ONNX nodes during the conversion
# ---------------------------------------------------------------------------------------------


@dataclass
class _V:
    """What an ONNX tensor name stands for.

    kind "ir":    an IR tensor (`name`), float or integer;
    kind "const": a constant numpy `value` of IR dtype `dtype` (integer constants made by a
                  folded QuantizeLinear also carry `quant`);
    kind "dq":    the float output of a DequantizeLinear: of the quantized IR tensor `name`, or
                  of the integer constant `value` (`dtype`, `quant`); `fdtype` is its float type.
    """

    kind: str
    name: str | None = None
    value: np.ndarray | None = None
    dtype: str | None = None
    quant: QuantParams | None = None
    fdtype: str = "float32"


@dataclass
class _QTarget:
    """The QuantizeLinear that absorbs an operator's output."""

    index: int
    out: str
    dtype: str
    quant: QuantParams


_Handler = Callable[["_Importer", int, Any], None]
_HANDLERS: dict[str, _Handler] = {}

# Operators that are only accepted when all their inputs are constants (shape arithmetic as
# exporters write it); they are evaluated at import time with ONNX's reference evaluator.
_FOLD_ONLY = (
    "Cast",
    "Ceil",
    "ConstantOfShape",
    "Div",
    "Equal",
    "Exp",
    "Floor",
    "Gather",
    "Greater",
    "Less",
    "Log",
    "Max",
    "Min",
    "Neg",
    "Not",
    "Pow",
    "Range",
    "Reciprocal",
    "ReduceProd",
    "Shape",
    "Size",
    "Slice",
    "Sqrt",
    "Tile",
    "Where",
)


def _op(*names: str) -> Callable[[_Handler], _Handler]:
    def wrap(fn: _Handler) -> _Handler:
        for n in names:
            _HANDLERS[n] = fn
        return fn

    return wrap


def supported_ops() -> tuple[str, ...]:
    """ONNX operator types the importer accepts (fold-only ones need constant inputs)."""
    return tuple(sorted(set(_HANDLERS) | set(_FOLD_ONLY) | {"Constant"}))


def load_onnx(
    source: str | os.PathLike | Any, constants: Mapping[str, np.ndarray] | None = None
) -> Graph:
    """Import an ONNX model file (or an `onnx.ModelProto`) as a `Graph`.

    `constants` freezes graph inputs to the given values (e.g. quantization parameters that a
    model takes as inputs; accelsim models static quantization, so they must be known).
    """
    import onnx

    if isinstance(source, onnx.ModelProto):
        model, where = source, f"model '{source.graph.name or 'onnx'}'"
    else:
        path = Path(source)
        where = str(source)
        data = read_bytes(path, "ONNX model file", ModelError)
        model = onnx.ModelProto()
        try:
            model.ParseFromString(data)
        except Exception as exc:  # protobuf DecodeError and friends
            raise ModelError(
                f"{where}: not an ONNX model (cannot parse it as an ONNX protobuf: "
                f"{type(exc).__name__})"
            ) from None
        if model.ir_version <= 0 or not model.HasField("graph") or not model.opset_import:
            raise ModelError(f"{where}: not an ONNX model (no ir_version, graph or opset_import)")
        if any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
            try:
                onnx.load_external_data_for_model(model, str(path.parent))
            except Exception as exc:
                raise ModelError(f"{where}: cannot load external tensor data ({exc})") from None
    imp = _Importer(model, where, dict(constants or {}))
    imp.path = None if isinstance(source, onnx.ModelProto) else str(source)
    return imp.run()


# ---------------------------------------------------------------------------------------------
# The importer
# ---------------------------------------------------------------------------------------------


class _Importer:
    def __init__(self, model, where: str, frozen: dict[str, np.ndarray]) -> None:
        self.model = model
        self.g = model.graph
        self.where = where
        self.frozen = frozen
        self.opset = 1
        for imp in model.opset_import:
            if imp.domain in ("", "ai.onnx"):
                self.opset = int(imp.version)
        self.nodes = list(self.g.node)
        self.env: dict[str, _V] = {}
        self.initializers = {t.name: t for t in self.g.initializer}
        self.graph_outputs = [o.name for o in self.g.output]
        self.consumers: dict[str, list[int]] = {}
        for i, n in enumerate(self.nodes):
            for t in n.input:
                if t:
                    self.consumers.setdefault(t, []).append(i)
        self.absorbed: set[int] = set()
        self.skip: set[int] = set()
        # fused patterns: node index -> (IR op, ONNX input names, attributes)
        self.fused: dict[int, tuple[str, list[str], dict[str, Any]]] = {}
        self.float_views: dict[str, str] = {}
        self.const_ir: dict[int, str] = {}
        quantized = any(n.op_type in _QUANT_OPS for n in self.nodes)
        self.b = GraphBuilder(self.g.name or "onnx", "float" if quantized else "gemmlowp")

    # -- diagnostics ------------------------------------------------------------------------
    def node_name(self, idx: int, node) -> str:
        return node.name or f"{node.op_type}_{idx}"

    def err(self, idx: int, node, msg: str) -> ModelError:
        return ModelError(
            f"{self.where}: node '{self.node_name(idx, node)}' ({node.op_type}): {msg}"
        )

    # -- entry ------------------------------------------------------------------------------
    def run(self) -> Graph:
        self._check_ops()
        self._inputs()
        self._find_patterns()
        for idx, node in enumerate(self.nodes):  # constants first: QDQ parameters may follow
            if node.op_type == "Constant":
                _constant(self, idx, node)
        blocked: list[str] = []  # nodes that cannot run: all named in one error at the end
        poisoned: set[str] = set()
        for idx, node in enumerate(self.nodes):
            if idx in self.skip or idx in self.absorbed or node.op_type == "Constant":
                continue
            fused_ins = self.fused[idx][1] if idx in self.fused else []
            if any(t in poisoned for t in [*node.input, *fused_ins] if t):
                poisoned.update(o for o in node.output if o)
                continue
            if idx in self.fused:
                op, ins, attrs = self.fused[idx]
                self.emit(
                    idx,
                    node,
                    op,
                    [self.f_in(i) if i else "" for i in ins],
                    out=node.output[0],
                    **attrs,
                )
                continue
            if self._fold(idx, node):
                continue
            handler = _HANDLERS.get(node.op_type)
            if handler is None:  # fold-only op with non-constant inputs
                blocked.append(
                    f"'{self.node_name(idx, node)}' ({node.op_type}, supported only on constant "
                    f"inputs)"
                )
                poisoned.update(o for o in node.output if o)
                continue
            handler(self, idx, node)
        if blocked:
            raise UnsupportedOpError(
                f"{self.where}: {len(blocked)} node(s) compute at run time what accelsim "
                f"supports only as shape arithmetic on constants: {', '.join(blocked)}"
            )
        self._outputs()
        meta = {
            "source": "onnx",
            "opset": self.opset,
            "producer": f"{self.model.producer_name} {self.model.producer_version}".strip(),
        }
        if self.path is not None:
            meta["file"] = self.path
        meta.update(self.b.metadata)
        self.b.metadata = meta
        try:
            return self.b.build()
        except ModelError as exc:
            raise ModelError(f"{self.where}: {exc}") from None

    def _check_ops(self) -> None:
        supported = supported_ops()
        bad = []
        for idx, node in enumerate(self.nodes):
            op = node.op_type
            if node.domain == "com.microsoft" and op in ("QuantizeLinear", "DequantizeLinear"):
                node.domain = ""  # ORT's contrib Q/DQ (16-bit QDQ): the same semantics
            ok = node.domain in ("", "ai.onnx") and (
                op in _HANDLERS or op in _FOLD_ONLY or op == "Constant"
            )
            if not ok:
                shown = op if node.domain in ("", "ai.onnx") else f"{node.domain}.{op}"
                bad.append((self.node_name(idx, node), shown))
        if len(bad) == 1:
            raise UnsupportedOpError(
                f"{self.where}: node '{bad[0][0]}' has op type '{bad[0][1]}', which accelsim "
                f"does not support; supported: {', '.join(supported)}"
            )
        if bad:
            listed = ", ".join(f"'{n}' ({op})" for n, op in bad)
            raise UnsupportedOpError(
                f"{self.where}: {len(bad)} nodes have op types accelsim does not support: "
                f"{listed}; supported: {', '.join(supported)}"
            )

    def _inputs(self) -> None:
        for name, arr in self.frozen.items():
            arr = np.asarray(arr)
            decl = next((i for i in self.g.input if i.name == name), None)
            if decl is None:
                raise ModelError(
                    f"{self.where}: cannot freeze '{name}': the model has no such input"
                )
            dt = _dtype_of(decl.type.tensor_type.elem_type, f"{self.where}: input '{name}'")
            self.env[name] = _V("const", value=arr.astype(NUMPY_DTYPE[dt]), dtype=dt)
        fixed = []
        for inp in self.g.input:
            if inp.name in self.initializers or inp.name in self.frozen:
                continue
            tt = inp.type.tensor_type
            if not inp.type.HasField("tensor_type"):
                raise ModelError(f"{self.where}: input '{inp.name}' is not a tensor")
            dt = _dtype_of(tt.elem_type, f"{self.where}: input '{inp.name}'")
            if not tt.HasField("shape"):
                raise ModelError(
                    f"{self.where}: input '{inp.name}' has no static shape (unknown "
                    f"rank); accelsim needs static input shapes"
                )
            shape = []
            for i, d in enumerate(tt.shape.dim):
                if d.HasField("dim_value") and d.dim_value == 0:
                    raise ModelError(
                        f"{self.where}: input '{inp.name}' has an empty dimension {i} (size 0)"
                    )
                if d.HasField("dim_value") and d.dim_value > 0:
                    shape.append(int(d.dim_value))
                elif i == 0:
                    shape.append(1)
                    fixed.append(inp.name)
                else:
                    label = d.dim_param or "?"
                    raise ModelError(
                        f"{self.where}: input '{inp.name}' has a dynamic dimension "
                        f"{i} ('{label}'); accelsim needs static input shapes "
                        f"(only a dynamic batch dimension is fixed to 1)"
                    )
            self.b.input(inp.name, shape, dt)
            self.env[inp.name] = _V("ir", name=inp.name)
        if fixed:
            self.b.metadata["dynamic_batch_fixed_to_1"] = tuple(fixed)

    def _outputs(self) -> None:
        done: set[str] = set()
        for name in self.graph_outputs:
            v = self.val(name)
            if v.kind == "dq" and v.name is not None:
                ir = self.b.add(
                    "dequantize",
                    [v.name],
                    name=f"{name}_dequantize",
                    outputs=[name],
                    dtype=v.fdtype,
                )
            elif v.kind == "ir":
                ir = v.name
                if ir != name:
                    if (
                        ir not in done
                        and ir not in self.b.inputs
                        and ir not in self.b.constants
                        and name not in self.b.tensors
                    ):
                        self._rename(ir, name)
                        ir = name
                    else:
                        info = self.b.tensors[ir]
                        ir = self.b.add(
                            "reshape",
                            [ir],
                            name=f"{name}_copy",
                            outputs=[name],
                            shape=info.shape,
                            dtype=info.dtype,
                            quant=info.quant,
                        )
            else:
                ir = self.const_in(name)
            done.add(ir)
            self.b.output(ir)

    def _rename(self, old: str, new: str) -> None:
        b = self.b
        info = b.tensors.pop(old)
        b.tensors[new] = TensorInfo(new, info.shape, info.dtype, info.quant)
        if old in b.constants:
            b.constants[new] = b.constants.pop(old)
        for i, n in enumerate(b.nodes):
            if old in n.inputs or old in n.outputs:
                b.nodes[i] = type(n)(
                    n.name,
                    n.op,
                    tuple(new if t == old else t for t in n.inputs),
                    tuple(new if t == old else t for t in n.outputs),
                    n.attrs,
                )
        for _k, v in self.env.items():
            if v.name == old:
                v.name = new

    # -- values -----------------------------------------------------------------------------
    def val(self, name: str) -> _V:
        v = self.env.get(name)
        if v is not None:
            return v
        init = self.initializers.get(name)
        if init is not None:
            v = self._tensor_const(init, f"{self.where}: initializer '{name}'")
            self.env[name] = v
            return v
        raise ModelError(f"{self.where}: tensor '{name}' is used before anything produces it")

    def _tensor_const(self, tensor, what: str) -> _V:
        from onnx import numpy_helper

        if tensor.data_type == 11:  # DOUBLE: keep as float32 (accelsim computes in float)
            value = numpy_helper.to_array(tensor).astype(np.float32)
            check_finite(value, what, ModelError)
            return _V("const", value=value, dtype="float32")
        dt = _dtype_of(tensor.data_type, what)
        arr = numpy_helper.to_array(tensor)
        check_finite(arr, what, ModelError)
        arr = np.asarray(arr).astype(NUMPY_DTYPE[dt])
        return _V("const", value=arr, dtype=dt)

    def const(self, name: str) -> np.ndarray | None:
        """The value of `name` if it is known at import time (a DequantizeLinear of a constant
        is evaluated as ONNX Runtime computes it)."""
        if not name:
            return None
        v = self.val(name)
        if v.kind == "const":
            return v.value
        if v.kind == "dq" and v.name is None:
            return _dequantize_const(v)
        return None

    def need_const(self, idx, node, name: str, what: str) -> np.ndarray:
        c = self.const(name)
        if c is None:
            raise self.err(
                idx,
                node,
                f"{what} ('{name}') must be a constant (an initializer); "
                f"accelsim needs it at import time",
            )
        return c

    def shape(self, name: str) -> tuple[int, ...]:
        v = self.val(name)
        if v.kind == "const" or (v.kind == "dq" and v.name is None):
            return tuple(v.value.shape)
        return self.b.tensors[v.name].shape

    def is_qview(self, name: str) -> bool:
        return bool(name) and self.val(name).kind == "dq"

    def const_in(self, name: str, dtype: str | None = None) -> str:
        """An IR constant for constant `name` (float value for a dequantized constant)."""
        v = self.val(name)
        if v.kind == "dq" and v.name is None:
            arr, dt = _dequantize_const(v), v.fdtype
        else:
            arr, dt = v.value, dtype or v.dtype
        key = id(v)
        if key in self.const_ir and dtype is None:
            return self.const_ir[key]
        ir = self.b.const(name, arr, dt)
        if dtype is None:
            self.const_ir[key] = ir
        return ir

    def f_in(self, name: str) -> str:
        """IR tensor for the float value of `name` (materializes dequantized views)."""
        v = self.val(name)
        if v.kind == "ir":
            return v.name
        if v.kind == "const" or v.name is None:
            return self.const_in(name)
        if v.name not in self.float_views:
            self.float_views[v.name] = self.b.add(
                "dequantize",
                [v.name],
                name=f"{v.name}_dequantize",
                outputs=[f"{v.name}_dequantized"],
                dtype=v.fdtype,
            )
        return self.float_views[v.name]

    def any_in(self, name: str) -> str:
        """IR tensor for `name` as it is (integer tensors stay integer)."""
        v = self.val(name)
        if v.kind == "const":
            return self.const_in(name)
        if v.kind == "ir":
            return v.name
        return self.f_in(name)

    def q_in(
        self,
        name: str,
        axis_map: Callable[[int], int] | None = None,
        transform: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> str:
        """IR tensor for the integer tensor behind the dequantized view `name`.

        For constants, `transform` rearranges the data (e.g. a transpose) and `axis_map` maps
        the per-axis quantization axis accordingly.
        """
        v = self.val(name)
        assert v.kind == "dq", name
        if v.name is not None:
            return v.name
        key = -id(v)  # one IR constant per integer constant (when used as it is)
        if transform is None and axis_map is None and key in self.const_ir:
            return self.const_ir[key]
        arr, q = v.value, v.quant
        if transform is not None:
            arr = transform(arr)
        if q.axis is not None and axis_map is not None:
            q = QuantParams(q.scale, q.zero_point, axis_map(q.axis))
        ir = self.b.const(name, arr, v.dtype, quant=q)
        if transform is None and axis_map is None:
            self.const_ir[key] = ir
        return ir

    def qinfo(self, name: str) -> tuple[str, QuantParams]:
        v = self.val(name)
        if v.kind == "dq" and v.name is None:
            return v.dtype, v.quant
        info = self.b.tensors[v.name]
        return info.dtype, info.quant

    def bind(self, onnx_name: str, v: _V) -> None:
        self.env[onnx_name] = v

    def emit(
        self,
        idx: int,
        node,
        op: str,
        inputs: Sequence[str],
        out: str,
        dtype: str | None = None,
        quant: QuantParams | None = None,
        **attrs,
    ) -> str:
        """Add an IR node named after the ONNX node; bind ONNX tensor `out` to its output."""
        try:
            ir = self.b.add(
                op,
                list(inputs),
                name=self.node_name(idx, node),
                outputs=[out],
                dtype=dtype,
                quant=quant,
                **attrs,
            )
        except AccelsimError as exc:  # ModelError, ShapeError from shape inference
            raise self.err(idx, node, str(exc)) from None
        self.bind(out, _V("ir", name=ir))
        return ir

    def attrs(self, node) -> dict[str, Any]:
        from onnx import helper

        out = {}
        for a in node.attribute:
            v = helper.get_attribute_value(a)
            if isinstance(v, bytes):
                v = v.decode()
            out[a.name] = v
        return out

    # -- QDQ --------------------------------------------------------------------------------
    def q_target(
        self, idx: int, node, data: Sequence[str], output: str | None = None
    ) -> _QTarget | None:
        """The QuantizeLinear absorbing `node`'s output (`output`, for one of several), if
        every data input is a dequantized view and that QuantizeLinear is the output's only
        consumer."""
        outs = [output] if output else [o for o in node.output if o]
        if len(outs) != 1 or outs[0] in self.graph_outputs:
            return None
        if not all(self.is_qview(d) for d in data if d):
            return None
        cons = self.consumers.get(outs[0], [])
        if len(cons) != 1:
            return None
        q = self.nodes[cons[0]]
        if q.op_type != "QuantizeLinear" or q.input[0] != outs[0] or cons[0] in self.skip:
            return None
        try:
            dtype, quant = self.qparams(cons[0], q, 0)
        except ModelError:
            return None
        return _QTarget(cons[0], q.output[0], dtype, quant)

    def absorb(self, t: _QTarget) -> None:
        self.absorbed.add(t.index)

    def qparams(
        self, idx: int, node, rank: int, x_dtype: str | None = None
    ) -> tuple[str, QuantParams]:
        """(integer dtype, QuantParams) of a QuantizeLinear / DequantizeLinear node."""
        a = self.attrs(node)
        if a.get("block_size", 0):
            raise self.err(
                idx,
                node,
                f"blocked quantization (block_size={a['block_size']}) is "
                f"not supported: accelsim's quantization parameters are per-tensor "
                f"or per-axis",
            )
        scale = np.asarray(self.need_const(idx, node, node.input[1], "the scale"))
        if not np.issubdtype(scale.dtype, np.floating):
            raise self.err(idx, node, f"the scale must be float, found {scale.dtype}")
        zp_name = node.input[2] if len(node.input) > 2 else ""
        if zp_name:
            zp = np.asarray(self.need_const(idx, node, zp_name, "the zero point"))
            zv = self.val(zp_name)
            dtype = zv.dtype if zv.kind == "const" else _np_to_ir(zp)
        else:
            zp = np.zeros(scale.shape, dtype=np.int64)
            if node.op_type == "QuantizeLinear":
                od = a.get("output_dtype", 0)
                dtype = (
                    _dtype_of(od, f"{self.where}: node '{self.node_name(idx, node)}' output_dtype")
                    if od
                    else "uint8"
                )
            else:
                dtype = x_dtype or "uint8"
        if dtype not in _INT_DTYPES:
            raise self.err(idx, node, f"quantized type {dtype} is not an integer type")
        if scale.ndim > 1 or zp.ndim > 1:
            raise self.err(
                idx,
                node,
                f"scale of shape {list(scale.shape)}: only per-tensor or "
                f"per-axis (1-D) quantization parameters are supported",
            )
        if scale.size == 1 and zp.size == 1:
            return dtype, QuantParams((float(scale.ravel()[0]),), (int(zp.ravel()[0]),), None)
        axis = int(a.get("axis", 1))
        if rank:
            axis = axis % rank
        return dtype, QuantParams(
            tuple(float(s) for s in scale.ravel()), tuple(int(z) for z in zp.ravel()), axis
        )

    def requant_to(self, idx: int, node, ir: str, t: _QTarget) -> None:
        """Bind the absorbing QuantizeLinear's output to `ir` (data movement output with the
        input's quantization), requantizing when its parameters differ."""
        info = self.b.tensors[ir]
        if info.quant == t.quant and info.dtype == t.dtype:
            self.bind(t.out, _V("ir", name=ir))
        else:
            q = self.b.add(
                "quantize",
                [ir],
                name=f"{self.node_name(idx, node)}_requantize",
                outputs=[t.out],
                dtype=t.dtype,
                quant=t.quant,
            )
            self.bind(t.out, _V("ir", name=q))
        self.absorb(t)

    def set_quant(self, idx: int, node, name: str, dtype: str, quant: QuantParams) -> str:
        """IR tensor for `name` carrying (`dtype`, `quant`) (QLinear* / *Integer inputs)."""
        v = self.val(name)
        if v.kind == "const":
            lo, hi = dtype_range(dtype)
            if v.dtype != dtype and (
                v.dtype not in _INT_DTYPES + ("int64",)
                or v.value.size
                and (v.value.min() < lo or v.value.max() > hi)
            ):
                raise self.err(idx, node, f"input '{name}' has type {v.dtype}, expected {dtype}")
            if quant.axis is not None and quant.axis >= v.value.ndim:
                raise self.err(
                    idx, node, f"quantization axis {quant.axis} out of range for '{name}'"
                )
            return self.b.const(name, v.value, dtype, quant=quant)
        if v.kind == "dq":
            raise self.err(
                idx, node, f"input '{name}' is float (a DequantizeLinear output), expected {dtype}"
            )
        info = self.b.tensors[v.name]
        if info.quant == quant and info.dtype == dtype:
            return v.name
        if info.dtype != dtype:
            raise self.err(idx, node, f"input '{name}' has type {info.dtype}, expected {dtype}")
        if info.quant is None and v.name in self.b.inputs:
            self.b.set_tensor(TensorInfo(info.name, info.shape, info.dtype, quant))
            return v.name
        # another reading of the same integers: a reinterpreting (no-op) reshape
        return self.b.add(
            "reshape",
            [v.name],
            name=f"{v.name}_as_{node.op_type}",
            outputs=[f"{v.name}_q"],
            shape=info.shape,
            dtype=dtype,
            quant=quant,
        )

    # -- constant folding --------------------------------------------------------------------
    def _fold(self, idx: int, node) -> bool:
        ins = [t for t in node.input if t]
        if node.op_type == "Shape":  # static shapes: always known at import time
            shape = np.array(self.shape(node.input[0]), dtype=np.int64)
            a = self.attrs(node)
            start, end = a.get("start", 0), a.get("end", None)
            self.bind(node.output[0], _V("const", value=shape[start:end], dtype="int64"))
            return True
        if node.op_type in ("QuantizeLinear", "DequantizeLinear", "Identity", "Dropout"):
            return False
        if not ins or not all(self.val(t).kind == "const" for t in ins):
            return False
        if any(self.val(t).dtype in ("int2", "uint2", "int4", "uint4") for t in ins):
            return False
        from onnx import helper
        from onnx.reference import ReferenceEvaluator

        feeds = {t: self.val(t).value for t in ins}
        g = helper.make_graph(
            [node],
            "fold",
            [
                helper.make_tensor_value_info(
                    t, helper.np_dtype_to_tensor_dtype(feeds[t].dtype), feeds[t].shape
                )
                for t in ins
            ],
            [helper.make_tensor_value_info(o, 0, None) for o in node.output if o],
        )
        m = helper.make_model(g, opset_imports=list(self.model.opset_import))
        try:
            outs = ReferenceEvaluator(m).run(None, feeds)
        except Exception as exc:
            raise self.err(idx, node, f"cannot evaluate on constant inputs ({exc})") from None
        for o, arr in zip([o for o in node.output if o], outs):
            arr = np.asarray(arr)
            if arr.dtype == np.float64:
                arr = arr.astype(np.float32)
            self.bind(o, _V("const", value=arr, dtype=_np_to_ir(arr)))
        return True

    # -- patterns exporters write for one operator -------------------------------------------
    def _find_patterns(self) -> None:
        """Fuse float chains that compute one operator: GELU (erf and tanh forms), hard-swish
        (x * relu6(x + 3) / 6, x * HardSigmoid(x)) and layer normalisation (ReduceMean, Sub,
        Pow, ReduceMean, Add, Sqrt, Div, then Mul and Add by constants). Only direct chains
        match: in a QDQ model every step is its own quantized operator and stays one."""
        _Patterns(self).find()


class _Patterns:
    """Matching of the fused patterns over the ONNX node list."""

    def __init__(self, imp: _Importer) -> None:
        self.imp = imp
        self.nodes = imp.nodes
        self.producer = {o: i for i, n in enumerate(self.nodes) for o in n.output if o}

    def cval(self, name: str) -> np.ndarray | None:
        from onnx import numpy_helper

        if name in self.imp.initializers:
            return numpy_helper.to_array(self.imp.initializers[name])
        i = self.producer.get(name)
        if i is not None and self.nodes[i].op_type == "Constant":
            a = self.imp.attrs(self.nodes[i])
            if "value" in a:
                return numpy_helper.to_array(a["value"])
            if "value_float" in a:
                return np.array(a["value_float"])
        return None

    def scalar(self, name: str, target: float, tol: float = 1e-4) -> bool:
        c = self.cval(name)
        return (
            c is not None
            and c.size == 1
            and np.issubdtype(c.dtype, np.number)
            and abs(float(c.ravel()[0]) - target) <= tol * max(1.0, abs(target))
        )

    def only_consumer(self, name: str) -> int | None:
        c = self.imp.consumers.get(name, [])
        return c[0] if len(c) == 1 and name not in self.imp.graph_outputs else None

    def node(self, i: int | None, *ops: str):
        return self.nodes[i] if i is not None and self.nodes[i].op_type in ops else None

    @staticmethod
    def other(node, name: str) -> str | None:
        ins = list(node.input)
        if len(ins) != 2:
            return None
        return ins[1] if ins[0] == name else ins[0] if ins[1] == name else None

    def fuse(self, at: int, skip: set[int], op: str, inputs: list[str], **attrs) -> None:
        taken = self.imp.skip | set(self.imp.fused)
        if at in taken or skip & taken:
            return
        self.imp.skip |= skip
        self.imp.fused[at] = (op, inputs, attrs)

    def find(self) -> None:
        for i, n in enumerate(self.nodes):
            if n.op_type == "Erf":
                self.gelu_erf(i, n)
            elif n.op_type == "Tanh":
                self.gelu_tanh(i, n)
            elif n.op_type == "Add":
                self.hard_swish_add(i, n)
            elif n.op_type == "HardSigmoid":
                self.hard_swish_hardsigmoid(i, n)
            elif n.op_type == "ReduceMean":
                self.layer_norm(i, n)

    # GELU ----------------------------------------------------------------------------------
    def gelu_tail(self, fi: int, x: str) -> tuple[set[int], int] | None:
        """From f (erf or tanh of the scaled x): (1 + f), times x, times 0.5, in either order.
        Returns (nodes to skip, the last node) or None."""
        ai = self.only_consumer(self.nodes[fi].output[0])
        a = self.node(ai, "Add")
        if a is None or not self.scalar(self.other(a, self.nodes[fi].output[0]) or "", 1.0):
            return None
        mi = self.only_consumer(a.output[0])
        m = self.node(mi, "Mul")
        if m is None:
            return None
        o = self.other(m, a.output[0])
        if o == x:  # x * (1 + f) then * 0.5
            hi = self.only_consumer(m.output[0])
            h = self.node(hi, "Mul")
            if h is None or not self.scalar(self.other(h, m.output[0]) or "", 0.5):
                return None
            return {ai, mi}, hi
        hi = self.producer.get(o or "")  # (x * 0.5) * (1 + f)
        h = self.node(hi, "Mul")
        if h is None or self.only_consumer(o) != mi:
            return None
        if not (
            (h.input[0] == x and self.scalar(h.input[1], 0.5))
            or (h.input[1] == x and self.scalar(h.input[0], 0.5))
        ):
            return None
        return {ai, hi}, mi

    def gelu_erf(self, ei: int, e) -> None:
        di = self.producer.get(e.input[0])
        d = self.node(di, "Div", "Mul")
        if d is None or self.only_consumer(d.output[0]) != ei:
            return
        if d.op_type == "Div" and self.scalar(d.input[1], math.sqrt(2.0)):
            x = d.input[0]
        elif d.op_type == "Mul" and self.scalar(d.input[1], 1 / math.sqrt(2.0)):
            x = d.input[0]
        elif d.op_type == "Mul" and self.scalar(d.input[0], 1 / math.sqrt(2.0)):
            x = d.input[1]
        else:
            return
        tail = self.gelu_tail(ei, x)
        if tail:
            skip, last = tail
            self.fuse(last, skip | {di, ei}, "gelu", [x], approximate="none")

    def gelu_tanh(self, ti: int, t) -> None:
        """tanh(sqrt(2/pi) * (x + 0.044715 * x^3)), x^3 as Pow(x, 3) or products of x."""
        si = self.producer.get(t.input[0])
        sm = self.node(si, "Mul")
        k = math.sqrt(2.0 / math.pi)
        if sm is None or self.only_consumer(sm.output[0]) != ti:
            return
        inner = sm.input[1] if self.scalar(sm.input[0], k) else sm.input[0]
        if not self.scalar(self.other(sm, inner) or "", k):
            return
        ii = self.producer.get(inner)
        add = self.node(ii, "Add")
        if add is None or self.only_consumer(inner) != si:
            return
        for x, cube_term in ((add.input[0], add.input[1]), (add.input[1], add.input[0])):
            ci = self.producer.get(cube_term)
            cm = self.node(ci, "Mul")
            if cm is None or self.only_consumer(cube_term) != ii:
                continue
            cube = cm.input[1] if self.scalar(cm.input[0], 0.044715) else cm.input[0]
            if not self.scalar(self.other(cm, cube) or "", 0.044715):
                continue
            chain = self.cube_of(cube, x, ci)
            if chain is None:
                continue
            tail = self.gelu_tail(ti, x)
            if tail:
                skip, last = tail
                self.fuse(last, skip | chain | {si, ii, ci, ti}, "gelu", [x], approximate="tanh")
            return

    def cube_of(self, name: str, x: str, consumer: int) -> set[int] | None:
        """The nodes computing x^3 into `name` (Pow(x, 3), x * (x * x), (x * x) * x)."""
        pi = self.producer.get(name)
        if pi is None or self.only_consumer(name) != consumer:
            return None
        p = self.nodes[pi]
        if p.op_type == "Pow" and p.input[0] == x and self.scalar(p.input[1], 3.0):
            return {pi}
        if p.op_type != "Mul":
            return None
        sq = self.other(p, x)
        qi = self.producer.get(sq or "")
        q = self.node(qi, "Mul")
        if q is not None and list(q.input) == [x, x] and self.only_consumer(sq) == pi:
            return {pi, qi}
        return None

    # hard-swish -----------------------------------------------------------------------------
    def hard_swish_add(self, ai: int, a) -> None:
        """x * clip(x + 3, 0, 6) / 6 (also * (1/6), and relu6 as Clip with constants)."""
        x = a.input[1] if self.scalar(a.input[0], 3.0) else a.input[0]
        if not self.scalar(self.other(a, x) or "", 3.0):
            return
        ci = self.only_consumer(a.output[0])
        c = self.node(ci, "Clip")
        if c is None:
            return
        lo, hi = (c.input[1], c.input[2]) if len(c.input) == 3 else ("", "")
        a_c = self.imp.attrs(c)
        if not (self.scalar(lo, 0.0) and self.scalar(hi, 6.0)) and not (
            float(a_c.get("min", -1)) == 0.0 and float(a_c.get("max", -1)) == 6.0
        ):
            return
        mi = self.only_consumer(c.output[0])
        m = self.node(mi, "Mul")
        if m is None or self.other(m, c.output[0]) != x:
            return
        di = self.only_consumer(m.output[0])
        d = self.node(di, "Div", "Mul")
        if d is None or d.input[0] != m.output[0]:
            return
        if (d.op_type == "Div" and self.scalar(d.input[1], 6.0)) or (
            d.op_type == "Mul" and self.scalar(d.input[1], 1 / 6.0)
        ):
            self.fuse(di, {ai, ci, mi}, "hard_swish", [x])

    def hard_swish_hardsigmoid(self, hi: int, h) -> None:
        """x * HardSigmoid(x; alpha=1/6, beta=1/2): torch's hardswish below opset 14."""
        a = self.imp.attrs(h)
        if abs(float(a.get("alpha", 0.2)) - 1 / 6) > 1e-6 or abs(float(a.get("beta", 0.5)) - 0.5):
            return
        x = h.input[0]
        mi = self.only_consumer(h.output[0])
        m = self.node(mi, "Mul")
        if m is not None and self.other(m, h.output[0]) == x:
            self.fuse(mi, {hi}, "hard_swish", [x])

    # layer normalisation ----------------------------------------------------------------------
    def _last_axis_mean(self, n) -> bool:
        if self.imp.attrs(n).get("keepdims", 1) == 0:
            return False
        axes = self.imp.attrs(n).get("axes")
        if axes is None and len(n.input) > 1:
            axes = self.cval(n.input[1])
        if axes is None:
            return False
        axes = [int(v) for v in np.asarray(axes).ravel()]
        x = n.input[0]
        if x in self.imp.initializers or len(axes) != 1:
            return False
        rank = self._rank(x)
        if rank is None:  # shape not recorded: only the explicit last axis
            return axes == [-1]
        return axes[0] % rank == rank - 1

    def _rank(self, name: str) -> int | None:
        for vi in list(self.imp.g.value_info) + list(self.imp.g.input):
            if vi.name == name and vi.type.tensor_type.HasField("shape"):
                return len(vi.type.tensor_type.shape.dim)
        return None

    def layer_norm(self, ri: int, r) -> None:
        if not self._last_axis_mean(r):
            return
        x = r.input[0]
        cons = self.imp.consumers.get(r.output[0], [])
        sub_i = cons[0] if len(cons) == 1 else None
        sub = self.node(sub_i, "Sub")
        if sub is None or list(sub.input) != [x, r.output[0]]:
            return
        d = sub.output[0]
        dc = self.imp.consumers.get(d, [])
        if len(dc) != 2 or d in self.imp.graph_outputs:
            return
        pow_i = next((i for i in dc if self.nodes[i].op_type in ("Pow", "Mul")), None)
        div_i = next((i for i in dc if self.nodes[i].op_type == "Div"), None)
        if pow_i is None or div_i is None:
            return
        pw = self.nodes[pow_i]
        if not (
            (pw.op_type == "Pow" and pw.input[0] == d and self.scalar(pw.input[1], 2.0))
            or (pw.op_type == "Mul" and list(pw.input) == [d, d])
        ):
            return
        vi = self.only_consumer(pw.output[0])
        v = self.node(vi, "ReduceMean")
        if v is None or not self._last_axis_mean(v):
            return
        ei = self.only_consumer(v.output[0])
        e = self.node(ei, "Add")
        eps_name = self.other(e, v.output[0]) if e is not None else None
        eps = self.cval(eps_name or "")
        if eps is None or eps.size != 1:
            return
        qi = self.only_consumer(e.output[0])
        q = self.node(qi, "Sqrt")
        if q is None or self.only_consumer(q.output[0]) != div_i:
            return
        dv = self.nodes[div_i]
        if list(dv.input) != [d, q.output[0]]:
            return
        last, skip = div_i, {ri, sub_i, pow_i, vi, ei, qi}
        scale = bias = ""
        gi = self.only_consumer(dv.output[0])
        g = self.node(gi, "Mul")
        width = None
        if g is not None:
            gamma = self.other(g, dv.output[0])
            gv = self.cval(gamma or "")
            if gv is not None and gv.ndim <= 1:
                scale, width = gamma, gv.size
                skip.add(last)
                last = gi
                bi = self.only_consumer(g.output[0])
                b = self.node(bi, "Add")
                if b is not None:
                    beta = self.other(b, g.output[0])
                    bv = self.cval(beta or "")
                    if bv is not None and bv.ndim <= 1 and bv.size == width:
                        bias = beta
                        skip.add(last)
                        last = bi
        self.fuse(
            last,
            skip,
            "layer_norm",
            [x, scale, bias],
            axis=-1,
            epsilon=float(eps.ravel()[0]),
        )


_QUANT_OPS = (
    "QuantizeLinear",
    "DequantizeLinear",
    "QLinearConv",
    "QLinearMatMul",
    "ConvInteger",
    "MatMulInteger",
)


def _np_to_ir(arr: np.ndarray) -> str:
    name = np.dtype(arr.dtype).name
    if name not in NUMPY_DTYPE:
        raise ModelError(f"unsupported constant dtype {name}")
    return name


def _dequantize_const(v: _V) -> np.ndarray:
    """DequantizeLinear of an integer constant as ONNX Runtime computes it (float32)."""
    from accelsim.core.qparams import dequantize_array

    return dequantize_array(v.value, v.quant, v.fdtype)


# ---------------------------------------------------------------------------------------------
# Operator handlers
# ---------------------------------------------------------------------------------------------


def _ints(v, n=None) -> tuple[int, ...]:
    return tuple(int(i) for i in v) if v is not None else ()


def _spatial_pads(imp: _Importer, idx: int, node, a: dict, in_hw, k_hw, strides, dilations):
    auto = a.get("auto_pad", "NOTSET") or "NOTSET"
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = [0, 0, 0, 0]
        for i in range(2):
            eff = (k_hw[i] - 1) * dilations[i] + 1
            out = -(-in_hw[i] // strides[i])
            total = max((out - 1) * strides[i] + eff - in_hw[i], 0)
            small, big = total // 2, total - total // 2
            pads[i], pads[i + 2] = (small, big) if auto == "SAME_UPPER" else (big, small)
        return tuple(pads)
    if auto == "VALID":
        return (0, 0, 0, 0)
    pads = _ints(a.get("pads")) or (0, 0, 0, 0)
    if len(pads) != 4:
        raise imp.err(idx, node, f"pads {list(pads)}: only 2-D spatial operators are supported")
    if any(p < 0 for p in pads):
        raise imp.err(idx, node, f"negative pads {list(pads)} are not supported")
    return pads  # ONNX (x1_begin, x2_begin, x1_end, x2_end) == IR (top, left, bottom, right)


def _check_4d(imp, idx, node, name):
    shape = imp.shape(name)
    if len(shape) != 4:
        raise imp.err(
            idx,
            node,
            f"input '{name}' has shape {list(shape)}; only 2-D (NCHW) "
            f"spatial operators are supported",
        )
    return shape


@_op("Conv", "ConvInteger", "QLinearConv")
def _conv(imp: _Importer, idx: int, node) -> None:
    op = node.op_type
    a = imp.attrs(node)
    ins = list(node.input) + [""] * 9
    if op == "QLinearConv":
        x, w, bias = ins[0], ins[3], ins[8]
    elif op == "ConvInteger":
        x, w, bias = ins[0], ins[1], ""
    else:
        x, w, bias = ins[0], ins[1], ins[2]
    xs = _check_4d(imp, idx, node, x)
    ws = imp.shape(w)
    if len(ws) != 4:
        raise imp.err(idx, node, f"weights of shape {list(ws)}: only 2-D convolution is supported")
    strides = _ints(a.get("strides")) or (1, 1)
    dil = _ints(a.get("dilations")) or (1, 1)
    pads = _spatial_pads(imp, idx, node, a, xs[2:], ws[2:], strides, dil)
    attrs = dict(
        strides=strides, dilations=dil, pads=pads, groups=int(a.get("group", 1)), data_layout="NCHW"
    )
    out = node.output[0]
    if op == "QLinearConv":
        xdt, xq = _explicit_q(imp, idx, node, ins[1], ins[2], x)
        wdt, wq = _explicit_q(imp, idx, node, ins[4], ins[5], w, axis=0)
        ydt, yq = _explicit_q(imp, idx, node, ins[6], ins[7], None)
        xin = imp.set_quant(idx, node, x, xdt, xq)
        win = imp.set_quant(idx, node, w, wdt, wq)
        inputs = [xin, win] + ([_bias_in(imp, idx, node, bias)] if bias else [])
        imp.emit(idx, node, "conv2d", inputs, out, dtype=ydt, quant=yq, **attrs)
        return
    if op == "ConvInteger":
        inputs = [
            _integer_operand(imp, idx, node, x, ins[2], None),
            _integer_operand(imp, idx, node, w, ins[3], 0),
        ]
        imp.emit(idx, node, "conv2d", inputs, out, dtype="int32", **attrs)
        return
    t = imp.q_target(idx, node, [x, w] + ([bias] if bias else []))
    if t is not None:
        xdt, xq = imp.qinfo(x)
        wdt, wq = imp.qinfo(w)
        ok = xq.axis is None and (wq.axis is None or wq.axis == 0)
        if bias:
            bdt, bq = imp.qinfo(bias)
            ok = ok and bdt == "int32" and imp.val(bias).name is None
        if ok:
            inputs = [imp.q_in(x), imp.q_in(w)] + ([imp.q_in(bias)] if bias else [])
            imp.emit(idx, node, "conv2d", inputs, t.out, dtype=t.dtype, quant=t.quant, **attrs)
            imp.absorb(t)
            return
    inputs = [imp.f_in(x), imp.f_in(w)] + ([imp.f_in(bias)] if bias else [])
    imp.emit(idx, node, "conv2d", inputs, out, dtype="float32", **attrs)


def _explicit_q(
    imp: _Importer, idx, node, scale: str, zp: str, of: str | None, axis: int | None = None
) -> tuple[str, QuantParams]:
    """(dtype, QuantParams) from a QLinear* operator's scale / zero-point inputs."""
    s = np.asarray(imp.need_const(idx, node, scale, "the scale")).astype(np.float32)
    if zp:
        z = np.asarray(imp.need_const(idx, node, zp, "the zero point"))
        zv = imp.val(zp)
        dt = zv.dtype if zv.kind == "const" else _np_to_ir(z)
    else:
        z = np.zeros(1, dtype=np.int64)
        dt = "uint8"
    if s.size == 1 and z.size == 1:
        return dt, QuantParams((float(s.ravel()[0]),), (int(z.ravel()[0]),), None)
    if axis is None:
        raise imp.err(
            idx, node, f"per-axis parameters for '{of or 'the output'}' are not supported here"
        )
    n = max(s.size, z.size)
    return dt, QuantParams(
        tuple(float(v) for v in np.broadcast_to(s.ravel(), (n,))),
        tuple(int(v) for v in np.broadcast_to(z.ravel(), (n,))),
        axis,
    )


def _integer_operand(imp: _Importer, idx, node, name: str, zp: str, axis: int | None) -> str:
    """A ConvInteger / MatMulInteger operand: zero points as QuantParams with scale 1."""
    v = imp.val(name)
    dt = v.dtype if v.kind == "const" else imp.b.tensors[v.name].dtype if v.kind == "ir" else None
    if dt not in _INT_DTYPES:
        raise imp.err(idx, node, f"input '{name}' must be an integer tensor")
    if not zp:
        return imp.any_in(name)
    z = np.asarray(imp.need_const(idx, node, zp, "the zero point")).ravel()
    if z.size == 1:
        q = QuantParams((1.0,), (int(z[0]),), None)
    else:
        if axis is None:
            raise imp.err(idx, node, f"a per-axis zero point for '{name}' is not supported")
        rank = len(imp.shape(name))
        q = QuantParams((1.0,) * z.size, tuple(int(i) for i in z), axis % rank)
    return imp.set_quant(idx, node, name, dt, q)


def _bias_in(imp: _Importer, idx, node, name: str) -> str:
    v = imp.val(name)
    if v.kind == "const":
        return imp.const_in(name, "int32")
    return imp.any_in(name)


@_op("Gemm")
def _gemm(imp: _Importer, idx: int, node) -> None:
    a = imp.attrs(node)
    A, B = node.input[0], node.input[1]
    C = node.input[2] if len(node.input) > 2 else ""
    alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
    ta, tb = int(a.get("transA", 0)), int(a.get("transB", 0))
    out = node.output[0]
    b_const = imp.val(B).kind == "const" or (imp.val(B).kind == "dq" and imp.val(B).name is None)
    nout = imp.shape(B)[0 if tb else 1]
    c_vec = False
    if C:
        cs = imp.shape(C)
        c_vec = (
            int(np.prod(cs)) in (1, nout)
            and (len(cs) <= 1 or cs[0] == 1)
            and (
                imp.val(C).kind == "const" or (imp.val(C).kind == "dq" and imp.val(C).name is None)
            )
        )
    name = imp.node_name(idx, node)
    t = imp.q_target(idx, node, [A, B] + ([C] if C else []))
    if t is not None and b_const and alpha == 1.0 and beta == 1.0 and (not C or c_vec):
        bdt, bq = imp.qinfo(B)
        axis_ok = bq.axis is None or bq.axis == (0 if tb else 1)
        if C:
            cdt, _ = imp.qinfo(C)
            axis_ok = axis_ok and cdt == "int32"
        if axis_ok and imp.qinfo(A)[1].axis is None:
            x = imp.q_in(A)
            if ta:
                x = imp.b.add("transpose", [x], name=f"{name}_transA", perm=(1, 0))
            w = imp.q_in(
                B,
                axis_map=(lambda ax: 1 - ax) if not tb else None,
                transform=None if tb else (lambda m: np.ascontiguousarray(m.T)),
            )
            ins = [x, w]
            if C:
                cv = imp.val(C)
                bias = np.broadcast_to(cv.value.reshape(-1), (nout,)).astype(np.int32)
                bq = (
                    cv.quant
                    if cv.quant.axis is None
                    else QuantParams(cv.quant.scale, cv.quant.zero_point, 0)
                )
                ins.append(imp.b.const(C, bias, "int32", quant=bq))
            imp.emit(idx, node, "dense", ins, t.out, dtype=t.dtype, quant=t.quant)
            imp.absorb(t)
            return
    x = imp.f_in(A)
    if ta:
        x = imp.b.add("transpose", [x], name=f"{name}_transA", perm=(1, 0))
    if b_const:
        w = np.asarray(imp.const(B), dtype=np.float32)
        w = w if tb else w.T
        if alpha != 1.0:
            w = (w * np.float32(alpha)).astype(np.float32)
        ins = [x, imp.b.const(B, np.ascontiguousarray(w), "float32")]
        if C and c_vec:
            bias = np.broadcast_to(np.asarray(imp.const(C), np.float32).reshape(-1), (nout,))
            ins.append(imp.b.const(C, (bias * np.float32(beta)).astype(np.float32), "float32"))
        y = imp.emit(idx, node, "dense", ins, out if not C or c_vec else f"{out}_gemm")
    else:
        y = imp.emit(
            idx,
            node,
            "matmul",
            [x, imp.f_in(B)],
            out if (not C and alpha == 1.0) else f"{out}_gemm",
            transpose_b=bool(tb),
        )
        if alpha != 1.0:
            al = imp.b.const(f"{name}_alpha", np.array(alpha, np.float32))
            y = imp.emit(idx, node, "mul", [y, al], out if not C else f"{out}_alpha")
    if C and not (b_const and c_vec):
        c = imp.f_in(C)
        if beta != 1.0:
            bt = imp.b.const(f"{name}_beta", np.array(beta, np.float32))
            c = imp.b.add("mul", [c, bt], name=f"{name}_beta_mul")
        imp.emit(idx, node, "add", [y, c], out)


@_op("MatMul", "MatMulInteger", "QLinearMatMul")
def _matmul(imp: _Importer, idx: int, node) -> None:
    op = node.op_type
    ins = list(node.input) + [""] * 8
    A, B = (ins[0], ins[3]) if op == "QLinearMatMul" else (ins[0], ins[1])
    sa, sb = imp.shape(A), imp.shape(B)
    if len(sa) < 2 or len(sb) < 2:
        raise imp.err(
            idx,
            node,
            f"operands of shapes {list(sa)} and {list(sb)}: 1-D MatMul operands are not supported",
        )
    out = node.output[0]
    bv = imp.val(B)
    b_const = bv.kind == "const" or (bv.kind == "dq" and bv.name is None)
    dense = b_const and len(sb) == 2
    if op in ("QLinearMatMul", "MatMulInteger"):
        if op == "QLinearMatMul":
            adt, aq = _explicit_q(imp, idx, node, ins[1], ins[2], A, axis=len(sa) - 2)
            bdt, bq = _explicit_q(imp, idx, node, ins[4], ins[5], B, axis=len(sb) - 1)
            ydt, yq = _explicit_q(imp, idx, node, ins[6], ins[7], None)
            a_in = imp.set_quant(idx, node, A, adt, aq)
        else:
            a_in = _integer_operand(imp, idx, node, A, ins[2], len(sa) - 2)
            bdt = imp.val(B).dtype if b_const else imp.b.tensors[bv.name].dtype
            z = imp.const(ins[3]) if ins[3] else None
            bq = None
            if z is not None:
                z = np.asarray(z).ravel()
                bq = QuantParams(
                    (1.0,) * z.size, tuple(int(i) for i in z), None if z.size == 1 else len(sb) - 1
                )
            ydt, yq = "int32", None
        if dense and (bq is None or bq.axis is None or bq.axis == 1):
            wq = (
                None
                if bq is None
                else QuantParams(bq.scale, bq.zero_point, None if bq.axis is None else 0)
            )
            w = imp.b.const(B, np.ascontiguousarray(bv.value.T), bdt, quant=wq)
            imp.emit(idx, node, "dense", [a_in, w], out, dtype=ydt, quant=yq)
        else:
            b_in = imp.set_quant(idx, node, B, bdt, bq) if bq is not None else imp.any_in(B)
            imp.emit(idx, node, "matmul", [a_in, b_in], out, dtype=ydt, quant=yq)
        return
    t = imp.q_target(idx, node, [A, B])
    if t is not None and imp.qinfo(A)[1].axis is None:
        bq = imp.qinfo(B)[1]
        if dense and (bq.axis is None or bq.axis == 1):
            w = imp.q_in(
                B, axis_map=lambda ax: 1 - ax, transform=lambda m: np.ascontiguousarray(m.T)
            )
            imp.emit(idx, node, "dense", [imp.q_in(A), w], t.out, dtype=t.dtype, quant=t.quant)
            imp.absorb(t)
            return
        if not dense and (bq.axis is None or bq.axis == len(sb) - 1):
            imp.emit(
                idx, node, "matmul", [imp.q_in(A), imp.q_in(B)], t.out, dtype=t.dtype, quant=t.quant
            )
            imp.absorb(t)
            return
    if dense:
        w = np.ascontiguousarray(np.asarray(imp.const(B), np.float32).T)
        imp.emit(idx, node, "dense", [imp.f_in(A), imp.b.const(B, w, "float32")], out)
    else:
        imp.emit(idx, node, "matmul", [imp.f_in(A), imp.f_in(B)], out)


def _binary(ir_op: str) -> _Handler:
    def handler(imp: _Importer, idx: int, node) -> None:
        A, B = node.input[0], node.input[1]
        t = imp.q_target(idx, node, [A, B])
        if t is not None and imp.qinfo(A)[1].axis is None and imp.qinfo(B)[1].axis is None:
            imp.emit(
                idx, node, ir_op, [imp.q_in(A), imp.q_in(B)], t.out, dtype=t.dtype, quant=t.quant
            )
            imp.absorb(t)
            return
        imp.emit(idx, node, ir_op, [imp.f_in(A), imp.f_in(B)], node.output[0])

    return handler


_op("Add")(_binary("add"))
_op("Sub")(_binary("sub"))
_op("Mul")(_binary("mul"))


@_op("Sum")
def _sum(imp: _Importer, idx: int, node) -> None:
    """Sum of n inputs: a chain of float adds (one input: the input itself)."""
    ins = [t for t in node.input if t]
    if len(ins) == 1:
        return _alias(imp, idx, node)
    acc = imp.f_in(ins[0])
    for k, t in enumerate(ins[1:], start=1):
        out = node.output[0] if k == len(ins) - 1 else f"{node.output[0]}_partial{k}"
        acc = imp.emit(idx, node, "add", [acc, imp.f_in(t)], out)


def _unary(imp: _Importer, idx: int, node, ir_op: str, requant_ok: bool = True, **attrs) -> None:
    """A one-input operator; quantized when it sits between a DequantizeLinear and a
    QuantizeLinear (the kernel requantizes when the parameters differ)."""
    x = node.input[0]
    t = imp.q_target(idx, node, [x])
    if t is not None and requant_ok:
        imp.emit(idx, node, ir_op, [imp.q_in(x)], t.out, dtype=t.dtype, quant=t.quant, **attrs)
        imp.absorb(t)
        return
    imp.emit(idx, node, ir_op, [imp.f_in(x)], node.output[0], **attrs)


def _movement(
    imp: _Importer,
    idx: int,
    node,
    ir_op: str,
    x: str | None = None,
    out: str | None = None,
    extra: Sequence[str] = (),
    **attrs,
) -> None:
    """A data-movement operator: runs on integers as they are (quantization unchanged).
    `x` is the data input (default: the first), `out` the output (default: the only one),
    `extra` IR tensors appended after the data (gather's indices)."""
    x = x or node.input[0]
    out = out or node.output[0]
    t = imp.q_target(idx, node, [x], output=out)
    if t is not None:
        src = imp.q_in(x)
        info = imp.b.tensors[src]
        ir = imp.emit(
            idx, node, ir_op, [src, *extra], out, dtype=info.dtype, quant=info.quant, **attrs
        )
        imp.requant_to(idx, node, ir, t)
        return
    v = imp.val(x)
    src = v.name if v.kind == "ir" else imp.f_in(x)
    info = imp.b.tensors[src]
    imp.emit(idx, node, ir_op, [src, *extra], out, dtype=info.dtype, quant=info.quant, **attrs)


@_op("Relu")
def _relu(imp: _Importer, idx: int, node) -> None:
    _unary(imp, idx, node, "relu")


@_op("Clip")
def _clip(imp: _Importer, idx: int, node) -> None:
    a = imp.attrs(node)
    if imp.opset < 11:
        lo, hi = a.get("min"), a.get("max")
        lo = None if lo is None or lo <= -3.4e38 else float(lo)
        hi = None if hi is None or hi >= 3.4e38 else float(hi)
    else:
        ins = list(node.input) + ["", ""]
        lo = imp.need_const(idx, node, ins[1], "the min") if ins[1] else None
        hi = imp.need_const(idx, node, ins[2], "the max") if ins[2] else None
        lo = None if lo is None else float(np.asarray(lo).ravel()[0])
        hi = None if hi is None else float(np.asarray(hi).ravel()[0])
    _unary(imp, idx, node, "clip", min=lo, max=hi)


def _pool_attrs(imp: _Importer, idx: int, node, x: str) -> dict:
    a = imp.attrs(node)
    xs = _check_4d(imp, idx, node, x)
    k = _ints(a.get("kernel_shape"))
    if len(k) != 2:
        raise imp.err(idx, node, f"kernel_shape {list(k)}: only 2-D pooling is supported")
    strides = _ints(a.get("strides")) or (1, 1)
    dil = _ints(a.get("dilations")) or (1, 1)
    if dil != (1, 1):
        raise imp.err(idx, node, f"dilations {list(dil)} in pooling are not supported")
    pads = _spatial_pads(imp, idx, node, a, xs[2:], k, strides, (1, 1))
    attrs = dict(kernel=k, strides=strides, pads=pads, data_layout="NCHW")
    if a.get("ceil_mode", 0):
        attrs["ceil_mode"] = True
    return attrs


@_op("MaxPool")
def _maxpool(imp: _Importer, idx: int, node) -> None:
    if len(node.output) > 1 and node.output[1] and imp.consumers.get(node.output[1]):
        raise imp.err(idx, node, "the Indices output is not supported")
    if imp.attrs(node).get("storage_order", 0):
        raise imp.err(idx, node, "storage_order=1 is not supported")
    _movement(imp, idx, node, "max_pool", **_pool_attrs(imp, idx, node, node.input[0]))


@_op("AveragePool")
def _avgpool(imp: _Importer, idx: int, node) -> None:
    attrs = _pool_attrs(imp, idx, node, node.input[0])
    attrs["count_include_pad"] = bool(imp.attrs(node).get("count_include_pad", 0))
    _unary(imp, idx, node, "avg_pool", **attrs)


@_op("GlobalAveragePool")
def _gap(imp: _Importer, idx: int, node) -> None:
    _check_4d(imp, idx, node, node.input[0])
    _unary(imp, idx, node, "global_avg_pool", data_layout="NCHW", keepdims=True)


@_op("ReduceMean")
def _reduce_mean(imp: _Importer, idx: int, node) -> None:
    a = imp.attrs(node)
    rank = len(imp.shape(node.input[0]))
    if imp.opset >= 18:
        axes = (
            imp.need_const(idx, node, node.input[1], "axes")
            if len(node.input) > 1 and node.input[1]
            else None
        )
    else:
        axes = a.get("axes")
    if axes is None or len(np.asarray(axes).ravel()) == 0:
        if a.get("noop_with_empty_axes", 0):
            return _alias(imp, idx, node)
        axes = range(rank)
    axes = tuple(sorted(int(v) % rank for v in np.asarray(list(axes)).ravel()))
    _unary(imp, idx, node, "mean", axes=axes, keepdims=bool(a.get("keepdims", 1)))


@_op("Concat")
def _concat(imp: _Importer, idx: int, node) -> None:
    ins = [t for t in node.input if t]
    axis = int(imp.attrs(node)["axis"]) % len(imp.shape(ins[0]))
    t = imp.q_target(idx, node, ins)
    if t is not None and all(imp.qinfo(i)[1].axis is None for i in ins):
        imp.emit(
            idx,
            node,
            "concat",
            [imp.q_in(i) for i in ins],
            t.out,
            dtype=t.dtype,
            quant=t.quant,
            axis=axis,
        )
        imp.absorb(t)
        return
    imp.emit(idx, node, "concat", [imp.f_in(i) for i in ins], node.output[0], axis=axis)


@_op("Reshape")
def _reshape(imp: _Importer, idx: int, node) -> None:
    a = imp.attrs(node)
    if len(node.input) > 1:
        shape = imp.need_const(idx, node, node.input[1], "the target shape")
    else:
        shape = a.get("shape")
    _movement(
        imp,
        idx,
        node,
        "reshape",
        shape=tuple(int(s) for s in np.asarray(shape).ravel()),
        allowzero=int(a.get("allowzero", 0)),
    )


@_op("Flatten")
def _flatten(imp: _Importer, idx: int, node) -> None:
    rank = len(imp.shape(node.input[0]))
    axis = int(imp.attrs(node).get("axis", 1))
    _movement(imp, idx, node, "flatten", axis=axis + rank if axis < 0 else axis)


def _axes_arg(imp: _Importer, idx: int, node) -> tuple[int, ...] | None:
    if imp.opset >= 13:
        if len(node.input) > 1 and node.input[1]:
            return tuple(
                int(v) for v in np.asarray(imp.need_const(idx, node, node.input[1], "axes")).ravel()
            )
        return None
    ax = imp.attrs(node).get("axes")
    return None if ax is None else tuple(int(v) for v in ax)


@_op("Squeeze")
def _squeeze(imp: _Importer, idx: int, node) -> None:
    axes = _axes_arg(imp, idx, node)
    rank = len(imp.shape(node.input[0]))
    _movement(
        imp,
        idx,
        node,
        "squeeze",
        axes=None if axes is None else tuple(sorted(a % rank for a in axes)),
    )


@_op("Unsqueeze")
def _unsqueeze(imp: _Importer, idx: int, node) -> None:
    axes = _axes_arg(imp, idx, node)
    if axes is None:
        raise imp.err(idx, node, "Unsqueeze needs axes")
    shape = list(imp.shape(node.input[0]))
    rank = len(shape) + len(axes)
    for ax in sorted(a % rank for a in axes):
        shape.insert(ax, 1)
    _movement(imp, idx, node, "reshape", shape=tuple(shape))


@_op("Transpose")
def _transpose(imp: _Importer, idx: int, node) -> None:
    rank = len(imp.shape(node.input[0]))
    perm = imp.attrs(node).get("perm")
    perm = tuple(int(p) for p in perm) if perm is not None else tuple(reversed(range(rank)))
    _movement(imp, idx, node, "transpose", perm=perm)


@_op("Identity", "Dropout")
def _alias(imp: _Importer, idx: int, node) -> None:
    if (
        node.op_type == "Dropout"
        and len(node.output) > 1
        and node.output[1]
        and imp.consumers.get(node.output[1])
    ):
        raise imp.err(idx, node, "the mask output of Dropout is not supported")
    imp.bind(node.output[0], imp.val(node.input[0]))


@_op("Softmax")
def _softmax(imp: _Importer, idx: int, node) -> None:
    x = node.input[0]
    shape = imp.shape(x)
    rank = len(shape)
    a = imp.attrs(node)
    axis = int(a.get("axis", -1 if imp.opset >= 13 else 1)) % rank
    if imp.opset >= 13 or axis == rank - 1:
        return _unary(imp, idx, node, "softmax", axis=axis if axis != rank - 1 else -1)
    # opset < 13: softmax over the flattened dims [axis:], then back to the input shape
    rows, cols = int(np.prod(shape[:axis])), int(np.prod(shape[axis:]))
    name = imp.node_name(idx, node)
    t = imp.q_target(idx, node, [x])
    if t is not None:
        flat = imp.b.add("reshape", [imp.q_in(x)], name=f"{name}_flatten", shape=(rows, cols))
        sm = imp.b.add(
            "softmax",
            [flat],
            name=name,
            outputs=[f"{t.out}_2d"],
            dtype=t.dtype,
            quant=t.quant,
            axis=-1,
        )
        imp.b.add("reshape", [sm], name=f"{name}_unflatten", outputs=[t.out], shape=tuple(shape))
        imp.bind(t.out, _V("ir", name=imp.b.nodes[-1].outputs[0]))
        imp.absorb(t)
        return
    flat = imp.b.add("reshape", [imp.f_in(x)], name=f"{name}_flatten", shape=(rows, cols))
    sm = imp.b.add("softmax", [flat], name=name, axis=-1)
    imp.emit(idx, node, "reshape", [sm], node.output[0], shape=tuple(shape))


@_op("Pad")
def _pad(imp: _Importer, idx: int, node) -> None:
    a = imp.attrs(node)
    mode = a.get("mode", "constant")
    if mode not in ("constant", "reflect", "edge"):
        raise imp.err(idx, node, f"mode '{mode}' is not supported (constant, reflect, edge)")
    x = node.input[0]
    rank = len(imp.shape(x))
    ins = list(node.input) + ["", "", ""]
    if imp.opset < 11:
        pads, value = list(a.get("pads")), float(a.get("value", 0.0))
        axes = list(range(rank))
    else:
        pads = [int(p) for p in np.asarray(imp.need_const(idx, node, ins[1], "pads")).ravel()]
        value = (
            float(np.asarray(imp.need_const(idx, node, ins[2], "the value")).ravel()[0])
            if ins[2]
            else 0.0
        )
        axes = (
            [int(v) % rank for v in np.asarray(imp.need_const(idx, node, ins[3], "axes")).ravel()]
            if ins[3]
            else list(range(rank))
        )
    if any(p < 0 for p in pads):
        raise imp.err(idx, node, f"negative pads {pads} are not supported")
    n = len(axes)
    pairs = [(0, 0)] * rank
    for i, ax in enumerate(axes):
        pairs[ax] = (int(pads[i]), int(pads[i + n]))
    shape = imp.shape(x)
    if mode == "reflect" and any(max(p) >= d for p, d in zip(pairs, shape) if any(p)):
        raise imp.err(idx, node, f"reflect pads {pairs} must be smaller than the dims {shape}")
    extra = {} if mode == "constant" else {"mode": mode}
    _unary(imp, idx, node, "pad", pads=tuple(pairs), value=value, **extra)


@_op("LayerNormalization")
def _layer_norm(imp: _Importer, idx: int, node) -> None:
    a = imp.attrs(node)
    x = node.input[0]
    shape = imp.shape(x)
    axis = int(a.get("axis", -1)) % len(shape)
    eps = float(a.get("epsilon", 1e-5))
    scale = node.input[1]
    bias = node.input[2] if len(node.input) > 2 else ""
    if axis != len(shape) - 1:
        raise imp.err(
            idx,
            node,
            f"normalization over axes {axis}.. of a rank-{len(shape)} "
            f"input is not supported (only the last axis)",
        )
    for o in node.output[1:]:
        if o and (imp.consumers.get(o) or o in imp.graph_outputs):
            raise imp.err(idx, node, "the Mean / InvStdDev outputs are not supported")
    ins = [x, scale] + ([bias] if bias else [])
    t = imp.q_target(idx, node, ins)
    if t is not None:
        imp.emit(
            idx,
            node,
            "layer_norm",
            [imp.q_in(i) for i in ins] + ([] if bias else [""]),
            t.out,
            dtype=t.dtype,
            quant=t.quant,
            axis=-1,
            epsilon=eps,
        )
        imp.absorb(t)
        return
    imp.emit(
        idx,
        node,
        "layer_norm",
        [imp.f_in(i) for i in ins] + ([] if bias else [""]),
        node.output[0],
        axis=-1,
        epsilon=eps,
    )


@_op("BatchNormalization")
def _batch_norm(imp: _Importer, idx: int, node) -> None:
    a = imp.attrs(node)
    if a.get("training_mode", 0) or any(o and imp.consumers.get(o) for o in node.output[1:]):
        raise imp.err(idx, node, "training-mode batch normalization is not supported")
    x = node.input[0]
    ins = list(node.input[:5])
    eps = float(a.get("epsilon", 1e-5))
    layout = {"data_layout": "NCHW"} if len(imp.shape(x)) == 4 else {}
    t = imp.q_target(idx, node, ins)
    if t is not None:
        imp.emit(
            idx,
            node,
            "batch_norm",
            [imp.q_in(i) for i in ins],
            t.out,
            dtype=t.dtype,
            quant=t.quant,
            epsilon=eps,
            **layout,
        )
        imp.absorb(t)
        return
    imp.emit(
        idx, node, "batch_norm", [imp.f_in(i) for i in ins], node.output[0], epsilon=eps, **layout
    )


@_op("Gelu")
def _gelu(imp: _Importer, idx: int, node) -> None:
    approx = imp.attrs(node).get("approximate", "none")
    _unary(imp, idx, node, "gelu", approximate=approx)


@_op("QuantizeLinear")
def _quantize(imp: _Importer, idx: int, node) -> None:
    x = node.input[0]
    v = imp.val(x)
    rank = len(imp.shape(x))
    dtype, quant = imp.qparams(idx, node, rank)
    out = node.output[0]
    if v.kind == "const" or (v.kind == "dq" and v.name is None):
        from accelsim.core.qparams import quantize_array

        val = np.asarray(imp.const(x), dtype=np.float32)
        imp.bind(
            out, _V("const", value=quantize_array(val, quant, dtype), dtype=dtype, quant=quant)
        )
        return
    if v.kind == "dq":  # Q(DQ(t)): the same integers when the parameters agree
        info = imp.b.tensors[v.name]
        if info.quant == quant and info.dtype == dtype:
            imp.bind(out, _V("ir", name=v.name))
            return
        imp.emit(idx, node, "quantize", [v.name], out, dtype=dtype, quant=quant)
        return
    info = imp.b.tensors[v.name]
    if not info.is_float:
        raise imp.err(idx, node, f"input '{x}' is {info.dtype}, expected float")
    imp.emit(idx, node, "quantize", [v.name], out, dtype=dtype, quant=quant)


@_op("DequantizeLinear")
def _dequantize(imp: _Importer, idx: int, node) -> None:
    x = node.input[0]
    v = imp.val(x)
    rank = len(imp.shape(x))
    if v.kind == "dq":
        raise imp.err(idx, node, f"input '{x}' is already float")
    xdt = v.dtype if v.kind == "const" else imp.b.tensors[v.name].dtype
    if xdt not in _INT_DTYPES:
        raise imp.err(idx, node, f"input '{x}' is {xdt}, expected an integer type")
    dtype, quant = imp.qparams(idx, node, rank, x_dtype=xdt)
    if dtype != xdt:
        raise imp.err(idx, node, f"zero point type {dtype} differs from input type {xdt}")
    scale_dt = imp.val(node.input[1]).dtype
    fdtype = "float16" if scale_dt == "float16" else "float32"
    od = imp.attrs(node).get("output_dtype", 0)
    if od:
        fdtype = _dtype_of(od, f"{imp.where}: node '{imp.node_name(idx, node)}' output_dtype")
    if v.kind == "const":
        imp.bind(node.output[0], _V("dq", value=v.value, dtype=xdt, quant=quant, fdtype=fdtype))
        return
    ir = imp.set_quant(idx, node, x, xdt, quant)
    if node.output[0] in imp.graph_outputs and not imp.consumers.get(node.output[0]):
        imp.emit(idx, node, "dequantize", [ir], node.output[0], dtype=fdtype)
        return
    imp.bind(node.output[0], _V("dq", name=ir, fdtype=fdtype))


@_op("Constant")
def _constant(imp: _Importer, idx: int, node) -> None:
    from onnx import numpy_helper

    a = imp.attrs(node)
    where = f"{imp.where}: Constant '{node.output[0]}'"
    if "value" in a:
        v = imp._tensor_const(a["value"], where)
    elif "value_float" in a:
        v = _V("const", value=np.array(a["value_float"], np.float32), dtype="float32")
    elif "value_floats" in a:
        v = _V("const", value=np.array(a["value_floats"], np.float32), dtype="float32")
    elif "value_int" in a:
        v = _V("const", value=np.array(a["value_int"], np.int64), dtype="int64")
    elif "value_ints" in a:
        v = _V("const", value=np.array(a["value_ints"], np.int64), dtype="int64")
    else:
        raise imp.err(idx, node, f"constant kind {sorted(a)} is not supported")
    del numpy_helper
    imp.bind(node.output[0], v)


# ---------------------------------------------------------------------------------------------
# Activations, gates and elementwise functions
# ---------------------------------------------------------------------------------------------


@_op("Sigmoid")
def _sigmoid(imp: _Importer, idx: int, node) -> None:
    _unary(imp, idx, node, "sigmoid")


@_op("Tanh")
def _tanh(imp: _Importer, idx: int, node) -> None:
    _unary(imp, idx, node, "tanh")


@_op("HardSigmoid")
def _hard_sigmoid(imp: _Importer, idx: int, node) -> None:
    a = imp.attrs(node)
    _unary(
        imp,
        idx,
        node,
        "hard_sigmoid",
        alpha=float(a.get("alpha", 0.2)),
        beta=float(a.get("beta", 0.5)),
    )


@_op("HardSwish")
def _hard_swish(imp: _Importer, idx: int, node) -> None:
    _unary(imp, idx, node, "hard_swish")


@_op("Neg")
def _neg(imp: _Importer, idx: int, node) -> None:
    _unary(imp, idx, node, "neg")


@_op("Sqrt")
def _sqrt(imp: _Importer, idx: int, node) -> None:
    _unary(imp, idx, node, "sqrt")


_op("Pow")(_binary("pow"))


@_op("Erf")
def _erf(imp: _Importer, idx: int, node) -> None:
    _unary(imp, idx, node, "erf")


@_op("Swish")
def _swish(imp: _Importer, idx: int, node) -> None:
    """Swish / SiLU (opset 24): x * sigmoid(alpha * x), as the sigmoid and mul exporters of
    older opsets write."""
    alpha = float(imp.attrs(node).get("alpha", 1.0))
    name = imp.node_name(idx, node)
    x = imp.f_in(node.input[0])
    z = x
    if alpha != 1.0:
        k = imp.b.const(f"{name}_alpha", np.array(alpha, np.float32))
        z = imp.b.add("mul", [x, k], name=f"{name}_scale")
    g = imp.b.add("sigmoid", [z], name=f"{name}_sigmoid")
    imp.emit(idx, node, "mul", [x, g], node.output[0])


_op("Div")(_binary("div"))


@_op("Where")
def _where(imp: _Importer, idx: int, node) -> None:
    cond, x, y = node.input[0], node.input[1], node.input[2]
    c = imp.any_in(cond)
    t = imp.q_target(idx, node, [x, y])
    if t is not None and imp.qinfo(x)[1].axis is None and imp.qinfo(y)[1].axis is None:
        imp.emit(
            idx, node, "where", [c, imp.q_in(x), imp.q_in(y)], t.out, dtype=t.dtype, quant=t.quant
        )
        imp.absorb(t)
        return
    xi, yi = imp.f_in(x), imp.f_in(y)
    imp.emit(idx, node, "where", [c, xi, yi], node.output[0], dtype=imp.b.tensors[xi].dtype)


@_op("Cast")
def _cast(imp: _Importer, idx: int, node) -> None:
    to = _dtype_of(imp.attrs(node)["to"], f"{imp.where}: node '{imp.node_name(idx, node)}' to")
    v = imp.val(node.input[0])
    src = imp.f_in(node.input[0]) if v.kind == "dq" else imp.any_in(node.input[0])
    if imp.b.tensors[src].is_quantized:
        src = imp.f_in(node.input[0])
    imp.emit(idx, node, "cast", [src], node.output[0], dtype=to)


def _compare(ir_op: str) -> _Handler:
    def handler(imp: _Importer, idx: int, node) -> None:
        ins = []
        for t in node.input[:2]:
            v = imp.val(t)
            ins.append(imp.f_in(t) if v.kind == "dq" else imp.any_in(t))
        imp.emit(idx, node, ir_op, ins, node.output[0], dtype="bool")

    return handler


_op("Less")(_compare("less"))
_op("Greater")(_compare("greater"))
_op("Equal")(_compare("equal"))
_op("GreaterOrEqual")(_compare("greater_equal"))
_op("And")(_compare("logical_and"))


# ---------------------------------------------------------------------------------------------
# Shapes computed at run time
# ---------------------------------------------------------------------------------------------


def _resolve_slice(
    shape: Sequence[int], starts, ends, axes, steps
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """ONNX Slice's clamping rules -> full-rank (starts, ends, steps) for the IR `slice`."""
    rank = len(shape)
    b = [0] * rank
    e = list(shape)
    st = [1] * rank
    for s0, e0, ax, step in zip(starts, ends, axes, steps):
        ax = int(ax) % rank
        dim = shape[ax]
        s0, e0, step = int(s0), int(e0), int(step)
        if step == 0:
            raise ValueError("a step of 0")
        s0 = s0 + dim if s0 < 0 else s0
        e0 = e0 + dim if e0 < 0 else e0
        if step > 0:
            s0, e0 = min(max(s0, 0), dim), min(max(e0, 0), dim)
        else:
            s0, e0 = min(max(s0, 0), dim - 1), min(max(e0, -1), dim - 1)
        b[ax], e[ax], st[ax] = s0, e0, step
    return tuple(b), tuple(e), tuple(st)


@_op("Slice")
def _slice(imp: _Importer, idx: int, node) -> None:
    x = node.input[0]
    shape = imp.shape(x)
    ins = list(node.input) + [""] * 4
    if imp.opset < 10:
        a = imp.attrs(node)
        starts, ends = list(a["starts"]), list(a["ends"])
        axes = list(a.get("axes", range(len(starts))))
        steps = [1] * len(starts)
    else:
        starts = np.asarray(imp.need_const(idx, node, ins[1], "starts")).ravel()
        ends = np.asarray(imp.need_const(idx, node, ins[2], "ends")).ravel()
        axes = (
            np.asarray(imp.need_const(idx, node, ins[3], "axes")).ravel()
            if ins[3]
            else range(len(starts))
        )
        steps = (
            np.asarray(imp.need_const(idx, node, ins[4], "steps")).ravel()
            if ins[4]
            else [1] * len(starts)
        )
    try:
        b, e, st = _resolve_slice(shape, starts, ends, axes, steps)
    except ValueError as exc:
        raise imp.err(idx, node, str(exc)) from None
    _movement(imp, idx, node, "slice", starts=b, ends=e, steps=st)


@_op("Split")
def _split(imp: _Importer, idx: int, node) -> None:
    """One `slice` per output."""
    x = node.input[0]
    shape = imp.shape(x)
    a = imp.attrs(node)
    axis = int(a.get("axis", 0)) % len(shape)
    outs = list(node.output)
    if len(node.input) > 1 and node.input[1]:
        sizes = [int(v) for v in np.asarray(imp.need_const(idx, node, node.input[1], "split"))]
    elif "split" in a:
        sizes = [int(v) for v in a["split"]]
    else:  # equal parts (the last one smaller, opset 18's num_outputs rule)
        n = len(outs)
        part = -(-shape[axis] // n)
        sizes = [min(part, shape[axis] - part * i) for i in range(n)]
    if len(sizes) != len(outs) or sum(sizes) != shape[axis] or min(sizes) < 0:
        raise imp.err(idx, node, f"split sizes {sizes} do not cover axis {axis} of {list(shape)}")
    offset = 0
    for o, size in zip(outs, sizes):
        b, e = [0] * len(shape), list(shape)
        b[axis], e[axis] = offset, offset + size
        offset += size
        if not o:
            continue
        _movement(
            imp, idx, node, "slice", out=o, starts=tuple(b), ends=tuple(e), steps=(1,) * len(shape)
        )


@_op("Gather")
def _gather(imp: _Importer, idx: int, node) -> None:
    data, ind = node.input[0], node.input[1]
    axis = int(imp.attrs(node).get("axis", 0)) % len(imp.shape(data))
    ic = imp.const(ind)
    if ic is not None:
        n = imp.shape(data)[axis]
        if np.asarray(ic).size and (np.min(ic) < -n or np.max(ic) >= n):
            raise imp.err(idx, node, f"indices {np.asarray(ic).tolist()} outside [-{n}, {n})")
        ind_ir = imp.b.const(f"{imp.node_name(idx, node)}_indices", np.asarray(ic, np.int64))
    else:
        ind_ir = imp.any_in(ind)
        if not imp.b.tensors[ind_ir].dtype.startswith(("int", "uint")):
            raise imp.err(idx, node, f"indices '{ind}' must be integers")
    _movement(imp, idx, node, "gather", extra=[ind_ir], axis=axis)


@_op("GatherElements")
def _gather_elements(imp: _Importer, idx: int, node) -> None:
    data, ind = node.input[0], node.input[1]
    axis = int(imp.attrs(node).get("axis", 0)) % len(imp.shape(data))
    ic = imp.const(ind)
    ind_ir = (
        imp.b.const(f"{imp.node_name(idx, node)}_indices", np.asarray(ic, np.int64))
        if ic is not None
        else imp.any_in(ind)
    )
    _movement(imp, idx, node, "gather_elements", extra=[ind_ir], axis=axis)


@_op("Tile")
def _tile(imp: _Importer, idx: int, node) -> None:
    reps = np.asarray(imp.need_const(idx, node, node.input[1], "repeats")).ravel()
    _movement(imp, idx, node, "tile", repeats=tuple(int(r) for r in reps))


@_op("Expand")
def _expand(imp: _Importer, idx: int, node) -> None:
    """Expand at run time (an attention mask broadcast to the scores' shape): a tile."""
    target = np.asarray(imp.need_const(idx, node, node.input[1], "shape")).ravel()
    xs = imp.shape(node.input[0])
    try:
        out = np.broadcast_shapes(xs, tuple(int(d) for d in target))
    except ValueError:
        raise imp.err(idx, node, f"cannot broadcast {list(xs)} to {target.tolist()}") from None
    if len(out) != len(xs):
        raise imp.err(idx, node, f"expanding rank {len(xs)} to {len(out)} is not supported")
    _movement(imp, idx, node, "tile", repeats=tuple(o // d for o, d in zip(out, xs)))


@_op("DepthToSpace")
def _depth_to_space(imp: _Importer, idx: int, node) -> None:
    a = imp.attrs(node)
    _check_4d(imp, idx, node, node.input[0])
    _movement(
        imp,
        idx,
        node,
        "depth_to_space",
        blocksize=int(a["blocksize"]),
        mode=str(a.get("mode", "DCR")),
        data_layout="NCHW",
    )


@_op("Resize")
def _resize(imp: _Importer, idx: int, node) -> None:
    a = imp.attrs(node)
    x = node.input[0]
    xs = _check_4d(imp, idx, node, x)
    mode = str(a.get("mode", "nearest"))
    if mode not in ("nearest", "linear"):
        raise imp.err(idx, node, f"mode '{mode}' is not supported (nearest, linear)")
    ctm = str(
        a.get("coordinate_transformation_mode", "half_pixel" if imp.opset >= 11 else "asymmetric")
    )
    if imp.opset < 11:
        ctm = "asymmetric"
    if ctm not in P_COORD_MODES:
        raise imp.err(idx, node, f"coordinate_transformation_mode '{ctm}' is not supported")
    if int(a.get("antialias", 0)):
        raise imp.err(idx, node, "antialias is not supported")
    axes = [int(v) % 4 for v in a.get("axes", (0, 1, 2, 3))]
    if "axes" in a and sorted(axes) != [2, 3]:
        raise imp.err(idx, node, f"axes {list(a['axes'])}: only the spatial axes can be resized")
    policy = str(a.get("keep_aspect_ratio_policy", "stretch"))
    if policy != "stretch":
        raise imp.err(idx, node, f"keep_aspect_ratio_policy '{policy}' is not supported")
    ins = list(node.input) + ["", "", ""]
    scales_in, sizes_in = (ins[1], "") if imp.opset < 11 else (ins[2], ins[3])
    scales = None

    def by_axis(values, fill):
        full = list(fill)
        for ax, v in zip(axes, values):
            full[ax] = v
        return full

    if sizes_in:
        size = [int(v) for v in np.asarray(imp.need_const(idx, node, sizes_in, "sizes")).ravel()]
        size = by_axis(size, xs)
    else:
        sc = np.asarray(imp.need_const(idx, node, scales_in, "scales"), np.float32).ravel()
        sc = np.array(by_axis(sc, (1, 1, 1, 1)), np.float32)
        if len(sc) != 4:
            raise imp.err(idx, node, f"scales {sc.tolist()} do not fit a 4-D input")
        size = [int(np.floor(np.float32(d) * s)) for d, s in zip(xs, sc)]
        scales = (float(sc[2]), float(sc[3]))
    if size[:2] != list(xs[:2]):
        raise imp.err(idx, node, f"only the spatial axes can be resized ({list(xs)} -> {size})")
    attrs = dict(
        mode=mode,
        coordinate_transformation_mode=ctm,
        nearest_mode=str(a.get("nearest_mode", "round_prefer_floor")),
        size=(size[2], size[3]),
        scales=scales,
        data_layout="NCHW",
    )
    _movement(imp, idx, node, "resize", **attrs)
