"""The gate's STAGING error rate reads the rows since the deploy, however many older rows the stack holds."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from goldgate.migrations import apply_sqlite
from goldgate.release import error_rate
from goldgate.release.error_rate import from_sqlite

SINCE = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def _db(path: Path, old: int) -> Path:
    """`old` rows from the weeks before SINCE (a failure each tenth), then the window's own rows."""
    apply_sqlite(path)
    conn = sqlite3.connect(path)
    start = SINCE - timedelta(days=30)
    conn.executemany("INSERT INTO job_metrics (job_id, stack, status, created_at) VALUES (?, ?, ?, ?)",
                     ((f"old-{i}", "staging", "failed" if i % 10 == 0 else "completed",
                       (start + timedelta(seconds=i)).isoformat(timespec="milliseconds").replace("+00:00", "Z"))
                      for i in range(old)))
    conn.executemany("INSERT INTO job_metrics (job_id, stack, status, created_at) VALUES (?, ?, ?, ?)", [
        ("new-1", "staging", "completed", "2026-11-28T12:00:00.000Z"),   # at the deploy: counts
        ("new-2", "staging", "failed", "2026-11-28T12:30:00.000Z"),
        ("new-3", "staging", "TIMED_OUT", "2026-11-28T13:00:00.000Z"),
        ("new-4", "staging", "cancelled", "2026-11-28T13:00:00.001Z"),   # an operator's cancel: not an error
        ("new-5", "staging", "completed", "2026-11-28T13:00:00+00:00"),  # another form of the time: still counted
        ("new-6", "staging", "failed", "2026-11-28T05:30:00-07:00"),     # 12:30 UTC
        ("late-1", "staging", "failed", "2026-11-28T11:59:59.999Z"),     # just before the deploy
        ("late-2", "staging", "failed", "2026-11-28T04:59:59-07:00"),    # 11:59:59 UTC
        ("prod-1", "prod", "failed", "2026-11-28T12:30:00.000Z"),        # another stack
    ])
    conn.commit()
    conn.close()
    return path


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """The SQLite VM steps and the rows handed to Python while the error rate is read (the work it does)."""
    tally = {"steps": 0, "rows": 0}
    real = error_rate.connect_read_only

    def connect(path: Path, **kwargs):
        conn = real(path, **kwargs)

        def step() -> int:
            tally["steps"] += 100
            return 0

        def row(cursor, values):
            tally["rows"] += 1
            return values

        conn.set_progress_handler(step, 100)
        conn.row_factory = row
        return conn

    monkeypatch.setattr(error_rate, "connect_read_only", connect)
    return tally


def test_the_rate_counts_the_stacks_rows_since_the_deploy(tmp_path: Path) -> None:
    rate = from_sqlite(_db(tmp_path / "db.sqlite", 2_000), "staging", SINCE)
    assert (rate.jobs, rate.failed) == (6, 3) and rate.since == "2026-11-28T12:00:00Z"


def test_older_rows_are_not_read(tmp_path: Path, counted: dict[str, int]) -> None:
    young = _db(tmp_path / "young.sqlite", 0)
    old = _db(tmp_path / "old.sqlite", 200_000)
    first = from_sqlite(young, "staging", SINCE)
    young_work = dict(counted)
    counted.update(steps=0, rows=0)
    second = from_sqlite(old, "staging", SINCE)
    assert (first.jobs, first.failed) == (second.jobs, second.failed) == (6, 3)
    # The rows handed over are the window's alone (at most: the canonical ones are counted in SQL), and SQLite's
    # work does not grow with the 200,000 rows before the window: a few index pages more.
    assert counted["rows"] == young_work["rows"] <= 6, (young_work, counted)
    assert counted["steps"] <= young_work["steps"] + 2_000, (young_work, counted)
