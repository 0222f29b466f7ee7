"""`GraphBuilder`: the one way importers, the zoo and transforms assemble a `Graph`.

It names tensors and nodes uniquely, infers output shapes as nodes are added, and checks the
result on `build()`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from accelsim.core.errors import ModelError
from accelsim.core.qparams import FLOAT_DTYPES, NUMPY_DTYPE, QuantParams
from accelsim.model.graph import Graph, Node, TensorInfo, topological_order
from accelsim.model.ops import infer_shapes


def numpy_to_ir_dtype(arr: np.ndarray) -> str:
    name = np.dtype(arr.dtype).name
    if name not in NUMPY_DTYPE:
        raise ModelError(f"unsupported array dtype {name}")
    return name


class GraphBuilder:
    def __init__(self, name: str, requant_mode: str = "gemmlowp") -> None:
        self.name = name
        self.requant_mode = requant_mode
        self.nodes: list[Node] = []
        self.tensors: dict[str, TensorInfo] = {}
        self.constants: dict[str, np.ndarray] = {}
        self.inputs: list[str] = []
        self.outputs: list[str] = []
        self.metadata: dict[str, Any] = {}
        self._counts: dict[str, int] = {}

    # -- naming ---------------------------------------------------------------------------
    def unique(self, base: str) -> str:
        """`base` if unused, else `base_1`, `base_2`, ..."""
        taken = self.tensors.keys() | {n.name for n in self.nodes}
        if base not in taken:
            return base
        i = self._counts.get(base, 0)
        while True:
            i += 1
            cand = f"{base}_{i}"
            if cand not in taken:
                self._counts[base] = i
                return cand

    # -- tensors --------------------------------------------------------------------------
    def input(
        self,
        name: str,
        shape: Sequence[int],
        dtype: str = "float32",
        quant: QuantParams | None = None,
    ) -> str:
        if name in self.tensors:
            raise ModelError(f"graph '{self.name}': duplicate input '{name}'")
        self.tensors[name] = TensorInfo(name, tuple(shape), dtype, quant)
        self.inputs.append(name)
        return name

    def const(
        self,
        name: str,
        value: np.ndarray,
        dtype: str | None = None,
        quant: QuantParams | None = None,
        exact_name: bool = False,
    ) -> str:
        value = np.asarray(value)
        dtype = dtype or numpy_to_ir_dtype(value)
        value = value.astype(NUMPY_DTYPE[dtype], copy=False)
        value.setflags(write=False)
        if exact_name:
            if name in self.tensors:
                raise ModelError(f"graph '{self.name}': duplicate tensor '{name}'")
        else:
            name = self.unique(name)
        self.tensors[name] = TensorInfo(name, value.shape, dtype, quant)
        self.constants[name] = value
        return name

    def set_tensor(self, info: TensorInfo) -> None:
        """Replace a tensor's metadata (e.g. attach quantization parameters)."""
        self.tensors[info.name] = info

    # -- nodes ----------------------------------------------------------------------------
    def add(
        self,
        op: str,
        inputs: Sequence[str],
        name: str | None = None,
        outputs: Sequence[str] | None = None,
        dtype: str | None = None,
        quant: QuantParams | Sequence[QuantParams | None] | None = None,
        **attrs: Any,
    ) -> str:
        """Add a node, infer its output shape(s) and return its first output's name.

        `dtype` defaults to the first input's dtype; `quant` gives output quantization.
        """
        name = self.unique(name or op)
        missing = [t for t in inputs if t and t not in self.tensors]
        if missing:
            raise ModelError(
                f"graph '{self.name}': node '{name}' ({op}) reads unknown tensor(s) {missing}"
            )
        node = Node(name, op, tuple(inputs), (), attrs)
        infos = [self.tensors[t] if t else None for t in inputs]
        shapes = infer_shapes(node, infos)
        if outputs is None:
            outputs = [name] if len(shapes) == 1 else [f"{name}:{i}" for i in range(len(shapes))]
        outputs = [o if o not in self.tensors else self.unique(o) for o in outputs]
        out_dtype = dtype or (infos[0].dtype if infos and infos[0] is not None else "float32")
        quants = list(quant) if isinstance(quant, (list, tuple)) else [quant] * len(shapes)
        for o, shape, q in zip(outputs, shapes, quants):
            self.tensors[o] = TensorInfo(o, shape, out_dtype, q)
        self.nodes.append(Node(name, op, tuple(inputs), tuple(outputs), attrs))
        return outputs[0]

    def output(self, *names: str) -> None:
        self.outputs.extend(names)

    def shape(self, tensor: str) -> tuple[int, ...]:
        return self.tensors[tensor].shape

    def build(self) -> Graph:
        available = set(self.inputs) | set(self.constants)
        nodes = topological_order(self.nodes, available)
        used = (
            set(self.inputs)
            | set(self.outputs)
            | {t for n in nodes for t in n.inputs}
            | {t for n in nodes for t in n.outputs}
        )
        tensors = {k: v for k, v in self.tensors.items() if k in used}
        constants = {k: v for k, v in self.constants.items() if k in used}
        return Graph(
            self.name,
            tuple(nodes),
            tensors,
            tuple(self.inputs),
            tuple(self.outputs),
            constants,
            self.requant_mode,
            dict(self.metadata),
        )


def is_float_dtype(dtype: str) -> bool:
    return dtype in FLOAT_DTYPES
