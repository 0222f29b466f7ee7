"""The accelerator's instruction-level simulator: executes a `Program` (bit-exact with the reference
executor) and times it; whole-graph simulation and verification.

Timing model (docs/accel-isa.md has the full statement):

- Three in-order queues (load, compute, store), each instruction starting when its queue is free;
  `WAIT` blocks a queue until the named token has been `SIGNAL`led, and a token carries the time at
  which every earlier instruction of the signalling queue had completed. Events are processed in
  time order across the queues.
- DMA: a transfer moves whole bursts per contiguous DRAM run; it occupies its engine for
  max(burst bytes / engine bandwidth, scratchpad bytes / slot bandwidth) and the shared DRAM
  channel for burst bytes / DRAM bandwidth (reservations in time order: two engines streaming at
  once share the channel); its data is there `latency_cycles` later (latency is pipelined: the
  engine issues the next transfer meanwhile). With one engine, loads and stores share it.
- VMAC: `micro-ops x cycles per micro-op` (1, or 4 for 16x16 on the 8x8 lanes), or longer when
  an operand's scratchpad cannot keep up: an operand is re-fetched only when its address changes
  beyond what its registers hold (`register_file`: accumulators per lane, weight and activation
  vectors): for each operand the outermost sub-nest of loops whose distinct addresses fit in its
  registers is held, and everything outside it re-fetches. Accumulator fetches are
  read-modify-writes. Plus pipeline fill/drain and issue cycles per instruction.
- Scratchpads: banks are word-interleaved; a vector access of W bytes at byte address a touches
  ceil((a mod width + W) / width) words and takes ceil(words / banks of its slot) cycles (bank
  conflicts of misaligned or wide vectors). With double buffering the banks are split between
  the two slots, so a DMA filling one slot never conflicts with the compute reading the other;
  with one slot, the tokens serialise DMA and compute on a buffer anyway.
- Vector ALU: `BIAS` writes one lane-vector of accumulators per cycle, `REQUANT` processes
  `alu_lanes` elements per cycle (one 32x32 multiplier each), `VADD` a third of that (three
  multiplies per element), `VPACK` / `VUNPACK` one lane-vector per cycle; each bounded by its
  buffers' bandwidth.

Energy: MACs issued (padding lanes included) x energy per MAC of the mode, ALU operations,
scratchpad and register-file bytes x their per-byte energies, DRAM bytes (whole bursts) x
DRAM energy, static power x latency (`accelsim.accel.arch.EnergyModel`).

Layers the accelerator does not run (pooling, softmax, quantize, reshapes, ...) are costed on the
host core (`accelerator.host` of the target): a roofline of element operations and bytes moved,
plus a call overhead; views (flatten / reshape) cost nothing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from accelsim.accel import alu, isa
from accelsim.accel.arch import AccelConfig, load_config
from accelsim.accel.codegen import Template, build_template, generate
from accelsim.accel.compute import LayerDef, NotAccelerated, layer_def
from accelsim.accel.schedule import (
    AccelRecipe,
    TileChoice,
    choose_tiles,
    load_recipes,
    schedule_layer,
)
from accelsim.core.cost import LayerCost
from accelsim.core.errors import AccelsimError
from accelsim.model.graph import Graph, Node
from accelsim.model.ops import node_macs
from accelsim.model.quantization import graph_precision

FIDELITY = "accel-sim"
COMPUTE_IDLE_MAX = 0.05


class SimulationError(AccelsimError):
    """A program the simulator cannot run (deadlock, capacity, out-of-range operand)."""


# ------------------------------------------------------------------------------------------------
# results
# ------------------------------------------------------------------------------------------------


@dataclass
class Stats:
    cycles: float = 0.0
    busy: dict[str, float] = field(
        default_factory=lambda: {"load": 0.0, "compute": 0.0, "store": 0.0, "dram": 0.0}
    )
    counts: dict[str, int] = field(default_factory=dict)
    dram_read: float = 0.0  # bytes on the DRAM bus (whole bursts)
    dram_write: float = 0.0
    dram_payload: float = 0.0  # bytes the layer actually needs
    spad_read: dict[str, float] = field(default_factory=dict)
    spad_write: dict[str, float] = field(default_factory=dict)
    rf_bytes: float = 0.0
    macs_issued: float = 0.0  # lane MACs incl. padding lanes
    mac_energy_pj: float = 0.0
    alu_energy_pj: float = 0.0
    instructions: int = 0

    def spad(self, space: str, read: float = 0.0, write: float = 0.0) -> None:
        if read:
            self.spad_read[space] = self.spad_read.get(space, 0.0) + read
        if write:
            self.spad_write[space] = self.spad_write.get(space, 0.0) + write


@dataclass(frozen=True)
class ProgramResult:
    """What running one program gives: time, energy split, traffic, and (when executed) the
    DRAM contents afterwards."""

    cycles: float
    latency_s: float
    energy_j: float
    energy_breakdown: Mapping[str, float]
    bound: str
    bytes_moved: Mapping[str, float]
    busy: Mapping[str, float]
    counts: Mapping[str, int]
    instructions: int
    dram: Mapping[str, np.ndarray] | None = None


# ------------------------------------------------------------------------------------------------
# index helpers
# ------------------------------------------------------------------------------------------------


def _grid(base: int, loops, j: int, keep: list[bool] | None = None) -> np.ndarray:
    """base + sum_k arange(e_k) * stride_k[j] as an array of shape (e_1, ..., e_n) (size 1 for
    loops not kept)."""
    n = len(loops)
    out = np.asarray(base, dtype=np.int64).reshape((1,) * n)
    for k, lp in enumerate(loops):
        if keep is not None and not keep[k]:
            continue
        shape = [1] * n
        shape[k] = lp[0]
        out = out + (np.arange(lp[0], dtype=np.int64) * lp[j]).reshape(shape)
    return out


def _dma_index(base: int, dims, stride_attr: str, valid_only: bool) -> np.ndarray:
    idx = np.asarray(base, dtype=np.int64).reshape((1,) * len(dims))
    for k, d in enumerate(dims):
        shape = [1] * len(dims)
        if valid_only:
            n = d.extent - d.pad_before - d.pad_after
            ar = np.arange(max(n, 0), dtype=np.int64)
        else:
            ar = np.arange(d.extent, dtype=np.int64)
        shape[k] = ar.size
        idx = idx + (ar * getattr(d, stride_attr)).reshape(shape)
    return idx


def _reuse_fetches(loops, j: int, capacity: int) -> float:
    """Fetches of an operand whose registers hold `capacity` vectors (see the module doc)."""
    n = len(loops)
    total = 1
    for lp in loops:
        total *= lp[0]
    best = total  # re-fetch every micro-op
    distinct = 1
    outer = total
    for k in range(n - 1, -1, -1):
        e, s = loops[k][0], loops[k][j]
        if s != 0:
            distinct *= e
        outer //= e
        if distinct <= capacity:
            best = outer * distinct
        else:
            break
    return float(best)


# ------------------------------------------------------------------------------------------------
# the simulator
# ------------------------------------------------------------------------------------------------


def alu_execute(ins: isa.AluInstr, args: list[np.ndarray]) -> np.ndarray:
    """The vector ALU's element-wise instruction on its gathered operands (`accelsim.accel.alu`)."""
    if isinstance(ins, isa.VLut):
        return alu.lookup(args[0], ins.lo, ins.table)
    if isinstance(ins, isa.VAddF):
        return alu.add_f32(*args, ins.ra, ins.rb, ins.fixed, ins.scalar, ins.qmin, ins.qmax)
    if isinstance(ins, isa.VMulF):
        return alu.mul_f32(*args, ins.zp_a, ins.zp_b, ins.zp_out, ins.ratio, ins.qmin, ins.qmax)
    if isinstance(ins, isa.VMul):
        return alu.mul(
            args[0],
            args[1],
            ins.zp_a,
            ins.zp_b,
            ins.zp_out,
            ins.m,
            ins.s,
            ins.wide,
            ins.qmin,
            ins.qmax,
        )
    return alu.add(
        args[0],
        args[1],
        zp_a=ins.zp_a,
        zp_b=ins.zp_b,
        zp_out=ins.zp_out,
        left_shift=ins.left_shift,
        m_a=ins.m_a,
        s_a=ins.s_a,
        m_b=ins.m_b,
        s_b=ins.s_b,
        m_out=ins.m_out,
        s_out=ins.s_out,
        qmin=ins.qmin,
        qmax=ins.qmax,
        sub=ins.sub,
    )


