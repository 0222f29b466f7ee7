"""One layer through our instruction-level simulator and through ZigZag (KU Leuven's analytical
DNN-accelerator cost model, `pip install accelsim[crosscheck]`), configured from the same
`AccelConfig`: the same MAC array, memory sizes, bandwidths and energies per access.

How the accelerator maps onto ZigZag's template (what each side models differs; see
`benchmarks/accel_crosscheck.py` for the numbers and docs/accel-isa.md for the discussion):

- operational array: D1 = `lanes` (output channels K, or channel groups G for depthwise),
  D2 = MACs per lane (input channels C summed in a lane's adder tree) when above 1; unit energy =
  our energy per MAC of the mode;
- registers: per-lane accumulators (O, `acc_registers` x accumulator bits), a per-lane weight
  register (I2) and one activation vector broadcast to every lane (I1, served along D1), each at
  our register-file energy per byte;
- scratchpads: `act` (I1), `wgt` (I2), `acc` (O), one double-buffer slot each (our tiles use one
  slot while the DMA fills the other), port width = the slot's banks x bank width, energy per
  access = our energy per byte x the port width; the `out` scratchpad has no ZigZag counterpart
  (ZigZag writes outputs at `O_final` precision straight up the O hierarchy);
- DRAM: the shared channel's bytes/cycle and our energy per byte.
Only 8-bit and 4-bit modes map (ZigZag's array cannot take a quarter MAC per unit per cycle, our
16x16 mode).
"""

from __future__ import annotations

import logging
import math
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from accelsim.accel.arch import AccelConfig
from accelsim.core.errors import AccelsimError


class CrosscheckError(AccelsimError):
    """A layer or design point the ZigZag mapping cannot express."""


def zigzag_missing() -> str | None:
    """None when ZigZag can be imported, else why not."""
    try:
        import zigzag.api  # noqa: F401
    except Exception as exc:  # an optional tool: any import failure means "not available"
        return f"zigzag-dse is not installed (pip install 'accelsim[crosscheck]'): {exc}"
    return None


@dataclass(frozen=True)
class ConvShape:
    """A conv / depthwise conv in ZigZag's loop dimensions (batch 1)."""

    name: str
    depthwise: bool
    k: int  # output channels (= G for depthwise)
    c: int  # input channels (1 for depthwise)
    oy: int
    ox: int
    fy: int
    fx: int
    stride: int
    pad: int
    wbits: int
    abits: int
    acc_bits: int
    obits: int

    @property
    def macs(self) -> int:
        return self.k * self.c * self.oy * self.ox * self.fy * self.fx


def conv_shape(signature: Mapping[str, Any], name: str) -> ConvShape:
    """From a compiled layer's signature (`LayerDef.signature`, NHWC shapes)."""
    cls = signature["class"]
    if cls != "conv2d":
        # depthwise: ZigZag 3.9.1 did not apply a spatial unrolling of G over the lanes in our
        # runs (one MAC per cycle), so its numbers would not describe the same array
        raise CrosscheckError(f"layer '{name}': {cls} has no ZigZag mapping here (conv2d only)")
    _, h, w, cin = signature["x"]
    fy, fx = signature["kernel"]
    sy, sx = signature["strides"]
    pads = signature.get("pads", [0, 0, 0, 0])
    oy = (h + pads[0] + pads[2] - fy) // sy + 1
    ox = (w + pads[1] + pads[3] - fx) // sx + 1
    if sy != sx or len(set(pads)) > 1 or list(signature.get("dilations", [1, 1])) != [1, 1]:
        raise CrosscheckError(f"layer '{name}': only square strides / symmetric padding map")
    dw = cls == "depthwise_conv2d"
    c = 1 if dw else cin
    k = cin if dw else signature["y"][3]
    wide = bool(signature.get("wide"))
    mode = signature.get("mode", "w8a8")
    wbits = int(mode[1 : mode.index("a")])
    abits = int(mode[mode.index("a") + 1 :])
    return ConvShape(
        name,
        dw,
        k,
        c,
        oy,
        ox,
        fy,
        fx,
        sy,
        pads[0],
        wbits,
        abits,
        64 if wide else 32,
        int(signature.get("obits", 8)),
    )


