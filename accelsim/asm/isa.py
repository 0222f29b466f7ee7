"""Which instruction set a piece of assembly, or a target's generated code, is in; the error
this front end raises; the line syntax the instruction sets share (comments, directives,
operand lists)."""

from __future__ import annotations

import re

from accelsim.core.errors import AccelsimError

ISAS = ("aarch64", "hexagon", "x86_64")
_ISA_BY_KIND = {"cpu-simd": "aarch64", "vliw-dsp": "hexagon", "host": "x86_64"}


class AsmError(AccelsimError):
    """Assembly, or a target, this front end cannot read (the message names the file)."""


def check_isa(isa: str) -> str:
    if isa not in ISAS:
        raise AsmError(f"unknown arch '{isa}' (expected {', '.join(ISAS[:-1])} or {ISAS[-1]})")
    return isa


def detect_isa(asm: str) -> str:
    """The instruction set of an assembly text: Hexagon prints VLIW packets as brace lines,
    which no other ISA's syntax has; x86-64 (AT&T) names its registers with `%`."""
    if re.search(r"^\s*\{\s*$", asm, re.M):
        return "hexagon"
    if re.search(r"\b(?:movq|pushq)\b|%(?:rsp|rax)\b", asm):
        return "x86_64"
    return "aarch64"


def isa_of(target) -> str:
    """The instruction set of a target's generated code: from its LLVM triple, else its kind."""
    triple = str(target.codegen.tvm_target.get("mtriple", ""))
    for prefix, isa in (
        ("aarch64", "aarch64"),
        ("arm64", "aarch64"),
        ("hexagon", "hexagon"),
        ("x86_64", "x86_64"),
    ):
        if triple.startswith(prefix):
            return isa
    if target.kind not in _ISA_BY_KIND:
        raise AsmError(
            f"{target.path}: kind '{target.kind}' has no instruction-level "
            f"pipe model (expected one of {', '.join(_ISA_BY_KIND)})"
        )
    return _ISA_BY_KIND[target.kind]


def strip_comment(raw: str, isa: str) -> str:
    """A line without its comment, stripped: `//` (AArch64, Hexagon), `#` on x86-64 (AArch64
    and Hexagon write immediates with `#`)."""
    s = raw.split("//")[0]
    if isa == "x86_64":
        s = s.split("#")[0]
    return s.strip()


def is_label(s: str) -> bool:
    """A stripped line that defines a label (not a Hexagon packet brace)."""
    return s.endswith(":") and not s.startswith("{")


def split_operands(ops: str) -> list[str]:
    """Top-level comma-separated operands ({...}, [...] and AT&T memory operands (...) kept
    whole)."""
    out, depth, cur = [], 0, []
    for ch in ops:
        if ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        if ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if "".join(cur).strip():
        out.append("".join(cur).strip())
    return out
