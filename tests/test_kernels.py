"""Compiled kernels (accelsim.kernels: kernel / compile / host): the hardware instructions really
appear, recipes change the code, the Kernel record, the cache, and bit-exact runs of NEON and
HVX kernels under qemu (accelsim.kernels.emulate) against the reference executor."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from accelsim.asm import count_mnemonic
from accelsim.core.fsutil import safe_name
from accelsim.core.precision import parse_precision
from accelsim.core.target import load_target
from accelsim.kernels import compile as cg
from accelsim.kernels import emulate, host
from accelsim.kernels.kernel import instruction_mix
from accelsim.lower.lower import lower_graph, lower_node
from accelsim.lower.schedule import recipes_for
from accelsim.model import zoo
from accelsim.quant import calibdata
from accelsim.quant.ptq import quantize_graph
from accelsim.ref.executor import run

pytestmark = pytest.mark.usefixtures("kernel_cache")


@cache
def quantized(model: str, precision: str):
    g = zoo.build(model, input_size=32)
    q = quantize_graph(g, parse_precision(precision), calibdata.random(g, 2)).graph
    return q, run(q, [calibdata.random(g, 1, seed=7).samples[0]], keep=True)


def contraction_kernels(model: str, target: str, precision: str = "w8a8"):
    """Compiled kernels of every conv2d (not depthwise) and dense layer."""
    q, _ = quantized(model, precision)
    t = load_target(target)
    layers = [L for L in lower_graph(q, t) if L.op_class in ("conv2d", "dense")]
    return [(L, cg.compile_layer(L, t)) for L in layers]


# -- the hardware is really used -------------------------------------------------------------
# 4 activations broadcast, 16 loaded and taken by element, or (dense layers) 16 loaded and
# dotted with one channel's 16 weights into 4 partial sums
SDOT = {"sdot", "sdot_lane", "sdot_partials"}


def test_sdot_in_every_int8_conv_and_fc_kernel_on_cortex_a76():
    ks = contraction_kernels("mobilenet_v2", "cortex-a76")
    assert len(ks) == 36
    counts = {L.name: count_mnemonic(Path(k.asm_path).read_text(), "sdot") for L, k in ks}
    assert min(counts.values()) > 0, {n: c for n, c in counts.items() if not c}
    assert all(  # by element (sdot_lane) where the reduction is long enough
        k.intrinsic in SDOT and k.instruction_mix.mnemonics.get("sdot", 0) > 0 for _, k in ks
    )
    assert {k.intrinsic for _, k in ks} == SDOT


@pytest.mark.parametrize("precision", ["w4a4", "w8a4"])
def test_four_bit_activations_use_sdot_too(precision):
    """int4 activations are stored one per byte: the int8 dot product applies unchanged (4-bit
    weights widened in registers first, as at w4a8)."""
    ks = contraction_kernels("mobilenet_v2", "cortex-a76", precision)
    assert len(ks) == 36
    assert all(
        k.intrinsic in SDOT and count_mnemonic(Path(k.asm_path).read_text(), "sdot") for _, k in ks
    )


def test_sdot_on_cortex_a55():
    ks = contraction_kernels("resnet18", "cortex-a55")
    assert len(ks) == 21
    for L, k in ks:
        asm = Path(k.asm_path).read_text()
        assert k.intrinsic in SDOT and count_mnemonic(asm, "sdot") > 0, L.name


def test_no_sdot_on_cortex_a53_but_smull_and_sadalp():
    ks = contraction_kernels("resnet18", "cortex-a53")
    for L, k in ks:
        asm = Path(k.asm_path).read_text()
        assert count_mnemonic(asm, "sdot") == 0 and count_mnemonic(asm, "smmla") == 0, L.name
        assert count_mnemonic(asm, "smull") > 0 and count_mnemonic(asm, "sadalp") > 0, L.name


def test_vrmpy_in_every_int8_conv_and_fc_kernel_on_hvx():
    """Every int8 conv / dense kernel multiplies with the vector x scalar vrmpy (two per
    packet), but the first conv, whose 3 input channels fill no byte-sum call of the activation
    sums: the vector x vector vrmpy; the scalar `vrmpybsu` of the sums is not a vector MAC."""
    ks = contraction_kernels("resnet18", "hvx-v68")
    assert len(ks) == 21
    for L, k in ks:
        asm = Path(k.asm_path).read_text()
        if L.name == "conv1":
            vector = len(re.findall(r"vrmpy\(v\d+\.b,v\d+\.b\)", asm))
            assert k.intrinsic == "vrmpy" and vector > 0, L.name
        else:
            vector = len(re.findall(r"vrmpy\(v\d+\.ub,r\d+\.b\)", asm))
            assert k.intrinsic == "vrmpy_rt" and vector > 0, L.name
        mix = k.instruction_mix
        assert mix.total_packets > mix.packets > 0
        assert mix.total["vector_mac"] >= vector


def test_vdmpy_in_every_int16_conv_and_fc_kernel_on_hvx():
    ks = contraction_kernels("resnet18", "hvx-v68", "w16a16")
    assert len(ks) == 21
    for L, k in ks:
        asm = Path(k.asm_path).read_text()
        assert k.intrinsic == "vdmpy" and L.signature["acc"] == "int64", L.name
        assert count_mnemonic(asm, "vdmpy") > 0 and "vdmpy(v" in asm, L.name
        assert k.instruction_mix.total["vector_mac"] >= count_mnemonic(asm, "vdmpy")


def _wide_dense(K: int = 300, O: int = 40):
    """A w16a16 dense layer whose running int64 sums cross the int32 range many times and come
    back: inputs quantize to +-32767/-32768, the first half of the weights make every product
    +2^30, the next ones -2^30, the last weight a per-channel offset (so outputs are not
    saturated)."""
    from accelsim.model.builder import GraphBuilder

    rng = np.random.default_rng(0)
    b = GraphBuilder("fc16")
    x = b.input("x", (1, K))
    b.output(
        b.add(
            "dense",
            [
                x,
                b.const("fc.w", rng.standard_normal((O, K)), "float32"),
                b.const("fc.b", rng.standard_normal(O), "float32"),
            ],
            name="fc",
        )
    )
    g = b.build()
    q = quantize_graph(g, parse_precision("w16a16"), calibdata.random(g, 2)).graph
    sign = np.where(rng.random(K) < 0.5, 1, -1)
    w = np.empty((O, K), np.int64)
    w[:, : K // 2] = 32767 * sign[: K // 2]
    w[:, K // 2 :] = -32767 * sign[K // 2 :]
    w[:, -1] = np.arange(O) * 700 - 14000
    return q, w, (sign * 1e9).astype(np.float32)[None]


# target, full-range weights, input channels -> (intrinsic chosen, intrinsic passed over for
# the -32768 weight); NEON: over 8 input channels into 2 int64 partial sums where the channels
# fill them (304), else 4 output channels by a broadcast activation pair (300)
_WIDE_DENSE = {
    ("hvx-v68", False, 300): ("vdmpy", None),
    ("hvx-v68", True, 300): (None, "vdmpy"),  # scalar code
    ("cortex-a55", False, 300): ("smull_smlal", None),
    ("cortex-a55", True, 300): ("smull_sadalp", "smull_smlal"),
    ("cortex-a55", False, 304): ("smull_smlal2", None),
    ("cortex-a55", True, 304): ("smull_sadalp", "smull_smlal2"),
}


@pytest.mark.parametrize("target_name,full_range,channels", list(_WIDE_DENSE))
def test_int16_dense_exact_when_sums_leave_int32(target_name, full_range, channels):
    """int16 x int16 sums in int64 under qemu against the reference executor's: every pair of
    products is 32768 x 32767 of one sign (the largest pair sum the restricted weight range
    allows) and the running sums leave int32 many times. HVX: vdmpy's int64 accumulation
    (low/high words with carries); NEON: the 16-bit `smull_smlal` (two products per int32
    lane, then SADALP .2D). A -32768 weight, where a pair sum could overflow, sends the layer
    to the next choice (HVX: scalar code; NEON: `smull_sadalp`, one product per lane), with
    the reason recorded."""
    arch = "hexagon" if target_name.startswith("hvx") else "aarch64"
    if emulate.missing_tools(arch):
        pytest.skip(f"no {arch} toolchain")
    q, w, feed = _wide_dense(K=channels)
    if full_range:
        w[3, 7] = -32768
    wname = q.node("fc").inputs[1]
    q = q.replace(constants={**q.constants, wname: w.astype(np.int16)})
    values = run(q, [feed], keep=True)
    xq = values[q.node("fc").inputs[0]].astype(np.int64)
    assert set(np.unique(xq)) == {-32768, 32767}
    assert np.abs(np.cumsum(xq[0] * w[0])).max() > 2**37  # far outside int32
    assert np.abs((xq[0] * w[0]).reshape(-1, 2).sum(1)).max() > 2**31 - 2**17  # pair sums
    t = load_target(target_name)
    layer = lower_node(q, q.node("fc"), t)
    chosen, passed_over = _WIDE_DENSE[target_name, full_range, channels]
    assert layer.schedule.intrinsic == chosen
    if passed_over:
        assert any("-32768" in n and f"'{passed_over}'" in n for n in layer.schedule.notes)
    k = cg.compile_layer(layer, t)
    if arch == "aarch64":
        asm = Path(k.asm_path).read_text()
        assert layer.signature["acc"] == "int64" and count_mnemonic(asm, "sadalp") > 0
        smlal = "smlal2" if chosen == "smull_smlal2" else "smlal"
        assert (count_mnemonic(asm, smlal) > 0) != full_range
    runner = emulate.run_aarch64 if arch == "aarch64" else emulate.run_hexagon
    r = runner(
        k.obj_path,
        k.symbol,
        list(k.args),
        layer.pack_inputs(values),
        ["y"],
        cpu=t.codegen.emulator.cpu,
    )
    ref = values[layer.output]
    assert len(np.unique(ref)) == ref.size  # not clamped to one value
    np.testing.assert_array_equal(layer.unpack_output(r.outputs["y"]), ref)


def _int8_dense(K: int = 64, O: int = 32):
    """A w8a8 dense layer whose int16 pair sums in `smull_smlal` come within 2 % of 2^15: inputs
    quantize to -128/126, weights are +-127 with the inputs' signs on every channel but a
    per-channel count of flipped ones (so the outputs spread out instead of saturating)."""
    from accelsim.model.builder import GraphBuilder

    sign = np.where(np.arange(K) % 2 == 0, 1, -1)
    w = np.tile(127 * sign, (O, 1)).astype(np.int64)
    for o in range(O):
        w[o, : o * K // (2 * O)] *= -1
    feed = sign.astype(np.float32)[None]
    b = GraphBuilder("fc8")
    x = b.input("x", (1, K))
    b.output(b.add("dense", [x, b.const("fc.w", w / 127.0, "float32")], name="fc"))
    g = b.build()
    # calibrated on the feed itself: the output range covers every channel's sum
    calib = calibdata.from_array(np.concatenate([feed, -feed]), g, "the feed")
    q = quantize_graph(g, parse_precision("w8a8"), calib).graph
    return q, w, feed


# input channels -> the Appendix B pairing kryo280 takes: over 16 input channels of one output
# channel into 4 partial sums (accelsim.lower.partials), or of 4 output channels' weights by a
# broadcast pair of activations where the channels do not fill 16
_PAIRINGS = {64: "smull_smlal2", 60: "smull_smlal"}


@pytest.mark.parametrize("channels", list(_PAIRINGS))
@pytest.mark.parametrize("full_range", [False, True])
def test_smull_smlal_pairs_exact_at_the_int16_limit(full_range, channels):
    """Appendix B pairing under qemu-aarch64 on kryo280 (no dot product): every pair of
    products is 128 x 127 of one sign, the largest int16 sum the restricted weight range
    allows (both pairings: channels k and k + 1 of 4, k and k + 8 of 16, have one sign); a
    -128 weight sends the layer to the next intrinsic of the recipe, with the reason
    recorded."""
    if emulate.missing_tools("aarch64"):
        pytest.skip("no aarch64 toolchain")
    q, w, feed = _int8_dense(K=channels)
    if full_range:
        w[3, 7] = -128
    wname = q.node("fc").inputs[1]
    q = q.replace(constants={**q.constants, wname: w.astype(np.int8)})
    values = run(q, [feed], keep=True)
    xq = values[q.node("fc").inputs[0]].astype(np.int64)
    assert xq.min() == -128 and xq.max() >= 126  # pair sums up to 127 x (128 + 126)
    t = load_target("kryo280")
    layer = lower_node(q, q.node("fc"), t)
    pairing = _PAIRINGS[channels]
    if full_range:
        assert layer.schedule.intrinsic == "smull_sadalp"
        assert any("-128" in n and f"'{pairing}'" in n for n in layer.schedule.notes)
    else:
        assert layer.schedule.intrinsic == pairing
    k = cg.compile_layer(layer, t)
    asm = Path(k.asm_path).read_text()
    assert count_mnemonic(asm, "sqrdmulh") > 0 and count_mnemonic(asm, "srshl") > 0
    if not full_range:
        smlal = "smlal2" if pairing == "smull_smlal2" else "smlal"
        assert count_mnemonic(asm, smlal) > 0 and count_mnemonic(asm, "sadalp") > 0
    if pairing == "smull_smlal2" and not full_range:  # 4 channels' partials: 3 ADDPs
        assert count_mnemonic(asm, "addp") > 0
    r = emulate.run_aarch64(
        k.obj_path,
        k.symbol,
        list(k.args),
        layer.pack_inputs(values),
        ["y"],
        cpu=t.codegen.emulator.cpu,
    )
    ref = values[layer.output]
    assert len(np.unique(ref)) > ref.size // 2  # not clamped to a few values
    np.testing.assert_array_equal(layer.unpack_output(r.outputs["y"]), ref)


def _wide_depthwise(C: int = 128):
    """A w16a16 3x3 depthwise layer (no padding, one output pixel) whose running int64 sums
    leave int32: the first five taps make +2^30 products, the next three -2^30, the last tap
    a per-channel offset, for inputs that quantize to +-32767/-32768."""
    from accelsim.model.builder import GraphBuilder

    rng = np.random.default_rng(1)
    b = GraphBuilder("dw16")
    x = b.input("x", (1, C, 3, 3))
    w = b.const("dw.w", rng.standard_normal((C, 1, 3, 3)), "float32")
    b.output(
        b.add(
            "conv2d",
            [x, w, b.const("dw.b", rng.standard_normal(C), "float32")],
            name="dw",
            strides=(1, 1),
            dilations=(1, 1),
            pads=(0, 0, 0, 0),
            groups=C,
            data_layout="NCHW",
        )
    )
    g = b.build()
    q = quantize_graph(g, parse_precision("w16a16"), calibdata.random(g, 2)).graph
    sign = np.where(rng.random((C, 9)) < 0.5, 1, -1)
    taps = np.empty((C, 9), np.int64)
    taps[:, :5] = 32767 * sign[:, :5]
    taps[:, 5:8] = -32767 * sign[:, 5:8]
    taps[:, 8] = np.arange(C) * 100 - 6400
    return q, taps.reshape(C, 1, 3, 3), (sign * 1e9).astype(np.float32).reshape(1, C, 3, 3)


@pytest.mark.parametrize("full_range", [False, True])
def test_depthwise_tap_pairs_exact_at_the_int16_limit(full_range):
    """int8 depthwise with two taps' products summed in int16 (recipe `pair_taps`) under
    qemu-aarch64: inputs -128/126 and weights +-127 with the inputs' signs make each pair sum
    127 x (128 + 126) in magnitude, padded borders included; a -128 weight keeps the taps
    apart, with the reason recorded."""
    from accelsim.model.builder import GraphBuilder

    if emulate.missing_tools("aarch64"):
        pytest.skip("no aarch64 toolchain")
    C, S = 32, 5
    rng = np.random.default_rng(2)
    sign = np.where(rng.random((1, C, S, S)) < 0.5, 1.0, -1.0).astype(np.float32)
    b = GraphBuilder("dw8")
    x = b.input("x", (1, C, S, S))
    w_f = np.where(rng.random((C, 1, 3, 3)) < 0.5, 1.0, -1.0)
    w_f[:, 0, 1, 1] = np.linspace(-1, 1, C)  # the centre tap spreads the channels' outputs
    dw = b.const("dw.w", w_f, "float32")
    b.output(
        b.add(
            "conv2d",
            [x, dw],
            name="dw",
            strides=(1, 1),
            dilations=(1, 1),
            pads=(1, 1, 1, 1),
            groups=C,
            data_layout="NCHW",
        )
    )
    g = b.build()
    calib = calibdata.from_array(np.concatenate([sign, -sign]), g, "the feed")
    q = quantize_graph(g, parse_precision("w8a8"), calib).graph
    wq = np.asarray(q.constants[q.node("dw").inputs[1]]).astype(np.int64)
    assert wq.min() >= -127 and np.abs(wq).max() == 127
    if full_range:
        wq[5, 0, 0, 0] = -128
        q = q.replace(constants={**q.constants, q.node("dw").inputs[1]: wq.astype(np.int8)})
    values = run(q, [sign], keep=True)
    xq = values[q.node("dw").inputs[0]].astype(np.int64)
    assert xq.min() == -128 and xq.max() >= 126
    t = load_target("kryo280")
    layer = lower_node(q, q.node("dw"), t)
    assert layer.signature["pair_taps"] is (not full_range)
    if full_range:
        assert any("-128" in n and "paired" in n for n in layer.schedule.notes)
    k = cg.compile_layer(layer, t)
    if not full_range:
        asm = Path(k.asm_path).read_text()
        assert count_mnemonic(asm, "smlal") + count_mnemonic(asm, "smlal2") > 0
    r = emulate.run_aarch64(
        k.obj_path,
        k.symbol,
        list(k.args),
        layer.pack_inputs(values),
        ["y"],
        cpu=t.codegen.emulator.cpu,
    )
    ref = values[layer.output]
    assert len(np.unique(ref)) > 16  # not clamped to a few values
    np.testing.assert_array_equal(layer.unpack_output(r.outputs["y"]), ref)


def test_hvx_int16_depthwise_vmpy_exact_when_sums_leave_int32():
    if emulate.missing_tools("hexagon"):
        pytest.skip("no hexagon toolchain")
    q, w, feed = _wide_depthwise()
    q = q.replace(constants={**q.constants, q.node("dw").inputs[1]: w.astype(np.int16)})
    values = run(q, [feed], keep=True)
    xq = values[q.node("dw").inputs[0]].astype(np.int64).reshape(128, 9)
    assert np.abs(np.cumsum(xq * w.reshape(128, 9), axis=1)).max() > 2**32
    t = load_target("hvx-v68")
    layer = lower_node(q, q.node("dw"), t)
    assert layer.schedule.intrinsic == "vmpy"
    k = cg.compile_layer(layer, t)
    assert count_mnemonic(Path(k.asm_path).read_text(), "vmpy") > 0
    r = emulate.run_hexagon(
        k.obj_path,
        k.symbol,
        list(k.args),
        layer.pack_inputs(values),
        ["y"],
        cpu=t.codegen.emulator.cpu,
    )
    ref = values[layer.output]
    assert len(np.unique(ref)) > ref.size // 2  # not clamped
    np.testing.assert_array_equal(layer.unpack_output(r.outputs["y"]), ref)


def test_vmpy_in_int16_depthwise_kernels_on_hvx_where_channels_allow():
    """...and each of them bit-exact under qemu-hexagon (test_verify_models.py verifies
    MobileNet v2 on hvx-v68 at w8a8 only, for the suite's time)."""
    q, values = quantized("mobilenet_v2", "w16a16")
    t = load_target("hvx-v68")
    emulated = not emulate.missing_tools("hexagon")
    layers = [L for L in lower_graph(q, t) if L.op_class == "depthwise_conv2d"]
    assert len(layers) == 17
    for L in layers:
        channels = L.args[0].shape[-1]
        if channels % 64:
            assert (
                L.schedule.intrinsic is None and "multiple of its 64 lanes" in L.schedule.notes[0]
            ), L.name
            continue
        k = cg.compile_layer(L, t)
        assert k.intrinsic == "vmpy" and count_mnemonic(Path(k.asm_path).read_text(), "vmpy")
        if emulated:
            r = emulate.run_hexagon(
                k.obj_path, k.symbol, list(k.args), L.pack_inputs(values), ["y"],
                cpu=t.codegen.emulator.cpu,
            )  # fmt: skip
            got = L.unpack_output(r.outputs["y"]).astype(np.int64)
            assert int((got != values[L.output].astype(np.int64)).sum()) == 0, L.name
    assert sum(L.schedule.intrinsic == "vmpy" for L in layers) == 13


# -- recipes are read ----------------------------------------------------------------------------
def test_changing_a_recipe_value_changes_code_and_loop_nest(tmp_path):
    q, _ = quantized("resnet18", "w8a8")
    t = load_target("cortex-a76")
    node = q.node("layer2.0.conv1")
    base = open(recipes_for(t).path).read()
    # 3x3 x 64 channels: sdot by element, whose tile the recipe gives in intrinsic_tile
    int8_tile = 'sdot_lane: {ow: "<=8", oc: "<=8"}'
    assert int8_tile in base
    path = tmp_path / "cpu-simd.yaml"
    path.write_text(base.replace(int8_tile, "sdot_lane: {ow: 2, oc: 16}", 1))
    a = cg.compile_layer(lower_node(q, node, t), t)
    b = cg.compile_layer(lower_node(q, node, t, schedules=str(path)), t)
    assert a.key != b.key and a.intrinsic == b.intrinsic == "sdot_lane"
    assert Path(a.asm_path).read_text() != Path(b.asm_path).read_text()
    ea, eb = ({lp.name: lp.extent for lp in k.all_loops()} for k in (a, b))
    assert ea["oc.i"] == 2  # 8 channels: 2 sdot blocks of 4
    assert (eb["ow.i"], eb["oc.i"]) == (2, 4)
    assert b.schedule["tiles"] == {"ow": 2, "oc": 16}
    # an unroll list change alone also changes the code
    path.write_text(base.replace("unroll: [ow.i, oc.i, ic.v]", "unroll: []", 1))
    c = cg.compile_layer(lower_node(q, node, t, schedules=str(path)), t)
    kinds = {lp.name: lp.kind for lp in c.all_loops()}
    assert (
        kinds["ow.i"] == "serial"
        and {lp.name: lp.kind for lp in a.all_loops()}["ow.i"] == "unrolled"
    )
    assert Path(c.asm_path).read_text() != Path(a.asm_path).read_text()


# -- the Kernel record -------------------------------------------------------------------------
def test_kernel_record_loop_nest_and_instruction_mix():
    q, _ = quantized("mobilenet_v2", "w8a8")
    t = load_target("cortex-a76")
    layer = lower_node(q, q.node("features.2.conv.0.0"), t)  # 1x1, 16 -> 96, 16x16
    k = cg.compile_layer(layer, t)
    loops = {lp.name: lp for lp in k.all_loops()}
    # the int8 register tile: 4 pixels x 16 channels (4 sdot blocks of 4)
    assert [loops[n].extent for n in ("n", "oh", "ow.o", "ow.i", "oc.o", "oc.i")] == [
        1,
        16,
        4,
        4,
        6,
        4,
    ]
    assert loops["oc.i"].intrinsic == "sdot" and loops["oc.i"].kind == "unrolled"
    # one sdot per (pixel, 4 output channels, 4 input channels): 16*16 * 96/4 * 16/4
    assert loops["oc.i"].trips == 16 * 16 * (96 // 4) * (16 // 4)
    mix = k.instruction_mix
    assert mix.vector_mac > 0 and mix.load > 0 and mix.loops > 0 and mix.packets is None
    assert k.symbol.startswith("accelsim_conv2d_") and k.args[-1].shape == (1, 16, 16, 96)
    json.dumps(k.to_dict())


def test_instruction_mix_parser():
    a64 = """
f:
\tmov\tx0, #0
.LBB0_1:
\tldr\tq0, [x1], #16
\tsdot\tv1.4s, v0.16b, v2.16b
\tsmull\tv3.8h, v4.8b, v5.8b
\tmul\tw3, w3, w4
\tstr\tq1, [x2]
\tsubs\tx0, x0, #1
\tb.ne\t.LBB0_1
\tret
"""
    m = instruction_mix(a64)
    assert (m.vector_mac, m.load, m.store, m.other, m.loops) == (2, 1, 1, 3, 1)
    hvx = """
f:
\t{
\t\tloop0(.LBB0_2,#8)
\t\tr0 = #0
\t}
.LBB0_2:
\t{
\t\tv0 = vmem(r1++#1)
\t\tv1.w += vrmpy(v0.b,v2.b)
\t}
\t{
\t\tvmem(r2+#0) = v1
\t\tr3 = add(r3,#1)
\t} :endloop0
\t{
\t\tjumpr r31
\t}
"""
    m = instruction_mix(hvx)
    assert (m.vector_mac, m.load, m.store, m.other, m.packets, m.loops) == (1, 1, 1, 1, 2, 1)
    assert m.total_packets == 4 and m.total == {"vector_mac": 1, "load": 1, "store": 1, "other": 4}
    assert m.per_loop[0]["label"] == ".LBB0_2" and m.per_loop[0]["packets"] == 2


# -- cache and compile_graph ---------------------------------------------------------------------
def test_compile_graph_writes_files_and_compiles_identical_layers_once(tmp_path, monkeypatch):
    monkeypatch.setenv("ACCELSIM_CACHE", str(tmp_path / "cache"))
    q, _ = quantized("resnet18", "w8a8")
    before = cg.compile_count()
    out = tmp_path / "out"
    ks = cg.compile_graph(q, "host", out_dir=out)
    compiled = cg.compile_count() - before
    keys = {k.key for k in ks}
    # resnet18 at 32x32: identical layer shapes (e.g. layer1.0.conv1/conv2, layer1.1.*) share
    # a kernel: one compilation per distinct kernel
    assert compiled == len(keys) < len(ks)
    assert sum(not k.cached for k in ks) == len(keys)
    doc = json.loads((out / "kernels.json").read_text())
    assert doc["distinct_kernels"] == len(keys) and len(doc["kernels"]) == len(ks)
    assert doc["not_lowered"] == []  # softmax included: every operator is a kernel
    assert "softmax" in [k["layer"] for k in doc["kernels"]]
    assert [x["layer"] for x in doc["views"]] == ["flatten"]
    for k in ks:
        assert Path(k.asm_path).parent == out and Path(k.asm_path).is_file()
        assert Path(k.obj_path).read_bytes()[:4] == b"\x7fELF"
    assert (out / "layer1.0.conv1.s").is_file() and (out / "input.quantize.o").is_file()
    # a warm rerun compiles nothing
    before = cg.compile_count()
    again = cg.compile_graph(q, "host", out_dir=tmp_path / "out2")
    assert cg.compile_count() == before and all(k.cached for k in again)
    assert safe_name("a/b c:d") == "a_b_c_d"


def test_host_kernel_runs_and_times(tmp_path):
    q, values = quantized("mobilenet_v2", "w8a8")
    t = load_target("host")
    layer = lower_node(q, q.node("features.1.conv.1"), t)
    k = cg.compile_layer(layer, t)
    np.testing.assert_array_equal(host.run_layer(layer, k, values), values[layer.output])
    assert 0 < host.time_kernel(k, layer.pack_inputs(values), repeat=3, min_time_s=0.002) < 1
    arm = cg.compile_layer(
        lower_node(q, q.node("features.1.conv.1"), load_target("cortex-a76")), "cortex-a76"
    )
    with pytest.raises(cg.CompileError, match="only host kernels"):
        host.run(arm, {})


# -- bit-exact under the emulators ---------------------------------------------------------------
EMULATED = [
    ("features.0.0", "3x3 conv"),
    ("features.2.conv.1.0", "depthwise conv"),
    ("classifier.1", "dense"),
]


@pytest.mark.parametrize("precision", ["w8a8", "w4a8"])
@pytest.mark.parametrize("target", ["cortex-a76", "kryo280", "hvx-v68"])
def test_layers_bit_exact_under_the_emulator(target, precision):
    t = load_target(target)
    arch = "aarch64" if t.codegen.emulator.kind == "qemu-aarch64" else "hexagon"
    missing = emulate.missing_tools(arch)
    if missing:
        pytest.skip(f"no {arch} toolchain: {', '.join(missing)}")
    q, values = quantized("mobilenet_v2", precision)
    runner = emulate.run_aarch64 if arch == "aarch64" else emulate.run_hexagon
    for name, what in EMULATED:
        layer = lower_node(q, q.node(name), t)
        k = cg.compile_layer(layer, t)
        r = runner(
            k.obj_path,
            k.symbol,
            list(k.args),
            layer.pack_inputs(values),
            ["y"],
            cpu=t.codegen.emulator.cpu,
        )
        got = layer.unpack_output(r.outputs["y"])
        ref = values[layer.output]
        assert int((got.astype(np.int64) != ref.astype(np.int64)).sum()) == 0, (name, what)
