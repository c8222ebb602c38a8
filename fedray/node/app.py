"""The ledger application: the consensus `Application` implemented with the core transition, the
node's stores, its mempool and the aggregation precompile. Ray-free: the validator actor wraps it.

One node directory holds everything a validator needs to restart:
    chain.sqlite   committed blocks, certificates, state roots, snapshots (storage.blockstore)
    blobs/         pinned update payloads and global models (storage.blobs)
    outcomes/      recorded aggregation outcomes (node.precompile)
    keys/          the validator key, encrypted (storage.keystore)
    LOCK           held while a process has the directory open (storage.dirlock)
    signer.json    last signed (height, round, step) (storage.signer_state)
    rejections.jsonl  every transaction the node refused, with the rule broken

Proposals are checked by executing them (`apply_block` on the committed state) after making sure
every update payload they reference is pinned here (data availability) and, given a clock, that
their time is close to it (`timeliness.py`); the resulting state is kept (by block hash) so
`finalize_block` reuses it when the decided block is the one checked, as ABCI++'s FinalizeBlock
does, and executes only a block it never checked (catch-up, restart). A proposer executes its own
block once, when building it, and keeps that result the same way. Execution takes the mempool's
transactions as checked on admission, and a proposal's others as checked just before in the batch
verifier's threads (`BlockEnv.checked`): each is decoded and verified once per node.

A node proposes only for keys it holds (`keys`): the block carries the proposer's VRF proof, and as
`last_commit` the certificate of the previous block grown by the precommits that came after the
decision (`extend_commit`; the stored certificate stays the one the node decided with).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from fedray.consensus.commits import grows
from fedray.core.beacon import prove_next
from fedray.core.block import Block, CommitCertificate, make_block, proposal_time
from fedray.core.context import BlockEnv, ExecContext
from fedray.core.contracts.governance_params import PARAM_CHECK
from fedray.core.crypto import PrivateKey
from fedray.core.encoding import digest
from fedray.core.evidence import Evidence
from fedray.core.precompiles import AGGREGATION, PAYLOAD_CHECK
from fedray.core.state import Genesis, State, ValidatorSet
from fedray.core.transition import CheckedTx, apply_block, select_txs
from fedray.core.tx import make_tx
from fedray.errors import CryptoError, FedrayError, StorageError
from fedray.node.availability import needed_payload
from fedray.node.mempool import Mempool, Rejection
from fedray.node.param_check import check_param
from fedray.node.precompile import BlobAggregation, PayloadChecker
from fedray.node.replay import load_state
from fedray.node.timeliness import Timeliness
from fedray.node.verify import BatchVerifier
from fedray.storage.blobs import BlobStore
from fedray.storage.blockstore import BlockStore
from fedray.storage.dirlock import DirLock

MAX_PROPOSAL_CACHE = 8


class LedgerApp:
    """A validator's replicated state machine (see module docstring). Calls are serialized by a
    lock, so the actor shell may call from its event loop and from worker threads; a proposal
    executes outside it, on an immutable snapshot of the committed state (`State` is never
    mutated; the precompiles are pure functions of their request, with their own lock)."""

    def __init__(
        self,
        node_dir: str | Path,
        genesis: Genesis,
        *,
        aggregation_threads: int = 1,
        verify_workers: int = 0,
        snapshot_interval: int = 100,
        recompute: bool = False,
        keys: Sequence[PrivateKey] = (),
        clock: Callable[[], int] | None = None,
        timeliness: Timeliness | None = None,
        lock_wait_s: float = 0.0,
    ) -> None:
        self.dir = Path(node_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        # one process per node directory (a resumed run waits for its predecessor's to exit)
        self._dir_lock = DirLock(self.dir, wait_s=lock_wait_s)
        self.store = BlockStore(self.dir, snapshot_interval=snapshot_interval)
        self.store.init_genesis(genesis)
        self.blobs = BlobStore(self.dir / "blobs")
        self.aggregation = BlobAggregation(
            self.blobs, self.dir / "outcomes", recompute=recompute, threads=aggregation_threads
        )
        self.verified: set[bytes] = set()
        self.verifier = BatchVerifier(genesis.chain_id, verify_workers or None)
        self.env = BlockEnv(
            precompiles=node_precompiles(self.dir, self.aggregation, lambda: self.state),
            verified=self.verified,
        )
        self.state: State = load_state(self.store, self.env)
        tip = self.store.height()
        self.last_commit: CommitCertificate | None = self.store.get(tip).cert() if tip else None
        self._rejections = open(self.dir / "rejections.jsonl", "a", buffering=1)  # noqa: SIM115
        self.mempool = Mempool(on_reject=self._record_rejection, available=self._available)
        self.evidence_pool: dict[bytes, Evidence] = {}
        self._checked: dict[bytes, State] = {}  # proposal hash -> state after it
        self._pending: tuple[Block, CommitCertificate, State] | None = None
        self._lock = threading.RLock()
        self.keys = {k.public_key: k for k in keys}  # what this node may propose with
        self.clock = clock  # none: no timeliness check (replay, tests, in-process federations)
        self.timeliness = timeliness or Timeliness()

    # --- Application protocol -----------------------------------------------------------------
    @property
    def height(self) -> int:
        return self.state.height

    def validators(self, height: int) -> ValidatorSet:
        if height == self.state.height + 1:
            return self.state.validators
        if height == self.state.height:
            return self.state.last_validators
        raise StorageError(
            f"validator set of height {height} is not at hand (at {self.state.height})"
        )

    def prepare_proposal(self, height: int, round_: int, proposer: bytes, time_ms: int) -> Block:
        with self._lock:
            s = self.state
            key = self.keys.get(proposer)
            if key is None:
                raise CryptoError(f"this node holds no key of proposer {proposer.hex()[:16]}")
            time = proposal_time(s.last_block_time, s.params.max_block_time_step_ms, time_ms)
            candidates = self.mempool.candidates(self._available)
            recorded = s.section("evidence")
            # Only evidence of earlier heights: `process_evidence` refuses the rest (an
            # equivocation in a failed round of this height waits for the next block).
            evidence = [
                e.to_bytes()
                for h, e in self.evidence_pool.items()
                if h not in recorded and e.height < height
            ]
            last_commit = self.last_commit
            env = replace(self.env, checked=self.mempool.checked_by_bytes())
            txs = self.mempool.fill(candidates, s.params)

        def build(txs: list[bytes]) -> Block:
            return make_block(
                s.chain_id,
                height,
                time,
                s.last_block_hash,
                s.root(),
                proposer,
                s.validators,
                txs,
                last_commit,
                evidence,
                prove_next(key, s),
            )

        # The mempool's window applies on this state (it runs each transaction on admission or
        # when a commit brings it in), and each sender's keep their nonce order, so the block is
        # packed from them by gas and executed once; its result is what `process_proposal` and
        # `finalize_block` reuse. Only if it fails (block context: evidence, fees, end of block,
        # a transaction needing another sender's later one) are they filtered one by one, and
        # the block then executes when checked. Execution (aggregation included) runs outside
        # the lock, on the snapshot `s`: admissions and queries go on meanwhile.
        block = build(txs)
        try:
            self._remember_if_current(s, block.hash, apply_block(s, block, env))
            return block
        except FedrayError:
            txs, _ = select_txs(s, candidates, ExecContext(height, time, proposer, env))
            return build(txs)

    def process_proposal(self, block: Block) -> bool:
        """Whether `block` is valid on the committed state. Only the preliminaries hold the lock:
        the block executes (aggregation included) on a snapshot of the state, outside it, so
        admissions, queries and a commit are not held up by a round-closing block; the result
        is kept only if that state is still the committed one."""
        with self._lock:
            if block.hash in self._checked:
                return True
            try:
                for raw in block.txs:  # data availability before execution
                    if not self._available(raw):
                        return False
                if not self._timely(block):
                    return False
                state, pending = self.state, self.mempool.checked_by_bytes()
            except FedrayError:
                return False
        try:
            new_state = apply_block(state, block, self._env_for(block, pending, state))
        except FedrayError:
            return False
        self._remember_if_current(state, block.hash, new_state)
        return True

    def _remember_if_current(self, base: State, block_hash: bytes, new_state: State) -> None:
        with self._lock:
            if self.state is base:  # else a commit came first: the result is of a past height
                self._remember(block_hash, new_state)

    def _env_for(
        self,
        block: Block,
        pending: dict[bytes, CheckedTx] | None = None,
        state: State | None = None,
    ) -> BlockEnv:
        """The execution environment of `block`, with its transactions' stateless rules already
        checked: those in the mempool were on admission, the rest are now, signatures verified
        in parallel by the batch verifier's threads (failures are left for execution to raise,
        in order, with their rule)."""
        if pending is None:
            pending = self.mempool.checked_by_bytes()
        params = (state or self.state).params
        unknown = [raw for raw in block.txs if raw not in pending]
        known = {raw: pending[raw] for raw in block.txs if raw in pending}
        for raw, verdict in zip(
            unknown, self.verifier.check_all(unknown, params.max_tx_bytes), strict=True
        ):
            if isinstance(verdict, CheckedTx):
                known[raw] = verdict
        return replace(self.env, checked=known)

    def _remember(self, block_hash: bytes, new_state: State) -> None:
        """Keep the state after a checked block, for `finalize_block` (bounded: a round may see
        several proposals, a Byzantine proposer many)."""
        if len(self._checked) >= MAX_PROPOSAL_CACHE:
            self._checked.pop(next(iter(self._checked)))
        self._checked[block_hash] = new_state

    def _timely(self, block: Block) -> bool:
        """A fresh proposal's time is near our clock (no clock: replay, tests, in-process)."""
        if self.clock is None:
            return True
        s = self.state
        why = self.timeliness.refusal(
            block.header.time, s.last_block_time, s.params.max_block_time_step_ms, self.clock()
        )
        return why is None

    def finalize_block(self, block: Block, certificate: CommitCertificate) -> None:
        with self._lock:
            new_state = self._checked.get(block.hash)
            if new_state is None:  # decided without our prevote (catch-up): execute now
                new_state = apply_block(self.state, block, self._env_for(block))
            self._pending = (block, certificate, new_state)

    def commit(self) -> None:
        with self._lock:
            if self._pending is None:
                raise StorageError("commit without a finalized block")
            block, certificate, new_state = self._pending
            self.store.append(block, certificate, new_state)
            self.state, self.last_commit, self._pending = new_state, certificate, None
            self._checked.clear()
            included = [digest(raw) for raw in block.txs]  # a tx hash is the digest of its bytes
            self.mempool.committed(included, new_state, self.env)
            self.verified.intersection_update(self.mempool.hashes())
            recorded = new_state.section("evidence")
            for key in [k for k in self.evidence_pool if k in recorded]:
                del self.evidence_pool[key]

    def add_evidence(self, evidence: Evidence) -> None:
        with self._lock:
            self.evidence_pool.setdefault(evidence.hash(), evidence)

    def extend_commit(self, certificate: CommitCertificate) -> None:
        """Propose with `certificate` as `last_commit` if it is the committed certificate plus
        valid precommits of the set that signed the last block (late precommits)."""
        with self._lock:
            s = self.state
            if self.last_commit is not None and grows(
                s.chain_id, s.last_validators, self.last_commit, certificate
            ):
                self.last_commit = certificate

    # --- transactions -------------------------------------------------------------------------
    def submit(self, raw: bytes, signature_verified: bool = False) -> Rejection | None:
        """Admit a transaction into the mempool (the ingress verified its signature and pinned
        its payload when `signature_verified`)."""
        with self._lock:
            if signature_verified:  # a transaction's hash is the digest of its bytes: the
                self.verified.add(digest(raw))  # mempool decodes them, once, right below
            return self.mempool.add(raw, self.state, self.env)

    def submit_checked(self, checked: CheckedTx) -> Rejection | None:
        """Admit a transaction this node checked in full (`check_tx_stateless` in its batch
        verifier): its signature is not verified again, in the mempool or in a block."""
        with self._lock:
            self.verified.add(checked.stx.hash)
            return self.mempool.add_checked(checked, self.state, self.env)

    needed_payload = staticmethod(needed_payload)

    def missing_payloads(self, block: Block) -> list[bytes]:
        """Digests of the payloads `block` needs that the local blob store lacks (data
        availability: a proposal is checked only once they are all here)."""
        out: list[bytes] = []
        for raw in block.txs:
            needed = self.needed_payload(raw)
            if needed is not None and not self.blobs.has(needed) and needed not in out:
                out.append(needed)
        return out

    def _available(self, raw: bytes) -> bool:
        needed = self.needed_payload(raw)
        return needed is None or self.blobs.has(needed)

    def next_nonce(self, sender: bytes) -> int:
        """The nonce `sender`'s next transaction takes: its committed nonce plus its transactions
        pending in the mempool (so a second transaction queues behind the first, not against it)."""
        with self._lock:
            return self.mempool.next_nonce(sender, self.state, self.env)

    def round_outstanding(self, wait: bool = True) -> bool | None:
        """Whether the open round still waits for updates that a block of the mempool's ready
        transactions would not bring (the proposer may hold its block for them). `wait=False`
        (from an event loop): None when the node is busy rather than waiting for it."""
        if not self._lock.acquire(blocking=wait):
            return None
        try:
            return self.mempool.round_outstanding(self.state, self.env)
        finally:
            self._lock.release()

    def submit_own(self, payload: Any, key: PrivateKey) -> Rejection | None:
        """Sign `payload` as a transaction of this node's key (next free nonce) and admit it."""
        with self._lock:
            stx = make_tx(key, self.state.chain_id, self.next_nonce(key.public_key), payload)
            return self.submit(stx.raw, signature_verified=True)

    def _record_rejection(self, r: Rejection) -> None:
        record: dict[str, Any] = asdict(r)
        for k in ("tx_hash", "sender"):
            record[k] = record[k].hex()
        self._rejections.write(json.dumps(record, sort_keys=True) + "\n")

    def record_rejection(self, r: Rejection) -> None:
        """Record a rejection decided outside the mempool (ingress payload checks)."""
        with self._lock:
            self.mempool.rejected += 1
            self._record_rejection(r)

    # --- queries ------------------------------------------------------------------------------
    def committed(self, height: int) -> tuple[Block, CommitCertificate] | None:
        if not 1 <= height <= self.state.height:
            return None
        stored = self.store.get(height)
        return stored.block(), stored.cert()

    def close(self) -> None:
        with self._lock:
            self._rejections.close()
            self.verifier.close()
            self.store.close()
            self._dir_lock.release()


def node_precompiles(
    node_dir: Path, aggregation: BlobAggregation, state: Callable[[], State]
) -> dict[str, Any]:
    """The precompiles a node injects into execution, over its own stores."""
    checker = PayloadChecker(aggregation.blobs, lambda: state().section("rounds").global_hash)
    return {AGGREGATION: aggregation, PAYLOAD_CHECK: checker, PARAM_CHECK: check_param}


def make_block_env(node_dir: str | Path, recompute: bool, store: BlockStore) -> BlockEnv:
    """The environment `fedray chain verify` replays a node's chain (`store`) with: its blob store
    and its recorded aggregation outcomes (reused, or recomputed and compared when `recompute`),
    opened read-only: the replay writes nothing into `node_dir`."""
    node_dir = Path(node_dir)
    aggregation = BlobAggregation(
        BlobStore(node_dir / "blobs", read_only=True),
        node_dir / "outcomes",
        recompute=recompute,
        read_only=True,
    )
    genesis_state = store.genesis().state()
    return BlockEnv(precompiles=node_precompiles(node_dir, aggregation, lambda: genesis_state))
