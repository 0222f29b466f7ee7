"""HVX depthwise convolutions: one pixel's whole window of taps over 128 channels per call.

A depthwise layer multiplies each channel by its own weight, so the reducing `vrmpy` (four
products summed into one lane) does not apply without transposing the taps into the lanes.
HVX's widening byte multiply does: `Vdd.h = vmpy(Vu.b, Vv.b)` forms 128 exact int16 products of
128 channels' activations and weights (`vmpy(Vu.ub, Vv.b)` for uint8 activations), even channels
in the low vector of the pair, odd ones in the high. Two taps' products are then added into
int32 accumulators by `Vxx.w += vadd(Vu.h, Vv.h)`, which widens as it adds (even halfwords into
the low vector of the pair, odd ones into the high): per tap one multiply (both multiply
resources: one a packet, 128 MACs) and half of a widening add.

The accumulators stay in that order, channel 4k + r in word k of vector (0, 2, 1, 3)[r] of the
two pairs, over the whole window, and are put back in channel order once per pixel (four
`vshuff`), so one call covers the window: the description is the layer's own reduction over
(kh, kw) for 128 channels, `C[c] += sum A[kh, kw, c] * B[kh, kw, c]`, one variant per window
shape (`variant`). Exact for any int8 / uint8 operands: each int16 product is exact
(|x w| <= 255 x 128), the sums are formed in 32 bits. The lowering pads the channels to a
multiple of 128 (zero weights; the input arrives padded, the output is sliced when unpacked), as
hexagon_nn pads depth; or, below 128 channels at column stride 1, takes the row form (`rows`):
the output row as 128-byte blocks of OW x C bytes, a block's taps the 128 input bytes kw x C
on, its weights and constants repeating with the channels' period.
"""

from __future__ import annotations

import dataclasses

from accelsim.lower import intrin as _intrin

KIND = "window"
LANES = 128  # channels per call: one 128-byte HVX vector of int8 activations
_MPY = {  # activations: (LLVM intrinsic, assembly)
    "int8": ("llvm.hexagon.V6.vmpybv.128B", "v.h = vmpy(v.b, v.b); v.w += vadd(v.h, v.h)"),
    "uint8": ("llvm.hexagon.V6.vmpybusv.128B", "v.h = vmpy(v.ub, v.b); v.w += vadd(v.h, v.h)"),
}
_ADD = "llvm.hexagon.V6.vaddhw.acc.128B"
_SHUFFLE = "llvm.hexagon.V6.vshuffvdd.128B"


def window(it: _intrin.Intrinsic) -> tuple[int, int, int]:
    """(kernel rows, kernel columns, channels) of a variant (`variant`); channels 0: the
    channel-block form, else the row form over a layer with that many channels."""
    shape = it.key.rsplit(".", 1)[1]
    kh, rest = shape.split("x")
    kw, _, c = rest.partition("c")
    return int(kh), int(kw), int(c or 0)


def buffers(T, it, a, b, c):
    """The operands. Channel blocks: a window of the padded input and of the weights (row and
    column strides of the layer's, multiples of 128 bytes as their offsets are). Rows: the
    input's KH rows from the block's first byte to its last tap's (a window column is C bytes
    on), any alignment. Then the weights' window and 128 accumulators."""
    KH, KW, ch = window(it)
    n, act = it.lanes, it.act_dtype
    if ch:
        aw = (KW - 1) * ch + n
        A = T.match_buffer(a, (KH, aw), act, strides=[T.int32(), 1], offset_factor=1)
    else:
        A = T.match_buffer(a, (KH, KW, n), act, strides=[T.int32(), T.int32(), 1], offset_factor=n)
    B = T.match_buffer(b, (KH, KW, n), "int8", strides=[T.int32(), T.int32(), 1], offset_factor=n)
    C = T.match_buffer(c, (n,), "int32", offset_factor=n)
    return A, B, C


