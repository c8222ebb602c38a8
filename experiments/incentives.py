"""Fair incentives, measured through the product (issue 19): are honest data providers ever slashed
or jailed, under any label skew, are attackers caught, and does the reward follow contribution?

Every run is a `fedray run` config (the product's defaults plus the cell's data, partition, attack
and seed) executed by `fedray.federation.inprocess.InProcessFederation`: the real ledger apps,
contracts, ingress, aggregation precompile and client pools, so each round goes through the client
round (`fedray/learning/client_round.py`) and the aggregation round (`fedray/aggregation/round.py`)
that `fedray run` executes; what it leaves out is Ray and the consensus messaging (the chain's
decisions do not depend on them). Each run writes a run directory like `fedray run`'s, with
metrics.parquet (per round: accuracy, client balances, `slashed_clients`, `client_jailed`, ...),
summary.json (attackers, client sample counts and labels, and what the contribution flags saw) and
config.yaml; the tables are computed from those files (`incentives_report.py`).

Grid: digits and MNIST-5k; IID and Dirichlet alpha 1.0 / 0.5 / 0.3 / 0.1; no attack and every
attack of the catalogue (`fedray/conf/attack/*.yaml`, noise free riding too) at fraction 0.2; 3 seeds;
30 rounds; plus clean FedAvg (the accuracy reference) and 100-round clean runs at alpha 0.1 and 0.3.
Results are appended to a JSON lines file as runs finish; a rerun skips the cells already there.

    python experiments/incentives.py --workers 2        # the grid; writes docs/incentives.md
    python experiments/incentives.py --quick --out /tmp/inc   # a small subset in a few minutes
    python experiments/incentives.py --report-only      # redraw the report from the results file
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # BLAS threads spin against other processes on shared cores

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ProcessPoolExecutor, as_completed  # noqa: E402
from dataclasses import asdict, dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from fedray.config import RunConfig, load_config, to_yaml, validate  # noqa: E402
from fedray.core.precompiles import (  # noqa: E402
    EVIDENCE,
    FLAG_NORM,
    FLAG_OPPOSED,
    FREE_RIDING,
    WITHHOLD,
)
from fedray.federation.evaluate import Evaluator  # noqa: E402
from fedray.federation.inprocess import InProcessFederation  # noqa: E402
from fedray.federation.metrics import RoundContext, RoundTiming, round_row  # noqa: E402
from fedray.federation.record import RunRecord  # noqa: E402
from fedray.learning.attacks import ATTACKS as CATALOGUE  # noqa: E402
from fedray.node.views import RoundResultView, accounts_info, economy_info  # noqa: E402

DATASETS = ("digits", "mnist5k")
PARTITIONS = {"iid": None, "dir1.0": 1.0, "dir0.5": 0.5, "dir0.3": 0.3, "dir0.1": 0.1}
ATTACKS: dict[str, list[str]] = {
    "none": [],
    **{name: [f"attack={name}"] for name in CATALOGUE if name != "none"},
    "free_rider_noise": ["attack=free_rider", "attack.params.mode=noise"],
}
RULES = {"default": [], "fedavg": ["strategy=fedavg"]}
FRACTION = 0.2


@dataclass(frozen=True)
class Cell:
    dataset: str = "digits"
    partition: str = "iid"
    attack: str = "none"
    rule: str = "default"
    seed: int = 0
    rounds: int = 30

    @property
    def key(self) -> str:
        return (
            f"{self.dataset}-{self.partition}-{self.attack}-{self.rule}-s{self.seed}-r{self.rounds}"
        )

    def config(self) -> RunConfig:
        alpha = PARTITIONS[self.partition]
        overrides = [
            f"data={self.dataset}",
            f"seed={self.seed}",
            f"rounds={self.rounds}",
            f"name={self.key}",
            "baseline=false",
            "runtime.progress=false",
            *(
                ["data.partition=iid"]
                if alpha is None
                else ["data.partition=dirichlet", f"data.alpha={alpha}"]
            ),
            *RULES[self.rule],
            *ATTACKS[self.attack],
            *([f"attack.fraction={FRACTION}"] if self.attack != "none" else []),
        ]
        cfg = load_config(None, overrides)
        validate(cfg)
        return cfg


def grid(args: argparse.Namespace) -> list[Cell]:
    cells = [
        Cell(ds, part, attack, "default", seed, args.rounds)
        for ds in args.datasets
        for part in args.partitions
        for attack in args.attacks
        for seed in range(args.seeds)
    ]
    cells += [
        Cell(ds, part, "none", "fedavg", seed, args.rounds)
        for ds in args.datasets
        for part in args.partitions
        for seed in range(args.seeds)
    ]
    cells += [
        Cell(ds, part, "none", "default", seed, args.long_rounds)
        for ds in args.datasets
        for part in args.long_partitions
        for seed in range(args.seeds)
        if args.long_rounds
    ]
    return cells


def quick_grid() -> list[Cell]:
    cells = [Cell("digits", p, a, rounds=8) for p in ("iid", "dir0.1") for a in ATTACKS]
    return cells + [Cell("digits", "dir0.1", "none", "fedavg", rounds=8)]


# --- one run ----------------------------------------------------------------------------------
def _flat(tensors: dict[str, np.ndarray]) -> np.ndarray:
    return np.concatenate([tensors[k].astype(np.float64).ravel() for k in sorted(tensors)])


def update_stats(blobs: Any, result: Any) -> list[dict[str, float]]:
    """Continuous statistics behind the flags, per update (float64, for the report's margins):
    norm over the round's median norm and over the flags' allowance (that times
    sqrt(max(1, samples / median samples))), cosine to the aggregate, and the largest |cosine|
    with another update, in units of 1/sqrt(P) (the noise level) and plain."""
    if not result.updates:
        return []
    x = np.stack([_flat(blobs.get(u.payload_hash)) for u in result.updates])
    agg = _flat(blobs.get(result.global_after)) - _flat(blobs.get(result.global_before))
    norms = np.linalg.norm(x, axis=1)
    median = np.sort(norms)[(len(norms) - 1) // 2]
    samples = np.array([u.n_samples for u in result.updates], dtype=np.float64)
    allowance = np.sqrt(np.maximum(1.0, samples / np.sort(samples)[(len(samples) - 1) // 2]))
    unit = x / np.maximum(norms, 1e-300)[:, None]
    cos = unit @ unit.T
    np.fill_diagonal(cos, 0.0)
    agg_norm = np.linalg.norm(agg)
    out = []
    for i in range(len(x)):
        others = np.abs(cos[i]).max() if len(x) > 1 else 0.0
        out.append(
            {
                "norm_ratio": float(norms[i] / median) if median else 0.0,
                "norm_excess": float(norms[i] / median / allowance[i]) if median else 0.0,
                "cos_agg": float(unit[i] @ agg / agg_norm) if agg_norm else 0.0,
                "noise_z": float(others * np.sqrt(x.shape[1])),
                "max_cos": float(cos[i].max()) if len(x) > 1 else 0.0,
            }
        )
    return out


def run_cell(cell: Cell, runs_dir: Path, validators: int) -> dict[str, Any]:
    """Run one cell, write its run directory, and return the cell's summary (read back from it)."""
    torch.set_num_threads(1)
    cfg = cell.config()
    run_dir = runs_dir / cell.key
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(to_yaml(cfg))
    scratch = "/dev/shm" if Path("/dev/shm").is_dir() else None  # tmpfs: no fsync cost
    start = time.time()
    rows: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="fedray-incentives-", dir=scratch) as root:
        net = InProcessFederation(root, cfg, validators)
        fed, app = net.fed, net.apps[0]
        record = RunRecord(run_dir, fed)  # metrics.parquet as `fedray run` writes it
        keys = [fed.client_key(i).public_key for i in range(cfg.clients)]
        index = {k: i for i, k in enumerate(keys)}
        evaluator = Evaluator(fed)
        net.block()
        for r in range(cfg.rounds):
            if not net.state.section("rounds").open:
                break  # no eligible client left
            timing = RoundTiming(time.time(), time.time())
            aggregation_before = app.aggregation.seconds
            report = net.train_round()
            timing.train_s, timing.sent_wall = time.time() - timing.opened_wall, time.time()
            net.close_round(report.round)
            result = net.state.section("rounds").results[-1]
            context = RoundContext(
                time.time(),
                start,
                net.state.height,
                rows[-1]["cumulative_txs"] if rows else 0,
                sum(a.nbytes for a in net.initial.values()),
                len(net.pools),
            )
            row = round_row(
                RoundResultView.of(result),
                timing,
                evaluator.evaluate(app.blobs.get(result.global_after)),
                app.aggregation.seconds - aggregation_before,
                context,
                keys,
                accounts_info(net.state, keys),
                economy_info(net.state),
            )
            rows.append(record.add_row(row.as_dict()))
            stats = update_stats(app.blobs, result)
            for u, v, s in zip(result.updates, result.verdicts, stats, strict=True):
                updates.append(
                    {"round": r, "client": index[u.client], "flags": v.flags}
                    | {"contribution": v.contribution, **s}
                )
        net.close()
    shards = fed.shards()
    summary = {
        "name": cfg.name,
        "cell": asdict(cell),
        "rounds": len(rows),
        "final_accuracy": rows[-1]["accuracy"] if rows else 0.0,
        "elapsed_seconds": time.time() - start,
        "attackers": list(fed.attackers()),
        "attack_start_round": cfg.attack.start_round,
        "client_samples": [len(shards[i]) for i in range(cfg.clients)],
        "client_labels": [shards[i].label_counts().tolist() for i in range(cfg.clients)],
        "genesis_balance": cfg.chain.client_balance,
        "flag_window": fed.params().flag_window,
        "updates": updates,
    }
    record.progress(summary)
    return summarize_run(run_dir)


