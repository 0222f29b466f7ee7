"""Simulator speed: MobileNet v2 (224x224) at fp32, w16a16, w8a8, w4a8 on cortex-a76.

- analytic fidelity: the simulation alone (graphs built and quantized beforehand; goal under
  0.5 s for the 4 precisions), and including model build and quantization;
- codegen fidelity (when `accelsim.sim.kernel_cost` exists): one cold run (kernels compiled into the
  cache), then a warm run timed (goal under 5 s);
- a peer tool on a comparable workload, where one is installed: Arm's Ethos-U Vela compiler
  (`ethos-u-vela`, a compiler with a built-in performance estimator) compiling MobileNet v2
  (Keras, 224x224, alpha 1.0) converted to a TFLite int8 model. Vela is not a dependency of
  accelsim: install it in its own environment (`python -m venv /tmp/peervenv &&
  /tmp/peervenv/bin/pip install ethos-u-vela`) and pass `--vela /tmp/peervenv/bin/vela`.
  The TFLite file is converted once with TensorFlow and kept in benchmarks/results/.

Times are wall-clock medians of --repeat runs (the first run, which imports and warms caches, is
reported separately). Calibration data is seeded random (a timing study).

    python benchmarks/sim_speed.py [--vela PATH] [--repeat 5] \
        [--json benchmarks/results/sim_speed.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

PRECISIONS = ("fp32", "w16a16", "w8a8", "w4a8")
TARGET = "cortex-a76"
MODEL = "mobilenet_v2"
ANALYTIC_GOAL_S = 0.5
CODEGEN_GOAL_S = 5.0


def _build_and_quantize():
    from accelsim.core.precision import parse_precision
    from accelsim.model import zoo
    from accelsim.quant import calibdata
    from accelsim.quant.ptq import quantize_graph

    g = zoo.build(MODEL)
    data = calibdata.random(g, 1, seed=0)
    return [
        (parse_precision(p), quantize_graph(g, parse_precision(p), data).graph) for p in PRECISIONS
    ]


def _simulate_all(graphs, target, fidelity: str) -> float:
    from accelsim.backends import simulate

    return sum(c.latency_s for p, q in graphs for c in simulate(q, target, p, fidelity))


def _timed(fn, repeat: int) -> tuple[float, list[float], object]:
    """(median seconds, all samples, last result) of `repeat` calls."""
    samples, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples), samples, result


def analytic(repeat: int) -> dict:
    from accelsim.core.target import load_target

    target = load_target(TARGET)
    t0 = time.perf_counter()
    graphs = _build_and_quantize()
    prep_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    _simulate_all(graphs, target, "analytic")
    first_s = time.perf_counter() - t0
    sim_s, samples, _ = _timed(lambda: _simulate_all(graphs, target, "analytic"), repeat)
    total_s, total_samples, _ = _timed(
        lambda: _simulate_all(_build_and_quantize(), target, "analytic"), max(1, repeat // 2)
    )
    print(
        f"analytic, {MODEL} x {len(PRECISIONS)} precisions on {TARGET} "
        f"({len(graphs[0][1].nodes)} nodes each):"
    )
    print(
        f"  simulation only     {sim_s * 1e3:8.1f} ms  (median of {repeat}; first call "
        f"{first_s * 1e3:.1f} ms)  goal < {ANALYTIC_GOAL_S} s: "
        f"{'met' if sim_s < ANALYTIC_GOAL_S else 'NOT met'}"
    )
    print(f"  incl. build + PTQ   {total_s * 1e3:8.1f} ms  (first build+PTQ {prep_s * 1e3:.1f} ms)")
    return {
        "simulate_s": sim_s,
        "simulate_samples_s": samples,
        "first_simulate_s": first_s,
        "with_build_and_quantize_s": total_s,
        "with_build_samples_s": total_samples,
        "goal_s": ANALYTIC_GOAL_S,
        "goal_met": sim_s < ANALYTIC_GOAL_S,
    }


def codegen(repeat: int) -> dict:
    try:
        import accelsim.sim.kernel_cost  # noqa: F401
    except ImportError as exc:
        print(f"codegen: skipped (accelsim.sim.kernel_cost not importable: {exc})")
        return {"skipped": f"accelsim.sim.kernel_cost not importable: {exc}"}
    from accelsim.core.target import load_target

    target = load_target(TARGET)
    graphs = _build_and_quantize()
    t0 = time.perf_counter()
    try:
        _simulate_all(graphs, target, "codegen")
    except Exception as exc:  # the codegen fidelity is being written in parallel
        print(f"codegen: failed: {type(exc).__name__}: {exc}"[:300])
        return {"failed": f"{type(exc).__name__}: {exc}"[:300]}
    cold_s = time.perf_counter() - t0
    warm_s, samples, _ = _timed(lambda: _simulate_all(graphs, target, "codegen"), repeat)
    print(
        f"codegen, same workload: cold {cold_s:.1f} s, warm {warm_s:.2f} s (median of "
        f"{repeat})  goal warm < {CODEGEN_GOAL_S} s: "
        f"{'met' if warm_s < CODEGEN_GOAL_S else 'NOT met'}"
    )
    return {
        "cold_s": cold_s,
        "warm_s": warm_s,
        "warm_samples_s": samples,
        "goal_s": CODEGEN_GOAL_S,
        "goal_met": warm_s < CODEGEN_GOAL_S,
    }


def _tflite_mobilenet_v2(path: Path) -> Path:
    """Keras MobileNetV2 (224, alpha 1.0, 1000 classes, random weights) as a TFLite int8 model
    (full-integer post-training quantization, 8 seeded random calibration inputs)."""
    if path.is_file():
        return path
    import numpy as np

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    model = tf.keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3))

    def rep():
        rng = np.random.default_rng(0)
        for _ in range(8):
            yield [rng.standard_normal((1, 224, 224, 3)).astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    from accelsim.core.fsutil import atomic_write_bytes

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, conv.convert())
    return path


def vela(exe: str | None, repeat: int, tflite: Path) -> dict:
    exe = exe or shutil.which("vela")
    if not exe:
        print("vela: skipped (not installed; see the module docstring)")
        return {"skipped": "vela not installed"}
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.strip()
    t0 = time.perf_counter()
    model = _tflite_mobilenet_v2(tflite)
    convert_s = time.perf_counter() - t0
    samples, out = [], {}
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            r = subprocess.run(
                [exe, str(model), "--accelerator-config", "ethos-u55-256", "--output-dir", d],
                capture_output=True,
                text=True,
            )
            samples.append(time.perf_counter() - t0)
            if r.returncode != 0:
                print(f"vela: failed (exit {r.returncode}): {r.stderr.strip()[-300:]}")
                return {"failed": r.stderr.strip()[-300:], "version": version}
            import csv

            summary = next(Path(d).glob("*_summary_*.csv"), None)
            rows = list(csv.DictReader(summary.open())) if summary else []
            out = rows[0] if rows else {}
    t = statistics.median(samples)
    inference = (
        (
            f"{float(out['inference_time']) * 1e3:.2f} ms per inference on "
            f"{out.get('accelerator_configuration')} at "
            f"{float(out.get('core_clock', 0)) / 1e6:.0f} MHz"
        )
        if "inference_time" in out
        else ""
    )
    print(
        f"vela {version} (ethos-u55-256), MobileNet v2 224 TFLite int8, 1 precision: "
        f"{t:.2f} s per compile+estimate (median of {repeat}; TFLite conversion once "
        f"{convert_s:.1f} s); its estimate: {inference or 'n/a'}"
    )
    return {
        "version": version,
        "accelerator_config": "ethos-u55-256",
        "precisions": 1,
        "wall_s": t,
        "samples_s": samples,
        "tflite": str(model),
        "tflite_convert_s": convert_s,
        "estimate_line": inference,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--vela", help="path of the vela executable (default: on PATH)")
    ap.add_argument("--no-codegen", action="store_true")
    ap.add_argument("--tflite", default="benchmarks/results/mobilenet_v2_224_int8.tflite")
    ap.add_argument("--json", default="benchmarks/results/sim_speed.json")
    args = ap.parse_args()
    from accelsim.core.fsutil import atomic_write_text

    doc = {
        "model": MODEL,
        "target": TARGET,
        "precisions": list(PRECISIONS),
        "load_average": os.getloadavg(),
        "analytic": analytic(args.repeat),
    }
    doc["codegen"] = (
        {"skipped": "--no-codegen"} if args.no_codegen else codegen(max(1, args.repeat // 2))
    )
    doc["peers"] = {"vela": vela(args.vela, max(1, args.repeat // 2), Path(args.tflite))}
    v = doc["peers"]["vela"]
    if "wall_s" in v:
        a = doc["analytic"]
        n = len(PRECISIONS)
        print(
            f"comparison: accelsim analytic {a['simulate_s'] / n * 1e3:.1f} ms per precision "
            f"(simulation only), {a['with_build_and_quantize_s'] / n:.2f} s incl. build + "
            f"PTQ; vela {v['wall_s']:.2f} s per precision (compile + estimate, process start "
            f"included)"
        )
    atomic_write_text(args.json, json.dumps(doc, indent=1) + "\n")
    print(f"-> {args.json}")


if __name__ == "__main__":
    main()
