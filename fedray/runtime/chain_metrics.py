"""Chain and round figures as Ray metrics (`ray.util.metrics`), so Ray's Prometheus endpoint (each
node's metrics export port, names prefixed `ray_` there) and the Ray dashboard show them.

- Each validator actor (`ValidatorGauges`, tags `validator=<index>`, `run=<run id>`, `chain=<chain
  id>`; runs on one cluster, the trials of a sweep, stay apart): its
  height, its mempool size (at each commit and each progress check), the transactions and blocks
  it committed (counters).
- The driver (`RunGauges`, a `federation.live` sink, tag `run=<run id>`): each closed round's
  number, accuracy, loss, seconds, tx/s over the run, clients slashed and penalties so far, and a
  counter of rounds closed.

Metric objects are made once per process and name (`_metric`), so several runs in one process (a
Ray Tune worker, the tests) share them. Ignored: histograms of block or round time (Prometheus
rates over the counters give the same figures).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from typing import Any

from fedray.federation.live import scalars

log = logging.getLogger(__name__)
_METRICS: dict[str, Any] = {}

VALIDATOR_TAGS = ("validator", "run", "chain")
RUN_TAGS = ("run",)

# name, kind, description: the validators' metrics
VALIDATOR_METRICS = {
    "height": ("fedray_chain_height", "gauge", "height of the validator's last committed block"),
    "mempool": ("fedray_mempool_txs", "gauge", "transactions in the validator's mempool"),
    "txs": ("fedray_committed_txs", "counter", "transactions the validator committed"),
    "blocks": ("fedray_committed_blocks", "counter", "blocks the validator committed"),
}
# row scalar -> name, description: the driver's gauges
RUN_GAUGES = {
    "round": ("fedray_round", "last closed round (from 0)"),
    "accuracy": ("fedray_accuracy", "test accuracy of the global model after the round"),
    "loss": ("fedray_loss", "test loss of the global model after the round"),
    "round_seconds": ("fedray_round_seconds", "wall seconds of the last closed round"),
    "tx_per_s": ("fedray_tx_per_s", "transactions committed per second over the run"),
    "height": ("fedray_run_height", "chain height when the round was recorded"),
    "slashed_clients": ("fedray_slashed_clients", "clients with a penalty so far"),
    "penalties_total": ("fedray_penalties", "penalties on the chain so far"),
}
ROUNDS_COUNTER = ("fedray_rounds_closed", "rounds closed and recorded")


def _metric(name: str, kind: str, description: str, tag_keys: tuple[str, ...]) -> Any:
    from ray.util.metrics import Counter, Gauge

    if name not in _METRICS:
        cls = Gauge if kind == "gauge" else Counter
        _METRICS[name] = cls(name, description=description, tag_keys=tag_keys)
    return _METRICS[name]


class ValidatorGauges:
    """One validator's metrics (module docstring); call from its actor only. Never raises: a
    commit must not fail on a metric (the validator would stop)."""

    def __init__(self, index: int, run_id: str, chain_id: str) -> None:
        self.tags = {"validator": str(index), "run": run_id, "chain": chain_id}
        self.metrics = {
            key: _metric(name, kind, text, VALIDATOR_TAGS)
            for key, (name, kind, text) in VALIDATOR_METRICS.items()
        }

    def committed(self, height: int, txs: int, mempool: int) -> None:
        with _logged(self):
            self.metrics["height"].set(height, tags=self.tags)
            self.metrics["blocks"].inc(1, tags=self.tags)
            if txs:
                self.metrics["txs"].inc(txs, tags=self.tags)
            self.metrics["mempool"].set(mempool, tags=self.tags)

    def mempool(self, size: int) -> None:
        with _logged(self):
            self.metrics["mempool"].set(size, tags=self.tags)


@contextlib.contextmanager
def _logged(gauges: ValidatorGauges) -> Iterator[None]:
    try:
        yield
    except Exception as exc:  # Ray's metric errors: logged once, the validator goes on
        if not getattr(gauges, "warned", False):
            gauges.warned = True  # type: ignore[attr-defined]
            log.warning("validator metrics failed: %s: %s", type(exc).__name__, exc)


class RunGauges:
    """The driver's round figures as Ray gauges (a `LiveMetrics` sink)."""

    def __init__(self, run_id: str) -> None:
        self.tags = {"run": run_id}
        self.gauges = {
            key: _metric(name, "gauge", text, RUN_TAGS) for key, (name, text) in RUN_GAUGES.items()
        }
        self.rounds = _metric(ROUNDS_COUNTER[0], "counter", ROUNDS_COUNTER[1], RUN_TAGS)

    def round(self, row: Mapping[str, Any]) -> None:
        values = scalars(row)
        for key, gauge in self.gauges.items():
            gauge.set(values[key], tags=self.tags)
        self.rounds.inc(1, tags=self.tags)

    def close(self, finished: bool) -> None:
        pass
