"""How much of a client's training data its update gives away: gradient inversion with and without DP.

An honest-but-curious validator reads one client's update and runs DLG/iDLG (Zhu et al. 2019; Zhao
et al. 2020) on it to reconstruct the client's training images. The update is the one fedray sends:
`train_local` (fedray's local SGD, lr 0.1, momentum 0.9, the mlp's defaults) from the global model
on the client's batch, then, under DP, `fedray.learning.dp.privatize` (clip to C, Gaussian noise of
std z * C, seeded by `dp_seed`), then int32 fixed point (`quantize`/`dequantize`), as the client
round does. One local step (epochs 1 on a single batch) is the attacker's best case: the update is
then exactly -lr times the batch gradient. Multi-step rows show the same attack on 5 local steps.

The model is fedray's default `mlp` (64-64-10) on sklearn's 8x8 digits at its seeded
initialisation (round 0). Writes `inversion.md`, `inversion_results.json` and
`inversion_examples.png` under --out, prints the table, and ends with a one-line summary.

    nice -n 5 python experiments/gradient_inversion.py --out docs/privacy      # the full run
    python experiments/gradient_inversion.py --quick --out /tmp/inv             # a smoke run
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from inversion_attack import AttackConfig, implied_gradient, invert, score  # noqa: E402
from inversion_report import write_examples, write_markdown  # noqa: E402

from fedray.aggregation.fixedpoint import dequantize, quantize  # noqa: E402
from fedray.config import MODEL_TRAINING  # noqa: E402
from fedray.learning.datasets import Dataset, load_digits  # noqa: E402
from fedray.learning.dp import dp_seed, l2_norm, privatize  # noqa: E402
from fedray.learning.models import ModelSpec, build_model, get_params, set_params  # noqa: E402
from fedray.learning.training import TrainConfig, train_local  # noqa: E402

LR = MODEL_TRAINING["mlp"][1]
MOMENTUM = 0.9


@dataclass(frozen=True)
class Condition:
    """One cell: batch size, noise multiplier z (None: no DP at all), local epochs on the batch."""

    name: str
    batch_size: int
    z: float | None
    local_epochs: int = 1
    group: str = "main"  # main | sweep | multistep


def observed_update(
    model: torch.nn.Module,
    global_params: dict[str, np.ndarray],
    batch: Dataset,
    cond: Condition,
    clip_norm: float,
    seed: int,
    target: int,
) -> tuple[dict[str, np.ndarray], float]:
    """What the validator reads: fedray's local update, privatized under DP, in fixed point; and
    the update's norm before clipping."""
    cfg = TrainConfig(
        epochs=cond.local_epochs, batch_size=cond.batch_size, lr=LR, momentum=MOMENTUM
    )
    delta = train_local(model, global_params, batch, cfg, seed=seed + target).delta
    norm = l2_norm(delta)
    if cond.z is not None:
        rng = np.random.default_rng(dp_seed(seed, 0, target))
        delta, norm = privatize(delta, clip_norm, cond.z * clip_norm, rng)
    return dequantize(quantize(delta)), norm


