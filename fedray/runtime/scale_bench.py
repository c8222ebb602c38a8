"""Round time and memory against the size of the population (`fedray bench scale`).

For each population (registered clients), one run of `fedray run`'s own path (`load_config` with
overrides, then `launch.run`: embedded Ray, the chain on with its validators, `per_round` clients
selected per round) in a fresh child process, on `data=synthetic_users` (FedProx Synthetic with one
generated user per client: the only shipped data that splits any number of ways). While it runs,
this process samples every `RSS_PERIOD_S` the resident memory of the child and of every process
below it (`round_bench`'s sampler), each process counted under its kind: the driver (the child
itself), validators, ingresses, client pools (Ray names an actor's worker process after its class)
and Ray's own processes (GCS, raylet, dashboard, agents, idle workers). A run's peak is the largest
sum, with the split by kind at that sample. The same samples carry each process's CPU time, so the
run also gets the CPU seconds per round of each kind (`cpu_per_round`), a figure a loaded machine
stretches far less than the seconds per round.

With `repeats` > 1 the populations alternate (smallest first on even repeats, largest first on odd
ones), so that a change of the machine's load falls on all of them. Per population (medians over
its runs): start-up (launch to exit, less every round but the first: Ray, the actors, the
genesis, the first round, the shutdown), the median seconds per round over every round but the
first (`wall_seconds` of the metrics rows: a round runs from the close of the previous one to the
end of its test evaluation), the largest peak and its split. The last line holds the largest population's
peak in GiB and its seconds per round over the smallest's. Figures, not pass/fail.

Deliberately ignored: shared pages (a library mapped by several processes counts once per
process) and processes that exit between two samples.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fedray.errors import ConfigError, FedrayError
from fedray.runtime.round_bench import (
    _children,
    round_lengths,
    startup_seconds,
    watch_child,
)

CHILD_ENTRY = "import sys; from fedray.runtime.scale_bench import child_main; sys.exit(child_main(sys.argv[1:]))"
KINDS = ("driver", "validators", "ingress", "pools", "ray")
_ACTOR_KINDS = (
    ("ValidatorService", "validators"),
    ("IngressService", "ingress"),
    ("PoolService", "pools"),
)


class BenchScaleError(FedrayError):
    """A run of `fedray bench scale` failed or could not start."""


@dataclass(frozen=True)
class ScaleTask:
    """One population's run: everything but `clients` is the same for every population."""

    clients: int
    per_round: int = 100
    rounds: int = 5
    validators: int = 4
    pools: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.rounds < 2:
            raise ConfigError("bench scale needs --rounds >= 2 (the first round is set apart)")
        if not 1 <= self.per_round <= self.clients:
            raise ConfigError(
                f"clients per round must be in 1..{self.clients} (the population): {self.per_round}"
            )

    def overrides(self, output_dir: str) -> list[str]:
        """The `fedray run` key=value items of this task."""
        return [
            "data=synthetic_users",
            "model.name=mlp",
            f"clients={self.clients}",
            f"chain.clients_per_round={self.per_round}",
            f"chain.validators={self.validators}",
            f"rounds={self.rounds}",
            f"seed={self.seed}",
            "strategy.name=fedavg",
            "training.epochs=1",
            "training.lr=0.05",
            f"runtime.client_pools={self.pools}",
            "runtime.object_store_mb=200",
            "runtime.progress=false",
            "runtime.checkpoint_every=0",
            "baseline=false",
            f"output_dir={output_dir}",
            "name=bench-scale",
        ]


@dataclass(frozen=True)
class ScaleRun:
    """One population's run: wall time launch to exit, `wall_seconds` of each round (from the
    run's start to the round's close), the final accuracy, the peak and its split by kind."""

    clients: int
    total_s: float
    walls: list[float]
    accuracy: float
    peak_rss: int = 0
    peak_by_kind: dict[str, int] = field(default_factory=dict)
    closes: list[float] = field(default_factory=list)  # epoch seconds each round closed
    cpu_by_kind: dict[str, float] = field(default_factory=dict)  # CPU s per round (cpu_per_round)

    @property
    def rounds_s(self) -> list[float]:
        return round_lengths([0.0, *self.walls])

    @property
    def startup_s(self) -> float:
        """Launch to exit less every round but the first."""
        return startup_seconds(self.total_s, self.rounds_s)