def _port(name: str, kind: str, bw: tuple[int, int], alloc: list[str]) -> dict:
    return {
        "name": name,
        "type": kind,
        "bandwidth_min": bw[0],
        "bandwidth_max": bw[1],
        "allocation": alloc,
    }


def _mem(
    size_bits: int,
    pj_per_byte: float,
    bw_bits: int,
    operands: list[str],
    served: list[str],
    two_ports: bool = False,
    word_bits: int | None = None,
) -> dict:
    """A ZigZag memory with ports `bw_bits` wide whose smallest access is `word_bits` (one bank
    word). ZigZag counts accesses of `bandwidth_max` bits, rounding each transfer up to whole
    `bandwidth_min` words, and charges r_cost / w_cost per access."""
    op = operands[0]
    bw = (word_bits or bw_bits, bw_bits)
    cost = pj_per_byte * bw_bits / 8
    if operands == ["O"]:
        ports = (
            [
                _port("r_port_1", "read", bw, ["O, tl", "O, th"]),
                _port("w_port_1", "write", bw, ["O, fh", "O, fl"]),
            ]
            if two_ports
            else [_port("rw_port_1", "read_write", bw, ["O, tl", "O, th", "O, fh", "O, fl"])]
        )
    elif len(operands) == 1:
        ports = [
            _port("r_port_1", "read", bw, [f"{op}, tl"]),
            _port("w_port_1", "write", bw, [f"{op}, fh"]),
        ]
    else:  # DRAM: one channel for everything
        alloc = []
        for o in operands:
            alloc += (
                [f"{o}, fh", f"{o}, tl", f"{o}, fl", f"{o}, th"]
                if o == "O"
                else [f"{o}, fh", f"{o}, tl"]
            )
        ports = [_port("rw_port_1", "read_write", bw, alloc)]
    return {
        "size": int(size_bits),
        "r_cost": cost,
        "w_cost": cost,
        "area": 0,
        "latency": 1,
        "operands": operands,
        "ports": ports,
        "served_dimensions": served,
    }


