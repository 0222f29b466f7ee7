"""Accelerator schedule recipes (`schedules/accelerator.yaml`, schema in
`accelsim.core.schema.recipes`), the tiler, and the TVM schedule that
applies them.

`choose_tiles` picks, among the recipe's dataflows, the tile sizes whose scratchpad buffers fit (x2
slots with double buffering) with the least DRAM traffic (burst-rounded), ties broken by the
fewest tiles; reduction tile axes (input channels) take the largest size that fits.

`schedule_layer` builds the TE compute's PrimFunc and applies the choice with `tvm.s_tir.Schedule`:
split and reorder the main block's loops, `cache_read` each input into its scratchpad scope
(`local.accel_act`, `local.accel_wgt`) under its stage loop (the convolution's padding stage is
inlined into the activation load, so padding becomes the DMA's pad fill), accumulators in
`local.accel_acc`, the requantize epilogue and its store under the last spatial tile loop
(`local.accel_out`), the reduction's init (the bias load) before the reduction tile loops, and the
innermost `lanes x depth` block tensorized with the layer's VMAC intrinsic (`accelsim.accel.intrin`:
a `T.call_extern` on the tile's buffer pointers and sizes). TVM's
`PlanAndUpdateBufferAllocationLocation` + `CompactBufferAllocation` then shrink every scratchpad
buffer to its tile, so the indices the code generator reads are scratchpad offsets.

The code here is generic: it knows loop names and recipe keys, not layer shapes.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from accelsim.accel import intrin as _vmac
from accelsim.accel.compute import LayerDef, TileAxis
from accelsim.accel.intrin import SCOPES
from accelsim.core.schema import recipes as _schema
from accelsim.core.schema.recipes import RecipeError
from accelsim.core.tvm_env import import_tvm
from accelsim.lower.intrin import ensure_registered


class AccelRecipeError(RecipeError):
    """A malformed accelerator recipe, or one that no tiling of a layer satisfies."""


def schedules_path() -> Path:
    """The accelerator's recipe file: `accelerator.yaml` in the schedules directory (or
    `$ACCELSIM_SCHEDULES` itself when that names a file)."""
    base = _schema.schedules_dir()
    return base / "accelerator.yaml" if base.is_dir() else base


@dataclass(frozen=True)
class Dataflow:
    name: str
    order: tuple[str, ...]
    inner: tuple[str, ...]
    stage: Mapping[str, str]


@dataclass(frozen=True)
class AccelRecipe:
    path: str
    op_class: str
    precision: str
    tensorize: str | None
    tile: Mapping[str, Any]
    dataflows: tuple[Dataflow, ...]
    double_buffer: bool
    sources: Mapping[str, str]  # key -> the section it came from ("conv2d.default")

    def where(self, key: str, *sub: str) -> str:
        """`file: section.key[.sub]` for error messages."""
        return f"{self.path}: {self.sources.get(key, self.op_class)}." + ".".join((key,) + sub)


@dataclass(frozen=True)
class RecipeFile:
    path: str
    data: _schema.RecipeFile  # validated (`accelsim.core.schema.recipes.AccelRecipes`)

    def recipe(self, op_class: str, precision: str) -> AccelRecipe:
        """The recipe of `op_class` at `precision`: its `default` section overridden key by key
        by its `<precision>` section."""
        if self.data.sections(op_class) is None:
            raise AccelRecipeError(
                f"{self.path}: {op_class}: missing (no recipe for operator class '{op_class}')"
            )
        vals, sources = self.data.resolve([op_class], precision)
        flows = tuple(
            Dataflow(
                d.get("name") or f"dataflow{i}", tuple(d["order"]), tuple(d["inner"]), d["stage"]
            )
            for i, d in enumerate(vals.get("dataflows") or [])
        )
        if not flows:
            raise AccelRecipeError(
                f"{self.path}: {op_class}.dataflows: at least one dataflow is required"
            )
        return AccelRecipe(
            self.path,
            op_class,
            precision,
            vals.get("tensorize"),
            dict(vals.get("tile") or {}),
            flows,
            bool(vals.get("double_buffer", True)),
            sources,
        )


def load_recipes(path: str | Path | None = None) -> RecipeFile:
    p = Path(path) if path is not None else schedules_path()
    if p.is_dir():
        p = p / "accelerator.yaml"
    data = _schema.load_recipe_file(p, _schema.AccelRecipes, _vmac.NAMES, AccelRecipeError)
    return RecipeFile(str(p), data)


# ------------------------------------------------------------------------------------------------
# the tiler
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TileChoice:
    dataflow: Dataflow
    tiles: Mapping[str, int]  # elements per tile, per tile axis
    traffic_bytes: float  # estimated DRAM bytes (burst-rounded)
    tiles_count: int  # tile-loop iterations (instruction-count proxy)
    footprint: Mapping[str, int]  # bytes per scratchpad (all slots, aligned)
    slots: int
    epilogue_loop: str
    reduce_loop: str | None  # loop before which the reduction's init is placed


def _cap(recipe: AccelRecipe, axis: TileAxis, config) -> int:
    v = recipe.tile.get(axis.name)
    if v is None:
        return axis.extent
    if isinstance(v, int):
        return v
    n = _schema.cap_value(v)
    if n is not None:
        return n
    s = v[2:].strip()
    if hasattr(config, s):
        val = getattr(config, s)
        if isinstance(val, (int, float)) and not isinstance(val, bool):
            return int(val)
    raise AccelRecipeError(
        f"{recipe.where('tile', axis.name)}: '{v}' names no numeric accelerator parameter"
    )


@functools.cache
def _dividing_multiples(extent: int, unit: int) -> tuple[int, ...]:
    return tuple(t for t in range(unit, extent + 1, unit) if extent % t == 0)


def _candidates(axis: TileAxis, cap: int) -> list[int]:
    unit = max(axis.block, axis.vector or 1)
    # memoised: sweeps ask for the same extents at every design point
    out = [t for t in _dividing_multiples(axis.extent, unit) if t <= cap]
    return out or [unit]


def align_bytes(nbytes: float, sp, slots: int) -> int:
    """A buffer slot rounded up to whole rows of its slot's banks."""
    row = sp.slot_banks(slots) * sp.bank_width_bytes
    return int(math.ceil(nbytes / row) * row) if nbytes > 0 else 0


