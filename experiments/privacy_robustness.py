"""Robust aggregation and slashing with differential privacy on (issue 23): are honest noisy updates
ever slashed or jailed, and which attackers are still caught?

Reuses `experiments/incentives.py` (the product's ledger apps, contracts, aggregation precompile
and client pools, in process): each cell is that experiment's cell with a `privacy` group added
(`privacy=local` or `privacy=distributed`, target epsilon 8, delta 1e-5, clip norm 1), run with
the default rule. Results append to a JSON lines file (a rerun skips the cells already there);
the table prints at the end:

    nice -n 5 python experiments/privacy_robustness.py --out docs/privacy
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import incentives  # noqa: E402

from fedray.config import RunConfig, load_config, to_yaml, validate  # noqa: E402

DEFAULT_ATTACKS = ("none", "sign_flip", "scaling", "gaussian", "alie", "ipm", "free_rider_noise")


@dataclass(frozen=True)
class PrivateCell(incentives.Cell):
    privacy: str = "local"

    @property
    def key(self) -> str:
        return f"{super().key}-{self.privacy}"

    def config(self) -> RunConfig:
        # the base cell's config (through its YAML) with the privacy group picked on top
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "cell.yaml"
            path.write_text(to_yaml(super().config()))
            cfg = load_config(path, [f"privacy={self.privacy}", f"name={self.key}"])
        validate(cfg)
        return cfg


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| privacy | partition | attack | accuracy | honest slashed | honest jailed | "
        "attackers caught in 5 rounds | attacker updates flagged | honest updates with evidence |"
    )
    lines = [head, "|" + "---|" * 9]
    for r in sorted(
        rows, key=lambda r: (r["cell"]["privacy"], r["cell"]["partition"], r["cell"]["attack"])
    ):
        c = r["cell"]
        caught = f"{len(r['caught_in_5'])}/{len(r['attackers'])}" if r["attackers"] else "-"
        flagged = f"{r['attacker_flagged']}/{r['attacker_updates']}" if r["attackers"] else "-"
        lines.append(
            f"| {c['privacy']} | {c['partition']} | {c['attack']} | {r['accuracy'][-1]:.3f} | "
            f"{len(r['honest_slashed'])} | {len(r['honest_jailed'])} | {caught} | {flagged} | "
            f"{r['honest_evidence']}/{r['honest_updates']} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--privacy", nargs="+", default=["local", "distributed"])
    ap.add_argument("--partitions", nargs="+", default=["iid", "dir0.5"])
    ap.add_argument("--attacks", nargs="+", default=list(DEFAULT_ATTACKS))
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--out", type=Path, default=Path("docs/privacy"))
    ap.add_argument("--validators", type=int, default=1)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = args.out / "robustness.jsonl"
    done = {}
    if results.exists():
        for line in results.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                done[rec["key"]] = rec
    runs_dir = Path("/tmp/fedray-privacy-robustness")
    for privacy in args.privacy:
        for partition in args.partitions:
            for attack in args.attacks:
                cell = PrivateCell("digits", partition, attack, "default", 0, args.rounds, privacy)
                if cell.key in done:
                    continue
                summary = incentives.run_cell(cell, runs_dir, args.validators)
                summary["cell"] = asdict(cell)
                summary["key"] = cell.key
                with results.open("a") as f:
                    f.write(json.dumps(summary) + "\n")
                done[cell.key] = summary
                print(cell.key, len(summary["honest_slashed"]), summary["caught_in_5"], flush=True)
    print(table(list(done.values())))


if __name__ == "__main__":
    main()
