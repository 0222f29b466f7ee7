"""A hardware architect's first hour with accelsim, as a script (run in CI by
tests/test_api.py): quantize a zoo model, check the generated kernels bit for bit, and compare
what each precision costs on a phone core and on the configurable accelerator.

    python examples/quickstart.py [--out DIR]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import accelsim


def main(out: Path) -> None:
    g = accelsim.load_model("mobilenet_v2", input_size=32)
    print(f"{g.name}: {g.params():,} parameters, {g.macs():,} MACs")

    # Post-training quantization: per-channel symmetric weights, per-tensor activations.
    # Random calibration data is fine for cost; accuracy needs real samples.
    q = accelsim.quantize(g, "w8a8", data=accelsim.random_calibration(g, 4))
    print(f"quantized at {q.precision} with {q.calibration_data}")

    # Every generated kernel, run on this machine, against the integer reference executor.
    checked = accelsim.verify(q.graph, "host")
    print(f"verify on host: {checked.mismatches} of {checked.elements} elements differ")
    assert checked.ok

    # Cost per precision on a Cortex-A76 (analytic) and on the accelerator (its simulator).
    for target in ("cortex-a76", "simd-accel"):
        result = accelsim.simulate(
            g,
            target,
            ["fp32", "w8a8", "w4a8"] if target == "cortex-a76" else ["w8a8", "w4a8", "w4a4"],
        )
        for run in result.runs:
            print(
                f"{target:<12} {str(run.precision):<6} {run.total_latency_s * 1e6:9.1f} us "
                f"{run.total_energy_j * 1e6:8.2f} uJ ({run.fidelity})"
            )
        table = result.to_pandas()
        table.to_csv(out / f"{target}_layers.csv", index=False)
        slowest = table.sort_values("latency_s", ascending=False).iloc[0]
        print(f"  slowest layer: {slowest['name']} ({slowest['op']}, {slowest['precision']})")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, help="where the per-layer CSVs go (default: a temp dir)")
    args = ap.parse_args()
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        main(args.out)
    else:
        with tempfile.TemporaryDirectory() as d:
            main(Path(d))
