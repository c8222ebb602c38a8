"""Models, datasets and attacks a config names by import path, and the protocols they keep.

A config may name its own factory instead of a built-in name (docs/extending.md):
- `model.factory=pkg.module:build`: a `ModelFactory`, called as `build(input_shape, num_classes,
  **model.params)` under a seeded torch RNG; it returns a `torch.nn.Module` whose floating-point
  parameters and buffers are what the federation trains and aggregates (`fedray.learning.models`).
- `data.loader=pkg.module:load`: a `DatasetLoader`, called as `load(seed, test_fraction,
  **data.params)`; it returns a `DataSplit` (float32 inputs in the model's input shape, int64
  labels). Clients get their shards by `data.partition` as for built-in data; a loader that sets
  `Dataset.groups` defines a natural partition (`data.partition=natural`, one client per group).
- `attack.factory=pkg.module:Cls`: an `AttackFactory`, called as `Cls(**attack.params)`; it returns
  an `fedray.learning.attacks.Attack`.
Each call's result is checked against its protocol, and a wrong one is an `ExtensionTypeError`
naming the config key. A factory must be a pure function of its arguments (and the seeded RNG): the
driver and every client pool call it and must get the same model and data.

Deliberately ignored: discovering extensions (the config names them), sandboxing them (a config
runs the code it names, with the rights of the run).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from fedray.importpath import ExtensionTypeError, resolve
from fedray.learning.attacks.base import Attack
from fedray.learning.datasets import Dataset, DataSplit


class ModelFactory(Protocol):
    """`model.factory`: a model for inputs of `input_shape` (without the batch) and `num_classes`
    outputs (logits, trained with cross-entropy)."""

    def __call__(
        self, input_shape: tuple[int, ...], num_classes: int, **params: Any
    ) -> nn.Module: ...


class DatasetLoader(Protocol):
    """`data.loader`: the data set with its fixed train/test split, a pure function of `seed`."""

    def __call__(self, seed: int, test_fraction: float, **params: Any) -> DataSplit: ...


class AttackFactory(Protocol):
    """`attack.factory`: an attack from its config (`attack.params`)."""

    def __call__(self, **params: Any) -> Attack: ...


def build_custom_model(
    path: str, input_shape: tuple[int, ...], num_classes: int, params: Mapping[str, Any]
) -> nn.Module:
    """The module `path` (a `ModelFactory`) builds; the caller seeds the torch RNG."""
    factory: ModelFactory = resolve(path, "model.factory")
    model = factory(tuple(input_shape), num_classes, **dict(params))
    if not isinstance(model, nn.Module):
        raise ExtensionTypeError(
            f"config key 'model.factory': {path} returned a {type(model).__name__}, "
            "not a torch.nn.Module"
        )
    if not any(p.requires_grad for p in model.parameters()):
        raise ExtensionTypeError(f"config key 'model.factory': {path} has no trainable parameters")
    for name, t in [*model.named_parameters(), *model.named_buffers()]:
        if t.is_floating_point() and t.dtype != torch.float32:
            raise ExtensionTypeError(
                f"config key 'model.factory': {path}: {name!r} is {t.dtype}; fedray trains "
                "float32 models"
            )
    return model


def load_custom_dataset(
    path: str, seed: int, test_fraction: float, params: Mapping[str, Any]
) -> DataSplit:
    """The split `path` (a `DatasetLoader`) returns, checked to be usable by every client."""
    loader: DatasetLoader = resolve(path, "data.loader")
    split = loader(seed, test_fraction, **dict(params))
    where = f"config key 'data.loader': {path}"
    if not isinstance(split, DataSplit):
        raise ExtensionTypeError(f"{where} returned a {type(split).__name__}, not a DataSplit")
    for part in ("train", "test"):
        data = getattr(split, part)
        if not isinstance(data, Dataset):
            raise ExtensionTypeError(f"{where}: its {part} part is not a Dataset")
        if len(data) == 0:
            raise ExtensionTypeError(f"{where}: its {part} part is empty")
    if split.train.input_shape != split.test.input_shape:
        raise ExtensionTypeError(
            f"{where}: train inputs {split.train.input_shape} and test inputs "
            f"{split.test.input_shape} differ in shape"
        )
    if split.train.num_classes != split.test.num_classes:
        raise ExtensionTypeError(f"{where}: train and test disagree on the number of classes")
    if not (np.isfinite(split.train.x).all() and np.isfinite(split.test.x).all()):
        raise ExtensionTypeError(f"{where}: inputs hold NaN or infinite values")
    return split


def make_custom_attack(path: str, params: Mapping[str, Any]) -> Attack:
    """The attack `path` (an `AttackFactory`) builds from `params`."""
    factory: AttackFactory = resolve(path, "attack.factory")
    attack = factory(**dict(params))
    if not isinstance(attack, Attack):
        raise ExtensionTypeError(
            f"config key 'attack.factory': {path} returned a {type(attack).__name__}, not a "
            "fedray.learning.attacks.Attack"
        )
    return attack
