"""ECVRF-EDWARDS25519-SHA512-TAI (RFC 9381, suite 0x03): a verifiable random function over Ed25519
keys, built on libsodium's edwards25519 primitives (PyNaCl).

`prove(seed, alpha)` gives an 80-byte proof pi; `verify(public_key, alpha, pi)` returns the 64-byte
output beta, or raises `VrfError`. The output is a deterministic function of (key, alpha): only the
key's holder can compute it, anyone can check it, and the holder cannot choose it (RFC 9381 section
3: full uniqueness and pseudorandomness). The key is an Ed25519 key: the secret scalar and public
key come from the 32-byte seed as in RFC 8032 section 5.1.5, so a validator proves with its signing
key. Checked against RFC 9381 appendix B.3 (tests/unit/core/test_vrf.py).

Stricter than RFC 9381 on input only an attacker produces: the public key and Gamma must be canonical
encodings of points in the prime-order subgroup (libsodium's `is_valid_point`), which every honest key
and proof satisfies; RFC 9381 asks only that the key is not of small order. All validators run this
code, so the stricter rule is the same rule for everyone.

Deliberately ignored: the Elligator2 suite (0x04), batch verification, and keeping secret scalars
out of Python's memory (the signing key is there anyway).
"""

from __future__ import annotations

import hashlib

import nacl.bindings as sodium
import nacl.exceptions

from fedray.errors import CryptoError

SUITE = b"\x03"  # ECVRF-EDWARDS25519-SHA512-TAI
PROOF_SIZE = 80  # Gamma (32) || c (16) || s (32)
OUTPUT_SIZE = 64  # SHA-512
POINT_SIZE = 32
CHALLENGE_SIZE = 16
COFACTOR = 8

P = 2**255 - 19  # the field
L = 2**252 + 27742317777372353535851937790883648493  # the prime order of the base point
D = (-121665 * pow(121666, P - 2, P)) % P  # the curve constant
SQRT_M1 = pow(2, (P - 1) // 4, P)


class VrfError(CryptoError):
    """A VRF proof does not verify for the claimed key and input (or cannot be produced)."""

    code = "bad_vrf_proof"


def _sha512(*parts: bytes) -> bytes:
    return hashlib.sha512(b"".join(parts)).digest()


def secret_scalar(seed: bytes) -> bytes:
    """The clamped secret scalar x of an Ed25519 seed (RFC 8032 section 5.1.5), 32 bytes LE."""
    h = bytearray(_sha512(seed)[:32])
    h[0] &= 248
    h[31] &= 127
    h[31] |= 64
    return bytes(h)


def public_key(seed: bytes) -> bytes:
    """The Ed25519 public key of `seed` (x times the base point)."""
    return bytes(sodium.crypto_sign_seed_keypair(seed)[0])


def is_point(encoded: bytes) -> bool:
    """Whether 32 bytes decode to a curve point of any order (RFC 8032 section 5.1.3). Python,
    because libsodium's decoding is not exposed and try-and-increment must know exactly which
    candidates decode."""
    if len(encoded) != POINT_SIZE:
        return False
    y = int.from_bytes(encoded, "little") & ((1 << 255) - 1)
    sign = encoded[31] >> 7
    if y >= P:
        return False
    u, v = (y * y - 1) % P, (D * y * y + 1) % P
    x = (u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P)) % P
    if (v * x * x - u) % P != 0:
        if (v * x * x + u) % P != 0:
            return False
        x = (x * SQRT_M1) % P
    return not (x == 0 and sign == 1)


def _times_cofactor(point: bytes) -> bytes:
    """8 * point, by three doublings: libsodium's `add` accepts a point of any order (its scalar
    multiplication insists on the prime-order subgroup, where a TAI candidate rarely lies)."""
    for _ in range(3):
        point = sodium.crypto_core_ed25519_add(point, point)
    return point


