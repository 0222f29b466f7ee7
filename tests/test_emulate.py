"""TVM kernels run on emulated AArch64 (qemu-aarch64) and Hexagon HVX (qemu-hexagon).

Every kernel is built here with TVM for the project's two targets, run on random inputs and compared
with numpy bit for bit. The dynamic instruction (and Hexagon packet) counts are checked exactly
against counts derived by hand from the kernel's disassembly, and against qemu run with one
instruction (packet) per translated block.

Tests skip only when ``toolchain_status()`` reports a tool missing (scripts/install-system-deps.sh
installs them).
"""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from accelsim.core.argspec import ArgSpec, ArgSpecError
from accelsim.kernels.emulate import (
    EmulationError,
    EmulatorRun,
    KernelCall,
    missing_tools,
    run_aarch64,
    run_batch,
    run_hexagon,
    toolchain_status,
)

A64 = {
    "kind": "llvm",
    "mtriple": "aarch64-linux-gnu",
    "mcpu": "cortex-a76",
    "mattr": ["+neon", "+dotprod"],
}
HEX = {
    "kind": "llvm",
    "mtriple": "hexagon-unknown-elf",
    "mcpu": "hexagonv68",
    "mattr": ["+hvxv68", "+hvx-length128b"],
}
HEX73 = {
    "kind": "llvm",
    "mtriple": "hexagon-unknown-elf",
    "mcpu": "hexagonv73",
    "mattr": ["+hvxv73", "+hvx-length128b"],
}
TARGETS = {"aarch64": A64, "hexagon": HEX}
RUN = {"aarch64": run_aarch64, "hexagon": run_hexagon}


def need(arch):
    missing = missing_tools(arch)
    if missing:
        pytest.skip(
            f"cannot emulate {arch}: {', '.join(missing)} not installed "
            f"(run scripts/install-system-deps.sh)"
        )


def need_objdump():
    if toolchain_status()["llvm-objdump"] is None:
        pytest.skip(
            "llvm-objdump not installed (Debian llvm-19; run scripts/install-system-deps.sh)"
        )


def _tvm():
    # tvm_ffi imports torch when it can; make that import fail fast (torch is not needed here).
    had = "torch" in sys.modules
    sys.modules.setdefault("torch", None)
    try:
        import tvm
    finally:
        if not had and "torch" in sys.modules and sys.modules["torch"] is None:
            del sys.modules["torch"]
    return tvm


@pytest.fixture(scope="module")
def objdir(tmp_path_factory):
    return tmp_path_factory.mktemp("kernels")


_BUILT = {}


def compile_kernel(objdir, key, func, target):
    """Compile a one-PrimFunc module; return (object path, assembly text). Cached per key."""
    if key not in _BUILT:
        tvm = _tvm()
        lib = tvm.compile(
            func if isinstance(func, tvm.IRModule) else tvm.IRModule({key: func}),
            target=tvm.target.Target(target),
        )
        path = objdir / f"{key}.o"
        lib.mod.write_to_file(str(path))
        _BUILT[key] = (path, lib.mod.inspect_source("s"))
    return _BUILT[key]


def _scheduled(func, name, block, lanes):
    tvm = _tvm()
    sch = tvm.s_tir.Schedule(tvm.IRModule({name: func}))
    sch.work_on(name)
    (loop,) = sch.get_loops(sch.get_sblock(block))
    _, inner = sch.split(loop, [None, lanes])
    sch.vectorize(inner)
    return sch.mod


# ------------------------------------------------------------------------------------------------
# Kernels


def dense_int8(n_rows=8, n_out=32, k=64, name="dense_i8"):
    _tvm()
    from tvm import te

    A = te.placeholder((n_rows, k), "int8", name="A")
    W = te.placeholder((n_out, k), "int8", name="W")
    r = te.reduce_axis((0, k), name="r")
    C = te.compute(
        (n_rows, n_out),
        lambda i, j: te.sum(A[i, r].astype("int32") * W[j, r].astype("int32"), axis=r),
        name="C",
    )
    return te.create_prim_func([A, W, C]).with_attr("global_symbol", name)


def saturating_add_int8(n, lanes, name="qadd"):
    _tvm()
    from tvm import te

    A = te.placeholder((n,), "int8", name="A")
    B = te.placeholder((n,), "int8", name="B")
    C = te.compute(
        (n,),
        lambda i: te.max(te.min(A[i].astype("int16") + B[i].astype("int16"), 127), -128).astype(
            "int8"
        ),
        name="C",
    )
    f = te.create_prim_func([A, B, C]).with_attr("global_symbol", name)
    return _scheduled(f, name, "C", lanes) if lanes else f


def float_kernel(n, lanes, name="fk"):
    # (a + b) * a: an add then a multiply, which no fused multiply-add can merge, so IEEE single
    # precision gives numpy's result bit for bit.
    _tvm()
    from tvm import te

    A = te.placeholder((n,), "float32", name="A")
    B = te.placeholder((n,), "float32", name="B")
    C = te.compute((n,), lambda i: (A[i] + B[i]) * A[i], name="C")
    f = te.create_prim_func([A, B, C]).with_attr("global_symbol", name)
    return _scheduled(f, name, "C", lanes) if lanes else f


def sdot_kernel():
    _tvm()
    from tvm.script import tirx as T

    @T.prim_func
    def sdot4(
        A: T.Buffer((64, 16), "int8"), B: T.Buffer((64, 16), "int8"), C: T.Buffer((64, 4), "int32")
    ):
        T.func_attr({"global_symbol": "sdot4", "tir.noalias": True})
        for i in range(64):
            C[i, T.ramp(0, 1, 4)] = T.call_llvm_pure_intrin(
                T.llvm_lookup_intrinsic_id("llvm.aarch64.neon.sdot.v4i32.v16i8"),
                T.broadcast(T.int32(0), 4),
                A[i, T.ramp(0, 1, 16)],
                B[i, T.ramp(0, 1, 16)],
                dtype="int32x4",
            )

    return sdot4


def hvx_kernel(name, llvm_name, a_dtype, b_dtype, lanes):
    """8 rows of C[i] = llvm_name(A[i], B[i]): two 128-byte HVX vectors in, 32 words out."""
    _tvm()
    from tvm.script import tirx as T

    @T.prim_func
    def kernel(
        A: T.Buffer((8, lanes), a_dtype),
        B: T.Buffer((8, lanes), b_dtype),
        C: T.Buffer((8, 32), "int32"),
    ):
        T.func_attr({"global_symbol": name, "tir.noalias": True})
        for i in range(8):
            C[i, T.ramp(0, 1, 32)] = T.call_llvm_pure_intrin(
                T.llvm_lookup_intrinsic_id(llvm_name),
                T.reinterpret(A[i, T.ramp(0, 1, lanes)], dtype="int32x32"),
                T.reinterpret(B[i, T.ramp(0, 1, lanes)], dtype="int32x32"),
                dtype="int32x32",
            )

    return kernel


def vrmpy_kernel():
    return hvx_kernel("vrmpy", "llvm.hexagon.V6.vrmpybusv.128B", "uint8", "int8", 128)


def vdmpy_kernel():
    return hvx_kernel("vdmpy", "llvm.hexagon.V6.vdmpyhvsat.128B", "int16", "int16", 64)


