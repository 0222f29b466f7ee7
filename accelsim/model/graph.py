"""The graph IR: the one representation every stage consumes.

A `Graph` is a list of `Node`s in topological order over named tensors. Tensor metadata
(`TensorInfo`: shape, dtype, quantization parameters) lives in one table; constant data
(weights, biases) in another. Everything is frozen: stages build new graphs instead of
editing old ones (use `GraphBuilder`).

Conventions (kept by every importer and by the zoo):
- Spatial operators carry `data_layout` = "NCHW" or "NHWC"; ONNX and the zoo use NCHW, TFLite
  NHWC. The executor honours either; the lowering picks the layout per target.
- conv2d weights are always stored OIHW (out channels, in channels / groups, kh, kw), so a
  per-channel weight quantization axis is always 0. A depthwise conv is a conv2d with
  groups == input channels.
- dense (fully connected) weights are stored (out_features, in_features), as TFLite does.
- `pads` of conv/pool are (top, left, bottom, right).
- Fused activations are real-valued clamp bounds in the attributes `act_min` / `act_max`
  (absent = unbounded), which is how TFLite's fused RELU/RELU6 and ONNX's Clip both map.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from accelsim.errors import ModelError

# Integer and float dtypes the IR knows, with their bit widths. int2/uint2/int4/uint4 tensors
# are held in int8/uint8 numpy arrays whose values are within the narrow range.
DTYPE_BITS = {
    "float32": 32,
    "float16": 16,
    "int2": 2,
    "uint2": 2,
    "int4": 4,
    "uint4": 4,
    "int8": 8,
    "uint8": 8,
    "int16": 16,
    "uint16": 16,
    "int32": 32,
    "int64": 64,
    "bool": 8,
}
FLOAT_DTYPES = ("float32", "float16")

# numpy storage dtype for each IR dtype.
NUMPY_DTYPE = {
    "float32": np.float32,
    "float16": np.float16,
    "int2": np.int8,
    "uint2": np.uint8,
    "int4": np.int8,
    "uint4": np.uint8,
    "int8": np.int8,
    "uint8": np.uint8,
    "int16": np.int16,
    "uint16": np.uint16,
    "int32": np.int32,
    "int64": np.int64,
    "bool": np.bool_,
}


def dtype_range(dtype: str) -> tuple[int, int]:
    """Smallest and largest value of an integer IR dtype."""
    bits = DTYPE_BITS[dtype]
    if dtype.startswith("u"):
        return 0, (1 << bits) - 1
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


@dataclass(frozen=True)
class QuantParams:
    """Affine quantization `real = scale * (q - zero_point)` (Jacob et al. 2018).

    Per-tensor when `axis` is None (one scale, one zero point); per-axis otherwise, with one
    entry per index of that axis.
    """

    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    axis: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale", tuple(float(s) for s in np.ravel(self.scale)))
        object.__setattr__(self, "zero_point", tuple(int(z) for z in np.ravel(self.zero_point)))
        if len(self.scale) != len(self.zero_point) and len(self.zero_point) != 1:
            raise ModelError(
                f"quantization parameters: {len(self.scale)} scales but "
                f"{len(self.zero_point)} zero points"
            )
        if self.axis is None and len(self.scale) != 1:
            raise ModelError(f"per-tensor quantization needs one scale, found {len(self.scale)}")
        if any(not (s > 0) or not np.isfinite(s) for s in self.scale):
            raise ModelError(f"quantization scale must be positive and finite, found {self.scale}")

    @property
    def per_channel(self) -> bool:
        return self.axis is not None

    def scales(self) -> np.ndarray:
        return np.asarray(self.scale, dtype=np.float64)

    def zero_points(self) -> np.ndarray:
        zp = np.asarray(self.zero_point, dtype=np.int64)
        if len(zp) == 1 and len(self.scale) > 1:
            zp = np.repeat(zp, len(self.scale))
        return zp

    def broadcast_shape(self, ndim: int) -> tuple[int, ...]:
        """Shape that broadcasts per-axis parameters against a tensor of `ndim` dims."""
        if self.axis is None:
            return (1,) * ndim
        shape = [1] * ndim
        shape[self.axis % ndim] = len(self.scale)
        return tuple(shape)

    @staticmethod
    def per_tensor(scale: float, zero_point: int = 0) -> QuantParams:
        return QuantParams((float(scale),), (int(zero_point),), None)


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    quant: QuantParams | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        if self.dtype not in DTYPE_BITS:
            raise ModelError(
                f"tensor '{self.name}': unknown dtype '{self.dtype}', expected one "
                f"of {sorted(DTYPE_BITS)}"
            )

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_DTYPES

    @property
    def is_quantized(self) -> bool:
        return self.quant is not None and not self.is_float

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> float:
        """Storage in bytes at the tensor's bit width (4-bit tensors packed two per byte)."""
        return self.size * DTYPE_BITS[self.dtype] / 8


