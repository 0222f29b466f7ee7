"""NEON convolutions and dense layers that accumulate, per (pixel, output channel), one register
of partial sums over the input channels and add them together once, before the epilogue:
int8 on cores without a dot product as gemmlowp's and ruy's Armv8.0 kernels do (`smull_smlal2`),
its 16-bit form on every core, and SDOT per output channel (`sdot_partials`, dense layers on
dotprod cores: no activation broadcast).

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

The 16-bit form (w16a16, w8a16 with its weights widened when packed) is the same over 8
input channels: SMULL / SMLAL2 .4S, .4H (two int16 products per int32 lane, exact when no weight
is -32768) and SADALP .2D into 2 int64 partial sums.

Here, for the int8 form (int16: 8 channels, l < 2, halves of 4):

    C[l] += A[h 8 + 2 l + e] * W[h 8 + 2 l + e]      l < 4, h < 2, e < 2 (r = 2 h + e)

A is 16 consecutive input channels of one pixel of the (NHWC) input, W the matching 16 of one
output channel's packed weights (`[O][KH][KW][I/16][1][16]`), C the pixel's and channel's 4
partial sums: the accumulators are laid out `(N, OH, OW, OC x 4)` (`(N, OC x 4)` for dense) and
a `partial_sum` stage adds each 4 channels' partials with ADDPs before the epilogue. Used where
the input channels are a multiple of the depth (else the 4-deep `smull_smlal` wastes less on
padding) and the recipe lists the intrinsic before any dot-product one the core has
(`tensorize: [..., sdot, smull_smlal2, smull_smlal, ...]`: int8 on cores with SDOT keeps it).
`sdot_partials` is the same with one SDOT per call (lane l sums input channels 4l..4l+3).

4-bit weights (w4a8) keep the int8 form on two output channels per call: one 16-byte block holds
channel 0's 16 weights in its low nibbles and channel 1's in its high ones; SHL #4 and AND #0xF0
make them 16 x w, exact int8 values (the kernel shifts its sums right by 4), so SMULL / SMLAL2 /
SADALP run unchanged, and the unpacking, which depends on the weights only, is shared by the
tile's pixels. The int16 pair sums hold 2 x 112 x 128 for weights >= -7 (the restricted range).
"""

from __future__ import annotations

from dataclasses import dataclass

from accelsim.lower import intrin as _intrin
from accelsim.lower.common import _te
from accelsim.lower.schedule import Axis

KIND = "partials"
_ADDP = {"int32": "llvm.aarch64.neon.addp.v4i32", "int64": "llvm.aarch64.neon.addp.v2i64"}
_FORMS = {  # activations: (SMULL, SADDLP, product type)
    "int8": ("llvm.aarch64.neon.smull.v8i16", "llvm.aarch64.neon.saddlp.v4i32.v8i16", "int16"),
    "int16": ("llvm.aarch64.neon.smull.v4i32", "llvm.aarch64.neon.saddlp.v2i64.v4i32", "int32"),
}


def parts(it: _intrin.Intrinsic) -> int:
    """Partial sums per (pixel, output channel): one 128-bit register of accumulators."""
    return 128 // int(it.acc_dtype[3:])


