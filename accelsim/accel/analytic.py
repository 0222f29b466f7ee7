"""Analytic fidelity of the configurable SIMD accelerator: per-layer costs from operator shapes,
the design point and the schedule recipe alone, with no TVM and no program (`fidelity`
"analytic"). Fast enough for sweeps of thousands of design points.

It evaluates the instruction-level simulator's rules (`accelsim.accel.sim`, docs/accel-isa.md
section 4) in closed form on the program the code generator would emit, without emitting it:

- **Tiles**: the code generator's tiling rule (`accelsim.accel.schedule.choose_tiles`) on the
  layer's shapes (`accelsim.accel.compute.layer_shape`, the part of the code generator's
  `LayerDef` that needs no TVM).
  `choose_tiles_fast` evaluates the same candidates and objective over numpy arrays (~6x faster;
  tests check identical choices); choices are memoised per (layer geometry, design parameters
  that shape code, recipe).
- **Instruction counts**: from the recipe's loop order, one LOAD per staged tensor per iteration
  of its stage loop, one BIAS / REQUANT / STORE per iteration of the epilogue loop, one VMAC per
  innermost tile iteration (its loops are the recipe's `inner` loops with the strides of the
  compacted tile buffers, extent-1 loops dropped and contiguous neighbours merged, as the code
  generator does).
- **Per-instruction time and energy**: the simulator's formulas (VMAC micro-ops vs operand
  re-fetches through the register file (`sim._reuse_fetches`) and scratchpad bank cycles; DMA
  engine time `max(burst bytes / DMA bandwidth, scratchpad bytes / slot bandwidth)`, DRAM channel
  `burst bytes / DRAM bandwidth`; the ALU rates), with two structural simplifications: vector
  accesses are taken as bank-aligned, and the DRAM bytes of a padded activation tile are counted
  per distinct border position (exact) rather than per instruction.
- **Overlap**: the only part that is not instruction-exact. The event-driven queues are replaced
  by the bounds they obey: the layer takes the longest of (a) the first tile's loads + DMA
  latency + all compute, (b) all load-engine time (+ store time with one shared engine) + latency
  + the last tile's compute, (c) all DRAM channel time + latency + the last tile's compute,
  (d) the dependency chain of the most often reloaded buffer: per refill its load, the DMA
  latency and the compute that consumes it, divided by its slots (two with double buffering:
  refill k+2 waits for the compute of k), and (e) the store queue, each followed by the last
  store and its latency. Calibration against accel-sim (tests/test_accel_analytic.py,
  benchmarks/sweep_benchmark.py --calibrate) reports the remaining error; no term is fitted.

Layers the accelerator does not run are costed by the same host model as accel-sim
(`sim.host_cost`).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from accelsim.accel import isa, sim
from accelsim.accel.arch import AccelConfig, load_config
from accelsim.accel.codegen import merge_loops  # no TVM at import
from accelsim.accel.compute import LayerShape, NotAccelerated, Staged, layer_shape
from accelsim.accel.schedule import (
    AccelRecipe,
    RecipeFile,
    TileChoice,
    _candidates,
    _cap,
    _dram_bytes,
    _loop_trips,
    choose_tiles,
    load_recipes,
)
from accelsim.core.cost import ENERGY_COMPONENTS, LayerCost
from accelsim.model.graph import Graph

FIDELITY = "analytic"


def _where(cond, a, b):
    if isinstance(cond, np.ndarray):
        return np.where(cond, a, b)
    return a if cond else b


def _mx(*xs):
    """`max` that also takes numpy arrays of design points (element-wise; same value as `max`
    on each point, so the vectorised sweep equals the per-point model bit for bit)."""
    if any(isinstance(x, np.ndarray) for x in xs):
        out = xs[0]
        for x in xs[1:]:
            out = np.maximum(out, x)
        return out
    return max(xs)


# ------------------------------------------------------------------------------------------------
# instruction loops (as the code generator builds them from the compacted tile buffers)
# ------------------------------------------------------------------------------------------------


def _vmac_loops(
    s: LayerShape,
    inner: tuple[str, ...],
    t: Mapping[str, int],
    cx: Mapping[str, int],
    cw: Mapping[str, int],
) -> tuple[tuple[int, ...], ...]:
    """(extent, acc, act, wgt strides) per loop of one VMAC: `t` the accumulator tile, `cx` /
    `cw` what the activation / weight buffers cover."""
    g, L, D = s.geom, s.geom.lanes, s.geom.depth
    if s.op_class == "depthwise_conv2d":
        bx = s.staged[0].box(cx)
        bw_, bc = bx[2], bx[3]
        wc = cw["c"]
        table = {
            "c.i": (t["c"] // L, L, L, L),
            "oh.i": (t["oh"], t["ow"] * t["c"], g.sh * bw_ * bc, 0),
            "ow.i": (t["ow"], t["c"], g.sw * bc, 0),
            "kh": (g.kh, 0, g.dh * bw_ * bc, g.kw * wc),
            "kw": (g.kw, 0, g.dw * bc, wc),
        }
    elif g.dense:
        wic = cw["ic"] // D
        table = {"oc.i": (t["oc"] // L, L, 0, wic * L * D), "ic.i": (t["ic"] // D, 0, D, L * D)}
    else:
        bx = s.staged[0].box(cx)
        bw_, bc = bx[2], bx[3]
        wic = cw["ic"] // D
        table = {
            "oc.i": (t["oc"] // L, L, 0, g.kh * g.kw * wic * L * D),
            "oh.i": (t["oh"], t["ow"] * t["oc"], g.sh * bw_ * bc, 0),
            "ow.i": (t["ow"], t["oc"], g.sw * bc, 0),
            "kh": (g.kh, 0, g.dh * bw_ * bc, g.kw * wic * L * D),
            "kw": (g.kw, 0, g.dw * bc, wic * L * D),
            "ic.i": (t["ic"] // D, 0, D, L * D),
        }
    return merge_loops([table[n] for n in inner if n in table])


# ------------------------------------------------------------------------------------------------
# per-layer cost
# ------------------------------------------------------------------------------------------------


@dataclass
class _Acc:
    """Counts the simulator's `Stats` would hold."""

    compute: float = 0.0
    load: float = 0.0
    store: float = 0.0
    dram_read: float = 0.0
    dram_write: float = 0.0
    payload: float = 0.0
    spad_read: Counter = dataclasses.field(default_factory=Counter)
    spad_write: Counter = dataclasses.field(default_factory=Counter)
    rf: float = 0.0
    mac_pj: float = 0.0
    alu_pj: float = 0.0


