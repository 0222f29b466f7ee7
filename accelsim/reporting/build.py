"""`generate_report`: plan -> simulations (cached) -> tables -> figures -> HTML / Markdown.

Everything written is a function of the inputs except one line, the generation timestamp, in
`index.html`, `report.md` and the per-model layer pages (`Generated <UTC time> ...`)."""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from accelsim.core.cache import ResultCache
from accelsim.core.fsutil import atomic_write_text, inside, safe_name
from accelsim.core.progress import progress_bar
from accelsim.core.version import __version__
from accelsim.reporting import document as D
from accelsim.reporting import plots
from accelsim.reporting.collect import Job, Run, collect, simulator_of
from accelsim.reporting.spec import ACCURACY_MODELS, Plan, ReportSpec, make_plan, read_accuracy
from accelsim.reporting.tables import (
    AccuracyPoint,
    accuracy_rows,
    layer_rows,
    summary_rows,
    write_tables,
)

TIMESTAMP_PREFIX = "Generated "
_FIDELITY_TEXT = {
    "analytic": "the roofline cost model evaluated from operator shapes, the schedule "
    "recipes and the target file's documented numbers, no compilation "
    "(accelsim.sim.analytic for CPU and DSP targets, accelsim.accel.analytic for "
    "accelerators); on CPU and DSP targets its compute rates per layer kind are "
    "calibrated against codegen fidelity on the zoo's kernels "
    "(targets/calibration/)",
    "codegen": "cycles from the kernels TVM generated: dynamic instruction counts of their "
    "assembly (basic blocks x loop trip counts), the per-core pipe model and the "
    "memory model (accelsim.sim.kernel_cost)",
    "accel-sim": "the accelerator's instruction-level simulator timing the program generated "
    "for each layer through TVM (accelsim.accel); layers it does not run are "
    "costed on its host core",
}


@dataclass(frozen=True)
class ReportResult:
    out_dir: Path
    files: tuple[Path, ...]
    runs: int
    cached_runs: int
    wall_s: float


# -- helpers --------------------------------------------------------------------------------


def _fmt(v: float | None, digits: int = 4) -> str:
    if v is None:
        return "-"
    return f"{v:.{digits}g}"


def _fmt_int(v: float) -> str:
    return f"{v:,.0f}"


def provenance(runs: Sequence[Run]) -> str:
    """The caption sentence every figure and table carries: which fidelity produced which
    numbers, and which calibration data the quantized graphs came from."""
    by_fid: dict[str, set] = {}
    for r in runs:
        by_fid.setdefault(r.fidelity, set()).add(r.target)
    order = sorted(by_fid, key=lambda f: (f != "analytic", f))
    fid = "; ".join(f"{f} ({', '.join(sorted(by_fid[f]))})" for f in order)
    cal = " / ".join(sorted({r.calibration.split(" (")[0] for r in runs}))
    return f"Fidelity: {fid}. Calibration data: {cal} (timing only)."


def _model_rows(runs: Sequence[Run]) -> list[tuple[str, ...]]:
    seen = {}
    for r in runs:
        seen.setdefault(r.model, r)
    return [
        (m, "x".join(map(str, r.input_shape)), f"{r.params:,}", f"{r.macs:,}")
        for m, r in seen.items()
    ]


def _target_rows(plan: Plan) -> list[tuple[str, ...]]:
    rows = []
    for t in plan.targets:
        clock = t.timing.get("clock_hz")
        rows.append(
            (
                t.name,
                t.kind,
                t.description,
                f"{float(clock) / 1e9:.3g} GHz" if clock else "-",
                simulator_of(t, plan.fidelity),
                ", ".join(plan.precisions[t.name]),
                Path(t.path).name,
            )
        )
    return rows


