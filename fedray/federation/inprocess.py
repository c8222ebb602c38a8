"""A whole federation in one process, without Ray and without consensus messaging: N ledger apps
(each with its own directory, blob store and ingress), certified by all validator keys, and client
pools from the run config. Validator 0 proposes, every app checks and commits the same block.

It runs the real ledger, contracts, ingress, aggregation and clients, so tests and experiments that
are about *what the chain decides* (rounds, rewards, slashing, governance) run in seconds; `fedray
run` adds the Ray actors, the BFT protocol and the network around the same pieces.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedray.config import RunConfig
from fedray.core.crypto import PrivateKey, key_from_seed
from fedray.core.devchain import certify
from fedray.core.state import State
from fedray.federation.clients import ClientPool, Submission
from fedray.federation.driver import RunError
from fedray.federation.plan import Federation
from fedray.node.app import LedgerApp
from fedray.node.ingress import Admitted, Ingress, Refused
from fedray.storage.tensors import TensorSpec

Tamper = Callable[[Submission], Submission]


@dataclass
class RoundReport:
    round: int
    submitted: int
    refused: list[Refused] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)  # clients that declared a missed update


class InProcessFederation:
    def __init__(self, root: str | Path, cfg: RunConfig, validators: int = 4) -> None:
        self.cfg = cfg
        self.fed = Federation(cfg)
        self.keys: list[PrivateKey] = [
            key_from_seed(f"{cfg.chain.chain_id}/inprocess/{i}".encode()) for i in range(validators)
        ]
        self.initial = self.fed.initial_model()
        self.genesis = self.fed.genesis([k.public_key for k in self.keys], self.initial)
        self.apps = [  # validator 0 proposes for whichever validator's turn it is: it holds all keys
            LedgerApp(Path(root) / f"validator-{i}", self.genesis, keys=self.keys)
            for i in range(validators)
        ]
        spec = TensorSpec.of(self.initial)
        self.ingress = [
            Ingress(self.genesis.chain_id, self.genesis.params.max_tx_bytes, a.blobs, spec)
            for a in self.apps
        ]
        for app in self.apps:
            app.blobs.put(self.initial)
        self.pools = [ClientPool(cfg, clients) for clients in self.fed.pools()]

    @property
    def state(self) -> State:
        return self.apps[0].state

    def block(self) -> None:
        """Propose (validator 0), check and commit one block on every app."""
        a0 = self.apps[0]
        height = a0.height + 1
        proposer = a0.state.validators.keys[height % len(a0.state.validators)]
        interval_ms = int(self.cfg.chain.block_interval_s * 1000)  # block time, as on Ray
        block = a0.prepare_proposal(height, 0, proposer, a0.state.last_block_time + interval_ms)
        if not all(app.process_proposal(block) for app in self.apps):
            raise RunError(f"an app refused block {height}")
        cert = certify(
            block,
            [k for k in self.keys if k.public_key in a0.state.validators],
            self.genesis.chain_id,
        )
        for app in self.apps:
            app.finalize_block(block, cert)
            app.commit()

    def submit(
        self, raw: bytes, payload: Any = None, signature: bytes = b""
    ) -> list[Admitted | Refused]:
        """Send a transaction (and payload) to every validator's ingress, as a client does;
        provable misbehaviour becomes a `payload_evidence` transaction of that validator."""
        out: list[Admitted | Refused] = []
        for app, ingress, key in zip(self.apps, self.ingress, self.keys, strict=True):
            result = ingress.admit(raw, payload, signature)
            if isinstance(result, Admitted):
                app.submit(raw, signature_verified=True)
            elif result.evidence is not None:
                app.submit_own(result.evidence, key)
            out.append(result)
        return out

    def train_round(self, tamper: Tamper | None = None) -> RoundReport:
        """Train and submit the open round's selected clients (all pools)."""
        rs = self.state.section("rounds")
        if not rs.open:
            raise RunError("no round is open")
        model = self.apps[0].blobs.get(rs.global_hash)
        nonces = {k: self.state.account(k).nonce for k in rs.selected}
        p = self.state.params
        report = RoundReport(rs.round, 0)
        for pool in self.pools:
            answer = pool.train_round(
                rs.round,
                model,
                rs.global_hash,
                list(rs.selected),
                nonces,
                p.fl_local_epochs,
                float(p.fl_learning_rate),
                (p.dp_mode, p.dp_clip_norm_fp, p.dp_noise_milli),
            )
            for sub in answer.submissions:
                if tamper is not None:
                    sub = tamper(sub)
                results = self.submit(sub.tx, sub.payload, sub.delivery_signature)
                report.submitted += 1
                report.refused += [r for r in results[:1] if isinstance(r, Refused)]
            for raw in answer.skips:  # clients without an update declare the miss
                self.submit(raw)
            report.failed.update(answer.failed)
        return report

    def run_round(self, tamper: Tamper | None = None, max_blocks: int = 1000) -> RoundReport:
        """Train the open round and produce blocks until it closes."""
        report = self.train_round(tamper)
        self.close_round(report.round, max_blocks)
        return report

    def close_round(self, round_: int, max_blocks: int = 1000) -> None:
        """Produce blocks until round `round_` has closed."""
        for _ in range(max_blocks):
            if self.state.section("rounds").round > round_:
                return
            self.block()
        if self.state.section("rounds").round <= round_:
            raise RunError(f"round {round_} did not close in {max_blocks} blocks")

    def close(self) -> None:
        for app in self.apps:
            app.close()
