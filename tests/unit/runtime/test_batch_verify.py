"""The batch verifier checks every transaction of a batch in full, spread over its threads, and
answers in the batch's order: a forged signature anywhere in a large batch is refused, its
neighbours admitted; and a validator's `submit_txs` admits through it with no signature skipped."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fedray.core.contracts.accounts import Transfer
from fedray.core.devchain import dev_genesis
from fedray.core.encoding import encode
from fedray.core.transition import CheckedTx
from fedray.core.tx import SignedTx, make_tx
from fedray.errors import EncodingError, SignatureError
from fedray.node.verify import MIN_CHUNK, BatchVerifier
from fedray.runtime.node_settings import prepare_node_dir
from fedray.runtime.validator import ValidatorNode

CHAIN = "batch-verify"
GENESIS, VKEYS, AKEYS = dev_genesis(CHAIN, n_validators=1, n_accounts=4)


def forged(stx: SignedTx) -> bytes:
    return SignedTx(stx.tx, bytes(64 - 1) + b"\x01").raw


def load(n: int) -> list[SignedTx]:
    return [
        make_tx(AKEYS[i % 4], CHAIN, i // 4, Transfer(AKEYS[(i + 1) % 4].public_key, 1))
        for i in range(n)
    ]


def test_a_forged_signature_is_refused_anywhere_in_a_batch_in_order() -> None:
    txs = load(4 * MIN_CHUNK + 3)  # several chunks, the last one short
    bad = {5, MIN_CHUNK, 3 * MIN_CHUNK + 1, len(txs) - 1}
    batch: list[object] = [forged(t) if i in bad else t.raw for i, t in enumerate(txs)]
    batch.append("not bytes")
    verifier = BatchVerifier(CHAIN, workers=4)
    try:
        verdicts = verifier.check_all(batch, GENESIS.params.max_tx_bytes)
    finally:
        verifier.close()
    assert len(verdicts) == len(batch)
    for i, (t, v) in enumerate(zip(txs, verdicts, strict=False)):
        if i in bad:
            assert isinstance(v, SignatureError)
        else:
            assert isinstance(v, CheckedTx) and v.stx.hash == t.hash
    assert isinstance(verdicts[-1], EncodingError)


def test_submit_txs_verifies_every_signature_of_a_large_batch(tmp_path: Path) -> None:
    node = ValidatorNode(
        str(prepare_node_dir(tmp_path / "v0", VKEYS[0])), encode(GENESIS.to_canonical())
    )
    txs = load(3 * MIN_CHUNK)
    honest = [t for t in txs if t.tx.sender != AKEYS[2].public_key]
    batch = [forged(t) if t.tx.sender == AKEYS[2].public_key else t.raw for t in txs]

    async def submit() -> list[dict[str, object]]:
        try:
            return await node.submit_txs(batch)
        finally:
            await node.shutdown(node.caps.operator)

    refused = asyncio.run(submit())
    forged_at = [i for i, t in enumerate(txs) if t.tx.sender == AKEYS[2].public_key]
    assert [r["index"] for r in refused] == forged_at
    assert {r["code"] for r in refused} == {SignatureError.code}
    assert all(r["sender"] == AKEYS[2].public_key.hex() for r in refused)
    assert node.app.mempool.hashes() == {t.hash for t in honest}
    assert node.app.verified == {t.hash for t in honest}
    assert node.app.mempool.rejected == len(forged_at)
