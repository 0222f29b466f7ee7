"""Lowering coverage of the model corpus (issue 14): for each corpus model (tests/corpus_models.py)
and target, the share of layers and of MACs `accelsim compile` lowers to generated code.

ONNX models are compiled from the float model at w8a8 (seeded random calibration, as `accelsim
compile` does), TFLite models from the converter's int8 model as stored. Coverage is read from
the public output, `kernels.json`: layers with a kernel or a view (reshapes without code) count
as lowered, `not_lowered` entries (CPU/DSP) and `host_layers` (the accelerator's host core) as
not. Prints a table and writes JSON.

    nice -n 10 python benchmarks/corpus_coverage.py [--models a,b] [--targets cortex-a76,...] \
        [--json benchmarks/results/corpus_coverage.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the corpus's makers live with the tests

TARGETS = ("cortex-a76", "hvx-v68", "simd-accel")


def _graph(name: str, work: Path):
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
        else:
            path.write_bytes(C.export_torch(e.make)[0])
        return load_onnx(path), "w8a8"
    import tflite_models as M

    M.tf.keras.utils.set_random_seed(1234)
    model = e.make()
    M.randomize(model, 1235)
    mode = e.modes[0]
    return load_tflite(M.convert(model, mode, work / f"{name}_{mode}.tflite", 1234)), None


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
    # core (labelled), which is not lowering onto the accelerator either
    missing = {
        r["layer"]: r.get("reason", "")
        for r in doc.get("not_lowered", []) + doc.get("host_layers", [])
    }
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
        "not_lowered_ops": sorted({n.op for n in lost_layers}),
        "compile_s": seconds,
    }


def main(argv: list[str] | None = None) -> int:
    import corpus_models as C

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(C.CORPUS))
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--json", default=str(ROOT / "benchmarks/results/corpus_coverage.json"))
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in args.models.split(","):
            try:
                graph, precision = _graph(name, work)
            except Exception as exc:  # a model that does not import is a row, not a crash
                rows.append({"model": name, "error": f"{type(exc).__name__}: {exc}"})
                print(f"{name:<30} import failed: {exc}", flush=True)
                continue
            for target in args.targets.split(","):
                try:
                    r = coverage(graph, target, precision, work / f"{name}-{target}")
                except Exception as exc:
                    rows.append({"model": name, "target": target, "error": str(exc)})
                    print(f"{name:<30} {target:<12} failed: {exc}", flush=True)
                    continue
                rows.append({"model": name, "target": target, **r})
                print(
                    f"{name:<30} {target:<12} {r['precision']:<6} layers "
                    f"{r['lowered_layers']:>4}/{r['layers']:<4} ({r['by_layer']:6.1%})  MACs "
                    f"{r['by_macs']:6.1%}  not lowered: {', '.join(r['not_lowered_ops']) or '-'}",
                    flush=True,
                )
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
