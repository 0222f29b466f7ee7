"""Quantized kernels that do no arithmetic on values, so both requantization modes share them.

Mode-specific kernels (gemmlowp_ops, qdq_ops) override these where they register the same op.
"""

from __future__ import annotations

import numpy as np

from accelsim.errors import ModelError
from accelsim.model.graph import TensorInfo, dtype_range
from accelsim.model.ops import activation_bounds
from accelsim.ref import primitives as P
from accelsim.ref.executor import KernelCall, kernel


def round_half_away(x: np.ndarray | float) -> np.ndarray:
    """std::round / TfLiteRound: halves away from zero."""
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def quantized_clamp(info: TensorInfo, lo: float, hi: float) -> tuple[int, int]:
    """Integer clamp for real bounds [lo, hi] on a per-tensor quantized tensor.

    As TFLite's CalculateActivationRangeQuantized: `zp + round(bound / scale)` with the scale
    as float32, intersected with the dtype's range.
    """
    qmin, qmax = dtype_range(info.dtype)
    scale = np.float32(info.quant.scale[0])
    zp = info.quant.zero_point[0]
    if np.isfinite(lo):
        qmin = max(qmin, zp + int(round_half_away(np.float32(lo) / scale)))
    if np.isfinite(hi):
        qmax = min(qmax, zp + int(round_half_away(np.float32(hi) / scale)))
    return qmin, qmax


def fused_clamp(c: KernelCall, out: TensorInfo | None = None) -> tuple[int, int]:
    """The integer clamp of a node's fused activation on its (first) output."""
    out = out or c.out_info[0]
    lo, hi = activation_bounds(c.node.attrs)
    return quantized_clamp(out, lo, hi)


def same_quant(a: TensorInfo, b: TensorInfo) -> bool:
    return a.quant == b.quant and a.dtype == b.dtype


@kernel("max_pool", "int")
def max_pool(c: KernelCall):
    x = c.args[0]
    lo, _ = dtype_range(c.in_info[0].dtype)
    win = P.pool_windows(x.astype(np.int64), c.node.attrs, lo)
    y = P.from_nchw(win.max(axis=(-1, -2)), c.attr("data_layout", "NCHW"))
    qmin, qmax = fused_clamp(c)
    return [np.clip(y, qmin, qmax)]


@kernel("pad", "int")
def pad(c: KernelCall):
    # Real zero is exactly the zero point (Jacob et al. 2018, section 2.1), so padding is exact.
    info = c.in_info[0]
    value = info.quant.zero_point[0] if info.quant else 0
    return [np.pad(c.args[0], c.attr("pads"), constant_values=value)]


def _clamp_real(c: KernelCall, lo: float, hi: float):
    if not same_quant(c.in_info[0], c.out_info[0]):
        raise _needs_requant(c)
    qmin, qmax = quantized_clamp(c.out_info[0], lo, hi)
    return [np.clip(c.args[0], qmin, qmax)]


def _needs_requant(c: KernelCall) -> Exception:
    return ModelError(f"node '{c.node.name}' ({c.node.op}): input and output quantization "
                      f"differ; only a requantizing kernel can run it")


@kernel("relu", "int")
def relu(c: KernelCall):
    return _clamp_real(c, 0.0, np.inf)


@kernel("relu6", "int")
def relu6(c: KernelCall):
    return _clamp_real(c, 0.0, 6.0)


@kernel("clip", "int")
def clip(c: KernelCall):
    lo, hi = c.attr("min"), c.attr("max")
    return _clamp_real(c, -np.inf if lo is None else lo, np.inf if hi is None else hi)
