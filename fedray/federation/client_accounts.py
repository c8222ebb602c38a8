"""The driver's copy of every client's account, for the per-round metrics row.

A round's row lists every client's balance, stake and exclusion (`metrics.round_row`). Asking the
chain for all of them each round costs a query that grows with the population (and one query
takes at most 4,096 keys). In a run, a client account changes only through:
- the transactions of a selected client (an update or skip pays its gas) and the round's reward,
  both limited to the clients selected in the round just closed or in the one open now;
- a penalty (slashing, jail, ban), which names its offender in the economy section;
- governance: client votes pay gas, and a ban or admission changes any client.
So the copy is read in full once (in chunks) and then refreshed for those accounts only; a run
with governance actions refreshes in full every round, as before.

Deliberately ignored: transfers between clients (a run's clients send none).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from fedray.node.views import AccountInfo, EconomyInfo, RoundResultView

CHUNK = 4096  # keys per query (the validators' limit)

Fetch = Callable[[list[bytes]], Mapping[bytes, AccountInfo]]


class ClientAccounts:
    def __init__(self, keys: Sequence[bytes], fetch: Fetch, *, governance: bool = False) -> None:
        self.keys = tuple(keys)
        self._fetch = fetch
        self._full_each_round = governance
        self._known: dict[bytes, AccountInfo] = {}
        self.queried = 0  # accounts asked for so far (what the population-scale test counts)

    def _read(self, keys: list[bytes]) -> None:
        for start in range(0, len(keys), CHUNK):
            chunk = keys[start : start + CHUNK]
            self._known.update(self._fetch(chunk))
            self.queried += len(chunk)

    def read_all(self) -> dict[bytes, AccountInfo]:
        """Every client's account now, read in full (in chunks), e.g. for the run's summary."""
        self._read(list(self.keys))
        return self._known

    def after_round(
        self, result: RoundResultView, open_selected: Iterable[bytes], economy: EconomyInfo
    ) -> dict[bytes, AccountInfo]:
        """Every client's account now, having read only what the round could have changed."""
        if self._full_each_round or not self._known:
            self._read(list(self.keys))
        else:
            clients = set(self.keys)
            touched = {*result.selected_clients, *open_selected}
            touched.update(p.offender for p in economy.penalties)
            self._read(sorted(touched & clients))
        return self._known
