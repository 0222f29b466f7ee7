"""TFLite flatbuffer -> `Graph`.

Reads a .tflite file with the pure-Python `tflite` flatbuffer schema (no TensorFlow runtime)
and maps its single subgraph onto the IR:

- layout stays NHWC (`data_layout="NHWC"` on spatial ops, no transposes inserted);
- CONV_2D weights OHWI -> OIHW; DEPTHWISE_CONV_2D weights 1HW(C*M) -> (C*M)1HW with
  groups = C; per-channel quantization then lives on axis 0 in both cases;
- FULLY_CONNECTED weights stay (out, in);
- SAME / VALID padding -> explicit (top, left, bottom, right) pads, as TFLite's
  ComputePaddingHeightWidth computes them (the odd pixel goes to the bottom / right);
- fused activations -> real clamp bounds `act_min` / `act_max`;
- the graph requantizes in "gemmlowp" mode (TFLite's integer fixed-point arithmetic).

Fully int8 models, int16x8 models (int16 activations, int8 weights, int64 or int32 bias)
and float32 models are supported. Errors are `ModelError` / `UnsupportedOpError` with a
one-line message that names the file.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from accelsim.core.errors import AccelsimError, ModelError, UnsupportedOpError
from accelsim.core.qparams import NUMPY_DTYPE, QuantParams
from accelsim.model.builder import GraphBuilder
from accelsim.model.graph import Graph

try:  # the schema package is a declared dependency; fail with a clear message if absent
    import tflite as _tfl
except ImportError:  # pragma: no cover - exercised only without the dependency
    _tfl = None


# TFLite TensorType -> IR dtype
_TENSOR_TYPES = {
    0: "float32",
    1: "float16",
    2: "int32",
    3: "uint8",
    4: "int64",
    6: "bool",
    7: "int16",
    9: "int8",
    16: "uint16",
    17: "int4",
}
_TENSOR_TYPE_NAMES = {
    0: "FLOAT32",
    1: "FLOAT16",
    2: "INT32",
    3: "UINT8",
    4: "INT64",
    5: "STRING",
    6: "BOOL",
    7: "INT16",
    8: "COMPLEX64",
    9: "INT8",
    10: "FLOAT64",
    11: "COMPLEX128",
    12: "UINT64",
    13: "RESOURCE",
    14: "VARIANT",
    15: "UINT32",
    16: "UINT16",
    17: "INT4",
    18: "BFLOAT16",
}

# ActivationFunctionType -> real clamp bounds
_ACTIVATIONS = {0: (None, None), 1: (0.0, None), 2: (-1.0, 1.0), 3: (0.0, 6.0)}
_ACTIVATION_NAMES = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}


# ---------------------------------------------------------------------------------------
# Reading: flatbuffer -> plain Python records (every flatbuffer access happens here, so a
# truncated or corrupt file fails in one place with one message).
# ---------------------------------------------------------------------------------------


@dataclass
class _Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    signature: tuple[int, ...] | None
    ttype: int
    data: np.ndarray | None  # raw little-endian bytes (uint8) of a constant
    scale: np.ndarray | None
    zero_point: np.ndarray | None
    quant_dim: int


@dataclass
class _Op:
    index: int
    opname: str
    version: int
    inputs: list[int]
    outputs: list[int]
    options: Any  # the typed *Options table, or None
    options_type: int


@dataclass
class _Model:
    description: str
    tensors: list[_Tensor]
    inputs: list[int]
    outputs: list[int]
    ops: list[_Op]
    subgraph_name: str = ""


def _builtin_names() -> dict[int, str]:
    bo = _tfl.BuiltinOperator
    return {v: k for k, v in vars(bo).items() if not k.startswith("_") and isinstance(v, int)}


def _options_classes() -> dict[int, Callable[[], Any]]:
    """BuiltinOptions union tag -> options class."""
    bo = _tfl.BuiltinOptions
    out = {}
    for name, tag in vars(bo).items():
        if name.startswith("_") or not isinstance(tag, int) or name == "NONE":
            continue
        cls = getattr(_tfl, name, None)
        if cls is not None and isinstance(cls, type):
            out[tag] = cls
    return out


def _np_or_empty(value, dtype) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    return np.zeros((0,), dtype=dtype)


def _read(path: Path, data: bytes) -> _Model:
    if len(data) < 8 or data[4:8] != b"TFL3":
        ident = data[4:8] if len(data) >= 8 else b""
        raise ModelError(
            f"{path}: not a valid TFLite flatbuffer (file identifier is "
            f"{ident!r}, expected b'TFL3'; {len(data)} bytes)"
        )
    try:
        return _read_unchecked(path, data)
    except ModelError:
        raise
    except (
        struct.error,
        IndexError,
        ValueError,
        TypeError,
        AttributeError,
        OverflowError,
        UnicodeDecodeError,
        KeyError,
        MemoryError,
    ) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(
            f"{path}: not a valid TFLite flatbuffer (truncated or corrupt, "
            f"{len(data)} bytes: {detail})"
        ) from None


def _read_unchecked(path: Path, data: bytes) -> _Model:
    buf = bytearray(data)
    model = _tfl.Model.GetRootAs(buf, 0)
    n_sub = model.SubgraphsLength()
    if n_sub != 1:
        raise ModelError(
            f"{path}: model has {n_sub} subgraphs; only single-subgraph models are supported"
        )
    names = _builtin_names()
    opts = _options_classes()
    codes = []
    for i in range(model.OperatorCodesLength()):
        oc = model.OperatorCodes(i)
        code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
        opname = names.get(code, f"BUILTIN_{code}")
        if opname == "CUSTOM":
            custom = oc.CustomCode()
            opname = f"CUSTOM({custom.decode('utf-8', 'replace') if custom else '?'})"
        codes.append((opname, int(oc.Version())))

    buffers = []
    for i in range(model.BuffersLength()):
        b = model.Buffers(i)
        off, size = int(b.Offset()), int(b.Size())
        if off > 1:  # data stored outside the flatbuffer (models > 2 GB)
            if off + size > len(data):
                raise ModelError(
                    f"{path}: not a valid TFLite flatbuffer (truncated: buffer "
                    f"{i} lies at bytes {off}..{off + size} of {len(data)})"
                )
            buffers.append(np.frombuffer(data, dtype=np.uint8, count=size, offset=off))
        else:
            buffers.append(_np_or_empty(b.DataAsNumpy(), np.uint8))

    sg = model.Subgraphs(0)
    tensors = []
    for i in range(sg.TensorsLength()):
        t = sg.Tensors(i)
        name = t.Name().decode("utf-8", "replace") if t.Name() else ""
        shape = tuple(int(d) for d in _np_or_empty(t.ShapeAsNumpy(), np.int32))
        sig = (
            None
            if t.ShapeSignatureIsNone()
            else tuple(int(d) for d in _np_or_empty(t.ShapeSignatureAsNumpy(), np.int32))
        )
        bidx = int(t.Buffer())
        if bidx >= len(buffers):
            raise ModelError(
                f"{path}: not a valid TFLite flatbuffer (tensor {i} '{name}' "
                f"refers to buffer {bidx} of {len(buffers)})"
            )
        raw = buffers[bidx] if bidx > 0 and buffers[bidx].size else None
        q = t.Quantization()
        scale = zp = None
        qdim = 0
        if q is not None:
            s = _np_or_empty(q.ScaleAsNumpy(), np.float32)
            if s.size:
                scale = s.astype(np.float32)
                zp = _np_or_empty(q.ZeroPointAsNumpy(), np.int64).astype(np.int64)
                if zp.size == 0:
                    zp = np.zeros(1, dtype=np.int64)
                qdim = int(q.QuantizedDimension())
        tensors.append(_Tensor(i, name, shape, sig, int(t.Type()), raw, scale, zp, qdim))

    ops = []
    for i in range(sg.OperatorsLength()):
        o = sg.Operators(i)
        ci = int(o.OpcodeIndex())
        if ci >= len(codes):
            raise ModelError(
                f"{path}: not a valid TFLite flatbuffer (operator {i} uses "
                f"opcode {ci} of {len(codes)})"
            )
        opname, version = codes[ci]
        ins = [int(v) for v in _np_or_empty(o.InputsAsNumpy(), np.int32)]
        outs = [int(v) for v in _np_or_empty(o.OutputsAsNumpy(), np.int32)]
        for v in ins + outs:
            if v >= len(tensors):
                raise ModelError(
                    f"{path}: not a valid TFLite flatbuffer (operator {i} "
                    f"refers to tensor {v} of {len(tensors)})"
                )
        otype = int(o.BuiltinOptionsType())
        options = None
        table = o.BuiltinOptions()
        if table is not None and otype in opts:
            options = opts[otype]()
            options.Init(table.Bytes, table.Pos)
        ops.append(_Op(i, opname, version, ins, outs, options, otype))

    graph_in = [int(v) for v in _np_or_empty(sg.InputsAsNumpy(), np.int32)]
    graph_out = [int(v) for v in _np_or_empty(sg.OutputsAsNumpy(), np.int32)]
    for v in graph_in + graph_out:
        if not 0 <= v < len(tensors):
            raise ModelError(
                f"{path}: not a valid TFLite flatbuffer (subgraph input/output "
                f"{v} of {len(tensors)} tensors)"
            )
    desc = model.Description().decode("utf-8", "replace") if model.Description() else ""
    sg_name = sg.Name().decode("utf-8", "replace") if sg.Name() else ""
    return _Model(desc, tensors, graph_in, graph_out, ops, sg_name)


# ---------------------------------------------------------------------------------------
# Building the IR
# ---------------------------------------------------------------------------------------


def _same_padding(
    size: int, k: int, stride: int, dilation: int, same: bool
) -> tuple[int, int, int]:
    """(out, pad_before, pad_after) as TFLite's ComputeOutSize / ComputePaddingHeightWidth."""
    eff = (k - 1) * dilation + 1
    out = (size + stride - 1) // stride if same else (size - eff + stride) // stride
    total = max((out - 1) * stride + eff - size, 0)
    return out, total // 2, total - total // 2


