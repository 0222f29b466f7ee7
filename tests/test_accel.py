"""The configurable SIMD accelerator: architecture files, ISA, TVM code generation, simulator.

Bit-exactness: every program the TVM flow generates for zoo MobileNet v2 and ResNet-18 (32x32
inputs) at w4a4, w4a8, w8a8 and w16a16 reproduces the reference executor's tensor for its layer
exactly. Timing: checks a wrong model would break (roofline lower bounds, bandwidth and lane
sweeps, precision scaling, double buffering).
"""

import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.accel import alu, isa, sim
from accelsim.accel.arch import SWEEP_PARAMS, AccelConfigError, load_config
from accelsim.accel.codegen import CodegenError
from accelsim.accel.compute import layer_def
from accelsim.accel.schedule import AccelRecipeError, choose_tiles, load_recipes, schedule_layer
from accelsim.core import fixedpoint as fx
from accelsim.core.cost import totals
from accelsim.core.precision import parse_precision
from accelsim.core.target import load_target_file
from accelsim.model import zoo
from accelsim.quant import calibdata
from accelsim.quant.ptq import quantize_graph
from accelsim.ref.executor import run

PRECISIONS = ("w4a4", "w4a8", "w8a8", "w16a16")
VARIANTS = ("simd-accel", "simd-accel-edge", "simd-accel-wide")


def _quantized(model, precision, input_size=None):
    g = zoo.build(model, input_size=input_size) if input_size else zoo.build(model)
    return quantize_graph(g, parse_precision(precision), calibdata.random(g, 2)).graph


@pytest.fixture(scope="module")
def cfg():
    return load_config("simd-accel")


@pytest.fixture(scope="module")
def small_graphs():
    return {(m, p): _quantized(m, p, 32) for m in ("mobilenet_v2", "resnet18") for p in PRECISIONS}


@pytest.fixture(scope="module")
def full_costs(cfg):
    """Timing-only simulation of the full-size networks (no functional execution)."""
    out = {}
    for m in ("resnet50", "mobilenet_v2"):
        g = zoo.build(m)
        data = calibdata.random(g, 1)
        for p in ("w4a4", "w8a8", "w16a16"):
            q = quantize_graph(g, parse_precision(p), data).graph
            out[(m, p)] = (q, sim.simulate_graph(q, cfg))
    return out


# ------------------------------------------------------------------------------------------------
# architecture description
# ------------------------------------------------------------------------------------------------


def test_variants_load_with_derived_energy():
    for name in VARIANTS:
        c = load_config(name)
        assert c.clock_hz > 1e8 and c.lanes > 0
        assert set(c.native) == set(PRECISIONS) | {"w8a16"}
        # multiplier-array rates: 4x4 = 4, 4x8 = 2, 8x8 = 1, 16x16 = 1/4 per lane
        assert [c.peak_macs_per_cycle(p) / c.lanes for p in PRECISIONS] == [4, 2, 1, 0.25]
        assert c.peak_macs_per_cycle("w8a16") / c.lanes == 0.5  # 16x8: two 8x8 partial products
        e = c.energy
        assert e.mac_pj["w4a4"] < e.mac_pj["w4a8"] < e.mac_pj["w8a8"] < e.mac_pj["w16a16"]
        assert e.mac_pj["w8a8"] < e.mac_pj["w8a16"] < e.mac_pj["w16a16"]
        # SRAM energy grows with the bank size, DRAM dwarfs both
        assert 0 < e.rf_pj_per_byte < min(e.sram_pj_per_byte.values()) < e.dram_pj_per_byte
        assert any("derived" in r for r in e.rules) and any("45 nm" in r for r in e.rules)
    edge, wide = load_config("simd-accel-edge"), load_config("simd-accel-wide")
    assert not edge.double_buffering and wide.lanes == 4 * load_config().lanes


