"""Schema of the schedule recipe files, `schedules/<target kind>.yaml`.

Every recipe file has one layout: per operator class (CPU/DSP files: or a single operator, whose
section overrides its class's), a `default` section and per-precision sections (`w8a8`, `fp32`,
...) that override it key by key (`resolve`). What a section may hold depends on the file:

- CPU / DSP files (`cpu-simd`, `vliw-dsp`, `host`): `CpuSection`, keys documented and applied
  by `accelsim.lower.schedule`;
- the accelerator's file (`accelerator`): `AccelSection`, applied by `accelsim.accel.schedule`.

Axes are checked against the operator class, tile and block sizes are positive, `tensorize`
names an intrinsic of the file's intrinsic table. The tables themselves live with the code
that emits the instructions (`accelsim.lower.intrin`, `accelsim.accel.intrin`), above this module
in the pipeline, so the loader passes their names in: `context={"intrinsics": names}`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    WrapValidator,
    create_model,
)

from accelsim.core.errors import AccelsimError
from accelsim.core.fsutil import repo_dir
from accelsim.core.precision import parse_precision
from accelsim.core.schema.base import Schema, load, mapping_of, one_of, positive_int, problem


class RecipeError(AccelsimError):
    """A schedule recipe file that is missing, malformed, or does not fit a layer."""


def schedules_dir() -> Path:
    """`$ACCELSIM_SCHEDULES` or the repository's `schedules/`."""
    return repo_dir("ACCELSIM_SCHEDULES", "schedules")


# ------------------------------------------------------------------------------------------
# value types
# ------------------------------------------------------------------------------------------

_CAP = re.compile(r"<=\s*(\d+)\s*$")
_CAP_PARAM = re.compile(r"<=\s*([A-Za-z_]\w*)\s*$")


def cap_value(text: Any) -> int | None:
    """N of a `"<=N"` size, None when `text` is no such string."""
    m = _CAP.match(text) if isinstance(text, str) else None
    return int(m.group(1)) if m else None


def _size(value: Any) -> Any:
    if positive_int(value) or value == "auto" or (cap_value(value) or 0) > 0:
        return value
    raise problem(
        "size", "expected a positive int, 'auto' or '<=N', found {found}", found=repr(value)
    )


def _cap(value: Any) -> Any:
    if (
        positive_int(value)
        or (cap_value(value) or 0) > 0
        or (isinstance(value, str) and _CAP_PARAM.match(value))
    ):
        return value
    raise problem(
        "cap",
        "expected a positive int, '<=N' or '<=<accelerator parameter>', found {found}",
        found=repr(value),
    )


# CPU/DSP block and tile sizes: N elements, "auto" (blocks: from the intrinsic or the vector)
# or "<=N" (the largest that fits the axis, not above N)
Size = Annotated[Any, AfterValidator(_size)]
# accelerator tile caps: N, "<=N", or "<=<parameter>" of the accelerator's design point
Cap = Annotated[Any, AfterValidator(_cap)]


def _intrinsic(value: Any, info: ValidationInfo) -> str:
    known = tuple((info.context or {}).get("intrinsics", ()))
    if not isinstance(value, str) or value not in known:
        raise problem(
            "unknown_intrinsic",
            "unknown intrinsic {name} (known: {known})",
            name=repr(value),
            known=", ".join(known),
        )
    return value


Intrinsic = Annotated[Any, AfterValidator(_intrinsic)]


def _intrinsic_list(value: Any, handler: Callable[[Any], Any], info: ValidationInfo) -> list[str]:
    """One intrinsic name or a list of them (in order of preference), as a list."""
    if value is None:
        return []
    if isinstance(value, str):
        return [_intrinsic(value, info)]
    return handler(value)


def _precision_key(value: str) -> str:
    if value != "default":
        try:
            parse_precision(value, "section")
        except AccelsimError as exc:
            raise problem(
                "precision", "unknown precision ({reason}; or 'default')", reason=str(exc)
            ) from None
    return value


PrecisionKey = Annotated[str, AfterValidator(_precision_key)]


def _parallel(value: Any) -> Any:
    if value not in (None, "none", False, "contexts"):
        raise problem(
            "parallel",
            "'none' or 'contexts' (split over the target's hardware threads), found {found}",
            found=repr(value),
        )
    return value


# ------------------------------------------------------------------------------------------
# CPU / DSP recipes (accelsim.lower.schedule)
# ------------------------------------------------------------------------------------------

# per operator class: the loop axes of its compute and (second) the axes that take a block
CPU_AXES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "conv2d": (("n", "oh", "ow", "oc", "kh", "kw", "ic"), ("oc", "ic")),
    "depthwise_conv2d": (("n", "oh", "ow", "c", "kh", "kw"), ("c",)),
    "dense": (("n", "oc", "ic"), ("oc", "ic")),
    "elementwise": (("x",), ("x",)),
    "pool": (("n", "oh", "ow", "c", "kh", "kw"), ("c",)),
    "softmax": (("o", "k", "i"), ("k",)),
}
CPU_OP_CLASSES = tuple(CPU_AXES)
# single operators may have their own section, which overrides their class's section
OP_SECTIONS = {
    "add": "elementwise",
    "sub": "elementwise",
    "mul": "elementwise",
    "relu": "elementwise",
    "relu6": "elementwise",
    "clip": "elementwise",
    "quantize": "elementwise",
    "dequantize": "elementwise",
    "concat": "elementwise",
    "pad": "elementwise",
    "max_pool": "pool",
    "avg_pool": "pool",
    "global_avg_pool": "pool",
    "mean": "pool",
    "layer_norm": "softmax",  # a row kernel (accelsim.lower.norm)
}


