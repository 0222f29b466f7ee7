"""Float kernels: the float executor. Computed in float64, stored in the output's dtype."""

from __future__ import annotations

import math

import numpy as np

from accelsim.core.qparams import NUMPY_DTYPE
from accelsim.model.ops import activation_bounds, spatial_axes
from accelsim.ref import primitives as P
from accelsim.ref.registry import KernelCall, kernel

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _act(c: KernelCall, y: np.ndarray) -> np.ndarray:
    lo, hi = activation_bounds(c.node.attrs)
    if np.isfinite(lo) or np.isfinite(hi):
        y = np.clip(y, lo, hi)
    return y


def _f(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


@kernel("conv2d", "fp")
def conv2d(c: KernelCall):
    x, w = c.args[0], c.args[1]
    y = P.conv2d(_f(x), _f(w), c.node.attrs)
    if len(c.args) > 2 and c.args[2] is not None:
        ca, _, _ = spatial_axes(c.attr("data_layout", "NCHW"))
        shape = [1, 1, 1, 1]
        shape[ca] = -1
        y = y + _f(c.args[2]).reshape(shape)
    return [_act(c, y)]


@kernel("dense", "fp")
def dense(c: KernelCall):
    x, w = _f(c.args[0]), _f(c.args[1])
    x = x.reshape(-1, w.shape[1]) if x.shape[-1] != w.shape[1] else x
    y = x @ w.T
    if len(c.args) > 2 and c.args[2] is not None:
        y = y + _f(c.args[2])
    return [_act(c, y.reshape(c.out_info[0].shape))]


@kernel("matmul", "fp")
def matmul(c: KernelCall):
    a, b = _f(c.args[0]), _f(c.args[1])
    if c.attr("transpose_a", False):
        a = np.swapaxes(a, -1, -2)
    if c.attr("transpose_b", False):
        b = np.swapaxes(b, -1, -2)
    return [_act(c, np.matmul(a, b))]


@kernel("add", "fp")
def add(c: KernelCall):
    return [_act(c, _f(c.args[0]) + _f(c.args[1]))]


@kernel("sub", "fp")
def sub(c: KernelCall):
    return [_act(c, _f(c.args[0]) - _f(c.args[1]))]


@kernel("mul", "fp")
def mul(c: KernelCall):
    return [_act(c, _f(c.args[0]) * _f(c.args[1]))]


@kernel("concat", "fp")
def concat(c: KernelCall):
    return [np.concatenate([_f(a) for a in c.args], axis=c.attr("axis"))]


@kernel("max_pool", "fp")
def max_pool(c: KernelCall):
    win = P.pool_windows(_f(c.args[0]), c.node.attrs, -np.inf)
    return [_act(c, P.from_nchw(win.max(axis=(-1, -2)), c.attr("data_layout", "NCHW")))]


@kernel("avg_pool", "fp")
def avg_pool(c: KernelCall):
    layout = c.attr("data_layout", "NCHW")
    win = P.pool_windows(_f(c.args[0]), c.node.attrs, 0.0)
    total = win.sum(axis=(-1, -2))
    if c.attr("count_include_pad", False):
        y = total / P.pool_counts_with_pads(c.args[0].shape, c.node.attrs)
    else:
        y = total / P.pool_counts(c.args[0].shape, c.node.attrs)
    return [_act(c, P.from_nchw(y, layout))]


@kernel("global_avg_pool", "fp")
def global_avg_pool(c: KernelCall):
    axes = P.spatial_reduce_axes(c.attr("data_layout", "NCHW"))
    y = _f(c.args[0]).mean(axis=axes, keepdims=True)
    return [y.reshape(c.out_info[0].shape)]


@kernel("mean", "fp")
def mean(c: KernelCall):
    y = _f(c.args[0]).mean(axis=tuple(c.attr("axes")), keepdims=True)
    return [y.reshape(c.out_info[0].shape)]


@kernel("relu", "fp")
def relu(c: KernelCall):
    return [np.maximum(_f(c.args[0]), 0.0)]


@kernel("relu6", "fp")
def relu6(c: KernelCall):
    return [np.clip(_f(c.args[0]), 0.0, 6.0)]


@kernel("clip", "fp")
def clip(c: KernelCall):
    lo, hi = c.attr("min"), c.attr("max")
    return [np.clip(_f(c.args[0]), -np.inf if lo is None else lo, np.inf if hi is None else hi)]


def _reshape_like(c: KernelCall):
    return [np.reshape(c.args[0], c.out_info[0].shape)]


for _op in ("reshape", "flatten", "squeeze"):
    kernel(_op, "fp", "int")(_reshape_like)


@kernel("transpose", "fp", "int")
def transpose(c: KernelCall):
    return [np.transpose(c.args[0], c.attr("perm"))]


@kernel("softmax", "fp")
def softmax(c: KernelCall):
    x = _f(c.args[0]) * c.attr("beta", 1.0)
    axis = c.attr("axis", -1)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return [e / e.sum(axis=axis, keepdims=True)]


@kernel("pad", "fp")
def pad(c: KernelCall):
    return [
        P.pad_array(_f(c.args[0]), c.attr("pads"), c.attr("mode", "constant"), c.attr("value", 0.0))
    ]


@kernel("layer_norm", "fp")
def layer_norm(c: KernelCall):
    x = _f(c.args[0])
    axis = c.attr("axis", -1)
    mu = x.mean(axis=axis, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=axis, keepdims=True)
    y = (x - mu) / np.sqrt(var + c.attr("epsilon", 1e-5))
    if len(c.args) > 1 and c.args[1] is not None:
        y = y * _f(c.args[1])
    if len(c.args) > 2 and c.args[2] is not None:
        y = y + _f(c.args[2])
    return [y]


@kernel("batch_norm", "fp")
def batch_norm(c: KernelCall):
    x = _f(c.args[0])
    gamma, beta, mu, var = (_f(a) for a in c.args[1:5])
    ca, _, _ = spatial_axes(c.attr("data_layout", "NCHW")) if x.ndim == 4 else (1, 0, 0)
    shape = [1] * x.ndim
    shape[ca] = -1
    scale = gamma / np.sqrt(var + c.attr("epsilon", 1e-5))
    return [x * scale.reshape(shape) + (beta - mu * scale).reshape(shape)]


@kernel("gelu", "fp")
def gelu(c: KernelCall):
    x = _f(c.args[0])
    if c.attr("approximate", "none") == "tanh":
        return [0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))]
    return [0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))]


