"""Reading a whole D1 table for its checksum (the DR drill, the backup check) pages by the primary key: each
page reads its own rows, not every row before it again (D1 bills rows read), a row written or deleted between
pages hides no other, and the checksum is the one the unpaged read of the same rows gives."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from goldgate.cloudflare.d1 import D1Client
from goldgate.cloudflare.d1_standin import D1StandIn
from goldgate.ops.fingerprint import D1Source, SqliteSource, table_checksum

PAGE = 50


def _vm_steps_per_query(standin: D1StandIn, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """(sql, SQLite VM instructions run) for each /query the stand-in answers: the work, so the rows, a page
    read, whatever it returned."""
    seen: list[tuple[str, int]] = []
    real = standin.backend.execute

    def execute(db: Any, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        steps = [0]

        def tick() -> int:
            steps[0] += 1
            return 0

        db.conn.set_progress_handler(tick, 1)
        try:
            return real(db, sql, params)
        finally:
            db.conn.set_progress_handler(None, 1)
            seen.append((sql, steps[0]))

    monkeypatch.setattr(standin.backend, "execute", execute)
    return seen


def _fill(d1: D1Client, db: str, create: str, insert: str, rows: int) -> None:
    d1.query(db, create)
    d1.query(db, f"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {rows}) {insert}")


def _local_checksum(d1: D1Client, db: str, table: str) -> tuple[int, str]:
    """The checksum as read in one go from a local SQLite copy of the same rows."""
    conn = sqlite3.connect(":memory:")
    for row in d1.query(db, "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", [table]):
        conn.execute(row["sql"])
    columns = [c["name"] for c in d1.query(db, f'PRAGMA table_info("{table}")')]
    # Each value as SQLite's literal of it: a blob crosses JSON as text, and is stored back as the blob.
    values = " || ', ' || ".join(f'quote("{c}")' for c in columns)
    for row in d1.query(db, f'SELECT {values} AS v FROM "{table}"'):
        conn.execute(f'INSERT INTO "{table}" VALUES ({row["v"]})')
    return table_checksum(SqliteSource(conn), table)


def test_each_page_of_a_checksum_reads_about_as_much_as_the_first(standin, d1, monkeypatch):
    db = d1.create_database("goldgate-paging").uuid
    _fill(d1, db, "CREATE TABLE jobs (id TEXT PRIMARY KEY, note TEXT)",
          "INSERT INTO jobs SELECT printf('job-%06d', x), hex(randomblob(8)) FROM c", 20 * PAGE)
    steps = _vm_steps_per_query(standin, monkeypatch)
    count, digest = table_checksum(D1Source(d1, db, page_rows=PAGE), "jobs")
    assert (count, digest) == _local_checksum(d1, db, "jobs")
    pages = [n for sql, n in steps if sql.lstrip().upper().startswith("SELECT") and '"jobs"' in sql
             and "LIMIT" in sql]
    assert len(pages) == 21  # 20 full pages and the empty one that ends the table
    # With OFFSET the twentieth page stepped over the 950 rows before it: twenty times the first page's work.
    assert max(pages) < 2 * pages[0], pages


@pytest.mark.parametrize(("create", "insert", "table"), [
    (("CREATE TABLE idempotency_keys (scope TEXT NOT NULL, idempotency_key TEXT NOT NULL, job_id TEXT, "
      "PRIMARY KEY (scope, idempotency_key))"),
     "INSERT INTO idempotency_keys SELECT 'scope-' || (x % 3), printf('k%05d', x), 'job-' || x FROM c",
     "idempotency_keys"),
    ("CREATE TABLE walks (walk TEXT PRIMARY KEY, reached TEXT)",
     "INSERT INTO walks SELECT 'walk ''' || x || ''' \"q\"', 'r' || x FROM c", "walks"),
    ("CREATE TABLE big (n INTEGER PRIMARY KEY, v REAL)",
     "INSERT INTO big SELECT 9223372036854775807 - x * 1000003, x / 7.0 FROM c", "big"),
    ("CREATE TABLE blobs (b BLOB PRIMARY KEY, s TEXT) WITHOUT ROWID",
     "INSERT INTO blobs SELECT randomblob(6), x FROM c", "blobs"),
])
def test_composite_text_integer_and_blob_keys_give_the_unpaged_checksum(d1, create, insert, table):
    db = d1.create_database("goldgate-keys").uuid
    _fill(d1, db, create, insert, 7 * PAGE + 3)
    assert table_checksum(D1Source(d1, db, page_rows=PAGE), table) == _local_checksum(d1, db, table)


def test_a_row_deleted_between_pages_hides_no_later_row(d1):
    db = d1.create_database("goldgate-prune").uuid
    _fill(d1, db, "CREATE TABLE jobs (id TEXT PRIMARY KEY)",
          "INSERT INTO jobs SELECT printf('job-%04d', x) FROM c", 3 * PAGE)
    seen = []
    for row in d1.stream_keyed(db, "jobs", "id", ["id"], page_rows=PAGE):
        seen.append(row["id"])
        if len(seen) == PAGE:  # retention prunes the oldest jobs while the drill reads on
            d1.query(db, "DELETE FROM jobs WHERE id <= ?", ["job-0010"])
    assert seen == [f"job-{n:04d}" for n in range(1, 3 * PAGE + 1)]
    assert all(set(row) == {"id"} for row in d1.stream_keyed(db, "jobs", "id", ["id"], page_rows=PAGE))


def test_a_null_in_a_primary_key_is_read_past_not_stopped_at(d1):
    db = d1.create_database("goldgate-nullkey").uuid
    d1.query(db, "CREATE TABLE legacy (id TEXT PRIMARY KEY, v INTEGER)")  # SQLite lets this key hold NULL
    d1.query(db, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 12) "
                 "INSERT INTO legacy SELECT CASE WHEN x <= 5 THEN NULL ELSE 'k' || x END, x FROM c")
    assert table_checksum(D1Source(d1, db, page_rows=5), "legacy") == _local_checksum(d1, db, "legacy")
    assert table_checksum(D1Source(d1, db, page_rows=5), "legacy")[0] == 12