def _dram_bytes(box: tuple[int, ...], shape: tuple[int, ...], bits: int, burst: int) -> float:
    """Bytes a DMA of `box` out of a row-major tensor of `shape` moves, in whole bursts per
    contiguous run."""
    box = tuple(min(b, s) for b, s in zip(box, shape))
    run = 1
    for b, s in zip(reversed(box), reversed(shape)):
        run *= b
        if b != s:
            break
    total = math.prod(box)
    runs = total // run if run else 0
    run_bytes = run * bits / 8
    return runs * math.ceil(run_bytes / burst) * burst


def _loop_trips(ld: LayerDef, tiles: Mapping[str, int], name: str) -> int:
    if name.endswith(".o"):
        ax = name[:-2]
        for a in ld.tile_axes:
            if a.name == ax:
                return a.extent // tiles[ax]
    return int(ld.extents.get(name, 1))


def choose_tiles(ld: LayerDef, recipe: AccelRecipe, config) -> TileChoice:
    slots = config.slots if recipe.double_buffer else 1
    sps = config.scratchpads
    best = None
    axes = {a.name: a for a in ld.tile_axes}
    reduce_axes = [a for a in ld.tile_axes if a.reduce]
    space_axes = [a for a in ld.tile_axes if not a.reduce]
    cands = {a.name: _candidates(a, _cap(recipe, a, config)) for a in ld.tile_axes}
    smallest_fail = None
    for flow in recipe.dataflows:
        for t in flow.order:
            if t.endswith(".o") and t[:-2] not in axes:
                raise AccelRecipeError(
                    f"{recipe.where('dataflows', flow.name, 'order')}: layer "
                    f"'{ld.node.name}' has no tile axis '{t[:-2]}'"
                )
        pos = {n: i for i, n in enumerate(flow.order)}
        red_pos = [pos[a.name + ".o"] for a in reduce_axes if a.name + ".o" in pos]
        first_red = min(red_pos) if red_pos else None
        epi_idx = (first_red - 1) if first_red is not None else len(flow.order) - 1
        epi_loop = flow.order[epi_idx]
        for s in ld.staged:
            if s.tensor not in flow.stage or flow.stage[s.tensor] not in pos:
                raise AccelRecipeError(
                    f"{recipe.where('dataflows', flow.name, 'stage')}: no "
                    f"tile loop given for input '{s.tensor}' (loops: "
                    f"{', '.join(flow.order)})"
                )

        def cover(tiles, idx, pos=pos):
            c = {}
            for a in ld.tile_axes:
                p = pos.get(a.name + ".o")
                c[a.name] = tiles[a.name] if p is not None and p <= idx else a.extent
            return c

        def evaluate(tiles, pos=pos, flow=flow, epi_idx=epi_idx):
            used = {k: 0 for k in sps}
            traffic = 0.0
            count = 1
            for n in flow.order:
                count *= _loop_trips(ld, tiles, n)
            for s in ld.staged:
                idx = pos[flow.stage[s.tensor]]
                box = s.box(cover(tiles, idx))
                used[s.space] += (
                    align_bytes(math.prod(box) * s.bits / 8, sps[s.space], slots) * slots
                )
                loads = 1
                for n in flow.order[: idx + 1]:
                    loads *= _loop_trips(ld, tiles, n)
                dt = ld.dram[s.tensor]
                traffic += loads * _dram_bytes(box, dt.shape, s.dram_bits, config.dma_burst_bytes)
            ce = cover(tiles, epi_idx)
            if ld.acc_box is not None:
                used["acc"] += align_bytes(ld.acc_box(ce) * ld.acc_bits / 8, sps["acc"], 1)
            used["out"] += (
                align_bytes(ld.out_box(ce) * ld.out_buf_bits / 8, sps["out"], slots) * slots
            )
            y = ld.dram["y"]
            traffic += y.bytes  # every output element is stored once
            fits = all(used[k] <= sps[k].size_bytes for k in sps)
            return fits, traffic, count, used

        for combo in itertools.product(*(cands[a.name] for a in space_axes)):
            tiles = {a.name: v for a, v in zip(space_axes, combo)}
            # reduction axes: the largest tile that fits (fewest accumulator passes)
            red_choices = [sorted(cands[a.name], reverse=True) for a in reduce_axes]
            chosen = None
            for rc in itertools.product(*red_choices):
                tt = dict(tiles)
                tt.update({a.name: v for a, v in zip(reduce_axes, rc)})
                fits, traffic, count, used = evaluate(tt)
                if fits:
                    chosen = (traffic, count, tt, used)
                    break
                if smallest_fail is None or sum(used.values()) < sum(smallest_fail[1].values()):
                    smallest_fail = (tt, used)
            if chosen is None:
                continue
            traffic, count, tt, used = chosen
            key = (traffic, count, -tt.get("ow", 0))
            if best is None or key < best[0]:
                best = (
                    key,
                    flow,
                    tt,
                    traffic,
                    count,
                    used,
                    epi_loop,
                    flow.order[first_red] if first_red is not None else None,
                )
    if best is None:
        tt, used = smallest_fail
        over = ", ".join(
            f"{k} {used[k] / 1024:.1f} KB > {sps[k].size_kb:g} KB"
            for k in sps
            if used[k] > sps[k].size_bytes
        )
        raise AccelRecipeError(
            f"{recipe.path}: {ld.op_class}: no tiling of layer "
            f"'{ld.node.name}' fits the scratchpads of {config.name} "
            f"(smallest tile {dict(tt)}: {over})"
        )
    _, flow, tt, traffic, count, used, epi_loop, red_loop = best
    return TileChoice(flow, tt, traffic, count, used, slots, epi_loop, red_loop)


