"""Operator definitions: the supported set, shape inference, MAC and parameter counts, and
how accelsim's quantizer treats each operator.

Each operator is one `OpDef` in `OPS`. Shape rules take the input `TensorInfo`s (None for an
omitted optional input), the node's attributes and the constant values the rule may need, and
return the output shapes.

Which operators run in integer
------------------------------
The quantization decision of an operator is made here, once (`OpDef.quant`, `int_bits`,
`index_inputs`, `fixed_output`), and read by the quantizer (`accelsim.quant.ptq`):

- "int": an integer kernel that requantizes to its own output parameters;
- "same": data movement; the output shares the input's parameters (TFLite's same-scale
  operators), constants it moves (an embedding table, a class token) take the same ones;
- "float": runs in float between an explicit dequantize and quantize;
- "index": index, mask and type arithmetic on unquantized integer, bool or float tensors.

An "int" or "same" operator is integer only for activation widths in `int_bits` (lo, hi):
narrower activations are widened to `lo` bits, wider ones run the operator in float.

The choices follow Wu et al. 2020 ("Integer quantization for deep learning inference"):
every linear layer (conv2d, dense, matmul of activation x weight and activation x activation)
computes on integers; the other operators are integer where an integer kernel with a known
reference exists (TFLite's, whose results the reference executor reproduces bit for bit),
float otherwise:

| operator | rule | integer at | why |
|---|---|---|---|
| conv2d, dense, matmul, add, sub, mul, mean, avg_pool, global_avg_pool | int | 2-16 bits | the linear layers and TFLite's integer elementwise and pooling kernels |
| sigmoid, tanh, softmax | int, fixed output | 8, 16 bits | TFLite's LUT (8-bit) and table / LUT (16-bit) kernels; outputs in [0, 1) or [-1, 1) with TFLite's fixed scale (2^-8 from the minimum, 2^-7 about 0; 2^-15 about 0 at 16 bits) |
| gelu | int | 8, 16 bits | TFLite's 8-bit and 16-bit (LUTPopulate<int16_t>) lookup tables |
| hard_swish | int | 8 bits | TFLite's fixed-point kernel; it has no 16x8 kernel, so w8a16 keeps it in float, as the 16x8 converter does |
| hard_sigmoid | int | 8 bits | an 8-bit lookup table built as TFLite builds its tables (TFLite writes it as ADD, RELU6, MUL) |
| reshape, flatten, squeeze, transpose, concat, pad (all modes), slice, gather, gather_elements, tile, resize, depth_to_space, max_pool, relu, relu6, clip | same | 2-16 bits | copies (bilinear resize interpolates integers); one representation per group |
| layer_norm, batch_norm | float | - | no integer kernel in TFLite or ONNX Runtime; Wu et al. keep the normalisation in float |
| div | float | - | no integer kernel; a division by a constant becomes a product first (quant.transforms) |
| erf, neg, rsqrt, sqrt, pow, squared_difference, where | float | - | appear in decomposed forms; TFLite-imported graphs that carry them as integers run TFLite's kernels for them |
| cast, less, greater, equal | index | - | index and mask arithmetic, never quantized |

An additive attention mask ((1 - mask) * -1e4 added to the scores) would stretch the sum's
calibrated range over the mask constant and crush the scores: the quantizer calibrates that sum
to the scores' range widened to `ptq.MASK_DEPTH` below their maximum, so masked positions
saturate and softmax maps them to (nearly) zero.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from accelsim.core.errors import ShapeError

if TYPE_CHECKING:  # annotations only: the graph IR uses this module, not the other way round
    from accelsim.model.graph import Graph, Node, TensorInfo

Shape = tuple[int, ...]


QUANT_RULES = ("int", "same", "float", "index")


@dataclass(frozen=True)
class OpDef:
    name: str
    infer: Callable[[Node, Sequence[TensorInfo | None]], list[Shape]]
    # indices of inputs that are learnable parameters when constant (for parameter counts)
    param_inputs: tuple[int, ...] = ()
    doc: str = ""
    quant: str = "int"  # one of QUANT_RULES
    int_bits: tuple[int, int] = (2, 16)  # activation widths with an integer kernel
    # inputs that are indices or conditions, never quantized (gather's indices, where's mask)
    index_inputs: tuple[int, ...] = ()
    # fixed output parameters of a bounded function (TFLite fixes them for its kernels):
    # (bits, signed, symmetric) -> (scale, zero point)
    fixed_output: Callable[[int, bool, bool], tuple[float, int]] | None = None

    def __post_init__(self) -> None:
        assert self.quant in QUANT_RULES, self.quant


def unit_interval_output(bits: int, signed: bool, symmetric: bool) -> tuple[float, int]:
    """Output parameters of a function into [0, 1] (sigmoid, softmax), as TFLite fixes them:
    steps of 2^-bits from the integer minimum (int8: 1/256, -128), or with a zero point of 0
    steps of 2^-(bits-1) (int16: 1/32768, 0; the 16x8 kernels' format)."""
    if symmetric and signed:
        return 2.0 ** -(bits - 1), 0
    return 2.0**-bits, -(1 << (bits - 1)) if signed else 0


def symmetric_unit_output(bits: int, signed: bool, symmetric: bool) -> tuple[float, int]:
    """Output parameters of a function into [-1, 1] (tanh): steps of 2^-(bits-1) about the
    middle of the integer range (int8: 1/128, 0; int16: 1/32768, 0)."""
    return 2.0 ** -(bits - 1), 0 if signed else 1 << (bits - 1)


def _err(node: Node, msg: str) -> ShapeError:
    return ShapeError(f"node '{node.name}' ({node.op}): {msg}")


def spatial_axes(layout: str) -> tuple[int, int, int]:
    """(channel axis, height axis, width axis) of a 4-D tensor in `layout`."""
    if layout == "NCHW":
        return 1, 2, 3
    if layout == "NHWC":
        return 3, 1, 2
    raise ShapeError(f"data_layout must be NCHW or NHWC, found '{layout}'")


def conv_out_dim(size: int, k: int, stride: int, dilation: int, pad_a: int, pad_b: int) -> int:
    eff = (k - 1) * dilation + 1
    return (size + pad_a + pad_b - eff) // stride + 1


def _make_nd(shape_c: int, h: int, w: int, n: int, layout: str) -> Shape:
    return (n, shape_c, h, w) if layout == "NCHW" else (n, h, w, shape_c)


def _conv2d(node: Node, ins: Sequence[TensorInfo | None]) -> list[Shape]:
    x, w = ins[0], ins[1]
    if len(x.shape) != 4 or len(w.shape) != 4:
        raise _err(node, f"expected 4-D input and weights, found {x.shape} and {w.shape}")
    layout = node.attr("data_layout", "NCHW")
    ca, ha, wa = spatial_axes(layout)
    groups = node.attr("groups", 1)
    cin = x.shape[ca]
    cout, cin_g, kh, kw = w.shape
    if cin != cin_g * groups:
        raise _err(node, f"input has {cin} channels but weights expect {cin_g} x {groups} groups")
    if cout % groups:
        raise _err(node, f"{cout} output channels do not divide into {groups} groups")
    sh, sw = node.attr("strides", (1, 1))
    dh, dw = node.attr("dilations", (1, 1))
    pt, pl, pb, pr = node.attr("pads", (0, 0, 0, 0))
    oh = conv_out_dim(x.shape[ha], kh, sh, dh, pt, pb)
    ow = conv_out_dim(x.shape[wa], kw, sw, dw, pl, pr)
    if oh <= 0 or ow <= 0:
        raise _err(node, f"kernel {kh}x{kw} does not fit input {x.shape}")
    if len(ins) > 2 and ins[2] is not None and ins[2].shape != (cout,):
        raise _err(node, f"bias shape {ins[2].shape}, expected ({cout},)")
    return [_make_nd(cout, oh, ow, x.shape[0], layout)]


def _pool(node: Node, ins: Sequence[TensorInfo | None]) -> list[Shape]:
    x = ins[0]
    if len(x.shape) != 4:
        raise _err(node, f"expected a 4-D input, found {x.shape}")
    layout = node.attr("data_layout", "NCHW")
    ca, ha, wa = spatial_axes(layout)
    kh, kw = node.attr("kernel")
    sh, sw = node.attr("strides", (1, 1))
    pt, pl, pb, pr = node.attr("pads", (0, 0, 0, 0))
    if node.attr("ceil_mode", False):
        oh = -(-(x.shape[ha] + pt + pb - kh) // sh) + 1
        ow = -(-(x.shape[wa] + pl + pr - kw) // sw) + 1
    else:
        oh = conv_out_dim(x.shape[ha], kh, sh, 1, pt, pb)
        ow = conv_out_dim(x.shape[wa], kw, sw, 1, pl, pr)
    if oh <= 0 or ow <= 0:
        raise _err(node, f"window {kh}x{kw} does not fit input {x.shape}")
    return [_make_nd(x.shape[ca], oh, ow, x.shape[0], layout)]


def _global_pool(node: Node, ins: Sequence[TensorInfo | None]) -> list[Shape]:
    x = ins[0]
    ca, _, _ = spatial_axes(node.attr("data_layout", "NCHW"))
    if node.attr("keepdims", True):
        return [_make_nd(x.shape[ca], 1, 1, x.shape[0], node.attr("data_layout", "NCHW"))]
    return [(x.shape[0], x.shape[ca])]


def _dense(node: Node, ins: Sequence[TensorInfo | None]) -> list[Shape]:
    x, w = ins[0], ins[1]
    if len(w.shape) != 2:
        raise _err(node, f"weights must be 2-D (out, in), found {w.shape}")
    n, k = w.shape
    if node.attr("keep_num_dims", True) and x.shape[-1] == k:
        return [tuple(x.shape[:-1]) + (n,)]
    # TFLite flattens leading dims when the last dim does not match
    total = int(np.prod(x.shape))
    if total % k:
        raise _err(node, f"input {x.shape} cannot be viewed as rows of {k} features")
    return [(total // k, n)]


def _broadcast(node: Node, shapes: Sequence[Shape]) -> Shape:
    try:
        return tuple(int(d) for d in np.broadcast_shapes(*shapes))
    except ValueError:
        raise _err(node, f"operand shapes {list(shapes)} do not broadcast") from None


def _matmul(node: Node, ins: Sequence[TensorInfo | None]) -> list[Shape]:
    a, b = list(ins[0].shape), list(ins[1].shape)
    if node.attr("transpose_a", False):
        a[-2], a[-1] = a[-1], a[-2]
    if node.attr("transpose_b", False):
        b[-2], b[-1] = b[-1], b[-2]
    if len(a) < 2 or len(b) < 2:
        raise _err(node, f"matmul needs operands of rank >= 2, found {a} and {b}")
    if a[-1] != b[-2]:
        raise _err(node, f"inner dimensions differ: {ins[0].shape} x {ins[1].shape}")
    batch = _broadcast(node, [tuple(a[:-2]), tuple(b[:-2])])
    return [batch + (a[-2], b[-1])]


def _elementwise(node: Node, ins: Sequence[TensorInfo | None]) -> list[Shape]:
    return [_broadcast(node, [t.shape for t in ins if t is not None])]


def _same(node: Node, ins: Sequence[TensorInfo | None]) -> list[Shape]:
    return [ins[0].shape]


def _concat(node: Node, ins: Sequence[TensorInfo | None]) -> list[Shape]:
    rank = len(ins[0].shape)
    axis = node.attr("axis") % rank
    out = list(ins[0].shape)
    for t in ins[1:]:
        if len(t.shape) != rank or any(t.shape[i] != out[i] for i in range(rank) if i != axis):
            raise _err(node, f"inputs {[t.shape for t in ins]} differ outside axis {axis}")
        out[axis] += t.shape[axis]
    return [tuple(out)]


def _reshape(node: Node, ins: Sequence[TensorInfo | None]) -> list[Shape]:
    target = list(node.attr("shape"))
    size = int(np.prod(ins[0].shape))
    for i, d in enumerate(target):
        if d == 0 and node.attr("allowzero", 0) == 0:
            target[i] = ins[0].shape[i]
    if -1 in target:
        known = int(np.prod([d for d in target if d != -1]))
        if known == 0 or size % known:
            raise _err(node, f"cannot reshape {ins[0].shape} to {node.attr('shape')}")
        target[target.index(-1)] = size // known
    if int(np.prod(target)) != size:
        raise _err(node, f"cannot reshape {ins[0].shape} ({size} elements) to {tuple(target)}")
    return [tuple(target)]


def _flatten(node: Node, ins: Sequence[TensorInfo | None]) -> list[Shape]:
    shape = ins[0].shape
    axis = node.attr("axis", 1) % (len(shape) + 1) if shape else 0
    return [(int(np.prod(shape[:axis])), int(np.prod(shape[axis:])))]


def _pad(node: Node, ins: Sequence[TensorInfo | None]) -> list[Shape]:
    pads = node.attr("pads")  # ((before, after), ...) per dim
    shape = ins[0].shape
    if len(pads) != len(shape):
        raise _err(node, f"{len(pads)} pad pairs for a rank-{len(shape)} input")
    return [tuple(d + a + b for d, (a, b) in zip(shape, pads))]


def _transpose(node: Node, ins: Sequence[TensorInfo | None]) -> list[Shape]:
    perm = node.attr("perm")
    shape = ins[0].shape
    if sorted(perm) != list(range(len(shape))):
        raise _err(node, f"perm {perm} is not a permutation of {len(shape)} axes")
    return [tuple(shape[p] for p in perm)]


def _mean(node: Node, ins: Sequence[TensorInfo | None]) -> list[Shape]:
    shape = ins[0].shape
    axes = {a % len(shape) for a in node.attr("axes")}
    if node.attr("keepdims", True):
        return [tuple(1 if i in axes else d for i, d in enumerate(shape))]
    return [tuple(d for i, d in enumerate(shape) if i not in axes)]


def _squeeze(node: Node, ins: Sequence[TensorInfo | None]) -> list[Shape]:
    shape = ins[0].shape
    axes = node.attr("axes")
    if axes is None:
        return [tuple(d for d in shape if d != 1)]
    axes = {a % len(shape) for a in axes}
    return [tuple(d for i, d in enumerate(shape) if i not in axes)]


def _where(node: Node, ins: Sequence[TensorInfo | None]) -> list[Shape]:
    return [_broadcast(node, [t.shape for t in ins if t is not None])]


def _slice(node: Node, ins: Sequence[TensorInfo | None]) -> list[Shape]:
    """`starts` / `ends` / `steps` per axis, already resolved against the input's shape (an end
    of -1 with a negative step runs to the beginning, as Python's `range`)."""
    shape = ins[0].shape
    starts, ends, steps = node.attr("starts"), node.attr("ends"), node.attr("steps")
    if not (len(starts) == len(ends) == len(steps) == len(shape)):
        raise _err(node, f"starts/ends/steps need {len(shape)} entries each")
    out = []
    for d, (b, e, st) in enumerate(zip(starts, ends, steps)):
        if st == 0 or not 0 <= b <= shape[d]:
            raise _err(node, f"axis {d}: start {b} / step {st} do not fit dimension {shape[d]}")
        out.append(len(range(b, e, st)))
    return [tuple(out)]


def _gather(node: Node, ins: Sequence[TensorInfo | None]) -> list[Shape]:
    data, idx = ins[0].shape, ins[1].shape
    axis = node.attr("axis", 0) % len(data)
    return [tuple(data[:axis]) + tuple(idx) + tuple(data[axis + 1 :])]


def _gather_elements(node: Node, ins: Sequence[TensorInfo | None]) -> list[Shape]:
    data, idx = ins[0].shape, ins[1].shape
    if len(data) != len(idx):
        raise _err(node, f"data {data} and indices {idx} differ in rank")
    return [tuple(idx)]


def _tile(node: Node, ins: Sequence[TensorInfo | None]) -> list[Shape]:
    reps = node.attr("repeats")
    shape = ins[0].shape
    if len(reps) != len(shape) or any(r < 1 for r in reps):
        raise _err(node, f"repeats {reps} do not fit a rank-{len(shape)} input")
    return [tuple(d * r for d, r in zip(shape, reps))]


def _resize(node: Node, ins: Sequence[TensorInfo | None]) -> list[Shape]:
    x = ins[0]
    if len(x.shape) != 4:
        raise _err(node, f"expected a 4-D input, found {x.shape}")
    layout = node.attr("data_layout", "NCHW")
    ca, _, _ = spatial_axes(layout)
    oh, ow = node.attr("size")
    if oh < 1 or ow < 1:
        raise _err(node, f"output size {(oh, ow)} must be positive")
    return [_make_nd(x.shape[ca], oh, ow, x.shape[0], layout)]


def _depth_to_space(node: Node, ins: Sequence[TensorInfo | None]) -> list[Shape]:
    x = ins[0]
    b = node.attr("blocksize")
    layout = node.attr("data_layout", "NCHW")
    ca, ha, wa = spatial_axes(layout)
    if len(x.shape) != 4 or x.shape[ca] % (b * b):
        raise _err(node, f"{x.shape} has no channel count divisible by blocksize^2 = {b * b}")
    return [_make_nd(x.shape[ca] // (b * b), x.shape[ha] * b, x.shape[wa] * b, x.shape[0], layout)]


OPS: dict[str, OpDef] = {
    d.name: d
    for d in [
        OpDef(
            "conv2d",
            _conv2d,
            (1, 2),
            "2-D convolution (groups, stride, dilation, padding); "
            "depthwise when groups == input channels",
        ),
        OpDef("dense", _dense, (1, 2), "fully connected: y = x W^T + b, W is (out, in)"),
        OpDef("matmul", _matmul, (0, 1), "batched matrix multiply with numpy broadcasting"),
        OpDef("add", _elementwise, (0, 1), "elementwise add with broadcasting"),
        OpDef("sub", _elementwise, (0, 1), "elementwise subtract with broadcasting"),
        OpDef("mul", _elementwise, (0, 1), "elementwise multiply with broadcasting"),
        OpDef(
            "div",
            _elementwise,
            (0, 1),
            "elementwise divide with broadcasting (the quantizer multiplies by the reciprocal "
            "of a constant divisor instead)",
            quant="float",
        ),
        OpDef(
            "squared_difference",
            _elementwise,
            (),
            "(a - b)^2 with broadcasting (TFLite's layer-norm decomposition)",
            quant="float",
        ),
        OpDef("concat", _concat, (), "concatenate along `axis`", quant="same"),
        OpDef("max_pool", _pool, (), "max pooling", quant="same"),
        OpDef("avg_pool", _pool, (), "average pooling"),
        OpDef("global_avg_pool", _global_pool, (), "mean over the spatial axes"),
        OpDef("mean", _mean, (), "mean over `axes`"),
        OpDef("relu", _same, (), "max(x, 0)", quant="same"),
        OpDef("relu6", _same, (), "min(max(x, 0), 6)", quant="same"),
        OpDef("clip", _same, (), "clamp to [min, max]", quant="same"),
        OpDef(
            "sigmoid",
            _same,
            (),
            "logistic 1 / (1 + exp(-x))",
            int_bits=(8, 16),
            fixed_output=unit_interval_output,
        ),
        OpDef(
            "tanh",
            _same,
            (),
            "hyperbolic tangent",
            int_bits=(8, 16),
            fixed_output=symmetric_unit_output,
        ),
        OpDef(
            "hard_sigmoid",
            _same,
            (),
            "max(0, min(1, alpha * x + beta)) (`alpha`, `beta`)",
            int_bits=(8, 8),
        ),
        OpDef("hard_swish", _same, (), "x * relu6(x + 3) / 6", int_bits=(8, 8)),
        OpDef(
            "gelu", _same, (), "GELU (exact erf form, or `approximate`='tanh')", int_bits=(8, 16)
        ),
        OpDef("erf", _same, (), "the error function", quant="float"),
        OpDef("neg", _same, (), "-x", quant="float"),
        OpDef("rsqrt", _same, (), "1 / sqrt(x)", quant="float"),
        OpDef("sqrt", _same, (), "square root", quant="float"),
        OpDef("pow", _elementwise, (), "x ** y with broadcasting", quant="float"),
        OpDef("reshape", _reshape, (), "reshape to a static `shape`", quant="same"),
        OpDef("flatten", _flatten, (), "flatten to 2-D at `axis`", quant="same"),
        OpDef("squeeze", _squeeze, (), "drop size-1 axes", quant="same"),
        OpDef(
            "softmax",
            _same,
            (),
            "softmax along `axis` (with TFLite's `beta`)",
            int_bits=(8, 16),
            fixed_output=unit_interval_output,
        ),
        OpDef(
            "pad",
            _pad,
            (),
            "padding, `pads` = ((before, after), ...); `mode` constant (with `value`), "
            "reflect, symmetric or edge",
            quant="same",
        ),
        OpDef("layer_norm", _same, (1, 2), "layer normalisation over the last axis", quant="float"),
        OpDef(
            "batch_norm",
            _same,
            (1, 2),
            "inference batch norm (inputs x, gamma, beta, mean, var)",
            quant="float",
        ),
        OpDef("transpose", _transpose, (), "permute axes by `perm`", quant="same"),
        OpDef(
            "slice",
            _slice,
            (),
            "strided slice: `starts`, `ends`, `steps` per axis, resolved against the shape",
            quant="same",
        ),
        OpDef(
            "gather",
            _gather,
            (0,),
            "take `indices` (input 1, run-time or constant) along `axis` of the data "
            "(embedding lookups, a class token)",
            quant="same",
            index_inputs=(1,),
        ),
        OpDef(
            "gather_elements",
            _gather_elements,
            (),
            "ONNX GatherElements along `axis`",
            quant="same",
            index_inputs=(1,),
        ),
        OpDef("tile", _tile, (), "repeat the input `repeats` times per axis", quant="same"),
        OpDef(
            "resize",
            _resize,
            (),
            "spatial resize to `size` (oh, ow): `mode` nearest / linear, "
            "`coordinate_transformation_mode`, `nearest_mode`",
            quant="same",
        ),
        OpDef(
            "depth_to_space",
            _depth_to_space,
            (),
            "move `blocksize`^2 channel blocks into space (`mode` DCR or CRD)",
            quant="same",
        ),
        OpDef(
            "where",
            _where,
            (),
            "select x (input 1) where the condition (input 0) holds, else y (input 2)",
            quant="float",
            index_inputs=(0,),
        ),
        OpDef("cast", _same, (), "convert to the output's dtype", quant="index"),
        OpDef("less", _elementwise, (), "a < b (bool)", quant="index"),
        OpDef("greater", _elementwise, (), "a > b (bool)", quant="index"),
        OpDef("equal", _elementwise, (), "a == b (bool)", quant="index"),
        OpDef("greater_equal", _elementwise, (), "a >= b (bool)", quant="index"),
        OpDef("logical_and", _elementwise, (), "a and b (bool; attention masks)", quant="index"),
        OpDef("quantize", _same, (), "float -> integer (or integer -> integer requantize)"),
        OpDef("dequantize", _same, (), "integer -> float"),
    ]
}

SUPPORTED_OPS = tuple(sorted(OPS))

# Operators that do multiply-accumulate work, counted as MACs.
MAC_OPS = ("conv2d", "dense", "matmul")


def infer_shapes(node: Node, inputs: Sequence[TensorInfo | None]) -> list[Shape]:
    opdef = OPS.get(node.op)
    if opdef is None:
        raise ShapeError(
            f"node '{node.name}': unsupported op '{node.op}'; supported: {', '.join(SUPPORTED_OPS)}"
        )
    try:
        return opdef.infer(node, inputs)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise _err(node, f"bad attributes or inputs ({type(exc).__name__}: {exc})") from None


def node_macs(graph: Graph, node: Node) -> int:
    """Multiply-accumulates of a node (conv: out elements x (Cin/groups) x kh x kw)."""
    if node.op == "conv2d":
        w = graph.tensors[node.inputs[1]]
        out = graph.tensors[node.outputs[0]]
        return out.size * w.shape[1] * w.shape[2] * w.shape[3]
    if node.op == "dense":
        w = graph.tensors[node.inputs[1]]
        return graph.tensors[node.outputs[0]].size * w.shape[1]
    if node.op == "matmul":
        a = graph.tensors[node.inputs[0]].shape
        k = a[-2] if node.attr("transpose_a", False) else a[-1]
        return graph.tensors[node.outputs[0]].size * k
    return 0


def node_params(graph: Graph, node: Node) -> int:
    """Learnable parameters held in constants (BN running statistics are not counted).

    A scalar constant of an elementwise op (attention's 1/sqrt(d) scale, the 0.5 / 1.0 / eps
    of a decomposed GELU or LayerNorm) is a fixed hyperparameter, not a parameter.
    """
    opdef = OPS.get(node.op)
    if opdef is None:
        return 0
    total = 0
    if node.op == "concat":  # a learned token joined to the sequence (ViT's class token)
        total += sum(
            graph.tensors[t].size
            for t in node.inputs
            if graph.is_constant(t) and graph.tensors[t].is_float
        )
    for i in opdef.param_inputs:
        if i < len(node.inputs) and node.inputs[i] and graph.is_constant(node.inputs[i]):
            size = graph.tensors[node.inputs[i]].size
            if node.op in ("add", "sub", "mul") and size == 1:
                continue
            total += size
    return total


def activation_bounds(attrs: Mapping[str, Any]) -> tuple[float, float]:
    """The real-valued clamp of a fused activation (-inf, inf when there is none)."""
    lo = attrs.get("act_min")
    hi = attrs.get("act_max")
    return (-np.inf if lo is None else float(lo), np.inf if hi is None else float(hi))


def op_class(graph: Graph, node: Node) -> str:
    """Finer kind used by schedules and reports: 'depthwise_conv2d' for depthwise convs."""
    if node.op == "conv2d":
        w = graph.tensors[node.inputs[1]]
        groups = node.attr("groups", 1)
        if groups > 1 and w.shape[1] == 1:  # one input channel per group
            return "depthwise_conv2d"
    return node.op
