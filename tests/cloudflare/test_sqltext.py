"""Splitting SQL text into statements, whole or streamed from a file a chunk at a time."""

from __future__ import annotations

import pytest

from service import sqltext
from service.sqltext import file_lines, iter_sql_file, split_sql

TRICKY = ("PRAGMA defer_foreign_keys=TRUE;\r\n"
          "INSERT INTO t VALUES('multi\nline; -- not a comment\r\nend');\n"
          "INSERT INTO t VALUES('it''s\u2028here');;\n"
          "-- a comment;\n"
          "INSERT INTO t VALUES('\r');\r")


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 1 << 18])
def test_a_file_is_cut_into_the_lines_and_statements_of_its_whole_text_whatever_the_chunk_size(
        tmp_path, monkeypatch, chunk):
    path = tmp_path / "dump.sql"
    path.write_bytes(TRICKY.encode("utf-8"))
    monkeypatch.setattr(sqltext, "READ_CHARS", chunk)
    assert list(file_lines(path)) == TRICKY.splitlines(keepends=True)
    assert list(iter_sql_file(path)) == split_sql(TRICKY)
    assert len(split_sql(TRICKY)) == 4


def test_a_file_that_ends_inside_a_statement_is_refused(tmp_path):
    path = tmp_path / "cut.sql"
    path.write_text("CREATE TABLE t (x);\nINSERT INTO t VALUES('cut sh", encoding="utf-8")
    with pytest.raises(ValueError, match="middle of a statement"):
        list(iter_sql_file(path))


def test_statements_sharing_a_line_are_split_and_semicolons_in_strings_and_trigger_bodies_are_not():
    sql = ("CREATE TABLE t (x, y);  INSERT INTO t VALUES ('a;b', \"c;d\"); INSERT INTO t VALUES (2, 'it''s;'); -- done\n"
           "CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET y = ';'; DELETE FROM t WHERE 0; END; SELECT 1;\r\n"
           "/* a; comment */ SELECT 2;;\n")
    assert split_sql(sql) == [
        "CREATE TABLE t (x, y)",
        "INSERT INTO t VALUES ('a;b', \"c;d\")",
        "INSERT INTO t VALUES (2, 'it''s;')",
        "CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET y = ';'; DELETE FROM t WHERE 0; END",
        "SELECT 1",
        "/* a; comment */ SELECT 2",
    ]


def test_a_dump_with_statements_sharing_a_line_loads(tmp_path):
    from goldgate.ops.dr import load_sql_dump

    path = tmp_path / "dump.sql"
    path.write_text("CREATE TABLE t (x); INSERT INTO t VALUES ('a;b'); INSERT INTO t VALUES (2);\n", encoding="utf-8")
    conn = load_sql_dump(path)
    assert conn.execute("SELECT x FROM t ORDER BY rowid").fetchall() == [("a;b",), (2,)]
    conn.close()
