"""Mutation testing of the consensus engine: break one rule at a time, and let the simulator find it.

    python -m fedray.consensus.mutants [--budget 400] [--seed 0] [--sizes 4v,7v] [--only NAME,...]

Each `Mutant` replaces one small named function of the engine (a rule, a predicate, an action: see
`rules`, `work`, `engine`, `votes`, `state`, `driver`) for the duration of a run; no source text is
edited. The simulator then runs schedules of a fixed rotation of scenarios (`scenarios()`: for 4
validators with 1 Byzantine and for 7 with 2, the adversary with any behaviour, playing the split
attacks, or silent; no adversary but more crashes; one twin) until one fails a check (safety,
evidence, liveness), the engine raises (`crash`) or a schedule runs past a wall-clock limit
(`hang`), or the budget is spent. Every kill is confirmed by running the killing
schedule again on the unmutated engine, which must pass it: a kill that the real engine would also
suffer is reported as `unconfirmed` and counts as a survival.

Prints one line per mutant and a last line `killed K/N`; exits 1 if any mutant survives. With
`--rates`, every mutant (and the real engine, first) runs the whole budget, and each line counts the
schedules failed by check: a kill rate instead of a first kill (the real engine must fail none).

Deliberately ignored: mutating the application or the network (they are the test's fixed world).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from types import FrameType
from typing import Any

from fedray.consensus import driver, engine, rules, state, votes
from fedray.consensus.sim import SimConfig, Simulation
from fedray.consensus.sim_app import ChainFactory, SmallChain
from fedray.consensus.votes import VoteSet
from fedray.consensus.work import Work
from fedray.core.block import PREVOTE, Block


def scenarios(validators: int, byzantine: int) -> tuple[tuple[str, SimConfig], ...]:
    """The rotation for one size: the adversary with any behaviour, playing the split attacks,
    silent, proposing invalid blocks (a broken validity check decides them only when such a
    block is proposed, rare among the random behaviours); no adversary but more crashes; one
    twin."""
    base = SimConfig(validators, byzantine, heights=3 if validators < 7 else 2, max_gst_ms=6000)
    tag = f"{validators}v"
    return (
        (f"{tag}/{byzantine}byz", base),
        (f"{tag}/split", replace(base, behaviours=("split",))),
        (f"{tag}/silent", replace(base, behaviours=("silent",))),
        (f"{tag}/invalid", replace(base, behaviours=("invalid_block",))),
        (f"{tag}/crashes", replace(base, byzantine=0, max_crashes=3, max_gst_ms=3000)),
        (f"{tag}/1twin", replace(base, byzantine=0, twins=1, max_gst_ms=3000)),
    )


SCENARIOS = {"4v": scenarios(4, 1), "7v": scenarios(7, 2)}
HUNTS = SCENARIOS["4v"] + SCENARIOS["7v"]
HANG_SECONDS = 60.0  # wall clock, generous: a loaded CI machine must not fake a hang


class MutantHang(Exception):
    """A schedule ran past the wall-clock limit (an engine step that never returns)."""


@dataclass(frozen=True)
class Mutant:
    name: str
    breaks: str  # the rule it breaks, in the paper's terms
    patches: tuple[tuple[Any, str, Any], ...]  # (module or class, attribute, replacement)


@contextmanager
def applied(mutant: Mutant) -> Iterator[None]:
    """Install `mutant`'s replacements, and restore the originals afterwards."""
    saved = []
    try:
        for owner, name, replacement in mutant.patches:
            if name not in vars(owner):
                raise AttributeError(f"{owner.__name__} has no {name} to mutate")
            saved.append((owner, name, vars(owner)[name]))
            setattr(owner, name, replacement)
        yield
    finally:
        for owner, name, original in reversed(saved):
            setattr(owner, name, original)


# --- the replacements -------------------------------------------------------------------------
_ADD = VoteSet.add


def _add_equivocator_twice(
    self: VoteSet, vote: Any, power: int, count_conflict: bool
) -> tuple[VoteSet, Any]:
    new, earlier = _ADD(self, vote, power, count_conflict)
    if earlier is not None and new is not self:  # a counted conflicting vote: count it again
        new = VoteSet(new.first, new.conflicting, new._plus(vote, power), new.power_any)
    return new, earlier


def _initial_state_amnesiac(
    config: Any, height: int, validators: Any, schedule: Any, signer: Any = None
) -> Any:
    return state.initial_state(config, height, validators, schedule, None)