class Simulator:
    def __init__(
        self,
        program: isa.Program,
        config: AccelConfig,
        execute: bool = False,
        dram: Mapping[str, np.ndarray] | None = None,
    ):
        self.p = program
        self.c = config
        self.execute = execute
        self.stats = Stats()
        self.mem: dict[tuple[str, int], np.ndarray] = {}
        self.dram: dict[str, np.ndarray] = {}
        self._check_capacity()
        if execute:
            for name, t in program.dram.items():
                if t.role == "output":
                    self.dram[name] = np.zeros(t.elements, np.int64)
                else:
                    if dram is None or name not in dram:
                        raise SimulationError(
                            f"program '{program.name}': no data for DRAM tensor '{name}'"
                        )
                    arr = np.asarray(dram[name], dtype=np.int64).reshape(-1)
                    if arr.size != t.elements:
                        raise SimulationError(
                            f"program '{program.name}': DRAM tensor '{name}' "
                            f"has {arr.size} elements, expected {t.elements}"
                        )
                    self.dram[name] = arr
            for b in program.buffers.values():
                for s in range(b.slots):
                    self.mem[(b.name, s)] = np.zeros(b.elements, np.int64)

    def _check_capacity(self) -> None:
        used: dict[str, int] = {}
        for b in self.p.buffers.values():
            sp = self.c.scratchpads.get(b.space)
            if sp is None:
                raise SimulationError(
                    f"program '{self.p.name}': buffer '{b.name}' in unknown scratchpad '{b.space}'"
                )
            used[b.space] = max(used.get(b.space, 0), b.address + b.slot_bytes)
            cap = sp.size_bytes // b.slots if b.slots > 1 else sp.size_bytes
            if b.address + b.slot_bytes > cap:
                raise SimulationError(
                    f"program '{self.p.name}': buffer '{b.name}' "
                    f"({b.slot_bytes} B x {b.slots} slots at {b.address}) "
                    f"exceeds scratchpad '{b.space}' ({sp.size_bytes} B)"
                )

    # -- bank / bandwidth helpers ----------------------------------------------------------------
    def _access_cycles(self, buf: str, elem_offset: int, nbytes: float) -> float:
        b = self.p.buffers[buf]
        sp = self.c.scratchpads[b.space]
        width = sp.bank_width_bytes
        addr = b.address + int(elem_offset * b.bits / 8)
        words = math.ceil(((addr % width) + nbytes) / width)
        return math.ceil(words / sp.slot_banks(b.slots))

    def _bw(self, buf: str) -> float:
        b = self.p.buffers[buf]
        return self.c.scratchpads[b.space].bytes_per_cycle(b.slots)

    def _space(self, buf: str) -> str:
        return self.p.buffers[buf].space

    # -- per-instruction cost and semantics -----------------------------------------------------
    def dma_cost(self, ins) -> tuple[float, float, float, str, float]:
        """(engine cycles, dram bus bytes, spad bytes, buffer, payload bytes) of a LOAD/STORE."""
        ref = ins.dst if isinstance(ins, isa.Load) else ins.src
        dref = ins.src if isinstance(ins, isa.Load) else ins.dst
        t = self.p.dram[dref.tensor]
        b = self.p.buffers[ref.buf]
        dims = ins.dims
        valid = 1
        total = 1
        for d in dims:
            valid *= max(d.extent - d.pad_before - d.pad_after, 0)
            total *= d.extent
        # contiguous DRAM runs: the DRAM side of the transfer, whatever the scratchpad layout
        # (the engine scatters a run into padded scratchpad rows)
        run = 1
        for d in reversed(dims):
            n = max(d.extent - d.pad_before - d.pad_after, 0)
            if d.dram_stride == run or n == 1:
                run *= n
            else:
                break
        runs = valid / run if run else 0
        run_bytes = math.ceil(run * t.bits / 8)
        burst = self.c.dma_burst_bytes
        bus = runs * math.ceil(run_bytes / burst) * burst if run else 0.0
        payload = valid * t.bits / 8
        spad_bytes = total * b.bits / 8 if isinstance(ins, isa.Load) else total * t.bits / 8
        cycles = max(bus / self.c.dma_bytes_per_cycle, spad_bytes / self._bw(ref.buf), 1.0)
        return cycles, bus, spad_bytes, ref.buf, payload

    def do_load(self, ins: isa.Load) -> None:
        if not self.execute:
            return
        dst = self.mem[(ins.dst.buf, ins.dst.slot)]
        full = _dma_index(ins.dst.base, ins.dims, "spad_stride", False)
        dst[full.reshape(-1)] = ins.pad
        n_valid = [d.extent - d.pad_before - d.pad_after for d in ins.dims]
        if min(n_valid) <= 0:
            return
        dst_base = ins.dst.base + sum(d.pad_before * d.spad_stride for d in ins.dims)
        didx = _dma_index(dst_base, ins.dims, "spad_stride", True)
        sidx = _dma_index(ins.src.base, ins.dims, "dram_stride", True)
        src = self.dram[ins.src.tensor]
        if sidx.min() < 0 or sidx.max() >= src.size:
            raise SimulationError(
                f"program '{self.p.name}': LOAD reads outside DRAM tensor '{ins.src.tensor}'"
            )
        dst[didx.reshape(-1)] = src[sidx.reshape(-1)]

    def do_store(self, ins: isa.Store) -> None:
        if not self.execute:
            return
        src = self.mem[(ins.src.buf, ins.src.slot)]
        sidx = _dma_index(ins.src.base, ins.dims, "spad_stride", False)
        didx = _dma_index(ins.dst.base, ins.dims, "dram_stride", False)
        self.dram[ins.dst.tensor][didx.reshape(-1)] = src[sidx.reshape(-1)]

    def compute_cost(self, ins) -> float:
        c, st = self.c, self.stats
        issue = c.issue_cycles
        if isinstance(ins, isa.VMac):
            return self._vmac(ins) + issue
        if isinstance(ins, isa.Bias):
            e = math.prod(lp[0] for lp in ins.loops)
            ab = self.p.buffers[ins.acc.buf].bits / 8
            bb = self.p.buffers[ins.bias.buf].bits / 8
            # the per-channel bias is held in the ALU's parameter registers (one per lane)
            # while the pixel loops reuse it
            fb = _reuse_fetches(ins.loops, 2, c.lanes)
            st.spad("acc", write=e * ab)
            st.spad(self._space(ins.bias.buf), read=fb * bb)
            work = e / c.lanes
            sram = max(e * ab / self._bw(ins.acc.buf), fb * bb / self._bw(ins.bias.buf))
            if self.execute:
                acc = self.mem[(ins.acc.buf, ins.acc.slot)]
                bias = self.mem[(ins.bias.buf, ins.bias.slot)]
                acc[_grid(ins.acc.base, ins.loops, 1).reshape(-1)] = bias[
                    _grid(ins.bias.base, ins.loops, 2).reshape(-1)
                ]
            return max(work, sram, 1.0) + issue
        if isinstance(ins, isa.Requant):
            e = math.prod(lp[0] for lp in ins.loops)
            ab = self.p.buffers[ins.acc.buf].bits / 8
            ob = self.p.buffers[ins.out.buf].bits / 8
            fp = _reuse_fetches(ins.loops, 3, c.lanes)  # multiplier + shift, as BIAS
            pb = (self.p.buffers[ins.mult.buf].bits + self.p.buffers[ins.shift.buf].bits) / 8
            st.spad("acc", read=e * ab)
            st.spad(self._space(ins.out.buf), write=e * ob)
            st.spad(self._space(ins.mult.buf), read=fp * pb)
            st.alu_energy_pj += e * c.energy.requant_of(ins.wide, ins.fscale)
            work = ins.passes * e / c.alu_lanes
            sram = max(
                e * ab / self._bw(ins.acc.buf),
                e * ob / self._bw(ins.out.buf),
                fp * pb / self._bw(ins.mult.buf),
            )
            if self.execute:
                acc = self.mem[(ins.acc.buf, ins.acc.slot)]
                out = self.mem[(ins.out.buf, ins.out.slot)]
                m = self.mem[(ins.mult.buf, ins.mult.slot)]
                s = self.mem[(ins.shift.buf, ins.shift.slot)]
                ai = _grid(ins.acc.base, ins.loops, 2).reshape(-1)
                pi = _grid(ins.mult.base, ins.loops, 3).reshape(-1)
                si = _grid(ins.shift.base, ins.loops, 3).reshape(-1)
                oi = _grid(ins.out.base, ins.loops, 1).reshape(-1)
                if ins.fscale == "float64":
                    out[oi] = alu.requantize_f64(acc[ai], m[pi], s[si], ins.zp, ins.qmin, ins.qmax)
                elif ins.fscale == "float32":
                    out[oi] = alu.requantize_f32(acc[ai], m[pi], ins.zp, ins.qmin, ins.qmax)
                else:
                    out[oi] = alu.requantize(
                        acc[ai], m[pi], s[si], ins.zp, ins.qmin, ins.qmax, ins.wide
                    )
            return max(work, sram, 1.0) + issue
        if isinstance(ins, (isa.VAdd, isa.VMul, isa.VAddF, isa.VMulF, isa.VLut)):
            e = math.prod(lp[0] for lp in ins.loops)
            roles = ("a", "b") if not isinstance(ins, isa.VLut) else ("a",)
            bits = {k: self.p.buffers[getattr(ins, k).buf].bits / 8 for k in ("out", *roles)}
            for k in roles:  # a broadcast operand (stride 0) is read again for every element
                st.spad(self._space(getattr(ins, k).buf), read=e * bits[k])
            st.spad(self._space(ins.out.buf), write=e * bits["out"])
            st.alu_energy_pj += e * getattr(c.energy, ins.ENERGY)
            work = ins.PASSES * e / c.alu_lanes
            table = 0.0
            if isinstance(ins, isa.VLut):  # the table broadcast into the lanes' copies
                table = len(ins.table) * bits["out"] / c.alu_lanes
            sram = max(
                e * sum(bits[k] for k in roles) / self._bw(ins.a.buf),
                e * bits["out"] / self._bw(ins.out.buf),
            )
            if self.execute:
                out = self.mem[(ins.out.buf, ins.out.slot)]
                oi = _grid(ins.out.base, ins.loops, 1).reshape(-1)
                args = [
                    self.mem[(r.buf, r.slot)][_grid(r.base, ins.loops, 2 + i).reshape(-1)]
                    for i, r in enumerate(getattr(ins, k) for k in roles)
                ]
                out[oi] = alu_execute(ins, args)
            return max(work, sram, 1.0) + table + issue
        if isinstance(ins, (isa.VPack, isa.VUnpack)):
            n = ins.count
            sp = self._space(ins.buf.buf)
            packed, lanes = n * 0.5, n * 1.0
            st.spad(
                sp,
                read=lanes if isinstance(ins, isa.VPack) else packed,
                write=packed if isinstance(ins, isa.VPack) else lanes,
            )
            st.alu_energy_pj += n * c.energy.pack_pj
            if self.execute:
                region = self.mem[(ins.buf.buf, ins.buf.slot)][ins.buf.base : ins.buf.base + n]
                if region.size and (region.min() < -8 or region.max() > 7):
                    raise SimulationError(
                        f"program '{self.p.name}': {ins.OPCODE} of values outside the int4 range"
                    )
            return max(n / c.lanes, (packed + lanes) / self._bw(ins.buf.buf), 1.0) + issue
        raise SimulationError(f"no timing for {ins.OPCODE}")

    def _vmac(self, ins: isa.VMac) -> float:
        c, st = self.c, self.stats
        mode = c.mode(ins.mode)
        loops = ins.loops
        u = math.prod(lp[0] for lp in loops)
        L, D = ins.lanes, ins.depth
        bufs = self.p.buffers
        abits, wbits = bufs[ins.act.buf].bits, bufs[ins.wgt.buf].bits
        accb = bufs[ins.acc.buf].bits / 8
        if ins.kind == "bcast":
            act_vec, wgt_vec = D * abits / 8, L * D * wbits / 8
            macs = u * L * D
            st.mac_energy_pj += macs * c.energy.mac_pj[ins.mode]
        else:
            act_vec, wgt_vec = L * abits / 8, L * wbits / 8
            macs = u * L
            st.mac_energy_pj += macs * c.energy.mac_pj_elem[ins.mode]
        st.macs_issued += macs
        acc_vec = L * accb
        f_act = _reuse_fetches(loops, 2, c.act_registers)
        f_wgt = _reuse_fetches(loops, 3, c.weight_registers)
        f_acc = _reuse_fetches(loops, 1, c.acc_registers)
        st.spad(self._space(ins.act.buf), read=f_act * act_vec)
        st.spad(self._space(ins.wgt.buf), read=f_wgt * wgt_vec)
        st.spad("acc", read=f_acc * acc_vec, write=f_acc * acc_vec)
        st.rf_bytes += 2 * u * acc_vec  # accumulator register read + write per micro-op
        acc_sp = c.scratchpads["acc"]
        rmw = 1 if acc_sp.ports == 2 else 2
        cyc = max(
            u * mode.cycles,
            f_act * self._access_cycles(ins.act.buf, ins.act.base, act_vec),
            f_wgt * self._access_cycles(ins.wgt.buf, ins.wgt.base, wgt_vec),
            rmw * f_acc * self._access_cycles(ins.acc.buf, ins.acc.base, acc_vec),
        )
        if self.execute:
            self._vmac_exec(ins)
        return cyc + c.pipeline_cycles

    def _vmac_exec(self, ins: isa.VMac) -> None:
        loops = ins.loops
        L, D = ins.lanes, ins.depth
        n = len(loops)
        act = self.mem[(ins.act.buf, ins.act.slot)]
        wgt = self.mem[(ins.wgt.buf, ins.wgt.slot)]
        acc = self.mem[(ins.acc.buf, 0)]
        keep_w = [lp[3] != 0 for lp in loops]
        keep_a = [lp[2] != 0 for lp in loops]
        ai = _grid(ins.act.base, loops, 2, keep_a)
        wi = _grid(ins.wgt.base, loops, 3, keep_w)
        if ins.kind == "bcast":
            A = act[ai[..., None] + np.arange(D)]  # (..., D)
            W = wgt[wi[..., None, None] + (np.arange(L)[:, None] * D + np.arange(D))]  # (..., L, D)
            prod = np.matmul(W, A[..., :, None])[..., 0]  # (..., L)
        else:
            A = act[ai[..., None] + np.arange(L)]
            W = wgt[wi[..., None] + np.arange(L)]
            prod = A * W
        full = tuple(lp[0] for lp in loops) + (L,)
        prod = np.broadcast_to(prod, full)
        red = tuple(k for k in range(n) if loops[k][1] == 0)
        if red:
            prod = prod.sum(axis=red)
        keep_c = [lp[1] != 0 for lp in loops]
        ci = _grid(ins.acc.base, [lp for lp, k in zip(loops, keep_c) if k], 1)
        idx = (ci[..., None] + np.arange(L)).reshape(-1)
        vals = acc[idx] + prod.reshape(-1)
        bits = self.p.buffers[ins.acc.buf].bits
        acc[idx] = alu.saturate(vals, bits) if self.c.saturate else alu.wrap(vals, bits)

    # -- the event loop ---------------------------------------------------------------------------
    def run(self) -> ProgramResult:
        c, st = self.c, self.stats
        queues: dict[str, list[isa.Instr]] = {q: [] for q in isa.QUEUES}
        for ins in self.p.instructions:
            queues[ins.queue].append(ins)
            st.counts[ins.OPCODE] = st.counts.get(ins.OPCODE, 0) + 1
        st.instructions = len(self.p.instructions)
        pos = {q: 0 for q in queues}
        free = {q: 0.0 for q in queues}
        done = {q: 0.0 for q in queues}
        tokens: dict[str, list[float]] = {}
        dram_free = 0.0
        engine_free = {"load": 0.0, "store": 0.0}
        shared = c.dma_engines == 1
        remaining = sum(len(v) for v in queues.values())
        while remaining:
            best_q, best_t = None, None
            for q, lst in queues.items():
                i = pos[q]
                if i >= len(lst):
                    continue
                ins = lst[i]
                t = free[q]
                if isinstance(ins, isa.Wait):
                    avail = tokens.get(ins.token)
                    if not avail:
                        continue
                    t = max(t, avail[0])
                elif isinstance(ins, (isa.Load, isa.Store)):
                    eng = "load" if (shared or isinstance(ins, isa.Load)) else "store"
                    t = max(t, engine_free[eng])
                if best_t is None or t < best_t:
                    best_q, best_t = q, t
            if best_q is None:
                heads = ", ".join(
                    f"{q}: {queues[q][pos[q]].text()}" for q in queues if pos[q] < len(queues[q])
                )
                raise SimulationError(f"program '{self.p.name}': deadlock ({heads})")
            q = best_q
            ins = queues[q][pos[q]]
            pos[q] += 1
            remaining -= 1
            start = best_t
            if isinstance(ins, isa.Wait):
                tokens[ins.token].pop(0)
                free[q] = start
            elif isinstance(ins, isa.Signal):
                tokens.setdefault(ins.token, []).append(max(done[q], free[q]))
            elif isinstance(ins, (isa.Load, isa.Store)):
                cycles, bus, spad_bytes, buf, payload = self.dma_cost(ins)
                d0 = max(start, dram_free)
                d1 = d0 + bus / c.dram_bytes_per_cycle
                dram_free = d1
                st.busy["dram"] += d1 - d0
                end = max(start + cycles, d1)
                eng = "load" if (shared or isinstance(ins, isa.Load)) else "store"
                engine_free[eng] = end
                st.busy[q] += end - start
                free[q] = end
                done[q] = max(done[q], end + c.dma_latency_cycles)
                st.dram_payload += payload
                if isinstance(ins, isa.Load):
                    st.dram_read += bus
                    st.spad(self._space(buf), write=spad_bytes)
                    self.do_load(ins)
                else:
                    st.dram_write += bus
                    st.spad(self._space(buf), read=spad_bytes)
                    self.do_store(ins)
            else:
                dur = self.compute_cost(ins)
                st.busy["compute"] += dur
                free[q] = start + dur
                done[q] = free[q]
        st.cycles = max(max(done.values()), max(free.values()))
        return self._result()

    def _result(self) -> ProgramResult:
        c, st = self.c, self.stats
        e = c.energy
        latency = st.cycles / c.clock_hz
        onchip = (
            sum(
                st.spad_read.get(s, 0.0) * e.sram_pj_per_byte[s]
                + st.spad_write.get(s, 0.0) * e.sram_pj_per_byte[s]
                for s in c.scratchpads
            )
            + st.rf_bytes * e.rf_pj_per_byte
        )
        breakdown = {
            "compute": (st.mac_energy_pj + st.alu_energy_pj) * 1e-12,
            "onchip_memory": onchip * 1e-12,
            "offchip_memory": (st.dram_read + st.dram_write) * e.dram_pj_per_byte * 1e-12,
            "static": e.static_power_w * latency,
        }
        memory_busy = max(st.busy["load"], st.busy["store"], st.busy["dram"])
        # compute-bound: the compute queue is the busiest resource and is kept busy (idle, i.e.
        # waiting on a DMA or on the final store, for at most COMPUTE_IDLE_MAX of the time);
        # otherwise data movement (bandwidth or exposed latency) sets the time
        idle = st.cycles - st.busy["compute"]
        bound = (
            "compute"
            if st.busy["compute"] >= memory_busy and idle <= COMPUTE_IDLE_MAX * st.cycles
            else "memory"
        )
        moved = {
            "dram": st.dram_read + st.dram_write,
            "dram_read": st.dram_read,
            "dram_write": st.dram_write,
            "dram_payload": st.dram_payload,
        }
        for s in c.scratchpads:
            moved[s] = st.spad_read.get(s, 0.0) + st.spad_write.get(s, 0.0)
        moved["register_file"] = st.rf_bytes
        return ProgramResult(
            st.cycles,
            latency,
            sum(breakdown.values()),
            breakdown,
            bound,
            moved,
            dict(st.busy),
            dict(st.counts),
            st.instructions,
            dict(self.dram) if self.execute else None,
        )


