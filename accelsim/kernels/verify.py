"""Run every generated kernel of a graph on its target and compare it, element by element, with
the reference executor's tensor for that layer (inputs are the reference executor's values).

Where a kernel runs is the target's `codegen.emulator.kind`: this machine through the TVM
runtime ("native"), qemu-aarch64, or qemu-hexagon; the table below maps each to a runner, which
takes every (layer, kernel) of the graph at once (the qemu runners run them in one process).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from accelsim.core.errors import AccelsimError
from accelsim.core.precision import Precision
from accelsim.core.target import Target
from accelsim.model.graph import Graph


@dataclass(frozen=True)
class LayerCheck:
    name: str
    op: str
    mismatches: int
    elements: int


def _native(items, values, target) -> list[np.ndarray]:
    from accelsim.kernels import host

    return [host.run_layer(layer, kernel, values) for layer, kernel in items]


# inputs packed for one emulated process at most (a whole model at 32x32 is far below)
_BATCH_BYTES = 64 << 20


def _qemu(arch: str):
    def run(items, values, target) -> list[np.ndarray]:
        """All layers in as few qemu processes as the batch size allows (emulate.run_batch):
        building the harness and starting qemu once per layer cost more than the kernels."""
        from accelsim.kernels import emulate

        got: list[np.ndarray] = []
        batch: list[tuple] = []
        size = 0

        def flush():
            calls = [
                emulate.KernelCall(k.obj_path, k.symbol, tuple(k.args), data, (k.args[-1].name,))
                for _, k, data in batch
            ]
            outs = emulate.run_batch(
                arch, calls, cpu=target.codegen.emulator.cpu, tasks=target.hardware_threads
            )
            got.extend(
                layer.unpack_output(o[k.args[-1].name]) for (layer, k, _), o in zip(batch, outs)
            )
            batch.clear()

        for layer, kernel in items:
            data = layer.pack_inputs(values)
            nbytes = sum(np.asarray(v).nbytes for v in data.values())
            if batch and size + nbytes > _BATCH_BYTES:
                flush()
                size = 0
            batch.append((layer, kernel, data))
            size += nbytes
        if batch:
            flush()
        return got

    return run


# float16 verification (kernels: accelsim.lower.ops, "Float16 graphs"). The reference rounds the
# float64 value s of each element once to float16: |ref - s| <= u16 |s|. A kernel computes s with
# rounded operations in `arith.dtype` (unit roundoff u: 2^-11 for float16, 2^-24 for float32),
# the j-th erring by at most u |c_j|, c_j its exact result. Modelling these errors as mean-zero
# random variables, the martingale of the sequential accumulation gives by Azuma's inequality
# |kernel - s| <= lambda u sqrt(sum_j c_j^2), except with probability 2 exp(-lambda^2 / 2) per
# element (Ipsen & Zhou, "Probabilistic error analysis for inner products", SIAM J. Matrix Anal.
# Appl. 2020, arXiv:1906.10465; Higham & Mary, SIAM J. Sci. Comput. 41(5), 2019); lambda = 8
# keeps a false alarm below 3e-7 over 1e7 elements. For conv2d / dense / depthwise the c_j are
# the exact partial sums in the kernel's reduction order (its schedule), every product (FMLA
# fuses them: an upper bound) and the bias add (first order in u: the computed partial sums are
# within the bound of the exact ones). Other layers (pools, elementwise) bound every c_j by
# A = the reference kernel on |inputs| and count `arith.roundings` of them: sqrt(n) A. The final
# rounding of a float32 result to float16 adds u16 |s|, and gradual underflow at most half the
# smallest float16 subnormal (2^-25) per rounding. The tolerance is the sum.
FP16_LAMBDA = 8.0
_UNIT_ROUNDOFF = {"float16": 2.0**-11, "float32": 2.0**-24}
_FP16_UNDERFLOW = 2.0**-25
_CHUNK_TERMS = 1 << 22  # partial sums held at once (float64): 32 MiB


def _plain_call(graph: Graph, node, values, fn=np.abs):
    from accelsim.ref.executor import KernelCall, find_kernel

    plain = node.with_attrs(act_min=None, act_max=None)
    args = [fn(np.asarray(values[t], np.float64)) if t else None for t in node.inputs]
    call = KernelCall(
        plain,
        args,
        [graph.tensors[t] if t else None for t in node.inputs],
        [graph.tensors[t] for t in node.outputs],
        graph,
    )
    return np.asarray(find_kernel(node.op, "fp")(call)[0], np.float64)


def fp16_magnitude(graph: Graph, node, values: Mapping[str, np.ndarray]) -> np.ndarray:
    """A per element: the node's reference kernel on the absolute values of its inputs, without
    its fused activation clamp (1-Lipschitz: it does not grow an error), and at least
    |reference output| (for ops such as sub and clip whose kernel on |inputs| is not a sum of
    magnitudes)."""
    ref = np.abs(np.asarray(values[node.outputs[0]], np.float64))
    return np.maximum(np.abs(_plain_call(graph, node, values)).reshape(ref.shape), ref)


def _reduction_order(layer) -> tuple[str, ...]:
    """The kernel's reduction axes (kh, kw, ic), outermost first, from its schedule."""
    order: list[str] = []
    for name in layer.schedule.order if layer.schedule else ():
        base = name.split(".")[0]
        if base in ("kh", "kw", "ic") and base not in order:
            order.append(base)
    for base in ("kh", "kw", "ic"):
        if base not in order:
            order.append(base)
    return tuple(order)