def test_with_params_changes_only_the_named_values(cfg):
    c2 = cfg.with_params(lanes=128, dma_bytes_per_cycle=8, act_kb=256)
    assert (c2.lanes, c2.dma_bytes_per_cycle, c2.scratchpads["act"].size_kb) == (128, 8, 256)
    a, b = dict(cfg.raw["accelerator"]), dict(c2.raw["accelerator"])
    changed = {k for k in a if a[k] != b[k]}
    assert changed == {"lanes", "dma", "scratchpads"}
    assert b["dma"]["latency_cycles"] == a["dma"]["latency_cycles"]
    assert c2.scratchpads["wgt"] == cfg.scratchpads["wgt"]
    assert cfg.lanes == 64  # the original is untouched
    total = cfg.with_params(scratchpad_kb=704)
    assert total.scratchpad_kb == pytest.approx(2 * cfg.scratchpad_kb)
    assert "lanes" in SWEEP_PARAMS and "dram_bytes_per_cycle" in SWEEP_PARAMS
    # energies follow a swept scratchpad size (bigger banks cost more per byte)
    assert c2.energy.sram_pj_per_byte["act"] > cfg.energy.sram_pj_per_byte["act"]


@pytest.mark.parametrize(
    "params,key,fragment",
    [
        (
            dict(macs_per_lane={"w4a4": 8}),
            "accelerator.macs_per_lane.w4a4",
            "exceed what a 8x8-bit lane multiplier can do",
        ),
        (dict(macs_per_lane={"w4a8": 1.5}), "accelerator.macs_per_lane.w4a8", "whole number"),
        (dict(lanes=0), "accelerator.lanes", "must be positive"),
        (dict(wgt_kb=-4), "accelerator.scratchpads.wgt.size_kb", "must be positive"),
        (dict(act_kb=0.125), "accelerator.scratchpads.act.size_kb", "cannot hold the smallest"),
        (dict(acc_kb=0.25), "accelerator.scratchpads.acc.size_kb", "cannot hold the smallest"),
        (dict(out_kb=2.03125), "accelerator.scratchpads.out.banks", "do not divide"),
        (dict(acc_bits=24), "accelerator.accumulator.bits", "need >= 32"),
        (dict(dma_bytes_per_cycle=0), "accelerator.dma.bytes_per_cycle", "must be positive"),
        (dict(clock_hz=-1.0), "timing.clock_hz", "expected a clock in Hz from 1e3 to 1e12"),
        (dict(banana=1), "banana", "unknown parameter"),
    ],
)
def test_with_params_rejects_impossible_designs(cfg, params, key, fragment):
    with pytest.raises(AccelConfigError) as err:
        cfg.with_params(**params)
    msg = str(err.value)
    assert cfg.path in msg and f": {key}: " in msg and fragment in msg and "\n" not in msg, msg


@pytest.mark.parametrize(
    "edit,key,fragment",
    [
        (
            ("native: [w4a4, w4a8, w8a8, w8a16, w16a16]", "native: [w4a4, w4a8, w8a8, w8a4]"),
            "accelerator.macs_per_lane",
            "the lanes cannot do it",
        ),
        (("w16a16: 0.25", "w16a16: 0.5"), "accelerator.macs_per_lane.w16a16", "exceed"),
        (
            ("act: {size_kb: 128, banks: 8,", "act: {size_kb: 128, banks: 3,"),
            "accelerator.scratchpads.act.banks",
            "do not divide",
        ),
        (
            ("act: {size_kb: 128, banks: 8,", "act: {size_kb: 0, banks: 8,"),
            "accelerator.scratchpads.act.size_kb",
            "must be positive",
        ),
        (
            ("wgt: {size_kb: 128,", "wgt: {size_kb: 0.25,"),
            "accelerator.scratchpads.wgt.size_kb",
            "cannot hold the smallest",
        ),
        (
            (
                "acc: {size_kb: 64, banks: 8, bank_width_bytes: 32, ports: 2}",
                "acc: {size_kb: 64, banks: 8, bank_width_bytes: 32, ports: 3}",
            ),
            "accelerator.scratchpads.acc.ports",
            "expected 1",
        ),
        (("lanes: 64 ", "lanes: 6.5 "), "accelerator.lanes", "expected an integer"),
    ],
)
def test_bad_accelerator_files(tmp_path, edit, key, fragment):
    from pathlib import Path

    src = (Path(__file__).resolve().parents[1] / "targets" / "simd-accel.yaml").read_text()
    assert edit[0] in src
    path = tmp_path / "bad-accel.yaml"
    path.write_text(src.replace(edit[0], edit[1], 1))
    with pytest.raises(AccelConfigError) as err:
        load_config(load_target_file(path))
    msg = str(err.value)
    assert str(path) in msg and f": {key}: " in msg and fragment in msg and "\n" not in msg, msg


