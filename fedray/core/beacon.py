"""The chain's randomness: each block's ECVRF output, proven by its proposer (RFC 9381, `vrf.py`).

Client selection must not be steerable by the proposer, and a block hash is: the proposer picks the
block's time and content and can try thousands of blocks before proposing one. A VRF output is not:
its input is (chain id, height, previous block's output), fixed before the proposer builds anything,
and the proposer's key maps it to exactly one output (uniqueness) that nobody can compute before the
proof is published (pseudorandomness). Every validator checks the proof among the header rules, so
the output is part of consensus and replays identically.

What remains, bounded and measured in docs/selection.md: a proposer sees its output before anyone
else and may withhold its block; the height's round then times out and the next proposer's output is
used instead. Colluding validators thus choose among as many outputs as they hold consecutive
proposer turns (at most f, plus the honest output that follows), never among thousands.

Owns: the `beacon` section (the last block's output), the VRF input of a height, proving it for a
proposer, and the header rule that checks it. Ignores how the output is used (see `rounds.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

from fedray.core import vrf
from fedray.core.block import Header
from fedray.core.crypto import PrivateKey
from fedray.core.encoding import encode
from fedray.core.journal import Journal
from fedray.core.sections import SectionSpec, register_section
from fedray.core.state import State
from fedray.errors import RandomnessError

DOMAIN_BEACON = "fedray/beacon/v1"


@dataclass(frozen=True)
class Beacon:
    """The `beacon` section: the VRF output (64 bytes) of the last block; empty at genesis."""

    output: bytes = b""


BEACON = register_section(SectionSpec("beacon", Beacon, Beacon))


def vrf_input(chain_id: str, height: int, previous: bytes) -> bytes:
    """The VRF input (alpha) of `height`: nothing a proposer chooses goes into it."""
    return encode([DOMAIN_BEACON, chain_id, height, previous])


def prove_next(key: PrivateKey, state: State) -> bytes:
    """The VRF proof `key`'s holder puts in the header of the block after `state`."""
    previous: Beacon = state.section("beacon")
    return vrf.prove(key.seed, vrf_input(state.chain_id, state.height + 1, previous.output))


def check_randomness(state: State, header: Header) -> bytes:
    """The header's VRF output, or `RandomnessError` unless its proof is the proposer's for the
    height after `state` (rule: the randomness is the proposer's VRF output)."""
    previous: Beacon = state.section("beacon")
    alpha = vrf_input(state.chain_id, header.height, previous.output)
    try:
        return vrf.verify(header.proposer, alpha, header.vrf_proof)
    except vrf.VrfError as exc:
        raise RandomnessError(f"block {header.height}: {exc}") from None


def record(journal: Journal, output: bytes) -> None:
    journal.set_section("beacon", Beacon(output))
