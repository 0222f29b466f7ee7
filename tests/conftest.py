"""Shared fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def kernel_cache(tmp_path_factory):
    """One kernel cache per test session (per xdist worker), outside the user's ~/.cache:
    kernels depend on shapes and schedules, not on calibrated values, so the test modules that
    compile the same layers share them."""
    mp = pytest.MonkeyPatch()
    path = tmp_path_factory.getbasetemp() / "kernel-cache"
    mp.setenv("ACCELSIM_CACHE", str(path))
    yield path
    mp.undo()
