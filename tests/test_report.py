"""`accelsim report`: a small report (one model at a reduced input size, two targets, three
precisions, plus the accuracy figure) is generated twice into tmp (cold, then from the cache);
its files, row counts, baselines, CSV/JSON agreement and byte-for-byte determinism are checked,
and `index.html` is opened in headless Chromium to check that every image loads and every table
has its rows."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

from accelsim.cli import main
from accelsim.reporting import ReportSpec, generate_report
from accelsim.reporting.tables import LAYER_COLUMNS, SUMMARY_COLUMNS

REPO = Path(__file__).resolve().parents[1]
MODEL, SIZE = "mobilenet_v1", 32
TARGETS = ("cortex-a76", "hvx-v68")
PRECISIONS = ("fp32", "w8a8", "w4a4")
KERNEL_EFFICIENCY = REPO / "reports" / "kernel_efficiency.json"
TIMESTAMP = re.compile(r"Generated \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC")


def _spec(out: Path, cache: Path) -> ReportSpec:
    return ReportSpec(
        models=(MODEL,),
        targets=TARGETS,
        precisions=PRECISIONS,
        input_size=SIZE,
        out=str(out),
        accuracy=str(REPO / "reports" / "accuracy.json"),
        kernel_efficiency=str(KERNEL_EFFICIENCY),
        cache_dir=str(cache),
    )


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    # the same inputs (output path included): the first run (cold) is moved aside, the
    # second (from the cache) written to the same path
    root = tmp_path_factory.mktemp("report")
    cold = generate_report(_spec(root / "rep", root / "cache"))
    (root / "rep").rename(root / "a")
    warm = generate_report(_spec(root / "rep", root / "cache"))
    return root / "a", root / "rep", cold, warm


def _csv(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_files_exist(reports):
    a, _, cold, _ = reports
    for name in (
        "index.html",
        "report.md",
        "summary.csv",
        "summary.json",
        "layers.csv",
        "layers.json",
        "accuracy_cost.csv",
        f"latency_energy_{MODEL}.png",
        f"layers_{MODEL}.png",
        f"energy_{MODEL}.png",
        "accuracy_cost.png",
        f"layers_{MODEL}.html",
        f"layers_{MODEL}.md",
        *(f"roofline_{t}.png" for t in TARGETS),
    ):
        assert (a / name).is_file() and (a / name).stat().st_size > 0, name
    assert {p.name for p in cold.files} <= {p.name for p in a.iterdir()}


def test_summary_rows_and_baseline(reports):
    a, _, _, _ = reports
    rows = _csv(a / "summary.csv")
    assert len(rows) == 1 * len(TARGETS) * len(PRECISIONS)
    assert {(r["model"], r["target"], r["precision"]) for r in rows} == {
        (MODEL, t, p) for t in TARGETS for p in PRECISIONS
    }
    for r in rows:
        assert r["input_shape"] == f"1x3x{SIZE}x{SIZE}"
        assert r["fidelity"] == "analytic"
        assert "random" in r["calibration_data"]
        assert float(r["latency_s"]) > 0 and float(r["energy_j"]) > 0
        if r["precision"] == "fp32":
            assert float(r["speedup_vs_fp32"]) == 1.0
            assert float(r["energy_ratio_vs_fp32"]) == 1.0
    size = {(r["target"], r["precision"]): float(r["model_bytes"]) for r in rows}
    # 32-bit float weights are ~4x the int8 ones and ~8x the int4 ones (biases stay int32)
    assert 3.5 < size[("cortex-a76", "fp32")] / size[("cortex-a76", "w8a8")] < 4.1
    assert size[("cortex-a76", "w4a4")] < size[("cortex-a76", "w8a8")]


def _same(csv_value: str, json_value) -> bool:
    if json_value is None:
        return csv_value == ""
    if isinstance(json_value, dict):
        return json.loads(csv_value) == json_value
    if isinstance(json_value, bool):
        return csv_value == str(json_value)
    if isinstance(json_value, int):
        return int(csv_value) == json_value
    if isinstance(json_value, float):
        return float(csv_value) == json_value
    return csv_value == json_value


@pytest.mark.parametrize("stem,columns", [("summary", SUMMARY_COLUMNS), ("layers", LAYER_COLUMNS)])
def test_json_matches_csv(reports, stem, columns):
    a, _, _, _ = reports
    rows = _csv(a / f"{stem}.csv")
    data = json.loads((a / f"{stem}.json").read_text())
    assert len(rows) == len(data) > 0
    for r, d in zip(rows, data):
        assert list(d) == list(columns) == list(r)
        for c in columns:
            assert _same(r[c], d[c]), (stem, c, r[c], d[c])


def test_layers_add_up_to_summary(reports):
    a, _, _, _ = reports
    summary = json.loads((a / "summary.json").read_text())
    layers = json.loads((a / "layers.json").read_text())
    for s in summary:
        mine = [
            x
            for x in layers
            if (x["model"], x["target"], x["precision"])
            == (s["model"], s["target"], s["precision"])
        ]
        assert mine
        assert sum(x["latency_s"] for x in mine) == pytest.approx(s["latency_s"], rel=1e-12)
        assert sum(x["energy_j"] for x in mine) == pytest.approx(s["energy_j"], rel=1e-12)
        assert sum(x["macs"] for x in mine) == s["macs"]


def test_deterministic_and_cached(reports):
    a, b, cold, warm = reports
    assert cold.cached_runs == 0 and warm.cached_runs == warm.runs == cold.runs
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    stamped = 0
    for name in names:
        x, y = (a / name).read_bytes(), (b / name).read_bytes()
        if name.endswith((".html", ".md")):
            lx, ly = x.decode().splitlines(), y.decode().splitlines()
            keep_x = [line for line in lx if not TIMESTAMP.search(line)]
            keep_y = [line for line in ly if not TIMESTAMP.search(line)]
            assert len(lx) - len(keep_x) == 1, f"{name}: expected one timestamp line"
            stamped += 1
            assert keep_x == keep_y, name
        else:  # CSV, JSON and PNG: byte-identical
            assert x == y, name
    assert stamped >= 4


def test_captions_name_fidelity_and_calibration(reports):
    a, _, _, _ = reports
    text = (a / "index.html").read_text()
    for cap in re.findall(r"<figcaption>(.*?)</figcaption>", text, re.S):
        assert "Fidelity: analytic" in cap and "Calibration data: random" in cap, cap[:80]
    for cap in re.findall(r"<caption>(.*?)</caption>", text, re.S):
        if "Models (" in cap or "Targets:" in cap:
            continue
        assert "Fidelity:" in cap and "Calibration data:" in cap, cap[:80]
    md = (a / "report.md").read_text()
    assert "![" in md and f"(latency_energy_{MODEL}.png)" in md


def test_assumptions_section_lists_each_targets_assumed_fields(reports):
    from accelsim.core.target import load_target

    a, _, _, _ = reports
    html_text = (a / "index.html").read_text()
    md = (a / "report.md").read_text()
    assert '<h2 id="assumptions">Assumptions</h2>' in html_text
    assert "## Assumptions" in md
    section = md.split("## Assumptions", 1)[1].split("\n## ", 1)[0]
    for name in TARGETS:
        t = load_target(name)
        assert t.assumptions, name
        for asm in t.assumptions:
            # one row per assumed field: target | field | value | reason
            row = next(
                (line for line in section.splitlines() if f"| {name} | {asm.path} |" in line), None
            )
            assert row is not None, (name, asm.path)
            assert asm.reason.replace("|", "\\|")[:40] in row
    # the HTML carries the same rows
    assert html_text.count("<td>hvx-v68</td><td>timing.clock_hz</td>") == 1


# -- headless Chromium --------------------------------------------------------------------


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


_CHECK_SCRIPT = """<script>
window.addEventListener('load', function () {
  var imgs = document.querySelectorAll('img');
  for (var i = 0; i < imgs.length; i++) {
    imgs[i].setAttribute('data-loaded',
      (imgs[i].complete && imgs[i].naturalWidth > 0) ? 'yes' : 'no');
  }
  document.body.setAttribute('data-checked', String(imgs.length));
});
</script>
"""


class _Dom(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.imgs: list[dict] = []
        self.tables: list[int] = []  # body rows per table
        self.checked = None
        self._in_tbody = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.checked = a.get("data-checked")
        elif tag == "img":
            self.imgs.append(a)
        elif tag == "table":
            self.tables.append(0)
        elif tag == "tbody":
            self._in_tbody = True
        elif tag == "tr" and self._in_tbody:
            self.tables[-1] += 1

    def handle_endtag(self, tag):
        if tag == "tbody":
            self._in_tbody = False


def _dump_dom(chromium: str, page: Path) -> str:
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--no-first-run",
                "--disable-extensions",
                f"--user-data-dir={profile}",
                "--virtual-time-budget=10000",
                "--dump-dom",
                page.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_index_html_in_chromium(reports):
    chromium = _chromium()
    if chromium is None:
        pytest.skip("chromium is not installed (scripts/install-system-deps.sh installs it)")
    a, _, _, _ = reports
    page = a / "_check_index.html"
    page.write_text((a / "index.html").read_text().replace("</body>", _CHECK_SCRIPT + "</body>"))
    try:
        dom = _Dom()
        dom.feed(_dump_dom(chromium, page))
    finally:
        page.unlink()
    pngs = sorted(p.name for p in a.glob("*.png"))
    assert dom.checked == str(len(pngs)), "the check script did not run or images are missing"
    assert sorted(i["src"] for i in dom.imgs) == pngs
    broken = [i["src"] for i in dom.imgs if i.get("data-loaded") != "yes"]
    assert not broken, f"images that did not load: {broken}"
    assert dom.tables and all(n > 0 for n in dom.tables), dom.tables
    # setup (models, targets), the headline table (targets x precisions) and the full
    # summary (one row per target and precision), one layer table per target at w8a8, the
    # kernel-efficiency tables (the benchmark's rows of these targets), the accuracy table,
    # the assumptions table (one row per assumed field of each target)
    from accelsim.core.target import load_target

    ke = json.loads(KERNEL_EFFICIENCY.read_text())
    ke_rows = [
        sum(r["target"] in TARGETS for r in ke["breakdown"]["rows"]),
        sum(r["target"] in TARGETS for r in ke.get("four_bit", {}).get("rows", [])),
        sum(r["target"] in TARGETS for r in ke["speedup"]["rows"]),
        sum(r["dsp"] in TARGETS and r["cpu"] in TARGETS for r in ke["speedup"]["hvx_vs_cpu"]),
        len(ke.get("host", {}).get("models", [])),  # measured: shown whatever the targets
    ]
    assert ke_rows[0] > 0, "the committed kernel-efficiency results cover neither target"
    ke_tables = [n for n in ke_rows if n]
    assert len(dom.tables) == 2 + 2 + len(TARGETS) + len(ke_tables) + 1 + 1
    first = 2 + 2 + len(TARGETS)
    assert dom.tables[first : first + len(ke_tables)] == ke_tables
    assert dom.tables[-1] == sum(len(load_target(t).assumptions) for t in TARGETS)
    assert dom.tables[1] == len(TARGETS)
    assert dom.tables[2] == len(TARGETS)
    assert dom.tables[3] == len(TARGETS) * len(PRECISIONS)


# -- the command line -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--model", "no_such_net"], "no_such_net"),
        (["--target", "no-such-chip"], "no-such-chip"),
        (["--target", "hvx-v68", "--precision", "fp16"], "fp16"),
        (["--precision", "w3a8"], "w3a8"),
    ],
)
def test_cli_bad_input_is_one_line_before_work(tmp_path, capsys, args, needle):
    out = tmp_path / "r"
    rc = main(["report", "--out", str(out), *args])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and needle in err, err
    assert not out.exists()


@pytest.mark.parametrize(
    "content,needle",
    [
        ("[]", "'breakdown' section"),
        ('{"breakdown": {"rows": [{"target": "cortex-a55"}]}}', "breakdown.rows[0].precision"),
        (
            '{"breakdown": {"rows": []}, "speedup": {"rows": [], "hvx_vs_cpu": [{"dsp": "a", '
            '"cpu": "b", "model": "m", "cpu_fp32_s": "1 ms", "dsp_w8a8_s": 1, "speedup": 1}]}}',
            "speedup.hvx_vs_cpu[0].cpu_fp32_s",
        ),
        ("{", "not valid JSON"),
        ('{"breakdown": {"rows": []}, "speedup": []}', "speedup: expected a mapping"),
        (
            '{"breakdown": {"rows": []}, "host": {"models": [{"model": "m", "ort_int8_model": '
            '"int8_u8s8", "ours": {"fp32": {"pass_s": 1}, "w8a8": {"pass_s": "2 ms"}}}]}}',
            "host.models[0].ours.w8a8.pass_s",
        ),
    ],
)
def test_cli_bad_kernel_efficiency_file_is_one_line_before_work(tmp_path, capsys, content, needle):
    bad = tmp_path / "ke.json"
    bad.write_text(content)
    out = tmp_path / "r"
    rc = main(["report", "--out", str(out), "--kernel-efficiency", str(bad)])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and needle in err and str(bad) in err, err
    assert not out.exists()


def test_cli_small_report(tmp_path):
    env = dict(os.environ, ACCELSIM_CACHE=str(tmp_path / "cache"))
    out = tmp_path / "r"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "accelsim",
            "report",
            "--model",
            "digits_cnn",
            "--input-size",
            "16",
            "--target",
            "cortex-a55",
            "--precision",
            "fp32,w8a8",
            "--accuracy",
            "",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "wall time" in proc.stdout
    assert len(_csv(out / "summary.csv")) == 2
    assert not (out / "accuracy_cost.png").exists()


def test_host_measured_table_marks_goals_not_met():
    from accelsim.reporting import document as D
    from accelsim.reporting.build import _host_measured

    ratios = {
        "w8a8_speedup_over_fp32": 1.6,
        "w8a8_vs_ort_int8": 0.75,
        "qdq_speedup_over_fp32": 2.52,
        "qdq_vs_ort_int8": 1.17,
        "fp32_vs_ort_fp32": 1.0,
    }
    row = {
        "model": "mobilenet_v2",
        "ours": {"fp32": {"pass_s": 7.6e-3}, "w8a8": {"pass_s": 4.7e-3}, "q": {"pass_s": 3e-3}},
        "ort_s": {"fp32": 7.6e-3, "int8": 3.5e-3},
        "ort_int8_model": "q",
        "ratios": ratios,
        "met": {k: k not in ("w8a8_speedup_over_fp32", "w8a8_vs_ort_int8") for k in ratios},
    }
    (table,) = _host_measured({"models": [row], "machine": "x86_64", "features": ["avx512vnni"]})
    assert isinstance(table, D.Table)
    (cells,) = table.rows
    assert cells[:4] == ("mobilenet_v2", "7.60", "4.70", "3.00")
    assert cells[6] == "1.60x (goal not met)" and cells[8] == "2.52x" and cells[9] == "1.17x"
    assert "avx512vnni" in table.caption and "Measured" in table.caption
    assert _host_measured(None) == [] and _host_measured({"models": []}) == []
