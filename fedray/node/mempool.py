"""The mempool: admitted transactions waiting for a block, ordered by sender and nonce, with stateful
prechecks and a record of every rejection.

Two sets. *Ready* transactions apply, in the order they became ready, on the last committed state:
admission runs each in a scratch journal after the ready ones before it, so a sender can queue
several nonces and a transaction that could never apply (replayed nonce, unselected client, closed
round) is refused at once with its typed error. *Held* transactions skip ahead of their sender's next
nonce: they wait (at most `MAX_AHEAD` nonces ahead, `MAX_HELD_PER_SENDER` per sender) until the gap
closes, then run and become ready, instead of failing in a block. After each commit the pool drops
what the block included and reruns the rest on the new state; a ready transaction whose predecessor
is gone is held again.

A proposal takes ready transactions by sender and nonce (`candidates`): every sender's first, in
sender order, then every sender's second, and so on, so the order is a function of the pool's
contents alone and a busy sender cannot crowd the others out of a block. `fill` packs them by gas:
a transaction that would pass the block's gas or byte budget is left out with its sender's later
nonces, and smaller transactions of other senders still fill the block.

Deliberately ignored: fees and replacement by fee (gas has one price: the first transaction seen for
a sender and nonce stays, a second is refused), eviction, cross-sender dependencies in the proposal
order (a transaction that needs another sender's earlier one may come first; the proposer then
falls back to filtering, `LedgerApp.prepare_proposal`).
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from fedray.core.context import BlockEnv, ExecContext
from fedray.core.encoding import digest
from fedray.core.journal import Journal
from fedray.core.state import Params, State
from fedray.core.transition import CheckedTx, check_tx_stateless, execute_tx
from fedray.core.tx import SignedTx
from fedray.errors import FedrayError, NonceGapError, NonceReplayError, OversizedError

MAX_AHEAD = 64
"""Furthest a held transaction's nonce may be ahead of its sender's next one."""
MAX_HELD_PER_SENDER = 64


@dataclass(frozen=True)
class Rejection:
    tx_hash: bytes
    sender: bytes
    kind: str
    code: str
    message: str
    height: int  # committed height when it was rejected

    @staticmethod
    def of(stx: SignedTx | None, exc: FedrayError, height: int) -> Rejection:
        """The record of `stx` (None: bytes that do not decode) refused with `exc`."""
        return Rejection(
            stx.hash if stx else b"",
            stx.tx.sender if stx else b"",
            stx.tx.kind if stx else "",
            exc.code,
            str(exc),
            height,
        )


class Mempool:
    """Ready and held transactions (see module docstring); thread-compatible (the owner serializes
    calls)."""

    def __init__(
        self, max_txs: int = 100_000, on_reject: Callable[[Rejection], None] | None = None
    ) -> None:
        self.max_txs = max_txs
        self.on_reject = on_reject
        # checked on admission (signature included): reruns and blocks reuse the decoded form
        self._ready: OrderedDict[bytes, CheckedTx] = OrderedDict()  # in journal order
        self._held: dict[bytes, dict[int, CheckedTx]] = {}  # sender -> nonce -> transaction
        self._held_hashes: set[bytes] = set()
        self._journal: Journal | None = None
        self._state: State | None = None
        self.rejected = 0

    def __len__(self) -> int:
        return len(self._ready) + len(self._held_hashes)

    def __contains__(self, tx_hash: object) -> bool:
        return tx_hash in self._ready or tx_hash in self._held_hashes

    def _ctx(self, state: State, env: BlockEnv) -> ExecContext:
        proposer = state.validators.keys[0]
        return ExecContext(state.height + 1, state.last_block_time + 1, proposer, env)

    def _reject(self, stx: SignedTx | None, exc: FedrayError, height: int) -> Rejection:
        self.rejected += 1
        rejection = Rejection.of(stx, exc, height)
        if self.on_reject is not None:
            self.on_reject(rejection)
        return rejection

    def _journal_for(self, state: State, env: BlockEnv) -> Journal:
        if self._state is not state or self._journal is None:
            self._rebuild(state, env)
        assert self._journal is not None
        return self._journal

    def _next_nonce(self, journal: Journal, sender: bytes) -> int | None:
        account = journal.account(sender)
        return None if account is None else account.nonce

    # --- admission ------------------------------------------------------------------------------
    def add(self, raw: bytes, state: State, env: BlockEnv) -> Rejection | None:
        """Admit `raw` if it applies after the ready transactions, or hold it behind a nonce gap;
        else record why not."""
        try:
            checked = check_tx_stateless(
                raw, state.chain_id, state.params.max_tx_bytes, env.verified
            )
        except FedrayError as exc:
            return self._reject(None, exc, state.height)
        return self.add_checked(checked, state, env)

    def add_checked(self, checked: CheckedTx, state: State, env: BlockEnv) -> Rejection | None:
        """Admit a transaction that passed the stateless rules (`check_tx_stateless`, signature
        included) if it applies after the ready transactions, or hold it behind a nonce gap;
        else record why not."""
        stx = checked.stx
        try:
            if stx.hash in self:
                return None
            if len(self) >= self.max_txs:
                raise OversizedError(f"mempool is full ({self.max_txs} transactions)")
            if checked.size > state.params.max_tx_bytes:
                raise OversizedError(
                    f"transaction has {checked.size} bytes, limit is {state.params.max_tx_bytes}"
                )
            journal = self._journal_for(state, env)
            expected = self._next_nonce(journal, stx.tx.sender)
            if expected is not None and stx.tx.nonce > expected:
                self._hold(checked, expected)
                return None
            execute_tx(journal, checked, self._ctx(state, env))
        except FedrayError as exc:
            return self._reject(stx, exc, state.height)
        self._ready[stx.hash] = checked
        self._promote(stx.tx.sender, state, env)
        return None

    def _hold(self, checked: CheckedTx, expected: int) -> None:
        tx = checked.stx.tx
        held = self._held.setdefault(tx.sender, {})
        if tx.nonce - expected > MAX_AHEAD:
            raise NonceGapError(
                f"nonce {tx.nonce} is more than {MAX_AHEAD} ahead (next is {expected})"
            )
        if tx.nonce in held:
            raise NonceReplayError(f"nonce {tx.nonce} is already held for this sender")
        if len(held) >= MAX_HELD_PER_SENDER:
            raise NonceGapError(f"sender already has {MAX_HELD_PER_SENDER} held transactions")
        held[tx.nonce] = checked
        self._held_hashes.add(checked.stx.hash)

    def _unhold(self, sender: bytes, nonce: int) -> CheckedTx:
        held = self._held[sender]
        checked = held.pop(nonce)
        if not held:
            del self._held[sender]
        self._held_hashes.discard(checked.stx.hash)
        return checked

    def _promote(self, sender: bytes, state: State, env: BlockEnv) -> None:
        """Run `sender`'s held transactions whose gap has closed; drop those left behind."""
        journal = self._journal_for(state, env)
        ctx = self._ctx(state, env)
        while sender in self._held:
            expected = self._next_nonce(journal, sender)
            if expected is None:
                return
            nonce = min(self._held[sender])
            if nonce > expected:
                return
            checked = self._unhold(sender, nonce)
            try:
                if nonce < expected:  # another transaction of this nonce committed meanwhile
                    raise NonceReplayError(f"nonce {nonce} already used (next is {expected})")
                execute_tx(journal, checked, ctx)
            except FedrayError as exc:
                self._reject(checked.stx, exc, state.height)
                continue
            self._ready[checked.stx.hash] = checked

    def _rebuild(self, state: State, env: BlockEnv) -> None:
        """Rerun the ready transactions on `state`: hold those behind a new gap, drop (and record)
        those that no longer apply; then promote what the new state lets through."""
        self._state, self._journal = state, Journal(state)
        ctx = self._ctx(state, env)
        for tx_hash, checked in list(self._ready.items()):
            try:
                # the stateless rules held on admission; only the size limit can change since
                if checked.size > state.params.max_tx_bytes:
                    raise OversizedError(
                        f"transaction has {checked.size} bytes, limit is "
                        f"{state.params.max_tx_bytes}"
                    )
                execute_tx(self._journal, checked, ctx)
            except NonceGapError:
                del self._ready[tx_hash]
                expected = self._next_nonce(self._journal, checked.stx.tx.sender)
                try:
                    self._hold(checked, expected if expected is not None else 0)
                except FedrayError as exc:
                    self._reject(checked.stx, exc, state.height)
            except FedrayError as exc:
                del self._ready[tx_hash]
                self._reject(checked.stx, exc, state.height)
        for sender in sorted(self._held):
            self._promote(sender, state, env)

    def committed(self, included: Iterable[bytes], state: State, env: BlockEnv) -> None:
        """Drop the transactions a committed block included; rerun the rest on the new state."""
        for tx_hash in included:
            if self._ready.pop(tx_hash, None) is None and tx_hash in self._held_hashes:
                for sender, held in list(self._held.items()):
                    for nonce, c in list(held.items()):
                        if c.stx.hash == tx_hash:
                            self._unhold(sender, nonce)
        self._rebuild(state, env)

    # --- views ----------------------------------------------------------------------------------
    def next_nonce(self, sender: bytes, state: State, env: BlockEnv) -> int:
        """The nonce `sender`'s next transaction takes: its committed nonce plus its ready
        transactions (a held one waits behind this gap)."""
        nonce = self._next_nonce(self._journal_for(state, env), sender)
        return 0 if nonce is None else nonce

    def round_outstanding(self, state: State, env: BlockEnv) -> bool:
        """Whether a round is open and its ready transactions leave some selected client without
        its turn (`LedgerApp.round_outstanding`)."""
        rs = self._journal_for(state, env).section("rounds")
        return bool(rs.open) and rs.submitted() < len(rs.selected)

    def pending(self) -> list[SignedTx]:
        """The ready transactions, in the order they became ready."""
        return [c.stx for c in self._ready.values()]

    def held(self) -> list[SignedTx]:
        """The transactions waiting behind a nonce gap, by sender and nonce."""
        return [self._held[s][n].stx for s in sorted(self._held) for n in sorted(self._held[s])]

    def checked_by_bytes(self) -> dict[bytes, CheckedTx]:
        """Every transaction held here as checked on admission, by its bytes (`BlockEnv.checked`:
        another proposer's block may include one this pool still holds)."""
        out = {c.stx.raw: c for c in self._ready.values()}
        out.update((c.stx.raw, c) for held in self._held.values() for c in held.values())
        return out

    def hashes(self) -> set[bytes]:
        return set(self._ready) | self._held_hashes

    def candidates(
        self, available: Callable[[bytes], bool] | None = None, limit: int | None = None
    ) -> list[bytes]:
        """The ready transactions by sender and nonce: each sender's first (senders in key
        order), then each one's second, and so on. A transaction `available` refuses (its
        payload is not here) leaves out its sender's later nonces too."""
        by_sender: dict[bytes, list[bytes]] = {}
        blocked: set[bytes] = set()
        for c in self._ready.values():  # a sender's ready transactions run in nonce order
            sender = c.stx.tx.sender
            if sender in blocked:
                continue
            if available is not None and not available(c.stx.raw):
                blocked.add(sender)
                continue
            by_sender.setdefault(sender, []).append(c.stx.raw)
        queues = [by_sender[s] for s in sorted(by_sender)]
        ranks = itertools.zip_longest(*queues)
        out = [raw for rank in ranks for raw in rank if raw is not None]
        return out if limit is None else out[:limit]

    def fill(self, candidates: Iterable[bytes], params: Params) -> list[bytes]:
        """The candidates (ready raw transactions, in proposal order) packed into a block's count,
        byte and gas limits: one that does not fit is left out with its sender's later nonces,
        and packing goes on with the others (a transaction's gas needs no state: its kind's base
        gas plus its bytes, `transition.tx_gas`)."""
        out: list[bytes] = []
        gas_total = used_bytes = 0
        skipped: set[bytes] = set()
        for raw in candidates:
            if len(out) >= params.max_block_txs:
                break
            checked = self._ready[digest(raw)]
            sender = checked.stx.tx.sender
            if sender in skipped:
                continue
            gas = checked.spec.base_gas + params.gas_per_byte * checked.size
            if (
                used_bytes + len(raw) > params.max_block_bytes
                or gas_total + gas > params.block_gas_limit
            ):
                skipped.add(sender)
                continue
            out.append(raw)
            gas_total += gas
            used_bytes += len(raw)
        return out
