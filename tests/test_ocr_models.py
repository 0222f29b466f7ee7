"""Real trained networks from a wheel (rapidocr_onnxruntime's PaddleOCR models): the exact
rewrites against ONNX Runtime on the original file, float accuracy of accelsim's reference
executor equal to ONNX Runtime's on rendered labelled data, batch evaluation, metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest

from accelsim import api
from accelsim.core.errors import InputError, ModelError
from accelsim.model import packaged
from accelsim.quant import metrics, ocrdata

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")


def _ort_outputs(model, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: x[i : i + 1]})[0] for i in range(len(x))])


@pytest.mark.parametrize(
    "name,rewrites",
    [
        ("ppocr_cls", {"Div": 18}),
        ("ppocr_rec", {"Div": 28, "LayerNorm": 5, "QKV": 6, "Softmax": 3}),
    ],
)
def test_rewrites_are_exact_against_onnxruntime(name, rewrites):
    original = onnx.load(str(packaged.model_path(name)))
    rewritten, counts = packaged.rewritten_onnx(name)
    for k, v in rewrites.items():
        assert counts[k] == v, counts
    ops = {n.op_type for n in rewritten.graph.node}
    assert not ops & {"Div", "Pow", "Sqrt"}, ops
    x = np.random.default_rng(1).uniform(-1, 1, (2, *packaged.MODELS[name].input_shape[1:]))
    a = _ort_outputs(original, x.astype(np.float32))
    b = _ort_outputs(rewritten, x.astype(np.float32))
    # float32 rounding only (1/c for a division, the fused layer norm's order of operations)
    np.testing.assert_allclose(b, a, atol=2e-5, rtol=0)


def _labelled(name: str, n: int):
    d = ocrdata.text_set(name, n, "test")
    if name == "ppocr_rec":
        return d, metrics.CTCExactMatch(d.labels, packaged.ctc_symbols())
    return d, metrics.Top1(d.labels)


@pytest.mark.parametrize("name,n", [("ppocr_cls", 24), ("ppocr_rec", 6)])
def test_float_accuracy_equals_onnxruntime(name, n):
    g = packaged.load_packaged(name)
    d, metric = _labelled(name, n)
    ours = metrics.scores(g, d.x, batch_size=8)
    theirs = _ort_outputs(onnx.load(str(packaged.model_path(name))), d.x)
    # the same prediction for every sample (hence the same accuracy), on the original file
    np.testing.assert_array_equal(ours.argmax(-1), theirs.argmax(-1))
    assert metric(ours) == metric(np.log(theirs))
    assert metric(ours) >= (0.8 if name == "ppocr_cls" else 0.99)  # the task is the model's


def test_batch_run_is_one_call_equal_to_sample_by_sample():
    g = packaged.load_packaged("ppocr_cls")
    x = ocrdata.orientation_set(5, "val").x
    one = np.concatenate([api.run(g, [x[i : i + 1]])[g.outputs[0]] for i in range(5)])
    batched = api.run(g, [x], batch_size=2)[g.outputs[0]]  # chunks of 2, the last one padded
    np.testing.assert_array_equal(batched, one)
    with pytest.raises(InputError, match="keep=True"):
        api.run(g, [x], keep=True)


def test_loader_names_and_missing_package(monkeypatch):
    assert api.load_model("ppocr_cls").name == "ppocr_cls"
    monkeypatch.setattr(
        packaged.importlib.util, "find_spec", lambda name: None
    )  # as if the wheel were absent
    with pytest.raises(ModelError, match=r"needs the pip package rapidocr_onnxruntime"):
        packaged.model_path("ppocr_rec")


def test_metrics_on_known_cases():
    symbols = ("", "a", "b", " ")
    # steps: a a blank a b b space -> "aab " -> spaces ignored -> "aab"
    steps = [1, 1, 0, 1, 2, 2, 3]
    s = np.eye(4)[steps][None]
    assert metrics.ctc_greedy_decode(s, symbols) == ["aab "]
    assert metrics.CTCExactMatch(("aab",), symbols)(s) == 1.0
    assert metrics.CTCCharAccuracy(("abb",), symbols)(s) == pytest.approx(2 / 3)
    assert metrics.edit_distance("kitten", "sitting") == 3
    ref = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert metrics.OutputSNR(ref)(ref) == np.inf
    assert metrics.OutputSNR(ref)(ref * 1.1) == pytest.approx(20.0)
    assert metrics.OutputCosine(ref)(2 * ref) == pytest.approx(1.0)
    assert metrics.Top1(np.array([1, 0]))(ref) == 0.5
    with pytest.raises(InputError, match="must return a number"):
        metrics.Custom(lambda s: "x", "mine")(ref)


def test_tune_command_on_the_packaged_classifier(tmp_path, capsys):
    """`accelsim tune --dataset text`: the rendered orientation set, top-1 scored by the
    reference executor; the float step's score is the float model's own accuracy."""
    from accelsim.cli import main

    args = ["tune", "ppocr_cls", "--dataset", "text", "--calib-n", "4", "--val-n", "8"]
    args += ["--calibrators", "minmax", "--max-drop", "100", "--target", "cortex-a76"]
    assert main([*args, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    doc = json.loads((tmp_path / "ppocr_cls_tune.json").read_text())
    val = ocrdata.text_set("ppocr_cls", 8, "val")
    expected = metrics.Top1(np.asarray(val.labels))(
        metrics.scores(packaged.load_packaged("ppocr_cls"), val.x)
    )
    assert doc["metric"] == "top1" and doc["float_score"] == expected and doc["met"]
    assert "meets the budget" in out
