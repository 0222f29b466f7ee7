"""ONNX's own backend node tests for the quantization operators, run through accelsim.

For every QuantizeLinear, DequantizeLinear, QLinearConv, QLinearMatMul, ConvInteger and
MatMulInteger test directory (model.onnx + test_data_set_*/input_*.pb, output_*.pb, read with
onnx.numpy_helper): import the model with `load_onnx`, run the reference executor and compare
with the expected outputs: integer outputs exactly, float outputs exactly as well (ONNX's
documented tolerance for node tests, rtol 1e-3 / atol 1e-7, is checked too).

The node tests feed scales and zero points as graph inputs; accelsim models static
quantization, so those inputs are frozen to their test values (`load_onnx(constants=...)`),
while the data operands (x, w, a, b) stay graph inputs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx_node_cases import data_sets, node_test_dirs

from accelsim.core.errors import ModelError
from accelsim.model.onnx_import import load_onnx
from accelsim.ref.executor import run

DIRS, ORIGIN = node_test_dirs()

# Positions of the data operands among each operator's inputs; the others are quantization
# parameters and get frozen.
DATA_INPUTS = {
    "QuantizeLinear": (0,),
    "DequantizeLinear": (0,),
    "QLinearConv": (0, 3),
    "QLinearMatMul": (0, 3),
    "ConvInteger": (0, 1),
    "MatMulInteger": (0, 1),
}

# Variants accelsim cannot represent, each with the reason and the ModelError it must raise.
# - float8 (e4m3fn, e5m2) and float4 (e2m1) quantized types are floating-point formats, not
#   the affine integer quantization the IR models (no IR dtype, no integer arithmetic);
# - blocked quantization (block_size > 0) has scales that vary along two axes, which the IR's
#   per-tensor / per-axis `QuantParams` cannot hold.
FLOAT8 = r"element type FLOAT8E4M3FN, which accelsim does not support"
FLOAT8_E5M2 = r"element type FLOAT8E5M2, which accelsim does not support"
FLOAT4 = r"element type FLOAT4E2M1, which accelsim does not support"
BLOCKED = r"blocked quantization \(block_size=2\) is not supported"
UNSUPPORTED = {
    "test_quantizelinear_e4m3fn": FLOAT8,
    "test_quantizelinear_e5m2": FLOAT8_E5M2,
    "test_quantizelinear_float4e2m1": FLOAT4,
    "test_quantizelinear_blocked_asymmetric": BLOCKED,
    "test_quantizelinear_blocked_symmetric": BLOCKED,
    "test_dequantizelinear_e4m3fn": FLOAT8,
    "test_dequantizelinear_e4m3fn_float16": FLOAT8,
    "test_dequantizelinear_e4m3fn_zero_point": FLOAT8,
    "test_dequantizelinear_e5m2": FLOAT8_E5M2,
    "test_dequantizelinear_float4e2m1": FLOAT4,
    "test_dequantizelinear_blocked": BLOCKED,
}


def test_directories_found():
    names = {d.name for d in DIRS}
    for op_mod in (
        "quantizelinear",
        "dequantizelinear",
        "qlinearconv",
        "qlinearmatmul",
        "convinteger",
        "matmulinteger",
    ):
        assert any(n.startswith(f"test_{op_mod}") for n in names), op_mod
    # the list of unsupported variants is exact: every entry names a real test directory
    assert set(UNSUPPORTED) <= names, sorted(set(UNSUPPORTED) - names)
    for required in (
        "test_quantizelinear_int4",
        "test_quantizelinear_uint4",
        "test_quantizelinear_int16",
        "test_quantizelinear_uint16",
        "test_dequantizelinear_int4",
        "test_dequantizelinear_uint4",
        "test_dequantizelinear_int16",
        "test_dequantizelinear_uint16",
    ):
        assert required in names and required not in UNSUPPORTED


@pytest.mark.parametrize("case_dir", DIRS, ids=[d.name for d in DIRS])
def test_node_case(case_dir: Path):
    model = onnx.load(str(case_dir / "model.onnx"))
    node = model.graph.node[0]
    data = {node.input[i] for i in DATA_INPUTS[node.op_type] if i < len(node.input)}
    for frozen, feeds, outputs in data_sets(case_dir, model, data):
        if case_dir.name in UNSUPPORTED:
            with pytest.raises(ModelError, match=UNSUPPORTED[case_dir.name]) as info:
                load_onnx(model, constants=frozen)
            assert "\n" not in str(info.value)
            continue
        graph = load_onnx(model, constants=frozen)
        result = run(graph, feeds)
        assert len(graph.outputs) == len(outputs)
        for name, expected in zip(graph.outputs, outputs):
            got = result[name]
            assert got.shape == expected.shape, (name, got.shape, expected.shape)
            if np.issubdtype(expected.dtype, np.floating):
                np.testing.assert_allclose(
                    got.astype(np.float64), expected.astype(np.float64), rtol=1e-3, atol=1e-7
                )
                assert got.dtype == expected.dtype
            np.testing.assert_array_equal(
                got.astype(np.int64) if got.dtype.kind in "iu" else got,
                expected.astype(got.dtype),
                err_msg=name,
            )
