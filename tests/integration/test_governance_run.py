"""Governance end to end in a `fedray run`: a scripted proposal passes and the parameter changes at
the same height on every validator; a vetoed proposal burns its deposit."""

from __future__ import annotations

from pathlib import Path

from fedray.config import load_config
from fedray.node.app import make_block_env
from fedray.node.replay import verify_chain
from fedray.runtime.launch import run
from fedray.storage.blockstore import BlockStore

MINIMAL = Path(__file__).resolve().parents[2] / "fedray" / "conf" / "preset" / "minimal.yaml"
GOVERNANCE = """
rounds: 3
chain:
  params:
    gov_voting_period: 4
governance:
  - round: 0
    kind: param_change
    key: fl_local_epochs
    value: "2"
    validator_votes: "yes"
  - round: 0
    kind: param_change
    key: reward_pool
    value: "7"
    validator_votes: veto
"""


def epochs_by_height(chain_dir: Path) -> dict[int, int]:
    seen: dict[int, int] = {}
    with BlockStore.reading(chain_dir) as store:
        report = verify_chain(
            store,
            make_block_env(chain_dir, recompute=False, store=store),
            on_block=lambda s, b: seen.__setitem__(b.height, s.params.fl_local_epochs),
        )
    assert report.ok, report
    return seen


def test_governance_lifecycle_in_a_run(ray_cluster: None, tmp_path: Path) -> None:
    extra = tmp_path / "governance.yaml"
    extra.write_text(GOVERNANCE)
    from omegaconf import OmegaConf

    merged = tmp_path / "merged.yaml"
    merged.write_text(
        OmegaConf.to_yaml(OmegaConf.merge(OmegaConf.load(MINIMAL), OmegaConf.load(extra)))
    )
    cfg = load_config(merged, [f"output_dir={tmp_path / 'runs'}"])
    assert cfg.training.epochs != 2
    result = run(cfg)
    passed, vetoed = result.summary["governance"]
    assert passed["status"] == "executed" and vetoed["status"] == "vetoed"
    # The parameter changes at the proposal's execution height, identically on every validator.
    changes = []
    for chain_dir in sorted((result.run_dir / "chain").glob("validator-*")):
        epochs = epochs_by_height(chain_dir)
        first = min(h for h, e in epochs.items() if e == 2)
        assert epochs[first - 1] == cfg.training.epochs
        changes.append(first)
    assert set(changes) == {passed["execute_height"]}
    # The veto burned the deposit (nothing else burns in a clean run).
    economy = result.summary["economy"]
    assert economy["burned"] == 10_000 and not economy["penalties"]
