"""`accelsim compile` / `accelsim verify` on accelerator targets: every accelerated layer's program
executed in the simulator against the reference executor, through the CLI; the files compile
writes are the programs that run (parsed back and re-run)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from accelsim import cli

SIZE = "32"  # reduced input: every layer type of the full-size model, ~10x fewer elements


def _cli(capsys, *args) -> tuple[int, str, str]:
    rc = cli.main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


# Both models at w8a8 here; the four precisions on each model below. All eight runs: ~12 s.
@pytest.mark.parametrize(
    "model,precision",
    [
        ("mobilenet_v2", "w8a8"),
        ("resnet18", "w8a8"),
        ("mobilenet_v2", "w4a4"),
        ("mobilenet_v2", "w4a8"),
        ("mobilenet_v2", "w16a16"),
        ("resnet18", "w4a4"),
        ("resnet18", "w4a8"),
        ("resnet18", "w16a16"),
    ],
)
def test_verify_zero_mismatches(tmp_path, capsys, model, precision):
    js = tmp_path / "v.json"
    rc, out, _ = _cli(
        capsys,
        "verify",
        model,
        "--target",
        "simd-accel",
        "--precision",
        precision,
        "--input-size",
        SIZE,
        "--json",
        js,
    )
    result = json.loads(js.read_text())
    assert rc == 0, out
    assert set(result) == {"mismatches", "elements", "layers"}
    assert result["mismatches"] == 0 and result["elements"] > 0
    layers = result["layers"]
    assert all(set(x) == {"name", "op", "mismatches", "elements"} for x in layers)
    assert sum(x["elements"] for x in layers) == result["elements"]
    # every conv / dense / add / average pool ran on the accelerator; the rest (softmax, the
    # float input's quantize) as kernels of its host core (cortex-a55), under qemu
    from accelsim.model.loader import load_model

    graph = load_model(model, input_size=int(SIZE))
    want = [n.name for n in graph.nodes if n.op in ("conv2d", "dense", "add", "global_avg_pool")]
    assert [x["name"] for x in layers if x["name"] in set(want)] == want
    assert {x["op"] for x in layers if x["name"] not in set(want)} <= {
        "softmax",
        "quantize",
        "dequantize",
        "max_pool",
    }
    assert f"{len(layers)} kernels, 0 of {result['elements']} elements differ" in out


def test_verify_through_the_installed_entry_point(tmp_path):
    js = tmp_path / "v.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "accelsim",
            "verify",
            "resnet18",
            "--target",
            "simd-accel-edge",
            "--precision",
            "w8a8",
            "--input-size",
            "16",
            "--json",
            str(js),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    result = json.loads(js.read_text())
    assert result["mismatches"] == 0 and {"conv2d", "dense", "add"} <= {
        x["op"] for x in result["layers"]
    }


def test_verify_catches_a_wrong_requantization(tmp_path, capsys, monkeypatch):
    """Verification can fail: requantization off by one in the simulator's ALU."""
    from accelsim.accel import alu

    real = alu.requantize
    monkeypatch.setattr(alu, "requantize", lambda *a, **k: real(*a, **k) + 1)
    js = tmp_path / "v.json"
    rc, out, _ = _cli(
        capsys,
        "verify",
        "resnet18",
        "--target",
        "simd-accel",
        "--precision",
        "w8a8",
        "--input-size",
        "16",
        "--json",
        js,
    )
    result = json.loads(js.read_text())
    assert rc == 1
    convs = [x for x in result["layers"] if x["op"] in ("conv2d", "dense")]
    # every output element of every requantized layer is off (VADD layers are unaffected)
    assert convs and all(x["mismatches"] == x["elements"] for x in convs)
    assert result["mismatches"] == sum(x["mismatches"] for x in result["layers"]) > 0
    assert f"{result['mismatches']} of {result['elements']} elements differ" in out


