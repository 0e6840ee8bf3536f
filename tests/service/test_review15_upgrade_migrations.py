"""Upgrading goldgate over databases an older goldgate migrated and filled (tests/fixtures/review15_upgrade/).

Both runners are held: goldgate.migrations (`goldgate up`, and D1 over REST through apply_with) and the local
service's own (service.migrate). The fixtures are `sqlite3 .dump`s of what the older commits wrote.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from goldgate import migrations as goldgate_migrations
from goldgate.ops.metrics_report import report_from_sqlite
from goldgate.ops.retention import prune_local
from goldgate.spec import LOCAL_STACKS_FILE, load_local
from service import migrate as service_migrate

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "review15_upgrade"
MIGRATIONS = goldgate_migrations.MIGRATIONS_DIR
ALL = [path.name for path in sorted(MIGRATIONS.glob("*.sql"))]


def _rows(conn: sqlite3.Connection) -> Callable[[str, list], list[dict]]:
    """apply_with's execute over SQLite: one batch of statements (as D1's /query takes it), or one query's rows."""
    def execute(sql: str, params: list) -> list[dict]:
        if sql.rstrip().endswith(";"):
            conn.execute("BEGIN")
            try:
                for statement in service_migrate.split_statements(sql):
                    conn.execute(statement)
            except sqlite3.Error:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return []
        cursor = conn.execute(sql, params)
        names = [c[0] for c in cursor.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cursor]
    return execute


RUNNERS = {
    "goldgate.apply_sqlite": lambda conn, directory: goldgate_migrations.apply_sqlite(conn, directory),
    "goldgate.apply_with (D1)": lambda conn, directory: goldgate_migrations.apply_with(_rows(conn), directory),
    "service.apply_sqlite": lambda conn, directory: service_migrate.apply_sqlite(conn, directory),
}


