"""The assembly front end: reads the assembly TVM emits (AArch64, Hexagon / HVX, and the x86-64
subset the host target's pipe model classifies) for every user of it (the Kernel record's
instruction mix, the pipe model, the dynamic count predictor).

- `isa`: which ISA a text or a target's code is in; comments, operand lists.
- `aarch64`, `hexagon`, `x86`: per ISA, the instruction class (a key of `targets/*.yaml`
  `timing.instructions`), registers defined and used, control flow; Hexagon also hardware
  loops and expression syntax trees.
- `instr`: the `Instr` record; `parse`: lines to `Instr`s, mnemonic counts.
- `functions`: functions and their units (an instruction; a Hexagon packet); `objfile`: the
  alignment nops the object shows and the text does not.
- `cfg`: basic blocks and edges; `loops`: dominators and natural loops, the one definition of
  a loop.
"""

from accelsim.asm.cfg import Block, basic_blocks, predecessors
from accelsim.asm.functions import Function, Unit, split_functions
from accelsim.asm.instr import MAC_CLASSES, Instr
from accelsim.asm.isa import AsmError, detect_isa, isa_of, split_operands, strip_comment
from accelsim.asm.loops import (
    FlowGraph,
    InnerLoop,
    Loop,
    dominators,
    flow_graph,
    innermost,
    innermost_loops,
    loop_bodies,
    natural_loops,
)
from accelsim.asm.objfile import add_padding, object_words
from accelsim.asm.parse import classify, clean, count_mnemonic, parse, parse_line

__all__ = [
    "MAC_CLASSES",
    "AsmError",
    "Block",
    "FlowGraph",
    "Function",
    "InnerLoop",
    "Instr",
    "Loop",
    "Unit",
    "add_padding",
    "basic_blocks",
    "classify",
    "clean",
    "count_mnemonic",
    "detect_isa",
    "dominators",
    "flow_graph",
    "innermost",
    "innermost_loops",
    "isa_of",
    "loop_bodies",
    "natural_loops",
    "object_words",
    "parse",
    "parse_line",
    "predecessors",
    "split_functions",
    "split_operands",
    "strip_comment",
]
