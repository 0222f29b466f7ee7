"""One-layer graphs the kernel tests build: a conv2d (k x k, stride 1, pad k // 2) or a dense
layer named "layer" over an input "x", with the weights and bias given."""

from __future__ import annotations

import numpy as np

from accelsim.model.builder import GraphBuilder


def one_layer(name: str, shape, w: np.ndarray, bias: np.ndarray, dense: bool = False, **attrs):
    """The graph `name`: input `x` of `shape`, then the layer (`attrs`: e.g. a fused clamp
    `act_min` / `act_max`)."""
    b = GraphBuilder(name)
    x = b.input("x", shape)
    args = [x, b.const("w", w.astype(np.float32)), b.const("b", bias.astype(np.float32))]
    if dense:
        y = b.add("dense", args, name="layer", **attrs)
    else:
        k = w.shape[-1]
        pads = (k // 2,) * 4
        y = b.add(
            "conv2d",
            args,
            name="layer",
            strides=(1, 1),
            pads=pads,
            dilations=(1, 1),
            groups=1,
            **attrs,
        )
    b.output(y)
    return b.build()