def encode_to_curve(public: bytes, alpha: bytes) -> bytes:
    """H = ECVRF_encode_to_curve_try_and_increment(PK, alpha) (RFC 9381 section 5.4.1.1)."""
    for ctr in range(256):
        candidate = _sha512(SUITE, b"\x01", public, alpha, bytes([ctr]), b"\x00")[:POINT_SIZE]
        if is_point(candidate):
            return _times_cofactor(candidate)
    raise VrfError("try-and-increment found no curve point in 256 tries")


def nonce(seed: bytes, h_point: bytes) -> bytes:
    """k (RFC 9381 section 5.4.2.2, as RFC 8032): SHA-512(second half of SHA-512(SK) || H)."""
    return bytes(sodium.crypto_core_ed25519_scalar_reduce(_sha512(_sha512(seed)[32:], h_point)))


def _challenge(*points: bytes) -> bytes:
    """c (RFC 9381 section 5.4.3): the first 16 bytes of the hash of the five points."""
    return _sha512(SUITE, b"\x02", *points, b"\x00")[:CHALLENGE_SIZE]


def _scalar32(value: bytes) -> bytes:
    return value + bytes(32 - len(value))


def prove(seed: bytes, alpha: bytes) -> bytes:
    """pi = ECVRF_prove(SK, alpha) (RFC 9381 section 5.1), deterministic."""
    public = public_key(seed)
    x = bytes(sodium.crypto_core_ed25519_scalar_reduce(secret_scalar(seed) + bytes(32)))
    h_point = encode_to_curve(public, alpha)
    k = nonce(seed, h_point)
    try:
        gamma = sodium.crypto_scalarmult_ed25519_noclamp(x, h_point)
        u = sodium.crypto_scalarmult_ed25519_base_noclamp(k)
        v = sodium.crypto_scalarmult_ed25519_noclamp(k, h_point)
    except nacl.exceptions.RuntimeError:  # an identity point: probability about 2**-250
        raise VrfError("degenerate VRF input; no proof exists") from None
    c = _challenge(public, h_point, gamma, u, v)
    s = sodium.crypto_core_ed25519_scalar_add(
        k, sodium.crypto_core_ed25519_scalar_mul(_scalar32(c), x)
    )
    return bytes(gamma + c + s)


def proof_to_hash(pi: bytes) -> bytes:
    """beta = ECVRF_proof_to_hash(pi) (RFC 9381 section 5.2); only meaningful once verified."""
    return _sha512(SUITE, b"\x03", _times_cofactor(pi[:POINT_SIZE]), b"\x00")


def verify(public: bytes, alpha: bytes, pi: bytes) -> bytes:
    """beta if `pi` proves `public`'s output on `alpha` (RFC 9381 section 5.3), else `VrfError`."""
    if len(public) != POINT_SIZE or not sodium.crypto_core_ed25519_is_valid_point(public):
        raise VrfError("the VRF public key is not a valid prime-order point")
    if len(pi) != PROOF_SIZE:
        raise VrfError(f"a VRF proof has {PROOF_SIZE} bytes, got {len(pi)}")
    gamma, c, s = pi[:POINT_SIZE], pi[POINT_SIZE:48], pi[48:]
    if not sodium.crypto_core_ed25519_is_valid_point(gamma):
        raise VrfError("the proof's Gamma is not a valid prime-order point")
    if int.from_bytes(s, "little") >= L:
        raise VrfError("the proof's s is not reduced")
    h_point = encode_to_curve(public, alpha)
    try:
        u = sodium.crypto_core_ed25519_sub(
            sodium.crypto_scalarmult_ed25519_base_noclamp(s),
            sodium.crypto_scalarmult_ed25519_noclamp(_scalar32(c), public),
        )
        v = sodium.crypto_core_ed25519_sub(
            sodium.crypto_scalarmult_ed25519_noclamp(s, h_point),
            sodium.crypto_scalarmult_ed25519_noclamp(_scalar32(c), gamma),
        )
    except nacl.exceptions.RuntimeError:  # a zero scalar or an identity product
        raise VrfError("the VRF proof is degenerate") from None
    if _challenge(public, h_point, gamma, u, v) != c:
        raise VrfError("the VRF proof does not verify")
    return proof_to_hash(pi)
