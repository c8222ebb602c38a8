"""The mempool: admitted transactions waiting for a block, ordered by sender and nonce, with stateful
prechecks and a record of every rejection.

*Ready* transactions form, per sender, a run of consecutive nonces from its committed nonce. The
first of them in the proposal order (`mempool_order`: every sender's first, senders in key
order, then every sender's second, ...), about `WINDOW_BLOCKS` blocks by whichever of the count,
byte and gas limits binds first, form the *window*: they ran, in the order they became ready, on
the committed state in a scratch journal. The rest are *queued*: checked (signature, nonce
against the committed nonce plus the sender's ready count), not run. *Held* transactions skip
ahead of their sender's next nonce and wait (at most `MAX_AHEAD` ahead, `MAX_HELD_PER_SENDER`
per sender) until the gap closes, instead of failing in a block.

Admission refuses at once what the stateless rules refuse and what the nonces show can never
apply (replayed nonce, gap too far, a second transaction of a nonce). One that enters the window
runs at once, refused if it fails (unselected client, closed round, insufficient balance, ...);
a queued one is refused with the same typed error, recorded as a `Rejection`, *when its turn
comes*: when a commit brings it into the window, before any block of this pool could hold it.
So is one that needs another sender's transaction still queued (a transfer funding it), which
used to run after every ready one, and one whose nonce another pool's block used (found when
its sender is next touched, or in its turn).

After each commit the pool drops what the block included, refuses as replays its senders'
transactions whose nonce the block passed, and runs only the new window on the new state: that
work is bounded by the window, not the backlog. A transaction refused in the window takes its
sender's later ones out (held behind the gap, as before) and the window is topped up. Between
commits an admission runs only if its rank key comes before the window's last (`_frontier`), so
the window stays a prefix of the proposal order. A proposal takes the window in that order
(`candidates`) and `fill` packs it by gas (one that does not fit is left out with its sender's
later nonces): the block is the one the whole ready set would give unless packing leaves out
more than a block's worth of the window. `round_outstanding` is false while a queue waits.

Deliberately ignored: fees and replacement by fee (gas has one price: the first transaction seen for
a sender and nonce stays, a second is refused), eviction, cross-sender dependencies in the proposal
order (a transaction that needs another sender's earlier one may come first; the proposer then
falls back to filtering, `LedgerApp.prepare_proposal`).
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Iterable

from fedray.core.context import BlockEnv, ExecContext
from fedray.core.encoding import digest
from fedray.core.journal import Journal
from fedray.core.state import Params, State
from fedray.core.transition import CheckedTx, check_tx_stateless, execute_tx
from fedray.core.tx import SignedTx
from fedray.errors import FedrayError, NonceGapError, OversizedError, UnknownAccountError
from fedray.node import mempool_order as order
from fedray.node.mempool_held import (
    MAX_AHEAD,
    MAX_HELD_PER_SENDER,
    Held,
    Rejection,
    check_size,
    replay_error,
)

__all__ = ["MAX_AHEAD", "MAX_HELD_PER_SENDER", "WINDOW_BLOCKS", "Mempool", "Rejection"]

WINDOW_BLOCKS = 2
"""Blocks' worth of ready transactions the pool keeps executed (the rest wait, checked)."""


