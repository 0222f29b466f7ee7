"""The analytic model, calibrated against codegen fidelity (accelsim.sim.calibration), against
the codegen model on whole models, including models the calibration was not derived from."""

from __future__ import annotations

import pytest

from accelsim.core.errors import InputError
from accelsim.core.precision import parse_precision
from accelsim.core.target import load_target
from accelsim.model import zoo
from accelsim.quant import calibdata
from accelsim.quant.ptq import quantize_graph
from accelsim.sim import analytic, calibration, rates
from accelsim.sim import kernel_cost as codegen_model

pytestmark = pytest.mark.usefixtures("kernel_cache")

GOAL = 0.20  # issue 5: analytic vs codegen within 20 % per whole model


def _quantized(model: str, size: int, precision: str):
    g = zoo.build(model, input_size=size)
    return quantize_graph(g, parse_precision(precision), calibdata.random(g, 1, seed=0)).graph


@pytest.mark.parametrize(
    "target,model,size,precision",
    [
        ("cortex-a76", "mobilenet_v1", 32, "w8a8"),  # not in the calibration set
        ("cortex-a76", "mobilenet_v2", 32, "w8a8"),  # the calibration set
        ("cortex-a55", "mobilenet_v1", 32, "w8a8"),
        # the size reports run: derived at 32 alone the analytic model was 29 % slow here
        # (codegen / analytic 0.714); the fit now takes the layers at 32 and 224 together
        ("cortex-a55", "mobilenet_v1", 224, "w8a8"),
        ("cortex-a720", "mobilenet_v1", 32, "w8a8"),  # SMMLA kernels
        ("kryo280", "mobilenet_v1", 32, "w8a8"),  # no dot product: SMULL / SMLAL / SADALP
        ("hvx-v68", "mobilenet_v1", 32, "w8a8"),
        # precisions whose rows went stale once: w8a8 alone was re-derived after the NEON
        # kernels changed, and w4a8 stayed at the old kernels' cost (1.9x w8a8 on this core)
        ("cortex-a76", "mobilenet_v1", 32, "w4a8"),
        ("kryo280", "mobilenet_v1", 32, "w4a8"),  # 4-bit smull_smlal2 (two channels a byte)
        ("cortex-a76", "mobilenet_v1", 32, "w16a16"),
    ],
)
def test_calibrated_analytic_tracks_codegen_per_whole_model(target, model, size, precision):
    t, p = load_target(target), parse_precision(precision)
    assert rates.path_for(t).is_file(), f"{target} has no calibration file"
    q = _quantized(model, size, precision)
    cg = codegen_model.simulate_graph(q, t, p)
    an = analytic.simulate_graph(q, t, p)
    coded = sum(c.macs for c in cg if c.fidelity == "codegen") / sum(c.macs for c in cg)
    # layers whose counts the predictor cannot make exact fall back to analytic (labelled)
    assert coded >= 0.9, f"only {coded:.0%} of the MACs costed from code"
    ratio = sum(c.cycles for c in cg) / sum(a.cycles for a in an)
    print(
        f"\ncalibration error {target} {model}@{size} {precision}: codegen / analytic = "
        f"{ratio:.3f} "
        f"({coded:.0%} of MACs from code)"
    )
    assert abs(ratio - 1) <= GOAL


def test_uncalibrated_formula_is_what_the_calibration_corrects(monkeypatch, tmp_path):
    """Without the calibration file the documented formula (ideal MAC issue + 5 vector-ALU ops
    per output) underestimates the generated code: the calibration is doing work."""
    t, p = load_target("cortex-a76"), parse_precision("w8a8")
    q = _quantized("mobilenet_v2", 32, "w8a8")
    calibrated = sum(a.cycles for a in analytic.simulate_graph(q, t, p))
    monkeypatch.setattr(rates, "path_for", lambda target: tmp_path / "none.yaml")
    ideal = sum(a.cycles for a in analytic.simulate_graph(q, t, p))
    assert calibrated > 1.3 * ideal


def test_bad_calibration_file_is_a_clear_error(monkeypatch, tmp_path):
    q = _quantized("digits_cnn", 16, "w8a8")
    node = next(n for n in q.nodes if n.op == "conv2d")
    bad = tmp_path / "cortex-a76.yaml"
    bad.write_text(f"precisions:\n  w8a8:\n    {rates.kind(q, node)}: {{cycles_per_mac: fast}}\n")
    monkeypatch.setattr(rates, "path_for", lambda target: bad)
    with pytest.raises(InputError, match=r"cortex-a76.yaml: precisions.w8a8.conv2d_.*cycles_per"):
        rates.compute_cycles(load_target("cortex-a76"), "w8a8", q, node)


def test_fit_recovers_known_rates():
    samples = [
        (m, o, 0.05 * m + 3.0 * o) for m, o in [(1e5, 1e3), (4e5, 2e3), (9e4, 9e3), (2e6, 5e3)]
    ]
    a, b = calibration.fit(samples)
    assert a == pytest.approx(0.05) and b == pytest.approx(3.0)
    assert calibration.fit([(0.0, 100.0, 250.0), (0.0, 10.0, 25.0)]) == (0.0, pytest.approx(2.5))
