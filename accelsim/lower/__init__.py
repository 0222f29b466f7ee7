"""Lowering: a quantized (or float) `Graph` -> one scheduled TVM PrimFunc per operator.

    from accelsim.lower import lower_graph
    layers = lower_graph(quantized_graph, load_target("cortex-a76"))

Each `LoweredLayer` holds the scheduled IRModule, its arguments (`ArgSpec`s in call order) and
the numpy packing between the reference executor's tensors and the kernel's layout. Schedules
come from `schedules/<target-kind>.yaml` (see `accelsim.lower.schedule`), tensor intrinsics from
the table in `accelsim.lower.intrin`, computes from `accelsim.lower.ops`.
Importing this package does not import TVM.
"""

from accelsim.lower.lower import (
    STATUS_KERNEL,
    STATUS_NOT_LOWERED,
    STATUS_VIEW,
    LoweredLayer,
    lower_graph,
    lower_node,
    lower_status,
)
from accelsim.lower.schedule import RecipeError, load_recipes, recipes_for

__all__ = [
    "LoweredLayer",
    "RecipeError",
    "STATUS_KERNEL",
    "STATUS_NOT_LOWERED",
    "STATUS_VIEW",
    "load_recipes",
    "lower_graph",
    "lower_node",
    "lower_status",
    "recipes_for",
]
