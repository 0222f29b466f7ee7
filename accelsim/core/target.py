"""Hardware targets: `targets/*.yaml` loaded into typed, validated `Target` values.

A target file says what a user would look up in a datasheet or an optimisation guide. This
module turns a checked file into a `Target`; it knows no chip. Errors name the file and the key.

Sections:
The schema (types, ranges, the fields each kind requires) is `accelsim.core.schema.targets`.

- `codegen` (required): the TVM target dict, vector width, features, emulator, natively
  supported precisions and how the others are emulated;
- `timing`, `memory`, `energy` (used by the simulator): kept as validated mappings here,
  interpreted by `accelsim.sim`;
- `accelerator` (kind `accelerator` only): the configurable SIMD accelerator's parameters;
- `assumptions` (optional): dotted field path -> the reason the value is an assumption rather than
  a documented figure (`memory.levels.L2.latency_cycles`, `timing.instructions.vector_load.latency`,
  `energy.static_power_w`). A path segment under a list picks the element whose `name` is that
  segment (memory levels) or, if it is a number, the element at that index. Every path must name
  a field of the file; reports list them (docs/target-sources.md has the sources).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from accelsim.core.errors import AccelsimError
from accelsim.core.fsutil import read_yaml, repo_dir
from accelsim.core.precision import Precision, parse_precision
from accelsim.core.schema.targets import KINDS as TARGET_KINDS


class TargetError(AccelsimError):
    """A target file that is missing, malformed or inconsistent."""


KINDS = TARGET_KINDS  # one list of kinds: the schema's

# the sections the cost models read, kept as the file wrote them
SECTIONS = ("timing", "memory", "energy", "accelerator", "area")


def targets_dir() -> Path:
    """`$ACCELSIM_TARGETS` or the repository's `targets/`."""
    return repo_dir("ACCELSIM_TARGETS", "targets")


@dataclass(frozen=True)
class Emulator:
    kind: str
    cpu: str | None = None
    libm: bool = True  # the kernels' runtime has a C math library (schema: targets.Emulator)


@dataclass(frozen=True)
class CodegenSpec:
    tvm_target: Mapping[str, Any]
    vector_bits: int
    features: tuple[str, ...]
    emulator: Emulator
    native: tuple[str, ...]
    emulation: Mapping[str, str]
    llvm_mca_cpu: str | None = None
    # bytes every kernel buffer is declared (and allocated) aligned to; 0: TVM's default (64)
    buffer_alignment: int = 0

    def tvm_target_dict(self) -> dict:
        d = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.tvm_target.items()}
        if d.get("mcpu") == "native":
            d["mcpu"] = _host_cpu_name()
        return d


@dataclass(frozen=True)
class Assumption:
    """A number of the target file that no hardware document gives: where, what, and why."""

    path: str  # dotted field path, e.g. "memory.levels.L2.latency_cycles"
    value: Any
    reason: str


@dataclass(frozen=True)
class Target:
    name: str
    kind: str
    description: str
    codegen: CodegenSpec
    path: str
    timing: Mapping[str, Any] = field(default_factory=dict)
    memory: Mapping[str, Any] = field(default_factory=dict)
    energy: Mapping[str, Any] = field(default_factory=dict)
    accelerator: Mapping[str, Any] = field(default_factory=dict)
    assumptions: tuple[Assumption, ...] = ()
    area: Mapping[str, Any] = field(default_factory=dict)  # accelsim.core.area coefficients

    @property
    def hardware_threads(self) -> int:
        """Tasks a kernel's parallel loop is split into: `timing.hardware_threads` (HVX
        contexts), else 1 (the Arm targets model one core)."""
        return int(self.timing.get("hardware_threads") or 1)

    def supports(self, precision: Precision) -> bool:
        """Runs natively or through a documented emulation."""
        return precision.name in self.codegen.native or precision.name in self.codegen.emulation

    def how(self, precision: Precision) -> str:
        if precision.name in self.codegen.native:
            return "native"
        if precision.name in self.codegen.emulation:
            return f"emulated: {self.codegen.emulation[precision.name]}"
        return "unsupported"

    def precisions(self) -> list[str]:
        return list(self.codegen.native) + [
            p for p in self.codegen.emulation if p not in self.codegen.native
        ]

    def check_precision(self, precision: Precision) -> None:
        if not self.supports(precision):
            raise TargetError(
                f"target '{self.name}' ({self.path}) cannot run precision "
                f"'{precision.name}'; it supports {', '.join(self.precisions())}"
            )


def _host_cpu_name() -> str:
    from accelsim.core.tvm_env import import_tvm

    tvm = import_tvm()
    return str(tvm.target.codegen.llvm_get_system_cpu())


@cache
def host_features() -> tuple[str, ...]:
    """This machine's CPU features as LLVM names them (`avx512vnni`, `avxvnni`, `amx-int8`,
    `fma`, ...): LLVM reads them with cpuid (`sys::getHostCPUFeatures`), so they are what the
    silicon (or the hypervisor) offers, independent of the CPU model name LLVM picks for
    `mcpu: native`. A host target with `features: auto` records them at load time; recipes
    choose kernels by them (the tensor intrinsics' `requires`)."""
    from accelsim.core.tvm_env import import_tvm

    import_tvm()
    import tvm_ffi

    probe = tvm_ffi.get_global_func("tvm.codegen.llvm.GetHostCPUFeatures", allow_missing=True)
    if probe is None:
        return ()
    return tuple(sorted(str(k) for k, on in dict(probe()).items() if on))


