"""Can validators steer which clients a round selects? Issue 10, finding 4, measured with the real code.

50 clients, 10 of them colluding, 10 selected per round (the issue's setting); validators of equal
power. Each row measures the colluders' share of the selected clients over many round openings:

  (a) honest     the opening block's proposer is honest: the draw follows its VRF output.
  (b) grinding   a Byzantine proposer tries `--attempts` blocks per opening, varying time and
                 content; each is judged by the real header rule (`beacon.check_randomness`) and
                 drawn by the real selection (`selection.selection_seed`, `selection.select_clients`),
                 and it proposes the best.
  (b0)           the same grinding against the previous rule (seed = the block hash), for scale.
  (c) withhold   f of 3f+1 validators collude (consecutive in the proposer rotation, the worst
                 case): knowing their own outputs for the height in advance, when they hold the
                 height's first proposer turns they propose in the turn whose draw suits them
                 best, or let all their turns time out so that the next (honest) proposer's
                 output is used, whichever is better in expectation.

Before measuring, one opening is replayed through `apply_block` on a real genesis to check that
the components used here select exactly what the chain selects.

    python experiments/grinding.py            # the full table (about 5-10 minutes)
    python experiments/grinding.py --quick    # a smoke run
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fedray.consensus.proposer import ProposerSchedule
from fedray.core.beacon import Beacon, check_randomness, prove_next
from fedray.core.block import Block, Header, make_block, tx_root
from fedray.core.contracts.accounts import Transfer
from fedray.core.contracts.rounds import genesis_rounds
from fedray.core.contracts.selection import select_clients, selection_seed
from fedray.core.crypto import PrivateKey, key_from_seed
from fedray.core.devchain import dev_genesis
from fedray.core.encoding import digest, hash_value
from fedray.core.state import Genesis, GenesisAccount, State
from fedray.core.transition import apply_block
from fedray.core.tx import make_tx

CHAIN = "grinding"
N_CLIENTS, N_COLLUDERS, K = 50, 10, 10
CLIENTS = [key_from_seed(f"grinding/client/{i}".encode()).public_key for i in range(N_CLIENTS)]
COLLUDERS = frozenset(CLIENTS[:N_COLLUDERS])
CANDIDATES = sorted(CLIENTS)
HONEST_MEAN = K * N_COLLUDERS / N_CLIENTS  # hypergeometric mean: 2 colluders of 10


@dataclass
class Row:
    name: str
    counts: list[int]
    note: str = ""

    def table_line(self) -> str:
        n = len(self.counts)
        mean = sum(self.counts) / n
        sd = math.sqrt(sum((c - mean) ** 2 for c in self.counts) / max(1, n - 1))
        half = 1.96 * sd / math.sqrt(n) / K
        at_least_half = sum(c >= K // 2 for c in self.counts) / n
        return (
            f"| {self.name} | {n} | {mean / K:.3f} ± {half:.3f} | {max(self.counts)} "
            f"| {at_least_half:.3f} | {self.note} |"
        )


def colluders_in(seed: bytes) -> int:
    return sum(c in COLLUDERS for c in select_clients(CANDIDATES, K, seed))


def world(n_validators: int) -> tuple[Genesis, list[PrivateKey]]:
    genesis, vkeys, akeys = dev_genesis(CHAIN, n_validators=n_validators, n_accounts=1)
    clients = tuple(GenesisAccount(c, 10**6, 1_000, is_client=True) for c in CLIENTS)
    genesis = dataclasses.replace(
        genesis,
        accounts=genesis.accounts + clients,
        sections={"rounds": genesis_rounds(b"\x07" * 32, 1024)},
    )
    return genesis, vkeys


def at_height(genesis_state: State, height: int) -> State:
    """A state whose next block is `height`, with a fresh previous output (a new opening)."""
    previous = Beacon(digest(b"grinding/previous/%d" % height) * 2)
    return dataclasses.replace(
        genesis_state, height=height - 1, sections={**genesis_state.sections, "beacon": previous}
    )


def block_by(key: PrivateKey, state: State) -> Block:
    """An empty block on `state` proposed by `key`, with its VRF proof."""
    return make_block(
        CHAIN,
        state.height + 1,
        state.last_block_time + 1,
        state.last_block_hash,
        state.root(),
        key.public_key,
        state.validators,
        (),
        None,
        (),
        prove_next(key, state),
    )


def header_by(key: PrivateKey, state: State) -> Header:
    return block_by(key, state).header


def draw(state: State, header: Header, round_: int) -> int:
    """Colluders the chain selects if `header`'s block opens round `round_`."""
    return colluders_in(selection_seed(check_randomness(state, header), round_))


def check_against_the_chain(genesis: Genesis, key: PrivateKey) -> None:
    state = genesis.state()
    block = block_by(key, state)
    selected = apply_block(state, block).section("rounds").selected
    seed = selection_seed(check_randomness(state, block.header), 0)
    assert selected == select_clients(CANDIDATES, K, seed), "components differ from the chain"


