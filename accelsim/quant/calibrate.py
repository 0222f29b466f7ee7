"""Activation range calibration for post-training quantization.

A *calibrator* watches the float values one tensor takes over a stream of calibration
batches (``observe``) and then returns the real range ``(lo, hi)`` to quantize that tensor
with (``range``).  Memory is bounded: nothing keeps the activations themselves, only running
statistics and (for the histogram methods) a fixed-width histogram of at most
``MAX_HIST_BINS`` bins per sign.

Methods (``make_calibrator(spec)``; ``spec`` is also the calibrator's ``method``):

``minmax``
    Running minimum and maximum.
``ema[:DECAY]``
    Exponential moving average of the per-batch minimum and maximum, decay 0.9 by default:
    ``m <- DECAY * m + (1 - DECAY) * batch_m``; the first batch initialises ``m`` (Jacob et al.
    2018; TensorFlow's moving-average fake quantization, ``zero_debias=False``).  TF starts its
    variables at an init value instead; here the first batch is the start value.
``percentile[:P]``
    P = 99.99 by default.  Symmetric ranges: the P-th percentile ``t`` of ``|x|`` (signed:
    ``(-t, t)``; unsigned: ``(0, t)``, from ``max(x, 0)``).  Asymmetric ranges: the (100-P)-th
    and the P-th percentiles of ``x``.  (ORT's asymmetric percentile cuts (100-P)/2 % on each
    side instead.)
``entropy[:BINS]``
    TensorRT's KL-divergence calibration (Migacz, "8-bit Inference with TensorRT", GTC 2017;
    Wu et al. 2020), see :meth:`HistogramCalibrator.entropy_threshold`, over BINS = 2048
    histogram bins by default (with 128 levels the candidates start at 128 bins, so
    ``entropy:512`` clips to a quarter of the maximum at most; ONNX Runtime's form of the
    recipe is ``entropy_ort``). One deliberate
    difference: the histogram is re-binned to at most ``count / MIN_VALUES_PER_BIN`` bins, so a
    tensor seen through few values (a squeeze-excite gate: one per channel and sample) is not
    clipped by sampling noise; ``entropy_trt[:BINS]`` is the recipe exactly as published.
``entropy_ort[:BINS]``
    ONNX Runtime's entropy calibrator as ``quantize_static`` runs it (BINS = 128, ORT's
    default ``num_bins``), see :class:`OrtEntropyCalibrator`: its signed histogram, 64 levels
    a side at 8 bits and smoothed divergence clip far less than TensorRT's recipe.
``mse``
    The range that minimises the expected mean squared error (rounding + clipping) of the
    actual quantizer over the histogram, see :meth:`HistogramCalibrator.mse_range`.

Every ``range()`` contains 0 (``lo <= 0 <= hi``, so that real zero is exactly representable)
and is never narrower than ``MIN_RANGE`` (an all-zero tensor gives ``(0, MIN_RANGE)``, or
``(-MIN_RANGE, MIN_RANGE)`` for signed symmetric).  Symmetric signed ranges are ``(-a, a)``;
symmetric unsigned ranges are ``(0, hi)`` (an unsigned quantizer clamps negatives to 0).

Streaming histogram (percentile, entropy, mse)
----------------------------------------------
Fixed bin width with appended bins, as NVIDIA pytorch-quantization's ``HistogramCalibrator``
and ONNX Runtime's ``HistogramCollector`` do: the first batch with a non-zero value sets the
width ``w = max|x| / HIST_BINS`` (2048 bins cover its range); a later batch that goes beyond
the last bin appends bins of the same width.  Positive and negative values are binned by
magnitude into two arrays (bin ``j`` holds ``j*w <= |x| < (j+1)*w``) and exact zeros are
counted apart, so the ``|x|`` histogram is an exact fold of the signed one.  Appending never
re-bins, so the histogram is exactly the one all the data would have produced with that bin
width.  If a side would exceed ``MAX_HIST_BINS`` bins, adjacent bins are merged by the smallest
power of two that fits; the edges are nested, so this is exact too (same histogram as binning
all data at the coarser width).  Resolution: ``w <= max|x| / HIST_BINS`` always (``w`` only
changes by coarsening, which leaves at least ``MAX_HIST_BINS / 2`` bins over ``[0, max|x|]``).
A percentile read from the histogram (linear interpolation inside the bin where the cumulative
count crosses the target) is within ``2 w`` of ``numpy.percentile`` on the concatenated data
(the order statistics that ``numpy.percentile`` interpolates between lie in the crossing bin or
a neighbouring one); :attr:`HistogramCalibrator.bin_width` reports ``w``.
"""

from __future__ import annotations

import math
import re
from typing import Protocol, runtime_checkable

import numpy as np

from accelsim.core.errors import AccelsimError

__all__ = [
    "CalibrationError",
    "Calibrator",
    "MinMaxCalibrator",
    "EMACalibrator",
    "HistogramCalibrator",
    "PercentileCalibrator",
    "EntropyCalibrator",
    "OrtEntropyCalibrator",
    "MSECalibrator",
    "make_calibrator",
    "quant_params_from_range",
    "qrange",
    "quantize",
    "dequantize",
    "HIST_BINS",
    "MAX_HIST_BINS",
    "MIN_RANGE",
    "DEFAULT_PERCENTILE",
    "DEFAULT_EMA_DECAY",
]

HIST_BINS = 2048
"""Bins per sign set by the first non-zero batch; also the size of the entropy histogram."""
MAX_HIST_BINS = 8 * HIST_BINS
"""Most bins kept per sign before adjacent bins are merged (<= 128 KiB per sign)."""
MIN_RANGE = 1e-8
"""Narrowest range returned: a constant-zero tensor still gets a positive scale."""
MIN_VALUES_PER_BIN = 16
"""``entropy`` re-bins to at most (values observed / 16) bins: a squeeze-excite gate gives one
value per channel and sample, and KL over a histogram of mostly empty bins picks thresholds by
sampling noise (on PaddleOCR's MobileNetV3 it clipped the gates to a sixth of their range)."""
DEFAULT_PERCENTILE = 99.99
ORT_ENTROPY_BINS = 128
"""ONNX Runtime's default ``num_bins`` for its entropy calibrator (``entropy_ort``)."""
DEFAULT_EMA_DECAY = 0.9
_CHUNK = 1 << 20  # values binned per step: bounds the temporary memory of observe()
_MSE_BINS = 2 * HIST_BINS  # histogram bins per sign the MSE search evaluates at most


