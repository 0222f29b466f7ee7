"""Per-operator TVM TE computes for the accelerator, and the numpy packing that feeds them.

One `LayerDef` per graph node the accelerator runs: conv2d (groups == 1), depthwise conv2d
(global average pools and spatial means too), dense, the element-wise ALU layers (add, sub,
mul, 8-bit pointwise tables) and data movement (transpose, slice). Its shape-level part, a
`LayerShape` (what the tiler and the analytic model read: the
geometry, tile axes, staged inputs, DRAM tensors), is derived here once, without TVM
(`layer_shape`); `layer_def` adds the TE compute and the packing. Integer semantics are those of `accelsim.ref.gemmlowp_ops`, bit for bit; the
requantization epilogue is written with the TIR expressions of `accelsim.lower.requant` (shared
with the CPU/DSP lowering).

Conventions (the accelerator's memory image):
- 4-D activations are NHWC in DRAM, whatever the graph's layout; 4-bit tensors are two per byte
  (the IR and the TE buffers hold one value per int8 element; the `DramTensor.bits` of the
  program's DRAM map say how they are stored).
- conv2d weights are packed `[O/lanes][KH][KW][I/depth][lanes][depth]` (the VMAC micro-op reads
  one `lanes x depth` block), dense `[O/lanes][I/depth][lanes][depth]`, depthwise `[KH][KW][C]`;
  output and input channels are zero-padded to whole blocks.
- The input zero point is folded into the bias (`bias - Z_x * sum(w)`, as gemmlowp and XNNPACK
  do), and padded taps read `Z_x`, so the MAC datapath multiplies raw operands and weights must
  be symmetric (zero point 0). The accumulator starts from the folded bias (the `BIAS`
  instruction), which is why the reduction's init is rewritten to `bias[c]` (TE's `te.sum(init=)`
  does not reach `create_prim_func`).

A node the accelerator cannot run raises `NotAccelerated` with the reason; it then runs on the
host core.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from accelsim.accel.alu import split_double
from accelsim.accel.intrin import vmac
from accelsim.accel.isa import DramTensor
from accelsim.core import requant as rp
from accelsim.core.errors import AccelsimError
from accelsim.core.qparams import DTYPE_BITS, QuantParams, dtype_range, store_dtype
from accelsim.core.tvm_env import import_tvm
from accelsim.lower.common import (
    NotLowered,
    _qclamp,
    _roundup,
    block_weights,
    contraction_acc,
    from_kernel_layout,
    pad_input,
    per_tensor_problem,
    tensor_layout,
    to_kernel_layout,
    unpacker,
)
from accelsim.lower.intrin import Intrinsic
from accelsim.lower.movement import LUT_OPS, pointwise_table
from accelsim.model.graph import Graph, Node, TensorInfo
from accelsim.model.ops import node_macs, op_class, spatial_axes
from accelsim.ref import qdq_ops


class NotAccelerated(AccelsimError):
    """A node the accelerator does not run (the message says why); it runs on the host."""


ALU_OPS = ("add", "sub", "mul")  # binary element-wise ops of the vector ALU (VADD, VMUL)
# and the pointwise functions of one 8-bit input it runs as a 256-entry table (VLUT)
ACCEL_OPS = ("conv2d", "dense", *ALU_OPS)
# averages over the spatial axes: depthwise convolutions with unit weights (`pool_as_depthwise`)
POOL_OPS = ("global_avg_pool", "mean")
# pure data movement: DMA programs, no compute (`transpose_def`)
MOVE_OPS = ("transpose", "slice")


@dataclass(frozen=True)
class TileAxis:
    """A loop of the main block that the tiler may split: `name.o` (tile loop) and `name.i`
    (loop inside the tile), plus `name.v` of `vector` elements when the axis is the lane axis.
    `extent` and `block` are in elements; tile sizes are multiples of `block` dividing `extent`."""

    name: str
    extent: int
    block: int
    reduce: bool = False
    vector: int = 0  # lanes split off as `name.v` (tensorized)
    unit: str = ""
    elems_per_iter: int = 1  # elements per iteration of the TE loop (ic: `depth`, with icv inside)


@dataclass(frozen=True)
class Staged:
    """A kernel input staged into a scratchpad. `box(cover)` gives the DRAM region (one extent per
    tensor dimension) when `cover[axis]` elements of each tile axis are covered."""

    tensor: str
    space: str
    bits: int  # bits per element in the scratchpad
    dram_bits: int
    box: Callable[[Mapping[str, int]], tuple[int, ...]]
    reader: str  # block reading it: "main", "init" or "epilogue"


@dataclass(frozen=True)
class Geometry:
    """Everything about a layer's shape the tiler, the compute and the cost formulas need."""

    # "bcast" (conv2d, dense), "elem" (depthwise), "alu" (element-wise: n = P, cin = cout = C),
    # "move" (data movement: n = tiled rows, cin = elements per row)
    kind: str
    n: int = 1
    h: int = 1
    w: int = 1
    cin: int = 1  # input channels (add: total elements)
    cout: int = 1
    kh: int = 1
    kw: int = 1
    sh: int = 1
    sw: int = 1
    dh: int = 1
    dw: int = 1
    pt: int = 0
    pl: int = 0
    pb: int = 0
    pr: int = 0
    oh: int = 1
    ow: int = 1
    cin_p: int = 1  # input channels padded to whole `depth` blocks
    cout_p: int = 1  # output channels padded to whole lane blocks
    depth: int = 1
    lanes: int = 1
    dense: bool = False


@dataclass(frozen=True, eq=False)
class LayerShape:
    """An accelerator layer as far as its shapes go: what the tiler (`schedule.choose_tiles`)
    and the analytic model read. No TVM."""

    node: Node
    op_class: str  # conv2d, depthwise_conv2d, dense, add
    mode: str  # wNaM of the MAC array ("" for add)
    wbits: int
    abits: int
    obits: int
    in_bits: tuple[int, ...]  # add: bits of each input
    wide: bool
    # "" (fixed point), "float64" (TFLite FULLY_CONNECTED) or "float32" (ONNX Runtime): the
    # REQUANT's scale (`isa.Requant.fscale`)
    fscale: str
    geom: Geometry
    tile_axes: tuple[TileAxis, ...]
    staged: tuple[Staged, ...]
    acc_box: Callable[[Mapping[str, int]], int] | None
    out_box: Callable[[Mapping[str, int]], int]
    acc_bits: int
    out_buf_bits: int
    dram: Mapping[str, DramTensor]
    extents: Mapping[str, int]  # extents of the untiled loops (n, kh, kw, icv)
    macs: int

    @property
    def op_label(self) -> str:
        """The operator costs and checks name: the op class, or the graph operator the layer
        stands for (a table's sigmoid, a global average pool run as a depthwise conv)."""
        if self.node.attr("pool_op"):
            return str(self.node.attr("pool_op"))
        return self.node.op if self.op_class == "lut" else self.op_class

    @property
    def key(self) -> tuple:
        """What the layer's tiling depends on (layers with equal keys tile alike)."""
        return (
            self.op_class,
            self.mode,
            self.wbits,
            self.abits,
            self.obits,
            self.in_bits,
            self.wide,
            self.fscale,
            self.geom,
        )


