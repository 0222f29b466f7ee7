"""What a report covers: the user's request (`ReportSpec`) checked and expanded into a `Plan`
(which model runs on which target at which precision) before any work starts, so that a typo or
an impossible precision costs one line on stderr and nothing else."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from accelsim.core.errors import InputError, ModelError
from accelsim.core.fsutil import REPO_ROOT, check_plain_name, read_json
from accelsim.core.precision import parse_precision
from accelsim.core.target import Target, list_targets, load_target

DEFAULT_MODELS = ("mobilenet_v1", "mobilenet_v2", "resnet50")
# Order of precisions in every table and figure: the float baselines first, then by bits.
PRECISION_ORDER = ("fp32", "fp16", "w16a16", "w8a16", "w8a8", "w8a4", "w4a8", "w4a4")
# Default target kinds: phone CPUs and DSPs (analytic model) and the accelerator (its own
# instruction-level simulator). `host` describes whatever machine runs the report, so it is
# left out of the default report (a committed report must not depend on the build machine);
# `--target host` still works.
DEFAULT_KINDS = ("cpu-simd", "vliw-dsp", "accelerator")
# The accuracy study (benchmarks/accuracy_study.py) ran digits_cnn at input 16,
# digits_mobilenet at its default 16x16, and the packaged PaddleOCR networks as shipped.
ACCURACY_MODELS = {"digits_cnn": 16, "digits_mobilenet": None, "ppocr_cls": None, "ppocr_rec": None}


def repo_root() -> Path:
    return REPO_ROOT


def accel_available() -> bool:
    """True when the accelerator back end exposes `simulate_graph(graph, config)`."""
    try:
        from accelsim import accel
    except ImportError:
        return False
    return callable(getattr(accel, "simulate_graph", None)) and callable(
        getattr(accel, "load_config", None)
    )


def precision_key(name: str) -> tuple[int, str]:
    base = name.split("/")[0]
    return (PRECISION_ORDER.index(base) if base in PRECISION_ORDER else len(PRECISION_ORDER), name)


@dataclass(frozen=True)
class ReportSpec:
    """A report request. Empty `models` / `targets` / `precisions` mean the defaults: the three
    default zoo models, every shipped CPU / DSP (and accelerator) target, every precision each
    target supports. `accuracy` is the accuracy study's JSON (None: no accuracy figure)."""

    models: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    precisions: tuple[str, ...] = ()
    input_size: int | None = None
    fidelity: str | None = None  # None: each target kind's default (accelsim.backends)
    name: str = "default"
    out: str | None = None
    accuracy: str | None = "reports/accuracy.json"
    # benchmarks/kernel_efficiency.py's JSON (None: no kernel-efficiency section)
    kernel_efficiency: str | None = "reports/kernel_efficiency.json"
    cache_dir: str | None = None
    use_cache: bool = True

    def out_dir(self) -> Path:
        return Path(self.out) if self.out else Path("reports") / self.name


@dataclass(frozen=True)
class ModelPlan:
    source: str  # zoo name or file
    input_size: int | None
    # a model file with stored quantization: its precision (runs as stored, nothing else)
    stored: str = ""
    stored_label: str = ""  # e.g. "w8a8 as stored", with the per-layer mix when mixed


@dataclass(frozen=True)
class Plan:
    """The checked request: models, targets (loaded), per target the precisions to report, the
    fidelity and what was left out and why."""

    models: tuple[ModelPlan, ...]
    targets: tuple[Target, ...]
    precisions: dict  # target name -> tuple of precision strings
    all_precisions: tuple[str, ...]  # union, in PRECISION_ORDER
    fidelity: str | None
    out_dir: Path
    accuracy_path: Path | None
    notes: tuple[str, ...] = field(default_factory=tuple)
    kernel_efficiency: dict | None = None  # read_kernel_efficiency's result

    def runs(self) -> list[tuple[ModelPlan, Target, str]]:
        return [
            (m, t, p)
            for m in self.models
            for t in self.targets
            for p in self.precisions[t.name]
            if not m.stored or p == m.stored
        ]