def honest(genesis: Genesis, keys: list[PrivateKey], trials: int) -> Row:
    base = genesis.state()
    counts = []
    for t in range(trials):
        state = at_height(base, 1 + t)
        counts.append(draw(state, header_by(keys[t % len(keys)], state), t))
    return Row("(a) honest proposers", counts)


def variants(header: Header, attempts: int) -> list[Header]:
    """`attempts` blocks a proposer could build: times x contents (a transfer's amount)."""
    payer = key_from_seed(b"grinding/payer")
    contents = -(-attempts // 1000)
    roots = [
        tx_root([make_tx(payer, CHAIN, 0, Transfer(b"\x01" * 32, 1 + i)).raw])
        for i in range(contents)
    ]
    return [
        dataclasses.replace(header, time=header.time + i % 1000, tx_root=roots[i // 1000])
        for i in range(attempts)
    ]


def grinding(genesis: Genesis, key: PrivateKey, trials: int, attempts: int, rule: str) -> Row:
    base = genesis.state()
    counts, distinct, gains = [], [], []
    for t in range(trials):
        state = at_height(base, 100_000 + t)
        tries = variants(header_by(key, state), attempts)
        if rule == "vrf":  # what the chain draws from: the header rule's output
            seeds = [selection_seed(check_randomness(state, h), t) for h in tries]
        else:
            seeds = [hash_value(["fedray/select", h.hash(), t]) for h in tries]
        counts.append(max(colluders_in(seed) for seed in seeds))
        distinct.append(len(set(seeds)))
        gains.append(counts[-1] - colluders_in(seeds[0]))  # over the first block it built
    name = "(b) grinding" if rule == "vrf" else "(b0) grinding, old rule"
    note = (
        f"best of {attempts:,} blocks per opening; distinct seeds per opening: "
        f"{min(distinct):,} to {max(distinct):,}; mean gain over the first block: "
        f"{sum(gains) / trials:.2f} colluders"
    )
    return Row(name, counts, note)


def withholding(f: int, trials: int) -> Row:
    genesis, keys = world(3 * f + 1)
    base = genesis.state()
    by_key = {k.public_key: k for k in keys}
    validators = base.validators
    byzantine = set(validators.keys[:f])  # consecutive in the equal-power rotation
    schedule = ProposerSchedule.genesis(validators)
    counts, withheld = [], 0
    for t in range(trials):
        state = at_height(base, 1 + t)
        prefix: list[int] = []  # the coalition's draws in its first turns, known in advance
        r = 0
        while (p := schedule.proposer(r)) in byzantine:
            prefix.append(draw(state, header_by(by_key[p], state), t))
            r += 1
        honest_draw = draw(state, header_by(by_key[p], state), t)
        if prefix and max(prefix) >= HONEST_MEAN:
            counts.append(max(prefix))
            withheld += prefix.index(max(prefix)) > 0
        else:
            counts.append(honest_draw)
            withheld += bool(prefix)
        schedule = schedule.next_height(validators)
    note = (
        f"n = {3 * f + 1}; openings where they withheld at least one turn: {withheld / trials:.3f}"
    )
    return Row(f"(c) withholding, f = {f}", counts, note)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument("--trials", type=int, default=2000, help="openings for (a) and (c)")
    parser.add_argument("--grind-trials", type=int, default=5, help="openings for (b)")
    parser.add_argument("--old-trials", type=int, default=20, help="openings for (b0)")
    parser.add_argument("--attempts", type=int, default=20_000, help="blocks tried per opening")
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    args = parser.parse_args()
    if args.quick:
        args.trials, args.grind_trials, args.old_trials, args.attempts = 60, 2, 2, 300
    started = time.time()
    genesis, keys = world(4)
    check_against_the_chain(genesis, keys[0])
    steps: list[Callable[[], Row]] = [
        lambda: honest(genesis, keys, args.trials),
        lambda: grinding(genesis, keys[1], args.grind_trials, args.attempts, "vrf"),
        lambda: grinding(genesis, keys[1], args.old_trials, args.attempts, "hash"),
        *[lambda f=f: withholding(f, args.trials) for f in (1, 2, 3)],
    ]
    lines = [
        f"{N_COLLUDERS} colluders among {N_CLIENTS} clients, {K} selected per round "
        f"(honest expectation {HONEST_MEAN / K:.2f}).",
        "",
        "| setting | openings | colluders' share (95% CI) | most colluders in one round "
        "| P(at least half colluders) | notes |",
        "|---|---|---|---|---|---|",
    ]
    print("\n".join(lines), flush=True)
    for step in steps:
        lines.append(step().table_line())
        print(lines[-1], flush=True)
    print(f"\n({time.time() - started:.0f} s)")
    if args.out is not None:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