def run_program(
    program: isa.Program,
    config: AccelConfig | str = "simd-accel",
    *,
    execute: bool = False,
    dram: Mapping[str, np.ndarray] | None = None,
) -> ProgramResult:
    """Time (and with `execute`, run on the `dram` inputs) one program."""
    return Simulator(program, load_config(config), execute, dram).run()


# ------------------------------------------------------------------------------------------------
# compiling a graph
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class CompiledLayer:
    node: Node
    ld: LayerDef | None  # None: runs on the host
    program: isa.Program | None
    choice: TileChoice | None
    reason: str = ""  # why it runs on the host
    key: str = ""  # structural key (same key: same instruction stream shape)
    recipe: AccelRecipe | None = None  # the schedule recipe the program was built with


_TEMPLATES: dict[str, tuple[TileChoice, Template, AccelRecipe]] = {}
_TIMES: dict[tuple[str, str], ProgramResult] = {}
# layers scheduled through TVM (template cache misses) and layers that reused a template
_STATS = {"scheduled": 0, "template_hits": 0}


def compile_stats() -> dict[str, int]:
    """TVM schedulings this process has run and template reuses (identical layers)."""
    return dict(_STATS)


def _precision_of(graph: Graph) -> str:
    return graph_precision(graph).name


def compile_node(graph: Graph, node: Node, config: AccelConfig, recipes=None) -> CompiledLayer:
    try:
        ld = layer_def(graph, node, config)
    except NotAccelerated as exc:
        return CompiledLayer(node, None, None, None, str(exc))
    recipes = recipes or load_recipes()
    recipe = recipes.recipe(ld.op_class, ld.mode or _precision_of(graph))
    key = json.dumps(
        [ld.signature, ld.mode, config.codegen_key(), recipes.path, repr(recipe)],
        sort_keys=True,
        default=str,
    )
    hit = _TEMPLATES.get(key)
    if hit is None:
        choice = choose_tiles(ld, recipe, config)
        mod = schedule_layer(ld, choice, recipe)
        hit = (choice, build_template(mod, ld), recipe)
        _TEMPLATES[key] = hit
        _STATS["scheduled"] += 1
    else:
        _STATS["template_hits"] += 1
    choice, template, recipe = hit
    program = generate(ld, choice, template, config)
    return CompiledLayer(node, ld, program, choice, "", key, recipe)


