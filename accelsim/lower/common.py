"""What every operator builder of the lowering shares: the builder's context (`Ctx`) and result
(`Built`), the layout changes between the graph's tensors and the kernels' NHWC buffers, float
arithmetic types, recipe block sizes, and the reason a node is not lowered (`NotLowered`).
The builders themselves are `accelsim.lower.ops` and `accelsim.lower.softmax`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from accelsim.core.errors import AccelsimError
from accelsim.core.tvm_env import import_tvm
from accelsim.lower import requant as rq
from accelsim.lower.schedule import ComputeSpec, Recipe, RecipeError, pow2_divisor, resolve_size
from accelsim.model.graph import Graph, Node, TensorInfo
from accelsim.model.ops import activation_bounds


class NotLowered(AccelsimError):
    """A node the lowering does not turn into a kernel; the message says why."""


@dataclass
class Built:
    """What an operator builder returns to the lowering driver."""

    op_class: str  # recipe class: conv2d, depthwise_conv2d, dense, elementwise, pool
    tensors: list  # TE tensors in argument order (inputs..., output last)
    names: list[str]  # argument names, same order
    spec: ComputeSpec
    recipe: Recipe
    pack: Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]]
    unpack: Callable[[np.ndarray], np.ndarray]
    signature: dict
    inputs: tuple[str, ...]  # graph tensors the packer reads
    arith: FloatArith | None = None  # float layers: how the arithmetic rounds
    # {placeholder: stage}: a stage computed at the root that a fused block reads. TVM fuses a
    # block into a loop only when every block it reads is computed there, so while the layer
    # is scheduled the block reads the placeholder; then its reads go to the stage, which
    # becomes a buffer of the kernel's own, and neither is an argument of the kernel
    stand_ins: Mapping[str, str] = field(default_factory=dict)
    # {reduction block: argument}: the block's sums start from the argument (indexed by the
    # block's last spatial axis, the output channel) instead of 0. TE has the init (te.sum's
    # `init=`), but `te.create_prim_func` drops it, so the driver puts it in the block
    starts: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FloatArith:
    """The rounding a float kernel does, for its verification tolerance: `dtype` is the
    arithmetic dtype and `roundings` an upper bound on the rounded operations on the chain into
    one output element (a product and an add per reduction term, counted apart although FMLA
    fuses them; the bias add; a division), 0 for exact copies, clamps and maxima."""

    dtype: str
    roundings: int


@dataclass
class Ctx:
    graph: Graph
    node: Node
    target: Any
    recipes: Any  # RecipeFile
    precision: str  # the graph's precision name (for non-weighted ops)

    @property
    def layer(self) -> str:
        return self.node.name

    def info(self, i: int) -> TensorInfo | None:
        n = self.node.inputs[i] if i < len(self.node.inputs) else ""
        return self.graph.tensors[n] if n else None

    @property
    def out(self) -> TensorInfo:
        return self.graph.tensors[self.node.outputs[0]]

    def recipe(self, op_class: str, precision: str | None = None) -> Recipe:
        return self.recipes.recipe(op_class, precision or self.precision, self.node.op)

    @property
    def vector_bits(self) -> int:
        return int(self.target.codegen.vector_bits)


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------


def _te():
    return import_tvm().te


def _tirx():
    return import_tvm().tirx


def tensor_layout(graph: Graph, name: str) -> str:
    """The reference layout of a 4-D activation: from the spatial operators that produce or
    consume it (through layout-agnostic elementwise operators), NCHW by default."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        t = todo.pop()
        if t in seen:
            continue
        seen.add(t)
        for n in ([graph.producer(t)] if graph.producer(t) else []) + graph.consumers(t):
            if "data_layout" in n.attrs:
                return n.attrs["data_layout"]
            if n.op in ("add", "sub", "mul", "relu", "relu6", "clip", "quantize", "dequantize"):
                todo.extend(x for x in list(n.inputs) + list(n.outputs) if x)
    return "NCHW"


def to_kernel_layout(arr: np.ndarray, layout: str) -> np.ndarray:
    if arr.ndim == 4 and layout == "NCHW":
        return np.ascontiguousarray(arr.transpose(0, 2, 3, 1))
    return np.ascontiguousarray(arr)


def from_kernel_layout(arr: np.ndarray, layout: str) -> np.ndarray:
    if arr.ndim == 4 and layout == "NCHW":
        return np.ascontiguousarray(arr.transpose(0, 3, 1, 2))
    return arr


