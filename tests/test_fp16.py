"""fp16 float baselines (accelsim.lower.ops `float_types`, accelsim.kernels.verify
`fp16_tolerance`): half-precision FMLA on cores with FP16 arithmetic, float32 arithmetic where the
target emulates fp16, no lowering elsewhere, and whole-model runs under qemu-aarch64 against the
reference executor within a tolerance derived from the arithmetic, shown tight enough to catch
100-ulp errors and a dropped bias.

The tolerance (verify.py comment): the reference rounds the float64 value s once to float16; the
kernel rounds n times in its arithmetic dtype (unit roundoff u: 2^-11 for float16), each error at
most u times a partial result bounded by A = sum |term|; probabilistically (Higham & Mary 2019,
Ipsen & Zhou 2019) |kernel - s| <= 9 sqrt(n) u A, plus 2 u16 A for the two final roundings.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from accelsim.core.precision import parse_precision
from accelsim.core.target import load_target
from accelsim.kernels import emulate
from accelsim.kernels import verify as V
from accelsim.kernels.compile import compile_layer
from accelsim.lower.common import FloatArith
from accelsim.lower.lower import lower_graph
from accelsim.model import zoo
from accelsim.model.io import random_inputs
from accelsim.quant import calibdata
from accelsim.quant.ptq import quantize_graph
from accelsim.ref.executor import KernelCall, find_kernel, run

pytestmark = pytest.mark.usefixtures("kernel_cache")

HALF_FMA = re.compile(r"^\s*fmla\s+v\d+\.(8h|4h)\b", re.M)
SINGLE_FMA = re.compile(r"^\s*fmla\s+v\d+\.4s\b", re.M)
WEIGHTED = ("conv2d", "depthwise_conv2d", "dense")


def _need_qemu():
    missing = emulate.missing_tools("aarch64")
    if missing:
        pytest.skip(f"no aarch64 toolchain: {', '.join(missing)}")


@cache
def fp16_model(model: str):
    g = zoo.build(model, input_size=32)
    q = quantize_graph(g, parse_precision("fp16"), calibdata.random(g, 2)).graph
    return q, run(q, random_inputs(q, seed=0), keep=True)


@cache
def compiled(model: str, target: str):
    q, _ = fp16_model(model)
    t = load_target(target)
    layers = lower_graph(q, t)
    return t, layers, [(L, compile_layer(L, t)) for L in layers if L.status == "kernel"]


@cache
def outputs(model: str, target: str):
    """Every kernel's output for the reference inputs, run once in qemu."""
    q, values = fp16_model(model)
    t, _, items = compiled(model, target)
    return V.RUNNERS[t.codegen.emulator.kind](items, values, t)


# -- lowering and code ---------------------------------------------------------------------------
def test_every_fp16_weighted_kernel_on_cortex_a76_uses_half_precision_fma():
    _, layers, items = compiled("mobilenet_v2", "cortex-a76")
    assert [L.name for L in layers if L.status == "not lowered"] == []
    weighted = [(L, k) for L, k in items if L.op_class in WEIGHTED]
    assert len(weighted) == 53  # 35 conv2d + 17 depthwise + 1 dense
    for L, k in weighted:
        asm = Path(k.asm_path).read_text()
        assert len(HALF_FMA.findall(asm)) > 0, L.name
        assert L.arith == FloatArith("float16", L.arith.roundings) and L.precision == "fp16"
        assert k.args[0].dtype == "float16" and k.args[-1].dtype == "float16", L.name
    # 8 half-precision lanes per 128-bit vector along output channels (4 for fp32 recipes)
    first = next(L for L, _ in weighted if L.op_class == "conv2d")
    assert first.schedule.blocks["oc"] == 8


def test_fp16_without_fp16_arithmetic_is_computed_in_fp32_on_kryo280():
    # kryo280: no 'fp16' in codegen.features, `emulation: fp16: computed in fp32`
    _, layers, items = compiled("mobilenet_v2", "kryo280")
    weighted = [(L, k) for L, k in items if L.op_class in WEIGHTED]
    assert len(weighted) == 53
    for L, k in weighted:
        asm = Path(k.asm_path).read_text()
        assert not HALF_FMA.findall(asm), L.name
        assert (
            SINGLE_FMA.findall(asm)
            or L.op_class == "depthwise_conv2d"
            and re.search(r"^\s*fml[as]\s+v\d+\.4s", asm, re.M)
        ), L.name
        assert re.search(r"^\s*fcvtl2?\s", asm, re.M), L.name  # float16 loads widened
        assert L.arith.dtype == "float32" and k.args[0].dtype == "float16", L.name