def _fmt_value(v) -> str:
    """A target-file value as the file would show it (mappings and lists compactly)."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, int | str):
        return str(v)
    if isinstance(v, Mapping):
        # the numbers of a row; its descriptive text (example, note) stays in the file
        items = [(k, x) for k, x in v.items() if not isinstance(x, str)]
        return "{" + ", ".join(f"{k}: {_fmt_value(x)}" for k, x in items) + "}"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_fmt_value(x) for x in v) + "]"
    return str(v)


def _assumption_rows(plan: Plan) -> list[tuple[str, ...]]:
    """Per target in the report: each assumed field of its file, its value and the reason."""
    rows = []
    for t in plan.targets:
        for a in t.assumptions:
            rows.append((t.name, a.path, _fmt_value(a.value), a.reason))
        if not t.assumptions:
            rows.append((t.name, "-", "-", f"{Path(t.path).name} lists no assumptions"))
    return rows


def _short_mix(r: dict) -> str:
    return (
        f"{r['layers_compute_bound']} C / {r['layers_memory_bound']} M "
        f"({r['compute_bound_latency_share']:.0%})"
    )


def _headline_table(
    rows: list[dict], model: str, precisions: Sequence[str], caption: str
) -> D.Table:
    """Targets x precisions: latency in ms and, where the target has fp32, the speedup."""
    mine = [r for r in rows if r["model"] == model]
    targets = list(dict.fromkeys(r["target"] for r in mine))
    by = {(r["target"], r["precision"]): r for r in mine}
    out = []
    for t in targets:
        cells = [t]
        for p in precisions:
            r = by.get((t, p))
            if r is None:
                cells.append("-")
            elif r["speedup_vs_fp32"] is None:
                cells.append(f"{r['latency_s'] * 1e3:.3g} ms")
            else:
                sp = r["speedup_vs_fp32"]
                sp_txt = f"{sp:.0f}x" if sp >= 10 else f"{sp:.2g}x"
                cells.append(f"{r['latency_s'] * 1e3:.3g} ms ({sp_txt})")
        out.append(tuple(cells))
    return D.Table(
        ("target",) + tuple(precisions), tuple(out), caption, (False,) + (True,) * len(precisions)
    )


def _summary_table(rows: list[dict], model: str, caption: str) -> D.Table:
    cols = (
        "target",
        "precision",
        "latency (ms)",
        "energy (mJ)",
        "cycles",
        "speedup vs fp32",
        "energy vs fp32",
        "model size (MB)",
        "bound: layers C / M (time C)",
        "lowered: MACs / layers",
        "fidelity",
    )
    out = []
    for r in rows:
        if r["model"] != model:
            continue
        out.append(
            (
                r["target"],
                r["precision"],
                _fmt(r["latency_s"] * 1e3),
                _fmt(r["energy_j"] * 1e3),
                _fmt_int(r["cycles"]),
                _fmt(r["speedup_vs_fp32"], 3),
                _fmt(r["energy_ratio_vs_fp32"], 3),
                _fmt(r["model_bytes"] / 1e6, 4),
                _short_mix(r),
                f"{r['lowered_mac_share']:.0%} / {r['lowered_layer_share']:.0%}",
                r["fidelity"],
            )
        )
    return D.Table(
        cols,
        tuple(out),
        caption,
        (False, False, True, True, True, True, True, True, False, True, False),
    )


def _layer_table(run: Run, caption: str) -> D.Table:
    if run.target_kind == "accelerator":
        caption += " Bytes moved: DRAM traffic (scratchpad traffic is in layers.csv)."
    else:
        caption += " Bytes moved: all memory levels (per level in layers.csv)."
    cols = (
        "#",
        "layer",
        "op",
        "group",
        "MACs",
        "cycles",
        "latency (us)",
        "energy (uJ)",
        "bound",
        "util",
        "bytes moved (KB)",
    )
    rows = []
    for i, (c, g) in enumerate(zip(run.layers, run.groups)):
        moved = sum(
            float(v)
            for k, v in c.bytes_moved.items()
            if not (run.target_kind == "accelerator" and k != "dram")
        )
        rows.append(
            (
                str(i),
                c.name,
                c.op,
                g,
                _fmt_int(c.macs),
                _fmt_int(c.cycles),
                _fmt(c.latency_s * 1e6),
                _fmt(c.energy_j * 1e6),
                c.bound,
                f"{c.utilization:.0%}" if c.macs else "-",
                _fmt(moved / 1024),
            )
        )
    return D.Table(
        cols,
        tuple(rows),
        caption,
        (True, False, False, False, True, True, True, True, False, True, True),
    )


def _timestamp() -> D.Para:
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return D.Para((f"{TIMESTAMP_PREFIX}{now} by accelsim {__version__}",), "timestamp")


def _write_doc(out: Path, stem: str, title: str, blocks: list) -> list[Path]:
    html = inside(out, f"{stem}.html")  # stems carry model names: sanitised, inside `out`
    atomic_write_text(html, D.to_html(title, blocks))
    md = out / "report.md" if stem == "index" else html.with_suffix(".md")
    # Markdown links to the Markdown twin of each page
    md_blocks = [_md_links(b) for b in blocks]
    atomic_write_text(md, D.to_markdown(md_blocks))
    return [html, md]


def _md_links(b):
    if isinstance(b, (D.Para,)):
        return D.Para(tuple(_md_link(p) for p in b.parts), b.css)
    if isinstance(b, D.Bullets):
        return D.Bullets(tuple(tuple(_md_link(p) for p in i) for i in b.items))
    if isinstance(b, D.Details):
        return D.Details(b.summary, tuple(_md_links(x) for x in b.blocks), b.open)
    return b


def _md_link(p):
    if isinstance(p, D.Link) and p.href.endswith(".html"):
        href = p.href[:-5] + ".md"
        return D.Link(p.text, "report.md" if href == "index.md" else href)
    return p


# -- accuracy study -------------------------------------------------------------------------


def _accuracy_jobs(plan: Plan) -> tuple[list[tuple[dict, str]], list[Job], list[str]]:
    """(accuracy rows with the cost precision each is simulated at, jobs, notes)."""
    from accelsim.core.errors import AccelsimError
    from accelsim.core.precision import parse_precision

    if plan.accuracy_path is None:
        return [], [], []
    rows = read_accuracy(plan.accuracy_path)
    picked, jobs, notes, seen = [], [], [], set()
    skipped = 0
    for row in rows:
        model = row.get("model")
        if model not in ACCURACY_MODELS:
            continue
        text = str(row.get("precision", ""))
        if text.startswith("mixed"):
            mixed = plan.accuracy_path.parent / str(row.get("mixed_yaml") or f"{model}_mixed.yaml")
            if not mixed.is_file():
                skipped += 1
                continue
            cost = f"mixed:{mixed}"
        else:
            try:
                cost = str(parse_precision(text))
            except AccelsimError:
                skipped += 1
                continue
        picked.append((row, cost))
        for t in plan.targets:
            if (model, t.name, cost) in seen or not _target_runs(t, cost):
                continue
            seen.add((model, t.name, cost))
            jobs.append(Job(model, ACCURACY_MODELS[model], t, cost))
    if skipped:
        notes.append(
            f"{skipped} accuracy rows have a precision that could not be costed and "
            f"are left out of the accuracy figure."
        )
    return picked, jobs, notes


def _target_runs(target, cost: str) -> bool:
    from accelsim.core.precision import parse_precision

    if cost.startswith("mixed:"):
        from accelsim.quant.mixed import load_mixed

        m = load_mixed(cost[6:])
        precs = [p for _, p in m.rules] + ([m.default] if m.default else [])
        return all(target.supports(p) for p in precs)
    return target.supports(parse_precision(cost))


def _cost_label(cost: str) -> str:
    return f"mixed ({Path(cost[6:]).name})" if cost.startswith("mixed:") else cost


# -- the report -----------------------------------------------------------------------------


def generate_report(spec: ReportSpec, plan: Plan | None = None) -> ReportResult:
    t0 = time.perf_counter()
    plan = plan or make_plan(spec)
    out = plan.out_dir
    out.mkdir(parents=True, exist_ok=True)
    cache = ResultCache("report", spec.cache_dir) if spec.use_cache else None

    jobs = [Job(m.source, m.input_size, t, p) for m, t, p in plan.runs()]
    for m in plan.models:  # fp32 baselines for the speedup columns, even when not reported
        for t in plan.targets:
            if not m.stored and "fp32" not in plan.precisions[t.name] and t.supports(_fp32()):
                jobs.append(Job(m.source, m.input_size, t, "fp32"))
    acc_rows, acc_jobs, acc_notes = _accuracy_jobs(plan)
    jobs += acc_jobs
    with progress_bar(len(jobs), "simulating") as bar:
        results = collect(jobs, plan.fidelity, cache, bar)

    runs = [results[(m.source, m.input_size, t.name, p)] for m, t, p in plan.runs()]
    baselines = {}
    for m in plan.models:
        for t in plan.targets:
            r = results.get((m.source, m.input_size, t.name, "fp32"))
            if r is not None:
                baselines[(r.model, t.name)] = r
    points = []
    for row, cost in acc_rows:
        for t in plan.targets:
            r = results.get((row["model"], ACCURACY_MODELS[row["model"]], t.name, cost))
            if r is not None:
                points.append(AccuracyPoint(row, t.name, _cost_label(cost), r))

    summary = summary_rows(runs, baselines)
    files = write_tables(out, summary, layer_rows(runs), accuracy_rows(points))

    models = list(dict.fromkeys(r.model for r in runs))
    targets = [t.name for t in plan.targets]
    focus = "w8a8" if "w8a8" in plan.all_precisions else plan.all_precisions[0]
    figs: dict[str, list[plots.Figure]] = {
        "latency": [],
        "layers": [],
        "energy": [],
        "roofline": [],
        "accuracy": [],
    }
    n_figs = 3 * len(models) + len(plan.targets) + (1 if points else 0)
    with progress_bar(n_figs, "plotting") as bar:
        done = 0
        for m in models:
            rs = [r for r in runs if r.model == m]
            cap = provenance(rs)
            figs["latency"].append(
                plots.latency_energy(
                    out,
                    m,
                    rs,
                    targets,
                    f"Latency (top) and energy (bottom) of one batch-1 inference of {m}, log scale; "
                    f"one bar per precision the target runs. {cap}",
                )
            )
            figs["layers"].append(
                plots.layer_groups(
                    out,
                    m,
                    rs,
                    targets,
                    focus,
                    f"Share of {m}'s latency at {focus} spent in each layer group (convolutions by "
                    f"kernel, depthwise, dense, elementwise, pooling, quantize/dequantize at the "
                    f"graph edges); the total latency is printed on each bar. {cap}",
                )
            )
            figs["energy"].append(
                plots.energy_split(
                    out,
                    m,
                    rs,
                    targets,
                    f"Energy of one inference of {m} split into compute (MACs and vector "
                    f"operations), on-chip memory (caches, scratchpads, registers), off-chip DRAM "
                    f"traffic and static (leakage x latency). {cap}",
                )
            )
            done += 3
            bar(done)
        for t in plan.targets:
            rs = [r for r in runs if r.target == t.name]
            accel = t.kind == "accelerator"
            xdef = (
                "MACs per DRAM byte"
                if accel
                else "MACs per byte the layer moves, each "
                "tensor counted at the memory level that serves it"
            )
            lines = "off-chip path (DRAM, load DMA)" if accel else "memory level"
            figs["roofline"].append(
                plots.roofline(
                    out,
                    t,
                    rs,
                    focus,
                    plan.precisions[t.name],
                    f"Roofline of {t.name}: every MAC layer of every model at {focus} as a point "
                    f"(x: {xdef}; y: achieved MACs per cycle). Dashed: peak MACs/cycle per "
                    f"precision from the target file; diagonal: bandwidth of each {lines} x "
                    f"intensity. {provenance(rs)}",
                )
            )
            done += 1
            bar(done)
        if points:
            figs["accuracy"].append(
                plots.accuracy_cost(
                    out,
                    points,
                    targets,
                    f"Accuracy (reports/accuracy.json: integer-only reference executor on the "
                    f"held-out test split; top-1 for the digits models and PaddleOCR's "
                    f"orientation classifier, exact match for its text recognizer) against the "
                    f"simulated latency and energy of the same model and precision on each "
                    f"target: float, PTQ per precision and calibrator, QAT, and Wu et al.'s "
                    f"workflow (accelsim.dse.tune, its mixed float / integer result). The line "
                    f"per target is the Pareto front (no other point is both cheaper and more "
                    f"accurate). Cost is simulated at the row's precision; calibration barely "
                    f"changes cost, so rows of one precision stack vertically. "
                    f"{provenance([p.run for p in points])}",
                )
            )
            done += 1
            bar(done)
    files += [out / f.file for fl in figs.values() for f in fl]

    notes = list(plan.notes) + acc_notes
    if any(t.kind == "accelerator" for t in plan.targets):
        notes.append(
            "The accelerator targets have no float datapath, so their speedup and "
            "energy ratio vs fp32 are blank; compare them across targets instead."
        )
    files += _write_pages(out, spec, plan, runs, summary, figs, focus, points, notes)
    wall = time.perf_counter() - t0
    cached = sum(1 for r in results.values() if r.cached)
    return ReportResult(out, tuple(sorted(set(files))), len(results), cached, wall)


def _fp32():
    from accelsim.core.precision import parse_precision

    return parse_precision("fp32")


def _write_pages(
    out: Path,
    spec: ReportSpec,
    plan: Plan,
    runs: list[Run],
    summary: list[dict],
    figs,
    focus: str,
    points,
    notes: list[str],
) -> list[Path]:
    models = list(dict.fromkeys(r.model for r in runs))
    title = f"accelsim cost report: {spec.name}"
    prov = provenance(runs)
    b: list = [D.Heading(1, title), _timestamp()]
    b.append(
        D.Para(
            (
                f"Simulated latency and energy of {', '.join(models)} on {len(plan.targets)} "
                f"target{'s' if len(plan.targets) != 1 else ''} at {', '.join(plan.all_precisions)}: "
                f"every number below comes from a cost model, none is measured. ",
                prov,
            )
        )
    )
    sections = [
        ("setup", "Setup"),
        ("summary", "Summary"),
        ("latency", "Latency and energy by precision"),
        ("layers", "Where the time goes (layer groups)"),
        ("energy", "Energy by component"),
        ("roofline", "Rooflines"),
        ("per-layer", f"Per-layer breakdown at {focus}"),
    ]
    efficiency = _kernel_efficiency_blocks(plan)
    if efficiency:
        sections.append(("kernel-efficiency", _KE_HEAD))
    if points:
        sections.append(("accuracy", "Accuracy vs latency vs energy"))
    sections.append(("assumptions", "Assumptions"))
    sections.append(("files", "Files and notes"))
    b.append(D.Bullets(tuple((D.Link(t, f"#{a}"),) for a, t in sections)))

    b.append(D.Heading(2, "Setup", "setup"))
    b.append(
        D.Table(
            ("model", "input", "parameters", "MACs"),
            tuple(_model_rows(runs)),
            "Models (zoo models carry deterministic random weights; cost does not "
            "depend on weight values).",
            (False, False, True, True),
        )
    )
    b.append(
        D.Table(
            ("target", "kind", "description", "clock", "fidelity", "precisions", "file"),
            tuple(_target_rows(plan)),
            "Targets: every number in the target files carries its source "
            "(docs/target-sources.md).",
        )
    )
    fids = sorted({r.fidelity for r in runs}, key=lambda f: (f != "analytic", f))
    b.append(
        D.Bullets(
            tuple(
                [(f"Fidelity {f}: {_FIDELITY_TEXT.get(f, f)}.",) for f in fids]
                + [
                    (
                        f"Quantization: {c}."
                        if c.startswith("stored")
                        else f"Calibration data: {c}. Every quantized graph is calibrated on it; "
                        f"latency and energy depend on shapes and bit widths, not on the "
                        f"calibrated ranges.",
                    )
                    for c in sorted({r.calibration for r in runs})
                ]
                + [(n,) for n in notes]
            )
        )
    )

    b.append(D.Heading(2, "Summary", "summary"))
    b.append(
        D.Para(
            (
                "Per model: latency per target and precision at a glance, then (click "
                "to open) one row per target and precision with energy, cycles, speedup "
                "and energy ratio against fp32 on the same target, model size (every "
                "constant at its bit width) and how many kernels are compute- or "
                "memory-bound. Full precision in ",
                D.Link("summary.csv", "summary.csv"),
                " / ",
                D.Link("summary.json", "summary.json"),
                ".",
            )
        )
    )
    for m in models:
        b.append(D.Heading(3, m))
        mine = [r for r in runs if r.model == m]
        b.append(
            _headline_table(
                summary,
                m,
                plan.all_precisions,
                f"{m}: latency of one inference per target and precision (speedup vs fp32 on the "
                f"same target in brackets; '-': the target cannot run that precision). "
                f"{provenance(mine)}",
            )
        )
        b.append(
            D.Details(
                f"{m}: full summary (energy, cycles, energy ratio, model size, bound mix)",
                (
                    _summary_table(
                        summary,
                        m,
                        f"{m}. Bound: kernels that are compute- (C) or memory-bound (M), "
                        f"and the share of time spent in compute-bound ones. Lowered: share of "
                        f"MACs and of layers that ran on code generated for the target (kernels "
                        f"and views; the rest ran on a host fallback or in the reference "
                        f"executor only, per layer in layers.csv, column 'ran'). "
                        f"{provenance(mine)}",
                    ),
                ),
            )
        )

    for key, anchor, head in (
        ("latency", "latency", "Latency and energy by precision"),
        ("layers", "layers", "Where the time goes (layer groups)"),
        ("energy", "energy", "Energy by component"),
        ("roofline", "roofline", "Rooflines"),
    ):
        b.append(D.Heading(2, head, anchor))
        for f in figs[key]:
            b.append(D.Image(f.file, f.title, f.caption))

    b.append(D.Heading(2, f"Per-layer breakdown at {focus}", "per-layer"))
    b.append(
        D.Para(
            (
                f"Each model on each target at {focus}; click to open. The other "
                f"precisions are on one page per model: ",
                *_join_links([(m, safe_name(f"layers_{m}.html")) for m in models]),
                "; every layer of every run is in ",
                D.Link("layers.csv", "layers.csv"),
                " / ",
                D.Link("layers.json", "layers.json"),
                ".",
            )
        )
    )
    for m in models:
        b.append(D.Heading(3, m))
        for r in runs:
            if r.model == m and r.precision == focus:
                b.append(
                    D.Details(
                        f"{m} on {r.target} at {focus}: {r.latency_s * 1e3:.4g} ms, "
                        f"{r.energy_j * 1e3:.4g} mJ ({r.fidelity})",
                        (_layer_table(r, f"{m} on {r.target} at {focus}. {provenance([r])}"),),
                    )
                )

    b.extend(efficiency)

    if points:
        b.append(D.Heading(2, "Accuracy vs latency vs energy", "accuracy"))
        for f in figs["accuracy"]:
            b.append(D.Image(f.file, f.title, f.caption))
        b.append(_accuracy_table(points, [t.name for t in plan.targets]))

    b.append(D.Heading(2, "Assumptions", "assumptions"))
    b.append(
        D.Para(
            (
                "Target-file numbers that no hardware document gives, with the reason for each "
                "value (the file's ",
                D.Code("assumptions:"),
                " mapping; every other number cites its source, see docs/target-sources.md). "
                "Results that hinge on these are model choices, not hardware facts.",
            )
        )
    )
    b.append(D.Table(("target", "field", "value", "reason"), tuple(_assumption_rows(plan))))

    b.append(D.Heading(2, "Files and notes", "files"))
    b.append(
        D.Bullets(
            (
                (
                    D.Link("summary.csv", "summary.csv"),
                    ", ",
                    D.Link("summary.json", "summary.json"),
                    ": one row per model x target x precision.",
                ),
                (
                    D.Link("layers.csv", "layers.csv"),
                    ", ",
                    D.Link("layers.json", "layers.json"),
                    ": every LayerCost of every run (bytes moved per memory level as JSON in the CSV).",
                ),
                *(
                    (
                        (
                            D.Link("accuracy_cost.csv", "accuracy_cost.csv"),
                            ", ",
                            D.Link("accuracy_cost.json", "accuracy_cost.json"),
                            ": accuracy-study rows joined with simulated cost.",
                        ),
                    )
                    if points
                    else ()
                ),
                (
                    "Reproduce: ",
                    D.Code(command_line(spec)),
                    ". Results are cached by content hash "
                    "(graph structure, precision, target file, simulator source, accelsim version), so "
                    "a rerun with the same inputs only redraws; the files it writes are byte-identical "
                    "apart from the timestamp line.",
                ),
            )
        )
    )
    files = _write_doc(out, "index", title, b)

    for m in models:
        lb: list = [
            D.Heading(1, f"{m}: per-layer costs"),
            _timestamp(),
            D.Para(("Back to the ", D.Link("report", "index.html"), ". ", prov)),
        ]
        for t in plan.targets:
            lb.append(D.Heading(2, t.name))
            for r in runs:
                if r.model == m and r.target == t.name:
                    lb.append(
                        D.Details(
                            f"{r.precision}: {r.latency_s * 1e3:.4g} ms, {r.energy_j * 1e3:.4g} mJ",
                            (
                                _layer_table(
                                    r, f"{m} on {t.name} at {r.precision}. {provenance([r])}"
                                ),
                            ),
                        )
                    )
        files += _write_doc(out, f"layers_{m}", f"{m}: per-layer costs", lb)
    return files


def _join_links(pairs):
    out = []
    for i, (text, href) in enumerate(pairs):
        if i:
            out.append(", ")
        out.append(D.Link(text, href))
    return out


def command_line(spec: ReportSpec) -> str:
    """The `accelsim report` command that regenerates this report."""
    parts = ["accelsim report"]
    parts += [f"--model {m}" for m in spec.models]
    parts += [f"--target {t}" for t in spec.targets]
    if spec.precisions:
        parts.append("--precision " + ",".join(spec.precisions))
    if spec.input_size is not None:
        parts.append(f"--input-size {spec.input_size}")
    if spec.out:
        parts.append(f"--out {spec.out}")
    elif spec.name != "default":
        parts.append(f"--name {spec.name}")
    return " ".join(parts)


# -- kernel efficiency -----------------------------------------------------------------------

_KE_HEAD = "Kernel efficiency of the generated code"
# cycle_breakdown's groups as the table heads them (accelsim.sim.kernel_cost.BREAKDOWN_GROUPS,
# then the memory time beyond compute)
_KE_GROUPS = {
    "mac": "MAC issue",
    "load_store": "loads / stores",
    "vector_other": "other vector",
    "scalar": "scalar",
    "stall": "stalls",
    "memory": "memory",
}


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f} %" if whole else "-"


def _kernel_efficiency_blocks(plan: Plan) -> list:
    """The section from benchmarks/kernel_efficiency.py's JSON (`Plan.kernel_efficiency`): per
    target, precision and layer kind the utilisation and where the cycles go; the int8-vs-fp32
    speedups. Rows of targets outside the report are left out."""
    data = plan.kernel_efficiency
    if not data:
        return []
    names = {t.name for t in plan.targets}
    bd = data["breakdown"]
    rows = [r for r in bd["rows"] if r["target"] in names]
    if not rows:
        return []
    size = data.get("input_size")
    models = ", ".join(bd.get("models", []))
    # every caption names its fidelity and calibration data (as provenance() does)
    cal = str(data.get("calibration_data") or "not recorded")

    def prov(targets) -> str:
        return (
            f"Fidelity: codegen ({', '.join(sorted(set(targets)))}). "
            f"Calibration data: {cal} (timing only)."
        )

    b: list = [D.Heading(2, _KE_HEAD, "kernel-efficiency")]
    b.append(
        D.Para(
            (
                "How close the kernels accelsim generates come to each core's documented peak "
                f"(the target file's timing.mac rate), and where the other cycles go: {models}"
                f"{f' at {size}x{size}' if size else ''}, every layer with MACs, at codegen "
                "fidelity (the generated code's dynamic instruction counts timed by the core's "
                "pipe model), from ",
                D.Code("python benchmarks/kernel_efficiency.py"),
                " (reports/kernel_efficiency.json; the analytic figures above are calibrated "
                "against these kernels, targets/calibration/). Percentages are of the layers' "
                "cycles: MAC issue is the cycles the multiply-accumulate instructions need at "
                "their documented issue rate (on HVX: the packets holding one); the rest of the compute cycles is split over "
                "loads and stores, other vector work (requantization, widening, permutes), "
                "scalar work (address arithmetic, loop control) by issue occupancy (on HVX: "
                "by the packets each issues), and "
                "dependency stalls; memory is the time the roofline adds beyond compute "
                "(accelsim.sim.kernel_cost.cycle_breakdown: an attribution, not a measurement). "
                "Utilisation below the MAC-issue share: the MAC instructions do fewer useful MACs "
                "than the peak's instruction (lanes computing padding, or a narrower "
                "instruction, such as the widening multiply-accumulate of int8 depthwise where "
                "the peak counts dot products). On HVX the conv, depthwise, dense, pool and add "
                "layers are split over the target's contexts (each a contiguous share of the "
                "output rows, the slowest setting the time): their MACs/cycle count every "
                "context, their utilisation is against the contexts' combined peak and their "
                "cycle split is the slowest context's.",
            )
        )
    )
    b.append(
        D.Table(
            (
                "target",
                "precision",
                "layer kind",
                "layers",
                "MACs/cycle",
                "peak",
                "utilisation",
                *_KE_GROUPS.values(),
            ),
            tuple(
                (
                    r["target"],
                    r["precision"],
                    r["kind"],
                    str(r["layers"]),
                    f"{r['macs_per_cycle']:.2f}",
                    f"{r['peak_macs_per_cycle']:g}",
                    f"{100 * r['utilization']:.1f} %",
                    *(_pct(r["cycles_by_group"].get(g, 0.0), r["cycles"]) for g in _KE_GROUPS),
                )
                for r in rows
            ),
            "Utilisation and cycle split per target, precision and layer kind (MAC-weighted "
            f"over the layers of that kind). {prov(r['target'] for r in rows)}",
            (False, False, False, *(True,) * (4 + len(_KE_GROUPS))),
        )
    )
    four = [r for r in (data.get("four_bit") or {}).get("rows", []) if r["target"] in names]
    if four:
        b.append(
            D.Table(
                ("target", "model", "w8a8 Mcycles", "w4a8 Mcycles", "extra"),
                tuple(
                    (
                        r["target"],
                        r["model"],
                        f"{r['w8a8_cycles'] / 1e6:.2f}",
                        f"{r['w4a8_cycles'] / 1e6:.2f}",
                        f"{100 * r['extra']:+.1f} %",
                    )
                    for r in four
                ),
                "What 4-bit weights cost over 8-bit ones: the cycles of the conv2d / dense "
                "layers with at least 64 channels at w4a8 against w8a8 (the same multiply "
                "instructions; 4-bit weights two per byte, two output channels' on the Arm "
                "cores, two input-channel blocks' on HVX, made 8-bit values (16 x w) in "
                "registers by one shift or mask that a tile's pixels share). "
                f"{prov(r['target'] for r in four)}",
                (False, False, True, True, True),
            )
        )
    sp = data.get("speedup") or {}
    fast = [r for r in sp.get("rows", []) if r["target"] in names]
    if fast:
        b.append(
            D.Table(
                ("target", "model", "fp32 ms", "w8a8 ms", "int8 speedup"),
                tuple(
                    (
                        r["target"],
                        r["model"],
                        f"{1e3 * r['fp32_s']:.2f}",
                        f"{1e3 * r['w8a8_s']:.2f}",
                        f"{r['speedup']:.2f}x",
                    )
                    for r in fast
                ),
                "Whole-model latency, w8a8 against fp32 on the same core. Krishnamoorthi 2018 "
                f"measured 2-3x on phone CPUs. {prov(r['target'] for r in fast)}",
                (False, False, True, True, True),
            )
        )
    pairs = [r for r in sp.get("hvx_vs_cpu", []) if r["dsp"] in names and r["cpu"] in names]
    if pairs:
        b.append(
            D.Table(
                ("DSP / CPU", "model", "CPU fp32 ms", "HVX w8a8 ms", "speedup"),
                tuple(
                    (
                        f"{r['dsp']} / {r['cpu']}",
                        r["model"],
                        f"{1e3 * r['cpu_fp32_s']:.2f}",
                        f"{1e3 * r['dsp_w8a8_s']:.2f}",
                        f"{r['speedup']:.2f}x",
                    )
                    for r in pairs
                ),
                "HVX at w8a8 against the CPU of the same SoC at fp32 (hvx-v62 and kryo280: "
                "Snapdragon 835), the HVX layers split over the target's contexts (hvx-v62: "
                "two), the CPU on one core. Krishnamoorthi 2018 measured "
                f"up to 10x. {prov(x for r in pairs for x in (r['dsp'], r['cpu']))}",
                (False, False, True, True, True),
            )
        )
    b.extend(_host_measured(data.get("host")))
    return b


def _host_measured(h: dict | None) -> list:
    """The benchmark's host section: measured on the machine that ran it, against ONNX Runtime
    in the same run (shown whatever the report's targets: it is a measurement, not a target's
    model)."""
    if not h or not h.get("models"):
        return []

    def ms(v: float) -> str:
        return f"{1e3 * v:.2f}"

    def ratio(row: dict, key: str) -> str:
        return f"{row['ratios'][key]:.2f}x" + ("" if row["met"][key] else " (goal not met)")

    feats = ", ".join(h.get("features") or []) or "no AVX-512 / VNNI"
    return [
        D.Table(
            (
                "model",
                "ours fp32 ms",
                "ours w8a8 ms",
                "ours on ORT's QDQ ms",
                "ORT fp32 ms",
                "ORT int8 ms",
                "w8a8 / fp32",
                "vs ORT int8",
                "QDQ: ours / fp32",
                "QDQ: ours vs ORT",
                "fp32 vs ORT",
            ),
            tuple(
                (
                    r["model"],
                    ms(r["ours"]["fp32"]["pass_s"]),
                    ms(r["ours"]["w8a8"]["pass_s"]),
                    ms(r["ours"][r["ort_int8_model"]]["pass_s"]),
                    ms(r["ort_s"]["fp32"]),
                    ms(r["ort_s"]["int8"]),
                    ratio(r, "w8a8_speedup_over_fp32"),
                    ratio(r, "w8a8_vs_ort_int8"),
                    ratio(r, "qdq_speedup_over_fp32"),
                    ratio(r, "qdq_vs_ort_int8"),
                    ratio(r, "fp32_vs_ort_fp32"),
                )
                for r in h["models"]
            ),
            f"Measured, not modelled: the host kernels on the machine that ran the benchmark "
            f"({h.get('machine', '?')}; {feats}), one thread, {h.get('statistic', '')} "
            f"({h.get('clock', '')} clock), next to ONNX Runtime {h.get('onnxruntime', '')} in "
            "the same run (static QDQ, per-channel weights; 'ORT int8' is the faster of its int8 "
            "and uint8-activation models). 'ours w8a8' is accelsim's own quantized graph, which "
            "requantizes in TFLite's fixed point (a 32 x 32 -> 64-bit multiply and two "
            "roundings per output: 64-bit lanes on AVX-512); 'ours on ORT's QDQ' runs ORT's "
            "faster QDQ file itself, in its float32 requantization: the same model and "
            "arithmetic on both. Goals: w8a8 at least 2.5x our fp32 and faster than ORT's "
            "int8, our fp32 within 1.2x of ORT's. Machine-specific: rerun "
            "benchmarks/kernel_efficiency.py to measure yours. Fidelity: measured (this "
            "machine's host kernels, each checked against the reference executor). Calibration "
            "data: random (seeded samples, for our quantizer and ORT's alike; the time does not "
            "depend on them).",
            (False, *(True,) * 10),
        )
    ]


def _accuracy_table(points, targets: list[str]) -> D.Details:
    keyed: dict[tuple, dict] = {}
    for p in points:
        k = (
            p.row["model"],
            p.row["method"],
            p.row["precision"],
            p.row.get("calibration", ""),
            p.row["top1"],
        )
        keyed.setdefault(k, {})[p.target] = p.run.latency_s
    cols = ("model", "method", "precision", "calibration", "top-1") + tuple(
        f"{t} (us)" for t in targets
    )
    rows = tuple(
        k[:4] + (f"{k[4]:.4f}",) + tuple(_fmt(v[t] * 1e6) if t in v else "-" for t in targets)
        for k, v in keyed.items()
    )
    return D.Details(
        "Accuracy-study rows with simulated latency on each target (energy: accuracy_cost.csv)",
        (
            D.Table(
                cols,
                rows,
                "Top-1 from reports/accuracy.json; latency simulated. "
                + provenance([p.run for p in points]),
                (False,) * 4 + (True,) * (1 + len(targets)),
            ),
        ),
    )
