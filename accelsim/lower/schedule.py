"""Schedule recipes (`schedules/<target-kind>.yaml`) and the generic code that applies them.

A recipe file holds, per operator class and precision, how the lowering schedules a kernel:

```yaml
conv2d:                      # operator class: conv2d, depthwise_conv2d, dense, elementwise, pool,
                             # softmax
                             # (or a single operator: add, quantize, max_pool, ...)
  default:                   # used for any precision without its own section
    block: {oc: auto, ic: auto}
    tile: {ow: "<=4", oc: "<=8"}
    order: [n, oh, ow.o, oc.o, kh, kw, ic, ow.i, oc.i]
    tensorize: [sdot, smull_sadalp]
    vectorize: oc.v
    unroll: [ow.i, oc.i]
    epilogue: {vectorize: true}
  w16a16: {...}              # keys here override the default section's keys
```

Keys (checked by the schema, `accelsim.core.schema.recipes`: every other key is an error naming
the file and key path):

- `block`: per channel axis, the innermost block: the intrinsic's lanes / depth, or the vector
  lanes. `auto` takes it from the chosen intrinsic, else `vector_bits / accumulator bits` along
  the vector axis (1 along `ic`, 2 for 4-bit weights), reduced to the largest power of two that
  divides the axis. `"<=N"`: the largest divisor of the axis not above N. An int is taken as
  given. Output and input channels (`oc`, `ic` of conv2d / dense) are padded up to a multiple of
  their block in the packed weights (the kernel computes and discards the padding); every other
  axis must be divisible by its block.
- `tile`: per axis, a tile size in elements: the axis `a` becomes loops `a.o` and `a.i`. An int
  must divide the axis (after the block padding above) and be a multiple of its block, else the
  recipe is an error (`...: conv2d.w8a8.tile.oc: 12 does not divide 32 output channels of layer
  'x'`); recipes that must fit layers of every shape use `"<=N"` (the largest such tile not above
  N). Non-dividing tiles are errors, not padding, so a trip count in a Kernel record is what runs.
  A list of such mappings: the first whose int sizes fit the layer (`[{ow: 4, oc: "<=16"},
  {ow: "<=8", oc: "<=8"}]`: 4 x 16 where 4 divides the width, else up to 8 x 8: 7 x 8 on 7- and
  14-wide maps, where `"<=4"` would leave 1 or 2 pixels per tile).
- `intrinsic_tile: {<intrinsic>: tile}`: the tile used instead of `tile` where that tensor
  intrinsic is chosen (the register budget of a tile depends on the instruction: `sdot_lane`
  holds 16 activations per pixel and 4 weight vectors per 4 output channels).
- `order`: the loop order, outermost first, by loop name (`n`, `oh`, `ow.o`, ...). The loops a
  tensor intrinsic covers (`oc.v`, `ic.v`) or the vectorized loop are always made innermost and
  may be left out.
- `weights_order` (conv2d / dense): the order taken instead of `order` where the layer's
  weights outweigh its input (bytes, `ComputeSpec.operand_bytes`) and, on more than one
  hardware thread, its leading loops split over the threads at least as evenly as `order`'s:
  the output-channel blocks outermost, so that each block of weights is fetched once and the
  smaller input again per block (with the rows outermost a layer whose weights do not stay
  cached fetches them again per row).
- `vectorize`: the loop to vectorize (`oc.v`, `c.v`, `x.v`) when no intrinsic applies.
- `unroll`: loops to unroll.
- `parallel: none | contexts`: `contexts` splits the layer over the target's hardware threads
  (`timing.hardware_threads`, HVX contexts): the leading loops of `order` above the reduction
  (before any unrolled or vector loop), as few as balance the threads best, are fused into a
  parallel loop, each thread a contiguous share (14 rows x 2 column tiles on 4 threads: 7
  each); a stage outside the main nest (padding, activation sums) splits its outermost loop
  with at least one iteration per thread.
- `tensorize`: an intrinsic name or a list in order of preference (see `accelsim.lower.intrin`);
  the first one the target's features and the layer's operand types allow is used; if none
  applies the kernel is vectorized instead.
- `epilogue: {vectorize: bool, requant: [names]}`: vectorize the fused bias + requantize +
  clamp over the channel tile; `requant` names requantization forms in order of preference
  (`accelsim.lower.requant.FORMS`, e.g. `sqrdmulh` on NEON: 32-bit lanes instead of the generic
  int64 arithmetic), used where the target's features allow and the channels are whole vectors.
- `pair_taps: bool` (depthwise): two taps' int8 products summed in int16 before widening
  (exact for weights above -128; the window's columns then count in pairs, `kw`). `pad: {vectorize: bool, materialize: bool}`: vectorize the padding stage over
  channels; `materialize` (depthwise) copies the input into a padded buffer first instead of
  testing the image border in the inner loop (conv2d always materializes when it pads: the
  tensor intrinsics load whole input vectors).
- `divide: divide | reciprocal` (quantize): x / scale as a division, or by the scale's
  correctly rounded reciprocal and two fused multiply-adds (the same float32,
  `accelsim.lower.requant.div_known`), for a core whose division is slow.
- The `epilogue.requant` form also serves the integer add / sub kernels (`add:` and `sub:`
  sections) where their block is the form's lanes.

The code here is generic: it knows loop names and recipe keys, never a target.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from accelsim.core.qparams import store_dtype
from accelsim.core.schema import recipes as _schema
from accelsim.core.schema.base import validate
from accelsim.core.schema.recipes import OP_SECTIONS, RecipeError, schedules_dir
from accelsim.lower import intrin as _intrin
from accelsim.lower import requant as _rq

__all__ = ["OP_SECTIONS", "RecipeError", "schedules_dir"]  # re-exported: the schema's


@dataclass(frozen=True)
class Recipe:
    """The resolved recipe of one operator class at one precision."""

    path: str
    op_class: str
    precision: str
    values: Mapping[str, Any]
    sources: Mapping[str, str]  # key -> "conv2d.w8a8" or "conv2d.default"

    def where(self, key: str, *sub: str) -> str:
        """`file: section.key[.sub]` for error messages."""
        return f"{self.path}: {self.sources.get(key, self.op_class)}." + ".".join((key,) + sub)

    @property
    def text(self) -> str:
        """Canonical text of the recipe (part of the kernel cache key)."""
        return json.dumps(
            {"op_class": self.op_class, "values": self.values}, sort_keys=True, default=str
        )

    def get(self, key: str, default=None):
        return self.values.get(key, default)


@dataclass(frozen=True)
class RecipeFile:
    path: str
    data: _schema.RecipeFile  # validated (`accelsim.core.schema.recipes.CpuRecipes`)

    def recipe(self, op_class: str, precision: str, op: str | None = None) -> Recipe:
        """The recipe of `op_class` at `precision`: its `default` section, overridden key by key
        by its `<precision>` section, then by the operator's own sections (`add:` ...)."""
        if self.data.sections(op_class) is None:
            raise RecipeError(
                f"{self.path}: {op_class}: missing (no recipe for operator class '{op_class}')"
            )
        names = [op_class] + ([op] if op in OP_SECTIONS and self.data.sections(op) else [])
        values, sources = self.data.resolve(names, precision)
        return Recipe(self.path, op_class, precision, values, sources)


