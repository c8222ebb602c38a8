"""Ledger core figures: Ed25519 verify rate (PyNaCl vs cryptography), signed transfers applied per
second, state-root update cost for a 1,000-tx block over 10,000 accounts, SQLite commit per block.

Run: `python experiments/bench_core.py [--accounts 10000 --txs 1000 --repeats 5]`. Figures are
medians of repeats, measured side by side in one process; the machine is shared, so compare ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable

import fedray.core  # noqa: F401
from fedray.core.context import ExecContext
from fedray.core.contracts.accounts import Transfer
from fedray.core.crypto import DOMAIN_TX, key_from_seed, signing_bytes
from fedray.core.devchain import DevChain, certify, dev_genesis
from fedray.core.journal import Journal
from fedray.core.state import AccountsTree, GenesisAccount
from fedray.core.transition import apply_block, check_tx_stateless, execute_tx
from fedray.core.tx import make_tx
from fedray.storage.blockstore import BlockStore


def median_time(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_verify(n: int, repeats: int) -> None:
    import nacl.bindings
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    key = key_from_seed(b"bench")
    msg = signing_bytes(DOMAIN_TX, "bench", os.urandom(180))
    sig = key.sign(DOMAIN_TX, "bench", msg[len(signing_bytes(DOMAIN_TX, "bench", b"")) :])
    pub = key.public_key

    def nacl_verify() -> None:
        for _ in range(n):
            nacl.bindings.crypto_sign_open(sig + msg, pub)

    def crypto_verify() -> None:
        for _ in range(n):
            Ed25519PublicKey.from_public_bytes(pub).verify(sig, msg)

    t_nacl = median_time(nacl_verify, repeats)
    t_crypto = median_time(crypto_verify, repeats)
    print(
        f"ed25519 verify/s (1 core): PyNaCl {n / t_nacl:,.0f}  cryptography {n / t_crypto:,.0f}"
        f"  ratio {t_crypto / t_nacl:.2f}x"
    )


def big_genesis(n_accounts: int):  # type: ignore[no-untyped-def]
    genesis, vkeys, _ = dev_genesis("bench", n_validators=4, n_accounts=0)
    keys = [key_from_seed(f"bench/{i}".encode()) for i in range(n_accounts)]
    accounts = genesis.accounts + tuple(GenesisAccount(k.public_key, balance=10**9) for k in keys)
    from dataclasses import replace

    return replace(genesis, accounts=accounts), vkeys, keys


def bench_block(n_accounts: int, n_txs: int, repeats: int) -> None:
    genesis, vkeys, keys = big_genesis(n_accounts)
    chain = DevChain(genesis, vkeys)
    state = chain.state
    txs = [
        make_tx(
            keys[i], genesis.chain_id, 0, Transfer(keys[(i * 7 + 1) % n_accounts].public_key, 5)
        ).raw
        for i in range(n_txs)
    ]
    block = chain.propose(txs)
    ctx = ExecContext(1, block.header.time, block.header.proposer)

    def verify_and_apply() -> None:
        journal = Journal(state)
        for raw in txs:
            execute_tx(journal, check_tx_stateless(raw, state.chain_id, 4096), ctx)

    def apply_only() -> None:
        verified = frozenset(
            c.stx.hash for c in (check_tx_stateless(r, state.chain_id, 4096) for r in txs)
        )
        journal = Journal(state)
        t = time.perf_counter()
        for raw in txs:
            execute_tx(journal, check_tx_stateless(raw, state.chain_id, 4096, verified), ctx)
        apply_only.elapsed = time.perf_counter() - t  # type: ignore[attr-defined]

    t_full = median_time(verify_and_apply, repeats)
    apply_only()
    print(
        f"signed transfers verify+apply: {n_txs / t_full:,.0f} tx/s "
        f"(apply without verify {n_txs / apply_only.elapsed:,.0f} tx/s)"
    )  # type: ignore[attr-defined]

    # State-root update: the touched accounts of a 1,000-tx block over the whole population.
    journal = Journal(state)
    for raw in txs:
        execute_tx(journal, check_tx_stateless(raw, state.chain_id, 4096), ctx)
    changes = dict(journal._accounts)  # noqa: SLF001 - the overlay is what a block folds in
    tree = state.accounts

    def incremental() -> None:
        tree.updated(changes).root()

    merged = {**tree.accounts, **changes}

    def rebuild() -> None:
        AccountsTree.build(merged).root()

    t_inc = median_time(incremental, repeats)
    t_full_root = median_time(rebuild, max(1, repeats // 2))
    print(
        f"state root update, {n_txs}-tx block ({len(changes)} accounts touched) over "
        f"{len(merged):,} accounts: incremental {t_inc * 1e3:.1f} ms, full rebuild "
        f"{t_full_root * 1e3:.1f} ms ({t_full_root / t_inc:.1f}x)"
    )
    t_block = median_time(lambda: apply_block(state, block), repeats)
    print(
        f"apply_block with {n_txs} transfers (verify + apply + root): {t_block * 1e3:.0f} ms "
        f"= {n_txs / t_block:,.0f} tx/s"
    )


def bench_sqlite(n_blocks: int, n_txs: int) -> None:
    genesis, vkeys, akeys = dev_genesis("bench-sql", n_accounts=n_txs)
    chain = DevChain(genesis, vkeys)
    nonces = [0] * n_txs
    with tempfile.TemporaryDirectory() as d, BlockStore(d, snapshot_interval=0) as store:
        store.init_genesis(genesis)
        times = []
        for _ in range(n_blocks):
            txs = []
            for i, key in enumerate(akeys):
                txs.append(
                    make_tx(key, genesis.chain_id, nonces[i], Transfer(akeys[0].public_key, 1)).raw
                )
                nonces[i] += 1
            block = chain.advance(txs)
            cert = certify(block, vkeys, genesis.chain_id)
            t = time.perf_counter()
            store.append(block, cert, chain.state)
            times.append(time.perf_counter() - t)
        size = len(block.raw)
    times.sort()
    print(
        f"sqlite commit per block ({n_txs} txs, {size / 1024:.0f} KiB, WAL, synchronous=FULL): "
        f"p50 {times[len(times) // 2] * 1e3:.1f} ms, p90 {times[int(len(times) * 0.9)] * 1e3:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--txs", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--blocks", type=int, default=30)
    args = parser.parse_args()
    bench_verify(5_000, args.repeats)
    bench_block(args.accounts, args.txs, args.repeats)
    bench_sqlite(args.blocks, 100)


if __name__ == "__main__":
    main()
