"""The reference executor: runs a `Graph` node by node with numpy kernels, each node by the
kernel registered for its op and domain (`accelsim.ref.registry`: float, TFLite's integer-only
gemmlowp arithmetic, or ONNX Runtime's QDQ arithmetic)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from accelsim.core.errors import AccelsimError, ShapeError
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


def _by_name(
    graph: Graph, feeds: Mapping[str, np.ndarray] | Sequence[np.ndarray], source: str
) -> Mapping[str, np.ndarray]:
    if isinstance(feeds, Mapping):
        return feeds
    feeds = list(feeds)
    if len(feeds) != len(graph.inputs):
        raise ShapeError(
            f"{source}: model '{graph.name}' takes {len(graph.inputs)} input(s), found {len(feeds)}"
        )
    return dict(zip(graph.inputs, feeds))


def check_inputs(
    graph: Graph, feeds: Mapping[str, np.ndarray] | Sequence[np.ndarray], source: str = "input"
) -> dict[str, np.ndarray]:
    """Match user arrays to graph inputs by name or position; check shape and dtype."""
    feeds = _by_name(graph, feeds, source)
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
    graph.check_allocatable()  # every activation, before the first is allocated
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


def run_batch(
    graph: Graph,
    feeds: Mapping[str, np.ndarray] | Sequence[np.ndarray],
    tensors: Sequence[str] | None = None,
    batch_size: int = 16,
    source: str = "input",
) -> dict[str, np.ndarray]:
    """Run N samples through `graph` in one call: every input holds N samples stacked on axis 0
    (each sample shaped as the graph's input with batch 1, or N whole inputs of the graph's
    batch). The graph is re-batched to `batch_size` and fed in chunks (the last one padded);
    where it cannot be re-batched (a reshape that fixes the batch) the samples run one by one.
    Returns the graph outputs, or the named `tensors`, stacked the same way (N, ...)."""
    from accelsim.model.batch import with_batch

    feeds = _by_name(graph, feeds, source)
    arrays: dict[str, np.ndarray] = {}
    per = graph.tensors[graph.inputs[0]].shape[0]
    for name in graph.inputs:
        if name not in feeds:
            raise ShapeError(f"{source}: missing model input '{name}'")
        shape = graph.tensors[name].shape
        a = np.asarray(feeds[name])
        if a.ndim != len(shape) or tuple(a.shape[1:]) != tuple(shape[1:]) or len(a) % per:
            raise ShapeError(
                f"{source}: input '{name}' of model '{graph.name}' expects N samples of shape "
                f"{[per, *shape[1:]]} stacked on axis 0, found {list(a.shape)}"
            )
        arrays[name] = a
    sizes = {len(a) for a in arrays.values()}
    if len(sizes) != 1:
        raise ShapeError(f"{source}: inputs hold different numbers of samples {sorted(sizes)}")
    n = sizes.pop()
    if n == 0:
        raise ShapeError(f"{source}: no samples")
    wanted = list(tensors) if tensors is not None else list(graph.outputs)
    for t in wanted:
        if t not in graph.tensors:
            raise ShapeError(f"{source}: model '{graph.name}' has no tensor '{t}'")
    bs = max(per, min(int(batch_size), n) // per * per)
    try:
        gb = with_batch(graph, bs) if bs != per else graph
        ok = all(gb.tensors[t].shape[0] == graph.tensors[t].shape[0] // per * bs for t in wanted)
    except AccelsimError:
        ok = False
    if not ok:  # a graph that fixes its batch: sample by sample
        gb, bs = graph, per
    chunks: dict[str, list[np.ndarray]] = {t: [] for t in wanted}
    for i in range(0, n, bs):
        feed = {}
        for name, a in arrays.items():
            part = a[i : i + bs]
            if len(part) < bs:
                pad = np.zeros((bs - len(part),) + part.shape[1:], part.dtype)
                part = np.concatenate([part, pad])
            feed[name] = part
        k = min(bs, n - i)
        values = run(gb, feed, keep=tensors is not None, source=source)
        for t in wanted:
            v = values[t]
            rows = v.shape[0] // bs * k  # leading rows that belong to real samples
            chunks[t].append(v[:rows])
    return {t: np.concatenate(c) for t, c in chunks.items()}
