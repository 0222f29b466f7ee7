"""The Python API (accelsim.api): the README's example and examples/quickstart.py run as written,
results are typed and serialise, and the API keeps the CLI's rules (stored quantization runs as
stored; an empty precision is an error)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import accelsim
from accelsim.core.errors import AccelsimError, InputError

ROOT = Path(__file__).resolve().parents[1]


def test_readme_python_example_runs(capsys):
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Python API") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    exec(compile(code, "README.md", "exec"), {})  # noqa: S102 - the README's own example
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "3504872 7392128"
    assert [line.split()[0] for line in out[1:]] == ["fp32", "w8a8"]


def test_quickstart_example_runs(tmp_path):
    r = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, r.stderr
    assert "verify on host: 0 of" in r.stdout
    assert (tmp_path / "cortex-a76_layers.csv").is_file()
    assert (tmp_path / "simd-accel_layers.csv").is_file()


@pytest.fixture(scope="module")
def small():
    return accelsim.load_model("digits_cnn")


def test_simulate_result_is_typed_and_serialises(small):
    res = accelsim.simulate(small, "cortex-a55", "fp32,w8a8", fidelity="analytic")
    assert [str(r.precision) for r in res.runs] == ["fp32", "w8a8"]
    doc = json.loads(json.dumps(res.to_json()))
    assert doc[1]["total"]["cycles"] == pytest.approx(res.runs[1].total_cycles)
    assert all(isinstance(c, accelsim.LayerCost) for c in res.runs[0].layers)
    df = res.to_pandas()
    assert len(df) == sum(len(r.layers) for r in res.runs)
    assert {"model", "target", "precision", "cycles", "energy_breakdown.compute"} <= set(df)
    assert df.groupby("precision")["cycles"].sum()["w8a8"] == pytest.approx(
        res.runs[1].total_cycles
    )


def test_quantize_then_stored_model_runs_as_stored(small):
    q = accelsim.quantize(small, "w8a8", data=accelsim.random_calibration(small, 2))
    assert q.graph.is_quantized and str(q.precision) == "w8a8"
    # a quantized graph costs at the precision it carries, without being told
    res = accelsim.simulate(q.graph, "cortex-a76")
    assert [r.precision.name for r in res.runs] == ["w8a8"]
    # asking for another precision is refused with the way out
    with pytest.raises(InputError, match=r"already quantized \(w8a8 as stored\).*float model"):
        accelsim.simulate(q.graph, "cortex-a76", "w4a8")
    with pytest.raises(InputError, match="already quantized"):
        accelsim.quantize(q.graph, "w8a8", data=accelsim.random_calibration(small, 1))


def test_float_model_needs_a_precision_and_data(small):
    with pytest.raises(InputError, match="float model: give a precision"):
        accelsim.simulate(small, "cortex-a76")
    with pytest.raises(InputError, match="needs calibration data"):
        accelsim.quantize(small, "w8a8")
    with pytest.raises(InputError, match="precision '': expected a precision"):
        accelsim.quantize(small, "", data=accelsim.random_calibration(small, 1))


def test_calibration_from_an_array(small):
    shape = small.tensors[small.inputs[0]].shape
    x = np.random.default_rng(0).standard_normal((3, *shape[1:])).astype(np.float32)
    q = accelsim.quantize(small, "w8a8", data=x)
    assert "3 samples" in q.calibration_data
    with pytest.raises(AccelsimError, match=r"calibration data must be \(N, 1, 8, 8\)"):
        accelsim.quantize(small, "w8a8", data=x[:, :, :4])


def test_verify_result(small, tmp_path):
    res = accelsim.verify(small, "host", "w8a8")
    assert res.ok and res.mismatches == 0 and res.elements > 0
    assert res.to_pandas()["mismatches"].sum() == 0
    comp = accelsim.compile(small, "host", "w8a8", tmp_path / "k")
    assert comp.kernels == len(comp.records()) and (tmp_path / "k" / "kernels.json").is_file()
    assert comp.to_json()["precision"] == "w8a8"
