"""Architecture rules: the core imports no Ray/torch/numpy, and imports point inward only."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "fedray"

# What each ring may import from fedray (besides itself, fedray.errors and fedray.importpath,
# the two leaf modules that import nothing else from fedray).
ALLOWED = {
    "core": set(),
    "consensus": {"core", "storage"},
    "aggregation": {"core"},
    "learning": {"core", "aggregation"},
    "storage": {"core"},
    "node": {"core", "consensus", "aggregation", "learning", "storage", "config"},
    "federation": {"core", "aggregation", "learning", "storage", "node", "config"},
    "runtime": {
        "core",
        "consensus",
        "aggregation",
        "learning",
        "storage",
        "node",
        "federation",
        "config",
    },
    # `fedray sweep`: runs on Ray Tune, above the runtime
    "sweep": {"federation", "runtime", "config", "config_files"},
}
NO_RAY = {"core", "consensus", "aggregation", "learning", "storage", "node", "federation"}
FORBIDDEN_IN_CORE = {"ray", "torch", "numpy"}


def test_import_core_pulls_no_heavy_modules() -> None:
    code = (
        "import sys, fedray.core, fedray.core.devchain, fedray.core.transition; "
        "bad = sorted(m for m in ('ray', 'torch', 'numpy') if m in sys.modules); "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"fedray.core imported {out.stdout.strip()}"


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_imports_point_inward() -> None:
    problems = []
    for ring, allowed in ALLOWED.items():
        assert (PACKAGE / ring / "__init__.py").exists(), (
            f"no ring {ring}: nothing would be checked"
        )
        for path in (PACKAGE / ring).rglob("*.py"):
            for name in _imports(path):
                top = name.split(".")[0]
                if ring in NO_RAY and top == "ray":
                    problems.append(f"{path.relative_to(PACKAGE)} imports ray")
                if ring == "core" and top in FORBIDDEN_IN_CORE:
                    problems.append(f"{path.relative_to(PACKAGE)} imports {top}")
                if top == "fedray":
                    parts = name.split(".")
                    target = parts[1] if len(parts) > 1 else ""
                    if target not in (ring, "errors", "importpath", "") and target not in allowed:
                        problems.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert not problems, "\n".join(problems)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """Module -> the fedray modules it imports, counting imports under TYPE_CHECKING and inside
    functions (each is an edge a reader must follow). `from package import name` points at the
    submodule when `name` is one; a package's own __init__ is only an edge when named."""
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in paths.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: resolve against the importing package
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.add(sub if sub in paths else base)
        graph[module] = {t for t in targets if t in paths and t != module}
    return graph


def _find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle as [a, b, ..., a], or [] when the graph is acyclic (iterative DFS)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in sorted(graph):
        if root in state:
            continue
        path = [root]
        stack = [iter(sorted(graph[root]))]
        state[root] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph[nxt])))
    return []


def test_no_import_cycle() -> None:
    cycle = _find_cycle(_import_graph())
    assert not cycle, "import cycle: " + " -> ".join(cycle)


def test_cycle_finder_reports_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}
    assert _find_cycle(graph) == ["a", "b", "c", "a"]
    graph["c"] = {"d"}
    assert _find_cycle(graph) == []
