"""The configurable SIMD accelerator's architecture: `AccelConfig`, loaded from a `Target` of kind
`accelerator` (`targets/simd-accel*.yaml`), validated, and varied for design-space sweeps.

The target file's `timing.clock_hz` is the clock; its `accelerator:` section is the design space (lanes, MACs per lane per precision,
accumulators, register file, scratchpads, DMA, DRAM, double buffering, the host core that runs the
layers the accelerator does not); its `energy:` section holds the technology node, supply voltage
and the DRAM and leakage figures. Energies per operation and per byte are *derived* here from the
45 nm figures of Horowitz (ISSCC 2014; docs/energy.md sections 1-2) with the stated rules in
`EnergyModel.rules`, so that a sweep that changes a scratchpad size or the node changes them
consistently.

`AccelConfig.with_params(lanes=128, dma_bytes_per_cycle=8, ...)` returns a new, re-validated
configuration with those values changed and nothing else (`SWEEP_PARAMS` lists the names).

Validation rejects configurations the hardware cannot have, with one-line errors that name the file
and key: a precision the lanes cannot do, a scratchpad too small for the smallest tile, zero or
negative sizes, banks that do not divide a scratchpad.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any

from accelsim.core.errors import AccelsimError
from accelsim.core.schema.targets import check_sections
from accelsim.core.target import Target, TargetError, load_target


class AccelConfigError(TargetError):
    """An accelerator description the hardware cannot have (names the file and the key)."""


SCRATCHPADS = ("act", "wgt", "acc", "out")
# Per-channel parameters that travel with an output-channel tile of weights: bias (accumulator
# width), requantization multiplier (32 bit) and shift (32 bit, as the TIR holds it).
PARAM_BITS_FIXED = 64

# Horowitz, ISSCC 2014 (45 nm, 0.9 V): docs/energy.md section 1. pJ.
H45_INT8_ADD = 0.03
H45_INT32_ADD = 0.1
H45_INT8_MUL = 0.2
H45_INT32_MUL = 3.1
H45_FP32_MUL = 3.7
H45_FP32_ADD = 0.9
H45_SRAM_64B = ((8 * 1024, 10.0), (32 * 1024, 20.0), (1024 * 1024, 100.0))
# each ALU lane's copy of the VLUT table: 256 entries of up to 16 bit (isa.VLut)
LUT_TABLE_BYTES = 512

# Names `with_params` accepts, and where each lives in the raw `accelerator:` / `energy:` data.
SWEEP_PARAMS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "clock_hz": ("timing", "clock_hz"),
        "lanes": ("accelerator", "lanes"),
        "lane_multiplier_bits": ("accelerator", "lane_multiplier_bits"),
        "macs_per_lane": ("accelerator", "macs_per_lane"),
        "acc_bits": ("accelerator", "accumulator", "bits"),
        "wide_acc_bits": ("accelerator", "accumulator", "wide_bits"),
        "saturate": ("accelerator", "accumulator", "saturate"),
        "acc_registers": ("accelerator", "register_file", "accumulators"),
        "weight_registers": ("accelerator", "register_file", "weight_vectors"),
        "act_registers": ("accelerator", "register_file", "act_vectors"),
        "pipeline_cycles": ("accelerator", "pipeline_cycles"),
        "issue_cycles": ("accelerator", "issue_cycles"),
        "alu_lanes": ("accelerator", "alu_lanes"),
        "act_kb": ("accelerator", "scratchpads", "act", "size_kb"),
        "wgt_kb": ("accelerator", "scratchpads", "wgt", "size_kb"),
        "acc_kb": ("accelerator", "scratchpads", "acc", "size_kb"),
        "out_kb": ("accelerator", "scratchpads", "out", "size_kb"),
        "scratchpad_kb": (),  # total of the four; scales each in proportion (see with_params)
        "dma_engines": ("accelerator", "dma", "engines"),
        "dma_bytes_per_cycle": ("accelerator", "dma", "bytes_per_cycle"),
        "dma_latency_cycles": ("accelerator", "dma", "latency_cycles"),
        "dma_burst_bytes": ("accelerator", "dma", "burst_bytes"),
        "dram_bytes_per_cycle": ("accelerator", "dram", "bytes_per_cycle"),
        "double_buffering": ("accelerator", "double_buffering"),
        "technology_nm": ("energy", "technology_nm"),
        "voltage_v": ("energy", "voltage_v"),
        "dram_pj_per_byte": ("energy", "dram_pj_per_byte"),
        "static_power_w": ("energy", "static_power_w"),
    }
)


@dataclass(frozen=True)
class Scratchpad:
    """One software-managed on-chip buffer: `banks` banks of `bank_width_bytes`-wide words,
    word-interleaved; `ports` = 1 (one access per bank per cycle) or 2 (one read + one write).
    With double buffering the banks are split between the two slots, so the DMA filling one slot
    and the compute unit reading the other never meet in a bank."""

    name: str
    size_bytes: int
    banks: int
    bank_width_bytes: int
    ports: int

    @property
    def size_kb(self) -> float:
        return self.size_bytes / 1024

    @property
    def bank_bytes(self) -> int:
        return self.size_bytes // self.banks

    def slot_banks(self, slots: int) -> int:
        return max(1, self.banks // max(1, slots))

    def bytes_per_cycle(self, slots: int = 1) -> int:
        """Peak bytes per cycle one port of one slot delivers."""
        return self.slot_banks(slots) * self.bank_width_bytes


@dataclass(frozen=True)
class MacMode:
    """How the lanes run one (weight bits, activation bits) pair.

    `depth`: reduction elements one lane consumes per micro-op (products summed in the lane's adder
    tree); `cycles`: cycles per micro-op (4 for 16x16 on an 8x8 array); `macs_per_lane`: the rate.
    """

    precision: str
    macs_per_lane: float
    depth: int
    cycles: int


@dataclass(frozen=True)
class HostSpec:
    clock_hz: float
    elements_per_cycle: float
    bytes_per_cycle: float
    call_overhead_cycles: int
    power_w: float
    # the CPU target file describing the host core: the layers the accelerator does not run get
    # that target's generated kernels (lowered, verified under its emulator); None: reference
    target: str | None = None


@dataclass(frozen=True)
class EnergyModel:
    """Energies derived from Horowitz's 45 nm table with the rules in `rules` (pJ)."""

    factor: float  # node and voltage scaling of on-chip energies
    mac_pj: Mapping[str, float]  # per MAC, broadcast (conv / dense) mode
    mac_pj_elem: Mapping[str, float]  # per MAC, element-wise (depthwise) mode
    requant_pj: float  # per output element, int32 MultiplyByQuantizedMultiplier
    requant_wide_pj: float  # per output element, int64 x 16-bit-reduced multiplier
    requant_f64_pj: float  # per output element, TFLite FULLY_CONNECTED's double rounding
    requant_f32_pj: float  # per output element, ONNX Runtime's float32 requantization
    add_pj: float  # per element of the TFLite add recipe (3 multipliers)
    mul_pj: float  # per element of the TFLite mul recipe (a product + one requantization)
    addf_pj: float  # per element of ONNX Runtime's QLinearAdd (two float32 FMAs)
    mulf_pj: float  # per element of ONNX Runtime's QLinearMul (product + float32 FMA)
    lut_pj: float  # per element looked up in a lane's table copy (VLUT)
    pack_pj: float  # per element packed / unpacked (4-bit)
    sram_pj_per_byte: Mapping[str, float]  # per scratchpad, by its bank size
    rf_pj_per_byte: float  # accumulator / operand registers
    dram_pj_per_byte: float
    static_power_w: float
    rules: tuple[str, ...]

    def requant_of(self, wide: Any, fscale: str) -> Any:
        """Energy of one REQUANT element in its mode (`isa.Requant`)."""
        if fscale:
            return self.requant_f64_pj if fscale == "float64" else self.requant_f32_pj
        return self.requant_wide_pj if wide else self.requant_pj


