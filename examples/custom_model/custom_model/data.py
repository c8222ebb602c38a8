"""scikit-learn's 8x8 digits (shipped inside the package, no download) with a transform of its
own: pixels standardized by the training split's mean and standard deviation. fedray's
`DatasetLoader` protocol: `load(seed, test_fraction, **data.params)` returns a `DataSplit`.
"""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from fedray.learning.datasets import Dataset, DataSplit


def load(seed: int, test_fraction: float, classes: int = 10) -> DataSplit:
    """Digits of the first `classes` classes, split by `seed`, standardized by the train split."""
    digits = load_digits(n_class=classes)
    x = digits.data.astype(np.float32).reshape(-1, 1, 8, 8)
    y = digits.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=test_fraction, random_state=seed, stratify=y
    )
    mean, std = x_tr.mean(), x_tr.std()
    return DataSplit(
        f"digits{classes}_standardized",
        Dataset(np.ascontiguousarray((x_tr - mean) / std, dtype=np.float32), y_tr, classes),
        Dataset(np.ascontiguousarray((x_te - mean) / std, dtype=np.float32), y_te, classes),
    )
