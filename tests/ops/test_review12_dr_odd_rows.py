"""A local drill and restore of a database holding rows a production database gathers: text that is not UTF-8,
NULLs, a row id with quotes, multi-megabyte text."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from goldgate.local.platform import LocalPlatform
from goldgate.ops.dr import restore_into_stack, run_local_drill

_JOB = ("INSERT INTO jobs (id, stack, workflow_id, workflow_version, inputs_json, trace_id, status, created_at, "
        "created_at_ms, updated_at) VALUES (?, 'staging', 'sdxl-txt2img', 'sdxl-txt2img@1.0.0', {inputs}, 't', "
        "'completed', '2026-11-20T00:00:00.000Z', 0, '2026-11-20T00:10:00.000Z')")


def _add_odd_rows(db):
    conn = sqlite3.connect(db)
    with conn:
        # A byte that is not UTF-8 in a TEXT column (written by hand with the sqlite3 shell, or a CAST of a blob)
        conn.execute(_JOB.format(inputs="CAST(X'7B2270726F6D7074223A2022FF227D' AS TEXT)"), ("job-latin1",))
        conn.execute(_JOB.format(inputs="?"), ("job-'quoted\"", "x" * 3_000_000))
    conn.close()
    return db


def test_a_database_with_a_non_utf8_text_value_is_backed_up_restored_and_verified(tmp_path, stack_db):
    home = tmp_path / "home"
    platform = LocalPlatform(home)
    db = _add_odd_rows(stack_db(platform.db_path("staging"), jobs=200))
    result = run_local_drill("staging", db, home)
    # One such row used to fail every backup of the database ("Could not decode to UTF-8 column 'r' ...",
    # with the row's text in the drill's error): no backup could be taken at all.
    assert result.passed, result.error
    assert result.row_counts["jobs"] == 202
    # and the backup restores over the stack byte for byte
    restore_into_stack(Path(result.backup), db, "staging")
    conn = sqlite3.connect(db)
    conn.text_factory = bytes
    assert conn.execute("SELECT inputs_json FROM jobs WHERE id = 'job-latin1'").fetchone()[0] == b'{"prompt": "\xff"}'
    assert len(conn.execute("SELECT inputs_json FROM jobs WHERE id = 'job-''quoted\"'").fetchone()[0]) == 3_000_000
    conn.close()


def test_a_changed_non_utf8_byte_is_still_caught_by_the_table_checksum(tmp_path, stack_db):
    """The bytes themselves are hashed: two values that differ only in an invalid byte do not verify as equal."""
    from goldgate.ops.fingerprint import SqliteSource, fingerprint

    db = stack_db(tmp_path / "db.sqlite", jobs=10)
    _add_odd_rows(db)
    conn = sqlite3.connect(db)
    before = fingerprint(SqliteSource(conn)).checksums["jobs"]
    with conn:
        conn.execute("UPDATE jobs SET inputs_json = CAST(X'7B2270726F6D7074223A2022FE227D' AS TEXT) "
                     "WHERE id = 'job-latin1'")
    after = fingerprint(SqliteSource(conn)).checksums["jobs"]
    conn.close()
    assert before != after

