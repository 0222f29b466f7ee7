"""Mixed-precision search (accelsim.dse.mixed_search): the exact solver against brute force,
monotonicity, the end-to-end search on the trained digits_cnn with the result re-measured
independently, and one-line errors before any work."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim import cli
from accelsim.backends import simulate
from accelsim.core.errors import AccelsimError
from accelsim.core.precision import parse_precision, parse_precision_list
from accelsim.core.target import load_target
from accelsim.dse.mixed_search import (
    AccuracyBudget,
    digits_problem,
    layer_groups,
    mixed_search,
    solve_mckp,
    write_outputs,
)
from accelsim.model import zoo
from accelsim.model.batch import with_batch
from accelsim.quant.metrics import top1
from accelsim.quant.mixed import load_mixed
from accelsim.quant.ptq import quantize_graph
from accelsim.quant.transforms import prepare_for_quantization

# ---------------------------------------------------------------------------------------------
# The solver
# ---------------------------------------------------------------------------------------------

# small non-negative numbers with fractions, so sums are not all integers
_num = st.integers(0, 40).map(lambda v: v / 4)
_instance = st.lists(
    st.lists(st.tuples(_num, _num), min_size=1, max_size=4), min_size=1, max_size=5
)


def _brute(options, budget):
    best = None
    for picks in itertools.product(*[range(len(o)) for o in options]):
        loss = sum(options[i][j][1] for i, j in enumerate(picks))
        cost = sum(options[i][j][0] for i, j in enumerate(picks))
        if loss <= budget + 1e-12 and (best is None or cost < best):
            best = cost
    return best


def _cost_loss(options, picks):
    return (
        sum(options[i][j][0] for i, j in enumerate(picks)),
        sum(options[i][j][1] for i, j in enumerate(picks)),
    )


@settings(max_examples=300, deadline=None)
@given(_instance, _num)
def test_solver_matches_brute_force(options, budget):
    picks = solve_mckp(options, budget)
    best = _brute(options, budget)
    if best is None:
        assert picks is None
        return
    assert picks is not None and len(picks) == len(options)
    cost, loss = _cost_loss(options, picks)
    assert loss <= budget + 1e-9
    assert cost == pytest.approx(best, abs=1e-9)


@settings(max_examples=200, deadline=None)
@given(_instance, _num, _num)
def test_larger_budget_never_costs_more(options, b1, b2):
    lo, hi = sorted((b1, b2))
    p_lo, p_hi = solve_mckp(options, lo), solve_mckp(options, hi)
    if p_lo is not None:
        assert p_hi is not None
        assert _cost_loss(options, p_hi)[0] <= _cost_loss(options, p_lo)[0] + 1e-9


def test_budget_zero_takes_the_loss_free_candidate():
    # per layer: (cost, loss) of w4a4 (cheap, lossy), w8a8 (loss-free), w16a16 (loss-free, dear)
    options = [
        [(1.0, 3.0), (2.0, 0.0), (5.0, 0.0)],
        [(0.5, 0.1), (4.0, 0.0), (9.0, 0.0)],
        [(1.0, 0.0), (3.0, 0.0), (6.0, 0.0)],
    ]
    assert solve_mckp(options, 0.0) == (1, 1, 0)
    # a loss-free option that is also the cheapest is chosen at any budget
    assert solve_mckp(options, 100.0) == (0, 0, 0)
    assert solve_mckp([[(1.0, 2.0)], [(1.0, 0.0)]], 1.0) is None


# ---------------------------------------------------------------------------------------------
# End to end on the trained digits_cnn
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    g = zoo.build("digits_cnn", seed=0, input_size=16)
    # a short training run (the study trains 20 epochs on 4 copies; enough here to be far
    # above chance so a 1-point budget means something)
    return digits_problem(g, train_epochs=8, train_copies=1)


def test_node_groups_cover_the_uniform_graph_exactly(digits):
    prepared = prepare_for_quantization(digits.graph)
    layers = [n.name for n in prepared.nodes if n.op in ("conv2d", "dense")]
    assert layers == ["conv1", "conv2", "conv3", "fc"]
    q = quantize_graph(
        with_batch(prepared, 64), parse_precision("w8a8"), digits.data, prepared=True
    ).graph
    owner = layer_groups(q, layers)
    assert set(owner) == {n.name for n in q.nodes}
    assert owner["input.quantize"] == "conv1"  # graph-input quantize: its consumer
    assert owner["avgpool"] == "conv3" and owner["softmax"] == "fc"


def _uniform_reference(problem, target, precisions, key):
    """Cost and top-1 of each uniform precision, computed without the search module."""
    prepared = prepare_for_quantization(problem.graph)
    out = {}
    for p in precisions:
        q = quantize_graph(with_batch(prepared, 64), p, problem.data, prepared=True).graph
        costs = simulate(with_batch(q, 1), target, p)
        out[str(p)] = (sum(getattr(c, key) for c in costs), top1(q, problem.x, problem.y))
    return out


@pytest.mark.parametrize(
    "target_name,objective,key",
    [("cortex-a76", "latency", "latency_s"), ("cortex-a76", "energy", "energy_j")],
)
def test_search_on_digits_cnn_meets_budget_and_beats_uniform(
    digits, tmp_path, target_name, objective, key
):
    target = load_target(target_name)
    cands = parse_precision_list("w4a4,w4a8,w8a8")
    res = mixed_search(
        digits.graph,
        target,
        cands,
        objective,
        AccuracyBudget(max_drop=1.0),
        digits.data,
        digits.x,
        digits.y,
    )
    float_top1 = top1(digits.graph, digits.x, digits.y)
    assert res.float_score == pytest.approx(float_top1)
    assert set(res.assignment) == {"conv1", "conv2", "conv3", "fc"}
    assert res.steps and res.steps[-1].assignment == res.assignment

    # independent re-measurement from the written YAML, through the --mixed path
    yaml_path, json_path = write_outputs(res, tmp_path)
    prepared = prepare_for_quantization(digits.graph)
    per_node = load_mixed(yaml_path).resolve(prepared, parse_precision("w8a8"))
    assert {n: per_node[n] for n in res.assignment} == {
        n: parse_precision(p) for n, p in res.assignment.items()
    }
    q = quantize_graph(
        with_batch(prepared, 64),
        parse_precision("w8a8"),
        digits.data,
        overrides=per_node,
        prepared=True,
    ).graph
    measured = top1(q, digits.x, digits.y)
    assert measured == pytest.approx(res.measured_score)
    n = len(digits.y)
    assert round((float_top1 - measured) * n) <= math.floor(0.01 * n)  # within 1 point
    assert res.met

    # the simulated cost of the chosen graph, and no uniform precision meeting the budget is
    # cheaper
    total = sum(getattr(c, key) for c in simulate(with_batch(q, 1), target, cands[-1]))
    assert res.simulated_cost == pytest.approx(total, rel=1e-9)
    uni = _uniform_reference(digits, target, cands, key)
    meeting = [c for c, acc in uni.values() if round((float_top1 - acc) * n) <= 0.01 * n]
    assert meeting, "w8a8 should meet a 1-point budget on digits"
    assert total <= min(meeting) * (1 + 1e-12)
    for u in res.uniform:
        assert u.cost == pytest.approx(uni[u.precision][0], rel=1e-9)
        assert u.score == pytest.approx(uni[u.precision][1])
    assert json_path.read_text().startswith("{")


def test_snr_budget_without_labels_tightens_until_measured_snr_meets_it(monkeypatch):
    """The additive noise model can promise more SNR than the mixed graph delivers. Make that
    certain by taking PENALTY dB off every fully quantized graph's measured SNR (the per-layer
    sensitivities, measured with one layer quantized, stay exact): the first pick then misses
    the budget, and the search must record it, re-solve tighter and end within budget."""
    from accelsim.quant import calibdata, sensitivity

    penalty = 1.0
    real_score_graph = sensitivity._Evaluator.score_graph

    def pessimistic(self, q):
        score = real_score_graph(self, q)
        fully = all(
            q.tensors[n.inputs[1]].dtype != "float32"
            for n in q.nodes
            if n.op in ("conv2d", "dense")
        )
        return score - penalty if fully else score

    monkeypatch.setattr(sensitivity._Evaluator, "score_graph", pessimistic)
    g = zoo.build("digits_cnn", seed=1, input_size=8)
    data = calibdata.random(g, 16, seed=3)
    x = np.concatenate(data.samples)
    budget_db = 16.5
    res = mixed_search(
        g,
        load_target("cortex-a76"),
        parse_precision_list("w4a4,w4a8,w8a8"),
        "energy",
        AccuracyBudget(min_snr_db=budget_db),
        data,
        x,
    )
    assert res.metric == "snr_db" and res.met
    first, last = res.steps[0], res.steps[-1]
    assert first.action == "solve" and not first.meets_budget
    assert first.predicted_loss <= res.budget_loss < first.measured_loss
    assert last.action == "tighten" and last.meets_budget
    assert last.model_budget < first.predicted_loss
    # re-measure: SNR of the chosen graph against the float executor
    from accelsim.quant.metrics import predict_logits
    from accelsim.quant.sensitivity import output_snr_db

    prepared = with_batch(prepare_for_quantization(g), 1)
    per_node = {n: parse_precision(p) for n, p in res.node_precisions.items()}
    q = quantize_graph(
        prepared, parse_precision("w8a8"), data, overrides=per_node, prepared=True
    ).graph
    snr = output_snr_db(predict_logits(prepared, x), predict_logits(q, x))
    assert snr - penalty >= budget_db and snr - penalty == pytest.approx(res.measured_score)
    # the uniform precisions that meet the budget cost more than the answer
    for u in res.uniform:
        if u.meets_budget:
            assert res.simulated_cost <= u.cost


# ---------------------------------------------------------------------------------------------
# Errors: one line, before any work
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["--target", "simd-accel", "--precisions", "w4a4,fp32"], "cannot run precision 'fp32'"),
        (["--target", "cortex-a76", "--objective", "speed"], "--objective speed"),
        (["--target", "cortex-a76", "--max-drop", "-1"], "--max-drop"),
        (["--target", "cortex-a76", "--calib-random", "4"], "--max-drop needs labelled data"),
        (["--target", "cortex-a76", "--precisions", "w4a4,w3a3"], "w3a3"),
    ],
)
def test_bad_input_is_one_line_error_before_any_work(args, fragment, capsys, monkeypatch, tmp_path):
    def no_work(*a, **k):
        raise AssertionError("model loaded before the inputs were checked")

    monkeypatch.setattr("accelsim.model.loader.load_model", no_work)
    extra = [] if "--calib-random" in args else ["--calib-dataset", "digits"]
    rc = cli.main(["mixed-search", "digits_cnn", *args, *extra, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("accelsim: error: "), err
    assert fragment in err[0]
    assert not (tmp_path / "o").exists()


def test_check_inputs_rejects_bad_budget_in_the_api():
    g = zoo.build("digits_cnn")
    from accelsim.quant import calibdata

    data = calibdata.random(g, 2)
    with pytest.raises(AccelsimError, match="--min-snr-db"):
        mixed_search(
            g,
            load_target("cortex-a76"),
            parse_precision_list("w8a8"),
            "latency",
            AccuracyBudget(min_snr_db=math.nan),
            data,
            np.concatenate(data.samples),
        )
