"""Whole-model `accelsim verify`: every generated kernel of MobileNet v2 and ResNet-18 runs on its
target (qemu-aarch64, qemu-hexagon, or this machine through the TVM runtime for no target here)
and is compared element by element with the reference executor's tensor for that layer.

Issue 4's "must show": zero mismatches at w8a8 on cortex-a55, cortex-a76 and hvx-v68, at w16a16
on hvx-v68 and at w4a8 on cortex-a76; fp32 on cortex-a76 within 1e-5 relative (verify counts an
fp32 element as differing when it is off by more than 1e-5 of max(1, max|reference|), so 0
mismatches is the claim). Beyond the issue's list: w4a4 on cortex-a76 (int4 activations, one
per byte, through the same sdot kernels). Input 32x32: the smallest size at which every layer of both models
still has an output of at least 1x1 (checked below), so every layer is exercised.
"""

from __future__ import annotations

import json

import pytest

from accelsim import cli
from accelsim.core.target import load_target
from accelsim.kernels import emulate

SIZE = 32
CASES = [
    ("cortex-a55", "w8a8"),
    ("cortex-a76", "w8a8"),
    ("hvx-v68", "w8a8"),
    ("hvx-v68", "w16a16"),
    ("cortex-a76", "w4a8"),
    ("cortex-a76", "fp32"),
    ("cortex-a76", "w4a4"),
    ("cortex-a76", "w8a16"),  # issue 14: TFLite's 16x8 (int16 activations, int8 weights)
    ("hvx-v68", "w8a16"),
]
MODELS = ("mobilenet_v2", "resnet18")
_ARCH = {"qemu-aarch64": "aarch64", "qemu-hexagon": "hexagon"}


pytestmark = pytest.mark.usefixtures("kernel_cache")


def test_input_size_keeps_every_layer_meaningful():
    from accelsim.model import zoo

    for model in MODELS:
        g = zoo.build(model, input_size=SIZE)
        for node in g.nodes:
            shape = g.tensors[node.outputs[0]].shape
            if len(shape) == 4:
                assert min(shape[2:]) >= 1, (model, node.name, shape)
        last_conv = [n for n in g.nodes if n.op == "conv2d"][-1]
        assert g.tensors[last_conv.outputs[0]].shape[2:] == (1, 1), (model, last_conv.name)


# Left out to keep the suite's time (compiling for hvx-v68 costs about 3 s a kernel): w4a4 runs
# the w4a8 sdot kernels (ResNet-18 keeps it); hvx-v68 at w16a16 on ResNet-18 (MobileNet v2's
# int16 depthwise kernels: test_kernels.py's vmpy check); hvx-v68 at w8a16 on the stored 16x8
# MobileNet v2 of test_stored.py, which also verifies an int8 one there.
LEFT_OUT = {
    ("mobilenet_v2", "cortex-a76", "w4a4"),
    ("mobilenet_v2", "hvx-v68", "w16a16"),
    ("mobilenet_v2", "hvx-v68", "w8a16"),
    ("resnet18", "hvx-v68", "w8a16"),
}
VERIFY_CASES = [(m, t, p) for m in MODELS for t, p in CASES if (m, t, p) not in LEFT_OUT]


@pytest.mark.parametrize("model,target,precision", VERIFY_CASES)
def test_verify_reports_zero_mismatches(model, target, precision, tmp_path, capsys):
    arch = _ARCH.get(load_target(target).codegen.emulator.kind)
    missing = emulate.missing_tools(arch) if arch else []
    if missing:
        pytest.skip(f"no {arch} toolchain: {', '.join(missing)}")
    out = tmp_path / "verify.json"
    rc = cli.main(
        [
            "verify",
            model,
            "--target",
            target,
            "--precision",
            precision,
            "--input-size",
            str(SIZE),
            "--json",
            str(out),
        ]
    )
    result = json.loads(out.read_text())
    bad = {x["name"]: x["mismatches"] for x in result["layers"] if x["mismatches"]}
    assert rc == 0 and result["mismatches"] == 0, bad
    # every convolution and the classifier were run (nothing silently left out)
    ops = [x["op"] for x in result["layers"]]
    assert "softmax" in ops  # lowered at every precision here (accelsim/lower/softmax.py)
    assert ops.count("dense") == 1 and ops.count("conv2d") >= (
        36 if model == "mobilenet_v2" else 20
    )
    assert result["elements"] > 10_000
    assert (
        f"{result['mismatches']} of {result['elements']} elements differ" in capsys.readouterr().out
    )
