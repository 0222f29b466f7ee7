"""The operators of mobile CNNs and transformers through ONNX import and the reference executor,
against oracles nobody here wrote (issue 14):

(a) ONNX's own backend node tests (model + input / expected output tensors, the numpy reference
    of the ONNX specification) for every new float operator, to 1e-4 relative;
(b) PyTorch networks of five families (tests/torch_models.py) exported by `torch.onnx.export`
    at opsets 13 and 17: float against ONNX Runtime to 1e-4 relative; quantized by
    `onnxruntime.quantization.quantize_static` (QDQ; uint8 / int8 activations, per-channel and
    per-tensor int8 weights) against ONNX Runtime by test_onnx.py's rule;
(c) the same float networks quantized by accelsim's own PTQ at w8a8 and w8a16 and run in the
    reference executor;
(d) several unsupported operators named in one error.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx_node_cases import data_sets, node_test_dirs

from accelsim.core.errors import ModelError, UnsupportedOpError
from accelsim.model.onnx_import import load_onnx
from accelsim.ref.executor import run

ort = pytest.importorskip("onnxruntime")
quantization = pytest.importorskip("onnxruntime.quantization")
torch = pytest.importorskip("torch")

import test_onnx as T  # noqa: E402  (tests/ helpers: sessions, the QDQ comparison rule)
import torch_models as TM  # noqa: E402
from ort_platform import REDUCE_RANGE  # noqa: E402

# ---------------------------------------------------------------------------------------------
# (a) ONNX's node tests
# ---------------------------------------------------------------------------------------------

# operator -> (generator module, positions of the data inputs; the others are frozen to their
# test values as constants, which is how accelsim takes pads, axes, sizes, split sizes, ...)
NODE_OPS = {
    "Sigmoid": ("sigmoid", (0,)),
    "Tanh": ("tanh", (0,)),
    "HardSigmoid": ("hardsigmoid", (0,)),
    "HardSwish": ("hardswish", (0,)),
    "Erf": ("erf", (0,)),
    "Gelu": ("gelu", (0,)),
    "Swish": ("swish", (0,)),
    "Neg": ("neg", (0,)),
    "Sqrt": ("sqrt", (0,)),
    "Pow": ("pow", (0, 1)),
    "Div": ("div", (0, 1)),
    "Where": ("where", (0, 1, 2)),
    "Less": ("less", (0, 1)),
    "Greater": ("greater", (0, 1)),
    "Equal": ("equal", (0, 1)),
    "Slice": ("slice", (0,)),
    "Split": ("split", (0,)),
    "Gather": ("gather", (0, 1)),
    "GatherElements": ("gatherelements", (0, 1)),
    "Tile": ("tile", (0,)),
    "DepthToSpace": ("depthtospace", (0,)),
    "Resize": ("resize", (0,)),
    "Pad": ("pad", (0,)),
    "Concat": ("concat", (0, 1, 2)),
    "LayerNormalization": ("layernormalization", (0,)),
}
NODE_DIRS, NODE_ORIGIN = node_test_dirs({op: m for op, (m, _) in NODE_OPS.items()})

# Variants outside what accelsim models, each with the one-line error it must raise.
_CUBIC = r"mode 'cubic' is not supported"
_ANTIALIAS = r"antialias is not supported"
_CROP = r"coordinate_transformation_mode 'tf_crop_and_resize' is not supported"
_SYMMETRIC = r"coordinate_transformation_mode 'half_pixel_symmetric' is not supported"
_ASPECT = r"keep_aspect_ratio_policy"
_LN_AXIS = r"only the last axis"
NODE_UNSUPPORTED = {
    **{d.name: _CUBIC for d in NODE_DIRS if "cubic" in d.name and "antialias" not in d.name},
    "test_resize_downsample_scales_cubic_antialias": _CUBIC,
    "test_resize_downsample_sizes_cubic_antialias": _CUBIC,
    "test_resize_downsample_scales_linear_antialias": _ANTIALIAS,
    "test_resize_downsample_sizes_linear_antialias": _ANTIALIAS,
    "test_resize_tf_crop_and_resize": _CROP,
    "test_resize_tf_crop_and_resize_axes_2_3": _CROP,
    "test_resize_tf_crop_and_resize_axes_3_2": _CROP,
    "test_resize_tf_crop_and_resize_extrapolation_value": _CROP,
    "test_resize_downsample_scales_linear_half_pixel_symmetric": _SYMMETRIC,
    "test_resize_upsample_scales_linear_half_pixel_symmetric": _SYMMETRIC,
    "test_split_zero_size_splits_opset13": r"empty dimension",
    "test_split_zero_size_splits_opset18": r"empty dimension",
    "test_resize_downsample_sizes_nearest_not_larger": _ASPECT,
    "test_resize_downsample_sizes_nearest_not_smaller": _ASPECT,
    "test_resize_upsample_sizes_nearest_not_larger": _ASPECT,
    "test_resize_upsample_sizes_nearest_not_smaller": _ASPECT,
    "test_wrap_pad": r"mode 'wrap' is not supported",
    **{
        d.name: r"element type UINT(32|64), which accelsim does not support"
        for d in NODE_DIRS
        if re.search(r"_uint(32|64)$", d.name)
    },
    "test_equal_string": r"element type STRING",
    "test_equal_string_broadcast": r"element type STRING",
    **{
        d.name: _LN_AXIS
        for d in NODE_DIRS
        if d.name.startswith("test_layer_normalization")
        and not re.search(r"axis_negative_1|default_axis|2d_axis1|3d_axis2|4d_axis3", d.name)
    },
    # the node tests also read the Mean and InvStdDev outputs, which accelsim does not model
    **{
        d.name: r"the Mean / InvStdDev outputs are not supported"
        for d in NODE_DIRS
        if d.name.startswith("test_layer_normalization")
        and re.search(r"axis_negative_1|default_axis|2d_axis1|3d_axis2|4d_axis3", d.name)
    },
}


# Where ONNX's reference and ONNX Runtime differ, accelsim follows ONNX Runtime (and PyTorch,
# whose exports it runs); these cases are checked against ONNX Runtime instead.
ORT_INSTEAD = {
    # align_corners with `scales`: the reference divides by (in * scale - 1), ORT by (out - 1)
    "test_resize_downsample_scales_linear_align_corners",
}


def test_node_directories_found():
    names = {d.name for d in NODE_DIRS}
    ops = {onnx.load(str(d / "model.onnx")).graph.node[0].op_type for d in NODE_DIRS}
    assert ops == set(NODE_OPS), set(NODE_OPS) - ops
    assert set(NODE_UNSUPPORTED) <= names, sorted(set(NODE_UNSUPPORTED) - names)
    # what the families below need is among the supported cases
    for required in (
        "test_resize_upsample_scales_linear",
        "test_resize_upsample_scales_nearest",
        "test_reflect_pad",
        "test_edge_pad",
        "test_slice_neg_steps",
        "test_gather_negative_indices",
        "test_depthtospace_crd_mode_example",
        "test_gelu_tanh_1",
    ):
        assert required in names and required not in NODE_UNSUPPORTED, required


@pytest.mark.parametrize("case_dir", NODE_DIRS, ids=[d.name for d in NODE_DIRS])
def test_node_case(case_dir: Path):
    """Every output to 1e-4 relative (integer and bool outputs exactly)."""
    model = onnx.load(str(case_dir / "model.onnx"))
    node = model.graph.node[0]
    positions = NODE_OPS[node.op_type][1]
    data = {node.input[i] for i in positions if i < len(node.input)}
    if node.op_type == "Concat":
        data = set(node.input)
    for frozen, feeds, outputs in data_sets(case_dir, model, data):
        if case_dir.name in NODE_UNSUPPORTED:
            with pytest.raises(ModelError, match=NODE_UNSUPPORTED[case_dir.name]) as info:
                load_onnx(model, constants=frozen)
            assert "\n" not in str(info.value)
            continue
        graph = load_onnx(model, constants=frozen)
        result = run(graph, feeds)
        if case_dir.name in ORT_INSTEAD:
            outputs = T.ort_session(model).run(None, {**frozen, **feeds})
        assert len(graph.outputs) == len(outputs)
        for name, expected in zip(graph.outputs, outputs):
            got = result[name]
            assert got.shape == expected.shape, (name, got.shape, expected.shape)
            if np.issubdtype(expected.dtype, np.floating):
                scale = max(1.0, float(np.abs(expected).max(initial=0)))
                np.testing.assert_allclose(
                    got.astype(np.float64), expected, rtol=1e-4, atol=1e-6 * scale, err_msg=name
                )
            else:
                np.testing.assert_array_equal(got, expected, err_msg=name)


# ---------------------------------------------------------------------------------------------
# (b) whole small networks of each family, float and QDQ, against ONNX Runtime
# ---------------------------------------------------------------------------------------------

OPSETS = (13, 17)


@pytest.fixture(scope="module")
def family_file(tmp_path_factory):
    """(family, opset) -> the exported float model's path, exported once per session."""
    root = tmp_path_factory.mktemp("families")
    cache: dict[tuple[str, int], Path] = {}

    def get(name: str, opset: int) -> Path:
        if (name, opset) not in cache:
            path = root / f"{name}_{opset}.onnx"
            path.write_bytes(TM.export(name, opset))
            cache[(name, opset)] = path
        return cache[(name, opset)]

    return get


