"""The reference executor: runs a `Graph` node by node with numpy kernels.

Kernels are registered per (op, domain):
- "fp": float tensors (the float executor for float graphs);
- "gemmlowp": quantized tensors, integer-only fixed-point requantization, bit-exact with
  TFLite's reference kernels;
- "float": quantized tensors with ONNX QDQ semantics (integer accumulation, float
  requantization with round-half-to-even), as ONNX Runtime computes them;
- "int": quantized kernels that are identical in both requantization modes (reshape, flatten,
  squeeze, transpose), used when a mode has no kernel of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from accelsim.errors import ModelError, ShapeError
from accelsim.model.graph import NUMPY_DTYPE, Graph, Node, TensorInfo, dtype_range


@dataclass(frozen=True)
class KernelCall:
    """What a kernel sees: the node, its input arrays (None for omitted optional inputs)
    and the metadata of its inputs and outputs."""

    node: Node
    args: Sequence[np.ndarray | None]
    in_info: Sequence[TensorInfo | None]
    out_info: Sequence[TensorInfo]
    graph: Graph

    def attr(self, key, default=None):
        return self.node.attrs.get(key, default)


KernelFn = Callable[[KernelCall], Sequence[np.ndarray]]
_KERNELS: dict[tuple[str, str], KernelFn] = {}
DOMAINS = ("fp", "gemmlowp", "float", "int")


def kernel(op: str, *domains: str) -> Callable[[KernelFn], KernelFn]:
    """Register a kernel for `op` in each of `domains`."""

    def wrap(fn: KernelFn) -> KernelFn:
        for d in domains:
            assert d in DOMAINS, d
            _KERNELS[(op, d)] = fn
        return fn

    return wrap


def _load_kernels() -> None:
    # Kernel modules register themselves on import.
    from accelsim.ref import fp_ops, int_ops  # noqa: F401

    for mod in ("accelsim.ref.gemmlowp_ops", "accelsim.ref.qdq_ops"):
        try:
            __import__(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:
                raise


def domain_of(graph: Graph, node: Node) -> str:
    outs = [graph.tensors[t] for t in node.outputs]
    ins = [graph.tensors[t] for t in node.inputs if t]
    if node.op == "dequantize" or node.op == "quantize":
        return graph.requant_mode
    if all(t.is_float for t in outs) and all(t.is_float for t in ins):
        return "fp"
    return graph.requant_mode


_LOADED = False


def find_kernel(op: str, domain: str) -> KernelFn:
    global _LOADED
    if not _LOADED:  # not `if not _KERNELS`: a kernel module imported first fills the table
        _LOADED = True
        _load_kernels()
    fn = _KERNELS.get((op, domain))
    if fn is None and domain != "fp":
        fn = _KERNELS.get((op, "int"))
    if fn is None:
        have = sorted(d for (o, d) in _KERNELS if o == op)
        raise ModelError(
            f"op '{op}' has no reference kernel for {domain} tensors"
            + (f" (only for: {', '.join(have)})" if have else "")
        )
    return fn


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
