"""Running a sweep on Ray Tune: one trial per grid point and sample, each a full `fedray run`.

Each trial's resources are a `tune.PlacementGroupFactory` of its run's layout
(`runtime.placement.RunLayout`: the trial driver's bundle, one per validator with its ingress, one
per client pool), computed from that trial's own config, so a grid over `chain.validators` or
`runtime.client_pools` sizes each trial. Inside the trial, `RunActors` finds the group it runs in
and puts each actor in its bundle, so no actor of a trial can outlive the trial's group.

The trial calls `launch.run` with an `on_round` (`RoundReporter`) that `tune.report`s each round's
figures, so ASHA decides after every round (the last round's report waits for the run to return).
A trial Tune stops must end its run quickly: at the end of a sweep Tune gives a stopping trial
about 10 s before it kills the trial's actor, which takes the run's pools (their owner) and its
group (the validators) down without a clean shutdown. A trial ASHA stops is parked in
`tune.report` (Tune has not asked for its next result) and ends there: Tune's session exits the
trial's thread. A trial stopped mid-round (the sweep's time budget, the end of the experiment)
would run on to its next report, up to a whole round; so the trial's actor
(`FedrayTrial.cleanup`) also sets `STOP_REQUESTED`, which the run asks at every tick
(`launch.run`'s `should_stop`, at most 2 s apart) and answers with `RunStopped`. Either way
`launch`'s `finally` stops the run's actors, and the trial's actor waits for that before Tune
removes its group.

Ignored: checkpoints to Tune (a stopped trial is not resumed; its run directory keeps its chain
and `fedray run --resume` can go on with it), trial restarts on failure, Tune's search algorithms
other than its grid and random sampling.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedray.errors import ConfigError
from fedray.sweep.spec import Dimension, SweepSpec, check_trials

# Figures of a round row that go to Tune with each report (numbers only).
REPORTED = (
    "round",
    "accuracy",
    "loss",
    "round_seconds",
    "height",
    "accepted",
    "included",
    "tx_count",
    "penalties_total",
)


@dataclass(frozen=True)
class TrialJob:
    """What every trial needs besides its point in the space (shipped once by with_parameters)."""

    spec: SweepSpec
    runs_dir: str  # absolute: trials run in Tune's trial directories
    cwd: str  # the sweep's working directory (relative paths in configs, conf/, import paths)
    conf_dirs: str  # FEDRAY_CONF_DIR for the trial: the driver's conf directories, in order


def report_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """The figures of a round row that Tune gets (its metric is `accuracy`)."""
    out = {k: row[k] for k in REPORTED if k in row}
    out["rounds_done"] = int(row["round"]) + 1
    return out


class RoundReporter:
    """The run's `on_round`: each round's figures go to `report` (`tune.report`) as the round
    closes, except the last round's, which wait for `finish` (after the run returned) and carry
    `finished`. A scheduler may stop a trial at any report, and ASHA stops every trial that
    reaches max_t: at the last round that would cut the run before its summary, final model and
    chain agreement check are written."""

    def __init__(self, rounds: int, report: Callable[[dict[str, Any]], None]) -> None:
        self.rounds, self.report = rounds, report
        self.held: dict[str, Any] | None = None

    def __call__(self, row: Mapping[str, Any]) -> None:
        figures = report_row(row)
        if figures["rounds_done"] < self.rounds:
            self.report(figures)
        else:
            self.held = figures

    def finish(self) -> None:
        if self.held is not None:
            self.report({**self.held, "finished": True})


def run_name(spec: SweepSpec, trial_id: str) -> str:
    """A trial's run name (its run directory is <name>-<time> under the sweep's runs/)."""
    return f"{spec.name}-{trial_id}"


STOP_REQUESTED = threading.Event()
"""Set in a trial's actor when Tune stops the trial; the trial's run ends at its next tick."""


def run_trial(config: dict[str, Any], job: TrialJob) -> None:
    """One trial: the run at `config` (config key -> value), reporting every round to Tune."""
    from ray import tune

    from fedray.federation.driver import RunStopped

    STOP_REQUESTED.clear()  # an actor Tune reuses runs its next trial afresh
    os.chdir(job.cwd)
    os.environ["FEDRAY_CONF_DIR"] = job.conf_dirs
    from fedray.runtime.launch import run

    name = run_name(job.spec, tune.get_context().get_trial_id())
    cfg = job.spec.trial_config(
        config, (f"output_dir={job.runs_dir}", f"name={name}", "runtime.progress=false")
    )
    reporter = RoundReporter(cfg.rounds, tune.report)
    try:
        run(cfg, on_round=reporter, should_stop=STOP_REQUESTED.is_set)
    except RunStopped:
        return  # Tune stopped the trial: nothing more to report
    reporter.finish()


STOP_WAIT_S = 60.0
"""How long a stopped trial's actor waits for its run to stop its actors before Tune removes the
trial's placement group (which would end them without a clean shutdown)."""


