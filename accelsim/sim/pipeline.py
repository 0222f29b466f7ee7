"""Per-core pipe model: steady-state cycles of one basic block or loop body of generated code.

- `classify(line, arch)`: the instruction class (a key of `timing.instructions`) of one line.
- `parse(lines, arch)`: `Instr` records (class, registers defined and used, accumulator operand,
  resource multiplicity, Hexagon packet) of a block.
- `block_cycles(lines, target, loop)`: core cycles per execution of the block.
- `loop_bodies(asm, arch)`: the raw lines of each innermost loop (Hexagon packets kept).
- `bounds(lines, target, loop)`: the separate bounds, for reports and tests.

Out-of-order NEON / x86 cores: the max of (a) the decode/issue bound (instructions /
`issue_width`), (b) the pipe bound (every class occupies its `pipes` for 1/throughput of a
pipe-cycle; for every subset of pipes, the work of the classes confined to it divided by its
size; this is the exact bound of the assignment problem) and (c) with `loop=True` the loop-carried
dependency bound (the slope of an unlimited-resource dataflow schedule over many iterations, with
class latencies and `accumulate_latency` late forwarding between multiply-accumulates), and (d)
with `loop=True` a greedy list schedule of repeated iterations under the same pipes, latencies,
decode width and reorder `window`, which catches a dependency chain slowed by pipe pressure that
neither (b) nor (c) sees alone (depthwise loops: a V0-only multiply on the critical path behind
V0/V1 adds).

In-order cores (`timing.in_order: true`, Cortex-A55): a cycle-by-cycle in-order issue of the
block (repeated for loops): at most `issue_width` instructions per cycle in program order, an
instruction waits for its operands and its pipes; 128-bit NEON instructions issue only as the
first of a dual-issue pair (`qform_first_slot`, A55 SOG 4.15 note 1).

Hexagon: the compiler has already packed the VLIW packets, so slot and resource rules hold and
the cost is one cycle per packet plus the documented interlock stalls: a vector source read by an
instruction whose class has `input_latency` L (multiplier, shift and permute inputs) is ready
max(producer latency, L) packets after its producer issued (HVX PRM "Instruction latency"). One
kernel runs as one software thread on one HVX context: packets of that thread issue at most one
per cycle (`issue_width: 1`); other hardware threads/contexts run other work, so they neither
speed up nor slow down this block (a caller that splits a layer over `hardware_threads` contexts
divides the work, not these cycles).

Classes missing from a target's table fall back to a coarser class (`_FALLBACK`), so a target
that does not distinguish, e.g., vector shifts from other vector ALU operations times them alike.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from accelsim.core.errors import AccelsimError


class PipelineError(AccelsimError):
    """A target whose timing table cannot time a block."""


# coarser class to use when a target's table lacks the finer one (checked in order)
_FALLBACK = {
    "vector_shift": "vector_alu",
    "vector_shift_acc": "vector_shift",
    "vector_narrow": "vector_shift",
    "vector_permute": "vector_alu",
    "vector_logic": "vector_alu",
    "vector_permute_double": "vector_permute",
    "vector_mul": "vector_mac_int16",
    "vector_fp": "vector_fma_fp32",
    "vector_convert": "vector_fp",
    "vector_from_gpr": "vector_alu",
    "vector_to_gpr": "vector_alu",
    "vector_mac_int16": "vector_alu",
    "vector_mul_long_int8": "vector_mac_int16",
    "vector_pairwise_acc": "vector_alu",
    "vector_mac_int8": "vector_mac_int16",
    "vector_fma_fp16": "vector_fma_fp32",
    "vector_fma_fp32": "vector_alu",
    "vector_dmpy_int16x8": "vector_mac_int8",
    "vector_mpyi_int16": "vector_mac_int16",
    "vector_load_unaligned": "vector_load",
    "vector_load_replicate": "vector_load",
    "vector_load_pair": "vector_load",
    "vector_alu_long": "vector_alu",
    "vector_pairwise_long": "vector_pairwise_acc",
    "scalar_load": "vector_load",
    "scalar_store": "vector_store",
    "scalar_mul": "scalar_alu",
}

_ARCH_BY_KIND = {"cpu-simd": "aarch64", "vliw-dsp": "hexagon", "host": "x86_64"}


@dataclass(frozen=True)
class Instr:
    """One parsed instruction."""

    text: str
    mnemonic: str
    cls: str
    defs: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()
    acc: str | None = None  # register read as the accumulator (late-forwarded operand)
    count: int = 1  # registers moved (LDP/LD1 {..}: the pipes are used per register)
    narrow: bool = False  # AArch64 64-bit (D-form) or scalar vector-unit operation
    packet: int | None = None  # Hexagon packet index within the block
    same_packet: tuple[str, ...] = ()  # Hexagon .cur/.tmp/.new registers forwarded in-packet


# ------------------------------------------------------------------------------------------
# AArch64
# ------------------------------------------------------------------------------------------

_A64_BRANCH = re.compile(r"^(b|bl|br|blr|ret|b\.\w+|cbz|cbnz|tbz|tbnz)$")
_A64_VREG = re.compile(r"^(?:v(\d+)(?:\.\d*[bhsdq])?(?:\[\d+\])?|[qdshb](\d+))$")
_A64_GREG = re.compile(r"^(?:[xw](\d+)|sp|wsp)$")
_A64_ACCUM = {
    "sdot",
    "udot",
    "usdot",
    "sudot",
    "smlal",
    "smlal2",
    "umlal",
    "umlal2",
    "smlsl",
    "smlsl2",
    "umlsl",
    "umlsl2",
    "sqdmlal",
    "sqdmlal2",
    "sqdmlsl",
    "sqdmlsl2",
    "mla",
    "mls",
    "fmla",
    "fmls",
    "sadalp",
    "uadalp",
    "ssra",
    "usra",
    "srsra",
    "ursra",
    "sli",
    "sri",
    "bsl",
    "bit",
    "bif",
    "tbx",
    "sqrdmlah",
    "sqrdmlsh",
    "saba",
    "uaba",
    "sabal",
    "sabal2",
    "uabal",
    "uabal2",
    "fmlal",
    "fmlal2",
    "bfdot",
    "smmla",
    "ummla",
    "usmmla",
    "movk",
    "ins",
}
_A64_FLAGS_DEF = {
    "cmp",
    "cmn",
    "tst",
    "fcmp",
    "fcmpe",
    "ccmp",
    "ccmn",
    "adds",
    "subs",
    "ands",
    "bics",
    "adcs",
    "sbcs",
    "negs",
}
_A64_FLAGS_USE = {
    "csel",
    "csinc",
    "csinv",
    "csneg",
    "cset",
    "csetm",
    "cinc",
    "cinv",
    "cneg",
    "adc",
    "sbc",
    "adcs",
    "sbcs",
    "ccmp",
    "ccmn",
    "fcsel",
}
_A64_NOT_DEF = {"cmp", "cmn", "tst", "fcmp", "fcmpe", "ccmp", "ccmn", "prfm"}

# mnemonic -> class, for instructions on vector registers (the SOG instruction groups)
_A64_VECTOR = {}
for _m in ("sdot", "udot", "usdot", "sudot"):
    _A64_VECTOR[_m] = "vector_mac_int8"
for _m in ("sadalp", "uadalp"):
    _A64_VECTOR[_m] = "vector_pairwise_acc"
for _m in ("saddlp", "uaddlp"):  # pairwise add long (no accumulate)
    _A64_VECTOR[_m] = "vector_pairwise_long"
# ASIMD arith, long / wide / narrowing high half (A55 SOG 4.15 "ASIMD arith": 3 cycles)
for _m in (
    "saddl",
    "saddl2",
    "uaddl",
    "uaddl2",
    "ssubl",
    "ssubl2",
    "usubl",
    "usubl2",
    "saddw",
    "saddw2",
    "uaddw",
    "uaddw2",
    "ssubw",
    "ssubw2",
    "usubw",
    "usubw2",
    "addhn",
    "addhn2",
    "subhn",
    "subhn2",
):
    _A64_VECTOR[_m] = "vector_alu_long"
for _m in ("mul", "mla", "mls", "sqdmulh", "sqrdmulh", "sqrdmlah", "sqrdmlsh", "pmul"):
    _A64_VECTOR[_m] = "vector_mul"
for _m in ("ssra", "usra", "srsra", "ursra", "sli", "sri"):
    _A64_VECTOR[_m] = "vector_shift_acc"
for _m in (
    "sqxtn",
    "sqxtn2",
    "uqxtn",
    "uqxtn2",
    "sqxtun",
    "sqxtun2",
    "sqshrn",
    "sqshrn2",
    "sqrshrn",
    "sqrshrn2",
    "sqshrun",
    "sqshrun2",
    "sqrshrun",
    "sqrshrun2",
    "uqshrn",
    "uqshrn2",
    "uqrshrn",
    "uqrshrn2",
):
    _A64_VECTOR[_m] = "vector_narrow"
for _m in (
    "shl",
    "sshr",
    "ushr",
    "srshr",
    "urshr",
    "sshl",
    "ushl",
    "srshl",
    "urshl",
    "sqshl",
    "uqshl",
    "sqrshl",
    "uqrshl",
    "sqshlu",
    "sshll",
    "sshll2",
    "ushll",
    "ushll2",
    "sxtl",
    "sxtl2",
    "uxtl",
    "uxtl2",
    "shll",
    "shll2",
    "shrn",
    "shrn2",
    "rshrn",
    "rshrn2",
):
    _A64_VECTOR[_m] = "vector_shift"
for _m in (
    "tbl",
    "tbx",
    "uzp1",
    "uzp2",
    "zip1",
    "zip2",
    "trn1",
    "trn2",
    "ext",
    "rev16",
    "rev32",
    "rev64",
):
    _A64_VECTOR[_m] = "vector_permute"
for _m in (
    "scvtf",
    "ucvtf",
    "fcvtzs",
    "fcvtzu",
    "fcvtns",
    "fcvtnu",
    "fcvtas",
    "fcvtau",
    "fcvtms",
    "fcvtmu",
    "fcvtps",
    "fcvtpu",
    "fcvtn",
    "fcvtn2",
    "fcvtl",
    "fcvtl2",
    "fcvtxn",
    "fcvt",
    "frintn",
    "frinta",
    "frintm",
    "frintp",
    "frintz",
    "frintx",
    "frinti",
):
    _A64_VECTOR[_m] = "vector_convert"
for _m in (
    "fadd",
    "fsub",
    "fmul",
    "fmax",
    "fmin",
    "fmaxnm",
    "fminnm",
    "fabs",
    "fneg",
    "fabd",
    "faddp",
    "fmaxp",
    "fminp",
    "fcmeq",
    "fcmge",
    "fcmgt",
    "fcmle",
    "fcmlt",
    "fmulx",
    "fdiv",
    "fsqrt",
    "frecpe",
    "frsqrte",
    "fcsel",
):
    _A64_VECTOR[_m] = "vector_fp"
for _m in (
    "and",
    "orr",
    "eor",
    "bic",
    "orn",
    "not",
    "mvn",
    "mov",
    "movi",
    "mvni",
    "bsl",
    "bit",
    "bif",
):
    _A64_VECTOR[_m] = "vector_logic"
_A64_MLAL = {
    "smull",
    "smull2",
    "umull",
    "umull2",
    "smlal",
    "smlal2",
    "umlal",
    "umlal2",
    "smlsl",
    "smlsl2",
    "umlsl",
    "umlsl2",
    "sqdmull",
    "sqdmull2",
    "sqdmlal",
    "sqdmlal2",
    "sqdmlsl",
    "sqdmlsl2",
}
_A64_FMA = {"fmla", "fmls", "fmadd", "fmsub", "fnmadd", "fnmsub"}
_A64_SCALAR_MUL = {
    "madd",
    "msub",
    "mul",
    "mneg",
    "smull",
    "umull",
    "smaddl",
    "umaddl",
    "smsubl",
    "umsubl",
    "smulh",
    "umulh",
    "sdiv",
    "udiv",
}


def _split_operands(ops: str) -> list[str]:
    """Top-level comma-separated operands ({...} and [...] kept whole)."""
    out, depth, cur = [], 0, []
    for ch in ops:
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        if ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if "".join(cur).strip():
        out.append("".join(cur).strip())
    return out


def _a64_regs(operand: str) -> list[str]:
    """Registers named in one operand, normalised (v/q/d/s/h/b N -> vN, x/w N -> xN)."""
    out = []
    for tok in re.split(r"[\s,{}\[\]!#]+", operand):
        tok = tok.strip().lower()
        if not tok:
            continue
        m = _A64_VREG.match(tok)
        if m:
            out.append("v" + (m.group(1) or m.group(2)))
            continue
        m = _A64_GREG.match(tok)
        if m:
            out.append("x" + m.group(1) if m.group(1) else "sp")
    # "{ v0.16b, v1.16b }" lists and "v0.16b-v3.16b" ranges
    rng = re.search(r"v(\d+)\.\w+\s*-\s*v(\d+)", operand)
    if rng:
        a, b = int(rng.group(1)), int(rng.group(2))
        out = [f"v{i % 32}" for i in range(a, b + (32 if b < a else 0) + 1)]
    return out


def _a64_is_vector(operands: list[str]) -> bool:
    return any(re.match(r"^(v\d+\.|\{|[qdshb]\d+$)", o.strip().lower()) for o in operands)


def _a64_narrow(operands: list[str]) -> bool:
    """64-bit or narrower vector operation: no 128-bit register operand (A55 D-form)."""
    for o in operands:
        o = o.lower()
        if re.search(r"\bv\d+\.(16b|8h|4s|2d|1q)\b|\bq\d+\b", o):
            return False
    return True


def _a64_classify(s: str) -> tuple[str, str, list[str]]:
    parts = s.split(None, 1)
    mnem = parts[0].lower()
    ops = _split_operands(parts[1]) if len(parts) > 1 else []
    if _A64_BRANCH.match(mnem):
        return "branch", mnem, ops
    first = ops[0].strip().lower() if ops else ""
    simd_first = bool(re.match(r"^(\{|v\d+|[qdshb]\d+)", first))
    if mnem.startswith("ld") or mnem == "prfm":
        if not simd_first:
            return "scalar_load", mnem, ops
        if re.match(r"^ld\dr$", mnem):  # LD1R..LD4R: load and replicate
            return "vector_load_replicate", mnem, ops
        return ("vector_load_pair" if mnem in ("ldp", "ldnp") else "vector_load"), mnem, ops
    if mnem.startswith("st"):
        return ("vector_store" if simd_first else "scalar_store"), mnem, ops
    vector = _a64_is_vector(ops)
    if not vector:
        if mnem == "fmov" or mnem in ("umov", "smov"):
            return "vector_to_gpr", mnem, ops
        if mnem in _A64_SCALAR_MUL:
            return "scalar_mul", mnem, ops
        return "scalar_alu", mnem, ops
    if mnem in _A64_MLAL:
        return (
            ("vector_mul_long_int8" if re.search(r"\.8h\b", first) else "vector_mac_int16"),
            mnem,
            ops,
        )
    if mnem in _A64_FMA:
        return (
            ("vector_fma_fp16" if re.search(r"\.(8h|4h)\b|^h\d+", first) else "vector_fma_fp32"),
            mnem,
            ops,
        )
    gpr_src = any(_A64_GREG.match(o.strip().lower()) for o in ops[1:])
    gpr_dst = bool(_A64_GREG.match(first))
    if mnem in ("dup", "ins", "mov", "fmov") and gpr_src and not gpr_dst:
        return "vector_from_gpr", mnem, ops
    if mnem in ("umov", "smov", "mov", "fmov") and gpr_dst:
        return "vector_to_gpr", mnem, ops
    if mnem in ("dup", "ins") or (
        mnem == "mov" and re.search(r"\]\s*$", ops[-1] if ops else "") and re.search(r"\[", first)
    ):
        return "vector_permute", mnem, ops
    if mnem in ("scvtf", "ucvtf") and gpr_src:
        return "vector_from_gpr", mnem, ops
    return _A64_VECTOR.get(mnem, "vector_alu"), mnem, ops


def _a64_instr(s: str) -> Instr:
    cls, mnem, ops = _a64_classify(s)
    defs: list[str] = []
    uses: list[str] = []
    acc = None
    count = 1
    narrow = _a64_narrow(ops)
    if "load" in cls or "store" in cls:
        mem = next((i for i, o in enumerate(ops) if o.startswith("[")), len(ops))
        data = [r for o in ops[:mem] for r in _a64_regs(o)]
        addr = [r for o in ops[mem:] for r in _a64_regs(o)]
        wb = mem < len(ops) and (ops[mem].endswith("!") or mem + 1 < len(ops))
        if "load" in cls:
            defs = data if mnem != "prfm" else []
            uses = list(addr)
            if re.search(r"\}\s*\[\d+\]", " ".join(ops[:mem])):  # lane load merges
                uses += data
        else:
            uses = data + addr
        if wb and addr:
            defs.append(addr[0])
        if cls.startswith("vector"):
            count = max(
                1, len([o for o in ops[:mem]] if not ops[0].startswith("{") else _a64_regs(ops[0]))
            )
    elif cls == "branch":
        uses = [r for o in ops for r in _a64_regs(o)]
        if mnem.startswith("b."):
            uses.append("nzcv")
    else:
        regs = [_a64_regs(o) for o in ops]
        if mnem in _A64_NOT_DEF:
            uses = [r for rs in regs for r in rs]
        else:
            defs = regs[0][:1] if regs else []
            uses = [r for rs in regs[1:] for r in rs]
            if (
                mnem in _A64_ACCUM
                or mnem.endswith("2")
                and cls in ("vector_narrow", "vector_shift")
                and mnem[:-1]
                in (
                    "xtn",
                    "sqxtn",
                    "uqxtn",
                    "sqxtun",
                    "shrn",
                    "rshrn",
                    "sqshrn",
                    "sqrshrn",
                    "uqshrn",
                    "uqrshrn",
                    "sqshrun",
                    "sqrshrun",
                )
                or mnem == "xtn2"
            ):
                uses = defs + uses
                if mnem in _A64_ACCUM:
                    acc = defs[0] if defs else None
            if mnem == "mov" and cls == "vector_permute" or mnem in ("ins",):
                uses = defs + uses  # element insert keeps the other lanes
        if mnem in _A64_FLAGS_DEF:
            defs = defs + ["nzcv"]
        if mnem in _A64_FLAGS_USE:
            uses = uses + ["nzcv"]
    defs = [d for d in defs if d]
    return Instr(
        s, mnem, cls, tuple(dict.fromkeys(defs)), tuple(dict.fromkeys(uses)), acc, count, narrow
    )


# ------------------------------------------------------------------------------------------
# Hexagon
# ------------------------------------------------------------------------------------------

_HEX_MNEM = re.compile(r"(?:=|\+=|-=|\|=|&=|\^=)\s*!?\s*([A-Za-z_][\w]*)\s*\(")
_HEX_REG = re.compile(r"\b([rvpq])(\d+)(?::(\d+))?(\.(?:cur|tmp|new))?\b")


def _hex_classify(s: str) -> str:
    t = re.sub(r"^if\s*\([^)]*\)\s*", "", s)
    if re.match(r"^(jump|call|jumpr|loop[01]|endloop|dealloc_return|trap|barrier)", t):
        return "branch"
    if re.match(r"^v?mem\w*\(", t) and "=" in t:  # store: mem(...) = Rs / vmem(...) = Vs
        if t.startswith("vmem"):
            return "vector_store"
        return "scalar_store"
    if re.search(r"=\s*vmemu\(", t):
        return "vector_load_unaligned"
    if re.search(r"=\s*vmem\(", t):
        return "vector_load"
    if re.search(r"=\s*mem\w*\(", t):
        return "scalar_load"
    m = _HEX_MNEM.search(t)
    op = m.group(1) if m else ""
    vdest = bool(re.match(r"^[vq]\d+", t))
    if not vdest:
        return "scalar_alu" if not re.match(r"^r\d+(:\d+)?\s*[+]?=\s*mpy", t) else "scalar_mul"
    if op in ("vrmpy",):
        return "vector_mac_int8"
    if op == "vdmpy":
        return "vector_dmpy_int16x8"
    if op in ("vmpyi", "vmpyie", "vmpyio", "vmpye", "vmpyo", "vmpyiwb", "vmpyiwh"):
        return "vector_mpyi_int16"
    if op in ("vmpy", "vmpa", "vtmpy", "vmpyu"):
        return "vector_mac_int16"
    if op in ("vasr", "vlsr", "vasl", "vrotr", "vnormamt", "vpopcount", "vcl0", "vasrinto"):
        return "vector_shift"
    if op in ("vshuff", "vdeal", "vunpack", "vunpacko", "vsxt", "vzxt", "vshuffoe", "vdealvdd") or (
        op in ("vshuff", "vdeal") and re.match(r"^v\d+:\d+", t)
    ):
        return "vector_permute_double"
    if op in (
        "vpacke",
        "vpacko",
        "vpack",
        "vror",
        "valign",
        "vlalign",
        "vdelta",
        "vrdelta",
        "vlut32",
        "vlut16",
        "vshuffe",
        "vshuffo",
        "vdealb",
        "vdealh",
        "vdealb4w",
        "vshuffb",
        "vshuffh",
        "vswap",
    ):
        return "vector_permute"
    return "vector_alu"


def _hex_instr(s: str, packet: int | None) -> Instr:
    cls = _hex_classify(s)
    m = _HEX_MNEM.search(s)
    mnem = m.group(1) if m else s.split("(")[0].split()[0]
    lhs, rhs = (s.split("=", 1) + [""])[:2] if "=" in s else ("", s)
    store = cls in ("vector_store", "scalar_store")

    def regs(text):
        out, fwd = [], []
        for r in _HEX_REG.finditer(text):
            kind, hi, lo, suffix = r.group(1), int(r.group(2)), r.group(3), r.group(4)
            names = [f"{kind}{hi}"] + ([f"{kind}{int(lo)}"] if lo is not None else [])
            out += names
            if suffix:
                fwd += names
        return out, fwd

    lregs, lfwd = regs(lhs if not lhs.startswith("if") else re.sub(r"^if\s*\([^)]*\)", "", lhs))
    rregs, rfwd = regs(rhs)
    cond, _ = regs(re.match(r"^if\s*\(([^)]*)\)", s).group(1)) if s.startswith("if") else ([], [])
    acc = None
    if store:
        defs, uses = (), tuple(lregs + rregs + cond)
    elif cls == "branch":
        defs, uses = (), tuple(lregs + rregs + cond)
    else:
        defs = tuple(lregs)
        uses = list(rregs) + cond
        if re.search(r"(\+|-|\||&|\^)=", s):  # accumulate forms read the destination
            uses = list(lregs) + uses
            acc = lregs[0] if lregs else None
        uses = tuple(uses)
    return Instr(
        s,
        mnem,
        cls,
        tuple(dict.fromkeys(defs)),
        tuple(dict.fromkeys(uses)),
        acc,
        1,
        False,
        packet,
        tuple(lfwd + rfwd),
    )


# ------------------------------------------------------------------------------------------
# x86-64 (AT&T syntax, as LLVM prints it)
# ------------------------------------------------------------------------------------------

_X86_ACCUM = re.compile(r"^v(pdp|fmadd|fnmadd|fmsub|fnmsub)")


def _x86_classify(s: str) -> str:
    mnem = s.split()[0].lower()
    ops = s[len(mnem) :].strip()
    opl = _split_operands(ops)
    last = opl[-1] if opl else ""
    if mnem.startswith("j") or mnem in ("call", "callq", "ret", "retq", "loop"):
        return "branch"
    if mnem.startswith("lea"):  # address arithmetic, no memory access
        return "scalar_alu"
    vec = "%xmm" in ops or "%ymm" in ops or "%zmm" in ops or mnem.startswith("v")
    if "(" in last:
        return "vector_store" if vec else "scalar_store"
    if re.match(r"^vpdpbus", mnem):
        return "vector_mac_int8"
    if re.match(r"^vpdpws", mnem):
        return "vector_mac_int16"
    if mnem.startswith("vpmaddubsw"):
        return "vector_mul_long_int8"
    if mnem.startswith("vpmaddwd"):
        return "vector_pairwise_acc"
    if re.match(r"^vf(n?m(add|sub))", mnem):
        return "vector_fma_fp32"
    if "(" in ops and (
        mnem.startswith("vmov")
        or mnem.startswith("vbroadcast")
        or mnem.startswith("vpbroadcast")
        or not vec
    ):
        return "vector_load" if vec else "scalar_load"
    if vec:
        if re.match(r"^vp(sll|srl|sra)", mnem):
            return "vector_shift"
        if re.match(r"^vp(shuf|perm|unpck|pack|align)|^vperm|^vshuf|^vinsert|^vextract", mnem):
            return "vector_permute"
        if re.match(r"^vpmul", mnem):
            return "vector_mul"
        return "vector_alu"
    if re.match(r"^i?mul", mnem):
        return "scalar_mul"
    return "scalar_alu"


def _x86_instr(s: str) -> Instr:
    cls = _x86_classify(s)
    mnem = s.split()[0].lower()
    opl = _split_operands(s[len(mnem) :].strip())

    def regs(o):
        return ["r:" + r for r in re.findall(r"%(\w+)", o) if r not in ("rip",)]

    defs: list[str] = []
    uses: list[str] = []
    acc = None
    if cls in ("branch",):
        uses = [r for o in opl for r in regs(o)] + (
            ["flags"] if mnem.startswith("j") and mnem != "jmp" else []
        )
    elif cls.endswith("store"):
        uses = [r for o in opl for r in regs(o)]
    else:
        *srcs, dst = opl if opl else [""]
        uses = [r for o in srcs for r in regs(o)]
        if "(" in dst:
            uses += regs(dst)
        else:
            defs = regs(dst)[:1]
            two_op = (
                not mnem.startswith("v") and len(opl) == 2 and not mnem.startswith(("mov", "lea"))
            )
            if _X86_ACCUM.match(mnem) or two_op:
                uses = defs + uses
                acc = defs[0] if defs and _X86_ACCUM.match(mnem) else None
        if mnem.startswith(("cmp", "test", "add", "sub", "inc", "dec", "and", "or", "xor")):
            defs = defs + ["flags"]
            if mnem.startswith(("cmp", "test")):
                defs = ["flags"]

    def norm(r):
        return re.sub(r"^r:(e|r)?([abcd])[xl]$", r"r:\2x", r)  # %eax/%rax/%al alias

    return Instr(
        s,
        mnem,
        cls,
        tuple(dict.fromkeys(norm(d) for d in defs)),
        tuple(dict.fromkeys(norm(u) for u in uses)),
        acc,
    )


# ------------------------------------------------------------------------------------------
# public: classification and parsing
# ------------------------------------------------------------------------------------------


def _clean(line: str, arch: str) -> str | None:
    s = line.split("//")[0]
    if arch == "x86_64":
        s = s.split("#")[0]
    s = s.strip()
    if not s or s.startswith((".", "#", ";", "@")) or s.endswith(":"):
        return None
    if arch == "hexagon":
        s = s.strip("{} \t")
        s = re.sub(r":endloop[01]", "", s).strip()
        if not s:
            return None
    return s


def classify(line: str, arch: str) -> str | None:
    """Instruction class of one assembly line; None for labels, directives, comments, braces."""
    if arch not in ("aarch64", "hexagon", "x86_64"):
        raise PipelineError(f"unknown arch '{arch}' (expected aarch64, hexagon or x86_64)")
    s = _clean(line, arch)
    if s is None:
        return None
    if arch == "aarch64":
        return _a64_classify(s)[0]
    if arch == "hexagon":
        return _hex_classify(s)
    return _x86_classify(s)


def parse(lines: Sequence[str], arch: str) -> list[Instr]:
    """The instructions of a block (labels, directives and comments dropped)."""
    out: list[Instr] = []
    packet = -1
    in_packet = False
    for raw in lines:
        if arch == "hexagon":
            body = raw.split("//")[0].strip()
            opens = body.startswith("{")
            if opens:
                packet += 1
                in_packet = True
            closes = "}" in body
            s = _clean(raw, arch)
            if s is not None:
                if not in_packet:  # an unbundled instruction is a packet of its own
                    packet += 1
                for part in [p.strip() for p in s.split(";") if p.strip()]:
                    out.append(_hex_instr(part, packet))
            if closes:
                in_packet = False
            continue
        s = _clean(raw, arch)
        if s is None:
            continue
        out.append(_a64_instr(s) if arch == "aarch64" else _x86_instr(s))
    return out


def loop_bodies(asm: str, arch: str) -> list[list[str]]:
    """Raw lines of each innermost loop of an assembly file, label to back edge (a backward
    branch, or a Hexagon `:endloop0/1` closing the packet of a `loop0/1(label, n)`), with the
    Hexagon packet braces kept so `block_cycles` sees the packets. The same loop rule as
    `accelsim.kernels.kernel.instruction_mix`."""
    lines = asm.splitlines()
    labels: dict[str, int] = {}
    loops: list[tuple[int, int]] = []
    hw: dict[str, str] = {}
    for i, raw in enumerate(lines):
        s = raw.split("//")[0].strip()
        if arch == "x86_64":
            s = raw.split("#")[0].strip()
        if s.endswith(":") and not s.startswith("{"):
            labels[s[:-1]] = i
            continue
        if arch == "hexagon":
            m = re.search(r"\bloop([01])\(#*([.\w]+)", s)
            if m:
                hw[m.group(1)] = m.group(2)
            m = re.search(r":endloop([01])", s)
            if m and hw.get(m.group(1)) in labels:
                loops.append((labels[hw.pop(m.group(1))], i))
            m = re.search(r"\bjump(?::\w+)?\s+([.\w]+)\s*$", s)
        else:
            parts = s.replace(",", " ").split()
            m = None
            if parts and (
                (arch == "aarch64" and _A64_BRANCH.match(parts[0].lower()))
                or (arch == "x86_64" and parts[0].startswith("j"))
            ):
                m = re.match(r"(.*)", parts[-1])
        if m and m.group(1) in labels and labels[m.group(1)] < i:
            end = i
            if arch == "hexagon":  # close the packet the branch sits in
                while end + 1 < len(lines) and "}" not in lines[end]:
                    end += 1
            loops.append((labels[m.group(1)], end))
    loops = sorted(set(loops))
    inner = [
        lp for lp in loops if not any(o != lp and lp[0] <= o[0] and o[1] <= lp[1] for o in loops)
    ]
    return [lines[a : b + 1] for a, b in inner]


def arch_of(target) -> str:
    triple = str(target.codegen.tvm_target.get("mtriple", ""))
    for prefix, arch in (
        ("aarch64", "aarch64"),
        ("arm64", "aarch64"),
        ("hexagon", "hexagon"),
        ("x86_64", "x86_64"),
    ):
        if triple.startswith(prefix):
            return arch
    if target.kind not in _ARCH_BY_KIND:
        raise PipelineError(
            f"{target.path}: kind '{target.kind}' has no instruction-level "
            f"pipe model (expected one of {', '.join(_ARCH_BY_KIND)})"
        )
    return _ARCH_BY_KIND[target.kind]


# ------------------------------------------------------------------------------------------
# class timing from the target table
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassTiming:
    name: str  # the table row used (after fallback)
    throughput: float  # instructions per cycle over its pipes
    latency: float
    pipes: tuple[str, ...]
    accumulate_latency: float | None = None
    throughput_d: float | None = None  # D-form (64-bit) throughput where it differs
    input_latency: float = 1.0
    latency_d: float | None = None  # D-form (64-bit) latency where it differs
    qform_first_slot: bool | None = None  # overrides timing.qform_first_slot for the class
    retire_ooo: bool = False  # exempt from timing.writeback_in_order


def class_timing(target, cls: str) -> ClassTiming:
    table = target.timing.get("instructions")
    if not isinstance(table, Mapping):
        raise PipelineError(
            f"{target.path}: timing.instructions: missing (the pipe model needs "
            f"per-class throughput and latency)"
        )
    return _class_timing(target.path, id(table), table, cls)


_CT_CACHE: dict = {}


def _class_timing(path: str, key: int, table: Mapping, cls: str) -> ClassTiming:
    ck = (path, key, cls)
    hit = _CT_CACHE.get(ck)
    if hit is not None and hit[0] is table:  # the table is kept alive: its id is not reused
        return hit[1]
    name = cls
    seen = []
    while name not in table:
        seen.append(name)
        if name not in _FALLBACK:
            raise PipelineError(
                f"{path}: timing.instructions: no row for instruction class "
                f"'{cls}' (tried {', '.join(seen)})"
            )
        name = _FALLBACK[name]
    row = table[name]
    for field in ("throughput", "latency"):
        if not isinstance(row.get(field), (int, float)) or row.get(field) <= 0:
            raise PipelineError(
                f"{path}: timing.instructions.{name}.{field}: expected a "
                f"positive number, found {row.get(field)!r}"
            )
    pipes = row.get("pipes")
    pipes = tuple(str(p) for p in pipes) if pipes else (f"<{name}>",)
    acc = row.get("accumulate_latency")
    ct = ClassTiming(
        name,
        float(row["throughput"]),
        float(row["latency"]),
        pipes,
        float(acc) if acc is not None else None,
        float(row["throughput_d"]) if row.get("throughput_d") else None,
        float(row.get("input_latency", 1)),
        float(row["latency_d"]) if row.get("latency_d") else None,
        row.get("qform_first_slot"),
        bool(row.get("retire_ooo", False)),
    )
    _CT_CACHE[ck] = (table, ct)
    return ct


def _occupancy(ct: ClassTiming, ins: Instr) -> float:
    """Pipe-cycles one instruction takes over its pipes."""
    tp = ct.throughput_d if (ins.narrow and ct.throughput_d) else ct.throughput
    return ins.count * len(ct.pipes) / tp


def _latency(ct: ClassTiming, ins: Instr) -> float:
    return ct.latency_d if (ins.narrow and ct.latency_d) else ct.latency


def _edge_latency(prod: Instr, pt: ClassTiming, cons: Instr, reg: str) -> float:
    if (
        cons.acc == reg
        and prod.acc is not None
        and pt.accumulate_latency is not None
        and prod.cls == cons.cls
    ):
        return pt.accumulate_latency
    return _latency(pt, prod)


# ------------------------------------------------------------------------------------------
# bounds
# ------------------------------------------------------------------------------------------


def resource_bound(instrs: Sequence[Instr], timings: Sequence[ClassTiming]) -> float:
    """Max over pipe subsets S of (work of the classes confined to S) / |S|."""
    work: dict[tuple[str, ...], float] = {}
    for ins, ct in zip(instrs, timings):
        key = tuple(sorted(set(ct.pipes)))
        work[key] = work.get(key, 0.0) + _occupancy(ct, ins)
    # a binding subset is a union of class pipe sets: enumerate those unions
    best = 0.0
    keys = list(work)
    seen: set[frozenset] = set()
    for r in range(1, len(keys) + 1):
        if r > 3 and len(keys) > 12:  # bounded search; the binding set is rarely larger
            break
        for combo in itertools.combinations(keys, r):
            s = frozenset(u for k in combo for u in k)
            if s in seen:
                continue
            seen.add(s)
            w = sum(v for k, v in work.items() if set(k) <= s)
            best = max(best, w / len(s))
    return best


def _dataflow_slope(
    instrs: Sequence[Instr], timings: Sequence[ClassTiming], iterations: int = 24
) -> float:
    """Loop-carried dependency bound: the slope of an unlimited-resource ASAP schedule."""
    ready: dict[str, tuple[float, int]] = {}  # reg -> (time, producer index)
    ends = []
    for _ in range(iterations):
        end = 0.0
        for i, (ins, _ct) in enumerate(zip(instrs, timings)):
            t = 0.0
            for r in ins.uses:
                if r in ready:
                    pt_time, p = ready[r]
                    lat = _edge_latency(instrs[p], timings[p], ins, r)
                    t = max(t, pt_time + lat)
            for d in ins.defs:
                ready[d] = (t, i)
            end = max(end, t)
        ends.append(end)
    h = iterations // 2
    return (ends[-1] - ends[h - 1]) / (iterations - h)


def _block_latency(instrs, timings) -> float:
    """Critical path of one execution of the block (no back edge)."""
    ready: dict[str, tuple[float, int]] = {}
    end = 0.0
    for i, (ins, ct) in enumerate(zip(instrs, timings)):
        t = 0.0
        for r in ins.uses:
            if r in ready:
                pt_time, p = ready[r]
                t = max(t, pt_time + _edge_latency(instrs[p], timings[p], ins, r))
        for d in ins.defs:
            ready[d] = (t, i)
        end = max(end, t + _latency(ct, ins))
    return end


def _slot0_only(ins: Instr, ct: ClassTiming, q_first: bool) -> bool:
    """A Q-form (128-bit) vector data-processing instruction issues only as the first of a
    dual-issue pair (A55 SOG 4.15 note 1), unless its class row says otherwise."""
    rule = q_first if ct.qform_first_slot is None else bool(ct.qform_first_slot)
    return (
        rule
        and ins.cls.startswith("vector")
        and not ins.narrow
        and "load" not in ins.cls
        and "store" not in ins.cls
    )


def _in_order(instrs, timings, target, loop: bool, iterations: int = 16) -> float:
    """Cycle-by-cycle in-order issue (A55 SOG 3.2: dual issue, in program order).

    `timing.writeback_in_order` (off for the A55: its fixed-length pipelines complete in order
    without holding issue back, SOG 3.1) delays an instruction until its result would be
    written no earlier than every older one's, unless its class is `retire_ooo`: the rule
    llvm-mca's InOrderIssueStage applies (LastWriteBackCycle), kept to reproduce it."""
    width = int(target.timing.get("issue_width", 1))
    q_first = bool(target.timing.get("qform_first_slot", False))
    wb_order = bool(target.timing.get("writeback_in_order", False))
    free: dict[str, float] = {}  # pipe -> next free cycle
    ready: dict[str, tuple[float, int]] = {}
    cycle, slot = 0.0, 0
    starts = []
    reps = iterations if loop else 1
    last_end = 0.0
    last_wb = 0.0
    for _ in range(reps):
        for i, (ins, ct) in enumerate(zip(instrs, timings)):
            t = cycle
            for r in ins.uses:
                if r in ready:
                    pt_time, p = ready[r]
                    t = max(t, pt_time + _edge_latency(instrs[p], timings[p], ins, r))
            lat = _latency(ct, ins)
            if wb_order and not ct.retire_ooo:
                t = max(t, last_wb - lat)
            occ = _occupancy(ct, ins)
            n_units = max(1, min(len(ct.pipes), int(round(occ)) or 1))
            busy = occ / n_units
            slot0 = _slot0_only(ins, ct, q_first)
            while True:
                if t > cycle:
                    cycle, slot = t, 0
                if slot >= width or (slot0 and slot > 0):
                    cycle, slot = cycle + 1, 0
                    continue
                avail = sorted(ct.pipes, key=lambda u: free.get(u, 0.0))[:n_units]
                start = max(free.get(u, 0.0) for u in avail)
                if start > cycle:
                    cycle, slot = start, 0
                    continue
                break
            for u in avail:
                free[u] = cycle + busy
            for d in ins.defs:
                ready[d] = (cycle, i)
            if i == 0:
                starts.append(cycle)
            slot += 1
            last_end = max(last_end, cycle + lat)
            if wb_order and not ct.retire_ooo:
                last_wb = max(last_wb, cycle + lat)
    if not loop:
        return max(cycle + 1, last_end) if instrs else 0.0
    h = reps // 2
    return (starts[-1] - starts[h]) / (reps - 1 - h) if reps > 2 else cycle


