"""Accuracy study on real trained networks: PaddleOCR's text-orientation classifier (ppocr_cls,
MobileNetV3-small) and PP-OCRv4 recognizer (ppocr_rec, PP-LCNetV3 + SVTR attention, CTC) from
the rapidocr_onnxruntime wheel, on rendered text (accelsim.quant.ocrdata).

    python benchmarks/accuracy_real.py [--models ppocr_cls,ppocr_rec] [--quick] [--tune-only]
        [--recost]

Per model, on the test split (every quantized score by accelsim's integer-only reference
executor, the same model quantized by ONNX Runtime's quantize_static and run by ONNX Runtime
beside it):

- float: accelsim's reference executor and ONNX Runtime on the original file;
- w8a8 per-channel PTQ per calibrator, against ORT's quantizer with ORT's own calibrator
  (``entropy_ort`` is ORT's entropy recipe);
- an entropy result far below min/max, tensor by tensor (clipped tensors by operator, the score
  with one operator's tensors clipped, with the most clipped at min/max, at ORT's ranges);
- per-tensor vs per-channel weights, with the spread of the per-channel weight ranges that
  explains the gap;
- 4-bit weights: PTQ loss, and what Wu et al.'s workflow (partial quantization) recovers;
- Wu et al.'s workflow at w8a8 (accelsim.dse.tune: calibrator chosen on validation, then the
  most sensitive operators in float until validation is within 1 point), with latency and
  energy on cortex-a76 and hvx-v68 next to uniform w8a8 and fp32.

Writes `benchmarks/results/accuracy_real_<model>.json` as each model finishes and returns the
rows `accuracy_study.py` merges into `reports/accuracy.json` / `accuracy.md`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from accelsim.core.fsutil import atomic_write_text  # noqa: E402
from accelsim.core.precision import parse_precision  # noqa: E402
from accelsim.dse.tune import fastest_meeting, recost, step_from_json, tune  # noqa: E402
from accelsim.model import packaged  # noqa: E402
from accelsim.quant import metrics, ocrdata  # noqa: E402
from accelsim.quant.mixed import write_mixed  # noqa: E402
from accelsim.quant.ptq import (  # noqa: E402
    CalibrationData,
    assign_precisions,
    calibrate_ranges,
    quantize_with_ranges,
)
from accelsim.quant.transforms import prepare_for_quantization  # noqa: E402

SIZES = {  # (calibration, validation, test) samples; the recognizer runs ~1 s a sample here
    "ppocr_cls": (64, 200, 300),
    "ppocr_rec": (16, 48, 120),
}
QUICK = {"ppocr_cls": (16, 24, 48), "ppocr_rec": (8, 8, 12)}
CALIBRATORS = ("minmax", "percentile:99.99", "percentile:99.999", "entropy", "entropy_trt", "mse")
# ours -> ORT's calibrate_method and the options of its calibrator (the same recipe where ORT
# has one). quantize_static forwards only some options to the calibrator, under other names
# (CalibPercentile; num_bins not at all), so _ort_quantized runs ORT's calibrator itself.
ORT_SAME = {
    "minmax": ("MinMax", {}),
    "percentile:99.99": ("Percentile", {"percentile": 99.99}),
    "percentile:99.999": ("Percentile", {"percentile": 99.999}),
    "entropy_ort": ("Entropy", {}),  # ORT's default: 128 bins, the maximum is the one candidate
    "entropy_ort:512": ("Entropy", {"num_bins": 512}),
}
TARGETS = ("cortex-a76", "hvx-v68")
RESULTS = ROOT / "benchmarks" / "results"


def _metric(name: str, d: ocrdata.TextSet) -> metrics.Metric:
    if name == "ppocr_rec":
        return metrics.CTCExactMatch(tuple(d.labels), packaged.ctc_symbols())
    return metrics.Top1(np.asarray(d.labels))


def _ort_session(model_or_path):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    src = model_or_path if isinstance(model_or_path, str) else model_or_path.SerializeToString()
    return ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])


def _ort_scores(sess, x: np.ndarray) -> np.ndarray:
    out = np.concatenate([sess.run(None, {"x": x[i : i + 1]})[0] for i in range(len(x))])
    return np.log(np.maximum(out, 1e-30))  # softmax outputs -> the same arg max as the logits


def _ort_quantized(path: str, cal: np.ndarray, method: str, extra: dict, per_channel: bool):
    """ONNX Runtime's QDQ model of ``path`` with ORT's own calibrator: ``create_calibrator``
    with ``extra`` as its options, its ranges handed to ``quantize_static`` as a calibration
    cache (``quantize_static`` alone would drop ``num_bins`` and read the percentile only as
    ``CalibPercentile``: ORT's 512-bin entropy would silently be its 128-bin default, i.e.
    min/max, and every percentile its default 99.999)."""
    from onnxruntime import quantization as oq
    from onnxruntime.quantization.calibrate import save_tensors_data

    class Reader(oq.CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"x": cal[i : i + 1]} for i in range(len(cal))])

        def get_next(self):
            return next(self.it, None)

    tag = "_".join(f"{k}{v}" for k, v in sorted(extra.items()))
    out = path.replace(".onnx", f"_{method}_{tag}_{per_channel}.onnx")
    cache = out.replace(".onnx", ".calib.json")
    calibrate_method = getattr(oq.CalibrationMethod, method)
    with contextlib.redirect_stdout(io.StringIO()):
        if not os.path.exists(cache):
            c = oq.create_calibrator(
                path,
                augmented_model_path=out.replace(".onnx", "_aug.onnx"),
                calibrate_method=calibrate_method,
                extra_options=extra,
            )
            c.collect_data(Reader())
            save_tensors_data(c.compute_data(), cache)
        oq.quantize_static(
            path,
            out,
            None,
            quant_format=oq.QuantFormat.QDQ,
            per_channel=per_channel,
            activation_type=oq.QuantType.QUInt8,
            weight_type=oq.QuantType.QInt8,
            calibrate_method=calibrate_method,
            calibration_cache_path=cache,
        )
    return _ort_session(out)


DEAD = 1e-6  # a channel whose max |w| is below this fraction of its layer's widest is dead


def weight_range_spread(name: str) -> tuple[dict[str, float], int, int]:
    """A property of the network's weights (after BN folding), not of a run: per conv/dense
    layer, the largest over the smallest per-output-channel max |w| among live channels (the
    ratio that decides how many levels per-tensor scales leave the narrow channels), widest
    first; and how many channels (in how many layers) are dead, i.e. below ``DEAD`` times their
    layer's widest (trained networks hold such channels, often as float32 denormals)."""
    prepared = prepare_for_quantization(packaged.load_packaged(name))
    out, dead, layers = {}, 0, 0
    for n in prepared.nodes:
        if n.op not in ("conv2d", "dense"):
            continue
        w = np.abs(prepared.constants[n.inputs[1]]).reshape(
            prepared.constants[n.inputs[1]].shape[0], -1
        )
        amax = w.max(axis=1).astype(np.float64)
        live = amax[amax > DEAD * amax.max()]
        dead += amax.size - live.size
        layers += amax.size > live.size
        if live.size > 1:
            out[n.name] = float(live.max() / live.min())
    return dict(sorted(out.items(), key=lambda kv: -kv[1])), dead, layers


