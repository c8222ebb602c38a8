"""Errors raised by `fedray.learning`.

They live here rather than in `fedray/errors.py` because only learning code raises them; each is a
`FedrayError`, so callers that catch the root still catch these.
"""

from __future__ import annotations

from fedray.errors import FedrayError


class LearningError(FedrayError):
    """A learning building block was given input it cannot work with."""

    code = "learning"


class DatasetError(LearningError):
    """A dataset name is unknown, or arrays have inconsistent shapes, dtypes or labels."""

    code = "dataset"


class PartitionError(LearningError):
    """A partition cannot be built (too many clients, bad alpha, classes not coverable)."""

    code = "partition"


class ModelError(LearningError):
    """A model name is unknown, or parameters do not match the model's names and shapes."""

    code = "model"


class AttackError(LearningError):
    """An attack name or config is unknown or invalid, or its context lacks what it needs."""

    code = "attack"


class PrivacyError(LearningError):
    """A differential-privacy setting is out of range (clip norm, noise, epsilon, delta)."""

    code = "privacy"
