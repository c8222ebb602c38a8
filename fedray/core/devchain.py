"""A single-process chain builder holding every validator key: it proposes, certifies and applies
blocks without consensus. For tests, conformance vectors, benchmarks and tools; real chains are
built by the consensus engine (`fedray/consensus`), which produces exactly the same block and
certificate types.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from fedray.core.beacon import prove_next
from fedray.core.block import PRECOMMIT, Block, CommitCertificate, Vote, make_block
from fedray.core.context import BlockEnv, ExecContext
from fedray.core.crypto import PrivateKey, key_from_seed
from fedray.core.state import Genesis, GenesisAccount, Params, State
from fedray.core.transition import apply_block, select_txs

BLOCK_INTERVAL_MS = 1000


def certify(
    block: Block, keys: Sequence[PrivateKey], chain_id: str, round_: int = 0
) -> CommitCertificate:
    """Precommits for `block` signed by `keys`, as a certificate."""
    votes = [
        Vote(PRECOMMIT, block.height, round_, block.hash, k.public_key).signed(k, chain_id)
        for k in keys
    ]
    return CommitCertificate.from_votes(votes)


def dev_genesis(
    chain_id: str = "fedray-dev",
    n_validators: int = 4,
    n_accounts: int = 8,
    balance: int = 1_000_000,
    validator_stake: int = 10_000,
    params: Params | None = None,
    genesis_time: int = 1_700_000_000_000,
) -> tuple[Genesis, list[PrivateKey], list[PrivateKey]]:
    """A genesis with deterministic keys: (genesis, validator keys, plain account keys)."""
    vkeys = [key_from_seed(f"{chain_id}/validator/{i}".encode()) for i in range(n_validators)]
    akeys = [key_from_seed(f"{chain_id}/account/{i}".encode()) for i in range(n_accounts)]
    accounts = [
        GenesisAccount(k.public_key, balance=balance, stake=validator_stake, is_validator=True)
        for k in vkeys
    ] + [GenesisAccount(k.public_key, balance=balance) for k in akeys]
    return Genesis(chain_id, genesis_time, tuple(accounts), params or Params()), vkeys, akeys


@dataclass
class DevChain:
    """Builds a valid chain: `propose(txs)` makes the next block, `commit(block)` certifies and
    applies it. `blocks[i]`/`certificates[i]` is height i+1."""

    genesis: Genesis
    validator_keys: list[PrivateKey]
    env: BlockEnv = field(default_factory=BlockEnv)
    state: State = field(init=False)
    blocks: list[Block] = field(default_factory=list)
    certificates: list[CommitCertificate] = field(default_factory=list)
    states: list[State] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.state = self.genesis.state()
        self.states = [self.state]

    def _keys_of(self, members: Iterable[bytes]) -> list[PrivateKey]:
        by_pub = {k.public_key: k for k in self.validator_keys}
        return [by_pub[m] for m in members if m in by_pub]

    def propose(
        self, txs: Iterable[bytes] = (), strict: bool = True, evidence: Sequence[bytes] = ()
    ) -> Block:
        """The next block with `txs` (all of them if strict, else only those that apply)."""
        s = self.state
        height = s.height + 1
        time = s.last_block_time + BLOCK_INTERVAL_MS
        proposer = s.validators.keys[height % len(s.validators)]
        txs = list(txs)
        if not strict:
            ctx = ExecContext(height, time, proposer, self.env)
            txs, _ = select_txs(s, txs, ctx)
        last_commit = self.certificates[-1] if self.certificates else None
        return make_block(
            s.chain_id,
            height,
            time,
            s.last_block_hash,
            s.root(),
            proposer,
            s.validators,
            txs,
            last_commit,
            tuple(evidence),
            prove_next(self._keys_of([proposer])[0], s),
        )

    def commit(self, block: Block, absent: Iterable[bytes] = ()) -> State:
        """Apply `block` and certify it with every validator except those in `absent`."""
        new_state = apply_block(self.state, block, self.env)
        missing = set(absent)
        signers = [k for k in self.state.validators.keys if k not in missing]
        cert = certify(block, self._keys_of(signers), self.state.chain_id)
        self.blocks.append(block)
        self.certificates.append(cert)
        self.state = new_state
        self.states.append(new_state)
        return new_state

    def advance(
        self, txs: Iterable[bytes] = (), strict: bool = True, absent: Iterable[bytes] = ()
    ) -> Block:
        block = self.propose(txs, strict)
        self.commit(block, absent)
        return block
