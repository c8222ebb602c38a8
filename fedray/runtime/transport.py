"""Moving consensus messages between validators: the wire encoding, per-peer batching, and the two
ways of reaching a peer (`RayPeers`: actor handles or names; `LocalPeers`: objects in the same event
loop, for tests without Ray).

Wire: a proposal or vote crosses actors as canonical bytes built from the core types' own encodings
(`encode_message`), and is decoded strictly on receipt (`decode_message` raises `EncodingError` on
anything else). No validator-controlled object is ever pickled: peers exchange `list[bytes]`.

Batching: `Outbox.send` appends to a per-peer buffer; each peer has at most one `receive(batch)` call
in flight, so whatever queues while a call is out leaves in the next one. Calls are fire-and-forget
for the sender: a dead, restarting or slow peer costs a dropped batch (the engine's gossip resends
what matters), never an exception or a blocked event loop.

Deliberately ignored: authentication of the sending actor (every message is signed, so a forged
sender gains nothing) and bandwidth limits.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from fedray.consensus.messages import Message, ProposalMessage, VoteMessage
from fedray.core.block import Block, Proposal, Vote
from fedray.core.encoding import decode, encode
from fedray.errors import EncodingError, FedrayError

log = logging.getLogger(__name__)

KIND_PROPOSAL, KIND_VOTE = 0, 1
MAX_BATCH_MESSAGES = 4096  # a receive call handles at most this many (bounds one call's work)
MAX_BUFFERED = 8192  # per peer; beyond this the oldest are dropped (gossip resends)


class PeerUnavailableError(FedrayError):
    """A peer could not be reached (dead, restarting, not yet created) or did not answer in time."""

    code = "peer_unavailable"


# --- wire encoding --------------------------------------------------------------------------------
def encode_message(message: Message) -> bytes:
    if isinstance(message, VoteMessage):
        return encode([KIND_VOTE, message.vote.to_canonical()])
    return encode([KIND_PROPOSAL, message.proposal.to_canonical(), message.block.raw])


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def decode_message(raw: bytes) -> Message:
    """Strict inverse of `encode_message`; raises `EncodingError` for anything else."""
    if not isinstance(raw, bytes):
        raise EncodingError("a wire message is a byte string")
    value = decode(raw)
    if not isinstance(value, list) or not value or value[0] not in (KIND_PROPOSAL, KIND_VOTE):
        raise EncodingError("a wire message is [kind, ...] with a known kind")
    try:
        if value[0] == KIND_VOTE and len(value) == 2:
            return VoteMessage(Vote.from_canonical(value[1]))
        if value[0] == KIND_PROPOSAL and len(value) == 3 and isinstance(value[2], bytes):
            fields = value[1]
            if not (
                isinstance(fields, list)
                and len(fields) == 6
                and all(map(_is_int, fields[:3]))
                and all(isinstance(f, bytes) for f in fields[3:])
            ):
                raise EncodingError("a proposal is [height, round, pol_round, hash, key, sig]")
            return ProposalMessage(Proposal.from_canonical(fields), Block.from_bytes(value[2]))
    except (TypeError, ValueError) as exc:
        raise EncodingError(f"malformed wire message: {exc}") from None
    raise EncodingError("a wire message has the wrong number of fields")


# --- reaching peers -------------------------------------------------------------------------------
class Peers(Protocol):
    """Peers by name and a way to call their methods; raises `PeerUnavailableError`."""

    names: tuple[str, ...]

    async def call(self, name: str, method: str, *args: Any, timeout_s: float = 5.0) -> Any: ...


class LocalPeers:
    """Peers as objects in this event loop (in-process mode, no Ray); a closed one is down."""

    def __init__(self, nodes: Mapping[str, Any]) -> None:
        self.nodes = dict(nodes)
        self.names = tuple(self.nodes)

    async def call(self, name: str, method: str, *args: Any, timeout_s: float = 5.0) -> Any:
        node = self.nodes[name]
        if getattr(node, "closed", False):
            raise PeerUnavailableError(f"{name} is shut down")
        try:
            return await asyncio.wait_for(getattr(node, method)(*args), timeout_s)
        except TimeoutError:
            raise PeerUnavailableError(f"{name}.{method} timed out") from None


def own_actor_id() -> str | None:
    """The id of the Ray actor this code runs in (None outside one)."""
    import ray

    if not ray.is_initialized():
        return None
    actor_id = ray.get_runtime_context().get_actor_id()
    return None if actor_id is None else str(actor_id)


def peers_of(
    peers: Sequence[Any], me: object, local_type: type, namespace: str | None = None
) -> Peers:
    """A validator's peers from actor handles, actor names, or (in process) node objects of
    `local_type` keyed by their `name`; `me` (the node itself, or its own actor) is left out."""
    entries: dict[str, Any] = {}
    my_actor = own_actor_id()
    for p in peers:
        if p is me:
            continue
        if isinstance(p, local_type):
            entries[p.name] = p
        elif isinstance(p, str):
            entries[p] = None
        elif p._actor_id.hex() != my_actor:
            entries[p._actor_id.hex()] = p
    if any(isinstance(p, local_type) for p in entries.values()):
        return LocalPeers(entries)
    return RayPeers(entries, namespace)


class RayPeers:
    """Peers as Ray actors: fixed handles, or names looked up in `namespace` (a validator restarted
    under the same name is found again). After a failure a peer is skipped for `retry_s`, so a dead
    one costs neither a GCS lookup nor a failed call per message."""

    def __init__(
        self, entries: Mapping[str, Any], namespace: str | None = None, retry_s: float = 1.0
    ) -> None:
        self.names = tuple(entries)
        self.namespace = namespace
        self.retry_s = retry_s
        self._fixed = {n: h for n, h in entries.items() if h is not None}
        self._handles: dict[str, Any] = dict(self._fixed)
        self._failed_at: dict[str, float] = {}

    async def _handle(self, name: str) -> Any:
        if time.monotonic() - self._failed_at.get(name, -1e9) < self.retry_s:
            raise PeerUnavailableError(f"{name} was unreachable moments ago")
        handle = self._handles.get(name)
        if handle is not None:
            return handle
        import ray

        try:  # a GCS round trip: keep it off the event loop
            handle = await asyncio.to_thread(ray.get_actor, name, self.namespace)
        except ValueError:
            self._failed_at[name] = time.monotonic()
            raise PeerUnavailableError(f"no actor named {name}") from None
        self._handles[name] = handle
        return handle

    async def call(self, name: str, method: str, *args: Any, timeout_s: float = 5.0) -> Any:
        from ray.exceptions import RayError, RayTaskError

        handle = await self._handle(name)
        try:
            ref = getattr(handle, method).remote(*args)
            return await asyncio.wait_for(asyncio.wrap_future(ref.future()), timeout_s)
        except TimeoutError:
            raise PeerUnavailableError(f"{name}.{method} timed out") from None
        except RayTaskError as exc:  # the peer is up but its method raised
            raise PeerUnavailableError(f"{name}.{method} failed: {exc}") from None
        except RayError as exc:  # dead or unreachable: look the name up again later
            if name not in self._fixed:
                self._handles.pop(name, None)
            self._failed_at[name] = time.monotonic()
            raise PeerUnavailableError(f"{name} is unavailable: {type(exc).__name__}") from None


# --- batching -------------------------------------------------------------------------------------
class Outbox:
    """Per-peer buffers flushed by one in-flight `receive(batch)` call per peer."""

    def __init__(self, peers: Peers, call_timeout_s: float = 5.0) -> None:
        self.peers = peers
        self.call_timeout_s = call_timeout_s
        self._buffers: dict[str, list[bytes]] = {name: [] for name in peers.names}
        self._flushing: dict[str, asyncio.Task[None]] = {}
        self.sent_batches = 0
        self.dropped = 0

    def send(self, raw: bytes) -> None:
        """Queue `raw` for every peer; flushing starts once the current handler yields."""
        for name in self.peers.names:
            buf = self._buffers[name]
            buf.append(raw)
            if len(buf) > MAX_BUFFERED:
                self.dropped += len(buf) - MAX_BUFFERED
                del buf[: len(buf) - MAX_BUFFERED]
            if name not in self._flushing:
                self._flushing[name] = asyncio.get_running_loop().create_task(self._flush(name))

    async def _flush(self, name: str) -> None:
        try:
            while self._buffers[name]:
                batch = self._buffers[name][:MAX_BATCH_MESSAGES]
                del self._buffers[name][:MAX_BATCH_MESSAGES]
                try:
                    await self.peers.call(name, "receive", batch, timeout_s=self.call_timeout_s)
                    self.sent_batches += 1
                except PeerUnavailableError as exc:
                    log.debug("dropping %d messages for %s: %s", len(batch), name, exc)
                    self.dropped += len(batch) + len(self._buffers[name])
                    self._buffers[name].clear()  # a down peer gets current state by gossip later
        finally:
            self._flushing.pop(name, None)

    def close(self) -> None:
        for task in list(self._flushing.values()):
            task.cancel()


async def gather_from(
    peers: Peers, method: str, *args: Any, timeout_s: float = 2.0
) -> Mapping[str, Any]:
    """`method(*args)` on every peer at once: {name: answer} for those that answered."""
    names = peers.names
    answers = await asyncio.gather(
        *(peers.call(n, method, *args, timeout_s=timeout_s) for n in names), return_exceptions=True
    )
    out = {}
    for name, answer in zip(names, answers, strict=True):
        if isinstance(answer, PeerUnavailableError):
            continue
        if isinstance(answer, BaseException):
            raise answer
        out[name] = answer
    return out
