"""The accelerator's instruction set and `Program`s.

Three in-order instruction queues run concurrently (the decoupled access-execute organisation of
VTA, Moreau et al., IEEE Micro 2019): **load** (DMA DRAM -> scratchpad), **compute** (MAC array
and vector ALU) and **store** (DMA scratchpad -> DRAM). They synchronise only through dependency
tokens: `SIGNAL` pushes a token onto a named channel once every earlier instruction of its queue
has completed, `WAIT` pops one (blocking its queue until one is there).

Operands are elements, not bytes. A scratchpad operand is a `Ref` `buf[slot]+base`: buffer `buf`
of the program's buffer map (which scratchpad, element width, slots, byte address), double-buffer
slot, element offset. A DRAM operand is `@tensor+base`. 4-bit tensors are stored two per byte in
DRAM and in the act/wgt scratchpads; the MAC array reads packed 4-bit operands natively, the
vector ALU works on >= 8-bit lanes (`VUNPACK` / `VPACK` convert in place).

Instructions (all frozen dataclasses; `Program.text()` prints them one per line and
`Program.parse()` reads them back; `Program.encode()` / `decode()` give a compact binary form):

| mnemonic | queue | semantics |
|---|---|---|
| `LOAD dst src dims pad` | load | up to 3-D strided copy DRAM -> scratchpad; per dimension `(extent, dram_stride, spad_stride, pad_before, pad_after)`: the first/last positions of a padded dimension are filled with `pad` (the input zero point) instead of read, so convolution padding costs no DRAM traffic |
| `STORE dst src dims` | store | up to 3-D strided copy scratchpad -> DRAM |
| `BIAS acc bias loops` | compute | accumulator init: `acc[...] = bias[channel]` (bias load; the zero-point correction `-Z_x * sum(w)` is folded into the bias at compile time, gemmlowp-style) |
| `VMAC acc act wgt loops lanes depth mode kind` | compute | a loop nest (<= 6 loops, per loop `(extent, acc_stride, act_stride, wgt_stride)`) of micro-ops. `kind=bcast` (conv / dense): `acc[l] += sum_d act[d] * wgt[l*depth + d]` for `l < lanes`, the `depth` activations broadcast to all lanes; `kind=elem` (depthwise): `acc[l] += act[l] * wgt[l]`. `mode` = `wNaM`: weights N-bit symmetric (zero point 0), activations M-bit raw (their zero point is folded into the bias, and padded taps read the zero point, so they contribute exactly what the folded bias removes). Accumulators wrap at the accumulator width (32 bit, 64 bit for 16x16) |
| `REQUANT out acc mult shift loops zp qmin qmax wide fscale` | compute | per channel `clip(MultiplyByQuantizedMultiplier(acc, mult, shift) + zp, qmin, qmax)`: gemmlowp SaturatingRoundingDoublingHighMul + RoundingDivideByPOT with a 32-bit wrapping left shift (`wide=false`), or TFLite's int64 overload with the multiplier reduced to 16 bits (`wide=true`, 16-bit layers); the clip is the fused activation clamp. `fscale=float64` (TFLite's FULLY_CONNECTED): `round(double(acc) * mult * 2^shift)` half away from zero, `mult` the double scale's 53-bit significand (a 32 x 53-bit product rounded to 53 bits, two multiplier passes); `fscale=float32` (ONNX Runtime's QDQ kernels, MlasRequantizeOutput): `float32(acc) * scale` rounded half to even, `mult` the float32's bits |
| `VADD out a b loops ...` | compute | TFLite's quantized add (add.cc): `(q - zp) << left_shift`, each input rescaled by its multiplier, summed in int32, rescaled by the output multiplier, `+ zp_out`, clipped |
| `VMUL out a b loops zp_a zp_b zp_out m s wide qmin qmax` | compute | TFLite's quantized mul (mul.cc): `(a - zp_a) * (b - zp_b)`, one MultiplyByQuantizedMultiplier (the int64 overload when `wide`), `+ zp_out`, clipped |
| `VADDF out a b loops ra rb fixed scalar qmin qmax` / `VMULF out a b loops zp_a zp_b zp_out ratio qmin qmax` | compute | ONNX Runtime's QLinearAdd / QLinearMul in float32 (its QDQ models): constants as float32 bits, results rounded half to even |
| `VLUT out a loops lo table` | compute | `out = table[a - lo]` for an 8-bit input: any pointwise function of one per-tensor quantized input (sigmoid, tanh, hard-swish, GELU, ...), the table filled at compile time by the node's integer reference kernel |
| `VPACK buf count` / `VUNPACK buf count` | compute | 8-bit lanes <-> two 4-bit values per byte, in place |
| `SIGNAL queue token` / `WAIT queue token` | any | dependency tokens between queues |

VADD and VMUL read an operand either element by element or broadcast (loop stride 0: a
per-channel vector, a bias row). Pooling, softmax, quantize / dequantize and reshapes do not run
on the accelerator: they run on the SoC's host core and are costed by the host model in `accelsim.accel.sim`.
"""

