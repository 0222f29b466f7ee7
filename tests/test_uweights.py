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
from accelsim.quant.ptq import CalibrationData, quantize_graph
from tests.layers import one_layer

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
    shape = (1, cin) if dense else (1, cin, 6, 6)
    w = np.sign(rng.standard_normal((cout, cin) if dense else (cout, cin, k, k)))
    w = (w * rng.uniform(0.2, 1.0, w.shape)).astype(np.float32)
    flat = w.reshape(cout, -1)
    flat[:, 0] = np.where(flat[:, 0] > 0, 1.0, -1.0)  # the channel's extreme
    g = one_layer("uw", shape, w, rng.standard_normal(cout) * 0.1, dense)
    hi = np.ones(shape, np.float32)
    calib = (hi, -hi, rng.uniform(-1, 1, shape).astype(np.float32))
    return g, CalibrationData(calib, "both ends of the range")


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


@pytest.mark.parametrize("cin, k, dense, precision", [(64, 3, False, "w4a8"), (40, 1, False, "w4a4"), (72, 1, True, "w4a8")])  # fmt: skip
def test_four_bit_weights_take_the_vector_by_scalar_form(cin, k, dense, precision):
    """4-bit weights on `vrmpy_rt`: stored as w + 8, input channels j and j + 4 of a block in
    one byte, each half used as 16 x (w + 8) (one vasl + vand, or one vand); exact at the
    extremes (weights -8 and +7 once quantized, activations at both ends), over padded input
    channels (40 -> 48: 6 blocks of 8) and in a dense layer."""
    g, data = _layer(cin, k, dense=dense)
    q = quantize_graph(g, parse_precision(precision), data).graph
    wname = q.node("layer").inputs[1]
    wq = np.array(q.constants[wname])
    wq.reshape(wq.shape[0], -1)[1, 0] = -8  # symmetric quantization stops at -7
    q = q.replace(constants={**q.constants, wname: wq})
    t = load_target("hvx-v68")
    layer = lower_node(q, q.node("layer"), t)
    assert layer.schedule.intrinsic == "vrmpy_rt", layer.schedule
    x = layer.inputs[0]
    packed = layer.pack_inputs({x: np.zeros(q.tensors[x].shape, np.int8)})["w"]
    assert packed.dtype == np.uint8 and packed.shape[-2:] == (32, 4)
    # the nibbles against the layer's weights: [O/32][KH][KW][I/8][32][4], byte [o, j] holding
    # input channel 8 b + j (low nibble) and 8 b + j + 4 (high), each as w + 8
    w = wq.astype(np.int64)
    w = w.reshape(w.shape[0], w.shape[1], -1) if not dense else w[:, :, None]
    cout, icp = w.shape[0], -(-cin // 8) * 8
    full = np.zeros((32 * packed.shape[0], icp, w.shape[2]), np.int64)
    full[:cout, :cin] = w
    lo, hi = packed & 0xF, packed >> 4
    blocks = full.reshape(packed.shape[0], 32, icp // 8, 8, -1)  # [ob][lane][ib][j][tap]
    want = np.moveaxis(blocks, 4, 1)  # [ob][tap][lane][ib][j]
    got_lo = lo.reshape(packed.shape[0], -1, icp // 8, 32, 4).transpose(0, 1, 3, 2, 4)
    got_hi = hi.reshape(packed.shape[0], -1, icp // 8, 32, 4).transpose(0, 1, 3, 2, 4)
    assert (got_lo == want[..., :4] + 8).all() and (got_hi == want[..., 4:] + 8).all()
    assert w.min() == -8 and w.max() == 7  # the extremes reached the kernel
    asm = Path(cg.compile_layer(layer, t).asm_path).read_text()
    assert ".ub,r" in asm and "vand(" in asm and "vasl(" in asm  # vrmpy(Vu.ub, Rt.b), unpacks
    checked = api.verify(q, "hvx-v68")
    assert checked.elements > 0 and checked.mismatches == 0, checked.to_json()