def _feeds(graph, rng):
    return {i: TM.sample(i, graph.tensors[i].shape, rng) for i in graph.inputs}


# what each family must import as (the patterns fused, the operators present)
FAMILY_OPS = {
    "mobilenet_v3_block": {"hard_swish", "hard_sigmoid", "global_avg_pool", "mul"},
    "efficientnet_block": {"sigmoid", "mul", "tanh", "mean", "conv2d"},
    "shufflenet_block": {"slice", "concat", "transpose", "resize", "pad", "depth_to_space"},
    "tiny_bert": {"gather", "layer_norm", "gelu", "softmax", "matmul", "dense", "cast"},
    "tiny_vit": {"concat", "gather", "gather_elements", "layer_norm", "dense"},
}


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("name", list(TM.FAMILIES))
def test_family_float_matches_onnxruntime(family_file, name, opset):
    path = family_file(name, opset)
    graph = load_onnx(path)
    ops = {n.op for n in graph.nodes}
    assert FAMILY_OPS[name] <= ops, FAMILY_OPS[name] - ops
    if name == "tiny_bert":  # both GELU forms and every layer norm became one operator each
        gelus = [n.attr("approximate") for n in graph.nodes if n.op == "gelu"]
        assert sorted(gelus) == ["none", "tanh"]
        assert sum(n.op == "layer_norm" for n in graph.nodes) == 5
    if name == "mobilenet_v3_block":  # HardSwish / HardSigmoid * x and x * relu6(x + 3) / 6
        assert sum(n.op == "hard_swish" for n in graph.nodes) == 2
    session = T.ort_session(path)
    rng = np.random.default_rng(5)
    worst = 0.0
    for _ in range(3):
        feeds = _feeds(graph, rng)
        ours = run(graph, feeds)
        for out, want in zip(graph.outputs, session.run(None, feeds)):
            rel = np.abs(ours[out].astype(np.float64) - want) / max(np.abs(want).max(), 1e-12)
            worst = max(worst, float(rel.max()))
    print(f"\n{name}/opset{opset}: max relative difference {worst:.2e}")
    assert worst < 1e-4


