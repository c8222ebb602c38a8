"""A validator's settings (`NodeSettings`: timeouts, pacing, peer calls, clock bounds) and its
directory (`prepare_node_dir`: the encrypted validator key). What the validator does with them is
`validator.py`'s."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedray.consensus.state import TimeoutConfig
from fedray.errors import ConfigError
from fedray.storage.keystore import DEV_PASSPHRASE, KeyStore


@dataclass(frozen=True)
class NodeSettings:
    passphrase: str = DEV_PASSPHRASE  # of keys/validator.pem
    timeout_propose_s: float = 1.0  # round timeouts; each grows by the delta per round
    timeout_vote_s: float = 0.5
    timeout_delta_s: float = 0.5
    timeout_commit_s: float = 0.1  # round 0's proposer waits this long at most for late precommits
    block_interval_s: float = 0.05  # pause before an empty block; 0: propose at once
    # longest pause before a block while the open round waits for updates (0: none; validator.py)
    round_gather_s: float = 0.0
    aggregation_threads: int = 1
    verify_workers: int = 0  # signature-checking threads (node/verify.py); 0: min(4, cores)
    gossip_s: float = 0.5  # period of the progress check (resend, catch-up)
    call_timeout_s: float = 5.0  # per peer call
    clock_precision_s: float = 0.5  # a proposal's time may be this far ahead of our clock ...
    max_block_lag_s: float = 60.0  # ... or this far behind it (node/timeliness.py)
    lock_wait_s: float = 30.0  # wait this long for a previous process to release the directory
    # custom aggregation rules (name, import path) this validator registers (docs/extending.md)
    strategies: tuple[tuple[str, str], ...] = ()
    python_path: tuple[str, ...] = ()  # where their import paths resolve, besides the cwd
    metrics_index: int = -1  # tag of its Ray metrics (runtime.chain_metrics); -1: no Ray metrics
    metrics_run: str = ""  # their run tag (the run directory's name)

    def __post_init__(self) -> None:
        # a round's gather may be longer: peers' propose timeouts wait for the same updates
        if self.timeout_propose_s <= self.block_interval_s + self.timeout_commit_s:
            raise ConfigError(
                "timeout_propose_s must exceed block_interval_s + timeout_commit_s, or peers "
                "prevote nil while the proposer waits"
            )

    def timeouts(self) -> TimeoutConfig:
        p, v, d, c = (
            int(1000 * x)
            for x in (
                self.timeout_propose_s,
                self.timeout_vote_s,
                self.timeout_delta_s,
                self.timeout_commit_s,
            )
        )
        return TimeoutConfig(p, d, v, d, v, d, commit_ms=c)


def prepare_node_dir(node_dir: str | Path, key: Any, passphrase: str = DEV_PASSPHRASE) -> Path:
    """Create a validator directory holding `key` as keys/validator.pem (encrypted)."""
    path = Path(node_dir)
    store = KeyStore(path / "keys", passphrase)
    if not store.path("validator").exists():
        store.save("validator", key)
    return path