def _axis_valid(start_step: int, box: int, positions: int, size: int, pad: int) -> Counter:
    """Valid (in-tensor) extents of a box of `box` elements at each of `positions` tile positions
    `start_step` apart (first at -pad), with multiplicity."""
    out: Counter = Counter()
    for i in range(positions):
        lo = i * start_step - pad
        out[max(0, min(lo + box, size) - max(lo, 0))] += 1
    return out


def _load_costs(
    s: LayerShape,
    st: Staged,
    cover: Mapping[str, int],
    loads: int,
    staged_at: set,
    config: AccelConfig,
    slots: int,
) -> tuple[float, float, float, float, float]:
    """(engine cycles, bus bytes, scratchpad bytes, payload bytes, first load's engine cycles)
    summed over the `loads` LOADs of one staged tensor."""
    box = st.box(cover)
    dt = s.dram[st.tensor]
    burst = config.dma_burst_bytes
    dma_bw = config.dma_bytes_per_cycle
    slot_bw = config.scratchpads[st.space].bytes_per_cycle(slots)
    spad = math.prod(box) * st.bits / 8
    g = s.geom
    if st.tensor == "x" and g.kind in ("bcast", "elem") and not g.dense:
        # convolution padding: border tiles read fewer rows / columns
        ch = "c" if g.kind == "elem" else "ic"
        ext_c = g.cout_p if g.kind == "elem" else g.cin_p
        pos_h = g.oh // cover["oh"] if "oh.o" in staged_at else 1
        pos_w = g.ow // cover["ow"] if "ow.o" in staged_at else 1
        pos_c = ext_c // cover[ch] if f"{ch}.o" in staged_at else 1
        vh = _axis_valid(cover["oh"] * g.sh, box[1], pos_h, g.h, g.pt)
        vw = _axis_valid(cover["ow"] * g.sw, box[2], pos_w, g.w, g.pl)
        vc = _axis_valid(cover[ch], box[3], pos_c, g.cin, 0)
        combos = [
            ((g.n, a, b, c), na * nb * nc)
            for a, na in vh.items()
            for b, nb in vw.items()
            for c, nc in vc.items()
        ]
        reps = loads / (pos_h * pos_w * pos_c)
    elif st.reader == "epilogue":
        # requantization parameters: the epilogue's buffers hold only the tile's real channels
        ch = "c" if g.kind == "elem" else "oc"
        pos_c = g.cout_p // cover[ch] if f"{ch}.o" in staged_at else 1
        combos = [((v,), n) for v, n in _axis_valid(cover[ch], box[0], pos_c, g.cout, 0).items()]
        reps = loads / pos_c
    else:
        combos = [(tuple(min(b, d) for b, d in zip(box, dt.shape)), 1)]
        reps = loads
    cyc = bus = payload = 0.0
    first = None  # combos[0] is the first tile position (Counter keeps insertion order)
    spad_total = 0.0
    for vbox, n in combos:
        b = _dram_bytes(vbox, dt.shape, st.dram_bits, burst)
        sb = math.prod(vbox) * st.bits / 8 if st.reader == "epilogue" else spad
        # the engine is held until its bursts have crossed the DRAM channel too
        c = _mx(b / dma_bw, b / config.dram_bytes_per_cycle, sb / slot_bw, 1.0)
        spad_total += n * sb
        first = c if first is None else first
        cyc += n * c
        bus += n * b
        payload += n * math.prod(vbox) * st.dram_bits / 8
    return cyc * reps, bus * reps, spad_total * reps, payload * reps, first