from __future__ import annotations

import dataclasses
import json
import re
import struct
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar

from accelsim.core.errors import AccelsimError

QUEUES = ("load", "compute", "store")


class ProgramError(AccelsimError):
    """A malformed program text or binary."""


@dataclass(frozen=True)
class Ref:
    """A scratchpad operand: buffer, double-buffer slot, element offset."""

    buf: str
    slot: int
    base: int

    def __str__(self) -> str:
        return f"{self.buf}[{self.slot}]+{self.base}"


@dataclass(frozen=True)
class DramRef:
    tensor: str
    base: int

    def __str__(self) -> str:
        return f"@{self.tensor}+{self.base}"


@dataclass(frozen=True)
class DmaDim:
    """One dimension of a DMA transfer, in elements."""

    extent: int
    dram_stride: int
    spad_stride: int
    pad_before: int = 0
    pad_after: int = 0

    @property
    def valid(self) -> int:
        return self.extent - self.pad_before - self.pad_after


Loops = tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class Instr:
    OPCODE: ClassVar[str] = ""
    QUEUE: ClassVar[str] = "compute"

    @property
    def queue(self) -> str:
        return self.QUEUE

    def text(self) -> str:
        parts = [self.OPCODE]
        for f in dataclasses.fields(self):
            parts.append(f"{f.name}={_fmt(getattr(self, f.name))}")
        return " ".join(parts)


@dataclass(frozen=True)
class Load(Instr):
    OPCODE: ClassVar[str] = "LOAD"
    QUEUE: ClassVar[str] = "load"
    dst: Ref
    src: DramRef
    dims: tuple[DmaDim, ...]
    pad: int = 0


@dataclass(frozen=True)
class Store(Instr):
    OPCODE: ClassVar[str] = "STORE"
    QUEUE: ClassVar[str] = "store"
    dst: DramRef
    src: Ref
    dims: tuple[DmaDim, ...]


@dataclass(frozen=True)
class Bias(Instr):
    OPCODE: ClassVar[str] = "BIAS"
    acc: Ref
    bias: Ref
    loops: Loops  # (extent, acc_stride, bias_stride)


@dataclass(frozen=True)
class VMac(Instr):
    OPCODE: ClassVar[str] = "VMAC"
    acc: Ref
    act: Ref
    wgt: Ref
    loops: Loops  # (extent, acc_stride, act_stride, wgt_stride)
    lanes: int
    depth: int
    mode: str  # "w8a8", ...
    kind: str = "bcast"  # "bcast" (conv / dense) or "elem" (depthwise)

    @property
    def micro_ops(self) -> int:
        n = 1
        for lp in self.loops:
            n *= lp[0]
        return n


# ALU multiplier passes per REQUANT element by its scale: the float64 path's 32 x 53-bit
# product takes two passes of the 32x32 multipliers
REQUANT_PASSES = {"": 1, "float32": 1, "float64": 2}


@dataclass(frozen=True)
class Requant(Instr):
    OPCODE: ClassVar[str] = "REQUANT"
    out: Ref
    acc: Ref
    mult: Ref
    shift: Ref
    loops: Loops  # (extent, out_stride, acc_stride, param_stride)
    zp: int
    qmin: int
    qmax: int
    wide: bool = False
    # a float scale instead of MultiplyByQuantizedMultiplier: "float64" (TFLite's
    # FULLY_CONNECTED: round(double(acc) * scale) half away from zero, the scale as mult (53-bit
    # significand) x 2^shift; a 32 x 53-bit product, two multiplier passes) or "float32" (ONNX
    # Runtime's MlasRequantizeOutput: float32(acc) * scale rounded half to even, mult holding
    # the float32's bits)
    fscale: str = ""

    @property
    def passes(self) -> int:
        return REQUANT_PASSES[self.fscale]