def _sram_pj_64b_45(size_bytes: float) -> float:
    """Horowitz's SRAM read energy per 64 bit at 45 nm for an array of `size_bytes`: log-linear
    in log2(size) between and beyond his 8 KB / 32 KB / 1 MB points; below 8 KB proportional to
    sqrt(size) (bit-line and word-line length both shrink with the square root of the capacity)."""
    pts = H45_SRAM_64B
    if size_bytes <= pts[0][0]:
        return pts[0][1] * math.sqrt(max(size_bytes, 1) / pts[0][0])
    for (s0, e0), (s1, e1) in zip(pts, pts[1:]):
        if size_bytes <= s1:
            t = (math.log2(size_bytes) - math.log2(s0)) / (math.log2(s1) - math.log2(s0))
            return e0 + t * (e1 - e0)
    (s0, e0), (s1, e1) = pts[-2], pts[-1]
    slope = (e1 - e0) / (math.log2(s1) - math.log2(s0))
    return e1 + slope * (math.log2(size_bytes) - math.log2(s1))


def _mul45(wb: int, ab: int) -> float:
    """Array-multiplier energy grows with the product of the operand widths (anchored at 8x8)."""
    return H45_INT8_MUL * (wb * ab) / 64.0


def _add45(bits: float) -> float:
    """Adder energy grows with its width (anchored at Horowitz's 32-bit add)."""
    return H45_INT32_ADD * bits / 32.0