@dataclass(frozen=True, eq=False)
class LayerDef(LayerShape):
    """A `LayerShape` with its TE compute and the numpy packing of its inputs."""

    te_args: list  # TE tensors in kernel argument order (output last)
    main: str  # block of the main computation ("acc", or "y" for add)
    epilogue: str | None  # the requantize block ("y")
    pad_stage: bool  # a "pad" stage feeds the main block (inlined into the load)
    loops: tuple[str, ...]  # the main block's loops as created
    intrinsic: Intrinsic | None  # the VMAC of the main block (`accelsim.accel.intrin`)
    imm: dict[str, Any]
    signature: dict
    pack: Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]]
    unpack: Callable[[np.ndarray], np.ndarray]
    output: str  # graph tensor written
    inputs: tuple[str, ...]  # graph tensors read (activations)


def _layer_def(shape: LayerShape, **compute) -> LayerDef:
    return LayerDef(**{f.name: getattr(shape, f.name) for f in fields(LayerShape)}, **compute)


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------


def _per_tensor(info: TensorInfo | None, what: str) -> None:
    reason = per_tensor_problem(info, what)
    if reason:
        raise NotAccelerated(reason)


def _multipliers(x_i: TensorInfo, w_i: TensorInfo, o_i: TensorInfo, cout: int, padded: int):
    """Per-channel (multiplier, shift) (`accelsim.core.requant`); padding channels get (0, 0)."""
    try:
        mult, shift = rp.conv_multipliers(x_i, w_i, o_i, cout)
    except rp.RequantError as exc:
        raise NotAccelerated(str(exc)) from None
    m = np.zeros(padded, np.int64)
    s = np.zeros(padded, np.int64)
    m[:cout] = mult
    s[:cout] = shift
    return m, s


def _check_mode(config, wbits: int, abits: int) -> str:
    mode = f"w{wbits}a{abits}"
    if not config.supports(mode):
        raise NotAccelerated(
            f"the lanes cannot do {mode} (they do {', '.join(config.macs_per_lane)})"
        )
    return mode


def _common_quant(graph: Graph, node: Node, x_i, w_i, o_i):
    _per_tensor(x_i, "input")
    _per_tensor(o_i, "output")
    if graph.requant_mode not in ("gemmlowp", "float"):
        raise NotAccelerated(f"requant_mode '{graph.requant_mode}'")
    if graph.requant_mode == "float" and max(DTYPE_BITS[t.dtype] for t in (x_i, o_i)) > 8:
        raise NotAccelerated("a 16-bit ONNX QDQ layer (REQUANT float32 takes 8-bit outputs)")
    if w_i is None or not w_i.is_quantized:
        raise NotAccelerated("weights are not quantized")
    if any(z != 0 for z in w_i.quant.zero_point):
        raise NotAccelerated("asymmetric weights (the MAC datapath takes symmetric weights)")
    if not graph.is_constant(node.inputs[1]):
        raise NotAccelerated("weights are not a constant")
    if len(node.inputs) > 2 and node.inputs[2] and not graph.is_constant(node.inputs[2]):
        raise NotAccelerated("bias is not a constant")


def _requant_expr(
    acc, c, mult, shift, zp_out: int, qmin: int, qmax: int, wide: bool, odt: str, fscale: str
):
    from accelsim.lower import requant as rq

    tirx = import_tvm().tirx
    if fscale:  # the ALU's own operation (REQUANT fscale=...), as the add's element function
        r = tirx.call_pure_extern("int32", f"accel_requant_{fscale}", acc, mult[c], shift[c])
    elif wide:
        r = rq.mbqm64(acc, mult[c], shift[c])
    else:
        r = rq.mbqm(acc, mult[c], shift[c])
    return rq.clamp_add(
        r, tirx.const(zp_out, "int32"), tirx.const(qmin, "int32"), tirx.const(qmax, "int32")
    ).astype(odt)


# ------------------------------------------------------------------------------------------------
# operands and shapes (no TVM)
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MacOperands:
    """The checked operands of a conv2d, depthwise conv2d or dense the accelerator runs."""

    x: TensorInfo
    w: TensorInfo
    b: TensorInfo | None
    out: TensorInfo
    wbits: int
    abits: int
    obits: int
    mode: str
    wide: bool
    fscale: str  # a float scale: TFLite FULLY_CONNECTED (float64), ONNX Runtime (float32)


def mac_operands(graph: Graph, node: Node, config, depthwise: bool = False) -> MacOperands:
    """Check a MAC layer against the accelerator (quantization, requantization mode, a MAC mode
    for its bit widths; depthwise: one output channel per input channel) and return its
    operands; NotAccelerated says why not."""
    x_i = graph.tensors[node.inputs[0]]
    w_i = graph.tensors[node.inputs[1]]
    b_i = graph.tensors[node.inputs[2]] if len(node.inputs) > 2 and node.inputs[2] else None
    o_i = graph.tensors[node.outputs[0]]
    _common_quant(graph, node, x_i, w_i, o_i)
    if depthwise:
        C, O = x_i.shape[spatial_axes(node.attr("data_layout", "NCHW"))[0]], w_i.shape[0]
        if O != C:
            raise NotAccelerated(f"depthwise convolution with channel multiplier {O // C}")
    wbits, abits, obits = DTYPE_BITS[w_i.dtype], DTYPE_BITS[x_i.dtype], DTYPE_BITS[o_i.dtype]
    return MacOperands(
        x_i,
        w_i,
        b_i,
        o_i,
        wbits,
        abits,
        obits,
        _check_mode(config, wbits, abits),
        # a mean requantizes its int32 sum in 32 bits at every width (QuantizedMeanOrSum)
        rp.is_wide(x_i, w_i, b_i) and not node.attr("mean_count"),
        _fscale(graph, node),
    )


def _fscale(graph: Graph, node: Node) -> str:
    """The REQUANT scale a MAC layer needs: TFLite's FULLY_CONNECTED reference requantizes in
    double precision, ONNX Runtime's QDQ kernels in float32 (MlasRequantizeOutput)."""
    if graph.requant_mode == "float":
        return "float32"
    return "float64" if node.op == "dense" and node.attr("requant") == "double" else ""