class Mempool:
    """Ready (window and queued) and held transactions (see module docstring);
    thread-compatible (the owner serializes calls)."""

    def __init__(
        self,
        max_txs: int = 100_000,
        on_reject: Callable[[Rejection], None] | None = None,
        window_blocks: int = WINDOW_BLOCKS,
        available: Callable[[bytes], bool] | None = None,
    ) -> None:
        self.max_txs = max_txs
        self.on_reject = on_reject
        self.window_blocks = window_blocks
        self.available = available  # as in `candidates`: the window passes over what it refuses
        # checked on admission (signature included): reruns and blocks reuse the decoded form
        self._ready: dict[bytes, CheckedTx] = {}  # hash -> tx, in the order they became ready
        self._turn: dict[bytes, int] = {}  # hash -> when it became ready (the window's run order)
        self._turns = itertools.count()
        self._chains: dict[bytes, list[CheckedTx]] = {}  # sender -> its ready txs, nonce order
        self._senders: list[bytes] = []  # the keys of `_chains`, sorted
        self._ran: dict[bytes, int] = {}  # sender -> how many of its chain the journal ran (> 0)
        self._frontier: order.RankKey | None = None  # the window's last rank key; None: all of it
        self._since = (0, 0, 0)  # txs, bytes, gas run since `_frontier` was last found
        self._held = Held()
        self._journal: Journal | None = None
        self._state: State | None = None
        self.rejected = 0

    def __len__(self) -> int:
        return len(self._ready) + len(self._held)

    def __contains__(self, tx_hash: object) -> bool:
        return tx_hash in self._ready or tx_hash in self._held

    def _ctx(self, state: State, env: BlockEnv) -> ExecContext:
        proposer = state.validators.members[0][0]  # `keys[0]`, without the tuple of every key
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

    def _next_nonce(self, journal: Journal, sender: bytes, height: int) -> int | None:
        """`sender`'s next nonce after the window and its queued transactions (None: no
        account); first refuses the queued ones that a commit of another's block made replays."""
        account = journal.account(sender)
        if account is None:
            return None
        chain = self._chains.get(sender)
        if not chain:
            return account.nonce
        stale = ran = self._ran.get(sender, 0)
        while stale < len(chain) and chain[stale].stx.tx.nonce < account.nonce:
            stale += 1
        for checked in chain[ran:stale]:
            self._refuse_replay(checked, account.nonce, height)
        del chain[ran:stale]
        if not chain:
            self._drop_sender(sender)
        return account.nonce + len(chain) - ran

    def _refuse_replay(self, checked: CheckedTx, expected: int, height: int) -> None:
        self._forget(checked)
        self._reject(checked.stx, replay_error(checked.stx.tx.nonce, expected), height)

    def _forget(self, checked: CheckedTx) -> None:
        del self._ready[checked.stx.hash]
        del self._turn[checked.stx.hash]

    def _drop_sender(self, sender: bytes) -> None:
        del self._chains[sender]
        del self._senders[bisect.bisect_left(self._senders, sender)]
        self._ran.pop(sender, None)

    # --- admission ------------------------------------------------------------------------------
    def add(self, raw: bytes, state: State, env: BlockEnv) -> Rejection | None:
        """Admit `raw` (see `add_checked`), or record why not."""
        try:
            checked = check_tx_stateless(
                raw, state.chain_id, state.params.max_tx_bytes, env.verified
            )
        except FedrayError as exc:
            return self._reject(None, exc, state.height)
        return self.add_checked(checked, state, env)

    def add_checked(self, checked: CheckedTx, state: State, env: BlockEnv) -> Rejection | None:
        """Admit a transaction that passed the stateless rules (`check_tx_stateless`, signature
        included) if its nonce is its sender's next (running it at once if it enters the
        window), or hold it behind a nonce gap; else record why not."""
        stx = checked.stx
        sender, nonce = stx.tx.sender, stx.tx.nonce
        try:
            if stx.hash in self:
                return None
            if len(self) >= self.max_txs:
                raise OversizedError(f"mempool is full ({self.max_txs} transactions)")
            check_size(checked, state.params)
            journal = self._journal_for(state, env)
            expected = self._next_nonce(journal, sender, state.height)
            if expected is not None and nonce > expected:
                self._held.hold(checked, expected)
                return None
            if expected is not None and nonce < expected:
                raise replay_error(nonce, expected)
            self._append(checked, journal, self._ctx(state, env))
        except FedrayError as exc:
            return self._reject(stx, exc, state.height)
        self._promote(sender, state, env)
        return None

    def _append(self, checked: CheckedTx, journal: Journal, ctx: ExecContext) -> None:
        """Make `checked`, its sender's next nonce, ready: run it if its rank key falls in the
        window, else queue it; raise if it runs and fails."""
        stx, sender = checked.stx, checked.stx.tx.sender
        chain = self._chains.get(sender)
        index = len(chain) if chain else 0
        if self._ran.get(sender, 0) == index and (
            self._frontier is None or (index, sender) < self._frontier
        ):
            execute_tx(journal, checked, ctx)
            self._ran[sender] = index + 1
        elif journal.account(sender) is None:
            raise UnknownAccountError(f"sender {sender.hex()[:16]} has no account")
        if chain is None:
            chain = self._chains[sender] = []
            bisect.insort(self._senders, sender)
        chain.append(checked)
        self._ready[stx.hash] = checked
        self._turn[stx.hash] = next(self._turns)
        if self._ran.get(sender, 0) == len(chain):  # it ran: the window's prefix grew
            txs, nbytes, gas = self._since
            params = journal.params
            self._since = (txs + 1, nbytes + checked.size, gas + order.tx_cost(checked, params))
            budget = order.Budget.of(params, self.window_blocks)
            if budget.reached(*self._since):  # the frontier moves down (amortized: a budget's
                self._since = (0, 0, 0)  # worth of runs per walk of a budget)
                self._frontier = self._walk(params, budget).frontier

    def _walk(self, params: Params, budget: order.Budget) -> order.Prefix:
        return order.rank_prefix(self._senders, self._chains, params, budget, self.available)

    def _promote(self, sender: bytes, state: State, env: BlockEnv) -> None:
        """Make ready `sender`'s held transactions whose gap has closed; drop those left behind."""
        journal = self._journal_for(state, env)
        ctx = self._ctx(state, env)
        while (nonce := self._held.first(sender)) is not None:
            expected = self._next_nonce(journal, sender, state.height)
            if expected is None or nonce > expected:
                return
            checked = self._held.take(sender, nonce)
            try:
                if nonce < expected:  # another transaction of this nonce committed meanwhile
                    raise replay_error(nonce, expected)
                self._append(checked, journal, ctx)
            except FedrayError as exc:
                self._reject(checked.stx, exc, state.height)

    # --- after a commit -------------------------------------------------------------------------
    def committed(self, included: Iterable[bytes], state: State, env: BlockEnv) -> None:
        """Drop the transactions a committed block included, refuse as replays those of the
        same senders whose nonce it passed; run the new window on the new state."""
        included = set(included)
        touched: set[bytes] = set()
        for tx_hash in included:
            if (checked := self._ready.get(tx_hash)) is not None:
                touched.add(checked.stx.tx.sender)
            elif (checked := self._held.by_hash.get(tx_hash)) is not None:
                self._held.take(checked.stx.tx.sender, checked.stx.tx.nonce)
        for sender in sorted(touched):
            account = state.account(sender)
            chain, passed = self._chains[sender], 0
            while account and passed < len(chain) and chain[passed].stx.tx.nonce < account.nonce:
                passed += 1
            for checked in chain[:passed]:
                if checked.stx.hash in included:
                    self._forget(checked)
                else:  # another transaction of its nonce committed
                    self._refuse_replay(checked, account.nonce if account else 0, state.height)
            del chain[:passed]
            if not chain:
                self._drop_sender(sender)
        self._rebuild(state, env)

    def _rebuild(self, state: State, env: BlockEnv) -> None:
        """Run the window (the proposal order's first `window_blocks` blocks) on `state`, in the
        order its transactions became ready: a refused one takes its sender's later ones out
        (held behind the gap, or refused), and the window is topped up again. Then make ready
        the held transactions the new state lets through."""
        self._state = state
        journal = self._journal = Journal(state)
        ctx, params = self._ctx(state, env), state.params
        budget = order.Budget.of(params, self.window_blocks)
        self._ran = {}
        while True:
            prefix = self._walk(params, budget)
            due = [
                checked
                for sender, n in prefix.taken.items()
                for checked in self._chains[sender][self._ran.get(sender, 0) : n]
            ]
            due.sort(key=lambda checked: self._turn[checked.stx.hash])
            refused = False
            for checked in due:
                if checked.stx.hash not in self._ready:  # went with an earlier one of its sender
                    continue
                sender = checked.stx.tx.sender
                try:
                    check_size(checked, params)
                    execute_tx(journal, checked, ctx)
                except FedrayError as exc:
                    self._refuse_in_window(checked, exc, journal, state.height)
                    refused = True
                    continue
                self._ran[sender] = self._ran.get(sender, 0) + 1
            if not refused:
                break
        self._frontier = prefix.frontier
        self._since = (0, 0, 0) if prefix.frontier else (prefix.txs, prefix.nbytes, prefix.gas)
        for sender in self._held.senders():
            self._promote(sender, state, env)

    def _refuse_in_window(
        self, checked: CheckedTx, exc: FedrayError, journal: Journal, height: int
    ) -> None:
        """`checked` failed its run in the window: refuse it (or hold it again behind a gap),
        and settle its sender's later ready ones against the sender's nonce: replays refused,
        the rest kept if they follow on, else held (or refused past the holding limits)."""
        sender = checked.stx.tx.sender
        chain = self._chains[sender]
        at = self._ran.get(sender, 0)
        assert chain[at] is checked, "a sender's window runs in nonce order"
        later = chain[at + 1 :]
        del chain[at:]
        self._forget(checked)
        account = journal.account(sender)
        expected = None if account is None else account.nonce
        if isinstance(exc, NonceGapError):
            self._rehold(checked, expected, height)
        else:
            self._reject(checked.stx, exc, height)
        for i, c in enumerate(later):
            nonce = c.stx.tx.nonce
            if expected is not None and nonce < expected:
                self._refuse_replay(c, expected, height)
            elif expected is not None and nonce == expected:  # the rest follows on: still ready
                chain.extend(later[i:])
                break
            else:
                self._forget(c)
                self._rehold(c, expected, height)
        if not chain:
            self._drop_sender(sender)

    def _rehold(self, checked: CheckedTx, expected: int | None, height: int) -> None:
        try:
            if expected is None:
                sender = checked.stx.tx.sender
                raise UnknownAccountError(f"sender {sender.hex()[:16]} has no account")
            self._held.hold(checked, expected)
        except FedrayError as exc:
            self._reject(checked.stx, exc, height)

    # --- views ----------------------------------------------------------------------------------
    def next_nonce(self, sender: bytes, state: State, env: BlockEnv) -> int:
        """The nonce `sender`'s next transaction takes: its committed nonce plus its ready
        transactions (a held one waits behind this gap)."""
        nonce = self._next_nonce(self._journal_for(state, env), sender, state.height)
        return 0 if nonce is None else nonce

    def round_outstanding(self, state: State, env: BlockEnv) -> bool:
        """Whether a round is open and the window leaves some selected client without its turn
        (`LedgerApp.round_outstanding`). Never while transactions queue behind the window: the
        next block is full without waiting for anything."""
        journal = self._journal_for(state, env)
        if len(self._ready) > sum(self._ran.values()):
            return False
        rs = journal.section("rounds")
        return bool(rs.open) and rs.submitted() < len(rs.selected)

    def pending(self) -> list[SignedTx]:
        """The ready transactions (window and queued), in the order they became ready."""
        return [c.stx for c in self._ready.values()]

    def window(self) -> list[SignedTx]:
        """The ready transactions that ran on the committed state, by sender and nonce."""
        return [c.stx for s in sorted(self._ran) for c in self._chains[s][: self._ran[s]]]

    def held(self) -> list[SignedTx]:
        """The transactions waiting behind a nonce gap, by sender and nonce."""
        return self._held.listed()

    def checked_by_bytes(self) -> dict[bytes, CheckedTx]:
        """Every transaction held here as checked on admission, by its bytes (`BlockEnv.checked`:
        another proposer's block may include one this pool still holds)."""
        out = {c.stx.raw: c for c in self._ready.values()}
        out.update((c.stx.raw, c) for c in self._held.by_hash.values())
        return out

    def hashes(self) -> set[bytes]:
        return set(self._ready) | set(self._held.by_hash)

    def candidates(
        self, available: Callable[[bytes], bool] | None = None, limit: int | None = None
    ) -> list[bytes]:
        """The window's transactions in the proposal order (`mempool_order.proposal_order`)."""
        windows = (self._chains[s][: self._ran[s]] for s in sorted(self._ran))
        out = order.proposal_order(windows, available)
        return out if limit is None else out[:limit]

    def fill(self, candidates: Iterable[bytes], params: Params) -> list[bytes]:
        """The candidates (window transactions, in proposal order) packed into a block's count,
        byte and gas limits (`mempool_order.pack`)."""
        return order.pack(candidates, lambda raw: self._ready[digest(raw)], params)
