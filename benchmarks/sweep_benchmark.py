"""Design-space sweeps at scale (issue 18), one run, printed and saved as JSON:

1. accelerator: 100,000 points of MobileNet v2 (224x224) on simd-accel at analytic fidelity,
   lanes x precision x total scratchpad x DMA bandwidth x DRAM bandwidth x clock x node x DMA
   latency (5 x 4 x 5 x 5 x 5 x 4 x 5 x 2), from an empty result cache in the local process pool
   (two processes); wall time includes starting the workers and building + quantizing the model
   at each precision in each of them. Goal: 100,000 points per minute or more.
2. cortex-a55 variants (vector pipes, dot product on/off, L1D and L2 sizes, clock, DRAM
   bandwidth) and hvx-v68 variants (HVX contexts, VTCM size, clock, DRAM bandwidth, w8a8 and
   w4a8): 10,080 points each, in this process, cold. Goal: 50,000 points per minute or more.
3. The vectorised results against the per-point model (one parsed variant / configuration per
   point, layer by layer) on 200 sampled points of each sweep: the largest relative difference.
4. ZigZag (the `crosscheck` extra) on the same per-layer work: MobileNet v2's conv2d layers
   (ZigZag maps no depthwise layer here) for one design point, timed, next to our time per
   layer-point in the 100,000-point sweep; the ratio.
5. Kill and resume: the 100,000-point sweep through the command line, killed (SIGKILL) once a
   few chunks are cached, rerun; it recomputes only the missing chunks and writes points.csv and
   pareto.csv byte-identical to the uninterrupted run's.
6. The same sweep on a Dask LocalCluster (two worker processes): the table identical to local.
7. explore.html of the 100,000-point sweep in headless Chromium: every point drawn.

    python benchmarks/sweep_benchmark.py [--points 100000] [--skip-dask] [--skip-zigzag]
                                         [--zigzag-layers 8]
                                         [--json benchmarks/results/sweep_benchmark.json]
    python benchmarks/sweep_benchmark.py --calibrate [--input-size 224]
        # analytic vs accel-sim: whole-model latency / energy error and per-layer cycle error,
        # MobileNet v2, ResNet-18, ResNet-50 x w4a4/w4a8/w8a8/w16a16 x the three designs
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from accelsim.core.fsutil import atomic_write_text

ACCEL_GRID = {
    "lanes": (16, 32, 64, 128, 256),
    "precision": ("w4a4", "w4a8", "w8a8", "w16a16"),
    "scratchpad_kb": (176, 264, 352, 528, 704),
    "dma_bytes_per_cycle": (4, 8, 16, 32, 64),
    "dram_bytes_per_cycle": (8, 16, 32, 64, 128),
    "clock_hz": (5e8, 8e8, 1e9, 1.2e9),
    "technology_nm": (7, 12, 16, 22, 28),
    "dma_latency_cycles": (50, 100),
}
_DRAM_BPS = tuple(float(v) for v in np.linspace(1.7e10, 5.1e10, 10))
CPU_GRID = {
    "timing.pipes.vector": (1, 2),
    "codegen.features": ("+dotprod", "-dotprod"),
    "memory.levels.L1D.size_bytes": (16384, 32768, 65536),
    "memory.levels.L2.size_bytes": (65536, 131072, 262144, 524288),
    "timing.clock_hz": tuple(float(v) for v in np.linspace(1.0e9, 2.0e9, 21)),
    "memory.levels.DRAM.bandwidth_bytes_per_s": _DRAM_BPS,
}
HVX_GRID = {
    "timing.hardware_threads": (1, 2, 3, 4),
    "memory.levels.VTCM.size_bytes": (262144, 524288, 1048576, 2097152, 4194304, 8388608),
    "precision": ("w8a8", "w4a8"),
    "timing.clock_hz": tuple(float(v) for v in np.linspace(0.8e9, 1.6e9, 21)),
    "memory.levels.DRAM.bandwidth_bytes_per_s": _DRAM_BPS,
}


def _spec(target: str, grid: dict, points: int | None = None, **kw):
    from accelsim.dse.sweep import SweepSpec

    total = int(np.prod([len(v) for v in grid.values()]))
    sample = points if points is not None and points < total else None
    return SweepSpec(("mobilenet_v2",), target, grid, sample=sample, seed=0, **kw)


def timed_sweep(spec, cache: Path, workers: int, scheduler: str | None = None) -> tuple:
    from accelsim.dse.sweep import plan, run_sweep

    t0 = time.perf_counter()
    p = plan(spec)
    res = run_sweep(spec, cache_dir=str(cache), workers=workers, scheduler=scheduler, plan_=p)
    wall = time.perf_counter() - t0
    assert res.computed == len(p) and res.cached == 0
    return p, res, wall


def _figures(n: int, wall: float, res) -> dict:
    return {
        "points": n,
        "wall_s": round(wall, 2),
        "points_per_minute": round(n / wall * 60),
        "pareto_points": int(res.front.sum()),
    }


def zigzag_timing(per_layer_point_s: float, layers: int) -> dict:
    from accelsim.accel.arch import load_config
    from accelsim.accel.compute import NotAccelerated, layer_def
    from accelsim.accel.crosscheck import CrosscheckError, conv_shape, run_zigzag, zigzag_missing
    from accelsim.dse.sweep import _quantized

    missing = zigzag_missing()
    if missing:
        print(f"ZigZag: not run ({missing})")
        return {"skipped": missing}
    g = _quantized("mobilenet_v2", "w8a8", None)
    cfg = load_config("simd-accel")
    shapes = []
    for node in g.nodes:
        try:
            shapes.append(conv_shape(layer_def(g, node, cfg).signature, node.name))
        except (NotAccelerated, CrosscheckError):
            continue
    shapes = shapes[:layers]
    t0 = time.perf_counter()
    for s in shapes:
        run_zigzag(s, cfg, lpf_limit=4)
    wall = time.perf_counter() - t0
    zz = wall / len(shapes)
    ratio = zz / per_layer_point_s
    print(
        f"ZigZag (LOMA, lpf_limit 4): {len(shapes)} MobileNet v2 conv2d layers of one design "
        f"point in {wall:.1f} s = {zz:.2f} s per layer; accelsim's vectorised analytic model: "
        f"{per_layer_point_s * 1e6:.2f} us per layer-point in the 100,000-point sweep "
        f"(wall, all layers incl. quantization) -> {ratio:,.0f}x"
    )
    return {
        "layers": len(shapes),
        "wall_s": round(wall, 2),
        "zigzag_s_per_layer": round(zz, 3),
        "accelsim_s_per_layer_point": per_layer_point_s,
        "ratio": round(ratio),
    }


def _cli_sweep(out: Path, cache: Path, grid: dict, points: int) -> subprocess.Popen:
    args = [sys.executable, "-m", "accelsim", "sweep", "--model", "mobilenet_v2"]
    for k, v in grid.items():
        args += ["--grid", f"{k}={','.join(str(x) for x in v)}"]
    total = int(np.prod([len(v) for v in grid.values()]))
    if points < total:
        args += ["--sample", str(points)]
    args += ["--workers", "2", "--out", str(out)]
    env = dict(os.environ, ACCELSIM_CACHE=str(cache))
    return subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL the sweep and its pool workers (by process id: the processes this run started)."""
    out = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(proc.pid)], capture_output=True, text=True
    ).stdout
    for pid in [proc.pid, *(int(x) for x in out.split())]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
    time.sleep(1.0)


