"""ONNX's own backend node test data for the quantization operators.

The onnx wheel used to ship `onnx/backend/test/data/node/test_*/` (model.onnx plus
test_data_set_*/input_*.pb / output_*.pb). Recent wheels ship only the generators
(`onnx/backend/test/case/node/*.py`, which is where the shipped files come from). When the
directories are missing we write them from those generators, exactly as ONNX's
`backend-test-tools generate-data` does, into a temporary directory.
"""

from __future__ import annotations

import atexit
import importlib
import shutil
import tempfile
from pathlib import Path

import onnx
from onnx import numpy_helper

# ONNX operator -> the generator module in onnx.backend.test.case.node
OPS = {
    "QuantizeLinear": "quantizelinear",
    "DequantizeLinear": "dequantizelinear",
    "QLinearConv": "qlinearconv",
    "QLinearMatMul": "qlinearmatmul",
    "ConvInteger": "convinteger",
    "MatMulInteger": "matmulinteger",
}
PATTERNS = tuple(f"test_{m}*" for m in OPS.values())

SHIPPED = Path(onnx.__file__).parent / "backend" / "test" / "data" / "node"


def _shipped_dirs() -> list[Path]:
    if not SHIPPED.is_dir():
        return []
    return sorted({d for p in PATTERNS for d in SHIPPED.glob(p) if (d / "model.onnx").is_file()})


def _write_case(case, out: Path) -> None:
    out.mkdir(parents=True)
    (out / "model.onnx").write_bytes(case.model.SerializeToString())
    for i, (inputs, outputs) in enumerate(case.data_sets):
        ds = out / f"test_data_set_{i}"
        ds.mkdir()
        for kind, arrays, infos in (
            ("input", inputs, case.model.graph.input),
            ("output", outputs, case.model.graph.output),
        ):
            for j, arr in enumerate(arrays):
                t = (
                    arr
                    if isinstance(arr, onnx.TensorProto)
                    else numpy_helper.from_array(arr, infos[j].name)
                )
                (ds / f"{kind}_{j}.pb").write_bytes(t.SerializeToString())


def _generated_dirs() -> list[Path]:
    from onnx.backend.test.case import node as node_cases

    node_cases._TargetOpType = None
    for mod in OPS.values():
        importlib.import_module(f"onnx.backend.test.case.node.{mod}")
    prefixes = tuple(p[:-1] for p in PATTERNS)
    cases = [
        c
        for c in node_cases._NodeTestCases
        if c.name.startswith(prefixes) and not c.name.endswith("_expanded")
    ]
    root = Path(tempfile.mkdtemp(prefix="accelsim_onnx_node_"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    for case in cases:
        _write_case(case, root / case.name)
    return sorted(root / c.name for c in cases)


def node_test_dirs() -> tuple[list[Path], str]:
    """The test directories and where they come from ("shipped" or "generated")."""
    dirs = _shipped_dirs()
    if dirs:
        return dirs, "shipped"
    return _generated_dirs(), "generated"
