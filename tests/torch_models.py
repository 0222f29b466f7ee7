"""Small random-weight PyTorch networks of the families issue 14 names, exported to ONNX with
`torch.onnx.export`, for test_onnx_ops.py.

Each ends in an operator ONNX Runtime's quantizer quantizes (a 1x1 convolution or a linear
layer), so the QDQ models' outputs are integers whose difference can be counted in steps.
Opset 13 exports the decomposed forms (layer norm as ReduceMean / Sub / Pow / Sqrt / Div,
hard-swish as HardSigmoid * x), opset 17 the operators.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

VOCAB = 30
SEQ = 6


class MobileNetV3Block(nn.Module):
    """Expand + hard-swish, depthwise, squeeze-and-excitation with hard-sigmoid (broadcast
    Mul), the x * relu6(x + 3) / 6 form of hard-swish as exporters write it, project."""

    def __init__(self) -> None:
        super().__init__()
        self.expand = nn.Conv2d(4, 8, 1)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.se1, self.se2 = nn.Conv2d(8, 4, 1), nn.Conv2d(4, 8, 1)
        self.project = nn.Conv2d(8, 4, 1)

    def forward(self, x):
        y = self.dw(F.hardswish(self.expand(x)))
        s = F.hardsigmoid(self.se2(F.relu(self.se1(F.adaptive_avg_pool2d(y, 1)))))
        y = y * s
        return self.project(y * F.relu6(y + 3) / 6)


class EfficientNetBlock(nn.Module):
    """MBConv: expand + SiLU, dilated depthwise + SiLU, squeeze-and-excitation with sigmoid,
    tanh, project."""

    def __init__(self) -> None:
        super().__init__()
        self.expand = nn.Conv2d(4, 8, 1)
        self.dw = nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=8)
        self.se1, self.se2 = nn.Conv2d(8, 4, 1), nn.Conv2d(4, 8, 1)
        self.project = nn.Conv2d(8, 4, 1)

    def forward(self, x):
        y = F.silu(self.dw(F.silu(self.expand(x))))
        s = torch.sigmoid(self.se2(F.silu(self.se1(y.mean((2, 3), keepdim=True)))))
        return self.project(torch.tanh(y * s))


class ShuffleNetBlock(nn.Module):
    """Grouped 1x1, channel split (Slice), concat, channel shuffle (Reshape-Transpose-
    Reshape), resize (bilinear, nearest), pad (reflect, edge), pixel shuffle (DepthToSpace),
    a strided slice."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 1, groups=2)
        self.out = nn.Conv2d(2, 4, 1)

    def forward(self, x):
        a, b = self.conv(x).chunk(2, dim=1)
        z = torch.cat([a, F.relu(b)], 1)
        n, c, h, w = z.shape
        z = z.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)
        up = F.interpolate(z, scale_factor=2, mode="bilinear", align_corners=False)
        near = F.interpolate(z, scale_factor=2, mode="nearest")
        return (
            up,
            near,
            F.pad(z, (1, 1, 2, 2), mode="reflect"),
            F.pad(z, (1, 1, 2, 2), mode="replicate"),
            self.out(F.pixel_shuffle(z, 2)),
            z[:, :, 1:5:2, :],
        )