def compile_graph(
    graph: Graph, config: AccelConfig | str = "simd-accel", recipes=None, progress=None
) -> list[CompiledLayer]:
    """One `CompiledLayer` per node; `progress(done)` after each."""
    config = load_config(config)
    out = []
    for i, n in enumerate(graph.nodes):
        out.append(compile_node(graph, n, config, recipes))
        if progress is not None:
            progress(i + 1)
    return out


# ------------------------------------------------------------------------------------------------
# the host core
# ------------------------------------------------------------------------------------------------

_VIEWS = ("reshape", "flatten", "squeeze", "identity")
_HOST_WORK = {
    "softmax": 8.0,
    "quantize": 2.0,
    "dequantize": 2.0,
    "global_avg_pool": 1.0,
    "mean": 1.0,
}


def host_cost(graph: Graph, node: Node, config: AccelConfig, reason: str) -> LayerCost:
    h = config.host
    ins = [graph.tensors[t] for t in node.inputs if t and not graph.is_constant(t)]
    outs = [graph.tensors[t] for t in node.outputs]
    nbytes = sum(t.nbytes for t in ins) + sum(t.nbytes for t in outs)
    if node.op in _VIEWS:
        return LayerCost(
            node.name,
            node.op,
            0,
            0.0,
            0.0,
            0.0,
            {"compute": 0.0, "onchip_memory": 0.0, "offchip_memory": 0.0, "static": 0.0},
            "memory",
            0.0,
            FIDELITY,
            {"dram": 0.0},
            f"host core: view, no data movement ({reason})",
        )
    out_el = sum(t.size for t in outs)
    in_el = sum(t.size for t in ins)
    if node.op in ("max_pool", "avg_pool"):
        kh, kw = node.attr("kernel")
        work = out_el * kh * kw
    else:
        work = max(in_el, out_el) * _HOST_WORK.get(node.op, 1.0)
    compute_cycles = work / h.elements_per_cycle
    mem_cycles = nbytes / h.bytes_per_cycle
    host_cycles = max(compute_cycles, mem_cycles) + h.call_overhead_cycles
    latency = host_cycles / h.clock_hz
    e = config.energy
    breakdown = {
        "compute": h.power_w * latency,
        "onchip_memory": 0.0,
        "offchip_memory": nbytes * e.dram_pj_per_byte * 1e-12,
        "static": e.static_power_w * latency,
    }
    return LayerCost(
        node.name,
        node.op,
        node_macs(graph, node),
        latency * config.clock_hz,
        latency,
        sum(breakdown.values()),
        breakdown,
        "memory" if mem_cycles > compute_cycles else "compute",
        0.0,
        FIDELITY,
        {"dram": nbytes},
        f"host core ({reason}); cycles in accelerator clock cycles",
    )


