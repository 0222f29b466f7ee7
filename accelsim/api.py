"""The Python API: everything the command line does, as functions that return typed results.

```python
import accelsim

g = accelsim.load_model("mobilenet_v2", input_size=96)
q = accelsim.quantize(g, "w8a8", data=accelsim.random_calibration(g, 8))
sim = accelsim.simulate(q.graph, "cortex-a76", fidelity="analytic")
print(sim.runs[0].total_latency_s)
df = sim.to_pandas()                      # one row per layer
checked = accelsim.verify(q.graph, "host")
assert checked.ok
```

Models are a zoo name, a model file (`.onnx`, `.tflite`) or a `Graph`; targets a shipped target
name, a target `.yaml` or a `Target`; precisions a string (`"w8a8"`, `"w4a8/per-tensor"`) or a
`Precision`. A float model given with a precision is quantized first (with seeded random
calibration data where only cost matters, labelled as such in every result); a model whose
quantization is stored in the file (TFLite int8, QDQ ONNX) runs at that precision, and asking for
another one is an error that says how (start from the float model). Every result has `to_json()`
and, where it is a table, `to_pandas()`.

Errors a user can cause raise `accelsim.AccelsimError` subclasses whose message names the file,
field or node.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from accelsim.core.cost import LayerCost
from accelsim.core.errors import InputError
from accelsim.core.precision import Precision, parse_precision, parse_precision_list
from accelsim.core.target import Target, load_target
from accelsim.model.graph import Graph

if TYPE_CHECKING:  # annotations only: these stages load lazily
    import pandas as pd

    from accelsim.core.coverage import Coverage
    from accelsim.dse.tune import TuneResult
    from accelsim.quant.ptq import CalibrationData
    from accelsim.reporting import ReportResult

ModelLike = str | os.PathLike | Graph
TargetLike = str | os.PathLike | Target
PrecisionLike = str | Precision
# Progress: a factory the caller gives, called with (total items, description) when a long step
# starts; it returns `update(done)` (the CLI passes tqdm bars).
# progress(total, desc[, unit=...]) -> update(done); `unit` names what is counted (sweeps: points)
Progress = Callable[..., Callable[[int], None]] | None


def _bar(progress: Progress, total: int, desc: str) -> Callable[[int], None] | None:
    return progress(total, desc) if progress else None


def _dataframe(rows: list[dict]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------------------------


def load_model(source: ModelLike, input_size: int | None = None, seed: int = 0) -> Graph:
    """A zoo name or a model file (.onnx, .tflite) as a `Graph` (a `Graph` is returned as is)."""
    if isinstance(source, Graph):
        return source
    from accelsim.model.loader import load_model as _load

    return _load(os.fspath(source), input_size=input_size, seed=seed)


def target(t: TargetLike) -> Target:
    """A shipped target by name, or a target file."""
    return t if isinstance(t, Target) else load_target(os.fspath(t))


def precision(p: PrecisionLike, source: str = "precision") -> Precision:
    return p if isinstance(p, Precision) else parse_precision(p, source)


def _precisions(ps: PrecisionLike | Iterable[PrecisionLike], source: str) -> list[Precision]:
    if isinstance(ps, Precision):
        return [ps]
    if isinstance(ps, str):
        return parse_precision_list(ps, source)
    out: list[Precision] = []
    for p in ps:
        q = precision(p, source)
        if q not in out:
            out.append(q)
    if not out:
        raise InputError(f"{source}: no precision given")
    return out


def run(
    graph: Graph,
    inputs: Mapping[str, np.ndarray] | Sequence[np.ndarray],
    keep: bool = False,
    *,
    batch_size: int = 16,
) -> dict[str, np.ndarray]:
    """Run a graph with the reference executor (integer-only for quantized graphs).

    Inputs of the graph's shape run once. Inputs holding N samples stacked on axis 0 (N times
    the graph's batch, e.g. (500, 3, 48, 320) for a (1, 3, 48, 320) model) run in one call, in
    re-batched chunks of `batch_size` (sample by sample where the graph fixes its batch), and
    the outputs come back stacked the same way; a quantized graph keeps the calibration it was
    made with."""
    from accelsim.ref.executor import run as _run
    from accelsim.ref.executor import run_batch

    named = inputs if isinstance(inputs, Mapping) else dict(zip(graph.inputs, inputs))
    batched = any(
        name in graph.tensors and np.shape(a) != graph.tensors[name].shape
        for name, a in named.items()
    )
    if not batched:
        return _run(graph, inputs, keep=keep)
    if keep:
        raise InputError(
            f"run: keep=True returns every tensor of one run; model '{graph.name}' was given "
            f"a batch of samples (give inputs of the graph's shape to keep tensors)"
        )
    return run_batch(graph, inputs, batch_size=batch_size)


# ---------------------------------------------------------------------------------------------
# Quantization
# ---------------------------------------------------------------------------------------------


def random_calibration(graph: Graph, n: int, seed: int = 0) -> CalibrationData:
    """`n` seeded random calibration samples, labelled timing-only in everything they produce."""
    from accelsim.quant import calibdata

    return calibdata.random(graph, n, seed=seed)


def _calibration(graph: Graph, data: Any) -> CalibrationData:
    """CalibrationData from what a caller gives: CalibrationData, an array (N, *input[1:]), a
    list of per-sample arrays, a `.npy` path, or a data set name the project ships."""
    from accelsim.quant import calibdata
    from accelsim.quant.ptq import CalibrationData

    if isinstance(data, CalibrationData):
        return data
    if isinstance(data, str | os.PathLike):
        text = os.fspath(data)
        if text in calibdata.DATASETS:
            return calibdata.from_dataset(text, graph)
        return calibdata.from_npy(text, graph)
    if isinstance(data, np.ndarray):
        return calibdata.from_array(data, graph, "calibration array")
    if isinstance(data, Sequence):
        return calibdata.from_array(
            np.stack([np.asarray(a) for a in data]), graph, "calibration list"
        )
    raise InputError(
        f"calibration data: expected an array, a list of arrays, a .npy path or one of "
        f"{', '.join(calibdata.DATASETS)}; found {type(data).__name__}"
    )


@dataclass(frozen=True)
class Quantized:
    """A quantized graph and how it was made."""

    graph: Graph
    precision: Precision
    calibration: str  # method, or "stored" for a model that came quantized
    calibration_data: str  # where the samples came from
    layer_precisions: Mapping[str, Precision] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "model": self.graph.name,
            "precision": str(self.precision),
            "calibration": self.calibration,
            "calibration_data": self.calibration_data,
            "layers": {n: str(p) for n, p in self.layer_precisions.items()},
        }


def quantize(
    model: ModelLike,
    precision: PrecisionLike = "w8a8",
    *,
    data: Any = None,
    calibration: str = "minmax",
    weights: str | None = None,
    symmetric: bool | None = None,
    mixed: str | os.PathLike | Mapping[str, PrecisionLike] | None = None,
    input_size: int | None = None,
    progress: Progress = None,
) -> Quantized:
    """Post-training quantization of a float model.

    `data`: calibration inputs (see `_calibration`); required unless the precision is a float
    one. `weights`: "per-channel" or "per-tensor" (default per-channel); `symmetric`: weights
    symmetric (default) or affine. `mixed`: per-layer overrides, a YAML file of layer-name
    patterns or a mapping pattern -> precision."""
    from accelsim.quant.mixed import load_mixed, parse_mixed
    from accelsim.quant.ptq import quantize_graph
    from accelsim.quant.transforms import prepare_for_quantization

    graph = load_model(model, input_size)
    prec = _with_scheme(_api_precision(precision, "precision"), weights, symmetric)
    if graph.is_quantized:
        raise _stored_error(graph, prec)
    overrides = None
    if mixed is not None:
        spec = (
            parse_mixed({"layers": {k: str(v) for k, v in mixed.items()}}, "mixed precision")
            if isinstance(mixed, Mapping)
            else load_mixed(os.fspath(mixed))
        )
        overrides = spec.resolve(prepare_for_quantization(graph), prec)
    if prec.is_float and not overrides:
        data = data if data is not None else random_calibration(graph, 1)
    elif data is None:
        raise InputError(
            "precision needs calibration data: an array of samples, a .npy file, a data set "
            "name, or random_calibration(graph, n) for cost studies"
        )
    cal = _calibration(graph, data)
    bar = _bar(progress, len(cal.samples), f"calibrating {graph.name}")
    res = quantize_graph(graph, prec, cal, calibration, overrides, progress=bar)
    return Quantized(res.graph, prec, calibration, cal.source, dict(res.precisions))


def _api_precision(p: PrecisionLike, source: str) -> Precision:
    if isinstance(p, str) and not p.strip():
        raise InputError(f"{source} '': expected a precision such as w8a8 or fp32")
    return precision(p, source)


def _with_scheme(p: Precision, weights: str | None, symmetric: bool | None) -> Precision:
    changes: dict[str, bool] = {}
    if weights is not None:
        if weights not in ("per-channel", "per-tensor"):
            raise InputError(f"weights '{weights}': expected per-channel or per-tensor")
        changes["per_channel"] = weights == "per-channel"
    if symmetric is not None:
        changes["symmetric_weights"] = bool(symmetric)
    return p.with_options(**changes) if changes and not p.is_float else p


def _stored_error(graph: Graph, asked: Precision) -> InputError:
    from accelsim.model.quantization import stored_precision_error

    return stored_precision_error(graph, asked)


def as_stored(graph: Graph, asked: PrecisionLike | None = None) -> Precision:
    """The precision a model with stored quantization runs at; asking for another one is an
    error that says how (re-quantizing integers would cost a graph the user never had)."""
    from accelsim.model.quantization import graph_precision

    stored = graph_precision(graph)
    if asked is not None:
        p = _api_precision(asked, "precision")
        if p.name != stored.name:
            raise _stored_error(graph, p)
    return stored


def prepared(
    model: ModelLike,
    target_: TargetLike,
    precision_: PrecisionLike | None,
    *,
    input_size: int | None = None,
    calib_samples: int = 1,
    progress: Progress = None,
    cost_only: bool = False,
    **quantize_options: Any,
) -> tuple[Graph, Target, Precision, str]:
    """The graph, target and precision to compile, verify or cost, every check before any work:
    a float model is quantized at `precision_` (`quantize_options` as `quantize` takes them;
    without `data`, `calib_samples` seeded random samples: code and cost do not depend on
    calibrated ranges, and results say so); a stored-integer model runs as stored.
    `cost_only` (simulate): quantized without calibration, as costs do not depend on the
    calibrated ranges. Returns (graph, target, precision, calibration-data description)."""
    t = target(target_)
    asked = _api_precision(precision_, "precision") if precision_ is not None else None
    graph = load_model(model, input_size)
    if graph.is_quantized:
        stored = as_stored(graph, asked)
        t.check_precision(stored)
        _check_layers(graph, t, stored)
        source = str(graph.metadata.get("calibration_data") or "stored in the model")
        return graph, t, stored, source
    if asked is None:
        raise InputError(f"model '{graph.name}' is a float model: give a precision (e.g. w8a8)")
    t.check_precision(asked)
    if cost_only and not quantize_options:
        # costs do not depend on calibrated ranges: no activation is allocated
        from accelsim.quant.ptq import quantize_for_cost

        res = quantize_for_cost(graph, asked)
        _check_layers(res.graph, t, asked)
        return res.graph, t, asked, str(res.graph.metadata["calibration_data"])
    if quantize_options.get("data") is None:
        quantize_options["data"] = random_calibration(graph, calib_samples)
    q = quantize(graph, asked, progress=progress, **quantize_options)
    _check_layers(q.graph, t, q.precision)
    return q.graph, t, q.precision, q.calibration_data


def _check_layers(graph: Graph, t: Target, default: Precision) -> None:
    """Every integer layer of a (mixed-precision) graph at a precision the target runs: a
    per-layer override it cannot run is an error, never dropped silently (float layers run where
    the target's back end puts them)."""
    from accelsim.core.target import TargetError
    from accelsim.model.quantization import layer_precision

    for node in graph.nodes:
        p = layer_precision(graph, node, default)
        if not p.is_float and not t.supports(p):
            raise TargetError(
                f"layer '{node.name}' of model '{graph.name}' computes at {p.name}, which "
                f"target '{t.name}' ({t.path}) cannot run; it supports {', '.join(t.precisions())}"
            )


# ---------------------------------------------------------------------------------------------
# Compile and verify
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompileResult:
    model: str
    target: str
    precision: Precision
    out_dir: Path
    kernels: int  # layers with generated code
    distinct: int  # after deduplication of identical layers
    cache: Mapping[str, int]

    def records(self) -> list[dict]:
        """The per-layer records of `kernels.json`."""
        import json

        return list(json.loads((self.out_dir / "kernels.json").read_text())["kernels"])

    @property
    def coverage(self) -> Coverage:
        """Where every layer ran and the lowered shares (`kernels.json`'s `placement`)."""
        import json

        from accelsim.core import coverage as cov

        doc = json.loads((self.out_dir / "kernels.json").read_text())
        return cov.coverage(cov.Placement(**p) for p in doc["placement"])

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "target": self.target,
            "precision": str(self.precision),
            "out_dir": str(self.out_dir),
            "kernels": self.kernels,
            "distinct": self.distinct,
            "cache": dict(self.cache),
        }

    def to_pandas(self):
        rows = []
        for r in self.records():
            rows.append({k: v for k, v in r.items() if not isinstance(v, dict | list)})
        return _dataframe(rows)


