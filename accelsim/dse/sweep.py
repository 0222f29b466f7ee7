"""Design-space sweeps over accelerator parameters and precisions.

A sweep is a grid (or a seeded random sample of it) of points; each point is one model on the
base accelerator with some parameters changed (`AccelConfig.with_params`) at one precision,
costed at one fidelity: `analytic` (default; `accelsim.accel.analytic`, shapes and recipe only,
milliseconds per point) or `codegen` (every layer compiled through TVM and its program run by the
instruction-level simulator, `accelsim.accel.sim`, seconds per point). The fidelity is part of
each point's cache key and a column of every output, so results of the two never mix. Every
point's result is cached by content hash as soon as it is computed, so an interrupted sweep rerun
recomputes only the missing points; the CSV/JSON outputs are written atomically at the end.
Points run in a local process pool (all cores) or on a Dask cluster (`scheduler` address);
results are identical either way because each point is a pure function of its inputs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import os
import random
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from accelsim.core.cache import ResultCache, content_key
from accelsim.core.errors import InputError
from accelsim.core.extras import need
from accelsim.core.fsutil import atomic_write_text, read_yaml
from accelsim.dse.pareto import pareto_mask

PRECISION_KEY = "precision"
OBJECTIVES = ("latency_s", "energy_j")
# columns a Pareto front may be taken over (all minimised)
OBJECTIVE_COLUMNS = ("latency_s", "energy_j", "area_mm2", "accuracy_noise")
# result columns in a fixed order (cached entries come back with sorted keys)
METRICS = (
    "latency_s",
    "energy_j",
    "cycles",
    "model_bytes",
    "energy_compute_j",
    "energy_onchip_memory_j",
    "energy_offchip_memory_j",
    "energy_static_j",
)
EXTRA_COLUMNS = ("area_mm2", "accuracy_noise")  # area: where the target has an `area:` section
POINT_COLUMNS = (*METRICS, "area_mm2")  # what a chunk computes
FIDELITIES = ("analytic", "codegen")
DEFAULT_FIDELITY = "analytic"
# analytic sweeps run and cache chunks of this many points: large enough that numpy's work
# dominates the per-chunk overhead, small enough that a kill loses seconds
CHUNK_POINTS = 5000


@dataclass(frozen=True)
class SweepSpec:
    models: tuple[str, ...]
    target: str  # base target: shipped name or .yaml path (any kind with a sweep space)
    grid: Mapping[str, tuple[Any, ...]]
    sample: int | None = None  # random sample of the grid (None: the whole grid)
    seed: int = 0
    input_size: int | None = None
    fidelity: str = DEFAULT_FIDELITY  # analytic | codegen
    objectives: tuple[str, ...] = OBJECTIVES  # the Pareto front's axes (all minimised)
    chunk_points: int = CHUNK_POINTS  # analytic: points per chunk (the unit of caching)
    # > 0: an `accuracy_noise` column from per-layer sensitivities on this many seeded inputs
    accuracy_samples: int = 0


def _value(token: str, where: str) -> Any:
    for parse in (int, float):  # YAML 1.1 reads "1e9" as text
        try:
            v = parse(token)
        except ValueError:
            continue
        if isinstance(v, float) and not math.isfinite(v):
            raise InputError(f"{where}: value {token!r}: expected a finite number")
        return v
    import yaml

    try:
        v = yaml.safe_load(token)
    except yaml.YAMLError:
        raise InputError(f"{where}: value {token!r} is not a YAML scalar") from None
    if isinstance(v, (list, dict)):
        raise InputError(
            f"{where}: value {token!r}: expected a number or a name, found a {type(v).__name__}"
        )
    return token if v is None else v


def parse_grid_args(items: Sequence[str], source: str = "--grid") -> dict[str, tuple[Any, ...]]:
    """`["lanes=16,32", "precision=w4a4,w8a8"]` -> {"lanes": (16, 32), ...}."""
    grid: dict[str, tuple[Any, ...]] = {}
    for item in items:
        if "=" not in item:
            raise InputError(f"{source} '{item}': expected KEY=V1,V2,...")
        key, values = item.split("=", 1)
        key = key.strip()
        vals = tuple(
            _value(v.strip(), f"{source} '{item}'") for v in values.split(",") if v.strip()
        )
        if not vals:
            raise InputError(f"{source} '{item}': no values for '{key}'")
        grid[key] = grid.get(key, ()) + vals
    return grid


def load_grid_yaml(path: str) -> tuple[dict[str, tuple[Any, ...]], int | None, int]:
    """A YAML with `grid: {key: [values]}` and optional `sample: N`, `seed: S`."""
    data = read_yaml(path, "sweep file", InputError)
    if not isinstance(data, Mapping) or "grid" not in data:
        raise InputError(f"{path}: expected a mapping with 'grid' (and optional 'sample', 'seed')")
    extra = set(data) - {"grid", "sample", "seed"}
    if extra:
        raise InputError(f"{path}: {sorted(extra)[0]}: unknown key (expected grid, sample, seed)")
    grid = data["grid"]
    if not isinstance(grid, Mapping):
        raise InputError(f"{path}: grid: expected a mapping key -> list of values")
    out = {str(k): tuple(v if isinstance(v, list) else [v]) for k, v in grid.items()}
    for k, values in out.items():
        if not values:
            raise InputError(f"{path}: grid.{k}: expected a non-empty list of values")
    sample, seed = data.get("sample"), data.get("seed", 0)
    if sample is not None and (
        isinstance(sample, bool) or not isinstance(sample, int) or sample < 1
    ):
        raise InputError(f"{path}: sample: expected a positive integer, found {sample!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"{path}: seed: expected an integer >= 0, found {seed!r}")
    return out, sample, seed


@dataclass(frozen=True)
class Axis:
    key: str  # as the user wrote it (the output column)
    name: str  # the parameter the target kind's space calls it
    values: tuple[Any, ...]
    array: bool  # evaluated as a numpy array over points (shapes no code)


@dataclass(frozen=True)
class Plan:
    """A validated sweep: its axes in point order (code-shaping axes outermost, then the
    precision, then the array axes, each by key) and the selected grid positions."""

    spec: SweepSpec
    target: Any  # core.target.Target
    axes: tuple[Axis, ...]
    flat: np.ndarray  # selected positions in the grid of one model (sorted)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(a.values) for a in self.axes)

    def __len__(self) -> int:
        return len(self.spec.models) * len(self.flat)

    def points(self) -> list[dict[str, Any]]:
        """Each point as a dict (model, then every axis key)."""
        codes = np.unravel_index(self.flat, self.shape)
        rows = [
            {a.key: a.values[c] for a, c in zip(self.axes, combo)}
            for combo in zip(*(c.tolist() for c in codes))
        ]
        return [{"model": m, **r} for m in self.spec.models for r in rows]


def grid_points(spec: SweepSpec) -> list[dict[str, Any]]:
    return plan(spec).points()


def _selection(shape: tuple[int, ...], sample: int | None, seed: int) -> np.ndarray:
    total = math.prod(shape)
    if sample is not None and sample < total:
        rng = random.Random(seed)
        return np.array(sorted(rng.sample(range(total), sample)), dtype=np.int64)
    return np.arange(total, dtype=np.int64)


def plan(spec: SweepSpec) -> Plan:
    """Every check that can fail, before any work: fidelity, models, objectives, every grid key
    against the target's fields (the kind's sweep space names what is allowed), every value,
    every code-shaping combination, every precision."""
    from accelsim.backends import backend_for
    from accelsim.core.precision import parse_precision
    from accelsim.core.target import load_target
    from accelsim.model.zoo import MODELS

    if spec.fidelity not in FIDELITIES:
        raise InputError(
            f"sweep: fidelity '{spec.fidelity}': expected one of {', '.join(FIDELITIES)}"
        )
    if not spec.grid or any(len(v) == 0 for v in spec.grid.values()):
        raise InputError("sweep: the grid is empty; give at least one --grid KEY=V1,V2")
    if spec.sample is not None and (isinstance(spec.sample, bool) or spec.sample < 1):
        raise InputError(f"sweep: sample {spec.sample!r}: expected a positive integer")
    for key, values in spec.grid.items():
        for v in values:
            if isinstance(v, float) and not math.isfinite(v):
                raise InputError(f"sweep: grid {key}: expected finite values, found {v}")
    for m in spec.models:
        if m not in MODELS:
            raise InputError(f"sweep: unknown model '{m}'; zoo: {', '.join(MODELS)}")
    if not spec.objectives or any(o not in OBJECTIVE_COLUMNS for o in spec.objectives):
        bad = next((o for o in spec.objectives if o not in OBJECTIVE_COLUMNS), "(none)")
        raise InputError(
            f"sweep: objective '{bad}': expected a subset of {', '.join(OBJECTIVE_COLUMNS)}"
        )
    if "accuracy_noise" in spec.objectives and spec.accuracy_samples < 1:
        raise InputError(
            "sweep: objective accuracy_noise needs accuracy samples (--accuracy-samples N)"
        )
    if spec.chunk_points < 1:
        raise InputError(f"sweep: chunk size {spec.chunk_points}: expected at least 1")
    target = load_target(spec.target)
    b = backend_for(target)
    if b.space is None:
        raise InputError(f"sweep: target '{target.name}' ({target.kind}) cannot be swept")
    if spec.fidelity == "codegen" and "codegen" not in b.fidelities:
        raise InputError(f"sweep: target '{target.name}' has no codegen fidelity")
    space = b.space(target)
    if "area_mm2" in spec.objectives and not space.has_area():
        raise InputError(
            f"sweep: objective area_mm2: {target.path} has no area: section (sram_bitcell_um2, "
            f"sram_array_efficiency, core_logic_mm2; accelsim.core.area)"
        )
    precs = tuple(str(v) for v in spec.grid.get(PRECISION_KEY, ("w8a8",)))
    parsed = [parse_precision(p, "sweep: precision") for p in precs]
    for p in parsed:
        if not target.supports(p):
            raise InputError(
                f"sweep: {target.path}: cannot run at precision '{p.name}' on "
                f"'{target.name}' (it supports {', '.join(target.precisions())})"
            )
    named: dict[str, str] = {}
    axes = []
    for key in sorted(k for k in spec.grid if k != PRECISION_KEY):
        name = space.canonical(key)
        if name in named:
            raise InputError(f"sweep: grid keys '{named[name]}' and '{key}' name the same field")
        named[name] = key
        vals = tuple(dict.fromkeys(spec.grid[key]))  # duplicates would be the same point twice
        axes.append(Axis(key, name, vals, space.is_array(name)))
    if spec.fidelity == "codegen":  # the per-point path: no arrays
        axes = [dataclasses.replace(a, array=False) for a in axes]
    structural = [a for a in axes if not a.array]
    arrays = [a for a in axes if a.array]
    combos = [
        {a.name: v for a, v in zip(structural, combo)}
        for combo in itertools.product(*(a.values for a in structural))
    ]
    space.check(combos, {a.name: a.values for a in arrays}, parsed)
    ordered = (*structural, Axis(PRECISION_KEY, PRECISION_KEY, precs, False), *arrays)
    shape = tuple(len(a.values) for a in ordered)
    return Plan(spec, target, ordered, _selection(shape, spec.sample, spec.seed))


def validate(spec: SweepSpec) -> list[dict[str, Any]]:
    """`plan`'s checks; the points as dicts."""
    return plan(spec).points()


