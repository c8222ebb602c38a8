"""The pure parts of fedray's Ray boundary: which addresses count as loopback, which address a run
joins, the opt-in for unauthenticated clusters, and that nothing in the repository turns Ray's
token authentication off. (The boundary itself is attacked in tests/integration.)"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from fedray.config import load_config
from fedray.runtime.cluster import cluster_address, is_loopback

REPO = Path(__file__).resolve().parents[3]
SKIP_DIRS = {"runs", "tmp", "build", "dist", "__pycache__", "node_modules", "fedray.egg-info"}


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.1.1", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),  # how Ray's C++ listeners report 127.0.0.1
        ("0.0.0.0", False),
        ("::", False),
        ("192.0.2.2", False),
        ("::ffff:192.0.2.2", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_cluster_address_prefers_the_explicit_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert cluster_address(None) is None
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.10:6379")
    assert cluster_address(None) == "10.0.0.10:6379"
    assert cluster_address("auto") == "auto"


def test_unauthenticated_clusters_need_an_explicit_opt_in() -> None:
    assert load_config().runtime.allow_unauthenticated is False
    cfg = load_config(None, ["runtime.allow_unauthenticated=true"])
    assert cfg.runtime.allow_unauthenticated is True


def test_nothing_in_the_repository_turns_token_authentication_off() -> None:
    variable = "RAY_AUTH_" + "MODE"  # split: this pattern is no hit of `git grep RAY_AUTH_MODE`
    # VAR=disabled, "VAR": "disabled", setenv("VAR", "disabled"), and a Kubernetes env entry
    off = re.compile(
        variable + r"""["']?\s*(?:[=:,\]]|\n\s*value:)\s*["']?disabled""", re.IGNORECASE
    )
    found = []
    for top, dirs, files in os.walk(REPO):
        # skip what is not the project's own text: VCS, virtualenvs, caches, outputs
        dirs[:] = [d for d in dirs if (d == ".ci" or not d.startswith(".")) and d not in SKIP_DIRS]
        for name in files:
            path = Path(top) / name
            try:
                text = path.read_text()
            except (UnicodeDecodeError, OSError):
                continue
            for hit in off.finditer(text):
                line = text.count("\n", 0, hit.start()) + 1
                found.append(f"{path.relative_to(REPO)}:{line}: {hit.group(0)!r}")
    assert not found, "\n".join(found)