def _freeze(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, np.ndarray):
        return tuple(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclass(frozen=True)
class Node:
    """One operator. `attrs` is read-only; list values are stored as tuples."""

    name: str
    op: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "outputs", tuple(self.outputs))
        object.__setattr__(
            self, "attrs", MappingProxyType({k: _freeze(v) for k, v in dict(self.attrs).items()})
        )

    def attr(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)

    def with_attrs(self, **changes: Any) -> Node:
        attrs = dict(self.attrs)
        attrs.update(changes)
        return dataclasses.replace(self, attrs=attrs)


@dataclass(frozen=True, eq=False)
class Graph:
    """A dataflow graph. `nodes` are in a valid topological order (checked on construction).

    `requant_mode` says how quantized operators requantize: "gemmlowp" (integer fixed-point,
    bit-exact with TFLite's reference kernels) or "float" (ONNX QDQ semantics, as ONNX Runtime
    computes them). It only matters for quantized graphs.
    """

    name: str
    nodes: tuple[Node, ...]
    tensors: Mapping[str, TensorInfo]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    constants: Mapping[str, np.ndarray] = field(default_factory=dict)
    requant_mode: str = "gemmlowp"
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", tuple(self.nodes))
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "outputs", tuple(self.outputs))
        object.__setattr__(self, "tensors", MappingProxyType(dict(self.tensors)))
        object.__setattr__(self, "constants", MappingProxyType(dict(self.constants)))
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))
        if self.requant_mode not in ("gemmlowp", "float"):
            raise ModelError(
                f"graph '{self.name}': requant_mode must be 'gemmlowp' or 'float', "
                f"found '{self.requant_mode}'"
            )
        self._check()

    def _check(self) -> None:
        known = set(self.inputs) | set(self.constants)
        for name in known:
            if name not in self.tensors:
                raise ModelError(f"graph '{self.name}': tensor '{name}' has no TensorInfo")
        for node in self.nodes:
            for t in node.inputs:
                if t and t not in known:
                    raise ModelError(
                        f"graph '{self.name}': node '{node.name}' ({node.op}) reads "
                        f"tensor '{t}' before anything produces it"
                    )
            for t in node.outputs:
                if t not in self.tensors:
                    raise ModelError(
                        f"graph '{self.name}': node '{node.name}' output '{t}' has no TensorInfo"
                    )
                known.add(t)
        for t in self.outputs:
            if t not in known:
                raise ModelError(f"graph '{self.name}': output '{t}' is never produced")

    # -- queries --------------------------------------------------------------------------
    def tensor(self, name: str) -> TensorInfo:
        return self.tensors[name]

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def producer(self, tensor: str) -> Node | None:
        for n in self.nodes:
            if tensor in n.outputs:
                return n
        return None

    def consumers(self, tensor: str) -> list[Node]:
        return [n for n in self.nodes if tensor in n.inputs]

    def is_constant(self, tensor: str) -> bool:
        return tensor in self.constants

    @property
    def is_quantized(self) -> bool:
        return any(self.tensors[n].is_quantized for node in self.nodes for n in node.outputs)

    def macs(self) -> int:
        from accelsim.model.ops import node_macs

        return sum(node_macs(self, n) for n in self.nodes)

    def params(self) -> int:
        from accelsim.model.ops import node_params

        return sum(node_params(self, n) for n in self.nodes)

    def model_bytes(self) -> float:
        """Bytes to store every constant at its bit width (the model size on disk)."""
        return sum(self.tensors[c].nbytes for c in self.constants)

    def replace(self, **changes: Any) -> Graph:
        return dataclasses.replace(self, **changes)


def topological_order(nodes: Iterable[Node], available: Iterable[str]) -> list[Node]:
    """Kahn's algorithm over tensor dependencies; stable (keeps the given order where free)."""
    nodes = list(nodes)
    ready = set(available)
    produced_by = {t: n.name for n in nodes for t in n.outputs}
    pending = list(nodes)
    order: list[Node] = []
    while pending:
        progress = False
        rest = []
        for n in pending:
            if all((not t) or t in ready or t not in produced_by for t in n.inputs):
                order.append(n)
                ready.update(n.outputs)
                progress = True
            else:
                rest.append(n)
        if not progress:
            names = ", ".join(n.name for n in rest[:5])
            raise ModelError(f"graph has a cycle or a missing producer among nodes: {names}")
        pending = rest
    return order
