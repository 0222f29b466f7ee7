"""QDQ export of quantized graphs (`export_onnx`) against ONNX Runtime, an oracle nobody here
wrote.

Graphs come from our own PTQ (`quantize_graph` on zoo networks, random calibration data), are
written with `export_onnx` and run in ONNX Runtime's CPU provider. Every quantized activation
tensor is compared, not only the outputs: the test graph gets a `dequantize` probe on each of
them (a DequantizeLinear in the file) and the integers are recovered from ORT's float32 values
(`rint(v / scale) + zp`, exact). Differences are counted in LSB (steps of the tensor's scale).

What matches what (x86-64, MLAS; the module docstring of tests/test_onnx.py has the causes):
- ours in ONNX semantics (`requant_mode="float"`, accelsim.ref.qdq_ops) against ORT
  ORT_ENABLE_ALL, which fuses every QDQ group of the exported file into integer kernels
  (uint8 activations: by default; int8: with "session.qdqisint8allowed" = "1"): bit-exact on
  every tensor on x86-64 (without VNNI, whose int16 pair sums saturate, with 7-bit weights:
  tests/ort_platform.py); elsewhere the one-step rule (at most 1 LSB on fewer than 0.1 % of
  the elements).
- ours in TFLite fixed-point semantics (`requant_mode="gemmlowp"`, the graph as PTQ made it)
  against ORT: gemmlowp requantizes with a Q31 multiplier and rounds twice: the rounding
  doubling high multiply keeps only as many fractional bits as the right shift that follows
  (6 to 11 here: the multipliers S_in * S_w / S_out are ~2^-6 to 2^-11), then the
  rounding right shift rounds ties away from zero. ORT multiplies in float32 and rounds once,
  half to even. Both land within a step of the exact value; they part where the exact value is
  within ~2^-(shift+1) of a half step (the first rounding moves it onto or across the tie) or
  on such an exact tie (away from zero against to even): a few per mille of a layer's
  elements, one step each. Asserted per layer (each kernel fed ORT's own integer inputs): at
  most 1 LSB on under 1 % of the elements. End to end the one-step differences feed the
  following layers and grow; those counts are only reported.
- 16-bit and 4-bit graphs (opset 21): ORT has no integer kernels for them on the CPU and runs
  DequantizeLinear -> float32 op -> QuantizeLinear, accumulating in float32 where we accumulate
  exactly in integers: per layer at most 1 LSB on a small fraction of the elements (float32
  error reaching a rounding tie; 16-bit steps are fine enough for that to happen often). With
  int4 activations ORT_ENABLE_ALL cannot even load the file (its QDQ fusion builds a QLinearConv
  on int4 activations, which QLinearConv does not accept): the exact error is asserted, and the
  file runs at ORT_ENABLE_BASIC (no QDQ fusion).
- weight-only graphs: float activations, DequantizeLinear on the weights only: float tolerance.

Run with `-s` to see the counts.
"""

from __future__ import annotations

import functools
from collections import Counter

import numpy as np
import onnx
import pytest
from ort_platform import EXACT_PLATFORM, REDUCE_RANGE, seven_bit_weights

from accelsim.core.errors import ModelError
from accelsim.core.precision import parse_precision
from accelsim.core.qparams import NUMPY_DTYPE, QuantParams
from accelsim.model import zoo
from accelsim.model.builder import GraphBuilder
from accelsim.model.graph import Graph, Node, TensorInfo
from accelsim.model.onnx_export import export_onnx, qdq_opset
from accelsim.model.onnx_import import load_onnx
from accelsim.quant import calibdata
from accelsim.quant.ptq import quantize_graph
from accelsim.ref.executor import KernelCall, domain_of, find_kernel, run

ort = pytest.importorskip("onnxruntime")


def ort_session(path, level="ENABLE_ALL", int8=False, optimized=None):
    so = ort.SessionOptions()
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, f"ORT_{level}")
    so.log_severity_level = 3
    so.intra_op_num_threads = 1
    if int8:
        so.add_session_config_entry("session.qdqisint8allowed", "1")
    if optimized:
        so.optimized_model_filepath = str(optimized)
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def ort_run(session, feeds):
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))


# ---------------------------------------------------------------------------------------------
# graphs, probes, comparisons
# ---------------------------------------------------------------------------------------------

SIZES = {"digits_cnn": 8, "resnet18": 32, "mobilenet_v2": 32}


@functools.cache
def quantized(name: str, precision: str) -> Graph:
    g = zoo.build(name, input_size=SIZES[name])
    q = quantize_graph(g, parse_precision(precision), calibdata.random(g, 4)).graph
    return seven_bit_weights(q)  # on x86 without VNNI (tests/ort_platform.py)


