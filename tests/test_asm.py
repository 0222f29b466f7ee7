"""The assembly front end (accelsim.asm): one definition of a loop for every user. The Kernel
record's instruction mix, the pipe model's loop bodies and the count predictor see the same
loops: the natural loops of each function's CFG."""

from __future__ import annotations

from accelsim import asm
from accelsim.kernels.kernel import instruction_mix
from accelsim.sim import dyncount

# a counted loop whose body holds an if/else that LLVM laid out with a backward branch
# (.LBB0_4 -> .LBB0_3): a backward branch, but no loop (.LBB0_3 does not dominate .LBB0_4)
A64 = """
\t.text
\t.type\tf,@function
f:
\tmov\tx8, xzr
.LBB0_1:
\ttbz\tw8, #0, .LBB0_4
\tb\t.LBB0_2
.LBB0_3:
\tsdot\tv0.4s, v1.16b, v2.16b
\tb\t.LBB0_5
.LBB0_4:
\tadd\tx9, x9, #1
\tcbnz\tx9, .LBB0_3
.LBB0_2:
\tldr\tq1, [x1], #16
.LBB0_5:
\tadd\tx8, x8, #1
\tcmp\tx8, #6
\tb.ne\t.LBB0_1
\tret
.Lfunc_end0:
"""

X86 = """
\t.text
\t.type\tg,@function
g:
\txorl\t%eax, %eax
.LBB1_1:
\tvpdpbusd\t(%rsi,%rax), %zmm1, %zmm0
\taddq\t$64, %rax
\tcmpq\t$256, %rax
\tjne\t.LBB1_1
\tjmpq\t*%rdx
.Lfunc_end1:
"""

HEX = """
\t.type\th,@function
h:
\t{
\t\tr2 = #0
\t}
.LBB2_1:
\t{
\t\tloop0(.LBB2_2,#6)
\t\tr2 = add(r2,#1)
\t}
.LBB2_2:
\t{
\t\tv0 = vmem(r1++#1)
\t\tv1.w += vrmpy(v0.ub,r4.b)
\t} :endloop0
\t{
\t\tp0 = cmp.gt(r2,#3)
\t\tif (!p0.new) jump:t .LBB2_1
\t}
\t{
\t\tjumpr r31
\t}
.Lfunc_end2:
"""


def test_a_backward_branch_that_closes_no_cycle_is_not_a_loop():
    (lp,) = asm.innermost_loops(A64)
    assert lp.label == ".LBB0_1" and len(lp.units) == 10  # the whole body, both branch sides
    mix = instruction_mix(A64)
    assert mix.loops == 1 and mix.vector_mac == 1 and mix.load == 1
    assert len(asm.loop_bodies(A64, "aarch64")) == 1
    # the count predictor sees the same single loop: six iterations
    p = dyncount.predict(A64, "f")
    assert [(lp.header, lp.trip_count) for lp in p.loops] == [(".LBB0_1", 6)]


def test_a_hardware_loop_inside_a_jump_loop():
    fn = asm.split_functions(HEX, "hexagon")["h"]
    g = asm.flow_graph(fn, "hexagon")
    assert {g.blocks[lp.header].name: lp.depth for lp in g.loops} == {".LBB2_1": 1, ".LBB2_2": 2}
    (inner,) = asm.innermost_loops(HEX)
    assert inner.label == ".LBB2_2" and len(inner.units) == 1
    assert inner.raw[0].strip() == "{" and inner.raw[-1].strip() == "} :endloop0"
    mix = instruction_mix(HEX)
    assert (mix.packets, mix.vector_mac, mix.load, mix.total_packets) == (1, 1, 1, 5)
    assert mix.mnemonics == {"vmem": 1, "vrmpy": 1}
    assert asm.count_mnemonic(HEX, "vrmpy") == 1 and asm.count_mnemonic(HEX, "vmpy") == 0
    p = dyncount.predict(HEX, "h")
    assert {lp.header: lp.trip_count for lp in p.loops} == {".LBB2_1": 4, ".LBB2_2": 6}


def test_x86_loops_and_indirect_jumps():
    assert asm.detect_isa(X86) == "x86_64"
    fn = asm.split_functions(X86, "x86_64")["g"]
    blocks = asm.basic_blocks(fn, "x86_64")
    assert [b.name for b in blocks] == ["g+0", ".LBB1_1", "g+5"]
    assert blocks[1].succ == [1, 2] and blocks[1].cond and blocks[2].indirect
    mix = instruction_mix(X86)
    assert (mix.loops, mix.vector_mac, mix.other) == (1, 1, 3)
    assert asm.count_mnemonic(X86, "vpdpbusd") == 1
    # AT&T memory operands hold commas: the destination of a store is the whole (base,index)
    assert asm.classify("vpmovdb %zmm7, 400(%rax,%r15)", "x86_64") == "vector_store"
    assert asm.classify("movl %eax, 8(%rsp,%rcx,4)", "x86_64") == "scalar_store"


def test_isa_of_a_target():
    from accelsim.core.target import load_target

    isas = {t: asm.isa_of(load_target(t)) for t in ("cortex-a55", "hvx-v68", "host")}
    assert isas == {"cortex-a55": "aarch64", "hvx-v68": "hexagon", "host": "x86_64"}


def test_kernel_cost_cache_key_covers_the_front_end(monkeypatch):
    """A change to accelsim/asm (how kernels are read) invalidates stored kernel costs."""
    from accelsim.sim import kernel_cost

    parts: list[str] = []
    monkeypatch.setattr(kernel_cost, "code_fingerprint", lambda *p: parts.extend(p) or "")
    kernel_cost._code_fingerprint.__wrapped__()
    assert {"sim", "asm"} <= set(parts)
