"""What a run writes as it goes, so a run stopped at any moment (Ctrl-C, kill -9, a crash) keeps
every result so far and `fedray run --resume` can continue it.

As each round closes: its row is added to `metrics.parquet` (rewritten whole, to a temporary file
renamed over the old one, so the file on disk is always a complete table of `METRICS_SCHEMA`), the
global model is saved every `runtime.checkpoint_every` rounds as
`checkpoints/round-<r>.safetensors` (float32, the model's parameter names, its chain hash in the
metadata), and `summary.json` says how far the run got (`"finished": false` until the end). After
each round a pool trained, its attack state (`ClientPool.saved_state`, empty for stateless attacks)
is kept as `pool-state/pool-<i>-round-<r>.safetensors`, so a resumed pool crafts what an
uninterrupted one would.

Ignores: the chain (each validator's store is its own), plots and the final summary (`outputs`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fedray.errors import StorageError
from fedray.federation.metrics import RunColumns, metrics_table
from fedray.federation.plan import Federation
from fedray.node.export import jsonable
from fedray.storage.blobs import atomic_write

METRICS = "metrics.parquet"
SUMMARY = "summary.json"
CHECKPOINTS = "checkpoints"
POOL_STATE = "pool-state"
_POOL_STATE_NAME = re.compile(r"pool-(\d+)-round-(\d+)\.safetensors")


class RunRecord:
    """The results of the run in `run_dir` so far (see the module docstring)."""

    def __init__(self, run_dir: Path, fed: Federation) -> None:
        self.run_dir = run_dir
        self.fed = fed
        self.run_id = run_dir.name
        self.columns = RunColumns.of(fed.cfg, self.run_id).as_dict()
        self.rows: list[dict[str, Any]] = []
        self._table: pa.Table | None = None  # metrics_table(self.rows), kept between rounds
        path = run_dir / METRICS
        if path.exists():  # a resumed run: the rounds recorded before it stopped
            try:
                self.rows = pq.read_table(path).to_pylist()
            except Exception as exc:  # pyarrow's own error types
                raise StorageError(f"cannot read {path}: {exc}") from None

    @property
    def last_round(self) -> int:
        """The highest round recorded (-1: none)."""
        return max((int(r["round"]) for r in self.rows), default=-1)

    def add_row(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """Record one closed round (run columns added) and rewrite metrics.parquet. The rows
        recorded before are kept as an Arrow table, so a round converts only its own row: a row
        lists every client's balance, and converting every row again each round grew with
        clients x rounds."""
        full = {**self.columns, **row}
        self.rows.append(full)
        if self._table is None or self._table.num_rows != len(self.rows) - 1:
            self._table = metrics_table(self.rows)
        else:
            self._table = pa.concat_tables([self._table, metrics_table([full])])
        table = self._table
        tmp = self.run_dir / f".{METRICS}.tmp"
        pq.write_table(table, tmp)
        tmp.replace(self.run_dir / METRICS)
        return full

    def checkpoint(self, round_: int, fixed: Mapping[str, np.ndarray], model_hash: bytes) -> None:
        """Save the global model after `round_` when the round is due (every k rounds)."""
        from safetensors.numpy import save

        from fedray.federation.evaluate import as_float

        every = self.fed.cfg.runtime.checkpoint_every
        if every <= 0 or (round_ + 1) % every:
            return
        folder = self.run_dir / CHECKPOINTS
        folder.mkdir(exist_ok=True)
        data = save(
            as_float(self.fed, fixed),
            metadata={
                "format": "fedray",
                "round": str(round_),
                "global_model_hash": model_hash.hex(),
            },
        )
        atomic_write(folder / f"round-{round_:05d}.safetensors", data)

    def progress(self, summary: Mapping[str, Any]) -> None:
        """Rewrite summary.json (atomically)."""
        text = json.dumps(jsonable(dict(summary)), indent=2, sort_keys=True) + "\n"
        atomic_write(self.run_dir / SUMMARY, text.encode())

    # --- client pools' attack state -----------------------------------------------------------
    def save_pool_state(self, pool: int, round_: int, saved: bytes) -> None:
        folder = self.run_dir / POOL_STATE
        folder.mkdir(exist_ok=True)
        atomic_write(folder / f"pool-{pool}-round-{round_:05d}.safetensors", saved)

    def pool_state_before(self, pool: int, round_: int) -> bytes | None:
        """The state pool `pool` had when it started `round_`: the one saved after the latest
        earlier round it trained (None: it never had any)."""
        saved: dict[int, Path] = {}
        for path in (self.run_dir / POOL_STATE).glob("pool-*-round-*.safetensors"):
            m = _POOL_STATE_NAME.fullmatch(path.name)
            if m and int(m.group(1)) == pool and int(m.group(2)) < round_:
                saved[int(m.group(2))] = path
        return saved[max(saved)].read_bytes() if saved else None