class _Importer:
    def __init__(self, path: Path, model: _Model) -> None:
        self.path = path
        self.m = model
        self.b = GraphBuilder(path.stem or "tflite", requant_mode="gemmlowp")
        self.names: dict[int, str] = {}  # tensor index -> IR name (activations)
        self.consts: dict[tuple[int, str], str] = {}  # (tensor index, transform) -> IR name
        self.values: dict[int, np.ndarray] = {}  # decoded constant values
        self.folded: set[int] = set()  # operator outputs folded to constants
        self._uses: dict[int, int] = {}

    # -- errors -------------------------------------------------------------------------
    def err(self, msg: str) -> ModelError:
        return ModelError(f"{self.path}: {msg}")

    def op_err(self, op: _Op, msg: str) -> ModelError:
        out = self.m.tensors[op.outputs[0]].name if op.outputs else "?"
        return ModelError(f"{self.path}: operator {op.index} ({op.opname}, output '{out}'): {msg}")

    # -- tensors --------------------------------------------------------------------------
    def dtype(self, t: _Tensor) -> str:
        dt = _TENSOR_TYPES.get(t.ttype)
        if dt is None:
            raise self.err(
                f"tensor {t.index} '{t.name}' has type "
                f"{_TENSOR_TYPE_NAMES.get(t.ttype, t.ttype)}, which accelsim does "
                f"not support"
            )
        return dt

    def quant(self, t: _Tensor, axis_map: dict[int, int] | None = None) -> QuantParams | None:
        if t.scale is None or self.dtype(t) in ("float32", "float16"):
            return None
        scale = [float(s) for s in t.scale]
        zp = [int(z) for z in t.zero_point]
        if len(scale) == 1:
            return QuantParams.per_tensor(scale[0], zp[0])
        axis = t.quant_dim if axis_map is None else axis_map.get(t.quant_dim, t.quant_dim)
        if len(zp) == 1:
            zp = zp * len(scale)
        try:
            return QuantParams(tuple(scale), tuple(zp), axis)
        except ModelError as exc:
            raise self.err(f"tensor {t.index} '{t.name}': {exc}") from None

    def decode(self, t: _Tensor) -> np.ndarray:
        if t.index in self.values:
            return self.values[t.index]
        dt = self.dtype(t)
        raw = t.data
        count = int(np.prod(t.shape, dtype=np.int64))
        if dt == "int4":
            need = (count + 1) // 2
            if raw.size < need:
                raise self.err(
                    f"tensor {t.index} '{t.name}': buffer holds {raw.size} bytes, "
                    f"shape {list(t.shape)} of int4 needs {need}"
                )
            b = raw[:need].astype(np.int16)
            lo = ((b & 0x0F) ^ 0x08) - 0x08
            hi = ((b >> 4 & 0x0F) ^ 0x08) - 0x08
            vals = np.stack([lo, hi], axis=-1).reshape(-1)[:count].astype(np.int8)
        else:
            npdt = np.dtype(NUMPY_DTYPE[dt]).newbyteorder("<")
            need = count * npdt.itemsize
            if raw.size != need:
                raise self.err(
                    f"tensor {t.index} '{t.name}': buffer holds {raw.size} bytes, "
                    f"shape {list(t.shape)} of {dt} needs {need}"
                )
            vals = np.frombuffer(raw.tobytes(), dtype=npdt).astype(NUMPY_DTYPE[dt])
        vals = vals.reshape(t.shape)
        self.values[t.index] = vals
        return vals

    def is_const(self, idx: int) -> bool:
        return idx >= 0 and (self.m.tensors[idx].data is not None or idx in self.folded)

    def fold(self, idx: int, value: np.ndarray) -> None:
        """Make operator output `idx` a constant (DEQUANTIZE of constant weights)."""
        self.values[idx] = value
        self.folded.add(idx)

    def const_value(self, op: _Op, pos: int, what: str) -> np.ndarray:
        if pos >= len(op.inputs) or op.inputs[pos] < 0:
            raise self.op_err(op, f"missing {what} input")
        idx = op.inputs[pos]
        if not self.is_const(idx):
            raise self.op_err(
                op, f"{what} (tensor '{self.m.tensors[idx].name}') must be a constant"
            )
        return self.decode(self.m.tensors[idx])

    def tensor(
        self,
        idx: int,
        transform: str = "",
        fn: Callable | None = None,
        axis_map: dict[int, int] | None = None,
    ) -> str:
        """IR name of TFLite tensor `idx` (a constant is materialised on first use)."""
        if idx < 0:
            return ""
        t = self.m.tensors[idx]
        if t.data is None and idx not in self.folded:
            if idx not in self.names:
                raise self.err(f"tensor {idx} '{t.name}' is read before any operator produces it")
            return self.names[idx]
        key = (idx, transform)
        if key not in self.consts:
            value = self.decode(t)
            if fn is not None:
                value = fn(value)
            name = t.name or f"const_{idx}"
            self.consts[key] = self.b.const(
                name, value, dtype=self.dtype(t), quant=self.quant(t, axis_map)
            )
        return self.consts[key]

    def weights(self, idx: int, perm: tuple[int, ...], key: str) -> str:
        """Weights permuted to the IR layout: a permuted constant, or (weights computed at
        run time) a transpose node on the weight path."""
        axis_map = {old: new for new, old in enumerate(perm)}
        if self.is_const(idx):
            return self.tensor(idx, key, lambda v: v.transpose(perm), axis_map)
        t = self.info(idx)
        src = self.tensor(idx)
        name = self.b.unique(f"{src}_{key.replace('->', '_to_')}")
        return self.b.add(
            "transpose",
            [src],
            name=name,
            outputs=[name],
            dtype=self.dtype(t),
            quant=self.quant(t, axis_map),
            perm=perm,
        )

    def info(self, idx: int) -> _Tensor:
        return self.m.tensors[idx]

    def static_shape(self, t: _Tensor, where: str) -> tuple[int, ...]:
        if any(d < 0 for d in t.shape):
            raise self.err(
                f"{where} tensor '{t.name}' has dynamic shape {list(t.shape)}; "
                f"only static shapes are supported"
            )
        if t.signature is not None and len(t.signature) == len(t.shape):
            dyn = [i for i, d in enumerate(t.signature) if d < 0]
            # A dynamic batch (leading) dimension is pinned to the stored size; any other
            # dynamic dimension makes the model's cost undefined.
            if any(i != 0 for i in dyn):
                raise self.err(
                    f"{where} tensor '{t.name}' has dynamic shape "
                    f"{list(t.signature)} (-1 = unknown); only static shapes are "
                    f"supported"
                )
        return t.shape

    # -- the graph ------------------------------------------------------------------------
    def build(self) -> Graph:
        m = self.m
        for idx in m.inputs:
            t = m.tensors[idx]
            shape = self.static_shape(t, "input")
            name = self.b.unique(t.name or f"input_{idx}")
            self.b.input(name, shape, self.dtype(t), self.quant(t))
            self.names[idx] = name
        for op in m.ops:
            handler = _HANDLERS.get(op.opname)
            if handler is None:
                out = m.tensors[op.outputs[0]].name if op.outputs else "?"
                raise UnsupportedOpError(
                    f"{self.path}: operator {op.index} (output '{out}') is {op.opname}, which "
                    f"accelsim does not support; supported TFLite operators: "
                    f"{', '.join(SUPPORTED_OPS)}"
                )
            if not op.outputs:
                raise self.err(f"operator {op.index} ({op.opname}) has no outputs")
            for o in op.outputs:
                if o < 0:
                    raise self.op_err(op, "an output tensor index is missing")
                self.static_shape(m.tensors[o], f"operator {op.index} ({op.opname}) output")
            try:
                handler(self, op)
            except (IndexError, KeyError, ValueError, TypeError, AttributeError) as exc:
                # a malformed operator (missing inputs, wrong options table, ...)
                raise self.op_err(
                    op,
                    f"malformed operator ({type(exc).__name__}: "
                    f"{str(exc).splitlines()[0] if str(exc) else ''})",
                ) from None
        outs = []
        for idx in m.outputs:
            if idx in self.names:
                outs.append(self.names[idx])
            elif self.is_const(idx):
                outs.append(self.tensor(idx))
            else:
                raise self.err(
                    f"graph output tensor {idx} '{m.tensors[idx].name}' is never produced"
                )
        self.b.output(*outs)
        self.b.metadata.update(
            {
                "source": "tflite",
                "path": str(self.path),
                "layout": "NHWC",
                # TFLite tensor index -> IR tensor name, for every operator output and input
                "tflite_tensors": {i: n for i, n in sorted(self.names.items())},
            }
        )
        if m.description:
            self.b.metadata["description"] = m.description
        try:
            return self.b.build()
        except ModelError as exc:
            raise self.err(str(exc)) from None

    def add(self, op: _Op, irop: str, inputs: list[str], out_pos: int = 0, **attrs: Any) -> str:
        """Add one IR node producing TFLite output `op.outputs[out_pos]`; check its shape."""
        t = self.info(op.outputs[out_pos])
        name = self.b.unique(t.name or f"{irop}_{op.index}")
        try:
            out = self.b.add(
                irop,
                inputs,
                name=name,
                outputs=[name],
                dtype=self.dtype(t),
                quant=self.quant(t),
                **attrs,
            )
        except AccelsimError as exc:  # ModelError, ShapeError from shape inference
            raise self.op_err(op, str(exc)) from None
        got = self.b.shape(out)
        if tuple(got) != tuple(t.shape):
            raise self.op_err(
                op, f"IR shape {list(got)} differs from the file's output shape {list(t.shape)}"
            )
        self.names[op.outputs[out_pos]] = out
        return out

    def act(self, op: _Op, code: int) -> dict[str, float]:
        if code not in _ACTIVATIONS:
            raise self.op_err(
                op,
                f"fused activation {_ACTIVATION_NAMES.get(code, code)} is "
                f"not supported (only NONE, RELU, RELU_N1_TO_1, RELU6)",
            )
        lo, hi = _ACTIVATIONS[code]
        out = {}
        if lo is not None:
            out["act_min"] = lo
        if hi is not None:
            out["act_max"] = hi
        return out


