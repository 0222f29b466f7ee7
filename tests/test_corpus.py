"""The model corpus of issue 14: 29 random-weight networks of the families people deploy, as
their frameworks write them (tests/corpus_models.py), each through every stage accelsim has,
against oracles nobody here wrote.

- ONNX (PyTorch / Hugging Face transformers exports, zoo exports): imports; the float model
  agrees with ONNX Runtime to 1e-4 relative; ONNX Runtime's own quantizer's QDQ model (U8S8 /
  S8S8, per-channel / per-tensor, one configuration per model in turn) meets test_onnx.py's
  rule for networks against ONNX Runtime.
- TFLite (Keras, converted with a representative data set): the int8 and 16x8 models are
  bit-exact with TFLite's reference kernels (BUILTIN_REF, `experimental_preserve_all_tensors`)
  on the outputs and on every intermediate tensor. (Float TFLite models are test_tflite.py's:
  a conversion costs seconds, and the corpus keeps to the quantized ones.)
- every float (ONNX) model quantizes at w8a8 and at w8a16 with accelsim's PTQ and runs;
- every model simulates (analytic) on a CPU, an HVX DSP and the accelerator: a float model at
  w8a8 and w8a16, a TFLite integer model as stored.

Each test prints one line per model; `python tests/test_corpus.py` is not needed: run pytest
with `-s` to read the table.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")
quantization = pytest.importorskip("onnxruntime.quantization")
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
tf = pytest.importorskip("tensorflow")

import corpus_models as C  # noqa: E402  (tests/ helpers)
import test_onnx as T  # noqa: E402
import test_tflite as TT  # noqa: E402
import tflite_models as M  # noqa: E402
from test_verify_models import _ARCH  # noqa: E402

import accelsim  # noqa: E402
from accelsim.model import zoo  # noqa: E402
from accelsim.model.graph import Graph  # noqa: E402
from accelsim.model.io import dequantize_output, random_inputs  # noqa: E402
from accelsim.model.onnx_export import export_onnx  # noqa: E402
from accelsim.model.onnx_import import load_onnx  # noqa: E402
from accelsim.model.quantization import graph_precision  # noqa: E402
from accelsim.model.tflite_import import load_tflite  # noqa: E402
from accelsim.quant.ptq import CalibrationData  # noqa: E402
from accelsim.quant.transforms import prepare_for_quantization  # noqa: E402
from accelsim.ref.executor import run  # noqa: E402

ONNX = [n for n, e in C.CORPUS.items() if e.fmt == "onnx"]
TFLITE = [n for n, e in C.CORPUS.items() if e.fmt == "tflite"]
TFLITE_CASES = [(n, m) for n in TFLITE for m in C.CORPUS[n].modes]
TARGETS = ("cortex-a76", "hvx-v68", "simd-accel")  # a CPU, a DSP, the accelerator
ZOO_SIZE = {"mobilenet_v3_small": 32, "mobilenet_v3_large": 32, "efficientnet_b0": 32}
SEED = 1234


def test_corpus_size_and_families():
    assert len(C.CORPUS) >= 25
    assert len(ONNX) >= 10 and len(TFLITE) >= 10
    families = {e.family.split(" ")[0] for e in C.CORPUS.values()}
    for f in ("MobileNetV2", "MobileNetV3-Small", "MobileNetV3-Large", "EfficientNet-B0",
              "EfficientNet-lite", "ShuffleNetV2", "ResNet-18", "SqueezeNet", "DenseNet",
              "MobileNet", "dilated", "BERT", "DistilBERT", "ViT", "MobileViT-XXS", "DeiT",
              "attention", "UNet", "ESPCN"):  # fmt: skip
        assert f in families, f


# ---------------------------------------------------------------------------------------------
# Building the models once per session
# ---------------------------------------------------------------------------------------------


class _Corpus:
    """The corpus's model files, built once for the whole run: the xdist workers share the
    directory (as they share the kernel cache), a file lock per model keeps a second worker
    from converting it again (a Keras-to-TFLite conversion takes up to 20 s), and a file
    appears only whole (written aside, then renamed)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.onnx: dict[str, tuple[Path, dict[str, tuple[int, ...]]]] = {}
        self.tflite: dict[tuple[str, str], Path] = {}

    def _shared(self, fname: str, build) -> Path:
        import fcntl
        import os

        path = self.root / fname
        if not path.exists():
            with open(self.root / f"{fname}.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                if not path.exists():
                    part = self.root / f"{fname}.partial"
                    part.write_bytes(build())
                    os.replace(part, path)
        return path

    def onnx_file(self, name: str) -> tuple[Path, dict[str, tuple[int, ...]]]:
        if name not in self.onnx:
            e = C.CORPUS[name]

            def build() -> bytes:
                if isinstance(e.make, str):  # a zoo model, written by accelsim's ONNX export
                    g = zoo.build(e.make, seed=3, input_size=ZOO_SIZE[e.make])
                    tmp = self.root / f"{name}.export.onnx"
                    export_onnx(g, tmp)
                    blob = tmp.read_bytes()
                    tmp.unlink()
                    return blob
                return C.export_torch(e.make)[0]

            path = self._shared(f"{name}.onnx", build)
            g = load_onnx(path)
            self.onnx[name] = (path, {i: g.tensors[i].shape for i in g.inputs})
        return self.onnx[name]

    def tflite_file(self, name: str, mode: str) -> Path:
        key = (name, mode)
        if key not in self.tflite:

            def build() -> bytes:
                tf.keras.utils.set_random_seed(SEED)
                model = C.CORPUS[name].make()
                M.randomize(model, SEED + 1)
                tmp = M.convert(model, mode, self.root / f"{name}_{mode}.convert.tflite", SEED)
                blob = tmp.read_bytes()
                tmp.unlink()
                return blob

            self.tflite[key] = self._shared(f"{name}_{mode}.tflite", build)
        return self.tflite[key]

    def float_graph(self, name: str) -> Graph:
        return load_onnx(self.onnx_file(name)[0])


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> _Corpus:
    import os

    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "corpus-models"
    root.mkdir(exist_ok=True)
    return _Corpus(root)


def _feeds(graph: Graph, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {i: C.sample(i, graph.tensors[i].shape, rng) for i in graph.inputs}


# ---------------------------------------------------------------------------------------------
# ONNX: float against ONNX Runtime, ONNX Runtime's QDQ models against ONNX Runtime
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ONNX)
def test_onnx_float_matches_onnxruntime(corpus, name):
    path, _ = corpus.onnx_file(name)
    graph = load_onnx(path)
    session = T.ort_session(path)
    rng = np.random.default_rng(5)
    worst = 0.0
    for _ in range(2):
        feeds = _feeds(graph, rng)
        ours = run(graph, feeds)
        for out, want in zip(graph.outputs, session.run(None, feeds)):
            assert ours[out].shape == want.shape
            rel = np.abs(ours[out].astype(np.float64) - want) / max(np.abs(want).max(), 1e-12)
            worst = max(worst, float(rel.max()))
    print(f"\n{name}: {len(graph.nodes)} nodes, float vs ONNX Runtime max relative {worst:.1e}")
    assert worst < 1e-4


QDQ_CONFIGS = C.QDQ_CONFIGS

# ONNX Runtime disagrees with itself here; accelsim follows its unfused (DISABLE_ALL) kernels,
# which agree with PyTorch: the fused QLinearAveragePool of ENABLE_ALL divides a ceil-mode
# window hanging past an unpadded input by the whole kernel (HF EfficientNet's pooler:
# AvgPool2d(1280, ceil_mode=True) on the last map), float AveragePool by the taps inside.
ORT_FUSED_DIFFERS = {"hf_efficientnet_b0"}


def _ort_qdq(corpus, name: str, tmp_path: Path, monkeypatch) -> tuple[Path, str, bool]:
    """The corpus model quantized by ONNX Runtime's `quantize_static` in the configuration
    the corpus gives it: (file, activation type, per-channel weights)."""
    act, per_channel = C.qdq_config(name)
    path, inputs = corpus.onnx_file(name)
    monkeypatch.chdir(tmp_path)  # its shape inference may leave temporary files in the cwd
    return C.ort_quantize(path, inputs, tmp_path, act, per_channel), act, per_channel


@pytest.mark.parametrize("name", ONNX)
def test_onnx_runtime_qdq_matches_onnxruntime(corpus, tmp_path, monkeypatch, name):
    """ONNX Runtime's `quantize_static` (the configurations in turn over the corpus): within
    test_onnx.py's rule for whole networks, bit-exact where that rule asks for it; and as
    stored it lowers on every target kind (every MAC, >= 95 % of the layers)."""
    qpath, act, per_channel = _ort_qdq(corpus, name, tmp_path, monkeypatch)
    graph, counts = T.compare_with_ort(qpath, act, n_runs=1, make_feeds=_feeds)
    assert graph.is_quantized
    # it lowers as stored: every MAC and >= 95 % of the layers on every target kind
    for t in TARGETS:
        (run,) = accelsim.simulate(graph, t, None, fidelity="analytic").runs
        cov = run.coverage
        assert cov.mac_share == 1.0 and cov.layer_share >= 0.95, (t, cov.text())
    case = f"{name}[{act},{'pc' if per_channel else 'pt'}]"
    if name in ORT_FUSED_DIFFERS:
        print(f"\n{case}: {counts}")
        assert counts["DISABLE_ALL"][1] == 0, counts
        return
    T.check_counts(case, counts, act, network=True)


# ---------------------------------------------------------------------------------------------
# TFLite: int8 / 16x8 bit-exact with the reference kernels
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,mode", TFLITE_CASES, ids=[f"{n}-{m}" for n, m in TFLITE_CASES])
def test_tflite_quantized_bit_exact_on_every_tensor(corpus, name, mode):
    path = corpus.tflite_file(name, mode)
    graph = load_tflite(path)
    assert graph.is_quantized
    compared, differing, notes = TT.compare(path, n_inputs=2)
    TT._report(f"{name}/{mode}", compared, differing, notes)
    assert compared > 0
    assert differing == 0, notes


# ---------------------------------------------------------------------------------------------
# accelsim's quantizer and the cost models on every model
# ---------------------------------------------------------------------------------------------


def _calibration(graph: Graph, n: int, seed: int) -> CalibrationData:
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(n):
        feeds = _feeds(graph, rng)
        xs = tuple(feeds[i] for i in graph.inputs)
        samples.append(xs[0] if len(xs) == 1 else xs)
    return CalibrationData(tuple(samples), "corpus samples (seeded)", is_random=True)


def _snr_db(graph: Graph, q: Graph, data: CalibrationData) -> float:
    """Output SNR of the quantized graph (dequantized) against the float one; a classifier's
    logits rather than its softmax, whose 8-bit output (TFLite's fixed 1/256 steps) is all
    zeros for a near-uniform distribution over 1000 classes."""
    names = [
        graph.producer(o).inputs[0] if graph.producer(o).op == "softmax" else o
        for o in graph.outputs
    ]
    num = den = 0.0
    for x in data.samples:
        feeds = list(x) if isinstance(x, tuple) else [x]
        a, b = run(graph, feeds, keep=True), run(q, feeds, keep=True)
        for t in names:
            got = b[t] if q.tensors[t].is_float else dequantize_output(q, t, b[t])
            num += float((a[t].astype(np.float64) ** 2).sum())
            den += float(((a[t].astype(np.float64) - got) ** 2).sum())
    return 10 * math.log10(num / max(den, 1e-30))


@pytest.mark.parametrize("name", ONNX)
def test_float_model_quantizes_at_w8a8_and_w8a16(corpus, name):
    graph = corpus.float_graph(name)
    assert not graph.is_quantized
    line = []
    for prec in ("w8a8", "w8a16"):
        q = accelsim.quantize(graph, prec, data=_calibration(graph, 4, 0))
        assert q.graph.is_quantized
        linear = [n for n in q.graph.nodes if n.op in ("conv2d", "dense", "matmul")]
        assert linear and all(q.graph.tensors[n.outputs[0]].is_quantized for n in linear)
        snr = _snr_db(graph, q.graph, _calibration(graph, 2, 1))
        line.append(f"{prec} SNR {snr:.1f} dB")
        # random weights quantize worse than trained ones (Hugging Face's 0.02-std init leaves
        # DeiT's per-token layer-norm inputs near one quantization step: about 2 dB at w8a8):
        # this catches a broken quantization (more noise than signal, as the ceil-mode average
        # pool of HF's EfficientNet gave: -5.5 dB), it does not measure accuracy
        assert snr > 0.0, (name, prec, snr)
    print(f"\n{name}: " + ", ".join(line))


@pytest.mark.parametrize("name", list(C.CORPUS))
def test_simulates_on_every_target_kind(corpus, name):
    """w8a8 on every target; w8a16 (and a 16x8 TFLite model) where the target file lists the
    precision (`accelsim targets`): a target that lacks it refuses it with a one-line error,
    which test_targets.py checks."""
    entry = C.CORPUS[name]
    if entry.fmt == "onnx":  # the float model at both precisions
        models: list[tuple[Graph, list[str] | None]] = [
            (corpus.float_graph(name), ["w8a8", "w8a16"])
        ]
    else:  # the converter's integer models, as stored
        models = [(load_tflite(corpus.tflite_file(name, m)), None) for m in entry.modes]
    line, w8a8 = [], set()
    for g, precisions in models:
        stored = None if precisions is not None else graph_precision(g).name
        for t in TARGETS:
            offered = set(accelsim.target(t).precisions())
            wanted = [p for p in precisions or [stored] if p in offered]
            if not wanted:
                line.append(f"{t}/{stored}: not offered")
                continue
            sim = accelsim.simulate(g, t, None if stored else wanted, fidelity="analytic")
            # the MACs of the graph that runs: a float model's batch norm with no conv to fold
            # into becomes a depthwise 1x1 conv when quantized (DenseNet), whose multiply-adds
            # count; everything else is the model's own count
            macs = g.macs() if stored else prepare_for_quantization(g).macs()
            for r in sim.runs:
                assert r.total_cycles > 0 and r.total_energy_j > 0, (t, r.precision)
                assert r.macs == macs
                # lowered: every MAC and >= 95 % of the layers (on the accelerator, its
                # programs and its host core's kernels)
                cov = r.coverage
                assert cov.mac_share == 1.0 and cov.layer_share >= 0.95, (t, cov.text())
                if r.precision.name == "w8a8":
                    w8a8.add(t)
                line.append(f"{t}/{r.precision.name} {r.total_latency_s * 1e6:.0f} us")
    print(f"\n{name}: " + "; ".join(line))
    if entry.fmt == "onnx" or "int8" in entry.modes:
        assert w8a8 == set(TARGETS)


# ---------------------------------------------------------------------------------------------
# Whole-model verification of the generated code
# ---------------------------------------------------------------------------------------------

# EfficientNet, BERT and ViT in both formats, MobileNetV3 and the other mobile families: the
# float ONNX exports at w8a8 through accelsim's quantizer, the TFLite converter's int8 models as
# stored. Left out for the suite's time: MobileNetV2 (test_verify_models.py and test_stored.py
# verify it from the zoo and from the TFLite converter), the Keras MobileNetV3-Small (its
# ops are the ONNX one's; 84 s on the two targets), and ShuffleNetV2 / SqueezeNet, which
# QDQ_VERIFY below verifies on the same targets as ONNX Runtime quantized them
VERIFY = (
    "hf_efficientnet_b0",
    "hf_bert_tiny",
    "hf_vit_tiny",
    "zoo_mobilenet_v3_small",
    "keras_efficientnet_lite",
    "keras_tiny_bert",
    "keras_tiny_vit",
    "keras_dilated",
)
VERIFY_TARGETS = ("cortex-a76", "hvx-v68")  # qemu-aarch64, qemu-hexagon


def test_verify_set_covers_the_issue_families():
    """At least 10 corpus models verified whole on both targets (this set and the ORT QDQ
    set), MobileNetV3, EfficientNet-B0, a BERT and a ViT among them."""
    families = {C.CORPUS[n].family.split(" ")[0] for n in VERIFY}
    assert len(set(VERIFY) | set(QDQ_VERIFY)) >= 10
    assert {"MobileNetV3-Small", "EfficientNet-B0", "BERT", "ViT"} <= families


@pytest.mark.usefixtures("kernel_cache")
@pytest.mark.parametrize("target", VERIFY_TARGETS)
@pytest.mark.parametrize("name", VERIFY)
def test_verify_reports_zero_mismatches(corpus, name, target, tmp_path, capsys):
    """`accelsim verify`: every generated kernel runs under qemu and is compared element by
    element with the reference executor's tensor for its layer."""
    import json

    from accelsim import cli
    from accelsim.core.target import load_target
    from accelsim.kernels import emulate

    arch = _ARCH[load_target(target).codegen.emulator.kind]
    missing = emulate.missing_tools(arch)
    if missing:
        pytest.skip(f"no {arch} toolchain: {', '.join(missing)}")
    entry = C.CORPUS[name]
    if entry.fmt == "onnx":
        argv = [str(corpus.onnx_file(name)[0]), "--precision", "w8a8"]
    else:
        argv = [str(corpus.tflite_file(name, "int8"))]
    out = tmp_path / "verify.json"
    rc = cli.main(["verify", *argv, "--target", target, "--json", str(out)])
    result = json.loads(out.read_text())
    bad = {x["name"]: x["mismatches"] for x in result["layers"] if x["mismatches"]}
    assert rc == 0 and result["mismatches"] == 0, bad
    # the linear layers (all the MACs) were among the layers run
    ran = {x["op"] for x in result["layers"]}
    assert ran & {"conv2d", "dense", "matmul"}, ran
    assert result["elements"] > 1_000
    print(f"\n{name} on {target}: " + capsys.readouterr().out.strip().splitlines()[-1])


# The mobile CNNs on the accelerator: activations by table (VLUT), squeeze-and-excitation
# multiplies (VMUL, broadcast per channel) and global average pools (depthwise convs of unit
# weights) run on it, so at least 95 % of the layers and every MAC do; its simulator executes
# every program on the reference's inputs
ACCEL_VERIFY = ("hf_efficientnet_b0", "zoo_mobilenet_v3_large", "hf_mobilenet_v2")


@pytest.mark.parametrize("name", ACCEL_VERIFY)
def test_accelerator_runs_the_mobile_cnns(corpus, name, tmp_path):
    import json

    from accelsim import cli

    path = str(corpus.onnx_file(name)[0])
    out = tmp_path / "verify.json"
    rc = cli.main(
        ["verify", path, "--target", "simd-accel", "--precision", "w8a8", "--json", str(out)]
    )
    result = json.loads(out.read_text())
    assert rc == 0 and result["mismatches"] == 0
    ran = {x["op"] for x in result["layers"]}
    assert {"conv2d", "global_avg_pool"} <= ran, ran
    if name != "hf_mobilenet_v2":  # the gated activations and SE blocks
        assert "mul" in ran and ran & {"sigmoid", "hard_swish"}, ran
    run = accelsim.simulate(corpus.float_graph(name), "simd-accel", ["w8a8"], fidelity="analytic")
    cov = run.runs[0].coverage
    # every MAC on the accelerator itself, and >= 95 % of the layers there or on its host core
    assert cov.mac_share == 1.0 and cov.macs_host == 0 and cov.layer_share >= 0.95, cov.text()
    place = dict(cov.by_place)
    assert place["lowered kernel"] >= 0.9 * cov.layers, cov.text()


@pytest.mark.parametrize("name", ["hf_bert_tiny", "torch_shufflenet_v2"])
def test_accelerator_runs_transposes_as_dma_programs(corpus, name):
    """Attention's head transposes (4-D, stored NHWC-permuted on the accelerator) and
    ShuffleNet's channel shuffle (5-D) are DMA programs: a tile loaded into the act
    scratchpad, the store engine writing the output in its order; bit-exact."""
    from accelsim.accel import isa, load_config, sim

    q = accelsim.api.prepared(corpus.float_graph(name), "simd-accel", "w8a8")[0]
    cfg = load_config("simd-accel")
    moves = [n for n in q.nodes if n.op == "transpose"]
    assert moves
    for n in moves:
        prog = sim.compile_node(q, n, cfg).program
        assert prog is not None, n.name
        assert {type(i) for i in prog.instructions} <= {isa.Load, isa.Store, isa.Signal, isa.Wait}
    rng = np.random.default_rng(0)
    feeds = [C.sample(i, q.tensors[i].shape, rng) for i in q.inputs]
    results = sim.verify_layers(q, cfg, feeds)
    checked = {r.layer: r for r in results}
    assert {n.name for n in moves} <= set(checked)
    assert not [r for r in results if r.mismatches]


def test_accelerator_runs_tflite_fully_connected_at_its_double_requantization(corpus, tmp_path):
    """The converter's FULLY_CONNECTED layers requantize as round(double(acc) * scale) in
    TFLite's reference kernel; the accelerator's REQUANT f64 does the same (verify executes
    every program), so their MACs run on it rather than on the host core."""
    import json

    from accelsim import cli

    path = str(corpus.tflite_file("keras_tiny_vit", "int8"))
    out = tmp_path / "verify.json"
    rc = cli.main(["verify", path, "--target", "simd-accel", "--json", str(out)])
    result = json.loads(out.read_text())
    assert rc == 0 and result["mismatches"] == 0
    dense = [x for x in result["layers"] if x["op"] == "dense"]
    assert len(dense) >= 6 and all(x["elements"] > 0 for x in dense)
    # and the layer norms' SUB and their per-row multiplies (a column broadcast along the
    # features), the class token's slice and the heads' transposes
    assert {"sub", "mul", "slice", "transpose"} <= {x["op"] for x in result["layers"]}
    run = accelsim.simulate(load_tflite(path), "simd-accel", None, fidelity="analytic")
    # all but the attention's activation x activation matmuls (host core kernels)
    cov = run.runs[0].coverage
    assert cov.mac_share == 1.0 and (cov.macs - cov.macs_host) / cov.macs > 0.9, cov.text()


# ONNX Runtime's own QDQ models (requantized as its MLAS kernels do, in float32): two CNNs
# (convolutions, depthwise, max and global average pools; u8 per-channel, s8 per-channel), a
# transformer (dense layers and activation x activation matmuls, layer norms, softmax, GELU;
# u8 per-tensor), a UNet (a linear resize ORT runs in float; s8 per-tensor) and a DenseNet
# (float batch norms after concats, QLinearAveragePool, a float ReduceMean; u8 per-tensor)
QDQ_VERIFY = (
    "torch_shufflenet_v2",
    "torch_squeezenet",
    "hf_deit_tiny",
    "torch_unet",
    "torch_densenet",
)


@pytest.mark.usefixtures("kernel_cache")
@pytest.mark.parametrize("target", VERIFY_TARGETS)
@pytest.mark.parametrize("name", QDQ_VERIFY)
def test_onnx_runtime_qdq_model_verifies_with_every_mac_lowered(
    corpus, name, target, tmp_path, monkeypatch
):
    """An ONNX Runtime-quantized model as stored: every convolution, dense layer and matmul
    gets a kernel (100 % of the MACs), and `verify` finds 0 mismatches against the reference
    executor's ONNX Runtime arithmetic (accelsim.ref.qdq_ops, itself checked against ONNX
    Runtime by test_onnx_runtime_qdq_matches_onnxruntime)."""
    from accelsim.core.target import load_target
    from accelsim.kernels import emulate

    arch = _ARCH[load_target(target).codegen.emulator.kind]
    missing = emulate.missing_tools(arch)
    if missing:
        pytest.skip(f"no {arch} toolchain: {', '.join(missing)}")
    qpath, act, per_channel = _ort_qdq(corpus, name, tmp_path, monkeypatch)
    graph = load_onnx(qpath)
    assert graph.requant_mode == "float"
    checked = accelsim.verify(str(qpath), target)
    ran = {c.name for c in checked.layers}
    macs = [n.name for n in graph.nodes if n.op in ("conv2d", "dense", "matmul")]
    assert macs and set(macs) <= ran, sorted(set(macs) - ran)
    # and the adds and muls ONNX Runtime computes as QLinearAdd / QLinearMul
    qlinear = [n.name for n in graph.nodes if _is_qlinear(graph, n)]
    assert set(qlinear) <= ran, sorted(set(qlinear) - ran)
    # and the concats (QLinearConcat: inputs quantized otherwise through its DequantizeLinear
    # -> QuantizeLinear table; SqueezeNet's fire modules)
    copies = [n.name for n in graph.nodes if n.op == "concat"]
    if name == "torch_squeezenet":
        assert copies
    assert set(copies) <= ran, sorted(set(copies) - ran)
    # and what ORT runs in float or as its own integer kernels around them: layer norms,
    # linear resizes, means (DequantizeLinear -> float -> QuantizeLinear), QLinearSoftmax,
    # QLinearAveragePool, the GELU's float Div / Erf, float batch norms
    group_ops = ("layer_norm", "softmax", "div", "erf", "resize", "batch_norm", "avg_pool", "mean")
    groups = [n.name for n in graph.nodes if n.op in group_ops]
    if name == "hf_deit_tiny":
        assert {graph.node(g).op for g in groups} == {"layer_norm", "softmax", "div", "erf"}
    if name == "torch_unet":
        assert any(graph.node(g).attr("mode") == "linear" for g in groups)
    if name == "torch_densenet":
        assert {graph.node(g).op for g in groups} == {"batch_norm", "avg_pool", "mean"}
    assert set(groups) <= ran, sorted(set(groups) - ran)
    bad = {c.name: c.mismatches for c in checked.layers if c.mismatches}
    assert checked.ok and not bad, bad
    (run,) = accelsim.simulate(graph, target, None, fidelity="analytic").runs
    assert run.coverage.mac_share == 1.0 and run.coverage.layer_share >= 0.95, run.coverage.text()
    print(
        f"\n{name}[{act},{'pc' if per_channel else 'pt'}] on {target}: {len(checked.layers)} "
        f"kernels, {checked.elements} elements, 0 differ"
    )


@pytest.mark.parametrize(
    "name", ["torch_shufflenet_v2", "torch_squeezenet", "zoo_mobilenet_v3_small"]
)
def test_onnx_runtime_qdq_model_runs_its_macs_on_the_accelerator(
    corpus, name, tmp_path, monkeypatch
):
    """ONNX Runtime's requantization (float32(acc) * scale, half to even) is the accelerator's
    REQUANT fscale=float32: every convolution of an ORT-quantized model runs on it (u8
    per-channel, s8 per-channel), and its simulator's outputs equal the reference's."""
    qpath, act, per_channel = _ort_qdq(corpus, name, tmp_path, monkeypatch)
    graph = load_onnx(qpath)
    checked = accelsim.verify(str(qpath), "simd-accel")
    ran = {c.name for c in checked.layers}
    convs = [n.name for n in graph.nodes if n.op in ("conv2d", "dense")]
    assert convs and set(convs) <= ran, sorted(set(convs) - ran)
    # QLinearAdd / QLinearMul (VADDF / VMULF) and QLinearGlobalAveragePool (a depthwise conv
    # of unit weights with REQUANT fscale=float32)
    qlinear = [n.name for n in graph.nodes if _is_qlinear(graph, n)]
    pools = [n.name for n in graph.nodes if n.op == "global_avg_pool"]
    if name == "zoo_mobilenet_v3_small":
        assert qlinear and pools
    assert set(qlinear + pools) <= ran, sorted(set(qlinear + pools) - ran)
    bad = {c.name: c.mismatches for c in checked.layers if c.mismatches}
    assert checked.ok and not bad, bad
    run = accelsim.simulate(graph, "simd-accel", None, fidelity="analytic")
    cov = run.runs[0].coverage
    assert cov.mac_share == 1.0 and cov.macs_host == 0, cov.text()


@pytest.mark.usefixtures("kernel_cache")
def test_accelerator_host_core_runs_the_rest_as_cortex_a55_kernels(corpus, tmp_path, monkeypatch):
    """A transformer on simd-accel: the accelerator runs the dense layers, adds and muls; its
    host core (accelerator.host.target: cortex-a55) runs the layer norms, QLinearSoftmax,
    activation x activation matmuls and GELU's float ops as cortex-a55 kernels, verified under
    qemu-aarch64 (0 mismatches), and costed by cortex-a55's analytic model: every layer is
    lowered, and the coverage line says which share ran on the host."""
    from accelsim.kernels import emulate

    if emulate.missing_tools("aarch64"):
        pytest.skip("no aarch64 toolchain")
    qpath, _, _ = _ort_qdq(corpus, "hf_deit_tiny", tmp_path, monkeypatch)
    graph = load_onnx(qpath)
    (run,) = accelsim.simulate(graph, "simd-accel", None, fidelity="analytic").runs
    cov = run.coverage
    assert cov.layer_share == 1.0 and cov.mac_share == 1.0, cov.text()
    host = {c.name: c for c in run.layers if c.ran == "host kernel"}
    host_ops = {c.op for c in host.values()}
    assert {"layer_norm", "softmax", "matmul", "erf"} <= host_ops, host_ops
    assert all("cortex-a55" in c.notes for c in host.values())
    assert 0 < cov.macs_host < 0.2 * cov.macs and "host-core kernels" in cov.text()
    checked = accelsim.verify(graph, "simd-accel")
    assert checked.ok and set(host) <= {c.name for c in checked.layers}


def _is_qlinear(graph: Graph, node) -> bool:
    from accelsim.ref import qdq_ops

    if node.op not in ("add", "mul"):
        return False
    infos = [graph.tensors[t] for t in (*node.inputs, node.outputs[0])]
    return qdq_ops.has_integer_kernel(node, *infos)


class _Broadcasts(torch.nn.Module):
    """Adds and muls of every broadcast shape ONNX Runtime's QLinearAdd / QLinearMul loops
    treat apart: same shape, a per-channel operand, a scalar constant on either side."""

    def forward(self, x, s):
        a = x + s  # (1, 8, 4, 4) + (1, 8, 1, 1)
        b = a * s
        c = 0.75 + (b + x)
        return c * 1.25, s + 0.5


@pytest.mark.usefixtures("kernel_cache")
@pytest.mark.parametrize("target", ["host", "simd-accel"])
@pytest.mark.parametrize("act", ["u8", "s8"])
def test_onnx_runtime_qlinear_add_and_mul_kernels_match_the_reference(tmp_path, act, target):
    """QLinearAdd / QLinearMul as generated kernels (on this machine, through the TVM
    runtime; on the accelerator, VADDF / VMULF programs in its simulator, constant and
    broadcast operands read with stride 0) against the reference executor's ONNX Runtime
    arithmetic, which
    test_onnx_ops.py checks against ONNX Runtime itself. (The order in which ORT's loop over a
    scalar operand adds the products changes a result about 8 times in a million elements:
    too rare to show at this size; the kernel follows the reference's order.)"""
    path = tmp_path / "bc.onnx"
    x, s = torch.randn(1, 8, 4, 4), torch.randn(1, 8, 1, 1)
    torch.onnx.export(
        _Broadcasts(), (x, s), str(path), opset_version=17, dynamo=False, input_names=["x", "s"]
    )
    qt = quantization.QuantType
    qpath = tmp_path / "qdq.onnx"
    quantization.quantize_static(
        str(path),
        str(qpath),
        C.calibration_reader({"x": (1, 8, 4, 4), "s": (1, 8, 1, 1)}, 8, 0),
        quant_format=quantization.QuantFormat.QDQ,
        activation_type=qt.QUInt8 if act == "u8" else qt.QInt8,
        weight_type=qt.QInt8,
    )
    graph = load_onnx(qpath)
    qlinear = [n.name for n in graph.nodes if _is_qlinear(graph, n)]
    assert len(qlinear) >= 5, [(n.op, n.name) for n in graph.nodes]
    checked = accelsim.verify(str(qpath), target)
    assert set(qlinear) <= {c.name for c in checked.layers}
    assert checked.ok, [(c.name, c.mismatches) for c in checked.layers if c.mismatches]


# ---------------------------------------------------------------------------------------------
# Reference-executor fixes the corpus found
# ---------------------------------------------------------------------------------------------


def test_ceil_mode_average_pool_counts_only_the_padded_input(tmp_path):
    """Hugging Face's EfficientNet pools with AvgPool2d(1280, ceil_mode=True) over its last
    map: PyTorch and ONNX Runtime divide by the taps inside the input and its explicit padding,
    not by the kernel size (here a 6x6 map, kernel 3, stride 2, padding 1: the last window
    hangs one tap past the padding)."""
    pool = torch.nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=True)
    x = torch.rand(1, 3, 6, 6) + 0.5  # positive: a zero point far from 0 in int8
    path = tmp_path / "pool.onnx"
    torch.onnx.export(pool, (x,), str(path), opset_version=17, dynamo=False)
    graph = load_onnx(path)
    want = pool(x).numpy()
    got = run(graph, [x.numpy()])[graph.outputs[0]]
    session = T.ort_session(path)
    theirs = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    np.testing.assert_allclose(theirs, want, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    # and in integers (TFLite-style kernels, accelsim's PTQ): within a step of the float value
    data = CalibrationData((x.numpy(),), "the test input")
    q = accelsim.quantize(graph, "w8a8", data=data).graph
    out = q.outputs[0]
    got_q = dequantize_output(q, out, run(q, [x.numpy()])[out])
    pool_node = next(n for n in q.nodes if n.op == "avg_pool")
    step_in = q.tensors[pool_node.inputs[0]].quant.scale[0]
    step_out = q.tensors[pool_node.outputs[0]].quant.scale[0]
    # input rounding (at most half a step, averaged) plus output rounding; dividing by the
    # kernel size or counting the overhang as zeros would be off by a third of the values
    assert np.abs(got_q - want).max() <= 0.5 * step_in + step_out


@pytest.mark.parametrize("include_pad", [True, False])
@pytest.mark.parametrize("precision", ["w8a8", "fp32"])
def test_ceil_mode_average_pool_kernel_matches_the_reference(tmp_path, precision, include_pad):
    """The generated kernel counts the same taps (HF EfficientNet's pooler made the kernel
    divide by the kernel size: 316 elements differed): 6x6 map, kernel 3, stride 2, padding 1,
    last window past the padding; run on this machine through the TVM runtime."""
    pool = torch.nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=include_pad)
    path = tmp_path / "pool.onnx"
    torch.onnx.export(pool, (torch.rand(1, 8, 6, 6),), str(path), opset_version=17, dynamo=False)
    checked = accelsim.verify(str(path), "host", precision)
    assert "avg_pool" in {c.op for c in checked.layers}
    assert checked.ok and checked.elements > 0, [(c.name, c.mismatches) for c in checked.layers]


