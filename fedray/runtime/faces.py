"""The validator actor's remote methods other than its lifecycle and consensus (`validator.py`),
grouped by who may call them (docs/security.md lists each with its checks):

- anyone: read-only views of the committed state (`status`, `round_info`, `account_nonces`, ...),
  committed blocks (`committed_range`, `block_hashes`), released blobs (`get_blob` without a
  request), and `submit_txs`, which verifies every signature itself;
- peers: `get_blob` of an unreleased payload, with a request signed by a validator key;
- client pools (anyone): `submit` and `stats` of the ingress this validator's process hosts
  (`runtime.ingress=validator`), which checks every signature and payload itself;
- the validator's own ingress, with the ingress capability: `admit_checked` (transactions whose
  signatures it verified and whose payloads it pinned) and `submit_evidence`;
- the operator, with the operator capability: `put_blob`, `wait_for_height` (and the lifecycle
  in `validator.py`: `connect`, `start`, `shutdown`); `subscribe` only in process.

Every argument is checked for type and size first: a caller may send anything Ray can carry.
`ValidatorFaces` is a mixin of `ValidatorNode`, which supplies the attributes it declares.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from fedray.core.contracts.slashing import PayloadEvidence
from fedray.core.crypto import PrivateKey
from fedray.core.transition import CheckedTx
from fedray.core.tx import SignedTx
from fedray.errors import BlobError, EncodingError, FedrayError
from fedray.node.app import LedgerApp
from fedray.node.mempool import Rejection
from fedray.node.verify import BatchVerifier
from fedray.node.views import (
    AccountInfo,
    EconomyInfo,
    GovernanceInfo,
    RoundInfo,
    accounts_info,
    economy_info,
    governance_info,
    round_info,
)
from fedray.runtime.access import check_blob_request, released, require
from fedray.runtime.ingress import IngressCore, IngressReport
from fedray.runtime.node_settings import NodeSettings
from fedray.runtime.transport import Outbox
from fedray.storage.tensors import nbytes

# The validator actor's whole remote surface (hardening.facade); docs/security.md has a row for each.
VALIDATOR_METHODS = (
    # operator (operator capability)
    "connect",
    "start",
    "shutdown",
    "put_blob",
    "wait_for_height",
    # its own ingress (ingress capability)
    "admit_checked",
    "submit_evidence",
    # anyone: the ingress this validator's process hosts (runtime.ingress=validator)
    "submit",
    "stats",
    # peers (signed messages, signed blob requests) and anyone
    "receive",
    "get_blob",
    "submit_txs",
    "status",
    "committed_range",
    "block_hashes",
    "commit_stats",
    "account_nonces",
    "next_nonces",
    "round_info",
    "accounts_info",
    "economy_info",
    "governance_info",
)
MAX_RANGE = 64  # committed blocks per `committed_range` answer
MAX_KEYS = 4096  # accounts per query
MAX_SUBMIT = 4096  # transactions per `submit_txs` / `admit_checked` call


class NoIngressError(FedrayError):
    """`submit` reached a validator whose ingress runs in an actor of its own."""

    code = "no_ingress"


@dataclass(frozen=True)
class NodeStatus:
    """A validator's progress and counters, as `status()` reports them."""

    name: str
    height: int  # last committed
    round: int  # of the height in progress (-1 before start)
    step: int
    last_block_hash: bytes
    state_root: bytes
    mempool: int
    rejected: int
    aggregation_s: float
    malformed: int  # wire messages that did not decode
    dropped: int  # outgoing messages dropped for unreachable peers
    failed: str | None  # why the node stopped, if it did
    pid: int


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _keys(keys: object) -> list[bytes]:
    if not isinstance(keys, list | tuple) or len(keys) > MAX_KEYS:
        raise EncodingError(f"keys are a list of at most {MAX_KEYS} byte strings")
    if not all(isinstance(k, bytes) for k in keys):
        raise EncodingError("a key is a byte string")
    return list(keys)


def _batch(batch: object) -> list[Any]:
    if not isinstance(batch, list) or len(batch) > MAX_SUBMIT:
        raise EncodingError(f"a batch is a list of at most {MAX_SUBMIT} transactions")
    return batch


