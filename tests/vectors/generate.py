"""Generate the conformance vectors in this folder: `python tests/vectors/generate.py`.

Each vector is a JSON file: a pre-state, then either transactions (hex wire bytes applied in order
in the block described by `context`) or a block (hex), and either the post-state or `"post": null`
with the expected error: its `code`, the `rule` it breaks (the error class the implementation must
raise) and, for transactions, the `index` of the rejected one. Keys are derived from fixed seeds, so
the output is byte-identical on every run (a test checks that the committed files match this
generator).

Must-reject vectors are written by hand: this generator only builds their input bytes, and their
outcome is the `Reject` written beside each case (with `RULES` below), never the result of running
the implementation they check; tests/unit/core/test_vectors.py then checks that the implementation
rejects each one with exactly that rule, code and index. Accept vectors are generated: their
post-state is what the implementation computes (the generator stops if one is rejected).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

import fedray.core  # noqa: E402,F401  (registers kinds and sections)
from fedray.core.beacon import prove_next  # noqa: E402
from fedray.core.block import PRECOMMIT, PREVOTE, Block, Vote, make_block  # noqa: E402
from fedray.core.context import ExecContext  # noqa: E402
from fedray.core.contracts.accounts import Register, Stake, Transfer, Unstake  # noqa: E402
from fedray.core.crypto import DOMAIN_TX, key_from_seed  # noqa: E402
from fedray.core.devchain import DevChain, certify, dev_genesis  # noqa: E402
from fedray.core.encoding import UINT64_MAX, encode  # noqa: E402
from fedray.core.evidence import Evidence  # noqa: E402
from fedray.core.state import Params, State  # noqa: E402
from fedray.core.transition import apply_block, apply_tx  # noqa: E402
from fedray.core.tx import SignedTx, Tx, make_tx  # noqa: E402
from fedray.errors import FedrayError  # noqa: E402

sys.path.insert(0, str(HERE))
from codec import state_to_json  # noqa: E402

CHAIN = "fedray-vectors"
GENESIS, VKEYS, AKEYS = dev_genesis(CHAIN, n_validators=4, n_accounts=6)
A, B, C, D = AKEYS[0], AKEYS[1], AKEYS[2], AKEYS[3]
STRANGER = key_from_seed(b"vectors/stranger")
PROPOSER = VKEYS[0].public_key
CTX = ExecContext(height=1, time=GENESIS.genesis_time + 1000, proposer=PROPOSER)

VECTORS: dict[str, dict[str, Any]] = {}

# Hand-written: the error code of each rule a must-reject vector breaks, and the error class that
# names the rule. Not read from fedray: a changed code or class must show up as a failing vector.
RULES: dict[str, str] = {
    "bad_certificate": "CertificateError",
    "bad_evidence": "EvidenceError",
    "bad_param_value": "BadParamValueError",
    "bad_randomness": "RandomnessError",
    "bad_payload": "PayloadError",
    "bad_payload_evidence": "PayloadEvidenceError",
    "bad_signature": "SignatureError",
    "banned": "BannedError",
    "block_time": "BlockTimeError",
    "deposit_closed": "DepositClosedError",
    "double_vote": "DoubleVoteError",
    "duplicate_update": "DuplicateUpdateError",
    "insufficient_balance": "InsufficientBalanceError",
    "insufficient_stake": "InsufficientStakeError",
    "integer_overflow": "IntegerOverflowError",
    "invalid_block": "BlockError",
    "jailed": "JailedError",
    "malformed": "EncodingError",
    "no_voting_power": "NoVotingPowerError",
    "nonce_gap": "NonceGapError",
    "nonce_replay": "NonceReplayError",
    "not_jailed": "NotJailedError",
    "not_selected": "NotSelectedError",
    "out_of_gas": "GasError",
    "oversized": "OversizedError",
    "registration": "RegistrationError",
    "round_closed": "RoundClosedError",
    "unknown_account": "UnknownAccountError",
    "unknown_kind": "UnknownTxKindError",
    "unknown_param": "UnknownParamError",
    "unknown_proposal": "UnknownProposalError",
    "unknown_proposal_kind": "UnknownProposalKindError",
    "update_size": "UpdateSizeError",
    "voting_closed": "VotingClosedError",
    "voting_not_open": "VotingNotOpenError",
    "wrong_chain_id": "ChainIdError",
}


@dataclass(frozen=True)
class Reject:
    """The hand-written outcome of a must-reject vector: the error `code` (its rule from `RULES`)
    and, for transactions, the `index` of the rejected one (those before it apply); blocks: None."""

    code: str
    index: int | None = 0

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "index": self.index, "rule": RULES[self.code]}


def block_reject(code: str) -> Reject:
    return Reject(code, index=None)


def base_state() -> State:
    return GENESIS.state()


def with_account(state: State, key: bytes, **changes: Any) -> State:
    acct = state.account(key)
    assert acct is not None
    accounts = state.accounts.updated({key: dataclasses.replace(acct, **changes)})
    return dataclasses.replace(state, accounts=accounts)


def tx(key: Any, nonce: int, payload: Any, **kw: Any) -> bytes:
    return make_tx(key, CHAIN, nonce, payload, **kw).raw


def raw_tx(
    key: Any,
    nonce: int,
    kind: str,
    payload: dict[str, Any],
    chain: str = CHAIN,
    gas_limit: int = 1_000_000,
    signer: Any = None,
) -> bytes:
    """A signed transaction with an arbitrary (possibly invalid) payload map."""
    t = Tx(chain, key.public_key, nonce, gas_limit, kind, payload)
    sig = (signer or key).sign(DOMAIN_TX, chain, t.body_bytes())
    return SignedTx(t, sig).raw


def tx_vector(
    name: str,
    description: str,
    pre: State,
    txs: list[bytes],
    ctx: ExecContext = CTX,
    reject: Reject | None = None,
) -> None:
    vector: dict[str, Any] = {
        "name": name,
        "description": description,
        "pre": state_to_json(pre),
        "context": {"height": ctx.height, "time": ctx.time, "proposer": ctx.proposer.hex()},
        "txs": [t.hex() for t in txs],
    }
    if reject is None:
        vector["post"] = state_to_json(_accepted(name, lambda: _apply_txs(pre, txs, ctx)))
    else:
        if reject.index is None or not 0 <= reject.index < len(txs):
            raise SystemExit(f"vector {name}: reject index {reject.index} is not one of its txs")
        vector.update(post=None, error=reject.to_json())
    VECTORS[name] = vector


def block_vector(
    name: str, description: str, pre: State, block: Block | bytes, reject: Reject | None = None
) -> None:
    raw = block.raw if isinstance(block, Block) else block
    vector: dict[str, Any] = {
        "name": name,
        "description": description,
        "pre": state_to_json(pre),
        "block": raw.hex(),
    }
    if reject is None:
        post = _accepted(name, lambda: apply_block(pre, Block.from_bytes(raw)))
        vector["post"] = state_to_json(post)
    else:
        if reject.index is not None:
            raise SystemExit(f"vector {name}: a block's rejection has no transaction index")
        vector.update(post=None, error=reject.to_json())
    VECTORS[name] = vector


def _apply_txs(state: State, txs: list[bytes], ctx: ExecContext) -> State:
    for raw in txs:
        state = apply_tx(state, raw, ctx)
    return state


def _accepted(name: str, run: Callable[[], State]) -> State:
    """Guard for accept vectors: the generator stops if the implementation rejects one."""
    try:
        return run()
    except FedrayError as exc:
        raise SystemExit(f"vector {name}: expected to apply, rejected with {exc.code}") from exc


def tx_cases() -> None:
    s = base_state()
    big = 2**63
    cases: list[tuple[str, str, State, list[bytes], Reject | None]] = [
        (
            "transfer_ok",
            "a transfer moves the amount; the fee goes to the proposer",
            s,
            [tx(A, 0, Transfer(B.public_key, 500))],
            None,
        ),
        (
            "transfer_creates_account",
            "a transfer to an unknown key creates the account",
            s,
            [tx(A, 0, Transfer(STRANGER.public_key, 7))],
            None,
        ),
        (
            "transfer_self",
            "a transfer to oneself only costs the fee",
            s,
            [tx(A, 0, Transfer(A.public_key, 10))],
            None,
        ),
        (
            "transfer_sequence",
            "three transactions with consecutive nonces all apply",
            s,
            [tx(A, i, Transfer(B.public_key, 1 + i)) for i in range(3)],
            None,
        ),
        (
            "transfer_insufficient_balance",
            "amount above balance after the fee",
            s,
            [tx(A, 0, Transfer(B.public_key, 1_000_000))],
            Reject("insufficient_balance"),
        ),
        (
            "fee_unpayable",
            "balance cannot pay the fee",
            with_account(s, A.public_key, balance=10),
            [tx(A, 0, Transfer(B.public_key, 1))],
            Reject("insufficient_balance"),
        ),
        (
            "transfer_zero_amount",
            "zero transfers are refused",
            s,
            [raw_tx(A, 0, "transfer", {"to": B.public_key, "amount": 0})],
            Reject("bad_payload"),
        ),
        (
            "transfer_negative_amount",
            "negative integers are refused by the payload rules",
            s,
            [raw_tx(A, 0, "transfer", {"to": B.public_key, "amount": -5})],
            Reject("bad_payload"),
        ),
        (
            "transfer_bad_recipient",
            "recipient must be a 32-byte key",
            s,
            [raw_tx(A, 0, "transfer", {"to": b"\x01" * 31, "amount": 5})],
            Reject("bad_payload"),
        ),
        (
            "transfer_extra_field",
            "unknown payload fields are refused",
            s,
            [raw_tx(A, 0, "transfer", {"to": B.public_key, "amount": 5, "memo": "x"})],
            Reject("bad_payload"),
        ),
        (
            "transfer_missing_field",
            "missing payload fields are refused",
            s,
            [raw_tx(A, 0, "transfer", {"to": B.public_key})],
            Reject("bad_payload"),
        ),
        (
            "transfer_wrong_type",
            "an amount given as text is refused",
            s,
            [raw_tx(A, 0, "transfer", {"to": B.public_key, "amount": "5"})],
            Reject("bad_payload"),
        ),
        (
            "transfer_recipient_overflow",
            "a credit past 2**64-1 is refused and fully undone",
            with_account(s, B.public_key, balance=UINT64_MAX - 10),
            [tx(A, 0, Transfer(B.public_key, 100))],
            Reject("integer_overflow"),
        ),
        (
            "nonce_replay",
            "a used nonce is a replay",
            s,
            [tx(A, 0, Transfer(B.public_key, 1)), tx(A, 0, Transfer(B.public_key, 2))],
            Reject("nonce_replay", index=1),
        ),
        (
            "nonce_replay_identical",
            "the identical transaction twice is a replay",
            s,
            [tx(A, 0, Transfer(B.public_key, 1))] * 2,
            Reject("nonce_replay", index=1),
        ),
        (
            "nonce_gap",
            "a nonce that skips ahead is refused",
            s,
            [tx(A, 1, Transfer(B.public_key, 1))],
            Reject("nonce_gap"),
        ),
        (
            "wrong_chain_id",
            "a transaction signed for another chain",
            s,
            [raw_tx(A, 0, "transfer", {"to": B.public_key, "amount": 1}, chain="other-chain")],
            Reject("wrong_chain_id"),
        ),
        (
            "bad_signature_flipped",
            "one flipped signature bit",
            s,
            [_flip_last_byte(tx(A, 0, Transfer(B.public_key, 1)))],
            Reject("bad_signature"),
        ),
        (
            "bad_signature_other_signer",
            "signed by a key other than the sender",
            s,
            [raw_tx(A, 0, "transfer", {"to": B.public_key, "amount": 1}, signer=B)],
            Reject("bad_signature"),
        ),
        (
            "unknown_kind",
            "a kind nobody registered",
            s,
            [raw_tx(A, 0, "mint", {"amount": 1})],
            Reject("unknown_kind"),
        ),
        (
            "malformed_truncated",
            "truncated wire bytes",
            s,
            [tx(A, 0, Transfer(B.public_key, 1))[:-3]],
            Reject("malformed"),
        ),
        (
            "malformed_trailing",
            "bytes after the transaction",
            s,
            [tx(A, 0, Transfer(B.public_key, 1)) + b"\x00"],
            Reject("malformed"),
        ),
        (
            "malformed_not_array",
            "a map where the envelope array belongs",
            s,
            [encode({"kind": "transfer"})],
            Reject("malformed"),
        ),
        (
            "malformed_non_canonical_int",
            "a nonce in a longer-than-shortest encoding",
            s,
            [_non_canonical_nonce(tx(A, 0, Transfer(B.public_key, 1)))],
            Reject("malformed"),
        ),
        (
            "malformed_colliding_keys",
            "map keys 0 and false decode to one value (a second encoding of the same map)",
            s,
            [_with_colliding_keys(raw_tx(A, 0, "transfer", {0: 2}))],
            Reject("malformed"),
        ),
        (
            "malformed_float",
            "a float inside the payload",
            s,
            [_with_float_amount(tx(A, 0, Transfer(B.public_key, 1)))],
            Reject("malformed"),
        ),
        (
            "oversized",
            "a transaction above max_tx_bytes",
            s,
            [raw_tx(A, 0, "transfer", {"to": B.public_key, "amount": 1, "pad": b"x" * 5000})],
            Reject("oversized"),
        ),
        (
            "out_of_gas",
            "gas limit below the transaction's cost",
            s,
            [tx(A, 0, Transfer(B.public_key, 1), gas_limit=100)],
            Reject("out_of_gas"),
        ),
        (
            "unknown_sender",
            "a sender without an account",
            s,
            [tx(STRANGER, 0, Transfer(B.public_key, 1))],
            Reject("unknown_account"),
        ),
        (
            "jailed_sender",
            "a jailed account may not act",
            with_account(s, A.public_key, jailed_until=50),
            [tx(A, 0, Transfer(B.public_key, 1))],
            Reject("jailed"),
        ),
        (
            "banned_sender",
            "a banned account may not act",
            with_account(s, A.public_key, banned=True),
            [tx(A, 0, Transfer(B.public_key, 1))],
            Reject("jailed"),
        ),
        (
            "jailed_after_period",
            "jail lasts until an unjail transaction, not just a height",
            with_account(s, A.public_key, jailed_until=1),
            [tx(A, 0, Transfer(B.public_key, 1))],
            Reject("jailed"),
        ),
        ("stake_ok", "stake moves balance to stake", s, [tx(A, 0, Stake(300))], None),
        (
            "stake_insufficient_balance",
            "cannot stake more than the balance",
            s,
            [tx(A, 0, Stake(2_000_000))],
            Reject("insufficient_balance"),
        ),
        (
            "stake_zero",
            "zero stake is refused",
            s,
            [raw_tx(A, 0, "stake", {"amount": 0})],
            Reject("bad_payload"),
        ),
        (
            "stake_overflow",
            "stake past 2**64-1 is refused",
            with_account(s, A.public_key, stake=UINT64_MAX - 5, balance=big),
            [tx(A, 0, Stake(100))],
            Reject("integer_overflow"),
        ),
        (
            "unstake_ok",
            "unstake moves stake back to balance",
            with_account(s, A.public_key, stake=500),
            [tx(A, 0, Unstake(200))],
            None,
        ),
        (
            "unstake_too_much",
            "cannot unstake more than staked",
            with_account(s, A.public_key, stake=50),
            [tx(A, 0, Unstake(200))],
            Reject("insufficient_stake"),
        ),
        (
            "unstake_zero",
            "zero unstake is refused",
            s,
            [raw_tx(A, 0, "unstake", {"amount": 0})],
            Reject("bad_payload"),
        ),
        (
            "register_client_ok",
            "stake the minimum, then register as a client",
            s,
            [tx(A, 0, Stake(100)), tx(A, 1, Register("client"))],
            None,
        ),
        (
            "register_client_below_min",
            "registration without the minimum stake is refused",
            s,
            [tx(A, 0, Stake(99)), tx(A, 1, Register("client"))],
            Reject("insufficient_stake", index=1),
        ),
        (
            "register_validator_ok",
            "stake the validator minimum, then register",
            s,
            [tx(A, 0, Stake(1000)), tx(A, 1, Register("validator"))],
            None,
        ),
        (
            "register_validator_below_min",
            "validator minimum applies",
            s,
            [tx(A, 0, Stake(999)), tx(A, 1, Register("validator"))],
            Reject("insufficient_stake", index=1),
        ),
        (
            "register_twice",
            "registering a role twice is refused",
            s,
            [tx(A, 0, Stake(100)), tx(A, 1, Register("client")), tx(A, 2, Register("client"))],
            Reject("registration", index=2),
        ),
        (
            "register_unknown_role",
            "roles are client or validator",
            s,
            [raw_tx(A, 0, "register", {"role": "miner"})],
            Reject("bad_payload"),
        ),
        (
            "zero_gas_price",
            "with gas price 0 a transaction is free",
            dataclasses.replace(s, params=Params(gas_price=0)),
            [tx(A, 0, Transfer(B.public_key, 5))],
            None,
        ),
    ]
    for name, description, pre, txs, reject in cases:
        tx_vector(name, description, pre, txs, CTX, reject)


def _flip_last_byte(raw: bytes) -> bytes:
    return raw[:-1] + bytes([raw[-1] ^ 0x01])


def _non_canonical_nonce(raw: bytes) -> bytes:
    # Nonce 0 is encoded as 0x00; 0x18 0x00 is the same value in a non-shortest form.
    stx = SignedTx.decode(raw)
    prefix = encode([stx.tx.chain_id, stx.tx.sender])[1:]  # array items before the nonce
    head = bytes([raw[0]])
    assert raw[1 : 1 + len(prefix)] == prefix and raw[1 + len(prefix)] == 0
    return head + prefix + b"\x18\x00" + raw[2 + len(prefix) :]


def _with_colliding_keys(raw: bytes) -> bytes:
    # The payload {0: 2} (a1 00 02) becomes {0: 1, false: 2} (a2 00 01 f4 02), which a decoder
    # that lets false overwrite 0 reads back as {0: 2}.
    assert raw.count(bytes.fromhex("a10002")) == 1
    return raw.replace(bytes.fromhex("a10002"), bytes.fromhex("a20001f402"))


def _with_float_amount(raw: bytes) -> bytes:
    # Replace the amount (1 = 0x01 after the "amount" key) with a half-float 1.0 (0xf9 0x3c00).
    marker = encode("amount") + b"\x01"
    assert marker in raw
    return raw.replace(marker, encode("amount") + b"\xf9\x3c\x00")


def block_cases() -> None:
    chain = DevChain(GENESIS, VKEYS)
    pre1 = chain.state
    b1 = chain.propose([tx(A, 0, Transfer(B.public_key, 10))])
    block_vector("block_ok", "a block with one transfer at height 1", pre1, b1)
    chain.commit(b1)
    pre = chain.state
    good = chain.propose([tx(A, 1, Transfer(B.public_key, 10))])
    block_vector("block_ok_height2", "height 2 carries the certificate of block 1", pre, good)

    def variant(name: str, description: str, reject: Reject | None, **header_changes: Any) -> None:
        header = dataclasses.replace(good.header, **header_changes)
        block_vector(name, description, pre, Block(header, good.txs, good.last_commit), reject)

    variant(
        "block_wrong_height", "height must be the next one", block_reject("invalid_block"), height=3
    )
    variant(
        "block_bad_prev_hash",
        "hash link to the previous block",
        block_reject("invalid_block"),
        prev_hash=b"\x11" * 32,
    )
    variant(
        "block_bad_state_root",
        "state root of the previous block",
        block_reject("invalid_block"),
        state_root=b"\x22" * 32,
    )
    variant(
        "block_time_not_increasing",
        "time must grow",
        block_reject("block_time"),
        time=pre.last_block_time,
    )
    step = pre.params.max_block_time_step_ms
    variant(
        "block_time_beyond_step",
        "time may grow by at most max_block_time_step_ms",
        block_reject("block_time"),
        time=pre.last_block_time + step + 1,
    )
    variant(
        "block_time_overflow",
        "a Byzantine proposer's time of 2**64-1 (the next block could not exceed it)",
        block_reject("block_time"),
        time=UINT64_MAX,
    )
    variant(
        "block_time_at_step",
        "time may grow by exactly max_block_time_step_ms",
        None,
        time=pre.last_block_time + step,
    )
    proof = good.header.vrf_proof
    variant(
        "block_vrf_proof_flipped",
        "the VRF proof must verify (one bit of s flipped)",
        block_reject("bad_randomness"),
        vrf_proof=proof[:-1] + bytes([proof[-1] ^ 0x01]),
    )
    variant(
        "block_vrf_proof_other_validator",
        "a valid proof by another validator is not the proposer's",
        block_reject("bad_randomness"),
        vrf_proof=prove_next(VKEYS[2], pre),
    )
    variant(
        "block_vrf_proof_replayed",
        "the proof of the previous height does not prove this one",
        block_reject("bad_randomness"),
        vrf_proof=b1.header.vrf_proof,
    )
    variant(
        "block_vrf_proof_missing",
        "a block must carry a proof",
        block_reject("bad_randomness"),
        vrf_proof=b"",
    )
    variant(
        "block_wrong_chain",
        "block for another chain",
        block_reject("wrong_chain_id"),
        chain_id="other",
    )
    variant(
        "block_bad_tx_root",
        "tx root must match the body",
        block_reject("invalid_block"),
        tx_root=b"\x33" * 32,
    )
    variant(
        "block_proposer_not_validator",
        "proposer must be a validator",
        block_reject("invalid_block"),
        proposer=A.public_key,
    )
    variant(
        "block_wrong_validator_set",
        "block names another validator set",
        block_reject("invalid_block"),
        validators_hash=b"\x44" * 32,
    )

    def body(
        txs: list[bytes], commit: Any = "same", evidence: tuple[bytes, ...] = (), state: State = pre
    ) -> Block:
        last = good.last_commit if commit == "same" else commit
        return make_block(
            CHAIN,
            state.height + 1,
            state.last_block_time + 1000,
            state.last_block_hash,
            state.root(),
            PROPOSER,
            state.validators,
            txs,
            last,
            evidence,
            prove_next(VKEYS[0], state),
        )

    cases: list[tuple[str, str, Block | bytes, Reject | None]] = [
        (
            "block_missing_last_commit",
            "height 2 must carry block 1's certificate",
            body([], commit=None),
            block_reject("invalid_block"),
        ),
        (
            "block_commit_two_of_four",
            "2 of 4 equal-power signers is not more than 2/3",
            body([], commit=certify(chain.blocks[0], VKEYS[:2], CHAIN)),
            block_reject("bad_certificate"),
        ),
        (
            "block_commit_three_of_four",
            "3 of 4 equal-power signers is enough",
            body([], commit=certify(chain.blocks[0], VKEYS[:3], CHAIN)),
            None,
        ),
        (
            "block_commit_bad_signature",
            "a certificate signed for another chain",
            body([], commit=certify(chain.blocks[0], VKEYS, "other")),
            block_reject("bad_certificate"),
        ),
        (
            "block_commit_non_validator",
            "a signer outside the validator set",
            body([], commit=certify(chain.blocks[0], VKEYS[:3] + [A], CHAIN)),
            block_reject("bad_certificate"),
        ),
        (
            "block_commit_wrong_block",
            "a certificate for another block",
            body([], commit=certify(good, VKEYS, CHAIN)),
            block_reject("bad_certificate"),
        ),
        (
            "block_invalid_tx",
            "one invalid transaction rejects the block",
            body([tx(A, 1, Transfer(B.public_key, 1)), tx(A, 5, Transfer(B.public_key, 1))]),
            block_reject("nonce_gap"),
        ),
        (
            "block_duplicate_tx",
            "the same transaction twice",
            body([tx(A, 1, Transfer(B.public_key, 1))] * 2),
            block_reject("nonce_replay"),
        ),
        ("block_malformed", "bytes that are not a block", good.raw[:-7], block_reject("malformed")),
        (
            "block_register_validator",
            "a new validator joins the set after the block",
            body([tx(A, 1, Stake(1000)), tx(A, 2, Register("validator"))]),
            None,
        ),
    ]
    for name, description, blk, reject in cases:
        block_vector(name, description, pre, blk, reject)

    # Block limits with tightened parameters.
    tight = dataclasses.replace(pre, params=dataclasses.replace(pre.params, max_block_txs=2))
    blk = body([tx(A, 1 + i, Transfer(B.public_key, 1)) for i in range(3)], state=tight)
    block_vector(
        "block_too_many_txs",
        "more transactions than max_block_txs",
        tight,
        blk,
        block_reject("oversized"),
    )
    low_gas = dataclasses.replace(pre, params=dataclasses.replace(pre.params, block_gas_limit=5000))
    blk = body([tx(A, 1 + i, Transfer(B.public_key, 1)) for i in range(3)], state=low_gas)
    block_vector(
        "block_gas_limit",
        "transactions above the block gas limit",
        low_gas,
        blk,
        block_reject("out_of_gas"),
    )

    # Equivocation evidence.
    v = VKEYS[1]
    vote_a = Vote(PREVOTE, 1, 0, b"\x01" * 32, v.public_key).signed(v, CHAIN)
    vote_b = Vote(PREVOTE, 1, 0, b"\x02" * 32, v.public_key).signed(v, CHAIN)
    ev = Evidence.of(vote_a, vote_b).to_bytes()
    block_vector(
        "block_evidence_ok",
        "a double prevote is recorded as evidence",
        pre,
        body([], evidence=(ev,)),
    )
    same = Evidence.of(vote_a, vote_a)
    block_vector(
        "block_evidence_no_conflict",
        "two identical votes are no evidence",
        pre,
        body([], evidence=(same.to_bytes(),)),
        block_reject("bad_evidence"),
    )
    other_type = Vote(PRECOMMIT, 1, 0, b"\x02" * 32, v.public_key).signed(v, CHAIN)
    block_vector(
        "block_evidence_different_slots",
        "a prevote and a precommit do not conflict",
        pre,
        body([], evidence=(Evidence.of(vote_a, other_type).to_bytes(),)),
        block_reject("bad_evidence"),
    )
    block_vector(
        "block_evidence_twice",
        "the same evidence twice in one block",
        pre,
        body([], evidence=(ev, ev)),
        block_reject("bad_evidence"),
    )
    forged = Vote(PREVOTE, 1, 0, b"\x02" * 32, v.public_key, vote_a.signature)
    block_vector(
        "block_evidence_forged",
        "evidence with a forged signature",
        pre,
        body([], evidence=(Evidence.of(vote_a, forged).to_bytes(),)),
        block_reject("bad_evidence"),
    )


def unbonding_cases() -> None:
    """Unstaked tokens unbond: not spendable, still slashable, released at the period's end."""
    s = base_state()
    v = VKEYS[1]
    stake = s.account(v.public_key).stake
    balance = s.account(v.public_key).balance
    tx_vector(
        "unstake_then_spend",
        "unstaked tokens are unbonding, not in the balance",
        s,
        [tx(v, 0, Unstake(stake)), tx(v, 1, Transfer(A.public_key, balance))],
        reject=Reject("insufficient_balance", index=1),
    )

    params = dataclasses.replace(GENESIS.params, unbonding_blocks=2)
    chain = DevChain(dataclasses.replace(GENESIS, params=params), VKEYS)
    voter = VKEYS[3]
    vote_a = Vote(PREVOTE, 1, 0, b"\x01" * 32, voter.public_key).signed(voter, CHAIN)
    vote_b = Vote(PREVOTE, 1, 0, b"\x02" * 32, voter.public_key).signed(voter, CHAIN)
    chain.advance()  # block 1: the double prevote happens
    chain.advance([tx(voter, 0, Unstake(5_000))])  # block 2: half unbonds until the end of 4
    pre = chain.state
    block = chain.propose([], evidence=[Evidence.of(vote_a, vote_b).to_bytes()])
    block_vector(
        "block_evidence_slashes_unbonding",
        "evidence landing after an unstake burns the unbonding tokens too",
        pre,
        block,
    )
    chain.commit(block)
    pre = chain.state
    block_vector(
        "block_unbonding_released",
        "unbonding tokens reach the balance at the end of the block where the period ends",
        pre,
        chain.propose([]),
    )