def _verify_module(tmp_path: Path, module, inputs, target: str, precision: str, names=None):
    """`accelsim verify` of a small PyTorch module exported to ONNX (skipped where the
    target's emulator toolchain is missing)."""
    from accelsim.core.target import load_target
    from accelsim.kernels import emulate

    arch = _ARCH.get(load_target(target).codegen.emulator.kind)
    if arch and emulate.missing_tools(arch):
        pytest.skip(f"no {arch} toolchain")
    torch.manual_seed(0)
    path = tmp_path / "module.onnx"
    torch.onnx.export(
        module.eval(), inputs, str(path), opset_version=17, dynamo=False, input_names=names
    )
    return accelsim.verify(str(path), target, precision)


class _Means(torch.nn.Module):
    """A mean over the last axis (layer norm's, decomposed) and one over the tokens."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(32, 32)

    def forward(self, x):
        y = self.fc(x)
        return torch.cat([y - y.mean(-1, keepdim=True), y.mean(1, keepdim=True)], 1)


@pytest.mark.usefixtures("kernel_cache")
@pytest.mark.parametrize(
    "target,precision",
    [("host", "fp32"), ("host", "w8a8"), ("cortex-a76", "w8a16"), ("hvx-v68", "w8a8")],
)
def test_mean_over_any_contiguous_axes_lowers_bit_exact(tmp_path, target, precision):
    """Means over non-spatial axes (transformers' layer norms, token pooling) run as generated
    kernels: the window of the global-pool kernel over the tensor viewed as (O, K, 1, I)."""
    torch.manual_seed(0)
    checked = _verify_module(tmp_path, _Means(), (torch.randn(1, 8, 32),), target, precision)
    means = [c for c in checked.layers if c.op == "mean"]
    assert len(means) == 2, [c.op for c in checked.layers]
    assert checked.ok and checked.elements > 0, [(c.name, c.mismatches) for c in checked.layers]


class _Norms(torch.nn.Module):
    """Layer norms with and without the affine part, on rows with a large mean (a one-pass
    variance, E[x^2] - E[x]^2, loses its digits there)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(32, 32)
        self.ln = torch.nn.LayerNorm(32)
        self.plain = torch.nn.LayerNorm(32, elementwise_affine=False)
        with torch.no_grad():
            self.ln.weight.uniform_(0.5, 1.5)
            self.ln.bias.normal_(0.0, 0.5)

    def forward(self, x):
        return self.plain(self.ln(x + 40.0) + self.fc(x))


@pytest.mark.usefixtures("kernel_cache")
@pytest.mark.parametrize(
    "target,precision", [("host", "fp32"), ("cortex-a76", "w8a8"), ("hvx-v68", "w8a8")]
)
def test_layer_norm_lowers_within_float32_rounding(tmp_path, target, precision):
    """Layer norms run as generated float32 kernels (in quantized graphs too, where they stay
    float between a dequantize and a quantize), within verify's float32 tolerance of the
    float64 reference; on Hexagon with the runtime's square root."""
    torch.manual_seed(0)
    checked = _verify_module(tmp_path, _Norms(), (torch.randn(1, 8, 32),), target, precision)
    norms = [c for c in checked.layers if c.op == "layer_norm"]
    assert len(norms) == 2, [c.op for c in checked.layers]
    assert checked.ok and checked.elements > 0, [(c.name, c.mismatches) for c in checked.layers]


class _Softmax(torch.nn.Module):
    def forward(self, x):
        return torch.softmax(x * 2.0, -1)


@pytest.mark.usefixtures("kernel_cache")
def test_float_softmax_without_libm_uses_the_polynomial_exp(tmp_path):
    """The Hexagon targets' freestanding runtime has no expf (`codegen.emulator.libm: false`):
    an fp32 softmax there computes exp with `accelsim.lower.floatmath.exp` (a libm call would
    not link), and verifies; on a core with libm it calls expf."""
    from accelsim.core.precision import parse_precision
    from accelsim.lower.lower import lower_graph

    checked = _verify_module(tmp_path, _Softmax(), (torch.randn(1, 8, 16),), "hvx-v68", "fp32")
    assert checked.ok and "softmax" in {c.op for c in checked.layers}
    graph = load_onnx(tmp_path / "module.onnx")
    for target, calls in (("hvx-v68", False), ("cortex-a76", True)):
        (layer,) = [
            L for L in lower_graph(graph, target, parse_precision("fp32")) if L.op == "softmax"
        ]
        assert layer.status == "kernel"
        assert ("T.exp(" in layer.mod.script()) == calls, target  # tir.exp: LLVM calls expf


class _Masks(torch.nn.Module):
    """A text model's integer side: an embedding looked up by run-time token ids, and an
    attention mask built with cast, comparisons, logical_and and where."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(30, 16)
        self.fc = torch.nn.Linear(16, 16)

    def forward(self, ids, mask):
        x = self.fc(self.emb(ids))
        keep = mask.bool()[:, None, :] & (ids[:, :, None] > 2)
        same = (ids[:, :, None] == ids[:, None, :]) & (ids[:, None, :] >= 5)
        scores = torch.where(keep & same, 0.0, -10000.0)
        return x, scores, (ids < 20).to(torch.int32)


@pytest.mark.usefixtures("kernel_cache")
@pytest.mark.parametrize("target", ["host", "hvx-v68"])
def test_masks_and_run_time_gathers_lower_bit_exact(tmp_path, target):
    """Token-id gathers, casts, comparisons, logical_and and where run as generated kernels
    (BERT's embedding lookup and attention mask), equal to the reference element for element;
    on Hexagon too (integer and select code only)."""
    torch.manual_seed(0)
    ids, mask = torch.randint(0, 30, (1, 8)), torch.ones(1, 8, dtype=torch.int64)
    names = ["input_ids", "attention_mask"]
    checked = _verify_module(tmp_path, _Masks(), (ids, mask), target, "w8a8", names)
    ops = {c.op for c in checked.layers}
    assert {"gather", "cast", "logical_and", "where", "greater", "equal", "less"} <= ops, ops
    assert checked.ok and checked.elements > 0, [(c.name, c.mismatches) for c in checked.layers]


def test_random_inputs_of_a_masked_text_model(corpus):
    graph = corpus.float_graph("hf_bert_tiny")
    ids = random_inputs(graph)[graph.inputs[0]]
    assert ids.min() >= 0 and ids.max() < C.VOCAB
