"""The static trip-count fallback, used where the walk gives up: a loop's trip count from the
code (a hardware-loop immediate or constant register; an induction register with a constant
start, step and limit); also `const_def`, the constant an instruction writes."""

from __future__ import annotations

import re

from accelsim.asm import hexagon
from accelsim.asm.cfg import Block, unit_flow
from accelsim.asm.functions import Function
from accelsim.asm.loops import Loop

_MAX_STEPS = 50_000_000  # loops longer than this are not stepped (none of a layer's are)


def _reg(r: str, arch: str) -> str:
    r = r.strip().lstrip("#")
    if arch == "aarch64" and re.fullmatch(r"[wx]\d+", r):
        return "x" + r[1:]
    if arch == "aarch64" and r in ("wzr", "xzr"):
        return "xzr"
    return r


def const_def(text: str, reg: str, arch: str) -> tuple[bool, int | None]:
    """(writes `reg`, its constant value if the write is a constant)."""
    if arch == "aarch64":
        p = text.replace(",", " ").split()
        if len(p) < 2 or p[0].startswith(("st", "b", "cb", "tb", "cmp", "cmn", "tst")):
            return False, None
        dsts = [p[1]] + ([p[2]] if p[0] in ("ldp", "ldpsw") else [])
        if reg not in (_reg(d, arch) for d in dsts):
            return False, None
        if p[0] in ("mov", "movz") and len(p) == 3:
            if p[2] in ("xzr", "wzr"):
                return True, 0
            m = re.fullmatch(r"#(-?(?:0x[0-9a-fA-F]+|\d+))", p[2])
            if m:
                return True, int(m.group(1), 0)
        if p[0] == "orr" and len(p) == 4 and p[2] in ("xzr", "wzr"):
            m = re.fullmatch(r"#(-?(?:0x[0-9a-fA-F]+|\d+))", p[3])
            if m:
                return True, int(m.group(1), 0)
        return True, None
    # hexagon: "rX = #imm" / "rX = ##imm"; pairs "r1:0 = combine(#a,#b)" (r1 = a, r0 = b)
    m = re.match(r"^(?:if\s*\([^)]*\)\s*)?([\w:]+)\s*=", text)
    if not m:
        return False, None
    dst = m.group(1)
    regs = set()
    if ":" in dst and dst.startswith("r"):
        hi, lo = dst[1:].split(":")
        regs = {f"r{hi}", f"r{lo}"}
    else:
        regs = {dst}
    if reg not in regs:
        return False, None
    m = re.fullmatch(r"[\w:]+\s*=\s*#+(-?\d+)", text)
    if m and ":" not in dst:
        return True, int(m.group(1))
    m = re.fullmatch(r"r(\d+):(\d+)\s*=\s*combine\(#+(-?\d+),\s*#+(-?\d+)\)", text)
    if m:  # a pair of constants: the first operand is the high register
        return True, int(m.group(3) if reg == f"r{m.group(1)}" else m.group(4))
    return True, None


def _find_const(
    fn: Function,
    blocks,
    preds,
    start_block: int,
    before_unit: int,
    reg: str,
    arch: str,
    stop: set[int],
    dom=None,
) -> int | None:
    """The constant `reg` holds at unit `before_unit` of `start_block`, looking back through
    single-predecessor blocks (not entering `stop`)."""
    if reg == "xzr":
        return 0
    b, upto = start_block, before_unit
    for _ in range(64):
        bl = blocks[b]
        for u in range(upto - 1, bl.start - 1, -1):
            for ln in reversed(fn.units[u].lines):
                w, v = const_def(ln, reg, arch)
                if w:
                    return v
        ps = [p for p in preds[b] if p not in stop]
        if len(ps) > 1 and dom is not None:
            # a loop header: enter from outside, if no block of the loop writes `reg`
            inside = [p for p in ps if b in dom[p]]
            body = {x for x in range(len(blocks)) if b in dom[x]}
            if inside and not any(
                const_def(ln, reg, arch)[0] or _step_of(ln, reg, arch)[0]
                for x in body
                for u in range(blocks[x].start, blocks[x].end)
                for ln in fn.units[u].lines
            ):
                ps = [p for p in ps if p not in inside]
        if len(ps) != 1:
            return None
        b = ps[0]
        upto = blocks[b].end
    return None


