"""The CPU / DSP back end (kinds `cpu-simd`, `vliw-dsp`, `host`): TVM kernels compiled to
`.s` / `.o` (`accelsim.kernels.compile`), run on the target through the TVM runtime or qemu
(`accelsim.kernels.verify`), costed from their generated code (`accelsim.sim.kernel_cost`) or
from shapes and recipes (`accelsim.sim.analytic`), and, on this machine, timed
(`accelsim.sim.measure`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from accelsim.backends.base import Backend, CompileSummary, Fidelity, Progress
from accelsim.core.cost import LayerCost
from accelsim.core.precision import Precision
from accelsim.core.target import Target
from accelsim.kernels.verify import LayerCheck
from accelsim.model.graph import Graph


def compile_model(
    graph: Graph, target: Target, precision: Precision, out_dir: Path, progress: Progress = None
) -> CompileSummary:
    from accelsim.kernels.compile import cache_stats, compile_graph

    kernels = compile_graph(graph, target, precision, out_dir=out_dir, progress=progress)
    return CompileSummary(len(kernels), len({k.symbol for k in kernels}), cache_stats())


def verify_model(
    graph: Graph,
    target: Target,
    precision: Precision,
    feeds: Mapping[str, np.ndarray],
    progress: Progress = None,
) -> list[LayerCheck]:
    from accelsim.kernels.verify import verify_graph

    return verify_graph(graph, target, precision, feeds, progress=progress)


def _analytic(graph: Graph, target: Target, precision: Precision) -> list[LayerCost]:
    from accelsim.sim.analytic import simulate_graph

    return simulate_graph(graph, target, precision)


def _codegen(graph: Graph, target: Target, precision: Precision) -> list[LayerCost]:
    from accelsim.sim.kernel_cost import simulate_graph

    return simulate_graph(graph, target, precision)


def _measure(*args: Any, **kwargs: Any) -> Any:
    from accelsim.sim.measure import measure_graph

    return measure_graph(*args, **kwargs)


_FIDELITIES = {
    "codegen": Fidelity("codegen", _codegen),
    "analytic": Fidelity("analytic", _analytic),
}


# The analytic model is the default on CPUs and DSPs: it needs no compilation.
def _space(target: Target) -> Any:
    from accelsim.sim.space import CoreSpace

    return CoreSpace(target)


CPU_DSP = Backend(
    ("cpu-simd", "vliw-dsp"),
    compile_model,
    verify_model,
    _FIDELITIES,
    "analytic",
    space=_space,
)
HOST = Backend(("host",), compile_model, verify_model, _FIDELITIES, "analytic", _measure, _space)
