"""Tests for the digits data set, the torch interpreter of the IR, float training,
quantization-aware training, sensitivity analysis and the accuracy study.

The accuracy checks run the quick accuracy study once (module fixture, about a minute on two
cores) and assert on its numbers; the oracle for every quantized top-1 is the integer-only
reference executor.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from accelsim.core.precision import Precision, parse_precision
from accelsim.model import zoo
from accelsim.model.batch import with_batch
from accelsim.model.builder import GraphBuilder
from accelsim.model.ops import op_class
from accelsim.quant import calibrate
from accelsim.quant.datasets import load_digits_study
from accelsim.quant.metrics import logits_tensor, predict_logits, top1
from accelsim.quant.mixed import load_mixed
from accelsim.quant.ptq import CalibrationData, quantize_graph
from accelsim.quant.qat import (
    EMAObserver,
    QATModule,
    fake_quantize,
    fake_quantize_weight,
    weight_qparams,
)
from accelsim.quant.sensitivity import greedy_mixed_precision, output_snr_db
from accelsim.quant.torch_graph import GraphModule, to_graph
from accelsim.quant.transforms import prepare_for_quantization
from accelsim.ref.executor import run

ROOT = Path(__file__).resolve().parents[1]
FP32 = Precision(None, None, float_dtype="float32")


def _rand(shape, seed=1):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Data set
# ---------------------------------------------------------------------------------------------


def test_digits_study_split_and_determinism():
    a = load_digits_study(train_copies=1, calibration_size=64)
    b = load_digits_study(train_copies=1, calibration_size=64)
    assert a.x_train.shape == (1068, 1, 16, 16) and a.x_train.dtype == np.float32
    assert a.x_val.shape == (189, 1, 16, 16) and a.x_test.shape == (540, 1, 16, 16)
    assert a.y_train.dtype == np.int64 and set(np.unique(a.y_test)) == set(range(10))
    for k in ("x_train", "x_test", "x_val", "x_calib", "y_train", "y_test"):
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k))
    # the calibration subset comes from the training split
    flat = {row.tobytes() for row in a.x_train}
    assert all(x.tobytes() in flat for x in a.x_calib) and len(a.x_calib) == 64
    assert abs(float(a.x_train.mean())) < 1e-3 and abs(float(a.x_train.std()) - 1) < 1e-3
    c = load_digits_study(train_copies=1, seed=1, calibration_size=64)
    assert not np.array_equal(a.x_test, c.x_test)  # jitter follows the seed
    assert a.calibration_batches(32)[0].shape == (32, 1, 16, 16)


# ---------------------------------------------------------------------------------------------
# Zoo additions
# ---------------------------------------------------------------------------------------------


def test_digits_mobilenet_counts_and_structure():
    g = zoo.build("digits_mobilenet")
    assert g.tensors["input"].shape == (1, 1, 16, 16)
    assert g.params() == 36_874 and g.macs() == 269_824
    e = zoo.MODELS["digits_mobilenet"]
    assert e.published["params"] == g.params() and e.published["macs"] == g.macs()
    assert e.input_shape == (1, 1, 16, 16)
    small = zoo.build("digits_mobilenet", input_size=8)
    assert small.params() == 36_874 and small.macs() == 68_416
    dws = [n for n in g.nodes if n.op == "conv2d" and op_class(g, n) == "depthwise_conv2d"]
    assert [n.name for n in dws] == [f"features.{k}.0" for k in range(1, 6)]
    assert sum(n.op == "relu6" for n in g.nodes) == 11
    assert all(n.attr("epsilon") == 1e-3 for n in g.nodes if n.op == "batch_norm")
    assert g.tensors["fc.weight"].shape == (10, 128)
    out = run(g, [_rand((1, 1, 16, 16))])[g.outputs[0]]
    assert out.shape == (1, 10) and out.sum() == pytest.approx(1.0, abs=1e-5)


def test_digits_cnn_at_16():
    g = zoo.build("digits_cnn", input_size=16)
    assert g.params() == 24_058 and g.macs() == 627_328


# ---------------------------------------------------------------------------------------------
# Torch interpreter of the IR
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,size",
    [
        ("digits_cnn", 8),
        ("digits_cnn", 16),
        ("digits_mobilenet", 16),
        ("resnet18", 32),
        ("bert_base_layer", 8),
    ],
)
def test_torch_forward_matches_reference_executor(name, size):
    g = zoo.build(name, seed=3, input_size=size)
    m = GraphModule(g).eval()
    shape = g.tensors[g.inputs[0]].shape
    xs = [_rand(shape, s) for s in range(2)]
    lt = logits_tensor(g)
    with torch.no_grad():
        out, lg = m(torch.from_numpy(np.concatenate(xs)), outputs=[g.outputs[0], lt])
    for i, x in enumerate(xs):
        ref = run(g, [x], keep=True)
        np.testing.assert_allclose(out.numpy()[i : i + 1], ref[g.outputs[0]], atol=1e-4)
        np.testing.assert_allclose(lg.numpy()[i : i + 1], ref[lt], atol=1e-4, rtol=1e-5)


def test_torch_forward_prepared_graph_and_write_back():
    g = zoo.build("digits_mobilenet", seed=2)
    p = prepare_for_quantization(g)  # folded BN, fused ReLU6 (act_min / act_max)
    x = _rand((1, 1, 16, 16))
    with torch.no_grad():
        y = GraphModule(p).eval()(torch.from_numpy(x))
    np.testing.assert_allclose(y.numpy(), run(p, [x])[p.outputs[0]], atol=1e-5)
    m = GraphModule(g)
    assert to_graph(m).constants.keys() == g.constants.keys()
    for k in g.constants:
        np.testing.assert_array_equal(to_graph(m).constants[k], g.constants[k])
    with torch.no_grad():
        m.const("fc.bias").add_(1.0)
        m.bn("features.1.1").running_var.mul_(2.0)
    g2 = to_graph(m)
    np.testing.assert_allclose(g2.constants["fc.bias"], g.constants["fc.bias"] + 1.0, atol=1e-6)
    np.testing.assert_allclose(
        g2.constants["features.1.1.running_var"],
        2 * g.constants["features.1.1.running_var"],
        rtol=1e-6,
    )
    assert [n.name for n in g2.nodes] == [n.name for n in g.nodes]
    # trainable: BN gamma/beta and weights get gradients
    m.train()
    m(torch.from_numpy(np.concatenate([x, x + 1])), outputs=["fc"]).sum().backward()
    assert m.const("features.1.0.weight").grad is not None
    assert m.bn("features.1.1").weight.grad is not None


def test_torch_forward_other_ops():
    b = GraphBuilder("ops")
    x = b.input("x", (1, 3, 7, 6))
    c = b.const("w", _rand((4, 3, 3, 2), 5))
    y = b.add(
        "conv2d",
        [x, c],
        name="conv",
        strides=(2, 1),
        pads=(1, 0, 2, 1),
        groups=1,
        dilations=(1, 2),
        act_min=-0.5,
        act_max=1.0,
    )
    p1 = b.add(
        "max_pool", [y], name="mp", kernel=(3, 3), strides=(2, 2), pads=(1, 1, 1, 1), ceil_mode=True
    )
    p2 = b.add(
        "avg_pool",
        [y],
        name="ap",
        kernel=(3, 3),
        strides=(2, 2),
        pads=(1, 1, 2, 1),
        count_include_pad=False,
    )
    cat = b.add("concat", [p1, p2], name="cat", axis=1)
    t = b.add("transpose", [cat], name="tr", perm=(0, 2, 3, 1))
    t = b.add("pad", [t], name="pad", pads=((0, 0), (1, 0), (0, 1), (0, 0)), value=0.25)
    s = t
    r = b.add("reshape", [s], name="rs", shape=(1, -1, 8))
    ln = b.add(
        "layer_norm",
        [r, b.const("g", _rand((8,), 6)), b.const("bb", _rand((8,), 7))],
        name="ln",
        axis=-1,
        epsilon=1e-5,
    )
    gl = b.add("gelu", [ln], name="gelu", approximate="tanh")
    mm = b.add("matmul", [gl, b.const("m", _rand((8, 5), 8))], name="mm")
    mu = b.add("mul", [mm, b.const("k", np.float32(0.5))], name="mul")
    cl = b.add("clip", [mu], name="clip", min=-1.0, max=2.0)
    sm = b.add("softmax", [cl], name="sm", axis=-1, beta=2.0)
    b.output(sm)
    g = b.build()
    xv = _rand((1, 3, 7, 6), 9)
    with torch.no_grad():
        out = GraphModule(g).eval()(torch.from_numpy(xv))
    ref = run(g, [xv])[g.outputs[0]]
    assert ref.shape == (1, 16, 5) and np.all(np.isfinite(ref))
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-5)


def test_with_batch_runs_quantized_graph():
    g = zoo.build("digits_cnn", seed=0, input_size=16)
    xs = _rand((5, 1, 16, 16), 4)
    cal = CalibrationData((xs,), "random", is_random=True)
    q = quantize_graph(with_batch(g, 5), parse_precision("w8a8"), cal).graph
    q1 = with_batch(q, 1)
    batched = predict_logits(q, xs)
    single = np.concatenate([predict_logits(q1, xs[i : i + 1]) for i in range(5)])
    np.testing.assert_array_equal(batched, single)  # integer kernels: same per sample
    assert top1(q, xs, batched.argmax(1)) == 1.0


# ---------------------------------------------------------------------------------------------
# Fake quantization and the straight-through estimator
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bits,signed,lo,hi",
    [(8, True, -1.3, 2.1), (8, False, 0.0, 6.0), (4, True, -0.7, 0.2), (4, True, 0.0, 3.3)],
)
def test_fake_quant_forward_matches_numpy(bits, signed, lo, hi):
    x = np.concatenate([np.linspace(lo - 1, hi + 1, 2001), _rand((500,), 3) * 2]).astype(np.float32)
    scale, zp = calibrate.quant_params_from_range(lo, hi, bits, False, signed)
    qmin, qmax = calibrate.qrange(bits, signed)
    want = calibrate.dequantize(calibrate.quantize(x, scale, zp, bits, signed), scale, zp)
    got = fake_quantize(torch.from_numpy(x).double(), scale, zp, qmin, qmax).numpy()
    np.testing.assert_allclose(got, want, atol=1e-12)
    # 0.0 is exactly representable; the formula with the nudged range [a, b] gives the same
    assert fake_quantize(torch.zeros(1).double(), scale, zp, qmin, qmax).item() == 0.0
    a, b = (qmin - zp) * scale, (qmax - zp) * scale
    xd = torch.from_numpy(x).double()
    formula = torch.round((torch.clamp(xd, a, b) - a) / scale) * scale + a
    diff = (formula - torch.from_numpy(want)).abs()
    assert float(diff.max()) <= scale * 1.0001  # ties may round differently (a != 0 shift)
    assert float((diff > 1e-9).double().mean()) < 0.01


def test_ste_gradient_is_one_inside_zero_outside():
    scale, zp, qmin, qmax = 0.1, -3, -8, 7
    a, b = (qmin - zp) * scale, (qmax - zp) * scale
    x = torch.linspace(a - 1, b + 1, 301, dtype=torch.float64, requires_grad=True)
    y = fake_quantize(x, scale, zp, qmin, qmax)
    y.backward(torch.ones_like(y))
    inside = ((x >= a) & (x <= b)).double()
    assert torch.equal(x.grad, inside)
    assert inside.sum() > 100 and (1 - inside).sum() > 100


@pytest.mark.parametrize("prec", ["w8a8", "w4a8", "w8a8/per-tensor/asym", "w4a8/asym"])
def test_weight_fake_quant_matches_ptq_weights(prec):
    g = zoo.build("digits_mobilenet", seed=1)
    p = parse_precision(prec)
    q = quantize_graph(g, p, CalibrationData((_rand((1, 1, 16, 16)),), "random", True)).graph
    prep = prepare_for_quantization(g)
    for layer in ("features.0.0", "features.2.0", "features.3.3", "fc"):
        w = torch.from_numpy(
            np.array(
                prep.constants[f"{layer}.weight_folded"]
                if f"{layer}.weight_folded" in prep.constants
                else prep.constants[f"{layer}.weight"]
            )
        )
        info = q.tensors[f"{layer}.weight_q"]
        shape = info.quant.broadcast_shape(len(info.shape))
        deq = (
            q.constants[f"{layer}.weight_q"].astype(np.float64)
            - info.quant.zero_points().reshape(shape)
        ) * info.quant.scales().reshape(shape)
        fq = fake_quantize_weight(w, p).detach().numpy()
        s, _ = weight_qparams(w, p)
        np.testing.assert_allclose(s.reshape(-1).numpy(), info.quant.scales(), rtol=1e-6)
        np.testing.assert_allclose(fq, deq, atol=1e-6)


def test_ema_observer():
    ob = EMAObserver(0.9)
    ob.observe(torch.tensor([-1.0, 2.0]))
    assert ob.range() == (-1.0, 2.0)
    ob.observe(torch.tensor([0.0, 4.0]))
    lo, hi = ob.range()
    assert lo == pytest.approx(-0.9) and hi == pytest.approx(2.2)


def test_bn_folding_with_correction_equals_batch_norm():
    """With float weights the folded-with-correction forward is batch norm with batch
    statistics while training, and the inference batch norm once frozen; running statistics
    update as torch's BatchNorm updates them."""
    g = zoo.build("digits_mobilenet", seed=4)
    x = torch.from_numpy(_rand((16, 1, 16, 16), 2))
    ref, qm = GraphModule(g), QATModule(g, FP32)
    assert set(qm.folded_bn) == {n.name for n in g.nodes if n.op == "conv2d"}
    assert not qm.weight_prec and not qm.observers  # fp32: nothing quantized
    ref.train(), qm.train()
    np.testing.assert_allclose(
        qm(x, outputs=["fc"]).detach().numpy(),
        ref(x, outputs=["fc"]).detach().numpy(),
        rtol=1e-4,
        atol=1e-4,
    )
    for bn in ("features.0.1", "features.3.4"):
        np.testing.assert_allclose(
            qm.bn(bn).running_mean.numpy(), ref.bn(bn).running_mean.numpy(), rtol=1e-4, atol=1e-6
        )
        np.testing.assert_allclose(
            qm.bn(bn).running_var.numpy(), ref.bn(bn).running_var.numpy(), rtol=1e-4, atol=1e-6
        )
    qm.bn_frozen = True
    ref.eval()
    np.testing.assert_allclose(
        qm(x, outputs=["fc"]).detach().numpy(),
        ref(x, outputs=["fc"]).detach().numpy(),
        rtol=1e-4,
        atol=1e-4,
    )


