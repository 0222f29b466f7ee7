"""The report's figures (matplotlib, Agg, PNG). Every figure function draws from `Run`s only
and returns the `Figure` it saved, with the caption that says what produced it.

PNGs are byte-stable for the same inputs and the same matplotlib / FreeType: fixed DPI and
size, no "Software" / date metadata, a fixed SVG hash salt, the bundled DejaVu font."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from accelsim.core.cost import ENERGY_COMPONENTS
from accelsim.core.target import Target
from accelsim.reporting.collect import GROUP_ORDER, Run
from accelsim.reporting.spec import PRECISION_ORDER, precision_key

DPI = 100
_PREC_COLORS = {
    "fp32": "#4d4d4d",
    "fp16": "#9e9e9e",
    "w16a16": "#8c564b",
    "w8a16": "#9467bd",
    "w8a8": "#1f77b4",
    "w8a4": "#17becf",
    "w4a8": "#ff7f0e",
    "w4a4": "#d62728",
}
_GROUP_COLORS = (
    "#1f77b4",
    "#aec7e8",
    "#ff7f0e",
    "#2ca02c",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
)
_COMPONENT_COLORS = {
    "compute": "#1f77b4",
    "onchip_memory": "#2ca02c",
    "offchip_memory": "#d62728",
    "static": "#7f7f7f",
}
_COMPONENT_LABELS = {
    "compute": "compute",
    "onchip_memory": "on-chip memory",
    "offchip_memory": "off-chip memory (DRAM)",
    "static": "static (leakage)",
}
_LEVEL_COLORS = ("#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf")
_MODEL_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_TARGET_COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#393b79",
    "#637939",
)


@dataclass(frozen=True)
class Figure:
    file: str  # PNG file name in the report directory
    title: str
    caption: str


def prec_color(p: str) -> str:
    return _PREC_COLORS.get(p.split("/")[0], "#bcbd22")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "svg.hashsalt": "accelsim-report",
            "figure.dpi": DPI,
            "savefig.dpi": DPI,
            "font.family": "DejaVu Sans",
            "font.size": 9,
            "axes.titlesize": 10,
            "legend.fontsize": 8,
            "path.simplify": True,
        }
    )
    return plt


def _save(fig, out: Path, name: str) -> str:
    """Write `fig` as `name` (model and target names in it sanitised); the file name written."""
    from accelsim.core.fsutil import atomic_open, inside

    plt = _plt()
    path = inside(out, name)
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    return path.name


def _log_axis(ax, which: str = "y") -> None:
    """Log axis labelled 1, 2, 5, 10, ... in plain numbers (no 2x10^0 that overlap)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis = ax.yaxis if which == "y" else ax.xaxis
    (ax.set_yscale if which == "y" else ax.set_xscale)("log")
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _ms(s: float) -> float:
    return s * 1e3


def latency_energy(
    out: Path, model: str, runs: Sequence[Run], targets: Sequence[str], caption: str
) -> Figure:
    """Grouped bars: per target a bar per precision; latency (top) and energy (bottom)."""
    plt = _plt()
    precs = sorted({r.precision for r in runs}, key=precision_key)
    by = {(r.target, r.precision): r for r in runs}
    fig, axes = plt.subplots(2, 1, figsize=(max(8.0, 1.1 * len(targets) + 2), 6.4), sharex=True)
    width = 0.8 / max(1, len(precs))
    for ax, what, unit in ((axes[0], "latency", "ms"), (axes[1], "energy", "mJ")):
        for k, p in enumerate(precs):
            xs, ys = [], []
            for i, t in enumerate(targets):
                r = by.get((t, p))
                if r is None:
                    continue
                xs.append(i - 0.4 + width * (k + 0.5))
                ys.append(_ms(r.latency_s if what == "latency" else r.energy_j))
            ax.bar(xs, ys, width, label=p, color=prec_color(p), edgecolor="white", linewidth=0.3)
        _log_axis(ax, "y")
        ax.set_ylabel(f"{what} ({unit}, log)")
        ax.grid(axis="y", which="major", alpha=0.3)
    axes[1].set_xticks(range(len(targets)))
    axes[1].set_xticklabels(targets, rotation=30, ha="right")
    axes[0].legend(
        ncol=len(precs), loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False, title=None
    )
    axes[0].set_title(
        f"{model}: latency and energy per inference, per target and precision", pad=22
    )
    fig.tight_layout()
    name = f"latency_energy_{model}.png"
    name = _save(fig, out, name)
    return Figure(name, f"{model}: latency and energy by target and precision", caption)


