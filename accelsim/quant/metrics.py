"""Accuracy metrics on a batch of model outputs, and evaluating a graph with one.

A metric maps the model's scores for N samples, an array (N, ...), to one number, higher
better. The scores are the pre-softmax logits when the graph ends in a softmax (seen through
reshapes and a final dequantize: a quantized softmax output at scale 1/256 would create ties),
dequantized to float.

- `Top1(labels)`: top-1 accuracy over the last axis (class indices, N of them).
- `CTCExactMatch(labels, symbols)` / `CTCCharAccuracy(labels, symbols)`: greedy CTC decoding
  (arg max per step, repeats merged, blanks dropped; symbol 0 is the blank), spaces ignored as
  PaddleOCR's RecMetric does by default, then the share of strings read exactly, or 1 -
  character error rate (Levenshtein distance over the reference length, summed over samples).
- `OutputSNR(reference)` / `OutputCosine(reference)`: agreement with the float model's scores
  when there are no labels: 10 log10(signal / noise) in dB, and the mean cosine similarity
  per sample.
- `Custom(fn, name)`: a user's callable `fn(scores) -> float`.

`evaluate(graph, x, metric)` runs the reference executor on all N samples in one call
(`accelsim.ref.executor.run_batch`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from accelsim.core.errors import InputError
from accelsim.model.batch import with_batch
from accelsim.model.graph import Graph, TensorInfo
from accelsim.ref.executor import run, run_batch

_THROUGH = ("reshape", "flatten", "squeeze", "dequantize")


def score_tensor(graph: Graph) -> str:
    """The tensor a metric reads: the input of the softmax that ends the graph (looking
    through reshapes and a final dequantize), else the first graph output."""
    t = graph.outputs[0]
    for _ in range(8):
        prod = graph.producer(t)
        if prod is None:
            break
        if prod.op == "softmax":
            return prod.inputs[0]
        if prod.op not in _THROUGH:
            break
        t = prod.inputs[0]
    return graph.outputs[0]


def scores(graph: Graph, x: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """The dequantized scores (N, ...) of every sample of `x` (N, *input[1:])."""
    t = score_tensor(graph)
    v = run_batch(graph, [np.asarray(x)], tensors=[t], batch_size=batch_size)[t]
    info = graph.tensors[t]
    if info.is_quantized:
        q = info.quant
        return (v.astype(np.float64) - q.zero_points()[0]) * q.scales()[0]
    return np.asarray(v, np.float64)


class Metric:
    """A score of model outputs, higher better (subclasses set `name`)."""

    name = "metric"

    def __call__(self, scores: np.ndarray) -> float:
        raise NotImplementedError


def _labels_len(scores: np.ndarray, n: int, who: str) -> None:
    if len(scores) != n:
        raise InputError(f"{who}: {len(scores)} outputs but {n} labels")


@dataclass(frozen=True)
class Top1(Metric):
    labels: np.ndarray
    name: str = "top1"

    def __call__(self, scores: np.ndarray) -> float:
        y = np.asarray(self.labels).reshape(-1)
        _labels_len(scores, len(y), self.name)
        pred = np.asarray(scores).reshape(len(y), -1).argmax(axis=1)
        return float(np.mean(pred == y))


def ctc_greedy_decode(scores: np.ndarray, symbols: Sequence[str]) -> list[str]:
    """Greedy CTC decoding of (N, T, S) scores: arg max per step, repeats merged, symbol 0
    (the blank) dropped (PaddleOCR's CTCLabelDecode)."""
    idx = np.asarray(scores).argmax(axis=-1)
    out = []
    for row in idx.reshape(len(idx), -1):
        keep = np.concatenate([[True], row[1:] != row[:-1]]) & (row != 0)
        out.append("".join(symbols[k] for k in row[keep]))
    return out


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions all cost 1)."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def character_error_rate(predicted: Sequence[str], reference: Sequence[str]) -> float:
    """Summed edit distance over summed reference length."""
    total = sum(len(r) for r in reference)
    return sum(edit_distance(p, r) for p, r in zip(predicted, reference)) / max(total, 1)


def _no_spaces(texts: Sequence[str]) -> list[str]:
    return [t.replace(" ", "") for t in texts]


@dataclass(frozen=True)
class CTCExactMatch(Metric):
    labels: tuple[str, ...]
    symbols: tuple[str, ...] = field(repr=False)
    name: str = "exact_match"

    def __call__(self, scores: np.ndarray) -> float:
        _labels_len(scores, len(self.labels), self.name)
        pred = _no_spaces(ctc_greedy_decode(scores, self.symbols))
        return float(np.mean([p == t for p, t in zip(pred, _no_spaces(self.labels))]))


