"""Calibrated compute rates of the analytic model: `targets/calibration/<target>.yaml`, read.

Each row gives, for one layer kind at one precision, `cycles_per_mac` and `cycles_per_output`
fitted to the codegen model's kernels (`accelsim.sim.calibration` derives and writes them).
The analytic model costs a layer of a calibrated kind with them; kinds without a row keep the
documented formula.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path

from accelsim.core.errors import InputError
from accelsim.core.fsutil import read_yaml
from accelsim.core.target import Target, targets_dir
from accelsim.model.graph import Graph, Node
from accelsim.model.ops import node_macs, op_class


def kind(graph: Graph, node: Node) -> str:
    """The layer kind a calibration row covers: the operator class, 1x1 and kxk convs apart."""
    cls = op_class(graph, node)
    if cls == "conv2d":
        kh, kw = graph.tensors[node.inputs[1]].shape[2:]
        return "conv2d_1x1" if (kh, kw) == (1, 1) else "conv2d_kxk"
    return cls


def path_for(target: Target) -> Path:
    return targets_dir() / "calibration" / f"{target.name}.yaml"


@cache
def _load(path: str, mtime_ns: int) -> Mapping:
    data = read_yaml(path, "calibration file", InputError)
    if not isinstance(data, Mapping) or not isinstance(data.get("precisions"), Mapping):
        raise InputError(
            f"{path}: expected a mapping with 'precisions' (precision -> kind -> "
            f"cycles_per_unit), found {type(data).__name__}"
        )
    return data


def compute_cycles(target: Target, precision: str, graph: Graph, node: Node) -> float | None:
    """Calibrated compute cycles of a node (None when its kind is not calibrated)."""
    path = path_for(target)
    if not path.is_file():
        return None
    data = _load(str(path), path.stat().st_mtime_ns)
    row = (data["precisions"].get(precision) or {}).get(kind(graph, node))
    if row is None:
        return None
    try:
        a, b = float(row["cycles_per_mac"]), float(row["cycles_per_output"])
    except (TypeError, KeyError, ValueError):
        raise InputError(
            f"{path}: precisions.{precision}.{kind(graph, node)}: expected "
            f"cycles_per_mac and cycles_per_output numbers, found {row!r}"
        ) from None
    return a * node_macs(graph, node) + b * outputs(graph, node)


def splits(target: Target, precision: str, graph: Graph, node: Node) -> bool:
    """Whether the calibrated kernels of the node's kind ran split over the hardware threads
    (the row's `split`; kinds without a row: no)."""
    path = path_for(target)
    if not path.is_file():
        return False
    data = _load(str(path), path.stat().st_mtime_ns)
    row = (data["precisions"].get(precision) or {}).get(kind(graph, node)) or {}
    return bool(row.get("split", False))


def outputs(graph: Graph, node: Node) -> float:
    return float(sum(graph.tensors[t].size for t in node.outputs))
