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


CPU_GRID = {
    "timing.pipes.vector": (1, 2),
    "codegen.features": ("+dotprod", "-dotprod"),
    "memory.levels.L1D.size_bytes": (16384, 65536),
    "memory.levels.L2.size_bytes": (65536, 262144),
    "timing.clock_hz": (1.2e9, 2.0e9),
    "memory.levels.DRAM.bandwidth_bytes_per_s": (1.7e10, 3.4e10),
    "timing.hardware_threads": (1, 3),
    "energy.static_power_w": (0.0, 0.05),
    "precision": ("w8a8", "w4a8"),
}
HVX_GRID = {
    "timing.hardware_threads": (1, 2, 3, 4),
    "memory.levels.VTCM.size_bytes": (262144, 4194304),
    "timing.clock_hz": (8e8, 1.2e9),
    "precision": ("w8a8", "w4a8"),
}


@pytest.mark.parametrize("target,grid", [("cortex-a55", CPU_GRID), ("hvx-v68", HVX_GRID)])
def test_vectorised_cpu_and_dsp_sweeps_equal_per_point_model(tmp_path, target, grid):
    spec = SweepSpec(("mobilenet_v2",), target, grid, input_size=32, sample=200)
    p = plan(spec)
    res = run_sweep(spec, cache_dir=str(tmp_path), workers=1, plan_=p)
    check = per_point_check(res, p, n=25, seed=2)
    assert max(check["max_relative_difference"].values()) == 0.0


def test_cpu_sweep_answers_the_architects_questions(tmp_path):
    """Dot product, a second vector pipe, a third HVX context: each helps, by the documented
    ratios where the layer is compute-bound."""
    a55 = run_sweep(
        SweepSpec(
            ("mobilenet_v2",),
            "cortex-a55",
            {"codegen.features": ("+dotprod", "-dotprod"), "timing.pipes.vector": (1, 2)},
            input_size=32,
        ),
        cache_dir=str(tmp_path),
        workers=1,
    ).table.set_index(["codegen.features", "timing.pipes.vector"])["latency_s"]
    assert a55[("+dotprod", 2)] < a55[("-dotprod", 2)] < a55[("-dotprod", 1)]
    hvx = (
        run_sweep(
            SweepSpec(
                ("mobilenet_v2",), "hvx-v68", {"timing.hardware_threads": (1, 2, 3)}, input_size=32
            ),
            cache_dir=str(tmp_path),
            workers=1,
        )
        .table["latency_s"]
        .tolist()
    )
    assert hvx[0] > hvx[1] > hvx[2]


@pytest.mark.parametrize(
    "target,grid,fragment",
    [
        ("cortex-a55", {"timing.pipes.vectr": (1,)}, "allowed: timing.clock_hz"),
        ("cortex-a55", {"memory.levels.L9.size_bytes": (1,)}, "'memory.levels.L9.size_bytes'"),
        ("cortex-a55", {"timing.pipes.vector": (1.5,)}, "expected a positive integer"),
        ("cortex-a55", {"codegen.features": ("+sve",)}, r"expected one of \+dotprod, -dotprod"),
        ("cortex-a55", {"timing.clock_hz": (0,)}, "timing.clock_hz=0"),
        ("hvx-v68", {"codegen.features": ("+dotprod",)}, "an aarch64 feature"),
        ("hvx-v68", {"precision": ("fp16",)}, "fp16"),
    ],
)
def test_bad_cpu_sweep_keys_and_values_are_one_line_errors(target, grid, fragment):
    with pytest.raises(AccelsimError, match=fragment) as err:
        plan(SweepSpec(("mobilenet_v2",), target, grid))
    assert "\n" not in str(err.value)


def test_area_is_an_objective_from_published_cells(tmp_path):
    spec = SweepSpec(
        ("mobilenet_v2",),
        "simd-accel",
        {"lanes": (16, 64, 256), "scratchpad_kb": (176, 352, 704), "technology_nm": (7, 16)},
        input_size=32,
        objectives=("latency_s", "area_mm2"),
    )
    res = run_sweep(spec, cache_dir=str(tmp_path), workers=1)
    t = res.table
    base = t[(t.lanes == 64) & (t.scratchpad_kb == 352) & (t.technology_nm == 16)].iloc[0]
    # by hand from Horowitz's 45 nm cells (8x8 multiply 282 um^2, 32-bit add 137 um^2, 32x32
    # multiply 3495 um^2) and TSMC 16 nm's 0.07 um^2 bit cell at 70 % array efficiency; the
    # SRAM is the scratchpads and the 16 ALU lanes' 512-byte VLUT table copies
    logic = (64 * (282 + 137 * 64 / 32) + 16 * (3495 + 4 * 137)) * (16 / 45) ** 2
    sram = (352 * 1024 + 16 * 512) * 8 * 0.07 / 0.7
    assert base.area_mm2 == pytest.approx((logic + sram) * 1e-6, rel=1e-12)
    # more SRAM, more lanes, an older node: more area
    assert t.groupby("scratchpad_kb").area_mm2.mean().is_monotonic_increasing
    assert t.groupby("lanes").area_mm2.mean().is_monotonic_increasing
    # the front is over the chosen objectives only: exactly the rows no other row dominates
    v = t[["latency_s", "area_mm2"]].to_numpy()
    for i in range(len(v)):
        dominated = any((v[j] <= v[i]).all() and (v[j] < v[i]).any() for j in range(len(v)))
        assert res.front[i] == (not dominated)


