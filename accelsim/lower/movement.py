"""Kernels for the data-movement operators (transpose, slice, gather / gather_elements with
constant indices (a gather by run-time indices: `gather`, below), concat on any axis, pad in every mode, tile, nearest resize, depth_to_space,
and reshapes that are not views) and for integer pointwise functions (sigmoid, tanh, hard_swish,
hard_sigmoid, gelu, ... on a per-tensor quantized input).

Both are lowered as table-driven kernels whose tables come from the reference executor's own
kernel for the node, so the generated code is bit-exact with it by construction and one builder
serves every such operator:

- a data-movement node copies: output element j is input element `src[j]` (of the data inputs,
  flattened and laid end to end) or the node's fill value (constant padding). `src` is found at
  compile time by running the node's float reference kernel on the element numbers
  1..N (exact in float32 below 2^24 elements); the kernel reads it as an int32 argument, the
  gather-by-descriptor a DMA engine runs. Cost: one 4-byte index load per output element beyond
  a copy with computed addresses. The data keeps its representation, so inputs and output must
  share dtype and quantization (TFLite's same-scale rule); a requantizing copy is not lowered.
- a pointwise function of one per-tensor quantized input (8 or 16 bits) is a lookup table of
  all 2^bits input values (XNNPACK and TFLite's own 8-bit LOGISTIC/TANH use 256-entry tables),
  filled by the node's integer reference kernel (TFLite's fixed-point semantics); the kernel is
  `y[i] = table[x[i] - min]`. A 16-bit table is 128 KB.

Every tensor is flattened in the graph's own layout (no NHWC packing: a copy or a lookup has no
preferred layout), so `pack` / `unpack` only reshape.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from accelsim.core.errors import AccelsimError
from accelsim.core.qparams import DTYPE_BITS, dtype_range, store_dtype
from accelsim.lower.common import Built, Ctx, FloatArith, NotLowered, _te, _tirx
from accelsim.lower.ops import _elementwise_spec
from accelsim.model.graph import Graph, Node, TensorInfo
from accelsim.model.ops import OPS

MOVEMENT_OPS = (
    "reshape",
    "flatten",
    "squeeze",
    "transpose",
    "slice",
    "gather",
    "gather_elements",
    "concat",
    "pad",
    "tile",
    "resize",
    "depth_to_space",
)
# pointwise functions of one input: the output element depends on the input element alone
LUT_OPS = (
    "sigmoid",
    "tanh",
    "hard_swish",
    "hard_sigmoid",
    "gelu",
    "erf",
    "neg",
    "sqrt",
    "rsqrt",
)
_NONNEGATIVE = ("sqrt", "rsqrt")  # lookups whose function is defined for inputs >= 0 only
_MAX_EXACT = 1 << 24  # element numbers stay exact in float32 below this
_LUT_BITS = (8, 16)


def _reference(graph: Graph, node, args, in_info, out_info):
    """The reference executor's kernel for `node` applied to `args`."""
    from accelsim.ref.executor import domain_of
    from accelsim.ref.registry import KernelCall, find_kernel

    fn = find_kernel(node.op, domain_of(graph, node) if out_info[0].quant else "fp")
    try:
        return np.asarray(fn(KernelCall(node, args, in_info, out_info, graph))[0])
    except AccelsimError as exc:  # e.g. RSQRT of a negative entry of a full-range table
        raise NotLowered(f"the reference kernel rejects the table's inputs: {exc}") from None


def _float(info: TensorInfo) -> TensorInfo:
    return dataclasses.replace(info, dtype="float32", quant=None)


