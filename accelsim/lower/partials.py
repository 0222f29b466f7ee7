"""int8 convolutions and dense layers on NEON cores without a dot product, as gemmlowp's and
ruy's Armv8.0 kernels compute them: per (pixel, output channel), four int32 partial sums over
the input channels, added together once, in the epilogue.

Jacob et al. 2018, Appendix B (gemmlowp's `NEON_64bit_GEMM_Int8Operands_AccumTwoWithin16Bits`,
ruy's non-dotprod 8-bit kernel): with 16 activations of one pixel and the 16 weights of one
output channel over the same input channels, each in one register,

    SMULL  p.8h, a.8b,  w.8b     p[m] = a[m] w[m]
    SMLAL2 p.8h, a.16b, w.16b    p[m] += a[8 + m] w[8 + m]      (|p[m]| <= 2 x 128 x 127 < 2^15)
    SADALP c.4s, p.8h            c[l] += p[2l] + p[2l + 1]

adds 16 multiply-accumulates to the 4 lanes of c, exact when no weight is -128 (`weight_min`).
Against `smull_smlal` (the weights of 4 output channels times one broadcast pair of activations),
no activation is broadcast: a register tile of P pixels x Q channels loads P + Q vectors per 16
input channels and runs 3 P Q instructions on them, where the broadcast form needs a load and
an address per activation pair (ld1r has no offset), which kept a 2-wide core from issuing its
multiplies every cycle.

Here:

    C[l] += A[h 8 + 2 l + e] * W[h 8 + 2 l + e]      l < 4, h < 2, e < 2 (r = 2 h + e)

A is 16 consecutive input channels of one pixel of the (NHWC) input, W the matching 16 of one
output channel's packed weights (`[O][KH][KW][I/16][1][16]`), C the pixel's and channel's 4
partial sums: the accumulators are laid out `(N, OH, OW, OC, 4)` (`(N, OC, 4)` for dense) and
the epilogue adds the 4. Used where the input channels are a multiple of 16 (else the 4-deep
`smull_smlal` wastes less on padding) and the recipe lists the intrinsic before any dot-product
one the core has (`tensorize: [..., sdot, smull_smlal2, smull_smlal, ...]`: cores with SDOT keep
it).
"""

from __future__ import annotations

from dataclasses import dataclass

from accelsim.lower import intrin as _intrin
from accelsim.lower.common import _te
from accelsim.lower.schedule import Axis

KIND = "partials"
PARTS = 4  # int32 partial sums per (pixel, output channel): one register
DEPTH = 16  # input channels per call
_SMULL, _SADDLP = "llvm.aarch64.neon.smull.v8i16", "llvm.aarch64.neon.saddlp.v4i32.v8i16"
_ADDP = "llvm.aarch64.neon.addp.v4i32"