@dataclass(frozen=True)
class VAdd(Instr):
    OPCODE: ClassVar[str] = "VADD"
    # ALU cycles per element per ALU lane: the recipe's three MultiplyByQuantizedMultiplier
    # steps, one 32x32 multiplier pass each (the analytic model reads the same constant)
    PASSES: ClassVar[int] = 3
    ENERGY: ClassVar[str] = "add_pj"  # `arch.EnergyModel` field: energy per element
    out: Ref
    a: Ref
    b: Ref
    loops: Loops  # (extent, out_stride, a_stride, b_stride)
    zp_a: int
    zp_b: int
    zp_out: int
    left_shift: int
    m_a: int
    s_a: int
    m_b: int
    s_b: int
    m_out: int
    s_out: int
    qmin: int
    qmax: int
    sub: bool = False  # TFLite's SUB: the rescaled second input subtracted


@dataclass(frozen=True)
class VMul(Instr):
    """TFLite's quantized MUL (mul.cc): `(a - zp_a) * (b - zp_b)`, MultiplyByQuantizedMultiplier
    (`wide`: the int64 overload, for 16-bit operands whose product overflows int32), `+ zp_out`,
    clipped."""

    OPCODE: ClassVar[str] = "VMUL"
    PASSES: ClassVar[int] = 2  # the product, then the SRDHM: two 32x32 multiplier passes
    ENERGY: ClassVar[str] = "mul_pj"
    out: Ref
    a: Ref
    b: Ref
    loops: Loops  # (extent, out_stride, a_stride, b_stride)
    zp_a: int
    zp_b: int
    zp_out: int
    m: int
    s: int
    wide: bool
    qmin: int
    qmax: int


@dataclass(frozen=True)
class VAddF(Instr):
    """ONNX Runtime's QLinearAdd, in float32 (`accelsim.ref.qdq_ops.add`): `a * ra + (b * rb +
    fixed)` as two fused multiply-adds (`scalar`: "a" or "b" when ORT folds that operand into
    the constant first, else "none"), rounded half to even, clipped. `ra`, `rb`, `fixed` are
    float32 bits."""

    OPCODE: ClassVar[str] = "VADDF"
    PASSES: ClassVar[int] = 2  # two float32 fused multiply-adds
    ENERGY: ClassVar[str] = "addf_pj"
    out: Ref
    a: Ref
    b: Ref
    loops: Loops  # (extent, out_stride, a_stride, b_stride)
    ra: int
    rb: int
    fixed: int
    scalar: str
    qmin: int
    qmax: int


@dataclass(frozen=True)
class VMulF(Instr):
    """ONNX Runtime's QLinearMul (`accelsim.ref.qdq_ops.mul`): the integer product of the
    zero-point-subtracted operands times `ratio` (float32 bits) in float32, `+ zp_out`,
    rounded half to even, clipped."""

    OPCODE: ClassVar[str] = "VMULF"
    PASSES: ClassVar[int] = 2  # the integer product, the float32 multiply-add
    ENERGY: ClassVar[str] = "mulf_pj"
    out: Ref
    a: Ref
    b: Ref
    loops: Loops
    zp_a: int
    zp_b: int
    zp_out: int
    ratio: int
    qmin: int
    qmax: int


@dataclass(frozen=True)
class VLut(Instr):
    """A pointwise function of an 8-bit input by table: `out = table[a - lo]`. The table (the
    node's integer reference kernel at every input value, filled at compile time) travels with
    the instruction into a copy per ALU lane (`TABLE_ENTRIES` entries of up to 16 bit)."""

    OPCODE: ClassVar[str] = "VLUT"
    PASSES: ClassVar[int] = 1  # one table read per element per lane
    ENERGY: ClassVar[str] = "lut_pj"
    TABLE_ENTRIES: ClassVar[int] = 256
    out: Ref
    a: Ref
    loops: Loops  # (extent, out_stride, a_stride)
    lo: int
    table: tuple[int, ...]


@dataclass(frozen=True)
class VPack(Instr):
    OPCODE: ClassVar[str] = "VPACK"
    buf: Ref
    count: int


