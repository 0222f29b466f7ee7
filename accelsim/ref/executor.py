"""The reference executor: runs a `Graph` node by node with numpy kernels, each node by the
kernel registered for its op and domain (`accelsim.ref.registry`: float, TFLite's integer-only
gemmlowp arithmetic, or ONNX Runtime's QDQ arithmetic)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from accelsim.core.errors import ShapeError
from accelsim.core.qparams import NUMPY_DTYPE, dtype_range
from accelsim.model.graph import Graph, Node

# The kernel modules register their kernels on import.
from accelsim.ref import fp_ops, gemmlowp_ops, int_ops, qdq_ops  # noqa: F401
from accelsim.ref.registry import KernelCall, find_kernel


def domain_of(graph: Graph, node: Node) -> str:
    """ "fp" for nodes without quantized tensors (float data, and index / mask arithmetic on
    plain integers and bools), else the graph's requantization mode."""
    if node.op == "dequantize" or node.op == "quantize":
        return graph.requant_mode
    tensors = [graph.tensors[t] for t in (*node.inputs, *node.outputs) if t]
    if not any(t.is_quantized for t in tensors):
        return "fp"
    return graph.requant_mode


def check_inputs(
    graph: Graph, feeds: Mapping[str, np.ndarray] | Sequence[np.ndarray], source: str = "input"
) -> dict[str, np.ndarray]:
    """Match user arrays to graph inputs by name or position; check shape and dtype."""
    if not isinstance(feeds, Mapping):
        feeds = list(feeds)
        if len(feeds) != len(graph.inputs):
            raise ShapeError(
                f"{source}: model '{graph.name}' takes {len(graph.inputs)} input(s), "
                f"found {len(feeds)}"
            )
        feeds = dict(zip(graph.inputs, feeds))
    out = {}
    for name in graph.inputs:
        if name not in feeds:
            raise ShapeError(f"{source}: missing model input '{name}'")
        info = graph.tensors[name]
        arr = np.asarray(feeds[name])
        if tuple(arr.shape) != info.shape:
            raise ShapeError(
                f"{source}: input '{name}' of model '{graph.name}' expects shape "
                f"{list(info.shape)}, found {list(arr.shape)}"
            )
        if info.is_float:
            if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
                raise ShapeError(
                    f"{source}: input '{name}' expects {info.dtype}, found {arr.dtype}"
                )
            arr = arr.astype(NUMPY_DTYPE[info.dtype])
        elif info.dtype == "bool":
            if arr.dtype != np.bool_ and not np.issubdtype(arr.dtype, np.integer):
                raise ShapeError(f"{source}: input '{name}' expects bool data, found {arr.dtype}")
            arr = arr.astype(np.bool_)
        else:
            if not np.issubdtype(arr.dtype, np.integer):
                raise ShapeError(
                    f"{source}: input '{name}' expects integer {info.dtype} data, found {arr.dtype}"
                )
            lo, hi = dtype_range(info.dtype)
            if arr.size and (arr.min() < lo or arr.max() > hi):
                raise ShapeError(
                    f"{source}: input '{name}' expects {info.dtype} values in "
                    f"[{lo}, {hi}], found [{arr.min()}, {arr.max()}]"
                )
            arr = arr.astype(NUMPY_DTYPE[info.dtype])
        out[name] = arr
    return out


def run(
    graph: Graph,
    feeds: Mapping[str, np.ndarray] | Sequence[np.ndarray],
    keep: bool = False,
    source: str = "input",
) -> dict[str, np.ndarray]:
    """Run `graph`; return its outputs by name (every tensor when `keep`)."""
    values: dict[str, np.ndarray] = dict(graph.constants)
    values.update(check_inputs(graph, feeds, source))
    last_use: dict[str, int] = {}
    for i, node in enumerate(graph.nodes):
        for t in node.inputs:
            last_use[t] = i
    for i, node in enumerate(graph.nodes):
        fn = find_kernel(node.op, domain_of(graph, node))
        call = KernelCall(
            node,
            [values[t] if t else None for t in node.inputs],
            [graph.tensors[t] if t else None for t in node.inputs],
            [graph.tensors[t] for t in node.outputs],
            graph,
        )
        results = fn(call)
        for t, r, info in zip(node.outputs, results, call.out_info):
            r = np.asarray(r)
            if r.shape != info.shape:
                raise AssertionError(
                    f"kernel {node.op} gave shape {r.shape} for '{t}', expected {info.shape}"
                )
            values[t] = r.astype(NUMPY_DTYPE[info.dtype], copy=False)
        if not keep:  # free intermediates early: whole networks at 224x224 add up
            for t in node.inputs:
                if last_use.get(t) == i and t not in graph.outputs and t not in graph.constants:
                    values.pop(t, None)
    if keep:
        return values
    return {t: values[t] for t in graph.outputs}