def compile(  # noqa: A001 - the verb users expect, as `accelsim compile`
    model: ModelLike,
    target_: TargetLike,
    precision_: PrecisionLike | None = None,
    out: str | os.PathLike = "kernels",
    *,
    input_size: int | None = None,
    progress: Progress = None,
    **quantize_options: Any,
) -> CompileResult:
    """Lower every layer through TVM for the target and write the code into `out`
    (CPU/DSP: `<layer>.s`, `<layer>.o`; accelerators: `<layer>.asm`, `.bin`; `kernels.json`)."""
    from accelsim.backends import compile_model

    graph, t, prec, _ = prepared(
        model, target_, precision_, input_size=input_size, progress=progress, **quantize_options
    )
    bar = _bar(progress, len(graph.nodes), f"compiling {graph.name} for {t.name}")
    done = compile_model(graph, t, prec, Path(out), progress=bar)
    return CompileResult(
        graph.name, t.name, prec, Path(out), done.kernels, done.distinct, dict(done.cache)
    )


@dataclass(frozen=True)
class VerifyResult:
    model: str
    target: str
    precision: Precision
    layers: tuple  # LayerCheck per kernel

    @property
    def mismatches(self) -> int:
        return sum(c.mismatches for c in self.layers)

    @property
    def elements(self) -> int:
        return sum(c.elements for c in self.layers)

    @property
    def ok(self) -> bool:
        return self.mismatches == 0

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "target": self.target,
            "precision": str(self.precision),
            "mismatches": self.mismatches,
            "elements": self.elements,
            "layers": [
                {"name": c.name, "op": c.op, "mismatches": c.mismatches, "elements": c.elements}
                for c in self.layers
            ],
        }

    def to_pandas(self):
        return _dataframe(self.to_json()["layers"])