# ---------------------------------------------------------------------------------------
# Operator handlers
# ---------------------------------------------------------------------------------------


def _opt(imp: _Importer, op: _Op, cls_name: str):
    o = op.options
    if o is None or type(o).__name__ != cls_name:
        raise imp.op_err(op, f"missing {cls_name}")
    return o


def _input_hw(imp: _Importer, op: _Op) -> tuple[int, int, int]:
    t = imp.info(op.inputs[0])
    if len(t.shape) != 4:
        raise imp.op_err(op, f"expected a 4-D NHWC input, found shape {list(t.shape)}")
    return t.shape[1], t.shape[2], t.shape[3]


def _pads(
    imp: _Importer,
    op: _Op,
    padding: int,
    kh: int,
    kw: int,
    sh: int,
    sw: int,
    dh: int = 1,
    dw: int = 1,
) -> tuple[int, int, int, int]:
    if padding not in (0, 1):
        raise imp.op_err(op, f"unknown padding type {padding}")
    h, w, _ = _input_hw(imp, op)
    _, pt, pb = _same_padding(h, kh, sh, dh, padding == 0)
    _, pl, pr = _same_padding(w, kw, sw, dw, padding == 0)
    return pt, pl, pb, pr


def _conv(imp: _Importer, op: _Op) -> None:
    o = _opt(imp, op, "Conv2DOptions")
    wt = imp.info(op.inputs[1])
    if len(wt.shape) != 4:
        raise imp.op_err(op, f"weights must be 4-D OHWI, found {list(wt.shape)}")
    cout, kh, kw, cin_g = wt.shape
    _, _, cin = _input_hw(imp, op)
    if cin % cin_g:
        raise imp.op_err(op, f"input has {cin} channels, weights expect multiples of {cin_g}")
    groups = cin // cin_g
    sh, sw, dh, dw = o.StrideH(), o.StrideW(), o.DilationHFactor(), o.DilationWFactor()
    pads = _pads(imp, op, o.Padding(), kh, kw, sh, sw, dh, dw)
    w = imp.weights(op.inputs[1], (0, 3, 1, 2), "ohwi->oihw")
    bias = imp.tensor(op.inputs[2]) if len(op.inputs) > 2 else ""
    imp.add(
        op,
        "conv2d",
        [imp.tensor(op.inputs[0]), w] + ([bias] if bias else []),
        strides=(sh, sw),
        dilations=(dh, dw),
        pads=pads,
        groups=groups,
        data_layout="NHWC",
        **imp.act(op, o.FusedActivationFunction()),
    )


