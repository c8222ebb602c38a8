"""Each attack changes the update in its defining way."""

from statistics import NormalDist

import numpy as np
import pytest

from fedray.learning.attacks import (
    ATTACKS,
    AttackContext,
    SignFlipConfig,
    alie_z,
    flip_labels,
    make_attack,
)
from fedray.learning.datasets import load_digits
from fedray.learning.errors import AttackError
from fedray.learning.params import flatten, stack


def _params(rng, scale=1.0):
    return {
        "w": (scale * rng.standard_normal((4, 3))).astype(np.float32),
        "b": (scale * rng.standard_normal(3)).astype(np.float32),
    }


def _ctx(n_attackers=3, round_=0, state=None, honest=None, seed=0, num_clients=10):
    rng = np.random.default_rng(seed)
    honest = honest or tuple(_params(rng) for _ in range(n_attackers))
    return AttackContext(
        round=round_,
        attackers=tuple(range(n_attackers)),
        honest=honest,
        global_params=_params(rng),
        num_clients=num_clients,
        rng=np.random.default_rng(seed + 1),
        state=state or {},
    )


def test_registry_and_config_validation():
    assert {
        "none",
        "label_flip",
        "sign_flip",
        "gaussian",
        "alie",
        "ipm",
        "free_rider",
        "replay",
    } <= set(ATTACKS)
    assert make_attack("sign_flip", {"scale": 3.0}).config == SignFlipConfig(3.0)
    with pytest.raises(AttackError):
        make_attack("nope")
    with pytest.raises(AttackError):
        make_attack("sign_flip", {"bogus": 1})
    with pytest.raises(AttackError):
        make_attack("sign_flip", SignFlipConfig(-1.0))
    with pytest.raises(AttackError):
        make_attack("ipm", SignFlipConfig(2.0))


def test_none_passes_honest_updates_through():
    ctx = _ctx()
    out = make_attack("none").craft(ctx)
    assert np.array_equal(stack(out.updates), stack(ctx.honest))


def test_sign_flip_negates_and_scales():
    ctx = _ctx()
    out = make_attack("sign_flip", {"scale": 4.0}).craft(ctx)
    assert np.allclose(stack(out.updates), -4.0 * stack(ctx.honest))


def test_scaling_boosts():
    ctx = _ctx()
    out = make_attack("scaling", {"boost": 7.0}).craft(ctx)
    assert np.allclose(stack(out.updates), 7.0 * stack(ctx.honest))


def test_gaussian_is_noise_of_configured_std_independent_of_honest():
    rng = np.random.default_rng(0)
    big = tuple({"w": rng.standard_normal((200, 50)).astype(np.float32)} for _ in range(2))
    ctx = AttackContext(0, (0, 1), big, {"w": np.zeros((200, 50), np.float32)}, 10, rng)
    out = make_attack("gaussian", {"std": 0.3}).craft(ctx)
    m = stack(out.updates)
    assert abs(m.std() - 0.3) < 0.01 and abs(m.mean()) < 0.01
    assert abs(np.corrcoef(m.ravel(), stack(big).ravel())[0, 1]) < 0.05
    assert not make_attack("gaussian").needs_training


def test_alie_z_from_n_and_f():
    # n = 20, f = 4: s = floor(11) - 4 = 7, z = Phi^-1(13 / 20).
    assert alie_z(20, 4) == pytest.approx(NormalDist().inv_cdf(0.65))
    assert alie_z(50, 24) > alie_z(50, 5)
    with pytest.raises(AttackError):
        alie_z(10, 0)


def test_alie_is_mean_minus_z_std_of_attackers_own_updates():
    ctx = _ctx(n_attackers=4, num_clients=20)
    out = make_attack("alie").craft(ctx)
    h = stack(ctx.honest).astype(np.float64)
    mu, sd = h.mean(0), h.std(0)
    z = alie_z(20, 4)
    m = stack(out.updates)
    assert np.allclose(m, mu - z * sd, atol=1e-6)  # every attacker the same crafted vector
    assert ((m >= mu - z * sd - 1e-6) & (m <= mu + z * sd + 1e-6)).all()
    fixed = make_attack("alie", {"z": 1.5}).craft(ctx)
    assert np.allclose(stack(fixed.updates), mu - 1.5 * sd, atol=1e-6)


def test_ipm_is_minus_epsilon_times_benign_mean():
    ctx = _ctx(n_attackers=4)
    out = make_attack("ipm", {"epsilon": 0.5}).craft(ctx)
    mu = stack(ctx.honest).mean(0)
    assert np.allclose(stack(out.updates), -0.5 * mu, atol=1e-6)
    assert float(flatten(out.updates[0]) @ mu) < 0


def test_free_rider_zero_and_noise():
    ctx = _ctx()
    zero = make_attack("free_rider").craft(ctx)
    assert all(not v.any() for u in zero.updates for v in u.values())
    noise = make_attack("free_rider", {"mode": "noise", "std": 0.01}).craft(ctx)
    m = stack(noise.updates)
    assert m.any() and np.abs(m).max() < 0.1
    assert not np.allclose(m[0], m[1])  # independent noise per attacker
    with pytest.raises(AttackError):
        make_attack("free_rider", {"mode": "lazy"})


def test_replay_resubmits_the_earlier_update():
    attack = make_attack("replay", {"source_round": 1})
    state: dict = {}
    submitted = []
    for r in range(4):
        ctx = _ctx(n_attackers=2, round_=r, state=state, seed=10 * r)
        out = attack.craft(ctx)
        state = out.state
        submitted.append((ctx.honest, out.updates))
    for r in (0, 1):  # honest up to and including the source round
        assert np.array_equal(stack(submitted[r][1]), stack(submitted[r][0]))
    for r in (2, 3):  # afterwards the round-1 update, not the fresh one
        assert np.array_equal(stack(submitted[r][1]), stack(submitted[1][0]))
        assert not np.array_equal(stack(submitted[r][1]), stack(submitted[r][0]))


def test_label_flip_maps_labels_and_keeps_inputs():
    split = load_digits()
    attack = make_attack("label_flip")
    poisoned = attack.poison_data(split.train, np.random.default_rng(0))
    assert np.array_equal(poisoned.y, 9 - split.train.y)
    assert poisoned.x is split.train.x
    assert np.array_equal(flip_labels(np.array([0, 1, 2, 3]), 4, ((1, 2),)), [0, 2, 2, 3])
    ctx = _ctx()
    assert np.array_equal(stack(attack.craft(ctx).updates), stack(ctx.honest))


def test_attacks_needing_training_refuse_missing_updates():
    ctx = AttackContext(0, (0, 1), (), {"w": np.zeros(2, np.float32)}, 10, np.random.default_rng(0))
    for name in ("sign_flip", "alie", "ipm", "replay"):
        with pytest.raises(AttackError):
            make_attack(name).craft(ctx)
