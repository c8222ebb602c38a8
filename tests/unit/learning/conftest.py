"""One torch thread: the machines are shared, and results must not depend on thread scheduling.
`six_clients`: the model, its parameters and six IID digits shards the client-round tests share."""

import pytest
import torch

from fedray.learning.datasets import DatasetSpec, load_dataset
from fedray.learning.models import ModelSpec, build_model, get_params
from fedray.learning.partition import PartitionConfig, partition

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def six_clients():
    split = load_dataset(DatasetSpec("digits", seed=0))
    fed = partition(split, PartitionConfig("iid", num_clients=6, seed=0))
    shards = {i: fed.client(i) for i in range(6)}
    model = build_model(ModelSpec("mlp", split.input_shape, split.num_classes, 16), seed=0)
    return model, get_params(model), shards
