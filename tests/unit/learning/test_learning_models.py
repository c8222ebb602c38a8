"""Models build for both image sizes; Params round-trip and their naming convention."""

import numpy as np
import pytest
import torch

from fedray.learning.errors import ModelError
from fedray.learning.models import MODELS, ModelSpec, build_model, get_params, set_params


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (60,)])
def test_models_build_for_input_shapes(name, shape):
    if name == "cnn" and len(shape) != 3:
        with pytest.raises(ModelError):
            build_model(ModelSpec(name, shape, 10))
        return
    model = build_model(ModelSpec(name, shape, 10))
    out = model(torch.zeros(5, *shape))
    assert out.shape == (5, 10)


def test_params_are_float32_state_dict_names_in_order():
    model = build_model(ModelSpec("cnn", (1, 28, 28), 10))
    p = get_params(model)
    assert list(p) == list(model.state_dict())
    assert all(v.dtype == np.float32 for v in p.values())


def test_seeded_init_and_roundtrip():
    spec = ModelSpec("mlp", (1, 8, 8), 10)
    a, b, c = (get_params(build_model(spec, s)) for s in (1, 1, 2))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["1.weight"], c["1.weight"])
    m = build_model(spec, 5)
    set_params(m, a)
    back = get_params(m)
    assert all(np.array_equal(a[k], back[k]) for k in a)
    back["1.weight"][0, 0] += 1  # a copy: mutating it leaves the model alone
    assert get_params(m)["1.weight"][0, 0] == a["1.weight"][0, 0]


def test_build_does_not_touch_global_rng():
    torch.manual_seed(0)
    expected = torch.rand(1)
    torch.manual_seed(0)
    build_model(ModelSpec("cnn", (1, 8, 8), 10), seed=9)
    assert torch.equal(torch.rand(1), expected)


def test_set_params_rejects_bad_layout():
    m = build_model(ModelSpec("logreg", (1, 8, 8), 10))
    p = get_params(m)
    with pytest.raises(ModelError):
        set_params(m, {**p, "extra": np.zeros(1, np.float32)})
    with pytest.raises(ModelError):
        set_params(m, {**p, "1.weight": np.zeros((10, 63), np.float32)})
    with pytest.raises(ModelError):
        build_model(ModelSpec("resnet", (1, 8, 8), 10))


def test_params_helpers_accept_any_key_order():
    from fedray.learning.params import add, stack, unflatten

    a = {"x": np.ones((2, 2), np.float32), "y": np.arange(3, dtype=np.float32)}
    b = {"y": np.ones(3, np.float32), "x": np.full((2, 2), 2, np.float32)}  # sorted differently
    s = add(a, b)
    assert list(s) == ["x", "y"] and np.array_equal(s["x"], np.full((2, 2), 3))
    m = stack([a, b])
    assert np.array_equal(m[1], [2, 2, 2, 2, 1, 1, 1])
    assert np.array_equal(unflatten(m[1], a)["y"], np.ones(3))
    with pytest.raises(ModelError):
        add(a, {"x": a["x"]})
