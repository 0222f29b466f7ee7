"""Per-core pipe model: steady-state cycles of one basic block or loop body of generated code.

- `block_cycles(lines, target, loop)`: core cycles per execution of the block.
- `bounds(lines, target, loop)`: the separate bounds, for reports and tests.

The lines are read by the assembly front end (`accelsim.asm.parse`: `Instr` records with the
instruction class, a key of `timing.instructions`, registers defined and used, accumulator
operand, resource multiplicity, Hexagon packet).

Out-of-order NEON / x86 cores: the max of (a) the decode/issue bound (instructions /
`issue_width`), (b) the pipe bound (every class occupies its `pipes` for 1/throughput of a
pipe-cycle; for every subset of pipes, the work of the classes confined to it divided by its
size; this is the exact bound of the assignment problem) and (c) with `loop=True` the loop-carried
dependency bound (the slope of an unlimited-resource dataflow schedule over many iterations, with
class latencies and `accumulate_latency` late forwarding between multiply-accumulates), and (d)
with `loop=True` a greedy list schedule of repeated iterations under the same pipes, latencies,
decode width and reorder `window`, which catches a dependency chain slowed by pipe pressure that
neither (b) nor (c) sees alone (depthwise loops: a V0-only multiply on the critical path behind
V0/V1 adds).

In-order cores (`timing.in_order: true`, Cortex-A55): a cycle-by-cycle in-order issue of the
block (repeated for loops): at most `issue_width` instructions per cycle in program order, an
instruction waits for its operands and its pipes; 128-bit NEON instructions issue only as the
first of a dual-issue pair (`qform_first_slot`, A55 SOG 4.15 note 1).

Hexagon: the compiler has already packed the VLIW packets, so slot and resource rules hold and
the cost is one cycle per packet plus the documented interlock stalls: a vector source read by an
instruction whose class has `input_latency` L (multiplier, shift and permute inputs) is ready
max(producer latency, L) packets after its producer issued (HVX PRM "Instruction latency"). One
block runs on one hardware thread / HVX context: packets of that thread issue at most one per
cycle (`issue_width: 1`); other hardware threads/contexts run other work (or other tasks of the
same layer, `accelsim.sim.kernel_cost`), so they neither speed up nor slow down this block.

Classes missing from a target's table fall back to a coarser class (`_FALLBACK`), so a target
that does not distinguish, e.g., vector shifts from other vector ALU operations times them alike.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from accelsim import asm
from accelsim.asm import Instr
from accelsim.core.errors import AccelsimError


class PipelineError(AccelsimError):
    """A target whose timing table cannot time a block."""


# coarser class to use when a target's table lacks the finer one (checked in order)
_FALLBACK = {
    "vector_shift": "vector_alu",
    "vector_shift_acc": "vector_shift",
    "vector_narrow": "vector_shift",
    "vector_permute": "vector_alu",
    "vector_logic": "vector_alu",
    "vector_permute_double": "vector_permute",
    "vector_mul": "vector_mac_int16",
    "vector_fp": "vector_fma_fp32",
    "vector_convert": "vector_fp",
    "vector_from_gpr": "vector_alu",
    "vector_to_gpr": "vector_alu",
    "vector_mac_int16": "vector_alu",
    "vector_mul_long_int8": "vector_mac_int16",
    "vector_pairwise_acc": "vector_alu",
    "vector_mac_int8": "vector_mac_int16",
    "vector_mmla_int8": "vector_mac_int8",
    "vector_mac_bf16": "vector_fma_fp32",
    "vector_fma_fp16": "vector_fma_fp32",
    "vector_fma_fp32": "vector_alu",
    "vector_dmpy_int16x8": "vector_mac_int8",
    "vector_mpyi_int16": "vector_mac_int16",
    "vector_load_unaligned": "vector_load",
    "vector_load_replicate": "vector_load",
    "vector_load_pair": "vector_load",
    "vector_alu_long": "vector_alu",
    "vector_pairwise_long": "vector_pairwise_acc",
    "scalar_load": "vector_load",
    "scalar_store": "vector_store",
    "scalar_mul": "scalar_alu",
}


# ------------------------------------------------------------------------------------------
# class timing from the target table
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassTiming:
    name: str  # the table row used (after fallback)
    throughput: float  # instructions per cycle over its pipes
    latency: float
    pipes: tuple[str, ...]
    accumulate_latency: float | None = None
    throughput_d: float | None = None  # D-form (64-bit) throughput where it differs
    input_latency: float = 1.0
    latency_d: float | None = None  # D-form (64-bit) latency where it differs
    qform_first_slot: bool | None = None  # overrides timing.qform_first_slot for the class
    retire_ooo: bool = False  # exempt from timing.writeback_in_order


def class_timing(target, cls: str) -> ClassTiming:
    table = target.timing.get("instructions")
    if not isinstance(table, Mapping):
        raise PipelineError(
            f"{target.path}: timing.instructions: missing (the pipe model needs "
            f"per-class throughput and latency)"
        )
    return _class_timing(target.path, id(table), table, cls)


_CT_CACHE: dict = {}


def _class_timing(path: str, key: int, table: Mapping, cls: str) -> ClassTiming:
    ck = (path, key, cls)
    hit = _CT_CACHE.get(ck)
    if hit is not None and hit[0] is table:  # the table is kept alive: its id is not reused
        return hit[1]
    name = cls
    seen = []
    while name not in table:
        seen.append(name)
        if name not in _FALLBACK:
            raise PipelineError(
                f"{path}: timing.instructions: no row for instruction class "
                f"'{cls}' (tried {', '.join(seen)})"
            )
        name = _FALLBACK[name]
    row = table[name]
    for field in ("throughput", "latency"):
        if not isinstance(row.get(field), (int, float)) or row.get(field) <= 0:
            raise PipelineError(
                f"{path}: timing.instructions.{name}.{field}: expected a "
                f"positive number, found {row.get(field)!r}"
            )
    pipes = row.get("pipes")
    pipes = tuple(str(p) for p in pipes) if pipes else (f"<{name}>",)
    acc = row.get("accumulate_latency")
    ct = ClassTiming(
        name,
        float(row["throughput"]),
        float(row["latency"]),
        pipes,
        float(acc) if acc is not None else None,
        float(row["throughput_d"]) if row.get("throughput_d") else None,
        float(row.get("input_latency", 1)),
        float(row["latency_d"]) if row.get("latency_d") else None,
        row.get("qform_first_slot"),
        bool(row.get("retire_ooo", False)),
    )
    _CT_CACHE[ck] = (table, ct)
    return ct


def _occupancy(ct: ClassTiming, ins: Instr) -> float:
    """Pipe-cycles one instruction takes over its pipes."""
    tp = ct.throughput_d if (ins.narrow and ct.throughput_d) else ct.throughput
    return ins.count * len(ct.pipes) / tp


def _latency(ct: ClassTiming, ins: Instr) -> float:
    return ct.latency_d if (ins.narrow and ct.latency_d) else ct.latency


# a post- or pre-indexed load / store: `[xN], #imm` or `[xN, #imm]!`
_WRITEBACK = re.compile(r"\[\s*(x\d+|sp)\s*\]\s*,|\[\s*(x\d+|sp)\s*,[^\]]*\]\s*!")


def _base_update(prod: Instr, reg: str) -> bool:
    """`reg` is the base register a writeback load / store updates: an address add, ready a
    cycle after issue rather than with the loaded data (Arm's SOGs time the data; LLVM's models
    give the base update its own 1-cycle write)."""
    if "load" not in prod.cls and "store" not in prod.cls:
        return False
    m = _WRITEBACK.search(prod.text.lower())
    return bool(m) and (m.group(1) or m.group(2)) == reg


def _edge_latency(prod: Instr, pt: ClassTiming, cons: Instr, reg: str) -> float:
    if _base_update(prod, reg):
        return 1.0
    if (
        cons.acc == reg
        and prod.acc is not None
        and pt.accumulate_latency is not None
        and prod.cls == cons.cls
    ):
        return pt.accumulate_latency
    return _latency(pt, prod)


# ------------------------------------------------------------------------------------------
# bounds
# ------------------------------------------------------------------------------------------


def resource_bound(instrs: Sequence[Instr], timings: Sequence[ClassTiming]) -> float:
    """Max over pipe subsets S of (work of the classes confined to S) / |S|."""
    work: dict[tuple[str, ...], float] = {}
    for ins, ct in zip(instrs, timings):
        key = tuple(sorted(set(ct.pipes)))
        work[key] = work.get(key, 0.0) + _occupancy(ct, ins)
    return pipe_bound(work)


def pipe_bound(work: Mapping[tuple[str, ...], float]) -> float:
    """Cycles to issue `work` (pipe-cycles per set of pipes a class may use): the max over pipe
    subsets S of (work confined to S) / |S|, i.e. the best spread of each class over its pipes."""
    # a binding subset is a union of class pipe sets: enumerate those unions
    best = 0.0
    keys = list(work)
    seen: set[frozenset] = set()
    for r in range(1, len(keys) + 1):
        if r > 3 and len(keys) > 12:  # bounded search; the binding set is rarely larger
            break
        for combo in itertools.combinations(keys, r):
            s = frozenset(u for k in combo for u in k)
            if s in seen:
                continue
            seen.add(s)
            w = sum(v for k, v in work.items() if set(k) <= s)
            best = max(best, w / len(s))
    return best


def _dataflow_slope(
    instrs: Sequence[Instr], timings: Sequence[ClassTiming], iterations: int = 24
) -> float:
    """Loop-carried dependency bound: the slope of an unlimited-resource ASAP schedule."""
    ready: dict[str, tuple[float, int]] = {}  # reg -> (time, producer index)
    ends = []
    for _ in range(iterations):
        end = 0.0
        for i, (ins, _ct) in enumerate(zip(instrs, timings)):
            t = 0.0
            for r in ins.uses:
                if r in ready:
                    pt_time, p = ready[r]
                    lat = _edge_latency(instrs[p], timings[p], ins, r)
                    t = max(t, pt_time + lat)
            for d in ins.defs:
                ready[d] = (t, i)
            end = max(end, t)
        ends.append(end)
    h = iterations // 2
    return (ends[-1] - ends[h - 1]) / (iterations - h)


def _block_latency(instrs, timings) -> float:
    """Critical path of one execution of the block (no back edge)."""
    ready: dict[str, tuple[float, int]] = {}
    end = 0.0
    for i, (ins, ct) in enumerate(zip(instrs, timings)):
        t = 0.0
        for r in ins.uses:
            if r in ready:
                pt_time, p = ready[r]
                t = max(t, pt_time + _edge_latency(instrs[p], timings[p], ins, r))
        for d in ins.defs:
            ready[d] = (t, i)
        end = max(end, t + _latency(ct, ins))
    return end


def _slot0_only(ins: Instr, ct: ClassTiming, q_first: bool) -> bool:
    """A Q-form (128-bit) vector data-processing instruction issues only as the first of a
    dual-issue pair (A55 SOG 4.15 note 1), unless its class row says otherwise."""
    rule = q_first if ct.qform_first_slot is None else bool(ct.qform_first_slot)
    return (
        rule
        and ins.cls.startswith("vector")
        and not ins.narrow
        and "load" not in ins.cls
        and "store" not in ins.cls
    )


def _in_order(instrs, timings, target, loop: bool, iterations: int = 16) -> float:
    """Cycle-by-cycle in-order issue (A55 SOG 3.2: dual issue, in program order).

    `timing.writeback_in_order` (off for the A55: its fixed-length pipelines complete in order
    without holding issue back, SOG 3.1) delays an instruction until its result would be
    written no earlier than every older one's, unless its class is `retire_ooo`: the rule
    llvm-mca's InOrderIssueStage applies (LastWriteBackCycle), kept to reproduce it."""
    width = int(target.timing.get("issue_width", 1))
    q_first = bool(target.timing.get("qform_first_slot", False))
    wb_order = bool(target.timing.get("writeback_in_order", False))
    free: dict[str, float] = {}  # pipe -> next free cycle
    ready: dict[str, tuple[float, int]] = {}
    cycle, slot = 0.0, 0
    starts = []
    reps = iterations if loop else 1
    last_end = 0.0
    last_wb = 0.0
    for _ in range(reps):
        for i, (ins, ct) in enumerate(zip(instrs, timings)):
            t = cycle
            for r in ins.uses:
                if r in ready:
                    pt_time, p = ready[r]
                    t = max(t, pt_time + _edge_latency(instrs[p], timings[p], ins, r))
            lat = _latency(ct, ins)
            if wb_order and not ct.retire_ooo:
                t = max(t, last_wb - lat)
            occ = _occupancy(ct, ins)
            n_units = max(1, min(len(ct.pipes), int(round(occ)) or 1))
            busy = occ / n_units
            slot0 = _slot0_only(ins, ct, q_first)
            while True:
                if t > cycle:
                    cycle, slot = t, 0
                if slot >= width or (slot0 and slot > 0):
                    cycle, slot = cycle + 1, 0
                    continue
                avail = sorted(ct.pipes, key=lambda u: free.get(u, 0.0))[:n_units]
                start = max(free.get(u, 0.0) for u in avail)
                if start > cycle:
                    cycle, slot = start, 0
                    continue
                break
            for u in avail:
                free[u] = cycle + busy
            for d in ins.defs:
                ready[d] = (cycle, i)
            if i == 0:
                starts.append(cycle)
            slot += 1
            last_end = max(last_end, cycle + lat)
            if wb_order and not ct.retire_ooo:
                last_wb = max(last_wb, cycle + lat)
    if not loop:
        return max(cycle + 1, last_end) if instrs else 0.0
    h = reps // 2
    return (starts[-1] - starts[h]) / (reps - 1 - h) if reps > 2 else cycle


