"""Smoke test of experiments/grinding.py on tiny settings: the components it measures select what
the chain selects, grinding finds one seed under the VRF rule and many under the old one."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def grinding() -> ModuleType:
    spec = importlib.util.spec_from_file_location("grinding", ROOT / "experiments/grinding.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["grinding"] = mod  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(mod)
    return mod


def test_grinding_has_no_lever_under_the_vrf_and_one_under_the_block_hash(
    grinding: ModuleType,
) -> None:
    genesis, keys = grinding.world(4)
    grinding.check_against_the_chain(genesis, keys[0])
    new = grinding.grinding(genesis, keys[1], trials=2, attempts=150, rule="vrf")
    old = grinding.grinding(genesis, keys[1], trials=2, attempts=150, rule="hash")
    assert (
        "distinct seeds per opening: 1 to 1;" in new.note
        and "gain over the first block: 0.00" in new.note
    )
    assert "distinct seeds per opening: 150 to 150;" in old.note
    assert sum(old.counts) > sum(new.counts)


def test_withholding_rows_cover_every_opening(grinding: ModuleType) -> None:
    row = grinding.withholding(1, trials=12)
    assert len(row.counts) == 12 and all(0 <= c <= grinding.K for c in row.counts)
