"""Schema of the hardware target files, `targets/*.yaml` (loaded by `accelsim.core.target`).

One model per section (`Codegen`, `Timing`, `Memory`, `Energy`; the `accelerator` section is
checked by `accelsim.accel.arch`, which knows its parameters), so a new section is one more
model and one more field of `TargetFile`. Numbers carry their ranges in their types: clocks,
sizes, bandwidths and throughputs are positive and finite, latencies and energies are not
negative. Upper bounds sit far above any real chip (a 1 THz clock, 1000 instructions per
cycle); they are there so that no accepted file can make a cost overflow to infinity.

Required per kind: every kind needs `codegen`; the CPU/DSP kinds (`cpu-simd`, `vliw-dsp`,
`host`) also `timing` with `clock_hz`, `issue_width`, `instructions` (with `vector_alu`, which
every layer's requantization is costed at) and `mac`, and `memory.levels`; kind `accelerator`
needs `timing.clock_hz` and the `accelerator` section.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from accelsim.core.errors import AccelsimError
from accelsim.core.precision import parse_precision
from accelsim.core.schema.base import Schema, mapping_of, problem, validate

KINDS = ("cpu-simd", "vliw-dsp", "accelerator", "host")
CPU_KINDS = ("cpu-simd", "vliw-dsp", "host")
EMULATORS = ("qemu-aarch64", "qemu-hexagon", "native", "accel-sim")


# ------------------------------------------------------------------------------------------
# value types
# ------------------------------------------------------------------------------------------


def _number(low: float, high: float, *, low_open: bool, what: str) -> AfterValidator:
    """A finite int or float in [low, high] (or (low, high] when `low_open`)."""

    def check(value: Any) -> float | int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise problem("number", "expected {what}, found {found}", what=what, found=repr(value))
        bad_low = value <= low if low_open else value < low
        if not math.isfinite(value) or bad_low or value > high:
            raise problem("range", "expected {what}, found {found}", what=what, found=repr(value))
        return value

    return AfterValidator(check)


def _integer(low: int, high: int, what: str) -> AfterValidator:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise problem("integer", "expected {what}, found {found}", what=what, found=repr(value))
        return value

    return AfterValidator(check)


Clock = Annotated[Any, _number(1e3, 1e12, low_open=False, what="a clock in Hz from 1e3 to 1e12")]
Throughput = Annotated[
    Any, _number(0, 1e3, low_open=True, what="a number of instructions per cycle above 0")
]
PerCycle = Annotated[
    Any, _number(0, 1e6, low_open=True, what="a positive number of bytes per cycle")
]
PerSecond = Annotated[
    Any, _number(0, 1e16, low_open=True, what="a positive number of bytes per second")
]
Count = Annotated[Any, _number(0, 1e6, low_open=True, what="a positive number")]
Extra = Annotated[Any, _number(0, 1e6, low_open=False, what="a number of instructions >= 0")]
Energy = Annotated[Any, _number(0, 1e9, low_open=False, what="an energy in pJ >= 0")]
Power = Annotated[Any, _number(0, 1e5, low_open=False, what="a power in W >= 0")]
Factor = Annotated[Any, _number(0, 1e3, low_open=True, what="a positive factor")]
Volts = Annotated[Any, _number(0, 100, low_open=True, what="a positive voltage")]
Nanometres = Annotated[Any, _number(0, 1e4, low_open=True, what="a positive node size in nm")]
Nanoseconds = Annotated[Any, _number(0, 1e9, low_open=False, what="a latency in ns >= 0")]
Cycles = Annotated[Any, _integer(0, 10**9, "a whole number of cycles >= 0")]
Positive = Annotated[Any, _integer(1, 10**6, "a positive integer")]
Bytes = Annotated[Any, _integer(1, 2**50, "a positive whole number of bytes")]
SquareMicrons = Annotated[Any, _number(0, 1e6, low_open=True, what="a positive area in um^2")]
SquareMm = Annotated[Any, _number(0, 1e5, low_open=True, what="a positive area in mm^2")]
Fraction = Annotated[Any, _number(0, 1, low_open=True, what="a fraction in (0, 1]")]
Slot = Annotated[Any, _integer(0, 63, "a slot number from 0 to 63")]


def _choice(names: tuple[str, ...]) -> Any:
    def check(value: str) -> str:
        if value not in names:
            raise problem(
                "choice",
                "expected one of {names}, found {found}",
                names=", ".join(names),
                found=repr(value),
            )
        return value

    return Annotated[str, AfterValidator(check)]


def _precision_name(value: str) -> str:
    try:
        parse_precision(value)
    except Exception as exc:  # AccelsimError: its text says what a precision looks like
        raise problem("precision", "{msg}", msg=str(exc)) from None
    return value


PrecisionName = Annotated[str, AfterValidator(_precision_name)]


# ------------------------------------------------------------------------------------------
# sections
# ------------------------------------------------------------------------------------------


def _tvm_target(value: dict[str, Any]) -> dict[str, Any]:
    """TVM's target dict: `kind` llvm or c, the rest LLVM's options as strings."""
    if value.get("kind") not in ("llvm", "c"):
        raise problem(
            "tvm_kind", "kind: expected 'llvm' or 'c', found {found}", found=repr(value.get("kind"))
        )
    for key, option in value.items():
        if not (
            isinstance(option, str)
            or (isinstance(option, list) and all(isinstance(v, str) for v in option))
        ):
            raise problem(
                "tvm_option",
                "{key}: expected a string or a list of strings, found {found}",
                key=key,
                found=repr(option),
            )
    return value


TvmTarget = Annotated[
    dict[str, Any], mapping_of("a mapping (TVM's target dict)"), AfterValidator(_tvm_target)
]


class Emulator(Schema):
    kind: _choice(EMULATORS)  # type: ignore[valid-type]
    cpu: str | None = None
    # the kernels' runtime has a C math library (expf, erff, ...); false for a freestanding
    # runtime, where a float kernel that would call one is not generated
    libm: bool = True


def _vector_bits(value: Any) -> Any:
    if value == "auto" or (
        isinstance(value, int)
        and not isinstance(value, bool)
        and 0 < value <= 8192
        and not value % 64
    ):
        return value
    raise problem(
        "vector_bits",
        "expected a positive multiple of 64 (or 'auto' on host), found {found}",
        found=repr(value),
    )


class Codegen(Schema):
    tvm_target: TvmTarget
    vector_bits: Annotated[Any, AfterValidator(_vector_bits)]
    # e.g. neon, dotprod, i8mm, bf16; "auto" (host only): this machine's, probed at load
    features: list[str] | Literal["auto"] = Field(default_factory=list)
    emulator: Emulator
    llvm_mca_cpu: str | None = None
    # kernel buffers declared aligned to this many bytes (a power of two, at most the 128 the
    # kernel harness allocates at); 0: TVM's default, 64
    buffer_alignment: Literal[0, 64, 128] = 0
    native: list[PrecisionName]
    emulation: Annotated[
        dict[PrecisionName, str], mapping_of("a mapping precision -> how it is emulated")
    ] = Field(default_factory=dict)


class Instruction(Schema):
    """One instruction class of `timing.instructions`."""

    throughput: Throughput
    latency: Cycles
    accumulate_latency: Cycles | None = None
    input_latency: Cycles | None = None
    latency_d: Cycles | None = None  # Hexagon: the double-vector form
    throughput_d: Throughput | None = None
    macs: Positive | None = None
    pipes: list[str] = Field(default_factory=list)
    slots: list[Slot] = Field(default_factory=list)
    resources: str | None = None
    example: str | None = None
    note: str | None = None


class MacRow(Schema):
    """`timing.mac.<precision>`: the instruction that does the MACs, with helpers per MAC
    instruction (`extra: {class: count}`)."""

    instruction: str
    macs_per_instruction: Count
    extra: dict[str, Extra] = Field(default_factory=dict)


class Timing(Schema):
    clock_hz: Clock
    issue_width: Positive | None = None
    window: Cycles | None = None
    hardware_threads: Positive | None = None
    vliw_slots: Positive | None = None
    in_order: bool | None = None
    qform_first_slot: bool | None = None
    writeback_in_order: bool | None = None
    pipes: dict[str, Positive] = Field(default_factory=dict)
    instructions: Annotated[
        dict[str, Instruction], mapping_of("a mapping instruction class -> throughput, latency")
    ] = Field(default_factory=dict)
    mac: Annotated[
        dict[PrecisionName, MacRow], mapping_of("a mapping precision -> MAC instruction")
    ] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _classes_exist(self) -> Timing:
        for prec, row in self.mac.items():
            for cls, where in [(row.instruction, "instruction")] + [
                (h, f"extra.{h}") for h in row.extra
            ]:
                if cls not in self.instructions:
                    raise problem(
                        "instruction_class",
                        "mac.{prec}.{where}: '{cls}' is not in timing.instructions",
                        prec=prec,
                        where=where,
                        cls=cls,
                    )
        return self


class Level(Schema):
    """One level of `memory.levels`, fastest first; the last is off-chip."""

    name: str
    kind: str | None = None
    size_bytes: Bytes | None = None
    line_bytes: Bytes | None = None
    bandwidth_bytes_per_cycle: PerCycle | None = None
    store_bandwidth_bytes_per_cycle: PerCycle | None = None
    bandwidth_bytes_per_s: PerSecond | None = None
    latency_cycles: Cycles | None = None
    latency_ns: Nanoseconds | None = None


class Memory(Schema):
    levels: Annotated[list[Level], Field(min_length=1)]

    @model_validator(mode="after")
    def _levels(self) -> Memory:
        seen: set[str] = set()
        for lv in self.levels:
            if lv.name in seen:
                raise problem("level", "levels: level name '{name}' used twice", name=lv.name)
            seen.add(lv.name)
        return self


class Scaling(Schema):
    rule: str | None = None
    factor: Factor | None = None
    voltage_v: Volts | None = None
    source: str | None = None


class EnergySection(Schema):
    technology_nm: Nanometres | None = None
    reference: str | None = None
    scaling: Scaling | None = None
    scaling_rule: str | None = None
    voltage_v: Volts | None = None
    ops_pj: dict[str, Energy] = Field(default_factory=dict)
    memory_pj_per_byte: dict[str, Energy] = Field(default_factory=dict)
    dram_pj_per_byte: Energy | None = None
    static_power_w: Power | None = None


class AreaSection(Schema):
    """Area coefficients (`accelsim.core.area`), each with its source in the file."""

    sram_bitcell_um2: SquareMicrons
    sram_array_efficiency: Fraction
    core_logic_mm2: SquareMm | None = None


class TargetFile(Schema):
    """A whole target file; `accelerator` and `assumptions` are checked where they are
    understood (`accelsim.accel.arch`, `accelsim.core.target`)."""

    name: Annotated[str, Field(min_length=1)]
    kind: _choice(KINDS)  # type: ignore[valid-type]
    description: str = ""
    codegen: Codegen
    timing: Timing | None = None
    memory: Memory | None = None
    energy: EnergySection | None = None
    accelerator: Annotated[dict[str, Any], mapping_of("a mapping of parameters")] | None = None
    area: AreaSection | None = None
    assumptions: Any = None

    @model_validator(mode="after")
    def _required_per_kind(self) -> TargetFile:
        def missing(where: str) -> Exception:
            return problem(
                "required",
                "{where}: missing (required for kind '{of}')",
                where=where,
                of=self.kind,
            )

        if self.codegen.vector_bits == "auto" and self.kind != "host":
            raise problem(
                "vector_bits",
                "codegen.vector_bits: expected a positive multiple of 64 ('auto' only on host), "
                "found 'auto'",
            )
        if self.codegen.features == "auto" and self.kind != "host":
            raise problem(
                "features",
                "codegen.features: expected a list of feature names ('auto' only on host), "
                "found 'auto'",
            )
        if self.kind == "accelerator":
            if not self.accelerator:
                raise missing("accelerator")
            if self.timing is None:
                raise missing("timing.clock_hz")
            return self
        if self.timing is None:
            raise missing("timing")
        for key in ("issue_width",):
            if getattr(self.timing, key) is None:
                raise missing(f"timing.{key}")
        if not self.timing.instructions:
            raise missing("timing.instructions")
        if "vector_alu" not in self.timing.instructions:
            raise missing("timing.instructions.vector_alu")
        if not self.timing.mac:
            raise missing("timing.mac")
        if self.memory is None:
            raise missing("memory.levels")
        for i, lv in enumerate(self.memory.levels):
            if lv.bandwidth_bytes_per_cycle is None and lv.bandwidth_bytes_per_s is None:
                raise problem(
                    "bandwidth",
                    "memory.levels[{i}] ({name}): needs bandwidth_bytes_per_cycle or "
                    "bandwidth_bytes_per_s",
                    i=i,
                    name=lv.name,
                )
        return self


class Sections(Schema):
    """The cost sections of a target on their own: a sweep checks each edited design point with
    the same types and ranges as a target file (`check_sections`)."""

    timing: Timing | None = None
    memory: Memory | None = None
    energy: EnergySection | None = None
    accelerator: Annotated[dict[str, Any], mapping_of("a mapping of parameters")] | None = None
    area: AreaSection | None = None


def check_sections(data: Any, where: str, error: type[AccelsimError]) -> None:
    """`data` ({timing, memory, energy, accelerator}, as edited by a sweep) against the target
    schema; `error` names `where` and the key path."""
    validate(Sections, data, where, error)