def _out_of_order(instrs, timings, target, iterations: int = 8) -> float:
    """Greedy list schedule of repeated iterations: every instruction, in program order, starts
    at the first cycle >= its decode cycle (`issue_width` per cycle) and its operands' ready time
    at which one of its pipes is free (pipelined pipes take one instruction per cycle, or
    1/throughput cycles for partly pipelined ones), and not before the instruction `window`
    places older has started (`timing.window`, the reorder window; unlimited if absent). This is where a dependency chain and pipe
    pressure interact, which neither bound sees alone (a critical multiply waiting for a pipe that
    an older independent instruction holds)."""
    width = float(target.timing["issue_width"])
    window = int(target.timing.get("window", 0)) or None  # instructions in flight (ROB)
    used: dict[tuple[str, int], float] = {}  # (pipe, cycle) -> fraction taken
    jump: dict[tuple[str, float, int], int] = {}

    def room(u: str, share: float, c: int) -> int:
        """First cycle >= c where pipe u has `share` left (used[] only grows, so the
        skip pointers stay valid; path compression keeps a long busy stretch O(1))."""
        path = []
        while used.get((u, c), 0.0) + share > 1.0 + 1e-9:
            path.append(c)
            c = jump.get((u, share, c), c + 1)
        for q in path:
            jump[(u, share, q)] = c
        return c

    ready: dict[str, tuple[float, int]] = {}
    started: list[int] = []
    starts = []
    n = 0
    for _ in range(iterations):
        first = None
        for i, (ins, ct) in enumerate(zip(instrs, timings)):
            t = float(int(n / width))
            if window and n >= window:  # enters the window when the one `window` older left
                t = max(t, float(started[n - window] + 1))
            n += 1
            for r in ins.uses:
                if r in ready:
                    pt_time, p = ready[r]
                    t = max(t, pt_time + _edge_latency(instrs[p], timings[p], ins, r))
            occ = _occupancy(ct, ins)
            n_units = max(1, min(len(ct.pipes), int(round(occ)) or 1))
            share = occ / n_units  # of each pipe: < 1 shares a pipe-cycle
            cycles = max(1, int(round(share)))
            share = min(share, 1.0)
            c = int(t + 0.999999)
            while True:
                cand = sorted((room(u, share, c), u) for u in ct.pipes)[:n_units]
                c = cand[-1][0]
                free = [u for _, u in cand]
                if all(room(u, share, c + k) == c + k for u in free for k in range(cycles)):
                    break
                c += 1
            for u in free[:n_units]:
                for k in range(cycles):
                    used[(u, c + k)] = used.get((u, c + k), 0.0) + share
            for d in ins.defs:
                ready[d] = (float(c), i)
            started.append(c)
            first = c if first is None else max(first, c)
        starts.append(first)
    h = iterations // 2
    return (starts[-1] - starts[h - 1]) / (iterations - h)


