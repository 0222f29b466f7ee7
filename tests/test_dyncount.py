"""Predicted dynamic instruction / packet counts (accelsim.sim.dyncount) against the counts
qemu measures running the same kernel object (accelsim.kernels.emulate, count=True).

Per target (cortex-a53, cortex-a55, cortex-a76, kryo280, hvx-v62, hvx-v68, hvx-v73) a small w8a8 graph
(3x3 conv 8->16 on 8x8 with pad 1 at stride 1, the same at stride 2, a 3x3 depthwise with pad 1,
dense 1024->16, the fixed-point softmax of its 16 logits) is lowered and compiled the normal way. The compute function
(`<symbol>_compute_`, the scheduled loop nest) is compared exactly; TVM's packed-call wrapper
branches on the type codes and strides the caller passes, so its count is predicted as a
[min, max] range that must hold the measured value.
"""

from __future__ import annotations

import time
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from accelsim.core.precision import parse_precision
from accelsim.core.target import load_target
from accelsim.kernels import compile as cg
from accelsim.kernels import emulate
from accelsim.lower.lower import lower_graph
from accelsim.model.builder import GraphBuilder
from accelsim.quant import calibdata
from accelsim.quant.ptq import quantize_graph
from accelsim.ref.executor import run
from accelsim.sim import dyncount

TARGETS = [
    "cortex-a53",
    "cortex-a55",
    "cortex-a76",
    "cortex-a720",
    "cortex-a520",
    "neoverse-v2",
    "kryo280",
    "hvx-v62",
    "hvx-v68",
    "hvx-v73",
]
LAYERS = ["conv", "conv_s2", "dw", "fc", "softmax"]


pytestmark = pytest.mark.usefixtures("kernel_cache")