def _without_area(tmp_path, name):
    """A copy of a shipped target with its `area:` section and `area.*` assumptions removed."""
    from accelsim.core.target import load_target

    out, skip = [], False
    for line in open(load_target(name).path).read().splitlines():
        if line == "area:":
            skip = True
        elif skip and not line.startswith("  "):
            skip = False
        if not skip and not line.startswith("  area."):
            out.append(line)
    path = tmp_path / f"{name}.yaml"
    path.write_text("\n".join(out) + "\n")
    return str(path)


def test_area_objective_needs_an_area_section(tmp_path):
    with pytest.raises(AccelsimError, match="has no area: section"):
        plan(
            SweepSpec(
                ("mobilenet_v2",),
                _without_area(tmp_path, "kryo280"),
                {"timing.clock_hz": (1e9,)},
                objectives=("latency_s", "area_mm2"),
            )
        )
    with pytest.raises(AccelsimError, match="objective 'accuracy'"):
        plan(SweepSpec(("mobilenet_v2",), "simd-accel", {"lanes": (16,)}, objectives=("accuracy",)))


SWEPT_KINDS = ("cpu-simd", "vliw-dsp", "accelerator", "host")


def test_every_shipped_target_has_an_area_section():
    from accelsim.core.target import list_targets

    targets = [t for t in list_targets() if t.kind in SWEPT_KINDS]
    assert {t.kind for t in targets} == set(SWEPT_KINDS)
    for t in targets:
        a = t.area
        assert a, f"{t.path}: no area: section"
        assert a["sram_bitcell_um2"] > 0 and 0 < a["sram_array_efficiency"] <= 1, t.name
        # CPUs and DSPs give the core the sweep does not scale; accelerators are built from cells
        assert (a.get("core_logic_mm2") is not None) == (t.kind != "accelerator"), t.name
        # every area coefficient is either cited beside it or a listed assumption with a reason
        listed = {x.path for x in t.assumptions}
        assert "area.sram_array_efficiency" in listed, t.name
        if t.kind != "accelerator":
            assert "area.core_logic_mm2" in listed, t.name


@pytest.mark.parametrize(
    "target,grid",
    [
        ("cortex-a53", {"timing.clock_hz": (1e9,)}),
        ("neoverse-v2", {"timing.clock_hz": (1e9,)}),
        ("hvx-v62", {"timing.clock_hz": (1e9,)}),
        ("host", {"timing.clock_hz": (1e9,)}),
        ("simd-accel-edge", {"lanes": (64,)}),
    ],
)
def test_one_point_area_sweep_on_each_kind(tmp_path, target, grid):
    """area_mm2 as an objective on each kind of shipped target: the core logic plus at least
    its on-chip memory levels at the target's own bit cell."""
    from accelsim.core.area import area_spec
    from accelsim.core.target import load_target

    res = run_sweep(
        SweepSpec(
            ("mobilenet_v2",), target, grid, input_size=32, objectives=("latency_s", "area_mm2")
        ),
        cache_dir=str(tmp_path),
        workers=1,
    )
    assert len(res.table) == 1 and bool(res.front.all())
    area = float(res.table["area_mm2"].iloc[0])
    t = load_target(target)
    spec = area_spec(t, float(t.energy["technology_nm"]))
    if t.kind == "accelerator":
        assert area > 0
    else:
        onchip = sum(lv.get("size_bytes", 0) for lv in t.memory["levels"])
        assert spec.core_logic_mm2 + spec.sram_mm2(onchip) < area < 100


def test_outputs_a_person_explores(tmp_path):
    """explore.html opens in headless Chromium and draws every point (each an SVG marker
    plotly created) and the front; the Parquet file reads back as the CSV's table."""
    import shutil

    import pandas as pd

    from accelsim.dse.explore import drawn_in_browser
    from accelsim.dse.sweep import write_outputs

    spec = SweepSpec(
        ("mobilenet_v2", "resnet18"),
        "simd-accel",
        {"lanes": (16, 64), "scratchpad_kb": (176, 704), "dma_bytes_per_cycle": (4, 64)},
        input_size=32,
    )
    res = run_sweep(spec, cache_dir=str(tmp_path / "c"), workers=1)
    files = write_outputs(res, tmp_path / "out")
    names = {f.name for f in files}
    assert {"points.csv", "pareto.csv", "explore.html", "points.parquet"} <= names
    csv = pd.read_csv(tmp_path / "out" / "points.csv")
    pq = pd.read_parquet(tmp_path / "out" / "points.parquet")
    assert len(pq) == len(csv) == 16
    pd.testing.assert_frame_equal(pq.reset_index(drop=True), res.table.reset_index(drop=True))
    html = (tmp_path / "out" / "explore.html").read_text()
    assert "<script src" not in html  # self-contained: plotly.js inline, nothing fetched
    assert '"params":["precision","lanes","scratchpad_kb","dma_bytes_per_cycle"' in html
    if shutil.which("chromium") is None:
        pytest.skip("chromium is not installed")
    drawn = drawn_in_browser(str(tmp_path / "out" / "explore.html"))
    assert drawn["points"] == 16 and drawn["front"] == int(res.front.sum()) >= 2
    assert drawn["svg_markers"] == 16 + int(res.front.sum())


