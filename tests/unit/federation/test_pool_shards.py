"""What the driver hands a client pool of the data (`PoolShards`): exactly the shards the pool would
have made from the data set itself, refused for other clients, and nothing for a generated
population; and a pool process built from it never imports scikit-learn (nor scipy or pandas)."""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest

from fedray.config import load_config
from fedray.federation.clients import ClientPool
from fedray.federation.plan import Federation
from fedray.federation.shards import PoolShards
from fedray.learning.errors import DatasetError


@pytest.mark.parametrize(
    "overrides",
    [
        [],  # digits, iid
        ["data=dirichlet", "clients=12", "runtime.client_pools=3"],
        ["data=synthetic", "clients=30"],  # a natural partition, with groups
    ],
)
def test_handed_shards_equal_the_shards_a_pool_would_make(overrides: list[str]) -> None:
    fed = Federation(load_config(None, overrides))
    made = fed.shards()
    for clients in fed.pools():
        given = fed.pool_shards(clients)
        assert given is not None and list(given.clients) == clients
        assert fed.model_spec(given) == fed.model_spec()
        given.x.flags.writeable = False  # as a pool reads it from Ray's object store
        for k in clients:
            ours, theirs = given.shard(k), made[k]
            assert ours.x.tobytes() == theirs.x.tobytes() and ours.x.shape == theirs.x.shape
            assert ours.y.tobytes() == theirs.y.tobytes() and ours.num_classes == theirs.num_classes
            if theirs.groups is None:
                assert ours.groups is None
            else:
                assert ours.groups is not None and np.array_equal(ours.groups, theirs.groups)
            assert ours.x.flags.writeable  # a copy: torch wants writable arrays


def test_a_pool_handed_its_shards_poisons_and_trains_alike() -> None:
    cfg = load_config(None, ["attack=label_flip", "attack.fraction=0.2"])
    fed = Federation(cfg)
    attackers = fed.pools()[-1]
    loaded = ClientPool(cfg, attackers)
    handed = ClientPool(cfg, attackers, data=fed.pool_shards(attackers))
    assert loaded.attackers == handed.attackers == tuple(attackers)
    for k in attackers:  # label flips happen on the handed shards too
        assert np.array_equal(loaded.shards[k].y, handed.shards[k].y)
    assert loaded.model.state_dict().keys() == handed.model.state_dict().keys()


def test_shards_of_other_clients_are_refused() -> None:
    cfg = load_config(None, [])
    fed = Federation(cfg)
    first, second = fed.pools()[:2]
    with pytest.raises(DatasetError):
        ClientPool(cfg, first, data=fed.pool_shards(second))
    given = fed.pool_shards(first)
    assert given is not None
    with pytest.raises(DatasetError):  # ends that do not cover the samples
        PoolShards(given.clients, given.ends[:-1] + (0,), given.x, given.y, given.num_classes)


def test_a_generated_population_is_not_handed_over() -> None:
    fed = Federation(load_config(None, ["clients=50", "data=synthetic_users"]))
    assert fed.pool_shards(fed.pools()[0]) is None


# A pool actor's construction: its arguments through the guarded unpickler, then its node.
POOL_PROCESS = """
import sys
from fedray.runtime.hardening import guarded_loads
from fedray.runtime.pool import PoolNode
cfg, clients, data = guarded_loads(sys.stdin.buffer.read())
node = PoolNode(cfg, clients, b"c" * 32, None, None, data)
assert len(node.pool.shards[clients[0]]) > 0
print(",".join(sorted({m.split(".")[0] for m in sys.modules} & {"sklearn", "scipy", "pandas"})))
"""


def test_a_pool_process_imports_no_scikit_learn() -> None:
    fed = Federation(load_config(None, []))  # the default run: digits
    clients = fed.pools()[0]
    arguments = pickle.dumps((fed.cfg, clients, fed.pool_shards(clients)))
    out = subprocess.run(
        [sys.executable, "-c", POOL_PROCESS], input=arguments, capture_output=True, check=True
    )
    assert out.stdout.decode().strip() == "", f"a pool process imported {out.stdout.decode()}"
