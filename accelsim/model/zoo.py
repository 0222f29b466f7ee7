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
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
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
    size_axis: int = -1  # the axis of `input_shape` that `input_size` sets


# ---------------------------------------------------------------------------------------------
# Construction helpers
# ---------------------------------------------------------------------------------------------


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, (int, np.integer)) else (int(v[0]), int(v[1]))


# Set while `summary` builds a model for its counts only: weights are then read-only zero
# views that take no memory, so listing BERT-base's 110 M parameters costs milliseconds.
_SHAPES_ONLY: ContextVar[bool] = ContextVar("zoo_shapes_only", default=False)


@contextmanager
def _shapes_only() -> Iterator[None]:
    token = _SHAPES_ONLY.set(True)
    try:
        yield
    finally:
        _SHAPES_ONLY.reset(token)


class _Net:
    """A `GraphBuilder` plus a seeded generator and the layer vocabulary of the zoo."""

    def __init__(self, name: str, seed: int, bn_eps: float = 1e-5) -> None:
        self.b = GraphBuilder(name)
        self.rng = np.random.default_rng(seed)
        self.bn_eps = bn_eps
        self.shapes_only = _SHAPES_ONLY.get()

    # -- weights -------------------------------------------------------------------------
    def _normal(self, shape: tuple[int, ...], std: float) -> np.ndarray:
        if self.shapes_only:
            return np.broadcast_to(np.float32(0), shape)
        return self.rng.standard_normal(shape, dtype=np.float32) * np.float32(std)

    def _uniform(self, n: int, lo: float, hi: float) -> np.ndarray:
        if self.shapes_only:
            return np.broadcast_to(np.float32(lo), (n,))
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
        if op == "silu":  # x * sigmoid(x), the form exporters write
            s = self.b.add("sigmoid", [x], name=f"{name}.sigmoid")
            return self.b.add("mul", [x, s], name=name)
        if op == "hard_sigmoid":  # PyTorch's relu6(x + 3) / 6
            return self.b.add("hard_sigmoid", [x], name=name, alpha=1.0 / 6.0, beta=0.5)
        return self.b.add(op, [x], name=name)

    def layer_norm(self, x: str, name: str, eps: float) -> str:
        d = self.b.shape(x)[-1]
        g = self._const(f"{name}.weight", self._uniform(d, 0.8, 1.2))
        b = self._const(f"{name}.bias", self._normal((d,), 0.05))
        return self.b.add("layer_norm", [x, g, b], name=name, axis=-1, epsilon=eps)

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
    n = _Net("bert_base_layer", seed)
    x = n.input("hidden_states", (1, seq, BERT_HIDDEN))
    o = _bert_layer(n, x, "", BERT_HEADS, BERT_FFN, 1e-12)
    return n.build(o, zoo="bert_base_layer", seed=seed, input_size=seq)


def _attention(n: _Net, x: str, sp: str, out: str, heads: int) -> str:
    """Multi-head self-attention on (batch, seq, d), no mask, Hugging Face's module layout:
    `{sp}.query` / `.key` / `.value` (with bias), their head reshapes and transposes
    (`{sp}.query.reshape`, `...transpose`), `{sp}.matmul` (Q K^T), `{sp}.mul` (1/sqrt(d_head)),
    `{sp}.softmax`, `{sp}.matmul_1`, `{sp}.context.transpose` / `.reshape` and the output
    projection `out`."""
    bsz, seq, d = n.b.shape(x)
    dh = d // heads

    def split(t: str, name: str, perm: tuple[int, ...]) -> str:
        t = n.b.add("reshape", [t], name=f"{name}.reshape", shape=(bsz, seq, heads, dh))
        return n.b.add("transpose", [t], name=f"{name}.transpose", perm=perm)

    q = split(n.dense(x, f"{sp}.query", d), f"{sp}.query", (0, 2, 1, 3))
    k = split(n.dense(x, f"{sp}.key", d), f"{sp}.key", (0, 2, 3, 1))
    v = split(n.dense(x, f"{sp}.value", d), f"{sp}.value", (0, 2, 1, 3))
    s = n.b.add("matmul", [q, k], name=f"{sp}.matmul")  # (batch, heads, seq, seq)
    scale = n._const(f"{sp}.scale", np.array(1.0 / math.sqrt(dh), dtype=np.float32))
    s = n.b.add("mul", [s, scale], name=f"{sp}.mul")
    p = n.b.add("softmax", [s], name=f"{sp}.softmax", axis=-1)
    c = n.b.add("matmul", [p, v], name=f"{sp}.matmul_1")  # (batch, heads, seq, d_head)
    c = n.b.add("transpose", [c], name=f"{sp}.context.transpose", perm=(0, 2, 1, 3))
    c = n.b.add("reshape", [c], name=f"{sp}.context.reshape", shape=(bsz, seq, d))
    return n.dense(c, out, d)


