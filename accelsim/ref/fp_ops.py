"""Float kernels: the float executor. Computed in float64, stored in the output's dtype."""

from __future__ import annotations

import math

import numpy as np

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
        kh, kw = c.attr("kernel")
        y = total / (kh * kw)
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
    return [np.pad(_f(c.args[0]), c.attr("pads"), constant_values=c.attr("value", 0.0))]


@kernel("layer_norm", "fp")
def layer_norm(c: KernelCall):
    x = _f(c.args[0])
    axis = c.attr("axis", -1)
    mu = x.mean(axis=axis, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=axis, keepdims=True)
    y = (x - mu) / np.sqrt(var + c.attr("epsilon", 1e-5))
    return [y * _f(c.args[1]) + (_f(c.args[2]) if c.args[2] is not None else 0.0)]


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
