"""The upon-rules of Algorithm 1 (Buchman, Kwon, Milosevic), one small named function each.

`run_rules` applies them until none fires. Each takes the step's `Work` and returns whether it fired;
the predicates they share are functions of plain values:
- `lock_allows`: L22 and L28 in one test: a locked validator prevotes only its locked value, or a
  value whose proof-of-lock round is at or after its lock;
- `pol_confirmed`: L28's "2f+1 PREVOTE in round vr for id(v)";
- `polka_value`: L36's proposal with 2f+1 prevotes in this round;
- `decision_block`: the block L49 decides, the one the precommit quorum names;
- `is_one_third`: L55's "f+1" of the voting power.

Keeping each rule behind its own name is what lets `fedray.consensus.mutants` break one rule at a
time and check that the simulator notices.

Deliberately ignored: event handling (`engine`) and the state's bookkeeping (`work`).
"""

from __future__ import annotations

from fedray.consensus.signer import STEP_PRECOMMIT, STEP_PREVOTE, STEP_PROPOSE
from fedray.consensus.votes import EMPTY_VOTE_SET, is_one_third
from fedray.consensus.work import Work
from fedray.core.block import NIL, PRECOMMIT, PREVOTE, Block, CommitCertificate

# The lines of once-per-round rules, as recorded in `Work.fired`.
L34_PREVOTE_TIMER, L36_POLKA, L47_PRECOMMIT_TIMER = 34, 36, 47


def run_rules(w: Work) -> None:
    if w.round < 0:
        return
    while w.decision is None:
        if rule_decide(w) or rule_skip_round(w) or rule_prevote(w):
            continue
        fired = rule_prevote_timer(w)
        fired = rule_polka(w) or fired
        fired = rule_nil_polka(w) or fired
        fired = rule_precommit_timer(w) or fired
        if not fired:
            return


# --- predicates -------------------------------------------------------------------------------
def lock_allows(locked_round: int, locked_hash: bytes, value: bytes, pol_round: int) -> bool:
    """L22 (`pol_round == -1`): not locked, or locked on `value`; L28: the lock is not after the
    proof-of-lock round, or is on `value`."""
    return locked_hash == value or locked_round <= pol_round


def pol_confirmed(w: Work, pol_round: int, value: bytes) -> bool:
    """L28: 2f+1 prevotes for `value` in `pol_round`."""
    return w.votes.get((pol_round, PREVOTE), EMPTY_VOTE_SET).quorum_for(value, w.total)


def polka_value(w: Work, round_: int) -> bytes | None:
    """L36: a proposal of `round_` the application accepted, with 2f+1 prevotes for it."""
    prevotes = w.votes.get((round_, PREVOTE), EMPTY_VOTE_SET)
    for p in w.proposals.get(round_, ()):
        if w.accepted(p.block_hash) is True and prevotes.quorum_for(p.block_hash, w.total):
            return p.block_hash
    return None


def decision_block(w: Work, round_: int, value: bytes) -> Block | None:
    """L49: the block named by a precommit quorum in `round_`, if we have it."""
    return w.blocks.get(value)


# --- rules ------------------------------------------------------------------------------------
def rule_decide(w: Work) -> bool:  # L49: a proposal and 2f+1 precommits for it, in any round
    for (round_, type_), vs in w.votes.items():
        if type_ != PRECOMMIT:
            continue
        value = vs.quorum_value(w.total)
        block = None if value is None else decision_block(w, round_, value)
        if value is None or block is None:
            continue
        if w.accepted(block.hash) is True:
            w.decide(block, CommitCertificate.from_votes(vs.votes_for(value)))
            return True
        w.request_check(block)
    return False


def rule_skip_round(w: Work) -> bool:  # L55: f+1 of the power is already in a later round
    rounds = {r for r, _ in w.votes} | set(w.proposals)
    for r in sorted((r for r in rounds if r > w.round), reverse=True):
        senders = set(w.votes.get((r, PREVOTE), EMPTY_VOTE_SET).voters())
        senders |= set(w.votes.get((r, PRECOMMIT), EMPTY_VOTE_SET).voters())
        if r in w.proposals:
            senders.add(w.proposals[r][0].proposer)
        if is_one_third(sum(w.powers[k] for k in senders), w.total):
            w.start_round(r)
            return True
    return False


def rule_prevote(w: Work) -> bool:  # L22 and L28, in the propose step
    if w.step != STEP_PROPOSE or w.round not in w.proposals:
        return False
    p = w.proposals[w.round][0]  # the first one we got is the one we answer
    valid = w.accepted(p.block_hash)
    if valid is None:
        return False  # wait for CheckProposal's answer (or the propose timeout)
    if p.pol_round >= 0 and not pol_confirmed(w, p.pol_round, p.block_hash):
        return False  # L28 waits for the proof of lock change
    ok = valid and lock_allows(w.locked_round, w.locked_hash, p.block_hash, p.pol_round)
    w.vote(PREVOTE, p.block_hash if ok else NIL)
    return True


def rule_prevote_timer(w: Work) -> bool:  # L34: 2f+1 prevotes for anything: start the timer
    r = w.round
    if w.step != STEP_PREVOTE or (L34_PREVOTE_TIMER, r) in w.fired:
        return False
    if not w.votes.get((r, PREVOTE), EMPTY_VOTE_SET).quorum_any(w.total):
        return False
    w.fired.add((L34_PREVOTE_TIMER, r))
    w.timeout(STEP_PREVOTE)
    return True


def rule_polka(w: Work) -> bool:  # L36: a polka for a proposal: lock, precommit, remember as valid
    r = w.round
    if w.step < STEP_PREVOTE or (L36_POLKA, r) in w.fired:
        return False
    value = polka_value(w, r)
    if value is None:
        return False
    w.fired.add((L36_POLKA, r))
    if w.step == STEP_PREVOTE:
        w.lock(r, value)
        w.vote(PRECOMMIT, value)
    w.remember_valid(r, value)
    return True


def rule_nil_polka(w: Work) -> bool:  # L44: 2f+1 prevotes for nil: precommit nil
    prevotes = w.votes.get((w.round, PREVOTE), EMPTY_VOTE_SET)
    if w.step != STEP_PREVOTE or not prevotes.quorum_for(NIL, w.total):
        return False
    w.vote(PRECOMMIT, NIL)
    return True


def rule_precommit_timer(w: Work) -> bool:  # L47: 2f+1 precommits for anything: start the timer
    r = w.round
    if (L47_PRECOMMIT_TIMER, r) in w.fired:
        return False
    if not w.votes.get((r, PRECOMMIT), EMPTY_VOTE_SET).quorum_any(w.total):
        return False
    w.fired.add((L47_PRECOMMIT_TIMER, r))
    w.timeout(STEP_PRECOMMIT)
    return True
