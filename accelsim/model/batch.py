"""Re-batching a graph: the zoo and the importers build batch 1, and the executor checks the
input shape exactly."""

from __future__ import annotations

from accelsim.model.graph import Graph, TensorInfo
from accelsim.model.ops import infer_shapes


def with_batch(graph: Graph, batch: int) -> Graph:
    """The same graph with batch dimension `batch` on its inputs; every other shape is
    re-inferred (dtypes and quantization parameters kept). A static reshape whose first
    dimension equals the old batch follows the new one."""
    old = {t: graph.tensors[t].shape[0] for t in graph.inputs}
    if all(b == batch for b in old.values()):
        return graph
    tensors = dict(graph.tensors)
    for t in graph.inputs:
        info = tensors[t]
        tensors[t] = TensorInfo(t, (batch,) + tuple(info.shape[1:]), info.dtype, info.quant)
    old_batch = next(iter(old.values()))
    nodes = []
    for n in graph.nodes:
        if n.op == "reshape":
            shape = list(n.attr("shape"))
            src = graph.tensors[n.inputs[0]].shape
            if shape and src and shape[0] == src[0] == old_batch:
                shape[0] = batch
                n = n.with_attrs(shape=tuple(shape))
        ins = [tensors[t] if t else None for t in n.inputs]
        shapes = infer_shapes(n, ins)
        for o, s in zip(n.outputs, shapes):
            info = tensors[o]
            tensors[o] = TensorInfo(o, s, info.dtype, info.quant)
        nodes.append(n)
    return graph.replace(nodes=tuple(nodes), tensors=tensors)