def round_cases() -> None:
    """Update transactions against an open round (no aggregation: rounds close in end-of-block)."""
    from fedray.core.contracts.rounds import Skip, Update, genesis_rounds
    from fedray.core.state import GenesisAccount

    clients = [key_from_seed(f"vectors/client/{i}".encode()) for i in range(5)]
    accounts = GENESIS.accounts + tuple(
        GenesisAccount(k.public_key, balance=10**6, stake=100, is_client=True) for k in clients
    )
    params = Params(fl_clients_per_round=3, fl_round_deadline=4, fl_round_timeout_ms=60_000)
    genesis = dataclasses.replace(
        GENESIS,
        accounts=accounts,
        params=params,
        sections={"rounds": genesis_rounds(b"\x07" * 32, 1024)},
    )
    chain = DevChain(genesis, VKEYS)
    chain.advance()  # block 1 opens round 0 and selects 3 of the 5 clients
    pre = chain.state
    rounds = pre.section("rounds")
    by_pub = {k.public_key: k for k in clients}
    chosen = [by_pub[k] for k in rounds.selected]
    outsider = next(k for k in clients if k.public_key not in rounds.selected)
    ctx = ExecContext(height=2, time=pre.last_block_time + 1000, proposer=PROPOSER)
    late = ExecContext(height=rounds.deadline + 1, time=rounds.deadline_ms + 1, proposer=PROPOSER)
    # past the deadline's height but within its time budget: the round is still open
    slow = ExecContext(
        height=rounds.deadline + 1, time=pre.last_block_time + 1000, proposer=PROPOSER
    )
    h = [bytes([i]) * 32 for i in range(1, 6)]
    u = chosen[0]
    cases: list[tuple[str, str, State, list[bytes], Reject | None, ExecContext]] = [
        (
            "update_ok",
            "a selected client submits its update for the open round",
            pre,
            [tx(u, 0, Update(0, h[0], 50, 1024))],
            None,
            ctx,
        ),
        (
            "update_all_selected",
            "every selected client submits once",
            pre,
            [tx(c, 0, Update(0, h[i], 50, 1024)) for i, c in enumerate(chosen)],
            None,
            ctx,
        ),
        (
            "update_wrong_round",
            "an update for a round that is not open",
            pre,
            [tx(u, 0, Update(1, h[0], 50, 1024))],
            Reject("round_closed"),
            ctx,
        ),
        (
            "update_after_deadline",
            "an update after the round's deadline",
            pre,
            [tx(u, 0, Update(0, h[0], 50, 1024))],
            Reject("round_closed"),
            late,
        ),
        (
            "update_within_time_budget",
            "an update after the deadline's height but within fl_round_timeout_ms of block time",
            pre,
            [tx(u, 0, Update(0, h[0], 50, 1024))],
            None,
            slow,
        ),
        (
            "skip_ok",
            "a selected client declares a missed update",
            pre,
            [tx(u, 0, Skip(0))],
            None,
            ctx,
        ),
        (
            "skip_after_update",
            "a client that submitted its update cannot also skip",
            pre,
            [tx(u, 0, Update(0, h[0], 50, 1024)), tx(u, 1, Skip(0))],
            Reject("duplicate_update", index=1),
            ctx,
        ),
        (
            "update_after_skip",
            "a client that skipped cannot also submit an update",
            pre,
            [tx(u, 0, Skip(0)), tx(u, 1, Update(0, h[0], 50, 1024))],
            Reject("duplicate_update", index=1),
            ctx,
        ),
        (
            "skip_not_selected",
            "only selected clients may skip",
            pre,
            [tx(outsider, 0, Skip(0))],
            Reject("not_selected"),
            ctx,
        ),
        (
            "skip_after_deadline",
            "a skip after the round's deadline",
            pre,
            [tx(u, 0, Skip(0))],
            Reject("round_closed"),
            late,
        ),
        (
            "update_not_selected",
            "a registered client that was not selected",
            pre,
            [tx(outsider, 0, Update(0, h[0], 50, 1024))],
            Reject("not_selected"),
            ctx,
        ),
        (
            "update_twice",
            "one update per client per round",
            pre,
            [tx(u, 0, Update(0, h[0], 50, 1024)), tx(u, 1, Update(0, h[1], 50, 1024))],
            Reject("duplicate_update", index=1),
            ctx,
        ),
        (
            "update_copied_payload",
            "a second client submitting the same payload hash is not counted "
            "and loses slash_copy_bps of its stake",
            pre,
            [
                tx(chosen[0], 0, Update(0, h[0], 50, 1024)),
                tx(chosen[1], 0, Update(0, h[0], 50, 1024)),
            ],
            None,
            ctx,
        ),
        (
            "update_wrong_size",
            "the declared size must be the model's",
            pre,
            [tx(u, 0, Update(0, h[0], 50, 1000))],
            Reject("update_size"),
            ctx,
        ),
        (
            "update_too_many_samples",
            "sample counts above fl_max_samples",
            pre,
            [tx(u, 0, Update(0, h[0], 10**7, 1024))],
            Reject("update_size"),
            ctx,
        ),
        (
            "update_zero_samples",
            "zero samples is refused",
            pre,
            [
                raw_tx(
                    u, 0, "update", {"round": 0, "payload_hash": h[0], "n_samples": 0, "size": 1024}
                )
            ],
            Reject("bad_payload"),
            ctx,
        ),
        (
            "update_short_hash",
            "the payload hash is a 32-byte digest",
            pre,
            [
                raw_tx(
                    u,
                    0,
                    "update",
                    {"round": 0, "payload_hash": b"\x01" * 31, "n_samples": 5, "size": 1024},
                )
            ],
            Reject("bad_payload"),
            ctx,
        ),
    ]
    for name, description, state, txs, reject, c in cases:
        tx_vector(name, description, state, txs, c, reject)


