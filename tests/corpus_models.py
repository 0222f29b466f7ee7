"""The model corpus of issue 14 for test_corpus.py: small random-weight networks of the families
people deploy, written by their frameworks.

- `onnx` entries: PyTorch modules (Hugging Face transformers with small configs, and compact
  hand-written networks of the families torchvision ships: ShuffleNetV2, SqueezeNet, DenseNet,
  a UNet, ESPCN) exported by `torch.onnx.export`, and zoo models written by accelsim's ONNX
  export. Each ends in an operator ONNX Runtime's quantizer quantizes (a linear layer or a
  convolution), so its QDQ model's outputs are integers counted in steps.
- `tflite` entries: Keras models (keras.applications at reduced width and size, and small
  hand-written ones), converted by tests/tflite_models.py. keras.applications' EfficientNetB0
  converts and is bit-exact too (935,760 elements at int8 and at 16x8, measured when the corpus
  was written) but its two conversions take about 100 s: EfficientNet-B0 is here from Hugging
  Face and the zoo (ONNX), and in TFLite as EfficientNet-lite and test_tflite.py's MBConv.

torchvision and timm are not used: the only torchvision wheels on this machine are CUDA builds
that do not load with the CPU torch the project pins (and timm imports torchvision).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ort_platform import REDUCE_RANGE

SEQ = 8  # tokens of the text models
VOCAB = 30  # token ids are drawn from [0, VOCAB)


@dataclass(frozen=True)
class Entry:
    """One corpus model: its family, format, a maker of the float model (an `nn.Module` and its
    input shapes for `onnx`, a zoo name for a zoo export; a Keras model for `tflite`) and the
    TFLite modes it is checked in ("int16x8_mixed" where TFLite has no 16x8 kernel for one of
    its operators)."""

    name: str
    family: str
    fmt: str
    make: Callable
    modes: tuple[str, ...] = ("int8", "int16x8")


# ---------------------------------------------------------------------------------------------
# PyTorch
# ---------------------------------------------------------------------------------------------


def _torch():
    import torch
    from torch import nn

    return torch, nn


def _logits(model, *keys):
    """A wrapper returning the Hugging Face model's logits (a plain tensor to export)."""
    torch, nn = _torch()

    class Logits(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = model

        def forward(self, *args):
            return self.m(**dict(zip(keys, args))).logits

    return Logits().eval()


def _image(size: int) -> dict[str, tuple[int, ...]]:
    return {"x": (1, 3, size, size)}


_TEXT = {"ids": (1, SEQ), "mask": (1, SEQ)}


def hf_mobilenet_v2():
    import transformers as T

    m = T.MobileNetV2ForImageClassification(
        T.MobileNetV2Config(depth_multiplier=0.35, image_size=32, num_labels=10)
    )
    return _logits(m, "pixel_values"), _image(32)


def hf_efficientnet_b0():
    import transformers as T

    cfg = T.EfficientNetConfig(
        image_size=32,
        width_coefficient=0.25,
        depth_coefficient=0.34,
        hidden_dim=320,
        num_labels=10,
    )
    return _logits(T.EfficientNetForImageClassification(cfg), "pixel_values"), _image(32)


def hf_resnet18():
    import transformers as T

    cfg = T.ResNetConfig(
        embedding_size=16,
        hidden_sizes=[16, 32, 64, 128],
        depths=[2, 2, 2, 2],
        layer_type="basic",
        num_labels=10,
    )
    return _logits(T.ResNetForImageClassification(cfg), "pixel_values"), _image(32)


def hf_bert_tiny():
    import transformers as T

    cfg = T.BertConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=16,
        num_labels=4,
        attn_implementation="eager",
    )
    m = T.BertForSequenceClassification(cfg)
    return _logits(m, "input_ids", "attention_mask"), _TEXT


def hf_distilbert():
    import transformers as T

    cfg = T.DistilBertConfig(
        vocab_size=VOCAB,
        dim=32,
        n_layers=2,
        n_heads=2,
        hidden_dim=64,
        max_position_embeddings=16,
        num_labels=4,
        attn_implementation="eager",
    )
    m = T.DistilBertForSequenceClassification(cfg)
    return _logits(m, "input_ids", "attention_mask"), _TEXT


