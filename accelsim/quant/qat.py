"""Quantization-aware training (Jacob et al. 2018, §3; Krishnamoorthi 2018, §3.2).

The float training graph (conv -> batch_norm -> relu/relu6 nodes, as the zoo builds it) is
trained in torch with *simulated* quantization exactly where the integer graph will quantize:

* **Fake quantization** `q(r) = round((clamp(r, a, b) - a) / s) * s + a`, written with the
  scale `s` and the integer zero point `z` of the affine scheme as
  `(clamp(round(r / s) + z, qmin, qmax) - z) * s`: the range `[a, b] = [(qmin - z) s,
  (qmax - z) s]` is the requested one nudged so that 0.0 is exactly representable (`z` is an
  integer). The backward pass is the straight-through estimator: gradient 1 inside `[a, b]`,
  0 outside (`FakeQuantize`).
* **Weights**: the min/max of the current (BN-folded) weights every step, per output channel or
  per tensor, symmetric or asymmetric, as the layer's `Precision` says; the scale and zero point
  are computed exactly as `ptq` computes them for the integer graph (restricted range, rounding
  half to even).
* **Activations**: every tensor that the integer graph holds quantized (the inputs and outputs
  of arithmetic operators after BN folding and activation fusion; one observer per group of
  tensors that share a representation) gets an observer with an exponential moving average of
  the batch min and max (decay `ema_decay` = 0.99; the first batch initializes it). Activation
  quantization is *delayed*: for the first `act_quant_delay` fraction of the steps the observers
  only watch, then the activations are fake-quantized with `ptq`'s parameters for the EMA range
  (`calibrate.quant_params_from_range`; rounding half away from zero as TFLite's Quantize).
* **Batch norm folded during training, with correction and freezing** (whitepaper Fig. 10):
  the float conv `conv(x, W)` gives the batch mean `mu_B` and deviation
  `sigma_B = sqrt(var_B + eps)` (and updates the running statistics); the weights are scaled by
  `gamma / sigma_B` and by the correction factor `c = sigma_B / sigma` (sigma from the running
  variance), i.e. by `gamma / sigma`, and fake-quantized, so the quantized weights never jitter
  with the batch; the conv output is multiplied by `1 / c = sigma / sigma_B` and gets the bias
  `beta - gamma mu_B / sigma_B`, which is batch normalization with batch statistics. After
  `bn_freeze` of the steps the statistics freeze: no more updates, no `1 / c`, bias
  `beta + gamma (b - mu) / sigma` -- exactly the folded layer of the integer graph.

After training the parameters are written back into the float graph (`torch_graph.to_graph`,
BN with its final running statistics), `transforms.prepare_for_quantization` folds the BN and
fuses the activations, the observers' EMA ranges become the `ranges` of the prepared graph's
tensors (same names: folding and fusion keep output tensor names), and
`ptq.quantize_with_ranges` builds the same integer graph type as post-training quantization.

The integer graph and the torch fake-quant model compute the same quantized function up to
rounding details (weights, activation scales and zero points are identical; tests check that):

* requantization: TFLite's `MultiplyByQuantizedMultiplier` rounds twice -- `SRDHM` rounds
  `acc * M0` to an integer, then the rounding right shift by `n` rounds again -- where fake
  quantization rounds `acc * M` once. The first rounding moves the result by up to `2^-(n+1)`
  output steps, so values within that distance of a half step round the other way: with
  `M = 0.186` (`n = 2`) 12 % of the accumulators in [-300, 300] come out one step off. This
  is the dominant difference, and it is largest with 4-bit activations (large input and output
  scales make `M` close to 1 and the accumulators small);
* the bias is int32 at scale `S_in * S_w` in both (QAT rounds the folded bias to that grid once
  activations are quantized), but BN is folded in float64 by `transforms` and in float32 here, so
  a weight or bias that sits on a rounding boundary can land on the other integer;
* average pooling divides the integer sum with its own rounding.

Each moves an activation by at most about one quantization step, which flips the argmax of a
few borderline samples (tests/test_qat.py bounds the top-1 difference).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from accelsim.core.errors import InputError
from accelsim.core.precision import Precision
from accelsim.model.graph import Graph, Node
from accelsim.quant import ptq
from accelsim.quant.calibrate import quant_params_from_range
from accelsim.quant.torch_graph import GraphModule, conv2d, dense, to_graph
from accelsim.quant.train import TrainConfig, fit, torch_threads, torch_top1
from accelsim.quant.transforms import prepare_for_quantization

# ---------------------------------------------------------------------------------------------
# Fake quantization with the straight-through estimator
# ---------------------------------------------------------------------------------------------


def _round(v: torch.Tensor, half_away: bool) -> torch.Tensor:
    if half_away:  # TFLite's TfLiteRound / the activation Quantize op
        return torch.sign(v) * torch.floor(torch.abs(v) + 0.5)
    return torch.round(v)  # half to even, as numpy.round in ptq's weight quantization


class FakeQuantize(torch.autograd.Function):
    """`(clamp(round(x / s) + z, qmin, qmax) - z) * s`; straight-through gradient for `x`
    inside the representable range `[(qmin - z) s, (qmax - z) s]`, zero outside; no gradient
    for the scale and zero point (they come from min/max statistics, not learned)."""

    @staticmethod
    def forward(ctx, x, scale, zero_point, qmin: int, qmax: int, half_away: bool = True):
        q = torch.clamp(_round(x / scale, half_away) + zero_point, qmin, qmax)
        lo = (qmin - zero_point) * scale
        hi = (qmax - zero_point) * scale
        ctx.save_for_backward((x >= lo) & (x <= hi))
        return (q - zero_point) * scale

    @staticmethod
    def backward(ctx, grad):
        (inside,) = ctx.saved_tensors
        return grad * inside.to(grad.dtype), None, None, None, None, None


def fake_quantize(
    x: torch.Tensor, scale, zero_point, qmin: int, qmax: int, half_away: bool = True
) -> torch.Tensor:
    scale = torch.as_tensor(scale, dtype=x.dtype)
    zero_point = torch.as_tensor(zero_point, dtype=x.dtype)
    return FakeQuantize.apply(x, scale, zero_point, int(qmin), int(qmax), half_away)


def weight_qparams(w: torch.Tensor, p: Precision) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale and zero point of weight tensor `w` (output channels on axis 0), shaped to
    broadcast against `w`, computed as `ptq` computes them (float64 statistics, scale rounded
    to float32)."""
    qmin, qmax = p.weight_qrange()
    wd = w.detach().to(torch.float64)
    flat = wd.reshape(wd.shape[0], -1) if p.per_channel else wd.reshape(1, -1)
    lo = torch.clamp(flat.min(dim=1).values, max=0.0)
    hi = torch.clamp(flat.max(dim=1).values, min=0.0)
    if p.symmetric_weights:
        scale = torch.clamp(torch.maximum(-lo, hi), min=1e-12) / qmax
        zp = torch.zeros_like(scale)
    else:
        scale = torch.clamp(hi - lo, min=1e-12) / (qmax - qmin)
        zp = torch.clamp(torch.round(qmin - lo / scale), qmin, qmax)
    scale = scale.to(torch.float32)
    shape = (-1,) + (1,) * (w.dim() - 1) if p.per_channel else (1,) * w.dim()
    return scale.reshape(shape).to(w.dtype), zp.reshape(shape).to(w.dtype)


