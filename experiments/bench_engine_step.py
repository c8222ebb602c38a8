"""Cost of a consensus engine step while an attacker floods the next-height buffer (issue 10,
finding 5), and whether a correctly signed vote survives the flood.

    python experiments/bench_engine_step.py [--validators 4] [--junk 1023] [--repeat 7]

One engine (a validator of `--validators` equal ones) is started at height 1. The attack, all for
height 2: `--junk` votes with forged signatures in the other validators' names, `--junk` correctly
signed votes of keys outside the set, and one validator's own signed prevotes and precommits for
`--rounds` rounds (what a Byzantine member can send). Then a correctly signed vote of another,
honest, validator arrives: `signed_vote_kept` says whether the buffer took it.

Timings, median over `--repeat` loops, in microseconds per step:
- `stale_timeout_empty`, `stale_timeout_flooded`: a stale timeout (the engine ignores it) before the
  attack and after it;
- `duplicate_flooded`: a message the flooded buffer holds, delivered again (a no-op; relayed copies
  are the common case);
- `forged_again`: the last forged vote delivered again right after the forged ones. Before the fix
  the buffer took up to 1,024 messages of anyone and compared each new one with all it held;
  `--junk 1023` leaves it one short of that cap, where every such step scans it whole.

Works against any version of the engine that has `EngineState.future` (a tuple before the fix, a
mapping sender -> messages after it): run it with PYTHONPATH at an older checkout to compare.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from fedray.consensus.engine import step
from fedray.consensus.messages import Start, TimeoutFired, VoteMessage
from fedray.consensus.proposer import ProposerSchedule
from fedray.consensus.signer import STEP_PRECOMMIT
from fedray.consensus.state import EngineConfig, EngineState, initial_state
from fedray.core.block import PREVOTE, Vote
from fedray.core.crypto import key_from_seed
from fedray.core.encoding import digest
from fedray.core.state import ValidatorSet

CHAIN = "bench-engine-step"


def buffered(state: EngineState) -> list[object]:
    future = state.future
    if isinstance(future, tuple):
        return list(future)
    return [m for msgs in future.values() for m in msgs]  # type: ignore[attr-defined]


def per_step_us(fn: Callable[[], object], loops: int, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(loops):
            fn()
        runs.append((time.perf_counter() - t0) / loops * 1e6)
    return statistics.median(runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--validators", type=int, default=4)
    ap.add_argument("--junk", type=int, default=1023)
    ap.add_argument(
        "--rounds", type=int, default=16, help="rounds of signed votes the Byzantine member sends"
    )
    ap.add_argument("--loops", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=7)
    a = ap.parse_args()

    keys = [key_from_seed(f"{CHAIN}/{i}".encode()) for i in range(a.validators)]
    validators = ValidatorSet(tuple(sorted((k.public_key, 10) for k in keys)))
    me = keys[0]
    state = initial_state(
        EngineConfig(CHAIN, me), 1, validators, ProposerSchedule.genesis(validators)
    )
    state, _ = step(state, Start())
    stale = TimeoutFired(1, 5, STEP_PRECOMMIT)  # a round we are not in: the engine ignores it

    noop_empty = per_step_us(lambda: step(state, stale), a.loops, a.repeat)

    honest = keys[1]
    junk = []
    for i in range(a.junk):  # forged signatures in members' names
        v = Vote(PREVOTE, 2, 0, digest(b"junk%d" % i), keys[1 + i % (a.validators - 1)].public_key)
        junk.append(
            VoteMessage(Vote(v.type, v.height, v.round, v.block_hash, v.validator, b"\0" * 64))
        )
    for i in range(a.junk):  # correct signatures of keys outside the validator set
        outsider = key_from_seed(f"{CHAIN}/outsider/{i}".encode())
        junk.append(
            VoteMessage(
                Vote(PREVOTE, 2, 0, digest(b"o"), outsider.public_key).signed(outsider, CHAIN)
            )
        )
    byzantine = keys[-1]  # a member's own signed votes for many rounds of height 2
    for r in range(a.rounds):
        for t in (1, 2):
            v = Vote(t, 2, r + 1, digest(b"m%d" % r), byzantine.public_key)
            junk.append(VoteMessage(v.signed(byzantine, CHAIN)))
    t0 = time.perf_counter()
    flooded = state
    for i, m in enumerate(junk):
        flooded, _ = step(flooded, m)
        if i == a.junk - 1:
            after_forged = flooded
    flood_s = time.perf_counter() - t0
    good = VoteMessage(
        Vote(PREVOTE, 2, 0, digest(b"block"), honest.public_key).signed(honest, CHAIN)
    )
    flooded, _ = step(flooded, good)
    kept = good in buffered(flooded)

    noop_flooded = per_step_us(lambda: step(flooded, stale), a.loops, a.repeat)
    again = buffered(flooded)[-1]
    duplicate = per_step_us(lambda: step(flooded, again), max(1, a.loops // 10), a.repeat)
    last_forged = junk[a.junk - 1]
    forged_again = per_step_us(
        lambda: step(after_forged, last_forged), max(1, a.loops // 10), a.repeat
    )

    print(
        f"validators={a.validators} attack_messages={len(junk)} buffered={len(buffered(flooded))} "
        f"signed_vote_kept={kept} flood_s={flood_s:.2f}"
    )
    print(
        f"stale_timeout_empty_us={noop_empty:.1f} stale_timeout_flooded_us={noop_flooded:.1f} "
        f"duplicate_flooded_us={duplicate:.1f} forged_again_us={forged_again:.1f}"
    )


if __name__ == "__main__":
    main()
