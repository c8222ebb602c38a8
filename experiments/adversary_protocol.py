"""The attacks on the protocol of experiments/adversary.py, each `(chain) -> Outcome`: the attacking
client (`adversary_client.Attacker`) tries, and the chain's state judges (balances, heights,
agreement, pinned files, markers of code that ran). Findings of issue 10 are named in the
docstrings where they apply.
"""

from __future__ import annotations

import secrets
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
from adversary_chain import ATTACKER, HONEST, VICTIM, ChainLab, Outcome, codes, refused


def _ask(ref: Any) -> Any:
    import ray

    return ray.get(ref, timeout=300)


def forged_transfer(c: ChainLab) -> Outcome:
    before, thief = c.balance(VICTIM), c.balance(ATTACKER)
    tried = _ask(c.attacker.forged_transfer.remote(c.client(VICTIM), c.nonce(VICTIM), 500_000))
    c.advance()
    after = c.balance(VICTIM)
    if after != before or c.balance(ATTACKER) != thief:
        return Outcome("ACHIEVED", f"victim's balance {before} -> {after}")
    if refused(tried):
        return Outcome("ACHIEVED", "accepted without a refusal: " + "; ".join(refused(tried)))
    return Outcome(
        "blocked", f"{len(tried)} ways refused or rejected; victim's balance unchanged at {after}"
    )


def operator_methods(c: ChainLab) -> Outcome:
    tried = _ask(c.attacker.operator_methods.remote(64))
    tip = c.advance(2)
    if refused(tried):
        return Outcome("ACHIEVED", "; ".join(refused(tried)))
    if not c.agree():
        return Outcome("ACHIEVED", "a validator stopped or the validators disagree")
    return Outcome("blocked", f"{len(tried)} calls refused (access_denied); chain at {tip}")


def internal_methods(c: ChainLab) -> Outcome:
    tried = _ask(c.attacker.internal_methods.remote())
    tried = {k: v for k, v in tried.items() if not v.startswith("not tried")}
    c.advance(1)
    if refused(tried) or not c.agree():
        return Outcome("ACHIEVED", "; ".join(refused(tried)) or "a validator stopped")
    return Outcome("blocked", f"{len(tried)} helpers unreachable (no such remote method)")


def ray_call(c: ChainLab) -> Outcome:
    tried = _ask(c.attacker.ray_call.remote())
    if refused(tried):
        return Outcome("ACHIEVED", "; ".join(refused(tried)))
    return Outcome("blocked", "sealed on the validator and the ingress")


def pickled_code(c: ChainLab) -> Outcome:
    tried = _ask(c.attacker.pickled_code.remote(str(c.markers)))
    time.sleep(1.0)
    ran = [m for m in c.markers_left() if not m.startswith("class-loaded")]
    if ran:
        return Outcome("ACHIEVED", "code ran: " + ", ".join(ran))
    return Outcome("blocked", f"{len(tried)} pickles refused before they ran (no marker written)")


def foreign_class(c: ChainLab) -> Outcome:
    tried = _ask(c.attacker.foreign_class.remote(str(c.markers)))
    time.sleep(1.0)
    trojan = tried["trojan pid"].rsplit(" ", 1)[-1]
    ran = [m for m in c.markers_left() if m.startswith("class-loaded") and not m.endswith(trojan)]
    if ran:
        return Outcome("ACHIEVED", "the attacker's class was unpickled in " + ", ".join(ran))
    return Outcome("blocked", "handles of a foreign class arrive inert; its class is never loaded")


def payload_theft(c: ChainLab) -> Outcome:
    digest = c.submit_update(HONEST, ingresses=[0])
    c.until(lambda: c.net.call("round_info")[0].updates >= 1, "the honest update to commit")
    info = c.net.call("round_info")[0]
    digests = _ask(c.attacker.payload_digests.remote(max(1, info.height - 60), info.height))
    if digest not in digests:
        return Outcome("not run", "the honest update was not found in the committed blocks")
    tried = _ask(c.attacker.read_payload.remote(digest))
    if not c.net.call("round_info")[0].open:
        return Outcome("not run", "the round closed before the attempt")
    if refused(tried):
        return Outcome("ACHIEVED", "read an open round's payload: " + "; ".join(refused(tried)))
    return Outcome("blocked", f"{len(tried)} reads of an open round's committed payload refused")


def forged_consensus(c: ChainLab) -> Outcome:
    before = c.balance(VICTIM)
    tried = _ask(c.attacker.forged_consensus.remote(c.client(VICTIM), c.nonce(VICTIM), 400_000))
    tip = c.advance(3)
    if c.balance(VICTIM) != before:
        return Outcome("ACHIEVED", f"victim's balance {before} -> {c.balance(VICTIM)}")
    if not c.agree():
        return Outcome("ACHIEVED", "validators disagree or one stopped")
    return Outcome("blocked", f"{tried['messages']} ignored; chain at {tip}, no fork")