def block_weights(w: np.ndarray, padded: tuple[int, int], block: tuple[int, int]) -> np.ndarray:
    """Conv2d weights (O, I, KH, KW) as `[O/bo][KH][KW][I/bk][bo][bk]`, dense weights (O, I) as
    `[O/bo][I/bk][bo][bk]`, output and input channels zero-padded to `padded`; `block` is
    (bo, bk): one tensor intrinsic's (or one vector's) lanes x depth."""
    (OCp, ICp), (bo, bk) = padded, block
    if w.ndim == 2:
        O, I = w.shape
        wpad = np.zeros((OCp, ICp), dtype=w.dtype)
        wpad[:O, :I] = w
        blk = wpad.reshape(OCp // bo, bo, ICp // bk, bk).transpose(0, 2, 1, 3)
    else:
        O, I, KH, KW = w.shape
        wpad = np.zeros((OCp, KH, KW, ICp), dtype=w.dtype)
        wpad[:O, :, :, :I] = w.transpose(0, 2, 3, 1)  # O, KH, KW, I
        blk = wpad.reshape(OCp // bo, bo, KH, KW, ICp // bk, bk).transpose(0, 2, 3, 4, 1, 5)
    return np.ascontiguousarray(blk)


def unpacker(layout: str, shape: tuple[int, ...] | None = None):
    """The `unpack` of a kernel with an NHWC (or rows x features) output: the output as the
    graph holds it, in `layout`, reshaped to `shape` when given."""

    def unpack(arr: np.ndarray) -> np.ndarray:
        out = from_kernel_layout(np.asarray(arr), layout)
        return out if shape is None else out.reshape(shape)

    return unpack


def _kshape(shape: tuple[int, ...], layout: str) -> tuple[int, ...]:
    if len(shape) == 4 and layout == "NCHW":
        return (shape[0], shape[2], shape[3], shape[1])
    return tuple(shape)


def per_tensor_problem(info: TensorInfo | None, what: str) -> str:
    """Why `info` is no per-tensor quantized integer tensor ("" when it is one)."""
    if info is None or not info.is_quantized:
        return f"{what} is not a quantized integer tensor"
    if info.quant.per_channel and len(set(info.quant.scale)) > 1:
        return f"{what} is quantized per channel"
    return ""


def _need_per_tensor(ctx: Ctx, info: TensorInfo | None, what: str) -> None:
    reason = per_tensor_problem(info, what)
    if reason:
        raise NotLowered(reason)


def _qclamp(info: TensorInfo, attrs) -> tuple[int, int]:
    from accelsim.ref.int_ops import quantized_clamp

    lo, hi = activation_bounds(attrs)
    return quantized_clamp(info, lo, hi)


def _fbounds(attrs) -> np.ndarray:
    lo, hi = activation_bounds(attrs)
    return np.array([lo, hi], dtype=np.float32)


def _pack_pairs(w: np.ndarray) -> np.ndarray:
    """Two 4-bit values per byte along the last axis: even index low nibble."""
    lo = w[..., 0::2].astype(np.int64) & 0xF
    hi = w[..., 1::2].astype(np.int64) & 0xF
    return ((lo | (hi << 4)).astype(np.uint8)).view(np.int8)


def _roundup(v: int, m: int) -> int:
    return -(-v // m) * m


def _lanes(ctx: Ctx, bits: int) -> int:
    return max(1, ctx.vector_bits // bits)


def _block(
    recipe: Recipe,
    axis: str,
    extent: int,
    auto: int,
    layer: str,
    unit: str,
    must_divide: bool,
    multiple: int = 1,
) -> int:
    """A block size from the recipe (see schedule.py): auto -> power of two dividing; a capped
    value ("<=N") -> the largest multiple of `multiple` dividing the extent."""
    v = (recipe.get("block") or {}).get(axis, "auto")
    where = recipe.where("block", axis)
    if v == "auto":
        return pow2_divisor(extent, auto) if must_divide else auto
    if isinstance(v, str):
        return resolve_size(v, extent, multiple, where, unit, layer)
    if must_divide and extent % int(v):
        raise RecipeError(f"{where}: {v} does not divide {extent} {unit} of layer '{layer}'")
    return int(v)


# float storage dtype -> (precision name = recipe section, target feature of native arithmetic)
_FLOAT_PRECISION = {"float32": ("fp32", None), "float16": ("fp16", "fp16")}


@dataclass(frozen=True)
class FloatTypes:
    """How a float layer computes: `storage` is the dtype in memory (the graph's: inputs,
    weights, output), `compute` the dtype of products, accumulators, bias and clamp."""

    storage: str
    compute: str
    precision: str

    @property
    def np_storage(self):
        return np.dtype(self.storage)

    @property
    def np_compute(self):
        return np.dtype(self.compute)


def _with_arith(built: Built, ft: FloatTypes | None, roundings: int) -> Built:
    if ft is not None:
        built.arith = FloatArith(ft.compute, int(roundings))
    return built


def float_types(ctx: Ctx, *infos: TensorInfo | None) -> FloatTypes:
    """The float dtypes of a layer on `ctx.target`: native arithmetic when the target's
    `codegen.features` has the precision's feature, float32 arithmetic when the precision is
    listed under `codegen.emulation`, else NotLowered (module docstring)."""
    dts = sorted({i.dtype for i in infos if i is not None})
    if len(dts) != 1 or dts[0] not in _FLOAT_PRECISION:
        raise NotLowered(
            f"float operands of dtypes {', '.join(dts)} (one of "
            f"{', '.join(_FLOAT_PRECISION)} expected)"
        )
    dt = dts[0]
    prec, feature = _FLOAT_PRECISION[dt]
    cg = ctx.target.codegen
    if feature is None or feature in cg.features:
        return FloatTypes(dt, dt, prec)
    if prec in cg.emulation:
        return FloatTypes(dt, "float32", prec)
    raise NotLowered(
        f"target '{ctx.target.name}' has no {prec} arithmetic (no '{feature}' in "
        f"codegen.features) and no {prec} entry in codegen.emulation"
    )


# ------------------------------------------------------------------------------------------
# epilogues
# ------------------------------------------------------------------------------------------


def pad_input(x, value, channels: int | None, extent: int, pads=(0, 0, 0, 0), fn=None):
    """The kernel input `x` (NHWC, or rows x channels) with `value` around it: `pads` (top,
    left, bottom, right) rows and columns of a 4-D input, channels `channels`.. up to `extent`
    (`channels` None: none are padded, and none are tested). `fn`, when given, maps every
    element, the padding value too (a change of representation, e.g. int8 -> u8 + 128); without
    padding the stage is then a plain elementwise copy."""
    te, tirx = _te(), _tirx()
    if fn is not None and channels is None and not any(pads):
        return te.compute(x.shape, lambda *i: fn(x[i]), name="pad")
    f = fn if fn is not None else (lambda v: v)
    if len(x.shape) == 2:
        return te.compute(
            (int(x.shape[0]), extent),
            lambda n, c: tirx.if_then_else(c < channels, f(x[n, c]), f(value)),
            name="pad",
        )
    N, H, W_ = (int(d) for d in x.shape[:3])
    pt, pl, pb, pr = pads

    def inside(h, ww, c):
        edges = (h >= pt, h < H + pt, ww >= pl, ww < W_ + pl)
        return tirx.all(*edges, c < channels) if channels is not None else tirx.all(*edges)

    return te.compute(
        (N, H + pt + pb, W_ + pl + pr, extent),
        lambda n, h, ww, c: tirx.if_then_else(
            inside(h, ww, c), f(x[n, h - pt, ww - pl, c]), f(value)
        ),
        name="pad",
    )


def contraction_acc(
    xin, weight, out_shape, block: tuple[int, int], window=None, pdt=None, accdt=""
):
    """The accumulators of a conv2d (NHWC, `out_shape` N, OH, OW, OCp) or dense (`out_shape`
    N, OCp): `weight(oc block, [kh, kw,] ic block, oc lane, ic lane)` times the input, over
    input-channel blocks `ic` of `block[1]` elements `icv` (and the window `kh`, `kw`), products
    formed in `pdt` (default: `accdt`) and summed in `accdt`. `window`: ((KH, KW), strides,
    dilations) of a conv2d."""
    te = _te()
    bo, bk = block
    pdt = pdt or accdt
    ric = te.reduce_axis((0, int(xin.shape[-1]) // bk), "ic")
    ricv = te.reduce_axis((0, bk), "icv")
    if window is None:
        return te.compute(
            out_shape,
            lambda n, oc: te.sum(
                (
                    xin[n, ric * bk + ricv].astype(pdt)
                    * weight(oc // bo, ric, oc % bo, ricv).astype(pdt)
                ).astype(accdt),
                axis=[ric, ricv],
            ),
            name="acc",
        )
    (KH, KW), (sh, sw), (dh, dw) = window
    rkh = te.reduce_axis((0, KH), "kh")
    rkw = te.reduce_axis((0, KW), "kw")
    return te.compute(
        out_shape,
        lambda n, oh, ow, oc: te.sum(
            (
                xin[n, oh * sh + rkh * dh, ow * sw + rkw * dw, ric * bk + ricv].astype(pdt)
                * weight(oc // bo, rkh, rkw, ric, oc % bo, ricv).astype(pdt)
            ).astype(accdt),
            axis=[rkh, rkw, ric, ricv],
        ),
        name="acc",
    )


def _int_epilogue(
    acc,
    c,
    *,
    bias,
    mult,
    shift,
    qp,
    wide: bool,
    fscale: str | None,
    out_dtype: str,
    form=None,
    unclamped: bool = False,
    biased: bool = False,
    nonneg: bool = False,
):
    """bias + requantize + clamp of one accumulator (TIR expression; `biased`: the
    accumulator started from the bias, `_MacArgs.bias_starts`); `form`: a
    `requant.RequantForm` for int32 accumulators (else the generic `mbqm`), or a pair (form,
    whether any channel shifts left). `fscale`: the requantization multiplies by a float scale
    `mult[c]` instead, "float64" as TFLite's FULLY_CONNECTED, "float32" as ONNX Runtime's
    `MlasRequantizeOutput` (`accelsim.ref.qdq_ops.requantize`). `unclamped` (with a form):
    the requantized int32 value, before the zero point and the clamp (`requant.narrow_finish`
    does those in a stage of its own). `nonneg`: the output's clamp starts at or above its zero
    point, so the rounding of negative values may be left out (`accelsim.lower.requant`)."""
    tirx = _tirx()
    if fscale == "float64":
        v = acc.astype("int64") + bias[c]
        r = rq.round_half_away_i64(v.astype("float64") * mult[c])
        zp = qp[1].astype("int64")
        y = rq.clip(r, qp[2].astype("int64") - zp, qp[3].astype("int64") - zp) + zp
        return y.astype(out_dtype)
    v = acc if biased else acc + bias[c]
    if fscale == "float32":
        f = v.astype("float32") * mult[c]
        return rq.mlas_finish(f, qp[1], qp[2], qp[3]).astype(out_dtype)
    del tirx

    def k(r):
        return rq.clamp_add(r, qp[1], qp[2], qp[3]).astype(out_dtype)

    if form is not None and not wide:
        f, left, nudge = form
        if unclamped:
            return f.build(v, mult[c], shift[c], left_shifts=left, nudge=nudge, nonneg=nonneg)
        return f.build(v, mult[c], shift[c], k, left_shifts=left, nudge=nudge, nonneg=nonneg)
    if wide:
        return rq.mbqm64(v, mult[c], shift[c], k)
    return rq.mbqm(v, mult[c], shift[c], k, nonneg=nonneg)


def _float_epilogue(v, fp, out_dtype: str | None = None):
    tirx = _tirx()
    y = tirx.max(tirx.min(v, fp[1]), fp[0])
    return y if out_dtype is None else y.astype(out_dtype)  # same dtype: no cast


def _kaxis(axis: int, rank: int, layout: str) -> int:
    """The kernel-layout position of reference axis `axis`."""
    axis %= rank
    if rank == 4 and layout == "NCHW":
        return (0, 3, 1, 2)[axis]
    return axis


def _f32(v):
    """Round a float64 expression to float32 and back: every float32 operation is computed
    in float64 and rounded, which is exact (53 >= 2 * 24 + 2, Figueroa 1995). LLVM narrows
    such an operation of float32 operands back to the float32 one (exact, so legal), and may
    then contract a float32 multiply and the add it feeds into one FMA: harmless where the
    product is exact (an 8-bit integer times a float32); otherwise round it with
    `_f32_kept`."""
    return v.astype("float32").astype("float64")


def _f32_kept(v, zero):
    """`_f32` for a product that feeds an add: its float32 bits OR'd with `zero`, a run-time
    0 (a kernel argument), so LLVM can neither narrow nor fuse across it. Without this, Hexagon
    computed an add of a rounded product as one `r += sfmpy(...)` (an FMA, one rounding where
    the reference has two)."""
    return _kept32(v.astype("float32"), zero).astype("float64")


def _kept32(v, zero):
    """A float32 value LLVM must materialize: its bits OR'd with `zero`, a run-time 0."""
    tirx = _tirx()
    return tirx.reinterpret("float32", tirx.bitwise_or(tirx.reinterpret("int32", v), zero))