def governance_cases() -> None:
    """Governance transactions (propose, deposit, vote) and, as blocks, the tally outcomes."""
    from fedray.core.contracts.governance import Deposit as GovDeposit
    from fedray.core.contracts.governance import Propose
    from fedray.core.contracts.governance import Vote as GovVote

    s = base_state()
    v0, v1, v2, v3 = VKEYS

    def change(key: str, value: str, deposit: int = 10_000) -> Propose:
        return Propose("param_change", deposit, param_key=key, param_value=value)

    def at(height: int) -> ExecContext:
        return ExecContext(height, CTX.time + 1000 * (height - 1), PROPOSER)

    def propose_map(**fields: Any) -> dict[str, Any]:
        base = {
            "proposal_kind": "param_change",
            "deposit": 10_000,
            "expedited": False,
            "param_key": "",
            "param_value": "",
            "account": b"",
            "role": "",
            "model_hash": b"",
            "terms": "",
        }
        return {**base, **fields}

    epochs, low = change("fl_local_epochs", "3"), change("fl_local_epochs", "3", deposit=4_000)
    in_deposit = apply_tx(s, tx(A, 0, low), CTX)  # proposal 1: deposit period until height 51
    voting = apply_tx(s, tx(A, 0, epochs), CTX)  # proposal 1: voting from height 1 to 21
    cases: list[tuple[str, str, State, list[bytes], Reject | None, ExecContext]] = [
        (
            "gov_propose_deposit_period",
            "a deposit below gov_min_deposit opens the deposit period",
            s,
            [tx(A, 0, low)],
            None,
            CTX,
        ),
        (
            "gov_propose_starts_voting",
            "a deposit at the minimum starts voting, snapshotting stake",
            s,
            [tx(A, 0, epochs)],
            None,
            CTX,
        ),
        (
            "gov_propose_expedited",
            "an expedited proposal votes for gov_expedited_voting_period",
            s,
            [tx(A, 0, dataclasses.replace(epochs, expedited=True))],
            None,
            CTX,
        ),
        (
            "gov_propose_admit",
            "a proposal to admit a new account as a client",
            s,
            [tx(A, 0, Propose("admit", 10_000, account=STRANGER.public_key, role="client"))],
            None,
            CTX,
        ),
        (
            "gov_propose_ban",
            "a proposal to ban an account",
            s,
            [tx(A, 0, Propose("ban", 10_000, account=B.public_key))],
            None,
            CTX,
        ),
        (
            "gov_propose_model_release",
            "a proposal to release a model under agreed terms",
            s,
            [
                tx(
                    A,
                    0,
                    Propose(
                        "model_release",
                        10_000,
                        model_hash=b"\x5a" * 32,
                        terms="CC-BY-4.0, research use only",
                    ),
                )
            ],
            None,
            CTX,
        ),
        (
            "gov_propose_unknown_param",
            "a real parameter outside the whitelist",
            s,
            [tx(A, 0, change("max_block_txs", "10"))],
            Reject("unknown_param"),
            CTX,
        ),
        (
            "gov_propose_unknown_param_name",
            "a parameter that does not exist",
            s,
            [tx(A, 0, change("fl_magic", "1"))],
            Reject("unknown_param"),
            CTX,
        ),
        (
            "gov_propose_bad_value_range",
            "local epochs must be at least 1",
            s,
            [tx(A, 0, change("fl_local_epochs", "0"))],
            Reject("bad_param_value"),
            CTX,
        ),
        (
            "gov_propose_bad_value_text",
            "integers are plain decimal text",
            s,
            [tx(A, 0, change("fl_clients_per_round", "1e3"))],
            Reject("bad_param_value"),
            CTX,
        ),
        (
            "gov_propose_bad_value_bps",
            "a slash fraction above 10000 basis points",
            s,
            [tx(A, 0, change("slash_copy_bps", "10001"))],
            Reject("bad_param_value"),
            CTX,
        ),
        (
            "gov_propose_bad_value_learning_rate",
            "a learning rate is a positive decimal",
            s,
            [tx(A, 0, change("fl_learning_rate", "-0.1"))],
            Reject("bad_param_value"),
            CTX,
        ),
        (
            "gov_propose_bad_value_rule_config",
            "a rule config is a JSON object",
            s,
            [tx(A, 0, change("fl_rule_config", "[1, 2]"))],
            Reject("bad_param_value"),
            CTX,
        ),
        (
            "gov_propose_bad_value_pair",
            "an expedited period longer than the regular one",
            s,
            [tx(A, 0, change("gov_expedited_voting_period", "30"))],
            Reject("bad_param_value"),
            CTX,
        ),
        (
            "gov_propose_unknown_kind",
            "proposal kinds are param_change, admit, ban, model_release",
            s,
            [raw_tx(A, 0, "propose", propose_map(proposal_kind="mint"))],
            Reject("unknown_proposal_kind"),
            CTX,
        ),
        (
            "gov_propose_stray_field",
            "fields of another proposal kind must be empty",
            s,
            [
                raw_tx(
                    A,
                    0,
                    "propose",
                    propose_map(proposal_kind="ban", account=B.public_key, param_key="fl_rule"),
                )
            ],
            Reject("bad_payload"),
            CTX,
        ),
        (
            "gov_propose_zero_deposit",
            "a proposal carries a positive deposit",
            s,
            [
                raw_tx(
                    A,
                    0,
                    "propose",
                    propose_map(param_key="fl_local_epochs", param_value="2", deposit=0),
                )
            ],
            Reject("bad_payload"),
            CTX,
        ),
        (
            "gov_propose_bad_model_hash",
            "a model hash is a 32-byte digest",
            s,
            [
                raw_tx(
                    A,
                    0,
                    "propose",
                    propose_map(proposal_kind="model_release", model_hash=b"\x01" * 31, terms="x"),
                )
            ],
            Reject("bad_payload"),
            CTX,
        ),
        (
            "gov_propose_insufficient_balance",
            "the deposit must be covered by the balance",
            s,
            [tx(A, 0, change("fl_local_epochs", "3", deposit=2_000_000))],
            Reject("insufficient_balance"),
            CTX,
        ),
        (
            "gov_deposit_ok",
            "a deposit adds to the proposal's escrow",
            in_deposit,
            [tx(B, 0, GovDeposit(1, 2_000))],
            None,
            at(2),
        ),
        (
            "gov_deposit_starts_voting",
            "a deposit reaching the minimum starts voting",
            in_deposit,
            [tx(B, 0, GovDeposit(1, 6_000))],
            None,
            at(2),
        ),
        (
            "gov_deposit_unknown_proposal",
            "a deposit to a proposal that does not exist",
            in_deposit,
            [tx(B, 0, GovDeposit(2, 100))],
            Reject("unknown_proposal"),
            at(2),
        ),
        (
            "gov_deposit_after_period",
            "a deposit after the deposit period",
            in_deposit,
            [tx(B, 0, GovDeposit(1, 100))],
            Reject("deposit_closed"),
            at(52),
        ),
        (
            "gov_deposit_during_voting",
            "deposits are refused once voting started",
            voting,
            [tx(B, 0, GovDeposit(1, 100))],
            Reject("deposit_closed"),
            at(2),
        ),
        (
            "gov_deposit_insufficient_balance",
            "a deposit above the balance",
            in_deposit,
            [tx(B, 0, GovDeposit(1, 2_000_000))],
            Reject("insufficient_balance"),
            at(2),
        ),
        (
            "gov_deposit_zero",
            "a deposit is positive",
            in_deposit,
            [raw_tx(B, 0, "deposit", {"proposal_id": 1, "amount": 0})],
            Reject("bad_payload"),
            at(2),
        ),
        (
            "gov_vote_ok",
            "a staked validator votes yes with its snapshotted stake",
            voting,
            [tx(v1, 0, GovVote(1, "yes"))],
            None,
            at(2),
        ),
        (
            "gov_vote_every_option",
            "yes, no, abstain and veto each add their voter's power",
            voting,
            [
                tx(v, 0, GovVote(1, o))
                for v, o in zip(VKEYS, ("yes", "no", "abstain", "veto"), strict=True)
            ],
            None,
            at(2),
        ),
        (
            "gov_vote_at_period_end",
            "a vote at height voting_end still counts",
            voting,
            [tx(v1, 0, GovVote(1, "no"))],
            None,
            at(21),
        ),
        (
            "gov_vote_twice",
            "one vote per account",
            voting,
            [tx(v1, 0, GovVote(1, "yes")), tx(v1, 1, GovVote(1, "no"))],
            Reject("double_vote", index=1),
            at(2),
        ),
        (
            "gov_vote_after_period",
            "a vote after voting_end",
            voting,
            [tx(v1, 0, GovVote(1, "yes"))],
            Reject("voting_closed"),
            at(22),
        ),
        (
            "gov_vote_unstaked",
            "an account without stake at voting start has no vote",
            voting,
            [tx(B, 0, GovVote(1, "yes"))],
            Reject("no_voting_power"),
            at(2),
        ),
        (
            "gov_vote_staked_after_start",
            "stake added after voting started gives no vote",
            voting,
            [tx(B, 0, Stake(500)), tx(B, 1, GovVote(1, "yes"))],
            Reject("no_voting_power", index=1),
            at(2),
        ),
        (
            "gov_vote_in_deposit_period",
            "no votes before the deposit reaches the minimum",
            in_deposit,
            [tx(v1, 0, GovVote(1, "yes"))],
            Reject("voting_not_open"),
            at(2),
        ),
        (
            "gov_vote_bad_option",
            "options are yes, no, abstain, veto",
            voting,
            [raw_tx(v1, 0, "vote", {"proposal_id": 1, "option": "maybe"})],
            Reject("bad_payload"),
            at(2),
        ),
        (
            "gov_vote_unknown_proposal",
            "a vote on a proposal that does not exist",
            voting,
            [tx(v1, 0, GovVote(7, "yes"))],
            Reject("unknown_proposal"),
            at(2),
        ),
    ]
    for name, description, state, txs, reject, c in cases:
        tx_vector(name, description, state, txs, c, reject)

    # Tally outcomes as blocks: voting runs for 2 blocks, the deposit period for 2.
    params = dataclasses.replace(GENESIS.params, gov_voting_period=2, gov_deposit_period=2)
    genesis = dataclasses.replace(GENESIS, params=params)
    outcomes: list[tuple[str, str, Propose, tuple[str, ...]]] = [
        (
            "block_gov_passed_executes",
            "yes wins: refunded, and the parameter changes in the block that ends the vote",
            epochs,
            ("yes", "yes", "no"),
        ),
        (
            "block_gov_vetoed_burns",
            "a third of the votes cast are vetoes: the deposit is burned",
            epochs,
            ("yes", "veto"),
        ),
        (
            "block_gov_no_quorum",
            "one of four equal validators voting is below quorum: refunded",
            epochs,
            ("yes",),
        ),
        ("block_gov_expired", "the deposit period ends below the minimum: refunded", low, ()),
    ]
    for name, description, proposal, options in outcomes:
        chain = DevChain(genesis, VKEYS)
        chain.advance([tx(A, 0, proposal)])
        chain.advance([tx(v, 0, GovVote(1, o)) for v, o in zip(VKEYS, options, strict=False)])
        block_vector(name, description, chain.state, chain.propose([]))


