"""Robustness of aggregation rules to Byzantine clients: the product's rounds, without slashing.

Every run is a fedray `RunConfig` (the defaults of `fedray run`, plus the cell's data, partition,
rule and attack) and every round goes through the code `fedray run` executes: the client pools of
`fedray.federation.clients` (attackers sampled by `Federation.attackers`, local training seeded per
client, crafted updates clipped, everything quantized to int32 fixed point and signed) and the
aggregation round of `fedray.aggregation.round` (layout checks, the rule, its median fallback, the
saturating add to the int32 global model) keyed by the update transactions' hashes, as the
precompile keys them. What it leaves out, on purpose: the chain's selection (every client is
selected every round, as in the default `fedray run`) and slashing (attackers stay in, so the table
measures the rule alone; `experiments/incentives.py` measures the chain's rewards and penalties).

It writes a Markdown table, a JSON file and a PNG heatmap of final test accuracy, plus the
centralized baseline (same model, optimizer and epoch budget = rounds x local epochs).

    python experiments/robustness.py --quick            # CI smoke: digits, short runs
    python experiments/robustness.py --out docs/robustness   # the grid of docs/robustness.md
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fedray.aggregation.base import ClientDelta
from fedray.aggregation.round import aggregate_round
from fedray.config import AttackConfig, RunConfig, StrategyConfig, load_config, validate
from fedray.core.encoding import digest
from fedray.federation.clients import ClientPool
from fedray.federation.evaluate import Evaluator
from fedray.federation.plan import Federation
from fedray.storage.tensors import tensors_digest

_DF_EVERY = {
    "inner": "centered_clipping",
    "inner_config": {"radius": 1.0},
    "direction_norm_ratio": 0.0,
}
# Rules as (strategy name, params). f = 20% of 20 clients = 4 for the rules that need it.
RULES: dict[str, tuple[str, dict[str, Any]]] = {
    "fedavg": ("fedavg", {}),
    "median": ("median", {}),
    "trimmed_mean": ("trimmed_mean", {"beta": 0.2}),
    "krum": ("krum", {"f": 4}),
    "multi_krum": ("multi_krum", {"f": 4, "m": 16}),
    "cc": ("centered_clipping", {"radius": 1.0, "iterations": 1, "momentum": 0.0}),
    "cc_r0.5": ("centered_clipping", {"radius": 0.5, "iterations": 1, "momentum": 0.0}),
    "bucket_cc": ("bucketing", {"s": 2, "inner": "centered_clipping"}),
    "bucket_median": ("bucketing", {"s": 2, "inner": "median"}),
    # direction filter on every update against the median (direction_norm_ratio 0), over cc r 1
    "df_cc": ("direction_filter", {**_DF_EVERY, "norm_ratio": 0.0}),
    "dfn_cc": ("direction_filter", {**_DF_EVERY, "norm_ratio": 3.0}),
    # the default since issue 19: only long updates against the median (over 3x its norm), any
    # update over 10x, then cc at radius 2 (dfn_cc starved rare labels at Dirichlet alpha 0.1)
    "df3_cc_r2": (
        "direction_filter",
        {
            "inner": "centered_clipping",
            "inner_config": {"radius": 2.0},
            "norm_ratio": 10.0,
            "direction_norm_ratio": 3.0,
        },
    ),
}
DEFAULT_RULE = "df3_cc_r2"  # what `fedray run` uses (fedray/conf/strategy/direction_filter.yaml)
# Attack variants as (attack name, params). Strengths: f/n = 0.2, so a plain mean reverses for
# sign-flip scale or IPM epsilon > (n - f) / f = 4; both use 10 so the FedAvg control collapses.
ATTACKS: dict[str, tuple[str, dict[str, Any]]] = {
    "none": ("none", {}),
    "label_flip": ("label_flip", {}),
    "sign_flip": ("sign_flip", {"scale": 10.0}),
    "gaussian": ("gaussian", {"std": 1.0}),
    "alie": ("alie", {}),
    "ipm": ("ipm", {"epsilon": 10.0}),
    "ipm_0.5": ("ipm", {"epsilon": 0.5}),
}
DATASETS = ("digits", "mnist5k")
PARTITIONS = {"iid": ("iid", 0.0), "dir0.5": ("dirichlet", 0.5), "dir0.1": ("dirichlet", 0.1)}


@dataclass(frozen=True)
class Cell:
    """One run of the grid."""

    dataset: str = "digits"
    partition: str = "iid"  # a key of PARTITIONS
    rule: str = "fedavg"  # a key of RULES
    attack: str = "none"  # a key of ATTACKS
    rounds: int = 30
    epochs: int = 5
    clients: int = 20
    seed: int = 0

    def run_config(self) -> RunConfig:
        """The `fedray run` config of this cell: the product's defaults plus the cell's keys; the
        rule and the attack are exactly the table's (their own defaults for anything unnamed)."""
        scheme, alpha = PARTITIONS[self.partition]
        rule, rule_params = RULES[self.rule]
        attack, attack_params = ATTACKS[self.attack]
        overrides = [
            f"data={self.dataset}",
            f"data.partition={scheme}",
            f"clients={self.clients}",
            f"rounds={self.rounds}",
            f"seed={self.seed}",
            f"training.epochs={self.epochs}",
            "baseline=false",
            "runtime.progress=false",
        ]
        overrides += [f"data.alpha={alpha}"] if scheme == "dirichlet" else []
        cfg = replace(
            load_config(None, overrides),
            strategy=StrategyConfig(rule, dict(rule_params)),
            attack=AttackConfig(attack, 0.2 if attack != "none" else 0.0, 0, dict(attack_params)),
        )
        validate(cfg)
        return cfg