def kill_resume(tmp: Path, reference_out: Path, points: int) -> dict:
    cache = tmp / "kill-cache"
    out = tmp / "kill-out"
    proc = _cli_sweep(out, cache, ACCEL_GRID, points)
    deadline = time.time() + 600
    while time.time() < deadline and len(list(cache.rglob("*.json"))) < 3:
        if proc.poll() is not None:
            raise SystemExit(f"the sweep to kill ended first: {proc.stderr.read()[-2000:]}")
        time.sleep(0.1)
    _kill_tree(proc)
    chunks_before = len(list(cache.rglob("*.json")))
    half_written = (out / "points.csv").exists()
    again = _cli_sweep(out, cache, ACCEL_GRID, points)
    stdout, stderr = again.communicate(timeout=900)
    if again.returncode != 0:
        raise SystemExit(f"resumed sweep failed: {stderr}")
    m = re.search(r"\((\d+) computed, (\d+) from the cache\)", stdout)
    computed, cached = (int(m.group(1)), int(m.group(2))) if m else (-1, -1)
    same = all(
        (out / n).read_bytes() == (reference_out / n).read_bytes()
        for n in ("points.csv", "pareto.csv")
    )
    print(
        f"kill/resume: killed with {chunks_before} of {-(-points // 5000)} chunks cached "
        f"({'an output file existed' if half_written else 'no output written'}); the rerun "
        f"computed {computed:,} points and took {cached:,} from the cache; points.csv and "
        f"pareto.csv identical to the uninterrupted run: {same}"
    )
    if not same or cached != chunks_before * 5000:
        raise SystemExit("kill/resume check failed")
    return {
        "chunks_cached_at_kill": chunks_before,
        "output_present_after_kill": half_written,
        "resumed_computed_points": computed,
        "resumed_cached_points": cached,
        "identical_outputs": same,
    }


