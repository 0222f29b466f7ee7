"""Mixed precision from a small YAML file: layer-name patterns -> precision.

```yaml
# first and last layer at 8 bit, the rest at 4 (Krishnamoorthi 2018, §3.5)
default: w4a8          # optional; otherwise the command line's --precision
layers:
  conv1: w8a8          # exact node name or a glob pattern (fnmatch)
  "fc": w8a8
  "layer4.*": w8a8/per-tensor
```
Patterns are applied in file order; a later match wins. A pattern that matches no layer is an
error (it is almost always a typo), and the message suggests the closest names.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from accelsim.core.errors import InputError
from accelsim.core.fsutil import atomic_write_text, read_yaml
from accelsim.core.precision import Precision, parse_precision
from accelsim.model.graph import Graph


@dataclass(frozen=True)
class MixedPrecision:
    default: Precision | None
    rules: tuple[tuple[str, Precision], ...]
    source: str = "<mixed>"

    def resolve(self, graph: Graph, default: Precision) -> dict[str, Precision]:
        """Per-node precisions; raises if a pattern matches no node of `graph`."""
        base = self.default or default
        names = [n.name for n in graph.nodes]
        out = {n: base for n in names}
        for pattern, prec in self.rules:
            hits = [n for n in names if n == pattern or fnmatch.fnmatchcase(n, pattern)]
            if not hits:
                close = difflib.get_close_matches(pattern, names, n=3)
                hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
                raise InputError(
                    f"{self.source}: layers: pattern '{pattern}' matches no layer "
                    f"of model '{graph.name}'{hint}"
                )
            for n in hits:
                out[n] = prec
        return out


def parse_mixed(data: object, source: str) -> MixedPrecision:
    if not isinstance(data, Mapping):
        raise InputError(
            f"{source}: expected a mapping with 'layers' (and optional "
            f"'default'), found {type(data).__name__}"
        )
    unknown = set(data) - {"default", "layers"}
    if unknown:
        raise InputError(
            f"{source}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
            f"expected 'default' and 'layers'"
        )
    layers = data.get("layers")
    if not isinstance(layers, Mapping) or not layers:
        raise InputError(
            f"{source}: 'layers' must map layer-name patterns to precisions, found {layers!r}"
        )
    default = parse_precision(data["default"], f"{source}: default") if "default" in data else None
    rules = tuple(
        (str(k), parse_precision(str(v), f"{source}: layers: {k}")) for k, v in layers.items()
    )
    return MixedPrecision(default, rules, source)


def load_mixed(path: str | Path) -> MixedPrecision:
    return parse_mixed(read_yaml(path, "mixed-precision file", InputError), str(path))


def write_mixed(
    path: str | Path, default: Precision, per_layer: Mapping[str, Precision], comment: str = ""
) -> None:
    """Write the layers that differ from `default` as a mixed-precision YAML."""
    lines = [f"# {line}" for line in comment.splitlines()] if comment else []
    lines.append(f"default: {default}")
    lines.append("layers:")
    diff = {k: v for k, v in per_layer.items() if v != default}
    if not diff:
        raise InputError("mixed precision: every layer has the default precision; nothing to write")
    for name, prec in diff.items():
        lines.append(f"  {yaml.safe_dump(name).strip().removesuffix('...').strip()}: {prec}")
    atomic_write_text(path, "\n".join(lines) + "\n")
