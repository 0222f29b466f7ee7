"""HVX convolutions and dense layers with the vector x scalar `vrmpy`: the weights moved to
unsigned bytes, the activations' sums subtracted once per pixel (hexagon_nn's arrangement).

HVX's 8-bit reducing multiply comes in two forms. `Vx.w += vrmpy(Vu.b, Vv.b)` (vector x vector)
takes both multiply resources, so one issues per packet: 128 of the 256 byte products a cycle
the context can form. `Vx.w += vrmpy(Vu.ub, Rt.b)` (vector x scalar register) takes one, and
two issue per packet, but its vector operand is unsigned. So, as Qualcomm's hexagon_nn kernels
do with their offset operands:

    Vu = the weights of 32 output channels x 4 input channels, stored as w + 128 (0..255)
    Rt = the 4 activations of one pixel over those input channels (one 32-bit load, no splat)

    acc[p, o] = sum_k x[p, k] (w[o, k] + 128) = sum_k x[p, k] w[o, k] + 128 S[p]

with S[p] = sum_k x[p, k] over the same window (padding included, as the products see it).
S is one number per pixel, shared by every output channel: a root stage computes it on the
scalar core, 8 activations per `Rxx += vrmpybsu(Rss, Rtt)` (Rtt all ones; `vrmpybuu` for
uint8 activations, which `Vx.uw += vrmpy(Vu.ub, Rt.ub)` serves), two independent ones per 16
channels (two 32-bit partial sums each), and the epilogue subtracts 128 S from each
accumulator before the bias; it reads S through a stand-in while the layer is scheduled
(`accelsim.lower.common.Built.stand_ins`). Against the output channels' K x O / 128 vrmpys per
pixel, the sum costs K / 8 scalar multiplies: 16 / O of the convolution's multiply slots (a
1x1 layer to 64 channels pays most, one to 384 about 4 %).

Exact: |acc| <= K x 128 x 255 stays inside int32 for K < 65 000 terms, and the subtraction
leaves the exact integer sum. Used where the recipe lists `vrmpy_rt` before `vrmpy`.

4-bit weights (w4a8, w4a4) take the same instruction: stored as the unsigned nibbles w + 8, two
input-channel blocks per byte (block `[32 lanes][4]`, byte [i, j] holding input channel j in
its low nibble and j + 4 in its high one: `Intrinsic.nibble_depth`), one 128-byte load gives
both blocks' weight vectors as 16 x (w + 8) = 16 w + 128: the low nibbles shifted up
(`vasl` + `vand`), the high ones masked (`vand`). So the same offset 128 per weight is
subtracted with the same sums, and the kernel shifts the result right by 4 (16 x the exact
sum). The unpack depends on the weights only: the tile's pixels share it, as they share the
weight vector. |acc| <= K x 128 x 240: exact for K < 69 900 terms.
"""

from __future__ import annotations

from dataclasses import dataclass

from accelsim.lower import intrin as _intrin
from accelsim.lower.common import _te

KIND = "uweights"
OFFSET = 128  # added to every weight when packed: int8 -> uint8
SUM_DEPTHS = (16, 8)  # activations per call of the sums' intrinsic (8 per instruction)
SUMS, STAND_IN = "asum", "asum_in"  # the sums' stage and its stand-in while scheduling
_VRMPY = {  # activations: (LLVM intrinsic, assembly)
    "int8": ("llvm.hexagon.V6.vrmpybus.acc.128B", "v.w += vrmpy(v.ub, r.b)"),
    "uint8": ("llvm.hexagon.V6.vrmpyub.acc.128B", "v.uw += vrmpy(v.ub, r.ub)"),
}
_BYTE_SUM = {"int8": "llvm.hexagon.M5.vrmacbsu", "uint8": "llvm.hexagon.M5.vrmacbuu"}


