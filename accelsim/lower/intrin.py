"""The tensor-intrinsic table: hardware dot-product instructions that schedules tensorize with.

Each `Intrinsic` is one instruction pattern that computes a small block of a contraction,

    C[i] += A[k] * B[i, k]      for i < lanes (output channels), k < depth (reduction),

with A a few activations (broadcast to every lane), B a `lanes x depth` block of packed weights
and C a vector of accumulators; or, for depthwise convolutions (`kind="elementwise"`), one tap
of `lanes` channels, `C[i] += A[i] * B[i]`. The weight packing of a lowered conv2d / dense follows the
intrinsic: `[O/lanes] ... [I/depth][lanes][depth]`, so the B block is one contiguous vector load.
4-bit weights are stored two per byte along k (`byte = lo | hi << 4`, k even in the low nibble)
and unpacked to 8 bit in registers by the intrinsic's implementation (zero-extend to 16 bit, mask
and shift the two nibbles into the two bytes, sign-extend with `(v ^ 8) - 8`); or, where an entry
sets `nibble_lanes`, lane i and lane i + lanes/2 share a byte and are used as 16 x w in place
(SHL #4 of the byte, or AND #0xF0: one instruction per 16 weights), the kernel shifting its
accumulators right by 4 before the bias; `nibble_depth` pairs reduction elements k and
k + depth/2 of a lane the same way (HVX `vrmpy_rt`, `accelsim.lower.uweights`). Entries with
`group` pack their block pair-major (`smull_smlal`: two int8 products summed in int16, Jacob et
al. Appendix B).

A recipe names intrinsics by their short `name` (`tensorize: [sdot, smull_sadalp]`); the first one
whose `requires` features the target has and which has a variant for the layer's operand types is
used. The table is data: adding an instruction is adding an entry, no per-target code. An entry
whose instruction is exact only for part of the weight range says so (`weight_min`); the lowering
then keeps such a layer off it (HVX `vdmpy` saturates its pair sum at two (-2^15)^2 products).

Every intrinsic is described this way, the configurable accelerator's vector MAC too
(`accelsim.accel.intrin`): the description comes from the shape, the operand types and the
operands' storage `scopes` (`_desc`); the implementation from `impl`, which builds it with
`implementation`: the same buffers, and as body one or two stores of vector parts of C (the CPU
and DSP instructions, their value built from `_splat`, the activations broadcast to every lane,
and `_weights8`, the weight block with 4-bit weights unpacked) or a call of an external function
that updates C in place (the accelerator).

Registered with `tvm.s_tir.TensorIntrin.register` on first use (importing TVM's own
`tvm.s_tir.tensor_intrin` costs 50 s). Each implementation is written as single expressions, since
TVMScript `let` bindings become heap workspace allocations on every call (TVM 0.27).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Intrinsic:
    """One variant of a tensor intrinsic (fixed operand types)."""

    name: str  # recipe name, e.g. "sdot"
    key: str  # registered TensorIntrin name
    act_dtype: str
    weight_bits: int  # 4: two weights per byte, unpacked in registers
    acc_dtype: str
    lanes: int  # output channels per call (the `oc.v` loop)
    depth: int  # reduction elements per call (the `ic.v` loop)
    # builds the implementation PrimFunc of this intrinsic (see `implementation`)
    impl: Callable[[Intrinsic], Any] = field(repr=False)
    instruction: str = ""  # what the assembly shows, e.g. "sdot v.4s, v.16b, v.16b"
    requires: tuple[str, ...] = ()  # target `codegen.features` it needs
    llvm: tuple[str, ...] = ()  # LLVM intrinsics the implementation calls
    doc: str = ""
    # the smallest weight the instruction is exact for (vdmpy's saturating pair sum can only
    # overflow with two -2^15 x -2^15 products); None: every weight value
    weight_min: int | None = None
    # "dot": C[i] += A[k] * B[i, k] (conv2d, dense); "elementwise": C[i] += A[i] * B[i]
    # (depthwise: one tap of `lanes` channels, depth 1)
    kind: str = "dot"
    # storage scopes of A, B and C (the accelerator's operands live in its scratchpads)
    scopes: tuple[str, str, str] = ("global", "global", "global")
    # non-zero: an unsigned-activation instruction that also serves int8 activations moved to
    # x + act_offset (x86 VNNI multiplies unsigned bytes by signed ones; x ^ 0x80 is x + 128 as
    # u8): the lowering flips them once in the kernel's input stage and folds
    # `act_offset * sum(w)` out of the bias, so the result is exact
    act_offset: int = 0
    # builds the description PrimFunc when the kind's pattern is not one `_desc` knows (an
    # instruction family registered from its own module, e.g. `accelsim.lower.i8mm`)
    desc: Callable[[Intrinsic], Any] | None = field(default=None, repr=False)
    # > 0: the weight block is packed `[depth / group][lanes][group]` (groups of `group`
    # reduction elements per lane, the groups outermost) instead of `[lanes][depth]`
    group: int = 0
    # 4-bit weights, True: lane i and lane i + lanes/2 share a byte (`[lanes / 2][depth]`, or
    # `[depth / group][lanes / 2][group]` with a `group`), taken as 16 x w in place
    # (`nibble16`): one SHL or AND unpacks 16 of them
    nibble_lanes: bool = False
    # 4-bit weights, True: reduction elements k and k + depth/2 of a lane share a byte (block
    # `[lanes][depth / 2]`), each half taken as 16 x w in place (`nibble16_depth`): one 128-byte
    # load and two unpacks feed two instructions of a lane block
    nibble_depth: bool = False
    # > 0: used only where the reduction has at least this many calls (kernel taps x input
    # channel blocks); a shorter one gives way to the next intrinsic of the recipe (see
    # `sdot_lane`)
    min_calls: int = 0
    # the weights' dtype where it is not the integer one of `weight_bits` (float32)
    weight_type: str = ""
    # the elements each operand's offset is a multiple of (A, B, C): what lets TVM tell LLVM a
    # whole-vector access is aligned (plain dot descriptions; 1: nothing known)
    offset_factors: tuple[int, int, int] = (1, 1, 1)

    @property
    def x16(self) -> bool:
        """4-bit weights used as 16 x w in place (`nibble_lanes` or `nibble_depth`): the
        accumulators hold 16 x the sums."""
        return self.nibble_lanes or self.nibble_depth

    @property
    def weight_dtype(self) -> str:
        if self.weight_type:
            return self.weight_type
        return "int8" if self.weight_bits <= 8 else f"int{self.weight_bits}"

    @property
    def packed_depth(self) -> int:
        """Bytes (elements of the weight dtype) per lane in the packed weight block."""
        return self.depth // 2 if self.weight_bits == 4 else self.depth

    @property
    def block_shape(self) -> tuple[int, ...]:
        """The packed weight block's shape: `(lanes, packed depth)`, or grouped
        `(depth / group, lanes, group)`, or `(lanes / 2, depth)` for `nibble_lanes` (grouped:
        `(depth / group, lanes / 2, group)`)."""
        lanes = self.lanes // 2 if self.nibble_lanes else self.lanes
        if self.group:
            return (self.depth // self.group, lanes, self.group)
        if self.nibble_lanes:
            return (lanes, self.depth)
        return (self.lanes, self.packed_depth)


def nibble16_depth(B, vi, vk, half: int, dtype: str = "int8"):
    """16 x the 4-bit weight of lane `vi` and depth `vk` (of 2 * half) in a block whose byte
    [i, k] holds depth k in its low nibble and depth k + half in its high one (see
    `nibble16`); an unsigned block (offset weights) gives 16 x its unsigned nibbles."""
    return _x16(B[vi, vk % half], vk // half, dtype)


def nibble16(B, vi, vk, half: int, group: int = 0):
    """16 x the signed 4-bit weight of lane `vi` (of 2 * half lanes) and depth `vk` in a block
    whose byte [i, k] (grouped: [k / group, i, k % group]) holds lane i's weight in its low
    nibble and lane i + half's in its high nibble: the low nibble shifted up (SHL #4), or the
    high one masked (AND #0xF0), both exact int8 values. Shared by the lowered compute and the
    intrinsic's description."""
    byte = B[vk // group, vi % half, vk % group] if group else B[vi % half, vk]
    return _x16(byte, vi // half)


def _x16(byte, upper, dt: str = "int8"):
    """16 x the low (`upper` 0) or the high (1) nibble of a `byte` of dtype `dt`: signed for
    int8, unsigned (0..240) for uint8."""
    from accelsim.core.tvm_env import import_tvm

    tirx = import_tvm().tirx
    # (byte << 4 or byte << 0) & 0xF0, without a branch (a condition on the lane would let
    # TVM's simplifier rewrite the index in one arm, and the block's weight region with it)
    sh = (tirx.const(4, "int32") - tirx.const(4, "int32") * upper).astype(dt)
    return tirx.bitwise_and(
        tirx.shift_left(byte, sh), tirx.const(0xF0 if dt == "uint8" else -16, dt)
    )


def nibble(byte, k):
    """The signed 4-bit weight at position `k % 2` of a packed byte: low nibble for even k.

    Shared by the lowered computes and the intrinsic descriptions so that tensorize's
    structural match sees identical expressions.
    """
    from accelsim.core.tvm_env import import_tvm

    tvm = import_tvm()
    tirx = tvm.tirx
    sh = tirx.const(4, "int8") - tirx.const(4, "int8") * (k % 2).astype("int8")
    return tirx.shift_right(tirx.shift_left(byte, sh), tirx.const(4, "int8"))


# ------------------------------------------------------------------------------------------
# descriptions and implementations
# ------------------------------------------------------------------------------------------


def _shapes(it: Intrinsic) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The shapes of A and B: one element per lane each (elementwise), or `depth` activations
    and a `lanes x packed depth` weight block (dot)."""
    if it.kind == "elementwise":
        return (it.lanes,), (it.lanes,)
    return (it.depth,), it.block_shape


def _desc(it: Intrinsic):
    """The pattern tensorize matches: `C[i] += A[k] * W[i, k]` over the intrinsic's block."""
    from accelsim.core.tvm_env import import_tvm

    import_tvm()
    from tvm.script import tirx as T

    lanes, depth, pdepth, acc = it.lanes, it.depth, it.packed_depth, it.acc_dtype
    (a_scope, b_scope, c_scope), w4 = it.scopes, it.weight_bits == 4

    g = it.group

    def weight(B, vi, vk):
        if it.nibble_lanes:
            v = nibble16(B, vi, vk, lanes // 2, g)
        elif it.nibble_depth:
            v = nibble16_depth(B, vi, vk, depth // 2, it.weight_dtype)
        elif g:
            v = B[vk // g, vi, vk % g]
        else:
            v = nibble(B[vi, vk // 2], vk) if w4 else B[vi, vk]
        return v if it.weight_dtype == acc else T.cast(v, acc)

    def cast(v):  # as the lowered compute: no cast where the operands have the sum's dtype
        return v if it.act_dtype == acc else T.cast(v, acc)

    if it.kind == "elementwise":

        @T.prim_func(s_tir=True)
        def desc_ew(a: T.handle, b: T.handle, c: T.handle) -> None:
            A = T.match_buffer(a, (lanes,), it.act_dtype, offset_factor=1, scope=a_scope)
            B = T.match_buffer(b, (lanes,), it.weight_dtype, offset_factor=1, scope=b_scope)
            C = T.match_buffer(c, (lanes,), acc, offset_factor=1, scope=c_scope)
            with T.sblock("root"):
                T.reads(C[0:lanes], A[0:lanes], B[0:lanes])
                T.writes(C[0:lanes])
                for i in T.serial(0, lanes):
                    with T.sblock("update"):
                        vi = T.axis.remap("S", [i])
                        C[vi] = C[vi] + T.cast(A[vi], acc) * T.cast(B[vi], acc)

        return desc_ew

    if g or it.nibble_lanes:
        bshape = it.block_shape
        bregion = tuple(slice(0, d) for d in bshape)

        @T.prim_func(s_tir=True)
        def desc_g(a: T.handle, b: T.handle, c: T.handle) -> None:
            A = T.match_buffer(a, (depth,), it.act_dtype, offset_factor=1, scope=a_scope)
            B = T.match_buffer(b, bshape, it.weight_dtype, offset_factor=1, scope=b_scope)
            C = T.match_buffer(c, (lanes,), acc, offset_factor=1, scope=c_scope)
            with T.sblock("root"):
                T.reads(C[0:lanes], A[0:depth], B[bregion])
                T.writes(C[0:lanes])
                for i in T.serial(0, lanes):
                    for k in T.serial(0, depth):
                        with T.sblock("update"):
                            vi, vk = T.axis.remap("SR", [i, k])
                            C[vi] = C[vi] + cast(A[vk]) * weight(B, vi, vk)

        return desc_g

    fa, fb, fc = it.offset_factors

    @T.prim_func(s_tir=True)
    def desc(a: T.handle, b: T.handle, c: T.handle) -> None:
        A = T.match_buffer(a, (depth,), it.act_dtype, offset_factor=fa, scope=a_scope)
        B = T.match_buffer(b, (lanes, pdepth), it.weight_dtype, offset_factor=fb, scope=b_scope)
        C = T.match_buffer(c, (lanes,), acc, offset_factor=fc, scope=c_scope)
        with T.sblock("root"):
            T.reads(C[0:lanes], A[0:depth], B[0:lanes, 0:pdepth])
            T.writes(C[0:lanes])
            for i in T.serial(0, lanes):
                for k in T.serial(0, depth):
                    with T.sblock("update"):
                        vi, vk = T.axis.remap("SR", [i, k])
                        C[vi] = C[vi] + cast(A[vk]) * weight(B, vi, vk)

    # depth 1: TVM drops the unit reduction iterator from the layer's block, so the description
    # must not have one either
    @T.prim_func(s_tir=True)
    def desc1(a: T.handle, b: T.handle, c: T.handle) -> None:
        A = T.match_buffer(a, (1,), it.act_dtype, offset_factor=1, scope=a_scope)
        B = T.match_buffer(b, (lanes, 1), it.weight_dtype, offset_factor=1, scope=b_scope)
        C = T.match_buffer(c, (lanes,), acc, offset_factor=1, scope=c_scope)
        with T.sblock("root"):
            T.reads(C[0:lanes], A[0:1], B[0:lanes, 0:1])
            T.writes(C[0:lanes])
            for i in T.serial(0, lanes):
                for _k in T.serial(0, 1):
                    with T.sblock("update"):
                        vi = T.axis.spatial(lanes, i)
                        C[vi] = C[vi] + T.cast(A[0], acc) * T.cast(B[vi, 0], acc)

    return desc1 if depth == 1 else desc


def implementation(it: Intrinsic, parts=(), call=None, c_lanes: int | None = None):
    """The implementation PrimFunc of `it`: the buffers of its description and, as body, either
    `parts`, for each of one or two contiguous parts of C `(first lane, lanes, value(T, A, B,
    C))` stored there, or `call(T, A, B, C)` evaluated (an external function that updates C in
    place); each value one expression. `c_lanes`: C's length where it is not `it.lanes`
    (several partial sums per output channel)."""
    from accelsim.core.tvm_env import import_tvm

    import_tvm()
    from tvm.script import tirx as T

    lanes = c_lanes or it.lanes
    ew = it.kind == "elementwise"
    a_shape, b_shape = _shapes(it)
    a_scope, b_scope, c_scope = it.scopes
    stores = call is None
    (lo0, n0, val0), *rest = parts if stores else [(0, 0, None)]
    two = bool(rest)
    lo1, n1, val1 = rest[0] if two else (lo0, n0, val0)
    bregion = tuple(slice(0, d) for d in b_shape)
    fa, fb, fc = it.offset_factors

    @T.prim_func(s_tir=True)
    def impl(a: T.handle, b: T.handle, c: T.handle) -> None:
        A = T.match_buffer(a, a_shape, it.act_dtype, offset_factor=fa, scope=a_scope)
        B = T.match_buffer(b, b_shape, it.weight_dtype, offset_factor=fb, scope=b_scope)
        C = T.match_buffer(c, (lanes,), it.acc_dtype, offset_factor=fc, scope=c_scope)
        with T.sblock("root"):
            if ew:
                T.reads(C[0:lanes], A[0:lanes], B[0:lanes])
            elif len(b_shape) == 3 or it.nibble_lanes:
                T.reads(C[0:lanes], A[0 : a_shape[0]], B[bregion])
            else:
                T.reads(C[0:lanes], A[0 : a_shape[0]], B[0:lanes, 0 : b_shape[-1]])
            T.writes(C[0:lanes])
            if stores:
                C[T.ramp(T.int32(lo0), 1, n0)] = val0(T, A, B, C)
                if two:
                    C[T.ramp(T.int32(lo1), 1, n1)] = val1(T, A, B, C)
            else:
                T.evaluate(call(T, A, B, C))

    return impl


def _llvm(T, name: str, dtype: str, *args):
    return T.call_llvm_pure_intrin(T.llvm_lookup_intrinsic_id(name), *args, dtype=dtype)


def _splat(T, A, dtype: str, n: int, word: str, lanes: int, as_dtype: str):
    """The `n` activations of A, reinterpreted as one `word`, broadcast `lanes` times and
    reinterpreted as `as_dtype`: every lane (group) of the instruction sees the same A."""
    v = T.Broadcast(T.reinterpret(A.vload([0], f"{dtype}x{n}"), dtype=word), lanes)
    return v if as_dtype == f"{word}x{lanes}" else T.reinterpret(v, dtype=as_dtype)


def _unpack4(T, packed, nbytes: int):
    """int8 x nbytes holding 2*nbytes nibbles -> int8 x (2*nbytes), in registers."""
    u = T.Cast(f"uint16x{nbytes}", T.reinterpret(packed, dtype=f"uint8x{nbytes}"))
    both = T.bitwise_or(
        T.bitwise_and(u, T.Broadcast(T.uint16(0x000F), nbytes)),
        T.bitwise_and(
            T.shift_left(u, T.Broadcast(T.uint16(4), nbytes)), T.Broadcast(T.uint16(0x0F00), nbytes)
        ),
    )
    v = T.reinterpret(both, dtype=f"int8x{2 * nbytes}")
    eight = T.Broadcast(T.int8(8), 2 * nbytes)
    return T.bitwise_xor(v, eight) - eight


def _weights8(T, B, it: Intrinsic, first: int, n: int):
    """Elements [first, first + n) of the packed weight block as int8 x n (4-bit weights
    unpacked from the whole block, which is then at most 16 bytes)."""
    if it.weight_bits == 4:
        nbytes = it.lanes * it.packed_depth
        full = _unpack4(T, B.vload([0, 0], dtype=f"int8x{nbytes}"), nbytes)
        if n == 2 * nbytes:
            return full
        return (
            T.vectorlow(full, dtype=f"int8x{n}")
            if first == 0
            else T.vectorhigh(full, dtype=f"int8x{n}")
        )
    return B.vload([first // it.depth, first % it.depth], dtype=f"int8x{n}")


def _sdot_impl(it: Intrinsic):
    """4 int32 lanes x 4 int8 products: the four activations as one word splatted to the
    four lanes of SDOT's second operand."""

    def value(T, A, B, C):
        return _llvm(
            T,
            "llvm.aarch64.neon.sdot.v4i32.v16i8",
            "int32x4",
            C[T.ramp(T.int32(0), 1, 4)],
            _weights8(T, B, it, 0, 16),
            _splat(T, A, "int8", 4, "int32", 4, "int8x16"),
        )

    return implementation(it, [(0, 4, value)])


def _sdot_lane_impl(it: Intrinsic):
    """4 int32 lanes x 16 int8 products: one 16-byte load of activations, then four SDOTs by
    element (`sdot v.4s, v.16b, v.4b[j]`), each against the weights of its group of 4 input
    channels (`[4 groups][4 lanes][4]`). One load of 16 activations serves the four, where
    `sdot` broadcasts each group of 4 with its own LD1R and address arithmetic (ruy's and
    XNNPACK's "by element" microkernels)."""
    groups = it.depth // 4

    def value(T, A, B, C):
        words = T.reinterpret(A.vload([0], "int8x16"), dtype="int32x4")
        acc = C[T.ramp(T.int32(0), 1, 4)]
        for j in range(groups):
            lane = T.reinterpret(_pick(T, [words], [j] * 4), dtype="int8x16")
            acc = _llvm(T, _SDOT, "int32x4", acc, B.vload([j, 0, 0], dtype="int8x16"), lane)
        return acc

    return implementation(it, [(0, 4, value)])


def _sdot_lane_w4_impl(it: Intrinsic):
    """As `sdot_lane` for 8 output lanes of 4-bit weights (`[4 groups][4 lanes][4]` bytes,
    lanes i and i + 4 sharing a byte): per group one 16-byte load, SHL #4 for lanes 0-3 and
    AND #0xF0 for lanes 4-7 (16 x w, `nibble16`), and two SDOTs by element. One ALU
    instruction per SDOT on top of the 8-bit kernel, half its weight loads."""
    groups = it.depth // 4

    def part(first):
        def value(T, A, B, C):
            words = T.reinterpret(A.vload([0], "int8x16"), dtype="int32x4")
            acc = C[T.ramp(T.int32(first), 1, 4)]
            for j in range(groups):
                v = B.vload([j, 0, 0], dtype="int8x16")
                w = (
                    T.shift_left(v, T.Broadcast(T.int8(4), 16))
                    if first == 0
                    else T.bitwise_and(v, T.Broadcast(T.int8(-16), 16))
                )
                lane = T.reinterpret(_pick(T, [words], [j] * 4), dtype="int8x16")
                acc = _llvm(T, _SDOT, "int32x4", acc, w, lane)
            return acc

        return (first, 4, value)

    return implementation(it, [part(0), part(4)])


def _fmla_lane_impl(it: Intrinsic):
    """4 float32 lanes x 4 products: one 16-byte load of 4 activations, then four FMLAs by
    element (`fmla v.4s, v.4s, v.s[j]`), each against the 4 output channels' weights of input
    channel j (`[4][4 lanes][1]`): one load per 4 activations, where the vectorized kernel
    loads each activation with its own LDR S. The products are summed in input-channel order,
    as before."""

    def value(T, A, B, C):
        a = A.vload([0], "float32x4")
        acc = C[T.ramp(T.int32(0), 1, 4)]
        for j in range(it.depth):
            acc = acc + B.vload([j, 0, 0], dtype="float32x4") * _pick(T, [a], [j] * 4)
        return acc

    return implementation(it, [(0, 4, value)])


def _smull_sadalp_impl(it: Intrinsic):
    """Two halves of the output lanes, each: SMULL (widening multiply of the weights by the
    pair of activations splatted) then SADALP (pairwise add-accumulate into the wider
    accumulators). int8: 8 lanes x 2 of int16 products into int32; int16: 4 lanes x 2 of int32
    products into int64 (the wide path of 16-bit activations)."""
    half = it.lanes // 2
    wide = it.act_dtype == "int16"
    prod = "int32x4" if wide else "int16x8"
    smull = "llvm.aarch64.neon.smull.v4i32" if wide else "llvm.aarch64.neon.smull.v8i16"
    addp = (
        "llvm.aarch64.neon.saddlp.v2i64.v4i32" if wide else "llvm.aarch64.neon.saddlp.v4i32.v8i16"
    )
    n = half * 2  # weight elements of one half

    def weights(T, B, first):
        if wide:
            return B.vload([first // 2, 0], dtype=f"int16x{n}")
        return _weights8(T, B, it, first, n)

    def part(first):
        def value(T, A, B, C):
            acts = _splat(
                T, A, it.act_dtype, 2, "int32" if wide else "int16", half, f"{it.act_dtype}x{n}"
            )
            return C[T.ramp(T.int32(first // 2), 1, half)] + _llvm(
                T, addp, f"{it.acc_dtype}x{half}", _llvm(T, smull, prod, weights(T, B, first), acts)
            )

        return (first // 2, half, value)

    return implementation(it, [part(0), part(n)])


def _sdot_w4_impl(it: Intrinsic):
    """Two SDOT vectors (8 lanes) from one 16-byte block of 4-bit weights: the low nibbles
    shifted up (SHL #4) for lanes 0-3, the high nibbles masked (AND #0xF0) for lanes 4-7, so
    each accumulates 16 x the products (the kernel shifts its accumulators right by 4)."""

    def part(first):
        def value(T, A, B, C):
            v = B.vload([0, 0], dtype="int8x16")
            w = (
                T.shift_left(v, T.Broadcast(T.int8(4), 16))
                if first == 0
                else T.bitwise_and(v, T.Broadcast(T.int8(-16), 16))
            )
            return _llvm(
                T,
                _SDOT,
                "int32x4",
                C[T.ramp(T.int32(first), 1, 4)],
                w,
                _splat(T, A, "int8", 4, "int32", 4, "int8x16"),
            )

        return (first, 4, value)

    return implementation(it, [part(0), part(4)])


def _smull_smlal_impl(it: Intrinsic):
    """Jacob et al. 2018, Appendix B: two products summed in the doubled width before the
    pairwise widening. The block is packed in pairs, `[2][lanes][2]`: per half of the output
    lanes, SMULL multiplies the lanes' first pair of weights by the first pair of activations
    (splatted), SMLAL adds the second pair's products to the same lanes, and SADALP adds each
    lane's two sums to its accumulator. int8: 16 multiply-accumulates per SMULL + SMLAL + SADALP
    into int32, exact when no weight is -128 (`weight_min`): |sum| <= 2 x 128 x 127 < 2^15.
    int16: 8 into int64 (where `smull_sadalp` needs two SADALPs), exact when no weight is
    -32768: 2 x 32768 x 32767 < 2^31."""
    half = it.lanes // 2
    wide = it.act_dtype == "int16"
    smull, addp = _SMULL16 if wide else _SMULL8
    elem, word, prod_t = ("int16", "int32", "int32x4") if wide else ("int8", "int16", "int16x8")
    n = half * 2  # weights of one half and one pair: `half` lanes x 2

    def part(first):
        def value(T, A, B, C):
            def prod(pair):
                w = B.vload([pair, first, 0], dtype=f"{elem}x{n}")
                acts = T.reinterpret(A.vload([2 * pair], f"{elem}x2"), dtype=word)
                a = T.reinterpret(T.Broadcast(acts, half), dtype=f"{elem}x{n}")
                return _llvm(T, smull, prod_t, w, a)

            return C[T.ramp(T.int32(first), 1, half)] + _llvm(
                T, addp, f"{it.acc_dtype}x{half}", prod(0) + prod(1)
            )

        return (first, half, value)

    return implementation(it, [part(0), part(half)])


def _vrmpy_impl(it: Intrinsic):
    """32 output lanes x 4 reduction elements: one HVX `vrmpy` (128-byte vectors) with the four
    activations splatted to every 32-bit lane. Signed int8 activations use the byte x byte form
    (`Vx.w += vrmpy(Vu.b, Vv.b)`, V6_vrmpybv), uint8 ones the unsigned-byte x byte form
    (`Vx.w += vrmpy(Vu.ub, Vv.b)`, V6_vrmpybusv, activations as the unsigned operand Vu)."""
    unsigned_acts = it.act_dtype == "uint8"

    def value(T, A, B, C):
        w = T.reinterpret(_weights8(T, B, it, 0, 128), dtype="int32x32")
        a = _splat(T, A, it.act_dtype, 4, "int32", 32, "int32x32")
        return _llvm(
            T,
            it.llvm[0],
            "int32x32",
            C[T.ramp(T.int32(0), 1, 32)],
            *((a, w) if unsigned_acts else (w, a)),
        )

    return implementation(it, [(0, 32, value)])


def _add64(T, lo, hi, s, n: int):
    """(lo, hi) + sign-extended s on n 32-bit lanes: the low words wrap, the high words take the
    sign of s and the carry out of the low word (unsigned lo + s < lo)."""
    lo2 = lo + s
    carry = T.Cast(f"int32x{n}", T.Cast(f"uint32x{n}", lo2) < T.Cast(f"uint32x{n}", lo))
    return lo2, hi + T.shift_right(s, T.Broadcast(T.int32(31), n)) + carry


def _pick(T, vecs, index):
    return T.Shuffle(vecs, [T.int32(i) for i in index])


def _vdmpy_impl(it: Intrinsic):
    """32 int64 lanes x 2 int16 products: `Vd.w = vdmpy(Vu.h, Vv.h):sat` forms each lane's pair
    sum exactly in 32 bits (|x| <= 2^15, |w| <= 2^15 - 1, so |sum| < 2^31: the saturation never
    acts; `Intrinsic.weight_min` keeps -2^15 weights away), then a 64-bit add on 32-bit lanes:
    the accumulators' low and high words are split apart (vdeal), added to (`_add64`) and
    interleaved back (vshuff). HVX has no 64-bit lanes, and LLVM scalarizes a <32 x i64> add."""

    def value(T, A, B, C):
        words = T.reinterpret(C[T.ramp(T.int32(0), 1, 32)], dtype="int32x64")
        s = _llvm(
            T,
            it.llvm[0],
            "int32x32",
            T.reinterpret(B.vload([0, 0], dtype="int16x64"), dtype="int32x32"),
            _splat(T, A, "int16", 2, "int32", 32, "int32x32"),
        )
        lo, hi = _add64(
            T, _pick(T, [words], range(0, 64, 2)), _pick(T, [words], range(1, 64, 2)), s, 32
        )
        both = [j for i in range(32) for j in (i, 32 + i)]
        return T.reinterpret(_pick(T, [lo, hi], both), dtype="int64x32")

    return implementation(it, [(0, 32, value)])


def _vmpy_impl(it: Intrinsic):
    """64 int64 lanes (channels) x 1 tap of a depthwise convolution: `Vdd.w = vmpy(Vu.h, Vv.h)`
    multiplies 64 int16 activations by 64 int16 weights into exact 32-bit products, even
    channels in the low vector of the pair, odd ones in the high; each half is added to its
    channels' int64 accumulators as in `_vdmpy_impl`."""

    def value(T, A, B, C):
        words = T.reinterpret(C[T.ramp(T.int32(0), 1, 64)], dtype="int32x128")
        prod = _llvm(
            T,
            it.llvm[0],
            "int32x64",
            T.reinterpret(A.vload([0], dtype="int16x64"), dtype="int32x32"),
            T.reinterpret(B.vload([0], dtype="int16x64"), dtype="int32x32"),
        )
        # channel c's words are 2c (low) and 2c + 1 (high): even channels at 4i, 4i + 1
        even = _add64(
            T,
            _pick(T, [words], range(0, 128, 4)),
            _pick(T, [words], range(1, 128, 4)),
            _pick(T, [prod], range(0, 32)),
            32,
        )
        odd = _add64(
            T,
            _pick(T, [words], range(2, 128, 4)),
            _pick(T, [words], range(3, 128, 4)),
            _pick(T, [prod], range(32, 64)),
            32,
        )
        order = [j for i in range(32) for j in (i, 32 + i, 64 + i, 96 + i)]
        return T.reinterpret(_pick(T, [*even, *odd], order), dtype="int64x64")

    return implementation(it, [(0, 64, value)])


# ------------------------------------------------------------------------------------------
# the table
# ------------------------------------------------------------------------------------------


def _vpdpbusd_impl(it: Intrinsic):
    """x86 VNNI: `lanes` int32 accumulators each += 4 u8 x s8 products (`vpdpbusd`: zmm with
    AVX512-VNNI, ymm with AVX-VNNI). The four activations are one dword broadcast to every lane
    (a broadcast load). Signed int8 activations arrive flipped to u8 (`act_offset`, the trick
    oneDNN and MLAS use): flipping here would cost an ALU op per broadcast in the inner loop."""
    lanes = it.lanes
    name = f"llvm.x86.avx512.vpdpbusd.{32 * lanes}"

    def value(T, A, B, C):
        word = T.reinterpret(A.vload([0], f"{it.act_dtype}x4"), dtype="int32")
        return _llvm(
            T,
            name,
            f"int32x{lanes}",
            C[T.ramp(T.int32(0), 1, lanes)],
            # LLVM 22 types both byte operands as <N x i8> (older LLVMs: <N/4 x i32>)
            T.reinterpret(T.Broadcast(word, lanes), dtype=f"int8x{4 * lanes}"),
            _weights8(T, B, it, 0, 4 * lanes),
        )

    return implementation(it, [(0, lanes, value)])


def _entry(
    name,
    instruction,
    requires,
    act,
    wbits,
    acc,
    lanes,
    depth,
    llvm,
    impl_fn,
    doc,
    weight_min=None,
    kind="dot",
    act_offset=0,
    desc=None,
):
    return Intrinsic(
        name=name,
        key=f"accelsim.{name}.{act}.w{wbits}",
        act_dtype=act,
        weight_bits=wbits,
        acc_dtype=acc,
        lanes=lanes,
        depth=depth,
        impl=impl_fn,
        instruction=instruction,
        requires=tuple(requires),
        llvm=tuple(llvm),
        doc=doc,
        weight_min=weight_min,
        kind=kind,
        act_offset=act_offset,
        desc=desc,
    )


_SDOT = "llvm.aarch64.neon.sdot.v4i32.v16i8"
_SMULL8 = ("llvm.aarch64.neon.smull.v8i16", "llvm.aarch64.neon.saddlp.v4i32.v8i16")
_SMULL16 = ("llvm.aarch64.neon.smull.v4i32", "llvm.aarch64.neon.saddlp.v2i64.v4i32")
INTRINSICS: tuple[Intrinsic, ...] = (
    _entry(
        "sdot",
        "sdot v.4s, v.16b, v.16b",
        ["neon", "dotprod"],
        "int8",
        8,
        "int32",
        4,
        4,
        [_SDOT],
        _sdot_impl,
        "Armv8.2-A dot product: 4 int32 lanes each += 4 int8 x int8 products",
    ),
    Intrinsic(
        name="sdot_lane",
        key="accelsim.sdot_lane.int8.w8",
        act_dtype="int8",
        weight_bits=8,
        acc_dtype="int32",
        lanes=4,
        depth=16,
        impl=_sdot_lane_impl,
        instruction="ldr q; sdot v.4s, v.16b, v.4b[0..3]",
        requires=("neon", "dotprod"),
        llvm=(_SDOT,),
        doc="Armv8.2-A dot product by element: 16 int8 activations loaded once, four SDOTs "
        "(4 int32 lanes each += 4 products) take one 32-bit element of them each",
        group=4,
        # a reduction of 4 calls (a 1x1 conv over 64 channels) is unrolled whole by LLVM, which
        # then hoists the tile's 7 x 4 broadcast activations out of the output-channel loop
        # and spills them (cortex-a55 MobileNet v2 features.8.conv.0.0: 5.1 MACs/cycle
        # against 6.3 with `sdot`); 6 calls (96 channels) stay in registers
        min_calls=6,
    ),
    Intrinsic(
        name="sdot_lane",
        key="accelsim.sdot_lane.int8.w4x16",
        act_dtype="int8",
        weight_bits=4,
        acc_dtype="int32",
        lanes=8,
        depth=16,
        impl=_sdot_lane_w4_impl,
        instruction="ldr q; shl v.16b, #4 / and v.16b, #0xf0; sdot v.4s, v.16b, v.4b[0..3]",
        requires=("neon", "dotprod"),
        llvm=(_SDOT,),
        doc="as sdot_lane, int4 weights of two lane halves per byte taken as 16 x w in place "
        "(one SHL or AND per SDOT); accumulators hold 16 x the sums",
        group=4,
        nibble_lanes=True,
        min_calls=6,
    ),
    Intrinsic(
        name="fmla_lane",
        key="accelsim.fmla_lane.float32",
        act_dtype="float32",
        weight_bits=32,
        weight_type="float32",
        acc_dtype="float32",
        lanes=4,
        depth=4,
        impl=_fmla_lane_impl,
        instruction="ldr q; fmla v.4s, v.4s, v.s[0..3]",
        requires=("neon",),
        doc="Armv8 NEON fp32: 4 activations loaded once, four FMLAs by element",
        group=1,
        min_calls=6,  # as sdot_lane: a shorter reduction is unrolled whole and its
        # activations hoisted out of the output-channel loop
    ),
    Intrinsic(
        name="sdot",
        key="accelsim.sdot.int8.w4x16",
        act_dtype="int8",
        weight_bits=4,
        acc_dtype="int32",
        lanes=8,
        depth=4,
        impl=_sdot_w4_impl,
        instruction="shl v.16b, #4 / and v.16b, #0xf0; sdot v.4s, v.16b, v.16b",
        requires=("neon", "dotprod"),
        llvm=(_SDOT,),
        doc="as sdot, int4 weights of two lane halves per byte taken as 16 x w in place "
        "(one SHL or AND per 16 weights); accumulators hold 16 x the sums",
        nibble_lanes=True,
    ),
    _entry(
        "smull_sadalp",
        "smull v.8h, v.8b, v.8b; sadalp v.4s, v.8h",
        ["neon"],
        "int8",
        8,
        "int32",
        8,
        2,
        _SMULL8,
        _smull_sadalp_impl,
        "Armv8.0 NEON: widening multiply then pairwise add-accumulate into int32",
    ),
    _entry(
        "smull_sadalp",
        "smull v.8h, v.8b, v.8b; sadalp v.4s, v.8h",
        ["neon"],
        "int8",
        4,
        "int32",
        8,
        2,
        _SMULL8,
        _smull_sadalp_impl,
        "as smull_sadalp, int4 weights unpacked to int8 in registers",
    ),
    _entry(
        "smull_sadalp",
        "smull v.4s, v.4h, v.4h; sadalp v.2d, v.4s",
        ["neon"],
        "int16",
        16,
        "int64",
        4,
        2,
        _SMULL16,
        _smull_sadalp_impl,
        "16-bit operands: int16 x int16 -> int32 products, pairwise accumulated into int64",
    ),
    Intrinsic(
        name="smull_smlal",
        key="accelsim.smull_smlal.int8.w8",
        act_dtype="int8",
        weight_bits=8,
        acc_dtype="int32",
        lanes=8,
        depth=4,
        impl=_smull_smlal_impl,
        instruction="smull v.8h, v.8b, v.8b; smlal v.8h, v.8b, v.8b; sadalp v.4s, v.8h",
        requires=("neon",),
        llvm=_SMULL8,
        doc="Armv8.0 NEON, Jacob et al. Appendix B: two int8 products summed in int16 "
        "(weights in the restricted range), then pairwise add-accumulate into int32",
        weight_min=-127,
        group=2,
    ),
    Intrinsic(
        name="smull_smlal",
        key="accelsim.smull_smlal.int16.w16",
        act_dtype="int16",
        weight_bits=16,
        acc_dtype="int64",
        lanes=4,
        depth=4,
        impl=_smull_smlal_impl,
        instruction="smull v.4s, v.4h, v.4h; smlal v.4s, v.4h, v.4h; sadalp v.2d, v.4s",
        requires=("neon",),
        llvm=_SMULL16,
        doc="16-bit operands: two int16 x int16 products summed in int32 (weights in the "
        "restricted range), then pairwise add-accumulate into int64: one SADALP per 8 "
        "multiply-accumulates where smull_sadalp needs two",
        weight_min=-(2**15 - 1),
        group=2,
    ),
    _entry(
        "vrmpy",
        "v.w += vrmpy(v.b, v.b)",
        ["hvx"],
        "int8",
        8,
        "int32",
        32,
        4,
        ["llvm.hexagon.V6.vrmpybv.acc.128B"],
        _vrmpy_impl,
        "HVX 128B: 32 int32 lanes each += 4 int8 x int8 products (signed activations)",
    ),
    _entry(
        "vrmpy",
        "v.w += vrmpy(v.b, v.b)",
        ["hvx"],
        "int8",
        4,
        "int32",
        32,
        4,
        ["llvm.hexagon.V6.vrmpybv.acc.128B"],
        _vrmpy_impl,
        "as vrmpy, int4 weights unpacked to int8 in vector registers",
    ),
    _entry(
        "vrmpy",
        "v.w += vrmpy(v.ub, v.b)",
        ["hvx"],
        "uint8",
        8,
        "int32",
        32,
        4,
        ["llvm.hexagon.V6.vrmpybusv.acc.128B"],
        _vrmpy_impl,
        "HVX 128B, uint8 activations x int8 weights",
    ),
    _entry(
        "vrmpy",
        "v.w += vrmpy(v.ub, v.b)",
        ["hvx"],
        "uint8",
        4,
        "int32",
        32,
        4,
        ["llvm.hexagon.V6.vrmpybusv.acc.128B"],
        _vrmpy_impl,
        "HVX 128B, uint8 activations x int4 weights unpacked in registers",
    ),
    _entry(
        "vdmpy",
        "v.w = vdmpy(v.h, v.h):sat",
        ["hvx"],
        "int16",
        16,
        "int64",
        32,
        2,
        ["llvm.hexagon.V6.vdmpyhvsat.128B"],
        _vdmpy_impl,
        "HVX 128B: 32 lanes x 2 int16 x int16 products summed in 32 bits, added to int64 "
        "accumulators held as low/high words (carry by unsigned compare)",
        weight_min=-(2**15 - 1),
    ),
    _entry(
        "vmpy",
        "v.w = vmpy(v.h, v.h)",
        ["hvx"],
        "int16",
        16,
        "int64",
        64,
        1,
        ["llvm.hexagon.V6.vmpyhv.128B"],
        _vmpy_impl,
        "HVX 128B depthwise tap: 64 channels of int16 x int16 -> exact 32-bit products, added "
        "to int64 accumulators held as low/high words",
        kind="elementwise",
    ),
)

# x86 VNNI (host): u8 x s8 dot products; signed activations with the +128 offset
_VNNI512 = ("llvm.x86.avx512.vpdpbusd.512",)
_VNNI256 = ("llvm.x86.avx512.vpdpbusd.256",)
INTRINSICS = INTRINSICS + tuple(
    _entry(
        name,
        f"vpdpbusd {reg}, {reg}, {reg}",
        requires,
        "uint8",
        8,
        "int32",
        lanes,
        4,
        llvm,
        _vpdpbusd_impl,
        f"{isa}: {lanes} int32 lanes each += 4 u8 x s8 products (int8 activations flipped "
        "to u8, x + 128, in the input stage)",
        act_offset=128,
    )
    for name, reg, requires, lanes, llvm, isa in (
        ("vpdpbusd", "zmm", ["avx512vnni", "avx512bw"], 16, _VNNI512, "AVX512-VNNI"),
        ("vpdpbusd_ymm", "ymm", ["avxvnni"], 8, _VNNI256, "AVX-VNNI"),
    )
)

NAMES: tuple[str, ...] = tuple(dict.fromkeys(i.name for i in INTRINSICS))
_REGISTERED: set[str] = set()


def register(*entries: Intrinsic) -> None:
    """Add `entries` to the table: an instruction family whose description and implementation
    live in their own module (`accelsim.lower.i8mm`) registers itself here on import."""
    global INTRINSICS, NAMES
    INTRINSICS = INTRINSICS + tuple(e for e in entries if e not in INTRINSICS)
    NAMES = tuple(dict.fromkeys(i.name for i in INTRINSICS))


def kernel_weight_bits(weight_bits: int, act_bits: int) -> int:
    """The weight width the kernel computes with: w8a16 (TFLite's 16x8) runs the 16-bit
    kernel on int8 weights widened to int16 when packed (smull/sadalp .4h, vdmpy/vmpy .h on
    exact copies; twice the weight bytes of widening in registers)."""
    return 16 if act_bits == 16 and weight_bits == 8 else weight_bits


def variants(name: str) -> list[Intrinsic]:
    return [i for i in INTRINSICS if i.name == name]


def select(
    names, features, act_dtype: str, weight_bits: int, kind: str = "dot"
) -> Intrinsic | None:
    """The first intrinsic in `names` of this `kind` that the target's features allow and that
    has a variant for these operand types (int8 activations also take an unsigned variant with
    an `act_offset`); None when none applies (the schedule then vectorizes)."""
    acts = (act_dtype, "uint8") if act_dtype == "int8" else (act_dtype,)
    for name in names:
        for act in acts:
            for it in variants(name):
                if (
                    it.kind == kind
                    and set(it.requires) <= set(features)
                    and it.act_dtype == act
                    and (act == act_dtype or it.act_offset)
                    and it.weight_bits == weight_bits
                ):
                    return it
    return None


def earliest(names, *its: Intrinsic | None) -> Intrinsic | None:
    """Of intrinsics chosen by kind (`select`), the one a recipe's `tensorize` list `names`
    names first: lowering and the analytic model's `schedule.tile_of` rank kinds this way."""
    found = [it for it in its if it is not None]
    return min(found, key=lambda it: list(names).index(it.name), default=None)


def ensure_registered(it: Intrinsic) -> str:
    """Register `it` with TVM (once per process); returns its TensorIntrin name."""
    if it.key in _REGISTERED:
        return it.key
    from accelsim.core.tvm_env import import_tvm

    import_tvm()
    from tvm.s_tir import TensorIntrin

    # TVM's registry outlives a reload of this module (tests): register only once
    if TensorIntrin.get(it.key, allow_missing=True) is None:
        TensorIntrin.register(it.key, (it.desc or _desc)(it), it.impl(it))
    _REGISTERED.add(it.key)
    return it.key
