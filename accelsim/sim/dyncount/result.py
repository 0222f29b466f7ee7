"""What the count predictor reports: per block, per loop and per call."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from accelsim.core.errors import AccelsimError


class DynCountError(AccelsimError):
    """Assembly the count predictor cannot read (the message names the file)."""


@dataclass(frozen=True)
class BlockCount:
    function: str
    label: str  # its label, or "<function>+<n>" for an unlabelled block
    lines: tuple[str, ...]  # instruction lines (Hexagon: with the packet braces)
    instructions: int  # static instructions in the block
    packets: int | None  # static packets (Hexagon)
    executions: int  # per call (the minimum where a branch is unresolved)
    executions_max: int
    loop: str | None  # header label of the innermost loop holding it
    in_loop: bool  # the block is part of a loop body (vs straight-line code)


@dataclass(frozen=True)
class LoopCount:
    function: str
    header: str
    depth: int  # 1 = outermost
    parent: str | None
    trip_count: int | None  # header executions per entry into the loop
    entries: int | None  # entries per call
    source: str  # how the trip count was found
    blocks: tuple[str, ...]


@dataclass(frozen=True)
class DynamicCount:
    """What one call of a kernel executes, predicted from its assembly."""

    arch: str  # aarch64 | hexagon
    entry: str  # the function the call enters
    instructions: int  # minimum over the unresolved branches (exact if none)
    instructions_max: int
    packets: int | None
    packets_max: int | None
    functions: Mapping[str, tuple[int, int]]  # name -> (min, max) instructions
    function_packets: Mapping[str, tuple[int, int]]  # Hexagon
    external_calls: Mapping[str, int]  # callee outside the object -> calls
    blocks: tuple[BlockCount, ...]
    loops: tuple[LoopCount, ...]
    unresolved: tuple[str, ...] = field(default=())  # data-dependent branches, unknown loops
    # a parallel loop's body (TVM's `__tvm_parallel_lambda`) -> per task, the executions per
    # call of each of its blocks (in `blocks` order); its BlockCounts hold the sum over tasks
    tasks: Mapping[str, tuple[tuple[int, ...], ...]] = field(default_factory=dict)

    @property
    def exact(self) -> bool:
        return self.instructions == self.instructions_max and self.packets == self.packets_max
