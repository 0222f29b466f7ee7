"""Quantization: precisions, graph transforms, post-training quantization, mixed precision."""

import subprocess
import sys

import numpy as np
import pytest

from accelsim.core.errors import InputError
from accelsim.core.precision import parse_precision, parse_precision_list
from accelsim.model import zoo
from accelsim.quant import calibdata
from accelsim.quant.mixed import load_mixed, write_mixed
from accelsim.quant.ptq import quantize_graph
from accelsim.quant.transforms import fold_batch_norm, fuse_activations
from accelsim.ref.executor import run


def snr_db(ref, test):
    ref = np.asarray(ref, np.float64)
    err = np.asarray(test, np.float64) - ref
    return 10 * np.log10((ref**2).sum() / max((err**2).sum(), 1e-30))


# -- precisions -------------------------------------------------------------------------------
def test_parse_precision_forms():
    p = parse_precision("w4a8")
    assert (p.weight_bits, p.act_bits, p.per_channel, p.symmetric_weights) == (4, 8, True, True)
    assert p.weight_dtype == "int4" and p.act_dtype == "int8" and p.weight_qrange() == (-7, 7)
    q = parse_precision("w8a8/per-tensor/asym/unsigned")
    assert (q.per_channel, q.symmetric_weights, q.act_dtype) == (False, False, "uint8")
    assert q.weight_qrange() == (-128, 127) and q.act_qrange() == (0, 255)
    assert str(q) == "w8a8/per-tensor/asym/unsigned" and parse_precision(str(q)) == q
    assert parse_precision("fp16").float_dtype == "float16"
    assert parse_precision("w16a16").accumulator_dtype == "int64"
    assert parse_precision("w8a8").accumulator_dtype == "int32"
    assert [x.name for x in parse_precision_list("w8a8,fp32,w8a8")] == ["w8a8", "fp32"]


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("w3a8", "weight bits must be one of 4, 8, 16, found 3"),
        ("w8a0", "activation bits must be one of 4, 8, 16, found 0"),
        ("int8", "expected wNaM"),
        ("w8a8/percannel", "unknown option 'percannel'"),
        ("fp32/asym", "float precisions take no options"),
    ],
)
def test_bad_precisions(text, fragment):
    with pytest.raises(InputError, match=fragment.replace("(", r"\(")):
        parse_precision(text)


# -- transforms --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "inception_v3"])
def test_bn_folding_and_fusion_preserve_the_function(name):
    g = zoo.build(name, input_size=75 if name == "inception_v3" else 32)
    x = np.random.default_rng(0).standard_normal(g.tensors[g.inputs[0]].shape).astype(np.float32)
    folded = fold_batch_norm(g)
    fused = fuse_activations(folded)
    assert not any(n.op == "batch_norm" for n in folded.nodes)
    for n in fused.nodes:
        prod = fused.producer(n.inputs[0])
        if n.op in ("relu", "relu6") and prod is not None:
            # only activations whose input feeds something else too stay unfused
            assert (
                prod.op not in ("conv2d", "dense", "add") or len(fused.consumers(n.inputs[0])) > 1
            )
    assert len(fused.nodes) < len(folded.nodes) < len(g.nodes)
    assert fused.params() < g.params()  # BN gamma/beta are gone, conv biases added
    y = run(g, [x])[g.outputs[0]]
    for h in (folded, fused):
        np.testing.assert_allclose(run(h, [x])[h.outputs[0]], y, rtol=1e-4, atol=1e-6)