def zigzag_inputs(layer: ConvShape, config: AccelConfig) -> tuple[dict, list[dict], list[dict]]:
    """(hardware, workload, mapping) documents for ZigZag."""
    prec = f"w{layer.wbits}a{layer.abits}"
    mode = config.mode(prec)
    if mode.cycles != 1:
        raise CrosscheckError(
            f"{prec}: {mode.cycles} cycles per lane MAC (temporal 16x16 "
            f"decomposition) has no ZigZag operational-array equivalent"
        )
    depth = 1 if layer.depthwise else mode.depth
    e = config.energy
    mac_pj = (e.mac_pj_elem if layer.depthwise else e.mac_pj)[prec]
    dims = ["D1"] + (["D2"] if depth > 1 else [])
    sizes = [config.lanes] + ([depth] if depth > 1 else [])
    slots = config.slots
    sp = config.scratchpads

    def spad(name: str) -> tuple[int, int]:
        s = sp[name]
        size = s.size_bytes // slots if name != "acc" else s.size_bytes
        return size * 8, s.bytes_per_cycle(slots if name != "acc" else 1) * 8

    o_served = ["D2"] if depth > 1 else []
    memories = {
        "acc_regs": _mem(
            config.acc_registers * layer.acc_bits,
            e.rf_pj_per_byte,
            layer.acc_bits,
            ["O"],
            o_served,
            two_ports=True,
        ),
        "wgt_reg": _mem(
            config.weight_registers * layer.wbits, e.rf_pj_per_byte, layer.wbits, ["I2"], []
        ),
        "act_reg": _mem(
            config.act_registers * layer.abits * depth,
            e.rf_pj_per_byte,
            layer.abits * depth,
            ["I1"],
            ["D1"],
        ),
    }
    for name, opnd in (("act", "I1"), ("wgt", "I2"), ("acc", "O")):
        size, bw = spad(name)
        memories[f"spad_{name}"] = _mem(
            size,
            e.sram_pj_per_byte[name],
            bw,
            [opnd],
            dims,
            two_ports=sp[name].ports > 1,
            word_bits=sp[name].bank_width_bytes * 8,
        )
    dram_bw = int(round(config.dram_bytes_per_cycle * 8))
    memories["dram"] = _mem(
        10**12, e.dram_pj_per_byte, dram_bw, ["I1", "I2", "O"], dims, word_bits=8
    )
    hw = {
        "name": config.name,
        "memories": memories,
        "operational_array": {
            "unit_energy": mac_pj,
            "unit_area": 1,
            "dimensions": dims,
            "sizes": sizes,
        },
    }
    if layer.depthwise:
        eq = "O[b][g][oy][ox]+=W[g][fy][fx]*I[b][g][iy][ix]"
        loop_dims, loop_sizes = (
            ["B", "G", "OY", "OX", "FY", "FX"],
            [1, layer.k, layer.oy, layer.ox, layer.fy, layer.fx],
        )
        spatial = {"D1": [f"G, {config.lanes}"]}
    else:
        eq = "O[b][k][oy][ox]+=W[k][c][fy][fx]*I[b][c][iy][ix]"
        loop_dims = ["B", "K", "C", "OY", "OX", "FY", "FX"]
        loop_sizes = [1, layer.k, layer.c, layer.oy, layer.ox, layer.fy, layer.fx]
        spatial = {"D1": [f"K, {config.lanes}"]}
        if depth > 1:
            spatial["D2"] = [f"C, {depth}"]
    s = layer.stride
    wl = {
        "id": 0,
        "name": layer.name,
        "operator_type": "Conv",
        "equation": eq,
        "dimension_relations": [f"ix={s}*ox+1*fx", f"iy={s}*oy+1*fy"],
        "loop_dims": loop_dims,
        "loop_sizes": loop_sizes,
        "operand_precision": {
            "W": layer.wbits,
            "I": layer.abits,
            "O": layer.acc_bits,
            "O_final": layer.obits,
        },
        "operand_source": {"I": 0},
        "pr_loop_dims": ["IX", "IY"],
        "padding": [[layer.pad, layer.pad], [layer.pad, layer.pad]],
    }
    mapping = [
        {
            "name": "default",
            "spatial_mapping": spatial,
            "memory_operand_links": {"O": "O", "W": "I2", "I": "I1"},
        }
    ]
    return hw, [wl], mapping


@dataclass(frozen=True)
class ZigzagResult:
    macs: int
    ideal_cycles: float  # MACs / array size
    ideal_temporal_cycles: float  # with the spatial mapping's padding
    latency_cycles: float  # + stalls, on-loading and off-loading
    stall_cycles: float
    onloading_cycles: float
    offloading_cycles: float
    energy_pj: float
    mac_energy_pj: float
    memory_energy_pj: Mapping[str, float]  # per memory level name
    dram_bytes: Mapping[str, float]  # per operand (I, W, O): both directions
    temporal_mapping: str


