"""A run of rows that fails at a row deep inside it is undone and run again one row at a time, so the error
named is the row at fault's own (goldgate.cloudflare.d1.run_dump). That takes a journal to undo with: loaded
without one (journal_mode OFF), the rows before the fault stayed, and their re-run failed first, on their own
keys, naming a UNIQUE constraint the backup never broke."""

from __future__ import annotations

from pathlib import Path

import pytest

from goldgate.ops.backup import BackupRefused
from goldgate.ops.dr import load_sql_dump

DUMP_BATCH_ROWS = 500  # rows per merged INSERT, goldgate.cloudflare.d1.DUMP_BATCH_ROWS


@pytest.mark.parametrize("scratch", ["file", "memory"])
def test_a_row_breaking_a_constraint_deep_in_a_run_is_named_by_its_own_error(tmp_path: Path, scratch: str):
    rows = [f"INSERT INTO t VALUES({i},'v{i}');\n" for i in range(DUMP_BATCH_ROWS + 20)]
    rows[DUMP_BATCH_ROWS - 5] = f"INSERT INTO t VALUES({DUMP_BATCH_ROWS - 5},NULL);\n"
    dump = tmp_path / "export.sql"
    dump.write_text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL);\n" + "".join(rows), encoding="utf-8")
    with pytest.raises(BackupRefused, match=r"not valid SQL \(NOT NULL constraint failed: t\.v\)"):
        load_sql_dump(dump, tmp_path / "scratch.sqlite" if scratch == "file" else ":memory:")