def _vit_config(cls):
    return cls(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=10,
    )


def hf_vit_tiny():
    import transformers as T

    m = T.ViTForImageClassification(_vit_config(T.ViTConfig))
    return _logits(m, "pixel_values"), _image(32)


def hf_deit_tiny():
    import transformers as T

    torch, nn = _torch()
    m = T.DeiTForImageClassificationWithTeacher(_vit_config(T.DeiTConfig))

    class Heads(nn.Module):
        """The distilled DeiT's class and distillation tokens, each with its head; both
        logits returned (their average, the model's `logits`, is a Div ONNX Runtime's
        quantizer leaves in float)."""

        def __init__(self) -> None:
            super().__init__()
            self.m = m

        def forward(self, x):
            out = self.m(pixel_values=x)
            return torch.cat([out.cls_logits, out.distillation_logits], -1)

    return Heads().eval(), _image(32)


def hf_mobilevit_xxs():
    import transformers as T

    cfg = T.MobileViTConfig(
        image_size=64,
        hidden_sizes=[64, 80, 96],
        neck_hidden_sizes=[16, 16, 24, 48, 64, 80, 320],
        expand_ratio=2.0,
        num_labels=10,
    )
    return _logits(T.MobileViTForImageClassification(cfg), "pixel_values"), _image(64)


def torch_shufflenet_v2():
    """ShuffleNetV2 at width 0.25-ish: stem, max pool, two stages of a stride-2 unit (both
    branches) and a basic unit (channel split by `chunk`, shuffle by reshape-transpose-
    reshape), 1x1 conv, global pool, linear."""
    torch, nn = _torch()

    def cbr(i, o, k=1, s=1, g=1, relu=True):
        layers = [nn.Conv2d(i, o, k, s, k // 2, groups=g, bias=False), nn.BatchNorm2d(o)]
        return nn.Sequential(*layers, *([nn.ReLU()] if relu else []))

    def shuffle(x):
        n, c, h, w = x.shape
        return x.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)

    class Unit(nn.Module):
        def __init__(self, i, o, stride):
            super().__init__()
            self.stride = stride
            b = o // 2
            if stride == 2:
                self.left = nn.Sequential(cbr(i, i, 3, 2, i, relu=False), cbr(i, b))
            inb = i if stride == 2 else b
            self.right = nn.Sequential(cbr(inb, b), cbr(b, b, 3, stride, b, relu=False), cbr(b, b))

        def forward(self, x):
            if self.stride == 1:
                a, b = x.chunk(2, dim=1)
                out = torch.cat([a, self.right(b)], 1)
            else:
                out = torch.cat([self.left(x), self.right(x)], 1)
            return shuffle(out)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = cbr(3, 8, 3, 2)
            self.pool = nn.MaxPool2d(3, 2, 1)
            self.stages = nn.Sequential(Unit(8, 16, 2), Unit(16, 16, 1), Unit(16, 32, 2))
            self.last = cbr(32, 64)
            self.fc = nn.Linear(64, 10)

        def forward(self, x):
            x = self.last(self.stages(self.pool(self.stem(x))))
            return self.fc(x.mean((2, 3)))

    return Net().eval(), _image(32)


def torch_squeezenet():
    """SqueezeNet 1.1 in miniature: fire modules (squeeze 1x1, expand 1x1 and 3x3,
    concatenated), ceil-mode max pools, a convolutional classifier, global average pool."""
    torch, nn = _torch()

    class Fire(nn.Module):
        def __init__(self, i, s, e):
            super().__init__()
            self.s = nn.Conv2d(i, s, 1)
            self.e1, self.e3 = nn.Conv2d(s, e, 1), nn.Conv2d(s, e, 3, padding=1)

        def forward(self, x):
            x = torch.relu(self.s(x))
            return torch.cat([torch.relu(self.e1(x)), torch.relu(self.e3(x))], 1)

    net = nn.Sequential(
        nn.Conv2d(3, 16, 3, 2),
        nn.ReLU(),
        nn.MaxPool2d(3, 2, ceil_mode=True),
        Fire(16, 4, 8),
        Fire(16, 4, 8),
        nn.MaxPool2d(3, 2, ceil_mode=True),
        Fire(16, 8, 16),
        nn.Conv2d(32, 10, 1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )
    return net.eval(), _image(32)


def torch_densenet():
    """DenseNet in miniature: dense layers (BN, ReLU, 1x1, BN, ReLU, 3x3) whose outputs are
    concatenated to their inputs, a transition (BN, ReLU, 1x1, 2x2 average pool), linear."""
    torch, nn = _torch()

    class Layer(nn.Module):
        def __init__(self, i, g):
            super().__init__()
            self.f = nn.Sequential(
                nn.BatchNorm2d(i),
                nn.ReLU(),
                nn.Conv2d(i, 2 * g, 1, bias=False),
                nn.BatchNorm2d(2 * g),
                nn.ReLU(),
                nn.Conv2d(2 * g, g, 3, padding=1, bias=False),
            )

        def forward(self, x):
            return torch.cat([x, self.f(x)], 1)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 16, 3, 2, 1, bias=False)
            self.block1 = nn.Sequential(Layer(16, 8), Layer(24, 8), Layer(32, 8))
            self.trans = nn.Sequential(
                nn.BatchNorm2d(40), nn.ReLU(), nn.Conv2d(40, 20, 1, bias=False), nn.AvgPool2d(2)
            )
            self.block2 = nn.Sequential(Layer(20, 8), Layer(28, 8))
            self.norm = nn.BatchNorm2d(36)
            self.fc = nn.Linear(36, 10)

        def forward(self, x):
            x = self.block2(self.trans(self.block1(self.stem(x))))
            return self.fc(torch.relu(self.norm(x)).mean((2, 3)))

    return Net().eval(), _image(32)


def torch_unet():
    """A UNet: two encoder levels (conv, ReLU, max pool), a bottleneck, decoder levels that
    upsample (bilinear, then nearest) and concatenate the skip connection, a 1x1 head."""
    torch, nn = _torch()
    F = torch.nn.functional

    def block(i, o):
        return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.ReLU())

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.e1, self.e2, self.mid = block(3, 8), block(8, 16), block(16, 16)
            self.d2, self.d1 = block(32, 8), block(16, 8)
            self.head = nn.Conv2d(8, 2, 1)

        def forward(self, x):
            a = self.e1(x)
            b = self.e2(F.max_pool2d(a, 2))
            m = self.mid(F.max_pool2d(b, 2))
            up = F.interpolate(m, scale_factor=2, mode="bilinear", align_corners=False)
            y = self.d2(torch.cat([up, b], 1))
            y = self.d1(torch.cat([F.interpolate(y, scale_factor=2, mode="nearest"), a], 1))
            return self.head(y)

    return Net().eval(), _image(16)