def _bits_of(prec: str) -> tuple[int, int]:
    w, a = prec[1:].split("a")
    return int(w), int(a)


@dataclass(frozen=True, eq=False)
class AccelConfig:
    """A validated accelerator design point (see the module docstring)."""

    name: str
    path: str
    native: tuple[str, ...]
    clock_hz: float
    lanes: int
    lane_multiplier_bits: int
    macs_per_lane: Mapping[str, float]
    acc_bits: int
    wide_acc_bits: int
    saturate: bool
    acc_registers: int
    weight_registers: int
    act_registers: int
    pipeline_cycles: int
    issue_cycles: int
    alu_lanes: int
    scratchpads: Mapping[str, Scratchpad]
    dma_engines: int
    dma_bytes_per_cycle: float
    dma_latency_cycles: int
    dma_burst_bytes: int
    dram_bytes_per_cycle: float
    double_buffering: bool
    host: HostSpec
    energy: EnergyModel
    raw: Mapping[str, Any] = field(repr=False)  # the target data this was parsed from
    target: Target | None = field(default=None, repr=False)

    # -- derived -----------------------------------------------------------------------------
    @property
    def slots(self) -> int:
        """Slots per staged scratchpad buffer: 2 with double buffering."""
        return 2 if self.double_buffering else 1

    @property
    def scratchpad_kb(self) -> float:
        return sum(s.size_bytes for s in self.scratchpads.values()) / 1024

    def mode(self, precision: str) -> MacMode:
        if precision not in self.macs_per_lane:
            raise AccelConfigError(
                f"{self.path}: accelerator.macs_per_lane: the lanes cannot do "
                f"{precision} (supported: {', '.join(self.macs_per_lane)})"
            )
        m = float(self.macs_per_lane[precision])
        if m >= 1:
            return MacMode(precision, m, int(round(m)), 1)
        return MacMode(precision, m, 1, int(round(1 / m)))

    def supports(self, precision: str) -> bool:
        return precision in self.macs_per_lane

    def peak_macs_per_cycle(self, precision: str) -> float:
        return self.lanes * self.mode(precision).macs_per_lane

    def acc_bits_for(self, wide: bool) -> int:
        return self.wide_acc_bits if wide else self.acc_bits

    @cached_property
    def key(self) -> str:
        """Canonical text of every parameter (cache keys)."""
        return json.dumps(self.raw, sort_keys=True, default=str)

    def codegen_key(self) -> str:
        """The parameters that shape generated code (tiles, loop structure): not the DMA or
        DRAM bandwidths, latencies, clocks or energies, so a bandwidth sweep reuses compiled
        programs (the tiler minimises traffic in bytes, independent of bandwidth)."""
        a = self.raw["accelerator"]
        keep = {
            k: a[k]
            for k in (
                "lanes",
                "macs_per_lane",
                "accumulator",
                "register_file",
                "scratchpads",
                "double_buffering",
            )
            if k in a
        }
        keep["burst"] = a.get("dma", {}).get("burst_bytes")  # the tiler counts whole bursts
        return json.dumps(keep, sort_keys=True, default=str)

    def with_params(self, **params: Any) -> AccelConfig:
        """A copy with the named parameters changed (names: `SWEEP_PARAMS`), re-validated."""
        raw = copy.deepcopy(_thaw(self.raw))
        desc = ", ".join(f"{k}={v!r}" for k, v in params.items())
        where = f"{self.path} (with_params {desc})"
        for k, v in params.items():
            if k not in SWEEP_PARAMS:
                raise AccelConfigError(
                    f"{where}: {k}: unknown parameter (expected one of {', '.join(SWEEP_PARAMS)})"
                )
            if k == "scratchpad_kb":
                if not isinstance(v, (int, float)) or isinstance(v, bool) or v <= 0:
                    raise AccelConfigError(
                        f"{where}: scratchpad_kb: expected a positive number, found {v!r}"
                    )
                # each buffer keeps its share of the total, rounded to whole bank rows
                total = self.scratchpad_kb
                for s in SCRATCHPADS:
                    sp = raw["accelerator"]["scratchpads"][s]
                    unit = int(sp["banks"]) * int(sp["bank_width_bytes"])
                    size = float(sp["size_kb"]) * 1024 * float(v) / total
                    sp["size_kb"] = max(1, round(size / unit)) * unit / 1024
                continue
            path = SWEEP_PARAMS[k]
            node = raw
            for p in path[:-1]:
                node = node.setdefault(p, {})
            if k == "macs_per_lane" and isinstance(v, Mapping):
                merged = dict(node.get(path[-1], {}))
                merged.update(v)
                v = merged
            node[path[-1]] = v
        check_sections(raw, where, AccelConfigError)  # grid values: the target file's ranges
        return parse_accel(raw, where, self.native, self.name, self.target)

    def describe(self) -> list[str]:
        """Human-readable summary (for reports and the benchmark)."""
        out = [
            f"{self.name}: {self.lanes} lanes x {self.lane_multiplier_bits}x"
            f"{self.lane_multiplier_bits}-bit multipliers @ {self.clock_hz / 1e9:.2f} GHz"
        ]
        for p in self.native:
            m = self.mode(p)
            out.append(
                f"  {p}: {m.macs_per_lane:g} MAC/lane/cycle -> "
                f"{self.peak_macs_per_cycle(p):g} MAC/cycle, "
                f"{self.energy.mac_pj[p]:.4f} pJ/MAC (derived)"
            )
        for s in self.scratchpads.values():
            out.append(
                f"  {s.name}: {s.size_kb:g} KB, {s.banks} banks x {s.bank_width_bytes} B, "
                f"{s.ports} port(s), {self.energy.sram_pj_per_byte[s.name]:.3f} pJ/B "
                f"(derived)"
            )
        out.append(
            f"  DMA: {self.dma_engines} engine(s) x {self.dma_bytes_per_cycle:g} B/cycle, "
            f"{self.dma_latency_cycles} cycles latency, {self.dma_burst_bytes} B bursts; "
            f"DRAM {self.dram_bytes_per_cycle:g} B/cycle, "
            f"{self.energy.dram_pj_per_byte:g} pJ/B"
        )
        out.append(f"  double buffering: {'on' if self.double_buffering else 'off'}")
        out += ["  energy rule: " + r for r in self.energy.rules]
        return out


