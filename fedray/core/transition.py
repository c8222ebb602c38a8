"""The state transition: `apply_tx` and `apply_block`, as small checks each naming its rule.

`apply_block(state, block, env)` is a few small steps, as in the beacon-chain spec: header (with the
proposer's VRF proof, `beacon.py`), body roots, last commit, evidence, transactions, then the end of
block (`end_block.process_end_block`).
Any broken rule raises a `FedrayError` subclass; the input state is never modified (states are
frozen, writes go through a `Journal`). A block must contain only valid transactions: proposers filter with `select_txs`, so one bad
transaction rejects the whole block and `fedray chain verify` can name it.

Contracts plug in through the transaction-kind registry (`tx.register_kind`), the section registry
(`state.register_section`) and the ordered steps of `end_block.py`; precompiles (aggregation) come in
`BlockEnv` (`context.py`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fedray.core import beacon
from fedray.core.block import Block, commit_hash, evidence_root, tx_root
from fedray.core.context import BlockEnv, ExecContext
from fedray.core.contracts.slashing import punish_double_sign
from fedray.core.end_block import process_end_block
from fedray.core.evidence import process_evidence
from fedray.core.journal import Journal
from fedray.core.state import State
from fedray.core.tx import KindSpec, SignedTx, decode_payload, kind_spec
from fedray.errors import (
    BlockError,
    BlockTimeError,
    ChainIdError,
    FedrayError,
    GasError,
    InsufficientBalanceError,
    JailedError,
    NonceGapError,
    NonceReplayError,
    OversizedError,
    UnknownAccountError,
)


# --- transactions -----------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckedTx:
    """A transaction that passed every stateless rule."""

    stx: SignedTx
    spec: KindSpec
    payload: Any
    size: int


def check_tx_stateless(
    raw: bytes, chain_id: str, max_tx_bytes: int, verified: Iterable[bytes] = ()
) -> CheckedTx:
    """Rules that need no state, cheapest first: size, shape, chain id, kind, payload, signature."""
    if len(raw) > max_tx_bytes:  # rule: oversized
        raise OversizedError(f"transaction has {len(raw)} bytes, limit is {max_tx_bytes}")
    stx = SignedTx.decode(raw)  # rule: malformed
    if stx.tx.chain_id != chain_id:  # rule: wrong chain id
        raise ChainIdError(f"transaction is for chain {stx.tx.chain_id!r}, this is {chain_id!r}")
    spec = kind_spec(stx.tx.kind)  # rule: unknown kind
    payload = decode_payload(spec, stx.tx.payload)  # rule: bad payload
    if stx.hash not in verified:
        stx.verify_signature()  # rule: bad signature
    return CheckedTx(stx, spec, payload, len(raw))


def check_tx(raw: bytes, chain_id: str, max_tx_bytes: int, env: BlockEnv) -> CheckedTx:
    """`check_tx_stateless`, answered from `env.checked` when the node already checked these
    bytes: only the size limit can have changed since (the other rules depend on the bytes and
    the chain id alone), and it is checked first, as there, with the same error."""
    known = env.checked.get(raw)
    if (
        not isinstance(known, CheckedTx)
        or known.stx.tx.chain_id != chain_id
        or known.stx.raw != raw
    ):
        return check_tx_stateless(raw, chain_id, max_tx_bytes, env.verified)
    if len(raw) > max_tx_bytes:  # rule: oversized
        raise OversizedError(f"transaction has {len(raw)} bytes, limit is {max_tx_bytes}")
    return known


def tx_gas(checked: CheckedTx, journal: Journal) -> int:
    return checked.spec.base_gas + journal.params.gas_per_byte * checked.size


def execute_tx(journal: Journal, checked: CheckedTx, ctx: ExecContext) -> int:
    """Apply one checked transaction to `journal`; on any broken rule, undo it and raise.
    Returns the gas used."""
    savepoint = journal.savepoint()
    try:
        return _execute(journal, checked, ctx)
    except FedrayError:
        journal.revert(savepoint)
        raise


def _execute(journal: Journal, checked: CheckedTx, ctx: ExecContext) -> int:
    tx = checked.stx.tx
    sender = journal.account(tx.sender)
    if sender is None:  # rule: sender must exist
        raise UnknownAccountError(f"sender {tx.sender.hex()[:16]} has no account")
    if tx.nonce < sender.nonce:  # rule: replay
        raise NonceReplayError(f"nonce {tx.nonce} already used (next is {sender.nonce})")
    if tx.nonce > sender.nonce:  # rule: gap
        raise NonceGapError(f"nonce {tx.nonce} skips ahead (next is {sender.nonce})")
    if sender.jailed and not checked.spec.allowed_when_jailed:
        raise JailedError(  # rule: jailed accounts may not act
            f"sender {tx.sender.hex()[:16]} is "
            + ("banned" if sender.banned else f"jailed until height {sender.jailed_until}")
        )
    gas = tx_gas(checked, journal)
    if tx.gas_limit < gas:  # rule: gas limit covers the cost
        raise GasError(f"gas limit {tx.gas_limit} is below the cost {gas}")
    fee = 0 if checked.spec.fee_exempt else gas * journal.params.gas_price
    if sender.balance < fee:  # rule: fee is payable
        raise InsufficientBalanceError(f"balance {sender.balance} cannot pay the fee {fee}")
    journal.update_account(tx.sender, balance=sender.balance - fee, nonce=sender.nonce + 1)
    if fee:
        proposer = journal.account_or_empty(ctx.proposer)
        journal.update_account(ctx.proposer, balance=proposer.balance + fee)
    checked.spec.handler(journal, checked.stx, checked.payload, ctx)
    return gas


def apply_tx(state: State, raw: bytes, ctx: ExecContext) -> State:
    """Apply one transaction in the block described by `ctx`; a new state or a typed error."""
    journal = Journal(state)
    checked = check_tx(raw, state.chain_id, state.params.max_tx_bytes, ctx.env)
    execute_tx(journal, checked, ctx)
    return journal.finish()


def select_txs(
    state: State, candidates: Iterable[bytes], ctx: ExecContext, max_bytes: int | None = None
) -> tuple[list[bytes], list[tuple[bytes, FedrayError]]]:
    """Greedily keep the candidates that apply in order within the block's gas, size and count
    limits (a proposer's `prepare_proposal`). Returns (kept, [(rejected raw, error)])."""
    journal = Journal(state)
    params = state.params
    budget_bytes = params.max_block_bytes if max_bytes is None else max_bytes
    kept: list[bytes] = []
    rejected: list[tuple[bytes, FedrayError]] = []
    gas_total = used_bytes = 0
    for raw in candidates:
        if len(kept) >= params.max_block_txs or used_bytes + len(raw) > budget_bytes:
            break
        try:
            checked = check_tx(raw, state.chain_id, params.max_tx_bytes, ctx.env)
            if gas_total + tx_gas(checked, journal) > params.block_gas_limit:
                break
            gas_total += execute_tx(journal, checked, ctx)
        except FedrayError as exc:
            rejected.append((raw, exc))
            continue
        kept.append(raw)
        used_bytes += len(raw)
    return kept, rejected


# --- blocks -----------------------------------------------------------------------------------
def process_header(state: State, block: Block) -> bytes:
    """The header rules; returns the block's randomness (its proposer's VRF output)."""
    h = block.header
    if h.chain_id != state.chain_id:  # rule: same chain
        raise ChainIdError(f"block is for chain {h.chain_id!r}, this is {state.chain_id!r}")
    if h.height != state.height + 1:  # rule: next height
        raise BlockError(f"block height {h.height}, expected {state.height + 1}")
    if h.prev_hash != state.last_block_hash:  # rule: hash link
        raise BlockError(f"block {h.height} does not link to the previous block hash")
    if h.time <= state.last_block_time:  # rule: time grows
        raise BlockTimeError(f"block time {h.time} is not after {state.last_block_time}")
    step = state.params.max_block_time_step_ms
    if h.time - state.last_block_time > step:  # rule: time grows by at most the step
        raise BlockTimeError(
            f"block time {h.time} is more than {step} ms after {state.last_block_time}"
        )
    if h.state_root != state.root():  # rule: state root of the previous block
        raise BlockError(f"block {h.height} state root does not match the replayed state")
    if h.validators_hash != state.validators.hash():  # rule: signed by the current set
        raise BlockError(f"block {h.height} names another validator set")
    if h.proposer not in state.validators:  # rule: proposer is a validator
        raise BlockError(f"block {h.height} proposer is not a validator")
    return beacon.check_randomness(state, h)  # rule: the proposer's VRF output for the height


def process_body_roots(state: State, block: Block) -> None:
    params = state.params
    if len(block.raw) > params.max_block_bytes:  # rule: block size
        raise OversizedError(f"block has {len(block.raw)} bytes, limit {params.max_block_bytes}")
    if len(block.txs) > params.max_block_txs:  # rule: transaction count
        raise OversizedError(f"block has {len(block.txs)} txs, limit {params.max_block_txs}")
    if block.header.tx_root != tx_root(block.txs):  # rule: tx merkle root
        raise BlockError(f"block {block.height} tx root does not match its transactions")
    if block.header.last_commit_hash != commit_hash(block.last_commit):  # rule: commit binding
        raise BlockError(f"block {block.height} last-commit hash does not match its certificate")
    if block.header.evidence_root != evidence_root(block.evidence):  # rule: evidence root
        raise BlockError(f"block {block.height} evidence root does not match its evidence")


def process_last_commit(state: State, block: Block) -> None:
    if state.height == 0:  # rule: the first block has no previous commit
        if block.last_commit is not None:
            raise BlockError("block 1 cannot carry a previous commit")
        return
    if block.last_commit is None:  # rule: later blocks carry the previous block's commit
        raise BlockError(f"block {block.height} lacks the commit certificate of its parent")
    block.last_commit.verify(
        state.chain_id, state.last_validators, state.last_block_hash, state.height
    )


def process_txs(journal: Journal, block: Block, ctx: ExecContext) -> None:
    params = journal.params
    gas_total = 0
    seen: set[bytes] = set()
    for index, raw in enumerate(block.txs):
        try:
            checked = check_tx(raw, journal.chain_id, params.max_tx_bytes, ctx.env)
            if checked.stx.hash in seen:  # rule: no duplicate transactions
                raise NonceReplayError("transaction appears twice in the block")
            seen.add(checked.stx.hash)
            gas_total += execute_tx(journal, checked, ctx)
        except FedrayError as exc:
            exc.add_note(f"in transaction {index} of block {block.height}")
            raise
        if gas_total > params.block_gas_limit:  # rule: block gas limit
            raise GasError(f"block {block.height} uses more than {params.block_gas_limit} gas")


def apply_block(state: State, block: Block, env: BlockEnv | None = None) -> State:
    """Validate and execute `block` on `state`; returns the state after it."""
    randomness = process_header(state, block)
    process_body_roots(state, block)
    process_last_commit(state, block)
    signers = block.last_commit.signers() if block.last_commit is not None else ()
    ctx = ExecContext(
        block.height,
        block.header.time,
        block.header.proposer,
        env or BlockEnv(),
        block.hash,
        signers,
        randomness,
    )
    journal = Journal(state)
    beacon.record(journal, randomness)
    for record in process_evidence(journal, block):  # each equivocation is recorded once ...
        punish_double_sign(journal, record)  # ... and burns and bans its offender
    process_txs(journal, block, ctx)
    process_end_block(journal, ctx)
    validators = journal.next_validator_set()
    if not validators.members:  # rule: the chain keeps at least one validator
        raise BlockError(f"block {block.height} would leave the validator set empty")
    return journal.finish(
        height=block.height,
        last_block_hash=block.hash,
        last_block_time=block.header.time,
        last_validators=state.validators,
        validators=validators,
    )
