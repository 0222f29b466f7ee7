"""What `simulate` saves by quantizing for cost (no calibration run, no activation allocated)
instead of calibrating on one random sample: wall time and peak Python-tracked memory of the
quantization step, and whether the analytic costs are identical, per model.

    python benchmarks/cost_only_benchmark.py [--models mobilenet_v2,resnet50]
        [--json benchmarks/results/cost_only.json]
"""

from __future__ import annotations

import argparse
import json
import time
import tracemalloc

from accelsim import api
from accelsim.backends import simulate
from accelsim.core.fsutil import atomic_write_text
from accelsim.model.loader import load_model
from accelsim.quant.ptq import quantize_for_cost


def _measure(fn):
    tracemalloc.start()
    t0 = time.perf_counter()
    out = fn()
    wall = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, wall, peak


def run(models: list[str], target: str, precision: str) -> list[dict]:
    t, p = api.target(target), api.precision(precision)
    rows = []
    for model in models:
        g = load_model(model)
        calibrated, wall_c, peak_c = _measure(
            lambda g=g: api.quantize(g, p, data=api.random_calibration(g, 1)).graph
        )
        nominal, wall_n, peak_n = _measure(lambda g=g: quantize_for_cost(g, p).graph)
        same = [c.to_json() for c in simulate(calibrated, t, p, None)] == [
            c.to_json() for c in simulate(nominal, t, p, None)
        ]
        rows.append(
            {
                "model": model,
                "target": target,
                "precision": precision,
                "calibrated_s": wall_c,
                "cost_only_s": wall_n,
                "speedup": wall_c / wall_n,
                "calibrated_peak_mib": peak_c / 2**20,
                "cost_only_peak_mib": peak_n / 2**20,
                "memory_ratio": peak_c / max(peak_n, 1),
                "identical_costs": same,
            }
        )
        r = rows[-1]
        print(
            f"{model:<14} quantize: calibrated {r['calibrated_s']:.2f} s, "
            f"{r['calibrated_peak_mib']:.0f} MiB peak; cost-only {r['cost_only_s']:.2f} s, "
            f"{r['cost_only_peak_mib']:.0f} MiB peak ({r['speedup']:.1f}x faster, "
            f"{r['memory_ratio']:.1f}x less memory); costs identical: {same}"
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="mobilenet_v2,resnet50")
    ap.add_argument("--target", default="cortex-a76")
    ap.add_argument("--precision", default="w8a8")
    ap.add_argument("--json", default="benchmarks/results/cost_only.json")
    args = ap.parse_args()
    rows = run(args.models.split(","), args.target, args.precision)
    atomic_write_text(args.json, json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