# -- one point (runs in worker processes) ---------------------------------------------------
_GRAPHS: dict[tuple, Any] = {}


def _quantized(model: str, precision: str, input_size: int | None):
    key = (model, precision, input_size)
    if key not in _GRAPHS:
        from accelsim.core.precision import parse_precision
        from accelsim.model import zoo
        from accelsim.quant import calibdata
        from accelsim.quant.ptq import quantize_graph

        g = zoo.build(model, input_size=input_size)
        # latency and energy do not depend on calibrated ranges: one seeded random sample
        _GRAPHS[key] = quantize_graph(g, parse_precision(precision), calibdata.random(g, 1)).graph
    return _GRAPHS[key]


def _config(point: Mapping[str, Any], target: str):
    from accelsim.accel.arch import load_config

    base = load_config(target)
    params = {k: v for k, v in point.items() if k not in ("model", PRECISION_KEY)}
    return base.with_params(**params) if params else base


def point_key(
    point: Mapping[str, Any], target: str, input_size: int | None, fidelity: str = DEFAULT_FIDELITY
) -> str:
    return content_key(
        "sweep-point",
        point.get("model"),
        str(point.get(PRECISION_KEY, "w8a8")),
        input_size,
        _config(point, target).key,
        fidelity,
    )


def _simulator(fidelity: str):
    if fidelity == "analytic":
        from accelsim.accel.analytic import simulate_graph
    else:
        from accelsim.accel.sim import simulate_graph
    return simulate_graph


