"""The design space of a CPU or DSP target for sweeps (`accelsim.dse.sweep`): grid keys are
target-file fields as dotted paths, checked before any work, and the analytic model
(`accelsim.sim.analytic`) evaluated over numpy arrays of design points.

A point is a *variant* of the base target file: the swept fields replaced, then parsed as a
target (`core.target.parse_target`). What each field changes:

- `timing.clock_hz`, `memory.levels.<L>.bandwidth_bytes_per_cycle|bandwidth_bytes_per_s`,
  `energy.static_power_w`, `energy.ops_pj.<op>`, `energy.memory_pj_per_byte.<L>`: rates and
  energies, evaluated as arrays.
- `timing.hardware_threads` (contexts): the compute of each layer whose kind's kernels split
  over the contexts (`parallel: contexts` recipes, `analytic.parallel_extent`) is shared over
  that many hardware threads / HVX contexts in contiguous chunks of its output rows
  (`analytic.split_share`: 14 rows on 4 threads run 4, 4, 4, 2, a 3.5x speed-up); memory
  bandwidth is shared, so memory time is not divided. A sweep without this key costs the
  target's own count. Where no recipe splits a layer (the Arm cores' recipes: one core) the
  key changes nothing.
- `memory.levels.<L>.size_bytes`: the loop-nest memory model's capacities (traffic per level).
- `timing.pipes.<p>`: the throughput of every instruction class of that pipe family (`_FAMILY`)
  scales by new / documented pipe count (more pipes issue more of those instructions a cycle).
- `timing.instructions.<class>.throughput`, `timing.mac.<precision>.macs_per_instruction`.
- `codegen.features=+f|-f`: a feature the ISA rules in `FEATURES` describe; `+dotprod` makes the
  8-bit MAC rows SDOT (`vector_mac_int8`, 16 MACs per 128-bit instruction: four 4-way int8 dot
  products into int32 lanes, Arm ARM "SDOT (vector)"), with no pairwise widening step.

Compute of a variant: the base target's calibrated rates (`targets/calibration/`) times the
ratio of the variant's documented rates to the base's (`analytic.simulate_graph(calibrated_as=)`),
so the base point keeps its calibration and a change scales it by the documented numbers.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from accelsim.core.area import AreaSpec, adder_um2, area_spec, logic_scale, multiplier_um2
from accelsim.core.cost import totals
from accelsim.core.errors import InputError
from accelsim.core.fsutil import read_yaml
from accelsim.core.precision import Precision
from accelsim.core.target import Target, TargetError, parse_target
from accelsim.model.graph import Graph
from accelsim.model.ops import node_macs
from accelsim.sim import analytic

# Instruction-class name families per `timing.pipes` key (the class names every shipped CPU/DSP
# target uses); a class in no family of a swept key keeps its throughput.
_FAMILY = {
    "vector": lambda c: c.startswith("vector_") and "load" not in c and "store" not in c,
    "multiply": lambda c: c.startswith("vector_") and any(k in c for k in ("mul", "mac", "mpy")),
    "shift": lambda c: c.startswith("vector_shift"),
    "permute": lambda c: c.startswith("vector_permute"),
    "load": lambda c: "load" in c,
    "store": lambda c: "store" in c,
    "scalar": lambda c: c.startswith("scalar_") and c not in ("scalar_load", "scalar_store"),
    "mac": lambda c: c == "scalar_mul",
    "branch": lambda c: c == "branch",
}

# ISA features a sweep can switch: the MAC rows they replace (precision -> row) and the
# instruction classes the rows need. SDOT: Arm ARM "SDOT (vector)"; SMULL/SMLAL + SADALP: the
# Armv8.0 widening path (8 products per instruction, one pairwise accumulate per two).
# unpack ALU ops per MAC instruction: int4 weights two output channels per byte, one SHL or AND
# per 16 weights shared by a tile's pixels (the targets' rows); int4 activations one per byte
_INT8 = {"w8a8": 0.0, "w4a8": 0.125, "w8a4": 0.0, "w4a4": 0.125}
FEATURES: Mapping[str, Mapping[str, Any]] = {
    "+dotprod": {
        "mtriple": "aarch64",
        "mattr": "+dotprod",
        "needs": ("vector_mac_int8",),
        "mac": {
            p: {"instruction": "vector_mac_int8", "macs_per_instruction": 16}
            | ({"extra": {"vector_alu": u}} if u else {})
            for p, u in _INT8.items()
        },
    },
    "-dotprod": {
        "mtriple": "aarch64",
        "mattr": "-dotprod",
        "needs": ("vector_mul_long_int8", "vector_pairwise_acc"),
        "mac": {
            p: {
                "instruction": "vector_mul_long_int8",
                "macs_per_instruction": 8,
                "extra": {"vector_pairwise_acc": 0.5} | ({"vector_alu": u} if u else {}),
            }
            for p, u in _INT8.items()
        },
    },
}

# fields evaluated as arrays over points (the rest select a variant parsed once)
_ARRAY_PREFIXES = ("energy.", "timing.clock_hz", "timing.hardware_threads")
_ARRAY_SUFFIXES = (".bandwidth_bytes_per_cycle", ".bandwidth_bytes_per_s")
_INTEGER = ("size_bytes", "hardware_threads")


def _summary(keys: Sequence[str]) -> str:
    """`a.b.x, a.b.y` -> `a.b.{x,y}`: the allowed keys on one readable line."""
    groups: dict[tuple[str, str], list[str]] = {}
    for k in keys:
        parts = k.split(".")
        if len(parts) >= 3:
            i = 2 if parts[0] in ("timing", "energy") else len(parts) - 2
            if parts[0] == "timing" and parts[1] in ("instructions", "mac"):
                i = 2
            head, tail = ".".join(parts[:i]), ".".join(parts[i + 1 :])
            groups.setdefault((head, tail), []).append(parts[i])
        else:
            groups.setdefault((k, ""), [])
    out = []
    for (head, tail), names in groups.items():
        if not names:
            out.append(head)
            continue
        mid = names[0] if len(names) == 1 else "{" + ",".join(names) + "}"
        out.append(".".join(p for p in (head, mid, tail) if p))
    return ", ".join(out)


class CoreSpace:
    """Sweeps of one base CPU/DSP target."""

    def __init__(self, target: Target):
        self.base = target
        self.raw = read_yaml(target.path, "target file", TargetError)
        self._variants: dict[str, Target] = {}
        self._compute: dict[tuple, np.ndarray] = {}
        self._traffic: dict[tuple, np.ndarray] = {}
        self._nodes: dict[tuple, tuple] = {}
        self._levels = [lv["name"] for lv in self.raw.get("memory", {}).get("levels", [])]

    # -- keys and values ---------------------------------------------------------------------
    def allowed(self) -> list[str]:
        t = self.raw.get("timing", {})
        e = self.raw.get("energy", {})
        out = ["timing.clock_hz", "timing.hardware_threads", "codegen.features"]
        out += [f"timing.pipes.{p}" for p in t.get("pipes", {}) if p in _FAMILY]
        out += [f"timing.instructions.{c}.throughput" for c in t.get("instructions", {})]
        out += [f"timing.mac.{p}.macs_per_instruction" for p in t.get("mac", {})]
        for lv in self.raw.get("memory", {}).get("levels", []):
            n = lv["name"]
            if "size_bytes" in lv:
                out.append(f"memory.levels.{n}.size_bytes")
            out += [f"memory.levels.{n}{s}" for s in _ARRAY_SUFFIXES]
        out += ["energy.static_power_w"]
        out += [f"energy.ops_pj.{k}" for k in e.get("ops_pj", {})]
        out += [f"energy.memory_pj_per_byte.{k}" for k in e.get("memory_pj_per_byte", {})]
        return out

    def canonical(self, key: str) -> str:
        allowed = self.allowed()
        if key not in allowed:
            import difflib

            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise InputError(
                f"sweep: grid key '{key}' is not a field the analytic model of "
                f"{self.base.name} ({self.base.path}) reads{hint}; allowed: {_summary(allowed)}"
            )
        return key

    def is_array(self, key: str) -> bool:
        return key.startswith(_ARRAY_PREFIXES) or key.endswith(_ARRAY_SUFFIXES)

    def _check_value(self, key: str, v: Any) -> None:
        if key == "codegen.features":
            if v not in FEATURES:
                raise InputError(
                    f"sweep: {key}={v!r}: expected one of {', '.join(FEATURES)} (a feature "
                    f"whose instruction rules the analytic model knows)"
                )
            triple = str(self.base.codegen.tvm_target.get("mtriple", ""))
            if not triple.startswith(FEATURES[v]["mtriple"]):
                raise InputError(
                    f"sweep: {key}={v}: an {FEATURES[v]['mtriple']} feature; {self.base.name} "
                    f"generates code for '{triple or self.base.codegen.tvm_target.get('kind')}'"
                )
            need = [c for c in FEATURES[v]["needs"] if c not in self.raw["timing"]["instructions"]]
            if need:
                raise InputError(
                    f"sweep: {key}={v}: {self.base.path} has no timing.instructions.{need[0]} "
                    f"(the class the feature's MAC instructions time with)"
                )
            return
        integer = key.rsplit(".", 1)[-1] in _INTEGER or key.startswith("timing.pipes.")
        zero_ok = key.startswith("energy.")
        if (
            isinstance(v, bool)
            or not isinstance(v, (int, float))
            or (integer and not isinstance(v, int))
            or v < 0
            or (v == 0 and not zero_ok)
        ):
            what = "integer" if integer else "number"
            raise InputError(
                f"sweep: {key}={v!r}: expected a {'non-negative' if zero_ok else 'positive'} {what}"
            )

    def check(
        self,
        structural: Sequence[Mapping[str, Any]],
        arrays: Mapping[str, Sequence[Any]],
        precisions: Sequence[Precision],
    ) -> None:
        for k, values in arrays.items():
            for v in values:
                self._check_value(k, v)
                self.variant({k: v})
        for combo in structural:
            for k, v in combo.items():
                self._check_value(k, v)
            t = self.variant(combo)
            for p in precisions:
                try:
                    t.check_precision(p)
                    analytic.peak_macs_per_cycle(t, p) if p.name in t.timing.get(
                        "mac", {}
                    ) else None
                except Exception as exc:
                    raise InputError(f"sweep: {exc}") from None

    # -- variants ----------------------------------------------------------------------------
    def variant(self, params: Mapping[str, Any]) -> Target:
        """The base target file with `params` (dotted paths) applied, parsed as a target."""
        key = json.dumps(sorted(params.items()), default=str)
        hit = self._variants.get(key)
        if hit is not None:
            return hit
        data = copy.deepcopy(self.raw)
        timing = data.setdefault("timing", {})
        for k, v in params.items():
            if k == "codegen.features":
                rule = FEATURES[v]
                feat = v[1:]
                cg = data["codegen"]
                cg["features"] = [f for f in cg.get("features", []) if f != feat]
                if v.startswith("+"):
                    cg["features"].append(feat)
                attrs = cg["tvm_target"].get("mattr", [])
                cg["tvm_target"]["mattr"] = [a for a in attrs if a[1:] != feat] + [rule["mattr"]]
                for p, row in rule["mac"].items():
                    if p in timing.get("mac", {}):
                        timing["mac"][p] = copy.deepcopy(row)
                continue
            if k.startswith("timing.pipes."):
                pipe = k.split(".")[2]
                old = timing["pipes"][pipe]
                timing["pipes"][pipe] = v
                for c, row in timing.get("instructions", {}).items():
                    if _FAMILY[pipe](c):
                        row["throughput"] = row["throughput"] * v / old
                continue
            parts = k.split(".")
            if parts[:2] == ["memory", "levels"]:
                node = next(lv for lv in data["memory"]["levels"] if lv["name"] == parts[2])
                parts = parts[3:]
            else:
                node = data
            for p in parts[:-1]:
                node = node.setdefault(p, {})
            node[parts[-1]] = v
        desc = ", ".join(f"{k}={v}" for k, v in params.items())
        try:
            t = parse_target(data, f"{self.base.path} (sweep variant {desc})")
        except TargetError as exc:
            raise InputError(f"sweep: {exc}") from None
        self._variants[key] = t
        return t

    # -- the model -----------------------------------------------------------------------------
    def _compute_cycles(self, graph: Graph, precision: Precision, t: Target) -> np.ndarray:
        """Per node: compute cycles of the variant (one thread), and 0 for views."""
        key = (id(graph), precision.name, json.dumps([t.timing, t.codegen], default=str))
        hit = self._compute.get(key)
        if hit is None:
            hit = np.array(
                [
                    0.0
                    if n.op in analytic.FREE_OPS
                    else analytic.layer_compute(graph, n, t, precision, self.base)
                    for n in graph.nodes
                ]
            )
            self._compute[key] = hit
        return hit

    def _extents(self, graph: Graph, precision: Precision, t: Target) -> np.ndarray:
        """Per node: (rows, vectors) its kernel shares out over the hardware threads
        (`analytic.parallel_extent`; rows 0: not split), as a 2 x 1 x nodes array."""
        return np.array(
            [
                (0, 0)
                if n.op in analytic.FREE_OPS
                else analytic.parallel_extent(graph, n, t, precision, self.base)
                for n in graph.nodes
            ]
        ).T[:, None, :]

    def _bytes(self, graph: Graph, precision: Precision, t: Target) -> np.ndarray:
        """Per node x memory level: bytes served (the loop-nest model at the variant's sizes)."""
        key = (id(graph), precision.name, json.dumps([t.memory, t.codegen], default=str))
        hit = self._traffic.get(key)
        if hit is None:
            levels = analytic.memory_levels(t)
            rows = []
            for n in graph.nodes:
                if n.op in analytic.FREE_OPS:
                    rows.append([0.0] * len(levels))
                    continue
                prec = analytic.layer_precision(graph, n, precision)
                tr = analytic.layer_traffic(graph, n, levels, t, prec)
                rows.append([tr[lv.name] for lv in levels])
            hit = self._traffic[key] = np.array(rows)
        return hit

    def _node_table(self, graph: Graph, precision: Precision) -> tuple:
        """Per node: is a view, MACs, other vector-ALU operations, its MAC energy key."""
        key = (id(graph), precision.name)
        hit = self._nodes.get(key)
        if hit is None:
            nodes = graph.nodes
            hit = self._nodes[key] = (
                np.array([nd.op in analytic.FREE_OPS for nd in nodes])[None, :],
                np.array([node_macs(graph, nd) for nd in nodes], dtype=float),
                np.array([analytic.other_ops(graph, nd) for nd in nodes], dtype=float),
                [analytic.mac_energy_key(graph, nd, precision) for nd in nodes],
            )
        return hit

    def evaluate(
        self,
        graph: Graph,
        precision: Precision,
        structural: Mapping[str, Any],
        columns: Mapping[str, np.ndarray],
        n: int,
    ) -> dict[str, np.ndarray]:
        """`analytic.simulate_graph` of each point's variant, summed over layers in node order,
        as arrays (points x layers): the same operations in the same order."""
        t = self.variant(structural)
        compute = self._compute_cycles(graph, precision, t)[None, :]
        traffic = self._bytes(graph, precision, t)
        col = {k: np.asarray(v)[:, None] for k, v in columns.items()}
        clock = col.get("timing.clock_hz", float(t.timing["clock_hz"]))
        threads = col.get("timing.hardware_threads", t.hardware_threads)
        e_ops = t.energy.get("ops_pj", {})
        e_mem = t.energy.get("memory_pj_per_byte", {})

        def energy(key: str, section: Mapping, default: float = 0.0):
            return col.get(f"energy.{key}", float(section.get(key.split(".")[-1], default)))

        levels = analytic.memory_levels(t)
        bpc, pj = [], []
        for lv in levels:
            raw = next(x for x in t.memory["levels"] if x["name"] == lv.name)
            k = f"memory.levels.{lv.name}."
            if k + "bandwidth_bytes_per_cycle" in col:
                bpc.append(col[k + "bandwidth_bytes_per_cycle"].astype(float))
            elif "bandwidth_bytes_per_cycle" in raw:
                bpc.append(lv.bytes_per_cycle)
            else:
                bps = col.get(k + "bandwidth_bytes_per_s", float(raw["bandwidth_bytes_per_s"]))
                bpc.append(np.asarray(bps, dtype=float) / clock)
            pj.append(energy(f"memory_pj_per_byte.{lv.name}", e_mem))
        free, macs, other, mac_keys = self._node_table(graph, precision)
        memory = None
        for i in range(len(levels)):
            m = traffic[None, :, i] / bpc[i]
            memory = m if memory is None else np.maximum(memory, m)
        rows, vectors = self._extents(graph, precision, t)
        compute = compute / analytic.split_share(rows, vectors, threads)
        cycles = np.maximum(np.maximum(compute, memory), 1.0)
        cycles = np.where(free, 0.0, cycles)
        latency = cycles / clock
        add = energy("ops_pj.int32_add", e_ops)
        per_key = {k: energy(f"ops_pj.{k}", e_ops) for k in dict.fromkeys(mac_keys)}
        mac_pj = np.stack([np.broadcast_to(per_key[k], (n, 1))[:, 0] for k in mac_keys], axis=1)
        e_compute = (macs[None, :] * mac_pj + other[None, :] * add) * 1e-12
        e_on = 0.0
        e_off = 0.0
        for i in range(len(levels)):
            passed = 0.0
            for j in range(i, len(levels)):
                passed = passed + traffic[None, :, j]
            if i == len(levels) - 1:
                e_off = e_off + traffic[None, :, i] * pj[i] * 1e-12
            else:
                e_on = e_on + passed * pj[i] * 1e-12
        static = energy("static_power_w", t.energy) * latency
        zero = np.zeros((n, len(graph.nodes)))
        split = {
            "compute": np.where(free, 0.0, zero + e_compute),
            "onchip_memory": np.where(free, 0.0, zero + e_on),
            "offchip_memory": np.where(free, 0.0, zero + e_off),
            "static": np.where(free, 0.0, zero + static),
        }
        layer_energy = split["compute"] + split["onchip_memory"] + split["offchip_memory"]
        layer_energy = layer_energy + split["static"]

        def total(a) -> np.ndarray:  # left to right, as Python's sum over the layers
            return np.cumsum(zero + a, axis=1)[:, -1]

        out = {
            "latency_s": total(latency),
            "energy_j": total(layer_energy),
            "cycles": total(cycles),
        }
        for k, v in split.items():
            out[f"energy_{k}_j"] = total(v)
        return out

    def evaluate_point(
        self, graph: Graph, precision: Precision, params: Mapping[str, Any]
    ) -> dict[str, float]:
        """The per-point model: the variant target through `analytic.simulate_graph`."""
        t = self.variant(params)
        costs = analytic.simulate_graph(
            graph,
            t,
            precision,
            calibrated_as=self.base,
        )
        return totals(costs)

    # -- area --------------------------------------------------------------------------------
    def _area(self) -> AreaSpec | None:
        node = self.base.energy.get("technology_nm")
        return area_spec(self.base, float(node)) if node else None

    def has_area(self) -> bool:
        return self._area() is not None

    def area(
        self, structural: Mapping[str, Any], columns: Mapping[str, np.ndarray], n: int
    ) -> np.ndarray | None:
        """mm^2 per point: `area.core_logic_mm2` (the core without its swept parts), the
        vector pipes (each vector_bits / 8 int8 multipliers and vector_bits / 32 32-bit adders),
        one vector register file per hardware thread (32 registers, counted as SRAM bits) and
        every on-chip memory level, at the target's node."""
        spec = self._area()
        if spec is None:
            return None
        t = self.variant(structural)
        node = spec.node_nm
        vb = t.codegen.vector_bits
        pipes = t.timing.get("pipes", {}).get("vector", 1)
        pipe_um2 = vb / 8 * multiplier_um2(8, 8) + vb / 32 * adder_um2(32)
        threads = np.asarray(
            columns.get("timing.hardware_threads", t.timing.get("hardware_threads", 1))
        )
        onchip = sum(float(lv["size_bytes"]) for lv in t.memory["levels"] if "size_bytes" in lv)
        total = (
            spec.core_logic_mm2
            + pipes * pipe_um2 * logic_scale(node) * 1e-6
            + spec.sram_mm2(threads * analytic.VECTOR_REGISTERS * vb / 8 + onchip)
        )
        return np.broadcast_to(total, (n,)).astype(float)
