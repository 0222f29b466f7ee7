"""The accelerator's analytic fidelity (`accelsim.accel.analytic`) against its oracle, the
instruction-level simulator running the TVM-generated programs (`accelsim.accel.sim`, "accel-sim").

Small inputs (32x32) keep accel-sim fast; benchmarks/sweep_benchmark.py --calibrate prints the
full-size table (MobileNet v2, ResNet-18/50, four precisions, three designs).
"""

import subprocess
import sys

import pytest

from accelsim.accel import analytic, sim
from accelsim.accel.arch import load_config
from accelsim.accel.compute import NotAccelerated, layer_def
from accelsim.accel.schedule import choose_tiles, load_recipes
from accelsim.core.precision import parse_precision
from accelsim.model import zoo
from accelsim.quant import calibdata
from accelsim.quant.ptq import quantize_graph

CASES = [
    ("mobilenet_v2", "w4a8", "simd-accel"),
    ("mobilenet_v2", "w8a8", "simd-accel-edge"),
    ("resnet18", "w8a8", "simd-accel"),
    ("resnet18", "w4a4", "simd-accel-wide"),
]
_GRAPHS: dict = {}


def _graph(model, precision):
    if (model, precision) not in _GRAPHS:
        g = zoo.build(model, input_size=32)
        _GRAPHS[(model, precision)] = quantize_graph(
            g, parse_precision(precision), calibdata.random(g, 1)
        ).graph
    return _GRAPHS[(model, precision)]


def _accel_layers(ref, an):
    return [(r, a) for r, a in zip(ref, an) if "host core" not in r.notes]


@pytest.fixture(scope="module")
def runs():
    out = {}
    for model, prec, var in CASES:
        g, cfg = _graph(model, prec), load_config(var)
        out[(model, prec, var)] = (
            g,
            cfg,
            sim.simulate_graph(g, cfg),
            analytic.simulate_graph(g, cfg),
        )
    return out


