"""The gradient-inversion report: example images (PNG) and docs/privacy/inversion.md from the results.

Owns the presentation of `experiments/gradient_inversion.py`'s results; computes nothing new.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from inversion_attack import match_batch


def write_examples(
    path: Path,
    originals: dict[int, np.ndarray],
    nodp: dict[int, np.ndarray],
    dp: dict[int, np.ndarray],
    z_dp: float,
) -> None:
    """Rows original / no-DP reconstruction / DP reconstruction, for the first target of each
    batch size; reconstructions ordered by the same matching that scored them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(originals)
    cols = sum(len(originals[bs]) for bs in sizes) + len(sizes) - 1
    fig, axes = plt.subplots(3, cols, figsize=(1.0 * cols + 1.2, 3.6))
    for ax in axes.flat:
        ax.axis("off")
    labels = ("original", "no DP", f"DP z={z_dp:.2f}")
    col = 0
    for bs in sizes:
        o = originals[bs]
        rows = (o, nodp[bs][match_batch(o, nodp[bs])], dp[bs][match_batch(o, dp[bs])])
        for r, imgs in enumerate(rows):
            for i, img in enumerate(imgs):
                ax = axes[r, col + i]
                ax.imshow(img.reshape(img.shape[-2:]), cmap="gray_r", vmin=0, vmax=1)
                if i == 0:
                    ax.set_title(f"batch {bs}" if r == 0 else "", fontsize=8, loc="left")
        col += len(o) + 1
    for r, text in enumerate(labels):
        axes[r, 0].text(-1.2, 3.5, text, ha="right", va="center", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _row(r: dict[str, Any]) -> str:
    c = r["condition"]
    z = "none" if c["z"] is None else f"{c['z']:.4g}"
    eps = r.get("epsilon_single_release")
    eps_s = "inf" if eps is None else f"{eps:,.1f}"
    n = len(r["psnr_per_target"])
    return (
        f"| {c['batch_size']} | {z} | {eps_s} | {c['local_epochs']} | {n} "
        f"| {r['psnr_mean']:.2f} ± {r['psnr_std']:.2f} | {r['ssim_mean']:.3f} ± {r['ssim_std']:.3f} "
        f"| {r['label_accuracy']:.2f} |"
    )


HEADER = (
    "| batch | z | ε of one release | local steps | targets | PSNR dB (mean ± sd) "
    "| SSIM (mean ± sd) | labels right |\n|---|---|---|---|---|---|---|---|"
)


def _chance(batch: int, classes: int = 10) -> float:
    """Expected multiset overlap (as a fraction of the batch) between two independent uniform
    label batches: sum over classes of E[min(A, B)], A and B Binomial(batch, 1/classes)."""
    from scipy.stats import binom

    k = np.arange(batch + 1)
    p = binom.pmf(k, batch, 1.0 / classes)
    both = np.minimum.outer(k, k) * np.outer(p, p)
    return float(classes * both.sum() / batch)


def _label_leaks(sweep: list[dict[str, Any]], prior: dict[str, float]) -> list[float]:
    """Noise levels at which a single image's label is always right but its PSNR is below the
    mean-digit guess."""
    return [
        r["condition"]["z"]
        for r in sweep
        if r["condition"]["batch_size"] == 1
        and r["condition"]["z"]
        and r["label_accuracy"] == 1.0
        and r["psnr_mean"] < prior["psnr_bs1"]
    ]


def _meaning(
    main: list[dict[str, Any]],
    sweep: list[dict[str, Any]],
    multi: list[dict[str, Any]],
    prior: dict[str, float],
    s: dict[str, Any],
) -> list[str]:
    """The reading of the figures, every number taken from them."""
    nodp1, dp1, nodp8, dp8 = main
    lines = ["## What it means", ""]
    lines.append(
        f"- **Without DP an update leaks its batch.** From a one-step update of one image the "
        f"attacker gets the image back at {nodp1['psnr_mean']:.1f} dB (SSIM "
        f"{nodp1['ssim_mean']:.3f}) and its label {nodp1['label_accuracy']:.0%} of the time; from "
        f"a batch of 8, {nodp8['psnr_mean']:.1f} dB on average (SSIM {nodp8['ssim_mean']:.3f}), "
        f"against {prior['psnr_bs8']:.1f} dB for the mean digit guessed without the update. "
        "Averaging over a batch hides some images, not all: batch 8 mixes well-recovered "
        "digits with blurred ones (see the example)."
    )
    for r, bs in ((dp1, 1), (dp8, 8)):
        base = prior[f"psnr_bs{bs}"]
        rel = "below" if r["psnr_mean"] < base else "above"
        lines.append(
            f"- **With local DP at z = {s['z_dp']:.2f}, batch {bs}:** {r['psnr_mean']:.1f} dB "
            f"(SSIM {r['ssim_mean']:.3f}), {rel} the mean-digit guess ({base:.1f} dB)"
            + (
                ": the reconstruction holds less of the digit than a guess made without the "
                "update; it is noise."
                if rel == "below"
                else "."
            )
        )
    leaks = _label_leaks(sweep, prior)
    head = "Labels leak longer than images." if leaks else "Labels under DP."
    lines.append(
        f"- **{head}** Under DP at z = {s['z_dp']:.2f} the inferred labels "
        f"are right {dp1['label_accuracy']:.0%} (batch 1) and {dp8['label_accuracy']:.0%} (batch 8) "
        f"of the time, against {_chance(1):.0%} and {_chance(8):.0%} for labels drawn uniformly at "
        "random"
        + (
            "; in the sweep the label of a single image is still read at z = "
            + ", ".join(f"{z:g}" for z in leaks)
            + " where its PSNR is already below the mean-digit guess"
            if leaks
            else ""
        )
        + ". ε = 8 is a weak bound for a 10-way label (it allows guessing it far above chance), "
        "so what the figures show is that this attack gets no image, not that nothing leaks."
    )
    if sweep:
        for bs in (1, 8):
            cells = sorted(
                (r for r in sweep if r["condition"]["batch_size"] == bs and r["condition"]["z"]),
                key=lambda r: r["condition"]["z"],
            )
            base = prior[f"psnr_bs{bs}"]
            # the smallest swept z from which every larger one stays below the guess
            tail = [r for i, r in enumerate(cells) if all(q["psnr_mean"] < base for q in cells[i:])]
            if tail:
                z0 = tail[0]["condition"]["z"]
                lines.append(
                    f"- Batch {bs}: from z = {z0:g} on, every swept noise level leaves the "
                    f"reconstruction below the mean-digit guess; z = {s['z_dp']:.2f}, the least "
                    f"noise any ε = {s['epsilon_target']:g} run adds, is {s['z_dp'] / z0:.0f}x that."
                )
        clip_only = [r for r in sweep if r["condition"]["z"] == 0]
        if clip_only:
            lines.append(
                "- Clipping alone (z = 0) protects nothing: "
                + ", ".join(
                    f"batch {r['condition']['batch_size']} {r['psnr_mean']:.1f} dB"
                    for r in clip_only
                )
                + " (it only rescales the update; the attack's cosine loss ignores scale)."
            )
    if multi:
        lines.append(
            "- Several local steps blur the attack without stopping it: "
            + ", ".join(
                f"batch {r['condition']['batch_size']} {r['psnr_mean']:.1f} dB" for r in multi
            )
            + " after 5 local steps. fedray's default local training (5 epochs over a client's "
            "whole shard at batch 16) is further from one gradient still, but without DP nothing "
            "bounds what a step leaks."
        )
    lines += [
        "- Scope: one honest-but-curious reader of one update, the model at its initialisation, "
        "8x8 digits and a small MLP (whose first layer alone, with its bias, determines a single "
        "input analytically). Secure aggregation is not built, so validators read every update "
        "one by one: DP is what bounds this leak. SSIM on 8x8 images rests on a 7x7 window "
        "(four positions), so read it against the mean-digit baseline, not against 1.",
    ]
    return lines


def write_markdown(path: Path, payload: dict[str, Any]) -> None:
    s, prior = payload["settings"], payload["prior_baseline"]
    res = payload["results"]
    by = {r["condition"]["name"]: r for r in res}
    main = [by[n] for n in ("nodp_bs1", "dp_bs1", "nodp_bs8", "dp_bs8")]
    sweep = [r for r in res if r["condition"]["group"] == "sweep"]
    multi = [r for r in res if r["condition"]["group"] == "multistep"]
    a = s["attack"]
    dp_cells = [r for r in res if r["condition"]["z"] is not None]
    clipped = min((r["clipped_fraction"] for r in dp_cells), default=0.0)
    norms = [r["update_norm_median"] for r in dp_cells]
    clip_note = (
        f"every DP update was clipped (median norms before clipping {min(norms):.3g} to "
        f"{max(norms):.3g})"
        if clipped == 1.0
        else f"in some cells only {clipped:.0%} of the DP updates were clipped"
    )
    quick = " (QUICK RUN: smoke settings, not the documented figures)" if s["quick"] else ""
    lines = [
        f"# Gradient inversion of a client's update, with and without DP{quick}",
        "",
        "Generated by `experiments/gradient_inversion.py`; do not edit by hand. Raw figures:",
        "`inversion_results.json`; examples: `inversion_examples.png`.",
        "",
        "## What is measured",
        "",
        "An honest-but-curious validator (or any reader of the chain's update payloads) holds the",
        "global model and one client's update, and tries to reconstruct the client's training images",
        "from it. The update is produced by fedray's own code path: `train_local` (SGD, lr "
        f"{s['local_training']['lr']}, momentum {s['local_training']['momentum']}) from the global "
        "model on the client's batch; under DP, `fedray.learning.dp.privatize` (clip to C, add "
        "N(0, (zC)²) to every coordinate, noise seeded by `dp_seed`); then int32 fixed point "
        "(`quantize`/`dequantize`) as submitted.",
        "",
        f"- Data and model: {s['dataset']}; {s['model']}.",
        "- The attacker's best case: one local step (1 epoch on one batch), so the update is exactly "
        "−lr × the batch gradient. The *5 local steps* rows repeat the attack on 5 epochs over the "
        "same batch, the attacker still treating −delta/lr as one gradient.",
        f"- Attack: DLG (Zhu et al. 2019) with iDLG's label inference for a batch of one (Zhao et "
        "al. 2020: the class whose row of the last layer's weight gradient sums negative) and soft "
        "labels optimised jointly with the images for a batch of 8. Images sigmoid-parametrised "
        "(pixels in [0, 1]); loss = cosine distance between the dummy and the observed gradient "
        f"(Geiping et al. 2020) + {a['tv_weight']:g} × total variation; Adam, lr {a['lr']}, cosine "
        f"decay, {a['iterations']} steps, {a['restarts']} seeded restarts, the restart with the "
        "lowest matching loss kept (the attacker never sees the truth).",
        "- Scores: PSNR (data range 1) and SSIM (scikit-image, uniform 7×7 window, the largest an "
        "8×8 image holds) of each reconstruction against its original, a batch of 8 matched by "
        "the permutation of least total MSE (`scipy.optimize.linear_sum_assignment`), averaged "
        "over the batch and then over the target batches (± is the standard deviation over "
        "targets). *labels right*: the inferred label multiset against the true one.",
        f"- DP: clip norm C = {s['clip_norm']:g}; {clip_note}. Clipping only rescales, which "
        "cosine matching ignores: with C at or below the update's norm the outcome depends on z "
        "alone, and this is the attacker's best C. "
        f"z = {s['z_dp']:.3f} is the smallest noise multiplier at which a single release is "
        f"(ε = {s['epsilon_target']:g}, δ = {s['delta']:g})-DP (analytic Gaussian mechanism, "
        "Balle & Wang 2018, sensitivity C under add/remove): a run of fedray's local DP at that "
        "target over any number of rounds adds at least this much noise per round (composition "
        "only raises z; replacement adjacency, sensitivity 2C, doubles it; amplification by "
        "client sampling cannot lower it for this reader, who sees on chain who was selected). "
        "The sweep maps z to "
        "the attack for readers of other settings; its ε column is for one release only.",
        "",
        "## Results",
        "",
        HEADER,
        *[_row(r) for r in main],
        "",
        "Without the update (the mean training digit as every guess): PSNR "
        f"{prior['psnr_bs1']:.2f} dB / SSIM {prior['ssim_bs1']:.3f} (batch 1), "
        f"{prior['psnr_bs8']:.2f} dB / SSIM {prior['ssim_bs8']:.3f} (batch 8).",
        "",
    ]
    if sweep:
        lines += ["### Noise sweep (C fixed, z varied)", "", HEADER, *[_row(r) for r in sweep], ""]
    if multi:
        lines += ["### Several local steps, no DP", "", HEADER, *[_row(r) for r in multi], ""]
    lines += [*_meaning(main, sweep, multi, prior, s), ""]
    lines += [
        "![original, no-DP and DP reconstructions](inversion_examples.png)",
        "",
        "## Reproduce",
        "",
        "```",
        "nice -n 5 python experiments/gradient_inversion.py --out docs/privacy",
        "python experiments/gradient_inversion.py --quick --out /tmp/inv   # smoke run, seconds",
        "```",
        "",
        f"Seed {s['seed']}, one torch thread, CPU (torch {s['torch']}): the run is deterministic.",
        "",
    ]
    path.write_text("\n".join(lines))


if __name__ == "__main__":  # regenerate the Markdown from a results file, without rerunning
    import json
    import sys

    results = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/privacy/inversion_results.json")
    write_markdown(results.with_name("inversion.md"), json.loads(results.read_text()))