def _bert_layer(n: _Net, x: str, p: str, heads: int, ffn: int, eps: float) -> str:
    """A post-LN encoder layer (`BertLayer`): attention, add, LayerNorm, FFN with exact GELU,
    add, LayerNorm; module names under prefix `p` (e.g. `encoder.layer.0.`)."""
    d = n.b.shape(x)[-1]
    a = _attention(n, x, f"{p}attention.self", f"{p}attention.output.dense", heads)
    a = n.layer_norm(n.add(a, x, f"{p}attention.output.add"), f"{p}attention.output.LayerNorm", eps)
    i = n.dense(a, f"{p}intermediate.dense", ffn)
    i = n.b.add("gelu", [i], name=f"{p}intermediate.gelu", approximate="none")
    o = n.dense(i, f"{p}output.dense", d)
    return n.layer_norm(n.add(o, a, f"{p}output.add"), f"{p}output.LayerNorm", eps)


def _vit_layer(n: _Net, x: str, p: str, heads: int, ffn: int, eps: float, act: str) -> str:
    """A pre-LN encoder layer (`ViTLayer`, also MobileViT's transformer layer):
    `layernorm_before`, attention, add, `layernorm_after`, MLP (`intermediate.dense` + `act`,
    `output.dense`), add."""
    d = n.b.shape(x)[-1]
    y = n.layer_norm(x, f"{p}layernorm_before", eps)
    y = _attention(n, y, f"{p}attention.attention", f"{p}attention.output.dense", heads)
    x = n.add(y, x, f"{p}attention.add")
    y = n.layer_norm(x, f"{p}layernorm_after", eps)
    y = n.dense(y, f"{p}intermediate.dense", ffn)
    if act == "gelu":
        y = n.b.add("gelu", [y], name=f"{p}intermediate.gelu", approximate="none")
    else:
        y = n.act(y, f"{p}intermediate.{act}", act)
    y = n.dense(y, f"{p}output.dense", d)
    return n.add(y, x, f"{p}output.add")


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
            size_axis=1,
            published={
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
    default = entry.input_shape[entry.size_axis]
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


# ---------------------------------------------------------------------------------------------
# MobileNet v3 (Howard et al. 2019), torchvision layout
# ---------------------------------------------------------------------------------------------


def _make_divisible(v: float, divisor: int = 8) -> int:
    """The channel rounding of the MobileNet papers' reference code (never below 90 % of v)."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


# (kernel, expanded channels, output channels, squeeze-and-excitation, activation, stride):
# Tables 1 (Large) and 2 (Small) of Howard et al. 2019, as torchvision's `_mobilenet_v3_conf`
_MOBILENET_V3_LARGE = [
    (3, 16, 16, False, "relu", 1),
    (3, 64, 24, False, "relu", 2),
    (3, 72, 24, False, "relu", 1),
    (5, 72, 40, True, "relu", 2),
    (5, 120, 40, True, "relu", 1),
    (5, 120, 40, True, "relu", 1),
    (3, 240, 80, False, "hard_swish", 2),
    (3, 200, 80, False, "hard_swish", 1),
    (3, 184, 80, False, "hard_swish", 1),
    (3, 184, 80, False, "hard_swish", 1),
    (3, 480, 112, True, "hard_swish", 1),
    (3, 672, 112, True, "hard_swish", 1),
    (5, 672, 160, True, "hard_swish", 2),
    (5, 960, 160, True, "hard_swish", 1),
    (5, 960, 160, True, "hard_swish", 1),
]
_MOBILENET_V3_SMALL = [
    (3, 16, 16, True, "relu", 2),
    (3, 72, 24, False, "relu", 2),
    (3, 88, 24, False, "relu", 1),
    (5, 96, 40, True, "hard_swish", 2),
    (5, 240, 40, True, "hard_swish", 1),
    (5, 240, 40, True, "hard_swish", 1),
    (5, 120, 48, True, "hard_swish", 1),
    (5, 144, 48, True, "hard_swish", 1),
    (5, 288, 96, True, "hard_swish", 2),
    (5, 576, 96, True, "hard_swish", 1),
    (5, 576, 96, True, "hard_swish", 1),
]


def _squeeze_excite(n: _Net, x: str, p: str, squeeze: int, act: str, gate: str) -> str:
    """torchvision's `SqueezeExcitation`: `{p}.avgpool`, `{p}.fc1` (1x1 conv with bias),
    `{p}.activation`, `{p}.fc2`, `{p}.scale_activation`, and the broadcast multiply
    `{p}.mul`."""
    c = n.channels(x)
    s = n.b.add("global_avg_pool", [x], name=f"{p}.avgpool", keepdims=True, data_layout="NCHW")
    s = n.act(n.conv(s, f"{p}.fc1", squeeze, 1, bias=True), f"{p}.activation", act)
    s = n.act(n.conv(s, f"{p}.fc2", c, 1, bias=True), f"{p}.scale_activation", gate)
    return n.b.add("mul", [x, s], name=f"{p}.mul")


def _mobilenet_v3(name: str, seed: int, size: int, blocks: list, last: int) -> Graph:
    """torchvision `mobilenet_v3_large()` / `mobilenet_v3_small()`: `features.0.{0,1,2}` (conv
    3x3 stride 2 to 16, BN, hard-swish); inverted residual i is `features.i.block.j.*` with
    j = expand 1x1 (when the expansion differs from the input), depthwise, squeeze-and-excite
    (ReLU, hard-sigmoid; squeeze = expanded / 4 rounded to 8), projection (`block.j.{0,1}`),
    `features.i.add` for the residual; last conv to 6 x the last width with hard-swish,
    `avgpool`, `flatten`, `classifier.0` (Linear to `last`), `classifier.1` (hard-swish),
    `classifier.3` (Linear to 1000), `softmax`. BN epsilon 1e-3 as torchvision's."""
    n = _Net(name, seed, bn_eps=1e-3)
    x = n.input("input", (1, 3, size, size))
    x = n.conv_bn_act(
        x, "features.0.0", "features.0.1", "features.0.2", 16, 3, 2, 1, act_op="hard_swish"
    )
    for i, (k, exp, cout, se, act, stride) in enumerate(blocks, start=1):
        p = f"features.{i}.block"
        cin = n.channels(x)
        use_res = stride == 1 and cin == cout
        y, j = x, 0
        if exp != cin:
            y = n.conv_bn_act(y, f"{p}.0.0", f"{p}.0.1", f"{p}.0.2", exp, 1, act_op=act)
            j = 1
        y = n.conv_bn_act(
            y, f"{p}.{j}.0", f"{p}.{j}.1", f"{p}.{j}.2", exp, k, stride, (k - 1) // 2,
            groups=exp, act_op=act,
        )  # fmt: skip
        if se:
            j += 1
            y = _squeeze_excite(n, y, f"{p}.{j}", _make_divisible(exp // 4), "relu", "hard_sigmoid")
        j += 1
        y = n.conv_bn_act(
            y, f"{p}.{j}.0", f"{p}.{j}.1", None, cout, 1,
            bn_gamma=_RESIDUAL_GAMMA if use_res else (0.8, 1.2),
        )  # fmt: skip
        x = n.add(x, y, f"features.{i}.add") if use_res else y
    i = len(blocks) + 1
    cin = n.channels(x)
    x = n.conv_bn_act(
        x, f"features.{i}.0", f"features.{i}.1", f"features.{i}.2", 6 * cin, 1,
        act_op="hard_swish",
    )  # fmt: skip
    y = n.b.add("global_avg_pool", [x], name="avgpool", keepdims=True, data_layout="NCHW")
    y = n.b.add("flatten", [y], name="flatten", axis=1)
    y = n.act(n.dense(y, "classifier.0", last), "classifier.1", "hard_swish")
    y = n.dense(y, "classifier.3", 1000)
    y = n.b.add("softmax", [y], name="softmax", axis=-1)
    return n.build(y, zoo=name, seed=seed, input_size=size)


def _mobilenet_v3_large(seed: int, size: int) -> Graph:
    return _mobilenet_v3("mobilenet_v3_large", seed, size, _MOBILENET_V3_LARGE, 1280)


def _mobilenet_v3_small(seed: int, size: int) -> Graph:
    return _mobilenet_v3("mobilenet_v3_small", seed, size, _MOBILENET_V3_SMALL, 1024)


# ---------------------------------------------------------------------------------------------
# EfficientNet-B0 (Tan & Le 2019), torchvision layout
# ---------------------------------------------------------------------------------------------

# (expansion, kernel, first stride, output channels, repeats): Table 1 of Tan & Le 2019
_EFFICIENTNET_B0 = [
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
]


def _efficientnet_b0(seed: int, size: int) -> Graph:
    """torchvision `efficientnet_b0()`: `features.0.{0,1,2}` (conv 3x3 stride 2 to 32, BN,
    SiLU); stage s = 1..7, block b is `features.s.b.block.j.*` with j = expand 1x1 (expansion
    6 only), depthwise, squeeze-and-excite (SiLU, sigmoid; squeeze = block input / 4),
    projection; `features.s.b.add` for the residual (stochastic depth is the identity at
    inference); `features.8.*` (1x1 to 1280, SiLU), `avgpool`, `flatten`, `classifier.1`,
    `softmax`. SiLU is written x * sigmoid(x) (`<name>.sigmoid`, `<name>`), as exporters do."""
    n = _Net("efficientnet_b0", seed, bn_eps=1e-5)
    x = n.input("input", (1, 3, size, size))
    x = n.conv_bn_act(x, "features.0.0", "features.0.1", "features.0.2", 32, 3, 2, 1, act_op="silu")
    for s, (t, k, stride0, cout, reps) in enumerate(_EFFICIENTNET_B0, start=1):
        for r in range(reps):
            p = f"features.{s}.{r}.block"
            stride = stride0 if r == 0 else 1
            cin = n.channels(x)
            hidden = cin * t
            use_res = stride == 1 and cin == cout
            y, j = x, 0
            if t != 1:
                y = n.conv_bn_act(y, f"{p}.0.0", f"{p}.0.1", f"{p}.0.2", hidden, 1, act_op="silu")
                j = 1
            y = n.conv_bn_act(
                y, f"{p}.{j}.0", f"{p}.{j}.1", f"{p}.{j}.2", hidden, k, stride, (k - 1) // 2,
                groups=hidden, act_op="silu",
            )  # fmt: skip
            y = _squeeze_excite(n, y, f"{p}.{j + 1}", max(1, cin // 4), "silu", "sigmoid")
            y = n.conv_bn_act(
                y, f"{p}.{j + 2}.0", f"{p}.{j + 2}.1", None, cout, 1,
                bn_gamma=_RESIDUAL_GAMMA if use_res else (0.8, 1.2),
            )  # fmt: skip
            x = n.add(x, y, f"features.{s}.{r}.add") if use_res else y
    x = n.conv_bn_act(x, "features.8.0", "features.8.1", "features.8.2", 1280, 1, act_op="silu")
    y = n.classifier_head(x, 1000, "classifier.1")
    return n.build(y, zoo="efficientnet_b0", seed=seed, input_size=size)


# ---------------------------------------------------------------------------------------------
# BERT encoders with embeddings (Devlin et al. 2019; Turc et al. 2019), Hugging Face naming
# ---------------------------------------------------------------------------------------------

BERT_VOCAB, BERT_MAX_POSITIONS = 30522, 512


def _bert(name: str, seed: int, seq: int, layers: int, d: int, heads: int, ffn: int) -> Graph:
    """Hugging Face `BertModel` (bert-base-uncased config: vocabulary 30,522, 512 positions,
    2 token types), no attention mask, dropout off. Input: token ids (1, seq) int64.
    `embeddings.word_embeddings` (gather of the ids), `embeddings.position_embeddings` (gather
    of positions 0..seq-1), `embeddings.token_type_embeddings` (gather of type 0 for every
    token), `embeddings.add` / `add_1`, `embeddings.LayerNorm`; `encoder.layer.i.*` as in
    `bert_base_layer`; `pooler.select` (the first token), `pooler.dense`, `pooler.activation`
    (tanh). Outputs: the last hidden states (1, seq, d) and the pooled output (1, d)."""
    if seq > BERT_MAX_POSITIONS:
        raise ModelError(
            f"zoo model '{name}': sequence length {seq} exceeds the {BERT_MAX_POSITIONS} "
            "position embeddings"
        )
    n = _Net(name, seed)
    ids = n.b.input("input_ids", (1, seq), dtype="int64")

    def table(tname: str, rows: int) -> str:
        return n._const(tname, n._normal((rows, d), 0.02))  # BERT's initializer_range

    e = n.b.add("gather", [table("embeddings.word_embeddings.weight", BERT_VOCAB), ids],
                name="embeddings.word_embeddings", axis=0)  # fmt: skip
    pos = n._const("embeddings.position_ids", np.arange(seq, dtype=np.int64))
    p = n.b.add("gather", [table("embeddings.position_embeddings.weight", BERT_MAX_POSITIONS), pos],
                name="embeddings.position_embeddings", axis=0)  # fmt: skip
    typ = n._const("embeddings.token_type_ids", np.zeros(seq, dtype=np.int64))
    t = n.b.add("gather", [table("embeddings.token_type_embeddings.weight", 2), typ],
                name="embeddings.token_type_embeddings", axis=0)  # fmt: skip
    x = n.add(n.add(e, p, "embeddings.add"), t, "embeddings.add_1")
    x = n.layer_norm(x, "embeddings.LayerNorm", 1e-12)
    for i in range(layers):
        x = _bert_layer(n, x, f"encoder.layer.{i}.", heads, ffn, 1e-12)
    first = n._const("pooler.index", np.array(0, dtype=np.int64))
    y = n.b.add("gather", [x, first], name="pooler.select", axis=1)
    y = n.act(n.dense(y, "pooler.dense", d), "pooler.activation", "tanh")
    return n.build(x, y, zoo=name, seed=seed, input_size=seq)


def _bert_base(seed: int, seq: int) -> Graph:
    return _bert("bert_base", seed, seq, 12, BERT_HIDDEN, BERT_HEADS, BERT_FFN)


def _bert_tiny(seed: int, seq: int) -> Graph:
    return _bert("bert_tiny", seed, seq, 2, 128, 2, 512)


# ---------------------------------------------------------------------------------------------
# ViT-Small/16 (Dosovitskiy et al. 2021; Touvron et al. 2021), Hugging Face naming
# ---------------------------------------------------------------------------------------------

_VIT_GRID = 14  # the position table covers 14 x 14 patches (224 / 16)


def _vit_small_16(seed: int, size: int) -> Graph:
    """ViT-S/16 (= DeiT-S: width 384, 6 heads, MLP 1536, 12 pre-LN layers, LayerNorm epsilon
    1e-6, exact GELU), Hugging Face `ViTForImageClassification` names:
    `vit.embeddings.patch_embeddings.projection` (conv 16x16 stride 16 with bias), `.flatten`,
    `.transpose`, `vit.embeddings.concat` (class token `vit.embeddings.cls_token`),
    `vit.embeddings.position_embeddings` (a gather of the table's rows) and `vit.embeddings.add`,
    `vit.encoder.layer.i.*`, `vit.layernorm`, `select` (the class token), `classifier`,
    `softmax`. The position table is always the 224x224 one (197 x 384); a smaller input uses
    the rows of its top-left patch grid (timm interpolates the table instead), so the
    parameter count does not depend on the input size."""
    d, heads, ffn = 384, 6, 1536
    g = size // 16
    if g < 1 or g > _VIT_GRID:
        raise ModelError(
            f"zoo model 'vit_small_16': input_size must lie in 16..224 (the position table "
            f"covers {_VIT_GRID}x{_VIT_GRID} patches), found {size}"
        )
    n = _Net("vit_small_16", seed)
    x = n.input("input", (1, 3, size, size))
    pe = "vit.embeddings.patch_embeddings.projection"
    x = n.conv(x, pe, d, 16, 16, 0, bias=True)
    x = n.b.add("reshape", [x], name=f"{pe}.flatten", shape=(1, d, g * g))
    x = n.b.add("transpose", [x], name=f"{pe}.transpose", perm=(0, 2, 1))
    cls = n._const("vit.embeddings.cls_token", n._normal((1, 1, d), 0.02))
    x = n.b.add("concat", [cls, x], name="vit.embeddings.concat", axis=1)
    table = n._const(
        "vit.embeddings.position_embeddings.weight", n._normal((_VIT_GRID**2 + 1, d), 0.02)
    )
    rows = [0] + [1 + r * _VIT_GRID + c for r in range(g) for c in range(g)]
    idx = n._const("vit.embeddings.position_ids", np.array(rows, dtype=np.int64))
    pos = n.b.add("gather", [table, idx], name="vit.embeddings.position_embeddings", axis=0)
    x = n.add(x, pos, "vit.embeddings.add")
    for i in range(12):
        x = _vit_layer(n, x, f"vit.encoder.layer.{i}.", heads, ffn, 1e-6, "gelu")
    x = n.layer_norm(x, "vit.layernorm", 1e-6)
    first = n._const("select.index", np.array(0, dtype=np.int64))
    y = n.b.add("gather", [x, first], name="select", axis=1)
    y = n.dense(y, "classifier", 1000)
    y = n.b.add("softmax", [y], name="softmax", axis=-1)
    return n.build(y, zoo="vit_small_16", seed=seed, input_size=size)


# ---------------------------------------------------------------------------------------------
# MobileViT-S (Mehta & Rastegari 2022), Hugging Face naming
# ---------------------------------------------------------------------------------------------


def _mobilevit_s(seed: int, size: int) -> Graph:
    """Hugging Face `MobileViTForImageClassification` with its default (apple/mobilevit-small)
    config: SiLU everywhere, BN epsilon 1e-5, LayerNorm epsilon 1e-5, 2x2 patches, 4 heads,
    MLP ratio 2, expansion 4. `mobilevit.conv_stem.{convolution,normalization,activation}`;
    MobileNet v2 layers `mobilevit.encoder.layer.{0,1}.layer.b.{expand_1x1,conv_3x3,
    reduce_1x1}.*` (+ `.add`); MobileViT layers `mobilevit.encoder.layer.{2,3,4}.*`:
    `downsampling_layer.*`, `conv_kxk.*`, `conv_1x1.convolution`, `unfold.*` (reshape /
    transpose into 4 sequences of patches), `transformer.layer.j.*` (pre-LN), `layernorm`,
    `fold.*`, `conv_projection.*`, `concat` (with the block input), `fusion.*`;
    `mobilevit.conv_1x1_exp.*` (to 640), `avgpool`, `flatten`, `classifier`, `softmax`.
    The input size must be a multiple of 64 (2x2 patches on the 1/32 map)."""
    n = _Net("mobilevit_s", seed, bn_eps=1e-5)

    def conv(x: str, p: str, cout: int, k: int, stride: int = 1, groups: int = 1,
             bn: bool = True, act: bool = True) -> str:  # fmt: skip
        y = n.conv(x, f"{p}.convolution", cout, k, stride, (k - 1) // 2, groups)
        if bn:
            y = n.bn(y, f"{p}.normalization")
        return n.act(y, f"{p}.activation", "silu") if act else y

    def inverted_residual(x: str, p: str, cout: int, stride: int) -> str:
        cin = n.channels(x)
        hidden = _make_divisible(cin * 4)
        y = conv(x, f"{p}.expand_1x1", hidden, 1)
        y = conv(y, f"{p}.conv_3x3", hidden, 3, stride, groups=hidden)
        y = conv(y, f"{p}.reduce_1x1", cout, 1, act=False)
        return n.add(x, y, f"{p}.add") if stride == 1 and cin == cout else y

    def mobilevit_layer(x: str, p: str, cout: int, hidden: int, depth: int) -> str:
        x = inverted_residual(x, f"{p}.downsampling_layer", cout, 2)
        _, c, h, w = n.b.shape(x)
        if h % 2 or w % 2:
            raise ShapeError(f"{p}: a {h}x{w} map has no whole 2x2 patches")
        y = conv(x, f"{p}.conv_kxk", c, 3)
        y = conv(y, f"{p}.conv_1x1", hidden, 1, bn=False, act=False)
        y = n.b.add(
            "reshape", [y], name=f"{p}.unfold.reshape", shape=(hidden, h // 2, 2, w // 2, 2)
        )
        y = n.b.add("transpose", [y], name=f"{p}.unfold.transpose", perm=(2, 4, 1, 3, 0))
        y = n.b.add("reshape", [y], name=f"{p}.unfold", shape=(4, h * w // 4, hidden))
        for j in range(depth):
            y = _vit_layer(n, y, f"{p}.transformer.layer.{j}.", 4, 2 * hidden, 1e-5, "silu")
        y = n.layer_norm(y, f"{p}.layernorm", 1e-5)
        y = n.b.add("reshape", [y], name=f"{p}.fold.reshape", shape=(2, 2, h // 2, w // 2, hidden))
        y = n.b.add("transpose", [y], name=f"{p}.fold.transpose", perm=(4, 2, 0, 3, 1))
        y = n.b.add("reshape", [y], name=f"{p}.fold", shape=(1, hidden, h, w))
        y = conv(y, f"{p}.conv_projection", c, 1)
        y = n.concat([x, y], f"{p}.concat")
        return conv(y, f"{p}.fusion", c, 3)

    x = n.input("input", (1, 3, size, size))
    x = conv(x, "mobilevit.conv_stem", 16, 3, 2)
    x = inverted_residual(x, "mobilevit.encoder.layer.0.layer.0", 32, 1)
    for b, stride in enumerate((2, 1, 1)):
        x = inverted_residual(x, f"mobilevit.encoder.layer.1.layer.{b}", 64, stride)
    x = mobilevit_layer(x, "mobilevit.encoder.layer.2", 96, 144, 2)
    x = mobilevit_layer(x, "mobilevit.encoder.layer.3", 128, 192, 4)
    x = mobilevit_layer(x, "mobilevit.encoder.layer.4", 160, 240, 3)
    x = conv(x, "mobilevit.conv_1x1_exp", 640, 1)
    y = n.classifier_head(x, 1000, "classifier")
    return n.build(y, zoo="mobilevit_s", seed=seed, input_size=size)


# ---------------------------------------------------------------------------------------------
# Issue 14's additions: mobile CNNs of 2019 and transformers (published figures per entry;
# docs/zoo.md lists them with their sources)
# ---------------------------------------------------------------------------------------------

_KERAS_APPS = "keras.applications.{}(weights=None), trainable parameters"
_HF = "Hugging Face transformers {} with random weights, sum of parameter numel"

for _entry, _builder in [
    (
        ZooEntry(
            "mobilenet_v3_large",
            "MobileNet v3-Large 1.0, 224x224 (Howard et al. 2019), torchvision layout",
            (1, 3, 224, 224),
            {
                "params": 5.4e6,
                "macs": 219e6,
                "source": "Howard et al. 2019, 'Searching for MobileNetV3', Table 3 "
                "(MobileNetV3-Large 1.0: 219 M MAdds, 5.4 M params); torchvision: 5.5 M "
                "params, 0.22 GFLOPS",
                "params_exact": 5_483_032,
                "params_exact_source": _KERAS_APPS.format("MobileNetV3Large")
                + " (= torchvision mobilenet_v3_large)",
            },
            min_input_size=32,
        ),
        _mobilenet_v3_large,
    ),
    (
        ZooEntry(
            "mobilenet_v3_small",
            "MobileNet v3-Small 1.0, 224x224 (Howard et al. 2019), torchvision layout",
            (1, 3, 224, 224),
            {
                "params": 2.5e6,
                "macs": 56e6,
                "source": "Howard et al. 2019, 'Searching for MobileNetV3', Table 3 "
                "(MobileNetV3-Small 1.0: 56 M MAdds, 2.5 M params); torchvision: 2.5 M "
                "params, 0.06 GFLOPS",
                "params_exact": 2_542_856,
                "params_exact_source": _KERAS_APPS.format("MobileNetV3Small")
                + " (= torchvision mobilenet_v3_small)",
            },
            min_input_size=32,
        ),
        _mobilenet_v3_small,
    ),
    (
        ZooEntry(
            "efficientnet_b0",
            "EfficientNet-B0, 224x224 (Tan & Le 2019), torchvision layout, SiLU as x*sigmoid(x)",
            (1, 3, 224, 224),
            {
                "params": 5.3e6,
                "macs": 0.39e9,
                "source": "Tan & Le 2019, 'EfficientNet', Table 2 (EfficientNet-B0: 5.3 M "
                "params, 0.39 B FLOPS, i.e. multiply-adds); torchvision: 5.3 M params, "
                "0.39 GFLOPS",
                "params_exact": 5_288_548,
                "params_exact_source": _KERAS_APPS.format("EfficientNetB0")
                + " (= torchvision efficientnet_b0)",
            },
            min_input_size=32,
        ),
        _efficientnet_b0,
    ),
    (
        ZooEntry(
            "bert_base",
            "BERT-base encoder with embeddings and pooler (Devlin et al. 2019), token ids "
            "(1, 128); input_size sets the sequence length (at most 512)",
            (1, 128),
            {
                "params": 110e6,
                "macs": 11.17e9,
                "source": "Devlin et al. 2019, 'BERT', section 3 (BERT-base: L=12, H=768, "
                "A=12, total parameters 110 M); MACs computed here at sequence 128: 12 x "
                "931,135,488 (one layer, see bert_base_layer) + 768^2 pooler = 11,174,215,680",
                "params_exact": 109_482_240,
                "params_exact_source": _HF.format("BertModel(BertConfig())"),
            },
        ),
        _bert_base,
    ),
    (
        ZooEntry(
            "bert_tiny",
            "BERT-Tiny (L=2, H=128, A=2, FFN 512; Turc et al. 2019) with bert-base's "
            "vocabulary, token ids (1, 128); the small transformer for tests",
            (1, 128),
            {
                "params": 4.4e6,
                "macs": 58.7e6,
                "source": "Turc et al. 2019, 'Well-Read Students Learn Better', the 24 "
                "BERT miniatures (google-research/bert README: BERT-Tiny L=2/H=128, 4.4 M "
                "params); MACs computed here at sequence 128",
                "params_exact": 4_385_920,
                "params_exact_source": _HF.format(
                    "BertModel(BertConfig(hidden_size=128, num_hidden_layers=2, "
                    "num_attention_heads=2, intermediate_size=512))"
                ),
            },
        ),
        _bert_tiny,
    ),
    (
        ZooEntry(
            "vit_small_16",
            "ViT-Small/16 (= DeiT-S; Dosovitskiy et al. 2021, Touvron et al. 2021), 224x224, "
            "Hugging Face layout",
            (1, 3, 224, 224),
            {
                "params": 22e6,
                "macs": 4.6e9,
                "source": "Touvron et al. 2021, 'Training data-efficient image transformers', "
                "Table 1 (DeiT-S = ViT-S/16: 22 M params, 4.6 GFLOPs counted as "
                "multiply-adds)",
                "params_exact": 22_050_664,
                "params_exact_source": _HF.format(
                    "ViTForImageClassification(ViTConfig(hidden_size=384, "
                    "num_attention_heads=6, intermediate_size=1536, num_labels=1000))"
                )
                + " (= timm vit_small_patch16_224)",
            },
            min_input_size=16,
        ),
        _vit_small_16,
    ),
    (
        ZooEntry(
            "mobilevit_s",
            "MobileViT-S, 256x256 (Mehta & Rastegari 2022), Hugging Face layout; input_size "
            "a multiple of 64",
            (1, 3, 256, 256),
            {
                "params": 5.6e6,
                "macs": 2.0e9,
                "source": "Mehta & Rastegari 2022, 'MobileViT', Table 1 / Figure 6 "
                "(MobileViT-S: 5.6 M params at 256x256); 2.0 GFLOPs (multiply-adds) as "
                "Mehta & Rastegari 2023, 'Separable Self-attention for Mobile Vision "
                "Transformers' (MobileViTv2), Table 1 quote for MobileViTv1-S",
                "params_exact": 5_578_632,
                "params_exact_source": _HF.format(
                    "MobileViTForImageClassification(MobileViTConfig(num_labels=1000))"
                ),
            },
            min_input_size=64,
        ),
        _mobilevit_s,
    ),
]:
    MODELS[_entry.name] = _entry
    _BUILDERS[_entry.name] = _builder


def summary(name: str, input_size: int | None = None) -> tuple[int, int, tuple[int, ...]]:
    """(parameters, MACs, input shape) of zoo model `name`, from a build without weights: as
    fast for BERT-base as for MobileNet, for listings such as `accelsim models`."""
    with _shapes_only():
        g = build(name, input_size=input_size)
    return g.params(), g.macs(), g.tensors[g.inputs[0]].shape