def torch_espcn():
    """ESPCN super-resolution (Shi et al. 2016): convs with tanh, a sub-pixel convolution
    (conv to r^2 channels, PixelShuffle = DepthToSpace), a 1x1 output conv."""
    torch, nn = _torch()
    net = nn.Sequential(
        nn.Conv2d(1, 16, 5, padding=2),
        nn.Tanh(),
        nn.Conv2d(16, 8, 3, padding=1),
        nn.Tanh(),
        nn.Conv2d(8, 4 * 4, 3, padding=1),
        nn.PixelShuffle(2),
        nn.Conv2d(4, 1, 1),
    )
    return net.eval(), {"x": (1, 1, 12, 12)}


def torch_attention_masks():
    """tests/torch_models.py's tiny BERT: an additive mask and a Where-selected one."""
    import torch_models as TM

    cls, inputs = TM.FAMILIES["tiny_bert"]
    return cls().eval(), {"ids": inputs["ids"], "mask": inputs["mask"]}


def sample(name: str, shape, rng: np.random.Generator) -> np.ndarray:
    """Token ids, a 0/1 mask (the last quarter padded), or standard-normal data."""
    if name == "mask":
        m = np.ones(shape, np.int64)
        m[..., -(shape[-1] // 4) :] = 0
        return m
    if name == "ids":
        return rng.integers(0, VOCAB, shape).astype(np.int64)
    return rng.standard_normal(shape).astype(np.float32)


def export_torch(make: Callable, seed: int = 0) -> tuple[bytes, dict[str, tuple[int, ...]]]:
    """The module with seeded random weights, exported to ONNX (opset 17)."""
    torch, _ = _torch()
    torch.manual_seed(seed)
    model, inputs = make()
    rng = np.random.default_rng(seed)
    with torch.no_grad():  # random BN statistics, so folding has something to fold
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.normal_(0.0, 0.1)
                mod.running_var.uniform_(0.5, 1.5)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.normal_(0.0, 0.1)
    args = tuple(torch.from_numpy(sample(k, s, rng)) for k, s in inputs.items())
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, args, f, opset_version=17, dynamo=False, input_names=list(inputs))
    return f.getvalue(), inputs


# ---------------------------------------------------------------------------------------------
# Keras
# ---------------------------------------------------------------------------------------------


def _keras():
    import tflite_models as M

    return M, M.keras, M.layers, M.tf


def keras_mobilenet():
    """keras.applications.MobileNet: its top flattens with the converter's SHAPE / PACK /
    STRIDED_SLICE / RESHAPE."""
    M, keras, layers, tf = _keras()
    inp = keras.Input((32, 32, 3), batch_size=1)
    net = keras.applications.MobileNet(
        weights=None, input_shape=(32, 32, 3), alpha=0.25, classes=10, include_top=True
    )
    return keras.Model(inp, net(inp))


def keras_mobilenet_v2():
    M, *_ = _keras()
    return M.mobilenet_v2(size=32, alpha=0.35)


def _keras_app(cls: str, **kw):
    M, keras, layers, tf = _keras()
    inp = keras.Input((32, 32, 3), batch_size=1)
    net = getattr(keras.applications, cls)(
        weights=None, input_shape=(32, 32, 3), classes=10, include_top=True, **kw
    )
    return keras.Model(inp, net(inp))


def keras_mobilenet_v3_small():
    return _keras_app("MobileNetV3Small", alpha=0.75, include_preprocessing=False)


def keras_mobilenet_v3_large():
    # minimalistic: ReLU and no squeeze-and-excitation, the variant with 16x8 kernels throughout
    return _keras_app(
        "MobileNetV3Large", alpha=0.75, minimalistic=True, include_preprocessing=False
    )


def keras_efficientnet_lite():
    """EfficientNet-lite's MBConv (Liu et al., TF model garden): ReLU6 instead of SiLU and no
    squeeze-and-excitation, fixed stem and head."""
    M, keras, layers, tf = _keras()
    inp = keras.Input((32, 32, 3), batch_size=1)
    x = layers.ReLU(6.0)(layers.BatchNormalization()(layers.Conv2D(16, 3, 2, "same")(inp)))
    for cout, stride in ((16, 1), (24, 2), (24, 1), (40, 2)):
        cin = x.shape[-1]
        y = layers.ReLU(6.0)(layers.BatchNormalization()(layers.Conv2D(cin * 4, 1)(x)))
        y = layers.DepthwiseConv2D(3, stride, "same")(y)
        y = layers.ReLU(6.0)(layers.BatchNormalization()(y))
        y = layers.BatchNormalization()(layers.Conv2D(cout, 1)(y))
        x = layers.Add()([x, y]) if stride == 1 and cin == cout else y
    x = layers.ReLU(6.0)(layers.Conv2D(64, 1)(x))
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, layers.Dense(10)(x))


