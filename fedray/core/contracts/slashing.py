"""Penalties with evidence: each rule below names its proof, and `economy.penalize` applies it once.

Consensus
- double signing: equivocation evidence carried in a block (`core.evidence`) -> burn
  `slash_double_sign_bps` of stake and ban for good; one penalty per (offender, height).
- downtime: a validator that signed fewer than `downtime_min_signed_bps` of the last
  `downtime_window` blocks (read from each block's `last_commit`) -> burn `slash_downtime_bps` and
  jail `downtime_jail_blocks`; the proof is the digest of its signing window.

Learning (read from the verdicts of each closed round)
- free riding (an all-zero update: no training at all, provable) -> no reward (incentives) and a
  `freeride_penalty_bps` penalty, each round it happens;
- flagged updates (statistical evidence, `EVIDENCE`: an update at the noise level with every other
  update of the round, or a near copy of another) in `flag_threshold` of the client's last
  `flag_window` rounds -> burn `slash_flagged_bps` and jail `flagged_jail_blocks`. How often honest
  updates carried these flags was measured under every label skew, and with it the chance that the
  k-of-w test ever fires on an honest client in 1,000 rounds (docs/incentives.md). Other signals
  (pointing away from the aggregate, length, being dropped by the rule) only lower or withhold the
  round's reward: honest clients produce them too;
- invalid payloads: a `payload_evidence` transaction carrying the client's signed update and its
  signed statement of what it delivered proves either a hash mismatch (it delivered something else)
  or, via the `payload_check` precompile, a malformed payload -> burn `slash_invalid_payload_bps`;
- an update longer than the differential-privacy norm bound (`privacy.norm_bound`, an exact
  integer test in the aggregation precompile: `FLAG_OVER_NORM`) -> burn
  `slash_invalid_payload_bps`, each round it happens; the update was refused;
- replayed or copied payload hashes are refused and slashed by the rounds contract itself.

Jailed accounts are not selected and their transactions are refused (core envelope rule) until they
send `unjail`, allowed from height `jailed_until` on; banned accounts never return.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Annotated, Any

from fedray.core.codec import Via, check_ascending, decode_as, encode_as
from fedray.core.context import ExecContext
from fedray.core.contracts.client_history import (
    EMPTY_HISTORY,
    ClientHistory,
    Entries,
    history_from_canonical,
    history_to_canonical,
)
from fedray.core.contracts.economy import penalize
from fedray.core.contracts.rounds import RoundResult
from fedray.core.crypto import DOMAIN_PAYLOAD, verify
from fedray.core.encoding import DIGEST_SIZE, digest, encode, hash_value
from fedray.core.evidence import EvidenceRecord
from fedray.core.journal import Journal
from fedray.core.precompiles import EVIDENCE, FREE_RIDING, OVER_NORM, PAYLOAD_CHECK
from fedray.core.sections import SectionSpec, register_section
from fedray.core.tx import KindSpec, SignedTx, register_kind
from fedray.errors import FedrayError, FieldTypeError, PayloadError, TxError


class SlashingError(TxError):
    """A slashing-related transaction breaks a rule."""

    code = "slashing"


class NotJailedError(SlashingError):
    """`unjail` from an account that is not jailed, or before its jail ends."""

    code = "not_jailed"


class BannedError(SlashingError):
    """A banned account tried to unjail."""

    code = "banned"


class PayloadEvidenceError(SlashingError):
    """Payload evidence that proves nothing (signatures, kinds, or a valid payload)."""

    code = "bad_payload_evidence"


# --- state: signing windows and learning conduct ------------------------------------------------
def _bits_to_bytes(bits: int) -> bytes:
    return bits.to_bytes((bits.bit_length() + 7) // 8, "big")


_WINDOWS = tuple[tuple[bytes, int, bytes], ...]


def _windows_to_canonical(signing: Mapping[bytes, tuple[int, int]]) -> Any:
    return encode_as(
        _WINDOWS, tuple((k, o, _bits_to_bytes(b)) for k, (o, b) in sorted(signing.items()))
    )


def _windows_from_canonical(value: object) -> MappingProxyType[bytes, tuple[int, int]]:
    entries = decode_as(_WINDOWS, value, "Conduct.signing")
    check_ascending([k for k, _, _ in entries], "Conduct.signing")
    if any(bits[:1] == b"\x00" for _, _, bits in entries):  # one encoding per window
        raise FieldTypeError("Conduct.signing: a signing window has a leading zero byte")
    return MappingProxyType({k: (o, int.from_bytes(bits, "big")) for k, o, bits in entries})


@dataclass(frozen=True)
class Conduct:
    """The `conduct` section: validators' signing windows (observed blocks, bitmask of signed) and
    clients' recent rounds (round, flags, payload hash) up to `flag_window` long. A window is up to
    `downtime_window` bits, stored as [key, observed, big-endian bytes] since canonical integers
    stop at 64 bits."""

    signing: Annotated[
        MappingProxyType[bytes, tuple[int, int]],
        Via(_windows_to_canonical, _windows_from_canonical),
    ]
    history: Annotated[ClientHistory, Via(history_to_canonical, history_from_canonical)]

    @staticmethod
    def empty() -> Conduct:
        return Conduct(MappingProxyType({}), EMPTY_HISTORY)


def _conduct_hashed(conduct: Conduct) -> Any:
    """The root takes the signing windows whole and the clients' history by its bucket root
    (`client_history.py`): the windows change every block, the history once a round."""
    return [_windows_to_canonical(conduct.signing), conduct.history.root()]


CONDUCT = register_section(
    SectionSpec("conduct", Conduct, Conduct.empty, hashed_form=_conduct_hashed)
)


# --- consensus evidence -----------------------------------------------------------------------
def punish_double_sign(journal: Journal, record: EvidenceRecord) -> None:
    p = journal.params
    penalize(
        journal,
        key=hash_value(["double_sign", record.offender, record.height]),
        kind="double_sign",
        offender=record.offender,
        height=record.height,
        proof_digest=record.proof_digest,
        included_at=record.included_at,
        bps=p.slash_double_sign_bps,
        ban=True,
    )


def track_liveness(journal: Journal, ctx: ExecContext) -> None:
    """Shift each validator of the last set into its signing window; punish low signers."""
    if ctx.height <= 1:
        return
    p = journal.params
    window, mask = p.downtime_window, (1 << p.downtime_window) - 1
    conduct: Conduct = journal.section("conduct")
    signed_by = set(ctx.last_commit_signers)
    signing = {}
    for key in journal.base.last_validators.keys:
        observed, bits = conduct.signing.get(key, (0, 0))
        observed, bits = min(observed + 1, window), ((bits << 1) | (key in signed_by)) & mask
        if (
            observed == window
            and bin(bits).count("1") * 10_000 < p.downtime_min_signed_bps * window
        ):
            penalize(
                journal,
                key=hash_value(["downtime", key, ctx.height]),
                kind="downtime",
                offender=key,
                height=ctx.height,
                proof_digest=hash_value([key, ctx.height, window, _bits_to_bytes(bits)]),
                included_at=ctx.height,
                bps=p.slash_downtime_bps,
                jail_blocks=p.downtime_jail_blocks,
            )
            observed, bits = 0, 0
        signing[key] = (observed, bits)
    journal.set_section("conduct", replace(conduct, signing=MappingProxyType(signing)))


# --- learning evidence ------------------------------------------------------------------------
def judge_round(journal: Journal, result: RoundResult, ctx: ExecContext) -> None:
    p = journal.params
    conduct: Conduct = journal.section("conduct")
    history: dict[bytes, Entries] = {}  # the round's changes to conduct.history
    for update, verdict in zip(result.updates, result.verdicts, strict=True):
        client, flags = update.client, verdict.flags
        # rules, each penalized every time: free riding; an update longer than the DP norm
        # bound (exact, provable)
        for flag, kind, bps in (
            (FREE_RIDING, "free_riding", p.freeride_penalty_bps),
            (OVER_NORM, "update_norm", p.slash_invalid_payload_bps),
        ):
            if flags & flag:
                penalize(
                    journal,
                    key=hash_value([kind, client, result.round]),
                    kind=kind,
                    offender=client,
                    height=result.round,
                    proof_digest=hash_value([update.payload_hash, flags]),
                    included_at=ctx.height,
                    bps=bps,
                )
        entry = (result.round, flags, update.payload_hash)
        before = history[client] if client in history else conduct.history.get(client, ())
        recent = (*before, entry)[-p.flag_window :]
        flagged = [e for e in recent if e[1] & EVIDENCE]
        if len(flagged) >= p.flag_threshold:  # rule: evidence in k of the last w rounds
            penalize(
                journal,
                key=hash_value(["flagged_updates", client, result.round]),
                kind="flagged_updates",
                offender=client,
                height=result.round,
                proof_digest=hash_value([client, [list(e) for e in flagged]]),
                included_at=ctx.height,
                bps=p.slash_flagged_bps,
                jail_blocks=p.flagged_jail_blocks,
            )
            recent = ()  # the evidence is spent: the same flags never count twice
        history[client] = tuple(recent)
    journal.set_section("conduct", replace(conduct, history=conduct.history.updated(history)))


@dataclass(frozen=True)
class PayloadEvidence:
    """Proof that a client's payload was invalid: its signed update transaction, and its signature
    (domain `DOMAIN_PAYLOAD`) over [round, digest of the payload it actually delivered]."""

    update_tx: bytes
    delivered_digest: bytes
    delivery_signature: bytes

    def validate(self) -> None:
        if len(self.delivered_digest) != DIGEST_SIZE:
            raise PayloadError(f"payload_evidence.delivered_digest must have {DIGEST_SIZE} bytes")


def delivery_message(round_: int, delivered: bytes) -> bytes:
    return encode([round_, delivered])


def apply_payload_evidence(
    journal: Journal, stx: SignedTx, p: PayloadEvidence, ctx: ExecContext
) -> None:
    try:
        update = SignedTx.decode(p.update_tx)
        update.verify_signature()  # rule: the client really signed this update
    except FedrayError as exc:
        raise PayloadEvidenceError(f"the update transaction does not verify: {exc}") from None
    t = update.tx
    if t.kind != "update" or t.chain_id != journal.chain_id:  # rule: an update of this chain
        raise PayloadEvidenceError("evidence must carry an update transaction of this chain")
    round_, claimed = t.payload.get("round"), t.payload.get("payload_hash")
    if not isinstance(round_, int) or not isinstance(claimed, bytes):
        raise PayloadEvidenceError("the update transaction has a malformed payload")
    try:  # rule: the client signed what it delivered
        verify(
            t.sender,
            DOMAIN_PAYLOAD,
            journal.chain_id,
            delivery_message(round_, p.delivered_digest),
            p.delivery_signature,
        )
    except FedrayError:
        raise PayloadEvidenceError("the delivery statement is not signed by the client") from None
    if p.delivered_digest != claimed:
        reason = "hash_mismatch"  # it signed one hash in the transaction and delivered another
    else:
        checker = ctx.env.precompiles.get(PAYLOAD_CHECK)
        reason = checker.check(claimed) if checker is not None else ""
        if not reason:  # rule: evidence must show an invalid payload
            raise PayloadEvidenceError("the delivered payload is valid")
    params = journal.params
    penalize(
        journal,
        key=hash_value(["invalid_payload", t.sender, round_]),
        kind="invalid_payload",
        offender=t.sender,
        height=ctx.height,
        proof_digest=digest(
            encode([p.update_tx, p.delivered_digest, p.delivery_signature, reason])
        ),
        included_at=ctx.height,
        bps=params.slash_invalid_payload_bps,
    )


# --- unjail -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Unjail:
    pass


def apply_unjail(journal: Journal, stx: SignedTx, p: Unjail, ctx: ExecContext) -> None:
    acct = journal.account_or_empty(stx.tx.sender)
    if acct.banned:  # rule: bans are permanent
        raise BannedError("a banned account cannot unjail")
    if acct.jailed_until == 0:  # rule: only jailed accounts unjail
        raise NotJailedError("the account is not jailed")
    if ctx.height < acct.jailed_until:  # rule: after the jail period
        raise NotJailedError(f"jailed until height {acct.jailed_until}")
    journal.put_account(stx.tx.sender, replace(acct, jailed_until=0))


PAYLOAD_EVIDENCE = register_kind(
    KindSpec("payload_evidence", PayloadEvidence, 5_000, apply_payload_evidence)
)
UNJAIL = register_kind(KindSpec("unjail", Unjail, 2_000, apply_unjail, allowed_when_jailed=True))
