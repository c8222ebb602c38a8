"""A small deterministic application for the simulator, on the real ledger core.

Blocks come from `make_block` (no transactions; the evidence the engine found, once, while it is not
yet recorded in the state) and are executed with `transition.apply_block`, so the simulator exercises
the real header rules, commit certificates (`last_commit` is verified at every height) and evidence
verification. Block time is the shell's clock kept inside the core's rule (`proposal_time`), and
each block carries the node's VRF proof (`beacon.prove_next`), which is why the app holds its key.

`ExecCache` memoizes `apply_block` by (pre-state root, block hash), shared by all nodes of a schedule:
states are immutable and the header binds the pre-state root, so a hit is exactly the same result.

Deliberately ignored: transactions and a mempool (the engine does not look inside blocks) and bounds
on proposer time versus the local clock (the simulator's clocks are honest).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fedray.core.beacon import prove_next
from fedray.core.block import Block, CommitCertificate, make_block, proposal_time
from fedray.core.context import BlockEnv
from fedray.core.crypto import PrivateKey
from fedray.core.evidence import Evidence
from fedray.core.state import State, ValidatorSet
from fedray.core.transition import apply_block
from fedray.errors import FedrayError


@dataclass
class ExecCache:
    results: dict[tuple[bytes, bytes], State | FedrayError] = field(default_factory=dict)
    limit: int = 4096

    def apply(self, state: State, block: Block) -> State:
        key = (state.root(), block.hash)
        result = self.results.get(key)
        if result is None:
            try:
                result = apply_block(state, block, BlockEnv())
            except FedrayError as exc:
                result = exc
            if len(self.results) >= self.limit:
                self.results.clear()
            self.results[key] = result
        if isinstance(result, FedrayError):
            raise result
        return result


class SimApp:
    """The chain one simulated node has committed; survives the node's crashes."""

    def __init__(
        self, genesis_state: State, key: PrivateKey, cache: ExecCache | None = None
    ) -> None:
        self.state = genesis_state
        self.key = key
        self.cache = cache or ExecCache()
        self.blocks: list[Block] = []
        self.certificates: list[CommitCertificate] = []
        self.evidence: dict[bytes, bytes] = {}  # hash -> bytes, waiting for a block
        self._pending: tuple[State, Block, CommitCertificate] | None = None

    @property
    def height(self) -> int:
        return self.state.height

    def validators(self, height: int) -> ValidatorSet:
        if height != self.state.height + 1:
            raise FedrayError(f"validators of height {height} unknown at {self.state.height}")
        return self.state.validators

    def prepare_proposal(self, height: int, round_: int, proposer: bytes, time_ms: int) -> Block:
        if proposer != self.key.public_key:
            raise FedrayError("a simulated node proposes only with its own key")
        s = self.state
        recorded = s.section("evidence")
        evidence = sorted(
            raw
            for h, raw in self.evidence.items()
            if h not in recorded and Evidence.from_bytes(raw).height < height
        )
        last_commit = self.certificates[-1] if self.certificates else None
        return make_block(
            s.chain_id,
            height,
            proposal_time(s.last_block_time, s.params.max_block_time_step_ms, time_ms),
            s.last_block_hash,
            s.root(),
            proposer,
            s.validators,
            (),
            last_commit,
            evidence,
            prove_next(self.key, s),
        )

    def process_proposal(self, block: Block) -> bool:
        try:
            self.cache.apply(self.state, block)
        except FedrayError:
            return False
        return True

    def finalize_block(self, block: Block, certificate: CommitCertificate) -> None:
        self._pending = (self.cache.apply(self.state, block), block, certificate)

    def commit(self) -> None:
        if self._pending is None:
            raise FedrayError("commit without a finalized block")
        self.state, block, certificate = self._pending
        self._pending = None
        self.blocks.append(block)
        self.certificates.append(certificate)
        for raw in block.evidence:
            self.evidence.pop(Evidence.from_bytes(raw).hash(), None)

    def add_evidence(self, evidence: Evidence) -> None:
        self.evidence.setdefault(evidence.hash(), evidence.to_bytes())

    def committed(self, height: int) -> tuple[Block, CommitCertificate] | None:
        if 1 <= height <= len(self.blocks):
            return self.blocks[height - 1], self.certificates[height - 1]
        return None