def _mac_geometry(node: Node, ops: MacOperands, config, depthwise: bool) -> Geometry:
    L = config.lanes
    D = 1 if depthwise else config.mode(ops.mode).depth
    x, o = ops.x, ops.out
    if node.op == "dense":
        O, I = ops.w.shape
        return Geometry(
            "bcast",
            n=int(np.prod(x.shape)) // I,
            cin=I,
            cout=O,
            cin_p=_roundup(I, D),
            cout_p=_roundup(O, L),
            depth=D,
            lanes=L,
            dense=True,
        )
    ca, ha, wa = spatial_axes(node.attr("data_layout", "NCHW"))
    O, _, KH, KW = ops.w.shape
    I = x.shape[ca] if depthwise else ops.w.shape[1]
    sh, sw = node.attr("strides", (1, 1))
    dh, dw = node.attr("dilations", (1, 1))
    pt, pl, pb, pr = node.attr("pads", (0, 0, 0, 0))
    return Geometry(
        "elem" if depthwise else "bcast",
        n=x.shape[0],
        h=x.shape[ha],
        w=x.shape[wa],
        cin=I,
        cout=O,
        kh=KH,
        kw=KW,
        sh=sh,
        sw=sw,
        dh=dh,
        dw=dw,
        pt=pt,
        pl=pl,
        pb=pb,
        pr=pr,
        oh=o.shape[ha],
        ow=o.shape[wa],
        cin_p=_roundup(I, L if depthwise else D),
        cout_p=_roundup(O, L),
        depth=D,
        lanes=L,
    )


