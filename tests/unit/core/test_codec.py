"""The canonical codec derived from dataclass fields: round trips for every ledger type, strict and
typed refusal of malformed values, and no untyped exception on arbitrary input."""

from __future__ import annotations

import contextlib
import dataclasses
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from typing import Annotated, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fedray.core  # noqa: F401  (registers the sections)
from fedray.core.block import Block, CommitCertificate, Header, Proposal, Vote
from fedray.core.codec import (
    IntRange,
    KeyedBy,
    Size,
    Via,
    decode_as,
    encode_as,
    from_canonical,
    from_canonical_map,
)
from fedray.core.contracts.accounts import Transfer
from fedray.core.contracts.client_history import EMPTY_HISTORY, ClientHistory, Entries
from fedray.core.contracts.economy import PenaltyRecord
from fedray.core.contracts.governance_state import GovernanceState
from fedray.core.contracts.governance_state import Proposal as GovProposal
from fedray.core.contracts.rounds import RoundsState
from fedray.core.contracts.rounds_state import used_payloads_of
from fedray.core.contracts.slashing import Conduct
from fedray.core.devchain import DevChain, dev_genesis
from fedray.core.encoding import UINT64_MAX, decode, encode
from fedray.core.evidence import Evidence
from fedray.core.precompiles import AggregationOutcome, AggregationRequest
from fedray.core.sections import Sections, section_specs
from fedray.core.state import Account, Genesis, Params, State, ValidatorSet
from fedray.core.tx import decode_payload, kind_spec, make_tx
from fedray.errors import (
    ArityError,
    EncodingError,
    FieldTypeError,
    IntegerOverflowError,
    OrderError,
    PayloadError,
)

text = st.text(alphabet=st.characters(codec="utf-8"), max_size=12)


