"""The architecture holds: stages import only earlier stages, and no modules import each other in
a circle (docs/architecture.md). Imports anywhere in a file count, lazy ones inside functions
too; imports under `if TYPE_CHECKING:` do not, since they never run."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "accelsim"

# Pipeline order: a stage may import from itself and from the stages before it.
STAGES = (
    "core",  # errors, files, cache, precision, quantization parameters, fixed point, LayerCost
    "asm",  # the assembly front end (AArch64, Hexagon): parsing, CFG, loops
    "model",  # graph IR, zoo, importers, exporters
    "ref",  # reference executor
    "quant",  # calibration, PTQ, QAT, sensitivity
    "lower",  # TVM lowering
    "kernels",  # compiling, running and verifying kernels
    "sim",  # CPU/DSP cost models
    "accel",  # the configurable accelerator: ISA, code generator, simulator, analytic model
    "backends",  # one table per target kind: compile, verify, simulate, measure
    "dse",  # sweeps, Pareto fronts, mixed precision
    "reporting",  # cost reports (accelsim.report is the API function)
    "api",  # the Python API (accelsim/__init__.py, accelsim/api.py)
    "cli",  # the command line (accelsim/cli.py, accelsim/__main__.py)
)
TOP_LEVEL = {"__init__": "api", "api": "api", "cli": "cli", "__main__": "cli"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _stage(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return TOP_LEVEL["__init__"]
    if len(parts) == 2 and parts[1] in TOP_LEVEL:
        return TOP_LEVEL[parts[1]]
    return parts[1]


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            t = node.test
            name = (
                t.id if isinstance(t, ast.Name) else t.attr if isinstance(t, ast.Attribute) else ""
            )
            if name == "TYPE_CHECKING":
                for stmt in node.body:
                    lines.update(range(stmt.lineno, (stmt.end_lineno or stmt.lineno) + 1))
    return lines


def _imports(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    skip = _type_checking_lines(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "accelsim")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            if base.split(".")[0] != "accelsim":
                continue
            for a in node.names:
                sub = f"{base}.{a.name}"
                out.add(sub if sub in modules else base)
    return {m for m in out if m in modules and m != module}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = _modules()
    return {m: _imports(m, p, modules) for m, p in modules.items()}


def test_every_module_belongs_to_a_stage(graph):
    unknown = sorted(m for m in graph if _stage(m) not in STAGES)
    assert not unknown, f"modules outside the known stages: {unknown}"


def test_no_import_from_a_later_stage(graph):
    order = {s: i for i, s in enumerate(STAGES)}
    back = sorted(
        f"{m} ({_stage(m)}) imports {d} ({_stage(d)})"
        for m, deps in graph.items()
        for d in deps
        if order[_stage(d)] > order[_stage(m)]
    )
    assert not back, "imports that run back up the pipeline:\n" + "\n".join(back)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_modules_import_each_other_in_a_circle(graph):
    cycles = _cycles(graph)
    assert not cycles, "modules that import each other (directly or through others):\n" + "\n".join(
        " <-> ".join(c) for c in cycles
    )


def test_the_checker_finds_back_references_and_circles():
    """The checks can fail: a later-stage import and a two-module circle are found."""
    g = {"accelsim.core.a": {"accelsim.sim.b"}, "accelsim.sim.b": {"accelsim.core.a"}}
    order = {s: i for i, s in enumerate(STAGES)}
    assert any(order[_stage(d)] > order[_stage(m)] for m, ds in g.items() for d in ds)
    assert _cycles(g) == [["accelsim.core.a", "accelsim.sim.b"]]


def test_api_names_survive_importing_every_subpackage():
    """A subpackage named like an API function (once `accelsim/report/`) replaces the function
    on the package as soon as anything imports it, so `accelsim.report(...)` broke only in
    test orders that had imported the report modules first."""
    import importlib

    import accelsim
    from accelsim import api

    for path in sorted(ROOT.rglob("*.py")):
        name = _module_name(path)
        if name.endswith("__main__"):
            continue
        importlib.import_module(name)
    shadowed = [n for n in api.__all__ if getattr(accelsim, n) is not getattr(api, n)]
    assert not shadowed, f"package attributes no longer the API's functions: {shadowed}"
