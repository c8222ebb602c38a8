"""The ingress actor: one per validator, placed on the validator's node (same placement-group
bundle) because it pins payloads into that validator's blob store.

It receives batches of (signed transaction, payload object ref) from client pools, fetches each
payload from Ray's object store as plain numpy arrays, runs `fedray.node.ingress.Ingress` (stateless
rules incl. the signature, then payload validation and pinning), forwards the admitted transactions
to its validator's mempool in one call, and appends every refusal with its rule to
`<node>/ingress_rejections.jsonl`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import ray

from fedray.node.ingress import Admitted, Ingress
from fedray.node.mempool import Rejection
from fedray.storage.blobs import BlobStore
from fedray.storage.tensors import TensorSpec


def rejection_record(r: Rejection, source: str) -> dict[str, Any]:
    return {
        "source": source,
        "tx_hash": r.tx_hash.hex(),
        "sender": r.sender.hex(),
        "kind": r.kind,
        "code": r.code,
        "message": r.message,
        "height": r.height,
    }


class IngressNode:
    def __init__(
        self,
        node_dir: str,
        chain_id: str,
        max_tx_bytes: int,
        layout: dict[str, tuple[str, tuple[int, ...]]],
        validator: Any,
    ) -> None:
        self.dir = Path(node_dir)
        self.ingress = Ingress(
            chain_id, max_tx_bytes, BlobStore(self.dir / "blobs"), TensorSpec(layout)
        )
        self.validator = validator
        self.log = open(self.dir / "ingress_rejections.jsonl", "a", buffering=1)  # noqa: SIM115
        self.admitted = 0
        self.rejected = 0

    async def submit(self, batch: list[tuple[bytes, Any, bytes]]) -> dict[str, Any]:
        """Check and pin a batch of (transaction, payload ref or None, delivery signature);
        returns counts and the rejection codes (ingress and mempool)."""
        refs = [ref for _, ref, _ in batch if ref is not None]
        fetched = iter(await asyncio.gather(*refs)) if refs else iter(())
        admitted: list[bytes] = []
        codes: list[str] = []
        evidence = []
        for raw, ref, signature in batch:
            payload = next(fetched) if ref is not None else None
            result = self.ingress.admit(raw, payload, signature)
            if isinstance(result, Admitted):
                admitted.append(result.raw)
                continue
            codes.append(result.rejection.code)
            record = rejection_record(result.rejection, "ingress")
            record["evidence"] = result.evidence is not None
            self.log.write(json.dumps(record, sort_keys=True) + "\n")
            if result.evidence is not None:
                evidence.append(result.evidence)
        for item in evidence:  # the validator signs and proposes the proof of misbehaviour
            with contextlib.suppress(ray.exceptions.RayActorError):
                await self.validator.submit_evidence.remote(item)
        self.admitted += len(admitted)
        self.rejected += len(codes)
        if admitted:
            try:
                mempool_rejections = await self.validator.submit_txs.remote(admitted, True)
            except ray.exceptions.RayActorError:
                mempool_rejections = [{"code": "validator_unavailable"}] * len(admitted)
            codes.extend(r["code"] for r in mempool_rejections)
        return {"admitted": len(admitted), "rejected": codes}

    def stats(self) -> dict[str, int]:
        return {
            "admitted": self.admitted,
            "rejected": self.rejected,
            "pinned_bytes": self.ingress.pinned_bytes,
        }


IngressActor = ray.remote(IngressNode)
