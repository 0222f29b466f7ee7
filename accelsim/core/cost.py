"""`LayerCost`: the one result type of every simulator (CPU/DSP codegen and analytic fidelity,
the accelerator's instruction-level simulator)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

ENERGY_COMPONENTS = ("compute", "onchip_memory", "offchip_memory", "static")


@dataclass(frozen=True)
class LayerCost:
    """Cost of one operator on one target at one precision.

    `bound` is "compute" or "memory" (which roofline limit sets the time); `utilization` is
    MACs / (cycles x peak MACs per cycle x `contexts`) (0 for layers without MACs); `fidelity` says what
    produced the number ("codegen", "analytic" or "accel-sim").
    """

    name: str
    op: str
    macs: int
    cycles: float
    latency_s: float
    energy_j: float
    energy_breakdown: Mapping[str, float]
    bound: str
    utilization: float
    fidelity: str
    bytes_moved: Mapping[str, float] = field(default_factory=dict)  # per memory level
    notes: str = ""
    ran: str = ""  # where the layer ran (`accelsim.core.coverage`): lowered kernel, view, ...
    # compute cycles by instruction group (`accelsim.sim.kernel_cost.cycle_breakdown`); codegen
    # fidelity only: the other models do not see instructions
    cycle_breakdown: Mapping[str, float] = field(default_factory=dict)
    # hardware threads (HVX contexts) the layer's compute was shared over; `utilization` is
    # against their combined peak
    contexts: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "energy_breakdown", MappingProxyType(dict(self.energy_breakdown)))
        object.__setattr__(self, "bytes_moved", MappingProxyType(dict(self.bytes_moved)))
        object.__setattr__(self, "cycle_breakdown", MappingProxyType(dict(self.cycle_breakdown)))
        if self.bound not in ("compute", "memory"):
            raise ValueError(f"bound must be 'compute' or 'memory', found {self.bound!r}")

    @classmethod
    def from_json(cls, data: Any) -> LayerCost:
        """The inverse of `to_json`; TypeError or ValueError on data of another shape (a cache
        entry that cannot be trusted)."""
        from accelsim.core.cache import check_fields

        cost = cls(**check_fields(cls, data))
        numbers = [cost.cycles, cost.latency_s, cost.energy_j, cost.utilization, cost.macs]
        numbers += [*cost.energy_breakdown.values(), *cost.bytes_moved.values()]
        numbers += [*cost.cycle_breakdown.values()]
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 for v in numbers):
            raise ValueError(f"layer {cost.name!r}: a cost that is not a number >= 0")
        return cost

    def to_json(self) -> dict:
        return {
            f.name: (dict(v) if isinstance(v, Mapping) else v)
            for f in fields(self)
            for v in [getattr(self, f.name)]
        }


def totals(costs: Sequence[LayerCost]) -> dict[str, float]:
    """Whole-graph latency, energy (and its split), cycles of per-layer costs, summed in node
    order (the sweeps' vectorised models sum their arrays in the same order)."""
    out = {
        "latency_s": sum(c.latency_s for c in costs),
        "energy_j": sum(c.energy_j for c in costs),
        "cycles": sum(c.cycles for c in costs),
    }
    for k in ENERGY_COMPONENTS:
        out[f"energy_{k}_j"] = sum(c.energy_breakdown.get(k, 0.0) for c in costs)
    return out
