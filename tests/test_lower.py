"""Lowering quantized graphs to TVM kernels (accelsim.lower): bit-exactness and recipes.

The oracle is the reference executor (`accelsim.ref`, itself checked against TFLite's reference
kernels and ONNX Runtime elsewhere): every lowered layer, run on the host through the TVM
runtime with the reference executor's input tensors, must reproduce the reference executor's
output tensor for that layer with zero mismatching elements (fp32: rtol 1e-5).
"""

from __future__ import annotations

import re
from functools import cache

import numpy as np
import pytest

from accelsim.core import fixedpoint as fx
from accelsim.core.errors import AccelsimError
from accelsim.core.precision import parse_precision
from accelsim.core.qparams import QuantParams
from accelsim.core.target import load_target
from accelsim.kernels import emulate, host
from accelsim.kernels.compile import compile_layer
from accelsim.lower import intrin
from accelsim.lower.lower import LoweredLayer, lower_graph, lower_node
from accelsim.lower.schedule import (
    RecipeError,
    load_recipes,
    parse_recipes,
    recipes_for,
    schedules_dir,
)
from accelsim.model import zoo
from accelsim.model.builder import GraphBuilder
from accelsim.model.graph import TensorInfo
from accelsim.quant import calibdata
from accelsim.quant.ptq import quantize_graph
from accelsim.ref.executor import run

pytestmark = pytest.mark.usefixtures("kernel_cache")


@cache
def quantized(model: str, precision: str):
    """(quantized graph, every reference tensor) at input size 32, random calibration."""
    g = zoo.build(model, input_size=32)
    q = quantize_graph(g, parse_precision(precision), calibdata.random(g, 2)).graph
    x = calibdata.random(g, 1, seed=7).samples[0]
    return q, run(q, [x], keep=True)


def mismatches(got: np.ndarray, ref: np.ndarray) -> int:
    assert got.shape == ref.shape
    if ref.dtype.kind == "f":
        atol = 1e-5 * max(1.0, float(np.abs(ref).max()))
        return int((~np.isclose(got, ref, rtol=1e-5, atol=atol)).sum())
    return int((got.astype(np.int64) != ref.astype(np.int64)).sum())


def check_graph_on_host(q, values, precision) -> dict[str, int]:
    target = load_target("host")
    bad = {}
    for layer in lower_graph(q, target):
        if layer.status != "kernel":
            continue
        kernel = compile_layer(layer, target)
        bad[layer.name] = mismatches(host.run_layer(layer, kernel, values), values[layer.output])
    return bad


# -- bit-exact on the host ---------------------------------------------------------------------
# Each integer precision on one model beyond w8a8 (a minute each on two busy cores): 4-bit
# weights and activations (w4a8, w4a4, w8a4) on ResNet-18, whose kernels are the w8a8 ones with
# unpacked weights or narrower clamps; w16a16 and fp32 on MobileNet v2 (depthwise included)
HOST_CASES = [
    ("mobilenet_v2", "w8a8"),
    ("mobilenet_v2", "w16a16"),
    ("mobilenet_v2", "fp32"),
    ("resnet18", "w8a8"),
    ("resnet18", "w4a8"),
    ("resnet18", "w4a4"),
    ("resnet18", "w8a4"),
    ("resnet18", "fp32"),
]


@pytest.mark.parametrize("model,precision", HOST_CASES)
def test_every_layer_matches_the_reference_executor(model, precision):
    q, values = quantized(model, precision)
    layers = lower_graph(q, load_target("host"))
    status = {(L.op, L.status) for L in layers}
    # everything is a kernel (softmax included) except the flatten view
    assert {s for op, s in status if op != "flatten"} == {"kernel"}
    assert ("flatten", "view") in status and ("softmax", "kernel") in status
    bad = check_graph_on_host(q, values, precision)
    assert len(bad) == sum(L.status == "kernel" for L in layers) > 20
    assert {k: v for k, v in bad.items() if v} == {}


