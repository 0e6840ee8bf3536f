"""goldgate.cloudflare.d1.run_dump, in process: which statements its caller's check sees (the D1 stand-in refuses
an import's transaction statements through it), and that a refused one never runs."""

from __future__ import annotations

import sqlite3

import pytest

from goldgate.cloudflare.d1 import run_dump


def _connection() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None, cached_statements=0)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    return conn


def test_the_check_sees_each_statement_but_the_row_inserts_and_can_refuse_it() -> None:
    conn = _connection()
    conn.execute("BEGIN")
    seen: list[str] = []

    def check(statement: str) -> None:
        seen.append(statement.strip())
        if statement.lstrip().upper().startswith("COMMIT"):
            raise ValueError("no transaction statements")

    dump = ["INSERT INTO t VALUES(1,'a');\n", "INSERT INTO t VALUES(2,'b');\n", "UPDATE t SET v = 'c' WHERE id = 1;\n",
            "COMMIT;\n", "INSERT INTO t VALUES(3,'d');\n"]
    with pytest.raises(ValueError, match="no transaction statements"):
        run_dump(conn, dump, check)
    assert [s.rstrip(";") for s in seen] == ["UPDATE t SET v = 'c' WHERE id = 1", "COMMIT"]
    assert conn.in_transaction   # the refused COMMIT never ran
    conn.close()
