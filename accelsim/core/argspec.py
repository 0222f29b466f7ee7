"""`ArgSpec`: one buffer argument of a compiled kernel (name, shape, dtype), in the kernel's
parameter order. The lowering produces them, the kernel record keeps them, and the emulator,
the TVM runtime and the verifier pass buffers by them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from accelsim.core.errors import AccelsimError


class ArgSpecError(AccelsimError):
    """A kernel argument with an unusable shape or dtype."""


# numpy dtype name -> (DLPack type code, bits). kDLInt = 0, kDLUInt = 1, kDLFloat = 2.
DL_DTYPES = {
    "int8": (0, 8),
    "int16": (0, 16),
    "int32": (0, 32),
    "int64": (0, 64),
    "uint8": (1, 8),
    "uint16": (1, 16),
    "uint32": (1, 32),
    "uint64": (1, 64),
    "float16": (2, 16),
    "float32": (2, 32),
    "float64": (2, 64),
}


@dataclass(frozen=True)
class ArgSpec:
    """One buffer argument of the kernel, in the PrimFunc's parameter order."""

    name: str
    shape: tuple[int, ...]
    dtype: str

    def __post_init__(self):
        try:
            shape = tuple(int(d) for d in self.shape)
        except TypeError as exc:
            raise ArgSpecError(
                f"argument {self.name!r}: shape must be a sequence of ints, got {self.shape!r}"
            ) from exc
        if any(d < 0 for d in shape):
            raise ArgSpecError(f"argument {self.name!r}: negative extent in shape {shape}")
        try:
            dtype = np.dtype(self.dtype).name
        except TypeError as exc:
            raise ArgSpecError(f"argument {self.name!r}: unknown dtype {self.dtype!r}") from exc
        if dtype not in DL_DTYPES:
            raise ArgSpecError(
                f"argument {self.name!r}: dtype {dtype} is not supported "
                f"(supported: {', '.join(DL_DTYPES)})"
            )
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "dtype", dtype)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize
