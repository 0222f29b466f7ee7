"""Mixed-precision search: per-layer precisions that minimise latency or energy on a target
under an accuracy budget, verified by quantizing and measuring the result.

The model (a multiple-choice knapsack):
* cost: every node of the graph belongs to one weighted layer (conv2d / dense of the prepared
  graph): its own, else the layer that produces its first activation input, else (graph-input
  quantize, weight dequantize) the layer that consumes its output. A layer's cost at precision
  p is the summed cost of its group's nodes in the graph quantized *uniformly* at p
  (`accelsim.backends.simulate`). ASSUMPTION (additive cost): in a mixed graph a tensor
  between layers at different activation widths takes the wider one (`ptq`: a layer kept at 8
  bits computes with 8-bit inputs), so a narrow layer after a wide one costs somewhat more
  than predicted; the mixed graph is therefore also simulated as a whole and both totals are
  reported. Non-weighted nodes are quantized at their group's precision, so the verified
  graph is the one the model describes.
* accuracy loss of layer L at p: the score with only L quantized at p and every other node
  float (`accelsim.quant.sensitivity.layer_sensitivity`). top-1: the drop in correctly
  classified samples vs the float model, clamped at 0 (a single-layer gain on a few hundred
  images is noise and must not pay for another layer's loss); without labels: the output
  noise-to-signal power ratio 10^(-SNR/10), which adds when the layers' quantization errors
  are independent (so a minimum SNR in dB becomes a maximum summed noise ratio).
* search: the exact minimum-cost assignment with summed loss <= budget, by dynamic
  programming over layers keeping the Pareto front of (loss, cost) partial sums (a partial
  assignment dominated in both loss and cost can never complete to a better one).
* verify: quantize with the chosen precisions and measure with the reference executor. While
  the measured loss exceeds the budget (the additive model is an approximation), re-solve with a
  smaller model budget: min(predicted - 1 unit, predicted x budget / measured), strictly below
  the last prediction, so the loop ends. Every step is recorded. Uniform precisions whose
  measured loss meets the budget are costed too; a cheaper one than the verified mixed
  assignment is taken (and recorded), so the answer never costs more than the best uniform one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from accelsim.core.errors import AccelsimError, InputError
from accelsim.core.fsutil import atomic_write_text, inside
from accelsim.core.precision import Precision
from accelsim.core.target import Target
from accelsim.model.batch import with_batch
from accelsim.model.graph import Graph
from accelsim.quant.mixed import write_mixed
from accelsim.quant.ptq import CalibrationData, quantize_graph
from accelsim.quant.sensitivity import FP32, _Evaluator

OBJECTIVES = {"latency": "latency_s", "energy": "energy_j"}
_WEIGHTED = ("conv2d", "dense")
_TOL = 1e-12


# ---------------------------------------------------------------------------------------------
# The budget
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccuracyBudget:
    """Either `max_drop` (top-1 percentage points below the float model; needs labels) or
    `min_snr_db` (output SNR against the float model, dB; labels not needed)."""

    max_drop: float | None = None
    min_snr_db: float | None = None

    def check(self, labelled: bool) -> str:
        """The metric ("top1" or "snr_db"), or an InputError naming the bad option."""
        if self.min_snr_db is not None:
            if not math.isfinite(self.min_snr_db):
                raise InputError(
                    f"--min-snr-db: expected a finite number of dB, found {self.min_snr_db}"
                )
            return "snr_db"
        if self.max_drop is None:
            raise InputError("accuracy budget: give --max-drop (top-1 points) or --min-snr-db")
        if not math.isfinite(self.max_drop) or self.max_drop < 0:
            raise InputError(
                f"--max-drop: expected a top-1 drop >= 0 percentage points, found {self.max_drop}"
            )
        if not labelled:
            raise InputError(
                "--max-drop needs labelled data (--calib-dataset digits); without "
                "labels use --min-snr-db"
            )
        return "top1"

    def __str__(self) -> str:
        if self.min_snr_db is not None:
            return f"output SNR >= {self.min_snr_db:g} dB vs float"
        return f"top-1 drop <= {self.max_drop:g} points vs float"


# ---------------------------------------------------------------------------------------------
# Exact solver (multiple-choice knapsack)
# ---------------------------------------------------------------------------------------------


def solve_mckp(
    options: Sequence[Sequence[tuple[float, float]]], budget: float
) -> tuple[int, ...] | None:
    """Indices (one per group) minimising summed cost with summed loss <= budget; None when
    no assignment fits. `options[i][j]` is (cost, loss) of choice j for group i. Ties in cost
    go to the lower loss, then to the lexicographically smallest choice."""
    front: list[tuple[float, float, tuple[int, ...]]] = [(0.0, 0.0, ())]  # (loss, cost, picks)
    for opts in options:
        if not opts:
            raise ValueError("solve_mckp: a group without options")
        cand = [
            (lo + ol, co + oc, picks + (j,))
            for lo, co, picks in front
            for j, (oc, ol) in enumerate(opts)
            if lo + ol <= budget + _TOL
        ]
        if not cand:
            return None
        cand.sort()
        front, best = [], math.inf
        for t in cand:  # Pareto front: keep a point only if cheaper than every lower-loss one
            if t[1] < best:
                front.append(t)
                best = t[1]
    return min(front, key=lambda t: (t[1], t[0], t[2]))[2]


# ---------------------------------------------------------------------------------------------
# Which layer a node's cost belongs to
# ---------------------------------------------------------------------------------------------


def layer_groups(graph: Graph, layers: Sequence[str]) -> dict[str, str]:
    """node name -> owning weighted layer (see the module docstring)."""
    if not layers:
        raise InputError(f"model '{graph.name}': no conv2d / dense layer to choose a precision for")
    wanted = set(layers)
    producer = {t: n for n in graph.nodes for t in n.outputs}
    owner: dict[str, str] = {}
    for n in graph.nodes:
        if n.name in wanted:
            owner[n.name] = n.name
            continue
        for t in n.inputs:
            if t and not graph.is_constant(t) and t in producer and producer[t].name in owner:
                owner[n.name] = owner[producer[t].name]
                break
    consumers: dict[str, list[str]] = {}
    for n in graph.nodes:
        for t in n.inputs:
            if t:
                consumers.setdefault(t, []).append(n.name)
    for n in reversed(graph.nodes):
        if n.name in owner:
            continue
        after = [c for t in n.outputs for c in consumers.get(t, []) if c in owner]
        owner[n.name] = owner[after[0]] if after else layers[0]
    return owner


def _group_costs(
    costs, owner: Mapping[str, str], layers: Sequence[str], key: str
) -> dict[str, float]:
    out = {name: 0.0 for name in layers}
    for c in costs:
        out[owner[c.name]] += float(getattr(c, key))
    return out


# ---------------------------------------------------------------------------------------------
# Result
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerOption:
    layer: str
    precision: str
    cost: float  # objective (s or J) of the layer's group in the uniform graph
    score: float  # top-1 or SNR dB with only this layer quantized
    loss: float  # top-1: samples lost; snr: noise-to-signal ratio


@dataclass(frozen=True)
class Uniform:
    precision: str
    cost: float
    per_layer: Mapping[str, float]
    score: float
    meets_budget: bool


@dataclass(frozen=True)
class SearchStep:
    action: str  # "solve", "tighten", "fallback", "uniform"
    model_budget: float  # budget given to the additive model (loss units)
    assignment: Mapping[str, str]
    predicted_loss: float
    predicted_cost: float
    measured_score: float
    measured_loss: float
    simulated_cost: float | None
    meets_budget: bool
    note: str = ""


@dataclass(frozen=True)
class MixedSearchResult:
    model: str
    target: str
    objective: str  # "latency" or "energy"
    unit: str  # "s" or "J"
    fidelity: str
    metric: str  # "top1" or "snr_db"
    budget: str
    budget_loss: float  # the budget in loss units
    loss_unit: str
    eval_samples: int
    float_score: float
    candidates: tuple[str, ...]
    layers: tuple[str, ...]
    options: tuple[LayerOption, ...]
    assignment: Mapping[str, str]  # weighted layer -> precision
    node_precisions: Mapping[str, str]  # every node of the prepared graph -> precision
    predicted_score: float
    predicted_cost: float
    per_layer_predicted: Mapping[str, float]
    measured_score: float
    simulated_cost: float | None  # the mixed graph simulated as a whole
    per_layer_simulated: Mapping[str, float]
    uniform: tuple[Uniform, ...]
    steps: tuple[SearchStep, ...]
    met: bool
    note: str = ""

    def to_json(self) -> dict:
        d = asdict(self)
        d["assignment"] = dict(self.assignment)
        return _jsonable(d)


def _jsonable(v):
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


# ---------------------------------------------------------------------------------------------
# The search
# ---------------------------------------------------------------------------------------------


def check_inputs(
    target: Target,
    candidates: Sequence[Precision],
    objective: str,
    budget: AccuracyBudget,
    labelled: bool,
) -> str:
    """Every check that needs no work; returns the metric."""
    if objective not in OBJECTIVES:
        raise InputError(f"--objective {objective}: expected one of {', '.join(OBJECTIVES)}")
    if not candidates:
        raise InputError("--precisions: expected at least one candidate precision")
    for p in candidates:
        target.check_precision(p)
    return budget.check(labelled)


def mixed_search(
    graph: Graph,
    target: Target,
    candidates: Sequence[Precision],
    objective: str,
    budget: AccuracyBudget,
    data: CalibrationData,
    x: np.ndarray,
    y: np.ndarray | None = None,
    calibration: str = "minmax",
    fidelity: str | None = None,
    batch_size: int = 256,
    log: Callable[[str], None] | None = None,
) -> MixedSearchResult:
    """Per-layer precisions from `candidates` minimising `objective` on `target` within
    `budget`, measured on (x, y) (top-1) or on x against the float model (SNR)."""
    from accelsim.backends import fidelity_of, simulate

    candidates = list(dict.fromkeys(candidates))
    metric = check_inputs(target, candidates, objective, budget, y is not None)
    fid_label = fidelity_of(target, fidelity)
    key = OBJECTIVES[objective]
    say = log or (lambda _m: None)
    ev = _Evaluator(graph, data, calibration, x, y, batch_size)
    prepared = ev.prepared
    layers = [n.name for n in prepared.nodes if n.op in _WEIGHTED]
    node_owner = layer_groups(prepared, layers)
    model_batch = graph.tensors[graph.inputs[0]].shape[0]
    n_eval = len(x)

    if metric == "top1":
        float_score = float(ev.score(FP32, {}))
        budget_loss = math.floor(budget.max_drop / 100.0 * n_eval + 1e-9)
        loss_unit = f"samples of {n_eval}"
        unit_step = 1.0

        def loss_of(score: float) -> float:
            return float(max(0, round((float_score - score) * n_eval)))
    else:
        float_score = math.inf
        budget_loss = 10.0 ** (-budget.min_snr_db / 10.0)
        loss_unit = "noise/signal power"
        unit_step = 0.0

        def loss_of(score: float) -> float:
            return 0.0 if score == math.inf else float(10.0 ** (-score / 10.0))

    def mixed_graph(node_prec: Mapping[str, Precision]) -> Graph:
        base = candidates[0]
        q = quantize_graph(
            prepared, base, data, calibration, overrides=dict(node_prec), prepared=True
        ).graph
        return q

    def simulate_costs(q: Graph, prec: Precision):
        return simulate(with_batch(q, model_batch), target, prec, fidelity)

    # cost and measured score of every uniform precision
    say(f"costing {len(candidates)} uniform precision(s) on {target.name} ({fid_label})")
    per_prec_cost: dict[str, dict[str, float]] = {}
    uniform: list[Uniform] = []
    for p in candidates:
        q = mixed_graph({n: p for n in node_owner})
        costs = simulate_costs(q, p)
        owner = layer_groups(q, layers)
        per_layer = _group_costs(costs, owner, layers, key)
        per_prec_cost[str(p)] = per_layer
        score = float(ev.score_graph(q))
        uniform.append(
            Uniform(
                str(p),
                sum(per_layer.values()),
                per_layer,
                score,
                bool(loss_of(score) <= budget_loss + _TOL),
            )
        )
        say(f"  uniform {p}: {objective} {sum(per_layer.values()):.4g}, {metric} {score:.4f}")

    # single-layer sensitivity per candidate
    say(f"sensitivity: {len(layers)} layer(s) x {len(candidates)} precision(s)")
    options: list[LayerOption] = []
    table: list[list[tuple[float, float]]] = [[] for _ in layers]
    for p in candidates:
        for i, name in enumerate(layers):
            s = float(ev.score(FP32, {name: p}))
            opt = LayerOption(name, str(p), per_prec_cost[str(p)][name], s, loss_of(s))
            options.append(opt)
            table[i].append((opt.cost, opt.loss))
    by_name = {str(p): p for p in candidates}

    def node_precisions(picks: Sequence[int]) -> dict[str, Precision]:
        chosen = {name: candidates[j] for name, j in zip(layers, picks)}
        return {n: chosen[o] for n, o in node_owner.items()}

    steps: list[SearchStep] = []
    measured: dict[tuple[int, ...], tuple[float, float | None, dict[str, float], str]] = {}

    def verify(
        picks: tuple[int, ...], action: str, model_budget: float, note: str = ""
    ) -> SearchStep:
        if picks not in measured:
            node_prec = node_precisions(picks)
            q = mixed_graph(node_prec)
            score = float(ev.score_graph(q))
            widest = max(
                (candidates[j] for j in picks),
                key=lambda p: (p.weight_bits or 32) + (p.act_bits or 32),
            )
            sim_note = ""
            try:
                costs = simulate_costs(q, widest)
                per = _group_costs(costs, layer_groups(q, layers), layers, key)
                total: float | None = sum(per.values())
            except (AccelsimError, KeyError) as exc:  # a width pairing the target lacks
                per, total = {}, None
                sim_note = f"mixed graph not simulated: {exc}"
            measured[picks] = (score, total, per, sim_note)
        score, total, _per, sim_note = measured[picks]
        pred_loss = sum(table[i][j][1] for i, j in enumerate(picks))
        pred_cost = sum(table[i][j][0] for i, j in enumerate(picks))
        step = SearchStep(
            action,
            model_budget,
            {name: str(candidates[j]) for name, j in zip(layers, picks)},
            pred_loss,
            pred_cost,
            score,
            loss_of(score),
            total,
            bool(loss_of(score) <= budget_loss + _TOL),
            "; ".join(s for s in (note, sim_note) if s),
        )
        steps.append(step)
        say(
            f"  {action}: model budget {model_budget:.4g} -> predicted loss {pred_loss:.4g}, "
            f"measured {metric} {score:.4f} (loss {step.measured_loss:.4g}, budget "
            f"{budget_loss:.4g}) {'ok' if step.meets_budget else 'over budget'}"
        )
        return step

    # solve, verify, tighten
    model_budget = budget_loss
    action = "solve"
    final: tuple[int, ...] | None = None
    while True:
        picks = solve_mckp(table, model_budget)
        if picks is None:
            break
        step = verify(picks, action, model_budget)
        if step.meets_budget:
            final = picks
            break
        shrink = (
            step.predicted_loss * budget_loss / step.measured_loss
            if step.measured_loss > 0
            else 0.0
        )
        model_budget = min(step.predicted_loss - (unit_step or step.predicted_loss * 1e-3), shrink)
        action = "tighten"
        if model_budget < 0 or model_budget >= step.predicted_loss:  # nothing lower to try
            break
    if final is None:  # the most accurate assignment the candidates allow
        picks = tuple(
            min(range(len(candidates)), key=lambda j: (row[j][1], row[j][0])) for row in table
        )
        step = verify(
            picks,
            "fallback",
            math.nan,
            "no assignment within the tightened model budget; every layer at its "
            "lowest-loss precision",
        )
        final = picks
    chosen_step = steps[-1]

    def total_cost(step: SearchStep) -> float:
        return step.simulated_cost if step.simulated_cost is not None else step.predicted_cost

    # a uniform precision that meets the budget and costs less wins
    best_u = min((u for u in uniform if u.meets_budget), key=lambda u: u.cost, default=None)
    note = ""
    if best_u is not None and (
        not chosen_step.meets_budget or best_u.cost < total_cost(chosen_step) * (1 - 1e-12)
    ):
        j = candidates.index(by_name[best_u.precision])
        final = tuple(j for _ in layers)
        why = (
            "costs less than the verified mixed assignment"
            if chosen_step.meets_budget
            else "meets the budget; no mixed assignment tried did"
        )
        chosen_step = verify(final, "uniform", math.nan, f"uniform {best_u.precision} {why}")
        note = f"uniform {best_u.precision} chosen"

    score, sim_total, sim_per, _ = measured[final]
    pred_loss = sum(table[i][j][1] for i, j in enumerate(final))
    if metric == "top1":
        predicted_score = float_score - pred_loss / n_eval
    else:
        predicted_score = math.inf if pred_loss == 0 else -10.0 * math.log10(pred_loss)
    node_prec = node_precisions(final)
    return MixedSearchResult(
        model=graph.name,
        target=target.name,
        objective=objective,
        unit="s" if objective == "latency" else "J",
        fidelity=fid_label,
        metric=metric,
        budget=str(budget),
        budget_loss=budget_loss,
        loss_unit=loss_unit,
        eval_samples=n_eval,
        float_score=float_score,
        candidates=tuple(str(p) for p in candidates),
        layers=tuple(layers),
        options=tuple(options),
        assignment={name: str(candidates[j]) for name, j in zip(layers, final)},
        node_precisions={n: str(p) for n, p in node_prec.items()},
        predicted_score=predicted_score,
        predicted_cost=sum(table[i][j][0] for i, j in enumerate(final)),
        per_layer_predicted={
            name: table[i][j][0] for i, (name, j) in enumerate(zip(layers, final))
        },
        measured_score=score,
        simulated_cost=sim_total,
        per_layer_simulated=sim_per,
        uniform=tuple(uniform),
        steps=tuple(steps),
        met=chosen_step.meets_budget,
        note=note,
    )


# ---------------------------------------------------------------------------------------------
# Labelled data: the digits study
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DigitsProblem:
    graph: Graph  # trained when train_epochs > 0
    data: CalibrationData
    x: np.ndarray  # the split the search scores and verifies on
    y: np.ndarray
    description: str


def digits_problem(
    graph: Graph,
    train_epochs: int = 0,
    train_copies: int = 4,
    seed: int = 0,
    calib_batch: int = 64,
    split: str = "val",
) -> DigitsProblem:
    """The accuracy study's digits (benchmarks/accuracy_study.py): calibration on the 256
    calibration images in batches of `calib_batch`, scores on the validation split; with
    `train_epochs` the float model is first trained on the training split with the study's
    optimiser settings (Adam, lr 3e-3, weight decay 1e-2, cosine schedule, seeded). `split`:
    "val" (189 images; the default, as the search is model selection) or "test" (540 images:
    a finer budget, but then the test accuracy is no longer held out)."""
    from accelsim.core.extras import need
    from accelsim.quant.calibdata import _input_info
    from accelsim.quant.datasets import load_digits_study

    need("sklearn", "--calib-dataset digits", "qat")
    if train_epochs:  # only training needs torch
        need("torch", "mixed-search --train-epochs", "qat")
    if split not in ("val", "test"):
        raise InputError(f"--eval-split {split}: expected val or test")
    if train_epochs < 0:
        raise InputError(f"--train-epochs: expected >= 0, found {train_epochs}")
    shape = _input_info(graph).shape
    if len(shape) != 4 or shape[1] != 1 or shape[2] != shape[3] or shape[2] < 8:
        raise InputError(
            f"--calib-dataset digits: model '{graph.name}' input has shape "
            f"{list(shape)}; digits images need (N, 1, S, S) with S >= 8"
        )
    d = load_digits_study(size=shape[2], seed=seed, train_copies=train_copies)
    x, y = (d.x_val, d.y_val) if split == "val" else (d.x_test, d.y_test)
    desc = (
        f"digits study, {len(d.x_calib)} calibration images, scored on the {split} split "
        f"({len(x)} images)"
    )
    if train_epochs:
        from accelsim.quant.train import TrainConfig, train_float

        graph = train_float(
            graph,
            d.x_train,
            d.y_train,
            TrainConfig(epochs=train_epochs, lr=3e-3, weight_decay=1e-2, seed=seed),
        ).graph
        desc += f"; float model trained {train_epochs} epochs on {len(d.x_train)} images"
    cal = CalibrationData(
        d.calibration_batches(calib_batch), f"{len(d.x_calib)} digits calibration images"
    )
    return DigitsProblem(graph, cal, x, y, desc)


# ---------------------------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------------------------


def write_outputs(result: MixedSearchResult, out_dir: str | Path) -> list[Path]:
    """`<model>_<target>_<objective>_mixed.yaml` (for `--mixed`) and `mixed_search.json`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{result.model}_{result.target}_{result.objective}"
    # the model's graph name is the user's: sanitised, and the files provably inside `out`
    yaml_path = inside(out, f"{stem}_mixed.yaml")
    json_path = inside(out, f"{stem}_mixed_search.json")
    counts: dict[str, int] = {}
    for p in result.node_precisions.values():
        counts[p] = counts.get(p, 0) + 1
    default = max(counts, key=lambda p: counts[p])
    from accelsim.core.precision import parse_precision

    per_node = {n: parse_precision(p) for n, p in result.node_precisions.items()}
    comment = (
        f"mixed-precision search (accelsim mixed-search): {result.model} on "
        f"{result.target}, minimise {result.objective} ({result.fidelity}); budget "
        f"{result.budget}; measured {result.metric} {result.measured_score:.4f} "
        f"(float {result.float_score:.4f}); "
        f"{'meets' if result.met else 'DOES NOT meet'} the budget"
    )
    if len(counts) == 1:  # one precision everywhere: a rule for every layer says so
        atomic_write_text(
            yaml_path, f'# {comment}\ndefault: {default}\nlayers:\n  "*": {default}\n'
        )
    else:
        write_mixed(yaml_path, parse_precision(default), per_node, comment)
    import json

    atomic_write_text(json_path, json.dumps(result.to_json(), indent=1) + "\n")
    return [yaml_path, json_path]


