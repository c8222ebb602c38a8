"""The frozen world state, its canonical form, its root, and genesis.

State = chain metadata (chain id, height, last block hash and time), accounts (balance, stake, nonce,
roles, jail), the validator set that signs the next block and the one that signed the last, parameters,
and named *sections* owned by contracts (FL rounds, governance, ...; see `sections.py`).

The state root must be cheap to update per block, so accounts live in a two-level hash tree
(`accounts_tree.py`: a block rehashes and copies only the buckets it touched).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Annotated, Any, Self

from fedray.core.accounts_tree import Account as Account
from fedray.core.accounts_tree import AccountsTree as AccountsTree
from fedray.core.codec import (
    Encodable,
    Size,
    decode_as,
    encode_as,
    from_canonical_map,
    to_canonical_map,
)
from fedray.core.crypto import PUBLIC_KEY_SIZE
from fedray.core.encoding import UINT64_MAX, decode, encode, hash_value
from fedray.core.limits import check_genesis_bounds
from fedray.core.sections import Sections, section_specs
from fedray.errors import FedrayError, IntegerOverflowError


def check_uint64(value: int, what: str) -> int:
    """Raise `IntegerOverflowError` unless 0 <= value < 2**64."""
    if not 0 <= value <= UINT64_MAX:
        raise IntegerOverflowError(f"{what}={value} is outside 0..2**64-1")
    return value


@dataclass(frozen=True)
class Params(Encodable):
    """Chain parameters (integers and strings only: they are hashed). Later contracts add theirs."""

    gas_price: int = 1
    gas_per_byte: int = 10
    block_gas_limit: int = 50_000_000
    max_tx_bytes: int = 4096
    max_block_bytes: int = 4 * 1024 * 1024
    max_block_txs: int = 5000
    max_block_time_step_ms: int = 600_000  # a block's time exceeds its parent's by at most this
    unbonding_blocks: int = 10_000  # unstaked tokens stay slashable (>= MAX_EVIDENCE_AGE)
    min_stake_client: int = 100
    min_stake_validator: int = 1000
    # Federated rounds (contracts/rounds.py). Real-valued settings are decimal strings: they are
    # hashed, and text has one canonical form where floats do not.
    fl_clients_per_round: int = 10
    fl_round_deadline: int = 20  # a round's deadline is at least this many blocks after opening
    fl_round_timeout_ms: int = 0  # ... and at least this much block time (ms) after it
    fl_max_rounds: int = 0  # 0: no limit
    fl_rule: str = "fedavg"
    fl_rule_config: str = "{}"  # canonical JSON of the strategy config
    fl_local_epochs: int = 1
    fl_batch_size: int = 32
    fl_learning_rate: str = "0.05"
    fl_max_samples: int = 1_000_000
    # Incentives (contracts/incentives.py): new tokens, the only source of supply growth.
    reward_pool: int = 1_000_000  # minted per closed round, split among contributing clients
    reward_participation_bps: int = 5_000  # share of the pool split equally among them
    block_reward: int = 10_000  # minted per block, split among the signers of its last commit
    # Slashing (contracts/slashing.py); fractions in basis points of stake, periods in blocks.
    slash_double_sign_bps: int = 500
    slash_downtime_bps: int = 100
    downtime_window: int = 100
    downtime_min_signed_bps: int = 5_000
    downtime_jail_blocks: int = 100
    flag_window: int = 5  # w: a client's last w rounds ...
    flag_threshold: int = 3  # k: ... of which k carry evidence (near copies) -> slash and jail
    slash_flagged_bps: int = 1_000
    flagged_jail_blocks: int = 200
    slash_invalid_payload_bps: int = 1_000
    slash_copy_bps: int = 1_000
    freeride_penalty_bps: int = 200
    # Contribution flags computed by the aggregation precompile (basis points; see
    # `precompiles.FlagParams`, and docs/incentives.md for what honest updates were measured to do).
    flag_cos_low_bps: int = 0  # cosine to the robust aggregate below this
    flag_cos_high_bps: int = 10_000  # ... or above this (10000: off)
    flag_norm_ratio_bps: int = 40_000  # norm above r x the median (x sqrt of the data ratio)
    flag_noise_z_bps: int = 40_000  # every |cosine| with the others below z / sqrt(parameters)
    flag_copy_bps: int = 9_990  # cosine with another update of the round above this
    flag_opposed_cos_bps: int = 2_000  # cosine to the aggregate below minus this ...
    flag_opposed_norm_bps: int = 20_000  # ... and norm above this x the median (as above)
    # Differential privacy (contracts/privacy.py; docs/privacy.md). Integers only: C in 2**-16
    # units, the noise multiplier in thousandths, epsilons in millionths; the per-participation
    # epsilon costs come from the accountant off chain, as a table the chain only looks up.
    dp_mode: str = "none"  # none | local | distributed (which share of the noise each client adds)
    dp_clip_norm_fp: int = 0  # C: every honest update is clipped to this L2 norm (0: no DP)
    dp_noise_milli: int = 0  # z: noise std z*C per client (local) or z*C/sqrt(k) (distributed)
    dp_epsilon_micro: int = 0  # a client's budget: never selected past it (0: no budget)
    dp_delta: str = "0"  # the delta every epsilon here is stated at (decimal text)
    dp_epsilon_table: str = ""  # cumulative micro-epsilon after 1, 2, ... participations
    # Governance (contracts/governance.py).
    gov_min_deposit: int = 10_000
    gov_deposit_period: int = 50
    gov_voting_period: int = 20
    gov_quorum_bps: int = 3_340
    gov_threshold_bps: int = 5_000
    gov_veto_bps: int = 3_340
    gov_expedited_threshold_bps: int = 6_670
    gov_expedited_voting_period: int = 10
    gov_timelock: int = 0

    def to_canonical(self) -> dict[str, Any]:
        """A map by name (new parameters must not move the others)."""
        return to_canonical_map(self)

    @classmethod
    def from_canonical(cls, value: object) -> Self:
        """A missing name takes its default: genesis files written before it existed."""
        return from_canonical_map(cls, value, defaults=True)


PublicKey = Annotated[bytes, Size(PUBLIC_KEY_SIZE)]
_MEMBERS = tuple[tuple[PublicKey, int], ...]


@dataclass(frozen=True)
class ValidatorSet(Encodable):
    """Validators (public key, voting power), sorted by key. Power is the validator's stake."""

    members: tuple[tuple[PublicKey, int], ...]

    @property
    def total_power(self) -> int:
        return sum(p for _, p in self.members)

    def power(self, key: bytes) -> int:
        return dict(self.members).get(key, 0)

    def __contains__(self, key: object) -> bool:
        return any(k == key for k, _ in self.members)

    def __len__(self) -> int:
        return len(self.members)

    @property
    def keys(self) -> tuple[bytes, ...]:
        return tuple(k for k, _ in self.members)

    def to_canonical(self) -> Any:
        """The members' array itself (no enclosing record)."""
        return encode_as(_MEMBERS, self.members)

    @classmethod
    def from_canonical(cls, value: object) -> Self:
        return cls(decode_as(_MEMBERS, value, "ValidatorSet.members"))

    def hash(self) -> bytes:
        return hash_value(self.to_canonical())

    @staticmethod
    def from_accounts(accounts: Mapping[bytes, Account], params: Params) -> ValidatorSet:
        members = [
            (key, acct.stake)
            for key, acct in accounts.items()
            if acct.is_validator and acct.stake >= params.min_stake_validator and not acct.jailed
        ]
        return ValidatorSet(tuple(sorted(members)))