# ------------------------------------------------------------------------------------------------
# applying a choice
# ------------------------------------------------------------------------------------------------


# SBlock's constructor arguments, in order
_SBLOCK_FIELDS = (
    "iter_vars",
    "reads",
    "writes",
    "name_hint",
    "body",
    "init",
    "alloc_buffers",
    "match_buffers",
    "annotations",
)


def _replace_block(blk, **changes):
    """A copy of SBlock `blk` with the fields in `changes` replaced."""
    from tvm.s_tir import SBlock

    return SBlock(*(changes.get(f, getattr(blk, f)) for f in _SBLOCK_FIELDS))


def _rewrite_block(stmt, name: str, fn):
    """Rebuild `stmt` with the SBlock called `name` replaced by `fn(block)`."""
    tvm = import_tvm()
    from tvm.s_tir import SBlock, SBlockRealize
    from tvm.tirx import For, SeqStmt

    if isinstance(stmt, For):
        return For(
            stmt.loop_var,
            stmt.min,
            stmt.extent,
            stmt.kind,
            _rewrite_block(stmt.body, name, fn),
            stmt.thread_binding,
            stmt.annotations,
        )
    if isinstance(stmt, SeqStmt):
        return SeqStmt([_rewrite_block(s, name, fn) for s in stmt.seq])
    if isinstance(stmt, SBlockRealize):
        return SBlockRealize(stmt.iter_values, stmt.predicate, _rewrite_block(stmt.block, name, fn))
    if isinstance(stmt, SBlock):
        if stmt.name_hint == name:
            return fn(stmt)
        return _replace_block(stmt, body=_rewrite_block(stmt.body, name, fn))
    del tvm
    return stmt