def _decide_what_we_have(w: Work, round_: int, value: bytes) -> Block | None:
    block = w.blocks.get(value)
    if block is None and round_ in w.proposals:  # "helpfully" decide the proposal we know
        block = w.blocks.get(w.proposals[round_][0].block_hash)
    return block


def _polka_of_anything(w: Work, round_: int) -> bytes | None:
    prevotes = w.votes.get((round_, PREVOTE), votes.EMPTY_VOTE_SET)
    for p in w.proposals.get(round_, ()):
        if w.accepted(p.block_hash) is True and prevotes.quorum_any(w.total):
            return p.block_hash
    return None


def _current_round_precommits(s: Any, round_: int, precommits: VoteSet) -> bool:
    return round_ == s.round or precommits.quorum_value(s.total_power) is not None


def _accepted_whatever(self: Work, block_hash: bytes) -> bool | None:
    return True if block_hash in self.validity else None


def _nothing(*args: Any) -> None:
    return None


CATALOGUE: tuple[Mutant, ...] = (
    Mutant("no_lock_update", "L36/L38: precommit without locking", ((Work, "lock", _nothing),)),
    Mutant(
        "ignore_valid_round",
        "L15: a proposer with a valid value proposes a new one",
        ((Work, "value_to_repropose", lambda self: None),),
    ),
    Mutant(
        "quorum_at_2f",
        "quorums of 2f (half the power) instead of 2f+1",
        ((votes, "is_quorum", lambda power, total: 2 * power >= total),),
    ),
    Mutant(
        "count_equivocator_twice",
        "an equivocator's conflicting vote counts twice for its value",
        ((VoteSet, "add", _add_equivocator_twice),),
    ),
    Mutant(
        "skip_on_f",
        "L55: skip to a later round on one validator's messages (f for n=4), not f+1",
        ((rules, "is_one_third", lambda power, total: power > 0),),
    ),
    Mutant(
        "prevote_locked_away",
        "L22/L28: prevote a value while locked on another, without a later POL",
        ((rules, "lock_allows", lambda lr, lh, value, pol: True),),
    ),
    Mutant(
        "forget_signer_on_restart",
        "signer safety: a restarted validator forgets what it signed (and its lock)",
        ((driver, "initial_state", _initial_state_amnesiac),),
    ),
    Mutant(
        "decide_unknown_value",
        "L49: on precommits for a block it lacks, decide the round's proposal it has",
        ((rules, "decision_block", _decide_what_we_have),),
    ),
    Mutant(
        "precommit_without_polka",
        "L36: precommit a proposal on 2f+1 prevotes for anything",
        ((rules, "polka_value", _polka_of_anything),),
    ),
    Mutant(
        "no_pol_check",
        "L28: accept a re-proposal's POL round without its 2f+1 prevotes",
        ((rules, "pol_confirmed", lambda w, pol_round, value: True),),
    ),
    Mutant(
        "stale_gossip",
        "gossip resends precommits of the current round only (the bug of issue 12)",
        ((state, "resends_precommits", _current_round_precommits),),
    ),
    Mutant(
        "no_propose_timeout",
        "L57: no nil prevote when the proposal does not come",
        ((engine, "on_timeout_propose", _nothing),),
    ),
    Mutant(
        "no_prevote_timeout",
        "L61: no nil precommit when no polka comes",
        ((engine, "on_timeout_prevote", _nothing),),
    ),
    Mutant(
        "no_signature_check",
        "votes and proposals are not signature-checked",
        ((engine, "verified", lambda message, chain_id: True),),
    ),
    Mutant(
        "ignore_app_verdict",
        "valid(v): prevote, precommit and decide blocks the application rejected",
        ((Work, "accepted", _accepted_whatever),),
    ),
    Mutant(
        "accept_any_proposer",
        "proposals from any validator, not only the round's proposer",
        ((Work, "is_round_proposer", lambda self, proposal: True),),
    ),
    Mutant(
        "unverified_catch_up",
        "catch-up decides certified blocks without checking the certificate",
        ((engine, "verify_certified", _nothing),),
    ),
)


# --- the hunt ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Verdict:
    mutant: str
    check: str | None  # safety | evidence | liveness | crash | hang | None (survived)
    schedules: int  # schedules run against this mutant
    where: str = ""  # the killing schedule: scenario and index
    confirmed: bool = True  # the unmutated engine passes the killing schedule

    @property
    def killed(self) -> bool:
        return self.check is not None and self.confirmed

    def line(self) -> str:
        if self.check is None:
            return f"{self.mutant:26} survived {self.schedules} schedules"
        status = "killed" if self.confirmed else "unconfirmed"
        return (
            f"{self.mutant:26} {status} by {self.check} after {self.schedules} schedules "
            f"({self.where})"
        )


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise MutantHang()


