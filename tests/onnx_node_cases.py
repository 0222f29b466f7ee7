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
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
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

SHIPPED = Path(onnx.__file__).parent / "backend" / "test" / "data" / "node"


def _patterns(ops: dict[str, str]) -> tuple[str, ...]:
    return tuple(f"test_{m}*" for m in ops.values())


def _op_type(model: onnx.ModelProto) -> str | None:
    return model.graph.node[0].op_type if len(model.graph.node) == 1 else None


def _shipped_dirs(ops: dict[str, str]) -> list[Path]:
    """Shipped single-node test directories whose node is one of `ops`."""
    if not SHIPPED.is_dir():
        return []
    found = set()
    for d in SHIPPED.glob("test_*"):
        model = d / "model.onnx"
        if model.is_file() and not d.name.endswith("_expanded"):
            if _op_type(onnx.load(str(model))) in ops:
                found.add(d)
    return sorted(found)


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


def _generated_dirs(ops: dict[str, str]) -> list[Path]:
    from onnx.backend.test.case import node as node_cases

    node_cases._TargetOpType = None
    for mod in ops.values():
        importlib.import_module(f"onnx.backend.test.case.node.{mod}")
    cases = [
        c
        for c in node_cases._NodeTestCases
        if _op_type(c.model) in ops and not c.name.endswith("_expanded")
    ]
    cases = list({c.name: c for c in cases}.values())
    root = Path(tempfile.mkdtemp(prefix="accelsim_onnx_node_"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    for case in cases:
        _write_case(case, root / case.name)
    return sorted(root / c.name for c in cases)


def node_test_dirs(ops: dict[str, str] | None = None) -> tuple[list[Path], str]:
    """The test directories of `ops` (ONNX operator -> generator module; default: the
    quantization operators) and where they come from ("shipped" or "generated")."""
    ops = OPS if ops is None else ops
    dirs = _shipped_dirs(ops)
    if dirs:
        return dirs, "shipped"
    return _generated_dirs(ops), "generated"


_NARROW = {"int2": np.int8, "int4": np.int8, "uint2": np.uint8, "uint4": np.uint8}


def read_tensor(path: Path) -> np.ndarray:
    t = onnx.TensorProto()
    t.ParseFromString(path.read_bytes())
    arr = numpy_helper.to_array(t)
    storage = _NARROW.get(arr.dtype.name)  # ml_dtypes int4 etc. -> the IR's int8 storage
    return arr.astype(storage) if storage is not None else arr


def _index(p: Path) -> int:
    return int(re.search(r"_(\d+)\.pb$", p.name).group(1))


def data_sets(case_dir: Path, model: onnx.ModelProto, data: set[str]):
    """Each test data set as (frozen inputs, fed inputs, expected outputs): inputs named in
    `data` are fed at run time, the others frozen as constants (accelsim models static
    parameters: quantization parameters, pads, axes, sizes)."""
    names = [i.name for i in model.graph.input]
    for ds in sorted(case_dir.glob("test_data_set_*")):
        inputs = [read_tensor(p) for p in sorted(ds.glob("input_*.pb"), key=_index)]
        outputs = [read_tensor(p) for p in sorted(ds.glob("output_*.pb"), key=_index)]
        frozen = {n: a for n, a in zip(names, inputs) if n not in data}
        feeds = {n: a for n, a in zip(names, inputs) if n in data}
        yield frozen, feeds, outputs
