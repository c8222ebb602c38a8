"""Local training: determinism under a seed, delta semantics, FedProx, carried momentum, baseline."""

import numpy as np
import pytest

from fedray.learning.datasets import load_digits
from fedray.learning.errors import LearningError
from fedray.learning.models import ModelSpec, build_model, get_params
from fedray.learning.params import add, l2_norm
from fedray.learning.partition import PartitionConfig, partition
from fedray.learning.training import TrainConfig, centralized_baseline, evaluate, train_local


@pytest.fixture(scope="module")
def setup():
    split = load_digits()
    fed = partition(split, PartitionConfig("iid", 10))
    spec = ModelSpec("mlp", split.input_shape, 10)
    model = build_model(spec, 0)
    return split, fed, spec, model, get_params(model)


def _equal(a, b):
    return all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_training_is_deterministic_under_seed(setup, name):
    split, fed, _, _, _ = setup
    spec = ModelSpec(name, split.input_shape, 10)
    g = get_params(build_model(spec, 3))
    cfg = TrainConfig(epochs=2, batch_size=16)
    runs = [train_local(build_model(spec, s), g, fed.client(0), cfg, seed=11) for s in (0, 1)]
    other = train_local(build_model(spec, 0), g, fed.client(0), cfg, seed=12)
    # The scratch model's own init must not matter: training starts from g.
    assert _equal(runs[0].delta, runs[1].delta) and runs[0].loss == runs[1].loss
    assert not _equal(runs[0].delta, other.delta)


def test_delta_is_local_minus_global_and_improves_loss(setup):
    _, fed, _, model, g = setup
    data = fed.client(1)
    before = evaluate(model, g, data)
    upd = train_local(model, g, data, TrainConfig(epochs=3), seed=0)
    assert upd.n_samples == len(data)
    assert all(v.dtype == np.float32 for v in upd.delta.values())
    local = get_params(model)
    assert all(np.allclose(add(g, upd.delta)[k], local[k], atol=1e-6) for k in g)
    assert evaluate(model, add(g, upd.delta), data).loss < before.loss


def test_prox_term_keeps_update_closer_to_global(setup):
    _, fed, _, model, g = setup
    plain = train_local(model, g, fed.client(2), TrainConfig(epochs=3), seed=0)
    prox = train_local(model, g, fed.client(2), TrainConfig(epochs=3, prox_mu=1.0), seed=0)
    assert l2_norm(prox.delta) < 0.9 * l2_norm(plain.delta)


def test_momentum_is_explicit_state(setup):
    _, fed, _, model, g = setup
    cfg = TrainConfig(carry_momentum=True)
    first = train_local(model, g, fed.client(3), cfg, seed=0)
    assert first.momentum is not None and list(first.momentum) == list(g)
    fresh = train_local(model, g, fed.client(3), cfg, seed=1)
    resumed = train_local(model, g, fed.client(3), cfg, seed=1, momentum=first.momentum)
    assert not _equal(fresh.delta, resumed.delta)
    again = train_local(model, g, fed.client(3), cfg, seed=1, momentum=first.momentum)
    assert _equal(resumed.delta, again.delta)
    assert train_local(model, g, fed.client(3), TrainConfig(), seed=0).momentum is None
    with pytest.raises(LearningError):
        train_local(model, g, fed.client(3), TrainConfig(), seed=0, momentum=first.momentum)


def test_invalid_config_raises():
    with pytest.raises(LearningError):
        TrainConfig(lr=0)
    with pytest.raises(LearningError):
        TrainConfig(momentum=1.0)


def test_centralized_baseline_learns_digits(setup):
    split, _, _, _, _ = setup
    res = centralized_baseline(
        split, ModelSpec("logreg", split.input_shape, 10), TrainConfig(epochs=5)
    )
    assert res.test.accuracy > 0.9 and res.epochs == 5 and res.test.n_samples == len(split.test)


def test_local_sgd_matches_torch_optim_sgd(setup):
    import torch
    from torch.nn import functional as F

    from fedray.learning.models import set_params

    _, fed, spec, _, g = setup
    data = fed.client(4)
    cfg = TrainConfig(epochs=2, batch_size=16, lr=0.03, momentum=0.9, weight_decay=1e-3)
    ours = train_local(build_model(spec), g, data, cfg, seed=5)
    ref = build_model(spec)
    set_params(ref, g)
    opt = torch.optim.SGD(ref.parameters(), lr=0.03, momentum=0.9, weight_decay=1e-3)
    gen = torch.Generator().manual_seed(5)
    x, y = torch.from_numpy(data.x), torch.from_numpy(data.y)
    for _ in range(2):
        perm = torch.randperm(len(data), generator=gen)
        for s in range(0, len(data), 16):
            idx = perm[s : s + 16]
            opt.zero_grad()
            F.cross_entropy(ref(x[idx]), y[idx]).backward()
            opt.step()
    expected = get_params(ref)
    assert all(np.allclose(add(g, ours.delta)[k], expected[k], atol=1e-5) for k in g)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["logreg", "mlp", "cnn"])
def test_every_model_learns_with_its_training_defaults(model: str) -> None:
    from fedray.config import load_config
    from fedray.federation.evaluate import Evaluator
    from fedray.federation.plan import Federation

    cfg = load_config(None, [f"model.name={model}"])  # the default run's data and epoch budget
    assert Evaluator(Federation(cfg)).baseline(cfg) >= 0.9