def check_schedule(cfg: SimConfig, index: int, chains: ChainFactory) -> str | None:
    """The check that schedule `index` of `cfg` fails, if any (crash: the engine raised)."""
    timed = hasattr(signal, "setitimer")
    if timed:
        previous = signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
    try:
        return Simulation(cfg, index, chains).run().failed_check
    except MutantHang:
        return "hang"
    except Exception:  # noqa: BLE001 - an engine that raises is a killed mutant
        return "crash"
    finally:
        if timed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


def hunt(
    mutant: Mutant,
    budget: int,
    seed: int,
    chains: ChainFactory = SmallChain,
    hunts: Sequence[tuple[str, SimConfig]] = HUNTS,
) -> Verdict:
    """Run schedules against `mutant` until a check fails or `budget` schedules pass."""
    for n in range(budget):
        label, cfg = hunts[n % len(hunts)]
        cfg, index = replace(cfg, seed=seed), n // len(hunts)
        with applied(mutant):
            check = check_schedule(cfg, index, chains)
        if check is not None:
            confirmed = check_schedule(cfg, index, chains) is None
            return Verdict(
                mutant.name, check, n + 1, f"{label} seed {seed} schedule {index}", confirmed
            )
    return Verdict(mutant.name, None, budget)


def rates(
    mutant: Mutant | None,
    budget: int,
    seed: int,
    chains: ChainFactory = SmallChain,
    hunts: Sequence[tuple[str, SimConfig]] = HUNTS,
) -> Counter[str]:
    """All `budget` schedules against `mutant` (None: the real engine), counted by failed check."""
    counts: Counter[str] = Counter()
    for n in range(budget):
        cfg = replace(hunts[n % len(hunts)][1], seed=seed)
        with applied(mutant) if mutant is not None else nullcontext():
            counts[check_schedule(cfg, n // len(hunts), chains) or "passed"] += 1
    return counts


def rate_line(name: str, counts: Counter[str]) -> str:
    total, passed = sum(counts.values()), counts["passed"]
    checks = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if k != "passed")
    return f"{name:26} failed {total - passed}/{total} schedules" + (
        f" ({checks})" if checks else ""
    )


def main(argv: list[str] | None = None, chains: Mapping[str, ChainFactory] | None = None) -> int:
    chains = chains or {"small": SmallChain}
    ap = argparse.ArgumentParser(
        prog="python -m fedray.consensus.mutants",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--budget", type=int, default=400, help="schedules per mutant at most")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", default="", help="comma list of mutant names")
    ap.add_argument(
        "--sizes", default="4v,7v", help="scenario sets to rotate over: 4v (1 Byzantine), 7v (2)"
    )
    ap.add_argument("--app", choices=list(chains), default=next(iter(chains)))
    ap.add_argument(
        "--rates",
        action="store_true",
        help="run the whole budget for each mutant and the real engine, and count failures",
    )
    a = ap.parse_args(argv)
    chosen = [m for m in CATALOGUE if not a.only or m.name in a.only.split(",")]
    hunts = tuple(h for size in a.sizes.split(",") for h in SCENARIOS[size])
    chain = chains[a.app]
    killed, total_schedules, t0 = 0, 0, time.perf_counter()
    baseline_ok = True
    if a.rates:
        counts = rates(None, a.budget, a.seed, chain, hunts)
        baseline_ok = counts["passed"] == a.budget
        total_schedules += a.budget
        print(rate_line("(real engine)", counts), flush=True)
    for mutant in chosen:
        if a.rates:
            counts = rates(mutant, a.budget, a.seed, chain, hunts)
            killed += counts["passed"] < a.budget
            total_schedules += a.budget
            print(rate_line(mutant.name, counts), flush=True)
            continue
        verdict = hunt(mutant, a.budget, a.seed, chain, hunts)
        killed += verdict.killed
        total_schedules += verdict.schedules
        print(verdict.line(), flush=True)
    seconds = time.perf_counter() - t0
    print(f"schedules={total_schedules} seconds={seconds:.0f}")
    print(f"killed {killed}/{len(chosen)}")
    return 0 if killed == len(chosen) and baseline_ok else 1


if __name__ == "__main__":
    sys.exit(main())
