"""Does the chain punish the attackers and only them? Issue 6's targets, measured.

For each attack (sign flip, ALIE, free riding; none as the control), run a federation of 20 clients,
20% of them attackers from round 0, on the real ledger (contracts, aggregation precompile with its
contribution flags, slashing) in process (`fedray.federation.inprocess`), and report:
- recall: attackers slashed within 3 rounds of the attack's start / attackers (target >= 95%),
- false positives: honest clients ever slashed / honest clients (target <= 2%),
- precision: slashed attackers / all slashed clients,
- whether every honest client's balance grew monotonically over the rounds,
- final test accuracy.

    python experiments/slashing.py --workers 2     # the full tables (writes docs/slashing.md)
    python experiments/slashing.py --quick         # fewer rounds and seeds, for a smoke run
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from fedray.config import load_config
from fedray.federation.evaluate import Evaluator
from fedray.federation.inprocess import InProcessFederation

ATTACKS = {
    "none": [],
    "sign_flip": ["attack=sign_flip"],
    "alie": ["attack=alie"],
    "free_rider": ["attack=free_rider"],
    "free_rider_noise": ["attack=free_rider", "attack.params.mode=noise"],
}
PARTITIONS = {
    "iid": ["data.partition=iid"],
    "dir0.5": ["data.partition=dirichlet", "data.alpha=0.5"],
    "dir0.1": ["data.partition=dirichlet", "data.alpha=0.1"],
}
LEARNING_KINDS = {
    "flagged_updates",
    "free_riding",
    "copied_payload",
    "replayed_payload",
    "invalid_payload",
}


@dataclass
class Outcome:
    partition: str
    attack: str
    seed: int
    attackers: int
    caught_in_3: int
    honest: int
    honest_slashed: int
    slashed_total: int
    monotone_honest: bool
    accuracy: float
    seconds: float


def run_one(partition: str, attack: str, seed: int, rounds: int, extra: list[str]) -> Outcome:
    cfg = load_config(
        None,
        [
            "clients=20",
            f"rounds={rounds}",
            f"seed={seed}",
            "baseline=false",
            "runtime.progress=false",
            "attack.fraction=0.2",
            *PARTITIONS[partition],
            *ATTACKS[attack],
            *extra,
        ],
    )
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as root:
        net = InProcessFederation(root, cfg)
        keys = {i: net.fed.client_key(i).public_key for i in range(cfg.clients)}
        attackers = {keys[i] for i in net.fed.attackers()}
        honest = set(keys.values()) - attackers
        balances: dict[bytes, list[int]] = defaultdict(list)
        first_slash: dict[bytes, int] = {}
        net.block()
        for r in range(rounds):
            if not net.state.section("rounds").open:
                break
            net.run_round()
            for key in keys.values():
                balances[key].append(net.state.account(key).balance)
            for p in net.state.section("penalties").values():
                if p.kind in LEARNING_KINDS:
                    first_slash.setdefault(p.offender, r)
        accuracy = (
            Evaluator(net.fed)
            .evaluate(net.apps[0].blobs.get(net.state.section("rounds").global_hash))
            .accuracy
        )
        net.close()
    start_round = cfg.attack.start_round
    caught = sum(1 for k in attackers if first_slash.get(k, 10**9) <= start_round + 2)
    monotone = all(all(b >= a for a, b in pairwise(balances[k])) for k in honest)
    return Outcome(
        partition,
        attack,
        seed,
        len(attackers),
        caught,
        len(honest),
        sum(1 for k in honest if k in first_slash),
        len(first_slash),
        monotone,
        accuracy,
        time.perf_counter() - start,
    )


def table(outcomes: list[Outcome]) -> str:
    rows = [
        "| attack | runs | recall (slashed within 3 rounds) | honest ever slashed | precision | "
        "honest balances monotone | test accuracy |",
        "|---|---|---|---|---|---|---|",
    ]
    for attack in ATTACKS:
        group = [o for o in outcomes if o.attack == attack]
        if not group:
            continue
        attackers = sum(o.attackers for o in group)
        caught = sum(o.caught_in_3 for o in group)
        honest = sum(o.honest for o in group)
        false = sum(o.honest_slashed for o in group)
        slashed = sum(o.slashed_total for o in group)
        recall = f"{caught}/{attackers} = {caught / attackers:.0%}" if attackers else "n/a"
        precision = f"{(slashed - false) / slashed:.0%}" if slashed else "n/a (none slashed)"
        rows.append(
            f"| {attack} | {len(group)} | {recall} | {false}/{honest} = {false / honest:.1%} | "
            f"{precision} | {all(o.monotone_honest for o in group)} | "
            f"{sum(o.accuracy for o in group) / len(group):.3f} |"
        )
    return "\n".join(rows)


def _run(job: tuple[str, str, int, int, list[str]]) -> Outcome:
    return run_one(*job)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--partitions", nargs="*", default=list(PARTITIONS), choices=PARTITIONS)
    parser.add_argument("--workers", type=int, default=1, help="runs in parallel (processes)")
    parser.add_argument("--out", default="docs/slashing.md")
    parser.add_argument("overrides", nargs="*", help="extra config overrides (key=value)")
    args = parser.parse_args()
    rounds, seeds = (4, 1) if args.quick else (args.rounds, args.seeds)
    jobs = [
        (partition, attack, seed, rounds, args.overrides)
        for partition in args.partitions
        for attack in ATTACKS
        for seed in range(seeds)
    ]
    start = time.perf_counter()
    outcomes = []
    with ProcessPoolExecutor(args.workers) as pool:
        for o in pool.map(_run, jobs):
            outcomes.append(o)
            print(
                f"{o.partition:<7} {o.attack:<17} seed {o.seed}: caught {o.caught_in_3}/"
                f"{o.attackers}, honest slashed {o.honest_slashed}/{o.honest}, monotone "
                f"{o.monotone_honest}, acc {o.accuracy:.3f} ({o.seconds:.0f} s)",
                flush=True,
            )
    sections = [
        f"## {partition}\n\n" + table([o for o in outcomes if o.partition == partition])
        for partition in args.partitions
    ]
    text = "\n\n".join(sections)
    print(text)
    if not args.quick:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(
            "# Slashing precision and recall\n\n"
            f"`python experiments/slashing.py` ({rounds} rounds, {seeds} seeds per attack and "
            "partition, 20 clients, digits, 20% attackers from round 0, default chain parameters, "
            f"{time.perf_counter() - start:.0f} s).\n\n" + text + "\n"
        )


if __name__ == "__main__":
    main()