@dataclass(frozen=True)
class _Terms:
    cycles: Any  # float, or an array over design points
    latency: Any
    breakdown: dict[str, Any]
    acc: _Acc
    dram_time: Any
    n_steps: int
    n_epi: int


def layer_cost(s: LayerShape, choice: TileChoice, config: AccelConfig) -> LayerCost:
    t = layer_terms(s, choice, config)
    c, a, cycles, sps = config, t.acc, t.cycles, config.scratchpads
    memory_busy = max(a.load, a.store, t.dram_time)
    bound = (
        "compute"
        if a.compute >= memory_busy and cycles - a.compute <= sim.COMPUTE_IDLE_MAX * cycles
        else "memory"
    )
    moved = {
        "dram": a.dram_read + a.dram_write,
        "dram_read": a.dram_read,
        "dram_write": a.dram_write,
        "dram_payload": a.payload,
    }
    for sp in sps:
        moved[sp] = a.spad_read[sp] + a.spad_write[sp]
    moved["register_file"] = a.rf
    peak = c.peak_macs_per_cycle(s.mode) if s.mode else 0.0
    util = s.macs / (cycles * peak) if peak else 0.0
    notes = (
        f"{choice.dataflow.name} tiles {dict(choice.tiles)}; analytic: {t.n_steps} steps, "
        f"{t.n_epi} output tiles"
    )
    return LayerCost(
        s.node.name,
        s.op_label,
        s.macs,
        cycles,
        t.latency,
        sum(t.breakdown.values()),
        t.breakdown,
        bound,
        util,
        FIDELITY,
        moved,
        notes,
    )