def _tile_kind(value: Any) -> str:
    return "<list>" if isinstance(value, list) else "<one>"


def _tile(key: Any) -> Any:
    """A tile: one mapping axis -> size, or a list of them (alternatives). The union's tags
    are in angle brackets, which error key paths leave out (`conv2d.default.tile.ow`,
    `conv2d.default.tile[1].ow`)."""
    one = dict[key, Size]
    return Annotated[
        Annotated[one, Tag("<one>")] | Annotated[list[one], Tag("<list>")],
        Discriminator(_tile_kind),
    ]


def _epilogue_vectorize(value: Any) -> Any:
    if isinstance(value, bool) or value == "form":
        return value
    raise problem(
        "epilogue_vectorize",
        "expected true, false or 'form', found {found}",
        found=repr(value),
    )


class Epilogue(Schema):
    WHAT = "a mapping with the keys vectorize, requant, lanes"
    # the fused bias + requantize + clamp, over the channel tile; "form": only where a
    # `requant` form requantized the layer (its narrowing stage), the other epilogues (the
    # float requantizations of ONNX Runtime's QDQ and TFLite's FULLY_CONNECTED) scalar
    vectorize: Annotated[Any, AfterValidator(_epilogue_vectorize)] = True
    # the widest vector (elements) an epilogue over a whole channel axis is vectorized in
    # (default 16, NEON's int8 lanes; HVX: 128); a channel tile is one vector as it is
    lanes: Annotated[int, Field(ge=1)] = 16
    # requantization forms in order of preference (`accelsim.lower.requant.FORMS`); the first
    # the target's features allow is used, else the generic int64 one
    requant: Annotated[list[Intrinsic], WrapValidator(_intrinsic_list)] = Field(
        default_factory=list
    )


class Pad(Schema):
    WHAT = "a mapping with the keys vectorize, materialize"
    vectorize: bool = True  # the padding stage, over channels
    materialize: bool = False  # copy into a padded buffer first (depthwise)


class CpuSection(Schema):
    """One section of a CPU/DSP recipe (see `accelsim.lower.schedule` for the meaning)."""

    WHAT = "a mapping of recipe keys"

    block: dict[str, Size] = Field(default_factory=dict)
    # one mapping, or alternatives: the first whose int sizes fit the layer
    tile: _tile(str) = Field(default_factory=dict)  # type: ignore[valid-type]
    # per tensor intrinsic: the tile used instead of `tile` where that intrinsic is chosen
    intrinsic_tile: dict[Intrinsic, _tile(str)] = Field(default_factory=dict)  # type: ignore[valid-type]
    order: list[str] = Field(default_factory=list)
    # the order where the weights outweigh the input (`accelsim.lower.schedule`)
    weights_order: list[str] = Field(default_factory=list)
    vectorize: str | None = None
    unroll: list[str] = Field(default_factory=list)
    parallel: Annotated[Any, AfterValidator(_parallel)] = None
    tensorize: Annotated[list[Intrinsic], WrapValidator(_intrinsic_list)] = Field(
        default_factory=list
    )
    epilogue: Epilogue = Epilogue()
    pad: Pad = Pad()
    # depthwise: sum two taps' int8 products in int16 before widening (Jacob et al. App. B)
    pair_taps: bool = False
    # quantize: x / scale as a division, or by the scale's correctly rounded reciprocal and
    # two fused multiply-adds, which gives the same float32 (`accelsim.lower.requant.
    # div_known`): for a core whose division is a long sequence (Hexagon's scalar sfrecipa
    # and Newton steps) where its multiply-add is one instruction
    divide: Literal["divide", "reciprocal"] = "divide"


def _axes(op_class: str, axes: tuple[str, ...]) -> Any:
    return one_of("axis", axes, f" for {op_class}")


def _cpu_section(op_class: str) -> type[CpuSection]:
    axes, block_axes = CPU_AXES[op_class]
    return create_model(
        f"CpuSection_{op_class}",
        __base__=CpuSection,
        # the key types are built per operator class at run time, beyond a static checker
        block=(dict[_axes(op_class, block_axes), Size], Field(default_factory=dict)),  # type: ignore[misc, arg-type]
        tile=(_tile(_axes(op_class, axes)), Field(default_factory=dict)),
        intrinsic_tile=(dict[Intrinsic, _tile(_axes(op_class, axes))], Field(default_factory=dict)),  # type: ignore[misc, arg-type]
    )