# ------------------------------------------------------------------------------------------------
# graph-level entry points
# ------------------------------------------------------------------------------------------------


def layer_cost(layer: CompiledLayer, config: AccelConfig, result: ProgramResult) -> LayerCost:
    prog = layer.program
    peak = config.peak_macs_per_cycle(prog.precision) if layer.ld.mode else 0.0
    util = prog.macs / (result.cycles * peak) if peak and result.cycles else 0.0
    notes = (
        f"{layer.choice.dataflow.name} tiles {dict(layer.choice.tiles)}, "
        f"{result.instructions} instructions"
    )
    return LayerCost(
        prog.name,
        layer.ld.op_label,
        prog.macs,
        result.cycles,
        result.latency_s,
        result.energy_j,
        result.energy_breakdown,
        result.bound,
        util,
        FIDELITY,
        result.bytes_moved,
        notes,
    )


def simulate_graph(
    graph: Graph,
    config: AccelConfig | str = "simd-accel",
    *,
    execute: bool = False,
    feeds=None,
    recipes=None,
) -> list[LayerCost]:
    """One `LayerCost` per graph node (accelerated layers from the instruction-level simulator,
    the rest from the host model). `execute=True` also runs every program functionally on the
    reference executor's tensors for `feeds` (slower; `verify_graph` reports mismatches)."""
    config = load_config(config)
    values = None
    if execute:
        from accelsim.ref.executor import run

        values = run(graph, feeds if feeds is not None else _random_feeds(graph), keep=True)
    out = []
    for layer in compile_graph(graph, config, recipes):
        if layer.program is None:
            out.append(host_cost(graph, layer.node, config, layer.reason))
            continue
        tkey = (layer.key, config.key)
        res = None if execute else _TIMES.get(tkey)
        if res is None:
            dram = layer.ld.pack(values) if execute else None
            res = run_program(layer.program, config, execute=execute, dram=dram)
            if not execute:
                _TIMES[tkey] = res
        out.append(layer_cost(layer, config, res))
    return out


