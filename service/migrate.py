"""A small stdlib runner for migrations/NNNN_name.sql on the local SQLite (the Worker never migrates).

Records applied files in wrangler's `d1_migrations(id, name, applied_at)` table, so the same
database stays compatible with `wrangler d1 migrations apply` and with goldgate.migrations.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from service.sqltext import split_sql

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
TRACKING_TABLE_SQL = ("CREATE TABLE IF NOT EXISTS d1_migrations(id INTEGER PRIMARY KEY AUTOINCREMENT, "
                      "name TEXT UNIQUE, applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL)")


class MigrationError(RuntimeError):
    """A migration file is misnamed or failed; the message names it."""


def migration_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise MigrationError(f"migrations directory {directory} does not exist")
    files = sorted(directory.glob("*.sql"))
    for number, path in enumerate(files, start=1):
        match = _NAME.match(path.name)
        if not match or int(match.group(1)) != number:
            raise MigrationError(f"migration {path.name} must be named {number:04d}_<lowercase_words>.sql")
    return files


def split_statements(sql: str) -> list[str]:
    """A migration's statements, each without its closing ';', cut as SQLite reads them: two statements may share a
    line, and a line of a string literal or trigger body that begins with `--` is kept as written, not dropped as a
    comment. The comment lines before a statement describe it and are left out; one inside it stays (wrangler sends
    the file as it is)."""
    try:
        statements = split_sql(sql)
    except ValueError:
        raise MigrationError("migration ends with an incomplete SQL statement") from None
    return [_without_leading_comments(statement) for statement in statements]


def _without_leading_comments(statement: str) -> str:
    lines = statement.splitlines()
    while lines and (not lines[0].strip() or lines[0].lstrip().startswith("--")):
        lines.pop(0)
    return "\n".join(lines).strip()


def apply_sqlite(conn: sqlite3.Connection, directory: Path) -> list[str]:
    """Apply pending migrations, each with its tracking row in one transaction; return names applied."""
    conn.execute(TRACKING_TABLE_SQL)
    applied = {row[0] for row in conn.execute("SELECT name FROM d1_migrations")}
    files = migration_files(directory)
    unknown = applied - {f.name for f in files}
    if unknown:
        raise MigrationError(f"database records migrations this checkout lacks: {', '.join(sorted(unknown))}")
    done: list[str] = []
    for path in files:
        if path.name in applied:
            continue
        try:
            conn.execute("BEGIN IMMEDIATE")
            for statement in split_statements(path.read_text(encoding="utf-8")):
                conn.execute(statement)
            conn.execute("INSERT INTO d1_migrations (name) VALUES (?)", (path.name,))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK")
            raise MigrationError(f"migration {path.name} failed: {exc}") from exc
        done.append(path.name)
    return done
