"""Faults a run must survive: a kill and a rerun, cache entries corrupted in each way, a
read-only or full cache, two runs at once on one cache and one --out, hostile graph names, a
closed pipe, a missing optional extra; and the target schema's promise, by property tests: no
valid target yields a negative, zero-cycle or non-finite layer cost, every invalid one is
rejected by name."""

from __future__ import annotations

import builtins
import errno
import json
import math
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accelsim.core import cache as cache_mod
from accelsim.core.cache import CacheWarning, ResultCache
from accelsim.core.target import TargetError, parse_target
from tests.test_robustness import _onnx_model, run_cli

REPO = Path(__file__).resolve().parents[1]
SWEEP = ["sweep", "--model", "digits_cnn", "--grid", "lanes=16,32", "--workers", "1"]


def _env(cache: Path) -> dict:
    return dict(os.environ, ACCELSIM_CACHE=str(cache), PYTHONPATH=str(REPO))


def _cli(*argv: str, cache: Path, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "accelsim", *argv],
        env=_env(cache),
        capture_output=True,
        text=True,
        **kw,
    )


def _files(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def _no_timestamps(data: bytes) -> bytes:
    from accelsim.reporting.build import TIMESTAMP_PREFIX

    return b"\n".join(line for line in data.split(b"\n") if TIMESTAMP_PREFIX.encode() not in line)


# ---------------------------------------------------------------------------------------------
# a kill, then a rerun
# ---------------------------------------------------------------------------------------------


def test_killed_report_rerun_is_identical_and_leaves_no_temporaries(tmp_path):
    cache = tmp_path / "cache"
    argv = ["report", "--model", "digits_cnn", "--target", "cortex-a76", "--precision", "w8a8"]
    argv += ["--accuracy="]
    out, ref = tmp_path / "out", tmp_path / "ref"
    assert _cli(*argv, "--out", str(out), cache=cache).returncode == 0
    out.rename(ref)  # the pages name their --out: the rerun writes to the same path
    proc = subprocess.Popen(
        [sys.executable, "-m", "accelsim", *argv, "--out", str(out)],
        env=_env(tmp_path / "cache2"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if out.is_dir() and any(out.iterdir()):  # killed while it writes its outputs
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # whatever the kill left, plus a temporary of a writer that is certainly dead
    out.mkdir(exist_ok=True)
    (out / f".summary.csv.pid{_dead_pid()}-x1y2z3.tmp").write_text("half a row")
    rerun = _cli(*argv, "--out", str(out), cache=tmp_path / "cache2")
    assert rerun.returncode == 0, rerun.stderr
    got, want = _files(out), _files(ref)
    assert not [f for f in got if f.endswith(".tmp")], sorted(got)
    assert sorted(got) == sorted(want)
    for name in want:
        if name.endswith((".html", ".md")):
            assert _no_timestamps(got[name]) == _no_timestamps(want[name]), name
        else:
            assert got[name] == want[name], name


# ---------------------------------------------------------------------------------------------
# the result cache: every kind of bad entry is a miss, recomputed, with one warning
# ---------------------------------------------------------------------------------------------

CORRUPT = {
    "bytes": b"\xff\xfe\x00garbage",
    "empty": b"",
    "type": b"[1, 2, 3]",
    "nan": None,  # the real entry with latency_s = NaN
    "string number": None,  # the real entry with latency_s = "fast"
    "missing key": None,  # the real entry without energy_j
    "huge": None,  # 1e999: infinity once parsed
}


def _corrupt(entry: Path, kind: str) -> None:
    """Spoil one cached entry (a point's metrics, or a chunk's metric lists) the `kind` way."""
    if CORRUPT[kind] is not None:
        entry.write_bytes(CORRUPT[kind])  # type: ignore[arg-type]
        return
    d = json.loads(entry.read_text())

    def first(value):
        if isinstance(d["latency_s"], list):
            return [value, *d["latency_s"][1:]]
        return value

    if kind == "nan":
        entry.write_text(json.dumps({**d, "latency_s": first(float("nan"))}))
    elif kind == "string number":
        entry.write_text(json.dumps({**d, "latency_s": first("fast")}))
    elif kind == "missing key":
        d.pop("energy_j")
        entry.write_text(json.dumps(d))
    else:
        entry.write_text(json.dumps({**d, "latency_s": first(12345.5)}).replace("12345.5", "1e999"))


def _reference(tmp_path_factory, name: str, argv: list[str]) -> Path:
    """A clean run of `argv` with its own cache: what every faulty run must reproduce."""
    d = tmp_path_factory.mktemp(name)
    mp = pytest.MonkeyPatch()
    mp.setenv("ACCELSIM_CACHE", str(d / "cache"))
    code, _, err = run_cli([*argv, "--out", str(d / "out")])
    mp.undo()
    assert code == 0, err
    return d


@pytest.fixture(scope="module")
def sweep_reference(tmp_path_factory):
    return _reference(tmp_path_factory, "sweepref", SWEEP)


def _warnings(err: str) -> list[str]:
    """The warning lines of a run's stderr (the CLI prints each on one line)."""
    return [line for line in err.splitlines() if line.startswith("accelsim: warning: ")]


def _sweep(tmp_path, monkeypatch, cache: Path) -> tuple[int, str, list[str]]:
    monkeypatch.setenv("ACCELSIM_CACHE", str(cache))
    code, _, err = run_cli([*SWEEP, "--out", str(tmp_path / "out")])
    return code, err, _warnings(err)


@pytest.mark.parametrize("kind", list(CORRUPT))
def test_corrupted_result_entry_is_recomputed(kind, sweep_reference, tmp_path, monkeypatch):
    import shutil

    cache = tmp_path / "cache"
    shutil.copytree(sweep_reference / "cache", cache)
    entries = sorted((cache / "sweep").rglob("*.json"))
    assert entries
    _corrupt(entries[0], kind)
    code, err, seen = _sweep(tmp_path, monkeypatch, cache)
    assert code == 0, err
    assert len(seen) == 1 and str(entries[0]) in seen[0], seen
    ref = sweep_reference / "out"
    for name in ("points.csv", "pareto.csv"):
        assert (tmp_path / "out" / name).read_bytes() == (ref / name).read_bytes()
    # the entry was rebuilt: a third run reads it back without a word
    assert _sweep(tmp_path, monkeypatch, cache)[2] == []


@pytest.mark.parametrize("failure", [errno.EROFS, errno.EACCES, errno.ENOSPC])
def test_unwritable_or_full_cache_runs_uncached(failure, sweep_reference, tmp_path, monkeypatch):
    """A read-only (EROFS, EACCES) or full (ENOSPC) cache directory: simulated in-process, as
    the tests run as root, for whom no directory is read-only."""
    from accelsim.core import fsutil

    cache = tmp_path / "cache"
    real = fsutil.tempfile.mkstemp

    def mkstemp(*args, dir=None, **kw):
        if dir is not None and str(dir).startswith(str(cache)):
            raise OSError(failure, os.strerror(failure))
        return real(*args, dir=dir, **kw)

    monkeypatch.setattr(fsutil.tempfile, "mkstemp", mkstemp)
    code, err, seen = _sweep(tmp_path, monkeypatch, cache)
    assert code == 0, err
    assert len(seen) == 1 and "running uncached" in seen[0], seen
    assert not list(cache.rglob("*.json"))
    ref = sweep_reference / "out"
    assert (tmp_path / "out" / "points.csv").read_bytes() == (ref / "points.csv").read_bytes()


def test_full_disk_while_writing_the_entry(tmp_path, monkeypatch):
    """ENOSPC from the write itself (the disk fills mid-entry): uncached, and no partial
    entry or temporary file is left."""
    from accelsim.core import fsutil

    real_fdopen = fsutil.os.fdopen

    class Full:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    def fdopen(fd, mode="r", *a, **kw):
        f = real_fdopen(fd, mode, *a, **kw)
        return Full(f) if "cachedir" in os.readlink(f"/proc/self/fd/{fd}") else f

    monkeypatch.setattr(fsutil.os, "fdopen", fdopen)
    rc = ResultCache("sweep", tmp_path / "cachedir")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        cache_mod.new_run()
        rc.put("ab" * 32, {"x": 1.0})
        rc.put("cd" * 32, {"x": 2.0})
    assert [str(w.message) for w in seen if w.category is CacheWarning] == [
        f"cache directory {tmp_path / 'cachedir'}: no space left on device (expected free "
        f"space to write); running uncached"
    ]
    assert not [p for p in (tmp_path / "cachedir").rglob("*") if p.is_file()]
    assert rc.get("ab" * 32) is None
    cache_mod.new_run()


# ---------------------------------------------------------------------------------------------
# the kernel cache: a bad entry of each kind is rebuilt; the library loaded is the entry's own
# ---------------------------------------------------------------------------------------------

COMPILE = [
    "compile",
    "digits_cnn",
    "--target",
    "host",
    "--precision",
    "w8a8",
    "--calib-random",
    "1",
]
KERNEL_FAULTS = {
    "empty object": lambda d: (d / "kernel.o").write_bytes(b""),
    "flipped byte": lambda d: (d / "kernel.o").write_bytes(
        bytes([(d / "kernel.o").read_bytes()[0] ^ 1]) + (d / "kernel.o").read_bytes()[1:]
    ),
    "meta bytes": lambda d: (d / "meta.json").write_bytes(b"\xff\xfe{"),
    "meta type": lambda d: (d / "meta.json").write_text("[1, 2]"),
    "meta nan": lambda d: (d / "meta.json").write_text(
        (d / "meta.json").read_text().replace('"compile_s": ', '"compile_s": NaN, "x": ', 1)
    ),
    "foreign library": lambda d: (d / "meta.json").write_text(
        json.dumps({**json.loads((d / "meta.json").read_text()), "lib": "../../../evil.so"})
    ),
    "library swapped": lambda d: (d / "kernel.so").write_bytes(b"\x7fELF not the compiled one"),
}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    return _reference(tmp_path_factory, "compiled", COMPILE)


@pytest.mark.parametrize("fault", list(KERNEL_FAULTS))
def test_corrupted_kernel_entry_is_rebuilt(fault, compiled, tmp_path, monkeypatch):
    import shutil

    cache = tmp_path / "cache"
    shutil.copytree(compiled / "cache", cache)
    entry = sorted(p.parent for p in cache.rglob("meta.json"))[0]
    KERNEL_FAULTS[fault](entry)
    from accelsim.kernels.compile import cache_stats

    monkeypatch.setenv("ACCELSIM_CACHE", str(cache))
    before = cache_stats()
    code, out, err = run_cli([*COMPILE, "--out", str(tmp_path / "out")])
    assert code == 0, err
    msgs = _warnings(err)
    assert len(msgs) == 1 and str(entry) in msgs[0] and "rebuilt" in msgs[0], msgs
    after = cache_stats()
    assert after["compiled"] - before["compiled"] == 1, (before, after)  # that entry only
    got, want = _files(tmp_path / "out"), _files(compiled / "out")
    assert sorted(got) == sorted(want)
    assert all(got[f] == want[f] for f in want if f.endswith((".o", ".s")))


def test_host_library_must_be_the_entrys_own(tmp_path, monkeypatch):
    from accelsim.kernels import compile as cg
    from accelsim.kernels.kernel import InstructionMix, Kernel

    monkeypatch.setenv("ACCELSIM_CACHE", str(tmp_path / "cache"))
    key = "ab" * 32
    evil = tmp_path / "evil" / "kernel.so"
    evil.parent.mkdir()
    evil.write_bytes(b"\x7fELF")
    entry = tmp_path / "cache" / key[:2] / key
    entry.mkdir(parents=True)
    (entry / "kernel.so").symlink_to(evil)  # inside the entry by name, outside by content

    def kernel(lib: Path) -> Kernel:
        mix = InstructionMix(vector_mac=0, load=0, store=0, other=0)
        return Kernel(
            "l", "dense", "dense", "w8a8", "host", "f", (), (), mix, None, {}, "a.s", "a.o",
            str(lib), key, 0.0, True,
        )  # fmt: skip

    for lib in (evil, entry / "kernel.so", entry / ".." / key / "other.so"):
        with pytest.raises(cg.CompileError, match="is not its cache entry's"):
            cg.runtime_module(kernel(lib))


def test_unwritable_kernel_cache_compiles_uncached(compiled, tmp_path, monkeypatch):
    from accelsim.core import fsutil

    cache = tmp_path / "cache"
    real = fsutil.tempfile.mkstemp

    def mkstemp(*args, dir=None, **kw):
        if dir is not None and str(dir).startswith(str(cache)):
            raise OSError(errno.EROFS, "Read-only file system")
        return real(*args, dir=dir, **kw)

    monkeypatch.setattr(fsutil.tempfile, "mkstemp", mkstemp)
    monkeypatch.setenv("ACCELSIM_CACHE", str(cache))
    code, _, err = run_cli([*COMPILE, "--out", str(tmp_path / "out")])
    assert code == 0, err
    msgs = _warnings(err)
    assert len(msgs) == 1 and "running uncached" in msgs[0], msgs
    assert not [p for p in cache.rglob("*") if p.is_file()]
    got, want = _files(tmp_path / "out"), _files(compiled / "out")
    assert all(got[f] == want[f] for f in want if f.endswith((".o", ".s")))


# ---------------------------------------------------------------------------------------------
# two runs at once on one cache and one --out
# ---------------------------------------------------------------------------------------------


def test_concurrent_runs_share_cache_and_out(sweep_reference, tmp_path):
    cache, out = tmp_path / "cache", tmp_path / "out"
    cmd = [sys.executable, "-m", "accelsim", *SWEEP, "--out", str(out)]
    procs = [
        subprocess.Popen(cmd, env=_env(cache), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    results = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [r[1] for r in results]
    assert not [r[1] for r in results if r[1].strip()]  # no warnings, no errors
    ref = sweep_reference / "out"
    for name in ("points.csv", "pareto.csv", "pareto.json"):
        assert (out / name).read_bytes() == (ref / name).read_bytes()
    assert not [p for p in tmp_path.rglob("*.tmp")]


def test_concurrent_compiles_share_kernel_cache_and_out(compiled, tmp_path):
    """Two compilations at once into one kernel cache and one --out: both succeed without a
    warning, and the kernels equal a lone run's."""
    cache, out = tmp_path / "cache", tmp_path / "out"
    cmd = [sys.executable, "-m", "accelsim", *COMPILE, "--out", str(out)]
    procs = [
        subprocess.Popen(cmd, env=_env(cache), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    results = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [r[1] for r in results]
    assert not [r[1] for r in results if r[1].strip()]
    got, want = _files(out), _files(compiled / "out")
    assert sorted(got) == sorted(want)
    assert all(got[f] == want[f] for f in want if f.endswith((".o", ".s")))
    assert not list(tmp_path.rglob("*.tmp"))


# ---------------------------------------------------------------------------------------------
# hostile names, pipes, extras, modes
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../../../escape", "/tmp/absolute/name", "..", "a/../../b"])
def test_graph_names_write_only_inside_out(name, tmp_path, monkeypatch):
    model = tmp_path / "m" / "model.onnx"
    model.parent.mkdir()
    model.write_bytes(_onnx_model(name=name))
    sandbox = tmp_path / "deep" / "er" / "box"
    sandbox.mkdir(parents=True)
    monkeypatch.chdir(sandbox)
    monkeypatch.setenv("ACCELSIM_CACHE", str(tmp_path / "cache"))
    before = {p for p in tmp_path.rglob("*") if "cache" not in p.parts}
    out = sandbox / "out"
    code, _, err = run_cli(
        ["report", "--model", str(model), "--target", "cortex-a76", "--precision", "w8a8",
         "--accuracy=", "--out", str(out / "report")]
    )  # fmt: skip
    assert code == 0, err
    code, _, err = run_cli(
        ["mixed-search", str(model), "--target", "cortex-a76", "--precisions", "w8a8",
         "--min-snr-db", "0", "--calib-random", "2", "--out", str(out / "mixed")]
    )  # fmt: skip
    assert code == 0, err
    after = {p for p in tmp_path.rglob("*") if "cache" not in p.parts}
    new = after - before
    assert new and all(p == out or out in p.parents for p in new), sorted(map(str, new - {out}))
    assert not Path("/tmp/absolute/name").exists()
    assert len(list((out / "mixed").glob("*_mixed.yaml"))) == 1


def test_closed_pipe_is_quiet(tmp_path):
    p = subprocess.run(
        f"{sys.executable} -m accelsim models --json | head -c 1",
        shell=True,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
    )
    assert p.stdout == "[" and p.stderr == "", p.stderr


def test_a_bug_keeps_its_traceback_and_asks_for_a_report(monkeypatch):
    import accelsim.cli as cli

    def boom(args):
        raise ZeroDivisionError("a bug")

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    monkeypatch.setattr(
        parser, "parse_args", lambda argv: type("A", (), {"func": staticmethod(boom)})()
    )
    code, _, err = run_cli(["models"])
    assert code == 3 and "Traceback" in err and "ZeroDivisionError" in err
    assert "this is a bug; please report it" in err.splitlines()[-1]


def test_os_errors_deep_in_a_command_are_one_line(monkeypatch):
    import accelsim.cli as cli

    def full(args):
        raise OSError(errno.ENOSPC, "No space left on device", "/data/out/x.csv")

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    monkeypatch.setattr(
        parser, "parse_args", lambda argv: type("A", (), {"func": staticmethod(full)})()
    )
    code, _, err = run_cli(["models"])
    assert code == 2 and err == (
        "accelsim: error: /data/out/x.csv: no space left on device (expected free space to write)\n"
    )


@pytest.mark.parametrize(
    "argv,module,extra",
    [
        (["sweep", "--grid", "lanes=16", "--scheduler", "tcp://127.0.0.1:1"], "distributed", "dask"),
        (
            ["mixed-search", "digits_cnn", "--target", "cortex-a76", "--calib-dataset", "digits",
             "--train-epochs", "1"],
            "torch",
            "qat",
        ),
    ],
)  # fmt: skip
def test_missing_extra_names_feature_and_extra(argv, module, extra, tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no(name, *a, **kw):
        if name == module or name.startswith(module + "."):
            raise ModuleNotFoundError(f"No module named '{module}'")
        return real_import(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no)
    monkeypatch.delitem(sys.modules, module, raising=False)
    code, _, err = run_cli([*argv, "--out", str(tmp_path / "out")])
    assert err.startswith("accelsim: error: ") and err.count("\n") == 1, err
    assert f"needs the '{extra}' extra: pip install 'accelsim[{extra}]'" in err
    assert code == 2 and not (tmp_path / "out").exists()


def test_mixed_search_loads_no_torch_for_an_snr_budget():
    code = (
        "import sys, accelsim.cli, accelsim.dse.mixed_search, accelsim.quant.metrics;"
        "print('torch' in sys.modules)"
    )
    p = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_env(Path("/tmp"))
    )
    assert p.stdout.strip() == "False", p.stderr


def test_unreachable_scheduler_fails_fast_naming_it(tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setenv("ACCELSIM_CACHE", str(tmp_path / "cache"))
    t0 = time.perf_counter()
    code, _, err = run_cli(
        ["sweep", "--model", "digits_cnn", "--grid", "lanes=16", "--scheduler", "tcp://127.0.0.1:9",
         "--out", str(tmp_path / "out")]
    )  # fmt: skip
    assert time.perf_counter() - t0 < 20
    assert code == 2 and err.count("\n") == 1 and "tcp://127.0.0.1:9" in err, err


def test_quantize_output_mode_is_like_every_other(tmp_path, monkeypatch):
    monkeypatch.setenv("ACCELSIM_CACHE", str(tmp_path / "cache"))
    old = os.umask(0o022)
    try:
        q = tmp_path / "q.onnx"
        code, _, err = run_cli(["quantize", "digits_cnn", "--precision", "w8a8", "--calib-random", "2", "--out", str(q)])  # fmt: skip
        assert code == 0, err
        code, _, err = run_cli(["run", "digits_cnn", "--output", str(tmp_path / "y.npy")])
        assert code == 0, err
    finally:
        os.umask(old)
    assert q.stat().st_mode & 0o777 == 0o644 == (tmp_path / "y.npy").stat().st_mode & 0o777


def test_stale_temporaries_go_live_ones_stay(tmp_path):
    from accelsim.core.fsutil import atomic_write_text

    dead = tmp_path / f".a.csv.pid{_dead_pid()}-abc.tmp"
    live = tmp_path / f".b.csv.pid{os.getppid()}-abc.tmp"  # a running process's
    other = tmp_path / "notes.tmp"  # not ours
    for p in (dead, live, other):
        p.write_text("x")
    atomic_write_text(tmp_path / "c.csv", "1\n")
    assert not dead.exists() and live.exists() and other.exists()


def test_allow_nonfinite_keeps_a_float_run(tmp_path, monkeypatch):
    model, x = tmp_path / "m.onnx", tmp_path / "x.npy"
    model.write_bytes(_onnx_model())
    np.save(x, np.array([[1, np.nan, 3, 4]], np.float32))
    monkeypatch.setenv("ACCELSIM_CACHE", str(tmp_path / "cache"))
    y = tmp_path / "y.npy"
    code, _, err = run_cli(["run", str(model), "--input", str(x), "--output", str(y), "--allow-nonfinite"])  # fmt: skip
    assert code == 0, err
    assert np.isnan(np.load(y)).all()  # both outputs sum over the NaN: the float run says so


def test_simulate_costs_a_huge_declared_input_without_allocating(tmp_path, monkeypatch):
    """Costing needs no activation: a 100000 x 100000 input (37 GiB as float32) is costed,
    where running it is refused (the corpus)."""
    model = tmp_path / "huge.onnx"
    model.write_bytes(_onnx_model(shape=(100000, 100000)))
    monkeypatch.setenv("ACCELSIM_CACHE", str(tmp_path / "cache"))
    code, out, err = run_cli(["simulate", str(model), "--target", "cortex-a76", "--precision", "w8a8"])  # fmt: skip
    assert code == 0, err
    assert "20,000,000,000" in out  # the Gemm MACs: 1e5 rows x 1e5 inputs x 2 outputs


@pytest.mark.parametrize("model,size", [("digits_cnn", None), ("mobilenet_v2", 32)])
def test_cost_only_quantization_costs_what_calibration_costs(model, size):
    """`simulate` quantizes without calibrating (nothing allocated): every layer's cost equals
    the one of a graph calibrated on random data, on a CPU, a DSP and the accelerator."""
    from accelsim import api
    from accelsim.backends import simulate
    from accelsim.model.loader import load_model
    from accelsim.quant.ptq import quantize_for_cost

    g = load_model(model, size)
    for tname, pnames in [("cortex-a76", ["w8a8", "w4a8"]), ("hvx-v68", ["w8a8", "w16a16"]), ("simd-accel", ["w8a8", "w4a4"])]:  # fmt: skip
        t = api.target(tname)
        for pn in pnames:
            p = api.precision(pn)
            calibrated = api.quantize(g, p, data=api.random_calibration(g, 1)).graph
            nominal = quantize_for_cost(g, p).graph
            a = [c.to_json() for c in simulate(calibrated, t, p, None)]
            b = [c.to_json() for c in simulate(nominal, t, p, None)]
            assert a == b, (tname, pn)


# ---------------------------------------------------------------------------------------------
# the target schema, by property
# ---------------------------------------------------------------------------------------------

BASE = yaml.safe_load((REPO / "targets" / "cortex-a76.yaml").read_text())


@pytest.fixture(scope="module")
def graph_w8a8():
    from accelsim.model import zoo
    from accelsim.quant import calibdata
    from accelsim.quant.ptq import quantize_graph

    g = zoo.build("digits_cnn")
    from accelsim.core.precision import parse_precision

    return quantize_graph(g, parse_precision("w8a8"), calibdata.random(g, 1)).graph


def _pos(lo: float, hi: float):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False).filter(lambda v: v > 0)


@st.composite
def valid_targets(draw):
    import copy

    t = copy.deepcopy(BASE)
    t["name"] = "prop"  # no calibration file: the documented rates
    t["timing"]["clock_hz"] = draw(_pos(1e3, 1e12))
    t["timing"]["issue_width"] = draw(st.integers(1, 64))
    for row in t["timing"]["instructions"].values():
        row["throughput"] = draw(_pos(1e-3, 1e3))
        row["latency"] = draw(st.integers(0, 1000))
    for row in t["timing"]["mac"].values():
        row["macs_per_instruction"] = draw(_pos(1e-3, 1e6))
    for lv in t["memory"]["levels"]:
        if "bandwidth_bytes_per_cycle" in lv:
            lv["bandwidth_bytes_per_cycle"] = draw(_pos(1e-3, 1e6))
        if "bandwidth_bytes_per_s" in lv:
            lv["bandwidth_bytes_per_s"] = draw(_pos(1.0, 1e16))
        if "size_bytes" in lv:
            lv["size_bytes"] = draw(st.integers(1, 2**40))
    for k in t["energy"]["ops_pj"]:
        t["energy"]["ops_pj"][k] = draw(st.floats(0, 1e9))
    for k in t["energy"]["memory_pj_per_byte"]:
        t["energy"]["memory_pj_per_byte"][k] = draw(st.floats(0, 1e9))
    t["energy"]["static_power_w"] = draw(st.floats(0, 1e5))
    return t


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(valid_targets())
def test_no_valid_target_yields_a_bad_layer_cost(graph_w8a8, data):
    from accelsim.core.precision import parse_precision
    from accelsim.sim.analytic import simulate_layer

    target = parse_target(data, "prop.yaml")
    for node in graph_w8a8.nodes:
        c = simulate_layer(graph_w8a8, node, target, parse_precision("w8a8"))
        if c.notes == "view: no kernel":  # a reshape: no work, zero cycles by design
            continue
        numbers = [c.cycles, c.latency_s, c.energy_j, *c.energy_breakdown.values()]
        assert all(math.isfinite(v) and v >= 0 for v in numbers), (node.name, c)
        assert c.cycles >= 1 and c.latency_s > 0, (node.name, c)


def _paths(t, prefix=""):
    """Every numeric leaf of a target as (dotted path, parent, key)."""
    if isinstance(t, dict):
        for k, v in t.items():
            p = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, (dict, list)):
                yield from _paths(v, p)
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                yield p, t, k
    elif isinstance(t, list):
        for i, v in enumerate(t):
            yield from _paths(v, f"{prefix}[{i}]")


NUMERIC = [p for p, _, _ in _paths(BASE) if not p.startswith(("assumptions", "codegen"))]


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(NUMERIC),
    st.sampled_from([-1, -1e9, float("nan"), float("inf"), float("-inf"), "12", [], True]),
)
def test_every_invalid_number_is_rejected_by_name(path, bad):
    import copy

    t = copy.deepcopy(BASE)
    for p, parent, key in _paths(t):
        if p == path:
            parent[key] = bad
    with pytest.raises(TargetError) as err:
        parse_target(t, "bad.yaml")
    msg = str(err.value)
    # the error names the file and the field (a list element as levels[i], a mapping key as is)
    assert msg.startswith("bad.yaml: ") and "\n" not in msg
    assert path.split(".")[-1].split("[")[0] in msg, (path, msg)


def test_zero_is_rejected_where_a_rate_must_be_positive():
    import copy

    for path in [p for p in NUMERIC if p.endswith(("clock_hz", "throughput", "macs_per_instruction", "bandwidth_bytes_per_cycle", "bandwidth_bytes_per_s", "size_bytes", "issue_width"))]:  # fmt: skip
        t = copy.deepcopy(BASE)
        for p, parent, key in _paths(t):
            if p == path:
                parent[key] = 0
        with pytest.raises(TargetError, match=path.split(".")[-1]):
            parse_target(t, "bad.yaml")
