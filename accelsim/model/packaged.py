"""Trained networks that pip packages ship inside their wheels (nothing is downloaded at run
time), imported through the exact rewrites of `accelsim.model.onnx_rewrite`.

`rapidocr_onnxruntime` (Apache-2.0; `pip install 'accelsim[models]'`) bundles three PaddleOCR
networks converted to ONNX; two of them have tasks whose labelled data can be generated
(`accelsim.quant.ocrdata`):

- `ppocr_cls`: `ch_ppocr_mobile_v2.0_cls_infer.onnx`, the text-orientation classifier (a
  MobileNetV3-small, scale 0.35, with hard-swish and squeeze-excite blocks): is a text line
  upright (class 0) or turned by 180 degrees (class 1)? Input (1, 3, 48, 192).
- `ppocr_rec`: `ch_PP-OCRv4_rec_infer.onnx`, the PP-OCRv4 mobile text recognizer (a PP-LCNetV3
  backbone and an SVTR neck with two multi-head self-attention blocks, swish and layer norm), a
  CTC head over 6,625 symbols (blank, the 6,623 characters stored in the model's metadata,
  space) at 40 time steps. Input (1, 3, 48, 320).
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from accelsim.core.errors import ModelError
from accelsim.model.graph import Graph


@dataclass(frozen=True)
class PackagedModel:
    name: str
    package: str
    file: str  # inside the package
    input_shape: tuple[int, ...]
    task: str  # "classify" (top-1 over the last axis) or "ctc" (per-step symbols)
    description: str


MODELS: dict[str, PackagedModel] = {
    m.name: m
    for m in (
        PackagedModel(
            "ppocr_cls",
            "rapidocr_onnxruntime",
            "models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
            (1, 3, 48, 192),
            "classify",
            "PaddleOCR text-orientation classifier (MobileNetV3-small x0.35): upright / 180",
        ),
        PackagedModel(
            "ppocr_rec",
            "rapidocr_onnxruntime",
            "models/ch_PP-OCRv4_rec_infer.onnx",
            (1, 3, 48, 320),
            "ctc",
            "PaddleOCR PP-OCRv4 mobile text recognizer (PP-LCNetV3 + SVTR attention, CTC)",
        ),
    )
}


def _spec(name: str) -> PackagedModel:
    if name not in MODELS:
        raise ModelError(
            f"packaged model '{name}': unknown; available: {', '.join(sorted(MODELS))}"
        )
    return MODELS[name]


def model_path(name: str) -> Path:
    """The ONNX file inside the installed package (the package is not imported)."""
    m = _spec(name)
    spec = importlib.util.find_spec(m.package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"packaged model '{name}': needs the pip package {m.package} "
            f"(pip install 'accelsim[models]'), which is not installed"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / m.file
    if not path.is_file():
        raise ModelError(f"packaged model '{name}': {m.package} has no {m.file}")
    return path


@functools.lru_cache(maxsize=4)
def rewritten_onnx(name: str):
    """(the rewritten `onnx.ModelProto`, {rewrite: nodes changed}) of a packaged model."""
    import onnx

    from accelsim.model.onnx_rewrite import rewrite_for_import

    return rewrite_for_import(onnx.load(str(model_path(name))), _spec(name).input_shape)


@functools.lru_cache(maxsize=4)
def load_packaged(name: str) -> Graph:
    """The float graph of a packaged model (batch 1)."""
    from accelsim.model.onnx_import import load_onnx

    model, counts = rewritten_onnx(name)
    g = load_onnx(model)
    meta = dict(g.metadata)
    meta.update(
        {
            "file": str(model_path(name)),
            "packaged": name,
            "rewrites": {k: v for k, v in counts.items() if v},
        }
    )
    return g.replace(name=name, metadata=meta)


def ctc_symbols(name: str = "ppocr_rec") -> tuple[str, ...]:
    """The CTC head's symbols, index 0 the blank ("" here), as PaddleOCR's CTCLabelDecode reads
    them: the model's `character` metadata, then a space."""
    import onnx

    model = onnx.load(str(model_path(name)), load_external_data=False)
    meta = {p.key: p.value for p in model.metadata_props}
    if "character" not in meta:
        raise ModelError(f"packaged model '{name}': no 'character' metadata (not a CTC model)")
    return ("", *meta["character"].splitlines(), " ")