def replayed_transaction(c: ChainLab) -> Outcome:
    import ray

    from fedray.core.contracts.accounts import Transfer
    from fedray.core.tx import make_tx

    payer, payee = 2, 3
    raw = make_tx(
        c.keys.clients[payer], c.chain_id, c.nonce(payer), Transfer(c.client(payee), 7)
    ).raw
    ray.get(c.net.ingresses[0].submit.remote([(raw, None, b"")]))
    c.until(lambda: c.nonce(payer) > 0, "the honest transfer to commit")
    c.advance(1)
    paid = c.balance(payee)
    tried = _ask(c.attacker.resubmit.remote([raw]))
    c.advance()
    if c.balance(payee) != paid:
        return Outcome("ACHIEVED", f"the transfer applied twice: {paid} -> {c.balance(payee)}")
    if refused(tried):
        return Outcome("ACHIEVED", "admitted again: " + "; ".join(refused(tried)))
    return Outcome("blocked", f"replay refused everywhere ({codes(tried)})")


def cross_chain(c: ChainLab) -> Outcome:
    from fedray.core.contracts.accounts import Transfer
    from fedray.core.tx import make_tx

    other = c.chain_id + "-testnet"
    me = c.client(ATTACKER)
    victim = c.keys.clients[VICTIM]
    before, mine = c.balance(VICTIM), c.nonce(ATTACKER)
    captured = make_tx(victim, other, c.nonce(VICTIM), Transfer(me, 300_000)).raw  # a testnet tx
    raws = [
        captured,
        _ask(c.attacker.rewrite_chain.remote(captured, c.chain_id)),
        _ask(c.attacker.my_transfer.remote(other, c.client(VICTIM), 1, mine)),
    ]
    tried = _ask(c.attacker.resubmit.remote(raws))
    c.advance()
    if c.balance(VICTIM) != before or c.nonce(ATTACKER) != mine or refused(tried):
        return Outcome("ACHIEVED", f"a transaction of another chain got in: {refused(tried)}")
    return Outcome("blocked", f"refused everywhere ({codes(tried)})")


def malformed_batch(c: ChainLab) -> Outcome:
    """Finding 7: one batch from a pool that carries honest clients and the attacker."""
    import ray

    from fedray.storage.blobs import BlobStore
    from fedray.storage.tensors import tensors_digest, to_safetensors

    honest_raw, honest_payload, honest_sig = c.update(2)
    st_raw, st_payload, st_sig = c.update(3)
    bad_raw, bad_payload, bad_sig = c.update(ATTACKER)
    low = {k: v.copy() for k, v in bad_payload.items()}
    next(iter(low.values())).flat[0] = np.iinfo(np.int32).min
    low_raw = _low_update(c, low)
    batch = [
        (honest_raw, ray.put(honest_payload), honest_sig),
        (bad_raw, [np.zeros(3, np.int32)], bad_sig),  # a list
        (bad_raw, 7, bad_sig),  # an int
        (bad_raw, "payload", bad_sig),  # a string
        (bad_raw, np.zeros(4, np.int32), bad_sig),  # a bare array
        (low_raw, ray.put(low), bad_sig),  # INT32_MIN
        "not an item",
        (st_raw, to_safetensors(st_payload), st_sig),  # a valid payload as safetensors bytes
    ]
    try:
        report = _ask(c.attacker.submit.remote(batch))
    except Exception as exc:
        return Outcome("ACHIEVED", f"the batch failed as a whole: {type(exc).__name__}")
    pinned = BlobStore(c.net.dirs[0] / "blobs", read_only=True)  # packed by the ingress
    if pinned.has(tensors_digest(low)):
        return Outcome("ACHIEVED", "an INT32_MIN payload was pinned")
    if report.admitted != 2:
        return Outcome("ACHIEVED", f"honest items lost: {report}")
    c.until(lambda: c.nonce(2) > 0 and c.nonce(3) > 0, "the honest updates to commit", 60)
    return Outcome(
        "blocked",
        "each item judged alone: both honest updates (arrays, safetensors) committed; "
        f"refused: {', '.join(sorted(set(report.rejected)))}",
    )


def _low_update(c: ChainLab, payload: dict[str, np.ndarray]) -> bytes:
    from fedray.core.contracts.rounds import Update
    from fedray.core.tx import make_tx
    from fedray.storage.tensors import nbytes, tensors_digest

    key = c.keys.clients[ATTACKER]
    update = Update(0, tensors_digest(payload), 10, nbytes(payload))
    return make_tx(key, c.chain_id, c.nonce(ATTACKER), update).raw


def oversized(c: ChainLab) -> Outcome:
    from fedray.core.contracts.accounts import Transfer
    from fedray.core.tx import make_tx
    from fedray.storage.blobs import BlobStore

    raw, payload, sig = c.update(4)
    huge = {k: np.zeros(v.size * 2048, np.int32) for k, v in payload.items()}  # ~100x a model
    ref = _ask(c.attacker.put.remote(huge))[0]
    header = (1 << 40).to_bytes(8, "little") + b"{}"
    memo = make_tx(c.keys.clients[4], c.chain_id, c.nonce(4), Transfer(c.client(0), 1)).raw
    big_tx = memo + b"\x00" * (c.net.genesis.params.max_tx_bytes + 1)
    store = BlobStore(c.net.dirs[0] / "blobs", read_only=True)
    before = len(store.digests())
    items = [(raw, ref, sig), (raw, header, sig), (big_tx, None, b"")]
    report = _ask(c.attacker.submit.remote(items))
    pinned = len(store.digests()) - before
    if pinned or report.admitted:
        return Outcome("ACHIEVED", f"{report}; pinned {pinned} blobs")
    return Outcome("blocked", f"refused before fetching or parsing: {', '.join(report.rejected)}")


