"""The configurable 4/8/16-bit SIMD accelerator: architecture (`arch`), instruction set (`isa`),
TVM computes and schedules (`compute`, `schedule`, recipes in `schedules/accelerator.yaml`), the
TIR-to-program back end (`codegen`) and the instruction-level simulator (`sim`).

```python
from accelsim.accel import load_config, simulate_graph, verify_graph, totals
cfg = load_config("simd-accel").with_params(lanes=128)
costs = simulate_graph(quantized_graph, cfg)          # list[LayerCost], timing only
print(totals(costs)["latency_s"])
print(verify_graph(quantized_graph, cfg, feeds))      # {layer: mismatching elements}
```

Documentation: docs/accel-isa.md.
"""

from accelsim.accel.arch import (
    SWEEP_PARAMS,
    AccelConfig,
    AccelConfigError,
    config_from_target,
    load_config,
)
from accelsim.accel.isa import Program
from accelsim.accel.sim import (
    CompiledLayer,
    ProgramResult,
    compile_graph,
    run_program,
    simulate_graph,
    verify_graph,
    verify_layers,
)
from accelsim.core.cost import totals  # whole-graph sums, one home for every target kind

__all__ = [
    "AccelConfig",
    "AccelConfigError",
    "SWEEP_PARAMS",
    "config_from_target",
    "load_config",
    "Program",
    "CompiledLayer",
    "ProgramResult",
    "compile_graph",
    "run_program",
    "simulate_graph",
    "totals",
    "verify_graph",
    "verify_layers",
]
