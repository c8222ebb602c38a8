"""What a validator needs beyond the ledger to restart and to catch up: its proposer schedule, and
the update payloads that blocks from peers reference.

Proposer schedule: the engine's `ProposerSchedule` evolves per height (priorities), so a restarted
node needs the schedule of the height it resumes at. The node writes it (with the codec of
`fedray.consensus.proposer`) into the block store's meta table right after each commit
(`save_schedule`), tagged with its height. A crash between the block's commit and that write leaves
the schedule of the committed height, which `load_schedule` advances by one step with the next
height's validator set; any older tag (a directory written without the runtime) falls back to
replaying the validator sets of the whole chain.

Catch-up (`catch_up`): ask every peer for its committed height, fetch (block, certificate) pairs
from the one furthest ahead and hand them to the driver in height order; the engine verifies each
certificate against the validator set of its height before the block is executed, so a lying peer
costs time, never a wrong block.

Payloads: a block closing a round aggregates payloads that must be in the local blob store; a node
that was down while they arrived lacks them. The ledger app's `missing_payloads` lists what a block
needs and the store lacks; `fetch_payloads` asks peers with a request signed by the validator's key
(`access`) and keeps each only if it hashes to its name and is no larger than an update. Catch-up
delivers a block only once its payloads are here, and otherwise tries again on its next pass.

Deliberately ignored: state sync from peers' snapshots (a restart replays from its own disk).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

import numpy as np

from fedray.consensus.proposer import ProposerSchedule, decode_schedule, encode_schedule
from fedray.core.block import Block, CommitCertificate
from fedray.core.transition import apply_block
from fedray.errors import BlobError, FedrayError
from fedray.node.app import LedgerApp
from fedray.runtime.transport import Peers, PeerUnavailableError, gather_from
from fedray.storage.tensors import nbytes, tensors_digest

log = logging.getLogger(__name__)

SCHEDULE_KEY = "runtime/proposer_schedule"


def save_schedule(app: LedgerApp, height: int, schedule: ProposerSchedule) -> None:
    """Record `schedule` as the one of `height` (call right after committing `height - 1`)."""
    app.store.set_meta(SCHEDULE_KEY, encode_schedule(height, schedule))


def load_schedule(app: LedgerApp) -> ProposerSchedule:
    """The proposer schedule of the height after the application's last commit."""
    tip = app.height
    raw = app.store.get_meta(SCHEDULE_KEY)
    if raw is not None:
        at, schedule = decode_schedule(raw)
        if at == tip + 1:
            return schedule
        if at == tip and tip > 0:  # crashed between the commit and the schedule write
            return schedule.next_height(app.validators(tip + 1))
    if tip == 0:
        return ProposerSchedule.genesis(app.validators(1))
    return replay_schedule(app)


def replay_schedule(app: LedgerApp) -> ProposerSchedule:
    """The schedule of height tip + 1 from the validator sets of every height (a full replay)."""
    state = app.store.genesis().state()
    sets = [state.validators]
    for stored in app.store.iter_blocks(1, app.height):
        state = apply_block(state, stored.block(), app.env)
        sets.append(state.validators)
    return ProposerSchedule.replay(sets)


def pin_fetched(app: LedgerApp, digest: bytes, tensors: Mapping[str, np.ndarray]) -> None:
    """Store a payload fetched from a peer, only if it is the one named `digest` and no larger than
    an update (a Byzantine peer must not fill the disk)."""
    if not isinstance(tensors, Mapping) or not all(
        isinstance(k, str) and isinstance(v, np.ndarray) for k, v in tensors.items()
    ):
        raise BlobError("a fetched payload is a mapping of names to numpy arrays")
    limit = app.state.section("rounds").model_nbytes
    if nbytes(tensors) > limit:
        raise BlobError(f"a fetched payload has more than {limit} bytes")
    if tensors_digest(tensors) != digest:
        raise BlobError(f"fetched payload does not hash to {digest.hex()[:16]}")
    app.blobs.put(tensors)


async def fetch_payloads(
    peers: Peers,
    app: LedgerApp,
    digests: list[bytes],
    sign_request: Callable[[bytes], bytes],
    prefer: str | None = None,
) -> None:
    """Fetch each payload from the first peer that has one hashing to its name (`prefer` first),
    asking with a request `sign_request(digest)` signed by this validator's key (an open round's
    payloads go to validators only)."""
    names = sorted(peers.names, key=lambda n: n != prefer)
    for digest in digests:
        for name in names:
            try:
                tensors = await peers.call(
                    name, "get_blob", digest, sign_request(digest), timeout_s=30.0
                )
                await asyncio.to_thread(pin_fetched, app, digest, tensors)
                break
            except FedrayError as exc:  # unavailable, refused, or a payload that does not hash
                log.info("payload %s from %s: %s", digest.hex()[:12], name, exc)


async def fetch_until_pinned(
    peers: Peers,
    app: LedgerApp,
    block: Block,
    sign_request: Callable[[bytes], bytes],
    still_wanted: Callable[[], bool],
    first_pause_s: float,
    max_pause_s: float,
) -> bool:
    """Fetch the payloads `block` needs, retrying with a doubling pause (up to `max_pause_s`)
    while `still_wanted()` (the node usable and its engine still at the block's height); True once
    they are all pinned here."""
    pause = first_pause_s
    while still_wanted():
        missing = app.missing_payloads(block)
        if not missing:
            return True
        await fetch_payloads(peers, app, missing, sign_request)
        if not app.missing_payloads(block):
            return True
        await asyncio.sleep(pause)
        pause = min(2 * pause, max_pause_s)
    return False


async def catch_up(
    peers: Peers,
    app: LedgerApp,
    deliver: Callable[[Block, CommitCertificate], None],
    running: Callable[[], bool],
    sign_request: Callable[[bytes], bytes],
    status_timeout_s: float = 2.0,
) -> int:
    """Fetch committed (block, certificate) pairs from the peer furthest ahead and `deliver` them in
    height order (the engine verifies each certificate); returns how many heights were applied.
    A block whose payloads no peer handed over ends this pass (the next one retries): delivered
    without them, it could not be executed."""
    statuses = dict(await gather_from(peers, "status", timeout_s=status_timeout_s))
    heights = {
        n: st.height for n, st in statuses.items() if isinstance(getattr(st, "height", None), int)
    }
    applied = 0
    while running():
        ahead = {n: h for n, h in heights.items() if h > app.height}
        if not ahead:
            break
        peer = max(ahead, key=lambda n: ahead[n])
        before = app.height
        try:
            pairs = await peers.call(
                peer, "committed_range", before + 1, ahead[peer], timeout_s=30.0
            )
        except PeerUnavailableError:
            pairs = []
        for raw_block, raw_cert in pairs if isinstance(pairs, list) else []:
            try:
                block = Block.from_bytes(raw_block)
                cert = CommitCertificate.from_bytes(raw_cert)
            except (FedrayError, TypeError, ValueError):
                break
            missing = app.missing_payloads(block)
            if missing:
                await fetch_payloads(peers, app, missing, sign_request, prefer=peer)
                if app.missing_payloads(block):
                    return applied + app.height - before
            deliver(block, cert)
        applied += app.height - before
        if app.height == before:
            heights.pop(peer)  # its answer did not advance us: try the next peer
    return applied