# --- a cell's figures, read from its run directory ---------------------------------------------
def summarize_run(run_dir: Path) -> dict[str, Any]:
    """What the report needs from one run, computed from metrics.parquet and summary.json only."""
    import pyarrow.parquet as pq

    rows = pq.read_table(run_dir / "metrics.parquet").to_pylist()
    s = json.loads((run_dir / "summary.json").read_text())
    n = len(s["client_samples"])
    attackers = set(s["attackers"])
    honest = [i for i in range(n) if i not in attackers]
    first_slash: dict[int, int] = {}
    jailed: set[int] = set()
    for row in rows:
        for i in row["slashed_clients"]:
            first_slash.setdefault(i, row["round"])
        jailed |= {i for i, j in enumerate(row["client_jailed"]) if j}
    balances = np.array([row["client_balances"] for row in rows], dtype=np.int64)
    earned = (balances[-1] - s["genesis_balance"]).tolist() if rows else [0] * n
    start = s["attack_start_round"]
    w = s["flag_window"]
    honest_updates = [u for u in s["updates"] if u["client"] not in attackers]

    def most_in_window(mask: int) -> int:
        """The most rounds with a `mask` flag any honest client had within w consecutive rounds."""
        best = 0
        for i in honest:
            marks = [u["round"] for u in honest_updates if u["client"] == i and u["flags"] & mask]
            best = max([best, *(sum(1 for b in marks if a <= b < a + w) for a in marks)])
        return best

    attacker_updates = [u for u in s["updates"] if u["client"] in attackers]
    return {
        "cell": s["cell"],
        "seconds": s["elapsed_seconds"],
        "rounds": len(rows),
        "accuracy": [row["accuracy"] for row in rows],
        "attackers": sorted(attackers),
        "honest_slashed": sorted(i for i in first_slash if i not in attackers),
        "honest_jailed": sorted(jailed - attackers),
        "caught_in_5": sorted(i for i in attackers if first_slash.get(i, 10**9) <= start + 4),
        "first_slash": {str(i): r for i, r in sorted(first_slash.items())},
        "earned": earned,
        "samples": s["client_samples"],
        "labels": s["client_labels"],
        "honest_updates": len(honest_updates),
        "honest_evidence": sum(1 for u in honest_updates if u["flags"] & EVIDENCE),
        "honest_free_riding": sum(1 for u in honest_updates if u["flags"] & FREE_RIDING),
        "honest_max_window": most_in_window(EVIDENCE),
        "honest_long_or_opposed": sum(
            1 for u in honest_updates if u["flags"] & (FLAG_NORM | FLAG_OPPOSED)
        ),
        "honest_opposed_window": most_in_window(FLAG_OPPOSED),
        "honest_withheld": sum(1 for u in honest_updates if u["flags"] & WITHHOLD),
        "attacker_updates": len(attacker_updates),
        "attacker_flagged": sum(
            1 for u in attacker_updates if u["flags"] & (EVIDENCE | FREE_RIDING)
        ),
        "honest_margins": margins(honest_updates),
    }


