"""Run every generated kernel of a graph on its target and compare it, element by element, with
the reference executor's tensor for that layer (inputs are the reference executor's values).

Where a kernel runs is the target's `codegen.emulator.kind`: this machine through the TVM
runtime ("native"), qemu-aarch64, or qemu-hexagon; the table below maps each to a runner.
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


def _native(layer, kernel, values, target) -> np.ndarray:
    from accelsim.codegen import host
    return host.run_layer(layer, kernel, values)


def _qemu(runner_name: str):
    def run(layer, kernel, values, target) -> np.ndarray:
        from accelsim.codegen import emulate
        runner = getattr(emulate, runner_name)
        out = kernel.args[-1].name
        r = runner(kernel.obj_path, kernel.symbol, list(kernel.args), layer.pack_inputs(values),
                   [out], cpu=target.codegen.emulator.cpu)
        return layer.unpack_output(r.outputs[out])
    return run


RUNNERS: dict[str, Callable] = {
    "native": _native,
    "qemu-aarch64": _qemu("run_aarch64"),
    "qemu-hexagon": _qemu("run_hexagon"),
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
    out = []
    layers = lower_graph(graph, target, precision)
    for i, layer in enumerate(layers):
        if layer.status == "kernel":
            kernel = compile_layer(layer, target)
            got = runner(layer, kernel, values, target)
            ref = values[layer.output]
            if ref.dtype.kind == "f":
                atol = rtol * max(1.0, float(np.abs(ref).max()))
                bad = int((~np.isclose(got, ref, rtol=rtol, atol=atol)).sum())
            else:
                bad = int((got.astype(np.int64) != ref.astype(np.int64)).sum())
            out.append(LayerCheck(layer.name, graph.node(layer.name).op, bad, int(ref.size)))
        if progress:
            progress(i + 1)
    return out


def summary(checks: list[LayerCheck]) -> Mapping:
    return {"mismatches": sum(c.mismatches for c in checks),
            "elements": sum(c.elements for c in checks),
            "layers": [{"name": c.name, "op": c.op, "mismatches": c.mismatches,
                        "elements": c.elements} for c in checks]}
