"""Per-layer sensitivity analysis and partial quantization (Wu et al. 2020, §6).

* `layer_sensitivity`: for every weighted layer (conv2d / dense of the prepared graph) the
  accuracy (top-1 on labelled data; the output SNR in dB against the float model when there are
  no labels) when *only that layer* is quantized at the low precision and every other node
  stays float (`ptq.quantize_graph` with default `Precision(float_dtype="float32")` and one
  override). The integer-only reference executor computes it; the layer's input and output are
  quantized / dequantized around it.
* `local_snr`: a cheaper ranking for every quantized operator, not only weighted ones: each
  node of the quantized graph fed the float model's own inputs (quantized at the node's input
  parameters), its dequantized output against the float model's. One float run and one pass
  over the nodes per sample, where `layer_sensitivity` runs the whole network once per layer.
* `greedy_mixed_precision`: start from every layer at the low precision; while the accuracy is
  below the target, move the next most sensitive layer (lowest single-layer accuracy first) to
  the high precision (default: float, as Wu et al.'s "partial quantization"; or e.g. w8a8).
  Stops at the first configuration that meets the target (or when every layer is high).
* `write_result_yaml`: the chosen configuration as a mixed-precision YAML
  (`accelsim.quant.mixed.write_mixed`), which `mixed.load_mixed` reads back.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from accelsim.core.fsutil import atomic_write_text
from accelsim.core.precision import Precision
from accelsim.core.qparams import dequantize_array
from accelsim.model.batch import with_batch
from accelsim.model.graph import Graph, Node, TensorInfo
from accelsim.quant.metrics import output_snr_db, predict_logits, top1
from accelsim.quant.mixed import write_mixed
from accelsim.quant.ptq import CalibrationData, quantize_graph
from accelsim.quant.transforms import prepare_for_quantization
from accelsim.ref.executor import domain_of, find_kernel, run
from accelsim.ref.registry import KernelCall

FP32 = Precision(None, None, float_dtype="float32")


def weighted_layers(graph: Graph) -> list[str]:
    """Names of the conv2d / dense nodes of the prepared (BN-folded) graph, in order."""
    g = prepare_for_quantization(graph)
    return [n.name for n in g.nodes if n.op in ("conv2d", "dense")]


class _Evaluator:
    """Quantize a prepared graph with given per-layer precisions and score it."""

    def __init__(
        self,
        graph: Graph,
        data: CalibrationData,
        calibration: str,
        x: np.ndarray,
        y: np.ndarray | None,
        batch_size: int,
    ) -> None:
        batch = data.samples[0].shape[0] if data.samples else 1
        self.prepared = with_batch(prepare_for_quantization(graph), batch)
        self.data = data
        self.calibration = calibration
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.reference = None if y is not None else predict_logits(self.prepared, x, batch_size)

    def score(self, default: Precision, overrides: Mapping[str, Precision]) -> float:
        q = quantize_graph(
            self.prepared,
            default,
            self.data,
            self.calibration,
            overrides=dict(overrides),
            prepared=True,
        ).graph
        return self.score_graph(q)

    def score_graph(self, q: Graph) -> float:
        """Score of an already quantized (or float) graph on this evaluator's data."""
        if self.y is not None:
            return top1(q, self.x, self.y, self.batch_size)
        return output_snr_db(self.reference, predict_logits(q, self.x, self.batch_size))


@dataclass
class SensitivityResult:
    metric: str  # "top1" or "snr_db"
    low: Precision
    high: Precision
    per_layer: list[tuple[str, float]]  # (layer, score with only it at `low`)
    order: list[str]  # most sensitive first
    target: float
    steps: list[dict] = field(default_factory=list)  # {"high_layers": [...], "score": s}
    kept_high: list[str] = field(default_factory=list)
    score: float = float("nan")
    met: bool = False

    def precisions(self) -> dict[str, Precision]:
        """Per-layer precisions of the chosen configuration (weighted layers only)."""
        return {
            name: (self.high if name in self.kept_high else self.low) for name, _ in self.per_layer
        }


def layer_sensitivity(
    graph: Graph,
    low: Precision,
    data: CalibrationData,
    x: np.ndarray,
    y: np.ndarray | None = None,
    calibration: str = "minmax",
    layers: Sequence[str] | None = None,
    batch_size: int = 256,
    evaluator: _Evaluator | None = None,
) -> list[tuple[str, float]]:
    """(layer, score) with only that layer quantized at `low`, every other node float."""
    ev = evaluator or _Evaluator(graph, data, calibration, x, y, batch_size)
    names = (
        list(layers)
        if layers is not None
        else [n.name for n in ev.prepared.nodes if n.op in ("conv2d", "dense")]
    )
    return [(name, ev.score(FP32, {name: low})) for name in names]