def layer_groups(
    out: Path, model: str, runs: Sequence[Run], targets: Sequence[str], precision: str, caption: str
) -> Figure:
    """100 % stacked bars: share of latency per layer group, per target (total on top)."""
    plt = _plt()
    by = {r.target: r for r in runs if r.precision == precision}
    ts = [t for t in targets if t in by]
    shares = {g: [] for g in GROUP_ORDER}
    totals = []
    for t in ts:
        r = by[t]
        lat = r.latency_s or 1.0
        acc = {g: 0.0 for g in GROUP_ORDER}
        for c, g in zip(r.layers, r.groups):
            acc[g] += c.latency_s
        for g in GROUP_ORDER:
            shares[g].append(100.0 * acc[g] / lat)
        totals.append(r.latency_s)
    present = [g for g in GROUP_ORDER if any(v > 0 for v in shares[g])]
    fig, ax = plt.subplots(figsize=(max(8.0, 0.9 * len(ts) + 3.5), 4.6))
    bottom = [0.0] * len(ts)
    for g in present:
        color = _GROUP_COLORS[GROUP_ORDER.index(g)]
        ax.bar(
            range(len(ts)),
            shares[g],
            0.7,
            bottom=bottom,
            label=g,
            color=color,
            edgecolor="white",
            linewidth=0.3,
        )
        bottom = [b + v for b, v in zip(bottom, shares[g])]
    for i, tot in enumerate(totals):
        ax.text(i, 101, f"{_ms(tot):.3g} ms", ha="center", va="bottom", fontsize=8)
    ax.set_ylim(0, 110)
    ax.set_ylabel(f"share of latency at {precision} (%)")
    ax.set_xticks(range(len(ts)))
    ax.set_xticklabels(ts, rotation=30, ha="right")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.set_title(
        f"{model}: where the time goes at {precision}, by layer group (total latency on top)"
    )
    fig.tight_layout()
    name = f"layers_{model}.png"
    name = _save(fig, out, name)
    return Figure(name, f"{model}: latency by layer group at {precision}", caption)


