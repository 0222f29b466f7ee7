"""Sweeps at scale: the vectorised analytic path equals the per-point model, chunks resume,
Dask gives the same table, every kind of target can be swept."""

import pytest

from accelsim.core.errors import AccelsimError
from accelsim.dse.sweep import SweepSpec, per_point_check, plan, run_sweep

ACCEL_GRID = {
    "lanes": (16, 64),
    "precision": ("w4a8", "w8a8"),
    "scratchpad_kb": (128, 352),
    "double_buffering": (True, False),
    "dma_bytes_per_cycle": (4, 16, 64),
    "accelerator.dram.bytes_per_cycle": (8, 32),
    "clock_hz": (5e8, 1.2e9),
    "technology_nm": (7, 28),
    "voltage_v": (0.7, 0.9),
    "dma_engines": (1, 2),
    "issue_cycles": (0, 2),
    "static_power_w": (0.01, 0.1),
}


def test_vectorised_accelerator_sweep_equals_per_point_model(tmp_path):
    spec = SweepSpec(("mobilenet_v2",), "simd-accel", ACCEL_GRID, input_size=32, sample=600)
    p = plan(spec)
    res = run_sweep(spec, cache_dir=str(tmp_path), workers=1, plan_=p)
    assert len(res.table) == 600 and res.computed == 600
    # every sampled point recomputed by the per-point model (a configuration per point, layer by
    # layer): the same floating-point operations in the same order, so bit for bit
    check = per_point_check(res, p, n=40, seed=1)
    assert check["points"] == 40
    assert max(check["max_relative_difference"].values()) == 0.0


def test_dotted_accelerator_keys_and_duplicates_are_checked():
    with pytest.raises(AccelsimError, match="name the same field"):
        plan(
            SweepSpec(
                ("mobilenet_v2",),
                "simd-accel",
                {"dma_bytes_per_cycle": (4,), "accelerator.dma.bytes_per_cycle": (8,)},
            )
        )
    with pytest.raises(AccelsimError, match=r"unknown grid key 'accelerator\.dma\.speed'"):
        plan(SweepSpec(("mobilenet_v2",), "simd-accel", {"accelerator.dma.speed": (4,)}))
    with pytest.raises(AccelsimError, match="clock_hz"):
        plan(SweepSpec(("mobilenet_v2",), "simd-accel", {"clock_hz": (-1,)}))