# ------------------------------------------------------------------------------------------------
# the vector ALU datapath against the project's fixed-point reference
# ------------------------------------------------------------------------------------------------

I32 = st.integers(-(1 << 31), (1 << 31) - 1)


@settings(max_examples=300, deadline=None)
@given(x=I32, m=st.integers(0, (1 << 31) - 1), s=st.integers(-31, 30))
def test_alu_mbqm_matches_reference(x, m, s):
    assert int(alu.mbqm(np.int64(x), m, s)) == int(fx.multiply_by_quantized_multiplier(x, m, s))


@settings(max_examples=300, deadline=None)
@given(
    x=st.integers(-(1 << 47), (1 << 47) - 1), m=st.integers(0, (1 << 31) - 1), s=st.integers(-31, 7)
)
def test_alu_mbqm64_matches_reference(x, m, s):
    assert int(alu.mbqm64(np.int64(x), m, s)) == int(
        fx.multiply_by_quantized_multiplier_int64(x, m, s)
    )


def test_alu_reference_vectors():
    assert int(alu.rdbpot(-12, 3)) == -2 and int(alu.rdbpot(12, 3)) == 2
    assert int(alu.rdbpot(-11, 3)) == -1
    assert int(alu.srdhm(-(1 << 31), -(1 << 31))) == (1 << 31) - 1
    for x, mreal, want in ((-7, 0.5, -3), (-5, 0.5, -2), (7, 0.5, 4), (1000, 0.0037, 4)):
        m, s = fx.quantize_multiplier(mreal)
        assert int(alu.mbqm(x, m, s)) == want


# ------------------------------------------------------------------------------------------------
# code generation through TVM and the program format
# ------------------------------------------------------------------------------------------------


def test_programs_come_from_the_scheduled_tir(small_graphs, cfg):
    g = small_graphs[("resnet18", "w8a8")]
    node = g.node("layer1.0.conv1")
    ld = layer_def(g, node, cfg)
    recipe = load_recipes().recipe(ld.op_class, ld.mode)
    choice = choose_tiles(ld, recipe, cfg)
    tir = schedule_layer(ld, choice, recipe)["main"].script()
    assert 'T.call_extern("int32", "accel_vmac"' in tir  # tensorized MAC
    for scope in ("local.accel_act", "local.accel_wgt", "local.accel_acc", "local.accel_out"):
        assert scope in tir
    layer = sim.compile_node(g, node, cfg)
    vmacs = [i for i in layer.program.instructions if isinstance(i, isa.VMac)]
    # every MAC of the layer (padding lanes included) is in some VMAC instruction
    issued = sum(i.micro_ops * i.lanes * i.depth for i in vmacs)
    assert issued >= layer.program.macs and issued == pytest.approx(layer.program.macs, rel=0.01)
    # a recipe with a smaller output-column tile gives a different loop structure
    tiles = dict(layer.choice.tiles)
    assert tiles["ow"] <= cfg.acc_registers


def test_recipe_file_drives_the_tiling(tmp_path, small_graphs, cfg):
    g = small_graphs[("resnet18", "w8a8")]
    node = g.node("layer1.0.conv1")
    src = load_recipes().path
    text = (
        open(src)
        .read()
        .replace('tile: {ow: "<=acc_registers", oc: "<=512"}', 'tile: {ow: "<=2", oc: "<=64"}', 1)
    )
    p = tmp_path / "accelerator.yaml"
    p.write_text(text)
    small = sim.compile_node(g, node, cfg, load_recipes(p))
    assert small.choice.tiles["ow"] <= 2 and small.choice.tiles["oc"] == 64
    base = sim.compile_node(g, node, cfg)
    assert len(small.program) > len(base.program)
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("tensorize: accel_vmac\n", "tensorize: sdot\n", 1))
    with pytest.raises(AccelRecipeError, match=r"bad.yaml: conv2d.default.tensorize: unknown"):
        load_recipes(bad)