def description(it: _intrin.Intrinsic):
    from accelsim.core.tvm_env import import_tvm

    import_tvm()
    from tvm.script import tirx as T

    KH, KW, ch = window(it)
    n = it.lanes
    aw = (KW - 1) * ch + n

    if ch:  # (TVMScript parses a function when it is defined: only the one used)

        @T.prim_func(s_tir=True)
        def desc_row(a: T.handle, b: T.handle, c: T.handle) -> None:
            A, B, C = buffers(T, it, a, b, c)
            with T.sblock("root"):
                T.reads(C[0:n], A[0:KH, 0:aw], B[0:KH, 0:KW, 0:n])
                T.writes(C[0:n])
                for kh, kw, i in T.grid(KH, KW, n):
                    with T.sblock("update"):
                        vi, vkh, vkw = T.axis.remap("SRR", [i, kh, kw])
                        C[vi] = C[vi] + T.cast(A[vkh, vkw * ch + vi], "int32") * T.cast(
                            B[vkh, vkw, vi], "int32"
                        )

        return desc_row

    @T.prim_func(s_tir=True)
    def desc(a: T.handle, b: T.handle, c: T.handle) -> None:
        A, B, C = buffers(T, it, a, b, c)
        with T.sblock("root"):
            T.reads(C[0:n], A[0:KH, 0:KW, 0:n], B[0:KH, 0:KW, 0:n])
            T.writes(C[0:n])
            for kh, kw, i in T.grid(KH, KW, n):
                with T.sblock("update"):
                    vi, vkh, vkw = T.axis.remap("SRR", [i, kh, kw])
                    C[vi] = C[vi] + T.cast(A[vkh, vkw, vi], "int32") * T.cast(
                        B[vkh, vkw, vi], "int32"
                    )

    return desc


