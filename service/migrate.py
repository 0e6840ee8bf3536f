"""A small stdlib runner for migrations/NNNN_name.sql on the local SQLite (the Worker never migrates).

Records applied files in wrangler's `d1_migrations(id, name, applied_at)` table, so the same
database stays compatible with `wrangler d1 migrations apply` and with goldgate.migrations; and, in the same
transaction, the sha256 of the text each ran with (line ends read as LF) in goldgate's
`goldgate_migration_checksums`, so an applied migration edited later is refused by name whichever runner
applied it.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import sqlite3
import stat
from collections.abc import Iterable
from pathlib import Path

from service.files import file_kind
from service.sqltext import split_sql

# wrangler applies every *.sql in the directory, named as `wrangler d1 migrations create` names them: a four-digit
# number, `_`, and the message given, its spaces as `_`, its case and hyphens kept ("0009_Add_cancel-reason.sql"). A
# name is written into d1_migrations as a SQL literal, by wrangler and by both runners: letters, digits, `_`, `-` and
# `.` are taken as they are; a quote would end the literal (wrangler fails on it too), and other punctuation is refused
# before anything runs. A wrangler name the runners refused could not be renamed away once wrangler had applied it
# (the database records a name the checkout then lacks) short of editing d1_migrations by hand.
NAME = re.compile(r"^(\d{4})_[A-Za-z0-9_.-]+\.sql$")
NAME_RULE = "after the number and '_', only ASCII letters, digits, '_', '-' or '.'"
RENAME_HINT = ("rename the file, and if wrangler applied it already, its row too (UPDATE d1_migrations SET name = "
               "'<new name>' WHERE name = '<old name>')")
TRACKING_TABLE_SQL = ("CREATE TABLE IF NOT EXISTS d1_migrations(id INTEGER PRIMARY KEY AUTOINCREMENT, "
                      "name TEXT UNIQUE, applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL)")
# goldgate.migrations' table as it defines it (service/ does not import goldgate). A record holds for the
# d1_migrations row it was written with: a migration undone by hand and run again is judged by its new text.
CHECKSUM_TABLE_SQL = ("CREATE TABLE IF NOT EXISTS goldgate_migration_checksums("
                      "name TEXT PRIMARY KEY, sha256 TEXT NOT NULL, d1_migrations_id INTEGER NOT NULL)")
_RECORD_SQL = ("INSERT OR REPLACE INTO goldgate_migration_checksums (name, sha256, d1_migrations_id) "
               "SELECT name, ?, id FROM d1_migrations WHERE name = ?")
_RECORDED_SQL = ("SELECT c.name, c.sha256 FROM goldgate_migration_checksums c "
                 "JOIN d1_migrations m ON m.name = c.name AND m.id = c.d1_migrations_id")


class MigrationError(RuntimeError):
    """A migration file is misnamed, failed, or changed after it was applied; the message names it."""


def migration_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise MigrationError(f"migrations directory {directory} does not exist")
    files = sorted(directory.glob("*.sql"))
    for number, path in enumerate(files, start=1):
        match = NAME.match(path.name)
        if not match or int(match.group(1)) != number:
            raise MigrationError(f"migration {path.name} must be named {number:04d}_<name>.sql ({NAME_RULE}): "
                                 f"{RENAME_HINT}")
    return files


def read_migration(path: Path) -> str:
    """A migration file's text; anything but a UTF-8 regular file is refused by name. Opened without waiting: a
    named pipe in its place would block the read for ever (and the service's start with it)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a socket
            raise MigrationError(f"migration {path.name} is {_kind(path)}, not a file: put the SQL file "
                                 "there") from None
        raise MigrationError(f"migration {path.name} cannot be read: {exc.strerror or exc}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise MigrationError(f"migration {path.name} is {file_kind(mode)}, not a file: put the SQL file there")
        os.set_blocking(fd, True)
        with open(fd, "rb", closefd=False) as f:
            data = f.read()
    except OSError as exc:
        raise MigrationError(f"migration {path.name} cannot be read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise MigrationError(f"migration {path.name} is not UTF-8 text (line {line}, byte "
                             f"{data[exc.start:exc.start + 1]!r}): save it as UTF-8, as wrangler reads it") from None


def _kind(path: Path) -> str:
    try:
        return file_kind(os.stat(path).st_mode)
    except OSError:
        return "not a regular file"


def split_statements(sql: str) -> list[str]:
    """A migration's statements, each without its closing ';', cut as SQLite reads them: two statements may share a
    line, and a line of a string literal or trigger body that begins with `--` is kept as written, not dropped as a
    comment. The comment lines before a statement describe it and are left out; one inside it stays. (wrangler
    drops every comment before D1 runs a file: a table it created holds the same definition without them.)"""
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
    """Apply pending migrations, each with its tracking row and sha256 in one transaction; return their names.
    Refuses a database that holds a migration this checkout lacks, or one whose text changed since it ran."""
    conn.execute(TRACKING_TABLE_SQL)
    conn.execute(CHECKSUM_TABLE_SQL)
    applied = {row[0] for row in conn.execute("SELECT name FROM d1_migrations")}
    texts = {path.name: read_migration(path) for path in migration_files(directory)}
    unknown = applied - texts.keys()
    if unknown:
        raise MigrationError(f"database records migrations this checkout lacks: {', '.join(sorted(unknown))}")
    recorded = dict(conn.execute(_RECORDED_SQL).fetchall())
    edited = sorted(name for name, digest in recorded.items()
                    if name in texts and digest not in text_digests(texts[name]))
    if edited:
        raise MigrationError(f"migration(s) {', '.join(edited)} changed after being applied; the database "
                             "will not re-run them: restore the applied text and add a new migration file "
                             "instead")
    # Applied by wrangler, or before this runner kept the record: recorded as they read now, as goldgate does.
    unrecorded = [name for name in texts if name in applied and name not in recorded]
    if unrecorded:
        _in_one_transaction(conn, f"recording the sha256 of {', '.join(unrecorded)}",
                            [(_RECORD_SQL, (text_sha256(texts[n]), n)) for n in unrecorded])
    done: list[str] = []
    for name, text in texts.items():
        if name in applied:
            continue
        # Cut before the transaction opens: a file cut off mid-statement leaves no write lock held.
        try:
            statements = [(statement, ()) for statement in split_statements(text)]
        except MigrationError as exc:
            raise MigrationError(f"{name}: {exc}") from None
        record = [("INSERT INTO d1_migrations (name) VALUES (?)", (name,)),
                  (_RECORD_SQL, (text_sha256(text), name))]
        _in_one_transaction(conn, f"migration {name}", [*statements, *record])
        done.append(name)
    return done


def text_sha256(text: str) -> str:
    """The sha256 a migration's text is recorded with: of the text with CRLF and CR line ends read as LF, as both
    runners read files (in text mode) up to 4d72cd7. The same file checked out with CRLF line ends (git's
    core.autocrlf, the Git for Windows default) or LF is one text, whichever machine migrates next."""
    return hashlib.sha256(text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")).hexdigest()


def text_digests(text: str) -> frozenset[str]:
    """Every sha256 a migration applied with this text may be recorded with: text_sha256, and that of its bytes as
    read, line ends kept, as the runners recorded it from 4d72cd7 until line ends were read as LF again, from an
    LF checkout or a CRLF one (a team's Windows machine migrated, a Linux CI runs next)."""
    lf = text.replace("\r\n", "\n").replace("\r", "\n")
    return frozenset(hashlib.sha256(form.encode("utf-8")).hexdigest()
                     for form in (lf, text, lf.replace("\n", "\r\n")))


def _in_one_transaction(conn: sqlite3.Connection, what: str,
                        statements: Iterable[tuple[str, tuple]]) -> None:
    # An explicit transaction: Python's sqlite3 opens none before DDL, whatever the isolation_level.
    try:
        conn.execute("BEGIN IMMEDIATE")
        for sql, params in statements:
            conn.execute(sql, params)
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        if conn.in_transaction:  # none when BEGIN itself failed (the database locked by another writer)
            conn.execute("ROLLBACK")
        raise MigrationError(f"{what} failed: {exc}") from exc
