"""STAGING's error rate for the gate, read from job_metrics in a SQLite database migrated with the
project's own migrations (the same files D1 gets)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from goldgate.errors import GoldgateError
from goldgate.migrations import apply_sqlite
from goldgate.release.error_rate import from_sqlite

SINCE = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def metrics_db(tmp_path: Path, rows: list[tuple[str, str, str, str]]) -> Path:
    db = tmp_path / "db.sqlite"
    apply_sqlite(db)
    conn = sqlite3.connect(db)
    conn.executemany("INSERT INTO job_metrics (job_id, stack, status, created_at) VALUES (?, ?, ?, ?)", rows)
    conn.commit()
    conn.close()
    return db


def test_only_the_stacks_jobs_since_the_window_count(tmp_path: Path) -> None:
    db = metrics_db(tmp_path, [
        ("j1", "staging", "completed", "2026-11-28T12:00:01.000Z"),
        ("j2", "staging", "failed", "2026-11-28T12:30:00.000Z"),
        ("j3", "staging", "timed_out", "2026-11-28T13:00:00Z"),
        ("j6", "staging", "cancelled", "2026-11-28T13:00:00Z"),     # an operator's cancel: not an error
        ("j4", "staging", "failed", "2026-11-28T11:59:59.000Z"),   # before the candidate was deployed
        ("j5", "prod", "failed", "2026-11-28T12:30:00.000Z"),      # another stack
    ])
    rate = from_sqlite(db, "staging", SINCE)
    assert (rate.jobs, rate.failed) == (4, 2) and rate.rate == pytest.approx(2 / 4)
    assert rate.since == "2026-11-28T12:00:00Z"


def test_no_jobs_is_a_zero_rate_and_a_missing_database_is_a_clear_error(tmp_path: Path) -> None:
    assert from_sqlite(metrics_db(tmp_path, []), "staging", SINCE).rate == 0.0
    with pytest.raises(GoldgateError, match="does not exist; is the stack up"):
        from_sqlite(tmp_path / "nope.sqlite", "staging", SINCE)
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).close()
    with pytest.raises(GoldgateError, match="cannot read job_metrics"):
        from_sqlite(other, "staging", SINCE)


@pytest.mark.parametrize("directory", ["a#b", "a?b", "a%23b"])
def test_a_database_whose_path_holds_uri_characters_is_the_one_read(tmp_path: Path, directory: str) -> None:
    # In a raw `file:` URI, `#` ends the path and `?` starts the query: SQLite would read another file.
    home = tmp_path / directory
    home.mkdir()
    db = metrics_db(home, [("j1", "staging", "failed", "2026-11-28T12:30:00.000Z")])
    rate = from_sqlite(db, "staging", SINCE)
    assert (rate.jobs, rate.failed) == (1, 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == [directory]  # no stray empty database beside it