def test_fp16_not_lowered_on_targets_without_fp16_arithmetic_or_emulation():
    q, _ = fp16_model("mobilenet_v2")
    t = load_target("hvx-v68")
    assert "fp16" not in t.codegen.features and "fp16" not in t.codegen.emulation
    layers = [L for L in lower_graph(q, t) if L.op_class in WEIGHTED]
    assert layers and all(L.status == "not lowered" for L in layers)
    assert all(
        "no fp16 arithmetic" in L.reason and "codegen.emulation" in L.reason for L in layers
    ), layers[0].reason


# -- the tolerance against a brute-force float16 accumulation ---------------------------------
def test_tolerance_bounds_simulated_float16_dot_products_and_is_not_vacuous():
    """Brute force: 2 x 2000 dot products of K = 1000 terms, each accumulated by float16 FMAs in
    numpy (exact product and sum in float64, one rounding to float16 per step), against the
    float64 value rounded to float16 as the reference computes it. All-positive terms are the
    worst case (partial sums grow to A); mixed signs are the common one."""
    rng = np.random.default_rng(3)
    K, T = 1000, 2000
    arith = FloatArith("float16", 2 * K + 1)
    worst, worst_partial = {}, {}
    for case, x, w in (
        ("positive", rng.uniform(0, 1, (T, K)), rng.uniform(0, 0.05, (T, K))),
        ("mixed", rng.standard_normal((T, K)), 0.05 * rng.standard_normal((T, K))),
    ):
        x = x.astype(np.float16).astype(np.float64)
        w = w.astype(np.float16).astype(np.float64)
        acc = np.zeros(T, np.float16)
        for j in range(K):
            acc = (acc.astype(np.float64) + x[:, j] * w[:, j]).astype(np.float16)
        ref = (x * w).sum(axis=1).astype(np.float16).astype(np.float64)
        a = np.abs(x * w).sum(axis=1)
        tol = V.fp16_tolerance(arith, a)
        err = np.abs(acc.astype(np.float64) - ref)
        assert (err <= tol).all(), case
        worst[case] = float((err / tol).max())
        # the partial-sum form verify uses for conv2d / dense: c_j = exact partial sums and
        # products (no bias here)
        ps = np.cumsum(x * w, axis=1)
        partial = np.sqrt((ps * ps).sum(axis=1) + ((x * w) ** 2).sum(axis=1))
        tol_p = V.fp16_tolerance(arith, a, partial)
        assert (err <= tol_p).all() and (tol_p <= tol).all(), case
        worst_partial[case] = float((err / tol_p).max())
    # the real error reaches a sizeable share of the bound (measured: 0.105 of the
    # A-form with all-positive terms, 0.1-0.2 of the partial-sum form in both cases): neither
    # is loose by orders of magnitude
    assert worst["positive"] > 0.05, worst
    assert min(worst_partial.values()) > 0.05, worst_partial


