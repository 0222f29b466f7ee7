"""Keras models, TFLite conversion and the TFLite reference interpreter, for test_tflite.py.

The oracles here are TensorFlow's own: `tf.lite.TFLiteConverter` produces the quantized
models and `tf.lite.Interpreter` with the BUILTIN_REF op resolver (TFLite's reference
kernels) computes the expected outputs.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import tensorflow as tf  # noqa: E402

keras = tf.keras
layers = tf.keras.layers

MODES = ("int8", "int16x8")
N_REPRESENTATIVE = 8


# ---------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------


def randomize(model, seed: int) -> None:
    """Seeded random weights with realistic magnitudes (Keras zero-initialises biases and
    batch-norm statistics, which would hide the bias and BN folding paths)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        ws = layer.get_weights()
        if not ws:
            continue
        new = []
        names = [w.name for w in layer.weights]
        for name, w in zip(names, ws):
            if "gamma" in name or "moving_variance" in name:
                v = rng.uniform(0.5, 1.5, w.shape)
            elif "beta" in name or "moving_mean" in name or "bias" in name:
                v = rng.normal(0.0, 0.2, w.shape)
            else:
                fan_in = int(np.prod(w.shape[:-1])) if w.ndim > 1 else 1
                if "depthwise" in name:
                    fan_in = int(np.prod(w.shape[:2]))
                v = rng.normal(0.0, 1.0 / np.sqrt(max(fan_in, 1)), w.shape)
            new.append(v.astype(w.dtype))
        layer.set_weights(new)


def _input(shape):
    return keras.Input(shape, batch_size=1)


def conv_model():
    """SAME and VALID, stride 2, biases, fused ReLU and ReLU6, odd sizes (bottom/right pad)."""
    inp = _input((12, 11, 3))
    x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inp)
    x = layers.Conv2D(8, 3, padding="valid", activation="relu6")(x)
    x = layers.Conv2D(6, (3, 2), strides=2, padding="same")(x)
    y = layers.Conv2D(5, 1, padding="valid", use_bias=False)(x)
    return keras.Model(inp, y)


def depthwise_model():
    inp = _input((12, 12, 4))
    x = layers.DepthwiseConv2D(3, depth_multiplier=1, padding="same", activation="relu")(inp)
    y = layers.DepthwiseConv2D(3, depth_multiplier=2, strides=2, padding="valid")(x)
    y = layers.DepthwiseConv2D((3, 3), strides=2, padding="same", activation="relu6")(y)
    return keras.Model(inp, y)


def dense_model():
    inp = _input((24,))
    x = layers.Dense(16, activation="relu")(inp)
    y = layers.Dense(10)(x)
    return keras.Model(inp, y)


def add_model():
    """Two branches with very different scales meet in an ADD (left_shift 20 / 15 path)."""
    inp = _input((8, 8, 3))
    a = layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    b = layers.Conv2D(4, 1, padding="same")(inp)
    b = layers.Lambda(lambda t: t * 7.0)(b)
    y = layers.Add()([a, b])
    z = layers.Add()([y, layers.Conv2D(4, 1, activation="relu")(y)])
    return keras.Model(inp, z)


def avg_pool_model():
    inp = _input((11, 10, 4))
    x = layers.AveragePooling2D(3, strides=2, padding="same")(inp)
    y = layers.AveragePooling2D(2, strides=1, padding="valid")(x)
    return keras.Model(inp, y)


def max_pool_model():
    inp = _input((11, 10, 4))
    x = layers.MaxPooling2D(3, strides=2, padding="same")(inp)
    y = layers.MaxPooling2D(2, strides=1, padding="valid")(x)
    return keras.Model(inp, y)


def concat_model():
    """Inputs of different scales: the converter requantizes them to the output's scale."""
    inp = _input((6, 6, 3))
    a = layers.Conv2D(4, 1, activation="relu")(inp)
    b = layers.Conv2D(3, 3, padding="same")(inp)
    b = layers.Lambda(lambda t: t * 5.0)(b)
    y = layers.Concatenate(axis=-1)([a, b, inp])
    return keras.Model(inp, y)


def reshape_model():
    inp = _input((6, 6, 4))
    x = layers.Conv2D(8, 3, strides=2, padding="same")(inp)
    x = layers.Reshape((9, 8))(x)
    x = layers.Reshape((72,))(x)
    y = layers.Dense(5)(x)
    return keras.Model(inp, y)


def softmax_model():
    inp = _input((20,))
    x = layers.Dense(12)(inp)
    x = layers.Lambda(lambda t: t * 4.0)(x)
    y = layers.Softmax()(x)
    return keras.Model(inp, y)


def mean_model():
    inp = _input((7, 9, 6))
    x = layers.Conv2D(6, 3, padding="same")(inp)
    g = layers.GlobalAveragePooling2D()(x)
    m = layers.Lambda(lambda t: tf.reduce_mean(t, axis=[1], keepdims=True))(x)
    m = layers.Flatten()(m)
    y = layers.Concatenate()([g, m])
    return keras.Model(inp, y)


def mul_model():
    inp = _input((5, 5, 4))
    a = layers.Conv2D(4, 1)(inp)
    b = layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    y = layers.Multiply()([a, b])
    return keras.Model(inp, y)


