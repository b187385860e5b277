"""The project's import graph, read from the source with `ast`: no circles, and the package under the views.

Every import counts, also those inside functions (deferred for start-up time) and under TYPE_CHECKING:
a circle that only a deferred import keeps from failing is still a circle for whoever reads the code.
"""
from __future__ import annotations

import ast
import graphlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOP = ("app.py", "pages", "kmnist", "kmnist_live", "benchmarks")  # the project's own code; tests aside


def modules() -> dict[str, Path]:
    """Dotted module name → source file, for every project module."""
    found = {}
    for top in TOP:
        path = ROOT / top
        for f in [path] if path.is_file() else sorted(path.rglob("*.py")):
            parts = f.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return found


def imported(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules that module `name` imports (`from pkg import mod` counts as pkg.mod)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert not node.level, f"{path.name}: the project imports by absolute names"
            base = node.module
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # import a.b.c: the deepest project module named
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imported(name, path, set(found)) for name, path in found.items()}


def external(path: Path) -> set[str]:
    """Top-level names of everything a file imports."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_graph_sees_the_project():
    g = graph()
    assert {"app", "pages.common", "kmnist.cli", "kmnist_live", "benchmarks.load"} <= set(g), sorted(g)
    assert "kmnist.train" in g["kmnist.cli"] or "kmnist.jobs" in g["kmnist.cli"], "deferred imports are read too"


def test_no_import_circles():
    try:
        order = list(graphlib.TopologicalSorter(graph()).static_order())
    except graphlib.CycleError as e:
        raise AssertionError("import circle: " + " → ".join(e.args[1])) from None
    assert order


def test_the_package_stays_under_the_views():
    """kmnist/ is the tested logic: no streamlit, and nothing from the app, its pages or the live component."""
    for name, path in modules().items():
        if name == "kmnist" or name.startswith("kmnist."):
            wrong = external(path) & {"streamlit", "app", "pages", "kmnist_live"}
            assert not wrong, f"{path.relative_to(ROOT)} imports {', '.join(sorted(wrong))}"
