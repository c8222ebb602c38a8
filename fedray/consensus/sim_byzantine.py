"""Simulated transports: the honest one, and the Byzantine one that equivocates.

A Byzantine node runs the honest engine (so it stays in step with the protocol) but its transport
lies: as proposer it builds a second block and signs a second proposal for the same (height, round);
for every vote it signs a conflicting vote for the same slot (for the other block if it equivocated,
else nil, or a made-up hash for a nil vote). Each peer gets the first message, the second, or both, at
random: peers that get both must produce evidence, the others are split. It signs with the raw key,
bypassing the signer, which is exactly what signer safety cannot prevent and evidence must expose.

Deliberately ignored: Byzantine timing attacks and forged sync batches (certificates are verified).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fedray.consensus.messages import Message, ProposalMessage, ScheduleTimeout, VoteMessage
from fedray.core.block import NIL, Proposal, Vote
from fedray.core.encoding import digest

CHAIN_ID = "fedray-sim"

if TYPE_CHECKING:
    from fedray.consensus.sim import SimNode, Simulation


class NodeTransport:
    """An honest node's link to the simulated world, valid for one incarnation of the node."""

    def __init__(self, sim: Simulation, node: SimNode, incarnation: int) -> None:
        self.sim, self.node, self.incarnation = sim, node, incarnation

    @property
    def live(self) -> bool:
        return self.node.driver is not None and self.node.incarnation == self.incarnation

    def broadcast(self, message: Message) -> None:
        if self.live:
            self.sim.broadcast(self.node, message)

    def schedule(self, timeout: ScheduleTimeout) -> None:
        self.sim.timer(self.node, self.incarnation, timeout)

    def now_ms(self) -> int:
        return self.sim.now_ms(self.node)


class ByzantineTransport(NodeTransport):
    """Equivocating proposer and double voter."""

    def __init__(self, sim: Simulation, node: SimNode, incarnation: int) -> None:
        super().__init__(sim, node, incarnation)
        self.alt: dict[tuple[int, int, bytes], bytes] = {}  # (height, round, hash) -> other hash

    def broadcast(self, message: Message) -> None:
        if not self.live:
            return
        key, chain_id, rng = self.node.key, CHAIN_ID, self.sim.rng
        if isinstance(message, ProposalMessage):
            p = message.proposal
            block = self.node.app.prepare_proposal(
                p.height, p.round, key.public_key, self.now_ms() + 1 + rng.randint(0, 99)
            )
            if block.hash == p.block_hash:
                self.sim.broadcast(self.node, message)
                return
            self.alt[(p.height, p.round, p.block_hash)] = block.hash
            other = Proposal(p.height, p.round, p.pol_round, block.hash, key.public_key)
            self.split(message, ProposalMessage(other.signed(key, chain_id), block))
        else:
            v = message.vote
            alt = self.alt.get((v.height, v.round, v.block_hash))
            if alt is None:
                alt = (
                    NIL if v.block_hash != NIL else digest(b"byzantine/%d/%d" % (v.height, v.round))
                )
            other_vote = Vote(v.type, v.height, v.round, alt, key.public_key)
            self.split(message, VoteMessage(other_vote.signed(key, chain_id)))

    def split(self, first: Message, second: Message) -> None:
        rng = self.sim.rng
        for peer in self.sim.nodes:
            if peer is self.node:
                continue
            choice = rng.random()
            if choice < 0.8:
                self.sim.send(self.node, peer.id, first if choice < 0.4 else second)
            else:
                self.sim.send(self.node, peer.id, first)
                self.sim.send(self.node, peer.id, second)