# ------------------------------------------------------------------------------------------
# accelerator recipes (accelsim.accel.schedule)
# ------------------------------------------------------------------------------------------

# per operator class: the axes the tiler may split (accelsim.accel.compute's tile axes)
ACCEL_AXES: dict[str, tuple[str, ...]] = {
    "conv2d": ("oh", "ow", "oc", "ic"),
    "depthwise_conv2d": ("oh", "ow", "c"),
    "dense": ("oc", "ic"),
    "add": ("p",),  # element-wise ALU classes: rows of the (P, C) output
    "mul": ("p",),
    "lut": ("p",),
    "transpose": ("t",),  # data movement: the output's leading non-unit dim
}
ACCEL_OP_CLASSES = tuple(ACCEL_AXES)


class Dataflow(Schema):
    """A candidate loop nest: tile loops, the loops of one instruction, where inputs load."""

    WHAT = "a mapping with the keys name, order, inner, stage"
    name: str | None = None
    order: list[str]  # tile loops, outermost first
    inner: list[str]  # loops inside a tile, outermost first
    stage: Annotated[dict[str, str], mapping_of("a mapping input -> tile loop")]


class AccelSection(Schema):
    """One section of the accelerator's recipe (see `accelsim.accel.schedule`)."""

    WHAT = "a mapping of recipe keys"
    tensorize: Intrinsic | None = None
    tile: dict[str, Cap] = Field(default_factory=dict)
    dataflows: Annotated[list[Dataflow], Field(min_length=1)] = Field(default_factory=list)
    double_buffer: bool = True


def _accel_section(op_class: str) -> type[AccelSection]:
    return create_model(
        f"AccelSection_{op_class}",
        __base__=AccelSection,
        # the key type is built per operator class at run time, beyond a static checker
        tile=(dict[_axes(op_class, ACCEL_AXES[op_class]), Cap], Field(default_factory=dict)),  # type: ignore[misc, arg-type]
    )


# ------------------------------------------------------------------------------------------
# files
# ------------------------------------------------------------------------------------------


class RecipeFile(Schema):
    """A recipe file: per operator class, its sections by precision."""

    WHAT = "a mapping of operator classes"

    def sections(self, name: str) -> dict[str, Schema] | None:
        """The sections of operator class (or operator) `name`, None when the file has none."""
        return getattr(self, name) if name in self.model_fields_set else None

    def resolve(self, names: list[str], precision: str) -> tuple[dict[str, Any], dict[str, str]]:
        """The recipe keys of the `default` and then the `precision` section of each of
        `names` in turn, each overriding the keys before it, and where each key came from
        (`conv2d.w8a8`)."""
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for name in names:
            for sec in ("default", precision):
                section = (self.sections(name) or {}).get(sec)
                if section is None:
                    continue
                for k, v in section.model_dump(exclude_unset=True).items():
                    values[k] = v
                    sources[k] = f"{name}.{sec}"
        return values, sources


def _sections(section: type[Schema]) -> Any:
    return (
        Annotated[dict[PrecisionKey, section], mapping_of("a mapping of precisions")],  # type: ignore[valid-type]
        Field(default_factory=dict),
    )


def _file(name: str, sections: dict[str, type[Schema]], unknown: str) -> type[RecipeFile]:
    model = create_model(
        name, __base__=RecipeFile, **{k: _sections(s) for k, s in sections.items()}
    )
    model.UNKNOWN = unknown
    return model


CpuRecipes = _file(
    "CpuRecipes",
    {
        **{c: _cpu_section(c) for c in CPU_OP_CLASSES},
        **{op: _cpu_section(c) for op, c in OP_SECTIONS.items()},
    },
    f"unknown operator class (expected one of {', '.join(CPU_OP_CLASSES)}, or an operator: "
    f"{', '.join(OP_SECTIONS)})",
)
AccelRecipes = _file(
    "AccelRecipes",
    {c: _accel_section(c) for c in ACCEL_OP_CLASSES},
    f"unknown operator class (expected one of {', '.join(ACCEL_OP_CLASSES)})",
)


@lru_cache(maxsize=64)
def _load(
    path: str,
    mtime_ns: int,
    model: type[RecipeFile],
    intrinsics: tuple[str, ...],
    error: type[RecipeError],
) -> RecipeFile:
    del mtime_ns  # part of the cache key: an edited file is read again
    doc = load(path, model, error, "schedule recipe file", {"intrinsics": intrinsics})
    assert isinstance(doc, RecipeFile)
    return doc


def load_recipe_file(
    path: str | Path,
    model: type[RecipeFile],
    intrinsics: tuple[str, ...],
    error: type[RecipeError] = RecipeError,
) -> RecipeFile:
    """The recipe file at `path` validated as `model` (`CpuRecipes`, `AccelRecipes`), with
    `intrinsics` the names its `tensorize` keys may use; `error` when missing or invalid."""
    p = Path(path)
    if not p.is_file():
        raise error(f"{path}: no such schedule recipe file")
    return _load(str(p), p.stat().st_mtime_ns, model, tuple(intrinsics), error)  # type: ignore[arg-type]  # exception classes hash by identity
