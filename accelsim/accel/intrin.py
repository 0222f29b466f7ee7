"""The accelerator's tensor intrinsics: its vector MAC (`VMAC`), described as the lowering
describes every tensor intrinsic (`accelsim.lower.intrin.Intrinsic`: shape, operand dtypes, the
TIR pattern tensorize matches and the implementation), and the TIR storage scopes of its
scratchpads, where the operands live.

Two forms, one per VMAC kind:

- `accel_vmac` (VMAC kind `bcast`; conv2d, dense): `C[l] += sum_d A[d] * B[l, d]`, `depth`
  activations broadcast to `lanes` lanes; it covers the layer's loops `oc.v, icv`;
- `accel_vmac_dw` (kind `elem`; depthwise): `C[l] += A[l] * B[l]`, one channel per lane; it
  covers `c.v`.

The implementation is `T.call_extern("int32", <form>, C.data, C.elem_offset, A.data,
A.elem_offset, B.data, B.elem_offset, lanes, depth)` on the scratchpad tiles; the code generator
reads the form, lanes and depth back from that call (`read_call`).
"""

from __future__ import annotations

from dataclasses import dataclass

from accelsim.lower.intrin import Intrinsic, implementation

SCOPES = {
    "act": "local.accel_act",
    "wgt": "local.accel_wgt",
    "acc": "local.accel_acc",
    "out": "local.accel_out",
}
SPACE_OF_SCOPE = {v: k for k, v in SCOPES.items()}


@dataclass(frozen=True)
class VMacForm:
    name: str  # the external function called, and the recipe's `tensorize` name
    kind: str  # `Intrinsic.kind`: "dot" or "elementwise"
    isa_kind: str  # `isa.VMac.kind`: "bcast" or "elem"
    loops: tuple[str, ...]  # the layer's loops the intrinsic covers, outermost first


FORMS = {
    f.name: f
    for f in (
        VMacForm("accel_vmac", "dot", "bcast", ("oc.v", "icv")),
        VMacForm("accel_vmac_dw", "elementwise", "elem", ("c.v",)),
    )
}
NAMES = tuple(FORMS)


def vmac(form: str, lanes: int, depth: int, act_dtype: str, weight_dtype: str, acc_dtype: str):
    """The VMAC of `form` on `lanes` lanes x `depth` (1 for `accel_vmac_dw`) with these storage
    dtypes, as an `Intrinsic`."""
    return Intrinsic(
        name=form,
        key=f"{form}.l{lanes}.d{depth}.{act_dtype}.{weight_dtype}.{acc_dtype}",
        act_dtype=act_dtype,
        weight_bits=16 if weight_dtype == "int16" else 8,
        acc_dtype=acc_dtype,
        lanes=lanes,
        depth=depth,
        impl=_call_impl,
        instruction="VMAC",
        doc=f"the accelerator's vector MAC, kind {FORMS[form].isa_kind}",
        kind=FORMS[form].kind,
        scopes=(SCOPES["act"], SCOPES["wgt"], SCOPES["acc"]),
    )


def _call_impl(it: Intrinsic):
    def call(T, A, B, C):
        return T.call_extern(
            "int32",
            it.name,
            C.data,
            C.elem_offset,
            A.data,
            A.elem_offset,
            B.data,
            B.elem_offset,
            it.lanes,
            it.depth,
        )

    return implementation(it, call=call)


def read_call(call) -> tuple[VMacForm, int, int] | None:
    """(form, lanes, depth) of a `T.call_extern` the implementation made; None when `call`
    is no VMAC call."""
    args = getattr(call, "args", ())
    name = getattr(args[0], "value", None) if args else None
    if name not in FORMS:
        return None
    return FORMS[name], int(args[-2].value), int(args[-1].value)
