"""SQL text as D1 exports and imports it: statements split without breaking multi-line string literals, as SQLite
reads them. Stdlib only: the local service's migration runner (service/migrate.py) uses it too; local-only, not in
the Worker bundle."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path

READ_CHARS = 1 << 18  # characters read at a time from a dump file


def _only_comments(text: str) -> bool:
    return all(not ln.strip() or ln.strip().startswith("--") for ln in text.splitlines())


# What can hide a ';' that does not end a statement: quoted strings and identifiers, and comments.
_HIDES_SEMICOLONS = re.compile(r"""'[^']*'|"[^"]*"|`[^`]*`|\[[^\]]*\]|--[^\n]*|/\*.*?(?:\*/|\Z)|;""", re.DOTALL)


def _pieces(text: str) -> list[str]:
    """A complete run of SQL cut after each ';' that ends a statement: several statements may share a
    line ("a; b;"), while a ';' in a string, a comment or a trigger's BEGIN ... END does not end one."""
    if text.count(";") < 2:
        return [text]
    pieces, start = [], 0
    for match in _HIDES_SEMICOLONS.finditer(text):
        if match.group() == ";" and sqlite3.complete_statement(text[start:match.end()]):
            pieces.append(text[start:match.end()])
            start = match.end()
    if not pieces:
        return [text]
    if text[start:].strip() and not _only_comments(text[start:]):
        pieces[-1] += text[start:]  # never drop text: what is left goes with the last statement, as before
    return pieces


def _without_trailing_comment(piece: str) -> str:
    """`a; -- why` as `a;`: a comment after a statement's ';' is not part of it (its rstrip(";") never reached the
    ';', and the statement carried "; -- why" on, which a runner joining statements with ';' turns into two)."""
    last = None
    for match in _HIDES_SEMICOLONS.finditer(piece):
        if match.group() == ";":
            last = match.end()
    if last is not None and _only_comments(piece[last:]) and sqlite3.complete_statement(piece[:last]):
        return piece[:last]
    return piece


def iter_sql(lines: Iterable[str]) -> Iterator[str]:
    """Statements of SQL text given line by line (each line with its ending); raises ValueError if the
    text ends inside a statement. Holds one statement at a time, whatever the text's length."""
    buf = ""
    for line in lines:
        buf += line
        if sqlite3.complete_statement(buf):
            for piece in _pieces(buf):
                # SQLite's own prepare loop skips empty statements (";;"), so D1 does too.
                stmt = _without_trailing_comment(piece).strip().rstrip(";").strip()
                if stmt and not _only_comments(stmt):
                    yield stmt
            buf = ""
    if buf.strip() and not _only_comments(buf):
        raise ValueError("SQL ends in the middle of a statement (truncated?)")


def split_sql(sql: str) -> list[str]:
    """Statements of a SQL text; raises ValueError if it ends inside a statement."""
    return list(iter_sql(sql.splitlines(keepends=True)))


def file_lines(path: Path) -> Iterator[str]:
    """The lines of a UTF-8 file exactly as `str.splitlines(keepends=True)` cuts its whole text, read a
    chunk at a time; raises UnicodeDecodeError on bytes that are not UTF-8."""
    pending = ""
    with path.open("r", encoding="utf-8", newline="") as f:
        while chunk := f.read(READ_CHARS):
            lines = (pending + chunk).splitlines(keepends=True)
            # The last piece may be cut mid-line, or be a "\r" whose "\n" starts the next chunk.
            pending = lines.pop() if lines else ""
            yield from lines
    if pending:
        yield pending


def iter_sql_file(path: Path) -> Iterator[str]:
    """Statements of a SQL file, streamed (see `iter_sql`)."""
    return iter_sql(file_lines(path))
