"""`fedray chain verify | show | export`: reading a run's chain directories (one per validator)
without starting anything. Each subcommand takes parsed arguments and returns an exit status;
`fedray.cli` builds the parser.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fedray.errors import FedrayError


def find_chain_dirs(path: Path) -> list[Path]:
    """`path` itself if it holds a block store, else every block store below it (a run directory
    holds one per validator)."""
    from fedray.storage.blockstore import DB_NAME

    if (path / DB_NAME).exists():
        return [path]
    return sorted(p.parent for p in path.rglob(DB_NAME))


def _chain_dirs_or_fail(path: Path) -> list[Path]:
    dirs = find_chain_dirs(path)
    if not dirs:
        raise FedrayError(f"no block store (chain.sqlite) found in {path}")
    return dirs


def _label(d: Path) -> str:
    """`validator-2` for a validator of a run directory, else the path."""
    return d.name if d.parent.name == "chain" else str(d)


def _prepare_run_imports(path: Path) -> None:
    """Load the config of the run `path` belongs to, if any, so that its custom aggregation rule
    (`strategy.factory`) is registered before aggregations are recomputed."""
    from fedray.config import load_config

    for parent in (path.resolve(), *path.resolve().parents):
        if (parent / "config.yaml").exists() and (parent / "chain").is_dir():
            try:
                load_config(parent / "config.yaml")
            except FedrayError as exc:  # verify goes on; a custom rule it needs will be unknown
                print(f"note: the run's config.yaml does not load here: {exc}")
            return


def cmd_chain_verify(args: argparse.Namespace) -> int:
    """Replay every block store found, read-only; a damaged store is reported and the others are
    still checked; validators must agree at every height they all verified."""
    from fedray.node.app import make_block_env
    from fedray.node.replay import verify_chain
    from fedray.storage.blockstore import BlockStore

    dirs = _chain_dirs_or_fail(Path(args.dir))
    _prepare_run_imports(Path(args.dir))
    status = 0
    hashes: dict[str, dict[int, bytes]] = {}
    for d in dirs:
        label = _label(d)
        seen: dict[int, bytes] = {}
        try:
            with BlockStore.reading(d) as store:
                env = make_block_env(d, recompute=args.recompute, store=store)
                report = verify_chain(
                    store, env, on_block=lambda _s, b, seen=seen: seen.__setitem__(b.height, b.hash)
                )
        except FedrayError as exc:  # a store that cannot even be opened
            status = 1
            print(f"FAIL {label}: cannot read {d}: {exc}")
            continue
        if report.ok:
            hashes[label] = seen
            print(
                f"OK {label}: {report.height} blocks, tip {report.tip_hash.hex()[:16]}, "
                f"state root {report.state_root.hex()[:16]}"
            )
        else:
            status = 1
            print(f"FAIL {label}: height {report.height}: {report.rule}: {report.message}")
    if len(hashes) > 1:
        # Nodes of one chain may differ in length; at common heights they must agree.
        common = min(max(seen, default=0) for seen in hashes.values())
        for h in range(1, common + 1):
            by_hash: dict[bytes, list[str]] = {}
            for label, seen in hashes.items():
                by_hash.setdefault(seen[h], []).append(label)
            if len(by_hash) > 1:
                groups = " vs ".join(", ".join(v) for v in by_hash.values())
                print(f"FAIL: validators disagree on the block at height {h}: {groups}")
                return 1
        print(f"OK: {len(hashes)} block stores agree up to height {common}")
    return status


def _describe_tx(raw: bytes) -> str:
    from fedray.core.tx import SignedTx

    stx = SignedTx.decode(raw)
    t = stx.tx
    fields = ", ".join(
        f"{k}={v.hex()[:16] if isinstance(v, bytes) else v}" for k, v in sorted(t.payload.items())
    )
    return (
        f"{stx.hash.hex()[:16]} {t.kind:<12} from {t.sender.hex()[:16]} nonce {t.nonce} ({fields})"
    )


def cmd_chain_show(args: argparse.Namespace) -> int:
    from fedray.storage.blockstore import BlockStore

    d = _chain_dirs_or_fail(Path(args.dir))[0]
    if args.accounts or args.proposals or args.evidence:
        from fedray.federation.plan import run_key_labels
        from fedray.node import tables

        state = tables.replay(d)
        labels = run_key_labels(d)
        print(f"state of {d} at height {state.height}")
        for wanted, table in (
            (args.accounts, tables.accounts_table),
            (args.proposals, tables.proposals_table),
            (args.evidence, tables.evidence_table),
        ):
            if wanted:
                print()
                print(table(state, labels))
        return 0
    with BlockStore.reading(d) as store:
        genesis = store.genesis()
        tip = store.height()
        if args.height is None:
            print(f"chain {genesis.chain_id} in {d}")
            print(f"  genesis hash {genesis.hash().hex()}, {len(genesis.accounts)} accounts")
            print(f"  height {tip}")
            if tip:
                last = store.get(tip)
                print(f"  tip {last.hash.hex()}  state root {last.state_root.hex()}")
            return 0
        stored = store.get(args.height)
    block, cert = stored.block(), stored.cert()
    h = block.header
    print(f"block {h.height} {stored.hash.hex()}")
    for name in (
        "time",
        "prev_hash",
        "tx_root",
        "state_root",
        "proposer",
        "validators_hash",
        "last_commit_hash",
        "evidence_root",
    ):
        value = getattr(h, name)
        print(f"  {name:<17} {value.hex() if isinstance(value, bytes) else value}")
    print(f"  state root after  {stored.state_root.hex()}")
    print(f"  certificate       round {cert.round}, {len(cert.signatures)} signers")
    print(f"  transactions      {len(block.txs)}")
    for raw in block.txs:
        print("    " + _describe_tx(raw))
    if block.evidence:
        print(f"  evidence          {len(block.evidence)}")
    return 0


def cmd_chain_export(args: argparse.Namespace) -> int:
    from fedray.node.export import export_chain

    d = _chain_dirs_or_fail(Path(args.dir))[0]
    paths = export_chain(d, Path(args.out))
    for p in paths:
        print(p)
    return 0
