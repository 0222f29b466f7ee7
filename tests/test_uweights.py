"""HVX convolutions and dense layers on the vector x scalar `vrmpy` (accelsim.lower.uweights):
weights stored as w + 128, the activations' sums subtracted once per pixel. Under qemu-hexagon
the kernels must equal the reference executor bit for bit at the operands' extremes (weights
+-127, activations at both ends of their range), with padding, input channels that fill the
sums' 16- or 8-byte calls (where they fill neither, the layer keeps the vector x vector
`vrmpy`), output channels padded to 32, and uint8 activations."""

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


def _layer(cin: int, k: int, cout: int = 40, dense: bool = False):
    """One conv2d (k x k, pad k // 2) or dense layer whose weights are +-max in every output
    channel (so +-127 once quantized per channel) and whose inputs reach both ends of the
    activation range."""
    rng = np.random.default_rng(cin * 10 + k)
    b = GraphBuilder("uw")
    shape = (1, cin) if dense else (1, cin, 6, 6)
    x = b.input("x", shape)
    w = np.sign(rng.standard_normal((cout, cin) if dense else (cout, cin, k, k)))
    w = (w * rng.uniform(0.2, 1.0, w.shape)).astype(np.float32)
    flat = w.reshape(cout, -1)
    flat[:, 0] = np.where(flat[:, 0] > 0, 1.0, -1.0)  # the channel's extreme
    bias = b.const("b", rng.standard_normal(cout).astype(np.float32) * 0.1)
    if dense:
        y = b.add("dense", [x, b.const("w", w), bias], name="layer")
    else:
        y = b.add(
            "conv2d",
            [x, b.const("w", w), bias],
            name="layer",
            strides=(1, 1),
            pads=(k // 2,) * 4,
            dilations=(1, 1),
            groups=1,
        )
    b.output(y)
    hi = np.ones(shape, np.float32)
    calib = (hi, -hi, rng.uniform(-1, 1, shape).astype(np.float32))
    return b.build(), CalibrationData(calib, "both ends of the range")


def _lowered(g, data, precision: str):
    q = quantize_graph(g, parse_precision(precision), data).graph
    t = load_target("hvx-v68")
    layer = lower_node(q, q.node("layer"), t)
    return q, t, layer


@pytest.mark.parametrize(
    "cin, k, dense, sums",
    [
        (64, 3, False, "vrmpybsu"),  # 16-byte sum calls, padded input
        (40, 1, False, "vrmpybsu"),  # 8-byte calls
        (36, 3, False, None),  # no call fits: the vector x vector `vrmpy`, no sums
        (72, 1, True, "vrmpybsu"),  # dense, batch 1
    ],
)
def test_offset_weights_exact_at_the_extremes(cin, k, dense, sums):
    g, data = _layer(cin, k, dense=dense)
    q, t, layer = _lowered(g, data, "w8a8")
    asm = Path(cg.compile_layer(layer, t).asm_path).read_text()
    if sums is None:  # scalar sums would cost more than the second multiply slot saves
        assert layer.schedule.intrinsic == "vrmpy", layer.schedule
        assert "byte-sum" in " ".join(layer.schedule.notes)
        assert "vrmpybsu" not in asm and ".ub,r" not in asm
    else:
        assert layer.schedule.intrinsic == "vrmpy_rt", layer.schedule
        x = layer.inputs[0]
        packed = layer.pack_inputs({x: np.zeros(q.tensors[x].shape, np.int8)})
        assert packed["w"].dtype == np.uint8  # w + 128
        assert ".ub,r" in asm and ".b)" in asm  # vrmpy(Vu.ub, Rt.b): a scalar operand
        assert "vrmpybsu" in asm
    checked = api.verify(q, "hvx-v68")
    assert checked.elements > 0 and checked.mismatches == 0, checked.to_json()


def test_uint8_activations_take_the_unsigned_forms():
    g, data = _layer(64, 3)
    q, t, layer = _lowered(g, data, "w8a8/unsigned")
    assert layer.schedule.intrinsic == "vrmpy_rt"
    asm = Path(cg.compile_layer(layer, t).asm_path).read_text()
    assert ".ub,r" in asm and ".ub)" in asm and "vrmpybu" in asm  # vrmpy(Vu.ub, Rt.ub)
    checked = api.verify(q, "hvx-v68")
    assert checked.elements > 0 and checked.mismatches == 0, checked.to_json()


def test_four_bit_weights_keep_the_vector_by_vector_form():
    """`vrmpy_rt` has 8-bit weights only: w4a8 falls through to `vrmpy`, the weights unpacked
    in registers."""
    g, data = _layer(64, 3)
    _, _, layer = _lowered(g, data, "w4a8")
    assert layer.schedule.intrinsic == "vrmpy"
