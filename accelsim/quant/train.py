"""Float training of an IR graph in torch, and top-1 accuracy with the reference executor.

`train_float(graph, x, y, ...)` wraps the graph in a `GraphModule`, trains it with Adam (or SGD
with momentum) on the cross-entropy of the pre-softmax logits, seeded, with a cosine learning
rate schedule, and returns the trained `Graph` (same structure, new constants and BN running
statistics).

`top1(graph, x, y)` runs the *reference executor* (`accelsim.ref.executor.run`) batch by batch:
for a float graph the float executor, for a quantized graph the integer-only executor, so the
accuracy is the one of the integer computation itself. The graph is re-batched once
(`with_batch`) and the last partial batch is padded; the class is the argmax of the logits (the
input of the final softmax, dequantized when it is an integer tensor), which avoids the ties a
quantized softmax output (scale 1/256) would create.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from accelsim.model.graph import Graph
from accelsim.quant.metrics import logits_tensor
from accelsim.quant.torch_graph import GraphModule, to_graph

DEFAULT_THREADS = 1


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Temporarily limit torch's intra-op threads (small tensors: more threads only cost)."""
    if not n:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def torch_logits(
    module: torch.nn.Module, graph: Graph, x: np.ndarray, batch_size: int = 512
) -> np.ndarray:
    """Logits of a (float or fake-quantized) `GraphModule` in eval mode."""
    lt = logits_tensor(graph)
    was_training = module.training
    module.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            out.append(
                module(torch.from_numpy(np.ascontiguousarray(x[i : i + batch_size])), outputs=[lt])
                .reshape(min(batch_size, len(x) - i), -1)
                .numpy()
            )
    module.train(was_training)
    return np.concatenate(out)


def torch_top1(module: torch.nn.Module, graph: Graph, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(torch_logits(module, graph, x).argmax(axis=1) == np.asarray(y)))


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    lr: float = 3e-3
    batch_size: int = 64
    optimizer: str = "adam"  # "adam" or "sgd" (momentum 0.9)
    weight_decay: float = 0.0
    # no weight decay on depthwise conv weights (Howard et al. 2017: "very little or no weight
    # decay (l2 regularization) on the depthwise filters since there are so few parameters")
    depthwise_decay: bool = False
    seed: int = 0
    threads: int | None = DEFAULT_THREADS
    cosine: bool = True  # cosine decay of the learning rate to 0 over the run


@dataclass
class TrainResult:
    graph: Graph
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def param_groups(module: GraphModule, cfg: TrainConfig) -> list[dict]:
    """Parameter groups: depthwise conv weights without weight decay unless
    `cfg.depthwise_decay`."""
    from accelsim.model.ops import op_class

    g = module.graph
    dw = set()
    if not cfg.depthwise_decay:
        for n in g.nodes:
            if (
                n.op == "conv2d"
                and op_class(g, n) == "depthwise_conv2d"
                and n.inputs[1] in module._const_key
            ):
                dw.add(id(module.const(n.inputs[1])))
    params = [p for p in module.parameters() if p.requires_grad]
    decay = [p for p in params if id(p) not in dw]
    no_decay = [p for p in params if id(p) in dw]
    groups = [{"params": decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def make_optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    raise ValueError(f"optimizer must be 'adam' or 'sgd', found '{cfg.optimizer}'")


def fit(
    module: torch.nn.Module,
    graph: Graph,
    x: np.ndarray,
    y: np.ndarray,
    cfg: TrainConfig,
    on_step: Callable[[int], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> list[dict]:
    """The training loop shared by float training and QAT: shuffled mini-batches (seeded),
    cross-entropy on the logits, `on_step(step)` before each step."""
    lt = logits_tensor(graph)
    gen = torch.Generator().manual_seed(cfg.seed)
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
    steps_per_epoch = math.ceil(len(xt) / cfg.batch_size)
    total = max(1, cfg.epochs * steps_per_epoch)
    opt = make_optimizer(param_groups(module, cfg), cfg)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        (lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
        if cfg.cosine
        else (lambda s: 1.0),
    )
    history = []
    step = 0
    module.train()
    for epoch in range(cfg.epochs):
        perm = torch.randperm(len(xt), generator=gen)
        loss_sum, correct = 0.0, 0
        for i in range(0, len(xt), cfg.batch_size):
            idx = perm[i : i + cfg.batch_size]
            if len(idx) < 2:  # batch statistics need two samples
                continue
            if on_step is not None:
                on_step(step)
            logits = module(xt[idx], outputs=[lt]).reshape(len(idx), -1)
            loss = F.cross_entropy(logits, yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            loss_sum += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == yt[idx]).sum())
        rec = {"epoch": epoch + 1, "loss": loss_sum / len(xt), "train_top1": correct / len(xt)}
        history.append(rec)
        if log:
            log(
                f"epoch {epoch + 1}/{cfg.epochs}: loss {rec['loss']:.4f}, "
                f"train top-1 {rec['train_top1']:.4f}"
            )
    module.eval()
    return history


def train_float(
    graph: Graph,
    x: np.ndarray,
    y: np.ndarray,
    cfg: TrainConfig | None = None,
    log: Callable[[str], None] | None = None,
    **overrides,
) -> TrainResult:
    """Train the float graph's constants (and BN statistics) on (x, y)."""
    cfg = cfg or TrainConfig()
    if overrides:
        cfg = TrainConfig(**{**cfg.__dict__, **overrides})
    t0 = time.perf_counter()
    with torch_threads(cfg.threads):
        torch.manual_seed(cfg.seed)
        module = GraphModule(graph)
        history = fit(module, graph, x, y, cfg, log=log)
        trained = to_graph(module)
    meta = dict(trained.metadata)
    meta["trained"] = {
        "epochs": cfg.epochs,
        "lr": cfg.lr,
        "optimizer": cfg.optimizer,
        "batch_size": cfg.batch_size,
        "seed": cfg.seed,
    }
    return TrainResult(trained.replace(metadata=meta), history, time.perf_counter() - t0)