_A64_CC = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "lo": lambda a, b: a < b,
    "cc": lambda a, b: a < b,
    "ls": lambda a, b: a <= b,
    "hi": lambda a, b: a > b,
    "hs": lambda a, b: a >= b,
    "cs": lambda a, b: a >= b,
}


_HEX_CMP = {
    "eq": lambda a, b: a == b,
    "gt": lambda a, b: a > b,
    "gtu": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "geu": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "ltu": lambda a, b: a < b,
}


def _step_of(text: str, reg: str, arch: str) -> tuple[bool, int | None]:
    """(writes `reg`, the constant it adds if the write is reg = reg +/- const)."""
    if arch == "aarch64":
        p = text.replace(",", " ").split()
        if (
            len(p) >= 4
            and p[0] in ("add", "sub", "adds", "subs")
            and _reg(p[1], arch) == reg
            and _reg(p[2], arch) == reg
        ):
            m = re.fullmatch(r"#(\d+)", p[3])
            if m and len(p) == 4:
                v = int(m.group(1))
                return True, v if p[0].startswith("add") else -v
        w, _ = const_def(text, reg, arch)
        if w:
            return True, None
        # post-indexed loads/stores write back their base register
        m = re.search(r"\[(\w+)\]\s*,\s*#(-?\d+)$", text) or re.search(
            r"\[(\w+)\s*,\s*#(-?\d+)\]!$", text
        )
        if m and _reg(m.group(1), arch) == reg:
            return True, int(m.group(2))
        return False, None
    m = re.fullmatch(r"(r\d+)\s*=\s*add\((r\d+),\s*#(-?\d+)\)", text)
    if m and m.group(1) == reg and m.group(2) == reg:
        return True, int(m.group(3))
    w, _ = const_def(text, reg, arch)
    if w:
        return True, None
    m = re.search(r"\((r\d+)\+\+#(-?\d+)", text)  # post-increment addressing
    if m and m.group(1) == reg:
        return True, None
    return False, None


def _exit_test(fn: Function, bl: Block, arch: str):
    """The exiting branch's test: (induction reg, limit operand, predicate(value, limit) ->
    branch taken, index of the flag-setting unit, index of the instruction in it)."""
    last = bl.end - 1
    if arch == "aarch64":
        br = fn.units[last].lines[0].replace(",", " ").split()
        if br[0] in ("cbz", "cbnz"):
            reg = _reg(br[1], arch)
            return reg, "#0", (_A64_CC["eq"] if br[0] == "cbz" else _A64_CC["ne"]), last, 0, False
        if not br[0].startswith("b."):
            return None
        cc = _A64_CC.get(br[0][2:])
        if cc is None:
            return None
        for u in range(last - 1, bl.start - 1, -1):
            p = fn.units[u].lines[0].replace(",", " ").split()
            if p[0] == "cmp" and len(p) == 3:
                return _reg(p[1], arch), p[2], cc, u, 0, False
            if p[0] in ("subs", "adds") and len(p) == 4 and p[1] == p[2]:
                return _reg(p[1], arch), "#0", cc, u, 0, True
            if p[0] in ("cmn", "tst", "ands", "bics", "ccmp", "fcmp"):
                return None
        return None
    # hexagon: "p0 = cmp.eq(r1,#5); if (!p0.new) jump:t L" or a separate compare
    texts = [(u, i, ln) for u in range(bl.start, bl.end) for i, ln in enumerate(fn.units[u].lines)]
    jumps = [t for t in texts if hexagon.JUMP.search(t[2]) and "if" in t[2]]
    if len(jumps) != 1:
        return None
    ju, ji, jl = jumps[0]
    m = re.search(r"if\s*\((!?)(p\d)(\.new)?\)", jl)
    if not m:
        return None
    neg, pred = m.group(1) == "!", m.group(2)
    for u, i, ln in reversed(texts):
        if (u, i) > (ju, ji) and not (u == ju and i == ji):
            continue
        c = re.search(rf"\b{pred}\s*=\s*(!?)cmp\.(\w+)\((r\d+)\s*,\s*(#?-?\w+)\)", ln)
        if c:
            f = _HEX_CMP.get(c.group(2))
            if f is None:
                return None
            inv = (c.group(1) == "!") != neg
            return c.group(3), c.group(4), (lambda a, b, f=f, inv=inv: f(a, b) != inv), u, i, False
    return None


