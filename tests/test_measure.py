"""`accelsim measure`: kernels run and timed on this machine (the host validation target).

Timing is never a pass/fail speed goal here; the one timing assertion compares two kernels of
very different size with a wide margin (a shared 2-core VM is noisy)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from accelsim.cli import main
from accelsim.core.precision import parse_precision
from accelsim.core.target import load_target
from accelsim.model import zoo
from accelsim.model.io import random_inputs
from accelsim.quant import calibdata
from accelsim.quant.ptq import quantize_graph
from accelsim.sim import measure as measure_mod


def _quantized(precision: str, size: int | None = None):
    g = zoo.build("digits_cnn", input_size=size) if size else zoo.build("digits_cnn")
    p = parse_precision(precision)
    return quantize_graph(g, p, calibdata.random(g, 1)).graph, p


def _measure(precision: str, size: int | None = None, repeat: int = 5, clock: str = "wall"):
    q, p = _quantized(precision, size)
    return q, measure_mod.measure_graph(
        q, load_target("host"), p, random_inputs(q, seed=0), repeat=repeat, warmup=1, clock=clock
    )


def test_cli_json_has_the_shape_of_simulate(tmp_path, capsys):
    m_path, s_path = tmp_path / "m.json", tmp_path / "s.json"
    assert (
        main(
            [
                "measure",
                "digits_cnn",
                "--precision",
                "fp32,w8a8",
                "--repeat",
                "3",
                "--warmup",
                "1",
                "--json",
                str(m_path),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "measured us" in out and "analytic us" in out and "total (measured layers)" in out
    assert (
        main(
            [
                "simulate",
                "digits_cnn",
                "--target",
                "host",
                "--precision",
                "fp32,w8a8",
                "--json",
                str(s_path),
            ]
        )
        == 0
    )
    measured, simulated = json.loads(m_path.read_text()), json.loads(s_path.read_text())
    assert len(measured) == len(simulated) == 2
    for m, s in zip(measured, simulated):
        assert m.keys() == s.keys()
        assert m["total"].keys() == s["total"].keys()
        assert [x["name"] for x in m["layers"]] == [x["name"] for x in s["layers"]]
        for lm, ls in zip(m["layers"], s["layers"]):
            assert lm.keys() == ls.keys()
            assert lm["macs"] == ls["macs"] and lm["op"] == ls["op"]
        assert m["fidelity"] == "measured" and m["precision"] == s["precision"]
        # total is the sum of the layers; every lowered kernel took measurable time
        assert m["total"]["latency_s"] == pytest.approx(sum(x["latency_s"] for x in m["layers"]))
        assert m["total"]["cycles"] == pytest.approx(sum(x["cycles"] for x in m["layers"]))
        timed = [x for x in m["layers"] if x["notes"].startswith("measured")]
        assert len(timed) >= 5  # 3 convs, pool, dense (+ quantize / dequantize at w8a8)
        assert all(x["latency_s"] > 0 for x in timed)
        clock = load_target("host").timing["clock_hz"]
        assert all(x["cycles"] == pytest.approx(x["latency_s"] * clock) for x in timed)
        # energy is not measured: zero, and said so
        assert m["total"]["energy_j"] == 0.0
        assert all("energy not measured" in x["notes"] for x in timed)
        # softmax is a kernel too: timed like the others
        soft = next(x for x in m["layers"] if x["op"] == "softmax")
        assert soft["latency_s"] > 0 and soft["notes"].startswith("measured")


def test_non_host_target_is_a_one_line_error(capsys):
    assert main(["measure", "digits_cnn", "--target", "cortex-a76", "--precision", "w8a8"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "cortex-a76" in err and "'host'" in err and "cpu-simd" in err


def test_bad_repeat_is_an_input_error(capsys):
    assert main(["measure", "digits_cnn", "--precision", "w8a8", "--repeat", "0"]) == 2
    assert "--repeat" in capsys.readouterr().err


def test_kernels_are_chained_and_views_cost_nothing():
    q, m = _measure("w8a8")
    by_name = {c.name: c for c in m.costs}
    assert [c.name for c in m.costs] == [n.name for n in q.nodes]
    assert m.unmeasured == ()
    assert by_name["flatten"].latency_s == 0.0 and by_name["flatten"].notes.startswith("view")
    # conv1 -> conv2 -> conv3 -> avgpool -> (flatten) -> fc: each reads its producer's buffer
    # (the NHWC kernel layouts match); the first quantize reads the model input
    assert m.chained >= 5
    assert all(c.fidelity == "measured" for c in m.costs)
    assert m.call_overhead_s > 0 and m.pass_s > 0


def test_a_wrong_kernel_result_is_refused(monkeypatch):
    """A kernel whose output differs from the reference executor is not timed."""
    from accelsim.lower import lower as lower_mod

    real = lower_mod.lower_graph

    def corrupt(*a, **k):
        layers = real(*a, **k)
        out = []
        for L in layers:
            if L.name == "conv2":
                unpack = L.unpack_output
                L = dataclasses.replace(L, unpack_output=lambda raw, u=unpack: u(raw) + 1)
            out.append(L)
        return out

    monkeypatch.setattr(lower_mod, "lower_graph", corrupt)
    with pytest.raises(measure_mod.MeasureError, match="conv2"):
        _measure("w8a8", repeat=1)


def test_a_16x_larger_convolution_takes_longer():
    # conv2 at 32x32 input has 16x the MACs of conv2 at 8x8; medians of 7 passes, and only a
    # 3x margin is asked for, so a noisy neighbour on the VM does not flip it
    # (thread CPU time: other processes on the VM do not count)
    _, small = _measure("fp32", 8, repeat=7, clock="thread")
    _, large = _measure("fp32", 32, repeat=7, clock="thread")
    assert large.clock == "thread"
    t_small = next(c.latency_s for c in small.costs if c.name == "conv2")
    t_large = next(c.latency_s for c in large.costs if c.name == "conv2")
    assert t_large > 3 * t_small
