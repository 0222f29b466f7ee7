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

The host core is a CPU target when the accelerator names one (`accelerator.host.target`, e.g.
cortex-a55): the layers the accelerator does not run are lowered by the CPU back end for it, as
a deployment would compile them (TVM's BYOC split: the accelerator's layers offloaded, the rest
compiled for the SoC's CPU). Those are "host kernel" layers: compile writes them under
`DIR/host/` (with that back end's own kernels.json), verify runs them under the host target's
emulator, and the coverage figures count them as lowered. What the host target does not lower
either stays "host fallback" (reference only).

verify executes each layer's program in the simulator on the reference executor's inputs and
counts the output elements that differ from the reference's tensor.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from accelsim.accel import isa
from accelsim.accel.arch import AccelConfig, load_config
from accelsim.accel.schedule import AccelRecipe, TileChoice
from accelsim.accel.sim import _VIEWS, CompiledLayer, compile_graph, compile_stats, verify_layers
from accelsim.backends.base import Backend, CompileSummary, Fidelity, Progress
from accelsim.core import coverage as cov
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


def _host_target(config: AccelConfig) -> Target | None:
    from accelsim.core.target import load_target

    return load_target(config.host.target) if config.host.target else None


def _host_kernels(
    graph: Graph, config: AccelConfig, precision: Precision, names: Iterable[str]
) -> set[str]:
    """Of the layers `names` (those the accelerator does not run), the ones its host core's
    CPU target lowers to a kernel."""
    host = _host_target(config)
    names = list(names)
    if host is None or not names:
        return set()
    from accelsim.lower import lower_status

    wanted = set(names)
    nodes = [n for n in graph.nodes if n.name in wanted]
    status = lower_status(graph, host, precision, only=wanted)  # the host layers alone
    return {n.name for n, (s, _) in zip(nodes, status) if s == "kernel"}


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
    doc: dict[str, Any] = {
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
    on_host = _host_kernels(graph, config, precision, [h["layer"] for h in doc["host_layers"]])
    host_distinct = 0
    if on_host:
        from accelsim.kernels.compile import compile_graph as compile_cpu

        host = _host_target(config)
        assert host is not None
        kernels = compile_cpu(graph, host, precision, out_dir=out_dir / "host", only=on_host)
        paths = {k.layer: k.asm_path for k in kernels}
        host_distinct = len({k.key for k in kernels})
        doc["host_target"] = host.name
        for h in doc["host_layers"]:
            h["kernel"] = paths.get(h["layer"])  # None: reference only, on the host core too
    atomic_write_text(out_dir / "kernels.json", json.dumps(doc, indent=1, default=str) + "\n")
    return CompileSummary(
        len(accelerated) + len(on_host), distinct + host_distinct, compile_stats()
    )


def verify_model(
    graph: Graph,
    target: Target,
    precision: Precision,
    feeds: Mapping[str, np.ndarray],
    progress: Progress = None,
) -> list[LayerCheck]:
    config = load_config(target)
    checks = verify_layers(graph, config, feeds, progress=progress)
    out = [LayerCheck(m.layer, graph.node(m.layer).op, m.mismatches, m.elements) for m in checks]
    ran = {c.name for c in out}
    rest = [n.name for n in graph.nodes if n.name not in ran and n.op not in _VIEWS]
    on_host = _host_kernels(graph, config, precision, rest)
    if on_host:  # the host core's kernels, run by its target's emulator
        from accelsim.kernels.verify import verify_graph

        host = _host_target(config)
        assert host is not None
        host_checks = {c.name: c for c in verify_graph(graph, host, precision, feeds, only=on_host)}
        out += [host_checks[n.name] for n in graph.nodes if n.name in host_checks]
        order = {n.name: i for i, n in enumerate(graph.nodes)}
        out.sort(key=lambda c: order[c.name])
    return out


# The accelerator's models read each layer's precision from its tensors (MAC modes) and the
# graph's (`accelsim.model.quantization`); `precision` was checked against the target already.
def _accel_sim(graph: Graph, target: Target, precision: Precision) -> list[LayerCost]:
    # the accelerator's own instruction-level simulator times the program TVM generated
    from accelsim.accel.sim import simulate_graph

    config = load_config(target)
    costs = simulate_graph(graph, config)  # the graph's tensors carry the precision
    return _host_kernel_costs(graph, config, precision, costs)


def _analytic(graph: Graph, target: Target, precision: Precision) -> list[LayerCost]:
    from accelsim.accel.analytic import simulate_graph

    config = load_config(target)
    costs = simulate_graph(graph, config)  # the graph's tensors carry the precision
    return _host_kernel_costs(graph, config, precision, costs)


def _host_kernel_costs(
    graph: Graph, config: AccelConfig, precision: Precision, costs: list[LayerCost]
) -> list[LayerCost]:
    """The host-core layers that have a kernel for the host's CPU target, costed by that
    target's analytic model (its cycles at the accelerator's `host.clock_hz`, plus the
    hand-over `host.call_overhead_cycles`; its energy model) instead of the host roofline
    (`accel.sim.host_cost`), which still costs the layers the host target does not lower."""
    names = [c.name for c in costs if c.notes.startswith("host core")]
    on_host = _host_kernels(graph, config, precision, names)
    if not on_host:
        return costs
    from accelsim.sim.analytic import memory_levels, simulate_layer

    host = _host_target(config)
    assert host is not None
    host.check_precision(precision)
    h, levels = config.host, memory_levels(host)
    cpu = {
        n.name: simulate_layer(graph, n, host, precision, levels)
        for n in graph.nodes
        if n.name in on_host
    }
    out = []
    for c in costs:
        k = cpu.get(c.name)
        if k is None:
            out.append(c)
            continue
        latency = (k.cycles + h.call_overhead_cycles) / h.clock_hz
        static = config.energy.static_power_w * latency  # the idle accelerator's leakage
        breakdown = dict(k.energy_breakdown)
        breakdown["static"] = breakdown.get("static", 0.0) + static
        out.append(
            dataclasses.replace(
                c,
                cycles=latency * config.clock_hz,
                latency_s=latency,
                energy_j=sum(breakdown.values()),
                energy_breakdown=breakdown,
                bound=k.bound,
                bytes_moved=dict(k.bytes_moved),
                notes=(
                    f"host core kernel ({host.name}, analytic: {k.cycles:.0f} host cycles + "
                    f"{h.call_overhead_cycles} hand-over); cycles in accelerator clock cycles"
                ),
            )
        )
    return out


def _space(target: Target) -> Any:
    from accelsim.accel.space import AccelSpace

    return AccelSpace(target)


def place(graph: Graph, target: Target, precision: Precision) -> list[cov.Placement]:
    """Nodes the accelerator runs (a program), views, and the rest on its host core."""
    from accelsim.accel.compute import NotAccelerated, layer_def
    from accelsim.model.ops import node_macs

    config = load_config(target)
    out = []
    for n in graph.nodes:
        macs = node_macs(graph, n)
        if n.op in _VIEWS:
            out.append(cov.Placement(n.name, n.op, cov.VIEW, macs, "no data movement"))
            continue
        try:
            layer_def(graph, n, config)
        except NotAccelerated as exc:
            out.append(cov.Placement(n.name, n.op, cov.HOST, macs, str(exc)))
            continue
        out.append(cov.Placement(n.name, n.op, cov.KERNEL, macs))
    on_host = _host_kernels(graph, config, precision, [p.layer for p in out if p.ran == cov.HOST])
    return [
        dataclasses.replace(
            p, ran=cov.HOST_KERNEL, reason=f"on the host core ({config.host.target}): {p.reason}"
        )
        if p.layer in on_host
        else p
        for p in out
    ]


# The instruction-level simulator is the default: the accelerator's programs compile in seconds.
ACCELERATOR = Backend(
    ("accelerator",),
    compile_model,
    verify_model,
    {"codegen": Fidelity("accel-sim", _accel_sim), "analytic": Fidelity("analytic", _analytic)},
    "codegen",
    place,
    space=_space,
)