def verify(
    model: ModelLike,
    target_: TargetLike,
    precision_: PrecisionLike | None = None,
    *,
    seed: int = 0,
    input_size: int | None = None,
    progress: Progress = None,
    **quantize_options: Any,
) -> VerifyResult:
    """Run every generated kernel on its target (TVM runtime, qemu, or the accelerator's
    simulator) on the reference executor's inputs for a seeded random model input, and count the
    output elements that differ from the reference executor's."""
    from accelsim.backends import verify_model
    from accelsim.model.io import random_inputs

    graph, t, prec, _ = prepared(
        model,
        target_,
        precision_,
        input_size=input_size,
        calib_samples=2,
        progress=progress,
        **quantize_options,
    )
    bar = _bar(progress, len(graph.nodes), f"verifying on {t.name}")
    checks = verify_model(graph, t, prec, random_inputs(graph, seed=seed), progress=bar)
    return VerifyResult(graph.name, t.name, prec, tuple(checks))


# ---------------------------------------------------------------------------------------------
# Cost
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SimulationRun:
    """The cost of one model on one target at one precision, per layer."""

    model: str
    target: str
    precision: Precision
    fidelity: str  # what produced it: analytic, codegen, accel-sim or measured
    calibration_data: str
    layers: tuple[LayerCost, ...]
    notes: Mapping[str, Any] = field(default_factory=dict)

    @property
    def total_cycles(self) -> float:
        return sum(c.cycles for c in self.layers)

    @property
    def total_latency_s(self) -> float:
        return sum(c.latency_s for c in self.layers)

    @property
    def total_energy_j(self) -> float:
        return sum(c.energy_j for c in self.layers)

    @property
    def macs(self) -> int:
        return sum(c.macs for c in self.layers)

    @property
    def coverage(self) -> Coverage | None:
        """Share of layers and MACs that ran on lowered code (None: costs without placement,
        e.g. measured ones)."""
        from accelsim.core import coverage as cov

        if not self.layers or not all(c.ran for c in self.layers):
            return None
        return cov.coverage(cov.Placement(c.name, c.op, c.ran, c.macs) for c in self.layers)

    def to_json(self) -> dict:
        out = {
            "model": self.model,
            "target": self.target,
            "precision": str(self.precision),
            "fidelity": self.fidelity,
            "calibration_data": self.calibration_data,
            "total": {
                "cycles": self.total_cycles,
                "latency_s": self.total_latency_s,
                "energy_j": self.total_energy_j,
            },
            "layers": [c.to_json() for c in self.layers],
        }
        if self.coverage is not None:
            out["coverage"] = self.coverage.to_json()
        out.update(self.notes)
        return out


