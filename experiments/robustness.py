"""Robustness of aggregation rules to Byzantine clients, without the chain.

A plain in-process FL loop over fedray's pieces: every round each client trains locally
(`fedray.learning.training`), attackers craft their updates (`fedray.learning.attacks`), every
update is quantized to int32 fixed point, the strategy (`fedray.aggregation.registry`) aggregates
them exactly as a validator would, and the dequantized aggregate delta is added to the global model.
It writes a Markdown table, a JSON file and a PNG heatmap of final test accuracy, plus the
centralized baseline (same model, optimizer and epoch budget = rounds x local epochs).

    python experiments/robustness.py --quick            # CI smoke: digits, short runs
    python experiments/robustness.py --out docs/robustness   # the full grid of docs/robustness.md

Ignores: client sampling (every client joins every round), the chain, Ray, stragglers.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fedray.aggregation.base import ClientDelta, NonFiniteUpdateError
from fedray.aggregation.fixedpoint import RANGE, dequantize, quantize
from fedray.aggregation.registry import make_strategy
from fedray.learning.attacks import AttackContext, make_attack
from fedray.learning.datasets import DatasetSpec, FederatedData, load_dataset
from fedray.learning.models import ModelSpec, build_model, get_params
from fedray.learning.params import Params, add
from fedray.learning.partition import PartitionConfig, partition
from fedray.learning.training import TrainConfig, centralized_baseline, evaluate, train_local

# Rules as (strategy name, config). f = 20% of 20 clients = 4 for the rules that need it.
RULES: dict[str, tuple[str, dict[str, Any]]] = {
    "fedavg": ("fedavg", {}),
    "median": ("median", {}),
    "trimmed_mean": ("trimmed_mean", {"beta": 0.2}),
    "krum": ("krum", {"f": 4}),
    "multi_krum": ("multi_krum", {"f": 4, "m": 16}),
    "cc": ("centered_clipping", {"radius": 1.0, "iterations": 1, "momentum": 0.0}),
    "cc_r0.5": ("centered_clipping", {"radius": 0.5, "iterations": 1, "momentum": 0.0}),
    "bucket_cc": (
        "bucketing",
        {"s": 2, "inner": "centered_clipping", "inner_config": {"radius": 1.0}},
    ),
    "bucket_median": ("bucketing", {"s": 2, "inner": "median"}),
    "df_cc": ("direction_filter", {"inner": "centered_clipping", "inner_config": {"radius": 1.0}}),
    "dfn_cc": (
        "direction_filter",
        {"inner": "centered_clipping", "inner_config": {"radius": 1.0}, "norm_ratio": 3.0},
    ),
}
# Variants of the candidate default (centered clipping), compared on digits before the main grid.
CC_SWEEP: dict[str, tuple[str, dict[str, Any]]] = {
    "cc_r1": ("centered_clipping", {"radius": 1.0}),
    "cc_r0.5": ("centered_clipping", {"radius": 0.5}),
    "cc_r2": ("centered_clipping", {"radius": 2.0}),
    "cc_r1_it3": ("centered_clipping", {"radius": 1.0, "iterations": 3}),
    "cc_r1_m0.5": ("centered_clipping", {"radius": 1.0, "momentum": 0.5}),
    "cc_r1_m0.9": ("centered_clipping", {"radius": 1.0, "momentum": 0.9}),
    "bucket2_cc_r1": ("bucketing", {"s": 2, "inner": "centered_clipping"}),
    "bucket2_cc_r1_m0.5": (
        "bucketing",
        {"s": 2, "inner": "centered_clipping", "inner_config": {"momentum": 0.5}},
    ),
}
RULE_SETS = {"main": RULES, "cc_sweep": CC_SWEEP}
# Attack variants as (attack name, config). Strengths: f/n = 0.2, so a plain mean reverses for
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
SETUPS = {"digits": "mlp", "mnist5k": "mlp"}  # dataset -> model
PARTITIONS = {"iid": PartitionConfig("iid"), "dir0.5": PartitionConfig("dirichlet", alpha=0.5)}


@dataclass(frozen=True)
class RunConfig:
    dataset: str = "digits"
    model: str = "mlp"
    partition: str = "iid"  # a key of PARTITIONS
    rule: str = "fedavg"  # a key of RULES or CC_SWEEP (or set rule_spec)
    attack: str = "none"  # a key of ATTACKS
    num_clients: int = 20
    byzantine_fraction: float = 0.2
    rounds: int = 30
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=2, batch_size=10))
    seed: int = 0
    rule_spec: tuple[str, Mapping[str, Any]] | None = None  # overrides RULES[rule]


@dataclass(frozen=True)
class RunResult:
    config: RunConfig
    accuracy: float
    loss: float
    curve: tuple[float, ...]  # test accuracy after every round
    seconds: float
    diverged_at: int | None = None  # round where an honest update left the fixed-point range


_FED_CACHE: dict[tuple, FederatedData] = {}


def federated_data(cfg: RunConfig) -> FederatedData:
    key = (cfg.dataset, cfg.partition, cfg.num_clients, cfg.seed)
    if key not in _FED_CACHE:
        split = load_dataset(DatasetSpec(cfg.dataset, seed=cfg.seed))
        pcfg = replace(PARTITIONS[cfg.partition], num_clients=cfg.num_clients, seed=cfg.seed)
        _FED_CACHE[key] = partition(split, pcfg)
    return _FED_CACHE[key]


def _valid_payload(delta: Params) -> Params:
    # An attacker keeps its payload inside the fixed-point range so that ingress accepts it.
    lim = np.nextafter(np.float32(RANGE), np.float32(0))
    return {k: np.clip(v, -lim, lim) for k, v in delta.items()}


def _key(round_: int, client: int, q: Mapping[str, np.ndarray]) -> bytes:
    h = hashlib.sha256(f"{round_}/{client}".encode())
    for name in sorted(q):
        h.update(q[name].tobytes())
    return h.digest()


def run(cfg: RunConfig) -> RunResult:
    """One federated run; deterministic given `cfg`."""
    t0 = time.perf_counter()
    fed = federated_data(cfg)
    spec = ModelSpec(cfg.model, fed.split.input_shape, fed.split.num_classes)
    model = build_model(spec, cfg.seed)
    global_params = get_params(model)
    n = cfg.num_clients
    f = int(round(cfg.byzantine_fraction * n))
    rng = np.random.default_rng(cfg.seed)
    attackers = tuple(sorted(int(a) for a in rng.choice(n, f, replace=False)))
    attack = make_attack(*ATTACKS[cfg.attack])
    data = [fed.client(k) for k in range(n)]
    for a in attackers:
        data[a] = attack.poison_data(data[a], rng)
    rule_name, rule_cfg = cfg.rule_spec or {**RULES, **CC_SWEEP}[cfg.rule]
    strategy = make_strategy(rule_name, rule_cfg)
    agg_state: Mapping[str, np.ndarray] | None = None
    attack_state: dict[str, Any] = {}
    curve: list[float] = []
    diverged_at = None
    for r in range(cfg.rounds):
        deltas: dict[int, Params] = {}
        for k in range(n):
            if k in attackers and not attack.needs_training:
                continue
            seed = (cfg.seed * 1_000_003 + r) * 1_000 + k
            deltas[k] = train_local(model, global_params, data[k], cfg.train, seed=seed).delta
        ctx = AttackContext(
            round=r,
            attackers=attackers,
            honest=tuple(deltas[a] for a in attackers) if attack.needs_training else (),
            global_params=global_params,
            num_clients=n,
            rng=np.random.default_rng((cfg.seed, r, 7)),
            state=attack_state,
        )
        crafted = attack.craft(ctx) if attackers else None
        if crafted is not None:
            attack_state = crafted.state
            for a, u in zip(attackers, crafted.updates, strict=True):
                deltas[a] = _valid_payload(u)
        try:
            updates = []
            for k in range(n):
                q = quantize(deltas[k])
                updates.append(ClientDelta(_key(r, k, q), q, len(data[k])))
        except NonFiniteUpdateError:
            # The global model has diverged: honest updates are no longer valid payloads.
            diverged_at = r
            break
        result = strategy.aggregate(updates, agg_state)
        agg_state = result.state
        global_params = add(global_params, dequantize(result.delta))
        curve.append(evaluate(model, global_params, fed.split.test).accuracy)
    final = evaluate(model, global_params, fed.split.test)
    return RunResult(
        cfg, final.accuracy, final.loss, tuple(curve), time.perf_counter() - t0, diverged_at
    )


def baseline(dataset: str, model: str, rounds: int, train: TrainConfig, seed: int = 0) -> float:
    """Centralized test accuracy with the same model, optimizer and rounds x epochs budget."""
    split = load_dataset(DatasetSpec(dataset, seed=seed))
    spec = ModelSpec(model, split.input_shape, split.num_classes)
    res = centralized_baseline(split, spec, replace(train, epochs=rounds * train.epochs), seed=seed)
    return res.test.accuracy


# --- reporting ---------------------------------------------------------------------------------
def markdown_table(
    results: Sequence[RunResult], rules: Sequence[str], attacks: Sequence[str]
) -> str:
    """One table per (dataset, partition): rules x attacks, final test accuracy in percent."""
    out = []
    groups = sorted({(r.config.dataset, r.config.partition) for r in results})
    for ds, part in groups:
        acc = {
            (r.config.rule, r.config.attack): r.accuracy
            for r in results
            if (r.config.dataset, r.config.partition) == (ds, part)
        }
        diverged = {
            (r.config.rule, r.config.attack)
            for r in results
            if (r.config.dataset, r.config.partition) == (ds, part) and r.diverged_at is not None
        }
        model = next(r.config.model for r in results if r.config.dataset == ds)
        out.append(f"### {ds} ({model}), {part}\n")
        out.append("| rule | " + " | ".join(attacks) + " | worst drop |")
        out.append("|---" * (len(attacks) + 2) + "|")
        for rule in rules:
            cells = [acc.get((rule, a)) for a in attacks]
            clean = acc.get((rule, "none"))
            attacked = [
                c for a, c in zip(attacks, cells, strict=True) if a != "none" and c is not None
            ]
            drop = f"{100 * (clean - min(attacked)):.1f}" if clean is not None and attacked else "-"
            row = " | ".join(
                "-" if c is None else f"{100 * c:.1f}" + ("†" if (rule, a) in diverged else "")
                for a, c in zip(attacks, cells, strict=True)
            )
            out.append(f"| {rule} | {row} | {drop} |")
        out.append("")
    return "\n".join(out)


def heatmap(
    results: Sequence[RunResult], rules: Sequence[str], attacks: Sequence[str], path: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = sorted({(r.config.dataset, r.config.partition) for r in results})
    cols = min(2, len(groups))
    rows = (len(groups) + cols - 1) // cols
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(1.1 * len(attacks) * cols + 2, 0.5 * len(rules) * rows + 1.5),
        squeeze=False,
        layout="constrained",
    )
    for ax, (ds, part) in zip(axes.flat, groups, strict=False):
        m = np.full((len(rules), len(attacks)), np.nan)
        for r in results:
            c = r.config
            if (c.dataset, c.partition) == (ds, part) and c.rule in rules and c.attack in attacks:
                m[rules.index(c.rule), attacks.index(c.attack)] = 100 * r.accuracy
        # 60..100 keeps the differences that matter visible; lower values saturate (numbers shown).
        im = ax.imshow(m, vmin=60, vmax=100, cmap="viridis", aspect="auto")
        for (i, j), v in np.ndenumerate(m):
            if not np.isnan(v):
                color = "w" if v < 80 else "k"
                ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=7, color=color)
        ax.set_xticks(range(len(attacks)), attacks, rotation=30, ha="right", fontsize=8)
        ax.set_yticks(range(len(rules)), rules, fontsize=8)
        ax.set_title(f"{ds}, {part}", fontsize=9)
    for ax in list(axes.flat)[len(groups) :]:
        ax.axis("off")
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.6, label="accuracy (%), clipped at 60")
    fig.suptitle("Final test accuracy (%), 20% Byzantine clients", fontsize=10)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(results, baselines, rules, attacks, out: Path, meta: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    table = markdown_table(results, rules, attacks)
    base = "\n".join(f"- {k}: {100 * v:.1f}%" for k, v in baselines.items())
    note = "† the global model diverged: honest updates left the fixed-point range; run stopped.\n"
    (out / "table.md").write_text(
        f"## Centralized baselines\n\n{base}\n\n## Final test accuracy (%)\n\n{table}\n{note}"
    )
    heatmap(results, list(rules), list(attacks), out / "heatmap.png")
    records = [
        {
            **asdict(r.config),
            "accuracy": r.accuracy,
            "loss": r.loss,
            "curve": r.curve,
            "seconds": r.seconds,
            "diverged_at": r.diverged_at,
        }
        for r in results
    ]
    (out / "results.json").write_text(
        json.dumps({"meta": meta, "baselines": baselines, "runs": records}, indent=1, default=str)
    )


def load_results(path: Path) -> tuple[list[RunResult], dict[str, float], dict[str, Any]]:
    """Read a results.json back (to redraw the table and heatmap without rerunning)."""
    data = json.loads(path.read_text())
    results = []
    for rec in data["runs"]:
        fields = {k: rec[k] for k in RunConfig.__dataclass_fields__ if k in rec}
        fields["train"] = TrainConfig(**rec["train"])
        fields["rule_spec"] = None
        cfg = RunConfig(**fields)
        curve = tuple(rec["curve"])
        # older files lack diverged_at: a diverged run stopped early, so its curve is short
        div = rec.get("diverged_at", len(curve) if len(curve) < cfg.rounds else None)
        results.append(RunResult(cfg, rec["accuracy"], rec["loss"], curve, rec["seconds"], div))
    return results, data["baselines"], data["meta"]


# --- CLI ---------------------------------------------------------------------------------------
def grid(
    quick: bool, rules: Sequence[str], attacks: Sequence[str], datasets: Sequence[str], seed: int
) -> tuple[list[RunConfig], dict[str, tuple[str, int, TrainConfig]]]:
    if quick:
        train, rounds, setups = TrainConfig(epochs=1, batch_size=10), 10, {"digits": "mlp"}
    else:
        train, rounds, setups = TrainConfig(epochs=5, batch_size=10), 30, SETUPS
    setups = {ds: m for ds, m in setups.items() if ds in datasets}
    configs = [
        RunConfig(ds, model, part, rule, attack, rounds=rounds, train=train, seed=seed)
        for ds, model in setups.items()
        for part in PARTITIONS
        for attack in attacks
        for rule in rules
    ]
    return configs, {ds: (model, rounds, train) for ds, model in setups.items()}


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="digits only, 10 short rounds (CI smoke)")
    p.add_argument("--out", type=Path, default=Path("docs/robustness"))
    p.add_argument("--rule-set", default="main", choices=list(RULE_SETS))
    p.add_argument("--rules", nargs="*", help="subset of the rule set (default: all)")
    p.add_argument("--attacks", nargs="*", default=list(ATTACKS), choices=list(ATTACKS))
    p.add_argument("--datasets", nargs="*", default=list(SETUPS), choices=list(SETUPS))
    p.add_argument("--seed", type=int, default=0, help="data split, partition, attackers, init")
    p.add_argument("--replot", action="store_true", help="redraw --out from its results.json")
    args = p.parse_args(argv)
    if args.replot:
        results, baselines, meta = load_results(args.out / "results.json")
        rules = list(dict.fromkeys(r.config.rule for r in results))
        attacks = list(dict.fromkeys(r.config.attack for r in results))
        write_report(results, baselines, rules, attacks, args.out, meta)
        return
    rules = args.rules or list(RULE_SETS[args.rule_set])
    if unknown := set(rules) - set(RULE_SETS[args.rule_set]):
        p.error(f"rules not in {args.rule_set}: {sorted(unknown)}")
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    configs, setups = grid(args.quick, rules, args.attacks, args.datasets, args.seed)
    baselines = {
        f"{ds} ({model}, {rounds * train.epochs} epochs)": baseline(
            ds, model, rounds, train, args.seed
        )
        for ds, (model, rounds, train) in setups.items()
    }
    print(baselines, flush=True)
    results = []
    for i, cfg in enumerate(configs):
        res = run(cfg)
        results.append(res)
        div = "" if res.diverged_at is None else f" diverged@{res.diverged_at}"
        print(
            f"[{i + 1}/{len(configs)}] {cfg.dataset} {cfg.partition} {cfg.rule} {cfg.attack}: "
            f"{100 * res.accuracy:.1f}%{div} ({res.seconds:.1f}s)",
            flush=True,
        )
    meta = {
        "quick": args.quick,
        "rule_set": args.rule_set,
        "seconds": round(time.perf_counter() - t0, 1),
        "torch_threads": 1,
        "command": "python experiments/robustness.py " + " ".join(argv or sys.argv[1:]),
    }
    write_report(results, baselines, rules, args.attacks, args.out, meta)
    print(f"wrote {args.out} in {meta['seconds']}s")


if __name__ == "__main__":
    main()