def fake_quantize_weight(w: torch.Tensor, p: Precision) -> torch.Tensor:
    scale, zp = weight_qparams(w, p)
    qmin, qmax = p.weight_qrange()
    return FakeQuantize.apply(w, scale, zp, qmin, qmax, False)


class EMAObserver(torch.nn.Module):
    """Exponential moving average of the batch min and max of one tensor group."""

    def __init__(self, decay: float = 0.99) -> None:
        super().__init__()
        self.decay = decay
        self.register_buffer("lo", torch.tensor(0.0, dtype=torch.float64))
        self.register_buffer("hi", torch.tensor(0.0, dtype=torch.float64))
        self.register_buffer("count", torch.tensor(0, dtype=torch.int64))

    def observe(self, x: torch.Tensor) -> None:
        with torch.no_grad():
            lo, hi = x.detach().min().to(torch.float64), x.detach().max().to(torch.float64)
            if int(self.count) == 0:
                self.lo.copy_(lo)
                self.hi.copy_(hi)
            else:
                self.lo.mul_(self.decay).add_((1 - self.decay) * lo)
                self.hi.mul_(self.decay).add_((1 - self.decay) * hi)
            self.count += 1

    def range(self) -> tuple[float, float]:
        return float(self.lo), float(self.hi)


# ---------------------------------------------------------------------------------------------
# The QAT module
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QATConfig:
    epochs: int = 4
    lr: float = 1e-3
    batch_size: int = 64
    optimizer: str = "adam"
    weight_decay: float = 0.0
    seed: int = 0
    threads: int | None = 1
    ema_decay: float = 0.99
    act_quant_delay: float = 0.1  # fraction of the steps before activations are quantized
    bn_freeze: float = 0.5  # fraction of the steps after which BN statistics freeze
    bn_momentum: float = 0.1

    def train_config(self) -> TrainConfig:
        return TrainConfig(
            epochs=self.epochs,
            lr=self.lr,
            batch_size=self.batch_size,
            optimizer=self.optimizer,
            weight_decay=self.weight_decay,
            seed=self.seed,
            threads=self.threads,
        )


