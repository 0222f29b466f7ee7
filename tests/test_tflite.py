"""TFLite import and the gemmlowp kernels, checked against TensorFlow's own oracles.

Keras models with seeded random weights are converted by `tf.lite.TFLiteConverter` (full
integer int8, int16x8, and float32) and run by `tf.lite.Interpreter` with the BUILTIN_REF op
resolver, i.e. TFLite's reference kernels. `accelsim.ref.executor.run(load_tflite(path))`
must agree on every element of every tensor the two share (the model outputs and all
intermediate activations, read with `experimental_preserve_all_tensors`): zero differing
elements for quantized models, allclose for float models.

Each test prints "<case>: <compared> elements compared, <differing> differing".
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

import tflite_models as M  # noqa: E402  (tests/ helper, needs TensorFlow)

from accelsim.core.errors import ModelError, UnsupportedOpError  # noqa: E402
from accelsim.model.tflite_import import SUPPORTED_OPS, load_tflite  # noqa: E402
from accelsim.ref.executor import run  # noqa: E402

SEED = 1234
N_INPUTS = 8  # input sets per model: 7 calibration-like + 1 full-range uniform

SMALL_MODELS = {
    "conv": M.conv_model,
    "depthwise": M.depthwise_model,
    "dense": M.dense_model,
    "add": M.add_model,
    "avg_pool": M.avg_pool_model,
    "max_pool": M.max_pool_model,
    "concat": M.concat_model,
    "reshape": M.reshape_model,
    "softmax": M.softmax_model,
    "mean": M.mean_model,
    "mul": M.mul_model,
    "misc": M.misc_model,  # PAD, SUB, RELU, RELU6, TRANSPOSE, squeeze, BATCH_MATMUL
}
ALL_MODELS = dict(SMALL_MODELS, padv2=M.padv2_model, mobilenet_v2=M.mobilenet_v2)


# ---------------------------------------------------------------------------------------
# Fixtures: every (model, mode) is converted at most once per session
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tflite_file(tmp_path_factory):
    cache: dict[tuple[str, str], object] = {}
    root = tmp_path_factory.mktemp("tflite")

    def get(name: str, mode: str):
        key = (name, mode)
        if key not in cache:
            tf.keras.utils.set_random_seed(SEED)
            model = ALL_MODELS[name]()
            M.randomize(model, SEED + 1)
            cache[key] = M.convert(model, mode, root / f"{name}_{mode}.tflite", seed=SEED)
        return cache[key]

    return get


def _reference(path, resolver: str = "BUILTIN_REF"):
    return M.interpreter(path, preserve_all_tensors=True, resolver=resolver)


def compare(
    path,
    n_inputs: int = N_INPUTS,
    exact: bool = True,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    resolver: str = "BUILTIN_REF",
) -> tuple[int, int, list[str]]:
    """Run both on `n_inputs` input sets; compare every shared tensor.

    Returns (elements compared, elements differing, descriptions of the first mismatches).
    Float tensors of quantized models (DEQUANTIZE outputs) must be bit-identical too when
    `exact`; float models compare with allclose(rtol, atol * max|reference|).
    """
    graph = load_tflite(path)
    it = _reference(path, resolver)
    tensor_map = graph.metadata["tflite_tensors"]
    producer = {t: n for n in graph.nodes for t in n.outputs}
    compared = differing = 0
    notes: list[str] = []
    for xs in M.random_inputs(it, n_inputs, SEED):
        M.run_reference(it, xs)  # invokes the interpreter; its tensors are read below
        got = run(graph, xs, keep=True)
        # the graph outputs, through the public interface
        for d in it.get_output_details():
            assert tensor_map[d["index"]] in graph.outputs
        for idx, name in tensor_map.items():
            ref = it.get_tensor(idx)
            val = got[name]
            assert val.shape == ref.shape, (name, val.shape, ref.shape)
            if exact:
                bad = val.astype(ref.dtype) != ref
            else:
                tol = atol * max(1.0, float(np.abs(ref).max(initial=0.0)))
                bad = ~np.isclose(
                    val.astype(np.float64), ref.astype(np.float64), rtol=rtol, atol=tol
                )
            compared += ref.size
            n_bad = int(bad.sum())
            differing += n_bad
            if n_bad and len(notes) < 5:
                node = producer.get(name)
                diff = (val.astype(np.float64) - ref.astype(np.float64))[bad]
                notes.append(
                    f"{name} ({node.op if node else 'input'}): {n_bad}/{ref.size} "
                    f"differ, e.g. {diff[:4].tolist()}"
                )
    return compared, differing, notes


def _report(case: str, compared: int, differing: int, notes: list[str]) -> None:
    print(f"\n{case}: {compared} elements compared, {differing} differing")
    for n in notes:
        print("   ", n)


# ---------------------------------------------------------------------------------------
# Bit-exactness against TFLite's reference kernels
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", M.MODES)
@pytest.mark.parametrize("name", list(SMALL_MODELS))
def test_quantized_model_matches_tflite_reference(tflite_file, name, mode):
    path = tflite_file(name, mode)
    compared, differing, notes = compare(path)
    _report(f"{name}/{mode}", compared, differing, notes)
    assert compared > 0
    assert differing == 0, notes


def test_padv2_int8_matches_tflite_reference(tflite_file):
    # int8 only: for int16x8 the converter emits a PADV2 that TFLite itself cannot prepare
    path = tflite_file("padv2", "int8")
    graph = load_tflite(path)
    pads = [n for n in graph.nodes if n.op == "pad"]
    assert pads and pads[0].attr("value") == pytest.approx(0.75, abs=0.05)
    compared, differing, notes = compare(path)
    _report("padv2/int8", compared, differing, notes)
    assert differing == 0, notes


@pytest.mark.parametrize("mode", M.MODES)
def test_mobilenet_v2_matches_tflite_reference(tflite_file, mode):
    path = tflite_file("mobilenet_v2", mode)
    graph = load_tflite(path)
    ops = {n.op for n in graph.nodes}
    assert {"conv2d", "add", "mean", "dense", "softmax"} <= ops
    assert sum(n.op == "conv2d" and n.attr("groups", 1) > 1 for n in graph.nodes) >= 10
    compared, differing, notes = compare(path)
    _report(f"mobilenet_v2/{mode}", compared, differing, notes)
    assert compared > 1_000_000
    assert differing == 0, notes


@pytest.mark.parametrize("mode", ["int8_floatio", "int16x8_floatio"])
@pytest.mark.parametrize("name", ["conv", "misc", "softmax"])
def test_float_io_quantize_dequantize_exact(tflite_file, name, mode):
    """Quantized inside with float32 input/output: QUANTIZE (AffineQuantize rounding) and
    DEQUANTIZE at the edges must match bit for bit, float outputs included."""
    path = tflite_file(name, mode)
    graph = load_tflite(path)
    ops = [n.op for n in graph.nodes]
    assert ops[0] == "quantize" and "dequantize" in ops
    compared, differing, notes = compare(path)
    _report(f"{name}/{mode}", compared, differing, notes)
    assert differing == 0, notes


@pytest.mark.parametrize(
    "name",
    ["conv", "depthwise", "add", "avg_pool", "mean", "softmax", "misc", "padv2", "mobilenet_v2"],
)
def test_float_model_matches_tflite_reference(tflite_file, name):
    path = tflite_file(name, "float32")
    graph = load_tflite(path)
    assert not graph.is_quantized
    compared, differing, notes = compare(path, n_inputs=3, exact=False, rtol=1e-4, atol=1e-5)
    _report(f"{name}/float32", compared, differing, notes)
    assert differing == 0, notes


@pytest.mark.parametrize("name", ["conv", "depthwise", "misc"])
def test_float16_weight_model_matches_tflite_reference(tflite_file, name):
    """float16 weights dequantized by DEQUANTIZE ops: folded into float32 constants."""
    path = tflite_file(name, "float16_weights")
    graph = load_tflite(path)
    assert "dequantize" not in {n.op for n in graph.nodes}
    compared, differing, notes = compare(path, n_inputs=3, exact=False, rtol=1e-4, atol=1e-5)
    _report(f"{name}/float16_weights", compared, differing, notes)
    assert differing == 0, notes


# ---------------------------------------------------------------------------------------
# IR conventions
# ---------------------------------------------------------------------------------------


def test_import_follows_ir_conventions(tflite_file):
    path = tflite_file("conv", "int8")
    graph = load_tflite(path)
    assert graph.name == path.stem
    assert graph.requant_mode == "gemmlowp"
    convs = [n for n in graph.nodes if n.op == "conv2d"]
    first = convs[0]
    assert first.attr("data_layout") == "NHWC"
    # 12x11 input, 3x3 kernel, stride 2, SAME: H total pad 1 -> (0, 1), W total 2 -> (1, 1)
    assert first.attr("pads") == (0, 1, 1, 1)
    assert first.attr("strides") == (2, 2)
    assert first.attr("act_min") == 0.0 and first.attr("act_max") is None  # ReLU
    assert convs[1].attr("act_min") == 0.0 and convs[1].attr("act_max") == 6.0  # ReLU6
    assert convs[1].attr("pads") == (0, 0, 0, 0)  # VALID
    w = graph.tensors[first.inputs[1]]
    assert w.shape == (8, 3, 3, 3)  # OIHW
    assert w.quant.per_channel and w.quant.axis == 0 and len(w.quant.scale) == 8
    assert graph.tensors[first.inputs[2]].dtype == "int32"
    x = graph.tensors[graph.inputs[0]]
    assert x.shape == (1, 12, 11, 3) and x.dtype == "int8"

    dw = load_tflite(tflite_file("depthwise", "int16x8"))
    d2 = [n for n in dw.nodes if n.op == "conv2d"][1]  # depth_multiplier 2 on 4 channels
    assert d2.attr("groups") == 4
    wd = dw.tensors[d2.inputs[1]]
    assert wd.shape == (8, 1, 3, 3) and wd.quant.axis == 0
    assert dw.tensors[d2.inputs[2]].dtype == "int64"
    assert dw.tensors[dw.inputs[0]].dtype == "int16"


# ---------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------


def _one_line(exc: pytest.ExceptionInfo, path) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    assert str(path) in msg
    return msg


def test_truncated_file(tflite_file, tmp_path):
    good = tflite_file("conv", "int8")
    bad = tmp_path / "truncated.tflite"
    bad.write_bytes(good.read_bytes()[:100])
    with pytest.raises(ModelError) as exc:
        load_tflite(bad)
    assert "not a valid TFLite flatbuffer" in _one_line(exc, bad)


def test_not_a_flatbuffer(tmp_path):
    bad = tmp_path / "notes.tflite"
    bad.write_text("this is not a model\n")
    with pytest.raises(ModelError) as exc:
        load_tflite(bad)
    assert "not a valid TFLite flatbuffer" in _one_line(exc, bad)


def test_unsupported_operator(tmp_path):
    tf.keras.utils.set_random_seed(SEED)
    inp = M.keras.Input((6,), batch_size=1)
    model = M.keras.Model(inp, M.layers.Activation("tanh")(M.layers.Dense(4)(inp)))
    path = M.convert(model, "float32", tmp_path / "tanh.tflite")
    with pytest.raises(UnsupportedOpError) as exc:
        load_tflite(path)
    msg = _one_line(exc, path)
    assert "operator 1" in msg and "TANH" in msg
    assert all(op in msg for op in SUPPORTED_OPS)


def test_dynamic_shape_rejected(tmp_path):
    tf.keras.utils.set_random_seed(SEED)
    inp = M.keras.Input((None, None, 3))
    model = M.keras.Model(inp, M.layers.Conv2D(4, 3)(inp))
    path = M.convert(model, "float32", tmp_path / "dynamic.tflite")
    with pytest.raises(ModelError) as exc:
        load_tflite(path)
    assert "dynamic shape" in _one_line(exc, path)


def test_several_subgraphs_rejected(tmp_path):
    @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32)])
    def loop(x):
        return tf.while_loop(
            lambda i, v: i < 3, lambda i, v: (i + 1, v * 2.0), [tf.constant(0), x]
        )[1]

    conv = tf.lite.TFLiteConverter.from_concrete_functions([loop.get_concrete_function()], loop)
    path = tmp_path / "while.tflite"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path.write_bytes(conv.convert())
    with pytest.raises(ModelError) as exc:
        load_tflite(path)
    assert "subgraphs" in _one_line(exc, path)
