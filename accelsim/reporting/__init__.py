"""Cost-model reports people can open without running anything: `index.html` (self-contained,
PNG figures beside it), `report.md`, `summary.csv/json` (one row per model x target x
precision) and `layers.csv/json` (every `LayerCost`).

```python
from accelsim.reporting import ReportSpec, generate_report
result = generate_report(ReportSpec(models=("mobilenet_v2",), targets=("cortex-a76",),
                                    precisions=("fp32", "w8a8"), out="out/report"))
print(result.files, result.wall_s)
```

Modules: `spec` (checking the request), `collect` (simulations, cached), `tables` (rows, CSV,
JSON), `plots` (figures), `document` (HTML / Markdown), `build` (putting it together).
"""

from accelsim.reporting.build import ReportResult, command_line, generate_report
from accelsim.reporting.spec import DEFAULT_MODELS, Plan, ReportSpec, make_plan

__all__ = [
    "DEFAULT_MODELS",
    "Plan",
    "ReportResult",
    "ReportSpec",
    "command_line",
    "generate_report",
    "make_plan",
]
