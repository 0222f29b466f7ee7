"""The Hexagon walker: each instruction of a packet (its syntax tree from
`accelsim.asm.hexagon`) decoded into a function of the walk's state; a packet's writes land
together after it (`.new` operands read them early), hardware loops keep their count and
start registers."""

from __future__ import annotations

import re

from accelsim.asm import hexagon
from accelsim.sim.dyncount.state import (
    M32,
    Unresolved,
    in_stack,
    mem_load,
    mem_store,
    sgn,
    symbol_address,
)

_HEX_SIZE = {"memb": 1, "memub": 1, "memh": 2, "memuh": 2, "memw": 4, "memd": 8}


_HVX_BYTES = 128


_CALL = "call"  # a packet's pending call, in the packet's writes
RETURNED = "returned"  # what the walk knows the packet's call returns (`walk.interpret`)


def finish_packet(st) -> None:
    """Land a packet's writes, then its call: the callee sees the registers the packet wrote
    (`{ call __hexagon_divsi3; r0 = add(r1,#13) }`) and clobbers the caller-saved ones; a
    division builtin's quotient is known."""
    call = st.pw.pop(_CALL, False)
    ret = st.pw.pop(RETURNED, None)
    st.r.update(st.pw)
    if call is False:
        return
    a, b = st.r.get("r0"), st.r.get("r1")
    for i in range(16):
        st.r[f"r{i}"] = None
    for p in ("p0", "p1", "p2", "p3"):
        st.r[p] = None
    if call is not None and a is not None and b:
        st.r["r0"] = call(a, b) & M32
    if ret is not None:
        st.r["r0"] = ret


