"""Live metrics of a real run (minimal preset, piped output): a plain line per round on stdout,
TensorBoard event files with every round, and the chain figures on Ray's Prometheus endpoint while
the run goes on (each validator's height and mempool, tagged by its index; the driver's round
figures, tagged by the run), read back over HTTP as Prometheus would; `baseline: false` trains no
centralized model."""

from __future__ import annotations

import re
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from fedray.config import load_config
from fedray.runtime.launch import run

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = ROOT / "fedray" / "conf" / "preset" / "minimal.yaml"
SCRAPE_WAIT_S = 60.0  # Ray exports application metrics every few seconds


def prometheus_text() -> str:
    import ray

    node = next(n for n in ray.nodes() if n["Alive"])
    url = f"http://{node['NodeManagerAddress']}:{node['MetricsExportPort']}/metrics"
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.read().decode()


def samples(text: str, name: str) -> dict[str, float]:
    """`name`'s samples in a Prometheus text page: the labels string -> value."""
    out = {}
    for match in re.finditer(rf"^{name}\{{([^}}]*)\}} (\S+)$", text, re.MULTILINE):
        out[match.group(1)] = float(match.group(2))
    return out


def tag(labels: str, key: str) -> str:
    found = re.search(rf'(?:^|,){key}="([^"]*)"', labels)
    return found.group(1) if found else ""


def ours(found: dict[str, float], run_id: str) -> dict[str, float]:
    """The samples tagged with this run (other runs of the session export theirs too)."""
    return {labels: v for labels, v in found.items() if tag(labels, "run") == run_id}


def test_a_run_reports_each_round_live(
    ray_cluster: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scraped: dict[str, str] = {}

    def on_round(row: Mapping[str, Any]) -> None:
        if row["round"] != 1:
            return
        # the driver's gauges of round 0 and the validators' are exported while the run goes on
        deadline = time.time() + SCRAPE_WAIT_S
        while time.time() < deadline:
            text = prometheus_text()
            heights = ours(samples(text, "ray_fedray_chain_height"), row["run_id"])
            if len(heights) >= 4 and ours(samples(text, "ray_fedray_round"), row["run_id"]):
                scraped["text"] = text
                return
            time.sleep(2)

    cfg = load_config(MINIMAL, [f"output_dir={tmp_path}"])
    result = run(cfg, on_round=on_round)

    # the minimal preset sets baseline: false, so no centralized model is trained
    assert "baseline_accuracy" not in result.summary

    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("round ")]
    assert [x.split(" acc=")[0] for x in lines] == ["round 1/2", "round 2/2"]
    last = result.rows[-1]
    assert f"height={last['height']}" in lines[-1] and f"acc={last['accuracy']:.3f}" in lines[-1]

    events = list((result.run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert events and sum(p.stat().st_size for p in events) > 500

    assert "text" in scraped, "no fedray metrics on Ray's Prometheus endpoint"
    text = scraped["text"]
    run_id = result.run_dir.name
    heights = ours(samples(text, "ray_fedray_chain_height"), run_id)
    assert sorted(tag(k, "validator") for k in heights) == ["0", "1", "2", "3"]
    assert all(v >= 1 for v in heights.values())
    mempools = ours(samples(text, "ray_fedray_mempool_txs"), run_id)
    assert sorted(tag(k, "validator") for k in mempools) == ["0", "1", "2", "3"]
    assert list(ours(samples(text, "ray_fedray_round"), run_id).values()) == [0.0]
    accuracy = ours(samples(text, "ray_fedray_accuracy"), run_id)
    assert list(accuracy.values()) == [pytest.approx(result.rows[0]["accuracy"])]
    committed = ours(samples(text, "ray_fedray_committed_txs_total"), run_id)
    assert sum(committed.values()) >= result.rows[0]["cumulative_txs"]