def _init_from_bias(func, main: str, bias_buf, channel_iter: int):
    """The reduction of block `main` starts from `bias[c]` instead of 0 (accumulators are
    initialised by the bias load); its reads gain the bias."""
    tvm = import_tvm()
    from tvm.tirx import BufferLoad, BufferRegion, BufferStore

    def fn(blk):
        st = blk.init
        v = blk.iter_vars[channel_iter].var
        init = BufferStore(st.buffer, BufferLoad(bias_buf, [v]), st.indices)
        reads = list(blk.reads) + [BufferRegion(bias_buf, [tvm.ir.Range.from_min_extent(v, 1)])]
        return _replace_block(blk, reads=reads, init=init)

    return func.with_body(_rewrite_block(func.body, main, fn))


def _drop_reads(func, block: str, buffer_name_prefix: str):
    def fn(blk):
        reads = [r for r in blk.reads if not r.source.name.startswith(buffer_name_prefix)]
        return _replace_block(blk, reads=reads)

    return func.with_body(_rewrite_block(func.body, block, fn))


def _read_index(sch, block, name: str) -> int:
    for i, r in enumerate(sch.get(block).reads):
        if r.source.name == name:
            return i
    raise AssertionError(f"block {sch.get(block).name_hint} does not read '{name}'")