@dataclass(frozen=True)
class VUnpack(Instr):
    OPCODE: ClassVar[str] = "VUNPACK"
    buf: Ref
    count: int


@dataclass(frozen=True)
class Signal(Instr):
    OPCODE: ClassVar[str] = "SIGNAL"
    on: str  # queue that executes it
    token: str

    @property
    def queue(self) -> str:
        return self.on


@dataclass(frozen=True)
class Wait(Instr):
    OPCODE: ClassVar[str] = "WAIT"
    on: str
    token: str

    @property
    def queue(self) -> str:
        return self.on


INSTRUCTIONS: tuple[type[Instr], ...] = (
    Load,
    Store,
    Bias,
    VMac,
    Requant,
    VAdd,
    VMul,
    VAddF,
    VMulF,
    VLut,
    VPack,
    VUnpack,
    Signal,
    Wait,
)
BY_OPCODE = {c.OPCODE: c for c in INSTRUCTIONS}
AluInstr = VAdd | VMul | VAddF | VMulF | VLut
# the element-wise instruction of each ALU layer class (`compute.alu_operands`) and
# requantization arithmetic ("" fixed point, "float32" ONNX Runtime's)
ALU_INSTRUCTIONS: dict[tuple[str, str], type[AluInstr]] = {
    ("add", ""): VAdd,
    ("mul", ""): VMul,
    ("add", "float32"): VAddF,
    ("mul", "float32"): VMulF,
    ("lut", ""): VLut,
    ("lut", "float32"): VLut,
}


# ------------------------------------------------------------------------------------------------
# the buffer map and the program
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Buffer:
    """A scratchpad buffer: `elements` per slot of `bits` each; slot `s` starts at byte
    `address + s * slot_bytes` of scratchpad `space`."""

    name: str
    space: str  # act, wgt, acc, out
    elements: int
    bits: int
    slots: int
    address: int
    slot_bytes: int
    shape: tuple[int, ...] = ()

    @property
    def bytes(self) -> int:
        return self.slots * self.slot_bytes


