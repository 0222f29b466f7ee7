"""The AArch64 walker: each instruction decoded into a function of the walk's state (scalar
registers on concrete integers, flags, the stack; vector work has no scalar effect except the
base-register write-back of its loads and stores)."""

from __future__ import annotations

import re

from accelsim.asm import aarch64
from accelsim.asm.isa import split_operands
from accelsim.sim.dyncount.state import (
    M32,
    M64,
    in_stack,
    mem_load,
    mem_store,
    sgn,
    symbol_address,
)

_A64_GPR = re.compile(r"^(?:[wx](?:\d+|zr)|w?sp)$")


_A64_VEC = re.compile(r"^[vqdsbh]\d+")


def _a64_key(tok):
    if tok in ("sp", "wsp"):
        return "sp"
    if tok in ("xzr", "wzr"):
        return None
    return "x" + tok[1:]


def _a64_imm(tok):
    t = tok.lstrip("#")
    try:
        return int(t, 0)
    except ValueError:
        return None


def _cc(f, cc):
    """Condition `cc` from flags f = (kind, a, b, width)."""
    if f is None:
        return None
    kind = f[0]
    if kind == "imm":
        n, z, c, v = (f[1] >> 3) & 1, (f[1] >> 2) & 1, (f[1] >> 1) & 1, f[1] & 1
    else:
        _, a, b, w = f
        if a is None or b is None:
            return None
        m = (1 << w) - 1
        ua, ub = a & m, b & m
        if kind == "sub":
            res = (ua - ub) & m
            c = int(ua >= ub)
            s = sgn(ua, w) - sgn(ub, w)
        elif kind == "add":
            res = (ua + ub) & m
            c = int(ua + ub > m)
            s = sgn(ua, w) + sgn(ub, w)
        else:  # and
            res, c, s = ua & ub, 0, 0
        n, z = res >> (w - 1), int(res == 0)
        v = int(kind != "and" and not -(1 << (w - 1)) <= s < (1 << (w - 1)))
    t = {
        "eq": z,
        "ne": not z,
        "hs": c,
        "cs": c,
        "lo": not c,
        "cc": not c,
        "mi": n,
        "pl": not n,
        "vs": v,
        "vc": not v,
        "hi": c and not z,
        "ls": not (c and not z),
        "ge": n == v,
        "lt": n != v,
        "gt": (not z) and n == v,
        "le": not ((not z) and n == v),
        "al": True,
        "nv": True,
    }.get(cc)
    return None if t is None else bool(t)


_INV = {
    "eq": "ne",
    "ne": "eq",
    "hs": "lo",
    "cs": "cc",
    "lo": "hs",
    "cc": "cs",
    "mi": "pl",
    "pl": "mi",
    "vs": "vc",
    "vc": "vs",
    "hi": "ls",
    "ls": "hi",
    "ge": "lt",
    "lt": "ge",
    "gt": "le",
    "le": "gt",
}


def _log_cmp(st, site, kind, a, b, w):
    if a is None or b is None:
        st.log.append(("t", site))
        return
    m = (1 << w) - 1
    ua, ub = a & m, b & m
    if kind == "sub":
        st.log.append(("s", site, sgn(ua, w) - sgn(ub, w), ua - ub))
    elif kind == "add":
        st.log.append(("s", site, sgn(ua, w) + sgn(ub, w), ua + ub - (1 << w)))
    else:
        st.log.append(("n", site, ua, ub))