def _w8a8_score(rows: list[dict], calib: str) -> float:
    return next(r["top1"] for r in rows if r["calibration"] == calib and r["precision"] == "w8a8")


COLLAPSE = 0.10  # finding 3: an entropy result this far below minmax is a collapse
PTQ4_LOSS = 0.02  # finding 5: a clear 4-bit PTQ loss (the digits study's criterion)
WITHIN = 0.01 + 1e-9  # "within 1 point", safe from float rounding (287/300 vs 290/300 - 0.01)
CLIP = 1.5  # a tensor counts as clipped when its min/max range is this much wider
FEW_VALUES = 1024  # a tensor of at most this many values per sample (a vector) has "few"


def _explain_clipping(prepared, precisions, rng, mm, ort, x, metric) -> dict:
    """Why calibration ``rng`` scores far below min/max: the tensors it clips most (min/max
    width over its width, and ONNX Runtime's 512-bin entropy width over its width), how many
    tensors of each producing operator it clips by ``CLIP`` or more, and the score with only one
    operator's tensors at ``rng`` (the rest at min/max) for the three operators it clips most,
    with the 8 most clipped tensors back at min/max, and with ORT's ranges wherever ``rng``
    clips by ``CLIP`` or more."""

    def width(r):
        return max(r[1] - r[0], 1e-12)

    ratio = {t: width(mm[t]) / width(rng[t]) for t in rng if t in mm}
    order = sorted(ratio, key=lambda t: -ratio[t])
    producer = {o: n.op for n in prepared.nodes for o in n.outputs}
    by_op: dict[str, list[str]] = {}
    for t in order:
        if ratio[t] >= CLIP:
            by_op.setdefault(producer.get(t, "input"), []).append(t)

    def score(r):
        return metrics.evaluate(quantize_with_ranges(prepared, precisions, r), x, metric)

    out: dict = {
        "split": "validation",
        "samples": int(len(x)),
        "minmax": score(mm),
        "this": score(rng),
        "most_clipped": [
            (t, round(ratio[t], 2), round(width(ort[t]) / width(rng[t]), 2)) for t in order[:12]
        ],
        "clipped_by_op": {
            op: len(ts) for op, ts in sorted(by_op.items(), key=lambda kv: -len(kv[1]))
        },
        "only_op_clipped": {},
    }
    for op in list(out["clipped_by_op"])[:3]:
        out["only_op_clipped"][op] = score({**mm, **{t: rng[t] for t in by_op[op]}})
    out["top8_at_minmax"] = score({**rng, **{t: mm[t] for t in order[:8]}})
    clipped = [t for t in order if ratio[t] >= CLIP]
    out["clipped_at_ort"] = score({**rng, **{t: ort[t] for t in clipped if t in ort}})
    # tensors of few values per sample (squeeze-excite squeezes and gates: one per channel),
    # whose histograms are mostly empty bins: only those clipped, the rest at min/max
    few = [t for t in clipped if prepared.tensors[t].size <= FEW_VALUES]
    out["few_valued_clipped"] = len(few)
    out["only_few_valued_clipped"] = score({**mm, **{t: rng[t] for t in few}}) if few else None
    return out


