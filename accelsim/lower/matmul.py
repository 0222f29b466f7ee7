"""matmul: activation x weight and activation x activation, batched with numpy broadcasting of
the batch axes, either operand transposed (`transpose_a`, `transpose_b`).

Integer semantics are TFLite's BATCH_MATMUL (`accelsim.ref.gemmlowp_ops.matmul`): per-tensor
operands, products of the zero-point-corrected values summed in int32 (8-bit operands; they wrap
as the reference's int32 conversion does) or int64 (16-bit), one multiplier
`double(float(s_a * s_b)) / double(s_out)` applied with MultiplyByQuantizedMultiplier, then the
output zero point and the fused activation's clamp. ONNX QDQ graphs (`requant_mode="float"`,
8-bit operands) requantize as ONNX Runtime's QLinearMatMul (`accelsim.ref.qdq_ops.matmul`):
`float(acc) * (s_a * s_b / s_out)` in float32, rounded half to even. Float graphs sum in the
target's arithmetic dtype (`float_types`).

The kernel works in the graph's layout: the reduction is its own block (`acc`), the requantizing
epilogue (`y`) is scheduled as an elementwise kernel (its loops fused and vectorized).
"""

from __future__ import annotations

import numpy as np

from accelsim.core import requant as rp
from accelsim.core.qparams import DTYPE_BITS, store_dtype
from accelsim.lower import requant as rq
from accelsim.lower.common import (
    Built,
    Ctx,
    NotLowered,
    _need_per_tensor,
    _qclamp,
    _te,
    _with_arith,
    float_types,
)
from accelsim.lower.ops import _elementwise_spec
from accelsim.ref import qdq_ops


def matmul(ctx: Ctx) -> Built:
    te = _te()
    node, g = ctx.node, ctx.graph
    a_i, b_i, o_i = ctx.info(0), ctx.info(1), ctx.out
    if a_i is None or b_i is None:
        raise NotLowered("an operand is omitted")
    ta, tb = bool(node.attr("transpose_a", False)), bool(node.attr("transpose_b", False))
    rank = len(o_i.shape)
    a_shape = (1,) * (rank - len(a_i.shape)) + tuple(a_i.shape)
    b_shape = (1,) * (rank - len(b_i.shape)) + tuple(b_i.shape)
    K = a_shape[-2] if ta else a_shape[-1]
    adt, bdt, odt = (store_dtype(t.dtype) for t in (a_i, b_i, o_i))
    A = te.placeholder(a_shape, adt, name="a")
    B = te.placeholder(b_shape, bdt, name="b")
    k = te.reduce_axis((0, K), "k")

    def operand(T, shape, i, rows, cols, trans):
        batch = tuple(0 if d == 1 else x for d, x in zip(shape[:-2], i[:-2]))
        return T[batch + ((cols, rows) if trans else (rows, cols))]

    ft = None
    if o_i.is_float:
        ft = float_types(ctx, a_i, b_i, o_i)
        cdt = ft.compute
        acc = te.compute(
            o_i.shape,
            lambda *i: te.sum(
                operand(A, a_shape, i, i[-2], k, ta).astype(cdt)
                * operand(B, b_shape, i, k, i[-1], tb).astype(cdt),
                axis=k,
            ),
            name="acc",
        )
        y = te.compute(o_i.shape, lambda *i: acc[i].astype(odt), name="y")
        params, pnames, consts, prec = [], [], {}, ft.precision
    else:
        qdq = g.requant_mode == "float"  # ONNX Runtime's arithmetic (module docstring)
        if g.requant_mode not in ("gemmlowp", "float"):
            raise NotLowered(f"requant_mode '{g.requant_mode}'")
        for info, what in ((a_i, "lhs"), (b_i, "rhs"), (o_i, "output")):
            _need_per_tensor(ctx, info, what)
        wide = DTYPE_BITS[a_i.dtype] > 8 or DTYPE_BITS[b_i.dtype] > 8
        if qdq and (wide or DTYPE_BITS[o_i.dtype] > 8):
            raise NotLowered(
                "16-bit operands of an ONNX QDQ matmul (ONNX Runtime runs them in float)"
            )
        accdt = "int64" if wide else "int32"
        if qdq:
            mult, shift = 0, 0
            qmin, qmax = qdq_ops.output_range(o_i, node.attrs)
            fsc = te.placeholder((1,), "float32", name="scale")
        else:
            mult, shift = rp.product_multiplier(a_i, b_i, o_i)
            qmin, qmax = _qclamp(o_i, node.attrs)
        qp = te.placeholder((7,), "int32", name="qparams")
        consts = {
            "qparams": np.array(
                [
                    rp.zero_point(a_i),
                    rp.zero_point(b_i),
                    rp.zero_point(o_i),
                    mult,
                    shift,
                    qmin,
                    qmax,
                ],
                np.int32,
            )
        }
        acc = te.compute(
            o_i.shape,
            lambda *i: te.sum(
                (operand(A, a_shape, i, i[-2], k, ta).astype(accdt) - qp[0].astype(accdt))
                * (operand(B, b_shape, i, k, i[-1], tb).astype(accdt) - qp[1].astype(accdt)),
                axis=k,
            ),
            name="acc",
        )
        fn = rq.mbqm64 if wide else rq.mbqm

        def body(*i):
            return fn(
                acc[i], qp[3], qp[4], lambda r: rq.clamp_add(r, qp[2], qp[5], qp[6]).astype(odt)
            )

        def qdq_body(*i):  # MlasRequantizeOutput, as the MAC layers' epilogue (common.py)
            f = acc[i].astype("float32") * fsc[0]
            return rq.mlas_finish(f, qp[2], qp[5], qp[6]).astype(odt)

        y = te.compute(o_i.shape, qdq_body if qdq else body, name="y")
        params, pnames, prec = [qp], ["qparams"], ctx.precision
        if qdq:
            params, pnames = [fsc, qp], ["scale", "qparams"]
            consts["scale"] = np.array([qdq_ops.product_multiplier(a_i, b_i, o_i)], np.float32)
    recipe = ctx.recipe("elementwise", prec)
    total = int(np.prod(o_i.shape))
    spec = _elementwise_spec(
        ctx, total, DTYPE_BITS[o_i.dtype] if ft is None else DTYPE_BITS[ft.compute], recipe
    )
    spec.fuse = True
    names = (node.inputs[0], node.inputs[1])

    def pack(values):
        out = {
            "a": np.ascontiguousarray(np.asarray(values[names[0]]).reshape(a_shape).astype(adt)),
            "b": np.ascontiguousarray(np.asarray(values[names[1]]).reshape(b_shape).astype(bdt)),
        }
        out.update(consts)
        return out

    def unpack(arr):
        return np.asarray(arr)

    signature = {
        "op": "matmul",
        "class": "matmul",
        "a": [list(a_shape), adt, ta],
        "b": [list(b_shape), bdt, tb],
        "y": [list(o_i.shape), odt],
        "block": spec.axes[0].vsplit,
    }
    built = Built(
        "elementwise",
        [A, B, *params, y],
        ["a", "b", *pnames, "y"],
        spec,
        recipe,
        pack,
        unpack,
        signature,
        names,
    )
    return _with_arith(built, ft, 2 * K)
