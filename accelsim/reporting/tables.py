"""The report's numbers as rows: one summary row per model x target x precision, one row per
`LayerCost`, the accuracy study joined with simulated cost; and their CSV / JSON files.

Floats are written with Python's shortest round-trip repr, so a CSV value parsed back is the
JSON value exactly, and the same inputs give byte-identical files."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from accelsim.core.cost import ENERGY_COMPONENTS
from accelsim.core.coverage import REFERENCE, Placement, coverage
from accelsim.core.fsutil import atomic_write_text
from accelsim.reporting.collect import Run

SUMMARY_COLUMNS = (
    "model",
    "input_shape",
    "target",
    "target_kind",
    "precision",
    "fidelity",
    "calibration_data",
    "macs",
    "cycles",
    "latency_s",
    "energy_j",
    "speedup_vs_fp32",
    "energy_ratio_vs_fp32",
    "model_bytes",
    "energy_compute_j",
    "energy_onchip_memory_j",
    "energy_offchip_memory_j",
    "energy_static_j",
    "layers_compute_bound",
    "layers_memory_bound",
    "compute_bound_latency_share",
    "bound_mix",
    "lowered_mac_share",
    "lowered_layer_share",
    "coverage",
)

LAYER_COLUMNS = (
    "model",
    "target",
    "precision",
    "index",
    "name",
    "op",
    "layer_precision",
    "ran",
    "group",
    "macs",
    "cycles",
    "latency_s",
    "energy_j",
    "energy_compute_j",
    "energy_onchip_memory_j",
    "energy_offchip_memory_j",
    "energy_static_j",
    "bound",
    "utilization",
    "fidelity",
    "bytes_moved",
    "notes",
)

ACCURACY_COLUMNS = (
    "model",
    "method",
    "precision",
    "granularity",
    "calibration",
    "top1",
    "target",
    "cost_precision",
    "latency_s",
    "energy_j",
    "fidelity",
    "cost_calibration_data",
)


def _active(run: Run):
    """Layers that run a kernel (views cost nothing and have no bound worth counting)."""
    return [c for c in run.layers if c.cycles > 0]


def bound_mix(run: Run) -> tuple[int, int, float]:
    act = _active(run)
    comp = [c for c in act if c.bound == "compute"]
    lat = sum(c.latency_s for c in act)
    share = sum(c.latency_s for c in comp) / lat if lat else 0.0
    return len(comp), len(act) - len(comp), share


def summary_rows(runs: Sequence[Run], baselines: dict[tuple[str, str], Run]) -> list[dict]:
    """`baselines[(model, target)]` is the fp32 run on that target (absent: no fp32 there)."""
    rows = []
    for r in runs:
        base = baselines.get((r.model, r.target))
        split = r.energy_split()
        nc, nm, share = bound_mix(r)
        cover = coverage(Placement(c.name, c.op, c.ran or REFERENCE, c.macs) for c in r.layers)
        lat, en = r.latency_s, r.energy_j
        rows.append(
            {
                "model": r.model,
                "input_shape": "x".join(map(str, r.input_shape)),
                "target": r.target,
                "target_kind": r.target_kind,
                "precision": r.precision,
                "fidelity": r.fidelity,
                "calibration_data": r.calibration,
                "macs": r.macs,
                "cycles": r.cycles,
                "latency_s": lat,
                "energy_j": en,
                "speedup_vs_fp32": (base.latency_s / lat) if base and lat else None,
                "energy_ratio_vs_fp32": (en / base.energy_j) if base and base.energy_j else None,
                "model_bytes": r.model_bytes,
                **{f"energy_{k}_j": split.get(k, 0.0) for k in ENERGY_COMPONENTS},
                "layers_compute_bound": nc,
                "layers_memory_bound": nm,
                "compute_bound_latency_share": share,
                "bound_mix": f"{nc} compute / {nm} memory ({share:.0%} of time compute-bound)",
                "lowered_mac_share": cover.mac_share,
                "lowered_layer_share": cover.layer_share,
                "coverage": cover.text(),
            }
        )
    return rows


def layer_rows(runs: Sequence[Run]) -> list[dict]:
    rows = []
    for r in runs:
        for i, (c, g) in enumerate(zip(r.layers, r.groups)):
            rows.append(
                {
                    "model": r.model,
                    "target": r.target,
                    "precision": r.precision,
                    "index": i,
                    "name": c.name,
                    "op": c.op,
                    "layer_precision": (
                        r.layer_precisions[i] if i < len(r.layer_precisions) else ""
                    ),
                    "ran": c.ran,
                    "group": g,
                    "macs": c.macs,
                    "cycles": c.cycles,
                    "latency_s": c.latency_s,
                    "energy_j": c.energy_j,
                    **{f"energy_{k}_j": c.energy_breakdown.get(k, 0.0) for k in ENERGY_COMPONENTS},
                    "bound": c.bound,
                    "utilization": c.utilization,
                    "fidelity": c.fidelity,
                    "bytes_moved": dict(c.bytes_moved),
                    "notes": c.notes,
                }
            )
    return rows


@dataclass(frozen=True)
class AccuracyPoint:
    """One accuracy-study result with the simulated cost of its precision on one target."""

    row: dict
    target: str
    cost_precision: str
    run: Run


def accuracy_rows(points: Sequence[AccuracyPoint]) -> list[dict]:
    return [
        {
            "model": p.row["model"],
            "method": p.row["method"],
            "precision": p.row["precision"],
            "granularity": p.row.get("granularity", ""),
            "calibration": p.row.get("calibration", ""),
            "top1": p.row["top1"],
            "target": p.target,
            "cost_precision": p.cost_precision,
            "latency_s": p.run.latency_s,
            "energy_j": p.run.energy_j,
            "fidelity": p.run.fidelity,
            "cost_calibration_data": p.run.calibration,
        }
        for p in points
    ]


def _csv_value(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, dict):
        return json.dumps(v, sort_keys=True, separators=(",", ":"))
    return v


def to_csv(rows: Sequence[dict], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([_csv_value(r[c]) for c in columns])
    return buf.getvalue()


def to_json(rows: Sequence[dict], columns: Sequence[str]) -> str:
    """A JSON list, one row per line (diff-friendly), keys in column order."""
    lines = [json.dumps({c: r[c] for c in columns}) for r in rows]
    return "[\n" + ",\n".join(lines) + "\n]\n"


def write_tables(
    out: Path, summary: list[dict], layers: list[dict], accuracy: list[dict]
) -> list[Path]:
    files = []
    for stem, rows, cols in (
        ("summary", summary, SUMMARY_COLUMNS),
        ("layers", layers, LAYER_COLUMNS),
        ("accuracy_cost", accuracy, ACCURACY_COLUMNS),
    ):
        if stem == "accuracy_cost" and not rows:
            continue
        atomic_write_text(out / f"{stem}.csv", to_csv(rows, cols))
        atomic_write_text(out / f"{stem}.json", to_json(rows, cols))
        files += [out / f"{stem}.csv", out / f"{stem}.json"]
    return files
