"""Canonical bytes for everything fedray signs or hashes, and the one digest function.

The encoding is the deterministic subset of CBOR (RFC 8949 section 4.2.1, "core deterministic
encoding"): unsigned and negative integers, byte strings, UTF-8 text, arrays, maps, booleans and null,
each in its shortest form, definite lengths only, map keys sorted by their encoded bytes. Floats, tags,
undefined and indefinite lengths are refused in both directions, so a value has exactly one encoding
and `decode(encode(v)) == v`. Integers are limited to the 64-bit CBOR range; amounts are further
limited to uint64 by the transaction rules.

The digest is SHA-256 (`digest`), named here once and used everywhere.

Deliberately ignored: CBOR tags, floats, streaming. This is the ledger's wire and hash format, not a
general CBOR library.
"""

from __future__ import annotations

import hashlib
import struct
from typing import Any

from fedray.errors import EncodingError, IntegerOverflowError

DIGEST_NAME = "sha256"
DIGEST_SIZE = 32
UINT64_MAX = (1 << 64) - 1

# CBOR major types.
_UINT, _NINT, _BYTES, _TEXT, _ARRAY, _MAP, _SIMPLE = 0, 1, 2, 3, 4, 5, 7
_FALSE, _TRUE, _NULL = 0xF4, 0xF5, 0xF6
MAX_DEPTH = 32

# A canonical value: int | bytes | str | bool | None | list | tuple | dict with canonical keys.
Canonical = Any


def digest(data: bytes) -> bytes:
    """SHA-256 of `data`: the only hash function of the ledger."""
    return hashlib.sha256(data).digest()


def hash_value(value: Canonical) -> bytes:
    """Digest of the canonical encoding of `value`."""
    return digest(encode(value))


# One-byte heads (argument below 24), built once: most heads a ledger value needs.
_SMALL_HEADS = tuple(tuple(bytes([(major << 5) | arg]) for arg in range(24)) for major in range(8))


def _head(major: int, arg: int) -> bytes:
    if arg < 24:
        return _SMALL_HEADS[major][arg]
    if arg <= 0xFF:
        return bytes([(major << 5) | 24, arg])
    if arg <= 0xFFFF:
        return bytes([(major << 5) | 25]) + struct.pack(">H", arg)
    if arg <= 0xFFFFFFFF:
        return bytes([(major << 5) | 26]) + struct.pack(">I", arg)
    return bytes([(major << 5) | 27]) + struct.pack(">Q", arg)


def encode(value: Canonical) -> bytes:
    """Canonical bytes of `value`; raises `EncodingError` for anything outside the subset."""
    out = bytearray()
    _encode_into(value, out, 0)
    return bytes(out)


