"""Dynamic instruction (Hexagon: packet) counts of one kernel call, predicted from its assembly.

The kernel's `.s` is read by the assembly front end (`accelsim.asm`): functions and basic blocks
(labels, branches, fall-through; Hexagon packets `{ ... }`, hardware loops
`loop0/1(label, #N | reg)` closed by `:endloop0/1`), the CFG and its natural loops.

A function with loops is walked: its scalar instructions run on concrete integers (arguments
and the stack pointer get distinct fake base addresses, symbols one from a CRC of their name, so
results do not depend on the process; stack spills are kept, loaded data and vector registers
are unknown), so counted loops, LLVM's padding compare chains (`cmp`/`ccmp`,
Hexagon predicates) and the flags it toggles across loop iterations all resolve alike. Loops
are summarised so that a full-size layer takes a fraction of a second: once two consecutive
iterations take the same path, every compare moves by a constant step and every scalar value
moves by a constant step, the iterations before the first one in which some compare could
change its sign are added at once (an iteration count solved, not walked); a value that does not
move by a constant step becomes unknown, and a nonlinear operation (`and`, `lsr`, division by
multiplication, a product of two moving values) whose inputs move blocks the summary, so the
loop is walked instead (exact, slower).

If the walk meets a branch on an unknown value it gives up and the older static analysis
decides: each loop's trip count from the code (a hardware-loop immediate or constant register;
an induction register with a constant start, step and limit), block executions propagated
through the CFG. Either way, branches whose side can never reach real work (a store to memory
that is not the stack, or a call of a local function that does work) are error exits that TVM
emits for failed argument checks or allocation failures, assumed not taken (the walk applies
this only where the condition is unknown). Any other undecided branch is reported in
`unresolved`, and the counts become a [minimum, maximum] range over the paths (exact for
loop-free functions such as TVM's packed-call wrapper, whose path depends on the type codes
and strides the caller passes).

count = sum over blocks of static size x executions; `blocks` carries each block's lines and
executions so that a timing model can weight every block by how often it runs.

The package, one job per module: `walk` (the walk of one function) with its per-ISA walkers
`walk_aarch64` and `walk_hexagon` and their shared `state`; `summary` (loop summaries);
`static` (the static trip-count fallback); `count` (the counting driver: `predict`);
`result` (what it reports).
"""

from accelsim.sim.dyncount.count import COUNTED_ISAS, compute_function, predict, predict_kernel
from accelsim.sim.dyncount.result import BlockCount, DynamicCount, DynCountError, LoopCount

__all__ = [
    "COUNTED_ISAS",
    "BlockCount",
    "DynCountError",
    "DynamicCount",
    "LoopCount",
    "compute_function",
    "predict",
    "predict_kernel",
]