def probed(q: Graph) -> Graph:
    """`q` with a `dequantize` probe (graph output `<t>.probe`) on every quantized activation
    tensor `t`, so that ORT hands back all of them (it cannot return int4 arrays itself), and
    every float intermediate tensor as a graph output too."""
    nodes, tensors, outs = list(q.nodes), dict(q.tensors), []
    for n in q.nodes:
        for t in n.outputs:
            if q.tensors[t].is_quantized:
                p = f"{t}.probe"
                tensors[p] = TensorInfo(p, q.tensors[t].shape, "float32")
                nodes.append(Node(f"{t}.probe_dequantize", "dequantize", (t,), (p,)))
                outs.append(p)
            elif t not in q.outputs and not q.is_constant(n.inputs[0]):  # not weights
                outs.append(t)
    return Graph(
        q.name,
        tuple(nodes),
        tensors,
        q.inputs,
        tuple(outs) + q.outputs,
        q.constants,
        q.requant_mode,
        q.metadata,
    )


def _ints(info: TensorInfo, v: np.ndarray) -> np.ndarray:
    """The integers behind a DequantizeLinear output (float32 (q - zp) * scale): exact."""
    s = np.float32(info.quant.scale[0])
    return np.rint(np.asarray(v, np.float32) / s).astype(np.int64) + info.quant.zero_point[0]


class Counts:
    """Elements compared, elements that differ, largest difference (LSB)."""

    def __init__(self) -> None:
        self.n = self.bad = 0
        self.worst = 0

    def add(self, a: np.ndarray, b: np.ndarray) -> None:
        d = np.abs(np.asarray(a, np.int64) - np.asarray(b, np.int64))
        self.n += d.size
        self.bad += int((d > 0).sum())
        self.worst = max(self.worst, int(d.max()) if d.size else 0)

    def __repr__(self) -> str:
        return f"{self.n} compared, {self.bad} differ, max {self.worst} LSB"


def end_to_end(q: Graph, ours: dict, ref: dict, counts: Counts) -> None:
    """Every probed tensor: our run against ORT's."""
    for p in ref:
        if p.endswith(".probe"):
            info = q.tensors[p[: -len(".probe")]]
            counts.add(_ints(info, ours[p]), _ints(info, ref[p]))


def per_layer(q: Graph, x: dict, ref: dict, counts: Counts) -> None:
    """Each quantized node of `q` (in its own requant_mode) run on ORT's integer inputs,
    against ORT's integer output: the arithmetic of one layer, without propagation."""
    vals = dict(q.constants)
    vals.update(x)
    for p, v in ref.items():
        if p.endswith(".probe"):
            t = p[: -len(".probe")]
            vals[t] = _ints(q.tensors[t], v)
        else:
            vals[p] = v
    for node in q.nodes:
        out = node.outputs[0]
        if not q.tensors[out].is_quantized:
            continue
        info = [q.tensors[t] if t else None for t in node.inputs]
        args = [
            None
            if i is None
            else np.asarray(vals[t], np.float32 if i.is_float else NUMPY_DTYPE[i.dtype])
            for t, i in zip(node.inputs, info)
        ]
        res = find_kernel(node.op, domain_of(q, node))(
            KernelCall(node, args, info, [q.tensors[out]], q)
        )[0]
        counts.add(np.asarray(res).reshape(q.tensors[out].shape), vals[out])


def one_step_rule(counts: Counts) -> bool:
    return counts.worst <= 1 and counts.bad < 0.001 * counts.n


def random_feeds(g: Graph, n: int, seed: int = 11) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [
        {i: rng.standard_normal(g.tensors[i].shape).astype(np.float32) for i in g.inputs}
        for _ in range(n)
    ]


def onnx_ops(path) -> Counter:
    return Counter(n.op_type for n in onnx.load(str(path)).graph.node)


def producers(model) -> dict:
    return {o: n for n in model.graph.node for o in n.output}


def initializers(model) -> dict:
    return {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}


def attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


REPORT: dict[str, str] = {}


def report(key: str, **counts) -> None:
    line = "; ".join(f"{k}: {v}" for k, v in counts.items())
    REPORT[key] = line
    print(f"\n{key}: {line}")


