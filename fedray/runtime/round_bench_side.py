"""One side of `fedray bench round`, run in its own process so that its peak memory can be read
over exactly the processes it starts: `main([SIDE, TASK_JSON, OUT_JSON])`, SIDE `fedray` or
`flower` (called through `python -c`, not `-m`, so that Ray workers find Flower's apps by this
module's name rather than `__main__`).

Both sides run the same task (`round_bench.RoundTask`): the data split and partition, initial
model, local training (`fedray.learning.training.train_local`) and test set of
`fedray.federation.plan.Federation`, so that only the framework differs.
- fedray: `fedray run`'s own path (`load_config` with overrides, then `launch.run`): embedded
  local Ray with token authentication, the chain on with its validators, FedAvg on the chain.
- Flower: Flower's simulation engine (`flwr.simulation.run_simulation`, Ray backend) on the Ray
  that fedray installs, with FedAvg and the test-set evaluation run by the ServerApp each round.
The output (`SideRun`) is the side's wall time from launch to exit, the moments each round starts
and ends (a round ends after its test evaluation) and the final accuracy.

Deliberately ignored: Flower's deployment engine (SuperLink/SuperNode), and any tuning of either
side beyond what the task fixes.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

from fedray.runtime.round_bench import BenchRoundError, RoundTask, SideRun


def fedray_overrides(task: RoundTask, output_dir: str) -> list[str]:
    """The `fedray run` key=value items of `task` (chain on, `task.validators` validators)."""
    return [
        "data=digits",
        "model.name=mlp",
        f"model.hidden={task.hidden}",
        f"clients={task.clients}",
        f"chain.clients_per_round={task.per_round}",
        f"chain.validators={task.validators}",
        f"rounds={task.rounds}",
        f"seed={task.seed}",
        "strategy.name=fedavg",
        f"training.epochs={task.epochs}",
        f"training.batch_size={task.batch_size}",
        f"training.lr={task.lr}",
        f"training.momentum={task.momentum}",
        f"runtime.client_pools={task.actors}",
        "runtime.progress=false",
        "runtime.checkpoint_every=0",
        "baseline=false",
        f"output_dir={output_dir}",
        "name=bench-round",
    ]


def run_fedray(task: RoundTask) -> SideRun:
    from fedray.config import load_config
    from fedray.runtime import launch

    launched = time.time()
    with tempfile.TemporaryDirectory(prefix="fedray-bench-round-") as tmp:
        result = launch.run(load_config(None, fedray_overrides(task, tmp)))
    ended = time.time()
    # wall_seconds: from the opening of the first round to the close (and evaluation) of each.
    walls = [float(r["wall_seconds"]) for r in result.rows]
    return SideRun(
        "fedray",
        task.per_round,
        ended - launched,
        boundaries=[0.0, *walls],
        accuracy=float(result.summary["final_accuracy"]),
    )


@lru_cache(maxsize=1)
def _federation(task_json: str) -> Any:
    from fedray.config import load_config
    from fedray.federation.plan import Federation

    task = RoundTask(**json.loads(task_json))
    return Federation(load_config(None, fedray_overrides(task, tempfile.gettempdir())))


@lru_cache(maxsize=1)
def _shards(task_json: str) -> dict[int, Any]:
    return dict(_federation(task_json).shards())


def run_flower(task: RoundTask) -> SideRun:
    import torch
    from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp
    from flwr.serverapp import Grid, ServerApp
    from flwr.serverapp.strategy import FedAvg
    from flwr.simulation import run_simulation

    from fedray.learning.client_round import client_seed
    from fedray.learning.models import build_model, get_params
    from fedray.learning.training import evaluate, train_local

    launched = time.time()
    task_json = json.dumps(dataclasses.asdict(task))
    fed = _federation(task_json)
    spec, train_cfg = fed.model_spec(), fed.train_config()
    boundaries: list[float] = []
    accuracy: list[float] = []

    client = ClientApp()

    @client.train()
    def train(msg: Message, context: Context) -> Message:
        node = int(context.node_config["partition-id"])
        data = _shards(task_json)[node]
        model = build_model(spec, task.seed)
        start = {k: v.numpy() for k, v in msg.content["arrays"].to_torch_state_dict().items()}
        rnd = int(msg.content["config"]["server-round"])
        # fedray's seed for this client's shuffling (its rounds count from 0, Flower's from 1).
        seed = client_seed(task.seed, rnd - 1, node)
        update = train_local(model, start, data, train_cfg, seed=seed)
        local = {k: torch.from_numpy(start[k] + update.delta[k]) for k in start}
        content = RecordDict(
            {
                "arrays": ArrayRecord(local),
                "metrics": MetricRecord({"num-examples": update.n_samples}),
            }
        )
        return Message(content=content, reply_to=msg)

    server = ServerApp()

    @server.main()
    def main(grid: Grid, context: Context) -> None:
        test = fed.split().test
        model = build_model(spec, task.seed)

        def evaluate_fn(server_round: int, arrays: ArrayRecord) -> MetricRecord:
            params = {k: v.numpy() for k, v in arrays.to_torch_state_dict().items()}
            metrics = evaluate(model, params, test)
            # Round 0 is the initial model's evaluation: the first round starts after it.
            boundaries.append(time.time() - launched)
            accuracy.append(metrics.accuracy)
            return MetricRecord({"accuracy": metrics.accuracy})

        class CheckedFedAvg(FedAvg):  # type: ignore[misc]
            """FedAvg that stops the run when a client fails instead of averaging fewer."""

            def aggregate_train(self, server_round: int, replies: Iterable[Message]) -> Any:
                got = list(replies)
                failed = [m.error.reason for m in got if m.has_error()]
                if failed or len(got) < task.per_round:
                    raise BenchRoundError(
                        f"Flower round {server_round}: {len(got)} replies, "
                        f"{len(failed)} failed: {failed[:1]}"
                    )
                return super().aggregate_train(server_round, got)

        initial = {k: torch.from_numpy(v) for k, v in get_params(model).items()}
        strategy = CheckedFedAvg(
            fraction_train=task.per_round / task.clients,
            fraction_evaluate=0.0,
            min_train_nodes=task.per_round,
            min_available_nodes=task.clients,
        )
        strategy.start(
            grid=grid,
            initial_arrays=ArrayRecord(initial),
            num_rounds=task.rounds,
            evaluate_fn=evaluate_fn,
        )

    run_simulation(
        server_app=server,
        client_app=client,
        num_supernodes=task.clients,
        backend_config={
            # Two client actors: Ray gets two CPUs and each actor reserves one.
            "client_resources": {"num_cpus": 2 / task.actors, "num_gpus": 0.0},
            "init_args": {"num_cpus": 2, "include_dashboard": False},
        },
    )
    return SideRun(
        "flower",
        task.per_round,
        time.time() - launched,
        boundaries=boundaries,
        accuracy=accuracy[-1] if len(accuracy) > 1 else 0.0,
    )


def main(argv: list[str]) -> int:
    side, task_path, out_path = argv
    task = RoundTask(**json.loads(Path(task_path).read_text()))
    run = run_fedray(task) if side == "fedray" else run_flower(task)
    Path(out_path).write_text(json.dumps(dataclasses.asdict(run)))
    return 0
