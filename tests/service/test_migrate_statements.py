"""Both migration runners (goldgate's, for D1 and the stacks' SQLite, and the local service's own) cut a migration
into the same statements, as SQLite reads them: so a database holds the same schema whichever runner migrated it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from goldgate import migrations as goldgate_migrations
from service import migrate

SQL = """-- a comment describing the table
CREATE TABLE a (
  id TEXT PRIMARY KEY,
  -- a comment inside the statement stays, as wrangler sends the file as it is
  note TEXT DEFAULT 'x;y'
);
CREATE TABLE b (id INTEGER); CREATE INDEX b_id ON b (id);
INSERT INTO a (id, note) VALUES ('k', '
-- not a comment: a line of a string literal');
"""


def test_both_runners_cut_a_migration_into_the_same_statements_as_sqlite_reads_it(tmp_path: Path) -> None:
    ours = migrate.split_statements(SQL)
    assert ours == goldgate_migrations.split_statements(SQL)
    assert [s.split()[0:3] for s in ours] == [["CREATE", "TABLE", "a"], ["CREATE", "TABLE", "b"],
                                              ["CREATE", "INDEX", "b_id"], ["INSERT", "INTO", "a"]]
    directory = tmp_path / "migrations"
    directory.mkdir()
    (directory / "0001_two_on_a_line.sql").write_text(SQL)
    conn = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    try:
        assert migrate.apply_sqlite(conn, directory) == ["0001_two_on_a_line.sql"]
        assert conn.execute("SELECT note FROM a").fetchone()[0] == "\n-- not a comment: a line of a string literal"
        assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'b_id'").fetchone() == ("b_id",)
    finally:
        conn.close()