def pool_capability(c: ChainLab) -> Outcome:
    import ray

    from fedray.runtime.pool import PoolActor

    clients = [0, 1, 2, 3, 4]
    pool = PoolActor.options(num_cpus=0).remote(
        c.cfg, clients, secrets.token_bytes(32), None, c.keys.pool_keys(clients)
    )
    ray.get(pool.public_keys.remote(), timeout=120)
    nonces = [c.nonce(i) for i in clients]
    tried = _ask(c.attacker.pool_methods.remote(pool))
    c.advance(2)
    ray.kill(pool)
    if refused(tried) or [c.nonce(i) for i in clients] != nonces:
        return Outcome("ACHIEVED", "another pool's clients acted: " + "; ".join(refused(tried)))
    return Outcome("blocked", "vote, train_round and __ray_call__ refused without its capability")


def derived_keys(c: ChainLab) -> Outcome:
    """Finding 10: the keys of a fresh run cannot be re-derived, nor opened with the public
    development passphrase."""
    from fedray.core.contracts.accounts import Transfer
    from fedray.core.crypto import PrivateKey
    from fedray.core.tx import make_tx
    from fedray.errors import KeyFileError
    from fedray.storage.keystore import DEV_PASSPHRASE, KeyStore

    derived = PrivateKey(_ask(c.attacker.derived_client_key.remote(c.cfg, VICTIM)))
    genesis_keys = {k.public_key for k in c.keys.clients}
    if derived.public_key in genesis_keys:
        return Outcome("ACHIEVED", "a client key was re-derived from config.yaml")
    before = c.balance(VICTIM)
    forged = make_tx(derived, c.chain_id, 0, Transfer(c.client(ATTACKER), 1000)).raw
    _ask(c.attacker.resubmit.remote([forged]))
    try:
        KeyStore(c.net.dirs[0] / "keys", DEV_PASSPHRASE).load("validator")
        return Outcome("ACHIEVED", "the development passphrase opened a validator key")
    except KeyFileError:
        pass
    c.advance()
    if c.balance(VICTIM) != before:
        return Outcome("ACHIEVED", "a transfer signed with a derived key moved money")
    return Outcome(
        "blocked", "fresh keys: the config-derived key is no account; dev passphrase refused"
    )


def kill_validator(c: ChainLab) -> Outcome:
    """Ray's own `ray.kill`, by a client that rebuilt a validator's handle from the GCS."""
    before = len(c.net.live)
    tried = _ask(c.attacker.kill_one.remote())
    time.sleep(2.0)
    dead = []
    for i in c.net.live:
        try:
            c.net.call("status", indices=[i], timeout_s=10)
        except Exception:
            dead.append(i)
    for i in dead:
        c.net.handles[i] = None
    if not dead:
        return Outcome("blocked", f"ray.kill {tried}")
    return Outcome(
        "LIMIT",
        f"killed validator {dead} of {before} (ray.kill by actor id; more than f kills halt the "
        "chain): Ray authorizes no caller",
    )


def missing_payload_catch_up(root: Path) -> Outcome:
    """Finding 6 on its own network: a validator restarted while the payloads it needs are on
    no reachable peer waits for them, instead of stopping (and halting a 4-validator chain)."""
    c = ChainLab.start(root)
    try:
        net = c.net
        net.kill(3)
        digests = [c.submit_update(i, ingresses=[0]) for i in range(6)]
        c.until(lambda: all(r.results for r in net.call("round_info")), "round 0 to close", 90)
        net.kill(0)  # the only peer whose ingress pinned them
        for i in (1, 2):  # the others fetched them to check proposals; now they lose them
            for d in digests:
                net.dirs[i].joinpath("blobs", d.hex()[:2], d.hex() + ".safetensors").unlink(True)
        net.start([3])
        time.sleep(6.0)
        [stuck] = net.call("status", indices=[3])
        if stuck.failed is not None:
            return Outcome("ACHIEVED", f"validator 3 stopped: {stuck.failed[:120]}")
        net.start([0])
        target = max(net.heights()) + 2
        answers = net.wait_for_height(target, timeout_s=90)
        if any(a.height < target or a.failed for a in answers):
            return Outcome("ACHIEVED", "validators did not all reach the tip")
        return Outcome(
            "blocked",
            f"validator 3 waited at height {stuck.height} without the payloads, then caught up "
            f"to {target} once a peer had them",
        )
    finally:
        c.stop()
        shutil.rmtree(root, ignore_errors=True)
