"""Rewrites of a float ONNX model into operators accelsim imports, each one exact in real
arithmetic (the float result can differ from the original by float32 rounding only, which
`tests/test_ocr_models.py` bounds against ONNX Runtime on both graphs).

`rewrite_for_import(model, input_shape)` fixes the input shape, moves the model to opset 17
(ONNX's version converter; LayerNormalization needs 17) and then applies, in order:

- `Div(x, c)` with a constant `c` -> `Mul(x, 1 / c)` (one float32 rounding of `1 / c`);
- the decomposed layer norm exporters write, `(x - mean(x)) / sqrt(mean((x - mean(x))^2) + eps)
  * gamma + beta` over the last axis -> `LayerNormalization(axis=-1, epsilon=eps)`;
- `Flatten` or `Reshape(x, (rows, n)) -> Softmax -> Reshape(x.shape)` (the version converter's form of an
  opset-12 softmax over the last axis) -> `Softmax(x, axis=-1)`;
- a fused query/key/value projection, `Slice`d after `Transpose(Reshape(MatMul(x, W) + b))`
  (accelsim has no run-time slice) -> one projection per slice, on the matching columns of `W`
  and `b`, with the same reshape and transpose (each output is the same dot product).

Constant nodes become initializers (ONNX Runtime's quantizer looks for biases there).
(Sigmoid, HardSigmoid and HardSwish need no rewrite: the importer has kernels for them.)
Anything a rewrite does not recognise is left as it is; the importer then names the operator it
does not support.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from accelsim.core.errors import ModelError

OPSET = 17


class _Rewriter:
    def __init__(self, model: Any) -> None:
        import onnx
        from onnx import numpy_helper

        self.onnx = onnx
        self.nh = numpy_helper
        self.m = model
        self.g = model.graph
        self.consts: dict[str, np.ndarray] = {
            t.name: numpy_helper.to_array(t) for t in self.g.initializer
        }
        for n in self.g.node:
            if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
                self.consts[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
        self._count = 0
        seen: set[str] = set()
        for n in self.g.node:  # nodes are told apart by name below: make names unique
            if not n.name or n.name in seen:
                n.name = self.name(n.name or n.op_type)
            seen.add(n.name)
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.infer()

    # -- helpers ----------------------------------------------------------------------------
    def infer(self) -> None:
        inferred = self.onnx.shape_inference.infer_shapes(self.m, data_prop=True)
        shapes = {}
        for v in list(inferred.graph.value_info) + list(inferred.graph.input):
            dims = v.type.tensor_type.shape.dim
            if all(d.HasField("dim_value") for d in dims):
                shapes[v.name] = tuple(int(d.dim_value) for d in dims)
        for name, arr in self.consts.items():
            shapes[name] = tuple(arr.shape)
        self.shapes = shapes

    def name(self, base: str) -> str:
        self._count += 1
        return f"{base}__rw{self._count}"

    def const(self, base: str, value: np.ndarray) -> str:
        name = self.name(base)
        self.g.initializer.append(self.nh.from_array(np.asarray(value), name))
        self.consts[name] = np.asarray(value)
        return name

    def producers(self) -> dict[str, Any]:
        return {o: n for n in self.g.node for o in n.output}

    def consumers(self) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {}
        for n in self.g.node:
            for t in n.input:
                out.setdefault(t, []).append(n)
        return out

    def replace(self, old: Sequence[Any], new: Sequence[Any]) -> None:
        """Put `new` where the first of `old` was and drop the rest of `old`."""
        gone = {n.name for n in old}
        nodes = list(self.g.node)
        at = min(i for i, n in enumerate(nodes) if n.name in gone)
        keep = [n for n in nodes if n.name not in gone]
        keep[at:at] = list(new)
        del self.g.node[:]
        self.g.node.extend(keep)

    def node(self, op: str, inputs: Sequence[str], outputs: Sequence[str], **attrs: Any) -> Any:
        return self.onnx.helper.make_node(
            op, list(inputs), list(outputs), name=self.name(op), **attrs
        )

    def scalar(self, t: str) -> float | None:
        v = self.consts.get(t)
        if v is None or v.size != 1:
            return None
        return float(v.ravel()[0])

    def constants_to_initializers(self) -> None:
        """Constant nodes -> initializers (ONNX Runtime's quantizer expects biases there)."""
        keep = []
        for n in self.g.node:
            if (
                n.op_type == "Constant"
                and n.output[0] in self.consts
                and n.attribute[0].name == "value"
            ):
                self.g.initializer.append(self.nh.from_array(self.consts[n.output[0]], n.output[0]))
            else:
                keep.append(n)
        del self.g.node[:]
        self.g.node.extend(keep)

    def prune(self) -> None:
        """Drop nodes nothing reads any more (shape arithmetic of a replaced reshape)."""
        outputs = {o.name for o in self.g.output}
        while True:
            cons = self.consumers()
            dead = [
                n
                for n in self.g.node
                if all(not cons.get(o) and o not in outputs for o in n.output)
            ]
            if not dead:
                return
            gone = {n.name for n in dead}
            keep = [n for n in self.g.node if n.name not in gone]
            del self.g.node[:]
            self.g.node.extend(keep)

    # -- rewrites ---------------------------------------------------------------------------
    def div_by_constant(self) -> int:
        done = 0
        for n in [n for n in self.g.node if n.op_type == "Div"]:
            c = self.consts.get(n.input[1])
            if c is None or n.input[0] in self.consts or not np.all(c != 0):
                continue
            recip = (1.0 / c.astype(np.float64)).astype(c.dtype)
            self.replace(
                [n], [self.node("Mul", [n.input[0], self.const("reciprocal", recip)], n.output)]
            )
            done += 1
        return done

    def layer_norm(self) -> int:
        """ReduceMean -> Sub -> Pow(2) -> ReduceMean -> Add(eps) -> Sqrt -> Div -> Mul -> Add."""
        done = 0
        while True:
            prod, cons = self.producers(), self.consumers()
            found = None
            for sqrt in (n for n in self.g.node if n.op_type == "Sqrt"):
                found = self._match_layer_norm(sqrt, prod, cons)
                if found:
                    break
            if not found:
                return done
            old, x, eps, gamma, beta, out = found
            ln = self.node(
                "LayerNormalization", [x, gamma, beta], [out], axis=-1, epsilon=float(eps)
            )
            self.replace(old, [ln])
            done += 1

    def _match_layer_norm(self, sqrt, prod, cons):
        add_eps = prod.get(sqrt.input[0])
        if add_eps is None or add_eps.op_type != "Add":
            return None
        eps = self.scalar(add_eps.input[1])
        var = prod.get(add_eps.input[0])
        if eps is None or var is None or var.op_type != "ReduceMean":
            return None
        pow_ = prod.get(var.input[0])
        if pow_ is None or pow_.op_type != "Pow" or self.scalar(pow_.input[1]) != 2.0:
            return None
        sub = prod.get(pow_.input[0])
        if sub is None or sub.op_type != "Sub":
            return None
        mean = prod.get(sub.input[1])
        x = sub.input[0]
        if mean is None or mean.op_type != "ReduceMean" or mean.input[0] != x:
            return None
        for r in (mean, var):
            axes = {a.name: self.onnx.helper.get_attribute_value(a) for a in r.attribute}
            rank = len(self.shapes.get(x, ()))
            if not rank or [int(v) % rank for v in axes.get("axes", [])] != [rank - 1]:
                return None
        divs = [d for d in cons.get(sub.output[0], []) if d.op_type == "Div"]
        if len(divs) != 1 or divs[0].input[1] != sqrt.output[0]:
            return None
        div = divs[0]
        mul = cons.get(div.output[0], [])
        if len(mul) != 1 or mul[0].op_type != "Mul" or mul[0].input[1] not in self.consts:
            return None
        add = cons.get(mul[0].output[0], [])
        if len(add) != 1 or add[0].op_type != "Add" or add[0].input[1] not in self.consts:
            return None
        inner = (mean, sub, pow_, var, add_eps, sqrt, div, mul[0])
        for n in inner:  # nothing else may read the intermediate values
            for o in n.output:
                users = cons.get(o, [])
                if any(u.name not in {m.name for m in (*inner, add[0])} for u in users):
                    return None
        gamma, beta = mul[0].input[1], add[0].input[1]
        return (*inner, add[0]), x, eps, gamma, beta, add[0].output[0]

    def softmax_reshapes(self) -> int:
        """Reshape(x, (rows, last)) -> Softmax(-1) -> Reshape(x.shape), as the version converter
        writes an opset-12 softmax over the last axis -> Softmax(x, axis=-1) (a re-batched graph
        cannot follow the flattened batch)."""
        done = 0
        prod, cons = self.producers(), self.consumers()
        for sm in [n for n in self.g.node if n.op_type == "Softmax"]:
            pre = prod.get(sm.input[0])
            post = cons.get(sm.output[0], [])
            if pre is None or pre.op_type not in ("Reshape", "Flatten") or len(post) != 1:
                continue
            post_r = post[0]
            x = pre.input[0]
            shape, flat = self.shapes.get(x), self.shapes.get(pre.output[0])
            axis = [
                int(self.onnx.helper.get_attribute_value(a))
                for a in sm.attribute
                if a.name == "axis"
            ]
            if post_r.op_type != "Reshape" or shape is None or flat is None:
                continue
            back = self.shapes.get(post_r.output[0])
            if back is None:  # Reshape(y, Shape(x)): back to x's shape
                src = prod.get(post_r.input[1])
                back = (
                    shape
                    if src is not None and src.op_type == "Shape" and src.input[0] == x
                    else None
                )
            if (
                back != shape
                or len(flat) != 2
                or flat[-1] != shape[-1]
                or (axis and axis[0] not in (-1, 1))
                or len(cons.get(pre.output[0], [])) != 1
            ):
                continue
            self.replace([pre, sm, post_r], [self.node("Softmax", [x], post_r.output, axis=-1)])
            done += 1
        return done

    def split_qkv(self) -> int:
        """Slice(Transpose(Reshape(Add(MatMul(x, W), b)))) on the axis that came from splitting
        W's columns -> MatMul(x, W[:, cols]) + b[cols], reshaped and transposed the same way."""
        done = 0
        while True:
            prod, cons = self.producers(), self.consumers()
            hit = None
            for sl in (n for n in self.g.node if n.op_type == "Slice"):
                hit = self._match_qkv(sl, prod, cons)
                if hit:
                    break
            if not hit:
                return done
            old, new = hit
            self.replace(old, new)
            self.infer()
            done += 1

    def _match_qkv(self, sl, prod, cons):
        tr = prod.get(sl.input[0])
        if tr is None or tr.op_type != "Transpose" or sl.input[0] in self.consts:
            return None
        rs = prod.get(tr.input[0])
        if rs is None or rs.op_type != "Reshape":
            return None
        add = prod.get(rs.input[0])
        if add is None or add.op_type != "Add" or add.input[1] not in self.consts:
            return None
        mm = prod.get(add.input[0])
        if mm is None or mm.op_type != "MatMul" or mm.input[1] not in self.consts:
            return None
        w, b = self.consts[mm.input[1]], self.consts[add.input[1]]
        in_shape, r_shape = self.shapes.get(add.output[0]), self.shapes.get(rs.output[0])
        if in_shape is None or r_shape is None or w.ndim != 2 or b.shape != (w.shape[1],):
            return None
        perm = [
            int(v)
            for a in tr.attribute
            if a.name == "perm"
            for v in self.onnx.helper.get_attribute_value(a)
        ]
        starts, ends, axes, steps = (
            self.consts.get(t) if t else None for t in (list(sl.input) + ["", "", ""])[1:5]
        )
        if starts is None or ends is None or (steps is not None and np.any(steps != 1)):
            return None
        axes = axes if axes is not None else np.arange(len(starts))
        if len(axes) != 1:
            return None
        ax = int(axes[0]) % len(perm)
        src = perm[ax]  # the reshape dim the slice runs along
        # the reshape must split only the last (column) axis: (..., n) -> (..., k, *rest)
        lead = len(in_shape) - 1
        if tuple(r_shape[:lead]) != tuple(in_shape[:lead]) or src < lead:
            return None
        if int(np.prod(r_shape[lead:])) != in_shape[-1] or src != lead:
            return None
        k = r_shape[lead]
        per = in_shape[-1] // k
        s0 = int(np.clip(starts[0] if starts[0] >= 0 else starts[0] + k, 0, k))
        e0 = int(np.clip(ends[0] if ends[0] >= 0 else ends[0] + k, 0, k))
        if e0 - s0 != 1:
            return None
        cols = slice(s0 * per, (s0 + 1) * per)
        base = sl.output[0]
        m_out, a_out, r_out = (self.name(base + s) for s in ("_proj", "_bias", "_split"))
        new_shape = tuple(r_shape[:lead]) + (1,) + tuple(r_shape[lead + 1 :])
        new = [
            self.node("MatMul", [mm.input[0], self.const("w", w[:, cols].copy())], [m_out]),
            self.node("Add", [m_out, self.const("b", b[cols].copy())], [a_out]),
            self.node("Reshape", [a_out, self.const("shape", np.array(new_shape))], [r_out]),
            self.node("Transpose", [r_out], sl.output, perm=perm),
        ]
        old = [sl]
        # the fused projection goes once its last slice is rewritten
        others = [
            c for c in cons.get(tr.output[0], []) if c.name != sl.name and c.op_type == "Slice"
        ]
        if not others and len(cons.get(tr.output[0], [])) == 1:
            old += [tr, rs, add, mm]
        return old, new


def rewrite_for_import(model: Any, input_shape: Sequence[int]) -> tuple[Any, dict[str, int]]:
    """The rewritten model (a new `onnx.ModelProto`) and how many nodes each rewrite changed."""
    import onnx
    from onnx import version_converter

    model = onnx.ModelProto.FromString(model.SerializeToString())
    if len(model.graph.input) != 1:
        raise ModelError(f"rewrite: expected a one-input model, found {len(model.graph.input)}")
    dims = model.graph.input[0].type.tensor_type.shape.dim
    if len(dims) != len(input_shape):
        raise ModelError(
            f"rewrite: input '{model.graph.input[0].name}' has rank {len(dims)}, "
            f"the shape given {list(input_shape)} has rank {len(input_shape)}"
        )
    for d, v in zip(dims, input_shape):
        d.Clear()
        d.dim_value = int(v)
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=1)
    if opset < OPSET:
        model = version_converter.convert_version(model, OPSET)
    rw = _Rewriter(model)
    counts = {
        "Div": rw.div_by_constant(),
        "LayerNorm": rw.layer_norm(),
        "QKV": rw.split_qkv(),
    }
    rw.infer()
    counts["Softmax"] = rw.softmax_reshapes()
    rw.prune()
    rw.constants_to_initializers()
    rw.infer()
    onnx.checker.check_model(model)
    return model, counts
