"""The lowered softmax kernel (accelsim/lower/softmax.py) against TFLite's reference interpreter.

Oracle: a Keras model that is one Softmax over [rows, K], converted by the TFLite converter to
full-integer int8 and int16x8 and run by `tf.lite.Interpreter` with the BUILTIN_REF kernels.
The same .tflite file is imported (`load_tflite`), its softmax node lowered and compiled for
each target and run on it (this machine through the TVM runtime, qemu-aarch64, qemu-hexagon)
on rows chosen to reach every branch of the fixed-point recipe:

- one dominant logit (the other exps underflow past diff_min: the `valid` mask);
- all K equal (8-bit: a sum of exps over 256, the exponent > 31 case that rounds to 0);
- two maxima; a ramp through the whole input range; uniform full-range noise; the barrel
  shifter's every bit (differences 1, 2, 4, ... steps).

Every element must equal TFLite's. A second test covers what TFLite cannot express: an output
quantized otherwise than TFLite's fixed format (accelsim's own PTQ), requantized in the kernel,
against the reference executor (itself checked against TFLite in test_tflite.py).
"""

from __future__ import annotations

import numpy as np
import pytest

from accelsim.core.target import load_target
from accelsim.kernels import emulate
from accelsim.kernels.compile import compile_layer
from accelsim.kernels.verify import RUNNERS
from accelsim.lower.lower import lower_node

ROWS, K = 8, 300
TARGETS = ("host", "cortex-a76", "hvx-v68")
_ARCH = {"qemu-aarch64": "aarch64", "qemu-hexagon": "hexagon"}

pytestmark = pytest.mark.usefixtures("kernel_cache")


def _target_or_skip(name: str):
    t = load_target(name)
    arch = _ARCH.get(t.codegen.emulator.kind)
    missing = emulate.missing_tools(arch) if arch else []
    if missing:
        pytest.skip(f"no {arch} toolchain: {', '.join(missing)}")
    return t


def _run_kernel(graph, node_name: str, values: dict, target):
    layer = lower_node(graph, graph.node(node_name), target)
    assert layer.status == "kernel", layer.reason
    item = (layer, compile_layer(layer, target))
    return np.asarray(RUNNERS[target.codegen.emulator.kind]([item], values, target)[0])


def adversarial_rows(dtype, k: int = K) -> np.ndarray:
    info = np.iinfo(dtype)
    lo, hi = int(info.min), int(info.max)
    rng = np.random.default_rng(7)
    K = k  # noqa: N806
    rows = np.empty((ROWS, K), np.int64)
    rows[0] = lo
    rows[0, 17] = hi  # one dominant logit
    rows[1] = 3  # all equal: sum of exps > 256
    rows[2] = rng.integers(lo, hi // 2, K)
    rows[2, [5, 250]] = hi  # two maxima
    rows[3] = np.linspace(lo, hi, K).round()  # a ramp through the range
    rows[4] = rng.integers(lo, hi, K, endpoint=True)  # full-range noise
    steps = np.array([0] + [1 << b for b in range(info.bits - 2)])
    rows[5] = hi - np.resize(steps, K)  # every bit of the difference
    rows[6] = rng.integers(-4, 5, K)  # small spread: many similar exps
    rows[7] = rng.integers(lo, hi, K, endpoint=True)
    rows[7, : K // 2] = lo  # half the row far below the max
    return rows.astype(dtype)[None]  # [1, ROWS, K]


@pytest.fixture(scope="module")
def softmax_tflite(tmp_path_factory):
    tf = pytest.importorskip("tensorflow")
    import tflite_models as M  # tests/ helper (needs TensorFlow)

    from accelsim.model.tflite_import import load_tflite

    root = tmp_path_factory.mktemp("softmax")
    cache = {}

    def get(mode: str):
        if mode not in cache:
            tf.keras.utils.set_random_seed(3)
            inp = tf.keras.Input((ROWS, K), batch_size=1)
            # scaled so the calibrated input range covers several exp octaves
            model = tf.keras.Model(inp, tf.keras.layers.Softmax()(inp * 6.0))
            path = M.convert(model, mode, root / f"softmax_{mode}.tflite", seed=5)
            cache[mode] = (load_tflite(path), M.interpreter(path, preserve_all_tensors=True))
        return cache[mode]

    return get


@pytest.mark.parametrize("mode,dtype", [("int8", np.int8), ("int16x8", np.int16)])
@pytest.mark.parametrize("target_name", TARGETS)
def test_softmax_kernel_equals_tflite(softmax_tflite, mode, dtype, target_name):
    target = _target_or_skip(target_name)
    graph, it = softmax_tflite(mode)
    node = next(n for n in graph.nodes if n.op == "softmax")
    tmap = graph.metadata["tflite_tensors"]
    by_name = {v: k for k, v in tmap.items()}
    # the softmax's own input, as TFLite computes it from the model input (the x * 6 multiply
    # comes first), so both sides start from the same integers
    x = adversarial_rows(dtype)
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    sm_in = it.get_tensor(by_name[node.inputs[0]])
    want = it.get_tensor(by_name[node.outputs[0]])
    got = _run_kernel(graph, node.name, {node.inputs[0]: sm_in}, target)
    assert got.dtype == want.dtype and got.shape == want.shape
    bad = got != want
    # the rows reach what they are meant to: one winner far above the rest (row 0), equal
    # outputs (row 1)
    r0 = np.sort(want[0, 0].astype(np.int64))
    assert r0[-1] - r0[-2] > 100 * (r0[-2] - r0[0] + 1) and len(np.unique(want[0, 1])) == 1
    print(f"\n{mode} softmax on {target_name}: {want.size} elements, {int(bad.sum())} differ")
    assert not bad.any(), np.argwhere(bad)[:5].tolist()


def _ptq_softmax_graph(precision: str, out_scale: float, out_zp: int):
    """A zoo classifier quantized by accelsim's PTQ, its softmax output re-quantized on a scale
    TFLite would not use (so the kernel must requantize)."""
    from dataclasses import replace

    from accelsim.core.precision import parse_precision
    from accelsim.core.qparams import QuantParams
    from accelsim.model import zoo
    from accelsim.quant import calibdata
    from accelsim.quant.ptq import quantize_graph

    g = zoo.build("mobilenet_v1", input_size=32)
    q = quantize_graph(g, parse_precision(precision), calibdata.random(g, 2)).graph
    node = q.node("softmax")
    out = node.outputs[0]
    tensors = {
        **q.tensors,
        out: replace(q.tensors[out], quant=QuantParams.per_tensor(out_scale, out_zp)),
    }
    return q.replace(tensors=tensors), node


@pytest.mark.parametrize(
    "precision,scale,zp", [("w8a8", 1 / 200.0, -100), ("w16a16", 1 / 30000.0, -12)]
)
def test_softmax_kernel_requantizes_like_the_reference(precision, scale, zp):
    from accelsim.ref.executor import KernelCall, find_kernel

    target = load_target("host")
    q, node = _ptq_softmax_graph(precision, scale, zp)
    x_info, o_info = q.tensors[node.inputs[0]], q.tensors[node.outputs[0]]
    assert lower_node(q, node, target).signature["requant"]
    rows = adversarial_rows(np.int16 if precision == "w16a16" else np.int8, x_info.shape[-1])
    for r in rows[0]:
        x = r[None]
        want = find_kernel("softmax", "gemmlowp")(KernelCall(node, [x], [x_info], [o_info], q))[0]
        got = _run_kernel(q, node.name, {node.inputs[0]: x}, target)
        assert np.array_equal(got.astype(np.int64), want.astype(np.int64))
