"""The epilogue of integer convolutions and dense layers: the accumulators start from the bias
(`Built.starts`), and on HVX the zero point and the clamp of an 8-bit output run on the
saturating packs (`requant.hvx_finish_intrinsic`). Under qemu the kernels must equal the
reference executor bit for bit, with biases as large as the sums and outputs that reach both
ends of their range."""

from __future__ import annotations

import re
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

pytestmark = pytest.mark.usefixtures("kernel_cache")


def _needs(target: str):
    missing = emulate.missing_tools("hexagon" if target.startswith("hvx") else "aarch64")
    return pytest.mark.skipif(
        bool(missing), reason=f"{', '.join(missing)} absent (scripts/install-system-deps.sh)"
    )


def _layer(
    cin: int, cout: int, k: int = 1, dense: bool = False, bias_scale: float = 0.1, relu=False
):
    """One conv2d (k x k, pad k // 2, 6 x 6) or dense layer whose inputs reach both ends of the
    activation range; `bias_scale`: the float bias's standard deviation (1.0: biases of 2^13 to
    2^15 once quantized, as large as the sums of products); `relu`: a fused ReLU6."""
    rng = np.random.default_rng(cin * 7 + cout)
    shape = (1, cin) if dense else (1, cin, 6, 6)
    w = rng.uniform(-1, 1, (cout, cin) if dense else (cout, cin, k, k))
    bias = rng.standard_normal(cout) * bias_scale
    act = {"act_min": 0.0, "act_max": 6.0} if relu else {}
    g = one_layer("ep", shape, w, bias, dense, **act)
    hi = np.ones(shape, np.float32)
    calib = (hi, -hi, rng.uniform(-1, 1, shape).astype(np.float32))
    return g, CalibrationData(calib, "both ends of the range")


def _lowered(target: str, precision: str = "w8a8", qdq: bool = False, **kw):
    """The layer quantized, lowered for `target`; `qdq`: requantized as ONNX Runtime does
    (float32 scale, `requant_mode` "float"), as in an imported QDQ model."""
    g, data = _layer(**kw)
    q = quantize_graph(g, parse_precision(precision), data).graph
    if qdq:
        q = q.replace(requant_mode="float")
    t = load_target(target)
    return q, t, lower_node(q, q.node("layer"), t)


def _blocks(layer) -> dict[str, str]:
    """Each block's text in the scheduled kernel, by name."""
    text = layer.mod.script()
    out: dict[str, str] = {}
    for m in re.finditer(r'T\.sblock\("(\w+)"\)', text):
        out.setdefault(m.group(1), text[m.end() : m.end() + 3000].split("T.sblock(")[0])
    return out


@pytest.mark.parametrize(
    "target, kw",
    [
        pytest.param("cortex-a55", dict(cin=64, cout=32, k=3), marks=_needs("cortex-a55")),
        pytest.param("cortex-a76", dict(cin=96, cout=64, k=1), marks=_needs("cortex-a76")),
        pytest.param("hvx-v68", dict(cin=64, cout=64, k=1), marks=_needs("hvx-v68")),
        pytest.param("hvx-v68", dict(cin=40, cout=40, k=3), marks=_needs("hvx-v68")),
        pytest.param("hvx-v68", dict(cin=72, cout=128, dense=True), marks=_needs("hvx-v68")),
        pytest.param("host", dict(cin=64, cout=32, k=3)),
        pytest.param("host", dict(cin=3, cout=64, k=7, qdq=True)),  # ResNet-18 conv1's shape
        pytest.param("cortex-a76", dict(cin=96, cout=64, qdq=True), marks=_needs("cortex-a76")),
    ],
)
def test_accumulators_start_from_the_bias(target, kw):
    """The sums start from the bias (one vector add per accumulator less in the epilogue):
    the init reads the bias and the epilogue does not, and the outputs are the reference's."""
    q, t, layer = _lowered(target, bias_scale=1.0, **kw)
    blocks = _blocks(layer)
    assert "bias[" in blocks["acc_init"], blocks["acc_init"]
    epilogue = blocks.get("requant") or blocks["y"]
    assert "bias[" not in epilogue, epilogue
    bias = np.asarray(q.constants[q.node("layer").inputs[2]])
    assert np.abs(bias).max() > 2**13  # a bias that moves the outputs
    checked = api.verify(q, target)
    assert checked.elements > 0 and checked.mismatches == 0, checked.to_json()


