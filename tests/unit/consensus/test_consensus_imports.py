"""The consensus package has no import cycle (issue 9: the simulator's transports depend on a
small protocol, `sim_node.World`, not on `Simulation`). Imports under TYPE_CHECKING count too."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[3] / "fedray" / "consensus"


def imports_of(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "fedray.consensus":
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            parts = node.module.split(".")
            if parts[:2] == ["fedray", "consensus"] and len(parts) > 2:
                names.add(parts[2])
    return names


def test_no_import_cycle_in_the_consensus_package() -> None:
    graph = {p.stem: imports_of(p) for p in PACKAGE.glob("*.py")}
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, " -> ".join((*path, module))
        if module in done:
            return
        for dep in graph.get(module, set()):
            visit(dep, (*path, module))
        done.add(module)

    for module in graph:
        visit(module, ())
    assert {"sim", "sim_byzantine", "sim_node"} <= set(graph)
