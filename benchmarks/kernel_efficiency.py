"""Kernel efficiency (issue 15): do the generated kernels run at the rate the silicon allows?

One run prints a table per section and writes one JSON. Sections are functions of the parsed
arguments returning a dict (`SECTIONS`); a section measured on this machine (host, against ONNX
Runtime) is added there the same way.

- `fidelity` (codegen fidelity: dynamic counts of the generated code + the per-core pipe model):
  per Arm core, model and precision, the MAC-weighted utilisation of the conv2d / dense layers
  with at least 64 input and output channels, `sum(MACs) / sum(cycles x peak)`, the peak being
  the target's documented `timing.mac` rate for that precision (`analytic.peak_macs_per_cycle`).
  Goal: >= 70 % at w8a8, w16a16 and fp32.
  HVX (`--hvx-targets`): the same at w8a8, goal >= 60 %; a layer split over the HVX contexts
  is held to their combined peak (`cycles x contexts x peak`).
- `breakdown`: per target, precision and layer kind (`accelsim.sim.rates.kind`), over every
  layer with MACs of `--models`: the MAC-weighted utilisation and where the cycles go
  (`accelsim.sim.kernel_cost.cycle_breakdown`: multiply-accumulate issue, loads/stores, other
  vector work such as requantization and widening, scalar address arithmetic and loop control,
  dependency stalls), plus the memory time beyond compute (roofline). The default report's
  kernel-efficiency section shows this table (it reads this benchmark's JSON).
- `depthwise`: depthwise conv2d MACs per cycle at w8a8 against fp32 on the same core (goal 2x);
  on HVX the w8a8 rate itself, as the layers run (split over the contexts; goal >= 32 MACs per
  cycle), and per context.
- `hvx_model`: MobileNet v2 w8a8, whole model, MACs per cycle on each HVX target (goal >= 40
  with the target's contexts): conv, depthwise, dense, pool and add layers split over the HVX
  contexts (`parallel: contexts` recipes; each context a contiguous share of the output rows,
  verified under qemu, the slowest context setting the time, memory bandwidth shared); the
  scalar-core layers (the float input's quantization, softmax) run on one thread.
- `four_bit`: per Arm core, HVX target and model, the cycles of the same conv2d / dense layers
  (>= 64 channels) at w4a8 against w8a8: the same multiply instructions on 4-bit weights two
  per byte (on the Arm cores two output channels', on HVX two input-channel blocks' as w + 8),
  made 8-bit values (16 x w) in registers by one shift or mask that a tile's pixels share;
  goal at most 15 % extra cycles.
- `host` (measured on this machine, `benchmarks/kernel_efficiency_host.py`): ResNet-18 and
  MobileNet v2 at 224, one thread, our fp32 and w8a8 kernels next to ONNX Runtime's fp32 and
  static QDQ int8 in the same run, and our kernels on ORT's own QDQ file (the same model and
  arithmetic on both). Goals: w8a8 >= 2.5x our fp32, faster than ORT's int8, our fp32 within
  1.2x of ORT's.
- `speedup`: whole-model latency fp32 / w8a8 per model and core (the whitepaper measured 2-3x
  on phone CPUs), and HVX w8a8 against the CPU of the same SoC at fp32 (`--hvx-vs-cpu`,
  hvx-v62 against kryo280: Snapdragon 835; the whitepaper measured about 10x).

    python benchmarks/kernel_efficiency.py [--targets cortex-a55,cortex-a76,kryo280]
        [--models mobilenet_v2,resnet50] [--speedup-models mobilenet_v1,mobilenet_v2,resnet50,
        inception_v3] [--input-size 224] [--sections fidelity,depthwise,speedup,host]
        [--json reports/kernel_efficiency.json]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

UTIL_GOAL = 0.70
HVX_UTIL_GOAL = 0.60
DEPTHWISE_GOAL = 2.0
HVX_DEPTHWISE_GOAL = 32.0  # MACs per cycle
HVX_MODEL_GOAL = 40.0  # MACs per cycle, MobileNet v2 w8a8, whole model
FOUR_BIT_GOAL = 0.15  # extra cycles of w4a8 over w8a8
MIN_CHANNELS = 64
ARM_CORES = "cortex-a55,cortex-a76,kryo280"
HVX_CORES = "hvx-v68"


def _csv(s: str) -> list[str]:
    return [x for x in s.split(",") if x]


_RUNS: dict[tuple[str, str, str, int], tuple] = {}
_CALIBRATION: set[str] = set()  # the quantized graphs' calibration data, for captions


def _run(model: str, target: str, precision: str, size: int, contexts: int | None = None):
    """(graph, layer costs) of one codegen-fidelity simulation, memoised within the run;
    `contexts`: the target with that many hardware threads (`parallel: contexts` recipes split
    their layers over them)."""
    key = (model, target, precision, size, contexts)
    if key not in _RUNS:
        import dataclasses

        import accelsim
        from accelsim.core.target import load_target

        g = accelsim.load_model(model, input_size=size)
        t = load_target(target)
        if contexts is not None:
            t = dataclasses.replace(t, timing={**t.timing, "hardware_threads": contexts})
        sim = accelsim.simulate(g, t, [precision], fidelity="codegen")
        _RUNS[key] = (g, sim.runs[0].layers)
        if precision != "fp32":
            _CALIBRATION.add(sim.runs[0].calibration_data)
    return _RUNS[key]


def _channels(graph, node) -> tuple[int, int]:
    """(input, output) channels of a conv2d / dense node from its weights (OIHW / OI)."""
    shape = graph.tensors[node.inputs[1]].shape
    return int(shape[1]), int(shape[0])


def _peak(target: str, precision: str) -> float:
    from accelsim.core.precision import parse_precision
    from accelsim.core.target import load_target
    from accelsim.sim.analytic import peak_macs_per_cycle

    return peak_macs_per_cycle(load_target(target), parse_precision(precision))


def _layers_of(graph, costs, classes: tuple[str, ...], wide_only: bool):
    from accelsim.model.ops import op_class

    nodes = {n.name: n for n in graph.nodes}
    for c in costs:
        n = nodes.get(c.name)
        if n is None or op_class(graph, n) not in classes:
            continue
        if wide_only and min(_channels(graph, n)) < MIN_CHANNELS:
            continue
        yield c


def fidelity(args) -> dict:
    from accelsim.core.target import load_target

    rows = []
    runs = [(t, p, UTIL_GOAL, None) for t in _csv(args.targets) for p in _csv(args.precisions)]
    # HVX as run (split over the contexts) and on one context (the kernels' own efficiency)
    runs += [(t, "w8a8", HVX_UTIL_GOAL, c) for t in _csv(args.hvx_targets) for c in (None, 1)]
    for target, prec, goal, contexts in runs:
        for model in _csv(args.models):
            g, costs = _run(model, target, prec, args.input_size, contexts)
            sel = list(_layers_of(g, costs, ("conv2d", "dense"), True))
            macs = sum(c.macs for c in sel)
            cycles = sum(c.cycles for c in sel)
            # a layer split over HVX contexts is held to their combined peak
            thread_cycles = sum(c.cycles * c.contexts for c in sel)
            peak = _peak(target, prec)
            not_code = [c.name for c in sel if c.fidelity != "codegen"]
            rows.append(
                {
                    "target": target,
                    "model": model,
                    "precision": prec,
                    "layers": len(sel),
                    "macs": macs,
                    "cycles": cycles,
                    "macs_per_cycle": macs / cycles if cycles else 0.0,
                    "peak_macs_per_cycle": peak,
                    "contexts": max((c.contexts for c in sel), default=1),
                    "contexts_available": contexts or load_target(target).hardware_threads,
                    "utilization": macs / (thread_cycles * peak) if cycles else 0.0,
                    "not_codegen": not_code,
                    "goal": goal,
                }
            )
    print(f"\nconv2d / dense layers with >= {MIN_CHANNELS} input and output channels, codegen")
    print(
        f"{'target':12} {'model':14} {'prec':7} {'layers':>6} {'MAC/cyc':>8} {'peak':>6} "
        "ctx util (against the peak of the contexts used; ctx of the target's)"
    )
    for r in rows:
        ok = "ok" if r["utilization"] >= r["goal"] else "BELOW"
        print(
            f"{r['target']:12} {r['model']:14} {r['precision']:7} {r['layers']:6d} "
            f"{r['macs_per_cycle']:8.2f} {r['peak_macs_per_cycle']:6.1f} {r['contexts']:3d} "
            f"{100 * r['utilization']:5.1f} %  {ok} (of {r['contexts_available']})"
        )
    return {"min_channels": MIN_CHANNELS, "rows": rows}


def four_bit(args) -> dict:
    rows = []
    for target in _csv(args.targets) + _csv(args.hvx_targets):
        for model in _csv(args.models):
            cyc = {}
            for prec in ("w8a8", "w4a8"):
                g, costs = _run(model, target, prec, args.input_size)
                cyc[prec] = sum(c.cycles for c in _layers_of(g, costs, ("conv2d", "dense"), True))
            rows.append(
                {
                    "target": target,
                    "model": model,
                    "w8a8_cycles": cyc["w8a8"],
                    "w4a8_cycles": cyc["w4a8"],
                    "extra": cyc["w4a8"] / cyc["w8a8"] - 1.0,
                    "goal": FOUR_BIT_GOAL,
                }
            )
    print(f"\n4-bit weights: conv2d / dense layers with >= {MIN_CHANNELS} channels, codegen")
    print(f"{'target':12} {'model':14} {'w8a8 Mcyc':>10} {'w4a8 Mcyc':>10} extra")
    for r in rows:
        ok = "ok" if r["extra"] <= r["goal"] else "ABOVE"
        print(
            f"{r['target']:12} {r['model']:14} {r['w8a8_cycles'] / 1e6:10.2f} "
            f"{r['w4a8_cycles'] / 1e6:10.2f} {100 * r['extra']:+5.1f} %  {ok}"
        )
    return {"min_channels": MIN_CHANNELS, "rows": rows}


def breakdown(args) -> dict:
    from accelsim.model.ops import MAC_OPS
    from accelsim.sim.kernel_cost import BREAKDOWN_GROUPS
    from accelsim.sim.rates import kind

    runs = [(t, p) for t in _csv(args.targets) for p in _csv(args.precisions)]
    runs += [(t, "w8a8") for t in _csv(args.hvx_targets)]
    rows = []
    for target, prec in runs:
        agg: dict[str, dict] = {}
        for model in _csv(args.models):
            g, costs = _run(model, target, prec, args.input_size)
            nodes = {n.name: n for n in g.nodes}
            for c in costs:
                n = nodes.get(c.name)
                if n is None or n.op not in MAC_OPS or not c.macs:
                    continue
                a = agg.setdefault(
                    kind(g, n),
                    {
                        "layers": 0,
                        "macs": 0,
                        "cycles": 0.0,
                        "thread_cycles": 0.0,
                        "analytic": 0,
                        **dict.fromkeys((*BREAKDOWN_GROUPS, "memory"), 0.0),
                    },
                )
                a["layers"] += 1
                a["macs"] += c.macs
                a["cycles"] += c.cycles
                a["thread_cycles"] += c.cycles * c.contexts
                if c.fidelity != "codegen":  # an analytic fallback: no instructions to split
                    a["analytic"] += 1
                    continue
                for grp, cyc in c.cycle_breakdown.items():
                    a[grp] += cyc
                a["memory"] += max(c.cycles - sum(c.cycle_breakdown.values()), 0.0)
        peak = _peak(target, prec)
        for k, a in sorted(agg.items()):
            split = {grp: a.pop(grp) for grp in (*BREAKDOWN_GROUPS, "memory")}
            thread_cycles = a.pop("thread_cycles")
            rows.append(
                {
                    "target": target,
                    "precision": prec,
                    "kind": k,
                    **a,
                    "macs_per_cycle": a["macs"] / a["cycles"] if a["cycles"] else 0.0,
                    "peak_macs_per_cycle": peak,
                    "utilization": a["macs"] / (thread_cycles * peak) if a["cycles"] else 0.0,
                    "cycles_by_group": split,
                }
            )
    print(f"\nwhere the cycles go, by layer kind ({', '.join(_csv(args.models))}), codegen")
    print(
        f"{'target':12} {'prec':7} {'kind':17} {'layers':>6} {'MAC/cyc':>8} {'util':>6}  "
        "mac  ld/st  vec  scal stall  mem (% of cycles)"
    )
    for r in rows:
        share = "".join(
            f" {100 * r['cycles_by_group'][grp] / r['cycles']:4.0f}"
            for grp in (*BREAKDOWN_GROUPS, "memory")
        )
        print(
            f"{r['target']:12} {r['precision']:7} {r['kind']:17} {r['layers']:6d} "
            f"{r['macs_per_cycle']:8.2f} {100 * r['utilization']:5.1f}% {share}"
        )
    return {"models": _csv(args.models), "groups": [*BREAKDOWN_GROUPS, "memory"], "rows": rows}


def depthwise(args) -> dict:
    rows = []
    hvx = set(_csv(args.hvx_targets))
    for target in _csv(args.targets) + _csv(args.hvx_targets):
        for model in _csv(args.models):
            rate, per_context = {}, {}
            for prec in ("w8a8", "fp32"):
                g, costs = _run(model, target, prec, args.input_size)
                sel = list(_layers_of(g, costs, ("depthwise_conv2d",), False))
                cyc = sum(c.cycles for c in sel)
                rate[prec] = sum(c.macs for c in sel) / cyc if cyc else 0.0
                thread_cyc = sum(c.cycles * c.contexts for c in sel)
                per_context[prec] = sum(c.macs for c in sel) / thread_cyc if cyc else 0.0
            if not rate["fp32"]:
                continue  # no depthwise layers in this model
            rows.append(
                {
                    "target": target,
                    "model": model,
                    "w8a8_macs_per_cycle": rate["w8a8"],
                    "fp32_macs_per_cycle": rate["fp32"],
                    # per hardware thread (an HVX layer split over its contexts)
                    "w8a8_macs_per_cycle_per_context": per_context["w8a8"],
                    "ratio": rate["w8a8"] / rate["fp32"],
                    # HVX: an absolute w8a8 rate; Arm cores: a ratio to fp32 on the same core
                    "goal": HVX_DEPTHWISE_GOAL if target in hvx else DEPTHWISE_GOAL,
                    "goal_of": "w8a8_macs_per_cycle" if target in hvx else "ratio",
                }
            )
    print("\ndepthwise conv2d MACs per cycle, w8a8 vs fp32, codegen")
    print(f"{'target':12} {'model':14} {'w8a8':>7} {'/ctx':>6} {'fp32':>7} ratio  goal")
    for r in rows:
        ok = "ok" if r[r["goal_of"]] >= r["goal"] else "BELOW"
        goal = f"{r['goal']:g}{' MAC/cyc' if r['goal_of'] != 'ratio' else 'x'}"
        print(
            f"{r['target']:12} {r['model']:14} {r['w8a8_macs_per_cycle']:7.2f} "
            f"{r['w8a8_macs_per_cycle_per_context']:6.2f} "
            f"{r['fp32_macs_per_cycle']:7.2f} {r['ratio']:5.2f}x {goal} {ok}"
        )
    return {"rows": rows}


def hvx_model(args) -> dict:
    from accelsim.core.target import load_target

    rows = []
    for target in _csv(args.hvx_targets):
        _, costs = _run("mobilenet_v2", target, "w8a8", args.input_size)
        macs, cycles = sum(c.macs for c in costs), sum(c.cycles for c in costs)
        split = [c for c in costs if c.contexts > 1]
        rows.append(
            {
                "target": target,
                "model": "mobilenet_v2",
                "contexts": load_target(target).hardware_threads,
                "contexts_used": max((c.contexts for c in costs), default=1),
                "layers": len(costs),
                "layers_split": len(split),
                "macs_split": sum(c.macs for c in split) / macs if macs else 0.0,
                "cycles_not_split": sum(c.cycles for c in costs if c.contexts == 1) / cycles,
                "macs_per_cycle": macs / cycles if cycles else 0.0,
                "goal": HVX_MODEL_GOAL,
            }
        )
    print("\nMobileNet v2 w8a8 on HVX, whole model, codegen (layers split over the contexts)")
    for r in rows:
        ok = "ok" if r["macs_per_cycle"] >= r["goal"] else "BELOW"
        print(
            f"{r['target']:12} {r['macs_per_cycle']:7.2f} MAC/cyc on {r['contexts_used']} of "
            f"{r['contexts']} contexts (goal {r['goal']:g}) {ok}; {r['layers_split']} of "
            f"{r['layers']} layers split ({100 * r['macs_split']:.1f} % of the MACs), "
            f"{100 * r['cycles_not_split']:.0f} % of the time in layers on one thread"
        )
    return {"rows": rows}


def speedup(args) -> dict:
    rows = []
    for target in _csv(args.targets):
        for model in _csv(args.speedup_models):
            lat = {}
            for prec in ("fp32", "w8a8"):
                _, costs = _run(model, target, prec, args.input_size)
                lat[prec] = sum(c.latency_s for c in costs)
            rows.append(
                {
                    "target": target,
                    "model": model,
                    "fp32_s": lat["fp32"],
                    "w8a8_s": lat["w8a8"],
                    "speedup": lat["fp32"] / lat["w8a8"],
                }
            )
    print("\nwhole-model int8 vs fp32 speedup, codegen")
    print(f"{'target':12} {'model':14} {'fp32 ms':>9} {'w8a8 ms':>9} speedup")
    for r in rows:
        print(
            f"{r['target']:12} {r['model']:14} {1e3 * r['fp32_s']:9.2f} "
            f"{1e3 * r['w8a8_s']:9.2f} {r['speedup']:5.2f}x"
        )
    # HVX w8a8 against the CPU of the same SoC at fp32
    hvx_rows = []
    for pair in _csv(args.hvx_vs_cpu):
        dsp, cpu = pair.split(":")
        for model in _csv(args.hvx_vs_cpu_models):
            _, c_dsp = _run(model, dsp, "w8a8", args.input_size)
            _, c_cpu = _run(model, cpu, "fp32", args.input_size)
            t_dsp, t_cpu = sum(c.latency_s for c in c_dsp), sum(c.latency_s for c in c_cpu)
            hvx_rows.append(
                {
                    "dsp": dsp,
                    "cpu": cpu,
                    "model": model,
                    "cpu_fp32_s": t_cpu,
                    "dsp_w8a8_s": t_dsp,
                    "speedup": t_cpu / t_dsp,
                }
            )
    if hvx_rows:
        print(f"\n{'HVX w8a8 vs CPU fp32':24} {'model':14} {'CPU ms':>9} {'HVX ms':>9} speedup")
        for r in hvx_rows:
            print(
                f"{r['dsp'] + ' / ' + r['cpu']:24} {r['model']:14} {1e3 * r['cpu_fp32_s']:9.2f} "
                f"{1e3 * r['dsp_w8a8_s']:9.2f} {r['speedup']:5.2f}x"
            )
    return {"rows": rows, "hvx_vs_cpu": hvx_rows}


def host(args) -> dict | None:
    """The host section, measured here (kernel_efficiency_host: ResNet-18 and MobileNet v2 at
    224 whatever `--models` says, as the issue names them; one thread, interleaved with ONNX
    Runtime). None, said on stderr, without ONNX Runtime (the `test` extra)."""
    import importlib.util
    import sys

    if importlib.util.find_spec("onnxruntime") is None:
        print(
            "host section skipped: onnxruntime is not installed (pip install -e '.[test]')",
            file=sys.stderr,
        )
        return None
    sys.path.insert(0, str(Path(__file__).parent))
    import kernel_efficiency_host as kh

    section = kh.host_section(kh.MODELS, 224)
    print()
    kh.print_table(section)
    return section


SECTIONS: dict[str, Callable[[argparse.Namespace], dict | None]] = {
    "fidelity": fidelity,
    "breakdown": breakdown,
    "depthwise": depthwise,
    "hvx_model": hvx_model,
    "four_bit": four_bit,
    "speedup": speedup,
    "host": host,
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", default=ARM_CORES)
    ap.add_argument("--hvx-targets", default=HVX_CORES)
    ap.add_argument("--hvx-vs-cpu", default="hvx-v62:kryo280", help="DSP:CPU pairs of one SoC")
    ap.add_argument("--hvx-vs-cpu-models", default="mobilenet_v1,mobilenet_v2")
    ap.add_argument("--models", default="mobilenet_v2,resnet50")
    ap.add_argument("--precisions", default="w8a8,w16a16,fp32")
    ap.add_argument("--speedup-models", default="mobilenet_v1,mobilenet_v2,resnet50,inception_v3")
    ap.add_argument("--input-size", type=int, default=224)
    ap.add_argument("--sections", default=",".join(SECTIONS))
    # the report's kernel-efficiency section reads this file (accelsim.reporting.spec)
    ap.add_argument("--json", default="reports/kernel_efficiency.json")
    args = ap.parse_args(argv)
    unknown = [s for s in _csv(args.sections) if s not in SECTIONS]
    if unknown:
        ap.error(f"--sections: unknown section '{unknown[0]}' (known: {', '.join(SECTIONS)})")
    out: dict = {"input_size": args.input_size, "targets": _csv(args.targets)}
    t0 = time.perf_counter()
    for name in _csv(args.sections):
        out[name] = SECTIONS[name](args)
    out["calibration_data"] = " / ".join(sorted(_CALIBRATION))
    out["seconds"] = time.perf_counter() - t0
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    print(f"\n{out['seconds']:.0f} s; wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