def evaluate_point(
    point: Mapping[str, Any], target: str, input_size: int | None, fidelity: str = DEFAULT_FIDELITY
) -> dict:
    cfg = _config(point, target)
    precision = str(point.get(PRECISION_KEY, "w8a8"))
    graph = _quantized(point["model"], precision, input_size)
    costs = _simulator(fidelity)(graph, cfg)
    latency = sum(c.latency_s for c in costs)
    energy = sum(c.energy_j for c in costs)
    split = {
        k: sum(c.energy_breakdown.get(k, 0.0) for c in costs)
        for k in ("compute", "onchip_memory", "offchip_memory", "static")
    }
    return {
        "latency_s": latency,
        "energy_j": energy,
        "cycles": sum(c.cycles for c in costs),
        "model_bytes": graph.model_bytes(),
        **{f"energy_{k}_j": v for k, v in split.items()},
    }


def _checked_metrics(entry: Any) -> dict:
    """A cached point's metrics, each a number (TypeError otherwise: then it is recomputed)."""
    if not isinstance(entry, dict):
        raise TypeError(f"expected a mapping, found {type(entry).__name__}")
    for m in METRICS:
        if isinstance(entry.get(m), bool) or not isinstance(entry.get(m), (int, float)):
            raise TypeError(f"{m}: expected a number, found {entry.get(m)!r}")
    return entry