def _depthwise(imp: _Importer, op: _Op) -> None:
    o = _opt(imp, op, "DepthwiseConv2DOptions")
    wt = imp.info(op.inputs[1])
    if len(wt.shape) != 4 or wt.shape[0] != 1:
        raise imp.op_err(op, f"weights must be 1HW(C*M), found {list(wt.shape)}")
    _, kh, kw, cout = wt.shape
    _, _, cin = _input_hw(imp, op)
    if cout % cin:
        raise imp.op_err(
            op, f"{cout} output channels are not a multiple of the {cin} input channels"
        )
    mult = cout // cin
    if o.DepthMultiplier() not in (0, mult):
        raise imp.op_err(
            op,
            f"depth_multiplier {o.DepthMultiplier()} does not match "
            f"weights {list(wt.shape)} on {cin} input channels",
        )
    sh, sw, dh, dw = o.StrideH(), o.StrideW(), o.DilationHFactor(), o.DilationWFactor()
    pads = _pads(imp, op, o.Padding(), kh, kw, sh, sw, dh, dw)
    w = imp.weights(op.inputs[1], (3, 0, 1, 2), "1hwc->c1hw")
    bias = imp.tensor(op.inputs[2]) if len(op.inputs) > 2 else ""
    imp.add(
        op,
        "conv2d",
        [imp.tensor(op.inputs[0]), w] + ([bias] if bias else []),
        strides=(sh, sw),
        dilations=(dh, dw),
        pads=pads,
        groups=cin,
        data_layout="NHWC",
        **imp.act(op, o.FusedActivationFunction()),
    )


