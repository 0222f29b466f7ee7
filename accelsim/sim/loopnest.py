"""The loop nest of a conv / depthwise / dense kernel and how it indexes its tensors, for the
memory model (`accelsim.sim.traffic`).

Loops are named as the schedule recipes name them (`accelsim.lower.schedule`): an operator axis
`a` (n, oh, ow, oc, kh, kw, ic for conv2d and dense; c for depthwise) becomes `a`, or `a.o` /
`a.i` when tiled, plus `a.v` for the innermost block (vector lanes or the intrinsic's depth).
Two sources give the named loops:
- codegen fidelity: the scheduled TIR of the compiled kernel (`Kernel.loops`);
- analytic fidelity: the recipe alone (`recipe_loops`): its `order`, its `tile` sizes resolved
  against the layer's shape as the scheduler resolves them, no compilation.
Loops a source does not name (a vectorized or tensorized block) are added innermost, so every
axis spans its full size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from accelsim.model.graph import Graph, Node
from accelsim.model.ops import op_class, spatial_axes
from accelsim.sim.traffic import Access, Loop

NEST_OPS = ("conv2d", "depthwise_conv2d", "dense")


def _axis(name: str) -> str:
    return name.split(".")[0]


def axis_sizes(graph: Graph, node: Node) -> dict[str, int]:
    """Extent of every operator axis of a conv2d / depthwise / dense node."""
    kind = op_class(graph, node)
    out = graph.tensors[node.outputs[0]].shape
    w = graph.tensors[node.inputs[1]].shape
    if kind == "dense":
        return {"n": 1, "oc": w[0], "ic": w[1]}
    ca, ha, wa = spatial_axes(node.attr("data_layout", "NCHW"))
    sizes = {"n": out[0], "oh": out[ha], "ow": out[wa], "kh": w[2], "kw": w[3]}
    if kind == "depthwise_conv2d":
        sizes["c"] = out[ca]
    else:
        sizes["oc"], sizes["ic"] = w[0], w[1]
    return sizes


def complete(named: Sequence[tuple[str, int]], sizes: Mapping[str, int]) -> list[Loop]:
    """The named loops (outermost first) plus, innermost, one loop per axis for the part of the
    axis no named loop covers; loops of axes the operator lacks are dropped."""
    loops = [Loop(n, int(e)) for n, e in named if _axis(n) in sizes and int(e) >= 1]
    covered: dict[str, int] = {}
    for lp in loops:
        covered[_axis(lp.name)] = covered.get(_axis(lp.name), 1) * lp.extent
    for a, size in sizes.items():
        rest = max(1, size // covered.get(a, 1))
        if rest > 1:
            loops.append(Loop(f"{a}.rest", rest))
    return loops


def _coefs(loops: Sequence[Loop], axis: str) -> list[tuple[str, int]]:
    """(loop, elements of `axis` per step): inner loops of an axis step by one element, each
    outer one by the product of the extents of the axis's loops inside it."""
    mine = [lp for lp in loops if _axis(lp.name) == axis]
    # the split order of an axis: a.o outside a.i outside a.v / a.rest, whatever the nest order
    rank = {"o": 0, "": 1, "i": 2, "v": 3, "rest": 4}
    mine.sort(key=lambda lp: rank.get(lp.name.partition(".")[2], 1))
    out, step = [], 1
    for lp in reversed(mine):
        out.append((lp.name, step))
        step *= lp.extent
    return out


