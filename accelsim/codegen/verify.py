"""Run every generated kernel of a graph on its target and compare it, element by element, with
the reference executor's tensor for that layer (inputs are the reference executor's values).

Where a kernel runs is the target's `codegen.emulator.kind`: this machine through the TVM
runtime ("native"), qemu-aarch64, or qemu-hexagon; the table below maps each to a runner, which
takes every (layer, kernel) of the graph at once (the qemu runners run them in one process).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

from accelsim.errors import AccelsimError
from accelsim.model.graph import Graph
from accelsim.target import Target


@dataclass(frozen=True)
class LayerCheck:
    name: str
    op: str
    mismatches: int
    elements: int


def _native(items, values, target) -> list[np.ndarray]:
    from accelsim.codegen import host
    return [host.run_layer(layer, kernel, values) for layer, kernel in items]


# inputs packed for one emulated process at most (a whole model at 32x32 is far below)
_BATCH_BYTES = 64 << 20


def _qemu(arch: str):
    def run(items, values, target) -> list[np.ndarray]:
        """All layers in as few qemu processes as the batch size allows (emulate.run_batch):
        building the harness and starting qemu once per layer cost more than the kernels."""
        from accelsim.codegen import emulate
        got: list[np.ndarray] = []
        batch: list[tuple] = []
        size = 0

        def flush():
            calls = [emulate.KernelCall(k.obj_path, k.symbol, tuple(k.args), data,
                                        (k.args[-1].name,)) for _, k, data in batch]
            outs = emulate.run_batch(arch, calls, cpu=target.codegen.emulator.cpu)
            got.extend(layer.unpack_output(o[k.args[-1].name])
                       for (layer, k, _), o in zip(batch, outs))
            batch.clear()

        for layer, kernel in items:
            data = layer.pack_inputs(values)
            nbytes = sum(np.asarray(v).nbytes for v in data.values())
            if batch and size + nbytes > _BATCH_BYTES:
                flush()
                size = 0
            batch.append((layer, kernel, data))
            size += nbytes
        if batch:
            flush()
        return got
    return run


RUNNERS: dict[str, Callable] = {
    "native": _native,
    "qemu-aarch64": _qemu("aarch64"),
    "qemu-hexagon": _qemu("hexagon"),
}


def verify_graph(graph: Graph, target: Target, precision: str, feeds,
                 rtol: float = 1e-5, progress: Callable[[int], None] | None = None
                 ) -> list[LayerCheck]:
    """Per-layer mismatch counts (integers exact; float within `rtol` of max|ref|)."""
    from accelsim.codegen.compile import compile_layer
    from accelsim.lower.lower import lower_graph
    from accelsim.ref.executor import run as ref_run
    kind = target.codegen.emulator.kind
    if kind not in RUNNERS:
        raise AccelsimError(f"target '{target.name}' ({target.path}): kernels for emulator "
                            f"'{kind}' are verified by their own simulator, not here")
    runner = RUNNERS[kind]
    values = ref_run(graph, feeds, keep=True)
    items = []
    layers = lower_graph(graph, target, precision)
    for i, layer in enumerate(layers):
        if layer.status == "kernel":
            items.append((layer, compile_layer(layer, target)))
        if progress:
            progress(i + 1)
    out = []
    for (layer, _), got in zip(items, runner(items, values, target)):
        ref = values[layer.output]
        if ref.dtype.kind == "f":
            atol = rtol * max(1.0, float(np.abs(ref).max()))
            bad = int((~np.isclose(got, ref, rtol=rtol, atol=atol)).sum())
        else:
            bad = int((got.astype(np.int64) != ref.astype(np.int64)).sum())
        out.append(LayerCheck(layer.name, graph.node(layer.name).op, bad, int(ref.size)))
    return out


def summary(checks: list[LayerCheck]) -> Mapping:
    return {"mismatches": sum(c.mismatches for c in checks),
            "elements": sum(c.elements for c in checks),
            "layers": [{"name": c.name, "op": c.op, "mismatches": c.mismatches,
                        "elements": c.elements} for c in checks]}
