"""Wu et al.'s workflow (accelsim.dse.tune): calibrator chosen on validation, partial
quantization until the budget holds, every step costed; inputs checked before any work."""

from __future__ import annotations

import json

import numpy as np
import pytest

from accelsim.core.errors import AccelsimError, InputError
from accelsim.dse.tune import recost, tune
from accelsim.model import zoo
from accelsim.quant import metrics
from accelsim.quant.ptq import CalibrationData


@pytest.fixture(scope="module")
def problem():
    g = zoo.build("digits_cnn", seed=0, input_size=8)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((48, 1, 8, 8)).astype(np.float32)
    labels = metrics.scores(g, x).argmax(-1)  # float predictions: float top-1 is 1.0
    cal = CalibrationData(tuple(x[i : i + 1] for i in range(8)), "8 seeded samples")
    return g, cal, x[8:], metrics.Top1(labels[8:])


def test_budget_met_by_calibration_stops_there(problem):
    g, cal, x, metric = problem
    lines = []
    r = tune(g, cal, x, metric, max_drop=1.0, calibrators=("minmax", "mse"), log=lines.append)
    assert r.float_score == 1.0 and r.met and not r.high_layers and not r.sensitivity
    assert r.calibration == max(r.calibration_scores, key=lambda c: r.calibration_scores[c])
    assert [s.stage for s in r.steps] == ["float", "calibration", "calibration"]
    assert all(s.costs[0].target == "cortex-a76" and s.costs[0].latency_s > 0 for s in r.steps)
    assert len(lines) == 4 and "calibration chosen" in lines[-1]
    json.dumps(r.to_json())


def test_partial_quantization_until_the_budget_holds(problem):
    g, cal, x, metric = problem
    r = tune(
        g,
        cal,
        x,
        metric,
        precision="w4a8",  # 4-bit weights lose accuracy on this net; float layers restore it
        calibrators=("minmax",),
        max_drop=0.0,
        targets=("cortex-a76", "hvx-v68"),
        sensitivity_samples=20,
    )
    calib = [s for s in r.steps if s.stage == "calibration"]
    assert calib[0].drop > 0, "the test needs a precision that loses accuracy"
    # every integer operator the score depends on: 4 conv / dense and the global pooling
    assert len(r.sensitivity) == 5 and r.ranking == "measured" and r.met and r.score == 1.0
    assert 0 < len(r.high_layers) <= 5
    assert r.high_layers == tuple(n for n, _, _ in r.sensitivity[: len(r.high_layers)])
    assert r.steps[-1].high_layers == r.high_layers and r.steps[-1].meets_budget
    assert {c.target for c in r.steps[-1].costs} == {"cortex-a76", "hvx-v68"}
    # the fewest (Wu et al.): a graph with fewer float operators never met the budget
    fewer = [s for s in r.steps if s.stage == "partial" and len(s.high_layers) < len(r.high_layers)]
    assert all(not s.meets_budget for s in fewer)
    # prefer="fastest": the cheapest on the first target of the counts tried that meet it
    f = tune(
        g, cal, x, metric, precision="w4a8", calibrators=("minmax",), max_drop=0.0,
        targets=("cortex-a76",), sensitivity_samples=20, prefer="fastest",
    )  # fmt: skip
    meeting = [s for s in f.steps if s.stage == "partial" and s.meets_budget]
    assert f.prefer == "fastest" and f.met
    assert f.final.costs[0].latency_s == min(s.costs[0].latency_s for s in meeting)
    assert sum(p == "fp32" for p in r.node_precisions.values()) == len(r.high_layers)


def test_recost_gives_the_costs_running_tune_again_gives(problem):
    """`recost` rebuilds every step's model from what the step records (calibrator, operators
    kept high) and costs it again: on unchanged kernels it reproduces the stored costs exactly
    (a tampered copy comes back to them); a result chosen by cost is refused."""
    g, cal, x, metric = problem
    kw = dict(precision="w4a8", calibrators=("minmax", "mse"), max_drop=0.0)
    r = tune(g, cal, x, metric, targets=("cortex-a76", "hvx-v68"), sensitivity_samples=20, **kw)
    assert {s.stage for s in r.steps} >= {"float", "calibration", "partial"}
    j = json.loads(json.dumps(r.to_json()))
    assert recost(j, g, cal) == j
    tampered = json.loads(json.dumps(j))
    for step in tampered["steps"]:
        for c in step["costs"]:
            c["latency_s"], c["energy_j"] = 1.0, 1.0
    assert recost(tampered, g, cal) == j
    fastest = {**j, "prefer": "fastest"}
    with pytest.raises(InputError, match="prefer='fastest'"):
        recost(fastest, g, cal)


