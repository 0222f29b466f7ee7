"""Run TVM-generated kernels on emulated AArch64 and Hexagon, bit-exactly, and count what they execute.

A kernel is an object file written by ``tvm.compile(mod, target=...).mod.write_to_file(path)`` for an
IRModule with one PrimFunc. Its entry point uses TVM's packed calling convention::

    int __tvm_ffi_<symbol>(void* self, const TVMFFIAny* args, int32_t num_args, TVMFFIAny* ret)

with one ``TVMFFIAny`` of type index ``kTVMFFIDLTensorPtr`` per buffer argument. For every call this
module generates a data header (shapes, dtypes, the input bytes pulled in with ``.incbin``), compiles
the static C harness in ``harness/`` around it, links it with the kernel object and runs the result
under ``qemu-aarch64`` or ``qemu-hexagon``. The harness prints the kernel's return code and the output
arrays in hex on stdout; Python parses them back into numpy arrays.

AArch64: ``aarch64-linux-gnu-gcc -static`` (glibc). Hexagon: no libc; ``clang-19`` (freestanding) and
``ld.lld-19`` with ``harness/runtime_freestanding.c`` for ``_start``, ``memset``/``memcpy``, the
``write``/``exit`` system calls, a workspace arena and the integer division builtins.

Counting (``count=True``): qemu runs with ``-d in_asm,exec,nochain``, which logs every translated
block (its guest instructions) and every execution of a block. The window of the kernel call opens at
the first block that starts at the entry point and closes at the first later block in the harness's
``accelsim_call_kernel`` (the only caller), so ``dynamic_instructions`` covers the whole call:
the kernel object's code plus whatever it calls (``memset``, compiler runtime, the workspace
allocator). ``kernel_instructions`` is the part inside the kernel object's own code (gathered by
``harness/kernel.ld`` into one output section) and ``function_instructions`` splits the total by
function symbol. On Hexagon a translated block is a sequence of packets: ``packets`` counts executed
packets and ``dynamic_instructions`` the instructions in them (a duplex word is two instructions,
a constant extender ``immext`` is none).

The harness provides what TVM objects import: ``TVMFFIErrorSetRaisedFromCStrParts`` (the message
comes back in the EmulationError), ``__TVMBackendAllocWorkspace``/``__TVMBackendFreeWorkspace`` and
``__TVMBackendParallelLaunch``/``__TVMBackendParallelBarrier``: a parallel loop is split into
``tasks`` tasks (the target's hardware threads / HVX contexts), which the single emulated core
runs one after the other; each task computes its share from its id and the task count, as on the
real thread pool, so the split itself is what is checked. Counts therefore include the harness's
versions of these routines.

Build directories live under ``workdir`` (or a temporary directory) and are removed afterwards unless
the environment variable ``ACCELSIM_KEEP_EMULATION=1`` is set.
"""

from __future__ import annotations

import atexit
import bisect
import contextlib
import importlib.util
import os
import re
import resource
import shutil
import signal
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from accelsim.core.argspec import DL_DTYPES, ArgSpec
from accelsim.core.errors import AccelsimError

__all__ = [
    "EmulatorRun",
    "EmulationError",
    "KernelCall",
    "run_aarch64",
    "run_batch",
    "run_hexagon",
    "toolchain_status",
    "missing_tools",
]

HARNESS_DIR = Path(__file__).resolve().parent / "harness"

_EM_AARCH64 = 183
_EM_HEXAGON = 164

_DEFAULT_TIMEOUT_S = 600.0


class EmulationError(AccelsimError):
    """A kernel that cannot be built, linked or run under the emulator, or that fails there."""


@dataclass(frozen=True)
class EmulatorRun:
    """What one emulated kernel call produced.

    ``dynamic_instructions`` (AArch64: instructions; Hexagon: instructions in executed packets) and
    ``packets`` (Hexagon only) cover the whole call including routines the kernel calls; they are
    None unless the run counted. ``kernel_instructions``/``kernel_packets`` are the part executed in
    the kernel object's own code; ``function_instructions``/``function_packets`` split the totals by
    the function symbol the code belongs to.
    """

    outputs: dict[str, np.ndarray]
    dynamic_instructions: int | None
    packets: int | None
    wall_s: float
    kernel_instructions: int | None = None
    kernel_packets: int | None = None
    function_instructions: dict[str, int] | None = field(default=None, repr=False)
    function_packets: dict[str, int] | None = field(default=None, repr=False)


# ------------------------------------------------------------------------------------------------
# Tools


_TOOL_CANDIDATES: dict[str, tuple[str, ...]] = {
    "qemu-aarch64": ("qemu-aarch64",),
    "aarch64-linux-gnu-gcc": ("aarch64-linux-gnu-gcc",),
    "qemu-hexagon": ("qemu-hexagon",),
    "clang": ("clang-19", "clang"),
    "ld.lld": ("ld.lld-19", "ld.lld"),
    "llvm-nm": ("llvm-nm-19", "llvm-nm"),
    "aarch64-linux-gnu-nm": ("aarch64-linux-gnu-nm",),
    "llvm-objdump": ("llvm-objdump-19", "llvm-objdump"),
    "llvm-mc": ("llvm-mc-19", "llvm-mc"),
}

_NEEDED = {
    "aarch64": ("qemu-aarch64", "aarch64-linux-gnu-gcc", "llvm-nm"),
    "hexagon": ("qemu-hexagon", "clang", "ld.lld", "llvm-nm"),
}

_DEBIAN_PACKAGE = {
    "qemu-aarch64": "qemu-user",
    "qemu-hexagon": "qemu-user",
    "aarch64-linux-gnu-gcc": "gcc-aarch64-linux-gnu and libc6-dev-arm64-cross",
    "clang": "clang-19",
    "ld.lld": "lld-19",
    "llvm-nm": "llvm-19",
    "aarch64-linux-gnu-nm": "binutils-aarch64-linux-gnu",
    "llvm-objdump": "llvm-19",
    "llvm-mc": "llvm-19",
}


def which_tool(name: str) -> str | None:
    """The path of a toolchain program (a key of `_TOOL_CANDIDATES`), or None."""
    for cand in _TOOL_CANDIDATES[name]:
        path = shutil.which(cand)
        if path:
            return path
    return None


