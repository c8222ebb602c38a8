"""The simulator's configuration: what one run of schedules draws from, and the stakes it draws.

`SimConfig` is frozen and hashable; every schedule `i` of a run draws its world from the seed
`f"{seed}:{i}"`, so a schedule is reproduced from (config, seed, index) alone. `draw_stakes` gives
equal stakes, or random ones that keep the adversary below 1/3 of the power and no validator able
to decide alone (even once the adversary is banned).

Deliberately ignored: anything about running schedules (`sim_world`) or reporting them (`sim`).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from fedray.consensus.sim_byzantine import BEHAVIOURS
from fedray.consensus.state import TimeoutConfig

# Round 0's proposer pauses up to 100 ms for late precommits: after GST a message takes at most 40 ms,
# so every honest precommit sent by then arrives within two hops.
SIM_TIMEOUTS = TimeoutConfig(300, 100, 200, 100, 200, 100, commit_ms=100)
STAKE_UNIT = 1000


@dataclass(frozen=True)
class SimConfig:
    validators: int = 4
    byzantine: int = 0
    twins: int = 0
    heights: int = 4
    heights_after_gst: int = 2
    seed: int = 0
    powers: str = "mixed"  # equal | random | mixed (half the schedules each)
    behaviours: tuple[str, ...] = BEHAVIOURS
    standby: int = 0  # honest nodes outside the genesis set (they may join by staking)
    max_gst_ms: int = 3000
    max_partitions: int = 2
    max_crashes: int = 1
    max_phase_faults: int = 3
    scene_rate: float = 0.5  # share of eligible rounds the adversary stages a scene in
    gossip_ms: int = 250
    liveness_window_ms: int = 60_000
    stall_ms: int = 15_000  # after GST, no honest (height, round, step) change for this long
    max_events: int = 400_000
    timeouts: TimeoutConfig = SIM_TIMEOUTS

    @property
    def within_bound(self) -> bool:
        """Faulty keys are at most f of 3f+1 validators (their power is then drawn below 1/3)."""
        return 3 * (self.byzantine + self.twins) < self.validators


def draw_stakes(rng: random.Random, cfg: SimConfig, faulty: Sequence[int]) -> tuple[int, ...]:
    n = cfg.validators
    unequal = cfg.powers == "random" or (cfg.powers == "mixed" and rng.random() < 0.5)
    for _ in range(20 if unequal else 0):
        stakes = tuple(rng.randint(1, 10) * STAKE_UNIT for _ in range(n))
        total, adversary = sum(stakes), sum(stakes[i] for i in faulty)
        if 3 * max(stakes) > 2 * (total - adversary):
            continue  # one validator would decide alone, at least once the adversary is banned
        if not cfg.within_bound or 3 * adversary < total:
            return stakes
    return (10 * STAKE_UNIT,) * n
