"""Loop summaries: the iterations of a loop that must repeat the last ones, skipped at once.
Over the last iterations (same path), every compare moves by a constant step; the iterations
before the first one in which some compare could change its sign are added in one step; a
value that does not move by a constant step becomes unknown, and a nonlinear operation whose
inputs move blocks the summary (the loop is walked instead)."""

from __future__ import annotations

from accelsim.sim.dyncount.state import M64

SAMPLES = 2  # identical iterations needed before a loop is summarised


_SCAN = 4096  # outer-loop steps over which an inner summary is re-checked


def _first_change(v: int, d: int) -> float:
    """Smallest t >= 1 at which sign(v + t*d) differs from sign(v) (inf if never)."""
    if d == 0:
        return float("inf")
    if v == 0:
        return 1
    if (v > 0) == (d > 0):
        return float("inf")
    a, b = abs(v), abs(d)
    return -(-a // b)


def flat_state(st) -> dict:
    out = {}
    for k, v in st.r.items():
        if isinstance(v, tuple):
            for i, x in enumerate(v):
                out[(k, i)] = x
        else:
            out[k] = v
    for a, (v, size) in st.mem.items():
        out[("m", a, size)] = v
    return out


def _unflat(st, flat: dict):
    r, mem, tup = {}, {}, {}
    for k, v in flat.items():
        if isinstance(k, tuple) and k[0] == "m":
            mem[k[1]] = (v, k[2])
        elif isinstance(k, tuple):
            tup.setdefault(k[0], {})[k[1]] = v
        else:
            r[k] = v
    for k, parts in tup.items():
        r[k] = tuple(parts[i] for i in range(len(parts)))
    st.r, st.mem = r, mem


def _is_num(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _affine(seq):
    """Common step of a sequence of values, 0 for equal non-numbers, None if not affine."""
    if all(_is_num(v) for v in seq):
        d = seq[1] - seq[0]
        return d if all(seq[i + 1] - seq[i] == d for i in range(len(seq) - 1)) else None
    return 0 if all(v == seq[0] and type(v) is type(seq[0]) for v in seq) else None


def _affine_reg(seq):
    """(step, mask) of a register or stack value: a constant step modulo 2^32 or 2^64 (a
    32-bit counter wraps through zero as an unsigned value), (0, None) for equal non-numbers,
    None if it does not move by a constant step."""
    if not all(_is_num(v) for v in seq):
        return (0, None) if all(v == seq[0] and type(v) is type(seq[0]) for v in seq) else None
    for bits in (32, 64):
        if bits == 32 and any(v >> 32 for v in seq):
            continue
        m = (1 << bits) - 1
        d = ((seq[1] - seq[0] + (1 << (bits - 1))) & m) - (1 << (bits - 1))
        if all((seq[i + 1] - seq[i] - d) & m == 0 for i in range(len(seq) - 1)):
            return d, m
    return None


def _uniform_from(y: int) -> int:
    """Lowest bit L such that bits L and up of `y` (as 32- or 64-bit) are all equal."""
    w = 32 if y < (1 << 32) else 64
    top = (y >> (w - 1)) & 1
    L = w - 1
    while L > 0 and (y >> (L - 1)) & 1 == top:
        L -= 1
    return L


def _masked_affine(vals, steps) -> bool:
    """x & m, x | m, x ^ m with m fixed and x stepping by a multiple of 2^L, where m's bits
    from L up are all equal (an alignment mask such as #-128 or #127): the low bits of x hold
    still and the high ones pass through or vanish, so the result moves by a constant step."""
    if len(vals) != 2:
        return False
    for dx, y, dy in ((steps[0], vals[1], steps[1]), (steps[1], vals[0], steps[0])):
        if dy == 0 and _is_num(y) and dx % (1 << _uniform_from(y & M64)) == 0:
            return True
    return False


class Frame:
    __slots__ = ("loop", "samples")

    def __init__(self, loop):
        self.loop = loop
        self.samples = []


def summarise_loop(st, fr: Frame, counts: list, mask: int) -> bool:
    """Skip the iterations of `fr`'s loop that must repeat the last ones (see the section
    comment); True if it skipped any."""
    S = fr.samples
    logs = [st.log[S[i][2] : S[i + 1][2]] for i in range(len(S) - 1)]
    sig = [(e[0], e[1]) for e in logs[0]]
    if any(len(lg) != len(sig) or [(e[0], e[1]) for e in lg] != sig for lg in logs[1:]):
        return False
    last = logs[-1]
    limit = float("inf")
    skips = []
    for j, (kind, _site) in enumerate(sig):
        if kind == "t":
            continue
        vals = [lg[j][2:] for lg in logs]
        steps = [_affine([v[i] for v in vals]) for i in range(len(vals[0]))]
        if any(s is None for s in steps):
            return False
        if kind == "s":
            for i in range(2):
                limit = min(limit, _first_change(last[j][2 + i], steps[i]) - 1)
        elif kind == "n":
            if any(steps) and not _masked_affine(last[j][2:], steps):
                return False
        elif kind == "m":
            if steps[0] and steps[1]:
                return False
        elif kind == "h":
            if steps[1] or steps[0] % (1 << last[j][3]):
                return False
        elif kind == "k":
            if steps[0]:
                return False
            pairs = last[j][3:]
            ds = steps[1:]
            if any(ds[i + 1] for i in range(0, len(ds), 2)):
                return False
            skips.append((last[j][2], pairs, ds))
    if limit == float("inf") or limit < 1:
        return False
    if skips:
        limit = min(limit, _SCAN)
        for m_in, pairs, ds in skips:
            for t in range(1, int(limit) + 1):
                m = min(
                    (
                        _first_change(pairs[i] + t * ds[i], pairs[i + 1]) - 1
                        for i in range(0, len(pairs), 2)
                    ),
                    default=float("inf"),
                )
                if m != m_in:
                    limit = t - 1
                    break
        if limit < 1:
            return False
    # values that do not move by a constant step become unknown: a later decision that
    # reads one is reported unresolved rather than guessed
    states = [S[i][0] for i in range(len(S))]
    keys = set().union(*(s.keys() for s in states))
    dstate = {k: _affine_reg([s.get(k) for s in states]) for k in keys}
    cnts = [S[i][1] for i in range(len(S))]
    dc = [cnts[-1][i] - cnts[-2][i] for i in range(len(counts))]
    if any(
        cnts[i + 1][x] - cnts[i][x] != dc[x]
        for i in range(len(cnts) - 2)
        for x in range(len(counts))
    ):
        return False
    M = int(limit)
    cur = flat_state(st)
    new = {}
    for k, v in cur.items():
        d = dstate.get(k, (0, None))
        new[k] = (
            None if d is None else (v + M * d[0]) & (d[1] or mask) if _is_num(v) and d[0] else v
        )
    _unflat(st, new)
    for x in range(len(counts)):
        counts[x] += M * dc[x]
    params = []
    for j, (kind, _site) in enumerate(sig):
        if kind == "s":
            for i in range(2):
                d = last[j][2 + i] - logs[-2][j][2 + i]
                params += [last[j][2 + i], d]
    st.log.append(("k", ("skip", id(fr.loop)), M, *params))
    return True
