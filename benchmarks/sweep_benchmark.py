"""Design points per minute of an accelerator sweep at analytic fidelity (issue 7), and the
analytic model's calibration against accel-sim.

Sweep: 1,000 points of MobileNet v2 (224x224) on simd-accel, lanes x precision x total scratchpad
x DMA bandwidth x double buffering (5 x 4 x 5 x 5 x 2), run twice from an empty result cache:
in the local process pool (all cores) and on a Dask LocalCluster with two worker processes.
Wall time includes starting the workers and building + quantizing the model in each. Both runs
must write byte-identical points.csv / pareto.csv.

    python benchmarks/sweep_benchmark.py [--points 1000] [--skip-dask]
                                         [--json benchmarks/results/sweep_benchmark.json]
    python benchmarks/sweep_benchmark.py --calibrate [--input-size 224]
        # analytic vs accel-sim: whole-model latency / energy error and per-layer cycle error,
        # MobileNet v2, ResNet-18, ResNet-50 x w4a4/w4a8/w8a8/w16a16 x the three designs
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from accelsim.core.fsutil import atomic_write_text

GRID = {
    "lanes": (16, 32, 64, 128, 256),
    "precision": ("w4a4", "w4a8", "w8a8", "w16a16"),
    "scratchpad_kb": (176, 264, 352, 528, 704),
    "dma_bytes_per_cycle": (4, 8, 16, 32, 64),
    "double_buffering": (True, False),
}


def _sweep(spec, **kw):
    from accelsim.dse.sweep import run_sweep, write_outputs

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = run_sweep(spec, cache_dir=str(Path(tmp) / "cache"), **kw)
        wall = time.perf_counter() - t0
        write_outputs(result, Path(tmp) / "out")
        texts = {n: (Path(tmp) / "out" / n).read_text() for n in ("points.csv", "pareto.csv")}
    return result, wall, texts


def sweep_speed(points: int, skip_dask: bool) -> dict:
    from accelsim.dse.sweep import SweepSpec, grid_points

    total = 1
    for v in GRID.values():
        total *= len(v)
    spec = SweepSpec(
        ("mobilenet_v2",), "simd-accel", GRID, sample=points if points < total else None, seed=0
    )
    n = len(grid_points(spec))
    cores = os.cpu_count() or 1
    out: dict = {
        "model": "mobilenet_v2",
        "input_size": 224,
        "target": "simd-accel",
        "fidelity": "analytic",
        "points": n,
        "grid": {k: list(v) for k, v in GRID.items()},
        "cpu_count": cores,
    }
    res, wall, local_txt = _sweep(spec)
    assert res.computed == n and res.cached == 0
    out["local_pool"] = {
        "workers": cores,
        "wall_s": round(wall, 2),
        "points_per_minute": round(n / wall * 60, 1),
        "pareto_points": len(res.pareto),
    }
    print(
        f"local pool ({cores} processes): {n} points in {wall:.1f} s = "
        f"{n / wall * 60:,.0f} points/min; {len(res.pareto)} on the Pareto front"
    )
    if not skip_dask:
        import distributed

        t0 = time.perf_counter()
        with distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster:
            start = time.perf_counter() - t0
            res_d, wall_d, dask_txt = _sweep(spec, scheduler=cluster.scheduler_address)
        assert res_d.computed == n
        same = dask_txt == local_txt
        out["dask_local_cluster"] = {
            "workers": 2,
            "wall_s": round(wall_d, 2),
            "cluster_start_s": round(start, 2),
            "points_per_minute": round(n / wall_d * 60, 1),
            "identical_outputs": same,
        }
        print(
            f"Dask LocalCluster (2 workers; {start:.1f} s to start, not counted): {n} points "
            f"in {wall_d:.1f} s = {n / wall_d * 60:,.0f} points/min; points.csv and "
            f"pareto.csv identical to the local pool's: {same}"
        )
        if not same:
            raise SystemExit("Dask and local results differ")
    return out


def per_point_time(repeats: int = 20) -> dict:
    """One process, MobileNet v2 224: analytic evaluation time cold (tile choices computed) and
    warm (tile choices memoised, e.g. a bandwidth sweep)."""
    from accelsim.accel import analytic
    from accelsim.accel.arch import load_config
    from accelsim.dse.sweep import _quantized

    g = _quantized("mobilenet_v2", "w8a8", None)
    cfg = load_config("simd-accel")
    analytic._CHOICES.clear()
    t0 = time.perf_counter()
    analytic.simulate_graph(g, cfg)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(repeats):
        analytic.simulate_graph(g, cfg.with_params(dma_bytes_per_cycle=4 + i))
    warm = (time.perf_counter() - t0) / repeats
    print(
        f"one MobileNet v2 evaluation: {cold * 1e3:.1f} ms with tiling, {warm * 1e3:.1f} ms "
        f"with memoised tile choices"
    )
    return {"cold_ms": round(cold * 1e3, 2), "warm_ms": round(warm * 1e3, 2)}


def calibrate(input_size: int | None, models: list[str]) -> list[dict]:
    from accelsim.accel import analytic, sim
    from accelsim.accel.arch import load_config
    from accelsim.core.precision import parse_precision
    from accelsim.model import zoo
    from accelsim.quant import calibdata
    from accelsim.quant.ptq import quantize_graph

    rows = []
    print(
        f"{'model':13s} {'prec':6s} {'design':16s} {'latency':>8s} {'energy':>8s} "
        f"{'mean|layer|':>11s} {'max|layer|':>10s}  worst layer"
    )
    for model in models:
        g = zoo.build(model, input_size=input_size)
        data = calibdata.random(g, 1)
        for prec in ("w4a4", "w4a8", "w8a8", "w16a16"):
            q = quantize_graph(g, parse_precision(prec), data).graph
            for var in ("simd-accel", "simd-accel-edge", "simd-accel-wide"):
                cfg = load_config(var)
                ref = sim.simulate_graph(q, cfg)
                an = analytic.simulate_graph(q, cfg)
                errs = [
                    (abs(a.cycles / r.cycles - 1), r.name)
                    for r, a in zip(ref, an)
                    if "host core" not in r.notes
                ]
                lat = sum(a.latency_s for a in an) / sum(r.latency_s for r in ref) - 1
                en = sum(a.energy_j for a in an) / sum(r.energy_j for r in ref) - 1
                worst = max(errs)
                mean = sum(e for e, _ in errs) / len(errs)
                rows.append(
                    {
                        "model": model,
                        "input_size": input_size or "default",
                        "precision": prec,
                        "design": var,
                        "latency_error": round(lat, 4),
                        "energy_error": round(en, 4),
                        "layer_cycles_mean_abs_error": round(mean, 4),
                        "layer_cycles_max_abs_error": round(worst[0], 4),
                        "worst_layer": worst[1],
                        "layers": len(errs),
                    }
                )
                print(
                    f"{model:13s} {prec:6s} {var:16s} {lat:+8.3f} {en:+8.3f} {mean:11.3f} "
                    f"{worst[0]:10.3f}  {worst[1]}",
                    flush=True,
                )
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--points", type=int, default=1000)
    ap.add_argument("--skip-dask", action="store_true")
    ap.add_argument(
        "--calibrate",
        action="store_true",
        help="analytic vs accel-sim error table instead of the sweep",
    )
    ap.add_argument("--input-size", type=int, help="--calibrate: zoo input size")
    ap.add_argument("--models", default="mobilenet_v2,resnet18,resnet50")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    if args.calibrate:
        rows = calibrate(args.input_size, args.models.split(","))
        worst = max(abs(r["latency_error"]) for r in rows)
        print(f"worst whole-model latency error {worst:.3f} over {len(rows)} cases")
        result: dict = {"calibration": rows, "worst_latency_error": worst}
        path = args.json or "benchmarks/results/analytic_calibration.json"
    else:
        result = {"per_point": per_point_time(), "sweep": sweep_speed(args.points, args.skip_dask)}
        path = args.json or "benchmarks/results/sweep_benchmark.json"
    atomic_write_text(path, json.dumps(result, indent=1) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