def fp16_partial_sums(graph: Graph, layer, values: Mapping[str, np.ndarray]) -> np.ndarray:
    """sqrt(sum_j c_j^2) per output element of a conv2d / dense (incl. depthwise): exact
    partial sums in the kernel's reduction order, products and the bias add (comment above)."""
    from accelsim.ref import primitives as P

    node = graph.node(layer.name)
    x = np.asarray(values[node.inputs[0]], np.float64)
    w = np.asarray(values[node.inputs[1]], np.float64)
    b = (
        np.asarray(values[node.inputs[2]], np.float64)
        if len(node.inputs) > 2 and node.inputs[2]
        else np.zeros(w.shape[0])
    )
    out_shape = np.asarray(values[layer.output]).shape
    if node.op == "dense":
        O, I = w.shape
        cols = x.reshape(-1, I)[:, None, None, :, None, None]  # N, G, P, I, kh, kw
        wg = w.reshape(1, O, I, 1, 1)  # G, O, I, kh, kw
        layout, groups, oh, ow = None, 1, 1, 1
    else:
        layout = node.attr("data_layout", "NCHW")
        groups = node.attr("groups", 1)
        xp = P.pad_spatial(P.to_nchw(x, layout), node.attr("pads", (0, 0, 0, 0)), 0.0)
        O, Ig, KH, KW = w.shape
        win = P.windows(
            xp, (KH, KW), node.attr("strides", (1, 1)), node.attr("dilations", (1, 1))
        )  # N, C, OH, OW, kh, kw
        n, _, oh, ow = win.shape[:4]
        cols = win.reshape(n, groups, Ig, oh * ow, KH, KW).transpose(0, 1, 3, 2, 4, 5)
        wg = w.reshape(groups, O // groups, Ig, KH, KW)
    # reduction axes in the kernel's order: cols axes 3.. = (ic, kh, kw), wg axes 2.. likewise
    perm = [("ic", "kh", "kw").index(a) for a in _reduction_order(layer)]
    N, G, Pn = cols.shape[:3]
    cols = cols.transpose(0, 1, 2, *[3 + p for p in perm]).reshape(N, G, Pn, -1)
    wg = wg.transpose(0, 1, *[2 + p for p in perm]).reshape(G, wg.shape[1], -1)
    Og, K = wg.shape[1], wg.shape[2]
    q = np.empty((N, G, Pn, Og))
    step = max(1, _CHUNK_TERMS // max(1, Og * K))
    bg = b.reshape(G, Og)
    for nn in range(N):
        for g in range(G):
            for p0 in range(0, Pn, step):
                t = cols[nn, g, p0 : p0 + step, None, :] * wg[g][None]  # p, o, k
                ps = np.cumsum(t, axis=-1)
                q[nn, g, p0 : p0 + step] = (
                    (ps * ps).sum(-1) + (t * t).sum(-1) + (ps[..., -1] + bg[g]) ** 2
                )
    q = q.transpose(0, 1, 3, 2).reshape(N, G * Og, oh, ow)  # NCHW
    if layout is None:
        return np.sqrt(q).reshape(out_shape)
    return np.sqrt(P.from_nchw(q, layout)).reshape(out_shape)


def fp16_tolerance(arith, magnitude: np.ndarray, partial: np.ndarray | None = None) -> np.ndarray:
    """Per-element bound on |kernel - reference| for a float16 output (comment above):
    `partial` = sqrt(sum_j c_j^2) where known, else sqrt(roundings) * `magnitude`."""
    u16, u = _UNIT_ROUNDOFF["float16"], _UNIT_ROUNDOFF[arith.dtype]
    n = int(arith.roundings)
    if partial is None:
        partial = np.sqrt(n) * magnitude
    return 2.0 * u16 * magnitude + FP16_LAMBDA * u * partial + (n + 2) * _FP16_UNDERFLOW


def fp16_mismatches(graph: Graph, layer, values: Mapping[str, np.ndarray], got: np.ndarray) -> int:
    """Elements of a float16 layer's output outside `fp16_tolerance`."""
    node = graph.node(layer.name)
    ref = np.asarray(values[layer.output], np.float64)
    partial = (
        fp16_partial_sums(graph, layer, values)
        if layer.op_class in ("conv2d", "depthwise_conv2d", "dense")
        else None
    )
    tol = fp16_tolerance(layer.arith, fp16_magnitude(graph, node, values), partial)
    diff = np.abs(np.asarray(got, np.float64).reshape(ref.shape) - ref)
    return int((~(diff <= tol)).sum())  # NaN counts as a mismatch


RUNNERS: dict[str, Callable] = {
    "native": _native,
    "qemu-aarch64": _qemu("aarch64"),
    "qemu-hexagon": _qemu("hexagon"),
}


def verify_graph(
    graph: Graph,
    target: Target,
    precision: Precision | None,
    feeds,
    rtol: float = 1e-5,
    progress: Callable[[int], None] | None = None,
    only=None,
) -> list[LayerCheck]:
    """Per-layer mismatch counts (integers exact; float32 within `rtol` of max|ref|; float16
    within `fp16_tolerance`), of every layer or those named in `only`."""
    from accelsim.kernels.compile import compile_layer
    from accelsim.lower.lower import lower_graph
    from accelsim.ref.executor import run as ref_run

    kind = target.codegen.emulator.kind
    if kind not in RUNNERS:
        raise AccelsimError(
            f"target '{target.name}' ({target.path}): kernels for emulator "
            f"'{kind}' are verified by their own simulator, not here"
        )
    runner = RUNNERS[kind]
    values = ref_run(graph, feeds, keep=True)
    items = []
    layers = lower_graph(graph, target, precision, only=only)
    for i, layer in enumerate(layers):
        if layer.status == "kernel":
            items.append((layer, compile_layer(layer, target)))
        if progress:
            progress(i + 1)
    out = []
    for (layer, _), got in zip(items, runner(items, values, target)):
        ref = values[layer.output]
        if ref.dtype == np.float16:
            bad = fp16_mismatches(graph, layer, values, got)
        elif ref.dtype.kind == "f":
            atol = rtol * max(1.0, float(np.abs(ref).max()))
            bad = int((~np.isclose(got, ref, rtol=rtol, atol=atol)).sum())
        else:
            bad = int((got.astype(np.int64) != ref.astype(np.int64)).sum())
        out.append(LayerCheck(layer.name, graph.node(layer.name).op, bad, int(ref.size)))
    return out


def summary(checks: list[LayerCheck]) -> Mapping:
    return {
        "mismatches": sum(c.mismatches for c in checks),
        "elements": sum(c.elements for c in checks),
        "layers": [
            {"name": c.name, "op": c.op, "mismatches": c.mismatches, "elements": c.elements}
            for c in checks
        ],
    }
