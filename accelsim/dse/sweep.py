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

import csv
import hashlib
import io
import itertools
import json
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
from accelsim.core.fsutil import atomic_write_text, read_yaml
from accelsim.dse.pareto import pareto_mask

PRECISION_KEY = "precision"
OBJECTIVES = ("latency_s", "energy_j")
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
FIDELITIES = ("analytic", "codegen")
_FILES = (".onnx", ".tflite")  # model files (others are zoo names)
DEFAULT_FIDELITY = "analytic"


@dataclass(frozen=True)
class SweepSpec:
    models: tuple[str, ...]
    target: str  # base accelerator: shipped name or .yaml path
    grid: Mapping[str, tuple[Any, ...]]
    sample: int | None = None  # random sample of the grid (None: the whole grid)
    seed: int = 0
    input_size: int | None = None
    fidelity: str = DEFAULT_FIDELITY  # analytic | codegen


def _value(token: str) -> Any:
    import yaml

    v = yaml.safe_load(token)
    return token if v is None else v


def parse_grid_args(items: Sequence[str], source: str = "--grid") -> dict[str, tuple[Any, ...]]:
    """`["lanes=16,32", "precision=w4a4,w8a8"]` -> {"lanes": (16, 32), ...}."""
    grid: dict[str, tuple[Any, ...]] = {}
    for item in items:
        if "=" not in item:
            raise InputError(f"{source} '{item}': expected KEY=V1,V2,...")
        key, values = item.split("=", 1)
        key = key.strip()
        vals = tuple(_value(v.strip()) for v in values.split(",") if v.strip())
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
    return out, data.get("sample"), int(data.get("seed", 0))


def grid_points(spec: SweepSpec) -> list[dict[str, Any]]:
    keys = sorted(spec.grid)
    points = [dict(zip(keys, combo)) for combo in itertools.product(*(spec.grid[k] for k in keys))]
    if spec.sample is not None and spec.sample < len(points):
        rng = random.Random(spec.seed)
        points = [points[i] for i in sorted(rng.sample(range(len(points)), spec.sample))]
    return [{"model": m, **p} for m in spec.models for p in points]


def validate(spec: SweepSpec) -> list[dict[str, Any]]:
    """Every check that can fail, before any work: keys, values, configurations, precisions."""
    from accelsim.accel.arch import SWEEP_PARAMS, load_config
    from accelsim.core.precision import parse_precision
    from accelsim.model.zoo import MODELS

    if spec.fidelity not in FIDELITIES:
        raise InputError(
            f"sweep: fidelity '{spec.fidelity}': expected one of {', '.join(FIDELITIES)}"
        )
    if not spec.grid or any(len(v) == 0 for v in spec.grid.values()):
        raise InputError("sweep: the grid is empty; give at least one --grid KEY=V1,V2")
    allowed = set(SWEEP_PARAMS) | {PRECISION_KEY}
    for key in spec.grid:
        if key not in allowed:
            raise InputError(
                f"sweep: unknown grid key '{key}'; expected one of {', '.join(sorted(allowed))}"
            )
    for m in spec.models:
        if m in MODELS:
            continue
        if not m.lower().endswith(_FILES):
            raise InputError(
                f"sweep: unknown model '{m}'; zoo: {', '.join(MODELS)} (or an .onnx / .tflite file)"
            )
        _STORED[m] = _stored_precision(m, spec)
    base = load_config(spec.target)
    points = grid_points(spec)
    for p in points:
        params = {k: v for k, v in p.items() if k not in ("model", PRECISION_KEY)}
        cfg = base.with_params(**params) if params else base
        prec = parse_precision(str(_precision_of(p)), "sweep: precision")
        if prec.name not in cfg.native:
            raise InputError(
                f"sweep: {cfg.path}: model '{p['model']}' cannot run at precision "
                f"'{prec.name}' on this accelerator (it supports "
                f"{', '.join(cfg.native)})"
            )
    return points


def _stored_precision(model: str, spec: SweepSpec) -> str:
    """A model file: its stored precision ("" for a float model, which is quantized per point);
    a grid precision other than the stored one is refused (re-quantizing integers would cost a
    graph the user never had)."""
    from accelsim.core.precision import parse_precision
    from accelsim.model.loader import load_model
    from accelsim.model.quantization import graph_precision, stored_precision_error

    if spec.input_size is not None:
        raise InputError(f"sweep: model '{model}': --input-size applies to zoo models only")
    g = load_model(model)
    if not g.is_quantized:
        return ""
    stored = graph_precision(g).name
    for v in spec.grid.get(PRECISION_KEY, ()):
        if parse_precision(str(v), "sweep: precision").name != stored:
            raise stored_precision_error(g, v)
    return stored


def _precision_of(point: Mapping[str, Any]) -> str:
    return str(point.get(PRECISION_KEY, _STORED.get(point["model"]) or "w8a8"))


# -- one point (runs in worker processes) ---------------------------------------------------
_GRAPHS: dict[tuple, Any] = {}
_STORED: dict[str, str] = {}  # model file -> stored precision name ("" for float files)


def _load(model: str, input_size: int | None):
    from accelsim.model.loader import load_model

    g = load_model(model, input_size=input_size)
    if not model.endswith(_FILES):
        return g
    if g.is_quantized:
        from accelsim.model.quantization import graph_precision

        _STORED[model] = graph_precision(g).name
    else:
        _STORED[model] = ""
    return g