def _checked_number(entry: Any) -> float:
    """A cached number (TypeError otherwise: then it is recomputed)."""
    if isinstance(entry, bool) or not isinstance(entry, (int, float)) or not math.isfinite(entry):
        raise TypeError(f"expected a finite number, found {entry!r}")
    return float(entry)


def _checked_chunk(entry: Any) -> dict:
    """A cached chunk: every metric a list of finite numbers, all of one length (TypeError
    otherwise: then it is recomputed); null marks a column a point does not have (its area),
    never a metric."""
    if not isinstance(entry, dict) or not entry:
        raise TypeError(f"expected a mapping of columns, found {type(entry).__name__}")
    missing = [m for m in METRICS if m not in entry]
    if missing:
        raise TypeError(f"{missing[0]}: missing")
    lengths = set()
    for m, col in entry.items():
        if not isinstance(col, list) or any(
            isinstance(v, bool)
            or not isinstance(v, (int, float))
            and not (v is None and m not in METRICS)
            for v in col
        ):
            raise TypeError(f"{m}: expected a list of numbers")
        if m in METRICS and not all(math.isfinite(v) for v in col):
            raise TypeError(f"{m}: non-finite value")
        lengths.add(len(col))
    if len(lengths) != 1:
        raise TypeError("columns of different lengths")
    return entry


def _evaluate_and_cache(args) -> list[tuple[str, dict]]:
    """A batch of neighbouring grid points (they share tile choices, memoised per process); each
    result is cached as soon as it is computed, so a kill loses at most the point in flight."""
    points, target, input_size, cache_dir, fidelity = args
    cache = ResultCache("sweep", cache_dir)
    out = []
    for point in points:
        key = point_key(point, target, input_size, fidelity)
        result = evaluate_point(point, target, input_size, fidelity)
        cache.put(key, result)
        out.append((key, result))
    return out


