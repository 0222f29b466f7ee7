"""Pareto fronts (all objectives minimised; negate one to maximise it, e.g. accuracy)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """`a` is no worse than `b` in every objective and better in at least one."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    return bool(np.all(a <= b) and np.any(a < b))


def pareto_mask(values: np.ndarray) -> np.ndarray:
    """Boolean mask of the rows of `values` (points x objectives) that no other row dominates.

    Equal points are all kept (neither dominates the other). O(n^2 / chunk) vectorised, which is
    ample for sweeps of tens of thousands of points.
    """
    v = np.asarray(values, dtype=float)
    if v.ndim != 2:
        raise ValueError(f"expected a 2-D array of points x objectives, found shape {v.shape}")
    n = len(v)
    keep = np.ones(n, dtype=bool)
    chunk = max(1, 4_000_000 // max(1, n * v.shape[1]))
    for start in range(0, n, chunk):
        block = v[start : start + chunk]  # (c, k)
        le = np.all(v[None, :, :] <= block[:, None, :], axis=2)  # other <= this, all objectives
        lt = np.any(v[None, :, :] < block[:, None, :], axis=2)  # and better somewhere
        keep[start : start + chunk] = ~np.any(le & lt, axis=1)
    return keep