@dataclass(frozen=True)
class RunResult:
    config: Cell
    accuracy: float
    loss: float
    curve: tuple[float, ...]  # test accuracy after every round
    seconds: float
    diverged_at: int | None = None  # round where an honest update left the fixed-point range
    fallback_rounds: int = 0  # rounds aggregated by the median fallback


def run(cell: Cell) -> RunResult:
    """One federated run through the product's client and aggregation rounds; deterministic."""
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    cfg = cell.run_config()
    fed = Federation(cfg)
    pools = [ClientPool(cfg, clients) for clients in fed.pools()]
    selected = [fed.client_key(i).public_key for i in range(cfg.clients)]
    attackers = set(fed.attackers())
    evaluator = Evaluator(fed)
    global_model = fed.initial_model()
    rule_config = dict(cfg.strategy.params)
    state: dict[str, np.ndarray] | None = None
    curve: list[float] = []
    diverged_at, fallbacks = None, 0
    for r in range(cell.rounds):
        global_hash = tensors_digest(global_model)
        answers = [
            pool.train_round(
                r, global_model, global_hash, selected, {}, cfg.training.epochs, cfg.training.lr
            )
            for pool in pools
        ]
        honest_trouble = [
            i
            for a in answers
            for i in [*a.failed, *(c for c, n in a.clipped.items() if n)]
            if i not in attackers
        ]
        if honest_trouble:
            diverged_at = r  # an honest update left the fixed-point range: the model diverged
            break
        subs = [s for a in answers for s in a.submissions]
        deltas = [ClientDelta(digest(s.tx), s.payload, s.n_samples) for s in subs]
        out = aggregate_round(global_model, deltas, cfg.strategy.name, rule_config, state)
        global_model, state = out.new_global, (out.result.state or None)
        fallbacks += out.fallback
        curve.append(evaluator.evaluate(global_model).accuracy)
    final = evaluator.evaluate(global_model)
    seconds = time.perf_counter() - t0
    return RunResult(
        cell, final.accuracy, final.loss, tuple(curve), seconds, diverged_at, fallbacks
    )


def baseline(dataset: str, rounds: int, epochs: int, seed: int = 0) -> float:
    """Centralized test accuracy with the run's model, optimizer and rounds x epochs budget."""
    cfg = Cell(dataset, rounds=rounds, epochs=epochs, seed=seed).run_config()
    return Evaluator(Federation(cfg)).baseline(cfg)


