"""Quantization parameters that survive real trained weights: output channels whose weights are
all zero, constant or of a tiny range, and biases that do not fit the accumulator at the usual
scale. The reference executor, the generated kernels (host, and qemu on cortex-a76) and the
quantizer must agree, and nothing may overflow silently."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest

from accelsim import api
from accelsim.core import requant as rq
from accelsim.core.errors import QuantizationWarning
from accelsim.core.precision import parse_precision
from accelsim.model.builder import GraphBuilder
from accelsim.quant.ptq import CalibrationData, quantize_graph
from accelsim.ref.executor import run

DEAD, CONST, TINY, BIG_BIAS = 2, 3, 4, 5


def _conv(big_bias: bool = False):
    rng = np.random.default_rng(0)
    b = GraphBuilder("deadconv")
    x = b.input("x", (1, 4, 8, 8))
    w = (rng.standard_normal((6, 4, 3, 3)) * 0.2).astype(np.float32)
    w[DEAD] = 0.0  # a pruned / dead channel, as trained networks have
    w[CONST] = 0.05
    w[TINY] = 1e-30
    bias = np.array([0.1, -0.2, 0.0145, 0.3, 0.02, -0.05], np.float32)
    if big_bias:  # a live channel whose bias is far beyond what int32 holds at s_in * s_w
        w[BIG_BIAS] = 1e-9 * np.sign(rng.standard_normal((4, 3, 3)))
        bias[BIG_BIAS] = 5.0
    y = b.add(
        "conv2d",
        [x, b.const("w", w), b.const("b", bias)],
        name="conv",
        strides=(1, 1),
        pads=(1, 1, 1, 1),
        dilations=(1, 1),
        groups=1,
    )
    b.output(y)
    data = tuple(rng.standard_normal((1, 4, 8, 8)).astype(np.float32) for _ in range(4))
    return b.build(), CalibrationData(data, "seeded normal samples")


@pytest.mark.parametrize("prec", ["w8a8", "w16a16", "w8a8/per-tensor"])
def test_dead_constant_and_tiny_channels_are_exact(prec):
    g, data = _conv()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing here needs a warning: no precision is lost
        q = quantize_graph(g, parse_precision(prec), data).graph
    conv = next(n for n in q.nodes if n.op == "conv2d")
    x_info, w_info, b_info = (q.tensors[t] for t in conv.inputs)
    out = q.tensors[conv.outputs[0]]
    scales = w_info.quant.scales()
    assert np.all(np.isfinite(scales)) and np.all(scales > 1e-12), scales
    bias_q = q.constants[conv.inputs[2]].astype(np.int64)
    assert np.abs(bias_q).max() < rq.accumulator_limit(x_info, w_info, b_info) // 2, bias_q
    s_out = out.quant.scales()[0]
    m = x_info.quant.scales()[0] * np.broadcast_to(scales, (6,)) / s_out
    assert np.all(m >= 2.0**-31), m  # no requantization multiplier flushed to zero
    ref = run(g, [data.samples[0]])[g.outputs[0]]
    got = run(q, [data.samples[0]])[q.outputs[0]]
    # dead channel: the bias, quantized once to the output grid (rounding only)
    np.testing.assert_allclose(got[0, DEAD], 0.0145, atol=s_out / 2 + 1e-7)
    # every channel within the quantization noise of its inputs and weights
    err = np.abs(got - ref).max(axis=(0, 2, 3))
    assert err[DEAD] <= s_out / 2 + 1e-7 and err[TINY] <= s_out / 2 + 1e-7, err
    assert err.max() < 0.1 if prec.startswith("w8") else err.max() < 1e-3, err


def test_a_bias_beyond_the_accumulator_raises_the_weight_scale_with_a_warning():
    g, data = _conv(big_bias=True)
    with pytest.warns(QuantizationWarning, match=r"node 'conv' channel 5: bias 5 does not fit"):
        q = quantize_graph(g, parse_precision("w8a8"), data).graph
    conv = next(n for n in q.nodes if n.op == "conv2d")
    bias_q = q.constants[conv.inputs[2]].astype(np.int64)
    assert np.abs(bias_q).max() < 2**31
    ref = run(g, [data.samples[0]])[g.outputs[0]]
    got = run(q, [data.samples[0]])[q.outputs[0]]
    s_out = q.tensors[conv.outputs[0]].quant.scales()[0]
    # before: the bias clamped at 2^31 steps of ~1e-11, i.e. ~0.02 instead of 5
    assert np.abs(got[0, BIG_BIAS] - ref[0, BIG_BIAS]).max() <= s_out / 2 + 1e-6


@pytest.mark.parametrize(
    "target,prec",
    [
        ("host", "w8a8"),
        ("host", "w16a16"),
        pytest.param(
            "cortex-a76",
            "w8a8",
            marks=pytest.mark.skipif(
                shutil.which("qemu-aarch64") is None, reason="qemu-aarch64 absent"
            ),
        ),
    ],
)
def test_generated_kernels_agree_on_dead_channels(target, prec):
    g, data = _conv()
    q = quantize_graph(g, parse_precision(prec), data).graph
    checked = api.verify(q, target)
    assert checked.elements > 0 and checked.mismatches == 0, checked.to_json()
