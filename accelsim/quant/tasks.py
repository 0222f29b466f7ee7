"""Labelled tasks: calibration samples, validation samples and the metric that scores them, for
the workflows that choose a quantization by its accuracy (`accelsim.dse.tune`).

Two sources:
- `text_task`: a packaged OCR network (`accelsim.model.packaged`) on rendered text lines
  (`ocrdata`): top-1 for the orientation classifier, CTC exact match for the recognizer;
- `array_task`: the user's own arrays. With labels the metric is top-1 over the last axis of the
  model's scores; without, it is the output SNR against the float model on the same samples
  (in dB: a drop budget is then in dB too).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from accelsim.core.errors import InputError
from accelsim.model.graph import Graph
from accelsim.quant import metrics
from accelsim.quant.calibdata import CalibrationData


@dataclass(frozen=True)
class LabelledTask:
    calibration: CalibrationData
    x_val: np.ndarray = field(repr=False)
    metric: metrics.Metric
    description: str

    @property
    def points_per_unit(self) -> float:
        """Percentage points per metric unit (a fraction metric is shown in points)."""
        return 1.0 if self.metric.name == "snr_db" else 100.0


def text_task(model: str, n_calib: int, n_val: int, seed: int = 0) -> LabelledTask:
    """A packaged OCR model's rendered-text task (`ppocr_cls`: orientation, top-1; `ppocr_rec`:
    recognition, CTC exact match); calibration and validation come from disjoint splits."""
    from accelsim.model import packaged
    from accelsim.quant import ocrdata

    for what, n in (("calibration", n_calib), ("validation", n_val)):
        if n < 1:
            raise InputError(f"{what} samples: expected at least 1, found {n}")
    cal = ocrdata.text_set(model, n_calib, "calib", seed)
    val = ocrdata.text_set(model, n_val, "val", seed)
    metric: metrics.Metric
    if packaged.MODELS[model].task == "ctc":
        metric = metrics.CTCExactMatch(tuple(val.labels), packaged.ctc_symbols(model))
    else:
        metric = metrics.Top1(np.asarray(val.labels))
    data = CalibrationData(tuple(cal.x[i : i + 1] for i in range(n_calib)), cal.description)
    return LabelledTask(
        data, val.x, metric, f"calibration: {cal.description}; val: {val.description}"
    )


def array_task(
    graph: Graph,
    calibration: CalibrationData,
    x_val: np.ndarray,
    labels: np.ndarray | None = None,
    source: str = "validation data",
) -> LabelledTask:
    """The user's validation arrays: top-1 against `labels` (N integers), or, without labels,
    the output SNR against `graph` (the float model) on `x_val`."""
    x_val = np.asarray(x_val)
    want = tuple(graph.tensors[graph.inputs[0]].shape[1:])
    if x_val.ndim != len(want) + 1 or tuple(x_val.shape[1:]) != want:
        raise InputError(
            f"{source}: expected samples of shape (N, {', '.join(map(str, want))}) for input "
            f"'{graph.inputs[0]}', found {tuple(x_val.shape)}"
        )
    if labels is None:
        ref = metrics.scores(graph, x_val)
        what = f"{len(x_val)} samples, output SNR against float"
        return LabelledTask(calibration, x_val, metrics.OutputSNR(ref), what)
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iu" or len(labels) != len(x_val):
        raise InputError(
            f"{source} labels: expected {len(x_val)} integer class labels, found "
            f"{labels.dtype} of shape {tuple(labels.shape)}"
        )
    what = f"{len(x_val)} labelled samples, top-1"
    return LabelledTask(calibration, x_val, metrics.Top1(labels), what)