def _out_of_order(instrs, timings, target, iterations: int = 8) -> float:
    """Greedy list schedule of repeated iterations: every instruction, in program order, starts
    at the first cycle >= its decode cycle (`issue_width` per cycle) and its operands' ready time
    at which one of its pipes is free (pipelined pipes take one instruction per cycle, or
    1/throughput cycles for partly pipelined ones), and not before the instruction `window`
    places older has started (`timing.window`, the reorder window; unlimited if absent). This is where a dependency chain and pipe
    pressure interact, which neither bound sees alone (a critical multiply waiting for a pipe that
    an older independent instruction holds)."""
    width = float(target.timing["issue_width"])
    window = int(target.timing.get("window", 0)) or None  # instructions in flight (ROB)
    used: dict[tuple[str, int], float] = {}  # (pipe, cycle) -> fraction taken
    jump: dict[tuple[str, float, int], int] = {}

    def room(u: str, share: float, c: int) -> int:
        """First cycle >= c where pipe u has `share` left (used[] only grows, so the
        skip pointers stay valid; path compression keeps a long busy stretch O(1))."""
        path = []
        while used.get((u, c), 0.0) + share > 1.0 + 1e-9:
            path.append(c)
            c = jump.get((u, share, c), c + 1)
        for q in path:
            jump[(u, share, q)] = c
        return c

    ready: dict[str, tuple[float, int]] = {}
    started: list[int] = []
    starts = []
    n = 0
    for _ in range(iterations):
        first = None
        for i, (ins, ct) in enumerate(zip(instrs, timings)):
            t = float(int(n / width))
            if window and n >= window:  # enters the window when the one `window` older left
                t = max(t, float(started[n - window] + 1))
            n += 1
            for r in ins.uses:
                if r in ready:
                    pt_time, p = ready[r]
                    t = max(t, pt_time + _edge_latency(instrs[p], timings[p], ins, r))
            occ = _occupancy(ct, ins)
            n_units = max(1, min(len(ct.pipes), int(round(occ)) or 1))
            share = occ / n_units  # of each pipe: < 1 shares a pipe-cycle
            cycles = max(1, int(round(share)))
            share = min(share, 1.0)
            c = int(t + 0.999999)
            while True:
                cand = sorted((room(u, share, c), u) for u in ct.pipes)[:n_units]
                c = cand[-1][0]
                free = [u for _, u in cand]
                if all(room(u, share, c + k) == c + k for u in free for k in range(cycles)):
                    break
                c += 1
            for u in free[:n_units]:
                for k in range(cycles):
                    used[(u, c + k)] = used.get((u, c + k), 0.0) + share
            for d in ins.defs:
                ready[d] = (float(c), i)
            started.append(c)
            first = c if first is None else max(first, c)
        starts.append(first)
    h = iterations // 2
    return (starts[-1] - starts[h - 1]) / (iterations - h)