def compare(
    q: Graph, path, feeds: list[dict], level="ENABLE_ALL", int8=False, optimized=None
) -> tuple[dict, Counts, Counts, Counts, Counts]:
    """Run the exported probed graph of `q` in ORT and ours. Returns our float-mode outputs
    per feed and the counts: float mode end to end / per layer (on exact platforms computed
    only for inputs that differ end to end), gemmlowp end to end / per layer."""
    session = ort_session(path, level=level, int8=int8, optimized=optimized)
    pq = probed(q)
    pf, pg = pq.replace(requant_mode="float"), pq.replace(requant_mode="gemmlowp")
    fl, fl1, gl, gl1 = Counts(), Counts(), Counts(), Counts()
    ours_all = []
    for x in feeds:
        ref = ort_run(session, x)
        ours = run(pf, x)
        ours_all.append(ours)
        before = fl.bad
        end_to_end(q, ours, ref, fl)
        if fl.bad > before or not EXACT_PLATFORM:
            per_layer(q.replace(requant_mode="float"), x, ref, fl1)
        end_to_end(q, run(pg, x), ref, gl)
        per_layer(q.replace(requant_mode="gemmlowp"), x, ref, gl1)
    if fl1.n == 0:  # bit-exact end to end, so in every layer too
        fl1 = fl
    return ours_all, fl, fl1, gl, gl1


# ---------------------------------------------------------------------------------------------
# 8-bit zoo networks: structure, ORT bit-exactness, gemmlowp, re-import
# ---------------------------------------------------------------------------------------------

NETS = [
    (n, p) for n in ("digits_cnn", "resnet18", "mobilenet_v2") for p in ("w8a8/unsigned", "w8a8")
]
# ORT operators that would mean a QDQ group ran in float instead of an integer kernel
FLOAT_COMPUTE = {
    "Conv",
    "Gemm",
    "MatMul",
    "Add",
    "Mul",
    "AveragePool",
    "GlobalAveragePool",
    "Softmax",
    "Relu",
    "Clip",
}


@pytest.fixture(scope="module", params=NETS, ids=[f"{n}-{p}" for n, p in NETS])
def net(request, tmp_path_factory):
    name, precision = request.param
    q = quantized(name, precision)
    path = export_onnx(probed(q), tmp_path_factory.mktemp("qdq") / f"{name}.onnx")
    return name, precision, q, path, random_feeds(q, 2 if name == "resnet18" else 3)


def test_8bit_network_file_is_qdq(net):
    name, precision, q, path, _ = net
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [13]
    assert qdq_opset(q) == 13
    prod, inits = producers(model), initializers(model)
    act = "uint8" if precision.endswith("unsigned") else "int8"
    ops = Counter(n.op_type for n in model.graph.node)
    assert not {"Relu", "Clip"} & set(ops)  # every fused activation is implied by its range
    weighted = [n for n in q.nodes if n.op in ("conv2d", "dense")]
    assert ops["Conv"] + ops["Gemm"] == len(weighted)
    for node in weighted:
        onx = prod[f"{node.outputs[0]}_float"]
        assert onx.op_type == ("Conv" if node.op == "conv2d" else "Gemm")
        if node.op == "dense":
            assert attr(onx, "transB") == 1
        xq, wq, bq = (q.tensors[t].quant for t in node.inputs)
        # weights: int8 initializer -> DequantizeLinear(axis 0) with per-channel scales
        wdq = prod[onx.input[1]]
        assert wdq.op_type == "DequantizeLinear" and attr(wdq, "axis") == 0
        w = inits[wdq.input[0]]
        assert w.dtype == np.int8
        np.testing.assert_array_equal(w, q.constants[node.inputs[1]])
        np.testing.assert_array_equal(inits[wdq.input[1]], np.float32(wq.scale))
        assert not inits[wdq.input[2]].any() and inits[wdq.input[2]].dtype == np.int8
        # bias: int32 initializer -> DequantizeLinear at scale S_in * S_w
        bdq = prod[onx.input[2]]
        assert bdq.op_type == "DequantizeLinear" and inits[bdq.input[0]].dtype == np.int32
        np.testing.assert_array_equal(inits[bdq.input[0]], q.constants[node.inputs[2]])
        np.testing.assert_allclose(
            inits[bdq.input[1]], np.float32(xq.scale[0]) * np.float32(wq.scale), rtol=1e-6
        )
        # input: DequantizeLinear of the input tensor's QuantizeLinear
        xdq = prod[onx.input[0]]
        assert xdq.op_type == "DequantizeLinear" and xdq.input[0] == node.inputs[0]
    # every quantized activation is a QuantizeLinear with its scale and zero point
    for n in q.nodes:
        info = q.tensors[n.outputs[0]]
        if info.is_quantized:
            ql = prod[n.outputs[0]]
            assert ql.op_type == "QuantizeLinear", (n.name, ql.op_type)
            assert inits[ql.input[1]] == np.float32(info.quant.scale[0])
            zp = inits[ql.input[2]]
            assert zp.dtype == np.dtype(act) and zp == info.quant.zero_point[0]