def local_snr(prepared: Graph, q: Graph, x: np.ndarray) -> dict[str, float]:
    """Per-node local quantization SNR in dB: every node of `q` (quantized from the float
    graph `prepared`, node and activation names shared) with a quantized output, run alone on
    the float model's values of its inputs quantized at `q`'s parameters (weights as `q` holds
    them), its outputs dequantized and compared with the float model's, summed over the
    samples `x` (N, ...), one at a time. Upstream nodes are exact here, so this is the error
    the node itself adds: its inputs rounded to their grids and clipped to their calibrated
    ranges, its weights rounded, its output requantized (a data-movement node shows the
    rounding of the tensor it moves; inf only where nothing rounds). The node's effect on the
    network's score is not in it: a ranking to bisect over, not a score."""
    float_names = set(prepared.tensors)
    nodes = [
        n
        for n in q.nodes
        if n.op not in ("quantize", "dequantize")
        and any(q.tensors[t].is_quantized for t in n.outputs)
        and all(t in float_names for t in n.outputs)
    ]

    def source(t: str) -> str:
        """The float tensor a tensor of `q` stands for (through inserted quantize nodes)."""
        while t not in float_names:
            prod = q.producer(t)
            if prod is None or prod.op not in ("quantize", "dequantize"):
                break
            t = prod.inputs[0]
        return t

    quantize = find_kernel("quantize", q.requant_mode)
    signal = dict.fromkeys((n.name for n in nodes), 0.0)
    noise = dict.fromkeys((n.name for n in nodes), 0.0)
    for i in range(len(x)):
        fv = run(prepared, [np.asarray(x[i : i + 1])], keep=True)
        for n in nodes:
            infos = [q.tensors[t] if t else None for t in n.inputs]
            args: list[np.ndarray | None] = []
            for t, info in zip(n.inputs, infos):
                if info is None:
                    args.append(None)
                elif t in q.constants:
                    args.append(q.constants[t])
                elif not info.is_quantized:
                    args.append(np.asarray(fv[source(t)]))
                else:  # as the graph's own quantize kernel rounds (its requantization mode)
                    v = np.asarray(fv[source(t)], np.float32)
                    call = KernelCall(
                        Node(f"{t}.quantize", "quantize", ("x",), (t,)),
                        [v],
                        [TensorInfo("x", info.shape, "float32")],
                        [info],
                        q,
                    )
                    args.append(quantize(call)[0])
            outs = [q.tensors[t] for t in n.outputs]
            res = find_kernel(n.op, domain_of(q, n))(KernelCall(n, args, infos, outs, q))
            for t, r, info in zip(n.outputs, res, outs):
                if not info.is_quantized:
                    continue
                ref = np.asarray(fv[t], np.float64)
                got = dequantize_array(np.asarray(r).reshape(info.shape), info.quant)
                signal[n.name] += float(np.sum(ref * ref))
                noise[n.name] += float(np.sum((got - ref) ** 2))
    return {
        k: (math.inf if noise[k] == 0.0 else 10.0 * math.log10(max(signal[k], 1e-300) / noise[k]))
        for k in signal
    }


def greedy_mixed_precision(
    graph: Graph,
    low: Precision,
    data: CalibrationData,
    x: np.ndarray,
    y: np.ndarray | None,
    target: float,
    high: Precision = FP32,
    calibration: str = "minmax",
    batch_size: int = 256,
    log: Callable[[str], None] | None = None,
) -> SensitivityResult:
    """Sensitivity analysis, then keep the most sensitive layers at `high` until the score
    (top-1, or output SNR in dB without labels) reaches `target`."""
    ev = _Evaluator(graph, data, calibration, x, y, batch_size)
    per_layer = layer_sensitivity(graph, low, data, x, y, calibration, evaluator=ev)
    order = [name for name, _ in sorted(per_layer, key=lambda t: t[1])]
    res = SensitivityResult(
        "top1" if y is not None else "snr_db", low, high, per_layer, order, target
    )
    if log:
        for name, s in per_layer:
            log(f"  only {name} at {low}: {s:.4f}")
    for k in range(len(order) + 1):
        kept = order[:k]
        s = ev.score(low, {name: high for name in kept})
        res.steps.append({"high_layers": list(kept), "score": s})
        if log:
            log(f"  {k} layer(s) at {high}: {s:.4f}")
        res.kept_high, res.score = list(kept), s
        if s >= target:
            res.met = True
            break
    return res


def write_result_yaml(path, result: SensitivityResult, comment: str = "") -> None:
    """The chosen configuration as a mixed-precision YAML (default = the low precision)."""
    per_layer = {name: result.high for name in result.kept_high}
    text = comment or (
        f"greedy sensitivity search (Wu et al. 2020 §6): {len(result.kept_high)} "
        f"most sensitive layer(s) at {result.high}, the rest {result.low}; "
        f"{result.metric} {result.score:.4f} (target {result.target:.4f})"
    )
    if not per_layer:  # every layer at the low precision met the target
        atomic_write_text(
            path,
            "\n".join(f"# {ln}" for ln in text.splitlines())
            + f'\ndefault: {result.low}\nlayers:\n  "*": {result.low}\n',
        )
        return
    write_mixed(path, result.low, per_layer, text)
