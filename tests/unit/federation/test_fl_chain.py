"""The federated round trip without Ray: four ledger apps, ingress, client pools, real training and
real aggregation (`fedray.federation.inprocess`). Checks the chain's rules end to end."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from fedray.cli import main as cli_main
from fedray.config import load_config
from fedray.core.tx import SignedTx
from fedray.federation.clients import Submission
from fedray.federation.evaluate import Evaluator
from fedray.federation.inprocess import InProcessFederation
from fedray.node.ingress import Admitted, Refused

MINIMAL = Path(__file__).resolve().parents[3] / "fedray" / "conf" / "preset" / "minimal.yaml"


def federation(root: Path, overrides: list[str]) -> InProcessFederation:
    return InProcessFederation(root, load_config(MINIMAL, overrides))


def test_rounds_on_chain(tmp_path: Path) -> None:
    net = federation(tmp_path, ["rounds=3"])
    evaluator = Evaluator(net.fed)
    initial_acc = evaluator.evaluate(net.initial).accuracy
    net.block()  # opens round 0
    for _ in range(3):
        report = net.run_round()
        assert report.submitted == 6 and not report.refused
    rs = net.state.section("rounds")
    assert [r.reason for r in rs.results] == ["quota"] * 3 and not rs.open  # max rounds reached
    final = net.apps[0].blobs.get(rs.global_hash)
    assert evaluator.evaluate(final).accuracy > initial_acc + 0.2
    assert len({a.state.root() for a in net.apps}) == 1
    assert not net.state.section("penalties")  # honest clients are never penalized
    net.close()
    assert cli_main(["chain", "verify", str(tmp_path), "--recompute"]) == 0


def tamper_first(round_: int) -> object:
    """A client that delivers a payload other than the one its transaction signed."""
    done: list[bool] = []

    def tamper(sub: Submission) -> Submission:
        if done:
            return sub
        done.append(True)
        name = next(iter(sub.payload))
        payload = {**sub.payload, name: sub.payload[name] + np.int32(1)}
        return replace(sub, payload=payload)

    return tamper


def test_bad_payload_rejected_and_round_closes_at_deadline(tmp_path: Path) -> None:
    net = federation(
        tmp_path, ["rounds=1", "chain.round_deadline_blocks=3", "chain.round_timeout_s=0"]
    )
    net.block()
    report = net.train_round(tamper_first(0))  # type: ignore[arg-type]
    assert [r.rejection.code for r in report.refused] == ["payload_hash"]
    assert report.refused[0].evidence is None  # the delivery signature no longer matches: no proof
    net.block()
    rs = net.state.section("rounds")
    assert rs.open and len(rs.updates) == report.submitted - 1  # the tampered one never got in
    while net.state.section("rounds").open:
        net.block()
    result = net.state.section("rounds").results[-1]
    assert result.reason == "deadline" and len(result.updates) == report.submitted - 1


def test_signed_mismatched_delivery_is_slashed(tmp_path: Path) -> None:
    net = federation(tmp_path, ["rounds=1"])
    net.block()
    pool = net.pools[0]

    def lie(sub: Submission) -> Submission:
        if sub.client != 0:
            return sub
        name = next(iter(sub.payload))
        payload = {**sub.payload, name: sub.payload[name] + np.int32(1)}
        return replace(sub, payload=payload, delivery_signature=pool.sign_delivery(0, 0, payload))

    report = net.train_round(lie)
    assert [r.evidence is not None for r in report.refused] == [True]
    offender = pool.keys[0].public_key
    stake_before = net.state.account(offender).stake
    net.block()  # the evidence transactions of all four validators; the first applies
    penalties = [p for p in net.state.section("penalties").values() if p.kind == "invalid_payload"]
    assert len(penalties) == 1 and penalties[0].offender == offender
    assert net.state.account(offender).stake == stake_before - penalties[0].burned > 0


def test_mempool_records_late_updates(tmp_path: Path) -> None:
    net = federation(
        tmp_path, ["rounds=2", "chain.round_deadline_blocks=2", "chain.round_timeout_s=0"]
    )
    net.block()
    rs = net.state.section("rounds")
    model = net.apps[0].blobs.get(rs.global_hash)
    subs = net.pools[0].train_round(0, model, rs.global_hash, list(rs.selected), {}, 1, 0.05)
    subs = subs.submissions
    net.block()
    net.block()  # deadline passed without updates
    assert net.state.section("rounds").results[-1].reason == "deadline"
    ing, app = net.ingress[0], net.apps[0]
    assert isinstance(ing.admit(subs[0].tx, subs[0].payload, subs[0].delivery_signature), Admitted)
    rejection = app.submit(subs[0].tx, signature_verified=True)
    assert rejection is not None and rejection.code == "round_closed"
    app.close()
    log = (tmp_path / "validator-0" / "rejections.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in log]
    assert records[-1]["code"] == "round_closed" and records[-1]["kind"] == "update"


def test_ingress_validation_order(tmp_path: Path) -> None:
    net = federation(tmp_path, ["rounds=1"])
    net.block()
    rs = net.state.section("rounds")
    model = net.apps[0].blobs.get(rs.global_hash)
    answer = net.pools[0].train_round(0, model, rs.global_hash, list(rs.selected), {}, 1, 0.05)
    s = answer.submissions[0]
    ing = net.ingress[0]
    name = next(iter(s.payload))
    cases = {
        "payload_missing": None,
        "payload_hash": {**s.payload, name: s.payload[name] * 2},
        "payload_size": {**s.payload, name: np.zeros(10**6, np.int32)},
        "bad_signature": "flip",
    }
    for code, payload in cases.items():
        raw = s.tx
        if isinstance(payload, str):
            raw, payload = raw[:-1] + bytes([raw[-1] ^ 1]), s.payload
        result = ing.admit(raw, payload, s.delivery_signature)
        assert isinstance(result, Refused) and result.rejection.code == code, (code, result)
    payload_hash = SignedTx.decode(s.tx).tx.payload["payload_hash"]
    assert not net.apps[0].blobs.has(payload_hash)  # nothing refused was pinned
    assert isinstance(ing.admit(s.tx, s.payload, s.delivery_signature), Admitted)
    assert net.apps[0].blobs.has(payload_hash)


@pytest.mark.parametrize("rule", ["fedavg", "median", "centered_clipping", "krum"])
def test_validators_agree_per_rule(tmp_path: Path, rule: str) -> None:
    net = federation(tmp_path, ["rounds=1", f"strategy={rule}"])
    net.block()
    net.run_round()
    hashes = {a.state.section("rounds").global_hash for a in net.apps}
    assert len(hashes) == 1 and net.state.section("rounds").results[-1].reason == "quota"


def test_a_client_whose_training_fails_skips_and_the_round_does_not_wait(tmp_path: Path) -> None:
    net = federation(tmp_path, ["rounds=1"])  # the minimal preset: 120 s of block time to wait
    net.block()
    bad = net.pools[0].shards[2]
    x = bad.x.copy()
    x[:, 0] = np.nan  # its training yields NaN: no update this round
    net.pools[0].shards[2] = replace(bad, x=x)
    report = net.run_round()
    assert list(report.failed) == [2] and report.submitted == 5
    result = net.state.section("rounds").results[-1]
    key = net.fed.client_key(2).public_key
    assert result.reason == "quota" and result.skipped == (key,)
    assert result.closed_at - result.opened_at <= 2  # one block for the updates and the skip
    assert not net.state.section("penalties")  # a missed update is no offence
    net.close()
