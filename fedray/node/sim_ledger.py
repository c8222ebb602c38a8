"""The real ledger app under the consensus simulator: `LedgerChain`, a `SimChain` of `LedgerApp`s.

    python -m fedray.node.sim_ledger --validators 4 --byzantine 1 --standby 1 --schedules 50
    python -m fedray.node.sim_ledger mutants --budget 60

Each node is a `LedgerApp` in its own directory (under /dev/shm when it exists): SQLite block store,
blob store, mempool, evidence pool; a restarted node reopens it from disk (replaying from its last
snapshot), with an empty mempool and evidence pool, as a real restart would. The genesis gives the
validators the schedule's stakes, funds the standby nodes, registers a few FL clients and opens FL
rounds (never closed in a run: no aggregation happens), with slashing tuned for short runs: a
validator absent from all of the last 8 certificates is jailed for 2 blocks (late precommits are
collected for a while after each decision, but a validator cut off before GST is rightly missing,
and a Byzantine proposer may leave anyone out).

The workload, fed to every live honest node as clients would, exercises validator-set changes:
honest validators add stake or unstake part of it (the adversary kept below 1/3 of the power),
standby nodes stake and register as validators, and jailed honest validators unjail as soon as they
may. Equivocators are banned by the double-sign evidence the engines find. For the adversary,
`withheld_block` is a block with an FL update whose payload only some nodes hold: they accept it,
the others refuse it (data availability), which splits honest prevotes.

Deliberately ignored: FL rounds that close (aggregation needs real models) and fees beyond the
defaults.
"""

from __future__ import annotations

import random
import shutil
import sys
import tempfile
from collections.abc import Collection
from pathlib import Path

import numpy as np

from fedray.consensus import mutants, sim
from fedray.consensus.sim_app import (
    BALANCE,
    ChainFactory,
    ChainSpec,
    SimApplication,
    SmallChain,
    node_keys,
    sim_genesis,
)
from fedray.core.beacon import prove_next
from fedray.core.block import Block, make_block, proposal_time
from fedray.core.contracts.accounts import Register, Stake, Unstake
from fedray.core.contracts.rounds import Update, genesis_rounds
from fedray.core.contracts.slashing import Unjail
from fedray.core.crypto import PrivateKey, key_from_seed
from fedray.core.encoding import digest
from fedray.core.state import GenesisAccount, Params, State
from fedray.core.tx import make_tx
from fedray.node.app import LedgerApp

CHAIN_ID = "fedray-sim-ledger"
CLIENTS = 6  # FL clients, one withheld update each at most (the round never fills)
MODEL = {"w": np.zeros(4, dtype=np.int32)}
MODEL_NBYTES = 16
PARAMS = Params(
    min_stake_validator=1000,
    downtime_window=8,
    downtime_min_signed_bps=1,  # jailed only after signing none of the window
    downtime_jail_blocks=2,
    fl_clients_per_round=CLIENTS,
    fl_round_deadline=1_000_000,
)


def _shm() -> str | None:
    return "/dev/shm" if Path("/dev/shm").is_dir() else None