def _tvm_ffi_include_dirs() -> list[str] | None:
    """The tvm_ffi C headers (c_api.h, dlpack.h), found without importing tvm_ffi (which imports torch)."""
    try:
        spec = importlib.util.find_spec("tvm_ffi")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        inc = Path(loc) / "include"
        dl = Path(loc) / "3rdparty" / "dlpack" / "include"
        if (inc / "tvm" / "ffi" / "c_api.h").is_file():
            dirs = [str(inc)]
            if (dl / "dlpack" / "dlpack.h").is_file():
                dirs.append(str(dl))
            elif not (inc / "dlpack" / "dlpack.h").is_file():
                continue
            return dirs
    return None


def toolchain_status() -> dict[str, str | None]:
    """Path of every tool this module uses, or None where it is not installed.

    ``tvm_ffi_include`` is the tvm_ffi header directory (optional: without it the harness uses its
    own copy of the ABI-stable structures).
    """
    status: dict[str, str | None] = {name: which_tool(name) for name in _TOOL_CANDIDATES}
    inc = _tvm_ffi_include_dirs()
    status["tvm_ffi_include"] = inc[0] if inc else None
    return status


def _resolve(arch: str) -> dict[str, str | None]:
    tools = {name: which_tool(name) for name in _NEEDED[arch]}
    if arch == "aarch64" and tools["llvm-nm"] is None:
        tools["llvm-nm"] = which_tool("aarch64-linux-gnu-nm")  # GNU nm reads AArch64 objects too
    return tools


def missing_tools(arch: str) -> list[str]:
    """Tools that ``run_aarch64`` (arch ``"aarch64"``) or ``run_hexagon`` (``"hexagon"``) lack."""
    if arch not in _NEEDED:
        raise ValueError(f"unknown arch {arch!r}: expected 'aarch64' or 'hexagon'")
    return [name for name, path in _resolve(arch).items() if path is None]


def _require(arch: str) -> dict[str, str]:
    missing = missing_tools(arch)
    if missing:
        pkgs = sorted({_DEBIAN_PACKAGE[m] for m in missing})
        raise EmulationError(
            f"cannot emulate {arch}: {', '.join(missing)} not found "
            f"(Debian packages: {', '.join(pkgs)}; run scripts/install-system-deps.sh)"
        )
    return _resolve(arch)  # type: ignore[return-value]


# ------------------------------------------------------------------------------------------------
# Object files