def _channel(it: _intrin.Intrinsic, vl, vr):
    """The input channel (within the call's `it.depth`) that partial `vl` takes at reduction
    step `vr`: SDOT's lane l sums bytes 4l..4l+3; SMULL/SMLAL2/SADALP's lane l the pairs 2l,
    2l + 1 of both halves (h = vr // 2: the SMULL or the SMLAL2 half; e = vr % 2: SADALP's
    pair). Shared by the compute and the description, whose structural match needs the same
    expression."""
    if it.name == SDOT_NAME:
        return vl * 4 + vr
    return (vr // 2) * (it.depth // 2) + vl * 2 + vr % 2


def _total(a, oc, n: int):
    """The sum of channel `oc`'s `n` partials (`a(q)`: partial q of the flattened axis), in the
    order the compute and the stage's description share (the ADDP tree's)."""
    if n == 2:
        return a(oc * 2) + a(oc * 2 + 1)
    return (a(oc * n) + a(oc * n + 1)) + (a(oc * n + 2) + a(oc * n + 3))


def _desc(it: _intrin.Intrinsic):
    from accelsim.core.tvm_env import import_tvm

    import_tvm()
    from tvm.script import tirx as T

    acc, depth, n = it.acc_dtype, it.depth, parts(it)
    rows, cols = it.block_shape
    m = it.lanes * n  # the call's partial sums: n per output channel

    def weight(B, lane, ch):
        if it.nibble_lanes:
            return _intrin.nibble16(B, lane, ch, it.lanes // 2)
        return B[lane, ch]

    @T.prim_func(s_tir=True)
    def desc(a: T.handle, b: T.handle, c: T.handle) -> None:
        A = T.match_buffer(a, (depth,), it.act_dtype, offset_factor=1)
        B = T.match_buffer(b, (rows, cols), it.weight_dtype, offset_factor=1)
        C = T.match_buffer(c, (m,), acc, offset_factor=1)
        with T.sblock("root"):
            T.reads(C[0:m], A[0:depth], B[0:rows, 0:cols])
            T.writes(C[0:m])
            for i in T.serial(0, m):
                for r in T.serial(0, 4):
                    with T.sblock("update"):
                        vi, vr = T.axis.remap("SR", [i, r])
                        C[vi] = C[vi] + T.cast(A[_channel(it, vi % n, vr)], acc) * T.cast(
                            weight(B, vi // n, _channel(it, vi % n, vr)), acc
                        )

    return desc


def _impl(it: _intrin.Intrinsic):
    """SMULL of the low halves, SMLAL2 of the high ones (LLVM folds the sum of the two SMULLs),
    SADALP into the partial sums."""
    smull, saddlp, prod = _FORMS[it.act_dtype]
    depth, n, elem = it.depth, parts(it), it.act_dtype

    def value(T, A, B, C):
        a = A.vload([0], dtype=f"{elem}x{depth}")
        w = B.vload([0, 0], dtype=f"{elem}x{depth}")

        def mul(half):
            pick = T.vectorlow if half == 0 else T.vectorhigh
            h = f"{elem}x{depth // 2}"
            return _intrin._llvm(
                T, smull, f"{prod}x{depth // 2}", pick(w, dtype=h), pick(a, dtype=h)
            )

        return C[T.ramp(T.int32(0), 1, n)] + _intrin._llvm(
            T, saddlp, f"{it.acc_dtype}x{n}", mul(0) + mul(1)
        )

    return _intrin.implementation(it, [(0, n, value)])


def _impl_w4(it: _intrin.Intrinsic):
    """As `_impl` for two output channels of 4-bit weights sharing the bytes of one 16-byte
    block (channel 0 in the low nibbles, 1 in the high ones, `nibble_lanes`): SHL #4 gives
    channel 0's 16 weights x 16, AND #0xF0 channel 1's, each then SMULL / SMLAL2 / SADALP
    with the pixel's 16 activations. The two depend only on the weights, so the pixels of a
    tile share them: one instruction per output channel and 16 input channels, against the
    8-bit kernel's 3 per pixel."""
    depth, n = it.depth, parts(it)
    smull, saddlp, prod = _FORMS["int8"]
    h, p = f"int8x{depth // 2}", f"{prod}x{depth // 2}"

    def part(lane):
        def value(T, A, B, C):
            a = A.vload([0], dtype=f"int8x{depth}")
            v = B.vload([0, 0], dtype=f"int8x{depth}")
            w = (
                T.shift_left(v, T.Broadcast(T.int8(4), depth))
                if lane == 0
                else T.bitwise_and(v, T.Broadcast(T.int8(-16), depth))
            )
            s = _intrin._llvm(
                T, smull, p, T.vectorlow(w, dtype=h), T.vectorlow(a, dtype=h)
            ) + _intrin._llvm(T, smull, p, T.vectorhigh(w, dtype=h), T.vectorhigh(a, dtype=h))
            return C[T.ramp(T.int32(lane * n), 1, n)] + _intrin._llvm(
                T, saddlp, f"{it.acc_dtype}x{n}", s
            )

        return (lane * n, n, value)

    return _intrin.implementation(it, [part(0), part(1)], c_lanes=it.lanes * n)


def _entry(act: str) -> _intrin.Intrinsic:
    wide = act == "int16"
    bits, acc, depth = (16, "int64", 8) if wide else (8, "int32", 16)
    sfx, psfx = ("4h", "4s") if wide else ("8b", "8h")
    return _intrin._entry(
        "smull_smlal2",
        f"smull v.{psfx}, v.{sfx}, v.{sfx}; smlal2 v.{psfx}, v.16b, v.16b; "
        f"sadalp v.{'2d' if wide else '4s'}, v.{psfx}",
        ["neon"],
        act,
        bits,
        acc,
        1,
        depth,
        _FORMS[act][:2],
        _impl,
        f"Armv8 NEON, Jacob et al. Appendix B over the input channels: {depth} {act} "
        f"products of one pixel and one output channel, two summed per {_FORMS[act][2]} lane, "
        f"pairwise into {128 // int(acc[3:])} {acc} partial sums (exact for weights >= "
        f"{-(2 ** (bits - 1) - 1)})",
        weight_min=-(2 ** (bits - 1) - 1),
        kind=KIND,
        desc=_desc,
    )


def _sdot_impl(it: _intrin.Intrinsic):
    """One SDOT: 16 activations by one channel's 16 weights into its 4 partial sums."""

    def value(T, A, B, C):
        return _intrin._llvm(
            T,
            _SDOT,
            "int32x4",
            C[T.ramp(T.int32(0), 1, 4)],
            B.vload([0, 0], dtype="int8x16"),
            A.vload([0], dtype="int8x16"),
        )

    return _intrin.implementation(it, [(0, 4, value)])


SDOT_NAME = "sdot_partials"
_SDOT = "llvm.aarch64.neon.sdot.v4i32.v16i8"
ENTRIES = (
    _entry("int8"),
    _intrin.Intrinsic(
        name="smull_smlal2",
        key="accelsim.smull_smlal2.int8.w4x16",
        act_dtype="int8",
        weight_bits=4,
        acc_dtype="int32",
        lanes=2,
        depth=16,
        impl=_impl_w4,
        instruction="ldr q; shl v.16b, #4 / and v.16b, #0xf0; smull v.8h, v.8b, v.8b; "
        "smlal2 v.8h, v.16b, v.16b; sadalp v.4s, v.8h",
        requires=("neon",),
        llvm=_FORMS["int8"][:2],
        doc="as smull_smlal2 for two output channels whose int4 weights share bytes, taken as "
        "16 x w in place (exact for weights >= -7: two products |16 w a| <= 112 x 128 sum "
        "within int16); accumulators hold 16 x the sums",
        weight_min=-7,
        kind=KIND,
        desc=_desc,
        nibble_lanes=True,
    ),
    _entry("int16"),
    _intrin._entry(
        SDOT_NAME,
        "sdot v.4s, v.16b, v.16b (one output channel: 4 partial sums)",
        ["neon", "dotprod"],
        "int8",
        8,
        "int32",
        1,
        16,
        [_SDOT],
        _sdot_impl,
        "Armv8.2-A dot product over the input channels: 16 int8 activations of one pixel by "
        "16 weights of one output channel into 4 int32 partial sums (no broadcast)",
        kind=KIND,
        desc=_desc,
    ),
)
_intrin.register(*ENTRIES)


def _sum_desc(acc: str, n: int):
    from accelsim.core.tvm_env import import_tvm

    import_tvm()
    from tvm.script import tirx as T

    @T.prim_func(s_tir=True)
    def desc(a: T.handle, c: T.handle) -> None:
        P = T.match_buffer(a, (n * n,), acc, offset_factor=1)
        S = T.match_buffer(c, (n,), acc, offset_factor=1)
        with T.sblock("root"):
            T.reads(P[0 : n * n])
            T.writes(S[0:n])
            for i in T.serial(0, n):
                with T.sblock("partial_sum"):
                    vc = T.axis.remap("S", [i])
                    S[vc] = _total(lambda q: P[q], vc, n)

    return desc


def _sum_impl(acc: str, n: int):
    """[sum of channel 0's partials, ..., channel n - 1's]: ADDP of pairs of channels' registers,
    then (int32) ADDP of the two results."""
    from accelsim.core.tvm_env import import_tvm

    import_tvm()
    from tvm.script import tirx as T

    vec = f"{acc}x{n}"

    def addp(x, y):
        return _intrin._llvm(T, _ADDP[acc], vec, x, y)

    def value(P):
        regs = [P.vload([i * n], dtype=vec) for i in range(n)]
        if n == 2:
            return addp(regs[0], regs[1])
        return addp(addp(regs[0], regs[1]), addp(regs[2], regs[3]))

    @T.prim_func(s_tir=True)
    def impl(a: T.handle, c: T.handle) -> None:
        P = T.match_buffer(a, (n * n,), acc, offset_factor=1)
        S = T.match_buffer(c, (n,), acc, offset_factor=1)
        with T.sblock("root"):
            T.reads(P[0 : n * n])
            T.writes(S[0:n])
            S[T.ramp(T.int32(0), 1, n)] = value(P)

    return impl


_sum_registered: set[str] = set()


def sum_intrinsic(it: _intrin.Intrinsic) -> tuple[str, int]:
    """The partial-sum stage's TensorIntrin for `it`'s accumulators (registered with TVM once)
    and the channels one call sums."""
    acc, n = it.acc_dtype, parts(it)
    key = f"accelsim.partials.sum.{acc}x{n}"
    if key not in _sum_registered:
        from accelsim.core.tvm_env import import_tvm

        import_tvm()
        from tvm.s_tir import TensorIntrin

        TensorIntrin.register(key, _sum_desc(acc, n), _sum_impl(acc, n))
        _sum_registered.add(key)
    return key, n


def applies(it: _intrin.Intrinsic | None, channels: int) -> bool:
    """Whether `it` is this module's intrinsic and the layer's input channels fill its calls."""
    return it is not None and it.kind == KIND and channels % it.depth == 0


@dataclass(frozen=True)
class PartialCompute:
    """The partial-sum accumulators of a layer, its output and its loops for the scheduler."""

    acc: object  # te.Tensor
    y: object  # te.Tensor (its producer `partial_sum` adds the partials: a `between` block)
    axes: list[Axis]
    default_order: tuple[str, ...]
    intrinsic_loops: tuple[str, ...]


def contraction(it, xin, weight, shape, window, epilogue, out_channels: int, y_name: str = "y"):
    """conv2d (`shape` = N, OH, OW, OC; `window` = ((KH, KW), strides, dilations)) or dense
    (`shape` = N, OC; `window` None) with `it` into P partial sums per output element (P =
    `parts(it)`), and the output `y` (`epilogue(sum of the P, oc)`, `out_channels` of them;
    block `y_name`).
    `weight(oc, [kh, kw,] ic block, 0, ic lane)` as for `accelsim.lower.common.contraction_acc`
    with blocks of 1 x `it.depth`.

    The accumulators' last axis is the output channels' partial sums, `oc * P + part` (the
    epilogue's reads then name the channel, which TVM needs to place it in the tile loop); the
    scheduler splits it into `oc` and `oc.v` (the P parts) and counts tiles in channels."""
    te = _te()
    accdt, depth, nparts = it.acc_dtype, it.depth, parts(it)
    icb = int(xin.shape[-1]) // depth
    ric = te.reduce_axis((0, icb), "ic")
    rr = te.reduce_axis((0, 4), "icv")

    def prod(xv, wv):
        return xv.astype(accdt) * wv.astype(accdt)

    lanes = it.lanes  # output channels per call
    oc_axis = Axis(
        "oc",
        shape[-1] * nparts,
        vsplit=nparts * lanes,
        unit="output channels",
        scale=nparts,
        tile_multiple=nparts,  # the partial_sum stage's ADDP tree sums nparts channels
    )

    def wt(q, *at, ch):  # the weight of partial q's channel (its block, lane) at input `ch`
        oc = q // nparts
        if lanes == 1:
            return weight(oc, *at, 0, ch)
        return weight(oc // lanes, *at, oc % lanes, ch)

    if window is None:
        N, OC = shape
        acc = te.compute(
            (N, OC * nparts),
            lambda n, q: te.sum(
                prod(
                    xin[n, ric * depth + _channel(it, q % nparts, rr)],
                    wt(q, ric, ch=_channel(it, q % nparts, rr)),
                ),
                axis=[ric, rr],
            ),
            name="acc",
        )
        ps = te.compute(
            (N, OC), lambda n, oc: _total(lambda q: acc[n, q], oc, nparts), "partial_sum"
        )
        y = te.compute((N, out_channels), lambda n, oc: epilogue(ps[n, oc], oc), name=y_name)
        axes = [
            Axis("n", N, unit="rows"),
            oc_axis,
            Axis("ic", icb, reduce=True, unit="input channels", elem=depth),
            Axis("ic.v", 4, reduce=True),
        ]
        return PartialCompute(acc, y, axes, ("n", "oc", "ic"), ("oc.v", "ic.v"))

    N, OH, OW, OC = shape
    (KH, KW), (sh, sw), (dh, dw) = window
    rkh = te.reduce_axis((0, KH), "kh")
    rkw = te.reduce_axis((0, KW), "kw")
    acc = te.compute(
        (N, OH, OW, OC * nparts),
        lambda n, oh, ow, q: te.sum(
            prod(
                xin[
                    n,
                    oh * sh + rkh * dh,
                    ow * sw + rkw * dw,
                    ric * depth + _channel(it, q % nparts, rr),
                ],
                wt(q, rkh, rkw, ric, ch=_channel(it, q % nparts, rr)),
            ),
            axis=[rkh, rkw, ric, rr],
        ),
        name="acc",
    )
    ps = te.compute(
        (N, OH, OW, OC),
        lambda n, oh, ow, oc: _total(lambda q: acc[n, oh, ow, q], oc, nparts),
        name="partial_sum",
    )
    y = te.compute(
        (N, OH, OW, out_channels),
        lambda n, oh, ow, oc: epilogue(ps[n, oh, ow, oc], oc),
        name=y_name,
    )
    axes = [
        Axis("n", N, unit="images"),
        Axis("oh", OH, unit="output rows"),
        Axis("ow", OW, unit="output columns"),
        oc_axis,
        Axis("kh", KH, reduce=True, unit="kernel rows"),
        Axis("kw", KW, reduce=True, unit="kernel columns"),
        Axis("ic", icb, reduce=True, unit="input channels", elem=depth),
        Axis("ic.v", 4, reduce=True),
    ]
    return PartialCompute(acc, y, axes, ("n", "oh", "ow", "oc", "kh", "kw", "ic"), ("oc.v", "ic.v"))
