"""Starting and ending one `fedray run`: checks before Ray, Ray's life, the run directory's life.

`run(cfg)` and `resume(run_dir)`:
1. Before Ray starts: the config is built once (`Federation.preflight`: partition, model, chain
   parameters) and, for an embedded Ray, the CPUs and GPUs the actors reserve are compared with the
   machine's; a config that cannot run is one `ConfigError` line and nothing is started or written
   (an actor asking for a GPU nobody has would wait forever instead).
2. Ray starts (or is joined); on a cluster the CPUs and GPUs are checked against the cluster's.
3. The run directory is made (or, for a resume, locked so one process resumes it), the actors are
   built and the run executes (`runtime.run.Run`).
4. Whatever happens, the actors are stopped and an embedded Ray is shut down, so no Ray process
   outlives the command; a new run that failed before its chain committed a block leaves no run
   directory behind. A run stopped later keeps its directory: `fedray run --resume DIR` continues it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from fedray.config import RunConfig, load_config
from fedray.errors import ConfigError, FedrayError
from fedray.federation.driver import RunError
from fedray.federation.outputs import RunResult, make_run_dir
from fedray.federation.plan import Federation, ingress_cpus
from fedray.storage.dirlock import DirLock


def _check_cpus(fed: Federation, available: float, where: str) -> None:
    need = fed.cpus_needed()
    if need > available + 1e-9:
        rt = fed.cfg.runtime
        ingress = f" + ingress {ingress_cpus(rt)}" if ingress_cpus(rt) else ""
        raise ConfigError(
            f"the run reserves {need:.2f} CPUs ({fed.cfg.chain.validators} validators x "
            f"{rt.validator_num_cpus}{ingress}, {len(fed.pools())} client pools x "
            f"{rt.pool_num_cpus}) but {where} has {available:g}: lower chain.validators, "
            "runtime.client_pools or runtime.*_num_cpus"
        )


def _check_gpus(fed: Federation, available: float, where: str) -> None:
    need = fed.gpus_needed()
    if need > available + 1e-9:
        raise ConfigError(
            f"config key 'runtime.pool_num_gpus': the run reserves {need:g} GPUs "
            f"({len(fed.pools())} client pools x {fed.cfg.runtime.pool_num_gpus}) but {where} "
            f"has {available:g}: set runtime.pool_num_gpus=0 to train on CPU"
        )


def _machine_gpus() -> int:
    import torch

    return torch.cuda.device_count()


RoundObserver = Callable[[Mapping[str, Any]], None]
"""Called with each round's metrics row as the round closes (live metrics, Ray Tune's report)."""


def run(
    cfg: RunConfig,
    on_round: RoundObserver | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> RunResult:
    """Run `cfg` end to end in a new run directory (see the module docstring); `on_round` sees
    every round's row as it is recorded. `should_stop`, asked every tick (at most 2 s apart),
    ends the run early with `RunStopped` when it says so, its actors stopped and rounds kept."""
    return _launch(cfg, None, on_round, should_stop)


def resume(
    run_dir: str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    on_round: RoundObserver | None = None,
) -> RunResult:
    """Continue the run in `run_dir` with its own config.yaml (only `runtime.*` may change)."""
    path = Path(run_dir)
    if not (path / "config.yaml").exists() or not (path / "chain").is_dir():
        raise ConfigError(f"{path} is not a run directory (no config.yaml and chain/)")
    for item in overrides:
        if not item.startswith("runtime."):
            raise ConfigError(
                f"a resumed run keeps its config; only runtime.* may change: {item!r}"
            )
    return _launch(load_config(path / "config.yaml", list(overrides)), path, on_round)


def _ray_running() -> bool:
    """Whether this process is already connected to Ray (a Ray Tune trial, a caller's ray.init)."""
    import ray

    return bool(ray.is_initialized())


def _launch(
    cfg: RunConfig,
    resume_dir: Path | None,
    on_round: RoundObserver | None,
    should_stop: Callable[[], bool] | None = None,
) -> RunResult:
    from fedray.runtime.cluster import cluster_address, init_ray, shutdown_ray
    from fedray.runtime.hardening import guarded
    from fedray.runtime.run import Run

    fed = Federation(cfg)
    fed.preflight()
    # Ray already up (a Ray Tune trial, a caller's ray.init): its resources are checked below
    embedded = cluster_address(cfg.runtime.address) is None and not _ray_running()
    if embedded:
        _check_cpus(fed, float(cfg.runtime.num_cpus or os.cpu_count() or 1), "this machine")
        if fed.gpus_needed() > 0:
            _check_gpus(fed, float(_machine_gpus()), "this machine")
    lock = DirLock(resume_dir, wait_s=0) if resume_dir is not None else None
    started = False
    run_dir: Path | None = resume_dir
    made_parent = False
    handle: Run | None = None
    ok = False
    try:
        try:
            rt = cfg.runtime
            started = init_ray(
                rt.address,
                rt.num_cpus,
                rt.object_store_mb,
                allow_unauthenticated=rt.allow_unauthenticated,
            )
        except FedrayError:
            raise  # fedray's own refusals (an unauthenticated cluster) say why in one line
        except Exception as exc:  # Ray's own error types
            raise RunError(f"Ray failed to start: {type(exc).__name__}: {exc}") from None
        if not embedded:
            import ray

            _check_cpus(fed, float(ray.cluster_resources().get("CPU", 0)), "the Ray cluster")
            _check_gpus(fed, float(ray.cluster_resources().get("GPU", 0)), "the Ray cluster")
        if run_dir is None:
            made_parent = not Path(cfg.output_dir).exists()
            run_dir = make_run_dir(cfg)
            lock = DirLock(run_dir, wait_s=0)
        handle = Run(cfg, run_dir, resume_dir is not None, on_round, should_stop)
        with guarded():  # pools and validators answer this process: unpickle only wire types
            try:
                handle.start()
            except FedrayError:
                raise
            except Exception as exc:  # Ray's errors carry the actor's traceback: its last line
                lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
                raise RunError(
                    f"an actor failed to build: {lines[-1] if lines else exc!r}"
                ) from None
            result = handle.execute()
        ok = True
        return result
    finally:
        if handle is not None:
            with contextlib.suppress(Exception):
                handle.stop()
        if started:
            shutdown_ray()
        if lock is not None:
            lock.release()
        empty = handle is None or not handle.committed
        if resume_dir is None and run_dir is not None and not ok and empty:
            shutil.rmtree(run_dir, ignore_errors=True)
            if made_parent:
                with contextlib.suppress(OSError):  # only if nothing else is in it
                    run_dir.parent.rmdir()
