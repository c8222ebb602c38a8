"""Reporting for `experiments/incentives.py`: docs/incentives.md and its plots, from the per-run
records (each computed from a run directory's metrics.parquet and summary.json).

Tables: honest clients slashed or jailed; attackers slashed within 5 rounds; what attackers earned
against honest clients; accuracy against clean FedAvg; reward share against data share; how close
honest updates came to each flag, and the false-positive bound of the k-of-w test over 1,000 rounds.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

PARTITION_ORDER = ("iid", "dir1.0", "dir0.5", "dir0.3", "dir0.1")
LIFETIME_ROUNDS = 1000
K, W = 3, 5  # the default flag_threshold and flag_window (Params)


def _parts(records: Sequence[dict[str, Any]]) -> list[str]:
    return [p for p in PARTITION_ORDER if p in {r["cell"]["partition"] for r in records}]


def _group(records: Sequence[dict[str, Any]], *keys: str) -> dict[tuple[Any, ...], list[dict]]:
    out: dict[tuple[Any, ...], list[dict]] = defaultdict(list)
    for r in records:
        out[tuple(r["cell"][k] for k in keys)].append(r)
    return out


def _main_runs(records: Sequence[dict[str, Any]], rounds: int) -> list[dict[str, Any]]:
    return [r for r in records if r["cell"]["rule"] == "default" and r["cell"]["rounds"] == rounds]


def attack_table(
    records: Sequence[dict[str, Any]],
    attacks: Sequence[str],
    cell: Callable[[list[dict[str, Any]]], str],
) -> str:
    """One table per data set: attacks x partitions, each cell `cell(runs of that setting)`."""
    parts = _parts(records)
    groups = _group(records, "dataset", "attack", "partition")
    lines = []
    for ds in sorted({r["cell"]["dataset"] for r in records}):
        lines += [f"**{ds}**\n", "| attack | " + " | ".join(parts) + " |"]
        lines.append("|---" * (len(parts) + 1) + "|")
        for a in attacks:
            cells = [cell(groups.get((ds, a, p), [])) for p in parts]
            if any(c != "-" for c in cells):
                lines.append(f"| {a} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def honest_cell(g: list[dict[str, Any]]) -> str:
    """Honest client-runs slashed or jailed / honest client-runs."""
    honest = sum(len(r["earned"]) - len(r["attackers"]) for r in g)
    bad = {(r["cell"]["seed"], i) for r in g for i in r["honest_slashed"] + r["honest_jailed"]}
    return f"{len(bad)} / {honest}" if g else "-"


def caught_cell(g: list[dict[str, Any]]) -> str:
    caught = sum(len(r["caught_in_5"]) for r in g)
    total = sum(len(r["attackers"]) for r in g)
    return f"{caught}/{total} ({100 * caught / total:.0f}%)" if total else "-"


def earned_ratio(r: dict[str, Any]) -> float | None:
    """Mean tokens earned per attacker over mean per honest client (None without both)."""
    att = set(r["attackers"])
    honest = [e for i, e in enumerate(r["earned"]) if i not in att]
    bad = [e for i, e in enumerate(r["earned"]) if i in att]
    if not honest or not bad or np.mean(honest) <= 0:
        return None
    return float(np.mean(bad) / np.mean(honest))


def reward_cell(g: list[dict[str, Any]]) -> str:
    """The largest attacker/honest earnings ratio over the seeds."""
    ratios = [x for r in g if (x := earned_ratio(r)) is not None]
    return f"{max(ratios):.2f}" if ratios else "-"


def accuracy_table(records: Sequence[dict[str, Any]], rounds: int) -> tuple[str, list[float]]:
    parts = _parts(records)
    by = {
        (r["cell"]["dataset"], r["cell"]["partition"], r["cell"]["rule"], r["cell"]["seed"]): r
        for r in records
        if r["cell"]["attack"] == "none" and r["cell"]["rounds"] == rounds
    }
    attacked = _group(
        [r for r in _main_runs(records, rounds) if r["cell"]["attack"] != "none"],
        "dataset",
        "partition",
    )
    lines = [
        "| data | partition | FedAvg (seeds) | default rule (seeds) | default - FedAvg, worst seed | default under attack: worst mean over seeds |",
        "|---|---|---|---|---|---|",
    ]
    gaps = []
    for ds in sorted({k[0] for k in by}):
        for p in parts:
            seeds = sorted({k[3] for k in by if k[0] == ds and k[1] == p})
            fed = [
                by[(ds, p, "fedavg", s)]["accuracy"][-1]
                for s in seeds
                if (ds, p, "fedavg", s) in by
            ]
            dfl = [
                by[(ds, p, "default", s)]["accuracy"][-1]
                for s in seeds
                if (ds, p, "default", s) in by
            ]
            pair = [
                by[(ds, p, "default", s)]["accuracy"][-1] - by[(ds, p, "fedavg", s)]["accuracy"][-1]
                for s in seeds
                if (ds, p, "default", s) in by and (ds, p, "fedavg", s) in by
            ]
            gaps += pair
            worst_attack = ""
            g = _group(attacked.get((ds, p), []), "attack")
            if g:
                means = {a[0]: np.mean([r["accuracy"][-1] for r in rs]) for a, rs in g.items()}
                a = min(means, key=lambda k: means[k])
                worst_attack = f"{100 * means[a]:.1f} ({a})"
            lines.append(
                f"| {ds} | {p} | {' / '.join(f'{100 * x:.1f}' for x in fed)} | "
                f"{' / '.join(f'{100 * x:.1f}' for x in dfl)} | "
                f"{100 * min(pair):+.1f} | {worst_attack} |"
                if pair
                else f"| {ds} | {p} | - | - | - | {worst_attack} |"
            )
    return "\n".join(lines), gaps


def rarity(labels: Sequence[Sequence[int]]) -> list[float]:
    """Per client: the share of its own classes' data that it holds, averaged over its samples
    (1: it holds every sample of its classes; 1/n for IID among n clients)."""
    counts = np.array(labels, dtype=np.float64)
    per_class = counts.sum(axis=0)
    share = counts / np.maximum(per_class, 1)
    return [float((c * s).sum() / max(c.sum(), 1)) for c, s in zip(counts, share, strict=True)]


def share_rows(
    records: Sequence[dict[str, Any]], rounds: int
) -> list[tuple[str, str, float, float, float]]:
    """(dataset, partition, data share, reward share, rarity) per honest client of clean runs."""
    out = []
    for r in _main_runs(records, rounds):
        if r["cell"]["attack"] != "none":
            continue
        earned, samples = np.array(r["earned"], float), np.array(r["samples"], float)
        if earned.sum() <= 0:
            continue
        for d, e, q in zip(
            samples / samples.sum(), earned / earned.sum(), rarity(r["labels"]), strict=True
        ):
            out.append((r["cell"]["dataset"], r["cell"]["partition"], float(d), float(e), q))
    return out


def share_table(rows: Sequence[tuple[str, str, float, float, float]]) -> str:
    lines = [
        "| data | partition | clients | corr(reward share, data share) | reward share / data share: quarter with the most data | quarter with the least data | quarter with the rarest labels | rarest-label quarter's reward / mean client's reward |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for ds in sorted({r[0] for r in rows}):
        for p in PARTITION_ORDER:
            g = [r for r in rows if r[0] == ds and r[1] == p]
            if len(g) < 8:
                continue
            d, e, q = (np.array([r[i] for r in g]) for i in (2, 3, 4))
            by_d, by_q = np.argsort(d), np.argsort(q)
            n4 = len(g) // 4
            lines.append(
                f"| {ds} | {p} | {len(g)} | {np.corrcoef(d, e)[0, 1]:.2f} | "
                f"{e[by_d[-n4:]].sum() / d[by_d[-n4:]].sum():.2f} | {e[by_d[:n4]].sum() / d[by_d[:n4]].sum():.2f} | "
                f"{e[by_q[-n4:]].sum() / d[by_q[-n4:]].sum():.2f} | "
                f"{e[by_q[-n4:]].mean() / e.mean():.2f} |"
            )
    return "\n".join(lines)


def upper_bound(events: int, n: int, confidence: float = 0.95) -> float:
    """One-sided Clopper-Pearson upper bound of a rate seen `events` times in `n` trials."""
    if n == 0:
        return 1.0
    if events == 0:
        return 1 - (1 - confidence) ** (1 / n)
    from scipy.stats import beta

    return float(beta.ppf(confidence, events + 1, n - events))


def flag_table(records: Sequence[dict[str, Any]]) -> tuple[str, list[str]]:
    parts = _parts(records)
    groups = _group(records, "dataset", "partition")
    lines = [
        "| data | partition | honest updates | evidence flags (noise level or near copy) | zero updates | rewards withheld (long or opposed) | most opposed flags of one client in 5 rounds | max norm / median | max norm / allowance (withheld > 4) | min max-abs-cos x sqrt(P) (evidence < 4) | max cos to another (evidence > 0.999) | max opposed score (withheld > 1) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    bounds = []
    for ds in sorted({k[0] for k in groups}):
        for p in parts:
            g = groups.get((ds, p), [])
            if not g:
                continue
            n = sum(r["honest_updates"] for r in g)
            ev = sum(r["honest_evidence"] for r in g)
            fr = sum(r["honest_free_riding"] for r in g)
            m = [r["honest_margins"] for r in g if r["honest_margins"]]
            lines.append(
                f"| {ds} | {p} | {n} | {ev} | {fr} | {sum(r['honest_withheld'] for r in g)} | "
                f"{max(r['honest_opposed_window'] for r in g)} | "
                f"{max(x['max_norm_ratio'] for x in m):.2f} | {max(x['max_norm_excess'] for x in m):.2f} | "
                f"{min(x['min_noise_z'] for x in m):.1f} | "
                f"{max(x['max_copy_cos'] for x in m):.3f} | {max(x['max_opposed'] for x in m):.2f} |"
            )
            pu = upper_bound(ev, n)
            life = LIFETIME_ROUNDS * math.comb(W, K) * pu**K
            bounds.append(f"| {ds} | {p} | {ev} / {n} | {pu:.2e} | {min(1.0, life):.1e} |")
    return "\n".join(lines), bounds


def _caught_summary(records: Sequence[dict[str, Any]], attacks: Sequence[str]) -> str:
    """Which attacks were caught at >= 95% everywhere, and which were not slashed."""
    rates: dict[str, list[float]] = defaultdict(list)
    for (a, _p), g in _group(records, "attack", "partition").items():
        total = sum(len(r["attackers"]) for r in g)
        if total:
            rates[a].append(sum(len(r["caught_in_5"]) for r in g) / total)
    caught = [a for a in attacks if rates.get(a) and min(rates[a]) >= 0.95]
    missed = [a for a in attacks if rates.get(a) and min(rates[a]) < 0.95]
    return (
        f"Caught in at least 95% of cases in every setting: {', '.join(caught) or 'none'}. "
        f"Below that somewhere: {', '.join(missed) or 'none'} (direction and length are not "
        "evidence, see economy.md; what these attackers earned is below)."
    )


def write_report(records: Sequence[dict[str, Any]], out: Path, meta: dict[str, Any]) -> None:
    """docs/incentives.md and docs/incentives/*.png from the records."""
    from incentives import ATTACKS
    from incentives_plots import plots

    attacks = [a for a in ATTACKS if any(r["cell"]["attack"] == a for r in records)]
    rounds = max(
        (r["cell"]["rounds"] for r in records if r["cell"]["rule"] == "fedavg"), default=30
    )
    main = _main_runs(records, rounds)
    long_runs = [r for r in records if r["cell"]["rounds"] > rounds]
    images = plots(records, attacks, rounds, out / "incentives")
    acc, gaps = accuracy_table(records, rounds)
    flags, bounds = flag_table([r for r in records if r["cell"]["rule"] == "default"])
    seconds = sum(r["seconds"] for r in records)
    honest_bad = sum(
        len(r["honest_slashed"]) + len(r["honest_jailed"])
        for r in records
        if r["cell"]["rule"] == "default"
    )
    text = [
        "# Incentives measured through the product",
        "",
        "Generated by `python experiments/incentives.py` from the run directories it wrote (each run's",
        "`metrics.parquet` and `summary.json`); the design these numbers test is argued in",
        "[economy.md](economy.md). Every run is `fedray run`'s config (20 clients, digits or MNIST-5k,",
        "the default rule and chain parameters) executed round by round by",
        "`fedray.federation.inprocess.InProcessFederation`: the real ledger apps, contracts, ingress,",
        "aggregation precompile and client pools, without Ray. Attackers are 20% of the clients from",
        "round 0, with the catalogue's parameters (`fedray/conf/attack/*.yaml`).",
        "",
        f"{len(records)} runs ({len(main)} with the default rule and {rounds} rounds, "
        f"{len(long_runs)} longer clean runs, the rest clean FedAvg), {seconds / 3600:.1f} CPU hours "
        "summed over the runs (one torch thread each, on 2 shared cores).",
        "",
        "## Honest clients slashed or jailed (target: 0 everywhere)",
        "",
        f"Honest client-runs slashed or jailed, of all honest client-runs, over every seed. In total: **{honest_bad}**.",
        "",
        attack_table(main, attacks, honest_cell),
        "## Attackers slashed within 5 rounds of the attack's start",
        "",
        "Attackers with a learning penalty (copied, replayed or zero updates, or noise-level updates",
        "or near copies in 3 of 5 rounds) by round 4, over every seed.",
        "",
        attack_table(main, attacks, caught_cell),
        _caught_summary(main, attacks),
        "",
        "![caught](incentives/caught.png)" if "caught.png" in images else "",
        "",
        "## What attackers earned",
        "",
        "Mean tokens earned per attacker over the mean per honest client of the same run (the largest",
        "ratio over the seeds; below 1: attackers earned less than honest clients).",
        "",
        attack_table(main, attacks, reward_cell),
        "## Accuracy against clean FedAvg",
        "",
        f"Final test accuracy (%) after {rounds} rounds, seeds 0 / 1 / 2, no attack; the target is the",
        "default rule within 2 pp of FedAvg at Dirichlet alpha 0.1 (same seed and rounds).",
        "",
        acc,
        "",
        "![accuracy](incentives/accuracy.png)" if "accuracy.png" in images else "",
        "",
        "## Reward share against data share",
        "",
        "Clean runs with the default rule: each client's share of the tokens minted to clients against",
        'its share of the training samples. "Rarest labels": the quarter of clients holding the largest',
        "part of their own classes' data.",
        "",
        share_table(share_rows(records, rounds)),
        "",
        "![reward vs data](incentives/reward_vs_data.png)"
        if "reward_vs_data.png" in images
        else "",
        "",
        "## How close honest updates came to each flag",
        "",
        "Every honest update of every run with the default rule (attacked runs included). Evidence",
        "flags count toward slashing (k = 3 of w = 5 rounds); zero updates are penalized at once;",
        "long or opposed updates lose the round's reward. \"Most opposed flags of one client in 5",
        'rounds" is what a k-of-w test on direction and length would have counted against an honest',
        "client (3 slashes it).",
        "",
        flags,
        "",
        "False-positive bound over the life of a federation: the per-update rate of evidence flags on",
        "honest updates (95% upper bound), and from it the chance that one honest client reaches 3",
        f"evidence flags within some 5 consecutive rounds in {LIFETIME_ROUNDS} rounds, by the union",
        "bound over windows, treating rounds as independent.",
        "",
        "| data | partition | evidence / honest updates | per-update rate, 95% upper bound | honest client slashed in 1,000 rounds, at most |",
        "|---|---|---|---|---|",
        *bounds,
        "",
    ]
    if long_runs:
        text += [
            "## Long clean runs",
            "",
            "| run | rounds | final accuracy | honest slashed | honest jailed | most evidence flags in 5 rounds |",
            "|---|---|---|---|---|---|",
            *(
                f"| {r['cell']['dataset']} {r['cell']['partition']} seed {r['cell']['seed']} | {r['rounds']} | "
                f"{100 * r['accuracy'][-1]:.1f} | {len(r['honest_slashed'])} | {len(r['honest_jailed'])} | "
                f"{r['honest_max_window']} |"
                for r in long_runs
            ),
            "",
        ]
    text += [
        "## Reproduce",
        "",
        "```",
        "python experiments/incentives.py --workers 2   # resumable: finished cells are skipped",
        "python experiments/incentives.py --report-only # this page from docs/incentives/results.jsonl",
        "```",
        "",
        f"Default-minus-FedAvg gaps over every clean pair: {', '.join(f'{100 * g:+.1f}' for g in gaps)} pp."
        if gaps
        else "",
        "",
    ]
    (out / "incentives.md").write_text("\n".join(text))