def _fully_connected(imp: _Importer, op: _Op) -> None:
    o = _opt(imp, op, "FullyConnectedOptions")
    if o.WeightsFormat() != 0:
        raise imp.op_err(op, "shuffled (SHUFFLED4x16INT8) weights are not supported")
    wt = imp.info(op.inputs[1])
    if len(wt.shape) != 2:
        raise imp.op_err(op, f"weights must be 2-D (out, in), found {list(wt.shape)}")
    bias = imp.tensor(op.inputs[2]) if len(op.inputs) > 2 else ""
    imp.add(
        op,
        "dense",
        [imp.tensor(op.inputs[0]), imp.tensor(op.inputs[1])] + ([bias] if bias else []),
        keep_num_dims=bool(o.KeepNumDims()),
        # TFLite's reference FULLY_CONNECTED requantizes in double (gemmlowp_ops.dense)
        requant="double",
        **imp.act(op, o.FusedActivationFunction()),
    )


def _binary(irop: str, opts_name: str) -> Callable[[_Importer, _Op], None]:
    def handler(imp: _Importer, op: _Op) -> None:
        act = 0
        if op.options is not None:
            o = _opt(imp, op, opts_name)
            act = o.FusedActivationFunction()
            if irop in ("add", "sub") and hasattr(o, "PotScaleInt16"):
                pot = bool(o.PotScaleInt16())
                a = imp.info(op.inputs[0])
                if pot and imp.dtype(a) == "int16":
                    # The power-of-two int16 path is only taken when every scale is a power
                    # of two; the converter writes pot_scale_int16=false for int16x8 models.
                    scales = [
                        imp.info(i).scale for i in (op.inputs[0], op.inputs[1], op.outputs[0])
                    ]
                    if all(s is not None and _is_pot(float(s[0])) for s in scales):
                        raise imp.op_err(
                            op,
                            "the int16 power-of-two-scale ADD/SUB path "
                            "(pot_scale_int16) is not supported",
                        )
        imp.add(op, irop, [imp.tensor(op.inputs[0]), imp.tensor(op.inputs[1])], **imp.act(op, act))

    return handler


