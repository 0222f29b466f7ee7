"""Float pointwise functions as TE expressions that need no C math library.

The float tensors of a quantized graph (the GELU that ONNX Runtime's quantizer leaves in float
between a DequantizeLinear and a QuantizeLinear: Div, Erf, Mul, Add) and of float graphs get
kernels on every CPU/DSP target, including the Hexagon ones whose freestanding runtime has no
libm (`codegen.emulator.libm: false`). TVM's `tir.erf` / `tir.exp` / `tir.tanh` lower to calls
to libm's `erff` / `expf`, so the transcendental ones here are polynomials written out in TIR:
Eigen's rational erf (the one `topi.fast_erf` uses) and Cephes' expf (range reduction, a
polynomial, 2^n built in the exponent field, floor by truncation: freestanding targets have no
`floorf`); tanh and sigmoid from that exp. Measured against the reference's float64 values
(`accelsim.ref.fp_ops`): erf 3.8e-7 absolute over [-6, 6], exp 7.8e-8 relative over [-87, 87],
far inside `verify`'s float32 tolerance. Every function computes in float32.
"""

from __future__ import annotations

import math

from accelsim.lower.common import _tirx

F32 = "float32"

# Eigen's generic_fast_erf_float (TVM's topi.fast_erf): erf(x) = x P(x^2) / Q(x^2) on [-4, 4]
_ERF_P = (
    -2.72614225801306e-10,
    2.77068142495902e-08,
    -2.10102402082508e-06,
    -5.69250639462346e-05,
    -7.34990630326855e-04,
    -2.95459980854025e-03,
    -1.60960333262415e-02,
)
_ERF_Q = (
    -1.45660718464996e-05,
    -2.13374055278905e-04,
    -1.68282697438203e-03,
    -7.37332916720468e-03,
    -1.42647390514189e-02,
)
# Cephes expf: x = n ln2 + r (ln2 split in two so n * C1 is exact), exp(r) by a degree-7
# polynomial, 2^n built in the exponent field
_EXP_P = (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1)
_LN2_HI, _LN2_LO, _LOG2E = 0.693359375, -2.12194440e-4, 1.44269504088896341


def _c(v: float):
    return _tirx().const(v, F32)


def _horner(x, coeffs):
    p = _c(coeffs[0])
    for k in coeffs[1:]:
        p = p * x + _c(k)
    return p


def erf(v):
    """Max abs error 3.8e-7 against math.erf (measured over [-6, 6])."""
    x = _clip(v, -4.0, 4.0)
    x2 = x * x
    return x * _horner(x2, _ERF_P) / _horner(x2, _ERF_Q)


def exp(v):
    """Max rel error 7.8e-8 against numpy's exp over [-87, 87]; inputs are clamped to
    [-87, 88] so 2^n stays a normal float32."""
    tirx = _tirx()
    x = _clip(v, -87.0, 88.0)
    t = x * _c(_LOG2E) + _c(0.5)
    tr = t.astype("int32")  # truncation toward zero; floor below (no libm floorf)
    n = tr - tirx.Select(t < tr.astype(F32), 1, 0)
    nf = n.astype(F32)
    r = x - nf * _c(_LN2_HI) - nf * _c(_LN2_LO)
    y = (_horner(r, _EXP_P) * r + _c(0.5)) * r * r + r + _c(1.0)
    two_n = tirx.reinterpret(F32, tirx.shift_left(n + 127, 23))
    return two_n * y


def tanh(v):
    """1 - 2 / (exp(2x) + 1): abs error ~1e-7 (relative error grows near 0, where the value
    is small)."""
    return _c(1.0) - _c(2.0) / (exp(_c(2.0) * v) + _c(1.0))


def sigmoid(v):
    return _c(1.0) / (_c(1.0) + exp(-v))


def _clip(v, lo: float, hi: float):
    tirx = _tirx()
    return tirx.max(tirx.min(v, tirx.const(hi, F32)), tirx.const(lo, F32))


def gelu(v, approximate: str = "none"):
    if approximate == "tanh":
        inner = _c(math.sqrt(2.0 / math.pi)) * (v + _c(0.044715) * v * v * v)
        return _c(0.5) * v * (_c(1.0) + tanh(inner))
    return _c(0.5) * v * (_c(1.0) + erf(v * _c(1.0 / math.sqrt(2.0))))


# op -> f(float32 expression, attr(name, default)): the reference's float functions
UNARY = {
    "erf": lambda v, attr: erf(v),
    "sigmoid": lambda v, attr: sigmoid(v),
    "tanh": lambda v, attr: tanh(v),
    "gelu": lambda v, attr: gelu(v, attr("approximate", "none")),
    "neg": lambda v, attr: -v,
    "sqrt": lambda v, attr: _tirx().sqrt(v),
    "rsqrt": lambda v, attr: _c(1.0) / _tirx().sqrt(v),
    "hard_sigmoid": lambda v, attr: _clip(
        _c(float(attr("alpha", 0.2))) * v + _c(float(attr("beta", 0.5))), 0.0, 1.0
    ),
    "hard_swish": lambda v, attr: v * _clip(v + _c(3.0), 0.0, 6.0) / _c(6.0),
}