def trainable(job: TrialJob) -> Any:
    """`run_trial` as a Tune function trainable whose `stop` waits for the run to end. Tune's own
    cleanup signals the trial's thread and returns at once; the actor and its placement group
    then go, and the run's `finally` (validators closing their stores) would race with that."""
    from ray import tune
    from ray.train._internal.session import get_session
    from ray.tune.trainable.function_trainable import wrap_function

    base = wrap_function(tune.with_parameters(run_trial, job=job), name="fedray_trial")

    class FedrayTrial(base):  # type: ignore[misc, valid-type]
        def cleanup(self) -> None:
            session = get_session()
            thread = getattr(session, "training_thread", None)
            if session is not None and session.training_started and thread.is_alive():
                # the run ends at its next tick, not at its next report (looked up here: this
                # class travels to Tune's workers by value, and an Event does not pickle)
                from fedray.sweep.trials import STOP_REQUESTED

                STOP_REQUESTED.set()
                session.stop_event.set()  # what Tune's finish does, then wait for the thread
                session.continue_lock.release()
                thread.join(timeout=STOP_WAIT_S)
            super().cleanup()

    return FedrayTrial


def param_space(spec: SweepSpec) -> dict[str, Any]:
    from ray import tune

    space: dict[str, Any] = {k: tune.grid_search(list(v)) for k, v in spec.grid}
    for d in spec.search:
        space[d.key] = _sampler(d)
    return space


def _sampler(d: Dimension) -> Any:
    from ray import tune

    if d.kind == "choice":
        return tune.choice(list(d.values))
    low, high = (float(v) for v in d.values if isinstance(v, int | float))
    if d.kind == "randint":
        return tune.randint(int(low), int(high))
    return (tune.uniform if d.kind == "uniform" else tune.loguniform)(low, high)


class TrialResources:
    """Each trial's placement group factory, from the trial's own config (a picklable callable,
    as `tune.with_resources` takes)."""

    def __init__(self, spec: SweepSpec) -> None:
        self.spec = spec

    def bundles(self, config: Mapping[str, Any]) -> list[dict[str, float]]:
        from fedray.federation.plan import Federation
        from fedray.runtime.placement import RunLayout

        fed = Federation(self.spec.trial_config(config))
        return RunLayout.of(fed, self.spec.resources.driver_cpus).bundles()

    def __call__(self, config: dict[str, Any]) -> Any:
        from ray import tune

        return tune.PlacementGroupFactory(
            self.bundles(config), strategy=self.spec.resources.strategy
        )


def sweep_dir(spec: SweepSpec) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(spec.output_dir).resolve() / f"{spec.name}-{stamp}"
    path, n = base, 1
    while path.exists():
        path, n = Path(f"{base}-{n}"), n + 1
    path.mkdir(parents=True)
    return path


def max_rounds(spec: SweepSpec) -> int:
    return max(cfg.rounds for cfg in check_trials(spec))


def run_sweep(spec: SweepSpec, out: Path, verbose: int = 1) -> Any:
    """Run every trial of `spec` on Ray Tune (Ray must be up) with results under `out`; returns
    Tune's ResultGrid."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.basic_variant import BasicVariantGenerator

    from fedray.config_files import conf_dirs

    scheduler = None
    if spec.scheduler is not None:
        rounds = max_rounds(spec)
        if spec.scheduler.grace_period > rounds:
            raise ConfigError(
                f"sweep file: 'scheduler.asha.grace_period' ({spec.scheduler.grace_period}) "
                f"exceeds the trials' rounds ({rounds})"
            )
        scheduler = ASHAScheduler(
            time_attr="training_iteration",
            max_t=rounds,
            grace_period=spec.scheduler.grace_period,
            reduction_factor=spec.scheduler.reduction_factor,
        )
    job = TrialJob(
        spec, str(out / "runs"), os.getcwd(), os.pathsep.join(str(d.resolve()) for d in conf_dirs())
    )
    tuner = tune.Tuner(
        tune.with_resources(trainable(job), TrialResources(spec)),
        param_space=param_space(spec),
        tune_config=tune.TuneConfig(
            metric="accuracy",
            mode="max",
            scheduler=scheduler,
            num_samples=spec.num_samples,
            # the generator limits concurrency itself (Tune ignores max_concurrent_trials when
            # given a BasicVariantGenerator)
            search_alg=BasicVariantGenerator(
                random_state=spec.seed, max_concurrent=spec.resources.max_concurrent_trials
            ),
        ),
        run_config=tune.RunConfig(name="tune", storage_path=str(out), verbose=verbose),
    )
    return tuner.fit()