@kernel("div", "fp")
def div(c: KernelCall):
    with np.errstate(divide="ignore", invalid="ignore"):
        return [_act(c, _f(c.args[0]) / _f(c.args[1]))]


@kernel("squared_difference", "fp")
def squared_difference(c: KernelCall):
    return [np.square(_f(c.args[0]) - _f(c.args[1]))]


def sigmoid_f64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


def hard_swish_f64(x: np.ndarray) -> np.ndarray:
    return x * np.clip(x + 3.0, 0.0, 6.0) / 6.0


def hard_sigmoid_f64(x: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    return np.clip(alpha * x + beta, 0.0, 1.0)


def gelu_f64(x: np.ndarray, approximate: str = "none") -> np.ndarray:
    if approximate == "tanh":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


@kernel("sigmoid", "fp")
def sigmoid(c: KernelCall):
    return [sigmoid_f64(_f(c.args[0]))]


@kernel("tanh", "fp")
def tanh(c: KernelCall):
    return [np.tanh(_f(c.args[0]))]


@kernel("hard_sigmoid", "fp")
def hard_sigmoid(c: KernelCall):
    return [hard_sigmoid_f64(_f(c.args[0]), c.attr("alpha", 0.2), c.attr("beta", 0.5))]


@kernel("hard_swish", "fp")
def hard_swish(c: KernelCall):
    x = c.args[0]
    if x.dtype == np.float32:
        # x * min(6, max(0, x + 3)) / 6 with every operation rounded to float32, as TFLite's
        # float kernel computes it (16x8 models keep hard-swish in float)
        f32 = np.float32
        t = np.clip(x + f32(3.0), f32(0.0), f32(6.0)).astype(f32)
        return [((x * t).astype(f32) / f32(6.0)).astype(f32)]
    return [hard_swish_f64(_f(x))]


@kernel("erf", "fp")
def erf(c: KernelCall):
    return [_erf(_f(c.args[0]))]


@kernel("neg", "fp")
def neg(c: KernelCall):
    return [-_f(c.args[0])]


@kernel("rsqrt", "fp")
def rsqrt(c: KernelCall):
    # 1 / sqrt(x) as two float32 operations, as TFLite computes it (each rounds once)
    x = np.asarray(c.args[0], np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        return [np.float32(1.0) / np.sqrt(x)]


@kernel("sqrt", "fp")
def sqrt(c: KernelCall):
    with np.errstate(invalid="ignore"):
        return [np.sqrt(_f(c.args[0]))]


@kernel("pow", "fp")
def power(c: KernelCall):
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return [np.power(_f(c.args[0]), _f(c.args[1]))]


@kernel("where", "fp")
def where(c: KernelCall):
    return [np.where(np.asarray(c.args[0]).astype(bool), c.args[1], c.args[2])]


@kernel("cast", "fp")
def cast(c: KernelCall):
    # float -> integer truncates toward zero (C casts; ONNX Cast and TFLite CAST alike)
    return [np.asarray(c.args[0]).astype(NUMPY_DTYPE[c.out_info[0].dtype])]


@kernel("less", "fp")
def less(c: KernelCall):
    return [np.less(c.args[0], c.args[1])]


@kernel("greater", "fp")
def greater(c: KernelCall):
    return [np.greater(c.args[0], c.args[1])]


@kernel("equal", "fp")
def equal(c: KernelCall):
    return [np.equal(c.args[0], c.args[1])]


@kernel("greater_equal", "fp")
def greater_equal(c: KernelCall):
    return [np.greater_equal(c.args[0], c.args[1])]


@kernel("logical_and", "fp")
def logical_and(c: KernelCall):
    return [np.logical_and(c.args[0], c.args[1])]


# Data movement: the same copy of values in every domain (integer domains requantize in their
# own arithmetic when an operator's output parameters differ from its input's).
def move(c: KernelCall, args) -> np.ndarray:
    op, a = c.node.op, c.node.attrs
    if op == "slice":
        return P.slice_array(args[0], a)
    if op == "gather":
        return P.gather_array(args[0], args[1], a)
    if op == "gather_elements":
        return P.gather_elements_array(args[0], args[1], a)
    if op == "tile":
        return np.tile(args[0], a["repeats"])
    if op == "depth_to_space":
        return P.depth_to_space_array(args[0], a)
    if op == "resize" and a.get("mode", "nearest") == "nearest":
        return P.resize_nearest(args[0], a)
    raise AssertionError(op)


MOVEMENT_OPS = ("slice", "gather", "gather_elements", "tile", "depth_to_space")


for _op in MOVEMENT_OPS:
    kernel(_op, "fp")(lambda c: [move(c, c.args)])


@kernel("resize", "fp")
def resize(c: KernelCall):
    if c.attr("mode", "nearest") == "nearest":
        return [move(c, c.args)]
    return [P.resize_linear_float(c.args[0], c.node.attrs)]