def conv_graph(shape, cout, seed=0, stride2=True, dense=True):
    """3x3 pad-1 conv (cout channels), then a stride-2 conv and a depthwise conv of its output,
    and a dense layer on the depthwise output."""
    rng = np.random.default_rng(seed)
    b = GraphBuilder("small")
    x = b.input("x", shape)

    def conv(x, name, cout, groups=1, stride=1):
        c = b.shape(x)[1]
        w = b.const(f"{name}.w", rng.standard_normal((cout, c // groups, 3, 3)) * 0.3, "float32")
        bias = b.const(f"{name}.b", rng.standard_normal(cout) * 0.1, "float32")
        return b.add(
            "conv2d",
            [x, w, bias],
            name=name,
            strides=(stride, stride),
            dilations=(1, 1),
            pads=(1, 1, 1, 1),
            groups=groups,
            data_layout="NCHW",
            act_min=0.0,
        )

    a = conv(x, "conv", cout)
    if stride2:
        b.output(conv(a, "conv_s2", cout, stride=2))
    d = conv(a, "dw", cout, groups=cout)
    if dense:
        f = b.add("flatten", [d], name="flat", axis=1)
        n = int(np.prod(b.shape(d)[1:]))
        fc = b.add(
            "dense", [f, b.const("fc.w", rng.standard_normal((16, n)) * 0.05, "float32")], name="fc"
        )
        b.output(b.add("softmax", [fc], name="softmax", axis=-1))
    else:
        b.output(d)
    return b.build()


@cache
def quantized():
    g = conv_graph((1, 8, 8, 8), 16)
    q = quantize_graph(g, parse_precision("w8a8"), calibdata.random(g, 2)).graph
    return q, run(q, [calibdata.random(g, 1, seed=7).samples[0]], keep=True)


@cache
def float_graph():
    """The same layers at fp32 over 16 input channels: the stride-2 conv's 3x3 x 16 reduction
    is 36 calls of `fmla_lane` (FMLA by element) on the NEON cores."""
    g = conv_graph((1, 16, 8, 8), 16)
    return g, run(g, [calibdata.random(g, 1, seed=7).samples[0]], keep=True)


def measure(target: str, layer_name: str, graph=quantized):
    t = load_target(target)
    arch = "aarch64" if t.codegen.emulator.kind == "qemu-aarch64" else "hexagon"
    missing = emulate.missing_tools(arch)
    if missing:
        pytest.skip(
            f"cannot emulate {arch}: {', '.join(missing)} not installed "
            f"(run scripts/install-system-deps.sh)"
        )
    q, values = graph()
    layer = next(L for L in lower_graph(q, t) if L.name == layer_name)
    k = cg.compile_layer(layer, t)
    runner = emulate.run_aarch64 if arch == "aarch64" else emulate.run_hexagon
    r = runner(
        k.obj_path,
        k.symbol,
        list(k.args),
        layer.pack_inputs(values),
        [k.args[-1].name],
        cpu=t.codegen.emulator.cpu,
        count=True,
        tasks=t.hardware_threads,
    )
    return k, r, dyncount.predict_kernel(k, t.hardware_threads)


def wrapper(k):
    return f"__tvm_ffi_{k.symbol}"


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("target", TARGETS)
def test_kernel_counts_equal_qemu(target, layer):
    """conv (stride 1 and 2), depthwise, dense and softmax kernels: the compute function's predicted
    instructions (and HVX packets) equal what qemu counts, exactly, with nothing unresolved; on
    HVX the layer is split over the target's contexts (`parallel: contexts`): so do the parallel
    loops' bodies, over all their tasks (qemu runs them one after the other)."""
    k, r, p = measure(target, layer)
    comp = dyncount.compute_function(k)
    contexts = load_target(target).hardware_threads
    if contexts == 1 or layer == "softmax":
        assert not p.tasks
    elif layer != "fc":  # (its one block of output channels has nothing to split)
        assert k.schedule["parallel"] and p.tasks, (target, layer)
    for fn in [comp, *p.tasks]:
        lo, hi = p.functions[fn]
        assert lo == hi == r.function_instructions[fn], (target, layer, fn, p.unresolved)
        if p.arch == "hexagon":
            plo, phi = p.function_packets[fn]
            assert plo == phi == r.function_packets[fn]
        assert not [u for u in p.unresolved if fn in u]
    for fn, runs in p.tasks.items():  # every task has work, and the tasks' sum is the total
        assert len(runs) == contexts and all(sum(t) for t in runs)
        blocks = [b.executions for b in p.blocks if b.function == fn]
        assert [sum(c) for c in zip(*runs)] == blocks
    # the packed-call wrapper: a range over its data-dependent argument checks
    wlo, whi = p.functions[wrapper(k)]
    assert wlo <= r.function_instructions[wrapper(k)] <= whi and whi - wlo < 150
    assert p.instructions <= r.kernel_instructions <= p.instructions_max
    assert all(wrapper(k) in u for u in p.unresolved)
    # the loop nest: every loop's executions come from the walk, and a loop that is entered
    # runs at least once per entry
    loops = [lp for lp in p.loops if lp.function in (comp, *p.tasks)]
    assert loops and all(lp.source.startswith("walked") for lp in loops)
    assert all(lp.trip_count is None or lp.trip_count >= 1 for lp in loops)


@pytest.mark.parametrize("target", ["cortex-a55", "cortex-a76", "kryo280"])
def test_fp32_fmla_by_element_counts_equal_qemu(target):
    k, r, p = measure(target, "conv_s2", float_graph)
    assert k.intrinsic == "fmla_lane"
    comp = dyncount.compute_function(k)
    assert p.functions[comp] == (r.function_instructions[comp],) * 2, p.unresolved


A64 = """
\t.text
\t.type\tf,@function
f:
\tstp\tx29, x30, [sp, #-16]!
\tcbz\tx0, .LBB0_9
\tmov\tx8, xzr
.LBB0_1:
\tmov\tw9, #3
.LBB0_2:
\tstr\tw9, [x0], #4
\tsubs\tw9, w9, #1
\tb.ne\t.LBB0_2
\tadd\tx8, x8, #2
\tcmp\tx8, #10
\tb.ne\t.LBB0_1
\tldp\tx29, x30, [sp], #16
\tret
.LBB0_9:
\tbl\t__tvm_set_raised
\tmov\tw0, #-1
\tldp\tx29, x30, [sp], #16
\tret
.Lfunc_end0:
"""

HEX = """
\t.type\tg,@function
g:
\t{
\t\tp0 = cmp.eq(r0,#0); if (p0.new) jump:nt .LBB1_9
\t}
\t{
\t\tloop1(.LBB1_1,#4)
\t\tr2 = #6
\t}
.LBB1_1:
\t{
\t\tloop0(.LBB1_2,r2)
\t\tr3 = add(r3,#1)
\t}
.LBB1_2:
\t{
\t\tmemw(r0++#4) = r3
\t\tr4 = add(r4,#1)
\t} :endloop0
\t{
\t\tnop
\t} :endloop1
\t{
\t\tjumpr r31
\t}
.LBB1_9:
\t{
\t\tr0 = #-1
\t\tjumpr r31
\t}
.Lfunc_end1:
"""


def test_counts_from_hand_written_loops():
    # outer loop: x8 = 0, 2, ..., 8 -> 5 trips; inner: w9 = 3, 2, 1 -> 3 trips; the cbz to the
    # error block (no store, no call of local work) is assumed not taken
    p = dyncount.predict(A64, "f")
    assert p.exact and p.instructions == 3 + 5 * (1 + 3 * 3 + 3) + 2
    trips = {lp.header: (lp.trip_count, lp.entries) for lp in p.loops}
    assert trips == {".LBB0_1": (5, 1), ".LBB0_2": (3, 5)}
    # hardware loops: loop1 #4 around loop0 with its count in r2 = #6
    h = dyncount.predict(HEX, "g")
    assert h.exact and h.packets == 2 + 4 * (1 + 6 + 1) + 1
    assert h.instructions == 1 + 2 + 4 * (2 + 6 * 2 + 1) + 1
    assert {lp.header: lp.trip_count for lp in h.loops} == {".LBB1_1": 4, ".LBB1_2": 6}


def test_data_dependent_branch_is_reported_not_guessed():
    # a branch on a loaded value: the walk cannot know it, the counts become a range
    asm = A64.replace(
        "\tcbz\tx0, .LBB0_9\n", "\tldr\tx3, [x0]\n\tcbz\tx3, .LBB0_3\n\tstr\tx1, [x2]\n.LBB0_3:\n"
    )
    p = dyncount.predict(asm, "f")
    assert not p.exact and p.instructions_max > p.instructions
    assert any("depends on data" in u for u in p.unresolved)
    with pytest.raises(dyncount.DynCountError, match="no function 'nope'"):
        dyncount.predict(A64, "nope")


PAD = """
\t.text
\t.type\th,@function
h:
\tmov\tx8, xzr
\tmov\tw10, #1
.LBB2_1:
\tcmp\tx8, #37
\tccmp\tx8, #90, #2, hs
\tb.hs\t.LBB2_3
\tstr\tx8, [x0]
\teor\tw10, w10, #1
.LBB2_3:
\tadd\tx8, x8, #1
\tcmp\tx8, #100
\tb.ne\t.LBB2_1
\ttbz\tw10, #0, .LBB2_5
\tstr\tx8, [x0]
.LBB2_5:
\tret
.Lfunc_end2:
"""


def test_padding_branch_and_toggled_flag_walked():
    """A block run for rows 37..89 of 100 only (a compare chain as LLVM builds for padding)
    that toggles a flag, tested after the loop: the counts from brute force over the rows, by
    the walk with its loop summary and without."""
    inner = sum(1 for i in range(100) if 37 <= i < 90)
    flag = (1 + inner) % 2
    want = 2 + 100 * (3 + 3) + inner * 2 + 1 + (0 if flag == 0 else 1) + 1
    for summarise in (True, False):
        p = dyncount.predict(PAD, "h", summarise=summarise)
        assert p.exact and p.instructions == want
        assert p.unresolved == ("alignment padding unknown (no object file)",)
        assert {lp.header: (lp.trip_count, lp.entries) for lp in p.loops} == {".LBB2_1": (100, 1)}
        body = next(b for b in p.blocks if b.lines and "eor" in "".join(b.lines))
        assert body.executions == inner


def medium_layers():
    g = conv_graph((1, 8, 20, 20), 16, stride2=False, dense=False)
    return quantize_graph(g, parse_precision("w8a8"), calibdata.random(g, 2)).graph


@pytest.mark.parametrize("target", ["cortex-a55", "hvx-v68"])
def test_loop_summaries_equal_the_full_walk(target):
    """On a 20x20 problem (too slow to count under qemu in a unit test) the summarised loops
    give the same executions, block by block, as walking every iteration."""
    t = load_target(target)
    q = medium_layers()
    for layer in lower_graph(q, t):
        if layer.name not in ("conv", "dw"):
            continue
        k = cg.compile_layer(layer, t)
        asm = open(k.asm_path).read()
        entry = wrapper(k)
        n = t.hardware_threads
        fast = dyncount.predict(asm, entry, k.asm_path, k.obj_path, tasks=n)
        slow = dyncount.predict(asm, entry, k.asm_path, k.obj_path, summarise=False, tasks=n)
        comp = dyncount.compute_function(k)
        assert not [u for u in fast.unresolved + slow.unresolved if comp in u]
        assert [b.executions for b in fast.blocks] == [b.executions for b in slow.blocks]
        assert fast.tasks == slow.tasks
        work = [comp, *fast.tasks]  # (HVX: the layer's loops run in its parallel tasks)
        assert [fast.functions[f] for f in work] == [slow.functions[f] for f in work]
        # the loops really ran many iterations
        assert sum(fast.functions[f][0] for f in work) > 30_000


def tir_leaf_trips(kernel) -> int:
    def walk(loops):
        for lp in loops:
            if lp.children:
                yield from walk(lp.children)
            else:
                yield lp.trips

    return max(walk(kernel.loops))


def test_full_size_layer_resolves_and_scales():
    """ResNet-18's 3x3 conv (64 -> 64 channels on 56x56) on cortex-a76: resolved with nothing
    unresolved, and with twice the output rows the innermost loops run exactly as many more
    times as the TIR trip counts of the reduction loop say (x2)."""
    t = load_target("cortex-a76")
    out = {}
    for rows in (56, 112):
        g = GraphBuilder("r18")
        x = g.input("x", (1, 64, rows, 56))
        rng = np.random.default_rng(0)
        w = g.const("w", rng.standard_normal((64, 64, 3, 3)) * 0.1, "float32")
        bias = g.const("b", rng.standard_normal(64) * 0.1, "float32")
        g.output(
            g.add(
                "conv2d",
                [x, w, bias],
                name="conv",
                strides=(1, 1),
                dilations=(1, 1),
                pads=(1, 1, 1, 1),
                groups=1,
                data_layout="NCHW",
                act_min=0.0,
            )
        )
        graph = g.build()
        q = quantize_graph(graph, parse_precision("w8a8"), calibdata.random(graph, 2)).graph
        layer = next(L for L in lower_graph(q, t) if L.name == "conv")
        k = cg.compile_layer(layer, t)
        t0 = time.perf_counter()
        p = dyncount.predict_kernel(k)
        print(f"\n{rows}x56x64 conv on cortex-a76: predicted in {time.perf_counter() - t0:.2f} s")
        comp = dyncount.compute_function(k)
        assert not [u for u in p.unresolved if comp in u]
        lo, hi = p.functions[comp]
        assert lo == hi
        loops = [lp for lp in p.loops if lp.function == comp]
        deepest = max(lp.depth for lp in loops)
        inner = {lp.header: lp.trip_count * lp.entries for lp in loops if lp.depth == deepest}
        out[rows] = (lo, inner, tir_leaf_trips(k))
    ratio = out[112][2] / out[56][2]
    assert ratio == 2
    assert out[56][1].keys() == out[112][1].keys()
    assert all(out[112][1][h] == ratio * out[56][1][h] for h in out[56][1])
    assert abs(out[112][0] / out[56][0] - ratio) < 0.01


# the loop count is a byte of the address `adrp` gives `table` (a fake address the walk derives
# from the symbol's name), so a name hash that changed from process to process would show
SYMBOL_LOOP = """
\t.text
\t.type\ts,@function
s:
\tadrp\tx8, table
\tubfx\tx9, x8, #12, #8
\tadd\tx9, x9, #1
.LBB3_1:
\tstr\tx9, [x0], #8
\tsubs\tx9, x9, #1
\tb.ne\t.LBB3_1
\tret
.Lfunc_end3:
"""


def test_prediction_does_not_depend_on_the_hash_seed():
    """Symbol addresses come from a stable hash of the name: two processes with different
    PYTHONHASHSEED values predict the same counts (Python's `hash(str)` would differ)."""
    import os
    import subprocess
    import sys

    code = (
        "import sys; from accelsim.sim import dyncount; "
        "print(repr(dyncount.predict(sys.stdin.read(), 's')))"
    )
    root = str(Path(__file__).resolve().parents[1])
    out = []
    for seed in ("1", "2"):
        path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": path}
        r = subprocess.run(
            [sys.executable, "-c", code],
            input=SYMBOL_LOOP,
            capture_output=True,
            text=True,
            env=env,
            cwd=root,
            check=True,
        )
        out.append(r.stdout)
    assert out[0] == out[1] == repr(dyncount.predict(SYMBOL_LOOP, "s")) + "\n"
    p = dyncount.predict(SYMBOL_LOOP, "s")
    trip = p.loops[0].trip_count
    assert p.exact and 1 <= trip <= 256 and p.instructions == 3 + 3 * trip + 1


WORKSPACE = """
\t.text
\t.type\tw,@function
w:
\t{
\t\tr16 = add(pc,##_GLOBAL_OFFSET_TABLE_@PCREL)
\t}
\t{
\t\tr6 = memw(r16+##__TVMBackendAllocWorkspace@GOT)
\t}
\t{
\t\tr2 = ##538240
\t\tr3 = #0
\t}
\t{
\t\tr6 = memw(r6+#0)
\t}
\t{
\t\tcallr r6
\t}
\t{
\t\tp0 = cmp.eq(r0,#0); if (!p0.new) jump:nt .LBB0_2
\t\tr0 = #-1
\t}
\t{
\t\tjumpr r31
\t}
.LBB0_2:
\t{
\t\tloop0(.LBB0_3,#10)
\t}
.LBB0_3:
\t{
\t\tr1 = add(r1,#1)
\t\tnop
\t} :endloop0
\t{
\t\tr0 = #0
\t\tjumpr r31
\t}
.Lfunc_end0:
"""


def test_workspace_call_is_taken_to_succeed_past_a_constant_extended_immediate():
    """TVM's workspace allocation (a call through a GOT slot) returns a fresh pointer; a
    constant-extended immediate between the GOT load and the call (`r2 = ##538240`, the size)
    was read as the callee's name, the call's result stayed unknown and the walk took the
    failure exit: a silent undercount of a whole kernel (HVX depthwise layers whose padded
    input needs a workspace)."""
    p = dyncount.predict(WORKSPACE, "w")
    assert p.exact, p.unresolved
    # 8 instructions to the branch, loop0, the loop 10 x 2, the return packet 2
    assert p.instructions == 8 + 1 + 10 * 2 + 2


@cache
def hvx_graph():
    """A depthwise layer over 144 channels (two 128-channel blocks, the second padded) and an add
    of its output to its input (HVX: the window intrinsic, the 32-lane vector add), after the
    float input's quantization (the scale's reciprocal and fused multiply-adds on HVX)."""
    rng = np.random.default_rng(3)
    b = GraphBuilder("hvx")
    x = b.input("x", (1, 144, 6, 6))
    w = b.const("dw.w", rng.standard_normal((144, 1, 3, 3)) * 0.3, "float32")
    bias = b.const("dw.b", rng.standard_normal(144) * 0.1, "float32")
    d = b.add(
        "conv2d",
        [x, w, bias],
        name="dw",
        strides=(1, 1),
        dilations=(1, 1),
        pads=(1, 1, 1, 1),
        groups=144,
        data_layout="NCHW",
    )
    b.output(b.add("add", [d, x], name="add"))
    g = b.build()
    q = quantize_graph(g, parse_precision("w8a8"), calibdata.random(g, 2)).graph
    return q, run(q, [calibdata.random(g, 1, seed=7).samples[0]], keep=True)


@pytest.mark.parametrize("op", ["conv2d", "add", "quantize"])
def test_hvx_window_add_and_quantize_counts_equal_qemu(op):
    """The HVX depthwise window kernel (channel blocks), the vector add and the quantize by a
    known scale: predicted instructions and packets equal qemu's, nothing unresolved."""
    q, _ = hvx_graph()
    name = next(n.name for n in q.nodes if n.op == op)
    k, r, p = measure("hvx-v68", name, hvx_graph)
    comp = dyncount.compute_function(k)
    # the depthwise layer and the add run split over the 4 contexts (their parallel loops'
    # bodies, one per launch site); the scalar quantize on one thread
    assert bool(p.tasks) == (op != "quantize")
    for fn in [comp, *p.tasks]:
        lo, hi = p.functions[fn]
        assert lo == hi == r.function_instructions[fn], (op, fn, p.unresolved)
        plo, phi = p.function_packets[fn]
        assert plo == phi == r.function_packets[fn]
        assert not [u for u in p.unresolved if fn in u]
    if op == "conv2d":
        assert k.intrinsic == "vmpy_window"
        # two 128-channel blocks, each block's 6 rows over 4 contexts: a launch per block
        launches = [b for b in p.blocks if b.function == comp and "ParallelLaunch" in str(b)]
        assert launches or p.external_calls.get("<indirect>", 0) >= 2


def test_hexagon_register_pair_constant_is_known():
    """`rH:L = combine(#a, #b)` sets both halves (LLVM initializes loop counters that way)."""
    from accelsim.sim.dyncount.static import const_def

    assert const_def("r3:2 = combine(#1,#0)", "r2", "hexagon") == (True, 0)
    assert const_def("r3:2 = combine(#1,#0)", "r3", "hexagon") == (True, 1)
    assert const_def("r3:2 = combine(#-4,#-8)", "r2", "hexagon") == (True, -8)
    assert const_def("r3:2 = combine(r5,#0)", "r2", "hexagon") == (True, None)
    assert const_def("r3:2 = combine(#1,#0)", "r4", "hexagon") == (False, None)
