"""The run driver's policy: what to do next, given what the chain showed. Pure and clock-free.

`fedray run` observes the chain in ticks (wait for the next block, read the round view). Each tick
becomes a `Tick`, and `RunPolicy.observe(tick)` returns the actions the Ray shell carries out, in
this order: inject the configured faults and dispatch a newly opened round to the client pools
(first, so its clients train while the driver records), record the rounds that closed, let
scripted governance act. The policy is an explicit state machine, as Ray Train v2's
controller is:

    TRAINING --(every round recorded, or the privacy budget spent)--> GOVERNANCE --(scripted proposals finished)--> FINISHED
        \\______________ (no scripted governance) _____________________________________/

When the chain says the federation's privacy budget is spent (no client may take part any more,
so no round will open) and every dispatched round is recorded, training ends early and
`budget_spent_after` names the last round recorded. It raises `RunError` when the chain makes no progress for `stall_limit_s` or governance does not
finish within `governance_grace_s`. Time is an argument (`tick.now`), so tests step it at will.

`ValidatorHealth` decides which validators the driver asks: one that died (its actor is gone) is
never asked again; one that timed out is skipped for a back-off period and then retried, so a busy
validator is not written off for good. `live()` is the one filter every call site uses.

Deliberately ignored: anything the chain decides (selection, round closing, the new model).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from fedray.errors import FedrayError
from fedray.node.views import RoundInfo, RoundResultView


class RunError(FedrayError):
    """The run could not make progress (no live validator, chain stalled past its limit)."""

    code = "run"


class RunStopped(FedrayError):
    """The run's caller asked it to stop (`launch.run`'s `should_stop`: a Ray Tune trial that its
    scheduler stopped). The rounds recorded so far are kept; the actors are stopped as after a
    finished run."""

    code = "stopped"


class Phase(enum.Enum):
    TRAINING = "training"  # rounds still to be recorded
    GOVERNANCE = "governance"  # rounds done; scripted proposals still running
    FINISHED = "finished"


@dataclass(frozen=True)
class Tick:
    """One observation of the chain: the round view at the committed tip, and the wall time."""

    now: float
    info: RoundInfo
    governance_finished: bool = True  # the governance script's own verdict


@dataclass(frozen=True)
class RecordRound:
    """A round closed: evaluate its model and write its metrics row."""

    result: RoundResultView


@dataclass(frozen=True)
class DispatchRound:
    """A round opened: send its global model to the client pools."""

    round: int
    global_hash: bytes


@dataclass(frozen=True)
class KillPool:
    """Fault injection: kill client pool `index` (the chain goes on without its updates)."""

    index: int


@dataclass(frozen=True)
class KillValidator:
    """Fault injection: kill validator `index` and its ingress."""

    index: int


@dataclass(frozen=True)
class GovernanceStep:
    """Let the governance script act: submit the proposals of `opened_round` (None: no round
    opened this tick) and vote on the ones that entered voting."""

    opened_round: int | None
    global_hash: bytes


Action = RecordRound | DispatchRound | KillPool | KillValidator | GovernanceStep


@dataclass(frozen=True)
class FaultPlan:
    """Faults to inject when a round opens (-1: never)."""

    kill_pool_round: int = -1
    kill_validator_round: int = -1
    validators: int = 1  # the last one is killed, and only if another remains


@dataclass
class RunPolicy:
    """The driver's decisions for one run (see the module docstring)."""

    rounds: int
    stall_limit_s: float
    governance: bool = False  # the run scripts governance actions
    governance_grace_s: float = 120.0
    faults: FaultPlan = field(default_factory=FaultPlan)
    phase: Phase = Phase.TRAINING
    height: int = 0
    recorded: int = 0  # rounds recorded so far
    last_result: int = -1  # highest round number recorded
    dispatched: set[int] = field(default_factory=set)
    last_progress: float | None = None
    governance_deadline: float | None = None
    budget_spent_after: int | None = None  # training ended: the privacy budget was spent

    def observe(self, tick: Tick) -> list[Action]:
        """The actions for this tick, in the order they must run."""
        if self.phase is Phase.FINISHED:
            return []
        self._check_progress(tick)
        info = tick.info
        records: list[Action] = []
        for result in sorted(info.results, key=lambda r: r.round):
            if result.round <= self.last_result or self.recorded >= self.rounds:
                continue
            self.last_result = result.round
            self.recorded += 1
            records.append(RecordRound(result))
        # The opened round goes out before the closed ones are recorded: its clients train
        # while the driver evaluates and records (the record is off the round's critical path).
        actions: list[Action] = []
        opened = None
        if info.open and info.round not in self.dispatched and self.recorded < self.rounds:
            self.dispatched.add(info.round)
            opened = info.round
            actions += self._faults(opened)
            actions.append(DispatchRound(opened, info.global_hash))
        actions += records
        if self.governance:
            actions.append(GovernanceStep(opened, info.global_hash))
        settled = all(r <= self.last_result for r in self.dispatched)
        if info.privacy_exhausted and not info.open and settled and self.budget_spent_after is None:
            self.budget_spent_after = self.last_result
        self._advance(tick)
        return actions

    def consensus_started(self, now: float) -> None:
        """Consensus starts after the first tick (a resumed round is delivered first): the stall
        clock starts now, not at that tick."""
        self.last_progress = now

    def _check_progress(self, tick: Tick) -> None:
        if self.last_progress is None or tick.info.height > self.height:
            self.height = max(self.height, tick.info.height)
            self.last_progress = tick.now
        elif tick.now - self.last_progress > self.stall_limit_s:
            raise RunError(
                f"the chain made no progress for {self.stall_limit_s:.0f} s at height {self.height}"
            )

    def _faults(self, opened: int) -> list[Action]:
        out: list[Action] = []
        if opened == self.faults.kill_pool_round:
            out.append(KillPool(0))
        if opened == self.faults.kill_validator_round and self.faults.validators > 1:
            out.append(KillValidator(self.faults.validators - 1))
        return out

    def _advance(self, tick: Tick) -> None:
        done = self.recorded >= self.rounds or self.budget_spent_after is not None
        if self.phase is Phase.TRAINING and done:
            self.phase = Phase.GOVERNANCE
            self.governance_deadline = tick.now + self.governance_grace_s
        if self.phase is Phase.GOVERNANCE:
            if not self.governance or tick.governance_finished:
                self.phase = Phase.FINISHED
            elif self.governance_deadline is not None and tick.now > self.governance_deadline:
                raise RunError(
                    f"scheduled governance proposals did not finish within "
                    f"{self.governance_grace_s:.0f} s"
                )


