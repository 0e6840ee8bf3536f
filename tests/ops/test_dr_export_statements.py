"""A cloud drill runs the D1 export it stored in R2 in a scratch SQLite to fingerprint it. The export comes back
from the bucket, where anyone who can write it could have changed it: statements no D1 export holds (ATTACH,
VACUUM INTO, PRAGMAs other than wrangler's) are refused, so the drill reads and writes no other file."""

from __future__ import annotations

from pathlib import Path

import pytest

from goldgate.ops.backup import BackupRefused
from goldgate.ops.dr import load_sql_dump

EXPORT = ("PRAGMA defer_foreign_keys=TRUE;\n"
          "CREATE TABLE jobs (id TEXT PRIMARY KEY, status TEXT);\n"
          "INSERT INTO jobs VALUES('j1','completed');\n"
          "CREATE INDEX jobs_status ON jobs (status);\n")


def test_an_export_as_wrangler_writes_it_loads(tmp_path: Path) -> None:
    dump = tmp_path / "export.sql"
    dump.write_text(EXPORT)
    conn = load_sql_dump(dump, tmp_path / "scratch.sqlite")
    try:
        assert conn.execute("SELECT id, status FROM jobs").fetchall() == [("j1", "completed")]
    finally:
        conn.close()


@pytest.mark.parametrize("statement", [
    "COMMIT;\nVACUUM INTO '{out}';",
    "ATTACH DATABASE '{out}' AS other;",
    "PRAGMA writable_schema = ON;",
    "COMMIT;",
], ids=["vacuum-into", "attach", "pragma", "commit"])
def test_an_export_with_a_statement_no_export_holds_is_refused_and_writes_no_file(tmp_path: Path,
                                                                                   statement: str) -> None:
    out = tmp_path / "elsewhere.db"
    dump = tmp_path / "export.sql"
    dump.write_text(EXPORT + statement.format(out=out) + "\n")
    with pytest.raises(BackupRefused, match="which no D1 export does; refusing to run it"):
        load_sql_dump(dump, tmp_path / "scratch.sqlite")
    assert not out.exists()
