"""Wall time of the default report (`accelsim report`: every zoo model of the default report on
every shipped target at every supported precision), cold and warm (issue 7).

Cold: an empty result cache (`ACCELSIM_CACHE` pointed at a new temporary directory) and a fresh
process; warm: the same command again on the cache the cold run filled. Each run writes into its
own temporary output directory. Extra arguments go to `accelsim report` unchanged (e.g.
`--model mobilenet_v2 --target simd-accel` for a quick check).

    python benchmarks/report_benchmark.py [--json benchmarks/results/report_benchmark.json]
                                          [-- REPORT ARGS...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from accelsim.core.fsutil import atomic_write_text


def _run(cache: Path, out: Path, extra: list[str]) -> tuple[float, str]:
    env = dict(os.environ, ACCELSIM_CACHE=str(cache))
    cmd = [sys.executable, "-m", "accelsim", "report", "--out", str(out), *extra]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed (exit {r.returncode}):\n{r.stderr[-2000:]}")
    return wall, r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", default="benchmarks/results/report_benchmark.json")
    ap.add_argument("report_args", nargs="*", help="passed to `accelsim report` (after --)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        cold, cold_line = _run(cache, Path(tmp) / "cold", args.report_args)
        print(f"cold (empty cache): {cold:.1f} s   [{cold_line}]", flush=True)
        warm, warm_line = _run(cache, Path(tmp) / "warm", args.report_args)
        print(f"warm (filled cache): {warm:.1f} s   [{warm_line}]")
        same = all(
            (Path(tmp) / "cold" / n).read_bytes() == (Path(tmp) / "warm" / n).read_bytes()
            for n in ("summary.csv", "layers.csv")
            if (Path(tmp) / "cold" / n).exists()
        )
    print(f"speed-up {cold / warm:.1f}x; summary.csv / layers.csv identical: {same}")
    result = {
        "report_args": args.report_args,
        "cold_s": round(cold, 2),
        "warm_s": round(warm, 2),
        "speedup": round(cold / warm, 2),
        "cold_summary": cold_line,
        "warm_summary": warm_line,
        "identical_tables": same,
        "cpu_count": os.cpu_count(),
    }
    atomic_write_text(args.json, json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
