"""Compile lowered layers for a target, with a content-addressed kernel cache.

`compile_layer` turns one `LoweredLayer` into a `Kernel` (assembly `.s`, object `.o`, and for the
host a shared library for the TVM runtime). `compile_graph` lowers and compiles a whole graph and
writes `DIR/<layer>.s`, `DIR/<layer>.o` and `DIR/kernels.json`.

The cache (`$ACCELSIM_CACHE`, else `~/.cache/accelsim/kernels`) is keyed by the layer's
`key`: a SHA-256 of the operator signature (op, shapes, dtypes, attributes and the quantization
choices that change code: accumulator width, requantization kind, intrinsic, blocking), the
unscheduled TIR text, the precision, the TVM target, the schedule recipe text and the accelsim
version. Quantization *values* (multipliers, shifts, zero points, clamp bounds, folded bias) are
kernel arguments, so layers that differ only in them share one kernel. Entries are written
atomically; a warm rerun compiles nothing.

`meta.json` records the SHA-256 of each binary beside it; an entry whose metadata is unreadable
or of the wrong shape, or whose files are missing, empty or fail their hash, is rebuilt with one
warning. The host library loaded from an entry is always that entry's own `kernel.so`. A cache
directory that cannot be written turns the cache off for the run (one warning): kernels are then
compiled into a private temporary directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from accelsim.core.errors import AccelsimError
from accelsim.core.fsutil import USER_ERRNOS, atomic_write_bytes, atomic_write_text, safe_name
from accelsim.core.precision import Precision
from accelsim.core.version import __version__
from accelsim.kernels.kernel import InstructionMix, Kernel, Loop, instruction_mix, loop_nest

_LOCK = threading.Lock()
# bumped when what a cache entry records changes (its kernels stay valid, the analysis not)
META_VERSION = 3
LIB_NAME = "kernel.so"  # the only library an entry may name
_STATS = {"compiled": 0, "cache_hits": 0}


class CompileError(AccelsimError):
    """A layer TVM cannot compile for the target."""


def cache_dir() -> Path:
    env = os.environ.get("ACCELSIM_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "accelsim" / "kernels"


def compile_count() -> int:
    """Compilations this process has run (cache misses)."""
    return _STATS["compiled"]


def cache_stats() -> dict[str, int]:
    return dict(_STATS)


def _target(target):
    from accelsim.core.target import Target, load_target

    return target if isinstance(target, Target) else load_target(str(target))


def _entry_dir(key: str) -> Path:
    from accelsim.core.cache import private_dir, writable

    root = cache_dir() if writable(cache_dir()) else private_dir("kernels")
    return root / key[:2] / key


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cached_meta(d: Path, target) -> dict | None:
    """The metadata of a usable entry in `d`; None when there is none (a miss), or when it is
    unusable (then with one warning: it is rebuilt)."""
    from accelsim.core.cache import loads_checked, warn_once

    if not (d / "meta.json").is_file():
        return None
    try:
        meta = loads_checked((d / "meta.json").read_bytes())
        if not isinstance(meta, dict):
            raise TypeError(f"meta.json: expected a mapping, found {type(meta).__name__}")
        if meta.get("meta_version") != META_VERSION:
            return None  # written by other code: rebuilt without a warning
        hashes = meta.get("sha256")
        files = ["kernel.o", "kernel.s"] + ([LIB_NAME] if target.kind == "host" else [])
        if meta.get("lib") not in (None, LIB_NAME) or (target.kind == "host") != bool(
            meta.get("lib")
        ):
            raise ValueError(
                f"meta.json: lib: expected {LIB_NAME} or none, found {meta.get('lib')!r}"
            )
        if not isinstance(hashes, dict):
            raise TypeError("meta.json: sha256: expected a mapping file -> hash")
        for f in files:
            p = d / f
            if p.is_symlink() or not p.is_file() or p.stat().st_size == 0:
                raise ValueError(f"{f}: missing or empty")
            if hashes.get(f) != _sha256(p):
                raise ValueError(f"{f}: content does not match its hash")
        for x in meta["loops"]:  # the Kernel is built from these: a wrong shape raises here
            Loop.from_dict(x)
        InstructionMix.from_dict(meta["instruction_mix"])
        if isinstance(meta["compile_s"], bool) or not isinstance(meta["compile_s"], (int, float)):
            raise TypeError("meta.json: compile_s: expected a number")
        return meta
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        warn_once(
            f"corrupt:{d}",
            f"kernel cache entry {d} is unusable ({type(exc).__name__}: {str(exc)[:80]}); rebuilt",
        )
        return None


def _applied_dict(layer) -> dict:
    a = layer.schedule
    if a is None:
        return {}
    return {
        "recipe": a.recipe,
        "order": list(a.order),
        "tiles": dict(a.tiles),
        "blocks": dict(a.blocks),
        "vectorized": list(a.vectorized),
        "unrolled": list(a.unrolled),
        "parallel": a.parallel,
        "notes": list(a.notes),
    }


def _aligned_workspaces(tvm, align: int):
    """A pass that tells the code generator each workspace (`TVMBackendAllocWorkspace`: the
    kernel's padded input, its tile buffers) is `align`-byte aligned, as the allocator makes it
    (the harness' allocators, TVM's own kTempAllocaAlignment of 128). Without it, LLVM knows
    only the element's alignment, and on HVX loads a whole vector from such a buffer as two
    aligned loads and a `valign`, and stores it with `vmemu`. The fact goes in as TVM's own
    `storage_alignment` attribute right after the allocation (the code generator then records
    the alignment and emits an `llvm.assume`). A parallel loop's body becomes a function of its
    own (TVM's `__tvm_parallel_lambda`), which gets its buffers through a closure and would know
    none of their alignments: the attribute is repeated at the top of that body for every
    aligned buffer it uses (the kernel's arguments, declared aligned, and the workspaces)
    (MobileNet v2 features.8.conv.0.0 on hvx-v68: its requantization per tile 137 -> 114
    packets)."""
    tirx = tvm.tirx

    def workspace(stmt) -> bool:
        d = stmt.data if isinstance(stmt, tirx.DeclBuffer) else None
        return isinstance(d, tvm.ir.Call) and d.op.name == "tirx.TVMBackendAllocWorkspace"

    def attr(buf):
        return tirx.AttrStmt(
            buf, "storage_alignment", tirx.IntImm("int32", align), tirx.Evaluate(0)
        )

    def rebuild(s, scope: dict):
        """`scope`: aligned buffers declared before `s` in its enclosing sequences, by data var."""
        if isinstance(s, tirx.SeqStmt):
            inner, out = dict(scope), []
            for x in s.seq:
                out.append(rebuild(x, inner))
                if workspace(x):
                    out.append(attr(x.buffer))
                if isinstance(x, tirx.DeclBuffer) and (
                    workspace(x) or int(x.buffer.data_alignment) >= align
                ):
                    inner.setdefault(x.buffer.data, x.buffer)
            return tirx.SeqStmt(out)
        if isinstance(s, tirx.AttrStmt):
            return tirx.AttrStmt(s.node, s.attr_key, s.value, rebuild(s.body, scope))
        if isinstance(s, tirx.IfThenElse):
            other = rebuild(s.else_case, scope) if s.else_case is not None else None
            return tirx.IfThenElse(s.condition, rebuild(s.then_case, scope), other)
        if isinstance(s, tirx.For):
            body = rebuild(s.body, scope)
            if s.kind == tirx.ForKind.PARALLEL:
                used = {v for v in tirx.analysis.undefined_vars(body)}
                known = [attr(b) for v, b in scope.items() if v in used]
                body = tirx.SeqStmt([*known, body]) if known else body
            return tirx.For(
                s.loop_var, s.min, s.extent, s.kind, body, s.thread_binding, s.annotations
            )
        return s

    def run(mod, _ctx):
        funcs = {
            gv: f.with_body(rebuild(f.body, {})) if isinstance(f, tirx.PrimFunc) else f
            for gv, f in mod.functions.items()
        }
        return tvm.IRModule(funcs, attrs=mod.attrs)

    return tvm.transform.module_pass(run, opt_level=0, name="AccelsimAlignedWorkspaces")


def _pipeline(tvm, align: int | None) -> str:
    """TVM's default TIR pipeline, with workspaces known `align`-byte aligned (target
    `codegen.buffer_alignment`) once TVM has lowered them to allocation calls."""
    if not align:
        return "default"
    from tvm.tirx import compilation_pipeline as cp

    name = f"accelsim_aligned_{align}"
    if name not in cp.PIPELINE_MAP:
        tirx = tvm.tirx

        def factory():
            passes, _, device = cp.get_tir_pipeline("default")

            def host():
                return tvm.ir.transform.Sequential(
                    [
                        tirx.transform.LowerTVMBuiltin(),
                        _aligned_workspaces(tvm, align),
                        tirx.transform.LowerIntrin(),
                    ]
                )

            return passes, host, device

        cp.register_tir_pipeline(name, factory)
    return name


def _build(layer, target, d: Path) -> dict:
    """Compile into cache entry directory `d`; returns its metadata."""
    from accelsim.core.tvm_env import import_tvm

    tvm = import_tvm()
    t0 = time.perf_counter()
    try:
        lib = tvm.compile(
            layer.mod,
            target=tvm.target.Target(target.codegen.tvm_target_dict()),
            tir_pipeline=_pipeline(tvm, target.codegen.buffer_alignment),
        )
    except Exception as exc:  # TVM raises many error types; the message is what matters
        raise CompileError(
            f"layer '{layer.name}' ({layer.op}) does not compile for target "
            f"'{target.name}': {str(exc).strip().splitlines()[-1][:300]}"
        ) from None
    asm = lib.mod.inspect_source("s")
    compile_s = time.perf_counter() - t0
    try:
        return _write_entry(layer, target, d, lib, asm, compile_s)
    except OSError as exc:
        from accelsim.core.cache import go_uncached, writable

        if exc.errno not in USER_ERRNOS or not writable(cache_dir()):
            raise
        go_uncached(cache_dir(), exc)  # the rest of the run compiles into a private directory
        return _write_entry(layer, target, _entry_dir(layer.key), lib, asm, compile_s)


def _assemble(asm: str, target, tmp: Path, obj: Path) -> bool:
    """Assemble the kernel's own assembly text into `obj` with llvm-mc: the object is then
    exactly the text the cost models read, and LLVM's code generator runs once, not twice
    (it was half of a cold Hexagon compile). False (the caller emits the object from TVM)
    where llvm-mc is absent or refuses the text."""
    from accelsim.kernels.emulate import which_tool

    mc = which_tool("llvm-mc")
    if mc is None:
        return False
    t = target.codegen.tvm_target_dict()
    # temporary labels kept: a parallel loop's body is a local function (TVM's
    # `.L__tvm_parallel_lambda`), whose bytes the count predictor reads by its symbol
    cmd = [mc, "-filetype=obj", "--save-temp-labels", "-o", str(obj)]
    if t.get("mtriple"):
        cmd.append(f"-triple={t['mtriple']}")
    if t.get("mcpu"):
        cmd.append(f"-mcpu={t['mcpu']}")
    if t.get("mattr"):
        cmd.append(f"-mattr={','.join(t['mattr'])}")
    src = tmp / "kernel.s"
    src.write_text(asm)
    try:
        done = subprocess.run([*cmd, str(src)], capture_output=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and obj.is_file()


def _write_entry(layer, target, d: Path, lib, asm: str, compile_s: float) -> dict:
    d.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=d) as tmp:
        obj = Path(tmp) / "kernel.o"
        if not _assemble(asm, target, Path(tmp), obj):
            lib.mod.write_to_file(str(obj))
        atomic_write_bytes(d / "kernel.o", obj.read_bytes())
        lib_name = None
        if target.kind == "host":
            # link the object just written (export_library would emit it a second time)
            from tvm.support import cc

            so = Path(tmp) / "kernel.so"
            cc.create_shared(str(so), [str(obj)])
            atomic_write_bytes(d / LIB_NAME, so.read_bytes())
            lib_name = LIB_NAME
    atomic_write_text(d / "kernel.s", asm)
    files = ["kernel.o", "kernel.s"] + ([LIB_NAME] if lib_name else [])
    meta = {
        "sha256": {f: _sha256(d / f) for f in files},
        "meta_version": META_VERSION,
        "key": layer.key,
        "symbol": layer.symbol,
        "compile_s": compile_s,
        "loops": [
            lp.to_dict()
            for lp in loop_nest(layer.func, layer.schedule.intrinsic if layer.schedule else None)
        ],
        "instruction_mix": instruction_mix(asm).to_dict(),
        "lib": lib_name,
        "target": target.name,
    }
    atomic_write_text(d / "meta.json", json.dumps(meta, indent=1))
    with _LOCK:
        _STATS["compiled"] += 1
    _register_runtime(layer.key, lib if target.kind == "host" else None)
    return meta


_RUNTIME: dict[str, object] = {}


def _register_runtime(key: str, lib) -> None:
    if lib is not None:
        _RUNTIME[key] = lib


def runtime_module(kernel: Kernel):
    """The TVM runtime module of a host kernel (in-process compile result, else the cached
    shared library)."""
    lib = _RUNTIME.get(kernel.key)
    if lib is None:
        if not kernel.lib_path:
            raise CompileError(
                f"kernel of layer '{kernel.layer}' for target '{kernel.target}' "
                f"has no host library (only host kernels run in the TVM runtime)"
            )
        from accelsim.core.tvm_env import import_tvm

        path = Path(kernel.lib_path)
        entry = _entry_dir(kernel.key)
        if path.name != LIB_NAME or path.is_symlink() or path.parent.resolve() != entry.resolve():
            raise CompileError(
                f"kernel of layer '{kernel.layer}': library {path} is not its cache entry's "
                f"{entry / LIB_NAME}"
            )
        tvm = import_tvm()
        lib = tvm.runtime.load_module(str(path))
        _RUNTIME[kernel.key] = lib
    return lib


def compile_layer(layer, target, use_cache: bool = True) -> Kernel:
    """Compile one lowered layer (status "kernel"); the Kernel's files are in the cache."""
    target = _target(target)
    if layer.status != "kernel":
        raise CompileError(f"layer '{layer.name}' has no kernel ({layer.status}: {layer.reason})")
    d = _entry_dir(layer.key)
    meta = _cached_meta(d, target) if use_cache else None
    cached = meta is not None
    if meta is None:
        meta = _build(layer, target, d)
        d = _entry_dir(layer.key)  # elsewhere when the cache proved unwritable
    else:
        with _LOCK:
            _STATS["cache_hits"] += 1
    return Kernel(
        layer=layer.name,
        op=layer.op,
        op_class=layer.op_class,
        precision=layer.precision,
        target=target.name,
        symbol=layer.symbol,
        args=layer.args,
        loops=tuple(Loop.from_dict(x) for x in meta["loops"]),
        instruction_mix=InstructionMix.from_dict(meta["instruction_mix"]),
        intrinsic=layer.schedule.intrinsic if layer.schedule else None,
        schedule=_applied_dict(layer),
        asm_path=str(d / "kernel.s"),
        obj_path=str(d / "kernel.o"),
        lib_path=str(d / LIB_NAME) if meta.get("lib") else None,
        key=layer.key,
        compile_s=float(meta["compile_s"]),
        cached=cached,
        signature=dict(layer.signature),
    )


def compile_graph(
    graph,
    target,
    precision: Precision | None = None,
    out_dir=None,
    schedules=None,
    use_cache: bool = True,
    progress=None,
    only=None,
) -> list[Kernel]:
    """Lower and compile every node of `graph` for `target` (or those named in `only`); with
    `out_dir`, write `<layer>.s`, `<layer>.o` per kernel and `kernels.json` (views and "not
    lowered" layers are listed there too). Identical layers compile once (the cache).
    `progress(done)` is called after each layer (`accelsim.core.progress.progress_bar`)."""
    from accelsim.lower.lower import lower_graph

    target = _target(target)
    from accelsim.model.quantization import graph_precision

    prec = precision or graph_precision(graph)
    layers = lower_graph(graph, target, prec, schedules, only)
    kernels: list[Kernel] = []
    for i, L in enumerate(layers):
        if L.status == "kernel":
            kernels.append(compile_layer(L, target, use_cache))
        if progress is not None:
            progress(i + 1)
    if out_dir is not None:
        kernels = _write_outputs(graph, target, prec, layers, kernels, Path(out_dir))
    return kernels


def _write_outputs(graph, target, prec, layers, kernels, out: Path) -> list[Kernel]:
    import dataclasses

    out.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    written: list[Kernel] = []
    for k in kernels:
        base = safe_name(k.layer, "layer")
        name, i = base, 1
        while name in used:
            i += 1
            name = f"{base}_{i}"
        used.add(name)
        s_path, o_path = out / f"{name}.s", out / f"{name}.o"
        atomic_write_bytes(s_path, Path(k.asm_path).read_bytes())
        atomic_write_bytes(o_path, Path(k.obj_path).read_bytes())
        written.append(dataclasses.replace(k, asm_path=str(s_path), obj_path=str(o_path)))
    doc = {
        "model": graph.name,
        "target": target.name,
        "precision": prec.name,
        "accelsim_version": __version__,
        "distinct_kernels": len({k.key for k in written}),
        "kernels": [k.to_dict() for k in written],
        "views": [
            {"layer": L.name, "op": L.op, "reason": L.reason} for L in layers if L.status == "view"
        ],
        "not_lowered": [
            {"layer": L.name, "op": L.op, "status": "not lowered", "reason": L.reason}
            for L in layers
            if L.status == "not lowered"
        ],
    }
    atomic_write_text(out / "kernels.json", json.dumps(doc, indent=1, default=str))
    return written


def clear_memory_cache() -> None:
    """Forget in-process runtime modules (tests)."""
    _RUNTIME.clear()
