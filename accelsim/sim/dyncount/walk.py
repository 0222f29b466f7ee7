"""The walk of one function: its CFG with concrete integers for the scalar registers
(pointers get distinct fake base addresses, loaded data is unknown), skipping vector work, so
that padding compare chains, toggled flags and counted loops all resolve alike. Loops are
summarised (`summary`): once two consecutive iterations of a loop take the same path and every
scalar value moves by a constant step, the iterations up to the first one in which a compare
could change its outcome are added at once (their count is solved, not walked)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from accelsim.asm.cfg import Block
from accelsim.asm.functions import Function
from accelsim.asm.loops import Loop
from accelsim.sim.dyncount.state import LAYOUT, State, Unresolved
from accelsim.sim.dyncount.static import const_def
from accelsim.sim.dyncount.summary import SAMPLES, Frame, flat_state, summarise_loop
from accelsim.sim.dyncount.walk_aarch64 import decode_aarch64
from accelsim.sim.dyncount.walk_hexagon import RETURNED, decode_hexagon, finish_packet

# walked AArch64 instructions / Hexagon packets per call before giving up (about 2-8 s)
_BUDGET = {"aarch64": 3_000_000, "hexagon": 1_000_000}


def callee_symbol(fn: Function, ui: int) -> str:
    """The symbol a Hexagon `callr` in unit `ui` reaches, where its block does not name it:
    the called register traced back through the loads that produced it (`r3 = memw(r2+#0)`)
    to the `##symbol@GOT` address it started from, in earlier units in program order (LLVM
    keeps a GOT slot's address in a register across blocks when it calls the same function
    twice, as a kernel with two workspaces frees them)."""
    m = next(
        (re.search(r"\bcallr\s+(r\d+)", ln) for ln in fn.units[ui].lines if "callr" in ln), None
    )
    if m is None:
        return ""
    reg = m.group(1)
    v = ui
    while v > max(-1, ui - 64):
        v -= 1
        # one unit is a packet: its instructions read the registers the packets before left
        # (`{ r0 = add(pc,##lambda); r3 = memw(r0+#0) }` loads through the old r0)
        defs = [
            d
            for ln in fn.units[v].lines
            for part in ln.split(";")
            if (d := re.match(rf"\s*{reg}\s*=\s*(.*)$", part))
        ]
        if not defs:
            continue
        rhs = defs[0].group(1)
        sym = re.search(r"##([A-Za-z_]\w*)", rhs)
        if sym:
            return sym.group(1)
        load = re.match(r"memw\((r\d+)\s*\+\s*#0\)", rhs.strip())
        if load is None:
            return ""
        reg = load.group(1)
    return ""


def indirect_callee(fn: Function, first: int, ui: int) -> str:
    """The symbol the indirect call in unit `ui` reaches: the nearest GOT slot named in units
    `first`..`ui` (its block), else `callee_symbol`'s trace through the loads."""
    for v in range(ui, first - 1, -1):
        for ln in fn.units[v].lines:
            # a symbol, not a constant-extended immediate (Hexagon `r2 = ##538240`)
            m = re.search(r"(?:##|:got_lo12:|:got:)([A-Za-z_]\w*)", ln)
            if m:
                return m.group(1)
    return callee_symbol(fn, ui)