def keras_dilated():
    """An atrous (DeepLab-style) network with a dynamic batch: dilated convolutions that the
    converter writes as SPACE_TO_BATCH_ND -> CONV -> BATCH_TO_SPACE_ND, an ASPP-like concat."""
    M, keras, layers, tf = _keras()
    inp = keras.Input((16, 16, 3))
    x = layers.Conv2D(8, 3, 2, "same", activation="relu")(inp)
    a = layers.Conv2D(8, 3, padding="same", dilation_rate=2, activation="relu")(x)
    b = layers.DepthwiseConv2D(3, padding="same", dilation_rate=4)(x)
    c = layers.Conv2D(8, 1, activation="relu")(x)
    x = layers.Concatenate()([a, b, c])
    return keras.Model(inp, layers.Conv2D(4, 1)(x))


def keras_densenet():
    """Dense blocks (BN, ReLU, conv, concatenated to the input) and a transition."""
    M, keras, layers, tf = _keras()
    inp = keras.Input((16, 16, 3), batch_size=1)
    x = layers.Conv2D(16, 3, 2, "same")(inp)
    for i in range(3):
        y = layers.ReLU()(layers.BatchNormalization()(x))
        y = layers.Conv2D(8, 3, padding="same")(y)
        x = layers.Concatenate()([x, y])
        if i == 1:
            x = layers.AveragePooling2D(2)(layers.Conv2D(16, 1)(x))
    x = layers.GlobalAveragePooling2D()(layers.ReLU()(x))
    return keras.Model(inp, layers.Dense(10)(x))