def _elf_header(path: Path) -> tuple[int, int]:
    """(e_machine, e_flags) of an ELF file."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError as exc:
        raise EmulationError(f"cannot read kernel object {path}: {exc.strerror}") from exc
    if len(head) < 52 or head[:4] != b"\x7fELF":
        raise EmulationError(f"{path} is not an ELF object file")
    ei_class, ei_data = head[4], head[5]
    endian = "<" if ei_data == 1 else ">"
    (machine,) = struct.unpack_from(endian + "H", head, 18)
    flags_off = 36 if ei_class == 1 else 48
    (flags,) = struct.unpack_from(endian + "I", head, flags_off)
    return machine, flags


def _run_tool(cmd: list[str], cwd: Path, what: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired as exc:
        raise EmulationError(f"{what} timed out after 300 s: {' '.join(cmd[:3])} ...") from exc
    except OSError as exc:
        raise EmulationError(f"{what}: cannot run {cmd[0]}: {exc.strerror}") from exc


def _nm_symbols(nm: str, path: Path, cwd: Path) -> list[tuple[str, str, int | None, int | None]]:
    """(name, type letter, address, size) of the defined symbols of an object or executable."""
    proc = _run_tool([nm, "--defined-only", "-S", str(path)], cwd, "listing symbols")
    if proc.returncode != 0:
        raise EmulationError(f"{Path(nm).name} cannot read {path}: {_first_line(proc.stderr)}")
    out = []
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) == 4:
            addr, size, kind, name = parts
            out.append((name, kind, int(addr, 16), int(size, 16)))
        elif len(parts) == 3:
            addr, kind, name = parts
            out.append((name, kind, int(addr, 16), None))
    return out


def _first_line(text: str) -> str:
    """The first line that reports an error, else the first non-empty line."""
    for line in text.splitlines():
        if "error" in line.lower():
            return line.strip()
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return "(no message)"


_UNDEFINED_PATTERNS = (
    re.compile(r"undefined reference to [`'‘]([^'’`]+)['’]"),
    re.compile(r"undefined symbol: (\S+)"),
)


def _link_error(arch: str, text: str) -> EmulationError:
    undefined: list[str] = []
    for pat in _UNDEFINED_PATTERNS:
        for m in pat.finditer(text):
            if m.group(1) not in undefined:
                undefined.append(m.group(1))
    if undefined:
        names = ", ".join(undefined[:8]) + (" ..." if len(undefined) > 8 else "")
        return EmulationError(
            f"linking the kernel for {arch} failed: undefined symbol "
            f"{names} (the kernel needs a function that neither the harness nor the {arch} "
            f"runtime it links provides)"
        )
    errors = [ln.strip() for ln in text.splitlines() if "error" in ln.lower()]
    return EmulationError(
        f"linking the kernel for {arch} failed: {errors[0] if errors else _first_line(text)}"
    )


# ------------------------------------------------------------------------------------------------
# Harness generation


def _check_io(
    args: list[ArgSpec], inputs: dict[str, np.ndarray], outputs: list[str]
) -> dict[str, np.ndarray]:
    if not args:
        raise EmulationError("the kernel needs at least one buffer argument")
    args = [a if isinstance(a, ArgSpec) else ArgSpec(*a) for a in args]
    names = [a.name for a in args]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise EmulationError(f"argument names must be unique; repeated: {', '.join(dup)}")
    unknown = sorted(set(inputs) - set(names)) + sorted(set(outputs) - set(names))
    if unknown:
        raise EmulationError(
            f"unknown argument {unknown[0]!r}: the kernel's arguments are {', '.join(names)}"
        )
    if not outputs:
        raise EmulationError("no outputs requested")
    data = {}
    for a in args:
        if a.name not in inputs:
            continue
        arr = np.asarray(inputs[a.name])
        if arr.dtype.name != a.dtype:
            raise EmulationError(
                f"input {a.name!r}: dtype {arr.dtype.name} does not match the argument's {a.dtype}"
            )
        if tuple(arr.shape) != a.shape:
            raise EmulationError(
                f"input {a.name!r}: shape {tuple(arr.shape)} does not match the "
                f"argument's {a.shape}"
            )
        data[a.name] = np.ascontiguousarray(arr, dtype=np.dtype(a.dtype).newbyteorder("<"))
    return data


def _arg_table(
    build: Path,
    prefix: str,
    table: str,
    args: list[ArgSpec],
    data: dict[str, np.ndarray],
    outputs: list[str],
) -> tuple[list[str], list[str]]:
    """C declarations of one call's argument table `table` (data, shapes, DLPack types) and the
    assembler lines that pull its input bytes in with `.incbin`."""
    lines: list[str] = []
    asm: list[str] = []
    for i, a in enumerate(args):
        arg = f"accelsim_{prefix}arg_{i}"
        if a.name in data:
            (build / f"in_{prefix}{i}.bin").write_bytes(data[a.name].tobytes())
            asm += [
                ".pushsection .data",
                ".p2align 7",
                f".globl {arg}",
                f".type {arg},@object",
                f"{arg}:",
                f'.incbin \\"in_{prefix}{i}.bin\\"',
                ".p2align 7",
                f".size {arg}, .-{arg}",
                ".popsection",
            ]
            lines.append(f"extern unsigned char {arg}[];")
        else:
            lines.append(
                f"static unsigned char {arg}[{max(a.nbytes, 1)}] __attribute__((aligned(128)));"
            )
        if a.shape:
            lines.append(
                f"static int64_t accelsim_{prefix}shape_{i}[{len(a.shape)}] = "
                f"{{{', '.join(f'{d}LL' for d in a.shape)}}};"
            )
    lines.append(f"static const accelsim_arg_t {table}[{len(args)}] = {{")
    for i, a in enumerate(args):
        code, bits = DL_DTYPES[a.dtype]
        shape = f"accelsim_{prefix}shape_{i}" if a.shape else "0"
        lines.append(
            f"  {{accelsim_{prefix}arg_{i}, {len(a.shape)}, {shape}, {code}, {bits}, 1, "
            f"{a.nbytes}ULL, {1 if a.name in outputs else 0}}},  /* {a.name}: "
            f"{a.dtype}{list(a.shape)} */"
        )
    lines.append("};")
    return lines, asm


def _asm_block(asm: list[str]) -> list[str]:
    if not asm:
        return []
    body = "\\n".join(asm)
    return [f'__asm__("{body}\\n");']


def _tasks_line(tasks: int) -> str:
    if int(tasks) < 1:
        raise EmulationError(f"tasks: expected a positive task count, found {tasks}")
    return f"static int accelsim_num_tasks(void) {{ return {int(tasks)}; }}"


def _write_harness_data(
    build: Path,
    entry: str,
    args: list[ArgSpec],
    data: dict[str, np.ndarray],
    outputs: list[str],
    tasks: int = 1,
) -> None:
    table, asm = _arg_table(build, "", "accelsim_args", args, data, outputs)
    lines = [
        "/* Generated by accelsim.kernels.emulate for one kernel call. */",
        f"#define ACCELSIM_NARGS {len(args)}",
        f"#define ACCELSIM_ENTRY {entry}",
        _tasks_line(tasks),
    ]
    (build / "accelsim_args.h").write_text("\n".join(lines + _asm_block(asm) + table) + "\n")


# A batch runs through harness.c unchanged: its generated header makes the one kernel it calls
# `accelsim_batch`, defined here, which calls every kernel in turn and prints each call's
# result with the harness's own output routines, between "ACCELSIM-CALL <j>" and "ACCELSIM-END".
_BATCH_CALLER = """
static DLTensor accelsim_batch_tensors[ACCELSIM_BATCH_MAXARGS];
static TVMFFIAny accelsim_batch_packed[ACCELSIM_BATCH_MAXARGS];
static int accelsim_batch(void* self, const TVMFFIAny* a, int32_t n, TVMFFIAny* r) {
  (void)self; (void)a; (void)n; (void)r;
  for (int j = 0; j < ACCELSIM_BATCH_CALLS; ++j) {
    const accelsim_arg_t* args = accelsim_batch_calls[j].args;
    int32_t na = accelsim_batch_calls[j].nargs;
    for (int i = 0; i < na; ++i) {
      DLTensor* t = &accelsim_batch_tensors[i];
      t->data = args[i].data;
      t->device.device_type = kDLCPU;
      t->device.device_id = 0;
      t->ndim = args[i].ndim;
      t->dtype.code = args[i].code;
      t->dtype.bits = args[i].bits;
      t->dtype.lanes = args[i].lanes;
      t->shape = args[i].shape;
      t->strides = 0;
      t->byte_offset = 0;
      accelsim_batch_packed[i].type_index = kTVMFFIDLTensorPtr;
      accelsim_batch_packed[i].zero_padding = 0;
      accelsim_batch_packed[i].v_int64 = 0;
      accelsim_batch_packed[i].v_ptr = t;
    }
    TVMFFIAny ret;
    ret.type_index = kTVMFFINone;
    ret.zero_padding = 0;
    ret.v_int64 = 0;
    out_str("ACCELSIM-CALL "); out_dec(j); out_char('\\n');
    out_flush();
    int rc = accelsim_batch_calls[j].fn((void*)0, accelsim_batch_packed, na, &ret);
    out_str("ACCELSIM-RC "); out_dec(rc); out_char('\\n');
    if (rc == 0) {
      for (int i = 0; i < na; ++i) {
        if (!args[i].is_output) continue;
        out_str("ACCELSIM-OUT "); out_dec(i); out_char(' '); out_dec((int64_t)args[i].nbytes);
        out_char('\\n');
        out_hex((const unsigned char*)args[i].data, args[i].nbytes);
        out_char('\\n');
      }
    }
    out_str("ACCELSIM-END\\n");
  }
  return 0;
}
"""


def _write_batch_data(
    build: Path,
    calls: list[KernelCall],
    entries: list[str],
    data: list[dict[str, np.ndarray]],
    tasks: int = 1,
) -> None:
    lines = [
        f"/* Generated by accelsim.kernels.emulate for a batch of {len(calls)} kernel calls. */",
        _tasks_line(tasks),
        "#define ACCELSIM_NARGS 1",
        "#define ACCELSIM_ENTRY accelsim_batch",
        f"#define ACCELSIM_BATCH_CALLS {len(calls)}",
        f"#define ACCELSIM_BATCH_MAXARGS {max(len(c.args) for c in calls)}",
        "typedef int (*accelsim_entry_t)(void*, const TVMFFIAny*, int32_t, TVMFFIAny*);",
    ]
    lines += [
        f"extern int {e}(void*, const TVMFFIAny*, int32_t, TVMFFIAny*);"
        for e in dict.fromkeys(entries)
    ]
    asm: list[str] = []
    for j, c in enumerate(calls):
        t, a = _arg_table(
            build, f"c{j}_", f"accelsim_c{j}_args", list(c.args), data[j], list(c.outputs)
        )
        lines += t
        asm += a
    lines += [
        "static unsigned char accelsim_arg_0[1];",
        "static const accelsim_arg_t accelsim_args[1] = {{accelsim_arg_0, 0, 0, 0, 8, 1, "
        "1ULL, 0}};",
        "static const struct { accelsim_entry_t fn; int32_t nargs; "
        "const accelsim_arg_t* args; } accelsim_batch_calls[ACCELSIM_BATCH_CALLS] = {",
    ]
    lines += [
        f"  {{{e}, {len(c.args)}, accelsim_c{j}_args}},"
        for j, (c, e) in enumerate(zip(calls, entries))
    ]
    lines.append("};")
    (build / "accelsim_args.h").write_text(
        "\n".join(lines[:1] + _asm_block(asm) + lines[1:]) + "\n" + _BATCH_CALLER
    )


# ------------------------------------------------------------------------------------------------
# Running


_SIGNAL_TEXT = {
    signal.SIGSEGV: "segmentation fault (the kernel read or wrote outside its buffers)",
    signal.SIGBUS: "bus error (misaligned or invalid memory access)",
    signal.SIGFPE: "arithmetic exception (for example an integer division by zero)",
    signal.SIGABRT: "aborted",
    signal.SIGKILL: "killed",
}


def _no_core_dumps():  # pragma: no cover - runs in the child
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _qemu_version(qemu: str) -> str:
    try:
        out = subprocess.run([qemu, "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""
    m = re.search(r"version (\d+\.\d+(\.\d+)?)", out)
    return m.group(1) if m else ""


_SINGLESTEP_FLAG: dict[str, str] = {}


def _singlestep_flag(qemu: str) -> str:
    """qemu < 8.1 spells one-instruction-per-block ``-singlestep``; later ones ``-one-insn-per-tb``."""
    if qemu not in _SINGLESTEP_FLAG:
        proc = subprocess.run([qemu, "-h"], capture_output=True, text=True, timeout=60)
        _SINGLESTEP_FLAG[qemu] = (
            "-one-insn-per-tb" if "-one-insn-per-tb" in proc.stdout else "-singlestep"
        )
    return _SINGLESTEP_FLAG[qemu]


class _TraceParser:
    """Counts guest instructions (and Hexagon packets) executed within the kernel call.

    Reads qemu's ``-d in_asm,exec,nochain`` log: ``IN:`` blocks list each translated block's guest
    words (``0x<addr>:  <word> ...``), ``Trace`` lines each execution of a block (its guest pc is the
    second field in brackets). A block retranslated at the same pc replaces the earlier one from then
    on, so executions are tallied per (pc, translation).
    """

    def __init__(self, hexagon: bool, entry: int, stop_lo: int, stop_hi: int):
        self.hexagon = hexagon
        self.entry = entry
        self.stop_lo, self.stop_hi = stop_lo, stop_hi
        self.current: dict[int, tuple[int, int]] = {}  # pc -> key of its latest translation
        self.blocks: dict[
            tuple[int, int], list[tuple[int, int, int]]
        ] = {}  # key -> [(addr, insns, packet_ends)]
        self.counts: dict[tuple[int, int], int] = {}
        self.state = 0  # 0: before the call, 1: inside, 2: returned
        self.last_key: tuple[int, int] | None = None
        self.other: list[str] = []
        self.stopped_early = 0

    def _words(self, lines: list[bytes]) -> list[tuple[int, int, int]]:
        out = []
        for ln in lines:
            head, _, rest = ln.partition(b":")
            parts = rest.split()
            addr = int(head, 16)
            word = int(parts[0], 16) if parts else 0
            if self.hexagon:
                parse = (word >> 14) & 3
                if parse == 0:  # duplex: two sub-instructions, always ends its packet
                    out.append((addr, 2, 1))
                elif (word >> 28) == 0:  # constant extender (immext): part of the next instruction
                    out.append((addr, 0, 1 if parse == 3 else 0))
                else:
                    out.append((addr, 1, 1 if parse == 3 else 0))
            else:
                out.append((addr, 1, 0))
        return out

    def feed(self, stream) -> None:
        pending: list[bytes] | None = None
        current, counts = self.current, self.counts
        for line in stream:
            if line.startswith(b"Trace "):
                if pending:
                    self._finish(pending)
                    pending = None
                if self.state == 2:
                    continue
                try:
                    pc = int(line.split(b"[", 1)[1].split(b"/", 2)[1], 16)
                except (IndexError, ValueError):
                    continue
                if self.state == 0:
                    if pc != self.entry:
                        continue
                    self.state = 1
                elif self.stop_lo <= pc < self.stop_hi:
                    self.state = 2
                    continue
                key = current.get(pc)
                if key is None:
                    key = (pc, -1)
                counts[key] = counts.get(key, 0) + 1
                self.last_key = key
            elif line.startswith(b"0x"):
                if pending is not None:
                    pending.append(line)
            elif line.startswith(b"IN:"):
                if pending:
                    self._finish(pending)
                pending = []
            elif line.startswith(b"----") or not line.strip():
                if pending:
                    self._finish(pending)
                pending = None
            elif line.startswith(b"Stopped execution of TB chain"):
                # The block logged last did not run after all.
                if self.state == 1 and self.last_key is not None:
                    counts[self.last_key] -= 1
                    self.stopped_early += 1
            elif line.startswith((b"OBJD-", b"Linking TBs", b"Disassembler")):
                continue
            elif len(self.other) < 50:
                self.other.append(line.decode(errors="replace").rstrip())
        if pending:
            self._finish(pending)

    def _finish(self, lines: list[bytes]) -> None:
        words = self._words(lines)
        if not words:
            return
        pc = words[0][0]
        prev = self.current.get(pc)
        key = (pc, 0 if prev is None else prev[1] + 1)
        self.current[pc] = key
        self.blocks[key] = words

    def totals(self, functions: list[tuple[int, int, str]], kernel: tuple[int, int]):
        if any(k[1] == -1 for k in self.counts):
            raise EmulationError(
                "instruction count failed: qemu executed a block whose translation was not logged"
            )
        starts = [f[0] for f in functions]
        insns = packets = k_insns = k_packets = 0
        per_fn_i: dict[str, int] = {}
        per_fn_p: dict[str, int] = {}
        for key, n in self.counts.items():
            if n == 0:
                continue
            for addr, ni, np_ in self.blocks[key]:
                insns += n * ni
                packets += n * np_
                if kernel[0] <= addr < kernel[1]:
                    k_insns += n * ni
                    k_packets += n * np_
                j = bisect.bisect_right(starts, addr) - 1
                if j >= 0 and addr < functions[j][1]:
                    name = functions[j][2]
                elif kernel[0] <= addr < kernel[1]:
                    name = "<kernel: unnamed code>"  # e.g. TVM's private __tvm_parallel_lambda
                else:
                    name = "<unknown>"
                per_fn_i[name] = per_fn_i.get(name, 0) + n * ni
                per_fn_p[name] = per_fn_p.get(name, 0) + n * np_
        return insns, packets, k_insns, k_packets, per_fn_i, per_fn_p


def _describe_signal(rc: int, arch: str, cpu: str) -> str:
    sig = -rc if rc < 0 else rc - 128
    if sig == signal.SIGILL:
        return (
            f"illegal instruction: the kernel uses an instruction the emulated CPU {cpu} lacks "
            f"(qemu-{arch} -cpu {cpu})"
        )
    try:
        name = signal.Signals(sig).name
    except ValueError:
        name = f"signal {sig}"
    text = _SIGNAL_TEXT.get(sig, "killed by a signal")
    return f"the emulated kernel died with {name}: {text} (qemu-{arch} -cpu {cpu})"


def _execute(
    arch: str,
    qemu: str,
    cpu: str,
    elf: Path,
    build: Path,
    count: bool,
    count_method: str,
    syms: dict,
    timeout: float,
):
    cmd = [qemu, "-cpu", cpu]
    parser = None
    log_r = log_w = None
    if count:
        log_r, log_w = os.pipe()
        cmd += ["-d", "in_asm,exec,nochain", "-D", f"/dev/fd/{log_w}"]
        if count_method == "singlestep":
            cmd.append(_singlestep_flag(qemu))
        parser = _TraceParser(arch == "hexagon", syms["entry"], *syms["call_range"])
    cmd.append(str(elf))
    out_path, err_path = build / "stdout.txt", build / "stderr.txt"
    t0 = time.perf_counter()
    with open(out_path, "wb") as out_f, open(err_path, "wb") as err_f:
        try:
            proc = subprocess.Popen(
                cmd,
                cwd=build,
                stdin=subprocess.DEVNULL,
                stdout=out_f,
                stderr=err_f,
                pass_fds=(log_w,) if count else (),
                preexec_fn=_no_core_dumps,
            )
        except OSError as exc:
            if count:
                os.close(log_r)
            raise EmulationError(f"cannot run {qemu}: {exc.strerror}") from exc
        finally:
            if count:
                os.close(log_w)  # qemu holds the write end now; EOF comes when it exits
        timed_out = threading.Event()

        def _kill():
            timed_out.set()
            proc.kill()

        timer = threading.Timer(timeout, _kill)
        timer.start()
        try:
            if count:
                with os.fdopen(log_r, "rb", buffering=1 << 20) as log:
                    parser.feed(log)
            proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    wall = time.perf_counter() - t0
    if timed_out.is_set():
        raise EmulationError(
            f"the emulated kernel did not finish within {timeout:g} s (qemu-{arch} -cpu {cpu})"
        )
    return (
        proc.returncode,
        out_path.read_bytes(),
        err_path.read_bytes().decode(errors="replace"),
        parser,
        wall,
    )


def _parse_stdout(text: bytes, args: list[ArgSpec], outputs: list[str]):
    rc = None
    errors: list[str] = []
    found: dict[str, np.ndarray] = {}
    end = False
    lines = text.split(b"\n")
    i = 0
    while i < len(lines):
        ln = lines[i]
        if ln.startswith(b"ACCELSIM-ERROR "):
            errors.append(ln[len(b"ACCELSIM-ERROR ") :].decode(errors="replace"))
        elif ln.startswith(b"ACCELSIM-RC "):
            rc = int(ln.split()[1])
        elif ln.startswith(b"ACCELSIM-OUT "):
            _, idx, nbytes = ln.split()
            a = args[int(idx)]
            raw = bytes.fromhex(lines[i + 1].decode()) if i + 1 < len(lines) else b""
            if len(raw) != int(nbytes) or len(raw) != a.nbytes:
                raise EmulationError(
                    f"output {a.name!r}: the harness printed {len(raw)} bytes, expected {a.nbytes}"
                )
            found[a.name] = (
                np.frombuffer(raw, dtype=np.dtype(a.dtype).newbyteorder("<"))
                .astype(a.dtype)
                .reshape(a.shape)
            )
            i += 1
        elif ln == b"ACCELSIM-END":
            end = True
        i += 1
    return rc, errors, found, end


_RUNTIME_OBJECTS: dict[tuple, Path] = {}
_RUNTIME_LOCK = threading.Lock()


def _runtime_object(clang: str, flags: list[str], build: Path) -> Path:
    """harness/runtime_freestanding.c compiled once per process and flag set: it does not depend
    on the kernel or its data, and compiling it was most of the per-layer cost of a
    whole-model verify on Hexagon."""
    src = HARNESS_DIR / "runtime_freestanding.c"
    key = (clang, tuple(flags), src.stat().st_mtime_ns)
    with _RUNTIME_LOCK:
        obj = _RUNTIME_OBJECTS.get(key)
        if obj is not None and obj.is_file():
            return obj
        proc = _run_tool(
            [clang, *flags, "-c", str(src), "-o", "runtime_freestanding.o"],
            build,
            "compiling the Hexagon runtime",
        )
        if proc.returncode != 0:
            raise EmulationError(
                f"compiling the Hexagon runtime ({' '.join(flags[:2])}) failed: "
                f"{_first_line(proc.stderr)}"
            )
        keep_dir = Path(tempfile.mkdtemp(prefix="accelsim-hexagon-runtime-"))
        atexit.register(shutil.rmtree, keep_dir, True)
        obj = keep_dir / "runtime_freestanding.o"
        shutil.copyfile(build / "runtime_freestanding.o", obj)
        _RUNTIME_OBJECTS[key] = obj
        return obj


def _link(arch: str, tools: dict[str, str], build: Path, objects: list[str], flags: int) -> Path:
    """Compile the harness (with `build/accelsim_args.h`) and link it with the kernel objects
    (in `build`); returns the executable. `flags`: the first object's ELF e_flags (Hexagon:
    its CPU version, which the harness is compiled for)."""
    elf = build / "kernel.elf"
    inc_dirs = _tvm_ffi_include_dirs()
    cflags = [f"-I{build}"]
    if inc_dirs:
        cflags += [f"-I{d}" for d in inc_dirs] + ["-DACCELSIM_HAVE_TVM_FFI_HEADERS"]
    if arch == "aarch64":
        cmd = [
            tools["aarch64-linux-gnu-gcc"],
            "-static",
            "-O1",
            *cflags,
            str(HARNESS_DIR / "harness.c"),
            *objects,
            f"-Wl,-T,{HARNESS_DIR / 'kernel.ld'}",
            "-lm",
            "-o",
            str(elf),
        ]
        proc = _run_tool(cmd, build, "compiling the AArch64 harness")
        if proc.returncode != 0:
            if "undefined reference" in proc.stderr or "collect2" in proc.stderr:
                raise _link_error(arch, proc.stderr)
            raise EmulationError(
                f"compiling the AArch64 harness failed: {_first_line(proc.stderr)}"
            )
        return elf
    version = flags & 0xFFF
    mcpu = f"hexagonv{version:x}" if 0x60 <= version <= 0x99 else "hexagonv68"
    hflags = [
        "--target=hexagon-unknown-elf",
        f"-mcpu={mcpu}",
        "-ffreestanding",
        "-nostdlib",
        "-fno-builtin",
        "-O2",
        "-DACCELSIM_FREESTANDING",
    ]
    runtime = _runtime_object(tools["clang"], hflags + cflags[1:], build)
    proc = _run_tool(
        [tools["clang"], *hflags, *cflags, "-c", str(HARNESS_DIR / "harness.c")],
        build,
        "compiling the Hexagon harness",
    )
    if proc.returncode != 0:
        raise EmulationError(
            f"compiling the Hexagon harness with -mcpu={mcpu} failed: {_first_line(proc.stderr)}"
        )
    cmd = [
        tools["ld.lld"],
        "-static",
        "-e",
        "_start",
        "harness.o",
        str(runtime),
        *objects,
        "-T",
        str(HARNESS_DIR / "kernel.ld"),
        "-o",
        str(elf),
    ]
    proc = _run_tool(cmd, build, "linking the Hexagon harness")
    if proc.returncode != 0:
        raise _link_error(arch, proc.stderr)
    return elf


def _check_emulator(arch: str, qemu: str, cpu: str, rc: int, stderr: str, where: str = "") -> None:
    """Raise for a CPU model qemu lacks, an undecodable packet or a signal."""
    if "unable to find CPU model" in stderr:
        if arch == "hexagon":
            hint = (
                " (qemu-hexagon 7.x has the single model 'v67', which also runs HVX v68/v73 "
                "integer code)"
                if _qemu_version(qemu).startswith("7.")
                else ""
            )
        else:
            hint = f" (see qemu-{arch} -cpu help)"
        raise EmulationError(f"qemu-{arch} has no CPU model {cpu!r}{hint}")
    if arch == "hexagon" and "decode_packet" in stderr:
        # qemu-hexagon 7.x asserts (and dies) on a packet it cannot decode instead of raising
        # SIGILL, e.g. on HVX qfloat/IEEE-float instructions (v68+), which it does not implement.
        raise EmulationError(
            f"illegal instruction{where}: the kernel uses an instruction the "
            f"emulated CPU {cpu} lacks (qemu-hexagon cannot decode one of its "
            f"packets)"
        )
    if rc < 0 or rc > 128:
        raise EmulationError(_describe_signal(rc, arch, cpu) + where)


def _entry_point(nm: str, obj_copy: Path, symbol: str, obj: Path, build: Path) -> str:
    entry = symbol if symbol.startswith("__tvm_ffi_") else f"__tvm_ffi_{symbol}"
    text_globals = {n for n, k, _, _ in _nm_symbols(nm, obj_copy, build) if k in "TW"}
    if entry not in text_globals:
        have = sorted(n for n in text_globals if n.startswith("__tvm_ffi_"))
        raise EmulationError(
            f"{obj} does not define the packed entry point {entry} for "
            f"{symbol!r}; it defines: {', '.join(have) or 'no __tvm_ffi_ entry'}"
        )
    return entry


def _object_header(obj: Path, arch: str) -> int:
    """The ELF e_flags of a kernel object, after checking that it exists and is for `arch`."""
    if not obj.is_file():
        raise EmulationError(f"kernel object {obj} does not exist")
    machine, flags = _elf_header(obj)
    want = _EM_AARCH64 if arch == "aarch64" else _EM_HEXAGON
    if machine != want:
        other = {_EM_AARCH64: "AArch64", _EM_HEXAGON: "Hexagon"}.get(
            machine, f"e_machine {machine}"
        )
        raise EmulationError(
            f"{obj} is a {other} object, not {arch}: compile it for the "
            f"{'aarch64-linux-gnu' if arch == 'aarch64' else 'hexagon-unknown-elf'} "
            f"target"
        )
    return flags


@contextlib.contextmanager
def _build_dir(arch: str, workdir, kind: str = ""):
    """A fresh build directory (under `workdir`, else a temporary one), removed afterwards
    unless ACCELSIM_KEEP_EMULATION=1, in which case an error names it."""
    if workdir is not None:
        Path(workdir).mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix=f"accelsim-{arch}-{kind}", dir=workdir))
    keep = os.environ.get("ACCELSIM_KEEP_EMULATION", "") not in ("", "0")
    try:
        yield build
    except EmulationError as exc:
        if keep:
            raise EmulationError(f"{exc} [build files kept in {build}]") from exc
        raise
    finally:
        if not keep:
            shutil.rmtree(build, ignore_errors=True)


def _run(
    arch: str,
    obj_path,
    symbol: str,
    args: list[ArgSpec],
    inputs: dict[str, np.ndarray],
    outputs: list[str],
    cpu: str,
    count: bool,
    workdir,
    timeout: float,
    count_method: str,
    tasks: int = 1,
) -> EmulatorRun:
    tools = _require(arch)
    if count_method not in ("tb", "singlestep"):
        raise EmulationError(f"count_method must be 'tb' or 'singlestep', not {count_method!r}")
    args = [a if isinstance(a, ArgSpec) else ArgSpec(*a) for a in args]
    outputs = list(outputs)
    data = _check_io(args, dict(inputs), outputs)
    obj = Path(obj_path)
    flags = _object_header(obj, arch)

    with _build_dir(arch, workdir) as build:
        nm = tools["llvm-nm"]
        shutil.copyfile(obj, build / "accelsim_kernel.o")
        entry = _entry_point(nm, build / "accelsim_kernel.o", symbol, obj, build)
        _write_harness_data(build, entry, args, data, outputs, tasks)
        elf = _link(arch, tools, build, ["accelsim_kernel.o"], flags)
        syms = _linked_symbols(nm, elf, build, entry)
        qemu = tools[f"qemu-{arch}"]
        rc, stdout, stderr, parser, wall = _execute(
            arch, qemu, cpu, elf, build, count, count_method, syms, timeout
        )
        _check_emulator(arch, qemu, cpu, rc, stderr)
        kernel_rc, errors, found, end = _parse_stdout(stdout, args, outputs)
        if kernel_rc is not None and kernel_rc != 0:
            msg = "; ".join(errors) if errors else "no error message"
            raise EmulationError(f"kernel {entry} returned {kernel_rc} under qemu-{arch}: {msg}")
        if rc != 0 or not end:
            detail = _first_line(stderr) if stderr.strip() else f"exit status {rc}"
            raise EmulationError(
                f"the emulated harness for {entry} failed (qemu-{arch} -cpu {cpu}): {detail}"
            )
        missing = [n for n in outputs if n not in found]
        if missing:
            raise EmulationError(f"the harness printed no data for output {missing[0]!r}")
        result = dict(
            outputs={n: found[n] for n in outputs},
            dynamic_instructions=None,
            packets=None,
            wall_s=wall,
        )
        if count:
            if parser.state == 0:
                raise EmulationError(f"instruction count failed: the log never reached {entry}")
            if parser.state == 1:
                raise EmulationError(
                    "instruction count failed: the log ended inside the kernel call"
                )
            insns, packets, k_insns, k_packets, per_i, per_p = parser.totals(
                syms["functions"], syms["kernel_range"]
            )
            hexagon = arch == "hexagon"
            result.update(
                dynamic_instructions=insns,
                packets=packets if hexagon else None,
                kernel_instructions=k_insns,
                kernel_packets=k_packets if hexagon else None,
                function_instructions=per_i,
                function_packets=per_p if hexagon else None,
            )
        return EmulatorRun(**result)


def _linked_symbols(nm: str, elf: Path, build: Path, entry: str) -> dict:
    syms = _nm_symbols(nm, elf, build)
    addr = {n: a for n, _, a, _ in syms}
    size = {n: s for n, _, _, s in syms}
    for need in (entry, "accelsim_call_kernel", "__accelsim_kernel_start", "__accelsim_kernel_end"):
        if need not in addr:
            raise EmulationError(f"the linked harness lacks the symbol {need}")
    call_lo = addr["accelsim_call_kernel"]
    call_hi = call_lo + (size["accelsim_call_kernel"] or 4)
    functions = sorted((a, a + s, n) for n, k, a, s in syms if k in "tTwW" and s)
    return {
        "entry": addr[entry],
        "call_range": (call_lo, call_hi),
        "kernel_range": (addr["__accelsim_kernel_start"], addr["__accelsim_kernel_end"]),
        "functions": functions,
    }


def run_aarch64(
    obj_path,
    symbol: str,
    args: list[ArgSpec],
    inputs: dict[str, np.ndarray],
    outputs: list[str],
    cpu: str = "max",
    count: bool = False,
    workdir=None,
    *,
    timeout: float = _DEFAULT_TIMEOUT_S,
    count_method: str = "tb",
    tasks: int = 1,
) -> EmulatorRun:
    """Run ``symbol`` from an AArch64 TVM object under ``qemu-aarch64 -cpu <cpu>``.

    ``args`` lists the PrimFunc's buffer parameters in order; arguments named in ``inputs`` start
    with those values, the others zeroed; the arrays named in ``outputs`` are returned.
    ``count=True`` also counts the instructions the call executes (``count_method="singlestep"``
    counts with one instruction per translated block instead: slower, for cross-checks).
    """
    return _run(
        "aarch64",
        obj_path,
        symbol,
        args,
        inputs,
        outputs,
        cpu,
        count,
        workdir,
        timeout,
        count_method,
        tasks,
    )


def run_hexagon(
    obj_path,
    symbol: str,
    args: list[ArgSpec],
    inputs: dict[str, np.ndarray],
    outputs: list[str],
    cpu: str = "v67",
    count: bool = False,
    workdir=None,
    *,
    timeout: float = _DEFAULT_TIMEOUT_S,
    count_method: str = "tb",
    tasks: int = 1,
) -> EmulatorRun:
    """Run ``symbol`` from a Hexagon TVM object under ``qemu-hexagon -cpu <cpu>``.

    qemu-hexagon 7.2 (Debian 12) has one CPU model, ``v67`` (``v68``, ``v73``, ``any`` are refused),
    and it runs HVX code compiled for v68 and v73 (``+hvxv68`` / ``+hvxv73``: vmem, valign,
    vadd:sat, vrmpy, ...) bit-exactly; it cannot decode HVX qfloat (v68+ float32 on HVX), which is
    reported as an illegal instruction.
    With ``count=True`` the result has ``packets`` (executed packets) and ``dynamic_instructions``.
    """
    return _run(
        "hexagon",
        obj_path,
        symbol,
        args,
        inputs,
        outputs,
        cpu,
        count,
        workdir,
        timeout,
        count_method,
        tasks,
    )


@dataclass(frozen=True)
class KernelCall:
    """One call of a batch (`run_batch`): a kernel object, its symbol, its buffer arguments in
    the PrimFunc's order, the input values and the names of the arguments to return."""

    obj_path: str | os.PathLike
    symbol: str
    args: tuple[ArgSpec, ...]
    inputs: Mapping[str, np.ndarray]
    outputs: tuple[str, ...]