def test_8bit_network_matches_onnxruntime(net, tmp_path):
    name, precision, q, path, feeds = net
    int8 = not precision.endswith("unsigned")
    _, fl, fl1, gl, gl1 = compare(q, path, feeds, int8=int8, optimized=tmp_path / "opt.onnx")
    # ORT fused every QDQ group into an integer kernel: no float compute operator is left
    left = {n.op_type for n in onnx.load(str(tmp_path / "opt.onnx")).graph.node}
    assert not left & FLOAT_COMPUTE, left & FLOAT_COMPUTE
    report(
        f"{name}[{precision}]",
        float_mode=fl,
        float_mode_per_layer=fl1,
        gemmlowp=gl,
        gemmlowp_per_layer=gl1,
    )
    if EXACT_PLATFORM:
        assert fl.bad == 0 and fl1.bad == 0, (fl, fl1)
    else:
        assert one_step_rule(fl1), fl1
    # gemmlowp (Q31 multiplier, two roundings) against ORT (float32, one rounding): one step
    # at most in any layer, where the exact value is close enough to a tie for the
    # difference to matter (see the module docstring); end to end only reported.
    assert gl1.worst <= 1 and gl1.bad < 0.01 * gl1.n, gl1


def test_8bit_network_reimports_identically(net):
    name, precision, q, path, feeds = net
    back = load_onnx(path)
    assert back.requant_mode == "float"
    # the same integer weights and biases, scales (float32 in the file) and zero points
    for node in q.nodes:
        if node.op not in ("conv2d", "dense"):
            continue
        twin = back.node(node.name)
        assert twin.op == node.op
        for ours, theirs in zip(node.inputs[1:], twin.inputs[1:]):
            a, b = q.tensors[ours], back.tensors[theirs]
            assert (a.dtype, a.quant.zero_point, a.quant.axis) == (
                b.dtype,
                b.quant.zero_point,
                b.quant.axis,
            )
            np.testing.assert_array_equal(np.float32(a.quant.scale), np.float32(b.quant.scale))
            np.testing.assert_array_equal(back.constants[theirs], q.constants[ours])
    # the same quantization on every activation (each probe reads the re-imported tensor)
    for p in back.outputs:
        if p.endswith(".probe"):
            a = q.tensors[p[: -len(".probe")]]
            b = back.tensors[back.producer(p).inputs[0]]
            assert (a.dtype, a.quant.zero_point) == (b.dtype, b.quant.zero_point), p
            assert np.float32(a.quant.scale[0]) == b.quant.scale[0], p
    # integer operators only: no float operator reads a dequantized tensor
    assert {n.op for n in back.nodes} <= {n.op for n in q.nodes}
    # and it computes exactly what the exported graph computes in ONNX semantics
    pf = probed(q).replace(requant_mode="float")
    for x in feeds[: 1 if name == "resnet18" else 2]:
        ours, again = run(pf, x), run(back, x)
        assert set(again) == set(ours)
        for k in ours:
            np.testing.assert_array_equal(again[k], ours[k], err_msg=k)


# ---------------------------------------------------------------------------------------------
# 4-bit and 16-bit graphs (opset 21)
# ---------------------------------------------------------------------------------------------

LOW_BIT = [
    ("digits_cnn", "w4a8"),
    ("digits_cnn", "w8a4"),
    ("digits_cnn", "w16a16"),
    ("mobilenet_v2", "w4a8"),
    ("mobilenet_v2", "w8a4"),
    ("resnet18", "w16a16"),
]
# ORT_ENABLE_ALL on int4 activations: its QDQ fusion makes a QLinearConv of an int4 input
INT4_ACT_ERROR = (
    r"^\[ONNXRuntimeError\] : 10 : INVALID_GRAPH : This is an invalid model\. "
    r"Type Error: Type 'tensor\(int4\)' of input parameter \(input\.q\) of "
    r"operator \(QLinearConv\) in node \((conv1|features\.0\.0)\) is invalid\.$"
)


