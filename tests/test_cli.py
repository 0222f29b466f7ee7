"""The command line as a user meets it: lazy imports, `models`, `run`, and one-line errors."""

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from accelsim.model import zoo
from accelsim.ref.executor import run as ref_run


def accelsim(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "accelsim", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def assert_one_line_error(proc, *fragments):
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("accelsim: error: ")
    for f in fragments:
        assert f in lines[0], (f, lines[0])


def test_help_does_not_import_heavy_modules():
    code = (
        "import sys, contextlib, io\n"
        "from accelsim.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try: main(['--help'])\n"
        "    except SystemExit: pass\n"
        "heavy = [m for m in ('tvm', 'tvm_ffi', 'onnx', 'tensorflow', 'tflite', 'matplotlib',"
        " 'onnxruntime', 'torch') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_models_json_matches_zoo():
    proc = accelsim("models", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert [r["name"] for r in rows] == list(zoo.MODELS)
    for r in rows:
        assert set(r) == {"name", "params", "macs", "input_shape"}
        g = zoo.build(r["name"])
        assert (r["params"], r["macs"]) == (g.params(), g.macs())
        assert r["input_shape"] == list(g.tensors[g.inputs[0]].shape)
    table = accelsim("models")
    assert "mobilenet_v1" in table.stdout and "4,2" in table.stdout


def test_run_zoo_model_npy_and_npz(tmp_path):
    g = zoo.build("digits_cnn")
    x = np.random.default_rng(1).standard_normal(g.tensors[g.inputs[0]].shape).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    want = ref_run(g, [x])[g.outputs[0]]
    proc = accelsim(
        "run", "digits_cnn", "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy"
    )
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), want)
    proc = accelsim(
        "run", "digits_cnn", "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npz"
    )
    assert proc.returncode == 0, proc.stderr
    with np.load(tmp_path / "y.npz") as z:
        assert z.files == ["out0"]
        np.testing.assert_array_equal(z["out0"], want)


def _unsupported_onnx(path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    node = helper.make_node("Hardmax", ["x"], ["y"], name="weird_node")
    model = helper.make_model(helper.make_graph([node], "g", [x], [y]))
    onnx.save(model, path)


def test_bad_inputs_give_one_line_errors(tmp_path):
    # missing model file
    assert_one_line_error(
        accelsim("run", tmp_path / "nope.onnx", "--output", tmp_path / "y.npy"),
        "nope.onnx",
        "no such file",
    )
    # neither zoo name nor model file
    assert_one_line_error(
        accelsim("run", "resnet1000", "--output", tmp_path / "y.npy"), "resnet1000", "mobilenet_v1"
    )
    # unsupported ONNX operator: names node, op type and the supported list
    _unsupported_onnx(tmp_path / "bad.onnx")
    assert_one_line_error(
        accelsim("run", tmp_path / "bad.onnx", "--output", tmp_path / "y.npy"),
        "weird_node",
        "Hardmax",
        "Conv",
    )
    # truncated TFLite flatbuffer
    (tmp_path / "t.tflite").write_bytes(b"\x1c\x00\x00\x00TFL3" + b"\x00" * 40)
    assert_one_line_error(
        accelsim("run", tmp_path / "t.tflite", "--output", tmp_path / "y.npy"), "t.tflite"
    )
    # wrong input shape
    np.save(tmp_path / "x.npy", np.zeros((1, 1, 9, 9), np.float32))
    assert_one_line_error(
        accelsim(
            "run", "digits_cnn", "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy"
        ),
        "x.npy",
        "[1, 1, 8, 8]",
        "[1, 1, 9, 9]",
    )
    # missing / unreadable input file
    assert_one_line_error(
        accelsim(
            "run", "digits_cnn", "--input", tmp_path / "missing.npy", "--output", tmp_path / "y.npy"
        ),
        "missing.npy",
    )
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    assert_one_line_error(
        accelsim(
            "run", "digits_cnn", "--input", tmp_path / "junk.npy", "--output", tmp_path / "y.npy"
        ),
        "junk.npy",
    )
    # bad output name
    assert_one_line_error(accelsim("run", "digits_cnn", "--output", tmp_path / "y.txt"), "y.txt")
    assert not (tmp_path / "y.npy").exists() and not (tmp_path / "y.txt").exists()


def test_run_int8_tflite_writes_stored_type_or_dequantized(tmp_path):
    """A fully-int8 TFLite model: `run` writes int8 (the TFLite interpreter's own output with
    the reference kernels), and scale * (q - zero_point) with --dequantize."""
    pytest.importorskip("tensorflow", reason="the TFLite converter comes with the test extra")
    import tflite_models as tm

    path = tm.convert(tm.conv_model(), "int8", tmp_path / "conv_int8.tflite")
    it = tm.interpreter(path)
    x = tm.random_inputs(it, 1, seed=3)[0]
    want = tm.run_reference(it, x)[0]
    np.save(tmp_path / "x.npy", x[0])
    proc = accelsim("run", path, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    assert proc.returncode == 0, proc.stderr
    got = np.load(tmp_path / "y.npy")
    assert got.dtype == np.int8
    np.testing.assert_array_equal(got, want)
    proc = accelsim(
        "run", path, "--input", tmp_path / "x.npy", "--output", tmp_path / "yf.npz", "--dequantize"
    )
    assert proc.returncode == 0, proc.stderr
    scale, zp = it.get_output_details()[0]["quantization"]
    with np.load(tmp_path / "yf.npz") as z:
        assert z["out0"].dtype == np.float32
        np.testing.assert_allclose(z["out0"], scale * (want.astype(np.float64) - zp), rtol=1e-6)


def test_run_quantizes_zoo_model_on_the_fly(tmp_path):
    proc = accelsim(
        "run",
        "digits_cnn",
        "--precision",
        "w8a8",
        "--calib-random",
        "4",
        "--output",
        tmp_path / "y.npy",
    )
    assert proc.returncode == 0, proc.stderr
    y = np.load(tmp_path / "y.npy")
    assert y.shape == (1, 10) and abs(float(y.sum()) - 1.0) < 0.05


def test_compile_writes_assembly_objects_and_kernel_records(tmp_path):
    out = tmp_path / "k"
    env_cache = {"ACCELSIM_CACHE": str(tmp_path / "cache")}
    import os

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "accelsim",
            "compile",
            "digits_cnn",
            "--target",
            "cortex-a76",
            "--precision",
            "w8a8",
            "--calib-random",
            "2",
            "--out",
            out,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env_cache},
    )
    assert proc.returncode == 0, proc.stderr
    records = json.loads((out / "kernels.json").read_text())
    text = json.dumps(records)
    assert "conv1" in text or "features" in text or "conv" in text
    convs = sorted(out.glob("*conv*.s"))
    assert convs and all("sdot" in p.read_text() for p in convs)
    assert all(p.with_suffix(".o").exists() for p in convs)
    bad = accelsim(
        "compile",
        "digits_cnn",
        "--target",
        "hvx-v68",
        "--precision",
        "fp16",
        "--out",
        tmp_path / "bad",
    )
    assert_one_line_error(bad, "cannot run precision 'fp16'")
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("target", ["cortex-a76", "hvx-v68"])
def test_verify_runs_every_kernel_on_its_target(tmp_path, target):
    from accelsim.kernels import emulate

    arch = "aarch64" if target.startswith("cortex") else "hexagon"
    missing = emulate.missing_tools(arch)
    if missing:
        pytest.skip(f"no {arch} toolchain: {', '.join(missing)}")
    proc = accelsim(
        "verify",
        "digits_cnn",
        "--target",
        target,
        "--precision",
        "w8a8",
        "--json",
        tmp_path / "v.json",
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "v.json").read_text())
    assert set(result) == {"mismatches", "elements", "layers"}
    assert result["mismatches"] == 0 and result["elements"] > 0
    ops = {layer["op"] for layer in result["layers"]}
    assert {"conv2d", "dense"} <= ops
    assert all(set(layer) == {"name", "op", "mismatches", "elements"} for layer in result["layers"])