def toy_graph(seed: int = 0):
    """Operators the two CNNs do not have: pad, avg_pool (padded, count excluding padding),
    max_pool, concat, sub, mul, relu, mean, a dense without bias."""
    rng = np.random.default_rng(seed)
    b = GraphBuilder("toy")
    x = b.input("x", (1, 8, 9, 9))

    def conv(x, name, cout, k, pad=0, groups=1, **act):
        cin = b.shape(x)[1]
        w = b.const(f"{name}.w", rng.standard_normal((cout, cin // groups, k, k)) * 0.3, "float32")
        bias = b.const(f"{name}.b", rng.standard_normal(cout) * 0.1, "float32")
        return b.add(
            "conv2d",
            [x, w, bias],
            name=name,
            strides=(1, 1),
            dilations=(1, 1),
            pads=(pad,) * 4,
            groups=groups,
            data_layout="NCHW",
            **act,
        )

    a = conv(x, "c1", 16, 3, pad=1, act_min=0.0)
    p = b.add("pad", [a], name="pad1", pads=((0, 0), (0, 0), (1, 2), (2, 1)), value=0.0)
    ap = b.add(
        "avg_pool",
        [p],
        name="ap",
        kernel=(3, 3),
        strides=(2, 2),
        pads=(1, 1, 1, 1),
        data_layout="NCHW",
    )
    mp = b.add(
        "max_pool",
        [p],
        name="mp",
        kernel=(3, 3),
        strides=(2, 2),
        pads=(1, 1, 1, 1),
        data_layout="NCHW",
    )
    cat = b.add("concat", [conv(ap, "c2", 16, 1), mp], name="cat", axis=1)
    d = conv(cat, "dw", 32, 3, pad=1, groups=32, act_min=0.0, act_max=6.0)
    m = b.add("mul", [b.add("sub", [d, cat], name="sub"), d], name="mul")
    mean = b.add("mean", [b.add("relu", [m], name="relu")], name="mean", axes=(2, 3), keepdims=True)
    f = b.add("flatten", [mean], name="flat", axis=1)
    b.output(
        b.add(
            "dense", [f, b.const("fc.w", rng.standard_normal((10, 32)) * 0.2, "float32")], name="fc"
        )
    )
    return b.build()


def requantizing(q):
    """Give concat's first input and pad's input quantizations of their own (the graph stays
    valid: producers requantize to them), so concat rescales and pad requantizes."""
    t = dict(q.tensors)
    for name, f in (("c2", 1.7), ("c1", 0.6)):
        info = t[name]
        t[name] = TensorInfo(
            name,
            info.shape,
            info.dtype,
            QuantParams.per_tensor(info.quant.scale[0] * f, info.quant.zero_point[0] + 3),
        )
    return q.replace(tensors=t)


@pytest.mark.parametrize("precision", ["w8a8", "w4a8", "w16a16", "fp32", "w8a8-requantizing"])
def test_other_operators_match_the_reference_executor(precision):
    g = toy_graph()
    prec = precision.split("-")[0]
    q = quantize_graph(g, parse_precision(prec), calibdata.random(g, 2)).graph
    if precision.endswith("requantizing"):
        q = requantizing(q)
    values = run(q, [calibdata.random(g, 1, seed=9).samples[0]], keep=True)
    layers = {L.name: L for L in lower_graph(q, load_target("host"))}
    if precision.endswith("requantizing"):
        assert layers["cat"].signature["scaled"] == [True, False]
        assert layers["pad1"].signature["requant"] is True
    bad = check_graph_on_host(q, values, prec)
    assert {"pad1", "ap", "mp", "cat", "dw", "sub", "mul", "relu", "mean", "fc"} <= set(bad)
    assert {k: v for k, v in bad.items() if v} == {}


@pytest.mark.parametrize("precision", ["w8a8", "w8a8/unsigned"])
def test_vnni_kernels_are_exact_at_the_extremes(precision):
    """The host's u8 x s8 `vpdpbusd` kernels (int8 activations flipped to u8, +128 folded into
    the bias) against the reference executor, on activations saturated at both ends of the
    range, weights at +-127, channel counts that are not multiples of the 4 x 16 block, a
    strided padded conv (padded taps read the zero point) and a dense layer."""
    if "avx512vnni" not in load_target("host").codegen.features:
        pytest.skip("this machine has no AVX512-VNNI")
    rng = np.random.default_rng(5)
    b = GraphBuilder("vnni")
    x = b.input("x", (1, 5, 11, 11))
    w = rng.choice([-1.0, 1.0], (20, 5, 3, 3)) * rng.uniform(0.5, 1.0, (20, 5, 3, 3))
    c = b.add(
        "conv2d",
        [x, b.const("c.w", w, "float32"), b.const("c.b", rng.standard_normal(20), "float32")],
        name="c",
        strides=(2, 2),
        dilations=(1, 1),
        pads=(1, 1, 1, 1),
        groups=1,
        data_layout="NCHW",
    )
    f = b.add("flatten", [c], name="flat", axis=1)
    wd = rng.standard_normal((19, 20 * 6 * 6))
    b.output(b.add("dense", [f, b.const("fc.w", wd, "float32")], name="fc"))
    g = b.build()
    q = quantize_graph(g, parse_precision(precision), calibdata.random(g, 2)).graph
    # inputs 20x the calibrated range: most activations sit at the ends of the int8 range
    xin = calibdata.random(g, 1, seed=4).samples[0] * 20
    values = run(q, [xin], keep=True)
    qx = values[q.node("c").inputs[0]]
    assert qx.min() == np.iinfo(qx.dtype).min and qx.max() == np.iinfo(qx.dtype).max
    layers = {L.name: L for L in lower_graph(q, load_target("host"))}
    assert layers["c"].schedule.intrinsic == "vpdpbusd"
    assert layers["fc"].schedule.intrinsic == "vpdpbusd"
    signed = precision == "w8a8"
    assert layers["c"].signature["act_offset"] == (128 if signed else 0)
    bad = check_graph_on_host(q, values, precision)
    assert {"c", "fc"} <= set(bad) and {k: v for k, v in bad.items() if v} == {}


@pytest.mark.parametrize(
    "c, k, stride, precision, padded",
    [
        (32, 3, 1, "w8a8", 32),  # int8 activations flipped to u8 in the input stage
        (40, 3, 2, "w8a8", 48),  # channels padded to 16-lane blocks, stride 2
        (16, 5, 1, "w8a8/unsigned", 16),  # 5 rows: two byte groups per column, 3 zero rows
        (48, 3, 1, "w8a8/unsigned", 48),  # uint8 activations as they are
    ],
)
def test_vnni_depthwise_window_exact_at_the_extremes(c, k, stride, precision, padded):
    """The host's depthwise window on `vpdpbusd` (accelsim.lower.dotwindow: each kernel
    column's taps interleaved into the lanes' byte groups) against the reference executor, on
    activations saturated at both ends of their range and weights at +-127 in every channel:
    a flipped input's offset folded out of the bias wrongly, a row or column taken from the
    wrong place, or a zero row that is not zero, each fails it."""
    if "avx512vnni" not in load_target("host").codegen.features:
        pytest.skip("this machine has no AVX512-VNNI")
    rng = np.random.default_rng(c + k + stride)
    b = GraphBuilder("dwvnni")
    shape = (1, c, 7, 9)
    x = b.input("x", shape)
    w = rng.choice([-1.0, 1.0], (c, 1, k, k)) * rng.uniform(0.2, 1.0, (c, 1, k, k))
    w[:, 0, 0, 0] = np.sign(w[:, 0, 0, 0])  # every channel's extreme: +-127 once quantized
    y = b.add(
        "conv2d",
        [x, b.const("w", w, "float32"), b.const("b", rng.standard_normal(c), "float32")],
        name="dw",
        strides=(stride, stride),
        pads=(k // 2,) * 4,
        dilations=(1, 1),
        groups=c,
        data_layout="NCHW",
    )
    b.output(y)
    g = b.build()
    q = quantize_graph(g, parse_precision(precision), calibdata.random(g, 2)).graph
    xin = calibdata.random(g, 1, seed=4).samples[0] * 20  # most inputs at the range's ends
    values = run(q, [xin], keep=True)
    qx = values[q.node("dw").inputs[0]]
    assert qx.min() == np.iinfo(qx.dtype).min and qx.max() == np.iinfo(qx.dtype).max
    t = load_target("host")
    layer = lower_node(q, q.node("dw"), t)
    assert layer.schedule.intrinsic == "vpdpbusd_window", layer.schedule
    assert layer.signature["channels_padded"] == padded
    assert layer.signature["act_offset"] == (128 if precision == "w8a8" else 0)
    asm = open(compile_layer(layer, t).asm_path).read()
    assert "vpdpbusd" in asm and "vpmullw" not in asm  # no widening multiply left
    bad = check_graph_on_host(q, values, precision)
    assert "dw" in bad and {k: v for k, v in bad.items() if v} == {}


def test_dense_with_double_precision_requantization():
    """TFLite-imported FULLY_CONNECTED nodes (`requant="double"`) requantize in float64."""
    q, _ = quantized("resnet18", "w8a8")
    nodes = [n.with_attrs(requant="double") if n.name == "fc" else n for n in q.nodes]
    q2 = q.replace(nodes=tuple(nodes))
    values = run(
        q2,
        [calibdata.random(zoo.build("resnet18", input_size=32), 1, seed=3).samples[0]],
        keep=True,
    )
    t = load_target("host")
    layer = lower_node(q2, q2.node("fc"), t)
    assert layer.signature["requant"] == "double" and layer.args[3].name == "scale"
    got = host.run_layer(layer, compile_layer(layer, t), values)
    assert mismatches(got, values[layer.output]) == 0


def test_host_verify_helper():
    g = toy_graph(1)
    q = quantize_graph(g, parse_precision("w8a8"), calibdata.random(g, 2)).graph
    result = host.verify(q, [calibdata.random(g, 1, seed=2).samples[0]])
    assert len(result) == 14 and set(result.values()) == {0}  # all but the flatten view


def test_requantization_matches_fixedpoint_at_the_extremes():
    """The TIR MultiplyByQuantizedMultiplier (both overloads) against accelsim.core.fixedpoint
    over the whole int32 range, every shift and multiplier extremes (int32 wrap of x << left
    included)."""
    from accelsim.core.tvm_env import import_tvm
    from accelsim.lower import requant as rq

    tvm = import_tvm()
    te = tvm.te
    rng = np.random.default_rng(1)
    n = 1 << 14
    x = np.concatenate([rng.integers(-(2**31), 2**31, n - 64), np.arange(-32, 32)]).astype(np.int32)
    x[:4] = [-(2**31), 2**31 - 1, 0, -1]
    m = rng.integers(2**30, 2**31, n).astype(np.int32)
    m[4:8] = [0, 2**30, 2**31 - 1, 2**30 + 1]
    s = rng.integers(-31, 31, n).astype(np.int32)
    X = te.placeholder((n,), "int32", name="x")
    M = te.placeholder((n,), "int32", name="m")
    S = te.placeholder((n,), "int32", name="s")
    Y = te.compute((n,), lambda i: rq.mbqm(X[i], M[i], S[i]), name="y")
    x64 = (x.astype(np.int64) << 16) // 3
    X64 = te.placeholder((n,), "int64", name="x64")
    S64 = te.placeholder((n,), "int32", name="s64")
    Y64 = te.compute((n,), lambda i: rq.mbqm64(X64[i], M[i], S64[i]), name="y64")
    f = te.create_prim_func([X, M, S, X64, S64, Y, Y64]).with_attr("global_symbol", "rq")
    sch = tvm.s_tir.Schedule(f)
    for b in ("y", "y64"):
        _, i = sch.split(sch.get_loops(sch.get_sblock(b))[0], [None, 8])
        sch.vectorize(i)
    lib = tvm.compile(
        sch.mod, target=tvm.target.Target(load_target("host").codegen.tvm_target_dict())
    )
    s64 = np.clip(s, -31, 7).astype(np.int32)
    args = [tvm.runtime.tensor(a) for a in (x, m, s, x64, s64)]
    outs = [tvm.runtime.empty((n,), "int32"), tvm.runtime.empty((n,), "int32")]
    lib["rq"](*args, *outs)
    np.testing.assert_array_equal(outs[0].numpy(), fx.multiply_by_quantized_multiplier(x, m, s))
    np.testing.assert_array_equal(
        outs[1].numpy(), fx.multiply_by_quantized_multiplier_int64(x64, m, s64)
    )


def test_requantization_without_the_negative_rounding_under_a_relu_clamp():
    """`requant.mbqm(..., nonneg=True)` leaves RoundingDivideByPOT's correction of negative
    values out: under an output clamp that starts at or above the zero point (a fused ReLU) it
    equals the reference exactly; without the clamp it differs from the reference only where
    both are <= 0, and does differ there (exact negative halves, small right shifts), so the
    clamp is what makes it exact."""
    from accelsim.core.tvm_env import import_tvm
    from accelsim.lower import requant as rq

    tvm = import_tvm()
    te = tvm.te
    rng = np.random.default_rng(3)
    n = 1 << 14
    x = rng.integers(-(2**24), 2**24, n).astype(np.int32)
    x[:8] = [-(2**31), 2**31 - 1, 0, -1, 1, -(2**30), 2**30, -3]
    m = rng.integers(2**30, 2**31, n).astype(np.int32)
    m[: n // 2] = 2**30  # x * 2^30 doubled and rounded is x / 2: exact halves after the shift
    s = rng.integers(-8, 3, n).astype(np.int32)  # right shifts 1-8 and a few left ones
    zp, lo, hi = -128, -128, 127  # int8, ReLU: the clamp starts at the zero point
    X = te.placeholder((n,), "int32", name="x")
    M = te.placeholder((n,), "int32", name="m")
    S = te.placeholder((n,), "int32", name="s")
    Q = te.placeholder((3,), "int32", name="q")
    Y = te.compute(
        (n,),
        lambda i: rq.mbqm(X[i], M[i], S[i], lambda r: rq.clamp_add(r, Q[0], Q[1], Q[2]), True),
        name="y",
    )
    R = te.compute((n,), lambda i: rq.mbqm(X[i], M[i], S[i], nonneg=True), name="r")
    f = te.create_prim_func([X, M, S, Q, Y, R]).with_attr("global_symbol", "rq")
    lib = tvm.compile(f, target=tvm.target.Target(load_target("host").codegen.tvm_target_dict()))
    args = [tvm.runtime.tensor(a) for a in (x, m, s, np.array([zp, lo, hi], np.int32))]
    outs = [tvm.runtime.empty((n,), "int32"), tvm.runtime.empty((n,), "int32")]
    lib["rq"](*args, *outs)
    exact = fx.multiply_by_quantized_multiplier(x, m, s)
    np.testing.assert_array_equal(outs[0].numpy(), np.clip(exact + zp, lo, hi))
    raw = outs[1].numpy()
    differ = raw != exact
    assert differ.sum() > 100, "no negative half was rounded differently: the test is blind"
    assert (raw[differ] <= 0).all() and (exact[differ] <= 0).all()


def test_mlas_requantization_matches_onnx_runtime_rounding():
    """The TIR form of ONNX Runtime's MlasRequantizeOutput (`requant.mlas_finish` after a
    float32 multiply) against accelsim.ref.qdq_ops.requantize: ties in both directions, values
    past both clamps, every zero point the 8-bit types have, and random accumulators and
    scales. Folding the add-then-subtract of 1.5 * 2^23 away (as TVM's simplifier does) or
    rounding halves away from zero fails it."""
    from accelsim.core.tvm_env import import_tvm
    from accelsim.lower import requant as rq
    from accelsim.ref import qdq_ops

    tvm = import_tvm()
    te = tvm.te
    rng = np.random.default_rng(7)
    n = 1 << 14
    acc = rng.integers(-(2**20), 2**20, n).astype(np.int32)
    acc[:16] = [1, 3, 5, -1, -3, -5, 7, -7, 0, 2**31 - 1, -(2**31), 255, -255, 129, -129, 9]
    scale = (rng.random(n) * 2.0**-8).astype(np.float32)
    scale[:16] = 0.5  # acc * 0.5: exact halves, ties to even (1 * 0.5 -> 0, 3 * 0.5 -> 2, ...)
    X = te.placeholder((n,), "int32", name="x")
    F = te.placeholder((n,), "float32", name="f")
    Q = te.placeholder((3,), "int32", name="q")
    Y = te.compute(
        (n,), lambda i: rq.mlas_finish(X[i].astype("float32") * F[i], Q[0], Q[1], Q[2]), name="y"
    )
    f = te.create_prim_func([X, F, Q, Y]).with_attr("global_symbol", "mlas")
    sch = tvm.s_tir.Schedule(f)
    _, i = sch.split(sch.get_loops(sch.get_sblock("y"))[0], [None, 8])
    sch.vectorize(i)
    lib = tvm.compile(
        sch.mod, target=tvm.target.Target(load_target("host").codegen.tvm_target_dict())
    )
    for dtype, zp in (("uint8", 0), ("uint8", 128), ("uint8", 255), ("int8", 0), ("int8", -128)):
        lo, hi = (0, 255) if dtype == "uint8" else (-128, 127)
        out = tvm.runtime.empty((n,), "int32")
        q = np.array([zp, lo, hi], np.int32)
        lib["mlas"](*(tvm.runtime.tensor(a) for a in (acc, scale, q)), out)
        info = TensorInfo("y", (n,), dtype, QuantParams((1.0,), (zp,)))
        want = qdq_ops.requantize(acc, scale, info)
        np.testing.assert_array_equal(out.numpy(), want, err_msg=f"{dtype} zp {zp}")


# -- the LoweredLayer record ---------------------------------------------------------------------
def test_lowered_layer_record():
    q, values = quantized("mobilenet_v2", "w8a8")
    node = q.node("features.1.conv.1")
    layer = lower_node(q, node, load_target("cortex-a76"))
    assert isinstance(layer, LoweredLayer) and layer.status == "kernel"
    with pytest.raises(AttributeError):
        layer.name = "x"  # frozen
    assert [a.name for a in layer.args] == ["x", "w", "bias", "mult", "shift", "qparams", "y"]
    assert layer.args[0].shape == (1, 16, 16, 32)  # NHWC activations
    assert layer.args[1].shape == (4, 1, 1, 8, 4, 4)  # [O/4][KH][KW][I/4][4][4] for sdot
    assert layer.args[-1].shape == (1, 16, 16, 16)
    packed = layer.pack_inputs(values)
    for a in layer.args[:-1]:
        assert packed[a.name].shape == a.shape and packed[a.name].dtype == np.dtype(a.dtype)
    ref = values[layer.output]
    nhwc = np.ascontiguousarray(ref.transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(layer.unpack_output(nhwc), ref)
    assert layer.schedule.intrinsic == "sdot" and layer.func is not None
    # the folded bias is the bias minus the input zero point times the weight sums
    w = q.constants[node.inputs[1]].astype(np.int64).reshape(16, -1)
    zp = q.tensors[node.inputs[0]].quant.zero_point[0]
    np.testing.assert_array_equal(packed["bias"], q.constants[node.inputs[2]] - zp * w.sum(axis=1))
    # depthwise: its own compute, channels innermost (the vector axis); int8 taps paired
    # along kw (recipe pair_taps), the odd third column with a zero fourth
    dw = lower_node(q, q.node("features.1.conv.0.0"), load_target("cortex-a76"))
    assert dw.op_class == "depthwise_conv2d" and dw.args[1].shape == (3, 4, 32)
    assert dw.signature["pair_taps"] and not dw.pack_inputs(values)["w"][:, 3].any()
    assert "c.v" in dw.schedule.vectorized and dw.schedule.intrinsic is None


def test_four_bit_weights_are_packed_two_per_byte():
    q, values = quantized("resnet18", "w4a8")
    layer = lower_node(q, q.node("layer1.0.conv1"), load_target("hvx-v68"))
    # vrmpy_rt 32 x 8 (lower.uweights): input channels j and j + 4 of a block in one byte, as
    # the unsigned w + 8
    assert layer.args[1].shape == (2, 3, 3, 8, 32, 4)
    w = layer.pack_inputs(values)["w"].astype(np.int16)
    unpacked = np.concatenate([w & 0xF, w >> 4], axis=-1) - 8  # [ob][kh][kw][ib][lane][8]
    ref = q.constants[q.node("layer1.0.conv1").inputs[1]]  # OIHW int4 in int8
    ref = ref.transpose(0, 2, 3, 1).reshape(2, 32, 3, 3, 8, 8).transpose(0, 2, 3, 4, 1, 5)
    np.testing.assert_array_equal(unpacked, ref)


def test_intrinsic_per_target_comes_from_the_table():
    q, _ = quantized("resnet18", "w8a8")
    node = q.node("layer1.0.conv1")
    chosen = {
        t: lower_node(q, node, load_target(t)).schedule.intrinsic
        for t in ("cortex-a76", "cortex-a55", "cortex-a53", "kryo280", "hvx-v68", "host")
    }
    host_features = load_target("host").codegen.features
    assert chosen == {
        "cortex-a76": "sdot_lane",  # 3x3 x 64 channels: 36 calls of 16 by element
        "cortex-a55": "sdot_lane",
        # restricted-range weights: Appendix B pairing, over 16 input channels into 4 partial
        # sums where the channels fill them (64 here)
        "cortex-a53": "smull_smlal2",
        "kryo280": "smull_smlal2",
        "hvx-v68": "vrmpy_rt",  # vector x scalar: weights stored unsigned (lower.uweights)
        # the host's kernel follows the CPU features probed at load
        "host": "vpdpbusd"
        if "avx512vnni" in host_features
        else ("vpdpbusd_ymm" if "avxvnni" in host_features else None),
    }
    vnni = ["vpdpbusd", "vpdpbusd_ymm"]
    assert intrin.select(vnni, ("avxvnni",), "int8", 8).lanes == 8
    # u8 x s8 instructions: int8 activations take them flipped to u8 (+128, folded in the bias)
    signed = intrin.select(vnni, ("avx512vnni", "avx512bw"), "int8", 8)
    assert (signed.act_dtype, signed.act_offset) == ("uint8", 128)
    assert intrin.select(vnni, ("avx512vnni", "avx512bw"), "uint8", 8) is signed
    assert intrin.select(["vrmpy"], ("hvx",), "int8", 8).act_dtype == "int8"
    assert intrin.select(vnni, ("avx2", "fma"), "int8", 8) is None
    assert intrin.select(["vrmpy"], ("hvx",), "uint8", 8).key == "accelsim.vrmpy.uint8.w8"
    assert intrin.select(["sdot"], ("neon",), "int8", 8) is None  # needs dotprod
    q16, _ = quantized("resnet18", "w16a16")
    layer = lower_node(q16, q16.node("layer1.0.conv1"), load_target("cortex-a76"))
    # over 8 input channels into 2 int64 partial sums (accelsim.lower.partials)
    assert layer.schedule.intrinsic == "smull_smlal2" and layer.signature["acc"] == "int64"
    hvx16 = lower_node(q16, q16.node("layer1.0.conv1"), load_target("hvx-v68"))
    assert hvx16.schedule.intrinsic == "vdmpy" and hvx16.signature["acc"] == "int64"
    assert hvx16.args[1].shape == (2, 3, 3, 32, 32, 2)  # [O/32][KH][KW][I/2][32][2] int16
    vd = intrin.select(["vdmpy"], ("hvx",), "int16", 16)
    assert (vd.lanes, vd.depth, vd.acc_dtype, vd.weight_min) == (32, 2, "int64", -32767)
    assert intrin.select(["vdmpy"], ("neon",), "int16", 16) is None


# -- recipes -----------------------------------------------------------------------------------
INT8_TILE = 'tile: [{ow: 4, oc: "<=16"}, {ow: "<=8", oc: "<=8"}]'  # conv2d.default's


def test_non_dividing_tile_is_an_error_naming_file_key_and_layer(tmp_path):
    q, _ = quantized("mobilenet_v2", "w8a8")
    path = tmp_path / "cpu-simd.yaml"
    path.write_text(
        open(recipes_for(load_target("cortex-a76")).path)
        .read()
        .replace(INT8_TILE, "tile: {ow: 2, oc: 12}", 1)
    )
    with pytest.raises(RecipeError) as err:
        lower_node(q, q.node("features.1.conv.1"), load_target("cortex-a76"), schedules=str(path))
    assert str(err.value) == (
        f"{path}: conv2d.default.tile.oc: 12 does not divide 16 output "
        f"channels of layer 'features.1.conv.1'"
    )
    assert isinstance(err.value, AccelsimError)


def test_tile_alternatives_take_the_first_that_fits(tmp_path):
    """A list of tiles: the first whose int sizes divide the layer's axes; when none does,
    the last one's misfit is the error, named with its index."""
    q, _ = quantized("mobilenet_v2", "w8a8")
    a76 = load_target("cortex-a76")
    text = open(recipes_for(a76).path).read()
    assert INT8_TILE in text
    path = tmp_path / "cpu-simd.yaml"
    # features.1.conv.1: 1x1, 32 -> 16 on a 16-wide map (sdot: 2 calls, below sdot_lane's 6)
    path.write_text(text.replace(INT8_TILE, "tile: [{ow: 3, oc: 16}, {ow: 8, oc: 8}]", 1))
    low = lower_node(q, q.node("features.1.conv.1"), a76, schedules=str(path))
    assert low.schedule.intrinsic == "sdot" and low.schedule.tiles == {"ow": 8, "oc": 8}
    path.write_text(text.replace(INT8_TILE, "tile: [{ow: 3}, {ow: 5, oc: 8}]", 1))
    with pytest.raises(RecipeError) as err:
        lower_node(q, q.node("features.1.conv.1"), a76, schedules=str(path))
    assert str(err.value) == (
        f"{path}: conv2d.default.tile[1].ow: 5 does not divide 16 output columns of "
        "layer 'features.1.conv.1'"
    )


@pytest.mark.parametrize(
    "text,message",
    [
        (
            "conv2d:\n  w8a8: {tensorize: [sdot, vmac9]}\n",
            "conv2d.w8a8.tensorize[1]: unknown intrinsic 'vmac9'",
        ),
        ("conv2d:\n  w8a8: {tiles: {ow: 2}}\n", "conv2d.w8a8.tiles: unknown key"),
        ("dense:\n  default: {tile: {ow: 2}}\n", "dense.default.tile.ow: unknown axis for dense"),
        ("pool:\n  w8a8: {parallel: 4}\n", "pool.w8a8.parallel: 'none' or 'contexts'"),
        ("conv2d:\n  w9a9: {}\n", "conv2d.w9a9: unknown precision"),
        ("winograd:\n  default: {}\n", "winograd: unknown operator class"),
        ("pool:\n  default: {block: {c: -4}}\n", "pool.default.block.c: expected a positive int"),
        (
            "conv2d:\n  w8a8: {tensorize: vmac9}\n",
            "conv2d.w8a8.tensorize: unknown intrinsic 'vmac9'",
        ),
        (
            "conv2d:\n  w8a8: {epilogue: {vectorize: 1}}\n",
            "conv2d.w8a8.epilogue.vectorize: expected true, false or 'form', found 1",
        ),
        ("add:\n  w8a8: {tile: {oc: 4}}\n", "add.w8a8.tile.oc: unknown axis for elementwise"),
        (
            "dense:\n  default: {order: [n, 3]}\n",
            "dense.default.order[1]: expected a string, found 3",
        ),
        ("conv2d: [1]\n", "conv2d: expected a mapping of precisions, found [1]"),
    ],
)
def test_invalid_recipes(tmp_path, text, message):
    path = tmp_path / "r.yaml"
    path.write_text(text)
    with pytest.raises(RecipeError, match=re.escape(message)) as e:
        load_recipes(path)
    assert str(e.value).startswith(f"{path}: ")


@pytest.mark.parametrize(
    "override,message",
    [
        (
            "{order: [n, oh, ow.o, oc.o, kh, kw, ic, ic.v, ow.i, oc.q]}",
            "conv2d.w8a8.order: no loop 'oc.q' in layer 'layer1.0.conv1'",
        ),
        (
            # without the VNNI intrinsic (which claims ic.v), ic.v must be placed
            "{order: [n, oh, ow.o, oc.o, kh, kw, ic, ow.i, oc.i], tensorize: []}",
            "conv2d.w8a8.order: loop 'ic.v' of layer 'layer1.0.conv1' is not placed",
        ),
        (
            "{tile: {oc: 6}}",
            # the block is one vector of int32 accumulators on this machine (AVX-512: 16, AVX2: 8)
            "conv2d.w8a8.tile.oc: 6 is not a multiple of the block of {lanes} output channels of "
            "layer 'layer1.0.conv1'",
        ),
        (
            "{vectorize: oc.w, tensorize: []}",
            "conv2d.w8a8.vectorize: no loop 'oc.w' in layer 'layer1.0.conv1'",
        ),
    ],
)
def test_recipe_errors_found_when_applied(tmp_path, override, message):
    q, _ = quantized("resnet18", "w8a8")
    t = load_target("host")
    path = tmp_path / "host.yaml"
    path.write_text(
        open(recipes_for(t).path).read().replace("conv2d:\n", f"conv2d:\n  w8a8: {override}\n", 1)
    )
    with pytest.raises(RecipeError) as err:
        lower_node(q, q.node("layer1.0.conv1"), t, schedules=str(path))
    message = message.replace("{lanes}", str(t.codegen.vector_bits // 32))
    assert str(err.value).startswith(f"{path}: {message}")


@pytest.mark.parametrize(
    "precision,tile,ok", [("w8a8", 2, False), ("w8a8", 4, True), ("w16a16", 2, True)]
)
def test_partial_sum_tiles_cover_whole_addp_trees(tmp_path, precision, tile, ok):
    """`smull_smlal2` keeps 4 int32 (2 int64) partial sums per output channel and adds each 4
    (2) channels' with one ADDP tree: a recipe tile of fewer channels is a recipe error that
    says so, where it used to fail in TVM's tensorize (or divide by zero)."""
    q, _ = quantized("resnet18", precision)
    t = load_target("kryo280")
    text = open(recipes_for(t).path).read()
    start = text.index("      smull_smlal2: [")
    end = text.index("\n", start)
    path = tmp_path / "cpu-simd.yaml"
    path.write_text(text[:start] + f"      smull_smlal2: {{ow: 1, oc: {tile}}}" + text[end:])
    node = q.node("layer1.0.conv1")
    if ok:
        layer = lower_node(q, node, t, schedules=str(path))
        assert layer.schedule.intrinsic == "smull_smlal2"
        return
    with pytest.raises(RecipeError) as err:
        lower_node(q, node, t, schedules=str(path))
    assert str(err.value).startswith(
        f"{path}: conv2d.default.intrinsic_tile.smull_smlal2.oc: 2 is not a multiple of the "
        "block of 4 output channels of layer 'layer1.0.conv1'"
    )


def test_shipped_recipes_are_valid_and_cover_every_class():
    for kind in ("cpu-simd", "vliw-dsp", "host"):
        rf = load_recipes(schedules_dir() / f"{kind}.yaml")
        for cls in ("conv2d", "depthwise_conv2d", "dense", "elementwise", "pool"):
            for prec in ("w8a8", "w4a8", "w16a16", "fp32"):
                assert rf.recipe(cls, prec).values
    with pytest.raises(RecipeError, match="expected a mapping of operator classes"):
        parse_recipes([1, 2], "x.yaml")


def test_hvx_requantizes_in_vector_lanes_with_a_padded_channel_tail():
    """On hvx-v68 the 8-bit conv epilogue requantizes in 32 HVX lanes (`vmpye`); 144 output
    channels are written padded to 160 and sliced when unpacked (a 16-bit layer keeps the
    scalar int64 requantization)."""
    q, values = quantized("mobilenet_v2", "w8a8")
    t = load_target("hvx-v68")
    layer = lower_node(q, q.node("features.3.conv.0.0"), t)  # 1x1, 24 -> 144 channels
    assert layer.signature["requant_form"][0] == "vmpye"
    assert layer.args[-1].shape[-1] == 160
    assert "y.v" in layer.schedule.vectorized
    assert layer.pack_inputs(values)["mult"].shape == (160,)
    ref = values[layer.output]
    assert layer.unpack_output(np.zeros(layer.args[-1].shape, np.int8)).shape == ref.shape
    q16, _ = quantized("resnet18", "w16a16")
    assert lower_node(q16, q16.node("layer1.0.conv1"), t).signature["requant_form"] is None


def test_round_half_away_in_float32_matches_std_round():
    """`requant.round_half_away_f32` (the input quantize's TfLiteRound without float64, which
    Hexagon V62 lacks) against numpy's halves-away-from-zero rounding of the clamped value:
    ties of both signs, the float32 just below a half, values around 2^23 and past the
    clamp."""
    from accelsim.core.tvm_env import import_tvm
    from accelsim.lower import requant as rq

    tvm = import_tvm()
    te = tvm.te
    rng = np.random.default_rng(3)
    special = [0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 0.49999997, -0.49999997, 0.0, -0.0, 1.0]
    special += [2.0**23 - 0.5, -(2.0**23) + 0.5, 2.0**23 + 2, 1e9, -1e9, 65663.5, -65664.5]
    x = np.concatenate([special, rng.standard_normal(4096) * 300]).astype(np.float32)
    n = x.size
    lo, hi = -128 - 65536.0, 127 + 65536.0
    X = te.placeholder((n,), "float32", name="x")
    Y = te.compute((n,), lambda i: rq.round_half_away_f32(X[i], lo, hi), name="y")
    f = te.create_prim_func([X, Y]).with_attr("global_symbol", "rnd")
    sch = tvm.s_tir.Schedule(f)
    _, i = sch.split(sch.get_loops(sch.get_sblock("y"))[0], [None, 8])
    sch.vectorize(i)
    lib = tvm.compile(
        sch.mod, target=tvm.target.Target(load_target("host").codegen.tvm_target_dict())
    )
    out = tvm.runtime.empty((n,), "int32")
    lib["rnd"](tvm.runtime.tensor(x), out)
    v = np.clip(x.astype(np.float64), lo, hi)
    ref = (np.sign(v) * np.floor(np.abs(v) + 0.5)).astype(np.int32)
    np.testing.assert_array_equal(out.numpy(), ref)


def test_sdot_lane_gives_way_where_it_would_pad_or_be_unrolled_whole():
    """`sdot_lane` (16 input channels per call) packs its weights `[4 groups][4 lanes][4]`;
    a 3-channel input would be padded to 16 (`sdot` pads to 4), and a 1x1 conv over 64
    channels has 4 calls, fewer than its `min_calls`: both keep `sdot`, and say why."""
    q, values = quantized("resnet18", "w8a8")
    a76 = load_target("cortex-a76")
    layer = lower_node(q, q.node("layer1.0.conv1"), a76)  # 3x3, 64 -> 64
    assert layer.schedule.intrinsic == "sdot_lane"
    assert layer.args[1].shape == (16, 3, 3, 4, 4, 4, 4)  # [oc/4][kh][kw][ic/16][4][4][4]
    w = layer.pack_inputs(values)["w"]
    ref = q.constants[q.node("layer1.0.conv1").inputs[1]]  # OIHW
    # [ocb][kh][kw][icb][g][lane][k] = ref[4 ocb + lane, 16 icb + 4 g + k, kh, kw]
    expect = ref.reshape(16, 4, 4, 4, 4, 3, 3).transpose(0, 5, 6, 2, 3, 1, 4)
    np.testing.assert_array_equal(w, expect)
    for name, why in (("conv1", "padded to 16"), ("layer2.0.downsample.0", "fewer than 6 calls")):
        low = lower_node(q, q.node(name), a76)
        assert low.schedule.intrinsic == "sdot", name
        assert any("sdot_lane" in n and why in n for n in low.schedule.notes), low.schedule.notes


def _nibbles(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The signed low and high nibbles of packed int8 bytes."""
    u = packed.view(np.uint8).astype(np.int64)
    lo, hi = u & 0xF, u >> 4
    return np.where(lo > 7, lo - 16, lo), np.where(hi > 7, hi - 16, hi)


@pytest.mark.parametrize(
    "target,key,shape",
    [
        # [oc/8][kh][kw][ic/16][4 groups][4 lanes][4]: lanes i and i + 4 share a byte
        ("cortex-a76", "accelsim.sdot_lane.int8.w4x16", (8, 3, 3, 4, 4, 4, 4)),
        # [oc/2][kh][kw][ic/16][1][16]: channels 2b and 2b + 1 share a byte
        ("kryo280", "accelsim.smull_smlal2.int8.w4x16", (32, 3, 3, 4, 1, 16)),
    ],
)
def test_four_bit_weights_keep_the_8bit_kernel_and_are_exact(target, key, shape):
    """w4a8 runs the 8-bit kernel's instruction (SDOT by element; SMULL / SMLAL2 / SADALP) on
    two output channels' 4-bit weights per byte, taken as 16 x w by one SHL or AND shared by
    the tile's pixels. The packing is checked against the layer's weights and the kernel
    against the reference under qemu; a weight of -8 (full range) would overflow the int16
    pair sums of SMLAL2, and that layer gives way to `smull_sadalp`, saying why."""
    q, values = quantized("resnet18", "w4a8")
    t = load_target(target)
    node = q.node("layer1.0.conv1")  # 3x3, 64 -> 64
    layer = lower_node(q, node, t)
    assert layer.signature["intrinsic"] == key
    assert layer.args[1].shape == shape
    lo, hi = _nibbles(layer.pack_inputs(values)["w"])
    ref = q.constants[node.inputs[1]]  # OIHW
    if target == "cortex-a76":
        # [ocb][kh][kw][icb][g][lane][k] <- ref[8 ocb + lane, 16 icb + 4 g + k]
        expect = ref.reshape(8, 8, 4, 4, 4, 3, 3).transpose(0, 5, 6, 2, 3, 1, 4)
        np.testing.assert_array_equal(lo, expect[..., :4, :])
        np.testing.assert_array_equal(hi, expect[..., 4:, :])
    else:  # [b][kh][kw][icb][0][k] <- ref[2 b + (0: low, 1: high), 16 icb + k]
        expect = ref.reshape(32, 2, 4, 16, 3, 3).transpose(0, 1, 4, 5, 2, 3)
        np.testing.assert_array_equal(lo[..., 0, :], expect[:, 0])
        np.testing.assert_array_equal(hi[..., 0, :], expect[:, 1])

    # a weight of -8 (the full 4-bit range)
    wname = node.inputs[1]
    w8 = q.constants[wname].copy()
    w8[0, 0, 0, 0] = -8
    qf = q.replace(constants={**q.constants, wname: w8})
    full = lower_node(qf, node, t)
    if target == "kryo280":
        assert full.schedule.intrinsic == "smull_sadalp"
        assert any("-8 is below -7" in n for n in full.schedule.notes), full.schedule.notes
    else:  # SDOT adds 32-bit products: any weight
        assert full.signature["intrinsic"] == key

    missing = emulate.missing_tools("aarch64")
    if missing:
        pytest.skip(f"no aarch64 toolchain: {', '.join(missing)}")
    k = compile_layer(layer, t)
    assert k.instruction_mix.mnemonics.get("shl", 0) and k.instruction_mix.mnemonics.get("and", 0)
    r = emulate.run_aarch64(
        k.obj_path,
        k.symbol,
        list(k.args),
        layer.pack_inputs(values),
        ["y"],
        cpu=t.codegen.emulator.cpu,
    )
    assert mismatches(layer.unpack_output(r.outputs["y"]), values[layer.output]) == 0


def test_analytic_nest_takes_the_tile_of_the_intrinsic_the_target_would_use():
    """The analytic memory model does not lower layers: `tile_of` gives it the tile of the
    recipe's first intrinsic the target and the operand types allow (smmla on cortex-a720,
    sdot_lane on cortex-a76, smull_smlal2 on kryo280 and at w16a16; fp32 on kryo280: the
    section's own tile)."""
    from accelsim.core.precision import parse_precision
    from accelsim.lower.schedule import tile_of

    def tile(target, precision):
        t, p = load_target(target), parse_precision(precision)
        return tile_of(recipes_for(t).recipe("conv2d", p.name), t.codegen.features, p)

    assert tile("cortex-a720", "w8a8") == {"ow": "<=4", "oc": "<=16"}
    assert tile("cortex-a76", "w8a8") == {"ow": "<=8", "oc": "<=8"}
    assert tile("kryo280", "w8a8")[:3] == [
        {"ow": 4, "oc": 4},
        {"ow": 2, "oc": 8},
        {"ow": 1, "oc": 8},
    ]
    # fp32 on kryo280: no integer intrinsic, the fp32 section's tile
    assert tile("kryo280", "fp32") == {"ow": "<=8", "oc": "<=8"}
    assert tile("cortex-a76", "w16a16") == tile("kryo280", "w8a8")  # smull_smlal2's, int16
