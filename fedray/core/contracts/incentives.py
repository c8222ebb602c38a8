"""Rewards: what clients earn per round and validators per block, minted by the chain.

Clients. When a round closes, `reward_pool` new tokens go to the round's *contributing* updates:
accepted by the robust rule, carrying no suspicious flag, and agreeing positively with the
aggregate. `reward_participation_bps` of the pool is split equally among them, the rest in
proportion to the *contribution score*
    score = weight x agreement   (both in 2**-16 units from the aggregation precompile).
`weight` is the share the robust rule gave the update (its clip factor for centered clipping, its
selection for Krum); `agreement` is its cosine to the round's aggregate. Why this and not samples:
the sample count is the client's unverifiable claim, so paying for it pays for lying; weight x
agreement pays for what the robust rule actually used and for pointing where the federation went,
and is 0 for free riders (no direction) and attackers (flagged or opposed). Shares are rounded down;
the remainder is simply not minted.

Validators. Every block mints `block_reward` tokens split by voting power among the validators that
signed its `last_commit` (the precommits for the previous block): reward = block_reward x power /
total power, so a validator's earnings are proportional to the precommits it signed and what absent
validators would have earned is never minted.

Deliberately ignored: fees (they go to the proposer in `transition`), delegation, inflation schedules.
"""

from __future__ import annotations

from fedray.core.context import ExecContext
from fedray.core.contracts.economy import mint
from fedray.core.contracts.rounds import RoundResult
from fedray.core.journal import Journal
from fedray.core.precompiles import SUSPICIOUS, UpdateVerdict


def contribution(verdict: UpdateVerdict) -> int:
    """An update's contribution score (0 when it earns nothing)."""
    if not verdict.accepted or verdict.flags & SUSPICIOUS or verdict.agreement <= 0:
        return 0
    return verdict.weight * verdict.agreement


def reward_clients(journal: Journal, result: RoundResult, ctx: ExecContext) -> None:
    scores = {
        u.client: s
        for u, v in zip(result.updates, result.verdicts, strict=True)
        if (s := contribution(v)) > 0
    }
    if not scores:
        return
    p = journal.params
    equal_part = p.reward_pool * p.reward_participation_bps // 10_000 // len(scores)
    by_score = p.reward_pool - equal_part * len(scores)
    total = sum(scores.values())
    for client in sorted(scores):
        mint(journal, client, equal_part + by_score * scores[client] // total)


def reward_validators(journal: Journal, ctx: ExecContext) -> None:
    validators = journal.base.last_validators  # the set that signed the previous block
    total = validators.total_power
    reward = journal.params.block_reward
    if not ctx.last_commit_signers or total == 0 or reward == 0:
        return
    powers = dict(validators.members)
    for signer in sorted(set(ctx.last_commit_signers)):
        mint(journal, signer, reward * powers.get(signer, 0) // total)