def _is_pot(s: float) -> bool:
    m, _ = np.frexp(s)
    return m == 0.5


def _pool(irop: str) -> Callable[[_Importer, _Op], None]:
    def handler(imp: _Importer, op: _Op) -> None:
        o = _opt(imp, op, "Pool2DOptions")
        kh, kw, sh, sw = o.FilterHeight(), o.FilterWidth(), o.StrideH(), o.StrideW()
        pads = _pads(imp, op, o.Padding(), kh, kw, sh, sw)
        attrs = dict(kernel=(kh, kw), strides=(sh, sw), pads=pads, data_layout="NHWC")
        if irop == "avg_pool":
            attrs["count_include_pad"] = False
        imp.add(
            op,
            irop,
            [imp.tensor(op.inputs[0])],
            **attrs,
            **imp.act(op, o.FusedActivationFunction()),
        )

    return handler


def _mean(imp: _Importer, op: _Op) -> None:
    axes = imp.const_value(op, 1, "axis").reshape(-1)
    rank = len(imp.info(op.inputs[0]).shape)
    keep = bool(op.options.KeepDims()) if op.options is not None else False
    axes = tuple(sorted({int(a) % rank for a in axes}))
    imp.add(op, "mean", [imp.tensor(op.inputs[0])], axes=axes, keepdims=keep)


