"""Which simulator costs a target: a table from target kind to simulator, so callers (CLI,
reports, sweeps) never branch on the kind themselves."""

from __future__ import annotations

from typing import Callable

from accelsim.model.graph import Graph
from accelsim.quant.precision import Precision
from accelsim.sim.cost import LayerCost
from accelsim.target import Target


def _analytic(graph: Graph, target: Target, precision: Precision) -> list[LayerCost]:
    from accelsim.sim.analytic import simulate_graph
    return simulate_graph(graph, target, precision)


def _accelerator(graph: Graph, target: Target, precision: Precision) -> list[LayerCost]:
    # the accelerator's own instruction-level simulator times the program TVM generated
    from accelsim.accel.sim import load_config, simulate_graph
    return simulate_graph(graph, load_config(target))


SIMULATORS: dict[str, tuple[str, Callable[[Graph, Target, Precision], list[LayerCost]]]] = {
    "cpu-simd": ("analytic", _analytic),
    "vliw-dsp": ("analytic", _analytic),
    "host": ("analytic", _analytic),
    "accelerator": ("accel-sim", _accelerator),
}


def fidelity_of(target: Target) -> str:
    return SIMULATORS[target.kind][0]


def simulate(graph: Graph, target: Target, precision: Precision) -> list[LayerCost]:
    """Per-node costs of `graph` (already quantized at `precision`) on `target`."""
    target.check_precision(precision)
    return SIMULATORS[target.kind][1](graph, target, precision)
