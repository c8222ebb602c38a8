"""The one error hierarchy of fedray.

Every rule that rejects input raises a `FedrayError` subclass whose name says which rule failed and
whose message says why, so callers can catch broadly (`FedrayError`) or narrowly (`NonceReplayError`)
and tests can assert the exact rule. `code` is a stable machine-readable name used in conformance
vectors, ingress logs and `fedray chain verify` output.

This module imports nothing from fedray, so every ring may import it.
"""

from __future__ import annotations


class FedrayError(Exception):
    """Root of every error fedray raises on purpose."""

    code = "fedray_error"


class DefinitionError(FedrayError):
    """fedray's own code is wired wrong (a name registered twice, a field type with no canonical
    form, an empty validator set handed to the proposer schedule): raised where the mistake is made,
    never by outside input."""

    code = "definition"


# --- encoding ---------------------------------------------------------------------------------
class EncodingError(FedrayError):
    """Bytes are not the canonical encoding of a value (malformed, non-canonical, trailing data)."""

    code = "malformed"


class IntegerOverflowError(EncodingError):
    """An integer falls outside the range a field or the encoding allows (uint64 for amounts)."""

    code = "integer_overflow"


class ArityError(EncodingError):
    """A record has the wrong number of fields, or a map misses or adds field names."""


class FieldTypeError(EncodingError):
    """A field holds the wrong type of value (text for bytes, a bool for an integer, a digest of
    the wrong size, an array where a record belongs)."""


class OrderError(EncodingError):
    """Set members or map keys are not strictly ascending: the value has another canonical form."""


# --- crypto -----------------------------------------------------------------------------------
class CryptoError(FedrayError):
    """Key material is unusable."""

    code = "crypto"


class KeyFileError(CryptoError):
    """A key file cannot be read: missing, wrong passphrase, wrong key type, unsafe permissions."""

    code = "key_file"


class SignatureError(FedrayError):
    """A signature does not verify for the claimed signer, domain and chain id."""

    code = "bad_signature"


# --- transactions -----------------------------------------------------------------------------
class TxError(FedrayError):
    """A transaction breaks a validity rule; the state is left unchanged."""

    code = "invalid_tx"


class ChainIdError(TxError):
    """A transaction, vote or block names another chain."""

    code = "wrong_chain_id"


class UnknownTxKindError(TxError):
    """The transaction kind is not in the registry."""

    code = "unknown_kind"


class PayloadError(TxError):
    """The kind's payload has missing, extra or mistyped fields."""

    code = "bad_payload"


class OversizedError(TxError):
    """The encoded transaction or block exceeds its size limit."""

    code = "oversized"


class NonceReplayError(TxError):
    """The nonce was already used by this sender (replay)."""

    code = "nonce_replay"


class NonceGapError(TxError):
    """The nonce skips ahead of the sender's next nonce."""

    code = "nonce_gap"


class GasError(TxError):
    """The gas limit is below the transaction's cost, or the block's gas limit is exceeded."""

    code = "out_of_gas"


class InsufficientBalanceError(TxError):
    """The sender's balance cannot cover the amount plus the fee."""

    code = "insufficient_balance"


class InsufficientStakeError(TxError):
    """The account's stake is below what the action needs (unstake too much, register below minimum)."""

    code = "insufficient_stake"


class UnknownAccountError(TxError):
    """The sender has no account in the state."""

    code = "unknown_account"


class JailedError(TxError):
    """The sender is jailed or banned and may not act."""

    code = "jailed"


class RegistrationError(TxError):
    """A registration breaks a rule (already registered, unknown role)."""

    code = "registration"


# --- blocks and certificates ------------------------------------------------------------------
class BlockError(FedrayError):
    """A block breaks a validity rule (header link, roots, proposer, one of its transactions)."""

    code = "invalid_block"


class BlockTimeError(BlockError):
    """A block's time does not grow, or grows by more than `max_block_time_step_ms`."""

    code = "block_time"


class RandomnessError(BlockError):
    """A block's VRF proof does not prove its proposer's output for the height."""

    code = "bad_randomness"


class CertificateError(BlockError):
    """A commit certificate does not carry >2/3 of voting power in valid precommits for the block."""

    code = "bad_certificate"


# --- storage ----------------------------------------------------------------------------------
class StorageError(FedrayError):
    """A store is missing, corrupt, or asked for something it does not hold."""

    code = "storage"


class BlobError(StorageError):
    """A blob is missing or its content does not match its hash."""

    code = "blob"


# --- config -----------------------------------------------------------------------------------
class ConfigError(FedrayError):
    """A configuration key is unknown or has the wrong type or value."""

    code = "config"


# --- tensor payloads (validated at trust boundaries in this order) -----------------------------
class PayloadValidationError(FedrayError):
    """A tensor payload from an untrusted party failed validation."""

    code = "invalid_payload"


class PayloadSizeError(PayloadValidationError):
    """The payload is larger than allowed (checked first, before parsing)."""

    code = "payload_size"


class PayloadHashError(PayloadValidationError):
    """The payload's digest differs from the hash that was signed."""

    code = "payload_hash"


class PayloadDtypeError(PayloadValidationError):
    """A tensor has the wrong dtype."""

    code = "payload_dtype"


class PayloadShapeError(PayloadValidationError):
    """Tensor names or shapes differ from the model's."""

    code = "payload_shape"


class PayloadNonFiniteError(PayloadValidationError):
    """A tensor holds NaN or infinity, or fixed-point values out of range."""

    code = "payload_non_finite"
