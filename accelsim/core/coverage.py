"""Where each layer ran: on a kernel generated for the target, as a view (no code: the buffer
already has the output's element order), on the host fallback (an accelerator's host core), or
only in the reference executor (no generated code; the cost models still cost it from its
shapes). `compile`'s kernels.json, `simulate`'s JSON and the report carry it per layer, with the
coverage summary below, so a user sees at a glance how much of a model was really lowered."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

KERNEL = "lowered kernel"
HOST_KERNEL = "host kernel"  # an accelerator's layer lowered for its host core's CPU target
VIEW = "view"
HOST = "host fallback"
REFERENCE = "reference only"
PLACES = (KERNEL, HOST_KERNEL, VIEW, HOST, REFERENCE)
LOWERED = (KERNEL, HOST_KERNEL, VIEW)  # what counts as lowered in the coverage figures


@dataclass(frozen=True)
class Placement:
    """Where one layer ran on one target, and why when it was not lowered."""

    layer: str
    op: str
    ran: str  # one of PLACES
    macs: int = 0
    reason: str = ""

    def __post_init__(self) -> None:
        if self.ran not in PLACES:
            raise ValueError(f"ran must be one of {PLACES}, found {self.ran!r}")

    def to_json(self) -> dict:
        return {
            "layer": self.layer,
            "op": self.op,
            "ran": self.ran,
            "macs": self.macs,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Coverage:
    """Share of a model's layers and MACs that ran on lowered code (kernels and views)."""

    layers: int
    layers_lowered: int
    macs: int
    macs_lowered: int
    by_place: tuple[tuple[str, int], ...]  # layer count per place
    not_lowered_ops: tuple[tuple[str, int], ...]  # op -> layers not lowered
    macs_host: int = 0  # of macs_lowered, those in host-core kernels (an accelerator's CPU)

    @property
    def layer_share(self) -> float:
        return self.layers_lowered / self.layers if self.layers else 1.0

    @property
    def mac_share(self) -> float:
        return self.macs_lowered / self.macs if self.macs else 1.0

    def text(self) -> str:
        """One line: 'lowered: 100.0% of MACs, 96.2% of layers (51 of 53); not lowered: ...'."""
        head = (
            f"lowered: {100 * self.mac_share:.1f}% of MACs, {100 * self.layer_share:.1f}% of "
            f"layers ({self.layers_lowered} of {self.layers})"
        )
        on_host = dict(self.by_place).get(HOST_KERNEL, 0)
        if on_host:
            share = self.macs_host / self.macs if self.macs else 0.0
            head += (
                f", of which {on_host} layer{'s' if on_host != 1 else ''} and {100 * share:.1f}% "
                f"of MACs in host-core kernels"
            )
        if not self.not_lowered_ops:
            return head
        rest = ", ".join(f"{op} x{n}" for op, n in self.not_lowered_ops)
        return f"{head}; not lowered: {rest}"

    def to_json(self) -> dict:
        return {
            "layers": self.layers,
            "layers_lowered": self.layers_lowered,
            "layer_share": self.layer_share,
            "macs": self.macs,
            "macs_lowered": self.macs_lowered,
            "mac_share": self.mac_share,
            "by_place": dict(self.by_place),
            "macs_host_kernels": self.macs_host,
            "not_lowered_ops": dict(self.not_lowered_ops),
        }


def coverage(placements: Iterable[Placement]) -> Coverage:
    ps = list(placements)
    low = [p for p in ps if p.ran in LOWERED]
    places = Counter(p.ran for p in ps)
    missing = Counter(p.op for p in ps if p.ran not in LOWERED)
    return Coverage(
        len(ps),
        len(low),
        sum(p.macs for p in ps),
        sum(p.macs for p in low),
        tuple((k, places[k]) for k in PLACES if places[k]),
        tuple(sorted(missing.items(), key=lambda kv: (-kv[1], kv[0]))),
        sum(p.macs for p in ps if p.ran == HOST_KERNEL),
    )
