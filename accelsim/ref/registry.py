"""The reference executor's kernel table: kernels registered per (op, domain).

Domains:
- "fp": float tensors (the float executor for float graphs);
- "gemmlowp": quantized tensors, integer-only fixed-point requantization, bit-exact with
  TFLite's reference kernels;
- "float": quantized tensors with ONNX QDQ semantics (integer accumulation, float
  requantization with round-half-to-even), as ONNX Runtime computes them;
- "int": quantized kernels that are identical in both requantization modes (reshape, flatten,
  squeeze, transpose), used when a mode has no kernel of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from accelsim.core.errors import ModelError
from accelsim.model.graph import Graph, Node, TensorInfo


@dataclass(frozen=True)
class KernelCall:
    """What a kernel sees: the node, its input arrays (None for omitted optional inputs)
    and the metadata of its inputs and outputs."""

    node: Node
    args: Sequence[np.ndarray | None]
    in_info: Sequence[TensorInfo | None]
    out_info: Sequence[TensorInfo]
    graph: Graph

    def attr(self, key, default=None):
        return self.node.attrs.get(key, default)


KernelFn = Callable[[KernelCall], Sequence[np.ndarray]]
_KERNELS: dict[tuple[str, str], KernelFn] = {}
DOMAINS = ("fp", "gemmlowp", "float", "int")


def kernel(op: str, *domains: str) -> Callable[[KernelFn], KernelFn]:
    """Register a kernel for `op` in each of `domains`."""

    def wrap(fn: KernelFn) -> KernelFn:
        for d in domains:
            assert d in DOMAINS, d
            _KERNELS[(op, d)] = fn
        return fn

    return wrap


def find_kernel(op: str, domain: str) -> KernelFn:
    """The kernel registered for `op` in `domain` ("int" kernels serve every integer domain).
    Kernel modules register themselves on import; `accelsim.ref.executor` imports them all."""
    fn = _KERNELS.get((op, domain))
    if fn is None and domain != "fp":
        fn = _KERNELS.get((op, "int"))
    if fn is None:
        have = sorted(d for (o, d) in _KERNELS if o == op)
        raise ModelError(
            f"op '{op}' has no reference kernel for {domain} tensors"
            + (f" (only for: {', '.join(have)})" if have else "")
        )
    return fn