# ---------------------------------------------------------------------------------------------
# The quick accuracy study (float training, PTQ, QAT, sensitivity) end to end
# ---------------------------------------------------------------------------------------------


def _load_study():
    spec = importlib.util.spec_from_file_location(
        "accuracy_study", ROOT / "benchmarks" / "accuracy_study.py"
    )
    mod = importlib.util.module_from_spec(spec)
    sys.modules["accuracy_study"] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    mod = _load_study()
    out = tmp_path_factory.mktemp("reports")
    rows, infos = mod.run_study(quick=True, out=out, log=lambda s: None, real="skip")
    return mod, out, rows, infos


def _get(rows, model, method, precision, calibration=None):
    hits = [
        r["top1"]
        for r in rows
        if r["model"] == model
        and r["method"] == method
        and r["precision"] == precision
        and (calibration is None or r["calibration"] == calibration)
    ]
    assert len(hits) == 1, (model, method, precision, calibration)
    return hits[0]


def test_quick_study_schema_and_float_accuracy(study):
    mod, out, rows, infos = study
    data = json.loads((out / "accuracy.json").read_text())
    assert data == rows and len(rows) == 2 * 16
    for r in data:
        assert set(r) == {"model", "method", "precision", "granularity", "calibration", "top1"}
        assert isinstance(r["top1"], float) and 0.0 <= r["top1"] <= 1.0
        assert r["model"] in ("digits_cnn", "digits_mobilenet")
        assert r["method"] in ("float", "ptq", "qat", "ptq-mixed")
    for m in ("digits_cnn", "digits_mobilenet"):
        assert _get(rows, m, "float", "fp32") > 0.8
        for c in ("minmax", "ema", "percentile:99.99", "entropy", "mse"):
            assert _get(rows, m, "ptq", "w8a8", c) > 0.75
        for p in ("w8a8/per-tensor/asym", "w8a8/asym", "w4a8", "w8a4", "w4a4"):
            _get(rows, m, "ptq", p)
        for p in ("w8a8", "w4a8", "w4a4"):
            _get(rows, m, "qat", p)
    md = (out / "accuracy.md").read_text()
    assert "| model | method |" in md and "findings" in md
    assert md.count("Reproduced") + md.count("Not reproduced") + md.count("not reproduced") >= 4


