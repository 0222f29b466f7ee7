"""The tensor-intrinsic table: hardware dot-product instructions that schedules tensorize with.

Each `Intrinsic` is one instruction pattern that computes a small block of a contraction,

    C[i] += A[k] * B[i, k]      for i < lanes (output channels), k < depth (reduction),

with A a few activations (broadcast to every lane), B a `lanes x depth` block of packed weights
and C a vector of accumulators. The weight packing of a lowered conv2d / dense follows the
intrinsic: `[O/lanes] ... [I/depth][lanes][depth]`, so the B block is one contiguous vector load.
4-bit weights are stored two per byte along k (`byte = lo | hi << 4`, k even in the low nibble)
and unpacked to 8 bit in registers by the intrinsic's implementation (zero-extend to 16 bit, mask
and shift the two nibbles into the two bytes, sign-extend with `(v ^ 8) - 8`).

A recipe names intrinsics by their short `name` (`tensorize: [sdot, smull_sadalp]`); the first one
whose `requires` features the target has and which has a variant for the layer's operand types is
used. The table is data: adding an instruction is adding an entry, no per-target code.

Registered with `tvm.s_tir.TensorIntrin.register` on first use (importing TVM's own
`tvm.s_tir.tensor_intrin` costs 50 s). Each implementation is written as single expressions, since
TVMScript `let` bindings become heap workspace allocations on every call (see TVM_NOTES.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable



@dataclass(frozen=True)
class Intrinsic:
    """One variant of a tensor intrinsic (fixed operand types)."""

    name: str               # recipe name, e.g. "sdot"
    key: str                # registered TensorIntrin name
    instruction: str        # what the assembly shows, e.g. "sdot v.4s, v.16b, v.16b"
    requires: tuple[str, ...]  # target `codegen.features` it needs
    act_dtype: str
    weight_bits: int        # 4: two weights per byte, unpacked in registers
    acc_dtype: str
    lanes: int              # output channels per call (the `oc.v` loop)
    depth: int              # reduction elements per call (the `ic.v` loop)
    llvm: tuple[str, ...]   # LLVM intrinsics the implementation calls
    doc: str = ""

    @property
    def weight_dtype(self) -> str:
        return "int8" if self.weight_bits <= 8 else f"int{self.weight_bits}"

    @property
    def packed_depth(self) -> int:
        """Bytes (elements of the weight dtype) per lane in the packed weight block."""
        return self.depth // 2 if self.weight_bits == 4 else self.depth


def nibble(byte, k):
    """The signed 4-bit weight at position `k % 2` of a packed byte: low nibble for even k.

    Shared by the lowered computes and the intrinsic descriptions so that tensorize's
    structural match sees identical expressions.
    """
    from accelsim.tvm_env import import_tvm
    tvm = import_tvm()
    tirx = tvm.tirx
    sh = (tirx.const(4, "int8") - tirx.const(4, "int8") * (k % 2).astype("int8"))
    return tirx.shift_right(tirx.shift_left(byte, sh), tirx.const(4, "int8"))


# ------------------------------------------------------------------------------------------
# descriptions and implementations
# ------------------------------------------------------------------------------------------

def _desc(lanes: int, depth: int, a_dt: str, acc_dt: str, w4: bool):
    from accelsim.tvm_env import import_tvm
    import_tvm()
    from tvm.script import tirx as T

    pdepth = depth // 2 if w4 else depth
    w_dt = "int8" if w4 else a_dt if a_dt != "uint8" else "int8"
    if a_dt == "int16":
        w_dt = "int16"

    if w4:
        @T.prim_func(s_tir=True)
        def desc(a: T.handle, b: T.handle, c: T.handle) -> None:
            A = T.match_buffer(a, (depth,), a_dt, offset_factor=1)
            B = T.match_buffer(b, (lanes, pdepth), w_dt, offset_factor=1)
            C = T.match_buffer(c, (lanes,), acc_dt, offset_factor=1)
            with T.sblock("root"):
                T.reads(C[0:lanes], A[0:depth], B[0:lanes, 0:pdepth])
                T.writes(C[0:lanes])
                for i in T.serial(0, lanes):
                    for k in T.serial(0, depth):
                        with T.sblock("update"):
                            vi, vk = T.axis.remap("SR", [i, k])
                            C[vi] = C[vi] + T.cast(A[vk], acc_dt) * T.cast(
                                nibble(B[vi, vk // 2], vk), acc_dt)
    else:
        @T.prim_func(s_tir=True)
        def desc(a: T.handle, b: T.handle, c: T.handle) -> None:
            A = T.match_buffer(a, (depth,), a_dt, offset_factor=1)
            B = T.match_buffer(b, (lanes, depth), w_dt, offset_factor=1)
            C = T.match_buffer(c, (lanes,), acc_dt, offset_factor=1)
            with T.sblock("root"):
                T.reads(C[0:lanes], A[0:depth], B[0:lanes, 0:depth])
                T.writes(C[0:lanes])
                for i in T.serial(0, lanes):
                    for k in T.serial(0, depth):
                        with T.sblock("update"):
                            vi, vk = T.axis.remap("SR", [i, k])
                            C[vi] = C[vi] + T.cast(A[vk], acc_dt) * T.cast(B[vi, vk], acc_dt)
    return desc


def _unpack4(T, packed, nbytes: int):
    """int8 x nbytes holding 2*nbytes nibbles -> int8 x (2*nbytes), in registers."""
    u = T.Cast(f"uint16x{nbytes}", T.reinterpret(packed, dtype=f"uint8x{nbytes}"))
    both = T.bitwise_or(T.bitwise_and(u, T.Broadcast(T.uint16(0x000F), nbytes)),
                        T.bitwise_and(T.shift_left(u, T.Broadcast(T.uint16(4), nbytes)),
                                      T.Broadcast(T.uint16(0x0F00), nbytes)))
    v = T.reinterpret(both, dtype=f"int8x{2 * nbytes}")
    eight = T.Broadcast(T.int8(8), 2 * nbytes)
    return T.bitwise_xor(v, eight) - eight


def _sdot_impl(w4: bool):
    from tvm.script import tirx as T

    if w4:
        @T.prim_func(s_tir=True)
        def impl(a: T.handle, b: T.handle, c: T.handle) -> None:
            A = T.match_buffer(a, (4,), "int8", offset_factor=1)
            B = T.match_buffer(b, (4, 2), "int8", offset_factor=1)
            C = T.match_buffer(c, (4,), "int32", offset_factor=1)
            with T.sblock("root"):
                T.reads(C[0:4], A[0:4], B[0:4, 0:2])
                T.writes(C[0:4])
                C[T.ramp(T.int32(0), 1, 4)] = T.call_llvm_pure_intrin(
                    T.llvm_lookup_intrinsic_id("llvm.aarch64.neon.sdot.v4i32.v16i8"),
                    C[T.ramp(T.int32(0), 1, 4)],
                    _unpack4(T, B.vload([0, 0], dtype="int8x8"), 8),
                    T.reinterpret(T.Broadcast(T.reinterpret(A.vload([0], "int8x4"),
                                                            dtype="int32"), 4),
                                  dtype="int8x16"),
                    dtype="int32x4")
    else:
        @T.prim_func(s_tir=True)
        def impl(a: T.handle, b: T.handle, c: T.handle) -> None:
            A = T.match_buffer(a, (4,), "int8", offset_factor=1)
            B = T.match_buffer(b, (4, 4), "int8", offset_factor=1)
            C = T.match_buffer(c, (4,), "int32", offset_factor=1)
            with T.sblock("root"):
                T.reads(C[0:4], A[0:4], B[0:4, 0:4])
                T.writes(C[0:4])
                C[T.ramp(T.int32(0), 1, 4)] = T.call_llvm_pure_intrin(
                    T.llvm_lookup_intrinsic_id("llvm.aarch64.neon.sdot.v4i32.v16i8"),
                    C[T.ramp(T.int32(0), 1, 4)],
                    B.vload([0, 0], dtype="int8x16"),
                    T.reinterpret(T.Broadcast(T.reinterpret(A.vload([0], "int8x4"),
                                                            dtype="int32"), 4),
                                  dtype="int8x16"),
                    dtype="int32x4")
    return impl


def _smull_sadalp_impl(w4: bool):
    """8 output lanes x 2 reduction elements: SMULL (int8 x int8 -> int16, two per output)
    then SADALP (pairwise add-accumulate int16 pairs into the int32 accumulators)."""
    from tvm.script import tirx as T

    if w4:
        @T.prim_func(s_tir=True)
        def impl(a: T.handle, b: T.handle, c: T.handle) -> None:
            A = T.match_buffer(a, (2,), "int8", offset_factor=1)
            B = T.match_buffer(b, (8, 1), "int8", offset_factor=1)
            C = T.match_buffer(c, (8,), "int32", offset_factor=1)
            with T.sblock("root"):
                T.reads(C[0:8], A[0:2], B[0:8, 0:1])
                T.writes(C[0:8])
                C[T.ramp(T.int32(0), 1, 4)] = C[T.ramp(T.int32(0), 1, 4)] + T.call_llvm_pure_intrin(
                    T.llvm_lookup_intrinsic_id("llvm.aarch64.neon.saddlp.v4i32.v8i16"),
                    T.call_llvm_pure_intrin(
                        T.llvm_lookup_intrinsic_id("llvm.aarch64.neon.smull.v8i16"),
                        T.vectorlow(_unpack4(T, B.vload([0, 0], dtype="int8x8"), 8),
                                    dtype="int8x8"),
                        T.reinterpret(T.Broadcast(T.reinterpret(A.vload([0], "int8x2"),
                                                                dtype="int16"), 4),
                                      dtype="int8x8"),
                        dtype="int16x8"),
                    dtype="int32x4")
                C[T.ramp(T.int32(4), 1, 4)] = C[T.ramp(T.int32(4), 1, 4)] + T.call_llvm_pure_intrin(
                    T.llvm_lookup_intrinsic_id("llvm.aarch64.neon.saddlp.v4i32.v8i16"),
                    T.call_llvm_pure_intrin(
                        T.llvm_lookup_intrinsic_id("llvm.aarch64.neon.smull.v8i16"),
                        T.vectorhigh(_unpack4(T, B.vload([0, 0], dtype="int8x8"), 8),
                                     dtype="int8x8"),
                        T.reinterpret(T.Broadcast(T.reinterpret(A.vload([0], "int8x2"),
                                                                dtype="int16"), 4),
                                      dtype="int8x8"),
                        dtype="int16x8"),
                    dtype="int32x4")
    else:
        @T.prim_func(s_tir=True)
        def impl(a: T.handle, b: T.handle, c: T.handle) -> None:
            A = T.match_buffer(a, (2,), "int8", offset_factor=1)
            B = T.match_buffer(b, (8, 2), "int8", offset_factor=1)
            C = T.match_buffer(c, (8,), "int32", offset_factor=1)
            with T.sblock("root"):
                T.reads(C[0:8], A[0:2], B[0:8, 0:2])
                T.writes(C[0:8])
                C[T.ramp(T.int32(0), 1, 4)] = C[T.ramp(T.int32(0), 1, 4)] + T.call_llvm_pure_intrin(
                    T.llvm_lookup_intrinsic_id("llvm.aarch64.neon.saddlp.v4i32.v8i16"),
                    T.call_llvm_pure_intrin(
                        T.llvm_lookup_intrinsic_id("llvm.aarch64.neon.smull.v8i16"),
                        B.vload([0, 0], dtype="int8x8"),
                        T.reinterpret(T.Broadcast(T.reinterpret(A.vload([0], "int8x2"),
                                                                dtype="int16"), 4),
                                      dtype="int8x8"),
                        dtype="int16x8"),
                    dtype="int32x4")
                C[T.ramp(T.int32(4), 1, 4)] = C[T.ramp(T.int32(4), 1, 4)] + T.call_llvm_pure_intrin(
                    T.llvm_lookup_intrinsic_id("llvm.aarch64.neon.saddlp.v4i32.v8i16"),
                    T.call_llvm_pure_intrin(
                        T.llvm_lookup_intrinsic_id("llvm.aarch64.neon.smull.v8i16"),
                        B.vload([4, 0], dtype="int8x8"),
                        T.reinterpret(T.Broadcast(T.reinterpret(A.vload([0], "int8x2"),
                                                                dtype="int16"), 4),
                                      dtype="int8x8"),
                        dtype="int16x8"),
                    dtype="int32x4")
    return impl


def _smull_sadalp_i16_impl(w4: bool):
    """4 output lanes x 2 reduction elements of int16: SMULL (int16 x int16 -> int32) then
    SADALP into int64 accumulators (the wide path of 16-bit activations)."""
    from tvm.script import tirx as T
    assert not w4

    @T.prim_func(s_tir=True)
    def impl(a: T.handle, b: T.handle, c: T.handle) -> None:
        A = T.match_buffer(a, (2,), "int16", offset_factor=1)
        B = T.match_buffer(b, (4, 2), "int16", offset_factor=1)
        C = T.match_buffer(c, (4,), "int64", offset_factor=1)
        with T.sblock("root"):
            T.reads(C[0:4], A[0:2], B[0:4, 0:2])
            T.writes(C[0:4])
            C[T.ramp(T.int32(0), 1, 2)] = C[T.ramp(T.int32(0), 1, 2)] + T.call_llvm_pure_intrin(
                T.llvm_lookup_intrinsic_id("llvm.aarch64.neon.saddlp.v2i64.v4i32"),
                T.call_llvm_pure_intrin(
                    T.llvm_lookup_intrinsic_id("llvm.aarch64.neon.smull.v4i32"),
                    B.vload([0, 0], dtype="int16x4"),
                    T.reinterpret(T.Broadcast(T.reinterpret(A.vload([0], "int16x2"),
                                                            dtype="int32"), 2),
                                  dtype="int16x4"),
                    dtype="int32x4"),
                dtype="int64x2")
            C[T.ramp(T.int32(2), 1, 2)] = C[T.ramp(T.int32(2), 1, 2)] + T.call_llvm_pure_intrin(
                T.llvm_lookup_intrinsic_id("llvm.aarch64.neon.saddlp.v2i64.v4i32"),
                T.call_llvm_pure_intrin(
                    T.llvm_lookup_intrinsic_id("llvm.aarch64.neon.smull.v4i32"),
                    B.vload([2, 0], dtype="int16x4"),
                    T.reinterpret(T.Broadcast(T.reinterpret(A.vload([0], "int16x2"),
                                                            dtype="int32"), 2),
                                  dtype="int16x4"),
                    dtype="int32x4"),
                dtype="int64x2")
    return impl


def _vrmpy_impl(w4: bool, unsigned_acts: bool):
    """32 output lanes x 4 reduction elements: one HVX `vrmpy` (128-byte vectors) with the four
    activations splatted to every 32-bit lane. Signed int8 activations use the byte x byte form
    (`Vx.w += vrmpy(Vu.b, Vv.b)`, V6_vrmpybv), uint8 ones the unsigned-byte x byte form
    (`Vx.w += vrmpy(Vu.ub, Vv.b)`, V6_vrmpybusv, activations as the unsigned operand Vu)."""
    from tvm.script import tirx as T

    a_dt = "uint8" if unsigned_acts else "int8"
    name = ("llvm.hexagon.V6.vrmpybusv.acc.128B" if unsigned_acts
            else "llvm.hexagon.V6.vrmpybv.acc.128B")
    pdepth = 2 if w4 else 4

    def weights(B):
        if w4:
            return T.reinterpret(_unpack4(T, B.vload([0, 0], dtype="int8x64"), 64),
                                 dtype="int32x32")
        return T.reinterpret(B.vload([0, 0], dtype="int8x128"), dtype="int32x32")

    def acts(A):
        return T.Broadcast(T.reinterpret(A.vload([0], f"{a_dt}x4"), dtype="int32"), 32)

    def operands(A, B):
        return (acts(A), weights(B)) if unsigned_acts else (weights(B), acts(A))

    @T.prim_func(s_tir=True)
    def impl(a: T.handle, b: T.handle, c: T.handle) -> None:
        A = T.match_buffer(a, (4,), a_dt, offset_factor=1)
        B = T.match_buffer(b, (32, pdepth), "int8", offset_factor=1)
        C = T.match_buffer(c, (32,), "int32", offset_factor=1)
        with T.sblock("root"):
            T.reads(C[0:32], A[0:4], B[0:32, 0:pdepth])
            T.writes(C[0:32])
            C[T.ramp(T.int32(0), 1, 32)] = T.call_llvm_pure_intrin(
                T.llvm_lookup_intrinsic_id(name),
                C[T.ramp(T.int32(0), 1, 32)],
                operands(A, B)[0],
                operands(A, B)[1],
                dtype="int32x32")
    return impl


# ------------------------------------------------------------------------------------------
# the table
# ------------------------------------------------------------------------------------------

def _entry(name, instruction, requires, act, wbits, acc, lanes, depth, llvm, impl_fn, doc):
    key = f"accelsim.{name}.{act}.w{wbits}"
    return Intrinsic(name, key, instruction, tuple(requires), act, wbits, acc, lanes, depth,
                     tuple(llvm), doc), impl_fn


_TABLE_SPEC: list[tuple[Intrinsic, Callable]] = [
    _entry("sdot", "sdot v.4s, v.16b, v.16b", ["neon", "dotprod"], "int8", 8, "int32", 4, 4,
           ["llvm.aarch64.neon.sdot.v4i32.v16i8"], lambda: _sdot_impl(False),
           "Armv8.2-A dot product: 4 int32 lanes each += 4 int8 x int8 products"),
    _entry("sdot", "sdot v.4s, v.16b, v.16b", ["neon", "dotprod"], "int8", 4, "int32", 4, 4,
           ["llvm.aarch64.neon.sdot.v4i32.v16i8"], lambda: _sdot_impl(True),
           "as sdot, int4 weights unpacked to int8 in registers (ushll, and, shl, orr, eor, sub)"),
    _entry("smull_sadalp", "smull v.8h, v.8b, v.8b; sadalp v.4s, v.8h", ["neon"], "int8", 8,
           "int32", 8, 2, ["llvm.aarch64.neon.smull.v8i16", "llvm.aarch64.neon.saddlp.v4i32.v8i16"],
           lambda: _smull_sadalp_impl(False),
           "Armv8.0 NEON: widening multiply then pairwise add-accumulate into int32"),
    _entry("smull_sadalp", "smull v.8h, v.8b, v.8b; sadalp v.4s, v.8h", ["neon"], "int8", 4,
           "int32", 8, 2, ["llvm.aarch64.neon.smull.v8i16", "llvm.aarch64.neon.saddlp.v4i32.v8i16"],
           lambda: _smull_sadalp_impl(True),
           "as smull_sadalp, int4 weights unpacked to int8 in registers"),
    _entry("smull_sadalp", "smull v.4s, v.4h, v.4h; sadalp v.2d, v.4s", ["neon"], "int16", 16,
           "int64", 4, 2, ["llvm.aarch64.neon.smull.v4i32", "llvm.aarch64.neon.saddlp.v2i64.v4i32"],
           lambda: _smull_sadalp_i16_impl(False),
           "16-bit operands: int16 x int16 -> int32 products, pairwise accumulated into int64"),
    _entry("vrmpy", "v.w += vrmpy(v.b, v.b)", ["hvx"], "int8", 8, "int32", 32, 4,
           ["llvm.hexagon.V6.vrmpybv.acc.128B"], lambda: _vrmpy_impl(False, False),
           "HVX 128B: 32 int32 lanes each += 4 int8 x int8 products (signed activations)"),
    _entry("vrmpy", "v.w += vrmpy(v.b, v.b)", ["hvx"], "int8", 4, "int32", 32, 4,
           ["llvm.hexagon.V6.vrmpybv.acc.128B"], lambda: _vrmpy_impl(True, False),
           "as vrmpy, int4 weights unpacked to int8 in vector registers"),
    _entry("vrmpy", "v.w += vrmpy(v.ub, v.b)", ["hvx"], "uint8", 8, "int32", 32, 4,
           ["llvm.hexagon.V6.vrmpybusv.acc.128B"], lambda: _vrmpy_impl(False, True),
           "HVX 128B, uint8 activations x int8 weights"),
    _entry("vrmpy", "v.w += vrmpy(v.ub, v.b)", ["hvx"], "uint8", 4, "int32", 32, 4,
           ["llvm.hexagon.V6.vrmpybusv.acc.128B"], lambda: _vrmpy_impl(True, True),
           "HVX 128B, uint8 activations x int4 weights unpacked in registers"),
]

INTRINSICS: tuple[Intrinsic, ...] = tuple(i for i, _ in _TABLE_SPEC)
NAMES: tuple[str, ...] = tuple(dict.fromkeys(i.name for i in INTRINSICS))
_IMPLS = {i.key: fn for i, fn in _TABLE_SPEC}
_REGISTERED: set[str] = set()




def variants(name: str) -> list[Intrinsic]:
    return [i for i in INTRINSICS if i.name == name]


def select(names, features, act_dtype: str, weight_bits: int) -> Intrinsic | None:
    """The first intrinsic in `names` that the target's features allow and that has a variant
    for these operand types; None when none applies (the schedule then vectorizes)."""
    for name in names:
        for it in variants(name):
            if (set(it.requires) <= set(features) and it.act_dtype == act_dtype
                    and it.weight_bits == weight_bits):
                return it
    return None


def ensure_registered(it: Intrinsic) -> str:
    """Register `it` with TVM (once per process); returns its TensorIntrin name."""
    if it.key in _REGISTERED:
        return it.key
    from accelsim.tvm_env import import_tvm
    tvm = import_tvm()
    from tvm.s_tir import TensorIntrin
    desc = _desc(it.lanes, it.depth, it.act_dtype, it.acc_dtype, it.weight_bits == 4)
    impl = _IMPLS[it.key]()
    try:
        TensorIntrin.register(it.key, desc, impl)
    except tvm.error.TVMError:  # already registered by an earlier import of this module
        pass
    _REGISTERED.add(it.key)
    return it.key