@pytest.mark.parametrize(
    "text,message",
    [
        (
            "conv2d:\n  default: {tile: {x: 4}}\n",
            "conv2d.default.tile.x: unknown axis for conv2d (expected one of oh, ow, oc, ic)",
        ),
        (
            "dense:\n  w8a8: {dataflows: [{order: [n], inner: []}]}\n",
            "dense.w8a8.dataflows[0].stage: missing",
        ),
        (
            "add:\n  default: {double_buffer: 2}\n",
            "add.default.double_buffer: expected true or false, found 2",
        ),
        (
            "add:\n  default: {tile: {p: 0}}\n",
            "add.default.tile.p: expected a positive int, '<=N' or '<=<accelerator parameter>', "
            "found 0",
        ),
        ("pool:\n  default: {}\n", "pool: unknown operator class (expected one of conv2d, "),
        ("conv2d:\n  w3a8: {}\n", "conv2d.w3a8: unknown precision"),
        ("[1, 2]\n", "expected a mapping of operator classes, found [1, 2]"),
    ],
)
def test_invalid_accelerator_recipes(tmp_path, text, message):
    p = tmp_path / "accelerator.yaml"
    p.write_text(text)
    with pytest.raises(AccelRecipeError, match=re.escape(f"{p}: {message}")):
        load_recipes(p)


def test_accelerator_recipe_errors_found_when_tiling(tmp_path, small_graphs, cfg):
    """Errors that need the layer or the design point name the section the key came from."""
    g = small_graphs[("resnet18", "w8a8")]
    ld = layer_def(g, g.node("layer1.0.conv1"), cfg)
    text = open(load_recipes().path).read()
    p = tmp_path / "accelerator.yaml"
    p.write_text(text.replace('ow: "<=acc_registers", oc', 'ow: "<=acc_regs", oc', 1))
    with pytest.raises(AccelRecipeError) as err:
        choose_tiles(ld, load_recipes(p).recipe("conv2d", "w8a8"), cfg)
    assert str(err.value) == (
        f"{p}: conv2d.default.tile.ow: '<=acc_regs' names no numeric accelerator parameter"
    )
    p.write_text(text.replace("conv2d:\n", "conv2d:\n  w8a8: {dataflows: []}\n", 1))
    with pytest.raises(AccelRecipeError, match=re.escape(f"{p}: conv2d.w8a8.dataflows: expected")):
        load_recipes(p)


def test_program_text_and_binary_round_trip(small_graphs, cfg):
    g = small_graphs[("mobilenet_v2", "w4a8")]
    for name in ("features.0.0", "features.2.conv.1.0", "features.3.add", "classifier.1"):
        prog = sim.compile_node(g, g.node(name), cfg).program
        back = isa.Program.parse(prog.text())
        assert back.instructions == prog.instructions
        assert dict(back.buffers) == dict(prog.buffers) and dict(back.dram) == dict(prog.dram)
        assert isa.Program.decode_instructions(prog.encode()) == prog.instructions
        ops = set(prog.counts())
        assert {"LOAD", "STORE", "SIGNAL", "WAIT"} <= ops
    with pytest.raises(isa.ProgramError, match="line 2"):
        isa.Program.parse(".program x op=conv2d precision=w8a8 macs=0\nFROB a=1\n")


@pytest.fixture(scope="module")
def mobilenet_v3(cfg):
    """MobileNetV3-Small at w8a8 and w16a16: hard-swish / hard-sigmoid (VLUT at 8 bit),
    squeeze-and-excitation multiplies broadcast per channel (VMUL), global average pools
    (depthwise convs of unit weights)."""
    out = {}
    for prec in ("w8a8", "w16a16"):
        g = zoo.build("mobilenet_v3_small", seed=3, input_size=32)
        out[prec] = quantize_graph(g, parse_precision(prec), calibdata.random(g, 2)).graph
    return out


@pytest.mark.parametrize("prec", ["w8a8", "w16a16"])
def test_vector_alu_layers_are_bit_exact(mobilenet_v3, cfg, prec):
    g = mobilenet_v3[prec]
    results = sim.verify_layers(g, cfg)
    ran = {g.node(r.layer).op for r in results}
    assert {"conv2d", "mul", "global_avg_pool", "add"} <= ran
    if prec == "w8a8":
        assert {"hard_swish", "hard_sigmoid"} <= ran  # 256-entry tables
    bad = [r for r in results if r.mismatches]
    assert not bad, bad[:5]
    # the SE multiply is broadcast: its channel vector read with stride 0 along the pixels
    mul = next(n for n in g.nodes if n.op == "mul")
    prog = sim.compile_node(g, mul, cfg).program
    vmul = [i for i in prog.instructions if isinstance(i, isa.VMul)]
    assert vmul and all(any(lp[3] == 0 and lp[0] > 1 for lp in i.loops) for i in vmul)


