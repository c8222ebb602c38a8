"""Torch models built by name or by a config's factory, and their state as numpy.

Owns: `logreg`, `mlp` and `cnn` for inputs of shape (features,) or (channels, height, width)
(8x8 digits and 28x28 MNIST alike), models from a `ModelSpec.factory` import path
(`fedray.learning.extensions`), seeded initialization, and the conversion between a model and
`Params`.

Convention: `Params` hold the model's *floating-point state*: its parameters (`named_parameters()`
order) followed by its floating-point buffers (`named_buffers()` order: BatchNorm's running_mean
and running_var). Buffers are aggregated with the parameters: a client's update carries how its
local training moved the running statistics, the chain's rule combines those deltas like any
coordinate, and the global model holds statistics that evaluation (`model.eval()`) uses. Integer
buffers (BatchNorm's num_batches_tracked) are not state: each process keeps its own counter, which
only BatchNorm with `momentum=None` reads. Why not FedBN (statistics kept per client): the chain
releases and evaluates one global model, which needs statistics of its own. `set_params` refuses
missing, extra or misshaped entries.

Deliberately ignored: dtypes other than float32, large architectures. Training moves batches to
the model's device (`fedray.learning.training`); `Params` are always CPU numpy.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from fedray.learning.errors import ModelError
from fedray.learning.extensions import build_custom_model
from fedray.learning.params import Params

MODELS = ("logreg", "mlp", "cnn")


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a model: name, input shape (without batch), classes, sizes."""

    name: str = "mlp"
    input_shape: tuple[int, ...] = (1, 28, 28)
    num_classes: int = 10
    hidden: int = 100  # mlp hidden width; cnn fully connected width
    channels: tuple[int, int] = (16, 32)  # cnn conv channels
    factory: str = ""  # import path of a ModelFactory; "" builds `name`
    params: tuple[tuple[str, Any], ...] = ()  # the factory's keyword arguments


def _cnn(spec: ModelSpec) -> nn.Module:
    if len(spec.input_shape) != 3:
        raise ModelError(f"cnn needs (channels, height, width) input, got {spec.input_shape}")
    c, h, w = spec.input_shape
    c1, c2 = spec.channels
    if h < 4 or w < 4:
        raise ModelError(f"cnn needs inputs of at least 4x4, got {h}x{w}")
    # Two 3x3 'same' convolutions, each followed by 2x2 max pooling: 8x8 -> 2x2, 28x28 -> 7x7.
    flat = c2 * (h // 4) * (w // 4)
    return nn.Sequential(
        nn.Conv2d(c, c1, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(flat, spec.hidden),
        nn.ReLU(),
        nn.Linear(spec.hidden, spec.num_classes),
    )


def build_model(spec: ModelSpec, seed: int = 0) -> nn.Module:
    """Build `spec` with torch's default initialization drawn from `seed`; the global torch RNG is
    left untouched."""
    d = math.prod(spec.input_shape)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if spec.factory:
            model = build_custom_model(
                spec.factory, spec.input_shape, spec.num_classes, dict(spec.params)
            )
        elif spec.name == "logreg":
            model = nn.Sequential(nn.Flatten(), nn.Linear(d, spec.num_classes))
        elif spec.name == "mlp":
            model = nn.Sequential(
                nn.Flatten(),
                nn.Linear(d, spec.hidden),
                nn.ReLU(),
                nn.Linear(spec.hidden, spec.num_classes),
            )
        elif spec.name == "cnn":
            model = _cnn(spec)
        else:
            raise ModelError(f"unknown model {spec.name!r}; known: {', '.join(MODELS)}")
    return model


def named_state(model: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """The tensors `Params` hold: parameters, then floating-point buffers (module docstring)."""
    yield from model.named_parameters()
    for name, buffer in model.named_buffers():
        if buffer.is_floating_point():
            yield name, buffer


def state_names(model: nn.Module) -> list[str]:
    """The names of `named_state`, in order (the order training and evaluation want)."""
    return [name for name, _ in named_state(model)]


def get_params(model: nn.Module) -> Params:
    """The model's state (`named_state`) as an ordered dict of float32 numpy copies."""
    return {
        k: v.detach().cpu().numpy().astype(np.float32, copy=True) for k, v in named_state(model)
    }


def set_params(model: nn.Module, params: Mapping[str, np.ndarray]) -> None:
    """Copy `params` into `model` in place; names and shapes must match exactly."""
    named = dict(named_state(model))
    if set(named) != set(params):
        raise ModelError(f"parameter names differ: model {sorted(named)} vs given {sorted(params)}")
    with torch.no_grad():
        for k, p in named.items():
            v = np.asarray(params[k])
            if v.shape != tuple(p.shape):
                raise ModelError(f"{k!r}: shape {v.shape} does not fit {tuple(p.shape)}")
            p.copy_(torch.from_numpy(np.asarray(v, dtype=np.float32)))  # to p's device


def num_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