@pytest.mark.parametrize(
    "target, precision, kw",
    [
        pytest.param("cortex-a55", "w4a8", dict(cin=64, cout=32, k=3), marks=_needs("cortex-a55")),
        pytest.param("hvx-v68", "w4a8", dict(cin=64, cout=64, k=1), marks=_needs("hvx-v68")),
        pytest.param("hvx-v68", "w16a16", dict(cin=64, cout=32, k=1), marks=_needs("hvx-v68")),
    ],
)
def test_bias_stays_in_the_epilogue_where_the_sums_are_not_whole(target, precision, kw):
    """4-bit weights accumulate 16 x the sums (their shift back and the bias add are one
    SSRA / `+= vasr`), 16-bit operands int64 sums with an int64 bias: the bias is added in
    the epilogue, and the outputs are the reference's."""
    q, t, layer = _lowered(target, precision, bias_scale=1.0, **kw)
    assert "bias[" not in _blocks(layer).get("acc_init", "")
    checked = api.verify(q, target)
    assert checked.elements > 0 and checked.mismatches == 0, checked.to_json()


@pytest.mark.parametrize(
    "precision, kw, pack_b",
    [
        ("w8a8", dict(cin=64, cout=64, k=1), r"\.b = vpack\(v\d+\.h,v\d+\.h\):sat"),  # 64 lanes
        ("w8a8", dict(cin=72, cout=128, dense=True), r"\.b = vpack\(v\d+\.h,v\d+\.h\):sat"),
        ("w8a8/unsigned", dict(cin=64, cout=64, k=3), r"\.ub = vpack\(v\d+\.h,v\d+\.h\):sat"),
    ],
)
@_needs("hvx-v68")
def test_hvx_output_stage_takes_the_saturating_packs(precision, kw, pack_b):
    """int32 -> int16 -> 8 bits by `vpack(...):sat`, not a VMIN + VMAX pair per vector and a
    truncating `vpacke`; exact under qemu with outputs saturating at both ends (inputs at both
    ends of their range, random weights)."""
    q, t, layer = _lowered("hvx-v68", precision, **kw)
    asm = Path(cg.compile_layer(layer, t).asm_path).read_text()
    assert re.search(r"\.h = vpack\(v\d+\.w,v\d+\.w\):sat", asm), "no saturating pack w -> h"
    assert re.search(pack_b, asm), "no saturating pack h -> 8 bits"
    assert "vpacke" not in asm and ".w = vmin(" not in asm
    checked = api.verify(q, "hvx-v68")
    assert checked.elements > 0 and checked.mismatches == 0, checked.to_json()


@pytest.mark.parametrize(
    "target, kw, fixup",
    [
        pytest.param("cortex-a55", dict(cin=64, cout=32, k=1), "ssra", marks=_needs("cortex-a55")),
        pytest.param("cortex-a76", dict(cin=40, cout=64, k=3), "ssra", marks=_needs("cortex-a76")),
        pytest.param("hvx-v68", dict(cin=64, cout=64, k=1), None, marks=_needs("hvx-v68")),
        pytest.param("host", dict(cin=64, cout=32, k=3), None),
    ],
)
def test_relu_outputs_skip_the_rounding_of_negative_values(target, kw, fixup):
    """Under a fused ReLU the output clamp starts at the zero point, so the requantization
    leaves RoundingDivideByPOT's correction of negative values out (`requant` module
    docstring, `nonneg`): on NEON no SSRA where the same layer without the ReLU has one per
    vector; the outputs are the reference's under qemu (and on the host)."""
    q, t, layer = _lowered(target, relu=True, bias_scale=1.0, **kw)
    attrs = q.node("layer").attrs
    assert attrs.get("act_min") == 0.0
    if fixup:
        asm = Path(cg.compile_layer(layer, t).asm_path).read_text()
        plain = _lowered(target, bias_scale=1.0, **kw)[2]
        plain_asm = Path(cg.compile_layer(plain, t).asm_path).read_text()
        assert fixup in plain_asm and fixup not in asm
    checked = api.verify(q, target)
    assert checked.elements > 0 and checked.mismatches == 0, checked.to_json()
