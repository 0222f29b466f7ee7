"""HVX depthwise convolutions on the window intrinsic (accelsim.lower.window): per tap one
`vmpy(Vu.b, Vv.b)` into exact int16 products, pairs of taps widened into int32 by
`vadd(Vu.h, Vv.h)`, the accumulators put back in channel order by `vshuff`. Under qemu-hexagon
the kernels must equal the reference executor bit for bit at the operands' extremes (weights
+-127 in every channel, activations at both ends of their range): channel blocks of 128 (whole,
and padded from 144), strides 1 and 2, 3x3 and 5x5 windows (an odd tap count: the last tap
paired with zeros), the row form for fewer than 128 channels, uint8 activations, and 4-bit
weights (widened to int8 when packed)."""

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


@pytest.mark.parametrize("c, width, rows", [(128, 6, False), (32, 8, True)])
def test_four_bit_weights_take_the_window_widened_to_int8(c, width, rows):
    """4-bit depthwise weights are widened to int8 when packed (as LiteRT unpacks int4 filters
    when it loads a model), so the 8-bit window kernel serves them: the packed weights are
    the layer's 4-bit values one per byte (a -8 forced in), and the kernel is exact."""
    g, data = _depthwise(c, 3, 1, width)
    q = quantize_graph(g, parse_precision("w4a8"), data).graph
    wname = q.node("layer").inputs[1]
    wq = np.array(q.constants[wname])
    wq.reshape(c, -1)[1, 0] = -8  # symmetric quantization stops at -7
    q = q.replace(constants={**q.constants, wname: wq})
    t = load_target("hvx-v68")
    layer = lower_node(q, q.node("layer"), t)
    assert layer.schedule.intrinsic == "vmpy_window" and layer.signature["rows"] == rows
    x = layer.inputs[0]
    packed = layer.pack_inputs({x: np.zeros(q.tensors[x].shape, np.int8)})["w"]
    assert packed.dtype == np.int8 and packed.min() == -8 and packed.max() <= 7
    want = wq.reshape(c, 3, 3).transpose(1, 2, 0)  # [KH][KW][C]
    if rows:  # [block][KH][KW][128 lanes], lane i of block b: channel (128 b + i) mod c
        got = packed.transpose(1, 2, 0, 3).reshape(3, 3, -1)[:, :, :c]
    else:
        got = packed[:, :, :c]
    assert (got == want).all()
    checked = api.verify(q, "hvx-v68")
    assert checked.elements > 0 and checked.mismatches == 0, checked.to_json()