_DEFAULT_CPU = {"aarch64": "max", "hexagon": "v67"}


def run_batch(
    arch: str,
    calls: Sequence[KernelCall],
    cpu: str | None = None,
    workdir=None,
    *,
    timeout: float = _DEFAULT_TIMEOUT_S,
    tasks: int = 1,
) -> list[dict[str, np.ndarray]]:
    """Run the calls one after another in one emulated process and return each call's outputs.

    The same as one `run_aarch64` / `run_hexagon` per call (each kernel sees only its own
    buffers), but the harness is compiled and linked once, with every distinct kernel object,
    and qemu starts once: that start-up and build, not the kernels, was the cost of checking a
    whole model layer by layer. No instruction counting (use the single-call runners).
    `tasks` (here and in the single-call runners): the tasks a kernel's parallel loop is split
    into (TVM's launch asks the runtime for its thread count): the target's hardware threads."""
    if arch not in _NEEDED:
        raise EmulationError(
            f"unknown architecture {arch!r} (expected one of {', '.join(_NEEDED)})"
        )
    tools = _require(arch)
    cpu = cpu or _DEFAULT_CPU[arch]
    if not calls:
        return []
    arglists, outlists, datas, flags = [], [], [], None
    for c in calls:
        args = [a if isinstance(a, ArgSpec) else ArgSpec(*a) for a in c.args]
        outs = list(c.outputs)
        datas.append(_check_io(args, dict(c.inputs), outs))
        arglists.append(args)
        outlists.append(outs)
        f = _object_header(Path(c.obj_path), arch)
        flags = f if flags is None else flags
    with _build_dir(arch, workdir, "batch-") as build:
        objects: dict[Path, tuple[str, str]] = {}  # kernel object -> (copy in build, entry)
        first: dict[str, tuple[int, Path]] = {}  # entry -> (first call, its object)
        entries = []
        for j, c in enumerate(calls):
            src = Path(c.obj_path).resolve()
            if src not in objects:
                local = f"accelsim_kernel_{len(objects)}.o"
                shutil.copyfile(src, build / local)
                objects[src] = (
                    local,
                    _entry_point(tools["llvm-nm"], build / local, c.symbol, src, build),
                )
            entry = objects[src][1]
            i, obj = first.setdefault(entry, (j, src))
            if obj != src:
                raise EmulationError(
                    f"calls {i} and {j} of the batch: {obj} and {src} both "
                    f"define {entry} (one process links one definition)"
                )
            entries.append(entry)
        batch = [
            KernelCall(c.obj_path, c.symbol, tuple(a), {}, tuple(o))
            for c, a, o in zip(calls, arglists, outlists)
        ]
        _write_batch_data(build, batch, entries, datas, tasks)
        elf = _link(arch, tools, build, [local for local, _ in objects.values()], flags)
        qemu = tools[f"qemu-{arch}"]
        rc, stdout, stderr, _, _ = _execute(arch, qemu, cpu, elf, build, False, "tb", {}, timeout)
        segments = stdout.split(b"ACCELSIM-CALL ")[1:]
        last = len(segments) - 1
        _check_emulator(
            arch, qemu, cpu, rc, stderr, f" in call {last} ({entries[last]})" if segments else ""
        )
        results = []
        for j, (args, outs) in enumerate(zip(arglists, outlists)):
            if j >= len(segments):
                detail = _first_line(stderr) if stderr.strip() else f"exit status {rc}"
                raise EmulationError(
                    f"the emulated batch stopped before call {j} ({entries[j]}) "
                    f"(qemu-{arch} -cpu {cpu}): {detail}"
                )
            head, _, rest = segments[j].partition(b"\n")
            body, end_mark, _ = rest.partition(b"ACCELSIM-END\n")
            kernel_rc, errors, found, _ = _parse_stdout(body, args, outs)
            if kernel_rc is not None and kernel_rc != 0:
                msg = "; ".join(errors) if errors else "no error message"
                raise EmulationError(
                    f"kernel {entries[j]} (call {j}) returned {kernel_rc} under qemu-{arch}: {msg}"
                )
            if int(head) != j or not end_mark:
                raise EmulationError(
                    f"the emulated batch failed in call {j} ({entries[j]}) "
                    f"(qemu-{arch} -cpu {cpu}): exit status {rc}"
                )
            missing = [n for n in outs if n not in found]
            if missing:
                raise EmulationError(
                    f"the harness printed no data for output {missing[0]!r} of "
                    f"call {j} ({entries[j]})"
                )
            results.append({n: found[n] for n in outs})
        if rc != 0:
            raise EmulationError(
                f"the emulated batch exited with status {rc} (qemu-{arch} -cpu "
                f"{cpu}): {_first_line(stderr) if stderr.strip() else ''}"
            )
        return results