def keras_unet():
    """A UNet: conv / max-pool encoder, bilinear and nearest upsampling, skip concats."""
    M, keras, layers, tf = _keras()
    inp = keras.Input((16, 16, 3), batch_size=1)
    a = layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
    b = layers.Conv2D(16, 3, padding="same", activation="relu")(layers.MaxPooling2D()(a))
    m = layers.Conv2D(16, 3, padding="same", activation="relu")(layers.MaxPooling2D()(b))
    y = layers.Concatenate()([layers.UpSampling2D(interpolation="bilinear")(m), b])
    y = layers.Conv2D(8, 3, padding="same", activation="relu")(y)
    # nearest upsampling as RESIZE_NEAREST_NEIGHBOR (Keras 3's UpSampling2D writes a TILE
    # version BUILTIN_REF lacks)
    up = layers.Lambda(lambda t: tf.compat.v1.image.resize_nearest_neighbor(t, (16, 16)))(y)
    y = layers.Concatenate()([up, a])
    return keras.Model(inp, layers.Conv2D(2, 1)(y))


def keras_shufflenet():
    """tests/tflite_models.py's ShuffleNetV2 unit: SPLIT, convs, concat, channel shuffle.
    (ESPCN's DEPTH_TO_SPACE is the ONNX corpus's: TFLite's reference resolver registers it for
    float only, and the builtin kernels' convolutions round differently from the reference.)"""
    M, *_ = _keras()
    return M.shufflenet_block()


def keras_tiny_bert():
    M, *_ = _keras()
    return M.tiny_bert()


def keras_tiny_bert_encoder():
    M, *_ = _keras()
    return M.tiny_bert_encoder()


def keras_tiny_vit():
    M, *_ = _keras()
    return M.tiny_vit()


# ---------------------------------------------------------------------------------------------
# The corpus
# ---------------------------------------------------------------------------------------------

_NO16 = ("int8", "int16x8_mixed")  # an operator without a 16x8 kernel (HARD_SWISH, GELU)