def _calibration_set(name: str, n: int) -> tuple[ocrdata.TextSet, CalibrationData]:
    """The calibration split of `name` and the same samples one per calibration batch."""
    cal = ocrdata.text_set(name, n, "calib")
    return cal, CalibrationData(tuple(cal.x[i : i + 1] for i in range(n)), cal.description)


def study(name: str, quick: bool, log: Callable[[str], None], tune_only: bool = False) -> dict:
    """One model's rows. `tune_only` keeps every row of the last full run's results file but
    the workflow's and runs the workflow again (for work on accelsim.dse.tune: the other rows'
    code is not involved; the full run computes the same rows)."""
    t0 = time.perf_counter()
    n_cal, n_val, n_test = (QUICK if quick else SIZES)[name]
    graph = packaged.load_packaged(name)
    prepared = prepare_for_quantization(graph)
    cal, data = _calibration_set(name, n_cal)
    val = ocrdata.text_set(name, n_val, "val")
    test = ocrdata.text_set(name, n_test, "test")
    metric = _metric(name, test)
    res: dict = {
        "model": name,
        "description": packaged.MODELS[name].description,
        "metric": metric.name,
        "samples": {"calibration": n_cal, "validation": n_val, "test": n_test},
        "rewrites": graph.metadata.get("rewrites", {}),
    }
    rows: list[dict] = []

    def row(method, precision, gran, calib, score, ort=None, **extra):
        r = {
            "model": name,
            "method": method,
            "precision": precision,
            "granularity": gran,
            "calibration": calib,
            "top1": float(score),  # the model's metric (the report's accuracy column)
            "metric": metric.name,
            "ort": None if ort is None else float(ort),
            **extra,
        }
        rows.append(r)
        ort_txt = "" if ort is None else f", ONNX Runtime {ort:.4f}"
        log(f"{name} {method} {precision} {calib}: {metric.name} {score:.4f}{ort_txt}")
        return r

    ranges: dict[str, dict] = {}
    if tune_only:
        last_path = RESULTS / f"accuracy_real_{name}.json"
        if not last_path.exists():
            raise SystemExit(f"{last_path}: no full run to keep the other rows from")
        last = json.loads(last_path.read_text())
        if last["samples"] != res["samples"]:
            raise SystemExit(f"{name}: the last run used {last['samples']}, not {res['samples']}")
        res = {k: v for k, v in last.items() if not k.startswith("tune_")}
        rows.extend(r for r in last["rows"] if r["method"] != "tune")
    else:
        _ptq_rows(name, res, row, rows, prepared, data, cal, val, test, metric, ranges, log)
    _tune_rows(name, res, row, graph, prepared, data, val, test, metric, ranges, log)
    # a workflow-only run keeps the full run's time and records its own beside it
    res["tune_rerun_seconds" if tune_only else "seconds"] = round(time.perf_counter() - t0)
    res["rows"] = rows
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS / f"accuracy_real_{name}.json", json.dumps(res, indent=1) + "\n")
    return res