def induction_trip(
    fn: Function, blocks, preds, dom, lp: Loop, arch: str, loops: list[Loop]
) -> int | None:
    exits = [b for b in lp.body if any(s not in lp.body for s in blocks[b].succ)]
    if len(exits) != 1:
        return None
    x = exits[0]
    if not all(x in dom[l] for l in lp.latches):
        return None
    test = _exit_test(fn, blocks[x], arch)
    if test is None:
        return None
    reg, limit_op, taken, fu, fi, self_update = test
    # which branch side stays in the loop: the taken target or the fall-through
    last_flow = (
        unit_flow(fn.units[blocks[x].end - 1], arch)
        if arch == "aarch64"
        else [
            f for u in range(blocks[x].start, blocks[x].end) for f in unit_flow(fn.units[u], arch)
        ]
    )
    tgt = next((t for k, t in last_flow if k == "cjump"), None)
    tgt_block = (
        next((i for i, b in enumerate(blocks) if fn.labels.get(tgt) == b.start), None)
        if tgt
        else None
    )
    if tgt_block is None:
        return None
    stays_if_taken = tgt_block in lp.body
    # the induction update: one reg = reg + c per iteration, in a block that runs every iteration
    steps = []
    for b in lp.body:
        for u in range(blocks[b].start, blocks[b].end):
            for i, ln in enumerate(fn.units[u].lines):
                w, c = _step_of(ln, reg, arch)
                if w:
                    steps.append((b, u, i, c))
    if len(steps) != 1 or steps[0][3] is None:
        return None
    sb, su, si, step = steps[0]
    if not all(sb in dom[l] for l in lp.latches) or lp.header not in dom[sb]:
        return None
    inner = [o for o in loops if o is not lp and o.body < lp.body]
    if any(sb in o.body for o in inner):
        return None
    # does the exit test see the updated value?
    if self_update:
        before = True
    elif sb == x:
        before = (su, si) < (fu, fi) if arch == "hexagon" else su < fu
        if arch == "hexagon" and su == fu:  # same packet: the compare reads the old value
            before = False
    else:
        before = sb in dom[x] and sb != x
    ph = [p for p in preds[lp.header] if p not in lp.body]
    if len(ph) != 1:
        return None
    init = _find_const(fn, blocks, preds, ph[0], blocks[ph[0]].end, reg, arch, lp.body)
    if limit_op.startswith("#"):
        limit = int(limit_op.lstrip("#"), 0)
    else:
        lreg = _reg(limit_op, arch)
        if any(
            const_def(ln, lreg, arch)[0] or _step_of(ln, lreg, arch)[0]
            for b in lp.body
            for u in range(blocks[b].start, blocks[b].end)
            for ln in fn.units[u].lines
        ):
            return None
        limit = _find_const(fn, blocks, preds, ph[0], blocks[ph[0]].end, lreg, arch, lp.body)
    if init is None or limit is None:
        return None
    v, n = init, 0
    while n < _MAX_STEPS:
        n += 1  # an execution of the header
        if before:
            v += step
        t = taken(v, limit)
        if not before:
            v += step
        if t != stays_if_taken:
            return n
    return None


def hw_trip(fn: Function, blocks, preds, lp: Loop, arch: str, dom=None) -> tuple[int | None, str]:
    labels = {lab for lab, idx in fn.labels.items() if idx == blocks[lp.header].start}
    for b, bl in enumerate(blocks):
        if b in lp.body:
            continue
        for u in range(bl.start, bl.end):
            for ln in fn.units[u].lines:
                m = hexagon.LOOP_SETUP.search(ln)
                if m and m.group(2) in labels:
                    op = m.group(3)
                    if op.startswith("#"):
                        return int(op.lstrip("#")), f"hardware loop{m.group(1)} immediate"
                    v = _find_const(fn, blocks, preds, b, u, op, arch, lp.body, dom)
                    if v is not None:
                        return v, f"hardware loop{m.group(1)} count register {op}"
                    return None, ""
    return None, ""