def test_zero_pads_fold_into_the_following_convolution():
    """TensorFlow-style "same" padding as exporters write it (Pad, then a conv with none)
    becomes the conv's own padding; a pad of another value, or before a max pool, stays."""
    from accelsim.model.builder import GraphBuilder
    from accelsim.quant.transforms import pads_into_convolutions

    rng = np.random.default_rng(1)
    b = GraphBuilder("same_pads")
    x = b.input("x", (1, 4, 9, 9))
    p0 = b.add("pad", [x], pads=((0, 0), (0, 0), (0, 1), (1, 2)), value=0.0)
    w = b.const("w", rng.standard_normal((6, 4, 3, 3)).astype(np.float32))
    y = b.add("conv2d", [p0, w], strides=(2, 2), pads=(1, 0, 0, 0), groups=1)
    p1 = b.add("pad", [y], pads=((0, 0), (0, 0), (1, 1), (1, 1)), value=0.5)
    w2 = b.const("w2", rng.standard_normal((6, 6, 1, 1)).astype(np.float32))
    z = b.add("conv2d", [p1, w2], strides=(1, 1), pads=(0, 0, 0, 0), groups=1)
    p2 = b.add("pad", [z], pads=((0, 0), (0, 0), (1, 1), (1, 1)), value=0.0)
    b.output(b.add("max_pool", [p2], kernel=(2, 2), strides=(2, 2)))
    g = b.build()
    h = pads_into_convolutions(g)
    assert [n.op for n in h.nodes] == ["conv2d", "pad", "conv2d", "pad", "max_pool"]
    assert h.nodes[0].attr("pads") == (1, 1, 1, 2) and h.nodes[0].inputs[0] == "x"
    xs = rng.standard_normal((1, 4, 9, 9)).astype(np.float32)
    np.testing.assert_array_equal(run(h, [xs])[h.outputs[0]], run(g, [xs])[g.outputs[0]])


@pytest.mark.usefixtures("kernel_cache")
def test_a_batch_norm_not_after_a_conv_quantizes_as_a_depthwise_conv():
    """DenseNet's BN -> ReLU -> conv after a concat: no conv to fold into, so the BN becomes
    the depthwise 1x1 convolution it computes (ReLU fused into it), exact in float; quantized,
    it is an integer layer (a kernel on every CPU/DSP target, bit-exact on this machine)
    instead of a float island."""
    import accelsim
    from accelsim.model.builder import GraphBuilder
    from accelsim.quant.transforms import batch_norms_as_depthwise, prepare_for_quantization

    rng = np.random.default_rng(3)
    b = GraphBuilder("dense_block")
    x = b.input("x", (1, 8, 8, 8))
    w1 = b.const("w1", rng.standard_normal((8, 8, 3, 3)).astype(np.float32) * 0.2)
    y1 = b.add("conv2d", [x, w1], strides=(1, 1), pads=(1, 1, 1, 1), groups=1)
    cat = b.add("concat", [x, y1], axis=1)
    c = 16
    bn_in = [
        b.const(n, v.astype(np.float32))
        for n, v in (
            ("gamma", rng.uniform(0.5, 2.0, c)),
            ("beta", rng.standard_normal(c)),
            ("mean", rng.standard_normal(c)),
            ("var", rng.uniform(0.2, 3.0, c)),
        )
    ]
    bn = b.add("batch_norm", [cat, *bn_in], epsilon=1e-5)
    r = b.add("relu", [bn])
    w2 = b.const("w2", rng.standard_normal((4, 16, 1, 1)).astype(np.float32) * 0.3)
    b.output(b.add("conv2d", [r, w2], strides=(1, 1), pads=(0, 0, 0, 0), groups=1))
    g = b.build()
    data = calibdata.random(g, 4, seed=0)
    xs = data.samples[0]
    dw = batch_norms_as_depthwise(g)
    node = next(n for n in dw.nodes if n.name == "batch_norm")
    assert node.op == "conv2d" and node.attr("groups") == c
    np.testing.assert_allclose(
        run(dw, [xs])[dw.outputs[0]], run(g, [xs])[g.outputs[0]], rtol=1e-5, atol=1e-5
    )
    prep = prepare_for_quantization(g)
    assert "batch_norm" not in {n.op for n in prep.nodes}
    assert prep.node("batch_norm").attr("act_min") == 0.0  # the ReLU fused into it
    q = quantize_graph(g, parse_precision("w8a8"), data).graph
    layer = q.node("batch_norm")
    assert q.tensors[layer.outputs[0]].is_quantized and q.tensors[layer.inputs[1]].is_quantized
    checked = accelsim.verify(q, "host")
    assert "batch_norm" in {c.name for c in checked.layers}
    assert checked.ok, [(c.name, c.mismatches) for c in checked.layers if c.mismatches]


# -- post-training quantization ------------------------------------------------------------
@pytest.fixture(scope="module")
def resnet():
    g = zoo.build("resnet18", input_size=32)
    return g, calibdata.random(g, 3, seed=1)


