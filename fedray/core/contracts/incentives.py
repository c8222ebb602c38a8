"""Rewards: what clients earn per round and validators per block, minted by the chain.

Clients. When a round closes, up to `reward_pool` new tokens go to the round's *eligible* updates:
accepted by the robust rule and carrying no flag in `WITHHOLD` (free riding, evidence of an attack,
the suspicious-closeness flag when enabled). `reward_participation_bps` of the pool is split
equally among them; the rest in proportion to their positive *contribution*
    contribution = weight x <update, aggregate> / |aggregate|^2   (2**-16 units, from the precompile)
the part of the round's step each update supplied: its leave-one-out value on the aggregate with
the rule's weights held, which is also its Shapley value in the linear game of the step. An update
that points away from the step contributes nothing positive and earns only the equal part; longer
updates (more local data, more SGD steps) supply more of the step and earn more, up to what the
robust rule let through (clipping caps the weighted length). Why not pay by the sample count: it is
the client's own unverifiable claim, so paying for it pays for lying. Shares are rounded down; what
rounding or a round without positive contributions leaves is simply not minted.

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
from fedray.core.precompiles import WITHHOLD, UpdateVerdict


def eligible(verdict: UpdateVerdict) -> bool:
    """Whether an update earns anything this round."""
    return verdict.accepted and not verdict.flags & WITHHOLD


def reward_clients(journal: Journal, result: RoundResult, ctx: ExecContext) -> None:
    paid = [
        (u.client, max(0, v.contribution))
        for u, v in zip(result.updates, result.verdicts, strict=True)
        if eligible(v)
    ]
    if not paid:
        return
    p = journal.params
    equal_part = p.reward_pool * p.reward_participation_bps // 10_000 // len(paid)
    by_contribution = p.reward_pool - equal_part * len(paid)
    total = sum(c for _, c in paid)
    for client, c in sorted(paid):
        mint(journal, client, equal_part + (by_contribution * c // total if total else 0))


def reward_validators(journal: Journal, ctx: ExecContext) -> None:
    validators = journal.base.last_validators  # the set that signed the previous block
    total = validators.total_power
    reward = journal.params.block_reward
    if not ctx.last_commit_signers or total == 0 or reward == 0:
        return
    powers = dict(validators.members)
    for signer in sorted(set(ctx.last_commit_signers)):
        mint(journal, signer, reward * powers.get(signer, 0) // total)
