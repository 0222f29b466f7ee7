"""Per-operator TVM TE computes for the accelerator, and the numpy packing that feeds them.

One `LayerDef` per graph node the accelerator runs: conv2d (groups == 1), depthwise conv2d, dense
and add. Integer semantics are those of `accelsim.ref.gemmlowp_ops`, bit for bit; the
requantization epilogue is written with the TIR expressions of `accelsim.lower.requant` (shared
with the CPU/DSP lowering).

Conventions (the accelerator's memory image):
- 4-D activations are NHWC in DRAM, whatever the graph's layout; 4-bit tensors are two per byte
  (the IR and the TE buffers hold one value per int8 element; the `DramTensor.bits` of the
  program's DRAM map say how they are stored).
- conv2d weights are packed `[O/lanes][KH][KW][I/depth][lanes][depth]` (the VMAC micro-op reads
  one `lanes x depth` block), dense `[O/lanes][I/depth][lanes][depth]`, depthwise `[KH][KW][C]`;
  output and input channels are zero-padded to whole blocks.
- The input zero point is folded into the bias (`bias - Z_x * sum(w)`, as gemmlowp and XNNPACK
  do), and padded taps read `Z_x`, so the MAC datapath multiplies raw operands and weights must
  be symmetric (zero point 0). The accumulator starts from the folded bias (the `BIAS`
  instruction), which is why the reduction's init is rewritten to `bias[c]` (TE's `te.sum(init=)`
  does not reach `create_prim_func`).

A node the accelerator cannot run raises `NotAccelerated` with the reason; it then runs on the
host core.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from accelsim.accel.intrin import vmac
from accelsim.accel.isa import DramTensor
from accelsim.core import requant as rp
from accelsim.core.errors import AccelsimError
from accelsim.core.qparams import DTYPE_BITS
from accelsim.core.tvm_env import import_tvm
from accelsim.lower.intrin import Intrinsic
from accelsim.model.graph import Graph, Node, TensorInfo
from accelsim.model.ops import activation_bounds, node_macs, op_class, spatial_axes


class NotAccelerated(AccelsimError):
    """A node the accelerator does not run (the message says why); it runs on the host."""


ACCEL_OPS = ("conv2d", "dense", "add")


@dataclass(frozen=True)
class TileAxis:
    """A loop of the main block that the tiler may split: `name.o` (tile loop) and `name.i`
    (loop inside the tile), plus `name.v` of `vector` elements when the axis is the lane axis.
    `extent` and `block` are in elements; tile sizes are multiples of `block` dividing `extent`."""

    name: str
    extent: int
    block: int
    reduce: bool = False
    vector: int = 0  # lanes split off as `name.v` (tensorized)
    unit: str = ""
    elems_per_iter: int = 1  # elements per iteration of the TE loop (ic: `depth`, with icv inside)


@dataclass(frozen=True)
class Staged:
    """A kernel input staged into a scratchpad. `box(cover)` gives the DRAM region (one extent per
    tensor dimension) when `cover[axis]` elements of each tile axis are covered."""

    tensor: str
    space: str
    bits: int  # bits per element in the scratchpad
    dram_bits: int
    box: Callable[[Mapping[str, int]], tuple[int, ...]]
    reader: str  # block reading it: "main", "init" or "epilogue"


@dataclass(eq=False)
class LayerDef:
    node: Node
    op_class: str  # conv2d, depthwise_conv2d, dense, add
    mode: str  # wNaM of the MAC array ("" for add)
    wbits: int
    abits: int
    obits: int
    wide: bool
    te_args: list  # TE tensors in kernel argument order (output last)
    main: str  # block of the main computation ("acc", or "y" for add)
    epilogue: str | None  # the requantize block ("y")
    pad_stage: bool  # a "pad" stage feeds the main block (inlined into the load)
    loops: tuple[str, ...]  # the main block's loops as created
    tile_axes: tuple[TileAxis, ...]
    staged: tuple[Staged, ...]
    acc_box: Callable[[Mapping[str, int]], int] | None
    out_box: Callable[[Mapping[str, int]], int]
    acc_bits: int
    out_buf_bits: int
    dram: dict[str, DramTensor]
    intrinsic: Intrinsic | None  # the VMAC of the main block (`accelsim.accel.intrin`)
    imm: dict[str, Any]
    macs: int
    signature: dict
    pack: Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]]
    unpack: Callable[[np.ndarray], np.ndarray]
    output: str  # graph tensor written
    inputs: tuple[str, ...]  # graph tensors read (activations)
    extents: dict = field(default_factory=dict)  # extents of the untiled loops (n, kh, kw, icv)
    meta: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------


def _roundup(v: int, m: int) -> int:
    return -(-v // m) * m


def _per_tensor(info: TensorInfo | None, what: str) -> None:
    if info is None or not info.is_quantized:
        raise NotAccelerated(f"{what} is not a quantized integer tensor")
    if info.quant.per_channel and len(set(info.quant.scale)) > 1:
        raise NotAccelerated(f"{what} is quantized per channel")


def _storage(dtype: str) -> str:
    """TE dtype holding an IR dtype (int4 -> int8)."""
    bits = DTYPE_BITS[dtype]
    if bits <= 8:
        return "int8" if not dtype.startswith("u") else "uint8"
    return "int16" if not dtype.startswith("u") else "uint16"


def _qclamp(info: TensorInfo, attrs) -> tuple[int, int]:
    from accelsim.ref.int_ops import quantized_clamp

    lo, hi = activation_bounds(attrs)
    return quantized_clamp(info, lo, hi)


def to_nhwc(arr: np.ndarray, layout: str) -> np.ndarray:
    from accelsim.lower.common import to_kernel_layout  # one definition of the layout change

    return to_kernel_layout(arr, layout)


def from_nhwc(arr: np.ndarray, layout: str) -> np.ndarray:
    from accelsim.lower.common import from_kernel_layout

    return from_kernel_layout(arr, layout)


def _multipliers(x_i: TensorInfo, w_i: TensorInfo, o_i: TensorInfo, cout: int, padded: int):
    """Per-channel (multiplier, shift) (`accelsim.core.requant`); padding channels get (0, 0)."""
    try:
        mult, shift = rp.conv_multipliers(x_i, w_i, o_i, cout)
    except rp.RequantError as exc:
        raise NotAccelerated(str(exc)) from None
    m = np.zeros(padded, np.int64)
    s = np.zeros(padded, np.int64)
    m[:cout] = mult
    s[:cout] = shift
    return m, s


def _check_mode(config, wbits: int, abits: int) -> str:
    mode = f"w{wbits}a{abits}"
    if not config.supports(mode):
        raise NotAccelerated(
            f"the lanes cannot do {mode} (they do {', '.join(config.macs_per_lane)})"
        )
    return mode


def _common_quant(graph: Graph, node: Node, x_i, w_i, o_i):
    _per_tensor(x_i, "input")
    _per_tensor(o_i, "output")
    if graph.requant_mode != "gemmlowp":
        raise NotAccelerated(
            f"requant_mode '{graph.requant_mode}' (the accelerator implements "
            f"gemmlowp fixed-point requantization)"
        )
    if w_i is None or not w_i.is_quantized:
        raise NotAccelerated("weights are not quantized")
    if any(z != 0 for z in w_i.quant.zero_point):
        raise NotAccelerated("asymmetric weights (the MAC datapath takes symmetric weights)")
    if not graph.is_constant(node.inputs[1]):
        raise NotAccelerated("weights are not a constant")
    if len(node.inputs) > 2 and node.inputs[2] and not graph.is_constant(node.inputs[2]):
        raise NotAccelerated("bias is not a constant")


def _requant_expr(acc, c, mult, shift, zp_out: int, qmin: int, qmax: int, wide: bool, odt: str):
    from accelsim.lower import requant as rq

    tirx = import_tvm().tirx
    r = rq.mbqm64(acc, mult[c], shift[c]) if wide else rq.mbqm(acc, mult[c], shift[c])
    return rq.clamp_add(
        r, tirx.const(zp_out, "int32"), tirx.const(qmin, "int32"), tirx.const(qmax, "int32")
    ).astype(odt)


# ------------------------------------------------------------------------------------------------
# conv2d (groups == 1), dense
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ContractionOperands:
    """The operands of a conv2d / dense the accelerator runs, checked (shared by the code
    generator below and the shape-only model, accelsim.accel.analytic)."""

    x: TensorInfo
    w: TensorInfo
    b: TensorInfo | None
    out: TensorInfo
    wbits: int
    abits: int
    obits: int
    mode: str
    wide: bool


def contraction_operands(graph: Graph, node: Node, config) -> ContractionOperands:
    """Check a conv2d / dense against the accelerator (quantization, requantization mode, a MAC
    mode for its bit widths) and return its operands; NotAccelerated says why not."""
    x_i = graph.tensors[node.inputs[0]]
    w_i = graph.tensors[node.inputs[1]]
    b_i = graph.tensors[node.inputs[2]] if len(node.inputs) > 2 and node.inputs[2] else None
    o_i = graph.tensors[node.outputs[0]]
    _common_quant(graph, node, x_i, w_i, o_i)
    if node.op == "dense" and node.attr("requant") == "double":
        raise NotAccelerated(
            "dense with double-precision requantization (TFLite import): the "
            "accelerator requantizes in fixed point"
        )
    wbits, abits, obits = DTYPE_BITS[w_i.dtype], DTYPE_BITS[x_i.dtype], DTYPE_BITS[o_i.dtype]
    return ContractionOperands(
        x_i,
        w_i,
        b_i,
        o_i,
        wbits,
        abits,
        obits,
        _check_mode(config, wbits, abits),
        rp.is_wide(x_i, w_i, b_i),
    )


def contraction(graph: Graph, node: Node, config) -> LayerDef:
    tvm = import_tvm()
    te, tirx = tvm.te, tvm.tirx
    is_dense = node.op == "dense"
    ops = contraction_operands(graph, node, config)
    x_i, w_i, b_i, o_i = ops.x, ops.w, ops.b, ops.out
    wbits, abits, obits, mode, wide = ops.wbits, ops.abits, ops.obits, ops.mode, ops.wide
    m = config.mode(mode)
    L, D = config.lanes, m.depth
    w = np.asarray(graph.constants[node.inputs[1]])
    bias_c = np.asarray(graph.constants[node.inputs[2]]) if b_i is not None else None
    layout = node.attr("data_layout", "NCHW")
    if is_dense:
        O, I = w.shape
        N = int(np.prod(x_i.shape)) // I
        KH = KW = H = W_ = OH = OW = 1
        sh = sw = dh = dw = 1
        pt = pl = pb = pr = 0
    else:
        if node.attr("groups", 1) != 1:
            raise NotAccelerated(
                f"grouped convolution (groups={node.attr('groups')}) other than depthwise"
            )
        O, I, KH, KW = w.shape
        ca, ha, wa = spatial_axes(layout)
        N, H, W_ = x_i.shape[0], x_i.shape[ha], x_i.shape[wa]
        OH, OW = o_i.shape[ha], o_i.shape[wa]
        sh, sw = node.attr("strides", (1, 1))
        dh, dw = node.attr("dilations", (1, 1))
        pt, pl, pb, pr = node.attr("pads", (0, 0, 0, 0))
    OCp, ICp = _roundup(O, L), _roundup(I, D)
    xdt = _storage(x_i.dtype)
    wdt = "int16" if wbits > 8 else "int8"
    odt = _storage(o_i.dtype)
    accdt = "int64" if wide else "int32"
    zx, zo = rp.zero_point(x_i), rp.zero_point(o_i)
    qmin, qmax = _qclamp(o_i, node.attrs)

    if is_dense:
        x = te.placeholder((N, I), xdt, name="x")
        wp = te.placeholder((OCp // L, ICp // D, L, D), wdt, name="w")
    else:
        x = te.placeholder((N, H, W_, I), xdt, name="x")
        wp = te.placeholder((OCp // L, KH, KW, ICp // D, L, D), wdt, name="w")
    bias = te.placeholder((OCp,), accdt, name="bias")
    mult = te.placeholder((OCp,), "int32", name="mult")
    shift = te.placeholder((OCp,), "int32", name="shift")
    padv = tirx.const(zx, xdt)
    need_pad = bool(pt or pl or pb or pr) or ICp != I
    if need_pad:
        if is_dense:
            xin = te.compute(
                (N, ICp), lambda n, c: tirx.if_then_else(c < I, x[n, c], padv), name="pad"
            )
        else:
            Hp, Wp = H + pt + pb, W_ + pl + pr
            xin = te.compute(
                (N, Hp, Wp, ICp),
                lambda n, h, ww, c: tirx.if_then_else(
                    tirx.all(h >= pt, h < H + pt, ww >= pl, ww < W_ + pl, c < I),
                    x[n, h - pt, ww - pl, c],
                    padv,
                ),
                name="pad",
            )
    else:
        xin = x
    ric = te.reduce_axis((0, ICp // D), "ic")
    ricv = te.reduce_axis((0, D), "icv")
    if is_dense:
        acc = te.compute(
            (N, OCp),
            lambda n, oc: te.sum(
                xin[n, ric * D + ricv].astype(accdt) * wp[oc // L, ric, oc % L, ricv].astype(accdt),
                axis=[ric, ricv],
            ),
            name="acc",
        )
        y = te.compute(
            (N, O),
            lambda n, oc: _requant_expr(acc[n, oc], oc, mult, shift, zo, qmin, qmax, wide, odt),
            name="y",
        )
        loops = ("n", "oc", "ic", "icv")
        tile_axes = (
            TileAxis("oc", OCp, L, vector=L, unit="output channels"),
            TileAxis("ic", ICp, D, reduce=True, unit="input channels", elems_per_iter=D),
        )
    else:
        rkh = te.reduce_axis((0, KH), "kh")
        rkw = te.reduce_axis((0, KW), "kw")
        acc = te.compute(
            (N, OH, OW, OCp),
            lambda n, oh, ow, oc: te.sum(
                xin[n, oh * sh + rkh * dh, ow * sw + rkw * dw, ric * D + ricv].astype(accdt)
                * wp[oc // L, rkh, rkw, ric, oc % L, ricv].astype(accdt),
                axis=[rkh, rkw, ric, ricv],
            ),
            name="acc",
        )
        y = te.compute(
            (N, OH, OW, O),
            lambda n, oh, ow, oc: _requant_expr(
                acc[n, oh, ow, oc], oc, mult, shift, zo, qmin, qmax, wide, odt
            ),
            name="y",
        )
        loops = ("n", "oh", "ow", "oc", "kh", "kw", "ic", "icv")
        tile_axes = (
            TileAxis("oh", OH, 1, unit="output rows"),
            TileAxis("ow", OW, 1, unit="output columns"),
            TileAxis("oc", OCp, L, vector=L, unit="output channels"),
            TileAxis("ic", ICp, D, reduce=True, unit="input channels", elems_per_iter=D),
        )
    acc_bits = config.acc_bits_for(wide)
    pbits = acc_bits

    if is_dense:

        def xbox(c):
            return (N, c["ic"])

        def wbox(c):
            return (c["oc"] // L, c["ic"] // D, L, D)

        def acc_box(c):
            return N * c["oc"]
    else:

        def xbox(c):
            return (
                N,
                (c["oh"] - 1) * sh + (KH - 1) * dh + 1,
                (c["ow"] - 1) * sw + (KW - 1) * dw + 1,
                c["ic"],
            )

        def wbox(c):
            return (c["oc"] // L, KH, KW, c["ic"] // D, L, D)

        def acc_box(c):
            return N * c["oh"] * c["ow"] * c["oc"]

    staged = (
        Staged("x", "act", abits, abits, xbox, "main"),
        Staged("w", "wgt", wbits, wbits, wbox, "main"),
        Staged("bias", "wgt", pbits, pbits, lambda c: (c["oc"],), "init"),
        Staged("mult", "wgt", 32, 32, lambda c: (c["oc"],), "epilogue"),
        Staged("shift", "wgt", 32, 32, lambda c: (c["oc"],), "epilogue"),
    )
    dram = {
        "x": DramTensor("x", tuple(int(d) for d in x.shape), abits, "input"),
        "w": DramTensor("w", tuple(int(d) for d in wp.shape), wbits, "weight"),
        "bias": DramTensor("bias", (OCp,), pbits, "param"),
        "mult": DramTensor("mult", (OCp,), 32, "param"),
        "shift": DramTensor("shift", (OCp,), 32, "param"),
        "y": DramTensor("y", tuple(int(d) for d in y.shape), obits, "output"),
    }

    # ---- numpy side -----------------------------------------------------------------------------
    def pack_weights() -> np.ndarray:
        wv = w.astype(np.int64)
        if is_dense:
            wpad = np.zeros((OCp, ICp), np.int64)
            wpad[:O, :I] = wv.reshape(O, I)
            blk = wpad.reshape(OCp // L, L, ICp // D, D).transpose(0, 2, 1, 3)
        else:
            wv = wv.transpose(0, 2, 3, 1)  # O, KH, KW, I
            wpad = np.zeros((OCp, KH, KW, ICp), np.int64)
            wpad[:O, :, :, :I] = wv
            blk = wpad.reshape(OCp // L, L, KH, KW, ICp // D, D).transpose(0, 2, 3, 4, 1, 5)
        return np.ascontiguousarray(blk)

    wsum = w.astype(np.int64).reshape(O, -1).sum(axis=1)
    b64 = bias_c.astype(np.int64) if bias_c is not None else np.zeros(O, np.int64)
    folded = np.zeros(OCp, np.int64)
    folded[:O] = b64 - zx * wsum
    if not wide:
        folded = rp.wrap_int32(folded)
    mult_v, shift_v = _multipliers(x_i, w_i, o_i, O, OCp)
    cache: dict[str, np.ndarray] = {}
    x_name, out_shape = node.inputs[0], o_i.shape

    def pack(values: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if "w" not in cache:
            cache["w"] = pack_weights()
        xv = np.asarray(values[x_name])
        xk = xv.reshape(N, I) if is_dense else to_nhwc(xv, layout)
        return {
            "x": xk.astype(np.int64),
            "w": cache["w"],
            "bias": folded,
            "mult": mult_v,
            "shift": shift_v,
        }

    def unpack(arr: np.ndarray) -> np.ndarray:
        if is_dense:
            return np.asarray(arr).reshape(out_shape)
        return from_nhwc(np.asarray(arr), layout)

    cls = "dense" if is_dense else "conv2d"
    sig = {
        "class": cls,
        "x": [int(d) for d in x.shape],
        "w": [int(d) for d in wp.shape],
        "y": [int(d) for d in y.shape],
        "kernel": [KH, KW],
        "strides": [sh, sw],
        "dilations": [dh, dw],
        "pads": [pt, pl, pb, pr],
        "mode": mode,
        "obits": obits,
        "wide": wide,
        "abits": abits,
        "pad": need_pad,
    }
    return LayerDef(
        node=node,
        op_class=cls,
        mode=mode,
        wbits=wbits,
        abits=abits,
        obits=obits,
        wide=wide,
        te_args=[x, wp, bias, mult, shift, y],
        main="acc",
        epilogue="y",
        pad_stage=need_pad,
        loops=loops,
        tile_axes=tile_axes,
        staged=staged,
        acc_box=acc_box,
        out_box=lambda c: acc_box(c),
        acc_bits=acc_bits,
        out_buf_bits=max(obits, 8),
        dram=dram,
        intrinsic=vmac("accel_vmac", L, D, xdt, wdt, accdt),
        imm={"zp_out": zo, "qmin": qmin, "qmax": qmax, "wide": wide, "pad": zx},
        macs=node_macs(graph, node),
        signature=sig,
        pack=pack,
        unpack=unpack,
        output=node.outputs[0],
        inputs=(node.inputs[0],),
        extents={"n": N, "kh": KH, "kw": KW, "icv": D},
    )


# ------------------------------------------------------------------------------------------------
# depthwise conv2d
# ------------------------------------------------------------------------------------------------


def depthwise(graph: Graph, node: Node, config) -> LayerDef:
    tvm = import_tvm()
    te, tirx = tvm.te, tvm.tirx
    x_i = graph.tensors[node.inputs[0]]
    w_i = graph.tensors[node.inputs[1]]
    b_i = graph.tensors[node.inputs[2]] if len(node.inputs) > 2 and node.inputs[2] else None
    o_i = graph.tensors[node.outputs[0]]
    _common_quant(graph, node, x_i, w_i, o_i)
    layout = node.attr("data_layout", "NCHW")
    ca, ha, wa = spatial_axes(layout)
    C = x_i.shape[ca]
    w = np.asarray(graph.constants[node.inputs[1]])
    O, _, KH, KW = w.shape
    if O != C:
        raise NotAccelerated(f"depthwise convolution with channel multiplier {O // C}")
    wbits, abits, obits = DTYPE_BITS[w_i.dtype], DTYPE_BITS[x_i.dtype], DTYPE_BITS[o_i.dtype]
    mode = _check_mode(config, wbits, abits)
    wide = rp.is_wide(x_i, w_i, b_i)
    L = config.lanes
    N, H, W_ = x_i.shape[0], x_i.shape[ha], x_i.shape[wa]
    OH, OW = o_i.shape[ha], o_i.shape[wa]
    sh, sw = node.attr("strides", (1, 1))
    dh, dw = node.attr("dilations", (1, 1))
    pt, pl, pb, pr = node.attr("pads", (0, 0, 0, 0))
    Cp = _roundup(C, L)
    xdt = _storage(x_i.dtype)
    wdt = "int16" if wbits > 8 else "int8"
    odt = _storage(o_i.dtype)
    accdt = "int64" if wide else "int32"
    zx, zo = rp.zero_point(x_i), rp.zero_point(o_i)
    qmin, qmax = _qclamp(o_i, node.attrs)
    bias_c = np.asarray(graph.constants[node.inputs[2]]) if b_i is not None else None

    x = te.placeholder((N, H, W_, C), xdt, name="x")
    wp = te.placeholder((KH, KW, Cp), wdt, name="w")
    bias = te.placeholder((Cp,), accdt, name="bias")
    mult = te.placeholder((Cp,), "int32", name="mult")
    shift = te.placeholder((Cp,), "int32", name="shift")
    padv = tirx.const(zx, xdt)
    need_pad = bool(pt or pl or pb or pr) or Cp != C
    if need_pad:
        Hp, Wp = H + pt + pb, W_ + pl + pr
        xin = te.compute(
            (N, Hp, Wp, Cp),
            lambda n, h, ww, c: tirx.if_then_else(
                tirx.all(h >= pt, h < H + pt, ww >= pl, ww < W_ + pl, c < C),
                x[n, h - pt, ww - pl, c],
                padv,
            ),
            name="pad",
        )
    else:
        xin = x
    rkh = te.reduce_axis((0, KH), "kh")
    rkw = te.reduce_axis((0, KW), "kw")
    acc = te.compute(
        (N, OH, OW, Cp),
        lambda n, oh, ow, c: te.sum(
            xin[n, oh * sh + rkh * dh, ow * sw + rkw * dw, c].astype(accdt)
            * wp[rkh, rkw, c].astype(accdt),
            axis=[rkh, rkw],
        ),
        name="acc",
    )
    y = te.compute(
        (N, OH, OW, C),
        lambda n, oh, ow, c: _requant_expr(
            acc[n, oh, ow, c], c, mult, shift, zo, qmin, qmax, wide, odt
        ),
        name="y",
    )
    acc_bits = config.acc_bits_for(wide)

    def xbox(c):
        return (
            N,
            (c["oh"] - 1) * sh + (KH - 1) * dh + 1,
            (c["ow"] - 1) * sw + (KW - 1) * dw + 1,
            c["c"],
        )

    def acc_box(c):
        return N * c["oh"] * c["ow"] * c["c"]

    staged = (
        Staged("x", "act", abits, abits, xbox, "main"),
        Staged("w", "wgt", wbits, wbits, lambda c: (KH, KW, c["c"]), "main"),
        Staged("bias", "wgt", acc_bits, acc_bits, lambda c: (c["c"],), "init"),
        Staged("mult", "wgt", 32, 32, lambda c: (c["c"],), "epilogue"),
        Staged("shift", "wgt", 32, 32, lambda c: (c["c"],), "epilogue"),
    )
    dram = {
        "x": DramTensor("x", (N, H, W_, C), abits, "input"),
        "w": DramTensor("w", (KH, KW, Cp), wbits, "weight"),
        "bias": DramTensor("bias", (Cp,), acc_bits, "param"),
        "mult": DramTensor("mult", (Cp,), 32, "param"),
        "shift": DramTensor("shift", (Cp,), 32, "param"),
        "y": DramTensor("y", (N, OH, OW, C), obits, "output"),
    }
    wsum = w.astype(np.int64).reshape(C, -1).sum(axis=1)
    b64 = bias_c.astype(np.int64) if bias_c is not None else np.zeros(C, np.int64)
    folded = np.zeros(Cp, np.int64)
    folded[:C] = b64 - zx * wsum
    if not wide:
        folded = rp.wrap_int32(folded)
    mult_v, shift_v = _multipliers(x_i, w_i, o_i, C, Cp)
    wk = np.zeros((KH, KW, Cp), np.int64)
    wk[:, :, :C] = w.astype(np.int64).reshape(C, KH, KW).transpose(1, 2, 0)
    x_name = node.inputs[0]

    def pack(values):
        return {
            "x": to_nhwc(np.asarray(values[x_name]), layout).astype(np.int64),
            "w": wk,
            "bias": folded,
            "mult": mult_v,
            "shift": shift_v,
        }

    def unpack(arr):
        return from_nhwc(np.asarray(arr), layout)

    sig = {
        "class": "depthwise_conv2d",
        "x": [N, H, W_, C],
        "kernel": [KH, KW],
        "strides": [sh, sw],
        "dilations": [dh, dw],
        "pads": [pt, pl, pb, pr],
        "mode": mode,
        "obits": obits,
        "wide": wide,
        "abits": abits,
    }
    return LayerDef(
        node=node,
        op_class="depthwise_conv2d",
        mode=mode,
        wbits=wbits,
        abits=abits,
        obits=obits,
        wide=wide,
        te_args=[x, wp, bias, mult, shift, y],
        main="acc",
        epilogue="y",
        pad_stage=need_pad,
        loops=("n", "oh", "ow", "c", "kh", "kw"),
        tile_axes=(
            TileAxis("oh", OH, 1, unit="output rows"),
            TileAxis("ow", OW, 1, unit="output columns"),
            TileAxis("c", Cp, L, vector=L, unit="channels"),
        ),
        staged=staged,
        acc_box=acc_box,
        out_box=acc_box,
        acc_bits=acc_bits,
        out_buf_bits=max(obits, 8),
        dram=dram,
        intrinsic=vmac("accel_vmac_dw", L, 1, xdt, wdt, accdt),
        imm={"zp_out": zo, "qmin": qmin, "qmax": qmax, "wide": wide, "pad": zx},
        macs=node_macs(graph, node),
        signature=sig,
        pack=pack,
        unpack=unpack,
        output=node.outputs[0],
        inputs=(node.inputs[0],),
        extents={"n": N, "kh": KH, "kw": KW},
    )


# ------------------------------------------------------------------------------------------------
# add
# ------------------------------------------------------------------------------------------------


def _layout_of(graph: Graph, tensor: str) -> str:
    from accelsim.lower.common import tensor_layout

    return tensor_layout(graph, tensor)


def add(graph: Graph, node: Node, config) -> LayerDef:
    tvm = import_tvm()
    te, tirx = tvm.te, tvm.tirx

    if len(node.inputs) != 2 or any(graph.is_constant(t) for t in node.inputs):
        raise NotAccelerated("add of a constant operand")
    a_i, b_i = graph.tensors[node.inputs[0]], graph.tensors[node.inputs[1]]
    o_i = graph.tensors[node.outputs[0]]
    for info, what in ((a_i, "first input"), (b_i, "second input"), (o_i, "output")):
        _per_tensor(info, what)
    if graph.requant_mode != "gemmlowp":
        raise NotAccelerated(f"requant_mode '{graph.requant_mode}'")
    if a_i.shape != o_i.shape or b_i.shape != o_i.shape:
        raise NotAccelerated(f"broadcasting add {a_i.shape} + {b_i.shape}")
    ap = rp.add_params(a_i, b_i, o_i)
    left, (m1, sh1), (m2, sh2), (mo, sho) = ap.left_shift, ap.input1, ap.input2, ap.output
    qmin, qmax = _qclamp(o_i, node.attrs)
    za, zb, zo = rp.zero_point(a_i), rp.zero_point(b_i), rp.zero_point(o_i)
    total = int(np.prod(o_i.shape))
    adt, bdt, odt = _storage(a_i.dtype), _storage(b_i.dtype), _storage(o_i.dtype)
    a = te.placeholder((total,), adt, name="a")
    b = te.placeholder((total,), bdt, name="b")
    # The add recipe nests three MultiplyByQuantizedMultiplier expressions; written out in TIR
    # the expression tree grows to tens of thousands of nodes (each SRDHM uses its product twice)
    # and TVM's simplifier needs minutes for it. The element function is therefore the vector
    # ALU's own operation, a pure extern whose parameters are the VADD immediates (isa.VAdd).
    y = te.compute(
        (total,), lambda x: tirx.call_pure_extern(odt, "accel_vadd_q", a[x], b[x]), name="y"
    )
    abits, bbits, obits = (DTYPE_BITS[t.dtype] for t in (a_i, b_i, o_i))
    lay = [
        _layout_of(graph, t) if len(graph.tensors[t].shape) == 4 else "NCHW" for t in node.inputs
    ]
    out_layout = _layout_of(graph, node.outputs[0]) if len(o_i.shape) == 4 else "NCHW"
    staged = (
        Staged("a", "act", max(abits, 8), abits, lambda c: (c["x"],), "main"),
        Staged("b", "act", max(bbits, 8), bbits, lambda c: (c["x"],), "main"),
    )
    dram = {
        "a": DramTensor("a", (total,), abits, "input"),
        "b": DramTensor("b", (total,), bbits, "input"),
        "y": DramTensor("y", (total,), obits, "output"),
    }
    names = tuple(node.inputs)

    def pack(values):
        return {
            "a": to_nhwc(np.asarray(values[names[0]]), lay[0]).reshape(-1).astype(np.int64),
            "b": to_nhwc(np.asarray(values[names[1]]), lay[1]).reshape(-1).astype(np.int64),
        }

    shape_nhwc = (
        (o_i.shape[0], o_i.shape[2], o_i.shape[3], o_i.shape[1])
        if len(o_i.shape) == 4 and out_layout == "NCHW"
        else o_i.shape
    )

    def unpack(arr):
        return from_nhwc(np.asarray(arr).reshape(shape_nhwc), out_layout)

    imm = {
        "zp_a": za,
        "zp_b": zb,
        "zp_out": zo,
        "left_shift": left,
        "m_a": m1,
        "s_a": sh1,
        "m_b": m2,
        "s_b": sh2,
        "m_out": mo,
        "s_out": sho,
        "qmin": qmin,
        "qmax": qmax,
        "in_bits": (abits, bbits),
    }
    sig = {"class": "add", "total": total, "bits": [abits, bbits, obits]}
    return LayerDef(
        node=node,
        op_class="add",
        mode="",
        wbits=0,
        abits=max(abits, bbits),
        obits=obits,
        wide=False,
        te_args=[a, b, y],
        main="y",
        epilogue=None,
        pad_stage=False,
        loops=("x",),
        tile_axes=(TileAxis("x", total, 1, unit="elements"),),
        staged=staged,
        acc_box=None,
        out_box=lambda c: c["x"],
        acc_bits=32,
        out_buf_bits=max(obits, 8),
        dram=dram,
        intrinsic=None,
        imm=imm,
        macs=0,
        signature=sig,
        pack=pack,
        unpack=unpack,
        output=node.outputs[0],
        inputs=names,
        extents={},
    )


def route(graph: Graph, node: Node, config, add_fn, depthwise_fn, contraction_fn):
    """Which accelerator layer kind `node` is (add, depthwise, conv/dense contraction), or
    `NotAccelerated`; calls the builder of that kind. The code generator (`layer_def`) and the
    analytic model (`accel.analytic.layer_shape`) share these rules."""
    if node.op not in ACCEL_OPS:
        raise NotAccelerated(f"op '{node.op}' runs on the host core")
    if not graph.tensors[node.outputs[0]].is_quantized:
        raise NotAccelerated("float layer (the accelerator is integer-only)")
    if node.op == "add":
        return add_fn(graph, node, config)
    if node.op == "conv2d" and op_class(graph, node) == "depthwise_conv2d":
        return depthwise_fn(graph, node, config)
    if (node.op == "conv2d" and node.attr("groups", 1) == 1) or node.op == "dense":
        return contraction_fn(graph, node, config)
    raise NotAccelerated(f"grouped convolution (groups={node.attr('groups')})")


def layer_def(graph: Graph, node: Node, config) -> LayerDef:
    """The accelerator compute of `node`, or `NotAccelerated` (the node runs on the host)."""
    return route(graph, node, config, add, depthwise, contraction)