def run_zigzag(layer: ConvShape, config: AccelConfig, lpf_limit: int = 6) -> ZigzagResult:
    """Best-latency mapping of `layer` found by ZigZag's LOMA search."""
    missing = zigzag_missing()
    if missing:
        raise CrosscheckError(missing)
    import yaml
    from zigzag.api import get_hardware_performance_zigzag

    hw, wl, mapping = zigzag_inputs(layer, config)
    logging.getLogger("zigzag").setLevel(logging.ERROR)  # "using the default mapping"
    with tempfile.TemporaryDirectory(prefix="accelsim-zigzag-") as tmp:
        t = Path(tmp)
        for name, doc in (("hw.yaml", hw), ("wl.yaml", wl), ("map.yaml", mapping)):
            (t / name).write_text(yaml.safe_dump(doc, sort_keys=False))
        root = logging.getLogger()
        level = root.level
        try:
            _, _, cmes = get_hardware_performance_zigzag(
                str(t / "wl.yaml"),
                str(t / "hw.yaml"),
                str(t / "map.yaml"),
                opt="latency",
                dump_folder=str(t / "out"),
                lpf_limit=lpf_limit,
                loma_show_progress_bar=False,
            )
        finally:
            root.setLevel(level)
    cme = cmes[0][1][0][0]
    hier = cme.accelerator.memory_hierarchy
    mem_e: dict[str, float] = {}
    dram: dict[str, float] = {}
    for layer_op, per_level in cme.mem_energy_breakdown.items():
        mem_op = cme.memory_operand_links.layer_to_mem_op(layer_op)
        levels = hier.get_memory_levels(mem_op=mem_op)
        for lvl, en in zip(levels, per_level):
            mem_e[lvl.name] = mem_e.get(lvl.name, 0.0) + float(en)
        top = levels[-1]
        acc = cme.memory_word_access[layer_op][-1]
        # the top level only exchanges with the level below it: reads out + writes in
        words = sum(float(v) for v in acc.data.values())
        dram[str(layer_op)] = words * _port_bits(top) / 8
    return ZigzagResult(
        int(cme.layer.total_mac_count),
        float(cme.ideal_cycle),
        float(cme.ideal_temporal_cycle),
        float(cme.latency_total2),
        float(cme.stall_slack_comb),
        float(cme.data_onloading_cycle),
        float(cme.data_offloading_cycle),
        float(cme.energy_total),
        float(cme.mac_energy),
        mem_e,
        dram,
        str(cme.temporal_mapping),
    )


def _port_bits(level) -> int:
    return int(level.memory_instance.ports[0].bw_max)  # ZigZag counts accesses of bw_max


def ideal_compute_cycles(layer: ConvShape, config: AccelConfig) -> int:
    """MACs / (lanes x MACs per lane), the array kept full: both models' lower bound."""
    prec = f"w{layer.wbits}a{layer.abits}"
    depth = 1 if layer.depthwise else config.mode(prec).depth
    return math.ceil(layer.macs / (config.lanes * depth))


# ------------------------------------------------------------------------------------------------
# side by side
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    quantity: str
    ours: float
    zigzag: float
    why: str

    @property
    def ratio(self) -> float:
        return self.ours / self.zigzag if self.zigzag else float("inf")


@dataclass(frozen=True)
class Comparison:
    layer: str
    shape: ConvShape
    precision: str
    rows: tuple[Row, ...]
    zigzag_mapping: str
    zigzag_dram: Mapping[str, float]  # DRAM bytes per operand (I, W, O) in ZigZag
    our_dram_payload: float  # bytes our layer needs at least (each tensor once)

    def row(self, quantity: str) -> Row:
        for r in self.rows:
            if r.quantity == quantity:
                return r
        raise KeyError(quantity)

    def to_dict(self) -> dict:
        import dataclasses

        return {
            "layer": self.layer,
            "precision": self.precision,
            "shape": dataclasses.asdict(self.shape),
            "zigzag_temporal_mapping": self.zigzag_mapping,
            "zigzag_dram_bytes": dict(self.zigzag_dram),
            "our_dram_payload_bytes": self.our_dram_payload,
            "rows": [
                {
                    "quantity": r.quantity,
                    "ours": r.ours,
                    "zigzag": r.zigzag,
                    "ratio": r.ratio,
                    "why": r.why,
                }
                for r in self.rows
            ],
        }


def array_cycles(program, config: AccelConfig) -> float:
    """Cycles the MAC array is issued by the program's VMACs (padding lanes included, no
    pipeline fill or issue overhead): what ZigZag calls the ideal temporal cycles."""
    from accelsim.accel import isa

    return float(
        sum(
            i.micro_ops * config.mode(i.mode).cycles
            for i in program.instructions
            if isinstance(i, isa.VMac)
        )
    )


