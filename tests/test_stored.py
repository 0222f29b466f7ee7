"""Stored quantization end to end: a model the TFLite converter quantized goes through compile,
verify, simulate and report at the quantization it carries, with no --precision.

The oracle of `verify` is the reference executor, itself bit-exact with TFLite's reference
kernels (tests/test_tflite.py); the kernels run under qemu-aarch64 (cortex-a76), qemu-hexagon
(hvx-v68) and the accelerator's instruction-level simulator (simd-accel).
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("tensorflow")

import tflite_models as M  # noqa: E402  (tests/ helper, needs TensorFlow)

import accelsim  # noqa: E402
from accelsim.cli import main  # noqa: E402

TARGETS = ("cortex-a76", "hvx-v68", "simd-accel")


@pytest.fixture(scope="module")
def mnv2_int8(tmp_path_factory):
    """MobileNetV2 (alpha 0.35, 32x32 input, random weights) converted to full-integer int8
    (int8 input and output) by the TFLite converter."""
    path = tmp_path_factory.mktemp("stored") / "mobilenet_v2_int8.tflite"
    return M.convert(M.mobilenet_v2(32, 0.35), "int8", path, seed=3)


@pytest.fixture(scope="module")
def mnv2_16x8(tmp_path_factory):
    """The same network converted to TFLite's 16x8 (int16 activations and input/output, int8
    weights, int64 biases)."""
    path = tmp_path_factory.mktemp("stored") / "mobilenet_v2_16x8.tflite"
    return M.convert(M.mobilenet_v2(32, 0.35), "int16x8", path, seed=3)


@pytest.mark.parametrize("target", TARGETS)
def test_tflite_16x8_mobilenet_v2_as_stored(mnv2_16x8, target, kernel_cache):
    """w8a16 lowers on every target kind (the 16-bit kernels on exact int16 copies of the
    weights; the accelerator's 16x8 MAC mode) bit-exact with the reference executor."""
    checked = accelsim.verify(str(mnv2_16x8), target)
    print(f"{target}: {checked.mismatches} of {checked.elements} elements differ")
    assert str(checked.precision) == "w8a16" and checked.elements > 50_000 and checked.ok
    (run,) = accelsim.simulate(str(mnv2_16x8), target).runs
    assert str(run.precision) == "w8a16" and run.coverage is not None
    assert run.coverage.mac_share > 0.98


@pytest.mark.parametrize("target", TARGETS)
def test_tflite_int8_mobilenet_v2_as_stored(mnv2_int8, target, tmp_path, kernel_cache):
    done = accelsim.compile(str(mnv2_int8), target, out=tmp_path / "k")
    assert str(done.precision) == "w8a8" and done.kernels > 50
    records = json.loads((tmp_path / "k" / "kernels.json").read_text())
    assert records["precision"] == "w8a8"
    # where every layer ran: every MAC on generated code (on the accelerator the classifier
    # too, at FULLY_CONNECTED's double-precision requantization), and every layer but the
    # softmax, which on the accelerator is a kernel of its host core (cortex-a55)
    assert len(records["placement"]) == len(accelsim.load_model(str(mnv2_int8)).nodes)
    assert not [p for p in records["placement"] if p["ran"] in ("host fallback", "reference only")]
    host = [p for p in records["placement"] if p["ran"] == "host kernel"]
    assert [p["op"] for p in host] == (["softmax"] if target == "simd-accel" else [])
    assert done.coverage.mac_share == records["coverage"]["mac_share"] == 1.0
    assert done.coverage.layer_share >= 0.95

    checked = accelsim.verify(str(mnv2_int8), target)
    print(f"{target}: {checked.mismatches} of {checked.elements} elements differ")
    assert checked.elements > 50_000 and checked.ok

    sim = accelsim.simulate(str(mnv2_int8), target)
    (run,) = sim.runs
    assert str(run.precision) == "w8a8" and run.calibration_data == "stored in the model"
    assert run.macs == accelsim.load_model(str(mnv2_int8)).macs() and run.total_latency_s > 0
    doc = run.to_json()
    assert doc["coverage"] == {**records["coverage"], **doc["coverage"]}
    assert {c["ran"] for c in doc["layers"]} <= {"lowered kernel", "host kernel", "view"}


def test_report_labels_stored_precision(mnv2_int8, tmp_path):
    res = accelsim.report(
        [str(mnv2_int8)], list(TARGETS), out=tmp_path / "r", accuracy=None, use_cache=False
    )
    text = (res.out_dir / "report.md").read_text()
    assert "quantization stored in the file; costed w8a8 as stored" in text
    summary = json.loads((res.out_dir / "summary.json").read_text())
    rows = summary if isinstance(summary, list) else summary["rows"]
    assert {r["target"] for r in rows} == set(TARGETS)
    assert {r["precision"] for r in rows} == {"w8a8"}  # as stored: no fp32, no re-quantization
    assert all(r["calibration_data"].startswith("stored in the model") for r in rows)
    layers = (res.out_dir / "layers.csv").read_text().splitlines()
    assert "layer_precision" in layers[0] and sum(",w8a8," in row for row in layers) >= 3 * 53
    assert "lowered kernel" in layers[5] and all(r["lowered_mac_share"] > 0.98 for r in rows)


@pytest.mark.parametrize(
    "argv",
    [
        ["simulate", "{m}", "--target", "cortex-a76", "--precision", "fp32,w4a4"],
        ["compile", "{m}", "--target", "cortex-a76", "--precision", "w4a8", "--out", "{o}"],
        ["verify", "{m}", "--target", "hvx-v68", "--precision", "w8a16"],
        [
            "report",
            "--model",
            "{m}",
            "--target",
            "cortex-a76",
            "--precision",
            "w4a4",
            "--out",
            "{o}",
        ],
    ],
)
def test_requantizing_stored_model_is_refused(mnv2_int8, argv, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main([a.format(m=mnv2_int8, o=out) for a in argv])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and len(err.splitlines()) == 1, err
    assert "already quantized (w8a8 as stored)" in err and "start from the float model" in err
    assert not out.exists() or not any(out.iterdir())