def schedule_layer(ld: LayerDef, choice: TileChoice, recipe: AccelRecipe):
    """The scheduled, compacted IRModule of one layer (see the module docstring)."""
    tvm = import_tvm()
    te = tvm.te
    func = te.create_prim_func(ld.te_args)
    flow = choice.dataflow
    is_mac = ld.intrinsic is not None
    names = [p.name for p in func.params]
    if is_mac:
        bias_buf = func.params[names.index("bias")]
        func = _init_from_bias(
            func, ld.main, bias_buf, ld.loops.index("oc" if "oc" in ld.loops else "c")
        )
    sch = tvm.s_tir.Schedule(func, enable_check=True)
    main = sch.get_sblock(ld.main)
    raw = sch.get_loops(main)
    loops: dict[str, Any] = {}
    axes = {a.name: a for a in ld.tile_axes}
    for lname, lv in zip(ld.loops, raw):
        ax = axes.get(lname)
        if ax is None:
            loops[lname] = lv
            continue
        t = choice.tiles[lname] // ax.elems_per_iter
        if ax.vector:
            o, i, v = sch.split(lv, [None, t // ax.vector, ax.vector])
            loops.update({f"{lname}.o": o, f"{lname}.i": i, f"{lname}.v": v})
        else:
            o, i = sch.split(lv, [None, t])
            loops.update({f"{lname}.o": o, f"{lname}.i": i})
    tens = list(_vmac.FORMS[ld.intrinsic.name].loops) if is_mac else []
    final = list(flow.order) + list(flow.inner) + tens
    missing = [n for n in loops if n not in final]
    unknown = [n for n in final if n not in loops]
    if unknown or missing or len(set(final)) != len(final):
        bad = unknown[0] if unknown else (missing[0] if missing else "a repeated loop")
        raise AccelRecipeError(
            f"{recipe.where('dataflows', flow.name)}: loop '{bad}' "
            f"{'does not exist' if unknown else 'is not placed'} for layer "
            f"'{ld.node.name}' (loops: {', '.join(loops)})"
        )
    sch.reorder(*[loops[n] for n in final])
    for n in final:
        if n not in tens:  # the intrinsic's loops must match its description exactly
            sch.annotate(loops[n], "accel.loop", n)

    # inputs into their scratchpads
    for s in ld.staged:
        reader = main if s.reader in ("main", "init") else sch.get_sblock(ld.epilogue or ld.main)
        src = "pad" if (s.tensor == "x" and ld.pad_stage) else s.tensor
        if s.reader == "epilogue":
            continue  # after the epilogue is placed
        blk = sch.cache_read(reader, _read_index(sch, reader, src), SCOPES[s.space])
        sch.compute_at(blk, loops[flow.stage[s.tensor]])
        if src == "pad":
            sch.compute_inline(sch.get_sblock("pad"))
    epi_loop = loops[choice.epilogue_loop]
    if ld.epilogue is not None:
        y = sch.get_sblock(ld.epilogue)
        sch.reverse_compute_at(y, epi_loop)
        sch.cache_write(y, 0, SCOPES["out"])
        sch.reverse_compute_at(sch.get_sblock(f"{ld.epilogue}_{SCOPES['out']}"), epi_loop)
        for s in ld.staged:
            if s.reader == "epilogue":
                blk = sch.cache_read(y, _read_index(sch, y, s.tensor), SCOPES[s.space])
                sch.compute_at(blk, loops[flow.stage[s.tensor]])
        sch.set_scope(main, 0, SCOPES["acc"])
        sch.annotate(y, "accel.alu", "requant")
        red = choice.reduce_loop or flow.inner[0]
        sch.decompose_reduction(main, loops[red])
    elif ld.geom.kind == "move":  # data movement: the store engine reads the staged tile
        pass
    else:  # element-wise: the main block is the ALU operation
        sch.cache_write(main, 0, SCOPES["out"])
        sch.reverse_compute_at(sch.get_sblock(f"{ld.main}_{SCOPES['out']}"), epi_loop)
        sch.annotate(main, "accel.alu", ld.op_class)
    mod = sch.mod
    if is_mac:
        upd = f"{ld.main}_update"
        func = _drop_reads(mod["main"], upd, "bias")
        sch = tvm.s_tir.Schedule(func, enable_check=True)
        b = sch.get_sblock(upd)
        key = ensure_registered(ld.intrinsic)
        # the intrinsic covers the innermost len(tens) loops of the update block
        sch.tensorize(sch.get_loops(b)[-len(tens)], key)
        mod = sch.mod
    passes = tvm.s_tir.transform
    mod = passes.PlanAndUpdateBufferAllocationLocation()(mod)
    mod = passes.ConvertBlocksToOpaque()(mod)
    mod = passes.CompactBufferAllocation()(mod)
    return mod