def workspace_kernel(n=4096):
    # B is materialised (C reads it reversed), and is too big for the stack: TVM allocates it
    # through __TVMBackendAllocWorkspace.
    _tvm()
    from tvm import te

    A = te.placeholder((n,), "int32", name="A")
    B = te.compute((n,), lambda i: A[i] * 3, name="B")
    C = te.compute((n,), lambda i: B[n - 1 - i] + 1, name="C")
    return te.create_prim_func([A, C]).with_attr("global_symbol", "ws")


def parallel_kernel(n=1024):
    tvm = _tvm()
    from tvm import te

    A = te.placeholder((n,), "int32", name="A")
    C = te.compute((n,), lambda i: A[i] * 3 + 1, name="C")
    f = te.create_prim_func([A, C]).with_attr("global_symbol", "par")
    sch = tvm.s_tir.Schedule(tvm.IRModule({"par": f}))
    sch.work_on("par")
    (loop,) = sch.get_loops(sch.get_sblock("C"))
    outer, _ = sch.split(loop, [8, None])
    sch.parallel(outer)
    return sch.mod


def divmod_kernel(n, dtype):
    _tvm()
    from tvm import te, tirx

    A = te.placeholder((n,), dtype, name="A")
    B = te.placeholder((n,), dtype, name="B")
    Q = te.compute((n,), lambda i: tirx.floordiv(A[i], B[i]), name="Q")
    R = te.compute((n,), lambda i: tirx.floormod(A[i], B[i]), name="R")
    return te.create_prim_func([A, B, Q, R]).with_attr("global_symbol", "divmod")


def rng_int8(rng, shape, dtype="int8"):
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max + 1, shape).astype(dtype)


def asm_has(asm, mnemonic):
    """True when an instruction line of the assembly contains ``mnemonic``."""
    return any(
        mnemonic in line
        for line in asm.splitlines()
        if line.startswith("\t") and not line.lstrip().startswith(".")
    )


# ------------------------------------------------------------------------------------------------
# Tests: bit-exact results


def test_toolchain_status_names_every_tool():
    status = toolchain_status()
    for key in (
        "qemu-aarch64",
        "aarch64-linux-gnu-gcc",
        "qemu-hexagon",
        "clang",
        "ld.lld",
        "llvm-nm",
        "aarch64-linux-gnu-nm",
        "llvm-objdump",
        "tvm_ffi_include",
    ):
        assert key in status
        assert status[key] is None or os.path.exists(status[key]), (key, status[key])