def test_ptq_graph_is_integer_only_with_exact_bias_scales(resnet):
    g, data = resnet
    q = quantize_graph(g, parse_precision("w8a8"), data).graph
    assert q.requant_mode == "gemmlowp" and q.metadata["calibration_random"] is True
    convs = [n for n in q.nodes if n.op in ("conv2d", "dense")]
    assert len(convs) == 21
    for n in convs:
        x, w, b = (q.tensors[t] for t in n.inputs)
        y = q.tensors[n.outputs[0]]
        assert (x.dtype, w.dtype, b.dtype, y.dtype) == ("int8", "int8", "int32", "int8")
        wq = q.constants[n.inputs[1]]
        assert wq.min() >= -127 and wq.max() <= 127  # restricted symmetric range
        assert w.quant.axis == 0 and len(w.quant.scale) == w.shape[0]
        assert set(w.quant.zero_point) == {0}
        np.testing.assert_array_equal(b.quant.scales(), x.quant.scales()[0] * w.quant.scales())
        # real zero is exactly representable: dequantize(zero_point) == 0
        s, z = x.quant.scale[0], x.quant.zero_point[0]
        assert s * (z - z) == 0.0 and -128 <= z <= 127
    only = [n.op for n in q.nodes if any(q.tensors[o].is_float for o in n.outputs)]
    assert only == ["dequantize"]  # the final dequantize of the logits


def test_precision_ordering_by_output_snr(resnet):
    g, data = resnet
    x = data.samples[0]
    # compare the logits (the fc output): the softmax output's fixed 2^-b step would dominate
    logits = run(g, [x], keep=True)["fc"]
    snr = {}
    for p in ("w16a16", "w8a8", "w4a8", "w4a4"):
        q = quantize_graph(g, parse_precision(p), data).graph
        yq = run(q, [x], keep=True)["fc"]
        info = q.tensors["fc"]
        deq = info.quant.scale[0] * (yq.astype(np.float64) - info.quant.zero_point[0])
        snr[p] = snr_db(logits, deq)
    assert snr["w16a16"] > snr["w8a8"] > snr["w4a8"] > snr["w4a4"], snr
    # about 6 dB per bit, less the accumulated requantization noise of 21 layers
    assert snr["w16a16"] > 60 and snr["w8a8"] > 20 and snr["w4a4"] < 15, snr


def test_weight_only_model_size_is_4x_smaller():
    g = zoo.build("mobilenet_v1", input_size=32)
    data = calibdata.random(g, 1)
    wo = quantize_graph(g, parse_precision("w8a8/weight-only"), data).graph
    ref = quantize_graph(g, parse_precision("fp32"), data).graph
    ratio = ref.model_bytes() / wo.model_bytes()
    assert 3.9 < ratio <= 4.0, ratio  # biases stay float32
    assert all(wo.tensors[o].is_float for n in wo.nodes for o in n.outputs)
    w4 = quantize_graph(g, parse_precision("w4a8/weight-only"), data).graph
    assert 7.5 < ref.model_bytes() / w4.model_bytes() <= 8.0


# -- mixed precision -------------------------------------------------------------------------
def test_mixed_precision_first_and_last_at_8_bits(tmp_path, resnet):
    g, data = resnet
    path = tmp_path / "mixed.yaml"
    path.write_text("default: w4a4\nlayers:\n  conv1: w8a8\n  fc: w8a8\n")
    mixed = load_mixed(path)
    from accelsim.quant.transforms import prepare_for_quantization

    per_node = mixed.resolve(prepare_for_quantization(g), parse_precision("w8a8"))
    q = quantize_graph(g, parse_precision("w4a4"), data, overrides=per_node).graph
    dt = {n.name: q.tensors[n.inputs[1]].dtype for n in q.nodes if n.op in ("conv2d", "dense")}
    assert dt["conv1"] == "int8" and dt["fc"] == "int8" and dt["layer2.0.conv1"] == "int4"
    assert q.tensors[q.node("conv1").outputs[0]].dtype == "int8"  # widest consumer/producer
    assert q.tensors[q.node("layer3.1.conv2").outputs[0]].dtype == "int4"
    write_mixed(tmp_path / "out.yaml", parse_precision("w4a4"), per_node)
    again = load_mixed(tmp_path / "out.yaml").resolve(
        prepare_for_quantization(g), parse_precision("w8a8")
    )
    assert again == per_node