class TinyBert(nn.Module):
    """Token embeddings (Gather on a run-time index input) plus a position embedding, two
    post-norm encoder layers with an attention mask (added in the first, selected by Where in
    the second), erf GELU and tanh GELU."""

    def __init__(self, dim: int = 16, heads: int = 2) -> None:
        super().__init__()
        self.heads, self.dim = heads, dim
        self.emb = nn.Embedding(VOCAB, dim)
        self.pos = nn.Parameter(torch.randn(1, SEQ, dim))
        self.ln0 = nn.LayerNorm(dim)
        self.layers = nn.ModuleList(
            nn.ModuleDict(
                {
                    "q": nn.Linear(dim, dim),
                    "k": nn.Linear(dim, dim),
                    "v": nn.Linear(dim, dim),
                    "o": nn.Linear(dim, dim),
                    "ln1": nn.LayerNorm(dim),
                    "f1": nn.Linear(dim, 2 * dim),
                    "f2": nn.Linear(2 * dim, dim),
                    "ln2": nn.LayerNorm(dim),
                }
            )
            for _ in range(2)
        )
        self.head = nn.Linear(dim, 4)

    def forward(self, ids, mask):
        x = self.ln0(self.emb(ids) + self.pos)
        add_mask = (1.0 - mask[:, None, None, :].float()) * -10000.0
        hd = self.dim // self.heads
        for i, p in enumerate(self.layers):

            def split(t):
                return t.view(1, SEQ, self.heads, hd).transpose(1, 2)

            q, k, v = split(p["q"](x)), split(p["k"](x)), split(p["v"](x))
            scores = q @ k.transpose(-1, -2) / hd**0.5
            if i == 0:  # an additive mask
                att = (scores + add_mask).softmax(-1)
            else:  # a selecting one (Equal + Where)
                att = scores.masked_fill(mask[:, None, None, :] == 0, -10000.0).softmax(-1)
            y = (att @ v).transpose(1, 2).reshape(1, SEQ, self.dim)
            x = p["ln1"](x + p["o"](y))
            act = F.gelu(p["f1"](x), approximate="tanh" if i else "none")
            x = p["ln2"](x + p["f2"](act))
        return self.head(x[:, 0]), self.head(x)  # the first token's state, and every token's


class TinyViT(nn.Module):
    """Patch embedding, a class token (Expand + Concat), a position embedding, layer norm,
    the class token's state (Gather) and GatherElements."""

    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, dim, 4, 4)
        self.cls = nn.Parameter(torch.randn(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, 5, dim))
        self.ln = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 4)
        self.register_buffer("index", torch.tensor([[[0] * dim, [2] * dim]]))

    def forward(self, x):
        t = self.patch(x).flatten(2).transpose(1, 2)
        t = self.ln(torch.cat([self.cls.expand(1, -1, -1), t], 1) + self.pos)
        return self.head(t[:, 0]), self.head(torch.gather(t, 1, self.index))


FAMILIES = {
    "mobilenet_v3_block": (MobileNetV3Block, {"x": (1, 4, 8, 8)}),
    "efficientnet_block": (EfficientNetBlock, {"x": (1, 4, 8, 8)}),
    "shufflenet_block": (ShuffleNetBlock, {"x": (1, 4, 4, 4)}),
    "tiny_bert": (TinyBert, {"ids": (1, SEQ), "mask": (1, SEQ)}),
    "tiny_vit": (TinyViT, {"x": (1, 3, 8, 8)}),
}
INT_INPUTS = {"ids": VOCAB, "mask": 2}  # integer inputs and their value bound


def sample(name: str, shape, rng: np.random.Generator) -> np.ndarray:
    """Token ids, a 0/1 mask (the last third padded), or standard-normal data."""
    if name == "mask":
        m = np.ones(shape, np.int64)
        m[..., -(shape[-1] // 3) :] = 0
        return m
    if name in INT_INPUTS:
        return rng.integers(0, INT_INPUTS[name], shape).astype(np.int64)
    return rng.standard_normal(shape).astype(np.float32)


def export(name: str, opset: int, seed: int = 0) -> bytes:
    """The family's network with seeded random weights, as an ONNX model."""
    torch.manual_seed(seed)
    cls, inputs = FAMILIES[name]
    model = cls().eval()
    rng = np.random.default_rng(seed)
    args = tuple(torch.from_numpy(sample(k, s, rng)) for k, s in inputs.items())
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, args, f, opset_version=opset, dynamo=False, input_names=list(inputs)
        )
    return f.getvalue()
