"""Grouped convolution (groups > 1, other than depthwise: ShuffleNet, ResNeXt, the converter's
split convolutions): each output channel sums over its group's input channels only.

Integer arithmetic is the conv2d kernels' (`accelsim.lower.ops`): raw activations times weights,
the input zero point folded into the bias per output channel (`bias - zp_x * sum(w[o])`, the
sum running over the group's channels exactly as the reference's), padded taps reading the zero
point, per-channel requantization in the shared epilogue. The reduction is a plain TE sum (no
tensor intrinsic: a group's few input channels rarely fill one); the epilogue is scheduled as an
elementwise kernel.
"""

from __future__ import annotations

import numpy as np

from accelsim.core.qparams import store_dtype
from accelsim.lower.common import (
    Built,
    Ctx,
    NotLowered,
    _te,
    _with_arith,
    pad_input,
    to_kernel_layout,
    unpacker,
)
from accelsim.lower.ops import _elementwise_spec, _mac_args, _mac_consts, _mac_types
from accelsim.model.ops import spatial_axes


def grouped_conv2d(ctx: Ctx) -> Built:
    te = _te()
    node, g = ctx.node, ctx.graph
    x_i, w_i, b_i, o_i = ctx.info(0), ctx.info(1), ctx.info(2), ctx.out
    if not g.is_constant(node.inputs[1]):
        raise NotLowered("weights are not a constant")
    if b_i is not None and not g.is_constant(node.inputs[2]):
        raise NotLowered("bias is not a constant")
    w = np.asarray(g.constants[node.inputs[1]])
    bias_c = np.asarray(g.constants[node.inputs[2]]) if b_i is not None else None
    groups = int(node.attr("groups", 1))
    layout = node.attr("data_layout", "NCHW")
    O, Ig, KH, KW = w.shape
    Og = O // groups
    ca, ha, wa = spatial_axes(layout)
    N, H, W_, C = x_i.shape[0], x_i.shape[ha], x_i.shape[wa], x_i.shape[ca]
    OH, OW = o_i.shape[ha], o_i.shape[wa]
    (sh, sw), (dh, dw) = node.attr("strides", (1, 1)), node.attr("dilations", (1, 1))
    pt, pl, pb, pr = node.attr("pads", (0, 0, 0, 0))
    t = _mac_types(ctx, x_i, w_i, b_i, o_i)
    if t.w4:
        raise NotLowered("4-bit weights in a grouped convolution")
    odt = store_dtype(o_i.dtype)
    args = _mac_args(O, t.xdt, t.accdt, odt, t.ft, t.wide, t.fscale)
    xk = te.placeholder((N, H, W_, C), t.xdt, name="x")
    wk = te.placeholder((O, KH, KW, Ig), t.wdt, name="w")
    xp = pad_input(xk, args.pad_value, None, C, (pt, pl, pb, pr))
    rkh = te.reduce_axis((0, KH), "kh")
    rkw = te.reduce_axis((0, KW), "kw")
    ric = te.reduce_axis((0, Ig), "ic")
    accdt = t.accdt
    acc = te.compute(
        (N, OH, OW, O),
        lambda n, oh, ow, oc: te.sum(
            xp[n, oh * sh + rkh * dh, ow * sw + rkw * dw, (oc // Og) * Ig + ric].astype(accdt)
            * wk[oc, rkh, rkw, ric].astype(accdt),
            axis=[rkh, rkw, ric],
        ),
        name="acc",
    )
    y = te.compute(
        (N, OH, OW, O), lambda n, oh, ow, oc: args.epilogue(acc[n, oh, ow, oc], oc), name="y"
    )
    recipe = ctx.recipe("elementwise", t.precision)
    spec = _elementwise_spec(ctx, N * OH * OW * O, 32, recipe)
    spec.fuse = True
    consts = _mac_consts(node, x_i, w_i, o_i, w, bias_c, t.ft, t.wide, t.fscale)
    wpacked = np.ascontiguousarray(w.transpose(0, 2, 3, 1).astype(np.dtype(t.wdt)))
    src = node.inputs[0]

    def pack(values):
        out = {"x": to_kernel_layout(np.asarray(values[src]), layout).astype(np.dtype(t.xdt))}
        out["w"] = wpacked
        out.update({k: consts[k] for k in args.names})
        return out

    signature = {
        "op": "conv2d",
        "class": "grouped_conv2d",
        "x": [[N, H, W_, C], t.xdt],
        "w": [[O, KH, KW, Ig], t.wdt],
        "groups": groups,
        "window": [[KH, KW], [sh, sw], [dh, dw], [pt, pl, pb, pr]],
        "y": [[N, OH, OW, O], odt],
        "block": spec.axes[0].vsplit,
    }
    built = Built(
        "elementwise",
        [xk, wk, *args.tensors, y],
        ["x", "w", *args.names, "y"],
        spec,
        recipe,
        pack,
        unpacker(layout),
        signature,
        (src,),
    )
    return _with_arith(built, t.ft, 2 * KH * KW * Ig + 1)
