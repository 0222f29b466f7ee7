"""One back end per target kind, above every stage: compile, verify, simulate (per fidelity) and
measure a quantized graph on a target. Callers (the API, the CLI, reports, sweeps) never branch
on the target kind; a new kind plugs in here.

Two fidelities for every kind:
- `codegen`: cycles from the code TVM generated (CPU / DSP: the kernels' assembly, loop trip
  counts and the per-core pipe model, `accelsim.sim.kernel_cost`; accelerator: its
  instruction-level simulator running the generated program, labelled `accel-sim`);
- `analytic`: the same cost formulas from operator shapes and the schedule recipe alone, no
  compilation (`accelsim.sim.analytic`, `accelsim.accel.analytic`), fast enough for sweeps.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from accelsim.backends.accelerator import ACCELERATOR
from accelsim.backends.base import Backend, CompileSummary, Fidelity, Progress
from accelsim.backends.cpu import CPU_DSP, HOST
from accelsim.core import coverage as cov
from accelsim.core.cost import LayerCost
from accelsim.core.errors import InputError
from accelsim.core.fsutil import atomic_write_text
from accelsim.core.precision import Precision
from accelsim.core.target import Target
from accelsim.kernels.verify import LayerCheck
from accelsim.model.graph import Graph

BACKENDS: dict[str, Backend] = {k: b for b in (CPU_DSP, HOST, ACCELERATOR) for k in b.kinds}
FIDELITIES = ("codegen", "analytic")


def backend_for(target: Target) -> Backend:
    if target.kind not in BACKENDS:
        raise InputError(
            f"target '{target.name}' ({target.path}): kind '{target.kind}' has no back end "
            f"(expected one of {', '.join(BACKENDS)})"
        )
    return BACKENDS[target.kind]


def _fidelity(target: Target, fidelity: str | None) -> Fidelity:
    b = backend_for(target)
    name = fidelity or b.default_fidelity
    if name not in b.fidelities:
        raise InputError(
            f"--fidelity {name}: expected one of {', '.join(sorted(b.fidelities))} for "
            f"{target.kind} target {target.name}"
        )
    return b.fidelities[name]


def fidelity_of(target: Target, fidelity: str | None = None) -> str:
    """The label results carry: 'analytic', 'codegen' or 'accel-sim'."""
    return _fidelity(target, fidelity).label


def placements(graph: Graph, target: Target, precision: Precision) -> list[cov.Placement]:
    """Where each node of `graph` runs on `target`: lowered kernel, view, host fallback or
    reference only (`accelsim.core.coverage`)."""
    return backend_for(target).place(graph, target, precision)


def simulate(
    graph: Graph, target: Target, precision: Precision, fidelity: str | None = None
) -> list[LayerCost]:
    """Per-node costs of `graph` (already quantized at `precision`) on `target`, each with where
    it ran (`LayerCost.ran`)."""
    target.check_precision(precision)
    costs = _fidelity(target, fidelity).simulate(graph, target, precision)
    where = {p.layer: p.ran for p in placements(graph, target, precision)}
    return [dataclasses.replace(c, ran=where.get(c.name, c.ran)) for c in costs]


def compile_model(
    graph: Graph,
    target: Target,
    precision: Precision,
    out_dir: str | Path,
    progress: Progress = None,
) -> CompileSummary:
    """Compile every layer of `graph` (quantized at `precision`) for `target` into `out_dir`
    (per-layer code files and `kernels.json`, which also says where every layer ran and the
    coverage: `placement`, `coverage`)."""
    done = backend_for(target).compile(graph, target, precision, Path(out_dir), progress)
    index = Path(out_dir) / "kernels.json"
    doc = json.loads(index.read_text())
    places = placements(graph, target, precision)
    doc["coverage"] = cov.coverage(places).to_json()
    doc["placement"] = [p.to_json() for p in places]
    atomic_write_text(index, json.dumps(doc, indent=1, default=str) + "\n")
    return done


def verify_model(
    graph: Graph,
    target: Target,
    precision: Precision,
    feeds: Mapping[str, np.ndarray],
    progress: Progress = None,
) -> list[LayerCheck]:
    """Per-layer mismatch counts of the generated code run on `target` (or its simulator)
    against the reference executor, on the reference executor's inputs for `feeds`."""
    return backend_for(target).verify(graph, target, precision, feeds, progress)


def check_measurable(target: Target) -> None:
    """Only this machine can be measured: a target whose back end has no `measure`."""
    if backend_for(target).measure is None:
        raise InputError(
            f"--target {target.name}: measure runs kernels on this machine, so it needs a "
            f"target of kind 'host' (e.g. 'host'); found kind '{target.kind}' ({target.path}); "
            f"use `accelsim simulate` for it"
        )


def measure(
    graph: Graph,
    target: Target,
    precision: Precision,
    feeds: Mapping[str, np.ndarray],
    **options: Any,
) -> Any:
    """Time the compiled kernels on this machine (`accelsim.sim.measure.measure_graph`)."""
    check_measurable(target)
    run = backend_for(target).measure
    assert run is not None
    return run(graph, target, precision, feeds, **options)


__all__ = [
    "BACKENDS",
    "FIDELITIES",
    "Backend",
    "CompileSummary",
    "backend_for",
    "check_measurable",
    "compile_model",
    "fidelity_of",
    "measure",
    "placements",
    "simulate",
    "verify_model",
]
