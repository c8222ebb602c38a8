"""Federated learning building blocks: datasets, partitioners, models, local training, attacks.

Pure numpy + torch, no Ray and no chain, so researchers can use them on their own. A client's round:

    split = load_dataset("mnist5k")                                   # datasets.py
    fed = partition(split, PartitionConfig("dirichlet", 20, alpha=0.5))  # partition.py
    spec = ModelSpec("mlp", split.input_shape, split.num_classes)     # models.py
    model = build_model(spec, seed=0); global_params = get_params(model)
    upd = train_local(model, global_params, fed.client(k), TrainConfig(), seed=s)  # training.py
    upd.delta  # dict[str, float32 ndarray] = local - global; quantize it with fedray.aggregation

Interchange type everywhere: `Params` (params.py), an ordered dict of float32 arrays keyed by the
torch parameter names. Attacks live in `fedray.learning.attacks`.
"""