def _concat(imp: _Importer, op: _Op) -> None:
    o = _opt(imp, op, "ConcatenationOptions")
    rank = len(imp.info(op.outputs[0]).shape)
    imp.add(
        op,
        "concat",
        [imp.tensor(i) for i in op.inputs],
        axis=int(o.Axis()) % rank,
        **imp.act(op, o.FusedActivationFunction()),
    )


def _reshape(imp: _Importer, op: _Op) -> None:
    shape = imp.info(op.outputs[0]).shape
    imp.add(op, "reshape", [imp.tensor(op.inputs[0])], shape=tuple(shape))


def _squeeze(imp: _Importer, op: _Op) -> None:
    axes = None
    if op.options is not None and op.options.SqueezeDimsLength() > 0:
        rank = len(imp.info(op.inputs[0]).shape)
        axes = tuple(sorted(int(a) % rank for a in op.options.SqueezeDimsAsNumpy()))
    imp.add(op, "squeeze", [imp.tensor(op.inputs[0])], axes=axes)


def _softmax(imp: _Importer, op: _Op) -> None:
    beta = float(op.options.Beta()) if op.options is not None else 1.0
    imp.add(op, "softmax", [imp.tensor(op.inputs[0])], axis=-1, beta=beta)


def _pad(imp: _Importer, op: _Op) -> None:
    p = imp.const_value(op, 1, "paddings").astype(np.int64)
    rank = len(imp.info(op.inputs[0]).shape)
    if p.shape != (rank, 2) or (p < 0).any():
        raise imp.op_err(op, f"paddings {p.tolist()} do not fit a rank-{rank} input")
    value = 0.0
    if op.opname == "PADV2" and len(op.inputs) > 2 and op.inputs[2] >= 0:
        cv = imp.info(op.inputs[2])
        raw = imp.const_value(op, 2, "constant_values").reshape(-1)
        if raw.size != 1:
            raise imp.op_err(op, "constant_values must hold one value")
        q = imp.quant(cv)
        value = (
            float(raw[0])
            if q is None
            else float((int(raw[0]) - q.zero_point[0]) * np.float64(np.float32(q.scale[0])))
        )
    imp.add(op, "pad", [imp.tensor(op.inputs[0])], pads=tuple(map(tuple, p.tolist())), value=value)


