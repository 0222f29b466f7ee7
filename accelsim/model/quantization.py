"""The precision a graph's tensors carry: read from their dtypes, layer by layer, so a quantized
graph (made by accelsim's quantizer or stored in a TFLite or QDQ file) is lowered and costed at
the precision it has, never at an assumed one."""

from __future__ import annotations

from collections import Counter

from accelsim.core.errors import InputError
from accelsim.core.precision import Precision, defaults_for, parse_precision
from accelsim.core.qparams import DTYPE_BITS
from accelsim.model.graph import Graph, Node
from accelsim.model.ops import MAC_OPS, node_macs


def layer_precision(graph: Graph, node: Node, default: Precision) -> Precision:
    """The precision a MAC node computes at, from its operand types (mixed-precision graphs are
    costed layer by layer); other nodes, and MAC nodes of float graphs, take `default`'s."""
    if node.op not in MAC_OPS or len(node.inputs) < 2:
        return default
    x, w = graph.tensors[node.inputs[0]], graph.tensors[node.inputs[1]]
    if x.is_float or w.is_float:
        return Precision(None, None, float_dtype="float16" if x.dtype == "float16" else "float32")
    wb, ab = DTYPE_BITS[w.dtype], DTYPE_BITS[x.dtype]
    sym = default.symmetric_acts
    if defaults_for(wb, ab)["symmetric_acts"] != defaults_for(None, None)["symmetric_acts"]:
        # a pair whose scheme fixes the activations' symmetry (w8a16): read it off the tensor
        sym = x.quant is not None and not any(x.quant.zero_point)
    return default.with_options(weight_bits=wb, act_bits=ab, symmetric_acts=sym, float_dtype=None)


def graph_precision(graph: Graph) -> Precision:
    """The precision a graph was made with: the quantizer's record when it left one, else read
    from the tensors (float graphs: fp16 when any tensor is float16, else fp32; integer graphs:
    the precision of most of their MACs)."""
    if not graph.is_quantized:
        fp16 = any(t.dtype == "float16" for t in graph.tensors.values())
        return parse_precision("fp16" if fp16 else "fp32")
    recorded = graph.metadata.get("precision")
    if recorded:
        return parse_precision(str(recorded), f"model '{graph.name}' metadata precision")
    base = Precision()
    by_macs: Counter[Precision] = Counter()
    for n in graph.nodes:
        if n.op in MAC_OPS:
            by_macs[layer_precision(graph, n, base)] += node_macs(graph, n)
    if by_macs:
        return by_macs.most_common(1)[0][0]
    bits = {DTYPE_BITS[t.dtype] for t in graph.tensors.values() if t.is_quantized}
    if len(bits) != 1:
        raise InputError(
            f"model '{graph.name}': integer tensors of {sorted(bits)} bits and no layer with "
            f"weights; its precision cannot be read from the tensors"
        )
    b = bits.pop()
    return Precision(b, b)


def layer_precisions(graph: Graph, default: Precision | None = None) -> dict[str, Precision]:
    """The precision each MAC node of `graph` computes at (see `layer_precision`)."""
    base = default or graph_precision(graph)
    return {n.name: layer_precision(graph, n, base) for n in graph.nodes if n.op in MAC_OPS}


def stored_label(graph: Graph) -> str:
    """How a stored-integer graph's precision reads in results: the precision "as stored" and,
    when its MAC layers differ, the count per precision (w8a8 as stored; mixed: 40 w8a8,
    12 w8a16)."""
    counts = Counter(p.name for p in layer_precisions(graph).values())
    if len(counts) <= 1:
        return f"{graph_precision(graph).name} as stored"
    parts = ", ".join(f"{n} {p}" for p, n in counts.most_common())
    return f"{graph_precision(graph).name} as stored (mixed per layer: {parts})"


def stored_precision_error(graph: Graph, asked: object) -> InputError:
    """Asking a stored-integer model for another precision: re-quantizing its integers would
    cost a graph the user never had, so the way is to start from the float model."""
    return InputError(
        f"model '{graph.name}' is already quantized ({graph_precision(graph)} as stored); "
        f"it runs at its stored precision (give no precision); to study {asked}, start from "
        f"the float model"
    )
