"""Per-operator TVM computes: one TE compute per graph node, fused with its requantization and
activation clamp, and the numpy packing that feeds it.

Integer semantics are those of `accelsim.ref.gemmlowp_ops` (TFLite's reference kernels), bit for
bit; the float kernels compute in float32 what `accelsim.ref.fp_ops` computes in float64.

Float16 (`fp16`) graphs: storage (activations, weights, outputs) is float16 as in the reference
executor, which computes every node in float64 from the float16 values and rounds once to
float16. The arithmetic dtype comes from the target (`float_types`): on a core whose
`codegen.features` has `fp16` (Armv8.2 FP16 arithmetic) products, accumulators, bias and clamp
are float16 (FMLA .8h, 8 lanes per 128-bit vector; fp16 accumulation as XNNPACK's and the Arm
Compute Library's f16 kernels do), so a K-term dot product carries K float16 roundings; on a
target that lists `fp16` under `codegen.emulation` they are float32 with float16 loads and
stores (one float32 accumulation, then one rounding to float16); any other target does not
lower fp16 graphs. `accelsim.kernels.verify` derives its fp16 tolerance from this choice.

Layout: every 4-D activation is NHWC in a kernel, whatever the graph's layout (`pack` and
`unpack` convert). Conv2d / dense weights are packed `[O/lanes][KH][KW][I/depth][lanes][depth]`
(`[O/lanes][I/depth][lanes][depth]` for dense) for the tensor intrinsic or vector width the
recipe picks, zero-padded; 4-bit weights two per byte along the depth axis (unpacked in
registers by the intrinsic, or by shifts on the unrolled `ic.v` pair when vectorized). Depthwise
weights are `[KH][KW][C]` (channels innermost: the vector axis); 4-bit ones are widened to
int8 when packed (as LiteRT unpacks int4 filters when it loads a model), so the 8-bit kernels
serve them. 4-bit activations are stored one per byte (int8), so their kernels are the 8-bit
ones (the output clamp is the int4 range).

Integer convolution arithmetic: the kernel multiplies raw activations with weights and folds the
input zero point into the bias on the host (`bias - zp_x * sum(w)`), as gemmlowp and XNNPACK do;
padded taps read the zero point, so they contribute nothing, exactly as the reference's
`(x - zp)` padded with zeros. int32 accumulators wrap exactly as the reference's int32
conversion before requantization does. Weight zero points must be 0 (symmetric weights).

ONNX QDQ graphs (`requant_mode="float"`, ONNX Runtime's arithmetic, `accelsim.ref.qdq_ops`):
8-bit convolutions, dense layers, matmuls and global average pools requantize as
`MlasRequantizeOutput` does, `float32(acc) * scale` clamped and rounded half to even
(`requant.mlas_finish`); QuantizeLinear likewise; adds and muls compute QLinearAdd's and
QLinearMul's float32 operations (`_qlinear_body`); QLinearSoftmax is `accelsim.lower.softmax`'s
and the float layer norm between DequantizeLinear and QuantizeLinear `accelsim.lower.norm`'s.
The builders that compute only TFLite's arithmetic are not used on such graphs
(`accelsim.lower.lower`).

Kernel arguments in call order: activations, packed weights, folded bias, per-channel multiplier
and shift (or the float scales of a `requant="double"` dense or an ONNX QDQ layer), `qparams`
(zero points and clamp bounds, int32) or `fparams` (float scalars in the arithmetic dtype), the
output. Scalars are arguments rather than immediates so that layers of the same shape share one
kernel.

Softmax is built in `accelsim.lower.softmax` (integer inputs).

Float tensors (the float islands of quantized graphs, and float graphs): add, sub, mul, div,
clamps and the pointwise functions of `accelsim.lower.floatmath` (erf, sigmoid, tanh, gelu, ...,
polynomials that need no libm).

Not lowered (the node stays on the reference path, with the reason in `LoweredLayer.reason`):
depthwise with a channel multiplier (grouped convolutions:
`accelsim.lower.grouped`); asymmetric weights; mean over non-contiguous axes; float16 graphs on
targets without fp16 arithmetic or emulation; 16-bit layers of ONNX QDQ graphs (ONNX Runtime
runs those in float).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from accelsim.core import requant as rp
from accelsim.core.qparams import DTYPE_BITS, dtype_range, quantize_array, store_dtype
from accelsim.lower import dotwindow, floatmath, i8mm, partials, uweights, window  # noqa: F401
from accelsim.lower import intrin as _intrin
from accelsim.lower import requant as rq
from accelsim.lower.common import (
    Built,
    Ctx,
    FloatTypes,
    NotLowered,
    _block,
    _f32,
    _f32_kept,
    _fbounds,
    _float_epilogue,
    _int_epilogue,
    _kaxis,
    _kept32,
    _kshape,
    _lanes,
    _need_per_tensor,
    _pack_pairs,
    _qclamp,
    _roundup,
    _te,
    _tirx,
    _with_arith,
    block_weights,
    contraction_acc,
    float_types,
    pad_input,
    tensor_layout,
    to_kernel_layout,
    unpacker,
)
from accelsim.lower.schedule import (
    Axis,
    ComputeSpec,
    Recipe,
    RecipeError,
    pow2_divisor,
)
from accelsim.model.graph import TensorInfo
from accelsim.model.ops import activation_bounds, spatial_axes
from accelsim.ref import qdq_ops

# ------------------------------------------------------------------------------------------
# conv2d / dense
# ------------------------------------------------------------------------------------------


def _weight_scales(w_info: TensorInfo, cout: int) -> np.ndarray:
    try:
        return rp.weight_scales(w_info, cout)
    except rp.RequantError as exc:
        raise NotLowered(str(exc)) from None


def _check_int_mac(ctx: Ctx, x_i, w_i, o_i) -> None:
    """What an integer conv2d, dense or depthwise kernel needs of its operands."""
    _need_per_tensor(ctx, x_i, "input")
    _need_per_tensor(ctx, o_i, "output")
    if w_i is None or not w_i.is_quantized:
        raise NotLowered("weights are not quantized")
    if any(z != 0 for z in w_i.quant.zero_point):
        raise NotLowered("asymmetric weights (non-zero weight zero points)")
    if ctx.graph.requant_mode not in ("gemmlowp", "float"):
        raise NotLowered(f"requant_mode '{ctx.graph.requant_mode}'")
    if ctx.graph.requant_mode == "float" and any(DTYPE_BITS[i.dtype] > 8 for i in (x_i, w_i, o_i)):
        # ONNX Runtime's integer kernels are 8-bit; its 16-bit QDQ groups run in float
        raise NotLowered("16-bit tensors in an ONNX QDQ layer (ONNX Runtime runs them in float)")


@dataclass(frozen=True)
class _MacTypes:
    """The dtypes a conv2d, dense or depthwise kernel computes in, and its recipe section."""

    ft: FloatTypes | None  # float layers
    xdt: str  # activations as stored
    wdt: str  # weights as stored (4-bit: int8, two per byte)
    accdt: str
    wbits: int
    precision: str  # recipe section
    wide: bool = False  # int64 accumulation and requantization
    # requantization by a float scale rather than a fixed-point multiplier: "float64"
    # (TFLite's FULLY_CONNECTED), "float32" (ONNX Runtime's MlasRequantizeOutput)
    fscale: str | None = None

    @property
    def w4(self) -> bool:
        return self.ft is None and self.wbits == 4


def _mac_types(ctx: Ctx, x_i, w_i, b_i, o_i, double: bool = False) -> _MacTypes:
    """`double`: the layer requantizes in float64 (TFLite's FULLY_CONNECTED)."""
    if o_i.is_float:
        ft = float_types(ctx, x_i, w_i, o_i)
        bits = DTYPE_BITS[ft.storage]
        return _MacTypes(ft, ft.storage, ft.storage, ft.compute, bits, ft.precision)
    _check_int_mac(ctx, x_i, w_i, o_i)
    if b_i is not None and b_i.quant is not None and any(z != 0 for z in b_i.quant.zero_point):
        raise NotLowered("a bias with a non-zero zero point")
    wbits, abits = DTYPE_BITS[w_i.dtype], DTYPE_BITS[x_i.dtype]
    if wbits not in (4, 8, 16) or abits not in (4, 8, 16):
        raise NotLowered(f"{w_i.dtype} weights with {x_i.dtype} activations")
    wide = rp.is_wide(x_i, w_i, b_i)
    # w8a16: the 16-bit kernel (intrin.kernel_weight_bits); the recipe section stays w8a16's
    kbits = _intrin.kernel_weight_bits(wbits, abits)
    return _MacTypes(
        None,
        store_dtype(x_i.dtype),
        "int16" if kbits == 16 else "int8",
        "int64" if wide else "int32",
        kbits,
        f"w{wbits}a{abits}",
        wide,
        "float64" if double else ("float32" if ctx.graph.requant_mode == "float" else None),
    )


def _intrinsic(
    ctx: Ctx,
    recipe: Recipe,
    t: _MacTypes,
    kind: str,
    wmin: int = 0,
    notes=None,
    channels: int | None = None,
    taps: int = 1,
) -> _intrin.Intrinsic | None:
    """The recipe's first tensor intrinsic of `kind` that the target and the layer's integer
    operand and accumulator types allow and that is exact for weights down to `wmin` (float32
    layers: a float32 one); one passed over for its weight range is said in `notes`. With
    `channels` (the reduction's input channels, over `taps` kernel taps), a deeper intrinsic
    that would pad them more than a later one with the same output lanes gives way to it
    (`sdot_lane`'s 16 against `sdot`'s 4 on a 3- or 24-channel input: the padding is computed
    and wasted), and so does one with fewer calls than its `min_calls`."""
    if t.ft is not None and t.xdt != t.accdt:  # float16 storage: computed in float32
        return None
    names = list(recipe.get("tensorize") or [])  # the schema makes it a list
    found: list[_intrin.Intrinsic] = []
    while names:
        it = _intrin.select(names, ctx.target.codegen.features, t.xdt, t.wbits, kind=kind)
        if it is None or it.acc_dtype != t.accdt:
            break
        short = (
            channels is not None and taps * _roundup(channels, it.depth) // it.depth < it.min_calls
        )
        if short:
            if notes is not None:
                notes.append(
                    f"intrinsic '{it.name}' not used: {taps} x {channels} terms are fewer than "
                    f"{it.min_calls} calls"
                )
        elif it.weight_min is None or wmin >= it.weight_min:
            if found and it.lanes != found[0].lanes:
                break  # another accumulator layout: not a shallower variant of the first
            found.append(it)
            if channels is None or channels % it.depth == 0:
                break
        elif notes is not None:
            notes.append(
                f"intrinsic '{it.name}' not used: a weight of {wmin} is below "
                f"{it.weight_min}, the smallest it computes exactly"
            )
        names = names[names.index(it.name) + 1 :]
    if not found:
        return None
    best = min(found, key=lambda i: _roundup(channels or 1, i.depth))  # first of the least
    if best is not found[0] and notes is not None:
        notes.append(
            f"intrinsic '{found[0].name}' not used: {channels} input channels would be "
            f"padded to {_roundup(channels or 1, found[0].depth)}"
        )
    return best


def _row_padded(x, value, channels: int, pads):
    """`pad_input` for an input held as rows of W x C bytes (`window.rows`): `pads` (top,
    left, bottom, right) rows and columns of `channels` bytes each."""
    te, tirx = _te(), _tirx()
    N, H, WC = (int(d) for d in x.shape)
    pt, pl, pb, pr = pads
    lo = pl * channels

    def inside(h, v):  # by column: constant over a vector of a divisor of C lanes
        col = tirx.floordiv(v, channels)
        return tirx.all(h >= pt, h < H + pt, col >= pl, col < pl + WC // channels)

    return te.compute(
        (N, H + pt + pb, WC + (pl + pr) * channels),
        lambda n, h, v: tirx.if_then_else(inside(h, v), x[n, h - pt, v - lo], value),
        name="pad",
    )


def _window_block(ctx: Ctx, recipe: Recipe, it: _intrin.Intrinsic) -> None:
    """The recipe's channel block must leave the window intrinsic its vector: `auto`, equal, or
    a cap of at least it (the cap serves the layers that keep the plain loop)."""
    v = (recipe.get("block") or {}).get("c", "auto")
    cap = v[2:] if isinstance(v, str) and v.startswith("<=") else None
    if v in ("auto", it.lanes) or (cap is not None and cap.isdigit() and int(cap) >= it.lanes):
        return
    raise RecipeError(
        f"{recipe.where('block', 'c')}: intrinsic '{it.name}' needs {it.lanes} channels "
        f"(auto or a cap of at least {it.lanes}), found {v!r} (layer '{ctx.layer}')"
    )


def _intrinsic_blocks(ctx: Ctx, recipe: Recipe, it: _intrin.Intrinsic, **blocks: int) -> None:
    """The recipe's blocks must leave the intrinsic's (`auto` or equal)."""
    for ax, want in blocks.items():
        v = (recipe.get("block") or {}).get(ax, "auto")
        if v != "auto" and v != want:
            raise RecipeError(
                f"{recipe.where('block', ax)}: intrinsic '{it.name}' needs "
                f"{want}, found {v!r} (layer '{ctx.layer}')"
            )


@dataclass(frozen=True)
class _MacArgs:
    """The kernel arguments of a conv2d, dense or depthwise layer after its weights (module
    docstring), the value a padded input tap reads, and the epilogue that applies them."""

    tensors: list
    names: list[str]
    pad_value: Any
    # (accumulator, output channel[, biased]) -> output element; `biased`: the accumulator
    # started from the bias (`Built.starts`), so the epilogue adds none
    epilogue: Callable
    # set: `epilogue` gives the requantized int32 value and this (int32 -> output element) adds
    # the zero point and clamps, in a stage of its own vectorized in 8-bit lanes
    # (`requant.narrow_finish`)
    finish: Callable | None = None
    # an int32 accumulator may start from the bias instead of 0: the same integers mod 2^32,
    # as the sum wraps either way, and one vector add per accumulator less in the epilogue
    # (not a float bias, where the order of the sum would change, nor an int64 one)
    bias_starts: bool = False


def _recipe_form(ctx: Ctx, recipe: Recipe, t: _MacTypes) -> rq.RequantForm | None:
    """The recipe's requantization form the target has, for a layer with int32 accumulators
    and a fixed-point multiplier (None otherwise)."""
    if t.ft is not None or t.wide or t.fscale:
        return None
    names = (recipe.get("epilogue") or {}).get("requant") or []
    return rq.select_form(names, ctx.target.codegen.features)


def _requant_form(ctx: Ctx, recipe: Recipe, t: _MacTypes, channels: int, block: int, io):
    """The recipe's requantization form for this layer, whether any channel's multiplier
    shifts left and whether the form's one-step rounding is exact for it (every shift a right
    shift in `requant.NUDGE_RIGHT`, an 8-bit output) (None: the generic form): int32
    accumulators only, and the channel block must
    be whole vectors of the form's lanes (the epilogue runs over the channel tile, a multiple
    of the block); so must the channels, unless the form takes a tail (`RequantForm.tail`:
    the caller pads the output). `io`: the input, weight and output TensorInfos."""
    form = _recipe_form(ctx, recipe, t)
    if form is None or block % form.lanes or (channels % form.lanes and not form.tail):
        return None
    x_i, w_i, o_i = io
    try:
        shifts = np.asarray(rp.conv_multipliers(x_i, w_i, o_i, channels)[1])
    except rp.RequantError as exc:
        raise NotLowered(str(exc)) from None
    lo, hi = rq.NUDGE_RIGHT
    nudge = bool(
        store_dtype(o_i.dtype) in ("int8", "uint8")
        and shifts.size
        and -hi <= int(shifts.min())
        and int(shifts.max()) <= -lo
    )
    return form, bool(np.any(shifts > 0)), nudge


def _nbytes(t) -> int:
    """The bytes of a TE placeholder (4-bit types packed two per byte)."""
    n = int(np.prod([int(d) for d in t.shape]))
    return n * DTYPE_BITS.get(str(t.dtype), 8) // 8


def _nonneg(o_i, node) -> bool:
    """Whether the output's clamp starts at or above its zero point (a fused ReLU or ReLU6), so
    that the requantization may skip the rounding of negative values (`accelsim.lower.requant`,
    `nonneg`): the same output integers, one vector instruction less per 4 outputs on NEON."""
    return _qclamp(o_i, node.attrs)[0] >= rp.zero_point(o_i)


def _mac_args(
    channels: int,
    xdt,
    accdt,
    odt,
    ft: FloatTypes | None,
    wide,
    fscale=None,
    form=None,
    nonneg: bool = False,
):
    te, tirx = _te(), _tirx()
    if ft is not None:
        bias = te.placeholder((channels,), accdt, name="bias")
        fp = te.placeholder((2,), accdt, name="fparams")
        return _MacArgs(
            [bias, fp],
            ["bias", "fparams"],
            tirx.const(0.0, xdt),
            lambda a, c: _float_epilogue(a + bias[c], fp, odt),
        )
    double = fscale == "float64"
    bias = te.placeholder((channels,), "int64" if (wide or double) else "int32", name="bias")
    if fscale:
        mult, shift = te.placeholder((channels,), fscale, name="scale"), None
    else:
        mult = te.placeholder((channels,), "int32", name="mult")
        shift = te.placeholder((channels,), "int32", name="shift")
    qp = te.placeholder((4,), "int32", name="qparams")
    tensors = [t for t in (bias, mult, shift, qp) if t is not None]

    # a 32-bit requantization form of an 8-bit output: the zero point and the clamp in a
    # stage of their own, in 8-bit lanes (the form's own stage keeps its 4 int32 lanes)
    split = (
        form is not None
        and form[0].narrow_finish
        and not wide
        and not fscale
        and odt in ("int8", "uint8")
    )

    def epilogue(a, c, biased=False):
        return _int_epilogue(
            a,
            c,
            biased=biased,
            bias=bias,
            mult=mult,
            shift=shift,
            qp=qp,
            wide=wide,
            fscale=fscale,
            out_dtype=odt,
            form=form,
            unclamped=split,
            nonneg=nonneg,
        )

    def finish(r):
        return rq.narrow_finish(r, qp[1], qp[2], qp[3], odt)

    return _MacArgs(
        tensors,
        [t.op.name for t in tensors],
        qp[0].astype(xdt),
        epilogue,
        finish if split else None,
        accdt == "int32" and not (wide or double),
    )


def _finished(y, margs: _MacArgs, form):
    """The output stage of a layer whose epilogue computed `y`, the blocks between, the lanes
    the output stage is vectorized in and the TensorIntrins that may compute it instead (by
    lanes): with `margs.finish`, `y` holds the requantized int32 values (block "requant", in
    the form's lanes) and a last stage "y" finishes them in 8-bit lanes (as wide as the channel
    tile; `RequantForm.finish_intrinsic`); else `y` itself, in the form's lanes."""
    if margs.finish is None:
        return y, (), form[0].lanes if form else None, {}
    out = _te().compute(y.shape, lambda *i: margs.finish(y(*i)), name="y")
    make = form[0].finish_intrinsic
    channels = int(y.shape[-1])
    intrinsics = (
        {n: make(str(out.dtype), n) for n in (64, 128) if channels % n == 0} if make else {}
    )
    return (
        out,
        (("requant", None, form[0].lanes),),
        None,
        {n: k for n, k in intrinsics.items() if k},
    )


def _mac_consts(
    node, x_i, w_i, o_i, w, bias_c, ft: FloatTypes | None, wide, fscale=None, act_offset=0
):
    """The values of the arguments `_mac_args` declares (the input zero point folded into the
    bias, and the offset an intrinsic adds to every activation, `Intrinsic.act_offset`)."""
    cout = w.shape[0]
    if ft is not None:
        bias = bias_c if bias_c is not None else np.zeros(cout)
        return {
            "bias": bias.astype(ft.np_compute),
            "fparams": _fbounds(node.attrs).astype(ft.np_compute),
        }
    zx = rp.zero_point(x_i)
    folded = rp.folded_bias(w, bias_c, zx + act_offset)
    _weight_scales(w_i, cout)  # checks the weights' quantization axis
    if fscale == "float64":
        eff = rp.double_scales(x_i, w_i, o_i, cout)
        consts = {"bias": folded.astype(np.int64), "scale": eff.astype(np.float64)}
    elif fscale == "float32":  # ONNX Runtime's requantization (accelsim.ref.qdq_ops)
        consts = {
            "bias": rp.wrap_int32(folded).astype(np.int32),
            "scale": qdq_ops.mac_multipliers(x_i, w_i, o_i, cout),
        }
        qmin, qmax = qdq_ops.output_range(o_i, node.attrs)
        consts["qparams"] = np.array([zx, rp.zero_point(o_i), qmin, qmax], dtype=np.int32)
        return consts
    else:
        mult_v, shift_v = rp.conv_multipliers(x_i, w_i, o_i, cout)
        consts = {
            "bias": folded.astype(np.int64) if wide else rp.wrap_int32(folded).astype(np.int32),
            "mult": mult_v.astype(np.int32),
            "shift": shift_v.astype(np.int32),
        }
    qmin, qmax = _qclamp(o_i, node.attrs)
    consts["qparams"] = np.array([zx, rp.zero_point(o_i), qmin, qmax], dtype=np.int32)
    return consts


_PER_CHANNEL = ("bias", "mult", "shift", "scale")  # `_mac_args` arguments indexed by channel


def _channels_padded(v: np.ndarray, channels: int, padded: int) -> np.ndarray:
    """A per-channel kernel argument (length `channels`) zero-padded to `padded` channels."""
    if padded == channels:
        return v
    return np.concatenate([v, np.zeros(padded - channels, v.dtype)])


def _channels_sliced(unpack, channels: int, padded: int):
    """`unpack` of a kernel output whose last (channel) axis is padded to `padded`."""
    if padded == channels:
        return unpack
    return lambda arr: unpack(np.asarray(arr)[..., :channels])


def contraction(ctx: Ctx) -> Built:
    """conv2d (groups == 1) and dense, integer or float."""
    te = _te()
    node, g = ctx.node, ctx.graph
    is_dense = node.op == "dense"
    x_i, w_i, b_i, o_i = ctx.info(0), ctx.info(1), ctx.info(2), ctx.out
    is_float = o_i.is_float
    if not g.is_constant(node.inputs[1]):
        raise NotLowered("weights are not a constant")
    w = np.asarray(g.constants[node.inputs[1]])
    bias_c = (
        np.asarray(g.constants[node.inputs[2]])
        if b_i is not None and g.is_constant(node.inputs[2])
        else None
    )
    if b_i is not None and bias_c is None:
        raise NotLowered("bias is not a constant")
    layout = node.attr("data_layout", "NCHW")
    if is_dense:
        O, I = w.shape
        N = int(np.prod(x_i.shape)) // I
        KH = KW = 1
        H = W_ = OH = OW = 1
        strides, dil, pads = (1, 1), (1, 1), (0, 0, 0, 0)
    else:
        if node.attr("groups", 1) != 1:
            raise NotLowered(
                f"grouped convolution (groups={node.attr('groups')}) other than depthwise"
            )
        O, I, KH, KW = w.shape
        ca, ha, wa = spatial_axes(layout)
        N, H, W_ = x_i.shape[0], x_i.shape[ha], x_i.shape[wa]
        OH, OW = o_i.shape[ha], o_i.shape[wa]
        strides, dil = node.attr("strides", (1, 1)), node.attr("dilations", (1, 1))
        pads = node.attr("pads", (0, 0, 0, 0))
    cls = "dense" if is_dense else "conv2d"

    t = _mac_types(ctx, x_i, w_i, b_i, o_i, is_dense and node.attr("requant") == "double")
    ft, xdt, wdt, accdt, wbits, w4 = t.ft, t.xdt, t.wdt, t.accdt, t.wbits, t.w4
    wide, double = t.wide, t.fscale == "float64"
    recipe = ctx.recipe(cls, t.precision)
    acc_bits = DTYPE_BITS[accdt] if accdt in DTYPE_BITS else 32

    # intrinsic and blocks: a matrix intrinsic (SMMLA, accelsim.lower.i8mm) first where the
    # target has one and the layer fits it, else the recipe's first dot-product one that
    # computes these weights exactly, unless the recipe lists a partial-sum one
    # (accelsim.lower.partials) before it that the core has and the channels fill
    notes: list[str] = []
    wmin = int(w.min()) if w.size and not is_float else 0
    it = _intrinsic(ctx, recipe, t, i8mm.KIND, wmin, notes)
    pairs = i8mm.applies(it, is_dense, N, strides[1])
    partial = offset_w = False
    if not pairs:
        it = _intrinsic(ctx, recipe, t, "dot", wmin, notes, channels=I, taps=KH * KW)
        alt = _intrinsic(ctx, recipe, t, partials.KIND, wmin, notes)
        names = recipe.get("tensorize") or []
        if partials.applies(alt, I) and _intrin.earliest(names, alt, it) is alt:
            it, partial = alt, True
        alt = _intrinsic(ctx, recipe, t, uweights.KIND, wmin, notes)
        if uweights.applies(alt) and _intrin.earliest(names, alt, it) is alt:
            if it is not None and not uweights.sum_depth(_roundup(I, alt.depth)):
                # the activation sums would be plain scalar code, one add per input byte of
                # the window: more than the second multiply slot saves where the channels are
                # that few (MobileNet v2 features.0.0, 3 input channels: 708 k cycles with
                # `vrmpy`, 881 k with `vrmpy_rt`)
                notes.append(
                    f"intrinsic '{alt.name}' not used: the activation sums of {I} input "
                    f"channels fit no byte-sum call"
                )
            else:
                it, offset_w = alt, True  # unsigned weights, activation sums (lower.uweights)
                wdt = it.weight_dtype
    # 16 x |w| <= 128, or 16 x (w + 8) <= 240 on offset weights (accelsim.lower.uweights)
    if it is not None and it.x16 and KH * KW * I * 128 * (240 if offset_w else 128) >= 2**31:
        # its accumulators hold 16 x the sums: they must not wrap where the true ones do not
        notes.append(f"intrinsic '{it.name}' (4-bit x16) not used: {KH * KW * I} terms")
        it, offset_w = None, False
        wdt = t.wdt
    if it is not None and it.act_offset and double and KH * KW * I * 255 * 128 >= 2**31:
        # the float64 requantization adds an int64 bias to the int32 accumulator, so the
        # offset folded into the bias is exact only while the offset sum cannot wrap
        notes.append(f"intrinsic '{it.name}' not used: its activation offset could wrap")
        it = None
    if it is not None:
        bo, bk = it.lanes, it.depth
        _intrinsic_blocks(ctx, recipe, it, oc=bo, ic=bk)
    else:
        bo = _block(recipe, "oc", O, _lanes(ctx, acc_bits), ctx.layer, "output channels", False)
        bk = _block(recipe, "ic", I, 2 if w4 else 1, ctx.layer, "input channels", False)
        if w4 and bk % 2:
            raise RecipeError(
                f"{recipe.where('block', 'ic')}: 4-bit weights are packed in "
                f"pairs along ic, so the ic block must be even (found {bk})"
            )
    pbk = bk // 2 if w4 else bk
    grp = it.group if it is not None else 0  # pair-major weight blocks (intrin.Intrinsic.group)
    # partial sums: one channel per call, the channels padded to whole ADDP calls
    OCp, ICp = _roundup(O, partials.parts(it) if partial else bo), _roundup(I, bk)
    sh, sw = strides
    dh, dw = dil
    pt, pl, pb, pr = pads

    # placeholders
    blk_shape = it.block_shape if it is not None else (bo, pbk)
    if is_dense:
        x = te.placeholder((N, I), xdt, name="x")
        wshape = (OCp // bo, ICp // bk, *blk_shape)
    else:
        x = te.placeholder((N, H, W_, I), xdt, name="x")
        wshape = (OCp // bo, KH, KW, ICp // bk, *blk_shape)
    wp = te.placeholder(wshape, wdt, name="w")
    odt = ft.storage if is_float else store_dtype(o_i.dtype)
    form = _requant_form(ctx, recipe, t, O, OCp if partial else bo, (x_i, w_i, o_i))
    # a requantization form's vectors cover whole blocks: with a tail, the kernel writes
    # its output channels padded to the lanes (as hexagon_nn's depth-32 layout), sliced off
    # when unpacked
    Oy = _roundup(O, form[0].lanes) if form else O
    nonneg = not is_float and _nonneg(o_i, node)
    margs = _mac_args(Oy, xdt, accdt, odt, ft if is_float else None, wide, t.fscale, form, nonneg)
    params, pnames, pad_value = margs.tensors, margs.names, margs.pad_value

    if pairs and not is_dense:  # an odd output width computes one discarded column
        pads = i8mm.pair_pads(pads, W_, OW, KW, sw, dw)
        pt, pl, pb, pr = pads
    stages: list[tuple[str, int]] = []
    # int8 activations on an unsigned-activation intrinsic: flipped to u8 (x + offset) once, in
    # the input stage, rather than per broadcast in the inner loop (`Intrinsic.act_offset`)
    offset = it.act_offset if it is not None and it.act_dtype != xdt else 0
    flip = None
    if offset:
        tirx = _tirx()

        def flip(v):
            return tirx.bitwise_xor(v, tirx.const(-offset, xdt)).astype(it.act_dtype)

    need_pad = bool(pt or pl or pb or pr) or ICp != I
    if pairs:  # the padded input repacked so that each pixel pair is one 16-byte row
        xin = i8mm.pack_input(x, pad_value, I, ICp, pads, sw)
        stages.append(("pad", 8 if ICp == I else 1))
    elif need_pad or flip is not None:
        xin = pad_input(x, pad_value, I if need_pad else None, ICp, pads, flip)
        bits = DTYPE_BITS.get(xdt, 32)
        stages.append(("pad", pow2_divisor(ICp, _lanes(ctx, bits)) if ICp == I else 1))
    else:
        xin = x

    nib16 = it is not None and it.x16

    class _Block:  # the weight block of an intrinsic call, indexed as its description does
        def __init__(self, outer):
            self.outer = outer

        def __getitem__(self, ij):
            return wp[self.outer + tuple(ij)]

    def wval(*idx):
        *head, icv = idx
        if nib16 and it.nibble_depth:
            *outer, lane = head
            return _intrin.nibble16_depth(_Block(tuple(outer)), lane, icv, bk // 2, wdt)
        if nib16:
            *outer, lane = head
            return _intrin.nibble16(_Block(tuple(outer)), lane, icv, bo // 2, grp)
        if grp:
            *outer, lane = head
            return wp[tuple(outer) + (icv // grp, lane, icv % grp)]
        if w4:
            return _intrin.nibble(wp[tuple(head) + (icv // 2,)], icv)
        return wp[tuple(head) + (icv,)]

    # without an intrinsic, 8-bit products are formed at 16 bits (|x * w| <= 2^14) and
    # accumulated widened: NEON smull/smlal, x86 pmaddwd, HVX vmpy. The intrinsics' pattern
    # is the plain int32 product of their descriptions.
    if it is None and not is_float and DTYPE_BITS[x_i.dtype] <= 8 and wbits <= 8:
        pdt = "int16"
    else:
        pdt = accdt
    window = None if is_dense else ((KH, KW), strides, dil)
    acc_shape = (N, OCp) if is_dense else (N, OH, OW, OCp)
    # the sums start from the bias where one accumulator per output channel holds the whole
    # sum: not SMMLA's or the partial sums' pieces, and not 4-bit weights' 16 x the sums,
    # whose shift back by 4 and bias add are one instruction (NEON SSRA, HVX `+= vasr`;
    # started from bias << 4 instead: cortex-a76 ResNet-50 w4a8 155.4 -> 156.1 M cycles)
    start = margs.bias_starts and not (nib16 or pairs or partial) and OCp == Oy
    if nib16:  # 16 x the sums, exactly: back to the sums before the bias

        def epi(a, c):
            return margs.epilogue(_tirx().shift_right(a, _tirx().const(4, accdt)), c)
    elif start:

        def epi(a, c):
            return margs.epilogue(a, c, biased=True)
    else:
        epi = margs.epilogue
    intrinsic_loops: tuple[str, ...] = ("oc.v", "ic.v")
    yname = "requant" if margs.finish else "y"  # the requantized int32 values, then "y"
    if pairs or partial:  # SMMLA: pairs of pixels (rows) x pairs of channels; 4 partial sums
        acc_shape = (N, OCp) if is_dense else (N, OH, OW, OCp)
        if pairs:
            pc = i8mm.contraction(xin, wval, acc_shape, window, accdt, epi, O, yname)
        else:
            pc = partials.contraction(it, xin, wval, acc_shape, window, epi, Oy, yname)
        y, axes, default_order = pc.y, pc.axes, pc.default_order
        intrinsic_loops = pc.intrinsic_loops
    elif offset_w:
        oc_ = uweights.contraction(it, xin, wval, acc_shape, window, epi, Oy, yname)
        acc = oc_.acc
    else:
        acc = contraction_acc(xin, wval, acc_shape, (bo, bk), window, pdt, accdt)
    if pairs or partial:
        pass
    elif is_dense:
        y = (
            oc_.y
            if offset_w
            else te.compute((N, Oy), lambda n, oc: epi(acc[n, oc], oc), name=yname)
        )
        axes = [
            Axis("n", N, unit="rows"),
            Axis("oc", OCp, vsplit=bo, unit="output channels"),
            Axis("ic", ICp // bk, reduce=True, unit="input channels", elem=bk),
            Axis("ic.v", bk, reduce=True),
        ]
        default_order = ("n", "oc", "ic", "ic.v")
    else:
        y = (
            oc_.y
            if offset_w
            else te.compute(
                (N, OH, OW, Oy), lambda n, oh, ow, oc: epi(acc[n, oh, ow, oc], oc), name=yname
            )
        )
        axes = [
            Axis("n", N, unit="images"),
            Axis("oh", OH, unit="output rows"),
            Axis("ow", OW, unit="output columns"),
            Axis("oc", OCp, vsplit=bo, unit="output channels"),
            Axis("kh", KH, reduce=True, unit="kernel rows"),
            Axis("kw", KW, reduce=True, unit="kernel columns"),
            Axis("ic", ICp // bk, reduce=True, unit="input channels", elem=bk),
            Axis("ic.v", bk, reduce=True),
        ]
        default_order = ("n", "oh", "ow", "oc", "kh", "kw", "ic", "ic.v")
    y, between, ep_lanes, ep_intrin = _finished(y, margs, form)
    if partial:
        between = (("partial_sum", partials.sum_intrinsic(it), None), *between)
    spec = ComputeSpec(
        main="acc",
        axes=axes,
        epilogue="y",
        stages=stages,
        intrinsic=it,
        intrinsic_loops=intrinsic_loops,
        epilogue_lanes=ep_lanes,
        epilogue_intrinsics=ep_intrin,
        default_order=default_order,
        layer=ctx.layer,
        notes=tuple(notes),
        between=between,
        operand_bytes=(_nbytes(wp), _nbytes(x)),
        root_intrinsics=(
            ((uweights.SUMS, oc_.sum_intrinsic, len(oc_.sums.shape)),)
            if offset_w and oc_.sum_intrinsic
            else ()
        ),
    )

    # ---- numpy side ----------------------------------------------------------------------
    x_name, out_shape = node.inputs[0], o_i.shape

    @functools.cache  # packed on first use, then kept
    def pack_weights() -> np.ndarray:
        blk = block_weights(w.astype(ft.np_storage if is_float else np.int64), (OCp, ICp), (bo, bk))
        if grp:  # [..][bo][bk] -> [..][bk / grp][bo][grp]
            lead = blk.shape[:-2]
            blk = blk.reshape(*lead, bo, bk // grp, grp)
            blk = np.ascontiguousarray(np.moveaxis(blk, -2, -3))
        if is_float:
            return blk.astype(ft.np_storage)
        if nib16:
            # lane i low nibble, lane i + bo/2 high nibble (the lanes: axis -2), or depth k and
            # k + bk/2 (`nibble_depth`); offset weights store w + 8: 16 (w + 8) = 16 w + 128
            off = 8 if offset_w else 0
            if it.nibble_depth:
                lo, hi = blk[..., : bk // 2] + off, blk[..., bk // 2 :] + off
            else:
                lo, hi = blk[..., : bo // 2, :] + off, blk[..., bo // 2 :, :] + off
            packed = ((lo & 0xF) | ((hi & 0xF) << 4)).astype(np.uint8)
            return np.ascontiguousarray(packed if offset_w else packed.view(np.int8))
        if w4:
            return np.ascontiguousarray(_pack_pairs(blk))
        if offset_w:
            return (blk + uweights.OFFSET).astype(np.dtype(wdt))
        return blk.astype(np.dtype(wdt))

    consts = _mac_consts(
        node,
        x_i,
        w_i,
        o_i,
        w,
        bias_c,
        ft if is_float else None,
        wide,
        t.fscale,
        offset,
    )

    def pack(values: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        xv = np.asarray(values[x_name])
        xk = to_kernel_layout(xv.reshape(N, I) if is_dense else xv, layout)
        out = {"x": xk.astype(np.dtype(xdt)), "w": pack_weights()}
        for k in pnames:
            out[k] = _channels_padded(consts[k], O, Oy) if k in _PER_CHANNEL else consts[k]
        return out

    unpack = _channels_sliced(unpacker(layout, out_shape), O, Oy)

    signature = {
        "op": node.op,
        "class": cls,
        "x": [list(x.shape), xdt],
        "w": [list(wshape), wdt, wbits],
        "y": [list(y.shape), odt],
        "kernel": [KH, KW],
        "strides": list(strides),
        "dilations": list(dil),
        "pads": list(pads),
        "acc": accdt,
        "requant": {"float64": "double", "float32": "mlas"}.get(t.fscale)
        or ("fixed64" if wide else ("fixed" if not is_float else "float")),
        "intrinsic": it.key if it else None,
        "act_offset": offset,
        "requant_form": [form[0].name, *form[1:]] if form else None,
        "block": [bo, bk],
    }
    # the activation sums: computed in the kernel, a stand-in while it is scheduled
    sums = [oc_.stand_in, oc_.sums] if offset_w else []
    return _with_arith(
        Built(
            cls,
            [x, wp] + params + sums + [y],
            ["x", "w"] + pnames + [t.op.name for t in sums] + ["y"],
            spec,
            recipe,
            pack,
            unpack,
            signature,
            (x_name,),
            stand_ins={uweights.STAND_IN: uweights.SUMS} if offset_w else {},
            starts={"acc": "bias"} if start else {},
        ),
        ft if is_float else None,
        2 * KH * KW * I + 1,
    )


# ------------------------------------------------------------------------------------------
# depthwise conv2d
# ------------------------------------------------------------------------------------------


def depthwise(ctx: Ctx) -> Built:
    te, tirx = _te(), _tirx()
    node, g = ctx.node, ctx.graph
    x_i, w_i, b_i, o_i = ctx.info(0), ctx.info(1), ctx.info(2), ctx.out
    is_float = o_i.is_float
    w = np.asarray(g.constants[node.inputs[1]])
    bias_c = np.asarray(g.constants[node.inputs[2]]) if b_i is not None else None
    layout = node.attr("data_layout", "NCHW")
    ca, ha, wa = spatial_axes(layout)
    C = x_i.shape[ca]
    O, _, KH, KW = w.shape
    if O != C:
        raise NotLowered(f"depthwise convolution with channel multiplier {O // C}")
    N, H, W_ = x_i.shape[0], x_i.shape[ha], x_i.shape[wa]
    OH, OW = o_i.shape[ha], o_i.shape[wa]
    sh, sw = node.attr("strides", (1, 1))
    dh, dw = node.attr("dilations", (1, 1))
    pt, pl, pb, pr = node.attr("pads", (0, 0, 0, 0))
    t = _mac_types(ctx, x_i, w_i, b_i, o_i)
    if t.w4:
        # 4-bit weights widened to int8 when packed, as LiteRT unpacks int4 filters into int8
        # when it loads a model: a depthwise layer's weights (KH x KW x C) are tiny next to its
        # activations, and the 8-bit kernels (window intrinsics, paired taps) then serve it
        t = dataclasses.replace(t, wbits=8)
    ft, xdt, wdt, accdt, wbits, wide = t.ft, t.xdt, t.wdt, t.accdt, t.wbits, t.wide
    recipe = ctx.recipe("depthwise_conv2d", t.precision)
    it = _intrinsic(ctx, recipe, t, "elementwise")
    notes: list[str] = []
    # a whole window of taps per call (HVX vmpy + vadd, accelsim.lower.window): the channels
    # padded to its vector; dilated windows are not one strided block, and TVM drops a unit
    # kernel axis from the layer's block (1 x K, K x 1) so that no description matches: those
    # keep the plain loop
    whole = not is_float and dh == dw == 1 and KH > 1 and KW > 1
    win = _intrinsic(ctx, recipe, t, window.KIND) if whole else None
    row = False  # the window intrinsic's row form (`window.rows`): no channel padding
    if win is not None and _intrin.earliest(recipe.get("tensorize") or [], win, it) is win:
        _window_block(ctx, recipe, win)
        row = window.rows(win, C, OW, sw)
        win, it = window.variant(win, KH, KW, C if row else 0), None
    else:
        win = None
    Cp = _roundup(C, win.lanes) if win is not None and not row else C
    # rows: the output row's 128-byte blocks, and the period (in lanes) of their weights and
    # per-channel constants
    NB, L = (OW * C // window.LANES, math.lcm(C, window.LANES)) if row else (0, 0)
    if it is not None and C % it.lanes:
        # no channel padding in depthwise kernels: the layer keeps the plain loop
        notes.append(
            f"intrinsic '{it.name}' not used: {C} channels are not a multiple of "
            f"its {it.lanes} lanes"
        )
        it = None
    if win is not None:
        V = win.lanes
    elif it is not None:
        V = it.lanes
        _intrinsic_blocks(ctx, recipe, it, c=V)
    else:
        # a capped block ("<=N") is taken among whole vectors of the requantization form
        f = _recipe_form(ctx, recipe, t)
        V = _block(
            recipe,
            "c",
            C,
            _lanes(ctx, DTYPE_BITS[accdt]),
            ctx.layer,
            "channels",
            True,
            f.lanes if f is not None and C % f.lanes == 0 else 1,
        )

    # Jacob et al. Appendix B for depthwise: the products of two horizontally adjacent taps
    # summed in int16 (SMULL + SMLAL on int8 registers), then widened into the int32
    # accumulators once (SADDW): exact when no weight is -128 (|sum| <= 2 x 128 x 127 < 2^15).
    # The window's columns are taken in pairs, an odd last column paired with a zero weight.
    pair = bool(
        recipe.get("pair_taps")
        and it is None
        and win is None
        and not is_float
        and xdt == "int8"
        and wdt == "int8"
        and (not w.size or int(w.min()) >= -127)
    )
    if (
        recipe.get("pair_taps")
        and not pair
        and not is_float
        and it is None
        and win is None
        and w.size
    ):
        if int(w.min()) < -127:
            notes.append(f"taps not paired: a weight of {int(w.min())} is below -127")
    KWp = _roundup(KW, 2) if pair else KW

    # the window intrinsic's input arrives with its channels padded to whole vectors (as
    # hexagon_nn's depth-padded layout; packed so, and a conv2d before it writes its output
    # padded to its own vectors): every 128-channel block is then one aligned load. Rows
    # (`window.rows`): the NHWC rows as runs of W x C bytes, unpadded
    x = te.placeholder((N, H, W_ * C) if row else (N, H, W_, Cp), xdt, name="x")
    stages: list[tuple[str, int]] = []
    # int8 activations on an unsigned-activation window (x86 VNNI, accelsim.lower.dotwindow):
    # flipped to u8 (x + offset) in the input stage, the offset folded out of the bias
    offset = win.act_offset if win is not None and win.act_dtype != xdt else 0
    flip = None
    if offset:

        def flip(v):
            return tirx.bitwise_xor(v, tirx.const(-offset, xdt)).astype(win.act_dtype)

    if row:  # per 128-lane block of the channels' period, the window's weights
        wp = te.placeholder((L // window.LANES, KH, KW, window.LANES), wdt, name="w")
    else:
        wp = te.placeholder((KH, KWp, Cp), wdt, name="w")
    odt = ft.storage if is_float else store_dtype(o_i.dtype)
    form = _requant_form(ctx, recipe, t, C, V, (x_i, w_i, o_i))
    nonneg = not is_float and _nonneg(o_i, node)
    margs = _mac_args(
        L or Cp, xdt, accdt, odt, ft if is_float else None, wide, t.fscale, form, nonneg
    )
    params, pnames, pad_value = margs.tensors, margs.names, margs.pad_value
    rkh = te.reduce_axis((0, KH), "kh")
    rkw = te.reduce_axis((0, KWp // 2 if pair else KW), "kw")

    padded = bool(pt or pl or pb or pr)
    materialize = (recipe.get("pad") or {}).get("materialize", False)
    if row:
        xp = _row_padded(x, pad_value, C, (pt, pl, pb, pr)) if padded else x
        if padded:  # in vectors inside one column (C bytes), where the padding test holds
            stages.append(("pad", pow2_divisor(C, V)))
    elif (padded and (materialize or win is not None)) or flip is not None:
        # a padded copy first: the main loop then reads whole vectors without a condition
        xp = pad_input(x, pad_value, None, Cp, (pt, pl, pb, pr), flip)
        stages.append(("pad", V))

        def xv(n, h, ww, c):
            return xp[n, h + pt, ww + pl, c]
    else:

        def xv(n, h, ww, c):
            if padded:
                return tirx.if_then_else(
                    tirx.all(h >= 0, h < H, ww >= 0, ww < W_), x[n, h, ww, c], pad_value
                )
            return x[n, h, ww, c]

    # the sums start from 0, not from the bias as `contraction`'s: the first taps' SADDL (HVX
    # vmpy) forms the int32 sum without an add, and a start costs a copy and an accumulating
    # form (MobileNet v2 features.8.conv.1.0 cycles with the bias as the start: cortex-a55
    # 410 k -> 420 k, hvx-v68 23.8 k -> 25.3 k, cortex-a76 and kryo280 within 0.5 %)
    # 8-bit products fit int16 (|x * w| <= 2^14): multiply at 16 bits, accumulate widened,
    # which is what NEON (smull / smlal) and HVX (vmpy) do natively
    # (the window intrinsic's pattern is the plain int32 product of its description)
    small = not is_float and DTYPE_BITS[x_i.dtype] <= 8 and wbits <= 8
    pdt = "int16" if small and win is None else accdt

    def tap(n, oh, ow, c, kw):
        # the padding column (kw == KW) reads column KW - 1 and meets a zero weight
        col = tirx.min(kw, KW - 1) if KWp != KW else kw
        xval = xv(n, oh * sh + rkh * dh - pt, ow * sw + col * dw - pl, c)
        return xval.astype(pdt) * wp[rkh, kw, c].astype(pdt)

    if row:
        nb = L // window.LANES

        def row_tap(n, oh, b, i):
            xval = xp[n, oh * sh + rkh, b * window.LANES + i + rkw * C]
            return xval.astype(accdt) * wp[b % nb, rkh, rkw, i].astype(accdt)

        acc = te.compute(
            (N, OH, NB, window.LANES),
            lambda n, oh, b, i: te.sum(row_tap(n, oh, b, i), axis=[rkh, rkw]),
            name="acc",
        )
    elif pair:
        acc = te.compute(
            (N, OH, OW, C),
            lambda n, oh, ow, c: te.sum(
                (tap(n, oh, ow, c, 2 * rkw) + tap(n, oh, ow, c, 2 * rkw + 1)).astype(accdt),
                axis=[rkh, rkw],
            ),
            name="acc",
        )
    else:
        acc = te.compute(
            (N, OH, OW, Cp),
            lambda n, oh, ow, c: te.sum(tap(n, oh, ow, c, rkw).astype(accdt), axis=[rkh, rkw]),
            name="acc",
        )
    if row:  # lane i of block b is channel (b x 128 + i) mod C: its constants' index
        y = te.compute(
            (N, OH, NB, window.LANES),
            lambda n, oh, b, i: margs.epilogue(
                acc[n, oh, b, i], (b % (L // window.LANES)) * window.LANES + i
            ),
            name="requant" if margs.finish else "y",
        )
    else:
        y = te.compute(
            (N, OH, OW, Cp),
            lambda n, oh, ow, c: margs.epilogue(acc[n, oh, ow, c], c),
            name="requant" if margs.finish else "y",
        )
    y, between, ep_lanes, ep_intrin = _finished(y, margs, form)
    spec = ComputeSpec(
        main="acc",
        # rows: the "ow" axis counts the row's 128-byte blocks, "c" is one block's lanes
        axes=(
            _window_axes(N, OH, NB, V, V, KH, KW)
            if row
            else _window_axes(N, OH, OW, Cp, V, KH, KWp // 2 if pair else KW)
        ),
        epilogue="y",
        stages=stages,
        intrinsic=win if win is not None else it,
        intrinsic_loops=("kh", "kw", "c.v") if win is not None else ("c.v",),
        epilogue_lanes=ep_lanes,
        epilogue_intrinsics=ep_intrin,
        default_order=_WINDOW_ORDER,
        layer=ctx.layer,
        notes=tuple(notes),
        between=between,
    )

    x_name = node.inputs[0]

    @functools.cache  # packed on first use, then kept
    def pack_weights():
        wv = w.reshape(C, KH, KW).transpose(1, 2, 0)
        if is_float:
            return np.ascontiguousarray(wv.astype(ft.np_storage))
        if row:  # block b, lane i: channel (b x 128 + i) mod C
            lanes = np.arange(L) % C
            return np.ascontiguousarray(
                wv[:, :, lanes].reshape(KH, KW, -1, window.LANES).transpose(2, 0, 1, 3)
            ).astype(np.dtype(wdt))
        # a zero padding column when paired, zero padding channels for the window intrinsic
        wk = np.zeros((KH, KWp, Cp), np.dtype(wdt))
        wk[:, :KW, :C] = wv
        return wk

    consts = _mac_consts(
        node, x_i, w_i, o_i, w, bias_c, ft if is_float else None, wide, t.fscale, offset
    )

    def pack(values):
        xk = to_kernel_layout(np.asarray(values[x_name]), layout).astype(np.dtype(xdt))
        if Cp != C:
            xk = np.pad(xk, [(0, 0)] * 3 + [(0, Cp - C)])
        out = {"x": xk.reshape(N, H, W_ * C) if row else xk, "w": pack_weights()}
        for k in pnames:
            v = consts[k]
            if k in _PER_CHANNEL:  # rows: over the channels' period; else padded
                v = np.tile(v, L // C) if row else _channels_padded(v, C, Cp)
            out[k] = v
        return out

    if row:
        to_nhwc = unpacker(layout)

        def unpack(arr):
            return to_nhwc(np.asarray(arr).reshape(N, OH, OW, C))
    else:
        unpack = _channels_sliced(unpacker(layout), C, Cp)

    signature = {
        "op": node.op,
        "class": "depthwise_conv2d",
        "x": [list(x.shape), xdt],
        "w": [list(wp.shape), wdt, wbits],
        "y": [list(y.shape), odt],
        "strides": [sh, sw],
        "dilations": [dh, dw],
        "pads": [pt, pl, pb, pr],
        "acc": accdt,
        "block": V,
        "pair_taps": pair,
        "intrinsic": (win or it).key if (win or it) else None,
        "channels_padded": Cp,
        "rows": row,
        "act_offset": offset,
        "requant_form": [form[0].name, *form[1:]] if form else None,
    }
    return _with_arith(
        Built(
            "depthwise_conv2d",
            [x, wp] + params + [y],
            ["x", "w"] + pnames + ["y"],
            spec,
            recipe,
            pack,
            unpack,
            signature,
            (x_name,),
        ),
        ft if is_float else None,
        2 * KH * KW + 1,
    )


# ------------------------------------------------------------------------------------------
# pooling and reductions
# ------------------------------------------------------------------------------------------


# depthwise convolution and pooling: one window of taps per output pixel and channel
_WINDOW_ORDER = ("n", "oh", "ow", "c", "kh", "kw")


def _window_axes(N: int, OH: int, OW: int, C: int, V: int, KH: int, KW: int) -> list[Axis]:
    return [
        Axis("n", N, unit="images"),
        Axis("oh", OH, unit="output rows"),
        Axis("ow", OW, unit="output columns"),
        Axis("c", C, vsplit=V, unit="channels"),
        Axis("kh", KH, reduce=True),
        Axis("kw", KW, reduce=True),
    ]


def pool(ctx: Ctx) -> Built:
    """max_pool, avg_pool (window), global_avg_pool and mean over the spatial axes."""
    te, tirx = _te(), _tirx()
    node, g = ctx.node, ctx.graph
    x_i, o_i = ctx.info(0), ctx.out
    is_float = o_i.is_float
    op = node.op
    rows: tuple[int, int, int] | None = None  # a mean over other axes: (O, K, I), below
    if op == "mean":
        layout = tensor_layout(g, node.inputs[0])
        rank = len(x_i.shape)
        axes = sorted({a % rank for a in node.attr("axes")})
        if rank != 4 or set(axes) != set(spatial_axes(layout)[1:]):
            # any contiguous run of axes (layer norm's mean over the last axis, a mean over
            # tokens) in the tensor's own element order: x viewed as (O, K, I) is a window of
            # K x 1 taps over an O x K x 1 x I "image", the global mean the pool kernel computes
            if axes != list(range(axes[0], axes[-1] + 1)):
                raise NotLowered(f"mean over axes {node.attr('axes')} (not contiguous)")
            shp = x_i.shape
            rows = (
                int(np.prod(shp[: axes[0]], dtype=np.int64)),
                int(np.prod(shp[axes[0] : axes[-1] + 1], dtype=np.int64)),
                int(np.prod(shp[axes[-1] + 1 :], dtype=np.int64)),
            )
    else:
        layout = node.attr("data_layout", "NCHW")
    if rows is not None:
        N, H, C = rows
        W_ = 1
    else:
        ca, ha, wa = spatial_axes(layout)
        N, C, H, W_ = x_i.shape[0], x_i.shape[ca], x_i.shape[ha], x_i.shape[wa]
    glob = op in ("global_avg_pool", "mean")
    if glob:
        KH, KW, sh, sw, pt, pl = H, W_, 1, 1, 0, 0
        OH = OW = 1
        pb = pr = 0
    else:
        KH, KW = node.attr("kernel")
        sh, sw = node.attr("strides", (1, 1))
        pt, pl, pb, pr = node.attr("pads", (0, 0, 0, 0))
        OH, OW = o_i.shape[ha], o_i.shape[wa]
    if is_float:
        ft = float_types(ctx, x_i, o_i)
        xdt = odt = ft.storage
        prec = ft.precision
    else:
        _need_per_tensor(ctx, x_i, "input")
        _need_per_tensor(ctx, o_i, "output")
        xdt, odt = store_dtype(x_i.dtype), store_dtype(o_i.dtype)
        prec = ctx.precision
    qdq = not is_float and g.requant_mode == "float"  # ONNX Runtime's arithmetic
    # ONNX Runtime's float arithmetic on dequantized values (accelsim.ref.qdq_ops):
    # QLinearAveragePool sums float32 taps in row order ("f32"); a mean, or a 16-bit global
    # pool, is DequantizeLinear -> float -> QuantizeLinear, float64 in the reference ("f64")
    qfloat = ""
    if qdq and op == "avg_pool" and any(k in node.attrs for k in ("act_min", "act_max")):
        raise NotLowered("an ONNX QDQ average pool with a fused activation")
    q8 = qdq and qdq_ops.is_8bit_pool(x_i, o_i)
    if q8 and op == "avg_pool" and (KH, KW) == (H, W_) and not (pt or pl or pb or pr):
        glob = True  # QLinearAveragePool over the whole image runs as the global pool
    op_glob = "global_avg_pool" if glob and op == "avg_pool" else op
    if q8 and op_glob == "global_avg_pool":
        pass  # QLinearGlobalAveragePool: integer sum, float32 requantization (below)
    elif qdq and op == "max_pool" and x_i.quant == o_i.quant and x_i.dtype == o_i.dtype:
        pass  # exact on the integers
    elif q8 and op == "avg_pool":
        qfloat = "f32"
    elif qdq and op_glob in ("mean", "global_avg_pool"):
        qfloat = "f64"
    elif qdq:
        raise NotLowered(
            f"integer {op} with ONNX QDQ arithmetic (ONNX Runtime's float kernel between "
            f"DequantizeLinear and QuantizeLinear, or a requantizing max pool)"
        )
    # a pool in ORT's float arithmetic schedules as the target's float pools do (on the Hexagon
    # targets the scalar core: HVX float vectors would be qfloat, not IEEE float32)
    recipe = ctx.recipe("pool", "fp32" if qfloat else prec)
    V = _block(
        recipe,
        "c",
        C,
        _lanes(ctx, DTYPE_BITS[ft.compute] if is_float else 32),
        ctx.layer,
        "channels",
        True,
    )
    x = te.placeholder((N, H, W_, C), xdt, name="x")
    rkh = te.reduce_axis((0, KH), "kh")
    rkw = te.reduce_axis((0, KW), "kw")
    include_pad = bool(node.attr("count_include_pad", False))
    padded = not glob and (pt or pl or pb or pr or node.attr("ceil_mode", False))

    def inb(h, ww):
        return tirx.all(h >= 0, h < H, ww >= 0, ww < W_)

    consts: dict[str, np.ndarray] = {}
    if op == "max_pool":
        lo = tirx.min_value(xdt) if not is_float else tirx.const(-np.inf, xdt)
        acc = te.compute(
            (N, OH, OW, C),
            lambda n, oh, ow, c: te.max(
                (
                    tirx.if_then_else(
                        inb(oh * sh + rkh - pt, ow * sw + rkw - pl),
                        x[n, oh * sh + rkh - pt, ow * sw + rkw - pl, c],
                        lo,
                    )
                    if padded
                    else x[n, oh * sh + rkh, ow * sw + rkw, c]
                ).astype(xdt if is_float else "int32"),
                axis=[rkh, rkw],
            ),
            name="acc",
        )
    elif qfloat:
        sdt = "float32" if qfloat == "f32" else "float64"
        fq = te.placeholder((2,), "float32", name="fparams")  # x scale, y scale
        qq = te.placeholder((5,), "int32", name="qparams")  # x zp, 0, y zp, y range

        def qtap(n, h, ww, c):
            # DequantizeLinear's float32 product, kept (`_kept32`) so that no FMA forms
            d = (x[n, h, ww, c].astype("int32") - qq[0]).astype("float32") * fq[0]
            v = _kept32(d, qq[1]).astype(sdt)
            return tirx.if_then_else(inb(h, ww), v, tirx.const(0, sdt)) if padded else v

        acc = te.compute(
            (N, OH, OW, C),
            lambda n, oh, ow, c: te.sum(
                qtap(n, oh * sh + rkh - pt, ow * sw + rkw - pl, c), axis=[rkh, rkw]
            ),
            name="acc",
        )
    else:
        sdt = ft.compute if is_float else "int32"

        def tap(n, h, ww, c):
            if not padded:
                return x[n, h, ww, c].astype(sdt)
            if is_float or not include_pad:
                fill = tirx.const(0, sdt)
            else:  # an explicitly padded tap is a real zero (the zero point); a ceil-mode
                # window's overhang past the padding counts for nothing
                fill = tirx.Select(
                    tirx.all(h < H + pb, ww < W_ + pr),
                    tirx.const(rp.zero_point(x_i), "int32"),
                    tirx.const(0, "int32"),
                )
            return tirx.if_then_else(inb(h, ww), x[n, h, ww, c].astype(sdt), fill)

        acc = te.compute(
            (N, OH, OW, C),
            lambda n, oh, ow, c: te.sum(
                tap(n, oh * sh + rkh - pt, ow * sw + rkw - pl, c), axis=[rkh, rkw]
            ),
            name="acc",
        )

    def count(oh, ow):
        """Taps of the window inside the image, or with `count_include_pad` inside the
        explicitly padded image (a ceil-mode window can hang past both)."""
        if not padded:
            return tirx.const(KH * KW, "int32")
        h0, w0 = oh * sh - pt, ow * sw - pl
        if include_pad:  # h0 >= -pt, w0 >= -pl
            return (tirx.min(h0 + KH, H + pb) - h0) * (tirx.min(w0 + KW, W_ + pr) - w0)
        hc = tirx.min(h0 + KH, H) - tirx.max(h0, 0)
        wc = tirx.min(w0 + KW, W_) - tirx.max(w0, 0)
        return hc * wc

    if is_float:
        # max_pool compares in the storage dtype (exact); sums use the compute dtype
        fdt = xdt if op == "max_pool" else ft.compute
        fp = te.placeholder((2,), fdt, name="fparams")
        params, pnames = [fp], ["fparams"]
        consts["fparams"] = (
            _fbounds(node.attrs) if not glob else np.array([-np.inf, np.inf], np.float32)
        ).astype(np.dtype(fdt))
        if op == "max_pool":
            body = lambda n, oh, ow, c: _float_epilogue(acc[n, oh, ow, c], fp, odt)  # noqa: E731
        else:
            body = lambda n, oh, ow, c: _float_epilogue(  # noqa: E731
                acc[n, oh, ow, c] / count(oh, ow).astype(fdt), fp, odt
            )
    elif qfloat:
        params, pnames = [fq, qq], ["fparams", "qparams"]
        consts["fparams"] = np.array([rp.scale32(x_i), rp.scale32(o_i)], np.float32)
        consts["qparams"] = np.array(
            [rp.zero_point(x_i), 0, rp.zero_point(o_i), *dtype_range(o_i.dtype)], np.int32
        )
        if qfloat == "f32":

            def body(n, oh, ow, c):
                # QLinearAveragePool: sum / count, then nearbyint(y / y_scale + zp), all in
                # float32 (the zero point added before rounding), clamped to the type
                v = acc[n, oh, ow, c] / count(oh, ow).astype("float32")
                v = v / fq[1] + qq[2].astype("float32")
                return rq.clip(rq.round_half_even_f32(v), qq[3], qq[4]).astype(odt)
        else:

            def body(n, oh, ow, c):
                # float mean (float64, as the reference), float32, QuantizeLinear
                m = (acc[n, oh, ow, c] / tirx.const(float(KH * KW), "float64")).astype("float32")
                return rq.mlas_finish(m / fq[1], qq[2], qq[3], qq[4]).astype(odt)
    else:
        qp_n = 6
        qp = te.placeholder((qp_n,), "int32", name="qparams")
        params, pnames = [qp], ["qparams"]
        if glob and qdq:
            # QLinearGlobalAveragePool: the integer sum less zp * n, requantized in float32
            # as MlasRequantizeOutput does (accelsim.ref.qdq_ops.global_avg_pool)
            n_el = H * W_
            lo, hi = dtype_range(o_i.dtype)
            zo = rp.zero_point(o_i)
            fsc = te.placeholder((1,), "float32", name="scale")
            params, pnames = [fsc, qp], ["scale", "qparams"]
            consts["scale"] = np.array(
                [qdq_ops.global_pool_scale(x_i.quant.scale[0], o_i.quant.scale[0], n_el)],
                np.float32,
            )
            consts["qparams"] = np.array(
                [zo, lo, hi, int(rp.wrap_int32(rp.zero_point(x_i) * n_el)), 0, 0], np.int32
            )

            def body(n, oh, ow, c):
                f = (acc[n, oh, ow, c] - qp[3]).astype("float32") * fsc[0]
                return rq.mlas_finish(f, qp[0], qp[1], qp[2]).astype(odt)
        elif glob:
            # reference_ops::QuantizedMeanOrSum: 1/n folded into the multiplier
            n_el = H * W_
            mult, shift = rp.mean_multiplier(x_i, o_i, n_el)
            lo, hi = dtype_range(o_i.dtype)
            consts["qparams"] = np.array(
                [
                    rp.zero_point(o_i),
                    lo,
                    hi,
                    int(rp.wrap_int32(rp.zero_point(x_i) * n_el)),
                    mult,
                    shift,
                ],
                np.int32,
            )

            def body(n, oh, ow, c):
                shifted = acc[n, oh, ow, c] - qp[3]
                return rq.mbqm(
                    shifted,
                    qp[4],
                    qp[5],
                    lambda r: rq.clamp_add(r, qp[0], qp[1], qp[2]).astype(odt),
                )
        else:
            need_rq, m, s_ = rp.rescale_multiplier(x_i, o_i)
            dlo, dhi = dtype_range(o_i.dtype)
            qmin, qmax = (qdq_ops.output_range if qdq else _qclamp)(o_i, node.attrs)
            consts["qparams"] = np.array(
                [rp.zero_point(x_i), rp.zero_point(o_i), m, s_, qmin, qmax], np.int32
            )

            def post(v):
                if need_rq:  # gemmlowp_ops._requantize, then the fused clamp
                    return rq.mbqm(
                        v - qp[0],
                        qp[2],
                        qp[3],
                        lambda r: rq.clip(
                            rq.clamp_add(
                                r, qp[1], tirx.const(dlo, "int32"), tirx.const(dhi, "int32")
                            ),
                            qp[4],
                            qp[5],
                        ).astype(odt),
                    )
                return rq.clip(v, qp[4], qp[5]).astype(odt)

            if op == "max_pool":
                body = lambda n, oh, ow, c: post(acc[n, oh, ow, c])  # noqa: E731
            else:

                def body(n, oh, ow, c):
                    tot = acc[n, oh, ow, c]
                    cnt = count(oh, ow)
                    half = tirx.floordiv(cnt, 2)
                    num = tirx.Select(tot > 0, tot + half, tot - half)
                    return post(tirx.truncdiv(num, cnt))

    y = te.compute((N, OH, OW, C), body, name="y")
    spec = ComputeSpec(
        main="acc",
        axes=_window_axes(N, OH, OW, C, V, KH, KW),
        epilogue="y",
        default_order=_WINDOW_ORDER,
        layer=ctx.layer,
    )
    x_name, out_shape = node.inputs[0], o_i.shape

    def pack(values):
        v = np.asarray(values[x_name])
        v = v.reshape(N, H, W_, C) if rows is not None else to_kernel_layout(v, layout)
        out = {"x": v.astype(np.dtype(xdt))}
        out.update({k: consts[k] for k in pnames})
        return out

    if rows is not None:

        def unpack(arr):
            return np.asarray(arr).reshape(out_shape)
    else:
        unpack = unpacker(layout, out_shape)

    signature = {
        "op": op,
        "class": "pool",
        "rows": list(rows) if rows is not None else None,
        "x": [list(x.shape), xdt],
        "y": [list(y.shape), odt],
        "kernel": [KH, KW],
        "strides": [sh, sw],
        "pads": [pt, pl, pb, pr],
        "include_pad": include_pad,
        "qdq_float": qfloat,
        "block": V,
        "requant": bool(not is_float and not glob and rp.rescale_multiplier(x_i, o_i)[0]),
    }
    return _with_arith(
        Built(
            "pool",
            [x] + params + [y],
            ["x"] + pnames + ["y"],
            spec,
            recipe,
            pack,
            unpack,
            signature,
            (x_name,),
        ),
        ft if is_float else None,
        0 if op == "max_pool" else KH * KW + 1,
    )


def bilinear_resize(ctx: Ctx) -> Built:
    """Integer bilinear resize (`accelsim.ref.gemmlowp_ops.resize`, TFLite's RESIZE_BILINEAR:
    10 fractional bits per axis, rounded half away from zero, then requantized when the output's
    parameters differ). The per-axis source rows / columns and weights depend on shapes alone:
    the reference's own tables (`_bilinear_axis`), kernel arguments."""
    from accelsim.ref.gemmlowp_ops import bilinear_tables

    te, tirx = _te(), _tirx()
    node, g = ctx.node, ctx.graph
    x_i, o_i = ctx.info(0), ctx.out
    if x_i.is_float or o_i.is_float or g.requant_mode == "float":
        return _float_bilinear(ctx)
    if g.requant_mode != "gemmlowp":
        raise NotLowered(f"requant_mode '{g.requant_mode}'")
    _need_per_tensor(ctx, x_i, "input")
    _need_per_tensor(ctx, o_i, "output")
    if len(x_i.shape) != 4:
        raise NotLowered(f"a rank-{len(x_i.shape)} resize")
    layout = node.attr("data_layout", "NCHW")
    _, ha, wa = spatial_axes(layout)
    N, H, W_ = x_i.shape[0], x_i.shape[ha], x_i.shape[wa]
    C = x_i.shape[spatial_axes(layout)[0]]
    OH, OW = o_i.shape[ha], o_i.shape[wa]
    ytab, xtab = bilinear_tables(node.attrs, (H, W_), (OH, OW))
    acc = "int64" if DTYPE_BITS[x_i.dtype] > 8 else "int32"  # |x| * 2^20 * 4 fits int32 at 8 bits
    xdt, odt = store_dtype(x_i.dtype), store_dtype(o_i.dtype)
    x = te.placeholder((N, H, W_, C), xdt, name="x")
    yt = te.placeholder((3, OH), "int32", name="ytab")  # weight (Q10), lower row, upper row
    xt = te.placeholder((3, OW), "int32", name="xtab")
    need_rq, m, sh = rp.rescale_multiplier(x_i, o_i)
    lo, hi = dtype_range(o_i.dtype)
    qp = te.placeholder((6,), "int32", name="qparams")
    one = tirx.const(1 << 10, acc)

    def body(n, oh, ow, c):
        dy, dx = yt[0, oh].astype(acc), xt[0, ow].astype(acc)

        def tap(r, col):
            return x[n, yt[r, oh], xt[col, ow], c].astype(acc)

        v = (
            tap(1, 1) * (one - dy) * (one - dx)
            + tap(2, 1) * dy * (one - dx)
            + tap(1, 2) * (one - dy) * dx
            + tap(2, 2) * dy * dx
        )
        # (v + (v > 0 ? 2^19 : -2^19)) / 2^20 truncated toward zero (v == 0 gives 0 either
        # way, so the sign bit decides): no Select (module `requant`: they slow TVM's simplifier)
        neg = tirx.shift_right(v, tirx.const(63 if acc == "int64" else 31, acc))  # -1 or 0
        rnd = tirx.const(1 << 19, acc) + neg * tirx.const(1 << 20, acc)
        r = tirx.truncdiv(v + rnd, tirx.const(1 << 20, acc)).astype("int32")
        if need_rq:
            return rq.mbqm(
                r - qp[0], qp[2], qp[3], lambda t: rq.clamp_add(t, qp[1], qp[4], qp[5])
            ).astype(odt)
        return r.astype(odt)

    y = te.compute((N, OH, OW, C), body, name="y")
    recipe = ctx.recipe("elementwise", ctx.precision)
    spec = _elementwise_spec(ctx, N * OH * OW * C, DTYPE_BITS.get(o_i.dtype, 32), recipe)
    spec.fuse = True
    consts = {
        "ytab": ytab.astype(np.int32),
        "xtab": xtab.astype(np.int32),
        "qparams": np.array([rp.zero_point(x_i), rp.zero_point(o_i), m, sh, lo, hi], np.int32),
    }
    signature = {
        "op": "resize",
        "class": "bilinear_resize",
        "x": [[N, H, W_, C], xdt],
        "y": [[N, OH, OW, C], odt],
        "acc": acc,
        "requant": bool(need_rq),
        "block": spec.axes[0].vsplit,
    }
    return _one_input_built(
        ctx,
        layout,
        xdt,
        [x, yt, xt, qp, y],
        ["ytab", "xtab", "qparams"],
        consts,
        spec,
        recipe,
        signature,
    )


def _one_input_built(ctx: Ctx, layout: str, xdt: str, args, pnames, consts, spec, recipe, sig):
    """The Built of an elementwise-class kernel of one activation input "x" (converted to the
    kernel layout) and constant arguments `pnames` (from `consts`), its output in `layout`."""
    x_name = ctx.node.inputs[0]

    def pack(values):
        out = {"x": to_kernel_layout(np.asarray(values[x_name]), layout).astype(np.dtype(xdt))}
        out.update({k: consts[k] for k in pnames})
        return out

    names = ["x", *pnames, "y"]
    return Built("elementwise", args, names, spec, recipe, pack, unpacker(layout), sig, (x_name,))


def _float_bilinear(ctx: Ctx) -> Built:
    """Float bilinear resize, the reference's float32 operations term by term
    (`primitives.resize_linear_float`: ONNX Runtime's (wx * wy) * X or TFLite's X * wy * wx,
    summed in the framework's tap order), each computed in float64 and rounded to float32
    (`_f32`), so the kernel's floats are the reference's exactly. In an ONNX QDQ graph the group
    DequantizeLinear -> Resize -> QuantizeLinear (ONNX Runtime runs a linear resize in float):
    the taps dequantized and the sum quantized as those operators compute them."""
    from accelsim.ref import primitives as P

    te = _te()
    node, g = ctx.node, ctx.graph
    x_i, o_i = ctx.info(0), ctx.out
    qdq = not (x_i.is_float and o_i.is_float)
    if qdq:
        if g.requant_mode != "float" or not (x_i.is_quantized and o_i.is_quantized):
            raise NotLowered(f"a bilinear resize from {x_i.dtype} to {o_i.dtype}")
        _need_per_tensor(ctx, x_i, "input")
        _need_per_tensor(ctx, o_i, "output")
        prec = ctx.precision
    else:
        ft = float_types(ctx, x_i, o_i)
        if ft.storage != "float32":
            raise NotLowered(f"a {ft.storage} bilinear resize (float32 only)")
        prec = ft.precision
    if len(x_i.shape) != 4:
        raise NotLowered(f"a rank-{len(x_i.shape)} resize")
    layout = node.attr("data_layout", "NCHW")
    ca, ha, wa = spatial_axes(layout)
    N, C, H, W_ = x_i.shape[0], x_i.shape[ca], x_i.shape[ha], x_i.shape[wa]
    OH, OW = o_i.shape[ha], o_i.shape[wa]
    form, ytaps, xtaps = P.linear_resize_taps(node.attrs, (H, W_))
    xdt, odt, f32, f64 = store_dtype(x_i.dtype), store_dtype(o_i.dtype), "float32", "float64"
    x = te.placeholder((N, H, W_, C), xdt, name="x")
    yi = te.placeholder((2, OH), "int32", name="yidx")  # lower, upper source row
    yw = te.placeholder((2, OH), f32, name="ywt")  # their weights
    xi = te.placeholder((2, OW), "int32", name="xidx")
    xw = te.placeholder((2, OW), f32, name="xwt")
    fp = te.placeholder((2,), f32, name="fparams")  # x scale, y scale (QDQ)
    qp = te.placeholder((5,), "int32", name="qparams")  # x zp, y zp, y range (QDQ), 0

    def tap(n, r, c, oh, ow, ch):
        v = x[n, yi[r, oh], xi[c, ow], ch]
        if qdq:  # DequantizeLinear: float32((q - zp)) * scale
            return _f32((v.astype("int32") - qp[0]).astype(f64) * fp[0].astype(f64))
        return v.astype(f64)

    def body(n, oh, ow, ch):
        acc = None
        for r, c in P.linear_resize_terms(form):
            t, wy, wx = tap(n, r, c, oh, ow, ch), yw[r, oh].astype(f64), xw[c, ow].astype(f64)
            if form == "tflite":
                term = _f32_kept(_f32(t * wy) * wx, qp[4])
            else:
                term = _f32_kept(_f32(wx * wy) * t, qp[4])
            acc = term if acc is None else _f32(acc + term)
        y32 = acc.astype(f32)
        if qdq:  # QuantizeLinear
            return rq.mlas_finish(y32 / fp[1], qp[1], qp[2], qp[3]).astype(odt)
        return y32.astype(odt)

    y = te.compute((N, OH, OW, C), body, name="y")
    recipe = ctx.recipe("elementwise", prec)
    spec = _elementwise_spec(ctx, N * OH * OW * C, 32, recipe)
    spec.fuse = True
    consts = {
        "yidx": np.stack(ytaps[:2]).astype(np.int32),
        "ywt": np.stack(ytaps[2:]).astype(np.float32),
        "xidx": np.stack(xtaps[:2]).astype(np.int32),
        "xwt": np.stack(xtaps[2:]).astype(np.float32),
        "fparams": np.array([rp.scale32(x_i), rp.scale32(o_i)] if qdq else [1.0, 1.0], np.float32),
        "qparams": np.array(
            [rp.zero_point(x_i), rp.zero_point(o_i), *dtype_range(o_i.dtype), 0]
            if qdq
            else [0] * 5,
            np.int32,
        ),
    }
    signature = {
        "op": "resize",
        "class": "float_bilinear_resize",
        "x": [[N, H, W_, C], xdt],
        "y": [[N, OH, OW, C], odt],
        "form": form,
        "qdq": qdq,
        "block": spec.axes[0].vsplit,
    }
    return _one_input_built(
        ctx,
        layout,
        xdt,
        [x, yi, yw, xi, xw, fp, qp, y],
        list(consts),
        consts,
        spec,
        recipe,
        signature,
    )


# ------------------------------------------------------------------------------------------
# elementwise
# ------------------------------------------------------------------------------------------


def _elementwise_mbqm(ctx: Ctx, total: int, flat: bool):
    """MultiplyByQuantizedMultiplier for an integer elementwise kernel of `total` elements:
    the recipe's requantization form (`epilogue.requant`) where the target has it, the
    operands are flat runs (no broadcasting: the loop is then vectorized in exactly the
    recipe's block) and that block is the form's lanes (its instructions take exactly that
    many), else the generic int64 one. Called as (x, mult, shift, k, whether the shift may be
    to the left, whether the form's one-step rounding is exact there: `requant.mbqm_vmpye`)."""
    recipe = ctx.recipe("elementwise")
    names = (recipe.get("epilogue") or {}).get("requant") or []
    form = rq.select_form(names, ctx.target.codegen.features)
    lanes = _block(recipe, "x", total, _lanes(ctx, 32), ctx.layer, "elements", True)
    if form is None or not flat or lanes != form.lanes or not recipe.get("vectorize"):
        return None
    return lambda x, mult, shift, k, left, nudge: form.build(
        x, mult, shift, k, left_shifts=left, nudge=nudge
    )


def _generic_mbqm(x, mult, shift, k, left, nudge):
    return rq.mbqm(x, mult, shift, k)


def _scalar(recipe: Recipe) -> Recipe:
    """`recipe` with its loop left scalar: an integer elementwise kernel whose recipe vectorizes
    for a requantization form the layer cannot take (a broadcast operand, a size that is no
    whole number of the form's vectors) keeps the generic int64 form on the scalar core, as
    the operator class's default does (its int64 lanes have no vector form there)."""
    values = {**recipe.values, "vectorize": None, "block": {"x": 1}}
    return dataclasses.replace(recipe, values=values)


def _elementwise_spec(ctx: Ctx, total: int, bits: int, recipe: Recipe) -> ComputeSpec:
    V = _block(recipe, "x", total, _lanes(ctx, bits), ctx.layer, "elements", True)
    return ComputeSpec(
        main="y",
        axes=[Axis("x", total, vsplit=V, unit="elements")],
        default_order=("x",),
        layer=ctx.layer,
    )


class _Broadcast:
    """An operand read at the output's index with numpy broadcasting (size-1 axes at 0)."""

    def __init__(self, tensor, shape: tuple[int, ...]) -> None:
        self.tensor, self.ones = tensor, tuple(d == 1 for d in shape)

    def __getitem__(self, index):
        index = index if isinstance(index, tuple) else (index,)
        return self.tensor[tuple(0 if one else i for one, i in zip(self.ones, index))]


def _qlinear_body(op: str, xs, ins, o_i):
    """ONNX Runtime's QLinearAdd / QLinearMul (`accelsim.ref.qdq_ops.add` / `mul`): (body of
    (fparams, qparams, out dtype, *index), float32 arguments, int32 arguments). Every float32
    operation is computed in float64 and rounded (`_f32`: exact, and LLVM cannot contract a
    multiply and an add into an FMA the reference does not have); the reference's fused
    multiply-adds are one float64 multiply-add (the product of an 8-bit integer and a float32
    is exact in float64) rounded once."""
    a, b = xs
    lo, hi = dtype_range(o_i.dtype)
    zero = _tirx().const(0, "int32")
    f64 = "float64"
    if op == "add":
        ra, rb, fixed = qdq_ops.add_params(*ins, o_i)
        which = qdq_ops.scalar_operand(ins[0].shape, ins[1].shape, o_i.shape)

        def body(fp, qp, odt, *i):
            A, B = a[i].astype(f64), b[i].astype(f64)
            RA, RB, FX = (fp[k].astype(f64) for k in range(3))
            if which == "a":  # ORT's loop over a scalar a: its product folded in first
                r = _f32(B * RB + _f32(FX + _f32(A * RA)))
            elif which == "b":
                r = _f32(A * RA + _f32(FX + _f32(B * RB)))
            else:
                r = _f32(A * RA + _f32(B * RB + FX))
            return rq.mlas_finish(r.astype("float32"), zero, qp[0], qp[1]).astype(odt)

        return body, [ra, rb, fixed], [lo, hi]
    za, zb = (int(t.quant.zero_point[0]) for t in ins)
    zc = int(o_i.quant.zero_point[0])

    def mbody(fp, qp, odt, *i):
        prod = (a[i].astype("int32") - qp[2]) * (b[i].astype("int32") - qp[3])
        r = _f32(_f32(prod.astype(f64) * fp[0].astype(f64)) + fp[1].astype(f64))
        return rq.mlas_finish(r.astype("float32"), zero, qp[0], qp[1]).astype(odt)

    return mbody, [qdq_ops.mul_ratio(*ins, o_i), float(zc)], [lo, hi, za, zb]


def elementwise(ctx: Ctx) -> Built:
    """add, sub, mul (operands broadcast, activations or constants), relu / relu6 / clip,
    quantize, dequantize; on float tensors also div and the pointwise functions of
    `accelsim.lower.floatmath` (the float islands ONNX Runtime's quantizer leaves)."""
    te, tirx = _te(), _tirx()
    node, g = ctx.node, ctx.graph
    op = node.op
    o_i = ctx.out
    ins = [ctx.info(i) for i in range(len(node.inputs))]
    layout = tensor_layout(g, node.outputs[0]) if len(o_i.shape) == 4 else "NCHW"
    if any(t is None for t in ins):
        raise NotLowered("an operand is omitted")
    # broadcasting or constant operands (squeeze-and-excitation scales, biases, masks): the
    # kernel works in the graph's own layout, each operand at its own shape, read through
    # broadcast indices; constants are kernel arguments like activations
    bcast = any(t.shape != o_i.shape for t in ins) or any(g.is_constant(t) for t in node.inputs)
    rank = len(o_i.shape)
    if bcast:
        layout = "as stored"
    kshape = tuple(o_i.shape) if bcast else _kshape(o_i.shape, layout)
    in_shapes = [(1,) * (rank - len(t.shape)) + tuple(t.shape) for t in ins]
    total = int(np.prod(kshape))
    consts: dict[str, np.ndarray] = {}
    in_dts = [store_dtype(t.dtype) for t in ins]
    odt = store_dtype(o_i.dtype)
    xnames = ["a", "b"] if len(ins) == 2 else ["x"]
    # without broadcasting, every operand is read and the output written as one run of
    # `total` elements (a fused 4-D index would be split by div / mod, which a vector whose
    # lanes cross a channel row turns into a gather)
    flat = (total,)
    phs = [
        te.placeholder(shp if bcast else flat, dt, name=n)
        for shp, dt, n in zip(in_shapes, in_dts, xnames)
    ]
    xs = [_Broadcast(p, shp) if bcast else p for p, shp in zip(phs, in_shapes)]
    is_float = o_i.is_float and all(t.is_float for t in ins)
    params: list = []
    pnames: list[str] = []
    formed = None  # the integer requantization form, where one applies
    if is_float:
        if op in ("quantize", "dequantize"):
            raise NotLowered(f"float {op} to {o_i.dtype}")
        ft = float_types(ctx, o_i, *ins)
        prec, cdt = ft.precision, ft.compute
        fp = te.placeholder((2,), cdt, name="fparams")
        params, pnames = [fp], ["fparams"]
        if op in ("add", "sub", "mul", "div"):
            consts["fparams"] = _fbounds(node.attrs).astype(ft.np_compute)
            a, b = xs
            arith = {"add": "__add__", "sub": "__sub__", "mul": "__mul__", "div": "__truediv__"}

            def body(*i):
                u, v = a[i].astype(cdt), b[i].astype(cdt)
                return _float_epilogue(getattr(u, arith[op])(v), fp, odt)
        elif op in floatmath.UNARY:
            if ft.storage != "float32":
                raise NotLowered(f"a {ft.storage} {op} (its polynomial is float32's)")
            consts["fparams"] = np.array([-np.inf, np.inf], ft.np_compute)
            x, fn = xs[0], floatmath.UNARY[op]

            def body(*i):
                return _float_epilogue(fn(x[i], node.attr), fp, odt)
        elif op in ("relu", "relu6", "clip"):
            lo, hi = {"relu": (0.0, np.inf), "relu6": (0.0, 6.0)}.get(
                op, (node.attr("min"), node.attr("max"))
            )
            consts["fparams"] = np.array(
                [-np.inf if lo is None else lo, np.inf if hi is None else hi], ft.np_compute
            )
            x = xs[0]

            def body(*i):
                return _float_epilogue(x[i].astype(cdt), fp, odt)
        else:
            raise NotLowered(f"float {op}")
    elif op == "quantize" and ins[0].is_float:
        prec = ctx.precision
        _need_per_tensor(ctx, o_i, "output")
        if ins[0].dtype != "float32":
            raise NotLowered(f"quantize from {ins[0].dtype}")
        # the scale and its correctly rounded reciprocal: x / scale as a division, or by the
        # reciprocal where the recipe says so (`requant.div_known`: the same float32)
        by_reciprocal = (
            ctx.recipe("elementwise").get("divide") == "reciprocal"
            and rp.scale32(o_i) >= rq.DIV_KNOWN_MIN_SCALE
        )
        fp = te.placeholder((2,), "float32", name="fparams")
        qp = te.placeholder((3,), "int32", name="qparams")
        params, pnames = [fp, qp], ["fparams", "qparams"]
        lo, hi = dtype_range(o_i.dtype)
        scale = rp.scale32(o_i)
        consts["fparams"] = np.array([scale, rp.reciprocal32(scale)], np.float32)
        consts["qparams"] = np.array([rp.zero_point(o_i), lo, hi], np.int32)
        x = xs[0]

        def quotient(i):
            return rq.div_known(x[i], fp[0], fp[1]) if by_reciprocal else x[i] / fp[0]

        def qdq_body(*i):
            # QuantizeLinear as MLAS computes it (accelsim.core.qparams.quantize_array)
            return rq.mlas_finish(quotient(i), qp[0], qp[1], qp[2]).astype(odt)

        def body(*i):
            # AffineQuantize: TfLiteRound(x / float(scale)) + zp, clamped; the value is clamped
            # to one step beyond the range first (same result, and no overflow)
            r = rq.round_half_away_f32(quotient(i), lo - 65536.0, hi + 65536.0)
            return rq.clip(r + qp[0], qp[1], qp[2]).astype(odt)

        if g.requant_mode == "float":
            body = qdq_body
    elif op == "dequantize":
        prec = ctx.precision
        _need_per_tensor(ctx, ins[0], "input")
        if o_i.dtype != "float32":
            raise NotLowered(f"dequantize to {o_i.dtype}")
        # 8- and 16-bit inputs: (q - zp) * scale in float32. q - zp has at most 17 bits and
        # the scale 24, so the product is exact before its one rounding, as the reference's
        # float64 product rounded to float32; no float64, which Hexagon V62 lacks (and the
        # freestanding runtime has no soft-float helpers). Wider inputs keep float64.
        cdt = "float32" if DTYPE_BITS.get(ins[0].dtype, 32) <= 16 else "float64"
        sc = te.placeholder((1,), cdt, name="scale")
        qp = te.placeholder((1,), "int32", name="qparams")
        params, pnames = [sc, qp], ["scale", "qparams"]
        consts["scale"] = np.array([rp.scale32(ins[0])], cdt)
        consts["qparams"] = np.array([rp.zero_point(ins[0])], np.int32)
        x = xs[0]

        def body(*i):
            return ((x[i].astype("int32") - qp[0]).astype(cdt) * sc[0]).astype("float32")
    elif g.requant_mode == "float":
        prec = ctx.precision
        if op not in ("add", "mul") or not qdq_ops.has_integer_kernel(node, *ins, o_i):
            raise NotLowered(
                f"integer {op} with ONNX QDQ arithmetic other than QLinearAdd / QLinearMul "
                f"(ONNX Runtime runs it in float between DequantizeLinear and QuantizeLinear)"
            )
        body, fvals, qvals = _qlinear_body(op, xs, ins, o_i)
        fp = te.placeholder((len(fvals),), "float32", name="fparams")
        qp = te.placeholder((len(qvals),), "int32", name="qparams")
        params, pnames = [fp, qp], ["fparams", "qparams"]
        consts["fparams"] = np.array(fvals, np.float32)
        consts["qparams"] = np.array(qvals, np.int32)
        body = functools.partial(body, fp, qp, odt)
    else:
        prec = ctx.precision
        if g.requant_mode != "gemmlowp":
            raise NotLowered(f"requant_mode '{g.requant_mode}' (kernels implement gemmlowp)")
        for k, t in enumerate(ins):
            _need_per_tensor(ctx, t, f"operand {k}")
        _need_per_tensor(ctx, o_i, "output")
        qmin, qmax = _qclamp(o_i, node.attrs)
        formed = _elementwise_mbqm(ctx, total, not bcast)
        mbqm = formed or _generic_mbqm
        if op in ("add", "sub"):
            a_i, b_i = ins
            ap = rp.add_params(a_i, b_i, o_i)
            left, (m1, sh1), (m2, sh2), (mo, sho) = ap.left_shift, ap.input1, ap.input2, ap.output
            qp = te.placeholder((12,), "int32", name="qparams")
            params, pnames = [qp], ["qparams"]
            consts["qparams"] = np.array(
                [
                    rp.zero_point(a_i),
                    rp.zero_point(b_i),
                    rp.zero_point(o_i),
                    left,
                    m1,
                    sh1,
                    m2,
                    sh2,
                    mo,
                    sho,
                    qmin,
                    qmax,
                ],
                np.int32,
            )
            a, b = xs
            sign = 1 if op == "add" else -1
            # the one-step rounding: the inputs' rescalings cannot overflow int32 (|x << left|
            # <= 255 x 2^left <= 2^30 for 8-bit inputs, TFLite's left shift being 20, and the
            # multipliers are below one), the output's is clamped to 8 bits
            # (`requant.NUDGE_RIGHT`)
            lo_r, hi_r = rq.NUDGE_RIGHT
            eight = all(DTYPE_BITS[d] <= 8 for d in in_dts) and left <= 22
            n1, n2 = (eight and -30 <= v <= -1 for v in (sh1, sh2))
            n_out = odt in ("int8", "uint8") and -hi_r <= sho <= -lo_r

            def body(*i):
                x1 = tirx.shift_left(a[i].astype("int32") - qp[0], qp[3])
                x2 = tirx.shift_left(b[i].astype("int32") - qp[1], qp[3])

                def out(y1, y2):
                    raw = y1 + y2 if sign > 0 else y1 - y2
                    return mbqm(
                        raw,
                        qp[8],
                        qp[9],
                        lambda r: rq.clamp_add(r, qp[2], qp[10], qp[11]).astype(odt),
                        sho > 0,
                        n_out,
                    )

                return mbqm(
                    x1,
                    qp[4],
                    qp[5],
                    lambda y1: mbqm(x2, qp[6], qp[7], lambda y2: out(y1, y2), sh2 > 0, n2),
                    sh1 > 0,
                    n1,
                )
        elif op == "mul":
            a_i, b_i = ins
            mm, ms, wide = rp.mul_params(a_i, b_i, o_i)
            qp = te.placeholder((7,), "int32", name="qparams")
            params, pnames = [qp], ["qparams"]
            consts["qparams"] = np.array(
                [rp.zero_point(a_i), rp.zero_point(b_i), rp.zero_point(o_i), mm, ms, qmin, qmax],
                np.int32,
            )
            a, b = xs
            pdt = "int64" if wide else "int32"

            def body(*i):
                p = (a[i].astype(pdt) - qp[0].astype(pdt)) * (b[i].astype(pdt) - qp[1].astype(pdt))
                fn = rq.mbqm64 if wide else rq.mbqm
                return fn(
                    p, qp[3], qp[4], lambda r: rq.clamp_add(r, qp[2], qp[5], qp[6]).astype(odt)
                )
        elif op in ("relu", "relu6", "clip", "quantize"):
            x_i = ins[0]
            if op == "quantize":
                mm, ms = rp.quantize_multiplier_of(x_i, o_i)
                lo_, hi_ = dtype_range(o_i.dtype)
            else:
                from accelsim.ref.int_ops import quantized_clamp

                mm, ms = rp.relu_multiplier(x_i, o_i)
                lo, hi = {"relu": (0.0, np.inf), "relu6": (0.0, 6.0)}.get(
                    op, (node.attr("min"), node.attr("max"))
                )
                lo_, hi_ = quantized_clamp(
                    o_i, -np.inf if lo is None else float(lo), np.inf if hi is None else float(hi)
                )
            qp = te.placeholder((6,), "int32", name="qparams")
            params, pnames = [qp], ["qparams"]
            consts["qparams"] = np.array(
                [rp.zero_point(x_i), rp.zero_point(o_i), mm, ms, lo_, hi_], np.int32
            )
            x = xs[0]

            def body(*i):
                return mbqm(
                    x[i].astype("int32") - qp[0],
                    qp[2],
                    qp[3],
                    lambda r: rq.clamp_add(r, qp[1], qp[4], qp[5]).astype(odt),
                    ms > 0,
                    False,
                )
        else:
            raise NotLowered(f"no integer kernel for {op}")
    recipe = ctx.recipe("elementwise", prec)
    if formed is None and (recipe.get("epilogue") or {}).get("requant"):
        recipe = _scalar(recipe)
    y = te.compute(kshape if bcast else flat, lambda *i: body(*i), name="y")
    spec = _elementwise_spec(
        ctx,
        total,
        DTYPE_BITS.get(o_i.dtype, 32) if not is_float else DTYPE_BITS[ft.compute],
        recipe,
    )
    spec.fuse = True
    in_names = tuple(node.inputs)
    in_layouts = [tensor_layout(g, t) if len(g.tensors[t].shape) == 4 else "NCHW" for t in in_names]

    def pack(values):
        out = {}
        for n, t, lay, dt, shp in zip(xnames, in_names, in_layouts, in_dts, in_shapes):
            v = np.asarray(values[t])
            v = v.reshape(shp) if bcast else to_kernel_layout(v, lay).reshape(-1)
            out[n] = np.ascontiguousarray(v.astype(np.dtype(dt)))
        out.update({k: consts[k] for k in pnames})
        return out

    if bcast:
        unpack = unpacker("NHWC")
    else:
        to_graph = unpacker(layout)

        def unpack(arr):
            return to_graph(np.asarray(arr).reshape(kshape))

    signature = {
        "op": op,
        "class": "elementwise",
        "in": [[list(x.shape), str(x.dtype)] for x in phs],
        "y": [list(kshape), odt],
        "block": spec.axes[0].vsplit,
    }
    return _with_arith(
        Built(
            "elementwise",
            phs + params + [y],
            xnames + pnames + ["y"],
            spec,
            recipe,
            pack,
            unpack,
            signature,
            in_names,
        ),
        ft if is_float else None,
        1 if op in ("add", "sub", "mul", "div") else 0,
    )


def batch_norm(ctx: Ctx) -> Built:
    """Float batch normalization (inference: constant statistics), e.g. a pre-activation
    DenseNet's BN after a concat, which no conv absorbs and ORT's quantizer leaves in float:
    y = x * scale[c] + shift[c], scale = gamma / sqrt(var + eps) and shift = beta - mean * scale
    computed once on the host in float64 (as `accelsim.ref.fp_ops.batch_norm` does) and
    rounded to float32 kernel arguments."""
    te = _te()
    node, g = ctx.node, ctx.graph
    x_i, o_i = ctx.info(0), ctx.out
    if not (x_i.is_float and o_i.is_float):
        raise NotLowered("an integer batch norm")
    if not all(g.is_constant(t) for t in node.inputs[1:5]):
        raise NotLowered("batch norm statistics are not constants")
    ft = float_types(ctx, x_i, o_i)
    layout = tensor_layout(g, node.inputs[0]) if len(x_i.shape) == 4 else "NCHW"
    kshape = _kshape(x_i.shape, layout)
    rank = len(kshape)
    cax = rank - 1 if rank == 4 else min(1, rank - 1)  # NHWC in the kernel; (N, C, ...) else
    gamma, beta, mu, var = (np.asarray(g.constants[t], np.float64) for t in node.inputs[1:5])
    scale = gamma / np.sqrt(var + float(node.attr("epsilon", 1e-5)))
    shift = beta - mu * scale
    C = kshape[cax]
    cdt, sdt = ft.compute, store_dtype(x_i.dtype)
    x = te.placeholder(kshape, sdt, name="x")
    st = te.placeholder((2, C), cdt, name="scale_shift")
    y = te.compute(
        kshape,
        lambda *i: (x[i].astype(cdt) * st[0, i[cax]] + st[1, i[cax]]).astype(
            store_dtype(o_i.dtype)
        ),
        name="y",
    )
    recipe = ctx.recipe("elementwise", ft.precision)
    spec = _elementwise_spec(ctx, int(np.prod(kshape)), DTYPE_BITS[cdt], recipe)
    spec.fuse = True
    consts = {"scale_shift": np.stack([scale, shift]).astype(ft.np_compute)}
    signature = {
        "op": "batch_norm",
        "class": "elementwise",
        "x": [list(kshape), sdt],
        "channel_axis": cax,
        "block": spec.axes[0].vsplit,
    }
    built = _one_input_built(
        ctx, layout, sdt, [x, st, y], ["scale_shift"], consts, spec, recipe, signature
    )
    return _with_arith(built, ft, 2)


# Exact elementwise ops on tensors that are not quantized values: masks and index arithmetic
# (BERT's attention mask: cast, logical_and, where), as numpy computes them in the reference
# (accelsim.ref.fp_ops). A `where` may select quantized or float values: a copy, no arithmetic.
EXACT_OPS = ("cast", "less", "greater", "equal", "greater_equal", "logical_and", "where")


def exact_elementwise(ctx: Ctx) -> Built:
    """cast, comparisons, logical_and and where, operands broadcast, in the graph's layout."""
    te, tirx = _te(), _tirx()
    node, o_i = ctx.node, ctx.out
    op = node.op
    ins = [ctx.info(i) for i in range(len(node.inputs))]
    if any(t is None for t in ins):
        raise NotLowered("an operand is omitted")
    values = ins[1:] if op == "where" else ins
    if op == "where":
        if any(t.dtype != o_i.dtype or t.quant != o_i.quant for t in values):
            raise NotLowered("where between differently quantized operands (a requantizing select)")
    elif any(t.is_quantized for t in (*ins, o_i)):
        raise NotLowered(f"{op} of quantized values")
    rank = len(o_i.shape)
    in_shapes = [(1,) * (rank - len(t.shape)) + tuple(t.shape) for t in ins]
    in_dts = [store_dtype(t.dtype) for t in ins]
    odt = store_dtype(o_i.dtype)
    names = [f"x{k}" for k in range(len(ins))]
    phs = [te.placeholder(shp, dt, name=n) for shp, dt, n in zip(in_shapes, in_dts, names)]
    xs = [_Broadcast(p, shp) for p, shp in zip(phs, in_shapes)]

    def truth(k, i):  # a bool is stored as a byte (0 or 1); any other value is true if nonzero
        v = xs[k][i]
        return v != tirx.const(0, v.dtype)

    def body(*i):
        if op == "cast":
            if o_i.dtype == "bool":
                return truth(0, i).astype(odt)
            return xs[0][i].astype(o_i.dtype).astype(odt)
        if op == "where":
            return tirx.Select(truth(0, i), xs[1][i], xs[2][i])
        if op == "logical_and":
            return tirx.all(truth(0, i), truth(1, i)).astype(odt)
        a, b = xs[0][i], xs[1][i]
        return {"less": a < b, "greater": a > b, "equal": a == b, "greater_equal": a >= b}[
            op
        ].astype(odt)

    y = te.compute(tuple(o_i.shape), lambda *i: body(*i), name="y")
    recipe = ctx.recipe("elementwise", ctx.precision)
    total = int(np.prod(o_i.shape, dtype=np.int64))
    spec = _elementwise_spec(ctx, total, DTYPE_BITS.get(o_i.dtype, 32), recipe)
    spec.fuse = True
    in_names = tuple(node.inputs)

    def pack(values_):
        return {
            n: np.ascontiguousarray(np.asarray(values_[t]).reshape(shp).astype(np.dtype(dt)))
            for n, t, dt, shp in zip(names, in_names, in_dts, in_shapes)
        }

    out_shape = tuple(o_i.shape)

    def unpack(arr):
        return np.asarray(arr).reshape(out_shape)

    signature = {
        "op": op,
        "class": "exact_elementwise",
        "in": [[list(shp), dt] for shp, dt in zip(in_shapes, in_dts)],
        "y": [list(out_shape), odt, o_i.dtype],
        "block": spec.axes[0].vsplit,
    }
    return Built(
        "elementwise", [*phs, y], [*names, "y"], spec, recipe, pack, unpack, signature, in_names
    )


def concat(ctx: Ctx) -> Built:
    """concat: copies, or reference_ops::ConcatenationWithScaling per input whose quantization
    differs from the output's (float32 arithmetic, std::round)."""
    te, tirx = _te(), _tirx()
    node, g = ctx.node, ctx.graph
    o_i = ctx.out
    # a constant operand (ViT's class token) is a kernel argument like an activation
    ins = [ctx.info(i) for i in range(len(node.inputs))]
    rank = len(o_i.shape)
    layout = tensor_layout(g, node.outputs[0]) if rank == 4 else "NCHW"
    ax = _kaxis(node.attr("axis"), rank, layout)
    kshape = _kshape(o_i.shape, layout)
    is_float = o_i.is_float
    odt = store_dtype(o_i.dtype)
    xs = [
        te.placeholder(_kshape(t.shape, layout), store_dtype(t.dtype), name=f"x{k}")
        for k, t in enumerate(ins)
    ]
    consts: dict[str, np.ndarray] = {}
    params, pnames = [], []
    scaled: list[bool] = []
    qdq = False
    if is_float:
        prec = float_types(ctx, o_i, *ins).precision
        scaled = [False] * len(ins)
    else:
        prec = ctx.precision
        _need_per_tensor(ctx, o_i, "output")
        for k, t in enumerate(ins):
            _need_per_tensor(ctx, t, f"input {k}")
        so, zo = rp.scale32(o_i), rp.zero_point(o_i)
        lo, hi = dtype_range(o_i.dtype)
        fvals, scaled = [], []
        for t in ins:
            same = rp.scale32(t) == so and rp.zero_point(t) == zo
            scaled.append(not same)
            inv = np.float32(1.0) / so
            sc = np.float32(rp.scale32(t) * inv)
            fvals += [sc, np.float32(np.float32(-rp.zero_point(t)) * sc)]
        qdq = g.requant_mode == "float"
        if qdq and (
            any(DTYPE_BITS[t.dtype] > 8 for t in (*ins, o_i))
            or any(np.isfinite(activation_bounds(node.attrs)))
        ):
            raise NotLowered("an ONNX QDQ concat of 16-bit tensors or with an activation")
        qmin, qmax = lo, hi
        if any(np.isfinite(activation_bounds(node.attrs))):
            qmin, qmax = _qclamp(o_i, node.attrs)
        fp = te.placeholder((2 * len(ins),), "float32", name="fparams")
        qp = te.placeholder((3,), "int32", name="qparams")
        params, pnames = [fp, qp], ["fparams", "qparams"]
        consts["fparams"] = np.array(fvals, np.float32)
        consts["qparams"] = np.array([zo, lo, hi], np.int32)
        consts["clamp"] = np.array([qmin, qmax])
        if qdq:  # QLinearConcat: an input quantized otherwise goes through a 256-entry table
            tables = te.placeholder((len(ins), 256), "int32", name="tables")
            params.append(tables)
            pnames.append("tables")
            consts["tables"] = np.stack([qdq_ops.requantize_table(t, o_i) for t in ins])

    offsets = np.cumsum([0] + [int(x.shape[ax]) for x in xs])

    def value(k, idx):
        x = xs[k]
        v = x[idx]
        if not scaled[k]:
            return v.astype(odt)
        if qdq:
            return tables[k, v.astype("int32") - dtype_range(ins[k].dtype)[0]].astype(odt)
        # float32(x) * scale + bias, rounded half away from zero, + zp, clipped
        f = _f32(
            _f32(v.astype("float64") * fp[2 * k].astype("float64"))
            + fp[2 * k + 1].astype("float64")
        )
        r = rq.round_half_away_i64(f, lo - 65536.0, hi + 65536.0).astype("int32")
        return rq.clip(r + qp[0], qp[1], qp[2]).astype(odt)

    def body(*i):
        j = i[ax]
        out = None
        for k in reversed(range(len(xs))):
            idx = tuple(i[d] if d != ax else j - int(offsets[k]) for d in range(rank))
            v = value(k, idx)
            out = v if out is None else tirx.if_then_else(j < int(offsets[k + 1]), v, out)
        if not is_float and (
            consts["clamp"][0] > dtype_range(o_i.dtype)[0]
            or consts["clamp"][1] < dtype_range(o_i.dtype)[1]
        ):
            out = rq.clip(
                out.astype("int32"), int(consts["clamp"][0]), int(consts["clamp"][1])
            ).astype(odt)
        return out

    recipe = ctx.recipe("elementwise", prec)
    y = te.compute(kshape, body, name="y")
    total = int(np.prod(kshape))
    spec = _elementwise_spec(ctx, total, DTYPE_BITS.get(o_i.dtype, 32), recipe)
    spec.fuse = True
    in_names = tuple(node.inputs)
    xnames = [f"x{k}" for k in range(len(ins))]

    def pack(values):
        out = {
            n: to_kernel_layout(np.asarray(values[t]), layout).astype(np.dtype(str(x.dtype)))
            for n, t, x in zip(xnames, in_names, xs)
        }
        out.update({k: consts[k] for k in pnames})
        return out

    unpack = unpacker(layout)

    signature = {
        "op": "concat",
        "class": "elementwise",
        "axis": ax,
        "in": [[list(x.shape), str(x.dtype)] for x in xs],
        "y": [list(kshape), odt],
        "scaled": scaled,
        "clamp": [int(v) for v in consts.get("clamp", [])],
        "block": spec.axes[0].vsplit,
    }
    built = Built(
        "elementwise",
        xs + params + [y],
        xnames + pnames + ["y"],
        spec,
        recipe,
        pack,
        unpack,
        signature,
        in_names,
    )
    return _with_arith(built, float_types(ctx, o_i, *ins) if is_float else None, 0)


def pad(ctx: Ctx) -> Built:
    """pad: constant padding (the real value `value`, quantized on the output's scale), with
    the input requantized first when its quantization differs (gemmlowp_ops.pad)."""
    te, tirx = _te(), _tirx()
    node, g = ctx.node, ctx.graph
    x_i, o_i = ctx.info(0), ctx.out
    rank = len(x_i.shape)
    layout = tensor_layout(g, node.inputs[0]) if rank == 4 else "NCHW"
    pads = [tuple(p) for p in node.attr("pads")]
    if rank == 4 and layout == "NCHW":
        pads = [pads[0], pads[2], pads[3], pads[1]]
    if any(a < 0 or b < 0 for a, b in pads):
        raise NotLowered("negative padding (cropping)")
    kin, kout = _kshape(x_i.shape, layout), _kshape(o_i.shape, layout)
    is_float = o_i.is_float
    xdt, odt = store_dtype(x_i.dtype), store_dtype(o_i.dtype)
    x = te.placeholder(kin, xdt, name="x")
    consts: dict[str, np.ndarray] = {}
    value = float(node.attr("value", 0.0) or 0.0)
    if is_float:
        prec = float_types(ctx, x_i, o_i).precision
        fp = te.placeholder((1,), odt, name="fparams")  # a copy: the fill in the storage dtype
        params, pnames = [fp], ["fparams"]
        consts["fparams"] = np.array([value], np.dtype(odt))
        fill = fp[0]
        need_rq = False

        def inner(v):
            return v
    else:
        from accelsim.ref.int_ops import round_half_away

        prec = ctx.precision
        _need_per_tensor(ctx, x_i, "input")
        _need_per_tensor(ctx, o_i, "output")
        lo, hi = dtype_range(o_i.dtype)
        qv = rp.zero_point(o_i) + int(
            round_half_away(np.float64(value) / np.float64(rp.scale32(o_i)))
        )
        need_rq, m, sh = rp.rescale_multiplier(x_i, o_i)
        if g.requant_mode == "float":  # ONNX QDQ (accelsim.ref.qdq_ops.pad): a copy
            if need_rq or x_i.dtype != o_i.dtype:
                raise NotLowered(
                    "an ONNX QDQ pad that requantizes (DequantizeLinear -> QuantizeLinear)"
                )
            # the fill as QuantizeLinear computes it (half to even)
            qv = int(quantize_array(np.array(value, np.float32), o_i.quant, o_i.dtype))
        qp = te.placeholder((7,), "int32", name="qparams")
        params, pnames = [qp], ["qparams"]
        consts["qparams"] = np.array(
            [int(np.clip(qv, lo, hi)), rp.zero_point(x_i), rp.zero_point(o_i), m, sh, lo, hi],
            np.int32,
        )
        fill = qp[0].astype(odt)

        def inner(v):
            if not need_rq:
                return v.astype(odt)
            return rq.mbqm(
                v.astype("int32") - qp[1],
                qp[3],
                qp[4],
                lambda r: rq.clamp_add(r, qp[2], qp[5], qp[6]).astype(odt),
            )

    def body(*i):
        inside = tirx.all(
            *[tirx.all(i[d] >= a, i[d] < a + kin[d]) for d, (a, _) in enumerate(pads)]
        )
        src = tuple(i[d] - pads[d][0] for d in range(rank))
        return tirx.if_then_else(inside, inner(x[src]), fill)

    recipe = ctx.recipe("elementwise", prec)
    y = te.compute(kout, body, name="y")
    spec = _elementwise_spec(ctx, int(np.prod(kout)), DTYPE_BITS.get(o_i.dtype, 32), recipe)
    spec.fuse = True
    x_name = node.inputs[0]

    def pack_(values):
        out = {"x": to_kernel_layout(np.asarray(values[x_name]), layout).astype(np.dtype(xdt))}
        out.update({k: consts[k] for k in pnames})
        return out

    unpack = unpacker(layout)

    signature = {
        "op": "pad",
        "class": "elementwise",
        "x": [list(kin), xdt],
        "y": [list(kout), odt],
        "pads": pads,
        "requant": bool(need_rq),
        "block": spec.axes[0].vsplit,
    }
    return _with_arith(
        Built(
            "elementwise",
            [x] + params + [y],
            ["x"] + pnames + ["y"],
            spec,
            recipe,
            pack_,
            unpack,
            signature,
            (x_name,),
        ),
        float_types(ctx, x_i, o_i) if is_float else None,
        0,
    )
