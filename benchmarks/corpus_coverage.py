"""Lowering coverage of the model corpus (issue 14): for each corpus model (tests/corpus_models.py),
each form a user has it in, and each target, the share of layers and of MACs that run on
generated code.

Forms: an ONNX model as exported (float, quantized by accelsim at w8a8 with seeded random
calibration, as `accelsim compile` does) and as ONNX Runtime's `quantize_static` writes it (QDQ,
the corpus's configuration per model: u8/s8 activations, per-channel or per-tensor weights);
a TFLite model in each of the converter's modes (int8, 16x8), as stored.

By default the shares are `simulate`'s (fidelity analytic: the placement every back end
reports without compiling); `--compile` compiles every model and reads the public output,
`kernels.json` (slow: every kernel through LLVM). Layers with a kernel or a view count as
lowered, on the accelerator also its host core's layers compiled for the host's CPU target
(`accelerator.host.target`, "host kernel"); the CPU/DSP back ends' `not_lowered` layers and
host layers without a kernel do not. Accelerator rows also give the share of the MACs that
ran on the accelerator itself. Prints a table and writes JSON.

    nice -n 10 python benchmarks/corpus_coverage.py [--models a,b] [--targets cortex-a76,...] \
        [--compile] [--json benchmarks/results/corpus_coverage.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the corpus's makers live with the tests

TARGETS = ("cortex-a76", "hvx-v68", "simd-accel")


def _forms(name: str, work: Path):
    """(form label, graph, precision or None for as stored) of one corpus model."""
    import corpus_models as C

    from accelsim.model import zoo
    from accelsim.model.onnx_export import export_onnx
    from accelsim.model.onnx_import import load_onnx
    from accelsim.model.tflite_import import load_tflite

    e = C.CORPUS[name]
    if e.fmt == "onnx":
        path = work / f"{name}.onnx"
        if isinstance(e.make, str):
            export_onnx(zoo.build(e.make, seed=3, input_size=32), path)
            g = load_onnx(path)
            inputs = {i: g.tensors[i].shape for i in g.inputs}
        else:
            data, inputs = C.export_torch(e.make)
            path.write_bytes(data)
        out = [("w8a8 (accelsim)", load_onnx(path), "w8a8")]
        act, pc = C.qdq_config(name)
        qdir = work / f"{name}-qdq"
        qdir.mkdir()
        cwd = Path.cwd()
        try:
            os.chdir(qdir)  # ONNX Runtime's shape inference leaves files in the cwd
            qpath = C.ort_quantize(path, inputs, qdir, act, pc)
        finally:
            os.chdir(cwd)
        out.append((f"ORT QDQ {act} {'pc' if pc else 'pt'}", load_onnx(qpath), None))
        return out
    import tflite_models as M

    out = []
    for mode in e.modes:
        M.tf.keras.utils.set_random_seed(1234)
        model = e.make()
        M.randomize(model, 1235)
        out.append(
            (
                f"TFLite {mode}",
                load_tflite(M.convert(model, mode, work / f"{name}_{mode}.tflite", 1234)),
                None,
            )
        )
    return out


def analytic_coverage(graph, target: str, precision: str | None) -> dict:
    """The placement `simulate` reports (no compilation)."""
    import accelsim

    run = accelsim.simulate(graph, target, [precision] if precision else None, fidelity="analytic")
    r = run.runs[0]
    cov = r.coverage
    return {
        "precision": r.precision.name,
        "layers": cov.layers,
        "lowered_layers": cov.layers_lowered,
        "by_layer": cov.layer_share,
        "by_macs": cov.mac_share,
        "host_kernels": dict(cov.by_place).get("host kernel", 0),
        "by_macs_accelerator": (cov.macs_lowered - cov.macs_host) / cov.macs if cov.macs else 1.0,
        "not_lowered_ops": [op for op, _ in cov.not_lowered_ops],
    }


def coverage(graph, target: str, precision: str | None, out: Path) -> dict:
    """Compile through the public API and read kernels.json."""
    import accelsim
    from accelsim.model.ops import node_macs

    q, _, prec, _ = accelsim.api.prepared(graph, target, precision)
    t0 = time.perf_counter()
    accelsim.compile(q, target, None, out)
    seconds = time.perf_counter() - t0
    doc = json.loads((out / "kernels.json").read_text())
    # CPU/DSP back ends list `not_lowered`; the accelerator's `host_layers` run on its host
    # core, as a kernel of its CPU target where they have one
    host = doc.get("host_layers", [])
    missing = {
        r["layer"]: r.get("reason", "")
        for r in doc.get("not_lowered", []) + [h for h in host if not h.get("kernel")]
    }
    on_host = {h["layer"] for h in host}
    layers = [n for n in q.nodes if n.op not in ("quantize", "dequantize")]
    total_macs = sum(node_macs(q, n) for n in q.nodes) or 1
    lost_macs = sum(node_macs(q, n) for n in q.nodes if n.name in missing)
    lost_layers = [n for n in layers if n.name in missing]
    return {
        "precision": prec.name,
        "layers": len(layers),
        "lowered_layers": len(layers) - len(lost_layers),
        "by_layer": 1 - len(lost_layers) / max(len(layers), 1),
        "by_macs": 1 - lost_macs / total_macs,
        "host_kernels": len([h for h in host if h.get("kernel")]),
        "by_macs_accelerator": 1
        - sum(node_macs(q, n) for n in q.nodes if n.name in on_host) / total_macs,
        "not_lowered_ops": sorted({n.op for n in lost_layers}),
        "compile_s": seconds,
    }


def main(argv: list[str] | None = None) -> int:
    import corpus_models as C

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(C.CORPUS))
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--compile", action="store_true", help="compile and read kernels.json")
    ap.add_argument("--json", default=str(ROOT / "benchmarks/results/corpus_coverage.json"))
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in args.models.split(","):
            try:
                forms = _forms(name, work)
            except Exception as exc:  # a model that does not import is a row, not a crash
                rows.append({"model": name, "error": f"{type(exc).__name__}: {exc}"})
                print(f"{name:<30} import failed: {exc}", flush=True)
                continue
            for form, graph, precision in forms:
                for target in args.targets.split(","):
                    try:
                        if args.compile:
                            out = work / f"{name}-{len(rows)}-{target}"
                            r = coverage(graph, target, precision, out)
                        else:
                            r = analytic_coverage(graph, target, precision)
                    except Exception as exc:
                        rows.append(
                            {"model": name, "form": form, "target": target, "error": str(exc)}
                        )
                        print(f"{name:<24} {form:<18} {target:<12} failed: {exc}", flush=True)
                        continue
                    rows.append({"model": name, "form": form, "target": target, **r})
                    print(
                        f"{name:<24} {form:<18} {target:<12} layers "
                        f"{r['lowered_layers']:>4}/{r['layers']:<4} ({r['by_layer']:6.1%})  "
                        f"MACs {r['by_macs']:6.1%}  "
                        + (
                            f"host kernels {r['host_kernels']:>3} (accelerator MACs "
                            f"{r['by_macs_accelerator']:6.1%})  "
                            if r["host_kernels"]
                            else ""
                        )
                        + f"not lowered: {', '.join(r['not_lowered_ops']) or '-'}",
                        flush=True,
                    )
    _summary(rows)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    rows = [{**r, "mode": "compile" if args.compile else "simulate (analytic)"} for r in rows]
    Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


def _summary(rows: list[dict]) -> None:
    """Per target and form kind: models at >= 95 % of layers and 100 % of MACs (issue 14)."""
    ok = [r for r in rows if "error" not in r]
    print("\nper target and form: models with >= 95 % of layers and 100 % of MACs lowered")
    kinds = sorted({(r["target"], r["form"].split(" ")[0]) for r in ok})
    for target, kind in kinds:
        sel = [r for r in ok if r["target"] == target and r["form"].split(" ")[0] == kind]
        met = [r for r in sel if r["by_layer"] >= 0.95 and r["by_macs"] >= 1.0 - 1e-12]
        fewest = min(sel, key=lambda r: r["by_layer"])
        least = min(sel, key=lambda r: r["by_macs"])
        print(
            f"  {target:<12} {kind:<8} {len(met):>3} of {len(sel):<3} (fewest layers: "
            f"{fewest['model']} {fewest['by_layer']:.1%}; fewest MACs: {least['model']} "
            f"{least['by_macs']:.1%})"
        )
        if any(r["host_kernels"] for r in sel):  # an accelerator: what it ran itself
            own = [r for r in sel if r["by_macs_accelerator"] >= 1.0 - 1e-12]
            low = min(sel, key=lambda r: r["by_macs_accelerator"])
            print(
                f"  {'':<12} {'':<8} {len(own):>3} of {len(sel):<3} with every MAC on the "
                f"accelerator itself (fewest: {low['model']} {low['by_macs_accelerator']:.1%})"
            )
    errors = [r for r in rows if "error" in r]
    if errors:
        print(
            f"  {len(errors)} failed: "
            + "; ".join(f"{r['model']}: {r['error'][:80]}" for r in errors)
        )


if __name__ == "__main__":
    raise SystemExit(main())
