"""Validator CPU per committed transfer, in process: what `fedray bench tx` costs a validator
besides consensus messages and Ray. Two `LedgerApp`s (a proposer holding every validator key and a
peer) admit signed transfers from `--accounts` accounts in batches of `--batch` (batch-verified, as
a validator's ingress face does), all before the first block (a burst: the mempool holds a backlog
that is rechecked after every commit), then blocks of at most `--block-txs` are proposed by the
first, checked by the second and committed by both until the mempools are empty.

Run: `python experiments/bench_apply.py [--accounts 1000 --txs 5000 --batch 500] [--profile out]`.
Prints transfers committed per CPU second (process time of both nodes together, so per node it is
twice that), split by phase, and with `--profile` writes a cProfile dump and its top entries.
Signing (the clients' cost) is outside the measured time.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from fedray.core.contracts.accounts import Transfer
from fedray.core.devchain import certify, dev_genesis
from fedray.core.state import Params
from fedray.core.tx import make_tx
from fedray.node.app import LedgerApp

CHAIN = "bench-apply"


def workload(n_accounts: int, n_txs: int, block_txs: int) -> tuple[object, list, list[bytes]]:
    params = Params(max_block_txs=block_txs)
    genesis, vkeys, keys = dev_genesis(CHAIN, n_validators=4, n_accounts=n_accounts, params=params)
    genesis = replace(
        genesis,
        accounts=tuple(
            replace(a, balance=10**12) if not a.is_validator else a for a in genesis.accounts
        ),
    )
    txs = []
    for i in range(n_txs):
        sender, nonce = i % n_accounts, i // n_accounts
        to = keys[(sender * 7 + 1) % n_accounts].public_key
        txs.append(make_tx(keys[sender], CHAIN, nonce, Transfer(to, 5)).raw)
    return genesis, vkeys, txs


def run(genesis: object, vkeys: list, txs: list[bytes], batch: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(dir="/dev/shm" if Path("/dev/shm").is_dir() else None) as d:
        proposer = LedgerApp(Path(d) / "p", genesis, keys=vkeys, verify_workers=1)  # type: ignore[arg-type]
        peer = LedgerApp(Path(d) / "q", genesis, verify_workers=1)  # type: ignore[arg-type]
        phases = {"admit": 0.0, "propose": 0.0, "check": 0.0, "commit": 0.0}
        committed = 0
        for start in range(0, len(txs), batch):
            chunk = txs[start : start + batch]
            t = time.process_time()
            for app in (proposer, peer):
                for verdict in app.verifier.check_all(chunk, app.state.params.max_tx_bytes):
                    assert not isinstance(verdict, Exception), verdict
                    assert app.submit_checked(verdict) is None
            phases["admit"] += time.process_time() - t
        while len(proposer.mempool):
            s = proposer.state
            height = s.height + 1
            who = s.validators.keys[height % len(s.validators)]
            t = time.process_time()
            block = proposer.prepare_proposal(height, 0, who, s.last_block_time + 1000)
            phases["propose"] += time.process_time() - t
            t = time.process_time()
            assert proposer.process_proposal(block) and peer.process_proposal(block)
            phases["check"] += time.process_time() - t
            cert = certify(block, vkeys, CHAIN)
            t = time.process_time()
            for app in (proposer, peer):
                app.finalize_block(block, cert)
                app.commit()
            phases["commit"] += time.process_time() - t
            committed += len(block.txs)
        assert committed == len(txs) and proposer.state.root() == peer.state.root()
        phases["root"] = proposer.state.root().hex()  # type: ignore[assignment]
        phases["blocks"] = proposer.state.height
        proposer.close()
        peer.close()
        return phases


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--accounts", type=int, default=1000)
    ap.add_argument("--txs", type=int, default=5000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--block-txs", type=int, default=500, help="a block's transaction limit")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--profile", help="write a cProfile dump here and print its top entries")
    args = ap.parse_args()
    genesis, vkeys, txs = workload(args.accounts, args.txs, args.block_txs)
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        run(genesis, vkeys, txs, args.batch)
        prof.disable()
        prof.dump_stats(args.profile)
        pstats.Stats(args.profile).sort_stats("tottime").print_stats(30)
        return
    best: dict[str, float] | None = None
    for _ in range(args.repeats):
        phases = run(genesis, vkeys, txs, args.batch)
        total = sum(v for k, v in phases.items() if k in ("admit", "propose", "check", "commit"))
        if best is None or total < best["total"]:
            best = {**phases, "total": total}
    assert best is not None
    n = len(txs)
    print(
        f"blocks={best['blocks']} root={str(best['root'])[:16]} "
        + " ".join(f"{k}={best[k]:.2f}s" for k in ("admit", "propose", "check", "commit"))
    )
    print(
        f"cpu_s={best['total']:.2f} tx_per_cpu_s={n / best['total']:,.0f} "
        f"us_per_tx_per_node={best['total'] / n / 2 * 1e6:,.0f}"
    )


if __name__ == "__main__":
    main()
