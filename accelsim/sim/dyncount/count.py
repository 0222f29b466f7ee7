"""The counting driver: executions of every basic block of one call, per function, callers
before callees. A function with loops is walked (`walk`); where the walk gives up, the static
analysis decides (`static`: trip counts; block executions propagated through the CFG, loop
exits taken once per entry). Branches whose side can never reach real work (a store off the
stack, a call of a local function that does work) are error exits, assumed not taken; any other
undecided branch is reported in `unresolved` and the counts become a [minimum, maximum] range
(exact over the paths of a loop-free function)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from accelsim.asm.functions import Function, split_functions
from accelsim.asm.isa import AsmError, detect_isa
from accelsim.asm.loops import FlowGraph, Loop, flow_graph
from accelsim.asm.objfile import add_padding, object_words
from accelsim.sim.dyncount.result import BlockCount, DynamicCount, DynCountError, LoopCount
from accelsim.sim.dyncount.state import LAYOUT, Unresolved
from accelsim.sim.dyncount.static import hw_trip, induction_trip
from accelsim.sim.dyncount.walk import indirect_callee, interpret

COUNTED_ISAS = ("aarch64", "hexagon")


def _stack_store(text: str, arch: str) -> bool | None:
    """True: a store to the stack; False: a store elsewhere; None: not a store."""
    if arch == "aarch64":
        m = text.split()[0]
        if not (m.startswith("st") and not m.startswith("stack")):
            return None
        return bool(re.search(r"\[sp\b", text))
    m = re.match(r"^(?:if\s*\([^)]*\)\s*)?v?mem\w*\(([^)]*)\)\s*=", text)
    if not m:
        return None
    return bool(re.match(r"\s*(r29|r30|sp|fp)\b", m.group(1)))


def _read(asm: str, where: str, obj_path: str | None) -> tuple[str, dict[str, Function], bool]:
    """(ISA, functions with the object's alignment nops, whether the nops are known)."""
    arch = detect_isa(asm)
    if arch not in COUNTED_ISAS:
        raise DynCountError(
            f"{where}: the count predictor reads {' and '.join(COUNTED_ISAS)} assembly, not {arch}"
        )
    try:
        funcs = split_functions(asm, arch, where)
        words = object_words(obj_path) if obj_path else None
    except AsmError as exc:
        raise DynCountError(str(exc)) from None
    if words is not None:
        for name, fn in funcs.items():
            if name in words:
                add_padding(fn, words[name], arch)
    return arch, funcs, words is not None


def _working(funcs: dict[str, Function], graphs: dict[str, FlowGraph], arch: str, launched) -> dict:
    """Local functions that do work: a store off the stack, or a call (or a parallel launch,
    `launched`) of one that does."""
    work = {
        name: any(_stack_store(ln, arch) is False for u in fn.units for ln in u.lines)
        for name, fn in funcs.items()
    }
    changed = True
    while changed:
        changed = False
        for name, g in graphs.items():
            callees = [c for b in g.blocks for c in b.calls] + list(launched[name].values())
            if not work[name] and any(c in funcs and work[c] for c in callees):
                work[name] = changed = True
    return work


def _launches(fn: Function, g: FlowGraph, funcs) -> dict[int, str]:
    """Block -> the local function it launches as a parallel loop's tasks: an indirect call of
    TVM's `__TVMBackendParallelLaunch(lambda, closure, num_task)` (through its GOT slot) with
    the lambda's address formed in the same block (`r0 = add(pc,##.L__tvm_parallel_lambda@PCREL)`;
    AArch64: `adrp` and `add :lo12:`)."""
    out = {}
    for k, b in enumerate(g.blocks):
        if not b.icalls:
            continue
        since = b.start  # the code since the block's previous call
        for u in range(b.start, b.end):
            if not any(re.search(r"\b(callr|blr)\b", ln) for ln in fn.units[u].lines):
                continue
            text = [ln for v in range(since, u + 1) for ln in fn.units[v].lines]
            callee = indirect_callee(fn, since, u)
            since = u + 1
            names = [m for ln in text for m in re.findall(r"[.\w$]+", ln) if m in funcs]
            if "ParallelLaunch" in callee and names:
                out[k] = names[-1]
    return out


def _call_order(entry: str, funcs, graphs: dict[str, FlowGraph], launched) -> list[str]:
    """The functions reachable from `entry` (by calls and parallel launches), callers before
    callees (kernels do not recurse)."""
    order = [entry]
    i = 0
    while i < len(order):
        g = graphs[order[i]]
        for k, b in enumerate(g.blocks):
            for c in list(b.calls) + ([launched[order[i]][k]] if k in launched[order[i]] else []):
                if c in funcs and c not in order:
                    order.append(c)
        i += 1
    return order


def _task_state(arch: str, task: int, tasks: int) -> tuple[dict, dict]:
    """Entry registers and stack words of task `task` of `tasks`: TVM's lambda is called as
    (task_id, TVMParallelGroupEnv* {void* sync_handle; int32 num_task}, closure)."""
    lay = LAYOUT[arch]
    env = lay["sp"] + 0x1000  # above the walk's stack: a caller's frame
    ptr = lay["bits"] // 8
    regs = ("x0", "x1") if arch == "aarch64" else ("r0", "r1")
    return {regs[0]: task, regs[1]: env}, {env: (0, ptr), env + ptr: (tasks, 4)}


def _reaching_work(g: FlowGraph, funcs, work: dict, arch: str, launches) -> list[bool]:
    """Blocks that can reach work (an off-stack store, a call or parallel launch of a
    working function)."""
    fn, blocks = g.function, g.blocks
    reach = [
        any(
            _stack_store(ln, arch) is False
            for u in range(b.start, b.end)
            for ln in fn.units[u].lines
        )
        or any(c in funcs and work[c] for c in b.calls)
        or (k in launches and work[launches[k]])
        for k, b in enumerate(blocks)
    ]
    changed = True
    while changed:
        changed = False
        for k in range(len(blocks)):
            if not reach[k] and any(reach[s] for s in blocks[k].succ):
                reach[k] = changed = True
    return reach


@dataclass
class _Trips:
    """Per loop header: trip count (header executions per entry), how it was found, entries
    (min, max) per call."""

    trip: dict[int, int | None]
    source: dict[int, str]
    entries: dict[int, tuple[int, int]]


def _entries(walked, g: FlowGraph, lp: Loop) -> int:
    return sum(walked[1].get((p, lp.header), 0) for p in g.preds[lp.header] if p not in lp.body)


def _trip_counts(name: str, g: FlowGraph, arch: str, walked, unresolved: list[str]) -> _Trips:
    trips = _Trips({}, {}, {})
    fn, blocks = g.function, g.blocks
    for lp in g.loops:
        h = lp.header
        if walked is not None:
            ex, ent = walked[0][h], _entries(walked, g, lp)
            trips.trip[h] = ex // ent if ent and ex % ent == 0 else None
            trips.source[h] = f"walked: {ex} header executions over {ent} entries"
            continue
        if any(blocks[latch].back_hw.get(h) for latch in lp.latches):
            trips.trip[h], trips.source[h] = hw_trip(fn, blocks, g.preds, lp, arch, g.dom)
        else:
            trips.trip[h] = induction_trip(fn, blocks, g.preds, g.dom, lp, arch, g.loops)
            trips.source[h] = "induction variable" if trips.trip[h] is not None else ""
        if trips.trip[h] is None:
            unresolved.append(
                f"{name}: loop at {blocks[h].name}: trip count not found in the assembly"
            )
    return trips


def _innermost_of(loops: list[Loop]) -> dict[int, Loop]:
    """Block -> the innermost loop holding it."""
    innermost = {}
    for lp in sorted(loops, key=lambda lp: -len(lp.body)):
        for b in lp.body:
            innermost[b] = lp
    return innermost


def _propagate(name, g: FlowGraph, calls, trips: _Trips, reach, unresolved):
    """Block executions (min, max) per call from the trip counts: through the CFG in reverse
    postorder, a header runs trip x its entries, an exit edge of a counted loop is taken once
    per entry, an error exit never; other decisions become ranges."""
    blocks, preds = g.blocks, g.preds
    lo_calls, hi_calls = calls
    header_of = {lp.header: lp for lp in g.loops}
    innermost = _innermost_of(g.loops)
    back = {(latch, lp.header) for lp in g.loops for latch in lp.latches}
    lo = [0] * len(blocks)
    hi = [0] * len(blocks)
    edge_lo: dict[tuple[int, int], int] = {}
    edge_hi: dict[tuple[int, int], int] = {}
    acyclic = not g.loops
    for k in g.rpo:
        ins_lo = sum(edge_lo.get((p, k), 0) for p in preds[k] if (p, k) not in back)
        ins_hi = sum(edge_hi.get((p, k), 0) for p in preds[k] if (p, k) not in back)
        if k == 0:
            ins_lo, ins_hi = lo_calls, hi_calls
        if k in header_of:
            t = trips.trip[k] if trips.trip[k] is not None else 1
            lo[k], hi[k] = t * ins_lo, t * ins_hi
            trips.entries[k] = (ins_lo, ins_hi)
        else:
            lo[k], hi[k] = ins_lo, ins_hi
        b = blocks[k]
        succ = b.succ
        if not succ:
            continue
        if len(succ) == 1 and not (b.cond and b.returns):
            edge_lo[(k, succ[0])], edge_hi[(k, succ[0])] = lo[k], hi[k]
            continue
        # a two-way decision: loop exit, error exit, or data
        own = innermost.get(k)
        exiting = (
            own is not None
            and any(s not in own.body for s in succ)
            and len([x for x in own.body if any(s not in own.body for s in blocks[x].succ)]) == 1
            and trips.trip[own.header] is not None
        )
        if exiting and len(succ) == 2:
            out = next(s for s in succ if s not in own.body)
            stay = next(s for s in succ if s in own.body)
            e_lo, e_hi = trips.entries[own.header]
            edge_lo[(k, out)], edge_hi[(k, out)] = e_lo, e_hi
            edge_lo[(k, stay)], edge_hi[(k, stay)] = lo[k] - e_lo, hi[k] - e_hi
            continue
        live = [s for s in succ if reach[s]]
        if b.cond and b.returns and len(succ) == 1:  # conditional return
            s = succ[0]
            v = (lo[k], hi[k]) if reach[s] else (0, 0)
            edge_lo[(k, s)], edge_hi[(k, s)] = v
            if not reach[s]:
                unresolved.append(f"{name}: conditional return in {b.name}")
            continue
        if len(live) == 1:
            for s in succ:
                v = (lo[k], hi[k]) if s == live[0] else (0, 0)
                edge_lo[(k, s)], edge_hi[(k, s)] = v
            continue
        if not live and not hi[k]:  # on an error path itself
            for s in succ:
                edge_lo[(k, s)] = edge_hi[(k, s)] = 0
            continue
        where_ = f"{name}: branch at the end of {b.name}"
        if not acyclic:
            unresolved.append(f"{where_} depends on data (inside a function with loops)")
        for s in succ:
            edge_lo[(k, s)], edge_hi[(k, s)] = 0, hi[k]
        if acyclic:
            unresolved.append(f"{where_} depends on data")
    return lo, hi


def _path_bounds(blocks, sizes, reach, rpo):
    """Fewest / most instructions (and packets) over entry-to-exit paths that avoid error
    exits, and the blocks on a shortest and on a longest such path."""
    n = len(blocks)
    best: dict[str, list] = {}
    for key, pick, idx in (
        ("min_i", min, 0),
        ("max_i", max, 0),
        ("min_p", min, 1),
        ("max_p", max, 1),
    ):
        val: list[int | None] = [None] * n
        nxt: list[int | None] = [None] * n
        for k in reversed(rpo):  # successors first
            b = blocks[k]
            choice = any(reach[s] for s in b.succ)  # error exits are pruned at a choice
            cands = [(val[s], s) for s in b.succ if (reach[s] or not choice) and val[s] is not None]
            own = sizes[k][idx]
            if b.returns and (not b.succ or b.cond):
                cands.append((0, None))
            if not cands:
                continue
            v, s = pick(cands, key=lambda c: c[0])
            val[k], nxt[k] = own + v, s
        path, k = set(), 0
        while k is not None:
            path.add(k)
            k = nxt[k]
        best[key] = [val[0] or 0, path]
    return (
        best["min_i"][0],
        best["max_i"][0],
        best["min_p"][0],
        best["max_p"][0],
        best["min_i"][1],
        best["max_i"][1],
    )


def predict(
    asm: str,
    entry: str,
    where: str = "<asm>",
    obj_path: str | None = None,
    summarise: bool = True,
    tasks: int = 1,
) -> DynamicCount:
    """Dynamic counts of one call of function `entry` of assembly text `asm`; `obj_path`, the
    object assembled from it, supplies the alignment padding the text does not show.
    `summarise=False` walks every loop iteration (slow; a check of the loop summaries).
    `tasks`: the tasks a parallel loop's launch runs (the target's hardware threads); each is
    walked on its own (`DynamicCount.tasks`)."""
    arch, funcs, padded = _read(asm, where, obj_path)
    if entry not in funcs:
        raise DynCountError(f"{where}: no function {entry!r} (functions: {', '.join(funcs)})")
    unresolved: list[str] = [] if padded else ["alignment padding unknown (no object file)"]
    graphs = {name: flow_graph(fn, arch) for name, fn in funcs.items()}
    launched = {name: _launches(fn, graphs[name], funcs) for name, fn in funcs.items()}
    work = _working(funcs, graphs, arch, launched)
    parallel = {lam for ls in launched.values() for lam in ls.values()}
    per_task: dict[str, tuple[tuple[int, ...], ...]] = {}
    calls_into: dict[str, list[int]] = {entry: [1, 1]}
    results_blocks: list[BlockCount] = []
    results_loops: list[LoopCount] = []
    per_fn: dict[str, tuple[int, int]] = {}
    per_fn_p: dict[str, tuple[int, int]] = {}
    external: dict[str, int] = {}
    for name in _call_order(entry, funcs, graphs, launched):
        g = graphs[name]
        fn, blocks, loops = g.function, g.blocks, g.loops
        lo_calls, hi_calls = calls_into.get(name, [0, 0])
        n_unresolved = len(unresolved)
        reach = _reaching_work(g, funcs, work, arch, launched[name])
        walked = None
        walk_error = None
        if name in parallel and hi_calls:
            # each task walked with its id and the task count: its share of the loop
            try:
                runs = [
                    interpret(
                        fn, blocks, loops, arch, reach, summarise, *_task_state(arch, t, tasks)
                    )
                    for t in range(tasks)
                ]
                per_task[name] = tuple(tuple(c * lo_calls for c in r[0]) for r in runs)
                edges: dict = {}
                for r in runs:
                    for e, c in r[1].items():
                        edges[e] = edges.get(e, 0) + c
                walked = ([sum(c) for c in zip(*(r[0] for r in runs))], edges)
            except Unresolved as exc:
                walk_error = f"{name}: not walked: {exc}"
        elif (loops or launched[name]) and hi_calls:
            # (a function that launches tasks: walked for the launch's result, 0 = success)
            try:
                walked = interpret(fn, blocks, loops, arch, reach, summarise)
            except Unresolved as exc:
                walk_error = f"{name}: not walked: {exc}"
        trips = _trip_counts(name, g, arch, walked, unresolved)
        lo, hi = _propagate(name, g, (lo_calls, hi_calls), trips, reach, unresolved)
        if walked is not None:
            del unresolved[n_unresolved:]
            lo = [c * lo_calls for c in walked[0]]
            hi = [c * hi_calls for c in walked[0]]
            for lp in loops:
                ent = _entries(walked, g, lp)
                trips.entries[lp.header] = (ent * lo_calls, ent * hi_calls)
        elif walk_error and len(unresolved) > n_unresolved:
            # the static analysis did not settle it either: say why the walk stopped
            unresolved.append(walk_error)
        # path bounds: exact DP over the acyclic function, else the interval counts
        sizes = [
            (sum(len(fn.units[u].lines) for u in range(b.start, b.end)), b.end - b.start)
            for b in blocks
        ]
        if not loops and walked is None and any(len(b.succ) > 1 for b in blocks):
            fmin, fmax, pmin, pmax, on_lo, on_hi = _path_bounds(blocks, sizes, reach, g.rpo)
            f_lo, f_hi = fmin * lo_calls, fmax * hi_calls
            p_lo, p_hi = pmin * lo_calls, pmax * hi_calls
            lo = [lo_calls if k in on_lo else 0 for k in range(len(blocks))]
            hi = [hi_calls if k in on_hi else 0 for k in range(len(blocks))]
        else:
            f_lo = sum(s[0] * c for s, c in zip(sizes, lo))
            f_hi = sum(s[0] * c for s, c in zip(sizes, hi))
            p_lo = sum(s[1] * c for s, c in zip(sizes, lo))
            p_hi = sum(s[1] * c for s, c in zip(sizes, hi))
        per_fn[name] = (f_lo, f_hi)
        if arch == "hexagon":
            per_fn_p[name] = (p_lo, p_hi)
        innermost = _innermost_of(loops)
        for k, b in enumerate(blocks):
            if k in launched[name]:
                acc = calls_into.setdefault(launched[name][k], [0, 0])
                acc[0] += lo[k]
                acc[1] += hi[k]
            for c in b.calls:
                if c in funcs:
                    acc = calls_into.setdefault(c, [0, 0])
                    acc[0] += lo[k]
                    acc[1] += hi[k]
                else:
                    external[c] = external.get(c, 0) + lo[k]
            if b.icalls:
                external["<indirect>"] = external.get("<indirect>", 0) + lo[k] * b.icalls
            if b.indirect and hi[k]:
                unresolved.append(f"{name}: indirect or out-of-function jump in {b.name}")
            own = innermost.get(k)
            results_blocks.append(
                BlockCount(
                    name,
                    b.name,
                    tuple(ln for u in range(b.start, b.end) for ln in fn.units[u].raw),
                    sizes[k][0],
                    sizes[k][1] if arch == "hexagon" else None,
                    lo[k],
                    hi[k],
                    blocks[own.header].name if own else None,
                    own is not None,
                )
            )
        for lp in loops:
            e = trips.entries.get(lp.header, (None, None))
            results_loops.append(
                LoopCount(
                    name,
                    blocks[lp.header].name,
                    lp.depth,
                    blocks[lp.parent.header].name if lp.parent else None,
                    trips.trip[lp.header],
                    e[0] if e[0] == e[1] else None,
                    trips.source[lp.header] or "unknown",
                    tuple(blocks[b].name for b in sorted(lp.body)),
                )
            )
    hexagon = arch == "hexagon"
    return DynamicCount(
        arch,
        entry,
        sum(v[0] for v in per_fn.values()),
        sum(v[1] for v in per_fn.values()),
        sum(v[0] for v in per_fn_p.values()) if hexagon else None,
        sum(v[1] for v in per_fn_p.values()) if hexagon else None,
        per_fn,
        per_fn_p,
        external,
        tuple(results_blocks),
        tuple(results_loops),
        tuple(dict.fromkeys(unresolved)),
        per_task,
    )


def predict_kernel(kernel, tasks: int = 1) -> DynamicCount:
    """Dynamic counts of one call of a compiled `Kernel` (entry: TVM's packed-call wrapper
    `__tvm_ffi_<symbol>`, which calls `<symbol>_compute_`); `tasks` as in `predict`."""
    path = Path(kernel.asm_path)
    try:
        asm = path.read_text()
    except OSError as exc:
        raise DynCountError(f"{path}: cannot read the kernel's assembly: {exc.strerror}") from exc
    sym = kernel.symbol
    entry = sym if sym.startswith("__tvm_ffi_") else f"__tvm_ffi_{sym}"
    return predict(asm, entry, str(path), kernel.obj_path, tasks=tasks)


def compute_function(kernel) -> str:
    """Name of the function that holds the kernel's loop nest."""
    return f"{kernel.symbol}_compute_"
