"""Ledger throughput on local Ray (`fedray bench tx`): signed transfers from many funded accounts,
submitted in batches through each validator's ingress (the face client pools hold), against a
fresh validator network; committed tx/s, gas/s and commit latency next to the signature limit.

Each account is served by one ingress (account i by validator i mod V), so its nonces reach one
mempool in order; each ingress gets its batches one after another, the ingresses in parallel.
Latency is, per transaction, the first commit of its block by any validator minus the moment its
batch was sent (one machine, one clock). The window runs from the first submission to the commit of
the last block holding load. The limit is `cores x single-core Ed25519 verify rate / validators`:
every validator must verify every signature once, and they share this machine's cores. The verify
rate is PyNaCl's, timed in this process on the thread's CPU clock just before and just after the
load (their mean is used). CPU per committed transaction (the validators', and the rest of the
processes the run started: ingress actors with `--ingress actor`, Ray's own) is read from /proc over
the window: on a shared machine it moves less than tx/s. Figures, not pass/fail: compare runs side
by side.

Deliberately ignored: other transaction kinds, faults, and gas prices (fees are the defaults).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedray.core.block import Block
from fedray.core.contracts.accounts import TRANSFER, Transfer
from fedray.core.crypto import DOMAIN_TX, PrivateKey, key_from_seed, signing_bytes
from fedray.core.devchain import dev_genesis
from fedray.core.encoding import digest
from fedray.core.state import Genesis, GenesisAccount
from fedray.core.tx import SignedTx, make_tx
from fedray.errors import ConfigError
from fedray.runtime.consensus_bench import percentile
from fedray.runtime.ingress import Layout
from fedray.runtime.localnet import ValidatorNet

CHAIN_ID = "fedray-bench-tx"
BALANCE = 10**12
POLL_S = 0.25
VERIFY_SAMPLE_S = 0.5
LAYOUT: Layout = {
    "w": ("float32", (1,))
}  # the ingress wants a model layout; transfers carry no payload


@dataclass(frozen=True)
class TxBenchResult:
    validators: int
    submitted: int
    admitted: int
    committed: int
    blocks: int
    seconds: float  # first submission to the commit of the last block holding load
    submit_s: float  # first submission to the last batch's answer
    gas: int
    latency_p50_ms: float
    latency_p99_ms: float
    verify_per_s: float  # single-core PyNaCl rate, mean of before and after the load
    workers: int  # signature-checking threads per validator and per ingress (0: the default)
    verify_before: float
    verify_after: float
    cores: int
    load_avg: float
    cpu_validators_s: float  # CPU of the validator processes over the window
    cpu_rest_s: float  # CPU of the other processes this run started (ingresses, Ray's own)

    @property
    def tx_per_s(self) -> float:
        return self.committed / self.seconds if self.seconds > 0 else 0.0

    @property
    def limit(self) -> float:
        return self.cores * self.verify_per_s / self.validators

    def lines(self) -> list[str]:
        return [
            f"validators={self.validators} submitted={self.submitted} admitted={self.admitted} "
            f"committed={self.committed} blocks={self.blocks} seconds={self.seconds:.2f} "
            f"submit_s={self.submit_s:.2f} load_avg={self.load_avg:.1f} "
            f"verify_workers={self.workers or 'default'}",
            f"gas/s={self.gas / self.seconds if self.seconds else 0.0:.0f} "
            f"latency_p50_ms={self.latency_p50_ms:.0f} latency_p99_ms={self.latency_p99_ms:.0f}",
            f"verify/s (1 core, PyNaCl)={self.verify_per_s:.0f} (before {self.verify_before:.0f}, "
            f"after {self.verify_after:.0f}) cores={self.cores}",
            f"cpu_ms/tx validators={1000 * self.cpu_validators_s / max(1, self.committed):.3f} "
            f"ingresses+ray={1000 * self.cpu_rest_s / max(1, self.committed):.3f}",
            f"tx/s={self.tx_per_s:.1f} limit={self.limit:.1f} "
            f"ratio={self.tx_per_s / self.limit if self.limit else 0.0:.3f}",
        ]


def verify_rate(stx: SignedTx, seconds: float = VERIFY_SAMPLE_S) -> float:
    """Ed25519 verifications per CPU second on this thread (PyNaCl, a transfer's signed bytes)."""
    import nacl.bindings

    signed = stx.signature + signing_bytes(DOMAIN_TX, stx.tx.chain_id, stx.tx.body_bytes())
    pub = stx.tx.sender
    n, start = 0, time.thread_time()
    while (elapsed := time.thread_time() - start) < seconds:
        for _ in range(200):
            nacl.bindings.crypto_sign_open(signed, pub)
        n += 200
    return n / elapsed


def process_cpu_s() -> dict[int, float]:
    """CPU seconds (user + system) of this process's descendants (Ray's processes when this
    process started Ray, or is the driver that spawned them), by pid; empty off Linux."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    parent: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        pid = int(entry.name)
        parent[pid] = int(fields[1])
        cpu[pid] = (int(fields[11]) + int(fields[12])) / ticks
    mine, todo = set(), [os.getpid()]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent.items() if pp == p and c not in mine]
        mine.update(kids)
        todo.extend(kids)
    return {p: cpu[p] for p in mine}


def bench_genesis(
    validators: int, accounts: int
) -> tuple[Genesis, list[PrivateKey], list[PrivateKey]]:
    genesis, vkeys, _ = dev_genesis(CHAIN_ID, n_validators=validators, n_accounts=0)
    keys = [key_from_seed(f"{CHAIN_ID}/sender/{i}".encode()) for i in range(accounts)]
    funded = tuple(GenesisAccount(k.public_key, balance=BALANCE) for k in keys)
    return (
        Genesis(CHAIN_ID, genesis.genesis_time, genesis.accounts + funded, genesis.params),
        vkeys,
        keys,
    )


def signed_load(keys: Sequence[PrivateKey], txs: int) -> list[SignedTx]:
    """`txs` transfers, nonce-major (every account's nonce 0, then nonce 1, ...)."""
    n = len(keys)
    out = []
    for i in range(txs):
        sender, nonce = keys[i % n], i // n
        to = keys[(i * 7 + 1) % n].public_key
        out.append(make_tx(sender, CHAIN_ID, nonce, Transfer(to, 1)))
    return out


def batches_per_ingress(
    load: Sequence[SignedTx], accounts: int, validators: int, batch: int
) -> list[list[list[SignedTx]]]:
    """Per validator, its accounts' transactions in order, cut into batches."""
    per: list[list[SignedTx]] = [[] for _ in range(validators)]
    for i, stx in enumerate(load):
        per[(i % accounts) % validators].append(stx)
    return [[txs[j : j + batch] for j in range(0, len(txs), batch)] for txs in per]


class _Load:
    """Submission and commit tracking of one run."""

    def __init__(self, net: ValidatorNet, batches: list[list[list[SignedTx]]]) -> None:
        self.net = net
        self.queues = [list(reversed(b)) for b in batches]
        self.sent_ms: dict[bytes, float] = {}
        self.admitted = 0
        self.refusals: dict[str, int] = {}
        self.in_flight: dict[Any, int] = {}  # submit ref -> validator index
        self.height_txs: dict[int, list[bytes]] = {}
        self.fetched = 0

    def _send(self, v: int) -> None:
        if not self.queues[v]:
            return
        batch = self.queues[v].pop()
        now = time.time() * 1000
        for stx in batch:
            self.sent_ms[stx.hash] = now
        ingress = self.net.ingresses[v]
        assert ingress is not None
        ref = ingress.submit.remote([(stx.raw, None, b"") for stx in batch])
        self.in_flight[ref] = v

    def pump(self, timeout_s: float) -> None:
        """Start each idle ingress's next batch, then wait up to `timeout_s` for answers."""
        import ray

        for v in range(len(self.queues)):
            if v not in self.in_flight.values():
                self._send(v)
        if not self.in_flight:
            time.sleep(timeout_s)
            return
        done, _ = ray.wait(list(self.in_flight), num_returns=1, timeout=timeout_s)
        for ref in done:
            v = self.in_flight.pop(ref)
            report = ray.get(ref)
            self.admitted += report.admitted
            for code in report.rejected:
                self.refusals[code] = self.refusals.get(code, 0) + 1
            self._send(v)

    @property
    def submitting(self) -> bool:
        return bool(self.in_flight) or any(self.queues)

    def fetch_blocks(self) -> int:
        """Read newly committed blocks from validator 0; returns load transactions committed."""
        tip = self.net.heights()[0]
        while self.fetched < tip:
            got = self.net.call("committed_range", self.fetched + 1, tip, indices=[0])[0]
            for raw_block, _ in got:
                block = Block.from_bytes(raw_block)
                self.height_txs[block.height] = [digest(raw) for raw in block.txs]
                self.fetched = block.height
        return sum(1 for hs in self.height_txs.values() for h in hs if h in self.sent_ms)


def bench(
    validators: int,
    accounts: int,
    txs: int,
    batch: int,
    seconds_cap: float,
    root: Path,
    workers: int = 0,
    ingress: str = "validator",
) -> TxBenchResult:
    if min(validators, accounts, txs, batch) < 1:
        raise ConfigError("validators, accounts, txs and batch must be positive")
    genesis, vkeys, keys = bench_genesis(validators, accounts)
    load = signed_load(keys, txs)
    net = ValidatorNet(
        root,
        genesis,
        vkeys,
        ingress_layout=LAYOUT,
        ingress=ingress,
        timeout_propose_s=3.0,
        timeout_vote_s=1.0,
        timeout_delta_s=0.5,
        block_interval_s=0.2,
        gossip_s=0.5,
        verify_workers=workers,
    )
    verify_before = verify_rate(load[0])
    try:
        net.start()
        net.wait_for_height(1, 120)
        tracker = _Load(net, batches_per_ingress(load, accounts, validators, batch))
        validator_pids = {st.pid for st in net.call("status")}
        cpu_before = process_cpu_s()
        t0 = time.time()
        deadline = time.monotonic() + seconds_cap
        submit_end = t0
        committed = 0
        while time.monotonic() < deadline:
            if tracker.submitting:
                tracker.pump(POLL_S)
                submit_end = time.time()
            else:
                time.sleep(POLL_S)
            committed = tracker.fetch_blocks()
            if not tracker.submitting and committed >= tracker.admitted:
                break
        cpu_after = process_cpu_s()
        stats = net.call("commit_stats")
        load_avg = os.getloadavg()[0]
    finally:
        net.stop()
    verify_after = verify_rate(load[0])
    first_commit: dict[int, int] = {}
    for per in stats:
        for h, _, _, commit_ms in per:
            first_commit[h] = min(commit_ms, first_commit.get(h, commit_ms))
    latencies, gas, blocks, end_ms = [], 0, 0, t0 * 1000
    sizes = {stx.hash: len(stx.raw) for stx in load}
    for h, hashes in sorted(tracker.height_txs.items()):
        ours = [x for x in hashes if x in tracker.sent_ms]
        if not ours or h not in first_commit:
            continue
        blocks += 1
        end_ms = max(end_ms, first_commit[h])
        latencies += [first_commit[h] - tracker.sent_ms[x] for x in ours]
        gas += sum(TRANSFER.base_gas + genesis.params.gas_per_byte * sizes[x] for x in ours)
    used = {p: c - cpu_before.get(p, 0.0) for p, c in cpu_after.items()}
    cpu_validators = sum(c for p, c in used.items() if p in validator_pids)
    if tracker.refusals:
        print(f"refused: {tracker.refusals}", flush=True)
    return TxBenchResult(
        validators=validators,
        submitted=len(tracker.sent_ms),
        admitted=tracker.admitted,
        committed=len(latencies),
        blocks=blocks,
        seconds=(end_ms - t0 * 1000) / 1000,
        submit_s=submit_end - t0,
        gas=gas,
        latency_p50_ms=statistics.median(latencies) if latencies else 0.0,
        latency_p99_ms=percentile(latencies, 99) if latencies else 0.0,
        verify_per_s=(verify_before + verify_after) / 2,
        workers=workers,
        verify_before=verify_before,
        verify_after=verify_after,
        cores=len(os.sched_getaffinity(0)),
        load_avg=load_avg,
        cpu_validators_s=cpu_validators,
        cpu_rest_s=sum(used.values()) - cpu_validators,
    )


def run(
    validators: int = 4,
    accounts: int = 2000,
    txs: int = 20_000,
    batch: int = 500,
    seconds: float = 120.0,
    workers: int = 0,
    ingress: str = "validator",
) -> TxBenchResult:
    """Start a local Ray instance if none is connected (token auth on, as `fedray run` does)."""
    import ray

    from fedray.runtime.cluster import init_ray

    started = init_ray(num_cpus=2, object_store_mb=128)
    try:
        with tempfile.TemporaryDirectory(prefix="fedray-bench-tx-") as tmp:
            result = bench(validators, accounts, txs, batch, seconds, Path(tmp), workers, ingress)
    finally:
        if started:
            ray.shutdown()
    for line in result.lines():
        print(line, flush=True)
    return result
