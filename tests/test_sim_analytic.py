"""Analytic-fidelity cost model: sanity checks any wrong model would break."""

import time

import numpy as np
import pytest

from accelsim.core.precision import parse_precision
from accelsim.core.target import load_target
from accelsim.model import zoo
from accelsim.model.builder import GraphBuilder
from accelsim.quant import calibdata
from accelsim.quant.ptq import quantize_graph
from accelsim.sim.analytic import memory_levels, peak_macs_per_cycle, simulate_graph

CPU_DSP = ["cortex-a55", "cortex-a76", "kryo280", "hvx-v62", "hvx-v68", "hvx-v73", "host"]


@pytest.fixture(scope="module")
def mnv2():
    g = zoo.build("mobilenet_v2")
    data = calibdata.random(g, 1)
    return {
        p: quantize_graph(g, parse_precision(p), data).graph
        for p in ("fp32", "w8a8", "w4a8", "w16a16")
    }


@pytest.mark.parametrize("target", CPU_DSP)
def test_no_layer_beats_the_roofline(mnv2, target):
    t = load_target(target)
    levels = memory_levels(t)
    for p, g in mnv2.items():
        prec = parse_precision(p)
        if p not in t.timing["mac"]:
            continue
        for c in simulate_graph(g, t, prec):
            if c.macs:
                # (a layer split over HVX contexts has their combined peak)
                peak = peak_macs_per_cycle(t, parse_precision(p)) * c.contexts
                assert c.contexts <= t.hardware_threads
                assert c.cycles >= c.macs / peak * (1 - 1e-9), (target, p, c.name)
                assert 0 < c.utilization <= 1.0 + 1e-9
            for lv in levels:
                assert c.cycles >= c.bytes_moved[lv.name] / lv.bytes_per_cycle * (1 - 1e-9)
            assert c.energy_j == pytest.approx(sum(c.energy_breakdown.values()))
            assert c.latency_s == pytest.approx(c.cycles / t.timing["clock_hz"])


def _conv(c, hw):
    b = GraphBuilder("c")
    x = b.input("x", (1, c, hw, hw))
    w = b.const("w", np.ones((c, c, 3, 3), np.float32))
    b.output(b.add("conv2d", [x, w], pads=(1, 1, 1, 1)))
    return b.build()


@pytest.mark.parametrize("target", CPU_DSP)
def test_cost_grows_monotonically_with_problem_size(target):
    t = load_target(target)
    prev = None
    for c, hw in [(8, 8), (16, 8), (16, 16), (32, 16), (64, 32), (128, 56)]:
        cost = simulate_graph(_conv(c, hw), t, parse_precision("fp32"))[0]
        if prev is not None:
            assert cost.cycles > prev.cycles and cost.energy_j > prev.energy_j
        prev = cost


def test_dot_product_and_hvx_scaling(mnv2):
    total, convs = {}, {}
    for target in ("cortex-a55", "cortex-a76", "hvx-v68"):
        t = load_target(target)
        for p, g in mnv2.items():
            costs = simulate_graph(g, t, parse_precision(p))
            total[target, p] = sum(c.latency_s for c in costs)
            convs[target, p] = sum(c.latency_s for c in costs if c.op == "conv2d")
    # SDOT (16 MACs/instruction, 2 per cycle) vs fp32 FMLA (4 MACs, 2 per cycle) on the A76:
    # the (non-depthwise) convs; the whole model also pays int8 requantization and elementwise
    # work, which the calibration takes from the generated code
    assert convs["cortex-a76", "w8a8"] < 0.5 * convs["cortex-a76", "fp32"]
    assert total["cortex-a76", "w8a8"] < total["cortex-a76", "fp32"]
    # HVX: vrmpy (128 MACs) vs 16-bit vmpy (64 MACs at half the rate)
    assert total["hvx-v68", "w8a8"] < total["hvx-v68", "w16a16"]
    # int4 weights are emulated by unpacking (extra vector ALU work per MAC instruction): a
    # compute-bound layer is never faster at w4a8 than at w8a8; packed 4-bit weights halve the
    # weight traffic, so memory-bound layers may be
    for target in ("cortex-a55", "cortex-a76", "hvx-v68"):
        t = load_target(target)
        w8 = simulate_graph(mnv2["w8a8"], t, parse_precision("w8a8"))
        w4 = simulate_graph(mnv2["w4a8"], t, parse_precision("w4a8"))
        bound = [(a, b) for a, b in zip(w8, w4) if a.macs and a.bound == b.bound == "compute"]
        assert bound, target
        # summed: per layer, the calibrated rates (a fit per layer kind) may differ by noise
        assert sum(b.cycles for _, b in bound) >= sum(a.cycles for a, _ in bound), target


