"""ECVRF-EDWARDS25519-SHA512-TAI against RFC 9381 appendix B.3, and its refusals."""

from __future__ import annotations

import nacl.bindings as sodium
import pytest

from fedray.core import vrf
from fedray.core.crypto import key_from_seed

# RFC 9381 appendix B.3, examples 16-18: SK, PK, alpha, x, try-and-increment counter, H, k, U, V,
# pi, beta (hex, as printed in the RFC).
B3 = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "307c83864f2833cb427a2ef1c00a013cfdff2768d980c0a3a520f006904de94f",
        0,
        "91bbed02a99461df1ad4c6564a5f5d829d0b90cfc7903e7a5797bd658abf3318",
        "8a49edbd1492a8ee09766befe50a7d563051bf3406cbffc20a88def030730f0f",
        "aef27c725be964c6a9bf4c45ca8e35df258c1878b838f37d9975523f09034071",
        "5016572f71466c646c119443455d6cb9b952f07d060ec8286d678615d55f954f",
        "8657106690b5526245a92b003bb079ccd1a92130477671f6fc01ad16f26f723f"
        "26f8a57ccaed74ee1b190bed1f479d9727d2d0f9b005a6e456a35d4fb0daab12"
        "68a1b0db10836d9826a528ca76567805",
        "90cf1df3b703cce59e2a35b925d411164068269d7b2d29f3301c03dd757876ff"
        "66b71dda49d2de59d03450451af026798e8f81cd2e333de5cdf4f3e140fdd8ae",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "68bd9ed75882d52815a97585caf4790a7f6c6b3b7f821c5e259a24b02e502e51",
        1,
        "5b659fc3d4e9263fd9a4ed1d022d75eaacc20df5e09f9ea937502396598dc551",
        "d8c3a66921444cb3427d5d989f9b315aa8ca3375e9ec4d52207711a1fdb44107",
        "1dcb0a4821a2c48bf53548228b7f170962988f6d12f5439f31987ef41f034ab3",
        "fd03c0bf498c752161bae4719105a074630a2aa5f200ff7b3995f7bfb1513423",
        "f3141cd382dc42909d19ec5110469e4feae18300e94f304590abdced48aed593"
        "3bf0864a62558b3ed7f2fea45c92a465301b3bbf5e3e54ddf2d935be3b67926d"
        "a3ef39226bbc355bdc9850112c8f4b02",
        "eb4440665d3891d668e7e0fcaf587f1b4bd7fbfe99d0eb2211ccec90496310eb"
        "5e33821bc613efb94db5e5b54c70a848a0bef4553a41befc57663b56373a5031",
    ),
    (
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "909a8b755ed902849023a55b15c23d11ba4d7f4ec5c2f51b1325a181991ea95c",
        0,
        "bf4339376f5542811de615e3313d2b36f6f53c0acfebb482159711201192576a",
        "5ffdbc72135d936014e8ab708585fda379405542b07e3bd2c0bd48437fbac60a",
        "2bae73e15a64042fcebf062abe7e432b2eca6744f3e8265bc38e009cd577ecd5",
        "88cba1cb0d4f9b649d9a86026b69de076724a93a65c349c988954f0961c5d506",
        "9bc0f79119cc5604bf02d23b4caede71393cedfbb191434dd016d30177ccbf80"
        "96bb474e53895c362d8628ee9f9ea3c0e52c7a5c691b6c18c9979866568add7a"
        "2d41b00b05081ed0f58ee5e31b3a970e",
        "645427e5d00c62a23fb703732fa5d892940935942101e456ecca7bb217c61c45"
        "2118fec1219202a0edcf038bb6373241578be7217ba85a2687f7a0310b2df19f",
    ),
]
IDS = ["example16", "example17", "example18"]