class _Reader(quantization.CalibrationDataReader):
    def __init__(self, inputs: dict[str, tuple[int, ...]], n: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self._it = iter([{k: TM.sample(k, s, rng) for k, s in inputs.items()} for _ in range(n)])

    def get_next(self):
        return next(self._it, None)


QDQ_CONFIGS = [(act, pc) for act in ("u8", "s8") for pc in (True, False)]


@pytest.mark.parametrize(
    "act,per_channel",
    QDQ_CONFIGS,
    ids=[f"{a}-{'per_channel' if p else 'per_tensor'}" for a, p in QDQ_CONFIGS],
)
@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("name", list(TM.FAMILIES))
def test_family_qdq_matches_onnxruntime(family_file, tmp_path, name, opset, act, per_channel):
    """quantize_static U8S8 / S8S8 QDQ models: bit-exact with ONNX Runtime's fused integer
    kernels, within test_onnx.py's one-step rule for its other configurations."""
    qt = quantization.QuantType
    qpath = tmp_path / "qdq.onnx"
    quantization.quantize_static(
        str(family_file(name, opset)),
        str(qpath),
        _Reader(TM.FAMILIES[name][1], 4, 0),
        quant_format=quantization.QuantFormat.QDQ,
        per_channel=per_channel,
        activation_type=qt.QUInt8 if act == "u8" else qt.QInt8,
        weight_type=qt.QInt8,
        reduce_range=REDUCE_RANGE,  # see tests/ort_platform.py
    )
    graph, counts = T.compare_with_ort(qpath, act, n_runs=2, make_feeds=_feeds)
    assert graph.is_quantized
    T.check_counts(f"{name}-opset{opset}[{act},{'pc' if per_channel else 'pt'}]", counts, act)


# ---------------------------------------------------------------------------------------------
# (d) bad input
# ---------------------------------------------------------------------------------------------


def test_several_unsupported_operators_named_in_one_error(tmp_path):
    from onnx import TensorProto as TP
    from onnx import helper as h

    nodes = [
        h.make_node("Relu", ["x"], ["r"], name="ok"),
        h.make_node("Einsum", ["r", "r"], ["e"], name="mix", equation="ij,ij->ij"),
        h.make_node("TopK", ["e", "k"], ["v", "i"], name="top"),
        h.make_node("Softplus", ["v"], ["y"], name="soft"),
    ]
    graph = h.make_graph(
        nodes,
        "g",
        [h.make_tensor_value_info("x", TP.FLOAT, [2, 4])],
        [h.make_tensor_value_info("y", TP.FLOAT, None)],
        [onnx.numpy_helper.from_array(np.array([2], np.int64), "k")],
    )
    path = tmp_path / "bad.onnx"
    onnx.save(h.make_model(graph, opset_imports=[h.make_opsetid("", 17)]), path)
    with pytest.raises(UnsupportedOpError) as exc:
        load_onnx(path)
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(str(path))
    for node, op in (("mix", "Einsum"), ("top", "TopK"), ("soft", "Softplus")):
        assert f"'{node}' ({op})" in msg
    assert "'ok'" not in msg and "3 nodes" in msg


def test_run_time_shape_arithmetic_named_in_one_error(tmp_path):
    """Fold-only operators whose inputs are computed at run time: every one is named."""
    from onnx import TensorProto as TP
    from onnx import helper as h

    nodes = [
        h.make_node("Exp", ["x"], ["e"], name="exp_rt"),
        h.make_node("Log", ["x"], ["l"], name="log_rt"),
        h.make_node("Add", ["e", "l"], ["y"], name="sum"),
    ]
    graph = h.make_graph(
        nodes,
        "g",
        [h.make_tensor_value_info("x", TP.FLOAT, [2, 4])],
        [h.make_tensor_value_info("y", TP.FLOAT, None)],
    )
    path = tmp_path / "runtime.onnx"
    onnx.save(h.make_model(graph, opset_imports=[h.make_opsetid("", 17)]), path)
    with pytest.raises(UnsupportedOpError) as exc:
        load_onnx(path)
    msg = str(exc.value)
    assert "\n" not in msg
    assert "'exp_rt' (Exp" in msg and "'log_rt' (Log" in msg and "2 node(s)" in msg
