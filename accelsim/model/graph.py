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

from accelsim.core.errors import ModelError, ShapeError
from accelsim.core.qparams import (
    DTYPE_BITS,
    FLOAT_DTYPES,
    QuantParams,
)
from accelsim.model.ops import node_macs, node_params


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


# the largest tensor accelsim allocates (inputs, activations); $ACCELSIM_MAX_TENSOR_BYTES
# overrides it. Costing never allocates, so this bounds only runs, calibration and verification.
MAX_TENSOR_BYTES = 4 * 2**30


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
        return sum(node_macs(self, n) for n in self.nodes)

    def params(self) -> int:
        return sum(node_params(self, n) for n in self.nodes)

    def model_bytes(self) -> float:
        """Bytes to store every constant at its bit width (the model size on disk)."""
        return sum(self.tensors[c].nbytes for c in self.constants)

    def check_allocatable(self, tensors: Iterable[str] | None = None, count: int = 1) -> None:
        """Before the executor or an input generator allocates `count` copies of `tensors`
        (default: every tensor): a declared shape too large to hold is a `ShapeError` naming
        the tensor and its size, instead of a MemoryError midway."""
        import os

        limit = int(os.environ.get("ACCELSIM_MAX_TENSOR_BYTES") or MAX_TENSOR_BYTES)
        for name in self.tensors if tensors is None else tensors:
            info = self.tensors[name]
            need = info.size * max(1, DTYPE_BITS[info.dtype] // 8) * count
            if need > limit:
                raise ShapeError(
                    f"model '{self.name}': tensor '{name}' declares shape {list(info.shape)} "
                    f"({info.dtype}{f' x {count}' if count > 1 else ''}: {need / 2**30:.3g} GiB); "
                    f"expected at most {limit / 2**30:.3g} GiB per tensor "
                    f"(ACCELSIM_MAX_TENSOR_BYTES)"
                )

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
