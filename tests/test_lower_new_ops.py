"""Issue 14's operators lowered through TVM and run on the targets (qemu-aarch64 for
cortex-a76, qemu-hexagon for hvx-v68): every generated kernel of TFLite-converted models of the
mobile CNN and transformer families (int8 and 16x8) gives exactly the reference executor's tensor
(itself bit-exact with TFLite's reference kernels, tests/test_tflite.py), and the share of MACs
and layers that lowered is what `simulate` reports.

Operators covered: sigmoid/LOGISTIC, tanh, hard_swish, gelu (lookup tables), broadcast and
constant-operand add/sub/mul (squeeze-and-excitation, SiLU's product, masks), transpose, slice,
gather with constant indices, concat, pad reflect/symmetric, tile, nearest and bilinear resize,
depth_to_space, channel shuffle (reshape-transpose-reshape), matmul (activation x activation,
batched), dilated and grouped convolutions, and the encoder's softmax.
"""

from __future__ import annotations

import pytest

pytest.importorskip("tensorflow")

import tflite_models as M  # noqa: E402  (tests/ helper, needs TensorFlow)

import accelsim  # noqa: E402
from accelsim.core.target import load_target  # noqa: E402
from accelsim.kernels import emulate  # noqa: E402

# model -> (conversion, ops that must have run as generated kernels, min layer share lowered)
CASES = {
    "activations": (M.activations_model, "int8", {"sigmoid", "tanh", "mul", "add"}, 1.0),
    "gelu_hard_swish": (M.gelu_hard_swish_model, "int8", {"gelu", "hard_swish"}, 1.0),
    "movement": (
        M.movement_model,
        "int8",
        {"transpose", "slice", "gather", "concat", "pad", "reshape"},
        1.0,
    ),
    "depth_to_space_tile": (M.depth_to_space_tile_model, "int8", {"depth_to_space", "tile"}, 1.0),
    # the converter's SPACE_TO_BATCH_ND -> CONV -> BATCH_TO_SPACE_ND folded into dilated convs,
    # and a grouped (groups=2) conv
    "dilated_grouped_16x8": (M.dilated_model, "int16x8", {"conv2d"}, 1.0),
    # RESIZE_BILINEAR (integer interpolation, 10 fractional bits) and RESIZE_NEAREST_NEIGHBOR
    "resize_16x8": (M.resize_model, "int16x8", {"resize"}, 1.0),
    "resize_int8": (M.resize_model, "int8", {"resize"}, 1.0),
    "mobilenet_v3_block": (M.mobilenet_v3_block, "int8", {"hard_swish", "mul", "mean"}, 1.0),
    "efficientnet_block_16x8": (M.efficientnet_block, "int16x8", {"sigmoid", "mul"}, 1.0),
    "shufflenet_block": (M.shufflenet_block, "int8", {"transpose", "slice", "concat"}, 1.0),
    "tiny_bert_encoder": (
        M.tiny_bert_encoder,
        "int8",
        {"matmul", "softmax", "gelu", "transpose", "sub", "mul", "rsqrt"},
        1.0,
    ),
    # the layer norm's RSQRT as a 16-bit table (entries below zero, which TFLite rejects at
    # run time, repeat the value at zero)
    "tiny_bert_encoder_16x8": (M.tiny_bert_encoder, "int16x8", {"rsqrt", "matmul"}, 1.0),
}
_ARCH = {"qemu-aarch64": "aarch64", "qemu-hexagon": "hexagon"}


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    d = tmp_path_factory.mktemp("new_ops")
    cache: dict[str, str] = {}

    def get(name: str) -> str:
        if name not in cache:
            build, mode, _, _ = CASES[name]
            cache[name] = str(M.convert(build(), mode, d / f"{name}.tflite", seed=5))
        return cache[name]

    return get


@pytest.mark.parametrize("target", ["cortex-a76", "hvx-v68"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_new_ops_lower_bit_exact(name, target, converted, kernel_cache):
    arch = _ARCH[load_target(target).codegen.emulator.kind]
    missing = emulate.missing_tools(arch)
    if missing:
        pytest.skip(f"no {arch} toolchain: {', '.join(missing)}")
    path = converted(name)
    _, _, must, min_share = CASES[name]
    checked = accelsim.verify(path, target)
    ran = {c.op for c in checked.layers}
    print(
        f"{name} on {target}: {checked.mismatches} of {checked.elements} differ; ops {sorted(ran)}"
    )
    assert checked.ok and checked.elements > 0
    assert must <= ran, f"not run as kernels: {sorted(must - ran)}"
    (run,) = accelsim.simulate(path, target).runs
    cover = run.coverage
    assert cover is not None
    print(cover.text())
    assert cover.mac_share == 1.0 and cover.layer_share >= min_share


ONNX_FAMILIES = ("mobilenet_v3_block", "efficientnet_block", "shufflenet_block")


@pytest.mark.parametrize("precision", ["w8a8", "w8a16", "fp32"])
@pytest.mark.parametrize("target", ["cortex-a76", "hvx-v68"])
@pytest.mark.parametrize("family", ONNX_FAMILIES)
def test_torch_families_quantized_by_accelsim(family, target, precision, tmp_path, kernel_cache):
    """The same families exported by torch.onnx and quantized by accelsim's own quantizer
    (w8a16 keeps hard-swish / hard-sigmoid in float between quantize and dequantize, as the
    16x8 converter does): bit-exact, and every MAC lowered."""
    T = pytest.importorskip("torch_models")
    if target == "hvx-v68" and precision == "fp32":
        pytest.skip("hvx-v68 runs fp32 on its scalar core only (no HVX float)")
    path = tmp_path / f"{family}.onnx"
    path.write_bytes(T.export(family, 17))
    g = accelsim.load_model(str(path))
    q = (
        g
        if precision == "fp32"
        else accelsim.quantize(g, precision, data=accelsim.random_calibration(g, 2)).graph
    )
    checked = accelsim.verify(q, target, "fp32" if precision == "fp32" else None)
    assert checked.ok and checked.elements > 0
    (run,) = accelsim.simulate(q, target, "fp32" if precision == "fp32" else None).runs
    print(f"{family} {precision} on {target}: {run.coverage.text()}")
    # float sigmoid / tanh / hard-swish are polynomial kernels (accelsim.lower.floatmath);
    # quantized graphs use tables
    assert run.coverage.mac_share == 1.0 and run.coverage.layer_share >= 0.95
