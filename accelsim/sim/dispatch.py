"""Which simulator costs a target at which fidelity: a table from target kind and fidelity to
simulator, so callers (CLI, reports, sweeps) never branch on the kind themselves.

Two fidelities for every kind:
- `codegen`: cycles from the code TVM generated (CPU / DSP: the kernels' assembly, loop trip
  counts and the per-core pipe model, `accelsim.sim.codegen`; accelerator: its
  instruction-level simulator running the generated program, labelled `accel-sim`);
- `analytic`: the same cost formulas from operator shapes and the schedule recipe alone, no
  compilation (`accelsim.sim.analytic`, `accelsim.accel.analytic`), fast enough for sweeps.
"""

from __future__ import annotations

from collections.abc import Callable

from accelsim.errors import InputError
from accelsim.model.graph import Graph
from accelsim.quant.precision import Precision
from accelsim.sim.cost import LayerCost
from accelsim.target import Target

Simulator = Callable[[Graph, Target, Precision], list[LayerCost]]


def _analytic(graph: Graph, target: Target, precision: Precision) -> list[LayerCost]:
    from accelsim.sim.analytic import simulate_graph

    return simulate_graph(graph, target, precision)


def _codegen(graph: Graph, target: Target, precision: Precision) -> list[LayerCost]:
    from accelsim.sim.codegen import simulate_graph

    return simulate_graph(graph, target, precision)


def _accelerator(graph: Graph, target: Target, precision: Precision) -> list[LayerCost]:
    # the accelerator's own instruction-level simulator times the program TVM generated
    from accelsim.accel.sim import load_config, simulate_graph

    return simulate_graph(graph, load_config(target))


def _accelerator_analytic(graph: Graph, target: Target, precision: Precision) -> list[LayerCost]:
    from accelsim.accel.analytic import simulate_graph
    from accelsim.accel.arch import load_config

    return simulate_graph(graph, load_config(target))


_CPU: dict[str, tuple[str, Simulator]] = {
    "analytic": ("analytic", _analytic),
    "codegen": ("codegen", _codegen),
}
# kind -> fidelity -> (label written into results, simulator)
SIMULATORS: dict[str, dict[str, tuple[str, Simulator]]] = {
    "cpu-simd": _CPU,
    "vliw-dsp": _CPU,
    "host": _CPU,
    "accelerator": {
        "codegen": ("accel-sim", _accelerator),
        "analytic": ("analytic", _accelerator_analytic),
    },
}
# What runs when no fidelity is asked for: the analytic model on CPUs and DSPs (no compilation),
# the instruction-level simulator on accelerators (its programs compile in seconds).
DEFAULT_FIDELITY = {
    "cpu-simd": "analytic",
    "vliw-dsp": "analytic",
    "host": "analytic",
    "accelerator": "codegen",
}
FIDELITIES = ("codegen", "analytic")


def _entry(target: Target, fidelity: str | None) -> tuple[str, Simulator]:
    fid = fidelity or DEFAULT_FIDELITY[target.kind]
    table = SIMULATORS[target.kind]
    if fid not in table:
        raise InputError(
            f"--fidelity {fid}: expected one of {', '.join(sorted(table))} for "
            f"{target.kind} target {target.name}"
        )
    return table[fid]


def fidelity_of(target: Target, fidelity: str | None = None) -> str:
    """The label results carry: 'analytic', 'codegen' or 'accel-sim'."""
    return _entry(target, fidelity)[0]


def simulate(
    graph: Graph, target: Target, precision: Precision, fidelity: str | None = None
) -> list[LayerCost]:
    """Per-node costs of `graph` (already quantized at `precision`) on `target`."""
    target.check_precision(precision)
    return _entry(target, fidelity)[1](graph, target, precision)
