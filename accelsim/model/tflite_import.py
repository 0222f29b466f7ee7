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

- SPACE_TO_BATCH_ND -> CONV_2D / DEPTHWISE_CONV_2D -> BATCH_TO_SPACE_ND (a dilated
  convolution the converter did not fuse, e.g. with a dynamic batch) -> one dilated conv;
- operators on constants only (the converter's SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE
  flatten, index arithmetic) are evaluated at import time;
- SPLIT / SPLIT_V -> one `slice` per output; STRIDED_SLICE / SLICE -> `slice` (and a reshape
  for shrunk axes); RESIZE_* -> `resize` with TFLite's coordinate rules.

Fully int8 models, int16x8 models (int16 activations, int8 weights, int64 or int32 bias;
also with float islands where TFLite has no 16x8 kernel) and float32 models are supported.
Errors are `ModelError` / `UnsupportedOpError` with a one-line message that names the file;
every unsupported operator is named in one error.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from accelsim.core.errors import AccelsimError, ModelError, UnsupportedOpError
from accelsim.core.fsutil import check_finite, read_bytes
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
    # a convolution folded with the SPACE_TO_BATCH_ND / BATCH_TO_SPACE_ND around it:
    # {"dilations": (dh, dw), "pads": (top, left, bottom, right)}
    override: dict[str, Any] | None = None


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
            check_finite(vals, f"{self.path}: tensor {t.index} '{t.name}'", ModelError)
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
        bad = [op for op in m.ops if op.opname not in _HANDLERS and op.opname not in _FOLD]
        if bad:
            listed = ", ".join(
                f"operator {op.index} ({op.opname}, output "
                f"'{m.tensors[op.outputs[0]].name if op.outputs else '?'}')"
                for op in bad
            )
            raise UnsupportedOpError(
                f"{self.path}: {len(bad)} operator(s) accelsim does not support: {listed}; "
                f"supported TFLite operators: {', '.join(SUPPORTED_OPS)}"
            )
        ops = _fold_dilated_convs(self, m.ops)
        for op in ops:
            if not op.outputs:
                raise self.err(f"operator {op.index} ({op.opname}) has no outputs")
            for o in op.outputs:
                if o < 0:
                    raise self.op_err(op, "an output tensor index is missing")
            try:
                if _try_fold(self, op):
                    continue
                for o in op.outputs:
                    self.static_shape(m.tensors[o], f"operator {op.index} ({op.opname}) output")
                handler = _HANDLERS.get(op.opname)
                if handler is None:
                    raise self.op_err(
                        op,
                        "accelsim supports this operator only on constant inputs (shape "
                        "arithmetic), but an input is computed at run time",
                    )
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


def _conv_geometry(imp: _Importer, op: _Op, o, kh: int, kw: int):
    """(stride h, stride w, dilation h, dilation w, pads) of a convolution, or of a dilated
    convolution folded from SPACE_TO_BATCH_ND / BATCH_TO_SPACE_ND."""
    sh, sw = o.StrideH(), o.StrideW()
    if op.override is not None:
        dh, dw = op.override["dilations"]
        return sh, sw, dh, dw, op.override["pads"]
    dh, dw = o.DilationHFactor(), o.DilationWFactor()
    return sh, sw, dh, dw, _pads(imp, op, o.Padding(), kh, kw, sh, sw, dh, dw)


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
    sh, sw, dh, dw, pads = _conv_geometry(imp, op, o, kh, kw)
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
    sh, sw, dh, dw, pads = _conv_geometry(imp, op, o, kh, kw)
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


def _activation(irop: str, **fixed: Any) -> Callable[[_Importer, _Op], None]:
    def handler(imp: _Importer, op: _Op) -> None:
        imp.add(op, irop, [imp.tensor(op.inputs[0])], **fixed)

    return handler


def _gelu(imp: _Importer, op: _Op) -> None:
    approx = bool(op.options.Approximate()) if op.options is not None else False
    imp.add(op, "gelu", [imp.tensor(op.inputs[0])], approximate="tanh" if approx else "none")


def _elementwise(irop: str, dtype: str | None = None) -> Callable[[_Importer, _Op], None]:
    def handler(imp: _Importer, op: _Op) -> None:
        act = {}
        if op.options is not None and hasattr(op.options, "FusedActivationFunction"):
            act = imp.act(op, op.options.FusedActivationFunction())
        ins = [imp.tensor(i) for i in op.inputs]
        if dtype is None:
            imp.add(op, irop, ins, **act)
        else:
            _add_typed(imp, op, irop, ins, dtype)

    return handler


