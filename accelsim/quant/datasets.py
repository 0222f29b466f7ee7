"""A small, hard-enough image classification set for accuracy studies: scikit-learn's digits.

scikit-learn ships the 1,797 8x8 handwritten digits of the UCI "optdigits" test set inside its
wheel (`sklearn.datasets.load_digits`), so nothing is downloaded. Plain 8x8 digits are too easy
for quantization methods to separate (every scheme scores ~98 %), so `load_digits_study`
makes them harder, deterministically from a seed:

* split first: a fixed stratified split of the 1,797 images, `test_fraction` = 0.3 with
  `split_seed` = 0 (`sklearn.model_selection.train_test_split`): 1,257 training and 540 test
  images; then 15 % of the training part (`val_fraction`, stratified, same seed) is held out as a
  validation split for model selection (e.g. the sensitivity search): 1,068 / 189 / 540;
* pixels scaled to [0, 1] (the raw values are 0..16) and upsampled to `size` x `size`
  (default 16) with bilinear interpolation (`scipy.ndimage.zoom`, order 1);
* every image (each split from its own seeded stream) gets a random affine jitter: rotation
  uniform in +-`max_rotation` degrees (10), scale uniform in [0.9, 1.1], shear uniform in
  +-0.1, translation uniform in +-`max_shift` pixels (1 at 16x16, scaled with the size); then a
  contrast change (factor uniform in [0.6, 1.2]) and a brightness offset (uniform in +-0.1),
  then Gaussian pixel noise with standard deviation `noise` (0.15);
* the training split is augmented `train_copies` times (default 3: 3,204 training images,
  each copy with fresh jitter); the validation and test splits once;
* finally every pixel is standardized with the mean and standard deviation of the (augmented)
  training split (one scalar each), so the network input is roughly zero-mean, unit-variance.

The calibration subset for post-training quantization is `calibration_size` (default 256)
images drawn without replacement from the training split with `seed`. Arrays are float32 NCHW
(`(N, 1, size, size)`), labels int64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SPLIT_SEED = 0
TEST_FRACTION = 0.3
VAL_FRACTION = 0.15
SCALE = (0.9, 1.1)
SHEAR = 0.1
CONTRAST = (0.6, 1.2)
BRIGHTNESS = 0.1


@dataclass(frozen=True)
class ImageDataset:
    """Train / test / calibration arrays (float32 NCHW, int64 labels) and how they were made."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    x_calib: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    description: str
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (1,) + tuple(self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1

    def calibration_batches(self, batch_size: int) -> tuple[np.ndarray, ...]:
        """The calibration subset cut into batches of `batch_size` (the last one dropped when
        it is short, so every batch has one shape)."""
        n = (len(self.x_calib) // batch_size) * batch_size
        if n == 0:
            raise ValueError(
                f"calibration subset of {len(self.x_calib)} images is smaller than "
                f"one batch of {batch_size}"
            )
        return tuple(self.x_calib[i : i + batch_size] for i in range(0, n, batch_size))


def _affine_matrix(
    rng: np.random.Generator, max_rotation: float, scale: tuple[float, float], max_shear: float
) -> np.ndarray:
    """2x2 matrix mapping output coordinates to input coordinates (scipy's convention)."""
    theta = math.radians(rng.uniform(-max_rotation, max_rotation))
    s = rng.uniform(*scale)
    sh = rng.uniform(-max_shear, max_shear)
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    shear = np.array([[1.0, sh], [0.0, 1.0]])
    fwd = s * rot @ shear
    return np.linalg.inv(fwd)


def _jitter(images: np.ndarray, rng: np.random.Generator, size: int, cfg: dict) -> np.ndarray:
    from scipy import ndimage

    out = np.empty((len(images), size, size), dtype=np.float32)
    center = np.array([(size - 1) / 2.0, (size - 1) / 2.0])
    shift_px = cfg["max_shift"] * size / 16.0
    for i, img in enumerate(images):
        m = _affine_matrix(rng, cfg["max_rotation"], cfg["scale"], cfg["max_shear"])
        t = rng.uniform(-shift_px, shift_px, 2)
        offset = center - m @ (center + t)
        warped = ndimage.affine_transform(img, m, offset=offset, order=1, mode="constant", cval=0.0)
        contrast = rng.uniform(*cfg["contrast"])
        bright = rng.uniform(-cfg["brightness"], cfg["brightness"])
        noisy = warped * contrast + bright + rng.normal(0.0, cfg["noise"], warped.shape)
        out[i] = noisy.astype(np.float32)
    return out


def load_digits_study(
    size: int = 16,
    seed: int = 0,
    train_copies: int = 3,
    calibration_size: int = 256,
    noise: float = 0.15,
    max_rotation: float = 10.0,
    max_shift: float = 1.0,
    test_fraction: float = TEST_FRACTION,
    val_fraction: float = VAL_FRACTION,
    split_seed: int = SPLIT_SEED,
) -> ImageDataset:
    """scikit-learn digits, upsampled and jittered (see the module docstring)."""
    from scipy import ndimage
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if size < 8:
        raise ValueError(f"size must be >= 8, found {size}")
    d = load_digits()
    images = d.images.astype(np.float64) / 16.0
    labels = d.target.astype(np.int64)
    idx = np.arange(len(labels))
    tr_idx, te_idx = train_test_split(
        idx, test_size=test_fraction, random_state=split_seed, stratify=labels
    )
    tr_idx, va_idx = train_test_split(
        tr_idx, test_size=val_fraction, random_state=split_seed, stratify=labels[tr_idx]
    )
    tr_idx, va_idx, te_idx = np.sort(tr_idx), np.sort(va_idx), np.sort(te_idx)
    if size != 8:
        images = np.stack([ndimage.zoom(im, size / 8.0, order=1) for im in images])
    cfg = {
        "max_rotation": float(max_rotation),
        "scale": SCALE,
        "max_shear": SHEAR,
        "max_shift": float(max_shift),
        "contrast": CONTRAST,
        "brightness": BRIGHTNESS,
        "noise": float(noise),
    }
    rng_train = np.random.default_rng([seed, 1])
    rng_test = np.random.default_rng([seed, 2])
    rng_val = np.random.default_rng([seed, 4])
    x_train = np.concatenate(
        [_jitter(images[tr_idx], rng_train, size, cfg) for _ in range(train_copies)]
    )
    y_train = np.tile(labels[tr_idx], train_copies)
    x_test = _jitter(images[te_idx], rng_test, size, cfg)
    y_test = labels[te_idx]
    x_val = _jitter(images[va_idx], rng_val, size, cfg)
    y_val = labels[va_idx]
    mean, std = float(x_train.mean()), float(x_train.std())
    x_train = ((x_train - mean) / std).astype(np.float32)[:, None]
    x_test = ((x_test - mean) / std).astype(np.float32)[:, None]
    x_val = ((x_val - mean) / std).astype(np.float32)[:, None]
    rng_cal = np.random.default_rng([seed, 3])
    cal = rng_cal.choice(len(x_train), size=min(calibration_size, len(x_train)), replace=False)
    x_calib = x_train[np.sort(cal)]
    config = dict(
        cfg,
        size=size,
        seed=seed,
        train_copies=train_copies,
        calibration_size=len(x_calib),
        test_fraction=test_fraction,
        val_fraction=val_fraction,
        n_val=len(x_val),
        split_seed=split_seed,
        standardize=(mean, std),
        n_train=len(x_train),
        n_test=len(x_test),
    )
    desc = (
        f"scikit-learn digits ({len(labels)} images), stratified split "
        f"{1 - test_fraction:.0%}/{test_fraction:.0%} with seed {split_seed}, then "
        f"{val_fraction:.0%} of the training part held out for validation "
        f"({len(tr_idx)} train / {len(va_idx)} validation / {len(te_idx)} test images); "
        f"upsampled 8x8 -> {size}x{size} "
        f"(bilinear), random affine jitter (rotation +-{max_rotation:g} deg, scale "
        f"{SCALE[0]:g}-{SCALE[1]:g}, "
        f"shear +-{SHEAR:g}, shift +-{max_shift * size / 16:g} px), contrast "
        f"{CONTRAST[0]:g}-{CONTRAST[1]:g}, brightness +-{BRIGHTNESS:g}, Gaussian noise sigma "
        f"{noise:g}; training split x{train_copies} "
        f"({len(x_train)} images); augmentation seed {seed}; calibration: {len(x_calib)} "
        f"training images"
    )
    return ImageDataset(x_train, y_train, x_test, y_test, x_calib, x_val, y_val, desc, config)