def test_analytic_imports_no_tvm():
    code = (
        "import sys\n"
        "from accelsim.accel import analytic\n"
        "from accelsim.model import zoo\n"
        "from accelsim.quant import calibdata\n"
        "from accelsim.core.precision import parse_precision\n"
        "from accelsim.quant.ptq import quantize_graph\n"
        "g = zoo.build('mobilenet_v2', input_size=32)\n"
        "q = quantize_graph(g, parse_precision('w8a8'), calibdata.random(g, 1)).graph\n"
        "costs = analytic.simulate_graph(q, 'simd-accel')\n"
        "assert len(costs) == len(q.nodes) and sum(c.cycles for c in costs) > 0\n"
        "bad = sorted(m for m in sys.modules if m == 'tvm' or m.startswith('tvm.'))\n"
        "print('TVM' if bad else 'NO-TVM', bad[:3])\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("NO-TVM"), r.stdout


def test_whole_model_and_per_layer_error(runs):
    print(
        f"\n{'model':13s} {'prec':6s} {'design':16s} {'latency':>8s} {'energy':>8s} "
        f"{'DRAM B':>8s} {'mean|layer|':>11s} {'max|layer|':>10s}"
    )
    for (model, prec, var), (_g, _cfg, ref, an) in runs.items():
        pairs = _accel_layers(ref, an)
        errs = [abs(a.cycles / r.cycles - 1) for r, a in pairs]
        lat = sum(a.latency_s for a in an) / sum(r.latency_s for r in ref) - 1
        en = sum(a.energy_j for a in an) / sum(r.energy_j for r in ref) - 1
        dram = (
            sum(a.bytes_moved["dram"] for r, a in pairs)
            / sum(r.bytes_moved["dram"] for r, a in pairs)
            - 1
        )
        print(
            f"{model:13s} {prec:6s} {var:16s} {lat:+8.3f} {en:+8.3f} {dram:+8.4f} "
            f"{sum(errs) / len(errs):11.3f} {max(errs):10.3f}"
        )
        assert abs(lat) < 0.10 and abs(en) < 0.05
        assert sum(errs) / len(errs) < 0.10 and max(errs) < 0.35
        # traffic is counted, not modelled: DRAM bytes (whole bursts) per layer within 1 %
        for r, a in pairs:
            assert a.bytes_moved["dram"] == pytest.approx(r.bytes_moved["dram"], rel=0.01), r.name
            for sp in ("act", "wgt", "acc", "out", "register_file"):
                assert a.bytes_moved[sp] == pytest.approx(r.bytes_moved[sp], rel=0.02, abs=64), (
                    r.name,
                    sp,
                )
        assert all(a.fidelity == "analytic" for a in an)
        assert [a.name for a in an] == [r.name for r in ref]


def test_layers_obey_their_rooflines(runs):
    for (_model, prec, _var), (_g, cfg, ref, an) in runs.items():
        for _r, a in _accel_layers(ref, an):
            if a.macs:
                assert a.cycles >= a.macs / cfg.peak_macs_per_cycle(prec) - 1e-6, a.name
                assert 0 < a.utilization <= 1.0
            # every read goes through the one load engine
            assert a.cycles >= a.bytes_moved["dram_read"] / cfg.dma_bytes_per_cycle - 1e-6, a.name
            assert a.cycles >= a.bytes_moved["dram"] / cfg.dram_bytes_per_cycle - 1e-6, a.name
            assert a.bound in ("compute", "memory")


def test_shape_only_layers_tile_like_the_code_generator(runs):
    """`LayerShape` (no TVM) and `compute.layer_def` (TVM) give the tiler the same problem."""
    recipes = load_recipes()
    for (_model, prec, _var), (g, cfg, _, _) in runs.items():
        for node in g.nodes:
            try:
                ld = layer_def(g, node, cfg)
            except NotAccelerated as exc:
                with pytest.raises(NotAccelerated, match=str(exc)[:20]):
                    analytic.layer_shape(g, node, cfg)
                continue
            s = analytic.layer_shape(g, node, cfg)
            recipe = recipes.recipe(ld.op_class, ld.mode or prec)
            a, b = choose_tiles(ld, recipe, cfg), analytic.choose_tiles_fast(s, recipe, cfg)
            assert _choice(a) == _choice(b), node.name
            assert s.macs == ld.macs and {k: v.shape for k, v in s.dram.items()} == {
                k: v.shape for k, v in ld.dram.items()
            }


def _choice(c):
    return (
        c.dataflow,
        dict(c.tiles),
        c.traffic_bytes,
        c.tiles_count,
        dict(c.footprint),
        c.slots,
        c.epilogue_loop,
        c.reduce_loop,
    )


@pytest.mark.parametrize("lanes,kb,double", [(16, 176, True), (256, 176, False), (32, 704, False)])
def test_vectorised_tiler_is_the_code_generators_tiler(lanes, kb, double):
    """`choose_tiles_fast` picks exactly what `schedule.choose_tiles` picks, on designs far from
    the shipped ones (many lane-block candidates, tight scratchpads, single buffering)."""
    recipes = load_recipes()
    cfg = load_config("simd-accel").with_params(
        lanes=lanes, scratchpad_kb=kb, double_buffering=double
    )
    for prec in ("w4a4", "w16a16"):
        g = _graph("mobilenet_v2", prec)
        for node in g.nodes:
            try:
                s = analytic.layer_shape(g, node, cfg)
            except NotAccelerated:
                continue
            recipe = recipes.recipe(s.op_class, s.mode or prec)
            assert _choice(choose_tiles(s, recipe, cfg)) == _choice(
                analytic.choose_tiles_fast(s, recipe, cfg)
            ), node.name


def _ratios(base_ref, base_an, new_ref, new_an):
    return [
        (r0, a0, r1.cycles / r0.cycles, a1.cycles / a0.cycles)
        for (r0, a0), (r1, a1) in zip(
            _accel_layers(base_ref, base_an), _accel_layers(new_ref, new_an)
        )
    ]


def test_halving_dma_bandwidth_slows_memory_bound_layers_only(runs):
    g, cfg, ref, an = runs[("resnet18", "w8a8", "simd-accel")]
    half = cfg.with_params(
        dma_bytes_per_cycle=cfg.dma_bytes_per_cycle / 2,
        dram_bytes_per_cycle=cfg.dram_bytes_per_cycle / 2,
    )
    rows = _ratios(ref, an, sim.simulate_graph(g, half), analytic.simulate_graph(g, half))
    slowed = 0
    for _r0, a0, ref_ratio, an_ratio in rows:
        assert an_ratio == pytest.approx(ref_ratio, abs=0.12), (a0.name, ref_ratio, an_ratio)
        if a0.bound == "compute":
            assert an_ratio < 1.08, a0.name  # compute-bound: bandwidth barely matters
        slowed += an_ratio > 1.3
    assert slowed >= 3  # and the memory-bound ones do slow down


def test_doubling_lanes_halves_compute_bound_layers(runs):
    g, cfg, _, _ = runs[("resnet18", "w8a8", "simd-accel")]
    # at 32x32 every layer waits for its weights: a fast memory makes the convolutions
    # compute-bound (same programs: bandwidths do not shape code)
    fast = cfg.with_params(dma_bytes_per_cycle=128, dram_bytes_per_cycle=128)
    ref, an = sim.simulate_graph(g, fast), analytic.simulate_graph(g, fast)
    wide = fast.with_params(lanes=cfg.lanes * 2)
    rows = _ratios(ref, an, sim.simulate_graph(g, wide), analytic.simulate_graph(g, wide))
    halved = 0
    for _r0, a0, ref_ratio, an_ratio in rows:
        assert an_ratio == pytest.approx(ref_ratio, abs=0.12), (a0.name, ref_ratio, an_ratio)
        node = g.node(a0.name)
        fills = a0.op == "conv2d" and g.tensors[node.inputs[1]].shape[0] >= 2 * cfg.lanes
        if a0.bound == "compute" and fills:  # output channels fill the doubled lanes
            assert an_ratio < 0.7, a0.name
            halved += 1
    assert halved >= 3


def test_precision_and_design_order_match_accel_sim(runs):
    """A sweep ranks design points: the analytic order of the four cases' latencies and
    energies per MAC is accel-sim's."""
    keys = list(runs)

    def per_mac(costs, attr):
        return sum(getattr(c, attr) for c in costs) / max(1, sum(c.macs for c in costs))

    for attr in ("latency_s", "energy_j"):
        ref = sorted(keys, key=lambda k: per_mac(runs[k][2], attr))
        an = sorted(keys, key=lambda k: per_mac(runs[k][3], attr))
        assert ref == an, attr