@pytest.mark.parametrize("name,precision", LOW_BIT, ids=[f"{n}-{p}" for n, p in LOW_BIT])
def test_low_bit_network(tmp_path, name, precision):
    q = quantized(name, precision)
    path = export_onnx(probed(q), tmp_path / "q.onnx")
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert [o.version for o in model.opset_import] == [21] and model.ir_version == 10
    wbits, abits = (int(v) for v in precision[1:].split("a"))
    inits = {t.name: t for t in model.graph.initializer}
    elem = {4: onnx.TensorProto.INT4, 8: onnx.TensorProto.INT8, 16: onnx.TensorProto.INT16}
    prod = producers(model)
    for node in q.nodes:
        if node.op in ("conv2d", "dense"):
            w = inits[prod[prod[f"{node.outputs[0]}_float"].input[1]].input[0]]
            assert w.data_type == elem[wbits]
            np.testing.assert_array_equal(
                onnx.numpy_helper.to_array(w), q.constants[node.inputs[1]]
            )
    act = Counter()  # activations: abits (but at least 8 around softmax, MIN_8BIT_OPS)
    for n in model.graph.node:
        if n.op_type == "QuantizeLinear" and n.output[0] in q.tensors:
            dtype = q.tensors[n.output[0]].dtype
            assert inits[n.input[2]].data_type == elem[int(dtype[3:])], n.output[0]
            act[dtype] += 1
    assert act[f"int{abits}"] >= len(act) and set(act) <= {f"int{abits}", "int8"}, act

    level = "ENABLE_ALL"
    if abits == 4:
        with pytest.raises(Exception, match=INT4_ACT_ERROR):
            ort_session(path)
        level = "ENABLE_BASIC"  # no QDQ fusion: DequantizeLinear -> float op -> QuantizeLinear
    feeds = random_feeds(q, 1 if name == "resnet18" else 2)
    ours, fl, fl1, gl, gl1 = compare(q, path, feeds, level=level)
    report(
        f"{name}[{precision}] ORT_{level}",
        float_mode=fl,
        float_mode_per_layer=fl1,
        gemmlowp=gl,
        gemmlowp_per_layer=gl1,
    )
    # ORT computes these layers as float32 operators: one step at most in any layer, where
    # float32 accumulation meets a rounding tie; 16-bit steps are 256 times finer than 8-bit
    # ones, so that happens more often (a few per ten thousand elements here)
    assert fl1.worst <= 1 and fl1.bad < (0.01 if abits == 16 else 0.001) * fl1.n, fl1
    assert fl.worst <= 32, fl  # end to end the differences feed the next layers
    if abits != 16:  # gemmlowp: as at 8 bits
        assert gl1.worst <= 1, gl1
    # else: TFLite's 16-bit kernels reduce the conv multiplier to 16 bits (2 LSB) and softmax
    # runs through a 513-entry interpolated table (observed up to 117 steps of 2^-16): reported

    back = load_onnx(path)
    probed(q).replace(requant_mode="float")
    again = run(back, feeds[0])
    wide = [
        n.name
        for n in q.nodes
        if len(n.inputs) > 2
        and n.inputs[2]
        and np.abs(q.constants[n.inputs[2]]).max() > np.iinfo(np.int32).max
    ]
    if not wide:
        for k, v in ours[0].items():
            np.testing.assert_array_equal(again[k], v, err_msg=k)
        return
    # int64 biases beyond int32 (resnet18 at w16a16): an Add of the float bias after the Conv,
    # which reads back as a float conv2d + add + quantize (module docstring of onnx_export)
    for n in wide:
        onx = [m for m in model.graph.node if m.name == f"{n}_bias"]
        assert len(onx) == 1 and onx[0].op_type == "Add", n
        assert back.tensors[back.node(n).outputs[0]].is_float
    c = Counts()
    end_to_end(q, again, ours[0], c)
    report(f"{name}[{precision}] re-imported vs exported", float_mode=c, float_layers=len(wide))
    assert c.worst <= 32


# ---------------------------------------------------------------------------------------------
# weight-only, symmetric activations, hand-made clamps, data movement, float islands
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["digits_cnn", "mobilenet_v2"])
def test_weight_only_network(tmp_path, name):
    q = quantized(name, "w8a8/weight-only")
    path = export_onnx(probed(q), tmp_path / "wo.onnx")
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert [o.version for o in model.opset_import] == [13]
    ops = Counter(n.op_type for n in model.graph.node)
    inits = initializers(model)
    weighted = [n for n in q.nodes if n.op in ("conv2d", "dense")]
    assert "QuantizeLinear" not in ops and ops["DequantizeLinear"] == len(weighted)
    for n in model.graph.node:
        if n.op_type == "DequantizeLinear":  # on int8 weight initializers, per channel
            assert inits[n.input[0]].dtype == np.int8 and attr(n, "axis") == 0
    session = ort_session(path)
    back = load_onnx(path)
    pq = probed(q)  # every float tensor
    for x in random_feeds(q, 2):
        ours, ref = run(pq, x), ort_run(session, x)
        for k in ref:  # float64 (ours) against float32 (ORT)
            np.testing.assert_allclose(
                ours[k], ref[k], rtol=1e-4, atol=1e-5 * float(np.abs(ref[k]).max()), err_msg=k
            )
        again = run(back, x)  # the file reads back as the float graph with the same weights
        for k in ours:
            np.testing.assert_array_equal(again[k], ours[k], err_msg=k)