def _batches(points: list, fidelity: str, workers: int) -> list[list]:
    # analytic points take milliseconds: batches amortise the task overhead; compiled points
    # take seconds: one per task keeps the progress bar and the load balance fine-grained
    size = 1 if fidelity == "codegen" else max(1, min(16, len(points) // (4 * workers)))
    return [points[i : i + size] for i in range(0, len(points), size)]


# -- analytic: chunks of points as numpy arrays (run in worker processes) --------------------
@dataclass(frozen=True)
class Chunk:
    """Positions `flat` of one model's grid, evaluated and cached together."""

    target: str
    model: str
    input_size: int | None
    axes: tuple[Axis, ...]
    flat: np.ndarray
    key: str


_SPACES: dict[str, Any] = {}


def _space(target: str) -> Any:
    hit = _SPACES.get(target)
    if hit is None:
        from accelsim.backends import backend_for
        from accelsim.core.target import load_target

        t = load_target(target)
        hit = _SPACES[target] = backend_for(t).space(t)
    return hit


def evaluate_chunk(chunk: Chunk) -> dict[str, list[float]]:
    """`POINT_COLUMNS` of every point of a chunk: points that share every code-shaping value and
    the precision are one group, its array axes evaluated at once by the kind's space."""
    from accelsim.core.precision import parse_precision

    space = _space(chunk.target)
    shape = tuple(len(a.values) for a in chunk.axes)
    codes = np.unravel_index(chunk.flat, shape)
    grouped = [i for i, a in enumerate(chunk.axes) if not a.array]
    combined = np.ravel_multi_index([codes[i] for i in grouped], [shape[i] for i in grouped])
    uniq, inverse = np.unique(combined, return_inverse=True)
    n = len(chunk.flat)
    out = {m: np.empty(n) for m in POINT_COLUMNS}
    for g in range(len(uniq)):
        sel = np.nonzero(inverse == g)[0]
        fixed = {chunk.axes[i].name: chunk.axes[i].values[codes[i][sel[0]]] for i in grouped}
        precision = str(fixed.pop(PRECISION_KEY))
        graph = _quantized(chunk.model, precision, chunk.input_size)
        columns = {
            a.name: np.asarray(a.values)[codes[i][sel]] for i, a in enumerate(chunk.axes) if a.array
        }
        res = space.evaluate(graph, parse_precision(precision), fixed, columns, len(sel))
        for m in METRICS:
            if m != "model_bytes":
                out[m][sel] = res[m]
        out["model_bytes"][sel] = graph.model_bytes()
        area = space.area(fixed, columns, len(sel))
        out["area_mm2"][sel] = np.nan if area is None else area
    # JSON has no NaN (the cache refuses non-finite numbers): a column a point lacks is null
    return {m: [None if x != x else x for x in v.tolist()] for m, v in out.items()}


def _chunks(p: Plan) -> list[Chunk]:
    from accelsim.core.cache import code_fingerprint

    spec = p.spec
    code = code_fingerprint("accel", "sim", "dse/sweep.py")
    target_text = json.dumps(
        [
            p.target.kind,
            p.target.timing,
            p.target.memory,
            p.target.energy,
            p.target.codegen,
            p.target.accelerator,
            getattr(p.target, "area", None),
        ],
        sort_keys=True,
        default=str,
    )
    axes_text = json.dumps([(a.key, a.name, a.values, a.array) for a in p.axes], default=str)
    out = []
    for model in spec.models:
        for i in range(0, len(p.flat), spec.chunk_points):
            flat = p.flat[i : i + spec.chunk_points]
            key = content_key(
                "sweep-chunk",
                code,
                target_text,
                model,
                spec.input_size,
                axes_text,
                hashlib.sha256(flat.tobytes()).hexdigest(),
            )
            out.append(Chunk(spec.target, model, spec.input_size, p.axes, flat, key))
    return out


def _run_and_cache(args: tuple[Chunk, str]) -> dict[str, list[float]]:
    chunk, cache_dir = args
    result = evaluate_chunk(chunk)
    ResultCache("sweep", cache_dir).put(chunk.key, result)
    return result


# -- the sweep -------------------------------------------------------------------------------
def _execute(
    fn: Callable[[Any], Any],
    tasks: Sequence[Any],
    workers: int,
    scheduler: str | None,
    done: Callable[[int, Any], None],
) -> None:
    """`fn` over `tasks` on a Dask cluster (`scheduler`), a local process pool or in this
    process; `done(task index, result)` as each finishes. Tasks are pure functions of their
    inputs, so where they run does not change a result."""
    if not tasks:
        return
    if scheduler:
        from distributed import as_completed

        with connect(scheduler) as client:
            futures = client.map(fn, list(tasks), pure=False)
            index = {f.key: i for i, f in enumerate(futures)}
            for fut in as_completed(futures):
                done(index[fut.key], fut.result())
    elif workers > 1 and len(tasks) > 1:
        with ProcessPoolExecutor(max_workers=min(workers, len(tasks))) as pool:
            for i, r in enumerate(pool.map(fn, tasks, chunksize=1)):
                done(i, r)
    else:
        for i, t in enumerate(tasks):
            done(i, fn(t))


@dataclass(frozen=True, eq=False)
class SweepResult:
    table: Any  # pandas.DataFrame, one row per point in plan order
    front: np.ndarray  # bool per row: on its model's Pareto front over `objectives`
    objectives: tuple[str, ...]
    computed: int
    cached: int
    chunks_computed: int = 0
    chunks_cached: int = 0

    @property
    def rows(self) -> tuple[dict, ...]:
        return tuple(self.table.to_dict("records"))

    @property
    def pareto(self) -> tuple[dict, ...]:
        return tuple(self.table[self.front].to_dict("records"))


# how long an unreachable Dask scheduler may keep a sweep waiting
CONNECT_TIMEOUT_S = 5


def connect(scheduler: str):
    """A Dask client of `scheduler`; a missing dask extra, a malformed or unreachable address is
    one user error within `CONNECT_TIMEOUT_S`."""
    distributed = need("distributed", "sweep --scheduler", "dask")
    try:
        return distributed.Client(scheduler, timeout=f"{CONNECT_TIMEOUT_S}s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise InputError(
            f"--scheduler {scheduler}: no Dask scheduler answered within {CONNECT_TIMEOUT_S} s "
            f"(expected the address of a running scheduler, e.g. tcp://host:8786; "
            f"{type(exc).__name__})"
        ) from None


def run_sweep(
    spec: SweepSpec,
    cache_dir: str | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Callable[[int], None] | None = None,
    plan_: Plan | None = None,
) -> SweepResult:
    p = plan_ or plan(spec)
    if scheduler:  # a missing extra fails before any work
        need("distributed", "sweep --scheduler", "dask")
    if spec.fidelity == "codegen":
        return _run_points(p, cache_dir, workers, scheduler, progress)
    cache = ResultCache("sweep", cache_dir)
    chunks = _chunks(p)
    results: dict[str, dict] = {}
    todo = []
    for c in chunks:
        hit = cache.get(c.key, _checked_chunk)
        if hit is not None:
            results[c.key] = hit
        else:
            todo.append(c)
    cached = sum(len(c.flat) for c in chunks if c.key in results)
    done = cached
    if progress:
        progress(done)
    nworkers = workers or os.cpu_count() or 1
    tasks = [(c, str(cache.dir)) for c in todo]

    def collect(c: Chunk, r: dict) -> None:
        nonlocal done
        results[c.key] = r
        done += len(c.flat)
        if progress:
            progress(done)

    _execute(_run_and_cache, tasks, nworkers, scheduler, lambda i, r: collect(todo[i], r))
    table = _table(p, [results[c.key] for c in chunks])
    _add_accuracy(table, spec, str(cache.dir))
    return SweepResult(
        table,
        _fronts(table, spec.objectives),
        spec.objectives,
        len(p) - cached,
        cached,
        len(todo),
        len(chunks) - len(todo),
    )


def _table(p: Plan, chunk_results: Sequence[Mapping[str, list]]):
    """One row per point, in plan order: model, precision, fidelity, each axis, the metrics."""
    import pandas as pd

    codes = np.unravel_index(p.flat, p.shape)
    nm = len(p.spec.models)
    cols: dict[str, Any] = {"model": np.repeat(np.array(p.spec.models, dtype=object), len(p.flat))}
    byname = {a.key: (a, c) for a, c in zip(p.axes, codes)}
    cols[PRECISION_KEY] = np.tile(
        np.asarray(byname[PRECISION_KEY][0].values, dtype=object)[byname[PRECISION_KEY][1]], nm
    )
    cols["fidelity"] = _label(p.target, p.spec.fidelity)
    for a, c in zip(p.axes, codes):
        if a.key != PRECISION_KEY:
            vals = a.values
            arr = (
                np.asarray(vals)
                if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals)
                else np.asarray(vals, dtype=object)
            )
            cols[a.key] = np.tile(arr[c], nm)
    for m in (*METRICS, *EXTRA_COLUMNS):
        if any(m in r for r in chunk_results):
            v = np.concatenate([np.asarray(r[m], dtype=float) for r in chunk_results])
            if m in METRICS or not np.isnan(v).all():
                cols[m] = v
    return pd.DataFrame(cols)


def _fronts(table, objectives: Sequence[str]) -> np.ndarray:
    front = np.zeros(len(table), dtype=bool)
    values = table[list(objectives)].to_numpy(dtype=float)
    models = table["model"].to_numpy()
    for m in dict.fromkeys(models.tolist()):
        sel = np.nonzero(models == m)[0]
        front[sel] = pareto_mask(values[sel])
    return front


def _run_points(
    p: Plan,
    cache_dir: str | None,
    workers: int | None,
    scheduler: str | None,
    progress: Callable[[int], None] | None,
) -> SweepResult:
    """Codegen fidelity: one point at a time (each compiles its program), cached per point."""
    spec = p.spec
    points = [{"model": pt["model"], **{a.name: pt[a.key] for a in p.axes}} for pt in p.points()]
    cache = ResultCache("sweep", cache_dir)
    keys = [point_key(pt, spec.target, spec.input_size, spec.fidelity) for pt in points]
    results: dict[str, dict] = {}
    todo = []
    for pt, k in zip(points, keys):
        hit = cache.get(k, _checked_metrics)
        if hit is not None:
            results[k] = hit
        else:
            todo.append(pt)
    cached = len(points) - len(todo)
    nworkers = workers or os.cpu_count() or 1
    # neighbours that compile alike (differing only in bandwidths, clocks, energies) share
    # tile choices: run them in the same batch; outputs keep the grid order
    todo.sort(
        key=lambda pt: (
            pt["model"],
            str(pt.get(PRECISION_KEY, "w8a8")),
            _config(pt, spec.target).codegen_key(),
        )
    )
    tasks = [
        (b, spec.target, spec.input_size, str(cache.dir), spec.fidelity)
        for b in _batches(todo, spec.fidelity, 2 if scheduler else nworkers)
    ]
    done = cached
    if progress:
        progress(done)

    def collect(batch: list[tuple[str, dict]]) -> None:
        nonlocal done
        for k, r in batch:
            results[k] = r
        done += len(batch)
        if progress:
            progress(done)

    _execute(_evaluate_and_cache, tasks, nworkers, scheduler, lambda i, r: collect(r))
    per_model = len(p.flat)
    chunk_results = []
    for i in range(len(spec.models)):
        ks = keys[i * per_model : (i + 1) * per_model]
        chunk_results.append({m: [results[k][m] for k in ks] for m in METRICS})
    table = _table(p, chunk_results)
    _add_accuracy(table, spec, str(cache.dir))
    return SweepResult(table, _fronts(table, spec.objectives), spec.objectives, len(todo), cached)


def accuracy_noise(model: str, precision: str, input_size: int | None, samples: int) -> float:
    """Predicted output noise-to-signal power ratio of `model` quantized at `precision`: the sum
    over weighted layers of 10^(-SNR/10), SNR (dB) of the output with only that layer quantized
    and every other node float (`quant.sensitivity.layer_sensitivity`, as mixed-search's
    additive model), on `samples` seeded N(0, 1) inputs: a precision's sensitivity, not a
    task accuracy (no labels)."""
    from accelsim.core.precision import parse_precision
    from accelsim.model import zoo
    from accelsim.quant import calibdata
    from accelsim.quant.sensitivity import layer_sensitivity

    g = zoo.build(model, input_size=input_size)
    data = calibdata.random(g, samples, seed=1)
    x = np.concatenate(data.samples, axis=0)
    per_layer = layer_sensitivity(g, parse_precision(precision), data, x)
    return float(sum(10 ** (-snr / 10) for _, snr in per_layer))


def _add_accuracy(table: Any, spec: SweepSpec, cache_dir: str) -> None:
    """The `accuracy_noise` column, once per model and precision (cached)."""
    if spec.accuracy_samples < 1:
        return
    from accelsim.core.cache import code_fingerprint

    cache = ResultCache("sweep", cache_dir)
    code = code_fingerprint("quant", "ref", "model")
    values = {}
    for m, prec in dict.fromkeys(zip(table["model"], table[PRECISION_KEY])):
        key = content_key("sweep-accuracy", code, m, prec, spec.input_size, spec.accuracy_samples)
        hit = cache.get(key, _checked_number)
        if hit is None:
            hit = accuracy_noise(m, prec, spec.input_size, spec.accuracy_samples)
            cache.put(key, hit)
        values[(m, prec)] = hit
    table["accuracy_noise"] = [values[k] for k in zip(table["model"], table[PRECISION_KEY])]


def _label(target: Any, fidelity: str) -> str:
    """What results say produced them (the labels of `accelsim.backends`)."""
    from accelsim.backends import fidelity_of

    return fidelity_of(target, fidelity)


def write_outputs(result: SweepResult, out_dir: str | Path, title: str = "") -> list[Path]:
    """points.csv, pareto.csv / .json, points.parquet (with pyarrow, the `sweep` extra),
    explore.html (the interactive page) and pareto.png; each written atomically."""
    from accelsim.core.fsutil import atomic_open
    from accelsim.dse.explore import explore_html

    out = Path(out_dir)
    t = result.table
    front = t[result.front]
    files = {
        "points.csv": t.to_csv(index=False, lineterminator="\n"),
        "pareto.csv": front.to_csv(index=False, lineterminator="\n"),
        "pareto.json": json.dumps(list(result.pareto), indent=1) + "\n",
    }
    axes = [c for c in (*METRICS, *EXTRA_COLUMNS) if c in t and c != "model_bytes"]
    params = [c for c in t.columns if c not in axes and c not in ("model", "fidelity")]
    fid = ", ".join(sorted(set(t["fidelity"].astype(str))))
    files["explore.html"] = explore_html(
        t,
        result.front,
        result.objectives,
        axes,
        params,
        title or f"Design space: {', '.join(dict.fromkeys(t['model'].tolist()))}",
        f"{len(t)} design points at {fid} fidelity; Pareto front over "
        f"{', '.join(result.objectives)} (all minimised); random calibration data",
    )
    for name, text in files.items():
        atomic_write_text(out / name, text)
    written = [out / n for n in files]
    try:
        import pyarrow  # noqa: F401 - the Parquet engine
    except ImportError:
        import sys

        print(
            "sweep: points.parquet not written: pyarrow is not installed "
            "(pip install 'accelsim[sweep]')",
            file=sys.stderr,
        )
    else:
        with atomic_open(out / "points.parquet", "wb") as f:
            t.to_parquet(f, index=False)
        written.append(out / "points.parquet")
    written.append(_plot(result, out / "pareto.png"))
    return written


def _plot(result: SweepResult, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from accelsim.core.fsutil import atomic_open

    fig, ax = plt.subplots(figsize=(7, 5), dpi=110)
    t = result.table
    for i, m in enumerate(dict.fromkeys(t["model"].tolist())):
        mine = (t["model"] == m).to_numpy()
        pts = t[mine]
        front = t[mine & result.front].sort_values("latency_s")
        ax.scatter(
            pts["latency_s"] * 1e3,
            pts["energy_j"] * 1e3,
            s=12 if len(pts) < 5000 else 2,
            alpha=0.4,
            color=f"C{i}",
            label=f"{m}: all points",
            rasterized=True,
        )
        ax.plot(
            front["latency_s"] * 1e3,
            front["energy_j"] * 1e3,
            "o-",
            color=f"C{i}",
            label=f"{m}: Pareto front",
        )
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("energy (mJ)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    fids = ", ".join(sorted(set(t["fidelity"].astype(str))))
    ax.set_title(f"Accelerator design space ({fids} fidelity; random calibration data)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", metadata={"Software": None})
    plt.close(fig)
    return path


def per_point_check(result: SweepResult, p: Plan, n: int = 200, seed: int = 0) -> dict:
    """Recompute `n` random rows of an analytic sweep with the kind's per-point model (one
    target variant, layer by layer) and compare: the largest relative difference per metric."""
    from accelsim.core.precision import parse_precision

    space = _space(p.spec.target)
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(result.table), size=min(n, len(result.table)), replace=False)
    worst = dict.fromkeys(METRICS, 0.0)
    for i in sorted(rows.tolist()):
        row = result.table.iloc[i]
        params = {a.name: _native(row[a.key]) for a in p.axes if a.name != PRECISION_KEY}
        prec = str(row[PRECISION_KEY])
        graph = _quantized(str(row["model"]), prec, p.spec.input_size)
        ref = space.evaluate_point(graph, parse_precision(prec), params)
        ref["model_bytes"] = graph.model_bytes()
        for m in METRICS:
            a, b = float(row[m]), float(ref[m])
            d = abs(a - b) / abs(b) if b else abs(a)
            worst[m] = max(worst[m], d)
    return {"points": len(rows), "max_relative_difference": worst}


def _native(v: Any) -> Any:
    """numpy scalars from a table back to the Python values the grid held."""
    return v.item() if isinstance(v, np.generic) else v
