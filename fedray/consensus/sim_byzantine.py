"""The adversary: Byzantine behaviours a simulated validator can be given, each drawn per schedule.

A Byzantine node runs the honest engine (so it stays in step with the protocol and knows the round),
but its transport lies, signing with the raw key and bypassing the signer, which is exactly what
signer safety cannot prevent and evidence must expose. Behaviours (a node may combine several):

- `equivocate`: as proposer, a second block and proposal for the same (height, round); for every
  vote a conflicting one (the other block, nil, or a made-up hash). Each peer gets the first, the
  second, or both, at random.
- `silent`: sends nothing at all. `selective`: at each height, a random set of peers gets nothing.
- `amnesia`: forgets its lock and valid value after every step (so it prevotes values it is locked
  away from and proposes fresh values), and its signer state at every restart (double signs).
- `false_pol`: re-proposes with a proof-of-lock round that has no polka.
- `junk`: besides its messages, a nil prevote for the next round with each of its prevotes, and at
  random forged votes in honest validators' names, votes for future heights and rounds, proposals
  out of turn or naming another block, and forged catch-up certificates.
- `invalid_block`: proposes blocks the application rejects (a wrong state root).
- `phantom`: votes for blocks no one proposed.
- `withhold`: proposes a block whose payload only some peers get (the chain's `withheld_block`); on a
  chain without payloads, sends its proposal to some peers only while voting for it to all.
- `split`: plays the scenes the world stages before GST (`draw_scene`), the classic attacks on
  locking: *split proposal* (in its own round, its block to one honest favourite, another block to
  the rest, and its prevote and precommit for the other block, whatever its engine votes) and *split decision* (in the round before its turn,
  its precommit for the value to the favourite only, nil to the rest, while the network loses the
  favourite's precommits: the favourite may decide alone while the others move on; then, with its
  lock forgotten, it proposes a fresh value, half the time with a false POL round).

Scenes are the one adaptive part: the adversary reads the public proposer schedule to pick the
rounds next to a faulty proposer. Deliberately ignored: timing attacks beyond the network plan,
and strategies that read honest nodes' private state.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence
from dataclasses import replace

from fedray.consensus.driver import Driver
from fedray.consensus.messages import Message, ProposalMessage, VoteMessage
from fedray.consensus.sim_node import (
    SPLIT_DECISION,
    SPLIT_PROPOSAL,
    NodeTransport,
    Scene,
    SimNode,
    Wire,
    World,
)
from fedray.consensus.sync import SyncBatch
from fedray.core.block import NIL, PRECOMMIT, PREVOTE, Block, CommitCertificate, Proposal, Vote
from fedray.core.encoding import digest

EQUIVOCATE, SILENT, SELECTIVE, AMNESIA = "equivocate", "silent", "selective", "amnesia"
FALSE_POL, JUNK, INVALID_BLOCK, PHANTOM, WITHHOLD, SPLIT = (
    "false_pol",
    "junk",
    "invalid_block",
    "phantom",
    "withhold",
    "split",
)
BEHAVIOURS = (
    SPLIT,
    EQUIVOCATE,
    SILENT,
    SELECTIVE,
    AMNESIA,
    FALSE_POL,
    JUNK,
    INVALID_BLOCK,
    PHANTOM,
    WITHHOLD,
)


def draw_behaviours(rng: random.Random, allowed: Sequence[str]) -> frozenset[str]:
    """Silent alone one time in ten (if allowed), else each other allowed behaviour with
    probability 0.4, at least one."""
    others = [b for b in allowed if b != SILENT]
    if SILENT in allowed and (not others or rng.random() < 0.1):
        return frozenset({SILENT})
    chosen = {b for b in others if rng.random() < 0.4}
    if not chosen and others:
        chosen = {rng.choice(others)}
    return frozenset(chosen)


def forgets(node: SimNode) -> bool:
    """Whether the node forgets its lock after every step and its signer state at a restart."""
    return AMNESIA in node.behaviours or SPLIT in node.behaviours


def draw_scene(
    rng: random.Random,
    rate: float,
    nodes: Sequence[SimNode],
    faulty: frozenset[bytes],
    height: int,
    round_: int,
) -> Scene | None:
    """A scene for (height, round) with probability `rate` when a faulty node proposes this round
    or the next one (read from an honest node's proposer schedule at that height)."""
    states = [
        n.driver.state
        for n in nodes
        if n.honest and n.driver is not None and n.driver.state.height == height
    ]
    if not states:
        return None
    state = states[0]
    if state.schedule.proposer(round_) in faulty:
        kind = SPLIT_PROPOSAL
    elif state.schedule.proposer(round_ + 1) in faulty:
        kind = SPLIT_DECISION
    else:
        return None
    cast = [n.id for n in nodes if n.honest and n.key.public_key in state.powers]
    if not cast or rng.random() >= rate:
        return None
    return Scene(kind, rng.choice(cast))


def forget_lock(driver: Driver) -> None:
    """`amnesia`: drop the lock and the valid value from the engine's state."""
    s = driver.state
    if s.locked_round >= 0 or s.valid_round >= 0:
        driver.state = replace(s, locked_round=-1, locked_hash=NIL, valid_round=-1, valid_hash=NIL)


def invalid(block: Block) -> Block:
    """The same block with a state root no honest application accepts."""
    return replace(block, header=replace(block.header, state_root=digest(b"byzantine/root")))


class ByzantineTransport(NodeTransport):
    """The Byzantine node's link: applies its behaviours to everything it would send."""

    def __init__(self, world: World, node: SimNode, incarnation: int) -> None:
        super().__init__(world, node, incarnation)
        self.alt: dict[tuple[int, int, bytes], bytes] = {}  # (height, round, hash) -> other hash
        self.others_block: dict[tuple[int, int], bytes] = {}  # split proposal: (height, round)
        self.muted: frozenset[int] = frozenset()
        self.muted_height = -1

    @property
    def me(self) -> bytes:
        return self.node.key.public_key

    def has(self, behaviour: str) -> bool:
        return behaviour in self.node.behaviours

    def broadcast(self, message: Message) -> None:
        if not self.live or self.has(SILENT):
            return
        self.update_mute(message.height)
        if isinstance(message, ProposalMessage):
            if message.proposal.proposer == self.me:
                self.propose(message)
            else:
                self.deliver(message)
        elif message.vote.validator == self.me:
            self.vote(message)
            if self.has(JUNK) and message.vote.type == PREVOTE:  # always a round ahead
                v = message.vote
                self.deliver(self.signed_vote(PREVOTE, v.height, v.round + 1, NIL))
        else:
            self.deliver(message)
        if self.has(JUNK) and self.world.rng.random() < 0.3:
            self.junk(message)

    # --- delivery -----------------------------------------------------------------------------
    def update_mute(self, height: int) -> None:
        if self.has(SELECTIVE) and height != self.muted_height:
            rng, peers = self.world.rng, self.peers()
            self.muted = frozenset(rng.sample(peers, rng.randint(1, max(1, len(peers) - 1))))
            self.muted_height = height

    def peers(self) -> list[int]:
        return [p.id for p in self.world.nodes if p is not self.node]

    def deliver(self, message: Wire, to: Collection[int] | None = None) -> None:
        for peer in self.peers() if to is None else to:
            if peer not in self.muted:
                self.world.send(self.node, peer, message)

    def split(self, first: Message, second: Message) -> None:
        rng, scene = self.world.rng, self.world.scene(first.height, first.round)
        for peer in self.peers():
            if peer in self.muted:
                continue
            if scene is not None:  # the favourite alone gets the first
                self.world.send(self.node, peer, first if peer == scene.favourite else second)
                continue
            choice = rng.random()
            if choice < 0.8:
                self.world.send(self.node, peer, first if choice < 0.4 else second)
            else:
                self.world.send(self.node, peer, first)
                self.world.send(self.node, peer, second)

    # --- own messages -------------------------------------------------------------------------
    def signed_proposal(self, p: Proposal, block: Block, pol_round: int) -> ProposalMessage:
        key, chain_id = self.node.key, self.world.chain.chain_id
        q = Proposal(p.height, p.round, pol_round, block.hash, self.me).signed(key, chain_id)
        return ProposalMessage(q, block)

    def propose(self, message: ProposalMessage) -> None:
        rng, p = self.world.rng, message.proposal
        if self.has(SPLIT) and self.play_proposal(message):
            return
        first = message
        if self.has(INVALID_BLOCK) and rng.random() < 0.5:
            first = self.signed_proposal(p, invalid(message.block), p.pol_round)
        elif self.has(WITHHOLD) and rng.random() < 0.5:
            peers = self.peers()
            holders = rng.sample(peers, rng.randint(0, len(peers)))
            block = self.world.chain.withheld_block(
                self.node.id, p.height, self.now_ms() + 1, holders
            )
            if block is None:  # no payloads on this chain: withhold the proposal itself
                self.deliver(message, holders)
                return
            first = self.signed_proposal(p, block, -1)
        if self.has(FALSE_POL) and p.round > 0 and rng.random() < 0.5:
            first = self.signed_proposal(p, first.block, rng.randrange(p.round))
        if not self.has(EQUIVOCATE):
            self.deliver(first)
            return
        other = self.node.app.prepare_proposal(
            p.height, p.round, self.me, self.now_ms() + 1 + rng.randint(0, 99)
        )
        if other.hash == first.block.hash:
            self.deliver(first)
            return
        self.alt[(p.height, p.round, first.proposal.block_hash)] = other.hash
        self.split(first, self.signed_proposal(p, other, -1))

    def vote(self, message: VoteMessage) -> None:
        rng, v = self.world.rng, message.vote
        if self.has(SPLIT) and self.play_vote(message):
            return
        first = message
        if self.has(PHANTOM) and rng.random() < 0.5:
            first = self.signed_vote(v.type, v.height, v.round, self.made_up(v.height, v.round))
        if not self.has(EQUIVOCATE):
            self.deliver(first)
            return
        alt = self.alt.get((v.height, v.round, v.block_hash))
        if alt is None:
            alt = NIL if first.vote.block_hash != NIL else self.made_up(v.height, v.round)
        self.split(first, self.signed_vote(v.type, v.height, v.round, alt))

    def signed_vote(self, type_: int, height: int, round_: int, block_hash: bytes) -> VoteMessage:
        vote = Vote(type_, height, round_, block_hash, self.me)
        return VoteMessage(vote.signed(self.node.key, self.world.chain.chain_id))

    def made_up(self, height: int, round_: int) -> bytes:
        return digest(b"byzantine/%d/%d/%d" % (height, round_, self.world.rng.randrange(1 << 30)))

    # --- scenes -------------------------------------------------------------------------------
    def play_proposal(self, message: ProposalMessage) -> bool:
        """Our proposal in a scene; False if there is none to play."""
        p, rng = message.proposal, self.world.rng
        scene = self.world.scene(p.height, p.round)
        if scene is not None and scene.kind == SPLIT_PROPOSAL:
            other = self.node.app.prepare_proposal(
                p.height, p.round, self.me, self.now_ms() + 1 + rng.randint(0, 99)
            )
            if other.hash == p.block_hash:
                return False
            self.alt[(p.height, p.round, p.block_hash)] = other.hash
            self.others_block[(p.height, p.round)] = other.hash
            self.split(message, self.signed_proposal(p, other, -1))
            return True
        return False

    def play_vote(self, message: VoteMessage) -> bool:
        """Our vote in a scene; False if there is none to play."""
        v = message.vote
        scene = self.world.scene(v.height, v.round)
        if scene is None:
            return False
        if scene.kind == SPLIT_PROPOSAL:  # prevote and precommit the block the others got
            other = self.others_block.get((v.height, v.round))
            if other is None:
                return False
            self.deliver(self.signed_vote(v.type, v.height, v.round, other))
            return True
        if v.type != PRECOMMIT:
            return False
        value = v.block_hash
        s = self.node.driver.state if self.node.driver is not None else None
        if value == NIL and s is not None and v.round in s.proposals:
            value = s.proposals[v.round][0].block_hash
        if value == NIL:
            return False
        nil = self.signed_vote(PRECOMMIT, v.height, v.round, NIL)
        self.split(self.signed_vote(PRECOMMIT, v.height, v.round, value), nil)
        self.next_round(v.height, v.round + 1, value, scene.favourite)
        return True

    def next_round(self, height: int, round_: int, locked: bytes, favourite: int) -> None:
        """The second act of a split decision, played at once (our engine may decide and move on
        meanwhile): our proposal of the next round, a fresh block (half the time with a false POL
        round), with our prevote and precommit for it, to all but the favourite."""
        rng = self.world.rng
        block = self.node.app.prepare_proposal(
            height, round_, self.me, self.now_ms() + 2 + rng.randint(0, 99)
        )
        if block.hash == locked:
            return
        pol = round_ - 1 if rng.random() < 0.5 else -1
        p = Proposal(height, round_, pol, block.hash, self.me)
        others = [peer for peer in self.peers() if peer != favourite]
        self.deliver(self.signed_proposal(p, block, pol), others)
        for type_ in (PREVOTE, PRECOMMIT):
            self.deliver(self.signed_vote(type_, height, round_, block.hash), others)

    # --- junk ---------------------------------------------------------------------------------
    def junk(self, trigger: Message) -> None:
        rng = self.world.rng
        h, r = trigger.height, trigger.round
        kind = rng.randrange(6)
        if kind == 0:  # a vote in an honest validator's name, signed with our key
            victims = [p.key.public_key for p in self.world.nodes if p.honest]
            mine = self.signed_vote(rng.choice((PREVOTE, PRECOMMIT)), h, r, self.made_up(h, r))
            if victims:
                forged = replace(mine.vote, validator=rng.choice(victims))
                self.deliver(VoteMessage(forged))
        elif kind == 1:  # a vote for a future height
            self.deliver(self.signed_vote(PREVOTE, h + rng.randint(1, 2), 0, self.made_up(h, 0)))
        elif kind == 2:  # a vote for a future round
            later = r + rng.randint(1, 3)
            self.deliver(self.signed_vote(rng.choice((PREVOTE, PRECOMMIT)), h, later, NIL))
        elif kind in (3, 4):  # a proposal out of turn, or one naming another block
            block = self.node.app.prepare_proposal(
                h, r, self.me, self.now_ms() + rng.randint(1, 99)
            )
            p = Proposal(h, r, -1, block.hash, self.me)
            message = self.signed_proposal(p, block, -1)
            if kind == 4:
                message = ProposalMessage(message.proposal, invalid(block))
            self.deliver(message)
        else:  # a catch-up batch whose certificate is ours plus forged signatures
            self.forged_sync(h, r)

    def forged_sync(self, height: int, round_: int) -> None:
        rng = self.world.rng
        block = self.node.app.prepare_proposal(height, round_, self.me, self.now_ms() + 1)
        own = self.signed_vote(PRECOMMIT, height, round_, block.hash).vote
        sigs = {own.validator: own.signature}
        for p in self.world.nodes:
            if p.key.public_key != self.me:
                sigs[p.key.public_key] = digest(rng.randbytes(8)) * 2  # 64 bytes of nonsense
        cert = CommitCertificate(height, round_, block.hash, tuple(sorted(sigs.items())))
        peers = self.peers()
        self.deliver(SyncBatch(((block, cert),)), [rng.choice(peers)] if peers else [])