def _quot(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


# the compiler runtime's integer division (r0 op r1 -> r0; its own code is not the kernel's):
# a parallel loop's tasks divide its extent by the task count (`count.predict`)
_DIVISION = {
    "__hexagon_divsi3": lambda a, b: _quot(sgn(a, 32), sgn(b, 32)),
    "__hexagon_udivsi3": lambda a, b: (a & M32) // (b & M32),
    "__hexagon_modsi3": lambda a, b: sgn(a, 32) - _quot(sgn(a, 32), sgn(b, 32)) * sgn(b, 32),
    "__hexagon_umodsi3": lambda a, b: (a & M32) % (b & M32),
}


def _hread(st, key, new):
    if new:
        return st.pw.get(key)
    return st.r.get(key)


def _hex_eval(node, st, site):
    k = node[0]
    if k == "imm":
        return node[1]
    if k == "reg":
        return _hread(st, node[1], node[2])
    if k == "pair":
        hi, lo = _hread(st, node[1], node[3]), _hread(st, node[2], node[3])
        return None if hi is None or lo is None else (hi << 32) | lo
    if k == "sym":
        return symbol_address("hexagon", node[1], 0xFFF)
    if k == "neg":
        v = _hex_eval(node[2], st, site)
        if node[1] == "!":
            return None if v is None else not v
        if node[1] == "-":
            return None if v is None else (-v) & M32
        return v
    if k != "call":
        return None
    name, args = node[1], node[2]
    if name in _HEX_SIZE or name in ("memb", "memh"):
        addr = _hex_addr(args, st, site)
        v = mem_load(st, addr, _HEX_SIZE[name])
        if v is not None and name in ("memb", "memh"):
            v = sgn(v, 8 * _HEX_SIZE[name]) & M32
        return v
    if name in ("and", "or") and len(args) == 2 and args[1] == ("neg", "!", args[0]):
        return name == "or"  # p and !p, p or !p: LLVM's way to set a constant
    vals = [_hex_eval(a, st, site) for a in args]
    if any(v is None for v in vals) and name not in ("mux",):
        if name.startswith("cmp.") or name in ("tstbit", "bitsclr", "bitsset"):
            st.log.append(("t", site))
        return None
    if name.startswith("cmp."):
        a, b = vals
        c = name[4:]
        sa, sb = sgn(a, 32), sgn(b, 32)
        ua, ub = a & M32, b & M32
        st.log.append(("s", site, sa - sb, ua - ub))
        return {
            "eq": ua == ub,
            "gt": sa > sb,
            "gtu": ua > ub,
            "ge": sa >= sb,
            "geu": ua >= ub,
            "lt": sa < sb,
            "ltu": ua < ub,
        }.get(c)
    if name == "tstbit":
        st.log.append(("n", site, vals[0]))
        return bool((vals[0] >> vals[1]) & 1)
    if name in ("bitsclr", "bitsset"):
        st.log.append(("n", site, vals[0], vals[1]))
        x = vals[0] & vals[1]
        return x == 0 if name == "bitsclr" else x == vals[1]
    if name in ("add", "sub") and len(vals) == 2:
        a, b = vals
        if isinstance(a, bool) or isinstance(b, bool):
            return None
        return (a + b if name == "add" else a - b) & M32
    if name in ("mpyi", "+mpyi") and len(vals) == 2:
        st.log.append(("m", site, vals[0], vals[1]))
        return (vals[0] * vals[1]) & M32
    if name == "addasl":
        st.log.append(("m", site, vals[1], 1 << vals[2]))
        return (vals[0] + (vals[1] << vals[2])) & M32
    if name == "asl" and len(vals) == 2:
        if args[1][0] != "imm":
            st.log.append(("n", site, vals[1]))
        return (vals[0] << (vals[1] & 63)) & M32 if sgn(vals[1], 32) >= 0 else None
    if name in ("lsr", "asr") and len(vals) == 2:
        st.log.append(("h", site, vals[0], vals[1]))
        s = vals[1] & 63
        return ((vals[0] & M32) >> s if name == "lsr" else sgn(vals[0], 32) >> s) & M32
    if name in ("and", "or", "xor") and len(vals) == 2:
        a, b = vals
        if isinstance(a, bool) or isinstance(b, bool):
            a, b = bool(a), bool(b)
            return a and b if name == "and" else a or b if name == "or" else a != b
        if not (name == "or" and a & b == 0):
            st.log.append(("n", site, a, b))
        return a & b if name == "and" else a | b if name == "or" else a ^ b
    if name in ("min", "max", "minu", "maxu"):
        a, b = vals
        st.log.append(("s", site, sgn(a, 32) - sgn(b, 32), (a & M32) - (b & M32)))
        if name.endswith("u"):
            return min(a, b) if name == "minu" else max(a, b)
        return (min(sgn(a, 32), sgn(b, 32)) if name == "min" else max(sgn(a, 32), sgn(b, 32))) & M32
    if name == "mux":
        p = vals[0]
        if p is None:
            return None
        return vals[1] if p else vals[2]
    if name in ("setbit", "clrbit", "togglebit"):
        st.log.append(("n", site, vals[0]))
        b = 1 << vals[1]
        return (
            vals[0] | b if name == "setbit" else vals[0] & ~b if name == "clrbit" else vals[0] ^ b
        ) & M32
    if name == "combine" and len(vals) == 2:
        return ((vals[0] & M32) << 32) | (vals[1] & M32)
    if name in ("sxtb", "sxth"):
        return sgn(vals[0], 8 if name == "sxtb" else 16) & M32
    if name in ("zxtb", "zxth"):
        st.log.append(("n", site, vals[0]))
        return vals[0] & (0xFF if name == "zxtb" else 0xFFFF)
    if name == "not" and len(vals) == 1:
        return (not vals[0]) if isinstance(vals[0], bool) else ~vals[0] & M32
    if name == "neg":
        return -vals[0] & M32
    return None


def _hex_addr(args, st, site, scale=1):
    """Address of memX(...) operands: base [+ offset | + reg << k]; post-increment reads
    the base (the engine applies the increment). `scale`: bytes per immediate unit (vmem
    offsets count vectors)."""
    if not args:
        return None
    base = _hex_eval(args[0], st, site)
    if len(args) == 1:
        return base
    rest = args[1:]
    ops = [a[1] for a in rest if a[0] == "op"]
    vals = [a for a in rest if a[0] != "op"]
    if "++" in ops:
        return base
    if base is None:
        return None
    if not vals:
        return base
    off = _hex_eval(vals[0], st, site)
    if off is None:
        return None
    if "<<" in ops and len(vals) > 1:
        off <<= _hex_eval(vals[1], st, site) or 0
    elif vals[0][0] == "imm":
        off *= scale
    return (base + off) & M32


def _hex_postinc(args, vector):
    """(base register, increment in bytes) of an `rX++#n` address, else None."""
    if len(args) >= 3 and args[0][0] == "reg" and any(a == ("op", "++") for a in args):
        inc = [a for a in args[1:] if a[0] == "imm"]
        if inc:
            return args[0][1], inc[0][1] * (_HVX_BYTES if vector else 1)
        return args[0][1], None
    return None


def decode_hexagon(text: str, site):
    """A function(st) -> control or None for one Hexagon instruction (part of a packet)."""
    t = text.strip()
    cond = None
    if hexagon.COND.match(t):
        # find the matching parenthesis of the condition
        depth, j = 0, t.index("(")
        for j in range(t.index("("), len(t)):
            depth += t[j] == "("
            depth -= t[j] == ")"
            if depth == 0:
                break
        cond = hexagon.cond_expr(t[t.index("(") + 1 : j])
        t = t[j + 1 :].strip()
    body = _hex_body(t, site)

    if cond is None:
        return body

    def f(st):
        c = _hex_eval(cond, st, site)
        if c is None:
            if body is None:
                return None
            ctl = body(st, predicated=None)
            if ctl and ctl[0] != "b":
                raise Unresolved(f"a return or indirect jump under an unknown predicate: {t}")
            return ("c", None, ctl[1]) if ctl else None
        if c:
            return body(st) if body else None
        if body is not None:
            ctl = body(st, skip=True)
            if ctl and ctl[0] == "b":
                return ("c", False, ctl[1])
        return None

    return f


def _hex_body(t: str, site):
    m = re.fullmatch(r"jump(?::\w+)?\s+#*([\w.$@]+)", t)
    if m:
        lab = m.group(1)

        def f(st, skip=False, predicated=True):
            return ("b", lab) if not skip else ("b", lab)

        return f
    if re.fullmatch(r"jumpr\s+r31|(?:r31:30\s*=\s*)?dealloc_return(?:\(r30\))?(?::raw)?", t):

        def f(st, skip=False, predicated=True):
            if skip:
                return None
            return ("ret",)

        return f
    if t.startswith("jumpr"):
        return lambda st, skip=False, predicated=True: None if skip else ("ind",)
    if re.match(r"call[r]?\b", t):
        builtin = _DIVISION.get(t.split()[-1]) if t.startswith("call ") else None

        def f(st, skip=False, predicated=True):
            if not skip:
                st.pw[_CALL] = builtin  # the call happens after the packet's other writes
            return None

        return f
    m = re.fullmatch(
        r"(?:(p3)\s*=\s*sp(\d)loop0|loop([01]))"
        r"\(\s*#*([\w.$]+)\s*,\s*(#*-?\w+)\s*\)",
        t,
    )
    if m:
        n = "0" if m.group(1) else m.group(3)
        lab, cnt = m.group(4), m.group(5)
        src = ("imm", int(cnt.lstrip("#"))) if cnt.startswith("#") else hexagon.operand(cnt)
        sp = int(m.group(2)) if m.group(1) else 0

        def f(st, skip=False, predicated=True):
            if skip:
                return None
            st.pw["lc" + n] = _hex_eval(src, st, site)
            st.pw["sa" + n] = lab
            if n == "0":
                st.pw["lpcfg"] = sp
                if sp:
                    st.pw["p3"] = False
            return None

        return f
    m = re.fullmatch(r"allocframe\((?:r29\s*,\s*)?#(\d+)\)(?::raw)?", t)
    if m:
        n = int(m.group(1))

        def f(st, skip=False, predicated=True):
            sp = st.r.get("r29")
            if sp is None:
                st.pw["r29"] = st.pw["r30"] = None
                return None
            mem_store(st, sp - 8, 4, st.r.get("r30"))
            mem_store(st, sp - 4, 4, st.r.get("r31"))
            st.pw["r30"] = sp - 8
            st.pw["r29"] = sp - 8 - n
            return None

        return f
    if re.fullmatch(r"(?:r31:30\s*=\s*)?deallocframe(?:\(r30\))?(?::raw)?", t):

        def f(st, skip=False, predicated=True):
            fp = st.r.get("r30")
            st.pw["r29"] = None if fp is None else fp + 8
            st.pw["r30"] = mem_load(st, fp, 4) if fp is not None else None
            st.pw["r31"] = None
            return None

        return f
    m = re.fullmatch(r"(v?mem\w*)\((.*)\)\s*=\s*(.+)", t)
    if m:
        return _hex_store(m.group(1), m.group(2), m.group(3), site)
    m = re.fullmatch(r"([\w:.]+)\s*([+\-|&^]?=)\s*(.+)", t)
    if not m:
        return None
    dst, op, rhs = m.group(1), m.group(2), m.group(3)
    if re.match(r"^[vqw]\d", dst) or dst.startswith(("v", "q")):
        # vector destination; a vmem load with post-increment still moves its base
        vm = re.search(r"vmem\w*\((.*?)\)", rhs)
        if vm:
            pinc = _hex_postinc(hexagon.parse_expr(f"x({vm.group(1)})")[2], True)
            if pinc:
                return _hex_inc(pinc)
        return None
    dests = hexagon.dests(dst)
    try:
        tree = hexagon.parse_expr(rhs)
    except (IndexError, ValueError):
        tree = ("other", rhs)
    pinc = None
    if tree[0] == "call" and tree[1] in _HEX_SIZE:
        pinc = _hex_postinc(tree[2], False)
    inc_f = _hex_inc(pinc) if pinc else None
    if (
        op == "="
        and tree[0] == "call"
        and tree[1] == "add"
        and tree[2]
        and tree[2][0] == ("reg", "pc", False)
    ):

        def val_f(st):
            return symbol_address("hexagon", rhs, 0xFFF)
    else:

        def val_f(st):
            return _hex_eval(tree, st, site)

    def f(st, skip=False, predicated=True):
        if skip:
            return None
        v = val_f(st) if predicated is not None else None
        if op != "=" and v is not None:
            old = _hex_eval(hexagon.operand(dst), st, site)
            if old is None or isinstance(v, bool):
                v = None
            else:
                if op == "+=":
                    v = old + v
                elif op == "-=":
                    v = old - v
                else:
                    st.log.append(("n", site, old, v))
                    v = old | v if op == "|=" else old & v if op == "&=" else old ^ v
        if (
            len(dests) == 2
            and op == "="
            and tree[0] == "call"
            and tree[1] == "combine"
            and len(tree[2]) == 2
            and predicated is not None
        ):
            # halves of a pair are separate registers: one may be known without the other
            hi, lo = (_hex_eval(a, st, site) for a in tree[2])
            st.pw[dests[0]] = None if hi is None or isinstance(hi, bool) else hi & M32
            st.pw[dests[1]] = None if lo is None or isinstance(lo, bool) else lo & M32
        elif len(dests) == 2:
            st.pw[dests[0]] = None if v is None else (v >> 32) & M32
            st.pw[dests[1]] = None if v is None else v & M32
        else:
            d = dests[0]
            if d.startswith("p"):
                st.pw[d] = None if v is None else bool(v)
            else:
                st.pw[d] = None if v is None or isinstance(v, bool) else v & M32
        if inc_f:
            inc_f(st)
        return None

    return f


def _hex_inc(pinc):
    reg, inc = pinc

    def f(st, skip=False, predicated=True):
        if skip:
            return None
        v = st.r.get(reg)
        st.pw[reg] = None if v is None or inc is None else (v + inc) & M32
        return None

    return f


def _hex_store(mn, addr_s, src_s, site):
    vector = mn.startswith("v")
    args = hexagon.parse_expr(f"x({addr_s})")[2]
    pinc = _hex_postinc(args, vector)
    inc_f = _hex_inc(pinc) if pinc else None
    size = _HEX_SIZE.get(mn, 128 if vector else 4)
    src = (
        None
        if vector
        else hexagon.operand(src_s.strip())
        if not src_s.strip().startswith("#")
        else ("imm", int(src_s.strip().lstrip("#"), 0))
    )

    def f(st, skip=False, predicated=True):
        if skip:
            return None
        a = _hex_addr(args, st, site, _HVX_BYTES if vector else 1)
        if a is not None and in_stack(st, a):
            if vector or src is None or predicated is None:
                mem_store(st, a, size, None)
            elif src[0] == "pair":
                hi, lo = _hread(st, src[1], src[3]), _hread(st, src[2], src[3])
                mem_store(st, a, 4, lo)
                mem_store(st, a + 4, 4, hi)
            else:
                v = _hex_eval(src, st, site)
                mem_store(st, a, size, None if v is None else v & ((1 << (8 * size)) - 1))
        if inc_f:
            inc_f(st)
        return None

    return f