def _unary(irop: str, **fixed: Any) -> Callable[[_Importer, _Op], None]:
    def handler(imp: _Importer, op: _Op) -> None:
        imp.add(op, irop, [imp.tensor(op.inputs[0])], **fixed)

    return handler


def _transpose(imp: _Importer, op: _Op) -> None:
    perm = tuple(int(v) for v in imp.const_value(op, 1, "perm").reshape(-1))
    imp.add(op, "transpose", [imp.tensor(op.inputs[0])], perm=perm)


def _batch_matmul(imp: _Importer, op: _Op) -> None:
    o = _opt(imp, op, "BatchMatMulOptions")
    imp.add(
        op,
        "matmul",
        [imp.tensor(op.inputs[0]), imp.tensor(op.inputs[1])],
        transpose_a=bool(o.AdjX()),
        transpose_b=bool(o.AdjY()),
    )


def _dequantize(imp: _Importer, op: _Op) -> None:
    src, out = imp.info(op.inputs[0]), op.outputs[0]
    if not imp.is_const(op.inputs[0]):
        imp.add(op, "dequantize", [imp.tensor(op.inputs[0])])
        return
    # Constant weights stored as float16 or int8 and dequantized at load time: fold them,
    # so the consumer sees constant float weights (as TFLite does after its first run).
    value = imp.decode(src)
    q = imp.quant(src)
    if q is None:
        folded = value.astype(np.float32)
    else:
        shape = q.broadcast_shape(value.ndim)
        scale = np.asarray(q.scale, np.float32).astype(np.float64).reshape(shape)
        zp = q.zero_points().reshape(shape)
        folded = (scale * (value.astype(np.int64) - zp)).astype(np.float32)
    if imp.dtype(imp.info(out)) != "float32":
        raise imp.op_err(op, "DEQUANTIZE must produce float32")
    imp.fold(out, folded)


_HANDLERS: dict[str, Callable[[_Importer, _Op], None]] = {
    "CONV_2D": _conv,
    "DEPTHWISE_CONV_2D": _depthwise,
    "FULLY_CONNECTED": _fully_connected,
    "ADD": _binary("add", "AddOptions"),
    "SUB": _binary("sub", "SubOptions"),
    "MUL": _binary("mul", "MulOptions"),
    "AVERAGE_POOL_2D": _pool("avg_pool"),
    "MAX_POOL_2D": _pool("max_pool"),
    "MEAN": _mean,
    "CONCATENATION": _concat,
    "RESHAPE": _reshape,
    "SQUEEZE": _squeeze,
    "SOFTMAX": _softmax,
    "PAD": _pad,
    "PADV2": _pad,
    "RELU": _unary("relu"),
    "RELU6": _unary("relu6"),
    "RELU_N1_TO_1": _unary("clip", min=-1.0, max=1.0),
    "RELU_0_TO_1": _unary("clip", min=0.0, max=1.0),
    "QUANTIZE": _unary("quantize"),
    "DEQUANTIZE": _dequantize,
    "TRANSPOSE": _transpose,
    "BATCH_MATMUL": _batch_matmul,
}

SUPPORTED_OPS: tuple[str, ...] = tuple(sorted(_HANDLERS))


def load_tflite(path: str | Path) -> Graph:
    """Read a .tflite file into a `Graph` (NHWC, requant_mode "gemmlowp")."""
    path = Path(path)
    if _tfl is None:  # pragma: no cover
        raise ModelError(
            f"{path}: reading .tflite files needs the 'tflite' package (pip install tflite)"
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    model = _read(path, data)
    return _Importer(path, model).build()
