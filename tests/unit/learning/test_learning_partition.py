"""Partitioners: every sample assigned once, skew statistics, NIID-Bench min size, shards' classes."""

import numpy as np
import pytest

from fedray.learning.datasets import load_dataset
from fedray.learning.errors import PartitionError
from fedray.learning.partition import PartitionConfig, dirichlet, partition, shards, summarize


@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist5k")


def _assert_exact_cover(fed):
    all_idx = np.concatenate(fed.client_indices)
    assert len(all_idx) == len(fed.split.train)
    assert np.array_equal(np.sort(all_idx), np.arange(len(fed.split.train)))


@pytest.mark.parametrize("scheme", ["iid", "dirichlet", "shards"])
def test_every_sample_assigned_exactly_once(mnist, scheme):
    fed = partition(mnist, PartitionConfig(scheme, num_clients=20, seed=1))
    assert fed.num_clients == 20
    _assert_exact_cover(fed)


def test_dirichlet_is_skewed_relative_to_iid_and_more_for_small_alpha(mnist):
    tv = {
        name: summarize(partition(mnist, cfg)).mean_tv_to_global()
        for name, cfg in {
            "iid": PartitionConfig("iid", 20),
            "a100": PartitionConfig("dirichlet", 20, alpha=100.0),
            "a0.5": PartitionConfig("dirichlet", 20, alpha=0.5),
            "a0.1": PartitionConfig("dirichlet", 20, alpha=0.1),
        }.items()
    }
    assert tv["iid"] < 0.1 and tv["a100"] < 0.1
    assert tv["a0.5"] > 0.3
    assert tv["a0.1"] > tv["a0.5"] + 0.1


def test_dirichlet_min_size_is_respected_by_redrawing():
    y = np.repeat(np.arange(10), 30)  # 300 samples, 10 classes
    rng = np.random.default_rng(0)
    parts = dirichlet(y, 10, 0.1, rng, min_size=15)
    assert min(len(p) for p in parts) >= 15
    assert sum(len(p) for p in parts) == 300


def test_dirichlet_impossible_min_size_raises():
    y = np.repeat(np.arange(10), 10)
    with pytest.raises(PartitionError):
        dirichlet(y, 10, 0.5, np.random.default_rng(0), min_size=11)
    with pytest.raises(PartitionError):
        dirichlet(y, 10, 0.01, np.random.default_rng(0), min_size=9, max_draws=3)


def test_dirichlet_reproducible_by_seed(mnist):
    a = partition(mnist, PartitionConfig("dirichlet", 20, seed=7))
    b = partition(mnist, PartitionConfig("dirichlet", 20, seed=7))
    c = partition(mnist, PartitionConfig("dirichlet", 20, seed=8))
    assert all(
        np.array_equal(x, y) for x, y in zip(a.client_indices, b.client_indices, strict=True)
    )
    assert not all(
        np.array_equal(x, y) for x, y in zip(a.client_indices, c.client_indices, strict=True)
    )


@pytest.mark.parametrize(("clients", "k"), [(20, 2), (10, 3), (5, 2), (7, 10)])
def test_shards_give_exactly_k_classes(mnist, clients, k):
    fed = partition(mnist, PartitionConfig("shards", clients, classes_per_client=k, seed=2))
    summary = summarize(fed)
    assert (summary.classes_per_client == k).all()
    _assert_exact_cover(fed)


def test_shards_cannot_cover_classes_raises():
    with pytest.raises(PartitionError):
        shards(np.repeat(np.arange(10), 5), 4, 2, np.random.default_rng(0))


def test_iid_sizes_balanced_and_summary_markdown(mnist):
    fed = partition(mnist, PartitionConfig("iid", 7))
    summary = summarize(fed)
    assert summary.sizes.max() - summary.sizes.min() <= 1
    assert summary.counts.sum() == len(mnist.train)
    md = summary.to_markdown()
    assert md.count("\n") == 7 + 1 and "| 0 |" in md


def test_natural_needs_groups(mnist):
    with pytest.raises(PartitionError):
        partition(mnist, PartitionConfig("natural"))
    with pytest.raises(PartitionError):
        partition(mnist, PartitionConfig("pathological"))
