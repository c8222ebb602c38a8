"""The `fedray` command line: `run`, `sweep`, `config show`, `chain verify | show | export`,
`bench consensus | tx | round | scale`.

Each subcommand is a small function taking parsed arguments and returning an exit status; the
heavy imports (Ray, torch, pyarrow) happen inside the subcommand that needs them, so `fedray --help`
and `fedray chain verify` start fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from fedray.cli_chain import cmd_chain_export, cmd_chain_show, cmd_chain_verify
from fedray.errors import FedrayError


def cmd_run(args: argparse.Namespace) -> int:
    from fedray.config import load_config

    items = list(args.items)
    address = [f"runtime.address={args.address}"] if args.address else []
    from fedray.federation.outputs import summary_text
    from fedray.runtime import launch

    if args.resume:
        result = launch.resume(args.resume, items + address)
    else:
        path = None
        # a run directory's name may hold '=' (runs/strategy=krum-<time>/config.yaml)
        if items and ("=" not in items[0] or items[0].endswith((".yaml", ".yml"))):
            path = items.pop(0)
        cfg = load_config(path, items + address)  # config errors surface before Ray starts
        result = launch.run(cfg)
    print(summary_text(result))
    return 0


def cmd_config_show(args: argparse.Namespace) -> int:
    """Print the merged config as `fedray run` would run it, and the conf directories searched."""
    from fedray.config import load_config, to_yaml
    from fedray.config_files import conf_dirs

    items = list(args.items)
    path = items.pop(0) if items and "=" not in items[0] else None
    print(to_yaml(load_config(path, items)), end="")
    print("# conf directories: " + ", ".join(str(d) for d in conf_dirs()))
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from fedray.sweep import sweep

    out = sweep(args.file, verbose=args.verbose)
    print(out.table)
    print(f"plot: {out.plot}")
    print(out.parquet)  # last line: the results file
    return 0


def cmd_bench_consensus(args: argparse.Namespace) -> int:
    from fedray.runtime.consensus_bench import run as bench

    bench(args.validators, args.seconds, args.block_interval)
    return 0


def cmd_bench_tx(args: argparse.Namespace) -> int:
    from fedray.runtime.tx_bench import run as bench

    bench(
        args.validators,
        args.accounts,
        args.txs,
        args.batch,
        args.seconds,
        args.workers,
        args.ingress,
    )
    return 0


def cmd_bench_round(args: argparse.Namespace) -> int:
    from fedray.runtime.round_bench import run as bench

    bench(args.per_round, args.rounds, args.repeats, args.load, args.timeout)
    return 0


def cmd_bench_scale(args: argparse.Namespace) -> int:
    from fedray.runtime.scale_bench import run as bench

    bench(args.clients, args.per_round, args.rounds, args.timeout, args.pools, args.repeats)
    return 0


def _populations(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"want comma-separated client counts: {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"want comma-separated client counts >= 1: {text!r}")
    return sizes


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fedray",
        description="Federated learning governed by a BFT blockchain, on Ray.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="run chain-governed federated training (embedded local Ray by default)",
        description="Run chain-governed federated training. CONFIG is any YAML merged over the "
        "defaults; key=value items override single keys (rounds=3, strategy.params.norm_ratio=2.0) "
        "or pick a config group file (strategy=krum, attack=sign_flip, data=mnist5k).",
    )
    run.add_argument("items", nargs="*", metavar="[CONFIG] [key=value ...]")
    run.add_argument(
        "--address",
        default=None,
        help="a Ray cluster to join (or set RAY_ADDRESS); auto: the one `ray start` recorded on "
        "this machine. It must authenticate its clients with a token, unless "
        "runtime.allow_unauthenticated=true. Default: fedray's own embedded Ray on loopback",
    )
    run.add_argument(
        "--resume",
        metavar="RUN_DIR",
        default=None,
        help="continue a stopped run from its directory (its chain, results and config.yaml); "
        "only runtime.* keys may be given",
    )
    run.set_defaults(func=cmd_run)

    config = sub.add_parser("config", help="show the config a run would use")
    config_sub = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    config_show = config_sub.add_parser(
        "show", help="print the merged config (same arguments as `fedray run`); starts nothing"
    )
    config_show.add_argument("items", nargs="*", metavar="[CONFIG] [key=value ...]")
    config_show.set_defaults(func=cmd_config_show)
    sweep = sub.add_parser(
        "sweep",
        help="many runs over a grid or search space of config keys, on Ray Tune (docs/sweeps.md)",
        description="Run every trial of a sweep file (a base config, a grid and/or a search "
        "space over config keys, optional ASHA early stopping), each a full fedray run in its "
        "own placement group; print a results table and, on the last line, the path of "
        "results.parquet (one row per trial).",
    )
    sweep.add_argument("file", metavar="SWEEP.yaml")
    sweep.add_argument(
        "--verbose", type=int, default=1, choices=(0, 1, 2), help="Tune's progress output"
    )
    sweep.set_defaults(func=cmd_sweep)

    chain = sub.add_parser("chain", help="inspect, verify and export a chain")
    chain_sub = chain.add_subparsers(dest="chain_command", required=True, metavar="ACTION")
    verify = chain_sub.add_parser(
        "verify",
        help="replay from genesis and check links, signatures, nonces, certificates, roots",
    )
    verify.add_argument("dir", help="a chain directory or a run directory")
    verify.add_argument(
        "--recompute",
        action="store_true",
        help="recompute every aggregation from the stored payloads and compare",
    )
    verify.set_defaults(func=cmd_chain_verify)
    show = chain_sub.add_parser("show", help="summarize the chain or print one block")
    show.add_argument("dir")
    show.add_argument("--height", type=int, default=None)
    show.add_argument(
        "--accounts",
        action="store_true",
        help="balances, stakes, roles, jail; each client's privacy budget spent and left",
    )
    show.add_argument("--proposals", action="store_true", help="governance proposals and votes")
    show.add_argument("--evidence", action="store_true", help="penalties and their evidence")
    show.set_defaults(func=cmd_chain_show)
    export = chain_sub.add_parser("export", help="write blocks and transactions as Parquet")
    export.add_argument("dir")
    export.add_argument("--out", required=True, help="output directory")
    export.set_defaults(func=cmd_chain_export)

    bench = sub.add_parser("bench", help="benchmarks: figures, not pass/fail")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True, metavar="WHAT")
    consensus = bench_sub.add_parser(
        "consensus", help="empty-block commit latency (p50, p99) and blocks/s on local Ray"
    )
    consensus.add_argument("--validators", type=int, nargs="+", default=[4, 7])
    consensus.add_argument("--seconds", type=float, default=20.0, help="measured window per figure")
    consensus.add_argument(
        "--block-interval",
        type=float,
        nargs="+",
        default=[0.0, 0.2],
        help="pause before an empty block (0: none; 0.2: the run default, chain.block_interval_s)",
    )
    consensus.set_defaults(func=cmd_bench_consensus)
    tx = bench_sub.add_parser(
        "tx",
        help="committed tx/s, gas/s and commit latency of signed transfers on local Ray, "
        "against the signature-verification limit",
    )
    tx.add_argument("--validators", type=int, default=4)
    tx.add_argument("--accounts", type=int, default=2000, help="funded senders")
    tx.add_argument("--txs", type=int, default=20_000, help="transfers submitted")
    tx.add_argument("--batch", type=int, default=500, help="transactions per ingress call")
    tx.add_argument(
        "--seconds", type=float, default=120.0, help="cap on the load's duration (submit + commit)"
    )
    tx.add_argument(
        "--workers",
        type=int,
        default=0,
        help="signature-verification threads per validator and ingress (0: min(4, cores))",
    )
    tx.add_argument(
        "--ingress",
        choices=("validator", "actor"),
        default="validator",
        help="where each validator's ingress runs: in its process, or an actor of its own",
    )
    tx.set_defaults(func=cmd_bench_tx)
    rnd = bench_sub.add_parser(
        "round",
        help="seconds per round, accuracy and peak memory of fedray (chain on) next to Flower's "
        "simulation engine on the same task (needs the bench extra: flwr)",
        description="sklearn digits, MLP 64-64-10, 100 clients, 1 local epoch, batch 8, SGD lr 0.1 "
        "momentum 0.9, two client actors each side; fedray with 4 validators on its embedded "
        "Ray. The sides alternate, each in a fresh process.",
    )
    rnd.add_argument(
        "--per-round", type=int, nargs="+", default=[10, 100], help="clients per round"
    )
    rnd.add_argument("--rounds", type=int, default=10, help="rounds per run (the first is apart)")
    rnd.add_argument("--repeats", type=int, default=1, help="runs of each side per setting")
    rnd.add_argument("--load", type=int, default=0, help="CPU-bound processes beside both sides")
    rnd.add_argument("--timeout", type=float, default=600.0, help="cap on one side's run, s")
    rnd.set_defaults(func=cmd_bench_round)
    scale = bench_sub.add_parser(
        "scale",
        help="start-up, seconds per round and peak memory by process kind against the number of "
        "registered clients",
        description="One `fedray run` per population (embedded Ray, chain on, 4 validators, "
        "data=synthetic_users, MLP, FedAvg, 1 local epoch), each in a fresh process.",
    )
    scale.add_argument(
        "--clients", type=_populations, default=[1000, 10000], help="populations, e.g. 1000,10000"
    )
    scale.add_argument("--per-round", type=int, default=100, help="clients selected per round")
    scale.add_argument("--rounds", type=int, default=5, help="rounds per run (the first is apart)")
    scale.add_argument("--pools", type=int, default=2, help="client pool actors")
    scale.add_argument("--repeats", type=int, default=1, help="runs per population, alternated")
    scale.add_argument("--timeout", type=float, default=900.0, help="cap on one run, s")
    scale.set_defaults(func=cmd_bench_scale)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except FedrayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "interrupted: a run keeps its directory; continue it with fedray run --resume DIR",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
