"""An IR float `Graph` as a `torch.nn.Module`, and trained parameters back into a `Graph`.

`GraphModule(graph)` is one generic interpreter over the graph's nodes (in the graph's
topological order) that computes the same function as the float reference executor
(`accelsim.ref.executor.run`), but in torch float32, for any batch size, with gradients:

* every float constant of the graph (conv / dense weights and biases, LayerNorm gamma and beta,
  scalar operands) is a trainable `nn.Parameter` (in `module.consts`, keyed by a sanitized
  form of the constant's name; `module.const(name)` looks one up by its graph name);
* every `batch_norm` node is an `nn.BatchNorm2d` (`nn.BatchNorm1d` for 2-D / 3-D inputs)
  in `module.bns`, initialized with the graph's gamma, beta, running mean, running variance and
  epsilon: in `train()` mode it normalizes with batch statistics and updates the running ones
  (momentum `bn_momentum`), in `eval()` mode it is the inference batch norm the executor runs;
* `to_graph(module)` writes the current parameters and BN statistics back into a new `Graph`
  with the same nodes and tensors (only constant values change).

Subclasses (quantization-aware training) hook in through `on_value` (called on every graph input
and every node output) and `eval_node` (one node), and may skip nodes (`skip`).

Supported operators: conv2d (groups, strides, dilations, asymmetric pads, NCHW or NHWC),
dense, matmul, add, sub, mul, concat, max_pool, avg_pool, global_avg_pool, mean, relu, relu6,
clip, reshape, flatten, squeeze, softmax, pad, batch_norm, layer_norm, gelu, transpose, and the
fused `act_min` / `act_max` clamp on any of them. Quantized graphs (quantize / dequantize, integer
tensors) are not: train the float graph, then quantize.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from accelsim.core.errors import ModelError
from accelsim.model.graph import Graph, Node
from accelsim.model.ops import activation_bounds, spatial_axes


def _key(name: str) -> str:
    """A ParameterDict / ModuleDict key for a graph name ('.' and other characters are not
    allowed there); distinct names stay distinct through the hex escape."""
    return "k_" + re.sub(r"[^0-9A-Za-z_]", lambda m: f"_{ord(m.group()):x}_", name)


def batch_norm_nodes(graph: Graph) -> list[Node]:
    return [n for n in graph.nodes if n.op == "batch_norm"]


class GraphModule(nn.Module):
    """See the module docstring."""

    def __init__(self, graph: Graph, bn_momentum: float = 0.1) -> None:
        super().__init__()
        if graph.is_quantized or any(n.op in ("quantize", "dequantize") for n in graph.nodes):
            raise ModelError(
                f"model '{graph.name}': GraphModule takes a float graph; quantize after training"
            )
        self.graph = graph
        self.nodes: tuple[Node, ...] = tuple(graph.nodes)
        self.consts = nn.ParameterDict()
        self.bns = nn.ModuleDict()
        self._const_key: dict[str, str] = {}
        self.bn_of: dict[str, str] = {}  # batch_norm node name -> ModuleDict key
        self.skip: set[str] = set()  # node names a subclass computes elsewhere
        # node name -> the tensor names its results are stored as (a subclass that computes a
        # conv and the batch norm after it in one step stores the result as the BN's output)
        self.out_names: dict[str, tuple[str, ...]] = {}
        bn_consts: set[str] = set()
        for node in batch_norm_nodes(graph):
            bn_consts.update(t for t in node.inputs[1:5] if t)
        for node in batch_norm_nodes(graph):
            if not all(graph.is_constant(t) for t in node.inputs[1:5]):
                raise ModelError(
                    f"node '{node.name}' (batch_norm): gamma, beta, mean and "
                    f"variance must be constants"
                )
            gamma, beta, mean, var = (
                np.array(graph.constants[t], np.float32) for t in node.inputs[1:5]
            )
            rank = len(graph.tensors[node.inputs[0]].shape)
            cls = nn.BatchNorm2d if rank == 4 else nn.BatchNorm1d
            bn = cls(len(gamma), eps=float(node.attr("epsilon", 1e-5)), momentum=bn_momentum)
            with torch.no_grad():
                bn.weight.copy_(torch.from_numpy(gamma))
                bn.bias.copy_(torch.from_numpy(beta))
                bn.running_mean.copy_(torch.from_numpy(mean))
                bn.running_var.copy_(torch.from_numpy(var))
            key = _key(node.name)
            self.bns[key] = bn
            self.bn_of[node.name] = key
        for name, value in graph.constants.items():
            if name in bn_consts and not any(
                name in n.inputs for n in graph.nodes if n.op != "batch_norm"
            ):
                continue
            arr = np.asarray(value)
            if not np.issubdtype(arr.dtype, np.floating):
                raise ModelError(
                    f"constant '{name}': GraphModule takes float constants, found {arr.dtype}"
                )
            key = _key(name)
            self.consts[key] = nn.Parameter(torch.tensor(arr.astype(np.float32)))
            self._const_key[name] = key
        self._input_batch = {
            t: graph.tensors[t].shape[0] if graph.tensors[t].shape else None for t in graph.inputs
        }

    # -- lookups ---------------------------------------------------------------------------
    def const(self, name: str) -> torch.Tensor:
        return self.consts[self._const_key[name]]

    def bn(self, node_name: str) -> nn.modules.batchnorm._BatchNorm:
        return self.bns[self.bn_of[node_name]]

    def value(self, env: Mapping[str, torch.Tensor], name: str) -> torch.Tensor | None:
        if not name:
            return None
        if name in env:
            return env[name]
        key = self._const_key.get(name)
        return None if key is None else self.consts[key]  # None: held by a BN module

    # -- hooks -----------------------------------------------------------------------------
    def on_value(self, name: str, value: torch.Tensor) -> torch.Tensor:
        """Called on every graph input and node output; identity here."""
        return value

    # -- forward ---------------------------------------------------------------------------
    def forward(self, *inputs: torch.Tensor, outputs: Sequence[str] | None = None):
        """Run the graph. Returns the graph outputs (one tensor for a one-output graph), or the
        tensors named in `outputs` (a tuple, or one tensor when one name is given)."""
        g = self.graph
        if len(inputs) != len(g.inputs):
            raise ModelError(f"model '{g.name}' takes {len(g.inputs)} input(s), got {len(inputs)}")
        env: dict[str, torch.Tensor] = {}
        for name, x in zip(g.inputs, inputs):
            env[name] = self.on_value(name, x)
        wanted = tuple(outputs) if outputs is not None else g.outputs
        for node in self.nodes:
            if node.name in self.skip:
                continue
            results = self.eval_node(node, env)
            for t, r in zip(self.out_names.get(node.name, node.outputs), results):
                env[t] = self.on_value(t, r)
        res = tuple(env[t] for t in wanted)
        return res[0] if len(res) == 1 else res

    def _batch(self, env: Mapping[str, torch.Tensor]) -> int:
        return next(iter(env[t] for t in self.graph.inputs)).shape[0]

    def eval_node(self, node: Node, env: Mapping[str, torch.Tensor]) -> list[torch.Tensor]:
        fn = getattr(self, f"_op_{node.op}", None)
        if fn is None:
            raise ModelError(f"node '{node.name}': op '{node.op}' has no torch implementation")
        args = [self.value(env, t) for t in node.inputs]
        y = fn(node, args, env)
        return [apply_act(node, y)]

    # -- operators -------------------------------------------------------------------------
    def _op_conv2d(self, node, args, env):
        return conv2d(node, args[0], args[1], args[2] if len(args) > 2 else None)

    def _op_dense(self, node, args, env):
        return dense(
            node, args[0], args[1], args[2] if len(args) > 2 else None, self._out_shape(node, env)
        )

    def _out_shape(self, node: Node, env) -> tuple[int, ...]:
        shape = list(self.graph.tensors[node.outputs[0]].shape)
        g_batch = next(iter(self._input_batch.values()))
        if shape and g_batch is not None and shape[0] == g_batch:
            shape[0] = -1
        return tuple(shape)

    def _op_matmul(self, node, args, env):
        a, b = args
        if node.attr("transpose_a", False):
            a = a.transpose(-1, -2)
        if node.attr("transpose_b", False):
            b = b.transpose(-1, -2)
        return torch.matmul(a, b)

    def _op_add(self, node, args, env):
        return args[0] + args[1]

    def _op_sub(self, node, args, env):
        return args[0] - args[1]

    def _op_mul(self, node, args, env):
        return args[0] * args[1]

    def _op_concat(self, node, args, env):
        return torch.cat(args, dim=node.attr("axis"))

    def _op_max_pool(self, node, args, env):
        return pool(node, args[0], "max")

    def _op_avg_pool(self, node, args, env):
        return pool(node, args[0], "avg")

    def _op_global_avg_pool(self, node, args, env):
        _, ha, wa = spatial_axes(node.attr("data_layout", "NCHW"))
        y = args[0].mean(dim=(ha, wa), keepdim=True)
        if not node.attr("keepdims", True):
            y = y.flatten(1)
        return y

    def _op_mean(self, node, args, env):
        return args[0].mean(dim=tuple(node.attr("axes")), keepdim=node.attr("keepdims", True))

    def _op_relu(self, node, args, env):
        return torch.relu(args[0])

    def _op_relu6(self, node, args, env):
        return torch.clamp(args[0], 0.0, 6.0)

    def _op_clip(self, node, args, env):
        return torch.clamp(args[0], node.attr("min"), node.attr("max"))

    def _op_reshape(self, node, args, env):
        x = args[0]
        target = list(node.attr("shape"))
        in_shape = self.graph.tensors[node.inputs[0]].shape
        for i, d in enumerate(target):
            if d == 0 and node.attr("allowzero", 0) == 0:
                target[i] = x.shape[i]
        # a static batch dimension follows the actual batch
        if target and in_shape and target[0] == in_shape[0] and x.shape[0] != in_shape[0]:
            target[0] = x.shape[0]
        return x.reshape(target)

    def _op_flatten(self, node, args, env):
        x = args[0]
        axis = node.attr("axis", 1) % (x.dim() + 1) if x.dim() else 0
        lead = int(np.prod(x.shape[:axis])) if axis else 1
        return x.reshape(lead, -1)

    def _op_squeeze(self, node, args, env):
        x = args[0]
        axes = node.attr("axes")
        if axes is None:
            return x.reshape(self._out_shape(node, env))
        for a in sorted({a % x.dim() for a in axes}, reverse=True):
            x = x.squeeze(a)
        return x

    def _op_softmax(self, node, args, env):
        return torch.softmax(args[0] * node.attr("beta", 1.0), dim=node.attr("axis", -1))

    def _op_pad(self, node, args, env):
        pads = node.attr("pads")
        flat = []
        for before, after in reversed(pads):
            flat += [int(before), int(after)]
        return F.pad(args[0], flat, value=float(node.attr("value", 0.0)))

    def _op_layer_norm(self, node, args, env):
        x, gamma, beta = args[0], args[1], args[2] if len(args) > 2 else None
        axis = node.attr("axis", -1)
        mu = x.mean(dim=axis, keepdim=True)
        var = ((x - mu) ** 2).mean(dim=axis, keepdim=True)
        y = (x - mu) / torch.sqrt(var + node.attr("epsilon", 1e-5)) * gamma
        return y + beta if beta is not None else y

    def _op_gelu(self, node, args, env):
        approx = "tanh" if node.attr("approximate", "none") == "tanh" else "none"
        return F.gelu(args[0], approximate=approx)

    def _op_transpose(self, node, args, env):
        return args[0].permute(*node.attr("perm"))

    def _op_batch_norm(self, node, args, env):
        x = args[0]
        bn = self.bn(node.name)
        layout = node.attr("data_layout", "NCHW")
        if x.dim() == 4 and layout == "NHWC":
            return bn(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return bn(x)  # (N, C, H, W), (N, C) or (N, C, L): channels on axis 1


# ---------------------------------------------------------------------------------------------
# Functional forms (shared with the QAT module)
# ---------------------------------------------------------------------------------------------


def apply_act(node: Node, y: torch.Tensor) -> torch.Tensor:
    lo, hi = activation_bounds(node.attrs)
    if math.isfinite(lo) or math.isfinite(hi):
        y = torch.clamp(
            y, None if not math.isfinite(lo) else lo, None if not math.isfinite(hi) else hi
        )
    return y


def _to_nchw(x: torch.Tensor, layout: str) -> torch.Tensor:
    return x if layout == "NCHW" else x.permute(0, 3, 1, 2)


def _from_nchw(x: torch.Tensor, layout: str) -> torch.Tensor:
    return x if layout == "NCHW" else x.permute(0, 2, 3, 1)


def conv2d(
    node: Node,
    x: torch.Tensor,
    w: torch.Tensor,
    b: torch.Tensor | None,
    channel_scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """conv2d of the node (OIHW weights). `channel_scale` multiplies the output per channel
    before the bias is added (QAT's batch-norm correction)."""
    layout = node.attr("data_layout", "NCHW")
    x = _to_nchw(x, layout)
    pt, pl, pb, pr = node.attr("pads", (0, 0, 0, 0))
    padding: tuple[int, int] | int = 0
    if pt == pb and pl == pr:
        padding = (int(pt), int(pl))
    else:
        x = F.pad(x, (int(pl), int(pr), int(pt), int(pb)))
    y = F.conv2d(
        x,
        w,
        None,
        tuple(node.attr("strides", (1, 1))),
        padding,
        tuple(node.attr("dilations", (1, 1))),
        int(node.attr("groups", 1)),
    )
    if channel_scale is not None:
        y = y * channel_scale.reshape(1, -1, 1, 1)
    if b is not None:
        y = y + b.reshape(1, -1, 1, 1)
    return _from_nchw(y, layout)


def dense(
    node: Node,
    x: torch.Tensor,
    w: torch.Tensor,
    b: torch.Tensor | None,
    out_shape: tuple[int, ...] | None = None,
    channel_scale: torch.Tensor | None = None,
) -> torch.Tensor:
    reshaped = x.shape[-1] != w.shape[1]
    if reshaped:
        x = x.reshape(-1, w.shape[1])
    y = x @ w.t()
    if channel_scale is not None:
        y = y * channel_scale
    if b is not None:
        y = y + b
    if reshaped and out_shape is not None:
        y = y.reshape(out_shape)
    return y


def pool(node: Node, x: torch.Tensor, kind: str) -> torch.Tensor:
    """max / avg pooling with the executor's padding rules (asymmetric pads, ceil_mode,
    count_include_pad)."""
    layout = node.attr("data_layout", "NCHW")
    x = _to_nchw(x, layout)
    kh, kw = node.attr("kernel")
    sh, sw = node.attr("strides", (1, 1))
    pt, pl, pb, pr = node.attr("pads", (0, 0, 0, 0))
    h, w_ = x.shape[2], x.shape[3]
    if node.attr("ceil_mode", False):
        oh = -(-(h + pt + pb - kh) // sh) + 1
        ow = -(-(w_ + pl + pr - kw) // sw) + 1
        pb = max(pb, (oh - 1) * sh + kh - h - pt)
        pr = max(pr, (ow - 1) * sw + kw - w_ - pl)
    if kind == "max":
        xp = F.pad(x, (pl, pr, pt, pb), value=-math.inf) if (pt or pl or pb or pr) else x
        y = F.max_pool2d(xp, (kh, kw), (sh, sw))
    else:
        xp = F.pad(x, (pl, pr, pt, pb)) if (pt or pl or pb or pr) else x
        y = F.avg_pool2d(xp, (kh, kw), (sh, sw))
        if not node.attr("count_include_pad", False) and (pt or pl or pb or pr):
            ones = F.pad(torch.ones(1, 1, h, w_, dtype=x.dtype), (pl, pr, pt, pb))
            counts = F.avg_pool2d(ones, (kh, kw), (sh, sw)) * (kh * kw)
            y = y * (kh * kw) / counts
    return _from_nchw(y, layout)


# ---------------------------------------------------------------------------------------------
# Back into a Graph
# ---------------------------------------------------------------------------------------------


def to_graph(module: GraphModule, name: str | None = None) -> Graph:
    """A new `Graph` with the module's current parameters and BN statistics as constants."""
    g = module.graph
    constants = dict(g.constants)
    with torch.no_grad():
        for cname, key in module._const_key.items():
            v = (
                module.consts[key]
                .detach()
                .cpu()
                .numpy()
                .astype(np.float32)
                .reshape(g.tensors[cname].shape)
            )
            v.setflags(write=False)
            constants[cname] = v
        for node in batch_norm_nodes(g):
            bn = module.bn(node.name)
            for t, v in zip(
                node.inputs[1:5], (bn.weight, bn.bias, bn.running_mean, bn.running_var)
            ):
                arr = v.detach().cpu().numpy().astype(np.float32).copy()
                arr.setflags(write=False)
                constants[t] = arr
    return g.replace(constants=constants, name=name or g.name)