@dataclass
class ValidatorHealth:
    """Which validators to ask (see the module docstring). Back-off doubles per consecutive
    timeout, from `retry_after_s` up to `max_backoff_s`."""

    count: int
    retry_after_s: float = 2.0
    max_backoff_s: float = 30.0
    dead: set[int] = field(default_factory=set)
    timeouts: dict[int, int] = field(default_factory=dict)  # consecutive timeouts
    skip_until: dict[int, float] = field(default_factory=dict)

    def live(self, now: float) -> list[int]:
        """Validators to ask now, in index order: alive and not backing off. When every live
        validator is backing off, all live ones are returned (asking late beats not asking)."""
        alive = [i for i in range(self.count) if i not in self.dead]
        ready = [i for i in alive if self.skip_until.get(i, 0.0) <= now]
        return ready or alive

    def answered(self, index: int) -> None:
        self.timeouts.pop(index, None)
        self.skip_until.pop(index, None)

    def timed_out(self, index: int, now: float) -> None:
        n = self.timeouts.get(index, 0) + 1
        self.timeouts[index] = n
        self.skip_until[index] = now + min(self.max_backoff_s, self.retry_after_s * 2 ** (n - 1))

    def died(self, index: int) -> None:
        self.dead.add(index)
        self.timeouts.pop(index, None)
        self.skip_until.pop(index, None)
