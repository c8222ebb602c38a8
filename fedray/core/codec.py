"""Canonical values of typed frozen dataclasses, derived from their fields and annotations.

A dataclass's canonical value is the array of its fields in declaration order (`Encodable`), or the
map of its field names (`to_canonical_map`, for parameters and transaction payloads). Each field is
encoded by its annotation:

    int                      integer in 0..2**64-1; `Signed` or `Annotated[int, IntRange(lo, hi)]`
    bytes, str, bool         themselves; `Annotated[bytes, Size(n)]` (`Digest`, ...) fixes a length
    X | None                 null or X
    tuple[X, ...]            array; `tuple[X, Y]` is an array of exactly those
    frozenset[X]             array sorted ascending
    Mapping[K, V]            array of [key, value] pairs sorted by key
    Annotated[Mapping[K, V], KeyedBy(attr)]   array of the values, each key being `value.attr`
    Annotated[T, Via(to, from)]               what the two functions say (a layout of its own)
    a dataclass              its own canonical value (`Encodable` subclasses may override it)

Decoding is strict, since it reads untrusted bytes: a wrong shape or arity, a wrong type (a bool for
an integer, text for bytes), an integer out of range, a byte string of the wrong size, or a set or
map out of canonical order raises an `EncodingError` subclass naming the field, never a bare
TypeError or IndexError. Encoding checks the same, so whatever encodes decodes back equal.
Unsupported annotations are programming errors: `TypeError` when a type is first used.

Deliberately ignored: floats, unions of several non-null types, schema evolution.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Self, TypeVar

from fedray.core.encoding import DIGEST_SIZE, UINT64_MAX
from fedray.errors import (
    ArityError,
    DefinitionError,
    FieldTypeError,
    IntegerOverflowError,
    OrderError,
)

T = TypeVar("T")
Encode = Callable[[Any], Any]
Decode = Callable[[Any], Any]


@dataclass(frozen=True)
class IntRange:
    """Bounds of an integer field (inclusive)."""

    low: int
    high: int


@dataclass(frozen=True)
class Size:
    """The exact length of a byte-string field."""

    length: int


@dataclass(frozen=True)
class KeyedBy:
    """A mapping stored as its values, each key being the value's `attribute`; `ascending`: in
    key order (else in the mapping's insertion order, which is then part of the value)."""

    attribute: str
    ascending: bool = True


@dataclass(frozen=True)
class Via:
    """A field with a layout of its own: `to` gives its canonical value, `from_` parses one and
    raises an `EncodingError` for anything malformed."""

    to: Encode
    from_: Decode


Signed = Annotated[int, IntRange(-(1 << 63), (1 << 63) - 1)]
Digest = Annotated[bytes, Size(DIGEST_SIZE)]


@dataclass(frozen=True)
class _Codec:
    encode: Encode
    decode: Decode


class Encodable:
    """Mixin for frozen dataclasses: the canonical value is the array of the fields, in order.
    A class with another layout overrides both methods (and keeps them small)."""

    def to_canonical(self) -> Any:
        return _fields_codec(type(self)).encode(self)

    @classmethod
    def from_canonical(cls, value: object) -> Self:
        decoded: Self = _fields_codec(cls).decode(value)
        return decoded


def encode_as(annotation: Any, value: Any) -> Any:
    """The canonical value of `value`, read as `annotation` (e.g. a section's type)."""
    return _codec(annotation, _name(annotation)).encode(value)


def decode_as(annotation: Any, value: object, where: str = "") -> Any:
    """Parse the canonical `value` as `annotation`, strictly."""
    return _codec(annotation, where or _name(annotation)).decode(value)


def from_canonical(cls: type[T], value: object) -> T:
    """Parse the canonical `value` of dataclass `cls`, strictly."""
    decoded: T = _codec(cls, cls.__name__).decode(value)
    return decoded


def to_canonical_map(obj: Any) -> dict[str, Any]:
    """The canonical map {field name: canonical value} of a dataclass instance."""
    return {name: codec.encode(getattr(obj, name)) for name, codec in _field_codecs(type(obj))}


def from_canonical_map(cls: type[T], value: object, *, defaults: bool = False) -> T:
    """Build `cls` from a canonical map, refusing unknown names, mistyped values, and missing
    names (`defaults`: a missing field that has a default takes it)."""
    if type(value) is not dict:
        raise FieldTypeError(f"a {cls.__name__} is a map of its fields")
    codecs = _field_codec_map(cls)
    if value.keys() != codecs.keys():  # the common case, every field and no other, skips this
        unknown = set(value) - set(codecs)
        if unknown:
            raise ArityError(f"{cls.__name__} has no fields {sorted(map(str, unknown))}")
        fields = dataclasses.fields(cls)  # type: ignore[arg-type]
        optional = {f.name for f in fields if _has_default(f)} if defaults else set()
        missing = set(codecs) - set(value) - optional
        if missing:
            raise ArityError(f"{cls.__name__} lacks fields {sorted(missing)}")
    return cls(**{name: codecs[name].decode(v) for name, v in value.items()})


_FIELD_MAPS: dict[Any, dict[str, _Codec]] = {}


def _field_codec_map(cls: Any) -> dict[str, _Codec]:
    """`dict(_field_codecs(cls))`, built once per class (every transaction's payload reads it)."""
    codecs = _FIELD_MAPS.get(cls)
    if codecs is None:
        codecs = _FIELD_MAPS[cls] = dict(_field_codecs(cls))
    return codecs


def _has_default(f: dataclasses.Field[Any]) -> bool:
    return f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING


def _name(annotation: Any) -> str:
    return annotation.__name__ if isinstance(annotation, type) else repr(annotation)


# --- compiling annotations into codecs --------------------------------------------------------
_FIELDS: dict[Any, tuple[tuple[str, _Codec], ...]] = {}
_RECORDS: dict[Any, _Codec] = {}
_CODECS: dict[tuple[Any, str], _Codec] = {}


def _field_codecs(cls: Any) -> tuple[tuple[str, _Codec], ...]:
    fields = _FIELDS.get(cls)
    if fields is None:
        hints = typing.get_type_hints(cls, include_extras=True)
        fields = _FIELDS[cls] = tuple(
            (f.name, _codec(hints[f.name], f"{cls.__name__}.{f.name}"))
            for f in dataclasses.fields(cls)
        )
    return fields


def _fields_codec(cls: Any) -> _Codec:
    codec = _RECORDS.get(cls)
    if codec is None:
        codec = _RECORDS[cls] = _positional(cls)
    return codec


def _codec(annotation: Any, where: str) -> _Codec:
    codec = _CODECS.get((annotation, where))
    if codec is None:
        codec = _CODECS[annotation, where] = _compile(annotation, where)
    return codec


def _positional(cls: Any) -> _Codec:
    """The layout [field 1, field 2, ...] of a dataclass."""
    fields = _field_codecs(cls)
    arity = len(fields)

    def encode(obj: Any) -> list[Any]:
        if not isinstance(obj, cls):
            raise FieldTypeError(f"expected a {cls.__name__}, got {type(obj).__name__}")
        return [codec.encode(getattr(obj, name)) for name, codec in fields]

    def decode(value: Any) -> Any:
        if type(value) is not list:
            raise FieldTypeError(f"a {cls.__name__} is an array of {arity} fields")
        if len(value) != arity:
            raise ArityError(f"a {cls.__name__} has {arity} fields, got {len(value)}")
        return cls(*[codec.decode(v) for (_, codec), v in zip(fields, value, strict=True)])

    return _Codec(encode, decode)


def _compile(annotation: Any, where: str) -> _Codec:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Annotated:
        return _annotated(args[0], args[1:], where)
    if annotation is int:
        return _int(0, UINT64_MAX, where)
    if annotation in (bytes, str, bool):
        return _scalar(annotation, where)
    if origin in (typing.Union, types.UnionType):
        return _optional(args, where)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return _sequence(_codec(args[0], where), where)
        return _fixed_tuple(tuple(_codec(a, where) for a in args), where)
    if origin is frozenset:
        return _set(_codec(args[0], where), where)
    if origin in (Mapping, types.MappingProxyType):
        return _pairs(_codec(args[0], where), _codec(args[1], where), where)
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        if issubclass(annotation, Encodable):
            return _encodable(annotation)
        return _fields_codec(annotation)
    raise DefinitionError(f"{where}: no canonical form for {annotation!r}")


def _annotated(base: Any, marks: tuple[Any, ...], where: str) -> _Codec:
    (mark,) = marks
    if isinstance(mark, IntRange) and base is int:
        return _int(mark.low, mark.high, where)
    if isinstance(mark, Size) and base is bytes:
        return _scalar(bytes, where, mark.length)
    if isinstance(mark, KeyedBy) and typing.get_origin(base) in (Mapping, types.MappingProxyType):
        return _keyed(_codec(typing.get_args(base)[1], where), mark, where)
    if isinstance(mark, Via):
        return _Codec(mark.to, mark.from_)
    raise DefinitionError(f"{where}: unsupported annotation {mark!r} on {base!r}")


def _int(low: int, high: int, where: str) -> _Codec:
    def check(value: Any) -> int:
        if type(value) is not int:  # a bool is not an integer here
            raise FieldTypeError(f"{where} must be an integer, got {type(value).__name__}")
        if not low <= value <= high:
            raise IntegerOverflowError(f"{where}={value} is outside {low}..{high}")
        return value

    return _Codec(check, check)


def _scalar(kind: type[Any], where: str, length: int | None = None) -> _Codec:
    def check(value: Any) -> Any:
        if type(value) is not kind:
            raise FieldTypeError(f"{where} must be {kind.__name__}, got {type(value).__name__}")
        if length is not None and len(value) != length:
            raise FieldTypeError(f"{where} must have {length} bytes, got {len(value)}")
        return value

    return _Codec(check, check)


def _optional(options: tuple[Any, ...], where: str) -> _Codec:
    inner_types = [o for o in options if o is not type(None)]
    if len(inner_types) != 1 or len(options) != 2:
        raise DefinitionError(f"{where}: only `X | None` unions have a canonical form")
    inner = _codec(inner_types[0], where)
    return _Codec(
        lambda v: None if v is None else inner.encode(v),
        lambda v: None if v is None else inner.decode(v),
    )


def _array(value: Any, where: str) -> list[Any]:
    if type(value) is not list:
        raise FieldTypeError(f"{where} must be an array, got {type(value).__name__}")
    return value


def _sequence(item: _Codec, where: str) -> _Codec:
    def encode(value: Any) -> list[Any]:
        if not isinstance(value, tuple | list):
            raise FieldTypeError(f"{where} must be a tuple, got {type(value).__name__}")
        return [item.encode(v) for v in value]

    return _Codec(encode, lambda v: tuple(item.decode(x) for x in _array(v, where)))


def _fixed_tuple(items: tuple[_Codec, ...], where: str) -> _Codec:
    def split(value: Any) -> Any:
        if len(value) != len(items):
            raise ArityError(f"{where} has {len(items)} items, got {len(value)}")
        return zip(items, value, strict=True)

    def encode(value: Any) -> list[Any]:
        if not isinstance(value, tuple | list):
            raise FieldTypeError(f"{where} must be a tuple, got {type(value).__name__}")
        return [codec.encode(v) for codec, v in split(value)]

    return _Codec(encode, lambda v: tuple(codec.decode(x) for codec, x in split(_array(v, where))))


def check_ascending(keys: list[Any], where: str) -> None:
    """Raise `OrderError` unless `keys` are strictly ascending (canonical sets and maps)."""
    if any(a >= b for a, b in zip(keys, keys[1:], strict=False)):
        raise OrderError(f"{where}: members or keys are not strictly ascending")


def _set(item: _Codec, where: str) -> _Codec:
    def encode(value: Any) -> list[Any]:
        if not isinstance(value, frozenset | set):
            raise FieldTypeError(f"{where} must be a frozenset, got {type(value).__name__}")
        return sorted(item.encode(v) for v in value)

    def decode(value: Any) -> frozenset[Any]:
        members = [item.decode(v) for v in _array(value, where)]
        check_ascending(members, where)
        return frozenset(members)

    return _Codec(encode, decode)


def _mapping(value: Any, where: str) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        raise FieldTypeError(f"{where} must be a mapping, got {type(value).__name__}")
    return value


def _pairs(key: _Codec, item: _Codec, where: str) -> _Codec:
    def encode(value: Any) -> list[list[Any]]:
        mapping = _mapping(value, where)
        return [[key.encode(k), item.encode(mapping[k])] for k in sorted(mapping)]

    def decode(value: Any) -> types.MappingProxyType[Any, Any]:
        pairs = [_array(p, where) for p in _array(value, where)]
        if any(len(p) != 2 for p in pairs):
            raise ArityError(f"{where}: each entry is a [key, value] pair")
        keys = [key.decode(k) for k, _ in pairs]
        check_ascending(keys, where)
        values = [item.decode(v) for _, v in pairs]
        return types.MappingProxyType(dict(zip(keys, values, strict=True)))

    return _Codec(encode, decode)


def _keyed(item: _Codec, mark: KeyedBy, where: str) -> _Codec:
    def encode(value: Any) -> list[Any]:
        mapping = _mapping(value, where)
        keys = sorted(mapping) if mark.ascending else list(mapping)
        encoded = [item.encode(mapping[k]) for k in keys]
        if any(getattr(mapping[k], mark.attribute) != k for k in keys):
            raise FieldTypeError(f"{where}: a key differs from its value's {mark.attribute}")
        return encoded

    def decode(value: Any) -> types.MappingProxyType[Any, Any]:
        values = [item.decode(v) for v in _array(value, where)]
        keys = [getattr(v, mark.attribute) for v in values]
        if mark.ascending:
            check_ascending(keys, where)
        elif len(set(keys)) != len(keys):
            raise OrderError(f"{where}: a key appears twice")
        return types.MappingProxyType(dict(zip(keys, values, strict=True)))

    return _Codec(encode, decode)


def _encodable(cls: type[Encodable]) -> _Codec:
    def encode(value: Any) -> Any:
        if not isinstance(value, cls):
            raise FieldTypeError(f"expected a {cls.__name__}, got {type(value).__name__}")
        return value.to_canonical()

    return _Codec(encode, cls.from_canonical)