def energy_split(
    out: Path, model: str, runs: Sequence[Run], targets: Sequence[str], caption: str
) -> Figure:
    """Small multiples, one panel per target: per precision, energy stacked by component."""
    plt = _plt()
    ts = [t for t in targets if any(r.target == t for r in runs)]
    ncols = min(5, len(ts))
    nrows = math.ceil(len(ts) / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(2.6 * ncols + 1.6, 2.7 * nrows + 0.6), squeeze=False
    )
    for idx, t in enumerate(ts):
        ax = axes[idx // ncols][idx % ncols]
        rs = sorted((r for r in runs if r.target == t), key=lambda r: precision_key(r.precision))
        bottom = [0.0] * len(rs)
        for comp in ENERGY_COMPONENTS:
            vals = [_ms(r.energy_split().get(comp, 0.0)) for r in rs]
            ax.bar(
                range(len(rs)),
                vals,
                0.7,
                bottom=bottom,
                color=_COMPONENT_COLORS[comp],
                label=_COMPONENT_LABELS[comp],
                edgecolor="white",
                linewidth=0.3,
            )
            bottom = [b + v for b, v in zip(bottom, vals)]
        ax.set_xticks(range(len(rs)))
        ax.set_xticklabels([r.precision for r in rs], rotation=45, ha="right", fontsize=7)
        ax.set_title(t, fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
        if idx % ncols == 0:
            ax.set_ylabel("energy (mJ)")
        ax.grid(axis="y", alpha=0.3)
    for idx in range(len(ts), nrows * ncols):
        axes[idx // ncols][idx % ncols].axis("off")
    handles, labels = axes[0][0].get_legend_handles_labels()
    top = 1.0 - 0.5 / fig.get_figheight()
    fig.suptitle(f"{model}: energy per inference by component", y=0.995, fontsize=10)
    fig.legend(
        handles,
        labels,
        loc="upper center",
        ncol=4,
        frameon=False,
        bbox_to_anchor=(0.5, 1.0 - 0.22 / fig.get_figheight()),
    )
    fig.tight_layout(rect=(0, 0, 1, top))
    name = f"energy_{model}.png"
    name = _save(fig, out, name)
    return Figure(name, f"{model}: energy split by component", caption)


def roofline_specs(target: Target, precisions: Sequence[str]):
    """(peak MACs/cycle per precision, [(level, bytes/cycle)]) from the target description;
    for an accelerator the levels are its DRAM interface and load DMA engine."""
    from accelsim.core.precision import parse_precision

    if target.kind == "accelerator":
        from accelsim.accel import load_config

        cfg = load_config(target)
        peaks = {
            p: cfg.peak_macs_per_cycle(p.split("/")[0])
            for p in precisions
            if cfg.supports(p.split("/")[0])
        }
        levels = [("DRAM", cfg.dram_bytes_per_cycle), ("DMA load engine", cfg.dma_bytes_per_cycle)]
        return peaks, levels
    from accelsim.sim.analytic import memory_levels, peak_macs_per_cycle

    peaks = {p: peak_macs_per_cycle(target, parse_precision(p)) for p in precisions}
    return peaks, [(lv.name, lv.bytes_per_cycle) for lv in memory_levels(target)]


def intensity(run: Run, c) -> float:
    """MACs per byte: against all bytes moved for CPU / DSP targets (each tensor counted at the
    memory level that serves it), against DRAM bytes for the accelerator."""
    if run.target_kind == "accelerator":
        b = float(c.bytes_moved.get("dram", 0.0))
    else:
        b = float(sum(c.bytes_moved.values()))
    return c.macs / b if b else float("nan")


def roofline(
    out: Path,
    target: Target,
    runs: Sequence[Run],
    precision: str,
    precisions: Sequence[str],
    caption: str,
) -> Figure:
    plt = _plt()
    peaks, levels = roofline_specs(target, precisions)
    fig, ax = plt.subplots(figsize=(8.6, 5.2))
    xs_all, ys_all = [], []
    models = sorted({r.model for r in runs})
    for mi, m in enumerate(models):
        rs = [r for r in runs if r.model == m and r.precision == precision]
        xs, ys = [], []
        for r in rs:
            for c in r.layers:
                if c.macs and c.cycles:
                    x = intensity(r, c)
                    if math.isfinite(x) and x > 0:
                        xs.append(x)
                        ys.append(c.macs / c.cycles)
        ax.scatter(
            xs,
            ys,
            s=16,
            marker=_MODEL_MARKERS[mi % len(_MODEL_MARKERS)],
            label=f"{m} layers ({precision})",
            alpha=0.75,
            linewidths=0.3,
            edgecolors="black",
            zorder=3,
        )
        xs_all += xs
        ys_all += ys
    top = max(list(peaks.values()) + ys_all + [1.0])
    xmin = min(xs_all + [0.1]) / 3
    xmax = max(xs_all + [100.0]) * 3
    ymin = min(ys_all + [top]) / 4
    same: dict[float, list[str]] = {}  # precisions with the same peak share one line
    for p in sorted(peaks, key=precision_key):
        same.setdefault(round(peaks[p], 9), []).append(p)
    for value, ps in sorted(same.items(), reverse=True):
        ax.axhline(
            value,
            color=prec_color(ps[0]),
            linestyle="--",
            linewidth=1.1,
            label=f"peak {', '.join(ps)}: {value:.4g} MAC/cycle",
        )
    styles = (":", "-.", (0, (5, 2)), "-", (0, (1, 1)))
    for li, (name, bpc) in enumerate(levels):
        xx = [xmin, xmax]
        ax.plot(
            xx,
            [bpc * x for x in xx],
            color=_LEVEL_COLORS[li % len(_LEVEL_COLORS)],
            linewidth=1.0,
            linestyle=styles[li % len(styles)],
            label=f"{name}: {bpc:.3g} B/cycle (x AI)",
        )
    _log_axis(ax, "x")
    _log_axis(ax, "y")
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(ymin, top * 3)
    xl = (
        "arithmetic intensity (MACs per DRAM byte)"
        if target.kind == "accelerator"
        else "arithmetic intensity (MACs per byte moved)"
    )
    ax.set_xlabel(xl)
    ax.set_ylabel("achieved MACs per cycle")
    ax.grid(which="major", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=7)
    ax.set_title(f"roofline: {target.name} ({target.kind})")
    fig.tight_layout()
    name = f"roofline_{target.name}.png"
    name = _save(fig, out, name)
    return Figure(name, f"roofline of {target.name}", caption)


def pareto_front(cost: Sequence[float], score: Sequence[float]) -> list[int]:
    """Indices of the points no other point beats in both (lower cost, higher score), by
    cost ascending."""
    order = sorted(range(len(cost)), key=lambda i: (cost[i], -score[i]))
    front: list[int] = []
    for i in order:
        if not front or score[i] > score[front[-1]]:
            front.append(i)
    return front


def accuracy_cost(out: Path, points, targets: Sequence[str], caption: str) -> Figure:
    """Per model: accuracy against simulated latency (left) and energy (right), one colour
    per target, one marker per method, and each target's Pareto front as a step line."""
    plt = _plt()
    models = sorted({p.row["model"] for p in points})
    markers = {"float": "s", "ptq": "o", "qat": "^", "ptq-mixed": "D", "tune": "*"}
    fig, axes = plt.subplots(len(models), 2, figsize=(11.5, 3.8 * len(models) + 0.4), squeeze=False)
    tcolor = {t: _TARGET_COLORS[i % len(_TARGET_COLORS)] for i, t in enumerate(targets)}
    for mi, m in enumerate(models):
        pts = [p for p in points if p.row["model"] == m]
        for ci, what in enumerate(("latency", "energy")):
            ax = axes[mi][ci]
            for t in targets:
                for meth, mk in markers.items():
                    sel = [p for p in pts if p.target == t and p.row["method"] == meth]
                    if not sel:
                        continue
                    xs = [
                        (p.run.latency_s * 1e6 if what == "latency" else p.run.energy_j * 1e6)
                        for p in sel
                    ]
                    ax.scatter(
                        xs,
                        [100 * p.row["top1"] for p in sel],
                        marker=mk,
                        s=60 if meth == "tune" else 22,
                        color=tcolor[t],
                        alpha=0.8,
                        linewidths=0.3,
                        edgecolors="black",
                    )
                mine = [p for p in pts if p.target == t]
                cost = [
                    p.run.latency_s * 1e6 if what == "latency" else p.run.energy_j * 1e6
                    for p in mine
                ]
                front = pareto_front(cost, [p.row["top1"] for p in mine])
                if len(front) > 1:
                    ax.step(
                        [cost[i] for i in front],
                        [100 * mine[i].row["top1"] for i in front],
                        where="post",
                        color=tcolor[t],
                        linewidth=0.8,
                        alpha=0.6,
                    )
            _log_axis(ax, "x")
            ax.set_xlabel("latency (us, log)" if what == "latency" else "energy (uJ, log)")
            metric = pts[0].row.get("metric", "top1") if pts else "top1"
            ax.set_ylabel(f"{metric.replace('_', ' ')} (%)")
            ax.set_title(f"{m}: accuracy vs simulated {what}")
            ax.grid(alpha=0.3)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker="o", linestyle="", color=tcolor[t], label=t) for t in targets]
    handles += [
        Line2D([], [], marker=mk, linestyle="", color="white", markeredgecolor="black", label=meth)
        for meth, mk in markers.items()
    ]
    axes[0][1].legend(
        handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, fontsize=8
    )
    fig.tight_layout()
    name = "accuracy_cost.png"
    name = _save(fig, out, name)
    return Figure(name, "accuracy vs simulated latency and energy", caption)


__all__ = [
    "Figure",
    "DPI",
    "PRECISION_ORDER",
    "latency_energy",
    "layer_groups",
    "energy_split",
    "roofline",
    "accuracy_cost",
    "roofline_specs",
    "intensity",
]
