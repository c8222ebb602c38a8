"""What a run writes as each round closes: a metrics table of one schema for every run (so runs
concatenate), checkpoints every k rounds, progress, pools' attack states; and what the run checks
before Ray starts."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from safetensors.numpy import load_file

from fedray.config import load_config
from fedray.errors import ConfigError
from fedray.federation.metrics import METRICS_SCHEMA, RoundRow, round_notes
from fedray.federation.plan import Federation
from fedray.federation.record import METRICS, PART_ROWS, RunRecord

MINIMAL = Path(__file__).resolve().parents[3] / "fedray" / "conf" / "preset" / "minimal.yaml"


def row(round_: int, **changes: object) -> dict[str, object]:
    """A metrics row with typed defaults (lists empty: the schema types them anyway)."""
    defaults = {"int": 0, "float": 0.0, "str": "", "bool": False, "list[int]": [], "list[bool]": []}
    out = {f.name: defaults[str(f.type)] for f in fields(RoundRow)}
    out.update(round=round_, close_reason="quota", global_model_hash=f"{round_:064x}")
    out.update(changes)
    return out


def test_rows_are_written_as_rounds_close_and_runs_concatenate(tmp_path: Path) -> None:
    a = RunRecord(tmp_path / "a", Federation(load_config(MINIMAL)))
    b = RunRecord(tmp_path / "b", Federation(load_config(MINIMAL, ["attack=sign_flip"])))
    for record in (a, b):
        record.run_dir.mkdir()
    a.add_row(row(0))
    assert pq.read_table(tmp_path / "a" / "metrics.parquet").num_rows == 1  # on disk at once
    a.add_row(row(1, missed_clients=[3], skipped_clients=[3]))
    b.add_row(row(0, client_jailed=[False] * 6))
    tables = [pq.read_table(tmp_path / d / "metrics.parquet") for d in ("a", "b")]
    assert all(t.schema == METRICS_SCHEMA for t in tables)  # empty lists typed, not null
    both = pa.concat_tables(tables)
    assert both.column("run_id").to_pylist() == ["a", "a", "b"]
    assert both.column("attack").to_pylist() == ["none", "none", "sign_flip"]
    assert both.column("missed_clients").to_pylist() == [[], [3], []]
    # a resumed run reads back what was recorded
    again = RunRecord(tmp_path / "a", a.fed)
    assert again.last_round == 1 and [r["round"] for r in again.rows] == [0, 1]
    # ... and keeps it when it records more (a round converts only its own row)
    again.add_row(row(2))
    again.add_row(row(3, missed_clients=[1]))
    table = pq.read_table(tmp_path / "a" / "metrics.parquet")
    assert table.column("round").to_pylist() == [0, 1, 2, 3]
    assert table.column("missed_clients").to_pylist() == [[], [3], [], [1]]


def test_a_round_rewrites_only_the_last_part_of_the_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = RunRecord(tmp_path / "a", Federation(load_config(MINIMAL)))
    record.run_dir.mkdir()
    written: list[int] = []  # rows written by each write of a round
    write = pq.write_table

    def counting(table: pa.Table, where: Path) -> None:
        written.append(table.num_rows)
        write(table, where)

    monkeypatch.setattr(pq, "write_table", counting)
    for r in range(2 * PART_ROWS + 3):
        record.add_row(row(r))
    assert written == [*range(1, PART_ROWS + 1), *range(1, PART_ROWS + 1), 1, 2, 3]
    folder = tmp_path / "a" / METRICS
    assert sorted(p.name for p in folder.iterdir()) == [f"part-{k:05d}.parquet" for k in range(3)]
    table = pq.read_table(folder)  # the folder reads as one table, in round order
    assert table.schema == METRICS_SCHEMA
    assert table.column("round").to_pylist() == list(range(2 * PART_ROWS + 3))
    assert [r["round"] for r in RunRecord(tmp_path / "a", record.fed).rows] == list(
        range(2 * PART_ROWS + 3)
    )


def test_a_single_file_metrics_of_an_older_run_becomes_parts_on_resume(tmp_path: Path) -> None:
    fed = Federation(load_config(MINIMAL))
    (tmp_path / "a").mkdir()
    old = RunRecord(tmp_path / "b", fed)
    old.rows = [{**old.columns, **row(r)} for r in range(PART_ROWS + 2)]
    pq.write_table(pa.Table.from_pylist(old.rows, schema=METRICS_SCHEMA), tmp_path / "a" / METRICS)
    resumed = RunRecord(tmp_path / "a", fed)
    assert (tmp_path / "a" / METRICS).is_dir()
    resumed.add_row(row(PART_ROWS + 2))
    table = pq.read_table(tmp_path / "a" / METRICS)
    assert table.column("round").to_pylist() == list(range(PART_ROWS + 3))
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [METRICS]  # nothing left over


def test_a_split_that_crashed_before_the_parts_took_the_name_starts_again(tmp_path: Path) -> None:
    fed = Federation(load_config(MINIMAL))
    (tmp_path / "a").mkdir()
    old = RunRecord(tmp_path / "b", fed)
    old.rows = [{**old.columns, **row(r)} for r in range(3)]
    # the crash: the file moved aside, the parts still under their staging name
    aside = tmp_path / "a" / f".{METRICS}.old"
    pq.write_table(pa.Table.from_pylist(old.rows, schema=METRICS_SCHEMA), aside)
    (tmp_path / "a" / f".{METRICS}.parts").mkdir()
    resumed = RunRecord(tmp_path / "a", fed)
    assert [r["round"] for r in resumed.rows] == [0, 1, 2]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [METRICS]


def test_checkpoints_every_k_rounds_hold_the_float_model_and_its_hash(tmp_path: Path) -> None:
    fed = Federation(load_config(MINIMAL, ["runtime.checkpoint_every=2"]))
    record = RunRecord(tmp_path, fed)
    model = fed.initial_model()
    for r in range(4):
        record.checkpoint(r, model, bytes([r]) * 32)
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["round-00001.safetensors", "round-00003.safetensors"]
    saved = load_file(str(tmp_path / "checkpoints" / names[0]))
    assert all(a.dtype == np.float32 for a in saved.values()) and set(saved) == set(model)


def test_a_rebuilt_pool_gets_the_state_it_had_before_the_round(tmp_path: Path) -> None:
    record = RunRecord(tmp_path, Federation(load_config(MINIMAL)))
    assert record.pool_state_before(0, 5) is None
    record.save_pool_state(0, 1, b"after-1")
    record.save_pool_state(0, 3, b"after-3")
    record.save_pool_state(1, 4, b"other pool")
    assert record.pool_state_before(0, 3) == b"after-1"  # round 3 is trained again
    assert record.pool_state_before(0, 4) == b"after-3"
    assert record.pool_state_before(1, 4) is None


def test_the_terminal_says_when_a_round_closed_on_its_deadline_and_who_missed_it() -> None:
    r = RoundRow(**row(4, close_reason="deadline", missed_clients=[2, 5], skipped_clients=[5]))  # type: ignore[arg-type]
    notes = round_notes(r, timeout_s=600)
    assert "round 4 closed on its deadline" in notes[0] and "client-2" in notes[0]
    assert "client-5" not in notes[0] and "client-5 declared a missed update" in notes[1]
    assert round_notes(RoundRow(**row(1)), 600) == []  # type: ignore[arg-type]


def test_what_the_data_cannot_take_fails_before_ray() -> None:
    with pytest.raises(ConfigError, match="fewer than clients=10000: use data=synthetic_users"):
        Federation(load_config(None, ["clients=10000"])).preflight()
    with pytest.raises(ConfigError, match="PartitionError: dirichlet"):  # 1,000 x 10 > 1,437
        Federation(load_config(None, ["clients=1000", "data=dirichlet"])).preflight()
    seven = ["chain.validators=7", "runtime.client_pools=2"]
    fed = Federation(load_config(MINIMAL, seven))  # each validator hosts its ingress
    assert fed.cpus_needed() == pytest.approx(7 * 0.2 + 2 * 0.3)
    apart = Federation(load_config(MINIMAL, [*seven, "runtime.ingress=actor"]))
    assert apart.cpus_needed() == pytest.approx(7 * 0.25 + 2 * 0.3)  # + an ingress actor each
    with pytest.raises(ConfigError, match="runtime.ingress.*did you mean actor"):
        load_config(MINIMAL, ["runtime.ingress=actors"])
