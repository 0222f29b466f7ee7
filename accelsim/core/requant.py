"""Requantization parameters: how an integer kernel takes its accumulator to the output's scale.

One derivation, used bit for bit by the reference executor (gemmlowp mode), the TVM lowering,
the accelerator's code generator and the cost models. The rules are TFLite's (Jacob et al. 2018,
section 2.2; docs/quantization.md sections 2.2 and 3):

- scales are held as float32 (`TfLiteQuantizationParams.scale` is a float);
- a convolution's effective multiplier per output channel is
  `double(s_in) * double(s_w[c]) / double(s_out)` (`PopulateConvolutionQuantizationParams`),
  except the legacy uint8 per-tensor path, which forms the scale product in float first
  (`GetQuantizedConvolutionMultipler`);
- the multiplier becomes an int32 fixed-point value and a shift (`QuantizeMultiplier`,
  `accelsim.core.fixedpoint`);
- int16 activations (TFLite's 16x8 kernels) and weights wider than 8 bits accumulate in int64 and
  requantize with the int64 overload.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike

from accelsim.core import fixedpoint as fx
from accelsim.core.qparams import DTYPE_BITS, QuantParams, dtype_range

INT32_MAX = (1 << 31) - 1


class QuantizedTensor(Protocol):
    """What requantization reads of a tensor (the graph IR's `TensorInfo` is one)."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    @property
    def dtype(self) -> str: ...

    @property
    def quant(self) -> QuantParams | None: ...


class RequantError(ValueError):
    """Quantization parameters a kernel cannot requantize with; callers add the node's name."""


def scale32(t: QuantizedTensor) -> np.float32:
    """The per-tensor scale as TFLite holds it (float32)."""
    assert t.quant is not None
    return np.float32(t.quant.scale[0])


def reciprocal32(s: np.float32) -> np.float32:
    """1 / s rounded to the nearest float32 (ties to even), exactly: the float64 quotient can
    lie on the wrong side of a float32 halfway point, so the two float32 neighbours of it are
    compared against the exact rational 1 / s. `accelsim.lower.requant.div_known` needs it."""
    from fractions import Fraction

    exact = 1 / Fraction(float(s))
    c = np.float32(1.0 / float(s))
    cands = [np.nextafter(c, np.float32(-np.inf)), c, np.nextafter(c, np.float32(np.inf))]
    best = min(cands, key=lambda v: (abs(Fraction(float(v)) - exact), int(v.view(np.int32)) & 1))
    return np.float32(best)


def zero_point(t: QuantizedTensor) -> int:
    assert t.quant is not None
    return int(t.quant.zero_point[0])


def wrap_int32(v: ArrayLike) -> np.ndarray:
    """Two's-complement wrap of integer values to the int32 range (held as int64)."""
    v = np.asarray(v, dtype=np.int64)
    return ((v + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def folded_bias(weights: np.ndarray, bias: np.ndarray | None, x_zero_point: int) -> np.ndarray:
    """Per output channel, `bias - zp_x * sum(w)` (int64; the weights' first axis is the output
    channel): the input zero point folded into the bias as gemmlowp and XNNPACK fold it, so that
    a kernel multiplies raw activations and padded taps that read `zp_x` add nothing."""
    cout = weights.shape[0]
    wsum = weights.astype(np.int64).reshape(cout, -1).sum(axis=1)
    b64 = bias.astype(np.int64) if bias is not None else np.zeros(cout, np.int64)
    return b64 - x_zero_point * wsum


def weight_scales(w: QuantizedTensor, cout: int) -> np.ndarray:
    """One float32 filter scale per output channel (per-channel weights along axis 0)."""
    assert w.quant is not None
    s = np.asarray(w.quant.scale, dtype=np.float32)
    if w.quant.per_channel:
        if w.quant.axis is None or w.quant.axis % len(w.shape) != 0 or len(s) != cout:
            raise RequantError(
                f"per-channel weight quantization must be along the output-channel axis 0 "
                f"with {cout} scales, found axis {w.quant.axis} with {len(s)}"
            )
        return s
    return np.repeat(s, cout)


def is_wide(x: QuantizedTensor, w: QuantizedTensor, bias: QuantizedTensor | None) -> bool:
    """Whether the accumulator is int64 and requantizes with the int64 overload of
    MultiplyByQuantizedMultiplier (16-bit-reduced multiplier), as TFLite's 16x8 kernels do;
    they are templated on the bias type, so an int32 bias keeps the int32 path. Weights wider
    than 8 bits (no TFLite kernel has them) take the int64 path so the accumulator cannot wrap."""
    if DTYPE_BITS.get(w.dtype, 8) > 8:
        return True
    if DTYPE_BITS.get(x.dtype, 8) <= 8:
        return False
    return bias is None or bias.dtype != "int32"


INT48_MAX = (1 << 47) - 1


def accumulator_limit(x: QuantizedTensor, w: QuantizedTensor, bias: QuantizedTensor | None) -> int:
    """Largest |accumulator + bias| a convolution or fully connected layer requantizes exactly:
    int32 on the narrow path (TFLite adds the bias in int32 and wraps past it), int48 on the wide
    one (the int64 MultiplyByQuantizedMultiplier takes at most 48 bits)."""
    return INT48_MAX if is_wide(x, w, bias) else INT32_MAX


def conv_multipliers(
    x: QuantizedTensor, w: QuantizedTensor, out: QuantizedTensor, cout: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per output channel (multiplier, shift) of a convolution or fully connected layer, as
    int64 arrays of length `cout`."""
    s_w = weight_scales(w, cout)
    assert w.quant is not None
    if x.dtype == "uint8" and not w.quant.per_channel:
        # legacy uint8 path: GetQuantizedConvolutionMultipler, the scale product in float
        m = np.float64(np.float32(scale32(x) * s_w[0])) / np.float64(scale32(out))
        return fx.quantize_multiplier_array(np.full(cout, m))
    eff = np.float64(scale32(x)) * s_w.astype(np.float64) / np.float64(scale32(out))
    return fx.quantize_multiplier_array(eff)


def product_multiplier(
    a: QuantizedTensor, b: QuantizedTensor, out: QuantizedTensor
) -> tuple[int, int]:
    """(multiplier, shift) of an activation x activation product (BATCH_MATMUL, MUL):
    `double(float(s_a * s_b)) / double(s_out)` (GetQuantizedConvolutionMultipler)."""
    m = np.float64(np.float32(scale32(a) * scale32(b))) / np.float64(scale32(out))
    return fx.quantize_multiplier(float(m))


def rescale_multiplier(src: QuantizedTensor, dst: QuantizedTensor) -> tuple[bool, int, int]:
    """TFLite's QUANTIZE int -> int (`Requantize`): (False, 0, 0) when `src` and `dst` share
    scale and zero point, else (True, multiplier, shift) of `s_src / s_dst`."""
    if scale32(src) == scale32(dst) and zero_point(src) == zero_point(dst):
        return False, 0, 0
    return (True, *quantize_multiplier_of(src, dst))


def max_offset(t: QuantizedTensor) -> int:
    """Largest |q - zero_point| of a tensor's dtype."""
    lo, hi = dtype_range(t.dtype)
    return max(hi - zero_point(t), zero_point(t) - lo)


@dataclass(frozen=True)
class AddParams:
    """TFLite's quantized ADD / SUB (add.cc PrepareGeneralSubOp): both inputs shifted left by
    `left_shift`, rescaled to twice the larger input scale, summed, rescaled to the output."""

    left_shift: int
    input1: tuple[int, int]  # (multiplier, shift)
    input2: tuple[int, int]
    output: tuple[int, int]


def add_params(a: QuantizedTensor, b: QuantizedTensor, out: QuantizedTensor) -> AddParams:
    left = 15 if out.dtype == "int16" else 20
    # TFLite's int16 path needs zero points of 0 so that (q - zp) << 15 fits in int32; for
    # asymmetric 16-bit tensors (accelsim PTQ) the shift is lowered until it fits.
    while max(max_offset(a), max_offset(b)) << left > INT32_MAX:
        left -= 1
    s1, s2, so = scale32(a), scale32(b), scale32(out)
    # twice_max_input_scale = 2 * std::max(float, float): a float, widened to double
    twice = np.float64(np.float32(2) * max(s1, s2))
    return AddParams(
        left,
        fx.quantize_multiplier(float(np.float64(s1) / twice)),
        fx.quantize_multiplier(float(np.float64(s2) / twice)),
        fx.quantize_multiplier(float(twice / np.float64(np.float32((1 << left) * so)))),
    )


def mul_params(
    a: QuantizedTensor, b: QuantizedTensor, out: QuantizedTensor
) -> tuple[int, int, bool]:
    """TFLite's quantized MUL (mul.cc): `float(float(s_a * s_b) / s_out)` and whether the
    product of zero-point-subtracted operands needs int64 (TFLite multiplies in int32; its
    int16 kernel requires zero points of 0, so the product fits; asymmetric 16-bit tensors from
    accelsim PTQ take the int64 MultiplyByQuantizedMultiplier instead of wrapping).
    Returns (multiplier, shift, wide)."""
    m = np.float64(np.float32(np.float32(scale32(a) * scale32(b)) / scale32(out)))
    mult, shift = fx.quantize_multiplier(float(m))
    return mult, shift, max_offset(a) * max_offset(b) > INT32_MAX


def relu_multiplier(x: QuantizedTensor, out: QuantizedTensor) -> tuple[int, int]:
    """activations.cc QuantizedReluX: `float(s_in / s_out)`."""
    return fx.quantize_multiplier(float(np.float64(np.float32(scale32(x) / scale32(out)))))


def quantize_multiplier_of(x: QuantizedTensor, out: QuantizedTensor) -> tuple[int, int]:
    """quantize.cc / reduce.cc Prepare: `double(s_in) / double(s_out)`."""
    return fx.quantize_multiplier(float(np.float64(scale32(x)) / np.float64(scale32(out))))


def mean_multiplier(x: QuantizedTensor, out: QuantizedTensor, n: int) -> tuple[int, int]:
    """reference_ops::QuantizedMeanOrSum: 1/n folded into `double(s_in) / double(s_out)`."""
    mult, shift = quantize_multiplier_of(x, out)
    s = min(63 - (64 - int(n).bit_length()), 32, 31 + shift)
    return int((mult << s) // n), shift - s


def double_scales(
    x: QuantizedTensor, w: QuantizedTensor, out: QuantizedTensor, cout: int
) -> np.ndarray:
    """Per output channel effective scale in double precision, for TFLite's reference
    FULLY_CONNECTED (the overloads taking float scales, which requantize as
    `round(double(acc) * scale)`): `double(s_in) * double(s_w[c]) / double(s_out)`."""
    s_w = weight_scales(w, cout)
    return np.float64(scale32(x)) * s_w.astype(np.float64) / np.float64(scale32(out))
