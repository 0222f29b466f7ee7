"""A layer split over the target's hardware threads (HVX contexts; `parallel: contexts` in
`schedules/vliw-dsp.yaml`): TVM's parallel loop, its tasks run under qemu one after the other,
each walked by the count predictor with its id and the task count, timed by the slowest."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from accelsim.core.precision import parse_precision
from accelsim.core.target import load_target
from accelsim.kernels import compile as cg
from accelsim.lower.lower import lower_graph
from accelsim.model import zoo
from accelsim.quant import calibdata
from accelsim.quant.ptq import quantize_graph
from accelsim.sim import analytic, dyncount
from accelsim.sim.kernel_cost import kernel_cost

pytestmark = pytest.mark.usefixtures("kernel_cache")

# a task of TVM's parallel loop over 14 rows: the step is (14 + n - 1) / n through the
# compiler's division routine, called in the packet that forms its dividend (the callee sees
# the packet's writes); the launch goes through the GOT slot, the lambda's address is formed in
# the packet that loads the slot (that load reads the old r0)
LAUNCH = """
\t.type\tc,@function
c:
\t{
\t\tr0 = memw(r16+##__TVMBackendParallelLaunch@GOT)
\t\tr2 = #0
\t}
\t{
\t\tr0 = add(pc,##.L__tvm_parallel_lambda@PCREL)
\t\tr3 = memw(r0+#0)
\t}
\t{
\t\tcallr r3
\t}
\t{
\t\tp0 = cmp.eq(r0,#0); if (!p0.new) jump:nt .LBB0_2
\t}
\t{
\t\tr0 = #0
\t\tjumpr r31
\t}
.LBB0_2:
\t{
\t\tr0 = #-1
\t\tjumpr r31
\t}
.Lfunc_end0:
\t.type\t.L__tvm_parallel_lambda,@function
.L__tvm_parallel_lambda:
\t{
\t\tr16 = r0
\t\tr1 = memw(r1+#4)
\t}
\t{
\t\tcall __hexagon_divsi3
\t\tr0 = add(r1,#13)
\t}
\t{
\t\tr5 = mpyi(r0,r16)
\t\tr2 = #14
\t\tr1 = add(r16,#1)
\t}
\t{
\t\tr1 = mpyi(r0,r1)
\t}
\t{
\t\tr8 = min(r1,r2)
\t}
\t{
\t\tp0 = cmp.gt(r8,r5)
\t\tif (!p0.new) jump:nt .LBB1_3
\t}
\t{
\t\tr8 = sub(r8,r5)
\t}
\t{
\t\tloop0(.LBB1_2,r8)
\t}
.LBB1_2:
\t{
\t\tmemw(r7++#4) = r8
\t\tnop
\t} :endloop0
.LBB1_3:
\t{
\t\tr0 = #0
\t\tjumpr r31
\t}
.Lfunc_end1:
"""


@pytest.mark.parametrize("tasks,rows", [(1, [14]), (2, [7, 7]), (4, [4, 4, 4, 2]), (16, None)])
def test_each_task_is_walked_with_its_share(tasks, rows):
    """TVM's chunking: task t runs rows [t*step, min((t+1)*step, 14)), step = ceil(14 / n)."""
    p = dyncount.predict(LAUNCH, "c", tasks=tasks)
    assert p.exact, p.unresolved
    lam = ".L__tvm_parallel_lambda"
    labels = [b.label for b in p.blocks if b.function == lam]
    per_task = [run[labels.index(".LBB1_2")] for run in p.tasks[lam]]
    if rows is None:  # more tasks than rows: 14 run one row, 2 none
        rows = [1] * 14 + [0, 0]
    assert per_task == rows
    # the launch's result is success: the caller's error exit is never taken
    assert p.function_packets["c"] == (5, 5)
    total = next(b for b in p.blocks if b.function == lam and b.label == ".LBB1_2")
    assert total.executions == 14


@pytest.fixture(scope="module")
def hvx_conv():
    g = zoo.build("mobilenet_v2", input_size=64)
    q = quantize_graph(g, parse_precision("w8a8"), calibdata.random(g, 1, seed=0)).graph
    t = load_target("hvx-v68")
    layer = next(L for L in lower_graph(q, t) if L.name == "features.8.conv.0.0")
    return q, t, layer, cg.compile_layer(layer, t)


def test_split_layer_costs_its_slowest_task(hvx_conv):
    """4 x 4 output rows over 4 contexts: about a quarter of one thread's cycles (the launch and
    each task's set-up on top), never less; on a one-context variant of the same target the
    same code runs its loop as one task."""
    _, t, layer, k = hvx_conv
    assert layer.schedule.parallel == "oh" and k.schedule["parallel"] == "oh"
    kc = kernel_cost(k, t)
    assert kc.contexts == 4
    assert kc.work_cycles / 4 <= kc.compute_cycles <= kc.work_cycles / 3
    one = dataclasses.replace(t, timing={**t.timing, "hardware_threads": 1})
    kc1 = kernel_cost(k, one)
    assert kc1.contexts == 1 and kc1.compute_cycles == kc1.work_cycles
    # four tasks do the one task's work plus three more set-ups
    assert kc1.work_cycles < kc.work_cycles < 1.1 * kc1.work_cycles


def test_recipe_without_contexts_keeps_one_thread(hvx_conv):
    q, t, _, _ = hvx_conv
    one = dataclasses.replace(t, timing={**t.timing, "hardware_threads": 1})
    layer = next(L for L in lower_graph(q, one) if L.name == "features.8.conv.0.0")
    assert layer.schedule.parallel is None
    arm = next(L for L in lower_graph(q, load_target("cortex-a76")) if L.name == layer.name)
    assert arm.schedule.parallel is None


def test_analytic_model_shares_split_kinds_by_rows(hvx_conv):
    """The analytic model splits a conv2d as its kernel does: here the kernel's parallel loop
    is the 4 output rows (an NCHW output's axis 2; its axis 1 holds the 384 channels)."""
    q, t, layer, _ = hvx_conv
    p = parse_precision("w8a8")
    conv = q.node("features.8.conv.0.0")
    assert layer.schedule.parallel == "oh"
    rows = q.tensors[conv.outputs[0]].shape[2]
    vectors = q.tensors[conv.outputs[0]].size // 128
    # the calibrated kernels of its kind split
    assert analytic.parallel_extent(q, conv, t, p) == (rows, vectors)
    assert analytic.parallel_extent(q, conv, load_target("cortex-a76"), p) == (0, 0)
    share = analytic.split_share
    assert share(14, 98, 4) == 3.5 and share(0, 0, 4) == 1.0 and share(2, 8, 4) == 4.0
    assert list(share(np.array([14, 7, 0]), np.array([98, 49, 0]), 4)) == [3.5, 3.5, 1.0]
    one = dataclasses.replace(t, timing={**t.timing, "hardware_threads": 1})
    split = analytic.simulate_layer(q, conv, t, p)
    alone = analytic.simulate_layer(q, conv, one, p)
    assert split.contexts == 4 and alone.contexts == 1
    if split.bound == "compute":
        assert split.cycles == pytest.approx(alone.cycles / share(rows, vectors, 4))
