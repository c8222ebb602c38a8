"""Evaluating global models on the held-out test set, in the driver process, and the centralized
baseline a run is compared with (same model, same optimizer, rounds x local epochs)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np
import torch

from fedray.aggregation.fixedpoint import dequantize
from fedray.config import RunConfig
from fedray.federation.plan import Federation
from fedray.learning.models import build_model, state_names
from fedray.learning.training import Metrics, centralized_baseline, evaluate


def as_float(fed: Federation, fixed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """int32 fixed point (any tensor order) -> float32 in the model's parameter order."""
    names = state_names(build_model(fed.model_spec(), fed.cfg.seed))
    return dequantize({n: fixed[n] for n in names})


class Evaluator:
    def __init__(self, fed: Federation) -> None:
        torch.set_num_threads(1)
        self.fed = fed
        self.split = fed.split()
        self.model = build_model(fed.model_spec(), fed.cfg.seed)
        self.names = state_names(self.model)

    def as_float(self, fixed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """int32 fixed point (any tensor order) -> float32 in the model's parameter order."""
        return dequantize({n: fixed[n] for n in self.names})

    def evaluate(self, fixed: Mapping[str, np.ndarray]) -> Metrics:
        return evaluate(self.model, self.as_float(fixed), self.split.test)

    def baseline(self, cfg: RunConfig) -> float:
        """Test accuracy of centralized training with the run's model and epoch budget."""
        tcfg = self.fed.train_config()
        tcfg = replace(tcfg, epochs=cfg.rounds * tcfg.epochs)
        result = centralized_baseline(self.split, self.fed.model_spec(), tcfg, seed=cfg.seed)
        return float(result.test.accuracy)