def _load(fixture: str, path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript((FIXTURES / fixture).read_text(encoding="utf-8"))
    return conn


def _objects(conn: sqlite3.Connection) -> set[tuple[str, str, str]]:
    return {row for row in conn.execute("SELECT type, name, tbl_name FROM sqlite_master "
                                        "WHERE name NOT LIKE 'sqlite_%'")}


def _jobs(conn: sqlite3.Connection) -> list[tuple]:
    return conn.execute("SELECT id, status, error, results_json, runpod_job_id, worker_image_tag, e2e_ms, "
                        "cost_estimate_usd, finished_at FROM jobs ORDER BY id").fetchall()


@pytest.mark.parametrize("runner", RUNNERS)
def test_a_database_first_migrated_by_9d985f1_gets_the_metrics_covering_indexes(tmp_path: Path, runner: str) -> None:
    # 9d985f1 applied 0001_init.sql before c0f9c48 added three indexes to it; an applied migration never runs
    # again, so before 0006 such a database recorded every migration and had none of them (`goldgate metrics`
    # went from about a second to minutes at 300,000 rows).
    fresh = sqlite3.connect(tmp_path / "fresh.sqlite", isolation_level=None)
    RUNNERS[runner](fresh, MIGRATIONS)
    old = _load("staging_db_9d985f1.sql", tmp_path / "old.sqlite")
    jobs_before = _jobs(old)
    metrics_before = old.execute("SELECT * FROM job_metrics ORDER BY job_id").fetchall()

    applied = RUNNERS[runner](old, MIGRATIONS)

    assert applied == ALL[1:]
    assert _objects(old) == _objects(fresh)  # the same tables and indexes as a database born on this goldgate
    assert {name for (name,) in old.execute("SELECT name FROM d1_migrations")} == set(ALL)  # what wrangler reads
    assert _jobs(old) == jobs_before  # completed, failed and still-queued jobs as they were
    assert [row[:-1] for row in old.execute("SELECT * FROM job_metrics ORDER BY job_id")] == metrics_before
    assert RUNNERS[runner](old, MIGRATIONS) == []


def test_the_9d985f1_stack_s_metrics_read_the_same_after_the_upgrade(tmp_path: Path) -> None:
    # What 9d985f1's own `goldgate metrics staging` printed for this database: 10 jobs, 20.00% errors, E2E P50
    # 3.7 s / P95 5.0 s, $0.00025 a job and $0.276 per 1,000 images (its rows hold no image count: 0003 came
    # later, and the report counts their jobs' results).
    old = _load("staging_db_9d985f1.sql", tmp_path / "db.sqlite")
    goldgate_migrations.apply_sqlite(old)
    old.close()

    overall = report_from_sqlite(tmp_path / "db.sqlite", "staging")["overall"]

    assert (overall["count"], overall["errors"], overall["error_rate"]) == (10, 2, 0.2)
    assert (overall["e2e_ms"]["p50"], overall["e2e_ms"]["p95"]) == (3723, 5028)
    assert round(overall["cost_per_1000_images_usd"], 3) == 0.276



def test_a_prune_of_the_9d985f1_stack_s_old_jobs_keeps_their_cost_per_1000_images(tmp_path: Path) -> None:
    # Its metrics rows hold no image count (0003 came later): the report counted them from their jobs' results, and
    # a prune deleting those jobs first writes the count into their metrics rows.
    db = tmp_path / "db.sqlite"
    old = _load("staging_db_9d985f1.sql", db)
    goldgate_migrations.apply_sqlite(old)
    old.execute("UPDATE jobs SET created_at = '2026-09-01T00:00:00.000Z', finished_at = '2026-09-01T00:00:05.000Z' "
                "WHERE finished_at IS NOT NULL")
    old.close()

    pruned = prune_local(load_local("staging", LOCAL_STACKS_FILE), db, keep_days=30)

    assert (pruned.deleted["jobs"], pruned.remaining["jobs"], pruned.remaining["job_metrics"]) == (10, 2, 10)
    assert round(report_from_sqlite(db, "staging")["overall"]["cost_per_1000_images_usd"], 3) == 0.276

def _crlf_checkout(tmp_path: Path) -> Path:
    """This checkout's migrations as git's core.autocrlf writes them out (Git for Windows' default)."""
    directory = tmp_path / "migrations"
    directory.mkdir()
    for path in sorted(MIGRATIONS.glob("*.sql")):
        (directory / path.name).write_bytes(path.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    return directory


@pytest.mark.parametrize("runner", RUNNERS)
def test_a_database_8139da5_migrated_from_a_crlf_checkout_migrates_on(tmp_path: Path, runner: str) -> None:
    # 8139da5 read each file in text mode and recorded the sha256 of its text with LF line ends; this goldgate
    # reads the bytes. The same checkout's files were refused as "changed after being applied", and restoring the
    # applied text (it never changed) could not get past that.
    conn = _load("crlf_checkout_db_8139da5.sql", tmp_path / "db.sqlite")
    directory = _crlf_checkout(tmp_path)

    assert RUNNERS[runner](conn, directory) == [name for name in ALL if name >= "0006"]
    assert RUNNERS[runner](conn, directory) == []


@pytest.mark.parametrize("runner", RUNNERS)
def test_an_edit_to_an_applied_migration_of_a_crlf_checkout_is_still_refused(tmp_path: Path, runner: str) -> None:
    conn = _load("crlf_checkout_db_8139da5.sql", tmp_path / "db.sqlite")
    directory = _crlf_checkout(tmp_path)
    edited = directory / "0002_idempotency_keys.sql"
    edited.write_bytes(edited.read_bytes() + b"CREATE INDEX idempotency_keys_job ON idempotency_keys (job_id);\r\n")

    with pytest.raises((goldgate_migrations.MigrationError, service_migrate.MigrationError),
                       match=r"^migration\(s\) 0002_idempotency_keys\.sql changed after being applied"):
        RUNNERS[runner](conn, directory)
    assert conn.execute("SELECT count(*) FROM d1_migrations").fetchone() == (5,)


def test_a_database_migrated_from_a_crlf_checkout_migrates_on_from_an_lf_one(tmp_path: Path) -> None:
    # Line ends are not part of what a runner records: the same files from a checkout with LF line ends (a Linux
    # CI runner, a re-clone) are the text the database ran.
    conn = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    goldgate_migrations.apply_sqlite(conn, _crlf_checkout(tmp_path))
    lf = tmp_path / "lf"
    shutil.copytree(MIGRATIONS, lf)

    assert service_migrate.apply_sqlite(conn, lf) == []
    assert goldgate_migrations.apply_sqlite(conn, lf) == []
