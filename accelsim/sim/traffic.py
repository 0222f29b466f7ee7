"""Bytes each memory level serves for a loop nest: the working set of every loop level against
each level's capacity (the memory model of both fidelities).

A kernel is a loop nest (outermost first) over named loops, and every tensor it touches is an
affine function of those loops: along each tensor dimension, index = sum(coef x loop index).
The footprint of a tensor under a set of inner loops is the product over its dimensions of the
index span those loops cover (capped at the dimension's size).

For a cache of capacity C the model finds the largest inner block of the nest whose combined
footprint fits (loop level `p`): that block is fetched once per iteration of the loops outside
it, except where the data does not change or stays resident:
- walking outward from `p`, a loop that indexes the tensor brings in new data (x extent);
- a loop that does not index it re-uses the data already fetched while no loop between it and
  `p` indexes the tensor (the block is the same); once one does, an iteration of the loop's
  body touches more than fits (it is outside `p`), so LRU has evicted the data by the next
  iteration and it is fetched again (x extent).
This is the classic loop-blocking reuse analysis (as in Timeloop / "working set per loop
level") for a fully associative LRU cache; `tests/test_traffic.py` checks it against an LRU
simulation of the exact address stream of small conv, depthwise and dense nests.

Activations a layer reads were just written by the layer before it, so their first touch is
served by the smallest level that holds them (their `home`); weights come from DRAM on first use
(batch-1 inference). Re-fetches after eviction come from the next level out, as the nest says.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Loop:
    name: str
    extent: int


@dataclass(frozen=True)
class Access:
    """How a loop nest indexes one tensor: per tensor dimension, (size, ((loop, coef), ...))."""

    tensor: str
    elem_bytes: float
    dims: tuple[tuple[int, tuple[tuple[str, int], ...]], ...]
    resident: bool = True  # an activation (home = the smallest level holding it), not weights

    def indexed_by(self, loop: str) -> bool:
        return any(loop == name and c for _, terms in self.dims for name, c in terms)

    def size_bytes(self) -> float:
        n = 1
        for size, _ in self.dims:
            n *= size
        return n * self.elem_bytes

    def new_fraction(self, loop: str, extents: Mapping[str, int], inner) -> float:
        """Share of the block under `inner` that one step of `loop` replaces."""
        frac = 1.0
        for size, terms in self.dims:
            c = sum(abs(k) for name, k in terms if name == loop)
            if c:
                span = min(size, 1 + sum((extents[n] - 1) * abs(k) for n, k in terms if n in inner))
                frac = min(frac, min(1.0, c / span))
        return frac

    def footprint(self, extents: Mapping[str, int], loops) -> float:
        """Bytes touched while the `loops` run through their whole extents (others fixed)."""
        n = 1
        for size, terms in self.dims:
            span = 1 + sum((extents[name] - 1) * abs(c) for name, c in terms if name in loops)
            n *= min(span, size)
        return n * self.elem_bytes


def _fits_from(nest: Sequence[Loop], accesses: Sequence[Access], capacity: float) -> int:
    """The outermost loop level p whose inner block (loops p..) fits in `capacity`."""
    extents = {lp.name: lp.extent for lp in nest}
    for p in range(len(nest) + 1):
        inner = {lp.name for lp in nest[p:]}
        if sum(a.footprint(extents, inner) for a in accesses) <= capacity:
            return p
    return len(nest)


def fetches(nest: Sequence[Loop], accesses: Sequence[Access], capacity: float) -> dict[str, float]:
    """Bytes of each tensor brought into a cache of `capacity` bytes (misses x bytes)."""
    return dict(_fetches(tuple(nest), tuple(accesses), float(capacity)))


@functools.lru_cache(maxsize=1 << 16)
def _fetches(
    nest: tuple[Loop, ...], accesses: tuple[Access, ...], capacity: float
) -> dict[str, float]:
    # memoised: a sweep over cache sizes asks again for the levels it did not change
    extents = {lp.name: lp.extent for lp in nest}
    p = _fits_from(nest, accesses, capacity)
    inner = {lp.name for lp in nest[p:]}
    blocks = {a.tensor: a.footprint(extents, inner) for a in accesses}
    if sum(blocks.values()) > capacity:
        # not even one iteration's operands fit: every access misses
        iterations = 1
        for lp in nest:
            iterations *= lp.extent
        return {t: b * iterations for t, b in blocks.items()}
    out: dict[str, float] = {}
    for a in accesses:
        mult = 1.0
        swept = False  # an inner loop (outside p) has brought new data of this tensor
        for i in range(p - 1, -1, -1):
            lp = nest[i]
            if a.indexed_by(lp.name):
                swept = True
                if i == p - 1:
                    # the block of the previous iteration is still resident: a sliding window
                    # (conv halo) only brings in its new part
                    mult *= 1 + (lp.extent - 1) * a.new_fraction(lp.name, extents, inner)
                    continue
            # a loop that does not index the tensor would re-use it, but one iteration of its
            # body (loops i+1..) touches more than fits (i < p), so LRU has evicted it
            if swept:
                mult *= lp.extent
        out[a.tensor] = blocks[a.tensor] * mult
    return out


@dataclass(frozen=True)
class Level:
    name: str
    size: float  # bytes; inf for DRAM


def level_traffic(
    nest: Sequence[Loop], accesses: Sequence[Access], levels: Sequence[Level], register_bytes: float
) -> dict[str, float]:
    """Bytes served by each level (`levels` innermost first, the last is DRAM): level i serves
    what the level above it misses (the register file above L1). A tensor is only fetched from
    levels up to its home: activations live in the smallest level holding all the layer's
    activations (the layer before just wrote them), weights in DRAM."""
    resident = sum(a.size_bytes() for a in accesses if a.resident)
    dram = len(levels) - 1
    act_home = next((i for i, lv in enumerate(levels) if lv.size >= resident), dram)
    above = [register_bytes] + [lv.size for lv in levels[:-1]]
    served = {lv.name: 0.0 for lv in levels}
    for i, lv in enumerate(levels):
        misses = fetches(nest, accesses, above[i])
        for a in accesses:
            if i <= (act_home if a.resident else dram):
                served[lv.name] += misses[a.tensor]
    return served
