"""HVX depthwise convolutions on the window intrinsic (accelsim.lower.window): per tap one
`vmpy(Vu.b, Vv.b)` into exact int16 products, pairs of taps widened into int32 by
`vadd(Vu.h, Vv.h)`, the accumulators put back in channel order by `vshuff`. Under qemu-hexagon
the kernels must equal the reference executor bit for bit at the operands' extremes (weights
+-127 in every channel, activations at both ends of their range): channel blocks of 128 (whole,
and padded from 144), strides 1 and 2, 3x3 and 5x5 windows (an odd tap count: the last tap
paired with zeros), the row form for fewer than 128 channels, and uint8 activations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from accelsim import api
from accelsim.core.precision import parse_precision
from accelsim.core.target import load_target
from accelsim.kernels import compile as cg
from accelsim.kernels import emulate
from accelsim.lower.lower import lower_node
from accelsim.model.builder import GraphBuilder
from accelsim.quant.ptq import CalibrationData, quantize_graph

pytestmark = [
    pytest.mark.usefixtures("kernel_cache"),
    pytest.mark.skipif(
        bool(emulate.missing_tools("hexagon")),
        reason="qemu-hexagon / the Hexagon toolchain absent (scripts/install-system-deps.sh)",
    ),
]


def _depthwise(c: int, k: int, stride: int, width: int):
    """One depthwise conv2d (k x k, pad k // 2) whose weights are +-max in every channel (so
    +-127 once quantized per channel) and whose inputs reach both ends of the range."""
    rng = np.random.default_rng(c * 10 + k + stride)
    b = GraphBuilder("dw")
    shape = (1, c, 5, width)
    x = b.input("x", shape)
    w = np.sign(rng.standard_normal((c, 1, k, k)))
    w = (w * rng.uniform(0.2, 1.0, w.shape)).astype(np.float32)
    flat = w.reshape(c, -1)
    flat[:, 0] = np.where(flat[:, 0] > 0, 1.0, -1.0)  # the channel's extreme
    bias = b.const("b", rng.standard_normal(c).astype(np.float32) * 0.1)
    y = b.add(
        "conv2d",
        [x, b.const("w", w), bias],
        name="layer",
        strides=(stride, stride),
        pads=(k // 2,) * 4,
        dilations=(1, 1),
        groups=c,
    )
    b.output(y)
    hi = np.ones(shape, np.float32)
    calib = (hi, -hi, rng.uniform(-1, 1, shape).astype(np.float32))
    return b.build(), CalibrationData(calib, "both ends of the range")


def _checked(c, k, stride, width, precision="w8a8"):
    g, data = _depthwise(c, k, stride, width)
    q = quantize_graph(g, parse_precision(precision), data).graph
    t = load_target("hvx-v68")
    layer = lower_node(q, q.node("layer"), t)
    return q, t, layer


@pytest.mark.parametrize(
    "c, k, stride, width, rows, padded",
    [
        (128, 3, 1, 6, False, 128),  # one whole block
        (144, 3, 2, 7, False, 256),  # channels padded to two blocks, stride 2
        (128, 5, 1, 6, False, 128),  # 25 taps: the last one paired with zeros
        (32, 3, 1, 8, True, 32),  # rows: 4 pixels x 32 channels a block
        (48, 5, 1, 8, True, 48),  # rows, a weight period of 3 blocks, 5 x 5
        (24, 3, 1, 6, False, 128),  # 6 x 24 bytes is no whole block: padded channels
    ],
)
def test_window_exact_at_the_extremes(c, k, stride, width, rows, padded):
    q, t, layer = _checked(c, k, stride, width)
    assert layer.schedule.intrinsic == "vmpy_window", layer.schedule
    assert layer.signature["rows"] == rows
    assert layer.signature["channels_padded"] == padded
    asm = Path(cg.compile_layer(layer, t).asm_path).read_text()
    assert ".h = vmpy(v" in asm and ".b)" in asm  # the widening byte multiply
    assert ".w += vadd(v" in asm and "vshuff(" in asm  # pairs widened, channel order back
    checked = api.verify(q, "hvx-v68")
    assert checked.elements > 0 and checked.mismatches == 0, checked.to_json()


def test_uint8_activations_take_the_unsigned_multiply():
    q, t, layer = _checked(32, 3, 1, 8, "w8a8/unsigned")
    assert layer.schedule.intrinsic == "vmpy_window"
    asm = Path(cg.compile_layer(layer, t).asm_path).read_text()
    assert ".ub,v" in asm  # vmpy(Vu.ub, Vv.b)
    checked = api.verify(q, "hvx-v68")
    assert checked.elements > 0 and checked.mismatches == 0, checked.to_json()


@pytest.mark.parametrize("kh, kw", [(1, 3), (3, 1), (1, 1)])
def test_a_unit_kernel_axis_keeps_the_plain_loop(kh, kw):
    """TVM drops a unit reduction axis from the layer's block, so no window description
    matches a 1 x K or K x 1 kernel: it keeps the vectorized loop, exact."""
    rng = np.random.default_rng(kh * 10 + kw)
    b = GraphBuilder("dw1")
    shape = (1, 128, 5, 8)
    x = b.input("x", shape)
    w = rng.standard_normal((128, 1, kh, kw)).astype(np.float32)
    bias = b.const("b", np.zeros(128, np.float32))
    pads = (kh // 2, kw // 2, kh // 2, kw // 2)
    y = b.add(
        "conv2d",
        [x, b.const("w", w), bias],
        name="layer",
        strides=(1, 1),
        pads=pads,
        dilations=(1, 1),
        groups=128,
    )
    b.output(y)
    g = b.build()
    data = CalibrationData((rng.uniform(-1, 1, shape).astype(np.float32),), "random")
    q = quantize_graph(g, parse_precision("w8a8"), data).graph
    assert lower_node(q, q.node("layer"), load_target("hvx-v68")).schedule.intrinsic is None
    checked = api.verify(q, "hvx-v68")
    assert checked.elements > 0 and checked.mismatches == 0, checked.to_json()


def test_four_bit_weights_keep_the_plain_loop():
    """The window intrinsic has 8-bit weights only: w4a8 keeps the vectorized loop."""
    _, _, layer = _checked(128, 3, 1, 6, "w4a8")
    assert layer.schedule.intrinsic is None