def decode_aarch64(text: str, site):
    """A function(st) -> control or None. Control: ("b", label) | ("ret",) | None."""
    mn, ops = aarch64.operands(text)
    R = _a64_reader
    if mn == "b":
        lab = ops[0]
        return lambda st: ("b", lab)
    if mn.startswith("b.") and len(ops) == 1:
        cc, lab = mn[2:], ops[0]

        def f(st):
            t = _cc(st.r.get("f"), cc)
            return ("c", t, lab)

        return f
    if mn in ("cbz", "cbnz"):
        rd, lab, zero = R(ops[0]), ops[1], mn == "cbz"

        def f(st):
            v = rd(st)
            if v is None:
                st.log.append(("t", site))
                return ("c", None, lab)
            st.log.append(("s", site, v, v))
            return ("c", (v == 0) == zero, lab)

        return f
    if mn in ("tbz", "tbnz"):
        rd, bit, lab, zero = R(ops[0]), _a64_imm(ops[1]), ops[2], mn == "tbz"

        def f(st):
            v = rd(st)
            if v is None:
                st.log.append(("t", site))
                return ("c", None, lab)
            st.log.append(("n", site, v))
            return ("c", ((v >> bit) & 1 == 0) == zero, lab)

        return f
    if mn in ("ret",):
        return lambda st: ("ret",)
    if mn in ("br",):
        return lambda st: ("ind",)
    if mn in ("bl", "blr"):

        def f(st):
            _clobber(st)
            return None

        return f
    if mn in ("nop", "prfm", "hint", "yield", "dmb", "isb"):
        return None
    if not ops:
        return None
    # writeback addressing of any load/store (vector ones included)
    wb = _a64_writeback(ops)
    dst_gpr = bool(_A64_GPR.match(ops[0]))
    if mn.startswith(("ld", "st")) and not mn.startswith(("stlr",)):
        return _a64_mem(mn, ops, wb)
    if not dst_gpr and mn not in ("cmp", "cmn", "tst", "ccmp", "ccmn"):
        return wb  # vector work: no scalar effect
    return _a64_alu(mn, ops, site) or _a64_top(ops)


def _a64_top(ops):
    k = _a64_key(ops[0]) if _A64_GPR.match(ops[0]) else None

    def f(st):
        if k:
            st.r[k] = None

    return f


def _clobber(st):
    for i in range(19):
        st.r[f"x{i}"] = None
    st.r["f"] = None


def _a64_reader(tok):
    """A reader of a register or immediate operand; None for what it cannot read."""
    if tok.startswith("#"):
        v = _a64_imm(tok)
        return lambda st: v
    if tok in ("xzr", "wzr"):
        return lambda st: 0
    if not _A64_GPR.match(tok):
        return lambda st: None
    k = _a64_key(tok)
    if tok.startswith("w"):

        def r(st):
            v = st.r.get(k)
            return None if v is None else v & M32

        return r
    return lambda st: st.r.get(k)


def _a64_writer(tok):
    k = _a64_key(tok)
    m = M32 if tok.startswith("w") else M64

    def w(st, v):
        if k is not None:
            st.r[k] = None if v is None else v & m

    return w


def _shift_mod(tok):
    """'lsl #2' / 'sxtw #2' / 'uxtw' ... -> function(value, width) or None if not a modifier."""
    p = tok.split()
    if p[0] in (
        "lsl",
        "lsr",
        "asr",
        "sxtw",
        "uxtw",
        "sxth",
        "uxth",
        "sxtb",
        "uxtb",
        "sxtx",
        "uxtx",
        "ror",
    ):
        k = _a64_imm(p[1]) if len(p) > 1 else 0

        def f(v, w, op=p[0], k=k):
            if v is None:
                return None
            if op == "lsl":
                return v << k
            if op == "lsr":
                return (v & ((1 << w) - 1)) >> k
            if op == "asr":
                return sgn(v, w) >> k
            if op == "ror":
                return None
            bits = {"b": 8, "h": 16, "w": 32, "x": 64}[op[3]]
            x = v & ((1 << bits) - 1)
            if op[0] == "s":
                x = sgn(x, bits)
            return x << k

        return f, p[0]
    return None


def _a64_operand2(ops, i, site=None):
    """Reader of operand i with an optional shift/extend modifier after it; a right shift or
    a zero-extension is logged like the instruction of its own (nonlinear)."""
    base = _a64_reader(ops[i])
    if i + 1 < len(ops):
        sm = _shift_mod(ops[i + 1])
        if sm:
            fn, kind = sm
            w = 32 if ops[0].startswith("w") else 64
            if kind in ("lsr", "asr"):
                k = _a64_imm(ops[i + 1].split()[1])

                def rd(st):
                    x = base(st)
                    if x is not None:
                        st.log.append(("h", site, x, k))
                    return fn(x, w)

                return rd, kind
            if kind in ("ror", "uxtb", "uxth", "uxtw"):

                def rd(st):
                    x = base(st)
                    if x is not None:
                        st.log.append(("n", site, x))
                    return fn(x, w)

                return rd, kind
            return (lambda st: fn(base(st), w)), kind
    return base, None


