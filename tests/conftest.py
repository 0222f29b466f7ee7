"""Shared fixtures."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="module")
def kernel_cache(tmp_path_factory):
    """One kernel cache per test session, outside the user's ~/.cache: kernels depend on shapes
    and schedules, not on calibrated values, so the test modules that compile the same layers
    share them. The xdist workers share it too (the directory above their own base temp):
    compiling dominates the suite (a cold MobileNet v2 verify on hvx-v68: 153 s, warm 18 s),
    and cache entries are written atomically, so a worker meets either none or a whole one."""
    mp = pytest.MonkeyPatch()
    base = tmp_path_factory.getbasetemp()
    path = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "kernel-cache"
    mp.setenv("ACCELSIM_CACHE", str(path))
    yield path
    mp.undo()


# Modules that compile whole models for the DSP and CPU targets or hold one long test, heaviest
# first (sums of test seconds on two busy cores, from `pytest --durations=0`, 2026-12-03).
# Started first, and with `--dist worksteal` (an idle worker takes queued tests from the busy
# one), both xdist workers stay busy to the end: in collection (file name) order with `--dist
# load`, test_verify_models came last and one worker ran its long tail alone.
HEAVY_FIRST = (
    "test_corpus",  # ~700 s
    "test_verify_models",  # ~260 s
    "test_lower_new_ops",  # ~180 s
    "test_stored",  # ~170 s
    "test_qat",  # ~100 s, 93 s of it one fixture (the quick study's training)
    "test_dse",  # ~80 s, 67 s of it one test (a killed sweep)
    "test_tflite",  # ~135 s
    "test_lower",  # ~125 s
    "test_calibration",  # ~105 s
    "test_accel",  # ~90 s
    "test_dyncount",  # ~90 s
    "test_kernels",  # ~80 s
    "test_i8mm",  # ~45 s
)


def pytest_collection_modifyitems(session, config, items):
    """Heavy modules first, each module's tests kept together and in their own order (module
    fixtures are built once)."""
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.module.__name__ if item.module else "", len(rank)))
