"""The validator's and the ingress's remote surface on Ray, attacked from this process as a client
that rebuilt their handles (issue 10): no call skips signature verification and a zero-signature
transfer moves no money (finding 1); operator methods refuse a missing capability, underscored
helpers are no remote methods, `__ray_call__` is sealed, pickles that would run code and foreign
actor classes are refused on arrival, an open round's payload is not readable, and `put_blob` is
bounded (finding 2); a batch mixing honest and malformed items admits the honest ones (finding 7).
Each runs against both places an ingress can run: in its validator's process (the validator's own
handle is what pools hold) and as an actor of its own. experiments/adversary.py runs the full
catalogue (slow)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import ray
from ray._common.signature import extract_signature
from ray._raylet import PythonFunctionDescriptor
from ray.actor import ActorMethod

from fedray.config import load_config
from fedray.core.contracts.accounts import Transfer
from fedray.core.contracts.rounds import Update
from fedray.core.crypto import PrivateKey, key_from_seed
from fedray.core.tx import SignedTx, Tx, make_tx, to_canonical_map
from fedray.federation.plan import Federation
from fedray.runtime.access import sign_blob_request
from fedray.runtime.localnet import SHARED_CPU_SETTINGS, ValidatorNet
from fedray.storage.tensors import nbytes, tensors_digest

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = SHARED_CPU_SETTINGS


class Chain:
    def __init__(self, root: Path, ingress: str) -> None:
        self.cfg = load_config(
            ROOT / "fedray" / "conf" / "preset" / "minimal.yaml",
            ["chain.round_deadline_blocks=100000"],
        )
        self.fed = Federation(self.cfg)
        self.chain_id = self.cfg.chain.chain_id
        keys = [key_from_seed(f"surface/{i}".encode()) for i in range(4)]
        initial = self.fed.initial_model()
        self.layout = {k: (a.dtype.str, tuple(a.shape)) for k, a in initial.items()}
        genesis = self.fed.genesis([k.public_key for k in keys], initial)
        self.net = ValidatorNet(
            root, genesis, keys, ingress_layout=self.layout, ingress=ingress, **SETTINGS
        )
        self.hosted = ingress == "validator"
        self.net.start()
        self.net.operator_call("put_blob", initial)
        self.until(lambda: self.net.call("round_info")[0].open)

    def ingress_stats(self, i: int) -> dict[str, int]:
        g = self.net.ingresses[i]
        assert g is not None
        stats: dict[str, int] = ray.get(g.stats.remote())
        return stats

    def client(self, i: int) -> PrivateKey:
        return self.fed.client_key(i)

    def until(self, done: object, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():  # type: ignore[operator]
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.2)

    def advance(self, blocks: int = 3) -> None:
        self.net.wait_for_height(max(self.net.heights()) + blocks, timeout_s=60)

    def balance(self, i: int) -> int:
        key = self.client(i).public_key
        return int(self.net.call("accounts_info", [key])[0][key].balance)

    def update(self, i: int) -> tuple[bytes, dict[str, np.ndarray]]:
        rng = np.random.default_rng(i)
        payload = {
            n: rng.integers(-1000, 1000, size=shape, dtype=np.int32)
            for n, (_, shape) in self.layout.items()
        }
        update = Update(0, tensors_digest(payload), 10, nbytes(payload))
        return make_tx(self.client(i), self.chain_id, 0, update).raw, payload


@pytest.fixture(scope="module", params=["validator", "actor"])
def chain(
    ray_cluster: None, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Chain]:
    c = Chain(tmp_path_factory.mktemp("surface"), request.param)
    yield c
    c.net.stop()


def forced(handle: object, name: str, *args: object) -> object:
    """A call of `name` sent to the actor whether or not its handle lists the method (the
    handle's metadata amended, as a client's code may)."""
    d = handle._ray_actor_creation_function_descriptor  # type: ignore[attr-defined]
    handle._ray_method_signatures[name] = extract_signature(lambda *a, **k: None)  # type: ignore[attr-defined]
    handle._ray_function_descriptor[name] = PythonFunctionDescriptor(  # type: ignore[attr-defined]
        d.module_name, name, d.class_name
    )
    return ActorMethod(handle, name, 1, 0, False, False, -1, 1, True).remote(*args)


def refused(call: object) -> bool:
    try:
        ray.get(call(), timeout=60)  # type: ignore[operator]
    except ray.exceptions.RayError:
        return True
    return False


def test_no_caller_skips_signature_verification(chain: Chain) -> None:
    victim, thief = chain.client(0).public_key, chain.client(5).public_key
    body = to_canonical_map(Transfer(thief, 500_000))
    forged = SignedTx(Tx(chain.chain_id, victim, 0, 1_000_000, "transfer", body), b"\x00" * 64).raw
    before = chain.balance(0)
    v, g = chain.net.handles[0], chain.net.ingresses[0]
    assert refused(lambda: v.submit_txs.remote([forged], True))
    assert refused(lambda: v.admit_checked.remote(os.urandom(32), [forged]))
    assert refused(lambda: forced(v, "_admit", [forged], True))
    [rejection] = ray.get(v.submit_txs.remote([forged]))
    assert rejection["code"] == "bad_signature"
    assert ray.get(g.submit.remote([(forged, None, b"")])).rejected == ("bad_signature",)
    chain.advance()
    assert chain.balance(0) == before


def test_operator_methods_helpers_and_ray_call_are_closed_to_clients(chain: Chain) -> None:
    v, g = chain.net.handles[1], chain.net.ingresses[1]
    big = {"w": np.zeros(1 << 20, np.int32)}
    for cap in (b"", os.urandom(32)):
        assert refused(lambda cap=cap: v.shutdown.remote(cap))
        assert refused(lambda cap=cap: v.connect.remote(cap, []))
        assert refused(lambda cap=cap: v.put_blob.remote(cap, big))
        assert refused(lambda cap=cap: v.wait_for_height.remote(cap, 10**9, 600))
    for name, args in (("_fail", (ValueError("x"),)), ("_sign_request", (b"\x01" * 32,))):
        assert refused(lambda n=name, a=args: forced(v, n, *a))
    assert refused(lambda: forced(g, "_fetch", None))
    assert refused(lambda: v.__ray_call__.remote(lambda s: s._node.key.seed))
    assert refused(lambda: g.__ray_call__.remote(lambda s: s._node._capability))
    assert refused(lambda: v.put_blob.remote(chain.net.caps[1].operator, big))  # > the model
    chain.advance(2)  # every validator still answers (a call of a missing method killed actors)
    assert all(s.failed is None for s in chain.net.call("status"))
    assert chain.ingress_stats(1)["admitted"] >= 0
    assert chain.ingress_stats(1)["admitted"] >= 0


class RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def test_pickles_and_foreign_classes_are_refused_on_arrival(chain: Chain, tmp_path: Path) -> None:
    v, g = chain.net.handles[2], chain.net.ingresses[2]
    assert refused(lambda: v.round_info.remote(RunsCode(tmp_path / "validator")))
    report = ray.get(
        g.submit.remote([(b"tx", ray.put({"w": RunsCode(tmp_path / "ingress")}), b"")])
    )
    assert report.rejected == ("payload_unavailable",)
    trojan = ray.remote(num_cpus=0)(
        type("Trojan", (), {"x": RunsCode(tmp_path / "class"), "ping": lambda self: 1})
    ).remote()
    ray.get(trojan.ping.remote())
    (tmp_path / "class").unlink()  # its own worker loaded it, of course
    ray.get(v.round_info.remote(trojan))  # arrives as an inert handle: its class never loaded
    time.sleep(0.5)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_honest_items_survive_a_malformed_batch_and_open_payloads_stay_private(
    chain: Chain,
) -> None:
    g = chain.net.ingresses[3]
    raw, payload = chain.update(1)
    bad_raw, bad = chain.update(5)
    batch = [
        (bad_raw, [1, 2], b""),
        (bad_raw, 3, b""),
        (raw, ray.put(payload), b""),
        "junk",
        (bad_raw, "x", b""),
        (bad_raw, np.zeros(3, np.int32), b""),
    ]
    report = ray.get(g.submit.remote(batch))
    assert report.admitted == 1 and set(report.rejected) == {"submission_form"}
    chain.until(lambda: chain.net.call("round_info")[0].updates >= 1)
    digest = tensors_digest(payload)
    v = chain.net.handles[0]
    assert refused(lambda: v.get_blob.remote(digest))
    client_signed = sign_blob_request(
        chain.client(5), chain.chain_id, digest, int(time.time() * 1e3)
    )
    assert refused(lambda: v.get_blob.remote(digest, client_signed))
    assert chain.net.call("round_info")[0].open


def test_a_batch_shares_one_payload_object_and_bad_slots_cost_their_item_only(
    chain: Chain,
) -> None:
    g = chain.net.ingresses[1]
    (raw2, p2), (raw3, p3), (raw4, _) = chain.update(2), chain.update(3), chain.update(4)
    shared = ray.put([p2, p3])
    not_a_list = ray.put(p2)
    huge = ray.put([{"w": np.zeros(4_000_000, np.int32)}])  # far beyond one update's size
    batch = [
        (raw2, (shared, 0), b""),
        (raw3, (shared, 1), b""),
        (raw4, (shared, 2), b""),  # no such slot
        (raw4, (shared, -1), b""),
        (raw4, (not_a_list, 0), b""),
        (raw4, (shared, "0"), b""),
        (raw4, (huge, 0), b""),
    ]
    report = ray.get(g.submit.remote(batch))
    assert report.admitted == 2
    assert sorted(report.rejected) == ["payload_unavailable"] + ["submission_form"] * 4
    chain.until(lambda: chain.net.call("round_info")[0].updates >= 2)


def test_submit_reaches_the_ingress_where_it_runs(chain: Chain) -> None:
    v = chain.net.handles[0]
    raw, payload = chain.update(0)
    if chain.hosted:  # the pools' handle is the validator's own: its gated methods stay gated
        assert chain.net.ingresses[0] is v
        assert refused(lambda: v.submit_evidence.remote(os.urandom(32), None))
        report = ray.get(v.submit.remote([(raw, ray.put(payload), b"")]))
        assert (report.admitted, report.rejected) == (1, ())
        assert chain.ingress_stats(0)["pinned_bytes"] >= nbytes(payload)
    else:  # the validator hosts none, and says so
        with pytest.raises(ray.exceptions.RayTaskError, match="hosts no ingress"):
            ray.get(v.submit.remote([(raw, ray.put(payload), b"")]), timeout=60)