@pytest.mark.parametrize("target,peak", [("kryo280", 8.0), ("cortex-a53", 16 / 3)])
def test_int8_peak_without_dot_product_is_the_pipe_models_bound(target, peak):
    """Without SDOT an int8 dot product is SMULL + SMLAL2 (8 int16 products each, Jacob et al.
    Appendix B) and one SADALP: the documented peak is what the pipe model gives that loop
    body. Kryo 280 issues SADALP on F1 beside the multiplies on F0 (A72 SOG); the A53 has one
    ASIMD multiply pipe for all three."""
    from accelsim import asm
    from accelsim.sim import pipeline

    t = load_target(target)
    body = ["smull v0.8h, v1.8b, v2.8b", "smlal2 v0.8h, v1.16b, v2.16b", "sadalp v3.4s, v0.8h"]
    instrs = asm.parse(body, "aarch64")
    bound = pipeline.resource_bound(instrs, [pipeline.class_timing(t, i.cls) for i in instrs])
    assert peak_macs_per_cycle(t, parse_precision("w8a8")) == pytest.approx(16 / bound)
    assert 16 / bound == pytest.approx(peak)


def test_analytic_mobilenet_v2_four_precisions_is_fast(mnv2):
    t = load_target("cortex-a76")
    start = time.perf_counter()
    for p, g in mnv2.items():
        simulate_graph(g, t, parse_precision(p))
    elapsed = time.perf_counter() - start
    print(f"\nanalytic MobileNet v2, 4 precisions on cortex-a76: {elapsed * 1e3:.1f} ms")
    assert elapsed < 5.0  # the goal (< 0.5 s) is reported by the benchmark; this is a guard


def test_simulate_cli_json_schema(tmp_path):
    import json
    import subprocess
    import sys

    out = tmp_path / "s.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "accelsim",
            "simulate",
            "mobilenet_v2",
            "--target",
            "hvx-v68",
            "--precision",
            "w8a8,w16a16",
            "--input-size",
            "64",
            "--json",
            out,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert [d["precision"] for d in data] == ["w8a8", "w16a16"]
    for d in data:
        assert {"model", "target", "precision", "fidelity", "total", "layers"} <= set(d)
        assert set(d["total"]) == {"cycles", "latency_s", "energy_j"}
        for layer in d["layers"]:
            assert {
                "name",
                "op",
                "macs",
                "cycles",
                "latency_s",
                "energy_j",
                "energy_breakdown",
                "bound",
                "utilization",
            } <= set(layer)
        assert d["total"]["latency_s"] == pytest.approx(sum(x["latency_s"] for x in d["layers"]))
    assert data[0]["total"]["latency_s"] < data[1]["total"]["latency_s"]
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "accelsim",
            "simulate",
            "mobilenet_v2",
            "--target",
            "hvx-v68",
            "--precision",
            "fp16",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode != 0 and "cannot run precision 'fp16'" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_simulate_dispatches_accelerator_targets_to_their_simulator():
    from accelsim.backends import fidelity_of, simulate

    g = zoo.build("resnet18", input_size=32)
    q = quantize_graph(g, parse_precision("w8a8"), calibdata.random(g, 1)).graph
    acc = load_target("simd-accel")
    assert fidelity_of(acc) == "accel-sim" and fidelity_of(load_target("cortex-a76")) == "analytic"
    costs = simulate(q, acc, parse_precision("w8a8"))
    assert {c.fidelity for c in costs if c.macs} == {"accel-sim"}
    assert sum(c.macs for c in costs) == g.macs()


def test_ceil_mode_pool_costs_the_taps_it_reads():
    """A ceil-mode window larger than the map (HF EfficientNet's AvgPool2d(1280) on a 7x7 map)
    reads the map once: it costs what the global pool of the same map costs, not kernel^2."""

    def pool(kernel: int, ceil: bool):
        b = GraphBuilder("pool")
        x = b.input("x", (1, 64, 7, 7))
        attrs = dict(kernel=(kernel, kernel), strides=(kernel, kernel), pads=(0, 0, 0, 0))
        y = b.add("avg_pool", [x], data_layout="NCHW", ceil_mode=ceil, **attrs)
        b.output(y)
        return b.build()

    t = load_target("cortex-a76")
    fp32 = parse_precision("fp32")
    big = simulate_graph(pool(1280, True), t, fp32)[0]
    exact = simulate_graph(pool(7, False), t, fp32)[0]
    assert big.cycles == pytest.approx(exact.cycles)