def _host_vector_bits() -> int:
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return 128
    if "avx512f" in flags:
        return 512
    if "avx2" in flags or "avx" in flags:
        return 256
    return 128


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _field(data: Any, dotted: str) -> tuple[bool, Any]:
    """The value at a dotted path of the raw file data: (found, value)."""
    node = data
    for seg in dotted.split("."):
        if isinstance(node, Mapping):
            if seg not in node:
                return False, None
            node = node[seg]
        elif isinstance(node, list):
            named = [x for x in node if isinstance(x, Mapping) and str(x.get("name")) == seg]
            if named:
                node = named[0]
            elif seg.isdigit() and int(seg) < len(node):
                node = node[int(seg)]
            else:
                return False, None
        else:
            return False, None
    return True, node


def _parse_assumptions(data: Mapping, path: str) -> tuple[Assumption, ...]:
    raw = data.get("assumptions")
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise TargetError(
            f"{path}: assumptions: expected a mapping field path -> reason, "
            f"found {type(raw).__name__}"
        )
    out = []
    for key, reason in raw.items():
        if not isinstance(reason, str) or not reason.strip():
            raise TargetError(
                f"{path}: assumptions.{key}: expected the reason as text, found {reason!r}"
            )
        dotted = str(key)
        # the mapping itself is not a field an assumption can be about
        found, value = _field(data, dotted)
        if not found or dotted.split(".")[0] == "assumptions":
            raise TargetError(
                f"{path}: assumptions: '{dotted}' names no field of the file "
                f"(expected a dotted path such as memory.levels.L2.latency_cycles)"
            )
        out.append(Assumption(dotted, _freeze(value), reason.strip()))
    return tuple(out)


def parse_target(data: Any, path: str) -> Target:
    """A target file's parsed YAML, checked against `accelsim.core.schema.targets`."""
    from accelsim.core.schema.base import validate
    from accelsim.core.schema.targets import TargetFile

    if not isinstance(data, Mapping):
        raise TargetError(
            f"{path}: expected a mapping at the top level, found {type(data).__name__}"
        )
    checked = validate(TargetFile, data, path, TargetError)
    assert isinstance(checked, TargetFile)
    cg = checked.codegen
    vb = _host_vector_bits() if cg.vector_bits == "auto" else cg.vector_bits
    features = host_features() if cg.features == "auto" else tuple(cg.features)
    spec = CodegenSpec(
        _freeze(dict(cg.tvm_target)),
        vb,
        features,
        Emulator(cg.emulator.kind, cg.emulator.cpu, cg.emulator.libm),
        tuple(parse_precision(n).name for n in cg.native),
        _freeze({parse_precision(k).name: v for k, v in cg.emulation.items()}),
        cg.llvm_mca_cpu,
        cg.buffer_alignment,
    )
    # the cost models read the sections as the file wrote them (the schema checked them)
    sections = {k: _freeze(dict(data.get(k) or {})) for k in SECTIONS}
    return Target(
        checked.name,
        checked.kind,
        checked.description,
        spec,
        path,
        **sections,
        assumptions=_parse_assumptions(data, path),
    )


def load_target_file(path: str | Path) -> Target:
    return parse_target(read_yaml(path, "target file", TargetError), str(path))


@cache
def _all_targets(directory: str) -> tuple[Target, ...]:
    files = sorted(Path(directory).glob("*.yaml"))
    targets = [load_target_file(f) for f in files]
    seen: dict[str, str] = {}
    for t in targets:
        if t.name in seen:
            raise TargetError(f"{t.path}: name '{t.name}' is also used by {seen[t.name]}")
        seen[t.name] = t.path
    return tuple(targets)


def list_targets() -> list[Target]:
    directory = targets_dir()
    if not directory.is_dir():  # a mistyped $ACCELSIM_TARGETS must not list nothing, silently
        where = "$ACCELSIM_TARGETS" if os.environ.get("ACCELSIM_TARGETS") else "targets directory"
        raise TargetError(f"{where} {directory}: no such directory (expected a folder of .yaml)")
    return list(_all_targets(str(directory)))


@cache
def _load_cached(path: str) -> Target:
    return load_target_file(path)


def load_target(name_or_path: str) -> Target:
    """A shipped target by name, or a target file by path."""
    if name_or_path.endswith((".yaml", ".yml")) or os.sep in name_or_path:
        return load_target_file(name_or_path)
    # the file named like the target first: loading one target parses only its file (the host
    # file probes this machine through TVM, which cost-only paths never import otherwise)
    direct = Path(targets_dir()) / f"{name_or_path}.yaml"
    if direct.is_file():
        t = _load_cached(str(direct))
        if t.name == name_or_path:
            return t
    targets = {t.name: t for t in list_targets()}
    if name_or_path not in targets:
        raise TargetError(
            f"unknown target '{name_or_path}'; shipped targets: "
            f"{', '.join(targets)} (or give a .yaml path)"
        )
    return targets[name_or_path]