@dataclass(frozen=True)
class CTCCharAccuracy(Metric):
    labels: tuple[str, ...]
    symbols: tuple[str, ...] = field(repr=False)
    name: str = "char_accuracy"

    def __call__(self, scores: np.ndarray) -> float:
        _labels_len(scores, len(self.labels), self.name)
        pred = _no_spaces(ctc_greedy_decode(scores, self.symbols))
        return 1.0 - character_error_rate(pred, _no_spaces(self.labels))


def output_snr_db(reference: np.ndarray, test: np.ndarray) -> float:
    """10 log10(sum(ref^2) / sum((ref - test)^2)) over all samples (inf when equal)."""
    ref = np.asarray(reference, np.float64)
    err = ref - np.asarray(test, np.float64).reshape(ref.shape)
    noise = float(np.sum(err * err))
    if noise == 0.0:
        return math.inf
    return 10.0 * math.log10(float(np.sum(ref * ref)) / noise)


@dataclass(frozen=True)
class OutputSNR(Metric):
    reference: np.ndarray = field(repr=False)
    name: str = "snr_db"

    def __call__(self, scores: np.ndarray) -> float:
        return output_snr_db(self.reference, scores)


@dataclass(frozen=True)
class OutputCosine(Metric):
    reference: np.ndarray = field(repr=False)
    name: str = "cosine"

    def __call__(self, scores: np.ndarray) -> float:
        a = np.asarray(self.reference, np.float64).reshape(len(self.reference), -1)
        b = np.asarray(scores, np.float64).reshape(a.shape)
        den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
        cos = np.where(den > 0, (a * b).sum(axis=1) / np.where(den > 0, den, 1.0), 1.0)
        return float(cos.mean())


@dataclass(frozen=True)
class Custom(Metric):
    fn: Callable[[np.ndarray], float] = field(repr=False)
    name: str = "custom"

    def __call__(self, scores: np.ndarray) -> float:
        v = self.fn(scores)
        try:
            return float(v)
        except (TypeError, ValueError):
            raise InputError(
                f"metric '{self.name}': the callable must return a number, returned "
                f"{type(v).__name__}"
            ) from None


def evaluate(graph: Graph, x: np.ndarray, metric: Metric, batch_size: int = 16) -> float:
    """`metric` of `graph` on the samples `x` (N, *input[1:]), by the reference executor."""
    return metric(scores(graph, x, batch_size))


def logits_tensor(graph: Graph) -> str:
    """The pre-softmax logits of a classifier (the input of the softmax that produces the single
    graph output), or the output itself when it is not a softmax."""
    out = graph.outputs[0]
    prod = graph.producer(out)
    if prod is not None and prod.op == "softmax":
        return prod.inputs[0]
    if prod is not None and prod.op == "dequantize":  # quantized graph: look through it
        inner = graph.producer(prod.inputs[0])
        if inner is not None and inner.op == "softmax":
            return inner.inputs[0]
    return out


def _dequantized(info: TensorInfo, v: np.ndarray) -> np.ndarray:
    if info.is_quantized:
        q = info.quant
        return (v.astype(np.float64) - q.zero_points()[0]) * q.scales()[0]
    return np.asarray(v, dtype=np.float64)


def predict_logits(graph: Graph, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Pre-softmax logits of every sample of `x` (N, ...) from the reference executor."""
    x = np.asarray(x)
    if len(x) == 0:
        raise ValueError("predict_logits: no samples")
    bs = min(batch_size, len(x))
    gb = with_batch(graph, bs)
    lt = logits_tensor(gb)
    out = []
    for i in range(0, len(x), bs):
        chunk = x[i : i + bs]
        n = len(chunk)
        if n < bs:
            chunk = np.concatenate([chunk, np.zeros((bs - n,) + chunk.shape[1:], chunk.dtype)])
        values = run(gb, [chunk], keep=True)
        logits = _dequantized(gb.tensors[lt], values[lt])
        out.append(logits.reshape(bs, -1)[:n])
    return np.concatenate(out)


def top1(graph: Graph, x: np.ndarray, y: np.ndarray, batch_size: int = 256) -> float:
    """Top-1 accuracy of `graph` on (x, y), computed by the reference executor."""
    pred = predict_logits(graph, x, batch_size).argmax(axis=1)
    return float(np.mean(pred == np.asarray(y)))