def _hexagon(instrs, timings, loop: bool, iterations: int = 16) -> float:
    """Packets in order, one per cycle, plus interlock stalls (HVX PRM input latencies)."""
    packets: dict[int, list[int]] = {}
    for i, ins in enumerate(instrs):
        packets.setdefault(ins.packet if ins.packet is not None else i, []).append(i)
    order = [packets[k] for k in sorted(packets)]
    ready: dict[str, tuple[float, int]] = {}
    t = -1.0
    starts = []
    reps = iterations if loop else 1
    for _ in range(reps):
        starts.append(t + 1)
        for members in order:
            issue = t + 1
            # .cur/.tmp loads and .new stores forward within their own packet
            fwd = {r for i in members for r in instrs[i].same_packet}
            for i in members:
                ins, ct = instrs[i], timings[i]
                for r in ins.uses:
                    if r not in ready or r in fwd:
                        continue
                    pt_time, p = ready[r]
                    lat = timings[p].latency
                    if r.startswith(("v", "q")) and r != ins.acc:  # early HVX source
                        lat = max(lat, ct.input_latency)
                    issue = max(issue, pt_time + lat)
            for i in members:
                for d in instrs[i].defs:
                    ready[d] = (issue, i)
            t = issue
    if not loop:
        return t + 1
    h = reps // 2
    return (starts[-1] - starts[h]) / (reps - 1 - h)


