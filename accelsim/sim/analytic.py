"""Analytic-fidelity cost model for CPU and DSP targets: per-layer cycles, latency and energy
from operator shapes and the target's documented numbers alone (no compilation), fast enough
for sweeps of thousands of points.

Per layer:
- compute: MAC instructions = MACs / `timing.mac[precision].macs_per_instruction`, each costing
  1 / throughput of its class plus the helper instructions (`extra`) the precision needs; the
  classes share the vector pipes, so their issue times add. Non-MAC work (requantization,
  pooling, elementwise) costs `OTHER_OPS_PER_ELEMENT` vector-ALU operations per output element
  over the vector lanes.
- memory: each tensor a layer reads or writes is served by the smallest memory level that holds
  the layer's working set (weights stream from DRAM on first use, as a batch-1 inference does);
  bytes / bandwidth per level, the slowest level sets the memory time.
- cycles = max(compute, memory) (a roofline: overlap of the two is assumed perfect), and the
  larger term is the layer's `bound`.
- energy: MACs x energy per MAC at the precision, other operations x int32 add, bytes x
  pJ/byte per level they pass through (DRAM traffic also passes every on-chip level once),
  static power x latency.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from accelsim.core.cost import LayerCost
from accelsim.core.errors import AccelsimError
from accelsim.core.precision import Precision
from accelsim.core.target import Target
from accelsim.model.graph import Graph, Node
from accelsim.model.ops import MAC_OPS, node_macs, op_class
from accelsim.model.quantization import layer_precision
from accelsim.ref.primitives import pool_counts_with_pads

# Vector-ALU operations per output element of non-MAC work: requantize (multiply-high, rounding
# shift, add zero point, clamp, narrow) ~ 5; a pooling window adds one max/add per tap.
REQUANT_OPS = 5.0
FREE_OPS = ("reshape", "flatten", "squeeze")  # views: no kernel runs

# Energy per MAC by precision, from the target's `energy.ops_pj` keys.
_MAC_ENERGY_KEY = {
    "w4a4": "int4_mac",
    "w4a8": "int8_mac",
    "w8a4": "int8_mac",
    "w8a8": "int8_mac",
    "w16a16": "int16_mac",
    "w8a16": "int16_mac",  # the 16-bit kernel (int8 weights widened when packed)
    "fp16": "fp16_fma",
    "fp32": "fp32_fma",
}


class SimulationError(AccelsimError):
    """A target lacks a number the model needs (the message names file and key)."""


@dataclass(frozen=True)
class _Level:
    name: str
    size: float  # bytes (inf for DRAM)
    bytes_per_cycle: float
    pj_per_byte: float


def _need(target: Target, section: Mapping, key: str, where: str):
    if key not in section:
        raise SimulationError(
            f"{target.path}: {where}{key}: missing (needed by the analytic model)"
        )
    return section[key]


def memory_levels(target: Target) -> list[_Level]:
    clock = float(_need(target, target.timing, "clock_hz", "timing."))
    levels = _need(target, target.memory, "levels", "memory.")
    energy = target.energy.get("memory_pj_per_byte", {})
    out = []
    for i, lv in enumerate(levels):
        name = lv["name"]
        if "bandwidth_bytes_per_cycle" in lv:
            bpc = float(lv["bandwidth_bytes_per_cycle"])
        elif "bandwidth_bytes_per_s" in lv:
            bpc = float(lv["bandwidth_bytes_per_s"]) / clock
        else:
            raise SimulationError(
                f"{target.path}: memory.levels[{i}] ({name}): needs "
                f"bandwidth_bytes_per_cycle or bandwidth_bytes_per_s"
            )
        size = float(lv.get("size_bytes", float("inf")))
        out.append(_Level(name, size, bpc, float(energy.get(name, 0.0))))
    return out


def _mac_issue(target: Target, precision: Precision) -> tuple[float, float]:
    """(MACs per instruction, cycles per MAC instruction incl. helpers)."""
    mac = _need(target, target.timing, "mac", "timing.")
    key = precision.name
    if key not in mac:
        raise SimulationError(
            f"{target.path}: timing.mac.{key}: missing; target "
            f"'{target.name}' describes {', '.join(mac)}"
        )
    spec = mac[key]
    instr = target.timing["instructions"]
    cls = spec["instruction"]
    if cls not in instr:
        raise SimulationError(
            f"{target.path}: timing.mac.{key}.instruction: '{cls}' is not in timing.instructions"
        )
    uses = {cls: 1.0}
    for helper, count in (spec.get("extra") or {}).items():
        if helper not in instr:
            raise SimulationError(
                f"{target.path}: timing.mac.{key}.extra.{helper}: not in timing.instructions"
            )
        uses[helper] = uses.get(helper, 0.0) + float(count)
    if not all(instr[c].get("pipes") for c in uses):  # pipes not listed: they add up
        return float(spec["macs_per_instruction"]), sum(
            n / float(instr[c]["throughput"]) for c, n in uses.items()
        )
    # classes on their own pipes issue in parallel (Kryo 280: SMULL/SMLAL on F0, the SADALP
    # that completes the int16 pairing on F1)
    from accelsim.sim.pipeline import pipe_bound

    work: dict[tuple[str, ...], float] = {}
    for c, n in uses.items():
        pipes = tuple(sorted({str(p) for p in instr[c]["pipes"]}))
        work[pipes] = work.get(pipes, 0.0) + n * len(pipes) / float(instr[c]["throughput"])
    return float(spec["macs_per_instruction"]), pipe_bound(work)


def peak_macs_per_cycle(target: Target, precision: Precision) -> float:
    per_instr, cycles = _mac_issue(target, precision)
    return per_instr / cycles


def _bytes(graph: Graph, tensor: str) -> float:
    return graph.tensors[tensor].nbytes if tensor else 0.0


def _node_traffic(graph: Graph, node: Node) -> tuple[float, float, float]:
    """(weight bytes, activation bytes read, bytes written)."""
    w = sum(_bytes(graph, t) for t in node.inputs if t and graph.is_constant(t))
    a = sum(_bytes(graph, t) for t in node.inputs if t and not graph.is_constant(t))
    o = sum(_bytes(graph, t) for t in node.outputs)
    return w, a, o


# Vector registers of every shipped architecture: AArch64 V0-V31 (Arm ARM A1.4), HVX V0-V31
# (Hexagon V6x HVX PRM 2.1), AVX-512 zmm0-zmm31 (Intel SDM vol. 1, 15.1).
VECTOR_REGISTERS = 32


def layer_traffic(
    graph: Graph,
    node: Node,
    levels: list[_Level],
    target: Target | None = None,
    precision: Precision | None = None,
    loops: Sequence[tuple[str, int]] | None = None,
) -> dict[str, float]:
    """Bytes a layer moves from each memory level.

    Conv, depthwise and dense layers on a CPU/DSP target: the loop-nest model
    (`accelsim.sim.traffic`) over the kernel's loops — `loops` (name, extent) from a compiled
    kernel, else the target's schedule recipe — so weights a loop order sweeps once per output
    tile are re-fetched as often as the nest says. Other layers (and calls without a target):
    the tensors are served by the smallest level that holds the working set; weights come from
    DRAM on first use (batch-1 inference)."""
    from accelsim.sim import loopnest

    if target is not None and op_class(graph, node) in loopnest.NEST_OPS:
        return _nest_traffic(graph, node, levels, target, precision, loops)
    w, a, o = _node_traffic(graph, node)
    working_set = w + a + o
    home = next((lv for lv in levels if lv.size >= working_set), levels[-1])
    dram = levels[-1]
    traffic = {lv.name: 0.0 for lv in levels}
    traffic[dram.name] += w
    traffic[home.name] += a + o
    return traffic


def _nest_traffic(
    graph: Graph,
    node: Node,
    levels: list[_Level],
    target: Target,
    precision: Precision | None,
    loops,
) -> dict[str, float]:
    from accelsim.sim import loopnest, traffic

    if loops is None:
        from accelsim.lower.schedule import recipes_for

        prec = layer_precision(graph, node, precision) if precision is not None else None
        recipe = recipes_for(target).recipe(
            op_class(graph, node), prec.name if prec is not None else "default", node.op
        )
        # the order as on one thread (`weights_order` wherever the weights outweigh the
        # input): the thread count only moves layers whose weights and input both stay cached,
        # and a sweep over it shares one traffic table (`sim.space`)
        loops = loopnest.recipe_loops(graph, node, recipe, target.codegen.features, prec)
    nest = loopnest.complete(loops, loopnest.axis_sizes(graph, node))
    vector_bytes = float(target.codegen.vector_bits) / 8
    return traffic.level_traffic(
        nest,
        loopnest.accesses(graph, node, nest),
        [traffic.Level(lv.name, lv.size) for lv in levels],
        VECTOR_REGISTERS * vector_bytes,
    )


def memory_cycles(traffic: Mapping[str, float], levels: list[_Level]) -> float:
    """Bandwidth-bound time: the slowest level sets it (levels transfer concurrently)."""
    return max(traffic[lv.name] / lv.bytes_per_cycle for lv in levels)


def memory_energy(traffic: Mapping[str, float], levels: list[_Level]) -> tuple[float, float]:
    """(on-chip J, off-chip J): every byte passes L1; bytes from a lower level also pass the
    levels above it; the last level is off-chip."""
    dram = levels[-1]
    e_on = e_off = 0.0
    for i, lv in enumerate(levels):
        passed = sum(traffic[levels[j].name] for j in range(i, len(levels)))
        if lv is dram:
            e_off += traffic[lv.name] * lv.pj_per_byte * 1e-12
        else:
            e_on += passed * lv.pj_per_byte * 1e-12
    return e_on, e_off


def mac_energy_pj(target: Target, precision: Precision) -> float:
    """Energy of one multiply-accumulate at `precision` (`energy.ops_pj`)."""
    e_ops = target.energy.get("ops_pj", {})
    return float(e_ops.get(_MAC_ENERGY_KEY.get(precision.name, "int8_mac"), 0.0))


def mac_energy_key(graph: Graph, node: Node, precision: Precision) -> str:
    """The `energy.ops_pj` key of a node's MACs at (the graph's) `precision`."""
    return _MAC_ENERGY_KEY.get(layer_precision(graph, node, precision).name, "int8_mac")


def other_ops(graph: Graph, node: Node) -> float:
    """Vector-ALU operations (elements, not instructions) of a node's non-MAC work."""
    out = sum(graph.tensors[t].size for t in node.outputs)
    if node.op in FREE_OPS:
        return 0.0
    if node.op in MAC_OPS:
        return out * REQUANT_OPS
    if node.op in ("max_pool", "avg_pool"):
        # the taps inside the (padded) input: a ceil-mode window larger than the map (HF
        # EfficientNet's AvgPool2d(1280, ceil_mode=True) on a 7x7 map) reads only the map
        taps = pool_counts_with_pads(graph.tensors[node.inputs[0]].shape, node.attrs)
        return out * (float(taps.mean()) + REQUANT_OPS)
    if node.op in ("global_avg_pool", "mean", "softmax", "layer_norm"):
        return sum(graph.tensors[t].size for t in node.inputs if t) + out * REQUANT_OPS
    return out * REQUANT_OPS