def interpret(
    fn: Function,
    blocks: list[Block],
    loops: list[Loop],
    arch: str,
    reach: list[bool],
    summarise: bool = True,
    entry: Mapping[str, int] | None = None,
    memory: Mapping[int, tuple[int, int]] | None = None,
):
    """Block and edge executions of one call of `fn`, found by walking it; raises
    Unresolved where a branch depends on a value it cannot know. `entry`: argument registers
    known at the call (else each a distinct fake pointer); `memory`: stack words known at the
    call, address -> (value, bytes) (a parallel task's environment, `count.predict`)."""
    decode = decode_aarch64 if arch == "aarch64" else decode_hexagon
    dec = []
    for ui, u in enumerate(fn.units):
        fs = []
        for li, ln in enumerate(u.lines):
            parts = [ln] if arch == "aarch64" else ln.split(";")
            for pi, p in enumerate(parts):
                if not p.strip():
                    continue
                d = decode(p.strip(), (ui, li, pi))
                if d is not None:
                    fs.append(d)
        dec.append(fs)
    start_of = {b.start: k for k, b in enumerate(blocks)}
    # TVM's workspace calls go through a GOT slot: they are taken to succeed, as the
    # error-exit rule assumes (Alloc returns a fresh non-null pointer, Free returns 0)
    ret_key = "x0" if arch == "aarch64" else "r0"
    for ui, u in enumerate(fn.units):
        if not any(re.search(r"\b(callr|blr)\b", ln) for ln in u.lines):
            continue
        first = max((b.start for b in blocks if b.start <= ui), default=0)
        name = indirect_callee(fn, first, ui)
        value = (
            LAYOUT[arch]["arg"] * (40 + ui)
            if "AllocWorkspace" in name
            else 0
            if "FreeWorkspace" in name or "ParallelLaunch" in name  # every task succeeded
            else None
        )
        if value is None:
            continue

        def result(st, v=value, k=ret_key):
            if arch == "aarch64":
                st.r[k] = v
            else:
                st.pw[RETURNED] = v

        dec[ui].append(result)
    nb = len(blocks)
    edge_id: dict[tuple[int, int], int] = {}
    for k, b in enumerate(blocks):
        for s in b.succ:
            edge_id[(k, s)] = nb + len(edge_id)
    counts = [0] * (nb + len(edge_id))
    header_of = {lp.header: lp for lp in loops}
    lay = LAYOUT[arch]
    mask = (1 << lay["bits"]) - 1
    st = State(arch)
    if arch == "aarch64":
        for i in range(8):
            st.r[f"x{i}"] = lay["arg"] * (i + 1)
        st.r["sp"] = lay["sp"]
    else:
        for i in range(6):
            st.r[f"r{i}"] = lay["arg"] * (i + 1)
        st.r["r29"] = lay["sp"]
        st.r["r30"] = None
    st.r.update(entry or {})
    st.mem.update(memory or {})
    frames: list[Frame] = []

    def label_block(lab):
        idx = fn.labels.get(lab)
        if idx is None or idx not in start_of:
            raise Unresolved(f"jump to {lab}, not a block of {fn.name}")
        return start_of[idx]

    ret_reg = "x0" if arch == "aarch64" else "r0"
    fail_cache: dict[int, bool] = {}

    def failing(k: int) -> bool:
        """The straight path from block k returns a nonzero constant (TVM's -1: failure)."""
        if k not in fail_cache:
            val, seen, j = None, set(), k
            while j not in seen:
                seen.add(j)
                for u in range(blocks[j].start, blocks[j].end):
                    for ln in fn.units[u].lines:
                        for part in ln.split(";"):
                            w, v = const_def(part.strip(), ret_reg, arch)
                            if w:
                                val = v
                if blocks[j].returns and not blocks[j].cond:
                    break
                if len(blocks[j].succ) != 1 or blocks[j].cond:
                    val = None
                    break
                j = blocks[j].succ[0]
            fail_cache[k] = bool(val)
        return fail_cache[k]

    b = 0
    steps = 0
    while True:
        steps += blocks[b].end - blocks[b].start
        if steps > _BUDGET[arch]:
            raise Unresolved(
                f"{fn.name}: more than {_BUDGET[arch]} instructions or packets to walk"
            )
        counts[b] += 1
        bl = blocks[b]
        nxt = None
        ret = False
        for u in range(bl.start, bl.end):
            st.pw = {}
            ctls = []
            for f in dec[u]:
                c = f(st)
                if c is not None:
                    ctls.append(c)
            if arch == "hexagon":
                finish_packet(st)
            taken = None
            for j, c in enumerate(ctls):
                if c[0] == "ret":
                    taken = "ret"
                    break
                if c[0] == "ind":
                    raise Unresolved(f"indirect jump in {bl.name}")
                if c[0] == "b":
                    taken = label_block(c[1])
                    break
                # conditional: an error exit is never taken, else its value decides
                tb = label_block(c[2])
                alt = None
                if j == len(ctls) - 1 and not fn.units[u].endloop and u + 1 in start_of:
                    alt = start_of[u + 1]
                t = c[1]
                if t is None and alt is not None and reach[tb] != reach[alt]:
                    t = reach[tb]
                elif (
                    t is None and alt is not None and not reach[tb] and failing(tb) != failing(alt)
                ):
                    t = not failing(tb)  # after the last work: the side returning -1 fails
                elif t is None and not reach[tb] and alt is None:
                    t = False
                if t is None:
                    raise Unresolved(f"branch at the end of {bl.name} depends on data")
                if t:
                    taken = tb
                    break
            if taken is None and fn.units[u].endloop:
                for n in fn.units[u].endloop:
                    lc = st.r.get("lc" + n)
                    if lc is None:
                        raise Unresolved(f"hardware loop{n} count unknown at {bl.name}")
                    st.log.append(("s", (u, "endloop", n), lc - 1, lc - 1))
                    if lc > 1:
                        st.r["lc" + n] = lc - 1
                        if n == "0" and st.r.get("lpcfg"):
                            st.r["lpcfg"] -= 1
                            if st.r["lpcfg"] == 0:
                                st.r["p3"] = True
                        taken = label_block(st.r["sa" + n])
                        break
            if taken is not None:
                if taken == "ret":
                    ret = True
                else:
                    nxt = taken
                break
        if ret:
            break
        if nxt is None:
            if bl.end >= len(fn.units) or bl.end not in start_of:
                raise Unresolved(f"control falls off the end of {fn.name}")
            nxt = start_of[bl.end]
        e = edge_id.get((b, nxt))
        if e is None:
            edge_id[(b, nxt)] = e = len(counts)
            counts.append(0)
            for fr in frames:
                for s in fr.samples:
                    s[1].append(0)
        counts[e] += 1
        while frames and nxt not in frames[-1].loop.body:
            frames.pop()
        if not frames:
            st.log.clear()
        lp = header_of.get(nxt)
        if lp is not None:
            if frames and frames[-1].loop is lp:
                fr = frames[-1]
                fr.samples.append((flat_state(st), counts[:], len(st.log)))
                if len(fr.samples) > SAMPLES + 1:
                    fr.samples.pop(0)
                if (
                    summarise
                    and len(fr.samples) == SAMPLES + 1
                    and summarise_loop(st, fr, counts, mask)
                ):
                    fr.samples = [(flat_state(st), counts[:], len(st.log))]
            else:
                fr = Frame(lp)
                fr.samples.append((flat_state(st), counts[:], len(st.log)))
                frames.append(fr)
        b = nxt
    return counts[:nb], {k: counts[v] for k, v in edge_id.items()}
