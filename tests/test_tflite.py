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

import keras  # noqa: E402
import tflite_models as M  # noqa: E402  (tests/ helper, needs TensorFlow)
from keras import layers  # noqa: E402

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


# The operators of mobile CNNs and transformers (issue 14): model -> the quantized modes it
# is checked in. "int16x8_mixed" where TFLite has no 16x8 kernel for an operator (HARD_SWISH):
# the converter leaves it in float32 between DEQUANTIZE and QUANTIZE. Not checked, because
# TFLite itself cannot run them: DEPTH_TO_SPACE at 16x8 (the converter writes an int16 input
# with a float output), Keras' LayerNormalization at 16x8 (an int16 SQUARED_DIFFERENCE, which
# TFLite rejects; the encoders below write layer norm with 16x8 kernels instead), and
# embeddings at 16x8 (the 16x8 converter cannot calibrate integer token-id inputs).
OP_MODELS = {
    "activations": (M.activations_model, ("int8", "int16x8")),  # LOGISTIC, TANH, SiLU, ...
    "gelu_hard_swish": (M.gelu_hard_swish_model, ("int8", "int16x8_mixed")),
    "squeeze_excite": (M.squeeze_excite_model, ("int8", "int16x8")),  # broadcast MUL
    "movement": (M.movement_model, ("int8", "int16x8")),  # slices, split, gather, ...
    "resize": (M.resize_model, ("int8", "int16x8")),
    "dilated_grouped": (M.dilated_model, ("int8", "int16x8")),  # SPACE_TO_BATCH_ND folded
    "layer_norm": (M.layer_norm_model, ("int8",)),  # SQUARED_DIFFERENCE, RSQRT
    "tiny_bert": (M.tiny_bert, ("int8",)),  # GATHER embeddings, masks, GELU, softmax
    "tiny_bert_encoder": (M.tiny_bert_encoder, ("int16x8",)),
    "tiny_vit": (M.tiny_vit, ("int8", "int16x8")),  # class token, position embedding
    "mobilenet_v3_block": (M.mobilenet_v3_block, ("int8", "int16x8_mixed")),
    "efficientnet_block": (M.efficientnet_block, ("int8", "int16x8")),
    "shufflenet_block": (M.shufflenet_block, ("int8", "int16x8")),
}
# Operators TFLite's reference resolver (BUILTIN_REF) registers only for float tensors: these
# models run with the builtin resolver, whose kernels copy values just the same.
BUILTIN_RESOLVER = {"depth_to_space_tile": (M.depth_to_space_tile_model, ("int8",))}
ALL_MODELS.update({k: f for k, (f, _) in {**OP_MODELS, **BUILTIN_RESOLVER}.items()})
OP_CASES = [
    (name, mode) for name, (_, modes) in {**OP_MODELS, **BUILTIN_RESOLVER}.items() for mode in modes
]


@pytest.mark.parametrize("name,mode", OP_CASES, ids=[f"{n}-{m}" for n, m in OP_CASES])
def test_new_operator_model_matches_tflite_reference(tflite_file, name, mode):
    """Zero differing elements on every tensor, integer and float (the float islands of the
    mixed 16x8 models included)."""
    path = tflite_file(name, mode)
    resolver = "BUILTIN" if name in BUILTIN_RESOLVER else "BUILTIN_REF"
    compared, differing, notes = compare(path, n_inputs=4, resolver=resolver)
    _report(f"{name}/{mode}", compared, differing, notes)
    assert compared > 0
    assert differing == 0, notes


# Input ranges at which a GELU table filled with correctly rounded erfc / tanh differs from
# one filled with glibc's erfcf / tanhf (found by comparing the two tables over ranges 1..8):
# (range, tanh approximation)
GELU_RANGES = [(1.13, False), (1.15, False), (1.23, False), (1.38, False), (1.5, False),
               (1.02, True), (1.03, True), (1.06, True), (1.16, True), (1.2, True)]  # fmt: skip


