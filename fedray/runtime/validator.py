"""The validator: the consensus engine, the ledger application and the node's stores behind one
asyncio object. `ValidatorActor` is its Ray actor, a facade exposing `VALIDATOR_METHODS` only; tests
may also drive `ValidatorNode` objects in one event loop (peers connected as objects). Given the
model's layout (`runtime.ingress=validator`) it hosts its ingress, which pools `submit` to.

Everything that touches the engine runs on the event loop, one call at a time (the `Driver` is
synchronous), so no lock guards it. Network messages arrive as canonical bytes in batches
(`receive`), leave through per-peer buffers (`transport.Outbox`), and timers are `loop.call_later`.
Two engine requests are answered asynchronously, off the event loop (`execution.py`: where a
block executes and a round-closing block aggregates, so votes, timeouts and catch-up keep flowing
meanwhile): a proposal is built (`BuildProposal`, after waiting `block_interval_s` while the
mempool is empty: an arriving transaction ends the wait at once; while the open round still waits
for selected clients' updates, up to `round_gather_s` for them, which peers' propose timeouts allow
for (`gather.py`): the admission completing them ends the wait) and checked (`CheckProposal`; of
a block whose update payloads are not pinned here, once they are fetched from a peer). A missing
payload is retried until the height moves on, never answered as invalid (that verdict would stick
for the whole height) and never fatal: a certified block is handed to the engine only once its
payloads are here.

Catch-up: every `gossip_s` without progress the node resends what its engine holds for the height
and fetches certified blocks from a peer ahead (`recovery`); the engine verifies each certificate.
Access (docs/security.md): lifecycle methods take the operator capability; `faces.py`, the rest.

Deliberately ignored: executing a block the engine decided without our check (catch-up, or peers
deciding first while ours still runs) off the loop; it executes in `finalize_block`, on the loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import ray

from fedray.config import register_strategies
from fedray.consensus.driver import file_signer_store
from fedray.consensus.messages import (
    BuildProposal,
    CheckProposal,
    Event,
    OutboxItem,
    ProposalBuilt,
    ProposalChecked,
    ScheduleTimeout,
    Start,
)
from fedray.consensus.state import EngineConfig, gossip, initial_state
from fedray.core.block import Block, CommitCertificate
from fedray.core.encoding import decode
from fedray.core.state import Genesis
from fedray.errors import FedrayError
from fedray.node.app import LedgerApp
from fedray.node.timeliness import Timeliness
from fedray.runtime.access import Capabilities, require, sign_blob_request
from fedray.runtime.chain_metrics import ValidatorGauges
from fedray.runtime.execution import Execution, ShellDriver
from fedray.runtime.faces import VALIDATOR_METHODS, NodeStatus, ValidatorFaces
from fedray.runtime.gather import Timers, awaiting_updates
from fedray.runtime.hardening import HARDENED, facade, guard_unpickling, in_ray_actor, sealed
from fedray.runtime.ingress import Layout, hosted_ingress
from fedray.runtime.long_lived import FreezeCommitted
from fedray.runtime.node_settings import NodeSettings
from fedray.runtime.observers import CommitWatch
from fedray.runtime.recovery import catch_up, fetch_until_pinned, load_schedule, save_schedule
from fedray.runtime.transport import (
    MAX_BATCH_MESSAGES,
    LocalPeers,
    Outbox,
    Peers,
    decode_message,
    encode_message,
    peers_of,
)
from fedray.storage.keystore import KeyStore

log = logging.getLogger(__name__)

MAX_CONCURRENCY = 256  # concurrent calls into one validator (receive, long polls, queries)
MAX_FETCH_RETRY_S = 5.0  # longest pause between tries to fetch a missing payload


class ValidatorNode(ValidatorFaces):
    def __init__(
        self,
        node_dir: str,
        genesis: bytes,
        ingress_layout: Layout | None = None,
        **settings: Any,
    ) -> None:
        if in_ray_actor():
            guard_unpickling()  # from here on, callers' pickles cannot run code in this process
        self.settings = s = NodeSettings(**settings)
        register_strategies(s.strategies, s.python_path)  # before the ledger: rounds close with it
        self.dir = Path(node_dir)
        self.genesis = Genesis.from_canonical(decode(genesis))
        self.key = KeyStore(self.dir / "keys", s.passphrase).load("validator")
        self.caps = Capabilities.of(self.key)
        self.name = self.key.public_key.hex()[:12]
        self.app = LedgerApp(
            self.dir,
            self.genesis,
            aggregation_threads=s.aggregation_threads,
            verify_workers=s.verify_workers,
            keys=[self.key],
            clock=self.now_ms,
            timeliness=Timeliness(int(1000 * s.clock_precision_s), int(1000 * s.max_block_lag_s)),
            lock_wait_s=s.lock_wait_s,
        )
        self.verifier = self.app.verifier
        # the ingress this process hosts (runtime.ingress=validator), sharing blobs and verifier
        self.ingress = None if ingress_layout is None else hosted_ingress(self, ingress_layout)
        self.admission = ThreadPoolExecutor(1, thread_name_prefix="fedray-admission")
        self.execution = Execution(self._handle, self._fail_if_usable)
        self.timers = Timers(
            s.round_gather_s, lambda: awaiting_updates(self.app.state), self.execution.timeout
        )
        self.signer_store = file_signer_store(self.dir / "signer.json")
        self.peers: Peers = LocalPeers({})
        self.outbox = Outbox(self.peers, s.call_timeout_s)
        self.driver: ShellDriver | None = None
        self.closed = False
        self.failed: str | None = None
        self.malformed = 0
        self.commits: deque[tuple[int, int, int, int]] = deque(maxlen=100_000)  # latency figures
        self._pending_build: BuildProposal | None = None
        self._build_timer: asyncio.TimerHandle | None = None
        self.watch = CommitWatch()
        self.long_lived = FreezeCommitted(enabled=in_ray_actor())  # the history, off the collector
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ahead = False  # saw a message more than one height ahead
        self._delivering: set[bytes] = set()  # certified blocks waiting for their payloads
        self.gauges = (
            ValidatorGauges(s.metrics_index, s.metrics_run, self.genesis.chain_id)
            if s.metrics_index >= 0 and in_ray_actor()
            else None
        )

    # --- lifecycle: the operator --------------------------------------------------------------
    async def connect(
        self, capability: bytes, peers: Sequence[Any], namespace: str | None = None
    ) -> int:
        """Set the peers: actor handles, actor names, or (in-process) `ValidatorNode` objects; this
        node itself may be in the list. Call again after a peer restarts with a new handle."""
        require(self.caps.operator, capability, "connect")
        self.peers = peers_of(peers, self, ValidatorNode, namespace)
        self.outbox.close()
        self.outbox = Outbox(self.peers, self.settings.call_timeout_s)
        return len(self.peers.names)

    async def start(self, capability: bytes) -> NodeStatus:
        """Resume consensus at the height after the last commit (idempotent)."""
        require(self.caps.operator, capability, "start")
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
            self.driver = ShellDriver(
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

    async def shutdown(self, capability: bytes) -> None:
        """Stop taking part and close the stores (the actor can then be killed)."""
        require(self.caps.operator, capability, "shutdown")
        if self.closed:
            return
        self.closed = True
        if self._build_timer is not None:
            self._build_timer.cancel()
        self.outbox.close()
        for task in list(self._tasks):
            task.cancel()
        self.watch.close()
        # an ingress batch, admission or execution in progress finishes before the stores close
        if self.ingress is not None:
            self.ingress.close()
        self.admission.shutdown(wait=True)
        self.execution.close()
        self.app.close()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _state_progress(self) -> tuple[int, int]:
        s = None if self.driver is None else self.driver.state
        return (-1, -1) if s is None else (s.round, s.step)

    # --- the driver's transport ---------------------------------------------------------------
    def broadcast(self, message: Any) -> None:
        self.outbox.send(encode_message(message))

    def schedule(self, t: ScheduleTimeout) -> None:
        self.timers.schedule(t)

    def now_ms(self) -> int:
        return int(time.time() * 1000)

    def _usable(self) -> bool:
        return self.driver is not None and not self.closed and not self.failed

    def _handle(self, event: Event) -> None:
        """Feed one event to the driver; a failure here (a store that cannot write) stops the node
        rather than letting it continue with an engine and a ledger that disagree."""
        if not self._usable():
            return
        try:
            self.driver.handle(event)  # type: ignore[union-attr]
        except Exception as exc:
            self._fail(exc)

    def _deliver_certified(self, block: Block, cert: CommitCertificate) -> None:
        """Hand a certified block to the engine, once every payload it needs is pinned here (the
        engine decides it at once, and executing it without them would stop the node)."""
        if not self._usable():
            return
        if self.app.missing_payloads(block):
            if block.hash not in self._delivering:
                self._delivering.add(block.hash)
                self._spawn(self._deliver_after_fetch(block, cert))
            return
        try:
            self.driver.deliver_certified(block, cert)  # type: ignore[union-attr]
        except Exception as exc:
            self._fail(exc)

    def _fail_if_usable(self, exc: BaseException) -> None:
        if self._usable():
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        log.exception("validator %s stops: %s", self.name, exc)
        self.failed = f"{type(exc).__name__}: {exc}"

    # --- asynchronous answers to engine requests ----------------------------------------------
    def _intercept(self, item: OutboxItem) -> bool:
        if isinstance(item, BuildProposal):
            if self._build_timer is not None:  # a request for an older round or height
                self._build_timer.cancel()
            self._pending_build = item
            pause = self.settings.block_interval_s
            if self.settings.round_gather_s > 0 and self.app.round_outstanding(wait=False):
                # the open round's updates are on their way: hold the block for them rather than
                # spend a block on a part of them; the admission completing them ends the wait
                pause = self.settings.round_gather_s
            elif pause <= 0 or len(self.app.mempool) > 0:
                self._build_now()
                return True
            self._build_timer = asyncio.get_running_loop().call_later(pause, self._build_now)
            return True
        if isinstance(item, CheckProposal):
            if self.app.missing_payloads(item.block):
                self._spawn(self._check_after_fetch(item.block))
            else:
                self._spawn(self._check(item.block))
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
        self._spawn(self._build(item))

    async def _build(self, item: BuildProposal) -> None:
        def built(block: Block) -> ProposalBuilt:
            return ProposalBuilt(item.height, item.round, block)

        args = (item.height, item.round, item.proposer, self.now_ms())
        await self.execution.run(built, self.app.prepare_proposal, *args)

    async def _check(self, block: Block) -> None:
        def checked(valid: bool) -> ProposalChecked:
            return ProposalChecked(block.height, block.hash, valid)

        await self.execution.run(checked, self.app.process_proposal, block)

    def _sign_request(self, digest: bytes) -> bytes:
        return sign_blob_request(self.key, self.genesis.chain_id, digest, self.now_ms())

    async def _fetch_until_pinned(self, block: Block) -> bool:
        def still_wanted() -> bool:
            return self._usable() and self.driver.state.height <= block.height  # type: ignore[union-attr]

        return await fetch_until_pinned(
            self.peers,
            self.app,
            block,
            self._sign_request,
            still_wanted,
            self.settings.gossip_s,
            MAX_FETCH_RETRY_S,
        )

    async def _check_after_fetch(self, block: Block) -> None:
        if await self._fetch_until_pinned(block):
            await self._check(block)

    async def _deliver_after_fetch(self, block: Block, cert: CommitCertificate) -> None:
        try:
            if await self._fetch_until_pinned(block):
                self._deliver_certified(block, cert)
        finally:
            self._delivering.discard(block.hash)

    # --- commits, observers -------------------------------------------------------------------
    def _on_decide(self, block: Block, cert: CommitCertificate) -> None:
        assert self.driver is not None
        h = block.height
        nxt = self.driver.state.schedule.next_height(self.app.validators(h + 1))
        save_schedule(self.app, h + 1, nxt)  # what the engine will use at h + 1, for restarts
        self.commits.append((h, cert.round, block.header.time, self.now_ms()))
        self.long_lived.committed(h)
        if self.gauges is not None:
            self.gauges.committed(h, len(block.txs), len(self.app.mempool))
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

    # --- peers: consensus messages ------------------------------------------------------------
    async def receive(self, batch: list[bytes]) -> None:
        """Consensus messages, as canonical bytes (see `transport`). Anyone may send them: each is
        signed, and the engine counts only validators' valid signatures for this chain."""
        if not isinstance(batch, list) or not self._usable():
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
            if self.gauges is not None:
                self.gauges.mempool(len(self.app.mempool))
            s = self.driver.state
            key = (s.height, s.round, s.step)
            stalled, last = key == last, key
            if stalled:
                for message in gossip(s):
                    self.broadcast(message)
            if stalled or self._ahead:
                self._ahead = False
                try:
                    await catch_up(
                        self.peers,
                        self.app,
                        self._deliver_certified,
                        self._usable,
                        self._sign_request,
                        status_timeout_s=4 * self.settings.gossip_s,
                    )
                except Exception:
                    log.exception("catch-up failed on %s", self.name)


ValidatorService = facade("ValidatorService", ValidatorNode, VALIDATOR_METHODS)
ValidatorActor = sealed(
    ray.remote(max_concurrency=MAX_CONCURRENCY, runtime_env=HARDENED)(ValidatorService)
)
