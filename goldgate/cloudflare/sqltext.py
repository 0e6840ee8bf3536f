"""SQL text as D1 exports and imports it: statements split without breaking multi-line string literals."""

from __future__ import annotations

import sqlite3


def _only_comments(text: str) -> bool:
    return all(not ln.strip() or ln.strip().startswith("--") for ln in text.splitlines())


def split_sql(sql: str) -> list[str]:
    """Statements of a SQL text; raises ValueError if it ends inside a statement."""
    out, buf = [], ""
    for line in sql.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            # SQLite's own prepare loop skips empty statements (";;"), so D1 does too.
            stmt = buf.strip().rstrip(";").strip()
            if stmt and not _only_comments(stmt):
                out.append(stmt)
            buf = ""
    if buf.strip() and not _only_comments(buf):
        raise ValueError("SQL ends in the middle of a statement (truncated?)")
    return out
