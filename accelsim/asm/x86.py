"""x86-64 in AT&T syntax (as LLVM prints it for the host target): instruction classes,
registers defined and used, control flow."""

from __future__ import annotations

import re

from accelsim.asm.instr import Instr
from accelsim.asm.isa import split_operands

_ACCUM = re.compile(r"^v(pdp|fmadd|fnmadd|fmsub|fnmsub)")


def classify(s: str) -> str:
    """Instruction class of one instruction."""
    mnem = s.split()[0].lower()
    ops = s[len(mnem) :].strip()
    opl = split_operands(ops)
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


def instr(s: str) -> Instr:
    """One instruction: class, registers defined and used (AT&T: sources first, destination
    last), accumulator."""
    cls = classify(s)
    mnem = s.split()[0].lower()
    opl = split_operands(s[len(mnem) :].strip())

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
            if _ACCUM.match(mnem) or two_op:
                uses = defs + uses
                acc = defs[0] if defs and _ACCUM.match(mnem) else None
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


def flow(text: str) -> list[tuple[str, str | None]]:
    """Control flow of one instruction: (kind, target) with kind in
    jump | cjump | ret | call | icall | ijump."""
    parts = text.split()
    m = parts[0].lower()
    target = parts[-1] if len(parts) > 1 else ""
    indirect = target.startswith("*")
    if m in ("jmp", "jmpq"):
        return [("ijump", None)] if indirect else [("jump", target)]
    if m.startswith("j"):
        return [("cjump", target)]
    if m in ("ret", "retq"):
        return [("ret", None)]
    if m in ("call", "callq"):
        return [("icall", None)] if indirect else [("call", target)]
    return []
