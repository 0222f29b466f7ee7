"""Design-space exploration building blocks: Pareto fronts, the result cache."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from accelsim.core.cache import ResultCache, content_key
from accelsim.dse.pareto import dominates, pareto_mask

points = hnp.arrays(
    np.float64,
    st.tuples(st.integers(1, 40), st.integers(1, 4)),
    elements=st.integers(0, 6).map(float),
)


@settings(max_examples=300, deadline=None)
@given(points)
def test_point_is_on_front_exactly_when_nothing_dominates_it(v):
    mask = pareto_mask(v)
    for i in range(len(v)):
        dominated = any(dominates(v[j], v[i]) for j in range(len(v)) if j != i)
        assert mask[i] == (not dominated)


@settings(max_examples=100, deadline=None)
@given(points)
def test_front_is_nonempty_and_mutually_nondominated(v):
    front = v[pareto_mask(v)]
    assert len(front) >= 1
    for a in front:
        assert not any(dominates(b, a) for b in front)


def test_dominates_basics():
    assert dominates([1, 2], [2, 2]) and not dominates([2, 2], [2, 2])
    assert not dominates([1, 3], [2, 2]) and not dominates([2, 2], [1, 3])


def test_cache_roundtrip_and_keys(tmp_path):
    c = ResultCache("t", tmp_path)
    k = content_key("graph-hash", "w8a8", {"lanes": 32})
    assert k == content_key("graph-hash", "w8a8", {"lanes": 32})
    assert k != content_key("graph-hash", "w8a8", {"lanes": 64})
    assert c.get(k) is None and k not in c
    c.put(k, {"cycles": 12.5})
    assert c.get(k) == {"cycles": 12.5} and k in c
    # a torn write never leaves a readable partial entry: only .tmp files could remain
    assert not list(tmp_path.rglob("*.tmp"))


# -- sweeps --------------------------------------------------------------------------------------
import dataclasses  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import pytest  # noqa: E402

from accelsim.core.errors import AccelsimError  # noqa: E402
from accelsim.dse.sweep import SweepSpec, run_sweep, validate, write_outputs  # noqa: E402

GRID = [
    "--grid",
    "lanes=16,32,64",
    "--grid",
    "precision=w4a4,w8a8",
    "--grid",
    "scratchpad_kb=128,256",
]
SPEC = SweepSpec(
    ("mobilenet_v2",),
    "simd-accel",
    {"lanes": (16, 32, 64), "precision": ("w4a4", "w8a8"), "scratchpad_kb": (128, 256)},
    input_size=32,
)


def _sweep_cli(out, cache, *extra):
    env = dict(os.environ, ACCELSIM_CACHE=str(cache))
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "accelsim",
            "sweep",
            "--model",
            "mobilenet_v2",
            "--input-size",
            "32",
            *GRID,
            "--workers",
            "1",
            "--out",
            str(out),
            *extra,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_killed_sweep_resumes_and_recomputes_only_missing_points(tmp_path):
    # codegen fidelity: points take seconds, so the kill lands mid-sweep
    # uninterrupted reference run
    ref = _sweep_cli(tmp_path / "ref", tmp_path / "cache_ref", "--fidelity", "codegen")
    assert ref.wait(timeout=600) == 0, ref.stderr.read()
    # a second sweep, killed once a few points are cached
    cache = tmp_path / "cache"
    proc = _sweep_cli(tmp_path / "run", cache, "--fidelity", "codegen")
    deadline = time.time() + 300
    while time.time() < deadline and len(list(cache.rglob("*.json"))) < 3:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(list(cache.rglob("*.json")))
    assert 3 <= done_before < 12
    assert not (tmp_path / "run" / "points.csv").exists()  # nothing half-written
    again = _sweep_cli(tmp_path / "run", cache, "--fidelity", "codegen")
    out, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    assert f"({12 - done_before} computed, {done_before} from the cache)" in out
    assert (tmp_path / "run" / "points.csv").read_text() == (
        tmp_path / "ref" / "points.csv"
    ).read_text()
    assert (tmp_path / "run" / "pareto.csv").read_text() == (
        tmp_path / "ref" / "pareto.csv"
    ).read_text()
    assert "accel-sim" in (tmp_path / "run" / "points.csv").read_text().splitlines()[1]


def test_dask_cluster_gives_identical_results(tmp_path):
    distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")
    local = run_sweep(SPEC, cache_dir=str(tmp_path / "c1"), workers=1)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        remote = run_sweep(
            SPEC, cache_dir=str(tmp_path / "c2"), scheduler=cluster.scheduler_address
        )
    assert remote.computed == 12 and local.rows == remote.rows and local.pareto == remote.pareto
    assert {r["fidelity"] for r in remote.rows} == {"analytic"}  # the default
    files = write_outputs(remote, tmp_path / "out")
    assert all(f.exists() for f in files)


def test_fidelities_are_cached_apart_and_labelled(tmp_path):
    one = SweepSpec(
        ("mobilenet_v2",), "simd-accel", {"lanes": (64,), "precision": ("w8a8",)}, input_size=32
    )
    cache = str(tmp_path / "cache")
    fast = run_sweep(one, cache_dir=cache, workers=1)
    slow = run_sweep(dataclasses.replace(one, fidelity="codegen"), cache_dir=cache, workers=1)
    # the codegen point is computed, not served from the analytic entry of the same design
    assert (fast.computed, slow.computed, slow.cached) == (1, 1, 0)
    assert fast.rows[0]["fidelity"] == "analytic" and slow.rows[0]["fidelity"] == "accel-sim"
    # same design point, two fidelities: the analytic latency is within 10 % of accel-sim's
    assert fast.rows[0]["latency_s"] == pytest.approx(slow.rows[0]["latency_s"], rel=0.10)
    again = run_sweep(one, cache_dir=cache, workers=1)
    assert (again.computed, again.cached) == (0, 1) and again.rows == fast.rows


@pytest.mark.parametrize(
    "grid,fragment",
    [
        ({"lanez": (16,)}, "unknown grid key 'lanez'"),
        ({}, "the grid is empty"),
        ({"precision": ("fp32",)}, "cannot run at precision 'fp32'"),
        ({"lanes": (0,)}, "lanes"),
    ],
)
def test_bad_sweeps_fail_before_any_work(grid, fragment):
    with pytest.raises(AccelsimError, match=fragment):
        validate(SweepSpec(("mobilenet_v2",), "simd-accel", grid))


def test_unknown_fidelity_fails_before_any_work():
    with pytest.raises(AccelsimError, match="fidelity 'fast'"):
        validate(SweepSpec(("mobilenet_v2",), "simd-accel", {"lanes": (16,)}, fidelity="fast"))
