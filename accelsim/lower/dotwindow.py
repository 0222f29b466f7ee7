"""x86 VNNI depthwise convolutions: a pixel's whole window of taps per call, on `vpdpbusd`.

`vpdpbusd` adds four u8 x s8 products into each int32 lane: a reduction over four adjacent
bytes, where a depthwise layer reduces over the taps of one channel. So the call transposes the
taps into the lanes' byte groups in registers: per kernel column, the window's rows of 16
channels (one 16-byte load each, the rows past the kernel a zero vector) are interleaved into
one 64-byte vector, byte `4 c + r` being row `r` of channel `c` (a byte shuffle), the weights
likewise; one `vpdpbusd` then adds that column's (up to) four taps of 16 channels. A 3 x 3
window takes three `vpdpbusd` per pixel where the widening multiply (`vpmovsxbw`, `vpmullw`,
`vpmovsxwd`, `vpaddd` per tap) took 36 instructions; the weights' shuffles do not depend on
the pixel (LLVM hoists them), and a column's shuffle is shared by the pixels of an unrolled
tile that read it.

The description is the layer's own reduction over (kh, kw) for 16 channels,
`C[c] += sum A[kh, kw, c] * B[kh, kw, c]`, as the HVX window's (`accelsim.lower.window`, whose
description and buffers serve both): one variant per window shape. Activations arrive as
uint8: int8 ones are flipped to x + 128 in the kernel's input stage and `128 * sum(w)` is
folded out of the bias (`Intrinsic.act_offset`, as the VNNI convolutions do), so the result is
exact for any int8 / uint8 activations and int8 weights (the four products' sum and the
accumulator are exact in int32 for any window of fewer than 2^15 taps).
"""

from __future__ import annotations

from accelsim.lower import intrin as _intrin
from accelsim.lower import window as _window

_GROUP = 4  # bytes per int32 lane that vpdpbusd reduces


def _impl(it: _intrin.Intrinsic):
    from accelsim.core.tvm_env import import_tvm

    import_tvm()
    from tvm.script import tirx as T

    KH, KW, _ = _window.window(it)
    n, act = it.lanes, it.act_dtype
    groups = -(-KH // _GROUP)
    # byte 4 c + r of the interleaved vector: row r of channel c (the 4 rows concatenated)
    order = [r * n + c for c in range(n) for r in range(_GROUP)]

    def column(X, dtype: str, kw: int, g: int):
        rows = [
            X.vload([kh, kw, 0], dtype=f"{dtype}x{n}")
            if kh < KH
            else T.Broadcast(getattr(T, dtype)(0), n)
            for kh in range(g * _GROUP, (g + 1) * _GROUP)
        ]
        return T.reinterpret(_intrin._pick(T, rows, order), dtype=f"int8x{_GROUP * n}")

    def value(A, B, C):
        acc = C[T.ramp(T.int32(0), 1, n)]
        for kw in range(KW):
            for g in range(groups):
                a, b = column(A, act, kw, g), column(B, "int8", kw, g)
                acc = _intrin._llvm(T, it.llvm[0], f"int32x{n}", acc, a, b)
        return acc

    @T.prim_func(s_tir=True)
    def impl(a: T.handle, b: T.handle, c: T.handle) -> None:
        A, B, C = _window.buffers(T, it, a, b, c)
        with T.sblock("root"):
            T.reads(C[0:n], A[0:KH, 0:KW, 0:n], B[0:KH, 0:KW, 0:n])
            T.writes(C[0:n])
            C[T.ramp(T.int32(0), 1, n)] = value(A, B, C)

    return impl


def _entry(name: str, reg: str, requires: tuple[str, ...], lanes: int, isa: str):
    llvm = f"llvm.x86.avx512.vpdpbusd.{32 * lanes}"
    return _intrin.Intrinsic(
        name=name,
        key=f"accelsim.{name}.uint8.1x1",
        act_dtype="uint8",
        weight_bits=8,
        acc_dtype="int32",
        lanes=lanes,
        depth=1,
        impl=_impl,
        instruction=f"vpermb / vpunpck; vpdpbusd {reg}, {reg}, {reg}",
        requires=requires,
        llvm=(llvm,),
        doc=(
            f"{isa} depthwise window: {lanes} channels, a kernel column's taps interleaved "
            "into each lane's 4 bytes, one vpdpbusd per column and 4 rows (int8 activations "
            "flipped to u8, x + 128, in the input stage)"
        ),
        kind=_window.KIND,
        act_offset=128,
        desc=_window.description,
    )


ENTRIES = (
    _entry("vpdpbusd_window", "zmm", ("avx512vnni", "avx512bw"), 16, "AVX512-VNNI"),
    _entry("vpdpbusd_window_ymm", "ymm", ("avxvnni",), 8, "AVX-VNNI"),
)
_intrin.register(*ENTRIES)
