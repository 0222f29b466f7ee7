"""Running the simulations a report needs: quantize each model once per precision (only when a
result is not cached), cost it on every target, and keep the per-layer `LayerCost`s.

CPU / DSP targets are costed by the analytic model (`accelsim.sim.analytic`), accelerator
targets by the accelerator's instruction-level simulator (`accelsim.accel.simulate_graph`).
Cost does not depend on the calibrated ranges, so every model is calibrated on one seeded
random sample (labelled "timing only" wherever a number appears).

Results are cached on disk (`ResultCache("report")`) by content: the float graph's structure,
the precision (and mixed-precision file), the target file's text, the simulator, the source of
the modules that compute the numbers, and the accelsim version. A warm rerun quantizes nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from accelsim.core.cache import ResultCache, content_key
from accelsim.core.cost import LayerCost
from accelsim.core.target import Target
from accelsim.model.graph import Graph

CALIB_SAMPLES = 1
CALIB_SEED = 0
# Source whose change changes a number in a report: the version string alone does not move
# while the code is being developed, so the cache key also covers these modules' text.
# what a simulation result depends on
_CODE_DIRS = ("core", "asm", "model", "quant", "ref", "lower", "sim", "accel")


@dataclass(frozen=True)
class Run:
    """One model on one target at one precision: per-layer costs and what produced them."""

    model: str
    input_shape: tuple[int, ...]
    target: str
    target_kind: str
    precision: str
    fidelity: str
    calibration: str
    model_bytes: float
    params: int
    layers: tuple[LayerCost, ...]
    groups: tuple[str, ...]  # layer group of each layer (see `layer_group`)
    cached: bool = False
    # the precision each layer computes at, read from its tensors ("" for layers without MACs)
    layer_precisions: tuple[str, ...] = ()

    @property
    def macs(self) -> int:
        return sum(c.macs for c in self.layers)

    @property
    def cycles(self) -> float:
        return sum(c.cycles for c in self.layers)

    @property
    def latency_s(self) -> float:
        return sum(c.latency_s for c in self.layers)

    @property
    def energy_j(self) -> float:
        return sum(c.energy_j for c in self.layers)

    def energy_split(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for c in self.layers:
            for k, v in c.energy_breakdown.items():
                out[k] = out.get(k, 0.0) + v
        return out


@dataclass(frozen=True)
class Job:
    """A request for one run: a model (zoo name or file, input size), a target, a precision
    (a precision string, or `mixed:<file>` for a per-layer mixed-precision file)."""

    model: str
    input_size: int | None
    target: Target
    precision: str


def layer_group(graph: Graph, node) -> str:
    """Coarse layer kind for stacked bars: convolutions by kernel, depthwise, dense, ..."""
    from accelsim.model.ops import op_class

    cls = op_class(graph, node)
    if cls == "depthwise_conv2d":
        return "depthwise conv"
    if cls == "conv2d":
        shape = graph.tensors[node.inputs[1]].shape
        return "pointwise conv (1x1)" if tuple(shape[2:]) == (1, 1) else "conv (kxk)"
    if cls in ("dense", "matmul", "batch_matmul"):
        return "dense / matmul"
    if cls in ("add", "mul", "sub", "concat"):
        return "elementwise / concat"
    if "pool" in cls or cls == "mean":
        return "pooling"
    if cls in ("quantize", "dequantize", "requantize"):
        return "quantize / dequantize"
    return "other"


GROUP_ORDER = (
    "conv (kxk)",
    "pointwise conv (1x1)",
    "depthwise conv",
    "dense / matmul",
    "elementwise / concat",
    "pooling",
    "quantize / dequantize",
    "other",
)


def structure_hash(graph: Graph) -> str:
    """SHA-256 of what cost depends on: operators, attributes, tensor shapes and dtypes (not the
    weight values, which change no cycle count)."""
    doc = {
        "name": graph.name,
        "inputs": list(graph.inputs),
        "outputs": list(graph.outputs),
        "nodes": [
            [
                n.name,
                n.op,
                list(n.inputs),
                list(n.outputs),
                sorted((k, repr(v)) for k, v in n.attrs.items()),
            ]
            for n in graph.nodes
        ],
        "tensors": sorted((k, list(t.shape), t.dtype) for k, t in graph.tensors.items()),
        "constants": sorted(graph.constants),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


@cache
def code_fingerprint() -> str:
    from accelsim.core import cache as _cache

    return _cache.code_fingerprint(*_CODE_DIRS)


def _target_text(target: Target) -> str:
    from accelsim.sim.calibration import path_for

    text = Path(target.path).read_text()
    if path_for(target).is_file():  # the analytic model's calibration is part of the target
        text += "\n---calibration---\n" + path_for(target).read_text()
    if target.kind == "accelerator":  # recipes shape the generated programs
        from accelsim.accel.schedule import schedules_path

        text += "\n---recipes---\n" + Path(schedules_path()).read_text()
    return text


def simulator_of(target: Target, fidelity: str | None) -> str:
    """What costs `target` at the requested fidelity (None: the kind's default), as the label
    results carry (`accelsim.backends`)."""
    from accelsim.backends import fidelity_of

    return fidelity_of(target, fidelity)


def _calibration_label(graph: Graph | None = None) -> str:
    if graph is not None and graph.is_quantized:
        from accelsim.model.quantization import stored_label

        return f"stored in the model ({stored_label(graph)}; not re-quantized)"
    return (
        f"random N(0,1), {CALIB_SAMPLES} sample, seed {CALIB_SEED} "
        f"(timing only: cost does not depend on calibrated ranges)"
    )


def run_key(
    graph_hash: str, precision: str, mixed_text: str, target: Target, fidelity: str | None
) -> str:
    # a mixed-precision file counts by its content, not by where it lies
    prec = "mixed" if precision.startswith("mixed:") else precision
    return content_key(
        "report-run/1",
        graph_hash,
        prec,
        mixed_text,
        _target_text(target),
        simulator_of(target, fidelity),
        code_fingerprint(),
        CALIB_SAMPLES,
        CALIB_SEED,
    )


def _simulate(qgraph: Graph, target: Target, precision, fidelity: str | None) -> list[LayerCost]:
    from accelsim.backends import simulate

    return simulate(qgraph, target, precision, fidelity)


def _entry(qgraph: Graph, costs: list[LayerCost]) -> dict:
    from accelsim.model.quantization import layer_precisions

    nodes = {n.name: n for n in qgraph.nodes}
    groups = [layer_group(qgraph, nodes[c.name]) if c.name in nodes else "other" for c in costs]
    per_layer = {k: p.name for k, p in layer_precisions(qgraph).items()}
    return {
        "model_bytes": float(qgraph.model_bytes()),
        "params": int(qgraph.params()),
        "layers": [c.to_json() for c in costs],
        "groups": groups,
        "layer_precisions": [per_layer.get(c.name, "") for c in costs],
    }


def _checked_entry(entry: Any) -> dict:
    """A cached entry of `_entry`'s shape, or TypeError / ValueError (then it is recomputed)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("layers"), list):
        raise TypeError("expected a mapping with a list of layers")
    for d in entry["layers"]:
        LayerCost.from_json(d)
    groups = entry.get("groups")
    if not isinstance(groups, list) or len(groups) != len(entry["layers"]):
        raise TypeError("groups: expected one per layer")
    for key, typ in (("model_bytes", (int, float)), ("params", (int,))):
        if isinstance(entry.get(key), bool) or not isinstance(entry.get(key), typ):
            raise TypeError(f"{key}: expected a number")
    return entry


def _from_entry(entry: dict, job: Job, graph: Graph, fidelity: str | None, cached: bool) -> Run:
    layers = tuple(LayerCost.from_json(d) for d in entry["layers"])
    fids = sorted({c.fidelity for c in layers}) or [simulator_of(job.target, fidelity)]
    return Run(
        graph.name,
        tuple(graph.tensors[graph.inputs[0]].shape),
        job.target.name,
        job.target.kind,
        job.precision,
        "+".join(fids),
        _calibration_label(graph),
        entry["model_bytes"],
        entry["params"],
        layers,
        tuple(entry["groups"]),
        cached,
        tuple(entry.get("layer_precisions", ())),
    )


def _quantize(graph: Graph, precision: str):
    from accelsim.core.precision import parse_precision
    from accelsim.quant import calibdata
    from accelsim.quant.ptq import quantize_graph

    if graph.is_quantized:  # stored quantization: costed as stored (make_plan checked it)
        from accelsim.model.quantization import graph_precision

        return graph, graph_precision(graph)
    data = calibdata.random(graph, CALIB_SAMPLES, seed=CALIB_SEED)
    if precision.startswith("mixed:"):
        from accelsim.quant.mixed import load_mixed
        from accelsim.quant.transforms import prepare_for_quantization

        mixed = load_mixed(precision[len("mixed:") :])
        prepared = prepare_for_quantization(graph)
        default = mixed.default or parse_precision("w8a8")
        overrides = mixed.resolve(prepared, default)
        return quantize_graph(
            prepared, default, data, overrides=overrides, prepared=True
        ).graph, default
    p = parse_precision(precision)
    return quantize_graph(graph, p, data).graph, p


def collect(
    jobs: Iterable[Job],
    fidelity: str | None,
    cache: ResultCache | None,
    progress: Callable[[int], None] = lambda done: None,
) -> dict[tuple, Run]:
    """Run (or fetch from the cache) every job; returns {(model, input_size, target, precision):
    Run}. Jobs are grouped so that each model is built once and quantized once per precision,
    and only when some target lacks a cached result."""
    from accelsim.model.loader import load_model

    jobs = list(jobs)
    by_model: dict[tuple, dict[str, list[Job]]] = {}
    for j in jobs:
        by_model.setdefault((j.model, j.input_size), {}).setdefault(j.precision, []).append(j)
    out: dict[tuple, Run] = {}
    done = 0
    for (model, size), per_prec in by_model.items():
        graph = load_model(model, input_size=size)
        ghash = structure_hash(graph)
        for precision, pjobs in per_prec.items():
            mixed_text = Path(precision[6:]).read_text() if precision.startswith("mixed:") else ""
            quantized = None
            for j in pjobs:
                key = run_key(ghash, precision, mixed_text, j.target, fidelity)
                entry = cache.get(key, _checked_entry) if cache is not None else None
                cached = entry is not None
                if entry is None:
                    if quantized is None:
                        quantized = _quantize(graph, precision)
                    qgraph, prec = quantized
                    entry = _entry(qgraph, _simulate(qgraph, j.target, prec, fidelity))
                    # the report is built from the JSON form on cold and warm runs alike, so
                    # both give byte-identical files
                    entry = json.loads(json.dumps(entry, sort_keys=True))
                    if cache is not None:
                        cache.put(key, entry)
                out[(model, size, j.target.name, precision)] = _from_entry(
                    entry, j, graph, fidelity, cached
                )
                done += 1
                progress(done)
    return out