def parse_recipes(data: Any, path: str) -> RecipeFile:
    """`data` (a parsed recipe file) checked against the CPU/DSP recipe schema."""
    ctx = {"intrinsics": _intrin.NAMES + _rq.FORM_NAMES}
    return RecipeFile(path, validate(_schema.CpuRecipes, data, path, RecipeError, ctx))


def load_recipes(path: str | Path) -> RecipeFile:
    p = Path(path)
    return RecipeFile(
        str(p), _schema.load_recipe_file(p, _schema.CpuRecipes, _intrin.NAMES + _rq.FORM_NAMES)
    )


def recipes_for(target, schedules: str | Path | None = None) -> RecipeFile:
    """The recipe file for `target`: `schedules` (a file, or a directory holding
    `<kind>.yaml`), else `schedules/<target.kind>.yaml`."""
    if schedules is not None:
        p = Path(schedules)
        return load_recipes(p / f"{target.kind}.yaml" if p.is_dir() else p)
    return load_recipes(schedules_dir() / f"{target.kind}.yaml")


# ------------------------------------------------------------------------------------------
# What a lowered compute tells the scheduler
# ------------------------------------------------------------------------------------------


@dataclass
class Axis:
    """One loop of the main block as the compute creates it."""

    name: str
    extent: int  # loop extent
    reduce: bool = False
    vsplit: int | None = None  # split off an inner `<name>.v` loop of this many elements
    unit: str = ""  # for messages: "output channels"
    elem: int = 1  # elements of the axis per iteration of this loop
    # loop iterations per unit a recipe counts its tiles in (accelsim.lower.partials: 4
    # partial sums per output channel, tiled in output channels)
    scale: int = 1
    # a tile must also be a multiple of this many units (accelsim.lower.partials: one ADDP
    # tree adds the partial sums of 4 channels, 2 for int64)
    tile_multiple: int = 1