def _ptq_rows(name, res, row, rows, prepared, data, cal, val, test, metric, ranges, log) -> None:
    """Float, w8a8 per calibrator against ORT, the entropy explanation, per-tensor, w4a8 PTQ."""
    model, _ = packaged.rewritten_onnx(name)
    tmp = tempfile.mkdtemp()
    fpath = os.path.join(tmp, f"{name}.onnx")
    import onnx

    onnx.save(model, fpath)
    # float: ours on the rewritten graph, ONNX Runtime on the original file
    ref = metrics.scores(prepared, test.x)
    ort_float = _ort_scores(_ort_session(str(packaged.model_path(name))), test.x)
    f_score = metric(ref)
    row("float", "fp32", "-", "-", f_score, metric(ort_float))
    res["float_predictions_equal"] = bool(np.array_equal(ref.argmax(-1), ort_float.argmax(-1)))

    w8 = parse_precision("w8a8")
    uniform = assign_precisions(prepared, w8)
    for c in (*CALIBRATORS, "entropy_ort", "entropy_ort:512"):
        ranges[c] = calibrate_ranges(prepared, data, c, uniform)
        q = quantize_with_ranges(prepared, uniform, ranges[c])
        score = metrics.evaluate(q, test.x, metric)
        ort = None
        if c in ORT_SAME:
            meth, extra = ORT_SAME[c]
            ort = metric(_ort_scores(_ort_quantized(fpath, cal.x, meth, extra, True), test.x))
        row("ptq", "w8a8", "per-channel/sym", c, score, ort)

    # an entropy result far below minmax, tensor by tensor (on the validation split)
    res["entropy_explained"] = {}
    n_explain = min(len(val.x), 12 if name == "ppocr_rec" else 48)  # the recognizer is slow
    mm = ranges["minmax"]
    for c in ("entropy_trt", "entropy", "entropy_ort:512"):
        if _w8a8_score(rows, c) < _w8a8_score(rows, "minmax") - 0.05:
            res["entropy_explained"][c] = _explain_clipping(
                prepared,
                uniform,
                ranges[c],
                mm,
                ranges["entropy_ort:512"],
                val.x[:n_explain],
                _metric(name, ocrdata.TextSet(val.x[:n_explain], val.labels[:n_explain], "")),
            )
            log(f"{name} {c} explained: {res['entropy_explained'][c]}")

    # per-tensor weights
    pt = parse_precision("w8a8/per-tensor")
    pt_uniform = assign_precisions(prepared, pt)
    q = quantize_with_ranges(prepared, pt_uniform, mm)
    ort_pt = metric(_ort_scores(_ort_quantized(fpath, cal.x, "MinMax", {}, False), test.x))
    row(
        "ptq",
        "w8a8/per-tensor",
        "per-tensor/sym",
        "minmax",
        metrics.evaluate(q, test.x, metric),
        ort_pt,
    )

    # 4-bit weights: PTQ, then the workflow's partial quantization at w4a8
    best_c = max(
        CALIBRATORS,
        key=lambda c: next(
            r["top1"] for r in rows if r["calibration"] == c and r["precision"] == "w8a8"
        ),
    )
    w4 = parse_precision("w4a8")
    q4 = quantize_with_ranges(prepared, assign_precisions(prepared, w4), ranges[best_c])
    row("ptq", "w4a8", "per-channel/sym", best_c, metrics.evaluate(q4, test.x, metric))


def _tune_rows(name, res, row, graph, prepared, data, val, test, metric, ranges, log) -> None:
    """Wu et al.'s workflow at w8a8 and w4a8, its choice scored on the test split."""
    budget = 0.01
    for prec in ("w8a8", "w4a8"):
        r = tune(
            graph,
            data,
            val.x,
            _metric(name, val),
            precision=prec,
            calibrators=("minmax", "percentile:99.99", "entropy", "mse"),
            max_drop=budget,
            targets=TARGETS,
            sensitivity_samples=min(16 if name == "ppocr_cls" else 8, len(val.x)),
            log=lambda m, p=prec: log(f"  tune {name} {p}: {m}"),
        )
        prec_map = {**assign_precisions(prepared, parse_precision(prec))}
        prec_map.update({n: parse_precision(r.high) for n in r.high_layers})
        # the ranges tune chose with: calibrated for the uniform precision
        ranges_c = ranges.get(r.calibration) or calibrate_ranges(
            prepared, data, r.calibration, assign_precisions(prepared, parse_precision(prec))
        )
        qt = quantize_with_ranges(prepared, prec_map, ranges_c)
        yaml_path = ROOT / "reports" / f"{name}_{prec}_mixed.yaml"
        label = f"mixed {prec} + {len(r.high_layers)}/{len(r.node_precisions)} layers {r.high}"
        if r.high_layers:
            write_mixed(
                yaml_path,
                parse_precision(prec),
                {n: parse_precision(r.high) for n in r.high_layers},
                f"accelsim.dse.tune (Wu et al. 2020 §6) on {name}: calibration {r.calibration}, "
                f"{len(r.high_layers)} most sensitive layer(s) at {r.high}; validation "
                f"{r.metric} {r.score:.4f} (float {r.float_score:.4f}, budget {budget})",
            )
        row(
            "tune",
            label if r.high_layers else prec,
            "per-channel/sym",
            r.calibration,
            metrics.evaluate(qt, test.x, metric),
            mixed_yaml=yaml_path.name if r.high_layers else None,
            validation=r.score,
            validation_float=r.float_score,
            met=r.met,
        )
        res[f"tune_{prec}"] = r.to_json()


