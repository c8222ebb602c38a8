"""The mempool: admitted transactions waiting for a block, with stateful prechecks and a record of
every rejection.

Admission runs a transaction against the last committed state in a scratch journal that also holds
the pending transactions before it, so a sender can queue several nonces and a transaction that could
never apply (replayed nonce, unselected client, closed round) is refused at once with its typed
error instead of sitting in the pool. After each commit the pool drops what the block included and
rechecks the rest against the new state.

Deliberately ignored: fee-based priority and eviction (transactions are proposed in arrival order
per sender, nonce order within a sender).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from fedray.core.context import BlockEnv, ExecContext
from fedray.core.encoding import digest
from fedray.core.journal import Journal
from fedray.core.state import Params, State
from fedray.core.transition import CheckedTx, check_tx_stateless, execute_tx
from fedray.core.tx import SignedTx
from fedray.errors import FedrayError, OversizedError


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
    """Pending transactions in arrival order; thread-compatible (the owner serializes calls)."""

    def __init__(
        self, max_txs: int = 100_000, on_reject: Callable[[Rejection], None] | None = None
    ) -> None:
        self.max_txs = max_txs
        self.on_reject = on_reject
        # checked on admission (signature included): rechecks and blocks reuse the decoded form
        self._txs: OrderedDict[bytes, CheckedTx] = OrderedDict()
        self._journal: Journal | None = None
        self._state: State | None = None
        self.rejected = 0

    def __len__(self) -> int:
        return len(self._txs)

    def __contains__(self, tx_hash: object) -> bool:
        return tx_hash in self._txs

    def _ctx(self, state: State, env: BlockEnv) -> ExecContext:
        proposer = state.validators.keys[0]
        return ExecContext(state.height + 1, state.last_block_time + 1, proposer, env)

    def _reject(self, stx: SignedTx | None, raw: bytes, exc: FedrayError, height: int) -> Rejection:
        self.rejected += 1
        sender = stx.tx.sender if stx else b""
        kind = stx.tx.kind if stx else ""
        tx_hash = stx.hash if stx else b""
        rejection = Rejection(tx_hash, sender, kind, exc.code, str(exc), height)
        if self.on_reject is not None:
            self.on_reject(rejection)
        return rejection

    def add(self, raw: bytes, state: State, env: BlockEnv) -> Rejection | None:
        """Admit `raw` if it applies after the pending transactions; else record why not."""
        try:
            checked = check_tx_stateless(
                raw, state.chain_id, state.params.max_tx_bytes, env.verified
            )
        except FedrayError as exc:
            return self._reject(None, raw, exc, state.height)
        return self.add_checked(checked, state, env)

    def add_checked(self, checked: CheckedTx, state: State, env: BlockEnv) -> Rejection | None:
        """Admit a transaction that passed the stateless rules (`check_tx_stateless`, signature
        included) if it applies after the pending transactions; else record why not."""
        stx = checked.stx
        try:
            if len(self._txs) >= self.max_txs:
                raise OversizedError(f"mempool is full ({self.max_txs} transactions)")
            if checked.size > state.params.max_tx_bytes:
                raise OversizedError(
                    f"transaction has {checked.size} bytes, limit is {state.params.max_tx_bytes}"
                )
            if stx.hash in self._txs:
                return None
            if self._state is not state or self._journal is None:
                self._rebuild(state, env)
            assert self._journal is not None
            execute_tx(self._journal, checked, self._ctx(state, env))
        except FedrayError as exc:
            return self._reject(stx, stx.raw, exc, state.height)
        self._txs[stx.hash] = checked
        return None

    def _rebuild(self, state: State, env: BlockEnv) -> None:
        """Re-run the pending transactions on `state`; drop (and record) those that no longer apply."""
        self._state, self._journal = state, Journal(state)
        ctx = self._ctx(state, env)
        for tx_hash, checked in list(self._txs.items()):
            try:
                # the stateless rules held on admission; only the size limit can change since
                if checked.size > state.params.max_tx_bytes:
                    raise OversizedError(
                        f"transaction has {checked.size} bytes, limit is "
                        f"{state.params.max_tx_bytes}"
                    )
                execute_tx(self._journal, checked, ctx)
            except FedrayError as exc:
                del self._txs[tx_hash]
                self._reject(checked.stx, checked.stx.raw, exc, state.height)

    def committed(self, included: Iterable[bytes], state: State, env: BlockEnv) -> None:
        """Drop the transactions a committed block included; recheck the rest on the new state."""
        for tx_hash in included:
            self._txs.pop(tx_hash, None)
        self._rebuild(state, env)

    def pending(self) -> list[SignedTx]:
        return [c.stx for c in self._txs.values()]

    def checked_by_bytes(self) -> dict[bytes, CheckedTx]:
        """The pending transactions as checked on admission, by their bytes (`BlockEnv.checked`)."""
        return {c.stx.raw: c for c in self._txs.values()}

    def hashes(self) -> set[bytes]:
        return set(self._txs)

    def candidates(self, limit: int | None = None) -> list[bytes]:
        """Pending transactions in arrival order (each sender's nonces stay in order, since they
        were admitted in order)."""
        out = [c.stx.raw for c in self._txs.values()]
        return out if limit is None else out[:limit]

    def fill(self, candidates: Iterable[bytes], params: Params) -> list[bytes]:
        """The longest run of `candidates` (pending raw transactions, in order) within a block's
        count, byte and gas limits, cut where `select_txs` would stop (a transaction's gas needs
        no state: its kind's base gas plus its bytes)."""
        by_hash = self._txs
        out: list[bytes] = []
        gas_total = used_bytes = 0
        for raw in candidates:
            checked = by_hash[digest(raw)]
            gas = checked.spec.base_gas + params.gas_per_byte * checked.size
            if (
                len(out) >= params.max_block_txs
                or used_bytes + len(raw) > params.max_block_bytes
                or gas_total + gas > params.block_gas_limit
            ):
                break
            out.append(raw)
            gas_total += gas
            used_bytes += len(raw)
        return out
