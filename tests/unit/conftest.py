"""Unit tests are Ray-free: a run they launch is refused before Ray starts, and is judged as an
embedded run even when the default suite's integration tests left their session Ray connected in
this process (launch would otherwise check that cluster's resources, after joining it)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _launches_are_embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    from fedray.runtime import launch

    monkeypatch.setattr(launch, "_ray_running", lambda: False)