def compare_node(graph, node_name: str, config: AccelConfig, lpf_limit: int = 4) -> Comparison:
    """Compile one node of a quantized graph for `config`, time its program, run the same
    layer through ZigZag, and line the numbers up."""
    from accelsim.accel.sim import compile_node, run_program

    layer = compile_node(graph, graph.node(node_name), config)
    if layer.program is None:
        raise CrosscheckError(
            f"node '{node_name}' does not run on the accelerator ({layer.reason})"
        )
    shape = conv_shape(layer.ld.signature, node_name)
    prec = f"w{shape.wbits}a{shape.abits}"
    ours = run_program(layer.program, config)
    zz = run_zigzag(shape, config, lpf_limit)
    e = config.energy
    outputs = shape.k * shape.oy * shape.ox
    requant_pj = e.requant_of(shape.acc_bits > 32, layer.ld.fscale) * outputs
    br = ours.energy_breakdown
    spad_zz = sum(v for k, v in zz.memory_energy_pj.items() if k.startswith("spad_"))
    reg_zz = sum(v for k, v in zz.memory_energy_pj.items() if k.endswith(("_reg", "_regs")))
    reg_ours = ours.bytes_moved["register_file"] * e.rf_pj_per_byte
    rows = (
        Row("MACs", layer.program.macs, zz.macs, "the same loop nest: must be identical"),
        Row(
            "ideal compute cycles (MACs / array size)",
            ideal_compute_cycles(shape, config),
            zz.ideal_cycles,
            "the same array (lanes x MACs per lane): must be identical",
        ),
        Row(
            "array cycles with spatial padding",
            array_cycles(layer.program, config),
            zz.ideal_temporal_cycles,
            "ours: VMAC micro-ops issued; ZigZag: ideal temporal cycles of its spatial "
            "mapping; equal when both pad output channels to the lanes the same way",
        ),
        Row(
            "compute-queue busy cycles",
            ours.busy["compute"],
            zz.ideal_temporal_cycles,
            "ours adds per-instruction issue, pipeline drain, BIAS and REQUANT on the ALU, "
            "and operand re-fetch stalls; ZigZag has no instruction or requantization cost",
        ),
        Row(
            "total cycles",
            ours.cycles,
            zz.latency_cycles,
            "ours: event-driven DMA/compute overlap with a 100-cycle DRAM latency per "
            "transfer and whole tiles loaded before compute starts; ZigZag: ideal temporal "
            "cycles + bandwidth stalls + on/off-loading of its first/last words, no DRAM "
            "latency",
        ),
        Row(
            "DRAM bytes",
            ours.bytes_moved["dram"],
            sum(zz.dram_bytes.values()),
            "ours: whole 64-byte bursts, the padded input halo of each tile, and per-channel "
            "bias / multiplier / shift (12 B per channel) that ZigZag's workload lacks; both "
            "fetch every operand once when the whole layer fits on chip. On large 3x3 layers "
            "ZigZag's best-latency mapping re-reads each input row FY times (no sliding-window "
            "reuse across its DRAM-level OY loop) while our row tiles fetch a halo once",
        ),
        Row(
            "DRAM energy (pJ)",
            br["offchip_memory"] * 1e12,
            zz.memory_energy_pj.get("dram", 0),
            "same energy per byte: the ratio is the DRAM-bytes ratio",
        ),
        Row(
            "MAC energy (pJ)",
            br["compute"] * 1e12 - requant_pj,
            zz.mac_energy_pj,
            "ours: compute energy less the requantization ALU; same energy per MAC and, "
            "without padding lanes, the same MAC count",
        ),
        Row(
            "register-file energy (pJ)",
            reg_ours,
            reg_zz,
            "ours: accumulator read-modify-writes and operand register fills by the register-"
            "blocking rule; ZigZag: from its own temporal mapping of the registers",
        ),
        Row(
            "scratchpad energy (pJ)",
            br["onchip_memory"] * 1e12 - reg_ours,
            spad_zz,
            "ours: bank-word accesses of the tiles our tiler chose, plus the output "
            "scratchpad; ZigZag: accesses of its best-latency mapping at the port width",
        ),
        Row(
            "energy without static (pJ)",
            (ours.energy_j - br["static"]) * 1e12,
            zz.energy_pj,
            "ZigZag has no static (leakage) energy and no requantization",
        ),
    )
    return Comparison(
        node_name,
        shape,
        prec,
        rows,
        zz.temporal_mapping,
        zz.dram_bytes,
        ours.bytes_moved["dram_payload"],
    )