def _mac_shape(graph: Graph, node: Node, config, depthwise: bool, ops=None) -> LayerShape:
    """The shape of a conv2d (groups 1), dense or depthwise conv2d."""
    ops = ops or mac_operands(graph, node, config, depthwise)
    g = _mac_geometry(node, ops, config, depthwise)
    N, L, D = g.n, g.lanes, g.depth
    acc_bits = config.acc_bits_for(ops.wide)
    ch = "c" if depthwise else "oc"  # the output channel axis
    if g.dense:
        tile_axes = (
            TileAxis("oc", g.cout_p, L, vector=L, unit="output channels"),
            TileAxis("ic", g.cin_p, D, reduce=True, unit="input channels", elems_per_iter=D),
        )

        def xbox(c):
            return (N, c["ic"])

        def wbox(c):
            return (c["oc"] // L, c["ic"] // D, L, D)

        def acc_box(c):
            return N * c["oc"]

        x_shape, w_shape, y_shape = (N, g.cin), (g.cout_p // L, g.cin_p // D, L, D), (N, g.cout)
    else:
        cin = "c" if depthwise else "ic"  # the input channel axis
        tile_axes = (
            TileAxis("oh", g.oh, 1, unit="output rows"),
            TileAxis("ow", g.ow, 1, unit="output columns"),
        ) + (
            (TileAxis("c", g.cout_p, L, vector=L, unit="channels"),)
            if depthwise
            else (
                TileAxis("oc", g.cout_p, L, vector=L, unit="output channels"),
                TileAxis("ic", g.cin_p, D, reduce=True, unit="input channels", elems_per_iter=D),
            )
        )

        def xbox(c):  # the input window of an output tile
            return (
                N,
                (c["oh"] - 1) * g.sh + (g.kh - 1) * g.dh + 1,
                (c["ow"] - 1) * g.sw + (g.kw - 1) * g.dw + 1,
                c[cin],
            )

        def wbox(c):
            if depthwise:
                return (g.kh, g.kw, c["c"])
            return (c["oc"] // L, g.kh, g.kw, c["ic"] // D, L, D)

        def acc_box(c):
            return N * c["oh"] * c["ow"] * c[ch]

        x_shape, y_shape = (N, g.h, g.w, g.cin), (N, g.oh, g.ow, g.cout)
        w_shape = (
            (g.kh, g.kw, g.cout_p) if depthwise else (g.cout_p // L, g.kh, g.kw, g.cin_p // D, L, D)
        )
    wbits, abits, obits = ops.wbits, ops.abits, ops.obits
    # the multiplier, a double scale's 53-bit significand, or a float32's bits
    mbits = 64 if ops.fscale == "float64" else 32
    staged = (
        Staged("x", "act", abits, abits, xbox, "main"),
        Staged("w", "wgt", wbits, wbits, wbox, "main"),
        Staged("bias", "wgt", acc_bits, acc_bits, lambda c: (c[ch],), "init"),
        Staged("mult", "wgt", mbits, mbits, lambda c: (c[ch],), "epilogue"),
        Staged("shift", "wgt", 32, 32, lambda c: (c[ch],), "epilogue"),
    )
    dram = {
        "x": DramTensor("x", x_shape, abits, "input"),
        "w": DramTensor("w", w_shape, wbits, "weight"),
        "bias": DramTensor("bias", (g.cout_p,), acc_bits, "param"),
        "mult": DramTensor("mult", (g.cout_p,), mbits, "param"),
        "shift": DramTensor("shift", (g.cout_p,), 32, "param"),
        "y": DramTensor("y", y_shape, obits, "output"),
    }
    extents = {"n": N, "kh": g.kh, "kw": g.kw}
    if not depthwise:
        extents["icv"] = D
    return LayerShape(
        node=node,
        op_class="depthwise_conv2d" if depthwise else ("dense" if g.dense else "conv2d"),
        mode=ops.mode,
        wbits=wbits,
        abits=abits,
        obits=obits,
        in_bits=(),
        wide=ops.wide,
        fscale=ops.fscale,
        geom=g,
        tile_axes=tile_axes,
        staged=staged,
        acc_box=acc_box,
        out_box=acc_box,
        acc_bits=acc_bits,
        out_buf_bits=max(obits, 8),
        dram=dram,
        extents=extents,
        # a pool's sums run on the MAC array but are not multiply-accumulates of the model
        macs=0 if node.attr("mean_count") else node_macs(graph, node),
    )


def contraction_shape(graph: Graph, node: Node, config, ops=None) -> LayerShape:
    """conv2d (groups 1) / dense."""
    return _mac_shape(graph, node, config, False, ops)


def depthwise_shape(graph: Graph, node: Node, config, ops=None) -> LayerShape:
    return _mac_shape(graph, node, config, True, ops)


def _memory_dims(graph: Graph, name: str) -> tuple[str, tuple[int, ...]]:
    """(layout, the graph dims in memory order) of a tensor on the accelerator: 4-D tensors
    of an NCHW graph are NHWC there."""
    info = graph.tensors[name]
    if len(info.shape) == 4:
        lay = tensor_layout(graph, name)
        if lay == "NCHW":
            return lay, (0, 2, 3, 1)
        return lay, (0, 1, 2, 3)
    return "", tuple(range(len(info.shape)))


@dataclass(frozen=True)
class AluOperands:
    """An element-wise layer of the vector ALU over its output viewed as (P, C) in the
    accelerator's memory order: each input is full (indexed [p, c]), a row broadcast along P
    (indexed [c]: a per-channel vector, a bias row, a mask row) or a column broadcast along C
    (indexed [p]: a per-row statistic, as a layer norm's mean). Constant inputs are DRAM
    tensors like activations."""

    kind: str  # ALU op class: "add", "mul", "lut"
    inputs: tuple[str, ...]  # graph tensors, in the node's order
    infos: tuple[TensorInfo, ...]
    index: tuple[str, ...]  # per input: "full", "row" or "col"
    out: TensorInfo
    p: int
    c: int
    layouts: tuple[str, ...]  # per input, then the output: the layout `to_kernel_layout` takes
    out_dims: tuple[int, ...]  # the output's graph dims in memory order (`_memory_dims`)
    table: tuple[int, np.ndarray] | None  # lut: (lowest input, table) (`pointwise_table`)


def _broadcast_patterns(shape: tuple[int, ...], out: tuple[int, ...]) -> dict[int, str]:
    """For each split K of `out` into (P, C) = (out[:K], out[K:]), how an input of `shape`
    (aligned to `out`) is read: "full", "row" (1 on the first K dims, equal on the rest) or
    "col" (equal on the first K dims, 1 on the rest)."""
    found = {}
    for k in range(len(out) + 1):
        if tuple(shape) == tuple(out):
            found[k] = "full"
        elif all(d == 1 for d in shape[:k]) and tuple(shape[k:]) == tuple(out[k:]):
            found[k] = "row"
        elif tuple(shape[:k]) == tuple(out[:k]) and all(d == 1 for d in shape[k:]):
            found[k] = "col"
    return found


def alu_operands(graph: Graph, node: Node, config=None) -> AluOperands:
    """The operands of an element-wise node the vector ALU runs, checked (`NotAccelerated`)."""
    kind = "lut" if node.op in LUT_OPS else ("add" if node.op == "sub" else node.op)
    o_i = graph.tensors[node.outputs[0]]
    names = tuple(t for t in node.inputs if t)
    table = None
    if kind == "lut":
        try:
            table = pointwise_table(graph, node, (8,))
        except NotLowered as exc:
            raise NotAccelerated(str(exc)) from None
        names = names[:1]
    elif len(names) != 2 or all(graph.is_constant(t) for t in names):
        raise NotAccelerated(f"{node.op} needs two operands, at least one an activation")
    infos = tuple(graph.tensors[t] for t in names)
    for i, info in enumerate((*infos, o_i)):
        _per_tensor(info, "output" if i == len(infos) else f"input {i + 1}")
    if kind != "lut" and graph.requant_mode == "float":
        if not qdq_ops.has_integer_kernel(node, *infos, o_i):  # ORT: a float fallback group
            raise NotAccelerated(f"{node.op} that ONNX Runtime computes in float")
    elif kind != "lut" and graph.requant_mode != "gemmlowp":
        raise NotAccelerated(f"requant_mode '{graph.requant_mode}'")
    out_layout, perm = _memory_dims(graph, node.outputs[0])
    rank = len(o_i.shape)
    oshape = tuple(o_i.shape[d] for d in perm)
    patterns = []
    for info in infos:
        if len(info.shape) > rank:
            raise NotAccelerated(f"an input of rank {len(info.shape)} > the output's {rank}")
        aligned = (1,) * (rank - len(info.shape)) + tuple(info.shape)
        patterns.append(_broadcast_patterns(tuple(aligned[d] for d in perm), oshape))
    common = set.intersection(*(set(p) for p in patterns))
    if not common:
        shapes = [tuple(i.shape) for i in infos]
        raise NotAccelerated(f"broadcast {shapes} -> {tuple(o_i.shape)} (not rows or columns)")
    k = max(common)  # full inputs only: one column of every element (C = 1)
    c = int(np.prod(oshape[k:]))
    if config is not None:  # the smallest tile, one row of each buffer, must fit
        sps, slots = config.scratchpads, config.slots
        act = c * sum(max(DTYPE_BITS[i.dtype], 8) for i in infos) // 8
        out = c * max(DTYPE_BITS[o_i.dtype], 8) // 8
        if act * slots * 2 > sps["act"].size_bytes or out * slots * 2 > sps["out"].size_bytes:
            raise NotAccelerated(f"{node.op} rows of {c} elements exceed the scratchpads")
    layouts = tuple(out_layout if len(i.shape) == rank else "" for i in infos) + (out_layout,)
    return AluOperands(
        kind,
        names,
        infos,
        tuple(p[k] for p in patterns),
        o_i,
        int(np.prod(oshape[:k])),
        c,
        layouts,
        perm,
        table,
    )


def alu_shape(graph: Graph, node: Node, config, ops: AluOperands | None = None) -> LayerShape:
    ops = ops or alu_operands(graph, node, config)
    bits = tuple(DTYPE_BITS[i.dtype] for i in ops.infos)
    obits = DTYPE_BITS[ops.out.dtype]
    names = "ab"[: len(ops.inputs)]
    boxes = {
        "full": lambda cv, c=ops.c: (cv["p"], c),
        "row": lambda cv, c=ops.c: (c,),
        "col": lambda cv: (cv["p"],),
    }
    shapes = {"full": (ops.p, ops.c), "row": (ops.c,), "col": (ops.p,)}
    staged = tuple(
        Staged(nm, "act", max(b, 8), b, boxes[ix], "main")
        for nm, b, ix in zip(names, bits, ops.index)
    )
    dram = {nm: DramTensor(nm, shapes[ix], b, "input") for nm, b, ix in zip(names, bits, ops.index)}
    dram["y"] = DramTensor("y", (ops.p, ops.c), obits, "output")
    return LayerShape(
        node=node,
        op_class=ops.kind,
        mode="",
        wbits=0,
        abits=max(bits),
        obits=obits,
        in_bits=bits,
        wide=False,
        # ONNX Runtime's QLinearAdd / QLinearMul (VADDF, VMULF); a table is a table
        fscale="float32" if graph.requant_mode == "float" and ops.kind != "lut" else "",
        geom=Geometry("alu", n=ops.p, cin=ops.c, cout=ops.c),
        tile_axes=(TileAxis("p", ops.p, 1, unit="rows"),),
        staged=staged,
        acc_box=None,
        out_box=lambda cv, c=ops.c: cv["p"] * c,
        acc_bits=32,
        out_buf_bits=max(obits, 8),
        dram=dram,
        extents={"c": ops.c},
        macs=0,
    )


_MOVE_LOOPS = ("t", "u", "v", "w")  # a movement layer's output loops: t tiled, the rest whole


@dataclass(frozen=True)
class MoveOperands:
    """A transpose or slice in the accelerator's memory order, unit dims dropped and shapes
    padded with trailing 1s to four dims: output element o reads input element i with
    `i[src[d]] = offset[src[d]] + step[d] * o[d]` for every output dim d (input dims no output
    dim reads stay at their offset)."""

    x: TensorInfo
    out: TensorInfo
    x_shape: tuple[int, ...]
    y_shape: tuple[int, ...]
    src: tuple[int, ...]
    step: tuple[int, ...]
    offset: tuple[int, ...]
    layouts: tuple[str, str]  # `to_kernel_layout` layouts of the input and the output


def move_operands(graph: Graph, node: Node, config) -> MoveOperands:
    x_i, o_i = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
    if x_i.dtype != o_i.dtype or x_i.quant != o_i.quant:
        raise NotAccelerated(f"a {node.op} that changes the representation")
    if DTYPE_BITS[x_i.dtype] not in (8, 16):
        raise NotAccelerated(f"a {node.op} of {x_i.dtype} elements")
    if any(node.inputs[1:]):
        raise NotAccelerated(f"a {node.op} with run-time parameters")
    rank = len(x_i.shape)
    if node.op == "transpose":  # graph dims: output dim g reads input dim P[g]
        P = tuple(node.attr("perm") or tuple(reversed(range(rank))))
        S, OFF = (1,) * rank, (0,) * rank
    else:  # slice: starts / steps per axis, resolved
        P, S, OFF = tuple(range(rank)), tuple(node.attr("steps")), tuple(node.attr("starts"))
    lay_x, mx = _memory_dims(graph, node.inputs[0])
    lay_o, mo = _memory_dims(graph, node.outputs[0])
    keep_x = [i for i in range(rank) if x_i.shape[mx[i]] > 1]
    keep_o = [j for j in range(rank) if o_i.shape[mo[j]] > 1]
    n = len(_MOVE_LOOPS)
    if len(keep_x) > n:
        raise NotAccelerated(f"a {node.op} of {len(keep_x)} non-unit dims")
    x_shape = tuple(x_i.shape[mx[i]] for i in keep_x) + (1,) * (n - len(keep_x))
    y_shape = tuple(o_i.shape[mo[j]] for j in keep_o) + (1,) * (n - len(keep_o))
    src = tuple(keep_x.index(mx.index(P[mo[j]])) for j in keep_o) + (0,) * (n - len(keep_o))
    step = tuple(S[mo[j]] for j in keep_o) + (0,) * (n - len(keep_o))
    offset = tuple(OFF[mx[i]] for i in keep_x) + (0,) * (n - len(keep_x))
    # one row of the tiled dim and the rest whole must fit a slot of the act scratchpad
    sp = config.scratchpads["act"]
    row = int(np.prod(y_shape[1:])) * DTYPE_BITS[x_i.dtype] // 8
    if row * config.slots * 2 > sp.size_bytes:
        raise NotAccelerated(f"a {node.op} whose rows of {row} bytes exceed the act scratchpad")
    return MoveOperands(x_i, o_i, x_shape, y_shape, src, step, offset, (lay_x, lay_o))


def transpose_shape(graph: Graph, node: Node, config, ops: MoveOperands | None = None):
    ops = ops or move_operands(graph, node, config)
    bits = DTYPE_BITS[ops.x.dtype]

    def xbox(cv):  # the input region one tile reads: footprints of the output dims' reads
        ext = [1] * len(ops.x_shape)
        for d, (j, st) in enumerate(zip(ops.src, ops.step)):
            n = cv["t"] if d == 0 else ops.y_shape[d]
            if st:
                ext[j] = (n - 1) * abs(st) + 1
        return tuple(ext)

    return LayerShape(
        node=node,
        op_class="transpose",
        mode="",
        wbits=0,
        abits=bits,
        obits=bits,
        in_bits=(bits,),
        wide=False,
        fscale="",
        geom=Geometry("move", n=ops.y_shape[0], cin=int(np.prod(ops.y_shape[1:]))),
        tile_axes=(TileAxis("t", ops.y_shape[0], 1, unit="rows"),),
        staged=(Staged("a", "act", max(bits, 8), bits, xbox, "main"),),
        acc_box=None,
        out_box=lambda cv: 0,  # no output buffer: the store reads the act scratchpad
        acc_bits=32,
        out_buf_bits=max(bits, 8),
        dram={
            "a": DramTensor("a", ops.x_shape, bits, "input"),
            "y": DramTensor("y", ops.y_shape, bits, "output"),
        },
        extents=dict(zip(_MOVE_LOOPS[1:], ops.y_shape[1:])),
        macs=0,
    )


def transpose_def(graph: Graph, node: Node, config) -> LayerDef:
    """A transpose or slice as a DMA program: a tile of the input loaded into the act
    scratchpad, the output written by the store engine reading that tile in the output's order
    (recipe class `transpose`, the data-movement class)."""
    te = import_tvm().te
    ops = move_operands(graph, node, config)
    s = transpose_shape(graph, node, config, ops)
    dt = store_dtype(ops.x.dtype)
    a = te.placeholder(ops.x_shape, dt, name="a")

    def element(*o):
        idx = list(ops.offset)
        for d, (j, st) in enumerate(zip(ops.src, ops.step)):
            if st:
                idx[j] = idx[j] + st * o[d]
        return a[tuple(idx)]

    y = te.compute(ops.y_shape, element, name="y")
    x_name = node.inputs[0]
    lay_x, lay_o = ops.layouts
    o_shape = ops.out.shape
    mem_o = _memory_dims(graph, node.outputs[0])[1]

    def pack(values):
        arr = np.asarray(values[x_name])
        if lay_x:
            arr = to_kernel_layout(arr, lay_x)
        return {"a": np.ascontiguousarray(arr).reshape(-1).astype(np.int64)}

    def unpack(arr):
        mem = np.asarray(arr).reshape(tuple(o_shape[d] for d in mem_o))
        return from_kernel_layout(mem, lay_o) if lay_o else mem

    return _layer_def(
        s,
        te_args=[a, y],
        main="y",
        epilogue=None,
        pad_stage=False,
        loops=_MOVE_LOOPS,
        intrinsic=None,
        imm={"in_bits": s.in_bits},
        signature={
            "class": "transpose",
            "x": list(ops.x_shape),
            "y": list(ops.y_shape),
            "src": list(ops.src),
            "step": list(ops.step),
            "offset": list(ops.offset),
            "bits": s.abits,
        },
        pack=pack,
        unpack=unpack,
        output=node.outputs[0],
        inputs=(x_name,),
    )


def pool_as_depthwise(graph: Graph, node: Node, config) -> tuple[Graph, Node]:
    """A global average pool (or a mean over H and W) as the depthwise convolution it computes
    in TFLite's integer arithmetic (reference_ops::QuantizedMeanOrSum): a window of the whole
    image, weights 1 (so the folded bias is `-Z_x * H * W`) and the mean's own multiplier
    (`requant.mean_multiplier`, 1/n folded in) for every channel; no clamp but the output's
    range. Returns a graph with the unit weights as a constant and the conv node (same name,
    same input and output tensors; an (N, C) output, a mean that drops the reduced axes, is
    (N, C, 1, 1) in that graph). ONNX Runtime's QLinearGlobalAveragePool is the same sum with
    its float32 scale (REQUANT fscale=float32). `NotAccelerated` for other means, or a window
    whose smallest tile (one lane block of channels) does not fit the activation scratchpad."""
    x_i, o_i = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
    if graph.requant_mode == "float" and not (
        node.op == "global_avg_pool" and qdq_ops.is_8bit_pool(x_i, o_i)
    ):  # ONNX Runtime: only QLinearGlobalAveragePool is an integer kernel
        raise NotAccelerated(f"{node.op} that ONNX Runtime computes in float")
    if len(x_i.shape) != 4 or len(o_i.shape) not in (2, 4):
        raise NotAccelerated(f"{node.op} of a {len(x_i.shape)}-D tensor to {len(o_i.shape)}-D")
    layout = (
        node.attr("data_layout", "NCHW")
        if node.op == "global_avg_pool"
        else (tensor_layout(graph, node.inputs[0]))
    )
    ca, ha, wa = spatial_axes(layout)
    if node.op == "mean" and {a % 4 for a in node.attr("axes", ())} != {ha, wa}:
        raise NotAccelerated(f"mean over axes {node.attr('axes')} (not the spatial axes)")
    C, H, W = x_i.shape[ca], x_i.shape[ha], x_i.shape[wa]
    sp, slots = config.scratchpads["act"], config.slots
    row = sp.slot_banks(slots) * sp.bank_width_bytes
    if math.ceil(H * W * config.lanes / row) * row * slots > sp.size_bytes:
        raise NotAccelerated(
            f"{node.op} window {H}x{W}: one lane block of its input exceeds the act scratchpad"
        )
    wname = f"{node.name}:unit_weights"
    wdt = "int4" if DTYPE_BITS[x_i.dtype] == 4 else "int8"  # the lanes' mode for the activations
    w_i = TensorInfo(wname, (C, 1, H, W), wdt, QuantParams((1.0,), (0,)))
    y4 = [x_i.shape[0], 1, 1, 1]
    y4[ca] = C
    g2 = graph.replace(
        tensors={
            **graph.tensors,
            wname: w_i,
            node.outputs[0]: dataclasses.replace(o_i, shape=tuple(y4)),
        },
        constants={**graph.constants, wname: np.ones((C, 1, H, W), np.int8)},
    )
    conv = Node(
        node.name,
        "conv2d",
        (node.inputs[0], wname),
        node.outputs,
        {"groups": C, "data_layout": layout, "mean_count": H * W, "pool_op": node.op},
    )
    return g2, conv


def route(graph: Graph, node: Node, config, alu_fn, depthwise_fn, contraction_fn, move_fn):
    """Which accelerator layer kind `node` is (element-wise ALU, depthwise, conv/dense), or
    `NotAccelerated`; calls the builder of that kind. `layer_shape` and `layer_def` share these
    rules."""
    if node.op in MOVE_OPS:
        return move_fn(graph, node, config)
    if node.op not in ACCEL_OPS and node.op not in LUT_OPS and node.op not in POOL_OPS:
        raise NotAccelerated(f"op '{node.op}' runs on the host core")
    if not graph.tensors[node.outputs[0]].is_quantized:
        raise NotAccelerated("float layer (the accelerator is integer-only)")
    if node.op in ALU_OPS or node.op in LUT_OPS:
        return alu_fn(graph, node, config)
    if node.op in POOL_OPS:
        # an (N, C) mean comes back as (N, C, 1, 1): the same elements in the same order
        return depthwise_fn(*pool_as_depthwise(graph, node, config), config)
    if node.op == "conv2d" and op_class(graph, node) == "depthwise_conv2d":
        return depthwise_fn(graph, node, config)
    if (node.op == "conv2d" and node.attr("groups", 1) == 1) or node.op == "dense":
        return contraction_fn(graph, node, config)
    raise NotAccelerated(f"grouped convolution (groups={node.attr('groups')})")


def layer_shape(graph: Graph, node: Node, config) -> LayerShape:
    """The shape of the accelerator layer of `node`, or `NotAccelerated` (it runs on the host)."""
    return route(
        graph, node, config, alu_shape, depthwise_shape, contraction_shape, transpose_shape
    )


# ------------------------------------------------------------------------------------------------
# TE computes and packing
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _MacValues:
    """What the conv2d / dense and depthwise computes share: storage dtypes, zero points, the
    output clamp, and the folded bias and requantization parameters padded to whole lanes."""

    xdt: str
    wdt: str
    odt: str
    accdt: str
    zx: int
    zo: int
    qmin: int
    qmax: int
    w: np.ndarray  # the weights as the graph holds them
    bias: np.ndarray
    mult: np.ndarray
    shift: np.ndarray
    fscale: (
        str  # "float64": mult / shift the double's significand and exponent; "float32": its bits
    )

    def imm(self, wide: bool) -> dict[str, Any]:
        return {
            "zp_out": self.zo,
            "qmin": self.qmin,
            "qmax": self.qmax,
            "wide": wide,
            "fscale": self.fscale,
            "pad": self.zx,
        }

    @property
    def params(self) -> dict[str, np.ndarray]:
        """The kernel arguments after the weights."""
        return {"bias": self.bias, "mult": self.mult, "shift": self.shift}

    def placeholders(self, te, channels: int) -> list:
        """TE placeholders of `params`."""
        return [
            te.placeholder((channels,), self.accdt, name="bias"),
            te.placeholder(
                (channels,), "int64" if self.fscale == "float64" else "int32", name="mult"
            ),
            te.placeholder((channels,), "int32", name="shift"),
        ]

    def requant(self, acc, c, params, wide: bool):
        """The output element of accumulator `acc` of channel `c` (`params`: `placeholders`)."""
        _, mult, shift = params
        return _requant_expr(
            acc, c, mult, shift, self.zo, self.qmin, self.qmax, wide, self.odt, self.fscale
        )


def _mac_values(graph: Graph, node: Node, ops: MacOperands, g: Geometry) -> _MacValues:
    w = np.asarray(graph.constants[node.inputs[1]])
    bias_c = np.asarray(graph.constants[node.inputs[2]]) if ops.b is not None else None
    zx = rp.zero_point(ops.x)
    if ops.fscale == "float32":  # ONNX Runtime: the fused activation's bounds quantized
        qmin, qmax = qdq_ops.output_range(ops.out, node.attrs)
    else:
        qmin, qmax = _qclamp(ops.out, node.attrs)
    folded = np.zeros(g.cout_p, np.int64)
    folded[: g.cout] = rp.folded_bias(w, bias_c, zx)
    if not ops.wide:
        folded = rp.wrap_int32(folded)
    if node.attr("mean_count"):  # a pool (`pool_as_depthwise`): the mean's own multiplier
        n = node.attr("mean_count")
        mult, shift = np.zeros(g.cout_p, np.int64), np.zeros(g.cout_p, np.int64)
        if ops.fscale == "float32":  # QLinearGlobalAveragePool: x_scale / (y_scale * n)
            xs, ys = ops.x.quant.scale[0], ops.out.quant.scale[0]
            mult[: g.cout] = np.float32(qdq_ops.global_pool_scale(xs, ys, n)).view(np.int32)
        else:
            mult[: g.cout], shift[: g.cout] = rp.mean_multiplier(ops.x, ops.out, n)
    elif ops.fscale == "float64":  # the double scale exactly, as significand x 2^exponent
        mult, shift = np.zeros(g.cout_p, np.int64), np.zeros(g.cout_p, np.int64)
        mult[: g.cout], shift[: g.cout] = split_double(
            rp.double_scales(ops.x, ops.w, ops.out, g.cout)
        )
    elif ops.fscale == "float32":  # the float32 multiplier's bits
        mult, shift = np.zeros(g.cout_p, np.int64), np.zeros(g.cout_p, np.int64)
        m32 = qdq_ops.mac_multipliers(ops.x, ops.w, ops.out, g.cout).astype(np.float32)
        mult[: g.cout] = m32.view(np.int32)
    else:
        mult, shift = _multipliers(ops.x, ops.w, ops.out, g.cout, g.cout_p)
    return _MacValues(
        store_dtype(ops.x.dtype),
        "int16" if ops.wbits > 8 else "int8",
        store_dtype(ops.out.dtype),
        "int64" if ops.wide else "int32",
        zx,
        rp.zero_point(ops.out),
        qmin,
        qmax,
        w,
        folded,
        mult,
        shift,
        ops.fscale,
    )


def _window_signature(g: Geometry, ops: MacOperands) -> dict[str, Any]:
    return {
        "kernel": [g.kh, g.kw],
        "strides": [g.sh, g.sw],
        "dilations": [g.dh, g.dw],
        "pads": [g.pt, g.pl, g.pb, g.pr],
        "mode": ops.mode,
        "obits": ops.obits,
        "wide": ops.wide,
        "abits": ops.abits,
    }


def _mac_def(s: LayerShape, node: Node, v: _MacValues, tensors: list, need_pad: bool, **rest):
    """The LayerDef of a MAC layer: `tensors` x, w, the `params` placeholders, y."""
    return _layer_def(
        s,
        te_args=tensors,
        main="acc",
        epilogue="y",
        pad_stage=need_pad,
        imm=v.imm(s.wide),
        output=node.outputs[0],
        inputs=(node.inputs[0],),
        **rest,
    )


def contraction(graph: Graph, node: Node, config) -> LayerDef:
    tvm = import_tvm()
    te, tirx = tvm.te, tvm.tirx
    ops = mac_operands(graph, node, config)
    s = contraction_shape(graph, node, config, ops)
    g = s.geom
    is_dense, wide = g.dense, ops.wide
    v = _mac_values(graph, node, ops, g)
    xdt, wdt, accdt = v.xdt, v.wdt, v.accdt
    L, D = g.lanes, g.depth
    N, H, W_, I, O, KH, KW = g.n, g.h, g.w, g.cin, g.cout, g.kh, g.kw
    OH, OW, OCp, ICp = g.oh, g.ow, g.cout_p, g.cin_p
    sh, sw, dh, dw = g.sh, g.sw, g.dh, g.dw
    layout = node.attr("data_layout", "NCHW")

    if is_dense:
        x = te.placeholder((N, I), xdt, name="x")
        wp = te.placeholder((OCp // L, ICp // D, L, D), wdt, name="w")
    else:
        x = te.placeholder((N, H, W_, I), xdt, name="x")
        wp = te.placeholder((OCp // L, KH, KW, ICp // D, L, D), wdt, name="w")
    params = v.placeholders(te, OCp)
    padv = tirx.const(v.zx, xdt)
    need_pad = bool(g.pt or g.pl or g.pb or g.pr) or ICp != I
    xin = pad_input(x, padv, I, ICp, (g.pt, g.pl, g.pb, g.pr)) if need_pad else x
    window = None if is_dense else ((KH, KW), (sh, sw), (dh, dw))
    acc_shape = (N, OCp) if is_dense else (N, OH, OW, OCp)
    acc = contraction_acc(xin, lambda *i: wp[i], acc_shape, (L, D), window, accdt=accdt)
    if is_dense:
        y = te.compute((N, O), lambda n, oc: v.requant(acc[n, oc], oc, params, wide), name="y")
        loops = ("n", "oc", "ic", "icv")
    else:
        y = te.compute(
            (N, OH, OW, O),
            lambda n, oh, ow, oc: v.requant(acc[n, oh, ow, oc], oc, params, wide),
            name="y",
        )
        loops = ("n", "oh", "ow", "oc", "kh", "kw", "ic", "icv")

    # ---- numpy side -----------------------------------------------------------------------------
    @functools.cache  # packed on first use, then kept
    def pack_weights() -> np.ndarray:
        return block_weights(v.w.astype(np.int64), (OCp, ICp), (L, D))

    x_name, out_shape = node.inputs[0], ops.out.shape

    def pack(values: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        xv = np.asarray(values[x_name])
        xk = to_kernel_layout(xv.reshape(N, I) if is_dense else xv, layout)
        return {"x": xk.astype(np.int64), "w": pack_weights(), **v.params}

    unpack = unpacker(layout, out_shape)

    sig = {
        "class": s.op_class,
        "x": [int(d) for d in x.shape],
        "w": [int(d) for d in wp.shape],
        "y": [int(d) for d in y.shape],
        **_window_signature(g, ops),
        "pad": need_pad,
    }
    return _mac_def(
        s,
        node,
        v,
        [x, wp, *params, y],
        need_pad,
        loops=loops,
        intrinsic=vmac("accel_vmac", L, D, xdt, wdt, accdt),
        signature=sig,
        pack=pack,
        unpack=unpack,
    )


def depthwise(graph: Graph, node: Node, config) -> LayerDef:
    tvm = import_tvm()
    te, tirx = tvm.te, tvm.tirx
    ops = mac_operands(graph, node, config, depthwise=True)
    s = depthwise_shape(graph, node, config, ops)
    g = s.geom
    wide = ops.wide
    v = _mac_values(graph, node, ops, g)
    xdt, wdt, accdt = v.xdt, v.wdt, v.accdt
    L = g.lanes
    N, H, W_, C, Cp, KH, KW, OH, OW = g.n, g.h, g.w, g.cin, g.cout_p, g.kh, g.kw, g.oh, g.ow
    sh, sw, dh, dw = g.sh, g.sw, g.dh, g.dw
    layout = node.attr("data_layout", "NCHW")

    x = te.placeholder((N, H, W_, C), xdt, name="x")
    wp = te.placeholder((KH, KW, Cp), wdt, name="w")
    params = v.placeholders(te, Cp)
    need_pad = bool(g.pt or g.pl or g.pb or g.pr) or Cp != C
    pads = (g.pt, g.pl, g.pb, g.pr)
    xin = pad_input(x, tirx.const(v.zx, xdt), C, Cp, pads) if need_pad else x
    rkh = te.reduce_axis((0, KH), "kh")
    rkw = te.reduce_axis((0, KW), "kw")
    acc = te.compute(
        (N, OH, OW, Cp),
        lambda n, oh, ow, c: te.sum(
            xin[n, oh * sh + rkh * dh, ow * sw + rkw * dw, c].astype(accdt)
            * wp[rkh, rkw, c].astype(accdt),
            axis=[rkh, rkw],
        ),
        name="acc",
    )
    y = te.compute(
        (N, OH, OW, C),
        lambda n, oh, ow, c: v.requant(acc[n, oh, ow, c], c, params, wide),
        name="y",
    )
    wk = np.zeros((KH, KW, Cp), np.int64)
    wk[:, :, :C] = v.w.astype(np.int64).reshape(C, KH, KW).transpose(1, 2, 0)
    x_name = node.inputs[0]

    def pack(values):
        xk = to_kernel_layout(np.asarray(values[x_name]), layout)
        return {"x": xk.astype(np.int64), "w": wk, **v.params}

    unpack = unpacker(layout)

    sig = {
        "class": "depthwise_conv2d",
        "x": [N, H, W_, C],
        **_window_signature(g, ops),
    }
    return _mac_def(
        s,
        node,
        v,
        [x, wp, *params, y],
        need_pad,
        loops=("n", "oh", "ow", "c", "kh", "kw"),
        intrinsic=vmac("accel_vmac_dw", L, 1, xdt, wdt, accdt),
        signature=sig,
        pack=pack,
        unpack=unpack,
    )


def _alu_imm(graph: Graph, node: Node, ops: AluOperands) -> dict[str, Any]:
    """The immediates of the layer's ALU instruction (`isa.VAdd`, `isa.VMul`, `isa.VLut`)."""
    qmin, qmax = _qclamp(ops.out, node.attrs)
    zo = rp.zero_point(ops.out)
    if ops.table is not None:
        lo, table = ops.table
        return {"lo": lo, "table": tuple(int(v) for v in table)}
    a_i, b_i = ops.infos
    za, zb = rp.zero_point(a_i), rp.zero_point(b_i)
    if graph.requant_mode == "float":  # ONNX Runtime's float32 constants, as bits
        lo, hi = dtype_range(ops.out.dtype)

        def bits(v) -> int:
            return int(np.float32(v).view(np.int32))

        if ops.kind == "mul":
            r = qdq_ops.mul_ratio(a_i, b_i, ops.out)
            return {
                "fscale": "float32",
                "zp_a": za,
                "zp_b": zb,
                "zp_out": zo,
                "ratio": bits(r),
                "qmin": lo,
                "qmax": hi,
            }
        ra, rb, fixed = qdq_ops.add_params(a_i, b_i, ops.out)
        which = qdq_ops.scalar_operand(a_i.shape, b_i.shape, ops.out.shape)
        return {
            "fscale": "float32",
            "ra": bits(ra),
            "rb": bits(rb),
            "fixed": bits(fixed),
            "scalar": which or "none",
            "qmin": lo,
            "qmax": hi,
        }
    if ops.kind == "mul":
        mult, shift, wide = rp.mul_params(a_i, b_i, ops.out)
        return {
            "zp_a": za,
            "zp_b": zb,
            "zp_out": zo,
            "m": mult,
            "s": shift,
            "wide": wide,
            "qmin": qmin,
            "qmax": qmax,
        }
    ap = rp.add_params(a_i, b_i, ops.out)
    (m1, sh1), (m2, sh2), (mo, sho) = ap.input1, ap.input2, ap.output
    return {
        "sub": node.op == "sub",  # TFLite's SUB: the same constants, the second term negated
        "zp_a": za,
        "zp_b": zb,
        "zp_out": zo,
        "left_shift": ap.left_shift,
        "m_a": m1,
        "s_a": sh1,
        "m_b": m2,
        "s_b": sh2,
        "m_out": mo,
        "s_out": sho,
        "qmin": qmin,
        "qmax": qmax,
    }


# the element function of each ALU op class: the ALU's own operation, a pure extern whose
# parameters are the instruction's immediates. Written out, the add's three nested
# MultiplyByQuantizedMultiplier expressions make a TIR tree of tens of thousands of nodes (each
# SRDHM uses its product twice) that TVM's simplifier needs minutes for.
_ALU_EXTERN = {"add": "accel_vadd_q", "mul": "accel_vmul_q", "lut": "accel_vlut"}


def alu(graph: Graph, node: Node, config) -> LayerDef:
    tvm = import_tvm()
    te, tirx = tvm.te, tvm.tirx
    ops = alu_operands(graph, node, config)
    s = alu_shape(graph, node, config, ops)
    names = "ab"[: len(ops.inputs)]
    P, C = ops.p, ops.c
    shapes = {"full": (P, C), "row": (C,), "col": (P,)}
    phs = [
        te.placeholder(shapes[ix], store_dtype(info.dtype), name=nm)
        for nm, info, ix in zip(names, ops.infos, ops.index)
    ]
    odt = store_dtype(ops.out.dtype)
    fn = _ALU_EXTERN[ops.kind]

    def element(p, c):
        at = {"full": lambda ph: ph[p, c], "row": lambda ph: ph[c], "col": lambda ph: ph[p]}
        args = [at[ix](ph) for ph, ix in zip(phs, ops.index)]
        return tirx.call_pure_extern(odt, fn, *args)

    y = te.compute((P, C), element, name="y")
    sources = ops.inputs

    def pack(values):
        out = {}
        for nm, t, info, lay in zip(names, sources, ops.infos, ops.layouts):
            v = values[t] if t in values else graph.constants[t]
            arr = np.asarray(v).reshape(info.shape)
            if lay:  # same rank as the output: its memory order
                arr = to_kernel_layout(arr, lay)
            out[nm] = np.ascontiguousarray(arr).reshape(-1).astype(np.int64)
        return out

    o_shape = ops.out.shape
    out_layout = ops.layouts[-1]
    shape_k = tuple(o_shape[d] for d in ops.out_dims)

    def unpack(arr):
        return from_kernel_layout(np.asarray(arr).reshape(shape_k), out_layout)

    imm = {**_alu_imm(graph, node, ops), "in_bits": s.in_bits}
    return _layer_def(
        s,
        te_args=[*phs, y],
        main="y",
        epilogue=None,
        pad_stage=False,
        loops=("p", "c"),
        intrinsic=None,
        imm=imm,
        signature={
            "class": ops.kind,
            "op": node.op,
            "pc": [P, C],
            "index": list(ops.index),
            "bits": [*s.in_bits, s.obits],
        },
        pack=pack,
        unpack=unpack,
        output=node.outputs[0],
        inputs=tuple(t for t in sources if not graph.is_constant(t)),
    )


def layer_def(graph: Graph, node: Node, config) -> LayerDef:
    """The accelerator compute of `node`, or `NotAccelerated` (the node runs on the host)."""
    return route(graph, node, config, alu, depthwise, contraction, transpose_def)
