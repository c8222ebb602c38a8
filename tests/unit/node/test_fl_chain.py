"""The federated round trip without Ray: four ledger apps, ingress, a client pool, real training and
real aggregation; certificates from all validators. Checks the chain's rules end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fedray.cli import main as cli_main
from fedray.config import load_config
from fedray.core.crypto import key_from_seed
from fedray.core.devchain import certify
from fedray.node.app import LedgerApp
from fedray.node.ingress import Admitted, Ingress
from fedray.node.mempool import Rejection
from fedray.runtime.clients import ClientPool
from fedray.runtime.evaluate import Evaluator
from fedray.runtime.federation import Federation
from fedray.storage.tensors import TensorSpec


class LocalNet:
    """Four validators in one process; validator 0 proposes, all check, all sign."""

    def __init__(self, root: Path, overrides: list[str]) -> None:
        self.cfg = load_config("conf/preset/minimal.yaml", overrides)
        self.fed = Federation(self.cfg)
        self.keys = [key_from_seed(f"node-test/{i}".encode()) for i in range(4)]
        self.initial = self.fed.initial_model()
        self.genesis = self.fed.genesis([k.public_key for k in self.keys], self.initial)
        self.apps = [LedgerApp(root / f"v{i}", self.genesis) for i in range(4)]
        spec = TensorSpec.of(self.initial)
        self.ingress = [Ingress(self.genesis.chain_id, 4096, a.blobs, spec) for a in self.apps]
        for a in self.apps:
            a.blobs.put(self.initial)
        self.pool = ClientPool(self.cfg, list(range(self.cfg.clients)))

    def block(self) -> None:
        a0 = self.apps[0]
        h = a0.height + 1
        block = a0.prepare_proposal(h, 0, self.keys[h % 4].public_key, 0)
        assert all(a.process_proposal(block) for a in self.apps)
        cert = certify(block, self.keys, self.genesis.chain_id)
        for a in self.apps:
            a.finalize_block(block, cert)
            a.commit()

    def submit_round(self, tamper: bool = False) -> list[Admitted | Rejection]:
        rs = self.apps[0].state.section("rounds")
        model = self.apps[0].blobs.get(rs.global_hash)
        nonces = {k: self.apps[0].state.account(k).nonce for k in rs.selected}
        subs = self.pool.train_round(rs.round, model, rs.global_hash, list(rs.selected), nonces,
                                     1, 0.05)  # fmt: skip
        out: list[Admitted | Rejection] = []
        for n, s in enumerate(subs):
            payload = s.payload
            if tamper and n == 0:
                name = next(iter(payload))
                payload = {**payload, name: payload[name] + np.int32(1)}
            for ing, app in zip(self.ingress, self.apps, strict=True):
                result = ing.admit(s.tx, payload)
                if isinstance(result, Admitted):
                    assert app.submit(s.tx, signature_verified=True) is None
            out.append(result)
        return out


def test_rounds_on_chain(tmp_path: Path) -> None:
    net = LocalNet(tmp_path, ["rounds=3"])
    evaluator = Evaluator(net.fed)
    initial_acc = evaluator.evaluate(net.initial).accuracy
    net.block()  # opens round 0
    for _ in range(3):
        assert all(isinstance(r, Admitted) for r in net.submit_round())
        net.block()  # quota in: closes the round, opens the next
    rs = net.apps[0].state.section("rounds")
    assert [r.reason for r in rs.results] == ["quota"] * 3 and not rs.open  # max rounds reached
    final = net.apps[0].blobs.get(rs.global_hash)
    assert evaluator.evaluate(final).accuracy > initial_acc + 0.2
    roots = {a.state.root() for a in net.apps}
    assert len(roots) == 1
    for a in net.apps:
        a.close()
    assert cli_main(["chain", "verify", str(tmp_path), "--recompute"]) == 0


def test_bad_payload_rejected_and_round_closes_at_deadline(tmp_path: Path) -> None:
    net = LocalNet(tmp_path, ["rounds=1", "chain.round_deadline_blocks=3"])
    net.block()
    results = net.submit_round(tamper=True)
    assert isinstance(results[0], Rejection) and results[0].code == "payload_hash"
    assert all(isinstance(r, Admitted) for r in results[1:])
    net.block()
    rs = net.apps[0].state.section("rounds")
    assert rs.open and len(rs.updates) == len(results) - 1  # the tampered one never got in
    while net.apps[0].state.section("rounds").open:
        net.block()
    result = net.apps[0].state.section("rounds").results[-1]
    assert result.reason == "deadline" and len(result.updates) == len(results) - 1


def test_mempool_records_late_updates(tmp_path: Path) -> None:
    net = LocalNet(tmp_path, ["rounds=2", "chain.round_deadline_blocks=2"])
    net.block()
    rs = net.apps[0].state.section("rounds")
    model = net.apps[0].blobs.get(rs.global_hash)
    subs = net.pool.train_round(0, model, rs.global_hash, list(rs.selected), {}, 1, 0.05)
    net.block()
    net.block()  # deadline passed without updates
    assert net.apps[0].state.section("rounds").results[-1].reason == "deadline"
    ing, app = net.ingress[0], net.apps[0]
    assert isinstance(ing.admit(subs[0].tx, subs[0].payload), Admitted)
    rejection = app.submit(subs[0].tx, signature_verified=True)
    assert rejection is not None and rejection.code == "round_closed"
    app.close()
    records = [
        json.loads(line) for line in (tmp_path / "v0" / "rejections.jsonl").read_text().splitlines()
    ]
    assert records[-1]["code"] == "round_closed" and records[-1]["kind"] == "update"


def test_ingress_validation_order(tmp_path: Path) -> None:
    net = LocalNet(tmp_path, ["rounds=1"])
    net.block()
    rs = net.apps[0].state.section("rounds")
    model = net.apps[0].blobs.get(rs.global_hash)
    s = net.pool.train_round(0, model, rs.global_hash, list(rs.selected), {}, 1, 0.05)[0]
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
        if payload == "flip":
            raw, payload = raw[:-1] + bytes([raw[-1] ^ 1]), s.payload
        result = ing.admit(raw, payload)
        assert isinstance(result, Rejection) and result.code == code, (code, result)
    from fedray.core.tx import SignedTx

    payload_hash = SignedTx.decode(s.tx).tx.payload["payload_hash"]
    assert not net.apps[0].blobs.has(payload_hash)  # nothing rejected was pinned
    assert isinstance(ing.admit(s.tx, s.payload), Admitted)
    assert net.apps[0].blobs.has(payload_hash)


@pytest.mark.parametrize("rule", ["fedavg", "median", "centered_clipping"])
def test_validators_agree_per_rule(tmp_path: Path, rule: str) -> None:
    net = LocalNet(tmp_path, ["rounds=1", f"strategy={rule}"])
    net.block()
    net.submit_round()
    net.block()
    hashes = {a.state.section("rounds").global_hash for a in net.apps}
    assert len(hashes) == 1 and net.apps[0].state.section("rounds").results[-1].reason == "quota"