@pytest.mark.parametrize("name", ["digits_cnn", "mobilenet_v2"])
def test_symmetric_activations_keep_relu_groups(tmp_path, name):
    """With symmetric activations (zero point 0) a ReLU clamps inside the int8 range: it stays,
    as its own DequantizeLinear -> Relu -> QuantizeLinear group (what ORT's quantizer writes for
    symmetric activations), and ORT is still bit-exact with the requantize-then-clamp
    semantics."""
    q = quantized(name, "w8a8/sym-act")
    path = export_onnx(probed(q), tmp_path / "sym.onnx")
    model = onnx.load(str(path))
    prod = producers(model)
    relus = [n for n in model.graph.node if n.op_type == "Relu"]
    assert len(relus) == sum("act_min" in n.attrs for n in q.nodes) > 0
    for r in relus:
        dq = prod[r.input[0]]
        assert dq.op_type == "DequantizeLinear" and prod[dq.input[0]].op_type == "QuantizeLinear"
        after = [n for n in model.graph.node if r.output[0] in n.input]
        assert [n.op_type for n in after] == ["QuantizeLinear"]
        assert after[0].input[1:] == dq.input[1:]  # the output's own parameters twice
    _, fl, fl1, gl, gl1 = compare(q, path, random_feeds(q, 2), int8=True)
    report(f"{name}[w8a8/sym-act]", float_mode=fl, gemmlowp_per_layer=gl1)
    assert (fl.bad == 0) if EXACT_PLATFORM else one_step_rule(fl1), fl1
    assert gl1.worst <= 1


def _f32(rng, *shape, scale=0.3):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _clamp_graph() -> Graph:
    """A hand-made quantized graph (ONNX semantics) whose fused activations clamp inside the
    integer range: an NHWC conv2d with act_min / act_max, an add with act_min."""
    rng = np.random.default_rng(21)
    b = GraphBuilder("clamps", "float")
    x = b.input("x", (1, 7, 7, 4), "int8", QuantParams.per_tensor(0.05, 3))
    ws = np.abs(_f32(rng, 6)) / 100 + 0.002
    w = b.const(
        "w", rng.integers(-127, 128, (6, 4, 3, 3)), "int8", QuantParams(tuple(ws), (0,) * 6, 0)
    )
    bias = b.const(
        "b", rng.integers(-500, 500, 6), "int32", QuantParams(tuple(0.05 * ws), (0,) * 6, 0)
    )
    y = b.add(
        "conv2d",
        [x, w, bias],
        strides=(1, 1),
        pads=(1, 1, 1, 1),
        data_layout="NHWC",
        dtype="int8",
        quant=QuantParams.per_tensor(0.02, -10),
        act_min=-0.6,
        act_max=0.9,
    )
    r = b.const("r", rng.integers(-128, 128, (6,)), "int8", QuantParams.per_tensor(0.01, 0))
    a = b.add("add", [y, r], dtype="int8", quant=QuantParams.per_tensor(0.03, -20), act_min=0.1)
    b.output(a)
    return b.build()


def test_activation_clamping_inside_the_range(tmp_path):
    q = _clamp_graph()
    path = export_onnx(probed(q), tmp_path / "clamps.onnx")
    ops = onnx_ops(path)
    assert ops["Clip"] == 2 and ops["Transpose"] == 2
    session = ort_session(path, int8=True, optimized=tmp_path / "opt.onnx")
    left = onnx_ops(tmp_path / "opt.onnx")
    assert left["QLinearConv"] == 1 and left["QLinearAdd"] == 1 and left["Clip"] == 2
    rng = np.random.default_rng(3)
    c = Counts()
    back = load_onnx(path)
    pq = probed(q)
    for _ in range(3):
        x = {"x": rng.integers(-128, 128, (1, 7, 7, 4)).astype(np.int8)}
        ours, ref = run(pq, x), ort_run(session, x)
        end_to_end(q, ours, ref, c)
        again = run(back, x)
        for k in ours:
            np.testing.assert_array_equal(again[k], ours[k], err_msg=k)
    report("clamps[int8]", float_mode=c)
    assert c.bad == 0 if EXACT_PLATFORM else one_step_rule(c), c


def _movement_graph() -> Graph:
    rng = np.random.default_rng(4)
    b = GraphBuilder("movement")
    x = b.input("x", (1, 9, 9, 3))
    y = b.add(
        "conv2d",
        [x, b.const("w", _f32(rng, 8, 3, 3, 3)), b.const("b", _f32(rng, 8, scale=0.1))],
        strides=(1, 1),
        pads=(1, 1, 1, 1),
        data_layout="NHWC",
        act_min=0.0,
    )
    m = b.add("max_pool", [y], kernel=(3, 3), strides=(2, 2), pads=(1, 1, 1, 1), data_layout="NHWC")
    a = b.add("avg_pool", [y], kernel=(3, 3), strides=(2, 2), pads=(1, 1, 1, 1), data_layout="NHWC")
    c = b.add("concat", [m, a], axis=3)
    r = b.add("reshape", [c], shape=(1, 25, 16))
    d = b.add(
        "dense", [r, b.const("fc", _f32(rng, 12, 16)), b.const("fcb", _f32(rng, 12, scale=0.1))]
    )
    mm = b.add("matmul", [d, d], transpose_b=True)
    gp = b.add("global_avg_pool", [c], data_layout="NHWC", keepdims=False)
    out = b.add("dense", [gp, b.const("fc2", _f32(rng, 5, 16))], act_max=0.3)
    b.output(mm, out)
    return b.build()


