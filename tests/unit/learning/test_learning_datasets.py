"""Datasets: offline loaders, fixed splits, and the FedProx Synthetic generator's statistics."""

import numpy as np
import pytest

from fedray.learning.datasets import (
    DatasetSpec,
    SyntheticConfig,
    load_dataset,
    load_digits,
    make_synthetic,
)
from fedray.learning.errors import DatasetError
from fedray.learning.partition import PartitionConfig, partition, summarize


@pytest.mark.parametrize(
    ("name", "shape", "n_total"), [("digits", (1, 8, 8), 1797), ("mnist5k", (1, 28, 28), 5000)]
)
def test_image_datasets_shapes_ranges_and_split(name, shape, n_total):
    s = load_dataset(name)
    assert s.input_shape == shape
    assert len(s.train) + len(s.test) == n_total
    assert s.train.x.dtype == np.float32 and s.train.y.dtype == np.int64
    assert s.train.x.min() >= 0.0 and s.train.x.max() <= 1.0 and s.train.x.max() > 0.9
    # Stratified: every class in the test set, in roughly the pooled proportion.
    assert (s.test.label_counts() > 0).all()


def test_split_fixed_by_seed_and_changes_with_seed():
    a, b, c = load_digits(seed=3), load_digits(seed=3), load_digits(seed=4)
    assert np.array_equal(a.train.x, b.train.x) and np.array_equal(a.test.y, b.test.y)
    assert not np.array_equal(a.train.x, c.train.x)


def test_unknown_dataset_raises():
    with pytest.raises(DatasetError):
        load_dataset("cifar10")


def test_synthetic_shapes_users_and_split():
    s = make_synthetic(SyntheticConfig(alpha=1, beta=1, seed=0))
    assert s.input_shape == (60,) and s.num_classes == 10
    assert set(np.unique(s.train.groups)) == set(range(30))
    assert set(np.unique(s.test.groups)) == set(range(30))
    sizes = np.bincount(s.train.groups) + np.bincount(s.test.groups)
    assert sizes.min() >= 50
    assert 0.15 < len(s.test) / (len(s.train) + len(s.test)) < 0.25
    fed = partition(s, PartitionConfig("natural"))
    assert fed.num_clients == 30
    assert [len(i) for i in fed.client_indices] == list(np.bincount(s.train.groups))


def test_synthetic_sizes_are_lognormal_4_2_plus_50():
    s = make_synthetic(SyntheticConfig(num_users=400, seed=1))
    sizes = np.bincount(s.train.groups) + np.bincount(s.test.groups)
    log_extra = np.log(sizes - 50 + 0.5)  # int() truncation, +0.5 recentres it
    q25, q50, q75 = np.percentile(log_extra, [25, 50, 75])
    assert abs(q50 - 4.0) < 0.35
    assert abs((q75 - q25) / 1.349 - 2.0) < 0.35  # IQR of a normal = 1.349 sigma


def test_synthetic_input_distribution_matches_definition():
    beta = 5.0
    s = make_synthetic(SyntheticConfig(alpha=0.0, beta=beta, num_users=60, seed=2))
    x, g = np.concatenate([s.train.x, s.test.x]), np.concatenate([s.train.groups, s.test.groups])
    user_means = np.stack([x[g == k].mean(axis=0) for k in range(60)])
    # v_k ~ N(B_k, 1) with B_k ~ N(0, beta^2): the per-user average over coordinates has spread ~beta.
    assert 0.7 * beta < user_means.mean(axis=1).std() < 1.3 * beta
    # Within a user x ~ N(v_k, diag(j^-1.2)).
    centred = np.concatenate([x[g == k] - user_means[k] for k in range(60)])
    var = centred.var(axis=0)
    expected = np.arange(1, 61) ** -1.2
    assert np.allclose(var, expected, rtol=0.1)


def test_synthetic_label_skew_grows_with_alpha_beta():
    def skew(cfg):
        s = make_synthetic(cfg)
        return summarize(partition(s, PartitionConfig("natural"))).mean_tv_to_global()

    iid = skew(SyntheticConfig(iid=True, seed=0))
    mild = skew(SyntheticConfig(alpha=0.0, beta=0.0, seed=0))
    strong = skew(SyntheticConfig(alpha=1.0, beta=1.0, seed=0))
    assert iid < 0.2
    assert strong > mild > iid
    assert strong > 0.4


def test_dataset_spec_for_synthetic():
    s = load_dataset(DatasetSpec("synthetic", synthetic=SyntheticConfig(0.5, 0.5, num_users=5)))
    assert s.name == "synthetic_0.5_0.5" and len(np.unique(s.train.groups)) == 5