@pytest.mark.parametrize(
    "text,fragment",
    [
        (
            "layers:\n  conv_1: w8a8\n",
            "pattern 'conv_1' matches no layer of model 'resnet18'; did you mean 'conv1'",
        ),
        ("layers: {}\n", "'layers' must map"),
        ("default: w8a8\nlayer:\n  conv1: w8a8\n", "unknown key(s) layer"),
        ("layers:\n  conv1: w8a9\n", "layers: conv1 'w8a9': activation bits"),
        ("layers: [conv1\n", "not valid YAML at line 2"),
    ],
)
def test_bad_mixed_yaml(tmp_path, text, fragment):
    g = fuse_activations(fold_batch_norm(zoo.build("resnet18", input_size=32)))
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        load_mixed(path).resolve(g, parse_precision("w8a8"))
    assert fragment in str(err.value) and str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_calibration_data_shape_errors(tmp_path):
    g = zoo.build("digits_cnn")
    np.save(tmp_path / "bad.npy", np.zeros((4, 1, 9, 9), np.float32))
    with pytest.raises(InputError, match=r"must be \(N, 1, 8, 8\); found \[4, 1, 9, 9\]"):
        calibdata.from_npy(str(tmp_path / "bad.npy"), g)
    np.save(tmp_path / "ok.npy", np.zeros((4, 1, 8, 8), np.float32))
    assert len(calibdata.from_npy(str(tmp_path / "ok.npy"), g).samples) == 4


def test_cli_quantize_bad_input_errors(tmp_path):
    def cli(*a):
        return subprocess.run(
            [sys.executable, "-m", "accelsim", *map(str, a)],
            capture_output=True,
            text=True,
            timeout=120,
        )

    for args, frag in [
        (["--precision", "w3a8", "--calib-random", "2"], "weight bits must be one of 4, 8, 16"),
        (["--precision", "w8a0", "--calib-random", "2"], "activation bits"),
        (["--precision", "w8a8"], "needs calibration data"),
        (["--precision", "w8a8", "--calib-dataset", "imagenet"], "unknown data set"),
        (["--precision", "w8a8", "--calib-random", "2", "--calibration", "kl"], "kl"),
    ]:
        proc = cli("quantize", "digits_cnn", *args, "--out", tmp_path / "q.onnx")
        assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and frag in proc.stderr, proc.stderr
    assert not (tmp_path / "q.onnx").exists()


def test_cli_quantize_writes_qdq_onnx_that_onnxruntime_runs(tmp_path):
    import onnxruntime as ort

    from accelsim.model.onnx_import import load_onnx

    (tmp_path / "mixed.yaml").write_text("layers:\n  fc: w8a8/unsigned\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "accelsim",
            "quantize",
            "digits_cnn",
            "--precision",
            "w4a8/unsigned",
            "--calibration",
            "percentile:99.9",
            "--calib-random",
            "4",
            "--mixed",
            tmp_path / "mixed.yaml",
            "--out",
            tmp_path / "q.onnx",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    g = load_onnx(tmp_path / "q.onnx")
    dtypes = {n.name: g.tensors[n.inputs[1]].dtype for n in g.nodes if n.op in ("conv2d", "dense")}
    assert dtypes["fc"] == "int8" and set(dtypes.values()) == {"int4", "int8"}
    x = np.random.default_rng(5).standard_normal((1, 1, 8, 8)).astype(np.float32)
    so = ort.SessionOptions()
    so.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    )  # int4: no QLinear fusion
    sess = ort.InferenceSession(str(tmp_path / "q.onnx"), so, providers=["CPUExecutionProvider"])
    want = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    got = run(g, [x])[g.outputs[0]]
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_digits_calibration_dataset():
    g = zoo.build("digits_mobilenet")
    data = calibdata.from_dataset("digits", g, limit=16)
    assert len(data.samples) == 16 and not data.is_random
    assert data.samples[0].shape == g.tensors[g.inputs[0]].shape
    q = quantize_graph(g, parse_precision("w8a8"), data).graph
    assert "digits" in q.metadata["calibration_data"]
    with pytest.raises(
        InputError, match=r"shape \[1, 3, 32, 32\]; digits images need \(1, 1, S, S\)"
    ):
        calibdata.from_dataset("digits", zoo.build("resnet18", input_size=32))
