"""Canonical encoding: round trips, one encoding per value, strict refusal of everything else."""

from __future__ import annotations

import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from fedray.core.encoding import UINT64_MAX, decode, encode, merkle_root
from fedray.errors import EncodingError, IntegerOverflowError

scalars = (
    st.integers(min_value=-(2**64), max_value=UINT64_MAX)
    | st.binary(max_size=64)
    | st.text(max_size=32)
    | st.booleans()
    | st.none()
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.text(max_size=8) | st.integers(-1000, 1000) | st.binary(max_size=8),
            children,
            max_size=5,
        )
    ),
    max_leaves=20,
)


@given(values)
def test_round_trip(value: object) -> None:
    raw = encode(value)
    assert decode(raw) == value
    assert encode(decode(raw)) == raw


@given(st.dictionaries(st.text(max_size=6), st.integers(0, 10), max_size=8))
def test_map_encoding_ignores_insertion_order(d: dict[str, int]) -> None:
    assert encode(d) == encode(dict(reversed(list(d.items()))))


@pytest.mark.parametrize(
    "raw",
    [
        b"\x18\x05",  # 5 in a non-shortest form
        b"\x19\x00\x10",  # 16 in two bytes
        b"\xf9\x3c\x00",  # half float
        b"\xfb" + b"\x00" * 8,  # double
        b"\xc1\x00",  # tag
        b"\x5f\xff",  # indefinite byte string
        b"\xa2\x61b\x01\x61a\x02",  # unsorted map keys
        b"\xa2\x61a\x01\x61a\x02",  # duplicate map keys
        bytes.fromhex("a20001f402"),  # keys 0 and false: one key once decoded ({0: 2})
        bytes.fromhex("a2010af50b"),  # keys 1 and true
        b"\x01\x02",  # trailing bytes
        b"\x43ab",  # truncated byte string
        b"\x62\xff\xfe",  # invalid UTF-8
        b"",  # empty
        b"\x9b\xff\xff\xff\xff\xff\xff\xff\xff",  # absurd array length
    ],
)
def test_refuses_non_canonical(raw: bytes) -> None:
    with pytest.raises(EncodingError):
        decode(raw)


def test_refuses_floats_and_big_ints() -> None:
    with pytest.raises(EncodingError):
        encode(1.5)
    with pytest.raises(IntegerOverflowError):
        encode(2**64)
    with pytest.raises(IntegerOverflowError):
        encode(-(2**64) - 1)


def test_known_encodings() -> None:
    # RFC 8949 appendix A examples.
    assert encode(0) == b"\x00"
    assert encode(23) == b"\x17"
    assert encode(24) == b"\x18\x18"
    assert encode(1000) == b"\x19\x03\xe8"
    assert encode(-1) == b"\x20"
    assert encode(-1000) == b"\x39\x03\xe7"
    assert encode(UINT64_MAX) == b"\x1b" + b"\xff" * 8
    assert encode("IETF") == b"\x64IETF"
    assert encode([1, [2, 3]]) == b"\x82\x01\x82\x02\x03"
    assert encode({"a": 1, "b": [2, 3]}) == b"\xa2\x61a\x01\x61b\x82\x02\x03"
    assert encode(True) == b"\xf5" and encode(None) == b"\xf6"


def test_merkle_root_binds_order_and_content() -> None:
    leaves = [bytes([i]) * 32 for i in range(5)]
    root = merkle_root(leaves)
    assert merkle_root(list(reversed(leaves))) != root
    assert merkle_root(leaves[:4]) != root
    assert merkle_root(leaves) == root
    # A leaf cannot pose as an inner node (domain separation).
    assert merkle_root([leaves[0] + leaves[1]]) != merkle_root(leaves[:2])


def test_colliding_map_keys_are_refused_not_merged() -> None:
    """Finding 8: decode(a20001f402) gave {0: 2}, whose encoding a10002 differs from the input:
    two byte strings for one value, so a hash or signature over either means the other too."""
    with pytest.raises(EncodingError, match="equals an earlier key"):
        decode(bytes.fromhex("a20001f402"))
    with pytest.raises(EncodingError):
        decode(bytes.fromhex("a2f4010002"))  # false (f4) sorts after 0 (00): unsorted


# --- decode is one-to-one: arbitrary CBOR-like bytes ---------------------------------------
def _head(major: int, arg: int, width: int) -> bytes:
    """A CBOR head with `arg` in `width` extra bytes (0: immediate), canonical or not."""
    if width == 0:
        return bytes([(major << 5) | min(arg, 23)])
    info = {1: 24, 2: 25, 4: 26, 8: 27}[width]
    return bytes([(major << 5) | info]) + (arg % (1 << (8 * width))).to_bytes(width, "big")


widths = st.sampled_from([0, 1, 2, 4, 8])
odd_items = (  # non-shortest heads, floats, tags, breaks, undefined
    st.builds(_head, st.sampled_from([0, 1, 2, 3, 4, 5]), st.integers(0, 300), widths)
    | st.sampled_from([b"\xf7", b"\xf9\x3c\x00", b"\xc1\x00", b"\xff", b"\x5f\xff"])
)
scalar_items = (
    st.integers(-(2**64), UINT64_MAX).map(encode)
    | st.binary(max_size=3).map(encode)
    | st.text(max_size=3).map(encode)
    | st.sampled_from([b"\xf4", b"\xf5", b"\xf6"])
    | odd_items
)


# Map keys drawn mostly from a few encodings, among them values Python holds equal (0 and false,
# 1 and true), so maps whose distinct keys collide as values come up often.
map_keys = st.sampled_from([b"\x00", b"\x01", b"\xf4", b"\xf5", b"\x40", b"\x60"]) | scalar_items


@st.composite
def _maps(draw: st.DrawFn, values: st.SearchStrategy[bytes]) -> bytes:
    keys = draw(st.lists(map_keys, unique=True, max_size=4))
    if draw(st.integers(0, 3)):  # mostly in canonical order, sometimes as drawn
        keys.sort()
    entries = [k + draw(values) for k in keys]
    return _head(5, len(entries), 0) + b"".join(entries)


cbor_items = st.recursive(
    scalar_items,
    lambda children: (
        st.lists(children, max_size=3).map(lambda xs: _head(4, len(xs), 0) + b"".join(xs))
        | _maps(children)
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(cbor_items | st.binary(max_size=12))
@example(bytes.fromhex("a20001f402"))  # finding 8, always tried
def test_whatever_decodes_re_encodes_to_the_same_bytes(raw: bytes) -> None:
    try:
        value = decode(raw)
    except EncodingError:
        event("refused")
        return
    event("decoded")
    assert encode(value) == raw
