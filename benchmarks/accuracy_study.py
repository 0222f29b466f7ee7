"""Accuracy study: post-training quantization, calibration methods, low bit widths,
quantization-aware training and sensitivity-based mixed precision on the digits.

    python benchmarks/accuracy_study.py [--quick] [--out reports/]

Trains `digits_cnn` (input 16x16) and `digits_mobilenet` in float (torch), then measures top-1
on the held-out test split with the reference executor -- the integer-only one for every
quantized model -- for: float; PTQ w8a8 asymmetric per-tensor, symmetric per-channel,
asymmetric per-channel; each calibration method (minmax, ema, percentile:99.99, entropy, mse)
at w8a8 per-channel; w4a8, w8a4, w4a4 PTQ; QAT at w8a8, w4a8, w4a4; mixed precision from the
sensitivity search (w4a4 with the most sensitive layers at w8a8 until the validation top-1 is
within 1 point of float). Writes `accuracy.json` (a list of {model, method, precision,
granularity, calibration, top1}), `accuracy.md` (table, setup, the whitepaper's findings checked
with the numbers) and the mixed-precision YAML files. `--quick` trains for a few epochs only
(for CI; about a minute on 2 cores). Then the real trained networks (PaddleOCR's classifier and
recognizer, `benchmarks/accuracy_real.py`): their rows join `accuracy.json` (with the metric
named) and their sections `accuracy.md`; `--real reuse` takes that part's last results.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT, ROOT / "benchmarks"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from accelsim.core.fsutil import atomic_write_text  # noqa: E402
from accelsim.core.precision import parse_precision  # noqa: E402
from accelsim.model import zoo  # noqa: E402
from accelsim.model.batch import with_batch  # noqa: E402
from accelsim.model.graph import Graph  # noqa: E402
from accelsim.model.ops import op_class  # noqa: E402
from accelsim.quant.datasets import ImageDataset, load_digits_study  # noqa: E402
from accelsim.quant.metrics import top1  # noqa: E402
from accelsim.quant.ptq import CalibrationData, quantize_graph  # noqa: E402
from accelsim.quant.qat import QATConfig, fake_quant_top1, qat  # noqa: E402
from accelsim.quant.sensitivity import greedy_mixed_precision, write_result_yaml  # noqa: E402
from accelsim.quant.train import TrainConfig, train_float  # noqa: E402
from accelsim.quant.transforms import prepare_for_quantization  # noqa: E402

MODELS = ("digits_cnn", "digits_mobilenet")
CALIBRATIONS = ("minmax", "ema", "percentile:99.99", "entropy", "mse")
CAL_BATCH = 64
KEYS = ("model", "method", "precision", "granularity", "calibration", "top1")


@dataclass(frozen=True)
class StudyConfig:
    quick: bool
    train_copies: int
    float_epochs: int
    qat_epochs: int
    float_lr: float = 3e-3
    weight_decay: float = 1e-2
    qat_lr: float = 1e-3
    seed: int = 0

    @staticmethod
    def make(quick: bool) -> StudyConfig:
        if quick:
            # two QAT epochs: after one, QAT at w4a8 was still below PTQ on digits_cnn
            return StudyConfig(True, train_copies=3, float_epochs=8, qat_epochs=2)
        return StudyConfig(False, train_copies=4, float_epochs=20, qat_epochs=5)


def _granularity(prec) -> str:
    if prec.is_float:
        return "-"
    return ("per-channel" if prec.per_channel else "per-tensor") + (
        "/sym" if prec.symmetric_weights else "/asym"
    )


def _row(
    model: str,
    method: str,
    prec_text: str,
    calibration: str,
    acc: float,
    granularity: str | None = None,
) -> dict:
    prec = parse_precision(prec_text.split("+")[0]) if not prec_text.startswith("mixed") else None
    return {
        "model": model,
        "method": method,
        "precision": prec_text,
        "granularity": granularity or (_granularity(prec) if prec else "mixed"),
        "calibration": calibration,
        "top1": round(float(acc), 4),
    }


def depthwise_range_ratios(graph: Graph) -> dict[str, float]:
    """max / min over output channels of the per-channel |w| max of every BN-folded
    depthwise conv (how unevenly per-tensor quantization spends its levels)."""
    g = prepare_for_quantization(graph)
    out = {}
    for n in g.nodes:
        if n.op == "conv2d" and op_class(g, n) == "depthwise_conv2d":
            w = np.abs(g.constants[n.inputs[1]].reshape(g.tensors[n.inputs[1]].shape[0], -1))
            r = w.max(axis=1)
            out[n.name] = float(r.max() / max(r.min(), 1e-12))
    return out


def study_model(
    name: str, data: ImageDataset, cfg: StudyConfig, out: Path, log: Callable[[str], None]
) -> tuple[list[dict], dict]:
    rows: list[dict] = []
    info: dict = {}
    g0 = zoo.build(name, seed=cfg.seed, input_size=data.x_train.shape[-1])
    t0 = time.perf_counter()
    tr = train_float(
        g0,
        data.x_train,
        data.y_train,
        TrainConfig(
            epochs=cfg.float_epochs, lr=cfg.float_lr, weight_decay=cfg.weight_decay, seed=cfg.seed
        ),
    )
    g = tr.graph
    info["train_seconds"] = round(tr.seconds, 1)
    info["train_top1"] = round(tr.history[-1]["train_top1"], 4)
    f_acc = top1(g, data.x_test, data.y_test)
    rows.append(_row(name, "float", "fp32", "-", f_acc))
    log(f"{name}: float top-1 {f_acc:.4f} (trained in {tr.seconds:.0f} s)")
    info["float_top1"] = f_acc
    info["float_graph"] = g
    info["depthwise_range_ratio"] = depthwise_range_ratios(g)

    gb = with_batch(g, CAL_BATCH)
    cal = CalibrationData(
        data.calibration_batches(CAL_BATCH),
        f"{len(data.x_calib)} training images of the digits study",
    )

    def ptq(prec: str, calibration: str = "minmax") -> float:
        r = quantize_graph(gb, parse_precision(prec), cal, calibration)
        acc = top1(r.graph, data.x_test, data.y_test)
        log(f"{name}: PTQ {prec:22s} {calibration:17s} top-1 {acc:.4f}")
        return acc

    # granularity and symmetry at 8 bits
    for prec in ("w8a8/per-tensor/asym", "w8a8/asym"):
        rows.append(_row(name, "ptq", prec, "minmax", ptq(prec)))
    # calibration methods at w8a8 symmetric per-channel (minmax is the sym per-channel row)
    for calibration in CALIBRATIONS:
        rows.append(_row(name, "ptq", "w8a8", calibration, ptq("w8a8", calibration)))
    # low bit widths (per-channel symmetric weights, minmax)
    for prec in ("w4a8", "w8a4", "w4a4"):
        rows.append(_row(name, "ptq", prec, "minmax", ptq(prec)))
    # supplementary: granularity at 4-bit weights
    rows.append(_row(name, "ptq", "w4a8/per-tensor", "minmax", ptq("w4a8/per-tensor")))

    # quantization-aware training, fine-tuning the trained float model
    info["qat_fake_quant_top1"] = {}
    for prec in ("w8a8", "w4a8", "w4a4"):
        res = qat(
            g,
            parse_precision(prec),
            data.x_train,
            data.y_train,
            cfg=QATConfig(epochs=cfg.qat_epochs, lr=cfg.qat_lr, seed=cfg.seed),
        )
        acc = top1(res.graph, data.x_test, data.y_test)
        fq = fake_quant_top1(res, data.x_test, data.y_test)
        info["qat_fake_quant_top1"][prec] = fq
        log(f"{name}: QAT {prec} top-1 {acc:.4f} (torch fake-quant {fq:.4f}, {res.seconds:.0f} s)")
        rows.append(_row(name, "qat", prec, "qat-ema", acc))

    # sensitivity analysis + partial quantization (Wu et al. 2020 §6), chosen on validation
    val_float = top1(g, data.x_val, data.y_val)
    target = val_float - 0.01
    sres = greedy_mixed_precision(
        g,
        parse_precision("w4a4"),
        cal,
        data.x_val,
        data.y_val,
        target=target,
        high=parse_precision("w8a8"),
    )
    yaml_path = out / f"{name}_mixed.yaml"
    write_result_yaml(yaml_path, sres)
    overrides = sres.precisions()
    r = quantize_graph(gb, parse_precision("w4a4"), cal, "minmax", overrides=overrides)
    acc = top1(r.graph, data.x_test, data.y_test)
    k = len(sres.kept_high)
    label = f"mixed w4a4 + {k}/{len(sres.per_layer)} layers w8a8"
    rows.append(_row(name, "ptq-mixed", label, "minmax", acc, "per-channel/sym"))
    info["mixed"] = {
        "kept_high": sres.kept_high,
        "order": sres.order,
        "per_layer": sres.per_layer,
        "val_float": val_float,
        "target": target,
        "val_score": sres.score,
        "met": sres.met,
        "yaml": yaml_path.name,
    }
    log(
        f"{name}: mixed ({k} layers at w8a8: {', '.join(sres.kept_high) or 'none'}) "
        f"top-1 {acc:.4f}; validation {sres.score:.4f} vs target {target:.4f}"
    )
    info["seconds"] = round(time.perf_counter() - t0, 1)
    return rows, info


# ---------------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------------


def _get(rows, model, method, precision, calibration="minmax") -> float:
    for r in rows:
        if (
            r["model"] == model
            and r["method"] == method
            and r["precision"] == precision
            and (calibration is None or r["calibration"] == calibration)
        ):
            return r["top1"]
    raise KeyError((model, method, precision, calibration))


def _pts(v: float) -> str:
    return f"{100 * v:+.1f}"


def findings(rows: list[dict], infos: dict) -> list[str]:
    """The whitepaper's findings, checked with the numbers (thresholds fixed up front:
    "clearly" = at least 2 points, "within about 1 point" = at most 1 point)."""
    out = []
    mb = "digits_mobilenet"
    f = _get(rows, mb, "float", "fp32", "-")
    pt = _get(rows, mb, "ptq", "w8a8/per-tensor/asym")
    pc = _get(rows, mb, "ptq", "w8a8/asym")
    pcs = _get(rows, mb, "ptq", "w8a8")
    ok = (pc - pt) >= 0.02
    ratios = infos[mb]["depthwise_range_ratio"]
    rmax = max(ratios.values()) if ratios else float("nan")
    pt4 = _get(rows, mb, "ptq", "w4a8/per-tensor")
    pc4 = _get(rows, mb, "ptq", "w4a8")
    text = (
        f"1. **Per-tensor weights lose clearly more than per-channel on the BN-folded "
        f"depthwise network** (whitepaper Table: Mobilenet-v1 0.001 vs 0.703). "
        f"digits_mobilenet w8a8 minmax: asymmetric per-tensor {pt:.4f} ({_pts(pt - f)} vs "
        f"float {f:.4f}), asymmetric per-channel {pc:.4f} ({_pts(pc - f)}), symmetric "
        f"per-channel {pcs:.4f} ({_pts(pcs - f)}). "
    )
    if ok:
        text += "**Reproduced.** "
    else:
        text += (
            "**Not reproduced at 8 bits.** Why: after BN folding the per-channel weight "
            f"ranges of the depthwise convs differ by up to {rmax:.1f}x (max/min over "
            "channels, per layer: "
            + ", ".join(f"{k} {v:.1f}x" for k, v in ratios.items())
            + "); with 255 levels the narrowest channel still keeps about "
            f"{255 / rmax:.0f} levels and the wide channels carry the signal, so per-tensor "
            "8-bit weights cost little here. The whitepaper's ImageNet MobileNets, trained "
            "far longer, have depthwise channels whose folded ranges differ by orders of "
            "magnitude, so that narrow channels round to zero. "
        )
    text += (
        f"The mechanism does show at 4-bit weights (15 levels): w4a8 per-tensor "
        f"{pt4:.4f} vs per-channel {pc4:.4f} ({_pts(pt4 - pc4)} points)."
    )
    out.append(text)

    parts, ok2 = [], True
    for m in MODELS:
        fm = _get(rows, m, "float", "fp32", "-")
        p8 = _get(rows, m, "ptq", "w8a8")
        best = max(_get(rows, m, "ptq", "w8a8", c) for c in CALIBRATIONS)
        ok2 &= abs(fm - p8) <= 0.01
        parts.append(
            f"{m}: float {fm:.4f}, w8a8 per-channel minmax {p8:.4f} "
            f"({_pts(p8 - fm)}), best calibration {best:.4f}"
        )
    out.append(
        "2. **w8a8 per-channel PTQ is within about 1 point of float** (whitepaper: "
        "within 2 %, most networks within 1 %). "
        + "; ".join(parts)
        + ". "
        + ("**Reproduced.**" if ok2 else "**Not reproduced** for at least one model.")
    )

    parts, ok3 = [], True
    for m in MODELS:
        fm = _get(rows, m, "float", "fp32", "-")
        p4 = _get(rows, m, "ptq", "w4a8")
        q4 = _get(rows, m, "qat", "w4a8", "qat-ema")
        loss = fm - p4
        rec = (q4 - p4) / loss if loss > 0 else float("nan")
        clearly = loss >= 0.02
        most = clearly and rec >= 0.5
        ok3 &= clearly and most
        parts.append(
            f"{m}: float {fm:.4f}, PTQ w4a8 {p4:.4f} ({_pts(-loss)}), QAT w4a8 "
            f"{q4:.4f} ({_pts(q4 - fm)}; recovers "
            f"{'n/a' if rec != rec else f'{100 * rec:.0f} %'} of the PTQ loss)"
        )
    why3 = ""
    if not ok3:
        worse = [
            m
            for m in MODELS
            if _get(rows, m, "qat", "w8a8", "qat-ema") < _get(rows, m, "ptq", "w8a8")
        ]
        why3 = (
            " QAT fine-tunes on the training split, which the float models already fit "
            "(final training top-1: "
            + ", ".join(f"{m} {infos[m]['train_top1']:.4f}" for m in MODELS)
            + ")."
        )
        if worse:
            why3 += (
                " Even at w8a8, where PTQ loses nothing, QAT ends below PTQ ("
                + ", ".join(
                    f"{m}: QAT {_get(rows, m, 'qat', 'w8a8', 'qat-ema'):.4f} vs "
                    f"PTQ {_get(rows, m, 'ptq', 'w8a8'):.4f}"
                    for m in worse
                )
                + "): the fine-tuning itself costs test accuracy (generalization), which "
                "caps what it can recover at 4 bits."
            )
        why3 += " The study was not re-tuned."
    out.append(
        "3. **4-bit weight PTQ loses clearly and QAT recovers most of it** (whitepaper: "
        "Mobilenet-v1 4-bit weights, PTQ ~0.001, QAT 0.65 vs 0.709 float). "
        + "; ".join(parts)
        + ". "
        + (
            "**Reproduced.**"
            if ok3
            else "**Not reproduced** for at least one model (criteria: PTQ loss >= 2 points "
            "and QAT recovering >= 50 % of it)." + why3
        )
    )

    parts, ok4 = [], True
    for m in MODELS:
        w4 = _get(rows, m, "ptq", "w4a8")
        a4 = _get(rows, m, "ptq", "w8a4")
        ok4 &= a4 < w4
        parts.append(f"{m}: w4a8 {w4:.4f}, w8a4 {a4:.4f}")
    why4 = ""
    if not ok4:
        bad = [m for m in MODELS if _get(rows, m, "ptq", "w8a4") >= _get(rows, m, "ptq", "w4a8")]
        why4 = (
            f" Where it fails ({', '.join(bad)}), 15 weight levels per output channel cost "
            "more than 15 activation levels per tensor: the finding is an empirical one about "
            "ImageNet networks, and the cause here was not isolated further (the per-layer "
            "sensitivity in the notes shows which layers dominate)."
        )
    out.append(
        "4. **4-bit activations hurt more than 4-bit weights** (PTQ, per-channel "
        "weights, minmax). "
        + "; ".join(parts)
        + ". "
        + ("**Reproduced.**" if ok4 else "**Not reproduced** for at least one model." + why4)
    )
    return out


def markdown(
    rows: list[dict], infos: dict, data: ImageDataset, cfg: StudyConfig, seconds: float
) -> str:
    lines = [
        "# Accuracy study: quantizing the digits models",
        "",
        f"Generated by `benchmarks/accuracy_study.py{' --quick' if cfg.quick else ''}` in "
        f"{seconds:.0f} s. Every quantized top-1 is computed by the integer-only reference "
        "executor (`accelsim.ref.executor.run`, gemmlowp requantization) on the held-out "
        "test split; float top-1 by the float reference executor.",
        "",
        "## Setup",
        "",
        f"- Data: {data.description}. Inputs standardized with the training mean/std.",
        f"- Models: `digits_cnn` (zoo, input_size 16) and `digits_mobilenet` (zoo), "
        f"weights initialized from seed {cfg.seed}.",
        f"- Float training: Adam, lr {cfg.float_lr:g} with cosine decay, batch 64, "
        f"{cfg.float_epochs} epochs, L2 weight decay {cfg.weight_decay:g} (none on "
        f"depthwise weights, as Howard et al. 2017 advise), seed {cfg.seed}, 1 torch thread.",
        f"- PTQ: calibration on {len(data.x_calib)} training images in batches of "
        f"{CAL_BATCH}; weights symmetric per-channel in the restricted range unless the "
        "row says otherwise, activations asymmetric per-tensor; BN folded, activations fused.",
        f"- QAT: fine-tunes the trained float model for {cfg.qat_epochs} epoch(s), Adam lr "
        f"{cfg.qat_lr:g} cosine, fake quantization with STE, BN folded with correction "
        "(frozen after half the steps), activation ranges = EMA (0.99) of min/max, "
        "activation quantization delayed for the first 10 % of the steps; the integer graph "
        "is built by `ptq.quantize_with_ranges` from the learned ranges.",
        "- Mixed: per-layer sensitivity (validation top-1 with only that layer at w4a4, "
        "the rest float), then greedily the most sensitive layers at w8a8 (the rest w4a4) "
        "until validation top-1 is within 1 point of float (Wu et al. 2020 §6).",
        "",
        "## Results (test top-1)",
        "",
        "| model | method | precision | weights | calibration | top-1 | vs float |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        f = _get(rows, r["model"], "float", "fp32", "-")
        lines.append(
            f"| {r['model']} | {r['method']} | {r['precision']} | {r['granularity']} "
            f"| {r['calibration']} | {r['top1']:.4f} | {_pts(r['top1'] - f)} |"
        )
    lines += ["", "## The whitepaper's findings, checked", ""]
    lines += [f + "\n" for f in findings(rows, infos)]
    lines += ["## Notes", ""]
    for m in MODELS:
        inf = infos[m]
        fq = ", ".join(
            f"{p} {v:.4f} (integer {_get(rows, m, 'qat', p, 'qat-ema'):.4f})"
            for p, v in inf["qat_fake_quant_top1"].items()
        )
        mx = inf["mixed"]
        lines.append(
            f"- {m}: float training {inf['train_seconds']} s, final training top-1 "
            f"{inf['train_top1']:.4f}. QAT torch fake-quant top-1: {fq}. The integer "
            "graph and the fake-quant model differ by rounding details only (TFLite's "
            "fixed-point requantization rounds twice -- SRDHM to an integer, then the "
            "rounding shift -- where fake quantization rounds once; BN folded in float64 "
            "vs float32; integer average pooling), which matters most with 4-bit "
            "activations (multipliers close to 1, small accumulators). Sensitivity order (most sensitive first): "
            f"{', '.join(mx['order'])}; kept at w8a8: "
            f"{', '.join(mx['kept_high']) or 'none'} (validation {mx['val_score']:.4f}, "
            f"target {mx['target']:.4f}, {'met' if mx['met'] else 'not met'}); "
            f"configuration in `{mx['yaml']}`."
        )
    lines.append("")
    return "\n".join(lines)


def _real_results(real: str, quick: bool, log: Callable[[str], None]) -> list[dict]:
    """The real-network part (benchmarks/accuracy_real.py): "run" it, "reuse" the results it
    last wrote to benchmarks/results/, or "skip" it."""
    import accuracy_real as ar

    if real == "skip":
        return []
    if real == "reuse":
        found = [ar.RESULTS / f"accuracy_real_{m}.json" for m in ar.SIZES]
        return [json.loads(f.read_text()) for f in found if f.is_file()]
    return ar.run(list(ar.SIZES), quick, log)


def run_study(
    quick: bool = False,
    out: str | Path = "reports",
    log: Callable[[str], None] = print,
    real: str = "run",
) -> tuple[list[dict], dict]:
    """Run the study, write the reports; returns the rows (as in accuracy.json) and per-model
    details (trained float graph, QAT fake-quant top-1, sensitivity search, ...)."""
    t0 = time.perf_counter()
    cfg = StudyConfig.make(quick)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = load_digits_study(size=16, seed=cfg.seed, train_copies=cfg.train_copies)
    rows: list[dict] = []
    infos: dict = {}
    for name in MODELS:
        r, info = study_model(name, data, cfg, out, log)
        rows += r
        infos[name] = info
    seconds = time.perf_counter() - t0
    reals = _real_results(real, quick, log)
    text = markdown(rows, infos, data, cfg, seconds)
    if reals:
        import accuracy_real as ar

        rows += [r for res in reals for r in res["rows"]]
        text += "\n" + ar.markdown(reals)
    atomic_write_text(out / "accuracy.json", json.dumps(rows, indent=1) + "\n")
    atomic_write_text(out / "accuracy.md", text)
    log(f"wrote {out / 'accuracy.json'} and {out / 'accuracy.md'} ({seconds:.0f} s)")
    return rows, infos


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="few epochs (CI)")
    ap.add_argument("--out", default="reports", help="output folder (default: reports/)")
    ap.add_argument(
        "--real",
        choices=("run", "reuse", "skip"),
        default="run",
        help="the real-network part (benchmarks/accuracy_real.py, about an hour): run it, "
        "reuse its last results from benchmarks/results/, or skip it",
    )
    args = ap.parse_args(argv)
    run_study(args.quick, args.out, real=args.real)
    return 0


if __name__ == "__main__":
    sys.exit(main())