def run_condition(
    cond: Condition,
    split_x: Dataset,
    batches: list[np.ndarray],
    attack: AttackConfig,
    clip_norm: float,
    seed: int,
) -> dict[str, Any]:
    spec = ModelSpec("mlp", split_x.input_shape, split_x.num_classes, hidden=64)
    model = build_model(spec, seed)
    global_params = get_params(model)
    names = list(global_params)
    psnrs, ssims, label_acc, norms, clipped, recons = [], [], [], [], [], []
    t0 = time.perf_counter()
    for t, idx in enumerate(batches):
        batch = split_x.subset(idx)
        observed, norm = observed_update(model, global_params, batch, cond, clip_norm, seed, t)
        set_params(model, global_params)
        target = implied_gradient(observed, names, LR)
        rec = invert(
            model,
            target,
            cond.batch_size,
            spec.input_shape,
            spec.num_classes,
            attack,
            seed=seed + t,
        )
        p, s = score(batch.x, rec.images)
        psnrs.append(float(np.mean(p)))
        ssims.append(float(np.mean(s)))
        # labels as a multiset: the batch is unordered
        hit = np.minimum(
            np.bincount(batch.y, minlength=10), np.bincount(rec.labels, minlength=10)
        ).sum()
        label_acc.append(float(hit) / cond.batch_size)
        norms.append(norm)
        clipped.append(cond.z is not None and norm > clip_norm)
        recons.append(rec.images)
    return {
        "condition": asdict(cond),
        "psnr_mean": float(np.mean(psnrs)),
        "psnr_std": float(np.std(psnrs)),
        "ssim_mean": float(np.mean(ssims)),
        "ssim_std": float(np.std(ssims)),
        "label_accuracy": float(np.mean(label_acc)),
        "update_norm_median": float(np.median(norms)),
        "clipped_fraction": float(np.mean(clipped)),
        "psnr_per_target": psnrs,
        "ssim_per_target": ssims,
        "seconds": time.perf_counter() - t0,
        "_recons": recons,  # dropped before writing JSON
    }


def prior_baseline(train: Dataset, batches: list[np.ndarray]) -> dict[str, float]:
    """What an attacker gets without the update: the mean training digit as every guess."""
    mean = train.x.mean(axis=0, keepdims=True)
    out: dict[str, float] = {}
    for bs in sorted({len(b) for b in batches}):
        ps, ss = [], []
        for idx in (b for b in batches if len(b) == bs):
            x = train.x[idx]
            p, s = score(x, np.repeat(mean, len(x), axis=0))
            ps.append(np.mean(p))
            ss.append(np.mean(s))
        out[f"psnr_bs{bs}"] = float(np.mean(ps))
        out[f"ssim_bs{bs}"] = float(np.mean(ss))
    return out


def single_release_epsilon(z: float, delta: float) -> float:
    """epsilon of ONE Gaussian release with noise multiplier z (sensitivity C, add/remove), exact
    (the analytic Gaussian mechanism, Balle & Wang 2018); before any composition over rounds."""
    from scipy.optimize import brentq
    from scipy.stats import norm

    def excess(eps: float) -> float:
        a = norm.cdf(-eps * z + 1 / (2 * z))
        b = np.exp(eps + norm.logcdf(-eps * z - 1 / (2 * z)))
        return float(a - b) - delta

    return 0.0 if excess(0.0) <= 0 else float(brentq(excess, 0.0, 1e8))


def z_for_single_release(eps: float, delta: float) -> float:
    """The smallest z at which one release alone is (eps, delta)-DP: any run of fedray's local DP
    at that target, over any number of rounds, adds at least this much noise."""
    from scipy.optimize import brentq

    return float(brentq(lambda z: single_release_epsilon(z, delta) - eps, 0.05, 50.0))


