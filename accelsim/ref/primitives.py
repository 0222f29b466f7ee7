"""Numeric building blocks shared by the float and the integer kernels.

Integer convolutions and matmuls are computed in float64 through BLAS: every product of
two integers of at most 16 bits and every partial sum stays below 2^53, so float64 is exact
(`exact_int_matmul` checks the bound and falls back to int64 otherwise).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from accelsim.model.ops import spatial_axes

_EXACT = float(2**53)


def to_nchw(x: np.ndarray, layout: str) -> np.ndarray:
    return x if layout == "NCHW" else x.transpose(0, 3, 1, 2)


def from_nchw(x: np.ndarray, layout: str) -> np.ndarray:
    return x if layout == "NCHW" else x.transpose(0, 2, 3, 1)


def pad_spatial(x: np.ndarray, pads, value=0) -> np.ndarray:
    """Pad an NCHW array by (top, left, bottom, right)."""
    pt, pl, pb, pr = pads
    if not (pt or pl or pb or pr):
        return x
    return np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=value)


def windows(x: np.ndarray, kernel, strides, dilations) -> np.ndarray:
    """Sliding windows of a padded NCHW array: (N, C, OH, OW, kh, kw)."""
    kh, kw = kernel
    sh, sw = strides
    dh, dw = dilations
    eff_h, eff_w = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    v = sliding_window_view(x, (eff_h, eff_w), axis=(2, 3))
    return v[:, :, ::sh, ::sw, ::dh, ::dw]


def conv2d_nchw(
    x: np.ndarray, w: np.ndarray, strides, dilations, pads, groups: int, pad_value=0.0
) -> np.ndarray:
    """Grouped 2-D convolution of NCHW `x` with OIHW `w` in float64; returns NCHW float64."""
    x = pad_spatial(np.asarray(x, dtype=np.float64), pads, pad_value)
    w = np.asarray(w, dtype=np.float64)
    n, c = x.shape[:2]
    cout, cin_g, kh, kw = w.shape
    g = groups
    sh, sw = strides
    dh, dw = dilations
    oh = (x.shape[2] - (kh - 1) * dh - 1) // sh + 1
    ow = (x.shape[3] - (kw - 1) * dw - 1) // sw + 1
    if kh == kw == 1:  # pointwise: a matmul over channels, no window copies
        xs = x[:, :, : (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw]
        out = np.matmul(w.reshape(g, cout // g, cin_g), xs.reshape(n, g, cin_g, oh * ow))
        return out.reshape(n, cout, oh, ow)
    if cin_g == 1 and cout == g:
        # depthwise: one multiply-add per kernel tap over strided views of the input
        out = np.zeros((n, cout, oh, ow))
        for i in range(kh):
            for j in range(kw):
                tap = x[:, :, i * dh : i * dh + (oh - 1) * sh + 1 : sh]
                tap = tap[:, :, :, j * dw : j * dw + (ow - 1) * sw + 1 : sw]
                out += w[:, 0, i, j][None, :, None, None] * tap
        return out
    win = windows(x, (kh, kw), strides, dilations)  # N, C, OH, OW, kh, kw
    # (N, G, Cin_g, OH, OW, kh, kw) -> (N, G, OH*OW, Cin_g*kh*kw)
    cols = win.reshape(n, g, cin_g, oh, ow, kh, kw).transpose(0, 1, 3, 4, 2, 5, 6)
    cols = cols.reshape(n, g, oh * ow, cin_g * kh * kw)
    wg = w.reshape(g, cout // g, cin_g * kh * kw).transpose(0, 2, 1)  # G, K, Cout_g
    out = np.matmul(cols, wg).transpose(0, 1, 3, 2)  # N, G, Cout_g, P
    return out.reshape(n, cout, oh, ow)


def conv2d(x: np.ndarray, w: np.ndarray, attrs, pad_value=0.0) -> np.ndarray:
    """conv2d in the node's data layout (weights OIHW); float64 result."""
    layout = attrs.get("data_layout", "NCHW")
    y = conv2d_nchw(
        to_nchw(x, layout),
        w,
        attrs.get("strides", (1, 1)),
        attrs.get("dilations", (1, 1)),
        attrs.get("pads", (0, 0, 0, 0)),
        attrs.get("groups", 1),
        pad_value,
    )
    return from_nchw(y, layout)


def exact_int_conv2d(x: np.ndarray, w: np.ndarray, attrs) -> np.ndarray:
    """Integer conv2d (zero points already subtracted; padding with 0 is then exact)."""
    cin_g, kh, kw = w.shape[1:]
    bound = float(np.abs(x).max(initial=0)) * float(np.abs(w).max(initial=0)) * cin_g * kh * kw
    if bound >= _EXACT:
        raise OverflowError("integer conv accumulators exceed the exact float64 range")
    return np.rint(conv2d(x, w, attrs)).astype(np.int64)


def exact_int_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Integer matmul with numpy broadcasting, exact."""
    k = a.shape[-1]
    bound = float(np.abs(a).max(initial=0)) * float(np.abs(b).max(initial=0)) * k
    if bound < _EXACT:
        return np.rint(np.matmul(a.astype(np.float64), b.astype(np.float64))).astype(np.int64)
    return np.matmul(a.astype(np.int64), b.astype(np.int64))


def pool_windows(x: np.ndarray, attrs, pad_value) -> np.ndarray:
    """Pooling windows in NCHW: (N, C, OH, OW, kh, kw), padded with `pad_value`."""
    layout = attrs.get("data_layout", "NCHW")
    xc = to_nchw(x, layout)
    kh, kw = attrs["kernel"]
    sh, sw = attrs.get("strides", (1, 1))
    pt, pl, pb, pr = attrs.get("pads", (0, 0, 0, 0))
    if attrs.get("ceil_mode", False):
        h, w_ = xc.shape[2], xc.shape[3]
        oh = -(-(h + pt + pb - kh) // sh) + 1
        ow = -(-(w_ + pl + pr - kw) // sw) + 1
        pb = max(pb, (oh - 1) * sh + kh - h - pt)
        pr = max(pr, (ow - 1) * sw + kw - w_ - pl)
    xp = pad_spatial(xc, (pt, pl, pb, pr), pad_value)
    return windows(xp, (kh, kw), (sh, sw), (1, 1))


def pool_counts(x_shape, attrs) -> np.ndarray:
    """Number of real (unpadded) elements in each pooling window: (OH, OW)."""
    layout = attrs.get("data_layout", "NCHW")
    _, ha, wa = spatial_axes(layout)
    ones = np.ones((1, 1, x_shape[ha], x_shape[wa]))
    return pool_windows(ones if layout == "NCHW" else ones.transpose(0, 2, 3, 1), attrs, 0.0).sum(
        axis=(-1, -2)
    )[0, 0]


def spatial_reduce_axes(layout: str) -> tuple[int, int]:
    _, ha, wa = spatial_axes(layout)
    return ha, wa
