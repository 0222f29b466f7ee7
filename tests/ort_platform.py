"""What ONNX Runtime's integer kernels compute on this machine, for the tests that use them as
their oracle.

accelsim.ref.qdq_ops follows ORT's x86-64 MLAS kernels. Where the CPU has VNNI (`vpdpbusd`,
AVX512-VNNI or AVX-VNNI) they sum u8 x s8 products exactly in int32. Without it they use
VPMADDUBSW, which adds each pair of u8 x s8 products into a *saturating* int16: with 8-bit
weights a pair reaches 2 x 255 x 127 = 64770 and is clipped to 32767, so ORT's convolution is
off by up to tens of LSB wherever an activation pair is large (seen: 23 LSB on a pooling model's
conv). That is ORT's documented limitation, not a reference: `quantize_static(reduce_range=True)`
exists for such machines and keeps weights to 7 bits ([-64, 64]), where a pair sums to at most
2 x 255 x 64 = 32640 and nothing saturates. So on x86-64 without VNNI the oracle models are
quantized with `reduce_range` and the comparison stays bit-exact; on other CPUs (ARM's NEON
kernels are other code) only the one-step rule applies.
"""

from __future__ import annotations

import platform


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            line = next((ln for ln in f if ln.startswith("flags")), "")
    except OSError:
        return set()
    return set(line.split())


X86 = platform.machine().lower() in ("x86_64", "amd64")
HAS_VNNI = X86 and bool(_cpu_flags() & {"avx512_vnni", "avx_vnni"})

#: quantize ORT's oracle models with 7-bit weights (see the module docstring)
REDUCE_RANGE = X86 and not HAS_VNNI

#: ORT's fused integer kernels are bit-exact with accelsim's on models quantized with
#: `reduce_range=REDUCE_RANGE`
EXACT_PLATFORM = X86


def seven_bit_weights(g):
    """`g` (a quantized accelsim graph) as ORT's `reduce_range` would have quantized it, on the
    machines where REDUCE_RANGE holds (else `g` itself): every int8 conv / dense weight halved
    (round half to even, so [-127, 127] becomes [-64, 64]) at twice its scale, and its bias
    re-expressed at the new bias scale S_in * S_w. Both sides of a comparison then run this
    graph; only the oracle's saturation is taken out of it."""
    if not REDUCE_RANGE:
        return g
    from dataclasses import replace

    import numpy as np

    from accelsim.core.qparams import QuantParams

    consts, tensors = dict(g.constants), dict(g.tensors)
    for n in g.nodes:
        if n.op not in ("conv2d", "dense") or len(n.inputs) < 2 or n.inputs[1] not in consts:
            continue
        w, info = consts[n.inputs[1]], tensors[n.inputs[1]]
        if info.dtype != "int8" or info.quant is None:
            continue
        if tensors[n.inputs[0]].dtype not in ("uint8", "int8"):
            continue  # 16-bit activations: ORT has no integer kernel for them, nothing saturates
        q = info.quant
        consts[w_name := n.inputs[1]] = np.rint(w / 2).astype(np.int8)
        tensors[w_name] = replace(
            info, quant=QuantParams(tuple(2 * s for s in q.scale), q.zero_point, q.axis)
        )
        if len(n.inputs) > 2 and n.inputs[2] in consts:
            b, binfo = consts[n.inputs[2]], tensors[n.inputs[2]]
            bq = binfo.quant
            consts[n.inputs[2]] = np.rint(b / 2).astype(b.dtype)
            tensors[n.inputs[2]] = replace(
                binfo, quant=QuantParams(tuple(2 * s for s in bq.scale), bq.zero_point, bq.axis)
            )
    return g.replace(constants=consts, tensors=tensors)
