"""The page a person explores a sweep with: one self-contained HTML file (plotly.js inline, no
network), a scatter of every design point and each model's Pareto front, hover text with each
design's parameters, and selectors for the x and y axes (any metric column).

The table travels once, as JSON inside the page; the plot is drawn from it in the browser (SVG
markers up to `SVG_POINTS` points, WebGL beyond), and redrawn from the same data when an axis
changes. After drawing, `#status` carries the number of points and front points drawn
(`data-points`, `data-front`), which the tests read back from headless Chromium.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

SVG_POINTS = 5000  # above this many points per model, WebGL markers (SVG would be too slow)

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 1em; }}
label {{ margin-right: 1.5em; }}
#status {{ color: #555; margin-top: 0.5em; }}
</style>
<script>{plotly}</script>
</head><body>
<h2>{title}</h2>
<p>{subtitle}</p>
<div>
<label>x axis <select id="x"></select></label>
<label>y axis <select id="y"></select></label>
<label><input type="checkbox" id="log" checked> log scales</label>
</div>
<div id="plot" style="width: 100%; height: 640px;"></div>
<div id="status"></div>
<script type="application/json" id="data">{data}</script>
<script>
const D = JSON.parse(document.getElementById("data").textContent);
const n = D.columns[D.axes[0]].length;
const hover = new Array(n);
for (let i = 0; i < n; i++) {{
  hover[i] = D.params.map(p => p + " = " + D.columns[p][i]).join("<br>");
}}
for (const id of ["x", "y"]) {{
  const sel = document.getElementById(id);
  for (const a of D.axes) sel.add(new Option(a, a));
  sel.value = id === "x" ? D.x : D.y;
  sel.onchange = draw;
}}
document.getElementById("log").onchange = draw;

function draw() {{
  const xa = document.getElementById("x").value, ya = document.getElementById("y").value;
  const log = document.getElementById("log").checked;
  const traces = [];
  D.models.forEach((m, k) => {{
    const idx = [], front = [];
    for (let i = 0; i < n; i++) if (D.columns.model[i] === m) {{
      idx.push(i);
      if (D.front[i]) front.push(i);
    }}
    front.sort((a, b) => D.columns[xa][a] - D.columns[xa][b]);
    const kind = idx.length > D.svg_points ? "scattergl" : "scatter";
    const color = D.colors[k % D.colors.length];
    const pick = (ids, col) => ids.map(i => D.columns[col][i]);
    traces.push({{
      type: kind, mode: "markers", name: m + ": all points", x: pick(idx, xa), y: pick(idx, ya),
      text: idx.map(i => hover[i]), hovertemplate: "%{{text}}<extra></extra>",
      marker: {{size: idx.length > 2000 ? 3 : 6, opacity: 0.45, color: color}},
    }});
    traces.push({{
      type: kind, mode: "lines+markers", name: m + ": Pareto front (" + D.objectives.join(", ") + ")",
      x: pick(front, xa), y: pick(front, ya), text: front.map(i => hover[i]),
      hovertemplate: "%{{text}}<extra></extra>", marker: {{size: 8, color: color}},
      line: {{color: color}},
    }});
  }});
  const layout = {{
    xaxis: {{title: {{text: xa}}, type: log ? "log" : "linear"}},
    yaxis: {{title: {{text: ya}}, type: log ? "log" : "linear"}},
    hovermode: "closest", margin: {{t: 30}},
  }};
  return Plotly.react("plot", traces, layout).then(gd => {{
    let pts = 0, fr = 0;
    gd.data.forEach((t, i) => {{ if (i % 2 === 0) pts += t.x.length; else fr += t.x.length; }});
    const s = document.getElementById("status");
    s.dataset.points = pts;
    s.dataset.front = fr;
    s.textContent = pts + " design points drawn, " + fr + " on the Pareto front";
  }});
}}
draw();
</script>
</body></html>
"""

# plotly's default qualitative colours
_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def explore_html(
    table: Any,
    front: Sequence[bool],
    objectives: Sequence[str],
    axes: Sequence[str],
    params: Sequence[str],
    title: str,
    subtitle: str = "",
) -> str:
    """The page for a sweep table (pandas): `axes` the selectable metric columns (the first
    two objectives preselected), `params` the columns the hover text lists."""
    from plotly.offline import get_plotlyjs

    cols = {c: [_jsonable(v) for v in table[c].tolist()] for c in (*axes, *params, "model")}
    x, y = (list(objectives) + [a for a in axes if a not in objectives])[:2]
    data = {
        "columns": cols,
        "front": [bool(f) for f in front],
        "models": list(dict.fromkeys(table["model"].tolist())),
        "axes": list(axes),
        "params": list(params),
        "objectives": list(objectives),
        "x": x,
        "y": y,
        "svg_points": SVG_POINTS,
        "colors": list(_COLORS),
    }
    text = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    return _PAGE.format(
        title=_escape(title), subtitle=_escape(subtitle), plotly=get_plotlyjs(), data=text
    )


def _escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def drawn_in_browser(path: str, timeout_s: float = 180.0) -> dict[str, int]:
    """Open the page in headless Chromium and read back what it drew: `points` and `front`
    (from the plot's own traces), `svg_markers` (marker elements in the DOM; 0 with WebGL)."""
    import re
    import shutil
    import subprocess
    from pathlib import Path

    exe = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("chrome")
    if exe is None:
        raise FileNotFoundError("no chromium on PATH")
    dom = subprocess.run(
        [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--dump-dom",
            f"--virtual-time-budget={int(timeout_s * 1000)}",
            Path(path).resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=timeout_s + 60,
    ).stdout
    m = re.search(r'id="status" data-points="(\d+)" data-front="(\d+)"', dom)
    return {
        "points": int(m.group(1)) if m else -1,
        "front": int(m.group(2)) if m else -1,
        "svg_markers": dom.count('class="point"'),
    }