def _check_model(name: str, input_size: int | None) -> ModelPlan:
    from accelsim.model import zoo

    if name in zoo.MODELS:
        entry = zoo.MODELS[name]
        if input_size is not None and input_size < entry.min_input_size:
            raise ModelError(
                f"--input-size {input_size}: zoo model '{name}' needs an input size "
                f">= {entry.min_input_size}"
            )
        return ModelPlan(name, input_size)
    path = Path(name)
    if path.suffix.lower() not in (".onnx", ".tflite"):
        raise ModelError(
            f"--model {name}: unknown model; the zoo has {', '.join(zoo.MODELS)} "
            f"(or give an .onnx / .tflite file)"
        )
    if not path.is_file():
        raise ModelError(f"--model {name}: no such file")
    if input_size is not None:
        raise ModelError(f"--model {name}: --input-size applies to zoo models only")
    from accelsim.model.loader import load_model
    from accelsim.model.quantization import graph_precision, stored_label

    graph = load_model(name)
    if graph.is_quantized:
        return ModelPlan(name, None, graph_precision(graph).name, stored_label(graph))
    return ModelPlan(name, None)


def read_accuracy(path: Path) -> list[dict]:
    """The accuracy study's results (`reports/accuracy.json`): a list of mappings."""
    rows = read_json(path, "accuracy results file (JSON)", InputError)
    if not isinstance(rows, list):
        raise InputError(
            f"{path}: expected a JSON list of result rows, found {type(rows).__name__}"
        )
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise InputError(
                f"{path}: [{i}]: expected a mapping (model, precision, ...), found "
                f"{type(row).__name__}"
            )
    return rows


# what the report reads of benchmarks/kernel_efficiency.py's JSON: (section, list, text fields,
# number fields) of each row
_KE_ROWS = (
    (
        "breakdown",
        "rows",
        ("target", "precision", "kind"),
        (
            "layers",
            "macs",
            "cycles",
            "macs_per_cycle",
            "peak_macs_per_cycle",
            "utilization",
        ),
    ),
    ("speedup", "rows", ("target", "model"), ("fp32_s", "w8a8_s", "speedup")),
    ("four_bit", "rows", ("target", "model"), ("w8a8_cycles", "w4a8_cycles", "extra")),
    ("speedup", "hvx_vs_cpu", ("dsp", "cpu", "model"), ("cpu_fp32_s", "dsp_w8a8_s", "speedup")),
)


def read_kernel_efficiency(path: Path) -> dict:
    """benchmarks/kernel_efficiency.py's results (`reports/kernel_efficiency.json`), checked:
    the `breakdown` rows (and `speedup`'s, when present) with the fields the report reads, so
    that a malformed file costs one line naming the field."""
    data = read_json(path, "kernel-efficiency results file (JSON)", InputError)
    if not isinstance(data, dict) or not isinstance(data.get("breakdown"), dict):
        raise InputError(
            f"{path}: expected a mapping with a 'breakdown' section (written by "
            f"benchmarks/kernel_efficiency.py --sections breakdown), found "
            f"{sorted(data) if isinstance(data, dict) else type(data).__name__}"
        )
    for section, key, texts, numbers in _KE_ROWS:
        part = data.get(section, {})
        if not isinstance(part, dict):
            raise InputError(f"{path}: {section}: expected a mapping, found {type(part).__name__}")
        rows = part.get(key, [])
        if not isinstance(rows, list):
            raise InputError(
                f"{path}: {section}.{key}: expected a list, found {type(rows).__name__}"
            )
        for i, row in enumerate(rows):
            where = f"{path}: {section}.{key}[{i}]"
            if not isinstance(row, dict):
                raise InputError(f"{where}: expected a mapping, found {type(row).__name__}")
            for f in texts + numbers:
                v = row.get(f)
                ok = (
                    isinstance(v, str)
                    if f in texts
                    else (isinstance(v, (int, float)) and not isinstance(v, bool))
                )
                if not ok:
                    kind = "a string" if f in texts else "a number"
                    raise InputError(f"{where}.{f}: expected {kind}, found {v!r}")
            groups = row.get("cycles_by_group") if section == "breakdown" else {}
            if not isinstance(groups, dict) or not all(
                isinstance(v, (int, float)) for v in groups.values()
            ):
                raise InputError(
                    f"{where}.cycles_by_group: expected a mapping of numbers, found {groups!r}"
                )
    _check_host(path, data.get("host"))
    return data


