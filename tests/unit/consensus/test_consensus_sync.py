"""Catch-up and the reference driver: engines on `SimApp` over a perfect in-memory network commit
the same chain; a node that was away catches up from certified blocks; bad certificates are refused."""

from __future__ import annotations

from collections import deque
from pathlib import Path

import pytest

from fedray.consensus.driver import Driver, MemorySignerStore, file_signer_store
from fedray.consensus.messages import Message, ScheduleTimeout, TimeoutFired
from fedray.consensus.proposer import ProposerSchedule
from fedray.consensus.sim_app import ExecCache, SimApp
from fedray.consensus.state import EngineConfig, TimeoutConfig
from fedray.consensus.sync import SyncBuffer, batch_for, verify_certified, wanted_heights
from fedray.core.block import CommitCertificate
from fedray.core.devchain import dev_genesis
from fedray.errors import CertificateError

CHAIN = "sync-test"


class Net:
    """Instant, lossless delivery in send order; timers fire only when the network is quiet."""

    def __init__(self, n: int, tmp: Path | None = None) -> None:
        genesis, self.keys, _ = dev_genesis(CHAIN, n_validators=n, n_accounts=0)
        self.state0 = genesis.state()
        self.schedule = ProposerSchedule.genesis(self.state0.validators)
        self.queue: deque[tuple[int, Message]] = deque()
        self.timers: list[tuple[int, ScheduleTimeout]] = []
        self.cache = ExecCache()
        self.drivers: list[Driver] = []
        for i, key in enumerate(self.keys):
            store = file_signer_store(tmp / f"{i}.json") if tmp and i == 0 else MemorySignerStore()
            app = SimApp(self.state0, key, self.cache)
            cfg = EngineConfig(CHAIN, key, TimeoutConfig())
            self.drivers.append(Driver.open(cfg, app, store, _Link(self, i), self.schedule))

    def run(self, active: list[int], until_height: int, max_events: int = 20_000) -> None:
        for i in active:
            self.drivers[i].start()
        for _ in range(max_events):
            if all(self.drivers[i].app.height >= until_height for i in active):
                return
            if self.queue:
                dst, msg = self.queue.popleft()
                if dst in active:
                    self.drivers[dst].handle(msg)
            elif self.timers:
                i, t = self.timers.pop(0)
                if i in active:
                    self.drivers[i].handle(TimeoutFired(t.height, t.round, t.step))
            else:
                break
        raise AssertionError("no progress")


class _Link:
    def __init__(self, net: Net, me: int) -> None:
        self.net, self.me = net, me

    def broadcast(self, message: Message) -> None:
        for j in range(len(self.net.keys)):
            if j != self.me:
                self.net.queue.append((j, message))

    def schedule(self, timeout: ScheduleTimeout) -> None:
        self.net.timers.append((self.me, timeout))

    def now_ms(self) -> int:
        return self.net.state0.last_block_time + 1000


def test_drivers_commit_the_same_chain_and_a_late_node_syncs(tmp_path: Path) -> None:
    net = Net(4, tmp_path)
    net.run([0, 1, 2], until_height=4)  # node 3 is away: 3 of 4 is still a quorum
    apps = [d.app for d in net.drivers]
    assert apps[3].height == 0
    chain = [b.hash for b in apps[0].blocks]
    assert all([b.hash for b in a.blocks][:3] == chain[:3] for a in apps[:3])
    assert file_signer_store(tmp_path / "0.json").load() == net.drivers[0].state.signer
    # node 3 comes back: the peers' committed blocks and certificates bring it up to date
    late = net.drivers[3]
    batch = batch_for(apps[0], 1, apps[0].height + 1)
    assert batch is not None
    for b, cert in reversed(batch.items):  # any order: the buffer sorts them out
        late.deliver_certified(b, cert)
    assert [b.hash for b in late.app.blocks] == chain
    assert late.state.height == apps[0].height + 1


def test_certificates_are_checked_against_the_validator_set() -> None:
    net = Net(4)
    net.run([0, 1, 2, 3], until_height=1)
    app = net.drivers[0].app
    b, cert = app.committed(1)
    validators = net.state0.validators
    verify_certified(CHAIN, validators, b, cert)
    weak = CommitCertificate(cert.height, cert.round, cert.block_hash, cert.signatures[:2])
    with pytest.raises(CertificateError, match="voting power"):
        verify_certified(CHAIN, validators, b, weak)
    other = CommitCertificate(2, cert.round, cert.block_hash, cert.signatures)
    with pytest.raises(CertificateError):
        verify_certified(CHAIN, validators, b, other)
    with pytest.raises(CertificateError):
        verify_certified("another-chain", validators, b, cert)


def test_sync_buffer_and_what_to_serve() -> None:
    assert list(wanted_heights(3, 10, max_batch=4)) == [3, 4, 5, 6]
    assert list(wanted_heights(10, 10)) == [] and list(wanted_heights(0, 5)) == []
    net = Net(4)
    net.run([0, 1, 2, 3], until_height=2)
    app = net.drivers[0].app
    (b1, c1), (b2, c2) = app.committed(1), app.committed(2)
    buf = SyncBuffer().add(b2, c2, our_height=1).add(b1, c1, our_height=1)
    assert buf.add(b1, c1, our_height=2) is buf  # already committed here: ignored
    assert buf.add(b1, c1, our_height=1) is buf  # already waiting: the first one stays
    pair, rest = buf.take(1)
    assert pair == (b1, c1) and dict(rest.pending) == {2: (b2, c2)}
