"""Graph IR: construction checks, shape inference, topological order, MAC/param counts."""

import dataclasses

import numpy as np
import pytest

from accelsim.core.errors import ModelError, ShapeError
from accelsim.core.qparams import QuantParams
from accelsim.model.builder import GraphBuilder
from accelsim.model.graph import Graph, Node, TensorInfo, topological_order
from accelsim.model.ops import SUPPORTED_OPS, op_class


def _conv_graph(layout="NCHW", **attrs):
    b = GraphBuilder("g")
    shape = (1, 8, 17, 15) if layout == "NCHW" else (1, 17, 15, 8)
    x = b.input("x", shape)
    w = b.const("w", np.ones((16, 8 // attrs.get("groups", 1), 3, 3), np.float32))
    y = b.add("conv2d", [x, w], data_layout=layout, **attrs)
    b.output(y)
    return b.build()


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_conv_shape_stride_dilation_padding(layout):
    g = _conv_graph(layout, strides=(2, 3), dilations=(2, 1), pads=(1, 0, 2, 1))
    # H: (17 + 1 + 2 - 5) // 2 + 1 = 8; W: (15 + 0 + 1 - 3) // 3 + 1 = 5
    want = (1, 16, 8, 5) if layout == "NCHW" else (1, 8, 5, 16)
    assert g.tensors[g.outputs[0]].shape == want
    assert g.macs() == 16 * 8 * 5 * 8 * 9
    assert g.params() == 16 * 8 * 9


def test_grouped_and_depthwise_conv():
    g = _conv_graph(groups=2)
    assert g.macs() == 16 * 15 * 13 * 4 * 9
    b = GraphBuilder("dw")
    x = b.input("x", (1, 8, 10, 10))
    w = b.const("w", np.ones((8, 1, 3, 3), np.float32))
    y = b.add("conv2d", [x, w], groups=8, pads=(1, 1, 1, 1))
    b.output(y)
    g = b.build()
    assert op_class(g, g.nodes[0]) == "depthwise_conv2d"
    assert g.macs() == 8 * 10 * 10 * 9


def test_shape_errors_name_the_node():
    b = GraphBuilder("bad")
    x = b.input("x", (1, 3, 8, 8))
    w = b.const("w", np.ones((4, 5, 3, 3), np.float32))
    with pytest.raises(ShapeError, match="node 'conv2d' \\(conv2d\\).*3 channels"):
        b.add("conv2d", [x, w])
    a = b.input("a", (2, 3))
    c = b.input("c", (4, 5))
    with pytest.raises(ShapeError, match="inner dimensions"):
        b.add("matmul", [a, c], name="mm")
    with pytest.raises(ShapeError, match="unsupported op 'lstm'"):
        b.add("lstm", [a])


def test_matmul_broadcast_transpose_and_macs():
    b = GraphBuilder("mm")
    q = b.input("q", (1, 12, 128, 64))
    k = b.input("k", (1, 12, 128, 64))
    s = b.add("matmul", [q, k], transpose_b=True)
    b.output(s)
    g = b.build()
    assert g.tensors[s].shape == (1, 12, 128, 128)
    assert g.macs() == 12 * 128 * 128 * 64


@pytest.mark.parametrize(
    "op,attrs,in_shape,out_shape",
    [
        ("reshape", {"shape": (0, -1)}, (2, 3, 4), (2, 12)),
        ("flatten", {"axis": 1}, (2, 3, 4, 5), (2, 60)),
        ("transpose", {"perm": (0, 2, 1)}, (2, 3, 4), (2, 4, 3)),
        ("pad", {"pads": ((0, 0), (1, 2), (3, 4))}, (1, 2, 3), (1, 5, 10)),
        (
            "max_pool",
            {"kernel": (3, 3), "strides": (2, 2), "pads": (1, 1, 1, 1)},
            (1, 4, 112, 112),
            (1, 4, 56, 56),
        ),
        (
            "max_pool",
            {"kernel": (3, 3), "strides": (2, 2), "ceil_mode": True},
            (1, 4, 8, 8),
            (1, 4, 4, 4),
        ),
        ("global_avg_pool", {"keepdims": False}, (1, 7, 5, 5), (1, 7)),
        ("mean", {"axes": (1, 2), "keepdims": True}, (1, 5, 5, 7), (1, 1, 1, 7)),
        ("squeeze", {"axes": (1, 2)}, (1, 1, 1, 7), (1, 7)),
        ("softmax", {"axis": -1}, (3, 10), (3, 10)),
    ],
)
def test_shape_inference(op, attrs, in_shape, out_shape):
    b = GraphBuilder("s")
    x = b.input("x", in_shape)
    y = b.add(op, [x], **attrs)
    assert b.shape(y) == out_shape


def test_concat_and_broadcast_add():
    b = GraphBuilder("c")
    x = b.input("x", (1, 3, 4, 4))
    y = b.input("y", (1, 5, 4, 4))
    z = b.add("concat", [x, y], axis=1)
    assert b.shape(z) == (1, 8, 4, 4)
    bias = b.const("bias", np.ones((1, 8, 1, 1), np.float32))
    assert b.shape(b.add("add", [z, bias])) == (1, 8, 4, 4)
    with pytest.raises(ShapeError, match="differ outside axis"):
        b.add("concat", [x, b.input("w", (1, 3, 5, 4))], axis=1)


def test_topological_order_and_cycle_detection():
    n1 = Node("a", "relu", ("x",), ("t1",))
    n2 = Node("b", "relu", ("t1",), ("t2",))
    n3 = Node("c", "add", ("t1", "t2"), ("t3",))
    order = topological_order([n3, n2, n1], {"x"})
    assert [n.name for n in order] == ["a", "b", "c"]
    loop1 = Node("p", "relu", ("u2",), ("u1",))
    loop2 = Node("q", "relu", ("u1",), ("u2",))
    with pytest.raises(ModelError, match="cycle"):
        topological_order([loop1, loop2], {"x"})


def test_graph_rejects_out_of_order_nodes():
    t = {n: TensorInfo(n, (1,)) for n in ("x", "t1", "t2")}
    nodes = (Node("b", "relu", ("t1",), ("t2",)), Node("a", "relu", ("x",), ("t1",)))
    with pytest.raises(ModelError, match="node 'b'.*before anything produces it"):
        Graph("g", nodes, t, ("x",), ("t2",))


def test_quant_params_validation():
    q = QuantParams((0.1, 0.2, 0.3), (0,), axis=0)
    assert q.per_channel and list(q.zero_points()) == [0, 0, 0]
    assert q.broadcast_shape(4) == (3, 1, 1, 1)
    with pytest.raises(ModelError, match="positive"):
        QuantParams.per_tensor(0.0)
    with pytest.raises(ModelError, match="one scale"):
        QuantParams((0.1, 0.2), (0, 0), axis=None)


def test_frozen_everywhere():
    g = _conv_graph()
    with pytest.raises(TypeError):
        g.nodes[0].attrs["groups"] = 4  # mappingproxy
    with pytest.raises(dataclasses.FrozenInstanceError):
        g.name = "other"
    with pytest.raises(ValueError):
        g.constants["w"][0, 0, 0, 0] = 2.0  # read-only weights


def test_supported_ops_cover_the_issue_list():
    need = {
        "conv2d",
        "dense",
        "matmul",
        "add",
        "concat",
        "max_pool",
        "avg_pool",
        "global_avg_pool",
        "relu",
        "relu6",
        "clip",
        "reshape",
        "flatten",
        "softmax",
        "pad",
        "layer_norm",
        "gelu",
        "transpose",
    }
    assert need <= set(SUPPORTED_OPS)