def mobilenet_v2(size: int = 96, alpha: float = 0.35):
    inp = _input((size, size, 3))
    net = keras.applications.MobileNetV2(
        weights=None, input_shape=(size, size, 3), alpha=alpha, include_top=True, classes=10
    )
    return keras.Model(inp, net(inp))


# ---------------------------------------------------------------------------------------
# Conversion and the reference interpreter
# ---------------------------------------------------------------------------------------


def representative(shape, seed: int) -> Callable:
    def gen():
        rng = np.random.default_rng(seed)
        for _ in range(N_REPRESENTATIVE):
            yield [rng.standard_normal((1,) + tuple(shape)).astype(np.float32)]

    return gen


def convert(model, mode: str, path: Path, seed: int = 0) -> Path:
    """Convert `model`: "float32", "float16_weights", "int8", "int16x8", "int8_floatio" or
    "int16x8_floatio" (quantized inside with float32 input/output, i.e. QUANTIZE and
    DEQUANTIZE at the edges)."""
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode == "float16_weights":  # float16 constants + DEQUANTIZE, float32 compute
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]
    elif mode != "float32":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = representative(model.inputs[0].shape[1:], seed)
        if mode in ("int8", "int8_floatio"):
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            if mode == "int8":
                conv.inference_input_type = tf.int8
                conv.inference_output_type = tf.int8
        elif mode in ("int16x8", "int16x8_floatio"):
            conv.target_spec.supported_ops = [
                tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
            ]
            if mode == "int16x8":
                conv.inference_input_type = tf.int16
                conv.inference_output_type = tf.int16
        else:
            raise ValueError(mode)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        blob = conv.convert()
    path = Path(path)
    path.write_bytes(blob)
    return path


def interpreter(path: Path, preserve_all_tensors: bool = False):
    """TFLite's interpreter with the reference kernels (BUILTIN_REF); with
    `preserve_all_tensors` every intermediate tensor can be read after invoke()."""
    with warnings.catch_warnings():  # tf.lite.Interpreter's deprecation notice
        warnings.simplefilter("ignore")
        it = tf.lite.Interpreter(
            model_path=str(path),
            experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF,
            experimental_preserve_all_tensors=preserve_all_tensors,
        )
    it.allocate_tensors()
    return it


def run_reference(it, inputs: list[np.ndarray]) -> list[np.ndarray]:
    for d, x in zip(it.get_input_details(), inputs):
        it.set_tensor(d["index"], x)
    it.invoke()
    return [it.get_tensor(d["index"]).copy() for d in it.get_output_details()]


def random_inputs(it, n: int, seed: int) -> list[list[np.ndarray]]:
    """`n` input sets: quantized standard-normal data (the calibration distribution) and,
    for integer inputs, one set of uniform full-range integers (saturation paths)."""
    rng = np.random.default_rng(seed)
    sets = []
    for k in range(n):
        xs = []
        for d in it.get_input_details():
            shape, dtype = tuple(d["shape"]), d["dtype"]
            real = rng.standard_normal(shape).astype(np.float32) * (1.0 + 0.5 * k)
            if np.issubdtype(dtype, np.integer):
                info = np.iinfo(dtype)
                if k == n - 1:
                    q = rng.integers(info.min, info.max, shape, endpoint=True)
                else:
                    scale, zp = d["quantization"]
                    q = np.round(real / scale) + zp
                xs.append(np.clip(q, info.min, info.max).astype(dtype))
            else:
                xs.append(real.astype(dtype))
        sets.append(xs)
    return sets


def misc_model():
    """PAD, SUB, a standalone RELU / RELU6, TRANSPOSE, SQUEEZE and BATCH_MATMUL."""
    inp = _input((6, 5, 4))
    x = layers.ZeroPadding2D(((1, 2), (0, 1)))(inp)
    a = layers.Conv2D(4, 3, padding="valid")(x)
    b = layers.Conv2D(4, 3, padding="valid", activation="relu")(x)
    d = layers.Subtract()([a, b])
    c = layers.Concatenate()([d, a])
    r = layers.ReLU()(c)
    r6 = layers.ReLU(max_value=6.0)(layers.Concatenate()([a, d]))
    t = layers.Permute((2, 1, 3))(r)
    s = layers.MaxPooling2D((t.shape[1], 1))(t)
    s = layers.Lambda(lambda v: tf.squeeze(v, axis=1))(s)
    m = layers.Lambda(lambda v: tf.matmul(v[0], v[1], transpose_b=True))(
        [layers.Reshape((-1, 8))(r6), layers.Reshape((-1, 8))(r)]
    )
    return keras.Model(inp, [s, m])


def padv2_model():
    """PADV2 (a non-zero pad value). int8 and float only: for int16x8 the TF 2.21 converter
    writes a float32 constant_values tensor that TFLite's own PADV2 rejects."""
    inp = _input((5, 5, 3))
    x = layers.Conv2D(4, 3, padding="same")(inp)
    x = layers.Lambda(lambda v: tf.pad(v, [[0, 0], [1, 0], [0, 2], [0, 0]], constant_values=0.75))(
        x
    )
    y = layers.Conv2D(3, 3)(x)
    return keras.Model(inp, y)
