"""HVX elementwise kernels: the requantizing add in 32-lane vectors with the vmpye form (the
inputs' rescalings and the output's, one-step rounding where exact), its operands read as
flat runs (24 channels, whose rows a 32-lane vector crosses: no gather), and the float input's
quantization by the scale's reciprocal and fused multiply-adds. Under qemu-hexagon they must
equal the reference executor bit for bit, with inputs at both ends of their ranges."""

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


def _residual(channels: int, precision: str):
    """x -> 1x1 conv -> add(conv, x): an add of two tensors of different scales."""
    rng = np.random.default_rng(channels)
    b = GraphBuilder("res")
    shape = (1, channels, 5, 8)  # 960 elements: whole 32-lane vectors
    x = b.input("x", shape)
    w = (rng.standard_normal((channels, channels, 1, 1)) * 0.4).astype(np.float32)
    c = b.add(
        "conv2d",
        [x, b.const("w", w), b.const("b", np.zeros(channels, np.float32))],
        name="conv",
        strides=(1, 1),
        pads=(0, 0, 0, 0),
        dilations=(1, 1),
        groups=1,
    )
    b.output(b.add("add", [c, x], name="add"))
    g = b.build()
    hi = np.full(shape, 3.0, np.float32)
    calib = CalibrationData((hi, -hi, rng.uniform(-3, 3, shape).astype(np.float32)), "ends")
    return quantize_graph(g, parse_precision(precision), calib).graph


@pytest.mark.parametrize("precision", ["w8a8", "w8a8/unsigned"])
def test_vector_add_and_quantize_exact(precision):
    q = _residual(24, precision)
    t = load_target("hvx-v68")
    add = lower_node(q, q.node("add"), t)
    assert [len(a.shape) for a in add.args[:2]] == [1, 1]  # flat runs of elements
    asm = Path(cg.compile_layer(add, t).asm_path).read_text()
    assert "vmpye(" in asm and "vmpyo(" in asm  # the 32-lane form
    quant = next(n for n in q.nodes if n.op == "quantize")
    qasm = Path(cg.compile_layer(lower_node(q, quant, t), t).asm_path).read_text()
    assert "sfmpy" in qasm and "sfrecipa" not in qasm  # fused multiply-adds, no division
    checked = api.verify(q, "hvx-v68")
    assert checked.elements > 0 and checked.mismatches == 0, checked.to_json()


def test_float_add_stays_on_the_scalar_core():
    """The add recipe's fp32 section keeps float adds scalar (HVX float vectors are qfloat)."""
    b = GraphBuilder("fadd")
    x = b.input("x", (1, 8, 4, 4))
    b.output(b.add("add", [x, x], name="add"))
    g = b.build()
    layer = lower_node(g, g.node("add"), load_target("hvx-v68"))
    assert not layer.schedule.vectorized
