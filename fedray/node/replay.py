"""Replaying a stored chain: verification from genesis and state recovery from snapshots.

`verify_chain` is what `fedray chain verify` runs: for every height it checks the stored block's hash
and height, the commit certificate against the validator set of that height, applies the block (hash
link, roots, signatures, nonces, every state rule) and compares the resulting state root with the one
stored. The first failure is reported with its height and the rule's error code.

`load_state` is what a restarting node runs: the newest snapshot whose root matches the stored root,
then the blocks after it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fedray.core.block import Block
from fedray.core.context import BlockEnv
from fedray.core.state import State
from fedray.core.transition import apply_block
from fedray.errors import BlockError, FedrayError, StorageError
from fedray.storage.blockstore import BlockStore, StoredBlock


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    height: int  # last verified height, or the first bad one when not ok
    rule: str = ""
    message: str = ""
    tip_hash: bytes = b""
    state_root: bytes = b""


class ChainMismatchError(BlockError):
    """A stored block, certificate or state root disagrees with what replay computes."""

    code = "stored_mismatch"


def check_stored(state: State, stored: StoredBlock) -> Block:
    """Rules on the stored row itself, before execution."""
    block = stored.block()  # rule: the block decodes canonically
    if block.height != stored.height:
        raise ChainMismatchError(f"row {stored.height} holds a block of height {block.height}")
    if block.hash != stored.hash:
        raise ChainMismatchError(
            f"stored hash of block {stored.height} differs from its header hash"
        )
    # rule: the certificate commits this block with >2/3 of the set that had to sign it
    stored.cert().verify(state.chain_id, state.validators, block.hash, block.height)
    return block


def verify_chain(
    store: BlockStore,
    env: BlockEnv | None = None,
    on_block: Callable[[State, Block], None] | None = None,
) -> VerifyReport:
    """Replay `store` from genesis, checking everything; never raises for a bad chain."""
    try:
        state = store.genesis().state()
    except FedrayError as exc:
        return VerifyReport(False, 0, exc.code, f"genesis: {exc}")
    expected = 1
    for stored in store.iter_blocks():
        if stored.height != expected:
            return VerifyReport(False, expected, "missing_block", f"no block at height {expected}")
        try:
            block = check_stored(state, stored)
            new_state = apply_block(state, block, env)
            if new_state.root() != stored.state_root:  # rule: stored state root is reproduced
                raise ChainMismatchError(
                    f"replayed state root {new_state.root().hex()[:16]} differs from stored "
                    f"{stored.state_root.hex()[:16]}"
                )
            if on_block is not None:
                on_block(new_state, block)
        except FedrayError as exc:
            notes = "; ".join(getattr(exc, "__notes__", []))
            return VerifyReport(
                False, stored.height, exc.code, f"{exc}" + (f" ({notes})" if notes else "")
            )
        state = new_state
        expected += 1
    return VerifyReport(True, state.height, tip_hash=state.last_block_hash, state_root=state.root())


def load_state(store: BlockStore, env: BlockEnv | None = None) -> State:
    """The state after the store's last block: newest trustworthy snapshot, then replay."""
    tip = store.height()
    state = store.latest_snapshot(tip)
    if state is not None and state.height > 0:
        stored = store.get(state.height)
        if state.root() != stored.state_root or state.last_block_hash != stored.hash:
            state = None  # a snapshot that disagrees with its block is ignored, not trusted
    if state is None:
        state = store.genesis().state()
    for stored in store.iter_blocks(state.height + 1, tip):
        state = apply_block(state, stored.block(), env)
        if state.root() != stored.state_root:
            raise StorageError(f"replay of block {stored.height} does not reproduce its state root")
    return state
