"""Scripted governance for reproducible runs: the config's `governance` actions become signed
transactions at the rounds they name.

When round r opens, each action of round r becomes a `propose` transaction signed by validator 0
with the minimum deposit. Once the chain shows the proposal (matched by proposer and content), the
validators vote as the action says (signed with their keys, which a simulated run holds) and the
client pools sign their clients' votes. Everything else (voting start, tally, timelock, execution at
one height on every validator) is the chain's business.

Ray-free: the driver moves the transactions; tests can use it with the in-process federation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fedray.config import GovernanceAction
from fedray.core.contracts.governance import Propose, Vote
from fedray.core.crypto import PrivateKey
from fedray.core.tx import make_tx
from fedray.errors import ConfigError
from fedray.federation.plan import Federation
from fedray.node.views import ProposalView

FINISHED = ("executed", "failed", "rejected", "vetoed", "expired")


@dataclass
class Pending:
    index: int
    action: GovernanceAction
    payload: Propose
    proposal_id: int | None = None
    voted: bool = False
    status: str = "submitted"
    record: ProposalView | None = None


class GovernanceScript:
    def __init__(self, fed: Federation, validator_keys: list[PrivateKey], chain_id: str) -> None:
        self.fed = fed
        self.keys = validator_keys
        self.chain_id = chain_id
        self.pending: list[Pending] = []

    def _account(self, spec: str) -> bytes:
        kind, _, index = spec.partition(":")
        if kind == "client" and index.isdigit():
            return self.fed.client_key(int(index)).public_key
        if kind == "validator" and index.isdigit() and int(index) < len(self.keys):
            return self.keys[int(index)].public_key
        try:
            key = bytes.fromhex(spec)
        except ValueError:
            key = b""
        if len(key) != 32:
            raise ConfigError(f"governance account {spec!r}: use client:<i>, validator:<i> or hex")
        return key

    def payload(self, action: GovernanceAction, deposit: int, global_hash: bytes) -> Propose:
        if action.kind == "param_change":
            return Propose(
                "param_change",
                deposit,
                action.expedited,
                param_key=action.key,
                param_value=str(action.value),
            )
        if action.kind == "admit":
            return Propose(
                "admit",
                deposit,
                action.expedited,
                account=self._account(action.account),
                role=action.role,
            )
        if action.kind == "ban":
            return Propose("ban", deposit, action.expedited, account=self._account(action.account))
        model = global_hash if action.model == "current" else bytes.fromhex(action.model)
        return Propose(
            "model_release", deposit, action.expedited, model_hash=model, terms=action.terms
        )

    def due(self, round_: int, deposit: int, global_hash: bytes, nonce: int) -> list[bytes]:
        """`propose` transactions for the actions of `round_`, signed by validator 0 from `nonce`."""
        out = []
        for i, action in enumerate(self.fed.cfg.governance):
            if action.round != round_:
                continue
            payload = self.payload(action, deposit, global_hash)
            self.pending.append(Pending(i, action, payload))
            out.append(make_tx(self.keys[0], self.chain_id, nonce + len(out), payload).raw)
        return out

    def match(self, proposals: Sequence[ProposalView]) -> None:
        """Learn the ids of our proposals and their statuses from the chain's governance view."""
        taken = {p.proposal_id for p in self.pending if p.proposal_id is not None}
        for pend in self.pending:
            if pend.proposal_id is None:
                for prop in proposals:
                    if (
                        prop.id not in taken
                        and prop.proposer == self.keys[0].public_key
                        and prop.kind == pend.payload.proposal_kind
                        and list(prop.content) == list(pend.payload.content())
                    ):
                        pend.proposal_id = prop.id
                        taken.add(prop.id)
                        break
            for prop in proposals:
                if prop.id == pend.proposal_id:
                    pend.status, pend.record = prop.status, prop

    def votes_due(self) -> list[Pending]:
        """Our proposals that entered voting and were not voted yet (marked voted now)."""
        due = [p for p in self.pending if not p.voted and p.status == "voting"]
        for p in due:
            p.voted = True
        return due

    def validator_votes(self, due: list[Pending], nonces: Mapping[bytes, int]) -> list[bytes]:
        """Every validator's signed vote on each of `due`, with consecutive nonces per validator."""
        out: list[bytes] = []
        for key in self.keys:
            votes = [p for p in due if p.action.validator_votes != "none"]
            for n, pend in enumerate(votes):
                out.append(
                    make_tx(
                        key,
                        self.chain_id,
                        nonces[key.public_key] + n,
                        Vote(pend.proposal_id or 0, pend.action.validator_votes),
                    ).raw
                )
        return out

    def finished(self) -> bool:
        return len(self.pending) == len(self.fed.cfg.governance) and all(
            p.status in FINISHED for p in self.pending
        )

    def summary(self) -> list[dict[str, Any]]:
        return [
            {
                "action": p.index,
                "round": p.action.round,
                "kind": p.action.kind,
                "proposal_id": p.proposal_id,
                "status": p.status,
                "tally": None if p.record is None else list(p.record.tally),
                "result": None if p.record is None else p.record.result,
                "voting_end": None if p.record is None else p.record.voting_end,
                "execute_height": None if p.record is None else p.record.execute_height,
            }
            for p in self.pending
        ]
