"""Differential privacy on the client side: the mechanism, its seeding, and the accountant."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fedray.aggregation.fixedpoint import dequantize
from fedray.learning.accounting import epsilon, epsilon_table, noise_multiplier
from fedray.learning.attacks import make_attack
from fedray.learning.client_round import client_round
from fedray.learning.dp import NoiseSettings, clip_to_norm, dp_seed, l2_norm, privatize
from fedray.learning.errors import PrivacyError
from fedray.learning.training import TrainConfig

TRAIN = TrainConfig(epochs=1, batch_size=16, lr=0.1)


def _round(six_clients, **kwargs):
    model, params, shards = six_clients
    args = {"round_": 2, "seed": 5, "participants": 4} | kwargs
    return client_round(model, params, shards, [0, 1, 2, 3], TRAIN, **args)


def test_clipping_bounds_the_norm_and_leaves_short_updates_alone() -> None:
    long = {"a": np.full(4, 3.0, np.float32), "b": np.full(2, 4.0, np.float32)}
    clipped, before = clip_to_norm(long, 1.5)
    assert before == pytest.approx(math.sqrt(4 * 9 + 2 * 16))
    assert l2_norm(clipped) == pytest.approx(1.5, rel=1e-6)
    short = {"a": np.full(4, 0.1, np.float32)}
    same, _ = clip_to_norm(short, 1.5)
    assert np.array_equal(same["a"], short["a"])


def test_noise_is_seeded_by_run_round_and_client_and_has_the_asked_std() -> None:
    delta = {"w": np.zeros(20_000, np.float32)}
    a, _ = privatize(delta, 1.0, 0.5, np.random.default_rng(dp_seed(3, 1, 2)))
    b, _ = privatize(delta, 1.0, 0.5, np.random.default_rng(dp_seed(3, 1, 2)))
    c, _ = privatize(delta, 1.0, 0.5, np.random.default_rng(dp_seed(3, 1, 3)))
    assert np.array_equal(a["w"], b["w"]) and not np.array_equal(a["w"], c["w"])
    assert float(np.std(a["w"])) == pytest.approx(0.5, rel=0.03)
    assert dp_seed(3, 1, 2) != dp_seed(3, 2, 1)


def test_bad_settings_are_typed_errors() -> None:
    delta = {"w": np.ones(3, np.float32)}
    rng = np.random.default_rng(0)
    for clip, std in ((0.0, 1.0), (math.nan, 1.0), (1.0, -1.0), (1.0, math.inf)):
        with pytest.raises(PrivacyError):
            privatize(delta, clip, std, rng)
    with pytest.raises(PrivacyError):
        NoiseSettings.of("none", 1.0, 1.0, 4)


def test_distributed_noise_is_split_so_the_sum_carries_the_full_noise() -> None:
    local = NoiseSettings.of("local", 2.0, 1.5, 9)
    shared = NoiseSettings.of("distributed", 2.0, 1.5, 9)
    assert local.noise_std == pytest.approx(3.0)
    assert shared.noise_std == pytest.approx(1.0)  # 9 shares of variance 1: the sum has std 3


def test_honest_clients_submit_clipped_noisy_updates_and_attackers_do_not(six_clients) -> None:
    noise = NoiseSettings(clip_norm=0.5, noise_std=0.0)
    clipped = _round(six_clients, noise=noise)
    for payload in clipped.payloads.values():
        assert l2_norm(dequantize(payload)) <= 0.5 + 1e-3
    noisy = _round(six_clients, noise=NoiseSettings(0.5, 0.01))
    again = _round(six_clients, noise=NoiseSettings(0.5, 0.01))
    plain = _round(six_clients)
    for i in noisy.payloads:
        for name in noisy.payloads[i]:
            assert np.array_equal(noisy.payloads[i][name], again.payloads[i][name])
        gap = l2_norm(
            {
                k: dequantize(noisy.payloads[i])[k] - dequantize(clipped.payloads[i])[k]
                for k in noisy.payloads[i]
            }
        )
        size = sum(v.size for v in noisy.payloads[i].values())
        assert gap == pytest.approx(0.01 * math.sqrt(size), rel=0.1)
    assert l2_norm(dequantize(plain.payloads[0])) > 0.5  # the clip above did something
    attacked = _round(
        six_clients, noise=noise, attack=make_attack("sign_flip", {"scale": 10.0}), attackers=[1]
    )
    # crafted from the attacker's own unclipped update: DP is the honest clients' protocol
    crafted = l2_norm(dequantize(attacked.payloads[1]))
    assert crafted == pytest.approx(10 * l2_norm(dequantize(plain.payloads[1])), rel=1e-3)
    assert l2_norm(dequantize(attacked.payloads[0])) <= 0.5 + 1e-3


def test_the_accountant_matches_the_gaussian_mechanism_and_inverts() -> None:
    # one Gaussian mechanism with sampling rate 1: RDP alpha / (2 z^2), converted by Opacus
    eps = epsilon(1.0, 1.0, 1, 1e-5)
    assert 4.0 < eps < 5.5
    assert epsilon(1.0, 0.1, 1, 1e-5) < eps  # sampling amplifies
    assert epsilon(1.0, 1.0, 4, 1e-5) > eps  # composition costs
    assert epsilon(0.0, 1.0, 4, 1e-5) == math.inf
    z = noise_multiplier(8.0, 1e-5, 1.0, 10)
    assert epsilon(z, 1.0, 10, 1e-5) <= 8.0 < epsilon(z * 0.9, 1.0, 10, 1e-5)
    assert noise_multiplier(math.inf, 1e-5, 1.0, 10) == 0.0
    with pytest.raises(PrivacyError):
        noise_multiplier(8.0, 1.5, 1.0, 10)


def test_the_epsilon_table_is_cumulative_integer_and_never_undercounts() -> None:
    table = epsilon_table(2.0, 1e-5, 5)
    assert len(table) == 5 and all(isinstance(v, int) for v in table)
    assert list(table) == sorted(table) and table[0] < table[-1]
    for r, micro in enumerate(table, start=1):
        assert micro >= epsilon(2.0, 1.0, r, 1e-5) * 1e6 > micro - 1
    with pytest.raises(PrivacyError):
        epsilon_table(0.0, 1e-5, 3)