class CalibrationError(AccelsimError):
    """Calibration cannot produce a range: no data, non-finite data, a bad method spec."""


@runtime_checkable
class Calibrator(Protocol):
    method: str

    def observe(self, x: np.ndarray) -> None: ...

    def range(self, bits: int, symmetric: bool, signed: bool) -> tuple[float, float]: ...


# ---------------------------------------------------------------------------------------------
# Quantization parameters
# ---------------------------------------------------------------------------------------------


def _check_bits(bits, who: str) -> int:
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 2 <= bits <= 16:
        raise CalibrationError(
            f"{who}: bits must be an integer in [2, 16] (4, 8 or 16), got {bits!r}"
        )
    return int(bits)


def qrange(bits: int, signed: bool, restricted: bool = False) -> tuple[int, int]:
    """Integer range ``(qmin, qmax)``: signed ``[-2^(b-1), 2^(b-1)-1]`` (restricted:
    ``[-(2^(b-1)-1), 2^(b-1)-1]``), unsigned ``[0, 2^b - 1]``."""
    bits = _check_bits(bits, "qrange")
    if signed:
        half = 1 << (bits - 1)
        return (-(half - 1) if restricted else -half), half - 1
    if restricted:
        raise CalibrationError("qrange: the restricted range is defined for signed types only")
    return 0, (1 << bits) - 1


def _normalize_range(lo: float, hi: float, symmetric: bool, signed: bool) -> tuple[float, float]:
    """Include 0, symmetrize, and widen to at least MIN_RANGE."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if symmetric and signed:
        a = max(-lo, hi, MIN_RANGE)
        return -a, a
    if symmetric:  # unsigned: negatives clamp to 0
        return 0.0, max(hi, MIN_RANGE)
    if hi - lo < MIN_RANGE:
        hi = lo + MIN_RANGE
    return lo, hi


def _fmt(v: float) -> str:
    """Shortest text that reads back as ``v`` ("0.9", "99.99", "100")."""
    text = repr(float(v))
    return text[:-2] if text.endswith(".0") else text


def _round_half_away(v: float) -> int:
    return int(math.copysign(math.floor(abs(v) + 0.5), v))


def quant_params_from_range(
    lo: float, hi: float, bits: int, symmetric: bool, signed: bool, restricted: bool = False
) -> tuple[float, int]:
    """``(scale, zero_point)`` for ``real = scale * (q - zero_point)`` covering ``[lo, hi]``.

    * asymmetric: ``scale = (hi - lo) / (qmax - qmin)``, ``zero_point = round(qmin - lo / scale)``
      clamped to ``[qmin, qmax]`` (ties away from zero, as TFLite's ``TfLiteRound``; ONNX
      Runtime's ``numpy.round`` rounds ties to even): real 0 maps to an integer exactly, so
      the represented range is ``[lo, hi]`` nudged by less than ``scale / 2`` (Jacob et al. 2018).
    * symmetric signed: ``scale = max(|lo|, |hi|) / (2^(b-1) - 1)``, zero point 0; ``restricted``
      only narrows the integer range to ``[-(2^(b-1)-1), 2^(b-1)-1]`` (see :func:`qrange`).
    * symmetric unsigned: ``scale = hi / (2^b - 1)``, zero point 0; negative reals clamp to 0.

    The range is first widened to contain 0 and to be at least ``MIN_RANGE`` wide.  ``restricted``
    applies to signed types (also asymmetric signed: ``qmin = -(2^(b-1)-1)``).
    """
    who = "quant_params_from_range"
    bits = _check_bits(bits, who)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise CalibrationError(f"{who}: range must be finite, got ({lo}, {hi})")
    if lo > hi:
        raise CalibrationError(f"{who}: lo must be <= hi, got ({lo}, {hi})")
    if restricted and not signed:
        raise CalibrationError(f"{who}: the restricted range is defined for signed types only")
    qmin, qmax = qrange(bits, signed, restricted)
    lo, hi = _normalize_range(lo, hi, symmetric, signed)
    if symmetric:
        denom = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
        return max(-lo, hi) / denom, 0
    scale = (hi - lo) / (qmax - qmin)
    zp = _round_half_away(qmin - lo / scale)
    return scale, min(max(zp, qmin), qmax)


def quantize(
    x, scale: float, zero_point: int, bits: int, signed: bool, restricted: bool = False
) -> np.ndarray:
    """``clamp(round(x / scale) + zero_point, qmin, qmax)`` as int64, ties away from zero
    (TFLite's reference Quantize)."""
    qmin, qmax = qrange(bits, signed, restricted)
    v = np.asarray(x, dtype=np.float64) / scale
    q = np.sign(v) * np.floor(np.abs(v) + 0.5) + zero_point
    return np.clip(q, qmin, qmax).astype(np.int64)


def dequantize(q, scale: float, zero_point: int) -> np.ndarray:
    """``scale * (q - zero_point)`` as float64."""
    return scale * (np.asarray(q, dtype=np.int64) - zero_point).astype(np.float64)


# ---------------------------------------------------------------------------------------------
# Calibrators
# ---------------------------------------------------------------------------------------------


class _Base:
    """Running count / min / max shared by every calibrator."""

    method: str = ""

    def __init__(self) -> None:
        self.count = 0  # values observed
        self.batches = 0  # non-empty batches observed
        self.min = math.inf
        self.max = -math.inf

    def _prepare(self, x) -> np.ndarray | None:
        """Validated flat float array of the batch (None when empty); updates count/min/max."""
        try:
            a = np.asarray(x)
        except Exception as exc:  # pragma: no cover - exotic inputs
            raise CalibrationError(
                f"{self.method}: cannot read the batch as an array: {exc}"
            ) from exc
        if a.dtype == np.bool_ or not (
            np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)
        ):
            raise CalibrationError(
                f"{self.method}: expected a real numeric array, got dtype {a.dtype}"
            )
        if not np.issubdtype(a.dtype, np.floating):
            a = a.astype(np.float64)
        elif a.dtype == np.float16:
            a = a.astype(np.float32)
        a = a.reshape(-1)
        if a.size == 0:
            return None
        bmin, bmax = float(a.min()), float(a.max())  # NaN propagates; Inf shows as +-inf
        if not (math.isfinite(bmin) and math.isfinite(bmax)):
            bad = int(np.count_nonzero(~np.isfinite(a)))
            raise CalibrationError(
                f"{self.method}: batch {self.batches + 1} holds {bad} non-finite value(s) "
                f"(NaN or Inf); calibration needs finite activations"
            )
        self._bmin, self._bmax = bmin, bmax
        self.count += a.size
        self.batches += 1
        self.min = min(self.min, bmin)
        self.max = max(self.max, bmax)
        return a

    def _require_data(self) -> None:
        if self.count == 0:
            raise CalibrationError(
                f"{self.method}: no data observed; call observe() with at "
                "least one non-empty batch before range()"
            )

    def _check_range_args(self, bits, symmetric, signed) -> int:
        return _check_bits(bits, f"{self.method}.range")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.method!r}: {self.count} values>"


