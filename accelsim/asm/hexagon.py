"""Hexagon / HVX (as LLVM prints it): instruction classes (HVX PRM resource groups, as
`timing.instructions` names them), registers defined and used, mnemonics, control flow,
hardware loops, and a syntax tree of an instruction's right-hand side."""

from __future__ import annotations

import re

from accelsim.asm.instr import Instr

_MNEM = re.compile(r"(?:=|\+=|-=|\|=|&=|\^=)\s*!?\s*([A-Za-z_][\w]*)\s*\(")
_REG = re.compile(r"\b([rvpq])(\d+)(?::(\d+))?(\.(?:cur|tmp|new))?\b")


def classify(s: str) -> str:
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
    m = _MNEM.search(t)
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


_OP = re.compile(r"(?:=|\+=|-=|\|=|&=|\^=)\s*!?\s*([A-Za-z_][\w.]*)\s*\(")


def _unpredicated(s: str) -> str:
    """An instruction without its `if (...)` predicate (which may nest parentheses)."""
    if not re.match(r"if\s*\(", s):
        return s
    depth = 0
    for j in range(s.index("("), len(s)):
        depth += {"(": 1, ")": -1}.get(s[j], 0)
        if depth == 0:
            return s[j + 1 :].strip()
    return s


def mnemonic(s: str) -> str:
    """The operation of one instruction: the function its right-hand side calls (`vrmpy`,
    `cmp.eq`, `add`), else the leading word of an instruction that assigns nothing (`jump:nt`,
    `loop0`, `jumpr`, `nop`, ...), else the memory access a store writes (`memw`, `vmem`), else
    `transfer` (a register or immediate move)."""
    t = _unpredicated(s)
    m = _OP.search(t)
    if m:
        return m.group(1)
    if re.match(r"^v?mem\w*\(", t):
        return t.split("(")[0]
    if "=" not in t:
        return re.split(r"[\s(]", t, maxsplit=1)[0]
    return "transfer"


def instr(s: str, packet: int | None) -> Instr:
    """One instruction (one `;`-separated part of a line): class, registers defined and used
    (register pairs as both halves), accumulator, packet, registers forwarded in-packet."""
    cls = classify(s)
    mnem = mnemonic(s)
    lhs, rhs = (s.split("=", 1) + [""])[:2] if "=" in s else ("", s)
    store = cls in ("vector_store", "scalar_store")

    def regs(text):
        out, fwd = [], []
        for r in _REG.finditer(text):
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
# control flow
# ------------------------------------------------------------------------------------------

JUMP = re.compile(r"\bjump(?::\w+)?\s+#*([\w.$@]+)\s*$")
# loop0/1(label, #N | rN), and the software-pipelined p3 = sp1loop0(label, n)
LOOP_SETUP = re.compile(r"\b(?:sp\d)?loop([01])\(\s*#*([\w.$]+)\s*,\s*(#*-?\w+)\s*\)")
ENDLOOP = re.compile(r":endloop(\d+)")


def flow(text: str) -> list[tuple[str, str | None]]:
    """Control flow of one instruction: (kind, target) with kind in
    jump | cjump | ret | cret | call | icall | ijump."""
    cond = bool(re.search(r"\bif\s*\(", text))
    m = JUMP.search(text)
    if m:
        return [("cjump" if cond else "jump", m.group(1))]
    if re.search(r"\b(jumpr\s+r31|dealloc_return)\b", text):
        return [("cret" if cond else "ret", None)]
    if re.search(r"\bjumpr\b", text):
        return [("ijump", None)]
    m = re.search(r"\bcall\s+#*([\w.$@]+)", text)
    if m:
        return [("call", m.group(1))]
    if re.search(r"\bcallr\b", text):
        return [("icall", None)]
    return []


# ------------------------------------------------------------------------------------------
# syntax trees of expressions: ("imm", n) | ("sym", name) | ("reg", name, .new) |
# ("pair", hi, lo, .new) | ("call", name, [args]) | ("neg", "!"|"-"|"+"|"~", node) |
# ("op", token) | ("other", token)
# ------------------------------------------------------------------------------------------

ALIAS = {"sp": "r29", "fp": "r30", "lr": "r31"}


def tokens(s: str) -> list[str]:
    """Tokens of a Hexagon expression."""
    return re.findall(r"##?-?[\w.@]+|[\w.]+(?::\d+)?|\+\+|<<|[(),+!~-]|\S", s)


class ExprParser:
    """Recursive-descent parser of one expression: `add(r1,#4)`, `memw(r29+#8)`,
    `cmp.gt(r2,r3)`, `!p0.new` ..."""

    def __init__(self, s):
        self.t = tokens(s)
        self.i = 0

    def peek(self):
        return self.t[self.i] if self.i < len(self.t) else None

    def take(self):
        self.i += 1
        return self.t[self.i - 1]

    def expr(self):
        neg = None
        if self.peek() in ("!", "+", "-", "~"):
            neg = self.take()
        tok = self.take()
        if tok.startswith("#"):
            node = (
                ("imm", int(tok.lstrip("#").split("@")[0], 0))
                if re.fullmatch(r"##?-?(0x[0-9a-fA-F]+|\d+)", tok)
                else ("sym", tok)
            )
        elif self.peek() == "(":
            self.take()
            args = []
            while self.peek() not in (")", None):
                args.append(self.expr())
                if self.peek() == ",":
                    self.take()
                elif self.peek() not in (")", None):
                    args.append(("op", self.take()))
            self.take()
            while self.peek() == ":" or (self.peek() or "").startswith(":"):
                self.take()
                if self.peek() and re.fullmatch(r"\w+", self.peek()):
                    self.take()
            node = ("call", tok, args)
        else:
            node = operand(tok)
        if neg:
            node = ("neg", neg, node)
        return node


def parse_expr(s: str):
    """The syntax tree of one expression."""
    return ExprParser(s).expr()


def operand(tok: str):
    """A register (`r3`, `p0.new`, `lc0`; aliases sp/fp/lr resolved), a pair `r1:0`, or other."""
    new = tok.endswith(".new")
    t = tok[:-4] if new else tok
    t = ALIAS.get(t, t)
    m = re.fullmatch(r"r(\d+):(\d+)", t)
    if m:
        return ("pair", f"r{m.group(1)}", f"r{m.group(2)}", new)
    if re.fullmatch(r"[rp]\d+|lc[01]|sa[01]|m[01]|pc|gp|usr", t):
        return ("reg", t, new)
    return ("other", tok)


def dests(dst: str) -> list[str]:
    """Registers an assignment to `dst` writes (both halves of a pair)."""
    d = ALIAS.get(dst, dst)
    m = re.fullmatch(r"r(\d+):(\d+)", d)
    if m:
        return [f"r{m.group(1)}", f"r{m.group(2)}"]
    return [d]


COND = re.compile(r"^if\s*\((.*?)\)\s*(.*)$")


def cond_expr(c: str):
    """The syntax tree of a jump or predication condition: pN, !pN.new, cmp.xx(...),
    rN==#0 (as cmp.eq), ..."""
    m = re.fullmatch(r"\s*(r\d+(?:\.new)?)\s*(==|!=|>=|<=)\s*#(-?\d+)\s*", c)
    if m:
        op = {"==": "cmp.eq", "!=": "cmp.eq", ">=": "cmp.ge", "<=": "cmp.ge"}[m.group(2)]
        a, b = operand(m.group(1)), ("imm", int(m.group(3)))
        node = ("call", op, [a, b] if m.group(2) != "<=" else [b, a])
        return ("neg", "!", node) if m.group(2) == "!=" else node
    return parse_expr(c)
