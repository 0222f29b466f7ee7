"""`accelsim compile` time for MobileNet v2 on every shipped CPU / DSP target.

For each target and precision: the wall time of compiling the whole model (lower through TVM +
code generation of every kernel) with an empty kernel cache (cold) and again with the cache it
filled (warm), each in a fresh Python process, so TVM's import and the in-process caches count as
they do for a user running the CLI; the number of kernels and of distinct kernels after
deduplication (layers that share a kernel compile once), and the layers left unlowered (e.g.
fp16 where no recipe lowers it). The quantization stage (seeded random
calibration, as `accelsim compile` does by default) is timed separately and not included in the
compile time.

    nice -n 10 python benchmarks/compile_benchmark.py [--precisions native|w8a8] \
        [--targets cortex-a55,...] [--input-size 224] [--json benchmarks/results/compile_benchmark.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS = ("cortex-a55", "cortex-a76", "kryo280", "hvx-v62", "hvx-v68", "hvx-v73", "host")
ROOT = Path(__file__).resolve().parents[1]

# One measurement in a fresh interpreter: prints a JSON line with the stage times.
_WORKER = r"""
import json, sys, time
t0 = time.perf_counter()
from accelsim.kernels.compile import cache_stats, compile_graph
from accelsim.model.loader import load_model
from accelsim.quant import calibdata
from accelsim.core.precision import parse_precision
from accelsim.quant.ptq import quantize_graph
from accelsim.core.target import load_target
model, target_name, prec_name, size, out = sys.argv[1:6]
target = load_target(target_name)
prec = parse_precision(prec_name)
target.check_precision(prec)
g = load_model(model, input_size=int(size))
t1 = time.perf_counter()
g = quantize_graph(g, prec, calibdata.random(g, 1)).graph
t2 = time.perf_counter()
kernels = compile_graph(g, target, prec, out_dir=out)
t3 = time.perf_counter()
doc = json.loads(open(out + "/kernels.json").read())
print(json.dumps({"import_load_s": t1 - t0, "quantize_s": t2 - t1, "compile_s": t3 - t2,
                  "kernels": len(kernels), "distinct_kernels": len({k.key for k in kernels}),
                  "not_lowered": len(doc["not_lowered"]),
                  "compiled": cache_stats()["compiled"], "cache_hits": cache_stats()["cache_hits"]}))
"""


def _measure(model: str, target: str, precision: str, size: int, cache: Path) -> dict:
    env = dict(os.environ, ACCELSIM_CACHE=str(cache))
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", _WORKER, model, target, precision, str(size), out],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{target} {precision}: worker failed:\n{proc.stderr[-3000:]}")
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    row["process_s"] = wall
    return row


def _precisions(target: str, which: str) -> list[str]:
    if which != "native":
        return [p for p in which.split(",")]
    from accelsim.core.target import load_target

    return list(load_target(target).codegen.native)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="mobilenet_v2")
    ap.add_argument("--input-size", type=int, default=224)
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument(
        "--precisions",
        default="w8a8",
        help="comma-separated, or 'native' for every natively supported precision",
    )
    ap.add_argument("--json", default=str(ROOT / "benchmarks/results/compile_benchmark.json"))
    args = ap.parse_args(argv)

    rows = []
    hdr = (
        f"{'target':<12}{'precision':<10}{'kernels':>8}{'distinct':>9}{'cold s':>9}"
        f"{'warm s':>9}{'cold proc s':>12}{'warm proc s':>12}{'not lowered':>12}"
    )
    print(
        f"{args.model} at {args.input_size}x{args.input_size}: compile time (s), fresh process "
        f"each run; 'compile' excludes import and quantization, 'proc' is the whole process"
    )
    print(hdr)
    for target in args.targets.split(","):
        for prec in _precisions(target, args.precisions):
            with tempfile.TemporaryDirectory(prefix="accelsim-cache-") as cache:
                cold = _measure(args.model, target, prec, args.input_size, Path(cache))
                warm = _measure(args.model, target, prec, args.input_size, Path(cache))
            if warm["compiled"] != 0:
                raise SystemExit(
                    f"{target} {prec}: warm run compiled {warm['compiled']} kernels "
                    f"(the cache missed)"
                )
            row = {
                "target": target,
                "precision": prec,
                "kernels": cold["kernels"],
                "distinct_kernels": cold["distinct_kernels"],
                "not_lowered": cold["not_lowered"],
                "compiled_cold": cold["compiled"],
                "cold_compile_s": round(cold["compile_s"], 2),
                "warm_compile_s": round(warm["compile_s"], 2),
                "cold_process_s": round(cold["process_s"], 2),
                "warm_process_s": round(warm["process_s"], 2),
                "quantize_s": round(cold["quantize_s"], 2),
            }
            rows.append(row)
            print(
                f"{target:<12}{prec:<10}{row['kernels']:>8}{row['distinct_kernels']:>9}"
                f"{row['cold_compile_s']:>9.2f}{row['warm_compile_s']:>9.2f}"
                f"{row['cold_process_s']:>12.2f}{row['warm_process_s']:>12.2f}"
                f"{row['not_lowered']:>12}",
                flush=True,
            )
    doc = {
        "model": args.model,
        "input_size": args.input_size,
        "rows": rows,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
    }
    sys.path.insert(0, str(ROOT))
    from accelsim.core.fsutil import atomic_write_text

    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.json, json.dumps(doc, indent=1) + "\n")
    print(f"-> {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
