"""Run compiled host kernels through the TVM runtime on numpy arrays (for `verify` and for
timing on this machine). Kernels for other targets run under the emulators
(`accelsim.kernels.emulate`)."""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np

from accelsim.core.precision import Precision
from accelsim.kernels.compile import CompileError, runtime_module
from accelsim.kernels.kernel import Kernel


def _function(kernel: Kernel):
    if kernel.lib_path is None and kernel.target != "host":
        raise CompileError(
            f"kernel of layer '{kernel.layer}' is for target '{kernel.target}'; "
            f"only host kernels run through the TVM runtime (use "
            f"accelsim.kernels.emulate for the others)"
        )
    return runtime_module(kernel)[kernel.symbol]


def _tensors(kernel: Kernel, inputs: Mapping[str, np.ndarray]):
    from accelsim.core.tvm_env import import_tvm

    tvm = import_tvm()
    dev = tvm.cpu()
    args = []
    for a in kernel.args[:-1]:
        if a.name not in inputs:
            raise KeyError(f"kernel of layer '{kernel.layer}' needs argument '{a.name}'")
        arr = np.ascontiguousarray(inputs[a.name], dtype=np.dtype(a.dtype))
        if arr.shape != tuple(a.shape):
            raise ValueError(
                f"argument '{a.name}' of layer '{kernel.layer}': shape "
                f"{arr.shape}, expected {tuple(a.shape)}"
            )
        args.append(tvm.runtime.tensor(arr, dev))
    out = kernel.args[-1]
    args.append(tvm.runtime.empty(tuple(out.shape), out.dtype, dev))
    return args


def run(kernel: Kernel, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
    """Call a host kernel with its arguments by name; returns the output (kernel layout)."""
    fn = _function(kernel)
    args = _tensors(kernel, inputs)
    fn(*args)
    return args[-1].numpy()


def run_layer(layer, kernel: Kernel, values: Mapping[str, np.ndarray]) -> np.ndarray:
    """Run one lowered layer on the reference executor's tensors (`run(graph, feeds,
    keep=True)`); returns the output in the reference layout."""
    return layer.unpack_output(run(kernel, layer.pack_inputs(values)))


def time_kernel(
    kernel: Kernel, inputs: Mapping[str, np.ndarray], repeat: int = 5, min_time_s: float = 0.02
) -> float:
    """Median seconds per call on this machine."""
    fn = _function(kernel)
    args = _tensors(kernel, inputs)
    fn(*args)
    number = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(number):
            fn(*args)
        dt = time.perf_counter() - t0
        if dt >= min_time_s or number >= 1 << 20:
            break
        number *= 2
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn(*args)
        samples.append((time.perf_counter() - t0) / number)
    return float(np.median(samples))


def verify(
    graph, feeds, precision: Precision | None = None, schedules=None, rtol: float = 1e-5
) -> dict[str, int]:
    """Run every lowered layer of `graph` on the host, each on the reference executor's input
    tensors, and count the elements that differ from the reference executor's output of that
    layer (integers: exact; float: `rtol`, with an absolute floor of rtol * max|ref|).
    Views and layers left on the reference path are not in the result."""
    from accelsim.core.target import load_target
    from accelsim.kernels.compile import compile_layer
    from accelsim.lower.lower import lower_graph
    from accelsim.ref.executor import run as ref_run

    target = load_target("host")
    values = ref_run(graph, feeds, keep=True)
    out: dict[str, int] = {}
    for layer in lower_graph(graph, target, precision, schedules):
        if layer.status != "kernel":
            continue
        got = run_layer(layer, compile_layer(layer, target), values)
        ref = values[layer.output]
        if ref.dtype.kind == "f":
            atol = rtol * max(1.0, float(np.abs(ref).max()))
            out[layer.name] = int((~np.isclose(got, ref, rtol=rtol, atol=atol)).sum())
        else:
            out[layer.name] = int((got.astype(np.int64) != ref.astype(np.int64)).sum())
    return out
