"""The rounds section's history in the state root: a hash chain over the closed rounds
(`rounds_state.hashed_form`, `hashchain.chain_head`) that still covers every past result, reuses
the heads it has computed, and a decoded section whose derived `used_payloads` disagrees with its
results is refused."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fedray.core.codec import encode_as
from fedray.core.contracts.rounds_state import (
    ROUNDS,
    RoundResult,
    RoundsState,
    UpdateRecord,
    used_payloads_of,
)
from fedray.core.encoding import decode, encode
from fedray.core.hashchain import EMPTY_HEAD, chain_head
from fedray.core.precompiles import UpdateVerdict
from fedray.errors import FieldTypeError

ZERO = b"\x00" * 32


def result(round_: int, clients: int = 3, weight: int = 10_000) -> RoundResult:
    updates = tuple(
        UpdateRecord(bytes([i]) * 32, bytes([round_, i + 1]) * 16, 10, 1024, bytes([i]) * 32)
        for i in range(clients)
    )
    verdicts = tuple(
        UpdateVerdict(bytes([i]) * 32, True, False, False, weight, 0, 0, 0, 0)
        for i in range(clients)
    )
    return RoundResult(round_, 1, 2, "quota", b"a" * 32, b"b" * 32, (), updates, verdicts)


def section(results: tuple[RoundResult, ...]) -> RoundsState:
    return RoundsState(
        round=len(results),
        results=results,
        zero_hash=ZERO,
        used_payloads=used_payloads_of(results, ZERO),
    )


def fresh(results: tuple[RoundResult, ...]) -> tuple[RoundResult, ...]:
    """Equal results without any cached head."""
    return tuple(replace(r) for r in results)


def test_every_past_result_is_in_the_root() -> None:
    history = tuple(result(r) for r in range(4))
    base = ROUNDS.digest(section(history))
    changed = (*history[:1], result(1, weight=9_999), *history[2:])
    assert ROUNDS.digest(section(fresh(changed))) != base
    assert ROUNDS.digest(section(fresh(history[:3]))) != base  # a round left out
    assert ROUNDS.digest(section(fresh(history))) == base  # equal content, equal root


def test_the_open_round_is_in_the_root() -> None:
    rs = section(tuple(result(r) for r in range(2)))
    assert ROUNDS.digest(replace(rs, selected=(b"\x07" * 32,))) != ROUNDS.digest(rs)


def test_the_head_is_the_chain_of_digests() -> None:
    from fedray.core.encoding import digest, hash_value

    history = tuple(result(r) for r in range(3))
    expected = EMPTY_HEAD
    for r in history:
        expected = digest(expected + hash_value(encode_as(RoundResult, r)))
    assert chain_head(fresh(history), lambda r: encode_as(RoundResult, r)) == expected


def test_appending_hashes_only_the_new_result() -> None:
    calls: list[int] = []

    def form(r: RoundResult) -> object:
        calls.append(r.round)
        return encode_as(RoundResult, r)

    history = tuple(result(r) for r in range(5))
    chain_head(history, form)
    calls.clear()
    chain_head((*history, result(5)), form)
    assert calls == [5]


def test_a_cached_head_is_not_reused_after_another_history() -> None:
    def form(r: RoundResult) -> object:
        return encode_as(RoundResult, r)

    a, b, c = result(0), result(1), result(2)
    chain_head((a, b, c), form)  # b and c cache the heads after a
    assert chain_head((b, c), form) == chain_head(fresh((b, c)), form)
    assert chain_head((a, b, c), form) == chain_head(fresh((a, b, c)), form)


def test_a_decoded_section_must_derive_its_used_payloads() -> None:
    rs = section(tuple(result(r) for r in range(2)))
    assert ROUNDS.from_canonical(decode(encode(ROUNDS.to_canonical(rs)))) == rs
    forged = replace(rs, used_payloads=rs.used_payloads | {b"\x09" * 32})
    with pytest.raises(FieldTypeError, match="used_payloads"):
        ROUNDS.from_canonical(decode(encode(ROUNDS.to_canonical(forged))))
    dropped = replace(rs, used_payloads=frozenset())
    with pytest.raises(FieldTypeError, match="used_payloads"):
        ROUNDS.from_canonical(decode(encode(ROUNDS.to_canonical(dropped))))