def run(points: int, skip_dask: bool, skip_zigzag: bool, zigzag_layers: int) -> dict:
    from accelsim.dse.explore import drawn_in_browser
    from accelsim.dse.sweep import per_point_check, write_outputs

    cores = os.cpu_count() or 1
    out: dict = {"cpu_count": cores, "model": "mobilenet_v2", "input_size": 224}
    with tempfile.TemporaryDirectory(prefix="accelsim-sweep-bench-") as d:
        tmp = Path(d)
        # CPU / DSP first, in this process and cold (no model prepared yet)
        for name, target, grid in (
            ("cpu", "cortex-a55", CPU_GRID),
            ("hvx", "hvx-v68", HVX_GRID),
        ):
            p, res, wall = timed_sweep(_spec(target, grid), tmp / f"{name}-cache", workers=1)
            fig = _figures(len(p), wall, res)
            check = per_point_check(res, p, n=200, seed=0)
            worst = max(check["max_relative_difference"].values())
            fig.update(
                target=target,
                grid={k: list(v) for k, v in grid.items()},
                per_point_check=check,
            )
            out[name] = fig
            print(
                f"{target}: {len(p):,} points in {wall:.1f} s = {fig['points_per_minute']:,} "
                f"points/min (one process, cold); vectorised vs per-point on {check['points']} "
                f"sampled points: max relative difference {worst:.1e}"
            )
        spec = _spec("simd-accel", ACCEL_GRID, points)
        p, res, wall = timed_sweep(spec, tmp / "accel-cache", workers=2)
        fig = _figures(len(p), wall, res)
        fig.update(target="simd-accel", workers=2, grid={k: list(v) for k, v in ACCEL_GRID.items()})
        print(
            f"simd-accel: {len(p):,} points in {wall:.1f} s = {fig['points_per_minute']:,} "
            f"points/min (2 processes, cold: model built and quantized at 4 precisions in "
            f"each); {fig['pareto_points']} on the latency/energy front"
        )
        ref_out = tmp / "accel-out"
        t0 = time.perf_counter()
        write_outputs(res, ref_out)
        fig["write_outputs_s"] = round(time.perf_counter() - t0, 2)
        check = per_point_check(res, p, n=200, seed=0)
        fig["per_point_check"] = check
        worst = max(check["max_relative_difference"].values())
        print(
            f"  outputs written in {fig['write_outputs_s']} s; vectorised vs per-point on "
            f"{check['points']} sampled points: max relative difference {worst:.1e}"
        )
        out["accel"] = fig
        layers = len(_layers())
        if not skip_zigzag:
            out["zigzag"] = zigzag_timing(wall / len(p) / layers, zigzag_layers)
        out["kill_resume"] = kill_resume(tmp, ref_out, points)
        if not skip_dask:
            import distributed

            t0 = time.perf_counter()
            with distributed.LocalCluster(
                n_workers=2,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            ) as cluster:
                start = time.perf_counter() - t0
                _, res_d, wall_d = timed_sweep(
                    spec, tmp / "dask-cache", 2, scheduler=cluster.scheduler_address
                )
            same = bool(res_d.table.equals(res.table) and (res_d.front == res.front).all())
            out["dask_local_cluster"] = {
                **_figures(len(p), wall_d, res_d),
                "cluster_start_s": round(start, 2),
                "identical_to_local": same,
            }
            print(
                f"Dask LocalCluster (2 worker processes; {start:.1f} s to start, not counted): "
                f"{len(p):,} points in {wall_d:.1f} s = {len(p) / wall_d * 60:,.0f} points/min; "
                f"table identical to the local pool's: {same}"
            )
            if not same:
                raise SystemExit("Dask and local results differ")
        t0 = time.perf_counter()
        drawn = drawn_in_browser(str(ref_out / "explore.html"), timeout_s=300)
        size = (ref_out / "explore.html").stat().st_size
        out["explore_html"] = {
            **drawn,
            "expected_points": len(p),
            "expected_front": int(res.front.sum()),
            "bytes": size,
            "chromium_s": round(time.perf_counter() - t0, 1),
        }
        ok = drawn["points"] == len(p) and drawn["front"] == int(res.front.sum())
        print(
            f"explore.html ({size / 1e6:.1f} MB) in headless Chromium: {drawn['points']:,} points "
            f"and {drawn['front']} front points drawn (expected {len(p):,} and "
            f"{int(res.front.sum())}): {ok}"
        )
        if not ok:
            raise SystemExit("the interactive page did not draw every point")
    goals = {
        "accel_points_per_minute>=100000": out["accel"]["points_per_minute"] >= 100_000,
        "cpu_points_per_minute>=50000": out["cpu"]["points_per_minute"] >= 50_000,
        "hvx_points_per_minute>=50000": out["hvx"]["points_per_minute"] >= 50_000,
    }
    out["goals"] = goals
    print("goals: " + ", ".join(f"{k}: {v}" for k, v in goals.items()))
    return out


def _layers() -> list:
    from accelsim.dse.sweep import _quantized

    return list(_quantized("mobilenet_v2", "w8a8", None).nodes)


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
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--skip-dask", action="store_true")
    ap.add_argument("--skip-zigzag", action="store_true")
    ap.add_argument("--zigzag-layers", type=int, default=8)
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
        result = run(args.points, args.skip_dask, args.skip_zigzag, args.zigzag_layers)
        path = args.json or "benchmarks/results/sweep_benchmark.json"
    atomic_write_text(path, json.dumps(result, indent=1) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