def strategy(annotation: Any) -> st.SearchStrategy[Any]:
    """Values of `annotation` as the codec reads it (its bounds, sizes and key rules)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Sections:
        specs = section_specs()
        return st.lists(st.sampled_from(sorted(specs)), unique=True, max_size=3).flatmap(
            lambda names: st.fixed_dictionaries(
                {n: strategy(specs[n].value_type) for n in names}
            ).map(types.MappingProxyType)
        )
    if origin is Annotated:
        base, mark = args
        if isinstance(mark, IntRange):
            return st.integers(mark.low, mark.high)
        if isinstance(mark, Size):
            return st.binary(min_size=mark.length, max_size=mark.length)
        if isinstance(mark, KeyedBy):
            values = st.lists(strategy(typing.get_args(base)[1]), max_size=3)
            return values.map(
                lambda vs: types.MappingProxyType({getattr(v, mark.attribute): v for v in vs})
            )
        assert isinstance(mark, Via)
        return strategy(base)
    if annotation is int:
        return st.integers(0, UINT64_MAX)
    simple = {bytes: st.binary(max_size=40), str: text, bool: st.booleans()}
    if annotation in simple:
        return simple[annotation]
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in args if a is not type(None)]
        return st.none() | strategy(inner)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return st.lists(strategy(args[0]), max_size=3).map(tuple)
        return st.tuples(*(strategy(a) for a in args))
    if origin is frozenset:
        return st.frozensets(strategy(args[0]), max_size=3)
    if origin in (Mapping, types.MappingProxyType):
        pairs = st.dictionaries(strategy(args[0]), strategy(args[1]), max_size=3)
        return pairs.map(types.MappingProxyType)
    if annotation is ClientHistory:  # a map kept in buckets: built from a plain map
        return st.dictionaries(strategy(bytes), strategy(Entries), max_size=3).map(
            ClientHistory.build
        )
    hints = typing.get_type_hints(annotation, include_extras=True)
    fields = {f.name: strategy(hints[f.name]) for f in dataclasses.fields(annotation)}
    built = st.builds(annotation, **fields)
    if annotation is RoundsState:  # its used payloads follow from its results (rounds_state.py)
        return built.map(
            lambda rs: dataclasses.replace(
                rs, used_payloads=used_payloads_of(rs.results, rs.zero_hash)
            )
        )
    return built


LEDGER_TYPES = [
    Account,
    Params,
    ValidatorSet,
    Vote,
    Proposal,
    CommitCertificate,
    Header,
    Block,
    Genesis,
    AggregationRequest,
    AggregationOutcome,
    PenaltyRecord,
    GovProposal,
    GovernanceState,
    RoundsState,
    Conduct,
]


@pytest.mark.parametrize(
    "cls", LEDGER_TYPES, ids=lambda c: f"{c.__module__.rpartition('.')[2]}.{c.__name__}"
)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_round_trip(cls: type, data: st.DataObject) -> None:
    value = data.draw(strategy(cls))
    raw = encode(encode_as(cls, value))
    back = from_canonical(cls, decode(raw))
    assert back == value
    assert encode(encode_as(cls, back)) == raw


@pytest.mark.parametrize("name", sorted(section_specs()))
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_sections_round_trip(name: str, data: st.DataObject) -> None:
    spec = section_specs()[name]
    value = data.draw(strategy(spec.value_type))
    raw = encode(spec.to_canonical(value))
    back = spec.from_canonical(decode(raw))
    assert back == value
    assert encode(spec.to_canonical(back)) == raw  # also keeps the penalties' insertion order


def test_state_snapshot_round_trips_with_every_section() -> None:
    state = dev_genesis()[0].state()
    raw = state.to_bytes()
    assert State.from_bytes(raw).root() == state.root()
    assert State.from_bytes(raw).to_bytes() == raw


# --- refusals ---------------------------------------------------------------------------------
EMPTY: types.MappingProxyType[Any, Any] = types.MappingProxyType({})
BAN_PROPOSAL = GovProposal(2, "ban", ("", "", b"", "", b"", ""), b"", False, 1, 2, EMPTY)
ACCOUNT = [5, 6, 7, True, False, 0, False]
VOTE = [2, 10, 0, b"\x01" * 32, b"\x02" * 32, b"\x03" * 64]


def _replace(values: list[Any], index: int, new: Any) -> list[Any]:
    return [*values[:index], new, *values[index + 1 :]]


@pytest.mark.parametrize(
    "cls, value, error",
    [
        (Account, ACCOUNT[:-1], ArityError),  # a field missing
        (Account, [*ACCOUNT, 0], ArityError),  # a field too many
        (Account, dict(enumerate(ACCOUNT)), FieldTypeError),  # not an array
        (Account, _replace(ACCOUNT, 0, True), FieldTypeError),  # a bool for an integer
        (Account, _replace(ACCOUNT, 3, 1), FieldTypeError),  # an integer for a bool
        (Account, _replace(ACCOUNT, 0, -1), IntegerOverflowError),  # below uint64
        (Account, _replace(ACCOUNT, 0, "5"), FieldTypeError),  # text for an integer
        (Vote, _replace(VOTE, 3, "ab"), FieldTypeError),  # text for bytes
        (Vote, _replace(VOTE, 1, None), FieldTypeError),  # null where nothing is optional
        (Proposal, [1, 0, -(2**63) - 1, b"", b"", b""], IntegerOverflowError),  # below int64
        (ValidatorSet, [[b"\x01" * 31, 5]], FieldTypeError),  # a key of the wrong size
        (ValidatorSet, [[b"\x01" * 32, 5, 6]], ArityError),  # a member of three items
    ],
)
def test_malformed_values_are_refused_with_typed_errors(
    cls: type, value: Any, error: type[EncodingError]
) -> None:
    with pytest.raises(error):
        cls.from_canonical(value)  # type: ignore[attr-defined]


def test_signed_fields_take_negative_values_unsigned_do_not() -> None:
    assert Proposal.from_canonical([1, 0, -1, b"", b"", b""]).pol_round == -1
    with pytest.raises(IntegerOverflowError):
        Proposal.from_canonical([1, -1, -1, b"", b"", b""])


def test_header_digests_must_have_32_bytes() -> None:
    header = [
        "c",
        1,
        2,
        *[b"\x00" * 32] * 3,
        b"p",
        b"v",
        b"\x00" * 32,
        b"",
        b"\x00" * 32,
    ]
    assert Header.from_canonical(header).prev_hash == b"\x00" * 32
    with pytest.raises(FieldTypeError, match="Header.prev_hash"):
        Header.from_canonical(_replace(header, 3, b"\x00" * 31))


def test_sets_and_maps_have_one_order() -> None:
    canonical = encode_as(RoundsState, RoundsState(used_payloads=frozenset({b"b", b"a"})))
    assert canonical[10] == [b"a", b"b"]
    for payloads in ([b"b", b"a"], [b"a", b"a"]):  # unsorted, duplicated
        with pytest.raises(OrderError):
            decode_as(RoundsState, _replace(canonical, 10, payloads))
    deposits = Mapping[bytes, int]
    assert decode_as(deposits, [[b"a", 1], [b"b", 2]]) == {b"a": 1, b"b": 2}
    with pytest.raises(OrderError):
        decode_as(deposits, [[b"b", 2], [b"a", 1]])
    with pytest.raises(ArityError):
        decode_as(deposits, [[b"a", 1, 2]])


def test_keyed_maps_refuse_repeated_or_unsorted_keys() -> None:
    record = [b"k", "downtime", 1, b"o", b"d", 0, 0, False, 1]
    penalties = section_specs()["penalties"]
    other = _replace(record, 0, b"a")
    assert list(penalties.from_canonical([record, other])) == [b"k", b"a"]  # insertion order
    with pytest.raises(OrderError):
        penalties.from_canonical([record, record])
    proposal = encode_as(GovProposal, BAN_PROPOSAL)
    assert decode_as(GovernanceState, [3, [proposal], []]).proposals[2].id == 2
    with pytest.raises(OrderError):
        decode_as(GovernanceState, [3, [proposal, proposal], []])


def test_signing_windows_have_one_encoding() -> None:
    key_a, key_b = b"\x01" * 32, b"\x02" * 32
    conduct = Conduct(types.MappingProxyType({key_a: (3, 0b101), key_b: (1, 0)}), EMPTY_HISTORY)
    canonical = encode_as(Conduct, conduct)
    assert canonical[0] == [[key_a, 3, b"\x05"], [key_b, 1, b""]]
    assert decode_as(Conduct, canonical) == conduct
    with pytest.raises(FieldTypeError):  # a leading zero byte: another encoding of 5
        decode_as(Conduct, [[[key_a, 3, b"\x00\x05"]], []])
    with pytest.raises(OrderError):
        decode_as(Conduct, [list(reversed(canonical[0])), []])


def test_encoding_checks_what_decoding_checks() -> None:
    with pytest.raises(IntegerOverflowError):
        Account(balance=-1).to_canonical()
    with pytest.raises(FieldTypeError):
        Account(is_client=1).to_canonical()  # type: ignore[arg-type]
    with pytest.raises(FieldTypeError):
        encode_as(GovernanceState, GovernanceState(proposals=types.MappingProxyType({7: None})))
    with pytest.raises(FieldTypeError, match="key differs"):  # stored under another id
        encode_as(
            GovernanceState, GovernanceState(proposals=types.MappingProxyType({7: BAN_PROPOSAL}))
        )


def test_parameters_and_payloads_are_maps_by_name() -> None:
    params = Params().to_canonical()
    assert Params.from_canonical({"gas_price": 3}) == Params(gas_price=3)  # defaults fill in
    with pytest.raises(ArityError):
        Params.from_canonical({**params, "gas_prize": 3})
    with pytest.raises(FieldTypeError):
        Params.from_canonical({**params, "fl_rule": 1})
    spec = kind_spec("transfer")
    assert decode_payload(spec, {"to": b"\x01" * 32, "amount": 5}) == Transfer(b"\x01" * 32, 5)
    for bad in ({"to": b"\x01" * 32}, {"to": b"\x01" * 32, "amount": True}):
        with pytest.raises(PayloadError):  # missing (payloads have no defaults), bool for int
            decode_payload(spec, bad)
    with pytest.raises(ArityError):
        from_canonical_map(Transfer, {"to": b"\x01" * 32})


# --- arbitrary input: typed errors only -------------------------------------------------------
scalars = (
    st.integers(min_value=-(2**64), max_value=UINT64_MAX)
    | st.binary(max_size=40)
    | text
    | st.booleans()
    | st.none()
)
canonical_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=12)
        | st.dictionaries(text | st.integers(0, 5), children, max_size=4)
    ),
    max_leaves=30,
)


@pytest.mark.parametrize(
    "cls", LEDGER_TYPES, ids=lambda c: f"{c.__module__.rpartition('.')[2]}.{c.__name__}"
)
@settings(max_examples=30, deadline=None)
@given(value=canonical_values)
def test_arbitrary_values_raise_only_encoding_errors(cls: type, value: Any) -> None:
    with contextlib.suppress(EncodingError):
        from_canonical(cls, value)


def _wire_samples() -> dict[str, tuple[Callable[[bytes], object], bytes]]:
    """A height-2 block with a transfer, its parent's certificate, equivocation evidence, and a
    state snapshot."""

    genesis, validators, accounts = dev_genesis(n_validators=2, n_accounts=2)
    chain = DevChain(genesis, validators)
    chain.advance()
    transfer = make_tx(accounts[0], genesis.chain_id, 0, Transfer(accounts[1].public_key, 5))
    block = chain.propose([transfer.raw])
    votes = [
        Vote(2, 1, 0, h, validators[0].public_key).signed(validators[0], "c") for h in (b"a", b"b")
    ]
    return {
        "block": (Block.from_bytes, block.raw),
        "certificate": (CommitCertificate.from_bytes, chain.certificates[-1].to_bytes()),
        "evidence": (Evidence.from_bytes, Evidence.of(*votes).to_bytes()),
        "snapshot": (State.from_bytes, chain.state.to_bytes()),
    }


# What may stand in place of any part of a decoded value: each type, bounds, sizes.
ALTERNATIVES: tuple[Any, ...] = (0, -1, UINT64_MAX, True, None, b"", b"\x00" * 32, "", [], {})


def _variants(value: Any) -> Iterator[Any]:
    """`value` with one part replaced by an alternative, or one array shortened or lengthened."""
    yield from (alt for alt in ALTERNATIVES if type(alt) is not type(value) or alt != value)
    if isinstance(value, list):
        yield value[:-1]
        yield [*value, 0]
        for i, item in enumerate(value):
            for variant in _variants(item):
                yield [*value[:i], variant, *value[i + 1 :]]
    elif isinstance(value, dict):
        yield {**value, "unknown": 0}
        for key, item in value.items():
            yield {k: v for k, v in value.items() if k != key}
            for variant in _variants(item):
                yield {**value, key: variant}


@pytest.mark.parametrize("name", ["block", "certificate", "evidence", "snapshot"])
def test_every_malformed_variant_raises_only_encoding_errors(name: str) -> None:
    parse, raw = _wire_samples()[name]
    parse(raw)
    for position in range(len(raw)):  # every truncation
        with contextlib.suppress(EncodingError):
            parse(raw[:position])
    count = 0
    for variant in _variants(decode(raw)):  # every one-part change that still decodes
        count += 1
        with contextlib.suppress(EncodingError):
            parse(encode(variant))
    assert count > 100


def test_a_field_type_without_canonical_form_is_a_definition_error() -> None:
    import dataclasses

    from fedray.core.codec import encode_as
    from fedray.errors import DefinitionError

    @dataclasses.dataclass(frozen=True)
    class Odd:
        value: float

    with pytest.raises(DefinitionError):
        encode_as(Odd, Odd(1.0))
