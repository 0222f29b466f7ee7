"""Reading model inputs from .npy/.npz files and writing outputs, for `accelsim run`."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from accelsim.core.errors import InputError
from accelsim.core.fsutil import atomic_write_bytes, check_finite, read_numpy
from accelsim.core.qparams import NUMPY_DTYPE, dtype_range
from accelsim.model.graph import Graph


def load_inputs(path: str, graph: Graph) -> dict[str, np.ndarray]:
    """Arrays for the graph's inputs: a .npy for a one-input model, or a .npz keyed by input
    name or by position (in0, in1, ...)."""
    data = read_numpy(path, str(path), InputError)
    if isinstance(data, np.ndarray):
        if len(graph.inputs) != 1:
            raise InputError(
                f"{path}: model '{graph.name}' has {len(graph.inputs)} inputs "
                f"({', '.join(graph.inputs)}); give them in an .npz"
            )
        check_finite(data, f"{path}: input '{graph.inputs[0]}'", InputError)
        return {graph.inputs[0]: data}
    feeds = {}
    for i, name in enumerate(graph.inputs):
        for key in (name, f"in{i}"):
            if key in data:
                check_finite(data[key], f"{path}: input '{name}' (key '{key}')", InputError)
                feeds[name] = data[key]
                break
        else:
            raise InputError(
                f"{path}: no array for model input '{name}' (keys tried: "
                f"'{name}', 'in{i}'; found: {', '.join(data) or 'none'})"
            )
    return feeds


def random_input(graph: Graph, name: str, rng: np.random.Generator) -> np.ndarray:
    """One seeded random input: N(0, 1) for a float input; for an integer input that indexes
    a gather (token ids), uniform over the rows it indexes; else uniform over the range."""
    info = graph.tensors[name]
    dtype = NUMPY_DTYPE[info.dtype]
    if info.is_float:
        return rng.standard_normal(info.shape).astype(dtype)
    lo, hi = dtype_range(info.dtype)
    rows = _gathered_rows(graph, name)
    if rows:
        lo, hi = 0, min(rows) - 1
    return rng.integers(lo, hi + 1, info.shape).astype(dtype)


# ops an index passes through on its way to a gather (Keras' embedding wraps negative ids with
# `where(ids < 0, ids + vocab, ids)`; exporters cast and reshape them: the importers read
# Unsqueeze as a reshape)
_INDEX_PATH = {"add", "sub", "where", "cast", "reshape", "flatten", "squeeze", "transpose",
               "slice", "concat"}  # fmt: skip


def _gathered_rows(graph: Graph, name: str, depth: int = 4) -> list[int]:
    """Row counts of the gathers that index with `name`, directly or through `_INDEX_PATH`."""
    rows: list[int] = []
    todo, seen = [(name, 0)], {name}
    while todo:
        t, d = todo.pop()
        for n in graph.consumers(t):
            if n.op == "gather" and n.inputs[1] == t:
                rows.append(graph.tensors[n.inputs[0]].shape[n.attr("axis", 0)])
            elif n.op in _INDEX_PATH and d < depth:
                for o in n.outputs:
                    if o not in seen:
                        seen.add(o)
                        todo.append((o, d + 1))
    return rows


def random_inputs(graph: Graph, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded random inputs, one `random_input` per graph input."""
    graph.check_allocatable(graph.inputs)
    rng = np.random.default_rng(seed)
    return {name: random_input(graph, name, rng) for name in graph.inputs}


def dequantize_output(graph: Graph, name: str, arr: np.ndarray) -> np.ndarray:
    info = graph.tensors[name]
    if info.is_float or info.quant is None:
        return arr
    q = info.quant
    shape = q.broadcast_shape(arr.ndim)
    return (
        q.scales().reshape(shape) * (arr.astype(np.float64) - q.zero_points().reshape(shape))
    ).astype(np.float32)


def check_output_path(path: str) -> None:
    if Path(path).suffix.lower() not in (".npy", ".npz"):
        raise InputError(f"--output {path}: expected a .npy or .npz file name")


def save_outputs(
    path: str, graph: Graph, outputs: dict[str, np.ndarray], dequantize: bool = False
) -> dict[str, np.ndarray]:
    """Write outputs to Y.npy (one output) or Y.npz (out0, out1, ...), atomically."""
    arrays = [outputs[t] for t in graph.outputs]
    if dequantize:
        arrays = [dequantize_output(graph, t, a) for t, a in zip(graph.outputs, arrays)]
    suffix = Path(path).suffix.lower()
    buf = io.BytesIO()
    if suffix == ".npy":
        if len(arrays) != 1:
            raise InputError(
                f"{path}: model '{graph.name}' has {len(arrays)} outputs; "
                f"write them to an .npz file"
            )
        np.save(buf, arrays[0])
        written = {"out0": arrays[0]}
    elif suffix == ".npz":
        written = {f"out{i}": a for i, a in enumerate(arrays)}
        np.savez(buf, **written)
    else:
        raise InputError(f"--output {path}: expected a .npy or .npz file name")
    atomic_write_bytes(path, buf.getvalue())
    return written
