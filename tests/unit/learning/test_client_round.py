"""The client round every path shares: train, craft, clip, quantize."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from fedray.aggregation.fixedpoint import SCALE, quantize
from fedray.learning.attacks import make_attack
from fedray.learning.client_round import CRAFT_LIMIT, client_round, client_seed, clip_into_range
from fedray.learning.training import TrainConfig

TRAIN = TrainConfig(epochs=1, batch_size=16, lr=0.1)


def run(six_clients, **kwargs):
    model, params, shards = six_clients
    args = {"round_": 3, "seed": 7, "participants": 6} | kwargs
    return client_round(model, params, shards, [0, 1, 2, 3], TRAIN, **args)


def test_payloads_are_int32_deterministic_and_seeded_per_client(six_clients) -> None:
    a, b = run(six_clients), run(six_clients)
    assert list(a.payloads) == [0, 1, 2, 3]
    for i in a.payloads:
        for name, q in a.payloads[i].items():
            assert q.dtype == np.int32
            assert np.array_equal(q, b.payloads[i][name])
    other = run(six_clients, seed=8)
    assert not np.array_equal(a.payloads[0]["1.weight"], other.payloads[0]["1.weight"])
    assert client_seed(7, 3, 0) != client_seed(7, 3, 1) != client_seed(7, 4, 1)


def test_crafted_updates_are_clipped_inside_the_fixed_point_range(six_clients) -> None:
    out = run(six_clients, attack=make_attack("sign_flip", {"scale": 1e6}), attackers=[1, 3])
    limit = int(round(float(CRAFT_LIMIT) * SCALE))
    for i in (1, 3):
        assert max(int(np.abs(q).max()) for q in out.payloads[i].values()) == limit
    honest = max(int(np.abs(q).max()) for q in out.payloads[0].values())
    assert honest < limit  # honest clients are not touched by the attack
    assert out.clipped[1] > 0 and out.clipped[3] > 0 and out.clipped[0] == 0  # and it is counted


def test_any_delta_outside_the_range_is_clipped_and_counted_not_fatal() -> None:
    delta = {"w": np.array([1.0, -300.0, 200.0, 127.0], dtype=np.float32)}
    clipped, count = clip_into_range(delta)
    assert count == 2 and float(np.abs(clipped["w"]).max()) == float(CRAFT_LIMIT)
    assert clipped["w"][0] == 1.0 and clipped["w"][3] == 127.0
    quantize(clipped)  # inside the fixed-point range now


def test_a_client_whose_training_diverges_misses_the_round_alone(six_clients) -> None:
    model, params, shards = six_clients
    bad = dict(shards)
    x = shards[2].x.copy()
    x[0, 0] = np.nan  # one corrupt sample: training yields NaN
    bad[2] = replace(shards[2], x=x)
    out = client_round(model, params, bad, [0, 1, 2, 3], TRAIN, round_=3, seed=7, participants=6)
    assert list(out.failed) == [2] and "NaN" in out.failed[2]
    assert sorted(out.payloads) == [0, 1, 3]
    assert np.array_equal(out.payloads[0]["1.weight"], run(six_clients).payloads[0]["1.weight"])


def test_attackers_that_need_no_training_do_not_train(six_clients) -> None:
    out = run(six_clients, attack=make_attack("free_rider"), attackers=[2])
    assert out.seconds[2] == 0.0 and out.seconds[0] > 0.0
    assert all(not q.any() for q in out.payloads[2].values())


def test_the_attack_sees_the_whole_round_not_only_its_group(six_clients) -> None:
    alie = make_attack("alie")
    # an attack that cannot craft (ALIE needs f < n): its attackers miss the round, others submit
    out = run(six_clients, attack=alie, attackers=[0, 1], participants=2)
    assert list(out.failed) == [0, 1] and "AttackError: alie: need 0 < f < n" in out.failed[0]
    assert sorted(out.payloads) == [2, 3]
    out = run(six_clients, attack=alie, attackers=[0, 1], participants=20)
    assert all(np.array_equal(out.payloads[0][k], out.payloads[1][k]) for k in out.payloads[0])
