"""The per-core pipe model (accelsim.sim.pipeline) against llvm-mca-19 on the inner loops of real
generated NEON kernels, plus synthetic blocks whose cost a wrong model would get wrong.

Oracle: `llvm-mca-19 -mtriple=aarch64 -mcpu=<codegen.llvm_mca_cpu> -iterations=100`, cycles per
iteration = Total Cycles / 100. Total Cycles (not Block RThroughput) because the model includes
loop-carried dependencies and in-order stalls, which Block RThroughput ignores (it is the pipe
bound alone); the pipeline fill in Total Cycles is < 1 % on these loops (checked: 200 vs 100
iterations differ by < 0.3 cycles per iteration).

Our parameters come from the Arm Software Optimization Guides (targets/*.yaml), not from LLVM.
Where LLVM's scheduling model disagrees with the guide, the loops dominated by that instruction
are listed in `DISAGREE` with the reason, printed, and not asserted; everything else must agree
within 15 %.

The disagreements are then taken out: the same pipe model, given the facts LLVM's Cortex-A55
model uses where they differ from the guide (`LLVM_A55`, each quoted from
llvm/lib/Target/AArch64/AArch64SchedA55.td), must reproduce llvm-mca within 15 % on every loop,
the disputed ones included. So the model's mechanics (in-order dual issue, pipes, operand
latencies, forwarding) are checked everywhere, and what remains between the shipped numbers
and llvm-mca is the sourced difference between the guide and LLVM.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest

from accelsim import asm
from accelsim.core.precision import parse_precision
from accelsim.core.target import load_target
from accelsim.kernels import compile as cg
from accelsim.lower.lower import lower_node
from accelsim.model import zoo
from accelsim.quant import calibdata
from accelsim.quant.ptq import quantize_graph
from accelsim.sim import pipeline as pl

MCA = shutil.which("llvm-mca-19")
needs_mca = pytest.mark.skipif(MCA is None, reason="llvm-mca-19 not installed")

# (precision, layer of mobilenet_v2 at 32x32): 3x3 conv, 1x1 conv (broadcast SDOT over 24
# channels, SDOT by element over 960; fp32 FMLA by element over 960), depthwise, FC
CASES = [
    ("w8a8", "features.0.0"),
    ("w8a8", "features.2.conv.0.0"),
    ("w8a8", "features.17.conv.2"),
    ("w8a8", "features.2.conv.1.0"),
    ("w8a8", "classifier.1"),
    ("fp32", "features.2.conv.0.0"),
    ("fp32", "features.17.conv.2"),  # FMLA by element (fmla_lane)
    ("w16a16", "features.2.conv.0.0"),
]

# (target, precision, layer, loop size) -> why the guide and LLVM's model disagree on that loop
DISAGREE = {
    (
        "cortex-a55",
        "fp32",
        "features.2.conv.0.0",
        213,  # 185 with LDP Q pairs (cortex-a55's codegen no longer pairs loads)
    ): "FMLA Q-form: A55 SOG 4.16 throughput 1, slot 0 only (note 1); LLVM issues it at "
    "2/cycle from either slot (CortexA55WriteFMAC: one FPMAC, no BeginGroup)",
}

# Loops beyond 15 % that are NOT explained yet: they appeared when the NEON kernel rewrite
# (requantization in the stem's inner loop, paired-tap depthwise, the 8x8 fp32 tile) met the new
# cores' targets, whose rows are LLVM's own (so this is the pipe model's mechanics, not a
# disagreement between documents). Printed, not asserted, and listed as open in issue 17.
OPEN = {
    # (737 instructions, 20 % below, before a ReLU clamp dropped the rounding fix-up)
    ("cortex-a720", "w8a8", "features.0.0", 704): "OPEN: model 20 % below llvm-mca (N2 model)",
    # (272 instructions and +17 % before the depthwise tile of 4 pixels and padded copy; 431
    # and +23 % before the zero point and clamp moved to 8-bit lanes; 383 and +21 % before the
    # rounding fix-up became one SSRA; 337 and +20 % before a ReLU clamp dropped it)
    ("cortex-a720", "w8a8", "features.2.conv.1.0", 320): "OPEN: model 24 % above llvm-mca",
    ("cortex-a520", "fp32", "features.2.conv.0.0", 182): "OPEN: model 18 % above llvm-mca (A510)",
    ("cortex-a520", "fp32", "features.17.conv.2", 190): "OPEN: model 19 % above llvm-mca (A510), "
    "as the other fp32 loop",
    # 16-bit smull_smlal2: the 16-channel reduction (2 calls) is unrolled whole into the pixel
    # loop with the int64 requantization (MUL, FMOV per lane). llvm-mca's N1 model puts 103 /
    # 102 cycles per iteration on V0 / V1 (FMOV from a GPR also takes a V pipe) against the
    # model's 96.5 on both, and its schedule adds 16 cycles more. (The broadcast smull_smlal
    # loop it replaced, 285 instructions, was 22 % below; neoverse-v2's, 17 % below, is now
    # within 4 %.)
    ("cortex-a76", "w16a16", "features.2.conv.0.0", 250): "OPEN: model 15 % below llvm-mca",
}

# LLVM's A55 facts where they differ from targets/cortex-a55.yaml (AArch64SchedA55.td)
LLVM_A55 = {
    "writeback_in_order": True,  # llvm-mca InOrderIssueStage: LastWriteBackCycle
    "instructions": {
        # CortexA55WriteFMAC: one of the two FPMAC units, no BeginGroup, RetireOOO
        "vector_fma_fp32": {"throughput": 2, "qform_first_slot": False, "retire_ooo": True},
        "vector_pairwise_acc": {"throughput": 1},  # CortexA55WriteAluVq_4
        # SDOTv16i8: CortexA55WriteAluVq_4 with no ReadAdvance on the accumulator (the SOG 4.15
        # forwards it in 1 cycle)
        "vector_mac_int8": {"accumulate_latency": None},
        "vector_load": {"latency": 3, "throughput": 1},  # LDRQui: WriteVLD... 3, RThroughput 1
        "vector_load_replicate": {"latency": 4},  # LD1Rv*: CortexA55WriteVLD1, 4
        "vector_load_pair": {"latency": 6, "latency_d": 5},  # LDPQi: LDP4 6; LDPDi: LDP2 5
        "scalar_alu": {"latency": 3},  # WriteI: Latency = 3
        "scalar_store": {"retire_ooo": True},  # WriteST/STP/STIdx: RetireOOO
    },
}


def with_llvm_facts(target, facts):
    """`target` with its timing rows updated by `facts` (a row missing from the target starts
    from its fallback class's row)."""
    timing = dict(target.timing)
    rows = dict(timing["instructions"])
    for cls, change in facts.get("instructions", {}).items():
        name = cls
        while name not in rows:
            name = pl._FALLBACK[name]
        rows[cls] = {**rows[name], **change}
    timing.update({k: v for k, v in facts.items() if k != "instructions"})
    timing["instructions"] = rows
    return dataclasses.replace(target, timing=timing)


pytestmark = pytest.mark.usefixtures("kernel_cache")


@cache
def _quantized(precision: str):
    g = zoo.build("mobilenet_v2", input_size=32)
    return quantize_graph(g, parse_precision(precision), calibdata.random(g, 2)).graph


def inner_loops(text: str) -> list[list[str]]:
    """Innermost loop bodies (accelsim.asm's natural loops, as Kernel.instruction_mix counts
    them) that hold vector multiply-accumulates: their instructions in program order."""
    bodies = [[ln for u in lp.units for ln in u.lines] for lp in asm.innermost_loops(text)]
    return [b for b in bodies if any(asm.classify(x, "aarch64") in asm.MAC_CLASSES for x in b)]


def mca_cycles(body: list[str], target) -> float:
    mattr = ",".join(target.codegen.tvm_target.get("mattr", []))
    r = subprocess.run(
        [
            MCA,
            "-mtriple=aarch64",
            f"-mcpu={target.codegen.llvm_mca_cpu}",
            f"-mattr={mattr}",
            "-iterations=100",
            "-all-views=false",
            "-summary-view",
        ],
        input="\n".join(body) + "\n",
        capture_output=True,
        text=True,
        check=True,
    )
    return int(re.search(r"Total Cycles:\s+(\d+)", r.stdout).group(1)) / 100


# -- against llvm-mca on generated kernels ---------------------------------------------------
@needs_mca
@pytest.mark.parametrize(
    "target_name",
    ["cortex-a76", "cortex-a55", "cortex-a53", "cortex-a720", "cortex-a520", "neoverse-v2"],
)
def test_inner_loops_within_15_percent_of_llvm_mca(target_name):
    t = load_target(target_name)
    rows, bad, compared = [], [], 0
    for prec, layer in CASES:
        q = _quantized(prec)
        k = cg.compile_layer(lower_node(q, q.node(layer), t), t)
        text = Path(k.asm_path).read_text()
        bodies = inner_loops(text)
        assert bodies, f"{layer} {prec}: no inner loop with vector MACs"
        # asm.loop_bodies (raw lines, for callers) finds the loops instruction_mix finds
        assert len(asm.loop_bodies(text, "aarch64")) == k.instruction_mix.loops
        for body in bodies:
            ours = pl.block_cycles(body, t, loop=True)
            ref = mca_cycles(body, t)
            err = ours / ref - 1
            key = (target_name, prec, layer, len(body))
            why = DISAGREE.get(key) or OPEN.get(key)
            rows.append(
                f"{target_name:11} {prec:6} {layer:22} {len(body):4} instr  "
                f"llvm-mca {ref:8.2f}  model {ours:8.2f}  {err * 100:+6.1f} %"
                + (f"  [not asserted: {why}]" if why else "")
            )
            if why:
                continue
            compared += 1
            if abs(err) > 0.15:
                bad.append(rows[-1])
    print(f"\ncycles per iteration, -mcpu={t.codegen.llvm_mca_cpu}\n" + "\n".join(rows))
    assert compared >= 4, rows
    assert not bad, "\n".join(bad)


@needs_mca
def test_a55_model_with_llvms_facts_reproduces_llvm_mca_on_every_loop():
    t = load_target("cortex-a55")
    t_llvm = with_llvm_facts(t, LLVM_A55)
    rows, bad, disputed = [], [], 0
    for prec, layer in CASES:
        q = _quantized(prec)
        k = cg.compile_layer(lower_node(q, q.node(layer), t), t)
        for body in inner_loops(Path(k.asm_path).read_text()):
            ref = mca_cycles(body, t)
            ours, parity = pl.block_cycles(body, t), pl.block_cycles(body, t_llvm)
            err = parity / ref - 1
            disputed += ("cortex-a55", prec, layer, len(body)) in DISAGREE
            rows.append(
                f"{prec:6} {layer:22} llvm-mca {ref:8.2f}  guide's numbers {ours:7.1f}  "
                f"LLVM's numbers {parity:7.1f}  {err * 100:+6.1f} %"
            )
            if abs(err) > 0.15:
                bad.append(rows[-1])
    print("\ncortex-a55, the pipe model with LLVM's facts (LLVM_A55)\n" + "\n".join(rows))
    assert len(rows) == 8 and disputed == len(DISAGREE)
    assert not bad, "\n".join(bad)


# -- synthetic blocks ----------------------------------------------------------------------
def _rep(fmt: str, n: int) -> list[str]:
    return [fmt.format(i=i) for i in range(n)] + ["subs x0, x0, #1", "b.ne .Lloop"]


def test_dependent_sdot_chain_costs_n_times_latency():
    t = load_target("cortex-a76")
    lat = t.timing["instructions"]["vector_mac_int8"]["latency"]
    for n in (4, 8, 16):
        body = _rep("sdot v0.4s, v1.16b, v2.16b", n)
        assert pl.block_cycles(body, t) == pytest.approx(n * lat)


def test_independent_sdots_cost_n_over_throughput():
    t = load_target("cortex-a76")
    tp = t.timing["instructions"]["vector_mac_int8"]["throughput"]
    for n in (8, 16):
        body = _rep("sdot v{i}.4s, v20.16b, v21.16b", n)
        assert pl.block_cycles(body, t) == pytest.approx(n / tp)
        # the same SDOTs chained through one accumulator are latency-bound instead
        assert pl.block_cycles(_rep("sdot v0.4s, v20.16b, v21.16b", n), t) > n / tp


@needs_mca
def test_synthetic_sdot_blocks_match_llvm_mca_on_a76():
    """Neoverse N1's model and the A76 SOG agree on SDOT (2 cycles, 2 per cycle on V0|V1)."""
    t = load_target("cortex-a76")
    for fmt in ("sdot v0.4s, v1.16b, v2.16b", "sdot v{i}.4s, v20.16b, v21.16b"):
        body = [fmt.format(i=i) for i in range(8)]
        assert pl.block_cycles(body, t) == pytest.approx(mca_cycles(body, t), rel=0.05)


def test_shared_pipes_add_up_and_single_pipe_classes_bind():
    t = load_target("cortex-a76")
    # SMULL (V0 only) and SADALP (V1 only) overlap: 8 + 8 over two pipes = 8 cycles
    body = [f"smull v{i}.8h, v20.8b, v21.8b" for i in range(8)] + [
        f"sadalp v{10 + i}.4s, v22.8h" for i in range(8)
    ]
    assert pl.block_cycles(body, t) == pytest.approx(8)
    # 8 SMULL (V0) + 8 ADD (V0|V1): V0 cannot take more than the SMULLs: (8 + 8) / 2 = 8
    body = [f"smull v{i}.8h, v20.8b, v21.8b" for i in range(8)] + [
        f"add v{10 + i}.4s, v22.4s, v23.4s" for i in range(8)
    ]
    assert pl.block_cycles(body, t) == pytest.approx(8)
    # 16 SMULL alone: V0 bound 16, not 16 / 2
    assert pl.block_cycles(
        [f"smull v{i % 16}.8h, v20.8b, v21.8b" for i in range(16)], t
    ) == pytest.approx(16)


def test_a55_in_order_dual_issue_and_accumulate_forwarding():
    t = load_target("cortex-a55")
    # D-form ALU ops dual-issue (2/cycle); Q-form ones take both NEON pipes (1/cycle)
    assert pl.block_cycles([f"add v{i}.2s, v20.2s, v21.2s" for i in range(8)], t) == pytest.approx(
        4
    )
    assert pl.block_cycles([f"add v{i}.4s, v20.4s, v21.4s" for i in range(8)], t) == pytest.approx(
        8
    )
    # in order: a load's consumer stalls the whole pipeline for the load latency (SOG 4.13: 4)
    lat = t.timing["instructions"]["vector_load"]["latency"]
    blk = ["ldr q0, [x1]", "add v1.4s, v0.4s, v0.4s", "add x2, x2, #1"]
    assert pl.block_cycles(blk, t, loop=False) >= lat + 2
    # SMLAL chained through its accumulator: late forwarding, SOG 4.15 "4 (1)" -> 1 per cycle.
    # (LLVM's A55 model has no such forwarding and gives 4 per SMLAL: a documented difference.)
    acc = t.timing["instructions"]["vector_mul_long_int8"]["accumulate_latency"]
    body = [f"smlal v0.8h, v{1 + i}.8b, v9.8b" for i in range(8)]
    assert pl.block_cycles(body, t) == pytest.approx(8 * max(acc, 1))
    # ... but a chain through a multiplicand waits the full latency
    body = ["smull v0.8h, v0.8b, v9.8b"] * 4
    assert pl.block_cycles(body, t) == pytest.approx(4 * 4)


def test_a55_load_forms_and_llvm_mca_issue_rules():
    t = load_target("cortex-a55")

    # SOG 4.13: a D-form load's consumer waits 3 cycles, a Q-form's 4, an LDP Q's 6
    def wait(load, use):
        return pl.block_cycles([load, use], t, loop=False)

    d = wait("ldr d0, [x1]", "add v1.2s, v0.2s, v0.2s")
    q = wait("ldr q0, [x1]", "add v1.4s, v0.4s, v0.4s")
    p = wait("ldp q2, q0, [x1]", "add v1.4s, v0.4s, v0.4s")
    assert (q - d, p - q) == (pytest.approx(1), pytest.approx(2))
    # llvm-mca's write-back ordering (off for the A55, on in LLVM_A55): a 1-cycle op after an
    # independent 4-cycle SMULL waits for it unless its class retires out of order
    body = ["smull v0.8h, v1.8b, v2.8b", "add x3, x3, #1"]
    wb = with_llvm_facts(t, {"writeback_in_order": True})
    assert pl.block_cycles(body, wb) > pl.block_cycles(body, t) == pytest.approx(1)
    ooo = with_llvm_facts(
        t, {"writeback_in_order": True, "instructions": {"scalar_alu": {"retire_ooo": True}}}
    )
    assert pl.block_cycles(body, ooo) == pytest.approx(1)
    # a class may lift the Q-form slot-0 rule: two independent FMLA .4S then dual-issue
    fm = [f"fmla v{i}.4s, v20.4s, v21.4s" for i in range(8)]
    lifted = with_llvm_facts(
        t, {"instructions": {"vector_fma_fp32": {"throughput": 2, "qform_first_slot": False}}}
    )
    assert pl.block_cycles(fm, t) == pytest.approx(8)
    assert pl.block_cycles(fm, lifted) == pytest.approx(4)


def test_hexagon_packets_plus_documented_input_latency_stall():
    """HVX PRM "Instruction latency": V0 = VADD(..) followed by a multiply reading V0 in the next
    packet stalls (multiply input latency 2); an ALU consumer or an unrelated packet does not."""
    t = load_target("hvx-v68")
    stall = ["{", "  v0.w = vadd(v1.w,v2.w)", "}", "{", "  v3.w += vrmpy(v0.ub,r0.b)", "}"]
    alu = ["{", "  v0.w = vadd(v1.w,v2.w)", "}", "{", "  v3.w = vadd(v0.w,v4.w)", "}"]
    free = ["{", "  v0.w = vadd(v1.w,v2.w)", "}", "{", "  v3.w += vrmpy(v5.ub,r0.b)", "}"]
    il = t.timing["instructions"]["vector_mac_int8"]["input_latency"]
    assert pl.block_cycles(stall, t, loop=False) == pytest.approx(2 + (il - 1))
    assert pl.block_cycles(alu, t, loop=False) == pytest.approx(2)
    assert pl.block_cycles(free, t, loop=False) == pytest.approx(2)
    # the accumulator input is not an early source: back-to-back vrmpy into one accumulator
    acc = ["{", "  v3.w += vrmpy(v5.ub,r0.b)", "}", "{", "  v3.w += vrmpy(v6.ub,r0.b)", "}"]
    assert pl.block_cycles(acc, t, loop=False) == pytest.approx(2)
    # .cur loads feed their own packet; a hardware loop closes with no extra packet
    loop = [
        ".LBB0_1:",
        "{",
        "  v1.cur = vmem(r1+#0)",
        "  v2 = valign(v1,v0,r2)",
        "}",
        "{",
        "  v3.w += vrmpy(v7.ub,r0.b)",
        "  r1 = add(r1,#128)",
        "} :endloop0",
    ]
    assert pl.block_cycles(loop, t, loop=True) == pytest.approx(2)


def test_classify():
    a = "aarch64"
    assert asm.classify("\tsdot\tv16.4s, v0.16b, v7.16b", a) == "vector_mac_int8"
    assert asm.classify("smull v1.8h, v2.8b, v3.8b", a) == "vector_mul_long_int8"
    assert asm.classify("smlal2 v1.2d, v2.4s, v3.4s", a) == "vector_mac_int16"
    assert asm.classify("sadalp v1.4s, v2.8h", a) == "vector_pairwise_acc"
    assert asm.classify("fmla v1.4s, v2.4s, v3.s[0]", a) == "vector_fma_fp32"
    assert asm.classify("fmla v1.8h, v2.8h, v3.8h", a) == "vector_fma_fp16"
    assert asm.classify("ldp q0, q1, [x1, #32]", a) == "vector_load_pair"
    assert asm.classify("ld1r {v0.4s}, [x1]", a) == "vector_load_replicate"
    assert asm.classify("ldr q0, [x1, #16]", a) == "vector_load"
    assert asm.classify("saddw2 v0.4s, v0.4s, v1.8h", a) == "vector_alu_long"
    assert asm.classify("saddlp v0.4s, v1.8h", a) == "vector_pairwise_long"
    assert asm.classify("ldr x0, [x1]", a) == "scalar_load"
    assert asm.classify("stur d2, [x15, #-192]", a) == "vector_store"
    assert asm.classify("add x1, x2, #8", a) == "scalar_alu"
    assert asm.classify("b.ne .LBB3_3", a) == "branch"
    assert asm.classify("ushl v1.4s, v2.4s, v3.4s", a) == "vector_shift"
    assert asm.classify("tbl v2.16b, { v4.16b, v5.16b }, v20.16b", a) == "vector_permute"
    assert asm.classify("dup v1.4s, w2", a) == "vector_from_gpr"
    for skip in (".LBB3_3:", "\t.loc\t1 155 17", "// comment", ""):
        assert asm.classify(skip, a) is None
    h = "hexagon"
    assert asm.classify("v4.w += vrmpy(v8.b,v23.b)", h) == "vector_mac_int8"
    assert asm.classify("v5 = vmem(r7+#1)", h) == "vector_load"
    assert asm.classify("vmem(r7+#0) = v2", h) == "vector_store"
    assert asm.classify("r0 = add(r28,#-256)", h) == "scalar_alu"
    assert asm.classify("{", h) is None and asm.classify("} :endloop0", h) is None
    x = "x86_64"
    assert asm.classify("vpdpbusd %zmm1, %zmm2, %zmm3", x) == "vector_mac_int8"
    assert asm.classify("vmovdqu64 (%rax), %zmm1", x) == "vector_load"
    assert asm.classify("jne .LBB0_3", x) == "branch"
    # register effects: accumulate forms read the destination; pairs define two registers
    ins = asm.parse(
        ["sdot v16.4s, v0.16b, v7.16b", "ldp q6, q7, [sp, #272]", "ldr q1, [x2], #16"], a
    )
    assert ins[0].acc == "v16" and set(ins[0].uses) == {"v16", "v0", "v7"}
    assert ins[1].defs == ("v6", "v7") and ins[1].count == 2
    assert set(ins[2].defs) == {"v1", "x2"}  # post-index writes the base back


def test_missing_class_row_names_the_file_and_class():
    import dataclasses

    # a file without these rows is refused by the target schema already (its mac rows name
    # vector_alu); a Target built in code can still lack them, and the pipe model says which
    t = load_target("cortex-a76")
    timing = dict(t.timing)
    timing["instructions"] = {
        k: v for k, v in t.timing["instructions"].items() if k not in ("vector_alu", "vector_logic")
    }
    t = dataclasses.replace(t, name="broken", path="t.yaml", timing=timing)
    with pytest.raises(
        pl.PipelineError,
        match=r"t\.yaml: timing\.instructions: no row for "
        r"instruction class 'vector_logic'",
    ):
        pl.block_cycles(["mov v1.16b, v2.16b"], t)