CORPUS: dict[str, Entry] = {
    e.name: e
    for e in [
        Entry("hf_mobilenet_v2", "MobileNetV2", "onnx", hf_mobilenet_v2),
        Entry("hf_efficientnet_b0", "EfficientNet-B0", "onnx", hf_efficientnet_b0),
        Entry("hf_resnet18", "ResNet-18", "onnx", hf_resnet18),
        Entry("hf_bert_tiny", "BERT", "onnx", hf_bert_tiny),
        Entry("hf_distilbert", "DistilBERT", "onnx", hf_distilbert),
        Entry("hf_vit_tiny", "ViT", "onnx", hf_vit_tiny),
        Entry("hf_deit_tiny", "DeiT", "onnx", hf_deit_tiny),
        Entry("hf_mobilevit_xxs", "MobileViT-XXS", "onnx", hf_mobilevit_xxs),
        Entry("torch_shufflenet_v2", "ShuffleNetV2", "onnx", torch_shufflenet_v2),
        Entry("torch_squeezenet", "SqueezeNet", "onnx", torch_squeezenet),
        Entry("torch_densenet", "DenseNet", "onnx", torch_densenet),
        Entry("torch_unet", "UNet", "onnx", torch_unet),
        Entry("torch_espcn", "ESPCN (DepthToSpace)", "onnx", torch_espcn),
        Entry("torch_attention_masks", "attention with masks", "onnx", torch_attention_masks),
        Entry("zoo_mobilenet_v3_small", "MobileNetV3-Small", "onnx", "mobilenet_v3_small"),
        Entry("zoo_mobilenet_v3_large", "MobileNetV3-Large", "onnx", "mobilenet_v3_large"),
        Entry("zoo_efficientnet_b0", "EfficientNet-B0", "onnx", "efficientnet_b0"),
        Entry("keras_mobilenet", "MobileNet (Keras flatten)", "tflite", keras_mobilenet),
        Entry("keras_mobilenet_v2", "MobileNetV2", "tflite", keras_mobilenet_v2),
        Entry(
            "keras_mobilenet_v3_small",
            "MobileNetV3-Small",
            "tflite",
            keras_mobilenet_v3_small,
            _NO16,
        ),
        Entry(
            "keras_mobilenet_v3_large_min",
            "MobileNetV3-Large (minimalistic)",
            "tflite",
            keras_mobilenet_v3_large,
        ),
        Entry("keras_efficientnet_lite", "EfficientNet-lite", "tflite", keras_efficientnet_lite),
        Entry("keras_dilated", "dilated convs (SPACE_TO_BATCH_ND)", "tflite", keras_dilated),
        Entry("keras_densenet", "DenseNet", "tflite", keras_densenet),
        Entry("keras_unet", "UNet", "tflite", keras_unet),
        Entry("keras_shufflenet", "ShuffleNetV2 unit", "tflite", keras_shufflenet),
        Entry("keras_tiny_bert", "BERT", "tflite", keras_tiny_bert, ("int8",)),
        Entry(
            "keras_tiny_bert_encoder",
            "BERT encoder",
            "tflite",
            keras_tiny_bert_encoder,
            ("int16x8",),
        ),
        Entry("keras_tiny_vit", "ViT", "tflite", keras_tiny_vit),
    ]
}


# ---------------------------------------------------------------------------------------------
# ONNX Runtime's own quantizer over the ONNX models
# ---------------------------------------------------------------------------------------------

# (activation type, per-channel weights), given to the ONNX models in turn (`qdq_config`)
QDQ_CONFIGS = [("u8", True), ("s8", True), ("u8", False), ("s8", False)]


def qdq_config(name: str) -> tuple[str, bool]:
    onnx = [n for n, e in CORPUS.items() if e.fmt == "onnx"]
    return QDQ_CONFIGS[onnx.index(name) % len(QDQ_CONFIGS)]


def calibration_reader(inputs: dict[str, tuple[int, ...]], n: int, seed: int):
    """An ONNX Runtime `CalibrationDataReader` of `n` random samples of `inputs` (`sample`)."""
    from onnxruntime import quantization

    class Reader(quantization.CalibrationDataReader):
        def __init__(self) -> None:
            rng = np.random.default_rng(seed)
            self._it = iter([{k: sample(k, s, rng) for k, s in inputs.items()} for _ in range(n)])

        def get_next(self):
            return next(self._it, None)

    return Reader()


def ort_quantize(
    path: Path, inputs: dict[str, tuple[int, ...]], work: Path, act: str, per_channel: bool
) -> Path:
    """`path` quantized by ONNX Runtime's `quantize_static` (QDQ, int8 weights, 4 random
    calibration samples) into `work/qdq.onnx`. Its shape inference may leave temporary files
    in the working directory."""
    from onnxruntime import quantization
    from onnxruntime.quantization.shape_inference import quant_pre_process

    qt = quantization.QuantType
    # ONNX Runtime's documented flow: pre-process (ONNX shape inference, its optimizer's
    # constant folding; its symbolic shape inference gives up on MobileViT), then quantize;
    # without it the quantizer puts QDQ pairs into shape arithmetic (MobileViT's patch counts)
    pre = work / "pre.onnx"
    quant_pre_process(str(path), str(pre), skip_symbolic_shape=True)
    qpath = work / "qdq.onnx"
    quantization.quantize_static(
        str(pre),
        str(qpath),
        calibration_reader(inputs, 4, 0),
        quant_format=quantization.QuantFormat.QDQ,
        per_channel=per_channel,
        activation_type=qt.QUInt8 if act == "u8" else qt.QInt8,
        weight_type=qt.QInt8,
        reduce_range=REDUCE_RANGE,  # see tests/ort_platform.py
    )
    return qpath
