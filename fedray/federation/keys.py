"""The keys of a run and where they are written, in one of two modes (`runtime.keys`):

- `simulation` (the default): validator keys are random but encrypted under the public development
  passphrase (`DEV_PASSPHRASE`), and client keys are derived from config.yaml (chain id, seed,
  index: `Federation.client_key`), so anyone holding config.yaml can sign as any client. Right for
  simulations and tests, where reproducibility matters and nothing is at stake; every directory the
  run writes keys to gets a KEYS-README.txt saying so.
- `fresh`: every key comes from the OS CSPRNG and is stored encrypted under the passphrase the
  operator supplies in `FEDRAY_KEY_PASSPHRASE` (refused when unset, shorter than
  `MIN_PASSPHRASE`, or the development one). Client keys are written to
  `clients/keys/client-<i>.pem`; each client pool receives its own clients' keys only.

Either way the run writes `keys.json`: the mode and every public key (no secret), which labels
accounts in `fedray chain` tables and lets anyone audit the genesis.

Ray-free.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fedray.core.crypto import PrivateKey, generate_key
from fedray.errors import ConfigError, KeyFileError
from fedray.federation.plan import Federation
from fedray.storage.keystore import DEV_PASSPHRASE, KeyStore

KEY_MODES = ("simulation", "fresh")
MIN_PASSPHRASE = 12
PASSPHRASE_ENV = "FEDRAY_KEY_PASSPHRASE"
README = "KEYS-README.txt"

SIMULATION_NOTICE = """\
SIMULATION KEYS (runtime.keys=simulation): do not use them for anything of value.
The keys here are encrypted under fedray's public development passphrase
({passphrase!r}), and every client key of this run can be re-derived from
config.yaml (chain id, seed and client index). Anyone with this directory or
config.yaml can sign as these accounts.
For a deployment run with runtime.keys=fresh and FEDRAY_KEY_PASSPHRASE set:
keys are then generated fresh and encrypted under your passphrase.
"""
FRESH_NOTICE = """\
Keys generated fresh for this run (runtime.keys=fresh), each encrypted under the
passphrase the operator supplied in FEDRAY_KEY_PASSPHRASE. Keep that passphrase;
fedray does not store it.
"""


@dataclass(frozen=True)
class RunKeys:
    mode: str
    validators: tuple[PrivateKey, ...]
    clients: tuple[PrivateKey, ...]
    passphrase: str = field(repr=False)

    def pool_keys(self, clients: Sequence[int]) -> dict[int, PrivateKey] | None:
        """The private keys a pool of `clients` receives (None: it derives them, simulation)."""
        return None if self.mode == "simulation" else {i: self.clients[i] for i in clients}


def operator_passphrase(env: Mapping[str, str] | None = None) -> str:
    """The passphrase of a `fresh` run, from `FEDRAY_KEY_PASSPHRASE`."""
    value = (os.environ if env is None else env).get(PASSPHRASE_ENV, "")
    if not value:
        raise KeyFileError(f"runtime.keys=fresh needs a passphrase in {PASSPHRASE_ENV}")
    if value == DEV_PASSPHRASE or len(value) < MIN_PASSPHRASE:
        raise KeyFileError(
            f"{PASSPHRASE_ENV} must be at least {MIN_PASSPHRASE} characters and not the "
            "development passphrase"
        )
    return value


def make_run_keys(
    fed: Federation, validators: int, mode: str, env: Mapping[str, str] | None = None
) -> RunKeys:
    """Fresh validator keys; client keys derived (simulation) or fresh (fresh)."""
    if mode not in KEY_MODES:
        raise ConfigError(f"runtime.keys must be one of {KEY_MODES}, got {mode!r}")
    vkeys = tuple(generate_key() for _ in range(validators))
    if mode == "simulation":
        clients = tuple(fed.client_key(i) for i in range(fed.cfg.clients))
        return RunKeys(mode, vkeys, clients, DEV_PASSPHRASE)
    clients = tuple(generate_key() for _ in range(fed.cfg.clients))
    return RunKeys(mode, vkeys, clients, operator_passphrase(env))


def write_run_keys(run_dir: Path, node_dirs: Sequence[Path], keys: RunKeys) -> None:
    """Validator keys into each node's keys/, client keys (fresh mode) into clients/keys/, a
    notice beside them, and keys.json with the public keys."""
    notice = (
        SIMULATION_NOTICE.format(passphrase=DEV_PASSPHRASE)
        if keys.mode == "simulation"
        else FRESH_NOTICE
    )
    key_dirs = []
    for node_dir, key in zip(node_dirs, keys.validators, strict=True):
        store = KeyStore(node_dir / "keys", keys.passphrase)
        store.save("validator", key)
        key_dirs.append(store.directory)
    if keys.mode == "fresh":
        store = KeyStore(run_dir / "clients" / "keys", keys.passphrase)
        for i, key in enumerate(keys.clients):
            store.save(f"client-{i}", key)
        key_dirs.append(store.directory)
    for directory in key_dirs:
        (directory / README).write_text(notice)
    public = {
        "mode": keys.mode,
        "validators": [k.public_key.hex() for k in keys.validators],
        "clients": [k.public_key.hex() for k in keys.clients],
    }
    (run_dir / "keys.json").write_text(json.dumps(public, indent=1) + "\n")


def load_run_keys(
    fed: Federation, run_dir: Path, node_dirs: Sequence[Path], env: Mapping[str, str] | None = None
) -> RunKeys:
    """The keys a run wrote at its first start (`fedray run --resume`): the mode from keys.json,
    every key from its encrypted store (fresh mode: under `FEDRAY_KEY_PASSPHRASE` again)."""
    try:
        mode = json.loads((run_dir / "keys.json").read_text())["mode"]
    except (OSError, ValueError, KeyError) as exc:
        raise KeyFileError(f"{run_dir} has no readable keys.json: {exc}") from None
    if mode not in KEY_MODES:
        raise KeyFileError(f"{run_dir}/keys.json names an unknown key mode {mode!r}")
    passphrase = DEV_PASSPHRASE if mode == "simulation" else operator_passphrase(env)
    vkeys = tuple(KeyStore(d / "keys", passphrase).load("validator") for d in node_dirs)
    if mode == "simulation":
        clients = tuple(fed.client_key(i) for i in range(fed.cfg.clients))
    else:
        store = KeyStore(run_dir / "clients" / "keys", passphrase)
        clients = tuple(store.load(f"client-{i}") for i in range(fed.cfg.clients))
    return RunKeys(mode, vkeys, clients, passphrase)
