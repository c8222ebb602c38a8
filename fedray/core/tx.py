"""Signed transaction envelopes, their canonical bytes, and the registry of transaction kinds.

The envelope (chain id, sender public key, nonce, gas limit, kind, payload) never changes when a kind
is added: a kind is a `KindSpec` registered by the contract module that owns it, naming its payload
dataclass, its base gas and its handler. Payload dataclasses declare typed fields; `decode_payload`
checks names, types and ranges strictly, so a handler only ever sees well-formed input.

Gas: `gas_used = kind.base_gas + params.gas_per_byte * len(signed tx bytes)`; the fee
`gas_used * params.gas_price` moves from the sender to the block proposer (supply is conserved),
except for fee-exempt kinds whose volume the protocol itself bounds (`update`: one per selected
client per round).

Deliberately ignored here: state rules (nonce, balance): see `transition.py` and `contracts/`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from fedray.core.codec import from_canonical_map, to_canonical_map
from fedray.core.context import ExecContext
from fedray.core.crypto import DOMAIN_TX, PUBLIC_KEY_SIZE, SIGNATURE_SIZE, PrivateKey, verify
from fedray.core.encoding import decode, digest, encode
from fedray.core.journal import Journal
from fedray.errors import DefinitionError, EncodingError, PayloadError, UnknownTxKindError

MAX_KIND_LENGTH = 32
MAX_CHAIN_ID_LENGTH = 64
# Canonical heads of a 7-field array (a signed transaction) and a 6-field one (its signed body):
# each 0 encodes as one byte, so what precedes them is the head.
_HEAD_7 = encode([0] * 7)[:-7]
_HEAD_6 = encode([0] * 6)[:-6]


@dataclass(frozen=True)
class Tx:
    """The signed part of a transaction. `payload` is the kind's canonical field map."""

    chain_id: str
    sender: bytes
    nonce: int
    gas_limit: int
    kind: str
    payload: Mapping[str, Any]

    def body_bytes(self) -> bytes:
        return encode(
            [self.chain_id, self.sender, self.nonce, self.gas_limit, self.kind, dict(self.payload)]
        )

    def sign(self, key: PrivateKey) -> SignedTx:
        if key.public_key != self.sender:
            raise PayloadError("signing key does not match the transaction's sender")
        return SignedTx(self, key.sign(DOMAIN_TX, self.chain_id, self.body_bytes()))


@dataclass(frozen=True)
class SignedTx:
    """A transaction with its Ed25519 signature; `raw` is its canonical wire form, `hash` its id."""

    tx: Tx
    signature: bytes

    @cached_property
    def raw(self) -> bytes:
        t = self.tx
        return encode(
            [t.chain_id, t.sender, t.nonce, t.gas_limit, t.kind, dict(t.payload), self.signature]
        )

    @cached_property
    def hash(self) -> bytes:
        return digest(self.raw)

    @cached_property
    def body(self) -> bytes:
        """The bytes the signature covers, `tx.body_bytes()`, cut from `raw` rather than encoded
        again: `raw` is canonical (decode refuses any other form), so it is the array head, the
        six body fields' encodings, and the signature's; the body is the same with a six-array
        head. Re-encoding cost as much as verifying the signature."""
        raw, tail = self.raw, encode(self.signature)
        if raw.startswith(_HEAD_7) and raw.endswith(tail):
            return _HEAD_6 + raw[len(_HEAD_7) : len(raw) - len(tail)]
        return self.tx.body_bytes()  # unreachable for canonical bytes; kept as the definition

    def verify_signature(self) -> None:
        """Raise `SignatureError` unless the sender signed exactly this body on this chain."""
        verify(self.tx.sender, DOMAIN_TX, self.tx.chain_id, self.body, self.signature)

    @staticmethod
    def decode(raw: bytes) -> SignedTx:
        """Parse wire bytes strictly (shape and field types; not the signature or state rules)."""
        value = decode(raw)
        if not isinstance(value, list) or len(value) != 7:
            raise EncodingError("a signed transaction is an array of 7 fields")
        chain_id, sender, nonce, gas_limit, kind, payload, signature = value
        _expect(chain_id, str, "chain_id")
        _expect(kind, str, "kind")
        _expect(sender, bytes, "sender")
        _expect(signature, bytes, "signature")
        _expect(payload, dict, "payload")
        for name, number in (("nonce", nonce), ("gas_limit", gas_limit)):
            if not isinstance(number, int) or isinstance(number, bool) or number < 0:
                raise EncodingError(f"transaction field {name} must be a non-negative integer")
        if len(chain_id) > MAX_CHAIN_ID_LENGTH or len(kind) > MAX_KIND_LENGTH:
            raise EncodingError("chain id or kind too long")
        if len(sender) != PUBLIC_KEY_SIZE:
            raise EncodingError(f"sender must be a {PUBLIC_KEY_SIZE}-byte Ed25519 public key")
        if len(signature) != SIGNATURE_SIZE:
            raise EncodingError(f"signature must have {SIGNATURE_SIZE} bytes")
        stx = SignedTx(Tx(chain_id, sender, nonce, gas_limit, kind, payload), signature)
        # Cache the exact bytes: decode() refuses non-canonical input, so they equal encode().
        stx.__dict__["raw"] = bytes(raw)
        return stx


def _expect(value: Any, typ: type, name: str) -> None:
    if not isinstance(value, typ):
        raise EncodingError(f"transaction field {name} must be {typ.__name__}")


# --- payloads ---------------------------------------------------------------------------------
Handler = Callable[[Journal, SignedTx, Any, ExecContext], None]


@dataclass(frozen=True)
class KindSpec:
    """A registered transaction kind: its payload type, base gas, and state handler."""

    name: str
    payload_type: type
    base_gas: int
    handler: Handler
    allowed_when_jailed: bool = False  # e.g. `unjail`: the one thing a jailed account may do
    fee_exempt: bool = False  # gas still counts against the block limit, but costs no fee


_REGISTRY: dict[str, KindSpec] = {}


def register_kind(spec: KindSpec) -> KindSpec:
    """Add a kind; registering a different spec under a taken name is an error."""
    existing = _REGISTRY.get(spec.name)
    if existing is not None and existing != spec:
        raise DefinitionError(f"transaction kind {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def kind_spec(name: str) -> KindSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UnknownTxKindError(f"unknown transaction kind {name!r}{hint}") from None


def registered_kinds() -> tuple[str, ...]:
    return tuple(sorted(_REGISTRY))


def decode_payload(spec: KindSpec, payload: Mapping[str, Any]) -> Any:
    """Build `spec.payload_type` from a canonical map, refusing missing, extra or mistyped fields
    (int = uint64), then run its `validate` rules."""
    try:
        obj: Any = from_canonical_map(spec.payload_type, payload)
    except EncodingError as exc:
        raise PayloadError(f"{spec.name} payload: {exc}") from None
    validate = getattr(obj, "validate", None)
    if validate is not None:
        validate()
    return obj


def make_tx(
    key: PrivateKey,
    chain_id: str,
    nonce: int,
    payload: Any,
    gas_limit: int = 1_000_000,
    kind: str | None = None,
) -> SignedTx:
    """Sign a transaction whose kind is found from the payload's type (or given explicitly)."""
    if kind is None:
        matches = [s.name for s in _REGISTRY.values() if s.payload_type is type(payload)]
        if len(matches) != 1:
            raise UnknownTxKindError(f"no unique kind for payload type {type(payload).__name__}")
        kind = matches[0]
    tx = Tx(chain_id, key.public_key, nonce, gas_limit, kind, to_canonical_map(payload))
    return tx.sign(key)