@dataclass
class ComputeSpec:
    """The main block of a lowered operator and how its loops are named."""

    main: str  # block name of the main computation
    axes: list[Axis]  # in the block's loop order
    epilogue: str | None = None  # consumer block fused under the tile loop
    # the epilogue's expressions are vector instructions of exactly this many lanes (a
    # `requant.RequantForm`): vectorized in chunks of them, never left scalar
    epilogue_lanes: int | None = None
    # TensorIntrins that compute the (otherwise vectorized) epilogue over exactly that many
    # lanes, by lanes (`requant.RequantForm.finish_intrinsic`)
    epilogue_intrinsics: Mapping[int, str] = field(default_factory=dict)
    stages: list[tuple[str, int]] = field(default_factory=list)  # root blocks: (name, lanes)
    intrinsic: _intrin.Intrinsic | None = None
    intrinsic_loops: tuple[str, ...] = ()
    default_order: tuple[str, ...] = ()
    layer: str = ""
    fuse: bool = False  # fuse all loops of the main block into the first axis
    # producer blocks of per-row values (softmax's max, sum, reciprocal), in dependence order:
    # computed under the loop just outside the outermost loop of axis `prologue_axis`
    prologue: tuple[str, ...] = ()
    prologue_axis: str = ""
    notes: tuple[str, ...] = ()  # why the lowering chose what it did (e.g. no intrinsic)
    # blocks between the main one and the epilogue, in dependence order, fused with them under
    # the tile loop: (block, intrinsic, lanes), the innermost loop split into calls of the
    # TensorIntrin `intrinsic` = (name, lanes) (the sum of `accelsim.lower.partials`' partial
    # sums, 4 channels per 3 ADDPs) or vectorized in exactly `lanes` lanes (a requantization
    # form's int32 stage, whose epilogue then works in 8-bit lanes)
    between: tuple[tuple[str, tuple[str, int] | None, int | None], ...] = ()
    # (weights, input) in bytes, for the recipe's `weights_order` (0, 0: not a contraction)
    operand_bytes: tuple[int, int] = (0, 0)
    # root blocks computed by a TensorIntrin: (block, intrinsic, spatial loops). Its last
    # spatial loop and its last reduction loop are the call (accelsim.lower.uweights'
    # activation sums): the spatial one moves inside the other reductions, the init is split
    # off before them
    root_intrinsics: tuple[tuple[str, str, int], ...] = ()


@dataclass(frozen=True)
class Applied:
    """What the scheduler did (recorded in the Kernel)."""

    recipe: str  # "path: section"
    order: tuple[str, ...]
    tiles: Mapping[str, int]
    blocks: Mapping[str, int]
    vectorized: tuple[str, ...]
    unrolled: tuple[str, ...]
    intrinsic: str | None
    notes: tuple[str, ...] = ()
    parallel: str | None = None  # the loop split over the hardware threads


def resolve_size(
    value, extent: int, multiple: int, where: str, unit: str, layer: str, must_divide: bool = True
) -> int:
    """A block or tile size from a recipe value against an axis of `extent` elements."""
    if value == "auto":
        return multiple
    cap = _schema.cap_value(value)
    if cap is not None:
        best = multiple
        t = multiple
        while t <= min(cap, extent):
            if extent % t == 0:
                best = t
            t += multiple
        return best
    t = int(value)
    if t % multiple:
        raise RecipeError(
            f"{where}: {t} is not a multiple of the block of {multiple} {unit} of layer '{layer}'"
        )
    if must_divide and extent % t:
        raise RecipeError(f"{where}: {t} does not divide {extent} {unit} of layer '{layer}'")
    return t