def recost_study(name: str, quick: bool, log: Callable[[str], None]) -> dict:
    """The last run's results with the workflow's steps costed again on the current kernels
    and target files (`accelsim.dse.tune.recost`): the scores and choices do not depend on
    costs, so this equals a full run after a kernel or target change, in minutes."""
    t0 = time.perf_counter()
    n_cal = (QUICK if quick else SIZES)[name][0]
    last_path = RESULTS / f"accuracy_real_{name}.json"
    if not last_path.exists():
        raise SystemExit(f"{last_path}: no run to re-cost")
    res = json.loads(last_path.read_text())
    if res["samples"]["calibration"] != n_cal:
        raise SystemExit(f"{name}: the last run used {res['samples']}, not {n_cal} calibration")
    graph = packaged.load_packaged(name)
    data = _calibration_set(name, n_cal)[1]
    for key in [k for k, v in res.items() if k.startswith("tune_") and isinstance(v, dict)]:
        res[key] = recost(res[key], graph, data, log=lambda m, k=key: log(f"  {name} {k}: {m}"))
    res["recost_seconds"] = round(time.perf_counter() - t0)
    atomic_write_text(last_path, json.dumps(res, indent=1) + "\n")
    return res


def run(
    models, quick: bool, log: Callable[[str], None] = print, tune_only=False, recost_only=False
) -> list[dict]:
    if recost_only:
        return [recost_study(m, quick, log) for m in models]
    return [study(m, quick, log, tune_only) for m in models]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="ppocr_cls,ppocr_rec")
    ap.add_argument("--quick", action="store_true", help="a few samples per split (smoke run)")
    ap.add_argument(
        "--tune-only",
        action="store_true",
        help="run only the workflow again, keeping the last run's other rows",
    )
    ap.add_argument(
        "--recost",
        action="store_true",
        help="cost the last run's workflow steps again on the current kernels and targets "
        "(after a kernel or target change; nothing is evaluated)",
    )
    args = ap.parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    run(models, args.quick, tune_only=args.tune_only, recost_only=args.recost)
    return 0


if __name__ == "__main__":
    sys.exit(main())


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def _pct(v: float) -> str:
    return f"{100 * v:.1f} %"


def _pts(v: float) -> str:
    return f"{100 * v:+.1f}"


def _verdict(ok: bool) -> str:
    return "**Reproduced.**" if ok else "**Not reproduced.**"


def _get(res: dict, method: str, precision: str, calib: str | None = None) -> dict | None:
    for r in res["rows"]:
        if r["method"] == method and r["precision"] == precision:
            if calib is None or r["calibration"] == calib:
                return r
    return None


def _step_cost(tune_json: dict, pick) -> dict[str, tuple[float, float]]:
    steps = [s for s in tune_json["steps"] if pick(s)]
    if not steps:
        return {}
    s = steps[-1]
    return {c["target"]: (c["latency_s"], c["energy_j"]) for c in s["costs"]}