@pytest.mark.parametrize("precision", ["w8a8/unsigned", "w8a8"])
def test_data_movement_keeps_integer_groups(tmp_path, precision):
    """NHWC operators (Transposes around them), a dense on 3-D rows (Reshape, Gemm, Reshape),
    a matmul with a transposed operand and a global pooling without keepdims: each movement is
    followed by a QuantizeLinear -> DequantizeLinear pair, so ORT still fuses every group and
    the file reads back as integer operators."""
    g = _movement_graph()
    q = seven_bit_weights(
        quantize_graph(g, parse_precision(precision), calibdata.random(g, 4)).graph
    )
    path = export_onnx(probed(q), tmp_path / "mv.onnx")
    _, fl, fl1, gl, gl1 = compare(
        q, path, random_feeds(q, 3), int8=precision == "w8a8", optimized=tmp_path / "opt.onnx"
    )
    left = onnx_ops(tmp_path / "opt.onnx")
    assert not set(left) & FLOAT_COMPUTE, left
    report(f"movement[{precision}]", float_mode=fl, gemmlowp_per_layer=gl1)
    assert (fl.bad == 0) if EXACT_PLATFORM else one_step_rule(fl1), fl1
    assert gl1.worst <= 1
    back = load_onnx(path)
    assert all(
        not back.tensors[n.outputs[0]].is_float for n in back.nodes if n.op not in ("dequantize",)
    )
    pf = probed(q).replace(requant_mode="float")
    x = random_feeds(q, 1)[0]
    ours, again = run(pf, x), run(back, x)
    for k in ours:
        np.testing.assert_array_equal(again[k], ours[k], err_msg=k)


def _island_graph() -> Graph:
    rng = np.random.default_rng(5)
    b = GraphBuilder("islands")
    x = b.input("x", (1, 6, 16))
    d = b.add("dense", [x, b.const("w1", _f32(rng, 32, 16)), b.const("b1", _f32(rng, 32))])
    n = b.add(
        "layer_norm",
        [d, b.const("g", 1 + _f32(rng, 32, scale=0.1)), b.const("be", _f32(rng, 32, scale=0.1))],
        axis=-1,
        epsilon=1e-5,
    )
    e = b.add("gelu", [n], approximate="none")
    d2 = b.add("dense", [e, b.const("w2", _f32(rng, 16, 32)), b.const("b2", _f32(rng, 16))])
    s = b.add("softmax", [b.add("add", [d2, x])], axis=-1)
    b.output(s)
    return b.build()


def test_float_islands(tmp_path):
    """layer_norm stays float between DequantizeLinear and QuantizeLinear; gelu is an integer
    operator (TFLite's lookup table; accelsim.model.ops) and exports as a DequantizeLinear ->
    Gelu -> QuantizeLinear group."""
    g = _island_graph()
    q = seven_bit_weights(quantize_graph(g, parse_precision("w8a8"), calibdata.random(g, 4)).graph)
    assert qdq_opset(q) == 20  # Gelu
    path = export_onnx(probed(q), tmp_path / "islands.onnx")
    model = onnx.load(str(path))
    assert [o.version for o in model.opset_import] == [20]
    prod = producers(model)
    ln = next(n for n in model.graph.node if n.op_type == "LayerNormalization")
    assert prod[ln.input[0]].op_type == "DequantizeLinear"
    assert not any(
        prod.get(i) is not None and prod[i].op_type == "DequantizeLinear" for i in ln.input[1:]
    )  # float gamma / beta
    gelu = next(n for n in model.graph.node if n.op_type == "Gelu")
    assert [n.op_type for n in model.graph.node if gelu.output[0] in n.input] == ["QuantizeLinear"]
    assert prod[gelu.input[0]].op_type == "DequantizeLinear"
    assert q.tensors[next(n for n in q.nodes if n.op == "gelu").outputs[0]].is_quantized
    session = ort_session(path, int8=True)
    pf = probed(q).replace(requant_mode="float")
    c = Counts()
    for x in random_feeds(q, 3):
        ours, ref = run(pf, x), ort_run(session, x)
        end_to_end(q, ours, ref, c)
        # the float tensor: float32 (ORT) vs float64
        np.testing.assert_allclose(ours["layer_norm"], ref["layer_norm"], rtol=1e-5, atol=1e-5)
    report("islands[w8a8]", float_mode=c)
    assert c.worst <= 1 and (c.bad == 0 if EXACT_PLATFORM else c.bad < 0.001 * c.n), c
    back = load_onnx(path)
    assert {"layer_norm", "gelu"} <= {n.op for n in back.nodes}
    again = run(back, x)
    for k in ours:
        np.testing.assert_array_equal(again[k], ours[k], err_msg=k)


