"""Calibration data for post-training quantization: a user's .npy file, a data set the project
ships access to, or seeded random data (for timing-only studies, and labelled as such)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from accelsim.core.errors import InputError
from accelsim.core.fsutil import check_finite, read_numpy
from accelsim.core.qparams import NUMPY_DTYPE
from accelsim.model.graph import Graph
from accelsim.model.io import random_input
from accelsim.quant.ptq import CalibrationData


def _input_info(graph: Graph):
    if len(graph.inputs) != 1:
        raise InputError(
            f"model '{graph.name}': calibration supports one-input models, found "
            f"{len(graph.inputs)} inputs"
        )
    return graph.tensors[graph.inputs[0]]


def from_npy(path: str, graph: Graph, limit: int | None = None) -> CalibrationData:
    """Samples from a .npy holding N inputs: shape (N, *sample) where the model input is
    (1, *sample), or exactly the model's input shape for a single sample."""
    p = Path(path)
    arr = read_numpy(p, f"--calib-data {path}", InputError)
    if not isinstance(arr, np.ndarray):
        raise InputError(f"--calib-data {path}: expected a .npy array, found an .npz archive")
    return from_array(arr, graph, f"--calib-data {path}", limit, p.name)


def from_array(
    arr: np.ndarray, graph: Graph, source: str, limit: int | None = None, name: str | None = None
) -> CalibrationData:
    """Samples from an array of N inputs, (N, *sample) or exactly the model's input shape;
    `source` names where it came from in errors."""
    info = _input_info(graph)
    shape = info.shape
    arr = np.asarray(arr)
    if arr.shape == shape:
        arr = arr[None]
    elif arr.shape[1:] == shape[1:] and shape[0] == 1:
        arr = arr[:, None]
    else:
        raise InputError(
            f"{source}: model '{graph.name}' input '{info.name}' has "
            f"shape {list(shape)}, so calibration data must be (N, "
            f"{', '.join(map(str, shape[1:]))}); found {list(arr.shape)}"
        )
    if not np.issubdtype(arr.dtype, np.number):
        raise InputError(f"{source}: expected numbers, found {arr.dtype} data")
    check_finite(arr, f"{source}: calibration data for input '{info.name}'", InputError)
    if limit:
        arr = arr[:limit]
    samples = tuple(a.astype(NUMPY_DTYPE[info.dtype]) for a in arr)
    return CalibrationData(samples, f"{name or source} ({len(samples)} samples)", False)


def random(graph: Graph, n: int, seed: int = 0) -> CalibrationData:
    """N(0, 1) samples (`model.io.random_input`: token ids inside the vocabulary): fine for
    timing studies, meaningless for accuracy. A several-input model (token ids and a mask)
    gets one tuple of inputs per sample."""
    if n <= 0:
        raise InputError(f"--calib-random {n}: expected a positive number of samples")
    graph.check_allocatable(list(graph.inputs), n)
    rng = np.random.default_rng(seed)
    samples: tuple = tuple(
        random_input(graph, graph.inputs[0], rng)
        if len(graph.inputs) == 1
        else tuple(random_input(graph, name, rng) for name in graph.inputs)
        for _ in range(n)
    )
    return CalibrationData(
        samples, f"random N(0,1), {n} samples, seed {seed} (timing only: not for accuracy)", True
    )


DATASETS = ("digits",)


def from_dataset(name: str, graph: Graph, limit: int | None = None) -> CalibrationData:
    """Calibration images from a data set the project ships access to: `digits` (scikit-learn's
    8x8 digits, resized and jittered as in the accuracy study; for one-channel square inputs)."""
    if name not in DATASETS:
        raise InputError(
            f"--calib-dataset {name}: unknown data set; available: {', '.join(DATASETS)}"
        )
    info = _input_info(graph)
    shape = info.shape
    if len(shape) != 4 or shape[:2] != (1, 1) or shape[2] != shape[3] or shape[2] < 8:
        raise InputError(
            f"--calib-dataset {name}: model '{graph.name}' input '{info.name}' has "
            f"shape {list(shape)}; digits images need (1, 1, S, S) with S >= 8"
        )
    try:
        from accelsim.quant.datasets import load_digits_study

        data = load_digits_study(size=shape[2], train_copies=1)
    except ModuleNotFoundError as exc:
        raise InputError(
            f"--calib-dataset {name}: needs {exc.name} (pip install 'accelsim[qat]')"
        ) from None
    arr = data.x_calib[:limit] if limit else data.x_calib
    samples = tuple(a[None].astype(NUMPY_DTYPE[info.dtype]) for a in arr)
    return CalibrationData(samples, f"digits calibration subset ({len(samples)} images)", False)