class LedgerChain:
    """One schedule's `LedgerApp`s and the clients that feed them (see module docstring)."""

    chain_id = CHAIN_ID

    def __init__(self, spec: ChainSpec) -> None:
        self.spec = spec
        self.keys = node_keys(CHAIN_ID, spec.validators + spec.standby)
        self.clients = [key_from_seed(f"{CHAIN_ID}/client/{i}".encode()) for i in range(CLIENTS)]
        model_hash = digest(b"fedray-sim-ledger/model")
        genesis = sim_genesis(
            CHAIN_ID,
            self.keys,
            spec.stakes,
            PARAMS,
            tuple(
                GenesisAccount(k.public_key, balance=BALANCE, stake=1000, is_client=True)
                for k in self.clients
            ),
            {"rounds": genesis_rounds(model_hash, MODEL_NBYTES)},
        )
        self.genesis = genesis
        self.root = Path(tempfile.mkdtemp(prefix="fedray-sim-", dir=_shm()))
        n_nodes = len(self.keys) + len(spec.twins)
        self.apps = [self._open(i) for i in range(n_nodes)]
        self.rng = random.Random(f"ledger/{spec.seed}")
        self.honest = [
            i for i in range(spec.validators) if i not in spec.faulty and i not in spec.twins
        ]
        self.changes = {  # honest validator -> signed stake change, drawn once
            i: self.rng.choice((-1, 1)) * self.rng.randint(1, 5) * 1000
            for i in self.honest
            if self.rng.random() < 0.4
        }
        self.in_flight: dict[bytes, tuple[int, bytes]] = {}  # sender -> (nonce, raw)
        self.submitted: dict[int, set[bytes]] = {i: set() for i in range(n_nodes)}
        self.used_clients: set[int] = set()

    def _open(self, node: int) -> LedgerApp:
        # a twin's second node (numbered from len(keys)) proposes with its validator's key
        twins = self.spec.twins
        key = self.keys[node] if node < len(self.keys) else self.keys[twins[node - len(self.keys)]]
        return LedgerApp(self.root / f"node{node}", self.genesis, snapshot_interval=8, keys=(key,))

    # --- SimChain -----------------------------------------------------------------------------
    def app(self, node: int) -> SimApplication:
        return self.apps[node]

    def reopen(self, node: int) -> SimApplication:
        self.apps[node].close()
        self.apps[node] = self._open(node)
        self.submitted[node] = set()
        return self.apps[node]

    def close(self) -> None:
        for app in self.apps:
            app.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def feed(self, node: int, now_ms: int) -> None:
        app = self.apps[node]
        state = app.state
        self._settle(state)
        for i in list(self.changes):
            self._change_stake(state, i)
        for i in range(self.spec.validators, len(self.keys)):  # standby nodes join
            self._join(state, i)
        for i in [*self.honest, *range(self.spec.validators, len(self.keys))]:
            self._unjail(state, i)
        done = self.submitted[node]
        for sender, (nonce, raw) in list(self.in_flight.items()):
            if raw in done:
                continue
            done.add(raw)
            account = state.account(sender)
            if app.submit(raw) is not None and (account is None or account.nonce <= nonce):
                del self.in_flight[sender]  # refused before it committed: it can never apply

    def withheld_block(
        self, node: int, height: int, time_ms: int, holders: Collection[int]
    ) -> Block | None:
        app = self.apps[node]
        s = app.state
        rounds = s.section("rounds")
        free = [c for c in range(CLIENTS) if c not in self.used_clients]
        if s.height + 1 != height or not rounds.open or len(free) <= 1:
            return None
        client = free[0]
        self.used_clients.add(client)
        payload = {"w": MODEL["w"] + client + 1}
        for holder in {*holders, node}:
            payload_hash = self.apps[holder].blobs.put(payload)
        key = self.clients[client]
        account = s.account(key.public_key)
        nonce = account.nonce if account else 0
        update = Update(rounds.round, payload_hash, 10, MODEL_NBYTES)
        raw = make_tx(key, CHAIN_ID, nonce, update).raw
        return make_block(
            CHAIN_ID,
            height,
            proposal_time(s.last_block_time, s.params.max_block_time_step_ms, time_ms),
            s.last_block_hash,
            s.root(),
            self.keys[node].public_key,
            s.validators,
            [raw],
            app.last_commit,
            (),
            prove_next(self.keys[node], s),
        )

    # --- the workload -------------------------------------------------------------------------
    def _settle(self, state: State) -> None:
        """Forget in-flight transactions this state has committed."""
        for sender, (nonce, _) in list(self.in_flight.items()):
            account = state.account(sender)
            if account is not None and account.nonce > nonce:
                del self.in_flight[sender]

    def _send(self, state: State, key: PrivateKey, payload: object) -> None:
        account = state.account(key.public_key)
        nonce = account.nonce if account else 0
        raw = make_tx(key, CHAIN_ID, nonce, payload).raw
        self.in_flight[key.public_key] = (nonce, raw)

    def _change_stake(self, state: State, i: int) -> None:
        key = self.keys[i]
        account = state.account(key.public_key)
        if key.public_key in self.in_flight or account is None or state.height < 2:
            return
        change = self.changes.pop(i)
        vs = state.validators
        if change > 0:
            if 3 * (vs.power(key.public_key) + change) < 2 * (vs.total_power + change):
                self._send(state, key, Stake(change))  # no validator may hold a quorum alone
            return
        # Unstake only while the adversary stays below 1/3 of the power afterwards.
        faulty = {self.keys[f].public_key for f in self.spec.faulty}
        adversary = sum(p for k, p in vs.members if k in faulty)
        amount = min(-change, account.stake - PARAMS.min_stake_validator)
        if amount > 0 and 3 * adversary < vs.total_power - amount:
            self._send(state, key, Unstake(amount))

    def _join(self, state: State, i: int) -> None:
        key = self.keys[i]
        account = state.account(key.public_key)
        if key.public_key in self.in_flight or account is None or state.height < 3:
            return
        if account.stake < PARAMS.min_stake_validator:
            self._send(state, key, Stake(self.rng.randint(2, 10) * 1000))
        elif not account.is_validator:
            self._send(state, key, Register("validator"))

    def _unjail(self, state: State, i: int) -> None:
        key = self.keys[i]
        account = state.account(key.public_key)
        if key.public_key in self.in_flight or account is None or not account.jailed:
            return
        if not account.banned and state.height + 1 >= account.jailed_until:
            self._send(state, key, Unjail())


CHAINS: dict[str, ChainFactory] = {"ledger": LedgerChain, "small": SmallChain}


def main(argv: list[str] | None = None) -> int:
    """The simulator (or, with a first argument `mutants`, the mutation run) with `--app ledger`
    as the default application."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["mutants"]:
        return mutants.main(args[1:], CHAINS)
    return sim.main(args, CHAINS)


if __name__ == "__main__":
    sys.exit(main())