def _encode_into(value: Canonical, out: bytearray, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise EncodingError(f"value nests deeper than {MAX_DEPTH} levels")
    # The exact built-in types first, by identity (one test each instead of a chain of
    # isinstance calls); bool is not `int` here, and subclasses take the general path below.
    kind = type(value)
    if kind is bytes:
        out += _head(_BYTES, len(value))
        out += value
    elif kind is list or kind is tuple:
        out += _head(_ARRAY, len(value))
        for item in value:
            _encode_into(item, out, depth + 1)
    elif kind is str:
        raw = value.encode("utf-8")
        out += _head(_TEXT, len(raw))
        out += raw
    elif kind is int and 0 <= value < 24:
        out += _SMALL_HEADS[_UINT][value]
    else:
        _encode_other(value, out, depth)


def _encode_other(value: Canonical, out: bytearray, depth: int) -> None:
    # bool before int: bool is a subclass of int.
    if value is True:
        out.append(_TRUE)
    elif value is False:
        out.append(_FALSE)
    elif value is None:
        out.append(_NULL)
    elif isinstance(value, int):
        if value >= 0:
            if value > UINT64_MAX:
                raise IntegerOverflowError(f"integer {value} exceeds 2**64-1")
            out += _head(_UINT, value)
        else:
            if -1 - value > UINT64_MAX:
                raise IntegerOverflowError(f"integer {value} is below -2**64")
            out += _head(_NINT, -1 - value)
    elif isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        out += _head(_BYTES, len(raw))
        out += raw
    elif isinstance(value, str):
        raw = value.encode("utf-8")
        out += _head(_TEXT, len(raw))
        out += raw
    elif isinstance(value, list | tuple):
        out += _head(_ARRAY, len(value))
        for item in value:
            _encode_into(item, out, depth + 1)
    elif isinstance(value, dict):
        items = [(encode(k), v) for k, v in value.items()]
        items.sort(key=lambda kv: kv[0])
        out += _head(_MAP, len(items))
        for key_bytes, item in items:
            out += key_bytes
            _encode_into(item, out, depth + 1)
    elif isinstance(value, float):
        raise EncodingError(
            "floats are not allowed in canonical encoding; use fixed-point integers"
        )
    else:
        raise EncodingError(f"type {type(value).__name__} has no canonical encoding")


def decode(data: bytes) -> Canonical:
    """Parse canonical bytes; refuses non-shortest forms, unsorted or duplicate map keys (keys that
    decode to equal values too: 0 and false, 1 and true), floats, tags, indefinite lengths and
    trailing bytes. Arrays decode to lists, maps to dicts. Whatever decodes re-encodes to the same
    bytes (a property test checks it)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise EncodingError(f"expected bytes, got {type(data).__name__}")
    view = bytes(data)
    value, pos = _decode_at(view, 0, 0)
    if pos != len(view):
        raise EncodingError(f"{len(view) - pos} trailing bytes after canonical value")
    return value


# Additional info 24-27: the argument's size in bytes, and the least argument that needs it.
_ARG_SIZES = {24: (1, 24), 25: (2, 0x100), 26: (4, 0x10000), 27: (8, 0x100000000)}


def _read_arg(data: bytes, pos: int, info: int) -> tuple[int, int]:
    if info < 24:
        return info, pos
    if info not in _ARG_SIZES:
        raise EncodingError(f"indefinite or reserved length (additional info {info})")
    size, minimum = _ARG_SIZES[info]
    if pos + size > len(data):
        raise EncodingError("truncated length")
    arg = int.from_bytes(data[pos : pos + size], "big")
    # Shortest form: the argument must not fit a smaller size.
    if arg < minimum:
        raise EncodingError("non-canonical (not shortest) integer or length")
    return arg, pos + size


def _decode_at(data: bytes, pos: int, depth: int) -> tuple[Canonical, int]:
    if depth > MAX_DEPTH:
        raise EncodingError(f"value nests deeper than {MAX_DEPTH} levels")
    if pos >= len(data):
        raise EncodingError("truncated value")
    initial = data[pos]
    pos += 1
    major, info = initial >> 5, initial & 0x1F
    if major == _SIMPLE:
        if initial == _TRUE:
            return True, pos
        if initial == _FALSE:
            return False, pos
        if initial == _NULL:
            return None, pos
        raise EncodingError(f"unsupported simple value or float (0x{initial:02x})")
    if major == 6:
        raise EncodingError("CBOR tags are not allowed")
    if info < 24:  # the argument is in the initial byte: no call for the common case
        arg = info
    else:
        arg, pos = _read_arg(data, pos, info)
    if major == _UINT:
        return arg, pos
    if major == _NINT:
        return -1 - arg, pos
    if major in (_BYTES, _TEXT):
        end = pos + arg
        if end > len(data):
            raise EncodingError("truncated byte or text string")
        raw = data[pos:end]
        if major == _BYTES:
            return raw, end
        try:
            return raw.decode("utf-8"), end
        except UnicodeDecodeError as exc:
            raise EncodingError(f"invalid UTF-8 text: {exc}") from None
    if major == _ARRAY:
        if arg > len(data) - pos:
            raise EncodingError("array longer than the remaining bytes")
        items = []
        for _ in range(arg):
            item, pos = _decode_at(data, pos, depth + 1)
            items.append(item)
        return items, pos
    # _MAP
    if arg > len(data) - pos:
        raise EncodingError("map longer than the remaining bytes")
    result: dict[Any, Any] = {}
    previous_key: bytes | None = None
    for _ in range(arg):
        key_start = pos
        key, pos = _decode_at(data, pos, depth + 1)
        key_bytes = data[key_start:pos]
        if previous_key is not None and key_bytes <= previous_key:
            raise EncodingError("map keys are unsorted or duplicated")
        if isinstance(key, list | dict):
            raise EncodingError("map keys must be scalars")
        if key in result:  # 0 == False and 1 == True in Python: distinct bytes, one dict key
            raise EncodingError(f"map key {key!r} equals an earlier key as a value")
        previous_key = key_bytes
        result[key], pos = _decode_at(data, pos, depth + 1)
    return result, pos


def merkle_root(leaves: list[bytes]) -> bytes:
    """Binary Merkle root over leaf digests with domain-separated leaf/node hashing (RFC 6962 style:
    leaf = H(0x00 || data), node = H(0x01 || left || right), an odd node is promoted). The empty list
    has root H(b"")."""
    if not leaves:
        return digest(b"")
    level = [digest(b"\x00" + leaf) for leaf in leaves]
    while len(level) > 1:
        nxt = [digest(b"\x01" + level[i] + level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]
