"""The consensus simulator: N engines over a seeded, faulty, virtual-time network, against an
adversary, with safety and liveness checked on every schedule.

    python -m fedray.consensus.sim --validators 4 --byzantine 1 --schedules 1000 --heights 4

Each schedule draws a `FaultPlan` (delays, drops, duplicates, reordering, partitions in time and in
protocol phases, crashes with restarts; see `sim_net`), the validators' stakes (`--powers`: equal,
random, or mixed, half each; the adversary always below 1/3), which validators are faulty, and for
each Byzantine one a set of behaviours (`sim_byzantine`: equivocation, silence, selective silence,
lock amnesia, false POL rounds, junk and future messages, invalid blocks, phantom votes, payload
withholding, and the split-proposal and split-decision attacks the world stages before GST);
`--twins` run as two honest engines with the same key. Every node runs the real engine through the
reference `Driver` on an application from a `ChainFactory` (`sim_app`: the built-in small chain, or
the real ledger app via `python -m fedray.node.sim_ledger`). A crash drops the engine's memory; the
application, signer state and proposer schedule survive. Lagging nodes catch up by `sync` batches.
Nodes that make no progress for a gossip interval resend what `gossip()` lists.

Checks (`sim_check`): safety, evidence, and liveness after GST (each height within a round bound,
every target height before GST + the window); and a figure, how many honest validators honest
proposers left out of `last_commit` after GST (`absent_signers`, see `--commit-ms`). A schedule runs until every honest node has committed
`--heights` heights, and two more after GST (`SimConfig.heights_after_gst`). Prints one summary line
and exits 1 on any safety violation, false evidence or liveness failure. Layout: `sim_config` (what
a run draws from), `sim_world` (one schedule), this module (runs, summary, command line).

Deliberately ignored: message sizes and bandwidth.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace

from fedray.consensus.sim_app import ChainFactory, SmallChain
from fedray.consensus.sim_byzantine import BEHAVIOURS
from fedray.consensus.sim_check import ScheduleResult
from fedray.consensus.sim_config import SIM_TIMEOUTS, SimConfig
from fedray.consensus.sim_world import Simulation

__all__ = ["ScheduleResult", "SimConfig", "Simulation", "main", "run", "summary"]


def run(
    cfg: SimConfig,
    schedules: int,
    verbose: bool = False,
    chains: ChainFactory = SmallChain,
    start: int = 0,
) -> list[ScheduleResult]:
    results = []
    for index in range(start, start + schedules):
        r = Simulation(cfg, index, chains).run()
        if verbose and r.notes:
            print(f"schedule {index}: " + "; ".join(r.notes[:3]), file=sys.stderr)
        results.append(r)
    return results


def summary(
    cfg: SimConfig, results: list[ScheduleResult], seconds: float, cpu_seconds: float | None = None
) -> str:
    """One line of `key=value` figures; beyond-bound schedules are counted apart, not checked."""
    counted = [r for r in results if not r.beyond_bound]
    return (
        f"schedules={len(results)} validators={cfg.validators} byzantine={cfg.byzantine} "
        f"twins={cfg.twins} heights_committed={sum(r.heights_committed for r in results)} "
        f"safety_violations={sum(r.safety_violations for r in counted)} "
        f"false_evidence={sum(r.false_evidence for r in counted)} "
        f"liveness_failures={sum(r.liveness_failure for r in counted)} "
        f"beyond_bound={len(results) - len(counted)} "
        f"max_rounds_after_gst={max((r.rounds_after_gst for r in counted), default=0)} "
        f"round_bound={max((r.round_bound for r in counted), default=0)} "
        f"evidence={sum(r.evidence for r in results)} "
        f"absent_signers={sum(r.absent_signers for r in results)}"
        f"/{sum(r.signer_slots for r in results)} "
        f"schedules_per_s={len(results) / max(seconds, 1e-9):.1f}"
        + (f" cpu_s={cpu_seconds:.1f}" if cpu_seconds is not None else "")
    )


def failures(results: list[ScheduleResult]) -> int:
    return sum(r.failed_check is not None for r in results)


def config_from_args(a: argparse.Namespace) -> SimConfig:
    return SimConfig(
        validators=a.validators,
        byzantine=a.byzantine,
        twins=a.twins,
        heights=a.heights,
        seed=a.seed,
        powers=a.powers,
        behaviours=tuple(a.behaviours.split(",")) if a.behaviours else BEHAVIOURS,
        standby=a.standby,
        max_crashes=a.crashes,
        max_partitions=a.partitions,
        timeouts=replace(SIM_TIMEOUTS, commit_ms=a.commit_ms),
    )


def add_arguments(ap: argparse.ArgumentParser, chains: Sequence[str]) -> None:
    ap.add_argument("--validators", type=int, default=4)
    ap.add_argument("--byzantine", type=int, default=0, help="Byzantine validators")
    ap.add_argument("--twins", type=int, default=0, help="validators run as two engines")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--heights", type=int, default=4)
    ap.add_argument("--powers", choices=("equal", "random", "mixed"), default="mixed")
    ap.add_argument("--behaviours", default="", help=f"comma list from {','.join(BEHAVIOURS)}")
    ap.add_argument("--standby", type=int, default=0, help="honest non-validators that may join")
    ap.add_argument("--crashes", type=int, default=1, help="max crashes per schedule")
    ap.add_argument("--partitions", type=int, default=2, help="max extra partitions per schedule")
    ap.add_argument("--app", choices=chains, default=chains[0], help="the simulated application")
    ap.add_argument(
        "--commit-ms",
        type=int,
        default=SIM_TIMEOUTS.commit_ms,
        help="pause of round 0's proposer for late precommits (0: none)",
    )


def main(argv: list[str] | None = None, chains: Mapping[str, ChainFactory] | None = None) -> int:
    chains = chains or {"small": SmallChain}
    ap = argparse.ArgumentParser(
        prog="python -m fedray.consensus.sim",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(ap, list(chains))
    ap.add_argument("--schedules", type=int, default=100)
    ap.add_argument("--verbose", action="store_true", help="print each failing schedule")
    a = ap.parse_args(argv)
    if a.byzantine + a.twins > a.validators:
        ap.error("more faulty validators than validators")
    cfg = config_from_args(a)
    t0, c0 = time.perf_counter(), time.process_time()
    results = run(cfg, a.schedules, a.verbose, chains[a.app])
    print(summary(cfg, results, time.perf_counter() - t0, time.process_time() - c0))
    return 1 if failures(results) else 0


if __name__ == "__main__":
    sys.exit(main())
