"""Calibration of the analytic model against codegen fidelity.

The analytic model's documented compute formula (MAC instructions at the target's `timing.mac`
rate plus `REQUANT_OPS` vector-ALU operations per output element) describes ideal code; the
kernels TVM generates also spend issue slots on address arithmetic, widening and narrowing,
the fixed-point requantization built from widening multiplies, and index arithmetic in
elementwise loops. The calibration measures that on the zoo: for every layer kind, the compute
cycles the codegen model gives each kernel (dynamic instruction counts x the pipe model) are
fitted as `cycles_per_mac x MACs + cycles_per_output x output elements` (the inner loops' work
and the per-output epilogue: requantization, stores, loop overhead; non-negative least squares
in relative error over the calibration models' layers of that kind). The cycles are one
thread's: a kernel split over the hardware threads (`parallel: contexts` recipes) counts its
tasks one after the other (`KernelCost.work_cycles`), and its kind's row says `split: true`.
The analytic model then costs a layer from its shape with the two rates of its kind (memory
traffic is unchanged), a split kind's compute shared over the contexts by its output rows
(`analytic.parallel_extent`, `split_share`), so it needs no compilation yet follows the code.
Kinds the calibration has not seen keep the documented formula.

Calibration files are data (`targets/calibration/<target>.yaml`), written by
`python -m accelsim.sim.calibration --target T` with their provenance: models, input sizes
(each row's `input_sizes`; rows derived before there was the field: 32), precision, the
kernels (content keys) each row came from. They are checked against codegen fidelity on models
they were not derived from (`tests/test_calibration.py`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from accelsim.core.errors import InputError
from accelsim.core.fsutil import atomic_write_text
from accelsim.core.target import Target
from accelsim.model.ops import node_macs
from accelsim.sim.rates import _load, kind, outputs, path_for

CALIBRATION_MODELS = ("mobilenet_v2", "resnet18")
# the input sizes the layers are taken at, all in one fit: 32 alone (maps of 1-4 pixels, tiles
# half empty) made the analytic model 25-29 % slower than codegen at 224, the size reports run
# (cortex-a55 / -a76 MobileNet v1 fp32); 224 alone would misjudge small inputs the other way
CALIBRATION_INPUTS = (32, 224)


def derive(
    target: Target,
    precision: str,
    models=CALIBRATION_MODELS,
    input_sizes: tuple[int, ...] = CALIBRATION_INPUTS,
) -> dict:
    """Per layer kind: codegen compute cycles / units over the models' layers (at each input
    size) costed from code, with the kernels they came from (`model@size:layer:key`)."""
    from accelsim.core.precision import parse_precision
    from accelsim.kernels.compile import compile_layer
    from accelsim.lower.lower import STATUS_KERNEL, lower_graph
    from accelsim.model import zoo
    from accelsim.quant import calibdata
    from accelsim.quant.ptq import quantize_graph
    from accelsim.sim.kernel_cost import kernel_cost

    p = parse_precision(precision)
    rows: dict[str, dict] = {}
    for model, size in ((m, s) for s in input_sizes for m in models):
        g = zoo.build(model, input_size=size)
        q = quantize_graph(g, p, calibdata.random(g, 1, seed=0)).graph
        nodes = {n.name: n for n in q.nodes}
        for L in lower_graph(q, target, p):
            if L.status != STATUS_KERNEL:
                continue
            kc = kernel_cost(compile_layer(L, target), target)
            if kc.blocking:
                continue
            node = nodes[L.name]
            row = rows.setdefault(kind(q, node), {"samples": [], "kernels": [], "split": False})
            # one thread's cycles: a kernel split over the contexts counts its tasks in turn
            # (the analytic model divides by its share of the contexts, `analytic.split_share`)
            row["samples"].append((float(node_macs(q, node)), outputs(q, node), kc.work_cycles))
            row["split"] = row["split"] or kc.contexts > 1
            row["kernels"].append(f"{model}@{size}:{L.name}:{kc.key[:12]}")
    out = {}
    for k, r in sorted(rows.items()):
        per_mac, per_out = fit(r["samples"])
        err = max(abs(per_mac * m + per_out * o - c) / c for m, o, c in r["samples"] if c)
        out[k] = {
            "cycles_per_mac": round(per_mac, 6),
            "cycles_per_output": round(per_out, 6),
            "layers": len(r["kernels"]),
            "max_layer_error": round(err, 4),
            "split": r["split"],
            "input_sizes": list(input_sizes),
            "kernels": r["kernels"],
        }
    return out


def fit(samples) -> tuple[float, float]:
    """cycles = a x MACs + b x outputs, least squares in relative error (each layer weighs the
    same whatever its size), a, b >= 0; layers without MACs fit b alone."""
    import numpy as np

    m = np.array([s[0] for s in samples])
    o = np.array([s[1] for s in samples])
    c = np.array([s[2] for s in samples])
    w = 1.0 / np.maximum(c, 1.0)
    if not m.any():
        return 0.0, float(np.sum(w * w * o * c) / np.sum(w * w * o * o))
    a, b = np.linalg.lstsq(np.stack([m * w, o * w], 1), c * w, rcond=None)[0]
    if a < 0:  # one term alone, the other clamped at zero
        return 0.0, float(np.sum(w * w * o * c) / np.sum(w * w * o * o))
    if b < 0:
        return float(np.sum(w * w * m * c) / np.sum(w * w * m * m)), 0.0
    return float(a), float(b)


def write(target: Target, precisions: list[str]) -> Path:
    import yaml

    from accelsim.core.version import __version__

    body = {
        "target": target.name,
        "derived_from": {
            "models": list(CALIBRATION_MODELS),
            "input_sizes": list(CALIBRATION_INPUTS),  # rows without `input_sizes`: 32
            "fidelity": "codegen",
            "accelsim": __version__,
            "command": f"python -m accelsim.sim.calibration --target "
            f"{target.name} --precision P1,P2 (re-derives those "
            f"precisions, keeps the others)",
        },
        "precisions": {},
    }
    path = path_for(target)
    if path.is_file():  # precisions not re-derived now are kept
        body["precisions"].update(_load(str(path), path.stat().st_mtime_ns)["precisions"])
    for p in precisions:
        body["precisions"][p] = derive(target, p)
    path.parent.mkdir(parents=True, exist_ok=True)
    head = (
        "# Analytic-model calibration against codegen fidelity (accelsim.sim.calibration):\n"
        "# compute cycles per unit (MAC or output element) per layer kind, measured by the\n"
        "# codegen model on the generated kernels listed under each row. Generated; do not\n"
        "# edit by hand: rerun the command below.\n"
    )
    atomic_write_text(path, head + yaml.safe_dump(body, sort_keys=False, width=100))
    return path


def main(argv=None) -> int:
    from accelsim.core.precision import parse_precision_list
    from accelsim.core.target import load_target

    ap = argparse.ArgumentParser(description="derive targets/calibration/<target>.yaml")
    ap.add_argument("--target", required=True, action="append")
    ap.add_argument("--precision", default="w8a8")
    args = ap.parse_args(argv)
    try:
        for name in args.target:
            t = load_target(name)
            precs = [str(p) for p in parse_precision_list(args.precision)]
            for p in precs:
                t.check_precision(parse_precision_list(p)[0])
            print(write(t, precs))
    except InputError as exc:
        print(f"accelsim.sim.calibration: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
