"""Float-graph transforms that precede quantization (Jacob et al. 2018, §3.2; Krishnamoorthi
2018, §3.2): batch-norm folding and activation fusion.

Both keep the *output* tensor name of the removed node, so every consumer and graph output
still refers to a tensor that exists.
"""

from __future__ import annotations

import numpy as np

from accelsim.model.graph import Graph, Node, TensorInfo
from accelsim.model.ops import spatial_axes

_FUSIBLE_PRODUCERS = ("conv2d", "dense", "add")


def _single_consumer(graph: Graph, tensor: str) -> bool:
    return len(graph.consumers(tensor)) == 1 and tensor not in graph.outputs


def _rebuild(graph: Graph, nodes: list[Node], constants: dict, tensors: dict) -> Graph:
    used = set(graph.inputs) | set(graph.outputs)
    for n in nodes:
        used.update(t for t in n.inputs if t)
        used.update(n.outputs)
    return graph.replace(
        nodes=tuple(nodes),
        tensors={k: v for k, v in tensors.items() if k in used},
        constants={k: v for k, v in constants.items() if k in used},
    )


def fold_batch_norm(graph: Graph) -> Graph:
    """Fold every inference batch_norm that directly follows a conv2d/dense into its weights:
    `W' = W * gamma / sqrt(var + eps)`, `b' = (b - mean) * gamma / sqrt(var + eps) + beta`."""
    nodes = list(graph.nodes)
    constants = dict(graph.constants)
    tensors = dict(graph.tensors)
    by_name = {n.name: i for i, n in enumerate(nodes)}
    for bn in [n for n in graph.nodes if n.op == "batch_norm"]:
        prod = graph.producer(bn.inputs[0])
        if (
            prod is None
            or prod.op not in ("conv2d", "dense")
            or not _single_consumer(graph, bn.inputs[0])
            or not all(graph.is_constant(t) for t in bn.inputs[1:5])
            or not graph.is_constant(prod.inputs[1])
            or any(k in prod.attrs for k in ("act_min", "act_max"))
        ):
            continue
        if prod.op == "conv2d" and bn.attr("data_layout", "NCHW") != prod.attr(
            "data_layout", "NCHW"
        ):
            continue
        gamma, beta, mean, var = (constants[t].astype(np.float64) for t in bn.inputs[1:5])
        factor = gamma / np.sqrt(var + bn.attr("epsilon", 1e-5))
        w = constants[prod.inputs[1]].astype(np.float64)
        w_fold = (w * factor.reshape((-1,) + (1,) * (w.ndim - 1))).astype(np.float32)
        has_bias = len(prod.inputs) > 2 and prod.inputs[2]
        b = constants[prod.inputs[2]].astype(np.float64) if has_bias else np.zeros(len(factor))
        b_fold = ((b - mean) * factor + beta).astype(np.float32)
        w_name, b_name = f"{prod.name}.weight_folded", f"{prod.name}.bias_folded"
        for name, value in ((w_name, w_fold), (b_name, b_fold)):
            value.setflags(write=False)
            constants[name] = value
            tensors[name] = TensorInfo(name, value.shape, "float32")
        new = Node(
            prod.name, prod.op, (prod.inputs[0], w_name, b_name), bn.outputs, dict(prod.attrs)
        )
        nodes[by_name[prod.name]] = new
        nodes[by_name[bn.name]] = None
    return _rebuild(graph, [n for n in nodes if n is not None], constants, tensors)


def batch_norms_as_depthwise(graph: Graph) -> Graph:
    """Every batch_norm left after folding (one not after a conv2d / dense: DenseNet's and
    pre-activation ResNets' BN -> ReLU -> conv) on a 4-D tensor with constant statistics
    becomes the per-channel affine map it is, a depthwise 1x1 convolution with weights
    `gamma / sqrt(var + eps)` and bias `beta - mean * gamma / sqrt(var + eps)` (the float
    reference computes exactly this): an integer layer with per-channel weights, as TFLite's
    converter makes it a MUL and an ADD, rather than a float island between a dequantize and a
    quantize."""
    nodes = list(graph.nodes)
    constants = dict(graph.constants)
    tensors = dict(graph.tensors)
    for i, bn in enumerate(nodes):
        if (
            bn.op != "batch_norm"
            or len(graph.tensors[bn.inputs[0]].shape) != 4
            or not all(graph.is_constant(t) for t in bn.inputs[1:5])
        ):
            continue
        layout = bn.attr("data_layout", "NCHW")
        gamma, beta, mean, var = (constants[t].astype(np.float64) for t in bn.inputs[1:5])
        factor = gamma / np.sqrt(var + bn.attr("epsilon", 1e-5))
        c = len(factor)
        w_name, b_name = f"{bn.name}.weight_dw", f"{bn.name}.bias_dw"
        for name, value in (
            (w_name, factor.reshape(c, 1, 1, 1).astype(np.float32)),
            (b_name, (beta - mean * factor).astype(np.float32)),
        ):
            value.setflags(write=False)
            constants[name] = value
            tensors[name] = TensorInfo(name, value.shape, "float32")
        attrs = dict(
            strides=(1, 1), dilations=(1, 1), pads=(0, 0, 0, 0), groups=c, data_layout=layout
        )
        nodes[i] = Node(bn.name, "conv2d", (bn.inputs[0], w_name, b_name), bn.outputs, attrs)
    return _rebuild(graph, nodes, constants, tensors)


