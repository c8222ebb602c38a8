"""Local training, evaluation and the centralized baseline.

Owns: one client's local SGD (momentum, epochs, batch size, optional FedProx proximal term, optional
momentum buffer carried across rounds as explicit state), returning the update as a float32 delta
(local - global) plus its sample count; evaluation of parameters on a dataset; a centralized trainer
with the same model and epoch budget for reference.

Training and evaluation run on the model's device (CPU, or the GPU a client pool moved it to): the
data stay CPU arrays and each batch moves to the device. `Params` in and out are CPU numpy.

Determinism: given the same model spec, global parameters, data, config, seed and momentum state,
`train_local` returns bit-identical results on one machine and thread count on CPU (shuffling uses
a seeded `torch.Generator` on CPU; nothing reads the global RNG). On a GPU, cuDNN and atomics make
results vary between runs unless `torch.use_deterministic_algorithms(True)` is set, and GPU
results differ from CPU ones; the chain does not care, since validators only aggregate the
fixed-point updates clients submit. Deliberately ignored: learning-rate schedules, data
augmentation, differential privacy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from fedray.learning.datasets import Dataset, DataSplit
from fedray.learning.errors import LearningError
from fedray.learning.models import ModelSpec, build_model, get_params, set_params
from fedray.learning.params import Params, sub


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 1
    batch_size: int = 32
    lr: float = 0.05
    momentum: float = 0.9  # SGD momentum within local training
    weight_decay: float = 0.0
    prox_mu: float = 0.0  # FedProx: adds mu/2 * ||w - w_global||^2; 0 disables it
    carry_momentum: bool = False  # return the momentum buffer so the next round can resume it

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise LearningError(f"invalid train config: {self}")
        if not 0 <= self.momentum < 1 or self.prox_mu < 0 or self.weight_decay < 0:
            raise LearningError(f"invalid train config: {self}")


@dataclass(frozen=True)
class LocalUpdate:
    """What a client produces in one round. `momentum` is the SGD buffer after training (same
    layout as the parameters) when `carry_momentum` is set, else None."""

    delta: Params  # local - global, float32
    n_samples: int
    loss: float  # mean training loss over the last local epoch
    momentum: Params | None = None


@dataclass(frozen=True)
class Metrics:
    loss: float
    accuracy: float  # fraction in [0, 1]
    n_samples: int


def _tensors(data: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(np.ascontiguousarray(data.x)), torch.from_numpy(data.y)


def _sgd(
    model: nn.Module,
    data: Dataset,
    cfg: TrainConfig,
    seed: int,
    anchor: list[torch.Tensor] | None,
    momentum: Mapping[str, np.ndarray] | None,
) -> tuple[float, dict[str, torch.Tensor]]:
    """Run `cfg.epochs` of SGD on `model` in place; return last-epoch mean loss and momentum."""
    if len(data) == 0:
        raise LearningError("cannot train on an empty dataset")
    x, y = _tensors(data)
    named = list(model.named_parameters())
    params = [p for _, p in named]
    device = params[0].device
    bufs: list[torch.Tensor | None] = [None] * len(params)
    if momentum is not None:
        bufs = [
            torch.from_numpy(np.array(momentum[k], dtype=np.float32)).to(device) for k, _ in named
        ]
    g = torch.Generator().manual_seed(seed)
    n, bs = len(data), cfg.batch_size
    loss_sum = 0.0
    model.train()
    for _ in range(cfg.epochs):
        perm = torch.randperm(n, generator=g)
        loss_sum = 0.0
        for start in range(0, n, bs):
            idx = perm[start : start + bs]
            loss = F.cross_entropy(model(x[idx].to(device)), y[idx].to(device))
            loss_sum += float(loss.detach()) * len(idx)
            if anchor is not None and cfg.prox_mu > 0:
                prox = sum(((p - a) ** 2).sum() for p, a in zip(params, anchor, strict=True))
                loss = loss + 0.5 * cfg.prox_mu * prox
            grads = torch.autograd.grad(loss, params)
            with torch.no_grad():
                # torch.optim.SGD semantics (dampening 0, no Nesterov): b = m*b + g; p -= lr*b.
                for i, (p, gr) in enumerate(zip(params, grads, strict=True)):
                    if cfg.weight_decay:
                        gr = gr + cfg.weight_decay * p
                    if cfg.momentum:
                        b = bufs[i]
                        bufs[i] = gr.clone() if b is None else b.mul_(cfg.momentum).add_(gr)
                        gr = bufs[i]
                    p.sub_(cfg.lr * gr)
    mom = {k: b for (k, _), b in zip(named, bufs, strict=True) if b is not None}
    return loss_sum / n, mom


def train_local(
    model: nn.Module,
    global_params: Mapping[str, np.ndarray],
    data: Dataset,
    cfg: TrainConfig,
    *,
    seed: int,
    momentum: Mapping[str, np.ndarray] | None = None,
) -> LocalUpdate:
    """Train from `global_params` on `data`; `model` is scratch space (its weights are overwritten).

    `momentum`: the buffer returned by this client's previous call (only with `carry_momentum`).
    """
    if momentum is not None and not cfg.carry_momentum:
        raise LearningError("momentum state given but carry_momentum is off")
    set_params(model, global_params)
    anchor = None
    if cfg.prox_mu > 0:
        anchor = [p.detach().clone() for p in model.parameters()]
    loss, mom = _sgd(model, data, cfg, seed, anchor, momentum)
    local = get_params(model)
    out_mom: Params | None = None
    if cfg.carry_momentum and mom:
        out_mom = {k: v.cpu().numpy().astype(np.float32, copy=True) for k, v in mom.items()}
    return LocalUpdate(sub(local, dict(global_params)), len(data), loss, out_mom)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    params: Mapping[str, np.ndarray] | None,
    data: Dataset,
    batch_size: int = 2048,
) -> Metrics:
    """Mean cross-entropy and accuracy of `params` (or `model` as is, when None) on `data`."""
    if params is not None:
        set_params(model, params)
    model.eval()
    x, y = _tensors(data)
    device = next(model.parameters()).device
    loss, correct = 0.0, 0
    for start in range(0, len(data), batch_size):
        logits = model(x[start : start + batch_size].to(device))
        yb = y[start : start + batch_size].to(device)
        loss += float(F.cross_entropy(logits, yb, reduction="sum"))
        correct += int((logits.argmax(1) == yb).sum())
    n = max(len(data), 1)
    return Metrics(loss / n, correct / n, len(data))


@dataclass(frozen=True)
class BaselineResult:
    spec: ModelSpec
    epochs: int
    test: Metrics
    train: Metrics
    params: Params


def centralized_baseline(
    split: DataSplit, spec: ModelSpec, cfg: TrainConfig, *, seed: int = 0
) -> BaselineResult:
    """Train `spec` (initialized from `seed`) on the pooled training set for `cfg.epochs` epochs
    with the same optimizer settings as the clients; evaluate on the test set. To match a federated
    run of R rounds with E local epochs, pass epochs = R * E."""
    model = build_model(spec, seed)
    _sgd(model, split.train, cfg, seed, None, None)
    params = get_params(model)
    return BaselineResult(
        spec,
        cfg.epochs,
        evaluate(model, None, split.test),
        evaluate(model, None, split.train),
        params,
    )
