"""The real ledger app under the consensus simulator (`fedray.node.sim_ledger`), and the ledger
app's side of issue 12: a proposal carries only evidence of earlier heights."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest

from fedray.consensus.sim import SimConfig, run
from fedray.consensus.sim_app import ChainSpec
from fedray.core.block import PREVOTE, CommitCertificate, Vote
from fedray.core.crypto import PrivateKey
from fedray.core.devchain import certify, dev_genesis
from fedray.core.encoding import digest
from fedray.core.evidence import Evidence
from fedray.core.tx import SignedTx
from fedray.node.app import LedgerApp
from fedray.node.sim_ledger import CHAIN_ID, LedgerChain, main

GENESIS_TIME = 1_700_000_000_000


def equivocation(key_index: int, height: int, chain_id: str = "fedray-dev") -> Evidence:
    _, keys, _ = dev_genesis(chain_id)
    key = keys[key_index]
    a, b = (
        Vote(PREVOTE, height, 0, digest(tag), key.public_key).signed(key, chain_id)
        for tag in (b"a", b"b")
    )
    return Evidence.of(a, b)


def commit_next(apps: Sequence[LedgerApp], keys: Sequence[PrivateKey], chain_id: str) -> None:
    """The first app proposes the next block; every app finalizes and commits it."""
    app = apps[0]
    height = app.height + 1
    block = app.prepare_proposal(height, 0, keys[0].public_key, GENESIS_TIME + 1000 * height)
    cert: CommitCertificate = certify(block, list(keys), chain_id)
    for a in apps:
        assert a.process_proposal(block)
        a.finalize_block(block, cert)
        a.commit()


def test_a_proposal_carries_only_evidence_of_earlier_heights(tmp_path: Path) -> None:
    genesis, keys, _ = dev_genesis()
    app = LedgerApp(tmp_path, genesis, keys=keys)
    app.add_evidence(equivocation(3, 1))  # an equivocation in a failed round of height 1
    first = app.prepare_proposal(1, 1, keys[0].public_key, GENESIS_TIME + 1000)
    assert first.evidence == ()  # the core would refuse it in block 1...
    assert app.process_proposal(first)
    commit_next([app], keys, genesis.chain_id)
    second = app.prepare_proposal(2, 0, keys[0].public_key, GENESIS_TIME + 2000)
    assert len(second.evidence) == 1  # ...and takes it in block 2
    assert app.process_proposal(second)
    app.close()


def test_a_withheld_payload_splits_the_honest_verdicts() -> None:
    chain = LedgerChain(ChainSpec(4, (10_000,) * 4))
    try:
        apps, keys = chain.apps, list(chain.keys)
        commit_next(apps, keys, CHAIN_ID)  # opens FL round 0
        block = chain.withheld_block(0, 2, GENESIS_TIME + 5000, holders=[1])
        assert block is not None and len(block.txs) == 1
        assert SignedTx.decode(block.txs[0]).tx.kind == "update"
        assert [a.process_proposal(block) for a in apps[1:]] == [True, False, False]
    finally:
        chain.close()
    assert not chain.root.exists()


class Probe(LedgerChain):
    """Counts what the committed chains hold before the schedule's directories go away."""

    seen: Counter[str] = Counter()

    def close(self) -> None:
        app = self.apps[self.honest[0]]
        for height in range(1, app.height + 1):
            pair = app.committed(height)
            assert pair is not None
            for raw in pair[0].txs:
                Probe.seen["tx:" + SignedTx.decode(raw).tx.kind] += 1
        Probe.seen["standby_joined"] += self.keys[-1].public_key in app.state.validators
        super().close()


def test_ledger_schedules_are_safe_live_and_change_the_validator_set() -> None:
    Probe.seen.clear()
    rs = run(SimConfig(byzantine=1, standby=1, heights=4, seed=40), 12, chains=Probe)
    assert all(r.failed_check is None for r in rs), [r.notes for r in rs if r.notes]
    assert sum(r.evidence for r in rs) > 0
    seen = Probe.seen
    assert seen["tx:stake"] and seen["tx:unstake"] and seen["tx:register"], seen
    assert seen["standby_joined"] > 0


def test_the_ledger_cli_runs_the_simulator(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--byzantine", "1", "--schedules", "3", "--heights", "2"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("schedules=3 ") and "safety_violations=0 " in line


@pytest.mark.slow
@pytest.mark.parametrize(
    ("cfg", "schedules"),
    [
        (SimConfig(validators=4, byzantine=1, standby=1, heights=5, seed=140), 150),
        (SimConfig(validators=7, byzantine=2, standby=1, heights=3, seed=141), 50),
    ],
)
def test_many_ledger_schedules_are_safe_and_live(cfg: SimConfig, schedules: int) -> None:
    rs = run(cfg, schedules, chains=LedgerChain)
    assert not [r.notes for r in rs if r.failed_check is not None]
