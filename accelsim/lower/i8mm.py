"""The Armv8.6 int8 matrix multiply-accumulate (I8MM, `smmla`) as a tensor intrinsic, and the
conv2d / dense accumulators that use it.

`SMMLA Vd.4S, Vn.16B, Vm.16B` multiplies a 2x8 int8 matrix (Vn, row-major) by the transpose of
another 2x8 one (Vm) and adds the 2x2 int32 product to Vd (row-major): 32 multiply-accumulates,
twice SDOT's 16, in one instruction of the same cost on the cores that have it. TVM ships no
tensor intrinsic for it. Here:

    C[p, j] += A[p, k] * B[j, k]      p < 2 (pixels or rows), j < 2 (output channels), k < 8

A is two rows of 8 activations: two output pixels of a conv2d, two rows of a dense layer. The
input is repacked (the padding stage's copy, which the other intrinsics make too when a layer
pads) so that the two rows are 16 contiguous bytes, one load: a conv2d's padded NHWC input as
`[N][H][I/8][s][W/s][8]` (s the width stride: column w at `[w % s][w // s]`, so the two pixels of
a pair, s columns apart, are neighbours), a dense layer's rows as `[N/2][I/8][2][8]`. B is one
2x8 block of the packed weights (`[O/2][KH][KW][I/8][2][8]`, 16 contiguous bytes: the Vm operand
as it is), C is a 2x2 tile of accumulators. The accumulators are laid out as pairs of pairs,
`(N, OH, OW/2, OC/2, 2, 2)` for conv2d (`(N/2, OC/2, 2, 2)` for dense), so each C is one
register. A conv2d with an odd output width computes one extra column (its input padded on the
right) and discards it; a dense layer is computed this way only with an even number of rows
(batch 1 leaves half the instruction idle, SDOT does it better).

The entries register in `accelsim.lower.intrin`'s table under the recipe name `smmla`, needing
the target feature `i8mm`; recipes list it before `sdot` (`tensorize: [smmla, sdot, ...]`), so
a core with i8mm uses it and every other core falls through to the next name. Signed int8
activations use SMMLA, uint8 ones USMMLA (unsigned x signed); 4-bit weights are unpacked to int8
in registers as for SDOT.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from accelsim.lower import intrin as _intrin
from accelsim.lower.common import _te, _tirx
from accelsim.lower.schedule import Axis

KIND = "mmla"
ROWS = 2  # rows of A (pixels / batch rows) per instruction
_SMMLA = "llvm.aarch64.neon.smmla.v4i32.v16i8"
_USMMLA = "llvm.aarch64.neon.usmmla.v4i32.v16i8"


def _desc(it: _intrin.Intrinsic):
    """`C[p, j] += A[p, k] * W[j, k]` over one 2 x lanes x depth block (A's two rows
    contiguous: the repacked input)."""
    from accelsim.core.tvm_env import import_tvm

    import_tvm()
    from tvm.script import tirx as T

    lanes, depth, pdepth, acc = it.lanes, it.depth, it.packed_depth, it.acc_dtype
    w4 = it.weight_bits == 4

    def weight(B, vj, vk):
        return _intrin.nibble(B[vj, vk // 2], vk) if w4 else B[vj, vk]

    @T.prim_func(s_tir=True)
    def desc(a: T.handle, b: T.handle, c: T.handle) -> None:
        A = T.match_buffer(a, (ROWS, depth), it.act_dtype, offset_factor=1)
        B = T.match_buffer(b, (lanes, pdepth), it.weight_dtype, offset_factor=1)
        C = T.match_buffer(c, (ROWS, lanes), acc, offset_factor=1)
        with T.sblock("root"):
            T.reads(C[0:ROWS, 0:lanes], A[0:ROWS, 0:depth], B[0:lanes, 0:pdepth])
            T.writes(C[0:ROWS, 0:lanes])
            for p in T.serial(0, ROWS):
                for j in T.serial(0, lanes):
                    for k in T.serial(0, depth):
                        with T.sblock("update"):
                            vp, vj, vk = T.axis.remap("SSR", [p, j, k])
                            C[vp, vj] = C[vp, vj] + T.cast(A[vp, vk], acc) * T.cast(
                                weight(B, vj, vk), acc
                            )

    return desc


def _impl(it: _intrin.Intrinsic):
    """One SMMLA (USMMLA for uint8 activations): the two 8-byte activation rows (one load),
    the 16 weight bytes (unpacked from 8 for 4-bit weights), the 2x2 tile."""
    from accelsim.core.tvm_env import import_tvm

    import_tvm()
    from tvm.script import tirx as T

    lanes, depth, pdepth = it.lanes, it.depth, it.packed_depth
    n = ROWS * depth

    @T.prim_func(s_tir=True)
    def impl(a: T.handle, b: T.handle, c: T.handle) -> None:
        A = T.match_buffer(a, (ROWS, depth), it.act_dtype, offset_factor=1)
        B = T.match_buffer(b, (lanes, pdepth), it.weight_dtype, offset_factor=1)
        C = T.match_buffer(c, (ROWS, lanes), it.acc_dtype, offset_factor=1)
        with T.sblock("root"):
            T.reads(C[0:ROWS, 0:lanes], A[0:ROWS, 0:depth], B[0:lanes, 0:pdepth])
            T.writes(C[0:ROWS, 0:lanes])
            C[0, T.ramp(T.int32(0), 1, ROWS * lanes)] = _intrin._llvm(
                T,
                it.llvm[0],
                "int32x4",
                C.vload([0, 0], dtype="int32x4"),
                A.vload([0, 0], dtype=f"{it.act_dtype}x{n}"),
                _intrin._weights8(T, B, it, 0, lanes * depth),
            )

    return impl


def _entry(act: str, wbits: int) -> _intrin.Intrinsic:
    unsigned = act == "uint8"
    return _intrin.Intrinsic(
        name="smmla",
        key=f"accelsim.smmla.{act}.w{wbits}",
        act_dtype=act,
        weight_bits=wbits,
        acc_dtype="int32",
        lanes=2,
        depth=8,
        impl=_impl,
        instruction="usmmla v.4s, v.16b, v.16b" if unsigned else "smmla v.4s, v.16b, v.16b",
        requires=("neon", "i8mm"),
        llvm=(_USMMLA if unsigned else _SMMLA,),
        doc=(
            "Armv8.6 I8MM: a 2x8 by 8x2 int8 matrix product into a 2x2 int32 tile (32 MACs)"
            + (", uint8 activations (USMMLA)" if unsigned else "")
            + (", int4 weights unpacked to int8 in registers" if wbits == 4 else "")
        ),
        kind=KIND,
        desc=_desc,
    )


ENTRIES = tuple(_entry(act, wbits) for act in ("int8", "uint8") for wbits in (8, 4))
_intrin.register(*ENTRIES)


MAX_STRIDE = 4  # wider strides: SDOT (the repacked input would hold s copies' worth of gaps)


def without_i8mm(target):
    """`target` with i8mm switched off (its feature and LLVM's `+i8mm`): the same core model
    with SDOT kernels, to measure what SMMLA buys. The name gains `-no-i8mm`, which keeps its
    kernels and costs apart in the caches and in printed results."""
    cg = target.codegen
    tvm_target = dict(cg.tvm_target)
    tvm_target["mattr"] = [a for a in tvm_target.get("mattr", []) if a != "+i8mm"] + ["-i8mm"]
    codegen = dataclasses.replace(
        cg, features=tuple(f for f in cg.features if f != "i8mm"), tvm_target=tvm_target
    )
    return dataclasses.replace(target, name=f"{target.name}-no-i8mm", codegen=codegen)


def applies(it: _intrin.Intrinsic | None, is_dense: bool, rows: int, stride: int = 1) -> bool:
    """Whether `it` is this module's intrinsic and fits the layer: a dense layer needs an even
    number of rows (a conv2d pads its output width)."""
    if it is None or it.kind != KIND:
        return False
    return rows % ROWS == 0 if is_dense else stride <= MAX_STRIDE


def pair_pads(pads, width: int, out_width: int, kw: int, stride: int, dilation: int):
    """`pads` (top, left, bottom, right) with the right padding grown so that an even number of
    output columns (one more than `out_width` when it is odd) reads inside the padded input."""
    pt, pl, pb, pr = pads
    owp = out_width + out_width % ROWS
    need = (owp - 1) * stride + (kw - 1) * dilation + 1
    return (pt, pl, pb, pr + max(0, need - (width + pl + pr)))


def pack_input(x, value, channels: int, extent: int, pads, stride: int):
    """The kernel input `x` with `value` around it (`pads`: top, left, bottom, right; channels
    `channels`.. up to `extent`), repacked for SMMLA: a conv2d's NHWC input as
    `[N][H][C/8][s][W/s][8]` (column w at `[w % s][w // s]`, the width rounded up to a multiple
    of the stride s), a dense layer's rows x channels as `[N/2][C/8][2][8]`."""
    te, tirx = _te(), _tirx()
    depth = 8
    if len(x.shape) == 2:
        N = int(x.shape[0])

        def row(nq, cb, p, k):
            c = cb * depth + k
            return tirx.if_then_else(c < channels, x[nq * ROWS + p, c], value)

        return te.compute((N // ROWS, extent // depth, ROWS, depth), row, name="pad")
    N, H, W_ = (int(d) for d in x.shape[:3])
    pt, pl, pb, pr = pads
    wq = -(-(W_ + pl + pr) // stride)

    def pix(n, h, cb, r, m, k):
        w, c = m * stride + r, cb * depth + k
        inside = tirx.all(h >= pt, h < H + pt, w >= pl, w < W_ + pl, c < channels)
        return tirx.if_then_else(inside, x[n, h - pt, w - pl, c], value)

    return te.compute((N, H + pt + pb, extent // depth, stride, wq, depth), pix, name="pad")


@dataclass(frozen=True)
class PairCompute:
    """The accumulators of a layer computed with SMMLA, its output and how its loops are
    named for the scheduler."""

    acc: object  # te.Tensor
    y: object  # te.Tensor
    axes: list[Axis]
    default_order: tuple[str, ...]
    intrinsic_loops: tuple[str, ...]


def contraction(
    xin, weight, shape, window, accdt: str, epilogue, out_channels: int, y_name: str = "y"
):
    """conv2d (`shape` = N, OH, OW, OCp; `window` = ((KH, KW), strides, dilations)) or dense
    (`shape` = N, OCp; `window` None) accumulated in pairs of pairs, and the output `y`
    (`epilogue(acc, oc)` per element, `out_channels` of them; block `y_name`). `weight(oc
    block, [kh, kw,] ic block, oc lane, ic lane)` as for
    `accelsim.lower.common.contraction_acc`."""
    te = _te()
    rows, lanes, depth = ROWS, 2, 8
    icb = int(xin.shape[1] if window is None else xin.shape[2])  # input-channel blocks
    ric = te.reduce_axis((0, icb), "ic")
    ricv = te.reduce_axis((0, depth), "icv")
    O = out_channels

    def prod(xv, wv):
        return xv.astype(accdt) * wv.astype(accdt)

    if window is None:
        N, OCp = shape
        acc = te.compute(
            (N // rows, OCp // lanes, rows, lanes),
            lambda nq, ocq, p, j: te.sum(
                prod(xin[nq, ric, p, ricv], weight(ocq, ric, j, ricv)),
                axis=[ric, ricv],
            ),
            name="acc",
        )
        y = te.compute(
            (N, O),
            lambda n, oc: epilogue(acc[n // rows, oc // lanes, n % rows, oc % lanes], oc),
            name=y_name,
        )
        axes = [
            Axis("n", N // rows, unit="rows", elem=rows),
            Axis("oc", OCp // lanes, unit="output channels", elem=lanes),
            Axis("n.v", rows),
            Axis("oc.v", lanes),
            Axis("ic", icb, reduce=True, unit="input channels", elem=depth),
            Axis("ic.v", depth, reduce=True),
        ]
        return PairCompute(acc, y, axes, ("n", "oc", "ic"), ("n.v", "oc.v", "ic.v"))

    N, OH, OW, OCp = shape
    OWp = OW + OW % rows
    (KH, KW), (sh, sw), (dh, dw) = window
    rkh = te.reduce_axis((0, KH), "kh")
    rkw = te.reduce_axis((0, KW), "kw")
    acc = te.compute(
        (N, OH, OWp // rows, OCp // lanes, rows, lanes),
        lambda n, oh, owq, ocq, p, j: te.sum(
            prod(
                # input column (owq * 2 + p) * sw + kw * dw of the [w % sw][w // sw] layout
                xin[
                    n,
                    oh * sh + rkh * dh,
                    ric,
                    (rkw * dw) % sw,
                    owq * rows + p + (rkw * dw) // sw,
                    ricv,
                ],
                weight(ocq, rkh, rkw, ric, j, ricv),
            ),
            axis=[rkh, rkw, ric, ricv],
        ),
        name="acc",
    )
    y = te.compute(
        (N, OH, OW, O),
        lambda n, oh, ow, oc: epilogue(
            acc[n, oh, ow // rows, oc // lanes, ow % rows, oc % lanes], oc
        ),
        name=y_name,
    )
    axes = [
        Axis("n", N, unit="images"),
        Axis("oh", OH, unit="output rows"),
        Axis("ow", OWp // rows, unit="output columns", elem=rows),
        Axis("oc", OCp // lanes, unit="output channels", elem=lanes),
        Axis("ow.v", rows),
        Axis("oc.v", lanes),
        Axis("kh", KH, reduce=True, unit="kernel rows"),
        Axis("kw", KW, reduce=True, unit="kernel columns"),
        Axis("ic", icb, reduce=True, unit="input channels", elem=depth),
        Axis("ic.v", depth, reduce=True),
    ]
    return PairCompute(
        acc, y, axes, ("n", "oh", "ow", "oc", "kh", "kw", "ic"), ("ow.v", "oc.v", "ic.v")
    )
