"""Gradient inversion (DLG / iDLG) against one client's update, and the image metrics that score it.

Owns: turning an observed update into the gradient it implies (one local SGD step from the global
model: delta = -lr * gradient), the label inference of iDLG (Zhao et al. 2020: for a batch of one,
the true class is the row of the last layer's weight gradient with a negative sum, because the
hidden activations after ReLU are non-negative and only the true class has p - y < 0), the DLG
optimisation (Zhu et al. 2019) of dummy images (and, for batches over one, soft dummy labels) that
match that gradient, with the cosine distance of Geiping et al. 2020 and a small total-variation
prior, several seeded restarts (the attacker keeps the restart with the lowest matching loss: a
criterion it can compute, never the distance to the truth), and PSNR/SSIM between reconstructions
and originals matched by the best permutation.

An evaluation tool, not part of fedray: it lives in experiments/ and reuses fedray's models,
training and DP mechanism so what is attacked is what fedray sends.

Ignores: models with BatchNorm (fedray has none), GPUs, attacks that need many rounds or a
malicious server (the validators here are honest-but-curious: they read the update, nothing more).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class AttackConfig:
    """How hard the attacker tries: Adam steps per restart, restarts, step size, TV weight."""

    iterations: int = 400
    restarts: int = 4
    lr: float = 0.1
    tv_weight: float = 1e-4
    label_lr_scale: float = 1.0  # soft-label logits move at lr * this (batches over one)


@dataclass(frozen=True)
class Reconstruction:
    """The attacker's best restart: images in [0, 1] of shape (B, *input_shape), the labels it
    used or inferred, its final gradient-matching loss, and the loss of every restart."""

    images: np.ndarray
    labels: np.ndarray
    match_loss: float
    restart_losses: tuple[float, ...]


def implied_gradient(
    observed: Mapping[str, np.ndarray], names: Sequence[str], lr: float
) -> list[torch.Tensor]:
    """The gradient an update implies if it is one SGD step from the global model: -delta / lr.
    With momentum the first step's buffer is the gradient itself, so this holds for fedray's SGD."""
    return [torch.from_numpy(-np.asarray(observed[n], dtype=np.float32) / lr) for n in names]


def idlg_label(target: Sequence[torch.Tensor], last_weight_index: int) -> int:
    """iDLG: the class whose row of the last linear layer's weight gradient sums negative (the most
    negative, so it still answers when noise makes several rows negative)."""
    rows = target[last_weight_index].sum(dim=1)
    return int(torch.argmin(rows))


def _tv(x: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation of a batch of (B, C, H, W) images (mean absolute difference)."""
    dh = (x[..., 1:, :] - x[..., :-1, :]).abs().mean()
    dw = (x[..., :, 1:] - x[..., :, :-1]).abs().mean()
    return dh + dw


def _cosine_distance(grads: Sequence[torch.Tensor], target: Sequence[torch.Tensor]) -> torch.Tensor:
    """1 - cosine similarity of the two gradients, all layers flattened into one vector."""
    dot = sum((g * t).sum() for g, t in zip(grads, target, strict=True))
    gn = torch.sqrt(sum((g * g).sum() for g in grads))
    tn = torch.sqrt(sum((t * t).sum() for t in target))
    return 1.0 - dot / (gn * tn + 1e-12)