def test_vlut_and_vmul_programs_round_trip(mobilenet_v3, cfg):
    g = mobilenet_v3["w8a8"]
    for op, cls in (("hard_swish", isa.VLut), ("mul", isa.VMul), ("global_avg_pool", isa.VMac)):
        prog = sim.compile_node(g, next(n for n in g.nodes if n.op == op), cfg).program
        assert any(isinstance(i, cls) for i in prog.instructions), op
        assert isa.Program.parse(prog.text()).instructions == prog.instructions
        assert isa.Program.decode_instructions(prog.encode()) == prog.instructions
    lut = next(
        i
        for i in sim.compile_node(
            g, next(n for n in g.nodes if n.op == "hard_swish"), cfg
        ).program.instructions
        if isinstance(i, isa.VLut)
    )
    assert len(lut.table) == 256 and lut.lo == -128


def test_double_scale_requantization_matches_tflite_fully_connected():
    """REQUANT f64 against the reference's round(double(acc) * scale), half away from zero:
    random scales and accumulators, and exact ties (a scale of 2^-k times odd accumulators)."""
    from accelsim.ref.int_ops import round_half_away

    rng = np.random.default_rng(7)
    scales = np.concatenate([rng.uniform(1e-6, 0.5, 200), 2.0 ** -np.arange(1, 9)])
    sig, exp = alu.split_double(scales)
    assert np.all(np.ldexp(sig.astype(np.float64), exp) == scales) and sig.max() < 2**53
    acc = rng.integers(-(2**31), 2**31, (300, 1)).astype(np.int64)
    acc[:40, 0] = 2 * rng.integers(-1000, 1000, 40) + 1  # odd: ties at the power-of-two scales
    want = np.clip(round_half_away(acc * scales).astype(np.int64) + 3, -128, 127)
    got = alu.requantize_f64(acc, sig, exp, 3, -128, 127)
    assert np.array_equal(got, want)
    # the tie cases are really there (rounding half away, not to even, decides them)
    ties = acc[:40] * scales[-8:]
    assert np.any(np.abs(ties - np.floor(ties)) == 0.5)


def test_float32_scale_requantization_matches_onnx_runtime():
    """REQUANT fscale=float32 against the reference's MlasRequantizeOutput (qdq_ops.requantize):
    float32 products, ties rounded to even, clamps, u8 and s8 outputs."""
    from accelsim.core.qparams import QuantParams
    from accelsim.model.graph import TensorInfo
    from accelsim.ref import qdq_ops

    rng = np.random.default_rng(3)
    acc = rng.integers(-(2**24), 2**24, 4000).astype(np.int64)
    acc[:100] = 2 * rng.integers(-500, 500, 100) + 1  # odd: ties at a scale of 0.5
    for dtype, zp in (("uint8", 128), ("int8", -5)):
        out = TensorInfo("y", (4000,), dtype, QuantParams((0.02,), (zp,)))
        for m in (np.float32(0.5), np.float32(rng.uniform(1e-5, 1e-2))):
            want = qdq_ops.requantize(acc, m, out)
            lo, hi = (0, 255) if dtype == "uint8" else (-128, 127)
            bits = np.array(m, np.float32).view(np.int32)
            assert np.array_equal(alu.requantize_f32(acc, bits, zp, lo, hi), want)


# ------------------------------------------------------------------------------------------------
# bit-exactness with the reference executor
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["mobilenet_v2", "resnet18"])
@pytest.mark.parametrize("precision", PRECISIONS)
def test_zero_mismatches(small_graphs, cfg, model, precision):
    g = small_graphs[(model, precision)]
    results = sim.verify_layers(g, cfg)
    accelerated = {r.layer for r in results}
    expected = {n.name for n in g.nodes if n.op in ("conv2d", "dense", "add", "global_avg_pool")}
    assert accelerated == expected  # every conv, dense, add and average pool runs on it
    bad = [r for r in results if r.mismatches]
    assert not bad, bad[:5]
    assert sum(r.elements for r in results) > 0