def test_importing_emulate_is_light():
    code = (
        "import sys, accelsim.kernels.emulate\n"
        "print([m for m in ('tvm', 'tvm_ffi', 'torch') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("arch", ["aarch64", "hexagon"])
def test_int8_dense_int32_accumulation(arch, objdir):
    need(arch)
    path, _ = compile_kernel(objdir, f"dense_{arch}", dense_int8(), TARGETS[arch])
    rng = np.random.default_rng(1)
    a, w = rng_int8(rng, (8, 64)), rng_int8(rng, (32, 64))
    a[0, :] = -128
    w[0, :] = -128  # the extreme products: 64 * 16384 must accumulate without overflow in int32
    args = [
        ArgSpec("A", (8, 64), "int8"),
        ArgSpec("W", (32, 64), "int8"),
        ArgSpec("C", (8, 32), "int32"),
    ]
    run = RUN[arch](path, "dense_i8", args, {"A": a, "W": w}, ["C"])
    assert isinstance(run, EmulatorRun)
    assert run.dynamic_instructions is None and run.packets is None
    np.testing.assert_array_equal(run.outputs["C"], a.astype(np.int32) @ w.astype(np.int32).T)
    assert run.outputs["C"].dtype == np.int32 and run.wall_s > 0


@pytest.mark.parametrize(
    "arch,lanes,mnemonic", [("aarch64", 16, "sqadd"), ("hexagon", 128, "):sat")]
)
def test_int8_saturating_add_vectorized(arch, lanes, mnemonic, objdir):
    need(arch)
    path, asm = compile_kernel(
        objdir, f"qadd512_{arch}", saturating_add_int8(512, lanes), TARGETS[arch]
    )
    assert asm_has(asm, mnemonic)  # NEON sqadd / HVX vadd(...):sat
    if arch == "hexagon":
        assert asm_has(asm, "vmem(")
    rng = np.random.default_rng(2)
    a, b = rng_int8(rng, 512), rng_int8(rng, 512)
    a[:4], b[:4] = [127, -128, 100, -100], [1, -1, 100, -100]
    args = [
        ArgSpec("A", (512,), "int8"),
        ArgSpec("B", (512,), "int8"),
        ArgSpec("C", (512,), "int8"),
    ]
    run = RUN[arch](path, "qadd", args, {"A": a, "B": b}, ["C"])
    ref = np.clip(a.astype(np.int16) + b, -128, 127).astype(np.int8)
    np.testing.assert_array_equal(run.outputs["C"], ref)


@pytest.mark.parametrize("arch,lanes", [("aarch64", 4), ("hexagon", None)])
def test_float32_kernel_bit_exact(arch, lanes, objdir):
    need(arch)
    path, asm = compile_kernel(
        objdir, f"float_{arch}", float_kernel(1000 if not lanes else 1024, lanes), TARGETS[arch]
    )
    n = 1000 if not lanes else 1024
    rng = np.random.default_rng(3)
    a = rng.standard_normal(n).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    args = [
        ArgSpec("A", (n,), "float32"),
        ArgSpec("B", (n,), "float32"),
        ArgSpec("C", (n,), "float32"),
    ]
    run = RUN[arch](path, "fk", args, {"A": a, "B": b}, ["C"])
    ref = (a + b) * a
    assert run.outputs["C"].tobytes() == ref.tobytes()


def test_hvx_float_uses_qfloat_that_qemu_7_lacks(objdir):
    # HVX v68 computes float32 in qfloat (vmpy(.sf,.sf) -> .qf32). qemu-hexagon 7.2 cannot decode
    # those packets; the run must fail with the clear "illegal instruction" message (a newer qemu
    # that implements them must give the right numbers instead).
    need("hexagon")
    path, asm = compile_kernel(objdir, "float_hvx", float_kernel(1024, 32), HEX)
    assert asm_has(asm, ".qf32")
    rng = np.random.default_rng(4)
    a = rng.standard_normal(1024).astype(np.float32)
    b = rng.standard_normal(1024).astype(np.float32)
    args = [
        ArgSpec("A", (1024,), "float32"),
        ArgSpec("B", (1024,), "float32"),
        ArgSpec("C", (1024,), "float32"),
    ]
    try:
        run = run_hexagon(path, "fk", args, {"A": a, "B": b}, ["C"])
    except EmulationError as exc:
        assert "illegal instruction" in str(exc) and "v67" in str(exc)
    else:
        np.testing.assert_allclose(run.outputs["C"], (a + b) * a, rtol=1e-5, atol=1e-6)


def test_sdot_runs_on_max_and_is_illegal_on_cortex_a53(objdir):
    need("aarch64")
    path, asm = compile_kernel(objdir, "sdot4", sdot_kernel(), A64)
    assert re.search(r"^\s*sdot\s+v\d+\.4s", asm, re.M), "the kernel does not use sdot"
    rng = np.random.default_rng(5)
    a, b = rng_int8(rng, (64, 16)), rng_int8(rng, (64, 16))
    args = [
        ArgSpec("A", (64, 16), "int8"),
        ArgSpec("B", (64, 16), "int8"),
        ArgSpec("C", (64, 4), "int32"),
    ]
    run = run_aarch64(path, "sdot4", args, {"A": a, "B": b}, ["C"], cpu="max")
    ref = (a.astype(np.int32) * b).reshape(64, 4, 4).sum(-1)
    np.testing.assert_array_equal(run.outputs["C"], ref)
    with pytest.raises(EmulationError, match=r"illegal instruction: .*cortex-a53"):
        run_aarch64(path, "sdot4", args, {"A": a, "B": b}, ["C"], cpu="cortex-a53")


def test_hvx_vrmpy_dot_product(objdir):
    need("hexagon")
    path, asm = compile_kernel(objdir, "vrmpy", vrmpy_kernel(), HEX)
    assert asm_has(asm, "vrmpy(")
    rng = np.random.default_rng(6)
    a, b = rng_int8(rng, (8, 128), "uint8"), rng_int8(rng, (8, 128))
    a[0], b[0] = 255, -128
    args = [
        ArgSpec("A", (8, 128), "uint8"),
        ArgSpec("B", (8, 128), "int8"),
        ArgSpec("C", (8, 32), "int32"),
    ]
    run = run_hexagon(path, "vrmpy", args, {"A": a, "B": b}, ["C"])
    ref = (a.astype(np.int32) * b).reshape(8, 32, 4).sum(-1)
    np.testing.assert_array_equal(run.outputs["C"], ref)


def test_hvx_vdmpy_pair_sum_saturates_only_at_two_min_products(objdir):
    """`Vd.w = vdmpy(Vu.h, Vv.h):sat` = sat32(u0*v0 + u1*v1): exact whenever one operand never
    holds -32768 (the lowering's vdmpy intrinsic relies on this for int16 weights in
    [-32767, 32767]); (-32768)^2 * 2 = 2^31 saturates to 2^31 - 1."""
    need("hexagon")
    path, asm = compile_kernel(objdir, "vdmpy", vdmpy_kernel(), HEX)
    assert asm_has(asm, "vdmpy(")
    rng = np.random.default_rng(8)
    a = rng.integers(-32768, 32768, (8, 64)).astype(np.int16)
    b = rng.integers(-32767, 32768, (8, 64)).astype(np.int16)
    a[0], b[0] = -32768, -32767  # the largest pair sum without saturation
    a[1], b[1] = -32768, 32767  # the most negative one
    a[2, :2], b[2, :2] = -32768, -32768  # 2^31: saturates
    args = [
        ArgSpec("A", (8, 64), "int16"),
        ArgSpec("B", (8, 64), "int16"),
        ArgSpec("C", (8, 32), "int32"),
    ]
    got = run_hexagon(path, "vdmpy", args, {"A": a, "B": b}, ["C"]).outputs["C"]
    exact = (a.astype(np.int64) * b).reshape(8, 32, 2).sum(-1)
    assert exact[0].max() == 2 * 32768 * 32767 and exact[2, 0] == 2**31
    np.testing.assert_array_equal(got, np.clip(exact, -(2**31), 2**31 - 1))
    assert got[2, 0] == 2**31 - 1 and (got[:2] == exact[:2]).all()


def test_hvx_v73_code_runs_on_the_only_qemu_hexagon_model(objdir):
    need("hexagon")
    path, asm = compile_kernel(objdir, "qadd_v73", saturating_add_int8(1024, 128), HEX73)
    assert asm_has(asm, "):sat")
    rng = np.random.default_rng(7)
    a, b = rng_int8(rng, 1024), rng_int8(rng, 1024)
    args = [
        ArgSpec("A", (1024,), "int8"),
        ArgSpec("B", (1024,), "int8"),
        ArgSpec("C", (1024,), "int8"),
    ]
    run = run_hexagon(path, "qadd", args, {"A": a, "B": b}, ["C"], cpu="v67")
    np.testing.assert_array_equal(
        run.outputs["C"], np.clip(a.astype(np.int16) + b, -128, 127).astype(np.int8)
    )
    with pytest.raises(EmulationError, match="no CPU model 'v73'"):
        run_hexagon(path, "qadd", args, {"A": a, "B": b}, ["C"], cpu="v73")


@pytest.mark.parametrize("arch", ["aarch64", "hexagon"])
def test_workspace_allocation(arch, objdir):
    need(arch)
    path, asm = compile_kernel(objdir, f"ws_{arch}", workspace_kernel(), TARGETS[arch])
    assert "__TVMBackendAllocWorkspace" in asm
    rng = np.random.default_rng(8)
    a = rng.integers(-(10**6), 10**6, 4096).astype(np.int32)
    run = RUN[arch](
        path,
        "ws",
        [ArgSpec("A", (4096,), "int32"), ArgSpec("C", (4096,), "int32")],
        {"A": a},
        ["C"],
    )
    np.testing.assert_array_equal(run.outputs["C"], a[::-1] * 3 + 1)


@pytest.mark.parametrize("arch", ["aarch64", "hexagon"])
def test_parallel_loop_runs_serially(arch, objdir):
    need(arch)
    path, asm = compile_kernel(objdir, f"par_{arch}", parallel_kernel(), TARGETS[arch])
    assert "__TVMBackendParallelLaunch" in asm
    a = np.random.default_rng(12).integers(-(10**6), 10**6, 1024).astype(np.int32)
    run = RUN[arch](
        path,
        "par",
        [ArgSpec("A", (1024,), "int32"), ArgSpec("C", (1024,), "int32")],
        {"A": a},
        ["C"],
        count=True,
    )
    np.testing.assert_array_equal(run.outputs["C"], a * 3 + 1)
    # The loop body is TVM's private __tvm_parallel_lambda: kernel code without a symbol.
    assert run.function_instructions["<kernel: unnamed code>"] > 0
    assert run.function_instructions["accelsim_parallel_launch"] > 0


@pytest.mark.parametrize(
    "arch,dtype", [("hexagon", "int32"), ("hexagon", "int64"), ("aarch64", "int64")]
)
def test_integer_division(arch, dtype, objdir):
    # On Hexagon the kernel calls __hexagon_divsi3/__hexagon_moddi3 & co., which the freestanding
    # runtime provides (no compiler-rt is installed for Hexagon).
    need(arch)
    path, _ = compile_kernel(
        objdir, f"divmod_{arch}_{dtype}", divmod_kernel(256, dtype), TARGETS[arch]
    )
    rng = np.random.default_rng(9)
    info = np.iinfo(dtype)
    a = rng.integers(info.min // 2, info.max // 2, 256).astype(dtype)
    b = rng.integers(-1000, 1000, 256).astype(dtype)
    b[b == 0] = 7
    a[:8] = [7, -7, 7, -7, info.max, info.min + 1, 12345, -12345]
    b[:8] = [2, 2, -2, -2, 1, -1, info.max, info.min + 1]
    args = [
        ArgSpec("A", (256,), dtype),
        ArgSpec("B", (256,), dtype),
        ArgSpec("Q", (256,), dtype),
        ArgSpec("R", (256,), dtype),
    ]
    run = RUN[arch](path, "divmod", args, {"A": a, "B": b}, ["Q", "R"], count=True)
    np.testing.assert_array_equal(run.outputs["Q"], np.floor_divide(a, b))
    np.testing.assert_array_equal(run.outputs["R"], np.mod(a, b))
    if arch == "hexagon":
        helpers = {
            "int32": ("__hexagon_divsi3", "__hexagon_modsi3"),
            "int64": ("__hexagon_divdi3", "__hexagon_moddi3"),
        }[dtype]
        assert all(run.function_instructions.get(h, 0) > 0 for h in helpers)
        # The call's total includes the helpers; the kernel object's own part excludes them.
        assert run.dynamic_instructions > run.kernel_instructions


def test_float_square_root_on_hexagon_is_correctly_rounded(objdir):
    """A float32 square root on Hexagon calls __hexagon_sqrtf, which the freestanding runtime
    provides (layer norms take one per row): bit for bit numpy's correctly rounded float32
    sqrt over normal, subnormal and special values."""
    need("hexagon")
    _tvm()
    from tvm import te, tirx

    n = 4096
    A = te.placeholder((n,), "float32", name="A")
    B = te.compute((n,), lambda i: tirx.sqrt(A[i]), name="B")
    func = te.create_prim_func([A, B]).with_attr("global_symbol", "fsqrt")
    path, asm = compile_kernel(objdir, "fsqrt_hexagon", func, TARGETS["hexagon"])
    assert "__hexagon_sqrtf" in asm
    rng = np.random.default_rng(5)
    bits = rng.integers(0, 0x7F800000, n, dtype=np.int64).astype(np.uint32)
    a = bits.view(np.float32).copy()
    a[:8] = [0.0, -0.0, 1.0, 2.0, np.inf, 1e-45, 3.4028235e38, 0.25]
    a[8] = -1.0  # NaN
    args = [ArgSpec("A", (n,), "float32"), ArgSpec("B", (n,), "float32")]
    got = run_hexagon(path, "fsqrt", args, {"A": a}, ["B"]).outputs["B"]
    want = np.sqrt(a.astype(np.float32))
    assert np.isnan(got[8]) and np.isnan(want[8])
    np.testing.assert_array_equal(got.view(np.uint32)[9:], want.view(np.uint32)[9:])
    np.testing.assert_array_equal(got.view(np.uint32)[:8], want.view(np.uint32)[:8])


@pytest.mark.parametrize("arch", ["aarch64", "hexagon"])
def test_memset_memcpy_and_in_place_argument(arch, objdir):
    # LLVM turns the zero fill and the copy into memset/memcpy calls (the Hexagon runtime's own);
    # Z starts non-zero as an input and comes back as an output.
    need(arch)
    _tvm()
    from tvm import te, tirx

    n = 4099
    A = te.placeholder((n,), "int8", name="A")
    Z = te.compute((n,), lambda i: tirx.const(0, "int32"), name="Z")
    C = te.compute((n,), lambda i: A[i], name="C")
    func = te.create_prim_func([A, Z, C]).with_attr("global_symbol", "zc")
    path, _ = compile_kernel(objdir, f"zc_{arch}", func, TARGETS[arch])
    a = rng_int8(np.random.default_rng(13), n)
    args = [ArgSpec("A", (n,), "int8"), ArgSpec("Z", (n,), "int32"), ArgSpec("C", (n,), "int8")]
    run = RUN[arch](
        path, "zc", args, {"A": a, "Z": np.full(n, 5, np.int32)}, ["Z", "C"], count=True
    )
    np.testing.assert_array_equal(run.outputs["Z"], np.zeros(n, np.int32))
    np.testing.assert_array_equal(run.outputs["C"], a)
    assert any("memset" in f for f in run.function_instructions)
    assert any("memcpy" in f for f in run.function_instructions)
    assert run.dynamic_instructions > run.kernel_instructions


# ------------------------------------------------------------------------------------------------
# Tests: exact dynamic counts


def _objdump(obj, function):
    out = subprocess.run(
        [
            toolchain_status()["llvm-objdump"],
            "-d",
            "--no-show-raw-insn",
            f"--disassemble-symbols={function}",
            str(obj),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [
        (int(m[1], 16), m[2])
        for m in (re.match(r"\s*([0-9a-f]+):\s+(.*)", ln) for ln in out.splitlines())
        if m
    ]


def _aarch64_hand_count(obj, function):
    """Instructions one call of ``function`` executes, derived from its disassembly.

    Expects what LLVM makes of a counted loop: a prologue that sets a counter register to K, a body
    ending in ``subs xN, xN, #S`` ... ``b.ne <body>``, then ``ret``. Executed: prologue +
    (K / S) * body + epilogue.
    """
    lines = _objdump(obj, function)
    insns = [
        (addr, text.split(None, 1)[0], (text.split(None, 1) + [""])[1]) for addr, text in lines
    ]
    end = next(i for i, ins in enumerate(insns) if ins[1] == "ret")
    insns = insns[: end + 1]  # the nops after ret are alignment padding
    branch_ops = {"b", "bl", "br", "blr", "cbz", "cbnz", "tbz", "tbnz"}
    branches = [i for i, ins in enumerate(insns) if ins[1] in branch_ops or ins[1].startswith("b.")]
    assert len(branches) == 1, f"expected one loop branch in {function}: {insns}"
    br = branches[0]
    target = int(re.match(r"0x([0-9a-f]+)", insns[br][2])[1], 16)
    head = next(i for i, ins in enumerate(insns) if ins[0] == target)
    assert head < br and insns[br][1] == "b.ne"
    prologue, body, epilogue = insns[:head], insns[head : br + 1], insns[br + 1 :]
    subs = [re.match(r"x(\d+), x\1, #0x([0-9a-f]+)", ins[2]) for ins in body if ins[1] == "subs"]
    assert len(subs) == 1 and subs[0], body
    reg, step = subs[0][1], int(subs[0][2], 16)
    inits = [re.match(rf"[wx]{reg}, #0x([0-9a-f]+)", ins[2]) for ins in prologue if ins[1] == "mov"]
    inits = [m for m in inits if m]
    assert len(inits) == 1, prologue
    start = int(inits[0][1], 16)
    assert start % step == 0
    trips = start // step
    count = lambda block, op: sum(ins[1] == op for ins in block)  # noqa: E731
    return {
        "instructions": len(prologue) + trips * len(body) + len(epilogue),
        "trips": trips,
        "sqadd": count(prologue, "sqadd") + trips * count(body, "sqadd") + count(epilogue, "sqadd"),
    }


def _hexagon_hand_count(obj, function):
    """Packets and instructions one call of ``function`` executes, from its disassembly.

    Expects one hardware loop: ``loop0(<head>,#N)`` ... ``} :endloop0``, no other branch before the
    final ``jumpr r31``. Executed: prologue + N * body + epilogue, in packets; an instruction is a
    line of a packet (a duplex line holds two, separated by ';'; ``immext`` is not an instruction).
    """
    packets, cur = [], None
    for addr, text in _objdump(obj, function):
        assert "<unknown>" not in text, f"llvm-objdump cannot decode {function} at {addr:#x}"
        if text.lstrip().startswith("{"):
            cur = {"addr": addr, "insns": [], "endloop": False}
            packets.append(cur)
        body = text.replace("{", "").split("}")[0].strip()
        cur["insns"] += [p.strip() for p in body.split(";") if p.strip()]
        if "}" in text:
            cur["endloop"] = ":endloop0" in text
    end = next(i for i, p in enumerate(packets) if any(x == "jumpr r31" for x in p["insns"]))
    packets = packets[: end + 1]  # the nop packet after jumpr is alignment padding
    loops = [
        (i, m)
        for i, p in enumerate(packets)
        for x in p["insns"]
        if (m := re.match(r"loop0\(0x([0-9a-f]+),#0x([0-9a-f]+)\)", x))
    ]
    assert len(loops) == 1, f"expected one hardware loop in {function}"
    head_addr, trips = int(loops[0][1][1], 16), int(loops[0][1][2], 16)
    head = next(i for i, p in enumerate(packets) if p["addr"] == head_addr)
    tail = next(i for i, p in enumerate(packets) if p["endloop"])
    assert loops[0][0] < head <= tail < end
    for p in packets[:end]:
        assert not any(re.match(r"(if .*)?(jump|call|jumpr)\b", x) for x in p["insns"]), p

    def insns(block):
        return sum(0 if x.startswith("immext") else 1 for p in block for x in p["insns"])

    def vadds(block):
        return sum(
            x.startswith("v") and "vadd(" in x and x.endswith(":sat")
            for p in block
            for x in p["insns"]
        )

    pro, body, epi = packets[:head], packets[head : tail + 1], packets[tail + 1 :]
    return {
        "packets": len(pro) + trips * len(body) + len(epi),
        "instructions": insns(pro) + trips * insns(body) + insns(epi),
        "trips": trips,
        "vadd": vadds(pro) + trips * vadds(body) + vadds(epi),
    }


def test_exact_instruction_count_aarch64(objdir):
    need("aarch64")
    need_objdump()
    n = 1024
    path, _ = compile_kernel(objdir, "qadd_count_aarch64", saturating_add_int8(n, 16), A64)
    hand = _aarch64_hand_count(path, "qadd_compute_")
    # The loop is what the schedule asked for: n/16 sqadd on 16 lanes in all.
    assert hand["sqadd"] == n // 16
    rng = np.random.default_rng(10)
    a, b = rng_int8(rng, n), rng_int8(rng, n)
    args = [ArgSpec("A", (n,), "int8"), ArgSpec("B", (n,), "int8"), ArgSpec("C", (n,), "int8")]
    run = run_aarch64(path, "qadd", args, {"A": a, "B": b}, ["C"], count=True)
    np.testing.assert_array_equal(
        run.outputs["C"], np.clip(a.astype(np.int16) + b, -128, 127).astype(np.int8)
    )
    assert run.function_instructions["qadd_compute_"] == hand["instructions"]
    assert run.packets is None and run.kernel_packets is None
    # Nothing outside the kernel object runs during the call; the entry wrapper (argument checks)
    # and the compute function make up the total.
    assert run.kernel_instructions == run.dynamic_instructions
    assert set(run.function_instructions) == {"__tvm_ffi_qadd", "qadd_compute_"}
    assert sum(run.function_instructions.values()) == run.dynamic_instructions
    # Independently: qemu with one instruction per translated block.
    single = run_aarch64(
        path, "qadd", args, {"A": a, "B": b}, ["C"], count=True, count_method="singlestep"
    )
    assert single.dynamic_instructions == run.dynamic_instructions
    assert single.function_instructions == run.function_instructions


def test_exact_packet_count_hexagon(objdir):
    need("hexagon")
    need_objdump()
    n = 4096
    path, _ = compile_kernel(objdir, "qadd_count_hexagon", saturating_add_int8(n, 128), HEX)
    hand = _hexagon_hand_count(path, "qadd_compute_")
    assert hand["vadd"] == n // 128  # one HVX vadd:sat per 128 bytes, the loop as scheduled
    rng = np.random.default_rng(11)
    a, b = rng_int8(rng, n), rng_int8(rng, n)
    args = [ArgSpec("A", (n,), "int8"), ArgSpec("B", (n,), "int8"), ArgSpec("C", (n,), "int8")]
    run = run_hexagon(path, "qadd", args, {"A": a, "B": b}, ["C"], count=True)
    np.testing.assert_array_equal(
        run.outputs["C"], np.clip(a.astype(np.int16) + b, -128, 127).astype(np.int8)
    )
    assert run.function_packets["qadd_compute_"] == hand["packets"]
    assert run.function_instructions["qadd_compute_"] == hand["instructions"]
    assert run.kernel_packets == run.packets and run.kernel_instructions == run.dynamic_instructions
    assert sum(run.function_packets.values()) == run.packets
    assert run.packets < run.dynamic_instructions
    single = run_hexagon(
        path, "qadd", args, {"A": a, "B": b}, ["C"], count=True, count_method="singlestep"
    )
    assert (single.packets, single.dynamic_instructions) == (run.packets, run.dynamic_instructions)


# ------------------------------------------------------------------------------------------------
# Tests: errors


@pytest.mark.parametrize("arch", ["aarch64", "hexagon"])
def test_batch_runs_each_call_on_its_own_buffers(arch, objdir):
    """One process, several calls (one kernel object twice with different data, another kernel
    in between): each result equals numpy's, as separate runs would give."""
    need(arch)
    dense, _ = compile_kernel(objdir, f"dense_{arch}", dense_int8(), TARGETS[arch])
    qadd, _ = compile_kernel(objdir, f"qadd_{arch}", saturating_add_int8(256, 0), TARGETS[arch])
    rng = np.random.default_rng(4)
    dargs = (
        ArgSpec("A", (8, 64), "int8"),
        ArgSpec("W", (32, 64), "int8"),
        ArgSpec("C", (8, 32), "int32"),
    )
    qargs = (
        ArgSpec("A", (256,), "int8"),
        ArgSpec("B", (256,), "int8"),
        ArgSpec("C", (256,), "int8"),
    )
    d1 = {"A": rng_int8(rng, (8, 64)), "W": rng_int8(rng, (32, 64))}
    d2 = {"A": rng_int8(rng, (8, 64)), "W": rng_int8(rng, (32, 64))}
    q = {"A": rng_int8(rng, (256,)), "B": rng_int8(rng, (256,))}
    calls = [
        KernelCall(dense, "dense_i8", dargs, d1, ("C",)),
        KernelCall(qadd, "qadd", qargs, q, ("C",)),
        KernelCall(dense, "dense_i8", dargs, d2, ("C",)),
    ]
    got = run_batch(arch, calls)
    for d, r in ((d1, got[0]), (d2, got[2])):
        np.testing.assert_array_equal(r["C"], d["A"].astype(np.int32) @ d["W"].astype(np.int32).T)
    np.testing.assert_array_equal(
        got[1]["C"], np.clip(q["A"].astype(np.int16) + q["B"], -128, 127).astype(np.int8)
    )
    assert run_batch(arch, []) == []


def test_batch_names_the_failing_call(objdir):
    need("aarch64")
    path, _ = compile_kernel(objdir, "qbad_aarch64", saturating_add_int8(512, 16, "qbad"), A64)
    ok, _ = compile_kernel(objdir, "qadd_aarch64", saturating_add_int8(256, 0), A64)
    x = np.zeros(512, np.int16)
    bad_args = (
        ArgSpec("A", (512,), "int16"),
        ArgSpec("B", (512,), "int16"),
        ArgSpec("C", (512,), "int16"),
    )
    good_args = (
        ArgSpec("A", (256,), "int8"),
        ArgSpec("B", (256,), "int8"),
        ArgSpec("C", (256,), "int8"),
    )
    y = np.zeros(256, np.int8)
    calls = [
        KernelCall(ok, "qadd", good_args, {"A": y, "B": y}, ("C",)),
        KernelCall(path, "qbad", bad_args, {"A": x, "B": x}, ("C",)),
    ]
    with pytest.raises(
        EmulationError,
        match=r"kernel __tvm_ffi_qbad \(call 1\) returned -?\d+ "
        r".*int8",
    ):
        run_batch("aarch64", calls)
    # two objects defining one entry point cannot be linked together
    other, _ = compile_kernel(objdir, "qadd512_aarch64", saturating_add_int8(512, 16), A64)
    calls[1] = KernelCall(other, "qadd", bad_args, {"A": x, "B": x}, ("C",))
    with pytest.raises(EmulationError, match=r"calls 0 and 1 .* both define __tvm_ffi_qadd"):
        run_batch("aarch64", calls)


def test_kernel_error_code_is_reported(objdir):
    need("aarch64")
    path, _ = compile_kernel(objdir, "qadd512_aarch64", saturating_add_int8(512, 16), A64)
    x = np.zeros(512, np.int16)
    args = [
        ArgSpec("A", (512,), "int16"),
        ArgSpec("B", (512,), "int16"),
        ArgSpec("C", (512,), "int16"),
    ]
    with pytest.raises(EmulationError, match=r"kernel __tvm_ffi_qadd returned -?\d+ .*int8") as e:
        run_aarch64(path, "qadd", args, {"A": x, "B": x}, ["C"])
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("arch", ["aarch64", "hexagon"])
def test_link_error_names_the_undefined_symbol(arch, objdir):
    need(arch)
    _tvm()
    from tvm.script import tirx as T

    @T.prim_func
    def ext(A: T.Buffer((4,), "int32"), B: T.Buffer((4,), "int32")):
        T.func_attr({"global_symbol": "ext", "tir.noalias": True})
        for i in range(4):
            B[i] = T.call_extern("int32", "accelsim_missing_fn", A[i])

    path, _ = compile_kernel(objdir, f"ext_{arch}", ext, TARGETS[arch])
    args = [ArgSpec("A", (4,), "int32"), ArgSpec("B", (4,), "int32")]
    with pytest.raises(EmulationError, match="undefined symbol accelsim_missing_fn"):
        RUN[arch](path, "ext", args, {"A": np.zeros(4, np.int32)}, ["B"])


def test_bad_calls_fail_before_running(objdir, tmp_path):
    need("aarch64")
    need("hexagon")
    path, _ = compile_kernel(objdir, "qadd512_aarch64", saturating_add_int8(512, 16), A64)
    args = [
        ArgSpec("A", (512,), "int8"),
        ArgSpec("B", (512,), "int8"),
        ArgSpec("C", (512,), "int8"),
    ]
    x = np.zeros(512, np.int8)
    with pytest.raises(
        EmulationError,
        match=r"does not define the packed entry point "
        r"__tvm_ffi_nope .*__tvm_ffi_qadd",
    ):
        run_aarch64(path, "nope", args, {"A": x, "B": x}, ["C"])
    with pytest.raises(EmulationError, match="AArch64 object, not hexagon"):
        run_hexagon(path, "qadd", args, {"A": x, "B": x}, ["C"])
    with pytest.raises(EmulationError, match=r"input 'A': shape \(256,\)"):
        run_aarch64(path, "qadd", args, {"A": x[:256], "B": x}, ["C"])
    with pytest.raises(EmulationError, match="input 'B': dtype uint8"):
        run_aarch64(path, "qadd", args, {"A": x, "B": x.view(np.uint8)}, ["C"])
    with pytest.raises(EmulationError, match="unknown argument 'D'"):
        run_aarch64(path, "qadd", args, {"A": x, "B": x}, ["D"])
    with pytest.raises(ArgSpecError, match="dtype bool is not supported"):
        ArgSpec("M", (4,), "bool")
    with pytest.raises(EmulationError, match="does not exist"):
        run_aarch64(tmp_path / "missing.o", "qadd", args, {"A": x, "B": x}, ["C"])


def test_build_directory_is_removed_unless_kept(objdir, tmp_path, monkeypatch):
    need("aarch64")
    path, _ = compile_kernel(objdir, "qadd512_aarch64", saturating_add_int8(512, 16), A64)
    args = [
        ArgSpec("A", (512,), "int8"),
        ArgSpec("B", (512,), "int8"),
        ArgSpec("C", (512,), "int8"),
    ]
    x = np.ones(512, np.int8)
    monkeypatch.delenv("ACCELSIM_KEEP_EMULATION", raising=False)
    run_aarch64(path, "qadd", args, {"A": x, "B": x}, ["C"], workdir=tmp_path / "w")
    assert list((tmp_path / "w").iterdir()) == []
    monkeypatch.setenv("ACCELSIM_KEEP_EMULATION", "1")
    run_aarch64(path, "qadd", args, {"A": x, "B": x}, ["C"], workdir=tmp_path / "k")
    (kept,) = list((tmp_path / "k").iterdir())
    assert (kept / "kernel.elf").is_file() and (kept / "accelsim_args.h").is_file()


def _mbqm_operands(seed: int, n: int, shifts: tuple[int, int]):
    """int32 operands of MultiplyByQuantizedMultiplier (x, multiplier, shift in [lo, hi]) for
    the requantization forms: random, then the int32 extremes (INT32_MIN times the largest
    multiplier among them), multipliers 0, 2^30 and 2^31 - 1, every shift once, the first
    rounding's ties (m = 2^30 and odd x: exact halves, where shift 0 is allowed) and the
    second's (m = 2^30, hi = k 2^r +- 2^(r-1) and one either side, for every right shift r)."""
    lo, hi_s = shifts
    rng = np.random.default_rng(seed)
    x = rng.integers(-(2**31), 2**31, n).astype(np.int64)
    m = rng.integers(2**30, 2**31, n).astype(np.int64)
    s = rng.integers(lo, hi_s + 1, n)
    x[:6], m[:6] = [-(2**31), 2**31 - 1, 0, -1, 1, -(2**31)], [2**31 - 1] * 5 + [2**30]
    m[6:9] = [0, 2**30, 2**31 - 1]
    at = 16
    s[at : at + hi_s - lo + 1] = np.arange(lo, hi_s + 1)
    at += hi_s - lo + 1
    if lo <= 0 <= hi_s:
        x[at : at + 64] = rng.integers(-(2**20), 2**20, 64) | 1
        m[at : at + 64], s[at : at + 64] = 2**30, 0
        at += 64
    ties = [
        (2 * (k * (1 << r) + (1 << (r - 1)) * (1 if k >= 0 else -1) + d), -r)
        for r in range(max(1, -hi_s), min(30, -lo) + 1)
        for k in (-3, -1, 0, 1, 2)
        for d in (-1, 0, 1)
    ]
    t = np.array(ties, np.int64).reshape(-1, 2)
    x[at : at + len(t)], m[at : at + len(t)], s[at : at + len(t)] = t[:, 0], 2**30, t[:, 1]
    x = np.clip(x, -(2**31), 2**31 - 1)
    return x.astype(np.int32), m.astype(np.int32), s.astype(np.int32)


def test_hvx_requantization_form_matches_fixedpoint(objdir):
    """`requant.mbqm_vmpye` (VMPYE + VMPYO:<<1:rnd:sat:shift, the int32 RoundingDivideByPOT)
    vectorized in 32 HVX lanes, run under qemu-hexagon, against accelsim.core.fixedpoint's
    MultiplyByQuantizedMultiplier: the int32 extremes, every shift in [-31, 30] (left shifts
    that wrap included), multipliers 0, 2^30 and 2^31 - 1, and products whose low 31 bits are
    exactly 2^30 (the rounding ties of both signs). Truncating the low half's product a second
    time, or rounding ties to even, fails it."""
    need("hexagon")
    from accelsim.core import fixedpoint as fx
    from accelsim.lower import requant as rq

    _tvm()
    from tvm import te

    n = 1 << 12
    x, m, s = _mbqm_operands(5, n, (-31, 30))
    X, M, S = (te.placeholder((n,), "int32", name=k) for k in ("X", "M", "S"))
    Y = te.compute((n,), lambda i: rq.mbqm_vmpye(X[i], M[i], S[i]), name="Y")
    func = te.create_prim_func([X, M, S, Y]).with_attr("global_symbol", "rq_hvx")
    path, asm = compile_kernel(objdir, "rq_hvx", _scheduled(func, "rq_hvx", "Y", 32), HEX)
    assert asm_has(asm, "vmpye(") and asm_has(asm, "vmpyo(")
    args = [ArgSpec(k, (n,), "int32") for k in ("X", "M", "S", "Y")]
    run = run_hexagon(path, "rq_hvx", args, {"X": x, "M": m, "S": s}, ["Y"])
    np.testing.assert_array_equal(run.outputs["Y"], fx.multiply_by_quantized_multiplier(x, m, s))


@pytest.mark.parametrize("out_dtype", ["int8", "uint8"])
def test_hvx_one_step_rounding_matches_fixedpoint_after_the_clamp(objdir, out_dtype):
    """`requant.mbqm_vmpye(..., nudge=True)` (the rounding as (hi +sat 2^(r-1) + (hi >> 31)) >> r)
    under qemu-hexagon, then the zero point and an 8-bit clamp, against accelsim.core
    .fixedpoint: every right shift in `requant.NUDGE_RIGHT`, the int32 extremes, products whose
    remainder is exactly half of 2^r (ties of both signs, rounded away from zero) and one
    below and above it, zero points at both ends. Rounding ties up (no sign term), or letting
    the nudged sum wrap instead of saturate, fails it."""
    need("hexagon")
    from accelsim.core import fixedpoint as fx
    from accelsim.lower import requant as rq

    _tvm()
    from tvm import te

    lo_r, hi_r = rq.NUDGE_RIGHT
    n = 1 << 13
    rng = np.random.default_rng(17)
    x = rng.integers(-(2**31), 2**31, n).astype(np.int64)
    m = rng.integers(2**30, 2**31, n).astype(np.int64)
    s = -rng.integers(lo_r, hi_r + 1, n).astype(np.int64)
    x[:6], m[:6] = [-(2**31), 2**31 - 1, 0, -1, 1, 2**31 - 1], [2**31 - 1] * 6
    # m = 2^30 makes SRDHM(x, m) = round(x / 2): hi = x // 2 for even x; ties at hi = k 2^r +-
    # 2^(r-1) (and one either side) for every right shift r
    ties = []
    for r in range(lo_r, hi_r + 1):
        for k in (-3, -1, 0, 1, 2):
            for d in (-1, 0, 1):
                hi = k * (1 << r) + (1 << (r - 1)) * (1 if k >= 0 else -1) + d
                ties.append((2 * hi, -r))
    t = np.array(ties, np.int64)
    x[8 : 8 + len(t)], m[8 : 8 + len(t)], s[8 : 8 + len(t)] = t[:, 0], 2**30, t[:, 1]
    x = np.clip(x, -(2**31), 2**31 - 1).astype(np.int32)
    m, s = m.astype(np.int32), s.astype(np.int32)
    lo, hi = (-128, 127) if out_dtype == "int8" else (0, 255)
    zp = np.where(np.arange(n) % 2 == 0, lo + 3, hi - 3).astype(np.int32)
    X, M, S, Z = (te.placeholder((n,), "int32", name=k) for k in ("X", "M", "S", "Z"))

    def clamped(i):
        def k(r):
            return rq.clamp_add(r, Z[i], te.const(lo, "int32"), te.const(hi, "int32"))

        return rq.mbqm_vmpye(X[i], M[i], S[i], k, left_shifts=False, nudge=True)

    Y = te.compute((n,), clamped, name="Y")
    key = f"rq_nudge_{out_dtype}"
    func = te.create_prim_func([X, M, S, Z, Y]).with_attr("global_symbol", key)
    path, asm = compile_kernel(objdir, key, _scheduled(func, key, "Y", 32), HEX)
    assert asm_has(asm, "vmpye(") and asm_has(asm, ":sat")
    args = [ArgSpec(k, (n,), "int32") for k in ("X", "M", "S", "Z", "Y")]
    run = run_hexagon(path, key, args, {"X": x, "M": m, "S": s, "Z": zp}, ["Y"])
    want = np.clip(fx.multiply_by_quantized_multiplier(x, m, s).astype(np.int64) + zp, lo, hi)
    np.testing.assert_array_equal(run.outputs["Y"], want)


@pytest.mark.parametrize("nudge", [False, True])
def test_neon_requantization_form_matches_fixedpoint(objdir, nudge):
    """`requant.mbqm_sqrdmulh` (SQRDMULH, the fix-up, SRSHL) vectorized in 4 NEON lanes, run
    under qemu-aarch64, against accelsim.core.fixedpoint's MultiplyByQuantizedMultiplier: the
    int32 extremes (x = INT32_MIN with the largest multiplier: the fix-up's hi - 1 at its
    floor), multipliers 0, 2^30 and 2^31 - 1, every shift (`nudge`: every right shift, the fix-up
    as one SSRA of hi >> 31), and products at the ties of both roundings. Rounding ties up
    (no fix-up) fails it."""
    need("aarch64")
    from accelsim.core import fixedpoint as fx
    from accelsim.lower import requant as rq

    _tvm()
    from tvm import te

    n = 1 << 12
    x, m, s = _mbqm_operands(29, n, (-31, -1) if nudge else (-31, 30))
    X, M, S = (te.placeholder((n,), "int32", name=k) for k in ("X", "M", "S"))
    Y = te.compute(
        (n,),
        lambda i: rq.mbqm_sqrdmulh(X[i], M[i], S[i], left_shifts=not nudge, nudge=nudge),
        name="Y",
    )
    key = f"rq_neon_{int(nudge)}"
    func = te.create_prim_func([X, M, S, Y]).with_attr("global_symbol", key)
    path, asm = compile_kernel(objdir, key, _scheduled(func, key, "Y", 4), A64)
    assert asm_has(asm, "sqrdmulh") and asm_has(asm, "srshl")
    assert asm_has(asm, "ssra") == nudge and asm_has(asm, "sqadd") != nudge
    args = [ArgSpec(k, (n,), "int32") for k in ("X", "M", "S", "Y")]
    run = run_aarch64(path, key, args, {"X": x, "M": m, "S": s}, ["Y"])
    np.testing.assert_array_equal(run.outputs["Y"], fx.multiply_by_quantized_multiplier(x, m, s))


def test_division_by_a_known_scale_is_the_correctly_rounded_quotient(objdir):
    """`requant.div_known` (x / s as x r and two fused multiply-adds, r the correctly rounded
    1 / s) under qemu-hexagon (its scalar sffma) against numpy's float32 division, which IEEE
    rounds correctly: for scales of many magnitudes (down to 2^-60, lowering's floor) and
    mantissas (1 + 2^-23 and 2 - 2^-23 among them), quotients exactly halfway between integers
    and one ulp either side, random inputs over the whole float32 range, subnormals, zeros,
    infinities and NaN. Leaving out the remainder's correction fails it."""
    need("hexagon")
    from accelsim.core import requant as rp
    from accelsim.lower import requant as rq

    _tvm()
    from tvm import te

    rng = np.random.default_rng(23)
    scales = [
        np.float32(v) for v in (0.0078125, 0.02352941, 1 / 255, 0.1, 3.0, 0.000123, 2.0**-60, 7.5e3)
    ]
    scales += [np.float32(1 + 2**-23), np.float32(2 - 2**-23), np.nextafter(np.float32(0.1), 1)]
    n_per = 2048
    xs, ss = [], []
    for s in scales:
        k = rng.integers(-300, 300, n_per // 4).astype(np.float32)
        half = ((k + np.float32(0.5)) * s).astype(np.float32)  # near halfway quotients
        near = np.concatenate(
            [half, np.nextafter(half, np.float32(np.inf)), np.nextafter(half, np.float32(-np.inf))]
        )
        bits = rng.integers(0, 0xFFFFFFFF, n_per - near.size, dtype=np.uint64)
        wild = bits.astype(np.uint32).view(np.float32)
        xs.append(np.concatenate([near, wild]))
        ss.append(np.full(n_per, s, np.float32))
    x, s = np.concatenate(xs), np.concatenate(ss)
    x[:8] = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 3.4028235e38]
    r = np.array([rp.reciprocal32(v) for v in s], np.float32)
    n = x.size
    X, S, R = (te.placeholder((n,), "float32", name=k) for k in ("X", "S", "R"))
    Y = te.compute((n,), lambda i: rq.div_known(X[i], S[i], R[i]), name="Y")
    func = te.create_prim_func([X, S, R, Y]).with_attr("global_symbol", "divk")
    path, asm = compile_kernel(objdir, "divk_hexagon", func, HEX)
    assert "sfmpy" in asm and "sfrecipa" not in asm  # fused multiply-adds, no division
    args = [ArgSpec(k, (n,), "float32") for k in ("X", "S", "R", "Y")]
    got = run_hexagon(path, "divk", args, {"X": x, "S": s, "R": r}, ["Y"]).outputs["Y"]
    with np.errstate(all="ignore"):
        want = (x / s).astype(np.float32)
    # for |x| >= 2^-100 and quotients from 2^-96 to the bound (2^22) every quotient is the
    # division's, bit for bit, NaN as NaN (below, the remainder can underflow, which the
    # theorem excludes: with scales >= 2^-60, as lowering requires, such quotients are below
    # 2^-40, and every rounding to an integer takes both to 0); beyond the bound, of the same
    # sign and beyond 2^21, where every integer clamp takes both
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    mag = np.abs(want)
    normal = np.abs(x) >= np.float32(2**-100)
    inside = (mag <= np.float32(2**22)) & (mag >= np.float32(2**-96)) & normal
    np.testing.assert_array_equal(got[inside].view(np.uint32), want[inside].view(np.uint32))
    tiny = (mag < np.float32(2**-96)) | (~normal & ~np.isnan(want))
    assert np.all(np.abs(got[tiny]) < 2**-40) and np.all(mag[tiny] < 2**-40)
    out = (np.abs(want) > np.float32(2**22)) & ~np.isnan(want)
    assert out.sum() > 100 and inside.sum() > 10000
    assert np.all(np.sign(got[out]) == np.sign(want[out])) and np.all(np.abs(got[out]) > 2**21)


@pytest.mark.parametrize("out_dtype", ["int8", "uint8"])
def test_neon_narrow_finish_equals_the_int32_clamp(objdir, out_dtype):
    """`requant.narrow_finish` (the zero point and the clamp of an 8-bit output in 8-bit lanes:
    SQXTN, SQADD .8H, SQXTN or SQXTUN, SMAX / SMIN) vectorized in 16 lanes, run under
    qemu-aarch64, against `clip(r + zp, lo, hi)` in int64: the int32 extremes, every value
    around the int16 and 8-bit saturation bounds shifted by the zero point, and random ones,
    at zero points and clamp bounds of both ends. Adding the zero point without saturation in
    int16, or narrowing without it, fails it."""
    need("aarch64")
    from accelsim.lower import requant as rq

    _tvm()
    from tvm import te

    rng = np.random.default_rng(11)
    edges = [-(2**31), 2**31 - 1, 0, -1, 1]
    for b in (32767, -32768, 127, -128, 255, 0):
        edges += list(range(b - 300, b + 301, 1))
    r = np.concatenate([edges, rng.integers(-(2**31), 2**31, 4096)]).astype(np.int64)
    r = np.concatenate([r, rng.integers(-400, 400, 16 - r.size % 16)]).astype(np.int32)
    n = r.size
    R = te.placeholder((n,), "int32", name="R")
    Q = te.placeholder((3,), "int32", name="Q")  # zero point, lo, hi
    Y = te.compute((n,), lambda i: rq.narrow_finish(R[i], Q[0], Q[1], Q[2], out_dtype), name="Y")
    key = f"narrow_{out_dtype}"
    func = te.create_prim_func([R, Q, Y]).with_attr("global_symbol", key)
    path, asm = compile_kernel(objdir, key, _scheduled(func, key, "Y", 16), A64)
    assert asm_has(asm, "sqadd") and asm_has(asm, "sqxtn")
    args = [ArgSpec("R", (n,), "int32"), ArgSpec("Q", (3,), "int32"), ArgSpec("Y", (n,), out_dtype)]
    lo8, hi8 = (-128, 127) if out_dtype == "int8" else (0, 255)
    for zp, lo, hi in [(-128, lo8, hi8), (127, lo8, hi8), (3, lo8 + 5, hi8 - 7), (0, lo8, lo8)]:
        if out_dtype == "uint8":
            zp = min(max(zp + 128, 0), 255)
        q = np.array([zp, lo, hi], np.int32)
        run = run_aarch64(path, key, args, {"R": r, "Q": q}, ["Y"])
        want = np.clip(r.astype(np.int64) + zp, lo, hi)
        np.testing.assert_array_equal(run.outputs["Y"].astype(np.int64), want)