def pads_into_convolutions(graph: Graph) -> Graph:
    """A zero Pad of the spatial axes whose one consumer is a conv2d becomes part of that
    convolution's own padding (exporters write TensorFlow's asymmetric "same" padding this way:
    Hugging Face's MobileNet / EfficientNet ports have a Pad before every strided conv), as
    ONNX Runtime's optimizer and TFLite's converter fold it: the same values (quantized, the
    zero pads with the zero point either way) and one layer instead of two."""
    nodes = list(graph.nodes)
    by_name = {n.name: i for i, n in enumerate(nodes)}
    for pad in [n for n in graph.nodes if n.op == "pad"]:
        x = graph.tensors[pad.inputs[0]]
        consumers = graph.consumers(pad.outputs[0])
        if (
            len(x.shape) != 4
            or pad.attr("mode", "constant") != "constant"
            or float(pad.attr("value", 0.0) or 0.0) != 0.0
            or any(t for t in pad.inputs[1:])
            or not _single_consumer(graph, pad.outputs[0])
            or consumers[0].op != "conv2d"
            or consumers[0].inputs[0] != pad.outputs[0]
        ):
            continue
        conv = nodes[by_name[consumers[0].name]]
        layout = conv.attr("data_layout", "NCHW")
        ca, ha, wa = spatial_axes(layout)
        pads = [tuple(int(v) for v in p) for p in pad.attr("pads")]
        if any(pads[a] != (0, 0) for a in (0, ca)) or any(v < 0 for p in pads for v in p):
            continue
        t, left, b, r = conv.attr("pads", (0, 0, 0, 0))
        attrs = dict(conv.attrs)
        attrs["pads"] = (
            t + pads[ha][0],
            left + pads[wa][0],
            b + pads[ha][1],
            r + pads[wa][1],
        )
        nodes[by_name[conv.name]] = Node(
            conv.name, conv.op, (pad.inputs[0], *conv.inputs[1:]), conv.outputs, attrs
        )
        nodes[by_name[pad.name]] = None
    return _rebuild(
        graph, [n for n in nodes if n is not None], dict(graph.constants), dict(graph.tensors)
    )


def _activation_range(node: Node) -> tuple[float | None, float | None]:
    if node.op == "relu":
        return 0.0, None
    if node.op == "relu6":
        return 0.0, 6.0
    return node.attr("min"), node.attr("max")


def fuse_activations(graph: Graph) -> Graph:
    """Fuse relu / relu6 / clip into the conv2d, dense or add before them (act_min/act_max),
    as TFLite's fused activation functions do; the clamp then costs nothing after
    requantization (Jacob et al. 2018, §2.4)."""
    nodes = list(graph.nodes)
    by_name = {n.name: i for i, n in enumerate(nodes)}
    for act in [n for n in graph.nodes if n.op in ("relu", "relu6", "clip")]:
        prod = graph.producer(act.inputs[0])
        if (
            prod is None
            or prod.op not in _FUSIBLE_PRODUCERS
            or not _single_consumer(graph, act.inputs[0])
        ):
            continue
        current = nodes[by_name[prod.name]]
        lo, hi = _activation_range(act)
        old_lo, old_hi = current.attr("act_min"), current.attr("act_max")
        if old_lo is not None:
            lo = old_lo if lo is None else max(lo, old_lo)
        if old_hi is not None:
            hi = old_hi if hi is None else min(hi, old_hi)
        attrs = dict(current.attrs)
        attrs.update({k: v for k, v in (("act_min", lo), ("act_max", hi)) if v is not None})
        nodes[by_name[prod.name]] = Node(
            current.name, current.op, current.inputs, act.outputs, attrs
        )
        nodes[by_name[act.name]] = None
    return _rebuild(
        graph, [n for n in nodes if n is not None], dict(graph.constants), dict(graph.tensors)
    )


def channel_axis(node: Node, rank: int) -> int:
    """The channel axis of a node's activation tensor (used for per-channel statistics)."""
    if rank == 4:
        return spatial_axes(node.attr("data_layout", "NCHW"))[0]
    return rank - 1


def divisions_as_products(graph: Graph) -> Graph:
    """x / c for a constant c becomes x * (1 / c) (the reciprocal in float64, stored float32),
    as TFLite's converter writes it: a product has an integer kernel, a division none."""
    nodes = list(graph.nodes)
    constants = dict(graph.constants)
    tensors = dict(graph.tensors)
    for i, n in enumerate(nodes):
        if n.op != "div" or not graph.is_constant(n.inputs[1]) or graph.is_constant(n.inputs[0]):
            continue
        c = graph.constants[n.inputs[1]].astype(np.float64)
        if not np.all(c != 0):
            continue
        name = f"{n.name}.reciprocal"
        constants[name] = (1.0 / c).astype(np.float32)
        tensors[name] = TensorInfo(name, c.shape, "float32")
        nodes[i] = Node(n.name, "mul", (n.inputs[0], name), n.outputs, dict(n.attrs))
    return _rebuild(graph, nodes, constants, tensors)


def prepare_for_quantization(graph: Graph) -> Graph:
    """Zero pads folded into convolutions, BN folding (the rest as depthwise 1x1
    convolutions), activation fusion, divisions by constants as products: the float graph the
    quantizer calibrates."""
    g = batch_norms_as_depthwise(fold_batch_norm(pads_into_convolutions(graph)))
    return divisions_as_products(fuse_activations(g))
