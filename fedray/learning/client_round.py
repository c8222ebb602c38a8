"""One round on the client side, for a group of clients trained in one process: train, craft,
clip, quantize. The client pools of `fedray run`, the in-process federation and every experiment call
this function, so there is one definition of what a client submits.

1. **Train**: every client that trains this round (honest ones, and attackers whose attack needs an
   honest update) runs `train_local` from the global model on its own shard, seeded by
   `client_seed(run seed, round, client)`.
2. **Privatize** (with `noise`): every honest client clips its delta to the L2 norm C and adds
   Gaussian noise (`fedray.learning.dp`), seeded by `dp_seed(run seed, round, client)`; attackers
   submit what their attack crafts (a client that does not follow the protocol adds no noise).
3. **Craft**: the group's attackers turn their own updates into the ones they submit, together
   (colluders pool only their own statistics; see `fedray.learning.attacks`).
4. **Clip**: every delta, honest or crafted, is clipped just inside the fixed-point range
   (`CRAFT_LIMIT`, |x| < 128) so the ingress accepts it; the clipped coordinates are counted per
   client (`ClientRound.clipped`) and reported, never silent.
5. **Quantize**: every delta becomes int32 fixed point, the canonical payload that is hashed and
   signed.

No client's failure stops the others: a client whose training raises or yields NaN or infinity,
and every attacker of the group when the attack itself raises (ALIE with more attackers than the
round allows), has no payload this round and is listed in `ClientRound.failed` with the reason, a
missed update the caller declares on chain (`skip`).

Ignores: keys, signatures and transport (the caller's), which clients are selected (the chain's).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import nn

from fedray.aggregation.fixedpoint import RANGE, quantize
from fedray.learning.attacks import Attack, AttackContext
from fedray.learning.datasets import Dataset
from fedray.learning.dp import NoiseSettings, dp_seed, privatize
from fedray.learning.params import Params
from fedray.learning.training import TrainConfig, train_local

CRAFT_LIMIT = np.float32(RANGE - 2.0**-16)
"""Crafted updates are clipped to |x| <= this, just inside the fixed-point range |x| < 128."""


def client_seed(run_seed: int, round_: int, client: int) -> int:
    """The seed of `client`'s local training in `round_` (shuffling order)."""
    return (run_seed * 1_000_003 + round_ * 10_007 + client) & 0x7FFFFFFF


@dataclass(frozen=True)
class ClientRound:
    """What a group of clients submits in one round: each client's int32 fixed-point delta, its
    training seconds (0 for crafted updates that needed no training), the attack's state for the
    next round, how many coordinates of each client's delta were clipped into the fixed-point
    range, and the clients without a payload with the reason (missed updates)."""

    payloads: dict[int, dict[str, np.ndarray]]
    seconds: dict[int, float]
    attack_state: dict[str, Any] = field(default_factory=dict)
    clipped: dict[int, int] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def clip_into_range(delta: Params) -> tuple[Params, int]:
    """`delta` clipped to |x| <= CRAFT_LIMIT, and how many coordinates that changed."""
    out, clipped = {}, 0
    for name, v in delta.items():
        over = np.abs(v) > CRAFT_LIMIT
        clipped += int(np.count_nonzero(over))
        out[name] = np.clip(v, -CRAFT_LIMIT, CRAFT_LIMIT) if over.any() else v
    return out, clipped


def client_round(
    model: nn.Module,
    global_params: Params,
    shards: Mapping[int, Dataset],
    clients: Sequence[int],
    train: TrainConfig,
    *,
    round_: int,
    seed: int,
    participants: int,
    attack: Attack | None = None,
    attackers: Collection[int] = (),
    attack_state: Mapping[str, Any] | None = None,
    noise: NoiseSettings | None = None,
) -> ClientRound:
    """Train, craft, clip and quantize the round's submissions of `clients` (in that order).

    model: scratch space of the model's architecture; global_params: the round's global model as
    float32 in the model's parameter order. participants: how many clients the round selected in
    all (what an attack such as ALIE assumes as n). attack: the attack of this group's attackers
    when it is active this round (None: everyone is honest). noise: the differential-privacy
    clipping and noise of the honest clients (None: no DP).
    """
    crafted = [i for i in clients if attack is not None and i in attackers]
    deltas: dict[int, Params] = {}
    seconds: dict[int, float] = {}
    failed: dict[int, str] = {}
    for i in clients:
        if i in crafted and not attack.needs_training:  # type: ignore[union-attr]
            continue
        start = time.perf_counter()
        try:
            update = train_local(
                model, global_params, shards[i], train, seed=client_seed(seed, round_, i)
            )
        except Exception as exc:  # one client's failure is its own missed update, not the pool's
            failed[i] = _reason(exc)
            continue
        delta = update.delta
        if noise is not None and i not in crafted:
            rng = np.random.default_rng(dp_seed(seed, round_, i))
            delta, _ = privatize(delta, noise.clip_norm, noise.noise_std, rng)
        deltas[i] = delta
        seconds[i] = time.perf_counter() - start
    state = dict(attack_state or {})
    crafting = [i for i in crafted if i not in failed]
    if crafting and attack is not None:
        ctx = AttackContext(
            round=round_,
            attackers=tuple(crafting),
            honest=tuple(deltas[i] for i in crafting if i in deltas),
            global_params=global_params,
            num_clients=participants,
            rng=np.random.default_rng([seed, round_]),
            state=state,
        )
        try:
            result = attack.craft(ctx)
        except Exception as exc:  # the attack's error: its attackers miss the round
            failed.update({i: _reason(exc) for i in crafting})
        else:
            state = result.state
            deltas.update(zip(crafting, result.updates, strict=True))
    payloads: dict[int, dict[str, np.ndarray]] = {}
    clipped: dict[int, int] = {}
    for i in clients:
        if i in failed:
            continue
        if not all(np.isfinite(v).all() for v in deltas[i].values()):
            failed[i] = "NonFiniteUpdateError: the update holds NaN or infinity (training diverged)"
            continue
        delta, clipped[i] = clip_into_range(deltas[i])
        payloads[i] = quantize(delta)
    seconds_out = {i: seconds.get(i, 0.0) for i in clients if i not in failed}
    return ClientRound(payloads, seconds_out, state, clipped, dict(sorted(failed.items())))
