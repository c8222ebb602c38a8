"""The validator: the consensus engine, the ledger application and the node's stores behind one
asyncio object. `ValidatorActor = ray.remote(ValidatorNode)`; tests may also drive `ValidatorNode`
objects directly in one event loop (peers connected as objects instead of actor handles).

Everything that touches the engine runs on the event loop, one call at a time (the `Driver` is
synchronous), so no lock guards it. Network messages arrive as canonical bytes in batches
(`receive`), leave through per-peer buffers (`transport.Outbox`), and timers are `loop.call_later`.
Two engine requests are answered asynchronously: `BuildProposal` waits `block_interval_s` while the
mempool is empty (an arriving transaction ends the wait at once), and `CheckProposal` of a block
whose update payloads are not pinned here waits until they are fetched from a peer.

Catch-up: every `gossip_s` without progress (same height, round and step) the node resends what its
engine holds for the height (a restarted peer needs current-height messages) and asks peers for
their committed height; from a peer ahead it fetches (block, certificate) pairs (`committed_range`)
and feeds them to the driver, where the engine verifies each certificate against the validator set
of its height before the block is executed. A restart reopens the node directory: the ledger from
its block store, the signer state from `signer.json`, the proposer schedule from the block store's
meta table (`recovery`).

Deliberately ignored: running aggregation off the event loop (a round-closing block stalls message
handling for the aggregation's duration) and access control on `get_blob`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import ray

from fedray.consensus.driver import Driver, file_signer_store
from fedray.consensus.messages import (
    BuildProposal,
    CheckProposal,
    Event,
    OutboxItem,
    ProposalBuilt,
    ProposalChecked,
    ScheduleTimeout,
    Start,
    TimeoutFired,
)
from fedray.consensus.state import EngineConfig, TimeoutConfig, gossip, initial_state
from fedray.core.block import Block, CommitCertificate
from fedray.core.contracts.slashing import PayloadEvidence
from fedray.core.encoding import decode
from fedray.core.state import Genesis
from fedray.errors import ConfigError, EncodingError, FedrayError
from fedray.node.app import LedgerApp
from fedray.node.timeliness import Timeliness
from fedray.node.views import accounts_info, economy_info, governance_info, round_info
from fedray.runtime.observers import CommitWatch
from fedray.runtime.recovery import (
    catch_up,
    fetch_payloads,
    load_schedule,
    save_schedule,
)
from fedray.runtime.transport import (
    MAX_BATCH_MESSAGES,
    LocalPeers,
    Outbox,
    Peers,
    RayPeers,
    decode_message,
    encode_message,
)
from fedray.storage.keystore import DEV_PASSPHRASE, KeyStore

log = logging.getLogger(__name__)

MAX_CONCURRENCY = 256  # concurrent calls into one actor (receive batches, long polls, queries)
MAX_RANGE = 64  # committed blocks per `committed_range` answer


@dataclass(frozen=True)
class NodeSettings:
    passphrase: str = DEV_PASSPHRASE  # of keys/validator.pem
    timeout_propose_s: float = 1.0  # round timeouts; each grows by the delta per round
    timeout_vote_s: float = 0.5
    timeout_delta_s: float = 0.5
    timeout_commit_s: float = 0.1  # round 0's proposer waits this long at most for late precommits
    block_interval_s: float = 0.05  # pause before an empty block; 0: propose at once
    aggregation_threads: int = 1
    gossip_s: float = 0.5  # period of the progress check (resend, catch-up)
    call_timeout_s: float = 5.0  # per peer call
    clock_precision_s: float = 0.5  # a proposal's time may be this far ahead of our clock ...
    max_block_lag_s: float = 60.0  # ... or this far behind it (node/timeliness.py)

    def __post_init__(self) -> None:
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


class _ShellDriver(Driver):
    """The reference driver, letting the node take over some outbox items (answered later)."""

    def __init__(self, *args: Any, intercept: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.intercept = intercept

    def _apply(self, item: OutboxItem, queue: Any) -> None:
        if not self.intercept(item):
            super()._apply(item, queue)


def prepare_node_dir(node_dir: str | Path, key: Any, passphrase: str = DEV_PASSPHRASE) -> Path:
    """Create a validator directory holding `key` as keys/validator.pem (encrypted)."""
    path = Path(node_dir)
    store = KeyStore(path / "keys", passphrase)
    if not store.path("validator").exists():
        store.save("validator", key)
    return path


class ValidatorNode:
    def __init__(self, node_dir: str, genesis: bytes, **settings: Any) -> None:
        self.settings = s = NodeSettings(**settings)
        self.dir = Path(node_dir)
        self.genesis = Genesis.from_canonical(decode(genesis))
        self.key = KeyStore(self.dir / "keys", s.passphrase).load("validator")
        self.name = self.key.public_key.hex()[:12]
        self.app = LedgerApp(
            self.dir,
            self.genesis,
            aggregation_threads=s.aggregation_threads,
            keys=[self.key],
            clock=self.now_ms,
            timeliness=Timeliness(int(1000 * s.clock_precision_s), int(1000 * s.max_block_lag_s)),
        )
        self.signer_store = file_signer_store(self.dir / "signer.json")
        self.peers: Peers = LocalPeers({})
        self.outbox = Outbox(self.peers, s.call_timeout_s)
        self.driver: _ShellDriver | None = None
        self.closed = False
        self.failed: str | None = None
        self.malformed = 0
        # (height, round, block ms, commit ms) of recent commits, for latency figures
        self.commits: deque[tuple[int, int, int, int]] = deque(maxlen=100_000)
        self._pending_build: BuildProposal | None = None
        self._build_timer: asyncio.TimerHandle | None = None
        self.watch = CommitWatch()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ahead = False  # saw a message more than one height ahead

    # --- lifecycle ----------------------------------------------------------------------------
    async def connect(self, peers: Sequence[Any], namespace: str | None = None) -> int:
        """Set the peers: actor handles, actor names, or (in-process) `ValidatorNode` objects; this
        node itself may be in the list. Call again after a peer restarts with a new handle."""
        entries: dict[str, Any] = {}
        me = self._own_actor_id()
        for p in peers:
            if p is self:
                continue
            if isinstance(p, ValidatorNode):
                entries[p.name] = p
            elif isinstance(p, str):
                entries[p] = None
            elif p._actor_id.hex() != me:
                entries[p._actor_id.hex()] = p
        if any(isinstance(p, ValidatorNode) for p in entries.values()):
            self.peers = LocalPeers(entries)
        else:
            self.peers = RayPeers(entries, namespace)
        self.outbox.close()
        self.outbox = Outbox(self.peers, self.settings.call_timeout_s)
        return len(entries)

    @staticmethod
    def _own_actor_id() -> str | None:
        if not ray.is_initialized():
            return None
        actor_id = ray.get_runtime_context().get_actor_id()
        return None if actor_id is None else str(actor_id)

    async def start(self) -> dict[str, Any]:
        """Resume consensus at the height after the last commit (idempotent)."""
        if self.driver is None and not self.closed:
            height = self.app.height + 1
            config = EngineConfig(self.genesis.chain_id, self.key, self.settings.timeouts())
            state = initial_state(
                config,
                height,
                self.app.validators(height),
                load_schedule(self.app),
                self.signer_store.load(),
            )
            self.driver = _ShellDriver(
                state,
                self.app,
                self.signer_store,
                self,
                on_decide=self._on_decide,
                intercept=self._intercept,
            )
            self._spawn(self._maintain())
            self._handle(Start())
        return await self.status()

    async def shutdown(self) -> None:
        """Stop taking part and close the stores (the actor can then be killed)."""
        if self.closed:
            return
        self.closed = True
        if self._build_timer is not None:
            self._build_timer.cancel()
        self.outbox.close()
        for task in list(self._tasks):
            task.cancel()
        self.watch.close()
        self.app.close()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- the driver's transport ---------------------------------------------------------------
    def broadcast(self, message: Any) -> None:
        self.outbox.send(encode_message(message))

    def schedule(self, t: ScheduleTimeout) -> None:
        fired = TimeoutFired(t.height, t.round, t.step)
        asyncio.get_running_loop().call_later(t.duration_ms / 1000, self._handle, fired)

    def now_ms(self) -> int:
        return int(time.time() * 1000)

    def _handle(self, event: Event) -> None:
        """Feed one event to the driver; a failure here (a store that cannot write) stops the node
        rather than letting it continue with an engine and a ledger that disagree."""
        if self.driver is None or self.closed or self.failed:
            return
        try:
            self.driver.handle(event)
        except Exception as exc:
            self._fail(exc)

    def _deliver_certified(self, block: Block, cert: CommitCertificate) -> None:
        if self.driver is None or self.closed or self.failed:
            return
        try:
            self.driver.deliver_certified(block, cert)
        except Exception as exc:
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        log.exception("validator %s stops: %s", self.name, exc)
        self.failed = f"{type(exc).__name__}: {exc}"

    # --- asynchronous answers to engine requests ----------------------------------------------
    def _intercept(self, item: OutboxItem) -> bool:
        if isinstance(item, BuildProposal):
            if self.settings.block_interval_s <= 0 or len(self.app.mempool) > 0:
                return False
            if self._build_timer is not None:  # a request for an older round or height
                self._build_timer.cancel()
            self._pending_build = item
            self._build_timer = asyncio.get_running_loop().call_later(
                self.settings.block_interval_s, self._build_now
            )
            return True
        if isinstance(item, CheckProposal):
            missing = self.app.missing_payloads(item.block)
            if missing:
                self._spawn(self._check_after_fetch(item.block, missing))
                return True
        return False

    def _build_now(self) -> None:
        item, self._pending_build = self._pending_build, None
        if self._build_timer is not None:
            self._build_timer.cancel()
            self._build_timer = None
        s = None if self.driver is None else self.driver.state
        if item is None or s is None or (s.height, s.round) != (item.height, item.round):
            return
        block = self.app.prepare_proposal(item.height, item.round, item.proposer, self.now_ms())
        self._handle(ProposalBuilt(item.height, item.round, block))

    async def _check_after_fetch(self, block: Block, missing: list[bytes]) -> None:
        await fetch_payloads(self.peers, self.app, missing)
        valid = self.app.process_proposal(block)  # False if a payload is still missing
        self._handle(ProposalChecked(block.height, block.hash, valid))

    # --- commits, observers -------------------------------------------------------------------
    def _on_decide(self, block: Block, cert: CommitCertificate) -> None:
        assert self.driver is not None
        h = block.height
        nxt = self.driver.state.schedule.next_height(self.app.validators(h + 1))
        save_schedule(self.app, h + 1, nxt)  # what the engine will use at h + 1, for restarts
        self.commits.append((h, cert.round, block.header.time, self.now_ms()))
        self.watch.committed(
            h,
            lambda: {
                "height": h,
                "hash": block.hash,
                "txs": len(block.txs),
                "time_ms": block.header.time,
                "state_root": self.app.state.root(),
            },
        )

    async def wait_for_height(self, height: int, timeout_s: float = 10.0) -> dict[str, Any]:
        """Return `status()` once `height` is committed here, or when `timeout_s` runs out."""
        if self.app.height < height and not self.closed:
            await self.watch.wait(height, timeout_s)
        return await self.status()

    async def subscribe(self, target: Any, method: str = "on_block") -> None:
        """Call `target.<method>(event)` after every later commit, in order (see `observers`)."""
        self._spawn(self.watch.subscribe(target, method))

    # --- network ------------------------------------------------------------------------------
    async def receive(self, batch: list[bytes]) -> None:
        """Consensus messages from a peer, as canonical bytes (see `transport`)."""
        if self.driver is None:
            await self.start()
        if not isinstance(batch, list):
            return
        for raw in batch[:MAX_BATCH_MESSAGES]:
            try:
                message = decode_message(raw)
            except FedrayError:
                self.malformed += 1
                continue
            if self.driver is not None and message.height > self.driver.state.height + 1:
                self._ahead = True
            self._handle(message)

    async def _maintain(self) -> None:
        last: tuple[int, int, int] | None = None
        while not self.closed:
            await asyncio.sleep(self.settings.gossip_s)
            if self.driver is None or self.failed:
                continue
            s = self.driver.state
            key = (s.height, s.round, s.step)
            stalled, last = key == last, key
            if stalled:
                for message in gossip(s):
                    self.broadcast(message)
            if stalled or self._ahead:
                self._ahead = False
                try:
                    running = lambda: not (self.closed or self.failed)  # noqa: E731
                    await catch_up(
                        self.peers,
                        self.app,
                        self._deliver_certified,
                        running,
                        status_timeout_s=4 * self.settings.gossip_s,
                    )
                except Exception:
                    log.exception("catch-up failed on %s", self.name)

    # --- queries and transactions -------------------------------------------------------------
    async def status(self) -> dict[str, Any]:
        s = self.driver.state if self.driver is not None else None
        state = self.app.state
        return {
            "name": self.name,
            "height": state.height,  # last committed
            "round": -1 if s is None else s.round,
            "step": -1 if s is None else s.step,
            "last_block_hash": state.last_block_hash,
            "state_root": state.root(),
            "mempool": len(self.app.mempool),
            "rejected": self.app.mempool.rejected,
            "aggregation_s": self.app.aggregation.seconds,
            "malformed": self.malformed,
            "dropped": self.outbox.dropped,
            "failed": self.failed,
        }

    async def committed_range(self, lo: int, hi: int) -> list[tuple[bytes, bytes]]:
        """(block bytes, certificate bytes) for heights lo..hi (at most MAX_RANGE, up to the tip)."""
        if not isinstance(lo, int) or not isinstance(hi, int) or self.closed:
            return []
        hi = min(hi, self.app.height, lo + MAX_RANGE - 1)
        if lo < 1 or hi < lo:
            return []
        return [(b.raw, b.certificate) for b in self.app.store.iter_blocks(lo, hi)]

    async def block_hashes(self, lo: int = 1, hi: int | None = None) -> dict[int, bytes]:
        """height -> block hash of every committed block in lo..hi (the tip if None)."""
        if self.closed:
            return {}
        hi = self.app.height if hi is None else min(hi, self.app.height)
        return {b.height: b.hash for b in self.app.store.iter_blocks(lo, hi)}

    async def commit_stats(self) -> list[tuple[int, int, int, int]]:
        """(height, commit round, block time ms, local commit time ms) of commits seen live."""
        return list(self.commits)

    async def submit_txs(
        self, batch: list[bytes], signature_verified: bool = False
    ) -> list[dict[str, Any]]:
        """Admit transactions into the mempool; returns the rejected ones (with `index`)."""
        out: list[dict[str, Any]] = []
        for i, raw in enumerate(batch):
            try:
                if not isinstance(raw, bytes):
                    raise EncodingError("a transaction is a byte string")
                r = self.app.submit(raw, signature_verified)
            except FedrayError as exc:
                out.append({"index": i, "code": exc.code, "message": str(exc)})
                continue
            if r is not None:
                record = asdict(r)
                record.update(index=i, tx_hash=r.tx_hash.hex(), sender=r.sender.hex())
                out.append(record)
        if len(out) < len(batch) and self._pending_build is not None:
            self._build_now()  # transactions wait for no block interval
        return out

    async def submit_evidence(self, evidence: PayloadEvidence) -> dict[str, Any] | None:
        """Sign a `payload_evidence` transaction with this validator's key (from its own ingress:
        a client provably delivered an invalid payload) and admit it; returns a rejection, if any."""
        if not isinstance(evidence, PayloadEvidence):
            raise EncodingError("payload evidence expected")
        r = self.app.submit_own(evidence, self.key)
        if r is None and self._pending_build is not None:
            self._build_now()
        return None if r is None else {"code": r.code, "message": r.message}

    async def account_nonces(self, keys: list[bytes]) -> dict[bytes, int]:
        """The next nonce of each account at the last committed state (0 if unknown)."""
        out = {}
        for k in keys:
            account = self.app.state.account(k)
            out[k] = 0 if account is None else account.nonce
        return out

    async def round_info(self, results_after: int = -1) -> dict[str, Any]:
        return round_info(self.app.state, results_after)

    async def accounts_info(self, keys: list[bytes]) -> dict[bytes, dict[str, Any]]:
        return accounts_info(self.app.state, keys)

    async def economy_info(self) -> dict[str, Any]:
        return economy_info(self.app.state)

    async def governance_info(self) -> dict[str, Any]:
        return governance_info(self.app.state)

    async def get_blob(self, digest: bytes) -> dict[str, np.ndarray]:
        return await asyncio.to_thread(self.app.blobs.get, digest)

    async def put_blob(self, tensors: dict[str, np.ndarray]) -> bytes:
        return await asyncio.to_thread(self.app.blobs.put, tensors)


ValidatorActor = ray.remote(max_concurrency=MAX_CONCURRENCY)(ValidatorNode)  # type: ignore[call-overload]