def test_zero_mismatches_with_many_tiles(small_graphs):
    """Tiny scratchpads force multi-tile schedules (input-channel chunks, partial channel tiles,
    halo'd spatial tiles, both double-buffer slots) and the single-buffered edge design."""
    tiny = load_config().with_params(act_kb=8, wgt_kb=32, acc_kb=4, out_kb=4)
    for (m, p), cfg in (
        ((("mobilenet_v2", "w16a16")), tiny),
        ((("resnet18", "w4a4")), tiny),
        ((("resnet18", "w8a8")), load_config("simd-accel-edge")),
    ):
        g = small_graphs[(m, p)]
        layers = [l for l in sim.compile_graph(g, cfg) if l.program]
        assert sum(l.choice.tiles_count > 1 for l in layers) >= len(layers) // 2
        assert sim.verify_graph(g, cfg) == {l.node.name: 0 for l in layers}


def test_a_wrong_program_is_caught(small_graphs, cfg):
    """The comparison is sensitive: a program with a wrong output zero point mismatches."""
    g = small_graphs[("resnet18", "w8a8")]
    node = g.node("layer1.0.conv2")
    layer = sim.compile_node(g, node, cfg)
    values = run(g, sim._random_feeds(g), keep=True)
    bad = tuple(
        i
        if not isinstance(i, isa.Requant)
        else isa.Requant(i.out, i.acc, i.mult, i.shift, i.loops, i.zp + 1, i.qmin, i.qmax, i.wide)
        for i in layer.program.instructions
    )
    prog = isa.Program(
        layer.program.name,
        layer.program.op,
        layer.program.precision,
        bad,
        layer.program.buffers,
        layer.program.dram,
        layer.program.macs,
    )
    res = sim.run_program(prog, cfg, execute=True, dram=layer.ld.pack(values))
    y = layer.ld.unpack(res.dram["y"].reshape(prog.dram["y"].shape))
    assert (y != values[node.outputs[0]]).sum() > 0


def test_simulator_checks_capacity_and_deadlock(small_graphs, cfg):
    g = small_graphs[("resnet18", "w8a8")]
    prog = sim.compile_node(g, g.node("layer2.0.conv1"), cfg).program
    with pytest.raises(sim.SimulationError, match="exceeds scratchpad"):
        sim.run_program(prog, cfg.with_params(act_kb=1, acc_kb=2))
    no_signal = isa.Program(
        prog.name,
        prog.op,
        prog.precision,
        [i for i in prog.instructions if not isinstance(i, isa.Signal)],
        prog.buffers,
        prog.dram,
        prog.macs,
    )
    with pytest.raises(sim.SimulationError, match="deadlock"):
        sim.run_program(no_signal, cfg)
    assert CodegenError  # exported for users catching code-generation failures


# ------------------------------------------------------------------------------------------------
# timing sanity
# ------------------------------------------------------------------------------------------------


def _accel(costs):
    return [c for c in costs if c.fidelity == "accel-sim" and "host core" not in c.notes]


def test_no_layer_beats_its_rooflines(full_costs, cfg):
    for (m, p), (_, costs) in full_costs.items():
        peak = cfg.peak_macs_per_cycle(p)
        for c in costs:
            assert c.energy_j == pytest.approx(sum(c.energy_breakdown.values()))
            assert c.latency_s == pytest.approx(c.cycles / cfg.clock_hz)
        for c in _accel(costs):
            if c.macs:
                assert c.cycles >= c.macs / peak, (m, p, c.name)
                assert 0 < c.utilization <= 1
            b = c.bytes_moved
            assert c.cycles >= b["dram_read"] / cfg.dma_bytes_per_cycle, (m, p, c.name)
            assert c.cycles >= b["dram_write"] / cfg.dma_bytes_per_cycle, (m, p, c.name)
            assert c.cycles >= b["dram"] / cfg.dram_bytes_per_cycle, (m, p, c.name)
            assert b["dram"] >= b["dram_payload"] > 0
            assert c.bound in ("compute", "memory")