def _a64_alu(mn, ops, site):
    W = _a64_writer(ops[0])
    w = 32 if ops[0].startswith("w") else 64
    n = len(ops)
    if mn in ("mov", "movz") and n == 2:
        src = ops[1]
        if _A64_VEC.match(src):
            return None
        r = _a64_reader(src)
        return lambda st: W(st, r(st))
    if mn in ("mov", "movz") and n == 3 and ops[1].startswith("#"):
        v = _a64_imm(ops[1]) << (_a64_imm(ops[2].split()[1]) if ops[2].startswith("lsl") else 0)
        return lambda st: W(st, v)
    if mn == "movn" and n >= 2:
        v = ~(_a64_imm(ops[1]) << (_a64_imm(ops[2].split()[1]) if n == 3 else 0))
        return lambda st: W(st, v)
    if mn == "movk":
        imm = _a64_imm(ops[1])
        sh = _a64_imm(ops[2].split()[1]) if n == 3 else 0
        rd = _a64_reader(ops[0])

        def f(st):
            o = rd(st)
            W(st, None if o is None else (o & ~(0xFFFF << sh)) | (imm << sh))

        return f
    if mn in ("adrp", "adr"):
        v = symbol_address("aarch64", ops[1], 0xFFFFFF)
        return lambda st: W(st, v)
    if mn in ("add", "sub", "adds", "subs", "cmp", "cmn", "neg", "negs"):
        if mn in ("cmp", "cmn"):
            ops = ["xzr" if ops[0].startswith("x") else "wzr", *ops]
            mn = "subs" if mn == "cmp" else "adds"
            w = 32 if ops[1].startswith("w") else 64
        if mn in ("neg", "negs"):
            ops = [ops[0], "xzr", *ops[1:]]
            mn = "sub" if mn == "neg" else "subs"
        W = _a64_writer(ops[0])
        a = _a64_reader(ops[1])
        b, _ = _a64_operand2(ops, 2, site)
        sub = mn.startswith("sub")
        flags = mn.endswith("s")

        def f(st):
            x, y = a(st), b(st)
            if flags:
                _log_cmp(st, site, "sub" if sub else "add", x, y, w)
                st.r["f"] = ("sub" if sub else "add", x, y, w)
            W(st, None if x is None or y is None else (x - y if sub else x + y))

        return f
    if mn in ("and", "ands", "orr", "eor", "bic", "bics", "orn", "eon", "tst"):
        if mn == "tst":
            ops = ["xzr" if ops[0].startswith("x") else "wzr", *ops]
            mn = "ands"
            w = 32 if ops[1].startswith("w") else 64
        W = _a64_writer(ops[0])
        a = _a64_reader(ops[1])
        b, _ = _a64_operand2(ops, 2, site)
        m = (1 << w) - 1

        def f(st, mn=mn):
            x, y = a(st), b(st)
            if x is None or y is None:
                v = None
            elif mn.startswith("and"):
                v = x & y
            elif mn == "orr":
                v = x | y
            elif mn == "eor":
                v = x ^ y
            elif mn.startswith("bic"):
                v = x & ~y
            elif mn == "orn":
                v = x | (~y & m)
            else:
                v = x ^ (~y & m)
            if x is not None and y is not None and not (mn == "orr" and x & y == 0):
                st.log.append(("n", site, x, y))  # affine only while its inputs hold still
            if mn.endswith("s"):
                st.r["f"] = None if v is None else ("and", x, y, w)
                if v is None:
                    st.log.append(("t", site))
            W(st, v)

        return f
    if mn in ("lsl", "lsr", "asr", "ror") and n == 3:
        a = _a64_reader(ops[1])
        k = _a64_imm(ops[2]) if ops[2].startswith("#") else None
        b = _a64_reader(ops[2])

        def f(st, mn=mn):
            x = a(st)
            s = k if k is not None else b(st)
            if x is None or s is None:
                return W(st, None)
            s %= w
            if mn == "lsl":
                v = x << s
            elif mn == "lsr":
                v = (x & ((1 << w) - 1)) >> s
            elif mn == "asr":
                v = sgn(x, w) >> s
            else:
                v = ((x & ((1 << w) - 1)) >> s) | (x << (w - s))
            if mn != "lsl" or k is None:
                st.log.append(("h", site, x, s))  # x >> s: affine if x's step is 2^s-aligned
            W(st, v)

        return f
    if mn in aarch64.SCALAR_MULTIPLY:
        a, b = _a64_reader(ops[1]), _a64_reader(ops[2])
        c = _a64_reader(ops[3]) if n > 3 else (lambda st: 0)
        neg = mn in ("msub", "mneg", "smsubl", "umsubl")
        sx = mn.startswith("s") and mn != "smull" or mn == "smull"
        wide = mn.endswith("l")

        def f(st):
            x, y, z = a(st), b(st), c(st)
            if x is None or y is None or z is None:
                return W(st, None)
            if wide:
                x, y = (sgn(x, 32), sgn(y, 32)) if sx else (x & M32, y & M32)
            st.log.append(("m", site, x, y))
            W(st, z - x * y if neg else z + x * y)

        return f
    if mn in ("udiv", "sdiv", "umulh", "smulh"):
        a, b = _a64_reader(ops[1]), _a64_reader(ops[2])

        def f(st, mn=mn):
            x, y = a(st), b(st)
            if x is None or y is None or (mn.endswith("div") and y == 0):
                return W(st, None)
            st.log.append(("n", site, x, y))
            if mn == "udiv":
                v = (x & ((1 << w) - 1)) // (y & ((1 << w) - 1))
            elif mn == "sdiv":
                p, q = sgn(x, w), sgn(y, w)
                v = abs(p) // abs(q) * (1 if (p < 0) == (q < 0) else -1)
            elif mn == "umulh":
                v = ((x & M64) * (y & M64)) >> 64
            else:
                v = (sgn(x, 64) * sgn(y, 64)) >> 64
            W(st, v)

        return f
    if mn in ("sxtw", "sxth", "sxtb", "uxtw", "uxth", "uxtb"):
        a = _a64_reader(ops[1])
        bits = {"b": 8, "h": 16, "w": 32}[mn[3]]

        def f(st, mn=mn):
            x = a(st)
            if x is None:
                return W(st, None)
            y = x & ((1 << bits) - 1)
            if mn[0] == "s":
                y = sgn(y, bits)
            else:
                st.log.append(("n", site, x))
            W(st, y)

        return f
    if mn in ("ubfx", "sbfx", "ubfiz", "sbfiz") and n == 4:
        a = _a64_reader(ops[1])
        lsb, width = _a64_imm(ops[2]), _a64_imm(ops[3])

        def f(st, mn=mn):
            x = a(st)
            if x is None:
                return W(st, None)
            st.log.append(("n", site, x))
            if mn.endswith("fx"):
                y = (x >> lsb) & ((1 << width) - 1)
                if mn[0] == "s":
                    y = sgn(y, width)
            else:
                y = x & ((1 << width) - 1)
                if mn[0] == "s":
                    y = sgn(y, width)
                y <<= lsb
            W(st, y)

        return f
    if mn in ("csel", "csinc", "csinv", "csneg", "cset", "csetm", "cinc", "cinv", "cneg"):
        if mn in ("cset", "csetm"):
            z = "wzr" if ops[0].startswith("w") else "xzr"
            ops = [ops[0], z, z, _INV[ops[1]]]
            mn = "csinc" if mn == "cset" else "csinv"
        elif mn in ("cinc", "cinv", "cneg"):
            ops = [ops[0], ops[1], ops[1], _INV[ops[2]]]
            mn = "cs" + mn[1:]
        a, b, cc = _a64_reader(ops[1]), _a64_reader(ops[2]), ops[3]
        m = (1 << w) - 1

        def f(st, mn=mn):
            t = _cc(st.r.get("f"), cc)
            if t is None:
                return W(st, None)
            if t:
                return W(st, a(st))
            y = b(st)
            if y is None:
                return W(st, None)
            W(
                st,
                y if mn == "csel" else y + 1 if mn == "csinc" else ~y & m if mn == "csinv" else -y,
            )

        return f
    if mn in ("ccmp", "ccmn"):
        w = 32 if ops[0].startswith("w") else 64
        a, b = _a64_reader(ops[0]), _a64_reader(ops[1])
        nzcv, cc = _a64_imm(ops[2]), ops[3]
        kind = "sub" if mn == "ccmp" else "add"

        def f(st):
            x, y = a(st), b(st)
            _log_cmp(st, site, kind, x, y, w)
            t = _cc(st.r.get("f"), cc)
            st.r["f"] = None if t is None else (kind, x, y, w) if t else ("imm", nzcv)

        return f
    return None


