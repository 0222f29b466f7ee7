"""Target descriptions: every shipped file loads; bad files give one-line errors naming file
and key."""

import json
import subprocess
import sys

import pytest

from accelsim.core.precision import parse_precision
from accelsim.core.target import TargetError, list_targets, load_target, load_target_file

REQUIRED = {
    "cortex-a53",
    "cortex-a55",
    "cortex-a76",
    "cortex-a720",
    "cortex-a520",
    "neoverse-v2",
    "kryo280",
    "hvx-v62",
    "hvx-v68",
    "hvx-v73",
    "host",
}


def test_shipped_targets_load_with_codegen_facts():
    targets = {t.name: t for t in list_targets()}
    assert REQUIRED <= set(targets)
    a76, a55 = targets["cortex-a76"], targets["cortex-a55"]
    assert "+dotprod" in a76.codegen.tvm_target["mattr"]
    # the A55 implements the Armv8.2 dot product (its SOG 4.15 times SDOT); the A53 and the
    # Kryo 280 (Cortex-A73 class) are Armv8.0 cores without it
    assert "+dotprod" in a55.codegen.tvm_target["mattr"] and "dotprod" in a55.codegen.features
    for name in ("cortex-a53", "kryo280"):
        assert "dotprod" not in targets[name].codegen.features, name
    # the 2023 cores: i8mm (SMMLA), BF16 and FP16 besides dot product, SVE kept out of codegen
    for name in ("cortex-a720", "cortex-a520", "neoverse-v2"):
        cg = targets[name].codegen
        assert {"dotprod", "i8mm", "bf16", "fp16"} <= set(cg.features), name
        assert "+i8mm" in cg.tvm_target["mattr"] and "-sve" in cg.tvm_target["mattr"], name
        assert targets[name].timing["mac"]["w8a8"]["macs_per_instruction"] == 32, name
    for name in ("hvx-v62", "hvx-v68", "hvx-v73"):
        t = targets[name]
        assert t.codegen.vector_bits == 1024 and "+hvx-length128b" in t.codegen.tvm_target["mattr"]
        assert t.codegen.tvm_target["mcpu"] == "hexagonv" + name[-2:]
    for t in targets.values():
        assert t.supports(parse_precision("w8a8"))
        assert t.timing["clock_hz"] > 1e8  # from the simulator's section, with sources
    assert not targets["kryo280"].how(parse_precision("fp16")) == "native"


