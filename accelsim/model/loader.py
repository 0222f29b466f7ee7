"""Model stage entry point: a zoo name or a model file -> `Graph`."""

from __future__ import annotations

from pathlib import Path

from accelsim.core.errors import ModelError
from accelsim.model.graph import Graph


def load_model(source: str, input_size: int | None = None, seed: int = 0) -> Graph:
    """Load `source`: a zoo name (see `accelsim models`), a trained network a pip package ships
    (`accelsim.model.packaged`: ppocr_cls, ppocr_rec), an .onnx or a .tflite file.

    `input_size` (zoo only) overrides the spatial input size, e.g. for fast checks.
    """
    from accelsim.model import packaged, zoo

    if source in zoo.MODELS:
        return zoo.build(source, seed=seed, input_size=input_size)
    if source in packaged.MODELS:
        if input_size is not None:
            raise ModelError(f"{source}: --input-size applies to zoo models only")
        return packaged.load_packaged(source)
    path = Path(source)
    suffix = path.suffix.lower()
    if suffix not in (".onnx", ".tflite"):
        raise ModelError(
            f"{source}: not a zoo model ({', '.join(zoo.MODELS)}) and not an .onnx or .tflite file"
        )
    if not path.is_file():
        raise ModelError(f"{source}: no such file")
    if input_size is not None:
        raise ModelError(f"{source}: --input-size applies to zoo models only")
    if suffix == ".onnx":
        from accelsim.model.onnx_import import load_onnx

        return load_onnx(path)
    from accelsim.model.tflite_import import load_tflite

    return load_tflite(path)
