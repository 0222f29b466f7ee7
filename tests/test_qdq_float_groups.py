"""The operators ONNX Runtime's quantizer leaves in float, or runs as its own integer kernels,
as generated code on the CPU/DSP targets (qemu-aarch64 for cortex-a76, qemu-hexagon for
hvx-v68): the float pointwise functions without libm (`accelsim.lower.floatmath`), float
softmax on a runtime without libm, and QLinearSoftmax's integer arithmetic where its rows
saturate. Each kernel against the reference executor (exact for integers, `verify`'s float32
tolerance for floats); the reference's ORT arithmetic is checked against ONNX Runtime itself in
tests/test_corpus.py and tests/test_onnx.py."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from accelsim.backends import verify_model
from accelsim.core.precision import parse_precision
from accelsim.core.target import load_target
from accelsim.kernels import emulate
from accelsim.model.onnx_import import load_onnx

pytestmark = pytest.mark.usefixtures("kernel_cache")
TARGETS = ("cortex-a76", "hvx-v68")
_ARCH = {"qemu-aarch64": "aarch64", "qemu-hexagon": "hexagon"}


def _need_toolchain(target: str):
    t = load_target(target)
    arch = _ARCH[t.codegen.emulator.kind]
    missing = emulate.missing_tools(arch)
    if missing:
        pytest.skip(f"no {arch} toolchain: {', '.join(missing)}")
    return t


def _save(tmp_path, nodes, inits, shape, outs):
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs],
        [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    return load_onnx(path)


@pytest.mark.parametrize("target", TARGETS)
def test_float_pointwise_functions_need_no_libm(tmp_path, target):
    """Erf, Sigmoid, Tanh, Div and Softmax on float tensors over [-12, 12] (erf's and tanh's
    tails, exp's clamp) as kernels on both targets, Hexagon's freestanding runtime included."""
    t = _need_toolchain(target)
    inits = {"three": np.float32(3.0)}
    nodes = [
        helper.make_node("Erf", ["x"], ["erf"]),
        helper.make_node("Sigmoid", ["x"], ["sig"]),
        helper.make_node("Tanh", ["x"], ["tanh"]),
        helper.make_node("Div", ["x", "three"], ["div"]),
        helper.make_node("Softmax", ["x"], ["sm"], axis=-1),
    ]
    g = _save(tmp_path, nodes, inits, [4, 256], ["erf", "sig", "tanh", "div", "sm"])
    x = np.linspace(-12.0, 12.0, 4 * 256, dtype=np.float32).reshape(4, 256)
    checks = verify_model(g, t, parse_precision("fp32"), {"x": x})
    ran = {c.op for c in checks}
    assert {"erf", "sigmoid", "tanh", "div", "softmax"} <= ran, ran
    bad = {c.name: c.mismatches for c in checks if c.mismatches}
    assert not bad, bad


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("act", ["u8", "s8"])
def test_qlinear_softmax_kernel_saturates_as_the_reference(tmp_path, target, act):
    """DequantizeLinear -> Softmax -> QuantizeLinear, which ONNX Runtime fuses into
    QLinearSoftmax: rows with one dominant logit reach 256 steps, which ORT's uint8 kernel
    saturates at 255 and its int8 kernel stores as the low byte (-128 for zero point -128)."""
    t = _need_toolchain(target)
    dt = TensorProto.UINT8 if act == "u8" else TensorProto.INT8
    zx, zy = (128, 0) if act == "u8" else (0, -128)
    npdt = np.uint8 if act == "u8" else np.int8
    inits = {"xs": np.float32(0.25), "ys": np.float32(1.0 / 256)}
    graph = helper.make_graph(
        [
            helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
            helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
            helper.make_node("Softmax", ["xd"], ["y"], axis=-1),
            helper.make_node("QuantizeLinear", ["y", "ys", "yz"], ["yq"]),
            helper.make_node("DequantizeLinear", ["yq", "ys", "yz"], ["out"]),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [16, 32])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [16, 32])],
        [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in inits.items()]
        + [
            helper.make_tensor("xz", dt, [], [zx]),
            helper.make_tensor("yz", dt, [], [zy]),
        ],
    )
    path = tmp_path / "sm.onnx"
    path.write_bytes(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    )
    g = load_onnx(path)
    assert g.requant_mode == "float"
    rng = np.random.default_rng(3)
    x = rng.normal(0.0, 2.0, (16, 32)).astype(np.float32)
    x[::2, 5] = 30.0  # one dominant logit per even row: the whole mass on one element
    checks = verify_model(g, t, parse_precision("w8a8"), {"x": x})
    sm = [c for c in checks if c.op == "softmax"]
    assert sm and all(c.elements == 16 * 32 for c in sm), checks
    bad = {c.name: c.mismatches for c in checks if c.mismatches}
    assert not bad, bad
    # the rows did saturate (reference executor's output of the softmax node)
    from accelsim.ref.executor import run

    node = next(n for n in g.nodes if n.op == "softmax")
    y = np.asarray(run(g, {"x": x}, keep=True)[node.outputs[0]]).astype(npdt)
    assert (y[::2, 5] == (255 if act == "u8" else -128)).all()
