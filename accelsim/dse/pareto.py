"""Pareto fronts (all objectives minimised; negate one to maximise it, e.g. accuracy)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """`a` is no worse than `b` in every objective and better in at least one."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    return bool(np.all(a <= b) and np.any(a < b))


def _dominated_by(cands: np.ndarray, by: np.ndarray) -> np.ndarray:
    """Per row of `cands`: does some row of `by` dominate it?"""
    if not len(by):
        return np.zeros(len(cands), dtype=bool)
    le = np.all(by[None, :, :] <= cands[:, None, :], axis=2)
    lt = np.any(by[None, :, :] < cands[:, None, :], axis=2)
    return np.any(le & lt, axis=1)


def pareto_mask(values: np.ndarray, block: int = 512) -> np.ndarray:
    """Boolean mask of the rows of `values` (points x objectives) that no other row dominates.

    Equal points are all kept (neither dominates the other). Rows are visited in lexicographic
    order, where a row's dominators all come before it; a dominated dominator is itself
    dominated by a front row (transitivity), so each block of rows is compared with the front
    found so far and with itself only: about n x |front| comparisons, fast for sweeps of
    hundreds of thousands of points.
    """
    v = np.asarray(values, dtype=float)
    if v.ndim != 2:
        raise ValueError(f"expected a 2-D array of points x objectives, found shape {v.shape}")
    n = len(v)
    keep = np.zeros(n, dtype=bool)
    order = np.lexsort(v.T[::-1]) if n else np.zeros(0, dtype=np.int64)
    front = np.empty((0, v.shape[1]))
    for start in range(0, n, block):
        idx = order[start : start + block]
        idx = idx[~_dominated_by(v[idx], front)]
        b = v[idx]
        idx = idx[~_dominated_by(b, b)]  # the survivors (few) against each other
        keep[idx] = True
        front = np.concatenate([front, v[idx]])
    return keep
