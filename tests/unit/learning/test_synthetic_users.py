"""Synthetic users for a population: user k is a function of (seed, k) alone, so any pool makes
the same user and only the users it trains; sizes respect the cap; the test set is a seeded sample
of users; and a run's pools make shards only when read."""

from __future__ import annotations

import numpy as np
import pytest

from fedray.config import load_config
from fedray.errors import ConfigError
from fedray.federation.plan import Federation
from fedray.federation.shards import ClientShards
from fedray.learning.errors import DatasetError
from fedray.learning.synthetic_users import SyntheticUsers


def test_a_user_depends_on_the_seed_and_its_index_only() -> None:
    small, large = SyntheticUsers(100, seed=3), SyntheticUsers(10_000, seed=3)
    for k in (0, 7, 99):
        a, b = small.user(k), large.user(k)
        assert np.array_equal(a[0].x, b[0].x) and np.array_equal(a[1].y, b[1].y)
    other = SyntheticUsers(100, seed=4).user(7)[0]
    assert not np.array_equal(other.x[:5], small.user(7)[0].x[:5])
    with pytest.raises(DatasetError):
        small.user(100)


def test_users_differ_and_their_samples_follow_the_generator() -> None:
    pop = SyntheticUsers(1000, alpha=1.0, beta=1.0, max_size=300)
    sizes = []
    for k in range(200):
        train, test = pop.user(k)
        n = len(train) + len(test)
        sizes.append(n)
        assert 50 <= n <= 300 and len(test) == max(1, round(0.2 * n))
        assert train.x.dtype == np.float32 and train.x.shape[1] == 60
        assert set(np.unique(train.groups)) == {k}
    assert max(sizes) == 300 and min(sizes) >= 50 and len(set(sizes)) > 20  # heavy tail, capped
    means = [pop.user(k)[0].x.mean() for k in range(20)]
    assert np.std(means) > 0.3  # beta = 1: users' input means differ


def test_the_test_set_is_a_seeded_sample_of_users_held_out_parts() -> None:
    pop = SyntheticUsers(10_000, eval_users=50, seed=1)
    users = pop.evaluation_users()
    assert len(users) == 50 and len(set(users.tolist())) == 50
    assert np.array_equal(users, SyntheticUsers(10_000, eval_users=50, seed=1).evaluation_users())
    split = pop.evaluation_split()
    assert set(np.unique(split.test.groups)) == set(users.tolist())
    assert len(split.test) == sum(len(pop.user(int(k))[1]) for k in users)


def test_a_pool_makes_a_shard_when_it_is_read_and_keeps_a_bounded_cache() -> None:
    made: list[int] = []
    pop = SyntheticUsers(10_000)

    def make(k: int):  # type: ignore[no-untyped-def]
        made.append(k)
        return pop.train(k)

    shards = ClientShards(range(0, 10_000, 2), make, cache_size=3)
    assert len(shards) == 5000 and made == []  # nothing made for 5,000 clients
    first = shards[4]
    assert shards[4] is first and made == [4]  # read twice, made once
    for k in (6, 8, 10):
        _ = shards[k]
    assert shards.cached == 3 and made == [4, 6, 8, 10]
    _ = shards[4]  # evicted, made again: the same user
    assert made[-1] == 4 and np.array_equal(shards[4].x, first.x)
    with pytest.raises(KeyError):
        _ = shards[5]  # another pool's client
    shards[6] = first  # poisoned data is held
    assert shards[6] is first


def test_a_run_config_gets_one_user_per_client_and_digits_refuses_a_larger_population() -> None:
    fed = Federation(load_config(None, ["clients=10000", "data=synthetic_users"]))
    fed.preflight()
    shards = fed.shards([9_999])
    assert set(np.unique(shards[9_999].groups)) == {9_999}
    assert fed.model_spec().input_shape == (60,)
    with pytest.raises(ConfigError, match="use data=synthetic_users"):
        Federation(load_config(None, ["clients=2000"])).preflight()
    with pytest.raises(ConfigError, match="data.partition=natural"):
        load_config(None, ["clients=50", "data=synthetic_users", "data.partition=iid"])
