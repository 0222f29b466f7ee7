"""The accelerator's design space for sweeps (`accelsim.dse.sweep`): which grid keys it takes,
their checks, and its analytic model over numpy arrays of design points.

Grid keys are the `SWEEP_PARAMS` names (`lanes`, `scratchpad_kb`, `dma_bytes_per_cycle`, ...)
or the target-file fields they live at as dotted paths (`accelerator.dma.bytes_per_cycle`,
`timing.clock_hz`). Keys that shape code (tiles, loop structure: `AccelConfig.codegen_key`)
select a configuration parsed once per distinct combination; the others
(`analytic.ARRAY_PARAMS`: bandwidths, latencies, clock, energies) are evaluated as arrays over
all the points that share it (`analytic.simulate_points`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from accelsim.accel import analytic
from accelsim.accel.arch import (
    LUT_TABLE_BYTES,
    SWEEP_PARAMS,
    AccelConfig,
    AccelConfigError,
    load_config,
)
from accelsim.core.area import (
    H45_AREA_UM2,
    AreaSpec,
    adder_um2,
    area_spec,
    logic_scale,
    multiplier_um2,
)
from accelsim.core.cost import totals
from accelsim.core.errors import InputError
from accelsim.core.precision import Precision
from accelsim.core.target import Target
from accelsim.model.graph import Graph

_DOTTED = {".".join(path): name for name, path in SWEEP_PARAMS.items() if path}


class AccelSpace:
    """Sweeps of one base accelerator target."""

    def __init__(self, target: Target | AccelConfig | str):
        self.base = load_config(target)
        self._configs: dict[tuple, AccelConfig] = {}

    def canonical(self, key: str) -> str:
        """The parameter a grid key names, or a one-line error naming what is allowed."""
        if key in SWEEP_PARAMS:
            return key
        if key in _DOTTED:
            return _DOTTED[key]
        raise InputError(
            f"sweep: unknown grid key '{key}' for accelerator {self.base.path}; expected one of "
            f"{', '.join(sorted(SWEEP_PARAMS))} (or their target-file paths, e.g. "
            f"accelerator.dma.bytes_per_cycle)"
        )

    def is_array(self, key: str) -> bool:
        return key in analytic.ARRAY_PARAMS

    def config(self, structural: Mapping[str, Any]) -> AccelConfig:
        k = tuple(sorted(structural.items(), key=lambda kv: kv[0]))
        hit = self._configs.get(k)
        if hit is None:
            try:
                hit = self.base.with_params(**structural) if structural else self.base
            except AccelConfigError as exc:
                raise InputError(f"sweep: {exc}") from None
            self._configs[k] = hit
        return hit

    def check(
        self,
        structural: Sequence[Mapping[str, Any]],
        arrays: Mapping[str, Sequence[Any]],
        precisions: Sequence[Precision],
    ) -> None:
        """Every distinct code-shaping combination, each array value, each precision."""
        for values in arrays.values():
            for v in values:
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    raise InputError(f"sweep: {v!r}: expected a number")
        for k, values in arrays.items():
            for v in values:
                self.config({k: v})
        for combo in structural:
            cfg = self.config(combo)
            for p in precisions:
                if p.name not in cfg.native:
                    raise InputError(
                        f"sweep: {cfg.path}: cannot run at precision '{p.name}' on this "
                        f"accelerator (it supports {', '.join(cfg.native)})"
                    )

    def evaluate(
        self,
        graph: Graph,
        precision: Precision,
        structural: Mapping[str, Any],
        columns: Mapping[str, np.ndarray],
        n: int,
    ) -> dict[str, np.ndarray]:
        return analytic.simulate_points(graph, self.config(structural), columns, n)

    def evaluate_point(
        self, graph: Graph, precision: Precision, params: Mapping[str, Any]
    ) -> dict[str, float]:
        """The per-point model: one configuration, `analytic.simulate_graph`."""
        cfg = self.base.with_params(**params) if params else self.base
        return totals(analytic.simulate_graph(graph, cfg))

    # -- area --------------------------------------------------------------------------------
    def has_area(self) -> bool:
        return self._area() is not None

    def _area(self) -> AreaSpec | None:
        t = self.base.target
        return area_spec(t, float(self.base.raw["energy"]["technology_nm"])) if t else None

    def area(
        self, structural: Mapping[str, Any], columns: Mapping[str, np.ndarray], n: int
    ) -> np.ndarray | None:
        """mm^2 per point: MAC lanes (one lane multiplier + an accumulator adder of the widest
        accumulator each), requantization lanes (a 32x32 multiply + four 32-bit adds each, as
        the energy model's requantization), the scratchpads and the ALU lanes' table copies, at the
        point's node."""
        spec = self._area()
        if spec is None:
            return None
        cfg = self.config(structural)
        node = np.asarray(columns.get("technology_nm", cfg.raw["energy"]["technology_nm"]))
        alu = np.asarray(columns.get("alu_lanes", cfg.alu_lanes))
        b = cfg.lane_multiplier_bits
        lane = multiplier_um2(b, b) + adder_um2(cfg.wide_acc_bits)
        requant = H45_AREA_UM2["mul32"] + 4 * adder_um2(32)
        logic = (cfg.lanes * lane + alu * requant) * logic_scale(node) * 1e-6
        tables = alu * LUT_TABLE_BYTES  # each ALU lane's VLUT table copy
        sram = spec.sram_mm2(sum(sp.size_bytes for sp in cfg.scratchpads.values()) + tables, node)
        return np.broadcast_to(logic + sram, (n,)).astype(float)