def conditions(z_dp: float, sweep: list[float], quick: bool) -> list[Condition]:
    main = [
        Condition("nodp_bs1", 1, None),
        Condition("nodp_bs8", 8, None),
        Condition("dp_bs1", 1, z_dp),
        Condition("dp_bs8", 8, z_dp),
    ]
    if quick:
        return main
    swept = [Condition(f"sweep_bs{bs}_z{z:g}", bs, z, 1, "sweep") for bs in (1, 8) for z in sweep]
    multi = [Condition(f"nodp_bs{bs}_5steps", bs, None, 5, "multistep") for bs in (1, 8)]
    return main + swept + multi


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("docs/privacy"))
    ap.add_argument("--targets", type=int, default=16, help="target batches per condition")
    ap.add_argument("--sweep-targets", type=int, default=4, help="target batches per sweep cell")
    ap.add_argument("--iterations", type=int, default=800)
    ap.add_argument("--restarts", type=int, default=3)
    ap.add_argument("--clip-norm", type=float, default=0.05)
    ap.add_argument("--epsilon", type=float, default=8.0)
    ap.add_argument("--delta", type=float, default=1e-5)
    ap.add_argument("--sweep", type=float, nargs="*", default=[0, 1e-3, 3e-3, 0.01, 0.03, 0.1, 1.0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="4 main cells, 2 targets, short attack")
    args = ap.parse_args(argv)
    if args.quick:
        args.targets, args.iterations, args.restarts = 2, 300, 2
    torch.set_num_threads(1)  # deterministic and polite on a shared machine

    split = load_digits(seed=args.seed)
    z_dp = z_for_single_release(args.epsilon, args.delta)
    attack = AttackConfig(iterations=args.iterations, restarts=args.restarts)
    rng = np.random.default_rng(args.seed)
    # the same target batches for every condition of a batch size
    pool = {
        bs: [rng.choice(len(split.train), bs, replace=False) for _ in range(args.targets)]
        for bs in (1, 8)
    }
    results = []
    for cond in conditions(z_dp, args.sweep, args.quick):
        n = args.targets if cond.group != "sweep" else min(args.sweep_targets, args.targets)
        r = run_condition(
            cond, split.train, pool[cond.batch_size][:n], attack, args.clip_norm, args.seed
        )
        if cond.z:  # None (no DP) and 0 (clipping only) buy no epsilon
            r["epsilon_single_release"] = single_release_epsilon(cond.z, args.delta)
        results.append(r)
        print(
            f"{cond.name:<22} bs={cond.batch_size} z={cond.z if cond.z is None else round(cond.z, 4)} steps={cond.local_epochs} "
            f"n={n}  PSNR {r['psnr_mean']:6.2f} +- {r['psnr_std']:5.2f} dB  "
            f"SSIM {r['ssim_mean']:6.3f} +- {r['ssim_std']:5.3f}  labels {r['label_accuracy']:.2f}"
            f"  ({r['seconds']:.0f} s)",
            flush=True,
        )
    prior = prior_baseline(split.train, pool[1] + pool[8])
    print(f"prior only (mean digit): {prior}")

    args.out.mkdir(parents=True, exist_ok=True)
    by = {r["condition"]["name"]: r for r in results}
    write_examples(
        args.out / "inversion_examples.png",
        {bs: split.train.x[pool[bs][0]] for bs in (1, 8)},
        {bs: by[f"nodp_bs{bs}"]["_recons"][0] for bs in (1, 8)},
        {bs: by[f"dp_bs{bs}"]["_recons"][0] for bs in (1, 8)},
        z_dp,
    )
    for r in results:
        r.pop("_recons")
    settings = {
        "dataset": "digits (sklearn, 8x8, train split seed 0)",
        "model": "mlp 64-64-10, fedray seeded init (round 0)",
        "local_training": {"lr": LR, "momentum": MOMENTUM, "optimizer": "fedray train_local SGD"},
        "clip_norm": args.clip_norm,
        "epsilon_target": args.epsilon,
        "delta": args.delta,
        "z_dp": z_dp,
        "attack": asdict(attack),
        "targets": args.targets,
        "sweep_targets": args.sweep_targets,
        "seed": args.seed,
        "quick": args.quick,
        "torch": torch.__version__,
    }
    payload = {"settings": settings, "prior_baseline": prior, "results": results}
    (args.out / "inversion_results.json").write_text(json.dumps(payload, indent=2) + "\n")
    write_markdown(args.out / "inversion.md", payload)
    summary = " ".join(
        f"{m}_{c}={by[c][m + '_mean']:.{2 if m == 'psnr' else 3}f}"
        for m in ("psnr", "ssim")
        for c in ("nodp_bs1", "dp_bs1", "nodp_bs8", "dp_bs8")
    )
    print(summary)
    return payload


if __name__ == "__main__":
    main()