RESUME_SPEC = SweepSpec(
    ("mobilenet_v2",),
    "simd-accel",
    {
        "lanes": (16, 64),
        "precision": ("w4a8", "w8a8"),
        "dma_bytes_per_cycle": (4, 8, 16, 32, 64),
        "clock_hz": (5e8, 1e9, 1.5e9),
        "technology_nm": (7, 16, 28),
    },
    input_size=32,
    chunk_points=40,
)


class _Killed(Exception):
    pass


def test_killed_sweep_resumes_chunks_and_matches_an_uninterrupted_run(tmp_path):
    whole = run_sweep(RESUME_SPEC, cache_dir=str(tmp_path / "ref"), workers=1)
    assert len(whole.table) == 180 and whole.chunks_computed == 5

    def kill_after_two_chunks(done: int) -> None:
        if done >= 80:  # the process dies with two chunks on disk
            raise _Killed

    with pytest.raises(_Killed):
        run_sweep(
            RESUME_SPEC, cache_dir=str(tmp_path / "c"), workers=1, progress=kill_after_two_chunks
        )
    again = run_sweep(RESUME_SPEC, cache_dir=str(tmp_path / "c"), workers=1)
    assert (again.chunks_cached, again.chunks_computed) == (2, 3)
    assert (again.cached, again.computed) == (80, 100)
    assert again.table.equals(whole.table) and (again.front == whole.front).all()


def test_dask_local_cluster_gives_the_local_table(tmp_path):
    distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")
    local = run_sweep(RESUME_SPEC, cache_dir=str(tmp_path / "a"), workers=1)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        remote = run_sweep(
            RESUME_SPEC, cache_dir=str(tmp_path / "b"), scheduler=cluster.scheduler_address
        )
    assert remote.chunks_computed == 5
    assert remote.table.equals(local.table) and (remote.front == local.front).all()


def test_accuracy_objective_from_per_layer_sensitivities(tmp_path):
    spec = SweepSpec(
        ("digits_cnn",),
        "simd-accel",
        {"lanes": (16, 64), "precision": ("w4a4", "w8a8")},
        accuracy_samples=4,
        objectives=("latency_s", "accuracy_noise"),
    )
    res = run_sweep(spec, cache_dir=str(tmp_path), workers=1)
    noise = res.table.groupby("precision").accuracy_noise.agg(["min", "max"])
    # one value per precision (the design does not change the numerics); fewer bits, more noise
    assert (noise["min"] == noise["max"]).all()
    assert noise.loc["w4a4", "min"] > noise.loc["w8a8", "min"] > 0
    # the faster w4a4 designs and the more accurate w8a8 ones both reach the front
    assert set(res.table[res.front].precision) == {"w4a4", "w8a8"}
    with pytest.raises(AccelsimError, match="accuracy samples"):
        plan(
            SweepSpec(
                ("digits_cnn",), "simd-accel", {"lanes": (16,)}, objectives=("accuracy_noise",)
            )
        )


def test_cli_sweep_of_a_cpu_with_a_progress_bar_and_one_line_errors(tmp_path):
    import os
    import subprocess
    import sys

    env = dict(os.environ, ACCELSIM_CACHE=str(tmp_path / "cache"), ACCELSIM_PROGRESS="1")
    base = [sys.executable, "-m", "accelsim", "sweep", "--target", "cortex-a55"]
    ok = subprocess.run(
        [
            *base,
            "--input-size",
            "32",
            "--grid",
            "timing.clock_hz=1e9,2e9",
            "--grid",
            "codegen.features=+dotprod,-dotprod",
            "--workers",
            "1",
            "--out",
            str(tmp_path / "out"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert ok.returncode == 0, ok.stderr
    assert "4 points (4 computed, 0 from the cache)" in ok.stdout
    assert "points/s" in ok.stderr  # the tqdm bar counts points
    bad = subprocess.run(
        [*base, "--grid", "memory.levels.L2.size_byte=1", "--out", str(tmp_path / "bad")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    assert "did you mean 'memory.levels.L2.size_bytes'" in bad.stderr
    assert not (tmp_path / "bad").exists()