def markdown(results: list[dict]) -> str:
    """The real-network sections of reports/accuracy.md."""
    lines = [
        "# Real trained networks: PaddleOCR's classifier and recognizer",
        "",
        "Generated by `benchmarks/accuracy_study.py` (the part in `benchmarks/accuracy_real.py`). "
        "Networks from the `rapidocr_onnxruntime` wheel, imported through exact rewrites "
        "(`accelsim.model.onnx_rewrite`); data rendered with PIL in matplotlib's DejaVu fonts "
        "(`accelsim.quant.ocrdata`). Every quantized score is accelsim's integer-only reference "
        "executor on the test split; the ONNX Runtime column is the same rewritten model "
        "quantized by `onnxruntime.quantization.quantize_static` (QDQ, uint8 activations, int8 "
        "weights, per-channel unless the row says otherwise) with the same calibrator, run by "
        "ONNX Runtime. Weights symmetric in the restricted range, activations asymmetric per "
        "tensor, BN folded.",
        "",
    ]
    for res in results:
        n = res["samples"]
        lines += [
            f"## {res['model']}: {res['description']}",
            "",
            f"Metric: {res['metric']} (test split {n['test']} samples; calibration "
            f"{n['calibration']}, validation {n['validation']}). Rewrites applied: "
            f"{', '.join(f'{k} x{v}' for k, v in res['rewrites'].items())}. "
            f"Run time {res['seconds']} s"
            + (
                f" (the workflow's rows re-run alone: {res['tune_rerun_seconds']} s)."
                if "tune_rerun_seconds" in res
                else "."
            ),
            "",
            "| method | precision | weights | calibration | accelsim | ONNX Runtime | vs float |",
            "|---|---|---|---|---|---|---|",
        ]
        f = _get(res, "float", "fp32")["top1"]
        for r in res["rows"]:
            ort = "-" if r.get("ort") is None else f"{r['ort']:.4f}"
            lines.append(
                f"| {r['method']} | {r['precision']} | {r['granularity']} | {r['calibration']} "
                f"| {r['top1']:.4f} | {ort} | {_pts(r['top1'] - f)} |"
            )
        lines.append("")
    lines += ["## Findings on the real networks, checked", ""]
    lines += _findings(results)
    return "\n".join(lines) + "\n"