@dataclass(frozen=True)
class PopulationFigures:
    """One population's runs folded: medians over runs (seconds per round: over every run's
    rounds but its first), the largest peak and its split by kind."""

    clients: int
    runs: int
    round_s: float
    first_round_s: float
    startup_s: float
    accuracy: float
    peak_rss: int
    peak_by_kind: dict[str, int]
    cpu_by_kind: dict[str, float] = field(default_factory=dict)  # median CPU s per round

    @property
    def cpu_s(self) -> float:
        return sum(self.cpu_by_kind.values())

    def line(self) -> str:
        split = " ".join(f"{k}_gib={self.peak_by_kind.get(k, 0) / 2**30:.2f}" for k in KINDS)
        cpu = " ".join(f"{k}_cpu_s={self.cpu_by_kind.get(k, 0.0):.3f}" for k in KINDS)
        return (
            f"clients={self.clients} runs={self.runs} startup_s={self.startup_s:.1f} "
            f"first_round_s={self.first_round_s:.2f} round_s={self.round_s:.3f} "
            f"peak_rss_gib={self.peak_rss / 2**30:.2f} {split} "
            f"cpu_s_per_round={self.cpu_s:.3f} {cpu} accuracy={self.accuracy:.4f}"
        )


def population_figures(runs: Sequence[ScaleRun]) -> PopulationFigures:
    """Fold the runs of one population (all share `clients`)."""
    if not runs:
        raise BenchScaleError("no run to summarize")
    later = [s for r in runs for s in r.rounds_s[1:]]
    if not later:
        raise BenchScaleError(f"{runs[0].clients} clients: fewer than two rounds ran")
    top = max(runs, key=lambda r: r.peak_rss)
    return PopulationFigures(
        runs[0].clients,
        len(runs),
        statistics.median(later),
        statistics.median(r.rounds_s[0] for r in runs),
        statistics.median(r.startup_s for r in runs),
        statistics.median(r.accuracy for r in runs),
        top.peak_rss,
        dict(top.peak_by_kind),
        {
            k: statistics.median(r.cpu_by_kind.get(k, 0.0) for r in runs)
            for k in KINDS
            if any(k in r.cpu_by_kind for r in runs)
        },
    )


def summarize(runs: Sequence[ScaleRun]) -> list[PopulationFigures]:
    """Figures per population, smallest first."""
    sizes = sorted({r.clients for r in runs})
    return [population_figures([r for r in runs if r.clients == n]) for n in sizes]


def last_line(figures: Sequence[PopulationFigures]) -> str:
    """`rss_gib=` the largest population's peak, `round_ratio=` its round time over the smallest's."""
    if not figures:
        raise BenchScaleError("no population to summarize")
    small = min(figures, key=lambda f: f.clients)
    large = max(figures, key=lambda f: f.clients)
    return f"rss_gib={large.peak_rss / 2**30:.2f} round_ratio={large.round_s / small.round_s:.2f}"


# --- processes ---------------------------------------------------------------------------------
def process_kind(pid: int, driver: int) -> str:
    """Which part of a run process `pid` is (Ray names an actor's process `ray::<Class>...`)."""
    if pid == driver:
        return "driver"
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return "ray"
    for marker, kind in _ACTOR_KINDS:
        if marker in cmdline:
            return kind
    return "ray"


@dataclass(frozen=True)
class Sample:
    """One look at a run's processes: when (epoch seconds), resident bytes and CPU seconds (user
    and system, since each process started) by kind."""

    at: float
    rss: dict[str, int]
    cpu: dict[str, float]


def sample_processes(driver: int) -> Sample:
    """`driver` and every process below it, by kind (empty off Linux)."""
    kids, todo = _children(), [driver]
    page, ticks = os.sysconf("SC_PAGE_SIZE"), os.sysconf("SC_CLK_TCK")
    rss: dict[str, int] = {}
    cpu: dict[str, float] = {}
    at = time.time()
    while todo:
        pid = todo.pop()
        todo.extend(kids.get(pid, []))
        try:
            resident = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            used = (int(fields[11]) + int(fields[12])) / ticks
        except (OSError, IndexError, ValueError):
            continue
        kind = process_kind(pid, driver)
        rss[kind] = rss.get(kind, 0) + resident
        cpu[kind] = cpu.get(kind, 0.0) + used
    return Sample(at, rss, cpu)


def rss_by_kind(driver: int) -> dict[str, int]:
    """Resident bytes of `driver` and of every process below it, by kind (empty off Linux)."""
    return sample_processes(driver).rss