class ValidatorFaces:
    app: LedgerApp
    key: PrivateKey
    name: str
    caps: Any  # validator.Capabilities
    settings: NodeSettings
    closed: bool
    failed: str | None
    malformed: int
    outbox: Outbox
    commits: Any
    _pending_build: Any

    watch: Any  # observers.CommitWatch

    verifier: BatchVerifier  # checks `submit_txs` batches
    ingress: IngressCore | None  # hosted here (runtime.ingress=validator), else None
    admission: Executor  # one thread: admission in arrival order, off the event loop

    # methods of ValidatorNode the faces call
    _build_now: Callable[[], None]
    _spawn: Callable[[Any], None]
    _state_progress: Callable[[], tuple[int, int]]  # (round, step), or (-1, -1) before start

    # --- the operator ------------------------------------------------------------------------
    async def put_blob(self, capability: bytes, tensors: dict[str, Any]) -> bytes:
        """Pin a model (the operator seeds the initial one); at most the model's size."""
        require(self.caps.operator, capability, "put_blob")
        limit = self.app.state.section("rounds").model_nbytes
        if (
            not isinstance(tensors, dict)
            or not all(isinstance(v, np.ndarray) for v in tensors.values())
            or nbytes(tensors) > limit
        ):
            raise BlobError(f"a pinned blob is a mapping of at most {limit} bytes of arrays")
        return await asyncio.to_thread(self.app.blobs.put, tensors)

    async def wait_for_height(
        self, capability: bytes, height: int, timeout_s: float = 10.0
    ) -> NodeStatus:
        """Return `status()` once `height` is committed here, or when `timeout_s` runs out."""
        require(self.caps.operator, capability, "wait_for_height")
        if self.app.height < height and not self.closed:
            await self.watch.wait(height, min(float(timeout_s), 600.0))
        return await self.status()

    async def subscribe(self, capability: bytes, target: Any, method: str = "on_block") -> None:
        """Call `target.<method>(event)` after every later commit, in order (see `observers`)."""
        require(self.caps.operator, capability, "subscribe")
        self._spawn(self.watch.subscribe(target, method))

    # --- anyone: views of the committed state -------------------------------------------------
    async def status(self) -> NodeStatus:
        state = self.app.state
        round_, step = self._state_progress()
        return NodeStatus(
            name=self.name,
            height=state.height,
            round=round_,
            step=step,
            last_block_hash=state.last_block_hash,
            state_root=state.root(),
            mempool=len(self.app.mempool),
            rejected=self.app.mempool.rejected,
            aggregation_s=self.app.aggregation.seconds,
            malformed=self.malformed,
            dropped=self.outbox.dropped,
            failed=self.failed,
            pid=os.getpid(),
        )

    async def committed_range(self, lo: int, hi: int) -> list[tuple[bytes, bytes]]:
        """(block bytes, certificate bytes) for heights lo..hi (at most MAX_RANGE, up to the tip)."""
        if not _is_int(lo) or not _is_int(hi) or self.closed:
            return []
        hi = min(hi, self.app.height, lo + MAX_RANGE - 1)
        if lo < 1 or hi < lo:
            return []
        return [(b.raw, b.certificate) for b in self.app.store.iter_blocks(lo, hi)]

    async def block_hashes(self, lo: int = 1, hi: int | None = None) -> dict[int, bytes]:
        """height -> block hash of every committed block in lo..hi (the tip if None)."""
        if self.closed or not _is_int(lo) or not (hi is None or _is_int(hi)):
            return {}
        hi = self.app.height if hi is None else min(hi, self.app.height)
        return {b.height: b.hash for b in self.app.store.iter_blocks(max(1, lo), hi)}

    async def commit_stats(self) -> list[tuple[int, int, int, int]]:
        """(height, commit round, block time ms, local commit time ms) of commits seen live."""
        return list(self.commits)

    async def account_nonces(self, keys: list[bytes]) -> dict[bytes, int]:
        """The next nonce of each account at the last committed state (0 if unknown)."""
        out = {}
        for k in _keys(keys):
            account = self.app.state.account(k)
            out[k] = 0 if account is None else account.nonce
        return out

    async def next_nonces(self, keys: list[bytes]) -> dict[bytes, int]:
        """The nonce each account's next transaction takes: committed, plus pending here."""
        return {k: self.app.next_nonce(k) for k in _keys(keys)}

    async def round_info(self, results_after: int = -1) -> RoundInfo:
        return round_info(self.app.state, results_after if _is_int(results_after) else -1)

    async def accounts_info(self, keys: list[bytes]) -> dict[bytes, AccountInfo]:
        return accounts_info(self.app.state, _keys(keys))

    async def economy_info(self) -> EconomyInfo:
        return economy_info(self.app.state)

    async def governance_info(self) -> GovernanceInfo:
        return governance_info(self.app.state)

    # --- anyone (released blobs) and peers (signed request) ------------------------------------
    async def get_blob(self, digest: bytes, request: bytes = b"") -> dict[str, np.ndarray]:
        """The pinned blob `digest`: to anyone if the chain released it (a global model, a closed
        round's payload); else only with a fresh request signed by a validator."""
        if not isinstance(digest, bytes):
            raise BlobError("a blob digest is a byte string")
        if not released(self.app.state, digest):
            check_blob_request(request, self.app.state, digest, int(time.time() * 1000))
        return await asyncio.to_thread(self.app.blobs.get, digest)

    # --- anyone: transactions, every signature verified here -----------------------------------
    async def submit_txs(self, batch: list[bytes]) -> list[dict[str, Any]]:
        """Admit transactions into the mempool after checking every signature (in the batch
        verifier's threads, off the event loop); returns the rejected ones (with `index`)."""
        return await self._admit(_batch(batch), signatures_checked=False)

    # --- anyone: the ingress hosted in this process ---------------------------------------------
    async def submit(self, batch: list[Any]) -> IngressReport:
        """What client pools call: check and pin a batch of (transaction, payload, delivery
        signature) in the hosted ingress (`ingress.IngressCore.submit`: every signature and
        payload checked there, then `admit_checked` with the ingress capability)."""
        return await self._hosted_ingress().submit(batch)

    async def stats(self) -> dict[str, int]:
        """The hosted ingress's counters (the ingress actor's `stats`)."""
        return self._hosted_ingress().stats()

    def _hosted_ingress(self) -> IngressCore:
        if self.ingress is None:
            raise NoIngressError(
                "this validator hosts no ingress (runtime.ingress=actor): submit to its ingress "
                "actor"
            )
        return self.ingress

    # --- the validator's own ingress -----------------------------------------------------------
    async def admit_checked(self, capability: bytes, batch: list[bytes]) -> list[dict[str, Any]]:
        """Admit transactions whose signatures the ingress verified and whose payloads it pinned
        (so the mempool and block execution skip the signature check)."""
        require(self.caps.ingress, capability, "admit_checked")
        return await self._admit(_batch(batch), signatures_checked=True)

    async def submit_evidence(
        self, capability: bytes, evidence: PayloadEvidence
    ) -> dict[str, Any] | None:
        """Sign a `payload_evidence` transaction with this validator's key (from its own ingress:
        a client provably delivered an invalid payload) and admit it; returns a rejection, if any."""
        require(self.caps.ingress, capability, "submit_evidence")
        if not isinstance(evidence, PayloadEvidence):
            raise EncodingError("payload evidence expected")
        r = self.app.submit_own(evidence, self.key)
        if r is None and self._pending_build is not None:
            self._build_now()
        return None if r is None else {"code": r.code, "message": r.message}

    async def _admit(self, batch: list[Any], signatures_checked: bool) -> list[dict[str, Any]]:
        """Admission runs on the node's one admission thread (batches keep their arrival order,
        so a sender's nonces stay in order) while the event loop goes on with consensus."""
        loop = asyncio.get_running_loop()
        out, outstanding = await loop.run_in_executor(
            self.admission, self._admit_and_look, batch, signatures_checked
        )
        if len(out) < len(batch) and self._pending_build is not None and not outstanding:
            self._build_now()  # transactions wait for no block interval ...
        return out  # ... unless the open round's last updates are on their way (`_intercept`)

    def _admit_and_look(
        self, batch: list[Any], signatures_checked: bool
    ) -> tuple[list[dict[str, Any]], bool]:
        """Admit `batch`; and whether the proposer should still gather the open round's updates."""
        out = self._admit_now(batch, signatures_checked)
        gathering = self.settings.round_gather_s > 0 and self._pending_build is not None
        return out, gathering and bool(self.app.round_outstanding())

    def _admit_now(self, batch: list[Any], signatures_checked: bool) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        verdicts: Sequence[CheckedTx | FedrayError | None] = [None] * len(batch)
        if not signatures_checked:  # every signature verified here, over the verifier's threads
            verdicts = self.verifier.check_all(batch, self.app.state.params.max_tx_bytes)
        for i, (raw, verdict) in enumerate(zip(batch, verdicts, strict=True)):
            try:
                if not isinstance(raw, bytes):
                    raise EncodingError("a transaction is a byte string")
                if signatures_checked:  # by this validator's own ingress
                    r: Rejection | None = self.app.submit(raw, signature_verified=True)
                elif isinstance(verdict, CheckedTx):
                    r = self.app.submit_checked(verdict)
                else:
                    assert isinstance(verdict, FedrayError)
                    r = refusal(raw, verdict, self.app.height)
                    self.app.record_rejection(r)
            except FedrayError as exc:
                out.append({"index": i, "code": exc.code, "message": str(exc)})
                continue
            if r is not None:
                record = asdict(r)
                record.update(index=i, tx_hash=r.tx_hash.hex(), sender=r.sender.hex())
                out.append(record)
        return out


def refusal(raw: bytes, exc: FedrayError, height: int) -> Rejection:
    """The mempool's record of a transaction refused by a stateless rule."""
    try:
        stx: SignedTx | None = SignedTx.decode(raw)
    except FedrayError:
        stx = None
    return Rejection.of(stx, exc, height)
