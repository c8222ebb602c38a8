"""Round time, accuracy and memory of fedray next to Flower's simulation engine on the same task
(`fedray bench round`).

For each clients-per-round setting, and as many repeats as asked, the two sides run one after the
other (fedray first on even repeats, Flower first on odd ones), each in a fresh child process
(`round_bench_side`). While a side runs, this process samples the resident memory of the child
and of every process below it (Ray's GCS, raylet, workers and actors) from /proc every
`RSS_PERIOD_S`; a side's peak is the largest such sum. `--load N` starts N busy-looping
processes before the first side and stops them after the last, so both sides share the same load.

Per side and setting: the median seconds per round over every round but each run's first, the
first round apart, and the start-up (launch to exit, less those later rounds: starting Ray and
the actors, the first round, the shutdown). A round runs from its opening to the end of its test
evaluation (fedray: `wall_seconds` of the metrics; Flower: the ServerApp's `evaluate_fn`). The last
line holds the worse of the round ratios fedray/Flower, the ratio of the peaks fedray/Flower and
the worse of the accuracy differences fedray minus Flower. Figures, not pass/fail.

Deliberately ignored: shared pages (RSS counts a library mapped by two processes twice, on both
sides alike) and processes that exit between two samples.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fedray.errors import ConfigError, FedrayError

RSS_PERIOD_S = 0.2
SIDE_ENTRY = (
    "import sys; from fedray.runtime.round_bench_side import main; sys.exit(main(sys.argv[1:]))"
)
SIDES = ("fedray", "flower")


class BenchRoundError(FedrayError):
    """A side of `fedray bench round` failed or could not start."""


@dataclass(frozen=True)
class RoundTask:
    """The federated task both sides run (sklearn digits, MLP 64-64-10)."""

    per_round: int = 10
    rounds: int = 10
    clients: int = 100
    epochs: int = 1
    batch_size: int = 8
    lr: float = 0.1
    momentum: float = 0.9
    hidden: int = 64
    actors: int = 2  # client actors: fedray's client pools, Flower's Ray actors
    validators: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        if self.rounds < 2:
            raise ConfigError("bench round needs --rounds >= 2 (the first round is set apart)")
        if not 1 <= self.per_round <= self.clients:
            raise ConfigError(f"clients per round must be in 1..{self.clients}: {self.per_round}")


@dataclass(frozen=True)
class SideRun:
    """One run of one side: wall time launch to exit, the start of the first round followed by
    the end of every round (seconds from launch, or any fixed origin), final test accuracy."""

    side: str
    per_round: int
    total_s: float
    boundaries: list[float]
    accuracy: float
    peak_rss: int = 0  # bytes, summed over the side's processes

    @property
    def rounds_s(self) -> list[float]:
        return round_lengths(self.boundaries)

    @property
    def startup_s(self) -> float:
        """Launch to exit less every round but the first."""
        return startup_seconds(self.total_s, self.rounds_s)


def round_lengths(boundaries: Sequence[float]) -> list[float]:
    """Seconds of each round, from the times its boundaries passed (the first: the start)."""
    return [b - a for a, b in zip(boundaries, boundaries[1:], strict=False)]


def startup_seconds(total_s: float, rounds_s: Sequence[float]) -> float:
    """Launch to exit less every round but the first (the first holds start-up work too)."""
    return total_s - sum(rounds_s[1:])


@dataclass(frozen=True)
class SideFigures:
    side: str
    per_round: int
    round_s: float  # median over every run's rounds but its first
    first_round_s: float  # median over runs
    startup_s: float  # median over runs
    accuracy: float  # median over runs
    peak_rss: int  # largest over runs
    runs: int = 1


def side_figures(runs: Sequence[SideRun]) -> SideFigures:
    """Fold the runs of one side at one setting (all share `side` and `per_round`)."""
    if not runs:
        raise BenchRoundError("no run to summarize")
    later = [s for r in runs for s in r.rounds_s[1:]]
    if not later:
        raise BenchRoundError(f"{runs[0].side} completed fewer than two rounds")
    return SideFigures(
        runs[0].side,
        runs[0].per_round,
        statistics.median(later),
        statistics.median(r.rounds_s[0] for r in runs),
        statistics.median(r.startup_s for r in runs),
        statistics.median(r.accuracy for r in runs),
        max(r.peak_rss for r in runs),
        len(runs),
    )


@dataclass(frozen=True)
class Comparison:
    """fedray and Flower figures per clients-per-round setting."""

    pairs: list[tuple[SideFigures, SideFigures]] = field(default_factory=list)  # (fedray, flower)

    @property
    def ratio(self) -> float:
        return max(f.round_s / w.round_s for f, w in self.pairs)

    @property
    def rss_ratio(self) -> float:
        return max(f.peak_rss for f, _ in self.pairs) / max(w.peak_rss for _, w in self.pairs)

    @property
    def acc_delta(self) -> float:
        return min(f.accuracy - w.accuracy for f, w in self.pairs)

    def lines(self) -> list[str]:
        out = []
        for pair in self.pairs:
            for s in pair:
                out.append(
                    f"side={s.side} per_round={s.per_round} runs={s.runs} "
                    f"round_s={s.round_s:.3f} first_round_s={s.first_round_s:.2f} "
                    f"startup_s={s.startup_s:.1f} accuracy={s.accuracy:.4f} "
                    f"peak_rss_gib={s.peak_rss / 2**30:.2f}"
                )
            f, w = pair
            out.append(f"per_round={f.per_round} ratio={f.round_s / w.round_s:.2f}")
        out.append(last_line(self.ratio, self.rss_ratio, self.acc_delta))
        return out


def last_line(ratio: float, rss_ratio: float, acc_delta: float) -> str:
    return f"ratio={ratio:.2f} rss_ratio={rss_ratio:.2f} acc_delta={acc_delta:+.4f}"


def compare(runs: Sequence[SideRun]) -> Comparison:
    """Group runs by setting and side; every setting needs both sides."""
    settings = sorted({r.per_round for r in runs})
    pairs = []
    for k in settings:
        by_side = [[r for r in runs if r.per_round == k and r.side == s] for s in SIDES]
        if not all(by_side):
            raise BenchRoundError(f"clients per round {k}: a side has no run")
        pairs.append((side_figures(by_side[0]), side_figures(by_side[1])))
    return Comparison(pairs)


# --- processes ---------------------------------------------------------------------------------
def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def tree_rss(root: int) -> int:
    """Resident bytes of `root` and of every process below it (0 off Linux)."""
    kids, todo, total = _children(), [root], 0
    page = os.sysconf("SC_PAGE_SIZE")
    while todo:
        pid = todo.pop()
        todo.extend(kids.get(pid, []))
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page
        except (OSError, IndexError, ValueError):
            continue
    return total


def kill_tree(root: int) -> None:
    """SIGKILL `root` and every process below it, found before the first is killed."""
    kids, todo, found = _children(), [root], []
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(kids.get(pid, []))
    for pid in found:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def flower_missing() -> str | None:
    """Why Flower's simulation engine cannot be imported here, or None when it can."""
    try:
        import flwr.simulation  # noqa: F401
    except Exception as exc:  # ImportError, or a broken install
        return f"{type(exc).__name__}: {exc}"
    return None