def accesses(graph: Graph, node: Node, loops: Sequence[Loop]) -> list[Access]:
    """Input, weights and output of the node as affine functions of `loops`."""
    kind = op_class(graph, node)
    x = graph.tensors[node.inputs[0]]
    w = graph.tensors[node.inputs[1]]
    y = graph.tensors[node.outputs[0]]
    eb = lambda t: t.nbytes / max(t.size, 1)  # noqa: E731 - bytes per element
    c = {a: _coefs(loops, a) for a in {_axis(lp.name) for lp in loops}}
    sc = lambda a, k: tuple((n, s * k) for n, s in c.get(a, []))  # noqa: E731
    if kind == "dense":
        return [
            Access(x.name, eb(x), ((w.shape[1], sc("ic", 1)),)),
            Access(
                w.name,
                eb(w),
                ((w.shape[0], sc("oc", 1)), (w.shape[1], sc("ic", 1))),
                resident=False,
            ),
            Access(y.name, eb(y), ((w.shape[0], sc("oc", 1)),)),
        ]
    ca, ha, wa = spatial_axes(node.attr("data_layout", "NCHW"))
    sh, sw = node.attr("strides", (1, 1))
    dh, dw = node.attr("dilations", (1, 1))
    ch = "c" if kind == "depthwise_conv2d" else "ic"
    oc = "c" if kind == "depthwise_conv2d" else "oc"
    xa = [
        (x.shape[ha], sc("oh", sh) + sc("kh", dh)),
        (x.shape[wa], sc("ow", sw) + sc("kw", dw)),
        (x.shape[ca], sc(ch, 1)),
    ]
    wa_ = [(w.shape[0], sc(oc, 1)), (w.shape[2], sc("kh", 1)), (w.shape[3], sc("kw", 1))]
    if kind != "depthwise_conv2d":
        wa_.append((w.shape[1], sc("ic", 1)))
    ya = [(y.shape[ha], sc("oh", 1)), (y.shape[wa], sc("ow", 1)), (y.shape[ca], sc(oc, 1))]
    return [
        Access(x.name, eb(x), tuple(xa)),
        Access(w.name, eb(w), tuple(wa_), resident=False),
        Access(y.name, eb(y), tuple(ya)),
    ]


def split_limits(recipe, loops) -> tuple[set[str], set[str]]:
    """(reduction loops, loops a thread split stops at) among a conv2d's recipe `loops`, for
    `accelsim.lower.schedule.weights_first` / `lead_loops`: the kernel and input-channel loops;
    the recipe's unrolled and vectorized loops."""
    reduce = {n for n in loops if n.split(".")[0] in ("kh", "kw", "ic")}
    return reduce, {*(recipe.get("unroll") or []), recipe.get("vectorize")}


def recipe_loops(
    graph: Graph, node: Node, recipe, features=(), precision=None, contexts: int = 1
) -> list[tuple[str, int]]:
    """The named loops of the recipe's `order` (or its `weights_order` where the scheduler
    would take it, on `contexts` threads) with extents from its `tile` sizes (the scheduler's
    `resolve_size` rule; blocks are left to `complete`), outermost first; the tile of the
    intrinsic the target's `features` and the layer's `precision` would take
    (`accelsim.lower.schedule.tile_of`)."""
    from accelsim.lower.schedule import pick_tile, resolve_size, tile_of, weights_first

    sizes = axis_sizes(graph, node)
    value = tile_of(recipe, features, precision)
    tiles = pick_tile(value, {a: (n, 1) for a, n in sizes.items()})[0]
    order = list(recipe.get("order") or [])
    extents: dict[str, int] = {}
    for a, size in sizes.items():
        if a in tiles:
            t = resolve_size(
                tiles[a], size, 1, recipe.where("tile", a), "elements", node.name, must_divide=False
            )
            t = max(1, min(t, size))
            extents[f"{a}.o"] = -(-size // t)
            extents[f"{a}.i"] = t
        else:
            extents[a] = size
    if node.op == "conv2d" and len(node.inputs) > 1:
        x, w = graph.tensors[node.inputs[0]], graph.tensors[node.inputs[1]]
        weights, inputs = w.nbytes, x.nbytes
        reduce, stop = split_limits(recipe, extents)
        if weights_first(recipe, (weights, inputs), order, extents, reduce, stop, contexts):
            order = list(recipe.get("weights_order"))
    return [(n, extents[n]) for n in order if n in extents]
