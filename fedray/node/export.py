"""Export a stored chain as Parquet tables (pyarrow): `blocks.parquet` and `transactions.parquet`.

Payload fields are written as a JSON column (bytes as hex) so every kind fits one table; analysts
filter by `kind` and parse the JSON of the kinds they need.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fedray.core.tx import SignedTx
from fedray.storage.blockstore import BlockStore


def jsonable(value: Any) -> Any:
    """JSON-ready copy of `value`: bytes as hex, numpy scalars as Python numbers."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return value


def export_chain(chain_dir: Path, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    blocks: dict[str, list[Any]] = {
        k: []
        for k in (
            "height",
            "hash",
            "time",
            "prev_hash",
            "proposer",
            "tx_root",
            "state_root_before",
            "state_root_after",
            "validators_hash",
            "n_txs",
            "n_evidence",
            "cert_round",
            "cert_signers",
            "size_bytes",
        )
    }
    txs: dict[str, list[Any]] = {
        k: []
        for k in (
            "height",
            "index",
            "hash",
            "sender",
            "nonce",
            "gas_limit",
            "kind",
            "payload_json",
            "size_bytes",
        )
    }
    with BlockStore.reading(chain_dir) as store:
        for stored in store.iter_blocks():
            block, cert = stored.block(), stored.cert()
            h = block.header
            for name, value in (
                ("height", h.height),
                ("hash", stored.hash.hex()),
                ("time", h.time),
                ("prev_hash", h.prev_hash.hex()),
                ("proposer", h.proposer.hex()),
                ("tx_root", h.tx_root.hex()),
                ("state_root_before", h.state_root.hex()),
                ("state_root_after", stored.state_root.hex()),
                ("validators_hash", h.validators_hash.hex()),
                ("n_txs", len(block.txs)),
                ("n_evidence", len(block.evidence)),
                ("cert_round", cert.round),
                ("cert_signers", len(cert.signatures)),
                ("size_bytes", len(stored.raw)),
            ):
                blocks[name].append(value)
            for index, raw in enumerate(block.txs):
                stx = SignedTx.decode(raw)
                t = stx.tx
                for name, value in (
                    ("height", h.height),
                    ("index", index),
                    ("hash", stx.hash.hex()),
                    ("sender", t.sender.hex()),
                    ("nonce", t.nonce),
                    ("gas_limit", t.gas_limit),
                    ("kind", t.kind),
                    ("payload_json", json.dumps(jsonable(dict(t.payload)), sort_keys=True)),
                    ("size_bytes", len(raw)),
                ):
                    txs[name].append(value)
    block_schema = pa.schema(
        [
            ("height", pa.int64()),
            ("hash", pa.string()),
            ("time", pa.int64()),
            ("prev_hash", pa.string()),
            ("proposer", pa.string()),
            ("tx_root", pa.string()),
            ("state_root_before", pa.string()),
            ("state_root_after", pa.string()),
            ("validators_hash", pa.string()),
            ("n_txs", pa.int64()),
            ("n_evidence", pa.int64()),
            ("cert_round", pa.int64()),
            ("cert_signers", pa.int64()),
            ("size_bytes", pa.int64()),
        ]
    )
    tx_schema = pa.schema(
        [
            ("height", pa.int64()),
            ("index", pa.int64()),
            ("hash", pa.string()),
            ("sender", pa.string()),
            ("nonce", pa.uint64()),
            ("gas_limit", pa.uint64()),
            ("kind", pa.string()),
            ("payload_json", pa.string()),
            ("size_bytes", pa.int64()),
        ]
    )
    paths = [out / "blocks.parquet", out / "transactions.parquet"]
    pq.write_table(pa.table(blocks, schema=block_schema), paths[0])
    pq.write_table(pa.table(txs, schema=tx_schema), paths[1])
    return paths