def _add_typed(imp: _Importer, op: _Op, irop: str, ins: list[str], dtype: str, **attrs) -> str:
    """An IR node whose output dtype is the file's (comparisons, casts)."""
    t = imp.info(op.outputs[0])
    name = imp.b.unique(t.name or f"{irop}_{op.index}")
    try:
        out = imp.b.add(irop, ins, name=name, outputs=[name], dtype=dtype, **attrs)
    except AccelsimError as exc:
        raise imp.op_err(op, str(exc)) from None
    imp.names[op.outputs[0]] = out
    return out


def _cast(imp: _Importer, op: _Op) -> None:
    _add_typed(imp, op, "cast", [imp.tensor(op.inputs[0])], imp.dtype(imp.info(op.outputs[0])))


def _compare(irop: str) -> Callable[[_Importer, _Op], None]:
    def handler(imp: _Importer, op: _Op) -> None:
        _add_typed(imp, op, irop, [imp.tensor(i) for i in op.inputs[:2]], "bool")

    return handler


def _select(imp: _Importer, op: _Op) -> None:
    imp.add(op, "where", [imp.tensor(i) for i in op.inputs[:3]])


def _strided_slice_params(
    shape: tuple[int, ...], begin, end, strides, o
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """TFLite STRIDED_SLICE (strided_slice_logic.h) -> (starts, ends, steps, kept axes)."""
    bm, em = (int(o.BeginMask()), int(o.EndMask())) if o is not None else (0, 0)
    if o is not None and (o.EllipsisMask() or o.NewAxisMask()):
        raise ValueError("ellipsis_mask / new_axis_mask are not supported")
    shrink = int(o.ShrinkAxisMask()) if o is not None else 0
    offset = bool(o.Offset()) if o is not None and hasattr(o, "Offset") else False
    rank = len(shape)
    b, e, st, keep = [0] * rank, list(shape), [1] * rank, []
    for i in range(rank):
        dim = shape[i]
        if i >= len(begin):
            keep.append(i)
            continue
        step = int(strides[i])
        if step == 0:
            raise ValueError("a stride of 0")
        s0 = int(begin[i])
        e0 = int(end[i]) + (s0 if offset else 0)
        if shrink >> i & 1:
            s0 = s0 + dim if s0 < 0 else s0
            if not 0 <= s0 < dim:
                raise ValueError(f"index {begin[i]} outside dimension {dim}")
            b[i], e[i], st[i] = s0, s0 + 1, 1
            continue
        keep.append(i)
        lo, hi = (0, dim) if step > 0 else (-1, dim - 1)
        if bm >> i & 1:
            s0 = 0 if step > 0 else dim - 1
        else:
            s0 = min(max(s0 + dim if s0 < 0 else s0, lo), hi)
        if em >> i & 1:
            e0 = dim if step > 0 else -1
        else:
            e0 = min(max(e0 + dim if e0 < 0 else e0, lo), hi)
        b[i], e[i], st[i] = max(s0, 0), e0, step
    return tuple(b), tuple(e), tuple(st), tuple(keep)


def _strided_slice(imp: _Importer, op: _Op) -> None:
    x = imp.info(op.inputs[0])
    begin = imp.const_value(op, 1, "begin").reshape(-1)
    end = imp.const_value(op, 2, "end").reshape(-1)
    strides = (
        imp.const_value(op, 3, "strides").reshape(-1) if len(op.inputs) > 3 else np.ones_like(begin)
    )
    o = op.options
    b, e, st, keep = _strided_slice_params(x.shape, begin, end, strides, o)
    _slice_then_shape(imp, op, b, e, st)


def _slice_then_shape(imp: _Importer, op: _Op, b, e, st) -> None:
    """A `slice`, reshaped to the file's output shape when axes were dropped."""
    x = imp.info(op.inputs[0])
    out = imp.info(op.outputs[0])
    full = tuple(len(range(s0, e0, s1)) for s0, e0, s1 in zip(b, e, st))
    if full == tuple(out.shape):
        imp.add(op, "slice", [imp.tensor(op.inputs[0])], starts=b, ends=e, steps=st)
        return
    name = imp.b.unique(f"{out.name or 'slice'}_full")
    try:
        sl = imp.b.add(
            "slice",
            [imp.tensor(op.inputs[0])],
            name=name,
            outputs=[name],
            dtype=imp.dtype(x),
            quant=imp.quant(x),
            starts=b,
            ends=e,
            steps=st,
        )
    except AccelsimError as exc:
        raise imp.op_err(op, str(exc)) from None
    imp.add(op, "reshape", [sl], shape=tuple(out.shape))


def _slice(imp: _Importer, op: _Op) -> None:
    x = imp.info(op.inputs[0])
    begin = imp.const_value(op, 1, "begin").reshape(-1)
    size = imp.const_value(op, 2, "size").reshape(-1)
    b = tuple(int(v) for v in begin)
    e = tuple(d if int(n) == -1 else int(s0) + int(n) for s0, n, d in zip(begin, size, x.shape))
    _slice_then_shape(imp, op, b, e, (1,) * len(b))


def _split(imp: _Importer, op: _Op) -> None:
    """SPLIT (inputs: axis, value) and SPLIT_V (value, size_splits, axis): a slice per
    output."""
    if op.opname == "SPLIT":
        axis_pos, x_idx = 0, op.inputs[1]
    else:
        axis_pos, x_idx = 2, op.inputs[0]
    x = imp.info(x_idx)
    axis = int(imp.const_value(op, axis_pos, "axis").reshape(-1)[0]) % len(x.shape)
    sizes = [imp.info(o).shape[axis] for o in op.outputs]
    if sum(sizes) != x.shape[axis]:
        raise imp.op_err(op, f"outputs of {sizes} do not cover axis {axis} of {list(x.shape)}")
    src = imp.tensor(x_idx)
    offset = 0
    for k, size in enumerate(sizes):
        b, e = [0] * len(x.shape), list(x.shape)
        b[axis], e[axis] = offset, offset + size
        offset += size
        imp.add(op, "slice", [src], out_pos=k, starts=tuple(b), ends=tuple(e), steps=(1,) * len(b))


def _gather(imp: _Importer, op: _Op) -> None:
    o = op.options
    data = imp.info(op.inputs[0])
    axis = int(o.Axis()) % len(data.shape) if o is not None else 0
    if o is not None and o.BatchDims():
        raise imp.op_err(op, "batch_dims != 0 is not supported")
    imp.add(op, "gather", [imp.tensor(op.inputs[0]), imp.tensor(op.inputs[1])], axis=axis)


def _tile(imp: _Importer, op: _Op) -> None:
    reps = tuple(int(v) for v in imp.const_value(op, 1, "multiples").reshape(-1))
    imp.add(op, "tile", [imp.tensor(op.inputs[0])], repeats=reps)


def _depth_to_space(imp: _Importer, op: _Op) -> None:
    o = _opt(imp, op, "DepthToSpaceOptions")
    imp.add(
        op,
        "depth_to_space",
        [imp.tensor(op.inputs[0])],
        blocksize=int(o.BlockSize()),
        mode="DCR",
        data_layout="NHWC",
    )


def _mirror_pad(imp: _Importer, op: _Op) -> None:
    p = imp.const_value(op, 1, "paddings").astype(np.int64)
    rank = len(imp.info(op.inputs[0]).shape)
    if p.shape != (rank, 2) or (p < 0).any():
        raise imp.op_err(op, f"paddings {p.tolist()} do not fit a rank-{rank} input")
    mode = "symmetric" if op.options is not None and op.options.Mode() == 1 else "reflect"
    imp.add(op, "pad", [imp.tensor(op.inputs[0])], pads=tuple(map(tuple, p.tolist())), mode=mode)


def _resize(mode: str) -> Callable[[_Importer, _Op], None]:
    def handler(imp: _Importer, op: _Op) -> None:
        o = op.options
        align = bool(o.AlignCorners()) if o is not None else False
        half = bool(o.HalfPixelCenters()) if o is not None else False
        out = imp.info(op.outputs[0])
        if len(out.shape) != 4:
            raise imp.op_err(op, f"expected a 4-D NHWC output, found {list(out.shape)}")
        ctm = (
            "tflite_align_corners"
            if align
            else "tflite_half_pixel"
            if half
            else "tflite_asymmetric"
        )
        imp.add(
            op,
            "resize",
            [imp.tensor(op.inputs[0])],
            mode=mode,
            coordinate_transformation_mode=ctm,
            size=(out.shape[1], out.shape[2]),
            data_layout="NHWC",
        )

    return handler


# Operators evaluated at import time when every input is a constant (shape arithmetic, e.g.
# the converter's SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE flatten). SHAPE is folded always:
# shapes are static.
def _fold_value(imp: _Importer, op: _Op) -> np.ndarray | None:
    name = op.opname
    vals = [imp.decode(imp.info(i)) if i >= 0 else None for i in op.inputs]
    if name == "SHAPE":
        return np.array(
            imp.info(op.inputs[0]).shape, dtype=NUMPY_DTYPE[imp.dtype(imp.info(op.outputs[0]))]
        )
    if name == "PACK":
        axis = int(op.options.Axis()) if op.options is not None else 0
        return np.stack(vals, axis=axis)
    if name == "CONCATENATION":
        return np.concatenate(vals, axis=int(op.options.Axis()))
    if name in ("STRIDED_SLICE", "SLICE"):
        x = vals[0]
        if name == "SLICE":
            b = tuple(int(v) for v in vals[1].reshape(-1))
            e = tuple(
                d if int(n) == -1 else s0 + int(n)
                for s0, n, d in zip(b, vals[2].reshape(-1), x.shape)
            )
            return x[tuple(slice(s0, e0) for s0, e0 in zip(b, e))]
        strides = vals[3].reshape(-1) if len(vals) > 3 else np.ones_like(vals[1].reshape(-1))
        b, e, st, keep = _strided_slice_params(
            x.shape, vals[1].reshape(-1), vals[2].reshape(-1), strides, op.options
        )
        sl = x[tuple(slice(s0, None if e0 < 0 else e0, s1) for s0, e0, s1 in zip(b, e, st))]
        return sl.reshape(imp.info(op.outputs[0]).shape)
    if name == "GATHER":
        axis = int(op.options.Axis()) if op.options is not None else 0
        return np.take(vals[0], vals[1].astype(np.int64), axis=axis)
    if name in ("RESHAPE", "SQUEEZE", "EXPAND_DIMS"):
        return vals[0].reshape(imp.info(op.outputs[0]).shape)
    if name == "CAST":
        return vals[0].astype(NUMPY_DTYPE[imp.dtype(imp.info(op.outputs[0]))])
    arith = {
        "ADD": np.add,
        "SUB": np.subtract,
        "MUL": np.multiply,
        "FLOOR_DIV": np.floor_divide,
        "MAXIMUM": np.maximum,
        "MINIMUM": np.minimum,
    }
    if name in arith and all(v is not None and v.dtype.kind in "iu" for v in vals):
        return arith[name](vals[0], vals[1])
    return None


_FOLD = ("SHAPE", "PACK", "FLOOR_DIV", "MAXIMUM", "MINIMUM")


def _try_fold(imp: _Importer, op: _Op) -> bool:
    """Fold an operator on constants (never one on quantized values)."""
    if op.opname not in _FOLD and op.opname not in (
        "EXPAND_DIMS",
        "CONCATENATION",
        "STRIDED_SLICE",
        "SLICE",
        "GATHER",
        "RESHAPE",
        "SQUEEZE",
        "CAST",
        "ADD",
        "SUB",
        "MUL",
    ):
        return False
    if len(op.outputs) != 1:
        return False
    out = imp.info(op.outputs[0])
    if out.scale is not None and imp.dtype(out) not in ("float32", "int32", "int64"):
        return False
    if op.opname != "SHAPE" and not all(i < 0 or imp.is_const(i) for i in op.inputs):
        return False
    if op.opname == "SHAPE" and any(d < 0 for d in imp.info(op.inputs[0]).shape):
        return False
    try:
        value = _fold_value(imp, op)
    except (ValueError, IndexError) as exc:
        raise imp.op_err(op, f"cannot evaluate on constant inputs ({exc})") from None
    if value is None:
        return False
    value = np.asarray(value).astype(NUMPY_DTYPE[imp.dtype(out)])
    if tuple(value.shape) != tuple(out.shape):
        raise imp.op_err(
            op, f"evaluates to shape {list(value.shape)}, the file says {list(out.shape)}"
        )
    imp.fold(op.outputs[0], value)
    return True


def _fold_dilated_convs(imp: _Importer, ops: list[_Op]) -> list[_Op]:
    """SPACE_TO_BATCH_ND -> CONV_2D / DEPTHWISE_CONV_2D -> BATCH_TO_SPACE_ND, the TF graph of a
    dilated convolution that the converter did not fuse, back to one dilated convolution:
    the block shape is the dilation, the paddings minus the crops are the convolution's
    padding. Raises for any other use of the two operators."""
    consumers: dict[int, list[_Op]] = {}
    for op in ops:
        for i in op.inputs:
            consumers.setdefault(i, []).append(op)
    out: list[_Op] = []
    drop: set[int] = set()
    replaced: dict[int, _Op] = {}
    for op in ops:
        if op.opname != "SPACE_TO_BATCH_ND":
            continue
        conv = consumers.get(op.outputs[0], [])
        conv = conv[0] if len(conv) == 1 else None
        b2s = consumers.get(conv.outputs[0], []) if conv is not None else []
        b2s = b2s[0] if len(b2s) == 1 else None
        ok = (
            conv is not None
            and conv.opname in ("CONV_2D", "DEPTHWISE_CONV_2D")
            and conv.inputs[0] == op.outputs[0]
            and b2s is not None
            and b2s.opname == "BATCH_TO_SPACE_ND"
            and conv.options is not None
            and conv.options.Padding() == 1  # VALID
            and conv.options.StrideH() == conv.options.StrideW() == 1
            and conv.options.DilationHFactor() == conv.options.DilationWFactor() == 1
        )
        if not ok:
            raise imp.op_err(
                op,
                "SPACE_TO_BATCH_ND is supported only as the converter writes a dilated "
                "convolution (-> CONV_2D / DEPTHWISE_CONV_2D, VALID, stride 1 -> "
                "BATCH_TO_SPACE_ND)",
            )
        block = imp.const_value(op, 1, "block_shape").reshape(-1)
        pads = imp.const_value(op, 2, "paddings").reshape(-1, 2)
        if not np.array_equal(imp.const_value(b2s, 1, "block_shape").reshape(-1), block):
            raise imp.op_err(b2s, "block shape differs from the SPACE_TO_BATCH_ND's")
        crops = imp.const_value(b2s, 2, "crops").reshape(-1, 2)
        p = pads - crops
        if block.size != 2 or (p < 0).any():
            raise imp.op_err(
                op,
                f"paddings {pads.tolist()} with crops {crops.tolist()} do not "
                f"make a dilated convolution",
            )
        replaced[conv.index] = dataclasses.replace(
            conv,
            inputs=[op.inputs[0], *conv.inputs[1:]],
            outputs=list(b2s.outputs),
            override={
                "dilations": (int(block[0]), int(block[1])),
                "pads": (int(p[0, 0]), int(p[1, 0]), int(p[0, 1]), int(p[1, 1])),
            },
        )
        drop |= {op.index, b2s.index}
    for op in ops:
        if op.index in drop:
            continue
        if op.opname == "BATCH_TO_SPACE_ND":
            raise imp.op_err(op, "BATCH_TO_SPACE_ND is supported only after a dilated convolution")
        out.append(replaced.get(op.index, op))
    return out


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
    "EXPAND_DIMS": _reshape,
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
    "LOGISTIC": _activation("sigmoid"),
    "TANH": _activation("tanh"),
    "HARD_SWISH": _activation("hard_swish"),
    "GELU": _gelu,
    "NEG": _activation("neg"),
    "RSQRT": _activation("rsqrt"),
    "SQUARED_DIFFERENCE": _elementwise("squared_difference"),
    "DIV": _elementwise("div"),
    "SELECT": _select,
    "SELECT_V2": _select,
    "LESS": _compare("less"),
    "GREATER": _compare("greater"),
    "EQUAL": _compare("equal"),
    "CAST": _cast,
    "STRIDED_SLICE": _strided_slice,
    "SLICE": _slice,
    "SPLIT": _split,
    "SPLIT_V": _split,
    "GATHER": _gather,
    "TILE": _tile,
    "DEPTH_TO_SPACE": _depth_to_space,
    "MIRROR_PAD": _mirror_pad,
    "RESIZE_BILINEAR": _resize("linear"),
    "RESIZE_NEAREST_NEIGHBOR": _resize("nearest"),
    # folded into the convolution between them (_fold_dilated_convs)
    "SPACE_TO_BATCH_ND": lambda imp, op: None,
    "BATCH_TO_SPACE_ND": lambda imp, op: None,
}

SUPPORTED_OPS: tuple[str, ...] = tuple(sorted(set(_HANDLERS) | set(_FOLD)))


def load_tflite(path: str | Path) -> Graph:
    """Read a .tflite file into a `Graph` (NHWC, requant_mode "gemmlowp")."""
    path = Path(path)
    if _tfl is None:  # pragma: no cover
        raise ModelError(
            f"{path}: reading .tflite files needs the 'tflite' package (pip install tflite)"
        )
    data = read_bytes(path, "TFLite model file", ModelError)
    model = _read(path, data)
    return _Importer(path, model).build()