def test_qat_recovers_4bit_weights(study):
    """QAT beats PTQ at 4-bit weights (w4a8 and w4a4) on both digits models. The quick study's
    float models are short-trained, so PTQ at w4a8 loses little there (1.9 and 0.2 points);
    observed QAT gains: w4a8 +0.4 and +1.7 points, w4a4 +0.7 and +2.4."""
    _, _, rows, _ = study
    gains = [
        _get(rows, m, "qat", p) - _get(rows, m, "ptq", p)
        for m in ("digits_cnn", "digits_mobilenet")
        for p in ("w4a8", "w4a4")
    ]
    assert np.mean(gains) >= 0.01 and min(gains) > 0.0, gains


def test_qat_integer_graph_matches_fake_quant_model(study):
    """The integer graph (reference executor) and the torch fake-quant model agree within
    about a point at 8-bit activations (observed <= 0.4 points); with 4-bit activations the
    fixed-point double rounding of TFLite's requantization moves more activations by one step
    (observed up to ~3 points), so that bound is looser."""
    _, _, rows, infos = study
    for m in ("digits_cnn", "digits_mobilenet"):
        fq = infos[m]["qat_fake_quant_top1"]
        for p, tol in (("w8a8", 0.012), ("w4a8", 0.012), ("w4a4", 0.05)):
            assert abs(_get(rows, m, "qat", p) - fq[p]) <= tol, (m, p)