def watch_child(
    argv: Sequence[str],
    log: Path,
    out_path: Path,
    timeout_s: float,
    sample: Callable[[int], None],
    name: str,
    error: type[FedrayError],
) -> None:
    """Run `argv` (output to `log`), calling `sample(pid)` every `RSS_PERIOD_S` until it exits.
    Past `timeout_s`, or interrupted, its process tree is killed (no Ray process outlives it);
    raises `error` naming `name` on a timeout, a non-zero exit or no `out_path`."""
    with log.open("wb") as sink:
        child = subprocess.Popen(list(argv), stdout=sink, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        try:
            while child.poll() is None:
                sample(child.pid)
                if time.monotonic() > deadline:
                    raise error(f"{name} did not finish in {timeout_s:g} s")
                time.sleep(RSS_PERIOD_S)
        finally:
            if child.poll() is None:
                kill_tree(child.pid)
                child.wait()
    if child.returncode != 0 or not out_path.exists():
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        raise error(f"{name} failed (exit {child.returncode}): " + " | ".join(tail))


def run_side(side: str, task: RoundTask, timeout_s: float) -> SideRun:
    """Run one side in a child process, sampling its process tree's memory until it exits."""
    peak = 0

    def sample(pid: int) -> None:
        nonlocal peak
        peak = max(peak, tree_rss(pid))

    with tempfile.TemporaryDirectory(prefix="fedray-bench-round-") as tmp:
        task_path, out_path = Path(tmp) / "task.json", Path(tmp) / "out.json"
        task_path.write_text(json.dumps(dataclasses.asdict(task)))
        argv = [sys.executable, "-c", SIDE_ENTRY, side, str(task_path), str(out_path)]
        log = Path(tmp) / "side.log"
        watch_child(argv, log, out_path, timeout_s, sample, side, BenchRoundError)
        run = SideRun(**json.loads(out_path.read_text()))
    if len(run.rounds_s) != task.rounds:
        raise BenchRoundError(f"{side} ran {len(run.rounds_s)} of {task.rounds} rounds")
    return dataclasses.replace(run, peak_rss=peak)


def start_load(n: int) -> list[subprocess.Popen[bytes]]:
    """`n` processes that each keep one core busy until killed."""
    busy = "while True:\n    pass"
    return [subprocess.Popen([sys.executable, "-c", busy]) for _ in range(n)]


def run(
    per_round: Sequence[int], rounds: int, repeats: int, load: int, timeout_s: float
) -> Comparison:
    """Interleave both sides at each setting; print each run as it ends and the figures."""
    tasks = [RoundTask(per_round=k, rounds=rounds) for k in per_round]
    why = flower_missing()
    if why is not None:
        raise BenchRoundError(
            f"Flower cannot be imported ({why}); install the bench extra: pip install -e '.[bench]'"
        )
    loaders = start_load(load)
    runs: list[SideRun] = []
    try:
        for rep in range(repeats):
            for task in tasks:
                order = SIDES if rep % 2 == 0 else SIDES[::-1]
                for side in order:
                    r = run_side(side, task, timeout_s)
                    print(
                        f"run side={side} per_round={task.per_round} repeat={rep} "
                        f"rounds_s={','.join(f'{s:.3f}' for s in r.rounds_s)} "
                        f"total_s={r.total_s:.1f} accuracy={r.accuracy:.4f} "
                        f"peak_rss_gib={r.peak_rss / 2**30:.2f} "
                        f"load_avg={os.getloadavg()[0]:.1f}",
                        flush=True,
                    )
                    runs.append(r)
    finally:
        for p in loaders:
            p.kill()
            p.wait()
    result = compare(runs)
    for line in result.lines():
        print(line, flush=True)
    return result
