"""Silicon area of a design point (mm^2), the sweeps' objective next to latency and energy.

The coefficients a target gives in its `area:` section (each with its source beside it):

    area:
      sram_bitcell_um2: 0.07        # high-density 6T bit cell at the target's node
      sram_array_efficiency: 0.7    # bit cells / macro area (decoders, sense amps, I/O)
      core_logic_mm2: 0.3           # CPU/DSP only: the core without its swept parts

and the logic cells every model here shares, from Horowitz's 45 nm table (ISSCC 2014 keynote
"Computing's energy problem", the area column of "Rough energy costs / area costs" at 45 nm):
8-bit add 36 um^2, 32-bit add 137 um^2, 8-bit multiply 282 um^2, 32-bit multiply 3495 um^2.
Other widths follow the rules the energy model uses (`accelsim.accel.arch`, docs/energy.md):
multiplier area proportional to the product of the operand widths, adder area to the width.
Node scaling of logic: A = A45 x (L / 45 nm)^2 (ASSUMPTION, the area twin of the energy model's
C ~ L rule; node names below 20 nm are not physical lengths, so it overstates the shrink there).
SRAM: bytes x 8 x bit cell / array efficiency; a bit cell given at one node scales by the same
(L / L0)^2 rule when a sweep changes the node.

Every function takes numbers or numpy arrays of design points.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from accelsim.core.target import Target, TargetError

H45_AREA_UM2 = {"add8": 36.0, "add32": 137.0, "mul8": 282.0, "mul32": 3495.0}


def logic_scale(node_nm: Any) -> Any:
    """Area factor of logic at `node_nm` relative to 45 nm."""
    return (node_nm / 45.0) ** 2


def multiplier_um2(weight_bits: Any, act_bits: Any) -> Any:
    """45 nm area of an array multiplier: product of operand widths, anchored at 8x8."""
    return H45_AREA_UM2["mul8"] * weight_bits * act_bits / 64.0


def adder_um2(bits: Any) -> Any:
    """45 nm area of an adder: its width, anchored at 32 bit."""
    return H45_AREA_UM2["add32"] * bits / 32.0


@dataclass(frozen=True)
class AreaSpec:
    """A target's `area:` coefficients, at the node `node_nm` they were given for."""

    node_nm: float
    sram_bitcell_um2: float
    sram_array_efficiency: float
    core_logic_mm2: float  # CPU/DSP: everything the sweep does not scale; 0 for accelerators

    def sram_mm2(self, nbytes: Any, node_nm: Any = None) -> Any:
        node = self.node_nm if node_nm is None else node_nm
        cell = self.sram_bitcell_um2 * (node / self.node_nm) ** 2
        return nbytes * 8.0 * cell / self.sram_array_efficiency * 1e-6


def area_spec(target: Target, node_nm: float) -> AreaSpec | None:
    """The target's area coefficients (None when it has no `area:` section); a missing or
    non-positive coefficient is a one-line error naming the file and key."""
    a: Mapping[str, Any] = target.area
    if not a:
        return None

    def num(key: str, required: bool = True) -> float:
        v = a.get(key)
        if v is None and not required:
            return 0.0
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
            raise TargetError(f"{target.path}: area.{key}: expected a positive number, found {v!r}")
        return float(v)

    eff = num("sram_array_efficiency")
    if eff > 1:
        raise TargetError(
            f"{target.path}: area.sram_array_efficiency: expected at most 1, found {eff:g}"
        )
    return AreaSpec(
        float(node_nm), num("sram_bitcell_um2"), eff, num("core_logic_mm2", required=False)
    )