def layer_terms(s: LayerShape, choice: TileChoice, config: Any) -> _Terms:
    """Cycles, latency and energy of one layer. `config` is an `AccelConfig`, or a view of one
    whose bandwidths, latencies, clock and energies are numpy arrays over design points that
    share everything that shapes code (`accel_points`): then every result is an array."""
    c = config
    flow = choice.dataflow
    order = flow.order
    tiles = choice.tiles
    slots = choice.slots
    pos = {n: i for i, n in enumerate(order)}
    trips = [_loop_trips(s, tiles, n) for n in order]
    upto = []
    p = 1
    for tr in trips:
        p *= tr
        upto.append(p)
    n_steps = upto[-1]
    epi_idx = pos[choice.epilogue_loop]
    n_epi = upto[epi_idx]

    def cover(idx: int) -> dict[str, int]:
        return {
            a.name: (tiles[a.name] if pos.get(a.name + ".o", len(order)) <= idx else a.extent)
            for a in s.tile_axes
        }

    sps = c.scratchpads
    bw = {sp: sps[sp].bytes_per_cycle(1 if sp == "acc" else slots) for sp in sps}
    a = _Acc()
    # ---- loads --------------------------------------------------------------------------------
    per_buffer = []  # (loads, engine cycles, first load cycles, stage idx)
    for st in s.staged:
        idx = pos[flow.stage[st.tensor]]
        cov = cover(idx)
        loads = upto[idx]
        cyc, bus, spad, payload, first = _load_costs(
            s, st, cov, loads, set(order[: idx + 1]), c, slots
        )
        a.load += cyc
        a.dram_read += bus
        a.payload += payload
        a.spad_write[st.space] += spad
        per_buffer.append((loads, cyc, first, idx, st))
    # ---- the accumulator tile: epilogue, stores ----------------------------------------------
    ce = cover(epi_idx)
    e_acc = s.acc_box(ce) if s.acc_box is not None else 0
    g = s.geom
    obytes = s.out_buf_bits / 8
    y = s.dram["y"]
    if g.kind == "alu":  # element-wise: tiles of rows of C elements
        vcs = Counter({ce["p"]: n_epi})
        pix = g.cout
    elif g.kind == "move":  # data movement: tiles of rows of the output's leading dim
        vcs = Counter({ce["t"]: n_epi})
        pix = g.cin
    else:
        ch = "c" if g.kind == "elem" else "oc"
        pos_c = g.cout_p // ce[ch]
        vcs = Counter()
        for k, n in _axis_valid(ce[ch], ce[ch], pos_c, g.cout, 0).items():
            vcs[k] += n * n_epi // pos_c
        pix = g.n * (1 if g.dense else ce["oh"] * ce["ow"])
    req_total = 0.0
    last_store = last_req = last_bus = 0.0
    for vc, n in vcs.items():
        e = pix * vc
        if g.kind == "alu":
            box: tuple[int, ...] = (vc, g.cout)
        elif g.kind == "move":
            box = (vc, *y.shape[1:])
        else:
            box = (g.n, vc) if g.dense else (g.n, ce["oh"], ce["ow"], vc)
        bus = _dram_bytes(box, y.shape, y.bits, c.dma_burst_bytes)
        sbytes = e * y.bits / 8
        src = "act" if g.kind == "move" else "out"  # a movement's store reads its input tile
        scyc = _mx(bus / c.dma_bytes_per_cycle, bus / c.dram_bytes_per_cycle, sbytes / bw[src], 1.0)
        a.store += n * scyc
        a.dram_write += n * bus
        a.payload += n * sbytes
        a.spad_read[src] += n * sbytes
        last_store, last_bus = scyc, bus
        if g.kind == "move":  # no compute
            continue
        if g.kind == "alu":
            ins = isa.ALU_INSTRUCTIONS[(s.op_class, s.fscale)]
            ab = sum(max(b, 8) / 8 for b in s.in_bits)  # input bytes per element, 8-bit lanes
            a.spad_read["act"] += n * e * ab
            a.spad_write["out"] += n * e * obytes
            a.alu_pj += n * e * getattr(c.energy, ins.ENERGY)
            table = ins.TABLE_ENTRIES * obytes / c.alu_lanes if ins is isa.VLut else 0.0
            r = (
                _mx(ins.PASSES * e / c.alu_lanes, e * ab / bw["act"], e * obytes / bw["out"], 1.0)
                + table
                + c.issue_cycles
            )
            for bits in s.in_bits:
                if bits == 4:  # VUNPACK of a whole input buffer
                    a.spad_read["act"] += n * 0.5 * e
                    a.spad_write["act"] += n * e
                    a.alu_pj += n * e * c.energy.pack_pj
                    r += _mx(e / c.lanes, 1.5 * e / bw["act"], 1.0) + c.issue_cycles
        else:
            accb = s.acc_bits / 8
            # REQUANT loops: pixels (merged) x valid channels; multiplier + shift held per lane
            fp = vc if vc <= c.lanes else e
            # multiplier + shift bytes per channel, as staged (an int64 significand at float64)
            pb = sum(st.bits for st in s.staged if st.tensor in ("mult", "shift")) / 8
            a.spad_read["acc"] += n * e * accb
            a.spad_write["out"] += n * e * obytes
            a.spad_read["wgt"] += n * fp * pb
            a.alu_pj += n * e * c.energy.requant_of(s.wide, s.fscale)
            r = (
                _mx(
                    isa.REQUANT_PASSES[s.fscale] * e / c.alu_lanes,
                    e * accb / bw["acc"],
                    e * obytes / bw["out"],
                    fp * pb / bw["wgt"],
                    1.0,
                )
                + c.issue_cycles
            )
        if s.obits == 4:  # VPACK before the store
            a.spad_read["out"] += n * e
            a.spad_write["out"] += n * 0.5 * e
            a.alu_pj += n * e * c.energy.pack_pj
            r += _mx(e / c.lanes, 1.5 * e / bw["out"], 1.0) + c.issue_cycles
        req_total += n * r
        last_req = r
    a.compute += req_total
    # ---- BIAS + VMACs -----------------------------------------------------------------------
    vmac = 0.0
    bias = 0.0
    if g.kind not in ("alu", "move"):
        L = c.lanes
        accb = s.acc_bits / 8
        # BIAS: acc tile from the per-channel bias, held in one parameter register per lane
        ch = "c" if g.kind == "elem" else "oc"
        spatial = [n for n in flow.inner if n.endswith(".i") and n[:-2] in ("oh", "ow", ch)]
        ext = {"oh": ce.get("oh", 1), "ow": ce.get("ow", 1), ch: ce[ch]}
        strides = {"oh": ext["ow"] * ext[ch], "ow": ext[ch]}
        bl = []
        for n in spatial:
            ax = n[:-2]
            if ax == ch:
                bl.append((ext[ch] // L, L, L))
            else:
                bl.append((ext[ax], strides[ax], 0))
        bl.append((L, 1, 1))
        bl = merge_loops(bl)
        fb = sim._reuse_fetches(bl, 2, L)
        a.spad_write["acc"] += n_epi * e_acc * accb
        a.spad_read["wgt"] += n_epi * fb * accb
        bias = _mx(e_acc / L, e_acc * accb / bw["acc"], fb * accb / bw["wgt"], 1.0) + c.issue_cycles
        a.compute += n_epi * bias
        # VMAC: one per innermost tile iteration
        x_idx = pos[flow.stage["x"]]
        w_idx = pos[flow.stage["w"]]
        t = {k: v for k, v in cover(len(order) - 1).items()}
        loops = _vmac_loops(s, flow.inner, t, cover(x_idx), cover(w_idx))
        u = math.prod(lp[0] for lp in loops)
        mode = c.mode(s.mode)
        D = g.depth
        if g.kind == "bcast":
            act_vec, wgt_vec = D * s.abits / 8, L * D * s.wbits / 8
            macs = u * L * D
            a.mac_pj += n_steps * macs * c.energy.mac_pj[s.mode]
        else:
            act_vec, wgt_vec = L * s.abits / 8, L * s.wbits / 8
            macs = u * L
            a.mac_pj += n_steps * macs * c.energy.mac_pj_elem[s.mode]
        acc_vec = L * accb
        f_act = sim._reuse_fetches(loops, 2, c.act_registers)
        f_wgt = sim._reuse_fetches(loops, 3, c.weight_registers)
        f_acc = sim._reuse_fetches(loops, 1, c.acc_registers)
        a.spad_read["act"] += n_steps * f_act * act_vec
        a.spad_read["wgt"] += n_steps * f_wgt * wgt_vec
        a.spad_read["acc"] += n_steps * f_acc * acc_vec
        a.spad_write["acc"] += n_steps * f_acc * acc_vec
        a.rf += n_steps * 2 * u * acc_vec

        def access(space: str, nbytes: float, nslots: int) -> int:
            sp = sps[space]
            return math.ceil(math.ceil(nbytes / sp.bank_width_bytes) / sp.slot_banks(nslots))

        rmw = 1 if sps["acc"].ports == 2 else 2
        vmac = (
            _mx(
                u * mode.cycles,
                f_act * access("act", act_vec, slots),
                f_wgt * access("wgt", wgt_vec, slots),
                rmw * f_acc * access("acc", acc_vec, 1),
            )
            + c.pipeline_cycles
            + c.issue_cycles
        )
        a.compute += n_steps * vmac
    # ---- overlap of the three queues ----------------------------------------------------------
    lat = c.dma_latency_cycles
    step_compute = a.compute / n_steps
    # the first compute waits for every buffer staged at or outside the activation stage
    inner_idx = max(b[3] for b in per_buffer if b[4].reader != "epilogue")
    first_loads = sum(b[2] for b in per_buffer if b[3] <= inner_idx)
    prologue = first_loads + lat
    tail_compute = vmac + bias + last_req
    engine = a.load + _where(c.dma_engines == 1, a.store, 0.0)
    dram_time = (a.dram_read + a.dram_write) / c.dram_bytes_per_cycle
    dram_before_last_store = dram_time - last_bus / c.dram_bytes_per_cycle
    # refill k + slots of the most often reloaded buffer waits until the MACs (the ALU for add)
    # of refill k have read it; the epilogue of refill k overlaps the next refill's load
    refills = max(b[0] for b in per_buffer)
    hold = (n_steps * vmac if g.kind not in ("alu", "move") else a.compute) / refills
    refill_load = (a.load - first_loads) / (refills - 1) if refills > 1 else 0.0
    chain = prologue + (refills - 1) * (refill_load + lat + hold) / slots + step_compute
    bounds = (
        prologue + a.compute,
        engine + lat + tail_compute,
        dram_before_last_store + lat + tail_compute,
        chain,
        prologue + step_compute + a.store - last_store,
    )
    cycles = _mx(*bounds) + last_store + lat

    e = c.energy
    latency = cycles / c.clock_hz
    # a fixed summation order (not a set's, which varies with the process's hash seed) keeps
    # results bit-identical across processes: local pool and Dask outputs must match
    onchip = (
        sum((a.spad_read[sp] + a.spad_write[sp]) * e.sram_pj_per_byte[sp] for sp in sps)
        + a.rf * e.rf_pj_per_byte
    )
    breakdown = {
        "compute": (a.mac_pj + a.alu_pj) * 1e-12,
        "onchip_memory": onchip * 1e-12,
        "offchip_memory": (a.dram_read + a.dram_write) * e.dram_pj_per_byte * 1e-12,
        "static": e.static_power_w * latency,
    }
    return _Terms(cycles, latency, breakdown, a, dram_time, n_steps, n_epi)


# ------------------------------------------------------------------------------------------------
# graph entry point
# ------------------------------------------------------------------------------------------------

_CHOICES: dict[tuple, TileChoice] = {}


def _align_v(nbytes, sp, slots: int):
    row = sp.slot_banks(slots) * sp.bank_width_bytes
    return np.where(nbytes > 0, np.ceil(nbytes / row) * row, 0)


def _dram_bytes_v(box, shape, bits: int, burst: int):
    """`schedule._dram_bytes` over arrays of boxes."""
    box = [np.minimum(b, d) for b, d in zip(box, shape)]
    run = np.ones(np.broadcast_shapes(*(np.shape(b) for b in box)), dtype=np.int64)
    active = np.ones(run.shape, dtype=bool)
    for b, d in zip(reversed(box), reversed(shape)):
        run = np.where(active, run * b, run)
        active = active & (b == d)
    total = np.ones(run.shape, dtype=np.int64)
    for b in box:
        total = total * b
    runs = np.where(run > 0, total // np.maximum(run, 1), 0)
    return runs * np.ceil(run * bits / 8 / burst) * burst


def choose_tiles_fast(s: LayerShape, recipe: AccelRecipe, config: AccelConfig) -> TileChoice:
    """`schedule.choose_tiles`, its objective evaluated over all candidate tiles at once with
    numpy (same candidates, same fit rule, same key and tie order; tests check the choices are
    identical). Anything unusual (an invalid recipe, nothing fits) goes to `choose_tiles`, which
    raises its error."""
    slots = config.slots if recipe.double_buffer else 1
    sps = config.scratchpads
    axes = {a.name: a for a in s.tile_axes}
    reduce_axes = [a for a in s.tile_axes if a.reduce]
    space_axes = [a for a in s.tile_axes if not a.reduce]
    if len(reduce_axes) > 1:
        return choose_tiles(s, recipe, config)
    cands = {a.name: _candidates(a, _cap(recipe, a, config)) for a in s.tile_axes}
    grid = np.array(
        list(itertools.product(*(cands[a.name] for a in space_axes))), dtype=np.int64
    ).reshape(-1, len(space_axes))
    red = sorted(cands[reduce_axes[0].name], reverse=True) if reduce_axes else [0]
    shape = (len(grid), len(red))
    T = {a.name: np.broadcast_to(grid[:, i][:, None], shape) for i, a in enumerate(space_axes)}
    if reduce_axes:
        T[reduce_axes[0].name] = np.broadcast_to(np.array(red, dtype=np.int64)[None, :], shape)
    y = s.dram["y"]
    best = None
    for flow in recipe.dataflows:
        pos = {n: i for i, n in enumerate(flow.order)}
        if any(t.endswith(".o") and t[:-2] not in axes for t in flow.order) or any(
            st.tensor not in flow.stage or flow.stage[st.tensor] not in pos for st in s.staged
        ):
            return choose_tiles(s, recipe, config)
        red_pos = [pos[a.name + ".o"] for a in reduce_axes if a.name + ".o" in pos]
        first_red = min(red_pos) if red_pos else None
        epi_idx = (first_red - 1) if first_red is not None else len(flow.order) - 1

        def trips(n: str):
            if n.endswith(".o") and n[:-2] in axes:
                return axes[n[:-2]].extent // T[n[:-2]]
            return int(s.extents.get(n, 1))

        def cover(idx: int, pos: dict = pos) -> dict:
            return {
                a.name: (T[a.name] if pos.get(a.name + ".o", len(pos)) <= idx else a.extent)
                for a in s.tile_axes
            }

        used = {k: np.zeros(shape) for k in sps}
        traffic = np.zeros(shape)
        count = np.ones(shape, dtype=np.int64)
        for n in flow.order:
            count = count * trips(n)
        for st in s.staged:
            idx = pos[flow.stage[st.tensor]]
            box = st.box(cover(idx))
            elems = np.ones(shape, dtype=np.int64)
            for b in box:
                elems = elems * b
            used[st.space] = (
                used[st.space] + _align_v(elems * st.bits / 8, sps[st.space], slots) * slots
            )
            loads = np.ones(shape, dtype=np.int64)
            for n in flow.order[: idx + 1]:
                loads = loads * trips(n)
            traffic = traffic + loads * _dram_bytes_v(
                box, s.dram[st.tensor].shape, st.dram_bits, config.dma_burst_bytes
            )
        ce = cover(epi_idx)
        if s.acc_box is not None:
            used["acc"] = used["acc"] + _align_v(s.acc_box(ce) * s.acc_bits / 8, sps["acc"], 1)
        used["out"] = (
            used["out"] + _align_v(s.out_box(ce) * s.out_buf_bits / 8, sps["out"], slots) * slots
        )
        traffic = traffic + y.bytes
        fits = np.ones(shape, dtype=bool)
        for k in sps:
            fits &= used[k] <= sps[k].size_bytes
        rows = np.nonzero(fits.any(axis=1))[0]
        if not len(rows):
            continue
        cols = fits[rows].argmax(axis=1)  # the largest reduction tile that fits
        tr, cnt = traffic[rows, cols], count[rows, cols]
        ow = T["ow"][rows, cols] if "ow" in T else np.zeros(len(rows), dtype=np.int64)
        i = np.lexsort((rows, -ow, cnt, tr))[0]  # least key, first in iteration order
        key = (float(tr[i]), int(cnt[i]), -int(ow[i]))
        if best is None or key < best[0]:
            r, c = rows[i], cols[i]
            best = (
                key,
                flow,
                {a.name: int(T[a.name][r, c]) for a in s.tile_axes},
                {k: int(used[k][r, c]) for k in sps},
                flow.order[epi_idx],
                flow.order[first_red] if first_red is not None else None,
            )
    if best is None:
        return choose_tiles(s, recipe, config)
    (traffic_b, count_b, _), flow, tiles, used_b, epi_loop, red_loop = best
    return TileChoice(flow, tiles, traffic_b, count_b, used_b, slots, epi_loop, red_loop)


def tile_choice(
    s: LayerShape, config: AccelConfig, recipes: RecipeFile, precision: str
) -> TileChoice:
    """The code generator's tile choice for `s` (memoised: the tiler is the slow part)."""
    recipe = recipes.recipe(s.op_class, s.mode or precision)
    key = (s.key, config.codegen_key(), recipes.path, repr(recipe))
    hit = _CHOICES.get(key)
    if hit is None:
        hit = _CHOICES[key] = choose_tiles_fast(s, recipe, config)
    return hit


def simulate_graph(
    graph: Graph, config: AccelConfig | str = "simd-accel", *, recipes: RecipeFile | None = None
) -> list[LayerCost]:
    """One `LayerCost` per graph node at analytic fidelity (host layers as accel-sim costs
    them)."""
    config = load_config(config)
    recipes = recipes or load_recipes()
    precision = sim._precision_of(graph)
    out = []
    for node in graph.nodes:
        try:
            s = layer_shape(graph, node, config)
        except NotAccelerated as exc:
            out.append(
                dataclasses.replace(sim.host_cost(graph, node, config, str(exc)), fidelity=FIDELITY)
            )
            continue
        out.append(layer_cost(s, tile_choice(s, config, recipes, precision), config))
    return out


# ------------------------------------------------------------------------------------------------
# many design points at once
# ------------------------------------------------------------------------------------------------

# Design parameters that shape no code (tiles, loop structure, instruction counts): a sweep
# evaluates them as numpy arrays over the points that share everything else. The others
# (`AccelConfig.codegen_key`: lanes, scratchpads, registers, ...) select the tile choice.
RATE_PARAMS = (
    "clock_hz",
    "dma_engines",
    "dma_bytes_per_cycle",
    "dma_latency_cycles",
    "dram_bytes_per_cycle",
    "pipeline_cycles",
    "issue_cycles",
    "alu_lanes",
)
ENERGY_PARAMS = ("technology_nm", "voltage_v", "dram_pj_per_byte", "static_power_w")
ARRAY_PARAMS = RATE_PARAMS + ENERGY_PARAMS
METRICS = (
    "latency_s",
    "energy_j",
    "cycles",
    "energy_compute_j",
    "energy_onchip_memory_j",
    "energy_offchip_memory_j",
    "energy_static_j",
)


class _PointsView:
    """An `AccelConfig` whose `ARRAY_PARAMS` (and the energies they derive) are arrays over
    design points; every other attribute is the config's."""

    def __init__(self, config: AccelConfig, values: Mapping[str, Any], energy: Any):
        self._config = config
        self.__dict__.update(values)
        self.energy = energy

    def __getattr__(self, name: str) -> Any:
        return getattr(self._config, name)


def _unique(columns: list[np.ndarray]) -> tuple[list[tuple], np.ndarray]:
    """Distinct rows of the columns (first-seen order) and each point's row index."""
    n = len(columns[0])
    index = np.empty(n, dtype=np.int64)
    seen: dict[tuple, int] = {}
    rows = list(zip(*(c.tolist() for c in columns)))
    for i, r in enumerate(rows):
        index[i] = seen.setdefault(r, len(seen))
    return list(seen), index


def points_view(config: AccelConfig, columns: Mapping[str, np.ndarray]) -> Any:
    """`config` with the `ARRAY_PARAMS` in `columns` (one array per name, one value per point)
    applied as arrays. Each distinct value (each distinct energy combination) is parsed and
    validated once by `AccelConfig.with_params`, so values are exactly the per-point ones."""
    values: dict[str, Any] = {}
    for k in RATE_PARAMS:
        if k in columns:
            uniq, idx = _unique([np.asarray(columns[k])])
            parsed = [getattr(config.with_params(**{k: u[0]}), k) for u in uniq]
            values[k] = np.array(parsed)[idx]
    keys = [k for k in ENERGY_PARAMS if k in columns]
    if not keys:
        return _PointsView(config, values, config.energy)
    uniq, idx = _unique([np.asarray(columns[k]) for k in keys])
    models = [config.with_params(**dict(zip(keys, u))).energy for u in uniq]

    def col(get) -> np.ndarray:
        return np.array([get(m) for m in models], dtype=float)[idx]

    e = config.energy
    energy = dataclasses.replace(
        e,
        factor=col(lambda m: m.factor),
        mac_pj={p: col(lambda m, p=p: m.mac_pj[p]) for p in e.mac_pj},
        mac_pj_elem={p: col(lambda m, p=p: m.mac_pj_elem[p]) for p in e.mac_pj_elem},
        requant_pj=col(lambda m: m.requant_pj),
        requant_wide_pj=col(lambda m: m.requant_wide_pj),
        requant_f64_pj=col(lambda m: m.requant_f64_pj),
        requant_f32_pj=col(lambda m: m.requant_f32_pj),
        add_pj=col(lambda m: m.add_pj),
        mul_pj=col(lambda m: m.mul_pj),
        addf_pj=col(lambda m: m.addf_pj),
        mulf_pj=col(lambda m: m.mulf_pj),
        lut_pj=col(lambda m: m.lut_pj),
        pack_pj=col(lambda m: m.pack_pj),
        sram_pj_per_byte={s: col(lambda m, s=s: m.sram_pj_per_byte[s]) for s in e.sram_pj_per_byte},
        rf_pj_per_byte=col(lambda m: m.rf_pj_per_byte),
        dram_pj_per_byte=col(lambda m: m.dram_pj_per_byte),
        static_power_w=col(lambda m: m.static_power_w),
    )
    return _PointsView(config, values, energy)


def simulate_points(
    graph: Graph,
    config: AccelConfig | str,
    columns: Mapping[str, np.ndarray],
    n: int,
    *,
    recipes: RecipeFile | None = None,
) -> dict[str, np.ndarray]:
    """Whole-graph totals (`METRICS`) of `n` design points that share `config`'s code-shaping
    parameters and differ in the `ARRAY_PARAMS` given in `columns`: the per-point model
    (`simulate_graph`, summed over layers in node order) evaluated on arrays, equal to it bit for
    bit. Tile choices and layer shapes are computed once for all `n` points."""
    config = load_config(config)
    recipes = recipes or load_recipes()
    view = points_view(config, columns)
    precision = sim._precision_of(graph)
    tot = {k: np.zeros(n) for k in METRICS}
    for node in graph.nodes:
        try:
            s = layer_shape(graph, node, config)
        except NotAccelerated as exc:
            lc = sim.host_cost(graph, node, view, str(exc))
            cycles, latency, breakdown = lc.cycles, lc.latency_s, lc.energy_breakdown
        else:
            t = layer_terms(s, tile_choice(s, config, recipes, precision), view)
            cycles, latency, breakdown = t.cycles, t.latency, t.breakdown
        tot["latency_s"] = tot["latency_s"] + latency
        tot["energy_j"] = tot["energy_j"] + sum(breakdown.values())
        tot["cycles"] = tot["cycles"] + cycles
        for k in ENERGY_COMPONENTS:
            tot[f"energy_{k}_j"] = tot[f"energy_{k}_j"] + breakdown.get(k, 0.0)
    return tot