def _channel(vl, vr):
    """The input channel (within the call's 16) that partial `vl` takes at reduction step `vr`
    (h = vr // 2, e = vr % 2). Shared by the compute and the description, whose structural
    match needs the same expression."""
    return (vr // 2) * 8 + vl * 2 + vr % 2


def _total(a, oc):
    """The sum of channel `oc`'s 4 partials (`a(q)`: partial q of the flattened axis), in the
    order the compute and the stage's description share."""
    return (a(oc * PARTS) + a(oc * PARTS + 1)) + (a(oc * PARTS + 2) + a(oc * PARTS + 3))


def _desc(it: _intrin.Intrinsic):
    from accelsim.core.tvm_env import import_tvm

    import_tvm()
    from tvm.script import tirx as T

    acc = it.acc_dtype

    @T.prim_func(s_tir=True)
    def desc(a: T.handle, b: T.handle, c: T.handle) -> None:
        A = T.match_buffer(a, (DEPTH,), it.act_dtype, offset_factor=1)
        B = T.match_buffer(b, (1, DEPTH), it.weight_dtype, offset_factor=1)
        C = T.match_buffer(c, (PARTS,), acc, offset_factor=1)
        with T.sblock("root"):
            T.reads(C[0:PARTS], A[0:DEPTH], B[0:1, 0:DEPTH])
            T.writes(C[0:PARTS])
            for i in T.serial(0, PARTS):
                for r in T.serial(0, 4):
                    with T.sblock("update"):
                        vl, vr = T.axis.remap("SR", [i, r])
                        C[vl] = C[vl] + T.cast(A[_channel(vl, vr)], acc) * T.cast(
                            B[0, _channel(vl, vr)], acc
                        )

    return desc


def _impl(it: _intrin.Intrinsic):
    """SMULL of the low 8 bytes, SMLAL2 of the high 8 (LLVM folds the sum of the two SMULLs),
    SADALP into the 4 partial sums."""

    def value(T, A, B, C):
        a = A.vload([0], dtype="int8x16")
        w = B.vload([0, 0], dtype="int8x16")

        def mul(half):
            pick = T.vectorlow if half == 0 else T.vectorhigh
            return _intrin._llvm(
                T, _SMULL, "int16x8", pick(w, dtype="int8x8"), pick(a, dtype="int8x8")
            )

        return C[T.ramp(T.int32(0), 1, PARTS)] + _intrin._llvm(
            T, _SADDLP, "int32x4", mul(0) + mul(1)
        )

    return _intrin.implementation(it, [(0, PARTS, value)])


ENTRY = _intrin.Intrinsic(
    name="smull_smlal2",
    key="accelsim.smull_smlal2.int8.w8",
    act_dtype="int8",
    weight_bits=8,
    acc_dtype="int32",
    lanes=1,
    depth=DEPTH,
    impl=_impl,
    instruction="smull v.8h, v.8b, v.8b; smlal2 v.8h, v.16b, v.16b; sadalp v.4s, v.8h",
    requires=("neon",),
    llvm=(_SMULL, _SADDLP),
    doc="Armv8 NEON, Jacob et al. Appendix B over the input channels: 16 int8 products of one "
    "pixel and one output channel, two summed per int16 lane, pairwise into 4 int32 partial "
    "sums (exact for weights >= -127)",
    weight_min=-127,
    kind=KIND,
    desc=_desc,
)
_intrin.register(ENTRY)


def _sum_desc():
    from accelsim.core.tvm_env import import_tvm

    import_tvm()
    from tvm.script import tirx as T

    @T.prim_func(s_tir=True)
    def desc(a: T.handle, c: T.handle) -> None:
        P = T.match_buffer(a, (PARTS * PARTS,), "int32", offset_factor=1)
        S = T.match_buffer(c, (PARTS,), "int32", offset_factor=1)
        with T.sblock("root"):
            T.reads(P[0 : PARTS * PARTS])
            T.writes(S[0:PARTS])
            for i in T.serial(0, PARTS):
                with T.sblock("partial_sum"):
                    vc = T.axis.remap("S", [i])
                    S[vc] = _total(lambda q: P[q], vc)

    return desc


def _sum_impl():
    """[sum of channel 0's 4 partials, ..., channel 3's]: ADDP of the channels' pairs, then
    ADDP of the two results."""
    from accelsim.core.tvm_env import import_tvm

    import_tvm()
    from tvm.script import tirx as T

    def addp(x, y):
        return _intrin._llvm(T, _ADDP, "int32x4", x, y)

    @T.prim_func(s_tir=True)
    def impl(a: T.handle, c: T.handle) -> None:
        P = T.match_buffer(a, (PARTS * PARTS,), "int32", offset_factor=1)
        S = T.match_buffer(c, (PARTS,), "int32", offset_factor=1)
        with T.sblock("root"):
            T.reads(P[0 : PARTS * PARTS])
            T.writes(S[0:PARTS])
            S[T.ramp(T.int32(0), 1, PARTS)] = addp(
                addp(P.vload([0], dtype="int32x4"), P.vload([4], dtype="int32x4")),
                addp(P.vload([8], dtype="int32x4"), P.vload([12], dtype="int32x4")),
            )

    return impl


SUM_KEY = "accelsim.partials.sum.int32x4"
_sum_registered: list[bool] = []


def sum_intrinsic() -> tuple[str, int]:
    """The partial-sum stage's TensorIntrin (registered with TVM once) and its channels."""
    if not _sum_registered:
        from accelsim.core.tvm_env import import_tvm

        import_tvm()
        from tvm.s_tir import TensorIntrin

        TensorIntrin.register(SUM_KEY, _sum_desc(), _sum_impl())
        _sum_registered.append(True)
    return SUM_KEY, PARTS


def applies(it: _intrin.Intrinsic | None, channels: int) -> bool:
    """Whether `it` is this module's intrinsic and the layer's input channels fill its calls."""
    return it is not None and it.kind == KIND and channels % DEPTH == 0


@dataclass(frozen=True)
class PartialCompute:
    """The partial-sum accumulators of a layer, its output and its loops for the scheduler."""

    acc: object  # te.Tensor
    y: object  # te.Tensor
    partial_sum: object  # te.Tensor: the 4 partials added (the spec's `finish` block)
    axes: list[Axis]
    default_order: tuple[str, ...]
    intrinsic_loops: tuple[str, ...]


def contraction(xin, weight, shape, window, accdt: str, epilogue, out_channels: int):
    """conv2d (`shape` = N, OH, OW, OC; `window` = ((KH, KW), strides, dilations)) or dense
    (`shape` = N, OC; `window` None) into 4 partial sums per output element, and the output `y`
    (`epilogue(sum of the 4, oc)`, `out_channels` of them). `weight(oc, [kh, kw,] ic block,
    0, ic lane)` as for `accelsim.lower.common.contraction_acc` with blocks of 1 x 16.

    The accumulators' last axis is the output channels' partial sums, `oc * 4 + part` (the
    epilogue's reads then name the channel, which TVM needs to place it in the tile loop); the
    scheduler splits it into `oc` and `oc.v` (the 4 parts) and counts tiles in channels."""
    te = _te()
    icb = int(xin.shape[-1]) // DEPTH
    ric = te.reduce_axis((0, icb), "ic")
    rr = te.reduce_axis((0, 4), "icv")

    def prod(xv, wv):
        return xv.astype(accdt) * wv.astype(accdt)

    oc_axis = Axis("oc", shape[-1] * PARTS, vsplit=PARTS, unit="output channels", scale=PARTS)
    if window is None:
        N, OC = shape
        acc = te.compute(
            (N, OC * PARTS),
            lambda n, q: te.sum(
                prod(
                    xin[n, ric * DEPTH + _channel(q % PARTS, rr)],
                    weight(q // PARTS, ric, 0, _channel(q % PARTS, rr)),
                ),
                axis=[ric, rr],
            ),
            name="acc",
        )
        ps = te.compute((N, OC), lambda n, oc: _total(lambda q: acc[n, q], oc), "partial_sum")
        y = te.compute((N, out_channels), lambda n, oc: epilogue(ps[n, oc], oc), name="y")
        axes = [
            Axis("n", N, unit="rows"),
            oc_axis,
            Axis("ic", icb, reduce=True, unit="input channels", elem=DEPTH),
            Axis("ic.v", 4, reduce=True),
        ]
        return PartialCompute(acc, y, ps, axes, ("n", "oc", "ic"), ("oc.v", "ic.v"))

    N, OH, OW, OC = shape
    (KH, KW), (sh, sw), (dh, dw) = window
    rkh = te.reduce_axis((0, KH), "kh")
    rkw = te.reduce_axis((0, KW), "kw")
    acc = te.compute(
        (N, OH, OW, OC * PARTS),
        lambda n, oh, ow, q: te.sum(
            prod(
                xin[
                    n, oh * sh + rkh * dh, ow * sw + rkw * dw, ric * DEPTH + _channel(q % PARTS, rr)
                ],
                weight(q // PARTS, rkh, rkw, ric, 0, _channel(q % PARTS, rr)),
            ),
            axis=[rkh, rkw, ric, rr],
        ),
        name="acc",
    )
    ps = te.compute(
        (N, OH, OW, OC),
        lambda n, oh, ow, oc: _total(lambda q: acc[n, oh, ow, q], oc),
        name="partial_sum",
    )
    y = te.compute(
        (N, OH, OW, out_channels),
        lambda n, oh, ow, oc: epilogue(ps[n, oh, ow, oc], oc),
        name="y",
    )
    axes = [
        Axis("n", N, unit="images"),
        Axis("oh", OH, unit="output rows"),
        Axis("ow", OW, unit="output columns"),
        oc_axis,
        Axis("kh", KH, reduce=True, unit="kernel rows"),
        Axis("kw", KW, reduce=True, unit="kernel columns"),
        Axis("ic", icb, reduce=True, unit="input channels", elem=DEPTH),
        Axis("ic.v", 4, reduce=True),
    ]
    return PartialCompute(
        acc, y, ps, axes, ("n", "oh", "ow", "oc", "kh", "kw", "ic"), ("oc.v", "ic.v")
    )