def block_cycles(lines: Sequence[str], target, loop: bool = True) -> float:
    """Steady-state core cycles per execution of a basic block (or of a loop body, loop=True)."""
    arch = asm.isa_of(target)
    instrs = asm.parse(lines, arch)
    if not instrs:
        return 0.0
    timings = [class_timing(target, ins.cls) for ins in instrs]
    if arch == "hexagon":
        return _hexagon(instrs, timings, loop)
    width = target.timing.get("issue_width")
    if not isinstance(width, (int, float)) or width <= 0:
        raise PipelineError(
            f"{target.path}: timing.issue_width: expected a positive number, found {width!r}"
        )
    issue = len(instrs) / float(width)
    res = resource_bound(instrs, timings)
    if target.timing.get("in_order"):
        return max(issue, res, _in_order(instrs, timings, target, loop))
    if not loop:
        return max(issue, res, _block_latency(instrs, timings))
    return max(issue, res, _dataflow_slope(instrs, timings), _out_of_order(instrs, timings, target))


def issue_by(
    instrs: Sequence[Instr], target, group: Callable[[Instr], str], order: Sequence[str]
) -> dict[str, float]:
    """Issue cycles of one execution of `instrs` per `group(instr)`: on Hexagon the packets, each
    charged to the first of its instructions' groups in `order` (a load bundled with a vrmpy
    costs no cycle of its own); elsewhere executions / documented throughput per instruction
    (pipes that issue in parallel each charge their own)."""
    out: dict[str, float] = {}
    if asm.isa_of(target) == "hexagon":
        packets: dict[int, set[str]] = {}
        for i, ins in enumerate(instrs):
            packets.setdefault(ins.packet if ins.packet is not None else -1 - i, set()).add(
                group(ins)
            )
        for groups in packets.values():
            g = min(groups, key=order.index)
            out[g] = out.get(g, 0.0) + 1.0
        return out
    for ins in instrs:
        ct = class_timing(target, ins.cls)
        g = group(ins)
        out[g] = out.get(g, 0.0) + _occupancy(ct, ins) / len(ct.pipes)
    return out


def bounds(lines: Sequence[str], target, loop: bool = True) -> dict[str, float]:
    """The separate bounds behind `block_cycles` (for reports and tests)."""
    arch = asm.isa_of(target)
    instrs = asm.parse(lines, arch)
    timings = [class_timing(target, ins.cls) for ins in instrs]
    if arch == "hexagon":
        return {
            "packets": float(len({i.packet for i in instrs})),
            "cycles": _hexagon(instrs, timings, loop),
        }
    out = {
        "issue": len(instrs) / float(target.timing["issue_width"]),
        "resource": resource_bound(instrs, timings),
        "dependency": (
            _dataflow_slope(instrs, timings) if loop else _block_latency(instrs, timings)
        ),
    }
    if target.timing.get("in_order"):
        out["in_order"] = _in_order(instrs, timings, target, loop)
    elif loop:
        out["schedule"] = _out_of_order(instrs, timings, target)
    return out