def test_partial_sums_match_naive_loops_in_the_kernel_order():
    """verify.fp16_partial_sums (im2col, groups, padding, stride, dilation, reduction order
    from the schedule) against plain Python loops over one strided, padded conv, one
    depthwise conv and the dense layer of a tiny graph."""
    from types import SimpleNamespace

    from accelsim.model.graph import Graph, Node, TensorInfo

    rng = np.random.default_rng(5)

    def naive(x, w, b, stride, pad, dil, groups, order):
        N, C, H, W_ = x.shape
        O, Ig, KH, KW = w.shape
        xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        OH = (H + 2 * pad - dil * (KH - 1) - 1) // stride + 1
        OW = (W_ + 2 * pad - dil * (KW - 1) - 1) // stride + 1
        out = np.zeros((N, O, OH, OW))
        idx = {"kh": range(KH), "kw": range(KW), "ic": range(Ig)}
        for n in range(N):
            for o in range(O):
                g = o // (O // groups)
                for i in range(OH):
                    for j in range(OW):
                        s = q = 0.0
                        for a in idx[order[0]]:
                            for bb in idx[order[1]]:
                                for c in idx[order[2]]:
                                    k = dict(zip(order, (a, bb, c)))
                                    t = (
                                        xp[
                                            n,
                                            g * Ig + k["ic"],
                                            i * stride + k["kh"] * dil,
                                            j * stride + k["kw"] * dil,
                                        ]
                                        * w[o, k["ic"], k["kh"], k["kw"]]
                                    )
                                    s += t
                                    q += s * s + t * t
                        out[n, o, i, j] = np.sqrt(q + (s + b[o]) ** 2)
        return out

    cases = [
        ((1, 4, 6, 6), (6, 4, 3, 3), 2, 1, 1, 1, ("kh", "kw", "ic")),
        ((1, 4, 6, 6), (6, 4, 3, 3), 1, 2, 2, 1, ("ic", "kw", "kh")),
        ((2, 5, 5, 5), (5, 1, 3, 3), 1, 1, 1, 5, ("kh", "kw", "ic")),
    ]
    for xs, ws, stride, pad, dil, groups, order in cases:
        x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
        expect = naive(x, w, b, stride, pad, dil, groups, order)
        node = Node(
            "c",
            "conv2d",
            ("x", "w", "b"),
            ("y",),
            {
                "strides": (stride, stride),
                "pads": (pad,) * 4,
                "dilations": (dil, dil),
                "groups": groups,
                "data_layout": "NCHW",
            },
        )
        g = Graph(
            "t",
            [node],
            {
                "x": TensorInfo("x", xs, "float16"),
                "w": TensorInfo("w", ws, "float16"),
                "b": TensorInfo("b", ws[:1], "float16"),
                "y": TensorInfo("y", expect.shape, "float16"),
            },
            ["x"],
            ["y"],
            {"w": w, "b": b},
        )
        layer = SimpleNamespace(
            name="c", output="y", schedule=SimpleNamespace(order=("n", "oh") + order)
        )
        got = V.fp16_partial_sums(g, layer, {"x": x, "w": w, "b": b, "y": expect})
        np.testing.assert_allclose(got, expect, rtol=1e-12)
    # dense: a 1x1 convolution of a 1x1 image
    x, w, b = rng.standard_normal((2, 7)), rng.standard_normal((3, 7)), rng.standard_normal(3)
    expect = naive(x[:, :, None, None], w[:, :, None, None], b, 1, 0, 1, 1, ("kh", "kw", "ic"))[
        :, :, 0, 0
    ]
    node = Node("d", "dense", ("x", "w", "b"), ("y",), {})
    g = Graph(
        "t",
        [node],
        {
            "x": TensorInfo("x", (2, 7), "float16"),
            "w": TensorInfo("w", (3, 7), "float16"),
            "b": TensorInfo("b", (3,), "float16"),
            "y": TensorInfo("y", (2, 3), "float16"),
        },
        ["x"],
        ["y"],
        {"w": w, "b": b},
    )
    layer = SimpleNamespace(name="d", output="y", schedule=SimpleNamespace(order=("n", "ic")))
    got = V.fp16_partial_sums(g, layer, {"x": x, "w": w, "b": b, "y": expect})
    np.testing.assert_allclose(got, expect, rtol=1e-12)


# -- whole models under qemu ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "model,target",
    [("mobilenet_v2", "cortex-a76"), ("resnet18", "cortex-a76"), ("mobilenet_v2", "kryo280")],
)
def test_fp16_model_verifies(model, target):
    _need_qemu()
    q, values = fp16_model(model)
    t = load_target(target)
    checks = V.verify_graph(q, t, None, random_inputs(q, seed=0))
    assert len(checks) == {"mobilenet_v2": 65, "resnet18": 32}[model]  # softmax included
    assert sum(c.mismatches for c in checks) == 0, [c for c in checks if c.mismatches]


def test_fp16_tolerance_catches_100_ulp_errors_and_a_dropped_bias():
    _need_qemu()
    q, values = fp16_model("mobilenet_v2")
    _, _, items = compiled("mobilenet_v2", "cortex-a76")
    got = outputs("mobilenet_v2", "cortex-a76")
    bad_100ulp: dict[str, int] = {}
    for (L, _), g in zip(items, got):
        assert V.fp16_mismatches(q, L, values, g) == 0, L.name
        ref = values[L.output]
        ulp = np.spacing(np.abs(ref)).astype(np.float64)  # float16 ulp of each element
        bad_100ulp[L.name] = V.fp16_mismatches(q, L, values, g.astype(np.float64) + 100 * ulp)
    # every layer flags it (measured: 6% of the dense layer's 1000 outputs, K = 1280, to all
    # of the exact ones: adds, pools)
    assert all(bad_100ulp.values()), {n: c for n, c in bad_100ulp.items() if not c}
    assert bad_100ulp["classifier.1"] >= 20

    # a wrong kernel: one that forgets the bias (the layer's reference kernel without it, on
    # the same inputs, rounded to float16 as a kernel stores it)
    caught = {}
    for L, _ in items:
        node = q.node(L.name)
        if L.op_class not in WEIGHTED or len(node.inputs) < 3 or not node.inputs[2]:
            continue
        vals = dict(values)
        vals[node.inputs[2]] = np.zeros_like(values[node.inputs[2]])
        call = KernelCall(
            node,
            [vals[t] for t in node.inputs],
            [q.tensors[t] for t in node.inputs],
            [q.tensors[L.output]],
            q,
        )
        wrong = np.asarray(find_kernel(node.op, "fp")(call)[0]).astype(np.float16)
        caught[L.name] = V.fp16_mismatches(q, L, values, wrong)
    assert len(caught) == 53 and all(caught.values()), {n: c for n, c in caught.items() if not c}
