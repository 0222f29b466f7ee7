"""What a back end is: the operations every target kind plugs in the same way.

A `Backend` compiles a quantized graph for a target, verifies the generated code against the
reference executor, costs the graph at each fidelity it offers, and (where the target is this
machine) measures it. `accelsim.backends` holds one per target kind.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from accelsim.core.cost import LayerCost
from accelsim.core.precision import Precision
from accelsim.core.target import Target
from accelsim.kernels.verify import LayerCheck
from accelsim.model.graph import Graph

Progress = Callable[[int], None] | None


@dataclass(frozen=True)
class CompileSummary:
    """What a compile wrote: layers with generated code, how many distinct after
    deduplication, and the compile cache's counters."""

    kernels: int
    distinct: int
    cache: Mapping[str, int]


Compiler = Callable[[Graph, Target, Precision, Path, Progress], CompileSummary]
Verifier = Callable[
    [Graph, Target, Precision, Mapping[str, np.ndarray], Progress], list[LayerCheck]
]
Simulator = Callable[[Graph, Target, Precision], list[LayerCost]]


@dataclass(frozen=True)
class Fidelity:
    """One way of costing a graph: `label` is what results say produced them ("analytic",
    "codegen", "accel-sim"), `simulate` the model."""

    label: str
    simulate: Simulator


@dataclass(frozen=True)
class Backend:
    """The operations of one target kind. `fidelities` maps the user's name of a fidelity
    (`codegen`, `analytic`) to the model; `default_fidelity` runs when none is asked for."""

    kinds: tuple[str, ...]
    compile: Compiler
    verify: Verifier
    fidelities: Mapping[str, Fidelity]
    default_fidelity: str
    measure: Callable | None = field(default=None)  # only where the target is this machine
    # the design space of a target of this kind for `accelsim.dse.sweep` (analytic fidelity):
    # called with the base target; its object checks grid keys and values and evaluates arrays
    # of design points (`accelsim.accel.space.AccelSpace`, `accelsim.sim.space.CoreSpace`)
    space: Callable[[Target], Any] | None = field(default=None)