def test_mixed_precision_yaml_and_sensitivity(study):
    _, out, rows, infos = study
    for m in ("digits_cnn", "digits_mobilenet"):
        mx = infos[m]["mixed"]
        mixed = load_mixed(out / mx["yaml"])
        g = prepare_for_quantization(infos[m]["float_graph"])
        resolved = mixed.resolve(g, parse_precision("w4a4"))
        assert {n for n, p in resolved.items() if p == parse_precision("w8a8")} == set(
            mx["kept_high"]
        )
        assert len(mx["per_layer"]) == sum(n.op in ("conv2d", "dense") for n in g.nodes)
        assert mx["met"] or len(mx["kept_high"]) == len(mx["per_layer"])


def test_sensitivity_snr_without_labels(study):
    _, _, _, infos = study
    g = infos["digits_cnn"]["float_graph"]
    data = load_digits_study(train_copies=1, calibration_size=64)
    cal = CalibrationData(data.calibration_batches(64), "digits")
    x = data.x_val[:64]
    res = greedy_mixed_precision(g, parse_precision("w4a4"), cal, x, None, target=25.0)
    assert res.metric == "snr_db"
    per = dict(res.per_layer)
    assert set(per) == {"conv1", "conv2", "conv3", "fc"}
    assert all(math.isfinite(v) and v > 5 for v in per.values())
    assert res.steps[0]["score"] < max(per.values())  # all layers low is worse than one
    if res.met:
        assert res.score >= 25.0
    assert output_snr_db(np.ones(4), np.ones(4)) == float("inf")