def slashing_cases() -> None:
    """`unjail`, `payload_evidence`, and replayed payloads."""
    from fedray.core.contracts.rounds import Update, UpdateRecord, genesis_rounds
    from fedray.core.contracts.slashing import PayloadEvidence, Unjail, delivery_message
    from fedray.core.crypto import DOMAIN_PAYLOAD
    from fedray.core.state import GenesisAccount

    s = base_state()
    ctx5 = ExecContext(height=5, time=GENESIS.genesis_time + 5000, proposer=PROPOSER)
    jailed = with_account(s, A.public_key, jailed_until=5)
    cases: list[tuple[str, str, State, list[bytes], Reject | None, ExecContext]] = [
        (
            "unjail_ok",
            "a jailed account unjails once its jail period is over",
            jailed,
            [tx(A, 0, Unjail())],
            None,
            ctx5,
        ),
        (
            "unjail_too_early",
            "unjail before jailed_until",
            with_account(s, A.public_key, jailed_until=6),
            [tx(A, 0, Unjail())],
            Reject("not_jailed"),
            ctx5,
        ),
        (
            "unjail_not_jailed",
            "unjail of a free account",
            s,
            [tx(A, 0, Unjail())],
            Reject("not_jailed"),
            ctx5,
        ),
        (
            "unjail_banned",
            "bans are permanent",
            with_account(s, A.public_key, banned=True),
            [tx(A, 0, Unjail())],
            Reject("banned"),
            ctx5,
        ),
        (
            "unjail_extra_field",
            "unjail has no fields",
            jailed,
            [raw_tx(A, 0, "unjail", {"x": 1})],
            Reject("bad_payload"),
            ctx5,
        ),
    ]
    # A client, its signed update for round 0, and delivery statements.
    client = key_from_seed(b"vectors/slashing/client")
    accounts = GENESIS.accounts + (GenesisAccount(client.public_key, 10**6, 1000, is_client=True),)
    genesis = dataclasses.replace(
        GENESIS, accounts=accounts, sections={"rounds": genesis_rounds(b"\x07" * 32, 1024)}
    )
    pre = genesis.state()
    claimed, delivered = b"\x11" * 32, b"\x22" * 32
    update = make_tx(client, CHAIN, 0, Update(0, claimed, 10, 1024)).raw

    def signed(round_: int, digest_: bytes, key: Any = client) -> bytes:
        return key.sign(DOMAIN_PAYLOAD, CHAIN, delivery_message(round_, digest_))

    reporter = VKEYS[1]
    ctx = ExecContext(height=3, time=GENESIS.genesis_time + 3000, proposer=PROPOSER)
    cases += [
        (
            "payload_evidence_hash_mismatch",
            "the client signed one hash and delivered another: "
            "slash_invalid_payload_bps of its stake is burned",
            pre,
            [tx(reporter, 0, PayloadEvidence(update, delivered, signed(0, delivered)))],
            None,
            ctx,
        ),
        (
            "payload_evidence_twice",
            "the same misbehaviour is penalized once; the second report "
            "applies but burns nothing more",
            pre,
            [
                tx(reporter, 0, PayloadEvidence(update, delivered, signed(0, delivered))),
                tx(VKEYS[2], 0, PayloadEvidence(update, delivered, signed(0, delivered))),
            ],
            None,
            ctx,
        ),
        (
            "payload_evidence_unsigned_delivery",
            "a delivery statement not signed by the client",
            pre,
            [tx(reporter, 0, PayloadEvidence(update, delivered, signed(0, delivered, reporter)))],
            Reject("bad_payload_evidence"),
            ctx,
        ),
        (
            "payload_evidence_other_round",
            "the statement must be for the update's round",
            pre,
            [tx(reporter, 0, PayloadEvidence(update, delivered, signed(1, delivered)))],
            Reject("bad_payload_evidence"),
            ctx,
        ),
        (
            "payload_evidence_valid_payload",
            "same digest and no checker finding: nothing is proven",
            pre,
            [tx(reporter, 0, PayloadEvidence(update, claimed, signed(0, claimed)))],
            Reject("bad_payload_evidence"),
            ctx,
        ),
        (
            "payload_evidence_not_an_update",
            "the evidence must carry an update transaction",
            pre,
            [
                tx(
                    reporter,
                    0,
                    PayloadEvidence(
                        tx(A, 0, Transfer(B.public_key, 1)), delivered, signed(0, delivered)
                    ),
                )
            ],
            Reject("bad_payload_evidence"),
            ctx,
        ),
        (
            "payload_evidence_short_digest",
            "the delivered digest has 32 bytes",
            pre,
            [
                raw_tx(
                    reporter,
                    0,
                    "payload_evidence",
                    {"update_tx": update, "delivered_digest": b"\x01", "delivery_signature": b""},
                )
            ],
            Reject("bad_payload"),
            ctx,
        ),
    ]
    for name, description, state, txs, reject, c in cases:
        tx_vector(name, description, state, txs, c, reject)
    # A replayed payload: round 0's payload hash resubmitted in round 1 is refused and slashed.
    chain = DevChain(
        dataclasses.replace(
            genesis,
            params=Params(fl_clients_per_round=1, fl_round_deadline=3),
            sections={"rounds": genesis_rounds(b"\x07" * 32, 1024)},
        ),
        VKEYS,
    )
    chain.advance()  # opens round 0 with the only client
    env_free = chain.state.section("rounds")
    assert env_free.selected == (client.public_key,)
    while chain.state.section("rounds").round == 0:
        chain.advance()  # round 0 closes at its deadline without updates
    # an earlier round used `claimed` (another client's update, as a closed round records it)
    closed = chain.state.section("rounds")
    earlier = UpdateRecord(b"\x12" * 32, claimed, 10, 1024, b"\x13" * 32)
    first = dataclasses.replace(closed.results[0], updates=(earlier,))
    used = dataclasses.replace(
        closed, results=(first, *closed.results[1:]), used_payloads=frozenset({claimed})
    )
    replay_pre = dataclasses.replace(
        chain.state, sections=MappingProxyType({**chain.state.sections, "rounds": used})
    )
    rctx = ExecContext(
        height=replay_pre.height + 1, time=replay_pre.last_block_time + 1000, proposer=PROPOSER
    )
    tx_vector(
        "update_replayed_payload",
        "a payload hash used in an earlier round is refused and its sender slashed",
        replay_pre,
        [tx(client, 0, Update(1, claimed, 10, 1024))],
        rctx,
    )


GENERATORS: list[Callable[[], None]] = [
    tx_cases,
    block_cases,
    round_cases,
    governance_cases,
    slashing_cases,
    unbonding_cases,
]


def generate() -> dict[str, str]:
    """Vector name -> file text."""
    VECTORS.clear()
    for gen in GENERATORS:
        gen()
    return {name: json.dumps(v, indent=1, sort_keys=True) + "\n" for name, v in VECTORS.items()}


def main() -> None:
    files = generate()
    for old in HERE.glob("*.json"):
        old.unlink()
    for name, text in files.items():
        (HERE / f"{name}.json").write_text(text)
    print(f"wrote {len(files)} vectors to {HERE}")


if __name__ == "__main__":
    main()
