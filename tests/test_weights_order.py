"""`weights_order` (schedules/vliw-dsp.yaml, `accelsim.lower.schedule.weights_first`): a
convolution whose weights outweigh its input runs its output-channel blocks outermost, split
over the HVX contexts, so each block of weights is fetched once; with the rows outermost a
layer whose weights do not stay cached fetches them again per row (ResNet-50's layer4 on
hvx-v68: 16.5 MB from DRAM for 2.4 MB of weights). The split is verified under qemu, and the
analytic memory model takes the same order."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from accelsim import api
from accelsim.core.precision import parse_precision
from accelsim.core.target import load_target
from accelsim.kernels import emulate
from accelsim.lower.lower import lower_node
from accelsim.lower.schedule import recipes_for
from accelsim.model import zoo
from accelsim.model.ops import op_class
from accelsim.quant import calibdata
from accelsim.quant.ptq import CalibrationData, quantize_graph
from accelsim.sim import analytic, loopnest
from tests.layers import one_layer

pytestmark = pytest.mark.usefixtures("kernel_cache")

_needs_hexagon = pytest.mark.skipif(
    bool(emulate.missing_tools("hexagon")),
    reason="hexagon tools absent (scripts/install-system-deps.sh)",
)


def _conv(cin: int, cout: int, k: int, size: int, precision: str = "w8a8"):
    """One quantized conv2d, k x k, pad k // 2, on a size x size input."""
    rng = np.random.default_rng(cin + cout + k)
    w = rng.uniform(-1, 1, (cout, cin, k, k))
    g = one_layer("wo", (1, cin, size, size), w, rng.standard_normal(cout))
    data = CalibrationData((rng.uniform(-1, 1, (1, cin, size, size)).astype(np.float32),), "")
    return quantize_graph(g, parse_precision(precision), data).graph


@_needs_hexagon
def test_weight_heavy_layer_splits_its_channel_blocks_over_the_contexts():
    """3x3, 64 -> 256 channels on 6 x 6 pixels (147 KB of weights, 2.3 KB of input): the four
    blocks of 64 channels go one to each context (6 rows would leave a quarter of them idle),
    and the outputs are the reference's under qemu."""
    q = _conv(64, 256, 3, 6)
    layer = lower_node(q, q.node("layer"), load_target("hvx-v68"))
    sched = layer.schedule
    assert sched.order[:3] == ("n", "oc.o", "oh"), sched.order
    assert sched.parallel == "oc.o"
    assert any("weights_order" in n for n in sched.notes)
    checked = api.verify(q, "hvx-v68")
    conv = next(c for c in checked.layers if c.name == "layer")
    assert conv.elements == 6 * 6 * 256 and checked.mismatches == 0, checked.to_json()


@pytest.mark.parametrize("precision", ["w16a16", "fp32"])
def test_every_section_of_the_recipe_places_its_loops(precision):
    """The 16-bit (vdmpy) and fp32 (scalar core) sections set their own loop order, so their own
    `weights_order` too (an inherited one would miss their `oc.v` loop)."""
    q = _conv(64, 256, 3, 6, precision)
    layer = lower_node(q, q.node("layer"), load_target("hvx-v68"))
    assert layer.schedule.order[:2] == ("n", "oc.o"), layer.schedule.order


@pytest.mark.parametrize(
    "cin, cout, k, size",
    [
        (16, 64, 1, 32),  # the input (16 KB) outweighs the weights (1 KB)
        (96, 576, 1, 14),  # MobileNet v2 features.12.conv.0.0: 9 blocks on 4 contexts
    ],
)
def test_rows_stay_outermost_otherwise(cin, cout, k, size):
    """Where the input outweighs the weights, or the channel blocks split over the contexts
    less evenly than the rows (9 blocks of 64 on 4 contexts: 3, 3, 3, 0), the rows stay
    outermost."""
    q = _conv(cin, cout, k, size)
    layer = lower_node(q, q.node("layer"), load_target("hvx-v68"))
    assert layer.schedule.order[1] == "oh", layer.schedule.order
    assert not any("weights_order" in n for n in layer.schedule.notes)


def test_analytic_model_fetches_the_weights_once():
    """ResNet-50 layer4.0.conv2 (3x3, 512 -> 512 at 7 x 7, 2.36 MB of int8 weights) on
    hvx-v68, analytic memory model: the recipe's loops take `weights_order`, and DRAM serves
    the weights about once; the same recipe without `weights_order` re-reads them per output
    row (7 rows)."""
    g = zoo.build("resnet50", input_size=224)
    q = quantize_graph(g, parse_precision("w8a8"), calibdata.random(g, 1)).graph
    node = q.node("layer4.0.conv2")
    t = load_target("hvx-v68")
    recipe = recipes_for(t).recipe(op_class(q, node), "w8a8", node.op)
    prec = parse_precision("w8a8")
    weights = q.tensors[node.inputs[1]].nbytes
    levels = analytic.memory_levels(t)

    def dram(r) -> float:
        loops = loopnest.recipe_loops(q, node, r, t.codegen.features, prec, t.hardware_threads)
        return analytic.layer_traffic(q, node, levels, t, prec, loops)[levels[-1].name]

    values = {k: v for k, v in recipe.values.items() if k != "weights_order"}
    plain = dataclasses.replace(recipe, values=values)
    assert loopnest.recipe_loops(q, node, recipe, t.codegen.features, prec, 4)[1][0] == "oc.o"
    assert dram(recipe) <= 1.1 * weights
    assert dram(plain) >= 5 * weights
    # the threads share its 8 blocks of 64 channels, not its 7 rows
    assert analytic.parallel_extent(q, node, t, prec)[0] == 8
