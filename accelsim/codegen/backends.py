"""Which back end compiles and verifies a target's code: a table keyed by target kind, so the CLI
never branches on the kind (as `accelsim.sim.dispatch` does for simulators).

- CPU / DSP kinds: TVM kernels compiled to `.s` / `.o` (`accelsim.codegen.compile`), run on the
  target through the TVM runtime or qemu (`accelsim.codegen.verify`);
- accelerator: TVM-scheduled programs for the accelerator ISA written as `.asm` / `.bin`, run in
  its instruction-level simulator (`accelsim.accel.cli_backend`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from accelsim.codegen.verify import LayerCheck
from accelsim.errors import InputError
from accelsim.model.graph import Graph
from accelsim.quant.precision import Precision
from accelsim.target import Target

Progress = Callable[[int], None] | None


@dataclass(frozen=True)
class CompileSummary:
    """What `compile_model` wrote: layers with generated code, how many distinct after
    deduplication, and the compile cache's counters."""

    kernels: int
    distinct: int
    cache: Mapping[str, int]


Compiler = Callable[[Graph, Target, Precision, Path, Progress], CompileSummary]
Verifier = Callable[[Graph, Target, Precision, Sequence[np.ndarray], Progress], list[LayerCheck]]


def _cpu_compile(
    graph: Graph, target: Target, precision: Precision, out_dir: Path, progress: Progress = None
) -> CompileSummary:
    from accelsim.codegen.compile import cache_stats, compile_graph

    kernels = compile_graph(graph, target, precision, out_dir=out_dir, progress=progress)
    return CompileSummary(len(kernels), len({k.symbol for k in kernels}), cache_stats())


def _cpu_verify(
    graph: Graph, target: Target, precision: Precision, feeds, progress: Progress = None
) -> list[LayerCheck]:
    from accelsim.codegen.verify import verify_graph

    return verify_graph(graph, target, precision.name, feeds, progress=progress)


def _accel_compile(
    graph: Graph, target: Target, precision: Precision, out_dir: Path, progress: Progress = None
) -> CompileSummary:
    from accelsim.accel.cli_backend import compile_model

    return compile_model(graph, target, precision, out_dir, progress)


def _accel_verify(
    graph: Graph, target: Target, precision: Precision, feeds, progress: Progress = None
) -> list[LayerCheck]:
    from accelsim.accel.cli_backend import verify_model

    return verify_model(graph, target, precision, feeds, progress)


# target kind -> (compiler, verifier)
BACKENDS: dict[str, tuple[Compiler, Verifier]] = {
    "cpu-simd": (_cpu_compile, _cpu_verify),
    "vliw-dsp": (_cpu_compile, _cpu_verify),
    "host": (_cpu_compile, _cpu_verify),
    "accelerator": (_accel_compile, _accel_verify),
}


def _backend(target: Target) -> tuple[Compiler, Verifier]:
    if target.kind not in BACKENDS:
        raise InputError(
            f"target '{target.name}' ({target.path}): kind '{target.kind}' has no "
            f"code generator (expected one of {', '.join(BACKENDS)})"
        )
    return BACKENDS[target.kind]


def compile_model(
    graph: Graph,
    target: Target,
    precision: Precision,
    out_dir: str | Path,
    progress: Progress = None,
) -> CompileSummary:
    """Compile every layer of `graph` (quantized at `precision`) for `target` into `out_dir`
    (per-layer code files and `kernels.json`)."""
    return _backend(target)[0](graph, target, precision, Path(out_dir), progress)


def verify_model(
    graph: Graph, target: Target, precision: Precision, feeds, progress: Progress = None
) -> list[LayerCheck]:
    """Per-layer mismatch counts of the generated code run on `target` (or its simulator)
    against the reference executor, on the reference executor's inputs for `feeds`."""
    return _backend(target)[1](graph, target, precision, feeds, progress)