@dataclass(frozen=True)
class SimulationResult:
    runs: tuple[SimulationRun, ...]

    def to_json(self) -> list[dict]:
        return [r.to_json() for r in self.runs]

    def to_pandas(self):
        """One row per layer per run (energy components and bytes moved flattened)."""
        rows = []
        for r in self.runs:
            for c in r.layers:
                row = {
                    "model": r.model,
                    "target": r.target,
                    "precision": str(r.precision),
                    "fidelity": c.fidelity,
                }
                for k, v in c.to_json().items():
                    if isinstance(v, Mapping):
                        row.update({f"{k}.{kk}": vv for kk, vv in v.items()})
                    else:
                        row[k] = v
                rows.append(row)
        return _dataframe(rows)


def simulate(
    model: ModelLike,
    target_: TargetLike,
    precisions: PrecisionLike | Iterable[PrecisionLike] | None = None,
    *,
    fidelity: str | None = None,
    input_size: int | None = None,
) -> SimulationResult:
    """Per-layer cycles, latency, energy (by component), bound and utilisation per precision.

    `fidelity`: "codegen" (from the generated code) or "analytic" (shapes and recipes; default
    on CPU/DSP targets; accelerators default to their instruction-level simulator). A model with
    stored quantization is costed as stored (give no precisions)."""
    from accelsim.backends import fidelity_of
    from accelsim.backends import simulate as _simulate

    t = target(target_)
    label = fidelity_of(t, fidelity)
    plist: list[Precision | None] = (
        [None] if precisions is None else list(_precisions(precisions, "precision"))
    )
    for p in plist:  # every check before any work
        if p is not None:
            t.check_precision(p)
    graph = load_model(model, input_size)
    runs = []
    for p in plist:
        q, _, prec, source = prepared(graph, t, p, cost_only=True)
        costs = _simulate(q, t, prec, fidelity)
        runs.append(SimulationRun(graph.name, t.name, prec, label, source, tuple(costs)))
    return SimulationResult(tuple(runs))


