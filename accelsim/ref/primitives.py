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


def pool_counts_with_pads(x_shape, attrs) -> np.ndarray:
    """Taps of each pooling window inside the explicitly padded input, (OH, OW): the divisor
    of `count_include_pad` averaging. Kernel size, except where `ceil_mode` lets a window hang
    past the padding (PyTorch's and ONNX Runtime's AveragePool do not count that part)."""
    layout = attrs.get("data_layout", "NCHW")
    _, ha, wa = spatial_axes(layout)
    pt, pl, pb, pr = attrs.get("pads", (0, 0, 0, 0))
    ones = np.ones((1, 1, x_shape[ha] + pt + pb, x_shape[wa] + pl + pr))
    unpadded = dict(attrs, pads=(0, 0, 0, 0), data_layout="NCHW")
    return pool_windows(ones, unpadded, 0.0).sum(axis=(-1, -2))[0, 0]


def spatial_reduce_axes(layout: str) -> tuple[int, int]:
    _, ha, wa = spatial_axes(layout)
    return ha, wa


# ---------------------------------------------------------------------------------------------
# Data movement shared by every domain (the values are copied, never computed)
# ---------------------------------------------------------------------------------------------


def slice_array(x: np.ndarray, attrs) -> np.ndarray:
    """`slice`: starts / ends / steps resolved per axis (a negative end runs to the start)."""
    index = tuple(
        slice(b, None if e < 0 else e, st)
        for b, e, st in zip(attrs["starts"], attrs["ends"], attrs["steps"])
    )
    return x[index]


def normalized_indices(idx: np.ndarray, size: int) -> np.ndarray:
    """Indices with negatives counted from the end (ONNX and TFLite both accept them);
    IndexError for any outside [-size, size)."""
    idx = np.asarray(idx).astype(np.int64)
    if idx.size and (idx.min() < -size or idx.max() >= size):
        raise IndexError(f"index out of range [{-size}, {size}): {idx.min()}..{idx.max()}")
    return np.where(idx < 0, idx + size, idx)


def gather_array(data: np.ndarray, idx: np.ndarray, attrs) -> np.ndarray:
    axis = attrs.get("axis", 0) % data.ndim
    return np.take(data, normalized_indices(idx, data.shape[axis]), axis=axis)


def gather_elements_array(data: np.ndarray, idx: np.ndarray, attrs) -> np.ndarray:
    axis = attrs.get("axis", 0) % data.ndim
    return np.take_along_axis(data, normalized_indices(idx, data.shape[axis]), axis=axis)