def _findings(results: list[dict]) -> list[str]:
    out = []
    # 1. float equal to ONNX Runtime
    parts, ok = [], True
    for res in results:
        r = _get(res, "float", "fp32")
        same = res["float_predictions_equal"] and r["top1"] == r["ort"]
        ok &= same
        parts.append(
            f"{res['model']} {_pct(r['top1'])} vs ONNX Runtime {_pct(r['ort'])} "
            f"({'the same prediction for every sample' if same else 'predictions differ'})"
        )
    out.append(
        f"1. **Float accuracy of accelsim's reference executor equals ONNX Runtime's** (on the "
        f"original file). {'; '.join(parts)}. {_verdict(ok)}\n"
    )
    # 2. per calibrator vs ORT's quantizer
    parts, ok = [], True
    pairs = {
        "minmax": "minmax",
        "percentile:99.99": "percentile:99.99",
        "percentile:99.999": "percentile:99.999",
        "entropy_ort": "entropy_ort",
        "entropy_ort:512": "entropy_ort:512",
    }
    for res in results:
        for c in pairs:
            r = _get(res, "ptq", "w8a8", c)
            if r is None or r.get("ort") is None:
                continue
            good = r["top1"] >= r["ort"] - WITHIN
            ok &= good
            parts.append(f"{res['model']} {c}: {_pct(r['top1'])} vs {_pct(r['ort'])}")
    out.append(
        "2. **w8a8 per-channel PTQ is within 1 point of ONNX Runtime's quantizer with the same "
        "calibrator, or better.** ONNX Runtime's column uses ORT's own calibrator "
        "(`create_calibrator` with the options named, its ranges handed to `quantize_static` "
        "as a calibration cache: `quantize_static` does not forward `num_bins`, and reads the "
        "percentile only as `CalibPercentile`, so a 512-bin entropy asked of it is its 128-bin "
        "default, and every percentile 99.999). ORT's entropy calibrator is our `entropy_ort` "
        "(128 bins, ORT's default: the one candidate is the whole range, i.e. min/max) and "
        "`entropy_ort:512`; their ranges equal ORT's on every tensor of the classifier "
        "(tests/test_calibrate_real.py). TensorRT's recipe (`entropy_trt`, and `entropy` with "
        "its re-binning) is a different calibrator that ORT does not offer. "
        f"{'; '.join(parts)}. {_verdict(ok)} ONNX Runtime has no MSE "
        "calibrator; ours is checked against numpy's quantize-dequantize MSE in "
        "tests/test_calibrate.py.\n"
    )
    # 3. entropy explained
    parts, collapsed = [], []
    for res in results:
        mm = _get(res, "ptq", "w8a8", "minmax")["top1"]
        collapsed += [
            f"{res['model']} {c}"
            for c in res["entropy_explained"]
            if _get(res, "ptq", "w8a8", c)["top1"] <= mm - COLLAPSE
        ]
        for c, e in res["entropy_explained"].items():
            score = _get(res, "ptq", "w8a8", c)["top1"]
            ops = ", ".join(f"{op} {k}" for op, k in e["clipped_by_op"].items())
            only = "; ".join(
                f"only the {op} outputs clipped {_pct(v)}" for op, v in e["only_op_clipped"].items()
            )
            parts.append(
                f"{res['model']} `{c}` {_pct(score)} vs minmax {_pct(mm)} on test. Tensors it "
                f"clips to 1/{CLIP:g} of their min/max range or less, by producing operator: "
                f"{ops}; the most clipped (min/max width over its width, ONNX Runtime's "
                f"`entropy_ort:512` width over its width): "
                + ", ".join(f"{t} {r}x / {o}x" for t, r, o in e["most_clipped"][:6])
                + f". On the validation split ({e['samples']} samples; minmax "
                f"{_pct(e['minmax'])}, `{c}` {_pct(e['this'])}): {only}; the 8 most clipped "
                f"tensors back at min/max {_pct(e['top8_at_minmax'])}"
                + (
                    f"; every clipped tensor at ONNX Runtime's range {_pct(e['clipped_at_ort'])}"
                    if c != "entropy_ort:512"
                    else ""
                )
                + (
                    f"; only the {e['few_valued_clipped']} clipped tensors of at most "
                    f"{FEW_VALUES} values per sample (squeeze-excite vectors) clipped "
                    f"{_pct(e['only_few_valued_clipped'])}"
                    if e.get("only_few_valued_clipped") is not None
                    else ""
                )
            )
    out.append(
        "3. **An entropy result far below minmax, explained tensor by tensor.** The KL recipes "
        "pick each tensor's clip from its own histogram, weighing a value by how often it "
        "occurs, not by its size, and they fail in two ways here. A tensor seen through few "
        "values (a squeeze-excite squeeze or gate: one value per channel and sample) has a "
        "mostly empty histogram, so the divergence follows sampling noise and clips it, and "
        "that one clip rescales every channel of its block (accelsim's `entropy` re-bins such "
        "histograms to count/16 bins and keeps them; TensorRT's recipe and ONNX Runtime's do "
        "not). And on heavy-tailed feature maps (PP-OCRv4's hard-swish outputs and residual "
        "sums) TensorRT's divergence is smallest with about 1 % of the values clipped at a "
        "quarter of the range, although those are the largest activations; ONNX Runtime's "
        "smoothed form charges a clip more and keeps most of the range, MSE weighs the clipped "
        "values by their squared error and keeps it too. "
        + "; ".join(parts)
        + f". {_verdict(bool(collapsed))} (an entropy calibrator at least "
        f"{COLLAPSE * 100:.0f} points below minmax: {', '.join(collapsed) or 'none'})\n"
    )
    # 4. per-tensor vs per-channel
    parts, gaps = [], []
    for res in results:
        pc = _get(res, "ptq", "w8a8", "minmax")
        pt = _get(res, "ptq", "w8a8/per-tensor")
        gap = pc["top1"] - pt["top1"]
        gaps.append(gap)
        spread, dead, layers = weight_range_spread(res["model"])
        top = list(spread.items())[:4]
        many = sum(v >= 127 for v in spread.values())
        txt = (
            f"{res['model']}: per-channel {_pct(pc['top1'])}, per-tensor {_pct(pt['top1'])} "
            f"(ONNX Runtime {_pct(pt['ort'])}), gap {_pts(gap)} points; widest spreads of the "
            f"live channels' max |w| after BN folding: "
            + ", ".join(f"{k} {v:.0f}x" for k, v in top)
            + f" ({many} of {len(spread)} layers spread 127x or more, so per-tensor scales "
            f"round some of their live channels to zero)"
            + (f"; {dead} dead channels in {layers} layers" if dead else "")
        )
        if gap < 0.01:
            txt += (
                f"; the gap is within the test split's sampling noise (one sample is "
                f"{100 / res['samples']['test']:.2f} points)"
            )
        parts.append(txt)
    out.append(
        "4. **Per-tensor weights lose against per-channel** (whitepaper: BN folding spreads the "
        "channels' ranges; with one scale a channel whose range is k times narrower keeps "
        "127/k levels). " + "; ".join(parts) + f". {_verdict(all(g >= 0.01 for g in gaps))}\n"
    )
    # 5. 4-bit weights
    parts, ok5 = [], True
    for res in results:
        f = _get(res, "float", "fp32")["top1"]
        w4 = _get(res, "ptq", "w4a8")
        tuned = next(
            (r for r in res["rows"] if r["method"] == "tune" and "w4a8" in r["precision"]), None
        )
        t4 = res.get("tune_w4a8", {})
        cost = _step_cost(t4, lambda s: True)
        c8 = _step_cost(t4, lambda s: s["stage"] == "float")
        met = "met" if t4.get("met") else "not met: QAT is the next step"
        ok5 &= f - w4["top1"] >= PTQ4_LOSS and bool(t4.get("met"))
        parts.append(
            f"{res['model']}: float {_pct(f)}, w4a8 PTQ ({w4['calibration']}) {_pct(w4['top1'])} "
            f"({_pts(w4['top1'] - f)}); the workflow at w4a8 ({tuned['precision']}; the 1-point "
            f"budget on validation {met}) {_pct(tuned['top1'])} on test "
            f"({_pts(tuned['top1'] - f)}), latency on "
            + ", ".join(
                f"{t} {cost[t][0] * 1e3:.2f} ms vs fp32 {c8[t][0] * 1e3:.2f} ms" for t in cost
            )
        )
    out.append(
        "5. **4-bit weights: the PTQ loss, and what partial quantization recovers** (Wu et al. "
        "§6: keep the most sensitive operators in float; QAT is the step after). "
        + "; ".join(parts)
        + f". {_verdict(ok5)} (criteria: w4a8 PTQ at least {PTQ4_LOSS * 100:.0f} points below "
        "float, and the workflow meeting its budget on validation; the test split is read, "
        "not tuned on)\n"
    )
    # 6. the workflow at w8a8
    parts, ok, slower = [], True, []
    for res in results:
        f = _get(res, "float", "fp32")["top1"]
        tuned = next(r for r in res["rows"] if r["method"] == "tune" and "w8a8" in r["precision"])
        t8 = res["tune_w8a8"]
        fin = _step_cost(t8, lambda s: True)
        fp = _step_cost(t8, lambda s: s["stage"] == "float")
        u8 = _step_cost(
            t8, lambda s, c=t8["calibration"]: s["stage"] == "calibration" and s["calibration"] == c
        )
        within = tuned["top1"] >= f - WITHIN
        ok &= within
        slower += [f"{res['model']} on {t}" for t in u8 if t in fp and fp[t][0] < u8[t][0]]
        costs = "; ".join(
            f"{t}: {fin[t][0] * 1e3:.2f} ms / {fin[t][1] * 1e6:.0f} uJ (uniform w8a8 "
            f"{u8[t][0] * 1e3:.2f} ms / {u8[t][1] * 1e6:.0f} uJ, fp32 {fp[t][0] * 1e3:.2f} ms / "
            f"{fp[t][1] * 1e6:.0f} uJ)"
            for t in fin
        )
        fast = fastest_meeting(step_from_json(s) for s in t8["steps"])
        alt = ""
        if fast is not None and len(fast.high_layers) != len(t8["high_layers"]):
            c0 = fast.costs[0]
            alt = (
                f"; the fastest configuration tried that meets the budget on validation "
                f"(`--prefer fastest`) keeps {len(fast.high_layers)} operators in float: "
                f"{c0.target} {c0.latency_s * 1e3:.2f} ms"
            )
        parts.append(
            f"{res['model']}: calibrator chosen on validation {t8['calibration']} "
            f"({', '.join(f'{k} {v:.3f}' for k, v in t8['calibration_scores'].items())}); "
            f"{len(t8['high_layers'])} of {len(t8['node_precisions'])} operators in float "
            f"(sensitivity {t8.get('ranking') or '-'}, over {t8.get('candidates', 'weighted')} "
            f"operators); test {_pct(tuned['top1'])} vs float {_pct(f)} "
            f"({_pts(tuned['top1'] - f)}); {costs}{alt}"
        )
    out.append(
        "6. **Wu et al.'s workflow ends within 1 point of float** (calibrator per model on "
        "validation, then partial quantization), costed on cortex-a76 and hvx-v68 (analytic "
        f"fidelity). {'; '.join(parts)}. {_verdict(ok)}"
        + (
            f" Uniform w8a8 costs more time than fp32 for {', '.join(slower)}: these networks "
            "spend much of their time in depthwise convolutions, and the generated int8 "
            "depthwise kernels run below the fp32 ones (the default report's kernel-efficiency "
            "section gives the depthwise w8a8 / fp32 MACs per cycle per core), which the "
            "analytic model is calibrated on; that is the cost of today's kernels, not of the "
            "chip's int8 arithmetic."
            if slower
            else ""
        )
        + "\n"
    )
    return out