def _quantized(model: str, precision: str, input_size: int | None):
    key = (model, precision, input_size)
    if key not in _GRAPHS:
        from accelsim.core.precision import parse_precision
        from accelsim.quant import calibdata
        from accelsim.quant.ptq import quantize_graph

        g = _load(model, input_size)
        if g.is_quantized:  # stored quantization: costed as stored (validate checked it)
            _GRAPHS[key] = g
        else:
            # latency and energy do not depend on calibrated ranges: one seeded random sample
            p = parse_precision(precision)
            _GRAPHS[key] = quantize_graph(g, p, calibdata.random(g, 1)).graph
    return _GRAPHS[key]


def _config(point: Mapping[str, Any], target: str):
    from accelsim.accel.arch import load_config

    base = load_config(target)
    params = {k: v for k, v in point.items() if k not in ("model", PRECISION_KEY)}
    return base.with_params(**params) if params else base


def point_key(
    point: Mapping[str, Any], target: str, input_size: int | None, fidelity: str = DEFAULT_FIDELITY
) -> str:
    model = str(point.get("model"))
    # a model file counts by its content, not by where it lies
    digest = hashlib.sha256(Path(model).read_bytes()).hexdigest() if model.endswith(_FILES) else ""
    return content_key(
        "sweep-point",
        model,
        digest,
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
    graph = _quantized(point["model"], str(point.get(PRECISION_KEY, "w8a8")), input_size)
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


# -- the sweep -------------------------------------------------------------------------------
@dataclass(frozen=True)
class SweepResult:
    rows: tuple[dict, ...]
    pareto: tuple[dict, ...]
    computed: int
    cached: int


def run_sweep(
    spec: SweepSpec,
    cache_dir: str | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> SweepResult:
    points = validate(spec)
    cache = ResultCache("sweep", cache_dir)
    keys = [point_key(p, spec.target, spec.input_size, spec.fidelity) for p in points]
    results: dict[str, dict] = {}
    todo = []
    for p, k in zip(points, keys):
        hit = cache.get(k)
        if hit is not None:
            results[k] = hit
        else:
            todo.append(p)
    cached = len(points) - len(todo)
    nworkers = workers or os.cpu_count() or 1
    # neighbours that compile alike (differing only in bandwidths, clocks, energies) share
    # tile choices: run them in the same batch; outputs keep the grid order
    todo.sort(
        key=lambda p: (
            p["model"],
            str(p.get(PRECISION_KEY, "w8a8")),
            _config(p, spec.target).codegen_key(),
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

    if tasks:
        if scheduler:
            from distributed import Client, as_completed

            with Client(scheduler) as client:
                futures = client.map(_evaluate_and_cache, tasks, pure=False)
                for fut in as_completed(futures):
                    collect(fut.result())
        elif nworkers > 1 and len(tasks) > 1:
            with ProcessPoolExecutor(max_workers=nworkers) as pool:
                for batch in pool.map(_evaluate_and_cache, tasks, chunksize=1):
                    collect(batch)
        else:
            for t in tasks:
                collect(_evaluate_and_cache(t))
    rows = []
    for p, k in zip(points, keys):
        row = {
            "model": p["model"],
            PRECISION_KEY: str(p.get(PRECISION_KEY, "w8a8")),
            "fidelity": _label(spec.fidelity),
        }
        row.update({kk: p[kk] for kk in sorted(p) if kk not in row})
        row.update({m: results[k][m] for m in METRICS})
        rows.append(row)
    front = []
    for model in spec.models:
        sub = [r for r in rows if r["model"] == model]
        mask = pareto_mask(np.array([[r[o] for o in OBJECTIVES] for r in sub]))
        front.extend(r for r, keep in zip(sub, mask) if keep)
    return SweepResult(tuple(rows), tuple(front), len(todo), cached)


def _label(fidelity: str) -> str:
    """What results say produced them (the labels of `accelsim.backends`)."""
    from accelsim.backends import BACKENDS

    return BACKENDS["accelerator"].fidelities[fidelity].label


def _csv(rows: Sequence[Mapping[str, Any]]) -> str:
    cols: list[str] = []
    for r in rows:
        cols.extend(k for k in r if k not in cols)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in r.items()})
    return buf.getvalue()


def write_outputs(result: SweepResult, out_dir: str | Path) -> list[Path]:
    out = Path(out_dir)
    files = {
        "points.csv": _csv(result.rows),
        "pareto.csv": _csv(result.pareto),
        "points.json": json.dumps(list(result.rows), indent=1) + "\n",
        "pareto.json": json.dumps(list(result.pareto), indent=1) + "\n",
    }
    for name, text in files.items():
        atomic_write_text(out / name, text)
    written = [out / n for n in files]
    written.append(_plot(result, out / "pareto.png"))
    return written


def _plot(result: SweepResult, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from accelsim.core.fsutil import atomic_open

    fig, ax = plt.subplots(figsize=(7, 5), dpi=110)
    models = sorted({r["model"] for r in result.rows})
    for i, m in enumerate(models):
        pts = [r for r in result.rows if r["model"] == m]
        front = sorted((r for r in result.pareto if r["model"] == m), key=lambda r: r["latency_s"])
        ax.scatter(
            [r["latency_s"] * 1e3 for r in pts],
            [r["energy_j"] * 1e3 for r in pts],
            s=12,
            alpha=0.4,
            color=f"C{i}",
            label=f"{m}: all points",
        )
        ax.plot(
            [r["latency_s"] * 1e3 for r in front],
            [r["energy_j"] * 1e3 for r in front],
            "o-",
            color=f"C{i}",
            label=f"{m}: Pareto front",
        )
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("energy (mJ)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    fids = ", ".join(sorted({str(r.get("fidelity", "")) for r in result.rows}))
    ax.set_title(f"Accelerator design space ({fids} fidelity; random calibration data)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", metadata={"Software": None})
    plt.close(fig)
    return path