def _documented_compute(graph: Graph, node: Node, target: Target, precision: Precision) -> float:
    """Compute cycles from the target's documented rates: MAC instructions at `timing.mac`,
    `REQUANT_OPS`-style vector-ALU work per output element."""
    lanes = target.codegen.vector_bits / 32  # requantization works on 32-bit lanes
    macs = node_macs(graph, node)
    compute = 0.0
    if macs:
        per_instr, cyc = _mac_issue(target, precision)
        compute += macs / per_instr * cyc
    return compute + other_ops(graph, node) / lanes / float(
        target.timing["instructions"]["vector_alu"]["throughput"]
    )


def layer_compute(
    graph: Graph,
    node: Node,
    target: Target,
    precision: Precision,
    calibrated_as: Target | None = None,
) -> float:
    """The generated code's compute cycles by the target's calibration
    (`accelsim.sim.calibration`); a kind calibrated at w8a8 but not at this integer precision
    (its kernel is not lowered there) keeps the w8a8 code's overhead in the ratio of the
    documented rates; without calibration, the documented rates. `calibrated_as`: the target
    whose calibration applies (a sweep variant's base file, `accelsim.sim.space`), scaled by the
    ratio of `target`'s documented rates to its own."""
    from accelsim.sim import rates

    base = calibrated_as or target
    cal = rates.compute_cycles(base, precision.name, graph, node)
    if cal is not None:
        if calibrated_as is None:
            return cal
        return cal * (
            _documented_compute(graph, node, target, precision)
            / _documented_compute(graph, node, base, precision)
        )
    documented = _documented_compute(graph, node, target, precision)
    if not precision.is_float and precision.name != "w8a8":
        b8 = rates.compute_cycles(base, "w8a8", graph, node)
        if b8 is not None:
            w8a8 = precision.with_options(weight_bits=8, act_bits=8)
            return b8 * documented / _documented_compute(graph, node, base, w8a8)
    return documented