def margins(updates: list[dict[str, Any]]) -> dict[str, float]:
    """The honest extremes of each flag's statistic (how close honest updates came to a flag)."""
    if not updates:
        return {}
    return {
        "max_norm_ratio": max(u["norm_ratio"] for u in updates),
        "max_norm_excess": max(u["norm_excess"] for u in updates),
        "min_noise_z": min(u["noise_z"] for u in updates),
        "max_copy_cos": max(u["max_cos"] for u in updates),
        "min_cos_agg": min(u["cos_agg"] for u in updates),
        # opposed fires when both -cos/0.2 and norm_excess/2 exceed 1: the honest maximum of the min
        "max_opposed": max(min(-u["cos_agg"] / 0.2, u["norm_excess"] / 2.0) for u in updates),
    }


# --- the grid ---------------------------------------------------------------------------------
def load_done(path: Path) -> dict[str, dict[str, Any]]:
    if not path.exists():
        return {}
    done = {}
    for line in path.read_text().splitlines():
        if line.strip():
            rec = json.loads(line)
            done[Cell(**rec["cell"]).key] = rec
    return done


def main(argv: list[str] | None = None) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling report module
    from incentives_report import write_report

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="digits, IID and alpha 0.1, 8 rounds")
    p.add_argument("--out", type=Path, help="where incentives.md goes (docs; --quick: runs/quick)")
    p.add_argument(
        "--results", type=Path, help="JSON lines file (default <out>/incentives/results.jsonl)"
    )
    p.add_argument("--runs", type=Path, default=Path("runs/incentives"), help="run directories")
    p.add_argument("--datasets", nargs="*", default=list(DATASETS), choices=DATASETS)
    p.add_argument("--partitions", nargs="*", default=list(PARTITIONS), choices=list(PARTITIONS))
    p.add_argument("--attacks", nargs="*", default=list(ATTACKS), choices=list(ATTACKS))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--long-rounds", type=int, default=100, help="clean long runs (0: none)")
    p.add_argument("--long-partitions", nargs="*", default=["dir0.1", "dir0.3"])
    p.add_argument("--validators", type=int, default=4)
    p.add_argument("--workers", type=int, default=1, help="runs in parallel (processes)")
    p.add_argument("--report-only", action="store_true")
    args = p.parse_args(argv)
    args.out = args.out or Path("runs/quick" if args.quick else "docs")
    results_path = args.results or args.out / "incentives" / "results.jsonl"
    cells = quick_grid() if args.quick else grid(args)
    done = load_done(results_path)
    # seed by seed, so that an interrupted grid still covers every setting
    todo = sorted(
        (c for c in cells if c.key not in done), key=lambda c: (c.seed, c.dataset, c.rounds)
    )
    t0 = time.time()
    if not args.report_only and todo:
        results_path.parent.mkdir(parents=True, exist_ok=True)
        print(f"{len(cells)} cells, {len(cells) - len(todo)} done, {len(todo)} to run", flush=True)
        with ProcessPoolExecutor(args.workers) as pool, results_path.open("a") as out:
            futures = {pool.submit(run_cell, c, args.runs, args.validators): c for c in todo}
            for i, fut in enumerate(as_completed(futures)):
                rec = fut.result()
                done[futures[fut].key] = rec
                out.write(json.dumps(rec) + "\n")
                out.flush()
                print(
                    f"[{i + 1}/{len(todo)}] {futures[fut].key}: acc {rec['accuracy'][-1]:.3f}, "
                    f"honest slashed {rec['honest_slashed']} jailed {rec['honest_jailed']}, "
                    f"caught {len(rec['caught_in_5'])}/{len(rec['attackers'])} "
                    f"({rec['seconds']:.0f} s)",
                    flush=True,
                )
    keys = {c.key for c in cells}
    records = [r for k, r in done.items() if k in keys or args.report_only]
    meta = {"seconds_this_call": round(time.time() - t0), "quick": args.quick}
    write_report(records, args.out, meta)
    print(f"wrote {args.out / 'incentives.md'} ({len(records)} runs)")


if __name__ == "__main__":
    main()
