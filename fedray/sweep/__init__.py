"""`fedray sweep SWEEP.yaml`: many runs over a grid or a search space, on Ray Tune.

`sweep(path)`: the sweep file is read and every trial config checked before Ray starts
(`spec`); Ray starts (or is joined) as for `fedray run`; Tune runs the trials, each a full run in
its own placement group (`trials`); the results table is printed and the sweep directory gets
`accuracy.png`, `results.parquet` and the sweep file (`results`). Ray is shut down if this call
started it. docs/sweeps.md is the user's guide.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from fedray.sweep.results import TrialOutcome
from fedray.sweep.spec import SweepSpec, load_sweep

__all__ = ["SweepOutput", "SweepSpec", "load_sweep", "sweep"]


@dataclass(frozen=True)
class SweepOutput:
    directory: Path
    table: str
    parquet: Path
    plot: Path
    outcomes: list[TrialOutcome]


def _check_capacity(spec: SweepSpec) -> None:
    """A trial larger than the whole cluster would wait forever: refuse it now."""
    import ray

    from fedray.errors import ConfigError
    from fedray.federation.plan import Federation
    from fedray.runtime.placement import RunLayout
    from fedray.sweep.spec import check_trials

    have = float(ray.cluster_resources().get("CPU", 0))
    need = max(
        RunLayout.of(Federation(c), spec.resources.driver_cpus).total_cpus()
        for c in check_trials(spec)
    )
    if need > have + 1e-9:
        raise ConfigError(
            f"a trial reserves {need:.2f} CPUs (its driver, validators, ingresses and pools) but "
            f"Ray has {have:g}: raise resources.num_cpus, or lower chain.validators, "
            "runtime.client_pools, runtime.*_num_cpus or resources.driver_cpus"
        )


def sweep(path: str | Path, verbose: int = 1) -> SweepOutput:
    """Run the sweep in the file at `path` (module docstring)."""
    from fedray.runtime.cluster import init_ray, shutdown_ray
    from fedray.sweep import results
    from fedray.sweep.trials import run_name, run_sweep, sweep_dir

    spec = load_sweep(path)
    res = spec.resources
    started = init_ray(res.address, res.num_cpus, res.object_store_mb)
    try:
        _check_capacity(spec)
        out = sweep_dir(spec)
        shutil.copyfile(path, out / "sweep.yaml")
        grid = run_sweep(spec, out, verbose)
        varied = spec.varied()
        runs = out / "runs"
        found = results.outcomes(
            grid, varied, spec.trial_config, lambda t: list(runs.glob(f"{run_name(spec, t)}-*"))
        )
    finally:
        if started:
            shutdown_ray()
    text = results.table(found, varied)
    return SweepOutput(
        out,
        text,
        results.write_parquet(found, varied, out / "results.parquet"),
        results.plot(found, varied, out / "accuracy.png"),
        found,
    )
