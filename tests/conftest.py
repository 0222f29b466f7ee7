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
