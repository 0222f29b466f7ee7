"""The built-in model zoo: published architectures with deterministic random weights.

Every model is the float *training* graph in NCHW float32, batch 1: convolutions without bias
followed by separate `batch_norm` nodes and separate `relu` / `relu6` nodes, so that the
quantizer has BatchNorm folding and activation fusion left to do. Classifiers end with
global average pooling, flatten, a dense layer to the classes and a softmax, so a different
`input_size` changes the MAC count but never the parameter count.

Counting conventions (what `Graph.params()` / `Graph.macs()` return):
- parameters = conv / dense weights and biases + BatchNorm and LayerNorm gamma and beta
  (BatchNorm running statistics are buffers, not parameters; this is what PyTorch's
  `sum(p.numel() for p in model.parameters())` and Keras' "trainable params" count);
- MACs = multiply-accumulates of conv2d, dense and matmul only.

Node names follow torchvision (or Hugging Face for BERT) module names, so that layer-name
patterns of a mixed-precision configuration match what users know, and weight constants are
named like the PyTorch `state_dict` entries (`layer1.0.conv1.weight`, `bn1.running_var`, ...).
Where torchvision applies a functional op there is no module name; the zoo then uses torch.fx's
style (`layer1.0.add`, a second use of a ReLU module as `layer1.0.relu_1`).

Weights are drawn from `numpy.random.default_rng(seed)` in a fixed order that does not depend
on `input_size`: He-normal conv / dense weights (std = sqrt(2 / fan_in)), BatchNorm gamma in
[0.8, 1.2], beta and running mean N(0, 0.05), running variance in [0.8, 1.2]. The one exception
is the scale of the BatchNorm closing a residual branch (`bn2` of a ResNet basic block, `bn3`
of a bottleneck, the projection BN of a MobileNet v2 inverted residual): its gamma is drawn in
[0.2, 0.4] instead, a damped form of the common "zero-init residual" practice, so that random
activations do not double in variance at every residual add and logits stay in a range where
the softmax is neither uniform nor one-hot.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from accelsim.core.errors import ModelError, ShapeError
from accelsim.model.builder import GraphBuilder
from accelsim.model.graph import Graph


@dataclass(frozen=True)
class ZooEntry:
    """One zoo model.

    `input_shape` is the default (published) input shape; `published` holds the published
    parameter and MAC figures (`params`, `macs`, as printed, i.e. rounded) with their
    `source`, and where one is well known the exact parameter count (`params_exact`) with
    its own source. `min_input_size` is the smallest `input_size` the architecture accepts.
    """

    name: str
    description: str
    input_shape: tuple[int, ...]
    published: Mapping[str, Any] = field(default_factory=dict)
    min_input_size: int = 1


# ---------------------------------------------------------------------------------------------
# Construction helpers
# ---------------------------------------------------------------------------------------------


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, (int, np.integer)) else (int(v[0]), int(v[1]))


class _Net:
    """A `GraphBuilder` plus a seeded generator and the layer vocabulary of the zoo."""

    def __init__(self, name: str, seed: int, bn_eps: float = 1e-5) -> None:
        self.b = GraphBuilder(name)
        self.rng = np.random.default_rng(seed)
        self.bn_eps = bn_eps

    # -- weights -------------------------------------------------------------------------
    def _normal(self, shape: tuple[int, ...], std: float) -> np.ndarray:
        return self.rng.standard_normal(shape, dtype=np.float32) * np.float32(std)

    def _uniform(self, n: int, lo: float, hi: float) -> np.ndarray:
        return self.rng.uniform(lo, hi, n).astype(np.float32)

    def _const(self, name: str, value: np.ndarray) -> str:
        return self.b.const(name, value, exact_name=True)

    # -- layers --------------------------------------------------------------------------
    def input(self, name: str, shape: tuple[int, ...]) -> str:
        return self.b.input(name, shape)

    def channels(self, x: str) -> int:
        return self.b.shape(x)[1]

    def conv(
        self, x: str, name: str, cout: int, k, stride=1, pad=0, groups: int = 1, bias: bool = False
    ) -> str:
        kh, kw = _pair(k)
        sh, sw = _pair(stride)
        ph, pw = _pair(pad)
        cin = self.channels(x)
        fan_in = cin // groups * kh * kw
        w = self._const(
            f"{name}.weight", self._normal((cout, cin // groups, kh, kw), math.sqrt(2.0 / fan_in))
        )
        ins = [x, w]
        if bias:
            ins.append(self._const(f"{name}.bias", self._normal((cout,), 0.05)))
        return self.b.add(
            "conv2d",
            ins,
            name=name,
            strides=(sh, sw),
            dilations=(1, 1),
            pads=(ph, pw, ph, pw),
            groups=groups,
            data_layout="NCHW",
        )

    def bn(self, x: str, name: str, gamma: tuple[float, float] = (0.8, 1.2)) -> str:
        c = self.channels(x)
        ins = [
            x,
            self._const(f"{name}.weight", self._uniform(c, *gamma)),
            self._const(f"{name}.bias", self._normal((c,), 0.05)),
            self._const(f"{name}.running_mean", self._normal((c,), 0.05)),
            self._const(f"{name}.running_var", self._uniform(c, 0.8, 1.2)),
        ]
        return self.b.add("batch_norm", ins, name=name, epsilon=self.bn_eps, data_layout="NCHW")

    def act(self, x: str, name: str, op: str = "relu") -> str:
        return self.b.add(op, [x], name=name)

    def add(self, a: str, b: str, name: str) -> str:
        return self.b.add("add", [a, b], name=name)

    def max_pool(self, x: str, name: str, k: int, stride: int, pad: int = 0) -> str:
        return self.b.add(
            "max_pool",
            [x],
            name=name,
            kernel=(k, k),
            strides=(stride, stride),
            pads=(pad, pad, pad, pad),
            data_layout="NCHW",
        )

    def avg_pool(
        self, x: str, name: str, k: int, stride: int, pad: int = 0, count_include_pad: bool = True
    ) -> str:
        return self.b.add(
            "avg_pool",
            [x],
            name=name,
            kernel=(k, k),
            strides=(stride, stride),
            pads=(pad, pad, pad, pad),
            count_include_pad=count_include_pad,
            data_layout="NCHW",
        )

    def concat(self, xs: list[str], name: str) -> str:
        return self.b.add("concat", xs, name=name, axis=1)

    def dense(self, x: str, name: str, out: int, bias: bool = True) -> str:
        fan_in = self.b.shape(x)[-1]
        ins = [
            x,
            self._const(f"{name}.weight", self._normal((out, fan_in), math.sqrt(2.0 / fan_in))),
        ]
        if bias:
            ins.append(self._const(f"{name}.bias", self._normal((out,), 0.05)))
        return self.b.add("dense", ins, name=name)

    def conv_bn_act(
        self,
        x: str,
        conv: str,
        bn: str,
        act: str | None,
        cout: int,
        k,
        stride=1,
        pad=0,
        groups: int = 1,
        act_op: str = "relu",
        bn_gamma: tuple[float, float] = (0.8, 1.2),
    ) -> str:
        y = self.conv(x, conv, cout, k, stride, pad, groups)
        y = self.bn(y, bn, bn_gamma)
        return self.act(y, act, act_op) if act else y

    def classifier_head(
        self, x: str, classes: int, fc: str, pool: str = "avgpool", flatten: str = "flatten"
    ) -> str:
        y = self.b.add("global_avg_pool", [x], name=pool, keepdims=True, data_layout="NCHW")
        y = self.b.add("flatten", [y], name=flatten, axis=1)
        y = self.dense(y, fc, classes)
        return self.b.add("softmax", [y], name="softmax", axis=-1)

    def build(self, *outputs: str, **metadata: Any) -> Graph:
        self.b.output(*outputs)
        self.b.metadata.update(metadata)
        return self.b.build()


_RESIDUAL_GAMMA = (0.2, 0.4)


# ---------------------------------------------------------------------------------------------
# MobileNet v1 (Howard et al. 2017), width 1.0
# ---------------------------------------------------------------------------------------------

# (output channels, stride of the depthwise conv) of the 13 depthwise-separable blocks
_MOBILENET_V1_BLOCKS = [
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),
]


def _mobilenet_v1(seed: int, size: int) -> Graph:
    """MobileNet v1 1.0 as in Table 1 of the paper, with ReLU6 and BN epsilon 1e-3 as in the
    Keras / TF-slim implementation (the paper says ReLU), and symmetric padding 1 on every 3x3
    conv (PyTorch style; Keras pads stride-2 convs bottom/right only, same output sizes for
    even inputs). The Keras 1x1-conv classifier is the equivalent dense `fc` here.

    Names: `features.0.{0,1,2}` = first conv, BN, ReLU6 (Keras conv1, conv1_bn, conv1_relu);
    block k = 1..13 is `features.k.{0..5}` = depthwise conv, BN, ReLU6, pointwise conv, BN,
    ReLU6 (Keras conv_dw_k, conv_dw_k_bn, conv_dw_k_relu, conv_pw_k, conv_pw_k_bn,
    conv_pw_k_relu); then `avgpool`, `flatten`, `fc`, `softmax`.
    """
    n = _Net("mobilenet_v1", seed, bn_eps=1e-3)
    x = n.input("input", (1, 3, size, size))
    x = n.conv_bn_act(
        x, "features.0.0", "features.0.1", "features.0.2", 32, 3, 2, 1, act_op="relu6"
    )
    for k, (cout, stride) in enumerate(_MOBILENET_V1_BLOCKS, start=1):
        p = f"features.{k}"
        c = n.channels(x)
        x = n.conv_bn_act(
            x, f"{p}.0", f"{p}.1", f"{p}.2", c, 3, stride, 1, groups=c, act_op="relu6"
        )
        x = n.conv_bn_act(x, f"{p}.3", f"{p}.4", f"{p}.5", cout, 1, act_op="relu6")
    y = n.classifier_head(x, 1000, "fc")
    return n.build(y, zoo="mobilenet_v1", seed=seed, input_size=size)


# ---------------------------------------------------------------------------------------------
# MobileNet v2 (Sandler et al. 2018), torchvision layout
# ---------------------------------------------------------------------------------------------

# (expansion t, output channels c, repeats n, first stride s), Table 2 of the paper
_MOBILENET_V2_SETTINGS = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]


def _mobilenet_v2(seed: int, size: int) -> Graph:
    """torchvision `mobilenet_v2()` (width 1.0): names as its modules, e.g.
    `features.0.0` conv / `features.0.1` BN / `features.0.2` ReLU6; an inverted residual with
    expansion is `features.i.conv.0.{0,1,2}` (expand 1x1), `features.i.conv.1.{0,1,2}`
    (depthwise 3x3), `features.i.conv.2` (linear projection), `features.i.conv.3` (its BN),
    plus `features.i.add` for the residual; block 1 (t = 1) has no expansion, so its layers are
    `features.1.conv.0.*` (depthwise), `features.1.conv.1`, `features.1.conv.2`. Last conv
    `features.18.*`, then `avgpool`, `flatten`, `classifier.1` (the Linear), `softmax`.
    """
    n = _Net("mobilenet_v2", seed, bn_eps=1e-5)
    x = n.input("input", (1, 3, size, size))
    x = n.conv_bn_act(
        x, "features.0.0", "features.0.1", "features.0.2", 32, 3, 2, 1, act_op="relu6"
    )
    idx = 1
    for t, c, reps, s in _MOBILENET_V2_SETTINGS:
        for r in range(reps):
            stride = s if r == 0 else 1
            p = f"features.{idx}.conv"
            cin = n.channels(x)
            hidden = cin * t
            y, j = x, 0
            if t != 1:
                y = n.conv_bn_act(y, f"{p}.0.0", f"{p}.0.1", f"{p}.0.2", hidden, 1, act_op="relu6")
                j = 1
            y = n.conv_bn_act(
                y,
                f"{p}.{j}.0",
                f"{p}.{j}.1",
                f"{p}.{j}.2",
                hidden,
                3,
                stride,
                1,
                groups=hidden,
                act_op="relu6",
            )
            use_res = stride == 1 and cin == c
            y = n.conv_bn_act(
                y,
                f"{p}.{j + 1}",
                f"{p}.{j + 2}",
                None,
                c,
                1,
                bn_gamma=_RESIDUAL_GAMMA if use_res else (0.8, 1.2),
            )
            x = n.add(x, y, f"features.{idx}.add") if use_res else y
            idx += 1
    x = n.conv_bn_act(
        x, f"features.{idx}.0", f"features.{idx}.1", f"features.{idx}.2", 1280, 1, act_op="relu6"
    )
    y = n.classifier_head(x, 1000, "classifier.1")
    return n.build(y, zoo="mobilenet_v2", seed=seed, input_size=size)


# ---------------------------------------------------------------------------------------------
# ResNet (He et al. 2016), torchvision layout
# ---------------------------------------------------------------------------------------------


def _resnet(name: str, seed: int, size: int, bottleneck: bool, layers: list[int]) -> Graph:
    n = _Net(name, seed, bn_eps=1e-5)
    x = n.input("input", (1, 3, size, size))
    x = n.conv_bn_act(x, "conv1", "bn1", "relu", 64, 7, 2, 3)
    x = n.max_pool(x, "maxpool", 3, 2, 1)
    expansion = 4 if bottleneck else 1
    for li, (blocks, width) in enumerate(zip(layers, (64, 128, 256, 512)), start=1):
        for bi in range(blocks):
            p = f"layer{li}.{bi}"
            stride = 2 if (bi == 0 and li > 1) else 1
            cin = n.channels(x)
            cout = width * expansion
            if bottleneck:
                # torchvision Bottleneck: the stride sits on the 3x3 conv (ResNet "v1.5")
                y = n.conv_bn_act(x, f"{p}.conv1", f"{p}.bn1", f"{p}.relu", width, 1)
                y = n.conv_bn_act(y, f"{p}.conv2", f"{p}.bn2", f"{p}.relu_1", width, 3, stride, 1)
                y = n.conv_bn_act(
                    y, f"{p}.conv3", f"{p}.bn3", None, cout, 1, bn_gamma=_RESIDUAL_GAMMA
                )
                last_relu = f"{p}.relu_2"
            else:
                y = n.conv_bn_act(x, f"{p}.conv1", f"{p}.bn1", f"{p}.relu", width, 3, stride, 1)
                y = n.conv_bn_act(
                    y, f"{p}.conv2", f"{p}.bn2", None, width, 3, 1, 1, bn_gamma=_RESIDUAL_GAMMA
                )
                last_relu = f"{p}.relu_1"
            if stride != 1 or cin != cout:
                x = n.conv_bn_act(
                    x, f"{p}.downsample.0", f"{p}.downsample.1", None, cout, 1, stride
                )
            x = n.act(n.add(y, x, f"{p}.add"), last_relu)
    y = n.classifier_head(x, 1000, "fc")
    return n.build(y, zoo=name, seed=seed, input_size=size)


def _resnet18(seed: int, size: int) -> Graph:
    """torchvision `resnet18()`: BasicBlocks [2, 2, 2, 2]. Names as torchvision modules:
    `conv1`, `bn1`, `relu`, `maxpool`, `layer1.0.conv1`, `layer1.0.bn1`, `layer1.0.relu`,
    `layer1.0.conv2`, `layer1.0.bn2`, `layer1.0.add`, `layer1.0.relu_1`,
    `layer2.0.downsample.0` / `.1`, ..., `avgpool`, `flatten`, `fc`, `softmax`."""
    return _resnet("resnet18", seed, size, False, [2, 2, 2, 2])


def _resnet50(seed: int, size: int) -> Graph:
    """torchvision `resnet50()`: Bottlenecks [3, 4, 6, 3] with the stride-2 on the 3x3 conv
    (`conv2`) of the first block of a stage, i.e. "ResNet v1.5" as torchvision ships it (the
    paper's v1 puts it on the first 1x1 conv; same parameter count, 4.09 vs 3.86 G MACs).
    Names as in `resnet18`, with `conv3` / `bn3` and ReLUs `relu`, `relu_1`, `relu_2`."""
    return _resnet("resnet50", seed, size, True, [3, 4, 6, 3])


# ---------------------------------------------------------------------------------------------
# Inception v3 (Szegedy et al. 2016), torchvision layout without the auxiliary classifier
# ---------------------------------------------------------------------------------------------


def _inception_v3(seed: int, size: int) -> Graph:
    """torchvision `inception_v3(aux_logits=False)` (init_weights layout, no input transform):
    every `BasicConv2d` named `X` is `X.conv` + `X.bn` (epsilon 1e-3) + `X.relu`;
    blocks `Mixed_5b` ... `Mixed_7c` with their torchvision branch names
    (`Mixed_5b.branch5x5_2.conv`, ...), functional pools `Mixed_5b.avg_pool` (3x3, stride 1,
    pad 1, count_include_pad as in PyTorch) / `Mixed_6a.max_pool`, and concats
    `Mixed_5b.concat` (`Mixed_7b.branch3x3.concat` inside InceptionE). Stem pools `maxpool1`,
    `maxpool2`; head `avgpool`, `flatten`, `fc`, `softmax`."""
    n = _Net("inception_v3", seed, bn_eps=1e-3)

    def basic(x: str, name: str, cout: int, k, stride=1, pad=0) -> str:
        return n.conv_bn_act(x, f"{name}.conv", f"{name}.bn", f"{name}.relu", cout, k, stride, pad)

    def block_a(x: str, p: str, pool_features: int) -> str:
        b1 = basic(x, f"{p}.branch1x1", 64, 1)
        b5 = basic(x, f"{p}.branch5x5_1", 48, 1)
        b5 = basic(b5, f"{p}.branch5x5_2", 64, 5, pad=2)
        b3 = basic(x, f"{p}.branch3x3dbl_1", 64, 1)
        b3 = basic(b3, f"{p}.branch3x3dbl_2", 96, 3, pad=1)
        b3 = basic(b3, f"{p}.branch3x3dbl_3", 96, 3, pad=1)
        bp = n.avg_pool(x, f"{p}.avg_pool", 3, 1, 1)
        bp = basic(bp, f"{p}.branch_pool", pool_features, 1)
        return n.concat([b1, b5, b3, bp], f"{p}.concat")

    def block_b(x: str, p: str) -> str:
        b3 = basic(x, f"{p}.branch3x3", 384, 3, stride=2)
        bd = basic(x, f"{p}.branch3x3dbl_1", 64, 1)
        bd = basic(bd, f"{p}.branch3x3dbl_2", 96, 3, pad=1)
        bd = basic(bd, f"{p}.branch3x3dbl_3", 96, 3, stride=2)
        bp = n.max_pool(x, f"{p}.max_pool", 3, 2)
        return n.concat([b3, bd, bp], f"{p}.concat")

    def block_c(x: str, p: str, c7: int) -> str:
        b1 = basic(x, f"{p}.branch1x1", 192, 1)
        b7 = basic(x, f"{p}.branch7x7_1", c7, 1)
        b7 = basic(b7, f"{p}.branch7x7_2", c7, (1, 7), pad=(0, 3))
        b7 = basic(b7, f"{p}.branch7x7_3", 192, (7, 1), pad=(3, 0))
        bd = basic(x, f"{p}.branch7x7dbl_1", c7, 1)
        bd = basic(bd, f"{p}.branch7x7dbl_2", c7, (7, 1), pad=(3, 0))
        bd = basic(bd, f"{p}.branch7x7dbl_3", c7, (1, 7), pad=(0, 3))
        bd = basic(bd, f"{p}.branch7x7dbl_4", c7, (7, 1), pad=(3, 0))
        bd = basic(bd, f"{p}.branch7x7dbl_5", 192, (1, 7), pad=(0, 3))
        bp = n.avg_pool(x, f"{p}.avg_pool", 3, 1, 1)
        bp = basic(bp, f"{p}.branch_pool", 192, 1)
        return n.concat([b1, b7, bd, bp], f"{p}.concat")

    def block_d(x: str, p: str) -> str:
        b3 = basic(x, f"{p}.branch3x3_1", 192, 1)
        b3 = basic(b3, f"{p}.branch3x3_2", 320, 3, stride=2)
        b7 = basic(x, f"{p}.branch7x7x3_1", 192, 1)
        b7 = basic(b7, f"{p}.branch7x7x3_2", 192, (1, 7), pad=(0, 3))
        b7 = basic(b7, f"{p}.branch7x7x3_3", 192, (7, 1), pad=(3, 0))
        b7 = basic(b7, f"{p}.branch7x7x3_4", 192, 3, stride=2)
        bp = n.max_pool(x, f"{p}.max_pool", 3, 2)
        return n.concat([b3, b7, bp], f"{p}.concat")

    def block_e(x: str, p: str) -> str:
        b1 = basic(x, f"{p}.branch1x1", 320, 1)
        b3 = basic(x, f"{p}.branch3x3_1", 384, 1)
        b3a = basic(b3, f"{p}.branch3x3_2a", 384, (1, 3), pad=(0, 1))
        b3b = basic(b3, f"{p}.branch3x3_2b", 384, (3, 1), pad=(1, 0))
        b3 = n.concat([b3a, b3b], f"{p}.branch3x3.concat")
        bd = basic(x, f"{p}.branch3x3dbl_1", 448, 1)
        bd = basic(bd, f"{p}.branch3x3dbl_2", 384, 3, pad=1)
        bda = basic(bd, f"{p}.branch3x3dbl_3a", 384, (1, 3), pad=(0, 1))
        bdb = basic(bd, f"{p}.branch3x3dbl_3b", 384, (3, 1), pad=(1, 0))
        bd = n.concat([bda, bdb], f"{p}.branch3x3dbl.concat")
        bp = n.avg_pool(x, f"{p}.avg_pool", 3, 1, 1)
        bp = basic(bp, f"{p}.branch_pool", 192, 1)
        return n.concat([b1, b3, bd, bp], f"{p}.concat")

    x = n.input("input", (1, 3, size, size))
    x = basic(x, "Conv2d_1a_3x3", 32, 3, stride=2)
    x = basic(x, "Conv2d_2a_3x3", 32, 3)
    x = basic(x, "Conv2d_2b_3x3", 64, 3, pad=1)
    x = n.max_pool(x, "maxpool1", 3, 2)
    x = basic(x, "Conv2d_3b_1x1", 80, 1)
    x = basic(x, "Conv2d_4a_3x3", 192, 3)
    x = n.max_pool(x, "maxpool2", 3, 2)
    x = block_a(x, "Mixed_5b", 32)
    x = block_a(x, "Mixed_5c", 64)
    x = block_a(x, "Mixed_5d", 64)
    x = block_b(x, "Mixed_6a")
    x = block_c(x, "Mixed_6b", 128)
    x = block_c(x, "Mixed_6c", 160)
    x = block_c(x, "Mixed_6d", 160)
    x = block_c(x, "Mixed_6e", 192)
    x = block_d(x, "Mixed_7a")
    x = block_e(x, "Mixed_7b")
    x = block_e(x, "Mixed_7c")
    y = n.classifier_head(x, 1000, "fc")
    return n.build(y, zoo="inception_v3", seed=seed, input_size=size)


# ---------------------------------------------------------------------------------------------
# One BERT-base encoder layer (Devlin et al. 2019), Hugging Face naming
# ---------------------------------------------------------------------------------------------

BERT_HIDDEN, BERT_HEADS, BERT_FFN = 768, 12, 3072


def _bert_base_layer(seed: int, seq: int) -> Graph:
    """One BERT-base encoder layer (`BertLayer` of Hugging Face transformers, no attention
    mask, dropout off), post-LN, exact-erf GELU, LayerNorm epsilon 1e-12. Input: hidden states
    (1, seq, 768). Names: `attention.self.{query,key,value}`, their head reshapes / transposes
    (`attention.self.query.reshape`, `...transpose`), `attention.self.matmul` (Q K^T),
    `attention.self.mul` (scale 1/sqrt(64)), `attention.self.softmax`,
    `attention.self.matmul_1` (probabilities x V), `attention.self.context.transpose` /
    `.reshape`, `attention.output.dense`, `attention.output.add`,
    `attention.output.LayerNorm`, `intermediate.dense`, `intermediate.gelu`, `output.dense`,
    `output.add`, `output.LayerNorm`.

    MACs, with S = seq, d = 768, h = 12 heads of 64, f = 3072:
    Q, K, V and output projections 4 S d^2, scores Q K^T h S^2 64 = S^2 d, probabilities x V
    S^2 d again, FFN 2 S d f; for S = 128: 4*128*768^2 + 2*128^2*768 + 2*128*768*3072
    = 301,989,888 + 25,165,824 + 603,979,776 = 931,135,488 (0.93 G). Parameters: 4 (d^2 + d)
    + 2 (d f) + f + d + 2 * 2 d (two LayerNorms) = 7,087,872 (independent of S).
    """
    d, h, f = BERT_HIDDEN, BERT_HEADS, BERT_FFN
    dh = d // h
    n = _Net("bert_base_layer", seed)
    x = n.input("hidden_states", (1, seq, d))

    def heads(t: str, name: str, perm: tuple[int, ...]) -> str:
        t = n.b.add("reshape", [t], name=f"{name}.reshape", shape=(1, seq, h, dh))
        return n.b.add("transpose", [t], name=f"{name}.transpose", perm=perm)

    def layer_norm(t: str, name: str) -> str:
        g = n._const(f"{name}.weight", n._uniform(d, 0.8, 1.2))
        b = n._const(f"{name}.bias", n._normal((d,), 0.05))
        return n.b.add("layer_norm", [t, g, b], name=name, axis=-1, epsilon=1e-12)

    q = heads(n.dense(x, "attention.self.query", d), "attention.self.query", (0, 2, 1, 3))
    k = heads(n.dense(x, "attention.self.key", d), "attention.self.key", (0, 2, 3, 1))
    v = heads(n.dense(x, "attention.self.value", d), "attention.self.value", (0, 2, 1, 3))
    s = n.b.add("matmul", [q, k], name="attention.self.matmul")  # (1, h, S, S)
    scale = n._const("attention.self.scale", np.array(1.0 / math.sqrt(dh), dtype=np.float32))
    s = n.b.add("mul", [s, scale], name="attention.self.mul")
    p = n.b.add("softmax", [s], name="attention.self.softmax", axis=-1)
    c = n.b.add("matmul", [p, v], name="attention.self.matmul_1")  # (1, h, S, dh)
    c = n.b.add("transpose", [c], name="attention.self.context.transpose", perm=(0, 2, 1, 3))
    c = n.b.add("reshape", [c], name="attention.self.context.reshape", shape=(1, seq, d))
    a = n.dense(c, "attention.output.dense", d)
    a = layer_norm(n.add(a, x, "attention.output.add"), "attention.output.LayerNorm")
    i = n.dense(a, "intermediate.dense", f)
    i = n.b.add("gelu", [i], name="intermediate.gelu", approximate="none")
    o = n.dense(i, "output.dense", d)
    o = layer_norm(n.add(o, a, "output.add"), "output.LayerNorm")
    return n.build(o, zoo="bert_base_layer", seed=seed, input_size=seq)


# ---------------------------------------------------------------------------------------------
# A small CNN for scikit-learn's 8x8 digits
# ---------------------------------------------------------------------------------------------


def _digits_cnn(seed: int, size: int) -> Graph:
    """conv3x3 1->16 + BN + ReLU, conv3x3 16->32 stride 2 + BN + ReLU, conv3x3 32->64 stride 2
    + BN + ReLU (all padded by 1), global average pool, flatten, dense 64->10, softmax.
    Names `conv1`/`bn1`/`relu1` ... `conv3`/`bn3`/`relu3`, `avgpool`, `flatten`, `fc`,
    `softmax`."""
    n = _Net("digits_cnn", seed, bn_eps=1e-5)
    x = n.input("input", (1, 1, size, size))
    x = n.conv_bn_act(x, "conv1", "bn1", "relu1", 16, 3, 1, 1)
    x = n.conv_bn_act(x, "conv2", "bn2", "relu2", 32, 3, 2, 1)
    x = n.conv_bn_act(x, "conv3", "bn3", "relu3", 64, 3, 2, 1)
    y = n.classifier_head(x, 10, "fc")
    return n.build(y, zoo="digits_cnn", seed=seed, input_size=size)


# ---------------------------------------------------------------------------------------------
# The zoo
# ---------------------------------------------------------------------------------------------

_TV = "torchvision.models documentation (weights table: num_params, GFLOPS)"

MODELS: dict[str, ZooEntry] = {
    e.name: e
    for e in [
        ZooEntry(
            "mobilenet_v1",
            "MobileNet v1 1.0, 224x224 (Howard et al. 2017), ReLU6 as in Keras",
            (1, 3, 224, 224),
            {
                "params": 4.2e6,
                "macs": 569e6,
                "source": "Howard et al. 2017, 'MobileNets', Table 8 (1.0 MobileNet-224: "
                "569 million mult-adds, 4.2 million parameters)",
                "params_exact": 4_231_976,
                "params_exact_source": "tf.keras.applications.MobileNet(alpha=1.0) summary, "
                "trainable params",
            },
        ),
        ZooEntry(
            "mobilenet_v2",
            "MobileNet v2 1.0, 224x224 (Sandler et al. 2018), torchvision",
            (1, 3, 224, 224),
            {
                "params": 3.4e6,
                "macs": 300e6,
                "source": "Sandler et al. 2018, 'MobileNetV2', Table 4 (300M MAdds, 3.4M "
                "parameters); torchvision: 3,504,872 params, 0.30 GFLOPS",
                "params_exact": 3_504_872,
                "params_exact_source": _TV,
            },
        ),
        ZooEntry(
            "resnet18",
            "ResNet-18, 224x224 (He et al. 2016), torchvision layout",
            (1, 3, 224, 224),
            {
                "params": 11.7e6,
                "macs": 1.8e9,
                "source": "He et al. 2016, Table 1 (1.8x10^9 FLOPs, i.e. multiply-adds); "
                "torchvision: 11.7 M params, 1.81 GFLOPS",
                "params_exact": 11_689_512,
                "params_exact_source": _TV,
            },
        ),
        ZooEntry(
            "resnet50",
            "ResNet-50 v1.5 (stride on the 3x3 conv, as torchvision ships it), 224x224",
            (1, 3, 224, 224),
            {
                "params": 25.6e6,
                "macs": 4.1e9,
                "source": "torchvision resnet50: 25.6 M params, 4.09 GFLOPS (He et al. 2016 "
                "Table 1 gives 3.8x10^9 for v1, stride on the 1x1 conv)",
                "params_exact": 25_557_032,
                "params_exact_source": _TV,
            },
        ),
        ZooEntry(
            "inception_v3",
            "Inception v3, 299x299 (Szegedy et al. 2016), torchvision layout "
            "without the auxiliary classifier",
            (1, 3, 299, 299),
            {
                "params": 23.8e6,
                "macs": 5.7e9,
                "source": "torchvision inception_v3: 27.2 M params with the auxiliary "
                "classifier (27,161,264; aux = 3,326,696), 5.71 GFLOPS; Szegedy et al. "
                "2016 quote 5 billion multiply-adds, 25 M params for their variant",
                "params_exact": 23_834_568,
                "params_exact_source": "torchvision inception_v3(aux_logits=False), "
                "= 27,161,264 - 3,326,696 (AuxLogits)",
            },
            min_input_size=75,
        ),
        ZooEntry(
            "bert_base_layer",
            "one BERT-base encoder layer (hidden 768, 12 heads, FFN 3072), "
            "sequence 128; input_size sets the sequence length",
            (1, 128, 768),
            {
                "params": 7.09e6,
                "macs": 0.93e9,
                "source": "Devlin et al. 2019 (BERT-base: L=12, H=768, A=12, 110 M params); one "
                "layer = 4 (768^2 + 768) + 2 (768 x 3072) + 3072 + 768 + 4 x 768 "
                "= 7,087,872 params; MACs computed: 4 S d^2 + 2 S^2 d + 2 S d f = "
                "931,135,488 at S = 128",
                "params_exact": 7_087_872,
                "params_exact_source": "Hugging Face BertLayer(bert-base-uncased config), "
                "sum of parameter numel",
            },
        ),
        ZooEntry(
            "digits_cnn",
            "small CNN (3 conv + BN + ReLU, GAP, dense) for scikit-learn's 8x8 digits",
            (1, 1, 8, 8),
            {
                "params": 24_058,
                "macs": 157_312,
                "source": "defined here (no publication): 144 + 4,608 + 18,432 conv weights, "
                "2 x (16 + 32 + 64) BN gamma/beta, 650 dense",
            },
        ),
    ]
}

_BUILDERS: dict[str, Callable[[int, int], Graph]] = {
    "mobilenet_v1": _mobilenet_v1,
    "mobilenet_v2": _mobilenet_v2,
    "resnet18": _resnet18,
    "resnet50": _resnet50,
    "inception_v3": _inception_v3,
    "bert_base_layer": _bert_base_layer,
    "digits_cnn": _digits_cnn,
}


def build(name: str, seed: int = 0, input_size: int | None = None) -> Graph:
    """Build zoo model `name` with weights drawn from `seed`.

    `input_size` overrides the input height = width (for `bert_base_layer`: the sequence
    length); the weights (and parameter count) do not depend on it.
    """
    entry = MODELS.get(name)
    if entry is None:
        raise ModelError(f"unknown zoo model '{name}'; the zoo has: {', '.join(MODELS)}")
    default = entry.input_shape[1] if name == "bert_base_layer" else entry.input_shape[-1]
    size = default if input_size is None else input_size
    if (
        isinstance(size, bool)
        or not isinstance(size, (int, np.integer))
        or size < entry.min_input_size
    ):
        raise ModelError(
            f"zoo model '{name}': input_size must be an integer >= "
            f"{entry.min_input_size}, found {input_size!r}"
        )
    try:
        return _BUILDERS[name](int(seed), int(size))
    except ShapeError as exc:
        raise ModelError(
            f"zoo model '{name}': input_size {size} does not fit the architecture ({exc})"
        ) from None


# ---------------------------------------------------------------------------------------------
# A small MobileNet-v1-style depthwise-separable network for the digits (appended entry)
# ---------------------------------------------------------------------------------------------

# (output channels, stride of the depthwise conv) of the 5 depthwise-separable blocks
_DIGITS_MOBILENET_BLOCKS = [(32, 1), (64, 2), (64, 1), (128, 2), (128, 1)]


def _digits_mobilenet(seed: int, size: int) -> Graph:
    """MobileNet v1 in miniature for the (upsampled) digits: conv3x3 1->16 stride 2 + BN +
    ReLU6, then 5 depthwise-separable blocks (depthwise 3x3 + BN + ReLU6, pointwise 1x1 + BN +
    ReLU6) to 32, 64 (stride 2), 64, 128 (stride 2), 128 channels, global average pool,
    flatten, dense 128->10, softmax; BN epsilon 1e-3 and ReLU6 as in Keras' MobileNet, padding 1
    on every 3x3 conv. Names as `mobilenet_v1`: `features.0.{0,1,2}`, block k = 1..5
    `features.k.{0..5}` (dw conv, BN, ReLU6, pw conv, BN, ReLU6), `avgpool`, `flatten`, `fc`,
    `softmax`. Default input 1x16x16 (the accuracy study's upsampled digits)."""
    n = _Net("digits_mobilenet", seed, bn_eps=1e-3)
    x = n.input("input", (1, 1, size, size))
    x = n.conv_bn_act(
        x, "features.0.0", "features.0.1", "features.0.2", 16, 3, 2, 1, act_op="relu6"
    )
    for k, (cout, stride) in enumerate(_DIGITS_MOBILENET_BLOCKS, start=1):
        p = f"features.{k}"
        c = n.channels(x)
        x = n.conv_bn_act(
            x, f"{p}.0", f"{p}.1", f"{p}.2", c, 3, stride, 1, groups=c, act_op="relu6"
        )
        x = n.conv_bn_act(x, f"{p}.3", f"{p}.4", f"{p}.5", cout, 1, act_op="relu6")
    y = n.classifier_head(x, 10, "fc")
    return n.build(y, zoo="digits_mobilenet", seed=seed, input_size=size)


MODELS["digits_mobilenet"] = ZooEntry(
    "digits_mobilenet",
    "small MobileNet-v1-style depthwise-separable CNN (conv + 5 dw/pw "
    "blocks with BN and ReLU6, GAP, dense) for the digits upsampled to 16x16",
    (1, 1, 16, 16),
    {
        "params": 36_874,
        "macs": 269_824,
        "source": "defined here (no publication): 144 first conv + 9 x (16 + 32 + 64 + 64 + 128) "
        "= 2,736 depthwise + 512 + 2,048 + 4,096 + 8,192 + 16,384 = 31,232 pointwise "
        "conv weights, 2 x 736 BN gamma/beta, 1,290 dense",
    },
)
_BUILDERS["digits_mobilenet"] = _digits_mobilenet