# ---------------------------------------------------------------------------------------------
# opsets, errors, ONNX Runtime's own QDQ models
# ---------------------------------------------------------------------------------------------


def test_opset_is_the_lowest_that_holds_every_type(tmp_path):
    assert qdq_opset(quantized("digits_cnn", "w8a8")) == 13
    for p in ("w4a8", "w8a4", "w16a16"):
        assert qdq_opset(quantized("digits_cnn", p)) == 21
    q = quantized("digits_cnn", "w16a16")
    with pytest.raises(ModelError, match=r"needs opset 21 or later .*asked for opset 17"):
        export_onnx(q, tmp_path / "low.onnx", opset=17)
    assert not list(tmp_path.iterdir())
    path = export_onnx(quantized("digits_cnn", "w8a8"), tmp_path / "o17.onnx", opset=17)
    assert [o.version for o in onnx.load(str(path)).opset_import] == [17]


def test_integer_tensor_without_parameters_is_refused(tmp_path):
    b = GraphBuilder("accumulator", "float")
    x = b.input("x", (1, 2, 4, 4), "uint8", QuantParams.per_tensor(0.1, 128))
    w = b.const("w", np.ones((3, 2, 1, 1)), "int8", QuantParams.per_tensor(0.1))
    y = b.add("conv2d", [x, w], data_layout="NCHW", dtype="int32")  # ConvInteger-like
    b.output(y)
    with pytest.raises(
        ModelError,
        match=r"integer tensor 'conv2d' \(int32\) has no "
        r"quantization parameters",
    ):
        export_onnx(b.build(), tmp_path / "acc.onnx")
    assert not list(tmp_path.iterdir())  # nothing written, no temporary left


def test_onnxruntime_qdq_model_round_trips(tmp_path):
    """A model written by ORT's own quantize_static, imported, exported again: ORT computes the
    same integers from our file as from its own."""
    quantization = pytest.importorskip("onnxruntime.quantization")
    h = onnx.helper
    rng = np.random.default_rng(9)
    inits = [
        onnx.numpy_helper.from_array(v, k)
        for k, v in {
            "w": _f32(rng, 8, 3, 3, 3),
            "b": _f32(rng, 8, scale=0.1),
            "s": np.array([1, 8 * 36], np.int64),
            "fc": _f32(rng, 8 * 36, 10, scale=0.05),
        }.items()
    ]
    g = h.make_graph(
        [
            h.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], strides=[2, 2]),
            h.make_node("Relu", ["c"], ["r"]),
            h.make_node("Reshape", ["r", "s"], ["f"]),
            h.make_node("MatMul", ["f", "fc"], ["y"]),
        ],
        "small",
        [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 12, 12])],
        [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)],
        inits,
    )
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 13)])
    m.ir_version = 8
    fpath, qpath = tmp_path / "f.onnx", tmp_path / "q.onnx"
    onnx.save(m, fpath)

    class Reader(quantization.CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"x": _f32(rng, 1, 3, 12, 12, scale=1.0)} for _ in range(4)])

        def get_next(self):
            return next(self.it, None)

    quantization.quantize_static(
        str(fpath),
        str(qpath),
        Reader(),
        quant_format=quantization.QuantFormat.QDQ,
        per_channel=True,
        activation_type=quantization.QuantType.QUInt8,
        weight_type=quantization.QuantType.QInt8,
        reduce_range=REDUCE_RANGE,
    )
    graph = load_onnx(qpath)
    again = export_onnx(graph, tmp_path / "again.onnx")
    ops, theirs = onnx_ops(again), onnx_ops(qpath)
    for op in ("QuantizeLinear", "DequantizeLinear", "Conv"):
        assert ops[op] == theirs[op], op
    assert ops["Gemm"] == theirs["MatMul"] == 1  # the MatMul with constant B is a dense
    s1, s2 = ort_session(qpath), ort_session(again)
    for x in random_feeds(graph, 3):
        np.testing.assert_array_equal(ort_run(s2, x)["y"], ort_run(s1, x)["y"])
        np.testing.assert_array_equal(run(graph, x)["y"], ort_run(s2, x)["y"])