class QATModule(GraphModule):
    """`GraphModule` with fake quantization and BN folding (see the module docstring)."""

    def __init__(
        self,
        graph: Graph,
        precision: Precision,
        overrides: Mapping[str, Precision] | None = None,
        ema_decay: float = 0.99,
        bn_momentum: float = 0.1,
    ) -> None:
        super().__init__(graph, bn_momentum=bn_momentum)
        self.prepared_structure = prepare_for_quantization(graph)
        prep = self.prepared_structure
        self.precisions = ptq.assign_precisions(prep, precision, overrides)
        groups = ptq.activation_groups(prep, self.precisions)
        # activation quantization points: one observer per same-representation group
        self.observer_of: dict[str, str] = {}
        self.act_prec: dict[str, Precision] = {}
        self.observers = torch.nn.ModuleDict()
        points = list(prep.inputs) + [
            t
            for n in prep.nodes
            for t in n.outputs
            if n.op not in ptq.SAME_SCALE_OPS and n.op != "softmax"
        ]
        group_key: dict[str, str] = {}
        for t in points:
            root, p = groups.get(t, (None, None))
            if p is None:
                continue
            if root not in group_key:
                group_key[root] = f"g{len(group_key)}"
                self.observers[group_key[root]] = EMAObserver(ema_decay)
            self.observer_of[t] = group_key[root]
            self.act_prec[t] = p
        # conv/dense nodes whose batch norm is folded (same rule as fold_batch_norm)
        self.folded_bn: dict[str, Node] = {}
        for bn in (n for n in graph.nodes if n.op == "batch_norm"):
            prod = graph.producer(bn.inputs[0])
            if prod is None:
                continue
            pn = next((n for n in prep.nodes if n.name == prod.name), None)
            if (
                pn is not None
                and len(pn.inputs) > 1
                and pn.inputs[1] == f"{prod.name}.weight_folded"
            ):
                self.folded_bn[prod.name] = bn
                self.skip.add(bn.name)
                self.out_names[prod.name] = bn.outputs
        self.weight_prec = {
            n.name: self.precisions[n.name]
            for n in prep.nodes
            if n.op in ("conv2d", "dense") and not self.precisions[n.name].is_float
        }
        self.quantize_acts = False
        self.bn_frozen = False

    # -- activations ---------------------------------------------------------------------
    def act_qparams(self, t: str) -> tuple[float, int, int, int]:
        p = self.act_prec[t]
        lo, hi = self.observers[self.observer_of[t]].range()
        scale, zp = quant_params_from_range(lo, hi, p.act_bits, p.symmetric_acts, p.signed_acts)
        qmin, qmax = p.act_qrange()
        return scale, zp, qmin, qmax

    def on_value(self, name: str, value: torch.Tensor) -> torch.Tensor:
        key = self.observer_of.get(name)
        if key is None:
            return value
        if self.training:
            self.observers[key].observe(value)
        if not self.quantize_acts or int(self.observers[key].count) == 0:
            return value
        scale, zp, qmin, qmax = self.act_qparams(name)
        return fake_quantize(value, scale, zp, qmin, qmax, half_away=True)

    # -- weights and folded batch norm ---------------------------------------------------------
    def _weight(self, node: Node, w: torch.Tensor) -> torch.Tensor:
        p = self.weight_prec.get(node.name)
        return w if p is None else fake_quantize_weight(w, p)

    def _bias(
        self, node: Node, b: torch.Tensor | None, w_used: torch.Tensor
    ) -> torch.Tensor | None:
        """The bias as the integer graph holds it: int32 at scale `S_in * S_w` (rounded half to
        even as `ptq`), once activations are quantized; straight-through gradient."""
        p = self.weight_prec.get(node.name)
        if (
            b is None
            or p is None
            or not self.quantize_acts
            or node.inputs[0] not in self.observer_of
        ):
            return b
        s_in = self.act_qparams(node.inputs[0])[0]
        s_w, _ = weight_qparams(w_used, p)
        s = (s_in * s_w.reshape(-1).to(torch.float64)).to(b.dtype)
        if s.numel() == 1:
            s = s.expand_as(b)
        return b + (torch.round(b.detach() / s) * s - b.detach())

    def eval_node(self, node: Node, env) -> list[torch.Tensor]:
        if (
            node.op not in ("conv2d", "dense")
            or node.name not in self.weight_prec
            and node.name not in self.folded_bn
        ):
            return super().eval_node(node, env)
        x = env[node.inputs[0]]
        w = self.const(node.inputs[1])
        b = self.value(env, node.inputs[2]) if len(node.inputs) > 2 else None
        op = conv2d if node.op == "conv2d" else dense
        extra = {} if node.op == "conv2d" else {"out_shape": self._out_shape(node, env)}
        bn_node = self.folded_bn.get(node.name)
        if bn_node is None:
            return [op(node, x, self._weight(node, w), self._bias(node, b, w), **extra)]
        bn = self.bn(bn_node.name)
        wshape = (-1,) + (1,) * (w.dim() - 1)
        sigma = torch.sqrt(bn.running_var + bn.eps)
        w_fold = w * (bn.weight / sigma).reshape(wshape)  # gamma/sigma_B * (sigma_B/sigma)
        yq = op(node, x, self._weight(node, w_fold), None, **extra)
        if self.training and not self.bn_frozen:
            y_float = op(node, x, w, None, **extra)  # batch statistics of the conv
            dims = (0, 2, 3) if y_float.dim() == 4 else tuple(range(y_float.dim() - 1))
            mean_b = y_float.mean(dim=dims)
            var_b = y_float.var(dim=dims, unbiased=False)
            n = y_float.numel() / y_float.shape[1 if y_float.dim() == 4 else -1]
            with torch.no_grad():
                m = bn.momentum
                bias_mean = mean_b.detach() + (b.detach() if b is not None else 0.0)
                bn.running_mean.mul_(1 - m).add_(m * bias_mean)
                bn.running_var.mul_(1 - m).add_(m * var_b.detach() * n / max(n - 1, 1))
                bn.num_batches_tracked += 1
            sigma_b = torch.sqrt(var_b + bn.eps)
            inv_c = sigma / sigma_b  # undo the correction
            shift = bn.bias - bn.weight * mean_b / sigma_b
            return [_channel_affine(yq, inv_c, shift)]
        b0 = b if b is not None else torch.zeros_like(bn.running_mean)
        shift = bn.bias + bn.weight * (b0 - bn.running_mean) / sigma
        return [_channel_affine(yq, None, self._bias(node, shift, w_fold))]


