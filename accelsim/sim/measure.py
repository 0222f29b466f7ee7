"""Measured per-layer time on this machine (`host` target): the validation baseline the simulators
are compared with (`accelsim measure`).

How a graph is measured:
- every node is lowered and compiled for the host (`accelsim.kernels.compile`, cached on disk);
- every kernel gets its real inputs: the reference executor runs the graph once on `feeds` and
  each kernel's arguments are packed from its tensors, as `accelsim verify` does. Each kernel is
  called once on them and its output compared with the reference executor's (integers exact,
  float within `rtol` of max|ref|); a mismatch raises `MeasureError`, so a timed kernel is also
  a correct one;
- then the network runs as a batch-1 inference does: all kernels in graph order, one pass after
  the other. A kernel whose input argument holds exactly the output of the kernel that produced
  that tensor (same shape, dtype and element order) reads that kernel's output buffer, so
  activations are as warm in the caches as in a real run and weights are as cold. `warmup`
  passes are discarded, then each kernel call of `repeat` passes is timed on its own
  (`time.perf_counter` around the call, or the thread's CPU time, `clock="thread"`); a layer's latency is the median over passes (or the
  minimum, `statistic="min"`: on a shared VM other tenants only ever add time).
  The timed interval includes one TVM packed-function call (a few microseconds of Python and FFI
  overhead, measured by `call_overhead_s` and written into each layer's note; not subtracted);
- one thread: the host recipes have no parallel loops (`schedules/host.yaml`, `parallel` may only
  be `none`), and the TVM runtime's thread pool is configured to one worker anyway, because the
  simulators model one core.

Result: one `LayerCost` per graph node, in graph order, like `accelsim.backends.simulate`,
with `fidelity="measured"`:
- `latency_s`: the median measured seconds; `cycles` = latency x the target's
  `timing.clock_hz` (a nominal clock: this guest cannot read the core clock, see
  `targets/host.yaml`), so cycles are only as good as that number;
- energy is not measured (no power counters in this guest): `energy_j` and every
  `energy_breakdown` component are 0.0 and the note says "energy not measured";
- `bytes_moved` is empty (no cache counters); `utilization` is MACs / (measured cycles x the
  target's peak MACs per cycle); `bound` cannot be measured and is the roofline side the
  target's numbers give (the analytic model's), said in the note;
- views (reshape / flatten of a tensor already in the right element order) run no kernel: 0 s;
- nodes left on the reference path ("not lowered", e.g. a reshape that needs a transpose) have
  no kernel to time: 0 s, and
  the note says "not measured" with the reason. Totals therefore cover the lowered kernels only;
  `unmeasured` lists those nodes so comparisons can drop them from both sides.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from accelsim.core.cost import ENERGY_COMPONENTS, LayerCost
from accelsim.core.errors import AccelsimError, InputError
from accelsim.core.precision import Precision
from accelsim.core.target import Target
from accelsim.model.graph import Graph
from accelsim.model.quantization import layer_precision

FIDELITY = "measured"
STATISTICS: dict[str, Callable[[list[float]], float]] = {"median": statistics.median, "min": min}
CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "thread": time.thread_time}


class MeasureError(AccelsimError):
    """A host kernel gave a wrong result, so its time would not mean anything."""


@dataclass(frozen=True)
class Measurement:
    """Per-node measured costs plus what a reader needs to judge them."""

    costs: tuple[LayerCost, ...]
    unmeasured: tuple[str, ...]  # nodes with no kernel to time (not lowered)
    repeat: int
    warmup: int
    call_overhead_s: float  # median time of a call to an (almost) empty kernel
    pass_s: float  # time of one whole pass (all kernels), reduced like
    #                                    the layers
    chained: int  # kernel inputs read from their producer's output buffer
    statistic: str = "median"  # how a layer's samples were reduced
    clock: str = "wall"  # "wall" or "thread" (CPU time of the measuring thread)
    samples: Mapping[str, tuple[float, ...]] = dataclasses.field(default_factory=dict)


def _single_thread() -> None:
    # The runtime reads TVM_NUM_THREADS when its pool starts; the pool is also reconfigured in
    # case another caller started it (affinity mode 0 = big cores, 1 worker).
    os.environ.setdefault("TVM_NUM_THREADS", "1")
    from accelsim.core.tvm_env import import_tvm

    import_tvm()
    import tvm_ffi

    cfg = tvm_ffi.get_global_func("runtime.config_threadpool", allow_missing=True)
    if cfg is not None:
        cfg(0, 1)


def _mismatches(got: np.ndarray, ref: np.ndarray, rtol: float) -> int:
    if ref.dtype.kind == "f":
        atol = rtol * max(1.0, float(np.abs(ref).max()))
        return int((~np.isclose(got, ref, rtol=rtol, atol=atol)).sum())
    return int((got.astype(np.int64) != ref.astype(np.int64)).sum())


def _same(a: np.ndarray, b: np.ndarray, rtol: float) -> bool:
    """`a` (a producer's output) holds `b`'s elements in `b`'s order (a reshape is allowed)."""
    return a.size == b.size and a.dtype == b.dtype and _mismatches(a.reshape(b.shape), b, rtol) == 0


def _alias(buf, shape: tuple[int, ...]):
    """`buf` seen with `shape` (same memory), or None when the runtime cannot make views."""
    if tuple(buf.shape) == shape:
        return buf
    view = getattr(buf, "_create_view", None)
    return view(shape) if view is not None else None


@dataclass
class _Call:
    layer: object
    fn: Callable
    args: list
    samples: list


def _overhead_s(tvm, now: Callable[[], float], n: int = 2000) -> float:
    """Median seconds of timing one call of a 1-element kernel (Python + FFI overhead)."""
    te = tvm.te
    a = te.placeholder((1,), "float32", name="a")
    b = te.compute((1,), lambda i: a[i] + 1.0, name="b")
    lib = tvm.compile(te.create_prim_func([a, b]).with_attr("global_symbol", "noop"), target="llvm")
    fn = lib["noop"]
    dev = tvm.cpu()
    x = tvm.runtime.tensor(np.zeros(1, np.float32), dev)
    y = tvm.runtime.empty((1,), "float32", dev)
    samples = []
    for _ in range(n):
        t0 = now()
        fn(x, y)
        samples.append(now() - t0)
    return float(np.median(samples))


def measure_graph(
    graph: Graph,
    target: Target,
    precision: Precision,
    feeds: Mapping[str, np.ndarray],
    repeat: int = 10,
    warmup: int = 2,
    rtol: float = 1e-4,
    progress: Callable[[int], None] | None = None,
    statistic: str = "median",
    clock: str = "wall",
    between: Callable[[], None] | None = None,
) -> Measurement:
    """Measure every node of `graph` (already quantized at `precision`) on this machine.

    `statistic` reduces a layer's `repeat` samples: "median" (default), or "min" (the least
    disturbed pass: on a shared VM other tenants only ever add time). `clock`: "wall"
    (`time.perf_counter`) or "thread" (CPU time of this thread, `time.thread_time`: time the OS
    gave to other processes during a call is left out; a hypervisor's steal time is not).
    `progress(done)` is called after each node is compiled and checked. `between()`, when given,
    runs after every pass (warm-up passes too), outside the timed intervals: a benchmark times a
    peer tool there, so both see the same moments of this shared machine."""
    from accelsim.core.tvm_env import import_tvm
    from accelsim.kernels.compile import compile_layer, runtime_module
    from accelsim.lower.lower import STATUS_KERNEL, STATUS_VIEW, lower_graph
    from accelsim.ref.executor import run as ref_run
    from accelsim.sim.analytic import (
        memory_levels,
        peak_macs_per_cycle,
        simulate_layer,
    )

    if target.codegen.emulator.kind != "native":  # only code this machine runs can be timed
        raise InputError(
            f"target '{target.name}' ({target.path}): its kernels run under "
            f"{target.codegen.emulator.kind}, not on this machine, so they cannot be measured"
        )
    if statistic not in STATISTICS:
        raise InputError(
            f"--statistic: expected one of {', '.join(STATISTICS)}, found {statistic!r}"
        )
    if clock not in CLOCKS:
        raise InputError(f"--clock: expected one of {', '.join(CLOCKS)}, found {clock!r}")
    if repeat < 1 or warmup < 0:
        raise InputError(f"--repeat must be >= 1 and --warmup >= 0, found {repeat} and {warmup}")
    target.check_precision(precision)
    _single_thread()
    tvm = import_tvm()
    dev = tvm.cpu()
    values = ref_run(graph, feeds, keep=True)
    layers = lower_graph(graph, target, precision)
    # tensor -> the output buffer (kernel layout) of the kernel that computed it; views pass it on
    produced: dict[str, tuple[np.ndarray, object]] = {}
    calls: list[_Call] = []
    chained = 0
    for i, L in enumerate(layers):
        if L.status == STATUS_KERNEL:
            kernel = compile_layer(L, target)
            fn = runtime_module(kernel)[kernel.symbol]
            packed = L.pack_inputs(values)
            args = []
            for a in kernel.args[:-1]:
                arr = np.ascontiguousarray(packed[a.name], dtype=np.dtype(a.dtype))
                src = next(
                    (
                        produced[t]
                        for t in L.inputs
                        if t in produced and _same(produced[t][0], arr, rtol)
                    ),
                    None,
                )
                buf = _alias(src[1], arr.shape) if src is not None else None
                args.append(buf if buf is not None else tvm.runtime.tensor(arr, dev))
                chained += buf is not None
            out = kernel.args[-1]
            y = tvm.runtime.empty(tuple(out.shape), out.dtype, dev)
            args.append(y)
            # correctness: this call runs on the reference executor's inputs (an aliased
            # buffer holds exactly them, checked above)
            fn(*args)
            raw = y.numpy()
            bad = _mismatches(L.unpack_output(raw), values[L.output], rtol)
            if bad:
                raise MeasureError(
                    f"layer '{L.name}' ({L.op}): the host kernel differs from the "
                    f"reference executor in {bad} of {values[L.output].size} "
                    f"elements; its time is not reported"
                )
            produced[L.output] = (raw, y)
            calls.append(_Call(L, fn, args, []))
        elif L.status == STATUS_VIEW and L.inputs and L.inputs[0] in produced:
            produced[L.output] = produced[L.inputs[0]]
        if progress is not None:
            progress(i + 1)
    now = CLOCKS[clock]
    passes = []
    for p in range(warmup + repeat):
        t_pass = now()
        for c in calls:
            t0 = now()
            c.fn(*c.args)
            dt = now() - t0
            if p >= warmup:
                c.samples.append(dt)
        if p >= warmup:
            passes.append(now() - t_pass)
        if between is not None:
            between()
    overhead = _overhead_s(tvm, now)
    reduce = STATISTICS[statistic]
    measured = {c.layer.name: reduce(c.samples) for c in calls}

    clock_hz = float(target.timing["clock_hz"])
    levels = memory_levels(target)
    costs, unmeasured = [], []
    zero = {k: 0.0 for k in ENERGY_COMPONENTS}
    for node, L in zip(graph.nodes, layers):
        predicted = simulate_layer(graph, node, target, precision, levels)
        if L.name in measured:
            lat = measured[L.name]
            note = (
                f"measured: {statistic} of {repeat} passes on this machine ({clock} clock), "
                f"1 thread; includes "
                f"~{overhead * 1e6:.1f} us call overhead; cycles = latency x "
                f"{clock_hz:.3g} Hz (nominal clock); energy not measured; bound from the "
                f"target's numbers, not measured"
            )
        elif L.status == STATUS_VIEW:
            lat, note = 0.0, "view: no kernel"
        else:
            lat = 0.0
            note = f"not measured: {L.status} ({L.reason})"
            unmeasured.append(L.name)
        cycles = lat * clock_hz
        macs = predicted.macs
        util = 0.0
        if macs and cycles:
            util = macs / (
                cycles * peak_macs_per_cycle(target, layer_precision(graph, node, precision))
            )
        costs.append(
            LayerCost(
                name=node.name,
                op=predicted.op,
                macs=macs,
                cycles=cycles,
                latency_s=lat,
                energy_j=0.0,
                energy_breakdown=zero,
                bound=predicted.bound,
                utilization=util,
                fidelity=FIDELITY,
                bytes_moved={},
                notes=note,
            )
        )
    return Measurement(
        tuple(costs),
        tuple(unmeasured),
        repeat,
        warmup,
        overhead,
        float(reduce(passes)),
        chained,
        statistic,
        clock,
        MappingProxyType({c.layer.name: tuple(c.samples) for c in calls}),
    )
