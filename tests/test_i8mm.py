"""The SMMLA tensor intrinsic (accelsim.lower.i8mm): chosen by the target's `i8mm` feature
through the recipe's `tensorize` list, present in the generated conv2d / dense code of the cores
that have it, bit-exact against the reference executor under qemu-aarch64 -cpu max (which
implements FEAT_I8MM), and illegal on an emulated CPU without it (qemu -cpu cortex-a76)."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from accelsim import cli
from accelsim.core.precision import parse_precision
from accelsim.core.target import load_target
from accelsim.kernels import compile as cg
from accelsim.kernels import emulate
from accelsim.kernels.emulate import EmulationError
from accelsim.lower import intrin
from accelsim.lower.i8mm import without_i8mm
from accelsim.lower.lower import lower_graph, lower_node
from accelsim.model import zoo
from accelsim.model.builder import GraphBuilder
from accelsim.quant import calibdata
from accelsim.quant.ptq import quantize_graph
from accelsim.ref.executor import run

I8MM_TARGETS = ["cortex-a720", "cortex-a520", "neoverse-v2"]

pytestmark = pytest.mark.usefixtures("kernel_cache")


def need_qemu():
    missing = emulate.missing_tools("aarch64")
    if missing:
        pytest.skip(f"no aarch64 toolchain: {', '.join(missing)}")


def count(asm: str, mnemonic: str) -> int:
    return len(re.findall(rf"^\s*{mnemonic}\s", asm, re.M))


@cache
def quantized(model: str, precision: str = "w8a8", size: int = 32):
    g = zoo.build(model, input_size=size)
    return quantize_graph(g, parse_precision(precision), calibdata.random(g, 2)).graph


def test_table_and_selection_by_feature():
    it = intrin.select(["smmla", "sdot"], ("neon", "dotprod", "i8mm"), "int8", 8, kind="mmla")
    assert (it.name, it.lanes, it.depth, it.requires) == ("smmla", 2, 8, ("neon", "i8mm"))
    assert intrin.select(["smmla"], ("neon", "dotprod"), "int8", 8, kind="mmla") is None
    assert intrin.select(["smmla"], ("neon", "i8mm"), "uint8", 4, kind="mmla").llvm == (
        "llvm.aarch64.neon.usmmla.v4i32.v16i8",
    )
    assert "smmla" in intrin.NAMES  # the recipe schema accepts the name


@pytest.mark.parametrize("target", I8MM_TARGETS)
def test_smmla_in_every_conv_kernel_and_sdot_in_batch_one_dense(target):
    q = quantized("resnet18")
    t = load_target(target)
    layers = [L for L in lower_graph(q, t) if L.op_class in ("conv2d", "dense")]
    assert len(layers) == 21
    for L in layers:
        asm = Path(cg.compile_layer(L, t).asm_path).read_text()
        if L.op_class == "conv2d":  # every stride (1 and 2) and odd widths (the 1x1 output)
            assert L.schedule.intrinsic == "smmla" and count(asm, "smmla") > 0, L.name
        else:  # one row: SMMLA would leave half of each instruction idle; SDOT per channel
            assert L.schedule.intrinsic == "sdot_partials" and count(asm, "sdot") > 0, L.name


def test_switching_i8mm_off_gives_sdot():
    q = quantized("resnet18")
    node = q.node("layer1.0.conv1")  # 3x3 x 64 channels: sdot by element (sdot_lane)
    assert lower_node(q, node, load_target("cortex-a720")).schedule.intrinsic == "smmla"
    off = without_i8mm(load_target("cortex-a720"))
    assert lower_node(q, node, off).schedule.intrinsic == "sdot_lane"
    for t in ("cortex-a53", "cortex-a55", "cortex-a76", "kryo280"):
        assert lower_node(q, node, load_target(t)).schedule.intrinsic != "smmla", t


def test_four_bit_weights_use_smmla_unpacked():
    q = quantized("resnet18", "w4a8")
    L = lower_node(q, q.node("layer1.0.conv1"), load_target("cortex-a720"))
    assert L.schedule.intrinsic == "smmla" and L.signature["intrinsic"] == "accelsim.smmla.int8.w4"


def batch2_dense_graph():
    rng = np.random.default_rng(3)
    b = GraphBuilder("fc2")
    x = b.input("x", (2, 40))
    w = b.const("fc.w", rng.standard_normal((24, 40)) * 0.1, "float32")
    bias = b.const("fc.b", rng.standard_normal(24) * 0.1, "float32")
    b.output(b.add("dense", [x, w, bias], name="fc"))
    return b.build()


def test_batch_two_dense_is_exact_with_smmla():
    need_qemu()
    g = batch2_dense_graph()
    q = quantize_graph(g, parse_precision("w8a8"), calibdata.random(g, 2)).graph
    t = load_target("cortex-a720")
    L = lower_node(q, q.node("fc"), t)
    assert L.schedule.intrinsic == "smmla"
    k = cg.compile_layer(L, t)
    assert count(Path(k.asm_path).read_text(), "smmla") > 0
    values = run(q, [calibdata.random(g, 1, seed=5).samples[0]], keep=True)
    data = L.pack_inputs(values)
    out = emulate.run_aarch64(k.obj_path, k.symbol, list(k.args), data, [k.args[-1].name])
    got = L.unpack_output(out.outputs[k.args[-1].name])
    np.testing.assert_array_equal(got, values[q.node("fc").outputs[0]])


def test_smmla_kernel_faults_on_a_cpu_without_i8mm():
    """The same object runs on qemu's `max` CPU and dies with SIGILL on a Cortex-A76 (Armv8.2:
    dot product, no I8MM)."""
    need_qemu()
    q = quantized("resnet18")
    t = load_target("cortex-a720")
    L = lower_node(q, q.node("layer1.0.conv1"), t)
    k = cg.compile_layer(L, t)
    values = run(q, [calibdata.random(quantized("resnet18"), 1, seed=1).samples[0]], keep=True)
    data = L.pack_inputs(values)
    outs = [k.args[-1].name]
    ok = emulate.run_aarch64(k.obj_path, k.symbol, list(k.args), data, outs, cpu="max")
    want = values[q.node("layer1.0.conv1").outputs[0]]
    np.testing.assert_array_equal(L.unpack_output(ok.outputs[outs[0]]), want)
    with pytest.raises(EmulationError, match=r"illegal instruction: .*cortex-a76"):
        emulate.run_aarch64(k.obj_path, k.symbol, list(k.args), data, outs, cpu="cortex-a76")


# ResNet-18 on every i8mm core; MobileNet v2 (depthwise and pointwise kernels, the same smmla
# code on every core apart from -mcpu) on the in-order cortex-a520 only, for the suite's time
WHOLE_MODEL = [("resnet18", t) for t in I8MM_TARGETS] + [("mobilenet_v2", "cortex-a520")]


@pytest.mark.parametrize("model,target", WHOLE_MODEL)
def test_whole_model_verify_zero_mismatches(model, target, tmp_path):
    need_qemu()
    out = tmp_path / "verify.json"
    argv = ["verify", model, "--target", target, "--precision", "w8a8", "--input-size", "32"]
    rc = cli.main([*argv, "--json", str(out)])
    result = json.loads(out.read_text())
    bad = {x["name"]: x["mismatches"] for x in result["layers"] if x["mismatches"]}
    assert rc == 0 and result["mismatches"] == 0, bad
    assert result["elements"] > 10_000