def _words(T, X, rows: int):
    """A view of X's memory in 32-bit words from X's first element, its offset shown to be a
    multiple of 128 bytes (LLVM cannot tell for the padded input, a buffer the kernel
    allocates, and would load each vector as two aligned ones and a `valign`)."""
    return T.decl_buffer(
        (rows * X.strides[0] // 4 + 32,),
        "int32",
        data=X.data,
        elem_offset=X.elem_offset // 128 * 32,
        align=128,
    )


def _vector(T, X, view, row: int, col: int):
    """X[row, col, 0:128] as one aligned 128-byte vector, through `view` (`_words`)."""
    return view[T.ramp((row * X.strides[0] + col * X.strides[1]) // 4, 1, 32)]


def _shuffle(T, u, v, step: int):
    """`Vdd = vshuff(Vu, Vv, Rt)`, Rt = -step bytes: v's and u's `step`-byte groups alternate
    (v first), the low halves of both in the low vector of the pair."""
    return _intrin._llvm(T, _SHUFFLE, "int32x64", u, v, T.int32(step))


def _impl(it: _intrin.Intrinsic):
    from accelsim.core.tvm_env import import_tvm

    import_tvm()
    from tvm.script import tirx as T

    KH, KW, ch = window(it)
    n, act = it.lanes, it.act_dtype
    aw = (KW - 1) * ch + n
    taps = [(i, j) for i in range(KH) for j in range(KW)]
    pairs = [taps[k : k + 2] for k in range(0, len(taps), 2)]

    def half(v, which):  # a pair's low (which = 0) or high vector
        return _intrin._pick(T, [v], range(32 * which, 32 * which + 32))

    def value(A, B, C, Aw, Bw, j):  # Aw unused by the row form
        """Accumulator vector j (channels 32 j .. 32 j + 31) plus the window's products; the
        four vectors' expressions share their products (pure calls LLVM computes once)."""

        def product(tap):
            if ch:  # rows: the tap's 128 bytes start kw x C bytes on, at any alignment
                x = T.reinterpret(
                    A.vload([tap[0], tap[1] * ch], dtype=f"{act}x128"), dtype="int32x32"
                )
            else:
                x = _vector(T, A, Aw, *tap)
            return _intrin._llvm(T, it.llvm[0], "int32x64", x, _vector(T, B, Bw, *tap))

        zero = T.Broadcast(T.int32(0), 32)
        sums = []
        for which in (0, 1):  # even channels' products, odd channels' products
            acc = T.Broadcast(T.int32(0), 64)
            for pr in pairs:
                u = half(product(pr[0]), which)
                v = half(product(pr[1]), which) if len(pr) > 1 else zero
                acc = _intrin._llvm(T, _ADD, "int32x64", acc, u, v)
            sums.append(acc)
        # back to channel order: words interleaved (c 4k, 4k + 1 | 4k + 2, 4k + 3), then pairs
        even, odd = sums
        x = _shuffle(T, half(odd, 0), half(even, 0), -4)
        y = _shuffle(T, half(odd, 1), half(even, 1), -4)
        ordered = half(_shuffle(T, half(y, j // 2), half(x, j // 2), -8), j % 2)
        return C[T.ramp(T.int32(32 * j), 1, 32)] + ordered

    # the description's buffers; the accumulators stored as four vectors (LLVM keeps HVX's
    # own types: a 128-lane int32 value is legalized through the stack)
    @T.prim_func(s_tir=True)
    def impl(a: T.handle, b: T.handle, c: T.handle) -> None:
        A, B, C = buffers(T, it, a, b, c)
        with T.sblock("root"):
            T.reads(C[0:n], A[0:KH, 0:aw] if ch > 0 else A[0:KH, 0:KW, 0:n], B[0:KH, 0:KW, 0:n])
            T.writes(C[0:n])
            Bw = _words(T, B, KH)
            Aw = Bw if ch > 0 else _words(T, A, KH)  # the row form loads A unaligned, not by view
            C[T.ramp(T.int32(0), 1, 32)] = value(A, B, C, Aw, Bw, 0)
            C[T.ramp(T.int32(32), 1, 32)] = value(A, B, C, Aw, Bw, 1)
            C[T.ramp(T.int32(64), 1, 32)] = value(A, B, C, Aw, Bw, 2)
            C[T.ramp(T.int32(96), 1, 32)] = value(A, B, C, Aw, Bw, 3)

    return impl


def _entry(act: str) -> _intrin.Intrinsic:
    llvm, asm = _MPY[act]
    return _intrin.Intrinsic(
        name="vmpy_window",
        key=f"accelsim.vmpy_window.{act}.1x1",
        act_dtype=act,
        weight_bits=8,
        acc_dtype="int32",
        lanes=LANES,
        depth=1,
        impl=_impl,
        instruction=asm,
        requires=("hvx",),
        llvm=(llvm, _ADD, _SHUFFLE),
        doc=(
            f"HVX 128B depthwise window: 128 channels of {act} x int8 taps, exact int16 "
            "products widened and summed in pairs into int32 (one multiply per tap)"
        ),
        kind=KIND,
        desc=description,
    )


ENTRIES = tuple(_entry(act) for act in ("int8", "uint8"))
_intrin.register(*ENTRIES)


def variant(it: _intrin.Intrinsic, kh: int, kw: int, row_channels: int = 0) -> _intrin.Intrinsic:
    """`it` for a window of kh x kw taps (the shape is part of its TensorIntrin's key); with
    `row_channels`, the row form (`rows`) over a layer with that many channels."""
    shape = f"{kh}x{kw}" + (f"c{row_channels}" if row_channels else "")
    return dataclasses.replace(it, key=f"{it.key.rsplit('.', 1)[0]}.{shape}", depth=kh * kw)


def rows(it: _intrin.Intrinsic, channels: int, out_width: int, col_stride: int) -> bool:
    """Whether a layer takes the row form: its output row seen as one run of OW x C bytes, cut
    into 128-byte blocks, each block's taps the 128 bytes `kw x C` on in the input row (column
    stride 1 only). No channel is padded; a block's weights repeat with the channels' period
    (lcm(C, 128) bytes), and its input loads are unaligned (LLVM loads the aligned vectors
    around them and `valign`s). Used for fewer than 128 channels, which channel blocks would
    pad to 128 (MobileNet v2 features.1, 32 channels at 112 x 112: 222 k cycles against 654 k
    on hvx-v68); above 128 the padding costs less than the unaligned loads and the block-wise
    constants do (features.3, 144 channels: 340 k with 256 padded channels, 365 k as rows), and
    where the row divides into whole blocks."""
    if it.name != ENTRIES[0].name:  # HVX's form (its 128-byte blocks); not x86's window
        return False
    return col_stride == 1 and channels < LANES and (out_width * channels) % LANES == 0
