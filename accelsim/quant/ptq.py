"""Post-training quantization: float `Graph` + `Precision` + calibration data -> quantized
`Graph` that the integer-only reference executor runs (requant_mode "gemmlowp").

The scheme is Jacob et al. 2018 / TFLite's: weights per-channel (or per-tensor) symmetric in
the restricted range, activations per-tensor affine, bias int32 (int64 with 16-bit
activations or weights) at scale `S_in * S_w`, requantization by a fixed-point multiplier.

Which bits a tensor gets under mixed precision: tensors joined by operators that move data
without arithmetic (reshape, max pool, concat, pad, ...) share one representation, as TFLite's
same-scale operators do; that group takes the widest activation precision among the
arithmetic operators that produce or consume it, so a layer kept at 8 bits really computes
with 8-bit inputs and outputs.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from accelsim.core import requant as rq
from accelsim.core.errors import InputError, QuantizationWarning
from accelsim.core.precision import Precision
from accelsim.core.qparams import QuantParams, dtype_range
from accelsim.model.graph import Graph, Node, TensorInfo
from accelsim.model.ops import OPS
from accelsim.quant.calibrate import make_calibrator, quant_params_from_range
from accelsim.quant.transforms import prepare_for_quantization
from accelsim.ref.executor import run

# Each operator's treatment is decided once, in its OpDef (accelsim.model.ops; the list and
# the reasons are in its module docstring, "Which operators run in integer"):
# data movement, whose output keeps the input's quantization (TFLite same-scale operators);
SAME_SCALE_OPS = tuple(n for n, d in OPS.items() if d.quant == "same")
# operators that stay in float in a quantized graph, wrapped in dequantize / quantize
# ("partial quantization"), and index / mask arithmetic, which is never quantized;
FLOAT_ONLY_OPS = tuple(n for n, d in OPS.items() if d.quant in ("float", "index"))
_WEIGHTED_OPS = ("conv2d", "dense")
# operators whose integer kernels exist from 8 bits up (TFLite has int8 and int16 softmax,
# sigmoid, tanh, nothing narrower): below that their activations are widened to 8 bits.
MIN_8BIT_OPS = tuple(n for n, d in OPS.items() if d.int_bits[0] >= 8)


def integer_precision(op: str, p: Precision) -> Precision | None:
    """The precision `op` computes at on integers under `p`: activations narrower than its
    kernels are widened to `OpDef.int_bits[0]`; None when it runs in float (a float or index
    operator, or activations wider than its kernels: hard-swish at w8a16)."""
    d = OPS.get(op)
    if p.is_float or p.weight_only or d is None or d.quant in ("float", "index"):
        return None
    lo, hi = d.int_bits
    bits = max(p.abits, lo)
    if bits > hi:
        return None
    return p if bits == p.abits else p.with_options(act_bits=bits)


@dataclass(frozen=True)
class CalibrationData:
    """Samples for calibration, one array per sample (each with the model input's shape),
    and a description every output carries (random data is for timing studies only)."""

    samples: tuple[np.ndarray, ...]
    source: str
    is_random: bool = False


@dataclass(frozen=True)
class QuantizeResult:
    graph: Graph
    precisions: Mapping[str, Precision]  # per node
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)


def _union_find(graph: Graph) -> dict[str, str]:
    parent: dict[str, str] = {}

    def find(t: str) -> str:
        parent.setdefault(t, t)
        while parent[t] != t:
            parent[t] = parent[parent[t]]
            t = parent[t]
        return t

    for n in graph.nodes:
        if n.op in SAME_SCALE_OPS:
            skip = OPS[n.op].index_inputs  # gather's indices are not data
            acts = [
                t
                for i, t in enumerate(n.inputs)
                if t and not graph.is_constant(t) and i not in skip
            ] + list(n.outputs)
            for t in acts[1:]:
                parent[find(t)] = find(acts[0])
    return {t: find(t) for t in graph.tensors if not graph.is_constant(t)}


def _tensor_groups(graph: Graph) -> tuple[dict[str, str], dict[str, list[str]]]:
    root = _union_find(graph)
    members: dict[str, list[str]] = {}
    for t, r in root.items():
        members.setdefault(r, []).append(t)
    return root, members


def calibrate_ranges(
    graph: Graph,
    data: CalibrationData,
    method: str,
    precisions: Mapping[str, Precision],
    progress: Callable[[int], None] | None = None,
) -> dict[str, tuple[float, float]]:
    """Run the float graph on every calibration sample and return each activation tensor's
    calibrated real range (lo, hi).  A calibrator with ``passes == 2`` (``entropy_ort``) sees
    the samples a second time, after the first pass fixed its histogram's span."""
    calibrators = {
        t: make_calibrator(method)
        for t in graph.tensors
        if not graph.is_constant(t) and graph.tensors[t].is_float
    }

    def values_of(x) -> dict[str, np.ndarray]:
        # a sample of a several-input model (token ids and a mask) is a tuple or a mapping
        feeds = x if isinstance(x, (tuple, list, Mapping)) else [x]
        return run(graph, feeds, keep=True, source=data.source)

    for i, x in enumerate(data.samples):
        values = values_of(x)
        for t, cal in calibrators.items():
            if t in values:
                cal.observe(np.asarray(values[t], dtype=np.float32))
        if progress:
            progress(i + 1)
    again = {t: c for t, c in calibrators.items() if getattr(c, "passes", 1) == 2 and c.count}
    if again:  # ONNX Runtime's histogram spans all samples at once: bin them a second time
        for c in again.values():
            c.second_pass()
        for x in data.samples:
            values = values_of(x)
            for t, c in again.items():
                if t in values:
                    c.observe_again(np.asarray(values[t], dtype=np.float32))
    ranges = {}
    for t, cal in calibrators.items():
        prod = graph.producer(t)
        p = precisions.get(prod.name) if prod else None
        p = p or next(iter(precisions.values()))
        bits = p.act_bits or 8
        ranges[t] = cal.range(bits, p.symmetric_acts, True)
    for out, data in masking_adds(graph).items():
        # an additive attention mask (-1e4 where masked) would stretch the sum's range and
        # crush the scores into a few steps: the sum takes the scores' range, widened down to
        # MASK_DEPTH below their maximum, where masked positions saturate (exp(-MASK_DEPTH)
        # of the largest weight after softmax)
        lo, hi = ranges[data]
        ranges[out] = (min(lo, hi - MASK_DEPTH), hi)
    return ranges


MASK_DEPTH = 16.0  # exp(-16) ~ 1e-7


_MASK_OPS = ("add", "sub", "mul", "div", "where", "reshape", "squeeze", "transpose", "cast")


def masking_adds(graph: Graph) -> dict[str, str]:
    """Attention masks applied to data, added or selected by `where`: output -> the data
    input. A mask is computed from the outputs of index operators (a cast of an integer mask
    input, comparisons) through elementwise operators whose other operands are constants."""
    mask: set[str] = set()
    out: dict[str, str] = {}
    for n in graph.nodes:
        ins = [t for t in n.inputs if t and not graph.is_constant(t)]
        if n.op in OPS and OPS[n.op].quant == "index":
            mask.update(n.outputs)
        elif n.op in _MASK_OPS and ins and all(t in mask for t in ins):
            mask.update(n.outputs)
        elif n.op == "add" and len(ins) == 2 and sum(t in mask for t in ins) == 1:
            data = ins[0] if ins[1] in mask else ins[1]
            if graph.tensors[data].is_float:
                out[n.outputs[0]] = data
        elif n.op == "where" and n.inputs[0] in mask and len(ins) == 2:
            # where(mask, constant fill, scores) or where(mask, scores, constant fill)
            data = ins[1]
            if graph.tensors[data].is_float:
                out[n.outputs[0]] = data
    return out


class _Quantizer:
    def __init__(
        self,
        graph: Graph,
        precisions: Mapping[str, Precision],
        ranges: Mapping[str, tuple[float, float]],
    ):
        self.g = graph
        self.prec = precisions
        self.ranges = ranges
        self.root, self.members = _tensor_groups(graph)
        self.nodes: list[Node] = []
        self.tensors: dict[str, TensorInfo] = {}
        self.constants: dict[str, np.ndarray] = {}
        self.group_prec = self._group_precisions()
        self.qinfo: dict[str, TensorInfo] = {}
        # constants that same-scale operators move into a group (an embedding table, a class
        # token): their range joins the group's, and they are quantized with its parameters
        self.const_ranges: dict[str, tuple[float, float]] = {}
        for n in graph.nodes:
            if n.op in SAME_SCALE_OPS:
                skip = OPS[n.op].index_inputs
                for i, t in enumerate(n.inputs):
                    if t and graph.is_constant(t) and i not in skip and n.op != "pad":
                        v = graph.constants[t]
                        if np.issubdtype(v.dtype, np.floating) and v.size:
                            r = self.root[n.outputs[0]]
                            lo, hi = self.const_ranges.get(r, (0.0, 0.0))
                            self.const_ranges[r] = (
                                min(lo, float(v.min())),
                                max(hi, float(v.max())),
                            )

    # -- decisions --------------------------------------------------------------------------
    def _group_precisions(self) -> dict[str, Precision]:
        out: dict[str, Precision] = {}
        for n in self.g.nodes:
            if n.op in SAME_SCALE_OPS:
                continue
            p = integer_precision(n.op, self.prec[n.name])
            if p is None:
                continue
            skip = OPS[n.op].index_inputs
            for i, t in enumerate([*n.inputs, *n.outputs]):
                if not t or self.g.is_constant(t) or i in skip:
                    continue
                r = self.root[t]
                cur = out.get(r)
                if cur is None or (p.act_bits or 0) > (cur.act_bits or 0):
                    out[r] = p
        return out

    def act_info(self, t: str) -> TensorInfo | None:
        """Quantized metadata of activation tensor `t` (None: it stays float)."""
        if t in self.qinfo:
            return self.qinfo[t]
        r = self.root.get(t)
        p = self.group_prec.get(r)
        if p is None:
            return None
        fixed = self._fixed_output(r)
        if fixed is not None:
            # bounded functions (softmax, sigmoid, tanh): TFLite fixes their output parameters
            scale, zp = fixed(p.abits, p.signed_acts, p.symmetric_acts)
        else:
            lo = min(self.ranges[m][0] for m in self.members[r] if m in self.ranges)
            hi = max(self.ranges[m][1] for m in self.members[r] if m in self.ranges)
            if r in self.const_ranges:  # constant data moved into the group (embedding table)
                lo, hi = min(lo, self.const_ranges[r][0]), max(hi, self.const_ranges[r][1])
            scale, zp = quant_params_from_range(lo, hi, p.act_bits, p.symmetric_acts, p.signed_acts)
        info = TensorInfo(
            t, self.g.tensors[t].shape, p.act_dtype, QuantParams.per_tensor(scale, zp)
        )
        for m in self.members[r]:  # one representation per same-scale group
            self.qinfo[m] = TensorInfo(m, self.g.tensors[m].shape, info.dtype, info.quant)
        return self.qinfo[t]

    def _fixed_output(self, root: str):
        """The fixed output parameters of the group's integer bounded-function producer."""
        for m in self.members[root]:
            prod = self.g.producer(m)
            if prod is None or prod.op not in OPS or OPS[prod.op].fixed_output is None:
                continue
            if integer_precision(prod.op, self.prec[prod.name]) is not None:
                return OPS[prod.op].fixed_output
        return None

    # -- emission ---------------------------------------------------------------------------
    def const(self, name: str, value: np.ndarray, dtype: str, quant: QuantParams | None) -> str:
        value = np.ascontiguousarray(value)
        value.setflags(write=False)
        self.constants[name] = value
        self.tensors[name] = TensorInfo(name, value.shape, dtype, quant)
        return name

    def weight(
        self, node: Node, p: Precision, x: TensorInfo | None = None
    ) -> tuple[str, QuantParams]:
        """The quantized weights of a conv2d / dense node. With `x` (the quantized input) the
        scales also make room for the layer's bias (`_fit_bias`)."""
        w = self.g.constants[node.inputs[1]].astype(np.float64)
        qmin, qmax = p.weight_qrange()
        flat = w.reshape(w.shape[0], -1) if p.per_channel else w.reshape(1, -1)
        lo = np.minimum(flat.min(axis=1), 0.0)
        hi = np.maximum(flat.max(axis=1), 0.0)
        if p.symmetric_weights:
            scale = np.maximum(-lo, hi) / qmax
        else:
            scale = (hi - lo) / (qmax - qmin)
        floor = float(np.finfo(np.float32).tiny)
        out = self.act_info(node.outputs[0]) if x is not None else None
        if x is not None and out is not None:
            # TFLite's QuantizeMultiplier flushes multipliers below 2^-31 to zero, which would
            # drop the channel's bias too: keep s_in * s_w / s_out >= 2^-30
            floor = max(floor, 2.0**-30 * out.quant.scales()[0] / x.quant.scales()[0])
        scale = _valid_scales(scale, qmax, floor)
        if x is not None and len(node.inputs) > 2 and node.inputs[2]:
            bias = self.g.constants[node.inputs[2]].astype(np.float64)
            scale = self._fit_bias(node, p, flat, scale, lo, x, bias)
        if p.symmetric_weights:
            zp = np.zeros_like(scale, dtype=np.int64)
        else:
            zp = np.clip(np.round(qmin - lo / scale), qmin, qmax).astype(np.int64)
        q = _quantize_rows(flat, scale, zp, qmin, qmax).reshape(w.shape)
        quant = QuantParams(tuple(scale), tuple(zp), 0 if p.per_channel else None)
        name = f"{node.name}.weight_q"
        return self.const(name, q, p.weight_dtype, quant), quant

    def _fit_bias(
        self,
        node: Node,
        p: Precision,
        flat: np.ndarray,
        scale: np.ndarray,
        lo: np.ndarray,
        x: TensorInfo,
        bias: np.ndarray,
    ) -> np.ndarray:
        """Weight scales raised where the bias at scale `s_in * s_w` would not fit beside the
        accumulator (TFLite's quantization_utils and ONNX Runtime's quantizer do the same for
        int32 biases): a channel with all-zero weights loses nothing; a live channel's weights
        get coarser, with a warning naming the layer and channel."""
        qmin, qmax = p.weight_qrange()
        s_in = float(x.quant.scales()[0])
        b_info = TensorInfo("bias", bias.shape, _bias_dtype(p))
        w_info = TensorInfo("w", (len(scale),), p.weight_dtype, QuantParams.per_tensor(1.0))
        limit = rq.accumulator_limit(x, w_info, b_info)
        b_abs = np.abs(bias) if p.per_channel else np.array([np.abs(bias).max()])
        start = scale.copy()
        for _ in range(8):  # a coarser scale shrinks the accumulator bound: converges in 2-3
            zp = np.zeros_like(scale) if p.symmetric_weights else np.round(qmin - lo / scale)
            zp = np.clip(zp, qmin, qmax)
            q = _quantize_rows(flat, scale, zp.astype(np.int64), qmin, qmax)
            acc = np.abs(q - zp[:, None]).sum(axis=1) * rq.max_offset(x)
            room = limit - acc
            need = b_abs / (s_in * scale)
            if np.all(need <= room):
                break
            grow = need > room
            wider = b_abs * 1.0001 / (s_in * np.maximum(room, 1.0))
            scale = np.where(grow, _valid_scales(wider, qmax, 0.0), scale)
        live = (np.abs(flat).max(axis=1) > 0) & (scale > start)
        for c in np.flatnonzero(live):
            where = f"channel {c}" if p.per_channel else "all channels (per-tensor weights)"
            warnings.warn(
                f"node '{node.name}' {where}: bias {b_abs[c]:.6g} does not fit the "
                f"{b_info.dtype if limit == rq.INT32_MAX else 'int48'} accumulator at weight "
                f"scale {start[c]:.6g}; weight scale raised to {scale[c]:.6g} (weights "
                f"quantized coarser)",
                QuantizationWarning,
                stacklevel=4,
            )
        return scale

    def quantize_node(self, t_float: str, info: TensorInfo, name: str) -> str:
        self.tensors[info.name] = info
        self.nodes.append(Node(name, "quantize", (t_float,), (info.name,)))
        return info.name

    def build(self) -> Graph:
        g = self.g
        # where each original tensor can be read as float, and as quantized
        as_float: dict[str, str] = {}
        as_int: dict[str, str] = {}
        for t in g.inputs:
            self.tensors[t] = g.tensors[t]
            as_float[t] = t

        def want_int(t: str) -> str:
            if t in as_int:
                return as_int[t]
            info = self.act_info(t)
            qname = f"{t}.q" if t in as_float else t
            as_int[t] = self.quantize_node(
                as_float[t], TensorInfo(qname, info.shape, info.dtype, info.quant), f"{t}.quantize"
            )
            return as_int[t]

        def want_float(t: str) -> str:
            if t not in as_float:
                as_float[t] = self._dq(as_int[t], f"{t}.dq", t)
            return as_float[t]

        for n in g.nodes:
            p = self.prec[n.name]
            quantized = integer_precision(n.op, p) is not None and all(
                self.act_info(o) is not None for o in n.outputs
            )
            if p.weight_only and n.op in _WEIGHTED_OPS:
                self._emit_weight_only(n, p, want_float, as_float)
                continue
            if not quantized:
                ins = [want_float(t) if t and not g.is_constant(t) else t for t in n.inputs]
                for t in n.inputs:
                    if t and g.is_constant(t):
                        self.constants[t] = g.constants[t]
                        self.tensors[t] = g.tensors[t]
                for o in n.outputs:
                    self.tensors[o] = g.tensors[o]
                    as_float[o] = o
                self.nodes.append(Node(n.name, n.op, tuple(ins), n.outputs, dict(n.attrs)))
                continue
            ins = []
            index_inputs = OPS[n.op].index_inputs if n.op in OPS else ()
            for i, t in enumerate(n.inputs):
                if not t:
                    ins.append(t)
                elif i in index_inputs:  # indices and conditions stay as they are
                    if g.is_constant(t):
                        self.constants[t] = g.constants[t]
                        self.tensors[t] = g.tensors[t]
                    ins.append(t if g.is_constant(t) else as_float[t])
                elif g.is_constant(t) and n.op in SAME_SCALE_OPS and n.op != "pad":
                    ins.append(self._constant_like(t, self.act_info(n.outputs[0])))
                elif g.is_constant(t):
                    ins.append(self._quantize_constant_input(n, i, p, ins))
                else:
                    ins.append(want_int(t))
            outs = []
            for o in n.outputs:
                info = self.act_info(o)
                self.tensors[o] = info
                as_int[o] = o
                outs.append(o)
            self.nodes.append(Node(n.name, n.op, tuple(ins), tuple(outs), dict(n.attrs)))
        outputs = []
        for t in g.outputs:
            if t in as_float:
                outputs.append(as_float[t])
            else:
                outputs.append(self._dq(as_int[t], f"{t}.dequantized", t))
        return Graph(
            g.name,
            tuple(self.nodes),
            self.tensors,
            g.inputs,
            tuple(outputs),
            self.constants,
            "gemmlowp",
            dict(g.metadata),
        )

    def _constant_like(self, t: str, info: TensorInfo) -> str:
        """Constant data of a same-scale operator, quantized with the group's parameters."""
        v = self.g.constants[t].astype(np.float64)
        scale, zp = info.quant.scale[0], info.quant.zero_point[0]
        lo, hi = dtype_range(info.dtype)
        q = np.clip(np.round(v / scale) + zp, lo, hi).astype(np.int64)
        return self.const(f"{t}.q", q, info.dtype, info.quant)

    def _dq(self, t_int: str, fname: str, orig: str) -> str:
        self.tensors[fname] = TensorInfo(fname, self.g.tensors[orig].shape, "float32")
        self.nodes.append(Node(f"{orig}.dequantize", "dequantize", (t_int,), (fname,)))
        return fname

    def _quantize_constant_input(self, n: Node, i: int, p: Precision, ins: list[str]) -> str:
        g = self.g
        t = n.inputs[i]
        if n.op in _WEIGHTED_OPS and i == 1:
            name, _ = self.weight(n, p, self.tensors[ins[0]])
            return name
        if n.op in _WEIGHTED_OPS and i == 2:
            return self._bias(n, g.constants[t], self.tensors[ins[0]], self.tensors[ins[1]], p)
        # any other constant operand (e.g. a scalar multiplier): per-tensor at activation bits
        v = g.constants[t].astype(np.float64)
        lo, hi = float(min(v.min(), 0.0)), float(max(v.max(), 0.0))
        scale, zp = quant_params_from_range(lo, hi, p.act_bits, p.symmetric_acts, p.signed_acts)
        qmin, qmax = p.act_qrange()
        q = np.clip(np.round(v / scale) + zp, qmin, qmax)
        return self.const(
            f"{t}.q", q.astype(np.int64), p.act_dtype, QuantParams.per_tensor(scale, zp)
        )

    def _bias(self, n: Node, b: np.ndarray, x: TensorInfo, w: TensorInfo, p: Precision) -> str:
        """The bias at scale `s_in * s_w[c]` (zero point 0). `weight` chose scales it fits at;
        a value that still would not is clamped, with a warning naming the layer and channel."""
        s_bias = x.quant.scales()[0] * w.quant.scales()
        dtype = _bias_dtype(p)
        q = np.round(b.astype(np.float64) / s_bias)
        lim = rq.accumulator_limit(x, w, TensorInfo("bias", b.shape, dtype))
        lim = min(lim, np.iinfo(dtype).max)
        for c in np.flatnonzero(np.abs(q) > lim):
            warnings.warn(
                f"node '{n.name}' channel {c}: bias {b.flat[c]:.6g} is {abs(q.flat[c]):.4g} "
                f"steps of {s_bias.flat[min(c, s_bias.size - 1)]:.4g}, beyond the {lim} the "
                f"accumulator holds; clamped",
                QuantizationWarning,
                stacklevel=4,
            )
        q = np.clip(q, -lim, lim).astype(np.int64)
        quant = QuantParams(tuple(s_bias), (0,) * len(s_bias), 0 if len(s_bias) > 1 else None)
        return self.const(f"{n.name}.bias_q", q, dtype, quant)

    def _emit_weight_only(self, n: Node, p: Precision, want_float, as_float) -> None:
        wq, _ = self.weight(n, p)
        wf = f"{n.name}.weight_dq"
        self.tensors[wf] = TensorInfo(wf, self.tensors[wq].shape, "float32")
        self.nodes.append(Node(f"{n.name}.weight_dequantize", "dequantize", (wq,), (wf,)))
        ins = [want_float(n.inputs[0]), wf]
        if len(n.inputs) > 2 and n.inputs[2]:
            self.constants[n.inputs[2]] = self.g.constants[n.inputs[2]]
            self.tensors[n.inputs[2]] = self.g.tensors[n.inputs[2]]
            ins.append(n.inputs[2])
        for o in n.outputs:
            self.tensors[o] = self.g.tensors[o]
            as_float[o] = o
        self.nodes.append(Node(n.name, n.op, tuple(ins), n.outputs, dict(n.attrs)))


def _bias_dtype(p: Precision) -> str:
    return "int64" if p.accumulator_dtype == "int64" else "int32"


def _valid_scales(scale: np.ndarray, qmax: int, floor: float) -> np.ndarray:
    """Weight scales as stored (float32), each one usable. A channel of zeros gets the layer's
    widest scale: any scale holds zeros exactly, and this one keeps its requantization
    multiplier in the layer's usual range (a floor like 1e-12 / qmax made it ~1e-17 and its
    bias ~1e18 steps). A tiny-range channel is raised to `floor` (its weights round to fewer
    levels, or to zero, where they are negligible anyway)."""
    scale = np.asarray(scale, np.float64)
    live = np.isfinite(scale) & (scale > 0)
    widest = max(float(scale[live].max()) if live.any() else 1.0 / qmax, floor)
    scale = np.where(live, np.maximum(scale, floor), widest)
    # Scales are stored as float32 in every format we exchange with (TFLite, ONNX).
    return scale.astype(np.float32).astype(np.float64)


def _quantize_rows(
    flat: np.ndarray, scale: np.ndarray, zp: np.ndarray, qmin: int, qmax: int
) -> np.ndarray:
    """Weights quantized row by row (one row per scale) as int64."""
    return np.clip(np.round(flat / scale[:, None]) + zp[:, None], qmin, qmax).astype(np.int64)


def activation_groups(
    prepared: Graph, precisions: Mapping[str, Precision]
) -> dict[str, tuple[str, Precision | None]]:
    """Each activation tensor's same-scale group (its root tensor) and the precision that group
    is quantized at (None: it stays float). QAT observes one range per group."""
    q = _Quantizer(prepared, precisions, {})
    return {t: (r, q.group_prec.get(r)) for t, r in q.root.items()}


def assign_precisions(
    graph: Graph, default: Precision, overrides: Mapping[str, Precision] | None = None
) -> dict[str, Precision]:
    prec = {n.name: default for n in graph.nodes}
    for name, p in (overrides or {}).items():
        if name in prec:
            prec[name] = p
    return prec


def quantize_graph(
    graph: Graph,
    precision: Precision,
    data: CalibrationData,
    calibration: str = "minmax",
    overrides: Mapping[str, Precision] | None = None,
    progress: Callable[[int], None] | None = None,
    prepared: bool = False,
) -> QuantizeResult:
    """Post-training quantization of a float graph (BN folded and activations fused first)."""
    if graph.is_quantized:
        raise InputError(f"model '{graph.name}' is already quantized")
    if not data.samples:
        raise InputError("calibration data: no samples")
    g = graph if prepared else prepare_for_quantization(graph)
    prec = assign_precisions(g, precision, overrides)
    meta = dict(g.metadata)
    meta.update(
        {
            "precision": str(precision),
            "calibration": calibration,
            "calibration_data": data.source,
            "calibration_random": data.is_random,
        }
    )
    g = g.replace(metadata=meta)
    if all(p.is_float for p in prec.values()):
        return QuantizeResult(_to_float_dtype(g, precision), prec, {})
    ranges = calibrate_ranges(g, data, calibration, prec, progress)
    return QuantizeResult(quantize_with_ranges(g, prec, ranges), prec, ranges)


# what a graph quantized for costing alone says about its calibration
COST_ONLY_SOURCE = "none: cost only (nominal activation ranges; costs do not depend on them)"


def quantize_for_cost(
    graph: Graph, precision: Precision, overrides: Mapping[str, Precision] | None = None
) -> QuantizeResult:
    """The quantized graph a cost model needs, without running the network: every activation
    gets the nominal range (-1, 1). Code, cycles, traffic and energy depend on shapes, types and
    the quantization scheme, never on the scales (requantization parameters are kernel
    arguments), so this costs what a calibrated graph costs without allocating a single
    activation (`tests/test_faults.py` compares the two)."""
    if graph.is_quantized:
        raise InputError(f"model '{graph.name}' is already quantized")
    g = prepare_for_quantization(graph)
    prec = assign_precisions(g, precision, overrides)
    meta = dict(g.metadata)
    meta.update(
        {
            "precision": str(precision),
            "calibration": "none",
            "calibration_data": COST_ONLY_SOURCE,
            "calibration_random": True,
        }
    )
    g = g.replace(metadata=meta)
    if all(p.is_float for p in prec.values()):
        return QuantizeResult(_to_float_dtype(g, precision), prec, {})
    ranges = {t: (-1.0, 1.0) for t in g.tensors if not g.is_constant(t) and g.tensors[t].is_float}
    return QuantizeResult(quantize_with_ranges(g, prec, ranges), prec, ranges)


def quantize_with_ranges(
    prepared: Graph, precisions: Mapping[str, Precision], ranges: Mapping[str, tuple[float, float]]
) -> Graph:
    """The quantized graph for a prepared float graph (BN folded, activations fused) whose
    activation ranges are already known: from calibration (PTQ) or learned by
    quantization-aware training."""
    return _Quantizer(prepared, precisions, ranges).build()


def _to_float_dtype(graph: Graph, precision: Precision) -> Graph:
    """fp32 is the float graph itself; fp16 is recorded as the storage type of weights and
    activations (the float executor computes in float64 either way)."""
    if precision.float_dtype == "float32":
        return graph
    tensors = {
        k: TensorInfo(v.name, v.shape, "float16" if v.is_float else v.dtype, v.quant)
        for k, v in graph.tensors.items()
    }
    constants = {
        k: (v.astype(np.float16) if v.dtype == np.float32 else v)
        for k, v in graph.constants.items()
    }
    return graph.replace(tensors=tensors, constants=constants)
