"""Nothing a user does yields a traceback, a silent wrong number, or a file outside --out.

A corpus of bad inputs and faults, run through the command line in-process: each case asserts
a non-zero exit, exactly one line on stderr (`accelsim: error: ...`), no traceback, the file,
field or option named, nothing written outside the case's --out and nothing partial inside it.
`CLASSES` counts the corpus by class (the report of issue 13 quotes it).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import yaml

from accelsim.cli import main

REPO = Path(__file__).resolve().parents[1]
A76 = REPO / "targets" / "cortex-a76.yaml"
ACCEL = REPO / "targets" / "simd-accel.yaml"


# ---------------------------------------------------------------------------------------------
# fixtures: files a case refers to by name ({tiny}, {nanw}, ...)
# ---------------------------------------------------------------------------------------------


def _onnx_model(name: str = "tiny", w=None, shape=(1, 4)):
    from onnx import TensorProto, helper, numpy_helper

    w = np.ones((2, shape[1]), np.float32) if w is None else w
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [shape[0], 2])
    node = helper.make_node("Gemm", ["x", "W"], ["y"], transB=1)
    g = helper.make_graph([node], name, [x], [y], [numpy_helper.from_array(w, "W")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m.SerializeToString()


def _target_text(mutate: Callable[[dict], None], base: Path = A76) -> str:
    data = yaml.safe_load(base.read_text())
    mutate(data)
    return yaml.safe_dump(data)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("inputs")
    out: dict[str, str] = {}

    def put(name: str, data: bytes | str) -> None:
        p = d / name
        p.write_bytes(data if isinstance(data, bytes) else data.encode())
        out[name.replace(".", "_")] = str(p)

    put("tiny.onnx", _onnx_model())
    w = np.ones((2, 4), np.float32)
    w[1, 2] = np.nan
    put("nanw.onnx", _onnx_model(w=w))
    w = np.ones((2, 4), np.float32)
    w[0, 0] = np.inf
    put("infw.onnx", _onnx_model(w=w))
    put("huge.onnx", _onnx_model(shape=(100000, 100000)))
    put("garbage.onnx", b"\x08\x01garbage that is not a protobuf \xff\xfe" * 7)
    put("empty.onnx", b"")
    put("garbage.tflite", b"TFL3" + b"\x00\xff" * 40)
    put("text.tflite", "hello\n")
    put("empty.npy", b"")
    put("text.npy", "1, 2, 3\n")
    buf = io.BytesIO()
    np.savez(buf, x=np.array([1, "a", None], dtype=object))
    put("object.npz", buf.getvalue())
    buf = io.BytesIO()
    np.save(buf, np.array([1, None], dtype=object), allow_pickle=True)
    put("object.npy", buf.getvalue())
    for name, arr in {
        "nan.npy": np.full((1, 4), np.nan, np.float32),
        "inf.npy": np.array([[1, 2, np.inf, 4]], np.float32),
        "ninf.npy": np.array([[1, -np.inf, 3, 4]], np.float32),
        "shape.npy": np.ones((1, 5), np.float32),
        "good.npy": np.ones((1, 4), np.float32),
        "digits.npy": np.ones((4, 1, 8, 8), np.float32),
        "calnan.npy": np.concatenate([np.ones((3, 1, 4)), np.full((1, 1, 4), np.nan)]),
        "calshape.npy": np.ones((3, 7), np.float32),
        "strings.npy": np.array([["a", "b", "c", "d"]]),
    }.items():
        buf = io.BytesIO()
        np.save(buf, arr)
        put(name, buf.getvalue())
    buf = io.BytesIO()
    np.savez(buf, other=np.ones((1, 4), np.float32))
    put("nokey.npz", buf.getvalue())
    buf = io.BytesIO()
    np.savez(buf, x=np.full((1, 4), np.nan, np.float32))
    put("nan.npz", buf.getvalue())
    # target files
    put("binary_target.yaml", b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)))
    put("latin1_target.yaml", "name: caf\xe9\n".encode("latin-1"))
    put("empty_target.yaml", "")
    put("list_target.yaml", "- a\n- b\n")
    put("syntax_target.yaml", "name: [t\n")
    for key, mutate in TARGET_MUTATIONS.items():
        put(f"t_{key}.yaml", _target_text(mutate))
    for key, mutate in ACCEL_MUTATIONS.items():
        put(f"a_{key}.yaml", _target_text(mutate, ACCEL))
    # other user files
    put("bad_json.json", '[{"model": "digits_cnn", ')
    put("dict.json", '{"model": "digits_cnn"}')
    put("rows.json", "[1, 2]")
    put("binary.json", b"\x00\x01\x02")
    put("bad_grid.yaml", "grid: {lanes: [16, 32\n")
    put("seed_grid.yaml", "grid: {lanes: [16]}\nseed: abc\n")
    put("sample_grid.yaml", "grid: {lanes: [16]}\nsample: many\n")
    put("zero_sample_grid.yaml", "grid: {lanes: [16]}\nsample: 0\n")
    put("neg_seed_grid.yaml", "grid: {lanes: [16]}\nseed: -3\n")
    put("nogrid.yaml", "sample: 3\n")
    put("extra_grid.yaml", "grid: {lanes: [16]}\nbanana: 1\n")
    put("emptylist_grid.yaml", "grid: {lanes: []}\n")
    put("nan_grid.yaml", "grid: {lanes: [.nan]}\n")
    put("binary_grid.yaml", b"\xff\xfe\x00grid")
    put("bad_mixed.yaml", "default: w8a8\nlayers: {conv: [\n")
    put("unknown_mixed.yaml", "default: w8a8\nbanana: 1\n")
    put("prec_mixed.yaml", 'default: w9a9\nlayers: {"*": w8a8}\n')
    put("binary_mixed.yaml", b"\x00\x01")
    put("w8a4_mixed.yaml", 'default: w8a8\nlayers: {"*": w8a4}\n')
    (d / "sched").mkdir()
    (d / "sched" / "cpu-simd.yaml").write_bytes(b"\x00\x01 not a recipe")
    (d / "sched" / "accelerator.yaml").write_text("conv2d: {default: {tile: {banana: 4}}}\n")
    out["sched"] = str(d / "sched")
    (d / "adir").mkdir()
    out["adir"] = str(d / "adir")
    (d / "adir.onnx").mkdir()
    out["adir_onnx"] = str(d / "adir.onnx")
    (d / "adir.yaml").mkdir()
    out["adir_yaml"] = str(d / "adir.yaml")
    (d / "adir.npy").mkdir()
    out["adir_npy"] = str(d / "adir.npy")
    out["missing_onnx"] = str(d / "nope.onnx")
    out["missing_yaml"] = str(d / "nope.yaml")
    out["missing_npy"] = str(d / "nope.npy")
    return out


# one mutation of a valid CPU target per schema rule; the key names the field the error names
TARGET_MUTATIONS: dict[str, Callable[[dict], None]] = {
    "clock_zero": lambda t: t["timing"].update(clock_hz=0),
    "clock_negative": lambda t: t["timing"].update(clock_hz=-1.8e9),
    "clock_nan": lambda t: t["timing"].update(clock_hz=float("nan")),
    "clock_inf": lambda t: t["timing"].update(clock_hz=float("inf")),
    "clock_string": lambda t: t["timing"].update(clock_hz="1e9"),
    "clock_bool": lambda t: t["timing"].update(clock_hz=True),
    "clock_missing": lambda t: t["timing"].pop("clock_hz"),
    "issue_zero": lambda t: t["timing"].update(issue_width=0),
    "issue_float": lambda t: t["timing"].update(issue_width=2.5),
    "issue_missing": lambda t: t["timing"].pop("issue_width"),
    "window_negative": lambda t: t["timing"].update(window=-1),
    "pipes_zero": lambda t: t["timing"]["pipes"].update(vector=0),
    "throughput_zero": lambda t: t["timing"]["instructions"]["vector_alu"].update(throughput=0),
    "throughput_negative": lambda t: t["timing"]["instructions"]["vector_mac_int8"].update(
        throughput=-2
    ),
    "throughput_nan": lambda t: t["timing"]["instructions"]["vector_load"].update(
        throughput=float("nan")
    ),
    "latency_negative": lambda t: t["timing"]["instructions"]["vector_alu"].update(latency=-1),
    "latency_float": lambda t: t["timing"]["instructions"]["vector_alu"].update(latency=1.5),
    "instr_unknown_key": lambda t: t["timing"]["instructions"]["vector_alu"].update(speed=3),
    "instr_not_mapping": lambda t: t["timing"]["instructions"].update(vector_alu=7),
    "vector_alu_missing": lambda t: t["timing"]["instructions"].pop("vector_alu"),
    "instructions_missing": lambda t: t["timing"].pop("instructions"),
    "mac_missing": lambda t: t["timing"].pop("mac"),
    "mac_bad_class": lambda t: t["timing"]["mac"]["w8a8"].update(instruction="vector_magic"),
    "mac_bad_extra": lambda t: t["timing"]["mac"]["w4a8"].update(extra={"vector_magic": 1}),
    "mac_zero": lambda t: t["timing"]["mac"]["w8a8"].update(macs_per_instruction=0),
    "mac_precision": lambda t: t["timing"]["mac"].update(w9a9=t["timing"]["mac"]["w8a8"]),
    "mac_negative_extra": lambda t: t["timing"]["mac"]["w4a8"].update(extra={"vector_alu": -1}),
    "timing_missing": lambda t: t.pop("timing"),
    "timing_list": lambda t: t.update(timing=[1, 2]),
    "memory_missing": lambda t: t.pop("memory"),
    "levels_empty": lambda t: t["memory"].update(levels=[]),
    "bandwidth_negative": lambda t: t["memory"]["levels"][3].update(bandwidth_bytes_per_s=-1e9),
    "bandwidth_zero": lambda t: t["memory"]["levels"][0].update(bandwidth_bytes_per_cycle=0),
    "bandwidth_missing": lambda t: t["memory"]["levels"][1].pop("bandwidth_bytes_per_cycle"),
    "size_zero": lambda t: t["memory"]["levels"][0].update(size_bytes=0),
    "size_float": lambda t: t["memory"]["levels"][0].update(size_bytes=1.5),
    "level_twice": lambda t: t["memory"]["levels"][1].update(name="L1D"),
    "level_no_name": lambda t: t["memory"]["levels"][1].pop("name"),
    "energy_negative": lambda t: t["energy"]["ops_pj"].update(int8_mac=-0.1),
    "energy_nan": lambda t: t["energy"]["memory_pj_per_byte"].update(L2=float("nan")),
    "static_negative": lambda t: t["energy"].update(static_power_w=-1),
    "energy_unknown": lambda t: t["energy"].update(banana=1),
    "vector_bits_100": lambda t: t["codegen"].update(vector_bits=100),
    "vector_bits_auto": lambda t: t["codegen"].update(vector_bits="auto"),
    "emulator_gem5": lambda t: t["codegen"]["emulator"].update(kind="gem5"),
    "tvm_kind": lambda t: t["codegen"]["tvm_target"].update(kind="cuda"),
    "tvm_option": lambda t: t["codegen"]["tvm_target"].update(mcpu=3),
    "native_bad": lambda t: t["codegen"].update(native=["w3a8"]),
    "native_string": lambda t: t["codegen"].update(native="w8a8"),
    "features_string": lambda t: t["codegen"].update(features="neon"),
    "codegen_missing": lambda t: t.pop("codegen"),
    "kind_bad": lambda t: t.update(kind="gpu"),
    "name_missing": lambda t: t.pop("name"),
    "top_unknown": lambda t: t.update(clock=1),
    "assumption_nofield": lambda t: t["assumptions"].update({"timing.nope": "guessed"}),
}
# the field each mutation's error must name
TARGET_FIELDS = {
    "clock_missing": "timing.clock_hz",
    "issue_zero": "timing.issue_width",
    "issue_float": "timing.issue_width",
    "window_negative": "timing.window",
    "issue_missing": "timing.issue_width",
    "pipes_zero": "timing.pipes.vector",
    "throughput_zero": "timing.instructions.vector_alu.throughput",
    "throughput_negative": "timing.instructions.vector_mac_int8.throughput",
    "throughput_nan": "timing.instructions.vector_load.throughput",
    "latency_negative": "timing.instructions.vector_alu.latency",
    "latency_float": "timing.instructions.vector_alu.latency",
    "instr_unknown_key": "timing.instructions.vector_alu.speed",
    "instr_not_mapping": "timing.instructions.vector_alu",
    "vector_alu_missing": "vector_alu",
    "instructions_missing": "timing.instructions",
    "mac_missing": "timing.mac",
    "mac_bad_class": "mac.w8a8.instruction",
    "mac_bad_extra": "mac.w4a8.extra.vector_magic",
    "mac_zero": "timing.mac.w8a8.macs_per_instruction",
    "mac_precision": "timing.mac.w9a9",
    "mac_negative_extra": "timing.mac.w4a8.extra.vector_alu",
    "timing_missing": "timing",
    "timing_list": "timing",
    "memory_missing": "memory",
    "levels_empty": "memory.levels",
    "bandwidth_negative": "memory.levels[3].bandwidth_bytes_per_s",
    "bandwidth_zero": "memory.levels[0].bandwidth_bytes_per_cycle",
    "bandwidth_missing": "memory.levels[1]",
    "size_zero": "memory.levels[0].size_bytes",
    "size_float": "memory.levels[0].size_bytes",
    "level_twice": "L1D",
    "level_no_name": "memory.levels[1].name",
    "energy_negative": "energy.ops_pj.int8_mac",
    "energy_nan": "energy.memory_pj_per_byte.L2",
    "static_negative": "energy.static_power_w",
    "energy_unknown": "energy.banana",
    "vector_bits_100": "codegen.vector_bits",
    "vector_bits_auto": "codegen.vector_bits",
    "emulator_gem5": "codegen.emulator.kind",
    "tvm_kind": "codegen.tvm_target",
    "tvm_option": "mcpu",
    "native_bad": "codegen.native[0]",
    "native_string": "codegen.native",
    "features_string": "codegen.features",
    "codegen_missing": "codegen",
    "kind_bad": "kind",
    "name_missing": "name",
    "top_unknown": "clock",
    "assumption_nofield": "timing.nope",
}
ACCEL_MUTATIONS: dict[str, Callable[[dict], None]] = {
    "clock_zero": lambda t: t["timing"].update(clock_hz=0),
    "lanes_zero": lambda t: t["accelerator"].update(lanes=0),
    "lanes_nan": lambda t: t["accelerator"].update(lanes=float("nan")),
    "dram_negative": lambda t: t["accelerator"]["dram"].update(bytes_per_cycle=-1.0),
    "section_missing": lambda t: t.pop("accelerator"),
    "static_negative": lambda t: t["energy"].update(static_power_w=-0.5),
    "area_bitcell_zero": lambda t: t["area"].update(sram_bitcell_um2=0),
    "area_efficiency_above_one": lambda t: t["area"].update(sram_array_efficiency=1.5),
    "area_unknown": lambda t: t["area"].update(gates=3),
}
ACCEL_FIELDS = {
    "clock_zero": "timing.clock_hz",
    "lanes_zero": "accelerator.lanes",
    "lanes_nan": "accelerator.lanes",
    "dram_negative": "accelerator.dram.bytes_per_cycle",
    "section_missing": "accelerator",
    "static_negative": "energy.static_power_w",
    "area_bitcell_zero": "area.sram_bitcell_um2",
    "area_efficiency_above_one": "area.sram_array_efficiency",
    "area_unknown": "area.gates",
}


# ---------------------------------------------------------------------------------------------
# the corpus
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    cls: str  # the class of the issue's list it belongs to
    argv: tuple[str, ...]  # {name} placeholders: files, {out}: the case's output path
    names: tuple[str, ...]  # what the error line must contain (after placeholders)
    env: dict = field(default_factory=dict)


def C(cls: str, argv: str, *names: str, **env: str) -> Case:
    return Case(cls, tuple(argv.split()), names, env)


S = "simulate digits_cnn --precision w8a8 --target"  # a cheap command that loads a target
CASES: list[Case] = [
    # -- arguments: one line, the option named ---------------------------------------------
    C("arguments", "run", "model"),
    C("arguments", "run digits_cnn", "--output"),
    C("arguments", "compile digits_cnn --target cortex-a76", "--out"),
    C("arguments", "simulate digits_cnn", "--target"),
    C("arguments", "simulate digits_cnn --target cortex-a76 --input-size x", "--input-size"),
    C("arguments", "simulate digits_cnn --target cortex-a76 --input-size 0", "--input-size"),
    C("arguments", "simulate digits_cnn --target cortex-a76 --input-size -8", "--input-size"),
    C("arguments", "simulate digits_cnn --target cortex-a76 --fidelity exact", "--fidelity"),
    C("arguments", "run digits_cnn --output {out}.npy --seed -1", "--seed"),
    C("arguments", "run digits_cnn --output {out}.npy --seed 1.5", "--seed"),
    C("arguments", "verify digits_cnn --target host --seed -7", "--seed"),
    C("arguments", "sweep --grid lanes=16 --sample 0 --out {out}", "--sample"),
    C("arguments", "sweep --grid lanes=16 --seed -2 --out {out}", "--seed"),
    C("arguments", "sweep --grid lanes=16 --workers 0 --out {out}", "--workers"),
    C("arguments", "measure digits_cnn --repeat 0", "--repeat"),
    C("arguments", "measure digits_cnn --warmup -1", "--warmup"),
    C("arguments", "measure digits_cnn --statistic mean", "--statistic"),
    C(
        "arguments",
        "mixed-search digits_cnn --target cortex-a76 --out {out} --max-drop nan --min-snr-db 20",
        "--max-drop",
    ),
    C(
        "arguments",
        "mixed-search digits_cnn --target cortex-a76 --out {out} --min-snr-db inf",
        "--min-snr-db",
    ),
    C(
        "arguments",
        "mixed-search digits_cnn --target cortex-a76 --out {out} --calib-random 0",
        "--calib-random",
    ),
    C(
        "arguments",
        "mixed-search digits_cnn --target cortex-a76 --out {out} --train-epochs -1",
        "--train-epochs",
    ),
    C("arguments", "quantize digits_cnn --out {out}.onnx", "--precision"),
    C("arguments", "report --input-size 0 --out {out}", "--input-size"),
    C("arguments", "banana", "banana"),
    C("arguments", "models --json --extra", "--extra"),
    # -- precisions -----------------------------------------------------------------------
    C("precision", "run digits_cnn --output {out}.npy --precision=", "--precision"),
    C("precision", "quantize digits_cnn --precision= --out {out}.onnx", "--precision"),
    C("precision", "run digits_cnn --output {out}.npy --precision w3a8", "w3a8"),
    C("precision", "simulate digits_cnn --target cortex-a76 --precision banana", "banana"),
    C(
        "precision",
        "simulate digits_cnn --target simd-accel --precision w8a4",
        "w8a4",
        "simd-accel",
    ),
    C("precision", "simulate digits_cnn --target hvx-v68 --precision fp16,w8a8", "fp16"),
    C("precision", "compile digits_cnn --target simd-accel --precision fp32 --out {out}", "fp32"),
    C("precision", "verify digits_cnn --target cortex-a76 --precision w5a8", "w5a8"),
    C("precision", "report --model digits_cnn --precision w2a2 --out {out}", "w2a2"),
    C("precision", "sweep --grid precision=w9a9 --out {out}", "w9a9"),
    C(
        "precision",
        "mixed-search digits_cnn --target cortex-a76 --precisions w8a8,x --out {out}",
        "x",
    ),
    C(
        "precision",
        "quantize digits_cnn --precision w8a8/banana --out {out}.onnx --calib-random 2",
        "banana",
    ),
    # -- model files ----------------------------------------------------------------------
    C("model file", "run {missing_onnx} --output {out}.npy", "{missing_onnx}"),
    C("model file", "run {adir_onnx} --output {out}.npy", "{adir_onnx}"),
    C("model file", "run {garbage_onnx} --output {out}.npy", "{garbage_onnx}"),
    C("model file", "run {empty_onnx} --output {out}.npy", "{empty_onnx}"),
    C("model file", "run {garbage_tflite} --output {out}.npy", "{garbage_tflite}"),
    C("model file", "run {text_tflite} --output {out}.npy", "{text_tflite}"),
    C("model file", "run model.pt --output {out}.npy", "model.pt"),
    C(
        "model file",
        "simulate {garbage_onnx} --target cortex-a76 --precision w8a8",
        "{garbage_onnx}",
    ),
    C("model file", "simulate {adir_onnx} --target cortex-a76 --precision w8a8", "{adir_onnx}"),
    C(
        "model file",
        "compile {empty_onnx} --target cortex-a76 --precision w8a8 --out {out}",
        "{empty_onnx}",
    ),
    C("model file", "verify {missing_onnx} --target cortex-a76 --precision w8a8", "{missing_onnx}"),
    C(
        "model file",
        "quantize {garbage_onnx} --precision w8a8 --calib-random 2 --out {out}.onnx",
        "{garbage_onnx}",
    ),
    C(
        "model file",
        "report --model {garbage_onnx} --target cortex-a76 --out {out}",
        "{garbage_onnx}",
    ),
    C(
        "model file",
        "report --model {missing_onnx} --target cortex-a76 --out {out}",
        "{missing_onnx}",
    ),
    C(
        "model file",
        "mixed-search {empty_onnx} --target cortex-a76 --min-snr-db 20 --out {out}",
        "{empty_onnx}",
    ),
    C("model file", "measure {garbage_tflite}", "{garbage_tflite}"),
    C("model file", "run resnet9000 --output {out}.npy", "resnet9000"),
    C("model file", "simulate tiny_cnn --target cortex-a76 --precision w8a8", "tiny_cnn"),
    # -- target files (also through every command that takes one) ---------------------------
    C("target file", f"{S} {{binary_target_yaml}}", "{binary_target_yaml}"),
    C("target file", f"{S} {{latin1_target_yaml}}", "{latin1_target_yaml}"),
    C("target file", f"{S} {{empty_target_yaml}}", "{empty_target_yaml}"),
    C("target file", f"{S} {{list_target_yaml}}", "{list_target_yaml}"),
    C("target file", f"{S} {{syntax_target_yaml}}", "{syntax_target_yaml}", "line 2"),
    C("target file", f"{S} {{adir_yaml}}", "{adir_yaml}"),
    C("target file", f"{S} {{missing_yaml}}", "{missing_yaml}"),
    C("target file", f"{S} cortex-a99", "cortex-a99"),
    C(
        "target file",
        "compile digits_cnn --target {t_clock_zero_yaml} --out {out}",
        "timing.clock_hz",
    ),
    C("target file", "verify digits_cnn --target {t_throughput_zero_yaml}", "throughput"),
    C(
        "target file",
        "report --model digits_cnn --target {t_clock_negative_yaml} --out {out}",
        "timing.clock_hz",
    ),
    C(
        "target file",
        "mixed-search digits_cnn --target {t_bandwidth_negative_yaml} --min-snr-db 20 --out {out}",
        "bandwidth_bytes_per_s",
    ),
    C("target file", "measure digits_cnn --target {t_clock_nan_yaml}", "timing.clock_hz"),
    C(
        "target file",
        "sweep --target {a_lanes_zero_yaml} --grid lanes=16 --out {out}",
        "accelerator.lanes",
    ),
    *[
        C(
            "target schema",
            f"{S} {{t_{key}_yaml}}",
            f"{{t_{key}_yaml}}",
            TARGET_FIELDS.get(key, "timing.clock_hz"),
        )
        for key in TARGET_MUTATIONS
    ],
    *[
        C("target schema", f"{S} {{a_{key}_yaml}}", f"{{a_{key}_yaml}}", ACCEL_FIELDS[key])
        for key in ACCEL_MUTATIONS
    ],
    # -- output paths -----------------------------------------------------------------------
    C(
        "output path",
        "compile digits_cnn --target cortex-a76 --precision w8a8 --out {good_npy}",
        "--out",
        "{good_npy}",
    ),
    C(
        "output path",
        "compile digits_cnn --target cortex-a76 --precision w8a8 --out {good_npy}/k",
        "--out",
        "{good_npy}",
    ),
    C("output path", "run digits_cnn --output {adir_npy}", "--output", "{adir_npy}"),
    C("output path", "run digits_cnn --output {good_npy}/y.npy", "--output", "{good_npy}"),
    C("output path", "run digits_cnn --output {out}.txt", "--output"),
    C(
        "output path",
        "quantize digits_cnn --precision w8a8 --calib-random 2 --out {adir}",
        "--out",
        "{adir}",
    ),
    C(
        "output path",
        "quantize digits_cnn --precision w8a8 --calib-random 2 --out {tiny_onnx}/q.onnx",
        "{tiny_onnx}",
    ),
    C(
        "output path",
        "simulate digits_cnn --target cortex-a76 --precision w8a8 --json {adir}",
        "--json",
        "{adir}",
    ),
    C(
        "output path",
        "simulate digits_cnn --target cortex-a76 --precision w8a8 --json {good_npy}/r.json",
        "--json",
    ),
    C(
        "output path",
        "verify digits_cnn --target host --precision w8a8 --json {adir}",
        "--json",
        "{adir}",
    ),
    C("output path", "measure digits_cnn --precision w8a8 --json {adir}", "--json", "{adir}"),
    C(
        "output path",
        "report --model digits_cnn --target cortex-a76 --out {good_npy}",
        "--out",
        "{good_npy}",
    ),
    C("output path", "sweep --grid lanes=16 --out {good_npy}", "--out", "{good_npy}"),
    C("output path", "sweep --grid lanes=16 --out {good_npy}/sub/dir", "--out", "{good_npy}"),
    C(
        "output path",
        "mixed-search digits_cnn --target cortex-a76 --min-snr-db 20 --out {tiny_onnx}",
        "--out",
        "{tiny_onnx}",
    ),
    C(
        "output path",
        "report --model digits_cnn --target cortex-a76 --name ../../x",
        "--name",
        "../../x",
    ),
    C(
        "output path",
        "report --model digits_cnn --target cortex-a76 --name /tmp/abs",
        "--name",
        "/tmp/abs",
    ),
    C("output path", "report --model digits_cnn --target cortex-a76 --name .hidden", "--name"),
    C("output path", "report --model digits_cnn --target cortex-a76 --name=", "--name"),
    # -- input data -------------------------------------------------------------------------
    C(
        "input data",
        "run {tiny_onnx} --input {empty_npy} --output {out}.npy",
        "{empty_npy}",
        "empty",
    ),
    C("input data", "run {tiny_onnx} --input {text_npy} --output {out}.npy", "{text_npy}"),
    C(
        "input data",
        "run {tiny_onnx} --input {object_npz} --output {out}.npy",
        "{object_npz}",
        "object",
    ),
    C(
        "input data",
        "run {tiny_onnx} --input {object_npy} --output {out}.npy",
        "{object_npy}",
        "object",
    ),
    C("input data", "run {tiny_onnx} --input {adir_npy} --output {out}.npy", "{adir_npy}"),
    C("input data", "run {tiny_onnx} --input {missing_npy} --output {out}.npy", "{missing_npy}"),
    C(
        "input data",
        "run {tiny_onnx} --input {shape_npy} --output {out}.npy",
        "{shape_npy}",
        "[1, 4]",
    ),
    C("input data", "run {tiny_onnx} --input {strings_npy} --output {out}.npy", "{strings_npy}"),
    C("input data", "run {tiny_onnx} --input {nokey_npz} --output {out}.npy", "{nokey_npz}", "'x'"),
    C("input data", "run digits_cnn --input {good_npy} --output {out}.npy", "{good_npy}"),
    C(
        "input data",
        "quantize digits_cnn --precision w8a8 --calib-data {calshape_npy} --out {out}.onnx",
        "{calshape_npy}",
    ),
    C(
        "input data",
        "quantize digits_cnn --precision w8a8 --calib-data {empty_npy} --out {out}.onnx",
        "{empty_npy}",
    ),
    C(
        "input data",
        "quantize digits_cnn --precision w8a8 --calib-data {object_npz} --out {out}.onnx",
        "{object_npz}",
    ),
    C(
        "input data",
        "mixed-search digits_cnn --target cortex-a76 --min-snr-db 20 --calib-data {text_npy} --out {out}",
        "{text_npy}",
    ),
    C(
        "input data",
        "quantize digits_cnn --precision w8a8 --calib-dataset imagenet --out {out}.onnx",
        "imagenet",
    ),
    C("input data", "quantize digits_cnn --precision w8a8 --out {out}.onnx", "calibration"),
    # -- non-finite values ------------------------------------------------------------------
    C(
        "non-finite",
        "run {tiny_onnx} --input {nan_npy} --output {out}.npy",
        "{nan_npy}",
        "'x'",
        "nan",
    ),
    C(
        "non-finite",
        "run {tiny_onnx} --input {inf_npy} --output {out}.npy",
        "{inf_npy}",
        "'x'",
        "inf",
    ),
    C("non-finite", "run {tiny_onnx} --input {ninf_npy} --output {out}.npy", "{ninf_npy}", "'x'"),
    C("non-finite", "run {tiny_onnx} --input {nan_npz} --output {out}.npy", "{nan_npz}", "'x'"),
    C(
        "non-finite",
        "run {tiny_onnx} --precision w8a8 --calib-random 2 --input {nan_npy} --output {out}.npy",
        "{nan_npy}",
    ),
    C("non-finite", "run {nanw_onnx} --output {out}.npy", "{nanw_onnx}", "initializer 'W'"),
    C("non-finite", "run {infw_onnx} --output {out}.npy", "{infw_onnx}", "initializer 'W'"),
    C(
        "non-finite",
        "simulate {nanw_onnx} --target cortex-a76 --precision w8a8",
        "{nanw_onnx}",
        "'W'",
    ),
    C(
        "non-finite",
        "quantize {nanw_onnx} --precision w8a8 --calib-random 2 --out {out}.onnx",
        "{nanw_onnx}",
        "'W'",
    ),
    C(
        "non-finite",
        "compile {infw_onnx} --target cortex-a76 --precision w8a8 --out {out}",
        "{infw_onnx}",
        "'W'",
    ),
    C(
        "non-finite",
        "quantize {tiny_onnx} --precision w8a8 --calib-data {calnan_npy} --out {out}.onnx",
        "{calnan_npy}",
        "'x'",
    ),
    C(
        "non-finite",
        "run {tiny_onnx} --precision w8a8 --calib-random 2 --allow-nonfinite --output {out}.npy",
        "--allow-nonfinite",
    ),
    # -- huge declared shapes -----------------------------------------------------------------
    C("shape", "run {huge_onnx} --output {out}.npy", "'x'", "GiB"),
    C(
        "shape",
        "quantize {huge_onnx} --precision w8a8 --calib-random 2 --out {out}.onnx",
        "'x'",
        "GiB",
    ),
    C("shape", "verify {huge_onnx} --target host --precision w8a8", "'x'", "GiB"),
    C("shape", "verify digits_cnn --input-size 200000 --target host --precision w8a8", "GiB"),
    C(
        "shape",
        "measure digits_cnn --input-size 200000 --precision w8a8",
        "GiB",
    ),
    C(
        "shape",
        "compile digits_cnn --input-size 200000 --target cortex-a76 --precision w8a8 --out {out}",
        "GiB",
    ),
    # -- recipes, sweep grids, mixed-precision files ------------------------------------------
    C("grid/config", "sweep --grid lanes --out {out}", "lanes"),
    C("grid/config", "sweep --grid lanes= --out {out}", "lanes"),
    C("grid/config", "sweep --grid lanes=[16 --out {out}", "lanes"),
    C("grid/config", "sweep --grid lanes=.inf --out {out}", "lanes"),
    C("grid/config", "sweep --grid lanes=.nan --out {out}", "lanes"),
    C("grid/config", "sweep --grid lanes=-16 --out {out}", "lanes"),
    C("grid/config", "sweep --grid clock_hz=0 --out {out}", "clock_hz"),
    C("grid/config", "sweep --grid clock_hz=1e20 --out {out}", "clock_hz"),
    C("grid/config", "sweep --grid banana=1 --out {out}", "banana"),
    *[
        C(
            "grid/config",
            f"sweep --model digits_cnn --target cortex-a76 --grid {g} --out {{out}}",
            g.split("=")[0],
        )
        for g in (
            "timing.clock_hz=0",
            "timing.clock_hz=.nan",
            "timing.instructions.vector_alu.throughput=0",
            "memory.levels.L1D.size_bytes=-1",
            "energy.static_power_w=-1",
            "timing.banana=3",
        )
    ],
    C("grid/config", "sweep --grid lanes=16 --model resnet9000 --out {out}", "resnet9000"),
    C("grid/config", "sweep --grid lanes=16 --target cortex-a76 --out {out}", "cortex-a76"),
    C("grid/config", "sweep --config {bad_grid_yaml} --out {out}", "{bad_grid_yaml}"),
    C("grid/config", "sweep --config {seed_grid_yaml} --out {out}", "{seed_grid_yaml}", "seed"),
    C(
        "grid/config",
        "sweep --config {sample_grid_yaml} --out {out}",
        "{sample_grid_yaml}",
        "sample",
    ),
    C("grid/config", "sweep --config {zero_sample_grid_yaml} --out {out}", "sample"),
    C("grid/config", "sweep --config {neg_seed_grid_yaml} --out {out}", "seed"),
    C("grid/config", "sweep --config {nogrid_yaml} --out {out}", "{nogrid_yaml}", "grid"),
    C("grid/config", "sweep --config {extra_grid_yaml} --out {out}", "banana"),
    C("grid/config", "sweep --config {emptylist_grid_yaml} --out {out}", "lanes"),
    C("grid/config", "sweep --config {nan_grid_yaml} --out {out}", "lanes"),
    C("grid/config", "sweep --config {binary_grid_yaml} --out {out}", "{binary_grid_yaml}"),
    C("grid/config", "sweep --config {missing_yaml} --out {out}", "{missing_yaml}"),
    C("grid/config", "sweep --config {adir_yaml} --out {out}", "{adir_yaml}"),
    C(
        "grid/config",
        "quantize digits_cnn --precision w8a8 --calib-random 2 --mixed {bad_mixed_yaml} --out {out}.onnx",
        "{bad_mixed_yaml}",
    ),
    C(
        "grid/config",
        "quantize digits_cnn --precision w8a8 --calib-random 2 --mixed {unknown_mixed_yaml} --out {out}.onnx",
        "banana",
    ),
    C(
        "grid/config",
        "quantize digits_cnn --precision w8a8 --calib-random 2 --mixed {prec_mixed_yaml} --out {out}.onnx",
        "w9a9",
    ),
    C(
        "grid/config",
        "quantize digits_cnn --precision w8a8 --calib-random 2 --mixed {binary_mixed_yaml} --out {out}.onnx",
        "{binary_mixed_yaml}",
    ),
    C(
        "grid/config",
        "quantize digits_cnn --precision w8a8 --calib-random 2 --mixed {missing_yaml} --out {out}.onnx",
        "{missing_yaml}",
    ),
    C(
        "grid/config",
        "mixed-search digits_cnn --target cortex-a76 --objective speed --out {out}",
        "speed",
    ),
    C(
        "grid/config",
        "mixed-search digits_cnn --target cortex-a76 --min-snr-db 20 --eval-split train --out {out}",
        "train",
    ),
    C(
        "grid/config",
        "mixed-search digits_cnn --target cortex-a76 --calib-dataset imagenet --out {out}",
        "imagenet",
    ),
    C(
        "grid/config",
        "compile digits_cnn --target simd-accel --precision w8a8 --calib-random 1 --mixed {w8a4_mixed_yaml} --out {out}",
        "w8a4",
        "simd-accel",
    ),
    C(
        "grid/config",
        "verify digits_cnn --target simd-accel --precision w8a8 --calib-random 2 --mixed {w8a4_mixed_yaml}",
        "w8a4",
        "simd-accel",
    ),
    C("tune", "tune digits_cnn --out {out}", "--target"),
    C("tune", "tune digits_cnn --target cortex-a99 --out {out}", "cortex-a99"),
    C("tune", "tune digits_cnn --target {t_clock_zero_yaml} --out {out}", "timing.clock_hz"),
    C("tune", "tune digits_cnn --target cortex-a76 --precision w3a8 --out {out}", "w3a8"),
    C("tune", "tune digits_cnn --target cortex-a76 --seed -1 --out {out}", "--seed"),
    C(
        "tune",
        "tune {garbage_onnx} --target cortex-a76 --min-snr-db 20 --out {out}",
        "{garbage_onnx}",
    ),
    C(
        "tune",
        "tune digits_cnn --target cortex-a76 --min-snr-db 20 --calib-data {empty_npy} --val-data {digits_npy} --out {out}",
        "{empty_npy}",
    ),
    C("tune", "tune digits_cnn --target cortex-a76 --out {good_npy}", "--out", "{good_npy}"),
    C("tune", "tune digits_cnn --target cortex-a76 --max-drop nan --out {out}", "--max-drop"),
    C(
        "tune",
        "tune digits_cnn --target cortex-a76 --min-snr-db 20 --calib-data {digits_npy} --val-data {digits_npy} --calibrators magic --out {out}",
        "magic",
    ),
    # -- report inputs --------------------------------------------------------------------------
    C(
        "report",
        "report --model digits_cnn --target cortex-a76 --accuracy {bad_json_json} --out {out}",
        "{bad_json_json}",
        "JSON",
    ),
    C(
        "report",
        "report --model digits_cnn --target cortex-a76 --accuracy {dict_json} --out {out}",
        "{dict_json}",
    ),
    C(
        "report",
        "report --model digits_cnn --target cortex-a76 --accuracy {rows_json} --out {out}",
        "{rows_json}",
        "[0]",
    ),
    C(
        "report",
        "report --model digits_cnn --target cortex-a76 --accuracy {binary_json} --out {out}",
        "{binary_json}",
    ),
    C(
        "report",
        "report --model digits_cnn --target cortex-a76 --accuracy {adir} --out {out}",
        "{adir}",
    ),
    C(
        "report",
        "report --model digits_cnn --model digits_cnn --target cortex-a76 --out {out}",
        "--model",
    ),
    C(
        "report",
        "report --model digits_cnn --target cortex-a76 --target cortex-a76 --out {out}",
        "--target",
    ),
    C(
        "report",
        "report --model {tiny_onnx} --input-size 8 --target cortex-a76 --out {out}",
        "--input-size",
    ),
    # -- environment ------------------------------------------------------------------------------
    C("environment", "targets", "ACCELSIM_TARGETS", ACCELSIM_TARGETS="{missing_yaml}dir"),
    C(
        "environment",
        "simulate digits_cnn --target cortex-a76 --precision w8a8",
        "{sched}/cpu-simd.yaml",
        ACCELSIM_SCHEDULES="{sched}",
    ),
    C(
        "environment",
        "compile digits_cnn --target cortex-a76 --precision w8a8 --out {out}",
        "{sched}/cpu-simd.yaml",
        ACCELSIM_SCHEDULES="{sched}",
    ),
    C(
        "environment",
        "simulate digits_cnn --target simd-accel --precision w8a8",
        "{sched}/accelerator.yaml",
        "banana",
        ACCELSIM_SCHEDULES="{sched}",
    ),
    C(
        "environment",
        "simulate digits_cnn --target cortex-a76 --precision w8a8",
        "{missing_yaml}dir/cpu-simd.yaml",
        ACCELSIM_SCHEDULES="{missing_yaml}dir",
    ),
    C(
        "environment",
        "report --model digits_cnn --out {out}",
        "ACCELSIM_TARGETS",
        ACCELSIM_TARGETS="{missing_yaml}dir",
    ),
    C(
        "environment",
        "simulate digits_cnn --target cortex-a76 --precision w8a8",
        "ACCELSIM_TARGETS",
        ACCELSIM_TARGETS="{missing_yaml}dir",
    ),
    C(
        "environment",
        "simulate digits_cnn --target cortex-a76 --precision w8a8",
        "{tiny_onnx}",
        ACCELSIM_TARGETS="{tiny_onnx}",
    ),
]
CLASSES = {c: sum(1 for x in CASES if x.cls == c) for c in dict.fromkeys(x.cls for x in CASES)}


def _fill(text: str, files: dict[str, str], out: str) -> str:
    return text.format(out=out, **files)


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """`accelsim ARGV` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def _tree(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


def assert_one_line_error(code: int, err: str, names: list[str]) -> None:
    lines = err.splitlines()
    assert code != 0, f"exit 0:\n{err}"
    assert "Traceback" not in err, err
    assert len(lines) == 1, f"{len(lines)} stderr lines:\n{err}"
    assert lines[0].startswith("accelsim: error: "), lines[0]
    for n in names:
        assert n in lines[0], f"{n!r} not named in: {lines[0]}"


@pytest.fixture
def sandbox(tmp_path, monkeypatch, files):
    """The case's world: cwd and cache inside tmp_path."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ACCELSIM_CACHE", str(tmp_path / "cache"))
    return tmp_path


@pytest.mark.parametrize("case", CASES, ids=[f"{c.cls}:{' '.join(c.argv)[:70]}" for c in CASES])
def test_bad_input_is_one_line_and_writes_nothing(case, sandbox, files, monkeypatch):
    out = str(sandbox / "out")
    for k, v in case.env.items():
        monkeypatch.setenv(k, _fill(v, files, out))
    argv = [_fill(a, files, out) for a in case.argv]
    inputs = Path(files["tiny_onnx"]).parent
    before_inputs = {p: p.stat().st_mtime_ns for p in _tree(inputs)}
    code, _, err = run_cli(argv)
    assert_one_line_error(code, err, [_fill(n, files, out) for n in case.names])
    # nothing outside --out: the sandbox holds at most the cache and --out; the inputs are as
    # they were; nothing partial inside --out
    written = {p for p in _tree(sandbox) if "cache" not in p.relative_to(sandbox).parts}
    assert all(str(p).startswith(out) for p in written), sorted(map(str, written))
    assert {p: p.stat().st_mtime_ns for p in _tree(inputs)} == before_inputs
    assert not [p for p in written if p.name.endswith(".tmp")]


def test_corpus_size():
    assert len(CASES) >= 150, CLASSES


@pytest.mark.parametrize(
    "argv,unreadable",
    [
        ("simulate {tiny_onnx} --target cortex-a76 --precision w8a8", "{tiny_onnx}"),
        ("run {tiny_onnx} --output {out}.npy", "{tiny_onnx}"),
        (
            "simulate digits_cnn --target {t_clock_zero_yaml} --precision w8a8",
            "{t_clock_zero_yaml}",
        ),
        ("run {tiny_onnx} --input {good_npy} --output {out}.npy", "{good_npy}"),
        ("sweep --config {bad_grid_yaml} --out {out}", "{bad_grid_yaml}"),
        (
            "report --model digits_cnn --target cortex-a76 --accuracy {dict_json} --out {out}",
            "{dict_json}",
        ),
    ],
)
def test_unreadable_file_is_one_line(argv, unreadable, sandbox, files, monkeypatch):
    """A file without read permission (simulated: the tests run as root, who reads anything)."""
    out = str(sandbox / "out")
    victim = _fill(unreadable, files, out)
    real = Path.read_bytes

    def read_bytes(self):
        if str(self) == victim:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    code, _, err = run_cli([_fill(a, files, out) for a in argv.split()])
    assert_one_line_error(code, err, [victim, "permission denied"])
    assert not Path(out).exists() and not Path(out + ".npy").exists()