class MinMaxCalibrator(_Base):
    """Running minimum and maximum over every batch."""

    def __init__(self) -> None:
        super().__init__()
        self.method = "minmax"

    def observe(self, x: np.ndarray) -> None:
        self._prepare(x)

    def range(self, bits: int, symmetric: bool, signed: bool) -> tuple[float, float]:
        self._check_range_args(bits, symmetric, signed)
        self._require_data()
        return _normalize_range(self.min, self.max, symmetric, signed)


class EMACalibrator(_Base):
    """Exponential moving average of per-batch min and max (first batch initialises)."""

    def __init__(self, decay: float = DEFAULT_EMA_DECAY) -> None:
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise CalibrationError(f"ema: decay must be in [0, 1), got {decay}")
        self.decay = float(decay)
        self.method = f"ema:{_fmt(self.decay)}"
        self.ema_min: float | None = None
        self.ema_max: float | None = None

    def observe(self, x: np.ndarray) -> None:
        if self._prepare(x) is None:
            return
        if self.ema_min is None:
            self.ema_min, self.ema_max = self._bmin, self._bmax
        else:
            d = self.decay
            self.ema_min = d * self.ema_min + (1.0 - d) * self._bmin
            self.ema_max = d * self.ema_max + (1.0 - d) * self._bmax

    def range(self, bits: int, symmetric: bool, signed: bool) -> tuple[float, float]:
        self._check_range_args(bits, symmetric, signed)
        self._require_data()
        return _normalize_range(self.ema_min, self.ema_max, symmetric, signed)


def _coarsen(counts: np.ndarray, f: int) -> np.ndarray:
    """Merge groups of ``f`` adjacent bins (exact: edges j*w nest in k*f*w)."""
    if f <= 1 or counts.size == 0:
        return counts
    if f >= counts.size:
        return np.array([counts.sum()], dtype=counts.dtype)
    return np.add.reduceat(counts, np.arange(0, counts.size, f))


def _trim(counts: np.ndarray) -> np.ndarray:
    nz = np.flatnonzero(counts)
    return counts[: nz[-1] + 1] if nz.size else counts[:0]


def _interp_quantile(edges: np.ndarray, counts: np.ndarray, target: float) -> float:
    """Value below which ``target`` counts lie, linear inside the crossing bin."""
    cum = np.cumsum(counts, dtype=np.float64)
    k = int(np.searchsorted(cum, target, side="left"))
    k = min(k, counts.size - 1)
    while k < counts.size - 1 and counts[k] == 0:  # target exactly at a bin's end
        k += 1
    before = cum[k - 1] if k > 0 else 0.0
    frac = 0.0 if counts[k] == 0 else min(max((target - before) / counts[k], 0.0), 1.0)
    return float(edges[k] + frac * (edges[k + 1] - edges[k]))


def _g(u: np.ndarray) -> np.ndarray:
    """Integral of (v - round(v))^2 from 0 to u (round half up): n/12 + r^3/3 with
    n = round(u), r = u - n."""
    n = np.floor(u + 0.5)
    r = u - n
    return n * (1.0 / 12.0) + r * r * r * (1.0 / 3.0)


def _cube(v: np.ndarray) -> np.ndarray:
    return v * v * v


