"""The accelerator back end (kind `accelerator`): TVM-scheduled programs for the accelerator's
ISA, run and timed by its instruction-level simulator (`accelsim.accel.sim`, fidelity
`codegen`, labelled "accel-sim"), or costed from shapes and recipes (`accelsim.accel.analytic`).

compile writes, per accelerated layer, `DIR/<layer>.asm` (the program's text form:
`Program.text()`, parsed back by `Program.parse`) and `DIR/<layer>.bin` (the encoded instruction
stream, `Program.encode()`; its buffer map is in the text form), and `DIR/kernels.json`.
Layers with the same structural key (operator signature, MAC mode, the code-shaping accelerator
parameters and the recipe) are scheduled through TVM once; their programs are generated from
the shared template. Layers the accelerator does not run are listed with the reason (they run on
the host core, or are views).

verify executes each layer's program in the simulator on the reference executor's inputs and
counts the output elements that differ from the reference's tensor.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from accelsim.accel import isa
from accelsim.accel.arch import AccelConfig, load_config
from accelsim.accel.schedule import AccelRecipe, TileChoice
from accelsim.accel.sim import _VIEWS, CompiledLayer, compile_graph, compile_stats, verify_layers
from accelsim.backends.base import Backend, CompileSummary, Fidelity, Progress
from accelsim.core.cost import LayerCost
from accelsim.core.fsutil import atomic_write_bytes, atomic_write_text
from accelsim.core.precision import Precision
from accelsim.core.target import Target
from accelsim.core.version import __version__
from accelsim.kernels.verify import LayerCheck
from accelsim.model.graph import Graph


def _recipe_dict(r: AccelRecipe) -> dict:
    return {
        "path": r.path,
        "op_class": r.op_class,
        "precision": r.precision,
        "tensorize": r.tensorize,
        "tile": dict(r.tile),
        "dataflows": [
            {"name": d.name, "order": list(d.order), "inner": list(d.inner), "stage": dict(d.stage)}
            for d in r.dataflows
        ],
        "double_buffer": r.double_buffer,
    }


def _tiles_dict(c: TileChoice) -> dict:
    return {
        "dataflow": c.dataflow.name,
        "order": list(c.dataflow.order),
        "tiles": dict(c.tiles),
        "tile_loop_iterations": c.tiles_count,
        "estimated_dram_bytes": c.traffic_bytes,
        "slots": c.slots,
        "epilogue_loop": c.epilogue_loop,
        "reduce_loop": c.reduce_loop,
    }


def instruction_counts(program: isa.Program) -> dict[str, Any]:
    """Instructions per queue (SIGNAL / WAIT count on the queue that executes them) and per
    opcode."""
    by_queue = {q: 0 for q in isa.QUEUES}
    by_opcode: dict[str, int] = {}
    for ins in program.instructions:
        by_queue[ins.queue] = by_queue.get(ins.queue, 0) + 1
        by_opcode[ins.OPCODE] = by_opcode.get(ins.OPCODE, 0) + 1
    return {"total": len(program), "by_queue": by_queue, "by_opcode": by_opcode}


def _scratchpad_use(program: isa.Program, config: AccelConfig) -> dict:
    out: dict[str, dict[str, Any]] = {
        name: {"used_bytes": 0, "capacity_bytes": sp.size_bytes, "buffers": []}
        for name, sp in config.scratchpads.items()
    }
    for b in program.buffers.values():
        d = out[b.space]
        d["used_bytes"] += b.bytes
        d["buffers"].append(
            {
                "name": b.name,
                "elements": b.elements,
                "bits": b.bits,
                "slots": b.slots,
                "bytes": b.bytes,
            }
        )
    return out


def _record(
    layer: CompiledLayer, config: AccelConfig, target: Target, asm: Path, binary: Path
) -> dict:
    p, ld, choice = layer.program, layer.ld, layer.choice
    assert p is not None and ld is not None and choice is not None  # only accelerated layers
    return {
        "layer": layer.node.name,
        "op": layer.node.op,
        "op_class": ld.op_class,
        "precision": p.precision,
        "mac_mode": ld.mode or None,
        "target": target.name,
        "program": str(asm),
        "binary": str(binary),
        "key": hashlib.sha256(layer.key.encode()).hexdigest()[:16],
        "macs": p.macs,
        "instructions": instruction_counts(p),
        "tiles": _tiles_dict(choice),
        "scratchpad": _scratchpad_use(p, config),
        "dram": {
            t.name: {"shape": list(t.shape), "bits": t.bits, "role": t.role}
            for t in p.dram.values()
        },
        "recipe": _recipe_dict(layer.recipe) if layer.recipe else None,
        "signature": ld.signature,
    }


def _file_stem(name: str, used: set[str]) -> str:
    from accelsim.core.fsutil import safe_name

    base = safe_name(name, "layer")
    stem, i = base, 1
    while stem in used:
        i += 1
        stem = f"{base}_{i}"
    used.add(stem)
    return stem


def compile_model(
    graph: Graph, target: Target, precision: Precision, out_dir: Path, progress: Progress = None
) -> CompileSummary:
    config = load_config(target)
    layers = compile_graph(graph, config, progress=progress)
    out_dir.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    records = []
    for layer in layers:
        if layer.program is None:
            continue
        stem = _file_stem(layer.node.name, used)
        asm, binary = out_dir / f"{stem}.asm", out_dir / f"{stem}.bin"
        atomic_write_text(asm, layer.program.text())
        atomic_write_bytes(binary, layer.program.encode())
        records.append(_record(layer, config, target, asm, binary))
    accelerated = [L for L in layers if L.program is not None]
    distinct = len({L.key for L in accelerated})
    doc = {
        "model": graph.name,
        "target": target.name,
        "precision": precision.name,
        "accelsim_version": __version__,
        "distinct_kernels": distinct,
        "kernels": records,
        "views": [
            {"layer": L.node.name, "op": L.node.op, "reason": L.reason}
            for L in layers
            if L.program is None and L.node.op in _VIEWS
        ],
        "host_layers": [
            {"layer": L.node.name, "op": L.node.op, "reason": L.reason}
            for L in layers
            if L.program is None and L.node.op not in _VIEWS
        ],
    }
    atomic_write_text(out_dir / "kernels.json", json.dumps(doc, indent=1, default=str) + "\n")
    return CompileSummary(len(accelerated), distinct, compile_stats())


def verify_model(
    graph: Graph,
    target: Target,
    precision: Precision,
    feeds: Mapping[str, np.ndarray],
    progress: Progress = None,
) -> list[LayerCheck]:
    checks = verify_layers(graph, load_config(target), feeds, progress=progress)
    return [LayerCheck(m.layer, graph.node(m.layer).op, m.mismatches, m.elements) for m in checks]


# The accelerator's models read each layer's precision from its tensors (MAC modes) and the
# graph's (`accelsim.model.quantization`); `precision` was checked against the target already.
def _accel_sim(graph: Graph, target: Target, precision: Precision) -> list[LayerCost]:
    # the accelerator's own instruction-level simulator times the program TVM generated
    from accelsim.accel.sim import simulate_graph

    return simulate_graph(graph, load_config(target))  # the graph's tensors carry the precision


def _analytic(graph: Graph, target: Target, precision: Precision) -> list[LayerCost]:
    from accelsim.accel.analytic import simulate_graph

    return simulate_graph(graph, load_config(target))  # the graph's tensors carry the precision


def _space(target: Target) -> Any:
    from accelsim.accel.space import AccelSpace

    return AccelSpace(target)


# The instruction-level simulator is the default: the accelerator's programs compile in seconds.
ACCELERATOR = Backend(
    ("accelerator",),
    compile_model,
    verify_model,
    {"codegen": Fidelity("accel-sim", _accel_sim), "analytic": Fidelity("analytic", _analytic)},
    "codegen",
    space=_space,
)