def format_result(result: MixedSearchResult) -> str:
    """The per-layer choice, predicted and measured accuracy, cost vs each uniform precision."""
    scale, unit = (1e6, "us") if result.objective == "latency" else (1e6, "uJ")
    fmt = (lambda s: f"{100 * s:.2f}%") if result.metric == "top1" else (lambda s: f"{s:.2f} dB")
    lines = [
        f"{result.model} on {result.target}: minimise {result.objective} "
        f"({result.fidelity} fidelity), budget {result.budget}",
        f"{'layer':<20}{'precision':<12}{'cost ' + unit:>12}  single-layer loss "
        f"({result.loss_unit})",
    ]
    loss = {(o.layer, o.precision): o for o in result.options}
    for name, p in result.assignment.items():
        o = loss[(name, p)]
        lines.append(f"{name[:19]:<20}{p:<12}{o.cost * scale:>12.3f}  {o.loss:.4g}")
    lines.append(
        f"float {fmt(result.float_score)}; predicted {fmt(result.predicted_score)}; "
        f"measured {fmt(result.measured_score)} on {result.eval_samples} samples "
        f"({'meets' if result.met else 'DOES NOT meet'} the budget)"
    )
    sim = "-" if result.simulated_cost is None else f"{result.simulated_cost * scale:.3f}"
    lines.append(
        f"{result.objective}: predicted (additive) {result.predicted_cost * scale:.3f} "
        f"{unit}, mixed graph simulated {sim} {unit}"
    )
    ref = result.simulated_cost if result.simulated_cost is not None else result.predicted_cost
    for u in result.uniform:
        lines.append(
            f"  vs uniform {u.precision:<10}{u.cost * scale:>12.3f} {unit} "
            f"(mixed = {ref / u.cost:6.1%} of it), {fmt(u.score)}"
            f"{'' if u.meets_budget else ' (over budget)'}"
        )
    lines.append(
        f"{len(result.steps)} verification step(s)" + (f"; {result.note}" if result.note else "")
    )
    return "\n".join(lines)