def depth_to_space_array(x: np.ndarray, attrs) -> np.ndarray:
    """DCR: output channel c, offsets (i, j) read input channel (i*b + j)*C' + c (TFLite's
    DEPTH_TO_SPACE and ONNX's default); CRD: c*b*b + i*b + j (PixelShuffle)."""
    b = attrs["blocksize"]
    layout = attrs.get("data_layout", "NCHW")
    xc = to_nchw(x, layout)
    n, c, h, w = xc.shape
    co = c // (b * b)
    if attrs.get("mode", "DCR") == "CRD":
        y = xc.reshape(n, co, b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
    else:
        y = xc.reshape(n, b, b, co, h, w).transpose(0, 3, 4, 1, 5, 2)
    return from_nchw(y.reshape(n, co, h * b, w * b), layout)


PAD_MODES = ("constant", "reflect", "symmetric", "edge")


def pad_array(x: np.ndarray, pads, mode: str, value=0) -> np.ndarray:
    if mode == "constant":
        return np.pad(x, pads, constant_values=value)
    return np.pad(x, pads, mode=mode)


# Resize. Source coordinates are computed in float32, as ONNX Runtime and TFLite do.
# ONNX's coordinate_transformation_mode names, plus TFLite's three rules (which scale by
# in/out instead of dividing by out/in):
#   tflite_half_pixel: (x + 0.5) * in/out - 0.5 (half_pixel_centers)
#   tflite_align_corners: x * (in - 1)/(out - 1)
#   tflite_asymmetric: x * in/out
RESIZE_COORDINATE_MODES = (
    "half_pixel",
    "pytorch_half_pixel",
    "align_corners",
    "asymmetric",
    "tf_half_pixel_for_nn",
    "tflite_half_pixel",
    "tflite_align_corners",
    "tflite_asymmetric",
)
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")

_F = np.float32


def resize_source_coords(out_size: int, in_size: int, mode: str, scale: float | None) -> np.ndarray:
    """Float32 source coordinate of each output index along one axis. `scale` is ONNX's
    out/in factor (float32), given or derived from the sizes."""
    x = np.arange(out_size, dtype=_F)
    if mode.startswith("tflite_"):
        if mode == "tflite_align_corners" and out_size > 1:
            s = _F(in_size - 1) / _F(out_size - 1)
        else:
            s = _F(in_size) / _F(out_size)
        if mode == "tflite_half_pixel":
            return ((x + _F(0.5)) * s - _F(0.5)).astype(_F)
        return (x * s).astype(_F)
    sc = _F(scale) if scale else _F(out_size) / _F(in_size)
    if mode == "half_pixel":
        return ((x + _F(0.5)) / sc - _F(0.5)).astype(_F)
    if mode == "pytorch_half_pixel":
        return ((x + _F(0.5)) / sc - _F(0.5)).astype(_F) if out_size > 1 else np.zeros(1, _F)
    if mode == "align_corners":
        if out_size == 1:
            return np.zeros(1, _F)
        return (x * _F(in_size - 1) / _F(out_size - 1)).astype(_F)
    if mode == "asymmetric":
        return (x / sc).astype(_F)
    if mode == "tf_half_pixel_for_nn":
        return ((x + _F(0.5)) / sc).astype(_F)
    raise ValueError(f"unknown coordinate_transformation_mode '{mode}'")


def resize_nearest_indices(
    out_size: int, in_size: int, coord_mode: str, nearest: str | None, scale: float | None
) -> np.ndarray:
    """Source index of each output index along one axis for nearest resizing."""
    if coord_mode.startswith("tflite_"):
        # TFLite's GetNearestNeighbor: (y + offset) * scale in float32, floored (rounded half
        # away from zero with align_corners); the half-pixel offset is 0.5 with no -0.5 shift
        align = coord_mode == "tflite_align_corners"
        s = (
            _F(in_size - 1) / _F(out_size - 1)
            if align and out_size > 1
            else _F(in_size) / _F(out_size)
        )
        off = _F(0.5) if coord_mode == "tflite_half_pixel" else _F(0.0)
        v = ((np.arange(out_size, dtype=_F) + off) * s).astype(np.float64)
        idx = np.sign(v) * np.floor(np.abs(v) + 0.5) if align else np.floor(v)
    else:
        c = resize_source_coords(out_size, in_size, coord_mode, scale).astype(np.float64)
        if nearest == "floor":
            idx = np.floor(c)
        elif nearest == "ceil":
            idx = np.ceil(c)
        elif nearest == "round_prefer_ceil":
            idx = np.floor(c + 0.5)
        else:  # round_prefer_floor, ONNX's default
            idx = np.ceil(c - 0.5)
    return np.clip(idx, 0, in_size - 1).astype(np.int64)


def resize_nearest(x: np.ndarray, attrs) -> np.ndarray:
    layout = attrs.get("data_layout", "NCHW")
    xc = to_nchw(x, layout)
    (oh, ow), (ih, iw) = attrs["size"], xc.shape[2:]
    scales = attrs.get("scales") or (None, None)
    cm, nm = attrs.get("coordinate_transformation_mode"), attrs.get("nearest_mode")
    ys = resize_nearest_indices(oh, ih, cm, nm, scales[0])
    xs = resize_nearest_indices(ow, iw, cm, nm, scales[1])
    return from_nchw(xc[:, :, ys][:, :, :, xs], layout)


def _onnx_linear_taps(coords: np.ndarray, size: int):
    """ONNX Runtime's taps: the coordinate clamped into [0, size - 1], lower index by
    truncation, weights |c - lower| and |c - upper| (both 0.5 when the taps coincide)."""
    c = np.clip(coords, _F(0), _F(size - 1)).astype(_F)
    i1 = np.minimum(c.astype(np.int64), size - 1)
    i2 = np.minimum(i1 + 1, size - 1)
    d1 = np.abs(c - i1.astype(_F)).astype(_F)
    d2 = np.abs(c - i2.astype(_F)).astype(_F)
    same = i1 == i2
    return i1, i2, np.where(same, _F(0.5), d1), np.where(same, _F(0.5), d2)


def _tflite_linear_taps(coords: np.ndarray, size: int):
    """TFLite's ComputeInterpolationValues: lower max(floor(c), 0), upper min(ceil(c), size-1),
    the fraction c - lower (negative at a half-pixel edge, where both taps are row 0)."""
    lo = np.maximum(np.floor(coords).astype(np.int64), 0)
    hi = np.minimum(np.ceil(coords).astype(np.int64), size - 1)
    return lo, hi, (coords - lo.astype(_F)).astype(_F)


def linear_resize_taps(attrs, in_hw: tuple[int, int]):
    """The taps of a bilinear resize as the framework computes them, per axis: (lower index,
    upper index, lower weight, upper weight), float32 weights; and the form, "tflite"
    (X * wy * wx, taps in order (y0,x0) (y1,x0) (y0,x1) (y1,x1)) or "onnx" ((wx * wy) * X,
    taps in order (y1,x1) (y1,x2) (y2,x1) (y2,x2))."""
    (oh, ow), (ih, iw) = attrs["size"], in_hw
    scales = attrs.get("scales") or (None, None)
    cm = attrs.get("coordinate_transformation_mode")
    cy = resize_source_coords(oh, ih, cm, scales[0])
    cx = resize_source_coords(ow, iw, cm, scales[1])
    if cm.startswith("tflite_"):
        axes = []
        for c, n in ((cy, ih), (cx, iw)):
            lo, hi, f = _tflite_linear_taps(c, n)
            axes.append((lo, hi, (_F(1) - f).astype(_F), f))
        return "tflite", axes[0], axes[1]
    (y1, y2, dy1, dy2), (x1, x2, dx1, dx2) = _onnx_linear_taps(cy, ih), _onnx_linear_taps(cx, iw)
    return "onnx", (y1, y2, dy2, dy1), (x1, x2, dx2, dx1)


def linear_resize_terms(form: str) -> tuple[tuple[int, int], ...]:
    """(row tap, column tap) of each term in summation order (0 lower, 1 upper)."""
    return (
        ((0, 0), (1, 0), (0, 1), (1, 1)) if form == "tflite" else ((0, 0), (0, 1), (1, 0), (1, 1))
    )


def resize_linear_float(x: np.ndarray, attrs) -> np.ndarray:
    """Bilinear resize in float32, term by term as the frameworks compute it: ONNX Runtime's
    (dx * dy) * X summed over the four taps, TFLite's X * (1 - fy) * (1 - fx) + ..."""
    layout = attrs.get("data_layout", "NCHW")
    xc = to_nchw(np.asarray(x, _F), layout)
    form, ytaps, xtaps = linear_resize_taps(attrs, xc.shape[2:])
    terms = []
    for r, c in linear_resize_terms(form):
        tap = xc[:, :, ytaps[r]][:, :, :, xtaps[c]]
        wy, wx = ytaps[2 + r][:, None], xtaps[2 + c][None, :]
        if form == "tflite":
            terms.append(((tap * wy).astype(_F) * wx).astype(_F))
        else:
            terms.append(((wx * wy).astype(_F) * tap).astype(_F))
    y = terms[0]
    for t in terms[1:]:
        y = (y + t).astype(_F)
    return from_nchw(y, layout)