def pick_tile(value, sizes: Mapping[str, tuple[int, int]]) -> tuple[dict, int | None]:
    """The recipe's `tile` for a layer whose axes have `sizes` (axis -> (elements, block)) and
    its index in the list (None for a single mapping): a mapping as it is, or of a list of
    mappings the first whose int sizes all fit (divide their axis, multiples of its block),
    else the last (whose misfit is then reported as usual). Axes the layer lacks are left to
    the caller to report."""
    if not isinstance(value, list):
        return dict(value or {}), None
    options = value or [{}]

    def fits(tile) -> bool:
        for ax, v in tile.items():
            if isinstance(v, int) and ax in sizes:
                extent, multiple = sizes[ax]
                if extent % v or v % multiple:
                    return False
        return True

    i = next((i for i, t in enumerate(options) if fits(t)), len(options) - 1)
    return dict(options[i]), i


def tile_of(recipe: Recipe, features, precision) -> Any:
    """The `tile` value a conv2d / dense layer at `precision` takes on a target with
    `features`, for a model that does not lower the layer (the analytic memory model): the
    recipe's `intrinsic_tile` of the first intrinsic in `tensorize` that the features and the
    operand types allow, else `tile`. What only lowering knows (an intrinsic passed over for
    its padding, its `min_calls` or a weight range) is not modelled."""
    by = recipe.get("intrinsic_tile") or {}
    names = recipe.get("tensorize") or []
    if by and names and precision is not None:
        act = store_dtype(precision.act_dtype)  # 4-bit activations: one per byte
        bits = (
            32
            if precision.is_float
            else _intrin.kernel_weight_bits(precision.wbits, int(precision.act_bits or 8))
        )
        # as lowering: a matrix intrinsic first, else the earlier listed of the dot-product
        # and the partial-sum ones (accelsim.lower.ops)
        mmla = _intrin.select(names, features, act, bits, kind="mmla")
        found = [_intrin.select(names, features, act, bits, kind=k) for k in ("dot", "partials")]
        it = mmla or _intrin.earliest(names, *found)
        if it is not None:
            return by.get(it.name, recipe.get("tile"))
    return recipe.get("tile")


def pow2_divisor(extent: int, cap: int) -> int:
    """The largest power of two dividing `extent` and not above `cap`."""
    b = 1
    while b * 2 <= cap and extent % (b * 2) == 0:
        b *= 2
    return b


def _place_prologue(sch, spec: ComputeSpec, final: list[str], loops: Mapping[str, Any]) -> None:
    """compute_at the prologue blocks under the loop enclosing the first loop of
    `spec.prologue_axis` (at the root when that loop is outermost); the last producer first, so
    each lands before its consumers."""
    if not spec.prologue:
        return
    first = next(i for i, n in enumerate(final) if n.split(".")[0] == spec.prologue_axis)
    if first == 0:
        return
    for name in reversed(spec.prologue):
        sch.compute_at(sch.get_sblock(name), loops[final[first - 1]])


def _vectorize_exactly(sch, inner, lanes: int, recipe: Recipe, layer: str) -> None:
    """Vectorize loop `inner` (an epilogue's channels) in vectors of exactly `lanes` (a
    requantization form's instructions), the vectors of a register tile unrolled."""
    ext = int(sch.get(inner).extent) if inner is not None else 0
    if ext % lanes:
        raise RecipeError(
            f"{recipe.where('epilogue', 'requant')}: the epilogue of layer '{layer}' "
            f"runs over {ext} channels, not a multiple of the form's {lanes} lanes"
        )
    outer, vi = sch.split(inner, [None, lanes])
    sch.vectorize(vi)
    if 1 < ext // lanes <= 8:  # a register tile's worth: straight-line code
        sch.unroll(outer)


def _vectorize_epilogue(recipe: Recipe, spec: ComputeSpec) -> bool:
    """Whether the recipe vectorizes this layer's (not exactly-laned) epilogue: `epilogue.
    vectorize`, where "form" means only after a requantization form's stage (`between`)."""
    vec = (recipe.get("epilogue") or {}).get("vectorize", True)
    return bool(spec.between) if vec == "form" else bool(vec)