def test_a_budget_partial_quantization_cannot_meet_says_what_comes_next(problem):
    g, cal, x, metric = problem
    # 4-bit activations: even with every weighted layer in float the activations between
    # them (relu, pooling) stay 4-bit, so the budget of 0 cannot hold with conv / dense alone
    r = tune(
        g, cal, x, metric, precision="w4a4", calibrators=("minmax",), max_drop=0.0,
        candidates="weighted",
    )  # fmt: skip
    assert (
        len(r.sensitivity) == 4
        and not r.met
        and r.steps[-1].high_layers == tuple(n for n, _, _ in r.sensitivity)
    )
    assert "quantization-aware training" in r.next_step


def test_local_ranking_moves_operators_by_their_own_quantization_snr(problem):
    g, cal, x, metric = problem
    kw = dict(precision="w4a8", calibrators=("minmax",), max_drop=0.0, sensitivity_samples=20)
    r = tune(g, cal, x, metric, ranking="local", **kw)
    assert r.ranking == "local" and r.met and r.score == 1.0
    snrs = [d for _, _, d in r.sensitivity]
    assert snrs == sorted(snrs) and all(np.isnan(s) for _, s, _ in r.sensitivity)
    assert r.high_layers == tuple(n for n, _, _ in r.sensitivity[: len(r.high_layers)])


def test_local_snr_of_the_last_layer_is_its_measured_output_snr():
    """The last operator before the score: quantized alone (every other node float), the
    network's output SNR against float is exactly the error `local_snr` gives it, which it
    computes without running the network quantized. The first convolution's local SNR is
    that of its output with only it quantized, read from the same run."""
    from accelsim.core.precision import parse_precision
    from accelsim.quant.ptq import assign_precisions, calibrate_ranges, quantize_with_ranges
    from accelsim.quant.sensitivity import local_snr
    from accelsim.quant.transforms import prepare_for_quantization
    from accelsim.ref.executor import run_batch

    g = zoo.build("mobilenet_v2", seed=0, input_size=32)
    p = prepare_for_quantization(g)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, *p.tensors[p.inputs[0]].shape[1:])).astype(np.float32)
    data = CalibrationData(tuple(x[i : i + 1] for i in range(3)), "3 samples")
    w8 = parse_precision("w8a8")
    uniform = assign_precisions(p, w8)
    ranges = calibrate_ranges(p, data, "minmax", uniform)
    snr = local_snr(p, quantize_with_ranges(p, uniform, ranges), x)
    fp32 = {n.name: parse_precision("fp32") for n in p.nodes}
    last = p.producer(metrics.score_tensor(p)).name  # the classifier
    first = p.nodes[0]
    for name, tensor in ((last, metrics.score_tensor(p)), (first.name, first.outputs[0])):
        alone = quantize_with_ranges(p, {**fp32, name: w8}, ranges)
        ref = run_batch(p, [x], tensors=[tensor])[tensor]
        got = run_batch(alone, [x], tensors=[tensor])[tensor]
        info = alone.tensors[tensor]
        if info.is_quantized:
            got = (got.astype(np.float64) - info.quant.zero_point[0]) * info.quant.scale[0]
        assert snr[name] == pytest.approx(metrics.output_snr_db(ref, got), abs=1e-6), name
    assert all(v > 0 for v in snr.values()) and len(snr) >= 60  # every integer operator


@pytest.mark.parametrize(
    "kw,fragment",
    [
        ({"precision": "fp32"}, "give an integer precision"),
        ({"calibrators": ("minmax", "kl")}, "unknown method 'kl'"),
        ({"calibrators": ()}, "at least one"),
        ({"max_drop": -1.0}, "max_drop"),
        ({"targets": ("no-such-target",)}, "no-such-target"),
        ({"candidates": "convs"}, "candidates: expected one of all, weighted"),
        ({"ranking": "hessian"}, "ranking: expected one of auto, measured, local"),
        ({"prefer": "smallest"}, "prefer: expected one of fewest, fastest"),
    ],
)
def test_bad_inputs_fail_before_any_work(problem, kw, fragment):
    g, cal, x, metric = problem
    with pytest.raises(AccelsimError, match=fragment):
        tune(g, cal, x, metric, **kw)
    with pytest.raises(InputError, match="no samples"):
        tune(g, cal, x[:0], metric)


