"""`ClientHistory`: a map in buckets whose root is rebuilt from the buckets a round touched only,
equal to the root of the same content built from scratch, covering every entry; its canonical form
is the plain map."""

from __future__ import annotations

import random
from types import MappingProxyType

import pytest

from fedray.core.codec import decode_as, encode_as
from fedray.core.contracts import client_history
from fedray.core.contracts.client_history import ClientHistory, Entries
from fedray.core.contracts.slashing import CONDUCT, Conduct


def key(i: int) -> bytes:
    return random.Random(i).randbytes(32)


def entries(i: int, rounds: int = 3) -> Entries:
    return tuple((r, (i + r) % 4, bytes([r % 256]) * 32) for r in range(rounds))


def population(n: int) -> dict[bytes, Entries]:
    return {key(i): entries(i) for i in range(n)}


def test_it_reads_as_the_map_it_holds() -> None:
    plain = population(300)
    history = ClientHistory.build(plain)
    assert dict(history) == plain and len(history) == 300
    assert list(history) == sorted(plain)
    assert history.get(key(7)) == entries(7) and history.get(b"\x00" * 32) is None
    newer = history.updated({key(7): (), key(1000): entries(5)})
    assert newer[key(7)] == () and newer[key(1000)] == entries(5) and len(newer) == 301
    assert history[key(7)] == entries(7)  # the older version is untouched


def test_an_updated_root_equals_the_root_built_from_scratch() -> None:
    history = ClientHistory.build(population(500))
    history.root()
    changes = {key(i): entries(i + 1, 5) for i in range(0, 500, 37)} | {key(900): entries(2)}
    newer = history.updated(changes)
    assert newer.root() == ClientHistory.build(dict(newer)).root()
    assert newer.root() != history.root()


@pytest.mark.parametrize("which", [0, 123, 499])
def test_every_entry_is_in_the_root(which: int) -> None:
    plain = population(500)
    base = ClientHistory.build(plain).root()
    changed = dict(plain)
    round_, flags, payload = changed[key(which)][-1]
    changed[key(which)] = (*changed[key(which)][:-1], (round_, flags ^ 1, payload))
    assert ClientHistory.build(changed).root() != base
    assert ClientHistory.build({k: v for k, v in plain.items() if k != key(which)}).root() != base


def test_a_round_rehashes_only_the_buckets_it_touched(monkeypatch: pytest.MonkeyPatch) -> None:
    history = ClientHistory.build(population(2000))
    history.root()
    hashed: list[bytes] = []
    real = client_history.digest

    def counting(data: bytes) -> bytes:
        hashed.append(data)
        return real(data)

    monkeypatch.setattr(client_history, "digest", counting)
    history.updated({key(5): entries(9), key(6): entries(9)}).root()
    assert len(hashed) == 3  # two buckets and the root


def test_the_canonical_form_is_the_plain_map() -> None:
    plain = population(20)
    history = ClientHistory.build(plain)
    as_map = encode_as(MappingProxyType[bytes, Entries], MappingProxyType(plain))
    conduct = Conduct(MappingProxyType({}), history)
    assert encode_as(Conduct, conduct)[1] == as_map
    assert decode_as(Conduct, encode_as(Conduct, conduct)) == conduct
    assert CONDUCT.from_canonical(CONDUCT.to_canonical(conduct)).history.root() == history.root()
