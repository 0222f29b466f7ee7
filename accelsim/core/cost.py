"""`LayerCost`: the one result type of every simulator (CPU/DSP codegen and analytic fidelity,
the accelerator's instruction-level simulator)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType

ENERGY_COMPONENTS = ("compute", "onchip_memory", "offchip_memory", "static")


@dataclass(frozen=True)
class LayerCost:
    """Cost of one operator on one target at one precision.

    `bound` is "compute" or "memory" (which roofline limit sets the time); `utilization` is
    MACs / (cycles x peak MACs per cycle) (0 for layers without MACs); `fidelity` says what
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

    def __post_init__(self) -> None:
        object.__setattr__(self, "energy_breakdown", MappingProxyType(dict(self.energy_breakdown)))
        object.__setattr__(self, "bytes_moved", MappingProxyType(dict(self.bytes_moved)))
        if self.bound not in ("compute", "memory"):
            raise ValueError(f"bound must be 'compute' or 'memory', found {self.bound!r}")

    def to_json(self) -> dict:
        return {
            f.name: (dict(v) if isinstance(v, Mapping) else v)
            for f in fields(self)
            for v in [getattr(self, f.name)]
        }