@dataclass(frozen=True)
class Measurement:
    """Measured seconds per layer on this machine, next to the analytic prediction."""

    run: SimulationRun
    predicted: tuple[LayerCost, ...]
    unmeasured: frozenset[str]
    statistic: str
    repeat: int
    warmup: int
    clock: str

    def to_json(self) -> dict:
        return self.run.to_json()


def measure(
    model: ModelLike,
    precisions: PrecisionLike | Iterable[PrecisionLike] | None = None,
    target_: TargetLike = "host",
    *,
    repeat: int = 10,
    warmup: int = 2,
    statistic: str = "median",
    clock: str = "wall",
    input_size: int | None = None,
    progress: Progress = None,
) -> list[Measurement]:
    """Run the compiled kernels on this machine as a batch-1 inference, outputs checked, and
    time each layer (one thread)."""
    from accelsim.backends import check_measurable, placements
    from accelsim.backends import measure as _measure
    from accelsim.model.io import random_inputs
    from accelsim.sim.analytic import simulate_graph
    from accelsim.sim.measure import FIDELITY

    t = target(target_)
    check_measurable(t)
    plist: list[Precision | None] = (
        [None] if precisions is None else list(_precisions(precisions, "precision"))
    )
    for p in plist:  # every check before any work
        if p is not None:
            t.check_precision(p)
    graph = load_model(model, input_size)
    out = []
    for p in plist:
        q, _, prec, source = prepared(graph, t, p)
        m = _measure(
            q,
            t,
            prec,
            random_inputs(q, seed=0),
            repeat=repeat,
            warmup=warmup,
            progress=_bar(progress, len(q.nodes), f"compiling and checking {graph.name} {prec}"),
            statistic=statistic,
            clock=clock,
        )
        where = {p.layer: p.ran for p in placements(q, t, prec)}  # as simulate reports it
        costs = tuple(dataclasses.replace(c, ran=where.get(c.name, c.ran)) for c in m.costs)
        run_ = SimulationRun(graph.name, t.name, prec, FIDELITY, source, costs)
        predicted = tuple(simulate_graph(q, t, prec))
        out.append(
            Measurement(
                run_, predicted, frozenset(m.unmeasured), m.statistic, m.repeat, m.warmup, m.clock
            )
        )
    return out


