"""Codegen-fidelity cost model for CPU and DSP targets: per-layer cycles, latency and energy from
the code TVM generated for each layer.

Per kernel (one call):
- dynamic counts: `accelsim.sim.dyncount.predict_kernel` gives every basic block of the
  kernel's assembly with its executions per call (loop trip counts read from the code).
- compute cycles: the blocks of one function that sit in the same innermost loop (or in no
  loop) and run equally often are costed as one unit, their lines in program order:
  executions x `accelsim.sim.pipeline.block_cycles(unit, target, loop=<inside a loop>)`. A loop
  body that spans several blocks (a header, a latch, an unrolled tail that runs every
  iteration) is thus one steady-state unit per iteration, as `block_cycles(loop=True)` expects;
  a block on a path taken only on some iterations is its own unit. Straight-line code
  (`loop=False`) pays its critical path once per execution. Per-entry pipeline fill and drain
  of short loops is not modelled (steady state only). The packed-call wrapper TVM puts in front
  of every kernel (argument checks) is costed on its shortest valid path.
- hardware threads (HVX contexts): a kernel whose recipe splits it (`parallel: contexts`) runs
  its parallel loops as `timing.hardware_threads` tasks, each a contiguous share of the loop
  (TVM's parallel launch; the harness runs the same tasks under qemu). The count predictor walks
  every task on its own (`DynamicCount.tasks`); the tasks run at once, each on its own context,
  so a parallel loop costs its slowest task, the code around it (argument checks, workspace
  allocation, stages left serial) one thread's time. The contexts are taken to run concurrently
  at one packet per cycle each (ASSUMPTION: the HVX-PRM time-interleaves contexts and says all
  of them "might be required to reach peak"; how far one context falls short is not modelled).
  `KernelCost.work_cycles` is the same code on one thread (the tasks in turn: the analytic
  model's calibration). Packets issue at most one per cycle per thread (`pipeline` documents
  the stall rules).
- memory: bytes served by each level (`accelsim.sim.analytic.layer_traffic`): for conv,
  depthwise and dense kernels the loop-nest model (`accelsim.sim.traffic`) over the kernel's own
  scheduled loops (working set per loop level against each level's capacity); other layers by
  their working set. Bytes / bandwidth per level; the slowest level sets the memory time.
- cycles = max(compute, memory): compute and memory traffic are assumed to overlap perfectly
  (out-of-order cores and prefetchers hide streaming traffic; a roofline). A layer split over
  contexts moves all its bytes through the same levels: their bandwidth is shared, so memory
  time is not divided. The larger term is the layer's `bound`; `utilization` = MACs /
  (cycles x peak MACs per cycle of `timing.mac` x the contexts the layer ran on).
- where the compute cycles go (`cycle_breakdown`, the report's kernel-efficiency section), by
  instruction group (`BREAKDOWN_GROUPS`: vector multiplies and multiply-accumulates other than
  the requantization's, loads and stores, other vector work such as requantization, widening
  and permutes, scalar work such as address arithmetic and loop control; a scalar MAC, HVX
  fp32, counts as scalar work). Each group's issue cycles (`pipeline.issue_by`): on Hexagon the
  packets it issues, a packet going to the first group among its instructions in that order (a
  load bundled with a vrmpy costs no cycle of its own); on the other cores executions /
  documented throughput per instruction. MAC issue is charged first,
  the cycles beyond every group's issue are dependency stalls, and the rest of the compute
  cycles is shared by the other groups in proportion to their issue (on a core that issues
  several pipes at once: an attribution, not a measurement).
- energy: compute = MAC-instruction executions x MACs per instruction (the target's
  `timing.mac[precision]`, at least the layer's MACs) x energy per MAC, plus every other executed
  instruction as ALU work of `energy.ops_pj.int32_add` per 32-bit lane (vector instructions:
  vector_bits / 32 lanes; scalar, load/store address and branch instructions: one); on-chip and
  off-chip memory from the bytes per level (`analytic.memory_energy`); static power x latency.

A layer whose counts are not exact (a loop whose trip count the assembly does not reveal, a
data-dependent branch in the kernel body), a node that is not lowered, or a target whose ISA the
count predictor does not read, falls back to the analytic model for that layer; its `fidelity`
stays "analytic" and `notes` say why. Views (reshape/flatten in kernel layout) cost nothing.

Per-kernel results are memoised in process and on disk (`ResultCache("codegen-sim")`) by the
kernel's content key, the target's timing table and this model's code, so a model whose kernels
repeat, or a warm rerun, costs each distinct kernel once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import cache

from accelsim import asm
from accelsim.core.cache import ResultCache, check_fields, code_fingerprint, content_key
from accelsim.core.cost import LayerCost
from accelsim.core.precision import Precision
from accelsim.core.target import Target
from accelsim.model.graph import Graph, Node
from accelsim.model.ops import node_macs, op_class
from accelsim.model.quantization import layer_precision
from accelsim.sim import analytic
from accelsim.sim.dyncount import COUNTED_ISAS

FIDELITY = "codegen"
_MODEL_VERSION = "codegen-kernel/2"


@dataclass(frozen=True)
class KernelCost:
    """What one call of a compiled kernel executes and how long its instructions take."""

    key: str
    compute_cycles: float
    instructions: int  # dynamic, whole call (wrapper included)
    packets: int | None  # Hexagon
    class_counts: Mapping[str, int]  # dynamic instructions per pipe-model class
    vector_instructions: int  # dynamic instructions of vector classes
    loop_cycles: float  # part of compute_cycles spent in loops
    blocking: tuple[str, ...] = ()  # why the counts are not exact (then unusable)
    notes: tuple[str, ...] = ()
    external_calls: Mapping[str, int] = field(default_factory=dict)
    function_instructions: Mapping[str, int] = field(default_factory=dict)  # as costed
    # issue cycles per `BREAKDOWN_GROUPS` group (`pipeline.issue_by`), whole call (of a
    # parallel loop: its slowest task's)
    issue_by_group: Mapping[str, float] = field(default_factory=dict)
    contexts: int = 1  # hardware threads the kernel's parallel loops run on (1: none)
    work_cycles: float = 0.0  # on one thread: the parallel tasks one after the other

    def to_json(self) -> dict:
        d = asdict(self)
        d["class_counts"] = dict(self.class_counts)
        d["external_calls"] = dict(self.external_calls)
        d["function_instructions"] = dict(self.function_instructions)
        d["blocking"], d["notes"] = list(self.blocking), list(self.notes)
        return d

    @staticmethod
    def from_json(d: Mapping) -> KernelCost:
        d = check_fields(KernelCost, d)  # a cache entry of another shape raises
        return KernelCost(**{**d, "blocking": tuple(d["blocking"]), "notes": tuple(d["notes"])})


@cache
def _code_fingerprint() -> str:
    """Hash of the code that turns a kernel into a KernelCost (a change invalidates entries):
    the cost models and the assembly front end they read the kernel with."""
    return code_fingerprint("sim", "asm")


def _timing_fingerprint(target: Target) -> str:
    return hashlib.sha256(
        json.dumps(target.timing, sort_keys=True, default=str).encode()
    ).hexdigest()


_MEMO: dict[str, KernelCost] = {}


def _fatal(unresolved: tuple[str, ...], entry: str) -> tuple[str, ...]:
    """Unresolved items that make the counts unusable. The packed-call wrapper's branches
    (argument checks, loop-free) are bounded exactly over its valid paths: not fatal."""
    return tuple(
        u
        for u in unresolved
        if not u.startswith(entry + ":") and not u.startswith("alignment padding")
    )


def kernel_cost(kernel, target: Target) -> KernelCost:
    """Dynamic counts and core cycles of one call of `kernel` on `target` (memoised)."""
    arch = asm.isa_of(target)
    key = content_key(
        _MODEL_VERSION, kernel.key, _timing_fingerprint(target), _code_fingerprint(), arch
    )
    hit = _MEMO.get(key)
    if hit is not None:
        return hit
    cache = ResultCache("codegen-sim")
    kc = cache.get(key, KernelCost.from_json)
    if kc is None:
        kc = _kernel_cost(kernel, target, arch)
        cache.put(key, kc.to_json())
    _MEMO[key] = kc
    return kc


@dataclass(frozen=True)
class CostUnit:
    """Blocks of one function in the same innermost loop (or in none) that run equally often,
    their lines in program order: timed as one unit, `runs` times per call."""

    function: str
    loop: str | None
    runs: int
    in_loop: bool
    lines: tuple[str, ...]


def cost_units(dc, function: str | None = None, task: Sequence[int] = ()) -> list[CostUnit]:
    """The units a `DynamicCount` is timed in (blocks that never run are dropped; the packed-call
    wrapper's blocks run on its shortest valid path: `BlockCount.executions`). With `function`
    and `task` (one task's executions of that parallel loop body's blocks, `DynamicCount.tasks`):
    that task's units."""
    units: dict[tuple[str, str | None, int], list[str]] = {}
    in_loop: dict[tuple[str, str | None, int], bool] = {}
    blocks = dc.blocks
    if function is not None:
        blocks = [
            replace(b, executions=n)
            for b, n in zip([b for b in dc.blocks if b.function == function], task)
        ]
    for b in blocks:
        if b.executions <= 0 or not b.lines:
            continue
        k = (b.function, b.loop, b.executions)
        units.setdefault(k, []).extend(b.lines)
        in_loop[k] = b.in_loop
    return [
        CostUnit(f, lp, n, in_loop[(f, lp, n)], tuple(lines)) for (f, lp, n), lines in units.items()
    ]


# instruction groups of `cycle_breakdown`, in the order reports show them (and the priority of
# a Hexagon packet's instructions), stalls last
BREAKDOWN_GROUPS = ("mac", "load_store", "vector_other", "scalar", "stall")
# mnemonics of `asm.MAC_CLASSES` that multiply for the fixed-point requantization, not for a
# layer's MACs: gemmlowp's SaturatingRoundingDoublingHighMul (SQRDMULH; SQDMULH) and its HVX
# form (VMPYE + VMPYO, accelsim.lower.requant.mbqm_vmpye)
_REQUANT_MNEMONICS = frozenset({"sqrdmulh", "sqdmulh", "vmpye", "vmpyo"})


def _group(ins) -> str:
    """An instruction's group: the vector multiply(-accumulate) classes (`asm.MAC_CLASSES`:
    SDOT, SMLAL of the int8 depthwise kernels, FMLA, vrmpy, vmpyi, ...) are MAC work unless
    they multiply for the requantization."""
    if ins.cls in asm.MAC_CLASSES and ins.mnemonic not in _REQUANT_MNEMONICS:
        return "mac"
    if "load" in ins.cls or "store" in ins.cls:
        return "load_store"
    return "vector_other" if ins.cls.startswith("vector_") else "scalar"


def cycle_breakdown(kc: KernelCost) -> dict[str, float]:
    """`kc.compute_cycles` split over `BREAKDOWN_GROUPS` (module docstring); sums to it."""
    issue = kc.issue_by_group
    total = kc.compute_cycles
    out = dict.fromkeys(BREAKDOWN_GROUPS, 0.0)
    out["mac"] = min(issue.get("mac", 0.0), total)
    rest = total - out["mac"]
    out["stall"] = min(max(total - sum(issue.values()), 0.0), rest)
    rest -= out["stall"]
    others = ("load_store", "vector_other", "scalar")
    occupied = sum(issue.get(g, 0.0) for g in others)
    for g in others:
        out[g] = rest * issue.get(g, 0.0) / occupied if occupied else 0.0
    if not occupied:
        out["stall"] += rest
    return out


def _kernel_cost(kernel, target: Target, arch: str) -> KernelCost:
    from accelsim.sim.dyncount import DynCountError, predict_kernel
    from accelsim.sim.pipeline import block_cycles, issue_by

    if arch not in COUNTED_ISAS:
        return KernelCost(
            kernel.key,
            0.0,
            0,
            None,
            {},
            0,
            0.0,
            (f"the count predictor reads {', '.join(COUNTED_ISAS)} assembly, not {arch}",),
        )
    try:
        dc = predict_kernel(kernel, target.hardware_threads)
    except DynCountError as exc:  # assembly the predictor cannot split: not the user's doing
        return KernelCost(kernel.key, 0.0, 0, None, {}, 0, 0.0, (str(exc),))
    blocking = _fatal(dc.unresolved, dc.entry)
    notes = []
    if any(u.startswith("alignment padding") for u in dc.unresolved):
        notes.append("alignment nops unknown (no object file)")
    cycles = loop_cycles = 0.0
    classes: dict[str, int] = {}
    per_fn: dict[str, int] = {}
    issue: dict[str, float] = {}
    vector = 0
    timed: dict[tuple[str, tuple[str, ...], bool], tuple[float, dict[str, float]]] = {}
    work = 0.0

    def timing(u: CostUnit) -> tuple[float, dict[str, float]]:
        k = (u.function, u.lines, u.in_loop)
        if k not in timed:
            instrs = asm.parse(u.lines, arch)
            timed[k] = (
                block_cycles(u.lines, target, loop=u.in_loop),
                issue_by(instrs, target, _group, BREAKDOWN_GROUPS),
            )
        return timed[k]

    # a parallel loop's tasks run at once on their own hardware threads: the slowest sets the
    # time (cycles, issue); every task's instructions count as work (classes, energy)
    for fn, runs in dc.tasks.items():
        slowest = (-1.0, 0.0, {})
        for task in runs:
            c_t = loop_t = 0.0
            issue_t: dict[str, float] = {}
            for u in cost_units(dc, fn, task):
                c, by = timing(u)
                c_t += u.runs * c
                loop_t += u.runs * c if u.in_loop else 0.0
                for g, n in by.items():
                    issue_t[g] = issue_t.get(g, 0.0) + u.runs * n
            slowest = max(slowest, (c_t, loop_t, issue_t), key=lambda x: x[0])
        cycles += slowest[0]
        loop_cycles += slowest[1]
        for g, n in slowest[2].items():
            issue[g] = issue.get(g, 0.0) + n
    for u in cost_units(dc):
        c, by = timing(u)
        work += u.runs * c
        instrs = asm.parse(u.lines, arch)
        per_fn[u.function] = per_fn.get(u.function, 0) + u.runs * len(instrs)
        for ins in instrs:
            classes[ins.cls] = classes.get(ins.cls, 0) + u.runs
            if ins.cls.startswith("vector_") and "load" not in ins.cls and "store" not in ins.cls:
                vector += u.runs
        if u.function in dc.tasks:
            continue
        cycles += u.runs * c
        if u.in_loop:
            loop_cycles += u.runs * c
        for g, n in by.items():
            issue[g] = issue.get(g, 0.0) + u.runs * n
    external = {n: c for n, c in dc.external_calls.items() if c}
    if external:
        notes.append(
            "calls outside the kernel not costed: "
            + ", ".join(f"{n} x{c}" for n, c in sorted(external.items()))
        )
    return KernelCost(
        kernel.key,
        cycles,
        dc.instructions,
        dc.packets,
        classes,
        vector,
        loop_cycles,
        blocking,
        tuple(notes),
        external,
        per_fn,
        issue,
        target.hardware_threads if dc.tasks else 1,
        work,
    )


# ------------------------------------------------------------------------------------------
# layers
# ------------------------------------------------------------------------------------------


def _zero(node: Node, graph: Graph, levels, note: str) -> LayerCost:
    return LayerCost(
        node.name,
        op_class(graph, node),
        0,
        0.0,
        0.0,
        0.0,
        {k: 0.0 for k in ("compute", "onchip_memory", "offchip_memory", "static")},
        "memory",
        0.0,
        FIDELITY,
        {lv.name: 0.0 for lv in levels},
        note,
    )


def _fallback(
    graph: Graph, node: Node, target: Target, precision: Precision, levels, why: str
) -> LayerCost:
    cost = analytic.simulate_layer(graph, node, target, precision, levels)
    return replace(cost, notes=f"analytic fallback: {why}")


def _mac_class(target: Target, precision: Precision) -> tuple[str | None, float]:
    """(pipe-model class of the precision's MAC instruction, MACs per instruction); no class
    where the table names a scalar one (shared with address arithmetic, so not countable)."""
    spec = target.timing.get("mac", {}).get(precision.name) or {}
    cls = str(spec.get("instruction", ""))
    if not cls.startswith("vector_"):
        return None, 0.0
    return cls, float(spec["macs_per_instruction"])


def _named_loops(kernel) -> list[tuple[str, int]]:
    """The kernel's scheduled loops (name, extent), outermost first, each recipe-named loop
    once (the main nest; init and epilogue loops repeat names or carry generated ones, which
    the memory model ignores)."""
    seen: dict[str, int] = {}
    for lp in kernel.all_loops():
        seen.setdefault(lp.name, lp.extent)
    return list(seen.items())


def cost_layer(
    graph: Graph, node: Node, kernel, target: Target, precision: Precision, levels
) -> LayerCost:
    """Cost of one lowered node from its compiled kernel."""
    precision = layer_precision(graph, node, precision)
    kc = kernel_cost(kernel, target)
    if kc.blocking:
        shown = "; ".join(kc.blocking[:2]) + (
            f" (+{len(kc.blocking) - 2} more)" if len(kc.blocking) > 2 else ""
        )
        return _fallback(
            graph, node, target, precision, levels, f"dynamic counts not exact: {shown}"
        )
    macs = node_macs(graph, node)
    traffic = analytic.layer_traffic(
        graph, node, levels, target, precision, loops=_named_loops(kernel)
    )
    alu_pj = float(target.energy.get("ops_pj", {}).get("int32_add", 0.0))
    lanes = target.codegen.vector_bits / 32
    mac_cls, per_instr = _mac_class(target, precision)
    n_mac = kc.class_counts.get(mac_cls, 0) if mac_cls else 0
    # the MAC instructions' products (padded lanes included), at least the layer's MACs (MACs
    # done by another instruction class are still done)
    products = max(float(macs), n_mac * per_instr)
    vec_other = kc.vector_instructions - n_mac
    # loads, stores (their address arithmetic), scalar ALU and branches: one lane each
    scalar_other = sum(kc.class_counts.values()) - kc.vector_instructions
    e_compute = (
        products * analytic.mac_energy_pj(target, precision)
        + (vec_other * lanes + scalar_other) * alu_pj
    ) * 1e-12
    return analytic.layer_cost(
        graph,
        node,
        target,
        precision,
        kc.compute_cycles,
        traffic,
        levels,
        e_compute,
        FIDELITY,
        "; ".join(kc.notes),
        cycle_breakdown(kc),
        kc.contexts,
    )


def simulate_graph(graph: Graph, target: Target, precision: Precision) -> list[LayerCost]:
    """Per-node costs of a (quantized or float) graph from its generated code; kernels come
    from the on-disk kernel cache (compiled on a miss)."""
    from accelsim.kernels.compile import compile_layer
    from accelsim.lower.lower import STATUS_KERNEL, STATUS_VIEW, lower_graph

    target.check_precision(precision)
    levels = analytic.memory_levels(target)
    arch = asm.isa_of(target)
    if arch not in COUNTED_ISAS:  # nothing to read the code with: no point compiling it
        why = f"the count predictor reads {', '.join(COUNTED_ISAS)} assembly, not {arch}"
        return [_fallback(graph, n, target, precision, levels, why) for n in graph.nodes]
    layers = lower_graph(graph, target, precision)
    nodes = {n.name: n for n in graph.nodes}
    out = []
    for L in layers:
        node = nodes[L.name]
        if L.status == STATUS_VIEW:
            out.append(_zero(node, graph, levels, f"view: no kernel ({L.reason})"))
        elif L.status == STATUS_KERNEL:
            out.append(cost_layer(graph, node, compile_layer(L, target), target, precision, levels))
        else:
            out.append(
                _fallback(graph, node, target, precision, levels, f"not lowered ({L.reason})")
            )
    return out