def _random_feeds(graph: Graph) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.standard_normal(graph.tensors[i].shape).astype(np.float32) for i in graph.inputs]


@dataclass(frozen=True)
class Mismatch:
    layer: str
    op: str
    mismatches: int
    elements: int
    max_abs_diff: int


def verify_graph(
    graph: Graph, config: AccelConfig | str = "simd-accel", feeds=None, recipes=None
) -> dict[str, int]:
    """Per accelerated layer, how many output elements of its program differ from the reference
    executor's tensor for that layer (each program is fed the reference's inputs)."""
    return {m.layer: m.mismatches for m in verify_layers(graph, config, feeds, recipes)}


def verify_layers(
    graph: Graph, config: AccelConfig | str = "simd-accel", feeds=None, recipes=None, progress=None
) -> list[Mismatch]:
    """Per accelerated layer, its program executed on the reference executor's inputs and
    compared element-wise with the reference's output; `progress(done)` after each node."""
    from accelsim.ref.executor import run

    config = load_config(config)
    values = run(graph, feeds if feeds is not None else _random_feeds(graph), keep=True)
    out = []
    for i, layer in enumerate(compile_graph(graph, config, recipes)):
        if progress is not None:
            progress(i + 1)
        if layer.program is None:
            continue
        res = run_program(layer.program, config, execute=True, dram=layer.ld.pack(values))
        y = layer.ld.unpack(res.dram["y"].reshape(layer.program.dram["y"].shape))
        ref = np.asarray(values[layer.ld.output]).astype(np.int64)
        y = y.reshape(ref.shape)
        diff = np.abs(y - ref)
        out.append(
            Mismatch(
                layer.node.name,
                layer.ld.op_label,
                int((diff != 0).sum()),
                int(ref.size),
                int(diff.max()) if diff.size else 0,
            )
        )
    return out
