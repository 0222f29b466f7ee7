"""Quantization parameters and the dtypes they map to: the one home of the affine mapping
`real = scale * (q - zero_point)` (Jacob et al. 2018, section 2.1; docs/quantization.md
section 1) that the graph IR, the importers, the quantizer, the reference executor and the
lowering share.

`quantize_array` / `dequantize_array` are ONNX's QuantizeLinear / DequantizeLinear as ONNX
Runtime's MLAS computes them (float32 division, round half to even), the rounding every QDQ
file and the QDQ exporter assume.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from accelsim.core.errors import ModelError

# Integer and float dtypes the IR knows, with their bit widths. int2/uint2/int4/uint4 tensors
# are held in int8/uint8 numpy arrays whose values are within the narrow range.
DTYPE_BITS = {
    "float32": 32,
    "float16": 16,
    "int2": 2,
    "uint2": 2,
    "int4": 4,
    "uint4": 4,
    "int8": 8,
    "uint8": 8,
    "int16": 16,
    "uint16": 16,
    "int32": 32,
    "int64": 64,
    "bool": 8,
}
FLOAT_DTYPES = ("float32", "float16")

# numpy storage dtype for each IR dtype.
NUMPY_DTYPE = {
    "float32": np.float32,
    "float16": np.float16,
    "int2": np.int8,
    "uint2": np.uint8,
    "int4": np.int8,
    "uint4": np.uint8,
    "int8": np.int8,
    "uint8": np.uint8,
    "int16": np.int16,
    "uint16": np.uint16,
    "int32": np.int32,
    "int64": np.int64,
    "bool": np.bool_,
}


def store_dtype(dtype: str) -> str:
    """The dtype a kernel buffer holds an IR dtype in (int4 -> int8; bool -> uint8, numpy's
    own byte per element: TVM's bool is a 1-bit type that no buffer argument takes)."""
    return "uint8" if dtype == "bool" else np.dtype(NUMPY_DTYPE[dtype]).name


def dtype_range(dtype: str) -> tuple[int, int]:
    """Smallest and largest value of an integer IR dtype."""
    bits = DTYPE_BITS[dtype]
    if dtype.startswith("u"):
        return 0, (1 << bits) - 1
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


@dataclass(frozen=True)
class QuantParams:
    """Affine quantization `real = scale * (q - zero_point)` (Jacob et al. 2018).

    Per-tensor when `axis` is None (one scale, one zero point); per-axis otherwise, with one
    entry per index of that axis.
    """

    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    axis: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale", tuple(float(s) for s in np.ravel(self.scale)))
        object.__setattr__(self, "zero_point", tuple(int(z) for z in np.ravel(self.zero_point)))
        if len(self.scale) != len(self.zero_point) and len(self.zero_point) != 1:
            raise ModelError(
                f"quantization parameters: {len(self.scale)} scales but "
                f"{len(self.zero_point)} zero points"
            )
        if self.axis is None and len(self.scale) != 1:
            raise ModelError(f"per-tensor quantization needs one scale, found {len(self.scale)}")
        if any(not (s > 0) or not np.isfinite(s) for s in self.scale):
            raise ModelError(f"quantization scale must be positive and finite, found {self.scale}")

    @property
    def per_channel(self) -> bool:
        return self.axis is not None

    def scales(self) -> np.ndarray:
        return np.asarray(self.scale, dtype=np.float64)

    def zero_points(self) -> np.ndarray:
        zp = np.asarray(self.zero_point, dtype=np.int64)
        if len(zp) == 1 and len(self.scale) > 1:
            zp = np.repeat(zp, len(self.scale))
        return zp

    def broadcast_shape(self, ndim: int) -> tuple[int, ...]:
        """Shape that broadcasts per-axis parameters against a tensor of `ndim` dims."""
        if self.axis is None:
            return (1,) * ndim
        shape = [1] * ndim
        shape[self.axis % ndim] = len(self.scale)
        return tuple(shape)

    @staticmethod
    def per_tensor(scale: float, zero_point: int = 0) -> QuantParams:
        return QuantParams((float(scale),), (int(zero_point),), None)


def scale_zp(quant: QuantParams | None, ndim: int) -> tuple[np.ndarray, np.ndarray]:
    """float32 scales and int64 zero points shaped to broadcast against an `ndim` tensor."""
    if quant is None:
        return np.ones((1,) * ndim, np.float32), np.zeros((1,) * ndim, np.int64)
    shape = quant.broadcast_shape(ndim) if ndim else ()
    return (np.asarray(quant.scale, np.float32).reshape(shape), quant.zero_points().reshape(shape))


def dequantize_array(
    q: np.ndarray, quant: QuantParams | None, fdtype: str = "float32"
) -> np.ndarray:
    """DequantizeLinear: `float32(q - zp) * scale` in float32, stored as `fdtype`."""
    q = np.asarray(q)
    s, z = scale_zp(quant, q.ndim)
    y = (q.astype(np.int64) - z).astype(np.float32) * s
    return y.astype(NUMPY_DTYPE[fdtype], copy=False)


def quantize_array(x: np.ndarray, quant: QuantParams, dtype: str) -> np.ndarray:
    """QuantizeLinear as MLAS computes it: `x / scale` (float32), clamp to
    [qmin - zp, qmax - zp] (NaN goes to the minimum, as MAXPS does), round half to even, + zp."""
    x = np.asarray(x, np.float32)
    s, z = scale_zp(quant, x.ndim)
    qmin, qmax = dtype_range(dtype)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        v = x / s
    lo, hi = (qmin - z).astype(np.float32), (qmax - z).astype(np.float32)
    v = np.where(np.isnan(v), lo, v)
    v = np.minimum(np.maximum(v, lo), hi)
    return (np.rint(v).astype(np.int64) + z).astype(NUMPY_DTYPE[dtype])