def test_int16_gelu_every_input_value(tmp_path):
    """Every int16 value through ten GELUs (exact and tanh forms) whose 513-entry tables
    TFLite fills with the C library's erfcf / tanhf: those are not correctly rounded, and a
    correctly rounded erfc put entries one ulp off and 640 outputs here one step off (CI met
    it on the tiny BERT encoder when its calibration landed on such a range)."""
    n = 1 << 16
    inps = [keras.Input((n,), name=f"x{i}") for i in range(len(GELU_RANGES))]
    outs = [
        layers.Activation(lambda t, a=approx: tf.nn.gelu(t, approximate=a))(x)
        for x, (_, approx) in zip(inps, GELU_RANGES)
    ]
    conv = tf.lite.TFLiteConverter.from_keras_model(keras.Model(inps, outs))
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: iter(
        [[np.linspace(-r, r, n, dtype=np.float32)[None] for r, _ in GELU_RANGES]]
    )
    conv.target_spec.supported_ops = [
        tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
    ]
    conv.inference_input_type = conv.inference_output_type = tf.int16
    path = tmp_path / "gelu.tflite"
    path.write_bytes(conv.convert())
    graph = load_tflite(path)
    assert [nd.op for nd in graph.nodes] == ["gelu"] * len(GELU_RANGES)
    it = _reference(path)
    every = np.arange(-(1 << 15), 1 << 15, dtype=np.int16)[None]
    tensor_map = graph.metadata["tflite_tensors"]
    for d in it.get_input_details():
        it.set_tensor(d["index"], every)
    it.invoke()
    got = run(graph, {tensor_map[d["index"]]: every for d in it.get_input_details()})
    differing = sum(
        int((it.get_tensor(d["index"]) != got[tensor_map[d["index"]]]).sum())
        for d in it.get_output_details()
    )
    assert differing == 0


@pytest.mark.parametrize("name", list(OP_MODELS) + list(BUILTIN_RESOLVER))
def test_new_operator_float_model_matches_tflite_reference(tflite_file, name):
    path = tflite_file(name, "float32")
    compared, differing, notes = compare(path, n_inputs=2, exact=False, rtol=1e-4, atol=1e-5)
    _report(f"{name}/float32", compared, differing, notes)
    assert differing == 0, notes


def test_new_operators_import_as_expected(tflite_file):
    """What the converter's patterns become in the IR."""
    dil = load_tflite(tflite_file("dilated_grouped", "int8"))
    convs = [n for n in dil.nodes if n.op == "conv2d"]
    assert [n.attr("dilations") for n in convs] == [(2, 2), (2, 3), (1, 1)]
    assert convs[0].attr("groups") == 4 and convs[2].attr("groups") == 2
    assert convs[0].attr("pads") == (2, 2, 2, 2)  # SAME, from paddings minus crops
    mv = load_tflite(tflite_file("movement", "int8"))
    ops = [n.op for n in mv.nodes]
    assert "slice" in ops and "gather" in ops and "pad" in ops
    # the flatten's SHAPE / STRIDED_SLICE / PACK were folded: a plain reshape remains
    assert not {"shape", "pack"} & set(ops)
    assert sum(n.op == "pad" and n.attr("mode") in ("reflect", "symmetric") for n in mv.nodes) == 2
    act = load_tflite(tflite_file("activations", "int16x8"))
    sig = next(n for n in act.nodes if n.op == "sigmoid")
    assert act.tensors[sig.outputs[0]].quant.scale == (1 / 32768,)
    bert = load_tflite(tflite_file("tiny_bert", "int8"))
    gathers = [n for n in bert.nodes if n.op == "gather"]
    assert gathers and bert.is_constant(gathers[0].inputs[0])
    assert bert.tensors[bert.inputs[0]].dtype == "int32"


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


def test_unsupported_operators_all_named_in_one_error(tmp_path):
    """Several unsupported operators: one error names every one (index, operator, output)."""
    tf.keras.utils.set_random_seed(SEED)
    inp = M.keras.Input((6,), batch_size=1)
    x = M.layers.Dense(4)(inp)
    y = M.layers.Activation("elu")(x)
    z = M.layers.Lambda(lambda t: tf.nn.log_softmax(t))(x)
    w = M.layers.Lambda(lambda t: tf.math.cumsum(t, axis=-1))(x)
    model = M.keras.Model(inp, [y, z, w])
    path = M.convert(model, "float32", tmp_path / "unsupported.tflite")
    with pytest.raises(UnsupportedOpError) as exc:
        load_tflite(path)
    msg = _one_line(exc, path)
    assert "3 operator(s)" in msg
    for op in ("ELU", "LOG_SOFTMAX", "CUMSUM"):
        assert f"({op}, output '" in msg, op
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