# the host section's ratios (benchmarks/kernel_efficiency_host.GOALS), each with its `met` flag
_HOST_RATIOS = (
    "w8a8_speedup_over_fp32",
    "w8a8_vs_ort_int8",
    "qdq_speedup_over_fp32",
    "qdq_vs_ort_int8",
    "fp32_vs_ort_fp32",
)


def _check_host(path: Path, host) -> None:
    """The measured host section, when present: per model the seconds and ratios the report
    shows (nested fields, so checked here rather than by `_KE_ROWS`)."""
    if host is None:
        return
    rows = host.get("models") if isinstance(host, dict) else None
    if not isinstance(rows, list):
        raise InputError(f"{path}: host.models: expected a list, found {rows!r}")
    for i, row in enumerate(rows):
        where = f"{path}: host.models[{i}]"
        if not isinstance(row, dict) or not isinstance(row.get("model"), str):
            raise InputError(f"{where}.model: expected a string, found {row!r}")
        best = row.get("ort_int8_model")
        wanted = [("ours", run, "pass_s") for run in ("fp32", "w8a8", best)]
        wanted += [("ort_s", k) for k in ("fp32", "int8")]
        wanted += [("ratios", k) for k in _HOST_RATIOS]
        for keys in wanted:
            v = row
            for k in keys:
                v = v.get(k) if isinstance(v, dict) and isinstance(k, str) else None
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                raise InputError(
                    f"{where}.{'.'.join(map(str, keys))}: expected a number, found {v!r}"
                )
        met = row.get("met")
        if not isinstance(met, dict) or not all(isinstance(met.get(k), bool) for k in _HOST_RATIOS):
            raise InputError(
                f"{where}.met: expected true/false for {', '.join(_HOST_RATIOS)}, found {met!r}"
            )


def _repo_file(name: str) -> Path | None:
    """`name` as given, else relative to the repository (the committed results), else None."""
    a = Path(name)
    if not a.is_absolute() and not a.is_file() and (repo_root() / a).is_file():
        a = repo_root() / a
    return a if a.exists() else None


def _check_stored(models: tuple[ModelPlan, ...], wanted: list[str]) -> None:
    """A stored-integer model runs as stored: asking it for another precision is refused."""
    from accelsim.model.loader import load_model
    from accelsim.model.quantization import stored_precision_error

    for m in models:
        for w in wanted:
            if m.stored and parse_precision(w).name != m.stored:
                raise stored_precision_error(load_model(m.source), w)


