"""The simulator's applications: what one schedule's chain must offer, and the small chain.

A `SimChain` is one schedule's world of applications: a genesis shared by every node, one
`SimApplication` per node (its "disk": it survives crashes, `reopen` is what a restart sees), a
workload it feeds to live honest nodes (transactions, payloads), and, for the adversary, blocks whose
payload only some nodes hold. A `ChainFactory` builds one from a `ChainSpec` (validators, their
stakes, standby nodes that may join, which validators the adversary runs). The simulator depends on
these protocols only, so an application from an outer ring (the ledger app in `fedray.node`) can be
plugged in without the consensus package importing it.

`SmallChain` is the built-in one: blocks come from `make_block` (no transactions; the evidence the
engine found, once, while it is not yet recorded in the state) and are executed with
`transition.apply_block`, so the simulator exercises the real header rules, commit certificates
(`last_commit` is verified at every height, and grows by late precommits: `extend_commit`), evidence
verification and the slashing it triggers (a banned equivocator leaves the validator set). Block time is `max(previous + 1, now)`.
`ExecCache` memoizes `apply_block` by (pre-state root, block hash), shared by all nodes of a
schedule: states are immutable and the header binds the pre-state root, so a hit is the same result.

Deliberately ignored here: transactions, a mempool and payloads (see `fedray.node.sim_ledger`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol

from fedray.consensus.app import Application
from fedray.consensus.commits import grows
from fedray.consensus.sync import BlockSource
from fedray.core.beacon import prove_next
from fedray.core.block import Block, CommitCertificate, make_block, proposal_time
from fedray.core.context import BlockEnv
from fedray.core.crypto import PrivateKey, key_from_seed
from fedray.core.evidence import Evidence
from fedray.core.state import Genesis, GenesisAccount, Params, State, ValidatorSet
from fedray.core.transition import apply_block
from fedray.errors import FedrayError

SIM_CHAIN_ID = "fedray-sim"
GENESIS_TIME = 1_700_000_000_000
BALANCE = 1_000_000


class SimApplication(Application, BlockSource, Protocol):
    """One node's application as the simulator drives it: consensus' `Application` plus serving
    committed blocks to peers that are behind."""


@dataclass(frozen=True)
class ChainSpec:
    validators: int
    stakes: tuple[int, ...]  # one per genesis validator
    standby: int = 0  # honest nodes outside the genesis set that may join by staking
    twins: tuple[int, ...] = ()  # validators that run a second node (nodes len(keys), ...)
    faulty: frozenset[int] = frozenset()  # node indexes the adversary runs
    seed: str = ""  # for the workload's choices


class SimChain(Protocol):
    chain_id: str
    keys: tuple[PrivateKey, ...]  # node i signs with keys[i]: validators, then standby nodes
    # (a twin's second node, numbered from len(keys), signs with its validator's key)

    def app(self, node: int) -> SimApplication:
        """Node `node`'s application as it is now."""
        ...

    def reopen(self, node: int) -> SimApplication:
        """The application a restarted node opens from its disk."""
        ...

    def feed(self, node: int, now_ms: int) -> None:
        """Offer the workload (transactions, payloads) to a live honest node."""
        ...

    def withheld_block(
        self, node: int, height: int, time_ms: int, holders: Collection[int]
    ) -> Block | None:
        """A valid block by `node` whose payload only `holders` get; None if not supported."""
        ...

    def close(self) -> None: ...


ChainFactory = Callable[[ChainSpec], SimChain]


def node_keys(chain_id: str, n: int) -> tuple[PrivateKey, ...]:
    return tuple(key_from_seed(f"{chain_id}/node/{i}".encode()) for i in range(n))


def sim_genesis(
    chain_id: str,
    keys: tuple[PrivateKey, ...],
    stakes: tuple[int, ...],
    params: Params | None = None,
    extra: tuple[GenesisAccount, ...] = (),
    sections: dict[str, object] | None = None,
) -> Genesis:
    """Validators `keys[:len(stakes)]` with `stakes`, the other keys as funded plain accounts."""
    accounts = [
        GenesisAccount(k.public_key, balance=BALANCE, stake=s, is_validator=True)
        for k, s in zip(keys, stakes, strict=False)
    ] + [GenesisAccount(k.public_key, balance=BALANCE) for k in keys[len(stakes) :]]
    return Genesis(
        chain_id, GENESIS_TIME, (*accounts, *extra), params or Params(), dict(sections or {})
    )


@lru_cache(maxsize=32)
def _small_world(stakes: tuple[int, ...], standby: int) -> tuple[State, tuple[PrivateKey, ...]]:
    keys = node_keys(SIM_CHAIN_ID, len(stakes) + standby)
    params = Params(downtime_min_signed_bps=0)  # no downtime jail: nothing here would unjail
    return sim_genesis(SIM_CHAIN_ID, keys, stakes, params).state(), keys


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
        self.key = key  # proposes with it: each block carries its proposer's VRF proof
        self.cache = cache or ExecCache()
        self.blocks: list[Block] = []
        self.certificates: list[CommitCertificate] = []
        self.evidence: dict[bytes, bytes] = {}  # hash -> bytes, waiting for a block
        self.last_commit: CommitCertificate | None = None  # the last one, grown by late precommits
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
        return make_block(
            s.chain_id,
            height,
            proposal_time(s.last_block_time, s.params.max_block_time_step_ms, time_ms),
            s.last_block_hash,
            s.root(),
            proposer,
            s.validators,
            (),
            self.last_commit,
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
        self.last_commit = certificate
        for raw in block.evidence:
            self.evidence.pop(Evidence.from_bytes(raw).hash(), None)

    def add_evidence(self, evidence: Evidence) -> None:
        self.evidence.setdefault(evidence.hash(), evidence.to_bytes())

    def extend_commit(self, certificate: CommitCertificate) -> None:
        s = self.state
        if self.last_commit is not None and grows(
            s.chain_id, s.last_validators, self.last_commit, certificate
        ):
            self.last_commit = certificate

    def committed(self, height: int) -> tuple[Block, CommitCertificate] | None:
        if 1 <= height <= len(self.blocks):
            return self.blocks[height - 1], self.certificates[height - 1]
        return None


class SmallChain:
    """`SimApp` on every node, a genesis with the spec's stakes, no workload."""

    chain_id = SIM_CHAIN_ID

    def __init__(self, spec: ChainSpec) -> None:
        state, self.keys = _small_world(spec.stakes, spec.standby)
        cache = ExecCache()
        # a twin's second node signs with its validator's key
        keys = list(self.keys) + [self.keys[v] for v in spec.twins]
        self.apps = [SimApp(state, key, cache) for key in keys]

    def app(self, node: int) -> SimApplication:
        return self.apps[node]

    def reopen(self, node: int) -> SimApplication:
        return self.apps[node]

    def feed(self, node: int, now_ms: int) -> None:
        return None

    def withheld_block(
        self, node: int, height: int, time_ms: int, holders: Collection[int]
    ) -> Block | None:
        return None

    def close(self) -> None:
        return None
