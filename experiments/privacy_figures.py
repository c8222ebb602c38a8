"""Accuracy against epsilon under client-level DP, through `fedray run` (issue 23).

Every federated cell is a `fedray run` config executed by the product's `run()` (Ray, the chain,
the budget enforced on chain): data set x partition (IID, Dirichlet 0.5) x target epsilon
(1, 3, 8, inf = no DP), `privacy=local` (or --mode distributed), 20 clients, 10 per round. For
reference, each finite epsilon also gets a centralized DP-SGD baseline on the pooled training data
(Opacus's PrivacyEngine, record-level DP, same model, same epsilon and delta): a different unit of
privacy, shown only to say what the same epsilon buys when one party holds all the data.

Each cell appends one line to the results file as it finishes (a rerun skips the cells already
there), then the plot is redrawn:

    nice -n 5 python experiments/privacy_figures.py --data digits --rounds 20
    python experiments/privacy_figures.py --plot-only
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent.parent / "docs" / "privacy"
EPSILONS = (1.0, 3.0, 8.0, math.inf)
PARTITIONS = {"iid": ["data.partition=iid"], "dirichlet0.5": ["data=dirichlet", "data.alpha=0.5"]}


def cell_config(
    data: str,
    partition: str,
    eps: float,
    mode: str,
    rounds: int,
    out: str,
    clients: int = 20,
    per_round: int = 10,
) -> Any:
    from fedray.config import load_config

    privacy = ["privacy=none"] if eps == math.inf else [f"privacy={mode}", f"privacy.epsilon={eps}"]
    return load_config(
        None,
        [
            f"data={data}",
            *PARTITIONS[partition],
            *privacy,
            f"rounds={rounds}",
            f"clients={clients}",
            f"chain.clients_per_round={per_round}",
            f"name=dp-{data}-{partition}-{eps}-{clients}",
            f"output_dir={out}",
            "baseline=false",
            "runtime.num_cpus=2",
            "runtime.object_store_mb=128",
            "runtime.client_pools=1",
            "runtime.progress=false",
            "runtime.checkpoint_every=0",
        ],
    )


def federated_cell(
    data: str, partition: str, eps: float, mode: str, rounds: int, clients: int, per_round: int
) -> dict[str, Any]:
    from fedray.runtime.launch import run

    out = tempfile.mkdtemp(prefix="fedray-dp-")
    try:
        cfg = cell_config(data, partition, eps, mode, rounds, out, clients, per_round)
        start = time.time()
        result = run(cfg)
        s = result.summary
        return {
            "kind": "federated",
            "data": data,
            "partition": partition,
            "mode": mode if eps != math.inf else "none",
            "clients": clients,
            "per_round": per_round,
            "epsilon_target": None if eps == math.inf else eps,
            "epsilon_spent": s["privacy"]["epsilon_spent"],
            "noise_multiplier": s["privacy"].get("noise_multiplier"),
            "rounds_trained": s["rounds"],
            "budget_spent_after_round": s["privacy"].get("budget_spent_after_round"),
            "final_accuracy": s["final_accuracy"],
            "best_accuracy": max(r["accuracy"] for r in result.rows) if result.rows else None,
            "initial_accuracy": s["initial_accuracy"],
            "penalties": s["economy"]["penalties"],
            "seconds": time.time() - start,
        }
    finally:
        shutil.rmtree(out, ignore_errors=True)


def dpsgd_cell(data: str, eps: float, epochs: int = 10) -> dict[str, Any]:
    """Centralized DP-SGD (Opacus) on the pooled training data at (eps, 1e-5)."""
    import numpy as np
    import torch
    from opacus import PrivacyEngine
    from torch.utils.data import DataLoader, TensorDataset

    from fedray.federation.plan import Federation
    from fedray.learning.models import build_model

    torch.set_num_threads(1)
    torch.manual_seed(0)
    fed = Federation(cell_config(data, "iid", eps, "local", 1, "/tmp"))
    split = fed.split()
    model = build_model(fed.model_spec(), 0)
    x = torch.from_numpy(split.train.x).reshape(len(split.train.x), *fed.model_spec().input_shape)
    loader = DataLoader(TensorDataset(x, torch.from_numpy(split.train.y)), batch_size=64)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    engine = PrivacyEngine(accountant="rdp")
    model, optimizer, loader = engine.make_private_with_epsilon(
        module=model,
        optimizer=optimizer,
        data_loader=loader,
        target_epsilon=eps,
        target_delta=1e-5,
        epochs=epochs,
        max_grad_norm=1.0,
    )
    for _ in range(epochs):
        for xb, yb in loader:
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(xb), yb).backward()
            optimizer.step()
    xt = torch.from_numpy(split.test.x).reshape(len(split.test.x), *fed.model_spec().input_shape)
    with torch.no_grad():
        accuracy = float((model(xt).argmax(1).numpy() == np.asarray(split.test.y)).mean())
    return {
        "kind": "dpsgd",
        "data": data,
        "partition": "pooled",
        "epsilon_target": eps,
        "epsilon_spent": float(engine.get_epsilon(1e-5)),
        "final_accuracy": accuracy,
        "epochs": epochs,
    }


def key(row: dict[str, Any]) -> tuple[Any, ...]:
    """A cell: kind, data, partition, mode, target epsilon (and the population, when not the
    default 20 clients, 10 per round)."""
    cell = (row["kind"], row["data"], row["partition"], row.get("mode"), row["epsilon_target"])
    size = (row.get("clients", 20), row.get("per_round", 10))
    return cell if size == (20, 10) or row["kind"] == "dpsgd" else (*cell, *size)


def markdown_table(results: Path) -> str:
    """Final test accuracy per (data, partition, mode) and target epsilon, DP-SGD below."""
    rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    eps_cols = (1.0, 3.0, 8.0, None)
    lines = [
        "| data | partition | DP | eps 1 | eps 3 | eps 8 | no DP (inf) | z at eps 1 / 3 / 8 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    found: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in rows:  # the first run of a cell (a repeated one differs by its selection draws)
        found.setdefault(key(r), r)
    for data in sorted({r["data"] for r in rows}):
        for partition in PARTITIONS:
            for mode in ("local", "distributed"):
                cells, zs = [], []
                for eps in eps_cols:
                    r = (
                        found.get(("federated", data, partition, "none", None))
                        if eps is None
                        else found.get(("federated", data, partition, mode, eps))
                    )
                    cells.append(f"{r['final_accuracy']:.3f}" if r else "not run")
                    if eps is not None:
                        zs.append(f"{r['noise_multiplier']:g}" if r else "-")
                if any(c != "not run" for c in cells[:3]):
                    lines.append(
                        f"| {data} | {partition} | {mode} | "
                        + " | ".join(cells)
                        + f" | {' / '.join(zs)} |"
                    )
        sizes = sorted({k[5:] for k in found if k[1] == data and len(k) > 5})
        for (clients, per_round), partition, mode in itertools.product(
            sizes, PARTITIONS, ("local", "distributed")
        ):
            cells, zs = [], []
            for eps in eps_cols:
                m = "none" if eps is None else mode
                r = found.get(("federated", data, partition, m, eps, clients, per_round))
                cells.append(f"{r['final_accuracy']:.3f}" if r else "not run")
                if eps is not None:
                    zs.append(f"{r['noise_multiplier']:g}" if r else "-")
            if any(c != "not run" for c in cells[:3]):
                label = f"{mode}, {clients} clients, {per_round}/round"
                lines.append(
                    f"| {data} | {partition} | {label} | "
                    + " | ".join(cells)
                    + f" | {' / '.join(zs)} |"
                )
        dpsgd = [found.get(("dpsgd", data, "pooled", None, eps)) for eps in eps_cols[:3]]
        if any(dpsgd):
            cells = [f"{r['final_accuracy']:.3f}" if r else "not run" for r in dpsgd]
            lines.append(
                f"| {data} | pooled | DP-SGD (record-level) | " + " | ".join(cells) + " | | |"
            )
    return "\n".join(lines)


def plot(results: Path, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first: dict[tuple[Any, ...], dict[str, Any]] = {}
    for line in results.read_text().splitlines():
        if line.strip():
            first.setdefault(key(json.loads(line)), json.loads(line))
    rows = list(first.values())
    labels = {1.0: "1", 3.0: "3", 8.0: "8", None: "inf"}
    xs = {1.0: 0, 3.0: 1, 8.0: 2, None: 3}
    datasets = sorted({r["data"] for r in rows})
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 5.6), squeeze=False)
    for ax, data in zip(axes[0], datasets, strict=True):
        series: dict[str, list[tuple[int, float]]] = {}
        for r in rows:
            if r["data"] != data:
                continue
            size = (r.get("clients", 20), r.get("per_round", 10))
            suffix = "" if size == (20, 10) else f", {size[0]} clients, {size[1]}/round"
            if r["kind"] == "dpsgd":
                name = "centralized DP-SGD (record-level)"
            else:
                name = f"{r['partition']} ({r.get('mode', 'local')} DP{suffix})"
            if r["kind"] == "federated" and r["epsilon_target"] is None:
                for mode in ("local", "distributed"):  # no DP: the same point for every mode
                    series.setdefault(f"{r['partition']} ({mode} DP{suffix})", []).append(
                        (3, r["final_accuracy"])
                    )
                continue
            series.setdefault(name, []).append((xs[r["epsilon_target"]], r["final_accuracy"]))
        for name, points in sorted(series.items()):
            if len(points) < 2 and "DP-SGD" not in name:
                continue
            points.sort()
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=name)
        ax.set_xticks(list(xs.values()), [labels[k] for k in xs])
        ax.set_xlabel("target epsilon (delta 1e-5)")
        ax.set_ylabel("test accuracy")
        ax.set_title(data)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.16), ncol=2)
    fig.tight_layout()
    fig.savefig(png, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", nargs="+", default=["digits", "mnist5k"])
    ap.add_argument("--partitions", nargs="+", default=list(PARTITIONS))
    ap.add_argument("--epsilons", nargs="+", type=float, default=list(EPSILONS))
    ap.add_argument("--mode", default="local", choices=("local", "distributed"))
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--per-round", type=int, default=10)
    ap.add_argument("--no-dpsgd", action="store_true")
    ap.add_argument("--out", type=Path, default=DOCS)
    ap.add_argument("--plot-only", action="store_true")
    ap.add_argument("--table", action="store_true", help="print the markdown table and stop")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = args.out / "results.jsonl"
    if args.table:
        print(markdown_table(results))
        return
    done = set()
    if results.exists():
        done = {key(json.loads(x)) for x in results.read_text().splitlines() if x.strip()}
    if not args.plot_only:
        for data in args.data:
            cells: list[tuple[str, Any]] = []
            for eps in args.epsilons:
                mode = "none" if eps == math.inf else args.mode
                for partition in args.partitions:
                    k = key(
                        {
                            "kind": "federated",
                            "data": data,
                            "partition": partition,
                            "mode": mode,
                            "epsilon_target": None if eps == math.inf else eps,
                            "clients": args.clients,
                            "per_round": args.per_round,
                        }
                    )
                    if k not in done:
                        cell = (data, partition, eps, args.mode, args.rounds)
                        cells.append(("fed", (*cell, args.clients, args.per_round)))
                dpsgd_done = ("dpsgd", data, "pooled", None, eps) in done
                if not args.no_dpsgd and eps != math.inf and not dpsgd_done:
                    cells.append(("dpsgd", (data, eps)))
            for kind, cell_args in cells:
                row = federated_cell(*cell_args) if kind == "fed" else dpsgd_cell(*cell_args)
                print(json.dumps(row), flush=True)
                with results.open("a") as f:
                    f.write(json.dumps(row) + "\n")
    if results.exists():
        plot(results, args.out / "accuracy_vs_epsilon.png")


if __name__ == "__main__":
    main()
