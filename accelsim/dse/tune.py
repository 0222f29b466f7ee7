"""Wu et al.'s post-training workflow (Wu et al. 2020, "Integer Quantization for Deep Learning
Inference", section 6) as one entry point, with every step costed on the chosen targets.

`tune(graph, calibration, x_val, metric, ...)` on a float model:

1. the float model's score on the validation samples (and its cost, fp32);
2. calibration: PTQ at `precision` with each of `calibrators`, each scored on validation; the
   best is kept (ties go to the earlier one in the list);
3. partial quantization, when the best calibrated model is more than `max_drop` below float:
   the candidate operators (`candidates="all"`: every operator that computes a quantized
   tensor the score depends on, elementwise and attention arithmetic included; `"weighted"`:
   only conv2d / dense, Wu et al.'s layers) are ranked by sensitivity on
   `sensitivity_samples` of the validation samples, and the most sensitive ones are moved to
   `high` (fp32 by default: Wu et al.'s partial quantization; or a 16-bit precision): a
   bisection for the fewest with validation within the budget, assuming more high operators
   never score worse (each tried count is a recorded step). `prefer="fewest"` keeps that
   count (Wu et al.); `"fastest"` keeps, of the counts tried that meet the budget, the one
   with the lowest latency on the first target (the fewest high operators on a tie):
   scattered float operators cost a conversion at every boundary, so fewer can be slower.
   The whole ranking at `high` ends it when nothing meets the budget.
   Two rankings (`ranking`):
   - "measured": the score, then the output SNR against float as the tie-break, with only
     that operator quantized at `precision` and everything else float (one network run per
     candidate: Wu et al.'s single-layer sensitivity);
   - "local": the operator's local quantization SNR (`accelsim.quant.sensitivity.local_snr`:
     run alone on the float model's own inputs, its output against float's; one pass for all
     candidates), lowest first. "auto" measures while that costs at most
     `MEASURED_RUNS` single-sample runs and ranks locally beyond;
4. quantization-aware training is the next step when the budget still does not hold; it needs
   a torch model (`accelsim.quant.qat`) and is not run here: the result says so.

Every step's graph is costed on each target (`accelsim.backends.simulate`, per node at the
precision its operands carry, so a mixed graph is costed layer by layer) and recorded with its
score. Everything returned is a frozen data class with `to_json()`; `log` receives one line per
step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from accelsim.core.errors import InputError
from accelsim.core.precision import Precision, parse_precision
from accelsim.core.target import Target, load_target
from accelsim.dse.mixed_search import _jsonable
from accelsim.model.graph import Graph
from accelsim.model.ops import OPS
from accelsim.quant.calibrate import make_calibrator
from accelsim.quant.metrics import Metric, evaluate, output_snr_db, score_tensor, scores
from accelsim.quant.ptq import (
    CalibrationData,
    assign_precisions,
    calibrate_ranges,
    quantize_with_ranges,
)
from accelsim.quant.sensitivity import local_snr
from accelsim.quant.transforms import prepare_for_quantization

DEFAULT_CALIBRATORS = ("minmax", "percentile:99.99", "percentile:99.999", "entropy", "mse")
FP32 = parse_precision("fp32")
_WEIGHTED = ("conv2d", "dense")
CANDIDATES = ("all", "weighted")
PREFER = ("fewest", "fastest")
RANKINGS = ("auto", "measured", "local")
# "auto" ranking: measured sensitivity while candidates x samples stays within this many
# single-sample network runs (the PP-OCRv4 recognizer's 244 operators on 8 samples, 1952 runs,
# take about 12 minutes here and rank far better than the local SNR: 61 operators in float
# meet the budget where the local ranking needs 185)
MEASURED_RUNS = 4096


@dataclass(frozen=True)
class StepCost:
    target: str
    fidelity: str
    latency_s: float
    energy_j: float


@dataclass(frozen=True)
class TuneStep:
    stage: str  # "float", "calibration", "partial", "chosen" (a partial step repeated last)
    precision: str  # the base precision ("fp32" for the float model)
    calibration: str
    high: str  # precision of the layers kept high ("" when none)
    high_layers: tuple[str, ...]
    score: float
    drop: float  # float score - score
    meets_budget: bool
    costs: tuple[StepCost, ...]
    note: str = ""

    def cost(self, target: str) -> StepCost | None:
        return next((c for c in self.costs if c.target == target), None)


@dataclass(frozen=True)
class TuneResult:
    model: str
    metric: str
    validation_samples: int
    sensitivity_samples: int
    ranking: str  # "measured" or "local" ("" when no ranking was needed)
    candidates: str  # "all" or "weighted"
    prefer: str  # "fewest" or "fastest"
    precision: str
    high: str
    max_drop: float
    float_score: float
    calibration: str  # the calibrator chosen
    calibration_scores: Mapping[str, float]
    # (operator, score with only it quantized (nan when ranked locally), SNR dB), most first
    sensitivity: tuple[tuple[str, float, float], ...]
    high_layers: tuple[str, ...]
    score: float
    met: bool
    steps: tuple[TuneStep, ...]
    node_precisions: Mapping[str, str] = field(default_factory=dict)
    next_step: str = ""
    min_score: float | None = None  # the budget as an absolute score, when given instead

    @property
    def budget(self) -> str:
        if self.min_score is not None:
            return f"{self.metric} >= {self.min_score:g}"
        return f"at most {self.max_drop:g} below float"

    @property
    def final(self) -> TuneStep:
        return self.steps[-1] if self.met else max(self.steps[1:], key=lambda s: s.score)

    def to_json(self) -> dict:
        return _jsonable(asdict(self))


def _targets(targets: Sequence[str | Target]) -> list[Target]:
    return [t if isinstance(t, Target) else load_target(str(t)) for t in targets]


def tune(
    graph: Graph,
    calibration: CalibrationData,
    x_val: np.ndarray,
    metric: Metric,
    *,
    precision: str | Precision = "w8a8",
    calibrators: Sequence[str] = DEFAULT_CALIBRATORS,
    max_drop: float = 0.01,
    min_score: float | None = None,
    high: str | Precision = "fp32",
    targets: Sequence[str | Target] = ("cortex-a76",),
    fidelity: str | None = "analytic",
    sensitivity_samples: int | None = None,
    candidates: str = "all",
    ranking: str = "auto",
    prefer: str = "fewest",
    batch_size: int = 16,
    log: Callable[[str], None] | None = None,
) -> TuneResult:
    """Wu et al.'s workflow on a float `graph` (see the module docstring). `metric` scores the
    model's outputs on `x_val` (higher better); `max_drop` is in the metric's units (0.01 = one
    point of top-1). `min_score` is the budget as an absolute score instead (e.g. an output SNR
    in dB, where a drop from float's own SNR means nothing)."""
    say = log or (lambda _m: None)
    p = parse_precision(precision) if isinstance(precision, str) else precision
    hi = parse_precision(high) if isinstance(high, str) else high
    if graph.is_quantized:
        raise InputError(f"model '{graph.name}' is already quantized; tune starts from float")
    if p.is_float:
        raise InputError(f"precision {p}: tune quantizes, give an integer precision (e.g. w8a8)")
    if not calibrators:
        raise InputError("calibrators: expected at least one (e.g. minmax, entropy, mse)")
    for c in calibrators:
        make_calibrator(c)  # a bad spec fails before any work
    if not (math.isfinite(max_drop) and max_drop >= 0):
        raise InputError(f"max_drop: expected a finite drop >= 0, found {max_drop}")
    if min_score is not None and not math.isfinite(min_score):
        raise InputError(f"min_score: expected a finite score, found {min_score}")
    if candidates not in CANDIDATES:
        raise InputError(
            f"candidates: expected one of {', '.join(CANDIDATES)}, found {candidates!r}"
        )
    if prefer not in PREFER:
        raise InputError(f"prefer: expected one of {', '.join(PREFER)}, found {prefer!r}")
    if ranking not in RANKINGS:
        raise InputError(f"ranking: expected one of {', '.join(RANKINGS)}, found {ranking!r}")
    if not calibration.samples:
        raise InputError("calibration data: no samples")
    x_val = np.asarray(x_val)
    if len(x_val) == 0:
        raise InputError("validation data: no samples")
    tgts = _targets(targets)
    for t in tgts:
        t.check_precision(p)
        if not hi.is_float:
            t.check_precision(hi)

    prepared = prepare_for_quantization(graph)
    steps: list[TuneStep] = []

    def costs_of(q: Graph) -> tuple[StepCost, ...]:
        return _costs(q, tgts, fidelity)

    def record(stage, q, score, calib, high_layers=(), note="") -> TuneStep:
        drop = float_score - score if steps else 0.0
        step = TuneStep(
            stage,
            str(p) if stage != "float" else "fp32",
            calib,
            str(hi) if high_layers else "",
            tuple(high_layers),
            float(score),
            float(drop),
            bool(drop <= max_drop + 1e-12 if min_score is None else score >= min_score),
            costs_of(q),
            note,
        )
        steps.append(step)
        cost = ", ".join(
            f"{c.target} {c.latency_s * 1e3:.3f} ms {c.energy_j * 1e6:.1f} uJ" for c in step.costs
        )
        say(
            f"{stage:<11} {calib or '-':<18} high {len(high_layers):>3}: {metric.name} "
            f"{score:.4f} (drop {drop:+.4f}) {cost}"
        )
        return step

    float_scores = scores(prepared, x_val, batch_size)
    float_score = float(metric(float_scores))
    record("float", prepared, float_score, "")

    # 2. calibration, per model
    ranges_by: dict[str, Mapping[str, tuple[float, float]]] = {}
    cal_scores: dict[str, float] = {}
    uniform = assign_precisions(prepared, p)
    best = None
    for c in calibrators:
        ranges_by[c] = calibrate_ranges(prepared, calibration, c, uniform)
        q = quantize_with_ranges(prepared, uniform, ranges_by[c])
        cal_scores[c] = float(evaluate(q, x_val, metric, batch_size))
        step = record("calibration", q, cal_scores[c], c)
        if best is None or step.score > best.score:
            best = step
    assert best is not None
    chosen = best.calibration
    ranges = ranges_by[chosen]
    say(f"calibration chosen: {chosen} ({metric.name} {best.score:.4f})")

    sensitivity: tuple[tuple[str, float, float], ...] = ()
    high_layers: tuple[str, ...] = ()
    final = best
    cands = _candidates(prepared, candidates)
    how = ""
    if not best.meets_budget:
        # 3. partial quantization: rank operators, then the most sensitive ones go high
        ns = len(x_val) if sensitivity_samples is None else min(sensitivity_samples, len(x_val))
        xs, ref = x_val[:ns], float_scores[:ns]
        how = ranking
        if how == "auto":
            how = "measured" if len(cands) * ns <= MEASURED_RUNS else "local"
        rows = []
        if how == "measured":
            for name in cands:
                q = quantize_with_ranges(prepared, {**_all(prepared, FP32), name: p}, ranges)
                s = scores(q, xs, batch_size)
                rows.append((name, float(metric_on(metric, s, ns)), output_snr_db(ref, s)))
            sensitivity = tuple(sorted(rows, key=lambda r: (r[1], r[2])))
        else:
            snr = local_snr(prepared, quantize_with_ranges(prepared, uniform, ranges), xs)
            rows = [(n, math.nan, snr[n]) for n in cands if n in snr and math.isfinite(snr[n])]
            sensitivity = tuple(sorted(rows, key=lambda r: r[2]))
        say(
            f"sensitivity ({how}, {len(sensitivity)} operators, most first): "
            + ", ".join(
                f"{n} {s:.3f} ({d:.1f} dB)" if how == "measured" else f"{n} {d:.1f} dB"
                for n, s, d in sensitivity[:40]
            )
        )
        order = [r[0] for r in sensitivity]
        tried: dict[int, TuneStep] = {}

        def try_k(k: int) -> TuneStep:
            if k not in tried:
                kept = order[:k]
                prec = {**uniform, **{n: hi for n in kept}}
                q = quantize_with_ranges(prepared, prec, ranges)
                s = float(evaluate(q, x_val, metric, batch_size))
                tried[k] = record("partial", q, s, chosen, kept)
            return tried[k]

        lo_k, hi_k = 0, len(order)
        top = try_k(hi_k)
        if top.meets_budget:
            while hi_k - lo_k > 1:  # smallest k that meets the budget (k = 0 did not)
                mid = (lo_k + hi_k) // 2
                if try_k(mid).meets_budget:
                    hi_k = mid
                else:
                    lo_k = mid
            if prefer == "fewest":
                final = try_k(hi_k)
            else:  # a few float operators between integer ones can cost more than many in
                # runs (every boundary converts), so the fewest is not always the fastest
                final = fastest_meeting(tried.values()) or try_k(hi_k)
        else:
            final = top
        high_layers = final.high_layers
        if final is not steps[-1]:  # the chosen configuration is the last step
            final = replace(final, stage="chosen")
            steps.append(final)
    node_prec = {n: str(hi if n in high_layers else p) for n in cands}
    nxt = (
        ""
        if final.meets_budget
        else (
            "quantization-aware training (accelsim.quant.qat) on a torch model of the network; "
            "not run here"
        )
    )
    return TuneResult(
        model=graph.name,
        metric=metric.name,
        validation_samples=len(x_val),
        sensitivity_samples=0
        if not sensitivity
        else min(sensitivity_samples or len(x_val), len(x_val)),
        ranking=how,
        candidates=candidates,
        prefer=prefer,
        precision=str(p),
        high=str(hi),
        max_drop=float(max_drop),
        float_score=float_score,
        calibration=chosen,
        calibration_scores=cal_scores,
        sensitivity=sensitivity,
        high_layers=high_layers,
        score=final.score,
        met=final.meets_budget,
        steps=tuple(steps),
        node_precisions=node_prec,
        next_step=nxt,
        min_score=min_score,
    )


def _costs(q: Graph, tgts: Sequence[Target], fidelity: str | None) -> tuple[StepCost, ...]:
    """Latency and energy of the whole graph `q` on each target."""
    from accelsim.backends import fidelity_of, simulate
    from accelsim.model.quantization import graph_precision

    prec = graph_precision(q)
    out = []
    for t in tgts:
        per = simulate(q, t, prec, fidelity)
        out.append(
            StepCost(
                t.name,
                fidelity_of(t, fidelity),
                float(sum(c.latency_s for c in per)),
                float(sum(c.energy_j for c in per)),
            )
        )
    return tuple(out)


def recost(
    result: Mapping,
    graph: Graph,
    calibration: CalibrationData,
    *,
    fidelity: str | None = "analytic",
    log: Callable[[str], None] | None = None,
) -> dict:
    """`result` (a `TuneResult.to_json()` of `tune` on `graph` with `calibration`) with every
    step's costs computed again, on the targets it was costed on, by the current kernels and
    target files. Each step's model is rebuilt from what the step records (its calibrator's
    ranges, its operators kept high); scores and choices are kept: with `prefer="fewest"` no
    choice of `tune` depends on a cost, so the result is what running `tune` again gives, at
    the cost of calibrating and simulating without evaluating anything."""
    say = log or (lambda _m: None)
    if result.get("prefer") != "fewest":
        raise InputError(
            f"tune result of '{result.get('model')}': prefer={result.get('prefer')!r} chose its "
            "configuration by cost; run tune again instead of re-costing it"
        )
    steps = [step_from_json(s) for s in result["steps"]]
    names = [c.target for c in steps[0].costs] if steps else []
    tgts = _targets(names)
    p, hi = parse_precision(result["precision"]), parse_precision(result["high"])
    prepared = prepare_for_quantization(graph)
    uniform = assign_precisions(prepared, p)
    ranges: dict[str, Mapping[str, tuple[float, float]]] = {}
    out = []
    for step in steps:
        if step.stage == "float":
            q = prepared
        else:
            c = step.calibration
            if c not in ranges:
                ranges[c] = calibrate_ranges(prepared, calibration, c, uniform)
            prec = {**uniform, **{n: hi for n in step.high_layers}}
            q = quantize_with_ranges(prepared, prec, ranges[c])
        costs = _costs(q, tgts, fidelity)
        for old, new in zip(step.costs, costs):
            if old.fidelity != new.fidelity:
                raise InputError(
                    f"tune result of '{result.get('model')}': step costed at fidelity "
                    f"'{old.fidelity}' on {old.target}, not '{new.fidelity}'"
                )
        say(
            f"{step.stage:<11} {step.calibration or '-':<18} high {len(step.high_layers):>3}: "
            + ", ".join(f"{c.target} {c.latency_s * 1e3:.3f} ms" for c in costs)
        )
        out.append(replace(step, costs=costs))
    return {**result, "steps": [_jsonable(asdict(s)) for s in out]}


def fastest_meeting(steps: Iterable[TuneStep]) -> TuneStep | None:
    """The partial-quantization step that met the budget at the lowest latency on the first
    target (the fewest high operators on a tie): what `prefer="fastest"` keeps."""
    meeting = [s for s in steps if s.stage == "partial" and s.meets_budget]
    return min(
        meeting,
        key=lambda s: (s.costs[0].latency_s if s.costs else 0.0, len(s.high_layers)),
        default=None,
    )


def step_from_json(d: Mapping) -> TuneStep:
    """A `TuneStep` back from its `to_json()` form."""
    return TuneStep(
        **{
            **d,
            "high_layers": tuple(d["high_layers"]),
            "costs": tuple(StepCost(**c) for c in d["costs"]),
        }
    )


def _candidates(prepared: Graph, which: str) -> list[str]:
    """The operators partial quantization may move high, in graph order: conv2d / dense
    ("weighted"), or every operator with an integer kernel of its own (`OpDef.quant == "int"`:
    linear layers, elementwise arithmetic, lookup tables, pooling, softmax) that computes a
    tensor the score depends on ("all"). Data movement shares its input's parameters and
    float-only operators are float already: moving them would change nothing."""
    if which == "weighted":
        return [n.name for n in prepared.nodes if n.op in _WEIGHTED]
    needed, todo = set(), [score_tensor(prepared)]
    while todo:  # the tensors the score is computed from
        t = todo.pop()
        if t in needed:
            continue
        needed.add(t)
        prod = prepared.producer(t)
        if prod is not None:
            todo.extend(i for i in prod.inputs if i)
    return [
        n.name
        for n in prepared.nodes
        if n.op in OPS
        and OPS[n.op].quant == "int"
        and any(o in needed for o in n.outputs)
        and not all(prepared.is_constant(i) for i in n.inputs if i)
    ]


def _all(graph: Graph, p: Precision) -> dict[str, Precision]:
    return {n.name: p for n in graph.nodes}


def metric_on(metric: Metric, s: np.ndarray, n: int) -> float:
    """`metric` on the first `n` samples' scores (label metrics hold every sample's label)."""
    labels = getattr(metric, "labels", None)
    if labels is None or len(labels) == n:
        return metric(s)
    return replace(metric, labels=labels[:n])(s)  # type: ignore[type-var]


def format_result(result: TuneResult, per_unit: float = 100.0) -> str:
    """Every step's score and cost, one line each; `per_unit` scales the metric for display
    (100: a fraction shown in points; 1: a metric already in its unit, such as dB)."""
    unit = "%" if per_unit == 100.0 else ""
    targets = [c.target for c in result.steps[0].costs]
    head = f"{'step':<12}{'calibration':<20}{'high':>5}{result.metric:>12}{'drop':>9}"
    head += "".join(f"{t + ' ms':>16}{'uJ':>10}" for t in targets)
    budget = (
        f"{result.metric} >= {result.min_score * per_unit:g}{unit}"
        if result.min_score is not None
        else f"{result.max_drop * per_unit:g}{unit} below float"
    )
    lines = [
        f"{result.model}: {result.precision}, budget {budget}, high layers at {result.high}",
        head,
    ]
    for s in result.steps:
        row = (
            f"{s.stage:<12}{s.calibration or '-':<20}{len(s.high_layers):>5}"
            f"{s.score * per_unit:>11.2f}{unit or ' '}{s.drop * per_unit:>8.2f}{unit or ' '}"
        )
        row += "".join(f"{c.latency_s * 1e3:>16.3f}{c.energy_j * 1e6:>10.1f}" for c in s.costs)
        lines.append(row)
    verdict = (
        "meets the budget" if result.met else f"does NOT meet the budget; next: {result.next_step}"
    )
    lines.append(
        f"chosen: {result.calibration}, {len(result.high_layers)} layer(s) at {result.high}: "
        f"{result.metric} {result.score * per_unit:.2f}{unit} (float "
        f"{result.float_score * per_unit:.2f}{unit}); {verdict}"
    )
    return "\n".join(lines)


def write_outputs(result: TuneResult, out_dir: str | Path) -> list[Path]:
    """`<model>_tune.json` (every step) and `<model>_tune_mixed.yaml`, the chosen per-layer
    precisions as a `--mixed` file (layer names of the BN-folded graph, as quantize uses)."""
    import json

    from accelsim.core.fsutil import atomic_write_text, safe_name
    from accelsim.quant.mixed import write_mixed

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = safe_name(result.model, "model")
    json_path, yaml_path = out / f"{stem}_tune.json", out / f"{stem}_tune_mixed.yaml"
    per_node = {n: parse_precision(p) for n, p in result.node_precisions.items()}
    comment = (
        f"accelsim tune: {result.model}, {result.calibration} calibration, "
        f"{len(result.high_layers)} layer(s) at {result.high}; {result.metric} "
        f"{result.score:.4f} (float {result.float_score:.4f}); "
        f"{'meets' if result.met else 'DOES NOT meet'} the budget"
    )
    if result.high_layers:
        write_mixed(yaml_path, parse_precision(result.precision), per_node, comment)
    else:  # one precision everywhere: a rule for every layer says so
        atomic_write_text(
            yaml_path,
            f'# {comment}\ndefault: {result.precision}\nlayers:\n  "*": {result.precision}\n',
        )
    atomic_write_text(json_path, json.dumps(result.to_json(), indent=1) + "\n")
    return [json_path, yaml_path]