def invert(
    model: nn.Module,
    target: Sequence[torch.Tensor],
    batch_size: int,
    input_shape: tuple[int, ...],
    num_classes: int,
    cfg: AttackConfig,
    *,
    seed: int,
    labels: np.ndarray | None = None,
) -> Reconstruction:
    """Reconstruct a batch from the gradient `target` of `model` (at the global parameters).

    `labels`: known labels (None: iDLG's inference for a batch of one, soft labels optimised
    jointly with the images otherwise, as in DLG). Images are sigmoid-parametrised, so they stay in
    [0, 1], the pixel range the attacker knows. Deterministic given `seed` (own generator).
    """
    params = [p for p in model.parameters()]
    for p in params:
        p.requires_grad_(True)
    fixed: torch.Tensor | None = None
    if labels is not None:
        fixed = torch.as_tensor(np.asarray(labels, dtype=np.int64))
    elif batch_size == 1:
        last_weight = max(i for i, p in enumerate(params) if p.dim() == 2)
        fixed = torch.tensor([idlg_label(target, last_weight)])
    gen = torch.Generator().manual_seed(seed)
    best: tuple[float, torch.Tensor, torch.Tensor] | None = None
    losses: list[float] = []
    for _ in range(cfg.restarts):
        u = torch.randn((batch_size, *input_shape), generator=gen).requires_grad_(True)
        v = (0.1 * torch.randn((batch_size, num_classes), generator=gen)).requires_grad_(True)
        groups = [{"params": [u], "lr": cfg.lr}]
        if fixed is None:
            groups.append({"params": [v], "lr": cfg.lr * cfg.label_lr_scale})
        opt = torch.optim.Adam(groups)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.iterations)
        loss_value = float("inf")
        for _ in range(cfg.iterations):
            opt.zero_grad(set_to_none=True)
            x = torch.sigmoid(u)
            logits = model(x)
            if fixed is None:
                ce = -(F.softmax(v, dim=1) * F.log_softmax(logits, dim=1)).sum(1).mean()
            else:
                ce = F.cross_entropy(logits, fixed)
            grads = torch.autograd.grad(ce, params, create_graph=True)
            match = _cosine_distance(grads, target)
            loss = match + cfg.tv_weight * _tv(x)
            loss.backward()
            opt.step()
            sched.step()
            loss_value = float(match.detach())
        losses.append(loss_value)
        if best is None or loss_value < best[0]:
            lab = fixed if fixed is not None else v.detach().argmax(1)
            best = (loss_value, torch.sigmoid(u).detach(), lab)
    assert best is not None
    return Reconstruction(
        best[1].numpy().astype(np.float32), best[2].numpy(), best[0], tuple(losses)
    )


# --- metrics ------------------------------------------------------------------------------------
def psnr(original: np.ndarray, recon: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB of one image (pixels in [0, data_range])."""
    from skimage.metrics import peak_signal_noise_ratio

    return float(peak_signal_noise_ratio(original, recon, data_range=data_range))


def ssim(original: np.ndarray, recon: np.ndarray, data_range: float = 1.0) -> float:
    """Structural similarity of one 2-D image: scikit-image's uniform 7x7 window (the largest odd
    window an 8x8 digit holds)."""
    from skimage.metrics import structural_similarity

    return float(structural_similarity(original, recon, data_range=data_range, win_size=7))


def match_batch(originals: np.ndarray, recons: np.ndarray) -> np.ndarray:
    """For each original, the index of its reconstruction: the permutation with the least total
    MSE (the attacker's batch is unordered, so the score must not depend on its order)."""
    o = originals.reshape(len(originals), -1).astype(np.float64)
    r = recons.reshape(len(recons), -1).astype(np.float64)
    cost = ((o[:, None, :] - r[None, :, :]) ** 2).mean(axis=2)
    rows, cols = linear_sum_assignment(cost)
    perm = np.empty(len(o), dtype=np.int64)
    perm[rows] = cols
    return perm


def score(originals: np.ndarray, recons: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-image PSNR and SSIM after the best matching; images (B, 1, H, W) or (B, H, W)."""
    perm = match_batch(originals, recons)
    o = originals.reshape(len(originals), *originals.shape[-2:])
    r = recons.reshape(len(recons), *recons.shape[-2:])[perm]
    return (
        [psnr(a, b) for a, b in zip(o, r, strict=True)],
        [ssim(a, b) for a, b in zip(o, r, strict=True)],
    )
