"""The ingress: one per validator, the only face of the chain that client pools hold
(docs/security.md). It pins payloads into its validator's blob store, so it runs where the
validator does: in the validator's own process by default (`runtime.ingress=validator`: a
`ValidatorNode` hosts an `IngressCore`, and pools call `submit` on the validator's actor), or as an
actor of its own in the validator's placement-group bundle (`runtime.ingress=actor`:
`IngressActor`, which reaches its validator over Ray, `ingress_link`). The actor costs a process
(about 150 MB) and a hop per batch; it buys a second core for signature checks and pinning where a
validator has one to spare.

It receives batches of (signed transaction, payload, delivery signature) from client pools, where
the payload is an object reference to plain numpy arrays, a slot (reference, index) in one object
holding a list of such payloads (a pool puts its whole batch once), safetensors bytes, or None. It
fetches each referenced object once from Ray's object store (refusing one larger than the updates
of the items that name it before fetching), runs
`fedray.node.ingress.Ingress` (stateless rules incl. the signature, then payload validation and
pinning) on each item alone, forwards the admitted transactions to its validator's mempool in one
call with the ingress capability (so the validator need not verify their signatures again), and
appends every refusal with its rule to `<node>/ingress_rejections.jsonl`. It also answers the two
read-only views pools need, `round_info` and `account_nonces`, from its validator.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray

from fedray.core.transition import CheckedTx
from fedray.errors import FedrayError
from fedray.node.ingress import Admitted, Ingress, Refused, SubmissionFormError
from fedray.node.mempool import Rejection
from fedray.node.verify import BatchVerifier
from fedray.node.views import RoundInfo
from fedray.runtime.hardening import HARDENED, facade, guard_unpickling, in_ray_actor, sealed
from fedray.runtime.ingress_link import LocalValidator, RemoteValidator, ValidatorLink
from fedray.storage.blobs import BlobStore
from fedray.storage.tensors import TensorSpec

log = logging.getLogger(__name__)

INGRESS_METHODS = (
    "submit",
    "round_info",
    "account_nonces",
    "next_nonces",
    "stats",
)  # the remote surface
MAX_BATCH = 1024  # items per `submit` call; the rest are refused one by one
Layout = dict[str, tuple[str, tuple[int, ...]]]  # the model's tensors: name -> (dtype, shape)
FETCH_TIMEOUT_S = 60.0  # per payload reference
REF_OVERHEAD = 64 * 1024  # pickle framing of a payload in the object store, beyond its arrays


class IngressClosedError(FedrayError):
    """A batch reached an ingress whose validator has shut down."""

    code = "ingress_closed"


class PayloadUnavailableError(FedrayError):
    """A payload reference could not be fetched (lost, too large, or not numpy arrays)."""

    code = "payload_unavailable"


@dataclass(frozen=True)
class IngressReport:
    """What became of one `submit` batch: how many items entered the mempool, and the code of
    every refusal (the ingress's and the mempool's)."""

    admitted: int
    rejected: tuple[str, ...]


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


class IngressCore:
    """The ingress's work, wherever it runs: `IngressNode` is the actor of its own, and a
    `ValidatorNode` hosts one in its process (`runtime.ingress=validator`), sharing the validator's
    blob store and signature verifier."""

    def __init__(
        self,
        node_dir: str,
        chain_id: str,
        max_tx_bytes: int,
        layout: Layout,
        validator: ValidatorLink,
        blobs: BlobStore | None = None,
        verifier: BatchVerifier | None = None,
    ) -> None:
        self.dir = Path(node_dir)
        self.ingress = Ingress(
            chain_id,
            max_tx_bytes,
            BlobStore(self.dir / "blobs") if blobs is None else blobs,
            TensorSpec(layout),
        )
        self.verifier = BatchVerifier(chain_id) if verifier is None else verifier
        self.judging = ThreadPoolExecutor(1, thread_name_prefix="fedray-ingress")  # in order
        self.validator = validator
        self.log = open(self.dir / "ingress_rejections.jsonl", "a", buffering=1)  # noqa: SIM115
        self.admitted = 0
        self.rejected = 0
        self.closed = False

    @staticmethod
    async def _locate(refs: list[Any]) -> dict[Any, Any]:
        """The object-store locations (sizes) of a batch's payload references, in one lookup
        (one per reference would cost a GCS round trip each); {} when that lookup fails, and each
        reference is then looked up alone in `_fetch`."""
        if not refs:
            return {}
        try:
            where: dict[Any, Any] = await asyncio.to_thread(
                ray.experimental.get_object_locations, refs, int(FETCH_TIMEOUT_S * 1000)
            )
        except Exception:  # looked up one by one instead
            return {}
        return where

    async def _fetch(
        self, ref: Any, located: Mapping[Any, Any] | None = None, items: int = 1
    ) -> Any:
        """The object `ref` names (size checked first, against `items` updates, from `located`
        when the batch's lookup found it), or a `FedrayError` to refuse its items with."""
        limit = (self.ingress.max_payload_bytes + REF_OVERHEAD) * items
        try:
            if located is not None and ref in located:
                where: Mapping[Any, Any] = located
            else:
                where = await asyncio.to_thread(
                    ray.experimental.get_object_locations, [ref], int(FETCH_TIMEOUT_S * 1000)
                )
            size = where.get(ref, {}).get("object_size")
            if size is not None and size > limit:
                return PayloadUnavailableError(f"payload object has {size} bytes, limit {limit}")
            return await asyncio.wait_for(asyncio.wrap_future(ref.future()), FETCH_TIMEOUT_S)
        except Exception as exc:  # lost, timed out, or refused by the unpickling guard
            return PayloadUnavailableError(f"payload could not be fetched: {type(exc).__name__}")

    def _judge(
        self, item: Any, payload: Any, verdict: CheckedTx | FedrayError
    ) -> Admitted | Refused:
        if isinstance(payload, FedrayError):
            return Refused(Rejection(b"", b"", "", payload.code, str(payload), 0))
        if not isinstance(item[0], bytes):
            return self.ingress.admit(item[0])  # refused by its form
        if isinstance(verdict, FedrayError):
            return Refused(Rejection(b"", b"", "", verdict.code, str(verdict), 0))
        signature = item[2] if isinstance(item[2], bytes) else b""
        return self.ingress.admit_checked(verdict, payload, signature)

    def _judge_all(self, items: list[Any], payloads: list[Any]) -> list[Admitted | Refused]:
        """Every item's verdict, on the judging thread: the stateless rules (signatures) of the
        whole batch in the verifier's threads, then each item's payload, alone."""
        raws = [
            b"" if isinstance(p, FedrayError) else it[0]
            for it, p in zip(items, payloads, strict=True)
        ]
        verdicts = self.verifier.check_all(raws, self.ingress.max_tx_bytes)
        out: list[Admitted | Refused] = []
        try:
            # the batch's payloads are pinned together: durable before any item is forwarded
            with self.ingress.blobs.batch():
                for item, payload, verdict in zip(items, payloads, verdicts, strict=True):
                    try:
                        out.append(self._judge(item, payload, verdict))
                    except Exception as exc:  # a bug must cost this item, not the batch
                        log.exception("ingress: item refused by an unexpected error")
                        out.append(
                            Refused(Rejection(b"", b"", "", "ingress_error", repr(exc)[:200], 0))
                        )
        except OSError as exc:  # the pins could not be made durable: nothing is admitted
            log.error("ingress: pinning a batch failed: %r", exc)
            message = f"payloads could not be stored: {exc!r}"[:200]
            return [Refused(Rejection(b"", b"", "", "pin_failed", message, 0)) for _ in items]
        return out

    async def submit(self, batch: list[Any]) -> IngressReport:
        """Check and pin a batch of (transaction, payload ref or None, delivery signature), each
        item alone; returns counts and the rejection codes (ingress and mempool)."""
        if self.closed:
            raise IngressClosedError("this ingress's validator has shut down")
        if not isinstance(batch, list):
            return IngressReport(0, (SubmissionFormError.code,))
        items = batch[:MAX_BATCH]
        well_formed = [isinstance(it, tuple | list) and len(it) == 3 for it in items]
        named = Counter(
            ref for it, ok in zip(items, well_formed, strict=True) if ok for ref in _refs(it[1])
        )
        located = await self._locate(list(named))
        objects = dict(
            zip(
                named,
                await asyncio.gather(*(self._fetch(r, located, n) for r, n in named.items())),
                strict=True,
            )
        )
        payloads = [
            _payload(it[1], objects) if ok else _form_error(it)
            for it, ok in zip(items, well_formed, strict=True)
        ]
        admitted: list[bytes] = []
        codes: list[str] = [SubmissionFormError.code] * (len(batch) - len(items))
        evidence = []
        loop = asyncio.get_running_loop()
        results = await loop.run_in_executor(self.judging, self._judge_all, items, payloads)
        for result in results:
            if isinstance(result, Admitted):
                admitted.append(result.raw)
                continue
            codes.append(result.rejection.code)
            record = rejection_record(result.rejection, "ingress")
            record["evidence"] = result.evidence is not None
            self.log.write(json.dumps(record, sort_keys=True) + "\n")
            if result.evidence is not None:
                evidence.append(result.evidence)
        for proof in evidence:  # the validator signs and proposes the proof of misbehaviour
            await self.validator.submit_evidence(proof)
        self.admitted += len(admitted)
        self.rejected += len(codes)
        refused = await self.validator.admit_checked(admitted) if admitted else []
        codes.extend(r["code"] for r in refused)
        return IngressReport(len(admitted) - len(refused), tuple(codes))

    async def round_info(self, results_after: int = -1) -> RoundInfo:
        return await self.validator.round_info(results_after)

    async def account_nonces(self, keys: list[bytes]) -> dict[bytes, int]:
        return await self.validator.account_nonces(keys)

    async def next_nonces(self, keys: list[bytes]) -> dict[bytes, int]:
        return await self.validator.next_nonces(keys)

    def stats(self) -> dict[str, int]:
        return {
            "admitted": self.admitted,
            "rejected": self.rejected,
            "pinned_bytes": self.ingress.pinned_bytes,
        }

    def close(self) -> None:
        """Refuse new batches, let a batch being judged finish its pins, close the rejection log."""
        self.closed = True
        self.judging.shutdown(wait=True)
        self.log.close()


class IngressNode(IngressCore):
    """An ingress in an actor of its own (`runtime.ingress=actor`), reaching its validator over Ray
    with the validator's ingress capability."""

    def __init__(
        self,
        node_dir: str,
        chain_id: str,
        max_tx_bytes: int,
        layout: Layout,
        validator: Any,
        capability: bytes,
        verify_workers: int = 0,
    ) -> None:
        if in_ray_actor():
            guard_unpickling()
        super().__init__(
            node_dir,
            chain_id,
            max_tx_bytes,
            layout,
            RemoteValidator(validator, capability),
            verifier=BatchVerifier(chain_id, verify_workers or None),
        )


def _form_error(item: object) -> FedrayError:
    return SubmissionFormError(
        f"an item is (transaction, payload, signature), not {type(item).__name__}"
    )


def _is_slot(payload: object) -> bool:
    """(reference, index): the index-th payload of a list put once for a whole batch."""
    return (
        isinstance(payload, tuple)
        and len(payload) == 2
        and isinstance(payload[0], ray.ObjectRef)
        and type(payload[1]) is int
    )


def _refs(payload: object) -> tuple[Any, ...]:
    """The object reference an item's payload names, if any."""
    if isinstance(payload, ray.ObjectRef):
        return (payload,)
    if _is_slot(payload):
        return (payload[0],)  # type: ignore[index]
    return ()


def _payload(payload: object, objects: Mapping[Any, Any]) -> Any:
    """An item's payload: bytes, a mapping or None as sent, a fetched object or a slot of one,
    or the `FedrayError` that refuses the item."""
    if payload is None or isinstance(payload, bytes | Mapping):
        return payload
    if isinstance(payload, ray.ObjectRef):
        return objects[payload]
    if not _is_slot(payload):
        return SubmissionFormError(
            "a payload is an object reference or a (reference, index) slot, not "
            f"{type(payload).__name__}"
        )
    ref, index = payload  # type: ignore[misc]
    shared = objects[ref]
    if isinstance(shared, FedrayError):
        return shared
    if not isinstance(shared, list) or not 0 <= index < len(shared):
        return SubmissionFormError(f"slot {index} is not in the batch's payload list")
    return shared[index]


def hosted_ingress(node: Any, layout: Layout) -> IngressCore:
    """The ingress a `ValidatorNode`'s process hosts: the validator's blob store and signature
    verifier shared, its gated methods called directly with its ingress capability."""
    return IngressCore(
        str(node.dir),
        node.genesis.chain_id,
        node.genesis.params.max_tx_bytes,
        layout,
        LocalValidator(node, node.caps.ingress),
        blobs=node.app.blobs,
        verifier=node.verifier,
    )


IngressService = facade("IngressService", IngressNode, INGRESS_METHODS)
IngressActor = sealed(ray.remote(runtime_env=HARDENED)(IngressService))