def make_plan(spec: ReportSpec) -> Plan:
    """Check everything a user can get wrong; raise an `AccelsimError` naming it."""
    from accelsim.backends import FIDELITIES

    if spec.out is None:
        check_plain_name(spec.name, "--name", InputError)

    if spec.fidelity is not None and spec.fidelity not in FIDELITIES:
        raise InputError(f"--fidelity {spec.fidelity}: expected one of {', '.join(FIDELITIES)}")
    if spec.input_size is not None and (
        isinstance(spec.input_size, bool)
        or not isinstance(spec.input_size, int)
        or spec.input_size <= 0
    ):
        raise InputError(f"--input-size {spec.input_size!r}: expected a positive integer")
    models = tuple(_check_model(m, spec.input_size) for m in (spec.models or DEFAULT_MODELS))
    if len({m.source for m in models}) != len(models):
        raise InputError("--model: a model is named twice")
    notes: list[str] = []
    have_accel = accel_available()
    if spec.targets:
        targets = [load_target(t) for t in spec.targets]
        if len({t.name for t in targets}) != len(targets):
            raise InputError("--target: a target is named twice")
        for t in targets:
            if t.kind == "accelerator" and not have_accel:
                raise InputError(
                    f"--target {t.name}: accelerator targets need accelsim.accel's "
                    f"simulate_graph, which this installation lacks"
                )
    else:
        kinds = (
            DEFAULT_KINDS if have_accel else tuple(k for k in DEFAULT_KINDS if k != "accelerator")
        )
        targets = [t for t in list_targets() if t.kind in kinds]
        if not have_accel:
            notes.append(
                "Accelerator targets (targets/simd-accel*.yaml) are left out: "
                "accelsim.accel does not expose simulate_graph(graph, config) here."
            )
        notes.append(
            "The host target is left out of the default report: it describes the "
            "machine that runs the report, so its numbers would change with the build "
            "machine (--target host includes it)."
        )
    per_target: dict[str, tuple[str, ...]] = {}
    stored = list(dict.fromkeys(m.stored for m in models if m.stored))
    if spec.precisions:
        wanted = []
        for text in spec.precisions:
            p = parse_precision(text, "--precision")
            if str(p) not in wanted:
                wanted.append(str(p))
        _check_stored(models, wanted)
        for t in targets:
            ok = []
            for w in wanted:
                p = parse_precision(w)
                if t.supports(p):
                    ok.append(w)
                elif spec.targets:  # the user named both: an impossible pair is an error
                    t.check_precision(p)
            skipped = [w for w in wanted if w not in ok]
            if skipped:
                notes.append(
                    f"{t.name} cannot run {', '.join(skipped)} (it supports "
                    f"{', '.join(sorted(t.precisions(), key=precision_key))}): "
                    f"those rows are absent."
                )
            per_target[t.name] = tuple(ok)
        for w in wanted:
            if not any(w in v for v in per_target.values()):
                raise InputError(f"--precision {w}: none of the targets can run it")
    else:
        floats = any(not m.stored for m in models)
        for t in targets:
            ps = list(t.precisions()) if floats else []
            for s in stored:  # models with stored quantization: their precision, as stored
                if t.supports(parse_precision(s)):
                    ps.append(s)
                else:
                    notes.append(
                        f"{t.name} cannot run {s} (stored in "
                        f"{', '.join(m.source for m in models if m.stored == s)}): "
                        f"those rows are absent."
                    )
            per_target[t.name] = tuple(sorted(set(ps), key=precision_key))
    for m in models:
        if m.stored:
            notes.append(
                f"{Path(m.source).name}: quantization stored in the file; costed {m.stored_label} "
                f"(not re-quantized)."
            )
    targets = [t for t in targets if per_target[t.name]]
    union = sorted({p for v in per_target.values() for p in v}, key=precision_key)
    accuracy = None
    if spec.accuracy:
        accuracy = _repo_file(spec.accuracy)
        if accuracy is None:
            notes.append(f"No accuracy results at {spec.accuracy}: no accuracy figure.")
        else:
            read_accuracy(accuracy)  # a malformed file costs one line, before any work
    efficiency = None
    if spec.kernel_efficiency:
        ke = _repo_file(spec.kernel_efficiency)
        if ke is None:
            notes.append(
                f"No kernel-efficiency results at {spec.kernel_efficiency}: no kernel-efficiency "
                f"section."
            )
        else:
            efficiency = read_kernel_efficiency(ke)
    return Plan(
        models,
        tuple(targets),
        per_target,
        tuple(union),
        spec.fidelity,
        spec.out_dir(),
        accuracy,
        tuple(notes),
        efficiency,
    )
