"""A reference shell: runs one engine against an application, a signer store and a transport.

It applies each outbox item in order, which is the contract the engine relies on:
`PersistSignerState` is saved (durably, for a file store) before the following `Broadcast` leaves;
application requests are answered by events queued after the rest of the outbox; a `Decide` is
finalized and committed before the engine hears `NewHeight`. Certified blocks from peers wait in a
`SyncBuffer` until the engine reaches their height.

Synchronous and single-threaded, with no Ray and no clock of its own (the transport supplies time and
timers), so the simulator uses it as is and the Ray validator actor can wrap it.

Deliberately ignored: peer selection, retries and back-pressure (the transport's business).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from fedray.consensus.app import Application
from fedray.consensus.engine import step
from fedray.consensus.messages import (
    Broadcast,
    BuildProposal,
    CertifiedBlock,
    CheckProposal,
    CommitExtended,
    Decide,
    Event,
    EvidenceFound,
    Message,
    NewHeight,
    OutboxItem,
    PersistSignerState,
    ProposalBuilt,
    ProposalChecked,
    ScheduleTimeout,
    Start,
)
from fedray.consensus.proposer import ProposerSchedule
from fedray.consensus.signer import STEP_NAMES, SignerState
from fedray.consensus.state import EngineConfig, EngineState, initial_state
from fedray.consensus.sync import SyncBuffer
from fedray.core.block import Block, CommitCertificate
from fedray.core.evidence import Evidence
from fedray.storage.signer_state import FileSignerStore


class SignerStore(Protocol):
    def load(self) -> SignerState: ...

    def save(self, state: SignerState) -> None: ...


class MemorySignerStore:
    """Signer state in memory: for tests, and the simulator (its "disk" survives a crash)."""

    def __init__(self, state: SignerState | None = None) -> None:
        self.state = state or SignerState()

    def load(self) -> SignerState:
        return self.state

    def save(self, state: SignerState) -> None:
        self.state = state


class SignerStateCodec:
    """`SignerState` for `fedray.storage.signer_state.FileSignerStore`."""

    def empty(self) -> SignerState:
        return SignerState()

    def to_bytes(self, state: SignerState) -> bytes:
        return state.to_bytes()

    def from_bytes(self, raw: bytes) -> SignerState:
        return SignerState.from_bytes(raw)

    def summary(self, state: SignerState) -> dict[str, Any]:
        step = STEP_NAMES.get(state.step, str(state.step))
        return {"height": state.height, "round": state.round, "step": step}


def file_signer_store(path: str | Path) -> FileSignerStore[SignerState]:
    """The durable signer store of a validator: one file, replaced atomically on every save."""
    return FileSignerStore(path, SignerStateCodec())


class Transport(Protocol):
    def broadcast(self, message: Message) -> None: ...

    def schedule(self, timeout: ScheduleTimeout) -> None: ...

    def now_ms(self) -> int: ...


class Driver:
    """One validator's consensus loop, minus the network and the clock."""

    def __init__(
        self,
        state: EngineState,
        app: Application,
        signer_store: SignerStore,
        transport: Transport,
        on_decide: Callable[[Block, CommitCertificate], None] | None = None,
        on_evidence: Callable[[Evidence], None] | None = None,
    ) -> None:
        self.state = state
        self.app = app
        self.signer_store = signer_store
        self.transport = transport
        self.on_decide = on_decide
        self.on_evidence = on_evidence
        self.sync = SyncBuffer()

    @staticmethod
    def open(
        config: EngineConfig,
        app: Application,
        signer_store: SignerStore,
        transport: Transport,
        schedule: ProposerSchedule,
        **hooks: Callable[..., None],
    ) -> Driver:
        """A driver for the height after the application's last commit, resuming from the signer
        store (after a restart). `schedule` is the proposer schedule of that height."""
        height = app.height + 1
        state = initial_state(config, height, app.validators(height), schedule, signer_store.load())
        return Driver(state, app, signer_store, transport, **hooks)

    def start(self) -> None:
        self.handle(Start())

    def deliver_certified(self, block: Block, certificate: CommitCertificate) -> None:
        """A committed block from a peer: buffer it, and hand it over if it is for our height."""
        self.sync = self.sync.add(block, certificate, self.state.height)
        if block.height == self.state.height and self.state.decision is None:
            pair, self.sync = self.sync.take(block.height)
            if pair is not None:
                self.handle(CertifiedBlock(*pair))

    def handle(self, event: Event) -> None:
        queue: deque[Event] = deque([event])
        while queue:
            self.state, outbox = step(self.state, queue.popleft())
            for item in outbox:
                self._apply(item, queue)

    def _apply(self, item: OutboxItem, queue: deque[Event]) -> None:
        if isinstance(item, PersistSignerState):
            self.signer_store.save(item.signer)
        elif isinstance(item, Broadcast):
            self.transport.broadcast(item.message)
        elif isinstance(item, ScheduleTimeout):
            self.transport.schedule(item)
        elif isinstance(item, BuildProposal):
            block = self.app.prepare_proposal(
                item.height, item.round, item.proposer, self.transport.now_ms()
            )
            queue.append(ProposalBuilt(item.height, item.round, block))
        elif isinstance(item, CheckProposal):
            b = item.block
            queue.append(ProposalChecked(b.height, b.hash, self.app.process_proposal(b)))
        elif isinstance(item, Decide):
            self.app.finalize_block(item.block, item.certificate)
            self.app.commit()
            if self.on_decide is not None:
                self.on_decide(item.block, item.certificate)
            nxt = item.block.height + 1
            queue.append(NewHeight(nxt, self.app.validators(nxt)))
            pair, self.sync = self.sync.take(nxt)
            if pair is not None:
                queue.append(CertifiedBlock(*pair))
        elif isinstance(item, EvidenceFound):
            self.app.add_evidence(item.evidence)
            if self.on_evidence is not None:
                self.on_evidence(item.evidence)
        elif isinstance(item, CommitExtended):
            self.app.extend_commit(item.certificate)
