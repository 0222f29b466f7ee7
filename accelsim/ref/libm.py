"""The C library's single-precision transcendental functions, as TFLite's kernels call them.

TFLite builds its lookup tables (LUTPopulate) with `std::erfc`, `std::tanh` and `std::exp` on
floats, i.e. the platform's `erfcf`, `tanhf` and `expf`. glibc's versions are not correctly
rounded: over [-6, 6] its `erfcf` differs from the correctly rounded value in about one input
in five, `tanhf` in one in ten, and one ulp in a table entry moves an int16 GELU output by one
step. So the reference calls the same functions through ctypes. Where no C math library can be
loaded, the correctly rounded value (float64 rounded to float32) is the fallback.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
from collections.abc import Callable

import numpy as np

F32 = np.float32


def _c_function(name: str) -> Callable[[float], float] | None:
    for lib_name in (ctypes.util.find_library("m"), "libm.so.6", None):
        try:
            fn = getattr(ctypes.CDLL(lib_name), name)
        except (OSError, AttributeError, TypeError):
            continue
        fn.restype = ctypes.c_float
        fn.argtypes = [ctypes.c_float]
        return fn
    return None


def _vectorized(
    name: str, fallback: Callable[[float], float]
) -> Callable[[np.ndarray], np.ndarray]:
    c_fn = _c_function(name)
    scalar = c_fn if c_fn is not None else (lambda v: float(F32(fallback(v))))
    ufunc = np.frompyfunc(scalar, 1, 1)

    def apply(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, F32)
        return np.asarray(ufunc(x.astype(np.float64)), F32).reshape(x.shape)

    apply.__name__ = name
    return apply


def _exp(v: float) -> float:
    try:
        return math.exp(v)
    except OverflowError:
        return math.inf


erfcf = _vectorized("erfcf", math.erfc)
tanhf = _vectorized("tanhf", math.tanh)
expf = _vectorized("expf", _exp)
