"""The Application protocol: what the consensus engine needs from the state machine it orders.

Modelled on CometBFT's ABCI++: the engine orders opaque blocks; a deterministic application builds
them (`prepare_proposal`), judges them (`process_proposal`), executes a decided one
(`finalize_block`) and makes it durable (`commit`). The application changes its state only in
`finalize_block`/`commit`; the two checks must be deterministic functions of the committed state and
the block (no clock, no randomness), or honest validators could disagree about validity.

The engine never calls these methods itself (it is pure): a shell turns the engine's outbox requests
into calls and feeds the answers back, see `fedray.consensus.driver`. `fedray/node/` implements this
protocol with the real ledger; `fedray.consensus.sim_app` is a small one for the simulator.

Late precommits: after a decision the engine keeps collecting precommits for the decided block and
hands the grown certificate over (`extend_commit`); the application proposes with the largest one it
was given, so that the next block's `last_commit` names every validator that signed in time (the
slashing contract judges downtime by it, see `fedray.consensus.commits`).

Time: the engine has no clock. The shell passes its clock to `prepare_proposal`, and the application
must still produce a time strictly after the previous block's (core rule `process_header`), e.g.
`max(previous + 1, now)`.
"""

from __future__ import annotations

from typing import Protocol

from fedray.core.block import Block, CommitCertificate
from fedray.core.evidence import Evidence
from fedray.core.state import ValidatorSet


class Application(Protocol):
    @property
    def height(self) -> int:
        """The last committed height (0 before the first block)."""
        ...

    def validators(self, height: int) -> ValidatorSet:
        """The validator set that signs `height` (at least for `height == self.height + 1`)."""
        ...

    def prepare_proposal(self, height: int, round_: int, proposer: bytes, time_ms: int) -> Block:
        """A valid block for `height` proposed by `proposer`; `time_ms` is the shell's clock."""
        ...

    def process_proposal(self, block: Block) -> bool:
        """Is `block` a valid next block? Must not change the application state."""
        ...

    def finalize_block(self, block: Block, certificate: CommitCertificate) -> None:
        """Execute the decided `block`; its state becomes the one `commit` persists."""
        ...

    def commit(self) -> None:
        """Persist the finalized block, its certificate and the state after it."""
        ...

    def add_evidence(self, evidence: Evidence) -> None:
        """Remember equivocation evidence for a later block to carry (verified by the core)."""
        ...

    def extend_commit(self, certificate: CommitCertificate) -> None:
        """A larger certificate for the last committed block (late precommits): propose with it as
        `last_commit` if it is the committed one plus valid precommits (`commits.grows`); ignore it
        otherwise."""
        ...
