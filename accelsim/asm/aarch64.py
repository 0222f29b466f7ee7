"""AArch64 (as LLVM prints it): instruction classes (the Arm Software Optimization Guides'
instruction groups, as `timing.instructions` names them), registers defined and used, and the
control flow of an instruction."""

from __future__ import annotations

import re

from accelsim.asm.instr import Instr
from accelsim.asm.isa import split_operands

_BRANCH = re.compile(r"^(b|bl|br|blr|ret|b\.\w+|cbz|cbnz|tbz|tbnz)$")
_VREG = re.compile(r"^(?:v(\d+)(?:\.\d*[bhsdq])?(?:\[\d+\])?|[qdshb](\d+))$")
_GREG = re.compile(r"^(?:[xw](\d+)|sp|wsp)$")
# long multiply-accumulates (widening, into the destination)
_LONG_MAC = {
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
}
# instructions that read their destination register (accumulate or merge into it)
_ACCUM = _LONG_MAC | {
    "sdot",
    "udot",
    "usdot",
    "sudot",
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
    "bfmmla",
    "bfmlalb",
    "bfmlalt",
    "smmla",
    "ummla",
    "usmmla",
    "movk",
    "ins",
}
_FLAGS_DEF = {
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
_FLAGS_USE = {
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
_NOT_DEF = {"cmp", "cmn", "tst", "fcmp", "fcmpe", "ccmp", "ccmn", "prfm"}

# mnemonic -> class, for instructions on vector registers (the SOG instruction groups)
_VECTOR = {}
for _m in ("sdot", "udot", "usdot", "sudot"):
    _VECTOR[_m] = "vector_mac_int8"
# Armv8.6 I8MM: 2x8 by 8x2 int8 matrix multiply-accumulate into a 2x2 int32 tile (32 MACs)
for _m in ("smmla", "ummla", "usmmla"):
    _VECTOR[_m] = "vector_mmla_int8"
# Armv8.6 BF16 dot product / matrix multiply-accumulate into fp32
for _m in ("bfdot", "bfmmla", "bfmlalb", "bfmlalt"):
    _VECTOR[_m] = "vector_mac_bf16"
for _m in ("sadalp", "uadalp"):
    _VECTOR[_m] = "vector_pairwise_acc"
for _m in ("saddlp", "uaddlp"):  # pairwise add long (no accumulate)
    _VECTOR[_m] = "vector_pairwise_long"
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
    _VECTOR[_m] = "vector_alu_long"
for _m in ("mul", "mla", "mls", "sqdmulh", "sqrdmulh", "sqrdmlah", "sqrdmlsh", "pmul"):
    _VECTOR[_m] = "vector_mul"
for _m in ("ssra", "usra", "srsra", "ursra", "sli", "sri"):
    _VECTOR[_m] = "vector_shift_acc"
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
    _VECTOR[_m] = "vector_narrow"
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
    _VECTOR[_m] = "vector_shift"
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
    _VECTOR[_m] = "vector_permute"
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
    _VECTOR[_m] = "vector_convert"
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
    _VECTOR[_m] = "vector_fp"
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
    _VECTOR[_m] = "vector_logic"
_MLAL = _LONG_MAC | {"smull", "smull2", "umull", "umull2", "sqdmull", "sqdmull2"}
_FMA = {"fmla", "fmls", "fmadd", "fmsub", "fnmadd", "fnmsub"}
# scalar multiply(-add/-subtract) forms
SCALAR_MULTIPLY = {
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
}
_SCALAR_MUL = SCALAR_MULTIPLY | {"smulh", "umulh", "sdiv", "udiv"}


def _regs(operand: str) -> list[str]:
    """Registers named in one operand, normalised (v/q/d/s/h/b N -> vN, x/w N -> xN)."""
    out = []
    for tok in re.split(r"[\s,{}\[\]!#]+", operand):
        tok = tok.strip().lower()
        if not tok:
            continue
        m = _VREG.match(tok)
        if m:
            out.append("v" + (m.group(1) or m.group(2)))
            continue
        m = _GREG.match(tok)
        if m:
            out.append("x" + m.group(1) if m.group(1) else "sp")
    # "{ v0.16b, v1.16b }" lists and "v0.16b-v3.16b" ranges
    rng = re.search(r"v(\d+)\.\w+\s*-\s*v(\d+)", operand)
    if rng:
        a, b = int(rng.group(1)), int(rng.group(2))
        out = [f"v{i % 32}" for i in range(a, b + (32 if b < a else 0) + 1)]
    return out


def _is_vector(operands: list[str]) -> bool:
    return any(re.match(r"^(v\d+\.|\{|[qdshb]\d+$)", o.strip().lower()) for o in operands)


def _narrow(operands: list[str]) -> bool:
    """64-bit or narrower vector operation: no 128-bit register operand (A55 D-form)."""
    for o in operands:
        o = o.lower()
        if re.search(r"\bv\d+\.(16b|8h|4s|2d|1q)\b|\bq\d+\b", o):
            return False
    return True


def operands(s: str) -> tuple[str, list[str]]:
    """(mnemonic, top-level operands) of one instruction."""
    parts = s.split(None, 1)
    return parts[0].lower(), split_operands(parts[1]) if len(parts) > 1 else []


def classify(s: str) -> tuple[str, str, list[str]]:
    """(instruction class, mnemonic, operands) of one instruction."""
    mnem, ops = operands(s)
    if _BRANCH.match(mnem):
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
    vector = _is_vector(ops)
    if not vector:
        if mnem == "fmov" or mnem in ("umov", "smov"):
            return "vector_to_gpr", mnem, ops
        if mnem in _SCALAR_MUL:
            return "scalar_mul", mnem, ops
        return "scalar_alu", mnem, ops
    if mnem in _MLAL:
        return (
            ("vector_mul_long_int8" if re.search(r"\.8h\b", first) else "vector_mac_int16"),
            mnem,
            ops,
        )
    if mnem in _FMA:
        return (
            ("vector_fma_fp16" if re.search(r"\.(8h|4h)\b|^h\d+", first) else "vector_fma_fp32"),
            mnem,
            ops,
        )
    gpr_src = any(_GREG.match(o.strip().lower()) for o in ops[1:])
    gpr_dst = bool(_GREG.match(first))
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
    return _VECTOR.get(mnem, "vector_alu"), mnem, ops


def instr(s: str) -> Instr:
    """One instruction: class, registers defined and used, accumulator, registers moved."""
    cls, mnem, ops = classify(s)
    defs: list[str] = []
    uses: list[str] = []
    acc = None
    count = 1
    narrow = _narrow(ops)
    if "load" in cls or "store" in cls:
        mem = next((i for i, o in enumerate(ops) if o.startswith("[")), len(ops))
        data = [r for o in ops[:mem] for r in _regs(o)]
        addr = [r for o in ops[mem:] for r in _regs(o)]
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
                1, len([o for o in ops[:mem]] if not ops[0].startswith("{") else _regs(ops[0]))
            )
    elif cls == "branch":
        uses = [r for o in ops for r in _regs(o)]
        if mnem.startswith("b."):
            uses.append("nzcv")
    else:
        regs = [_regs(o) for o in ops]
        if mnem in _NOT_DEF:
            uses = [r for rs in regs for r in rs]
        else:
            defs = regs[0][:1] if regs else []
            uses = [r for rs in regs[1:] for r in rs]
            if (
                mnem in _ACCUM
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
                if mnem in _ACCUM:
                    acc = defs[0] if defs else None
            if mnem == "mov" and cls == "vector_permute" or mnem in ("ins",):
                uses = defs + uses  # element insert keeps the other lanes
        if mnem in _FLAGS_DEF:
            defs = defs + ["nzcv"]
        if mnem in _FLAGS_USE:
            uses = uses + ["nzcv"]
    defs = [d for d in defs if d]
    return Instr(
        s, mnem, cls, tuple(dict.fromkeys(defs)), tuple(dict.fromkeys(uses)), acc, count, narrow
    )


# control flow of one instruction: (kind, target) with kind in
# jump | cjump | ret | cret | call | icall | ijump
COND_BRANCH = re.compile(r"^(b\.\w+|cbz|cbnz|tbz|tbnz)$")


def flow(text: str) -> list[tuple[str, str | None]]:
    parts = text.replace(",", " ").split()
    m = parts[0]
    if m == "b":
        return [("jump", parts[1])]
    if COND_BRANCH.match(m):
        return [("cjump", parts[-1])]
    if m == "ret":
        return [("ret", None)]
    if m == "br":
        return [("ijump", None)]
    if m == "bl":
        return [("call", parts[1])]
    if m == "blr":
        return [("icall", None)]
    return []
