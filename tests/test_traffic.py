"""The loop-nest memory model (accelsim.sim.traffic) against an LRU cache simulation of the exact
address stream of small conv, depthwise and dense loop nests (every element access replayed
through a fully associative LRU cache of the same capacity)."""

from __future__ import annotations

import itertools
import math
from collections import OrderedDict

import pytest

from accelsim.sim.traffic import Access, Level, Loop, fetches, level_traffic


def lru_misses(nest, accesses, capacity):
    names = [lp.name for lp in nest]
    cache: OrderedDict = OrderedDict()
    used = 0.0
    misses = {a.tensor: 0.0 for a in accesses}
    for idx in itertools.product(*[range(lp.extent) for lp in nest]):
        env = dict(zip(names, idx))
        for a in accesses:
            key = (a.tensor,) + tuple(sum(env[n] * c for n, c in terms) for _, terms in a.dims)
            if key in cache:
                cache.move_to_end(key)
                continue
            misses[a.tensor] += a.elem_bytes
            cache[key] = a.elem_bytes
            used += a.elem_bytes
            while used > capacity:
                used -= cache.popitem(last=False)[1]
    return misses


def conv(order, H=6, W=8, C=8, K=8, R=3, ow_t=4, oc_t=4):
    ext = {
        "oh": H,
        "ow.o": W // ow_t,
        "oc.o": K // oc_t,
        "kh": R,
        "kw": R,
        "ic": C,
        "ow.i": ow_t,
        "oc.i": oc_t,
    }
    x = Access(
        "x",
        1,
        (
            (H + R - 1, (("oh", 1), ("kh", 1))),
            (W + R - 1, (("ow.o", ow_t), ("ow.i", 1), ("kw", 1))),
            (C, (("ic", 1),)),
        ),
    )
    w = Access(
        "w",
        1,
        (
            (K, (("oc.o", oc_t), ("oc.i", 1))),
            (R, (("kh", 1),)),
            (R, (("kw", 1),)),
            (C, (("ic", 1),)),
        ),
        resident=False,
    )
    y = Access(
        "y",
        4,
        ((H, (("oh", 1),)), (W, (("ow.o", ow_t), ("ow.i", 1))), (K, (("oc.o", oc_t), ("oc.i", 1)))),
    )
    return [Loop(n, ext[n]) for n in order], [x, w, y]


def dense(order, K=32, C=24, oc_t=8):
    ext = {"oc.o": K // oc_t, "ic": C, "oc.i": oc_t}
    x = Access("x", 1, ((C, (("ic", 1),)),))
    w = Access("w", 1, ((K, (("oc.o", oc_t), ("oc.i", 1))), (C, (("ic", 1),))), resident=False)
    y = Access("y", 4, ((K, (("oc.o", oc_t), ("oc.i", 1))),))
    return [Loop(n, ext[n]) for n in order], [x, w, y]


def depthwise(order, H=8, W=8, C=16, R=3, c_t=8):
    ext = {"oh": H, "ow": W, "c.o": C // c_t, "c.i": c_t, "kh": R, "kw": R}
    x = Access(
        "x",
        1,
        (
            (H + R - 1, (("oh", 1), ("kh", 1))),
            (W + R - 1, (("ow", 1), ("kw", 1))),
            (C, (("c.o", c_t), ("c.i", 1))),
        ),
    )
    w = Access(
        "w",
        1,
        ((C, (("c.o", c_t), ("c.i", 1))), (R, (("kh", 1),)), (R, (("kw", 1),))),
        resident=False,
    )
    y = Access("y", 1, ((H, (("oh", 1),)), (W, (("ow", 1),)), (C, (("c.o", c_t), ("c.i", 1)))))
    return [Loop(n, ext[n]) for n in order], [x, w, y]


CASES = {
    "conv, output tiles outside": conv(["oh", "ow.o", "oc.o", "kh", "kw", "ic", "ow.i", "oc.i"]),
    "conv, weights tiles outside": conv(["oc.o", "oh", "ow.o", "kh", "kw", "ic", "ow.i", "oc.i"]),
    "dense, weight-stationary order": dense(["oc.o", "ic", "oc.i"]),
    "dense, input-stationary order": dense(["ic", "oc.o", "oc.i"]),
    "depthwise": depthwise(["oh", "c.o", "ow", "kh", "kw", "c.i"]),
}
CAPACITIES = (16, 32, 64, 128, 256, 512, 1024, 2048, 8192)


def test_model_tracks_an_lru_cache_over_capacities():
    ratios = []
    for name, (nest, acc) in CASES.items():
        for cap in CAPACITIES:
            model, lru = fetches(nest, acc, cap), lru_misses(nest, acc, cap)
            for t in model:
                ratios.append((name, cap, t, model[t], lru[t]))
    within2 = [r for r in ratios if 0.5 <= r[3] / r[4] <= 2.0]
    # measured when this test was written: 133 of 135 within 2x; the two misses are a working
    # set within 3 % of the capacity (LRU thrashes, the model assumes reuse) and a dense input
    # re-read that LRU keeps partly
    assert len(within2) >= 0.95 * len(ratios), [r for r in ratios if r not in within2]
    logs = sorted(abs(math.log(r[3] / r[4])) for r in ratios)
    assert logs[len(logs) // 2] < 0.05  # the median case is (near) exact


@pytest.mark.parametrize("name", list(CASES))
def test_regimes_are_exact(name):
    nest, acc = CASES[name]
    everything = sum(a.size_bytes() for a in acc)
    # everything fits: each byte is fetched once (compulsory misses)
    assert fetches(nest, acc, everything) == pytest.approx(lru_misses(nest, acc, everything))
    assert fetches(nest, acc, everything) == pytest.approx({a.tensor: a.size_bytes() for a in acc})
    # a cache smaller than one element of each: every access misses
    assert fetches(nest, acc, 4) == pytest.approx(lru_misses(nest, acc, 4))


def test_loop_order_decides_weight_traffic():
    """The ResNet-18 layer4 situation: a weight tile swept once per output tile. Same loops,
    weights' tile loop moved outermost: the weights come in once."""
    cap = 768
    out_first = conv(["oh", "ow.o", "oc.o", "kh", "kw", "ic", "ow.i", "oc.i"], K=16)
    w_first = conv(["oc.o", "oh", "ow.o", "kh", "kw", "ic", "ow.i", "oc.i"], K=16)
    assert fetches(*out_first, cap)["w"] > 10 * fetches(*w_first, cap)["w"]
    assert fetches(*out_first, cap)["w"] == lru_misses(*out_first, cap)["w"]
    assert fetches(*w_first, cap)["w"] == lru_misses(*w_first, cap)["w"]


def test_levels_serve_misses_of_the_level_above_and_activations_stay_home():
    nest, acc = CASES["conv, output tiles outside"]
    levels = [Level("L1", 256), Level("L2", 4096), Level("DRAM", math.inf)]
    served = level_traffic(nest, acc, levels, register_bytes=16)
    l1_miss = fetches(nest, acc, 256)
    # the activations fit in L2 (the previous layer left them there): DRAM serves weights only
    assert served["DRAM"] == pytest.approx(next(a for a in acc if a.tensor == "w").size_bytes())
    assert served["L2"] == pytest.approx(sum(l1_miss.values()))
    assert served["L1"] == pytest.approx(sum(fetches(nest, acc, 16).values()))
