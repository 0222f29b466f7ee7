"""What the walkers of scalar control code share: the machine state (scalar registers, the
stack's known contents, the log of compares and nonlinear operations the loop summaries read),
the fake address layout, and the exception for a value the walk cannot know."""

from __future__ import annotations

import zlib

M64 = (1 << 64) - 1
M32 = (1 << 32) - 1


class Unresolved(Exception):
    """The interpreter met a value it cannot know (the message says where)."""


def sgn(v: int, w: int) -> int:
    v &= (1 << w) - 1
    return v - (1 << w) if v >> (w - 1) else v


class State:
    """Registers (Hexagon: plus the writes of the current packet), stack memory, log."""

    __slots__ = ("r", "mem", "pw", "log", "arch")

    def __init__(self, arch):
        self.r: dict = {}
        self.mem: dict = {}
        self.pw: dict | None = None  # Hexagon: writes of the current packet
        self.log: list = []
        self.arch = arch


# fake addresses: arguments, the stack, symbols (a call's result is unknown)
LAYOUT = {
    "aarch64": dict(arg=1 << 40, sp=1 << 47, sym=1 << 45, gap=1 << 34, bits=64),
    "hexagon": dict(arg=1 << 24, sp=0x40000000, sym=0x60000000, gap=1 << 24, bits=32),
}


def symbol_address(arch: str, name: str, mask: int) -> int:
    """A fake, page-aligned address of a symbol: distinct symbols apart, and the same in every
    process (a CRC of the name; Python's `hash(str)` changes with PYTHONHASHSEED)."""
    return LAYOUT[arch]["sym"] + (zlib.crc32(name.encode()) & mask) * 4096


_STACK_WINDOW = 1 << 20


def in_stack(st, addr):
    sp0 = LAYOUT[st.arch]["sp"]
    return sp0 - _STACK_WINDOW <= addr < sp0 + (1 << 16)


def mem_load(st, addr, size):
    if addr is None:
        return None
    if not in_stack(st, addr):
        return None
    e = st.mem.get(addr)
    if e is not None and e[1] == size:
        return e[0]
    if size == 8 and e is not None and e[1] == 4 and (addr + 4) in st.mem:
        hi = st.mem[addr + 4]
        return None if e[0] is None or hi[0] is None or hi[1] != 4 else (hi[0] << 32) | e[0]
    sp0 = LAYOUT[st.arch]["sp"]
    if addr >= sp0 and e is None:  # incoming stack arguments: pointers
        lay = LAYOUT[st.arch]
        return lay["arg"] + (16 + (addr - sp0) // 4) * lay["gap"]
    return None


def mem_store(st, addr, size, value):
    if addr is None:
        # a store to an unknown address: if it could hit the stack we no longer know it
        return
    if not in_stack(st, addr):
        return
    for a in [a for a in st.mem if a < addr + size and a + st.mem[a][1] > addr]:
        del st.mem[a]
    st.mem[addr] = (value, size)
