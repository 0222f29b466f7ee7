"""Analytic vs codegen fidelity per whole model (issue 5: "within 20 % per whole model"), and where
they part: per layer group, the codegen / analytic cycle ratio over the layers costed from code,
and the dynamic instruction mix behind it (MAC instructions, other vector instructions and
scalar instructions per output element) next to the analytic model's assumption
(`analytic.REQUANT_OPS` vector-ALU operations per output element over vector_bits/32 lanes).

The per-group instruction mix is also the data a structural calibration of the analytic model
would use (its non-MAC work per output element by instruction class, per target and precision,
with the kernels it came from): written to the JSON under "calibration".

    python benchmarks/codegen_vs_analytic.py [--models mobilenet_v2,resnet18] [--input-size 32]
        [--targets cortex-a55,cortex-a76,kryo280,hvx-v68] [--precision w8a8]
        [--json benchmarks/results/codegen_vs_analytic.json]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict

GOAL = 0.20


def _group(graph, node) -> str:
    from accelsim.reporting.collect import layer_group

    return layer_group(graph, node)


def study(model: str, input_size: int, target_name: str, precision: str) -> dict:
    from accelsim.core.precision import parse_precision
    from accelsim.core.target import load_target
    from accelsim.kernels.compile import compile_layer
    from accelsim.lower.lower import STATUS_KERNEL, lower_graph
    from accelsim.model import zoo
    from accelsim.quant import calibdata
    from accelsim.quant.ptq import quantize_graph
    from accelsim.sim import analytic
    from accelsim.sim import kernel_cost as codegen_model

    t = load_target(target_name)
    p = parse_precision(precision)
    g = zoo.build(model, input_size=input_size)
    q = quantize_graph(g, p, calibdata.random(g, 1, seed=0)).graph
    t0 = time.perf_counter()
    cg = codegen_model.simulate_graph(q, t, p)
    sim_s = time.perf_counter() - t0
    an = analytic.simulate_graph(q, t, p)
    nodes = {n.name: n for n in q.nodes}
    kernels = {L.name: L for L in lower_graph(q, t, p.name) if L.status == STATUS_KERNEL}
    lanes = t.codegen.vector_bits / 32
    mac_cls = t.timing["mac"][p.name]["instruction"]
    groups: dict[str, dict] = defaultdict(lambda: defaultdict(float))
    calib: dict[str, dict] = defaultdict(
        lambda: {"kernels": [], "outputs": 0.0, "classes": defaultdict(float)}
    )
    for c, a in zip(cg, an):
        grp = _group(q, nodes[c.name])
        gr = groups[grp]
        gr["layers"] += 1
        if c.fidelity != "codegen" or c.name not in kernels:
            gr["fallback_cycles"] += c.cycles
            continue
        k = compile_layer(kernels[c.name], t)
        kc = codegen_model.kernel_cost(k, t)
        outs = sum(q.tensors[o].size for o in nodes[c.name].outputs)
        gr["coded_layers"] += 1
        gr["codegen_cycles"] += c.cycles
        gr["analytic_cycles"] += a.cycles
        gr["compute_cycles"] += kc.compute_cycles
        gr["outputs"] += outs
        gr["mac_instructions"] += kc.class_counts.get(mac_cls, 0)
        gr["vector_other"] += kc.vector_instructions - kc.class_counts.get(mac_cls, 0)
        gr["scalar_or_memory"] += sum(kc.class_counts.values()) - kc.vector_instructions
        cal = calib[grp]
        cal["kernels"].append({"layer": c.name, "key": k.key[:16]})
        cal["outputs"] += outs
        for cls, n in kc.class_counts.items():
            cal["classes"][cls] += n
    ratio = sum(c.cycles for c in cg) / sum(a.cycles for a in an)
    coded = sum(c.macs for c in cg if c.fidelity == "codegen") / max(1, sum(c.macs for c in cg))
    print(
        f"\n{model}@{input_size} {precision} {target_name}: codegen / analytic cycles "
        f"{ratio:.3f} ({'within' if abs(ratio - 1) <= GOAL else 'NOT within'} 20 %); "
        f"{coded:.0%} of MACs costed from code; codegen simulation {sim_s:.1f} s"
    )
    print(
        f"  {'group':<24}{'coded/all':>10}{'cg cycles':>12}{'an cycles':>12}{'ratio':>7}"
        f"{'MAC ins/out':>12}{'vec ins/out':>12}{'ldst+scalar/out':>17}"
    )
    rows = {}
    for grp, gr in sorted(groups.items()):
        o = gr["outputs"] or 1
        r = gr["codegen_cycles"] / gr["analytic_cycles"] if gr["analytic_cycles"] else 0.0
        rows[grp] = {**gr, "ratio": r}
        print(
            f"  {grp:<24}{int(gr['coded_layers']):>5}/{int(gr['layers']):<4}"
            f"{gr['codegen_cycles']:>12.0f}{gr['analytic_cycles']:>12.0f}{r:>7.2f}"
            f"{gr['mac_instructions'] / o:>12.2f}{gr['vector_other'] / o:>12.2f}"
            f"{gr['scalar_or_memory'] / o:>17.2f}"
        )
    print(
        f"  analytic assumes {analytic.REQUANT_OPS:g} vector-ALU ops per output element = "
        f"{analytic.REQUANT_OPS / lanes:.2f} vector instructions per output element "
        f"({lanes:g} lanes of 32 bits)"
    )
    calibration = {
        grp: {
            "kernels": v["kernels"],
            "outputs": v["outputs"],
            "per_output": {cls: n / v["outputs"] for cls, n in sorted(v["classes"].items())},
        }
        for grp, v in calib.items()
    }
    return {
        "model": model,
        "input_size": input_size,
        "target": target_name,
        "precision": precision,
        "codegen_cycles": sum(c.cycles for c in cg),
        "analytic_cycles": sum(a.cycles for a in an),
        "ratio": ratio,
        "within_goal": abs(ratio - 1) <= GOAL,
        "macs_costed_from_code": coded,
        "codegen_simulate_s": sim_s,
        "groups": rows,
        "calibration": calibration,
        "fallback_layers": [
            {"name": c.name, "notes": c.notes} for c in cg if c.fidelity != "codegen"
        ],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="mobilenet_v2,resnet18")
    ap.add_argument("--input-size", type=int, default=32)
    ap.add_argument("--targets", default="cortex-a55,cortex-a76,kryo280,hvx-v68")
    ap.add_argument("--precision", default="w8a8")
    ap.add_argument("--json", default="benchmarks/results/codegen_vs_analytic.json")
    args = ap.parse_args()
    out = [
        study(m, args.input_size, t, args.precision)
        for m in args.models.split(",")
        for t in args.targets.split(",")
    ]
    print("\nsummary (codegen / analytic cycles per whole model):")
    for r in out:
        print(
            f"  {r['model']:<14}{r['target']:<12}{r['ratio']:7.3f}  "
            f"{r['macs_costed_from_code']:4.0%} of MACs from code"
        )
    if args.json:
        from accelsim.core.fsutil import atomic_write_text

        atomic_write_text(args.json, json.dumps(out, indent=1, default=float) + "\n")


if __name__ == "__main__":
    main()