# ---------------------------------------------------------------------------------------------
# Sweeps, mixed precision, reports
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepOutcome:
    points: tuple[Mapping[str, Any], ...]  # one row per design point
    pareto: tuple[Mapping[str, Any], ...]
    computed: int
    cached: int
    fidelity: str
    wall_s: float
    files: tuple[Path, ...] = ()

    def to_json(self) -> dict:
        return {
            "points": [dict(r) for r in self.points],
            "pareto": [dict(r) for r in self.pareto],
            "computed": self.computed,
            "cached": self.cached,
            "fidelity": self.fidelity,
            "wall_s": self.wall_s,
            "files": [str(f) for f in self.files],
        }

    def to_pandas(self):
        return _dataframe([dict(r) for r in self.points])


def sweep(
    models: str | Sequence[str] = ("mobilenet_v2",),
    target_: str = "simd-accel",
    grid: Mapping[str, Sequence[Any]] | None = None,
    *,
    sample: int | None = None,
    seed: int = 0,
    input_size: int | None = None,
    fidelity: str = "analytic",
    workers: int | None = None,
    scheduler: str | None = None,
    objectives: Sequence[str] = ("latency_s", "energy_j"),
    accuracy_samples: int = 0,
    out: str | os.PathLike | None = None,
    progress: Progress = None,
) -> SweepOutcome:
    """A design-space sweep over target parameters and precisions, with the Pareto front.
    `grid` maps a parameter to its values (e.g. {"lanes": [16, 32], "precision": ["w4a4",
    "w8a8"]}). With `out`, the CSV, JSON and plot files are written there."""
    from accelsim.dse.sweep import SweepSpec, plan, run_sweep, write_outputs

    names = (models,) if isinstance(models, str) else tuple(models)
    spec = SweepSpec(
        names,
        target_,
        {k: tuple(v) for k, v in (grid or {}).items()},
        sample,
        seed,
        input_size,
        fidelity,
        tuple(objectives),
        accuracy_samples=accuracy_samples,
    )
    checked = plan(spec)  # all errors before any work
    start = time.perf_counter()
    bar = progress(len(checked), "sweep", unit="points") if progress else None
    result = run_sweep(spec, workers=workers, scheduler=scheduler, progress=bar, plan_=checked)
    files = tuple(write_outputs(result, Path(out))) if out is not None else ()
    return SweepOutcome(
        result.rows,
        result.pareto,
        result.computed,
        result.cached,
        fidelity,
        time.perf_counter() - start,
        files,
    )


