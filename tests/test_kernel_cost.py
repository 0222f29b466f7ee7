"""Cost from the generated code, codegen fidelity (accelsim.sim.kernel_cost): per-layer cycles.

Oracles: qemu's dynamic instruction counts of the same kernel objects (the block weighting),
llvm-mca-19 (LLVM's own scheduling model) timing the same weighted blocks, the roofline bounds
(peak MAC issue rate, peak bandwidth) and the code's own MAC instructions (SDOT vs FMLA counts
against the layer's MACs). The analytic-vs-codegen ratio per whole model is a benchmark
(benchmarks/codegen_vs_analytic.py): it needs whole models compiled on four targets.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from functools import cache

import numpy as np
import pytest

from accelsim.core.precision import parse_precision
from accelsim.core.target import load_target
from accelsim.kernels import compile as cg
from accelsim.kernels import emulate
from accelsim.lower.lower import lower_graph
from accelsim.model import zoo
from accelsim.model.builder import GraphBuilder
from accelsim.quant import calibdata
from accelsim.quant.ptq import quantize_graph
from accelsim.sim import analytic
from accelsim.sim import kernel_cost as codegen_model

MCA = shutil.which("llvm-mca-19")


pytestmark = pytest.mark.usefixtures("kernel_cache")


def fc_graph(k: int = 256, n: int = 32, seed: int = 0):
    rng = np.random.default_rng(seed)
    b = GraphBuilder("fc")
    x = b.input("x", (1, k))
    b.output(
        b.add(
            "dense", [x, b.const("fc.w", rng.standard_normal((n, k)) * 0.05, "float32")], name="fc"
        )
    )
    return b.build()


@cache
def quantized(kind: str, precision: str, *shape):
    g = fc_graph(*shape)
    if precision == "fp32":
        return g
    return quantize_graph(g, parse_precision(precision), calibdata.random(g, 2)).graph


def layer_cost(kind, precision, target, *shape):
    t = load_target(target)
    q = quantized(kind, precision, *shape)
    costs = codegen_model.simulate_graph(q, t, parse_precision(precision))
    return next(c for c in costs if c.name == kind)


def kernel_of(kind, precision, target, *shape):
    t = load_target(target)
    q = quantized(kind, precision, *shape)
    layer = next(L for L in lower_graph(q, t) if L.name == kind)
    return layer, cg.compile_layer(layer, t), t


# -- the CLI ---------------------------------------------------------------------------------
def test_cli_simulate_codegen_json(tmp_path):
    out = tmp_path / "out.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "accelsim",
            "simulate",
            "digits_cnn",
            "--target",
            "cortex-a76",
            "--precision",
            "w8a8,fp32",
            "--fidelity",
            "codegen",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "codegen fidelity" in proc.stdout
    doc = json.loads(out.read_text())
    assert [d["precision"] for d in doc] == ["w8a8", "fp32"]
    keys = {
        "name",
        "op",
        "macs",
        "cycles",
        "latency_s",
        "energy_j",
        "energy_breakdown",
        "bound",
        "utilization",
    }
    t = load_target("cortex-a76")
    for d in doc:
        assert d["model"] == "digits_cnn" and d["target"] == "cortex-a76"
        assert d["fidelity"] == "codegen"
        layers = d["layers"]
        assert layers and all(keys <= set(x) for x in layers)
        for k in ("cycles", "latency_s", "energy_j"):
            assert d["total"][k] == pytest.approx(sum(x[k] for x in layers), rel=1e-9)
        for x in layers:
            assert set(x["energy_breakdown"]) == {
                "compute",
                "onchip_memory",
                "offchip_memory",
                "static",
            }
            assert x["energy_j"] == pytest.approx(sum(x["energy_breakdown"].values()))
            assert x["latency_s"] == pytest.approx(x["cycles"] / t.timing["clock_hz"])
            assert x["bound"] in ("compute", "memory")
            # a layer the code did not cost says so and carries the other fidelity's label
            assert x["fidelity"] in ("codegen", "analytic")
            if x["fidelity"] == "analytic":
                assert x["notes"].startswith("analytic fallback:")
        by_name = {x["name"]: x for x in layers}
        assert by_name["flatten"]["cycles"] == 0 and by_name["flatten"]["energy_j"] == 0
        if "softmax" in by_name:  # a kernel like any other: costed from its code
            assert by_name["softmax"]["fidelity"] == "codegen"
        # the dense layer's counts are exact on every target: it is costed from its code
        fc = next(x for x in layers if x["name"] == "fc")
        assert fc["fidelity"] == "codegen" and fc["macs"] > 0 and fc["utilization"] > 0


# -- counts: the weighted blocks the model times are the instructions qemu executes ----------
@pytest.mark.parametrize("target", ["cortex-a76", "hvx-v68"])
def test_costed_instructions_equal_qemu(target):
    layer, k, t = kernel_of("fc", "w8a8", target)
    arch = "aarch64" if t.codegen.emulator.kind == "qemu-aarch64" else "hexagon"
    missing = emulate.missing_tools(arch)
    if missing:
        pytest.skip(f"cannot emulate {arch}: {', '.join(missing)} not installed")
    q = quantized("fc", "w8a8")
    from accelsim.ref.executor import run

    values = run(q, [calibdata.random(q, 1, seed=3).samples[0]], keep=True)
    runner = emulate.run_aarch64 if arch == "aarch64" else emulate.run_hexagon
    r = runner(
        k.obj_path,
        k.symbol,
        list(k.args),
        layer.pack_inputs(values),
        [k.args[-1].name],
        cpu=t.codegen.emulator.cpu,
        count=True,
    )
    kc = codegen_model.kernel_cost(k, t)
    assert not kc.blocking, kc.blocking
    comp = f"{k.symbol}_compute_"
    assert kc.function_instructions[comp] == r.function_instructions[comp]
    # the packed-call wrapper is costed on its shortest valid path
    wrap = f"__tvm_ffi_{k.symbol}"
    assert 0 < kc.function_instructions[wrap] <= r.function_instructions[wrap]
    assert sum(kc.class_counts.values()) == sum(kc.function_instructions.values())
    # 256x32 MACs in SDOT (16 MACs) / VRMPY (128 MACs) instructions: exactly the layer's MACs
    spec = t.timing["mac"]["w8a8"]
    assert kc.class_counts[spec["instruction"]] * spec["macs_per_instruction"] == 256 * 32


# -- timing: the same weighted blocks under LLVM's scheduling model --------------------------
def _mca(lines, target, loop: bool) -> float:
    mattr = ",".join(target.codegen.tvm_target.get("mattr", []))
    body = [ln for ln in lines if not ln.strip().startswith(".") and not ln.strip().endswith(":")]
    n = 100 if loop else 1
    r = subprocess.run(
        [
            MCA,
            "-mtriple=aarch64",
            f"-mcpu={target.codegen.llvm_mca_cpu}",
            f"-mattr={mattr}",
            f"-iterations={n}",
            "-all-views=false",
            "-summary-view",
        ],
        input="\n".join(body) + "\n",
        capture_output=True,
        text=True,
        check=True,
    )
    return int(re.search(r"Total Cycles:\s+(\d+)", r.stdout).group(1)) / n


@pytest.mark.skipif(MCA is None, reason="llvm-mca-19 not installed")
@pytest.mark.parametrize(
    "case", [("fc", "w8a8", 512, 64), ("fc", "fp32", 512, 64), ("fc", "w8a8", 256, 32)]
)
def test_kernel_cycles_within_25_percent_of_llvm_mca(case):
    kind, prec, *shape = case
    _, k, t = kernel_of(kind, prec, "cortex-a76", *shape)
    kc = codegen_model.kernel_cost(k, t)
    assert not kc.blocking
    from accelsim.sim.dyncount import predict_kernel

    units = codegen_model.cost_units(predict_kernel(k))
    ref = sum(u.runs * _mca(u.lines, t, u.in_loop) for u in units)
    print(
        f"\n{kind} {prec} {shape}: model {kc.compute_cycles:.0f} cycles, llvm-mca "
        f"{ref:.0f} ({kc.compute_cycles / ref - 1:+.1%})"
    )
    assert kc.compute_cycles == pytest.approx(ref, rel=0.25)


# -- roofline and monotonicity ---------------------------------------------------------------
# a whole model on the NEON cores (every layer kind); dense layers only on HVX, whose conv
# kernels take the count predictor tens of seconds each today (see dyncount)
@pytest.mark.parametrize(
    "target,model", [("cortex-a55", "digits_cnn"), ("cortex-a76", "digits_cnn"), ("hvx-v68", None)]
)
def test_no_layer_beats_the_roofline(target, model):
    t = load_target(target)
    levels = analytic.memory_levels(t)
    prec = parse_precision("w8a8")
    costs = [layer_cost("fc", "w8a8", target, k, n) for k, n in FC_SIZES]
    if model:
        g = zoo.build(model)
        q = quantize_graph(g, prec, calibdata.random(g, 1)).graph
        costs += codegen_model.simulate_graph(q, t, prec)
    assert sum(c.fidelity == "codegen" and c.macs > 0 for c in costs) >= 2
    peak = analytic.peak_macs_per_cycle(t, prec)
    for c in costs:
        assert c.cycles >= c.macs / peak * (1 - 1e-9), c.name
        for lv in levels:
            assert c.cycles >= c.bytes_moved[lv.name] / lv.bytes_per_cycle * (1 - 1e-9)
        if c.macs:
            assert 0 < c.utilization <= 1 + 1e-9
        assert c.energy_j == pytest.approx(sum(c.energy_breakdown.values()))


# dense layers: their kernels' counts are exact on every target (the conv and depthwise loop
# nests are not all resolved by accelsim.sim.dyncount yet; those layers fall back)
FC_SIZES = [(64, 16), (128, 16), (128, 32), (256, 32), (256, 64), (512, 64)]


@pytest.mark.parametrize("target", ["cortex-a76", "hvx-v68"])
def test_cycles_and_energy_grow_with_problem_size(target):
    """Cycles and energy grow with the work the vectors do: on HVX 16 output channels fill
    the same 32-lane vector as 32 (the kernel writes them padded, and the vrmpys' products are
    costed, padded lanes included), so between those two only the weights' memory energy
    grows."""
    t = load_target(target)
    lanes = 32 if target.startswith("hvx") else 4
    prev = prev_k = prev_shape = None
    for shape in FC_SIZES:
        c = layer_cost("fc", "w8a8", target, *shape)
        assert c.fidelity == "codegen", c.notes
        kc = codegen_model.kernel_cost(kernel_of("fc", "w8a8", target, *shape)[1], t)
        if prev is not None:
            assert c.energy_j > prev.energy_j, (shape, c, prev)
            if shape[0] * -(-shape[1] // lanes) > prev_shape[0] * -(-prev_shape[1] // lanes):
                assert c.cycles > prev.cycles, (shape, c, prev)
                assert kc.compute_cycles > prev_k.compute_cycles, shape
                for k in ("compute", "onchip_memory", "offchip_memory", "static"):
                    assert c.energy_breakdown[k] > prev.energy_breakdown[k], (shape, k)
            else:
                assert c.cycles == prev.cycles, (shape, c, prev)
                assert c.energy_breakdown["compute"] == prev.energy_breakdown["compute"]
        prev, prev_k, prev_shape = c, kc, shape


def test_int8_faster_than_fp32_from_the_code():
    """SDOT does 16 MACs, FMLA .4S 4: the int8 kernel issues a quarter of the MAC
    instructions, and its requantization costs less than that saving."""
    shape = (512, 64)
    macs = 512 * 64
    t = load_target("cortex-a76")
    i8 = layer_cost("fc", "w8a8", "cortex-a76", *shape)
    f32 = layer_cost("fc", "fp32", "cortex-a76", *shape)
    assert i8.fidelity == f32.fidelity == "codegen"
    assert i8.macs == f32.macs == macs
    ki = codegen_model.kernel_cost(kernel_of("fc", "w8a8", "cortex-a76", *shape)[1], t)
    kf = codegen_model.kernel_cost(kernel_of("fc", "fp32", "cortex-a76", *shape)[1], t)
    assert ki.class_counts["vector_mac_int8"] * 16 == macs  # SDOT
    assert kf.class_counts["vector_fma_fp32"] * 4 == macs  # FMLA .4S
    assert kf.class_counts.get("vector_mac_int8", 0) == 0
    assert ki.compute_cycles < kf.compute_cycles / 2
    assert i8.cycles < f32.cycles
    assert i8.energy_breakdown["compute"] < f32.energy_breakdown["compute"]


def test_warm_rerun_reads_kernel_costs_from_disk(monkeypatch):
    """A second process (in-memory memo empty) reuses the stored kernel costs: nothing is
    re-predicted, and the layer costs are identical."""
    first = layer_cost("fc", "w8a8", "cortex-a76", 128, 32)
    monkeypatch.setattr(codegen_model, "_MEMO", {})
    from accelsim.sim import dyncount

    def fail(kernel):
        raise AssertionError("predicted again")

    monkeypatch.setattr(dyncount, "predict_kernel", fail)
    t = load_target("cortex-a76")
    q = quantized("fc", "w8a8", 128, 32)
    again = next(
        c for c in codegen_model.simulate_graph(q, t, parse_precision("w8a8")) if c.name == "fc"
    )
    assert again == first


def test_target_without_count_model_falls_back_and_says_why():
    """The host (x86-64) has no dynamic-count predictor: every layer is the analytic model's
    cost, labelled so, and nothing is compiled for it."""
    t = load_target("host")
    q = quantized("fc", "w8a8", 128, 32)
    before = cg.compile_count()
    costs = codegen_model.simulate_graph(q, t, parse_precision("w8a8"))
    assert cg.compile_count() == before
    ref = analytic.simulate_graph(q, t, parse_precision("w8a8"))
    assert [c.cycles for c in costs] == [c.cycles for c in ref]
    assert all(c.fidelity == "analytic" and "x86_64" in c.notes for c in costs)


@pytest.mark.parametrize(
    "target,precision", [("cortex-a76", "w8a8"), ("cortex-a76", "fp32"), ("hvx-v68", "w8a8")]
)
def test_cycle_breakdown_accounts_for_every_compute_cycle(target, precision):
    """The report's kernel-efficiency split (kernel_cost.cycle_breakdown): its groups sum to
    the kernel's compute cycles, and the MAC-issue part is counted from the code's own MAC
    instructions (a dense layer whose channels fill the vectors: no padded lanes): on the Arm
    core the layer's MACs at the documented peak (SDOT / FMLA at their issue rate), on HVX the
    packets holding a vrmpy, between one per vrmpy and one per two (two multiply resources)."""
    shape = (512, 64)
    t = load_target(target)
    prec = parse_precision(precision)
    c = layer_cost("fc", precision, target, *shape)
    kc = codegen_model.kernel_cost(kernel_of("fc", precision, target, *shape)[1], t)
    split = c.cycle_breakdown
    assert set(split) == set(codegen_model.BREAKDOWN_GROUPS)
    assert split == codegen_model.cycle_breakdown(kc)
    assert sum(split.values()) == pytest.approx(kc.compute_cycles)
    at_peak = c.macs / analytic.peak_macs_per_cycle(t, prec)
    if target.startswith("hvx"):
        vrmpy = kc.class_counts["vector_mac_int8"]
        assert vrmpy * 128 == c.macs and vrmpy / 2 <= split["mac"] <= vrmpy
        assert sum(kc.issue_by_group.values()) == kc.packets  # one group per packet
        assert split["mac"] >= at_peak
    else:
        assert split["mac"] == pytest.approx(at_peak)
    assert all(v >= 0 for v in split.values())
    # the rest is the code's other instructions: loads of weights and activations at least
    assert split["load_store"] > 0 and c.utilization <= split["mac"] / c.cycles + 1e-9
    if precision == "w8a8":  # requantization is vector work fp32 does not do
        f32 = layer_cost("fc", "fp32", target, *shape) if target == "cortex-a76" else None
        assert split["vector_other"] > (f32.cycle_breakdown["vector_other"] if f32 else 0)


@pytest.mark.parametrize(
    "isa,line,group",
    [
        ("aarch64", "sdot v0.4s, v1.16b, v2.16b", "mac"),
        ("aarch64", "smlal v0.4s, v1.4h, v2.4h", "mac"),  # int8 depthwise, widened
        ("aarch64", "fmla v0.4s, v1.4s, v2.4s", "mac"),
        ("aarch64", "sqrdmulh v0.4s, v1.4s, v2.4s", "vector_other"),  # requantization
        ("aarch64", "ldr q0, [x1, #16]", "load_store"),
        ("aarch64", "add x1, x1, #64", "scalar"),
        ("hexagon", "v1:0.w += vrmpy(v2.ub,v3.b)", "mac"),
        ("hexagon", "v5.h += vmpyi(v6.h,v7.h)", "mac"),  # int8 depthwise, widened
        ("hexagon", "v1.w += vmpyo(v2.w,v3.h):<<1:rnd:sat:shift", "vector_other"),
        ("hexagon", "v4.w = vmpye(v2.w,v3.uh)", "vector_other"),
    ],
)
def test_requantization_multiplies_are_not_mac_work(isa, line, group):
    from accelsim import asm

    assert codegen_model._group(asm.parse([line], isa)[0]) == group