def _hexagon(instrs, timings, loop: bool, iterations: int = 16) -> float:
    """Packets in order, one per cycle, plus interlock stalls (HVX PRM input latencies)."""
    packets: dict[int, list[int]] = {}
    for i, ins in enumerate(instrs):
        packets.setdefault(ins.packet if ins.packet is not None else i, []).append(i)
    order = [packets[k] for k in sorted(packets)]
    ready: dict[str, tuple[float, int]] = {}
    t = -1.0
    starts = []
    reps = iterations if loop else 1
    for _ in range(reps):
        starts.append(t + 1)
        for members in order:
            issue = t + 1
            # .cur/.tmp loads and .new stores forward within their own packet
            fwd = {r for i in members for r in instrs[i].same_packet}
            for i in members:
                ins, ct = instrs[i], timings[i]
                for r in ins.uses:
                    if r not in ready or r in fwd:
                        continue
                    pt_time, p = ready[r]
                    lat = timings[p].latency
                    if r.startswith(("v", "q")) and r != ins.acc:  # early HVX source
                        lat = max(lat, ct.input_latency)
                    issue = max(issue, pt_time + lat)
            for i in members:
                for d in instrs[i].defs:
                    ready[d] = (issue, i)
            t = issue
    if not loop:
        return t + 1
    h = reps // 2
    return (starts[-1] - starts[h]) / (reps - 1 - h)