_A64_ADDR = re.compile(r"^\[\s*(\w+)\s*(?:,\s*([^\]]+))?\]\s*(!)?$")


def _a64_writeback(ops):
    """Base-register update of a post-indexed or pre-indexed address (vector ones too)."""
    for i, t in enumerate(ops):
        if t.startswith("["):
            m = _A64_ADDR.match(t)
            if not m:
                return None
            base = m.group(1)
            post = ops[i + 1] if i + 1 < len(ops) else None
            if m.group(3) and m.group(2):
                off = _a64_imm(m.group(2))
            elif post is not None:
                off = _a64_imm(post) if post.startswith("#") else None
                if off is None:
                    rr = _a64_reader(post)
                    rb, wb = _a64_reader(base), _a64_writer(base)

                    def f(st, rb=rb, rr=rr, wb=wb):
                        x, y = rb(st), rr(st)
                        wb(st, None if x is None or y is None else x + y)

                    return f
            else:
                return None
            rb, wb = _a64_reader(base), _a64_writer(base)

            def f(st, rb=rb, wb=wb, off=off):
                x = rb(st)
                wb(st, None if x is None else x + off)

            return f
    return None


_A64_SIZE = {"b": 1, "h": 2, "w": 4, "x": 8, "s": 4, "d": 8, "q": 16}