def _expected_sq_error(
    a: np.ndarray, b: np.ndarray, n: np.ndarray, delta, kmin, kmax
) -> np.ndarray:
    """For each candidate quantizer ``Q(x) = delta * clamp(round(x / delta), kmin, kmax)``
    (``delta``, ``kmin``, ``kmax``: 1-D arrays, one entry per candidate), the sum over bins of
    ``n * E[(x - Q(x))^2]`` with ``x`` uniform on the bin ``[a, b]``: clipping below
    ``L = delta*kmin`` and above ``U = delta*kmax`` integrated exactly, rounding in between
    integrated exactly through :func:`_g` (so a bin may span many quantization steps, as at
    16 bits)."""
    keep = n > 0
    a, b, n = a[keep], b[keep], n[keep]
    delta = np.atleast_1d(np.asarray(delta, np.float64))
    kmin = np.atleast_1d(np.asarray(kmin, np.float64))
    kmax = np.atleast_1d(np.asarray(kmax, np.float64))
    out = np.empty(delta.size)
    width = b - a
    degenerate = not np.all(width > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        weight = np.where(width > 0, n / width, 0.0)
    step = max(1, (1 << 15) // max(a.size, 1))  # candidates per block: temporaries stay in cache
    for s in range(0, delta.size, step):
        d = delta[s : s + step, None]
        lo_c, hi_c = d * kmin[s : s + step, None], d * kmax[s : s + step, None]
        total = _cube(np.minimum(b - lo_c, 0.0)) - _cube(np.minimum(a - lo_c, 0.0))
        total += _cube(np.maximum(b - hi_c, 0.0)) - _cube(np.maximum(a - hi_c, 0.0))
        total *= 1.0 / 3.0
        inv = 1.0 / d
        total += (d * d * d) * (_g(np.clip(b, lo_c, hi_c) * inv) - _g(np.clip(a, lo_c, hi_c) * inv))
        res = total @ weight
        if degenerate:  # zero-width bins: the error at that point
            z = width <= 0
            pa = a[z]
            point = pa - d * np.clip(
                np.floor(pa * inv + 0.5), kmin[s : s + step, None], kmax[s : s + step, None]
            )
            res += (point * point) @ n[z]
        out[s : s + step] = res
    return out


def _xlogx(v: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(v > 0, v * np.log(np.where(v > 0, v, 1.0)), 0.0)


def _kl_divergences(hist: np.ndarray, levels: int) -> np.ndarray:
    """``KL(P_i || Q_i)`` of TensorRT's recipe for every ``i = levels .. hist.size`` (see
    :meth:`HistogramCalibrator.entropy_threshold`), in O(levels) per candidate from prefix sums:
    with ``T`` the total, ``P_k`` / ``m_k`` / ``z_k`` the count of ``P`` / of the first ``i`` bins
    / the number of bins where ``P > 0`` in level ``k`` (``q = m_k / z_k`` on those bins, sum
    ``m = sum_k m_k``), ``KL = (sum_j p_j log p_j - sum_k P_k log(m_k / z_k)) / T + log(m / T)``;
    infinite where a level has ``P_k > 0 = m_k`` (outliers over empty bins)."""
    h = np.asarray(hist, dtype=np.float64)
    nb = h.size
    cum = np.concatenate([[0.0], np.cumsum(h)])
    cnz = np.concatenate([[0], np.cumsum(h > 0)])
    cxl = np.concatenate([[0.0], np.cumsum(_xlogx(h))])
    total = cum[-1]
    out = np.empty(nb - levels + 1)
    k = np.arange(levels + 1)
    block = max(1, (1 << 17) // (levels + 1))
    for s in range(levels, nb + 1, block):
        i = np.arange(s, min(s + block, nb + 1))
        outl = total - cum[i]
        last = h[i - 1] + outl
        sum_plogp = cxl[i - 1] + _xlogx(last)
        starts = (k[None, :] * i[:, None] + levels - 1) // levels  # ceil(k * i / levels)
        mass = cum[starts[:, 1:]] - cum[starts[:, :-1]]
        nzc = (cnz[starts[:, 1:]] - cnz[starts[:, :-1]]).astype(np.float64)
        nzc[:, -1] += (h[i - 1] == 0) & (outl > 0)
        big_p = mass.copy()
        big_p[:, -1] += outl
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(mass > 0, mass / np.where(nzc > 0, nzc, 1.0), 1.0)
            group = np.where(big_p > 0, big_p * np.log(ratio), 0.0).sum(axis=1)
            kl = (sum_plogp - group) / total + np.log(cum[i] / total)
        bad = ((big_p > 0) & (mass <= 0)).any(axis=1) | (cum[i] <= 0)
        out[s - levels : s - levels + i.size] = np.where(bad, np.inf, kl)
    return out


class HistogramCalibrator(_Base):
    """Streaming fixed-width histogram (see the module docstring) plus the three range
    methods that read it: :meth:`percentile_range`, :meth:`entropy_threshold` /
    :meth:`entropy_range` and :meth:`mse_range`.  Subclasses pick one for ``range()``."""

    def __init__(self, num_bins: int = HIST_BINS, max_bins: int = MAX_HIST_BINS) -> None:
        super().__init__()
        if num_bins < 16 or max_bins < 2 * num_bins:
            raise CalibrationError(
                f"histogram: need num_bins >= 16 and max_bins >= 2*num_bins, "
                f"got {num_bins}, {max_bins}"
            )
        self.num_bins = int(num_bins)
        self.max_bins = int(max_bins)
        self._w: float | None = None
        self._pos = np.zeros(0, dtype=np.int64)  # x > 0:  j*w <= x  < (j+1)*w
        self._neg = np.zeros(0, dtype=np.int64)  # x < 0:  j*w <= -x < (j+1)*w
        self.zeros = 0  # x == 0 exactly

    # -- accumulation ---------------------------------------------------------------------
    @property
    def bin_width(self) -> float | None:
        """Current bin width ``w`` (None until a non-zero value was seen)."""
        return self._w

    @property
    def histogram_bins(self) -> int:
        """Bins held now (both signs together): the calibrator's memory is ~8 bytes each."""
        return int(self._pos.size + self._neg.size)

    def observe(self, x: np.ndarray) -> None:
        a = self._prepare(x)
        if a is None:
            return
        amax = max(-self._bmin, self._bmax)
        if amax == 0.0:
            self.zeros += a.size
            return
        if self._w is None:
            self._w = amax / self.num_bins
        ratio = amax / self._w
        if not ratio < self.max_bins:
            # merge 2^e adjacent bins, e the smallest that fits (log domain: ratio may overflow)
            e = max(
                1, math.ceil(math.log2(amax) - math.log2(self._w) - math.log2(self.max_bins - 1))
            )
            self._pos, self._neg = _coarsen(self._pos, 2**e), _coarsen(self._neg, 2**e)
            self._w = math.ldexp(self._w, e)
            ratio = amax / self._w
        need = math.floor(ratio) + 1
        need = max(need, self.num_bins if self._pos.size == 0 and self._neg.size == 0 else 0)
        for side in ("_pos", "_neg"):
            arr = getattr(self, side)
            if arr.size < need:
                setattr(self, side, np.concatenate([arr, np.zeros(need - arr.size, np.int64)]))
        w = self._w
        for s in range(0, a.size, _CHUNK):
            c = a[s : s + _CHUNK].astype(np.float64)
            self.zeros += int(np.count_nonzero(c == 0.0))
            p = c[c > 0.0]
            m = -c[c < 0.0]
            if p.size:
                idx = np.minimum(np.floor(p / w).astype(np.int64), self._pos.size - 1)
                self._pos += np.bincount(idx, minlength=self._pos.size)
            if m.size:
                idx = np.minimum(np.floor(m / w).astype(np.int64), self._neg.size - 1)
                self._neg += np.bincount(idx, minlength=self._neg.size)

    # -- histogram views ------------------------------------------------------------------
    def _side(self, counts: np.ndarray, extreme: float) -> tuple[np.ndarray, np.ndarray]:
        """(edges, counts) of one magnitude histogram, trimmed, last edge = the extreme."""
        counts = _trim(counts)
        edges = np.arange(counts.size + 1, dtype=np.float64) * self._w
        if counts.size:
            edges[-1] = max(extreme, edges[-2])
        return edges, counts

    def _magnitude_hist(self, which: str) -> tuple[np.ndarray, np.ndarray]:
        """Histogram of the magnitudes of ``which`` values (excluding exact zeros):
        "abs" = |x|, "pos" = x > 0, "neg" = -x for x < 0."""
        if self._w is None:
            return np.zeros(1), np.zeros(0, np.int64)
        if which == "pos":
            return self._side(self._pos, self.max)
        if which == "neg":
            return self._side(self._neg, -self.min)
        n = max(self._pos.size, self._neg.size)
        tot = np.zeros(n, np.int64)
        tot[: self._pos.size] += self._pos
        tot[: self._neg.size] += self._neg
        return self._side(tot, max(self.max, -self.min))

    def _signed_hist(self, max_per_side: int | None = None):
        """(lower edges, upper edges, counts, number of negative bins) of x, ascending,
        exact zeros excluded; with ``max_per_side`` bins merged (exactly) so that each sign
        has at most that many."""
        if self._w is None:
            e = np.zeros(0)
            return e, e, e, 0
        pos, neg = _trim(self._pos), _trim(self._neg)
        w = self._w
        if max_per_side is not None:
            f = max(1, -(-max(pos.size, neg.size) // max_per_side))
            pos, neg, w = _trim(_coarsen(pos, f)), _trim(_coarsen(neg, f)), w * f
        pe = np.arange(pos.size + 1, dtype=np.float64) * w
        ne = np.arange(neg.size + 1, dtype=np.float64) * w
        if pos.size:
            pe[-1] = max(self.max, pe[-2])
        if neg.size:
            ne[-1] = max(-self.min, ne[-2])
        lo = np.concatenate([-ne[1:][::-1], pe[:-1]])
        hi = np.concatenate([-ne[:-1][::-1], pe[1:]])
        return lo, hi, np.concatenate([neg[::-1], pos]).astype(np.float64), neg.size

    # -- percentile -----------------------------------------------------------------------
    def percentile_of_abs(self, p: float) -> float:
        """P-th percentile of |x| over everything observed (exact zeros included)."""
        edges, counts = self._magnitude_hist("abs")
        edges = np.concatenate([[0.0], edges])  # a zero-width bin for exact zeros
        counts = np.concatenate([[self.zeros], counts]).astype(np.float64)
        return _interp_quantile(edges, counts, p / 100.0 * self.count)

    def percentile_of_value(self, p: float) -> float:
        """P-th percentile of x over everything observed (exact zeros included)."""
        lo, hi, counts, k = self._signed_hist()
        if counts.size == 0:
            return 0.0
        edges = np.concatenate([lo, [hi[-1]]])  # edges[k] == 0
        edges = np.concatenate([edges[: k + 1], [0.0], edges[k + 1 :]])  # zero-width bin at 0
        cts = np.concatenate([counts[:k], [float(self.zeros)], counts[k:]])
        return _interp_quantile(edges, cts, p / 100.0 * self.count)

    def percentile_range(
        self, percentile: float, bits: int, symmetric: bool, signed: bool
    ) -> tuple[float, float]:
        self._check_range_args(bits, symmetric, signed)
        self._require_data()
        if symmetric and not signed:
            # percentile of max(x, 0): negatives count as zeros
            t = self._one_sided_percentile(percentile)
            return _normalize_range(0.0, t, symmetric, signed)
        if symmetric:
            t = self.percentile_of_abs(percentile)
            return _normalize_range(-t, t, symmetric, signed)
        lo = self.percentile_of_value(100.0 - percentile)
        hi = self.percentile_of_value(percentile)
        return _normalize_range(lo, hi, symmetric, signed)

    def _one_sided_percentile(self, p: float) -> float:
        edges, counts = self._magnitude_hist("pos")
        non_pos = self.count - int(counts.sum())
        edges = np.concatenate([[0.0], edges])
        counts = np.concatenate([[non_pos], counts]).astype(np.float64)
        return _interp_quantile(edges, counts, p / 100.0 * self.count)

    # -- entropy --------------------------------------------------------------------------
    def entropy_threshold(self, levels: int, which: str = "abs") -> float:
        """TensorRT's KL-divergence threshold for a quantizer with ``levels`` levels over
        ``[0, t]`` on the magnitude histogram ``which`` ("abs": |x|, "pos": x > 0,
        "neg": -x for x < 0).

        The stored histogram is re-binned to exactly ``kl_bins`` (2048 unless the calibrator was
        made as ``entropy:BINS``) bins over
        ``[0, max]`` (linear interpolation of the cumulative count: exact when the bins line
        up, as when the first batch held the maximum; otherwise it assumes uniform density
        inside a stored bin).  Exact zeros are left out: they are represented exactly under
        every threshold, and a post-ReLU spike at 0 would otherwise dominate the divergence
        (pytorch-quantization sets ``bins[0] = bins[1]`` for the same reason).  For each
        ``i`` from ``levels`` to 2048: ``P`` = first ``i`` bins with the outliers (bins
        ``i..2047``) added to bin ``i-1``; ``Q`` = bins ``0..i-1`` (without the outliers)
        merged into ``levels`` groups (bin ``j`` goes to group ``floor(j * levels / i)``,
        i.e. groups of ``floor``/``ceil(i / levels)`` bins), each group's count spread
        evenly over the bins where ``P`` is non-zero; ``KL(P || Q)`` with ``P`` and ``Q``
        normalised, infinite where ``Q = 0 < P`` (no smoothing).  The threshold is the upper
        edge of bin ``i`` (``i * max / 2048``) at the first minimum.  With ``levels >= 2048``
        (16 bits) the histogram cannot resolve a clip and the threshold is ``max``.
        """
        thresholds, kl = self.entropy_curve(levels, which)
        if thresholds.size == 0:
            return 0.0
        return float(thresholds[int(np.argmin(kl))])

    def entropy_curve(self, levels: int, which: str = "abs") -> tuple[np.ndarray, np.ndarray]:
        """``(thresholds, KL)`` of every candidate of :meth:`entropy_threshold` (thresholds
        ``i * max / 2048`` for ``i = levels .. 2048``; ``[max], [0]`` when ``levels >= 2048``;
        empty without non-zero data)."""
        edges, counts = self._magnitude_hist(which)
        if counts.size == 0 or counts.sum() == 0:
            return np.zeros(0), np.zeros(0)
        amax = float(edges[-1])
        nb = getattr(self, "kl_bins", HIST_BINS)
        per_bin = getattr(self, "min_per_bin", 0)
        if per_bin:  # a histogram mostly of empty bins: its KL measures sampling noise
            nb = min(nb, int(counts.sum()) // per_bin)
        if levels >= nb:
            return np.array([amax]), np.zeros(1)
        cum = np.concatenate([[0.0], np.cumsum(counts, dtype=np.float64)])
        coarse = np.interp(np.arange(nb + 1) * (amax / nb), edges, cum)
        coarse[0], coarse[-1] = 0.0, cum[-1]
        hist = np.maximum(np.diff(coarse), 0.0)
        return np.arange(levels, nb + 1) * (amax / nb), _kl_divergences(hist, levels)

    def entropy_range(self, bits: int, symmetric: bool, signed: bool) -> tuple[float, float]:
        """Range from :meth:`entropy_threshold`.  Levels: ``2^(b-1)`` for signed symmetric,
        ``2^b`` for unsigned symmetric (histogram of ``x > 0``, range ``(0, t)``).
        Asymmetric: one-signed data (all ``x >= 0`` or all ``x <= 0``) gets all ``2^b`` levels
        over ``[0, t]`` (or ``[-t, 0]``); data of both signs gets the threshold of the ``|x|``
        histogram with ``2^(b-1)`` levels, and the range ``(max(-t, min), min(t, max))``, i.e.
        the symmetric threshold clipped to the observed min / max."""
        bits = self._check_range_args(bits, symmetric, signed)
        self._require_data()
        if symmetric and signed:
            t = self.entropy_threshold(1 << (bits - 1), "abs")
            return _normalize_range(-t, t, symmetric, signed)
        if symmetric:
            return _normalize_range(
                0.0, self.entropy_threshold(1 << bits, "pos"), symmetric, signed
            )
        if self.min >= 0.0:
            return _normalize_range(
                0.0, self.entropy_threshold(1 << bits, "pos"), symmetric, signed
            )
        if self.max <= 0.0:
            return _normalize_range(
                -self.entropy_threshold(1 << bits, "neg"), 0.0, symmetric, signed
            )
        t = self.entropy_threshold(1 << (bits - 1), "abs")
        return _normalize_range(max(-t, self.min), min(t, self.max), symmetric, signed)

    # -- mse ------------------------------------------------------------------------------
    def expected_mse(self, lo: float, hi: float, bits: int, symmetric: bool, signed: bool) -> float:
        """Expected mean squared error of quantizing the observed data with the quantizer of
        ``quant_params_from_range(lo, hi, bits, symmetric, signed)`` (unrestricted integer
        range), under a uniform density inside each histogram bin (exact zeros: no error)."""
        bits = self._check_range_args(bits, symmetric, signed)
        self._require_data()
        a, b, n, _ = self._signed_hist(_MSE_BINS)
        return float(self._sse(a, b, n, [(lo, hi)], bits, symmetric, signed)[0]) / self.count

    @staticmethod
    def _sse(a, b, n, ranges, bits, symmetric, signed) -> np.ndarray:
        """Expected summed squared error of each candidate ``(lo, hi)``."""
        qmin, qmax = qrange(bits, signed)
        params = [quant_params_from_range(lo, hi, bits, symmetric, signed) for lo, hi in ranges]
        scale = np.array([p[0] for p in params])
        zp = np.array([p[1] for p in params], dtype=np.float64)
        return _expected_sq_error(a, b, n, scale, qmin - zp, qmax - zp)

    def mse_range(self, bits: int, symmetric: bool, signed: bool) -> tuple[float, float]:
        """The range minimising :meth:`expected_mse` (the quantizer of
        :func:`quant_params_from_range`, unrestricted integer range), searched over:

        * symmetric, or asymmetric with data of one sign: thresholds ``t = k * max / 128``
          (k = 1..128), then 65 between the best one's neighbours (193 candidates; step
          ``max / 4096`` near the optimum), for the range ``(-t, t)``, ``(0, t)`` or ``(-t, 0)``;
        * asymmetric with data of both signs: both ends shrunk together,
          ``(a * min, a * max)`` for 128 + 65 values of ``a``, then two rounds of coordinate
          search on each end (41 candidates within +-20 % of that end's extreme, then 41
          within +-1 %).

        The histogram is the stored one with bins merged (exactly) to at most 4096 a sign.
        """
        bits = self._check_range_args(bits, symmetric, signed)
        self._require_data()
        A, B, N, _ = self._signed_hist(_MSE_BINS)
        if N.size == 0:
            return _normalize_range(0.0, 0.0, symmetric, signed)

        def best(ranges):
            errs = self._sse(A, B, N, ranges, bits, symmetric, signed)
            k = int(np.argmin(errs))
            return ranges[k], float(errs[k])

        def search_1d(extreme: float, make) -> float:
            coarse = np.arange(1, 129) * (extreme / 128)
            (lo, hi), _ = best([make(t) for t in coarse])
            t0 = next(t for t in coarse if make(t) == (lo, hi))
            fine = np.linspace(
                max(t0 - extreme / 128, extreme / 4096), min(t0 + extreme / 128, extreme), 65
            )
            ts = np.concatenate([[t0], fine])
            ranges = [make(t) for t in ts]
            r, _ = best(ranges)
            return float(ts[ranges.index(r)])

        if symmetric and signed:
            t = search_1d(max(self.max, -self.min), lambda t: (-t, t))
            return _normalize_range(-t, t, symmetric, signed)
        if symmetric or self.min >= 0.0:
            if self.max <= 0.0:
                return _normalize_range(0.0, 0.0, symmetric, signed)
            t = search_1d(self.max, lambda t: (0.0, t))
            return _normalize_range(0.0, t, symmetric, signed)
        if self.max <= 0.0:
            t = search_1d(-self.min, lambda t: (-t, 0.0))
            return _normalize_range(-t, 0.0, symmetric, signed)
        mn, mx = self.min, self.max
        alpha = search_1d(1.0, lambda s: (s * mn, s * mx))
        lo, hi = alpha * mn, alpha * mx
        cur = best([(lo, hi)])[1]
        for _ in range(2):
            for end, ext in (("hi", mx), ("lo", -mn)):
                for span in (0.2 * ext, 0.01 * ext):
                    v0 = hi if end == "hi" else -lo
                    vs = np.linspace(max(v0 - span, ext / 1024), min(v0 + span, ext), 41)
                    ranges = [(lo, float(v)) if end == "hi" else (-float(v), hi) for v in vs]
                    r, err = best(ranges)
                    if err < cur:
                        (lo, hi), cur = r, err
        return _normalize_range(lo, hi, symmetric, signed)


class PercentileCalibrator(HistogramCalibrator):
    """``percentile:P``: P-th percentile of |x| (symmetric) or the (100-P)-th and P-th
    percentiles of x (asymmetric), from the streaming histogram."""

    def __init__(self, percentile: float = DEFAULT_PERCENTILE, **kw) -> None:
        super().__init__(**kw)
        if not 50.0 <= percentile <= 100.0:
            raise CalibrationError(f"percentile: P must be in [50, 100], got {percentile}")
        self.percentile = float(percentile)
        self.method = f"percentile:{_fmt(self.percentile)}"

    def range(self, bits: int, symmetric: bool, signed: bool) -> tuple[float, float]:
        return self.percentile_range(self.percentile, bits, symmetric, signed)


class EntropyCalibrator(HistogramCalibrator):
    """``entropy[:BINS]``: TensorRT's KL-divergence calibration (see :meth:`entropy_range`) over
    a histogram of ``BINS`` bins (2048, TensorRT's, by default). The candidate thresholds start
    at as many bins as the quantizer has levels, as in TensorRT and ONNX Runtime, so fewer bins
    allow less clipping: with 128 bins and 128 levels the only candidate is the maximum, which
    is what ONNX Runtime's default (``num_bins=128``) calibrates to."""

    def __init__(
        self, kl_bins: int = HIST_BINS, min_per_bin: int = MIN_VALUES_PER_BIN, **kw
    ) -> None:
        super().__init__(**kw)
        if not 16 <= kl_bins <= MAX_HIST_BINS:
            raise CalibrationError(
                f"entropy: the histogram needs 16 to {MAX_HIST_BINS} bins, got {kl_bins}"
            )
        self.kl_bins = int(kl_bins)
        self.min_per_bin = int(min_per_bin)
        base = "entropy" if self.min_per_bin else "entropy_trt"
        self.method = base if kl_bins == HIST_BINS else f"{base}:{kl_bins}"

    def range(self, bits: int, symmetric: bool, signed: bool) -> tuple[float, float]:
        return self.entropy_range(bits, symmetric, signed)


class OrtEntropyCalibrator(_Base):
    """``entropy_ort[:BINS]``: ONNX Runtime's entropy calibrator as ``quantize_static`` runs it
    (``HistogramCollector`` with ``num_bins=BINS``, 128 by default, and
    ``num_quantized_bins=128``), so that a comparison with ORT's quantizer compares the same
    ranges.  ORT's form of the KL recipe (the MXNet port of TensorRT's) differs from
    :class:`EntropyCalibrator` in four ways, kept here on purpose:

    1. the histogram is signed, ``BINS`` bins over ``[-m, m]`` with ``m`` the first batch's
       largest magnitude; a later batch beyond ``m`` adds bins of the same width on both sides
       (ORT's ``merge_histogram``; the histogram grows with that ratio);
    2. a candidate keeps the ``2i+1`` bins around zero and ``num_quantized_bins`` counts levels
       over both signs, so at 8 bits it measures 64 levels a side (7 bits) even for an unsigned
       activation;
    3. ``(2i+1) // nq`` bins go to each level, the remainder's counts to the last level, but
       ``q`` stays 0 in the remainder bins (which hold the outliers), ``q`` is spread over every
       bin of a level and truncated to an integer;
    4. ``p`` and ``q`` are smoothed with ``eps = 1e-4`` before the divergence, so a clip costs
       ``p * log(p / eps)``: ORT clips far less than TensorRT's recipe.

    ``quantize_static`` hands every calibration sample to the collector as one batch, so its
    histogram spans the largest magnitude of them all.  :func:`accelsim.quant.ptq.calibrate_ranges`
    does the same in a second pass over the samples (:meth:`second_pass`, :meth:`observe_again`:
    memory stays one histogram); fed batch by batch without it, the histogram grows as ORT's
    does when its collector is fed batch by batch.

    The threshold ``(-t, t)`` is clipped to the observed ``[min, max]``, as ORT does.  With
    ``2^(bits-1)`` quantized bins (ORT's 128 at 8 bits) and fewer histogram bins than that
    (``entropy_ort:128`` at 8 bits has one candidate), the range is the min / max."""

    passes = 2  # calibrate_ranges: second_pass() and observe_again() over the same samples

    def __init__(self, num_bins: int = ORT_ENTROPY_BINS) -> None:
        super().__init__()
        if not 16 <= num_bins <= MAX_HIST_BINS:
            raise CalibrationError(
                f"entropy_ort: the histogram needs 16 to {MAX_HIST_BINS} bins, got {num_bins}"
            )
        self.num_bins = int(num_bins)
        self.method = "entropy_ort" if num_bins == ORT_ENTROPY_BINS else f"entropy_ort:{num_bins}"
        self.hist: np.ndarray | None = None  # int64 counts over [-thr, thr]
        self.thr = 0.0

    def observe(self, x: np.ndarray) -> None:
        a = self._prepare(x)
        if a is None:
            return
        t = max(abs(self._bmin), abs(self._bmax))
        if self.hist is None or self.thr == 0.0 and t > 0.0:
            h, _ = np.histogram(a, self.num_bins, range=(-t, t))
            self.hist = h if self.hist is None else h + self.hist
            self.thr = t
            return
        if t > self.thr:  # ORT's merge_histogram: same stride, bins added on both sides
            stride = 2 * self.thr / self.hist.size
            extra = int((t - self.thr) // stride + 1)
            if self.hist.size + 2 * extra > 2 * MAX_HIST_BINS:
                raise CalibrationError(
                    f"{self.method}: a batch reaches {t:g}, {t / self.thr:.0f}x the first "
                    f"batch's range; ONNX Runtime's histogram would need "
                    f"{self.hist.size + 2 * extra} bins (at most {2 * MAX_HIST_BINS})"
                )
            new_thr = extra * stride + self.thr
            h, _ = np.histogram(a, self.hist.size + 2 * extra, range=(-new_thr, new_thr))
            h[extra : h.size - extra] += self.hist
            self.hist, self.thr = h, new_thr
        else:
            self.hist = self.hist + np.histogram(a, self.hist.size, range=(-self.thr, self.thr))[0]

    def second_pass(self) -> None:
        """Restart the histogram over ``[-m, m]``, ``m`` the largest magnitude observed so far;
        :meth:`observe_again` then bins the same data again (count, min and max unchanged)."""
        self._require_data()
        self.thr = max(abs(self.min), abs(self.max))
        self.hist = np.zeros(self.num_bins, np.int64)

    def observe_again(self, x: np.ndarray) -> None:
        a = np.asarray(x).reshape(-1)
        if a.size:
            t = self.thr
            self.hist += np.histogram(a, self.num_bins, range=(-t, t))[0]

    def threshold(self, num_quantized_bins: int) -> tuple[float, float]:
        """ORT's ``get_entropy_threshold``: the ``(lo, hi)`` of the least divergent candidate,
        clipped to the observed min / max."""
        self._require_data()
        hist = self.hist
        assert hist is not None  # set by the first non-empty batch
        nb = hist.size
        zero, half = nb // 2, num_quantized_bins // 2
        if self.thr == 0.0 or half > zero:
            return self.min, self.max
        edges = np.linspace(-self.thr, self.thr, nb + 1)
        cum = np.concatenate([[0], np.cumsum(hist)])
        eps = 1e-4
        best, best_i = np.inf, half
        for i in range(half, zero + 1):
            s, e = zero - i, min(zero + i + 1, nb)
            sl = hist[s:e]
            p = sl.copy()
            p[0] += cum[s]
            p[-1] += cum[-1] - cum[e]
            nz = p != 0
            m = sl.size // num_quantized_bins
            starts = np.arange(num_quantized_bins) * m
            qb = np.add.reduceat(sl[: num_quantized_bins * m], starts)
            qb[-1] += sl[num_quantized_bins * m :].sum()
            norm = np.add.reduceat(nz[: num_quantized_bins * m].astype(np.int64), starts)
            per = np.where(norm != 0, qb // np.maximum(norm, 1), 0)  # int64 q: truncated
            q = np.zeros(p.size, np.int64)
            q[: num_quantized_bins * m] = np.repeat(per, m)
            kl = _smoothed_kl(p, q, eps)
            if kl < best:  # first minimum, as numpy.argmin
                best, best_i = kl, i
        lo = float(edges[zero - best_i])
        hi = float(edges[min(zero + best_i + 1, nb)])
        return max(lo, self.min), min(hi, self.max)

    def range(self, bits: int, symmetric: bool, signed: bool) -> tuple[float, float]:
        bits = self._check_range_args(bits, symmetric, signed)
        lo, hi = self.threshold(1 << (bits - 1))
        return _normalize_range(lo, hi, symmetric, signed)


def _smooth(p: np.ndarray, eps: float) -> np.ndarray | None:
    """ONNX Runtime's ``smooth_distribution`` (float32): zeros become ``eps``, the mass taken
    evenly off the non-zero entries."""
    zeros = (p == 0).astype(np.float32)
    nonzeros = (p != 0).astype(np.float32)
    n_zeros = zeros.sum()
    n_nonzeros = p.size - n_zeros
    if not n_nonzeros:
        return None
    eps1 = eps * float(n_zeros) / float(n_nonzeros)
    out = p.astype(np.float32)
    out += eps * zeros + (-eps1) * nonzeros
    return out if (out > 0).all() else None


def _smoothed_kl(p: np.ndarray, q: np.ndarray, eps: float) -> float:
    """``KL(p || q)`` of the smoothed, normalised distributions (scipy.stats.entropy's sum),
    infinite where smoothing leaves an empty or non-positive distribution."""
    ps, qs = _smooth(p, eps), _smooth(q, eps)
    if ps is None or qs is None:
        return math.inf
    pn = ps / ps.sum()
    qn = qs / qs.sum()
    return float(np.sum(pn * np.log(pn / qn)))


class MSECalibrator(HistogramCalibrator):
    """``mse``: the range minimising the expected quantization MSE (see :meth:`mse_range`)."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.method = "mse"

    def range(self, bits: int, symmetric: bool, signed: bool) -> tuple[float, float]:
        return self.mse_range(bits, symmetric, signed)


_SPEC = re.compile(r"^\s*([a-z_]+)\s*(?::\s*(\S+)\s*)?$", re.IGNORECASE)
_KNOWN = (
    "minmax, ema[:DECAY], percentile[:P], entropy[:BINS], entropy_trt[:BINS], "
    "entropy_ort[:BINS], mse"
)


def make_calibrator(spec: str) -> Calibrator:
    """A fresh calibrator for ``spec``: ``minmax`` | ``ema`` | ``ema:0.9`` | ``percentile`` |
    ``percentile:99.99`` | ``entropy`` | ``mse``.  Raises :class:`CalibrationError` naming the
    spec for anything else."""
    m = _SPEC.match(spec) if isinstance(spec, str) else None
    if m is None:
        raise CalibrationError(
            f"calibration method {spec!r}: not understood (expected one of {_KNOWN})"
        )
    name, arg = m.group(1).lower(), m.group(2)

    def number(what: str) -> float:
        try:
            v = float(arg)
        except ValueError:
            raise CalibrationError(
                f"calibration method {spec!r}: {what} must be a number, got {arg!r}"
            ) from None
        if not math.isfinite(v):
            raise CalibrationError(
                f"calibration method {spec!r}: {what} must be finite, got {arg!r}"
            )
        return v

    if name in ("entropy", "entropy_trt", "entropy_ort"):
        bins = None if arg is None else number("the number of histogram bins")
        if bins is not None and (bins != int(bins) or not 16 <= bins <= MAX_HIST_BINS):
            raise CalibrationError(
                f"calibration method {spec!r}: the histogram bins must be an integer in "
                f"[16, {MAX_HIST_BINS}], got {arg!r}"
            )
        if name == "entropy_ort":
            return OrtEntropyCalibrator(ORT_ENTROPY_BINS if bins is None else int(bins))
        per_bin = MIN_VALUES_PER_BIN if name == "entropy" else 0
        return EntropyCalibrator(HIST_BINS if bins is None else int(bins), per_bin)
    if name in ("minmax", "mse"):
        if arg is not None:
            raise CalibrationError(f"calibration method {spec!r}: {name} takes no parameter")
        return {"minmax": MinMaxCalibrator, "mse": MSECalibrator}[name]()
    if name == "ema":
        decay = DEFAULT_EMA_DECAY if arg is None else number("the EMA decay")
        if not 0.0 <= decay < 1.0:
            raise CalibrationError(
                f"calibration method {spec!r}: the EMA decay must be in [0, 1), got {decay:g}"
            )
        return EMACalibrator(decay)
    if name == "percentile":
        p = DEFAULT_PERCENTILE if arg is None else number("the percentile")
        if not 50.0 <= p <= 100.0:
            raise CalibrationError(
                f"calibration method {spec!r}: the percentile must be in [50, 100], got {p:g}"
            )
        return PercentileCalibrator(p)
    raise CalibrationError(
        f"calibration method {spec!r}: unknown method {name!r} (expected one of {_KNOWN})"
    )
