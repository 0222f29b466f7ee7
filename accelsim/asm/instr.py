"""`Instr`: one parsed instruction, what every ISA's parser produces; the instruction classes
(keys of `targets/*.yaml` `timing.instructions`) that do multiplications."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Instr:
    """One parsed instruction."""

    text: str
    mnemonic: str
    cls: str  # instruction class: a key of timing.instructions (or its finer variant)
    defs: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()
    acc: str | None = None  # register read as the accumulator (late-forwarded operand)
    count: int = 1  # registers moved (LDP/LD1 {..}: the pipes are used per register)
    narrow: bool = False  # AArch64 64-bit (D-form) or scalar vector-unit operation
    packet: int | None = None  # Hexagon packet index within the block
    same_packet: tuple[str, ...] = ()  # Hexagon .cur/.tmp/.new registers forwarded in-packet


# classes of the vector multiply-accumulate work: dot products, multiplies and
# multiply-accumulates, FMAs, and the pairwise accumulation that completes an SMULL-based dot
# product (SADALP)
MAC_CLASSES = frozenset(
    {
        "vector_mac_int8",
        "vector_mmla_int8",
        "vector_mac_bf16",
        "vector_mul_long_int8",
        "vector_mac_int16",
        "vector_pairwise_acc",
        "vector_fma_fp32",
        "vector_fma_fp16",
        "vector_mul",
        "vector_dmpy_int16x8",
        "vector_mpyi_int16",
    }
)