@pytest.fixture()
def arrays(tmp_path, problem):
    g, cal, x, metric = problem
    np.save(tmp_path / "cal.npy", np.concatenate(cal.samples))
    np.save(tmp_path / "val.npy", x)
    np.save(tmp_path / "labels.npy", metric.labels)
    return tmp_path


def _cli(args, capsys):
    from accelsim.cli import main

    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_runs_the_workflow_and_writes_a_mixed_file_quantize_accepts(arrays, problem, capsys):
    d = arrays
    args = ["tune", "digits_cnn", "--input-size", "8", "--target", "cortex-a76,hvx-v68"]
    args += ["--precision", "w4a8", "--calibrators", "minmax", "--max-drop", "0"]
    args += ["--calib-data", str(d / "cal.npy"), "--val-data", str(d / "val.npy")]
    args += ["--val-labels", str(d / "labels.npy"), "--sensitivity-samples", "20"]
    code, out, _ = _cli([*args, "--out", str(d / "out")], capsys)
    doc = json.loads((d / "out" / "digits_cnn_tune.json").read_text())
    # the same workflow through the Python API on the same arrays gives the same result
    g, cal, x, metric = problem
    r = tune(
        g, cal, x, metric, precision="w4a8", calibrators=("minmax",), max_drop=0.0,
        targets=("cortex-a76", "hvx-v68"), sensitivity_samples=20,
    )  # fmt: skip
    assert code == 0 and doc["met"] and doc["high_layers"] == list(r.high_layers)
    assert doc["score"] == r.score == 1.0
    assert "meets the budget" in out and "hvx-v68 ms" in out
    mixed = (d / "out" / "digits_cnn_tune_mixed.yaml").read_text()
    assert all(f"{n}: fp32" in mixed for n in r.high_layers)
    # the mixed file is one quantize takes (the layer names are the quantizer's)
    code, _, err = _cli(
        ["quantize", "digits_cnn", "--precision", "w4a8", "--mixed",
         str(d / "out" / "digits_cnn_tune_mixed.yaml"), "--calib-data", str(d / "cal.npy"),
         "--out", str(d / "m.onnx")],
        capsys,
    )  # fmt: skip
    assert code == 0, err


def test_cli_passes_the_candidates_and_the_ranking(arrays, capsys):
    d = arrays
    args = ["tune", "digits_cnn", "--input-size", "8", "--target", "cortex-a76"]
    args += ["--precision", "w4a8", "--calibrators", "minmax", "--max-drop", "0"]
    args += ["--calib-data", str(d / "cal.npy"), "--val-data", str(d / "val.npy")]
    args += ["--val-labels", str(d / "labels.npy"), "--sensitivity-samples", "20"]
    args += ["--candidates", "weighted", "--ranking", "local", "--out", str(d / "o")]
    code, _, _ = _cli(args, capsys)
    doc = json.loads((d / "o" / "digits_cnn_tune.json").read_text())
    assert code == 0 and (doc["candidates"], doc["ranking"]) == ("weighted", "local")
    assert len(doc["sensitivity"]) == len(doc["node_precisions"]) == 4
    code, _, err = _cli([*args[:-4], "--ranking", "fisher", "--out", str(d / "p")], capsys)
    assert code == 2 and "--ranking" in err and not (d / "p").exists()


def test_cli_snr_budget_without_labels(arrays, capsys):
    d = arrays
    base = ["tune", "digits_cnn", "--input-size", "8", "--target", "cortex-a76"]
    base += ["--calibrators", "minmax", "--calib-data", str(d / "cal.npy")]
    base += ["--val-data", str(d / "val.npy")]
    code, out, _ = _cli([*base, "--min-snr-db", "10", "--out", str(d / "a")], capsys)
    assert code == 0 and "snr_db >= 10" in out
    code, out, _ = _cli([*base, "--min-snr-db", "300", "--out", str(d / "b")], capsys)
    assert code == 1 and "does NOT meet" in out  # float's own SNR is finite: 300 dB is not met
    code, out, err = _cli([*base, "--out", str(d / "c")], capsys)
    assert code == 2 and err.count("\n") == 1 and "--min-snr-db" in err
    assert not (d / "c").exists()


def test_api_takes_a_callable_metric(problem):
    import accelsim

    g, cal, x, metric = problem
    kw = dict(calibration=cal, x_val=x, calibrators=("minmax",), max_drop=1.0)
    a = accelsim.tune(g, "cortex-a76", metric=metric, **kw)
    b = accelsim.tune(g, "cortex-a76", metric=lambda s: metric(s), **kw)
    c = accelsim.tune(g, "cortex-a76", labels=metric.labels, **kw)
    assert a.score == b.score == c.score and b.metric == "custom"
