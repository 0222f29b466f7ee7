"""Labelled data for the packaged OCR networks (`accelsim.model.packaged`), rendered here: text
drawn with PIL in the DejaVu fonts matplotlib ships inside its wheel, so nothing is downloaded
and every sample is reproducible from a seed.

- Strings: 4 to 9 symbols from `ALPHABET`: lower-case letters and digits without those a
  reader cannot tell apart in these fonts (l/1, o/0) or from their capitals (c, s, u, v, w, x,
  z: the recognizer's dictionary has both cases), every one in the recognizer's dictionary.
- Rendering: one of four fonts (DejaVu Sans, Serif, Sans Mono, Sans Bold), 24 to 40 px, dark
  text (0-60) on a light background (190-255), random margins, Gaussian pixel noise (sigma 8).
- Orientation task (`ppocr_cls`): every second sample is turned by 180 degrees (label 1).
- Pre-processing as RapidOCR does it (`resize_norm_img`): resized to height 48 keeping the
  aspect ratio (squeezed to the width when wider), scaled to [-1, 1], zero-padded on the right
  to the model's width (192 for the classifier, 320 for the recognizer); the grey image is
  repeated over the three channels.
- Splits: calibration, validation and test come from separate seeded streams
  (`seed * 10 + split`), so they share no sample.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from accelsim.core.errors import InputError

ALPHABET = "abdefghijkmnpqrty23456789"
FONTS = ("DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf", "DejaVuSans-Bold.ttf")
SPLITS = {"calib": 0, "val": 1, "test": 2}


@dataclass(frozen=True)
class TextSet:
    """Pre-processed images (N, 3, 48, W) float32 and their labels: class indices (orientation)
    or the strings drawn (recognition)."""

    x: np.ndarray
    labels: np.ndarray | tuple[str, ...]
    description: str


def _font_dir() -> str:
    import matplotlib

    return os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "fonts", "ttf")


def render(text: str, font: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """A grey uint8 image (H, W) of `text`, with the module's colours, margins and noise."""
    from PIL import Image, ImageDraw, ImageFont

    f = ImageFont.truetype(os.path.join(_font_dir(), font), size)
    left, top, right, bottom = f.getbbox(text)
    mx, my = (int(v) for v in rng.integers(4, 14, 2))
    img = Image.new(
        "L", (right - left + 2 * mx, bottom - top + 2 * my), int(rng.integers(190, 256))
    )
    ImageDraw.Draw(img).text((mx - left, my - top), text, font=f, fill=int(rng.integers(0, 61)))
    a = np.asarray(img, np.float64) + rng.normal(0.0, 8.0, (img.height, img.width))
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def preprocess(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """RapidOCR's resize_norm_img for a grey image: (3, height, width) float32 in [-1, 1]."""
    from PIL import Image

    h, w = img.shape
    new_w = min(width, int(math.ceil(height * w / h)))
    resized = Image.fromarray(img).resize((new_w, height), Image.Resampling.BILINEAR)
    out = np.zeros((3, height, width), np.float32)
    out[:, :, :new_w] = (np.asarray(resized, np.float32) / 255.0 - 0.5) / 0.5
    return out


def _strings(n: int, rng: np.random.Generator) -> list[str]:
    return ["".join(rng.choice(list(ALPHABET), int(rng.integers(4, 10)))) for _ in range(int(n))]


def _stream(task: str, split: str, seed: int) -> np.random.Generator:
    if split not in SPLITS:
        raise InputError(f"split '{split}': expected one of {', '.join(SPLITS)}")
    return np.random.default_rng([seed * 10 + SPLITS[split], 1 if task == "rec" else 2])


def recognition_set(n: int, split: str = "test", seed: int = 0, width: int = 320) -> TextSet:
    """`n` rendered strings for the recognizer (labels: the strings)."""
    rng = _stream("rec", split, seed)
    texts = _strings(n, rng)
    x = np.stack(
        [
            preprocess(render(t, FONTS[i % len(FONTS)], int(rng.integers(24, 41)), rng), 48, width)
            for i, t in enumerate(texts)
        ]
    )
    return TextSet(x, tuple(texts), f"{n} rendered strings ({split} split, seed {seed})")


def orientation_set(n: int, split: str = "test", seed: int = 0, width: int = 192) -> TextSet:
    """`n` rendered strings for the orientation classifier, every second one turned by 180
    degrees (labels 0 upright, 1 turned)."""
    rng = _stream("cls", split, seed)
    texts = _strings(n, rng)
    labels = np.arange(n, dtype=np.int64) % 2
    xs = []
    for i, t in enumerate(texts):
        img = render(t, FONTS[(i // 2) % len(FONTS)], int(rng.integers(24, 41)), rng)
        xs.append(preprocess(img[::-1, ::-1] if labels[i] else img, 48, width))
    return TextSet(
        np.stack(xs), labels, f"{n} rendered text lines, half turned 180 ({split}, seed {seed})"
    )


def text_set(model: str, n: int, split: str = "test", seed: int = 0) -> TextSet:
    """The labelled set of a packaged OCR model by name (ppocr_cls or ppocr_rec)."""
    if model == "ppocr_cls":
        return orientation_set(n, split, seed)
    if model == "ppocr_rec":
        return recognition_set(n, split, seed)
    raise InputError(f"model '{model}': no rendered data set (ppocr_cls, ppocr_rec have one)")
