"""Integer helpers shared by both requantization modes (and by the lowering, so kernels and
reference clamp identically). The data-movement kernels both modes share (reshape, flatten,
squeeze, transpose) are registered in the "int" domain by `fp_ops`; every arithmetic kernel
lives in `gemmlowp_ops` or `qdq_ops`."""

from __future__ import annotations

import numpy as np

from accelsim.core.qparams import dtype_range
from accelsim.model.graph import TensorInfo


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
