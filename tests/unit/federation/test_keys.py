"""The keys of a run (finding 10): in simulation mode they stay reproducible and every directory
they are written to says so; in fresh mode no key can be re-derived from config.yaml, every key is
encrypted under the passphrase the operator supplies (the development one cannot open them), and a
run without a usable passphrase is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fedray.config import load_config
from fedray.errors import ConfigError, KeyFileError
from fedray.federation.keys import (
    PASSPHRASE_ENV,
    README,
    make_run_keys,
    operator_passphrase,
    write_run_keys,
)
from fedray.federation.plan import Federation, run_key_labels
from fedray.storage.keystore import DEV_PASSPHRASE, KeyStore

PASSPHRASE = "correct horse battery staple"


def fed() -> Federation:
    return Federation(load_config(None, ["clients=4"]))


def node_dirs(run_dir: Path) -> list[Path]:
    return [run_dir / "chain" / f"validator-{i}" for i in range(2)]


def test_fresh_keys_cannot_be_rederived_and_need_the_operators_passphrase(tmp_path: Path) -> None:
    f = fed()
    keys = make_run_keys(f, 2, "fresh", {PASSPHRASE_ENV: PASSPHRASE})
    derived = {f.client_key(i).public_key for i in range(4)}  # what config.yaml yields
    assert not derived & {k.public_key for k in keys.clients}
    assert keys.passphrase == PASSPHRASE and keys.pool_keys([1, 3]) == {
        1: keys.clients[1],
        3: keys.clients[3],
    }
    write_run_keys(tmp_path, node_dirs(tmp_path), keys)
    stores = [KeyStore(d / "keys", PASSPHRASE) for d in node_dirs(tmp_path)]
    assert [s.load("validator") for s in stores] == list(keys.validators)
    clients = KeyStore(tmp_path / "clients" / "keys", PASSPHRASE)
    assert [clients.load(f"client-{i}") for i in range(4)] == list(keys.clients)
    with pytest.raises(KeyFileError):
        KeyStore(node_dirs(tmp_path)[0] / "keys", DEV_PASSPHRASE).load("validator")
    with pytest.raises(KeyFileError):
        KeyStore(tmp_path / "clients" / "keys", DEV_PASSPHRASE).load("client-0")
    public = json.loads((tmp_path / "keys.json").read_text())
    assert public["mode"] == "fresh" and PASSPHRASE not in (tmp_path / "keys.json").read_text()
    labels = run_key_labels(tmp_path / "chain" / "validator-0")
    assert labels[keys.clients[2].public_key] == "client-2"
    assert labels[keys.validators[1].public_key] == "validator-1"


@pytest.mark.parametrize("env", [{}, {PASSPHRASE_ENV: ""}, {PASSPHRASE_ENV: "short"}])
def test_a_fresh_run_without_a_usable_passphrase_is_refused(env: dict[str, str]) -> None:
    with pytest.raises(KeyFileError):
        make_run_keys(fed(), 2, "fresh", env)
    with pytest.raises(KeyFileError):
        operator_passphrase({PASSPHRASE_ENV: DEV_PASSPHRASE})
    with pytest.raises(ConfigError):
        make_run_keys(fed(), 2, "secret", {PASSPHRASE_ENV: PASSPHRASE})


def test_simulation_keys_are_reproducible_and_labelled_as_such(tmp_path: Path) -> None:
    f = fed()
    keys = make_run_keys(f, 2, "simulation", {PASSPHRASE_ENV: PASSPHRASE})
    assert [k.public_key for k in keys.clients] == [f.client_key(i).public_key for i in range(4)]
    assert keys.passphrase == DEV_PASSPHRASE and keys.pool_keys([0]) is None
    write_run_keys(tmp_path, node_dirs(tmp_path), keys)
    for d in node_dirs(tmp_path):
        notice = (d / "keys" / README).read_text()
        assert "SIMULATION KEYS" in notice and DEV_PASSPHRASE in notice
        assert KeyStore(d / "keys", DEV_PASSPHRASE).load("validator") in keys.validators
    assert not (tmp_path / "clients").exists()  # derived from config.yaml, never written