def _a64_mem(mn, ops, wb):
    idx = next((i for i, t in enumerate(ops) if t.startswith("[")), None)
    if idx is None:
        return wb
    m = _A64_ADDR.match(ops[idx])
    if not m:
        return _a64_top(ops)
    base = _a64_reader(m.group(1))
    post = idx + 1 < len(ops)
    off = 0
    offr = None
    if m.group(2) and not post:
        sub = split_operands(m.group(2))
        if sub[0].startswith("#"):
            off = _a64_imm(sub[0])
        elif sub[0].startswith(":"):

            def offr(st):
                return None
        else:
            offr = _a64_reader(sub[0])
            if len(sub) > 1:
                rr = _a64_reader(sub[0])
                sm = _shift_mod(sub[1])
                offr = (lambda st, rr=rr, fn=sm[0]: fn(rr(st), 64)) if sm else (lambda st: None)
    regs = ops[:idx]
    pair = mn.startswith(("ldp", "stp", "ldnp", "stnp"))
    load = mn.startswith("ld")
    if regs and regs[0].startswith("{"):
        return wb  # ld1/st1 lists: vector data only
    tok = regs[0]
    if mn.endswith(("b", "sb")) and not mn.startswith(("ldp", "stp")):
        size = 1
    elif mn.endswith(("h", "sh")):
        size = 2
    elif mn.endswith("sw"):
        size = 4
    else:
        size = _A64_SIZE.get(tok[0], 8)
    signed = mn.startswith("ldrs") or mn.startswith("ldurs") or mn == "ldpsw"
    readers = [_a64_reader(t) for t in regs]
    writers = [_a64_writer(t) if _A64_GPR.match(t) else None for t in regs]
    gpr = [bool(_A64_GPR.match(t)) for t in regs]

    def f(st):
        b = base(st)
        o = off if offr is None else offr(st)
        addr = None if b is None or o is None else (b + o if not post else b)
        for j in range(len(regs) if pair else 1):
            a = None if addr is None else addr + j * size
            if load:
                if writers[j]:
                    v = mem_load(st, a, size)
                    if v is not None and signed:
                        v = sgn(v, 8 * size)
                    writers[j](st, v)
            else:
                if gpr[j]:
                    mem_store(st, a, size, readers[j](st))
                elif a is not None and in_stack(st, a):
                    mem_store(st, a, size, None)
                elif a is None:
                    pass
        if wb is not None:
            wb(st)

    return f