def test_compile_writes_programs_that_are_the_ones_that_run(tmp_path, capsys):
    from accelsim.accel import isa, load_config, run_program
    from accelsim.accel.sim import compile_graph, simulate_graph
    from accelsim.core.precision import parse_precision
    from accelsim.model.io import random_inputs
    from accelsim.model.loader import load_model
    from accelsim.quant import calibdata
    from accelsim.quant.ptq import quantize_graph
    from accelsim.ref.executor import run

    out = tmp_path / "k"
    rc, text, _ = _cli(
        capsys,
        "compile",
        "resnet18",
        "--target",
        "simd-accel",
        "--precision",
        "w4a8",
        "--input-size",
        "16",
        "--out",
        out,
    )
    assert rc == 0
    doc = json.loads((out / "kernels.json").read_text())
    # the same quantized graph as the CLI (random calibration, 1 sample)
    graph = load_model("resnet18", input_size=16)
    q = quantize_graph(graph, parse_precision("w4a8", "p"), calibdata.random(graph, 1)).graph
    listed = (
        [k["layer"] for k in doc["kernels"]]
        + [v["layer"] for v in doc["views"]]
        + [h["layer"] for h in doc["host_layers"]]
    )
    assert sorted(listed) == sorted(n.name for n in q.nodes)
    assert {h["op"] for h in doc["host_layers"]} >= {"max_pool", "softmax"}
    assert doc["precision"] == "w4a8" and doc["target"] == "simd-accel"
    # ResNet-18 repeats its blocks: fewer distinct programs than layers, and layers sharing a
    # key share the instruction stream's shape
    assert doc["distinct_kernels"] == len({k["key"] for k in doc["kernels"]}) < len(doc["kernels"])
    # the host core's layers are cortex-a55 kernels (under host/, its own kernels.json)
    host = json.loads((out / "host" / "kernels.json").read_text())
    assert doc["host_target"] == host["target"] == "cortex-a55"
    assert {h["layer"] for h in doc["host_layers"] if h["kernel"]} == {
        k["layer"] for k in host["kernels"]
    }
    total = len(doc["kernels"]) + len(host["kernels"])
    distinct = doc["distinct_kernels"] + host["distinct_kernels"]
    assert f"{total} kernels ({distinct} distinct" in text
    by_key = {}
    for k in doc["kernels"]:
        by_key.setdefault(k["key"], []).append(k["instructions"])
    assert all(all(c == cs[0] for c in cs) for cs in by_key.values())

    cfg = load_config("simd-accel")
    costs = {c.name: c for c in simulate_graph(q, cfg)}
    layers = {L.node.name: L for L in compile_graph(q, cfg) if L.program is not None}
    values = run(q, random_inputs(q, seed=0), keep=True)
    for k in doc["kernels"]:
        counts = k["instructions"]
        assert (
            counts["total"] == sum(counts["by_queue"].values()) == sum(counts["by_opcode"].values())
        )
        assert k["recipe"]["tensorize"] in ("accel_vmac", "accel_vmac_dw", None)
        assert k["tiles"]["dataflow"] in [d["name"] for d in k["recipe"]["dataflows"]]
        for space, use in k["scratchpad"].items():
            assert 0 <= use["used_bytes"] <= use["capacity_bytes"], (k["layer"], space)
        prog = isa.Program.parse((out / k["program"].split("/")[-1]).read_text())
        binary = (out / k["binary"].split("/")[-1]).read_bytes()
        assert isa.Program.decode_instructions(binary) == prog.instructions
        assert prog.counts() == counts["by_opcode"] and prog.macs == k["macs"]
        # the written program times as `accelsim simulate` costs that layer
        assert run_program(prog, cfg).cycles == pytest.approx(costs[k["layer"]].cycles)
    # and executes to the reference executor's output (one conv, one residual add)
    for name in ("layer1.0.conv1", "layer1.0.add"):
        L = layers[name]
        prog = isa.Program.parse((out / f"{name}.asm").read_text())
        res = run_program(prog, cfg, execute=True, dram=L.ld.pack(values))
        y = L.ld.unpack(res.dram["y"].reshape(prog.dram["y"].shape))
        ref = np.asarray(values[L.ld.output])
        assert np.array_equal(y.reshape(ref.shape).astype(np.int64), ref.astype(np.int64))


@pytest.mark.parametrize("command,precision", [("compile", "w8a4"), ("verify", "fp16")])
def test_impossible_precision_is_refused_before_any_work(
    tmp_path, capsys, monkeypatch, command, precision
):
    import accelsim.model.loader as loader

    def no_work(*a, **k):
        raise AssertionError("the model was loaded before the precision was checked")

    monkeypatch.setattr(loader, "load_model", no_work)
    extra = ["--out", tmp_path / "k"] if command == "compile" else ["--json", tmp_path / "v.json"]
    rc, out, err = _cli(
        capsys, command, "resnet18", "--target", "simd-accel", "--precision", precision, *extra
    )
    assert rc == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("accelsim: error: ")
    assert f"cannot run precision '{precision}'" in lines[0] and "simd-accel" in lines[0]
    assert "w4a4, w4a8, w8a8, w8a16, w16a16" in lines[0]
    assert not (tmp_path / "k").exists() and not (tmp_path / "v.json").exists()


def test_every_target_kind_has_a_back_end_with_both_fidelities():
    from accelsim.backends import BACKENDS, FIDELITIES
    from accelsim.core.target import KINDS

    assert set(BACKENDS) == set(KINDS)
    for b in BACKENDS.values():
        assert set(b.fidelities) == set(FIDELITIES) and b.default_fidelity in FIDELITIES
