"""Accelerator simulator speed and results: ResNet-50 at three precisions on the default design.

For each precision: wall time to compile (TVM schedule + code generation, cold in-process caches)
and to simulate (timing only, every program run through the instruction-level simulator, no
result cache), the number of instructions and simulated instructions per second; the default
accelerator's ResNet-50 3x3-convolution utilisation; the functional (bit-exact execution) rate on
ResNet-18 at 32x32. With `--variants`, the latency / energy table of ResNet-50 and MobileNet v2 on
each accelerator variant at each precision. Calibration data is seeded random (timing study).

    python benchmarks/accel_benchmark.py [--variants] [--json benchmarks/results/accel.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from accelsim.accel import load_config, sim
from accelsim.core.cost import ENERGY_COMPONENTS, totals
from accelsim.core.fsutil import atomic_write_text
from accelsim.core.precision import parse_precision
from accelsim.model import zoo
from accelsim.quant import calibdata
from accelsim.quant.ptq import quantize_graph

PRECISIONS = ("w4a4", "w8a8", "w16a16")
VARIANTS = ("simd-accel", "simd-accel-edge", "simd-accel-wide")


def _quantize(model: str, precision: str, input_size: int | None = None):
    g = zoo.build(model, input_size=input_size) if input_size else zoo.build(model)
    return quantize_graph(g, parse_precision(precision), calibdata.random(g, 1, seed=0)).graph


def speed(cfg) -> list[dict]:
    rows = []
    for p in PRECISIONS:
        g = _quantize("resnet50", p)
        sim._TEMPLATES.clear()
        t0 = time.perf_counter()
        layers = sim.compile_graph(g, cfg)
        t_compile = time.perf_counter() - t0
        progs = [l for l in layers if l.program is not None]
        n_instr = sum(len(l.program) for l in progs)
        t1 = time.perf_counter()
        results = {l.node.name: sim.run_program(l.program, cfg) for l in progs}
        t_sim = time.perf_counter() - t1
        costs = sim.simulate_graph(g, cfg)
        tot = totals(costs)
        conv3 = [
            c
            for c in costs
            if c.op == "conv2d"
            and c.macs
            and g.tensors[g.node(c.name).inputs[1]].shape[2:] == (3, 3)
        ]
        macs = sum(c.macs for c in conv3)
        util_w = sum(c.utilization * c.macs for c in conv3) / macs
        ideal = macs / cfg.peak_macs_per_cycle(p)
        util_t = ideal / sum(results[c.name].cycles for c in conv3)
        rows.append(
            {
                "precision": p,
                "layers_on_accelerator": len(progs),
                "instructions": n_instr,
                "compile_s": round(t_compile, 3),
                "simulate_s": round(t_sim, 3),
                "instructions_per_s": round(n_instr / t_sim),
                "conv3x3_layers": len(conv3),
                "conv3x3_utilization_mac_weighted": round(util_w, 4),
                "conv3x3_utilization_time_weighted": round(util_t, 4),
                "latency_ms": round(tot["latency_s"] * 1e3, 3),
                "energy_mj": round(tot["energy_j"] * 1e3, 4),
            }
        )
        r = rows[-1]
        print(
            f"resnet50 {p:7s} compile {t_compile:6.2f} s  simulate {t_sim:5.2f} s  "
            f"{n_instr:7d} instr  {r['instructions_per_s']:9,d} instr/s  "
            f"3x3-conv utilisation {util_t:.3f} ({len(conv3)} layers)  "
            f"latency {r['latency_ms']:.2f} ms  energy {r['energy_mj']:.3f} mJ"
        )
    return rows


def functional(cfg) -> dict:
    g = _quantize("resnet18", "w8a8", 32)
    t0 = time.perf_counter()
    res = sim.verify_layers(g, cfg)
    dt = time.perf_counter() - t0
    n = sum(len(l.program) for l in sim.compile_graph(g, cfg) if l.program)
    bad = sum(r.mismatches for r in res)
    print(
        f"functional: resnet18@32 w8a8, {len(res)} layers, {n} instructions executed "
        f"bit-exactly in {dt:.2f} s (incl. reference run), {bad} mismatching elements"
    )
    return {"layers": len(res), "instructions": n, "seconds": round(dt, 3), "mismatches": bad}


def variants() -> list[dict]:
    rows = []
    print(
        f"\n{'variant':17s}{'model':14s}{'prec':8s}{'latency ms':>11s}{'energy mJ':>11s}"
        f"{'compute':>9s}{'on-chip':>9s}{'DRAM':>9s}{'static':>9s}  MAC util"
    )
    for model in ("resnet50", "mobilenet_v2"):
        graphs = {p: _quantize(model, p) for p in ("w4a4", "w4a8", "w8a8", "w16a16")}
        for v in VARIANTS:
            cfg = load_config(v)
            for p, g in graphs.items():
                costs = sim.simulate_graph(g, cfg)
                tot = totals(costs)
                br = {k: tot[f"energy_{k}_j"] for k in ENERGY_COMPONENTS}
                cyc = sum(c.cycles for c in costs if c.macs and "host" not in c.notes)
                macs = sum(c.macs for c in costs)
                util = macs / (cyc * cfg.peak_macs_per_cycle(p)) if cyc else 0.0
                row = {
                    "variant": v,
                    "model": model,
                    "precision": p,
                    "latency_ms": tot["latency_s"] * 1e3,
                    "energy_mj": tot["energy_j"] * 1e3,
                    **{k + "_mj": br[k] * 1e3 for k in br},
                    "mac_utilization": util,
                }
                rows.append(row)
                print(
                    f"{v:17s}{model:14s}{p:8s}{row['latency_ms']:11.2f}{row['energy_mj']:11.3f}"
                    f"{br['compute'] * 1e3:9.3f}{br['onchip_memory'] * 1e3:9.3f}"
                    f"{br['offchip_memory'] * 1e3:9.3f}{br['static'] * 1e3:9.3f}  {util:.3f}"
                )
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="simd-accel")
    ap.add_argument(
        "--variants",
        action="store_true",
        help="also tabulate ResNet-50 / MobileNet v2 on every variant",
    )
    ap.add_argument("--json", default="benchmarks/results/accel.json")
    args = ap.parse_args(argv)
    cfg = load_config(args.config)
    print("\n".join(cfg.describe()[:6]))
    out = {"config": cfg.name, "speed": speed(cfg), "functional": functional(cfg)}
    if args.variants:
        out["variants"] = variants()
    if args.json:
        atomic_write_text(args.json, json.dumps(out, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