def test_targets_cli_json():
    out = subprocess.run(
        [sys.executable, "-m", "accelsim", "targets", "--json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = {r["name"]: r for r in json.loads(out)}
    assert REQUIRED <= set(rows)
    assert rows["cortex-a76"]["precisions"]["w8a8"] == "native"
    assert rows["cortex-a76"]["precisions"]["w4a8"].startswith("emulated")
    for name in ("cortex-a720", "cortex-a520", "neoverse-v2"):
        assert "i8mm" in rows[name]["features"] and "dotprod" in rows[name]["features"]
    assert "dotprod" in rows["cortex-a55"]["features"]
    assert "dotprod" not in rows["cortex-a53"]["features"]


def test_default_report_covers_the_new_cores():
    """The default report (no --target) compares the 2023 i8mm cores with the 2018 ones."""
    from accelsim.reporting.spec import ReportSpec, make_plan

    names = {t.name for t in make_plan(ReportSpec(models=("digits_cnn",))).targets}
    want = {"cortex-a53", "cortex-a55", "cortex-a76", "kryo280"}
    assert want | {"cortex-a720", "cortex-a520", "neoverse-v2"} <= names


BASE = """name: t
kind: cpu-simd
codegen:
  tvm_target: {kind: llvm, mtriple: aarch64-linux-gnu}
  vector_bits: 128
  emulator: {kind: qemu-aarch64, cpu: max}
  native: [w8a8]
"""
# the cost sections a CPU target needs (BASE + COST loads)
COST = """timing:
  clock_hz: 1.0e+9
  issue_width: 2
  instructions:
    vector_alu: {throughput: 1, latency: 2}
    vector_mac_int8: {throughput: 1, latency: 4}
  mac:
    w8a8: {instruction: vector_mac_int8, macs_per_instruction: 16}
memory:
  levels:
    - {name: L1D, size_bytes: 32768, bandwidth_bytes_per_cycle: 16, latency_cycles: 3}
    - {name: DRAM, bandwidth_bytes_per_s: 1.0e+10, latency_ns: 100}
"""


@pytest.mark.parametrize(
    "text,fragment",
    [
        (BASE + "clock: 1\n", ": clock: unknown key"),
        (BASE.replace("kind: cpu-simd", "kind: gpu"), ": kind: expected one of cpu-simd"),
        (
            BASE.replace("  vector_bits: 128\n", "  vector_bits: 100\n"),
            ": codegen.vector_bits: expected a positive multiple of 64",
        ),
        (
            BASE.replace("native: [w8a8]", "native: [w3a8]"),
            "weight bits must be one of 4, 8, 16, found 3",
        ),
        (
            BASE.replace("kind: qemu-aarch64", "kind: gem5"),
            ": codegen.emulator.kind: expected one of",
        ),
        ("name: t\nkind: cpu-simd\n", ": codegen: missing"),
        (BASE.replace("kind: cpu-simd", "kind: accelerator"), ": accelerator: missing"),
        ("- a\n- b\n", ": expected a mapping at the top level"),
        (
            BASE + COST + "assumptions: {timing.window: guessed}\n",
            ": assumptions: 'timing.window' names no field of the file",
        ),
        (
            BASE + COST + "assumptions: {memory.levels.L2.latency_cycles: guessed}\n",
            ": assumptions: 'memory.levels.L2.latency_cycles' names no field",
        ),
        (BASE + COST + "assumptions: [timing.clock_hz]\n", ": assumptions: expected a mapping"),
        (
            BASE + COST + "assumptions: {timing.clock_hz: ''}\n",
            ": assumptions.timing.clock_hz: expected the reason as text",
        ),
        ("name: [t\n", ": not valid YAML at line 2"),
    ],
)
def test_bad_target_files(tmp_path, text, fragment):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(TargetError) as err:
        load_target_file(path)
    msg = str(err.value)
    assert str(path) in msg and fragment in msg and "\n" not in msg, msg


def test_unknown_target_name_lists_shipped():
    with pytest.raises(
        TargetError, match="unknown target 'cortex-a99'; shipped targets: .*cortex-a76"
    ):
        load_target("cortex-a99")


def test_assumptions_resolve_to_values(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text(
        BASE
        + "timing:\n  clock_hz: 1.0e+9\n  issue_width: 2\n"
        + "  instructions:\n    vector_load: {throughput: 1, latency: 4}\n"
        + "    vector_alu: {throughput: 1, latency: 1}\n"
        + "  mac: {w8a8: {instruction: vector_alu, macs_per_instruction: 4}}\n"
        + "memory: {levels: [{name: L1D, latency_cycles: 3, bandwidth_bytes_per_cycle: 16},\n"
        + "  {name: L2, latency_cycles: 10, bandwidth_bytes_per_cycle: 8}]}\n"
        + "energy: {static_power_w: 0.02}\n"
        + "assumptions:\n"
        + "  memory.levels.L2.latency_cycles: no vendor figure\n"
        + "  memory.levels.0.latency_cycles: by index\n"
        + "  timing.instructions.vector_load.latency: not in the guide\n"
        + "  energy.static_power_w: order of magnitude\n"
    )
    t = load_target_file(path)
    got = {a.path: (a.value, a.reason) for a in t.assumptions}
    assert got == {
        "memory.levels.L2.latency_cycles": (10, "no vendor figure"),
        "memory.levels.0.latency_cycles": (3, "by index"),
        "timing.instructions.vector_load.latency": (4, "not in the guide"),
        "energy.static_power_w": (0.02, "order of magnitude"),
    }


def test_shipped_assumptions_are_labelled_in_the_file():
    # every listed assumption names a field, and the file's own text says ASSUMPTION for it
    for t in list_targets():
        assert t.assumptions, f"{t.path}: no assumptions listed"
        text = open(t.path).read()
        assert "ASSUMPTION" in text
        for a in t.assumptions:
            assert a.reason and a.value is not None, (t.name, a.path)


def test_host_features_are_probed_at_load():
    """The host target records this machine's CPU features (LLVM's cpuid probe); the kernel's
    own view, /proc/cpuinfo, must agree on the ones the recipes choose kernels by."""
    import pathlib

    cpuinfo = pathlib.Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        pytest.skip("no /proc/cpuinfo")
    flags = set(cpuinfo.read_text().split())
    features = set(load_target("host").codegen.features)
    for llvm_name, linux_name in (
        ("avx512vnni", "avx512_vnni"),
        ("avxvnni", "avx_vnni"),
        ("avx512f", "avx512f"),
        ("avx2", "avx2"),
        ("fma", "fma"),
    ):
        assert (llvm_name in features) == (linux_name in flags), llvm_name


@pytest.mark.parametrize(
    "name, message",
    [
        ("cortex-a99", "accelerator.host.target: no CPU target 'cortex-a99'"),
        ("simd-accel-edge", "accelerator.host.target: expected a CPU target"),
    ],
)
def test_accelerator_host_target_names_a_cpu_target(tmp_path, name, message):
    """The host core's CPU target is checked when the accelerator's file loads: a typo or an
    accelerator there is one error naming the field."""
    from accelsim.accel.arch import AccelConfigError, load_config
    from accelsim.core.target import targets_dir

    text = (targets_dir() / "simd-accel.yaml").read_text()
    assert "    target: cortex-a55 " in text
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("    target: cortex-a55 ", f"    target: {name} "))
    with pytest.raises(AccelConfigError, match=message):
        load_config(str(bad))