def _parallel_stage(sch, block: str, contexts: int, eligible: int | None = None) -> None:
    """Split a stage outside the main loop nest (padding, activation sums) over the hardware
    threads: its outermost serial loop (of the first `eligible`) with at least one iteration
    per thread."""
    for lp in sch.get_loops(sch.get_sblock(block))[:eligible]:
        loop = sch.get(lp)
        try:
            serial = int(loop.kind) == 0
        except (TypeError, ValueError):
            serial = "serial" in str(loop.kind).lower()
        if not serial:  # vectorized / unrolled / parallel: nothing above it qualified
            return
        if int(loop.extent) >= contexts:
            sch.parallel(lp)
            return


def _balance(extent: int, contexts: int) -> float:
    """The share of the threads' time doing work when `extent` iterations go out in contiguous
    chunks of ceil(extent / contexts) (TVM's parallel loop)."""
    return extent / (contexts * -(-extent // contexts))


def best_prefix(lead: list[str], extents, contexts: int) -> tuple[int, float] | None:
    """(count, balance): the shortest prefix of `lead` whose fused extent balances `contexts`
    threads best (at least one iteration per thread), None where no prefix has enough."""
    best, size = None, 1
    for i, n in enumerate(lead):
        size *= extents[n]
        if size >= contexts and (best is None or _balance(size, contexts) > best[1] + 1e-9):
            best = (i + 1, _balance(size, contexts))
    return best


def lead_loops(order, reduce, stop) -> list[str]:
    """The loops of `order` the threads may split: those above the first reduction loop and
    the first loop in `stop` (claimed by an intrinsic or the vectorizer, or unrolled)."""
    lead = []
    for n in order:
        if n in reduce or n in stop:
            break
        lead.append(n)
    return lead


def weights_first(
    recipe: Recipe, operand_bytes, order, extents, reduce, stop, contexts: int
) -> bool:
    """Whether the recipe's `weights_order` replaces `order` (see the module docstring), for a
    layer of (weights, input) `operand_bytes` whose loops have `extents`; `reduce`: its
    reduction loops, `stop`: the loops no thread split may reach (claimed, unrolled);
    `contexts`: the threads a parallel recipe splits it over (1: not split). The scheduler and
    the analytic memory model (`accelsim.sim.loopnest.recipe_loops`) both ask here."""
    alt = recipe.get("weights_order")
    weights, inputs = operand_bytes
    if not alt or weights <= inputs:
        return False
    if contexts <= 1:
        return True
    # its first loop of more than one iteration alone (the output-channel blocks): fusing it
    # with the rows below balances any count, but costs index arithmetic per tile and splits
    # the weights over the threads again (MobileNet v2 features.12.conv.0.0, 9 blocks of 64
    # on 4 hvx-v68 contexts: 22.3 k cycles against 20.9 k with the rows split)
    lead = lead_loops(alt, reduce, stop)
    first = next((i for i, n in enumerate(lead) if extents[n] > 1), len(lead) - 1)
    mine = best_prefix(lead[: first + 1], extents, contexts)
    theirs = best_prefix(lead_loops(order, reduce, stop), extents, contexts)
    return mine is not None and (theirs is None or mine[1] >= theirs[1] - 1e-9)


def _parallelize(sch, loops, extents, lead: list[str], contexts: int) -> str | None:
    """`parallel: contexts`: the leading loops `lead` (outermost first), as few as balance the
    threads best, fused into TVM's parallel loop: each thread runs a contiguous share (14 rows
    on 4 threads run 4, 4, 4, 2; 14 rows x 2 column tiles, 7 each). The code reads the task
    count at run time. The fused loop keeps its parts' names and extents for the Kernel record
    (`accelsim.fused`). Returns the loop's name ("oh", "oh*ow.o"), None where no prefix has at
    least one iteration per thread."""
    best = best_prefix(lead, extents, contexts)
    if best is None:
        return None
    from accelsim.core.tvm_env import import_tvm

    # from the first loop of more than one iteration (the fused loops must be nested directly)
    first = next((i for i, n in enumerate(lead) if extents[n] > 1), best[0] - 1)
    parts = lead[first : best[0]]
    loop = loops[parts[0]]
    if len(parts) > 1:
        try:
            loop = sch.fuse(*[loops[n] for n in parts])
        except import_tvm().s_tir.ScheduleError:  # a stage between them: one loop alone
            alone = [n for n in parts if extents[n] >= contexts]
            if not alone:
                return None
            parts = alone[:1]
            loop = loops[parts[0]]
        else:
            sch.annotate(loop, "accelsim.loop", "*".join(parts))
            sch.annotate(loop, "accelsim.fused", ",".join(f"{n}:{extents[n]}" for n in parts))
    sch.parallel(loop)
    return "*".join(parts)


def _elem_bytes(sch, block: str) -> int:
    """Bytes of an element of the buffer `block` stores to (its dtype's bits / 8)."""
    buf = getattr(sch.get(sch.get_sblock(block)).body, "buffer", None)
    m = re.search(r"\d+", str(buf.dtype)) if buf is not None else None
    return max(1, int(m.group()) // 8) if m else 1


def _tensorize_root(sch, name: str, key: str, spatial: int) -> None:
    """Tensorize root block `name` with TensorIntrin `key` over its last spatial (of
    `spatial`) and last reduction loops (`ComputeSpec.root_intrinsics`)."""
    b = sch.get_sblock(name)
    loops = sch.get_loops(b)
    lane, reductions = loops[spatial - 1], loops[spatial:]
    if len(reductions) > 1:
        sch.reorder(*reductions[:-1], lane)
        sch.decompose_reduction(b, reductions[0])
    else:
        sch.decompose_reduction(b, lane)
    sch.tensorize(lane, key)


def apply(
    sch, spec: ComputeSpec, recipe: Recipe, contexts: int = 1, vector_bytes: int = 0
) -> Applied:
    """Apply `recipe` to the main block of `spec` (and its epilogue and stages)."""
    from accelsim.core.tvm_env import import_tvm

    tvm = import_tvm()
    ScheduleError = tvm.s_tir.ScheduleError
    notes: list[str] = list(spec.notes)
    layer = spec.layer
    main = sch.get_sblock(spec.main)
    raw = sch.get_loops(main)
    if spec.fuse and len(raw) > 1:
        raw = [sch.fuse(*raw)]
    if len(raw) != len(spec.axes):
        raise AssertionError(f"{spec.main}: {len(raw)} loops, {len(spec.axes)} axes")
    loops: dict[str, Any] = {}
    names: list[str] = []
    extents: dict[str, int] = {}
    reduce: set[str] = set()
    by_intrinsic = recipe.get("intrinsic_tile") or {}
    tile_at: tuple[str, ...] = ("tile",)  # where the tile comes from, for messages
    if spec.intrinsic is not None and spec.intrinsic.name in by_intrinsic:
        tile_at = ("intrinsic_tile", spec.intrinsic.name)
    sizes = {
        a.name: (a.extent // a.scale, math.lcm(a.vsplit // a.scale, a.tile_multiple))
        if a.vsplit
        else (a.extent * a.elem, a.elem)
        for a in spec.axes
    }
    tiles, alt = pick_tile(
        by_intrinsic[tile_at[1]] if len(tile_at) > 1 else recipe.get("tile"), sizes
    )

    def tile_where(axis: str) -> str:  # `conv2d.default.tile[1].oc` for a list's item
        where = recipe.where(*tile_at, axis)
        if alt is None:
            return where
        key = ".".join(tile_at)
        return where.replace(f".{key}.{axis}", f".{key}[{alt}].{axis}")

    used_tiles: dict[str, int] = {}
    blocks: dict[str, int] = {}
    for ax, lv in zip(spec.axes, raw):
        group: list[tuple[str, Any, int]] = []
        if ax.vsplit is not None:
            outer, inner = sch.split(lv, [None, ax.vsplit])
            blocks[ax.name] = ax.vsplit
            base, blocked, unit_mult = outer, ax.extent // ax.vsplit, ax.vsplit
            vpart = (f"{ax.name}.v", inner, ax.vsplit)
        else:
            base, blocked, unit_mult, vpart = lv, ax.extent, ax.elem, None
            if ax.elem > 1:
                blocks[ax.name] = ax.elem
        if ax.name in tiles:
            where = tile_where(ax.name)
            mult = unit_mult // ax.scale
            t = resolve_size(
                tiles[ax.name],
                blocked * mult,
                math.lcm(mult, ax.tile_multiple),
                where,
                ax.unit,
                layer,
            )
            used_tiles[ax.name] = t
            o, i = sch.split(base, [None, t // mult])
            group += [  # in loop iterations: `mult` units of the tile per iteration
                (f"{ax.name}.o", o, blocked * mult // t),
                (f"{ax.name}.i", i, t // mult),
            ]
        else:
            group.append((ax.name, base, blocked))
        if vpart:
            group.append(vpart)
        for n, lv2, e in group:
            loops[n] = lv2
            names.append(n)
            extents[n] = e
            if ax.reduce:
                reduce.add(n)
    unknown = [t for t in tiles if t not in {a.name for a in spec.axes}]
    if unknown:
        raise RecipeError(
            f"{tile_where(unknown[0])}: layer '{layer}' has no axis "
            f"'{unknown[0]}' (its axes: {', '.join(a.name for a in spec.axes)})"
        )

    # innermost loops claimed by the intrinsic or the vectorizer
    vec = recipe.get("vectorize")
    if spec.intrinsic is not None:
        claimed = list(spec.intrinsic_loops)
    elif vec:
        if vec not in loops:
            raise RecipeError(
                f"{recipe.where('vectorize')}: no loop '{vec}' in layer '{layer}' "
                f"(loops: {', '.join(names)})"
            )
        claimed = [vec]
    else:
        claimed = []
    order = list(recipe.get("order") or spec.default_order or names)
    for key, listed in (("order", order), ("weights_order", recipe.get("weights_order") or [])):
        for n in listed:
            if n not in loops:
                raise RecipeError(
                    f"{recipe.where(key)}: no loop '{n}' in layer '{layer}' "
                    f"(loops: {', '.join(names)})"
                )
        if len(set(listed)) != len(listed):
            raise RecipeError(f"{recipe.where(key)}: a loop is listed twice")
        missing = [n for n in names if n not in listed and n not in claimed]
        if listed and missing:
            raise RecipeError(
                f"{recipe.where(key)}: loop '{missing[0]}' of layer '{layer}' is "
                f"not placed (loops: {', '.join(names)})"
            )
    stop = {*claimed, *(recipe.get("unroll") or []), vec}
    split = recipe.get("parallel") == "contexts" and contexts > 1
    if weights_first(
        recipe, spec.operand_bytes, order, extents, reduce, stop, contexts if split else 1
    ):
        order = list(recipe.get("weights_order"))
        notes.append("weights_order: the weights outweigh the input")
    final = [n for n in order if n not in claimed] + claimed
    sch.reorder(*[loops[n] for n in final])

    # fuse the epilogue (bias, requantize, clamp, store) under the innermost tile loop that
    # encloses the whole reduction, so the accumulators of one tile stay local
    first_red = next((i for i, n in enumerate(final) if n in reduce), None)
    epilogue_vectorized = False
    for name, _, _ in spec.between:  # before the epilogue, their consumer
        if first_red is not None and first_red > 0:
            sch.reverse_compute_at(sch.get_sblock(name), loops[final[first_red - 1]])
    if spec.epilogue is not None:
        ep = sch.get_sblock(spec.epilogue)
        if first_red is not None and first_red > 0:
            sch.reverse_compute_at(ep, loops[final[first_red - 1]])
        ep_loops = sch.get_loops(ep)
        if spec.epilogue_lanes:
            _vectorize_exactly(
                sch, ep_loops[-1] if ep_loops else None, spec.epilogue_lanes, recipe, layer
            )
            epilogue_vectorized = True
        elif _vectorize_epilogue(recipe, spec) and ep_loops:
            inner = ep_loops[-1]
            ext = int(sch.get(inner).extent)
            cap = int((recipe.get("epilogue") or {}).get("lanes", 16))
            if ext > max(64, cap):  # a whole untiled channel axis: in blocks of `cap` lanes
                _, inner = sch.split(inner, [None, pow2_divisor(ext, cap)])
                ext = pow2_divisor(ext, cap)
            if ext in spec.epilogue_intrinsics:
                sch.tensorize(inner, spec.epilogue_intrinsics[ext])
                epilogue_vectorized = True
            elif ext > 1:
                try:
                    sch.vectorize(inner)
                    epilogue_vectorized = True
                except ScheduleError as exc:
                    notes.append(f"epilogue not vectorized: {str(exc).splitlines()[0][:120]}")
    for name, tensor_intrin, lanes in spec.between:  # after their consumer is placed
        inner = sch.get_loops(sch.get_sblock(name))[-1]
        if tensor_intrin is not None:  # tensorize replaces the block
            key, n = tensor_intrin
            _, inner = sch.split(inner, [None, n])
            sch.tensorize(inner, key)
        elif lanes:
            _vectorize_exactly(sch, inner, lanes, recipe, layer)
    _place_prologue(sch, spec, final, loops)
    # not a stage in vectors narrower than the machine's: in a parallel task (its buffers
    # reach it through the closure, their alignment unknown to LLVM) those became byte copies
    # (MobileNet v2 features.1.conv.0.0's row padding in 32-byte vectors on HVX: 58 k -> 453 k
    # packets)
    vector_pad = (recipe.get("pad") or {}).get("vectorize", True)
    staged = [
        st
        for st, lanes in spec.stages
        if lanes <= 1 or not vector_pad or lanes * _elem_bytes(sch, st) >= vector_bytes
    ]
    for name, eligible in [(st, None) for st in staged] + [
        (r[0], r[2] - 1)
        for r in spec.root_intrinsics  # not the tensorized loops
    ]:
        if split:
            _parallel_stage(sch, name, contexts, eligible)
    for name, key, spatial in spec.root_intrinsics:
        _tensorize_root(sch, name, key, spatial)
    vectorized: list[str] = []
    if epilogue_vectorized:
        vectorized.append(f"{spec.epilogue}.v")
    unrolled: list[str] = []
    intrinsic = None
    if first_red is not None:
        init = sch.decompose_reduction(main, loops[final[first_red]])
        init_loops = sch.get_loops(init)
        if claimed and init_loops and int(sch.get(init_loops[-1]).extent) > 1:
            try:
                sch.vectorize(init_loops[-1])
            except ScheduleError as exc:
                notes.append(f"init not vectorized: {str(exc).splitlines()[0][:120]}")
            else:
                # the tile's other init loops unrolled: a loop copying the bias into the
                # accumulators (`Built.starts`) is what LLVM turns into memcpy calls
                # (hvx-v68 on one context: 7 per tile of MobileNet v2 features.12.conv.0.0)
                for lp in init_loops[first_red:-1]:
                    if int(sch.get(lp).extent) <= 16:
                        sch.unroll(lp)
    if spec.intrinsic is not None:
        key = _intrin.ensure_registered(spec.intrinsic)
        sch.tensorize(loops[spec.intrinsic_loops[0]], key)
        intrinsic = spec.intrinsic.name
    elif vec and extents[vec] > 1:
        sch.vectorize(loops[vec])
        vectorized.append(vec)
    for n in recipe.get("unroll") or []:
        if n not in loops:
            raise RecipeError(
                f"{recipe.where('unroll')}: no loop '{n}' in layer '{layer}' "
                f"(loops: {', '.join(names)})"
            )
        if n in claimed:
            continue  # covered by the intrinsic / the vector
        sch.unroll(loops[n])
        unrolled.append(n)

    parallel = None
    if split:  # (before the names: a loop with annotations cannot be fused)
        lead = lead_loops(final, reduce, {*claimed, *unrolled, vec})
        parallel = _parallelize(sch, loops, extents, lead, contexts)
    fused = parallel.split("*") if parallel and "*" in parallel else []

    # name the loops for the Kernel record (after tensorize: its pattern match compares
    # loop annotations)
    for n in final:
        if (spec.intrinsic is not None and n in claimed) or n in fused:
            continue
        sch.annotate(loops[n], "accelsim.loop", n)

    # root stages (padding, weight unpacking): vectorize over their innermost axis
    if (recipe.get("pad") or {}).get("vectorize", True):
        for stage, lanes in spec.stages:
            if lanes <= 1:
                continue
            b = sch.get_sblock(stage)
            inner = sch.get_loops(b)[-1]
            _, vi = sch.split(inner, [None, lanes])
            sch.vectorize(vi)
            vectorized.append(f"{stage}.v")
    return Applied(
        recipe=f"{recipe.path}: {', '.join(sorted(set(recipe.sources.values())))}",
        order=tuple(final),
        tiles=used_tiles,
        blocks=blocks,
        vectorized=tuple(vectorized),
        unrolled=tuple(unrolled),
        intrinsic=intrinsic,
        notes=tuple(notes),
        parallel=parallel,
    )