def _thaw(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {k: _thaw(x) for k, x in v.items()}
    if isinstance(v, tuple):
        return [_thaw(x) for x in v]
    return v


# ------------------------------------------------------------------------------------------------
# parsing and validation
# ------------------------------------------------------------------------------------------------


class _P:
    """Field access with errors that name the file and the key path."""

    def __init__(self, path: str):
        self.path = path

    def err(self, key: str, msg: str) -> AccelConfigError:
        return AccelConfigError(f"{self.path}: {key}: {msg}")

    def mapping(self, data: Mapping, key: str, where: str) -> Mapping:
        v = data.get(key)
        if not isinstance(v, Mapping):
            raise self.err(
                where + key,
                "missing (required mapping)"
                if v is None
                else f"expected a mapping, found {type(v).__name__} {v!r}",
            )
        return v

    def num(
        self,
        data: Mapping,
        key: str,
        where: str,
        *,
        integer=False,
        positive=True,
        minimum=None,
        default=None,
    ) -> float:
        if key not in data:
            if default is not None:
                return default
            raise self.err(where + key, "missing (required)")
        v = data[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise self.err(where + key, f"expected a number, found {v!r}")
        if integer and v != int(v):
            raise self.err(where + key, f"expected an integer, found {v!r}")
        if positive and v <= 0:
            raise self.err(where + key, f"must be positive, found {v!r}")
        if minimum is not None and v < minimum:
            raise self.err(where + key, f"must be >= {minimum}, found {v!r}")
        return int(v) if integer else float(v)

    def boolean(self, data: Mapping, key: str, where: str, default=None) -> bool:
        v = data.get(key, default)
        if not isinstance(v, bool):
            raise self.err(where + key, f"expected true or false, found {v!r}")
        return v


_ACCEL_KEYS = {
    "lanes",
    "lane_multiplier_bits",
    "macs_per_lane",
    "accumulator",
    "register_file",
    "pipeline_cycles",
    "issue_cycles",
    "alu_lanes",
    "scratchpads",
    "dma",
    "dram",
    "double_buffering",
    "host",
}
_ENERGY_KEYS = {
    "reference",
    "technology_nm",
    "voltage_v",
    "scaling_rule",
    "dram_pj_per_byte",
    "static_power_w",
}


def parse_accel(
    raw: Mapping[str, Any],
    path: str,
    native: tuple[str, ...],
    name: str,
    target: Target | None = None,
) -> AccelConfig:
    """Validate the raw `{timing: {clock_hz}, accelerator: ..., energy: ...}` data of a
    target."""
    P = _P(path)
    a = raw.get("accelerator")
    if not isinstance(a, Mapping) or not a:
        raise P.err("accelerator", "missing (required for kind 'accelerator')")
    extra = sorted(set(a) - _ACCEL_KEYS)
    if extra:
        raise P.err(
            f"accelerator.{extra[0]}",
            f"unknown key (expected one of {', '.join(sorted(_ACCEL_KEYS))})",
        )
    A = "accelerator."
    timing = raw.get("timing") or {}
    if not isinstance(timing, Mapping):
        raise P.err("timing", "expected a mapping")
    clock = P.num(timing, "clock_hz", "timing.")
    lanes = P.num(a, "lanes", A, integer=True)
    mbits = P.num(a, "lane_multiplier_bits", A, integer=True)
    mpl_raw = P.mapping(a, "macs_per_lane", A)
    mpl: dict[str, float] = {}
    from accelsim.core.precision import parse_precision

    for k, _v in mpl_raw.items():
        key = f"{A}macs_per_lane.{k}"
        try:
            prec = parse_precision(str(k), f"{path}: {key}")
        except AccelsimError as exc:
            raise AccelConfigError(str(exc)) from None
        if prec.is_float:
            raise P.err(key, "the lanes are integer-only")
        m = P.num(mpl_raw, k, f"{A}macs_per_lane.")
        wb, ab = prec.weight_bits, prec.act_bits
        cap = (mbits * mbits) / (wb * ab)
        if m > cap + 1e-12:
            raise P.err(
                key,
                f"{m:g} MACs per lane per cycle exceed what a {mbits}x{mbits}-bit "
                f"lane multiplier can do with {wb}x{ab}-bit operands ({cap:g}: the array "
                f"has {mbits * mbits} partial-product bits, a product needs {wb * ab})",
            )
        if m >= 1 and m != int(m):
            raise P.err(
                key, f"{m:g}: a rate of one or more must be a whole number of products per cycle"
            )
        if m < 1 and abs(1 / m - round(1 / m)) > 1e-9:
            raise P.err(key, f"{m:g}: a rate below one must be 1/n (one product every n cycles)")
        mpl[prec.name] = m
    for p in native:
        if p not in mpl:
            raise P.err(
                f"{A}macs_per_lane",
                f"codegen.native lists {p} but the lanes cannot do "
                f"it (no macs_per_lane entry for {p})",
            )
    accd = P.mapping(a, "accumulator", A)
    acc_bits = P.num(accd, "bits", A + "accumulator.", integer=True)
    wide_bits = P.num(accd, "wide_bits", A + "accumulator.", integer=True)
    saturate = P.boolean(accd, "saturate", A + "accumulator.", default=False)
    if acc_bits < 32:
        raise P.err(
            A + "accumulator.bits",
            f"{acc_bits}-bit accumulators cannot hold the int32 "
            f"sums that gemmlowp requantizes (need >= 32)",
        )
    if any(max(_bits_of(p)) > 8 for p in mpl) and wide_bits < 48:
        raise P.err(
            A + "accumulator.wide_bits",
            f"{wide_bits} bits: 16-bit products need "
            f">= 48-bit accumulators (TFLite's int64 path requires |acc| < 2^47)",
        )
    rf = P.mapping(a, "register_file", A)
    acc_regs = P.num(rf, "accumulators", A + "register_file.", integer=True)
    w_regs = P.num(rf, "weight_vectors", A + "register_file.", integer=True)
    a_regs = P.num(rf, "act_vectors", A + "register_file.", integer=True)
    pipe = P.num(a, "pipeline_cycles", A, integer=True, positive=False, minimum=0)
    issue = P.num(a, "issue_cycles", A, integer=True, positive=False, minimum=0)
    alu_lanes = P.num(a, "alu_lanes", A, integer=True)
    dbuf = P.boolean(a, "double_buffering", A)
    slots = 2 if dbuf else 1
    sps_raw = P.mapping(a, "scratchpads", A)
    extra = sorted(set(sps_raw) - set(SCRATCHPADS))
    if extra:
        raise P.err(
            f"{A}scratchpads.{extra[0]}", f"unknown scratchpad (expected {', '.join(SCRATCHPADS)})"
        )
    sps: dict[str, Scratchpad] = {}
    for s in SCRATCHPADS:
        w = f"{A}scratchpads.{s}."
        d = P.mapping(sps_raw, s, f"{A}scratchpads.")
        kb = P.num(d, "size_kb", w)
        banks = P.num(d, "banks", w, integer=True)
        width = P.num(d, "bank_width_bytes", w, integer=True)
        ports = P.num(d, "ports", w, integer=True)
        if ports not in (1, 2):
            raise P.err(
                w + "ports",
                f"expected 1 (single-ported) or 2 (one read + one write), found {ports}",
            )
        size = kb * 1024
        if abs(size - round(size)) > 1e-6:
            raise P.err(w + "size_kb", f"{kb:g} KB is not a whole number of bytes")
        size = int(round(size))
        if size % (banks * width):
            raise P.err(
                w + "banks",
                f"{banks} banks of {width} B do not divide the {size} B scratchpad ({kb:g} KB)",
            )
        if slots == 2 and s != "acc" and banks % 2:
            raise P.err(
                w + "banks",
                f"{banks} banks cannot be split between the two "
                f"double-buffer slots (need an even number)",
            )
        sps[s] = Scratchpad(s, size, banks, width, ports)
    dma = P.mapping(a, "dma", A)
    engines = P.num(dma, "engines", A + "dma.", integer=True)
    if engines not in (1, 2):
        raise P.err(
            A + "dma.engines",
            f"expected 1 (loads and stores share one engine) or 2 "
            f"(one load, one store engine), found {engines}",
        )
    dma_bw = P.num(dma, "bytes_per_cycle", A + "dma.")
    dma_lat = P.num(dma, "latency_cycles", A + "dma.", integer=True, positive=False, minimum=0)
    burst = P.num(dma, "burst_bytes", A + "dma.", integer=True)
    dram = P.mapping(a, "dram", A)
    dram_bw = P.num(dram, "bytes_per_cycle", A + "dram.")
    h = P.mapping(a, "host", A)
    host = HostSpec(
        P.num(h, "clock_hz", A + "host."),
        P.num(h, "elements_per_cycle", A + "host."),
        P.num(h, "bytes_per_cycle", A + "host."),
        P.num(h, "call_overhead_cycles", A + "host.", integer=True, positive=False, minimum=0),
        P.num(h, "power_w", A + "host.", positive=False, minimum=0),
        _host_target(P, h.get("target"), A + "host.target"),
    )

    # the smallest tile every buffer must hold, for every precision the lanes run
    for p in mpl:
        m = float(mpl[p])
        depth = int(m) if m >= 1 else 1
        wb, ab = _bits_of(p)
        wide = max(wb, ab) > 8
        abits = acc_bits if not wide else wide_bits
        need = {
            "wgt": slots * (lanes * depth * wb / 8 + lanes * (abits + PARAM_BITS_FIXED) / 8),
            "act": slots * lanes * max(ab, 8) / 8,
            "acc": lanes * abits / 8,
            "out": slots * lanes * max(ab, 8) / 8,
        }
        what = {
            "wgt": f"one {lanes}-lane x {depth} weight block at {wb} bit plus its per-channel "
            f"bias, multiplier and shift",
            "act": f"one {lanes}-lane activation vector at {max(ab, 8)} bit",
            "acc": f"one {lanes}-lane accumulator vector at {abits} bit",
            "out": f"one {lanes}-lane output vector at {max(ab, 8)} bit",
        }
        for s, b in need.items():
            if sps[s].size_bytes < b:
                buf = f" x {slots} buffers" if slots == 2 and s != "acc" else ""
                raise P.err(
                    f"{A}scratchpads.{s}.size_kb",
                    f"{sps[s].size_kb:g} KB cannot hold the smallest {p} tile: "
                    f"{what[s]}{buf} = {int(math.ceil(b))} B",
                )

    e = raw.get("energy") or {}
    if not isinstance(e, Mapping):
        raise P.err("energy", "expected a mapping")
    extra = sorted(set(e) - _ENERGY_KEYS)
    if extra:
        raise P.err(
            f"energy.{extra[0]}", f"unknown key (expected one of {', '.join(sorted(_ENERGY_KEYS))})"
        )
    node = P.num(e, "technology_nm", "energy.")
    volt = P.num(e, "voltage_v", "energy.")
    dram_pj = P.num(e, "dram_pj_per_byte", "energy.", positive=False, minimum=0)
    static = P.num(e, "static_power_w", "energy.", positive=False, minimum=0)
    energy = derive_energy(mpl, node, volt, dram_pj, static, sps, acc_regs, acc_bits, wide_bits)

    return AccelConfig(
        name=name,
        path=path,
        native=tuple(native),
        clock_hz=clock,
        lanes=lanes,
        lane_multiplier_bits=mbits,
        macs_per_lane=MappingProxyType(mpl),
        acc_bits=acc_bits,
        wide_acc_bits=wide_bits,
        saturate=saturate,
        acc_registers=acc_regs,
        weight_registers=w_regs,
        act_registers=a_regs,
        pipeline_cycles=pipe,
        issue_cycles=issue,
        alu_lanes=alu_lanes,
        scratchpads=MappingProxyType(sps),
        dma_engines=engines,
        dma_bytes_per_cycle=dma_bw,
        dma_latency_cycles=dma_lat,
        dma_burst_bytes=burst,
        dram_bytes_per_cycle=dram_bw,
        double_buffering=dbuf,
        host=host,
        energy=energy,
        raw=MappingProxyType(
            {"timing": _thaw(timing), "accelerator": _thaw(a), "energy": _thaw(e)}
        ),
        target=target,
    )


def derive_energy(
    mpl: Mapping[str, float],
    node_nm: float,
    voltage: float,
    dram_pj: float,
    static_w: float,
    sps: Mapping[str, Scratchpad],
    acc_regs: int,
    acc_bits: int,
    wide_bits: int,
) -> EnergyModel:
    """Per-operation and per-byte energies at the target node from Horowitz's 45 nm table."""
    factor = (node_nm / 45.0) * (voltage / 0.9) ** 2
    mac, mac_elem = {}, {}
    for p, m in mpl.items():
        wb, ab = _bits_of(p)
        d = int(m) if m >= 1 else 1
        abits = wide_bits if max(wb, ab) > 8 else acc_bits
        prod_bits = wb + ab + math.ceil(math.log2(d)) if d > 1 else wb + ab
        lane_cycle = d * _mul45(wb, ab) + (d - 1) * _add45(prod_bits) + _add45(abits)
        mac[p] = lane_cycle / d * factor
        mac_elem[p] = (_mul45(wb, ab) + _add45(abits)) * factor
    # MultiplyByQuantizedMultiplier: one 32x32 multiply (SRDHM) and ~4 32-bit add / shift / clamp
    requant = (H45_INT32_MUL + 4 * H45_INT32_ADD) * factor
    # int64 path: 64-bit x 16-bit multiply (product-of-widths rule: 1024/1024 of a 32x32) + 64-bit
    # round / shift / clamp
    requant_wide = (H45_INT32_MUL * (64 * 16) / (32 * 32) + 4 * _add45(64)) * factor
    # double scale: a 32 x 53-bit product (two 32x32 passes) + 64-bit rounding / clamp
    requant_f64 = (2 * H45_INT32_MUL + 4 * _add45(64)) * factor
    # float32 scale: int -> float conversion, a float32 multiply, round / clamp / zero point
    requant_f32 = (H45_FP32_MUL + 4 * H45_INT32_ADD) * factor
    add = (3 * (H45_INT32_MUL + 4 * H45_INT32_ADD) + 3 * H45_INT32_ADD) * factor
    # TFLite mul: two zero-point subtractions, the 32x32 product, one requantization
    mul = (H45_INT32_MUL + 2 * H45_INT32_ADD + H45_INT32_MUL + 4 * H45_INT32_ADD) * factor
    # ONNX Runtime's QLinearAdd / QLinearMul: float32 multiply-adds (Horowitz fp32 mul + add)
    addf = (2 * (H45_FP32_MUL + H45_FP32_ADD) + H45_INT32_ADD) * factor
    mulf = (
        H45_INT32_MUL + 2 * H45_INT32_ADD + H45_FP32_MUL + H45_FP32_ADD + H45_INT32_ADD
    ) * factor
    # VLUT: one 16-bit entry read from the lane's 512-byte table copy (the SRAM rule below)
    lut = _sram_pj_64b_45(LUT_TABLE_BYTES) / 8 * 2 * factor
    pack = H45_INT8_ADD * factor
    sram = {s.name: _sram_pj_64b_45(s.bank_bytes) / 8 * factor for s in sps.values()}
    rf_bytes_per_lane = acc_regs * acc_bits / 8
    rf = _sram_pj_64b_45(rf_bytes_per_lane) / 8 * factor
    rules = (
        f"technology scaling E = E45 x (L/45 nm) x (V/0.9 V)^2 = E45 x {factor:.4f} "
        f"({node_nm:g} nm, {voltage:g} V); DRAM {dram_pj:g} pJ/B is not node-scaled",
        "multiplier energy = Horowitz 8-bit multiply 0.2 pJ x (w bits x a bits) / 64 "
        "(array multiplier: product of operand widths)",
        "adder energy = Horowitz 32-bit add 0.1 pJ x width / 32 (ripple/prefix adder: width)",
        "MAC (per lane-cycle) = d multiplies + (d-1) adder-tree adds at product width + one "
        "accumulator add (32 bit, 64 bit for 16x16); per MAC = / d. 4-bit and 16-bit rows are "
        "derived (Horowitz has no 4/16-bit integer rows)",
        "requantize = one 32x32 multiply (3.1 pJ) + 4 x 32-bit add/shift/clamp; TFLite add = "
        "3 requantizations + 3 adds; double-scale requantize (TFLite FULLY_CONNECTED) = two "
        "32x32 multiplies + 4 x 64-bit add/round/clamp; float32-scale requantize (ONNX Runtime) = "
        "a float32 multiply (3.7 pJ) + 4 x 32-bit convert/round/clamp/add; TFLite mul = a 32x32 product + 2 adds + 1 requantization; "
        "ONNX Runtime's QLinearAdd = 2 x (float32 multiply 3.7 pJ + add 0.9 pJ) + a rounding; "
        "QLinearMul = an integer product + 2 adds + a float32 multiply-add + a rounding; "
        f"table lookup = a 2-byte read of a {LUT_TABLE_BYTES}-byte table by the SRAM rule",
        "SRAM read per 64 bit by bank size: log-linear in log2(size) through Horowitz 8 KB 10 pJ, "
        "32 KB 20 pJ, 1 MB 100 pJ; below 8 KB x sqrt(size / 8 KB); per byte = / 8; writes "
        "cost as reads",
        f"register file (per lane {rf_bytes_per_lane:g} B of accumulators) by the same SRAM rule",
        f"static power {static_w:g} W x latency",
    )
    return EnergyModel(
        factor=factor,
        mac_pj=MappingProxyType(mac),
        mac_pj_elem=MappingProxyType(mac_elem),
        requant_pj=requant,
        requant_wide_pj=requant_wide,
        requant_f64_pj=requant_f64,
        requant_f32_pj=requant_f32,
        add_pj=add,
        mul_pj=mul,
        addf_pj=addf,
        mulf_pj=mulf,
        lut_pj=lut,
        pack_pj=pack,
        sram_pj_per_byte=MappingProxyType(sram),
        rf_pj_per_byte=rf,
        dram_pj_per_byte=dram_pj,
        static_power_w=static_w,
        rules=rules,
    )


def config_from_target(target: Target) -> AccelConfig:
    """`AccelConfig` of a loaded `Target` (kind `accelerator`)."""
    if target.kind != "accelerator":
        raise AccelConfigError(
            f"{target.path}: kind: '{target.kind}' is not an accelerator "
            f"target (expected kind 'accelerator')"
        )
    raw = {
        "timing": _thaw(target.timing),
        "accelerator": _thaw(target.accelerator),
        "energy": _thaw(target.energy),
    }
    return parse_accel(raw, target.path, tuple(target.codegen.native), target.name, target)


def _host_target(P, name, where: str) -> str | None:
    """`accelerator.host.target`: the name of a shipped CPU target (kinds cpu-simd, vliw-dsp,
    host), checked here so that a typo fails when the file loads."""
    if name is None:
        return None
    from accelsim.core.schema.targets import CPU_KINDS

    if not isinstance(name, str):
        raise P.err(where, f"expected a target name, found {name!r}")
    try:
        kind = load_target(name).kind
    except TargetError as exc:
        raise P.err(where, f"no CPU target '{name}' ({str(exc).splitlines()[0]})") from None
    if kind not in CPU_KINDS:
        raise P.err(
            where, f"expected a CPU target (kind {', '.join(CPU_KINDS)}), found kind '{kind}'"
        )
    return name


def load_config(name_or_path: str | Target | AccelConfig = "simd-accel") -> AccelConfig:
    """An `AccelConfig` from a shipped target name, a target file, a `Target` or itself."""
    if isinstance(name_or_path, AccelConfig):
        return name_or_path
    if isinstance(name_or_path, Target):
        return config_from_target(name_or_path)
    return config_from_target(load_target(str(name_or_path)))