@dataclass(frozen=True)
class State:
    """The world state after block `height` (0: genesis). Never mutated: see `journal.Journal`."""

    chain_id: str
    height: int
    last_block_hash: bytes
    last_block_time: int
    accounts: AccountsTree
    validators: ValidatorSet
    last_validators: ValidatorSet
    params: Params
    sections: Mapping[str, Any] = field(default_factory=dict)

    def account(self, key: bytes) -> Account | None:
        return self.accounts.get(key)

    def section(self, name: str) -> Any:
        if name in self.sections:
            return self.sections[name]
        return section_specs()[name].default()

    def root(self) -> bytes:
        """The state root: one digest over the metadata and each part's digest."""
        cached: bytes | None = self.__dict__.get("_root")
        if cached is not None:
            return cached
        parts: dict[str, Any] = {
            "meta": [self.chain_id, self.height, self.last_block_hash, self.last_block_time],
            "accounts": self.accounts.root(),
            "validators": self.validators.hash(),
            "last_validators": self.last_validators.hash(),
            "params": hash_value(self.params.to_canonical()),
        }
        for name, spec in sorted(section_specs().items()):
            parts["section/" + name] = spec.digest(self.section(name))
        root = hash_value(parts)
        object.__setattr__(self, "_root", root)
        return root

    def to_bytes(self) -> bytes:
        """The full canonical state (for snapshots); `State.from_bytes` inverts it."""
        snapshot = _Snapshot(
            (self.chain_id, self.height, self.last_block_hash, self.last_block_time),
            self.accounts.accounts,
            self.validators,
            self.last_validators,
            self.params,
            {name: self.section(name) for name in section_specs()},
        )
        return encode(to_canonical_map(snapshot))

    @staticmethod
    def from_bytes(raw: bytes) -> State:
        snapshot = from_canonical_map(_Snapshot, decode(raw))
        chain_id, height, last_block_hash, last_block_time = snapshot.meta
        return State(
            chain_id,
            height,
            last_block_hash,
            last_block_time,
            AccountsTree.build(snapshot.accounts),
            snapshot.validators,
            snapshot.last_validators,
            snapshot.params,
            snapshot.sections,
        )