def block_cycles(lines: Sequence[str], target, loop: bool = True) -> float:
    """Steady-state core cycles per execution of a basic block (or of a loop body, loop=True)."""
    arch = arch_of(target)
    instrs = parse(lines, arch)
    if not instrs:
        return 0.0
    timings = [class_timing(target, ins.cls) for ins in instrs]
    if arch == "hexagon":
        return _hexagon(instrs, timings, loop)
    width = target.timing.get("issue_width")
    if not isinstance(width, (int, float)) or width <= 0:
        raise PipelineError(
            f"{target.path}: timing.issue_width: expected a positive number, found {width!r}"
        )
    issue = len(instrs) / float(width)
    res = resource_bound(instrs, timings)
    if target.timing.get("in_order"):
        return max(issue, res, _in_order(instrs, timings, target, loop))
    if not loop:
        return max(issue, res, _block_latency(instrs, timings))
    return max(issue, res, _dataflow_slope(instrs, timings), _out_of_order(instrs, timings, target))


def bounds(lines: Sequence[str], target, loop: bool = True) -> dict[str, float]:
    """The separate bounds behind `block_cycles` (for reports and tests)."""
    arch = arch_of(target)
    instrs = parse(lines, arch)
    timings = [class_timing(target, ins.cls) for ins in instrs]
    if arch == "hexagon":
        return {
            "packets": float(len({i.packet for i in instrs})),
            "cycles": _hexagon(instrs, timings, loop),
        }
    out = {
        "issue": len(instrs) / float(target.timing["issue_width"]),
        "resource": resource_bound(instrs, timings),
        "dependency": (
            _dataflow_slope(instrs, timings) if loop else _block_latency(instrs, timings)
        ),
    }
    if target.timing.get("in_order"):
        out["in_order"] = _in_order(instrs, timings, target, loop)
    elif loop:
        out["schedule"] = _out_of_order(instrs, timings, target)
    return out