# --- CLI ---------------------------------------------------------------------------------------
def grid(args: argparse.Namespace, rules: Sequence[str]) -> list[Cell]:
    rounds, epochs = (10, 1) if args.quick else (args.rounds, 5)
    datasets = ["digits"] if args.quick else args.datasets
    return [
        Cell(ds, part, rule, attack, rounds=rounds, epochs=epochs, seed=args.seed)
        for ds in datasets
        for part in args.partitions
        for attack in args.attacks
        for rule in rules
    ]


def main(argv: Sequence[str] | None = None) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling report module
    from robustness_report import load_results, read_runs, record, write_report

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="digits only, 10 rounds of 1 epoch")
    p.add_argument("--out", type=Path, default=Path("docs/robustness"))
    p.add_argument("--rules", nargs="*", default=list(RULES), choices=list(RULES))
    p.add_argument("--attacks", nargs="*", default=list(ATTACKS), choices=list(ATTACKS))
    p.add_argument("--datasets", nargs="*", default=list(DATASETS), choices=list(DATASETS))
    p.add_argument("--partitions", nargs="*", default=list(PARTITIONS), choices=list(PARTITIONS))
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--seed", type=int, default=0, help="data split, partition, attackers, init")
    p.add_argument("--workers", type=int, default=1, help="runs in parallel (processes)")
    p.add_argument("--replot", action="store_true", help="redraw --out from its results.json")
    args = p.parse_args(argv)
    if args.replot:  # every run of the journal (all invocations into --out), or results.json
        results, baselines, meta = load_results(args.out / "results.json", Cell, RunResult)
        if (args.out / "runs.jsonl").exists():
            results = read_runs(args.out / "runs.jsonl", Cell, RunResult)
            baselines = json.loads((args.out / "baselines.json").read_text())
        rules = [r for r in RULES if any(x.config.rule == r for x in results)]
        attacks = [a for a in ATTACKS if any(x.config.attack == a for x in results)]
        write_report(results, baselines, rules, attacks, args.out, meta)
        return
    t0 = time.perf_counter()
    cells = grid(args, args.rules)
    setups = sorted({(c.dataset, c.rounds, c.epochs) for c in cells})
    baselines = {
        f"{ds} ({rounds * epochs} epochs)": baseline(ds, rounds, epochs, args.seed)
        for ds, rounds, epochs in setups
    }
    print(baselines, flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    known = args.out / "baselines.json"
    merged = {**(json.loads(known.read_text()) if known.exists() else {}), **baselines}
    known.write_text(json.dumps(merged, indent=1, sort_keys=True))
    # Every finished run is appended to runs.jsonl at once; a rerun skips the cells found there.
    journal = args.out / "runs.jsonl"
    done = {r.config: r for r in read_runs(journal, Cell, RunResult)} if journal.exists() else {}
    results = [done[c] for c in cells if c in done]
    todo = [c for c in cells if c not in done]
    with ProcessPoolExecutor(args.workers) as pool, journal.open("a") as log:
        for i, res in enumerate(pool.map(run, todo), start=len(results)):
            results.append(res)
            log.write(json.dumps(record(res)) + "\n")
            log.flush()
            c = res.config
            div = "" if res.diverged_at is None else f" diverged@{res.diverged_at}"
            print(
                f"[{i + 1}/{len(cells)}] {c.dataset} {c.partition} {c.rule} {c.attack}: "
                f"{100 * res.accuracy:.1f}%{div} ({res.seconds:.1f}s)",
                flush=True,
            )
    meta = {
        "quick": args.quick,
        "seconds": round(time.perf_counter() - t0, 1),
        "torch_threads": 1,
        "command": "python experiments/robustness.py " + " ".join(argv or sys.argv[1:]),
    }
    write_report(results, baselines, args.rules, args.attacks, args.out, meta)
    print(f"wrote {args.out} in {meta['seconds']}s")


if __name__ == "__main__":
    main()