@dataclass(frozen=True)
class DramTensor:
    name: str
    shape: tuple[int, ...]
    bits: int
    role: str  # input, weight, param, output

    @property
    def elements(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def bytes(self) -> float:
        return self.elements * self.bits / 8


@dataclass(frozen=True, eq=False)
class Program:
    """One layer's instruction stream plus its buffer map and DRAM tensors."""

    name: str
    op: str
    precision: str
    instructions: tuple[Instr, ...]
    buffers: Mapping[str, Buffer]
    dram: Mapping[str, DramTensor]
    macs: int = 0
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "instructions", tuple(self.instructions))
        object.__setattr__(self, "buffers", MappingProxyType(dict(self.buffers)))
        object.__setattr__(self, "dram", MappingProxyType(dict(self.dram)))
        object.__setattr__(self, "meta", MappingProxyType(dict(self.meta)))

    def __len__(self) -> int:
        return len(self.instructions)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for i in self.instructions:
            out[i.OPCODE] = out.get(i.OPCODE, 0) + 1
        return out

    # -- text ----------------------------------------------------------------------------------
    def text(self) -> str:
        lines = [f".program {self.name} op={self.op} precision={self.precision} macs={self.macs}"]
        for t in self.dram.values():
            lines.append(f".dram {t.name} shape={_fmt(t.shape)} bits={t.bits} role={t.role}")
        for b in self.buffers.values():
            lines.append(
                f".buffer {b.name} space={b.space} elements={b.elements} bits={b.bits} "
                f"slots={b.slots} address={b.address} slot_bytes={b.slot_bytes} "
                f"shape={_fmt(b.shape)}"
            )
        if self.meta:
            lines.append(".meta " + json.dumps(dict(self.meta), sort_keys=True, default=str))
        lines += [i.text() for i in self.instructions]
        return "\n".join(lines) + "\n"

    @staticmethod
    def parse(text: str) -> Program:
        head: dict[str, Any] = {}
        dram: dict[str, DramTensor] = {}
        bufs: dict[str, Buffer] = {}
        meta: dict[str, Any] = {}
        instrs: list[Instr] = []
        for n, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                if line.startswith(".program "):
                    name, kv = _split_kv(line[len(".program ") :])
                    head = {"name": name, **kv}
                elif line.startswith(".dram "):
                    name, kv = _split_kv(line[len(".dram ") :])
                    dram[name] = DramTensor(
                        name, _parse_tuple(kv["shape"]), int(kv["bits"]), kv["role"]
                    )
                elif line.startswith(".buffer "):
                    name, kv = _split_kv(line[len(".buffer ") :])
                    bufs[name] = Buffer(
                        name,
                        kv["space"],
                        int(kv["elements"]),
                        int(kv["bits"]),
                        int(kv["slots"]),
                        int(kv["address"]),
                        int(kv["slot_bytes"]),
                        _parse_tuple(kv["shape"]),
                    )
                elif line.startswith(".meta "):
                    meta = json.loads(line[len(".meta ") :])
                else:
                    instrs.append(parse_instruction(line))
            except (KeyError, ValueError, TypeError) as exc:
                raise ProgramError(
                    f"program text line {n}: cannot parse {line[:80]!r} ({exc})"
                ) from None
        if not head:
            raise ProgramError("program text: missing the '.program' header line")
        return Program(
            head["name"],
            head.get("op", ""),
            head.get("precision", ""),
            instrs,
            bufs,
            dram,
            int(head.get("macs", 0)),
            meta,
        )

    # -- binary --------------------------------------------------------------------------------
    def encode(self) -> bytes:
        """The instruction stream as bytes: opcode byte, then each field (zig-zag varints for
        integers, string-table indices for names). The buffer map stays in `text()`."""
        strings: dict[str, int] = {}
        body = bytearray()
        for ins in self.instructions:
            body.append(_OPCODE_IDS[ins.OPCODE])
            for f in dataclasses.fields(ins):
                _enc(body, getattr(ins, f.name), _HINTS[type(ins)][f.name], strings)
        table = bytearray()
        _varint(table, len(strings))
        for s in strings:
            b = s.encode()
            _varint(table, len(b))
            table += b
        return b"ACCL" + struct.pack("<I", len(self.instructions)) + bytes(table) + bytes(body)

    @staticmethod
    def decode_instructions(data: bytes) -> tuple[Instr, ...]:
        if data[:4] != b"ACCL":
            raise ProgramError("binary program: bad magic (expected b'ACCL')")
        (count,) = struct.unpack("<I", data[4:8])
        pos = [8]
        n = _unvarint(data, pos)
        strings = []
        for _ in range(n):
            ln = _unvarint(data, pos)
            strings.append(data[pos[0] : pos[0] + ln].decode())
            pos[0] += ln
        out = []
        for _ in range(count):
            cls = INSTRUCTIONS[data[pos[0]]]
            pos[0] += 1
            kw = {
                f.name: _dec(data, pos, _HINTS[cls][f.name], strings)
                for f in dataclasses.fields(cls)
            }
            out.append(cls(**kw))
        return tuple(out)


# ------------------------------------------------------------------------------------------------
# text and binary helpers
# ------------------------------------------------------------------------------------------------


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (Ref, DramRef)):
        return str(v)
    if isinstance(v, DmaDim):
        return "(" + ",".join(str(x) for x in dataclasses.astuple(v)) + ")"
    if isinstance(v, tuple):
        if v and isinstance(v[0], (tuple, DmaDim)):
            return "[" + ";".join(_fmt(x) for x in v) + "]"
        return "(" + ",".join(str(x) for x in v) + ")"
    return str(v)


_TOKEN = re.compile(r"(\w+)=(\S+)")


def _split_kv(rest: str) -> tuple[str, dict[str, str]]:
    name, _, tail = rest.partition(" ")
    return name, dict(_TOKEN.findall(tail))


def _parse_tuple(s: str) -> tuple[int, ...]:
    s = s.strip("()")
    return tuple(int(x) for x in s.split(",") if x != "")