def report(
    models: Sequence[str] = (),
    targets: Sequence[str] = (),
    precisions: Sequence[PrecisionLike] = (),
    *,
    input_size: int | None = None,
    fidelity: str | None = None,
    name: str = "default",
    out: str | os.PathLike | None = None,
    accuracy: str | None = "reports/accuracy.json",
    use_cache: bool = True,
    kernel_efficiency: str | None = "reports/kernel_efficiency.json",
) -> ReportResult:
    """The cost-model report (HTML, Markdown, CSV, JSON, plots) of models x targets x
    precisions; returns `accelsim.reporting.ReportResult` (files, out_dir, runs, wall time)."""
    from accelsim.reporting import ReportSpec, generate_report, make_plan

    spec = ReportSpec(
        models=tuple(models),
        targets=tuple(targets),
        precisions=tuple(str(p) for p in _precisions(precisions, "precision"))
        if precisions
        else (),
        input_size=input_size,
        fidelity=fidelity,
        name=name,
        out=os.fspath(out) if out is not None else None,
        accuracy=accuracy or None,
        kernel_efficiency=kernel_efficiency or None,
        use_cache=use_cache,
    )
    plan = make_plan(spec)  # every check before any work
    return generate_report(spec, plan)


def tune(
    model: ModelLike,
    targets: TargetLike | Sequence[TargetLike],
    *,
    calibration: Any,
    x_val: np.ndarray,
    metric: Any = None,
    labels: np.ndarray | None = None,
    precision: PrecisionLike = "w8a8",
    high: PrecisionLike = "fp32",
    calibrators: Sequence[str] | None = None,
    max_drop: float = 0.01,
    min_score: float | None = None,
    fidelity: str | None = "analytic",
    sensitivity_samples: int | None = None,
    candidates: str = "all",
    ranking: str = "auto",
    prefer: str = "fewest",
    input_size: int | None = None,
    log: Callable[[str], None] | None = None,
) -> TuneResult:
    """Wu et al.'s workflow on a float model (`accelsim.dse.tune`): pick the calibrator that
    scores best on `x_val`, then move the most sensitive operators (`candidates`: "all"
    integer operators or the "weighted" ones; `ranking`: "measured", "local" or "auto") to
    `high` until the score is within `max_drop` of float (`prefer`: the "fewest" such
    operators, or the "fastest" configuration that meets it); every step costed on
    `targets`. The score is `metric` (an `accelsim.quant.metrics.Metric`, or any callable of
    the model's scores returning a number, higher better), else top-1 against `labels`, else
    the output SNR against float (dB; give the budget as `min_score`, the least SNR
    accepted).
    `calibration` is what `quantize` takes as `data` (an array of samples, a `.npy` path or
    `CalibrationData`)."""
    from accelsim.dse.tune import DEFAULT_CALIBRATORS
    from accelsim.dse.tune import tune as _tune
    from accelsim.quant import metrics
    from accelsim.quant.tasks import array_task

    graph = load_model(model, input_size=input_size)
    data = _calibration(graph, calibration)
    task = array_task(graph, data, x_val, labels if metric is None else None)
    if metric is not None:
        m = metric if isinstance(metric, metrics.Metric) else metrics.Custom(metric)
        task = replace(task, metric=m)
    names = [targets] if isinstance(targets, (str, os.PathLike, Target)) else list(targets)
    return _tune(
        graph,
        task.calibration,
        task.x_val,
        task.metric,
        precision=precision,
        calibrators=tuple(calibrators) if calibrators else DEFAULT_CALIBRATORS,
        max_drop=max_drop,
        min_score=min_score,
        high=high,
        targets=[target(t) for t in names],
        fidelity=fidelity,
        sensitivity_samples=sensitivity_samples,
        candidates=candidates,
        ranking=ranking,
        prefer=prefer,
        log=log,
    )


__all__ = [
    "CompileResult",
    "as_stored",
    "Measurement",
    "Quantized",
    "SimulationResult",
    "SimulationRun",
    "SweepOutcome",
    "VerifyResult",
    "compile",
    "load_model",
    "measure",
    "precision",
    "prepared",
    "quantize",
    "random_calibration",
    "report",
    "run",
    "simulate",
    "sweep",
    "target",
    "tune",
    "verify",
]
