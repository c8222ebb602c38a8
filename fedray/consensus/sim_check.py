"""The simulator's checks, applied to every schedule: safety, evidence, and liveness after GST.

- *safety*: no two honest nodes commit different blocks at a height, every honest decision carries a
  certificate that verifies against the set that signed the height, and no honest node is handed a
  certified block its application cannot execute (reported by the simulation);
- *evidence*: every piece of evidence verifies and names a key the adversary runs;
- *liveness*: after GST, every honest node decides each height within `round_bound` rounds, where
  the bound is 2(k+1)+2 for k the longest run of consecutive rounds whose proposer the adversary
  runs (k = f with equal powers): a round with an honest proposer decides once timeouts exceed the
  delays, twice that covers honest nodes entering it at different times, and two more rounds let them
  line up. Rounds are counted from the highest round an honest node had reached at that height at
  GST. And every honest node commits the target heights before GST + the liveness window.

A figure, not a check: `absent_signers` counts the honest validators missing from the `last_commit`
of blocks proposed by honest nodes, where the parent block was decided after GST (`signer_slots`
counts them all). With the pause for late precommits (`TimeoutConfig.commit_ms`) above the delays
after GST it stays near zero; an honest validator that precommitted nil, or was in another round, is
rightly missing.

Guarantees hold only while the adversary's voting power stays below 1/3; a height where it does not
(validator-set changes may shrink honest power), or where one validator alone holds a quorum, marks
the schedule `beyond_bound` and ends it; its failures are reported, not counted as bugs.

Deliberately ignored: throughput and message complexity.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from fedray.consensus.proposer import ProposerSchedule
from fedray.consensus.sim_node import SimNode
from fedray.consensus.state import EngineState
from fedray.consensus.sync import verify_certified
from fedray.core.block import Block, CommitCertificate
from fedray.core.evidence import Evidence
from fedray.core.state import ValidatorSet
from fedray.errors import FedrayError

SAFETY, EVIDENCE, LIVENESS = "safety", "evidence", "liveness"
BOUND_WINDOW = 32  # rounds of a height's proposer schedule searched for faulty runs


@dataclass
class ScheduleResult:
    index: int
    heights_committed: int = 0  # lowest committed height over honest nodes
    safety_violations: int = 0
    false_evidence: int = 0
    liveness_failure: bool = False
    rounds_after_gst: int = 0  # most rounds an honest node needed for a height after GST
    round_bound: int = 0  # the largest bound that applied
    beyond_bound: bool = False  # the adversary held 1/3 of the power at some height
    evidence: int = 0
    events: int = 0
    gst_ms: int = 0
    end_ms: int = 0
    signer_slots: int = 0  # honest validators of parents decided after GST, per honest block
    absent_signers: int = 0  # of which missing from the block's last_commit
    notes: list[str] = field(default_factory=list)

    @property
    def failed_check(self) -> str | None:
        """The first check this schedule failed (None if it passed, or went beyond the bound)."""
        if self.beyond_bound:
            return None
        if self.safety_violations:
            return SAFETY
        if self.false_evidence:
            return EVIDENCE
        return LIVENESS if self.liveness_failure else None


@lru_cache(maxsize=256)
def round_bound(schedule: ProposerSchedule, faulty: frozenset[bytes]) -> int:
    """2(k+1)+2, k the longest run of faulty proposers in the first rounds of `schedule`."""
    longest = run = 0
    for r in range(BOUND_WINDOW):
        run = run + 1 if schedule.proposer(r) in faulty else 0
        longest = max(longest, run)
    return 2 * (longest + 1) + 2


class Checker:
    """Accumulates one schedule's verdicts into its `ScheduleResult`."""

    def __init__(
        self, chain_id: str, result: ScheduleResult, faulty: frozenset[bytes], bounded: bool
    ) -> None:
        self.chain_id, self.result, self.faulty = chain_id, result, faulty
        self.bounded = bounded  # the schedule started with the adversary below 1/3
        self.canonical: dict[int, bytes] = {}  # height -> first honest commit
        self.evidence_seen: set[bytes] = set()
        self.gst_rounds: dict[int, int] | None = None  # height -> highest honest round at GST
        self.decided_after_gst: set[int] = set()  # heights first decided after GST

    def violation(self, note: str) -> None:
        self.result.safety_violations += 1
        self.result.notes.append(note)

    def validators(self, validators: ValidatorSet) -> None:
        """A set that will sign a height: is the adversary still below 1/3 of its power, and does
        no validator hold a quorum alone (it would decide heights without the network, and nothing
        is left to test)?"""
        total = validators.total_power
        faulty = sum(p for k, p in validators.members if k in self.faulty)
        alone = max((p for _, p in validators.members), default=0)
        if self.result.beyond_bound or not self.bounded:
            return
        if 3 * faulty >= total or 3 * alone > 2 * total:
            self.result.beyond_bound = True
            self.result.notes.append(f"adversary {faulty}, largest {alone} of {total} power")

    def at_gst(self, states: Iterable[EngineState]) -> None:
        rounds: dict[int, int] = {}
        for s in states:
            rounds[s.height] = max(rounds.get(s.height, 0), s.round)
        self.gst_rounds = rounds

    def decided(
        self, node: SimNode, state: EngineState, block: Block, cert: CommitCertificate
    ) -> None:
        """An honest node decided `block` in `state` (the engine's state at the decision)."""
        try:
            verify_certified(self.chain_id, state.validators, block, cert)
        except FedrayError as exc:
            self.violation(
                f"node {node.id} decided height {block.height} on a bad certificate: {exc}"
            )
        new = block.height not in self.canonical
        first = self.canonical.setdefault(block.height, block.hash)
        if first != block.hash:
            self.violation(
                f"fork at height {block.height}: node {node.id} committed "
                f"{block.hash.hex()[:12]}, another honest node {first.hex()[:12]}"
            )
        if self.gst_rounds is None:
            return
        if new:
            self.decided_after_gst.add(block.height)
            self.count_signers(state, block)
        used = state.round - self.gst_rounds.get(block.height, 0)
        bound = round_bound(state.schedule, self.faulty)
        r = self.result
        r.round_bound = max(r.round_bound, bound)
        r.rounds_after_gst = max(r.rounds_after_gst, used)
        if used > bound and not r.liveness_failure:
            r.liveness_failure = True
            r.notes.append(
                f"node {node.id} needed {used} rounds after GST for height {block.height} "
                f"(bound {bound})"
            )

    def count_signers(self, state: EngineState, block: Block) -> None:
        """The `absent_signers` figure for a block an honest node decided first."""
        c = block.last_commit
        if (
            c is None
            or block.header.proposer in self.faulty
            or block.height - 1 not in self.decided_after_gst
        ):
            return
        signers = set(c.signers())
        honest = [k for k in state.last_powers if k not in self.faulty]
        self.result.signer_slots += len(honest)
        self.result.absent_signers += sum(k not in signers for k in honest)

    def progress(self, node: SimNode, state: EngineState) -> None:
        """An honest node's state after an event: beyond the bound at a height it has not decided
        is already a failure (its rounds only grow until it decides)."""
        if self.gst_rounds is None or state.decision is not None or self.result.liveness_failure:
            return
        used = state.round - self.gst_rounds.get(state.height, 0)
        bound = round_bound(state.schedule, self.faulty)
        if used > bound:
            self.result.liveness_failure = True
            self.result.notes.append(
                f"node {node.id} is {used} rounds past GST at height {state.height} (bound {bound})"
            )

    def evidence(self, node: SimNode, ev: Evidence) -> None:
        h = ev.hash()
        if h in self.evidence_seen:
            return  # the same evidence from another node: already checked
        self.evidence_seen.add(h)
        try:
            ev.verify(self.chain_id)
        except FedrayError as exc:
            self.result.false_evidence += 1
            self.result.notes.append(f"node {node.id} produced invalid evidence: {exc}")
            return
        if ev.offender not in self.faulty:
            self.result.false_evidence += 1
            self.result.notes.append(f"node {node.id} accused honest {ev.offender.hex()[:12]}")
