"""A D1 export is loaded with its rows run a few hundred to a statement (goldgate.cloudflare.d1.run_dump):
what lands, and what is refused and why, must be what running each statement on its own gives. These dumps put
the edges where the batching could go wrong: runs longer than a batch, runs of two tables taking turns, rows
whose strings hold quotes, semicolons, comment marks and line breaks, rows that must not be merged (a
subquery, a comment between rows), a row at fault deep inside a run, a dump cut inside a run."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from goldgate.ops.backup import BackupRefused
from goldgate.ops.dr import load_sql_dump
from service.sqltext import iter_sql_file

DUMP_BATCH_ROWS = 500  # rows per merged INSERT, goldgate.cloudflare.d1.DUMP_BATCH_ROWS
SCHEMA = ("PRAGMA defer_foreign_keys=TRUE;\n"
          'CREATE TABLE "jobs" (id TEXT PRIMARY KEY, n INTEGER, note TEXT, body BLOB);\n'
          "CREATE TABLE events (id INTEGER PRIMARY KEY, job_id TEXT, kind TEXT);\n")


def _awkward_dump() -> str:
    notes = ["it''s dusk; -- not a comment", "line one\nline two;\n-- still the string",
             "/* no */ (SELECT 1)", 'a "quoted" name', "", "semi;colon"]
    out = [SCHEMA]
    for i in range(DUMP_BATCH_ROWS * 2 + 37):  # more than two batches of one table
        note = notes[i % len(notes)]
        out.append(f"INSERT INTO \"jobs\" VALUES('job-{i:05d}',{i - 500},'{note}',X'{i:04x}');\n")
        if i % 611 == 0:  # the other table takes a turn: a run ends and another begins
            out.append(f"INSERT INTO events(id,job_id,kind) VALUES({i},'job-{i:05d}','created');\n")
        if i == 700:  # a comment between two rows, and a row computed from the database: neither is merged
            out.append("-- the next row reads the table it writes\n")
            out.append("INSERT INTO events VALUES(100000,(SELECT max(id) FROM jobs),'max');\n")
        if i == 800:  # two statements on a line, and a value spelled in another case
            out.append("insert into events values(100001,NULL,'x'); "
                       "INSERT INTO events VALUES(100002,null,'y');\n")
    out.append("CREATE INDEX jobs_n ON jobs (n);\n")
    return "".join(out)


def _one_at_a_time(dump: Path) -> sqlite3.Connection:
    """The dump as each of its statements, run alone, leaves a database."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("BEGIN")
    for statement in iter_sql_file(dump):
        conn.execute(statement)
    conn.execute("COMMIT")
    return conn


def _contents(conn: sqlite3.Connection) -> dict[str, list[tuple]]:
    return {table: conn.execute(f'SELECT *, typeof(n) FROM "{table}" ORDER BY id').fetchall()
            if table == "jobs" else conn.execute(f'SELECT * FROM "{table}" ORDER BY id').fetchall()
            for table in ("jobs", "events")}


def test_a_dump_with_runs_across_batch_borders_and_awkward_rows_loads_as_each_statement_alone(tmp_path: Path):
    dump = tmp_path / "export.sql"
    dump.write_text(_awkward_dump(), encoding="utf-8")
    loaded = load_sql_dump(dump, tmp_path / "scratch.sqlite")
    expected = _one_at_a_time(dump)
    try:
        got = _contents(loaded)
        assert got == _contents(expected)
        assert len(got["jobs"]) == DUMP_BATCH_ROWS * 2 + 37
        second = ("job-00001", -499, "line one\nline two;\n-- still the string", b"\x00\x01", "integer")
        assert second in got["jobs"]
        assert (100000, "job-00700", "max") in got["events"]  # the max when that row ran, not after the run
        assert loaded.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'jobs_n'").fetchall()
    finally:
        loaded.close()
        expected.close()


def test_a_row_at_fault_deep_in_a_run_is_refused_with_its_own_error(tmp_path: Path):
    rows = [f"INSERT INTO t VALUES({i},'v{i}');\n" for i in range(DUMP_BATCH_ROWS + 20)]
    rows[DUMP_BATCH_ROWS - 5] = "INSERT INTO t VALUES(1,'v',3);\n"  # one value too many, inside a run
    dump = tmp_path / "export.sql"
    dump.write_text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);\n" + "".join(rows), encoding="utf-8")
    too_many = r"not valid SQL \(table t has 2 columns but 3 values were supplied\)"
    with pytest.raises(BackupRefused, match=too_many):
        load_sql_dump(dump, tmp_path / "scratch.sqlite")
    rows[DUMP_BATCH_ROWS - 5] = "INSERT INTO t VALUES(7,'again');\n"  # the key of a row before it in the run
    dump.write_text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);\n" + "".join(rows), encoding="utf-8")
    with pytest.raises(BackupRefused, match=r"not valid SQL \(UNIQUE constraint failed: t.id\)"):
        load_sql_dump(dump, tmp_path / "scratch.sqlite")


def test_a_dump_cut_inside_a_run_of_rows_is_refused_as_truncated(tmp_path: Path):
    text = "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);\n" + "".join(
        f"INSERT INTO t VALUES({i},'v{i}');\n" for i in range(DUMP_BATCH_ROWS + 3))
    dump = tmp_path / "export.sql"
    dump.write_text(text[:-6], encoding="utf-8")  # the last row cut inside its string
    with pytest.raises(BackupRefused, match=r"not valid SQL \(SQL ends in the middle of a statement"):
        load_sql_dump(dump, tmp_path / "scratch.sqlite")
