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


VOCAB = 16  # token ids of the embedding models are drawn from [0, VOCAB)


def _sample(rng, name: str, shape, dtype) -> np.ndarray:
    """One input: token ids for integer inputs, a 0/1 attention mask for inputs named
    "mask", standard-normal data otherwise."""
    if np.issubdtype(np.dtype(dtype), np.integer):
        return rng.integers(0, VOCAB, shape).astype(dtype)
    if "mask" in name:
        m = np.ones(shape, np.float32)
        m[..., shape[-1] // 2 + 1 :] = 0.0  # the second half padded
        return m
    return rng.standard_normal(shape).astype(np.float32)


def _signature_order(model) -> list:
    """The model's inputs in the order of the converted model's signature (which is not
    Keras' order), read off a float conversion."""
    if len(model.inputs) == 1:
        return list(model.inputs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        blob = tf.lite.TFLiteConverter.from_keras_model(model).convert()
        names = [d["name"] for d in tf.lite.Interpreter(model_content=blob).get_input_details()]
    by_name = {t.name: t for t in model.inputs}
    return [by_name[n.removeprefix("serving_default_").split(":")[0]] for n in names]


def representative(model, seed: int) -> Callable:
    inputs = _signature_order(model)

    def gen():
        rng = np.random.default_rng(seed)
        for _ in range(N_REPRESENTATIVE):
            yield [_sample(rng, t.name, (1,) + tuple(t.shape[1:]), t.dtype) for t in inputs]

    return gen


def convert(model, mode: str, path: Path, seed: int = 0) -> Path:
    """Convert `model`: "float32", "float16_weights", "int8", "int16x8", "int8_floatio",
    "int16x8_floatio" (quantized inside with float32 input/output, i.e. QUANTIZE and
    DEQUANTIZE at the edges) or "int16x8_mixed" (16x8 with float32 input/output, operators
    without a 16x8 kernel left in float32 as the converter does when TFLITE_BUILTINS is
    allowed)."""
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode == "float16_weights":  # float16 constants + DEQUANTIZE, float32 compute
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]
    elif mode != "float32":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = representative(model, seed)
        if mode in ("int8", "int8_floatio"):
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            if mode == "int8":
                conv.inference_input_type = tf.int8
                conv.inference_output_type = tf.int8
        elif mode in ("int16x8", "int16x8_floatio", "int16x8_mixed"):
            conv.target_spec.supported_ops = [
                tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
            ] + ([tf.lite.OpsSet.TFLITE_BUILTINS] if mode == "int16x8_mixed" else [])
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


def interpreter(path: Path, preserve_all_tensors: bool = False, resolver: str = "BUILTIN_REF"):
    """TFLite's interpreter with the reference kernels (BUILTIN_REF, or the builtin ones
    where the reference resolver lacks an operator); with `preserve_all_tensors` every
    intermediate tensor can be read after invoke()."""
    with warnings.catch_warnings():  # tf.lite.Interpreter's deprecation notice
        warnings.simplefilter("ignore")
        it = tf.lite.Interpreter(
            model_path=str(path),
            experimental_op_resolver_type=getattr(tf.lite.experimental.OpResolverType, resolver),
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
            if np.issubdtype(dtype, np.integer) and not d["quantization"][0]:
                xs.append(rng.integers(0, VOCAB, shape).astype(dtype))  # token ids
            elif "mask" in d["name"]:
                xs.append(_sample(rng, d["name"], shape, dtype))
            elif np.issubdtype(dtype, np.integer):
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


# ---------------------------------------------------------------------------------------
# Operators of mobile CNNs and transformers (issue 14)
# ---------------------------------------------------------------------------------------


def activations_model():
    """LOGISTIC, TANH, SiLU (LOGISTIC * x), Keras' hard_sigmoid (relu6(x + 3) / 6), all
    with 16x8 kernels."""
    inp = _input((6, 6, 4))
    x = layers.Conv2D(8, 1)(inp)
    x = layers.Lambda(lambda t: t * 3.0)(x)  # a range past the functions' knees
    return keras.Model(
        inp,
        [
            layers.Activation("sigmoid")(x),
            layers.Activation("tanh")(x),
            layers.Activation("silu")(x),
            layers.Activation("hard_sigmoid")(x),
        ],
    )


def gelu_hard_swish_model():
    """GELU (exact and tanh forms) and HARD_SWISH: TFLite has 8-bit kernels only."""
    inp = _input((6, 6, 4))
    # no scaling Lambda before GELU: the converter folds it into GELU's own constants and
    # no longer recognises the pattern (it would emit ERFC, which TFLite lacks)
    # and one convolution per activation: two GELUs of one tensor are not recognised either
    return keras.Model(
        inp,
        [
            layers.Activation("gelu")(layers.Conv2D(8, 1)(inp)),  # the exact (erf) form
            layers.Activation(lambda t: tf.nn.gelu(t, approximate=True))(layers.Conv2D(8, 1)(inp)),
            layers.Activation("hard_swish")(layers.Conv2D(8, 1)(inp)),
        ],
    )


def squeeze_excite_model():
    """MobileNetV3's squeeze-and-excitation: MEAN, 1x1 convs, hard-sigmoid, broadcast MUL."""
    inp = _input((6, 6, 8))
    x = layers.Conv2D(8, 1)(inp)
    s = layers.GlobalAveragePooling2D(keepdims=True)(x)
    s = layers.Conv2D(4, 1, activation="relu")(s)
    s = layers.Conv2D(8, 1, activation="hard_sigmoid")(s)
    return keras.Model(inp, layers.Multiply()([x, s]))


def movement_model():
    """SPLIT, SPLIT_V, STRIDED_SLICE (steps, shrink), SLICE, GATHER, CONCATENATION on the
    height axis, a channel shuffle (RESHAPE-TRANSPOSE-RESHAPE), MIRROR_PAD (reflect,
    symmetric) and the converter's SHAPE / STRIDED_SLICE / PACK flatten."""
    inp = _input((6, 6, 8))
    x = layers.Conv2D(8, 1)(inp)
    a, b = layers.Lambda(lambda t: tf.split(t, 2, axis=-1))(x)
    p, q = layers.Lambda(lambda t: tf.split(t, [3, 5], axis=-1))(x)
    cat = layers.Concatenate(axis=1)([a, layers.ReLU()(b)])
    shuf = layers.Lambda(
        lambda t: tf.reshape(
            tf.transpose(tf.reshape(t, (1, 6, 6, 2, 4)), (0, 1, 2, 4, 3)), (1, 6, 6, 8)
        )
    )(x)
    strided = layers.Lambda(lambda t: t[:, 1:5:2, ::-1, 2:7])(x)
    row = layers.Lambda(lambda t: t[:, 2])(x)
    sl = layers.Lambda(lambda t: tf.slice(t, [0, 1, 0, 2], [1, 4, -1, 3]))(x)
    gat = layers.Lambda(lambda t: tf.gather(t, [3, 0, 5], axis=2))(x)
    refl = layers.Lambda(lambda t: tf.pad(t, [[0, 0], [1, 2], [2, 1], [0, 0]], mode="REFLECT"))(p)
    sym = layers.Lambda(lambda t: tf.pad(t, [[0, 0], [2, 0], [1, 2], [0, 0]], mode="SYMMETRIC"))(q)
    flat = layers.Lambda(lambda t: tf.reshape(t, [tf.shape(t)[0], -1]))(x)
    return keras.Model(inp, [cat, shuf, strided, row, sl, gat, refl, sym, flat])


def depth_to_space_tile_model():
    """DEPTH_TO_SPACE and TILE. TFLite's reference op resolver registers neither for
    quantized tensors (only version 1, float): the quantized models run with the builtin
    resolver, whose kernels for these two copy values just the same."""
    inp = _input((6, 6, 8))  # no convolution: the builtin CONV_2D may round otherwise
    d2s = layers.Lambda(lambda t: tf.nn.depth_to_space(t, 2))(inp)
    tile = layers.Lambda(lambda t: tf.tile(t, [1, 2, 1, 3]))(inp)
    return keras.Model(inp, [d2s, tile])


def resize_model():
    """RESIZE_BILINEAR and RESIZE_NEAREST_NEIGHBOR, each with half-pixel centers, aligned
    corners and neither, up and down."""
    inp = _input((5, 7, 4))
    x = layers.Conv2D(4, 1)(inp)
    outs = []
    for size in ((11, 9), (3, 4)):
        for kw in ({"half_pixel_centers": True}, {"align_corners": True}, {}):
            outs.append(
                layers.Lambda(
                    lambda t, s=size, k=kw: tf.compat.v1.image.resize_bilinear(t, s, **k)
                )(x)
            )
            outs.append(
                layers.Lambda(
                    lambda t, s=size, k=kw: tf.compat.v1.image.resize_nearest_neighbor(t, s, **k)
                )(x)
            )
    return keras.Model(inp, outs)


def dilated_model():
    """A dilated depthwise convolution with a dynamic batch: the converter leaves it as
    SPACE_TO_BATCH_ND -> DEPTHWISE_CONV_2D -> BATCH_TO_SPACE_ND; a dilated and a grouped
    CONV_2D."""
    inp = keras.Input((12, 12, 4))
    x = layers.DepthwiseConv2D(3, dilation_rate=2, padding="same")(inp)
    x = layers.Conv2D(8, 3, dilation_rate=(2, 3), padding="same", activation="relu")(x)
    return keras.Model(inp, layers.Conv2D(6, 3, groups=2, padding="same")(x))


def layer_norm_model():
    """Keras LayerNormalization: MEAN, SQUARED_DIFFERENCE, RSQRT, MUL, SUB, ADD."""
    inp = _input((5, 16))
    x = layers.Dense(16)(inp)
    return keras.Model(inp, layers.LayerNormalization(epsilon=1e-3)(x))


_LN_RNG = np.random.default_rng(7)


def _layer_norm(x, dim: int):
    """Layer normalisation written out (MEAN, SUB, MUL, MEAN, ADD, RSQRT, MUL, MUL, ADD): the
    16x8 converter turns Keras' LayerNormalization into an int16 SQUARED_DIFFERENCE, which
    TFLite itself cannot run; this form has 16x8 kernels throughout."""
    gamma = _LN_RNG.uniform(0.5, 1.5, dim).astype(np.float32)
    beta = _LN_RNG.normal(0.0, 0.2, dim).astype(np.float32)

    def ln(t):
        d = t - tf.reduce_mean(t, axis=-1, keepdims=True)
        v = tf.reduce_mean(d * d, axis=-1, keepdims=True)
        return d * tf.math.rsqrt(v + 1e-3) * gamma + beta

    return layers.Lambda(ln)(x)


def _encoder_layer(x, mask_add, heads: int, dim: int, seq: int):
    """A post-norm transformer encoder layer (BERT's): attention with an additive mask,
    layer norm, a GELU feed-forward, layer norm."""
    hd = dim // heads
    q = layers.Reshape((seq, heads, hd))(layers.Dense(dim)(x))
    k = layers.Reshape((seq, heads, hd))(layers.Dense(dim)(x))
    v = layers.Reshape((seq, heads, hd))(layers.Dense(dim)(x))
    q = layers.Permute((2, 1, 3))(q)
    k = layers.Permute((2, 3, 1))(k)
    v = layers.Permute((2, 1, 3))(v)
    s = layers.Lambda(lambda t: tf.matmul(t[0], t[1]) * (1.0 / np.sqrt(hd)))([q, k])
    if mask_add is not None:
        s = layers.Add()([s, mask_add])
    p = layers.Softmax()(s)
    o = layers.Lambda(lambda t: tf.matmul(t[0], t[1]))([p, v])
    o = layers.Reshape((seq, dim))(layers.Permute((2, 1, 3))(o))
    x = _layer_norm(layers.Add()([x, layers.Dense(dim)(o)]), dim)
    f = layers.Dense(dim * 2, activation="gelu")(x)
    return _layer_norm(layers.Add()([x, layers.Dense(dim)(f)]), dim)


def tiny_bert(seq: int = 6, dim: int = 16, heads: int = 2, embed: bool = True):
    """Two encoder layers over token + position embeddings (GATHER), with an attention mask
    (1 - mask) * -1e4 added to the scores; the first token's state is the output. Without
    `embed` the token embeddings are the input: TF's 16x8 converter cannot calibrate a model
    with integer (token id) inputs ("Max and min for dynamic tensors should be recorded")."""
    if embed:
        ids = keras.Input((seq,), batch_size=1, dtype="int32", name="ids")
        tok = layers.Embedding(VOCAB, dim)(ids)
    else:
        ids = tok = keras.Input((seq, dim), batch_size=1, name="embeddings")
    mask = keras.Input((seq,), batch_size=1, name="mask")
    pos = _LN_RNG.normal(0.0, 1.0, (1, seq, dim)).astype(np.float32)
    x = layers.Lambda(lambda t: t + pos, output_shape=(seq, dim))(tok)
    x = _layer_norm(x, dim)
    m = layers.Lambda(lambda t: (1.0 - t)[:, None, None, :] * -1e4, output_shape=(1, 1, seq))(mask)
    for _ in range(2):
        x = _encoder_layer(x, m, heads, dim, seq)
    return keras.Model([ids, mask], layers.Lambda(lambda t: t[:, 0])(x))


def tiny_vit(size: int = 8, patch: int = 4, dim: int = 16, heads: int = 2):
    """Patch embedding, a class token, a position embedding, one pre-norm encoder layer, the
    class token's state."""
    inp = _input((size, size, 3))
    n = (size // patch) ** 2
    t = layers.Reshape((n, dim))(layers.Conv2D(dim, patch, strides=patch)(inp))
    cls = layers.Embedding(1, dim)(layers.Lambda(lambda z: tf.zeros((1, 1), tf.int32))(inp))
    x = layers.Concatenate(axis=1)([cls, t])
    pos = layers.Embedding(n + 1, dim)(layers.Lambda(lambda z: tf.range(n + 1)[None, :])(inp))
    x = layers.Add()([x, pos])
    x = _encoder_layer(_layer_norm(x, dim), None, heads, dim, n + 1)
    return keras.Model(inp, layers.Lambda(lambda z: z[:, 0])(x))


def mobilenet_v3_block():
    """Expand 1x1 + hard-swish, depthwise 3x3, squeeze-and-excitation with hard-sigmoid,
    project 1x1, residual add."""
    inp = _input((8, 8, 8))
    x = layers.Activation("hard_swish")(layers.Conv2D(16, 1)(inp))
    x = layers.DepthwiseConv2D(3, padding="same")(x)
    x = layers.Activation("hard_swish")(x)
    s = layers.GlobalAveragePooling2D(keepdims=True)(x)
    s = layers.Conv2D(4, 1, activation="relu")(s)
    s = layers.Conv2D(16, 1, activation="hard_sigmoid")(s)
    x = layers.Multiply()([x, s])
    return keras.Model(inp, layers.Add()([inp, layers.Conv2D(8, 1)(x)]))


def efficientnet_block():
    """MBConv: expand 1x1 + SiLU, depthwise 3x3 + SiLU, squeeze-and-excitation with
    sigmoid, project 1x1, residual add."""
    inp = _input((8, 8, 8))
    x = layers.Activation("silu")(layers.Conv2D(16, 1)(inp))
    x = layers.Activation("silu")(layers.DepthwiseConv2D(3, padding="same")(x))
    s = layers.GlobalAveragePooling2D(keepdims=True)(x)
    s = layers.Conv2D(4, 1, activation="silu")(s)
    s = layers.Conv2D(16, 1, activation="sigmoid")(s)
    x = layers.Multiply()([x, s])
    return keras.Model(inp, layers.Add()([inp, layers.Conv2D(8, 1)(x)]))


def shufflenet_block():
    """ShuffleNetV2 unit: channel split, 1x1 / depthwise / 1x1 on one half, concat, channel
    shuffle."""
    inp = _input((8, 8, 8))
    a, b = layers.Lambda(lambda t: tf.split(t, 2, axis=-1))(inp)
    b = layers.Conv2D(4, 1, activation="relu")(b)
    b = layers.DepthwiseConv2D(3, padding="same")(b)
    b = layers.Conv2D(4, 1, activation="relu")(b)
    x = layers.Concatenate()([a, b])
    x = layers.Reshape((8, 8, 2, 4))(x)
    x = layers.Permute((1, 2, 4, 3))(x)
    return keras.Model(inp, layers.Reshape((8, 8, 8))(x))


def tiny_bert_encoder():
    return tiny_bert(embed=False)