def _channel_affine(y: torch.Tensor, scale: torch.Tensor | None, shift: torch.Tensor):
    shape = (1, -1, 1, 1) if y.dim() == 4 else (1,) * (y.dim() - 1) + (-1,)
    if scale is not None:
        y = y * scale.reshape(shape)
    return y + shift.reshape(shape)


# ---------------------------------------------------------------------------------------------
# Training and the integer graph
# ---------------------------------------------------------------------------------------------


@dataclass
class QATResult:
    graph: Graph  # the quantized integer graph (ptq.quantize_with_ranges)
    float_graph: Graph  # the trained float graph written back (BN unfolded)
    prepared: Graph  # BN folded, activations fused: what was quantized
    ranges: dict[str, tuple[float, float]]
    precisions: Mapping[str, Precision]
    module: QATModule
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def qat(
    graph: Graph,
    precision: Precision,
    x: np.ndarray,
    y: np.ndarray,
    overrides: Mapping[str, Precision] | None = None,
    cfg: QATConfig | None = None,
    log: Callable[[str], None] | None = None,
    **changes,
) -> QATResult:
    """Quantization-aware training of the float `graph` (usually a trained one: QAT
    fine-tunes) on (x, y); returns the integer graph and what produced it."""
    cfg = cfg or QATConfig()
    if changes:
        cfg = QATConfig(**{**cfg.__dict__, **changes})
    if graph.is_quantized:
        raise InputError(f"model '{graph.name}' is already quantized")
    if precision.is_float and not overrides:
        raise InputError(f"QAT needs an integer precision (e.g. w8a8), found {precision.name}")
    t0 = time.perf_counter()
    tcfg = cfg.train_config()
    steps_per_epoch = math.ceil(len(x) / cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    delay = int(round(cfg.act_quant_delay * total))
    freeze = int(round(cfg.bn_freeze * total))
    with torch_threads(cfg.threads):
        torch.manual_seed(cfg.seed)
        module = QATModule(graph, precision, overrides, cfg.ema_decay, cfg.bn_momentum)

        def on_step(step: int) -> None:
            module.quantize_acts = step >= delay
            module.bn_frozen = step >= freeze

        history = fit(module, graph, x, y, tcfg, on_step=on_step, log=log)
        module.quantize_acts = True
        module.bn_frozen = True
        module.eval()
        float_graph = to_graph(module)
    prepared = prepare_for_quantization(float_graph)
    ranges = {t: module.observers[k].range() for t, k in module.observer_of.items()}
    meta = dict(prepared.metadata)
    meta.update(
        {
            "precision": str(precision),
            "calibration": "qat-ema",
            "qat": {
                "epochs": cfg.epochs,
                "lr": cfg.lr,
                "ema_decay": cfg.ema_decay,
                "act_quant_delay": cfg.act_quant_delay,
                "bn_freeze": cfg.bn_freeze,
            },
        }
    )
    prepared = prepared.replace(metadata=meta)
    qgraph = ptq.quantize_with_ranges(prepared, module.precisions, ranges)
    return QATResult(
        qgraph,
        float_graph,
        prepared,
        ranges,
        module.precisions,
        module,
        history,
        time.perf_counter() - t0,
    )


def fake_quant_top1(result: QATResult, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 of the torch fake-quantized model (eval mode: frozen BN, EMA ranges)."""
    with torch_threads(1):
        return torch_top1(result.module, result.module.graph, x, y)
