"""Tests for the built-in model zoo (accelsim.model.zoo).

Exact parameter / MAC counts are pinned and checked against the published figures; every model
runs through the float reference executor; and for resnet18 and mobilenet_v2 an independent
oracle (ONNX Runtime, on an ONNX model written here from the graph's float ops) must agree
with the reference executor.
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
import pytest

from accelsim.core.errors import ModelError
from accelsim.model import zoo
from accelsim.model.graph import Graph
from accelsim.ref.executor import run

NAMES = [
    "mobilenet_v1",
    "mobilenet_v2",
    "resnet18",
    "resnet50",
    "inception_v3",
    "bert_base_layer",
    "digits_cnn",
]
CNNS = [n for n in NAMES if n != "bert_base_layer"]

# name: (exact params, exact MACs at the default input, default input shape)
EXACT = {
    "mobilenet_v1": (4_231_976, 568_740_352, (1, 3, 224, 224)),
    "mobilenet_v2": (3_504_872, 300_774_272, (1, 3, 224, 224)),
    "resnet18": (11_689_512, 1_814_073_344, (1, 3, 224, 224)),
    "resnet50": (25_557_032, 4_089_184_256, (1, 3, 224, 224)),
    "inception_v3": (23_834_568, 5_713_216_096, (1, 3, 299, 299)),
    "bert_base_layer": (7_087_872, 931_135_488, (1, 128, 768)),
    "digits_cnn": (24_058, 157_312, (1, 1, 8, 8)),
}

# name: (params check, MACs check) at the precision the figure was published with
PUBLISHED = {
    "mobilenet_v1": (lambda p: round(p / 1e6, 1) == 4.2, lambda m: round(m / 1e6) == 569),
    "mobilenet_v2": (lambda p: 3.4 <= round(p / 1e6, 1) <= 3.5, lambda m: round(m / 1e7) == 30),
    "resnet18": (lambda p: round(p / 1e6, 1) == 11.7, lambda m: round(m / 1e9, 1) == 1.8),
    "resnet50": (lambda p: round(p / 1e6, 1) == 25.6, lambda m: round(m / 1e9, 1) == 4.1),
    "inception_v3": (lambda p: round(p / 1e6, 1) == 23.8, lambda m: round(m / 1e9, 1) == 5.7),
    "bert_base_layer": (lambda p: round(p / 1e6, 2) == 7.09, lambda m: round(m / 1e9, 2) == 0.93),
    "digits_cnn": (lambda p: p == 24_058, lambda m: m == 157_312),
}

SMALL = {
    "mobilenet_v1": 32,
    "mobilenet_v2": 32,
    "resnet18": 32,
    "resnet50": 32,
    "inception_v3": 75,
    "bert_base_layer": 16,
    "digits_cnn": 8,
}

ALLOWED_OPS = {
    "conv2d",
    "dense",
    "matmul",
    "add",
    "mul",
    "concat",
    "max_pool",
    "avg_pool",
    "global_avg_pool",
    "relu",
    "relu6",
    "reshape",
    "flatten",
    "transpose",
    "softmax",
    "pad",
    "layer_norm",
    "batch_norm",
    "gelu",
}


@pytest.fixture(scope="module")
def full() -> dict[str, Graph]:
    return {name: zoo.build(name) for name in NAMES}


def _input(g: Graph, seed: int = 1) -> np.ndarray:
    shape = g.tensors[g.inputs[0]].shape
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# The catalogue and the counts
# ---------------------------------------------------------------------------------------------


def test_catalogue():
    # the names first, in this order; further models (e.g. for the accuracy study) after
    assert list(zoo.MODELS)[: len(NAMES)] == NAMES
    for name, entry in ((n, zoo.MODELS[n]) for n in NAMES):
        assert isinstance(entry, zoo.ZooEntry)
        assert entry.name == name and entry.description
        assert entry.input_shape == EXACT[name][2]
        assert {"params", "macs", "source"} <= set(entry.published)
        with pytest.raises(dataclasses.FrozenInstanceError):
            entry.name = "x"  # type: ignore[misc]


@pytest.mark.parametrize("name", NAMES)
def test_exact_counts_match_published(name, full):
    g = full[name]
    params, macs, shape = EXACT[name]
    assert g.params() == params
    assert g.macs() == macs
    assert g.tensors[g.inputs[0]].shape == shape
    check_params, check_macs = PUBLISHED[name]
    assert check_params(g.params()), g.params()
    assert check_macs(g.macs()), g.macs()
    pub = zoo.MODELS[name].published
    if "params_exact" in pub:
        assert g.params() == pub["params_exact"]
    # the rounded figures stored in the entry agree with the counts to two significant digits
    assert math.isclose(g.params(), pub["params"], rel_tol=0.04)
    assert math.isclose(g.macs(), pub["macs"], rel_tol=0.01)


def test_bert_macs_formula(full):
    s, d, f = 128, 768, 3072
    assert full["bert_base_layer"].macs() == 4 * s * d * d + 2 * s * s * d + 2 * s * d * f
    assert full["bert_base_layer"].params() == 4 * (d * d + d) + 2 * d * f + f + d + 4 * d
    g = zoo.build("bert_base_layer", input_size=16)
    assert g.macs() == 4 * 16 * d * d + 2 * 16 * 16 * d + 2 * 16 * d * f
    assert g.params() == 7_087_872
    assert g.tensors[g.inputs[0]].shape == (1, 16, 768)


def test_inception_aux_accounts_for_torchvision_total(full):
    # torchvision inception_v3 with AuxLogits has 27,161,264 parameters; AuxLogits is
    # conv0 BasicConv2d(768, 128, 1), conv1 BasicConv2d(128, 768, 5), fc Linear(768, 1000).
    aux = (768 * 128 + 2 * 128) + (128 * 768 * 25 + 2 * 768) + (768 * 1000 + 1000)
    assert full["inception_v3"].params() + aux == 27_161_264


@pytest.mark.parametrize("name", NAMES)
def test_input_size_changes_macs_not_params_or_weights(name, full):
    small = zoo.build(name, input_size=SMALL[name] * 2)
    g = full[name]
    assert small.params() == g.params()
    assert small.macs() != g.macs()
    assert set(small.constants) == set(g.constants)
    for k, v in g.constants.items():
        assert np.array_equal(small.constants[k], v), k
    assert small.metadata["input_size"] == SMALL[name] * 2


def test_build_is_fast():
    for name in NAMES:
        t = time.perf_counter()
        zoo.build(name, seed=3)
        assert time.perf_counter() - t < 2.0, name


# ---------------------------------------------------------------------------------------------
# Determinism and errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "bert_base_layer", "digits_cnn"])
def test_weights_deterministic_by_seed(name):
    a = zoo.build(name, seed=7, input_size=SMALL[name])
    b = zoo.build(name, seed=7, input_size=SMALL[name])
    c = zoo.build(name, seed=8, input_size=SMALL[name])
    assert list(a.constants) == list(b.constants) == list(c.constants)
    for k in a.constants:
        assert a.constants[k].dtype == np.float32
        assert np.array_equal(a.constants[k], b.constants[k]), k
    differing = [k for k in a.constants if not np.array_equal(a.constants[k], c.constants[k])]
    assert len(differing) >= len(a.constants) - 1  # everything but a fixed scale constant
    x = _input(a)
    np.testing.assert_array_equal(run(a, [x])[a.outputs[0]], run(b, [x])[b.outputs[0]])


def test_unknown_name_and_bad_input_size():
    with pytest.raises(ModelError, match="resnet18.*digits_cnn"):
        zoo.build("resnet19")
    with pytest.raises(ModelError, match="75"):
        zoo.build("inception_v3", input_size=74)
    with pytest.raises(ModelError):
        zoo.build("resnet18", input_size=0)
    with pytest.raises(ModelError):
        zoo.build("resnet18", input_size=32.0)  # type: ignore[arg-type]


def test_loader_uses_zoo():
    from accelsim.model.loader import load_model

    g = load_model("digits_cnn", input_size=16, seed=2)
    assert g.tensors[g.inputs[0]].shape == (1, 1, 16, 16)
    assert g.params() == 24_058


# ---------------------------------------------------------------------------------------------
# Structure and naming
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_structure(name, full):
    g = full[name]
    assert {n.op for n in g.nodes} <= ALLOWED_OPS
    names = [n.name for n in g.nodes]
    assert len(set(names)) == len(names)
    for n in g.nodes:
        assert n.outputs == (n.name,)  # tensor names equal node names
    for t in g.constants:
        assert g.tensors[t].dtype == "float32"
    if name not in CNNS:
        return
    assert g.nodes[-1].op == "softmax" and g.nodes[-2].op == "dense"
    assert g.nodes[-3].op == "flatten" and g.nodes[-4].op == "global_avg_pool"
    for n in g.nodes:
        assert n.attr("data_layout", "NCHW") == "NCHW"
        if n.op == "conv2d":
            assert len(n.inputs) == 2, f"{n.name} has a bias"
            users = g.consumers(n.outputs[0])
            assert [u.op for u in users] == ["batch_norm"], n.name
        if n.op == "batch_norm":
            assert np.all(g.constants[n.inputs[4]] > 0)
            assert g.producer(n.inputs[0]).op == "conv2d"
    classes = 10 if name == "digits_cnn" else 1000
    assert g.tensors[g.outputs[0]].shape == (1, classes)


def test_torchvision_names(full):
    r18 = full["resnet18"]
    for nm in [
        "conv1",
        "bn1",
        "relu",
        "maxpool",
        "layer1.0.conv1",
        "layer1.0.bn1",
        "layer1.0.add",
        "layer1.0.relu_1",
        "layer2.0.downsample.0",
        "layer2.0.downsample.1",
        "layer4.1.conv2",
        "avgpool",
        "fc",
    ]:
        r18.node(nm)
    assert r18.node("layer2.0.downsample.1").op == "batch_norm"
    assert r18.tensors["fc.weight"].shape == (1000, 512)
    assert r18.tensors["layer1.0.conv1.weight"].shape == (64, 64, 3, 3)
    assert "bn1.running_var" in r18.constants

    r50 = full["resnet50"]  # v1.5: stride on the 3x3 conv
    assert r50.node("layer2.0.conv1").attr("strides") == (1, 1)
    assert r50.node("layer2.0.conv2").attr("strides") == (2, 2)
    assert r50.node("layer2.0.downsample.0").attr("strides") == (2, 2)
    assert r50.node("layer4.2.relu_2").op == "relu"
    assert r50.tensors["fc.weight"].shape == (1000, 2048)

    v2 = full["mobilenet_v2"]
    assert v2.node("features.0.0").op == "conv2d"
    assert v2.node("features.0.2").op == "relu6"
    dw = v2.node("features.1.conv.0.0")
    assert dw.attr("groups") == 32 and v2.tensors[dw.inputs[1]].shape == (32, 1, 3, 3)
    assert v2.node("features.2.conv.0.0").attr("groups") == 1  # expansion 1x1
    assert v2.node("features.2.conv.1.0").attr("groups") == 96
    assert v2.node("features.3.add").op == "add"
    assert v2.node("features.18.0").op == "conv2d"
    assert v2.tensors["classifier.1.weight"].shape == (1000, 1280)

    v1 = full["mobilenet_v1"]
    assert v1.node("features.13.0").attr("groups") == 1024
    assert v1.tensors["features.13.3.weight"].shape == (1024, 1024, 1, 1)

    inc = full["inception_v3"]
    assert inc.node("Mixed_7c.branch_pool.conv").op == "conv2d"
    assert inc.tensors["Mixed_6b.branch7x7_2.conv.weight"].shape == (128, 128, 1, 7)
    assert inc.node("Mixed_5b.avg_pool").attr("count_include_pad") is True
    assert inc.tensors["Mixed_7c.concat"].shape == (1, 2048, 8, 8)

    bert = full["bert_base_layer"]
    assert bert.tensors["attention.self.matmul"].shape == (1, 12, 128, 128)
    mul = bert.node("attention.self.mul")
    assert float(bert.constants[mul.inputs[1]]) == pytest.approx(0.125)
    assert bert.node("intermediate.gelu").op == "gelu"
    assert bert.tensors["output.LayerNorm"].shape == (1, 128, 768)


# ---------------------------------------------------------------------------------------------
# Running through the float reference executor
# ---------------------------------------------------------------------------------------------


def _check_classifier_output(g: Graph, values: dict[str, np.ndarray]) -> None:
    out = values[g.outputs[0]]
    logits = values[g.producer(g.outputs[0]).inputs[0]]
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(logits))
    assert out.sum() == pytest.approx(1.0, abs=1e-5)
    assert out.max() < 0.99  # not one-hot
    assert np.ptp(logits) > 0.1  # logits not all equal


@pytest.mark.parametrize("name", NAMES)
def test_runs_at_reduced_size(name):
    g = zoo.build(name, seed=0, input_size=SMALL[name])
    values = run(g, [_input(g)], keep=True)
    for t, v in values.items():
        assert np.all(np.isfinite(v)), t
    if name == "bert_base_layer":
        out = values[g.outputs[0]]
        assert out.shape == (1, 16, 768)
        probs = values["attention.self.softmax"]
        np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-5)
        assert 0.01 < out.std() < 100
        return
    _check_classifier_output(g, values)


def test_full_size_mobilenet_v1(full):
    g = full["mobilenet_v1"]
    values = run(g, [_input(g)], keep=True)
    assert values[g.outputs[0]].shape == (1, 1000)
    _check_classifier_output(g, values)


# ---------------------------------------------------------------------------------------------
# Independent oracle: ONNX Runtime on an ONNX model written from the graph
# ---------------------------------------------------------------------------------------------


def _to_onnx(g: Graph, extra_outputs: list[str]):
    """Test-local converter of the zoo's float CNN ops to ONNX (opset 17)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits = [
        numpy_helper.from_array(np.asarray(v, dtype=np.float32), k) for k, v in g.constants.items()
    ]
    nodes = []
    for n in g.nodes:
        a = n.attrs
        if n.op == "conv2d":
            w = g.tensors[n.inputs[1]].shape
            nodes.append(
                helper.make_node(
                    "Conv",
                    list(n.inputs),
                    list(n.outputs),
                    name=n.name,
                    kernel_shape=list(w[2:]),
                    strides=list(a["strides"]),
                    dilations=list(a["dilations"]),
                    pads=list(a["pads"]),
                    group=a["groups"],
                )
            )  # (t, l, b, r) = ONNX order
        elif n.op == "batch_norm":
            nodes.append(
                helper.make_node(
                    "BatchNormalization",
                    list(n.inputs),
                    list(n.outputs),
                    name=n.name,
                    epsilon=a["epsilon"],
                )
            )
        elif n.op == "relu":
            nodes.append(helper.make_node("Relu", list(n.inputs), list(n.outputs), name=n.name))
        elif n.op == "relu6":
            lo, hi = f"{n.name}.min", f"{n.name}.max"
            inits += [
                numpy_helper.from_array(np.array(0.0, np.float32), lo),
                numpy_helper.from_array(np.array(6.0, np.float32), hi),
            ]
            nodes.append(
                helper.make_node("Clip", [n.inputs[0], lo, hi], list(n.outputs), name=n.name)
            )
        elif n.op == "add":
            nodes.append(helper.make_node("Add", list(n.inputs), list(n.outputs), name=n.name))
        elif n.op == "max_pool":
            nodes.append(
                helper.make_node(
                    "MaxPool",
                    list(n.inputs),
                    list(n.outputs),
                    name=n.name,
                    kernel_shape=list(a["kernel"]),
                    strides=list(a["strides"]),
                    pads=list(a["pads"]),
                )
            )
        elif n.op == "global_avg_pool":
            nodes.append(
                helper.make_node("GlobalAveragePool", list(n.inputs), list(n.outputs), name=n.name)
            )
        elif n.op == "flatten":
            nodes.append(
                helper.make_node(
                    "Flatten", list(n.inputs), list(n.outputs), name=n.name, axis=a.get("axis", 1)
                )
            )
        elif n.op == "dense":
            nodes.append(
                helper.make_node("Gemm", list(n.inputs), list(n.outputs), name=n.name, transB=1)
            )
        elif n.op == "softmax":
            nodes.append(
                helper.make_node(
                    "Softmax", list(n.inputs), list(n.outputs), name=n.name, axis=a.get("axis", -1)
                )
            )
        else:
            raise AssertionError(f"converter does not handle {n.op}")

    def vi(t):
        return helper.make_tensor_value_info(t, TensorProto.FLOAT, list(g.tensors[t].shape))

    graph = helper.make_graph(
        nodes,
        g.name,
        [vi(t) for t in g.inputs],
        [vi(t) for t in list(g.outputs) + extra_outputs],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_matches_onnxruntime(name):
    ort = pytest.importorskip("onnxruntime")
    g = zoo.build(name, seed=5, input_size=32)
    logits = g.producer(g.outputs[0]).inputs[0]
    model = _to_onnx(g, [logits])
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = _input(g, seed=11)
    probs_ort, logits_ort = sess.run([g.outputs[0], logits], {g.inputs[0]: x})
    ours = run(g, [x], keep=True)
    np.testing.assert_allclose(ours[logits], logits_ort, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ours[g.outputs[0]], probs_ort, rtol=1e-4, atol=1e-5)
    assert probs_ort.max() < 0.99 and np.ptp(logits_ort) > 0.1
