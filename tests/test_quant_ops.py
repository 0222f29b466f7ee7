"""w8a16 and the quantizer on the operators of mobile CNNs and transformers (issue 14).

- w8a16 parses as TFLite's 16x8 scheme, and a target that does not list it refuses it;
- accelsim's PTQ at w8a16 makes what TFLite's 16x8 converter makes from the same Keras model
  and calibration data (an outside oracle for the scheme): symmetric int16 activations with
  zero point 0 and the same scales, int8 per-channel weights, int64 biases, the fixed output
  parameters of LOGISTIC / TANH / SOFTMAX, and outputs within a few steps of TFLite's;
- the float networks of the five families (ONNX, tests/torch_models.py; and two TFLite
  ones) quantize at w8a8 and w8a16, with each operator where its OpDef puts it (every conv,
  dense and matmul integer, as Wu et al. 2020 recommend), and run in the reference executor
  close to the float result.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from accelsim.core.errors import AccelsimError
from accelsim.core.precision import parse_precision
from accelsim.model.onnx_import import load_onnx
from accelsim.model.ops import OPS
from accelsim.quant.ptq import CalibrationData, integer_precision, quantize_graph
from accelsim.ref.executor import run

torch = pytest.importorskip("torch")
import torch_models as TM  # noqa: E402

# ---------------------------------------------------------------------------------------------
# the precision
# ---------------------------------------------------------------------------------------------


def test_w8a16_is_tflite_16x8():
    p = parse_precision("w8a16")
    assert (p.weight_bits, p.act_bits) == (8, 16) and str(p) == "w8a16"
    assert p.symmetric_acts and p.per_channel and p.symmetric_weights
    assert p.act_dtype == "int16" and p.weight_dtype == "int8"
    assert p.accumulator_dtype == "int64"  # TFLite's 16x8 kernels: int64 bias and accumulator
    assert p.weight_qrange() == (-127, 127)
    asym = parse_precision("w8a16/asym-act")
    assert not asym.symmetric_acts and str(asym) == "w8a16/asym-act"
    assert not parse_precision("w8a8").symmetric_acts  # other pairs keep their defaults
    assert not parse_precision("w16a16").symmetric_acts


def test_target_without_w8a16_refuses_it(tmp_path):
    from accelsim import api
    from accelsim.core.fsutil import REPO_ROOT

    # every shipped target runs w8a16 now: a copy of one without it
    text = (REPO_ROOT / "targets" / "cortex-a76.yaml").read_text()
    text = text.replace("native: [w8a8, w8a16,", "native: [w8a8,")
    text = "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("w8a16:"))
    path = tmp_path / "no-16x8.yaml"
    path.write_text(text)
    t = api.target(path)
    assert not t.supports(parse_precision("w8a16"))
    with pytest.raises(AccelsimError) as exc:
        api.prepared("mobilenet_v2", t, "w8a16", input_size=32)
    msg = str(exc.value)
    assert "\n" not in msg and t.name in msg and "w8a16" in msg


# ---------------------------------------------------------------------------------------------
# w8a16 against TFLite's 16x8 converter
# ---------------------------------------------------------------------------------------------


def _keras_16x8_model(M):
    layers, keras = M.layers, M.keras
    inp = keras.Input((8, 8, 3), batch_size=1)
    x = layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
    x = layers.DepthwiseConv2D(3, padding="same")(x)
    s = layers.Activation("sigmoid")(layers.Conv2D(8, 1)(x))
    x = layers.Multiply()([x, s])
    x = layers.Activation("tanh")(layers.Conv2D(8, 1)(x))
    x = layers.Conv2D(4, 1)(x)
    return keras.Model(inp, layers.Softmax()(layers.Reshape((64, 4))(x)))


def test_ptq_w8a16_makes_what_tflite_16x8_makes(tmp_path):
    pytest.importorskip("tensorflow")
    import tflite_models as M

    from accelsim.model.tflite_import import load_tflite

    M.tf.keras.utils.set_random_seed(3)
    model = _keras_16x8_model(M)
    M.randomize(model, 4)
    ref = M.convert(model, "int16x8_floatio", tmp_path / "ref.tflite", seed=5)
    fl = load_tflite(M.convert(model, "float32", tmp_path / "float.tflite"))
    samples = tuple(x[0] for x in M.representative(model, 5)())  # the converter's data
    q = quantize_graph(fl, parse_precision("w8a16"), CalibrationData(samples, "tflite")).graph
    t = load_tflite(ref)

    def params(g):
        return [
            (n.op, g.tensors[n.outputs[0]].dtype, g.tensors[n.outputs[0]].quant)
            for n in g.nodes
            if n.op not in ("quantize", "dequantize")
        ]

    from accelsim.model.quantization import graph_precision

    assert graph_precision(t) == graph_precision(q) == parse_precision("w8a16")
    ours, theirs = params(q), params(t)
    assert [o[0] for o in ours] == [o[0] for o in theirs]
    for (op, dt, qa), (_, dt_ref, qb) in zip(ours, theirs):
        assert dt == dt_ref == "int16", op
        assert qa.zero_point == qb.zero_point == (0,), op
        assert qa.scale[0] == pytest.approx(qb.scale[0], rel=1e-5), op
    for g in (q, t):
        for n in g.nodes:
            if n.op == "conv2d":
                w, b = g.tensors[n.inputs[1]], g.tensors[n.inputs[2]]
                assert w.dtype == "int8" and w.quant.axis == 0 and not any(w.quant.zero_point)
                assert b.dtype == "int64"
    # the same computation: outputs within a few int16 steps of TFLite's reference interpreter
    it = M.interpreter(ref)
    scale = t.tensors[t.nodes[-1].inputs[0]].quant.scale[0]
    rng = np.random.default_rng(9)
    for _ in range(3):
        x = rng.standard_normal((1, 8, 8, 3)).astype(np.float32)
        want = M.run_reference(it, [x])[0]
        got = run(q, [x])[q.outputs[0]]
        assert np.abs(got - want).max() <= 4 * scale


# ---------------------------------------------------------------------------------------------
# the families at w8a8 and w8a16
# ---------------------------------------------------------------------------------------------


def _samples(graph, n: int, seed: int) -> CalibrationData:
    rng = np.random.default_rng(seed)
    if len(graph.inputs) == 1:
        s = tuple(
            TM.sample(graph.inputs[0], graph.tensors[graph.inputs[0]].shape, rng) for _ in range(n)
        )
    else:
        s = tuple(
            tuple(TM.sample(i, graph.tensors[i].shape, rng) for i in graph.inputs) for _ in range(n)
        )
    return CalibrationData(s, "random (seeded)", is_random=True)


def _snr_db(graph, q, data) -> float:
    num = den = 0.0
    for x in data.samples:
        feeds = list(x) if isinstance(x, tuple) else [x]
        a, b = run(graph, feeds), run(q, feeds)
        for o, oq in zip(graph.outputs, q.outputs):
            num += float((a[o].astype(np.float64) ** 2).sum())
            den += float(((a[o].astype(np.float64) - b[oq]) ** 2).sum())
    return 10 * np.log10(num / max(den, 1e-30))


@pytest.fixture(scope="module")
def family_graph():
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = load_onnx(onnx.load_from_string(TM.export(name, 17)))
        return cache[name]

    return get


# minimum output SNR (dB) over seeded inputs; a random-weight tiny model quantizes worse than
# a trained one, so these only catch a broken quantization, not measure accuracy
SNR_MIN = {"w8a8": 15.0, "w8a16": 30.0}


@pytest.mark.parametrize("precision", ["w8a8", "w8a16"])
@pytest.mark.parametrize("name", list(TM.FAMILIES))
def test_family_quantizes_and_runs(family_graph, name, precision):
    graph = family_graph(name)
    p = parse_precision(precision)
    q = quantize_graph(graph, p, _samples(graph, 8, 0)).graph
    assert q.is_quantized
    for n in q.nodes:
        if n.op in ("quantize", "dequantize") or not graph.tensors[n.outputs[0]].is_float:
            continue  # (index and mask arithmetic on integers stays as it is)
        out = q.tensors[n.outputs[0]]
        integer = integer_precision(n.op, p) is not None
        if n.op in ("conv2d", "dense", "matmul"):  # every linear layer integer (Wu et al.)
            assert out.is_quantized and q.tensors[n.inputs[0]].is_quantized, n.name
        elif OPS[n.op].quant in ("float", "index") or not integer:
            assert not out.is_quantized, (n.name, n.op)
        else:
            assert out.is_quantized, (n.name, n.op)
            if OPS[n.op].fixed_output is not None:
                # TFLite's: [0, 1) in 2^-8 steps (tanh's [-1, 1) in 2^-7), 2^-15 in 16 bits
                assert out.quant.scale[0] in (2.0**-8, 2.0**-7, 2.0**-15), (n.name, out.quant)
        if out.is_quantized:
            assert out.dtype == p.act_dtype, (n.name, out.dtype)
            if precision == "w8a16":
                assert out.quant.zero_point == (0,), n.name
    snr = _snr_db(graph, q, _samples(graph, 4, 1))
    print(f"\n{name} {precision}: output SNR {snr:.1f} dB")
    assert snr >= SNR_MIN[precision]


def test_w8a16_keeps_8bit_only_kernels_in_float(family_graph):
    """hard-swish and hard-sigmoid have 8-bit kernels only (TFLite has no 16x8 HARD_SWISH):
    integer at w8a8, float between dequantize and quantize at w8a16."""
    graph = family_graph("mobilenet_v3_block")
    data = _samples(graph, 4, 0)
    for prec, quantized in (("w8a8", True), ("w8a16", False)):
        q = quantize_graph(graph, parse_precision(prec), data).graph
        for n in q.nodes:
            if n.op in ("hard_swish", "hard_sigmoid"):
                assert q.tensors[n.outputs[0]].is_quantized == quantized, (prec, n.name)


def test_attention_mask_keeps_the_scores_range(family_graph):
    """The sum of scores and an additive mask is calibrated to the scores' range (widened
    below their maximum), not to the -1e4 of masked positions."""
    from accelsim.quant.ptq import MASK_DEPTH, calibrate_ranges, masking_adds
    from accelsim.quant.transforms import prepare_for_quantization

    graph = prepare_for_quantization(family_graph("tiny_bert"))
    adds = masking_adds(graph)
    ops = sorted(graph.producer(o).op for o in adds)
    assert ops == ["add", "where"]  # the first layer adds its mask, the second selects
    p = parse_precision("w8a8")
    ranges = calibrate_ranges(
        graph, _samples(graph, 4, 0), "minmax", {n.name: p for n in graph.nodes}
    )
    for out, data in adds.items():
        lo, hi = ranges[out]
        assert hi == ranges[data][1] and lo >= min(ranges[data][0], hi - MASK_DEPTH) - 1e-6
        assert lo > -1000


def test_tflite_float_families_quantize_and_run(tmp_path):
    pytest.importorskip("tensorflow")
    import tflite_models as M

    from accelsim.model.tflite_import import load_tflite

    for name, fn in (("mobilenet_v3_block", M.mobilenet_v3_block), ("tiny_vit", M.tiny_vit)):
        M.tf.keras.utils.set_random_seed(1)
        model = fn()
        M.randomize(model, 2)
        graph = load_tflite(M.convert(model, "float32", tmp_path / f"{name}.tflite"))
        rng = np.random.default_rng(0)
        shape = graph.tensors[graph.inputs[0]].shape
        data = CalibrationData(
            tuple(rng.standard_normal(shape).astype(np.float32) for _ in range(6)), "random"
        )
        for prec in ("w8a8", "w8a16"):
            q = quantize_graph(graph, parse_precision(prec), data).graph
            snr = _snr_db(graph, q, data)
            print(f"\n{name} (TFLite float) {prec}: output SNR {snr:.1f} dB")
            assert snr >= SNR_MIN[prec]