def parallel_extent(
    graph: Graph,
    node: Node,
    target: Target,
    precision: Precision,
    calibrated_as: Target | None = None,
) -> tuple[int, int]:
    """What the layer's kernel shares out over the hardware threads, as (rows, vectors): (0, 0)
    unless the calibrated kernels of its kind ran split (`rates.splits`; `parallel: contexts`
    recipes); else its output rows (an NHWC output: the recipes split the rows, or an inner
    loop where there are fewer rows than threads) and its output's vectors."""
    from accelsim.sim import rates

    base = calibrated_as or target
    split = rates.splits(base, precision.name, graph, node)
    if (
        not split
        and not precision.is_float
        and rates.compute_cycles(base, precision.name, graph, node) is None
    ):  # costed from the w8a8 row (`layer_compute`): split like it
        split = rates.splits(base, "w8a8", graph, node)
    if not split:
        return 0, 0
    out = graph.tensors[node.outputs[0]]
    nbytes = out.size * max(precision.act_bits or 32, 8) // 8
    vectors = max(1, -(-nbytes // max(1, target.codegen.vector_bits // 8)))
    split_extent = _conv_split_extent(graph, node, base, precision)
    if split_extent:
        return split_extent, vectors
    return (int(out.shape[1]) if len(out.shape) == 4 else vectors), vectors


def _conv_split_extent(graph: Graph, node: Node, target: Target, precision: Precision) -> int:
    """The iterations of a conv2d kernel's parallel loop as the scheduler builds it for
    `target` (the calibrated one: a sweep's variants share its kernels): the recipe's loops
    (its `weights_order` where the scheduler takes it) above the reduction, the shortest prefix
    that balances the threads best, fused (`accelsim.lower.schedule`: output rows, row x column
    tiles, or channel blocks); 0 for other kinds or where no prefix gives every thread work."""
    from accelsim.lower import schedule
    from accelsim.sim import loopnest

    if op_class(graph, node) != "conv2d":
        return 0
    prec = layer_precision(graph, node, precision)
    recipe = schedule.recipes_for(target).recipe("conv2d", prec.name, node.op)
    contexts = target.hardware_threads
    loops = loopnest.recipe_loops(graph, node, recipe, target.codegen.features, prec, contexts)
    extents = dict(loops)
    reduce, stop = loopnest.split_limits(recipe, extents)
    lead = schedule.lead_loops([n for n, _ in loops], reduce, stop)
    best = schedule.best_prefix(lead, extents, contexts)
    if best is None:
        return 0
    return math.prod(extents[n] for n in lead[: best[0]])


def split_share(rows, vectors, contexts):
    """Speed-up of a layer whose output rows are shared in contiguous chunks of
    ceil(rows / contexts) over `contexts` threads (TVM's parallel loop; the slowest thread sets
    the time); with fewer rows than threads the recipes split an inner loop (channel blocks),
    taken as the output's vectors. 1 where rows is 0 (not split). Works on numpy arrays."""
    import numpy as np

    c = np.maximum(np.asarray(contexts, dtype=float), 1.0)
    r = np.asarray(rows, dtype=float)
    e = np.where(r >= c, r, np.asarray(vectors, dtype=float))
    e = np.maximum(e, 1.0)
    out = np.where(r > 0, e / np.ceil(e / c), 1.0)
    return float(out) if out.ndim == 0 else out


def simulate_layer(
    graph: Graph,
    node: Node,
    target: Target,
    precision: Precision,
    levels: list[_Level] | None = None,
    calibrated_as: Target | None = None,
) -> LayerCost:
    """The compute of a layer whose kind's kernels split is shared over the target's
    `timing.hardware_threads` (`parallel_extent`, `split_share`; a sweep of them costs each
    variant target, `accelsim.sim.space`); memory bandwidth is shared, so memory time is not
    divided."""
    levels = levels or memory_levels(target)
    precision = layer_precision(graph, node, precision)
    if node.op in FREE_OPS:  # a view of its input: no kernel, no traffic
        return LayerCost(
            node.name,
            node.op,
            0,
            0.0,
            0.0,
            0.0,
            {k: 0.0 for k in ("compute", "onchip_memory", "offchip_memory", "static")},
            "memory",
            0.0,
            "analytic",
            {lv.name: 0.0 for lv in levels},
            "view: no kernel",
        )
    macs = node_macs(graph, node)
    threads = target.hardware_threads
    rows, vectors = parallel_extent(graph, node, target, precision, calibrated_as)
    compute = layer_compute(graph, node, target, precision, calibrated_as) / split_share(
        rows, vectors, threads
    )
    traffic = layer_traffic(graph, node, levels, target, precision)
    e_ops = target.energy.get("ops_pj", {})
    e_compute = (
        macs * mac_energy_pj(target, precision)
        + other_ops(graph, node) * float(e_ops.get("int32_add", 0.0))
    ) * 1e-12
    return layer_cost(
        graph,
        node,
        target,
        precision,
        compute,
        traffic,
        levels,
        e_compute,
        "analytic",
        contexts=threads if rows else 1,
    )


def layer_cost(
    graph: Graph,
    node: Node,
    target: Target,
    precision: Precision,
    compute: float,
    traffic: Mapping[str, float],
    levels: list[_Level],
    e_compute: float,
    fidelity: str,
    notes: str = "",
    cycle_breakdown: Mapping[str, float] | None = None,
    contexts: int = 1,
) -> LayerCost:
    """A layer's `LayerCost` from its compute cycles, bytes per level and compute energy (both
    fidelities): cycles = max(compute, memory) (a roofline: overlap assumed perfect), the larger
    term is the bound; memory energy per level, static power x latency; utilisation against the
    target's peak MACs per cycle on the `contexts` hardware threads the compute ran on."""
    memory = memory_cycles(traffic, levels)
    macs = node_macs(graph, node)
    cycles = max(compute, memory, 1.0)
    latency = cycles / float(target.timing["clock_hz"])
    e_on, e_off = memory_energy(traffic, levels)
    e_static = float(target.energy.get("static_power_w", 0.0)) * latency
    peak = peak_macs_per_cycle(target, precision) * contexts if macs else 0.0
    return LayerCost(
        name=node.name,
        op=op_class(graph, node),
        macs=macs,
        cycles=cycles,
        latency_s=latency,
        energy_j=e_compute + e_on + e_off + e_static,
        energy_breakdown={
            "compute": e_compute,
            "onchip_memory": e_on,
            "offchip_memory": e_off,
            "static": e_static,
        },
        bound="compute" if compute >= memory else "memory",
        utilization=(macs / (cycles * peak)) if macs and cycles else 0.0,
        fidelity=fidelity,
        bytes_moved=traffic,
        notes=notes,
        cycle_breakdown=cycle_breakdown or {},
        contexts=contexts,
    )


def simulate_graph(
    graph: Graph,
    target: Target,
    precision: Precision,
    *,
    calibrated_as: Target | None = None,
) -> list[LayerCost]:
    """Per-node costs of a (quantized or float) graph; quantize/dequantize at the graph edges
    are costed like elementwise kernels. `calibrated_as`: see `simulate_layer`."""
    target.check_precision(precision)
    levels = memory_levels(target)
    return [simulate_layer(graph, n, target, precision, levels, calibrated_as) for n in graph.nodes]
