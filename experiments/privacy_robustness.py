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
from fedray.core.precompiles import FLAG_OVER_NORM  # noqa: E402

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


def flag_counts(run_dir: Path) -> dict[str, int]:
    """From a run's per-update record: attacker updates refused over the DP norm bound, and the
    counterfactual of the unscaled noise-level flag on the same honest updates (largest |cosine|
    with another update below 4/sqrt(P), the chain's default z) and the clients its k-of-w rule
    (3 of 5) would then have slashed."""
    s = json.loads((run_dir / "summary.json").read_text())
    attackers = set(s["attackers"])
    honest = [u for u in s["updates"] if u["client"] not in attackers]
    below: dict[int, list[int]] = {}
    for u in honest:
        if u["noise_z"] < 4.0:
            below.setdefault(u["client"], []).append(u["round"])
    would_slash = [
        c for c, rs in below.items() if any(sum(a <= b < a + 5 for b in rs) >= 3 for a in rs)
    ]
    return {
        "attacker_over_norm": sum(
            1 for u in s["updates"] if u["client"] in attackers and u["flags"] & FLAG_OVER_NORM
        ),
        "honest_over_norm": sum(1 for u in honest if u["flags"] & FLAG_OVER_NORM),
        "honest_below_unscaled_z": sum(len(v) for v in below.values()),
        "honest_unscaled_would_slash": len(would_slash),
    }


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| privacy | partition | attack | accuracy | honest slashed | honest jailed | "
        "attackers caught in 5 rounds | attacker updates over the norm bound | "
        "honest updates with evidence | unscaled noise flag: honest updates flagged, "
        "clients slashed |"
    )
    lines = [head, "|" + "---|" * 10]
    for r in sorted(
        rows, key=lambda r: (r["cell"]["privacy"], r["cell"]["partition"], r["cell"]["attack"])
    ):
        c = r["cell"]
        caught = f"{len(r['caught_in_5'])}/{len(r['attackers'])}" if r["attackers"] else "-"
        over = f"{r['attacker_over_norm']}/{r['attacker_updates']}" if r["attackers"] else "-"
        unscaled = f"{r['honest_below_unscaled_z']}/{r['honest_updates']}, "
        unscaled += f"{r['honest_unscaled_would_slash']}/{20 - len(r['attackers'])}"
        lines.append(
            f"| {c['privacy']} | {c['partition']} | {c['attack']} | {r['accuracy'][-1]:.3f} | "
            f"{len(r['honest_slashed'])} | {len(r['honest_jailed'])} | {caught} | {over} | "
            f"{r['honest_evidence']}/{r['honest_updates']} | {unscaled} |"
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
                summary |= flag_counts(runs_dir / cell.key)
                summary["cell"] = asdict(cell)
                summary["key"] = cell.key
                with results.open("a") as f:
                    f.write(json.dumps(summary) + "\n")
                done[cell.key] = summary
                print(cell.key, len(summary["honest_slashed"]), summary["caught_in_5"], flush=True)
    print(table(list(done.values())))


if __name__ == "__main__":
    main()