def _parse_value(s: str, hint: Any) -> Any:
    if hint is int:
        return int(s)
    if hint is bool:
        if s not in ("true", "false"):
            raise ValueError(f"expected true/false, found {s!r}")
        return s == "true"
    if hint is str:
        return s
    if hint is Ref:
        m = re.fullmatch(r"([^\[\]@]+)\[(\d+)\]\+(-?\d+)", s)
        if not m:
            raise ValueError(f"expected buf[slot]+base, found {s!r}")
        return Ref(m.group(1), int(m.group(2)), int(m.group(3)))
    if hint is DramRef:
        m = re.fullmatch(r"@([^+]+)\+(-?\d+)", s)
        if not m:
            raise ValueError(f"expected @tensor+base, found {s!r}")
        return DramRef(m.group(1), int(m.group(2)))
    if hint == tuple[int, ...]:
        return _parse_tuple(s)
    if hint == tuple[DmaDim, ...]:
        inner = s[1:-1]
        return tuple(DmaDim(*_parse_tuple(x)) for x in inner.split(";") if x)
    if hint == Loops or hint == tuple[tuple[int, ...], ...]:
        inner = s[1:-1]
        return tuple(_parse_tuple(x) for x in inner.split(";") if x)
    raise ValueError(f"no parser for {hint}")


_HINTS = {c: typing.get_type_hints(c) for c in INSTRUCTIONS}
_OPCODE_IDS = {c.OPCODE: i for i, c in enumerate(INSTRUCTIONS)}


def parse_instruction(line: str) -> Instr:
    op, _, rest = line.strip().partition(" ")
    cls = BY_OPCODE.get(op)
    if cls is None:
        raise ValueError(f"unknown mnemonic {op!r} (known: {', '.join(BY_OPCODE)})")
    kv = dict(_TOKEN.findall(rest))
    hints = _HINTS[cls]
    kw = {}
    for f in dataclasses.fields(cls):
        if f.name not in kv:
            if f.default is not dataclasses.MISSING:
                continue
            raise ValueError(f"{op}: missing field {f.name}")
        kw[f.name] = _parse_value(kv[f.name], hints[f.name])
    return cls(**kw)


def _varint(out: bytearray, v: int) -> None:
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return


def _unvarint(data: bytes, pos: list[int]) -> int:
    shift = v = 0
    while True:
        b = data[pos[0]]
        pos[0] += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v


def _zz(v: int) -> int:
    return (v << 1) ^ (v >> 63) if v >= 0 else ((-v) << 1) - 1


def _unzz(v: int) -> int:
    return (v >> 1) if not v & 1 else -((v + 1) >> 1)


def _enc(out: bytearray, v: Any, hint: Any, strings: dict[str, int]) -> None:
    if hint is bool:
        out.append(1 if v else 0)
    elif hint is int:
        _varint(out, _zz(int(v)))
    elif hint is str:
        _varint(out, strings.setdefault(v, len(strings)))
    elif hint is Ref:
        _enc(out, v.buf, str, strings)
        _enc(out, v.slot, int, strings)
        _enc(out, v.base, int, strings)
    elif hint is DramRef:
        _enc(out, v.tensor, str, strings)
        _enc(out, v.base, int, strings)
    elif hint == tuple[int, ...]:
        _varint(out, len(v))
        for x in v:
            _enc(out, x, int, strings)
    elif hint == tuple[DmaDim, ...]:
        _varint(out, len(v))
        for d in v:
            for x in dataclasses.astuple(d):
                _enc(out, x, int, strings)
    else:  # loops
        _varint(out, len(v))
        for lp in v:
            _varint(out, len(lp))
            for x in lp:
                _enc(out, x, int, strings)


def _dec(data: bytes, pos: list[int], hint: Any, strings: list[str]) -> Any:
    if hint is bool:
        pos[0] += 1
        return bool(data[pos[0] - 1])
    if hint is int:
        return _unzz(_unvarint(data, pos))
    if hint is str:
        return strings[_unvarint(data, pos)]
    if hint is Ref:
        return Ref(
            _dec(data, pos, str, strings),
            _dec(data, pos, int, strings),
            _dec(data, pos, int, strings),
        )
    if hint is DramRef:
        return DramRef(_dec(data, pos, str, strings), _dec(data, pos, int, strings))
    if hint == tuple[int, ...]:
        return tuple(_dec(data, pos, int, strings) for _ in range(_unvarint(data, pos)))
    if hint == tuple[DmaDim, ...]:
        n = _unvarint(data, pos)
        return tuple(DmaDim(*(_dec(data, pos, int, strings) for _ in range(5))) for _ in range(n))
    n = _unvarint(data, pos)
    out = []
    for _ in range(n):
        m = _unvarint(data, pos)
        out.append(tuple(_dec(data, pos, int, strings) for _ in range(m)))
    return tuple(out)