@dataclass(frozen=True)
class _Snapshot:
    """The layout of `State.to_bytes`: a map of these fields."""

    meta: tuple[str, int, bytes, int]  # chain id, height, last block hash, last block time
    accounts: Mapping[PublicKey, Account]
    validators: ValidatorSet
    last_validators: ValidatorSet
    params: Params
    sections: Sections


# --- genesis ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class GenesisAccount:
    public_key: bytes
    balance: int = 0
    stake: int = 0
    is_client: bool = False
    is_validator: bool = False


@dataclass(frozen=True)
class Genesis(Encodable):
    """The chain's first state, from config. Its hash stands in as block 0's hash."""

    chain_id: str
    genesis_time: int
    accounts: tuple[GenesisAccount, ...]
    params: Params = Params()
    sections: Sections = field(default_factory=dict)

    def to_canonical(self) -> dict[str, Any]:
        """A map by field name; `sections` holds only the sections the genesis sets."""
        return to_canonical_map(self)

    @classmethod
    def from_canonical(cls, value: object) -> Self:
        return from_canonical_map(cls, value, defaults=True)

    def hash(self) -> bytes:
        return hash_value(self.to_canonical())

    def state(self) -> State:
        """Genesis state: accounts as configured, validators from staked validator accounts."""
        accounts: dict[bytes, Account] = {}
        for a in self.accounts:
            if a.public_key in accounts:
                raise FedrayError(f"genesis lists account {a.public_key.hex()} twice")
            accounts[a.public_key] = Account(
                balance=check_uint64(a.balance, "balance"),
                stake=check_uint64(a.stake, "stake"),
                is_client=a.is_client,
                is_validator=a.is_validator,
            )
        validators = ValidatorSet.from_accounts(accounts, self.params)
        if not validators.members:
            raise FedrayError("genesis has no validator with the minimum stake")
        check_genesis_bounds(self.genesis_time, self.params)
        return State(
            chain_id=self.chain_id,
            height=0,
            last_block_hash=self.hash(),
            last_block_time=self.genesis_time,
            accounts=AccountsTree.build(accounts),
            validators=validators,
            last_validators=validators,
            params=self.params,
            sections=MappingProxyType(dict(self.sections)),
        )


def total_supply(accounts: Iterable[Account]) -> int:
    return sum(a.balance + a.stake for a in accounts)