def test_halving_dma_bandwidth(full_costs, cfg):
    g, base = full_costs[("resnet50", "w8a8")]
    half = sim.simulate_graph(g, cfg.with_params(dma_bytes_per_cycle=cfg.dma_bytes_per_cycle / 2))
    compute_both = slowed = bw_bound = 0
    for b, h in zip(_accel(base), _accel(half)):
        r = h.cycles / b.cycles
        assert r >= 1 - 1e-9, b.name  # less bandwidth never helps
        if b.bound == "compute" and h.bound == "compute":
            compute_both += 1
            assert r < 1.05, (b.name, r)
        if b.bound == "memory":
            assert r > 1.02, (b.name, r)
            slowed += 1
        if b.bytes_moved["dram_read"] / cfg.dma_bytes_per_cycle >= 0.8 * b.cycles:
            assert r > 1.6, (b.name, r)  # DMA-bandwidth-bound: ~2x
            bw_bound += 1
    assert compute_both >= 40 and slowed >= 1 and bw_bound >= 1


def test_doubling_lanes(full_costs, cfg):
    g, base = full_costs[("resnet50", "w8a8")]
    wide = sim.simulate_graph(g, cfg.with_params(lanes=2 * cfg.lanes))
    checked = 0
    for b, w in zip(_accel(base), _accel(wide)):
        node = g.node(b.name)
        if node.op != "conv2d" or b.bound != "compute" or w.bound != "compute":
            continue
        if g.tensors[node.inputs[1]].shape[0] < 2 * 2 * cfg.lanes:
            continue  # fewer output channels than the doubled lanes can fill twice over
        r = w.cycles / b.cycles
        assert 0.45 <= r <= 0.6, (b.name, r)
        checked += 1
    assert checked >= 20


def _total(costs):
    return totals(costs)


@pytest.mark.parametrize("model", ["resnet50", "mobilenet_v2"])
def test_precision_scaling(full_costs, model):
    t = {p: _total(full_costs[(model, p)][1]) for p in ("w4a4", "w8a8", "w16a16")}
    assert t["w4a4"]["latency_s"] < t["w8a8"]["latency_s"] < t["w16a16"]["latency_s"]
    assert t["w4a4"]["energy_j"] < t["w8a8"]["energy_j"] < t["w16a16"]["energy_j"]
    # why: narrower operands cost less per MAC (multiplier ~ product of widths, and 2 or 4 products
    # share one accumulator add) and move fewer bytes on and off chip
    for part in ("compute", "onchip_memory", "offchip_memory", "static"):
        vals = [t[p][f"energy_{part}_j"] for p in ("w4a4", "w8a8", "w16a16")]
        assert vals[0] < vals[1] < vals[2], (model, part, vals)
    dram = {
        p: sum(c.bytes_moved.get("dram", 0) for c in full_costs[(model, p)][1])
        for p in ("w4a4", "w8a8", "w16a16")
    }
    assert dram["w4a4"] < 0.7 * dram["w8a8"] and dram["w8a8"] < 0.7 * dram["w16a16"]


def test_double_buffering_overlaps_dma_and_compute(small_graphs, cfg):
    g = _quantized("resnet18", "w8a8", 96)
    on = sim.simulate_graph(g, cfg)
    off = sim.simulate_graph(g, cfg.with_params(double_buffering=False))
    lat_on, lat_off = _total(on)["latency_s"], _total(off)["latency_s"]
    assert lat_on < lat_off
    # single-buffered, a tile's DMA and its compute serialise: each multi-tile layer takes at
    # least as long as with overlap
    for a, b in zip(_accel(on), _accel(off)):
        assert b.cycles >= 0.97 * a.cycles, a.name


def test_every_node_is_costed(full_costs):
    g, costs = full_costs[("mobilenet_v2", "w8a8")]
    assert [c.name for c in costs] == [n.name for n in g.nodes]
    host = [c for c in costs if "host core" in c.notes]
    assert {c.op for c in host} >= {"quantize", "softmax"}
    assert "global_avg_pool" not in {c.op for c in host}  # a depthwise conv of unit weights
    assert all(c.utilization == 0 for c in host)
    assert math.isclose(sum(c.macs for c in costs), g.macs())