@pytest.mark.parametrize("vector", B3, ids=IDS)
def test_rfc9381_b3(vector: tuple[str, ...]) -> None:
    sk, pk, alpha, x, ctr, h, k, u, v, pi, beta = vector
    seed, public, message = bytes.fromhex(sk), bytes.fromhex(pk), bytes.fromhex(alpha)
    assert vrf.public_key(seed) == public
    assert vrf.secret_scalar(seed).hex() == x
    assert vrf.encode_to_curve(public, message).hex() == h
    # The counter try-and-increment stopped at: candidates before it do not decode.
    for c in range(int(ctr) + 1):
        candidate = vrf._sha512(vrf.SUITE, b"\x01", public, message, bytes([c]), b"\x00")[:32]
        assert vrf.is_point(candidate) == (c == ctr)
    nonce = vrf.nonce(seed, bytes.fromhex(h))
    assert nonce.hex() == k
    assert sodium.crypto_scalarmult_ed25519_base_noclamp(nonce).hex() == u
    assert sodium.crypto_scalarmult_ed25519_noclamp(nonce, bytes.fromhex(h)).hex() == v
    proof = vrf.prove(seed, message)
    assert proof.hex() == pi
    assert vrf.proof_to_hash(proof).hex() == beta
    assert vrf.verify(public, message, proof).hex() == beta


def test_a_validator_key_is_a_vrf_key() -> None:
    """RFC 9381 / RFC 8032 key derivation: the Ed25519 signing key's public key verifies."""
    key = key_from_seed(b"vrf/validator")
    assert vrf.public_key(key.seed) == key.public_key
    proof = vrf.prove(key.seed, b"alpha")
    assert len(vrf.verify(key.public_key, b"alpha", proof)) == vrf.OUTPUT_SIZE


def _refused(public: bytes, alpha: bytes, proof: bytes) -> bool:
    try:
        vrf.verify(public, alpha, proof)
    except vrf.VrfError:
        return True
    return False


@pytest.mark.parametrize("vector", B3, ids=IDS)
def test_forgeries_are_refused(vector: tuple[str, ...]) -> None:
    public, alpha, proof = (
        bytes.fromhex(vector[1]),
        bytes.fromhex(vector[2]),
        bytes.fromhex(vector[9]),
    )
    for position in (0, 31, 32, 47, 48, 79):  # Gamma, c and s
        for bit in (0x01, 0x80):
            forged = bytearray(proof)
            forged[position] ^= bit
            assert _refused(public, alpha, bytes(forged)), (position, bit)
    assert _refused(public, alpha + b"\x00", proof)
    assert _refused(public, alpha, proof[:-1])
    assert _refused(public, alpha, proof + b"\x00")
    assert _refused(bytes.fromhex(B3[(B3.index(vector) + 1) % 3][1]), alpha, proof)


def test_unreduced_s_small_order_keys_and_torsion_are_refused() -> None:
    seed, alpha = bytes.fromhex(B3[0][0]), b""
    public, proof = vrf.public_key(seed), vrf.prove(seed, alpha)
    s = int.from_bytes(proof[48:], "little")
    assert _refused(public, alpha, proof[:48] + (s + vrf.L).to_bytes(32, "little"))
    identity = (1).to_bytes(32, "little")
    assert _refused(identity, alpha, proof)
    # Gamma plus a point of order 2, (0, -1): a different encoding of the same output, refused.
    order_two = (vrf.P - 1).to_bytes(32, "little")
    shifted = sodium.crypto_core_ed25519_add(proof[:32], order_two)
    assert _refused(public, alpha, shifted + proof[32:])


def test_output_is_unique_per_key_and_input() -> None:
    a, b = key_from_seed(b"vrf/a"), key_from_seed(b"vrf/b")
    assert vrf.prove(a.seed, b"x") == vrf.prove(a.seed, b"x")  # deterministic
    outputs = {
        vrf.verify(k.public_key, m, vrf.prove(k.seed, m)) for k in (a, b) for m in (b"x", b"y")
    }
    assert len(outputs) == 4
