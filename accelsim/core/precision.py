"""`Precision`: how a layer's weights and activations are represented.

Text form for users: `w8a8`, `w4a8`, `w8a4`, `w8a16`, `w16a16`, `w4a4`, `fp32`, `fp16`,
optionally with options after slashes: `w8a8/per-tensor/asym`, `w4a8/unsigned`,
`w8a8/weight-only`.
Defaults follow the whitepaper's recommendation (Krishnamoorthi 2018, §3.4; Wu et al. 2020):
symmetric per-channel weights in the restricted range [-(2^(b-1)-1), 2^(b-1)-1], asymmetric
per-tensor signed activations. `w8a16` is TFLite's 16x8 scheme: int8 per-channel weights,
int16 activations symmetric about a zero point of 0 (its int16 kernels require it), int64 bias.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from accelsim.core.errors import InputError

SUPPORTED_BITS = (4, 8, 16)
FLOAT_NAMES = {"fp32": "float32", "fp16": "float16"}
_OPTIONS = {
    "per-channel": ("per_channel", True),
    "per-tensor": ("per_channel", False),
    "sym": ("symmetric_weights", True),
    "asym": ("symmetric_weights", False),
    "sym-act": ("symmetric_acts", True),
    "asym-act": ("symmetric_acts", False),
    "signed": ("signed_acts", True),
    "unsigned": ("signed_acts", False),
    "restricted": ("restricted_range", True),
    "full-range": ("restricted_range", False),
    "weight-only": ("weight_only", True),
}
_DEFAULTS = {
    "per_channel": True,
    "symmetric_weights": True,
    "symmetric_acts": False,
    "signed_acts": True,
    "restricted_range": True,
    "weight_only": False,
}
# Defaults that differ for one bit-width pair: TFLite's 16x8 kernels take int16 activations
# with zero point 0 only (Jacob et al.'s asymmetric 8-bit scheme is not theirs).
_PAIR_DEFAULTS: dict[tuple[int, int], dict[str, bool]] = {(8, 16): {"symmetric_acts": True}}


def defaults_for(weight_bits: int | None, act_bits: int | None) -> dict[str, bool]:
    """The scheme options an integer precision takes when its text names none."""
    return {**_DEFAULTS, **_PAIR_DEFAULTS.get((weight_bits or 0, act_bits or 0), {})}


@dataclass(frozen=True)
class Precision:
    """Weight and activation bit widths and the quantization scheme.

    A float baseline has `float_dtype` set ("float32"/"float16") and no bit widths.
    """

    weight_bits: int | None = 8
    act_bits: int | None = 8
    per_channel: bool = True
    symmetric_weights: bool = True
    symmetric_acts: bool = False
    signed_acts: bool = True
    restricted_range: bool = True
    weight_only: bool = False
    float_dtype: str | None = None

    @property
    def is_float(self) -> bool:
        return self.float_dtype is not None

    @property
    def name(self) -> str:
        """Short name: `w8a8`, `fp32`."""
        if self.float_dtype:
            return {v: k for k, v in FLOAT_NAMES.items()}[self.float_dtype]
        return f"w{self.weight_bits}a{self.act_bits}"

    def __str__(self) -> str:
        if self.float_dtype:
            return self.name
        defaults = defaults_for(self.weight_bits, self.act_bits)
        opts = [
            k
            for k, (field, value) in _OPTIONS.items()
            if getattr(self, field) == value and defaults[field] != value
        ]
        return "/".join([self.name] + opts)

    @property
    def wbits(self) -> int:
        """Weight bits of an integer precision (a float one has none)."""
        if self.weight_bits is None:
            raise ValueError(f"{self.name} has no integer weight bits")
        return self.weight_bits

    @property
    def abits(self) -> int:
        """Activation bits of an integer precision (a float one has none)."""
        if self.act_bits is None:
            raise ValueError(f"{self.name} has no integer activation bits")
        return self.act_bits

    @property
    def weight_dtype(self) -> str:
        return self.float_dtype or _int_dtype(self.wbits, True)

    @property
    def act_dtype(self) -> str:
        if self.float_dtype or self.weight_only:
            return self.float_dtype or "float32"
        return _int_dtype(self.abits, self.signed_acts)

    @property
    def accumulator_dtype(self) -> str:
        """int32, as TFLite, except with 16-bit activations, where TFLite's 16x8 kernels and
        any 16x16 datapath need 64-bit accumulators."""
        return "int64" if (self.act_bits or 0) > 8 or (self.weight_bits or 0) > 8 else "int32"

    def weight_qrange(self) -> tuple[int, int]:
        b = self.wbits
        if self.symmetric_weights and self.restricted_range:
            return -(2 ** (b - 1) - 1), 2 ** (b - 1) - 1
        return -(2 ** (b - 1)), 2 ** (b - 1) - 1

    def act_qrange(self) -> tuple[int, int]:
        b = self.abits
        if self.signed_acts:
            return -(2 ** (b - 1)), 2 ** (b - 1) - 1
        return 0, 2**b - 1

    def with_options(self, **changes: Any) -> Precision:
        return replace(self, **changes)


def _int_dtype(bits: int, signed: bool) -> str:
    return f"{'' if signed else 'u'}int{bits}"


_PATTERN = re.compile(r"^w(\d+)a(\d+)$")


def parse_precision(text: str, source: str = "precision") -> Precision:
    """Parse `w8a8`, `fp32`, `w4a8/per-tensor/asym`, ... into a `Precision`."""
    parts = [p.strip().lower() for p in str(text).split("/")]
    head, opts = parts[0], parts[1:]
    if head in FLOAT_NAMES:
        if opts:
            raise InputError(f"{source} '{text}': float precisions take no options")
        return Precision(None, None, float_dtype=FLOAT_NAMES[head])
    m = _PATTERN.match(head)
    if not m:
        raise InputError(
            f"{source} '{text}': expected wNaM (N, M in "
            f"{', '.join(map(str, SUPPORTED_BITS))}, e.g. w8a8, w4a8, w8a16) or fp32/fp16"
        )
    wb, ab = int(m.group(1)), int(m.group(2))
    for what, bits in (("weight", wb), ("activation", ab)):
        if bits not in SUPPORTED_BITS:
            raise InputError(
                f"{source} '{text}': {what} bits must be one of "
                f"{', '.join(map(str, SUPPORTED_BITS))}, found {bits}"
            )
    fields: dict[str, Any] = defaults_for(wb, ab)
    for o in opts:
        if o not in _OPTIONS:
            raise InputError(
                f"{source} '{text}': unknown option '{o}'; options: {', '.join(_OPTIONS)}"
            )
        key, value = _OPTIONS[o]
        fields[key] = value
    return replace(Precision(wb, ab), **fields)


def parse_precision_list(text: str, source: str = "--precision") -> list[Precision]:
    """`w8a8,w4a8,fp32` -> [Precision, ...], in order, without duplicates."""
    out: list[Precision] = []
    for item in str(text).split(","):
        if not item.strip():
            raise InputError(f"{source} '{text}': empty precision in the list")
        p = parse_precision(item.strip(), source)
        if p not in out:
            out.append(p)
    return out