def test_qat_overrides_per_tensor_and_learned_ranges():
    from accelsim.quant.qat import QATConfig, qat

    data = load_digits_study(train_copies=1, calibration_size=64)
    g = zoo.build("digits_cnn", seed=0, input_size=16)
    res = qat(
        g,
        parse_precision("w4a8/per-tensor"),
        data.x_train[:256],
        data.y_train[:256],
        overrides={"fc": FP32},
        cfg=QATConfig(epochs=1, batch_size=32),
    )
    q = res.graph
    assert q.tensors["conv1.weight_q"].dtype == "int4"
    assert not q.tensors["conv1.weight_q"].quant.per_channel
    assert "fc.weight_q" not in q.tensors and q.tensors["fc"].is_float  # left in float
    # the integer graph's activation parameters are the ones the observers learned
    for t in ("relu1", "relu2", "relu3"):
        scale, zp, _, _ = res.module.act_qparams(t)
        assert q.tensors[t].quant.scale[0] == pytest.approx(scale)
        assert q.tensors[t].quant.zero_point[0] == zp
        lo, hi = res.ranges[t]
        assert lo == 0.0 and hi > 0  # ReLU outputs: the EMA minimum is exactly 0
    assert set(res.float_graph.constants) == set(g.constants)
    assert not any(n.op == "batch_norm" for n in res.prepared.nodes)
    assert 0.0 <= top1(q, data.x_test[:100], data.y_test[:100]) <= 1.0