def _sources(ctx: Ctx, data: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(src, fill mask): for each output element the flat index into the data inputs laid end
    to end, and where the node writes its fill value instead."""
    node, g = ctx.node, ctx.graph
    probe = node
    if node.op == "pad" and node.attr("mode", "constant") == "constant":
        probe = dataclasses.replace(node, attrs={**node.attrs, "value": 0.0})
    args: list[np.ndarray | None] = []
    infos: list[TensorInfo | None] = []
    offset = 0
    for i, t in enumerate(node.inputs):
        info = g.tensors[t] if t else None
        if i in data:
            assert info is not None
            args.append(np.arange(offset + 1, offset + info.size + 1, dtype=np.float64))
            args[-1] = args[-1].reshape(info.shape).astype(np.float32)
            infos.append(_float(info))
            offset += info.size
        else:
            args.append(np.asarray(g.constants[t]) if t else None)
            infos.append(info)
    numbers = _reference(ctx.graph, probe, args, infos, [_float(ctx.out)]).ravel()
    src = np.rint(numbers).astype(np.int64) - 1
    if np.any(np.abs(numbers - (src + 1)) > 0) or src.max(initial=-1) >= offset:
        raise NotLowered(f"op '{node.op}' does not copy elements (its output mixes them)")
    return src, src < 0


def gather(ctx: Ctx) -> Built:
    """Gather with indices known only at run time (an embedding lookup by token ids):
    `y[..., j, ...] = data[..., idx[j], ...]` along `axis`, a negative index counted from the
    end as the reference does (`primitives.normalized_indices`); an index outside the axis,
    which the reference rejects, is clamped into it, so the kernel never reads outside `data`."""
    te, tirx = _te(), _tirx()
    node, o_i = ctx.node, ctx.out
    d_i, x_i = ctx.info(0), ctx.info(1)
    if d_i.dtype != o_i.dtype or d_i.quant != o_i.quant:
        raise NotLowered("data and output differ in type or quantization: a requantizing copy")
    if x_i.dtype not in ("int32", "int64"):
        raise NotLowered(f"{x_i.dtype} indices")
    rank = len(d_i.shape)
    axis = node.attr("axis", 0) % rank
    n = d_i.shape[axis]
    r = len(x_i.shape)
    dt, idt = store_dtype(d_i.dtype), x_i.dtype
    data = te.placeholder(tuple(d_i.shape), dt, name="data")
    idx = te.placeholder(tuple(x_i.shape) or (1,), idt, name="idx")

    def body(*i):
        v = idx[i[axis : axis + r]] if r else idx[0]
        v = tirx.Select(v < tirx.const(0, idt), v + tirx.const(n, idt), v)
        v = tirx.max(tirx.min(v, tirx.const(n - 1, idt)), tirx.const(0, idt)).astype("int32")
        return data[(*i[:axis], v, *i[axis + r :])]

    y = te.compute(tuple(o_i.shape), lambda *i: body(*i), name="y")
    recipe = ctx.recipe("elementwise", ctx.precision)
    spec = _elementwise_spec(ctx, o_i.size, DTYPE_BITS.get(o_i.dtype, 32), recipe)
    spec.fuse = True
    names = (node.inputs[0], node.inputs[1])
    ishape = tuple(x_i.shape) or (1,)

    def pack(values):
        return {
            "data": np.ascontiguousarray(np.asarray(values[names[0]]).astype(np.dtype(dt))),
            "idx": np.ascontiguousarray(np.asarray(values[names[1]]).reshape(ishape)),
        }

    shape = tuple(o_i.shape)

    def unpack(arr):
        return np.asarray(arr).reshape(shape)

    signature = {
        "op": "gather",
        "class": "gather",
        "data": [list(d_i.shape), dt],
        "idx": [list(ishape), idt],
        "axis": axis,
        "y": [list(shape), dt],
        "block": spec.axes[0].vsplit,
    }
    return Built(
        "elementwise",
        [data, idx, y],
        ["data", "idx", "y"],
        spec,
        recipe,
        pack,
        unpack,
        signature,
        names,
    )


def movement(ctx: Ctx) -> Built:
    """A copy through a table of source indices (module docstring)."""
    te, tirx = _te(), _tirx()
    node, g, o_i = ctx.node, ctx.graph, ctx.out
    opdef = OPS[node.op]
    if node.op == "resize" and node.attr("mode", "nearest") != "nearest":
        raise NotLowered("linear resize interpolates (not a copy)")
    data = [
        i
        for i, t in enumerate(node.inputs)
        if t and i not in opdef.index_inputs and not (i > 0 and node.op == "pad")
    ]
    for i in opdef.index_inputs:
        if i < len(node.inputs) and node.inputs[i] and not g.is_constant(node.inputs[i]):
            raise NotLowered(f"run-time indices (input {i}): the copy depends on the data")
    infos = [g.tensors[node.inputs[i]] for i in data]
    for k, info in zip(data, infos):
        if info.dtype != o_i.dtype or info.quant != o_i.quant:
            raise NotLowered(
                f"input {k} ({info.dtype}) and output ({o_i.dtype}) differ in type or "
                f"quantization: a requantizing copy"
            )
    total_in = sum(i.size for i in infos)
    if max(total_in, o_i.size) >= _MAX_EXACT:
        raise NotLowered(f"{max(total_in, o_i.size)} elements: element numbers inexact")
    src, fill = _sources(ctx, data)
    fill_value = 0
    if fill.any():
        zeros = [
            np.zeros(g.tensors[t].shape, np.dtype(store_dtype(g.tensors[t].dtype)))
            if i in data
            else (np.asarray(g.constants[t]) if t else None)
            for i, t in enumerate(node.inputs)
        ]
        ins = [g.tensors[t] if t else None for t in node.inputs]
        out = _reference(ctx.graph, node, zeros, ins, [o_i]).ravel()[fill]
        if len(np.unique(out)) != 1:
            raise NotLowered("more than one fill value")
        fill_value = int(out[0]) if not o_i.is_float else float(out[0])
    dt = store_dtype(o_i.dtype)
    total = o_i.size
    xs = [te.placeholder((i.size,), dt, name=f"x{k}") for k, i in enumerate(infos)]
    idx = te.placeholder((total,), "int32", name="src")
    offsets = np.cumsum([0] + [i.size for i in infos])

    def body(j):
        s = idx[j]
        v = tirx.const(fill_value, dt)
        for k in reversed(range(len(xs))):
            lo, hi = int(offsets[k]), int(offsets[k + 1])
            inside = tirx.all(s >= lo, s < hi)
            v = tirx.if_then_else(inside, xs[k][tirx.max(tirx.min(s, hi - 1), lo) - lo], v)
        return v

    y = te.compute((total,), body, name="y")
    bits = DTYPE_BITS.get(o_i.dtype, 32)
    prec = ctx.precision
    recipe = ctx.recipe("elementwise", prec)
    spec = _elementwise_spec(ctx, total, bits, recipe)
    spec.fuse = True
    in_names = tuple(node.inputs[i] for i in data)
    xnames = [f"x{k}" for k in range(len(xs))]
    table = np.where(fill, -1, src).astype(np.int32)

    def pack(values):
        out = {
            n: np.ascontiguousarray(np.asarray(values[t]).reshape(-1).astype(dt))
            for n, t in zip(xnames, in_names)
        }
        out["src"] = table
        return out

    shape = o_i.shape

    def unpack(arr):
        return np.asarray(arr).reshape(shape)

    signature = {
        "op": node.op,
        "class": "movement",
        "in": [[[i.size], dt] for i in infos],
        "y": [[total], dt],
        "fill": fill_value,
        "block": spec.axes[0].vsplit,
    }
    return Built(
        "elementwise",
        [*xs, idx, y],
        [*xnames, "src", "y"],
        spec,
        recipe,
        pack,
        unpack,
        signature,
        in_names,
    )


def _float_pointwise(ctx: Ctx) -> Built:
    """float32 hard_swish (TFLite's float kernel: every operation rounded to float32) and
    hard_sigmoid (float64, rounded once), the forms the quantizer keeps in float (w8a16 has no
    integer hard-swish kernel) and float graphs carry."""
    te, tirx = _te(), _tirx()
    node, o_i = ctx.node, ctx.out
    x_i = ctx.info(0)
    if x_i is None or x_i.dtype != "float32" or o_i.dtype != "float32":
        raise NotLowered(f"float {node.op} on {o_i.dtype} (float32 only)")
    total = o_i.size
    x = te.placeholder((total,), "float32", name="x")
    f64 = "float64"

    def c(v):
        return tirx.const(float(v), f64)

    def f32(v):
        return v.astype("float32").astype(f64)

    if node.op == "hard_swish":

        def body(j):
            v = x[j].astype(f64)
            t = tirx.max(tirx.min(f32(v + c(3.0)), c(6.0)), c(0.0))
            return (f32(v * t) / c(6.0)).astype("float32")

        roundings = 3
    else:
        alpha, beta = float(node.attr("alpha", 0.2)), float(node.attr("beta", 0.5))

        def body(j):
            v = x[j].astype(f64) * c(alpha) + c(beta)
            return tirx.max(tirx.min(v, c(1.0)), c(0.0)).astype("float32")

        roundings = 2
    y = te.compute((total,), body, name="y")
    recipe = ctx.recipe("elementwise", "fp32")
    spec = _elementwise_spec(ctx, total, 32, recipe)
    spec.fuse = True
    src = node.inputs[0]
    shape = o_i.shape

    def pack(vals):
        return {"x": np.ascontiguousarray(np.asarray(vals[src], np.float32).reshape(-1))}

    def unpack(arr):
        return np.asarray(arr).reshape(shape)

    built = Built(
        "elementwise",
        [x, y],
        ["x", "y"],
        spec,
        recipe,
        pack,
        unpack,
        {"op": node.op, "class": "float_pointwise", "x": [[total], "float32"]},
        (src,),
    )
    built.arith = FloatArith("float32", roundings)
    return built


def pointwise_table(graph: Graph, node: Node, bits: tuple[int, ...]) -> tuple[int, np.ndarray]:
    """(lowest input value, table): `node`'s output for every value of its one per-tensor
    quantized input, as the node's integer reference kernel computes it, in the output's storage
    dtype; `NotLowered` when the node is not such a function or its input is not `bits` wide.
    The one home of the tables the CPU/DSP lookups and the accelerator's VLUT read."""
    o_i = graph.tensors[node.outputs[0]]
    data = [i for i, t in enumerate(node.inputs) if t and not graph.is_constant(t)]
    if len(data) != 1 or data[0] != 0:
        raise NotLowered("a table needs exactly one activation input (the first)")
    x_i = graph.tensors[node.inputs[0]]
    for info, what in ((x_i, "input"), (o_i, "output")):
        if not info.is_quantized or info.dtype not in ("int8", "uint8", "int16"):
            raise NotLowered(f"{what} is not an 8- or 16-bit quantized integer tensor")
        if info.quant is not None and len(set(info.quant.scale)) > 1:
            raise NotLowered(f"{what} is quantized per channel")
    if DTYPE_BITS[x_i.dtype] not in bits:
        raise NotLowered(f"{x_i.dtype} input (tables of {'/'.join(map(str, bits))}-bit inputs)")
    lo, hi = dtype_range(x_i.dtype)
    xdt, odt = store_dtype(x_i.dtype), store_dtype(o_i.dtype)
    values = np.arange(lo, hi + 1, dtype=np.int64).astype(np.dtype(xdt))
    args: list[np.ndarray | None] = [values]
    if node.op in _NONNEGATIVE:
        # defined for real inputs >= 0 only: TFLite rejects the others at run time (and so
        # does the reference); their entries repeat the value at zero
        zp = int(x_i.quant.zero_point[0]) if x_i.quant is not None else 0
        args = [np.maximum(values.astype(np.int64), zp).astype(np.dtype(xdt))]
    for t in node.inputs[1:]:
        args.append(np.asarray(graph.constants[t]) if t else None)
    ins = [dataclasses.replace(x_i, shape=(values.size,))] + [
        graph.tensors[t] if t else None for t in node.inputs[1:]
    ]
    out = [dataclasses.replace(o_i, shape=(values.size,))]
    table = _reference(graph, node, args, ins, out)
    return lo, np.ascontiguousarray(table.reshape(-1).astype(np.dtype(odt)))


def lookup(ctx: Ctx) -> Built:
    """A pointwise integer function as a table of all input values (module docstring)."""
    te = _te()
    node, g, o_i = ctx.node, ctx.graph, ctx.out
    if o_i.is_float and node.op in ("hard_swish", "hard_sigmoid"):
        return _float_pointwise(ctx)
    x_i = g.tensors[node.inputs[0]]
    lo, table = pointwise_table(g, node, _LUT_BITS)
    xdt, odt = store_dtype(x_i.dtype), store_dtype(o_i.dtype)
    total = o_i.size
    x = te.placeholder((total,), xdt, name="x")
    tab = te.placeholder((table.size,), odt, name="table")
    y = te.compute((total,), lambda j: tab[x[j].astype("int32") - lo], name="y")
    recipe = ctx.recipe("elementwise", ctx.precision)
    spec = _elementwise_spec(ctx, total, DTYPE_BITS[o_i.dtype], recipe)
    spec.fuse = True
    src = node.inputs[0]

    def pack(vals):
        return {"x": np.ascontiguousarray(np.asarray(vals[src]).reshape(-1)), "table": table}

    shape = o_i.shape

    def unpack(arr):
        return np.asarray(arr).reshape(shape)

    signature = {
        "op": node.op,
        "class": "lookup",
        "x": [[total], xdt],
        "table": [[int(table.size)], odt],
        "block": spec.axes[0].vsplit,
    }
    return Built(
        "elementwise",
        [x, tab, y],
        ["x", "table", "y"],
        spec,
        recipe,
        pack,
        unpack,
        signature,
        (src,),
    )