def _word(T, A, dtype: str = "int32", index: int = 0):
    """A's bytes as one 32-bit (64-bit) load: they start at a multiple of 4 (8) bytes (the
    description's offset factor), which LLVM cannot tell for a buffer the kernel allocates
    (the padded input), so it would load them byte by byte; a view of the same memory in
    words loads a word, aligned as its type."""
    n = int(dtype[3:]) // 8
    words = T.decl_buffer((index + 1,), dtype, data=A.data, elem_offset=A.elem_offset // n)
    return words[index]


def _impl(it: _intrin.Intrinsic):
    """One `vrmpy(Vu.ub, Rt.b)`: the 128 weight bytes as the vector, the 4 activations as one
    32-bit scalar."""

    def value(T, A, B, C):
        w = T.reinterpret(B.vload([0, 0], dtype="uint8x128"), dtype="int32x32")
        a = _word(T, A)
        return _intrin._llvm(T, it.llvm[0], "int32x32", C[T.ramp(T.int32(0), 1, 32)], w, a)

    return _intrin.implementation(it, [(0, 32, value)])


def _impl_w4(it: _intrin.Intrinsic):
    """Two `vrmpy(Vu.ub, Rt.b)` on one accumulator vector: 16 x the low nibbles (input
    channels 0-3 of the block) with the first activation word, 16 x the high ones (4-7) with
    the second."""

    def value(T, A, B, C):
        # in 16-bit lanes: HVX shifts no bytes (LLVM would widen, shift and pack them), and
        # the mask drops what crosses from one byte into the next
        raw = T.reinterpret(B.vload([0, 0], dtype="uint8x128"), dtype="uint16x64")
        mask = T.Broadcast(T.uint16(0xF0F0), 64)
        lo = T.bitwise_and(T.shift_left(raw, T.Broadcast(T.uint16(4), 64)), mask)
        hi = T.bitwise_and(raw, mask)
        first = _intrin._llvm(
            T,
            it.llvm[0],
            "int32x32",
            C[T.ramp(T.int32(0), 1, 32)],
            T.reinterpret(lo, dtype="int32x32"),
            _word(T, A, "int32", 0),
        )
        return _intrin._llvm(
            T,
            it.llvm[0],
            "int32x32",
            first,
            T.reinterpret(hi, dtype="int32x32"),
            _word(T, A, "int32", 1),
        )

    return _intrin.implementation(it, [(0, 32, value)])


def _entry(act: str, bits: int) -> _intrin.Intrinsic:
    llvm, asm = _VRMPY[act]
    w4 = bits == 4
    doc = (
        "HVX 128B vector x scalar: 32 int32 lanes each += 4 products of the weights + 128 "
        f"(u8) and one 32-bit register of {act} activations; two per packet"
    )
    if w4:
        doc = (
            "as vrmpy_rt, 4-bit weights w + 8 of two input-channel blocks per byte, each half "
            "taken as 16 x (w + 8) by one vasl + vand or one vand; accumulators hold 16 x the sums"
        )
    return _intrin.Intrinsic(
        name="vrmpy_rt",
        key=f"accelsim.vrmpy_rt.{act}." + ("w4x16" if w4 else "w8"),
        act_dtype=act,
        weight_bits=bits,
        weight_type="uint8",
        acc_dtype="int32",
        lanes=32,
        depth=8 if w4 else 4,
        impl=_impl_w4 if w4 else _impl,
        instruction=f"vasl(v.h, r) / vand(v, v); {asm}" if w4 else asm,
        requires=("hvx",),
        llvm=(llvm,),
        doc=doc,
        kind=KIND,
        nibble_depth=w4,
        # one (4-bit: two) 32-bit word of activations, one 128-byte vector of weights and of
        # accumulators
        offset_factors=(8 if w4 else 4, 128, 32),
    )


ENTRIES = tuple(_entry(act, bits) for bits in (8, 4) for act in ("int8", "uint8"))
_intrin.register(*ENTRIES)


def applies(it: _intrin.Intrinsic | None) -> bool:
    return it is not None and it.kind == KIND


# -- the activations' sums -----------------------------------------------------------------

_sum_registered: set[str] = set()


def _sum_desc(act: str, depth: int):
    """`C[j] += A[4 j + r]`: `depth` activations into depth / 4 partial sums."""
    from accelsim.core.tvm_env import import_tvm

    import_tvm()
    from tvm.script import tirx as T

    parts = depth // 4

    @T.prim_func(s_tir=True)
    def desc(a: T.handle, c: T.handle) -> None:
        A = T.match_buffer(a, (depth,), act, offset_factor=depth)
        C = T.match_buffer(c, (parts,), "int32", offset_factor=parts)
        with T.sblock("root"):
            T.reads(C[0:parts], A[0:depth])
            T.writes(C[0:parts])
            for j in T.serial(0, parts):
                for r in T.serial(0, 4):
                    with T.sblock("update"):
                        vj, vr = T.axis.remap("SR", [j, r])
                        C[vj] = C[vj] + T.cast(A[vj * 4 + vr], "int32")

    return desc


def _sum_impl(act: str, depth: int):
    """Per 8 activations one `Rxx += vrmpybsu(Rss, Rtt)` with Rtt = 8 ones (each 32-bit half
    of Rxx adds 4 bytes); 16 activations: two independent ones, which pack in one packet."""
    from accelsim.core.tvm_env import import_tvm

    import_tvm()
    from tvm.script import tirx as T

    parts = depth // 4

    def pair(A, C, k):
        acc = C.vload([2 * k], dtype="int32x2")
        return T.reinterpret(
            _intrin._llvm(
                T,
                _BYTE_SUM[act],
                "int64",
                T.reinterpret(acc, dtype="int64"),
                _word(T, A, "int64", k),
                T.int64(0x0101010101010101),
            ),
            dtype="int32x2",
        )

    @T.prim_func(s_tir=True)
    def impl(a: T.handle, c: T.handle) -> None:
        A = T.match_buffer(a, (depth,), act, offset_factor=depth)
        C = T.match_buffer(c, (parts,), "int32", offset_factor=parts)
        with T.sblock("root"):
            T.reads(C[0:parts], A[0:depth])
            T.writes(C[0:parts])
            C[T.ramp(T.int32(0), 1, 2)] = pair(A, C, 0)
            if parts == 4:
                C[T.ramp(T.int32(2), 1, 2)] = pair(A, C, 1)

    return impl


def sum_depth(channels: int) -> int:
    """Activations per call of the sums' TensorIntrin for `channels` input channels: 16 (two
    byte-sum instructions a call, independent), 8, or 0 (no call fits: plain scalar code)."""
    return next((d for d in SUM_DEPTHS if channels % d == 0), 0)


def sum_intrinsic(act: str, depth: int) -> str:
    """The sums' TensorIntrin for `act` activations, `depth` per call (registered once)."""
    key = f"accelsim.uweights.sum.{act}.{depth}"
    if key not in _sum_registered:
        from accelsim.core.tvm_env import import_tvm

        import_tvm()
        from tvm.s_tir import TensorIntrin

        if TensorIntrin.get(key, allow_missing=True) is None:
            TensorIntrin.register(key, _sum_desc(act, depth), _sum_impl(act, depth))
        _sum_registered.add(key)
    return key


@dataclass(frozen=True)
class OffsetCompute:
    """The accumulators of a layer on offset weights, its activation sums and its output."""

    acc: object  # te.Tensor
    sums: object  # te.Tensor: (N, [OH, OW,] 2) partial sums, a root stage
    # the placeholder `y` reads in place of `sums` while the layer is scheduled (TVM fuses
    # the epilogue into the tile loop only when every block it reads is computed there):
    # `accelsim.lower.common.Built.stand_ins`
    stand_in: object
    y: object  # te.Tensor
    # the sum stage's TensorIntrin, or None where the input channels are not a multiple of
    # any of SUM_DEPTHS (then plain scalar code)
    sum_intrinsic: str | None


def _total(sums, *pixel):
    """-OFFSET x S of one pixel (the sum of its partial sums), added to its accumulators."""
    total = sums[(*pixel, 0)]
    for j in range(1, int(sums.shape[-1])):
        total = total + sums[(*pixel, j)]
    return total * -OFFSET


def contraction(it, xin, weight, shape, window, epilogue, out_channels: int, y_name: str = "y"):
    """conv2d (`shape` = N, OH, OW, OCp; `window` = ((KH, KW), strides, dilations)) or dense
    (`shape` = N, OCp; `window` None) on weights packed as w + OFFSET (`weight(...)` as for
    `accelsim.lower.common.contraction_acc`, blocks of it.lanes x it.depth), and the output
    `y` = `epilogue(acc - OFFSET x S, oc)` for `out_channels` channels (block `y_name`)."""
    from accelsim.lower.common import contraction_acc

    te = _te()
    acc = contraction_acc(xin, weight, shape, (it.lanes, it.depth), window, "int32", "int32")
    icp = int(xin.shape[-1])
    # depth / 4 partial sums per pixel (the 32-bit halves of the byte-sum accumulators); input
    # channels that fill no call: one plain sum
    depth = sum_depth(icp)
    parts = depth // 4 if depth else 1
    ric = te.reduce_axis((0, icp // depth if depth else icp), "ic")
    rr = te.reduce_axis((0, 4 if depth else 1), "icv")

    def term(x_at, j):
        return x_at(ric * depth + j * 4 + rr if depth else ric + rr).astype("int32")

    if window is None:
        N = shape[0]
        sums = te.compute(
            (N, parts),
            lambda n, j: te.sum(term(lambda c: xin[n, c], j), axis=[ric, rr]),
            name=SUMS,
        )
        stand_in = te.placeholder(sums.shape, "int32", name=STAND_IN)
        y = te.compute(
            (N, out_channels),
            lambda n, oc: epilogue(acc[n, oc] + _total(stand_in, n), oc),
            name=y_name,
        )
    else:
        N, OH, OW, _ = shape
        (KH, KW), (sh, sw), (dh, dw) = window
        rkh = te.reduce_axis((0, KH), "kh")
        rkw = te.reduce_axis((0, KW), "kw")
        sums = te.compute(
            (N, OH, OW, parts),
            lambda n, oh, ow, j: te.sum(
                term(lambda c: xin[n, oh * sh + rkh * dh, ow * sw + rkw * dw, c], j),
                axis=[rkh, rkw, ric, rr],
            ),
            name=SUMS,
        )
        stand_in = te.placeholder(sums.shape, "int32", name=STAND_IN)
        y = te.compute(
            (N, OH, OW, out_channels),
            lambda n, oh, ow, oc: epilogue(acc[n, oh, ow, oc] + _total(stand_in, n, oh, ow), oc),
            name=y_name,
        )
    return OffsetCompute(
        acc, sums, stand_in, y, sum_intrinsic(it.act_dtype, depth) if depth else None
    )
