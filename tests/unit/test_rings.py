"""Architecture rules: the core imports no Ray/torch/numpy, and imports point inward only."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "fedray"

# What each ring may import from fedray (besides itself and fedray.errors).
ALLOWED = {
    "core": set(),
    "consensus": {"core", "storage"},
    "aggregation": {"core"},
    "learning": {"core", "aggregation"},
    "storage": {"core"},
    "node": {"core", "consensus", "aggregation", "learning", "storage", "config"},
    "runtime": {"core", "consensus", "aggregation", "learning", "storage", "node", "config"},
}
NO_RAY = {"core", "consensus", "aggregation", "learning", "storage", "node"}
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
                    if target not in (ring, "errors", "") and target not in allowed:
                        problems.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert not problems, "\n".join(problems)