def cpu_per_round(samples: Sequence[Sample], closes: Sequence[float]) -> dict[str, float]:
    """CPU seconds per round by kind over the rounds after the first: the CPU the run's
    processes used between the first round's close and the last's (the samples nearest those
    moments, at or before them), over the rounds between. A figure the machine's load stretches
    far less than seconds per round. Empty when fewer than two rounds closed or no sample falls
    between the closes."""
    if len(closes) < 2:
        return {}
    before = [s for s in samples if s.at <= closes[0]]
    until = [s for s in samples if s.at <= closes[-1]]
    if not before or not until or until[-1].at <= before[-1].at:
        return {}
    first, last = before[-1], until[-1]
    rounds = len(closes) - 1
    return {k: (v - first.cpu.get(k, 0.0)) / rounds for k, v in last.cpu.items()}


# --- one run -----------------------------------------------------------------------------------
def run_population(task: ScaleTask, timeout_s: float) -> ScaleRun:
    """Run `task` in a child process, sampling its processes' memory until it exits."""
    samples: list[Sample] = []

    def sample(pid: int) -> None:
        samples.append(sample_processes(pid))

    with tempfile.TemporaryDirectory(prefix="fedray-bench-scale-") as tmp:
        task_path, out_path = Path(tmp) / "task.json", Path(tmp) / "out.json"
        task_path.write_text(json.dumps(dataclasses.asdict(task)))
        argv = [sys.executable, "-c", CHILD_ENTRY, str(task_path), str(out_path)]
        name = f"{task.clients} clients"
        watch_child(argv, Path(tmp) / "run.log", out_path, timeout_s, sample, name, BenchScaleError)
        run = ScaleRun(**json.loads(out_path.read_text()))
    if len(run.walls) != task.rounds:
        raise BenchScaleError(f"{task.clients} clients: {len(run.walls)} of {task.rounds} rounds")
    split = max(samples, key=lambda x: sum(x.rss.values()), default=Sample(0.0, {}, {})).rss
    cpu = cpu_per_round(samples, run.closes)
    return dataclasses.replace(
        run, peak_rss=sum(split.values()), peak_by_kind=split, cpu_by_kind=cpu
    )


def child_main(argv: Sequence[str]) -> int:
    """The child: `fedray run`'s path on the task in TASK_JSON; the run's figures to OUT_JSON."""
    from fedray.config import load_config
    from fedray.runtime import launch

    task_path, out_path = argv
    task = ScaleTask(**json.loads(Path(task_path).read_text()))
    launched = time.time()
    closes: list[float] = []
    with tempfile.TemporaryDirectory(prefix="fedray-bench-scale-run-") as tmp:
        cfg = load_config(None, task.overrides(tmp))
        result = launch.run(cfg, on_round=lambda row: closes.append(time.time()))
    run = ScaleRun(
        task.clients,
        time.time() - launched,
        [float(r["wall_seconds"]) for r in result.rows],
        float(result.summary["final_accuracy"]),
        closes=closes,
    )
    Path(out_path).write_text(json.dumps(dataclasses.asdict(run)))
    return 0


def run(
    clients: Sequence[int],
    per_round: int,
    rounds: int,
    timeout_s: float,
    pools: int = 2,
    repeats: int = 1,
) -> list[PopulationFigures]:
    """`repeats` runs per population, alternating the order (smallest first on even repeats,
    largest first on odd ones) so that a change of the machine's load falls on both; print each
    run as it ends, each population's figures and the last line."""
    if repeats < 1:
        raise ConfigError(f"bench scale needs --repeats >= 1: {repeats}")
    tasks = [ScaleTask(n, per_round, rounds, pools=pools) for n in sorted(set(clients))]
    runs = []
    for rep in range(repeats):
        for task in tasks if rep % 2 == 0 else tasks[::-1]:
            r = run_population(task, timeout_s)
            print(
                f"run clients={r.clients} repeat={rep} "
                f"rounds_s={','.join(f'{s:.3f}' for s in r.rounds_s)} total_s={r.total_s:.1f} "
                f"peak_rss_gib={r.peak_rss / 2**30:.2f} "
                f"cpu_s_per_round={sum(r.cpu_by_kind.values()):.3f} "
                f"load_avg={os.getloadavg()[0]:.1f}",
                flush=True,
            )
            runs.append(r)
    figures = summarize(runs)
    for f in figures:
        print(f.line(), flush=True)
    print(last_line(figures), flush=True)
    return figures
